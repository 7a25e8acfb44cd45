//! JIT-specific behaviour: checked-mode violations, budget, call depth, shadow
//! stack exhaustion and nesting, helper stop/fault/panic, legacy packet loads,
//! regions and grants, stack strategies, threads. Every case that has an
//! interpreter counterpart is compared with it (same message, same memory).

mod jit_common;
use jit_common::*;

use std::sync::Arc;

use cordon_exec::conformance::conformance_helpers;
use cordon_exec::jit::{JitConfig, JitError, JitExecutable, OptLevel, RegAlloc};
use cordon_exec::{
    Abort, ExecError, ExecOptions, Executable, HelperRegistry, Mode, Region, StackStrategy,
};
use cordon_isa::{Program, assemble};

fn prog(src: &str) -> Program {
    Program::new(assemble(src).unwrap_or_else(|e| panic!("{e}\n{src}"))).unwrap()
}

/// Checked JIT and checked interpreter must agree; returns the JIT outcome.
fn same(p: &Program, helpers: &HelperRegistry, mem: &[u8], opts: ExecOptions) -> Outcome {
    let i = interp_checked(p, helpers, mem, opts.clone());
    let j = jit_checked(p, helpers, mem, opts);
    assert_eq!(i, j, "interpreter vs JIT");
    j
}

fn opts() -> ExecOptions {
    ExecOptions::named("t")
}

#[test]
fn out_of_bounds_accesses_are_errors_and_the_process_continues() {
    let h = conformance_helpers();
    let cases = [
        (
            "ldxdw %r0, [%r1+4]\nexit",
            "instruction 0: load of 8 bytes at",
        ),
        (
            "mov %r0, 0\nstxb [%r1+8], %r0\nexit",
            "instruction 1: store of 1 bytes at",
        ),
        ("stdw [%r10], 7\nexit", "instruction 0: store of 8 bytes at"),
        (
            "ldxw %r0, [%r10-516]\nexit",
            "instruction 0: load of 4 bytes at",
        ),
        (
            "mov %r2, 0\nldxb %r0, [%r2]\nexit",
            "instruction 1: load of 1 bytes at 0x0 ",
        ),
        (
            "lddw %r3, -1\nldxh %r0, [%r3]\nexit",
            "instruction 2: load of 2 bytes at",
        ),
        (
            "lock add [%r10-4], %r1\nexit",
            "instruction 0: atomic access of 8 bytes at",
        ),
    ];
    for (src, want) in cases {
        let p = prog(src);
        let (r, mem) = same(&p, &h, &[1, 2, 3, 4, 5, 6, 7, 8], opts());
        let e = r.expect_err(src);
        // The atomic case is misaligned, reported before the bounds check.
        if src.starts_with("lock") {
            assert!(e.contains("is not aligned"), "{src}: {e}");
        } else {
            assert!(e.starts_with(want), "{src}: {e}");
            assert!(e.contains("outside every region"), "{src}: {e}");
        }
        assert_eq!(mem, [1, 2, 3, 4, 5, 6, 7, 8]);
    }
    // Accesses at the very edges are fine.
    let p = prog(
        "ldxdw %r0, [%r1]\nstxdw [%r10-8], %r0\nstdw [%r10-512], 1\nldxdw %r2, [%r10-512]\nadd %r0, %r2\nexit",
    );
    let (r, _) = same(&p, &h, &[1, 0, 0, 0, 0, 0, 0, 0], opts());
    assert_eq!(r, Ok(2));
}

#[test]
fn stores_before_a_violation_stay_visible() {
    let h = conformance_helpers();
    let p = prog("stb [%r1], 9\nstb [%r1+1], 8\nstb [%r1+2], 7\nexit");
    let (r, mem) = same(&p, &h, &[0, 0], opts());
    assert!(
        r.unwrap_err()
            .starts_with("instruction 2: store of 1 bytes")
    );
    assert_eq!(mem, [9, 8]);
}

