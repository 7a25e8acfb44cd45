//! Helper calls checked against the registry, static and global
//! subprograms, callbacks.

mod common;
use common::*;
use cordon_verifier::{ArgKind, GlobalFuncSig, GlobalRet};

const KEY: &str = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\n";

#[test]
fn unknown_helper() {
    reject(
        &sock(),
        "call 9999\nr0 = 0\nexit",
        "invalid func unknown#9999",
    );
}

#[test]
fn helper_not_for_program_type() {
    reject(
        &sock(),
        "r2 = 0\ncall bpf_xdp_adjust_head#44\nr0 = 0\nexit",
        "program of this type cannot use helper bpf_xdp_adjust_head#44",
    );
}

#[test]
fn helper_clobbers_caller_saved() {
    reject(
        &sock(),
        "r6 = 1\nr1 = 1\ncall bpf_ktime_get_ns#5\nr0 = r1\nexit",
        "R1 !read_ok",
    );
    accept(&sock(), "r6 = 1\ncall bpf_ktime_get_ns#5\nr0 = r6\nexit");
}

#[test]
fn map_pointer_argument_type() {
    reject(
        &sock(),
        &format!("{KEY}r1 = 0\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit"),
        "R1 type=scalar expected=map_ptr",
    );
    reject(
        &sock(),
        &format!("{KEY}r1 = map[idx:0]\nr2 = 0\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit"),
        "R2 type=scalar expected=fp",
    );
}

#[test]
fn key_size_checked() {
    // Key of map 0 is 4 bytes: a pointer to the last 2 bytes of the stack is too short.
    reject(
        &sock(),
        "r2 = r10\nr2 += -2\nr1 = map[idx:0]\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit",
        "invalid indirect access to stack R2 off=-2 size=4",
    );
}

#[test]
fn map_update_checks_value() {
    let p = |vsize: i32| {
        format!(
            "{KEY}*(u64 *)(r10 -16) = 0\nr3 = r10\nr3 += -{vsize}\nr1 = map[idx:0]\nr4 = 0\ncall bpf_map_update_elem#2\nr0 = 0\nexit"
        )
    };
    accept(&sock(), &p(16));
    reject(
        &sock(),
        &p(4),
        "invalid indirect access to stack R3 off=-4 size=8",
    );
}

#[test]
fn map_type_compatibility() {
    reject(
        &sock(),
        &format!("{KEY}r1 = map[idx:2]\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit"),
        "cannot pass map_type 27 into func bpf_map_lookup_elem#1",
    );
    reject(
        &sock(),
        "r1 = r1\nr2 = map[idx:0]\nr3 = 0\ncall bpf_tail_call#12\nr0 = 0\nexit",
        "cannot pass map_type 1 into func bpf_tail_call#12",
    );
    accept(
        &sock(),
        "r2 = map[idx:3]\nr3 = 0\ncall bpf_tail_call#12\nr0 = 0\nexit",
    );
}

#[test]
fn queue_push_pop() {
    accept(
        &sock(),
        "*(u64 *)(r10 -8) = 7\nr2 = r10\nr2 += -8\nr1 = map[idx:5]\nr3 = 0\ncall bpf_map_push_elem#87\nr0 = 0\nexit",
    );
    // pop writes the value: uninitialized stack is fine (even unprivileged checks are about reads).
    accept(
        &sock(),
        "r2 = r10\nr2 += -8\nr1 = map[idx:5]\ncall bpf_map_pop_elem#88\nr0 = *(u64 *)(r10 -8)\nexit",
    );
    reject(
        &sock(),
        &format!("{KEY}r1 = map[idx:5]\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit"),
        "cannot pass map_type 22",
    );
}

