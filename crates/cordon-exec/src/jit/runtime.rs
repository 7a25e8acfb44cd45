//! `extern "C"` functions generated code calls on its slow paths, and the
//! addresses of the shared helper trampolines.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::context::{RunContext, STATUS_FAULT, cordon_callx_trampoline, cordon_helper_trampoline};
use crate::error::{Access, ExecError};
use crate::interp::MAX_CALL_FRAMES;

/// Access kinds passed to [`jit_check_extra`] and [`jit_fault`] (`kind >> 8`).
pub(crate) const ACCESS_LOAD: u64 = 0;
pub(crate) const ACCESS_STORE: u64 = 1;
pub(crate) const ACCESS_ATOMIC: u64 = 2;

/// Why generated code ended a run (the `code` argument of [`jit_fault`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FaultCode {
    /// `a` = address, `b` = `access << 8 | size`.
    Access = 1,
    /// `a` = address, `b` = size.
    Misaligned = 2,
    /// `a` = total budget.
    Budget = 3,
    CallDepth = 4,
    /// `a` = bytes needed, `b` = bytes available.
    StackExhausted = 5,
    FellOff = 6,
}

pub(crate) fn helper_trampoline() -> usize {
    cordon_helper_trampoline as *const () as usize
}

pub(crate) fn callx_trampoline() -> usize {
    cordon_callx_trampoline as *const () as usize
}

fn access_of(kind: u64) -> (Access, u64, bool) {
    let size = kind & 0xff;
    match kind >> 8 {
        ACCESS_LOAD => (Access::Load, size, false),
        ACCESS_STORE => (Access::Store, size, true),
        _ => (Access::Atomic, size, true),
    }
}

/// Slow path of the checked-mode access check: host-given and helper-granted
/// regions. Returns 1 when the access is allowed, 0 otherwise.
///
/// # Safety
/// `ctx` must point to the live run context of the current invocation.
pub(crate) unsafe extern "C" fn jit_check_extra(
    ctx: *mut RunContext<'_>,
    addr: u64,
    kind: u64,
) -> u64 {
    // SAFETY: forwarded to the caller.
    let ctx = unsafe { &*ctx };
    let (_, size, write) = access_of(kind);
    ctx.in_extra_regions(addr, size, write) as u64
}

/// Record why generated code ends the run: sets `status` to [`STATUS_FAULT`] and
/// stores the error. The generated code returns right after.
///
/// # Safety
/// `ctx` must point to the live run context of the current invocation.
pub(crate) unsafe extern "C" fn jit_fault(
    ctx: *mut RunContext<'_>,
    code: u64,
    index: u64,
    a: u64,
    b: u64,
) {
    // SAFETY: forwarded to the caller.
    let ctx = unsafe { &mut *ctx };
    let index = index as usize;
    // Building the error allocates (program name); never unwind into JIT code.
    let err = catch_unwind(AssertUnwindSafe(|| match code {
        c if c == FaultCode::Access as u64 => {
            let (access, size, _) = access_of(b);
            ExecError::MemoryAccess {
                index,
                access,
                addr: a,
                size: size as u32,
            }
        }
        c if c == FaultCode::Misaligned as u64 => ExecError::MisalignedAtomic {
            index,
            addr: a,
            size: b as u32,
        },
        c if c == FaultCode::Budget as u64 => ExecError::BudgetExhausted { index, budget: a },
        c if c == FaultCode::CallDepth as u64 => ExecError::CallDepth {
            index,
            max: MAX_CALL_FRAMES,
        },
        c if c == FaultCode::StackExhausted as u64 => {
            // SAFETY: the arena outlives the invocation.
            let capacity = unsafe { (*ctx.arena).capacity() };
            ExecError::StackExhausted {
                program: ctx.program.to_string(),
                index,
                needed: a,
                available: b,
                capacity,
            }
        }
        _ => ExecError::FellOffEnd { index },
    }));
    ctx.status = STATUS_FAULT;
    ctx.fault = err.ok();
}

/// Zero a freshly allocated frame (checked mode: unverified programs may read
/// stack they never wrote, and must never see stale data).
///
/// # Safety
/// `[ptr, ptr + len)` must be a frame just taken from the invocation's arena.
pub(crate) unsafe extern "C" fn jit_zero(ptr: u64, len: u64) {
    // SAFETY: forwarded to the caller.
    unsafe { std::ptr::write_bytes(ptr as *mut u8, 0, len as usize) };
}
