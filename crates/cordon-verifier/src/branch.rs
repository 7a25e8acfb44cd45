//! Conditional jumps on scalars: deciding statically taken branches and
//! learning bounds on both sides (Linux's `is_branch_taken` and
//! `regs_refine_cond_op`).

use crate::scalar::Scalar;
use crate::tnum::Tnum;
use cordon_isa::JmpCond;

/// The condition that holds on the fall-through side.
pub fn negate(c: JmpCond) -> Option<JmpCond> {
    Some(match c {
        JmpCond::Eq => JmpCond::Ne,
        JmpCond::Ne => JmpCond::Eq,
        JmpCond::Gt => JmpCond::Le,
        JmpCond::Le => JmpCond::Gt,
        JmpCond::Ge => JmpCond::Lt,
        JmpCond::Lt => JmpCond::Ge,
        JmpCond::Sgt => JmpCond::Sle,
        JmpCond::Sle => JmpCond::Sgt,
        JmpCond::Sge => JmpCond::Slt,
        JmpCond::Slt => JmpCond::Sge,
        JmpCond::Set => return None,
    })
}

/// `a c b` is equivalent to `b (flip c) a`.
pub fn flip(c: JmpCond) -> JmpCond {
    match c {
        JmpCond::Gt => JmpCond::Lt,
        JmpCond::Lt => JmpCond::Gt,
        JmpCond::Ge => JmpCond::Le,
        JmpCond::Le => JmpCond::Ge,
        JmpCond::Sgt => JmpCond::Slt,
        JmpCond::Slt => JmpCond::Sgt,
        JmpCond::Sge => JmpCond::Sle,
        JmpCond::Sle => JmpCond::Sge,
        other => other,
    }
}

/// A 64- or 32-bit view of a scalar's bounds.
#[derive(Clone, Copy, Debug)]
struct View {
    umin: u64,
    umax: u64,
    smin: i64,
    smax: i64,
    t: Tnum,
}

fn get(s: &Scalar, wide: bool) -> View {
    if wide {
        View {
            umin: s.umin,
            umax: s.umax,
            smin: s.smin,
            smax: s.smax,
            t: s.var_off,
        }
    } else {
        View {
            umin: s.u32min as u64,
            umax: s.u32max as u64,
            smin: s.s32min as i64,
            smax: s.s32max as i64,
            t: s.var_off.subreg(),
        }
    }
}

/// Write a view back; false if it describes no value.
fn set(s: &mut Scalar, wide: bool, v: View) -> bool {
    if v.umin > v.umax || v.smin > v.smax {
        return false;
    }
    if wide {
        s.umin = v.umin;
        s.umax = v.umax;
        s.smin = v.smin;
        s.smax = v.smax;
        s.var_off = v.t;
    } else {
        if v.umax > u32::MAX as u64 || v.smax < i32::MIN as i64 || v.smin > i32::MAX as i64 {
            return false;
        }
        s.u32min = v.umin as u32;
        s.u32max = v.umax as u32;
        s.s32min = v.smin.max(i32::MIN as i64) as i32;
        s.s32max = v.smax.min(i32::MAX as i64) as i32;
        s.var_off = s.var_off.with_subreg(v.t);
    }
    s.sync();
    s.is_consistent()
}

/// Is `a c b` known to be always true (`Some(true)`) or always false?
pub fn is_taken(a: &Scalar, b: &Scalar, c: JmpCond, wide: bool) -> Option<bool> {
    let x = get(a, wide);
    let y = get(b, wide);
    let known = |t: Tnum| t.mask == 0;
    match c {
        JmpCond::Eq | JmpCond::Ne => {
            let eq = if known(x.t) && known(y.t) {
                Some(x.t.value == y.t.value)
            } else if x.umin > y.umax
                || x.umax < y.umin
                || x.smin > y.smax
                || x.smax < y.smin
                || (x.t.value ^ y.t.value) & !(x.t.mask | y.t.mask) != 0
            {
                Some(false)
            } else {
                None
            };
            eq.map(|e| if c == JmpCond::Eq { e } else { !e })
        }
        JmpCond::Set => {
            if x.t.value & y.t.value != 0 {
                Some(true)
            } else if (x.t.value | x.t.mask) & (y.t.value | y.t.mask) == 0 {
                Some(false)
            } else {
                None
            }
        }
        JmpCond::Gt => cmp(x.umin > y.umax, x.umax <= y.umin),
        JmpCond::Ge => cmp(x.umin >= y.umax, x.umax < y.umin),
        JmpCond::Lt => cmp(x.umax < y.umin, x.umin >= y.umax),
        JmpCond::Le => cmp(x.umax <= y.umin, x.umin > y.umax),
        JmpCond::Sgt => cmp(x.smin > y.smax, x.smax <= y.smin),
        JmpCond::Sge => cmp(x.smin >= y.smax, x.smax < y.smin),
        JmpCond::Slt => cmp(x.smax < y.smin, x.smin >= y.smax),
        JmpCond::Sle => cmp(x.smax <= y.smin, x.smin > y.smax),
    }
}

