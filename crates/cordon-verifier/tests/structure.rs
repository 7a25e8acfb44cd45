//! Structure checks: jumps, fall-through, reachability, subprograms, call
//! depth, combined stack, tail-call stack rule.

mod common;
use common::*;
use cordon_isa::{Insn, Program};
use cordon_verifier::{Limits, verify};

#[test]
fn minimal_program() {
    accept(&sock(), "r0 = 0\nexit");
}

#[test]
fn fall_through_off_the_end() {
    reject(
        &sock(),
        "r0 = 0\nr0 += 1",
        "last insn is not an exit or jmp",
    );
}

#[test]
fn unreachable_insn() {
    reject(&sock(), "r0 = 0\nexit\nr0 = 1\nexit", "unreachable insn 2");
}

#[test]
fn jump_over_insn_is_unreachable() {
    reject(
        &sock(),
        "r0 = 0\ngoto pc+1\nr0 = 1\nexit",
        "unreachable insn 2",
    );
}

#[test]
fn conditional_jump_both_reachable() {
    accept(&sock(), "r0 = 0\nif r1 == 0 goto pc+1\nr0 = 1\nexit");
}

#[test]
fn subprogram_fall_through_rejected() {
    // The subprogram at 3 is called; main's last insn (2) is not an exit.
    reject(
        &sock(),
        "r0 = 0\ncall pc+1\nr0 = 1\nr0 = 2\nexit",
        "last insn is not an exit or jmp",
    );
}

#[test]
fn jump_across_subprogram_rejected() {
    reject(
        &sock(),
        "call f\nif r0 == 0 goto g\nexit\nf: r0 = 1\ng: exit",
        "jump out of range from insn 1 to 4",
    );
}

#[test]
fn static_call_ok() {
    let f = accept(&sock(), "r1 = 5\ncall f\nexit\nf: r0 = r1\nexit");
    assert_eq!(f.subprogs.len(), 2);
    assert_eq!(f.subprogs[1].start, 3);
}

#[test]
fn uncalled_subprogram_is_unreachable() {
    // Code after main's exit that nobody calls.
    reject(
        &sock(),
        "r0 = 0\nexit\nf: r0 = 1\nexit",
        "unreachable insn 2",
    );
}

#[test]
fn recursion_rejected() {
    reject(
        &sock(),
        "call f\nexit\nf: call f\nr0 = 0\nexit",
        "back-edge from insn 2 to 2",
    );
}

#[test]
fn mutual_recursion_rejected() {
    reject(
        &sock(),
        "call f\nexit\nf: call g\nr0 = 0\nexit\ng: call f\nr0 = 0\nexit",
        "back-edge",
    );
}

#[test]
fn callx_rejected() {
    let insns = vec![
        Insn::new(0xb7, 0, 0, 0, 0),
        Insn::new(0x8d, 1, 0, 0, 0),
        Insn::new(0x95, 0, 0, 0, 0),
    ];
    let p = Program::new(insns).unwrap();
    let e = verify(&p, &sock()).unwrap_err();
    // Linux's message for call-through-register (not supported by Linux).
    assert_eq!(e.message, "BPF_CALL uses reserved fields");
    assert_eq!(e.insn, Some(1));
    reject(
        &xdp(),
        "r2 = 0\ncallx r2\nr0 = 0\nexit",
        "BPF_CALL uses reserved fields",
    );
    accept(&xdp(), "r2 = 0\ncall bpf_get_prandom_u32#7\nr0 = 0\nexit");
}

fn chain(depth: usize, frame_bytes: u32) -> String {
    // main -> f1 -> f2 ... each using `frame_bytes` of stack.
    let mut s = String::new();
    for i in 0..depth {
        if frame_bytes > 0 {
            s += &format!("*(u64 *)(r10 -{frame_bytes}) = 0\n");
        }
        if i + 1 < depth {
            s += &format!("call f{}\n", i + 1);
        }
        s += "r0 = 0\nexit\n";
        if i + 1 < depth {
            s += &format!("f{}:\n", i + 1);
        }
    }
    s
}

#[test]
fn eight_frames_ok_nine_rejected() {
    accept(&sock(), &chain(8, 0));
    reject(
        &sock(),
        &chain(9, 0),
        "the call stack of 9 frames is too deep",
    );
}

