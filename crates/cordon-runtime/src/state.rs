//! Per-invocation state shared by the helpers of one program run (and the
//! programs it tail-calls): reached through a thread-local pointer that the
//! runtime sets for the duration of a run.

use std::cell::Cell;
use std::ptr;

use cordon_exec::Abort;

use crate::program::CompiledProgram;

/// What the context of the running program is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtxKind {
    /// `struct xdp_md` backed by [`crate::ctx::XdpCtx`].
    Xdp,
    /// `struct __sk_buff` backed by [`crate::ctx::SkbCtx`].
    Skb,
    /// No runtime-known context (raw programs, host calls).
    None,
}

/// A redirect requested by `bpf_redirect` / `bpf_redirect_map` (recorded, not
/// performed). It is what Linux would act on when the program returns
/// `XDP_REDIRECT` / `TC_ACT_REDIRECT`; the last successful call wins and a
/// `bpf_redirect_map` miss clears it, as in Linux's `bpf_redirect_info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// `bpf_redirect(ifindex, flags)`: XDP (flags 0) or tc, where flags may be
    /// `BPF_F_INGRESS` (1: deliver to the device's ingress, not egress).
    Ifindex { ifindex: u32, flags: u64 },
    /// `bpf_redirect_map(map, key, flags)` that found its target (or
    /// broadcasts).
    Map {
        /// Name of the map.
        map: String,
        /// Its type (devmap, devmap_hash, cpumap, xskmap).
        map_type: crate::maps::MapType,
        /// The key, truncated to 32 bits as Linux's lookups do.
        key: u32,
        /// Where the frame goes.
        target: RedirectTarget,
        /// The flags passed (fallback action bits, `BPF_F_BROADCAST`,
        /// `BPF_F_EXCLUDE_INGRESS`).
        flags: u64,
    },
}

/// The destination of a [`Redirect::Map`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedirectTarget {
    /// A devmap / devmap_hash entry: the device's ifindex.
    Device { ifindex: u32 },
    /// A cpumap entry: the CPU (the key) and its queue size.
    Cpu { cpu: u32, qsize: u32 },
    /// An xskmap entry: the host's socket id.
    Socket { id: u32 },
    /// `BPF_F_BROADCAST` on a devmap / devmap_hash: every device of the map
    /// in iteration order, without the ingress device when
    /// `BPF_F_EXCLUDE_INGRESS` is set.
    Broadcast {
        ifindexes: Vec<u32>,
        exclude_ingress: bool,
    },
}

/// State of one invocation (a run and its tail calls).
pub struct Invocation {
    pub(crate) kind: CtxKind,
    /// Address of the backing context structure.
    pub(crate) ctx: u64,
    /// Size of the UAPI part of the context (accessible in checked mode).
    pub(crate) ctx_len: u64,
    /// Memory the engine treats as the input (LD_ABS packet); skb reshaping
    /// helpers move it with the packet, tail calls start with it.
    pub(crate) input: (u64, u64),
    pub(crate) tail_calls: u32,
    pub(crate) tail_result: u64,
    /// Collected `bpf_trace_printk` lines (None: not collected yet).
    pub(crate) trace: Vec<String>,
    pub(crate) redirect: Option<Redirect>,
    /// Ring buffer records reserved and not yet submitted (checked mode).
    pub(crate) reserved: Vec<u64>,
    /// Inner maps handed to the program by map-of-maps lookups (checked mode).
    pub(crate) known_maps: Vec<u64>,
    /// A helper ended the whole invocation (`bpf_throw`): tail-call frames
    /// must propagate the stop instead of returning from their frame.
    pub(crate) stopped: bool,
    /// Spin locks held (checked mode), released when the run ends.
    pub(crate) locks: Vec<u64>,
    /// The program running now (changes during tail calls).
    pub(crate) prog: *const CompiledProgram,
    /// Skb runs: packet buffer, network offset, hash and socket state.
    pub(crate) skb: crate::helpers::SkbState,
}

