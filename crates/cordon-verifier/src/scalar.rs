//! Scalar value tracking: a [`Tnum`] plus signed/unsigned 64- and 32-bit bounds,
//! kept mutually consistent the way Linux's verifier does (update from the tnum,
//! deduce signed from unsigned and back, 32 from 64 and back, then tighten the
//! tnum from the ranges).

use crate::tnum::Tnum;
use cordon_isa::AluOp;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Scalar {
    pub var_off: Tnum,
    pub smin: i64,
    pub smax: i64,
    pub umin: u64,
    pub umax: u64,
    pub s32min: i32,
    pub s32max: i32,
    pub u32min: u32,
    pub u32max: u32,
}

impl Default for Scalar {
    fn default() -> Self {
        Scalar::unknown()
    }
}

impl Scalar {
    pub const fn unknown() -> Scalar {
        Scalar {
            var_off: Tnum::UNKNOWN,
            smin: i64::MIN,
            smax: i64::MAX,
            umin: 0,
            umax: u64::MAX,
            s32min: i32::MIN,
            s32max: i32::MAX,
            u32min: 0,
            u32max: u32::MAX,
        }
    }

    pub const fn konst(v: u64) -> Scalar {
        Scalar {
            var_off: Tnum::konst(v),
            smin: v as i64,
            smax: v as i64,
            umin: v,
            umax: v,
            s32min: v as u32 as i32,
            s32max: v as u32 as i32,
            u32min: v as u32,
            u32max: v as u32,
        }
    }

    /// Unsigned range `[lo, hi]` (then synced).
    pub fn urange(lo: u64, hi: u64) -> Scalar {
        let mut s = Scalar::unknown();
        s.umin = lo;
        s.umax = hi;
        s.var_off = Tnum::range(lo, hi);
        s.sync();
        s
    }

    /// Signed range `[lo, hi]` (then synced).
    pub fn srange(lo: i64, hi: i64) -> Scalar {
        let mut s = Scalar::unknown();
        s.smin = lo;
        s.smax = hi;
        s.sync();
        s
    }

    pub fn is_const(&self) -> bool {
        self.var_off.is_const()
    }

    pub fn const_value(&self) -> Option<u64> {
        self.var_off.is_const().then_some(self.var_off.value)
    }

    pub fn is_const32(&self) -> bool {
        self.var_off.subreg().is_const()
    }

    pub fn is_unbounded(&self) -> bool {
        *self == Scalar::unknown()
    }

    /// Is every 64-bit value of `cur` also a value of `self`? (range_within + tnum_in)
    pub fn contains(&self, cur: &Scalar) -> bool {
        self.umin <= cur.umin
            && self.umax >= cur.umax
            && self.smin <= cur.smin
            && self.smax >= cur.smax
            && self.u32min <= cur.u32min
            && self.u32max >= cur.u32max
            && self.s32min <= cur.s32min
            && self.s32max >= cur.s32max
            && self.var_off.contains(cur.var_off)
    }

    /// False when the bounds describe no value at all (a branch that cannot be taken).
    pub fn is_consistent(&self) -> bool {
        self.umin <= self.umax
            && self.smin <= self.smax
            && self.u32min <= self.u32max
            && self.s32min <= self.s32max
            && self.var_off.umin() <= self.umax
            && self.var_off.umax() >= self.umin
            && (self.var_off.value as u32) <= self.u32max
            && ((self.var_off.value | self.var_off.mask) as u32) >= self.u32min
    }

    fn update_bounds(&mut self) {
        let v32 = self.var_off.subreg();
        self.s32min = self
            .s32min
            .max((v32.value | (v32.mask & 0x8000_0000)) as u32 as i32);
        self.s32max = self
            .s32max
            .min((v32.value | (v32.mask & 0x7fff_ffff)) as u32 as i32);
        self.u32min = self.u32min.max(v32.value as u32);
        self.u32max = self.u32max.min((v32.value | v32.mask) as u32);
        let v = self.var_off;
        self.smin = self.smin.max((v.value | (v.mask & (1 << 63))) as i64);
        self.smax = self.smax.min((v.value | (v.mask & !(1u64 << 63))) as i64);
        self.umin = self.umin.max(v.value);
        self.umax = self.umax.min(v.value | v.mask);
    }

