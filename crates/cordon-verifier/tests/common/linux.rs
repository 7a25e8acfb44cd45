//! Differential check of every snippet test against the running Linux
//! kernel's verifier.
//!
//! [`super::accept`] and [`super::reject`] call [`compare`] after checking
//! Cordon's verdict: when the case is meaningful for Linux (a Linux program
//! type, the standard test maps, the privileged profile, kfuncs that exist in
//! vmlinux, no global functions or exception callbacks that would need
//! program BTF), the same instructions are loaded with `bpf(BPF_PROG_LOAD)`
//! and the verdicts must agree. Known, deliberate differences are listed in
//! [`EXCEPTIONS`] (by test name) with the reason.
//!
//! Every comparison appends one line to
//! `$CARGO_TARGET_TMPDIR/linux-compare/<test binary>.txt`:
//! `agree|excepted|skip <test> <cordon verdict> <linux verdict> <reason>`,
//! which `cargo test` summaries (see the crate's README section in the
//! report) count.

use cordon_isa::Insn;
use cordon_linux::{
    Btf, FuncInfo, Map, MapSpec, MapType as LMapType, ProgLoad, ProgType as LProgType,
};
use cordon_verifier::{Limits, Profile, ProgType, VerifyEnv};
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// Tests whose snippets Linux judges differently on purpose, with the reason.
pub const EXCEPTIONS: &[(&str, &str)] = &[];

/// The kernel side of the standard test environment ([`super::maps`]).
struct Kernel {
    maps: Vec<Map>,
    /// kfunc name -> vmlinux BTF id.
    vmlinux: Option<cordon_object::btf::Btf>,
    _btf: Btf,
}

