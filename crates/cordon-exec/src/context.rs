//! The per-invocation run context shared by every engine, and memory regions.
//!
//! [`RunContext`] is `#[repr(C)]`; its first fields have fixed offsets (the
//! `OFFSET_*` constants) so JIT-compiled code can read and write them through a
//! pointer. The remaining fields are Rust-only and reached through the
//! `extern "C"` trampolines [`cordon_helper_trampoline`] and
//! [`cordon_callx_trampoline`].
//!
//! Protocol for a helper call from generated code:
//! 1. store the call's instruction index in `call_index`;
//! 2. call the trampoline with `(ctx, slot or id, r1, r2, r3, r4, r5)`; it returns r0;
//! 3. load `status`: non-zero means the program must end now — jump to the common
//!    exit path (the frame arena is reset by the Rust entry point, not by JIT code);
//!    the Rust side then turns `status` into the run's result
//!    ([`STATUS_STOPPED`]: `Ok(stop_value)`, [`STATUS_FAULT`]: the stored error).

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::ExecError;
use crate::helpers::{Abort, HelperTable};
use crate::shadow_stack::FrameArena;

/// `status`: the program is running.
pub const STATUS_RUNNING: u64 = 0;
/// `status`: a helper stopped the program; `stop_value` is its r0.
pub const STATUS_STOPPED: u64 = 1;
/// `status`: a helper faulted (or panicked); the error is stored in the context.
pub const STATUS_FAULT: u64 = 2;

/// A memory region an invocation may access in checked mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region<'a> {
    start: u64,
    len: u64,
    writable: bool,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl<'a> Region<'a> {
    /// A read-only region over a slice.
    pub fn readonly(mem: &'a [u8]) -> Region<'a> {
        Region {
            start: mem.as_ptr() as u64,
            len: mem.len() as u64,
            writable: false,
            _borrow: PhantomData,
        }
    }

    /// A read-write region over a slice.
    pub fn writable(mem: &'a mut [u8]) -> Region<'a> {
        Region {
            start: mem.as_mut_ptr() as u64,
            len: mem.len() as u64,
            writable: true,
            _borrow: PhantomData,
        }
    }

    /// A region from a raw address range.
    ///
    /// # Safety
    /// `[start, start + len)` must be valid for reads (and writes if `writable`) for
    /// as long as any invocation given this region runs, and must not be accessed
    /// through Rust references in a way that conflicts with the program's accesses.
    pub unsafe fn from_raw(start: u64, len: u64, writable: bool) -> Region<'static> {
        Region {
            start,
            len,
            writable,
            _borrow: PhantomData,
        }
    }

    pub fn start(&self) -> u64 {
        self.start
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    #[inline(always)]
    pub(crate) fn contains(&self, addr: u64, size: u64, write: bool) -> bool {
        (!write || self.writable)
            && addr.wrapping_sub(self.start) < self.len
            && self.len - addr.wrapping_sub(self.start) >= size
    }
}

/// Everything one invocation needs besides the registers: frame arena, input,
/// helper table, regions, and the stop/fault status.
///
/// Helpers receive `&mut RunContext` and use its methods; engines use the raw fields.
#[repr(C)]
pub struct RunContext<'a> {
    // ---- fixed layout for generated code (all 8 bytes) ----
    /// [`STATUS_RUNNING`], [`STATUS_STOPPED`] or [`STATUS_FAULT`].
    pub(crate) status: u64,
    /// r0 of a stopped program.
    pub(crate) stop_value: u64,
    /// The frame arena frames are taken from (thread, program or native stack).
    pub(crate) arena: *mut FrameArena,
    /// Input memory (r1 in the conformance calling convention; LD_ABS/LD_IND packet).
    pub(crate) input_ptr: u64,
    pub(crate) input_len: u64,
    /// One past the top of this invocation's first frame; live frames are
    /// `[arena.sp, stack_hi)`.
    pub(crate) stack_hi: u64,
    /// Instruction index of the call being made (for error messages).
    pub(crate) call_index: u64,
    /// Non-zero in checked mode.
    pub(crate) checked: u64,
    // ---- Rust only ----
    pub(crate) helpers: &'a HelperTable,
    pub(crate) program: &'a str,
    pub(crate) extra: &'a [Region<'a>],
    pub(crate) grants: Vec<Region<'static>>,
    pub(crate) fault: Option<ExecError>,
}