fn cmp(always: bool, never: bool) -> Option<bool> {
    if always {
        Some(true)
    } else if never {
        Some(false)
    } else {
        None
    }
}

/// Learn from `a c b` holding (`holds == true`) or not holding.
/// Returns false when that outcome is impossible.
pub fn refine(a: &mut Scalar, b: &mut Scalar, c: JmpCond, wide: bool, holds: bool) -> bool {
    if c == JmpCond::Set {
        return refine_set(a, b, wide, holds);
    }
    let c = if holds {
        c
    } else {
        match negate(c) {
            Some(n) => n,
            None => return true,
        }
    };
    let mut x = get(a, wide);
    let mut y = get(b, wide);
    match c {
        JmpCond::Eq => {
            let t = x.t.intersect(y.t);
            if (x.t.value ^ y.t.value) & !(x.t.mask | y.t.mask) != 0 {
                return false;
            }
            x.umin = x.umin.max(y.umin);
            x.umax = x.umax.min(y.umax);
            x.smin = x.smin.max(y.smin);
            x.smax = x.smax.min(y.smax);
            x.t = t;
            y = x;
        }
        JmpCond::Ne => {
            let (xv, yv) = (x, y);
            if !ne_shrink(&mut x, &yv, wide) || !ne_shrink(&mut y, &xv, wide) {
                return false;
            }
        }
        JmpCond::Le | JmpCond::Lt | JmpCond::Ge | JmpCond::Gt => {
            let (lo, hi) = if matches!(c, JmpCond::Le | JmpCond::Lt) {
                (&mut x, &mut y)
            } else {
                (&mut y, &mut x)
            };
            let strict = matches!(c, JmpCond::Lt | JmpCond::Gt) as u64;
            // lo < hi (strict) or lo <= hi.
            let Some(m) = hi.umax.checked_sub(strict) else {
                return false;
            };
            lo.umax = lo.umax.min(m);
            let Some(m) = lo.umin.checked_add(strict) else {
                return false;
            };
            hi.umin = hi.umin.max(m);
        }
        JmpCond::Sle | JmpCond::Slt | JmpCond::Sge | JmpCond::Sgt => {
            let (lo, hi) = if matches!(c, JmpCond::Sle | JmpCond::Slt) {
                (&mut x, &mut y)
            } else {
                (&mut y, &mut x)
            };
            let strict = matches!(c, JmpCond::Slt | JmpCond::Sgt) as i64;
            let Some(m) = hi.smax.checked_sub(strict) else {
                return false;
            };
            lo.smax = lo.smax.min(m);
            let Some(m) = lo.smin.checked_add(strict) else {
                return false;
            };
            hi.smin = hi.smin.max(m);
        }
        JmpCond::Set => unreachable!("handled above"),
    }
    set(a, wide, x) && set(b, wide, y)
}

/// `p != q` with `q` constant: shave `q` off the ends of `p`'s ranges.
fn ne_shrink(p: &mut View, q: &View, wide: bool) -> bool {
    if q.t.mask != 0 {
        return true;
    }
    let v = q.t.value;
    if p.umin == p.umax && p.umin == v {
        return false;
    }
    if p.umin == v {
        p.umin += 1;
    } else if p.umax == v {
        p.umax -= 1;
    }
    let sv = if wide {
        v as i64
    } else {
        v as u32 as i32 as i64
    };
    if p.smin == sv && p.smax > sv {
        p.smin += 1;
    } else if p.smax == sv && p.smin < sv {
        p.smax -= 1;
    }
    true
}

fn refine_set(a: &mut Scalar, b: &mut Scalar, wide: bool, holds: bool) -> bool {
    let y = get(b, wide);
    if y.t.mask != 0 {
        return true;
    }
    let mut x = get(a, wide);
    let v = y.t.value;
    if holds {
        if v.is_power_of_two() {
            x.t = x.t.or(Tnum::konst(v));
        }
    } else {
        x.t =
            x.t.and(Tnum::konst(!v & if wide { u64::MAX } else { 0xffff_ffff }));
    }
    set(a, wide, x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_and_refine() {
        let a = Scalar::urange(0, 10);
        assert_eq!(
            is_taken(&a, &Scalar::konst(11), JmpCond::Lt, true),
            Some(true)
        );
        assert_eq!(is_taken(&a, &Scalar::konst(5), JmpCond::Lt, true), None);
        let mut x = Scalar::unknown();
        let mut k = Scalar::konst(16);
        assert!(refine(&mut x, &mut k, JmpCond::Gt, true, false));
        assert_eq!(x.umax, 16);
        let mut x = Scalar::unknown();
        assert!(refine(&mut x, &mut k, JmpCond::Eq, true, true));
        assert_eq!(x.const_value(), Some(16));
        let mut x = Scalar::urange(0, 10);
        let mut k = Scalar::konst(20);
        assert!(!refine(&mut x, &mut k, JmpCond::Gt, true, true));
        let mut x = Scalar::unknown();
        let mut k = Scalar::konst(10);
        assert!(refine(&mut x, &mut k, JmpCond::Slt, false, true));
        assert_eq!(x.s32max, 9);
    }
}
