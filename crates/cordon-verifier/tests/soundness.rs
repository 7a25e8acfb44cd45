//! Programs that try to sneak an unsafe access past the verifier. Every one
//! must be rejected (and a safe twin accepted, so the test can fail both ways).

mod common;
use common::*;

const LOOKUP_H: &str =
    "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:0]\ncall bpf_map_lookup_elem#1\n";
const XDP_PKT: &str = "r2 = *(u32 *)(r1 +0)\nr3 = *(u32 *)(r1 +4)\n";

#[test]
fn variable_offset_write_destroys_spilled_pointer() {
    let text = |mask: u32| {
        format!(
            "r6 = r1\n*(u64 *)(r10 -16) = r6\ncall bpf_get_prandom_u32#7\nr0 &= {mask}\nr1 = r10\nr1 += -16\nr1 += r0\n\
             *(u64 *)(r1 +0) = 0\nr1 = *(u64 *)(r10 -16)\nr0 = *(u32 *)(r1 +0)\nexit"
        )
    };
    // The write may hit the spilled ctx pointer: its fill is a scalar.
    reject(&sock(), &text(8), "R1 invalid mem access 'scalar'");
    // With the offset known to be 0 the write lands exactly on it.
    reject(&sock(), &text(0), "R1 invalid mem access 'scalar'");
    // A write that can only land below the spill leaves it intact.
    let ok = text(8).replace("r1 += -16\nr1 += r0", "r1 += -40\nr1 += r0");
    accept(&sock(), &ok);
}

#[test]
fn helper_write_destroys_spilled_pointer() {
    reject(
        &sock(),
        "*(u64 *)(r10 -8) = r1\nr6 = r1\nr1 = r6\nr2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall bpf_skb_load_bytes#26\nr1 = *(u64 *)(r10 -8)\nr0 = *(u32 *)(r1 +0)\nexit",
        "R1 invalid mem access 'scalar'",
    );
    accept(
        &sock(),
        "*(u64 *)(r10 -8) = r1\nr6 = r1\nr1 = r6\nr2 = 0\nr3 = r10\nr3 += -16\nr4 = 8\ncall bpf_skb_load_bytes#26\nr1 = *(u64 *)(r10 -8)\nr0 = *(u32 *)(r1 +0)\nexit",
    );
}

#[test]
fn spilled_packet_pointer_invalidated_by_adjust_head() {
    let text = |helper: &str| {
        format!(
            "r6 = r1\n{XDP_PKT}r4 = r2\nr4 += 8\nif r4 > r3 goto out\n*(u64 *)(r10 -8) = r2\nr1 = r6\nr2 = 0\n{helper}\n\
             r2 = *(u64 *)(r10 -8)\nr0 = *(u8 *)(r2 +0)\nout: r0 = 0\nexit"
        )
    };
    reject(
        &xdp(),
        &text("call bpf_xdp_adjust_head#44"),
        "R2 invalid mem access 'scalar'",
    );
    accept(&xdp(), &text("call bpf_ktime_get_ns#5"));
}

#[test]
fn ringbuf_record_copy_dies_with_submit() {
    let text = |after: &str| {
        format!(
            "r1 = map[idx:2]\nr2 = 8\nr3 = 0\ncall bpf_ringbuf_reserve#131\nif r0 == 0 goto out\n*(u64 *)(r10 -8) = r0\n\
             r1 = r0\nr2 = 0\ncall bpf_ringbuf_submit#132\nr1 = *(u64 *)(r10 -8)\n{after}\nout: r0 = 0\nexit"
        )
    };
    reject(
        &sock(),
        &text("*(u64 *)(r1 +0) = 1"),
        "R1 invalid mem access 'scalar'",
    );
    accept(&sock(), &text("r1 = 0"));
}

#[test]
fn callee_stack_pointer_does_not_survive_return() {
    // The callee stores a pointer to its own frame into the caller's stack.
    let text = "r1 = r10\nr1 += -8\ncall f\nr1 = *(u64 *)(r10 -8)\nr0 = *(u64 *)(r1 +0)\nexit\n\
                f: r2 = r10\nr2 += -16\n*(u64 *)(r2 +0) = 0\n*(u64 *)(r1 +0) = r2\nr0 = 0\nexit";
    reject(
        &sock(),
        text,
        "cannot spill pointers to stack into stack frame of the caller",
    );
    // Linux refuses any stack pointer spilled into a caller's frame, even
    // one pointing at the caller's own frame.
    let other = "r1 = r10\nr1 += -8\n*(u64 *)(r10 -16) = 0\ncall f\nr1 = *(u64 *)(r10 -8)\nr0 = *(u64 *)(r1 +0)\nexit\n\
              f: r2 = r1\nr2 += -8\n*(u64 *)(r1 +0) = r2\nr0 = 0\nexit";
    reject(
        &sock(),
        other,
        "cannot spill pointers to stack into stack frame of the caller",
    );
    // Scalars may be written into the caller's frame.
    let ok = "r1 = r10\nr1 += -8\ncall f\nr0 = *(u64 *)(r10 -8)\nexit\n\
              f: r2 = 7\n*(u64 *)(r1 +0) = r2\nr0 = 0\nexit";
    accept(&sock(), ok);
}

