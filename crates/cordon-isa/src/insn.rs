//! The raw 8-byte instruction and its typed view ([`Kind`]).

use crate::opcode::*;

/// One 8-byte eBPF instruction slot, exactly as encoded (little-endian).
///
/// A 16-byte `lddw` occupies two slots; the second has opcode 0 and carries the
/// upper 32 bits of the immediate in its `imm`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub const SIZE: usize = 8;

    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// Decode one slot from 8 little-endian bytes. Never fails: field
    /// validation is [`crate::validate`]'s job.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub fn to_bytes(self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0x0f) | (self.src << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// The instruction as a little-endian u64 (the `-- raw` form of the conformance suite).
    pub fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.to_bytes())
    }

    pub fn from_u64(v: u64) -> Self {
        Self::from_bytes(v.to_le_bytes())
    }

    pub fn class(self) -> u8 {
        self.code & CLS_MASK
    }

    pub fn is_lddw(self) -> bool {
        self.code == OP_LDDW
    }
}

/// Encode a slice of instructions into bytes.
pub fn to_bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

/// Access width of a load or store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    B,
    H,
    W,
    DW,
}

impl Size {
    pub fn from_code(code: u8) -> Size {
        match code & SIZE_MASK {
            SIZE_B => Size::B,
            SIZE_H => Size::H,
            SIZE_W => Size::W,
            _ => Size::DW,
        }
    }
    pub const fn bytes(self) -> u32 {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }
    /// The C type name Linux's verifier log prints (`u8`, `u16`, ...).
    pub const fn ctype(self) -> &'static str {
        match self {
            Size::B => "u8",
            Size::H => "u16",
            Size::W => "u32",
            Size::DW => "u64",
        }
    }
    /// Suffix used by the assembler (`b`, `h`, `w`, `dw`).
    pub const fn suffix(self) -> &'static str {
        match self {
            Size::B => "b",
            Size::H => "h",
            Size::W => "w",
            Size::DW => "dw",
        }
    }
}

