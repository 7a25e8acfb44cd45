//! Bounded loops, state pruning, infinite-loop detection, complexity limit.

mod common;
use common::*;
use cordon_verifier::Limits;

#[test]
fn bounded_loop_accepted() {
    let f = accept(&sock(), "r0 = 0\nl: r0 += 1\nif r0 < 4 goto l\nexit");
    assert_eq!(f.back_edges, vec![(2, 1)]);
}

#[test]
fn bounded_loop_body_checked_every_iteration() {
    // Iteration i reads fp-8*(i+1); the 64th iteration leaves the stack.
    let text = |n: u32| {
        format!(
            "r1 = r10\nr2 = 0\nl: r1 += -8\n*(u64 *)(r1 +0) = 0\nr2 += 1\nif r2 < {n} goto l\nr0 = 0\nexit"
        )
    };
    accept(&sock(), &text(64));
    reject(
        &sock(),
        &text(65),
        "invalid write to stack R1 off=-520 size=8",
    );
}

#[test]
fn infinite_loop_detected() {
    reject(
        &sock(),
        "r0 = 0\nl: goto l",
        "infinite loop detected at insn 1",
    );
    reject(
        &sock(),
        "r0 = 0\nl: r1 = 1\nif r0 == 0 goto l\nexit",
        "infinite loop detected at insn 1",
    );
}

#[test]
fn unbounded_loop_hits_complexity_limit() {
    let e = reject(
        &sock(),
        "r0 = 0\nl: r0 += 1\ngoto l",
        "BPF program is too large. Processed 1000001 insn",
    );
    assert!(e.insn.is_some());
}

#[test]
fn complexity_limit_is_configurable() {
    let mut e = sock();
    e.limits = Limits {
        max_insn_processed: 1000,
        ..Limits::default()
    };
    reject(
        &e,
        "r0 = 0\nl: r0 += 1\nif r0 < 2000 goto l\nexit",
        "BPF program is too large. Processed 1001 insn",
    );
    accept(&e, "r0 = 0\nl: r0 += 1\nif r0 < 100 goto l\nexit");
}

#[test]
fn pruning_keeps_diamonds_linear() {
    // 30 independent if/else diamonds: 2^30 paths without pruning.
    let mut text = String::from("call bpf_get_prandom_u32#7\nr6 = r0\nr0 = 0\n");
    for _ in 0..30 {
        text += "if r6 > 5 goto pc+1\nr7 = 1\n";
    }
    text += "r0 = 0\nexit";
    let f = accept(&sock(), &text);
    assert!(
        f.stats.insn_processed < 500,
        "processed {}",
        f.stats.insn_processed
    );
    assert!(f.stats.total_states > 0);
}

#[test]
fn pruning_respects_differences_that_matter() {
    // One branch leaves r7 a scalar, the other a stack pointer; the join must not be pruned.
    reject(
        &sock(),
        "call bpf_get_prandom_u32#7\nr7 = r10\nif r0 > 5 goto pc+1\nr7 = 0\nr1 = 1\nr0 = *(u64 *)(r7 -8)\nexit",
        "R7 invalid mem access 'scalar'",
    );
    // Different constants: the larger one must be checked too.
    reject(
        &sock(),
        "call bpf_get_prandom_u32#7\nr7 = 8\nif r0 > 5 goto pc+1\nr7 = 16\nr1 = r10\nr1 += -16\nr1 += r7\nr0 = *(u64 *)(r1 +0)\nr0 = 0\nexit",
        "invalid read from stack R1 off=0 size=8",
    );
}

#[test]
fn loop_with_bounded_counter_and_accumulator() {
    accept(
        &sock(),
        "r0 = 0\nr1 = 0\nl: r0 += r1\nr1 += 1\nif r1 < 50 goto l\nexit",
    );
}

#[test]
fn nested_loops() {
    accept(
        &sock(),
        "r0 = 0\nr1 = 0\nouter: r2 = 0\ninner: r0 += 1\nr2 += 1\nif r2 < 5 goto inner\nr1 += 1\nif r1 < 5 goto outer\nexit",
    );
}

#[test]
fn loop_over_map_value_bytes() {
    accept(
        &sock(),
        "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\nif r0 == 0 goto out\n\
         r1 = 0\nl: r2 = r0\nr2 += r1\nr3 = *(u8 *)(r2 +0)\nr1 += 1\nif r1 < 16 goto l\nout: r0 = 0\nexit",
    );
    reject(
        &sock(),
        "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\nif r0 == 0 goto out\n\
         r1 = 0\nl: r2 = r0\nr2 += r1\nr3 = *(u8 *)(r2 +0)\nr1 += 1\nif r1 < 17 goto l\nout: r0 = 0\nexit",
        "invalid access to map value, value_size=16 off=16 size=1",
    );
}

#[test]
fn jump_sequence_limit() {
    let mut e = sock();
    e.limits = Limits {
        max_jmp_seq: 4,
        ..Limits::default()
    };
    let mut text = String::from("call bpf_get_prandom_u32#7\nr6 = r0\n");
    for i in 0..8 {
        text += &format!("if r6 == {i} goto pc+1\nr7 = {i}\n");
    }
    text += "r0 = 0\nexit";
    // Every undecided branch waits on the stack while the fall-through runs first.
    reject(&e, &text, "The sequence of 4 jumps is too complex.");
    accept(&sock(), &text);
}

/// A bpf_loop callback whose iterations revisit the same states is not an
/// infinite loop: iterations are told apart (Linux's callback_unroll_depth)
/// and converge at the call site. (tests/bpf/tcp_opts.o has this shape.)
#[test]
fn callback_iterations_are_not_an_infinite_loop() {
    let text = "*(u64 *)(r10 -8) = 0\nr1 = 16\nr2 = func[cb]\nr3 = r10\nr3 += -8\nr4 = 0\n\
                call bpf_loop#181\nr0 = 0\nexit\n\
                cb: r3 = *(u64 *)(r2 +0)\nif r3 > 7 goto done\nr3 += 1\n*(u64 *)(r2 +0) = r3\n\
                r0 = 0\nexit\ndone: r0 = 1\nexit";
    accept(&sock(), text);
}
