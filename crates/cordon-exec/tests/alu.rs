//! ALU, ALU64 and byte-order semantics (RFC 9669), in checked and trusted mode.

mod common;
use common::*;
use cordon_isa::Insn;
use cordon_isa::opcode::*;

/// r0 = a; r1 = b; <op>; exit
fn binop(a: u64, b: u64, op: Insn) -> u64 {
    run_both(&prog![lddw(0, a), lddw(1, b), op, exit()], &[])
}

const MIN64: u64 = i64::MIN as u64;
const NEG1: u64 = u64::MAX;

#[test]
fn alu64_arithmetic() {
    assert_eq!(binop(3, 4, alu64_reg(ALU_ADD, 0, 1)), 7);
    assert_eq!(binop(NEG1, 2, alu64_reg(ALU_ADD, 0, 1)), 1);
    assert_eq!(binop(3, 0, alu64_imm(ALU_ADD, 0, -4)), NEG1);
    assert_eq!(binop(3, 4, alu64_reg(ALU_SUB, 0, 1)), NEG1);
    assert_eq!(binop(10, 0, alu64_imm(ALU_SUB, 0, 3)), 7);
    assert_eq!(binop(1 << 40, 1 << 30, alu64_reg(ALU_MUL, 0, 1)), 0);
    assert_eq!(binop(MIN64, NEG1, alu64_reg(ALU_MUL, 0, 1)), MIN64);
    assert_eq!(binop(7, 0, alu64_imm(ALU_MUL, 0, -3)), (-21i64) as u64);
    assert_eq!(binop(100, 7, alu64_reg(ALU_DIV, 0, 1)), 14);
    assert_eq!(binop(100, 7, alu64_reg(ALU_MOD, 0, 1)), 2);
    assert_eq!(
        binop(0xabc, 0, insn(CLS_ALU64 | ALU_NEG, 0, 0, 0, 0)),
        0u64.wrapping_sub(0xabc)
    );
}

#[test]
fn division_by_zero_gives_zero() {
    assert_eq!(binop(42, 0, alu64_reg(ALU_DIV, 0, 1)), 0);
    assert_eq!(binop(42, 0, alu64_imm(ALU_DIV, 0, 0)), 0);
    assert_eq!(
        binop(u64::MAX, 0xffff_ffff_0000_0000, alu32_reg(ALU_DIV, 0, 1)),
        0
    );
    assert_eq!(binop(42, 0, alu32_imm(ALU_DIV, 0, 0)), 0);
    assert_eq!(binop(42, 0, salu(true, ALU_DIV, 0, Some(1), 0)), 0);
    assert_eq!(binop(42, 0, salu(true, ALU_DIV, 0, None, 0)), 0);
    assert_eq!(binop(42, 0, salu(false, ALU_DIV, 0, Some(1), 0)), 0);
    assert_eq!(binop(42, 0, salu(false, ALU_DIV, 0, None, 0)), 0);
}

#[test]
fn modulo_by_zero_leaves_dst() {
    let d = 0xdead_beef_0000_0005u64;
    assert_eq!(binop(d, 0, alu64_reg(ALU_MOD, 0, 1)), d);
    assert_eq!(binop(d, 0, alu64_imm(ALU_MOD, 0, 0)), d);
    assert_eq!(binop(d, 0, salu(true, ALU_MOD, 0, Some(1), 0)), d);
    assert_eq!(binop(d, 0, salu(true, ALU_MOD, 0, None, 0)), d);
    // 32-bit: upper half cleared.
    assert_eq!(binop(d, 0, alu32_reg(ALU_MOD, 0, 1)), 5);
    assert_eq!(binop(d, 0, alu32_imm(ALU_MOD, 0, 0)), 5);
    assert_eq!(
        binop(
            d,
            0xffff_ffff_0000_0000,
            salu(false, ALU_MOD, 0, Some(1), 0)
        ),
        5
    );
    assert_eq!(binop(d, 0, salu(false, ALU_MOD, 0, None, 0)), 5);
}

