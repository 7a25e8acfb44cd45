//! The Cranelift JIT: the same program semantics as the interpreter, compiled to
//! native code.
//!
//! [`JitExecutable`] mirrors [`Executable`](crate::Executable): the same
//! [`ExecOptions`], helpers ([`HelperRegistry`]), run context ([`RunContext`]),
//! shadow stack ([`StackStrategy`]) and errors ([`ExecError`]), in the same two
//! modes:
//!
//! * **trusted** (verified programs): no run-time checks at all;
//! * **checked** (unverified programs): every load, store and atomic is checked
//!   against the invocation's regions (live stack frames and input inline, host
//!   and helper-granted regions out of line), atomics must be aligned, and an
//!   instruction budget (charged per straight-line segment, reported at exactly
//!   the instruction where the interpreter would stop) ends runaway loops. A
//!   violation ends the run with the same [`ExecError`] the interpreter gives.
//!
//! Code generation (see `translate.rs`): r0–r9 are Cranelift variables, so they
//! live in machine registers; one Cranelift function per BPF function;
//! bpf-to-bpf calls are native calls that pass only the registers the callee
//! reads (computed by a liveness analysis), and take the callee's r10 frame from
//! the shadow stack inline at the call site. Helper calls go through the shared
//! `extern "C"` trampolines with `status` tested after each call.
//!
//! The target is the host by default (via `cranelift-native`); [`JitConfig::target`]
//! selects another Cranelift target by triple (code for a foreign target cannot be
//! run, but compiling exercises the back end).

mod analysis;
mod calls;
mod compile;
mod runtime;
mod stack;
mod translate;

use std::mem::MaybeUninit;

use cordon_isa::Program;

use crate::context::{Region, RunContext, STATUS_RUNNING};
use crate::decode::{Decoded, MAX_FRAME, decode};
use crate::error::{ExecError, LoadError};
use crate::exec::{ExecOptions, Mode};
use crate::helpers::{HelperRegistry, HelperTable};
use crate::interp::MAX_CALL_FRAMES;
use crate::shadow_stack::{
    FrameArena, NATIVE_STACK_BYTES, PerProgramStacks, StackStrategy, round_frame, thread_arena,
};

/// Cranelift optimisation level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OptLevel {
    /// No optimisation (fastest compile).
    None,
    /// Optimise for speed.
    #[default]
    Speed,
    /// Optimise for speed and size.
    SpeedAndSize,
}

impl OptLevel {
    fn as_str(self) -> &'static str {
        match self {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
            OptLevel::SpeedAndSize => "speed_and_size",
        }
    }
}

/// Cranelift register allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RegAlloc {
    /// regalloc2's backtracking allocator: best code.
    #[default]
    Backtracking,
    /// regalloc2's single-pass allocator: faster compiles, much slower code
    /// (2-3x on loops).
    SinglePass,
}

/// Code generation settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JitConfig {
    pub opt_level: OptLevel,
    pub regalloc: RegAlloc,
    /// Run Cranelift's IR verifier (slower compiles; for tests).
    pub verify: bool,
    /// Target triple; `None` is the host. Code for a foreign target is compiled
    /// but cannot be run ([`JitExecutable::run`] refuses it).
    pub target: Option<String>,
}

/// Why a program could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum JitError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("JIT target: {0}")]
    Target(String),
    #[error("JIT code generation failed: {0}")]
    Codegen(String),
    #[error("JIT memory: {0}")]
    Memory(String),
    #[error("code compiled for target {0} cannot run on this host")]
    ForeignTarget(String),
}

/// Entry point of generated code: `(ctx, r10, r1, r2, r3, r4, r5) -> r0`.
type EntryFn = unsafe extern "C" fn(*mut RunContext<'_>, u64, u64, u64, u64, u64, u64) -> u64;

/// A program compiled to native code, bound to its helpers, ready to run.
///
/// `Send + Sync`: one executable may run on many threads at once (each thread
/// uses its own shadow stack).
pub struct JitExecutable {
    entry: EntryFn,
    code_size: usize,
    entry_frame: u64,
    foreign: Option<String>,
    helpers: HelperTable,
    mode: Mode,
    options: ExecOptions,
    per_program: PerProgramStacks,
    // Last: the code must outlive nothing above, but drop it last anyway.
    _code: compile::Code,
}

// SAFETY: `entry` points into immutable code owned by `_code`; everything else is
// Send + Sync (the helper table holds `Send + Sync` functions).
unsafe impl Send for JitExecutable {}
unsafe impl Sync for JitExecutable {}

impl std::fmt::Debug for JitExecutable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JitExecutable")
            .field("name", &self.options.name)
            .field("mode", &self.mode)
            .field("code_size", &self.code_size)
            .finish_non_exhaustive()
    }
}

