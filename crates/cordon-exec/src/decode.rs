//! Pre-decoding: a validated [`Program`] becomes a dense array of 16-byte [`Op`]s.
//!
//! Every decision that does not depend on run-time values is taken here: the
//! operation (including imm/reg source, width, signedness, movsx width, byte-swap
//! kind) is one [`OpCode`]; immediates are pre-extended to 64 bits; shift
//! immediates are pre-masked; jump and call targets are absolute; helper calls
//! hold their helper-table slot; calls hold their callee's frame size.
//!
//! Op `i` corresponds to instruction slot `i` (the second half of an `lddw` is an
//! unreachable [`OpCode::Invalid`]), so errors name the original instruction
//! index. One extra [`OpCode::FellOff`] op after the last slot catches programs
//! that run past their end, so the engine never indexes out of bounds.

use cordon_isa::opcode::*;
use cordon_isa::{AluOp, AtomicOp, EndianOp, JmpCond, Kind, Operand, Program, Size};

use crate::error::LoadError;
use crate::helpers::HelperTable;

/// One pre-decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Op {
    pub code: OpCode,
    pub dst: u8,
    pub src: u8,
    pub _pad: u8,
    /// Memory offset, or absolute jump/call target.
    pub off: i32,
    /// Immediate (sign-extended), lddw value, helper slot, or callee frame size.
    pub imm: u64,
}

const _: () = assert!(std::mem::size_of::<Op>() == 16);

macro_rules! opcodes {
    ($($name:ident),* $(,)?) => {
        /// Internal operation codes (dense, for a jump-table dispatch).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        #[allow(non_camel_case_types)]
        pub enum OpCode { $($name),* }
    };
}

opcodes! {
    // 64-bit ALU, immediate / register source.
    Add64I, Add64R, Sub64I, Sub64R, Mul64I, Mul64R, Div64I, Div64R, SDiv64I, SDiv64R,
    Mod64I, Mod64R, SMod64I, SMod64R, Or64I, Or64R, And64I, And64R, Lsh64I, Lsh64R,
    Rsh64I, Rsh64R, Arsh64I, Arsh64R, Xor64I, Xor64R, Mov64I, Mov64R, Neg64,
    MovSx64_8, MovSx64_16, MovSx64_32,
    // 32-bit ALU.
    Add32I, Add32R, Sub32I, Sub32R, Mul32I, Mul32R, Div32I, Div32R, SDiv32I, SDiv32R,
    Mod32I, Mod32R, SMod32I, SMod32R, Or32I, Or32R, And32I, And32R, Lsh32I, Lsh32R,
    Rsh32I, Rsh32R, Arsh32I, Arsh32R, Xor32I, Xor32R, Mov32I, Mov32R, Neg32,
    MovSx32_8, MovSx32_16,
    // Byte order.
    Le16, Le32, Le64, Be16, Be32, Be64, Swap16, Swap32, Swap64,
    // Jumps.
    Ja, MayGoto,
    Jeq64I, Jeq64R, Jgt64I, Jgt64R, Jge64I, Jge64R, Jset64I, Jset64R, Jne64I, Jne64R,
    Jsgt64I, Jsgt64R, Jsge64I, Jsge64R, Jlt64I, Jlt64R, Jle64I, Jle64R, Jslt64I, Jslt64R,
    Jsle64I, Jsle64R,
    Jeq32I, Jeq32R, Jgt32I, Jgt32R, Jge32I, Jge32R, Jset32I, Jset32R, Jne32I, Jne32R,
    Jsgt32I, Jsgt32R, Jsge32I, Jsge32R, Jlt32I, Jlt32R, Jle32I, Jle32R, Jslt32I, Jslt32R,
    Jsle32I, Jsle32R,
    // Calls.
    CallHelper, CallLocal, Callx, Exit,
    // Loads and stores.
    Lddw,
    LdAbsB, LdAbsH, LdAbsW, LdIndB, LdIndH, LdIndW,
    LdxB, LdxH, LdxW, LdxDW, LdxSB, LdxSH, LdxSW,
    StB, StH, StW, StDW, StxB, StxH, StxW, StxDW,
    // Atomics.
    AAdd32, AOr32, AAnd32, AXor32, AFAdd32, AFOr32, AFAnd32, AFXor32, AXchg32, ACmpxchg32,
    AAdd64, AOr64, AAnd64, AXor64, AFAdd64, AFOr64, AFAnd64, AFXor64, AXchg64, ACmpxchg64,
    // Not executable.
    Invalid, FellOff,
}

