//! Jumps (JMP, JMP32, ja, gotol), bpf-to-bpf calls and frame handling.

mod common;
use common::*;
use cordon_exec::{ExecError, ExecOptions, HelperRegistry, MAX_CALL_FRAMES};
use cordon_isa::opcode::*;

/// r0 = 0; r1 = a; r2 = b; <jump +1>; exit; r0 = 1; exit  → 1 iff taken
fn taken(a: u64, b: u64, j: cordon_isa::Insn) -> bool {
    let r = run_both(
        &prog![
            mov64(0, 0),
            lddw(1, a),
            lddw(2, b),
            j,
            exit(),
            mov64(0, 1),
            exit()
        ],
        &[],
    );
    r == 1
}

#[test]
fn conditional_jumps_64() {
    let n = |v: i64| v as u64;
    let cases: &[(u8, u64, u64, bool)] = &[
        (JMP_JEQ, 5, 5, true),
        (JMP_JEQ, 5, 6, false),
        (JMP_JNE, 5, 6, true),
        (JMP_JGT, n(-1), 1, true),
        (JMP_JGT, 1, 1, false),
        (JMP_JGE, 1, 1, true),
        (JMP_JLT, 1, n(-1), true),
        (JMP_JLE, 2, 1, false),
        (JMP_JSET, 0b1010, 0b0100, false),
        (JMP_JSET, 0b1010, 0b0010, true),
        (JMP_JSGT, 1, n(-1), true),
        (JMP_JSGT, n(-1), 1, false),
        (JMP_JSGE, n(-1), n(-1), true),
        (JMP_JSLT, n(-2), n(-1), true),
        (JMP_JSLE, 0, n(-1), false),
    ];
    for &(op, a, b, want) in cases {
        assert_eq!(
            taken(a, b, jmp_reg(op, 1, 2, 1)),
            want,
            "reg op {op:#x} {a:#x} {b:#x}"
        );
        if let Ok(imm) = i32::try_from(b as i64) {
            assert_eq!(
                taken(a, b, jmp_imm(op, 1, imm, 1)),
                want,
                "imm op {op:#x} {a:#x} {b:#x}"
            );
        }
    }
}

#[test]
fn imm_is_sign_extended_for_64_bit_compares() {
    assert!(taken(u64::MAX, 0, jmp_imm(JMP_JEQ, 1, -1, 1)));
    assert!(!taken(0xffff_ffff, 0, jmp_imm(JMP_JEQ, 1, -1, 1)));
    assert!(taken(0xffff_ffff, 0, jmp32_imm(JMP_JEQ, 1, -1, 1)));
}

#[test]
fn jmp32_compares_low_halves() {
    let hi = 0x1234_5678_0000_0000u64;
    assert!(taken(hi | 1, 1, jmp32_reg(JMP_JEQ, 1, 2, 1)));
    assert!(!taken(hi | 1, 1, jmp_reg(JMP_JEQ, 1, 2, 1)));
    assert!(taken(hi | 1, 0, jmp32_imm(JMP_JEQ, 1, 1, 1)));
    assert!(taken(hi | 0x8000_0000, 0, jmp32_imm(JMP_JSLT, 1, 0, 1)));
    assert!(!taken(hi | 0x8000_0000, 0, jmp_imm(JMP_JSLT, 1, 0, 1)));
    assert!(taken(hi | 2, 1, jmp32_reg(JMP_JGT, 1, 2, 1)));
    assert!(taken(hi | 1, 1, jmp32_reg(JMP_JGE, 1, 2, 1)));
    assert!(taken(1, hi | 2, jmp32_reg(JMP_JLT, 1, 2, 1)));
    assert!(taken(2, hi | 2, jmp32_reg(JMP_JLE, 1, 2, 1)));
    assert!(taken(hi | 3, hi | 1, jmp32_reg(JMP_JSET, 1, 2, 1)));
    assert!(!taken(hi | 2, 1 << 32, jmp32_reg(JMP_JSET, 1, 2, 1)));
    assert!(taken(hi | 3, 1, jmp32_reg(JMP_JNE, 1, 2, 1)));
    assert!(taken(hi | 1, 0xffff_ffff, jmp32_reg(JMP_JSGT, 1, 2, 1)));
    assert!(taken(hi | 1, 1, jmp32_reg(JMP_JSGE, 1, 2, 1)));
    assert!(taken(hi | 0xffff_ffff, 0, jmp32_imm(JMP_JSLE, 1, -1, 1)));
}

