//! BPF ELF objects loaded by libbpf through `bpftool`, an independent loader
//! to compare Cordon's own against.
//!
//! # Pin names
//!
//! `bpftool prog loadall OBJ DIR pinmaps MAPDIR` pins every program as
//! `DIR/<function name>` and every map as `MAPDIR/<libbpf map name>` with each
//! `.` replaced by `_` (bpffs refuses dots). Map names are the C variable name
//! for `.maps` / `maps` maps; for global data libbpf invents one
//! (see [`map_pin_name`]):
//!
//! | section                | libbpf map name                  | pin name          |
//! |------------------------|----------------------------------|-------------------|
//! | `.bss` in `ringbuf.o`  | `ringbuf.bss`                    | `ringbuf_bss`     |
//! | `.data` in `global_data.o` | `global_d.data` (object name cut so the whole fits 15 bytes) | `global_d_data` |
//! | `.rodata`              | `global_d.rodata`                | `global_d_rodata` |
//! | `.data.custom`         | `.data.custom` (custom sections: no prefix) | `_data_custom` |
//! | `.rodata.str1.1`       | `.rodata.str1.1`                 | `_rodata_str1_1`  |
//!
//! Every method taking a map name accepts the pin name, the libbpf name or
//! the ELF section name (`.bss`).

use crate::error::KernelError;
use crate::map::Map;
use crate::prog::{KernelRun, Program};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where bpffs is expected.
const BPFFS: &str = "/sys/fs/bpf";
/// `BPF_FS_MAGIC` (statfs f_type of bpffs).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// Prefix of everything this crate pins.
const PIN_PREFIX: &str = "cordon-";

/// Options for [`KernelObject::load_with`].
#[derive(Clone, Debug, Default)]
pub struct ObjectLoad {
    /// bpftool's `type` argument (e.g. `"xdp"`, `"tc"`, `"socket"`): the
    /// section-name prefix whose program type every program gets, for
    /// objects whose section names libbpf does not recognise.
    pub prog_type: Option<String>,
}

/// libbpf's verdict on one program of an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVerdict {
    /// The kernel loaded the program.
    pub accepted: bool,
    /// libbpf's `failed to load: -N` for this program, if it failed.
    pub errno: Option<i32>,
    /// This program's verifier log (bpftool asks for level 1|2|4), empty if
    /// libbpf never got to load it.
    pub log: String,
    /// Everything bpftool and libbpf printed (reasons for object-level failures).
    pub libbpf_output: String,
}

/// An object loaded by `bpftool prog loadall`, its programs and maps pinned
/// under unique bpffs directories that [`Drop`] removes.
#[derive(Debug)]
pub struct KernelObject {
    prog_dir: PathBuf,
    map_dir: PathBuf,
    obj_name: String,
    programs: Vec<String>,
    maps: Vec<String>,
}

fn bpftool_path() -> Result<&'static Path, KernelError> {
    static TOOL: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    TOOL.get_or_init(|| {
        let candidates: Vec<PathBuf> = match std::env::var_os("CORDON_BPFTOOL") {
            Some(p) => vec![PathBuf::from(p)],
            None => {
                let mut v: Vec<PathBuf> = std::env::var_os("PATH")
                    .map(|p| {
                        std::env::split_paths(&p)
                            .map(|d| d.join("bpftool"))
                            .collect()
                    })
                    .unwrap_or_default();
                v.push("/usr/sbin/bpftool".into());
                v.push("/usr/local/sbin/bpftool".into());
                v
            }
        };
        for c in &candidates {
            if let Ok(out) = Command::new(c).arg("version").output()
                && out.status.success()
            {
                return Ok(c.clone());
            }
        }
        Err("bpftool not found (set CORDON_BPFTOOL or install bpftool)".into())
    })
    .as_deref()
    .map_err(|e| KernelError::Unavailable(e.clone()))
}

