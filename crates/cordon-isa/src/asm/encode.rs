//! [`Kind`] → raw slots: the inverse of [`crate::classify`].

use crate::insn::{AluOp, AtomicOp, EndianOp, Insn, JmpCond, Kind, Operand, Size};
use crate::opcode::*;

/// Encode a typed instruction into its slot (and the second slot of an `lddw`).
///
/// The result classifies back to the same `kind`. [`Kind::Ja`] has two encodings;
/// this picks `ja` (JMP class, 16-bit offset) when the offset fits in 16 bits and
/// `gotol` (JMP32 class, offset in `imm`) otherwise — use [`encode_into`] with
/// `ja32 = true` to force the latter.
pub fn encode(kind: &Kind) -> (Insn, Option<Insn>) {
    let ja32 = matches!(*kind, Kind::Ja { off } if i16::try_from(off).is_err());
    encode_into(kind, ja32)
}

/// [`encode`], choosing the JMP32 (`gotol`) encoding for [`Kind::Ja`] when `ja32`
/// is set (an offset that does not fit 16 bits always uses it).
pub fn encode_into(kind: &Kind, ja32: bool) -> (Insn, Option<Insn>) {
    let one = |code: u8, dst: u8, src: u8, off: i16, imm: i32| {
        (Insn::new(code, dst, src, off, imm), None)
    };
    match *kind {
        Kind::Alu { wide, op, dst, src } => {
            let cls = if wide { CLS_ALU64 } else { CLS_ALU };
            let (opbits, off) = alu_op_bits(op);
            let (srcbit, sreg, imm) = match src {
                Operand::Reg(r) => (SRC_X, r, 0),
                Operand::Imm(i) => (SRC_K, 0, i),
            };
            if op == AluOp::Neg {
                return one(cls | ALU_NEG, dst, 0, 0, 0);
            }
            one(cls | opbits | srcbit, dst, sreg, off, imm)
        }
        Kind::Endian { op, bits, dst } => {
            let code = match op {
                EndianOp::Le => CLS_ALU | ALU_END | SRC_K,
                EndianOp::Be => CLS_ALU | ALU_END | SRC_X,
                EndianOp::Swap => CLS_ALU64 | ALU_END | SRC_K,
            };
            one(code, dst, 0, 0, bits as i32)
        }
        Kind::Ja { off } => match i16::try_from(off) {
            Ok(o) if !ja32 => one(OP_JA, 0, 0, o, 0),
            _ => one(OP_JA32, 0, 0, 0, off),
        },
        Kind::Jcond {
            wide,
            cond,
            dst,
            src,
            off,
        } => {
            let cls = if wide { CLS_JMP } else { CLS_JMP32 };
            let (srcbit, sreg, imm) = match src {
                Operand::Reg(r) => (SRC_X, r, 0),
                Operand::Imm(i) => (SRC_K, 0, i),
            };
            one(cls | jmp_cond_bits(cond) | srcbit, dst, sreg, off, imm)
        }
        Kind::MayGoto { off } => one(OP_MAY_GOTO, 0, JCOND_MAY_GOTO, off, 0),
        Kind::CallHelper { id } => one(OP_CALL, 0, CALL_HELPER, 0, id),
        Kind::CallLocal { rel } => one(OP_CALL, 0, CALL_LOCAL, 0, rel),
        Kind::CallKfunc { btf_id, off } => one(OP_CALL, 0, CALL_KFUNC, off, btf_id),
        Kind::Callx { reg } => one(OP_CALLX, reg, 0, 0, 0),
        Kind::Exit => one(OP_EXIT, 0, 0, 0, 0),
        Kind::Lddw {
            dst,
            pseudo,
            imm,
            next_imm,
        } => (
            Insn::new(OP_LDDW, dst, pseudo, 0, imm),
            Some(Insn::new(0, 0, 0, 0, next_imm)),
        ),
        Kind::LdAbs { size, imm } => one(CLS_LD | MODE_ABS | size_bits(size), 0, 0, 0, imm),
        Kind::LdInd { size, src, imm } => one(CLS_LD | MODE_IND | size_bits(size), 0, src, 0, imm),
        Kind::Ldx {
            size,
            sign_extend,
            dst,
            src,
            off,
        } => {
            let mode = if sign_extend { MODE_MEMSX } else { MODE_MEM };
            one(CLS_LDX | mode | size_bits(size), dst, src, off, 0)
        }
        Kind::St {
            size,
            dst,
            off,
            imm,
        } => one(CLS_ST | MODE_MEM | size_bits(size), dst, 0, off, imm),
        Kind::Stx {
            size,
            dst,
            src,
            off,
        } => one(CLS_STX | MODE_MEM | size_bits(size), dst, src, off, 0),
        Kind::Atomic {
            size,
            op,
            fetch,
            dst,
            src,
            off,
        } => {
            let imm = atomic_imm(op, fetch);
            one(CLS_STX | MODE_ATOMIC | size_bits(size), dst, src, off, imm)
        }
    }
}

/// Opcode bits (high nibble) and `off` value of an ALU operation.
pub(crate) fn alu_op_bits(op: AluOp) -> (u8, i16) {
    match op {
        AluOp::Add => (ALU_ADD, 0),
        AluOp::Sub => (ALU_SUB, 0),
        AluOp::Mul => (ALU_MUL, 0),
        AluOp::Div => (ALU_DIV, 0),
        AluOp::SDiv => (ALU_DIV, 1),
        AluOp::Or => (ALU_OR, 0),
        AluOp::And => (ALU_AND, 0),
        AluOp::Lsh => (ALU_LSH, 0),
        AluOp::Rsh => (ALU_RSH, 0),
        AluOp::Neg => (ALU_NEG, 0),
        AluOp::Mod => (ALU_MOD, 0),
        AluOp::SMod => (ALU_MOD, 1),
        AluOp::Xor => (ALU_XOR, 0),
        AluOp::Mov => (ALU_MOV, 0),
        AluOp::MovSx(bits) => (ALU_MOV, bits as i16),
        AluOp::Arsh => (ALU_ARSH, 0),
    }
}

