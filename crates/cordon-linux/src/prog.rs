//! Programs loaded with `BPF_PROG_LOAD`, verifier verdicts, and
//! `BPF_PROG_TEST_RUN`.

use crate::btf::Btf;
use crate::error::{KernelError, available};
use crate::map::Map;
use crate::sys::{self, ProgLoadAttr, TestRunAttr, cmd, errno_name};
use crate::types::{AttachType, ProgType};
use cordon_isa::Insn;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// First verifier log buffer size; grown to what the kernel reports needing.
const INITIAL_LOG_SIZE: usize = 1 << 20;
/// Linux refuses log buffers larger than `UINT_MAX >> 2`.
const MAX_LOG_SIZE: usize = (u32::MAX >> 2) as usize;
/// How far to grow the log on kernels that do not report the size they need.
const LEGACY_LOG_LIMIT: usize = 64 << 20;
/// `ENOTSUPP`: kernel-internal "not supported", returned by `BPF_PROG_TEST_RUN`
/// for program types without a test runner.
const ENOTSUPP: i32 = 524;

/// One `struct bpf_func_info` record (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FuncInfo {
    pub insn_off: u32,
    pub type_id: u32,
}

/// One `struct bpf_line_info` record (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineInfo {
    pub insn_off: u32,
    pub file_name_off: u32,
    pub line_off: u32,
    /// Line number << 10 | column.
    pub line_col: u32,
}

/// Everything `BPF_PROG_LOAD` takes. [`ProgLoad::new`] gives GPL license,
/// log level 1, no maps; set fields directly or with the `with_*` methods.
#[derive(Clone, Copy, Debug)]
pub struct ProgLoad<'a> {
    pub prog_type: ProgType,
    pub insns: &'a [Insn],
    /// Default "GPL" (GPL-only helpers are then allowed).
    pub license: &'a str,
    /// Program name (sanitised and cut to 15 bytes).
    pub name: &'a str,
    /// Verifier log level: 0 (none), 1 (BPF_LOG_LEVEL1), 2 (LEVEL2), |4 (stats).
    pub log_level: u32,
    pub expected_attach_type: AttachType,
    /// `BPF_F_*` load flags (e.g. `BPF_F_TEST_RND_HI32`, `BPF_F_SLEEPABLE`).
    pub prog_flags: u32,
    pub kern_version: u32,
    /// Becomes `fd_array`: `lddw` with src 5/6 and `imm = i` refers to `maps[i]`.
    pub maps: &'a [&'a Map],
    /// `prog_btf_fd`, needed with `func_info` / `line_info`.
    pub btf: Option<&'a Btf>,
    pub func_info: &'a [FuncInfo],
    pub line_info: &'a [LineInfo],
    pub attach_btf_id: u32,
    pub attach_prog_fd: Option<BorrowedFd<'a>>,
}

/// Whether the kernel accepted a program, and what its verifier said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub accepted: bool,
    /// The complete verifier log (grown until nothing was truncated).
    pub log: String,
    /// The errno of a rejection (`EACCES` for most verifier rejections,
    /// `EINVAL` for malformed programs); `None` when accepted.
    pub errno: Option<i32>,
}

/// A program loaded in the kernel; closed on drop.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
    prog_type: ProgType,
    log: String,
}

impl AsFd for Program {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Input of `BPF_PROG_TEST_RUN`. [`TestRun::new`] gives one run over
/// `data_in` without context.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestRun<'a> {
    pub data_in: &'a [u8],
    /// Size of the `data_out` buffer; default `data_in.len() + 64 KiB`. If the
    /// packet comes out larger the kernel copies what fits and fails with
    /// `ENOSPC`.
    pub data_out_size: Option<usize>,
    /// Context (`struct xdp_md`, `struct __sk_buff`, ...) passed in.
    pub ctx_in: Option<&'a [u8]>,
    /// Size of the `ctx_out` buffer; default 0 (no context out) without
    /// `ctx_in`, 4 KiB with it. The result is cut to the size Linux reports.
    pub ctx_out_size: Option<usize>,
    /// 0 and 1 both mean one run; `duration_ns` is the mean per run.
    pub repeat: u32,
    /// `BPF_F_TEST_*` flags.
    pub flags: u32,
    pub cpu: u32,
    pub batch_size: u32,
}