#[test]
fn combined_stack_limit() {
    // 3 frames x 160 bytes = 480 <= 512.
    let f = accept(&sock(), &chain(3, 160));
    assert_eq!(f.max_stack_depth, 480);
    assert_eq!(f.subprogs[0].stack_depth, 160);
    // 4 x 160 = 640 > 512.
    reject(
        &sock(),
        &chain(4, 160),
        "combined stack size of 4 calls is 640. Too large",
    );
}

#[test]
fn combined_stack_limit_is_configurable() {
    let mut e = sock();
    e.limits = Limits {
        max_stack: 1024,
        ..Limits::default()
    };
    accept(&e, &chain(4, 160));
}

#[test]
fn stack_rounding_in_chains() {
    // 8 bytes round up to 16 per frame.
    let f = accept(&sock(), &chain(2, 8));
    assert_eq!(f.subprogs[0].chain_stack_depth, 32);
    assert_eq!(f.subprogs[1].chain_stack_depth, 16);
    assert_eq!(f.subprogs[0].chain_frames, 2);
}

#[test]
fn tail_call_stack_rule() {
    // The callee receives the ctx in r1 and tail-calls with it.
    let tail = |caller: u32| {
        format!(
            "*(u64 *)(r10 -{caller}) = 0\ncall f\nr0 = 0\nexit\n\
             f: r2 = map[idx:3]\nr3 = 0\ncall bpf_tail_call#12\nr0 = 0\nexit"
        )
    };
    accept(&sock(), &tail(240));
    reject(
        &sock(),
        &tail(256),
        "tail_calls are not allowed when call stack of previous frames is 256 bytes. Too large",
    );
}

#[test]
fn subprog_stack_used_through_pointer_counts_for_caller() {
    let f = accept(
        &sock(),
        "r1 = r10\nr1 += -64\ncall f\nr0 = 0\nexit\nf: *(u64 *)(r1 +0) = 1\nr0 = 0\nexit",
    );
    assert_eq!(f.subprogs[0].stack_depth, 64);
    assert_eq!(f.subprogs[1].stack_depth, 0);
}

#[test]
fn unprivileged_rejects_bpf_to_bpf_calls() {
    reject(
        &unpriv(),
        "call f\nexit\nf: r0 = 0\nexit",
        "allowed for CAP_BPF",
    );
}

#[test]
fn unprivileged_rejects_back_edges() {
    reject(
        &unpriv(),
        "r0 = 0\nl: r0 += 1\nif r0 < 4 goto l\nexit",
        "back-edge from insn 2 to 1",
    );
}

#[test]
fn lddw_func_address_creates_subprogram() {
    let f = accept(
        &sock(),
        "r1 = 4\nr2 = func[cb]\nr3 = 0\nr4 = 0\ncall bpf_loop#181\nr0 = 0\nexit\ncb: r0 = 0\nexit",
    );
    assert!(f.subprogs[1].is_callback);
}

#[test]
fn caller_stack_recorded_per_subprogram() {
    // main (64) -> f (32) -> g; main -> g directly too.
    let f = accept(
        &sock(),
        "*(u64 *)(r10 -64) = 0\ncall f\ncall g\nr0 = 0\nexit\n\
         f: *(u64 *)(r10 -32) = 0\ncall g\nr0 = 0\nexit\n\
         g: r0 = 0\nexit",
    );
    assert_eq!(f.subprogs[0].caller_stack, 0);
    assert_eq!(f.subprogs[1].caller_stack, 64);
    assert_eq!(f.subprogs[2].caller_stack, 96);
}

/// Map references are checked for every `lddw` at load time, even in code
/// no path reaches (found by differential fuzzing against Linux).
#[test]
fn map_references_checked_in_dead_code() {
    reject(
        &sock(),
        "r0 = 0\nif r0 == 0 goto l\nr1 = map[idx:99]\nl: exit",
        "fd 99 is not pointing to valid bpf_map",
    );
    accept(
        &sock(),
        "r0 = 0\nif r0 == 0 goto l\nr1 = map[idx:1]\nl: exit",
    );
    // Direct value access checks too (map 0 is a hash map).
    reject(
        &sock(),
        "r0 = 0\nif r0 == 0 goto l\nr1 = map[idx:0][0]+0\nl: exit",
        "does not support direct value access",
    );
}
