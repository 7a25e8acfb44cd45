//! Cordon's interpreter (checked and trusted) against rbpf 0.4's interpreter on the
//! same compute-heavy bytecode.
//!
//! Times are thread CPU time (the machine is shared). Run:
//! `cargo bench -p cordon-exec --bench interp -- --warm-up-time 1 --measurement-time 3`

mod common;

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};

use common::{SHARED_PROGRAMS, bytecode, cpu_timed, input, opts};
use cordon_exec::{ExecOptions, Executable, HelperRegistry, StackStrategy};
use cordon_isa::Program;

/// 2000 bpf-to-bpf calls, each writing to its own frame: measures frame
/// allocation for the three stack strategies (run per invocation: 1 entry frame).
const CALLS: &str = "
    mov %r6, 0
    mov %r0, 0
loop:
    mov %r1, %r6
    call local f
    add %r6, 1
    jlt %r6, 2000, loop
    exit
f:
    stxdw [%r10-8], %r1
    ldxdw %r2, [%r10-8]
    add %r0, %r2
    exit
";

fn bench(c: &mut Criterion) {
    for (name, src, mem_len) in SHARED_PROGRAMS {
        let code = bytecode(src);
        let program = Program::from_bytes(&code).unwrap();
        let helpers = HelperRegistry::new();
        let checked = Executable::checked(&program, &helpers, opts()).unwrap();
        // SAFETY: the benchmark programs only access their input and terminate.
        let trusted = unsafe { Executable::trusted(&program, &helpers, opts()) }.unwrap();
        let rbpf_vm = rbpf::EbpfVmRaw::new(Some(&code)).unwrap();
        let mut mem = input(mem_len);

        // All three must agree before timing.
        let want = checked.run(&mut mem).unwrap();
        assert_eq!(trusted.run(&mut mem).unwrap(), want, "{name}");
        assert_eq!(rbpf_vm.execute_program(&mut mem).unwrap(), want, "{name}");

        let mut g = c.benchmark_group(name);
        g.bench_function(BenchmarkId::new("cordon", "trusted"), |b| {
            b.iter_custom(|n| cpu_timed(n, || trusted.run(black_box(&mut mem)).unwrap()))
        });
        g.bench_function(BenchmarkId::new("cordon", "checked"), |b| {
            b.iter_custom(|n| cpu_timed(n, || checked.run(black_box(&mut mem)).unwrap()))
        });
        g.bench_function(BenchmarkId::new("rbpf-0.4", "interp"), |b| {
            b.iter_custom(|n| {
                cpu_timed(n, || rbpf_vm.execute_program(black_box(&mut mem)).unwrap())
            })
        });
        g.finish();
    }
}

/// Shadow stack per thread vs per program vs frames on the native stack.
fn stacks(c: &mut Criterion) {
    let program = Program::from_bytes(&bytecode(CALLS)).unwrap();
    let helpers = HelperRegistry::new();
    let mut g = c.benchmark_group("stack");
    for (name, strategy) in [
        ("thread-shadow", StackStrategy::ThreadShadow),
        ("per-program", StackStrategy::PerProgram),
        ("native", StackStrategy::Native),
    ] {
        let opts = ExecOptions {
            stack: strategy,
            ..ExecOptions::default()
        };
        // SAFETY: the program only touches its own frames and terminates.
        let exe = unsafe { Executable::trusted(&program, &helpers, opts) }.unwrap();
        assert_eq!(exe.run(&mut []).unwrap(), 1999 * 2000 / 2);
        g.bench_function(BenchmarkId::new("calls-2000", name), |b| {
            b.iter_custom(|n| cpu_timed(n, || exe.run(black_box(&mut [])).unwrap()))
        });
        // Invocation overhead alone: `mov r0, 1; exit`.
        let tiny = Program::from_bytes(&bytecode("mov %r0, 1\nexit")).unwrap();
        let opts = ExecOptions {
            stack: strategy,
            ..ExecOptions::default()
        };
        // SAFETY: as above.
        let exe = unsafe { Executable::trusted(&tiny, &helpers, opts) }.unwrap();
        g.bench_function(BenchmarkId::new("invoke", name), |b| {
            b.iter_custom(|n| cpu_timed(n, || exe.run(black_box(&mut [])).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench, stacks);
criterion_main!(benches);