impl<'a> TestRun<'a> {
    pub fn new(data_in: &'a [u8]) -> Self {
        TestRun {
            data_in,
            ..Default::default()
        }
    }

    pub fn with_ctx(mut self, ctx_in: &'a [u8]) -> Self {
        self.ctx_in = Some(ctx_in);
        self
    }

    pub fn with_repeat(mut self, repeat: u32) -> Self {
        self.repeat = repeat;
        self
    }
}

/// What a test run returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelRun {
    /// The program's return value (`retval`, the low 32 bits of r0).
    pub retval: u32,
    /// The packet after the run, `data_size_out` bytes as Linux reports it.
    pub data_out: Vec<u8>,
    /// The context after the run (empty unless requested / `ctx_in` given).
    pub ctx_out: Vec<u8>,
    /// Mean duration of one run in nanoseconds, as Linux measured it.
    pub duration_ns: u64,
}

/// Turn a NUL-terminated log buffer into text.
pub(crate) fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn len_u32(what: &str, n: usize) -> Result<u32, KernelError> {
    u32::try_from(n)
        .map_err(|_| KernelError::InvalidArgument(format!("{what} of {n} is too large")))
}

impl<'a> ProgLoad<'a> {
    pub fn new(prog_type: ProgType, insns: &'a [Insn]) -> Self {
        ProgLoad {
            prog_type,
            insns,
            license: "GPL",
            name: "",
            log_level: 1,
            expected_attach_type: AttachType(0),
            prog_flags: 0,
            kern_version: 0,
            maps: &[],
            btf: None,
            func_info: &[],
            line_info: &[],
            attach_btf_id: 0,
            attach_prog_fd: None,
        }
    }

