//! Memory accesses: loads, stores and atomics through every pointer type,
//! per-byte stack slot tracking with register spills, helper memory
//! arguments, and legacy packet loads.

use super::ops::MAX_VAR_OFF;
use super::precision::{F_SLOT_READ, F_SLOT_WRITE, F_SPILL};
use super::{Engine, Res};
use crate::ctx::{self, CtxField};
use crate::env::ProgType;
use crate::scalar::Scalar;
use crate::state::{Reg, RegType, SlotType};
use crate::tnum::Tnum;
use cordon_isa::{AtomicOp, Kind};

/// What an access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    /// Store of `val` (from register `regno` if any).
    Write {
        val: Reg,
        regno: Option<u8>,
    },
}

impl Access {
    fn is_write(self) -> bool {
        matches!(self, Access::Write { .. })
    }
    fn extra(self) -> &'static str {
        if self.is_write() {
            " write to"
        } else {
            " read from"
        }
    }
}

fn unknown_of_size(size: u32) -> Reg {
    if size >= 8 {
        Reg::unknown()
    } else {
        Reg::scalar(Scalar::urange(0, (1u64 << (size * 8)) - 1))
    }
}

impl Engine<'_> {
    /// Linux's save_aux_ptr_type: an instruction that accesses the context
    /// (or another object whose accesses the runtime rewrites) must access
    /// the same kind of pointer on every path.
    fn check_same_ptr(&mut self, regno: u8) -> Res<()> {
        let ty = self.st.reg(regno).ty;
        let pc = self.pc;
        let strict = |t: RegType| matches!(t, RegType::Ctx | RegType::BtfId);
        match self.mem_ptr[pc] {
            None => self.mem_ptr[pc] = Some(ty),
            Some(prev) if prev != ty && (strict(prev) || strict(ty)) => {
                return Err("same insn cannot be used with different pointers".into());
            }
            Some(_) => {}
        }
        Ok(())
    }

    pub(crate) fn do_mem(&mut self, kind: Kind) -> Res<()> {
        match kind {
            Kind::Ldx { src: r, .. } | Kind::St { dst: r, .. } | Kind::Stx { dst: r, .. } => {
                let ty = self.st.reg(r).ty;
                if ty.is_pointer() {
                    self.check_same_ptr(r)?;
                }
            }
            _ => {}
        }
        match kind {
            Kind::Ldx {
                size,
                sign_extend,
                dst,
                src,
                off,
            } => {
                self.check_read(src)?;
                let mut v = self.mem_access(src, off as i64, size.bytes(), Access::Read)?;
                if sign_extend && v.is_scalar() {
                    v = Reg::scalar(v.var.truncate(size.bytes()).sign_extend(size.bytes() * 8));
                }
                *self.st.reg_mut(dst) = v;
                Ok(())
            }
            Kind::St {
                size,
                dst,
                off,
                imm,
            } => {
                self.check_read(dst)?;
                let val = Reg::konst(imm as i64 as u64);
                self.mem_access(
                    dst,
                    off as i64,
                    size.bytes(),
                    Access::Write { val, regno: None },
                )?;
                Ok(())
            }
            Kind::Stx {
                size,
                dst,
                src,
                off,
            } => {
                self.check_read(src)?;
                self.check_read(dst)?;
                let val = *self.st.reg(src);
                self.mem_access(
                    dst,
                    off as i64,
                    size.bytes(),
                    Access::Write {
                        val,
                        regno: Some(src),
                    },
                )?;
                Ok(())
            }
            Kind::Atomic {
                size,
                op,
                fetch,
                dst,
                src,
                off,
            } => self.do_atomic(size.bytes(), op, fetch, dst, src, off as i64),
            _ => Err("internal: not a memory instruction".into()),
        }
    }

    fn do_atomic(
        &mut self,
        size: u32,
        op: AtomicOp,
        fetch: bool,
        dst: u8,
        src: u8,
        off: i64,
    ) -> Res<()> {
        self.check_read(src)?;
        self.check_read(dst)?;
        if op == AtomicOp::Cmpxchg {
            self.check_read(0)?;
            if self.st.reg(0).is_pointer() && !self.privileged() {
                return Err("R0 leaks addr into mem".into());
            }
        }
        if self.st.reg(src).is_pointer() && !self.privileged() {
            return Err(format!("R{src} leaks addr into mem"));
        }
        let p = *self.st.reg(dst);
        if matches!(
            p.ty,
            RegType::Ctx
                | RegType::Packet
                | RegType::PacketMeta
                | RegType::PacketEnd
                | RegType::BtfId
        ) {
            return Err(format!(
                "BPF_ATOMIC stores into R{dst} {} is not allowed",
                p.ty.name()
            ));
        }
        // Read then write back an unknown value; atomics are always checked
        // for alignment (Linux's strict_alignment_once).
        self.strict_once = true;
        let loaded = self.mem_access(dst, off, size, Access::Read);
        let stored = loaded.as_ref().map_err(Clone::clone).and_then(|_| {
            let val = Reg::unknown();
            self.mem_access(dst, off, size, Access::Write { val, regno: None })
        });
        self.strict_once = false;
        let loaded = loaded?;
        stored?;
        let result = if loaded.is_pointer() {
            loaded
        } else {
            unknown_of_size(size)
        };
        if op == AtomicOp::Cmpxchg {
            *self.st.reg_mut(0) = result;
        } else if fetch {
            *self.st.reg_mut(src) = result;
        }
        Ok(())
    }

    pub(crate) fn do_ld_abs(&mut self, kind: Kind) -> Res<()> {
        if !self.env.prog_type.is_skb() {
            return Err("BPF_LD_[ABS|IND] instructions not allowed for this program type".into());
        }
        if !self.st.refs.is_empty() {
            return Err("BPF_LD_[ABS|IND] cannot be mixed with socket references".into());
        }
        if self.st.lock.is_some() {
            return Err("BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region".into());
        }
        self.check_read(6)?;
        if self.st.reg(6).ty != RegType::Ctx {
            return Err("at the time of BPF_LD_ABS|IND R6 != pointer to skb".into());
        }
        let size = match kind {
            Kind::LdAbs { size, .. } => size,
            Kind::LdInd { size, src, .. } => {
                self.check_read(src)?;
                size
            }
            _ => return Err("internal: not a legacy packet load".into()),
        };
        for r in 1..=5 {
            *self.st.reg_mut(r) = Reg::not_init();
        }
        *self.st.reg_mut(0) = unknown_of_size(size.bytes());
        Ok(())
    }

    /// Check an access of `size` bytes at `reg(regno) + off`; returns the loaded value.
    pub(crate) fn mem_access(&mut self, regno: u8, off: i64, size: u32, acc: Access) -> Res<Reg> {
        let p = *self.st.reg(regno);
        if p.is_scalar() {
            return Err(format!("R{regno} invalid mem access 'scalar'"));
        }
        if p.maybe_null {
            return Err(format!(
                "R{regno} invalid mem access '{}_or_null'",
                p.ty.name()
            ));
        }
        if let Access::Write {
            val,
            regno: Some(vr),
        } = acc
            && val.is_pointer()
            && !self.privileged()
            && p.ty != RegType::Stack
        {
            let what = match p.ty {
                RegType::MapValue => "map",
                RegType::Ctx => "ctx",
                RegType::Packet | RegType::PacketMeta => "packet",
                _ => "mem",
            };
            return Err(format!("R{vr} leaks addr into {what}"));
        }
        match p.ty {
            RegType::Stack => self.stack_access(regno, &p, off, size, acc),
            RegType::Ctx => self.ctx_access(regno, &p, off, size, acc),
            RegType::MapValue => {
                let Some(m) = self.env.maps.get(p.map as usize) else {
                    return Err(format!("R{regno} points to an unknown map"));
                };
                let rdonly =
                    m.rdonly_prog || crate::proto::map_values_rdonly(m.map_type.linux_id());
                let (vs, lock) = (m.value_size, m.spin_lock_off);
                if acc.is_write() && rdonly {
                    return Err(format!(
                        "write into map forbidden, value_size={vs} off={} size={size}",
                        p.off as i64 + off
                    ));
                }
                self.region_check(regno, &p, off, size, vs as i64, "map value", "value_size")?;
                if let Some(l) = lock {
                    let lo = p.off as i64 + off + p.var.smin;
                    let hi = p.off as i64 + off + p.var.umax as i64 + size as i64;
                    if lo < l as i64 + 4 && hi > l as i64 {
                        return Err(
                            "bpf_spin_lock cannot be accessed directly by load/store".into()
                        );
                    }
                }
                self.lax_align(&p, off, size, "value ")?;
                Ok(unknown_of_size(size))
            }
            RegType::MapKey => {
                if acc.is_write() {
                    return Err(format!("R{regno} cannot write into map_key"));
                }
                let ks = self
                    .env
                    .maps
                    .get(p.map as usize)
                    .map(|m| m.key_size)
                    .unwrap_or(0);
                self.region_check(regno, &p, off, size, ks as i64, "map key", "key_size")?;
                Ok(unknown_of_size(size))
            }
            RegType::Mem => {
                if acc.is_write() && p.rdonly {
                    return Err(format!("R{regno} cannot write into rdonly_mem"));
                }
                self.region_check(regno, &p, off, size, p.size as i64, "memory", "mem_size")?;
                Ok(unknown_of_size(size))
            }
            RegType::Packet | RegType::PacketMeta => {
                if acc.is_write()
                    && !matches!(
                        self.env.prog_type,
                        ProgType::Xdp | ProgType::SchedCls | ProgType::SchedAct
                    )
                {
                    return Err("cannot write into packet".into());
                }
                if p.var.smin < 0 {
                    return Err(format!(
                        "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
                    ));
                }
                let lo = p.off as i64 + off;
                if lo < 0 || lo + size as i64 > p.range as i64 {
                    return Err(format!(
                        "invalid access to packet, off={lo} size={size}, R{regno}(id={},off={},r={})",
                        p.id, p.off, p.range
                    ));
                }
                if (self.env.strict_alignment || self.strict_once) && size > 1 {
                    let t = p
                        .var
                        .var_off
                        .add(Tnum::konst((2 + p.off as i64 + off) as u64));
                    if !t.is_aligned(size as u64) {
                        return Err(format!(
                            "misaligned packet access off 2+{}+{}+{off} size {size}",
                            p.var.var_off, p.off
                        ));
                    }
                }
                Ok(unknown_of_size(size))
            }
            RegType::BtfId => {
                let Some(t) = p.obj.and_then(|o| self.env.registry.obj_type(o)) else {
                    return Err(format!("R{regno} invalid mem access 'ptr_'"));
                };
                let lo = p.off as i64 + off;
                if lo < 0 || lo + size as i64 > t.size as i64 {
                    return Err(format!(
                        "access beyond struct {} at off {lo} size {size}",
                        t.name
                    ));
                }
                if acc.is_write() {
                    if !t.writable {
                        return Err("only read is supported".into());
                    }
                    if let Access::Write {
                        val,
                        regno: Some(vr),
                    } = acc
                        && val.is_pointer()
                    {
                        return Err(format!("R{vr} leaks addr into object"));
                    }
                }
                Ok(unknown_of_size(size))
            }
            _ => Err(format!("R{regno} invalid mem access '{}'", p.ty.name())),
        }
    }

    /// Bounds of a sized region (map value, map key, memory).
    #[allow(clippy::too_many_arguments)]
    fn region_check(
        &self,
        regno: u8,
        p: &Reg,
        off: i64,
        size: u32,
        region: i64,
        what: &str,
        field: &str,
    ) -> Res<()> {
        let base = p.off as i64 + off;
        if p.var.smin < 0 && !p.var.is_const() {
            return Err(format!(
                "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
            ));
        }
        if p.var.umax >= MAX_VAR_OFF as u64 && !p.var.is_const() {
            return Err(format!(
                "R{regno} unbounded memory access, make sure to bounds check any such access"
            ));
        }
        let lo = base + p.var.smin;
        let hi = base + p.var.umax.min(MAX_VAR_OFF as u64) as i64 + size as i64;
        if lo < 0 || hi > region {
            if p.var.is_const() {
                return Err(format!(
                    "invalid access to {what}, {field}={region} off={lo} size={size}"
                ));
            }
            return Err(format!(
                "R{regno} {} value is outside of the allowed memory range",
                if lo < 0 { "min" } else { "max" }
            ));
        }
        Ok(())
    }

    fn lax_align(&self, p: &Reg, off: i64, size: u32, desc: &str) -> Res<()> {
        if !(self.env.strict_alignment || self.strict_once) || size == 1 {
            return Ok(());
        }
        let t = p.var.var_off.add(Tnum::konst((p.off as i64 + off) as u64));
        if !t.is_aligned(size as u64) {
            return Err(format!(
                "misaligned {desc}access off {}+{}+{off} size {size}",
                p.var.var_off, p.off
            ));
        }
        Ok(())
    }

    fn ctx_access(&mut self, regno: u8, p: &Reg, off: i64, size: u32, acc: Access) -> Res<Reg> {
        if !p.var.is_const() {
            return Err(format!(
                "variable ctx access var_off={} disallowed",
                p.var.var_off
            ));
        }
        let fixed = p.off as i64 + p.var.var_off.value as i64;
        if fixed != 0 {
            return Err(format!(
                "dereference of modified ctx ptr R{regno} off={fixed} disallowed"
            ));
        }
        if off.rem_euclid(size as i64) != 0 {
            return Err(format!(
                "misaligned context access off (0x0; 0x0)+0+{off} size {size}"
            ));
        }
        let Some(field) = ctx::access(self.env.prog_type, off, size, acc.is_write()) else {
            return Err(format!("invalid bpf_context access off={off} size={size}"));
        };
        let pc = self.pc;
        if matches!(
            self.prog.kind(pc),
            Some(Kind::Ldx { .. } | Kind::St { .. } | Kind::Stx { .. })
        ) {
            self.ctx_accesses.insert(
                pc,
                crate::facts::CtxAccess {
                    off: off as u32,
                    size,
                    write: acc.is_write(),
                    field,
                },
            );
        }
        Ok(match field {
            CtxField::Scalar => unknown_of_size(size),
            CtxField::PktData => Reg::ptr(RegType::Packet),
            CtxField::PktEnd => Reg::ptr(RegType::PacketEnd),
            CtxField::PktMeta => Reg::ptr(RegType::PacketMeta),
        })
    }

    fn stack_access(&mut self, regno: u8, p: &Reg, off: i64, size: u32, acc: Access) -> Res<Reg> {
        let off = p.off as i64 + off;
        let frame = p.frameno as usize;
        let max = self.env.limits.max_stack as i64;
        // Strict alignment on the stack (spill tracking relies on it).
        let t = p.var.var_off.add(Tnum::konst(off as u64));
        if !t.is_aligned(size as u64) {
            return Err(format!(
                "misaligned stack access off {}+{}+{} size {size}",
                p.var.var_off,
                p.off,
                off - p.off as i64
            ));
        }
        let allocated = self.st.frames[frame].stack.len() as i64 * 8;
        let min_valid = if acc.is_write() || self.privileged() {
            -max
        } else {
            -allocated
        };
        if let Some(v) = p.var.const_value() {
            let lo = off + v as i64;
            if lo < min_valid || lo + size as i64 > 0 {
                return Err(format!(
                    "invalid{} stack R{regno} off={off} size={size}",
                    acc.extra()
                ));
            }
            self.note_stack(p.frameno, -lo);
            return match acc {
                Access::Write { val, regno: vr } => {
                    self.stack_write_fixed(frame, lo, size, val, vr)?;
                    Ok(Reg::not_init())
                }
                Access::Read => self.stack_read_fixed(frame, lo, size),
            };
        }
        if p.var.smax >= MAX_VAR_OFF || p.var.smin <= -MAX_VAR_OFF {
            return Err(format!(
                "invalid unbounded variable-offset{} stack R{regno}",
                acc.extra()
            ));
        }
        let lo = p.var.smin + off;
        let hi = p.var.smax + off + size as i64;
        if lo < min_valid || hi > 0 {
            return Err(format!(
                "invalid variable-offset{} stack R{regno} var_off={} off={off} size={size}",
                acc.extra(),
                p.var.var_off
            ));
        }
        self.note_stack(p.frameno, -lo);
        match acc {
            Access::Write { val, regno: vr } => {
                let zero = val.is_null();
                if zero && let Some(r) = vr {
                    // STACK_ZERO depends on the exact value (Linux does the same).
                    self.mark_precise_regs(&[r]);
                }
                self.stack_mark_range(frame, lo, hi, zero, true)?;
                Ok(Reg::not_init())
            }
            Access::Read => self.stack_read_range(frame, lo, hi, regno, "", off, size),
        }
    }

    /// Mark bytes `[lo, hi)` of `frame`'s stack as written with unknown data
    /// (or zero). `var` = a variable-offset write (not every byte is written).
    pub(crate) fn stack_mark_range(
        &mut self,
        frame: usize,
        lo: i64,
        hi: i64,
        zero: bool,
        var: bool,
    ) -> Res<()> {
        let privileged = self.privileged();
        let f = &mut self.st.frames[frame];
        for o in lo..hi {
            let spi = ((-o - 1) / 8) as usize;
            let idx = (o + 8 * (spi as i64 + 1)) as usize;
            f.grow(spi);
            let slot = &mut f.stack[spi];
            let t = slot.types[idx];
            if t == SlotType::Iter {
                return Err(format!("cannot overwrite iterator stack slot off {o}"));
            }
            if var && !privileged && !matches!(t, SlotType::Misc | SlotType::Zero) {
                return Err(format!(
                    "uninit stack in range of var-offset write prohibited for !root; off: {o}"
                ));
            }
            if slot.is_spill() {
                if slot.spilled.is_pointer() && !privileged {
                    return Err("attempt to corrupt spilled pointer on stack".into());
                }
                for b in slot.types.iter_mut() {
                    if *b == SlotType::Spill {
                        *b = SlotType::Misc;
                    }
                }
                slot.spill_size = 0;
                slot.spilled = Reg::not_init();
            }
            slot.types[idx] = if zero && (!var || t == SlotType::Zero) {
                SlotType::Zero
            } else {
                SlotType::Misc
            };
        }
        Ok(())
    }

    fn stack_write_fixed(
        &mut self,
        frame: usize,
        lo: i64,
        size: u32,
        val: Reg,
        vr: Option<u8>,
    ) -> Res<()> {
        let spi = ((-lo - 1) / 8) as usize;
        let idx = (lo + 8 * (spi as i64 + 1)) as usize;
        let privileged = self.privileged();
        {
            let f = &mut self.st.frames[frame];
            f.grow(spi);
            let slot = &f.stack[spi];
            if slot.types[idx..idx + size as usize].contains(&SlotType::Iter) {
                return Err(format!("cannot overwrite iterator stack slot off {lo}"));
            }
            if !privileged && slot.is_spill() && slot.spilled.is_pointer() && size != 8 {
                return Err("attempt to corrupt spilled pointer on stack".into());
            }
        }
        let spill = if val.is_pointer() {
            if size != 8 {
                return Err("invalid size of register spill".into());
            }
            if val.ty == RegType::Stack && frame + 1 != self.st.frames.len() {
                return Err("cannot spill pointers to stack into stack frame of the caller".into());
            }
            Some(val)
        } else if idx == 0 && privileged && val.is_scalar() {
            let mut v = val;
            if size < 8 {
                let t = v.var.truncate(size);
                if t != v.var {
                    v.id = 0;
                }
                v.var = t;
            }
            Some(v)
        } else {
            None
        };
        match spill {
            Some(v) => {
                let flags = F_SLOT_WRITE | if vr.is_some() { F_SPILL } else { 0 };
                self.trace_mark(flags, Some((frame as u8, spi as u16)));
                let slot = &mut self.st.frames[frame].stack[spi];
                for (i, b) in slot.types.iter_mut().enumerate() {
                    if i < size as usize {
                        *b = SlotType::Spill;
                    } else if *b == SlotType::Spill {
                        *b = SlotType::Misc;
                    }
                }
                slot.spilled = v;
                slot.spill_size = size as u8;
                Ok(())
            }
            None => {
                // A plain write into a slot holding a spill destroys the spill
                // (its bytes become MISC), as Linux's scrub_spilled_slot does.
                let zero = val.is_null();
                if zero && let Some(r) = vr {
                    // STACK_ZERO depends on the exact value (Linux does the same).
                    self.mark_precise_regs(&[r]);
                }
                self.trace_mark(F_SLOT_WRITE, Some((frame as u8, spi as u16)));
                // A full 8-byte store may overwrite a spilled pointer even
                // unprivileged (Linux only refuses partial overwrites, checked
                // above).
                if size == 8 {
                    let slot = &mut self.st.frames[frame].stack[spi];
                    if slot.is_spill() {
                        slot.spilled = Reg::not_init();
                        slot.spill_size = 0;
                        for b in slot.types.iter_mut() {
                            if *b == SlotType::Spill {
                                *b = SlotType::Misc;
                            }
                        }
                    }
                }
                self.stack_mark_range(frame, lo, lo + size as i64, zero, false)
            }
        }
    }

    fn stack_read_fixed(&mut self, frame: usize, lo: i64, size: u32) -> Res<Reg> {
        let spi = ((-lo - 1) / 8) as usize;
        let idx = (lo + 8 * (spi as i64 + 1)) as usize;
        let Some(slot) = self.st.frames[frame].stack.get(spi).copied() else {
            if self.privileged() {
                return Ok(unknown_of_size(size));
            }
            return Err(format!("invalid read from stack off {lo}+0 size {size}"));
        };
        let end = idx + size as usize;
        if slot.is_spill() && idx < slot.spill_size as usize {
            let sp = slot.spilled;
            self.trace_mark(F_SLOT_READ, Some((frame as u8, spi as u16)));
            if sp.is_pointer() {
                if idx == 0 && size == 8 && slot.spill_size == 8 {
                    return Ok(sp);
                }
                return Err("invalid size of register fill".into());
            }
            if idx == 0 && size as u8 == slot.spill_size {
                return Ok(sp);
            }
            if end <= slot.spill_size as usize
                && let Some(v) = sp.var.const_value()
            {
                let part = v >> (8 * idx);
                return Ok(Reg::scalar(Scalar::konst(part).truncate(size)));
            }
        }
        let mut all_zero = true;
        for (i, t) in slot.types[idx..end].iter().enumerate() {
            match t {
                SlotType::Invalid => {
                    all_zero = false;
                    if !self.privileged() {
                        return Err(format!("invalid read from stack off {lo}+{i} size {size}"));
                    }
                }
                SlotType::Iter => return Err(format!("invalid read from iterator slot off {lo}")),
                SlotType::Zero => {}
                _ => all_zero = false,
            }
        }
        Ok(if all_zero {
            Reg::konst(0)
        } else {
            unknown_of_size(size)
        })
    }

    /// Read (or helper-read) of every byte in `[lo, hi)`: all must be
    /// initialized (privileged loads may read uninitialized stack).
    #[allow(clippy::too_many_arguments)]
    fn stack_read_range(
        &mut self,
        frame: usize,
        lo: i64,
        hi: i64,
        regno: u8,
        extra: &str,
        off: i64,
        size: u32,
    ) -> Res<Reg> {
        let privileged = self.privileged();
        let f = &self.st.frames[frame];
        let mut all_zero = true;
        for o in lo..hi {
            let spi = ((-o - 1) / 8) as usize;
            let idx = (o + 8 * (spi as i64 + 1)) as usize;
            let (t, sp) = match f.stack.get(spi) {
                Some(s) => (s.types[idx], s.spilled),
                None => (SlotType::Invalid, Reg::not_init()),
            };
            match t {
                SlotType::Zero => {}
                SlotType::Misc => all_zero = false,
                SlotType::Spill => {
                    all_zero = false;
                    if sp.is_pointer() && !privileged {
                        return Err(format!("leaking pointer from stack off {o}"));
                    }
                }
                SlotType::Invalid => {
                    all_zero = false;
                    if !privileged {
                        return Err(format!(
                            "invalid{extra} read from stack R{regno} off {off}+{} size {size}",
                            o - lo
                        ));
                    }
                }
                SlotType::Iter => {
                    return Err(format!("invalid{extra} read from iterator slot off {o}"));
                }
            }
        }
        Ok(if all_zero && hi - lo <= 8 {
            Reg::konst(0)
        } else {
            unknown_of_size(size.min(8))
        })
    }

    /// A helper reads (or writes, `write`) `[ptr, ptr + max_size)` through
    /// register `regno`. `max_size == 0` checks nothing.
    pub(crate) fn helper_mem_access(&mut self, regno: u8, max_size: u64, write: bool) -> Res<()> {
        if max_size == 0 {
            return Ok(());
        }
        let p = *self.st.reg(regno);
        if max_size >= MAX_VAR_OFF as u64 {
            return Err(format!(
                "R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'"
            ));
        }
        let size = max_size as u32;
        match p.ty {
            RegType::Stack => {
                let off = p.off as i64;
                let frame = p.frameno as usize;
                if p.var.smax >= MAX_VAR_OFF || p.var.smin <= -MAX_VAR_OFF {
                    return Err(format!(
                        "invalid unbounded variable-offset indirect access to stack R{regno}"
                    ));
                }
                let lo = p.var.smin + off;
                let hi = p.var.smax + off + size as i64;
                if lo < -(self.env.limits.max_stack as i64) || hi > 0 {
                    if p.var.is_const() {
                        return Err(format!(
                            "invalid indirect access to stack R{regno} off={off} size={size}"
                        ));
                    }
                    return Err(format!(
                        "invalid variable-offset indirect access to stack R{regno} var_off={} off={off} size={size}",
                        p.var.var_off
                    ));
                }
                self.note_stack(p.frameno, -lo);
                if write {
                    self.stack_mark_range(frame, lo, hi, false, !p.var.is_const())
                } else {
                    self.stack_read_range(frame, lo, hi, regno, " indirect", off, size)
                        .map(|_| ())
                }
            }
            RegType::MapValue
            | RegType::MapKey
            | RegType::Mem
            | RegType::Packet
            | RegType::PacketMeta => {
                let acc = if write {
                    Access::Write {
                        val: Reg::unknown(),
                        regno: None,
                    }
                } else {
                    Access::Read
                };
                // Check the whole range as one access of `size` bytes.
                let saved = self.env.strict_alignment;
                let _ = saved;
                self.mem_access_sized(regno, size, acc)
            }
            _ => Err(format!(
                "R{regno} type={} not a memory pointer",
                p.ty.name()
            )),
        }
    }

    fn mem_access_sized(&mut self, regno: u8, size: u32, acc: Access) -> Res<()> {
        let p = *self.st.reg(regno);
        match p.ty {
            RegType::Packet | RegType::PacketMeta => {
                if acc.is_write()
                    && !matches!(
                        self.env.prog_type,
                        ProgType::Xdp | ProgType::SchedCls | ProgType::SchedAct
                    )
                {
                    return Err("cannot write into packet".into());
                }
                if p.var.smin < 0 {
                    return Err(format!(
                        "R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."
                    ));
                }
                let lo = p.off as i64;
                if lo < 0 || lo + size as i64 > p.range as i64 {
                    return Err(format!(
                        "invalid access to packet, off={lo} size={size}, R{regno}(id={},off={},r={})",
                        p.id, p.off, p.range
                    ));
                }
                Ok(())
            }
            RegType::MapValue => {
                let Some(m) = self.env.maps.get(p.map as usize) else {
                    return Err(format!("R{regno} points to an unknown map"));
                };
                if acc.is_write()
                    && (m.rdonly_prog || crate::proto::map_values_rdonly(m.map_type.linux_id()))
                {
                    return Err(format!(
                        "write into map forbidden, value_size={} off={} size={size}",
                        m.value_size, p.off
                    ));
                }
                let vs = m.value_size as i64;
                self.region_check(regno, &p, 0, size, vs, "map value", "value_size")
            }
            RegType::MapKey => {
                if acc.is_write() {
                    return Err(format!("R{regno} cannot write into map_key"));
                }
                let ks = self
                    .env
                    .maps
                    .get(p.map as usize)
                    .map(|m| m.key_size)
                    .unwrap_or(0);
                self.region_check(regno, &p, 0, size, ks as i64, "map key", "key_size")
            }
            RegType::Mem => {
                if acc.is_write() && p.rdonly {
                    return Err(format!("R{regno} cannot write into rdonly_mem"));
                }
                self.region_check(regno, &p, 0, size, p.size as i64, "memory", "mem_size")
            }
            _ => Err(format!("R{regno} invalid mem access '{}'", p.ty.name())),
        }
    }
}
