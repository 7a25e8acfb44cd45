//! Scalar tracking (tnum + bounds), ALU rules and branch refinement,
//! observed through map value accesses that need proven bounds.

mod common;
use common::*;

/// Look up map 1 (array, 16-byte values); the body runs with r0 = value pointer
/// and r6 = the bounded/unbounded scalar prepared by `setup`.
fn with_value(setup: &str, body: &str) -> String {
    format!(
        "{setup}\n\
         *(u32 *)(r10 -4) = 0\n\
         r2 = r10\n\
         r2 += -4\n\
         r1 = map[idx:1]\n\
         call bpf_map_lookup_elem#1\n\
         if r0 == 0 goto out\n\
         {body}\n\
         out: r0 = 0\n\
         exit"
    )
}

/// r6 = an unknown 64-bit value (from the packet-independent helper).
const UNKNOWN_R6: &str = "call bpf_get_prandom_u32#7\nr6 = r0\nr6 <<= 32\nr6 |= r0";

#[test]
fn read_uninit_register() {
    reject(&sock(), "r0 = r2\nexit", "R2 !read_ok");
}

#[test]
fn exit_without_r0() {
    reject(&sock(), "exit", "R0 !read_ok");
}

#[test]
fn constant_offset_in_bounds() {
    accept(
        &sock(),
        &with_value("r6 = 8", "r0 += r6\nr1 = *(u64 *)(r0 +0)"),
    );
    reject(
        &sock(),
        &with_value("r6 = 9", "r0 += r6\nr1 = *(u64 *)(r0 +0)"),
        "invalid access to map value, value_size=16 off=9 size=8",
    );
}

#[test]
fn and_mask_bounds_index() {
    accept(
        &sock(),
        &with_value(UNKNOWN_R6, "r6 &= 7\nr0 += r6\nr1 = *(u64 *)(r0 +0)"),
    );
    reject(
        &sock(),
        &with_value(UNKNOWN_R6, "r6 &= 15\nr0 += r6\nr1 = *(u64 *)(r0 +0)"),
        "R0 max value is outside of the allowed memory range",
    );
}

#[test]
fn unbounded_min_rejected_for_pointer_math() {
    reject(
        &sock(),
        &with_value(UNKNOWN_R6, "r0 += r6\nr1 = *(u8 *)(r0 +0)"),
        "math between map_value pointer and register with unbounded min value is not allowed",
    );
}

#[test]
fn unsigned_compare_bounds() {
    accept(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "if r6 > 8 goto out\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
    );
    reject(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "if r6 > 9 goto out\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
        "R0 max value is outside of the allowed memory range",
    );
}

#[test]
fn signed_compare_needs_lower_bound() {
    reject(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "if r6 s> 8 goto out\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
        "unbounded min value",
    );
    accept(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "if r6 s> 8 goto out\nif r6 s< 0 goto out\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
    );
}

#[test]
fn negative_index_rejected() {
    reject(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "if r6 s> 8 goto out\nif r6 s< -4 goto out\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
        "R0 min value is negative",
    );
}

#[test]
fn jmp32_bounds_low_half() {
    // w6 < 8 bounds only the low half; the 64-bit value is still unknown.
    reject(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "if w6 > 8 goto out\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
        "unbounded min value",
    );
    // After a 32-bit move the upper half is zero, so the 32-bit check suffices.
    accept(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "w6 = w6\nif w6 > 8 goto out\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
    );
}

#[test]
fn linked_scalars_share_bounds() {
    // r7 is a copy of r6: the check on r6 bounds r7 too.
    accept(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "r7 = r6\nif r6 > 8 goto out\nr0 += r7\nr1 = *(u64 *)(r0 +0)",
        ),
    );
    // A copy plus a constant stays linked (r7 <= 9: 8 bytes at 9 overflow).
    reject(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "r7 = r6\nr7 += 1\nif r6 > 8 goto out\nr0 += r7\nr1 = *(u64 *)(r0 +0)",
        ),
        "R0 max value is outside of the allowed memory range",
    );
    // Any other modification breaks the link.
    reject(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "r7 = r6\nr7 <<= 1\nif r6 > 8 goto out\nr0 += r7\nr1 = *(u64 *)(r0 +0)",
        ),
        "unbounded min value",
    );
}

