//! Code-generation optimisations of the JIT, each checked against the
//! interpreter (checked and trusted) on inputs that would expose a wrong
//! transformation: stack slots held in registers (and the cases that must stay
//! in memory), 32-bit operations on values with high bits set, division and
//! shift edge cases.

mod jit_common;
use jit_common::*;

use cordon_exec::conformance::conformance_helpers;
use cordon_exec::jit::JitExecutable;
use cordon_exec::{ExecOptions, HelperRegistry};
use cordon_isa::{Program, assemble};

fn prog(src: &str) -> Program {
    Program::new(assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"))).unwrap()
}

fn run(src: &str, mem: &[u8]) -> Result<u64, String> {
    run_with(src, &conformance_helpers(), mem)
}

fn run_with(src: &str, h: &HelperRegistry, mem: &[u8]) -> Result<u64, String> {
    run_all_engines(&prog(src), h, mem).map_err(|e| format!("{e}\n{src}"))
}

fn trusted_code_size(src: &str) -> usize {
    // SAFETY: compiled only, never run.
    unsafe { JitExecutable::trusted(&prog(src), &conformance_helpers(), ExecOptions::named("t")) }
        .expect("compiles")
        .code_size()
}

/// Helper 1 takes a pointer to 8 bytes, multiplies the value there by 3 and
/// adds 1 (through memory, as a real helper would), and returns its argument 2.
fn pointer_helper() -> HelperRegistry {
    let mut h = conformance_helpers();
    h.register(1, "triple_plus_one", |_, a| {
        let p = a[0] as *mut u64;
        // SAFETY: the test programs pass a pointer to 8 bytes of their stack.
        unsafe { p.write_unaligned(p.read_unaligned().wrapping_mul(3).wrapping_add(1)) };
        Ok(a[1])
    });
    h
}

#[test]
fn spill_slots_in_registers_keep_their_values_across_a_loop() {
    // Matrix-style: eight words spilled once, reloaded on every iteration;
    // word, half and byte slots with sign-extending reloads.
    let src = "
        lddw %r1, 0xfedcba9887654321
        stxdw [%r10-8], %r1
        stxw [%r10-12], %r1
        stxh [%r10-14], %r1
        stxb [%r10-15], %r1
        stw [%r10-20], -5
        mov %r0, 0
        mov %r2, 0
    loop:
        ldxdw %r3, [%r10-8]
        add %r0, %r3
        ldxw %r3, [%r10-12]
        add %r0, %r3
        ldxsw %r3, [%r10-12]
        add %r0, %r3
        ldxh %r3, [%r10-14]
        add %r0, %r3
        ldxsh %r3, [%r10-14]
        xor %r0, %r3
        ldxb %r3, [%r10-15]
        add %r0, %r3
        ldxsb %r3, [%r10-15]
        add %r0, %r3
        ldxw %r3, [%r10-20]
        add %r0, %r3
        ldxsw %r3, [%r10-20]
        add %r0, %r3
        ldxdw %r4, [%r10-8]
        add %r4, 1
        stxdw [%r10-8], %r4
        add %r2, 1
        jlt %r2, 10, loop
        exit";
    let mut x: u64 = 0;
    let mut dw: u64 = 0xfedc_ba98_8765_4321;
    for _ in 0..10 {
        x = x.wrapping_add(dw);
        x = x.wrapping_add(0x8765_4321);
        x = x.wrapping_add(0x8765_4321u32 as i32 as i64 as u64);
        x = x.wrapping_add(0x4321);
        x ^= 0x4321u16 as i16 as i64 as u64;
        x = x.wrapping_add(0x21);
        x = x.wrapping_add(0x21i8 as i64 as u64);
        x = x.wrapping_add(0xffff_fffb);
        x = x.wrapping_add(-5i64 as u64);
        dw = dw.wrapping_add(1);
    }
    assert_eq!(run(src, &[]), Ok(x));
}

#[test]
fn promoted_slots_make_smaller_code_than_memory_slots() {
    let body = "
        stxdw [%r10-8], %r1
        stxdw [%r10-16], %r2
        mov %r0, 0
    loop:
        ldxdw %r3, [%r10-8]
        add %r0, %r3
        ldxdw %r3, [%r10-16]
        add %r0, %r3
        add %r1, -1
        stxdw [%r10-8], %r1
        jne %r1, 0, loop
        exit";
    // The same program with the frame address taken (and unused): every slot
    // must stay in memory.
    let leaked = format!("mov %r9, %r10\n{body}");
    let (a, b) = (trusted_code_size(body), trusted_code_size(&leaked));
    assert!(a < b, "promoted {a} bytes, in memory {b} bytes");
}

#[test]
fn a_slot_whose_address_reaches_a_helper_stays_in_memory() {
    let h = pointer_helper();
    let src = "
        stdw [%r10-8], 7
        stdw [%r10-16], 100
        mov %r1, %r10
        add %r1, -8
        mov %r2, 5
        call 1
        ldxdw %r1, [%r10-8]
        ldxdw %r2, [%r10-16]
        add %r0, %r1
        add %r0, %r2
        exit";
    assert_eq!(run_with(src, &h, &[]), Ok(5 + 22 + 100));
}

#[test]
fn a_frame_pointer_kept_in_a_register_across_a_call_stays_in_memory() {
    // The pointer is formed before the slot is written and used after a local
    // call: the store through r6 must be seen by the r10-relative load.
    let src = "
        mov %r6, %r10
        add %r6, -16
        stdw [%r10-16], 1
        call local f
        stdw [%r6], 41
        ldxdw %r0, [%r10-16]
        add %r0, 1
        exit
    f:
        stdw [%r10-8], 3
        ldxdw %r0, [%r10-8]
        exit";
    assert_eq!(run(src, &[]), Ok(42));
}

#[test]
fn callee_slots_are_private_to_each_frame() {
    // A recursive callee whose spill slot must be per frame.
    let src = "
        mov %r1, 5
        call local f
        exit
    f:
        stxdw [%r10-8], %r1
        mov %r0, 0
        jeq %r1, 0, out
        add %r1, -1
        call local f
        ldxdw %r1, [%r10-8]
        add %r0, %r1
    out:
        exit";
    assert_eq!(run(src, &[]), Ok(15));
}

#[test]
fn overlapping_accesses_of_different_widths_stay_in_memory() {
    let src = "
        lddw %r1, 0x1122334455667788
        stxdw [%r10-8], %r1
        ldxw %r0, [%r10-8]
        ldxw %r2, [%r10-4]
        ldxb %r3, [%r10-1]
        stxb [%r10-2], %r3
        ldxh %r4, [%r10-2]
        lsh %r2, 32
        or %r0, %r2
        add %r0, %r4
        exit";
    let want = 0x1122_3344_5566_7788u64.wrapping_add(0x1111);
    assert_eq!(run(src, &[]), Ok(want));
}

#[test]
fn an_atomic_on_the_frame_keeps_the_frame_in_memory() {
    let src = "
        stdw [%r10-8], 40
        mov %r1, 2
        lock add [%r10-8], %r1
        ldxdw %r0, [%r10-8]
        exit";
    assert_eq!(run(src, &[]), Ok(42));
}

#[test]
fn thirty_two_bit_operations_ignore_and_clear_high_bits() {
    let cases: &[(&str, u64)] = &[
        ("lddw %r0, 0xffffffff00000005\nadd32 %r0, 1\nexit", 6),
        ("lddw %r0, 0xffffffff80000000\nrsh32 %r0, 31\nexit", 1),
        (
            "lddw %r0, 0xffffffff80000000\narsh32 %r0, 31\nexit",
            0xffff_ffff,
        ),
        (
            "lddw %r0, 0x1ffffffff\nmov %r1, 33\nlsh32 %r0, %r1\nexit",
            0xffff_fffe,
        ),
        (
            "lddw %r0, 0x100000007\nlddw %r1, 0x100000002\ndiv32 %r0, %r1\nexit",
            3,
        ),
        (
            "lddw %r0, 0x100000007\nlddw %r1, 0x100000000\nmod32 %r0, %r1\nexit",
            7,
        ),
        (
            "lddw %r0, 0x100000007\nlddw %r1, 0x100000000\ndiv32 %r0, %r1\nexit",
            0,
        ),
        ("lddw %r0, 0xffffffff00000003\nneg32 %r0\nexit", 0xffff_fffd),
        (
            "lddw %r1, 0xabcdef0012345678\nmov32 %r0, %r1\nexit",
            0x1234_5678,
        ),
        ("lddw %r0, 0xabcdef0012345678\nbe16 %r0\nexit", 0x7856),
        ("lddw %r0, 0xabcdef0012345678\nle32 %r0\nexit", 0x1234_5678),
        (
            "lddw %r0, 0xffffffff80000001\nmov %r1, -1\njsgt32 %r0, %r1, +1\nexit\nmov %r0, 9\nexit",
            0xffff_ffff_8000_0001,
        ),
        (
            "lddw %r1, 0xffffffff00000000\nstxdw [%r10-8], %r1\nldxw %r0, [%r10-8]\nexit",
            0,
        ),
    ];
    for (src, want) in cases {
        assert_eq!(run(src, &[]), Ok(*want), "{src}");
    }
}

#[test]
fn division_by_a_register_holding_zero_or_minus_one() {
    let cases: &[(&str, u64)] = &[
        ("mov %r0, 9\nmov %r1, 0\ndiv %r0, %r1\nexit", 0),
        ("mov %r0, 9\nmov %r1, 0\nmod %r0, %r1\nexit", 9),
        ("mov %r0, 9\nlddw %r1, 0x100000000\ndiv32 %r0, %r1\nexit", 0),
        (
            "lddw %r0, 0x8000000000000000\nmov %r1, -1\nsdiv %r0, %r1\nexit",
            1 << 63,
        ),
        (
            "lddw %r0, 0x8000000000000000\nmov %r1, -1\nsmod %r0, %r1\nexit",
            0,
        ),
        (
            "mov32 %r0, 0x80000000\nmov32 %r1, -1\nsdiv32 %r0, %r1\nexit",
            0x8000_0000,
        ),
        ("mov %r0, -7\nmov %r1, 0\nsmod %r0, %r1\nexit", -7i64 as u64),
    ];
    for (src, want) in cases {
        assert_eq!(run(src, &[]), Ok(*want), "{src}");
    }
}