#[test]
fn budget_ends_runaway_loops_at_the_interpreters_instruction() {
    let h = conformance_helpers();
    for budget in [1u64, 2, 3, 7, 100, 1001] {
        let o = ExecOptions {
            instruction_budget: budget,
            ..opts()
        };
        let p = prog("l:\nja l\nexit");
        let (r, _) = same(&p, &h, &[], o.clone());
        assert_eq!(
            r,
            Err(format!(
                "instruction 0: instruction budget of {budget} exhausted"
            ))
        );
        // A loop body with stores: the same stores happen before the budget ends.
        let p = prog(
            "mov %r0, 0\nl:\nadd %r0, 1\nstxb [%r1], %r0\nmov %r2, %r0\nmul %r2, 3\nja l\nexit",
        );
        let (r, mem) = same(&p, &h, &[0], o);
        assert!(r.unwrap_err().contains("budget"));
        let _ = mem;
    }
    // Enough budget: the program finishes.
    let p = prog("mov %r0, 0\nl:\nadd %r0, 1\njlt %r0, 10, l\nexit");
    let o = ExecOptions {
        instruction_budget: 22,
        ..opts()
    };
    assert_eq!(same(&p, &h, &[], o.clone()).0, Ok(10));
    let o = ExecOptions {
        instruction_budget: 21,
        ..opts()
    };
    assert_eq!(
        same(&p, &h, &[], o).0,
        Err("instruction 3: instruction budget of 21 exhausted".to_string())
    );
}

#[test]
fn call_depth_is_limited_to_eight_frames() {
    let h = conformance_helpers();
    // f calls itself while r1 > 0: depth r1 + 1 frames.
    let src = "call local f\nexit\nf:\njeq %r1, 0, out\nsub %r1, 1\ncall local f\nadd %r0, 1\nexit\nout:\nmov %r0, 100\nexit";
    let p = prog(src);
    let mut m = Vec::new();
    // r1 is the input pointer: set it through run_with on both engines.
    for depth in [0u64, 5, 6, 7, 20] {
        let i =
            Executable::checked(&p, &h, opts())
                .unwrap()
                .run_with([depth, 0, 0, 0, 0], &mut m, &[]);
        let j = JitExecutable::checked(&p, &h, opts()).unwrap().run_with(
            [depth, 0, 0, 0, 0],
            &mut m,
            &[],
        );
        let (i, j) = (i.map_err(|e| e.to_string()), j.map_err(|e| e.to_string()));
        assert_eq!(i, j, "depth {depth}");
        if depth <= 6 {
            assert_eq!(j, Ok(100 + depth));
        } else {
            assert_eq!(
                j,
                Err("instruction 4: call exceeds the limit of 8 call frames".to_string())
            );
        }
    }
}

#[test]
fn shadow_stack_exhaustion_is_a_clean_error_in_both_modes() {
    let h = conformance_helpers();
    let src = "call local f1\nexit\nf1:\ncall local f2\nexit\nf2:\ncall local f3\nexit\nf3:\nmov %r0, 3\nexit";
    let p = prog(src);
    let small = ExecOptions {
        frame_size: 2048,
        shadow_stack_size: 4096 * 2,
        stack: StackStrategy::PerProgram,
        ..opts()
    };
    // 4 frames of 2 KiB fit in 8 KiB.
    assert_eq!(same(&p, &h, &[], small.clone()).0, Ok(3));
    let smaller = ExecOptions {
        frame_size: 2048 + 16,
        ..small
    };
    let (r, _) = same(&p, &h, &[], smaller.clone());
    let e = r.unwrap_err();
    assert!(
        e.starts_with("program 't': shadow stack exhausted at instruction 4: a frame of 2064 bytes was requested but only"),
        "{e}"
    );
    // Trusted mode checks the shadow stack too (nesting can exhaust it).
    let t = unsafe { JitExecutable::trusted(&p, &h, smaller) }.unwrap();
    let e = t.run(&mut []).unwrap_err();
    assert!(
        matches!(
            e,
            ExecError::StackExhausted {
                index: 4,
                needed: 2064,
                ..
            }
        ),
        "{e}"
    );
    // The process and the stack are fine afterwards.
    assert!(t.run(&mut []).is_err());
    let ok = unsafe { JitExecutable::trusted(&p, &h, opts()) }.unwrap();
    assert_eq!(ok.run(&mut []).unwrap(), 3);
}

/// Helper 7 runs `inner` on the JIT, nested on the same thread's shadow stack,
/// passing r1 through; returns its r0 (or faults with its error).
fn nesting_helpers(inner: Arc<std::sync::OnceLock<JitExecutable>>) -> HelperRegistry {
    let mut h = conformance_helpers();
    h.register(7, "run_inner", move |_ctx, args| {
        let exe = inner.get().expect("inner set");
        exe.run_with([args[0], args[1], 0, 0, 0], &mut [], &[])
            .map_err(|e| Abort::Fault(e.to_string()))
    });
    h
}

