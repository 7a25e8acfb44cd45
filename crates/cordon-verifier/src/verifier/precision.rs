//! Precision tracking (Linux's `mark_chain_precision` / `backtrack_insn` /
//! `propagate_precision`, written afresh).
//!
//! Checkpoint states start with every scalar imprecise, so pruning ignores
//! scalar values that no continuation depends on. When a scalar's exact value
//! decides safety (pointer arithmetic, a branch decided statically, helper
//! sizes, callback return values), the registers and stack slots it was
//! computed from are found by walking the executed instructions backwards
//! through the checkpoint chain, marking them precise in every checkpoint on
//! the way. A path pruned against a checkpoint inherits that checkpoint's
//! precise scalars the same way.

use super::Engine;
use crate::state::State;
use cordon_isa::{AluOp, Kind, Operand};

/// A register or stack slot of a frame (frame index = call depth).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Loc {
    Reg(u8, u8),
    Slot(u8, u16),
}

/// The trace entry is a fill from / store to a fixed stack slot.
pub(crate) const F_SLOT_READ: u8 = 1;
pub(crate) const F_SLOT_WRITE: u8 = 2;
/// The store spilled its source register (the slot now holds its value).
pub(crate) const F_SPILL: u8 = 4;
/// The `exit` left a callback frame (R0 does not flow to the caller).
pub(crate) const F_CALLBACK_EXIT: u8 = 8;
/// The call entered a callback frame.
pub(crate) const F_CALLBACK_ENTRY: u8 = 16;
/// The call entered a static subprogram frame.
pub(crate) const F_SUBPROG_ENTRY: u8 = 32;

/// One executed instruction of a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TraceEntry {
    pub pc: u32,
    /// Call depth when the instruction started.
    pub depth: u8,
    pub flags: u8,
    /// Stack slot accessed (with `F_SLOT_*`).
    pub slot: (u8, u16),
    /// Scalars linked (same id) with a conditional jump's operands.
    pub linked: Option<Box<[Loc]>>,
}

impl TraceEntry {
    pub(crate) fn new(pc: usize, depth: usize) -> TraceEntry {
        TraceEntry {
            pc: pc as u32,
            depth: depth as u8,
            flags: 0,
            slot: (0, 0),
            linked: None,
        }
    }
}

/// The set of locations whose values are needed precisely.
#[derive(Default, Debug)]
struct Needs(Vec<Loc>);

