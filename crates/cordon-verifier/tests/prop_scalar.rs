//! Property tests: the abstract scalar domain over-approximates concrete
//! execution for ALU operations and for branch refinement.

use cordon_isa::{AluOp, JmpCond};
use cordon_verifier::branch::{is_taken, refine};
use cordon_verifier::scalar::Scalar;
use proptest::prelude::*;

fn contains(s: &Scalar, v: u64) -> bool {
    s.umin <= v
        && v <= s.umax
        && s.smin <= v as i64
        && v as i64 <= s.smax
        && s.u32min <= v as u32
        && v as u32 <= s.u32max
        && s.s32min <= v as u32 as i32
        && v as u32 as i32 <= s.s32max
        && (v & !s.var_off.mask) == s.var_off.value
}

/// An abstract value built from two concrete samples plus a shape, with a
/// concrete member to test.
fn abstract_with_member() -> impl Strategy<Value = (Scalar, u64)> {
    (any::<u64>(), any::<u64>(), 0u8..5, any::<u64>()).prop_map(|(a, b, shape, pick)| {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        match shape {
            0 => (Scalar::konst(a), a),
            1 => {
                let v = lo + pick % (hi - lo).saturating_add(1).max(1);
                (Scalar::urange(lo, hi), v.clamp(lo, hi))
            }
            2 => {
                let (sl, sh) = if (a as i64) <= (b as i64) {
                    (a as i64, b as i64)
                } else {
                    (b as i64, a as i64)
                };
                let span = (sh as i128 - sl as i128 + 1) as u128;
                let v = (sl as i128 + (pick as u128 % span) as i128) as i64;
                (Scalar::srange(sl, sh), v as u64)
            }
            3 => {
                let small = (lo & 0xff, (lo & 0xff) + (hi & 0xff));
                let v = small.0 + pick % (small.1 - small.0 + 1);
                (Scalar::urange(small.0, small.1), v)
            }
            _ => (Scalar::unknown(), pick),
        }
    })
}

fn concrete(op: AluOp, a: u64, b: u64, wide: bool) -> Option<u64> {
    if wide {
        Some(match op {
            AluOp::Add => a.wrapping_add(b),
            AluOp::Sub => a.wrapping_sub(b),
            AluOp::Mul => a.wrapping_mul(b),
            AluOp::And => a & b,
            AluOp::Or => a | b,
            AluOp::Xor => a ^ b,
            AluOp::Lsh => a.checked_shl(b.try_into().ok()?)?,
            AluOp::Rsh => a.checked_shr(b.try_into().ok()?)?,
            AluOp::Arsh => (a as i64).checked_shr(b.try_into().ok()?)? as u64,
            AluOp::Div => a.checked_div(b).unwrap_or(0),
            AluOp::Mod => a.checked_rem(b).unwrap_or(a),
            _ => return None,
        })
    } else {
        let (x, y) = (a as u32, b as u32);
        Some(match op {
            AluOp::Add => x.wrapping_add(y),
            AluOp::Sub => x.wrapping_sub(y),
            AluOp::Mul => x.wrapping_mul(y),
            AluOp::And => x & y,
            AluOp::Or => x | y,
            AluOp::Xor => x ^ y,
            AluOp::Lsh => x.checked_shl(y)?,
            AluOp::Rsh => x.checked_shr(y)?,
            AluOp::Arsh => (x as i32).checked_shr(y)? as u32,
            AluOp::Div => x.checked_div(y).unwrap_or(0),
            AluOp::Mod => x.checked_rem(y).unwrap_or(x),
            _ => return None,
        } as u64)
    }
}

const OPS: [AluOp; 11] = [
    AluOp::Div,
    AluOp::Mod,
    AluOp::Add,
    AluOp::Sub,
    AluOp::Mul,
    AluOp::And,
    AluOp::Or,
    AluOp::Xor,
    AluOp::Lsh,
    AluOp::Rsh,
    AluOp::Arsh,
];

const CONDS: [JmpCond; 11] = [
    JmpCond::Eq,
    JmpCond::Ne,
    JmpCond::Gt,
    JmpCond::Ge,
    JmpCond::Lt,
    JmpCond::Le,
    JmpCond::Sgt,
    JmpCond::Sge,
    JmpCond::Slt,
    JmpCond::Sle,
    JmpCond::Set,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn alu_over_approximates((a, x) in abstract_with_member(), (b, y) in abstract_with_member(), op in 0usize..11, wide: bool) {
        let op = OPS[op];
        prop_assume!(contains(&a, x) && contains(&b, y));
        if let Some(v) = concrete(op, x, y, wide) {
            let r = if wide { a.alu64(op, &b) } else { a.alu32(op, &b) };
            prop_assert!(contains(&r, v), "{op:?} wide={wide} {x:#x} {y:#x} = {v:#x} not in {r:?}");
        }
    }

    #[test]
    fn branches_over_approximate((a, x) in abstract_with_member(), (b, y) in abstract_with_member(), c in 0usize..11, wide: bool) {
        let c = CONDS[c];
        prop_assume!(contains(&a, x) && contains(&b, y));
        let holds = if wide { c.eval64(x, y) } else { c.eval32(x, y) };
        if let Some(t) = is_taken(&a, &b, c, wide) {
            prop_assert_eq!(t, holds, "{:?} {:#x} {:#x}", c, x, y);
        }
        let (mut ra, mut rb) = (a, b);
        let possible = refine(&mut ra, &mut rb, c, wide, holds);
        prop_assert!(possible, "refine said impossible: {c:?} wide={wide} {x:#x} {y:#x}");
        prop_assert!(contains(&ra, x), "{c:?} holds={holds} wide={wide} {x:#x} not in {ra:?}");
        prop_assert!(contains(&rb, y), "{c:?} holds={holds} wide={wide} {y:#x} not in {rb:?}");
    }

    #[test]
    fn truncate_and_sign_extend((a, x) in abstract_with_member(), size in 0usize..4) {
        let size = [1u32, 2, 4, 8][size];
        prop_assume!(contains(&a, x));
        let t = a.truncate(size);
        let mask = if size == 8 { u64::MAX } else { (1u64 << (size * 8)) - 1 };
        prop_assert!(contains(&t, x & mask));
        if size < 8 {
            let bits = size * 8;
            let sx = ((((x & mask) << (64 - bits)) as i64) >> (64 - bits)) as u64;
            prop_assert!(contains(&t.sign_extend(bits), sx));
        }
    }
}
