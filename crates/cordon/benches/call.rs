//! Call overhead: an empty program (`r0 = 0; exit`) through every public
//! entry point of the embedding API, on the interpreter and the JIT, plus a
//! program that references a map (so the run pins the map epoch).
//!
//! Times are thread CPU time (`iter_custom`): the machine is shared, and
//! time the thread spends descheduled is not the call's cost.
//!
//! Run: `cargo bench -p cordon --bench call -- --warm-up-time 1 --measurement-time 3`

use std::time::Duration;

use criterion::{Bencher, Criterion, black_box, criterion_group, criterion_main};

use cordon::{Backend, Config, Engine, Insn, Program};
use cordon_object::{Object, ProgType};

fn object(insns: Vec<Insn>) -> Object {
    Object::single_program("empty", "xdp", ProgType::Xdp, insns)
}

fn empty_program(backend: Backend) -> (Engine, cordon::Object, Program) {
    let engine = Engine::new(Config {
        backend,
        ..Config::default()
    });
    let insns = vec![Insn::new(0xb7, 0, 0, 0, 0), Insn::new(0x95, 0, 0, 0, 0)];
    let obj = engine.load_parsed(object(insns)).expect("load");
    let prog = obj.program("empty").expect("program");
    assert!(prog.is_verified());
    (engine, obj, prog)
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `b.iter(f)` timed in thread CPU time.
fn cpu_iter<R>(b: &mut Bencher<'_>, mut f: impl FnMut() -> R) {
    b.iter_custom(|iters| {
        let start = thread_cpu();
        for _ in 0..iters {
            black_box(f());
        }
        thread_cpu() - start
    })
}

fn bench(c: &mut Criterion) {
    for (label, backend) in [("jit", Backend::Jit), ("interp", Backend::Interpreter)] {
        let (_engine, _obj, prog) = empty_program(backend);
        let mut input = [0u8; 64];
        let mut g = c.benchmark_group(format!("empty/{label}"));
        g.bench_function("Program::call", |b| {
            cpu_iter(b, || {
                prog.call(black_box([0; 5]), black_box(&mut input)).unwrap()
            })
        });
        g.bench_function("Program::run_raw", |b| {
            cpu_iter(b, || prog.run_raw(black_box(&mut input)).unwrap().r0)
        });
        let packet = [0u8; 64];
        g.bench_function("Program::run_xdp", |b| {
            cpu_iter(b, || prog.run_xdp(black_box(&packet)).unwrap().r0)
        });
        g.finish();
    }
    // The engines' own entry points on the same program, without the runtime
    // (no invocation state, epoch or CPU slot): the floor of the API path.
    let program = cordon_isa::Program::new(vec![
        Insn::new(0xb7, 0, 0, 0, 0),
        Insn::new(0x95, 0, 0, 0, 0),
    ])
    .expect("program");
    let helpers = cordon_exec::HelperRegistry::new();
    let options = cordon_exec::ExecOptions::named("empty");
    // SAFETY: `r0 = 0; exit` touches no memory and terminates.
    let jit =
        unsafe { cordon_exec::jit::JitExecutable::trusted(&program, &helpers, options.clone()) }
            .expect("jit");
    // SAFETY: as above.
    let interp =
        unsafe { cordon_exec::Executable::trusted(&program, &helpers, options) }.expect("interp");
    let mut input = [0u8; 64];
    let mut g = c.benchmark_group("empty/engine");
    g.bench_function("JitExecutable::run_with", |b| {
        cpu_iter(b, || {
            jit.run_with(black_box([0; 5]), black_box(&mut input), &[])
                .unwrap()
        })
    });
    g.bench_function("Executable::run_with", |b| {
        cpu_iter(b, || {
            interp
                .run_with(black_box([0; 5]), black_box(&mut input), &[])
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
