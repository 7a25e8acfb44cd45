//! Printing in the conformance suite's assembler syntax (what [`crate::assemble`]
//! reads). Jump and call targets are printed as relative offsets (`ja +3`,
//! `call local -5`), so every printed line assembles back to the same bytes.

use super::syntax::{Syntax, format_insn_in, listing, render};
use crate::insn::{AluOp, AtomicOp, Insn, JmpCond, Kind, Operand, Size};
use crate::opcode::*;
use crate::program::DecodeError;

fn alu_name(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "add",
        AluOp::Sub => "sub",
        AluOp::Mul => "mul",
        AluOp::Div => "div",
        AluOp::SDiv => "sdiv",
        AluOp::Or => "or",
        AluOp::And => "and",
        AluOp::Lsh => "lsh",
        AluOp::Rsh => "rsh",
        AluOp::Neg => "neg",
        AluOp::Mod => "mod",
        AluOp::SMod => "smod",
        AluOp::Xor => "xor",
        AluOp::Mov => "mov",
        AluOp::MovSx(_) => "movsx",
        AluOp::Arsh => "arsh",
    }
}

/// Print one instruction in the conformance suite's syntax. [`Kind::Ja`] is printed
/// as `ja` when its offset fits 16 bits, else as `ja32`.
pub fn format_kind_suite(kind: &Kind) -> String {
    render(kind, false, &Suite)
}

/// Classify and print one slot in the suite's syntax (`next` is needed by `lddw`).
pub fn format_insn_suite(insn: Insn, next: Option<Insn>) -> Result<String, crate::Problem> {
    format_insn_in(insn, next, &Suite)
}

/// Disassemble slots into the suite's syntax, one instruction per line, no indices.
pub fn disassemble_suite(insns: &[Insn]) -> Result<String, DecodeError> {
    listing(
        insns,
        |_| Suite,
        |out, _, _, text| {
            out.push_str(text);
            out.push('\n');
        },
    )
}

/// The conformance suite's assembler syntax: `%rN` registers, `32` suffix for
/// the 32-bit forms, relative jump and call offsets.
struct Suite;

/// Suffix of the 32-bit ALU and JMP32 forms.
fn w32(wide: bool) -> &'static str {
    if wide { "" } else { "32" }
}

impl Syntax for Suite {
    fn alu(&self, wide: bool, op: AluOp, dst: u8, src: Operand) -> String {
        let w = w32(wide);
        match (op, src) {
            (AluOp::Neg, _) => format!("neg{w} %r{dst}"),
            (AluOp::MovSx(bits), Operand::Reg(s)) => {
                let w = if wide { "64" } else { "32" };
                format!("movsx{bits}{w} %r{dst}, %r{s}")
            }
            (_, Operand::Reg(s)) => format!("{}{w} %r{dst}, %r{s}", alu_name(op)),
            (_, Operand::Imm(i)) => format!("{}{w} %r{dst}, {i}", alu_name(op)),
        }
    }

    fn endian(&self, name: &str, bits: u8, dst: u8) -> String {
        format!("{name}{bits} %r{dst}")
    }

    fn ja(&self, off: i32, long: bool) -> String {
        if long {
            format!("ja32 {off:+}")
        } else {
            format!("ja {off:+}")
        }
    }

    fn may_goto(&self, off: i16) -> String {
        format!("may_goto {off:+}")
    }

    fn jcond(&self, wide: bool, cond: JmpCond, dst: u8, src: Operand, off: i16) -> String {
        let w = w32(wide);
        let m = cond.mnemonic();
        match src {
            Operand::Reg(s) => format!("{m}{w} %r{dst}, %r{s}, {off:+}"),
            Operand::Imm(i) => format!("{m}{w} %r{dst}, {i}, {off:+}"),
        }
    }

    fn call_helper(&self, id: i32) -> String {
        format!("call {id}")
    }

    fn call_local(&self, rel: i32) -> String {
        format!("call local {rel:+}")
    }

    fn call_kfunc(&self, btf_id: i32, off: i16) -> String {
        if off == 0 {
            format!("call runtime {btf_id}")
        } else {
            format!("call runtime {btf_id}, {off}")
        }
    }

    fn callx(&self, reg: u8) -> String {
        format!("call %r{reg}")
    }