#[test]
fn ja_and_gotol() {
    // ja +1 skips one instruction; gotol with a 32-bit offset, forwards and backwards.
    let p = prog![mov64(0, 1), ja(1), mov64(0, 2), exit()];
    assert_eq!(run_both(&p, &[]), 1);
    let p = prog![mov64(0, 1), gotol(1), mov64(0, 2), exit()];
    assert_eq!(run_both(&p, &[]), 1);
    // Loop: r0 counts to 10 with a backward gotol.
    let p = prog![
        mov64(0, 0),
        alu64_imm(ALU_ADD, 0, 1),
        jmp_imm(JMP_JGE, 0, 10, 1),
        gotol(-3),
        exit()
    ];
    assert_eq!(run_both(&p, &[]), 10);
}

#[test]
fn local_call_preserves_r6_to_r9_and_returns_r0() {
    let p = prog![
        mov64(1, 1),
        mov64(2, 2),
        mov64(3, 3),
        mov64(4, 4),
        mov64(5, 5),
        mov64(6, 6),
        mov64(7, 7),
        mov64(8, 8),
        mov64(9, 9),
        call_local(11), // -> func at index 9 + 1 + 11 = 21
        jmp_imm(JMP_JNE, 0, 15, 8),
        jmp_imm(JMP_JNE, 6, 6, 7),
        jmp_imm(JMP_JNE, 7, 7, 6),
        jmp_imm(JMP_JNE, 8, 8, 5),
        jmp_imm(JMP_JNE, 9, 9, 4),
        // r10 is restored too: the caller can still use its frame.
        st(8, 10, -8, 77),
        ldx(8, 0, 10, -8),
        exit(),
        mov64(0, 0),  // padding (never reached)
        mov64(0, -1), // failure
        exit(),
        // func: r0 = r1 + ... + r5, clobbers r6-r9
        mov64r(0, 1),
        alu64_reg(ALU_ADD, 0, 2),
        alu64_reg(ALU_ADD, 0, 3),
        alu64_reg(ALU_ADD, 0, 4),
        alu64_reg(ALU_ADD, 0, 5),
        mov64(6, 0),
        mov64(7, 0),
        mov64(8, 0),
        mov64(9, 0),
        exit(),
    ];
    assert_eq!(run_both(&p, &[]), 77);
}

#[test]
fn each_call_gets_a_fresh_frame_below_the_caller() {
    // main: r6 = r10; call f; r0 = r6 - r0 (= distance between the frames); exit
    // f: r0 = r10; write to its own frame; exit
    let p = prog![
        mov64r(6, 10),
        call_local(3),
        alu64_reg(ALU_SUB, 6, 0),
        mov64r(0, 6),
        exit(),
        mov64r(0, 10),
        st(8, 10, -512, 1),
        exit(),
    ];
    assert_eq!(run_both(&p, &[]), 512);
}

#[test]
fn callee_may_access_caller_frame_in_checked_mode() {
    // main: *(r10-8) = 41; r1 = r10 - 8; call f; r0 = *(r10-8); exit
    // f: *(u64 *)r1 += 1; exit
    let p = prog![
        st(8, 10, -8, 41),
        mov64r(1, 10),
        alu64_imm(ALU_ADD, 1, -8),
        call_local(2),
        ldx(8, 0, 10, -8),
        exit(),
        ldx(8, 2, 1, 0),
        alu64_imm(ALU_ADD, 2, 1),
        stx(8, 1, 2, 0),
        exit(),
    ];
    assert_eq!(run_both(&p, &[]), 42);
}

