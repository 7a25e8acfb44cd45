//! Mechanism 1: frames live in the runtime-owned shadow stack; nesting, exhaustion,
//! per-program stacks and the native-stack baseline.

mod common;
use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use cordon_exec::shadow_stack::{current_thread_guard_ranges, current_thread_stack_range};
use cordon_exec::{Abort, ExecError, ExecOptions, Executable, HelperRegistry, StackStrategy};
use cordon_isa::Insn;
use cordon_isa::opcode::*;

/// Helper 1 records r1; the program records its r10 and returns it.
fn recorder() -> (HelperRegistry, Arc<Mutex<Vec<u64>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut h = HelperRegistry::new();
    let s = seen.clone();
    h.register(1, "record", move |_, a| {
        s.lock().unwrap().push(a[0]);
        Ok(a[0])
    });
    (h, seen)
}

fn r10_prog() -> Vec<Insn> {
    prog![mov64r(1, 10), call(1), exit()]
}

fn opts(stack: StackStrategy) -> ExecOptions {
    ExecOptions {
        stack,
        ..ExecOptions::default()
    }
}

#[test]
fn frames_live_in_the_thread_shadow_stack() {
    let (h, _) = recorder();
    for exe in [
        checked(&r10_prog(), &h, opts(StackStrategy::ThreadShadow)).unwrap(),
        trusted(&r10_prog(), &h, opts(StackStrategy::ThreadShadow)).unwrap(),
    ] {
        let r10 = exe.run(&mut []).unwrap();
        let range = current_thread_stack_range().expect("thread stack exists after a run");
        // r10 is the top of a 512-byte frame inside the mapped, usable area.
        assert!(
            range.start + 512 <= r10 && r10 <= range.end,
            "r10 {r10:#x} not in {range:x?}"
        );
        // An idle stack hands out its top to the first frame.
        assert_eq!(r10, range.end);
        let [lo, hi] = current_thread_guard_ranges().unwrap();
        assert_eq!(lo.end, range.start);
        assert_eq!(hi.start, range.end);
        // The frame is not on this thread's native stack.
        let local = 0u8;
        let native = &local as *const u8 as u64;
        assert!(!range.contains(&native));
    }
}

#[test]
fn per_program_stacks_are_separate() {
    let (h, _) = recorder();
    let a = checked(&r10_prog(), &h, opts(StackStrategy::PerProgram)).unwrap();
    let b = checked(&r10_prog(), &h, opts(StackStrategy::PerProgram)).unwrap();
    let ra = a.run(&mut []).unwrap();
    let rb = b.run(&mut []).unwrap();
    let range_a = a.per_program_stack_range().unwrap();
    let range_b = b.per_program_stack_range().unwrap();
    assert_eq!(ra, range_a.end);
    assert_eq!(rb, range_b.end);
    assert!(range_a.end <= range_b.start || range_b.end <= range_a.start);
    if let Some(t) = current_thread_stack_range() {
        assert!(!t.contains(&(ra - 1)));
    }
    // Another thread gets another stack for the same program.
    let a = Arc::new(a);
    let a2 = a.clone();
    let (r_other, range_other) = std::thread::spawn(move || {
        let r = a2.run(&mut []).unwrap();
        (r, a2.per_program_stack_range().unwrap())
    })
    .join()
    .unwrap();
    assert_eq!(r_other, range_other.end);
    assert_ne!(range_other, range_a);
}

#[test]
fn native_baseline_keeps_frames_on_the_native_stack() {
    let (h, _) = recorder();
    let exe = checked(&r10_prog(), &h, opts(StackStrategy::Native)).unwrap();
    let r10 = exe.run(&mut []).unwrap();
    let local = 0u8;
    let native = &local as *const u8 as u64;
    // Within a few pages of this function's locals, below them (stack grows down).
    assert!(
        r10 < native && native - r10 < 64 * 1024,
        "r10 {r10:#x}, local {native:#x}"
    );
    if let Some(t) = current_thread_stack_range() {
        assert!(!t.contains(&(r10 - 1)));
    }
    // Frames larger than the baseline's capacity are refused at load time.
    let big = ExecOptions {
        frame_size: 1024,
        ..opts(StackStrategy::Native)
    };
    assert!(checked(&r10_prog(), &h, big).is_err());
}