    fn deduce32(&mut self) {
        // 64 -> 32: when the upper halves of the range ends agree, the low
        // halves form a range.
        if self.umin >> 32 == self.umax >> 32 {
            let (lo, hi) = (self.umin as u32, self.umax as u32);
            self.u32min = self.u32min.max(lo);
            self.u32max = self.u32max.min(hi);
            if (lo as i32) <= (hi as i32) {
                self.s32min = self.s32min.max(lo as i32);
                self.s32max = self.s32max.min(hi as i32);
            }
        }
        if (self.smin as u64) >> 32 == (self.smax as u64) >> 32 {
            let (lo, hi) = (self.smin as u32, self.smax as u32);
            if lo <= hi {
                self.u32min = self.u32min.max(lo);
                self.u32max = self.u32max.min(hi);
            }
            if (lo as i32) <= (hi as i32) {
                self.s32min = self.s32min.max(lo as i32);
                self.s32max = self.s32max.min(hi as i32);
            }
        }
        // A 64-bit value inside the s32 range has that value as its low half.
        if self.smin >= i32::MIN as i64 && self.smax <= i32::MAX as i64 {
            self.s32min = self.s32min.max(self.smin as i32);
            self.s32max = self.s32max.min(self.smax as i32);
        }
        // Signed 32 <-> unsigned 32.
        if (self.u32min as i32) <= (self.u32max as i32) {
            self.s32min = self.s32min.max(self.u32min as i32);
            self.s32max = self.s32max.min(self.u32max as i32);
        }
        if (self.s32min as u32) <= (self.s32max as u32) {
            self.u32min = self.u32min.max(self.s32min as u32);
            self.u32max = self.u32max.min(self.s32max as u32);
        }
    }

    fn deduce64(&mut self) {
        // Signed 64 <-> unsigned 64.
        if (self.umin as i64) <= (self.umax as i64) {
            self.smin = self.smin.max(self.umin as i64);
            self.smax = self.smax.min(self.umax as i64);
        }
        if (self.smin as u64) <= (self.smax as u64) {
            self.umin = self.umin.max(self.smin as u64);
            self.umax = self.umax.min(self.smax as u64);
        }
        // 32 -> 64: with fixed upper 32 bits the low half bounds apply.
        if self.umin >> 32 == self.umax >> 32 {
            let hi = self.umin & !0xffff_ffffu64;
            self.umin = self.umin.max(hi | self.u32min as u64);
            self.umax = self.umax.min(hi | self.u32max as u64);
        }
        if (self.smin as u64) >> 32 == (self.smax as u64) >> 32 {
            let hi = (self.smin as u64) & !0xffff_ffffu64;
            let (lo, up) = (
                (hi | self.u32min as u64) as i64,
                (hi | self.u32max as u64) as i64,
            );
            if lo <= up {
                self.smin = self.smin.max(lo);
                self.smax = self.smax.min(up);
            }
        }
        // A value inside the s32 range equals the sign extension of its low half.
        if self.smin >= i32::MIN as i64 && self.smax <= i32::MAX as i64 {
            self.smin = self.smin.max(self.s32min as i64);
            self.smax = self.smax.min(self.s32max as i64);
        }
    }

    fn bound_offset(&mut self) {
        let v64 = self.var_off.intersect(Tnum::range(self.umin, self.umax));
        let v32 = self
            .var_off
            .subreg()
            .intersect(Tnum::range(self.u32min as u64, self.u32max as u64));
        self.var_off = v64.clear_subreg().or(v32);
    }

    /// Make all the bounds and the tnum agree (Linux's `reg_bounds_sync`).
    pub fn sync(&mut self) {
        if !self.is_consistent() {
            return;
        }
        self.update_bounds();
        for _ in 0..2 {
            self.deduce32();
            self.deduce64();
        }
        self.bound_offset();
        self.update_bounds();
    }

    /// Reset all bounds from the 64-bit tnum only.
    pub fn from_tnum(t: Tnum) -> Scalar {
        let mut s = Scalar::unknown();
        s.var_off = t;
        s.sync();
        s
    }

    /// Zero-extend the low 32 bits into the whole register (result of an ALU32 op).
    pub fn zext32(&self) -> Scalar {
        let mut s = Scalar::unknown();
        s.var_off = self.var_off.subreg();
        s.u32min = self.u32min;
        s.u32max = self.u32max;
        s.s32min = self.s32min;
        s.s32max = self.s32max;
        s.umin = self.u32min as u64;
        s.umax = self.u32max as u64;
        s.sync();
        s
    }

