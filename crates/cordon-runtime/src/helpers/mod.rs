//! Helper implementations by Linux helper id, bound through the shared
//! prototype registry of `cordon-verifier` ([`cordon_verifier::Registry`]):
//! the runtime implements a helper only under an id the registry has a
//! prototype for, so the verifier and the runtime agree on every signature.
//!
//! Every helper works in both modes. In checked mode (unverified programs)
//! pointers the program passes are checked against the memory the invocation
//! may access, map pointers against the program's maps, and memory handed out
//! (map values) is granted to the program.

pub(crate) mod for_each;
mod kfuncs;
mod maps;
mod net;
mod printk;
mod redirect;
mod skb;
mod xdp;

use std::sync::Arc;

use cordon_exec::{Abort, HelperResult, RunContext};
use cordon_verifier::proto;

use crate::maps::Map;
use crate::state::with_inv;

pub use kfuncs::{KfuncFn, TestObjects, builtin_kfuncs};
pub(crate) use maps::call_sites;
pub use net::{csum_diff, csum_fold, csum_replace};
pub use printk::format_trace_printk;
pub use skb::SKB_MAX_LEN;
pub(crate) use skb::SkbState;
pub use xdp::kfuncs as xdp_kfuncs;

/// A helper implementation.
pub type HelperImpl = Arc<dyn Fn(&mut RunContext<'_>, [u64; 5]) -> HelperResult + Send + Sync>;

/// Ids of helpers whose prototypes the verifier's registry gained after the
/// first set (kept here under their historical module name).
pub mod extra_ids {
    pub use cordon_verifier::proto::helper::{
        CSUM_UPDATE, GET_NUMA_NODE_ID, JIFFIES64, KTIME_GET_COARSE_NS, KTIME_GET_TAI_NS,
        MAP_LOOKUP_PERCPU_ELEM, SET_HASH, SET_HASH_INVALID, SKB_PULL_DATA, XDP_GET_BUFF_LEN,
        XDP_LOAD_BYTES, XDP_STORE_BYTES,
    };
}

/// Runtime-internal helper ids used by rewritten code (never visible to the
/// verifier; above every Linux helper id).
pub mod internal {
    /// `r0 = 1` if the tail call happened (result stored), `0` if it fell through.
    pub const TAIL_CALL_TRY: u32 = 0x7f00_0001;
    /// `r0 =` result of the tail call just made.
    pub const TAIL_CALL_RESULT: u32 = 0x7f00_0002;
    /// Ends the whole program with `r1` as its return value (`bpf_throw` after
    /// the exception callback).
    pub const STOP: u32 = 0x7f00_0003;
    /// Faults: `bpf_loop` got a callback that is not a function of the program.
    pub const BAD_CALLBACK: u32 = 0x7f00_0004;
    /// `bpf_for_each_map_elem` cursor step: `r0 = key` of the next element of
    /// map `r1` (value at cursor `r2` + 16), 0 when done.
    pub const FOR_EACH_NEXT: u32 = 0x7f00_0005;
}

fn h<F>(f: F) -> HelperImpl
where
    F: Fn(&mut RunContext<'_>, [u64; 5]) -> HelperResult + Send + Sync + 'static,
{
    Arc::new(f)
}

/// Implementations of every helper Cordon provides, by Linux id.
pub fn builtin_helpers() -> Vec<(u32, HelperImpl)> {
    use proto::helper as id;
    let mut v: Vec<(u32, HelperImpl)> = maps::helpers();
    v.extend(net::helpers());
    v.extend(redirect::helpers());
    v.extend(xdp::helpers());
    v.extend(skb::helpers());
    v.push((id::TRACE_PRINTK, h(printk::trace_printk)));
    // The same bodies the call-site specialisation calls directly.
    v.push((id::KTIME_GET_NS, h(|_, _| Ok(maps::fast_ktime_get_ns()))));
    v.push((
        id::KTIME_GET_BOOT_NS,
        h(|_, _| Ok(clock_ns(libc::CLOCK_BOOTTIME))),
    ));
    v.push((
        id::GET_PRANDOM_U32,
        h(|_, _| Ok(maps::fast_get_prandom_u32())),
    ));
    v.push((
        id::GET_SMP_PROCESSOR_ID,
        h(|_, _| Ok(maps::fast_get_smp_processor_id())),
    ));
    v.push((extra_ids::GET_NUMA_NODE_ID, h(|_, _| Ok(0))));
    v.push((
        extra_ids::KTIME_GET_COARSE_NS,
        h(|_, _| Ok(clock_ns(libc::CLOCK_MONOTONIC_COARSE))),
    ));
    v.push((
        extra_ids::KTIME_GET_TAI_NS,
        h(|_, _| Ok(clock_ns(libc::CLOCK_TAI))),
    ));
    v.push((
        extra_ids::JIFFIES64,
        // CONFIG_HZ=1000 equivalent: jiffies advance once per millisecond.
        h(|_, _| Ok(clock_ns(libc::CLOCK_MONOTONIC) / 1_000_000)),
    ));
    v.push((id::SPIN_LOCK, h(spin_lock)));
    v.push((id::SPIN_UNLOCK, h(spin_unlock)));
    v
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

thread_local! {
    static RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `bpf_get_prandom_u32`: a per-thread xorshift64* generator seeded from the clock
/// and the thread (like Linux's per-CPU prandom state).
fn prandom_u32() -> u32 {
    RNG.with(|s| {
        let mut x = s.get();
        if x == 0 {
            let local = 0u8;
            x = clock_ns(libc::CLOCK_MONOTONIC) ^ ((&local as *const u8 as u64) << 17) | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    })
}

/// Checks that the program may access `len` bytes at `addr` (checked mode only).
#[inline]
pub(crate) fn check_mem(
    ctx: &RunContext<'_>,
    addr: u64,
    len: u64,
    write: bool,
) -> Result<(), Abort> {
    if ctx.is_checked() && len != 0 && !ctx.may_access(addr, len, write) {
        return Err(Abort::Fault(format!(
            "{} of {len} bytes at {addr:#x} is outside the program's {}memory",
            if write { "write" } else { "read" },
            if write { "writable " } else { "" }
        )));
    }
    Ok(())
}

/// The map behind a program-visible map pointer (checked against the program's
/// maps in checked mode).
#[inline]
pub(crate) fn map_arg<'a>(ctx: &RunContext<'_>, ptr: u64) -> Result<&'a Map, Abort> {
    if crate::extmaps::is_ext_ptr(ptr) {
        return Err(Abort::Fault(format!(
            "map at {ptr:#x} ({}) does not support this helper",
            ext_arg(ctx, ptr)?.map_or("?", |m| m.name())
        )));
    }
    if ctx.is_checked() {
        let known = with_inv(|inv| {
            Ok(inv.prog().map_ptrs.binary_search(&ptr).is_ok() || inv.known_maps.contains(&ptr))
        })?;
        if !known {
            return Err(Abort::Fault(format!(
                "{ptr:#x} is not a map pointer of this program"
            )));
        }
    }
    // SAFETY: a map of the running program (kept alive by it), or an inner map
    // obtained under the run's epoch guard; verified programs only pass map
    // pointers (the verifier tracks CONST_PTR_TO_MAP).
    Ok(unsafe { Map::from_prog_ptr(ptr) })
}

/// The extension map behind a tagged map pointer, `None` for core maps.
#[inline]
pub(crate) fn ext_arg<'a>(
    ctx: &RunContext<'_>,
    ptr: u64,
) -> Result<Option<&'a crate::extmaps::ExtMap>, Abort> {
    if !crate::extmaps::is_ext_ptr(ptr) {
        return Ok(None);
    }
    if ctx.is_checked() {
        let known = with_inv(|inv| Ok(inv.prog().map_ptrs.binary_search(&ptr).is_ok()))?;
        if !known {
            return Err(Abort::Fault(format!(
                "{ptr:#x} is not a map pointer of this program"
            )));
        }
    }
    // SAFETY: a map of the running program, which keeps it alive.
    Ok(Some(unsafe { crate::extmaps::ExtMap::from_prog_ptr(ptr) }))
}

fn spin_lock(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    check_mem(ctx, a[0], 4, true)?;
    if ctx.is_checked() && !a[0].is_multiple_of(4) {
        return Err(Abort::Fault(format!(
            "spin lock at {:#x} is not aligned",
            a[0]
        )));
    }
    if ctx.is_checked() {
        with_inv(|inv| {
            if !inv.locks.is_empty() {
                return Err(Abort::Fault(
                    "bpf_spin_lock while another spin lock is held".into(),
                ));
            }
            inv.locks.push(a[0]);
            Ok(())
        })?;
    }
    if ctx.is_checked() {
        // Unverified code may lock a word nobody will ever release: wait a
        // bounded time instead of hanging.
        // SAFETY: checked: 4 aligned writable bytes of the invocation's memory.
        let w = unsafe { std::sync::atomic::AtomicU32::from_ptr(a[0] as *mut u32) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let mut spins = 0u32;
        while w
            .compare_exchange_weak(
                0,
                1,
                std::sync::atomic::Ordering::Acquire,
                std::sync::atomic::Ordering::Relaxed,
            )
            .is_err()
        {
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(1024) {
                if std::time::Instant::now() > deadline {
                    with_inv(|inv| {
                        inv.locks.pop();
                        Ok(())
                    })?;
                    return Err(Abort::Fault(format!(
                        "bpf_spin_lock at {:#x}: the lock stayed taken for 1 s",
                        a[0]
                    )));
                }
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        return Ok(0);
    }
    // SAFETY: verified: points at the map value's bpf_spin_lock.
    unsafe { crate::maps::bpf_spin_lock(a[0] as *mut u32) };
    Ok(0)
}

fn spin_unlock(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    check_mem(ctx, a[0], 4, true)?;
    if ctx.is_checked() && !a[0].is_multiple_of(4) {
        return Err(Abort::Fault(format!(
            "spin lock at {:#x} is not aligned",
            a[0]
        )));
    }
    if ctx.is_checked() {
        with_inv(|inv| {
            if inv.locks.last() != Some(&a[0]) {
                return Err(Abort::Fault(format!(
                    "bpf_spin_unlock of {:#x}, which this program does not hold",
                    a[0]
                )));
            }
            inv.locks.pop();
            Ok(())
        })?;
    }
    // SAFETY: as in spin_lock.
    unsafe { crate::maps::bpf_spin_unlock(a[0] as *mut u32) };
    Ok(0)
}

/// Negative errno as a register value.
#[inline]
pub(crate) fn neg(errno: i32) -> u64 {
    (-(errno as i64)) as u64
}