impl<'a> RunContext<'a> {
    pub const OFFSET_STATUS: usize = std::mem::offset_of!(RunContext<'static>, status);
    pub const OFFSET_STOP_VALUE: usize = std::mem::offset_of!(RunContext<'static>, stop_value);
    pub const OFFSET_ARENA: usize = std::mem::offset_of!(RunContext<'static>, arena);
    pub const OFFSET_INPUT_PTR: usize = std::mem::offset_of!(RunContext<'static>, input_ptr);
    pub const OFFSET_INPUT_LEN: usize = std::mem::offset_of!(RunContext<'static>, input_len);
    pub const OFFSET_STACK_HI: usize = std::mem::offset_of!(RunContext<'static>, stack_hi);
    pub const OFFSET_CALL_INDEX: usize = std::mem::offset_of!(RunContext<'static>, call_index);
    pub const OFFSET_CHECKED: usize = std::mem::offset_of!(RunContext<'static>, checked);

    /// Name of the running program.
    pub fn program_name(&self) -> &str {
        self.program
    }

    /// Instruction index of the current helper call.
    pub fn call_index(&self) -> usize {
        self.call_index as usize
    }

    /// Whether the program runs in checked mode.
    pub fn is_checked(&self) -> bool {
        self.checked != 0
    }

    /// The input window (address, length): the packet `LD_ABS` / `LD_IND`
    /// read, and an accessible region in checked mode.
    pub fn input_window(&self) -> (u64, u64) {
        (self.input_ptr, self.input_len)
    }

    /// Moves the input window, e.g. after a helper reshaped the packet:
    /// later `LD_ABS` / `LD_IND` of this invocation read `[ptr, ptr + len)`
    /// (both engines reload the window after every helper call).
    ///
    /// # Safety
    /// The range must stay valid for reads and writes until the invocation
    /// ends, with no conflicting Rust references.
    pub unsafe fn set_input_window(&mut self, ptr: u64, len: u64) {
        self.input_ptr = ptr;
        self.input_len = len;
    }

    /// Lowest address of the live stack frames of this invocation.
    pub fn stack_low(&self) -> u64 {
        // SAFETY: the arena outlives the invocation.
        unsafe { (*self.arena).sp }
    }

    /// Allow the program to access `[start, start + len)` for the rest of this
    /// invocation (e.g. a map value returned by a lookup helper).
    ///
    /// # Safety
    /// The range must stay valid for reads (and writes if `writable`) until the
    /// invocation ends, with no conflicting Rust references.
    pub unsafe fn grant(&mut self, start: u64, len: u64, writable: bool) {
        // SAFETY: forwarded to the caller.
        self.grants
            .push(unsafe { Region::from_raw(start, len, writable) });
    }

    /// Whether this invocation may access `size` bytes at `addr`.
    pub fn may_access(&self, addr: u64, size: u64, write: bool) -> bool {
        let stack = Region {
            start: self.stack_low(),
            len: self.stack_hi - self.stack_low(),
            writable: true,
            _borrow: PhantomData,
        };
        let input = Region {
            start: self.input_ptr,
            len: self.input_len,
            writable: true,
            _borrow: PhantomData,
        };
        stack.contains(addr, size, write)
            || input.contains(addr, size, write)
            || self.in_extra_regions(addr, size, write)
    }

    /// The regions given by the host or granted by helpers (the slow path of the
    /// checked-mode access check).
    #[inline(never)]
    pub(crate) fn in_extra_regions(&self, addr: u64, size: u64, write: bool) -> bool {
        self.extra.iter().any(|r| r.contains(addr, size, write))
            || self.grants.iter().any(|r| r.contains(addr, size, write))
    }

    /// Borrow `len` bytes of program-visible memory at `addr` for reading.
    pub fn read_bytes(&self, addr: u64, len: u64) -> Result<&[u8], Abort> {
        if !self.may_access(addr, len, false) {
            return Err(Abort::Fault(format!(
                "read of {len} bytes at {addr:#x} is outside the program's memory"
            )));
        }
        // SAFETY: the range lies in a region valid for this invocation.
        Ok(unsafe { std::slice::from_raw_parts(addr as *const u8, len as usize) })
    }

    /// Copy `data` into program-visible memory at `addr`.
    pub fn write_bytes(&mut self, addr: u64, data: &[u8]) -> Result<(), Abort> {
        if !self.may_access(addr, data.len() as u64, true) {
            return Err(Abort::Fault(format!(
                "write of {} bytes at {addr:#x} is outside the program's writable memory",
                data.len()
            )));
        }
        // SAFETY: the range lies in a writable region valid for this invocation.
        unsafe { std::ptr::copy(data.as_ptr(), addr as *mut u8, data.len()) };
        Ok(())
    }

    /// Call helper table entry `slot`. On a stop or fault, sets `status` (and
    /// `stop_value` or `fault`) and returns 0; the engine must then end the run.
    #[inline]
    pub(crate) fn invoke_slot(&mut self, slot: usize, args: [u64; 5]) -> u64 {
        let helpers = self.helpers;
        let h = &helpers.slots[slot];
        let result = catch_unwind(AssertUnwindSafe(|| h.call(self, args)));
        match result {
            Ok(Ok(v)) => v,
            Ok(Err(Abort::Stop(v))) => {
                self.status = STATUS_STOPPED;
                self.stop_value = v;
                0
            }
            Ok(Err(Abort::Fault(message))) => {
                self.status = STATUS_FAULT;
                self.fault = Some(ExecError::HelperFault {
                    index: self.call_index as usize,
                    id: h.id() as i64,
                    name: h.name().to_string(),
                    message,
                });
                0
            }
            Err(_) => {
                self.status = STATUS_FAULT;
                self.fault = Some(ExecError::HelperPanic {
                    index: self.call_index as usize,
                    id: h.id() as i64,
                    name: h.name().to_string(),
                });
                0
            }
        }
    }

    /// `callx`: the register holds a helper id.
    #[inline]
    pub(crate) fn invoke_id(&mut self, id: u64, args: [u64; 5]) -> u64 {
        match self.helpers.helper_slot(id) {
            Some(slot) => self.invoke_slot(slot, args),
            None => {
                self.status = STATUS_FAULT;
                self.fault = Some(ExecError::UnknownHelper {
                    index: self.call_index as usize,
                    id,
                });
                0
            }
        }
    }

    /// Turn a non-running status into the run's result.
    pub(crate) fn take_outcome(&mut self) -> Result<u64, ExecError> {
        match self.status {
            STATUS_STOPPED => Ok(self.stop_value),
            _ => Err(self.fault.take().unwrap_or(ExecError::HelperFault {
                index: self.call_index as usize,
                id: -1,
                name: String::from("?"),
                message: String::from("run ended with a fault status but no error recorded"),
            })),
        }
    }
}

/// Helper call entry point for generated code: calls helper-table entry `slot`
/// with r1–r5 and returns r0. When it returns, the caller must check `status`.
///
/// # Safety
/// `ctx` must point to the live `RunContext` of the current invocation and
/// `slot` must be a slot index the loader resolved for this executable.
pub unsafe extern "C" fn cordon_helper_trampoline(
    ctx: *mut RunContext<'_>,
    slot: u64,
    r1: u64,
    r2: u64,
    r3: u64,
    r4: u64,
    r5: u64,
) -> u64 {
    // SAFETY: forwarded to the caller.
    let ctx = unsafe { &mut *ctx };
    ctx.invoke_slot(slot as usize, [r1, r2, r3, r4, r5])
}

/// `callx` entry point for generated code: `id` is the helper id held by the
/// register. An unknown id sets [`STATUS_FAULT`].
///
/// # Safety
/// `ctx` must point to the live `RunContext` of the current invocation.
pub unsafe extern "C" fn cordon_callx_trampoline(
    ctx: *mut RunContext<'_>,
    id: u64,
    r1: u64,
    r2: u64,
    r3: u64,
    r4: u64,
    r5: u64,
) -> u64 {
    // SAFETY: forwarded to the caller.
    let ctx = unsafe { &mut *ctx };
    ctx.invoke_id(id, [r1, r2, r3, r4, r5])
}

/// Linux's `SKF_NET_OFF`: `LD_ABS` / `LD_IND` offsets in
/// `[SKF_NET_OFF, 0)` read relative to the skb's network header.
pub const SKF_NET_OFF: i32 = -0x10_0000;
/// Linux's `SKF_LL_OFF`: offsets in `[SKF_LL_OFF, SKF_NET_OFF)` read
/// relative to the MAC header; lower offsets always fail.
pub const SKF_LL_OFF: i32 = -0x20_0000;

/// Where negative `LD_ABS` / `LD_IND` offsets point for the packet the
/// current thread is running a program on (Linux's
/// `bpf_internal_load_pointer_neg_helper`): a load of `n` bytes succeeds when
/// it lies in `[head, end of the input window)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketHeaders {
    /// Start of the packet buffer (`skb->head`).
    pub head: u64,
    /// The MAC header, `None` when not set (`SKF_LL_OFF` loads then fail).
    pub mac: Option<u64>,
    /// The network header.
    pub network: u64,
}

thread_local! {
    static PACKET_HEADERS: std::cell::Cell<Option<PacketHeaders>> =
        const { std::cell::Cell::new(None) };
}

/// Sets the header positions negative `LD_ABS` / `LD_IND` offsets of
/// programs run on this thread read from (`None`: every negative offset
/// ends the program with 0, the default); returns the previous setting so
/// nested runs can restore it.
///
/// # Safety
/// `[head, end of the input window)` of every invocation run on this thread
/// until the next call must be valid for reads; the caller must reset the
/// setting (e.g. to the returned value) before that memory goes away.
pub unsafe fn set_packet_headers(headers: Option<PacketHeaders>) -> Option<PacketHeaders> {
    PACKET_HEADERS.with(|h| h.replace(headers))
}

/// The current thread's setting of [`set_packet_headers`].
pub fn packet_headers() -> Option<PacketHeaders> {
    PACKET_HEADERS.with(|h| h.get())
}

impl RunContext<'_> {
    /// A negative-offset `LD_ABS` / `LD_IND` of `size` (1, 2 or 4) bytes at
    /// `off`, as Linux: the big-endian value, or `None` when the program must
    /// end with 0 (no headers set, offset below `SKF_LL_OFF`, MAC header
    /// unset, or bytes outside `[head, end of the input window)`).
    #[cold]
    #[inline(never)]
    pub fn load_negative(&self, off: i32, size: u64) -> Option<u32> {
        let h = packet_headers()?;
        let base = if off >= SKF_NET_OFF {
            h.network.checked_add((off - SKF_NET_OFF) as u64)?
        } else if off >= SKF_LL_OFF {
            h.mac?.checked_add((off - SKF_LL_OFF) as u64)?
        } else {
            return None;
        };
        let tail = self.input_ptr.checked_add(self.input_len)?;
        if base < h.head || base.checked_add(size)? > tail || !matches!(size, 1 | 2 | 4) {
            return None;
        }
        let mut b = [0u8; 4];
        // SAFETY: `[base, base + size)` lies in `[head, tail)`, valid for reads
        // by the contract of `set_packet_headers`.
        unsafe { std::ptr::copy_nonoverlapping(base as *const u8, b.as_mut_ptr(), size as usize) };
        Some(
            b[..size as usize]
                .iter()
                .fold(0u32, |v, &x| (v << 8) | u32::from(x)),
        )
    }
}

/// [`RunContext::load_negative`] for generated code: the value, or
/// `u64::MAX` when the program must end with 0.
///
/// # Safety
/// `ctx` must point to the live `RunContext` of the current invocation.
pub(crate) unsafe extern "C" fn cordon_load_negative(
    ctx: *const RunContext<'_>,
    off: u64,
    size: u64,
) -> u64 {
    // SAFETY: forwarded to the caller.
    let ctx = unsafe { &*ctx };
    ctx.load_negative(off as u32 as i32, size)
        .map_or(u64::MAX, u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::HelperRegistry;

    /// Drive the trampolines the way generated code will: through `extern "C"`
    /// function pointers, then inspect `status` at its published offset.
    #[test]
    fn trampolines_follow_the_status_protocol() {
        let mut reg = HelperRegistry::new();
        reg.register(1, "add", |_, a| Ok(a[0] + a[4]));
        reg.register(4, "stop", |_, a| Err(Abort::Stop(a[1])));
        reg.register(6, "fail", |_, _| Err(Abort::Fault("nope".into())));
        let table = HelperTable::from_registry(&reg);
        let mut buf = [0u8; 1024];
        let mut arena = FrameArena::over(buf.as_mut_ptr() as u64, 1024);
        let fresh = |arena: *mut FrameArena| RunContext {
            status: STATUS_RUNNING,
            stop_value: 0,
            arena,
            input_ptr: 0,
            input_len: 0,
            stack_hi: 0,
            call_index: 0,
            checked: 1,
            helpers: &table,
            program: "t",
            extra: &[],
            grants: Vec::new(),
            fault: None,
        };
        type Tramp = unsafe extern "C" fn(*mut RunContext<'_>, u64, u64, u64, u64, u64, u64) -> u64;
        let by_slot: Tramp = cordon_helper_trampoline;
        let by_id: Tramp = cordon_callx_trampoline;
        let status_of = |ctx: &RunContext<'_>| unsafe {
            *((ctx as *const RunContext<'_> as *const u8).add(RunContext::OFFSET_STATUS)
                as *const u64)
        };

        let mut ctx = fresh(&mut arena);
        // Slots are in id order: 1 -> 0, 4 -> 1, 6 -> 2.
        assert_eq!(unsafe { by_slot(&mut ctx, 0, 40, 0, 0, 0, 2) }, 42);
        assert_eq!(status_of(&ctx), STATUS_RUNNING);
        assert_eq!(unsafe { by_id(&mut ctx, 1, 1, 0, 0, 0, 1) }, 2);

        assert_eq!(unsafe { by_id(&mut ctx, 4, 0, 77, 0, 0, 0) }, 0);
        assert_eq!(status_of(&ctx), STATUS_STOPPED);
        assert_eq!(ctx.stop_value, 77);
        assert_eq!(ctx.take_outcome().unwrap(), 77);

        let mut ctx = fresh(&mut arena);
        ctx.call_index = 12;
        unsafe { by_slot(&mut ctx, 2, 0, 0, 0, 0, 0) };
        assert_eq!(status_of(&ctx), STATUS_FAULT);
        let e = ctx.take_outcome().unwrap_err();
        assert_eq!(
            e.to_string(),
            "instruction 12: helper 6 (fail) failed: nope"
        );

        let mut ctx = fresh(&mut arena);
        ctx.call_index = 3;
        unsafe { by_id(&mut ctx, 5, 0, 0, 0, 0, 0) };
        assert_eq!(status_of(&ctx), STATUS_FAULT);
        assert!(matches!(
            ctx.take_outcome(),
            Err(ExecError::UnknownHelper { index: 3, id: 5 })
        ));
    }

    #[test]
    fn layout_offsets_are_stable() {
        assert_eq!(RunContext::OFFSET_STATUS, 0);
        assert_eq!(RunContext::OFFSET_STOP_VALUE, 8);
        assert_eq!(RunContext::OFFSET_ARENA, 16);
        assert_eq!(RunContext::OFFSET_INPUT_PTR, 24);
        assert_eq!(RunContext::OFFSET_INPUT_LEN, 32);
        assert_eq!(RunContext::OFFSET_STACK_HI, 40);
        assert_eq!(RunContext::OFFSET_CALL_INDEX, 48);
        assert_eq!(RunContext::OFFSET_CHECKED, 56);
        assert_eq!(FrameArena::OFFSET_SP, 0);
        assert_eq!(FrameArena::OFFSET_LIMIT, 8);
        assert_eq!(FrameArena::OFFSET_TOP, 16);
    }

    #[test]
    fn region_bounds() {
        let r = unsafe { Region::from_raw(100, 10, false) };
        assert!(r.contains(100, 10, false));
        assert!(r.contains(109, 1, false));
        assert!(!r.contains(109, 2, false));
        assert!(!r.contains(99, 1, false));
        assert!(!r.contains(100, 1, true));
        assert!(!r.contains(u64::MAX, 2, false));
        assert!(!r.contains(100, u64::MAX, false));
    }
}
