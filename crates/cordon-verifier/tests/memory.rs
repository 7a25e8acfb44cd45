//! Stack slots and spills, context layouts, packet ranges, map values,
//! pointer arithmetic rules, NULL checks.

mod common;
use common::*;
use cordon_verifier::{ProgType, VerifyEnv};

// ---------- stack ----------

#[test]
fn stack_write_then_read() {
    accept(&sock(), "*(u64 *)(r10 -8) = 1\nr0 = *(u64 *)(r10 -8)\nexit");
}

#[test]
fn stack_out_of_bounds() {
    reject(
        &sock(),
        "*(u64 *)(r10 -520) = 1\nr0 = 0\nexit",
        "invalid write to stack R10 off=-520 size=8",
    );
    reject(
        &sock(),
        "*(u64 *)(r10 +0) = 1\nr0 = 0\nexit",
        "invalid write to stack R10 off=0 size=8",
    );
    accept(&sock(), "*(u64 *)(r10 -512) = 1\nr0 = 0\nexit");
}

#[test]
fn stack_misaligned() {
    reject(
        &sock(),
        "*(u64 *)(r10 -12) = 1\nr0 = 0\nexit",
        "misaligned stack access",
    );
    accept(&sock(), "*(u32 *)(r10 -12) = 1\nr0 = 0\nexit");
}

#[test]
fn uninit_stack_read_privileged_vs_unprivileged() {
    accept(&sock(), "r0 = *(u64 *)(r10 -8)\nexit");
    reject(
        &unpriv(),
        "*(u64 *)(r10 -16) = 0\nr0 = *(u64 *)(r10 -8)\nexit",
        "invalid read from stack off -8+0 size 8",
    );
    reject(
        &unpriv(),
        "r0 = *(u64 *)(r10 -8)\nexit",
        "invalid read from stack R10 off=-8 size=8",
    );
}

#[test]
fn spilled_pointer_keeps_type() {
    accept(
        &sock(),
        "*(u64 *)(r10 -8) = r1\nr1 = 0\nr1 = *(u64 *)(r10 -8)\nr0 = *(u32 *)(r1 +0)\nexit",
    );
    // Overwriting the spill with a scalar turns the fill into a scalar.
    reject(
        &sock(),
        "*(u64 *)(r10 -8) = r1\n*(u32 *)(r10 -8) = 0\nr1 = *(u64 *)(r10 -8)\nr0 = *(u32 *)(r1 +0)\nexit",
        "R1 invalid mem access 'scalar'",
    );
}

#[test]
fn partial_pointer_spill_and_fill_rejected() {
    reject(
        &sock(),
        "*(u32 *)(r10 -8) = r1\nr0 = 0\nexit",
        "invalid size of register spill",
    );
    reject(
        &sock(),
        "*(u64 *)(r10 -8) = r1\nr0 = *(u32 *)(r10 -8)\nexit",
        "invalid size of register fill",
    );
}

#[test]
fn unprivileged_cannot_corrupt_spilled_pointer() {
    reject(
        &unpriv(),
        "*(u64 *)(r10 -8) = r1\n*(u8 *)(r10 -8) = 0\nr0 = 0\nexit",
        "attempt to corrupt spilled pointer on stack",
    );
}

#[test]
fn spilled_scalar_keeps_bounds() {
    let body = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\n\
                if r0 == 0 goto out\nr6 = *(u64 *)(r10 -16)\nr0 += r6\nr1 = *(u64 *)(r0 +0)\nout: r0 = 0\nexit";
    accept(&sock(), &format!("r6 = 8\n*(u64 *)(r10 -16) = r6\n{body}"));
    reject(
        &sock(),
        &format!("r6 = 9\n*(u64 *)(r10 -16) = r6\n{body}"),
        "off=9 size=8",
    );
    // A 4-byte spill of a constant is restored by a 4-byte fill.
    accept(
        &sock(),
        &format!(
            "*(u32 *)(r10 -16) = 8\n{}",
            body.replace("r6 = *(u64 *)(r10 -16)", "r6 = *(u32 *)(r10 -16)")
        ),
    );
}

