//! Instruction constructors and runners shared by the interpreter tests.
//! (Raw `Insn`s only: these are encoders for single instructions, not an assembler.)
#![allow(dead_code)]

use cordon_exec::{ExecError, ExecOptions, Executable, HelperRegistry, LoadError};
use cordon_isa::opcode::*;
use cordon_isa::{Insn, Program};

pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}
pub fn alu64_imm(op: u8, dst: u8, imm: i32) -> Insn {
    insn(CLS_ALU64 | SRC_K | op, dst, 0, 0, imm)
}
pub fn alu64_reg(op: u8, dst: u8, src: u8) -> Insn {
    insn(CLS_ALU64 | SRC_X | op, dst, src, 0, 0)
}
pub fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
    insn(CLS_ALU | SRC_K | op, dst, 0, 0, imm)
}
pub fn alu32_reg(op: u8, dst: u8, src: u8) -> Insn {
    insn(CLS_ALU | SRC_X | op, dst, src, 0, 0)
}
/// Signed div/mod (offset 1).
pub fn salu(wide: bool, op: u8, dst: u8, src: Option<u8>, imm: i32) -> Insn {
    let cls = if wide { CLS_ALU64 } else { CLS_ALU };
    match src {
        Some(s) => insn(cls | SRC_X | op, dst, s, 1, 0),
        None => insn(cls | SRC_K | op, dst, 0, 1, imm),
    }
}
pub fn movsx(wide: bool, dst: u8, src: u8, bits: i16) -> Insn {
    let cls = if wide { CLS_ALU64 } else { CLS_ALU };
    insn(cls | SRC_X | ALU_MOV, dst, src, bits, 0)
}
pub fn mov64(dst: u8, imm: i32) -> Insn {
    alu64_imm(ALU_MOV, dst, imm)
}
pub fn mov64r(dst: u8, src: u8) -> Insn {
    alu64_reg(ALU_MOV, dst, src)
}
pub fn lddw(dst: u8, v: u64) -> [Insn; 2] {
    [
        insn(OP_LDDW, dst, 0, 0, v as u32 as i32),
        insn(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}
pub fn jmp_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    insn(CLS_JMP | SRC_K | op, dst, 0, off, imm)
}
pub fn jmp_reg(op: u8, dst: u8, src: u8, off: i16) -> Insn {
    insn(CLS_JMP | SRC_X | op, dst, src, off, 0)
}
pub fn jmp32_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
    insn(CLS_JMP32 | SRC_K | op, dst, 0, off, imm)
}
pub fn jmp32_reg(op: u8, dst: u8, src: u8, off: i16) -> Insn {
    insn(CLS_JMP32 | SRC_X | op, dst, src, off, 0)
}
pub fn ja(off: i16) -> Insn {
    insn(OP_JA, 0, 0, off, 0)
}
pub fn gotol(off: i32) -> Insn {
    insn(OP_JA32, 0, 0, 0, off)
}
pub fn call(id: i32) -> Insn {
    insn(OP_CALL, 0, CALL_HELPER, 0, id)
}
pub fn call_local(rel: i32) -> Insn {
    insn(OP_CALL, 0, CALL_LOCAL, 0, rel)
}
pub fn call_kfunc(btf_id: i32) -> Insn {
    insn(OP_CALL, 0, CALL_KFUNC, 0, btf_id)
}
pub fn callx(reg: u8) -> Insn {
    insn(OP_CALLX, reg, 0, 0, 0)
}
pub fn exit() -> Insn {
    insn(OP_EXIT, 0, 0, 0, 0)
}
pub fn size_bits(bytes: u32) -> u8 {
    match bytes {
        1 => SIZE_B,
        2 => SIZE_H,
        4 => SIZE_W,
        _ => SIZE_DW,
    }
}
pub fn ldx(bytes: u32, dst: u8, src: u8, off: i16) -> Insn {
    insn(CLS_LDX | MODE_MEM | size_bits(bytes), dst, src, off, 0)
}
pub fn ldxs(bytes: u32, dst: u8, src: u8, off: i16) -> Insn {
    insn(CLS_LDX | MODE_MEMSX | size_bits(bytes), dst, src, off, 0)
}
pub fn st(bytes: u32, dst: u8, off: i16, imm: i32) -> Insn {
    insn(CLS_ST | MODE_MEM | size_bits(bytes), dst, 0, off, imm)
}
pub fn stx(bytes: u32, dst: u8, src: u8, off: i16) -> Insn {
    insn(CLS_STX | MODE_MEM | size_bits(bytes), dst, src, off, 0)
}
pub fn atomic(bytes: u32, op: i32, dst: u8, src: u8, off: i16) -> Insn {
    insn(CLS_STX | MODE_ATOMIC | size_bits(bytes), dst, src, off, op)
}
pub fn ld_abs(bytes: u32, imm: i32) -> Insn {
    insn(CLS_LD | MODE_ABS | size_bits(bytes), 0, 0, 0, imm)
}
pub fn ld_ind(bytes: u32, src: u8, imm: i32) -> Insn {
    insn(CLS_LD | MODE_IND | size_bits(bytes), 0, src, 0, imm)
}

