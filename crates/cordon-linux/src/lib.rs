//! Test support: run the same BPF program in the real Linux kernel and get
//! back what Linux returns, so Cordon's tests and benchmarks can compare.
//!
//! Two layers:
//!
//! * **Raw `bpf()` syscall** ([`Map`], [`ProgLoad`], [`Program`], [`Btf`],
//!   [`verdict`], [`test_run`]): load a slice of [`cordon_isa::Insn`] exactly
//!   as given (no relocation, no rewriting) against maps created here. Programs
//!   that reference maps with `lddw` pseudo sources 5/6 (`BPF_PSEUDO_MAP_IDX`,
//!   `BPF_PSEUDO_MAP_IDX_VALUE`, the form Cordon's loader produces) find map
//!   `imm` in the `fd_array` built from the maps you pass.
//! * **Objects through bpftool/libbpf** ([`KernelObject`]): an independent
//!   loader, so comparisons also catch bugs in Cordon's own ELF loader.
//!
//! # Skipping
//!
//! Every entry point returns `Result<_, KernelError>`. Where the machine does
//! not permit the operation — not Linux, `bpf()` refused (`EPERM`, `ENOSYS`),
//! `bpftool` missing, bpffs not mountable, the kernel lacking `BPF_PROG_TEST_RUN`
//! for a program type — the error is [`KernelError::Unavailable`], which tests
//! turn into a printed skip with [`require!`] / [`KernelError::skip`]. Setting
//! the environment variable `CORDON_LINUX_DISABLE` to anything but `0` or the
//! empty string forces `Unavailable` everywhere (to exercise the skip path).
//! `CORDON_BPFTOOL` names the bpftool binary (default: `bpftool` on `PATH`,
//! then `/usr/sbin/bpftool`).
//!
//! # What Linux does (6.18, x86-64; each point is checked by a test)
//!
//! * `retval` is the low 32 bits of r0 (`r0 = -5` gives `0xfffffffb`).
//! * Packets shorter than 14 bytes are `EINVAL` for XDP and skb programs.
//! * XDP: the linear area is at most 3520 bytes (4096 - 256 headroom - 320
//!   `skb_shared_info`); longer input continues in fragments the program does
//!   not see between `data` and `data_end`, and `data_out` returns all of it.
//!   `ctx_in` (`struct xdp_md`, 24 bytes): `data_meta` must be 0, `data` is
//!   the metadata length, `data_end` may be *below* the input length (the rest
//!   becomes a fragment) but not above it, `egress_ifindex` must be 0,
//!   `ingress_ifindex` must name a device (1 = lo works). `ctx_out` is 24 bytes.
//! * skb programs: input at most 3712 bytes (4096 - 64 `NET_SKB_PAD` - 320).
//!   `SCHED_CLS` sees the whole frame (`skb->len` = input length).
//!   `SOCKET_FILTER` (and the other non-L2 types) see data from the network
//!   header: `skb->len` = length - 14, `LD_ABS` offsets count from the IP
//!   header, and `data_out` has the full length with the 14 Ethernet bytes
//!   *zeroed*. `skb->ifindex` is the loopback device. `ctx_in`
//!   (`struct __sk_buff`) may set only some fields (mark, priority, cb, ...);
//!   a non-zero `len` is `EINVAL`. `ctx_out` is always the whole 192-byte
//!   `__sk_buff`, however short `ctx_in` was.
//! * An output larger than the `data_out` buffer is `ENOSPC` *after* the
//!   program ran (its map writes happened).
//! * Verifier log: at level 1 a successful load keeps only the summary line
//!   (`processed N insns ...`); the instruction trace appears on failure or
//!   at level 2. A log that does not fit fails the load with `ENOSPC` (the
//!   size needed comes back in `log_true_size`); [`ProgLoad`] retries with a
//!   larger buffer. Most rejections are `EACCES` (`R0 !read_ok`); malformed
//!   `func_info` is `EINVAL`. As root, reading uninitialised stack is allowed.
//! * Per-CPU maps: a syscall lookup returns `round_up(value_size, 8)` bytes
//!   per *possible* CPU; bpftool prints `value_size` bytes per CPU.
//! * `BPF_MAP_FREEZE`d maps refuse syscall updates with `EPERM`.

mod btf;
mod error;
mod map;
mod object;
mod prog;
mod sys;
mod types;

pub use btf::Btf;
pub use error::{DISABLE_ENV, KernelError, available, possible_cpus};
pub use map::{Map, MapSpec, update_flags};
pub use object::{KernelObject, ObjectLoad, ObjectVerdict, map_pin_name};
pub use prog::{
    FuncInfo, KernelRun, LineInfo, ProgLoad, Program, TestRun, Verdict, test_run, verdict,
};
pub use sys::errno_name;
pub use types::{AttachType, MapType, ProgType, pseudo};

/// Map contents as (key, value) pairs.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;
/// Map contents as (key, one value per possible CPU) pairs.
pub type PerCpuEntries = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

/// Pin the calling thread to CPU `cpu` (`sched_setaffinity`), so that the
/// syscalls it makes and the programs it test-runs use that CPU's per-CPU
/// state (per-CPU map slots, LRU local lists).
pub fn pin_to_cpu(cpu: usize) -> Result<(), KernelError> {
    // SAFETY: plain libc calls on a local, zero-initialised cpu_set_t.
    let r = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
            return Err(KernelError::io(
                "sched_setaffinity",
                std::io::Error::from_raw_os_error(libc::EINVAL),
            ));
        }
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if r != 0 {
        return Err(KernelError::io(
            "sched_setaffinity",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Print `skipped: <reason>` on stderr in a way the test harness does not
/// capture (a direct write, not `eprintln!`), so skips show in `cargo test`
/// output even for passing tests.
pub fn report_skip(reason: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "skipped: {reason}");
}

/// Evaluate a `Result<T, KernelError>`: the value on success; on
/// [`KernelError::Unavailable`] print `skipped: <reason>` to stderr (see
/// [`report_skip`]) and
/// `return` from the enclosing (unit-returning) test; panic on any other error.
///
/// ```ignore
/// let map = cordon_linux::require!(Map::create(&MapSpec::array(4, 8, 1)));
/// ```
#[macro_export]
macro_rules! require {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => match e.skip() {
                Some(reason) => {
                    $crate::report_skip(reason);
                    return;
                }
                None => panic!("{e}"),
            },
        }
    };
}
