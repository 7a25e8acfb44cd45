//! Facts proven by verification, kept as data for the runtime: stack depths,
//! reference counts, and resource tables at every safe point (call sites and
//! loop back-edges) that exception unwinding and watchdog cancellation use.

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

/// Everything the verifier proved.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VerifiedFacts {
    pub subprogs: Vec<SubprogFacts>,
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
