//! `may_goto`: each program frame has a budget of `MAY_GOTO_MAX_LOOPS`
//! fall-throughs, after which `may_goto` jumps. Every case runs on the checked
//! interpreter, the checked JIT and (when the checked run succeeded) both
//! trusted engines, which must all agree.

mod jit_common;
use jit_common::*;

use cordon_exec::ExecOptions;
use cordon_exec::conformance::conformance_helpers;
use cordon_isa::opcode::MAY_GOTO_MAX_LOOPS;
use cordon_isa::{Program, assemble};

fn prog(src: &str) -> Program {
    Program::new(assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"))).unwrap()
}

fn all_engines(src: &str) -> Result<u64, String> {
    let p = prog(src);
    let h = conformance_helpers();
    let opts = ExecOptions {
        instruction_budget: u64::MAX,
        ..ExecOptions::named("may_goto")
    };
    let i = interp_checked(&p, &h, &[], opts.clone());
    let j = jit_checked(&p, &h, &[], opts.clone());
    assert_eq!(i, j, "checked interpreter vs checked JIT");
    if i.0.is_ok() {
        // SAFETY: the checked run succeeded; these programs touch no memory.
        let (ti, tj) = unsafe { trusted_both(&p, &h, &[], opts) };
        assert_eq!(ti, i, "trusted interpreter vs checked");
        assert_eq!(tj, i, "trusted JIT vs checked");
    }
    i.0
}

#[test]
fn loop_ends_after_exactly_the_budget() {
    // while (1) { may_goto out; r0++; }
    let r = all_engines("mov %r0, 0\nl:\nmay_goto out\nadd %r0, 1\nja l\nout:\nexit");
    assert_eq!(r, Ok(MAY_GOTO_MAX_LOOPS));
}

#[test]
fn loop_that_exits_on_its_own_is_unaffected() {
    let r = all_engines(
        "mov %r0, 0\nmov %r1, 10\nl:\nmay_goto out\nadd %r0, 1\nsub %r1, 1\njne %r1, 0, l\nout:\nexit",
    );
    assert_eq!(r, Ok(10));
    // A may_goto whose budget is untouched falls through.
    assert_eq!(
        all_engines("mov %r0, 1\nmay_goto +1\nmov %r0, 2\nexit"),
        Ok(2)
    );
}

#[test]
fn each_frame_has_its_own_budget() {
    // main exhausts its budget, then calls f, which starts with a full one;
    // after the return main's budget is still exhausted.
    let src = "mov %r6, 0\n\
               l:\nmay_goto done\nadd %r6, 1\nja l\n\
               done:\ncall local f\nmov %r7, %r0\n\
               mov %r8, 0\nmay_goto skip\nmov %r8, 1\nskip:\n\
               mov %r0, %r6\nmul %r0, 100\nmul %r7, 10\nadd %r0, %r7\nadd %r0, %r8\nexit\n\
               f:\nmov %r0, 0\nmay_goto +1\nmov %r0, 1\nexit";
    assert_eq!(all_engines(src), Ok(MAY_GOTO_MAX_LOOPS * 100 + 10));
}

#[test]
fn instruction_budget_still_applies() {
    // The checked instruction budget stops a may_goto loop like any other.
    let p = prog("mov %r0, 0\nl:\nmay_goto out\nadd %r0, 1\nja l\nout:\nexit");
    let h = conformance_helpers();
    let opts = ExecOptions {
        instruction_budget: 1000,
        ..ExecOptions::named("may_goto")
    };
    let i = interp_checked(&p, &h, &[], opts.clone());
    let j = jit_checked(&p, &h, &[], opts);
    assert_eq!(i, j);
    assert!(i.0.is_err(), "{i:?}");
}
