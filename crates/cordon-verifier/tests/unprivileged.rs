//! The unprivileged profile (an unprivileged socket filter load in Linux):
//! each main rule with an accept and a reject case. (Linux comparison is
//! skipped for these: this machine has kernel.unprivileged_bpf_disabled set.)

mod common;
use common::*;

const LOOKUP: &str = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\n\
                      if r0 == 0 goto out\n";

#[test]
fn no_pointer_returned() {
    reject(&unpriv(), "r0 = r10\nexit", "R0 leaks addr as return value");
    reject(&unpriv(), "r0 = r1\nexit", "R0 leaks addr as return value");
    accept(&unpriv(), "r0 = r10\nr0 = 0\nexit");
}

#[test]
fn no_pointer_stored_into_map_value() {
    reject(
        &unpriv(),
        &format!("r6 = r10\n{LOOKUP}*(u64 *)(r0 +0) = r6\nout: r0 = 0\nexit"),
        "R6 leaks addr into map",
    );
    accept(
        &unpriv(),
        &format!("r6 = 5\n{LOOKUP}*(u64 *)(r0 +0) = r6\nout: r0 = 0\nexit"),
    );
}

#[test]
fn no_pointer_stored_into_context() {
    reject(
        &unpriv(),
        "r2 = r10\n*(u32 *)(r1 +48) = r2\nr0 = 0\nexit",
        "leaks addr into ctx",
    );
    accept(&unpriv(), "r2 = 7\n*(u32 *)(r1 +48) = r2\nr0 = 0\nexit");
}

#[test]
fn no_pointer_passed_as_helper_scalar() {
    let p = |arg: &str| {
        format!(
            "r1 = map[idx:2]\nr2 = 8\nr3 = 0\ncall bpf_ringbuf_reserve#131\nif r0 == 0 goto out\n\
             r1 = r0\nr2 = {arg}\ncall bpf_ringbuf_submit#132\nout: r0 = 0\nexit"
        )
    };
    reject(&unpriv(), &p("r10"), "R2 leaks addr into helper function");
    accept(&unpriv(), &p("0"));
}

#[test]
fn stack_must_be_initialized_before_reading() {
    reject(
        &unpriv(),
        "r0 = *(u64 *)(r10 -8)\nexit",
        "invalid read from stack",
    );
    accept(
        &unpriv(),
        "*(u64 *)(r10 -8) = 3\nr0 = *(u64 *)(r10 -8)\nexit",
    );
    // Helper arguments too.
    reject(
        &unpriv(),
        "r2 = r10\nr2 += -8\nr1 = map[idx:0]\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit",
        "invalid indirect read from stack",
    );
    accept(
        &unpriv(),
        "*(u32 *)(r10 -8) = 0\nr2 = r10\nr2 += -8\nr1 = map[idx:0]\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit",
    );
}

#[test]
fn no_loops() {
    reject(
        &unpriv(),
        "r0 = 0\nl: r0 += 1\nif r0 < 4 goto l\nexit",
        "back-edge from insn 2 to 1",
    );
    accept(
        &unpriv(),
        "r0 = 0\nr0 += 1\nif r0 < 4 goto l\nr0 = 1\nl: exit",
    );
}

#[test]
fn no_bpf_to_bpf_calls_or_callbacks() {
    reject(
        &unpriv(),
        "call f\nexit\nf: r0 = 0\nexit",
        "allowed for CAP_BPF",
    );
    reject(
        &unpriv(),
        "r1 = 4\nr2 = func[cb]\nr3 = 0\nr4 = 0\ncall bpf_loop#181\nr0 = 0\nexit\ncb: r0 = 0\nexit",
        "allowed for CAP_BPF",
    );
    accept(&unpriv(), "call bpf_get_prandom_u32#7\nr0 = 0\nexit");
}

#[test]
fn no_pointer_comparisons_except_null_checks() {
    reject(
        &unpriv(),
        "r0 = 0\nif r1 > r10 goto l\nl: exit",
        "pointer comparison prohibited",
    );
    accept(
        &unpriv(),
        &format!("{LOOKUP}r1 = *(u64 *)(r0 +0)\nout: r0 = 0\nexit"),
    );
}

#[test]
fn no_pointer_subtraction_or_partial_copies() {
    reject(
        &unpriv(),
        "r0 = r10\nr0 -= r1\nr0 = 0\nexit",
        "pointer -= pointer prohibited",
    );
    reject(
        &unpriv(),
        "w0 = w10\nr0 = 0\nexit",
        "partial copy of pointer",
    );
    accept(&unpriv(), "r0 = r10\nr0 += -8\nr0 = 0\nexit");
}

#[test]
fn pointer_arithmetic_stays_in_bounds() {
    reject(
        &unpriv(),
        &format!("{LOOKUP}r0 += 24\nr1 = *(u8 *)(r0 -20)\nout: r0 = 0\nexit"),
        "prohibited for !root",
    );
    accept(
        &unpriv(),
        &format!("{LOOKUP}r0 += 12\nr1 = *(u8 *)(r0 +0)\nout: r0 = 0\nexit"),
    );
    let var = "call bpf_get_prandom_u32#7\nr0 &= 8\nr1 = r10\nr1 += -16\nr1 += r0\n";
    reject(
        &unpriv(),
        &format!("{var}r0 = 0\nexit"),
        "variable stack access prohibited for !root",
    );
    accept(
        &unpriv(),
        "r1 = r10\nr1 += -16\n*(u64 *)(r1 +0) = 0\nr0 = 0\nexit",
    );
}

#[test]
fn spilled_pointers_are_not_corrupted() {
    reject(
        &unpriv(),
        "*(u64 *)(r10 -8) = r1\n*(u8 *)(r10 -8) = 0\nr0 = 0\nexit",
        "attempt to corrupt spilled pointer on stack",
    );
    accept(
        &unpriv(),
        "*(u64 *)(r10 -8) = r1\n*(u64 *)(r10 -8) = 0\nr0 = 0\nexit",
    );
}

#[test]
fn no_kfunc_calls() {
    let env = unpriv();
    reject(
        &env,
        "r1 = 0\ncall KF(bpf_throw)\nr0 = 0\nexit",
        "allowed for CAP_BPF",
    );
    accept(&env, "r0 = 0\nexit");
}

#[test]
fn privileged_accepts_what_unprivileged_refuses() {
    // The same programs load with the privileged profile (sanity check that
    // the rejections above are profile rules).
    accept(&sock(), "r0 = r10\nexit");
    accept(&sock(), "r0 = 0\nl: r0 += 1\nif r0 < 4 goto l\nexit");
    accept(&sock(), "call f\nexit\nf: r0 = 0\nexit");
    accept(&sock(), "r0 = *(u64 *)(r10 -8)\nexit");
}