#[test]
fn mem_and_size_arguments() {
    let p = |size: &str| {
        format!(
            "*(u64 *)(r10 -8) = 0\nr1 = r10\nr1 += -8\nr2 = {size}\ncall bpf_trace_printk#6\nr0 = 0\nexit"
        )
    };
    accept(&sock(), &p("8"));
    reject(
        &sock(),
        &p("9"),
        "invalid indirect access to stack R1 off=-8 size=9",
    );
    reject(&sock(), &p("0"), "R2 invalid zero-sized read");
    reject(
        &sock(),
        "*(u64 *)(r10 -8) = 0\ncall bpf_get_prandom_u32#7\nw2 = w0\nr1 = r10\nr1 += -8\ncall bpf_trace_printk#6\nr0 = 0\nexit",
        "R2 invalid zero-sized read",
    );
    reject(
        &sock(),
        "*(u64 *)(r10 -8) = 0\ncall bpf_get_prandom_u32#7\nw2 = w0\nr2 |= 1\nr1 = r10\nr1 += -8\ncall bpf_trace_printk#6\nr0 = 0\nexit",
        "R2 unbounded memory access, use 'var &= const' or 'if (var < const)'",
    );
    reject(
        &sock(),
        "*(u64 *)(r10 -8) = 0\ncall bpf_get_prandom_u32#7\nw2 = w0\nr2 &= 15\nr2 |= 1\nr1 = r10\nr1 += -8\ncall bpf_trace_printk#6\nr0 = 0\nexit",
        "invalid indirect access to stack R1 off=-8 size=15",
    );
    accept(
        &sock(),
        "*(u64 *)(r10 -8) = 0\ncall bpf_get_prandom_u32#7\nr2 = r0\nr2 &= 7\nr2 += 1\nr1 = r10\nr1 += -8\ncall bpf_trace_printk#6\nr0 = 0\nexit",
    );
}

#[test]
fn negative_size_rejected() {
    reject(
        &sock(),
        "*(u64 *)(r10 -8) = 0\ncall bpf_get_prandom_u32#7\nr2 = r0\nr2 <<= 32\nr2 s>>= 32\nr1 = r10\nr1 += -8\ncall bpf_trace_printk#6\nr0 = 0\nexit",
        "R2 min value is negative",
    );
}

#[test]
fn csum_diff_null_memory() {
    accept(
        &tc(),
        "r1 = 0\nr2 = 0\nr3 = 0\nr4 = 0\nr5 = 0\ncall bpf_csum_diff#28\nr0 = 0\nexit",
    );
    reject(
        &tc(),
        "r1 = 0\nr2 = 4\nr3 = 0\nr4 = 0\nr5 = 0\ncall bpf_csum_diff#28\nr0 = 0\nexit",
        "R1 is NULL",
    );
}

#[test]
fn skb_load_bytes_writes_stack() {
    accept(
        &sock(),
        "r2 = 0\nr3 = r10\nr3 += -16\nr4 = 16\ncall bpf_skb_load_bytes#26\nr0 = *(u64 *)(r10 -16)\nexit",
    );
}

#[test]
fn ctx_argument_must_be_unmodified() {
    reject(
        &tc(),
        "r1 += 4\nr2 = 0\nr3 = 0\nr4 = r10\nr4 += -8\nr5 = 0\ncall bpf_skb_store_bytes#9\nr0 = 0\nexit",
        "dereference of modified ctx ptr R1 off=4 disallowed",
    );
    reject(
        &tc(),
        "r1 = 0\ncall bpf_l3_csum_replace#10\nr0 = 0\nexit",
        "R1 type=scalar expected=ctx",
    );
}

#[test]
fn unprivileged_pointer_to_anything_arg() {
    let p = |flags: &str| {
        format!(
            "{KEY}*(u64 *)(r10 -16) = 0\nr3 = r10\nr3 += -16\nr1 = map[idx:0]\nr4 = {flags}\ncall bpf_map_update_elem#2\nr0 = 0\nexit"
        )
    };
    reject(&unpriv(), &p("r10"), "R4 leaks addr into helper function");
    accept(&unpriv(), &p("0"));
}

// ---------- subprograms ----------