impl Needs {
    fn has(&self, l: Loc) -> bool {
        self.0.contains(&l)
    }
    fn add(&mut self, l: Loc) {
        if !self.has(l) {
            self.0.push(l);
        }
    }
    fn remove(&mut self, l: Loc) -> bool {
        match self.0.iter().position(|x| *x == l) {
            Some(i) => {
                self.0.swap_remove(i);
                true
            }
            None => false,
        }
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Engine<'_> {
    /// Record the instruction about to run.
    pub(crate) fn trace_push(&mut self, pc: usize) {
        let depth = self.st.frames.len() - 1;
        self.trace.push(TraceEntry::new(pc, depth));
    }

    pub(crate) fn trace_mark(&mut self, flags: u8, slot: Option<(u8, u16)>) {
        if let Some(e) = self.trace.last_mut() {
            e.flags |= flags;
            if let Some(s) = slot {
                e.slot = s;
            }
        }
    }

    pub(crate) fn trace_linked(&mut self, locs: Vec<Loc>) {
        if locs.is_empty() {
            return;
        }
        if let Some(e) = self.trace.last_mut() {
            e.linked = Some(locs.into_boxed_slice());
        }
    }

    /// Scalars sharing an id with the given registers of the current frame.
    pub(crate) fn linked_locs(&self, regs: &[u8]) -> Vec<Loc> {
        let mut out = Vec::new();
        let ids: Vec<u32> = regs
            .iter()
            .map(|&r| self.st.reg(r))
            .filter(|r| r.is_scalar() && r.id != 0)
            .map(|r| r.id & !crate::state::ADD_CONST)
            .collect();
        if ids.is_empty() {
            return out;
        }
        for (fi, f) in self.st.frames.iter().enumerate() {
            for (ri, r) in f.regs.iter().enumerate() {
                if r.is_scalar() && ids.contains(&(r.id & !crate::state::ADD_CONST)) {
                    out.push(Loc::Reg(fi as u8, ri as u8));
                }
            }
            for (spi, s) in f.stack.iter().enumerate() {
                if s.is_spill()
                    && s.spilled.is_scalar()
                    && ids.contains(&(s.spilled.id & !crate::state::ADD_CONST))
                {
                    out.push(Loc::Slot(fi as u8, spi as u16));
                }
            }
        }
        out
    }

    /// The current instruction needs the exact values of these registers
    /// (of the current frame): mark their sources precise.
    pub(crate) fn mark_precise_regs(&mut self, regs: &[u8]) {
        let d = (self.st.frames.len() - 1) as u8;
        let mut n = Needs::default();
        for &r in regs {
            if self.st.reg(r).is_scalar() {
                n.add(Loc::Reg(d, r));
            }
        }
        for l in self.linked_locs(regs) {
            n.add(l);
        }
        // The current instruction's own trace entry is last: start before it.
        let skip = 1;
        self.backtrack(n, skip);
    }

    /// The current instruction needs the exact value of a spilled scalar.
    pub(crate) fn mark_precise_slot(&mut self, frame: u8, spi: u16) {
        let mut n = Needs::default();
        n.add(Loc::Slot(frame, spi));
        self.backtrack(n, 1);
    }

    /// `cur` was pruned against `old`: every scalar `old` needed precisely
    /// is needed in `cur` too (`all` = every scalar, for comparisons that
    /// ignored precision marks).
    pub(crate) fn propagate_precision(&mut self, old: &State, all: bool) {
        let mut n = Needs::default();
        for (fi, (fo, fc)) in old.frames.iter().zip(&self.st.frames).enumerate() {
            for r in 0..10 {
                let (o, c) = (&fo.regs[r], &fc.regs[r]);
                if o.is_scalar() && c.is_scalar() && (all || o.precise) {
                    n.add(Loc::Reg(fi as u8, r as u8));
                }
            }
            for (spi, so) in fo.stack.iter().enumerate() {
                let Some(sc) = fc.stack.get(spi) else {
                    continue;
                };
                if so.is_spill()
                    && so.spilled.is_scalar()
                    && (all || so.spilled.precise)
                    && sc.is_spill()
                    && sc.spilled.is_scalar()
                {
                    n.add(Loc::Slot(fi as u8, spi as u16));
                }
            }
        }
        self.backtrack(n, 0);
    }

    /// Walk back from the end of the current trace (minus `skip` entries),
    /// then through each checkpoint's trace, marking needs precise in every
    /// checkpoint passed.
    fn backtrack(&mut self, mut n: Needs, skip: usize) {
        if n.is_empty() {
            return;
        }
        let end = self.trace.len().saturating_sub(skip);
        for i in (0..end).rev() {
            backtrack_insn(self.prog, &self.trace[i], &mut n);
            if n.is_empty() {
                return;
            }
        }
        let mut cur = self.parent;
        while let Some(ci) = cur {
            // Mark the checkpoint's state (the state before its first traced insn
            // of the continuation).
            if let Some(st) = self.checkpoints[ci].state.as_mut() {
                n.0.retain(|l| match *l {
                    Loc::Reg(f, r) => match st.frames.get_mut(f as usize) {
                        Some(fr) if fr.regs[r as usize].is_scalar() => {
                            let reg = &mut fr.regs[r as usize];
                            let new = !reg.precise;
                            reg.precise = true;
                            new
                        }
                        _ => false,
                    },
                    Loc::Slot(f, spi) => match st
                        .frames
                        .get_mut(f as usize)
                        .and_then(|fr| fr.stack.get_mut(spi as usize))
                    {
                        Some(s) if s.is_spill() && s.spilled.is_scalar() => {
                            let new = !s.spilled.precise;
                            s.spilled.precise = true;
                            new
                        }
                        _ => false,
                    },
                });
            }
            if n.is_empty() {
                return;
            }
            let trace = std::mem::take(&mut self.checkpoints[ci].trace);
            for e in trace.iter().rev() {
                backtrack_insn(self.prog, e, &mut n);
                if n.is_empty() {
                    break;
                }
            }
            self.checkpoints[ci].trace = trace;
            if n.is_empty() {
                return;
            }
            cur = self.checkpoints[ci].parent;
        }
    }
}

/// Needs after instruction `e` -> needs before it.
fn backtrack_insn(prog: &cordon_isa::Program, e: &TraceEntry, n: &mut Needs) {
    let Some(kind) = prog.kind(e.pc as usize) else {
        return;
    };
    let d = e.depth;
    let reg = |r: u8| Loc::Reg(d, r);
    match kind {
        Kind::Alu { op, dst, src, .. } => {
            if n.has(reg(dst)) {
                if matches!(op, AluOp::Mov | AluOp::MovSx(_)) {
                    n.remove(reg(dst));
                }
                if let Operand::Reg(s) = src {
                    n.add(reg(s));
                }
            }
        }
        Kind::Endian { .. } | Kind::Ja { .. } | Kind::MayGoto { .. } => {}
        Kind::Jcond { dst, src, .. } => {
            let mut locs = vec![reg(dst)];
            if let Operand::Reg(s) = src {
                locs.push(reg(s));
            }
            if let Some(l) = &e.linked {
                locs.extend(l.iter().copied());
            }
            if locs.iter().any(|l| n.has(*l)) {
                for l in locs {
                    n.add(l);
                }
            }
        }
        Kind::Lddw { dst, .. } => {
            n.remove(reg(dst));
        }
        Kind::LdAbs { .. } | Kind::LdInd { .. } => {
            for r in 0..=5 {
                n.remove(reg(r));
            }
        }
        Kind::Ldx { dst, .. } => {
            if n.remove(reg(dst)) && e.flags & F_SLOT_READ != 0 {
                n.add(Loc::Slot(e.slot.0, e.slot.1));
            }
        }
        Kind::St { .. } | Kind::Stx { .. } => {
            if e.flags & F_SLOT_WRITE != 0
                && n.remove(Loc::Slot(e.slot.0, e.slot.1))
                && let Kind::Stx { src, .. } = kind
                && e.flags & F_SPILL != 0
            {
                n.add(reg(src));
            }
        }
        Kind::Atomic { op, fetch, src, .. } => {
            if op == cordon_isa::AtomicOp::Cmpxchg {
                n.remove(reg(0));
            } else if fetch {
                n.remove(reg(src));
            }
            if e.flags & F_SLOT_WRITE != 0 {
                n.remove(Loc::Slot(e.slot.0, e.slot.1));
            }
        }
        Kind::CallHelper { .. }
        | Kind::CallKfunc { .. }
        | Kind::CallLocal { .. }
        | Kind::Callx { .. } => {
            if e.flags & (F_SUBPROG_ENTRY | F_CALLBACK_ENTRY) != 0 {
                // Callee frame d+1 starts with copies of the caller's arguments.
                let callee = d + 1;
                let callback = e.flags & F_CALLBACK_ENTRY != 0;
                let mut moved = Vec::new();
                n.0.retain(|l| match *l {
                    Loc::Reg(f, r) if f == callee => {
                        moved.push(r);
                        false
                    }
                    Loc::Slot(f, _) if f == callee => false,
                    _ => true,
                });
                for r in moved {
                    if callback {
                        if r == 2 {
                            n.add(reg(3));
                        }
                    } else if (1..=5).contains(&r) {
                        n.add(reg(r));
                    }
                }
            } else {
                for r in 0..=5 {
                    n.remove(reg(r));
                }
            }
        }
        Kind::Exit => {
            // Leaving frame d for frame d-1.
            if d > 0 && e.flags & F_CALLBACK_EXIT == 0 && n.remove(Loc::Reg(d - 1, 0)) {
                n.add(reg(0));
            }
        }
    }
}
