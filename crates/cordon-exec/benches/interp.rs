//! Cordon's interpreter (checked and trusted) against rbpf 0.4's interpreter on the
//! same compute-heavy bytecode.
//!
//! Times are thread CPU time (the machine is shared). Run:
//! `cargo bench -p cordon-exec --bench interp -- --warm-up-time 1 --measurement-time 3`

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};

use cordon_exec::{ExecOptions, Executable, HelperRegistry, StackStrategy};
use cordon_isa::{Program, assemble};

/// Count the primes below 10 000 by trial division (r0 = 1229).
const PRIMES: &str = "
    mov %r0, 0
    mov %r1, 2
outer:
    mov %r2, 2
inner:
    mov %r3, %r2
    mul %r3, %r2
    jgt %r3, %r1, prime
    mov %r4, %r1
    mod %r4, %r2
    jeq %r4, 0, next
    add %r2, 1
    ja inner
prime:
    add %r0, 1
next:
    add %r1, 1
    jlt %r1, 10000, outer
    exit
";

/// Total Collatz steps of 1..=3000 (ALU and branches only).
const COLLATZ: &str = "
    mov %r0, 0
    mov %r1, 1
outer:
    mov %r2, %r1
loop:
    jeq %r2, 1, done
    add %r0, 1
    jset %r2, 1, odd
    rsh %r2, 1
    ja loop
odd:
    mul %r2, 3
    add %r2, 1
    ja loop
done:
    add %r1, 1
    jle %r1, 3000, outer
    exit
";

/// FNV-1a over the 4 KiB input, 16 times (loads from memory + ALU). The length
/// is a constant because rbpf does not pass it in r2.
const FNV: &str = "
    mov %r6, 0
    lddw %r0, 0xcbf29ce484222325
    lddw %r5, 0x100000001b3
round:
    mov %r3, %r1
    mov %r4, %r1
    add %r4, 4096
byte:
    ldxb %r7, [%r3]
    xor %r0, %r7
    mul %r0, %r5
    add %r3, 1
    jlt %r3, %r4, byte
    add %r6, 1
    jlt %r6, 16, round
    exit
";

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

fn bytecode(src: &str) -> Vec<u8> {
    let insns = assemble(src).expect("benchmark program assembles");
    cordon_isa::insn::to_bytes(&insns)
}

/// CPU time of the calling thread. The benchmark machine is shared, so wall time
/// includes time this thread was descheduled; CPU time does not.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Time `iters` runs of `f` in thread CPU time.
fn cpu_timed(iters: u64, mut f: impl FnMut() -> u64) -> Duration {
    let start = thread_cpu_time();
    for _ in 0..iters {
        black_box(f());
    }
    thread_cpu_time() - start
}

fn bench(c: &mut Criterion) {
    let programs = [
        ("primes", PRIMES, 0usize),
        ("collatz", COLLATZ, 0),
        ("fnv1a", FNV, 4096),
    ];
    for (name, src, mem_len) in programs {
        let code = bytecode(src);
        let program = Program::from_bytes(&code).unwrap();
        let helpers = HelperRegistry::new();
        let opts = ExecOptions {
            stack: StackStrategy::ThreadShadow,
            instruction_budget: u64::MAX,
            ..ExecOptions::default()
        };
        let checked = Executable::checked(&program, &helpers, opts.clone()).unwrap();
        // SAFETY: the benchmark programs only access their input and terminate.
        let trusted = unsafe { Executable::trusted(&program, &helpers, opts) }.unwrap();
        let rbpf_vm = rbpf::EbpfVmRaw::new(Some(&code)).unwrap();
        let mut mem: Vec<u8> = (0..mem_len).map(|i| (i * 7 + 3) as u8).collect();

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