    /// The subregister viewed as a zero-extended 64-bit value.
    fn view_zext(&self) -> Scalar {
        self.zext32()
    }

    /// The subregister viewed as a sign-extended 64-bit value.
    fn view_sext(&self) -> Scalar {
        let mut s = Scalar::unknown();
        let sub = self.var_off.subreg();
        s.var_off = if sub.mask & 0x8000_0000 != 0 {
            Tnum::new(sub.value, sub.mask | 0xffff_ffff_0000_0000)
        } else if sub.value & 0x8000_0000 != 0 {
            Tnum::new(sub.value | 0xffff_ffff_0000_0000, sub.mask)
        } else {
            sub
        };
        s.smin = self.s32min as i64;
        s.smax = self.s32max as i64;
        s.u32min = self.u32min;
        s.u32max = self.u32max;
        s.s32min = self.s32min;
        s.s32max = self.s32max;
        s.sync();
        s
    }

    /// Keep only the low `size` bytes (zero-extended), like a narrow load or `le16`.
    pub fn truncate(&self, size: u32) -> Scalar {
        if size >= 8 {
            return *self;
        }
        let bits = size * 8;
        let mask = (1u64 << bits) - 1;
        let mut s = Scalar::unknown();
        s.var_off = self.var_off.cast(size);
        if self.umin >> bits == self.umax >> bits {
            s.umin = self.umin & mask;
            s.umax = self.umax & mask;
        } else {
            s.umin = 0;
            s.umax = mask;
        }
        s.sync();
        s
    }

    /// Sign-extend the low `bits` bits (movsx, ldxs).
    pub fn sign_extend(&self, bits: u32) -> Scalar {
        if let Some(v) = self.const_value() {
            let sh = 64 - bits;
            return Scalar::konst((((v << sh) as i64) >> sh) as u64);
        }
        let half = 1u64 << (bits - 1);
        if self.umax < half {
            return *self;
        }
        Scalar::srange(-(half as i64), (half - 1) as i64)
    }

    /// Abstract result of `self op src` on 64-bit values. `None` operations
    /// (Linux leaves them unknown) return an unknown scalar.
    pub fn alu64(&self, op: AluOp, src: &Scalar) -> Scalar {
        let mut r = match op {
            AluOp::Add => self.add(src),
            AluOp::Sub => self.sub(src),
            AluOp::Mul => self.mul(src),
            AluOp::And => self.and(src),
            AluOp::Or => self.or(src),
            AluOp::Xor => self.xor(src),
            AluOp::Lsh => match src.const_value() {
                Some(s) if s < 64 => self.lsh(s as u32),
                _ => Scalar::unknown(),
            },
            AluOp::Rsh => match src.const_value() {
                Some(s) if s < 64 => self.rsh(s as u32),
                _ => Scalar::unknown(),
            },
            AluOp::Arsh => match src.const_value() {
                Some(s) if s < 64 => self.arsh(s as u32),
                _ => Scalar::unknown(),
            },
            AluOp::Neg => Scalar::konst(0).sub(self),
            AluOp::Mov => *src,
            AluOp::MovSx(bits) => src.sign_extend(bits as u32),
            // Linux 6.18 computes no range for any division or modulo (not
            // even of constants): is_safe_to_compute_dst_reg_range() is false.
            AluOp::Div | AluOp::Mod | AluOp::SDiv | AluOp::SMod => Scalar::unknown(),
        };
        r.sync();
        r
    }

