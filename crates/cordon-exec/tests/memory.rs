//! Loads, stores, atomics, legacy packet loads and checked-mode memory safety.

mod common;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use cordon_exec::{Access, ExecError, ExecOptions, HelperRegistry, LoadError, Region};
use cordon_isa::Insn;
use cordon_isa::opcode::*;

const MEM: [u8; 16] = [
    0x01, 0x82, 0x03, 0x84, 0x05, 0x86, 0x07, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x10,
];

#[test]
fn loads_of_every_size_from_input() {
    assert_eq!(run_both(&prog![ldx(1, 0, 1, 1), exit()], &MEM), 0x82);
    assert_eq!(run_both(&prog![ldx(2, 0, 1, 1), exit()], &MEM), 0x0382);
    assert_eq!(run_both(&prog![ldx(4, 0, 1, 4), exit()], &MEM), 0x8807_8605);
    assert_eq!(
        run_both(&prog![ldx(8, 0, 1, 8), exit()], &MEM),
        0x10ff_eedd_ccbb_aa99
    );
}

#[test]
fn sign_extending_loads() {
    assert_eq!(
        run_both(&prog![ldxs(1, 0, 1, 1), exit()], &MEM),
        0xffff_ffff_ffff_ff82
    );
    assert_eq!(run_both(&prog![ldxs(1, 0, 1, 0), exit()], &MEM), 1);
    assert_eq!(
        run_both(&prog![ldxs(2, 0, 1, 2), exit()], &MEM),
        0xffff_ffff_ffff_8403
    );
    assert_eq!(
        run_both(&prog![ldxs(4, 0, 1, 4), exit()], &MEM),
        0xffff_ffff_8807_8605
    );
    assert_eq!(
        run_both(&prog![ldxs(4, 0, 1, 0), exit()], &MEM),
        0xffff_ffff_8403_8201
    );
}

#[test]
fn stores_of_every_size() {
    // st imm and stx reg to the input, read back as one u64.
    for (bytes, v) in [(1u32, 0xabu64), (2, 0xabcd), (4, 0x89ab_cdef)] {
        let mask = if bytes == 8 {
            u64::MAX
        } else {
            (1u64 << (bytes * 8)) - 1
        };
        let p = prog![st(bytes, 1, 0, v as i32), ldx(8, 0, 1, 0), exit()];
        let expect = (u64::from_le_bytes(MEM[..8].try_into().unwrap()) & !mask) | v;
        assert_eq!(run_both(&p, &MEM), expect, "st{bytes}");
        let p = prog![lddw(2, v), stx(bytes, 1, 2, 0), ldx(8, 0, 1, 0), exit()];
        assert_eq!(run_both(&p, &MEM), expect, "stx{bytes}");
    }
    // stdw imm is sign-extended.
    let p = prog![st(8, 10, -8, -2), ldx(8, 0, 10, -8), exit()];
    assert_eq!(run_both(&p, &[]), (-2i64) as u64);
    let p = prog![
        lddw(2, 0x1122_3344_5566_7788),
        stx(8, 10, 2, -16),
        ldx(8, 0, 10, -16),
        exit()
    ];
    assert_eq!(run_both(&p, &[]), 0x1122_3344_5566_7788);
}

#[test]
fn stack_starts_zeroed_in_checked_mode() {
    let p = prog![ldx(8, 0, 10, -8), exit()];
    assert_eq!(run_checked(&p, &mut []).unwrap(), 0);
}

fn expect_access(
    r: Result<u64, ExecError>,
    index: usize,
    access: Access,
    addr: Option<u64>,
    size: u32,
) {
    match r {
        Err(ExecError::MemoryAccess {
            index: i,
            access: a,
            addr: ad,
            size: s,
        }) => {
            assert_eq!((i, a, s), (index, access, size));
            if let Some(addr) = addr {
                assert_eq!(ad, addr);
            }
        }
        other => panic!("expected a memory access error, got {other:?}"),
    }
}