#[test]
fn zero_bytes_read_as_zero() {
    let body = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\n\
                if r0 == 0 goto out\nr6 = *(u16 *)(r10 -14)\nr0 += r6\nr1 = *(u64 *)(r0 +8)\nout: r0 = 0\nexit";
    accept(
        &sock(),
        &format!("*(u32 *)(r10 -12) = 0\n*(u32 *)(r10 -16) = 0\n{body}"),
    );
    accept(&sock(), &format!("r1 = 0\n*(u64 *)(r10 -16) = r1\n{body}"));
    // A plain write into a slot holding a 4-byte spill destroys the spill:
    // its bytes become unknown (Linux's scrub_spilled_slot).
    reject(
        &sock(),
        &format!("r1 = 0\n*(u32 *)(r10 -16) = w1\n*(u32 *)(r10 -12) = w1\n{body}"),
        "R0 max value is outside of the allowed memory range",
    );
}

#[test]
fn variable_offset_stack_access() {
    let setup = "call bpf_get_prandom_u32#7\nr0 &= 8\nr1 = r10\nr1 += -16\nr1 += r0\n";
    accept(
        &sock(),
        &format!("{setup}*(u64 *)(r1 +0) = 0\nr0 = 0\nexit"),
    );
    accept(
        &sock(),
        &format!("{setup}*(u64 *)(r10 -16) = 0\n*(u64 *)(r10 -8) = 0\nr0 = *(u64 *)(r1 +0)\nexit"),
    );
    reject(
        &sock(),
        &format!("{setup}*(u64 *)(r1 +8) = 0\nr0 = 0\nexit"),
        "invalid variable-offset write to stack R1",
    );
    reject(
        &unpriv(),
        &format!("{setup}r0 = 0\nexit"),
        "R1 variable stack access prohibited for !root",
    );
}

#[test]
fn frame_pointer_is_read_only() {
    // r10 cannot be a destination; the decoder already rejects it.
    let insns = vec![
        cordon_isa::Insn::new(0xb7, 10, 0, 0, 0),
        cordon_isa::Insn::new(0x95, 0, 0, 0, 0),
    ];
    assert!(cordon_isa::Program::new(insns).is_err());
}

// ---------- context ----------

#[test]
fn ctx_valid_and_invalid_offsets() {
    accept(&sock(), "r0 = *(u32 *)(r1 +0)\nexit");
    reject(
        &sock(),
        "r0 = *(u32 *)(r1 +192)\nexit",
        "invalid bpf_context access off=192 size=4",
    );
    reject(
        &sock(),
        "r0 = *(u32 *)(r1 +76)\nexit",
        "invalid bpf_context access off=76 size=4",
    );
    accept(&tc(), "r0 = *(u32 *)(r1 +76)\nr0 = 0\nexit");
}

#[test]
fn ctx_read_only_fields() {
    reject(
        &sock(),
        "*(u32 *)(r1 +8) = 1\nr0 = 0\nexit",
        "invalid bpf_context access off=8 size=4",
    );
    accept(&tc(), "*(u32 *)(r1 +8) = 1\nr0 = 0\nexit");
    accept(&sock(), "*(u32 *)(r1 +48) = 1\nr0 = 0\nexit");
    reject(
        &xdp(),
        "*(u32 *)(r1 +12) = 1\nr0 = 0\nexit",
        "invalid bpf_context access",
    );
}

#[test]
fn ctx_narrow_and_misaligned() {
    accept(&sock(), "r0 = *(u8 *)(r1 +1)\nexit");
    reject(
        &sock(),
        "r0 = *(u32 *)(r1 +2)\nexit",
        "misaligned context access",
    );
    reject(
        &xdp(),
        "r0 = *(u16 *)(r1 +12)\nexit",
        "invalid bpf_context access off=12 size=2",
    );
}

#[test]
fn modified_ctx_pointer() {
    reject(
        &sock(),
        "r1 += 4\nr0 = *(u32 *)(r1 +0)\nexit",
        "dereference of modified ctx ptr R1 off=4 disallowed",
    );
}

#[test]
fn generic_ctx() {
    let e = VerifyEnv::new(ProgType::Generic {
        ctx_size: 32,
        ctx_writable: false,
    });
    accept(&e, "r0 = *(u64 *)(r1 +24)\nexit");
    reject(
        &e,
        "r0 = *(u64 *)(r1 +32)\nexit",
        "invalid bpf_context access off=32 size=8",
    );
    reject(
        &e,
        "*(u64 *)(r1 +0) = 1\nr0 = 0\nexit",
        "invalid bpf_context access off=0 size=8",
    );
}

// ---------- packets ----------

const XDP_PKT: &str = "r2 = *(u32 *)(r1 +0)\nr3 = *(u32 *)(r1 +4)\n";

