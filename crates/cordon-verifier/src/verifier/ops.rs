//! ALU instructions (scalar and pointer arithmetic), conditional jumps with
//! branch refinement, NULL checks and packet range discovery, and `lddw`.

use super::{Engine, Flow, Res};
use crate::branch;
use crate::log::alu_name;
use crate::scalar::Scalar;
use crate::state::{Reg, RegType, State};
use cordon_isa::{AluOp, EndianOp, JmpCond, Kind, Operand};

/// Linux's BPF_MAX_VAR_OFF.
pub(crate) const MAX_VAR_OFF: i64 = 1 << 29;
/// Linux's MAX_PACKET_OFF.
const MAX_PACKET_OFF: u64 = 0xffff;

impl Engine<'_> {
    pub(crate) fn check_read(&self, r: u8) -> Res<()> {
        if !self.st.reg(r).is_init() {
            return Err(format!("R{r} !read_ok"));
        }
        Ok(())
    }

    fn operand(&self, src: Operand, wide: bool) -> Res<Reg> {
        match src {
            Operand::Reg(r) => {
                self.check_read(r)?;
                Ok(*self.st.reg(r))
            }
            Operand::Imm(i) => Ok(Reg::konst(if wide {
                i as i64 as u64
            } else {
                i as u32 as u64
            })),
        }
    }

    pub(crate) fn do_alu(&mut self, kind: Kind) -> Res<()> {
        if let Kind::Endian { op, bits, dst } = kind {
            self.check_read(dst)?;
            let d = *self.st.reg(dst);
            *self.st.reg_mut(dst) = if d.is_pointer() {
                if !self.privileged() {
                    return Err(format!("R{dst} pointer arithmetic prohibited"));
                }
                Reg::unknown()
            } else {
                Reg::scalar(d.var.endian(op != EndianOp::Le, bits as u32))
            };
            return Ok(());
        }
        let Kind::Alu { wide, op, dst, src } = kind else {
            return Err("internal: not an ALU instruction".into());
        };
        if !matches!(op, AluOp::Mov | AluOp::MovSx(_)) {
            self.check_read(dst)?;
        }
        let bits = if wide { 64 } else { 32 };
        if let Operand::Imm(i) = src {
            match op {
                AluOp::Div | AluOp::SDiv | AluOp::Mod | AluOp::SMod if i == 0 => {
                    return Err("div by zero".into());
                }
                AluOp::Lsh | AluOp::Rsh | AluOp::Arsh if i < 0 || i >= bits => {
                    return Err(format!("invalid shift {i}"));
                }
                _ => {}
            }
        }
        let s = self.operand(src, wide)?;
        match op {
            AluOp::Mov | AluOp::MovSx(_) => self.do_mov(wide, op, dst, src, s),
            AluOp::Neg => {
                let d = *self.st.reg(dst);
                *self.st.reg_mut(dst) = if d.is_pointer() {
                    if !self.privileged() {
                        return Err(format!("R{dst} pointer arithmetic prohibited"));
                    }
                    Reg::unknown()
                } else if wide {
                    Reg::scalar(d.var.alu64(op, &d.var))
                } else {
                    Reg::scalar(d.var.alu32(op, &d.var))
                };
                Ok(())
            }
            _ => self.do_binop(wide, op, dst, src, s),
        }
    }

    fn do_mov(&mut self, wide: bool, op: AluOp, dst: u8, src: Operand, s: Reg) -> Res<()> {
        let Operand::Reg(sr) = src else {
            *self.st.reg_mut(dst) = s;
            return Ok(());
        };
        let result = if s.is_pointer() {
            match (wide, op) {
                (true, AluOp::Mov) => s,
                (true, _) => {
                    if !self.privileged() {
                        return Err(format!("R{sr} sign-extension part of pointer"));
                    }
                    Reg::unknown()
                }
                _ => {
                    if !self.privileged() {
                        return Err(format!("R{sr} partial copy of pointer"));
                    }
                    Reg::scalar(Scalar::urange(0, u32::MAX as u64))
                }
            }
        } else if wide && op == AluOp::Mov {
            // Copies of an unknown scalar share an id so that bounds learned
            // on one are learned on all (Linux's find_equal_scalars).
            let mut s = s;
            if s.id == 0 && !s.var.is_const() {
                s.id = self.new_id();
                *self.st.reg_mut(sr) = s;
            }
            s
        } else if wide {
            Reg::scalar(s.var.alu64(op, &s.var))
        } else {
            Reg::scalar(Scalar::unknown().alu32(op, &s.var))
        };
        *self.st.reg_mut(dst) = result;
        Ok(())
    }

    fn do_binop(&mut self, wide: bool, op: AluOp, dst: u8, src: Operand, s: Reg) -> Res<()> {
        let d = *self.st.reg(dst);
        // The scalar added to a pointer decides where it points: its exact
        // value matters to every continuation.
        if d.is_pointer() && !s.is_pointer() {
            if let Operand::Reg(r) = src {
                self.mark_precise_regs(&[r]);
            }
        } else if !d.is_pointer() && s.is_pointer() {
            self.mark_precise_regs(&[dst]);
        }
        let result = match (d.is_pointer(), s.is_pointer()) {
            (false, false) => {
                let v = if wide {
                    d.var.alu64(op, &s.var)
                } else {
                    d.var.alu32(op, &s.var)
                };
                let mut r = Reg::scalar(v);
                // Linux's linked registers with a delta: `r2 = r1; r2 += k`
                // (or `-= k`) keeps r2 linked to r1 as "r1 + k" (64-bit ALU,
                // k in s32 range, one addition only), so bounds learned on
                // either refine both.
                if wide
                    && matches!(op, AluOp::Add | AluOp::Sub)
                    && d.id != 0
                    && self.privileged()
                    && let Some(k) = s.var.const_value()
                {
                    let k = k as i64;
                    let delta = match op {
                        AluOp::Sub if k == i32::MIN as i64 => None,
                        AluOp::Sub => Some(-k),
                        _ => Some(k),
                    };
                    if let Some(delta) = delta
                        && d.id & crate::state::ADD_CONST == 0
                        && (i32::MIN as i64..=i32::MAX as i64).contains(&k)
                    {
                        r.id = d.id | crate::state::ADD_CONST;
                        r.off = delta as i32;
                    }
                }
                r
            }
            (true, false) => self.ptr_arith(dst, wide, op, d, s, true)?,
            (false, true) => self.ptr_arith(dst, wide, op, s, d, false)?,
            (true, true) => {
                if op == AluOp::Sub && self.privileged() {
                    Reg::unknown()
                } else {
                    return Err(format!(
                        "R{dst} pointer {} pointer prohibited",
                        alu_name(op)
                    ));
                }
            }
        };
        *self.st.reg_mut(dst) = result;
        Ok(())
    }

    fn ptr_arith(
        &mut self,
        dst: u8,
        wide: bool,
        op: AluOp,
        ptr: Reg,
        off: Reg,
        dst_is_ptr: bool,
    ) -> Res<Reg> {
        let tname = ptr.ty.name();
        if !wide {
            if op == AluOp::Sub && self.privileged() {
                return Ok(Reg::unknown());
            }
            return Err(format!("R{dst} 32-bit pointer arithmetic prohibited"));
        }
        if ptr.maybe_null {
            return Err(format!(
                "R{dst} pointer arithmetic on {tname}_or_null prohibited, null-check it first"
            ));
        }
        let known = off.var.const_value().map(|v| v as i64);
        match ptr.ty {
            RegType::ConstMapPtr if known == Some(0) && op == AluOp::Add => return Ok(ptr),
            RegType::ConstMapPtr | RegType::PacketEnd | RegType::Func => {
                return Err(format!("R{dst} pointer arithmetic on {tname} prohibited"));
            }
            RegType::BtfId if known.is_none() => {
                return Err(format!("R{dst} pointer arithmetic on {tname} prohibited"));
            }
            _ => {}
        }
        match op {
            AluOp::Add | AluOp::Sub => {}
            AluOp::And | AluOp::Or | AluOp::Xor => {
                return Err(format!(
                    "R{dst} bitwise operator {} on pointer prohibited",
                    alu_name(op)
                ));
            }
            _ => {
                return Err(format!(
                    "R{dst} pointer arithmetic with {} operator prohibited",
                    alu_name(op)
                ));
            }
        }
        if op == AluOp::Sub && !dst_is_ptr {
            return Err(format!("R{dst} tried to subtract pointer from scalar"));
        }
        if op == AluOp::Sub && ptr.ty == RegType::Stack && !self.privileged() {
            return Err(format!("R{dst} subtraction from stack pointer prohibited"));
        }
        if let Some(v) = known {
            if !(-MAX_VAR_OFF < v && v < MAX_VAR_OFF) {
                return Err(format!(
                    "math between {tname} pointer and {v} is not allowed"
                ));
            }
        } else if off.var.smin == i64::MIN {
            return Err(format!(
                "math between {tname} pointer and register with unbounded min value is not allowed"
            ));
        } else if off.var.smin >= MAX_VAR_OFF || off.var.smin <= -MAX_VAR_OFF {
            return Err(format!(
                "value {} makes {tname} pointer be out of bounds",
                off.var.smin
            ));
        }
        let mut r = ptr;
        match known {
            Some(v) => {
                let new = if op == AluOp::Add {
                    ptr.off as i64 + v
                } else {
                    ptr.off as i64 - v
                };
                if !(-MAX_VAR_OFF < new && new < MAX_VAR_OFF) {
                    return Err(format!("{tname} pointer offset {new} is not allowed"));
                }
                r.off = new as i32;
            }
            None => {
                r.var = ptr.var.alu64(op, &off.var);
                if ptr.ty.is_packet() {
                    r.id = self.new_id();
                    r.range = 0;
                }
                if r.var.smin <= -MAX_VAR_OFF || r.var.smin >= MAX_VAR_OFF {
                    return Err(format!(
                        "value {} makes {tname} pointer be out of bounds",
                        r.var.smin
                    ));
                }
            }
        }
        if !self.privileged() {
            match r.ty {
                RegType::Stack if !r.var.is_const() => {
                    return Err(format!(
                        "R{dst} variable stack access prohibited for !root, var_off={} off={}",
                        r.var.var_off, r.off
                    ));
                }
                RegType::MapValue => {
                    let vs = self
                        .env
                        .maps
                        .get(r.map as usize)
                        .map(|m| m.value_size)
                        .unwrap_or(0) as i64;
                    let lo = r.off as i64 + r.var.smin;
                    let hi = r.off as i64 + r.var.umax.min(i64::MAX as u64) as i64;
                    if lo < 0 || hi > vs {
                        return Err(format!(
                            "R{dst} pointer arithmetic of map value goes out of range, prohibited for !root"
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(r)
    }

    /// The map checks Linux makes for every `lddw` when the program is
    /// loaded (resolve_pseudo_ldimm64), reachable or not.
    pub(crate) fn lddw_check(&self, pseudo: u8, imm: i32, next_imm: i32) -> Res<()> {
        match pseudo {
            0 | 4 => Ok(()),
            1 | 5 | 2 | 6 => {
                let Some(m) = self.env.maps.get(imm as u32 as usize) else {
                    return Err(format!("fd {imm} is not pointing to valid bpf_map"));
                };
                // Linux's check_map_prog_compatibility.
                if m.spin_lock_off.is_some()
                    && self.env.prog_type == crate::env::ProgType::SocketFilter
                {
                    return Err("socket filter progs cannot use bpf_spin_lock yet".into());
                }
                if pseudo == 2 || pseudo == 6 {
                    if !m.map_type.is_array() || m.max_entries != 1 {
                        return Err(format!(
                            "map '{}' does not support direct value access",
                            m.name
                        ));
                    }
                    let off = next_imm as u32;
                    if off >= m.value_size {
                        return Err(format!(
                            "invalid access to map value pointer, value_size={} off={off}",
                            m.value_size
                        ));
                    }
                }
                Ok(())
            }
            _ => Err(format!(
                "lddw pseudo source {pseudo} (BTF ksym) is not supported"
            )),
        }
    }

    pub(crate) fn do_lddw(&mut self, kind: Kind) -> Res<()> {
        let Kind::Lddw {
            dst,
            pseudo,
            imm,
            next_imm,
        } = kind
        else {
            return Err("internal: not lddw".into());
        };
        self.lddw_check(pseudo, imm, next_imm)?;
        let reg = match pseudo {
            1 | 5 => {
                let mut r = Reg::ptr(RegType::ConstMapPtr);
                r.map = imm as u32;
                r
            }
            2 | 6 => {
                let mut r = Reg::ptr(RegType::MapValue);
                r.map = imm as u32;
                r.off = next_imm;
                r
            }
            4 => {
                let target = self.pc as i64 + 1 + imm as i64;
                let mut r = Reg::ptr(RegType::Func);
                r.size = self.cfg.subprog_of[target as usize] as u32;
                r
            }
            _ => Reg::konst(Kind::lddw_value(imm, next_imm)),
        };
        *self.st.reg_mut(dst) = reg;
        Ok(())
    }

    pub(crate) fn do_jcond(&mut self, pc: usize, kind: Kind) -> Res<Flow> {
        let Kind::Jcond {
            wide,
            cond,
            dst,
            src,
            off,
        } = kind
        else {
            return Err("internal: not a conditional jump".into());
        };
        let target = (pc as i64 + 1 + off as i64) as usize;
        self.check_read(dst)?;
        let a = *self.st.reg(dst);
        let b = self.operand(src, wide)?;
        let src_reg = match src {
            Operand::Reg(r) => Some(r),
            Operand::Imm(_) => None,
        };
        if a.is_pointer() || b.is_pointer() {
            return self.jcond_pointers(pc, target, wide, cond, dst, src_reg, a, b);
        }
        let mut operands = vec![dst];
        operands.extend(src_reg);
        let linked = self.linked_locs(&operands);
        self.trace_linked(linked);
        if let Some(t) = branch::is_taken(&a.var, &b.var, cond, wide) {
            // Only one side is explored: that depends on the exact values.
            self.mark_precise_regs(&operands);
            return Ok(Flow::Next(if t { target } else { pc + 1 }));
        }
        let mut other = self.st.clone();
        let taken_ok = refine_in(&mut other, dst, src_reg, a, b, cond, wide, true);
        let fall_ok = refine_in(&mut self.st, dst, src_reg, a, b, cond, wide, false);
        if !(taken_ok && fall_ok) {
            self.mark_precise_regs(&operands);
        }
        match (taken_ok, fall_ok) {
            (true, true) => {
                self.push_branch(other, target)?;
                Ok(Flow::Next(pc + 1))
            }
            (true, false) => {
                self.st = other;
                Ok(Flow::Next(target))
            }
            (false, true) => Ok(Flow::Next(pc + 1)),
            (false, false) => Ok(Flow::End),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn jcond_pointers(
        &mut self,
        pc: usize,
        target: usize,
        wide: bool,
        cond: JmpCond,
        dst: u8,
        src_reg: Option<u8>,
        a: Reg,
        b: Reg,
    ) -> Res<Flow> {
        // NULL checks: `if ptr == 0` / `if ptr != 0`.
        if matches!(cond, JmpCond::Eq | JmpCond::Ne) && wide {
            let (p, preg) = if a.is_pointer() && b.is_null() {
                (a, Some(dst))
            } else if b.is_pointer() && a.is_null() {
                (b, src_reg)
            } else {
                (Reg::unknown(), None)
            };
            if let Some(_r) = preg {
                // The comparison relies on the other operand being exactly 0.
                let zero_reg = if a.is_pointer() { src_reg } else { Some(dst) };
                if let Some(z) = zero_reg {
                    self.mark_precise_regs(&[z]);
                }
                if p.maybe_null {
                    let mut other = self.st.clone();
                    let eq_taken = cond == JmpCond::Eq;
                    mark_ptr_or_null(&mut other, p.id, p.ref_obj_id, eq_taken);
                    mark_ptr_or_null(&mut self.st, p.id, p.ref_obj_id, !eq_taken);
                    self.push_branch(other, target)?;
                    return Ok(Flow::Next(pc + 1));
                }
                // Pointers that cannot be NULL never equal 0.
                return Ok(Flow::Next(if cond == JmpCond::Ne {
                    target
                } else {
                    pc + 1
                }));
            }
        }
        if wide
            && a.is_pointer()
            && b.is_pointer()
            && let Some((taken_side, use_src, open)) = pkt_compare(&a, &b, cond)
        {
            {
                let data = if use_src { b } else { a };
                let mut other = self.st.clone();
                if taken_side {
                    find_good_pkt_pointers(&mut other, &data, open);
                } else {
                    find_good_pkt_pointers(&mut self.st, &data, open);
                }
                self.push_branch(other, target)?;
                return Ok(Flow::Next(pc + 1));
            }
        }
        if !self.privileged() {
            let r = if a.is_pointer() {
                dst
            } else {
                src_reg.unwrap_or(dst)
            };
            return Err(format!("R{r} pointer comparison prohibited"));
        }
        let other = self.st.clone();
        self.push_branch(other, target)?;
        Ok(Flow::Next(pc + 1))
    }
}

/// Refine `dst` (and `src` when it is a register) in `st` by the outcome of
/// `a cond b`; propagate to linked scalars. False if the outcome is impossible.
#[allow(clippy::too_many_arguments)]
fn refine_in(
    st: &mut State,
    dst: u8,
    src: Option<u8>,
    a: Reg,
    b: Reg,
    cond: JmpCond,
    wide: bool,
    holds: bool,
) -> bool {
    let mut x = a.var;
    let mut y = b.var;
    if !branch::refine(&mut x, &mut y, cond, wide, holds) {
        return false;
    }
    st.reg_mut(dst).var = x;
    let known = *st.reg(dst);
    sync_linked(st, &known);
    if let Some(s) = src {
        st.reg_mut(s).var = y;
        let known = *st.reg(s);
        sync_linked(st, &known);
    }
    true
}

/// Every scalar linked to `known` (same base id) is `known` plus the
/// difference of their deltas: give it the refined bounds (Linux's
/// sync_linked_regs).
fn sync_linked(st: &mut State, known: &Reg) {
    use crate::state::ADD_CONST;
    if known.id == 0 || !known.is_scalar() {
        return;
    }
    let base = known.id & !ADD_CONST;
    st.for_each_reg(|r| {
        if !r.is_scalar() || r.id & !ADD_CONST != base {
            return;
        }
        let plain = r.id & ADD_CONST == 0 && known.id & ADD_CONST == 0;
        if plain || r.off == known.off {
            r.var = known.var;
        } else {
            let delta = r.off as i64 - known.off as i64;
            r.var = known.var.alu64(AluOp::Add, &Scalar::konst(delta as u64));
        }
    });
}

/// Mark every copy of a maybe-NULL pointer (same id) as NULL or not NULL.
pub(crate) fn mark_ptr_or_null(st: &mut State, id: u32, ref_obj_id: u32, is_null: bool) {
    if id == 0 {
        return;
    }
    st.for_each_reg(|r| {
        if r.is_pointer() && r.maybe_null && r.id == id {
            if is_null {
                *r = Reg::konst(0);
            } else {
                r.maybe_null = false;
            }
        }
    });
    if is_null && ref_obj_id != 0 {
        st.refs.retain(|x| x.id != ref_obj_id);
    }
}

/// For packet comparisons returns (range goes to taken branch?, data pointer
/// is the src operand?, right-open range?).
fn pkt_compare(a: &Reg, b: &Reg, cond: JmpCond) -> Option<(bool, bool, bool)> {
    let a_data = (a.ty == RegType::Packet && b.ty == RegType::PacketEnd)
        || (a.ty == RegType::PacketMeta && b.ty == RegType::Packet);
    let a_end = (a.ty == RegType::PacketEnd && b.ty == RegType::Packet)
        || (a.ty == RegType::Packet && b.ty == RegType::PacketMeta);
    if a_data {
        match cond {
            JmpCond::Gt => Some((false, false, false)),
            JmpCond::Lt => Some((true, false, true)),
            JmpCond::Ge => Some((false, false, true)),
            JmpCond::Le => Some((true, false, false)),
            _ => None,
        }
    } else if a_end {
        match cond {
            JmpCond::Gt => Some((true, true, true)),
            JmpCond::Lt => Some((false, true, false)),
            JmpCond::Ge => Some((true, true, false)),
            JmpCond::Le => Some((false, true, true)),
            _ => None,
        }
    } else {
        None
    }
}

fn find_good_pkt_pointers(st: &mut State, data: &Reg, open: bool) {
    if data.off < 0 || (data.off == 0 && open) {
        return;
    }
    if data.var.umax > MAX_PACKET_OFF || data.var.umax + data.off as u64 > MAX_PACKET_OFF {
        return;
    }
    let new_range = data.off + open as i32;
    let (ty, id) = (data.ty, data.id);
    st.for_each_reg(|r| {
        if r.ty == ty && r.id == id && r.range < new_range {
            r.range = new_range;
        }
    });
}