/// Make sure bpffs is mounted at /sys/fs/bpf (mounting it if we may).
fn ensure_bpffs() -> Result<(), KernelError> {
    static FS: OnceLock<Result<(), String>> = OnceLock::new();
    FS.get_or_init(|| {
        if is_bpffs(BPFFS) {
            return Ok(());
        }
        mount_bpffs()?;
        if is_bpffs(BPFFS) {
            Ok(())
        } else {
            Err(format!("{BPFFS} is not a bpf filesystem after mounting"))
        }
    })
    .clone()
    .map_err(KernelError::Unavailable)
}

fn is_bpffs(path: &str) -> bool {
    #[cfg(target_os = "linux")]
    {
        let Ok(c) = std::ffi::CString::new(path) else {
            return false;
        };
        // SAFETY: `c` is a valid C string and `st` a properly sized out-buffer.
        unsafe {
            let mut st: libc::statfs = std::mem::zeroed();
            libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        false
    }
}

fn mount_bpffs() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        let _ = std::fs::create_dir_all(BPFFS);
        let src = c"bpf";
        let target = c"/sys/fs/bpf";
        // SAFETY: all arguments are valid NUL-terminated strings; no data pointer.
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                target.as_ptr(),
                src.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(format!(
                "bpffs not mounted at {BPFFS} and mounting it failed: {}",
                std::io::Error::last_os_error()
            ))
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err("not Linux: no bpffs".into())
    }
}

/// Everything the object layer needs: `CORDON_LINUX_DISABLE` unset, a
/// working `bpf()`, bpftool, bpffs. Returns the bpftool path.
fn object_layer_available() -> Result<&'static Path, KernelError> {
    crate::error::available()?;
    let tool = bpftool_path()?;
    ensure_bpffs()?;
    sweep_stale_pins();
    Ok(tool)
}

/// Remove pin directories left by processes of ours that died (killed
/// mid-test), recognised by the `cordon-<pid>-<n>[-maps]` name.
fn sweep_stale_pins() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let Ok(dir) = std::fs::read_dir(BPFFS) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix(PIN_PREFIX) else {
                continue;
            };
            let rest = rest.strip_suffix("-maps").unwrap_or(rest);
            let mut parts = rest.split('-');
            let (Some(pid), Some(n), None) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), n.parse::<u64>()) else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    });
}

/// A fresh `/sys/fs/bpf/cordon-<pid>-<n>` path (not created).
fn unique_pin_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Path::new(BPFFS).join(format!("{PIN_PREFIX}{}-{n}", std::process::id()))
}

/// Output of one bpftool invocation.
struct ToolOutput {
    ok: bool,
    status: String,
    stdout: String,
    stderr: String,
}