/// f(n) = n == 0 ? 0 : f(n - 1) + 1 with a store into every frame.
fn recursive(n: i32) -> Vec<Insn> {
    prog![
        mov64(1, n),
        call_local(1),
        exit(),
        mov64(0, 0),
        st(8, 10, -8, 1),
        jmp_imm(JMP_JEQ, 1, 0, 3),
        alu64_imm(ALU_SUB, 1, 1),
        call_local(-5),
        alu64_imm(ALU_ADD, 0, 1),
        exit(),
    ]
}

#[test]
fn all_strategies_agree() {
    let h = HelperRegistry::new();
    for s in [
        StackStrategy::ThreadShadow,
        StackStrategy::PerProgram,
        StackStrategy::Native,
    ] {
        for exe in [
            checked(&recursive(6), &h, opts(s)).unwrap(),
            trusted(&recursive(6), &h, opts(s)).unwrap(),
        ] {
            assert_eq!(exe.run(&mut []).unwrap(), 6, "{s:?}");
        }
    }
}

#[test]
fn exhaustion_by_calls_is_a_clean_error_naming_the_program() {
    let h = HelperRegistry::new();
    let small = |name: &str| ExecOptions {
        name: name.to_string(),
        frame_size: 1024,
        shadow_stack_size: 4096,
        ..ExecOptions::default()
    };
    // 4 frames of 1024 fit exactly.
    let ok = checked(&recursive(2), &h, small("fits")).unwrap();
    assert_eq!(ok.run(&mut []).unwrap(), 2);
    for exe in [
        checked(&recursive(3), &h, small("deep")).unwrap(),
        trusted(&recursive(3), &h, small("deep")).unwrap(),
    ] {
        let e = exe.run(&mut []).unwrap_err();
        match &e {
            ExecError::StackExhausted {
                program,
                index,
                needed,
                available,
                capacity,
            } => {
                assert_eq!(program, "deep");
                assert_eq!(*index, 7);
                assert_eq!((*needed, *available, *capacity), (1024, 0, 4096));
            }
            other => panic!("expected StackExhausted, got {other:?}"),
        }
        assert!(
            e.to_string()
                .starts_with("program 'deep': shadow stack exhausted at instruction 7")
        );
    }
    // The stack was fully released: the next run starts at the top again.
    assert_eq!(ok.run(&mut []).unwrap(), 2);
    let (rec, _) = recorder();
    let top = checked(&r10_prog(), &rec, small("top"))
        .unwrap()
        .run(&mut [])
        .unwrap();
    assert_eq!(top, current_thread_stack_range().unwrap().end);
}