pub(crate) fn jmp_cond_bits(cond: JmpCond) -> u8 {
    match cond {
        JmpCond::Eq => JMP_JEQ,
        JmpCond::Gt => JMP_JGT,
        JmpCond::Ge => JMP_JGE,
        JmpCond::Set => JMP_JSET,
        JmpCond::Ne => JMP_JNE,
        JmpCond::Sgt => JMP_JSGT,
        JmpCond::Sge => JMP_JSGE,
        JmpCond::Lt => JMP_JLT,
        JmpCond::Le => JMP_JLE,
        JmpCond::Slt => JMP_JSLT,
        JmpCond::Sle => JMP_JSLE,
    }
}

pub(crate) fn size_bits(size: Size) -> u8 {
    match size {
        Size::B => SIZE_B,
        Size::H => SIZE_H,
        Size::W => SIZE_W,
        Size::DW => SIZE_DW,
    }
}

pub(crate) fn atomic_imm(op: AtomicOp, fetch: bool) -> i32 {
    let f = if fetch { ATOMIC_FETCH } else { 0 };
    match op {
        AtomicOp::Add => ATOMIC_ADD | f,
        AtomicOp::Or => ATOMIC_OR | f,
        AtomicOp::And => ATOMIC_AND | f,
        AtomicOp::Xor => ATOMIC_XOR | f,
        AtomicOp::Xchg => ATOMIC_XCHG,
        AtomicOp::Cmpxchg => ATOMIC_CMPXCHG,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify;

    fn round(kind: Kind) {
        let (a, b) = encode(&kind);
        assert_eq!(classify(a, b), Ok(kind), "{kind:?} -> {a:?}");
    }

    #[test]
    fn every_class_round_trips() {
        round(Kind::Alu {
            wide: true,
            op: AluOp::SDiv,
            dst: 1,
            src: Operand::Reg(2),
        });
        round(Kind::Alu {
            wide: false,
            op: AluOp::MovSx(16),
            dst: 1,
            src: Operand::Reg(2),
        });
        round(Kind::Alu {
            wide: false,
            op: AluOp::Neg,
            dst: 3,
            src: Operand::Imm(0),
        });
        round(Kind::Endian {
            op: EndianOp::Swap,
            bits: 32,
            dst: 4,
        });
        round(Kind::Endian {
            op: EndianOp::Be,
            bits: 16,
            dst: 4,
        });
        round(Kind::Ja { off: -3 });
        round(Kind::Ja { off: 70_000 });
        round(Kind::Jcond {
            wide: false,
            cond: JmpCond::Sle,
            dst: 1,
            src: Operand::Imm(-5),
            off: 7,
        });
        round(Kind::MayGoto { off: -9 });
        round(Kind::MayGoto { off: 4 });
        round(Kind::CallHelper { id: 1 });
        round(Kind::CallLocal { rel: -4 });
        round(Kind::CallKfunc { btf_id: 77, off: 2 });
        round(Kind::Callx { reg: 2 });
        round(Kind::Exit);
        round(Kind::Lddw {
            dst: 1,
            pseudo: PSEUDO_MAP_VALUE,
            imm: 3,
            next_imm: 8,
        });
        round(Kind::LdAbs {
            size: Size::H,
            imm: 12,
        });
        round(Kind::LdInd {
            size: Size::W,
            src: 3,
            imm: -2,
        });
        round(Kind::Ldx {
            size: Size::H,
            sign_extend: true,
            dst: 0,
            src: 1,
            off: 2,
        });
        round(Kind::St {
            size: Size::DW,
            dst: 10,
            off: -8,
            imm: 9,
        });
        round(Kind::Stx {
            size: Size::B,
            dst: 10,
            src: 1,
            off: -1,
        });
        round(Kind::Atomic {
            size: Size::W,
            op: AtomicOp::Xor,
            fetch: true,
            dst: 10,
            src: 1,
            off: -4,
        });
        round(Kind::Atomic {
            size: Size::DW,
            op: AtomicOp::Cmpxchg,
            fetch: true,
            dst: 10,
            src: 1,
            off: -8,
        });
        let (ja32, _) = encode_into(&Kind::Ja { off: 1 }, true);
        assert_eq!(ja32, Insn::new(OP_JA32, 0, 0, 0, 1));
    }

    #[test]
    fn may_goto_classify() {
        use crate::classify;
        let ok = Insn::new(0xe5, 0, 0, 7, 0);
        assert_eq!(classify(ok, None), Ok(Kind::MayGoto { off: 7 }));
        assert_eq!(Kind::MayGoto { off: -3 }.jump_offset(), Some(-3));
        // Reserved fields and other JCOND kinds are rejected.
        assert!(classify(Insn::new(0xe5, 1, 0, 7, 0), None).is_err());
        assert!(classify(Insn::new(0xe5, 0, 1, 7, 0), None).is_err());
        assert!(classify(Insn::new(0xe5, 0, 0, 7, 1), None).is_err());
        assert!(classify(Insn::new(0xed, 0, 0, 7, 0), None).is_err());
        assert!(classify(Insn::new(0xe6, 0, 0, 7, 0), None).is_err());
    }
}