fn u32s(out: &mut Vec<u8>, vals: &[u32]) {
    for v in vals {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// BTF for the spin-lock map: `int` (1), `struct bpf_spin_lock { int val; }`
/// (2), `int[3]` (3), `struct val { struct bpf_spin_lock lock; int data[3]; }` (4).
fn lock_btf() -> Vec<u8> {
    let strings = b"\0int\0bpf_spin_lock\0val\0lock\0data\0";
    let s = |name: &str| -> u32 {
        let pos = strings
            .windows(name.len() + 2)
            .position(|w| {
                w[0] == 0 && &w[1..=name.len()] == name.as_bytes() && w[name.len() + 1] == 0
            })
            .expect("string");
        pos as u32 + 1
    };
    let mut types = Vec::new();
    // 1: INT "int" size 4, signed, 32 bits.
    u32s(&mut types, &[s("int"), 1 << 24, 4, (1 << 24) | 32]);
    // 2: STRUCT bpf_spin_lock, 1 member.
    u32s(
        &mut types,
        &[s("bpf_spin_lock"), (4 << 24) | 1, 4, s("val"), 1, 0],
    );
    // 3: ARRAY int[3].
    u32s(&mut types, &[0, 3 << 24, 0, 1, 1, 3]);
    // 4: STRUCT val, 2 members.
    u32s(
        &mut types,
        &[
            s("val"),
            (4 << 24) | 2,
            16,
            s("lock"),
            2,
            0,
            s("data"),
            3,
            32,
        ],
    );
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9fu16.to_le_bytes());
    out.push(1);
    out.push(0);
    u32s(
        &mut out,
        &[
            24,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ],
    );
    out.extend_from_slice(&types);
    out.extend_from_slice(strings);
    out
}

/// Subprogram starts (targets of `call src=1` and `lddw src=4`), main first.
fn subprog_starts(insns: &[Insn]) -> Vec<u32> {
    let mut starts = vec![0u32];
    for (pc, i) in insns.iter().enumerate() {
        let is_call = i.code == 0x85 && i.src == 1;
        let is_func_ref = i.code == 0x18 && i.src == 4;
        if is_call || is_func_ref {
            let t = pc as i64 + 1 + i.imm as i64;
            if t > 0 && (t as usize) < insns.len() {
                starts.push(t as u32);
            }
        }
    }
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// Program BTF with one static `int fN(void)` per subprogram, so Linux
/// accepts callbacks and tail calls in subprograms (which need func_info).
fn func_btf(n: usize) -> Vec<u8> {
    let mut strings = b"\0int\0".to_vec();
    let mut names = Vec::new();
    for i in 0..n {
        names.push(strings.len() as u32);
        strings.extend_from_slice(format!("f{i}\0").as_bytes());
    }
    let mut types = Vec::new();
    // 1: int, 2: int (void) proto, 3..: FUNC fN (static).
    u32s(&mut types, &[1, 1 << 24, 4, (1 << 24) | 32]);
    u32s(&mut types, &[0, 13 << 24, 1]);
    for name in names {
        u32s(&mut types, &[name, 12 << 24, 2]);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9fu16.to_le_bytes());
    out.push(1);
    out.push(0);
    u32s(
        &mut out,
        &[
            24,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ],
    );
    out.extend_from_slice(&types);
    out.extend_from_slice(&strings);
    out
}

fn setup() -> Result<Kernel, String> {
    let err = |e: cordon_linux::KernelError| match e.skip() {
        Some(r) => format!("skip:{r}"),
        None => e.to_string(),
    };
    cordon_linux::available().map_err(err)?;
    let btf = Btf::load(&lock_btf()).map_err(err)?;
    let specs = [
        MapSpec::new(LMapType::HASH, 4, 8, 16),
        MapSpec::new(LMapType::ARRAY, 4, 16, 1),
        MapSpec::new(LMapType::RINGBUF, 0, 0, 4096),
        MapSpec::new(LMapType::PROG_ARRAY, 4, 4, 4),
        MapSpec::new(LMapType::ARRAY, 4, 16, 4).with_btf(&btf, 1, 4),
        MapSpec::new(LMapType::QUEUE, 0, 8, 16),
        MapSpec::new(LMapType::ARRAY, 4, 8, 1).with_flags(0x80),
    ];
    let mut maps = Vec::new();
    for s in &specs {
        maps.push(Map::create(s).map_err(err)?);
    }
    let vmlinux = std::fs::read("/sys/kernel/btf/vmlinux")
        .ok()
        .and_then(|b| cordon_object::btf::Btf::parse(&b).ok());
    Ok(Kernel {
        maps,
        vmlinux,
        _btf: btf,
    })
}

fn kernel() -> &'static Result<Kernel, String> {
    static K: OnceLock<Result<Kernel, String>> = OnceLock::new();
    K.get_or_init(setup)
}

fn record(line: &str) {
    static FILE: OnceLock<Mutex<Option<std::fs::File>>> = OnceLock::new();
    let f = FILE.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("linux-compare");
        let _ = std::fs::create_dir_all(&dir);
        let exe = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "unknown".into());
        let exe = exe.split('-').next().unwrap_or("unknown").to_string();
        Mutex::new(std::fs::File::create(dir.join(format!("{exe}.txt"))).ok())
    });
    if let Ok(mut g) = f.lock()
        && let Some(file) = g.as_mut()
    {
        let _ = writeln!(file, "{line}");
    }
}

fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("main")
        .rsplit("::")
        .next()
        .unwrap_or("main")
        .to_string()
}

/// Why a case cannot be compared with Linux, if it cannot.
fn not_comparable(env: &VerifyEnv) -> Option<&'static str> {
    if matches!(env.prog_type, ProgType::Generic { .. }) {
        return Some("generic program type is Cordon-only");
    }
    if env.profile == Profile::Unprivileged {
        return Some("unprivileged profile: kernel.unprivileged_bpf_disabled forbids it here");
    }
    if env.maps != super::maps() {
        return Some("custom maps");
    }
    if !env.global_funcs.is_empty() || env.exception_callback.is_some() {
        return Some("global functions / exception callback need program BTF");
    }
    if env.limits != Limits::default() {
        return Some("non-default limits");
    }
    if env.sleepable {
        return Some("sleepable programs need an attach target");
    }
    None
}

/// Translate Cordon registry kfunc ids to vmlinux BTF ids.
fn kernel_insns(env: &VerifyEnv, insns: &[Insn], k: &Kernel) -> Result<Vec<Insn>, String> {
    let mut out = insns.to_vec();
    for (i, insn) in out.iter_mut().enumerate() {
        if insn.code == 0x85 && insn.src == 2 {
            let name = env
                .registry
                .kfunc(insn.imm as u32)
                .map(|p| p.name.to_string())
                .ok_or_else(|| format!("insn {i}: unknown kfunc id {}", insn.imm))?;
            let id = k
                .vmlinux
                .as_ref()
                .and_then(|b| b.find_func(&name))
                .ok_or_else(|| format!("kfunc {name} is Cordon-only"))?;
            insn.imm = id as i32;
        }
    }
    Ok(out)
}