    fn lddw(&self, dst: u8, pseudo: u8, imm: i32, next_imm: i32) -> String {
        let v = Kind::lddw_value(imm, next_imm);
        let suffix = match pseudo {
            PSEUDO_MAP_FD => ", map_fd",
            PSEUDO_MAP_VALUE => ", map_value",
            PSEUDO_BTF_ID => ", btf_id",
            PSEUDO_FUNC => ", func",
            PSEUDO_MAP_IDX => ", map_idx",
            PSEUDO_MAP_IDX_VALUE => ", map_idx_value",
            _ => "",
        };
        format!("lddw %r{dst}, {v:#x}{suffix}")
    }

    fn ld_abs(&self, size: Size, imm: i32) -> String {
        format!("ldabs{} {imm}", size.suffix())
    }

    fn ld_ind(&self, size: Size, src: u8, imm: i32) -> String {
        format!("ldind{} %r{src}, {imm}", size.suffix())
    }

    fn ldx(&self, size: Size, sign_extend: bool, dst: u8, src: u8, off: i16) -> String {
        let s = if sign_extend { "s" } else { "" };
        format!("ldx{s}{} %r{dst}, [%r{src}{off:+}]", size.suffix())
    }

    fn st(&self, size: Size, dst: u8, off: i16, imm: i32) -> String {
        format!("st{} [%r{dst}{off:+}], {imm}", size.suffix())
    }

    fn stx(&self, size: Size, dst: u8, src: u8, off: i16) -> String {
        format!("stx{} [%r{dst}{off:+}], %r{src}", size.suffix())
    }

    fn atomic(
        &self,
        size: Size,
        op: AtomicOp,
        name: &str,
        fetch: bool,
        dst: u8,
        src: u8,
        off: i16,
    ) -> String {
        let w = if size == Size::DW { "" } else { "32" };
        // xchg and cmpxchg always fetch; the suite does not say so.
        let plain_fetch = fetch && !matches!(op, AtomicOp::Xchg | AtomicOp::Cmpxchg);
        let f = if plain_fetch { "fetch " } else { "" };
        format!("lock {f}{name}{w} [%r{dst}{off:+}], %r{src}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> String {
        format_insn_suite(Insn::new(code, dst, src, off, imm), Some(Insn::default())).unwrap()
    }

    #[test]
    fn prints() {
        assert_eq!(k(0xb4, 0, 0, 0, -1), "mov32 %r0, -1");
        assert_eq!(k(0x3f, 1, 2, 1, 0), "sdiv %r1, %r2");
        assert_eq!(k(0xbc, 0, 1, 16, 0), "movsx1632 %r0, %r1");
        assert_eq!(k(0x84, 2, 0, 0, 0), "neg32 %r2");
        assert_eq!(k(0xd7, 2, 0, 0, 16), "bswap16 %r2");
        assert_eq!(k(0x05, 0, 0, -2, 0), "ja -2");
        assert_eq!(k(0x06, 0, 0, 0, 3), "ja32 +3");
        assert_eq!(k(0xe5, 0, 0, 3, 0), "may_goto +3");
        assert_eq!(k(0xe5, 0, 0, -2, 0), "may_goto -2");
        assert_eq!(k(0x5e, 1, 2, 3, 0), "jne32 %r1, %r2, +3");
        assert_eq!(k(0x85, 0, 1, 0, 3), "call local +3");
        assert_eq!(k(0x85, 0, 2, 4, 3), "call runtime 3, 4");
        assert_eq!(k(0x8d, 3, 0, 0, 0), "call %r3");
        assert_eq!(k(0x91, 0, 1, -1, 0), "ldxsb %r0, [%r1-1]");
        assert_eq!(k(0x62, 10, 0, -4, 9), "stw [%r10-4], 9");
        assert_eq!(k(0xc3, 10, 1, -4, 0x51), "lock fetch and32 [%r10-4], %r1");
        assert_eq!(k(0xdb, 10, 1, -8, 0xf1), "lock cmpxchg [%r10-8], %r1");
        assert_eq!(k(0x40, 0, 1, 0, 2), "ldindw %r1, 2");
        assert_eq!(k(0x18, 1, 1, 0, 2), "lddw %r1, 0x2, map_fd");
    }
}
