//! State equivalence for pruning: is every concrete state described by `cur`
//! also described by an already fully verified `old` state at the same
//! instruction (Linux's `states_equal` / `regsafe` / `stacksafe` / `refsafe`)?
//!
//! Registers that are dead at the instruction (static liveness) are ignored;
//! scalars without a precision mark match any scalar ([`Mode::NotExact`]).

use crate::cfg::Cfg;
use crate::state::{Frame, FrameKind, Reg, RegType, SlotType, State};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `old` contains `cur`; imprecise scalars of `old` match any scalar.
    NotExact,
    /// `old` contains `cur`, every scalar compared by range (loop convergence
    /// against states whose precision marks are not final yet).
    RangeWithin,
    /// `old` and `cur` are the same (infinite loop detection).
    Exact,
}

/// Consistent renaming of ids between `old` and `cur` (a bijection).
#[derive(Default)]
struct IdMap {
    map: Vec<(u32, u32)>,
    tmp: u32,
}

impl IdMap {
    fn check(&mut self, old: u32, cur: u32) -> bool {
        if old == 0 || cur == 0 {
            return old == cur;
        }
        for &(o, c) in &self.map {
            if o == old {
                return c == cur;
            }
            if c == cur {
                return false;
            }
        }
        self.map.push((old, cur));
        true
    }
    /// Scalar ids: an unlinked scalar gets a fresh temporary id so that a
    /// linked `cur` can match an unlinked `old` but not vice versa.
    fn check_scalar(&mut self, old: u32, cur: u32) -> bool {
        let fresh = |t: &mut u32| {
            *t += 1;
            0x8000_0000 | *t
        };
        let o = if old == 0 { fresh(&mut self.tmp) } else { old };
        let c = if cur == 0 { fresh(&mut self.tmp) } else { cur };
        self.check(o, c)
    }
}

pub fn states_equal(
    old: &State,
    cur: &State,
    pc: usize,
    cfg: &Cfg,
    mode: Mode,
    privileged: bool,
) -> bool {
    if old.frames.len() != cur.frames.len()
        || old.in_callback != cur.in_callback
        || old.refs.len() != cur.refs.len()
    {
        return false;
    }
    let mut ids = IdMap::default();
    for (o, c) in old.refs.iter().zip(&cur.refs) {
        if o.kind != c.kind || !ids.check(o.id, c.id) {
            return false;
        }
    }
    match (&old.lock, &cur.lock) {
        (None, None) => {}
        (Some(o), Some(c)) => {
            if o.map != c.map || !ids.check(o.ptr_id, c.ptr_id) {
                return false;
            }
        }
        _ => return false,
    }
    let n = old.frames.len();
    for i in 0..n {
        let (fo, fc) = (&old.frames[i], &cur.frames[i]);
        if fo.callsite != fc.callsite || fo.subprog != fc.subprog || fo.kind != fc.kind {
            return false;
        }
        let live = if i + 1 == n {
            cfg.live_in.get(pc).copied().unwrap_or(0x7ff)
        } else {
            let callee = &old.frames[i + 1];
            let ret = match callee.kind {
                FrameKind::Callback => callee.callsite,
                _ => callee.callsite + 1,
            };
            cfg.live_in.get(ret).copied().unwrap_or(0x7ff)
        };
        for r in 0..10 {
            if mode != Mode::Exact && live & (1 << r) == 0 {
                continue;
            }
            if !regsafe(&fo.regs[r], &fc.regs[r], &mut ids, mode) {
                return false;
            }
        }
        if !stacksafe(fo, fc, &mut ids, mode, privileged) {
            return false;
        }
    }
    true
}