#[test]
fn null_check_of_one_lookup_does_not_cover_another() {
    let text = format!(
        "{LOOKUP_H}r6 = r0\n{LOOKUP_H}r7 = r0\nif r6 == 0 goto out\nr0 = *(u64 *)(r7 +0)\nout: r0 = 0\nexit"
    );
    reject(&sock(), &text, "R7 invalid mem access 'map_value_or_null'");
    let ok = text.replace("r0 = *(u64 *)(r7 +0)", "r0 = *(u64 *)(r6 +0)");
    accept(&sock(), &ok);
}

#[test]
fn packet_range_of_one_pointer_does_not_cover_variable_one() {
    let text = format!(
        "{XDP_PKT}r4 = r2\nr4 += 16\nif r4 > r3 goto out\nr5 = *(u8 *)(r2 +0)\nr6 = r2\nr6 += r5\nr0 = *(u8 *)(r6 +0)\nout: r0 = 0\nexit"
    );
    reject(&xdp(), &text, "invalid access to packet");
}

#[test]
fn pruning_does_not_merge_different_map_values() {
    // Path 1: r6 -> 8-byte value of map 0; path 2: r6 -> 16-byte value of map 1.
    let text = format!(
        "call bpf_get_prandom_u32#7\nr8 = r0\n{LOOKUP_H}if r0 == 0 goto out\nr6 = r0\n\
         *(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\n\
         if r8 > 5 goto join\nr6 = r0\njoin: r0 = *(u64 *)(r6 +8)\nout: r0 = 0\nexit"
    );
    reject(
        &sock(),
        &text,
        "invalid access to map value, value_size=8 off=8 size=8",
    );
}

#[test]
fn loop_moving_pointer_is_checked_at_each_step() {
    let text = |n: u32| {
        format!(
            "{LOOKUP_H}if r0 == 0 goto out\nr1 = 0\nl: *(u8 *)(r0 +0) = 1\nr0 += 1\nr1 += 1\nif r1 < {n} goto l\nout: r0 = 0\nexit"
        )
    };
    accept(&sock(), &text(8));
    reject(
        &sock(),
        &text(9),
        "invalid access to map value, value_size=8 off=8 size=1",
    );
}

#[test]
fn thirty_two_bit_compare_does_not_bound_64_bit_pointer_offset() {
    let text = format!(
        "{LOOKUP_H}if r0 == 0 goto out\nr6 = r0\ncall bpf_get_prandom_u32#7\nif w0 > 4 goto out\nr6 += r0\nr0 = *(u8 *)(r6 +0)\nout: r0 = 0\nexit"
    );
    reject(
        &sock(),
        &text,
        "math between map_value pointer and register with unbounded min value is not allowed",
    );
    let ok = text.replace("if w0 > 4 goto out", "if r0 > 4 goto out");
    accept(&sock(), &ok);
}

#[test]
fn reference_released_in_one_branch_only() {
    let text = "r1 = 7\ncall KF(cordon_test_acquire)\nif r0 == 0 goto out\nr6 = r0\ncall bpf_get_prandom_u32#7\n\
                if r0 > 5 goto skip\nr1 = r6\ncall KF(cordon_test_release)\nskip: r0 = 0\nexit\nout: r0 = 0\nexit";
    reject(&sock(), text, "Unreleased reference");
}

#[test]
fn lock_released_in_one_branch_only() {
    let text = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:4]\ncall bpf_map_lookup_elem#1\nif r0 == 0 goto out\nr6 = r0\n\
                r1 = r6\ncall bpf_spin_lock#93\nr7 = *(u64 *)(r6 +8)\nif r7 > 5 goto out\nr1 = r6\ncall bpf_spin_unlock#94\nout: r0 = 0\nexit";
    reject(&tc(), text, "cannot be used inside bpf_spin_lock-ed region");
}

#[test]
fn map_value_offset_overflow_tricks() {
    // Large constant offsets are refused before they can wrap.
    reject(
        &sock(),
        &format!(
            "{LOOKUP_H}if r0 == 0 goto out\nr1 = 0x20000000 ll\nr0 += r1\nr0 = *(u8 *)(r0 +0)\nout: r0 = 0\nexit"
        ),
        "is not allowed",
    );
    // Negative then positive offset back into range is fine.
    accept(
        &sock(),
        &format!(
            "{LOOKUP_H}if r0 == 0 goto out\nr0 += -16\nr0 += 16\nr0 = *(u8 *)(r0 +0)\nout: r0 = 0\nexit"
        ),
    );
}
