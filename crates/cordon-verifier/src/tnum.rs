//! Tristate numbers: a 64-bit value where each bit is known 0, known 1 or unknown.
//!
//! `value` holds the known-1 bits, `mask` the unknown bits; `value & mask == 0`.
//! The arithmetic follows the published tnum algebra (Vishwanathan et al.,
//! "Sound, Precise, and Fast Abstract Interpretation with Tristate Numbers").

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Tnum {
    pub value: u64,
    pub mask: u64,
}

#[allow(clippy::should_implement_trait)]
impl Tnum {
    pub const UNKNOWN: Tnum = Tnum {
        value: 0,
        mask: u64::MAX,
    };

    pub const fn new(value: u64, mask: u64) -> Tnum {
        Tnum {
            value: value & !mask,
            mask,
        }
    }

    pub const fn konst(value: u64) -> Tnum {
        Tnum { value, mask: 0 }
    }

    pub fn is_const(self) -> bool {
        self.mask == 0
    }

    pub fn equals_const(self, v: u64) -> bool {
        self.is_const() && self.value == v
    }

    pub fn is_unknown(self) -> bool {
        self.mask == u64::MAX
    }

    /// The smallest tnum containing every value of `[min, max]`.
    pub fn range(min: u64, max: u64) -> Tnum {
        let chi = min ^ max;
        let bits = 64 - chi.leading_zeros();
        if bits > 63 {
            return Tnum::UNKNOWN;
        }
        let delta = (1u64 << bits) - 1;
        Tnum::new(min & !delta, delta)
    }

    pub fn lshift(self, shift: u32) -> Tnum {
        Tnum::new(self.value << shift, self.mask << shift)
    }

    pub fn rshift(self, shift: u32) -> Tnum {
        Tnum::new(self.value >> shift, self.mask >> shift)
    }

    /// Arithmetic right shift of the low `insn_bitness` bits (32 or 64).
    pub fn arshift(self, shift: u32, bitness: u32) -> Tnum {
        if bitness == 32 {
            Tnum::new(
                ((self.value as i32) >> shift) as u32 as u64,
                ((self.mask as i32) >> shift) as u32 as u64,
            )
        } else {
            Tnum::new(
                ((self.value as i64) >> shift) as u64,
                ((self.mask as i64) >> shift) as u64,
            )
        }
    }

    pub fn add(self, b: Tnum) -> Tnum {
        let sm = self.mask.wrapping_add(b.mask);
        let sv = self.value.wrapping_add(b.value);
        let sigma = sm.wrapping_add(sv);
        let chi = sigma ^ sv;
        let mu = chi | self.mask | b.mask;
        Tnum::new(sv & !mu, mu)
    }

    pub fn sub(self, b: Tnum) -> Tnum {
        let dv = self.value.wrapping_sub(b.value);
        let alpha = dv.wrapping_add(self.mask);
        let beta = dv.wrapping_sub(b.mask);
        let chi = alpha ^ beta;
        let mu = chi | self.mask | b.mask;
        Tnum::new(dv & !mu, mu)
    }

    pub fn neg(self) -> Tnum {
        Tnum::konst(0).sub(self)
    }

    pub fn and(self, b: Tnum) -> Tnum {
        let alpha = self.value | self.mask;
        let beta = b.value | b.mask;
        let v = self.value & b.value;
        Tnum::new(v, alpha & beta & !v)
    }

    pub fn or(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask | b.mask;
        Tnum::new(v, mu & !v)
    }

    pub fn xor(self, b: Tnum) -> Tnum {
        let v = self.value ^ b.value;
        let mu = self.mask | b.mask;
        Tnum::new(v & !mu, mu)
    }

    /// Multiplication (the shift-and-add algorithm of the tnum paper).
    pub fn mul(self, b: Tnum) -> Tnum {
        let mut a = self;
        let mut b = b;
        let acc_v = a.value.wrapping_mul(b.value);
        let mut acc_m = Tnum::konst(0);
        while a.value != 0 || a.mask != 0 {
            if a.value & 1 != 0 {
                acc_m = acc_m.add(Tnum::new(0, b.mask));
            } else if a.mask & 1 != 0 {
                acc_m = acc_m.add(Tnum::new(0, b.value | b.mask));
            }
            a = a.rshift(1);
            b = b.lshift(1);
        }
        Tnum::konst(acc_v).add(acc_m)
    }

    /// Values in both `self` and `b` (used when both are known to hold).
    pub fn intersect(self, b: Tnum) -> Tnum {
        let v = self.value | b.value;
        let mu = self.mask & b.mask;
        Tnum::new(v & !mu, mu)
    }

    /// Truncate to the low `size` bytes.
    pub fn cast(self, size: u32) -> Tnum {
        if size >= 8 {
            return self;
        }
        let m = (1u64 << (size * 8)) - 1;
        Tnum::new(self.value & m, self.mask & m)
    }

    pub fn is_aligned(self, size: u64) -> bool {
        if size == 0 {
            return true;
        }
        (self.value | self.mask) & (size - 1) == 0
    }

    /// Is every value of `b` also a value of `self`?
    pub fn contains(self, b: Tnum) -> bool {
        if b.mask & !self.mask != 0 {
            return false;
        }
        (b.value & !self.mask) == self.value
    }

    pub fn subreg(self) -> Tnum {
        self.cast(4)
    }

    pub fn clear_subreg(self) -> Tnum {
        self.rshift(32).lshift(32)
    }

    pub fn with_subreg(self, sub: Tnum) -> Tnum {
        self.clear_subreg().or(sub.cast(4))
    }

    pub fn const_subreg(self, v: u32) -> Tnum {
        self.with_subreg(Tnum::konst(v as u64))
    }

    pub fn umin(self) -> u64 {
        self.value
    }

    pub fn umax(self) -> u64 {
        self.value | self.mask
    }
}

impl fmt::Display for Tnum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:#x}; {:#x})", self.value, self.mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(t: Tnum, vals: &[u64]) -> bool {
        vals.iter().all(|&v| (v & !t.mask) == t.value)
    }

    #[test]
    fn range_and_ops_are_sound() {
        let samples: Vec<(u64, u64)> = vec![(0, 0), (0, 7), (3, 9), (16, 31), (5, 5), (100, 300)];
        for &(amin, amax) in &samples {
            for &(bmin, bmax) in &samples {
                let a = Tnum::range(amin, amax);
                let b = Tnum::range(bmin, bmax);
                for x in amin..=amax.min(amin + 20) {
                    for y in bmin..=bmax.min(bmin + 20) {
                        assert!(members(a.add(b), &[x.wrapping_add(y)]));
                        assert!(members(a.sub(b), &[x.wrapping_sub(y)]));
                        assert!(members(a.mul(b), &[x.wrapping_mul(y)]));
                        assert!(members(a.and(b), &[x & y]));
                        assert!(members(a.or(b), &[x | y]));
                        assert!(members(a.xor(b), &[x ^ y]));
                    }
                }
            }
        }
    }

    #[test]
    fn contains_and_display() {
        assert!(Tnum::UNKNOWN.contains(Tnum::konst(5)));
        assert!(!Tnum::konst(5).contains(Tnum::UNKNOWN));
        assert_eq!(Tnum::range(0, 255).to_string(), "(0x0; 0xff)");
        assert!(Tnum::range(0, 255).contains(Tnum::konst(17)));
    }
}