#[test]
fn nested_invocations_take_frames_below_the_caller() {
    // Inner: r0 = r1 - r10 (distance from the outer frame top to the inner one).
    let inner_p = prog("mov %r0, %r1\nsub %r0, %r10\nexit");
    let cell = Arc::new(std::sync::OnceLock::new());
    let h = nesting_helpers(cell.clone());
    cell.set(JitExecutable::checked(&inner_p, &h, opts()).unwrap())
        .unwrap();
    // Outer: a bpf-to-bpf call, then the helper with r1 = the outer r10.
    let outer_p = prog(
        "call local f\nexit\nf:\nstdw [%r10-8], 5\nmov %r1, %r10\ncall 7\nldxdw %r2, [%r10-8]\njne %r2, 5, bad\nexit\nbad:\nmov %r0, -1\nexit",
    );
    for mode in [Mode::Checked, Mode::Trusted] {
        let outer = unsafe {
            JitExecutable::compile_with(&outer_p, &h, opts(), mode, &JitConfig::default())
        }
        .unwrap();
        // The callee's frame is 512 bytes: the inner frame top is its bottom.
        assert_eq!(outer.run(&mut []).unwrap(), 512, "{mode:?}");
    }
    // The interpreter as the outer engine, the JIT nested in it.
    let outer_i = Executable::checked(&outer_p, &h, opts()).unwrap();
    assert_eq!(outer_i.run(&mut []).unwrap(), 512);
}

#[test]
fn runaway_nesting_exhausts_the_shadow_stack_cleanly() {
    // The program calls itself through the helper forever.
    let p = prog("call 7\nexit");
    let cell = Arc::new(std::sync::OnceLock::new());
    let h = nesting_helpers(cell.clone());
    let o = ExecOptions {
        shadow_stack_size: 64 * 1024,
        ..opts()
    };
    cell.set(JitExecutable::checked(&p, &h, o.clone()).unwrap())
        .unwrap();
    let e = cell.get().unwrap().run(&mut []).unwrap_err().to_string();
    assert!(e.contains("shadow stack exhausted"), "{e}");
    // Everything was unwound: the next run starts from an empty stack again.
    let q = prog("mov %r0, %r10\nexit");
    let q = JitExecutable::checked(&q, &h, o).unwrap();
    let top = q.run(&mut []).unwrap();
    assert_eq!(top, q.run(&mut []).unwrap());
    let range = cordon_exec::shadow_stack::current_thread_stack_range().unwrap();
    assert_eq!(top, range.end);
}

#[test]
fn helper_stop_fault_and_panic_end_the_run_from_any_depth() {
    let mut h = conformance_helpers();
    h.register(8, "fail", |_ctx, args| {
        Err(Abort::Fault(format!("bad {}", args[0])))
    });
    h.register(9, "boom", |_ctx, _args| {
        panic!("helper panicked on purpose")
    });
    let stop = prog(
        "mov %r0, 1\ncall local f\nmov %r0, 2\nexit\nf:\ncall local g\nmov %r0, 3\nexit\ng:\nmov %r1, 0\ncall 5\nmov %r0, 4\nexit",
    );
    assert_eq!(same(&stop, &h, &[], opts()).0, Ok(0));
    let fault = prog("call local f\nexit\nf:\nmov %r1, 42\ncall 8\nexit");
    assert_eq!(
        same(&fault, &h, &[], opts()).0,
        Err("instruction 3: helper 8 (fail) failed: bad 42".to_string())
    );
    let panic = prog("mov %r1, 1\ncall 9\nexit");
    assert_eq!(
        same(&panic, &h, &[], opts()).0,
        Err("instruction 1: helper 9 (boom) panicked".to_string())
    );
    let callx = prog("mov %r3, 99\ncall %r3\nexit");
    assert_eq!(
        same(&callx, &h, &[], opts()).0,
        Err("instruction 1: callx to unknown helper 99".to_string())
    );
}