    pub fn with_maps(mut self, maps: &'a [&'a Map]) -> Self {
        self.maps = maps;
        self
    }

    pub fn with_log_level(mut self, level: u32) -> Self {
        self.log_level = level;
        self
    }

    pub fn with_license(mut self, license: &'a str) -> Self {
        self.license = license;
        self
    }

    pub fn with_name(mut self, name: &'a str) -> Self {
        self.name = name;
        self
    }

    pub fn with_expected_attach_type(mut self, t: AttachType) -> Self {
        self.expected_attach_type = t;
        self
    }

    pub fn with_btf(
        mut self,
        btf: &'a Btf,
        func_info: &'a [FuncInfo],
        line_info: &'a [LineInfo],
    ) -> Self {
        self.btf = Some(btf);
        self.func_info = func_info;
        self.line_info = line_info;
        self
    }

    /// Load; the program on success, [`KernelError::Rejected`] (with the
    /// verifier log) when the kernel refuses it.
    pub fn load(&self) -> Result<Program, KernelError> {
        match self.attempt()? {
            (Ok(fd), log) => Ok(Program {
                fd,
                prog_type: self.prog_type,
                log,
            }),
            (Err(errno), log) => Err(KernelError::Rejected {
                what: format!("{} program", self.prog_type),
                errno,
                log,
            }),
        }
    }

    /// Load only to learn the verdict; the program (if any) is closed again.
    pub fn verdict(&self) -> Result<Verdict, KernelError> {
        let (res, log) = self.attempt()?;
        Ok(Verdict {
            accepted: res.is_ok(),
            log,
            errno: res.err(),
        })
    }

    /// One `BPF_PROG_LOAD`, retried with a larger log buffer while the log
    /// was truncated. Outer error: we could not ask; inner: the kernel's answer.
    fn attempt(&self) -> Result<(Result<OwnedFd, i32>, String), KernelError> {
        available()?;
        let insns: Vec<u64> = self.insns.iter().map(|i| i.to_u64()).collect();
        let insn_cnt = len_u32("instruction count", insns.len())?;
        let license = CString::new(self.license).map_err(|_| {
            KernelError::InvalidArgument(format!("license {:?} contains NUL", self.license))
        })?;
        let fd_array: Vec<i32> = self.maps.iter().map(|m| m.as_fd().as_raw_fd()).collect();
        let mut log_size = if self.log_level == 0 {
            0
        } else {
            INITIAL_LOG_SIZE
        };
        loop {
            let mut log = vec![0u8; log_size];
            let mut attr = ProgLoadAttr {
                prog_type: self.prog_type.0,
                insn_cnt,
                insns: sys::ptr(&insns),
                license: license.as_ptr() as usize as u64,
                log_level: self.log_level,
                log_size: log_size as u32,
                log_buf: sys::ptr_mut(&mut log),
                kern_version: self.kern_version,
                prog_flags: self.prog_flags,
                prog_name: sys::obj_name(self.name),
                expected_attach_type: self.expected_attach_type.0,
                prog_btf_fd: self.btf.map_or(0, |b| b.as_fd().as_raw_fd() as u32),
                func_info_rec_size: if self.func_info.is_empty() {
                    0
                } else {
                    size_of::<FuncInfo>() as u32
                },
                func_info: sys::ptr(self.func_info),
                func_info_cnt: len_u32("func_info count", self.func_info.len())?,
                line_info_rec_size: if self.line_info.is_empty() {
                    0
                } else {
                    size_of::<LineInfo>() as u32
                },
                line_info: sys::ptr(self.line_info),
                line_info_cnt: len_u32("line_info count", self.line_info.len())?,
                attach_btf_id: self.attach_btf_id,
                attach_prog_fd: self.attach_prog_fd.map_or(0, |f| f.as_raw_fd() as u32),
                fd_array: sys::ptr(&fd_array),
                ..Default::default()
            };
            match sys::bpf_fd(cmd::PROG_LOAD, &mut attr) {
                Ok(fd) => return Ok((Ok(fd), log_text(&log))),
                Err(libc::ENOSPC) if self.log_level != 0 => {
                    // Linux >= 6.4 fails the load when the log did not fit
                    // and reports the size it needed in log_true_size;
                    // older kernels report 0, so double (up to a bound).
                    let need = attr.log_true_size as usize;
                    log_size = if need > log_size && log_size < MAX_LOG_SIZE {
                        need.min(MAX_LOG_SIZE)
                    } else if need == 0 && log_size < LEGACY_LOG_LIMIT {
                        log_size * 2
                    } else {
                        // ENOSPC for another reason: that is the verdict.
                        return Ok((Err(libc::ENOSPC), log_text(&log)));
                    };
                }
                Err(libc::ENOSYS) => {
                    return Err(KernelError::syscall(cmd::PROG_LOAD, libc::ENOSYS, ""));
                }
                Err(errno) => return Ok((Err(errno), log_text(&log))),
            }
        }
    }
}

impl Program {
    /// Open a pinned program (`BPF_OBJ_GET`), e.g. one of a
    /// [`crate::KernelObject`]'s, to test-run it without bpftool.
    pub fn from_pinned(path: &std::path::Path) -> Result<Program, KernelError> {
        available()?;
        let fd = sys::obj_get(path)
            .map_err(|e| KernelError::syscall(cmd::OBJ_GET, e, path.display().to_string()))?;
        let info: sys::ProgInfoPrefix = sys::obj_info(fd.as_fd()).map_err(|e| {
            KernelError::syscall(cmd::OBJ_GET_INFO_BY_FD, e, path.display().to_string())
        })?;
        Ok(Program {
            fd,
            prog_type: ProgType(info.prog_type),
            log: String::new(),
        })
    }

    pub fn prog_type(&self) -> ProgType {
        self.prog_type
    }

    /// The verifier log of the successful load (empty with log level 0).
    pub fn log(&self) -> &str {
        &self.log
    }