#[test]
fn packet_access_needs_range_check() {
    reject(
        &xdp(),
        &format!("{XDP_PKT}r0 = *(u8 *)(r2 +0)\nr0 = 0\nexit"),
        "invalid access to packet, off=0 size=1, R2(id=0,off=0,r=0)",
    );
    accept(
        &xdp(),
        &format!(
            "{XDP_PKT}r4 = r2\nr4 += 14\nif r4 > r3 goto out\nr0 = *(u8 *)(r2 +13)\nout: r0 = 0\nexit"
        ),
    );
    reject(
        &xdp(),
        &format!(
            "{XDP_PKT}r4 = r2\nr4 += 14\nif r4 > r3 goto out\nr0 = *(u8 *)(r2 +14)\nout: r0 = 0\nexit"
        ),
        "invalid access to packet, off=14 size=1",
    );
}

#[test]
fn packet_range_all_comparison_forms() {
    // pkt < end (taken): range off+1.
    accept(
        &xdp(),
        &format!(
            "{XDP_PKT}r4 = r2\nr4 += 8\nif r4 < r3 goto ok\nr0 = 0\nexit\nok: r0 = *(u8 *)(r2 +8)\nr0 = 0\nexit"
        ),
    );
    // end >= pkt (taken): range off.
    accept(
        &xdp(),
        &format!(
            "{XDP_PKT}r4 = r2\nr4 += 8\nif r3 >= r4 goto ok\nr0 = 0\nexit\nok: r0 = *(u64 *)(r2 +0)\nr0 = 0\nexit"
        ),
    );
    reject(
        &xdp(),
        &format!(
            "{XDP_PKT}r4 = r2\nr4 += 8\nif r3 >= r4 goto ok\nr0 = 0\nexit\nok: r0 = *(u8 *)(r2 +8)\nr0 = 0\nexit"
        ),
        "invalid access to packet",
    );
    // end > pkt is right-open: one more byte.
    accept(
        &xdp(),
        &format!(
            "{XDP_PKT}r4 = r2\nr4 += 8\nif r3 > r4 goto ok\nr0 = 0\nexit\nok: r0 = *(u8 *)(r2 +8)\nr0 = 0\nexit"
        ),
    );
    // Wrong side of the check.
    reject(
        &xdp(),
        &format!(
            "{XDP_PKT}r4 = r2\nr4 += 8\nif r4 > r3 goto bad\nr0 = 0\nexit\nbad: r0 = *(u8 *)(r2 +0)\nr0 = 0\nexit"
        ),
        "invalid access to packet",
    );
}

#[test]
fn packet_write_allowed_for_xdp_and_tc() {
    let p = |pkt: &str| {
        format!(
            "{pkt}r4 = r2\nr4 += 4\nif r4 > r3 goto out\n*(u32 *)(r2 +0) = 1\nout: r0 = 0\nexit"
        )
    };
    accept(&xdp(), &p(XDP_PKT));
    accept(&tc(), &p("r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\n"));
}

#[test]
fn packet_variable_offset() {
    let pre = format!("{XDP_PKT}r4 = r2\nr4 += 1\nif r4 > r3 goto out\nr5 = *(u8 *)(r2 +0)\n");
    accept(
        &xdp(),
        &format!(
            "{pre}r2 += r5\nr4 = r2\nr4 += 4\nif r4 > r3 goto out\nr0 = *(u32 *)(r2 +0)\nout: r0 = 0\nexit"
        ),
    );
    // The variable pointer needs its own check.
    reject(
        &xdp(),
        &format!("{pre}r2 += r5\nr0 = *(u8 *)(r2 +0)\nout: r0 = 0\nexit"),
        "invalid access to packet",
    );
}

#[test]
fn pkt_end_arithmetic_and_deref_rejected() {
    reject(
        &xdp(),
        &format!("{XDP_PKT}r3 += 1\nr0 = 0\nexit"),
        "R3 pointer arithmetic on pkt_end prohibited",
    );
    reject(
        &xdp(),
        &format!("{XDP_PKT}r0 = *(u8 *)(r3 +0)\nr0 = 0\nexit"),
        "R3 invalid mem access 'pkt_end'",
    );
}