fn run_tool(tool: &Path, args: &[OsString]) -> Result<ToolOutput, KernelError> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|e| KernelError::io(format!("running {}", tool.display()), e))?;
    Ok(ToolOutput {
        ok: out.status.success(),
        status: out.status.to_string(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn args_text(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run bpftool, turning a failure into [`KernelError::Bpftool`].
fn tool_ok(tool: &Path, args: &[OsString]) -> Result<ToolOutput, KernelError> {
    let out = run_tool(tool, args)?;
    if out.ok {
        Ok(out)
    } else {
        Err(KernelError::Bpftool {
            args: args_text(args),
            status: out.status,
            stderr: join_nonempty(&out.stdout, &out.stderr),
        })
    }
}

fn join_nonempty(a: &str, b: &str) -> String {
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, _) => b.trim().to_string(),
        (_, true) => a.trim().to_string(),
        _ => format!("{}\n{}", a.trim(), b.trim()),
    }
}

fn os(s: impl Into<OsString>) -> OsString {
    s.into()
}

/// The object name libbpf derives from a path: the file name up to its first `.`.
fn object_name(path: &Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    match file.split_once('.') {
        Some((stem, _)) => stem.to_string(),
        None => file,
    }
}

/// The name `bpftool ... pinmaps DIR` pins a map under, given the object's
/// name (file name up to its first dot, e.g. `global_data`) and the map's
/// name in the object: the variable name, or for global data the ELF section
/// (`.bss`, `.data`, `.rodata`, `.kconfig`, `.data.custom`, ...).
///
/// Global-data maps get libbpf's internal name: the object name cut to
/// `15 - max(7, len(section))` bytes followed by the section name, except
/// custom sections (a dot after the first character), which keep only the
/// section name; any byte outside `[A-Za-z0-9_.]` becomes `_`. Pinning then
/// replaces every `.` with `_`.
pub fn map_pin_name(obj_name: &str, map_name: &str) -> String {
    let libbpf_name = if let Some(after_dot) = map_name.strip_prefix('.') {
        let sfx_len = map_name.len().clamp(7, 15);
        let pfx_len = if after_dot.contains('.') {
            0
        } else {
            (16 - sfx_len - 1).min(obj_name.len())
        };
        let mut s: String = obj_name.chars().take(pfx_len).collect();
        s.extend(map_name.chars().take(sfx_len));
        s.chars()
            .take(15)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    } else {
        map_name.to_string()
    };
    libbpf_name.replace('.', "_")
}

/// Parse bpftool's JSON byte arrays (`["0x01","0x00"]`).
fn hex_bytes(v: &Value, what: &str) -> Result<Vec<u8>, String> {
    let arr = v
        .as_array()
        .ok_or_else(|| format!("{what} is not an array"))?;
    arr.iter()
        .map(|b| {
            let s = b
                .as_str()
                .ok_or_else(|| format!("{what} holds a non-string"))?;
            let digits = s.strip_prefix("0x").unwrap_or(s);
            u8::from_str_radix(digits, 16).map_err(|_| format!("{what} holds {s:?}"))
        })
        .collect()
}

fn hex_args(bytes: &[u8]) -> impl Iterator<Item = OsString> + '_ {
    bytes.iter().map(|b| os(format!("{b:02x}")))
}

/// Parse `bpftool -j map dump`: key and one value per CPU (a single value
/// for ordinary maps).
fn parse_dump(text: &str) -> Result<crate::PerCpuEntries, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let arr = v.as_array().ok_or("top level is not an array")?;
    let mut out = Vec::with_capacity(arr.len());
    for (i, e) in arr.iter().enumerate() {
        if let Some(err) = e.get("error") {
            return Err(format!("entry {i}: {err}"));
        }
        let key = hex_bytes(e.get("key").ok_or(format!("entry {i} has no key"))?, "key")?;
        // Array-like maps whose slots can be empty (devmap, cpumap, xskmap)
        // list every index; an empty one fails its lookup with ENOENT.
        if e.get("value")
            .and_then(|v| v.get("error"))
            .and_then(Value::as_str)
            == Some("No such file or directory")
        {
            continue;
        }
        let values = if let Some(v) = e.get("value") {
            vec![hex_bytes(v, "value")?]
        } else if let Some(vs) = e.get("values").and_then(Value::as_array) {
            // Per-CPU: [{"cpu":0,"value":[...]}, ...], put in CPU order.
            let mut per_cpu = BTreeMap::new();
            for pc in vs {
                let cpu = pc
                    .get("cpu")
                    .and_then(Value::as_u64)
                    .ok_or(format!("entry {i}: per-CPU value without cpu"))?;
                let val = hex_bytes(
                    pc.get("value")
                        .ok_or(format!("entry {i}: cpu {cpu} without value"))?,
                    "value",
                )?;
                per_cpu.insert(cpu, val);
            }
            per_cpu.into_values().collect()
        } else {
            return Err(format!("entry {i} has neither value nor values"));
        };
        out.push((key, values));
    }
    Ok(out)
}

/// Extract, from libbpf debug output, the last verifier log printed for
/// program `prog` and its `failed to load: -N` errno.
fn prog_log(output: &str, prog: &str) -> (Option<String>, Option<i32>) {
    let begin = format!("libbpf: prog '{prog}': -- BEGIN PROG LOAD LOG --");
    let failed = format!("libbpf: prog '{prog}': failed to load: ");
    let mut log = None;
    let mut errno = None;
    let mut lines = output.lines();
    while let Some(line) = lines.next() {
        if line.trim_end() == begin {
            let mut text = String::new();
            for l in lines.by_ref() {
                if l.trim_end() == "-- END PROG LOAD LOG --" {
                    break;
                }
                text.push_str(l);
                text.push('\n');
            }
            log = Some(text);
        } else if let Some(rest) = line.strip_prefix(&failed) {
            errno = rest.trim().trim_start_matches('-').parse::<i32>().ok();
        }
    }
    (log, errno)
}