/// A program that recurses: f(n) = n == 0 ? 0 : f(n - 1) + 1, with n in r1.
fn recursive(n: i32) -> Vec<cordon_isa::Insn> {
    prog![
        mov64(1, n),
        call_local(1),
        exit(),
        // f:
        mov64(0, 0),
        jmp_imm(JMP_JEQ, 1, 0, 3),
        alu64_imm(ALU_SUB, 1, 1),
        call_local(-4),
        alu64_imm(ALU_ADD, 0, 1),
        exit(),
    ]
}

#[test]
fn eight_frames_allowed_ninth_is_a_clean_error() {
    // main + 7 nested calls = 8 frames.
    assert_eq!(run_both(&recursive(6), &[]), 6);
    let depth_ok = MAX_CALL_FRAMES as i32 - 2;
    assert_eq!(run_both(&recursive(depth_ok), &[]), depth_ok as u64);
    for exe in [
        checked(
            &recursive(7),
            &HelperRegistry::new(),
            ExecOptions::default(),
        )
        .unwrap(),
        trusted(
            &recursive(7),
            &HelperRegistry::new(),
            ExecOptions::default(),
        )
        .unwrap(),
    ] {
        match exe.run(&mut []) {
            Err(ExecError::CallDepth { index, max }) => {
                assert_eq!(index, 6);
                assert_eq!(max, 8);
            }
            other => panic!("expected CallDepth, got {other:?}"),
        }
    }
}

#[test]
fn subprogram_frame_sizes_are_honoured() {
    // f at index 5 gets a 64-byte frame: main's r10 - f's r10 == 512, and f's
    // r10 - 64 is the lowest valid byte in checked mode.
    let p = prog![
        mov64r(6, 10),
        call_local(3),
        alu64_reg(ALU_SUB, 6, 0),
        mov64r(0, 6),
        exit(),
        mov64r(0, 10),
        st(8, 10, -64, 1),
        exit(),
    ];
    let opts = ExecOptions {
        subprog_frames: vec![(5, 64)],
        ..ExecOptions::default()
    };
    let exe = checked(&p, &HelperRegistry::new(), opts.clone()).unwrap();
    assert_eq!(exe.run(&mut []).unwrap(), 512);
    // A store below the 64-byte frame is rejected.
    let mut bad = p.clone();
    bad[6] = st(8, 10, -72, 1);
    let exe = checked(&bad, &HelperRegistry::new(), opts).unwrap();
    match exe.run(&mut []) {
        Err(ExecError::MemoryAccess {
            index: 6, size: 8, ..
        }) => {}
        other => panic!("expected MemoryAccess, got {other:?}"),
    }
}

#[test]
fn budget_stops_runaway_loops() {
    let p = prog![mov64(0, 0), ja(-1)];
    let opts = ExecOptions {
        instruction_budget: 1000,
        ..ExecOptions::default()
    };
    let exe = checked(&p, &HelperRegistry::new(), opts).unwrap();
    match exe.run(&mut []) {
        Err(ExecError::BudgetExhausted {
            index: 1,
            budget: 1000,
        }) => {}
        other => panic!("expected BudgetExhausted, got {other:?}"),
    }
    // The process and the thread's shadow stack are fine afterwards.
    assert_eq!(run_both(&prog![mov64(0, 3), exit()], &[]), 3);
}

#[test]
fn running_past_the_end_is_an_error() {
    let p = prog![mov64(0, 1)];
    for exe in [
        checked(&p, &HelperRegistry::new(), ExecOptions::default()).unwrap(),
        trusted(&p, &HelperRegistry::new(), ExecOptions::default()).unwrap(),
    ] {
        match exe.run(&mut []) {
            Err(ExecError::FellOffEnd { index: 1 }) => {}
            other => panic!("expected FellOffEnd, got {other:?}"),
        }
    }
}
