//! The Cranelift JIT (trusted and checked) against Cordon's trusted interpreter
//! and rbpf 0.4's x86-64 JIT on the same bytecode, the cost of an empty program
//! through the API, and compile time per 1 000 instructions.
//!
//! Times are thread CPU time (the machine is shared). Run:
//! `cargo bench -p cordon-exec --bench jit -- --warm-up-time 1 --measurement-time 3`

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};

use cordon_exec::jit::JitExecutable;
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

/// FNV-1a over the 4 KiB input, 16 times (loads from memory + ALU).
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

/// Bubble sort of 64 u32 on the stack (stack loads/stores, nested loops), then
/// a checksum; bpf-to-bpf call for the swap.
const SORT: &str = "
    mov %r6, 0
fill:
    mov %r2, %r6
    mul %r2, 0x9e3779b1
    and %r2, 0xffff
    mov %r3, %r6
    lsh %r3, 2
    mov %r4, %r10
    sub %r4, 256
    add %r4, %r3
    stxw [%r4], %r2
    add %r6, 1
    jlt %r6, 64, fill
    mov %r6, 0
pass:
    mov %r7, 0
inner:
    mov %r1, %r10
    sub %r1, 256
    mov %r3, %r7
    lsh %r3, 2
    add %r1, %r3
    call local swap
    add %r7, 1
    jlt %r7, 63, inner
    add %r6, 1
    jlt %r6, 64, pass
    mov %r0, 0
    mov %r6, 0
sum:
    mov %r4, %r10
    sub %r4, 256
    mov %r3, %r6
    lsh %r3, 2
    add %r4, %r3
    ldxw %r2, [%r4]
    mul %r0, 31
    add %r0, %r2
    add %r6, 1
    jlt %r6, 64, sum
    exit
swap:
    ldxw %r2, [%r1]
    ldxw %r3, [%r1+4]
    jle %r2, %r3, keep
    stxw [%r1], %r3
    stxw [%r1+4], %r2
keep:
    exit
";

fn bytecode(src: &str) -> Vec<u8> {
    let insns = assemble(src).expect("benchmark program assembles");
    cordon_isa::insn::to_bytes(&insns)
}

/// CPU time of the calling thread (the machine is shared).
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

fn opts() -> ExecOptions {
    ExecOptions {
        stack: StackStrategy::ThreadShadow,
        instruction_budget: u64::MAX,
        ..ExecOptions::default()
    }
}

fn programs(c: &mut Criterion) {
    let programs = [
        ("primes", PRIMES, 0usize, true),
        ("collatz", COLLATZ, 0, true),
        ("fnv1a", FNV, 4096, true),
        ("sort", SORT, 0, false),
    ];
    for (name, src, mem_len, rbpf_ok) in programs {
        let code = bytecode(src);
        let program = Program::from_bytes(&code).unwrap();
        let helpers = HelperRegistry::new();
        // SAFETY: the benchmark programs only access their input and their
        // stack, and terminate.
        let jit = unsafe { JitExecutable::trusted(&program, &helpers, opts()) }.unwrap();
        let jit_checked = JitExecutable::checked(&program, &helpers, opts()).unwrap();
        // SAFETY: as above.
        let interp = unsafe { Executable::trusted(&program, &helpers, opts()) }.unwrap();
        let mut mem: Vec<u8> = (0..mem_len).map(|i| (i * 7 + 3) as u8).collect();

        let want = interp.run(&mut mem).unwrap();
        assert_eq!(jit.run(&mut mem).unwrap(), want, "{name}");
        assert_eq!(jit_checked.run(&mut mem).unwrap(), want, "{name}");

        let mut g = c.benchmark_group(format!("jit/{name}"));
        g.bench_function(BenchmarkId::new("cordon-jit", "trusted"), |b| {
            b.iter_custom(|n| cpu_timed(n, || jit.run(black_box(&mut mem)).unwrap()))
        });
        g.bench_function(BenchmarkId::new("cordon-jit", "checked"), |b| {
            b.iter_custom(|n| cpu_timed(n, || jit_checked.run(black_box(&mut mem)).unwrap()))
        });
        g.bench_function(BenchmarkId::new("cordon-interp", "trusted"), |b| {
            b.iter_custom(|n| cpu_timed(n, || interp.run(black_box(&mut mem)).unwrap()))
        });
        if rbpf_ok {
            let mut vm = rbpf::EbpfVmRaw::new(Some(&code)).unwrap();
            vm.jit_compile().unwrap();
            // SAFETY: compiled above; the program only reads its input.
            let r = unsafe { vm.execute_program_jit(&mut mem) }.unwrap();
            assert_eq!(r, want, "{name} on rbpf");
            g.bench_function(BenchmarkId::new("rbpf-0.4", "jit"), |b| {
                b.iter_custom(|n| {
                    cpu_timed(n, || {
                        // SAFETY: as above.
                        unsafe { vm.execute_program_jit(black_box(&mut mem)) }.unwrap()
                    })
                })
            });
        }
        g.finish();
    }
}

