//! The one walk over [`Kind`] both printers share. A [`Syntax`] says how each
//! instruction family is spelled; [`render`] takes an instruction apart once
//! (and decides what both syntaxes decide alike: long or short `ja`, the
//! endian and atomic operation names) and hands the pieces to the syntax.
//! [`format_insn_in`] and [`listing`] are the per-slot and per-program entry
//! points over any syntax.

use crate::insn::{
    AluOp, AtomicOp, EndianOp, Insn, JmpCond, Kind, Operand, Problem, Size, classify,
};
use crate::opcode::OP_JA32;
use crate::program::DecodeError;

/// How one syntax spells each instruction family. Methods get the decoded
/// fields of the [`Kind`] variant of the same name (plus what [`render`]
/// worked out for both syntaxes).
pub(crate) trait Syntax {
    /// ALU or ALU64 (`wide`), including `neg` and sign-extending `mov`.
    fn alu(&self, wide: bool, op: AluOp, dst: u8, src: Operand) -> String;
    /// Byte swap; `name` is `le`, `be` or `bswap`.
    fn endian(&self, name: &str, bits: u8, dst: u8) -> String;
    /// Unconditional jump; `long` for the 32-bit-offset form (`gotol`/`ja32`).
    fn ja(&self, off: i32, long: bool) -> String;
    fn may_goto(&self, off: i16) -> String;
    fn jcond(&self, wide: bool, cond: JmpCond, dst: u8, src: Operand, off: i16) -> String;
    fn call_helper(&self, id: i32) -> String;
    fn call_local(&self, rel: i32) -> String;
    fn call_kfunc(&self, btf_id: i32, off: i16) -> String;
    fn callx(&self, reg: u8) -> String;
    fn exit(&self) -> String {
        "exit".to_string()
    }
    /// `lddw` of a plain 64-bit value or of a pseudo source (`pseudo` is
    /// the src field: `PSEUDO_MAP_FD`, ...).
    fn lddw(&self, dst: u8, pseudo: u8, imm: i32, next_imm: i32) -> String;
    fn ld_abs(&self, size: Size, imm: i32) -> String;
    fn ld_ind(&self, size: Size, src: u8, imm: i32) -> String;
    fn ldx(&self, size: Size, sign_extend: bool, dst: u8, src: u8, off: i16) -> String;
    fn st(&self, size: Size, dst: u8, off: i16, imm: i32) -> String;
    fn stx(&self, size: Size, dst: u8, src: u8, off: i16) -> String;
    /// Atomic operation; `name` is `add`, `or`, `and`, `xor`, `xchg` or
    /// `cmpxchg` (the last two always fetch, whatever `fetch` says).
    #[allow(clippy::too_many_arguments)]
    fn atomic(
        &self,
        size: Size,
        op: AtomicOp,
        name: &str,
        fetch: bool,
        dst: u8,
        src: u8,
        off: i16,
    ) -> String;
}

/// Print `kind` in `syntax`. `ja32`: the slot is encoded as the 32-bit-offset
/// jump (`BPF_JMP32 | BPF_JA`); an offset that does not fit 16 bits is
/// printed in the long form either way.
pub(crate) fn render(kind: &Kind, ja32: bool, syntax: &impl Syntax) -> String {
    match *kind {
        Kind::Alu { wide, op, dst, src } => syntax.alu(wide, op, dst, src),
        Kind::Endian { op, bits, dst } => {
            let name = match op {
                EndianOp::Le => "le",
                EndianOp::Be => "be",
                EndianOp::Swap => "bswap",
            };
            syntax.endian(name, bits, dst)
        }
        Kind::Ja { off } => syntax.ja(off, ja32 || i16::try_from(off).is_err()),
        Kind::MayGoto { off } => syntax.may_goto(off),
        Kind::Jcond {
            wide,
            cond,
            dst,
            src,
            off,
        } => syntax.jcond(wide, cond, dst, src, off),
        Kind::CallHelper { id } => syntax.call_helper(id),
        Kind::CallLocal { rel } => syntax.call_local(rel),
        Kind::CallKfunc { btf_id, off } => syntax.call_kfunc(btf_id, off),
        Kind::Callx { reg } => syntax.callx(reg),
        Kind::Exit => syntax.exit(),
        Kind::Lddw {
            dst,
            pseudo,
            imm,
            next_imm,
        } => syntax.lddw(dst, pseudo, imm, next_imm),
        Kind::LdAbs { size, imm } => syntax.ld_abs(size, imm),
        Kind::LdInd { size, src, imm } => syntax.ld_ind(size, src, imm),
        Kind::Ldx {
            size,
            sign_extend,
            dst,
            src,
            off,
        } => syntax.ldx(size, sign_extend, dst, src, off),
        Kind::St {
            size,
            dst,
            off,
            imm,
        } => syntax.st(size, dst, off, imm),
        Kind::Stx {
            size,
            dst,
            src,
            off,
        } => syntax.stx(size, dst, src, off),
        Kind::Atomic {
            size,
            op,
            fetch,
            dst,
            src,
            off,
        } => {
            let name = match op {
                AtomicOp::Add => "add",
                AtomicOp::Or => "or",
                AtomicOp::And => "and",
                AtomicOp::Xor => "xor",
                AtomicOp::Xchg => "xchg",
                AtomicOp::Cmpxchg => "cmpxchg",
            };
            syntax.atomic(size, op, name, fetch, dst, src, off)
        }
    }
}

/// Classify one slot (`next` is the following slot, needed by `lddw`) and
/// print it in `syntax`, long or short `ja` as encoded.
pub(crate) fn format_insn_in(
    insn: Insn,
    next: Option<Insn>,
    syntax: &impl Syntax,
) -> Result<String, Problem> {
    let kind = classify(insn, next)?;
    Ok(render(&kind, insn.code == OP_JA32, syntax))
}

/// Print every instruction of `insns` (second halves of `lddw` get no line):
/// `syntax_at(pc)` is the syntax for the instruction at `pc`, `line` writes
/// one line from the index, the slot and the printed text. Every slot is
/// validated on its own (jump targets are not checked, so fragments print).
pub(crate) fn listing<S: Syntax>(
    insns: &[Insn],
    syntax_at: impl Fn(usize) -> S,
    mut line: impl FnMut(&mut String, usize, Insn, &str),
) -> Result<String, DecodeError> {
    let mut out = String::new();
    let mut pc = 0;
    while pc < insns.len() {
        let insn = insns[pc];
        let kind = classify(insn, insns.get(pc + 1).copied())
            .map_err(|problem| DecodeError::Insn { index: pc, problem })?;
        let text = render(&kind, insn.code == OP_JA32, &syntax_at(pc));
        line(&mut out, pc, insn, &text);
        pc += if matches!(kind, Kind::Lddw { .. }) {
            2
        } else {
            1
        };
    }
    Ok(out)
}
