//! [`Executable`]: a pre-decoded program bound to its helpers, ready to run.

use std::mem::MaybeUninit;

use cordon_isa::Program;

use crate::context::{Region, RunContext, STATUS_RUNNING};
use crate::decode::{Decoded, MAX_FRAME, decode};
use crate::error::{ExecError, LoadError};
use crate::helpers::{HelperRegistry, HelperTable};
use crate::interp::{MAX_CALL_FRAMES, interpret};
use crate::shadow_stack::{
    DEFAULT_SHADOW_STACK_SIZE, FrameArena, NATIVE_STACK_BYTES, PerProgramStacks, StackStrategy,
    round_frame, thread_arena,
};
use crate::specialise::CallSites;

/// Default r10 frame size per call.
pub const DEFAULT_FRAME_SIZE: u32 = 512;

/// Default instruction budget of a checked run.
pub const DEFAULT_INSTRUCTION_BUDGET: u64 = 100_000_000;

/// Execution mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Every memory access is checked; runs have an instruction budget.
    Checked,
    /// No checks: for programs the verifier accepted.
    Trusted,
}

/// Options for [`Executable`].
#[derive(Clone, Debug)]
pub struct ExecOptions {
    /// Name used in error messages.
    pub name: String,
    /// r10 frame size of every (sub)program, unless given in `subprog_frames`.
    pub frame_size: u32,
    /// Per-subprogram frame sizes: (first instruction index, bytes). A verified
    /// program passes its per-subprogram stack depth here.
    pub subprog_frames: Vec<(usize, u32)>,
    /// Where frames come from.
    pub stack: StackStrategy,
    /// Usable bytes of the shadow stack (per thread, or per program per thread;
    /// unused by [`StackStrategy::Native`]). The per-thread stack is created on
    /// first use; an idle one of a different size is replaced (so executables
    /// sharing a thread should agree on the size), a busy one (nested
    /// invocation) is used as it is.
    pub shadow_stack_size: usize,
    /// Maximum number of instructions one checked run may execute.
    pub instruction_budget: u64,
    /// Helper call sites the loader specialised (used by trusted executables
    /// only; see [`crate::specialise`]). Empty by default.
    pub call_sites: CallSites,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            name: String::from("prog"),
            frame_size: DEFAULT_FRAME_SIZE,
            subprog_frames: Vec::new(),
            stack: StackStrategy::default(),
            shadow_stack_size: DEFAULT_SHADOW_STACK_SIZE,
            instruction_budget: DEFAULT_INSTRUCTION_BUDGET,
            call_sites: CallSites::default(),
        }
    }
}

impl ExecOptions {
    pub fn named(name: &str) -> ExecOptions {
        ExecOptions {
            name: name.to_string(),
            ..ExecOptions::default()
        }
    }
}

/// A program ready to run: pre-decoded ops, its helper table and stack setup.
///
/// `Executable` is `Send + Sync`; one executable may run on many threads at once
/// (each thread uses its own shadow stack).
#[derive(Debug)]
pub struct Executable {
    decoded: Decoded,
    helpers: HelperTable,
    mode: Mode,
    options: ExecOptions,
    per_program: PerProgramStacks,
}

/// Restores the frame arena when an invocation ends (also on panic).
struct ArenaGuard {
    arena: *mut FrameArena,
    sp: u64,
}

impl Drop for ArenaGuard {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the arena outlives the invocation.
        unsafe {
            (*self.arena).sp = self.sp;
            (*self.arena).active -= 1;
        }
    }
}

/// Load-time checks and pre-decoding shared by both engines (the interpreter
/// and the JIT): subprogram frame entries must name instructions, frames must
/// fit [`MAX_FRAME`], helpers, kfuncs and `lddw` pseudo sources must resolve
/// ([`decode`]), [`StackStrategy::Native`] must fit [`MAX_CALL_FRAMES`] of the
/// largest frame, and the shadow stack size must be sane.
///
/// Returns the pre-decoded program and the frame size of every (sub)program
/// by its first instruction index (rounded to the frame alignment).
pub(crate) fn prepare(
    program: &Program,
    table: &HelperTable,
    options: &ExecOptions,
) -> Result<(Decoded, impl Fn(usize) -> u64 + use<>), LoadError> {
    for &(index, _) in &options.subprog_frames {
        if program.kind(index).is_none() {
            return Err(LoadError::BadSubprogram { index });
        }
    }
    let default = round_frame(options.frame_size as u64);
    if default > MAX_FRAME {
        return Err(LoadError::FrameTooLarge {
            index: 0,
            size: default,
            max: MAX_FRAME,
        });
    }
    let frames = options.subprog_frames.clone();
    let frame_of = move |pc: usize| {
        frames
            .iter()
            .find(|(i, _)| *i == pc)
            .map_or(default, |&(_, s)| round_frame(s as u64))
    };
    let decoded = decode(program, table, &frame_of)?;
    if decoded.entry_frame > MAX_FRAME {
        return Err(LoadError::FrameTooLarge {
            index: 0,
            size: decoded.entry_frame,
            max: MAX_FRAME,
        });
    }
    if options.stack == StackStrategy::Native {
        let needed = decoded.max_frame * MAX_CALL_FRAMES as u64;
        if needed > NATIVE_STACK_BYTES as u64 {
            return Err(LoadError::NativeStackTooSmall {
                needed,
                capacity: NATIVE_STACK_BYTES as u64,
            });
        }
    }
    if options.shadow_stack_size == 0 || options.shadow_stack_size > (1 << 30) {
        return Err(LoadError::BadStackSize(options.shadow_stack_size));
    }
    Ok((decoded, frame_of))
}