fn empty(c: &mut Criterion) {
    let program = Program::from_bytes(&bytecode("mov %r0, 0\nexit")).unwrap();
    let helpers = HelperRegistry::new();
    let mut g = c.benchmark_group("jit/empty");
    for stack in [StackStrategy::ThreadShadow, StackStrategy::Native] {
        let o = ExecOptions { stack, ..opts() };
        // SAFETY: the program touches no memory.
        let jit = unsafe { JitExecutable::trusted(&program, &helpers, o) }.unwrap();
        let mut mem = [0u8; 8];
        g.bench_function(BenchmarkId::new("run", format!("{stack:?}")), |b| {
            b.iter_custom(|n| cpu_timed(n, || jit.run(black_box(&mut mem)).unwrap()))
        });
    }
    g.finish();
}

/// A 1 000-instruction program shaped like compiled C: ALU, stack traffic,
/// short forward branches.
fn thousand() -> String {
    let mut s = String::from("mov %r0, 0\nmov %r2, 1\nmov %r3, 2\nmov %r4, 3\nmov %r5, 4\n");
    for i in 0..995 {
        match i % 10 {
            0 => s += &format!("add %r0, {i}\n"),
            1 => s += "mul %r2, %r3\n",
            2 => s += &format!("stxdw [%r10-{}], %r2\n", 8 * (1 + i % 60)),
            3 => s += &format!("ldxdw %r4, [%r10-{}]\n", 8 * (1 + (i + 7) % 60)),
            4 if i + 3 < 995 => s += &format!("jgt %r4, %r5, L{i}\n"),
            4 => s += "add %r4, 1\n",
            5 => s += "xor %r3, %r4\n",
            6 => s += "rsh %r3, 3\n",
            7 => s += &format!("L{}:\nadd32 %r5, %r3\n", i - 3),
            8 => s += "or %r0, %r5\n",
            _ => s += "lsh %r2, 1\n",
        }
    }
    s + "exit\n"
}

fn compile(c: &mut Criterion) {
    let program = Program::new(assemble(&thousand()).unwrap()).unwrap();
    assert_eq!(program.len(), 1001);
    let helpers = HelperRegistry::new();
    let mut g = c.benchmark_group("jit/compile-1000");
    g.sample_size(20);
    g.bench_function("trusted", |b| {
        b.iter_custom(|n| {
            cpu_timed(n, || {
                // SAFETY: compiled only, the program is not run.
                let e = unsafe { JitExecutable::trusted(&program, &helpers, opts()) }.unwrap();
                e.code_size() as u64
            })
        })
    });
    g.bench_function("checked", |b| {
        b.iter_custom(|n| {
            cpu_timed(n, || {
                JitExecutable::checked(&program, &helpers, opts())
                    .unwrap()
                    .code_size() as u64
            })
        })
    });
    g.finish();
}

criterion_group!(benches, programs, empty, compile);
criterion_main!(benches);
