//! Differential property test: random programs (straight-line and looping
//! ALU/JMP code, stack loads/stores/atomics, helper calls, bpf-to-bpf calls
//! including recursion) run on the checked interpreter and the checked JIT with a
//! small instruction budget must give the same r0 or the same error (same
//! message, so the same instruction index), and leave the same input memory.

mod jit_common;
use jit_common::*;

use cordon_exec::ExecOptions;
use cordon_exec::conformance::conformance_helpers;
use cordon_isa::opcode::*;
use cordon_isa::{Insn, Program};
use proptest::prelude::*;

/// Raw material of one instruction: (selector, a, b, imm, off).
type Raw = (u8, u8, u8, i32, u16);

/// An instruction whose jump target is an abstract instruction number.
enum Abs {
    One(Insn),
    Lddw(u8, u64),
    Jump(Insn, usize),
    Call(usize),
}

fn special_imm(imm: i32, sel: u16) -> i32 {
    match sel % 8 {
        0 => 0,
        1 => -1,
        2 => i32::MIN,
        3 => 1,
        4 => imm % 70,
        _ => imm,
    }
}

const ALU_OPS: [(u8, i16); 16] = [
    (ALU_ADD, 0),
    (ALU_SUB, 0),
    (ALU_MUL, 0),
    (ALU_DIV, 0),
    (ALU_DIV, 1),
    (ALU_OR, 0),
    (ALU_AND, 0),
    (ALU_LSH, 0),
    (ALU_RSH, 0),
    (ALU_NEG, 0),
    (ALU_MOD, 0),
    (ALU_MOD, 1),
    (ALU_XOR, 0),
    (ALU_MOV, 0),
    (ALU_ARSH, 0),
    (ALU_MOV, 8), // movsx (offset chosen below)
];

const JMP_OPS: [u8; 11] = [
    JMP_JEQ, JMP_JGT, JMP_JGE, JMP_JSET, JMP_JNE, JMP_JSGT, JMP_JSGE, JMP_JLT, JMP_JLE, JMP_JSLT,
    JMP_JSLE,
];

const ATOMIC_OPS: [i32; 10] = [
    ATOMIC_ADD,
    ATOMIC_OR,
    ATOMIC_AND,
    ATOMIC_XOR,
    ATOMIC_ADD | ATOMIC_FETCH,
    ATOMIC_OR | ATOMIC_FETCH,
    ATOMIC_AND | ATOMIC_FETCH,
    ATOMIC_XOR | ATOMIC_FETCH,
    ATOMIC_XCHG,
    ATOMIC_CMPXCHG,
];

/// Map one raw tuple at abstract position `i` of a function spanning abstract
/// instructions `[lo, hi)` (whose last one is its `exit`).
fn make(raw: Raw, i: usize, lo: usize, hi: usize, callee: Option<usize>) -> Abs {
    let (sel, a, b, imm, off) = raw;
    let dst = b % 10;
    match sel % 16 {
        0..=6 => {
            let wide = a & 1 == 1;
            let (op, mut o) = ALU_OPS[(a as usize >> 1) % ALU_OPS.len()];
            let cls = if wide { CLS_ALU64 } else { CLS_ALU };
            let use_reg = a & 0x80 != 0;
            if op == ALU_MOV && o == 8 {
                // movsx: register source only; 32 only for ALU64.
                o = [8, 16, 32][off as usize % if wide { 3 } else { 2 }];
                let src = (b >> 4) % 11;
                return Abs::One(Insn::new(cls | SRC_X | op, dst, src, o, 0));
            }
            if op == ALU_NEG {
                return Abs::One(Insn::new(cls | op, dst, 0, 0, 0));
            }
            if use_reg {
                let src = (b >> 4) % 11;
                Abs::One(Insn::new(cls | SRC_X | op, dst, src, o, 0))
            } else {
                Abs::One(Insn::new(cls | op, dst, 0, o, special_imm(imm, off)))
            }
        }
        7 => {
            let bits = [16, 32, 64][b as usize % 3];
            let code = match a % 3 {
                0 => CLS_ALU | ALU_END,
                1 => CLS_ALU | SRC_X | ALU_END,
                _ => CLS_ALU64 | ALU_END,
            };
            Abs::One(Insn::new(code, dst, 0, 0, bits))
        }
        8..=11 => {
            // Targets within the function; backward jumps make loops.
            let span = hi - lo;
            let target = if a & 0x40 != 0 {
                lo + off as usize % (i - lo + 1)
            } else {
                i + 1 + off as usize % (hi - i - 1).max(1)
            };
            let target = target.min(lo + span - 1);
            if sel % 16 == 11 {
                return Abs::Jump(Insn::new(CLS_JMP | JMP_JA, 0, 0, 0, 0), target);
            }
            let cls = if a & 1 == 1 { CLS_JMP } else { CLS_JMP32 };
            let op = JMP_OPS[(a as usize >> 1) % JMP_OPS.len()];
            if a & 0x80 != 0 {
                Abs::Jump(
                    Insn::new(cls | SRC_X | op, dst, (b >> 4) % 11, 0, 0),
                    target,
                )
            } else {
                Abs::Jump(
                    Insn::new(cls | op, dst, 0, 0, special_imm(imm, off)),
                    target,
                )
            }
        }
        12 => {
            // Load or store, mostly on the stack, sometimes misaligned or out of
            // the frame, sometimes through r1 (the input) or another register.
            let size = [SIZE_B, SIZE_H, SIZE_W, SIZE_DW][a as usize % 4];
            let base = match b >> 6 {
                0 | 1 => 10,
                2 => 1,
                _ => (b >> 4) % 11,
            };
            let o = if base == 10 {
                -((off % 530) as i16)
            } else {
                (off % 24) as i16 - 4
            };
            match (a >> 2) % 4 {
                0 => Abs::One(Insn::new(CLS_LDX | MODE_MEM | size, dst, base, o, 0)),
                1 if size != SIZE_DW => {
                    Abs::One(Insn::new(CLS_LDX | MODE_MEMSX | size, dst, base, o, 0))
                }
                2 => Abs::One(Insn::new(CLS_ST | MODE_MEM | size, base, 0, o, imm)),
                _ => Abs::One(Insn::new(CLS_STX | MODE_MEM | size, base, dst, o, 0)),
            }
        }
        13 => {
            let size = if a & 1 == 1 { SIZE_DW } else { SIZE_W };
            let op = ATOMIC_OPS[(a as usize >> 1) % ATOMIC_OPS.len()];
            let o = -((off % 66) as i16) * 8 + if b & 0x80 != 0 { 4 } else { 0 };
            let base = if b & 0x40 != 0 { 1 } else { 10 };
            let src = (b >> 4) % 10;
            Abs::One(Insn::new(CLS_STX | MODE_ATOMIC | size, base, src, o, op))
        }
        14 => Abs::Lddw(dst, (imm as u64) << (off % 40) ^ a as u64),
        _ => match callee {
            Some(c) if a & 1 == 1 => Abs::Call(c),
            _ => Abs::One(Insn::new(OP_CALL, 0, 0, 0, 5)), // the unwind helper
        },
    }
}