/// What an engine's entry point needs besides its code: shared by
/// [`Executable`] and [`JitExecutable`](crate::jit::JitExecutable).
pub(crate) struct Entry<'e> {
    pub(crate) options: &'e ExecOptions,
    pub(crate) per_program: &'e PerProgramStacks,
    pub(crate) helpers: &'e HelperTable,
    pub(crate) mode: Mode,
    /// Rounded size of the entry function's frame.
    pub(crate) entry_frame: u64,
}

impl Entry<'_> {
    /// Starts an invocation and runs `body` in it; the one entry path of both
    /// engines.
    ///
    /// Takes the arena of the configured [`StackStrategy`] (the thread's
    /// shadow stack, the program's stack for this thread, or a local buffer),
    /// allocates the entry frame (zeroed in checked mode), builds the
    /// [`RunContext`] and calls `body(ctx, r10)`. The arena is restored when
    /// `body` returns or unwinds, so engines need not release frames on early
    /// exits.
    #[inline(always)]
    pub(crate) fn enter<F>(
        &self,
        input: &mut [u8],
        extra: &[Region<'_>],
        body: F,
    ) -> Result<u64, ExecError>
    where
        F: FnOnce(&mut RunContext<'_>, u64) -> Result<u64, ExecError>,
    {
        let o = self.options;
        let stack_err = |source| ExecError::Stack {
            program: o.name.clone(),
            source,
        };
        match o.stack {
            StackStrategy::ThreadShadow => {
                let arena = thread_arena(o.shadow_stack_size).map_err(stack_err)?;
                self.run_on(arena, input, extra, body)
            }
            StackStrategy::PerProgram => {
                let arena = self
                    .per_program
                    .arena(o.shadow_stack_size)
                    .map_err(stack_err)?;
                self.run_on(arena, input, extra, body)
            }
            StackStrategy::Native => self.run_native(input, extra, body),
        }
    }

    /// [`StackStrategy::Native`]: frames in a local buffer. Out of line, so the
    /// other strategies' entry does not carry (and probe) a 4 KiB frame.
    #[inline(never)]
    fn run_native<F>(
        &self,
        input: &mut [u8],
        extra: &[Region<'_>],
        body: F,
    ) -> Result<u64, ExecError>
    where
        F: FnOnce(&mut RunContext<'_>, u64) -> Result<u64, ExecError>,
    {
        let mut buf = MaybeUninit::<[u8; NATIVE_STACK_BYTES]>::uninit();
        let mut arena = FrameArena::over(buf.as_mut_ptr() as u64, NATIVE_STACK_BYTES as u64);
        self.run_on(&mut arena, input, extra, body)
    }

    #[inline(always)]
    fn run_on<F>(
        &self,
        arena: *mut FrameArena,
        input: &mut [u8],
        extra: &[Region<'_>],
        body: F,
    ) -> Result<u64, ExecError>
    where
        F: FnOnce(&mut RunContext<'_>, u64) -> Result<u64, ExecError>,
    {
        let size = self.entry_frame;
        // SAFETY: the arena is valid for the whole call (thread-local, program-owned
        // or a local of our caller) and only used through raw pointers.
        let (entry_sp, top) = unsafe {
            let a = &mut *arena;
            let entry_sp = a.sp;
            match a.alloc(size) {
                Some(top) => {
                    a.active += 1;
                    (entry_sp, top)
                }
                None => return Err(self.exhausted(a)),
            }
        };
        let _guard = ArenaGuard {
            arena,
            sp: entry_sp,
        };
        let checked = self.mode == Mode::Checked;
        if checked {
            // Checked programs may read stack they never wrote (and the native
            // buffer is uninitialised memory): start from zeros.
            // SAFETY: the frame was just allocated.
            unsafe { std::ptr::write_bytes((top - size) as *mut u8, 0, size as usize) };
        }
        let mut ctx = RunContext {
            status: STATUS_RUNNING,
            stop_value: 0,
            arena,
            input_ptr: input.as_mut_ptr() as u64,
            input_len: input.len() as u64,
            stack_hi: entry_sp,
            call_index: 0,
            checked: checked as u64,
            helpers: self.helpers,
            program: &self.options.name,
            extra,
            grants: Vec::new(),
            fault: None,
        };
        body(&mut ctx, top)
    }

    #[cold]
    #[inline(never)]
    fn exhausted(&self, a: &FrameArena) -> ExecError {
        ExecError::StackExhausted {
            program: self.options.name.clone(),
            index: 0,
            needed: self.entry_frame,
            available: a.available(),
            capacity: a.capacity(),
        }
    }
}

impl Executable {
    /// Prepare an unverified program for checked execution.
    pub fn checked(
        program: &Program,
        helpers: &HelperRegistry,
        options: ExecOptions,
    ) -> Result<Executable, LoadError> {
        Executable::build(program, helpers, options, Mode::Checked)
    }

    /// Prepare a verified program for trusted execution (no run-time checks).
    ///
    /// # Safety
    /// The program must have been accepted by a verifier that guarantees every
    /// memory access is in bounds of memory valid for the run (its stack frames,
    /// the input and regions the helpers hand out), atomics are aligned, no stack
    /// slot is read before it is written, frames fit the given sizes and the
    /// program terminates.
    pub unsafe fn trusted(
        program: &Program,
        helpers: &HelperRegistry,
        options: ExecOptions,
    ) -> Result<Executable, LoadError> {
        Executable::build(program, helpers, options, Mode::Trusted)
    }

    fn build(
        program: &Program,
        helpers: &HelperRegistry,
        options: ExecOptions,
        mode: Mode,
    ) -> Result<Executable, LoadError> {
        let table =
            HelperTable::for_program(helpers, &options.call_sites, program, mode == Mode::Trusted);
        let (decoded, _) = prepare(program, &table, &options)?;
        Ok(Executable {
            decoded,
            helpers: table,
            mode,
            options,
            per_program: PerProgramStacks::default(),
        })
    }

    pub fn name(&self) -> &str {
        &self.options.name
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn options(&self) -> &ExecOptions {
        &self.options
    }

    /// Number of instruction slots.
    pub fn len(&self) -> usize {
        self.decoded.ops.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Usable address range of this program's shadow stack on the calling thread
    /// ([`StackStrategy::PerProgram`] only, once it has run on this thread).
    pub fn per_program_stack_range(&self) -> Option<std::ops::Range<u64>> {
        self.per_program.current_range()
    }

    /// Run with the conformance calling convention: r1 = pointer to `mem`,
    /// r2 = its length; `mem` is the input (and the LD_ABS/LD_IND packet).
    #[inline]
    pub fn run(&self, mem: &mut [u8]) -> Result<u64, ExecError> {
        let args = [mem.as_mut_ptr() as u64, mem.len() as u64, 0, 0, 0];
        self.run_with(args, mem, &[])
    }

    /// Run with explicit r1–r5. `input` is accessible memory (and the packet for
    /// LD_ABS/LD_IND); `extra` are further regions the program may access (e.g. a
    /// context structure r1 points to). No allocation unless a helper grants memory.
    #[inline]
    pub fn run_with(
        &self,
        args: [u64; 5],
        input: &mut [u8],
        extra: &[Region<'_>],
    ) -> Result<u64, ExecError> {
        let entry = Entry {
            options: &self.options,
            per_program: &self.per_program,
            helpers: &self.helpers,
            mode: self.mode,
            entry_frame: self.decoded.entry_frame,
        };
        let ops = &self.decoded.ops;
        let name = self.options.name.as_str();
        let budget = self.options.instruction_budget;
        entry.enter(input, extra, |ctx, top| {
            // SAFETY: ops come from `decode`; trusted mode is only reachable
            // through the unsafe `Executable::trusted`, whose caller vouches for
            // the program.
            unsafe {
                if self.mode == Mode::Checked {
                    interpret::<true>(ops, ctx, args, top, budget, name)
                } else {
                    interpret::<false>(ops, ctx, args, top, u64::MAX, name)
                }
            }
        })
    }
}
