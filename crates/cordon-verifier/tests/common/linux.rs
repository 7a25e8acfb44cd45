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

/// Incremental BTF writer (types and strings).
struct BtfOut {
    types: Vec<u8>,
    strings: Vec<u8>,
    next: u32,
}

impl BtfOut {
    fn new() -> BtfOut {
        BtfOut {
            types: Vec::new(),
            strings: vec![0],
            next: 1,
        }
    }
    fn s(&mut self, name: &str) -> u32 {
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(name.as_bytes());
        self.strings.push(0);
        off
    }
    fn add(&mut self, words: &[u32]) -> u32 {
        u32s(&mut self.types, words);
        self.next += 1;
        self.next - 1
    }
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.push(1);
        out.push(0);
        let tl = self.types.len() as u32;
        u32s(&mut out, &[24, 0, tl, tl, self.strings.len() as u32]);
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

/// Program BTF and func_info for a program with subprograms: static
/// `int fN(void)` for ordinary subprograms, global functions with their
/// signature (scalars as `long`, the context as a pointer to the program
/// type's context struct, memory as a pointer to `char[size]`, nullable
/// arguments not nullable tagged `arg:nonnull`), and the main program's
/// `exception_callback:` declaration tag.
fn func_btf(env: &VerifyEnv, starts: &[u32]) -> (Vec<u8>, Vec<FuncInfo>) {
    use cordon_verifier::{ArgKind, GlobalRet};
    let mut b = BtfOut::new();
    let int = {
        let n = b.s("int");
        b.add(&[n, 1 << 24, 4, (1 << 24) | 32])
    };
    let long = {
        let n = b.s("long");
        b.add(&[n, 1 << 24, 8, (1 << 24) | 64])
    };
    let char_t = {
        let n = b.s("char");
        b.add(&[n, 1 << 24, 1, 8])
    };
    let void_proto = b.add(&[0, 13 << 24, int]);
    let ctx_name = if env.prog_type == ProgType::Xdp {
        "xdp_md"
    } else {
        "__sk_buff"
    };
    let ctx_struct = {
        let n = b.s(ctx_name);
        b.add(&[n, 4 << 24, 0])
    };
    let ctx_ptr = b.add(&[0, 2 << 24, ctx_struct]);
    let mut func_info = Vec::new();
    let mut func_ids = Vec::new();
    for (i, &start) in starts.iter().enumerate() {
        let name = b.s(&format!("f{i}"));
        let sig = env
            .global_funcs
            .get(&(start as usize))
            .filter(|_| start != 0);
        let is_cb = env.exception_callback == Some(start as usize);
        let id = if let Some(sig) = sig {
            let mut params = Vec::new();
            let mut nonnull = Vec::new();
            for (k, a) in sig.args.iter().enumerate() {
                let t = match a {
                    ArgKind::Scalar => long,
                    ArgKind::PtrToCtx => ctx_ptr,
                    ArgKind::PtrToMem { size, nullable: nl } => {
                        // Linux's default for pointer arguments is
                        // maybe-NULL; `__arg_nonnull` makes them non-NULL.
                        if !*nl {
                            nonnull.push(k as u32);
                        }
                        let arr = b.add(&[0, 3 << 24, 0, char_t, int, *size]);
                        b.add(&[0, 2 << 24, arr])
                    }
                };
                let pn = b.s(&format!("a{k}"));
                params.push((pn, t));
            }
            let ret = match sig.ret {
                GlobalRet::Scalar => int,
                GlobalRet::Void => 0,
            };
            let mut words = vec![0, (13 << 24) | params.len() as u32, ret];
            for (n, t) in params {
                words.extend_from_slice(&[n, t]);
            }
            let proto = b.add(&words);
            let f = b.add(&[name, (12 << 24) | 1, proto]);
            for k in nonnull {
                let tag = b.s("arg:nonnull");
                b.add(&[tag, 17 << 24, f, k]);
            }
            f
        } else if is_cb {
            let pn = b.s("cookie");
            let proto = b.add(&[0, (13 << 24) | 1, int, pn, long]);
            b.add(&[name, (12 << 24) | 1, proto])
        } else {
            b.add(&[name, 12 << 24, void_proto])
        };
        func_ids.push(id);
        func_info.push(FuncInfo {
            insn_off: start,
            type_id: id,
        });
    }
    if let Some(cb) = env.exception_callback
        && let Some(pos) = starts.iter().position(|&s| s as usize == cb)
    {
        let tag = b.s(&format!("exception_callback:f{pos}"));
        b.add(&[tag, 17 << 24, func_ids[0], u32::MAX]);
    }
    (b.bytes(), func_info)
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
    let mut starts = subprog_starts(&code);
    starts.extend(env.global_funcs.keys().map(|&s| s as u32));
    starts.extend(env.exception_callback.map(|s| s as u32));
    starts.sort_unstable();
    starts.dedup();
    let prog_btf;
    let func_info: Vec<FuncInfo>;
    let mut load = ProgLoad::new(linux_type(env.prog_type), &code)
        .with_maps(&maps)
        .with_license("GPL")
        .with_log_level(1);
    if starts.len() > 1 {
        let (bytes, fi) = func_btf(env, &starts);
        prog_btf = Btf::load(&bytes).map_err(|e| format!("program BTF: {e}"))?;
        func_info = fi;
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
    // Noted on the record when the flag changed Cordon's verdict.
    let mut note = "";
    let ext_accept = cordon_ok && env.throw_releases_resources;
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
            if ext_accept && !cordon_ok {
                note = " (Cordon accepts with throw_releases_resources; compared with it off)";
            }
            if linux_ok == cordon_ok {
                record(&format!(
                    "agree {name} {} {}{note}",
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