#[test]
fn static_subprog_sees_caller_args() {
    accept(
        &sock(),
        "r1 = r10\nr1 += -8\ncall f\nr0 = *(u64 *)(r10 -8)\nexit\nf: *(u64 *)(r1 +0) = 3\nr0 = 0\nexit",
    );
    // The callee cannot read caller registers beyond r1-r5.
    reject(
        &sock(),
        "r6 = 1\ncall f\nexit\nf: r0 = r6\nexit",
        "R6 !read_ok",
    );
}

#[test]
fn subprog_return_value() {
    let body = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\nif r0 == 0 goto out\nr0 += r6\nr1 = *(u64 *)(r0 +0)\nout: r0 = 0\nexit";
    accept(
        &sock(),
        &format!("call f\nr6 = r0\n{body}\nf: r0 = 8\nexit"),
    );
    reject(
        &sock(),
        &format!("call f\nr6 = r0\n{body}\nf: r0 = 9\nexit"),
        "off=9 size=8",
    );
}

#[test]
fn subprog_cannot_return_own_stack() {
    reject(
        &sock(),
        "call f\nr0 = 0\nexit\nf: r0 = r10\nexit",
        "cannot return stack pointer to the caller",
    );
    // Linux 6.18 refuses the caller's stack pointer too.
    reject(
        &sock(),
        "r1 = r10\ncall f\nr0 = 0\nexit\nf: r0 = r1\nexit",
        "cannot return stack pointer to the caller",
    );
    accept(&sock(), "r1 = r10\ncall f\nr0 = 0\nexit\nf: r0 = 0\nexit");
}

#[test]
fn callee_clobbers_r1_to_r5() {
    reject(
        &sock(),
        "r1 = 1\ncall f\nr0 = r1\nexit\nf: r0 = 0\nexit",
        "R1 !read_ok",
    );
}

#[test]
fn subprog_verified_per_call_context() {
    // The subprogram dereferences its argument: fine with a stack pointer, not with a scalar.
    let p = |arg: &str| {
        format!(
            "*(u64 *)(r10 -8) = 0\nr1 = {arg}\ncall f\nr0 = 0\nexit\nf: r0 = *(u64 *)(r1 -8)\nexit"
        )
    };
    accept(&sock(), &p("r10"));
    reject(&sock(), &p("0"), "R1 invalid mem access 'scalar'");
}

// ---------- global functions ----------

fn global_env(args: Vec<ArgKind>) -> cordon_verifier::VerifyEnv {
    sock().with_global(
        4,
        GlobalFuncSig {
            name: "g".into(),
            args,
            ret: GlobalRet::Scalar,
        },
    )
}

#[test]
fn global_function_verified_from_signature() {
    // g starts at insn 5.
    let text =
        "r1 = r10\nr1 += -8\n*(u64 *)(r10 -8) = 0\ncall g\nexit\ng: r0 = *(u64 *)(r1 +0)\nexit";
    let e = sock().with_global(
        5,
        GlobalFuncSig {
            name: "g".into(),
            args: vec![ArgKind::PtrToMem {
                size: 8,
                nullable: false,
            }],
            ret: GlobalRet::Scalar,
        },
    );
    accept(&e, text);
    // The body may not read beyond the declared size.
    let bad =
        "r1 = r10\nr1 += -8\n*(u64 *)(r10 -8) = 0\ncall g\nexit\ng: r0 = *(u64 *)(r1 +8)\nexit";
    reject(&e, bad, "invalid access to memory, mem_size=8 off=8 size=8");
    // The caller must pass enough memory.
    let short =
        "r1 = r10\nr1 += -4\n*(u64 *)(r10 -8) = 0\ncall g\nexit\ng: r0 = *(u64 *)(r1 +0)\nexit";
    reject(
        &e,
        short,
        "invalid indirect access to stack R1 off=-4 size=8",
    );
}