    /// `BPF_PROG_TEST_RUN`. Program types without a test runner give
    /// [`KernelError::Unavailable`].
    pub fn test_run(&self, run: &TestRun<'_>) -> Result<KernelRun, KernelError> {
        let data_out_size = run.data_out_size.unwrap_or(run.data_in.len() + 64 * 1024);
        let ctx_out_size = run
            .ctx_out_size
            .unwrap_or(if run.ctx_in.is_some() { 4096 } else { 0 });
        let ctx_in = run.ctx_in.unwrap_or(&[]);
        let mut data_out = vec![0u8; data_out_size];
        let mut ctx_out = vec![0u8; ctx_out_size];
        let mut attr = TestRunAttr {
            prog_fd: self.fd.as_raw_fd() as u32,
            data_size_in: len_u32("data_in length", run.data_in.len())?,
            data_size_out: len_u32("data_out size", data_out_size)?,
            data_in: sys::ptr(run.data_in),
            data_out: sys::ptr_mut(&mut data_out),
            repeat: run.repeat,
            ctx_size_in: len_u32("ctx_in length", ctx_in.len())?,
            ctx_size_out: len_u32("ctx_out size", ctx_out_size)?,
            ctx_in: sys::ptr(ctx_in),
            ctx_out: sys::ptr_mut(&mut ctx_out),
            flags: run.flags,
            cpu: run.cpu,
            batch_size: run.batch_size,
            ..Default::default()
        };
        if let Err(errno) = sys::bpf(cmd::PROG_TEST_RUN, &mut attr) {
            if errno == ENOTSUPP || errno == libc::EOPNOTSUPP {
                return Err(KernelError::Unavailable(format!(
                    "BPF_PROG_TEST_RUN is not supported for {} programs: {}",
                    self.prog_type,
                    errno_name(errno)
                )));
            }
            let detail = if errno == libc::ENOSPC {
                format!(
                    "output needs data {} / ctx {} bytes, buffers are {data_out_size} / {ctx_out_size}",
                    attr.data_size_out, attr.ctx_size_out
                )
            } else {
                format!(
                    "{} program, data_in {} bytes, ctx_in {} bytes",
                    self.prog_type,
                    run.data_in.len(),
                    ctx_in.len()
                )
            };
            return Err(KernelError::syscall(cmd::PROG_TEST_RUN, errno, detail));
        }
        data_out.truncate((attr.data_size_out as usize).min(data_out_size));
        ctx_out.truncate((attr.ctx_size_out as usize).min(ctx_out_size));
        Ok(KernelRun {
            retval: attr.retval,
            data_out,
            ctx_out,
            duration_ns: u64::from(attr.duration),
        })
    }
}

/// Load `insns` as a `prog_type` program (GPL, log level 1, `maps` as
/// `fd_array`) and report whether Linux accepts it, with the full log.
pub fn verdict(prog_type: ProgType, insns: &[Insn], maps: &[&Map]) -> Result<Verdict, KernelError> {
    ProgLoad::new(prog_type, insns).with_maps(maps).verdict()
}

/// Load `insns` (GPL, log level 0, `maps` as `fd_array`) and run it once per
/// `repeat` over `data_in` (and `ctx_in`). A rejected program is
/// [`KernelError::Rejected`] with the verifier log (reloaded at level 1).
pub fn test_run(
    prog_type: ProgType,
    insns: &[Insn],
    maps: &[&Map],
    data_in: &[u8],
    ctx_in: Option<&[u8]>,
    repeat: u32,
) -> Result<KernelRun, KernelError> {
    let load = ProgLoad::new(prog_type, insns).with_maps(maps);
    let prog = match load.with_log_level(0).load() {
        Ok(p) => p,
        Err(KernelError::Rejected { .. }) => {
            // Load again with a log so the error says why.
            load.load()?
        }
        Err(e) => return Err(e),
    };
    let mut run = TestRun::new(data_in).with_repeat(repeat);
    run.ctx_in = ctx_in;
    prog.test_run(&run)
}