/// The second operand of an ALU or conditional jump.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operand {
    Reg(u8),
    Imm(i32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    Add,
    Sub,
    Mul,
    Div,
    /// Signed division (`offset == 1`).
    SDiv,
    Or,
    And,
    Lsh,
    Rsh,
    Neg,
    Mod,
    /// Signed modulo (`offset == 1`).
    SMod,
    Xor,
    Mov,
    /// Move with sign extension from 8, 16 or 32 bits (`offset` = bits).
    MovSx(u8),
    Arsh,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndianOp {
    /// `le16/32/64`: to little-endian (a truncation on a little-endian host).
    Le,
    /// `be16/32/64`: to big-endian (a byte swap on a little-endian host).
    Be,
    /// `bswap16/32/64` (ALU64 class): unconditional byte swap.
    Swap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JmpCond {
    Eq,
    Gt,
    Ge,
    Set,
    Ne,
    Sgt,
    Sge,
    Lt,
    Le,
    Slt,
    Sle,
}

impl JmpCond {
    /// The operator Linux's verifier log prints.
    pub const fn symbol(self) -> &'static str {
        match self {
            JmpCond::Eq => "==",
            JmpCond::Gt => ">",
            JmpCond::Ge => ">=",
            JmpCond::Set => "&",
            JmpCond::Ne => "!=",
            JmpCond::Sgt => "s>",
            JmpCond::Sge => "s>=",
            JmpCond::Lt => "<",
            JmpCond::Le => "<=",
            JmpCond::Slt => "s<",
            JmpCond::Sle => "s<=",
        }
    }
    /// The mnemonic stem used by the assembler (`jeq`, `jsgt`, ...).
    pub const fn mnemonic(self) -> &'static str {
        match self {
            JmpCond::Eq => "jeq",
            JmpCond::Gt => "jgt",
            JmpCond::Ge => "jge",
            JmpCond::Set => "jset",
            JmpCond::Ne => "jne",
            JmpCond::Sgt => "jsgt",
            JmpCond::Sge => "jsge",
            JmpCond::Lt => "jlt",
            JmpCond::Le => "jle",
            JmpCond::Slt => "jslt",
            JmpCond::Sle => "jsle",
        }
    }
    /// Evaluate the condition on two 64-bit values.
    #[inline(always)]
    pub fn eval64(self, a: u64, b: u64) -> bool {
        match self {
            JmpCond::Eq => a == b,
            JmpCond::Gt => a > b,
            JmpCond::Ge => a >= b,
            JmpCond::Set => a & b != 0,
            JmpCond::Ne => a != b,
            JmpCond::Sgt => (a as i64) > (b as i64),
            JmpCond::Sge => (a as i64) >= (b as i64),
            JmpCond::Lt => a < b,
            JmpCond::Le => a <= b,
            JmpCond::Slt => (a as i64) < (b as i64),
            JmpCond::Sle => (a as i64) <= (b as i64),
        }
    }
    /// Evaluate the condition on the low 32 bits of two values (JMP32).
    #[inline(always)]
    pub fn eval32(self, a: u64, b: u64) -> bool {
        let (a, b) = (a as u32, b as u32);
        match self {
            JmpCond::Eq => a == b,
            JmpCond::Gt => a > b,
            JmpCond::Ge => a >= b,
            JmpCond::Set => a & b != 0,
            JmpCond::Ne => a != b,
            JmpCond::Sgt => (a as i32) > (b as i32),
            JmpCond::Sge => (a as i32) >= (b as i32),
            JmpCond::Lt => a < b,
            JmpCond::Le => a <= b,
            JmpCond::Slt => (a as i32) < (b as i32),
            JmpCond::Sle => (a as i32) <= (b as i32),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    Add,
    Or,
    And,
    Xor,
    Xchg,
    Cmpxchg,
}

/// The typed meaning of a (valid) instruction. Obtained from
/// [`crate::Program::kind`] or [`classify`]; jump offsets stay relative
/// (target = index + 1 + offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// ALU (`wide == false`, 32-bit, upper half zeroed) or ALU64.
    Alu {
        wide: bool,
        op: AluOp,
        dst: u8,
        src: Operand,
    },
    /// `le`/`be` (ALU class) or `bswap` (ALU64 class) of `bits` 16, 32 or 64.
    Endian {
        op: EndianOp,
        bits: u8,
        dst: u8,
    },
    /// Unconditional jump: `ja` (16-bit offset) or `gotol` (JMP32 class, 32-bit offset in imm).
    Ja {
        off: i32,
    },
    /// Conditional jump (JMP, or JMP32 when `wide == false`).
    Jcond {
        wide: bool,
        cond: JmpCond,
        dst: u8,
        src: Operand,
        off: i16,
    },
    /// `may_goto` (Linux `BPF_JMP | BPF_JCOND`, src 0): jumps to
    /// index + 1 + `off` when the invocation's loop budget is exhausted,
    /// otherwise consumes one unit of budget and falls through.
    MayGoto {
        off: i16,
    },
    /// Call a helper by id.
    CallHelper {
        id: i32,
    },
    /// Call a local function: target = index + 1 + rel.
    CallLocal {
        rel: i32,
    },
    /// Call a kfunc by BTF id (`off` is the BTF object index, 0 for vmlinux).
    CallKfunc {
        btf_id: i32,
        off: i16,
    },
    /// Call through a register (`callx`), register in the dst field.
    Callx {
        reg: u8,
    },
    Exit,
    /// 16-byte load of a 64-bit immediate or pseudo value.
    Lddw {
        dst: u8,
        pseudo: u8,
        imm: i32,
        next_imm: i32,
    },
    /// Legacy packet load, absolute offset `imm` (result in r0).
    LdAbs {
        size: Size,
        imm: i32,
    },
    /// Legacy packet load at `src + imm` (result in r0).
    LdInd {
        size: Size,
        src: u8,
        imm: i32,
    },
    /// `dst = *(size *)(src + off)`, sign-extended for MEMSX.
    Ldx {
        size: Size,
        sign_extend: bool,
        dst: u8,
        src: u8,
        off: i16,
    },
    /// `*(size *)(dst + off) = imm`
    St {
        size: Size,
        dst: u8,
        off: i16,
        imm: i32,
    },
    /// `*(size *)(dst + off) = src`
    Stx {
        size: Size,
        dst: u8,
        src: u8,
        off: i16,
    },
    /// Atomic read-modify-write of `size` (W or DW) at `dst + off`.
    Atomic {
        size: Size,
        op: AtomicOp,
        fetch: bool,
        dst: u8,
        src: u8,
        off: i16,
    },
}

impl Kind {
    /// Value of an `lddw` immediate (only meaningful for [`Kind::Lddw`]).
    pub fn lddw_value(imm: i32, next_imm: i32) -> u64 {
        ((next_imm as u32 as u64) << 32) | imm as u32 as u64
    }

    /// Relative jump offset if this instruction may transfer control to
    /// `index + 1 + off` (jumps, not calls).
    pub fn jump_offset(&self) -> Option<i32> {
        match *self {
            Kind::Ja { off } => Some(off),
            Kind::Jcond { off, .. } | Kind::MayGoto { off } => Some(off as i32),
            _ => None,
        }
    }

    /// The register this instruction writes, if any (r0 for calls and legacy loads).
    pub fn written_reg(&self) -> Option<u8> {
        match *self {
            Kind::Alu { dst, .. } | Kind::Endian { dst, .. } | Kind::Lddw { dst, .. } => Some(dst),
            Kind::Ldx { dst, .. } => Some(dst),
            Kind::LdAbs { .. } | Kind::LdInd { .. } => Some(0),
            Kind::CallHelper { .. }
            | Kind::CallLocal { .. }
            | Kind::CallKfunc { .. }
            | Kind::Callx { .. } => Some(0),
            Kind::Atomic {
                op: AtomicOp::Cmpxchg,
                ..
            } => Some(0),
            Kind::Atomic {
                fetch: true, src, ..
            } => Some(src),
            _ => None,
        }
    }
}

/// What is wrong with an instruction; see [`crate::DecodeError`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("unknown opcode {0:#04x}")]
    UnknownOpcode(u8),
    #[error("reserved field {field} must be 0 for opcode {code:#04x} (found {value})")]
    ReservedField {
        code: u8,
        field: &'static str,
        value: i64,
    },
    #[error("invalid {field} {value} for opcode {code:#04x}")]
    InvalidField {
        code: u8,
        field: &'static str,
        value: i64,
    },
    #[error("invalid register r{0}")]
    BadRegister(u8),
    #[error("frame pointer r10 is read only")]
    WriteToR10,
    #[error("lddw is missing its second half")]
    TruncatedLddw,
    #[error("second half of lddw must have opcode 0, dst 0, src 0 and offset 0")]
    BadLddwSecondHalf,
    #[error("jump out of range to {0}")]
    JumpOutOfRange(i64),
    #[error("jump into the middle of lddw at {0}")]
    JumpIntoLddw(i64),
    #[error("call to {0} which is out of range")]
    CallOutOfRange(i64),
    #[error("call into the middle of lddw at {0}")]
    CallIntoLddw(i64),
}