#[test]
fn checked_mode_rejects_out_of_bounds_accesses() {
    let mut mem = MEM;
    let base = mem.as_ptr() as u64;
    // One byte past the input.
    expect_access(
        run_checked(&prog![ldx(1, 0, 1, 16), exit()], &mut mem),
        0,
        Access::Load,
        Some(base + 16),
        1,
    );
    // Straddling the end.
    expect_access(
        run_checked(&prog![ldx(8, 0, 1, 9), exit()], &mut mem),
        0,
        Access::Load,
        Some(base + 9),
        8,
    );
    // Before the start.
    expect_access(
        run_checked(&prog![stx(4, 1, 1, -1), exit()], &mut mem),
        0,
        Access::Store,
        Some(base - 1),
        4,
    );
    // Null and wild pointers, huge addresses (wrapping).
    expect_access(
        run_checked(&prog![mov64(2, 0), ldx(8, 0, 2, 0), exit()], &mut mem),
        1,
        Access::Load,
        Some(0),
        8,
    );
    expect_access(
        run_checked(&prog![mov64(2, -1), ldx(8, 0, 2, 0), exit()], &mut mem),
        1,
        Access::Load,
        Some(u64::MAX),
        8,
    );
    // Stack: at r10 (above the frame), below the 512-byte frame.
    expect_access(
        run_checked(&prog![st(1, 10, 0, 1), exit()], &mut mem),
        0,
        Access::Store,
        None,
        1,
    );
    expect_access(
        run_checked(&prog![ldx(8, 0, 10, -520), exit()], &mut mem),
        0,
        Access::Load,
        None,
        8,
    );
    expect_access(
        run_checked(&prog![ldx(8, 0, 10, -4), exit()], &mut mem),
        0,
        Access::Load,
        None,
        8,
    );
    // Atomics too.
    expect_access(
        run_checked(
            &prog![mov64(2, 1), atomic(8, ATOMIC_ADD, 10, 2, 0), exit()],
            &mut mem,
        ),
        1,
        Access::Atomic,
        None,
        8,
    );
    // Nothing was written.
    assert_eq!(mem, MEM);
    // Exactly the frame is fine.
    assert_eq!(
        run_checked(
            &prog![st(8, 10, -512, 5), ldx(8, 0, 10, -512), exit()],
            &mut mem
        )
        .unwrap(),
        5
    );
    // The error message names index, address and size.
    let e = run_checked(
        &prog![mov64(0, 0), mov64(2, 0x1000), ldx(4, 0, 2, 8), exit()],
        &mut mem,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "instruction 2: load of 4 bytes at 0x1008 is outside every region this invocation may access"
    );
}

#[test]
fn extra_regions_are_accessible_read_only_or_writable() {
    let p = prog![
        ldx(8, 0, 3, 0),
        alu64_imm(ALU_ADD, 0, 1),
        stx(8, 4, 0, 0),
        exit()
    ];
    let exe = checked(&p, &HelperRegistry::new(), ExecOptions::default()).unwrap();
    let ro = 41u64.to_le_bytes();
    let mut rw = [0u8; 8];
    let args = [0, 0, ro.as_ptr() as u64, rw.as_mut_ptr() as u64, 0];
    let r = exe.run_with(
        args,
        &mut [],
        &[Region::readonly(&ro), Region::writable(&mut rw)],
    );
    assert_eq!(r.unwrap(), 42);
    assert_eq!(u64::from_le_bytes(rw), 42);
    // Storing into the read-only region is rejected.
    let mut ro2 = [0u8; 8];
    let args = [0, 0, ro.as_ptr() as u64, ro2.as_mut_ptr() as u64, 0];
    let r = exe.run_with(
        args,
        &mut [],
        &[Region::readonly(&ro), Region::readonly(&ro2)],
    );
    expect_access(r, 2, Access::Store, Some(ro2.as_ptr() as u64), 8);
}

/// r2 = initial; *(size *)(r10 - 8) = r2 (after zeroing); r1 = operand; <atomic>; r0 = mem (+ fetched value in r1 checked)
fn atomic_case(bytes: u32, op: i32, initial: u64, operand: u64, r0_in: u64) -> (u64, u64, u64) {
    let p = prog![
        st(8, 10, -8, 0),
        lddw(2, initial),
        stx(bytes, 10, 2, -8),
        lddw(1, operand),
        lddw(0, r0_in),
        atomic(bytes, op, 10, 1, -8),
        // Return memory in r0, r1 (fetched/operand) and r0 (cmpxchg) via stack.
        stx(8, 10, 0, -16),
        stx(8, 10, 1, -24),
        ldx(8, 0, 10, -8),
        exit()
    ];
    let mem_val = run_both(&p, &[]);
    // Re-run to get r0/r1 after the atomic.
    let p2 = {
        let mut q = p.clone();
        let n = q.len();
        q[n - 2] = ldx(8, 0, 10, -16);
        q
    };
    let r0 = run_both(&p2, &[]);
    let p3 = {
        let mut q = p.clone();
        let n = q.len();
        q[n - 2] = ldx(8, 0, 10, -24);
        q
    };
    let r1 = run_both(&p3, &[]);
    (mem_val, r0, r1)
}

