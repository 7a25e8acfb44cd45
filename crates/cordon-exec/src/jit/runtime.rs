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

/// Why generated code ended a run (the low bits of a fault site).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FaultCode {
    /// aux = `access << 8 | size`; value = address.
    Access = 1,
    /// aux = size; value = address.
    Misaligned = 2,
    /// aux = instructions in the segment; value = budget left after taking
    /// them (negative).
    Budget = 3,
    CallDepth = 4,
    /// aux = bytes needed; value = bytes available.
    StackExhausted = 5,
    FellOff = 6,
}

/// A fault site as one constant: `code | index << 4 | aux << 25` (instruction
/// indices are below 2^20, see `cordon_isa::MAX_INSNS`).
pub(crate) fn site(code: FaultCode, index: usize, aux: u64) -> u64 {
    debug_assert!(index < 1 << 21 && aux < 1 << 39);
    code as u64 | (index as u64) << 4 | aux << 25
}

fn unsite(site: u64) -> (u64, usize, u64) {
    (site & 0xf, ((site >> 4) & 0x1f_ffff) as usize, site >> 25)
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
/// regions. `site` is an [`FaultCode::Access`] site. Returns 1 when the access
/// is allowed, 0 otherwise.
///
/// # Safety
/// `ctx` must point to the live run context of the current invocation.
pub(crate) unsafe extern "C" fn jit_check_extra(
    ctx: *mut RunContext<'_>,
    addr: u64,
    site: u64,
) -> u64 {
    // SAFETY: forwarded to the caller.
    let ctx = unsafe { &*ctx };
    let (_, _, kind) = unsite(site);
    let (_, size, write) = access_of(kind);
    ctx.in_extra_regions(addr, size, write) as u64
}

/// Record why generated code ends the run: sets `status` to [`STATUS_FAULT`] and
/// stores the error. The generated code returns right after. (The budget of a
/// [`ExecError::BudgetExhausted`] is filled in by the Rust entry point.)
///
/// # Safety
/// `ctx` must point to the live run context of the current invocation.
pub(crate) unsafe extern "C" fn jit_fault(ctx: *mut RunContext<'_>, site: u64, value: u64) {
    // SAFETY: forwarded to the caller.
    let ctx = unsafe { &mut *ctx };
    let (code, index, aux) = unsite(site);
    // Building the error allocates (program name); never unwind into JIT code.
    let err = catch_unwind(AssertUnwindSafe(|| match code {
        c if c == FaultCode::Access as u64 => {
            let (access, size, _) = access_of(aux);
            ExecError::MemoryAccess {
                index,
                access,
                addr: value,
                size: size as u32,
            }
        }
        c if c == FaultCode::Misaligned as u64 => ExecError::MisalignedAtomic {
            index,
            addr: value,
            size: aux as u32,
        },
        c if c == FaultCode::Budget as u64 => {
            // `value` = left - aux < 0: the interpreter runs `left` more
            // instructions of the segment and stops at the next one.
            let left = (value as i64).wrapping_add(aux as i64) as usize;
            ExecError::BudgetExhausted {
                index: index + left,
                budget: 0,
            }
        }
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
                needed: aux,
                available: value,
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