/// Program A: store a marker in its frame, call helper 2 (which runs program B on
/// this thread), check the marker, return B's result. B records its r10.
#[test]
fn nested_invocation_from_a_helper_uses_the_same_shadow_stack() {
    let (rec, seen) = recorder();
    // B: r1 = r10; fill its whole frame; record r10; exit
    let mut b_prog: Vec<Insn> = Vec::new();
    for off in (8..=512).step_by(8) {
        b_prog.push(st(8, 10, -(off as i16), -1));
    }
    b_prog.extend(prog![mov64r(1, 10), call(1), exit()]);
    for (a_checked, b_checked) in [(true, true), (false, false), (true, false)] {
        seen.lock().unwrap().clear();
        let b = Arc::new(if b_checked {
            checked(&b_prog, &rec, ExecOptions::named("B")).unwrap()
        } else {
            trusted(&b_prog, &rec, ExecOptions::named("B")).unwrap()
        });
        let mut ha = rec.clone();
        let bb = b.clone();
        ha.register(2, "run_b", move |_, _| {
            bb.run(&mut []).map_err(|e| Abort::Fault(e.to_string()))
        });
        // A: *(r10-8) = 1234; r1 = r10; call record; call run_b; r6 = r0;
        //    r0 = *(r10-8); if r0 != 1234 goto fail; r0 = r6; exit; fail: r0 = -1; exit
        let a_prog = prog![
            st(8, 10, -8, 1234),
            mov64r(1, 10),
            call(1),
            call(2),
            mov64r(6, 0),
            ldx(8, 0, 10, -8),
            jmp_imm(JMP_JNE, 0, 1234, 2),
            mov64r(0, 6),
            exit(),
            mov64(0, -1),
            exit()
        ];
        let a = if a_checked {
            checked(&a_prog, &ha, ExecOptions::named("A")).unwrap()
        } else {
            trusted(&a_prog, &ha, ExecOptions::named("A")).unwrap()
        };
        let b_r10 = a.run(&mut []).unwrap();
        let v = seen.lock().unwrap().clone();
        assert_eq!(v.len(), 2);
        let (a_r10, b_seen) = (v[0], v[1]);
        assert_eq!(b_seen, b_r10);
        // B's frame sits directly below A's 512-byte frame in the same region.
        assert_eq!(b_r10, a_r10 - 512);
        let range = current_thread_stack_range().unwrap();
        assert!(range.contains(&(a_r10 - 1)) && range.contains(&(b_r10 - 512)));
    }
}

static DEEP: OnceLock<Arc<Executable>> = OnceLock::new();

#[test]
fn exhaustion_by_nesting_is_a_clean_error() {
    // A program whose helper runs the same program again, forever.
    let mut h = HelperRegistry::new();
    h.register(1, "again", |_, _| {
        DEEP.get()
            .unwrap()
            .run(&mut [])
            .map_err(|e| Abort::Fault(e.to_string()))
    });
    let opts = ExecOptions {
        name: String::from("recurser"),
        shadow_stack_size: 8192,
        ..ExecOptions::default()
    };
    let exe = DEEP.get_or_init(|| Arc::new(checked(&prog![call(1), exit()], &h, opts).unwrap()));
    let e = exe.run(&mut []).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("program 'recurser': shadow stack exhausted at instruction 0: a frame of 512 bytes was requested but only 0 of 8192 bytes are left"),
        "{msg}"
    );
    // 16 levels fit; the error is reported through every level's helper.
    assert_eq!(msg.matches("helper 1 (again) failed").count(), 16);
    // Everything was released.
    let (rec, _) = recorder();
    let top = checked(
        &r10_prog(),
        &rec,
        ExecOptions {
            shadow_stack_size: 8192,
            ..ExecOptions::default()
        },
    )
    .unwrap()
    .run(&mut [])
    .unwrap();
    assert_eq!(top, current_thread_stack_range().unwrap().end);
}

#[test]
fn threads_have_their_own_shadow_stacks() {
    let (h, _) = recorder();
    let exe = Arc::new(checked(&r10_prog(), &h, ExecOptions::default()).unwrap());
    // All threads stay alive until every one has run (a finished thread's mapping
    // could otherwise be reused).
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let results: Vec<(u64, std::ops::Range<u64>)> = (0..3)
        .map(|_| {
            let exe = exe.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let r = (
                    exe.run(&mut []).unwrap(),
                    current_thread_stack_range().unwrap(),
                );
                barrier.wait();
                r
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    for (r10, range) in &results {
        assert_eq!(*r10, range.end);
    }
    assert_ne!(results[0].1, results[1].1);
    assert_ne!(results[1].1, results[2].1);
    assert_ne!(results[0].1, results[2].1);
}
