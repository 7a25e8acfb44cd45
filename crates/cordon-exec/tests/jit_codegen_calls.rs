//! Status checks after local calls (`jit/compile.rs`): a subprogram whose
//! helper calls are all specialised fast paths cannot stop the program, so its
//! callers skip the `status` test; a subprogram with a generic helper call
//! that stops the program still stops it at once, on every engine.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use cordon_exec::jit::JitExecutable;
use cordon_exec::{Abort, CallSites, CallSpec, DirectFn, ExecOptions, Executable, HelperRegistry};
use cordon_isa::Insn;
use cordon_isa::opcode::*;

unsafe extern "C" fn twice(a: u64) -> u64 {
    a * 2
}

/// main: r6 = 0; 4 x (r1 = r6 + 1; call sub; r6 += r0); call 2; r0 = r6; exit.
/// sub: call 1 (with r1); exit.
fn prog() -> Vec<Insn> {
    let mut v = vec![mov64(6, 0)];
    for _ in 0..4 {
        v.push(mov64r(1, 6));
        v.push(alu64_imm(ALU_ADD, 1, 1));
        v.push(call_local(0)); // patched below
        v.push(alu64_reg(ALU_ADD, 6, 0));
    }
    v.push(call(2));
    v.push(mov64r(0, 6));
    v.push(exit());
    let sub = v.len();
    for (pc, i) in v.iter_mut().enumerate() {
        if *i == call_local(0) {
            *i = call_local((sub - pc - 1) as i32);
        }
    }
    v.push(call(1));
    v.push(exit());
    v
}

const SUB_CALL: usize = 20;

/// Helper 1 doubles r1 unless r1 == 3, where it stops the program with 1000;
/// helper 2 counts its calls (it only runs when no stop happened).
fn helpers(after: &Arc<AtomicU64>) -> HelperRegistry {
    let mut h = HelperRegistry::new();
    h.register(1, "double_or_stop", |_, a| {
        if a[0] == 3 {
            Err(Abort::Stop(1000))
        } else {
            Ok(a[0] * 2)
        }
    });
    let c = after.clone();
    h.register(2, "after", move |_, _| {
        c.fetch_add(1, Ordering::Relaxed);
        Ok(0)
    });
    h
}

fn with_sites(sites: CallSites) -> ExecOptions {
    ExecOptions {
        call_sites: sites,
        ..ExecOptions::default()
    }
}

fn direct_sites(p: &cordon_isa::Program) -> CallSites {
    let mut b = CallSites::builder(p);
    // SAFETY: `twice` reads nothing but its argument.
    unsafe {
        b.specialise(
            SUB_CALL,
            CallSpec::Direct {
                func: DirectFn::A1(twice),
                bind: None,
            },
        )
    }
    .unwrap();
    b.build()
}

#[test]
fn the_program_has_its_subprogram_call_where_the_tests_expect() {
    let v = prog();
    assert_eq!(v[SUB_CALL], call(1));
    assert_eq!(v.len(), SUB_CALL + 2);
}

#[test]
fn a_generic_helper_stopping_inside_a_subprogram_stops_the_caller_at_once() {
    let p = program(&prog());
    let after = Arc::new(AtomicU64::new(0));
    let h = helpers(&after);
    // SAFETY: the program touches no memory.
    let (i, j) = unsafe {
        (
            Executable::trusted(&p, &h, ExecOptions::default()).unwrap(),
            JitExecutable::trusted(&p, &h, ExecOptions::default()).unwrap(),
        )
    };
    let ci = Executable::checked(&p, &h, ExecOptions::default()).unwrap();
    let cj = JitExecutable::checked(&p, &h, ExecOptions::default()).unwrap();
    // r1 = 1 -> 2 (r6 = 2), r1 = 3 -> stop with 1000.
    assert_eq!(i.run(&mut []).unwrap(), 1000);
    assert_eq!(j.run(&mut []).unwrap(), 1000);
    assert_eq!(ci.run(&mut []).unwrap(), 1000);
    assert_eq!(cj.run(&mut []).unwrap(), 1000);
    assert_eq!(after.load(Ordering::Relaxed), 0, "code after the stop ran");
}

#[test]
fn a_subprogram_with_only_direct_calls_needs_no_status_check_after_it() {
    let p = program(&prog());
    let after = Arc::new(AtomicU64::new(0));
    let h = helpers(&after);
    // SAFETY: the program touches no memory; `twice` reads only its argument.
    let (i, j, generic) = unsafe {
        (
            Executable::trusted(&p, &h, with_sites(direct_sites(&p))).unwrap(),
            JitExecutable::trusted(&p, &h, with_sites(direct_sites(&p))).unwrap(),
            JitExecutable::trusted(&p, &h, ExecOptions::default()).unwrap(),
        )
    };
    // r6: 0 -> 2 -> 8 -> 26 -> 80 (r6 += 2 * (r6 + 1)).
    assert_eq!(i.run(&mut []).unwrap(), 80);
    assert_eq!(j.run(&mut []).unwrap(), 80);
    assert_eq!(after.load(Ordering::Relaxed), 2);
    // Four status tests fewer in main, and a direct call instead of the
    // trampoline in the subprogram: the specialised code is smaller.
    assert!(
        j.code_size() < generic.code_size(),
        "{} >= {}",
        j.code_size(),
        generic.code_size()
    );
}