fn regsafe(old: &Reg, cur: &Reg, ids: &mut IdMap, mode: Mode) -> bool {
    if mode == Mode::Exact {
        if old.ty == RegType::Scalar && cur.ty == RegType::Scalar {
            return old.var == cur.var && old.off == cur.off && ids.check_scalar(old.id, cur.id);
        }
        return old.ty == cur.ty && same_ptr(old, cur, ids) && old.var == cur.var;
    }
    match old.ty {
        RegType::NotInit => true,
        RegType::Scalar => {
            if cur.ty != RegType::Scalar {
                return false;
            }
            if mode == Mode::NotExact && !old.precise {
                return true;
            }
            // Linked with a delta in one state only, or with other deltas:
            // refinements would propagate differently.
            let flag = crate::state::ADD_CONST;
            if old.id & flag != cur.id & flag || (old.id & flag != 0 && old.off != cur.off) {
                return false;
            }
            old.var.contains(&cur.var) && ids.check_scalar(old.id, cur.id)
        }
        _ => {
            if old.ty != cur.ty || !same_ptr(old, cur, ids) || !old.var.contains(&cur.var) {
                return false;
            }
            !(old.ty.is_packet() && old.range > cur.range)
        }
    }
}

fn same_ptr(old: &Reg, cur: &Reg, ids: &mut IdMap) -> bool {
    if old.ty == RegType::NotInit {
        return true;
    }
    old.maybe_null == cur.maybe_null
        && old.rdonly == cur.rdonly
        && old.off == cur.off
        && old.map == cur.map
        && old.size == cur.size
        && old.obj == cur.obj
        && old.frameno == cur.frameno
        && ids.check(old.id, cur.id)
        && ids.check(old.ref_obj_id, cur.ref_obj_id)
        && (!old.ty.is_packet() || old.range <= cur.range)
}

fn stacksafe(old: &Frame, cur: &Frame, ids: &mut IdMap, mode: Mode, privileged: bool) -> bool {
    let empty = crate::state::StackSlot::default();
    let len = if mode == Mode::Exact {
        old.stack.len().max(cur.stack.len())
    } else {
        old.stack.len()
    };
    for spi in 0..len {
        let o = old.stack.get(spi).unwrap_or(&empty);
        let c = cur.stack.get(spi).unwrap_or(&empty);
        if mode == Mode::Exact {
            if o.types != c.types || o.spill_size != c.spill_size || o.iter != c.iter {
                return false;
            }
            if (o.is_spill() || o.types[0] == SlotType::Iter)
                && !regsafe(&o.spilled, &c.spilled, ids, mode)
            {
                return false;
            }
            continue;
        }
        if o.is_spill() {
            // A full 64-bit scalar spill reads like 8 MISC bytes when the
            // scalar is unknown: compare against an unknown scalar (Linux 6.8+).
            if o.is_full_spill()
                && o.spilled.is_scalar()
                && c.types.iter().all(|t| *t == SlotType::Misc)
            {
                if !regsafe(&o.spilled, &Reg::unknown(), ids, mode) {
                    return false;
                }
                continue;
            }
            if !c.is_spill() || c.spill_size != o.spill_size || c.types != o.types {
                return false;
            }
            if !regsafe(&o.spilled, &c.spilled, ids, mode) {
                return false;
            }
            continue;
        }
        if o.types[0] == SlotType::Iter {
            if c.types[0] != SlotType::Iter
                || o.iter.map(|x| x.0) != c.iter.map(|x| x.0)
                || !ids.check(o.spilled.ref_obj_id, c.spilled.ref_obj_id)
            {
                return false;
            }
            continue;
        }
        for b in 0..8 {
            let ot = o.types[b];
            let ct = c.types[b];
            let ok = match ot {
                SlotType::Invalid => true,
                SlotType::Misc if privileged => ct != SlotType::Iter,
                SlotType::Misc => {
                    matches!(ct, SlotType::Misc | SlotType::Zero)
                        || (ct == SlotType::Spill && c.spilled.is_scalar())
                }
                SlotType::Zero => ct == SlotType::Zero,
                SlotType::Spill | SlotType::Iter => ot == ct,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}