    /// Abstract result of a 32-bit ALU op (upper half zeroed).
    pub fn alu32(&self, op: AluOp, src: &Scalar) -> Scalar {
        match op {
            AluOp::Mov => src.zext32(),
            AluOp::MovSx(bits) => src.view_zext().sign_extend(bits as u32).zext32(),
            AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
                // Linux 6.18 (is_safe_to_compute_dst_reg_range): a shift by
                // a non-constant or out-of-range amount makes the whole
                // 64-bit register unknown, even for 32-bit operations.
                let Some(s) = src
                    .var_off
                    .subreg()
                    .is_const()
                    .then_some(src.var_off.value as u32)
                else {
                    return Scalar::unknown();
                };
                if s >= 32 {
                    return Scalar::unknown();
                }
                let r = match op {
                    AluOp::Lsh => self.view_zext().lsh(s),
                    AluOp::Rsh => self.view_zext().rsh(s),
                    _ => self.view_sext().arsh(s),
                };
                let mut r = r;
                r.sync();
                r.truncate(4)
            }
            // As for shifts: no range, and the upper half is not known to
            // be zero either (Linux marks the whole register unknown).
            AluOp::Div | AluOp::SDiv | AluOp::Mod | AluOp::SMod => Scalar::unknown(),
            _ => {
                // add/sub/mul/and/or/xor/neg commute with truncation mod 2^32:
                // compute on both the zero- and sign-extended views and intersect.
                let a = self.view_zext().alu64(op, &src.view_zext()).truncate(4);
                let b = self.view_sext().alu64(op, &src.view_sext()).truncate(4);
                let lo = a.var_off.intersect(b.var_off);
                let mut r = a;
                r.var_off = lo;
                r.u32min = a.u32min.max(b.u32min);
                r.u32max = a.u32max.min(b.u32max);
                r.s32min = a.s32min.max(b.s32min);
                r.s32max = a.s32max.min(b.s32max);
                r.umin = r.u32min as u64;
                r.umax = r.u32max as u64;
                r.smin = 0;
                r.smax = u32::MAX as i64;
                r.sync();
                if !r.is_consistent() {
                    return a;
                }
                r.zext32()
            }
        }
    }

    fn add(&self, b: &Scalar) -> Scalar {
        let mut r = Scalar::unknown();
        if let (Some(lo), Some(hi)) = (self.smin.checked_add(b.smin), self.smax.checked_add(b.smax))
        {
            r.smin = lo;
            r.smax = hi;
        }
        if let (Some(lo), Some(hi)) = (self.umin.checked_add(b.umin), self.umax.checked_add(b.umax))
        {
            r.umin = lo;
            r.umax = hi;
        }
        r.var_off = self.var_off.add(b.var_off);
        r
    }

    fn sub(&self, b: &Scalar) -> Scalar {
        let mut r = Scalar::unknown();
        if let (Some(lo), Some(hi)) = (self.smin.checked_sub(b.smax), self.smax.checked_sub(b.smin))
        {
            r.smin = lo;
            r.smax = hi;
        }
        if self.umin >= b.umax {
            r.umin = self.umin - b.umax;
            r.umax = self.umax - b.umin;
        }
        r.var_off = self.var_off.sub(b.var_off);
        r
    }

    fn mul(&self, b: &Scalar) -> Scalar {
        let mut r = Scalar::unknown();
        if let Some(hi) = self.umax.checked_mul(b.umax) {
            r.umin = self.umin * b.umin;
            r.umax = hi;
        }
        let corners = [
            self.smin.checked_mul(b.smin),
            self.smin.checked_mul(b.smax),
            self.smax.checked_mul(b.smin),
            self.smax.checked_mul(b.smax),
        ];
        if corners.iter().all(|c| c.is_some()) {
            let vals = corners.map(|c| c.unwrap_or(0));
            r.smin = *vals.iter().min().unwrap_or(&i64::MIN);
            r.smax = *vals.iter().max().unwrap_or(&i64::MAX);
        }
        r.var_off = self.var_off.mul(b.var_off);
        r
    }

    fn and(&self, b: &Scalar) -> Scalar {
        let mut r = Scalar::unknown();
        r.var_off = self.var_off.and(b.var_off);
        r.umin = r.var_off.value;
        r.umax = self.umax.min(b.umax);
        if self.smin >= 0 && b.smin >= 0 {
            r.smin = r.umin as i64;
            r.smax = r.umax as i64;
        }
        r
    }

    fn or(&self, b: &Scalar) -> Scalar {
        let mut r = Scalar::unknown();
        r.var_off = self.var_off.or(b.var_off);
        r.umin = self.umin.max(b.umin);
        r.umax = r.var_off.umax();
        if self.smin >= 0 && b.smin >= 0 {
            r.smin = r.umin as i64;
            r.smax = r.umax as i64;
        }
        r
    }

    fn xor(&self, b: &Scalar) -> Scalar {
        let mut r = Scalar::unknown();
        r.var_off = self.var_off.xor(b.var_off);
        r.umin = r.var_off.value;
        r.umax = r.var_off.umax();
        if self.smin >= 0 && b.smin >= 0 {
            r.smin = r.umin as i64;
            r.smax = r.umax as i64;
        }
        r
    }

    fn lsh(&self, s: u32) -> Scalar {
        let mut r = Scalar::unknown();
        if s == 0 {
            return *self;
        }
        if self.umax <= (u64::MAX >> s) {
            r.umin = self.umin << s;
            r.umax = self.umax << s;
        }
        r.var_off = self.var_off.lshift(s);
        r
    }

    fn rsh(&self, s: u32) -> Scalar {
        let mut r = Scalar::unknown();
        r.umin = self.umin >> s;
        r.umax = self.umax >> s;
        r.var_off = self.var_off.rshift(s);
        r
    }

    fn arsh(&self, s: u32) -> Scalar {
        let mut r = Scalar::unknown();
        r.smin = self.smin >> s;
        r.smax = self.smax >> s;
        r.var_off = self.var_off.arshift(s, 64);
        r
    }

    /// Endianness conversion / byte swap of the low `bits` bits.
    pub fn endian(&self, swap: bool, bits: u32) -> Scalar {
        if !swap {
            return if bits == 64 {
                *self
            } else {
                self.truncate(bits / 8)
            };
        }
        if let Some(v) = self.const_value() {
            let r = match bits {
                16 => (v as u16).swap_bytes() as u64,
                32 => (v as u32).swap_bytes() as u64,
                _ => v.swap_bytes(),
            };
            return Scalar::konst(r);
        }
        if bits == 64 {
            Scalar::unknown()
        } else {
            Scalar::urange(0, (1u64 << bits) - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains_val(s: &Scalar, v: u64) -> bool {
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

    fn concrete(op: AluOp, a: u64, b: u64, wide: bool) -> Option<u64> {
        let r = if wide {
            match op {
                AluOp::Add => a.wrapping_add(b),
                AluOp::Sub => a.wrapping_sub(b),
                AluOp::Mul => a.wrapping_mul(b),
                AluOp::And => a & b,
                AluOp::Or => a | b,
                AluOp::Xor => a ^ b,
                AluOp::Lsh => a.checked_shl(b as u32)?,
                AluOp::Rsh => a.checked_shr(b as u32)?,
                AluOp::Arsh => ((a as i64).checked_shr(b as u32)?) as u64,
                _ => return None,
            }
        } else {
            let (x, y) = (a as u32, b as u32);
            (match op {
                AluOp::Add => x.wrapping_add(y),
                AluOp::Sub => x.wrapping_sub(y),
                AluOp::Mul => x.wrapping_mul(y),
                AluOp::And => x & y,
                AluOp::Or => x | y,
                AluOp::Xor => x ^ y,
                AluOp::Lsh => x.checked_shl(y)?,
                AluOp::Rsh => x.checked_shr(y)?,
                AluOp::Arsh => ((x as i32).checked_shr(y)?) as u32,
                _ => return None,
            }) as u64
        };
        Some(r)
    }

    #[test]
    fn alu_is_sound_on_samples() {
        let ranges: Vec<(i64, i64)> = vec![
            (0, 0),
            (0, 10),
            (-5, 5),
            (-100, -50),
            (250, 260),
            (0x7fff_fff0, 0x8000_0010),
            (-1, 1),
            (3, 3),
            (0xffff_fff0, 0x1_0000_0005),
        ];
        let ops = [
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
        for &(alo, ahi) in &ranges {
            for &(blo, bhi) in &ranges {
                let a = Scalar::srange(alo, ahi);
                let b = Scalar::srange(blo, bhi);
                for op in ops {
                    for wide in [true, false] {
                        let r = if wide {
                            a.alu64(op, &b)
                        } else {
                            a.alu32(op, &b)
                        };
                        for x in alo..=ahi.min(alo + 12) {
                            for y in blo..=bhi.min(blo + 12) {
                                if let Some(v) = concrete(op, x as u64, y as u64, wide) {
                                    assert!(
                                        contains_val(&r, v),
                                        "{op:?} wide={wide} {x} {y} -> {v:#x} not in {r:?}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sync_derives_ranges() {
        let s = Scalar::urange(0, 255);
        assert_eq!(s.smax, 255);
        assert_eq!(s.u32max, 255);
        assert_eq!(s.var_off, Tnum::new(0, 0xff));
        let t = Scalar::srange(-3, 3);
        assert_eq!(t.s32min, -3);
        assert_eq!(t.umax, u64::MAX);
        let k = Scalar::konst(7).alu64(AluOp::Add, &Scalar::konst(8));
        assert_eq!(k.const_value(), Some(15));
    }
}
