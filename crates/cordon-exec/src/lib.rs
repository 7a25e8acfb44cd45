//! Cordon's execution core: the interpreter (checked and trusted modes), the
//! shadow stack, the helper-call interface and the conformance plugin logic.
//!
//! # Design
//!
//! **Loading.** A validated [`cordon_isa::Program`] is pre-decoded once into a
//! dense array of 16-byte ops ([`decode`]): one internal opcode per
//! (operation, width, imm/reg) combination, immediates pre-extended, shift
//! immediates pre-masked, jump/call targets absolute, helper calls resolved to a
//! slot of the executable's helper table, calls carrying their callee's frame
//! size. `lddw` must already carry a plain 64-bit immediate (pseudo sources are
//! resolved by a loader; any other pseudo source is a [`LoadError::UnresolvedPseudo`]).
//!
//! **Running.** [`Executable::run`] / [`Executable::run_with`] allocate nothing
//! (unless a helper grants memory): the run context lives on the native stack,
//! registers in a local array, call frames in a fixed local array (at most
//! [`MAX_CALL_FRAMES`] frames). [`Mode::Checked`] (for unverified bytecode) checks
//! every load, store and atomic against the regions the invocation may touch —
//! its live stack frames, the input, host-given regions and regions helpers
//! granted — and enforces an instruction budget; a violation ends the run with an
//! [`ExecError`] naming the instruction index, address and size. [`Mode::Trusted`]
//! (an `unsafe` constructor for verified programs) has none of these checks.
//!
//! **Stack (mechanism 1).** r10 frames never live on the native stack by default:
//! they are bump-allocated from a [`shadow_stack::FrameArena`] over an mmap'd,
//! guard-paged [`shadow_stack::ShadowStack`] — one per thread by default, one per
//! program per thread, or (baseline) a local array; see [`shadow_stack`].
//!
//! **Helpers.** [`HelperRegistry`] maps ids (and kfunc BTF ids) to named
//! functions `Fn(&mut RunContext, [u64; 5]) -> Result<u64, Abort>`. A helper may
//! return a value, stop the program with a value ([`Abort::Stop`]), fault
//! ([`Abort::Fault`]), or grant memory ([`RunContext::grant`]). A helper may run
//! another program on the same thread; its frames come from the same shadow
//! stack, below the caller's.
//!
//! # For the JIT
//!
//! * [`RunContext`] is `#[repr(C)]`; the fields generated code needs have
//!   `RunContext::OFFSET_*` constants: `status`, `stop_value`, `arena` (pointer
//!   to a `#[repr(C)]` [`shadow_stack::FrameArena`] with `sp`/`limit`/`top`, so
//!   frame allocation can be inlined: `if sp - limit < size → exhausted; r10 = sp;
//!   sp -= size`, and release is `sp += size`), `input_ptr`/`input_len`
//!   (LD_ABS/LD_IND), `stack_hi`, `call_index`, `checked`.
//! * Helpers are called through `extern "C"` trampolines
//!   ([`cordon_helper_trampoline`] by slot, [`cordon_callx_trampoline`] by id),
//!   which catch panics. After every call the code must test `status != 0`
//!   ([`STATUS_STOPPED`], [`STATUS_FAULT`]) and, if set, return at once; the Rust
//!   entry point turns the status into the result and resets the arena (so JIT
//!   code need not unwind frames itself).
//! * The slot of a helper call is the `imm` of the pre-decoded op; the JIT can
//!   compile from the same pre-decoded form ([`decode::Op`]).
//! * Call sites a loader specialised ([`ExecOptions::call_sites`], see
//!   [`specialise`]) skip all of this in trusted mode: array lookups are
//!   inline, direct functions are called without the trampoline.

pub mod conformance;
pub mod context;
pub mod decode;
pub mod error;
pub mod exec;
pub mod helpers;
mod interp;
pub mod jit;
pub mod shadow_stack;
pub mod specialise;

pub use context::{
    Region, RunContext, STATUS_FAULT, STATUS_RUNNING, STATUS_STOPPED, cordon_callx_trampoline,
    cordon_helper_trampoline,
};
pub use error::{Access, ExecError, LoadError};
pub use exec::{DEFAULT_FRAME_SIZE, DEFAULT_INSTRUCTION_BUDGET, ExecOptions, Executable, Mode};
pub use helpers::{Abort, Helper, HelperFn, HelperRegistry, HelperResult};
pub use interp::MAX_CALL_FRAMES;
pub use shadow_stack::StackStrategy;
pub use specialise::{CallSiteError, CallSites, CallSitesBuilder, CallSpec, DirectFn};