fn reserved(code: u8, field: &'static str, value: i64) -> Result<(), Problem> {
    if value != 0 {
        Err(Problem::ReservedField { code, field, value })
    } else {
        Ok(())
    }
}

/// Classify one instruction slot (`next` is the following slot, needed for `lddw`),
/// validating every field. Registers are checked to be in r0..r10 and r10 is never
/// written; jump targets are checked by [`crate::validate`], which knows the program.
pub fn classify(i: Insn, next: Option<Insn>) -> Result<Kind, Problem> {
    let code = i.code;
    if i.dst > 10 {
        return Err(Problem::BadRegister(i.dst));
    }
    if i.src > 10 && !matches!(code & CLS_MASK, CLS_LD) {
        return Err(Problem::BadRegister(i.src));
    }
    let kind = match code & CLS_MASK {
        CLS_ALU | CLS_ALU64 => classify_alu(i)?,
        CLS_JMP | CLS_JMP32 => classify_jmp(i)?,
        CLS_LD => classify_ld(i, next)?,
        CLS_LDX => {
            let sign_extend = match code & MODE_MASK {
                MODE_MEM => false,
                MODE_MEMSX if code & SIZE_MASK != SIZE_DW => true,
                _ => return Err(Problem::UnknownOpcode(code)),
            };
            reserved(code, "imm", i.imm as i64)?;
            Kind::Ldx {
                size: Size::from_code(code),
                sign_extend,
                dst: i.dst,
                src: i.src,
                off: i.off,
            }
        }
        CLS_ST => {
            if code & MODE_MASK != MODE_MEM {
                return Err(Problem::UnknownOpcode(code));
            }
            reserved(code, "src", i.src as i64)?;
            Kind::St {
                size: Size::from_code(code),
                dst: i.dst,
                off: i.off,
                imm: i.imm,
            }
        }
        _ => {
            // CLS_STX
            match code & MODE_MASK {
                MODE_MEM => {
                    reserved(code, "imm", i.imm as i64)?;
                    Kind::Stx {
                        size: Size::from_code(code),
                        dst: i.dst,
                        src: i.src,
                        off: i.off,
                    }
                }
                MODE_ATOMIC if matches!(code & SIZE_MASK, SIZE_W | SIZE_DW) => {
                    let (op, fetch) = match i.imm {
                        ATOMIC_ADD => (AtomicOp::Add, false),
                        ATOMIC_OR => (AtomicOp::Or, false),
                        ATOMIC_AND => (AtomicOp::And, false),
                        ATOMIC_XOR => (AtomicOp::Xor, false),
                        x if x == ATOMIC_ADD | ATOMIC_FETCH => (AtomicOp::Add, true),
                        x if x == ATOMIC_OR | ATOMIC_FETCH => (AtomicOp::Or, true),
                        x if x == ATOMIC_AND | ATOMIC_FETCH => (AtomicOp::And, true),
                        x if x == ATOMIC_XOR | ATOMIC_FETCH => (AtomicOp::Xor, true),
                        ATOMIC_XCHG => (AtomicOp::Xchg, true),
                        ATOMIC_CMPXCHG => (AtomicOp::Cmpxchg, true),
                        other => {
                            return Err(Problem::InvalidField {
                                code,
                                field: "atomic operation (imm)",
                                value: other as i64,
                            });
                        }
                    };
                    if fetch && i.src == REG_FP && op != AtomicOp::Cmpxchg {
                        return Err(Problem::WriteToR10);
                    }
                    Kind::Atomic {
                        size: Size::from_code(code),
                        op,
                        fetch,
                        dst: i.dst,
                        src: i.src,
                        off: i.off,
                    }
                }
                _ => return Err(Problem::UnknownOpcode(code)),
            }
        }
    };
    if let Some(w) = kind.written_reg()
        && w == REG_FP
    {
        return Err(Problem::WriteToR10);
    }
    Ok(kind)
}