fn linux_type(t: ProgType) -> LProgType {
    match t {
        ProgType::SocketFilter => LProgType::SOCKET_FILTER,
        ProgType::SchedCls => LProgType::SCHED_CLS,
        ProgType::SchedAct => LProgType::SCHED_ACT,
        ProgType::Xdp => LProgType::XDP,
        ProgType::Generic { .. } => LProgType::UNSPEC,
    }
}

/// Linux's verdict on `insns` under `env`: `Ok(accepted, log)`, or why not comparable.
pub fn linux_verdict(env: &VerifyEnv, insns: &[Insn]) -> Result<(bool, String), String> {
    if let Some(why) = not_comparable(env) {
        return Err(why.to_string());
    }
    let k = match kernel() {
        Ok(k) => k,
        Err(e) => return Err(e.clone()),
    };
    let code = kernel_insns(env, insns, k)?;
    let maps: Vec<&Map> = k.maps.iter().collect();
    let starts = subprog_starts(&code);
    let prog_btf;
    let func_info: Vec<FuncInfo>;
    let mut load = ProgLoad::new(linux_type(env.prog_type), &code)
        .with_maps(&maps)
        .with_license("GPL")
        .with_log_level(1);
    if starts.len() > 1 {
        prog_btf = Btf::load(&func_btf(starts.len())).map_err(|e| format!("program BTF: {e}"))?;
        func_info = starts
            .iter()
            .enumerate()
            .map(|(i, &s)| FuncInfo {
                insn_off: s,
                type_id: 3 + i as u32,
            })
            .collect();
        load = load.with_btf(&prog_btf, &func_info, &[]);
    }
    if env.strict_alignment {
        load.prog_flags |= 1;
    }
    let v = load.verdict().map_err(|e| format!("load failed: {e}"))?;
    Ok((v.accepted, v.log))
}

/// Compare Cordon's verdict with Linux's; panics on an unexplained disagreement.
pub fn compare(env: &VerifyEnv, insns: &[Insn], cordon_ok: bool, text: &str) {
    let name = test_name();
    // Cordon's extension is compared with the flag off (Linux's behaviour).
    let cordon_ok = if cordon_ok && env.throw_releases_resources {
        let mut e = env.clone();
        e.throw_releases_resources = false;
        e.log_level = 0;
        cordon_isa::Program::new(insns.to_vec())
            .map(|p| cordon_verifier::verify(&p, &e).is_ok())
            .unwrap_or(false)
    } else {
        cordon_ok
    };
    let verdict = |ok: bool| if ok { "accept" } else { "reject" };
    match linux_verdict(env, insns) {
        Err(why) => {
            if let Some(r) = why.strip_prefix("skip:") {
                static ONCE: OnceLock<()> = OnceLock::new();
                ONCE.get_or_init(|| cordon_linux::report_skip(&format!("Linux comparison: {r}")));
            }
            record(&format!("skip {name} {} - {why}", verdict(cordon_ok)));
        }
        Ok((linux_ok, log)) => {
            if linux_ok == cordon_ok {
                record(&format!(
                    "agree {name} {} {}",
                    verdict(cordon_ok),
                    verdict(linux_ok)
                ));
                return;
            }
            if let Some((_, why)) = EXCEPTIONS.iter().find(|(n, _)| *n == name) {
                record(&format!(
                    "excepted {name} {} {} {why}",
                    verdict(cordon_ok),
                    verdict(linux_ok)
                ));
                return;
            }
            record(&format!(
                "DISAGREE {name} {} {}",
                verdict(cordon_ok),
                verdict(linux_ok)
            ));
            let tail: Vec<&str> = log.lines().rev().take(8).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "Linux disagrees: Cordon {}, Linux {}\n--- prog ---\n{text}\n--- Linux log (tail) ---\n{}",
                verdict(cordon_ok),
                verdict(linux_ok),
                tail.join("\n")
            );
        }
    }
}
