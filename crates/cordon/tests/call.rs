//! `Program::call`, the lowest-overhead entry point: results on both engines,
//! recursion into the same program through a host kfunc, clean errors (bad
//! memory access, shadow stack exhaustion) after which the next call works.

use std::sync::{Arc, OnceLock};

use cordon::{Abort, ArgType, Backend, Config, Engine, Error, Insn, Program, RetType, RunError};
use cordon_exec::{Access, ExecError};
use cordon_object::{Object, ProgType};

fn one_program(prog_type: ProgType, insns: Vec<Insn>, kfuncs: &[&str]) -> Object {
    Object::single_program("p", "s", prog_type, insns).with_kfuncs(kfuncs)
}

const BACKENDS: [Backend; 2] = [Backend::Interpreter, Backend::Jit];

/// The empty program (verified, trusted) through `call`: r0 comes back, on
/// both engines, many times (the shadow stack is released every time).
#[test]
fn empty_program_through_call() {
    for backend in BACKENDS {
        let engine = Engine::new(Config {
            backend,
            ..Config::default()
        });
        let insns = vec![Insn::new(0xb7, 0, 0, 0, 7), Insn::new(0x95, 0, 0, 0, 0)];
        let o = engine
            .load_parsed(one_program(ProgType::Xdp, insns, &[]))
            .unwrap();
        let p = o.program("p").unwrap();
        assert!(p.is_verified());
        let mut input = [0u8; 16];
        for _ in 0..100_000 {
            assert_eq!(p.call([0; 5], &mut input).unwrap(), 7);
        }
    }
}

/// Loads a raw program `r0 = host_recurse(r1) + 1`; the kfunc calls the
/// same program with `r1 - 1` until `r1` is 0, so `call([d, ..])` is `d + 1`
/// with `d + 1` nested invocations on the thread's shadow stack.
fn recursive(backend: Backend, shadow_stack_size: usize) -> (Engine, Program) {
    let mut engine = Engine::new(Config {
        backend,
        shadow_stack_size,
        ..Config::default()
    });
    let this: Arc<OnceLock<Program>> = Arc::new(OnceLock::new());
    let me = Arc::clone(&this);
    engine.register_kfunc(
        "host_recurse",
        &[ArgType::Anything],
        RetType::Integer,
        0,
        move |_, a| {
            if a[0] == 0 {
                return Ok(0);
            }
            let p = me.get().expect("set after load");
            p.call([a[0] - 1, 0, 0, 0, 0], &mut [])
                .map_err(|e| Abort::Fault(format!("nested call: {e}")))
        },
    );
    let insns = vec![
        Insn::new(0x85, 0, 2, 0, 0),
        Insn::new(0x07, 0, 0, 0, 1),
        Insn::new(0x95, 0, 0, 0, 0),
    ];
    let o = engine
        .load_parsed(one_program(ProgType::Unspec, insns, &["host_recurse"]))
        .unwrap();
    let p = o.program("p").unwrap();
    this.set(p.clone()).unwrap();
    (engine, p)
}

#[test]
fn call_recurses_into_the_same_program() {
    for backend in BACKENDS {
        let (_engine, p) = recursive(backend, 256 * 1024);
        for d in [0u64, 1, 2, 10, 40] {
            assert_eq!(p.call([d, 0, 0, 0, 0], &mut []).unwrap(), d + 1);
        }
    }
}

/// Recursion deeper than the shadow stack holds ends with a clean error that
/// names the stack; the arena is restored, so the next call succeeds.
#[test]
fn recursion_past_the_shadow_stack_is_an_error() {
    for backend in BACKENDS {
        let (_engine, p) = recursive(backend, 4096);
        let e = p.call([1000, 0, 0, 0, 0], &mut []).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("stack"), "{backend:?}: {msg}");
        for _ in 0..3 {
            assert_eq!(p.call([3, 0, 0, 0, 0], &mut []).unwrap(), 4);
        }
    }
}