/// Restores the frame arena when an invocation ends (also on panic).
struct ArenaGuard {
    arena: *mut FrameArena,
    sp: u64,
}

impl Drop for ArenaGuard {
    fn drop(&mut self) {
        // SAFETY: the arena outlives the invocation.
        unsafe {
            (*self.arena).sp = self.sp;
            (*self.arena).active -= 1;
        }
    }
}

impl JitExecutable {
    /// Compile an unverified program for checked execution.
    ///
    /// Uses [`OptLevel::None`]: checked code is dominated by its access checks,
    /// and Cranelift's optimiser costs several times the compile time on it
    /// (a deep chain of check blocks). [`JitExecutable::compile_with`] takes any
    /// configuration.
    pub fn checked(
        program: &Program,
        helpers: &HelperRegistry,
        options: ExecOptions,
    ) -> Result<JitExecutable, JitError> {
        let config = JitConfig {
            opt_level: OptLevel::None,
            ..JitConfig::default()
        };
        Self::compile(program, helpers, options, Mode::Checked, &config)
    }

    /// Compile a verified program for trusted execution (no run-time checks).
    ///
    /// # Safety
    /// Same contract as [`Executable::trusted`](crate::Executable::trusted): the
    /// program must have been accepted by a verifier guaranteeing that every
    /// memory access is valid, atomics are aligned, frames fit the given sizes,
    /// there are at most [`MAX_CALL_FRAMES`] frames and the program terminates.
    pub unsafe fn trusted(
        program: &Program,
        helpers: &HelperRegistry,
        options: ExecOptions,
    ) -> Result<JitExecutable, JitError> {
        Self::compile(
            program,
            helpers,
            options,
            Mode::Trusted,
            &JitConfig::default(),
        )
    }

    /// Compile with explicit code generation settings. `Mode::Trusted` has the
    /// safety contract of [`JitExecutable::trusted`] (it is only reachable through
    /// this `unsafe` function).
    ///
    /// # Safety
    /// When `mode` is [`Mode::Trusted`], see [`JitExecutable::trusted`].
    pub unsafe fn compile_with(
        program: &Program,
        helpers: &HelperRegistry,
        options: ExecOptions,
        mode: Mode,
        config: &JitConfig,
    ) -> Result<JitExecutable, JitError> {
        Self::compile(program, helpers, options, mode, config)
    }