#[test]
fn adjust_head_invalidates_packet_pointers() {
    let pre = format!("r6 = r1\n{XDP_PKT}r4 = r2\nr4 += 4\nif r4 > r3 goto out\nr1 = r6\nr2 = 0\n");
    // r7 was a checked packet pointer; after the helper it is no longer a pointer.
    reject(
        &xdp(),
        &format!(
            "r6 = r1\n{XDP_PKT}r4 = r2\nr4 += 4\nif r4 > r3 goto out\nr7 = r2\nr1 = r6\nr2 = 0\ncall bpf_xdp_adjust_head#44\nr0 = *(u8 *)(r7 +0)\nout: r0 = 0\nexit"
        ),
        "R7 invalid mem access 'scalar'",
    );
    accept(
        &xdp(),
        &format!("{pre}call bpf_xdp_adjust_head#44\nout: r0 = 0\nexit"),
    );
}

#[test]
fn data_meta_range() {
    accept(
        &xdp(),
        "r2 = *(u32 *)(r1 +8)\nr3 = *(u32 *)(r1 +0)\nr4 = r2\nr4 += 4\nif r4 > r3 goto out\nr0 = *(u32 *)(r2 +0)\nout: r0 = 0\nexit",
    );
    reject(
        &xdp(),
        "r2 = *(u32 *)(r1 +8)\nr0 = *(u32 *)(r2 +0)\nr0 = 0\nexit",
        "invalid access to packet",
    );
}

#[test]
fn ld_abs_rules() {
    accept(&sock(), "r6 = r1\nr0 = *(u8 *)skb[12]\nexit");
    reject(&sock(), "r0 = *(u8 *)skb[12]\nexit", "R6 !read_ok");
    reject(
        &xdp(),
        "r6 = r1\nr0 = *(u8 *)skb[12]\nexit",
        "not allowed for this program type",
    );
    // ld_abs clobbers r1-r5.
    reject(
        &sock(),
        "r6 = r1\nr2 = 1\nr0 = *(u8 *)skb[12]\nr0 = r2\nexit",
        "R2 !read_ok",
    );
}

// ---------- map values ----------

const LOOKUP_H: &str =
    "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:0]\ncall bpf_map_lookup_elem#1\n";

#[test]
fn null_check_required() {
    reject(
        &sock(),
        &format!("{LOOKUP_H}r0 = *(u64 *)(r0 +0)\nexit"),
        "R0 invalid mem access 'map_value_or_null'",
    );
    accept(
        &sock(),
        &format!("{LOOKUP_H}if r0 == 0 goto out\nr0 = *(u64 *)(r0 +0)\nout: exit"),
    );
    accept(
        &sock(),
        &format!("{LOOKUP_H}if r0 != 0 goto ok\nexit\nok: r0 = *(u64 *)(r0 +0)\nexit"),
    );
}

#[test]
fn null_check_marks_all_copies() {
    accept(
        &sock(),
        &format!(
            "{LOOKUP_H}r6 = r0\n*(u64 *)(r10 -16) = r0\nif r0 == 0 goto out\nr1 = *(u64 *)(r6 +0)\nr2 = *(u64 *)(r10 -16)\nr1 = *(u64 *)(r2 +0)\nout: r0 = 0\nexit"
        ),
    );
    // In the NULL branch the copy is NULL too.
    reject(
        &sock(),
        &format!("{LOOKUP_H}r6 = r0\nif r0 != 0 goto out\nr1 = *(u64 *)(r6 +0)\nout: r0 = 0\nexit"),
        "R6 invalid mem access 'scalar'",
    );
}

#[test]
fn arithmetic_on_nullable_pointer() {
    reject(
        &sock(),
        &format!("{LOOKUP_H}r0 += 8\nr0 = 0\nexit"),
        "R0 pointer arithmetic on map_value_or_null prohibited, null-check it first",
    );
}

#[test]
fn map_value_bounds() {
    accept(
        &sock(),
        &format!("{LOOKUP_H}if r0 == 0 goto out\nr1 = *(u64 *)(r0 +0)\nout: r0 = 0\nexit"),
    );
    reject(
        &sock(),
        &format!("{LOOKUP_H}if r0 == 0 goto out\nr1 = *(u64 *)(r0 +4)\nout: r0 = 0\nexit"),
        "invalid access to map value, value_size=8 off=4 size=8",
    );
    reject(
        &sock(),
        &format!("{LOOKUP_H}if r0 == 0 goto out\nr1 = *(u8 *)(r0 -1)\nout: r0 = 0\nexit"),
        "invalid access to map value, value_size=8 off=-1 size=1",
    );
}

#[test]
fn key_must_be_initialized_for_unprivileged() {
    reject(
        &unpriv(),
        "r2 = r10\nr2 += -8\nr1 = map[idx:0]\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit",
        "invalid indirect read from stack R2 off -8+0 size 4",
    );
    accept(
        &unpriv(),
        "*(u32 *)(r10 -8) = 0\nr2 = r10\nr2 += -8\nr1 = map[idx:0]\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit",
    );
}