/// The pre-decoded program plus the frame size of its entry.
#[derive(Clone, Debug)]
pub(crate) struct Decoded {
    pub(crate) ops: Vec<Op>,
    pub(crate) entry_frame: u64,
    /// Largest frame size of any subprogram (for the native-stack capacity check).
    pub(crate) max_frame: u64,
}

fn pseudo_name(p: u8) -> &'static str {
    match p {
        PSEUDO_MAP_FD => "map fd",
        PSEUDO_MAP_VALUE => "map value",
        PSEUDO_BTF_ID => "BTF id",
        PSEUDO_FUNC => "function pointer",
        PSEUDO_MAP_IDX => "map index",
        PSEUDO_MAP_IDX_VALUE => "map index value",
        _ => "unknown",
    }
}

/// Largest frame a subprogram may ask for.
pub(crate) const MAX_FRAME: u64 = 1 << 20;

/// Pre-decode `prog`. `frame_of(pc)` gives the (rounded) frame size of the
/// subprogram starting at `pc`.
pub(crate) fn decode(
    prog: &Program,
    helpers: &HelperTable,
    frame_of: &dyn Fn(usize) -> u64,
) -> Result<Decoded, LoadError> {
    let n = prog.len();
    let mut ops = Vec::with_capacity(n + 1);
    let mut max_frame = frame_of(0);
    for pc in 0..n {
        let Some(kind) = prog.kind(pc) else {
            ops.push(op(OpCode::Invalid, 0, 0, 0, 0));
            continue;
        };
        let o = match kind {
            Kind::Alu {
                wide,
                op: a,
                dst,
                src,
            } => alu(wide, a, dst, src),
            Kind::Endian { op: e, bits, dst } => {
                use OpCode::*;
                let c = match (e, bits) {
                    (EndianOp::Le, 16) => Le16,
                    (EndianOp::Le, 32) => Le32,
                    (EndianOp::Le, _) => Le64,
                    (EndianOp::Be, 16) => Be16,
                    (EndianOp::Be, 32) => Be32,
                    (EndianOp::Be, _) => Be64,
                    (EndianOp::Swap, 16) => Swap16,
                    (EndianOp::Swap, 32) => Swap32,
                    (EndianOp::Swap, _) => Swap64,
                };
                op(c, dst, 0, 0, 0)
            }
            Kind::Ja { off } => op(OpCode::Ja, 0, 0, target(pc, off), 0),
            Kind::MayGoto { off } => op(OpCode::MayGoto, 0, 0, target(pc, off as i32), 0),
            Kind::Jcond {
                wide,
                cond,
                dst,
                src,
                off,
            } => jcond(wide, cond, dst, src, target(pc, off as i32)),
            Kind::CallHelper { id } => {
                let slot = u32::try_from(id)
                    .ok()
                    .and_then(|id| helpers.helper_slot(id as u64))
                    .ok_or(LoadError::UnknownHelper { index: pc, id })?;
                op(OpCode::CallHelper, 0, 0, 0, slot as u64)
            }
            Kind::CallKfunc { btf_id, off } => {
                let slot = (off == 0)
                    .then(|| u32::try_from(btf_id).ok())
                    .flatten()
                    .and_then(|id| helpers.kfunc_slot(id))
                    .ok_or(LoadError::UnknownKfunc {
                        index: pc,
                        btf_id,
                        off,
                    })?;
                op(OpCode::CallHelper, 0, 0, 0, slot as u64)
            }
            Kind::CallLocal { rel } => {
                let t = target(pc, rel);
                let size = frame_of(t as usize);
                if size > MAX_FRAME {
                    return Err(LoadError::FrameTooLarge {
                        index: t as usize,
                        size,
                        max: MAX_FRAME,
                    });
                }
                max_frame = max_frame.max(size);
                op(OpCode::CallLocal, 0, 0, t, size)
            }
            Kind::Callx { reg } => op(OpCode::Callx, reg, 0, 0, 0),
            Kind::Exit => op(OpCode::Exit, 0, 0, 0, 0),
            Kind::Lddw {
                dst,
                pseudo,
                imm,
                next_imm,
            } => {
                if pseudo != PSEUDO_IMM64 {
                    return Err(LoadError::UnresolvedPseudo {
                        index: pc,
                        pseudo,
                        name: pseudo_name(pseudo),
                    });
                }
                op(OpCode::Lddw, dst, 0, 0, Kind::lddw_value(imm, next_imm))
            }
            Kind::LdAbs { size, imm } => {
                let c = match size {
                    Size::B => OpCode::LdAbsB,
                    Size::H => OpCode::LdAbsH,
                    _ => OpCode::LdAbsW,
                };
                op(c, 0, 0, 0, imm as i64 as u64)
            }
            Kind::LdInd { size, src, imm } => {
                let c = match size {
                    Size::B => OpCode::LdIndB,
                    Size::H => OpCode::LdIndH,
                    _ => OpCode::LdIndW,
                };
                op(c, 0, src, 0, imm as i64 as u64)
            }
            Kind::Ldx {
                size,
                sign_extend,
                dst,
                src,
                off,
            } => {
                use OpCode::*;
                let c = match (size, sign_extend) {
                    (Size::B, false) => LdxB,
                    (Size::H, false) => LdxH,
                    (Size::W, false) => LdxW,
                    (Size::DW, _) => LdxDW,
                    (Size::B, true) => LdxSB,
                    (Size::H, true) => LdxSH,
                    (Size::W, true) => LdxSW,
                };
                op(c, dst, src, off as i32, 0)
            }
            Kind::St {
                size,
                dst,
                off,
                imm,
            } => {
                let c = match size {
                    Size::B => OpCode::StB,
                    Size::H => OpCode::StH,
                    Size::W => OpCode::StW,
                    Size::DW => OpCode::StDW,
                };
                op(c, dst, 0, off as i32, imm as i64 as u64)
            }
            Kind::Stx {
                size,
                dst,
                src,
                off,
            } => {
                let c = match size {
                    Size::B => OpCode::StxB,
                    Size::H => OpCode::StxH,
                    Size::W => OpCode::StxW,
                    Size::DW => OpCode::StxDW,
                };
                op(c, dst, src, off as i32, 0)
            }
            Kind::Atomic {
                size,
                op: a,
                fetch,
                dst,
                src,
                off,
            } => {
                use OpCode::*;
                let c = match (size == Size::DW, a, fetch) {
                    (false, AtomicOp::Add, false) => AAdd32,
                    (false, AtomicOp::Or, false) => AOr32,
                    (false, AtomicOp::And, false) => AAnd32,
                    (false, AtomicOp::Xor, false) => AXor32,
                    (false, AtomicOp::Add, true) => AFAdd32,
                    (false, AtomicOp::Or, true) => AFOr32,
                    (false, AtomicOp::And, true) => AFAnd32,
                    (false, AtomicOp::Xor, true) => AFXor32,
                    (false, AtomicOp::Xchg, _) => AXchg32,
                    (false, AtomicOp::Cmpxchg, _) => ACmpxchg32,
                    (true, AtomicOp::Add, false) => AAdd64,
                    (true, AtomicOp::Or, false) => AOr64,
                    (true, AtomicOp::And, false) => AAnd64,
                    (true, AtomicOp::Xor, false) => AXor64,
                    (true, AtomicOp::Add, true) => AFAdd64,
                    (true, AtomicOp::Or, true) => AFOr64,
                    (true, AtomicOp::And, true) => AFAnd64,
                    (true, AtomicOp::Xor, true) => AFXor64,
                    (true, AtomicOp::Xchg, _) => AXchg64,
                    (true, AtomicOp::Cmpxchg, _) => ACmpxchg64,
                };
                op(c, dst, src, off as i32, 0)
            }
        };
        ops.push(o);
    }
    ops.push(op(OpCode::FellOff, 0, 0, 0, 0));
    Ok(Decoded {
        ops,
        entry_frame: frame_of(0),
        max_frame,
    })
}

