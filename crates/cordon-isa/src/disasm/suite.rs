//! Printing in the conformance suite's assembler syntax (what [`crate::assemble`]
//! reads). Jump and call targets are printed as relative offsets (`ja +3`,
//! `call local -5`), so every printed line assembles back to the same bytes.

use crate::insn::{AluOp, AtomicOp, EndianOp, Insn, Kind, Operand, Size, classify};
use crate::opcode::*;
use crate::program::DecodeError;
use std::fmt::Write as _;

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
    let ja32 = matches!(*kind, Kind::Ja { off } if i16::try_from(off).is_err());
    suite(kind, ja32)
}

/// Classify and print one slot in the suite's syntax (`next` is needed by `lddw`).
pub fn format_insn_suite(insn: Insn, next: Option<Insn>) -> Result<String, crate::Problem> {
    let kind = classify(insn, next)?;
    Ok(suite(&kind, insn.code == OP_JA32))
}

/// Disassemble slots into the suite's syntax, one instruction per line, no indices.
pub fn disassemble_suite(insns: &[Insn]) -> Result<String, DecodeError> {
    let mut out = String::new();
    super::for_each_kind(insns, |_, insn, kind| {
        let _ = writeln!(out, "{}", suite(kind, insn.code == OP_JA32));
    })?;
    Ok(out)
}

fn suite(kind: &Kind, ja32: bool) -> String {
    match *kind {
        Kind::Alu { wide, op, dst, src } => {
            let w = if wide { "" } else { "32" };
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
        Kind::Endian { op, bits, dst } => {
            let name = match op {
                EndianOp::Le => "le",
                EndianOp::Be => "be",
                EndianOp::Swap => "bswap",
            };
            format!("{name}{bits} %r{dst}")
        }
        Kind::Ja { off } => {
            if ja32 || i16::try_from(off).is_err() {
                format!("ja32 {off:+}")
            } else {
                format!("ja {off:+}")
            }
        }
        Kind::MayGoto { off } => format!("may_goto {off:+}"),
        Kind::Jcond {
            wide,
            cond,
            dst,
            src,
            off,
        } => {
            let w = if wide { "" } else { "32" };
            let m = cond.mnemonic();
            match src {
                Operand::Reg(s) => format!("{m}{w} %r{dst}, %r{s}, {off:+}"),
                Operand::Imm(i) => format!("{m}{w} %r{dst}, {i}, {off:+}"),
            }
        }
        Kind::CallHelper { id } => format!("call {id}"),
        Kind::CallLocal { rel } => format!("call local {rel:+}"),
        Kind::CallKfunc { btf_id, off } => {
            if off == 0 {
                format!("call runtime {btf_id}")
            } else {
                format!("call runtime {btf_id}, {off}")
            }
        }
        Kind::Callx { reg } => format!("call %r{reg}"),
        Kind::Exit => "exit".to_string(),
        Kind::Lddw {
            dst,
            pseudo,
            imm,
            next_imm,
        } => {
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
        Kind::LdAbs { size, imm } => format!("ldabs{} {imm}", size.suffix()),
        Kind::LdInd { size, src, imm } => format!("ldind{} %r{src}, {imm}", size.suffix()),
        Kind::Ldx {
            size,
            sign_extend,
            dst,
            src,
            off,
        } => {
            let s = if sign_extend { "s" } else { "" };
            format!("ldx{s}{} %r{dst}, [%r{src}{off:+}]", size.suffix())
        }
        Kind::St {
            size,
            dst,
            off,
            imm,
        } => format!("st{} [%r{dst}{off:+}], {imm}", size.suffix()),
        Kind::Stx {
            size,
            dst,
            src,
            off,
        } => format!("stx{} [%r{dst}{off:+}], %r{src}", size.suffix()),
        Kind::Atomic {
            size,
            op,
            fetch,
            dst,
            src,
            off,
        } => {
            let w = if size == Size::DW { "" } else { "32" };
            let (f, name) = match op {
                AtomicOp::Add => (fetch, "add"),
                AtomicOp::Or => (fetch, "or"),
                AtomicOp::And => (fetch, "and"),
                AtomicOp::Xor => (fetch, "xor"),
                AtomicOp::Xchg => (false, "xchg"),
                AtomicOp::Cmpxchg => (false, "cmpxchg"),
            };
            let f = if f { "fetch " } else { "" };
            format!("lock {f}{name}{w} [%r{dst}{off:+}], %r{src}")
        }
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
