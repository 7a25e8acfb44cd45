//! The Cranelift JIT: the same program semantics as the interpreter, compiled to
//! native code.
//!
//! [`JitExecutable`] mirrors [`Executable`](crate::Executable): the same
//! [`ExecOptions`], helpers ([`HelperRegistry`]), run context ([`RunContext`]),
//! shadow stack ([`StackStrategy`](crate::StackStrategy)) and errors
//! ([`ExecError`]), in the same two modes:
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

use cordon_isa::Program;

use crate::context::{Region, RunContext, STATUS_RUNNING};
use crate::error::{ExecError, LoadError};
use crate::exec::{Entry, ExecOptions, Mode, prepare};
use crate::helpers::{HelperRegistry, HelperTable};
use crate::shadow_stack::PerProgramStacks;

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
    /// there are at most [`MAX_CALL_FRAMES`](crate::MAX_CALL_FRAMES) frames and
    /// the program terminates.
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
    /// ([`StackStrategy::PerProgram`](crate::StackStrategy::PerProgram) only, once
    /// it has run on this thread).
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
        if let Some(t) = &self.foreign {
            return Err(foreign_target(t));
        }
        let entry = Entry {
            options: &self.options,
            per_program: &self.per_program,
            helpers: &self.helpers,
            mode: self.mode,
            entry_frame: self.entry_frame,
        };
        let code = self.entry;
        entry.enter(input, extra, |ctx, top| {
            // SAFETY: the code was generated for this program, mode and helper
            // table; trusted code is only reachable through the unsafe
            // constructors.
            let r0 = unsafe { code(ctx, top, args[0], args[1], args[2], args[3], args[4]) };
            if ctx.status != STATUS_RUNNING {
                return self.outcome(ctx);
            }
            Ok(r0)
        })
    }

    /// The result of a run that a helper stopped or that faulted (the budget
    /// error gets the configured budget; generated code does not know it).
    #[cold]
    #[inline(never)]
    fn outcome(&self, ctx: &mut RunContext<'_>) -> Result<u64, ExecError> {
        ctx.take_outcome().map_err(|e| match e {
            ExecError::BudgetExhausted { index, .. } => ExecError::BudgetExhausted {
                index,
                budget: self.options.instruction_budget,
            },
            e => e,
        })
    }
}

/// The error of running code compiled for another target.
#[cold]
fn foreign_target(triple: &str) -> ExecError {
    ExecError::HelperFault {
        index: 0,
        id: -1,
        name: String::from("jit"),
        message: JitError::ForeignTarget(triple.to_string()).to_string(),
    }
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
