//! The helper-call interface: values, stops, faults, granted memory, callx, kfuncs.

mod common;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use cordon_exec::conformance::conformance_helpers;
use cordon_exec::{Abort, ExecError, ExecOptions, HelperRegistry, LoadError};
use cordon_isa::opcode::*;

fn adder() -> HelperRegistry {
    let mut h = HelperRegistry::new();
    h.register(1, "sum5", |_ctx, a| Ok(a[0] + a[1] + a[2] + a[3] + a[4]));
    h
}

#[test]
fn helper_gets_r1_to_r5_and_returns_r0() {
    let p = prog![
        mov64(1, 1),
        mov64(2, 2),
        mov64(3, 3),
        mov64(4, 4),
        mov64(5, 5),
        call(1),
        exit()
    ];
    assert_eq!(run_both_with(&p, &[], &adder()), 15);
}

#[test]
fn registry_lookup_and_replacement() {
    let mut h = adder();
    assert_eq!(h.get(1).unwrap().name(), "sum5");
    assert!(h.get(2).is_none());
    let old = h.register(1, "one", |_, _| Ok(1));
    assert_eq!(old.unwrap().name(), "sum5");
    assert_eq!(run_both_with(&prog![call(1), exit()], &[], &h), 1);
}

#[test]
fn unknown_helper_is_rejected_at_load() {
    match checked(&prog![call(99), exit()], &adder(), ExecOptions::default()) {
        Err(LoadError::UnknownHelper { index: 0, id: 99 }) => {}
        other => panic!("expected UnknownHelper, got {other:?}"),
    }
}

#[test]
fn unwind_stops_the_program_at_once_even_from_a_subprogram() {
    // main: r6 = 7; call f; r0 = 99; exit      f: r1 = 0; call 5 (stop); r0 = 1; exit
    let p = prog![
        mov64(6, 7),
        call_local(2),
        mov64(0, 99),
        exit(),
        mov64(1, 0),
        call(5),
        mov64(0, 1),
        exit(),
    ];
    let h = conformance_helpers();
    assert_eq!(run_both_with(&p, &[], &h), 0);
    // unwind with a non-zero argument just returns it.
    let p = prog![mov64(1, 42), call(5), exit()];
    assert_eq!(run_both_with(&p, &[], &h), 42);
}

#[test]
fn stop_with_a_value() {
    let mut h = HelperRegistry::new();
    h.register(7, "stop", |_, a| Err(Abort::Stop(a[0] * 2)));
    let p = prog![mov64(1, 21), call(7), mov64(0, 0), exit()];
    assert_eq!(run_both_with(&p, &[], &h), 42);
}