#[test]
fn pointer_leaks_privileged_vs_unprivileged() {
    let store = format!("{LOOKUP_H}if r0 == 0 goto out\n*(u64 *)(r0 +0) = r10\nout: r0 = 0\nexit");
    accept(&sock(), &store);
    reject(&unpriv(), &store, "R10 leaks addr into map");
    accept(&sock(), "r0 = r10\nexit");
    reject(&unpriv(), "r0 = r10\nexit", "R0 leaks addr as return value");
}

#[test]
fn readonly_map_write_rejected() {
    let p = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:6]\ncall bpf_map_lookup_elem#1\nif r0 == 0 goto out\n";
    accept(
        &sock(),
        &format!("{p}r1 = *(u64 *)(r0 +0)\nout: r0 = 0\nexit"),
    );
    reject(
        &sock(),
        &format!("{p}*(u64 *)(r0 +0) = 1\nout: r0 = 0\nexit"),
        "write into map forbidden",
    );
}

#[test]
fn direct_map_value_address() {
    accept(&sock(), "r1 = map[idx:1][0]+8\nr0 = *(u64 *)(r1 +0)\nexit");
    reject(
        &sock(),
        "r1 = map[idx:1][0]+12\nr0 = *(u64 *)(r1 +0)\nexit",
        "invalid access to map value, value_size=16 off=12 size=8",
    );
    reject(
        &sock(),
        "r1 = map[idx:0][0]+0\nr0 = 0\nexit",
        "does not support direct value access",
    );
}

#[test]
fn bad_map_index() {
    reject(
        &sock(),
        "r1 = map[idx:42]\nr0 = 0\nexit",
        "fd 42 is not pointing to valid bpf_map",
    );
}

#[test]
fn atomics() {
    accept(
        &sock(),
        "*(u64 *)(r10 -8) = 0\nr1 = 1\nlock *(u64 *)(r10 -8) += r1\nr1 = atomic64_fetch_add((u64 *)(r10 -8), r1)\nr0 = r1\nexit",
    );
    reject(
        &sock(),
        "r2 = 1\nlock *(u32 *)(r1 +0) += r2\nr0 = 0\nexit",
        "BPF_ATOMIC stores into R1 ctx is not allowed",
    );
    accept(
        &sock(),
        &format!(
            "{LOOKUP_H}if r0 == 0 goto out\nr1 = 1\nlock *(u64 *)(r0 +0) += r1\nout: r0 = 0\nexit"
        ),
    );
}

// ---------- pointer arithmetic ----------

#[test]
fn pointer_arithmetic_rules() {
    reject(
        &sock(),
        "r1 &= 8\nr0 = 0\nexit",
        "R1 bitwise operator &= on pointer prohibited",
    );
    reject(
        &sock(),
        "r1 *= 2\nr0 = 0\nexit",
        "R1 pointer arithmetic with *= operator prohibited",
    );
    reject(
        &sock(),
        "w1 += 2\nr0 = 0\nexit",
        "R1 32-bit pointer arithmetic prohibited",
    );
    reject(
        &sock(),
        "r0 = 1\nr0 -= r1\nexit",
        "R0 tried to subtract pointer from scalar",
    );
    reject(
        &sock(),
        "r1 = map[idx:0]\nr1 += 1\nr0 = 0\nexit",
        "R1 pointer arithmetic on map_ptr prohibited",
    );
    accept(&sock(), "r0 = r10\nr0 -= r1\nexit");
    reject(
        &unpriv(),
        "r0 = r10\nr0 -= r1\nr0 = 0\nexit",
        "pointer -= pointer prohibited",
    );
    accept(&sock(), "r0 = 4\nr0 += r10\nr0 = *(u32 *)(r0 -8)\nexit");
}

#[test]
fn unprivileged_pointer_comparison() {
    reject(
        &unpriv(),
        "r0 = 0\nif r1 > r10 goto pc+0\nexit",
        "pointer comparison prohibited",
    );
    accept(&sock(), "r0 = 0\nif r1 > r10 goto pc+0\nexit");
}