/// A checked program reading past its input gets an access error naming the
/// instruction; the next call (in bounds) works.
#[test]
fn out_of_bounds_call_is_refused() {
    for backend in BACKENDS {
        let engine = Engine::new(Config {
            backend,
            ..Config::default()
        });
        // r0 = *(u8 *)(r1 + 0) with r1 given by the caller.
        let insns = vec![Insn::new(0x71, 0, 1, 0, 0), Insn::new(0x95, 0, 0, 0, 0)];
        let o = engine
            .load_parsed(one_program(ProgType::Unspec, insns, &[]))
            .unwrap();
        let p = o.program("p").unwrap();
        let mut input = [9u8, 8, 7];
        let base = input.as_ptr() as u64;
        let e = p.call([base + 3, 0, 0, 0, 0], &mut input).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Run(RunError::Exec {
                    source: ExecError::MemoryAccess {
                        index: 0,
                        access: Access::Load,
                        ..
                    },
                    ..
                })
            ),
            "{backend:?}: {e}"
        );
        assert_eq!(p.call([base + 2, 0, 0, 0, 0], &mut input).unwrap(), 7);
    }
}

/// A checked program that reserves a ring buffer record and then faults
/// leaves the record behind; `call` discards it when the run ends (as the
/// other entry points do), so the consumer is not stuck behind a record that
/// is never committed and sees the next call's record.
#[test]
fn call_discards_the_record_a_faulting_run_reserved() {
    const BPF_MAP_TYPE_RINGBUF: u32 = 27;
    let insns = vec![
        Insn::new(0xbf, 6, 1, 0, 0), // r6 = r1
        Insn::new(0x18, 1, 5, 0, 0), // r1 = &maps[0]
        Insn::new(0x00, 0, 0, 0, 0),
        Insn::new(0xb7, 2, 0, 0, 8),   // r2 = 8
        Insn::new(0xb7, 3, 0, 0, 0),   // r3 = 0
        Insn::new(0x85, 0, 0, 0, 131), // bpf_ringbuf_reserve
        Insn::new(0x55, 0, 0, 1, 0),   // if r0 != 0 goto +1
        Insn::new(0x95, 0, 0, 0, 0),   // exit (r0 = 0)
        Insn::new(0x7b, 0, 6, 0, 0),   // *(u64 *)(r0 + 0) = r6
        Insn::new(0x15, 6, 0, 5, 0),   // if r6 == 0 goto fault
        Insn::new(0xbf, 1, 0, 0, 0),   // r1 = r0
        Insn::new(0xb7, 2, 0, 0, 0),   // r2 = 0
        Insn::new(0x85, 0, 0, 0, 132), // bpf_ringbuf_submit
        Insn::new(0xb7, 0, 0, 0, 1),   // r0 = 1
        Insn::new(0x95, 0, 0, 0, 0),   // exit
        Insn::new(0x71, 0, 6, 0, 0),   // fault: r0 = *(u8 *)(r6 + 0), r6 = 0
        Insn::new(0x95, 0, 0, 0, 0),
    ];
    for backend in BACKENDS {
        let engine = Engine::new(Config {
            backend,
            ..Config::default()
        });
        let object = one_program(ProgType::Unspec, insns.clone(), &[]).with_maps(vec![
            cordon_object::MapSpec::btf_defined("rb", BPF_MAP_TYPE_RINGBUF, 0, 0, 4096),
        ]);
        let o = engine.load_parsed(object).unwrap();
        let p = o.program("p").unwrap();
        assert!(!p.is_verified(), "{backend:?}: raw programs run checked");
        let e = p.call([0; 5], &mut []).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Run(RunError::Exec {
                    source: ExecError::MemoryAccess { index: 15, .. },
                    ..
                })
            ),
            "{backend:?}: {e}"
        );
        assert_eq!(p.call([5, 0, 0, 0, 0], &mut []).unwrap(), 1);
        let mut seen = Vec::new();
        let n = o
            .map("rb")
            .unwrap()
            .ringbuf_consume(|r| {
                seen.push(r.to_vec());
                true
            })
            .unwrap();
        assert_eq!(n, 1, "{backend:?}");
        assert_eq!(seen, vec![5u64.to_ne_bytes().to_vec()], "{backend:?}");
    }
}
