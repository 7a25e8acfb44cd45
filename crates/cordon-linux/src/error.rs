//! Errors, and the one-time check whether this machine lets us use `bpf()`.

use crate::sys::{self, cmd, errno_name};
use std::sync::OnceLock;

/// Everything that can go wrong talking to the kernel.
///
/// [`KernelError::Unavailable`] means "this machine does not permit it" and
/// tests should skip; every other variant is a real failure.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The environment does not permit the operation (not root, `bpf()`
    /// missing or refused, bpftool missing, feature unsupported by this
    /// kernel, or `CORDON_LINUX_DISABLE` set). Tests print it and skip.
    #[error("unavailable: {0}")]
    Unavailable(String),

    /// A `bpf()` command failed.
    #[error("bpf({}) failed: {} ({errno}){}", cmd::name(*.cmd), errno_name(*.errno), fmt_detail(.detail))]
    Syscall {
        cmd: u32,
        errno: i32,
        detail: String,
    },

    /// The kernel (verifier, BTF checker) or libbpf refused what we loaded.
    #[error("{what} rejected: {} ({errno}){}", errno_name(*.errno), fmt_log(.log))]
    Rejected {
        what: String,
        errno: i32,
        log: String,
    },

    /// bpftool ran and failed.
    #[error("`bpftool {args}` failed ({status}): {stderr}")]
    Bpftool {
        args: String,
        status: String,
        stderr: String,
    },

    /// bpftool said something we could not parse.
    #[error("cannot parse the output of `bpftool {args}`: {problem}: {output}")]
    BpftoolOutput {
        args: String,
        problem: String,
        output: String,
    },

    /// No program or map of that name in a [`crate::KernelObject`].
    #[error("no {kind} named {name:?} (have: {})", .available.join(", "))]
    NotFound {
        kind: &'static str,
        name: String,
        available: Vec<String>,
    },

    /// The caller passed something the kernel interface cannot express
    /// (wrong key size, buffer too large for a u32 length, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn fmt_detail(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}

fn fmt_log(log: &str) -> String {
    if log.trim().is_empty() {
        String::new()
    } else {
        format!("\n{}", log.trim_end())
    }
}

impl KernelError {
    /// The reason to print when this error means "skip the test".
    pub fn skip(&self) -> Option<&str> {
        match self {
            KernelError::Unavailable(reason) => Some(reason),
            _ => None,
        }
    }

    /// True for [`KernelError::Unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, KernelError::Unavailable(_))
    }

    /// The errno of a failed syscall or rejected load.
    pub fn errno(&self) -> Option<i32> {
        match self {
            KernelError::Syscall { errno, .. } | KernelError::Rejected { errno, .. } => {
                Some(*errno)
            }
            _ => None,
        }
    }

    pub(crate) fn syscall(cmd: u32, errno: i32, detail: impl Into<String>) -> Self {
        if errno == libc::ENOSYS {
            return KernelError::Unavailable(format!(
                "bpf({}) not implemented by this kernel: ENOSYS",
                cmd::name(cmd)
            ));
        }
        KernelError::Syscall {
            cmd,
            errno,
            detail: detail.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        KernelError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Name of the environment variable that forces [`KernelError::Unavailable`].
pub const DISABLE_ENV: &str = "CORDON_LINUX_DISABLE";

fn disabled_by_env() -> Option<String> {
    match std::env::var_os(DISABLE_ENV) {
        Some(v) if !v.is_empty() && v != "0" => {
            Some(format!("disabled by {DISABLE_ENV}={}", v.to_string_lossy()))
        }
        _ => None,
    }
}

/// Whether the raw `bpf()` layer can be used here: `Ok(())`, or
/// [`KernelError::Unavailable`] with the reason. The probe (loading a
/// two-instruction socket filter) runs once per process; the
/// `CORDON_LINUX_DISABLE` variable is read on every call.
pub fn available() -> Result<(), KernelError> {
    if let Some(reason) = disabled_by_env() {
        return Err(KernelError::Unavailable(reason));
    }
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(probe)
        .clone()
        .map_err(KernelError::Unavailable)
}

fn probe() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err("not Linux: no bpf() system call".into());
    }
    // r0 = 0; exit
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = b"GPL\0";
    let mut attr = sys::ProgLoadAttr {
        prog_type: 1, // BPF_PROG_TYPE_SOCKET_FILTER
        insn_cnt: 2,
        insns: sys::ptr(&insns),
        license: sys::ptr(license),
        ..Default::default()
    };
    match sys::bpf_fd(cmd::PROG_LOAD, &mut attr) {
        Ok(_fd) => Ok(()),
        Err(errno) => Err(format!(
            "bpf() not permitted: {} ({errno}) loading a trivial socket filter{}",
            errno_name(errno),
            if unsafe_euid_is_root() {
                ""
            } else {
                " (not root)"
            }
        )),
    }
}

fn unsafe_euid_is_root() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The number of possible CPUs (`/sys/devices/system/cpu/possible`), which is
/// how many values a per-CPU map lookup returns.
pub fn possible_cpus() -> Result<usize, KernelError> {
    static CPUS: OnceLock<Result<usize, String>> = OnceLock::new();
    CPUS.get_or_init(|| {
        let path = "/sys/devices/system/cpu/possible";
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        parse_cpu_list(&text).ok_or_else(|| format!("{path}: cannot parse {text:?}"))
    })
    .clone()
    .map_err(|e| KernelError::io("possible CPUs", std::io::Error::other(e)))
}

/// Parse a kernel CPU list such as `0-3,5,7-8` into one past its highest CPU.
fn parse_cpu_list(text: &str) -> Option<usize> {
    let mut max = None;
    for part in text.trim().split(',') {
        let last = match part.split_once('-') {
            Some((a, b)) => {
                a.trim().parse::<usize>().ok()?;
                b.trim().parse::<usize>().ok()?
            }
            None => part.trim().parse::<usize>().ok()?,
        };
        max = Some(max.map_or(last, |m: usize| m.max(last)));
    }
    max.map(|m| m + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(2));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Some(9));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn unavailable_is_a_skip() {
        let e = KernelError::Unavailable("no".into());
        assert_eq!(e.skip(), Some("no"));
        let e = KernelError::syscall(cmd::MAP_CREATE, libc::EINVAL, "");
        assert!(e.skip().is_none());
        assert_eq!(e.to_string(), "bpf(BPF_MAP_CREATE) failed: EINVAL (22)");
        assert!(KernelError::syscall(cmd::MAP_CREATE, libc::ENOSYS, "").is_unavailable());
    }
}