#[test]
fn legacy_packet_loads() {
    let h = conformance_helpers();
    let mem = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66];
    let cases = [
        ("ldabsb 1\nexit", Ok(0x22)),
        ("ldabsh 1\nexit", Ok(0x2233)),
        ("ldabsw 2\nexit", Ok(0x33445566)),
        ("ldabsw 3\nexit", Ok(0)),
        ("ldabsb -1\nexit", Ok(0)),
        ("mov %r0, 7\nmov %r3, 4\nldindh %r3, 0\nexit", Ok(0x5566)),
        ("mov %r3, 4\nldindw %r3, 0\nmov %r0, 9\nexit", Ok(0)),
        ("mov %r3, -2\nldindb %r3, 3\nexit", Ok(0x22)),
    ];
    for (src, want) in cases {
        let p = prog(src);
        assert_eq!(run_all_engines(&p, &h, &mem), want, "{src}");
    }
}

#[test]
fn extra_regions_and_helper_grants() {
    let mut h = conformance_helpers();
    let mut granted = vec![0u8; 16];
    let gptr = granted.as_mut_ptr() as u64;
    h.register(10, "grant", move |ctx, _args| {
        // SAFETY: `granted` outlives every run in this test.
        unsafe { ctx.grant(gptr, 16, true) };
        Ok(gptr)
    });
    let p = prog("call 10\nstdw [%r0+8], 77\nldxdw %r0, [%r0+8]\nexit");
    assert_eq!(run_all_engines(&p, &h, &[]), Ok(77));
    let p = prog("call 10\nstdw [%r0+12], 77\nexit");
    let e = run_all_engines(&p, &h, &[]).unwrap_err();
    assert!(e.contains("instruction 1: store of 8 bytes"), "{e}");
    // A read-only extra region given by the host.
    let ro = [5u8; 8];
    let p = prog("ldxdw %r0, [%r3]\nexit");
    let j = JitExecutable::checked(&p, &h, opts()).unwrap();
    let args = [0, 0, ro.as_ptr() as u64, 0, 0];
    assert_eq!(
        j.run_with(args, &mut [], &[Region::readonly(&ro)]).unwrap(),
        0x0505050505050505
    );
    let p = prog("stdw [%r3], 1\nexit");
    let j = JitExecutable::checked(&p, &h, opts()).unwrap();
    let e = j
        .run_with(args, &mut [], &[Region::readonly(&ro)])
        .unwrap_err();
    assert!(matches!(e, ExecError::MemoryAccess { index: 0, .. }), "{e}");
    drop(granted);
}

#[test]
fn stack_strategies() {
    let h = conformance_helpers();
    let p = prog(
        "stdw [%r10-8], 3\ncall local f\nldxdw %r1, [%r10-8]\nadd %r0, %r1\nexit\nf:\nstdw [%r10-8], 4\nldxdw %r0, [%r10-8]\nexit",
    );
    for stack in [
        StackStrategy::ThreadShadow,
        StackStrategy::PerProgram,
        StackStrategy::Native,
    ] {
        let o = ExecOptions { stack, ..opts() };
        assert_eq!(same(&p, &h, &[], o.clone()).0, Ok(7), "{stack:?}");
        let t = unsafe { JitExecutable::trusted(&p, &h, o) }.unwrap();
        assert_eq!(t.run(&mut []).unwrap(), 7);
    }
}

#[test]
fn checked_calls_share_the_register_file_like_the_interpreter() {
    let h = conformance_helpers();
    // The callee reads the caller's r0 and r6; the caller reads r1-r5 the
    // callee left and gets r6-r9 back.
    let p = prog(
        "mov %r0, 5\nmov %r6, 6\ncall local f\nadd %r0, %r1\nadd %r0, %r6\nadd %r0, %r5\nexit\nf:\nmov %r1, %r6\nadd %r1, %r0\nmov %r5, 1000\nmov %r6, 77\nmov %r0, 0\nexit",
    );
    assert_eq!(same(&p, &h, &[], opts()).0, Ok(11 + 6 + 1000));
}

#[test]
fn load_errors_match_the_interpreter() {
    let mut h = conformance_helpers();
    let p = prog("call 77\nexit");
    let e = JitExecutable::checked(&p, &h, opts()).unwrap_err();
    assert!(matches!(e, JitError::Load(_)), "{e}");
    let i = Executable::checked(&p, &h, opts()).unwrap_err();
    assert_eq!(e.to_string(), i.to_string());
    h.register(77, "x", |_, _| Ok(1));
    assert!(JitExecutable::checked(&p, &h, opts()).is_ok());
}