impl Invocation {
    pub(crate) fn new(kind: CtxKind, ctx: u64, ctx_len: u64, input: (u64, u64)) -> Invocation {
        Invocation {
            kind,
            ctx,
            ctx_len,
            input,
            tail_calls: 0,
            tail_result: 0,
            trace: Vec::new(),
            redirect: None,
            reserved: Vec::new(),
            known_maps: Vec::new(),
            stopped: false,
            locks: Vec::new(),
            prog: ptr::null(),
            skb: crate::helpers::SkbState::default(),
        }
    }

    /// Whether dropping this invocation would free nothing: no trace lines,
    /// redirect or tracked records, locks and maps were ever stored, and it is
    /// not an skb run (only skb helpers, which refuse other contexts, move a
    /// packet into buffers of its own). [`CompiledProgram::call`] skips the
    /// drop of such an invocation, its common case.
    #[inline]
    pub(crate) fn owns_nothing(&self) -> bool {
        self.kind != CtxKind::Skb
            && self.trace.capacity() == 0
            && self.redirect.is_none()
            && self.reserved.capacity() == 0
            && self.known_maps.capacity() == 0
            && self.locks.capacity() == 0
    }

    /// Releases what a checked run left behind when it ended abnormally:
    /// spin locks it still holds are unlocked, ring buffer records it
    /// reserved and did not submit are discarded. Cheap when there is none
    /// (the common case): the work is out of line.
    #[inline]
    pub(crate) fn release_leftovers(&mut self) {
        if !self.locks.is_empty() || !self.reserved.is_empty() {
            self.release_leftovers_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn release_leftovers_slow(&mut self) {
        for l in self.locks.drain(..) {
            // SAFETY: a lock this run took (checked mode tracked it).
            unsafe { crate::maps::bpf_spin_unlock(l as *mut u32) };
        }
        for rec in self.reserved.drain(..) {
            // SAFETY: a record this run reserved and did not finish.
            unsafe { crate::maps::ringbuf_discard(rec as *mut u8, 0) };
        }
    }

    pub(crate) fn prog(&self) -> &CompiledProgram {
        // SAFETY: set by the runtime to the running program, which outlives the run.
        unsafe { &*self.prog }
    }
}

thread_local! {
    static CURRENT: Cell<*mut Invocation> = const { Cell::new(ptr::null_mut()) };
}

/// Makes `inv` the current invocation until the guard drops (restoring the
/// previous one, so host code inside a helper may run other programs).
///
/// The guard keeps the address of this thread's slot, so restoring costs no
/// second thread-local lookup (the guard holds raw pointers: it is neither
/// `Send` nor `Sync` and is dropped on the thread that made it).
pub(crate) struct CurrentGuard {
    slot: *const Cell<*mut Invocation>,
    prev: *mut Invocation,
}

impl CurrentGuard {
    #[inline]
    pub(crate) fn enter(inv: *mut Invocation) -> CurrentGuard {
        CURRENT.with(|c| CurrentGuard {
            slot: c as *const _,
            prev: c.replace(inv),
        })
    }
}

impl Drop for CurrentGuard {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the slot is this thread's `CURRENT`, which lives as long as
        // the thread; the guard never leaves the thread that created it.
        unsafe { (*self.slot).set(self.prev) };
    }
}

/// The current invocation, for helpers.
#[inline]
pub(crate) fn with_inv<R>(f: impl FnOnce(&mut Invocation) -> Result<R, Abort>) -> Result<R, Abort> {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return Err(Abort::Fault(
            "this helper needs a program run started by the Cordon runtime".into(),
        ));
    }
    // SAFETY: the pointer is valid while its guard lives (the whole run); helpers
    // run on the run's thread and do not hold the reference across nested runs.
    f(unsafe { &mut *p })
}

/// Ends the whole invocation with `value` (`bpf_throw`), also across tail calls.
pub(crate) fn stop_invocation(value: u64) -> Result<u64, Abort> {
    let p = CURRENT.with(|c| c.get());
    if !p.is_null() {
        // SAFETY: as in `with_inv`.
        unsafe { (*p).stopped = true };
    }
    Err(Abort::Stop(value))
}

/// Raw pointer to the current invocation (for nested runs).
pub(crate) fn current_ptr() -> *mut Invocation {
    CURRENT.with(|c| c.get())
}
