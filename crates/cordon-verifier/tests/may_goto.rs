//! `may_goto` (Linux 6.9+): both edges are explored; a loop whose only exit is
//! a `may_goto` converges; each subprogram using it gets 8 bytes of hidden stack.
//! `accept`/`reject` also compare the verdict with Linux when it is available.

mod common;
use common::*;

const GUARDED_LOOP: &str = "r0 = 0\nl: may_goto out\nr0 += 1\ngoto l\nout: exit";

#[test]
fn loop_bounded_only_by_may_goto_is_accepted() {
    let f = accept(&sock(), GUARDED_LOOP);
    // The hidden loop counter: 8 bytes of stack in the using subprogram.
    assert_eq!(f.subprogs[0].stack_depth, 8);
}

#[test]
fn same_loop_without_may_goto_is_an_infinite_loop() {
    reject(
        &sock(),
        "r0 = 0\nl: r0 = 0\ngoto l",
        "infinite loop detected",
    );
}

#[test]
fn may_goto_that_cannot_leave_the_loop_is_still_infinite() {
    // Both edges of the may_goto lead back into the loop.
    reject(
        &sock(),
        "r0 = 0\nl: may_goto pc+0\ngoto l",
        "infinite loop detected",
    );
}

#[test]
fn stack_depth_adds_the_counter_to_own_stack() {
    let f = accept(
        &sock(),
        "*(u64 *)(r10 -16) = 0\nr0 = 0\nl: may_goto out\nr0 += 1\ngoto l\nout: exit",
    );
    assert_eq!(f.subprogs[0].stack_depth, 24);
    let f = accept(&sock(), "*(u64 *)(r10 -16) = 0\nr0 = 0\nexit");
    assert_eq!(f.subprogs[0].stack_depth, 16);
}

#[test]
fn unsafe_access_on_the_fall_through_is_caught() {
    reject(
        &sock(),
        "r0 = 0\nmay_goto pc+2\nr0 = *(u64 *)(r10 +8)\nexit\nexit",
        "invalid read from stack",
    );
}

#[test]
fn unsafe_access_on_the_jump_target_is_caught() {
    reject(
        &sock(),
        "r0 = 0\nmay_goto pc+1\nexit\nr0 = *(u64 *)(r10 +8)\nexit",
        "invalid read from stack",
    );
}

#[test]
fn every_iteration_of_a_may_goto_loop_is_checked() {
    // The pointer walks down the stack until it leaves it.
    reject(
        &sock(),
        "r1 = r10\nl: may_goto out\nr1 += -8\n*(u64 *)(r1 +0) = 0\ngoto l\nout: r0 = 0\nexit",
        "invalid write to stack",
    );
}

#[test]
fn loop_counter_in_a_may_goto_loop_is_widened() {
    // r2 counts iterations; without widening every iteration would be a new state.
    accept(
        &sock(),
        "r2 = 0\nl: may_goto out\nr2 += 1\ngoto l\nout: r0 = r2\nexit",
    );
}

#[test]
fn only_subprograms_using_may_goto_get_the_counter() {
    let f = accept(
        &sock(),
        "call pc+2\nr0 = 0\nexit\nl: may_goto out\ngoto l\nout: r0 = 0\nexit",
    );
    assert_eq!(f.subprogs[0].stack_depth, 0);
    assert_eq!(f.subprogs[1].stack_depth, 8);
    // Frames are rounded to 16 bytes in chain depths.
    assert_eq!(f.subprogs[0].chain_stack_depth, 16);
}