/// Names of the entries of a pin directory, sorted.
fn list_pins(dir: &Path) -> Result<Vec<String>, KernelError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(KernelError::io(format!("listing {}", dir.display()), e)),
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

fn remove_pins(dir: &Path) {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => eprintln!("cordon-linux: could not remove {}: {e}", dir.display()),
    }
}

impl KernelObject {
    /// `bpftool prog loadall PATH <dir> pinmaps <dir>-maps`.
    pub fn load(path: &Path) -> Result<KernelObject, KernelError> {
        Self::load_with(path, &ObjectLoad::default())
    }

    /// [`KernelObject::load`] with options. When libbpf or the kernel
    /// refuses the object the error is [`KernelError::Rejected`] holding
    /// libbpf's debug output (with the verifier log) from a second, logged
    /// attempt.
    pub fn load_with(path: &Path, opts: &ObjectLoad) -> Result<KernelObject, KernelError> {
        let tool = object_layer_available()?;
        if !path.is_file() {
            return Err(KernelError::io(
                format!("object {}", path.display()),
                std::io::Error::from(ErrorKind::NotFound),
            ));
        }
        let prog_dir = unique_pin_dir();
        let map_dir = PathBuf::from(format!("{}-maps", prog_dir.display()));
        // Construct first so Drop cleans up whatever bpftool managed to pin.
        let mut obj = KernelObject {
            prog_dir,
            map_dir,
            obj_name: object_name(path),
            programs: Vec::new(),
            maps: Vec::new(),
        };
        let mut args = vec![
            os("prog"),
            os("loadall"),
            path.as_os_str().to_owned(),
            obj.prog_dir.as_os_str().to_owned(),
        ];
        if let Some(t) = &opts.prog_type {
            args.push(os("type"));
            args.push(os(t));
        }
        args.push(os("pinmaps"));
        args.push(obj.map_dir.as_os_str().to_owned());
        let out = run_tool(tool, &args)?;
        if !out.ok {
            remove_pins(&obj.prog_dir);
            remove_pins(&obj.map_dir);
            // Again with -d for libbpf's account and the verifier log.
            let mut dargs = vec![os("-d")];
            dargs.extend(args.iter().cloned());
            let dbg = run_tool(tool, &dargs)?;
            remove_pins(&obj.prog_dir);
            remove_pins(&obj.map_dir);
            let output = join_nonempty(&dbg.stdout, &dbg.stderr);
            let errno = output
                .lines()
                .filter_map(|l| l.split_once("failed to load: -"))
                .filter_map(|(_, n)| n.trim().parse::<i32>().ok())
                .next_back()
                .unwrap_or(0);
            return Err(KernelError::Rejected {
                what: format!("object {} (bpftool {})", path.display(), args_text(&args)),
                errno,
                log: output,
            });
        }
        obj.programs = list_pins(&obj.prog_dir)?;
        obj.maps = list_pins(&obj.map_dir)?;
        Ok(obj)
    }

    /// Whether libbpf + the kernel accept program `prog` of the object at
    /// `path`, with its verifier log (`bpftool -d prog loadall`). libbpf loads
    /// the programs of an object in order and stops at the first failure, so
    /// a program after a failing one reports `accepted: false` with an empty
    /// `log`; see `libbpf_output`. Nothing stays pinned.
    pub fn verdict(path: &Path, prog: &str) -> Result<ObjectVerdict, KernelError> {
        Self::verdict_with(path, prog, &ObjectLoad::default())
    }

