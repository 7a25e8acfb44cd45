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