#[test]
fn array_lookup_with_constant_key_is_never_null() {
    // Map 1 is an array with one entry: key 0 is in range.
    let p = |store: &str| {
        format!(
            "{store}\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\nr0 = *(u64 *)(r0 +0)\nexit"
        )
    };
    accept(&sock(), &p("*(u32 *)(r10 -4) = 0"));
    accept(&sock(), &p("r1 = 0\n*(u32 *)(r10 -4) = w1"));
    reject(
        &sock(),
        &p("*(u32 *)(r10 -4) = 1"),
        "R0 invalid mem access 'map_value_or_null'",
    );
    // Hash maps always need the check.
    reject(
        &sock(),
        &p("*(u32 *)(r10 -4) = 0").replace("map[idx:1]", "map[idx:0]"),
        "map_value_or_null",
    );
    // Unprivileged loads keep the check (Linux requires bpf_capable).
    reject(&unpriv(), &p("*(u32 *)(r10 -4) = 0"), "map_value_or_null");
}

/// Atomics are always alignment-checked (Linux's strict_alignment_once),
/// plain loads and stores of map values only with strict alignment.
#[test]
fn atomics_must_be_aligned() {
    let lookup = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\n\
                  if r0 == 0 goto out\nr1 = 1\n";
    accept(
        &sock(),
        &format!("{lookup}lock *(u64 *)(r0 +8) += r1\nout: r0 = 0\nexit"),
    );
    reject(
        &sock(),
        &format!("{lookup}lock *(u64 *)(r0 +2) += r1\nout: r0 = 0\nexit"),
        "misaligned value access",
    );
    reject(
        &sock(),
        &format!("{lookup}lock *(u32 *)(r0 +6) += r1\nout: r0 = 0\nexit"),
        "misaligned value access",
    );
    accept(
        &sock(),
        &format!("{lookup}r1 = *(u64 *)(r0 +2)\nout: r0 = 0\nexit"),
    );
    reject(
        &sock(),
        "*(u64 *)(r10 -8) = 0\nr1 = 1\nlock *(u64 *)(r10 -12) += r1\nr0 = 0\nexit",
        "misaligned stack access",
    );
}

/// Context fields of Linux 6.18 found by differential fuzzing: the packet
/// pointer fields of `__sk_buff` allow only whole 4-byte loads, XDP's
/// `egress_ifindex` needs a devmap attach type.
#[test]
fn ctx_packet_fields_and_egress_ifindex() {
    for off in [77, 78, 81, 141, 143] {
        reject(
            &tc(),
            &format!("r0 = *(u8 *)(r1 +{off})\nr0 = 0\nexit"),
            "invalid bpf_context access",
        );
    }
    reject(
        &tc(),
        "r0 = *(u16 *)(r1 +140)\nr0 = 0\nexit",
        "invalid bpf_context access",
    );
    accept(&tc(), "r0 = *(u32 *)(r1 +140)\nr0 = 0\nexit");
    for off in [72, 73, 76, 77, 82, 140, 142] {
        reject(
            &sock(),
            &format!("r0 = *(u8 *)(r1 +{off})\nr0 = 0\nexit"),
            "invalid bpf_context access",
        );
    }
    accept(&sock(), "r0 = *(u8 *)(r1 +20)\nr0 = 0\nexit");
    reject(
        &xdp(),
        "r0 = *(u32 *)(r1 +20)\nr0 = 0\nexit",
        "invalid bpf_context access off=20 size=4",
    );
    accept(&xdp(), "r0 = *(u32 *)(r1 +16)\nr0 = 0\nexit");
}

/// More `__sk_buff` rules from differential fuzzing: cb[] takes any aligned
/// size (8-byte reads and writes too), gso_size after the sk pointer is an
/// ordinary (narrow-readable) field.
#[test]
fn skb_cb_sizes_and_gso_size() {
    accept(&tc(), "r0 = *(u64 *)(r1 +56)\nr0 = 0\nexit");
    accept(&sock(), "r2 = 1\n*(u64 *)(r1 +48) = r2\nr0 = 0\nexit");
    accept(&sock(), "*(u16 *)(r1 +66) = 1\nr0 = 0\nexit");
    reject(
        &tc(),
        "r0 = *(u64 *)(r1 +64)\nr0 = 0\nexit",
        "invalid bpf_context access off=64 size=8",
    );
    accept(
        &tc(),
        "r0 = *(u8 *)(r1 +176)\nr0 = *(u32 *)(r1 +176)\nr0 = 0\nexit",
    );
    reject(
        &tc(),
        "r0 = *(u32 *)(r1 +168)\nr0 = 0\nexit",
        "invalid bpf_context access off=168 size=4",
    );
}
