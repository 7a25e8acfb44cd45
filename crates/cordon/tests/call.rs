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