fn op(code: OpCode, dst: u8, src: u8, off: i32, imm: u64) -> Op {
    Op {
        code,
        dst,
        src,
        _pad: 0,
        off,
        imm,
    }
}

/// Absolute target of a relative jump or call (validated in range by cordon-isa).
fn target(pc: usize, rel: i32) -> i32 {
    (pc as i64 + 1 + rel as i64) as i32
}

fn alu(wide: bool, a: AluOp, dst: u8, src: Operand) -> Op {
    use OpCode::*;
    let (is_imm, s, imm) = match src {
        Operand::Imm(i) => (true, 0, i as i64 as u64),
        Operand::Reg(r) => (false, r, 0),
    };
    let pick = |i: OpCode, r: OpCode| if is_imm { i } else { r };
    let c = if wide {
        match a {
            AluOp::Add => pick(Add64I, Add64R),
            AluOp::Sub => pick(Sub64I, Sub64R),
            AluOp::Mul => pick(Mul64I, Mul64R),
            AluOp::Div => pick(Div64I, Div64R),
            AluOp::SDiv => pick(SDiv64I, SDiv64R),
            AluOp::Mod => pick(Mod64I, Mod64R),
            AluOp::SMod => pick(SMod64I, SMod64R),
            AluOp::Or => pick(Or64I, Or64R),
            AluOp::And => pick(And64I, And64R),
            AluOp::Lsh => pick(Lsh64I, Lsh64R),
            AluOp::Rsh => pick(Rsh64I, Rsh64R),
            AluOp::Arsh => pick(Arsh64I, Arsh64R),
            AluOp::Xor => pick(Xor64I, Xor64R),
            AluOp::Mov => pick(Mov64I, Mov64R),
            AluOp::Neg => Neg64,
            AluOp::MovSx(8) => MovSx64_8,
            AluOp::MovSx(16) => MovSx64_16,
            AluOp::MovSx(_) => MovSx64_32,
        }
    } else {
        match a {
            AluOp::Add => pick(Add32I, Add32R),
            AluOp::Sub => pick(Sub32I, Sub32R),
            AluOp::Mul => pick(Mul32I, Mul32R),
            AluOp::Div => pick(Div32I, Div32R),
            AluOp::SDiv => pick(SDiv32I, SDiv32R),
            AluOp::Mod => pick(Mod32I, Mod32R),
            AluOp::SMod => pick(SMod32I, SMod32R),
            AluOp::Or => pick(Or32I, Or32R),
            AluOp::And => pick(And32I, And32R),
            AluOp::Lsh => pick(Lsh32I, Lsh32R),
            AluOp::Rsh => pick(Rsh32I, Rsh32R),
            AluOp::Arsh => pick(Arsh32I, Arsh32R),
            AluOp::Xor => pick(Xor32I, Xor32R),
            AluOp::Mov => pick(Mov32I, Mov32R),
            AluOp::Neg => Neg32,
            AluOp::MovSx(8) => MovSx32_8,
            // cordon-isa only accepts 8 and 16 for the 32-bit movsx.
            AluOp::MovSx(_) => MovSx32_16,
        }
    };
    // Shift amounts by immediate are masked here (the suite's semantics; the
    // verifier rejects out-of-range immediates for real programs).
    let imm = match c {
        Lsh64I | Rsh64I | Arsh64I => imm & 63,
        Lsh32I | Rsh32I | Arsh32I => imm & 31,
        _ => imm,
    };
    op(c, dst, s, 0, imm)
}

