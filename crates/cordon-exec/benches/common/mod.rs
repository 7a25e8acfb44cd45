//! What the interpreter and JIT benchmarks share: the compute-heavy programs
//! they both run (Cordon against rbpf 0.4 on the same bytecode), the input
//! buffer, the execution options and thread-CPU-time measurement.

use std::time::Duration;

use criterion::black_box;

use cordon_exec::{ExecOptions, StackStrategy};
use cordon_isa::assemble;

/// Count the primes below 10 000 by trial division (r0 = 1229).
pub const PRIMES: &str = "
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
pub const COLLATZ: &str = "
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
pub const FNV: &str = "
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

/// The programs every engine (and rbpf) runs: name, source, input length.
pub const SHARED_PROGRAMS: [(&str, &str, usize); 3] = [
    ("primes", PRIMES, 0),
    ("collatz", COLLATZ, 0),
    ("fnv1a", FNV, 4096),
];

/// Raw bytecode of an assembly source (what rbpf takes).
pub fn bytecode(src: &str) -> Vec<u8> {
    let insns = assemble(src).expect("benchmark program assembles");
    cordon_isa::insn::to_bytes(&insns)
}

/// The input buffer of `len` bytes (a fixed, non-trivial pattern).
pub fn input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + 3) as u8).collect()
}

/// Options for the compute benchmarks: thread shadow stack, no budget.
pub fn opts() -> ExecOptions {
    ExecOptions {
        stack: StackStrategy::ThreadShadow,
        instruction_budget: u64::MAX,
        ..ExecOptions::default()
    }
}

/// CPU time of the calling thread. The benchmark machine is shared, so wall time
/// includes time this thread was descheduled; CPU time does not.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Time `iters` runs of `f` in thread CPU time.
pub fn cpu_timed(iters: u64, mut f: impl FnMut() -> u64) -> Duration {
    let start = thread_cpu_time();
    for _ in 0..iters {
        black_box(f());
    }
    thread_cpu_time() - start
}