    /// [`KernelObject::verdict`] with options.
    pub fn verdict_with(
        path: &Path,
        prog: &str,
        opts: &ObjectLoad,
    ) -> Result<ObjectVerdict, KernelError> {
        let tool = object_layer_available()?;
        let dir = unique_pin_dir();
        let mut args = vec![
            os("-d"),
            os("prog"),
            os("loadall"),
            path.as_os_str().to_owned(),
            dir.as_os_str().to_owned(),
        ];
        if let Some(t) = &opts.prog_type {
            args.push(os("type"));
            args.push(os(t));
        }
        let out = run_tool(tool, &args);
        let pinned = list_pins(&dir);
        remove_pins(&dir);
        let out = out?;
        let pinned = pinned?;
        let output = join_nonempty(&out.stdout, &out.stderr);
        let (log, errno) = prog_log(&output, prog);
        if out.ok && !pinned.iter().any(|p| p == prog) {
            return Err(KernelError::NotFound {
                kind: "program",
                name: prog.to_string(),
                available: pinned,
            });
        }
        // On failure a program counts as accepted when libbpf printed its
        // (successful) load log before another program failed.
        let accepted = out.ok || (log.is_some() && errno.is_none());
        Ok(ObjectVerdict {
            accepted,
            errno,
            log: log.unwrap_or_default(),
            libbpf_output: output,
        })
    }

    /// Pinned program names (the C function names).
    pub fn programs(&self) -> &[String] {
        &self.programs
    }

    /// Pinned map names (see the module documentation for the mapping).
    pub fn maps(&self) -> &[String] {
        &self.maps
    }

    /// The bpffs path of program `prog`.
    pub fn prog_path(&self, prog: &str) -> Result<PathBuf, KernelError> {
        if self.programs.iter().any(|p| p == prog) {
            Ok(self.prog_dir.join(prog))
        } else {
            Err(KernelError::NotFound {
                kind: "program",
                name: prog.to_string(),
                available: self.programs.clone(),
            })
        }
    }

    /// The bpffs path of map `map` (pin name, libbpf name or section name).
    pub fn map_path(&self, map: &str) -> Result<PathBuf, KernelError> {
        let candidates = [
            map.to_string(),
            map.replace('.', "_"),
            map_pin_name(&self.obj_name, map),
        ];
        for c in &candidates {
            if self.maps.iter().any(|m| m == c) {
                return Ok(self.map_dir.join(c));
            }
        }
        Err(KernelError::NotFound {
            kind: "map",
            name: map.to_string(),
            available: self.maps.clone(),
        })
    }

    /// Open program `prog` for direct `bpf()` use ([`Program::test_run`]
    /// without spawning bpftool: faster, and with full control of
    /// `TestRun`).
    pub fn program(&self, prog: &str) -> Result<Program, KernelError> {
        Program::from_pinned(&self.prog_path(prog)?)
    }

    /// Open map `map` for direct `bpf()` use (per-CPU values then come
    /// padded to 8 bytes per CPU, as the syscall returns them).
    pub fn map(&self, map: &str) -> Result<Map, KernelError> {
        Map::from_pinned(&self.map_path(map)?)
    }