    fn compile(
        program: &Program,
        helpers: &HelperRegistry,
        options: ExecOptions,
        mode: Mode,
        config: &JitConfig,
    ) -> Result<JitExecutable, JitError> {
        let table =
            HelperTable::for_program(helpers, &options.call_sites, program, mode == Mode::Trusted);
        let (decoded, frame_of) = prepare(program, &table, &options)?;
        let flavor = match mode {
            Mode::Checked => translate::Flavor::Checked,
            Mode::Trusted => translate::Flavor::Trusted,
        };
        // A panic inside the code generator (a bug, never expected) becomes an
        // error instead of unwinding into the caller.
        let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            compile::compile(
                program,
                &decoded.ops,
                &frame_of,
                flavor,
                options.instruction_budget,
                config,
                &table.sites,
            )
        }))
        .map_err(|p| {
            let msg = p
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| p.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            JitError::Codegen(format!("code generator panicked: {msg}"))
        })??;
        // SAFETY: the entry function was generated with exactly this signature
        // (`Variant::Main`, the target's default C calling convention).
        let entry = unsafe { std::mem::transmute::<*const u8, EntryFn>(compiled.entry) };
        Ok(JitExecutable {
            entry,
            code_size: compiled.code_size,
            entry_frame: decoded.entry_frame,
            foreign: config.target.clone(),
            helpers: table,
            mode,
            options,
            per_program: PerProgramStacks::default(),
            _code: compiled.code,
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

    /// Bytes of machine code generated.
    pub fn code_size(&self) -> usize {
        self.code_size
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

    /// Run with explicit r1–r5; `input` and `extra` as for
    /// [`Executable::run_with`](crate::Executable::run_with).
    #[inline]
    pub fn run_with(
        &self,
        args: [u64; 5],
        input: &mut [u8],
        extra: &[Region<'_>],
    ) -> Result<u64, ExecError> {
        let program = self.options.name.as_str();
        let stack_err = |source| ExecError::Stack {
            program: program.to_string(),
            source,
        };
        if let Some(t) = &self.foreign {
            return Err(ExecError::HelperFault {
                index: 0,
                id: -1,
                name: String::from("jit"),
                message: JitError::ForeignTarget(t.clone()).to_string(),
            });
        }
        match self.options.stack {
            StackStrategy::ThreadShadow => {
                let arena = thread_arena(self.options.shadow_stack_size).map_err(stack_err)?;
                self.run_on(arena, args, input, extra)
            }
            StackStrategy::PerProgram => {
                let arena = self
                    .per_program
                    .arena(self.options.shadow_stack_size)
                    .map_err(stack_err)?;
                self.run_on(arena, args, input, extra)
            }
            StackStrategy::Native => {
                let mut buf = MaybeUninit::<[u8; NATIVE_STACK_BYTES]>::uninit();
                let mut arena =
                    FrameArena::over(buf.as_mut_ptr() as u64, NATIVE_STACK_BYTES as u64);
                self.run_on(&mut arena, args, input, extra)
            }
        }
    }

    #[inline]
    fn run_on(
        &self,
        arena: *mut FrameArena,
        args: [u64; 5],
        input: &mut [u8],
        extra: &[Region<'_>],
    ) -> Result<u64, ExecError> {
        let size = self.entry_frame;
        // SAFETY: the arena is valid for the whole call (thread-local, program-owned
        // or a local of our caller) and only used through raw pointers.
        let (entry_sp, top) = unsafe {
            let a = &mut *arena;
            let entry_sp = a.sp;
            match a.alloc(size) {
                Some(top) => (entry_sp, top),
                None => {
                    return Err(ExecError::StackExhausted {
                        program: self.options.name.clone(),
                        index: 0,
                        needed: size,
                        available: a.available(),
                        capacity: a.capacity(),
                    });
                }
            }
        };
        // SAFETY: as above.
        unsafe { (*arena).active += 1 };
        let _guard = ArenaGuard {
            arena,
            sp: entry_sp,
        };
        let checked = self.mode == Mode::Checked;
        if checked {
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
            helpers: &self.helpers,
            program: &self.options.name,
            extra,
            grants: Vec::new(),
            fault: None,
        };
        // SAFETY: the code was generated for this program, mode and helper table;
        // trusted code is only reachable through the unsafe constructors.
        let r0 =
            unsafe { (self.entry)(&mut ctx, top, args[0], args[1], args[2], args[3], args[4]) };
        if ctx.status != STATUS_RUNNING {
            return ctx.take_outcome().map_err(|e| match e {
                ExecError::BudgetExhausted { index, .. } => ExecError::BudgetExhausted {
                    index,
                    budget: self.options.instruction_budget,
                },
                e => e,
            });
        }
        Ok(r0)
    }
}

/// The same load-time checks and pre-decoding as [`Executable`](crate::Executable):
/// helper and kfunc resolution, unresolved `lddw` pseudo sources, frame sizes.
fn prepare(
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

/// Run `bytecode` on the JIT the way the conformance suite expects (checked
/// mode, r1 = `mem`, r2 = its length, 512-byte frames, helper 5 = unwind): the
/// JIT counterpart of [`crate::conformance::run_conformance`].
pub fn run_conformance(bytecode: &[u8], mem: &mut [u8]) -> Result<u64, ConformanceError> {
    let program = Program::from_bytes(bytecode).map_err(LoadError::from)?;
    let exe = JitExecutable::checked(
        &program,
        &crate::conformance::conformance_helpers(),
        ExecOptions::named("conformance"),
    )?;
    Ok(exe.run(mem)?)
}

/// Errors of [`run_conformance`].
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error("program rejected: {0}")]
    Load(#[from] LoadError),
    #[error("program rejected: {0}")]
    Jit(#[from] JitError),
    #[error("program failed: {0}")]
    Exec(#[from] ExecError),
}