#[test]
fn atomics_64() {
    use cordon_isa::opcode::ATOMIC_FETCH as F;
    assert_eq!(atomic_case(8, ATOMIC_ADD, 5, 3, 0), (8, 0, 3));
    assert_eq!(atomic_case(8, ATOMIC_ADD | F, 5, 3, 0), (8, 0, 5));
    assert_eq!(
        atomic_case(8, ATOMIC_OR, 0b1010, 0b0101, 0),
        (0b1111, 0, 0b0101)
    );
    assert_eq!(
        atomic_case(8, ATOMIC_OR | F, 0b1010, 0b0101, 0),
        (0b1111, 0, 0b1010)
    );
    assert_eq!(
        atomic_case(8, ATOMIC_AND, 0b1110, 0b0111, 0),
        (0b0110, 0, 0b0111)
    );
    assert_eq!(
        atomic_case(8, ATOMIC_AND | F, 0b1110, 0b0111, 0),
        (0b0110, 0, 0b1110)
    );
    assert_eq!(
        atomic_case(8, ATOMIC_XOR, 0b1110, 0b0111, 0),
        (0b1001, 0, 0b0111)
    );
    assert_eq!(
        atomic_case(8, ATOMIC_XOR | F, 0b1110, 0b0111, 0),
        (0b1001, 0, 0b1110)
    );
    assert_eq!(atomic_case(8, ATOMIC_XCHG, 1 << 40, 7, 0), (7, 0, 1 << 40));
    // cmpxchg: success (r0 == mem) stores r1; r0 gets the old value either way.
    assert_eq!(
        atomic_case(8, ATOMIC_CMPXCHG, 1 << 40, 9, 1 << 40),
        (9, 1 << 40, 9)
    );
    assert_eq!(
        atomic_case(8, ATOMIC_CMPXCHG, 1 << 40, 9, 3),
        (1 << 40, 1 << 40, 9)
    );
}

#[test]
fn atomics_32_zero_extend_fetched_values() {
    use cordon_isa::opcode::ATOMIC_FETCH as F;
    let hi = 0xffff_ffff_0000_0000u64;
    // Only the low word of memory changes; the stack slot's upper word stays 0.
    assert_eq!(atomic_case(4, ATOMIC_ADD, 0xffff_ffff, 2, 0), (1, 0, 2));
    assert_eq!(
        atomic_case(4, ATOMIC_ADD | F, 0xffff_ffff, hi | 2, 0),
        (1, 0, 0xffff_ffff)
    );
    assert_eq!(
        atomic_case(4, ATOMIC_OR | F, 0x8000_0000, 1, 0),
        (0x8000_0001, 0, 0x8000_0000)
    );
    assert_eq!(
        atomic_case(4, ATOMIC_AND | F, 0xf0f0, 0xff, 0),
        (0xf0, 0, 0xf0f0)
    );
    assert_eq!(
        atomic_case(4, ATOMIC_XOR | F, 0xff, 0x0f, 0),
        (0xf0, 0, 0xff)
    );
    assert_eq!(atomic_case(4, ATOMIC_AND, 0xf0f0, 0xff, 0), (0xf0, 0, 0xff));
    assert_eq!(atomic_case(4, ATOMIC_OR, 0xf0, 0x0f, 0), (0xff, 0, 0x0f));
    assert_eq!(atomic_case(4, ATOMIC_XOR, 0xff, 0x0f, 0), (0xf0, 0, 0x0f));
    assert_eq!(
        atomic_case(4, ATOMIC_XCHG, 0x8000_0000, hi | 7, 0),
        (7, 0, 0x8000_0000)
    );
    // cmpxchg32 compares the low half of r0 and zero-extends the old value into r0.
    assert_eq!(
        atomic_case(4, ATOMIC_CMPXCHG, 0x8000_0000, 9, hi | 0x8000_0000),
        (9, 0x8000_0000, 9)
    );
    assert_eq!(
        atomic_case(4, ATOMIC_CMPXCHG, 0x8000_0000, 9, 1),
        (0x8000_0000, 0x8000_0000, 9)
    );
}

#[test]
fn misaligned_atomics_are_rejected() {
    let p = prog![mov64(2, 1), atomic(8, ATOMIC_ADD, 10, 2, -12), exit()];
    for exe in [
        checked(&p, &HelperRegistry::new(), ExecOptions::default()).unwrap(),
        trusted(&p, &HelperRegistry::new(), ExecOptions::default()).unwrap(),
    ] {
        match exe.run(&mut []) {
            Err(ExecError::MisalignedAtomic {
                index: 1, size: 8, ..
            }) => {}
            other => panic!("expected MisalignedAtomic, got {other:?}"),
        }
    }
}

