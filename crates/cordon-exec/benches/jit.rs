//! The Cranelift JIT (trusted and checked) against Cordon's trusted interpreter
//! and rbpf 0.4's x86-64 JIT on the same bytecode, the cost of an empty program
//! through the API, and compile time per 1 000 instructions.
//!
//! Times are thread CPU time (the machine is shared). Run:
//! `cargo bench -p cordon-exec --bench jit -- --warm-up-time 1 --measurement-time 3`

mod common;

use criterion::{BenchmarkId, Criterion, black_box, criterion_group, criterion_main};

use common::{SHARED_PROGRAMS, bytecode, cpu_timed, input, opts};
use cordon_exec::jit::JitExecutable;
use cordon_exec::{ExecOptions, Executable, HelperRegistry, StackStrategy};
use cordon_isa::{Program, assemble};

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

fn programs(c: &mut Criterion) {
    // rbpf's JIT runs the shared programs, not the sort (bpf-to-bpf call).
    let programs = SHARED_PROGRAMS
        .iter()
        .map(|&(name, src, len)| (name, src, len, true))
        .chain([("sort", SORT, 0, false)]);
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
        let mut mem = input(mem_len);

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