fn classify_alu(i: Insn) -> Result<Kind, Problem> {
    let code = i.code;
    let wide = code & CLS_MASK == CLS_ALU64;
    let src_x = code & SRC_MASK == SRC_X;
    let operand = || -> Result<Operand, Problem> {
        if src_x {
            reserved(code, "imm", i.imm as i64)?;
            Ok(Operand::Reg(i.src))
        } else {
            reserved(code, "src", i.src as i64)?;
            Ok(Operand::Imm(i.imm))
        }
    };
    let op = match code & OP_MASK {
        ALU_ADD => AluOp::Add,
        ALU_SUB => AluOp::Sub,
        ALU_MUL => AluOp::Mul,
        ALU_OR => AluOp::Or,
        ALU_AND => AluOp::And,
        ALU_LSH => AluOp::Lsh,
        ALU_RSH => AluOp::Rsh,
        ALU_XOR => AluOp::Xor,
        ALU_ARSH => AluOp::Arsh,
        ALU_DIV | ALU_MOD => {
            let signed = match i.off {
                0 => false,
                1 => true,
                v => {
                    return Err(Problem::InvalidField {
                        code,
                        field: "offset",
                        value: v as i64,
                    });
                }
            };
            let op = match (code & OP_MASK == ALU_DIV, signed) {
                (true, false) => AluOp::Div,
                (true, true) => AluOp::SDiv,
                (false, false) => AluOp::Mod,
                (false, true) => AluOp::SMod,
            };
            return Ok(Kind::Alu {
                wide,
                op,
                dst: i.dst,
                src: operand()?,
            });
        }
        ALU_MOV => {
            let op = match (i.off, src_x, wide) {
                (0, _, _) => AluOp::Mov,
                (8 | 16, true, _) | (32, true, true) => AluOp::MovSx(i.off as u8),
                (v, _, _) => {
                    return Err(Problem::InvalidField {
                        code,
                        field: "offset",
                        value: v as i64,
                    });
                }
            };
            return Ok(Kind::Alu {
                wide,
                op,
                dst: i.dst,
                src: operand()?,
            });
        }
        ALU_NEG => {
            if src_x {
                return Err(Problem::UnknownOpcode(code));
            }
            reserved(code, "src", i.src as i64)?;
            reserved(code, "imm", i.imm as i64)?;
            reserved(code, "offset", i.off as i64)?;
            return Ok(Kind::Alu {
                wide,
                op: AluOp::Neg,
                dst: i.dst,
                src: Operand::Imm(0),
            });
        }
        ALU_END => {
            let op = match (wide, src_x) {
                (false, false) => EndianOp::Le,
                (false, true) => EndianOp::Be,
                (true, false) => EndianOp::Swap,
                (true, true) => return Err(Problem::UnknownOpcode(code)),
            };
            reserved(code, "src", i.src as i64)?;
            reserved(code, "offset", i.off as i64)?;
            if !matches!(i.imm, 16 | 32 | 64) {
                return Err(Problem::InvalidField {
                    code,
                    field: "imm (byte swap width)",
                    value: i.imm as i64,
                });
            }
            return Ok(Kind::Endian {
                op,
                bits: i.imm as u8,
                dst: i.dst,
            });
        }
        _ => return Err(Problem::UnknownOpcode(code)),
    };
    reserved(code, "offset", i.off as i64)?;
    Ok(Kind::Alu {
        wide,
        op,
        dst: i.dst,
        src: operand()?,
    })
}