/// Flatten a list of instruction groups.
#[macro_export]
macro_rules! prog {
    ($($e:expr),* $(,)?) => {{
        let mut v: Vec<cordon_isa::Insn> = Vec::new();
        $( $crate::common::Push::push_into($e, &mut v); )*
        v
    }};
}

pub trait Push {
    fn push_into(self, v: &mut Vec<Insn>);
}
impl Push for Insn {
    fn push_into(self, v: &mut Vec<Insn>) {
        v.push(self)
    }
}
impl<const N: usize> Push for [Insn; N] {
    fn push_into(self, v: &mut Vec<Insn>) {
        v.extend(self)
    }
}
impl Push for Vec<Insn> {
    fn push_into(self, v: &mut Vec<Insn>) {
        v.extend(self)
    }
}

pub fn program(insns: &[Insn]) -> Program {
    Program::new(insns.to_vec()).expect("test program must be valid")
}

pub fn checked(
    insns: &[Insn],
    helpers: &HelperRegistry,
    opts: ExecOptions,
) -> Result<Executable, LoadError> {
    Executable::checked(&program(insns), helpers, opts)
}

pub fn trusted(
    insns: &[Insn],
    helpers: &HelperRegistry,
    opts: ExecOptions,
) -> Result<Executable, LoadError> {
    // SAFETY: test programs are written to be valid (in-bounds accesses only).
    unsafe { Executable::trusted(&program(insns), helpers, opts) }
}

pub fn run_checked(insns: &[Insn], mem: &mut [u8]) -> Result<u64, ExecError> {
    checked(insns, &HelperRegistry::new(), ExecOptions::default())
        .expect("load")
        .run(mem)
}

/// Run a well-behaved program in checked and trusted mode (on copies of `mem`)
/// and check that both agree; returns r0.
pub fn run_both(insns: &[Insn], mem: &[u8]) -> u64 {
    run_both_with(insns, mem, &HelperRegistry::new())
}

pub fn run_both_with(insns: &[Insn], mem: &[u8], helpers: &HelperRegistry) -> u64 {
    let mut m1 = mem.to_vec();
    let mut m2 = mem.to_vec();
    let c = checked(insns, helpers, ExecOptions::default())
        .expect("load")
        .run(&mut m1);
    let t = trusted(insns, helpers, ExecOptions::default())
        .expect("load")
        .run(&mut m2);
    let c = c.unwrap_or_else(|e| panic!("checked run failed: {e}"));
    let t = t.unwrap_or_else(|e| panic!("trusted run failed: {e}"));
    assert_eq!(c, t, "checked and trusted disagree");
    assert_eq!(m1, m2, "checked and trusted left different memory");
    c
}