    /// `bpftool prog run pinned <prog> data_in F data_out G [ctx_in C ctx_out D] [repeat N]`.
    /// `ctx_out` is returned when `ctx_in` is given. bpftool's data_out
    /// buffer is 32 KiB.
    pub fn run(
        &self,
        prog: &str,
        data_in: &[u8],
        ctx_in: Option<&[u8]>,
        repeat: u32,
    ) -> Result<KernelRun, KernelError> {
        let tool = object_layer_available()?;
        let prog_path = self.prog_path(prog)?;
        let tmp = tempfile::Builder::new()
            .prefix("cordon-linux-run")
            .tempdir()
            .map_err(|e| KernelError::io("creating a temporary directory", e))?;
        let write = |name: &str, data: &[u8]| -> Result<PathBuf, KernelError> {
            let p = tmp.path().join(name);
            std::fs::write(&p, data)
                .map_err(|e| KernelError::io(format!("writing {}", p.display()), e))?;
            Ok(p)
        };
        let din = write("data_in", data_in)?;
        let dout = tmp.path().join("data_out");
        let cout = tmp.path().join("ctx_out");
        let mut args = vec![
            os("-j"),
            os("prog"),
            os("run"),
            os("pinned"),
            prog_path.into_os_string(),
            os("data_in"),
            din.into_os_string(),
            os("data_out"),
            dout.clone().into_os_string(),
        ];
        if let Some(ctx) = ctx_in {
            let cin = write("ctx_in", ctx)?;
            args.extend([
                os("ctx_in"),
                cin.into_os_string(),
                os("ctx_out"),
                cout.clone().into_os_string(),
            ]);
        }
        if repeat > 1 {
            args.extend([os("repeat"), os(repeat.to_string())]);
        }
        let out = tool_ok(tool, &args)?;
        let bad = |problem: &str| KernelError::BpftoolOutput {
            args: args_text(&args),
            problem: problem.to_string(),
            output: out.stdout.clone(),
        };
        let v: Value = serde_json::from_str(out.stdout.trim()).map_err(|e| bad(&e.to_string()))?;
        let retval = v
            .get("retval")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("no retval"))?;
        let duration = v
            .get("duration")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("no duration"))?;
        let read_opt = |p: &Path| -> Result<Vec<u8>, KernelError> {
            match std::fs::read(p) {
                Ok(d) => Ok(d),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(KernelError::io(format!("reading {}", p.display()), e)),
            }
        };
        Ok(KernelRun {
            retval: u32::try_from(retval).map_err(|_| bad("retval beyond u32"))?,
            data_out: read_opt(&dout)?,
            ctx_out: if ctx_in.is_some() {
                read_opt(&cout)?
            } else {
                Vec::new()
            },
            duration_ns: duration,
        })
    }

    /// Put program `prog` in slot `index` of the prog array `prog_array_map`.
    pub fn set_tail_call(
        &self,
        prog_array_map: &str,
        index: u32,
        prog: &str,
    ) -> Result<(), KernelError> {
        let tool = object_layer_available()?;
        let map = self.map_path(prog_array_map)?;
        let prog = self.prog_path(prog)?;
        let mut args = vec![
            os("map"),
            os("update"),
            os("pinned"),
            map.into_os_string(),
            os("key"),
            os("hex"),
        ];
        args.extend(hex_args(&index.to_le_bytes()));
        args.extend([os("value"), os("pinned"), prog.into_os_string()]);
        tool_ok(tool, &args).map(|_| ())
    }

    /// `bpftool map update` (`key`, `value` as raw bytes). For per-CPU maps
    /// bpftool stores `value` on every CPU. An empty key pushes `value` onto
    /// a queue or stack (`bpftool map push`).
    pub fn map_update(&self, map: &str, key: &[u8], value: &[u8]) -> Result<(), KernelError> {
        let tool = object_layer_available()?;
        let path = self.map_path(map)?;
        let mut args = vec![os("map")];
        if key.is_empty() {
            args.extend([os("push"), os("pinned"), path.into_os_string()]);
        } else {
            args.extend([
                os("update"),
                os("pinned"),
                path.into_os_string(),
                os("key"),
                os("hex"),
            ]);
            args.extend(hex_args(key));
        }
        args.extend([os("value"), os("hex")]);
        args.extend(hex_args(value));
        tool_ok(tool, &args).map(|_| ())
    }

    /// `bpftool -j map dump`: every (key, value). For per-CPU maps the value
    /// is every possible CPU's value concatenated in CPU order, each exactly
    /// `value_size` bytes (bpftool prints them without the 8-byte padding the
    /// syscall uses); [`KernelObject::dump_map_per_cpu`] keeps them apart.
    /// Prog arrays and maps of maps show program / map *ids*. Queues, stacks
    /// and ring buffers cannot be dumped (bpftool fails).
    pub fn dump_map(&self, map: &str) -> Result<crate::Entries, KernelError> {
        Ok(self
            .dump_map_per_cpu(map)?
            .into_iter()
            .map(|(k, vs)| (k, vs.concat()))
            .collect())
    }

    /// Like [`KernelObject::dump_map`], one value per CPU (a single value for
    /// maps that are not per-CPU).
    pub fn dump_map_per_cpu(&self, map: &str) -> Result<crate::PerCpuEntries, KernelError> {
        let tool = object_layer_available()?;
        let path = self.map_path(map)?;
        let args = vec![
            os("-j"),
            os("map"),
            os("dump"),
            os("pinned"),
            path.into_os_string(),
        ];
        let out = tool_ok(tool, &args)?;
        parse_dump(&out.stdout).map_err(|problem| KernelError::BpftoolOutput {
            args: args_text(&args),
            problem,
            output: out.stdout.clone(),
        })
    }

    /// A human-readable list of what was pinned (for failure messages).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "object {} pinned at {} (programs: {}) and {} (maps: {})",
            self.obj_name,
            self.prog_dir.display(),
            self.programs.join(", "),
            self.map_dir.display(),
            self.maps.join(", ")
        );
        s
    }
}