fn classify_jmp(i: Insn) -> Result<Kind, Problem> {
    let code = i.code;
    let wide = code & CLS_MASK == CLS_JMP;
    let src_x = code & SRC_MASK == SRC_X;
    let cond = match code & OP_MASK {
        JMP_JA => {
            if src_x {
                return Err(Problem::UnknownOpcode(code));
            }
            reserved(code, "dst", i.dst as i64)?;
            reserved(code, "src", i.src as i64)?;
            if wide {
                reserved(code, "imm", i.imm as i64)?;
                return Ok(Kind::Ja { off: i.off as i32 });
            } else {
                reserved(code, "offset", i.off as i64)?;
                return Ok(Kind::Ja { off: i.imm });
            }
        }
        JMP_CALL if wide => {
            reserved(code, "src", if src_x { i.src as i64 } else { 0 })?;
            if src_x {
                // callx: target register in dst.
                reserved(code, "offset", i.off as i64)?;
                reserved(code, "imm", i.imm as i64)?;
                return Ok(Kind::Callx { reg: i.dst });
            }
            reserved(code, "dst", i.dst as i64)?;
            return match i.src {
                CALL_HELPER => {
                    reserved(code, "offset", i.off as i64)?;
                    Ok(Kind::CallHelper { id: i.imm })
                }
                CALL_LOCAL => {
                    reserved(code, "offset", i.off as i64)?;
                    Ok(Kind::CallLocal { rel: i.imm })
                }
                CALL_KFUNC => Ok(Kind::CallKfunc {
                    btf_id: i.imm,
                    off: i.off,
                }),
                s => Err(Problem::InvalidField {
                    code,
                    field: "src (call kind)",
                    value: s as i64,
                }),
            };
        }
        JMP_EXIT if wide => {
            if src_x {
                return Err(Problem::UnknownOpcode(code));
            }
            reserved(code, "dst", i.dst as i64)?;
            reserved(code, "src", i.src as i64)?;
            reserved(code, "offset", i.off as i64)?;
            reserved(code, "imm", i.imm as i64)?;
            return Ok(Kind::Exit);
        }
        JMP_JCOND if wide => {
            if src_x {
                return Err(Problem::UnknownOpcode(code));
            }
            reserved(code, "dst", i.dst as i64)?;
            reserved(code, "imm", i.imm as i64)?;
            if i.src != JCOND_MAY_GOTO {
                return Err(Problem::InvalidField {
                    code,
                    field: "src (jcond kind)",
                    value: i.src as i64,
                });
            }
            return Ok(Kind::MayGoto { off: i.off });
        }
        JMP_JEQ => JmpCond::Eq,
        JMP_JGT => JmpCond::Gt,
        JMP_JGE => JmpCond::Ge,
        JMP_JSET => JmpCond::Set,
        JMP_JNE => JmpCond::Ne,
        JMP_JSGT => JmpCond::Sgt,
        JMP_JSGE => JmpCond::Sge,
        JMP_JLT => JmpCond::Lt,
        JMP_JLE => JmpCond::Le,
        JMP_JSLT => JmpCond::Slt,
        JMP_JSLE => JmpCond::Sle,
        _ => return Err(Problem::UnknownOpcode(code)),
    };
    let src = if src_x {
        reserved(code, "imm", i.imm as i64)?;
        Operand::Reg(i.src)
    } else {
        reserved(code, "src", i.src as i64)?;
        Operand::Imm(i.imm)
    };
    Ok(Kind::Jcond {
        wide,
        cond,
        dst: i.dst,
        src,
        off: i.off,
    })
}