#[test]
fn signed_division_edges() {
    // INT_MIN / -1 = INT_MIN, INT_MIN % -1 = 0.
    assert_eq!(
        binop(MIN64, NEG1, salu(true, ALU_DIV, 0, Some(1), 0)),
        MIN64
    );
    assert_eq!(binop(MIN64, 0, salu(true, ALU_DIV, 0, None, -1)), MIN64);
    assert_eq!(binop(MIN64, NEG1, salu(true, ALU_MOD, 0, Some(1), 0)), 0);
    assert_eq!(binop(MIN64, 0, salu(true, ALU_MOD, 0, None, -1)), 0);
    assert_eq!(
        binop(0x8000_0000, NEG1, salu(false, ALU_DIV, 0, Some(1), 0)),
        0x8000_0000
    );
    assert_eq!(
        binop(0x8000_0000, 0, salu(false, ALU_DIV, 0, None, -1)),
        0x8000_0000
    );
    assert_eq!(
        binop(0x8000_0000, NEG1, salu(false, ALU_MOD, 0, Some(1), 0)),
        0
    );
    assert_eq!(binop(0x8000_0000, 0, salu(false, ALU_MOD, 0, None, -1)), 0);
    // Truncating division, remainder takes the dividend's sign.
    assert_eq!(
        binop((-7i64) as u64, 2, salu(true, ALU_DIV, 0, Some(1), 0)),
        (-3i64) as u64
    );
    assert_eq!(
        binop((-7i64) as u64, 2, salu(true, ALU_MOD, 0, Some(1), 0)),
        NEG1
    );
    assert_eq!(binop(7, 0, salu(true, ALU_MOD, 0, None, -2)), 1);
    assert_eq!(
        binop((-7i32) as u32 as u64, 0, salu(false, ALU_DIV, 0, None, 2)),
        (-3i32) as u32 as u64
    );
    assert_eq!(
        binop((-7i32) as u32 as u64, 0, salu(false, ALU_MOD, 0, None, -2)),
        (-1i32) as u32 as u64
    );
    // Unsigned division of a negative immediate (sign-extended to 64 bits).
    assert_eq!(binop(10, 0, alu64_imm(ALU_DIV, 0, -1)), 0);
    assert_eq!(binop(NEG1, 0, alu64_imm(ALU_DIV, 0, -1)), 1);
    // 32-bit unsigned division uses the immediate as u32 and the low half of dst.
    assert_eq!(binop(0x1_0000_0004, 0, alu32_imm(ALU_DIV, 0, 2)), 2);
    assert_eq!(binop(0xffff_fffe, 0, alu32_imm(ALU_DIV, 0, -1)), 0);
}

#[test]
fn shifts_are_masked() {
    assert_eq!(binop(1, 65, alu64_reg(ALU_LSH, 0, 1)), 2);
    assert_eq!(binop(1, 33, alu32_reg(ALU_LSH, 0, 1)), 2);
    assert_eq!(binop(0x11, 0, alu32_imm(ALU_LSH, 0, 60)), 0x1000_0000);
    assert_eq!(binop(0x11, 0, alu64_imm(ALU_LSH, 0, 64 + 4)), 0x110);
    assert_eq!(binop(0x80, 71, alu64_reg(ALU_RSH, 0, 1)), 1);
    assert_eq!(
        binop(0xffff_ffff_8000_0000, 36, alu32_reg(ALU_RSH, 0, 1)),
        0x0800_0000
    );
    assert_eq!(binop(MIN64, 0, alu64_imm(ALU_ARSH, 0, 63)), NEG1);
    assert_eq!(binop(MIN64, 127, alu64_reg(ALU_ARSH, 0, 1)), NEG1);
    assert_eq!(
        binop(0x8000_0000, 0, alu32_imm(ALU_ARSH, 0, 4)),
        0xf800_0000
    );
    assert_eq!(
        binop(0x8000_0000, 36, alu32_reg(ALU_ARSH, 0, 1)),
        0xf800_0000
    );
    assert_eq!(
        binop(0x8000_0000, 0, alu32_imm(ALU_ARSH, 0, -28)),
        0xf800_0000
    );
}