/// Build main (`main` raws + exit) and optionally a callee (`sub` raws + exit).
fn build(main: &[Raw], sub: &[Raw]) -> Program {
    let n = main.len() + 1;
    let callee = (!sub.is_empty()).then_some(n);
    let m = sub.len() + 1;
    let mut abs: Vec<Abs> = Vec::new();
    for (i, &r) in main.iter().enumerate() {
        abs.push(make(r, i, 0, n, callee));
    }
    abs.push(Abs::One(Insn::new(OP_EXIT, 0, 0, 0, 0)));
    for (j, &r) in sub.iter().enumerate() {
        abs.push(make(r, n + j, n, n + m, callee));
    }
    if !sub.is_empty() {
        abs.push(Abs::One(Insn::new(OP_EXIT, 0, 0, 0, 0)));
    }
    // Lay out: abstract index -> slot.
    let mut slot = Vec::with_capacity(abs.len());
    let mut s = 0usize;
    for a in &abs {
        slot.push(s);
        s += if matches!(a, Abs::Lddw(..)) { 2 } else { 1 };
    }
    let mut insns = Vec::with_capacity(s);
    for (i, a) in abs.iter().enumerate() {
        let here = slot[i] as i64;
        match *a {
            Abs::One(x) => insns.push(x),
            Abs::Lddw(dst, v) => {
                insns.push(Insn::new(OP_LDDW, dst, 0, 0, v as u32 as i32));
                insns.push(Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32));
            }
            Abs::Jump(mut x, t) => {
                let rel = slot[t] as i64 - here - 1;
                x.off = rel as i16;
                insns.push(x);
            }
            Abs::Call(t) => {
                let rel = slot[t] as i64 - here - 1;
                insns.push(Insn::new(OP_CALL, 0, CALL_LOCAL, 0, rel as i32));
            }
        }
    }
    Program::new(insns).expect("generated programs are valid")
}

fn compare(prog: &Program, mem: &[u8], budget: u64) -> Result<(), TestCaseError> {
    let has_local_calls = prog
        .kinds()
        .iter()
        .any(|k| matches!(k, Some(cordon_isa::Kind::CallLocal { .. })));
    let helpers = conformance_helpers();
    let opts = ExecOptions {
        instruction_budget: budget,
        ..ExecOptions::named("prop")
    };
    let i = interp_checked(prog, &helpers, mem, opts.clone());
    let j = jit_checked(prog, &helpers, mem, opts.clone());
    prop_assert_eq!(
        &i,
        &j,
        "program:\n{}",
        cordon_isa::disassemble(prog.insns()).unwrap_or_default()
    );
    // Trusted mode is only defined for programs a verifier would accept; for
    // random programs compare it only without bpf-to-bpf calls (a trusted
    // callee returns r0 alone, where the interpreter's register file also hands
    // back r1-r5, which verified callers never read).
    if i.0.is_ok() && !has_local_calls {
        // SAFETY: the checked run of this very input succeeded.
        let (ti, tj) = unsafe { trusted_both(prog, &helpers, mem, opts) };
        prop_assert_eq!(&ti, &i);
        prop_assert_eq!(&tj, &i);
    }
    Ok(())
}

fn raw() -> impl Strategy<Value = Raw> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any::<i32>(),
        any::<u16>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// Straight-line and looping ALU/JMP code only.
    #[test]
    fn alu_jmp_programs(
        main in prop::collection::vec(
            (0u8..12, any::<u8>(), any::<u8>(), any::<i32>(), any::<u16>()), 1..40),
        mem in prop::collection::vec(any::<u8>(), 0..16),
        budget in 1u64..400,
    ) {
        let prog = build(&main, &[]);
        compare(&prog, &mem, budget)?;
    }

    /// Everything: memory, atomics, lddw, helper and local calls.
    #[test]
    fn mixed_programs(
        main in prop::collection::vec(raw(), 1..40),
        sub in prop::collection::vec(raw(), 0..12),
        mem in prop::collection::vec(any::<u8>(), 0..32),
        budget in 1u64..400,
    ) {
        let prog = build(&main, &sub);
        compare(&prog, &mem, budget)?;
    }
}