fn jcond(wide: bool, cond: JmpCond, dst: u8, src: Operand, t: i32) -> Op {
    use OpCode::*;
    let (is_imm, s, imm) = match src {
        Operand::Imm(i) => (true, 0, i as i64 as u64),
        Operand::Reg(r) => (false, r, 0),
    };
    let pick = |i: OpCode, r: OpCode| if is_imm { i } else { r };
    let c = match (wide, cond) {
        (true, JmpCond::Eq) => pick(Jeq64I, Jeq64R),
        (true, JmpCond::Gt) => pick(Jgt64I, Jgt64R),
        (true, JmpCond::Ge) => pick(Jge64I, Jge64R),
        (true, JmpCond::Set) => pick(Jset64I, Jset64R),
        (true, JmpCond::Ne) => pick(Jne64I, Jne64R),
        (true, JmpCond::Sgt) => pick(Jsgt64I, Jsgt64R),
        (true, JmpCond::Sge) => pick(Jsge64I, Jsge64R),
        (true, JmpCond::Lt) => pick(Jlt64I, Jlt64R),
        (true, JmpCond::Le) => pick(Jle64I, Jle64R),
        (true, JmpCond::Slt) => pick(Jslt64I, Jslt64R),
        (true, JmpCond::Sle) => pick(Jsle64I, Jsle64R),
        (false, JmpCond::Eq) => pick(Jeq32I, Jeq32R),
        (false, JmpCond::Gt) => pick(Jgt32I, Jgt32R),
        (false, JmpCond::Ge) => pick(Jge32I, Jge32R),
        (false, JmpCond::Set) => pick(Jset32I, Jset32R),
        (false, JmpCond::Ne) => pick(Jne32I, Jne32R),
        (false, JmpCond::Sgt) => pick(Jsgt32I, Jsgt32R),
        (false, JmpCond::Sge) => pick(Jsge32I, Jsge32R),
        (false, JmpCond::Lt) => pick(Jlt32I, Jlt32R),
        (false, JmpCond::Le) => pick(Jle32I, Jle32R),
        (false, JmpCond::Slt) => pick(Jslt32I, Jslt32R),
        (false, JmpCond::Sle) => pick(Jsle32I, Jsle32R),
    };
    op(c, dst, s, t, imm)
}