#[test]
fn reg_reg_comparison_refines() {
    accept(
        &sock(),
        &with_value(
            &format!("{UNKNOWN_R6}\nr7 = 8"),
            "if r6 > r7 goto out\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
    );
    reject(
        &sock(),
        &with_value(
            &format!("{UNKNOWN_R6}\nr7 = 9"),
            "if r6 > r7 goto out\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
        "max value is outside",
    );
}

#[test]
fn dead_branch_not_explored() {
    // r1 = 5 so `r1 > 10` is never taken: the invalid access is dead code.
    accept(
        &sock(),
        "r1 = 5\nif r1 > 10 goto bad\nr0 = 0\nexit\nbad: r0 = *(u64 *)(r1 +0)\nexit",
    );
    reject(
        &sock(),
        "r1 = 50\nif r1 > 10 goto bad\nr0 = 0\nexit\nbad: r0 = *(u64 *)(r1 +0)\nexit",
        "R1 invalid mem access 'scalar'",
    );
}

#[test]
fn shifts_and_arithmetic_track_constants() {
    accept(
        &sock(),
        &with_value(
            "r6 = 1\nr6 <<= 3\nr6 -= 1\nr6 >>= 1\nr6 *= 2\nr6 ^= 1\nr6 |= 0\nr6 &= 15",
            "r0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
    );
    // (1 << 3) - 1 = 7, >> 1 = 3, * 2 = 6, ^ 1 = 7: a u64 at 7..15 fits exactly.
    reject(
        &sock(),
        &with_value(
            "r6 = 1\nr6 <<= 3\nr6 += 1",
            "r0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
        "off=9 size=8",
    );
}

#[test]
fn alu32_wraps_and_zero_extends() {
    // w6 = 0xffffffff + 2 wraps to 1.
    accept(
        &sock(),
        &with_value("w6 = -1\nw6 += 2", "r0 += r6\nr1 = *(u64 *)(r0 +0)"),
    );
    // 64-bit add does not wrap at 32 bits.
    reject(
        &sock(),
        &with_value(
            "r6 = 0xffffffff ll\nr6 += 2",
            "r0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
        "is not allowed",
    );
}

#[test]
fn arsh_and_sign_extension() {
    accept(
        &sock(),
        &with_value(
            "r6 = -16\nr6 s>>= 2\nr6 = -r6",
            "r0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
    );
    accept(
        &sock(),
        &with_value(
            "r6 = 0xf8\nr6 = (s8)r6\nr6 = -r6",
            "r0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
    );
}

#[test]
fn div_by_zero_constant_rejected() {
    reject(&sock(), "r0 = 1\nr0 /= 0\nexit", "div by zero");
    accept(&sock(), "r0 = 1\nr1 = 0\nr0 /= r1\nexit");
}

#[test]
fn invalid_shift_rejected() {
    reject(&sock(), "r0 = 1\nr0 <<= 64\nexit", "invalid shift 64");
    reject(&sock(), "w0 = 1\nw0 <<= 32\nexit", "invalid shift 32");
    accept(&sock(), "r0 = 1\nr0 <<= 63\nexit");
}

#[test]
fn jset_refines_known_bits() {
    // Taken branch of `if r6 & 8` on a value masked to 8: exactly 8.
    accept(
        &sock(),
        &with_value(
            &format!("{UNKNOWN_R6}\nr6 &= 8"),
            "if r6 & 8 goto ok\ngoto out\nok: r0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
    );
}

#[test]
fn not_equal_shaves_bound() {
    accept(
        &sock(),
        &with_value(
            &format!("{UNKNOWN_R6}\nr6 &= 15"),
            "if r6 > 9 goto out\nif r6 == 9 goto out\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
    );
}

#[test]
fn endian_bounds() {
    accept(
        &sock(),
        &with_value(
            &format!("{UNKNOWN_R6}\nr6 = le16 r6\nr6 >>= 13"),
            "r0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
    );
}

#[test]
fn sign_extending_load_bounds() {
    // *(s8) of a stack byte is in [-128, 127].
    reject(
        &sock(),
        &with_value(
            &format!("{UNKNOWN_R6}\n*(u64 *)(r10 -16) = r6\nr6 = *(s8 *)(r10 -16)"),
            "r0 += r6\nr1 = *(u8 *)(r0 +0)",
        ),
        "R0 min value is negative",
    );
    // The same byte loaded unsigned is in [0, 255]: too big for 16 bytes, but not negative.
    reject(
        &sock(),
        &with_value(
            &format!("{UNKNOWN_R6}\n*(u64 *)(r10 -16) = r6\nr6 = *(u8 *)(r10 -16)"),
            "r0 += r6\nr1 = *(u8 *)(r0 +0)",
        ),
        "R0 max value is outside of the allowed memory range",
    );
}

/// Linux 6.18 computes no bounds for division and modulo, even by (or of)
/// constants; a mask after the modulo is what bounds an index.
#[test]
fn division_and_modulo_results_are_unknown() {
    reject(
        &sock(),
        &with_value(UNKNOWN_R6, "r6 %= 9\nr0 += r6\nr1 = *(u64 *)(r0 +0)"),
        "unbounded min value",
    );
    accept(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "r6 %= 9\nr6 &= 7\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
    );
    reject(
        &sock(),
        &with_value(
            UNKNOWN_R6,
            "w6 /= 1000\nw6 %= 5\nr0 += r6\nr1 = *(u64 *)(r0 +0)",
        ),
        "unbounded min value",
    );
    reject(
        &sock(),
        "r1 = 10\nr1 /= 3\nif r1 == 3 goto ok\nr0 = *(u64 *)(r1 +0)\nok: r0 = 0\nexit",
        "R1 invalid mem access 'scalar'",
    );
    accept(
        &sock(),
        "r1 = 10\nr1 /= 3\nif r1 == 3 goto ok\nr1 = 3\nok: r0 = r1\nexit",
    );
    reject(
        &sock(),
        &with_value(UNKNOWN_R6, "r6 s%= 9\nr0 += r6\nr1 = *(u64 *)(r0 +0)"),
        "unbounded min value",
    );
    reject(
        &sock(),
        "r1 = -10\nr1 s/= 3\nif r1 == -3 goto ok\nr0 = *(u64 *)(r1 +0)\nok: r0 = 0\nexit",
        "R1 invalid mem access 'scalar'",
    );
}

/// Linked scalars with a delta (Linux's BPF_ADD_CONST): after `r2 = r1;
/// r2 += k`, a bound learned on r1 bounds r2 and vice versa.
#[test]
fn offset_linked_scalars() {
    let lookup = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\n\
                  if r0 == 0 goto out\n";
    // r7 = r6 + 4; r6 < 8 (unsigned) proves r7 <= 11: 4 bytes at 11 fit the
    // 16-byte value, 8 bytes do not; r6 < 10 allows 13 + 4 > 16.
    let body = |k: i64, bound: u64, size: &str| {
        format!(
            "{UNKNOWN_R6}\n{lookup}r7 = r6\nr7 += {k}\nif r6 >= {bound} goto out\nr0 += r7\nr1 = *({size} *)(r0 +0)\nout: r0 = 0\nexit"
        )
    };
    accept(&sock(), &body(4, 8, "u32"));
    reject(
        &sock(),
        &body(4, 10, "u32"),
        "R0 max value is outside of the allowed memory range",
    );
    reject(
        &sock(),
        &body(4, 8, "u64"),
        "R0 max value is outside of the allowed memory range",
    );
    // The other way round: a bound on the derived register bounds the base.
    accept(
        &sock(),
        &format!(
            "{UNKNOWN_R6}\n{lookup}r7 = r6\nr7 += 8\nif r7 > 20 goto out\nif r6 s< 0 goto out\nr0 += r6\nr1 = *(u32 *)(r0 +0)\nout: r0 = 0\nexit"
        ),
    );
    reject(
        &sock(),
        &format!(
            "{UNKNOWN_R6}\n{lookup}r7 = r6\nr7 += 8\nif r7 > 21 goto out\nif r6 s< 0 goto out\nr0 += r6\nr1 = *(u32 *)(r0 +0)\nout: r0 = 0\nexit"
        ),
        "R0 max value is outside of the allowed memory range",
    );
    // Negative constants and subtraction link too; a second addition or a
    // 32-bit addition breaks the link, as in Linux 6.18.
    let neg = |step: &str| {
        format!(
            "{UNKNOWN_R6}\n{lookup}r7 = r6\n{step}\nif r7 > 10 goto out\nif r6 s< 0 goto out\nr0 += r6\nr1 = *(u8 *)(r0 +0)\nout: r0 = 0\nexit"
        )
    };
    accept(&sock(), &neg("r7 += -1"));
    accept(&sock(), &neg("r7 -= 1"));
    reject(&sock(), &neg("w7 += 1"), "unbounded");
    reject(&sock(), &neg("r7 += 1\nr7 += 1"), "unbounded");
    // Unprivileged loads get no linking (Linux: bpf_capable only).
    reject(
        &unpriv(),
        &neg("r7 += 4"),
        "goes out of range, prohibited for !root",
    );
}

/// Linux 6.18 computes nothing for 32-bit division, modulo and shifts by a
/// non-constant: the whole 64-bit register becomes unknown (the upper half
/// is not known to be zero). Found by differential fuzzing.
#[test]
fn alu32_without_range_makes_whole_register_unknown() {
    let chk = "r2 = 1\nr2 <<= 32\nif r0 < r2 goto ok\nr0 = *(u8 *)(r0 +0)\nok: r0 = 0\nexit";
    for pre in [
        "w0 = 5\nw0 /= 3",
        "w0 = 5\nw1 = 3\nw0 /= w1",
        "call bpf_get_prandom_u32#7\nw0 %= 7",
        "call bpf_get_prandom_u32#7\nw1 = w0\nw0 = 5\nw0 <<= w1",
        "call bpf_get_prandom_u32#7\nw1 = w0\nw0 = 5\nw0 s/= w1",
    ] {
        reject(
            &tc(),
            &format!("{pre}\n{chk}"),
            "R0 invalid mem access 'scalar'",
        );
    }
    // Shifts by a known amount and the other 32-bit operations zero-extend.
    for pre in [
        "w0 = 5\nw1 = 3\nw0 <<= w1",
        "call bpf_get_prandom_u32#7\nw0 += 7",
        "call bpf_get_prandom_u32#7\nw0 *= 3",
        "call bpf_get_prandom_u32#7\nw0 >>= 3",
    ] {
        accept(&tc(), &format!("{pre}\n{chk}"));
    }
}