#[test]
fn alu32_zeroes_upper_half() {
    let hi = 0xffff_ffff_0000_0000u64;
    assert_eq!(binop(hi | 0xffff_ffff, 1, alu32_reg(ALU_ADD, 0, 1)), 0);
    assert_eq!(binop(hi | 1, 0, alu32_imm(ALU_SUB, 0, 2)), 0xffff_ffff);
    assert_eq!(binop(hi | 3, 5, alu32_reg(ALU_MUL, 0, 1)), 15);
    assert_eq!(binop(0x4000_0001, 4, alu32_reg(ALU_MUL, 0, 1)), 4);
    assert_eq!(binop(hi | 0xf0, 0x0f, alu32_reg(ALU_OR, 0, 1)), 0xff);
    assert_eq!(binop(hi | 0xff, 0, alu32_imm(ALU_AND, 0, 0x0f)), 0x0f);
    assert_eq!(binop(hi | 0xff, 0, alu32_imm(ALU_XOR, 0, -1)), 0xffff_ff00);
    assert_eq!(binop(hi, 0, alu32_imm(ALU_MOV, 0, -1)), 0xffff_ffff);
    assert_eq!(binop(0, NEG1, alu32_reg(ALU_MOV, 0, 1)), 0xffff_ffff);
    assert_eq!(
        binop(0x8000_0000, 0, insn(CLS_ALU | ALU_NEG, 0, 0, 0, 0)),
        0x8000_0000
    );
    assert_eq!(
        binop(hi | 1, 0, insn(CLS_ALU | ALU_NEG, 0, 0, 0, 0)),
        0xffff_ffff
    );
    assert_eq!(
        binop(MIN64, 0, insn(CLS_ALU64 | ALU_NEG, 0, 0, 0, 0)),
        MIN64
    );
}

#[test]
fn alu64_bitwise_and_moves() {
    assert_eq!(binop(0xf0, 0x0f, alu64_reg(ALU_OR, 0, 1)), 0xff);
    assert_eq!(binop(0xff, 0, alu64_imm(ALU_AND, 0, -16)), 0xf0);
    assert_eq!(binop(0xff, 0xf, alu64_reg(ALU_XOR, 0, 1)), 0xf0);
    assert_eq!(binop(0, 0, alu64_imm(ALU_MOV, 0, -1)), NEG1);
    assert_eq!(
        binop(0, 0x1234_5678_9abc, alu64_reg(ALU_MOV, 0, 1)),
        0x1234_5678_9abc
    );
}

#[test]
fn sign_extending_moves() {
    assert_eq!(binop(0, 0x180, movsx(true, 0, 1, 8)), 0xffff_ffff_ffff_ff80);
    assert_eq!(binop(0, 0x17f, movsx(true, 0, 1, 8)), 0x7f);
    assert_eq!(
        binop(0, 0x1_8000, movsx(true, 0, 1, 16)),
        0xffff_ffff_ffff_8000
    );
    assert_eq!(
        binop(0, 0x1_8000_0000, movsx(true, 0, 1, 32)),
        0xffff_ffff_8000_0000
    );
    assert_eq!(binop(NEG1, 0x180, movsx(false, 0, 1, 8)), 0xffff_ff80);
    assert_eq!(binop(NEG1, 0x7fff, movsx(false, 0, 1, 16)), 0x7fff);
    assert_eq!(binop(NEG1, 0x8000, movsx(false, 0, 1, 16)), 0xffff_8000);
}

#[test]
fn byte_order() {
    let v = 0x1122_3344_5566_7788u64;
    let end = |cls: u8, src: u8, bits: i32| insn(cls | src | ALU_END, 0, 0, 0, bits);
    assert_eq!(binop(v, 0, end(CLS_ALU, SRC_K, 16)), 0x7788);
    assert_eq!(binop(v, 0, end(CLS_ALU, SRC_K, 32)), 0x5566_7788);
    assert_eq!(binop(v, 0, end(CLS_ALU, SRC_K, 64)), v);
    assert_eq!(binop(v, 0, end(CLS_ALU, SRC_X, 16)), 0x8877);
    assert_eq!(binop(v, 0, end(CLS_ALU, SRC_X, 32)), 0x8877_6655);
    assert_eq!(binop(v, 0, end(CLS_ALU, SRC_X, 64)), 0x8877_6655_4433_2211);
    assert_eq!(binop(v, 0, end(CLS_ALU64, SRC_K, 16)), 0x8877);
    assert_eq!(binop(v, 0, end(CLS_ALU64, SRC_K, 32)), 0x8877_6655);
    assert_eq!(
        binop(v, 0, end(CLS_ALU64, SRC_K, 64)),
        0x8877_6655_4433_2211
    );
}

#[test]
fn lddw_loads_full_64_bits() {
    assert_eq!(
        run_both(&prog![lddw(0, 0x1122_3344_5566_7788), exit()], &[]),
        0x1122_3344_5566_7788
    );
    assert_eq!(
        run_both(&prog![lddw(0, 0x8000_0000), exit()], &[]),
        0x8000_0000
    );
}