#[test]
fn helper_fault_names_instruction_helper_and_message() {
    let mut h = HelperRegistry::new();
    h.register(9, "picky", |_, a| {
        if a[0] == 3 {
            Err(Abort::Fault(format!("bad argument {}", a[0])))
        } else {
            Ok(0)
        }
    });
    let exe = checked(
        &prog![mov64(1, 3), call(9), exit()],
        &h,
        ExecOptions::default(),
    )
    .unwrap();
    let e = exe.run(&mut []).unwrap_err();
    assert!(
        matches!(
            e,
            ExecError::HelperFault {
                index: 1,
                id: 9,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "instruction 1: helper 9 (picky) failed: bad argument 3"
    );
}

#[test]
fn helper_panic_is_an_error_and_the_process_continues() {
    let mut h = HelperRegistry::new();
    h.register(3, "boom", |_, _| panic!("helper exploded"));
    let exe = checked(&prog![call(3), exit()], &h, ExecOptions::default()).unwrap();
    match exe.run(&mut []) {
        Err(ExecError::HelperPanic {
            index: 0, id: 3, ..
        }) => {}
        other => panic!("expected HelperPanic, got {other:?}"),
    }
    assert_eq!(run_both(&prog![mov64(0, 5), exit()], &[]), 5);
}

#[test]
fn callx_calls_the_helper_whose_id_is_in_the_register() {
    let h = adder();
    let p = prog![
        mov64(1, 40),
        mov64(2, 2),
        mov64(3, 0),
        mov64(4, 0),
        mov64(5, 0),
        mov64(6, 1),
        callx(6),
        exit()
    ];
    assert_eq!(run_both_with(&p, &[], &h), 42);
    let p = prog![mov64(6, 77), callx(6), exit()];
    let exe = checked(&p, &h, ExecOptions::default()).unwrap();
    match exe.run(&mut []) {
        Err(ExecError::UnknownHelper { index: 1, id: 77 }) => {}
        other => panic!("expected UnknownHelper, got {other:?}"),
    }
}

#[test]
fn kfuncs_resolve_by_btf_id() {
    let mut h = HelperRegistry::new();
    h.register_kfunc(1234, "my_kfunc", |_, a| Ok(a[0] ^ 0xff));
    let p = prog![mov64(1, 0x0f), call_kfunc(1234), exit()];
    assert_eq!(run_both_with(&p, &[], &h), 0xf0);
    match checked(&prog![call_kfunc(99), exit()], &h, ExecOptions::default()) {
        Err(LoadError::UnknownKfunc {
            index: 0,
            btf_id: 99,
            off: 0,
        }) => {}
        other => panic!("expected UnknownKfunc, got {other:?}"),
    }
}

#[test]
fn granted_memory_is_accessible_until_the_run_ends() {
    // Helper 1 returns a pointer to a host buffer and grants it (like a map lookup).
    let value = Arc::new(AtomicU64::new(100));
    let mut h = HelperRegistry::new();
    let v = value.clone();
    h.register(1, "lookup", move |ctx, _| {
        let addr = v.as_ptr() as u64;
        // SAFETY: the buffer is kept alive by the registry's Arc for the whole run.
        unsafe { ctx.grant(addr, 8, true) };
        Ok(addr)
    });
    h.register(2, "leak", {
        let v = value.clone();
        move |_, _| Ok(v.as_ptr() as u64)
    });
    // r0 = lookup(); *(u64 *)r0 += 1; r0 = *r0; exit
    let p = prog![
        call(1),
        mov64(1, 1),
        atomic(8, ATOMIC_ADD, 0, 1, 0),
        ldx(8, 0, 0, 0),
        exit()
    ];
    // The value is shared, so each mode sees the previous mode's increment.
    assert_eq!(
        checked(&p, &h, ExecOptions::default())
            .unwrap()
            .run(&mut [])
            .unwrap(),
        101
    );
    assert_eq!(
        trusted(&p, &h, ExecOptions::default())
            .unwrap()
            .run(&mut [])
            .unwrap(),
        102
    );
    assert_eq!(value.load(Ordering::SeqCst), 102);
    // Without the grant, checked mode rejects the same access.
    let p = prog![call(2), ldx(8, 0, 0, 0), exit()];
    let exe = checked(&p, &h, ExecOptions::default()).unwrap();
    match exe.run(&mut []) {
        Err(ExecError::MemoryAccess {
            index: 1, size: 8, ..
        }) => {}
        other => panic!("expected MemoryAccess, got {other:?}"),
    }
    // A grant does not outlive its run.
    let p2 = prog![call(1), exit()];
    let addr = checked(&p2, &h, ExecOptions::default())
        .unwrap()
        .run(&mut [])
        .unwrap();
    assert_eq!(addr, value.as_ptr() as u64);
    let exe = checked(
        &prog![lddw(1, addr), ldx(8, 0, 1, 0), exit()],
        &h,
        ExecOptions::default(),
    )
    .unwrap();
    assert!(matches!(
        exe.run(&mut []),
        Err(ExecError::MemoryAccess { .. })
    ));
}

#[test]
fn helpers_read_and_write_program_memory_with_checks() {
    // Helper 1: memset(r1, r3, r2) via write_bytes; helper 2: sum of r2 bytes at r1.
    let mut h = HelperRegistry::new();
    h.register(1, "fill", |ctx, a| {
        ctx.write_bytes(a[0], &vec![a[2] as u8; a[1] as usize])?;
        Ok(0)
    });
    h.register(2, "sum", |ctx, a| {
        Ok(ctx.read_bytes(a[0], a[1])?.iter().map(|&b| b as u64).sum())
    });
    let p = prog![
        mov64r(1, 10),
        alu64_imm(ALU_ADD, 1, -16),
        mov64(2, 16),
        mov64(3, 3),
        call(1),
        mov64r(1, 10),
        alu64_imm(ALU_ADD, 1, -16),
        mov64(2, 16),
        call(2),
        exit()
    ];
    assert_eq!(run_both_with(&p, &[], &h), 48);
    // Asking a helper to write past the frame is a fault, not a corruption.
    let p = prog![
        mov64r(1, 10),
        alu64_imm(ALU_ADD, 1, -8),
        mov64(2, 16),
        mov64(3, 3),
        call(1),
        exit()
    ];
    let e = checked(&p, &h, ExecOptions::default())
        .unwrap()
        .run(&mut [])
        .unwrap_err();
    assert!(
        matches!(e, ExecError::HelperFault { index: 4, .. }),
        "{e:?}"
    );
    // The input is visible to helpers too.
    let p = prog![call(2), exit()];
    let mut mem = [1u8, 2, 3, 4];
    let exe = checked(&p, &h, ExecOptions::default()).unwrap();
    assert_eq!(exe.run(&mut mem).unwrap(), 10);
}

#[test]
fn context_reports_program_name_and_call_site() {
    let mut h = HelperRegistry::new();
    h.register(1, "who", |ctx, _| {
        assert_eq!(ctx.program_name(), "named-prog");
        assert!(ctx.is_checked());
        Ok(ctx.call_index() as u64)
    });
    let exe = checked(
        &prog![mov64(0, 0), mov64(0, 0), call(1), exit()],
        &h,
        ExecOptions::named("named-prog"),
    )
    .unwrap();
    assert_eq!(exe.run(&mut []).unwrap(), 2);
}