fn classify_ld(i: Insn, next: Option<Insn>) -> Result<Kind, Problem> {
    let code = i.code;
    match code & MODE_MASK {
        MODE_IMM if code & SIZE_MASK == SIZE_DW => {
            reserved(code, "offset", i.off as i64)?;
            if i.src > PSEUDO_MAP_IDX_VALUE {
                return Err(Problem::InvalidField {
                    code,
                    field: "src (lddw pseudo source)",
                    value: i.src as i64,
                });
            }
            let n = next.ok_or(Problem::TruncatedLddw)?;
            if n.code != 0 || n.dst != 0 || n.src != 0 || n.off != 0 {
                return Err(Problem::BadLddwSecondHalf);
            }
            // Linux only requires the second half's imm to be 0 for the map
            // fd / index forms: for BTF_ID it is the BTF object fd (0 = vmlinux),
            // and for FUNC it is not read.
            if matches!(i.src, PSEUDO_MAP_FD | PSEUDO_MAP_IDX) && n.imm != 0 {
                return Err(Problem::ReservedField {
                    code,
                    field: "imm of the second half",
                    value: n.imm as i64,
                });
            }
            Ok(Kind::Lddw {
                dst: i.dst,
                pseudo: i.src,
                imm: i.imm,
                next_imm: n.imm,
            })
        }
        MODE_ABS | MODE_IND if code & SIZE_MASK != SIZE_DW => {
            reserved(code, "dst", i.dst as i64)?;
            reserved(code, "offset", i.off as i64)?;
            let size = Size::from_code(code);
            if code & MODE_MASK == MODE_ABS {
                reserved(code, "src", i.src as i64)?;
                Ok(Kind::LdAbs { size, imm: i.imm })
            } else {
                if i.src > 10 {
                    return Err(Problem::BadRegister(i.src));
                }
                Ok(Kind::LdInd {
                    size,
                    src: i.src,
                    imm: i.imm,
                })
            }
        }
        _ => Err(Problem::UnknownOpcode(code)),
    }
}