#[test]
fn fall_off_the_end() {
    let h = conformance_helpers();
    let p = prog("mov %r0, 1\njeq %r0, 1, l\nexit\nl:\nmov %r0, 2");
    assert_eq!(
        same(&p, &h, &[], opts()).0,
        Err("instruction 4: execution ran past the last instruction".to_string())
    );
}

#[test]
fn one_executable_on_many_threads() {
    let h = conformance_helpers();
    let p = prog(
        "mov %r0, 0\nmov %r2, 0\nl:\nadd %r0, %r2\nstxdw [%r10-8], %r0\nadd %r2, 1\njlt %r2, 1000, l\nexit",
    );
    let exe = Arc::new(unsafe { JitExecutable::trusted(&p, &h, opts()) }.unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let exe = exe.clone();
            std::thread::spawn(move || (0..200).map(|_| exe.run(&mut []).unwrap()).sum::<u64>())
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200 * 499_500);
    }
}

#[test]
fn opt_levels_and_verifier_agree() {
    let h = conformance_helpers();
    let p = prog(
        "mov %r0, 1\nmov %r1, 10\nl:\nmul %r0, 3\nmod %r0, 1000003\nsub %r1, 1\njne %r1, 0, l\nexit",
    );
    let mut results = Vec::new();
    for opt_level in [OptLevel::None, OptLevel::Speed, OptLevel::SpeedAndSize] {
        for (verify, regalloc) in [
            (false, RegAlloc::Backtracking),
            (true, RegAlloc::Backtracking),
            (false, RegAlloc::SinglePass),
        ] {
            let c = JitConfig {
                opt_level,
                regalloc,
                verify,
                target: None,
            };
            let e =
                unsafe { JitExecutable::compile_with(&p, &h, opts(), Mode::Checked, &c) }.unwrap();
            results.push(e.run(&mut []).unwrap());
        }
    }
    assert!(results.iter().all(|&r| r == 59049), "{results:?}");
    let bad = JitConfig {
        target: Some("no-such-target".into()),
        ..JitConfig::default()
    };
    let e = unsafe { JitExecutable::compile_with(&p, &h, opts(), Mode::Checked, &bad) };
    assert!(matches!(e, Err(JitError::Target(_))));
}

#[test]
fn division_fast_and_slow_paths_match_the_interpreter() {
    let h = conformance_helpers();
    let values: [u64; 12] = [
        0,
        1,
        2,
        7,
        0xffff_ffff,
        0x1_0000_0000,
        0x7fff_ffff_ffff_ffff,
        0x8000_0000_0000_0000,
        u64::MAX,
        u64::MAX - 6,
        12345678901234,
        0x8000_0000,
    ];
    for op in [
        "div", "mod", "sdiv", "smod", "div32", "mod32", "sdiv32", "smod32",
    ] {
        for &a in &values {
            for &b in &values {
                let src = format!("lddw %r0, {a:#x}\nlddw %r1, {b:#x}\n{op} %r0, %r1\nexit");
                let p = prog(&src);
                let r = run_all_engines(&p, &h, &[]);
                let (a32, b32) = (a as u32, b as u32);
                let want = match op {
                    "div" => a.checked_div(b).unwrap_or(0),
                    "mod" => a.checked_rem(b).unwrap_or(a),
                    "sdiv" => {
                        if b == 0 {
                            0
                        } else {
                            (a as i64).wrapping_div(b as i64) as u64
                        }
                    }
                    "smod" => {
                        if b == 0 {
                            a
                        } else {
                            (a as i64).wrapping_rem(b as i64) as u64
                        }
                    }
                    "div32" => a32.checked_div(b32).unwrap_or(0) as u64,
                    "mod32" => a32.checked_rem(b32).unwrap_or(a32) as u64,
                    "sdiv32" => {
                        if b32 == 0 {
                            0
                        } else {
                            (a32 as i32).wrapping_div(b32 as i32) as u32 as u64
                        }
                    }
                    _ => {
                        if b32 == 0 {
                            a32 as u64
                        } else {
                            (a32 as i32).wrapping_rem(b32 as i32) as u32 as u64
                        }
                    }
                };
                assert_eq!(r, Ok(want), "{src}");
            }
        }
    }
}