#[test]
fn atomics_are_atomic_across_threads() {
    // Each run adds 1 to a shared counter 20_000 times (add, fetch-add, and a
    // cmpxchg loop alternately); 4 threads share one executable per mode.
    let counter = Arc::new(AtomicU64::new(0));
    let p: Vec<Insn> = prog![
        mov64(6, 0),
        // loop:
        mov64(2, 1),
        atomic(8, ATOMIC_ADD, 1, 2, 0),
        atomic(8, ATOMIC_ADD | ATOMIC_FETCH, 1, 2, 0),
        // cmpxchg increment: r0 = *r1; r3 = r0 + 1; cmpxchg; retry if it failed
        ldx(8, 0, 1, 0),
        mov64r(3, 0),
        alu64_imm(ALU_ADD, 3, 1),
        mov64r(4, 0),
        atomic(8, ATOMIC_CMPXCHG, 1, 3, 0),
        jmp_reg(JMP_JNE, 0, 4, -6),
        alu64_imm(ALU_ADD, 6, 1),
        jmp_imm(JMP_JLT, 6, 20_000, -11),
        mov64(0, 0),
        exit()
    ];
    for mode_checked in [true, false] {
        counter.store(0, Ordering::SeqCst);
        let exe = Arc::new(if mode_checked {
            checked(&p, &HelperRegistry::new(), ExecOptions::default()).unwrap()
        } else {
            trusted(&p, &HelperRegistry::new(), ExecOptions::default()).unwrap()
        });
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let exe = exe.clone();
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let addr = counter.as_ptr() as u64;
                    // SAFETY: the counter outlives the run; all access is atomic.
                    let region = unsafe { Region::from_raw(addr, 8, true) };
                    exe.run_with([addr, 0, 0, 0, 0], &mut [], &[region])
                        .unwrap()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), 0);
        }
        assert_eq!(
            counter.load(Ordering::SeqCst),
            4 * 20_000 * 3,
            "checked={mode_checked}"
        );
    }
}

#[test]
fn legacy_packet_loads_are_big_endian() {
    let pkt = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc];
    assert_eq!(run_both(&prog![ld_abs(1, 1), exit()], &pkt), 0x34);
    assert_eq!(run_both(&prog![ld_abs(2, 1), exit()], &pkt), 0x3456);
    assert_eq!(run_both(&prog![ld_abs(4, 2), exit()], &pkt), 0x5678_9abc);
    assert_eq!(
        run_both(&prog![mov64(3, 2), ld_ind(2, 3, 2), exit()], &pkt),
        0x9abc
    );
    assert_eq!(
        run_both(&prog![mov64(3, 5), ld_ind(1, 3, -1), exit()], &pkt),
        0x9a
    );
}

#[test]
fn out_of_bounds_packet_loads_end_the_program_with_zero() {
    let pkt = [0x12, 0x34, 0x56, 0x78];
    assert_eq!(
        run_both(&prog![mov64(0, 7), ld_abs(4, 1), mov64(0, 9), exit()], &pkt),
        0
    );
    assert_eq!(run_both(&prog![mov64(0, 7), ld_abs(1, 4), exit()], &pkt), 0);
    assert_eq!(
        run_both(&prog![mov64(0, 7), ld_abs(1, -1), exit()], &pkt),
        0
    );
    assert_eq!(
        run_both(&prog![mov64(3, -8), ld_ind(2, 3, 4), exit()], &pkt),
        0
    );
    assert_eq!(
        run_both(&prog![lddw(3, 1 << 32), ld_ind(1, 3, 0), exit()], &pkt),
        0x12
    );
    assert_eq!(run_both(&prog![ld_abs(1, 0), exit()], &[]), 0);
}

#[test]
fn unresolved_lddw_pseudo_sources_are_rejected() {
    for pseudo in [
        PSEUDO_MAP_FD,
        PSEUDO_MAP_VALUE,
        PSEUDO_BTF_ID,
        PSEUDO_FUNC,
        PSEUDO_MAP_IDX,
        PSEUDO_MAP_IDX_VALUE,
    ] {
        let p = vec![
            mov64(0, 0),
            insn(OP_LDDW, 1, pseudo, 0, 3),
            insn(0, 0, 0, 0, 0),
            exit(),
        ];
        match checked(&p, &HelperRegistry::new(), ExecOptions::default()) {
            Err(LoadError::UnresolvedPseudo {
                index: 1,
                pseudo: p,
                ..
            }) => assert_eq!(p, pseudo),
            other => panic!("expected UnresolvedPseudo, got {other:?}"),
        }
    }
}
