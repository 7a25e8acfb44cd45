//! Linux-style log text: instruction disassembly and register/stack states.

use crate::env::VerifyEnv;
use crate::scalar::Scalar;
use crate::state::{Frame, Reg, RegType, SlotType, State};
use cordon_isa::{Insn, Kind, Program};
use std::fmt::Write;

/// The operator name Linux prints in "pointer arithmetic with %s operator":
/// the disassembler's operator text.
pub use cordon_isa::disasm::alu_symbol as alu_name;

/// Disassemble one instruction the way Linux's verifier log does (without the
/// index): cordon-isa's Linux-syntax printer, with helper and kfunc names
/// taken from the registry.
pub fn disasm(prog: &Program, env: &VerifyEnv, pc: usize) -> String {
    let insn: Insn = prog.insns()[pc];
    let Some(k) = prog.kind(pc) else {
        return format!("({:02x}) (second half of lddw)", insn.code);
    };
    let body = match k {
        Kind::CallHelper { id } => match env.registry.helper(id as u32) {
            Some(p) => format!("call bpf_{}#{id}", p.name),
            None => cordon_isa::format_kind(&k),
        },
        Kind::CallKfunc { btf_id, .. } => match env.registry.kfunc(btf_id as u32) {
            Some(p) => format!("call {}#{btf_id}", p.name),
            None => cordon_isa::format_kind(&k),
        },
        _ => cordon_isa::format_kind(&k),
    };
    format!("({:02x}) {body}", insn.code)
}

/// Linux's scalar rendering: a constant prints as its value, otherwise the
/// non-trivial bounds inside `scalar(...)`.
pub fn fmt_scalar(s: &Scalar) -> String {
    if let Some(v) = s.const_value() {
        return format!("{}", v as i64);
    }
    let mut parts = Vec::new();
    let u = Scalar::unknown();
    if s.smin != u.smin {
        parts.push(format!("smin={}", s.smin));
    }
    if s.smax != u.smax {
        parts.push(format!("smax={}", s.smax));
    }
    if s.umin != u.umin {
        parts.push(format!("umin={}", s.umin));
    }
    if s.umax != u.umax {
        parts.push(format!("umax={}", s.umax));
    }
    if s.s32min != u.s32min && (s.s32min as i64) != s.smin {
        parts.push(format!("smin32={}", s.s32min));
    }
    if s.s32max != u.s32max && (s.s32max as i64) != s.smax {
        parts.push(format!("smax32={}", s.s32max));
    }
    if s.u32min != u.u32min && (s.u32min as u64) != s.umin {
        parts.push(format!("umin32={}", s.u32min));
    }
    if s.u32max != u.u32max && (s.u32max as u64) != s.umax {
        parts.push(format!("umax32={}", s.u32max));
    }
    if !s.var_off.is_unknown() {
        parts.push(format!("var_off={}", s.var_off));
    }
    format!("scalar({})", parts.join(","))
}

/// Render one register's value.
pub fn fmt_reg(env: &VerifyEnv, r: &Reg) -> String {
    match r.ty {
        RegType::NotInit => "?".to_string(),
        RegType::Scalar => {
            let s = fmt_scalar(&r.var);
            if r.id != 0 && !r.var.is_const() {
                s.replacen("scalar(", &format!("scalar(id={}", r.id), 1)
                    .replace(&format!("id={},)", r.id), &format!("id={})", r.id))
                    .replacen(&format!("id={}", r.id), &format!("id={},", r.id), 1)
                    .replace(",,", ",")
                    .replace(",)", ")")
            } else {
                s
            }
        }
        RegType::Stack => {
            let off = r.off as i64 + r.var.const_value().unwrap_or(0) as i64;
            if r.var.is_const() {
                format!("fp{off}")
            } else {
                format!("fp(off={},var_off={})", r.off, r.var.var_off)
            }
        }
        _ => {
            let mut parts: Vec<String> = Vec::new();
            if r.id != 0 {
                parts.push(format!("id={}", r.id));
            }
            if r.ref_obj_id != 0 {
                parts.push(format!("ref_obj_id={}", r.ref_obj_id));
            }
            if let Some(m) = env.maps.get(r.map as usize)
                && matches!(
                    r.ty,
                    RegType::ConstMapPtr | RegType::MapValue | RegType::MapKey
                )
            {
                parts.push(format!(
                    "map={},ks={},vs={}",
                    m.name, m.key_size, m.value_size
                ));
            }
            if r.off != 0 {
                parts.push(format!("off={}", r.off));
            }
            if r.ty.is_packet() {
                parts.push(format!("r={}", r.range));
            }
            if r.ty == RegType::Mem {
                parts.push(format!("sz={}", r.size));
            }
            if !r.var.is_const() {
                parts.push(format!("var_off={}", r.var.var_off));
                if r.var.smin != i64::MIN {
                    parts.push(format!("smin={}", r.var.smin));
                }
                if r.var.umax != u64::MAX {
                    parts.push(format!("umax={}", r.var.umax));
                }
            }
            let mut name = r.ty.name().to_string();
            if r.ty == RegType::BtfId
                && let Some(t) = r.obj.and_then(|o| env.registry.obj_type(o))
            {
                name.push_str(&t.name);
            }
            if r.rdonly {
                name = format!("rdonly_{name}");
            }
            if r.maybe_null {
                name.push_str("_or_null");
            }
            format!("{name}({})", parts.join(","))
        }
    }
}

fn fmt_frame(env: &VerifyEnv, f: &Frame, out: &mut String) {
    for (i, r) in f.regs.iter().enumerate() {
        if r.is_init() {
            let _ = write!(out, " R{i}={}", fmt_reg(env, r));
        }
    }
    for (spi, s) in f.stack.iter().enumerate() {
        let off = -((spi as i64 + 1) * 8);
        if s.types.iter().all(|t| *t == SlotType::Invalid) {
            continue;
        }
        if s.is_full_spill() {
            let _ = write!(out, " fp{off}={}", fmt_reg(env, &s.spilled));
            continue;
        }
        let chars: String = s
            .types
            .iter()
            .rev()
            .map(|t| match t {
                SlotType::Invalid => '?',
                SlotType::Misc => 'm',
                SlotType::Zero => '0',
                SlotType::Spill => 'r',
                SlotType::Iter => 'i',
            })
            .collect();
        let _ = write!(out, " fp{off}={chars}");
    }
}

/// The state line Linux prints: registers and stack of every frame.
pub fn fmt_state(env: &VerifyEnv, st: &State) -> String {
    let mut out = String::new();
    let n = st.frames.len();
    for (i, f) in st.frames.iter().enumerate() {
        if n > 1 {
            let _ = write!(out, " frame{i}:");
        }
        fmt_frame(env, f, &mut out);
    }
    if !st.refs.is_empty() {
        let ids: Vec<String> = st.refs.iter().map(|r| r.id.to_string()).collect();
        let _ = write!(out, " refs={}", ids.join(","));
    }
    out.trim_start().to_string()
}