#[test]
fn global_function_scalar_args_and_result() {
    let e = global_env(vec![ArgKind::Scalar]);
    // g starts at insn 4.
    let text = "r1 = 1\ncall g\nr0 &= 1\nexit\ng: r0 = r1\nexit";
    accept(&e, text);
    reject(
        &e,
        "r1 = r10\ncall g\nr0 &= 1\nexit\ng: r0 = r1\nexit",
        "R1 is not a scalar",
    );
    // Nothing is known about the result in the caller.
    reject(
        &e,
        "r1 = 1\ncall g\nr0 = *(u8 *)(r0 +0)\nexit\ng: r0 = r1\nexit",
        "R0 invalid mem access 'scalar'",
    );
    // A global function must return a scalar.
    reject(
        &e,
        "r1 = 1\ncall g\nr0 &= 1\nexit\ng: r0 = r10\nexit",
        "At subprogram exit the register R0 is not a scalar value (fp)",
    );
}

#[test]
fn global_function_nullable_mem() {
    let e = sock().with_global(
        3,
        GlobalFuncSig {
            name: "g".into(),
            args: vec![ArgKind::PtrToMem {
                size: 8,
                nullable: true,
            }],
            ret: GlobalRet::Scalar,
        },
    );
    accept(
        &e,
        "r1 = 0\ncall g\nexit\ng: if r1 == 0 goto n\nr0 = *(u64 *)(r1 +0)\nexit\nn: r0 = 0\nexit",
    );
    reject(
        &e,
        "r1 = 0\ncall g\nexit\ng: r0 = *(u64 *)(r1 +0)\nexit",
        "R1 invalid mem access 'mem_or_null'",
    );
}

#[test]
fn global_function_ctx_arg() {
    let e = sock().with_global(
        2,
        GlobalFuncSig {
            name: "g".into(),
            args: vec![ArgKind::PtrToCtx],
            ret: GlobalRet::Scalar,
        },
    );
    accept(&e, "call g\nexit\ng: r0 = *(u32 *)(r1 +0)\nexit");
    let e = sock().with_global(
        3,
        GlobalFuncSig {
            name: "g".into(),
            args: vec![ArgKind::PtrToCtx],
            ret: GlobalRet::Scalar,
        },
    );
    reject(
        &e,
        "r1 = 0\ncall g\nexit\ng: r0 = 0\nexit",
        "arg#0 expected pointer to ctx, but got scalar",
    );
}

// ---------- callbacks ----------

#[test]
fn bpf_loop_callback() {
    let p = |cb: &str| {
        format!(
            "r1 = 10\nr2 = func[cb]\nr3 = 0\nr4 = 0\ncall bpf_loop#181\nr0 = 0\nexit\ncb: {cb}\nexit"
        )
    };
    accept(&sock(), &p("r0 = 0"));
    accept(&sock(), &p("r0 = 1"));
    reject(
        &sock(),
        &p("r0 = 2"),
        "At callback return the register R0 has 2 should have been in [0, 1]",
    );
    reject(
        &sock(),
        &p("r0 = r10"),
        "At callback return the register R0",
    );
}

#[test]
fn bpf_loop_callback_ctx_on_stack() {
    // The callback increments a counter through the ctx pointer (caller stack).
    let text = "*(u64 *)(r10 -8) = 0\nr1 = 100\nr2 = func[cb]\nr3 = r10\nr3 += -8\nr4 = 0\ncall bpf_loop#181\nr0 = *(u64 *)(r10 -8)\nexit\n\
                cb: r3 = *(u64 *)(r2 +0)\nr3 += 1\n*(u64 *)(r2 +0) = r3\nr0 = 0\nexit";
    accept(&sock(), text);
    // Writing beyond the ctx object is caught in the callback.
    let bad = text.replace("*(u64 *)(r2 +0) = r3", "*(u64 *)(r2 +8) = r3");
    reject(&sock(), &bad, "invalid write to stack R2 off=0 size=8");
}

#[test]
fn bpf_loop_needs_function_pointer() {
    reject(
        &sock(),
        "r1 = 10\nr2 = 0\nr3 = 0\nr4 = 0\ncall bpf_loop#181\nr0 = 0\nexit",
        "R2 type=scalar expected=func",
    );
}