impl Drop for KernelObject {
    fn drop(&mut self) {
        remove_pins(&self.prog_dir);
        remove_pins(&self.map_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_names_follow_libbpf() {
        assert_eq!(map_pin_name("global_data", ".bss"), "global_d_bss");
        assert_eq!(map_pin_name("global_data", ".data"), "global_d_data");
        assert_eq!(map_pin_name("global_data", ".rodata"), "global_d_rodata");
        assert_eq!(map_pin_name("global_data", ".data.custom"), "_data_custom");
        assert_eq!(
            map_pin_name("global_data", ".rodata.str1.1"),
            "_rodata_str1_1"
        );
        assert_eq!(map_pin_name("ringbuf", ".bss"), "ringbuf_bss");
        assert_eq!(map_pin_name("a", ".kconfig"), "a_kconfig");
        assert_eq!(map_pin_name("x", "fw_rules"), "fw_rules");
    }

    #[test]
    fn object_names() {
        assert_eq!(object_name(Path::new("/a/b/global_data.o")), "global_data");
        assert_eq!(object_name(Path::new("foo.bpf.o")), "foo");
    }

    #[test]
    fn dumps_parse() {
        let plain = r#"[{"key":["0x01","0x00"],"value":["0xff"],"formatted":{"key":1}}]"#;
        assert_eq!(
            parse_dump(plain).unwrap(),
            vec![(vec![1, 0], vec![vec![0xff]])]
        );
        let pcpu = r#"[{"key":["0x00"],"values":[{"cpu":1,"value":["0x02"]},{"cpu":0,"value":["0x01"]}]}]"#;
        assert_eq!(
            parse_dump(pcpu).unwrap(),
            vec![(vec![0], vec![vec![1], vec![2]])]
        );
        assert!(parse_dump("{}").is_err());
        assert!(parse_dump(r#"[{"key":["zz"],"value":[]}]"#).is_err());
        assert!(parse_dump(r#"[{"key":[],"error":"x"}]"#).is_err());
        // Empty devmap/cpumap slots are skipped; other lookup errors are not.
        let holes = r#"[{"key":["0x00"],"value":{"error":"No such file or directory"}},{"key":["0x01"],"value":["0x07"]}]"#;
        assert_eq!(parse_dump(holes).unwrap(), vec![(vec![1], vec![vec![7]])]);
        let xsk = r#"[{"key":["0x00"],"value":{"error":"Operation not supported"}}]"#;
        assert!(parse_dump(xsk).is_err());
    }

    #[test]
    fn prog_logs_are_extracted() {
        let out = "libbpf: prog 'a': -- BEGIN PROG LOAD LOG --\nline1\nline2\n-- END PROG LOAD LOG --\n\
                   libbpf: prog 'a': failed to load: -13\nlibbpf: prog 'b': -- BEGIN PROG LOAD LOG --\nok\n-- END PROG LOAD LOG --\n";
        assert_eq!(
            prog_log(out, "a"),
            (Some("line1\nline2\n".into()), Some(13))
        );
        assert_eq!(prog_log(out, "b"), (Some("ok\n".into()), None));
        assert_eq!(prog_log(out, "c"), (None, None));
    }
}
