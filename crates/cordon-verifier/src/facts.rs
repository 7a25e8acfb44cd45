//! Facts proven by verification, kept as data for the runtime: stack depths,
//! reference counts, and resource tables at every safe point (call sites and
//! loop back-edges) that exception unwinding and watchdog cancellation use.

use crate::ctx::CtxField;
use crate::state::RefKind;
use std::collections::BTreeMap;

/// Per-subprogram facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubprogFacts {
    pub start: usize,
    pub end: usize,
    /// Bytes of stack this subprogram's frame uses (unrounded).
    pub stack_depth: u32,
    /// Worst-case stack (rounded per frame) of any call chain starting here.
    pub chain_stack_depth: u32,
    /// Deepest call chain (in frames) starting here, this frame included.
    pub chain_frames: u32,
    /// Most stack (rounded per frame) the callers of this subprogram use on
    /// any chain from a root; for a subprogram with a tail call this is what
    /// stays allocated under the tail-called program.
    pub caller_stack: u32,
    pub is_global: bool,
    pub has_tail_call: bool,
    /// Subprogram is used as a callback (its address is taken).
    pub is_callback: bool,
    /// Subprogram is the main program's exception callback.
    pub is_exception_callback: bool,
}

/// Where a resource is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// Register `reg` of frame `frame` (0 = main program frame).
    Reg { frame: u8, reg: u8 },
    /// Stack slot at byte offset `off` (negative, 8-aligned) from frame `frame`'s r10.
    Stack { frame: u8, off: i16 },
}

/// One held reference and everywhere a pointer carrying it lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeldRef {
    pub id: u32,
    pub kind: RefKind,
    /// Instruction that acquired it.
    pub acquired_at: usize,
    /// Registers and stack slots holding it (may be empty only if lost, which
    /// verification forbids at exits).
    pub locations: Vec<Location>,
}

/// A held spin lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeldLock {
    pub map: u32,
    pub acquired_at: usize,
    /// Registers/stack slots holding the map value pointer of the lock, if any.
    pub locations: Vec<Location>,
}

/// What is held on one verified path through a safe point.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Held {
    /// Call chain: subprogram index and call site of each frame (main first).
    pub frames: Vec<(usize, usize)>,
    pub refs: Vec<HeldRef>,
    pub lock: Option<HeldLock>,
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty() && self.lock.is_none()
    }
}

/// Why an instruction is a safe point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SafePointKind {
    /// A helper, kfunc or subprogram call.
    Call,
    /// A jump closing a loop (cancellation point).
    BackEdge,
    /// A `bpf_throw` call (exception unwinding starts here).
    Throw,
}

/// Resource table of one safe point: every distinct holding seen on
/// verified paths (usually one; several when paths disagree, which the
/// runtime resolves by checking values or by run-time tracking).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafePoint {
    pub kind: SafePointKind,
    pub variants: Vec<Held>,
    /// More distinct variants were seen than [`MAX_VARIANTS`]; the runtime must
    /// fall back to run-time tracking for this point.
    pub truncated: bool,
}

/// Distinct holdings kept per safe point.
pub const MAX_VARIANTS: usize = 64;

/// One load or store through the program context, proven to be the same
/// field on every path (Linux refuses an instruction that accesses the
/// context on one path and other memory on another: "same insn cannot be
/// used with different pointers").
///
/// The runtime rewrites these the way Linux's `convert_ctx_accesses` does:
/// the program sees the UAPI layout (`struct xdp_md`, `struct __sk_buff`),
/// the runtime keeps its own backing struct. Example: on XDP,
/// `r2 = *(u32 *)(r1 +0)` is [`CtxField::PktData`] — the program receives a
/// 64-bit packet pointer, so the runtime rewrites it to a 64-bit load of its
/// own `data` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtxAccess {
    /// Byte offset of the access in the UAPI context struct.
    pub off: u32,
    /// Access size in bytes (1, 2, 4 or 8), as written in the instruction.
    pub size: u32,
    /// A store (`St`/`Stx`) rather than a load.
    pub write: bool,
    /// What the load yields: an integer of `size` bytes or one of the packet
    /// pointers (`data`, `data_end`, `data_meta`), which are 64-bit pointers.
    pub field: CtxField,
}

/// What the map argument (`r1`) of a helper call site is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallMap {
    /// The same map (index in [`crate::VerifyEnv::maps`]) on every path.
    /// For array maps, `key` is `Some(k)` when the key argument is the
    /// constant `k` on every path (Linux's map_key_state). A JIT can inline
    /// an array lookup here, and drop the bounds check when
    /// `k < max_entries`.
    Const { map: u32, key: Option<u64> },
    /// Different maps on different paths (Linux's poisoned map_ptr_state):
    /// the call must go through the generic helper.
    Varies,
}

/// Everything the verifier proved.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VerifiedFacts {
    pub subprogs: Vec<SubprogFacts>,
    /// Every context access by instruction index (see [`CtxAccess`]).
    pub ctx_accesses: BTreeMap<usize, CtxAccess>,
    /// Map argument of every helper call site that takes a map, by
    /// instruction index (see [`CallMap`]).
    pub call_maps: BTreeMap<usize, CallMap>,
    /// Instructions no path reaches (e.g. behind a branch on a constant);
    /// they were never checked, so an engine must not execute them — Linux
    /// replaces them (sanitize_dead_code). Sorted; second halves of `lddw`
    /// are not listed.
    pub unreached: Vec<usize>,
    /// Worst-case stack bytes along any call chain from the main program.
    pub max_stack_depth: u32,
    /// Most references held at once on any path.
    pub max_refs: u32,
    /// Safe points by instruction index.
    pub safe_points: BTreeMap<usize, SafePoint>,
    /// Loop back-edges `(from, to)`.
    pub back_edges: Vec<(usize, usize)>,
    pub stats: Stats,
    /// The verifier log (empty with log level 0).
    pub log: String,
}

impl VerifiedFacts {
    /// Stack frame bytes per subprogram as `(first instruction, bytes)`,
    /// main program first: what an engine sizes each frame with (e.g.
    /// `cordon_exec::ExecOptions::subprog_frames`, with `frame_size` the
    /// main program's entry). Bytes are the deepest stack offset the
    /// subprogram touches (unrounded; engines round to their alignment).
    pub fn subprog_frames(&self) -> Vec<(usize, u32)> {
        self.subprogs
            .iter()
            .map(|s| (s.start, s.stack_depth))
            .collect()
    }

    /// Frame bytes of the subprogram whose first instruction is `start`.
    pub fn frame_size(&self, start: usize) -> Option<u32> {
        self.subprogs
            .iter()
            .find(|s| s.start == start)
            .map(|s| s.stack_depth)
    }
}

/// Verification statistics (Linux's last log line).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stats {
    pub insn_processed: u64,
    pub max_states_per_insn: u32,
    pub total_states: u64,
    pub peak_states: u64,
    pub mark_read: u64,
    pub verification_time_usec: u64,
}

impl Stats {
    pub fn line(&self, limit: u64) -> String {
        format!(
            "processed {} insns (limit {}) max_states_per_insn {} total_states {} peak_states {} mark_read {}",
            self.insn_processed,
            limit,
            self.max_states_per_insn,
            self.total_states,
            self.peak_states,
            self.mark_read
        )
    }
}
