//! Program type and kfunc ids for cordon-object's output (the rest of the
//! verifier's inputs come from `VerifyEnv::with_object`, shared with
//! cordon-runtime's loader) and the same object loaded into Linux. Shared by
//! tests/objects.rs and the bench.
#![allow(dead_code)]

use cordon_isa::{Insn, Program};
use cordon_object::btf::Btf;
use cordon_object::{Object, ProgramSpec};
use cordon_verifier::{ProgType, VerifyEnv};
use std::path::PathBuf;

pub fn bpf_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bpf"))
}

pub fn prog_type(t: cordon_object::ProgType) -> Option<ProgType> {
    use cordon_object::ProgType as O;
    Some(match t {
        O::SocketFilter => ProgType::SocketFilter,
        O::SchedCls => ProgType::SchedCls,
        O::SchedAct => ProgType::SchedAct,
        O::Xdp => ProgType::Xdp,
        _ => return None,
    })
}

/// Build the environment and the program (kfunc calls renumbered to registry ids).
pub fn load(obj: &Object, p: &ProgramSpec) -> Option<(Program, VerifyEnv)> {
    let t = prog_type(p.prog_type)?;
    // Maps (object maps, then inner prototypes), global function signatures,
    // exception callback and line info: the adapter cordon-runtime uses too.
    let env = VerifyEnv::new(t).with_log_level(1).with_object(obj, p);
    let insns = with_kfunc_ids(obj, p, |i, name| match env.registry.kfunc_id(name) {
        Some(id) if id != 0 => Ok(id),
        _ => Err(format!("insn {i}: kfunc {name} is not in the registry")),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    Some((Program::new(insns).ok()?, env))
}

/// The program's instructions with each kfunc call's index into the
/// object's kfunc names replaced by `id(insn index, name)` (the first error
/// of `id` is returned).
fn with_kfunc_ids(
    obj: &Object,
    p: &ProgramSpec,
    mut id: impl FnMut(usize, &str) -> Result<u32, String>,
) -> Result<Vec<Insn>, String> {
    let mut insns = p.insns.clone();
    for (i, insn) in insns.iter_mut().enumerate() {
        if insn.code == 0x85 && insn.src == 2 {
            let name = obj.kfuncs.get(insn.imm as usize).map_or("", String::as_str);
            insn.imm = id(i, name)? as i32;
        }
    }
    Ok(insns)
}

/// Load one program of an object into Linux the way Cordon's loader produced
/// it (as tests/bpf/kernel_check.py does): kernel-sanitized BTF, maps with
/// their kernel BTF ids, initial data (frozen for read-only maps), inner map
/// prototypes, kfunc ids looked up in vmlinux, func_info/line_info.
/// Returns Linux's verdict and log, or why the program cannot be compared.
pub fn linux_verdict(
    obj: &Object,
    p: &ProgramSpec,
    log_level: u32,
) -> Result<(bool, String), String> {
    use cordon_linux::{FuncInfo, LineInfo as LLine, Map, MapSpec as LSpec, MapType as LMap};
    let unavailable = |e: cordon_linux::KernelError| match e.skip() {
        Some(r) => format!("skip: {r}"),
        None => e.to_string(),
    };
    cordon_linux::available().map_err(unavailable)?;
    let btf = match &obj.btf {
        Some(b) => Some(
            cordon_linux::Btf::load(&b.for_kernel().to_bytes()).map_err(|e| format!("BTF: {e}"))?,
        ),
        None => None,
    };
    let create = |m: &cordon_object::MapSpec, inner: Option<&Map>| -> Result<Map, String> {
        let mut spec = LSpec::new(LMap(m.map_type), m.key_size, m.value_size, m.max_entries)
            .with_flags(m.flags)
            .with_map_extra(m.map_extra);
        if let (Some(b), Some((k, v))) = (&btf, m.kernel_btf_ids()) {
            spec = spec.with_btf(b, k, v);
        }
        if let Some(i) = inner {
            spec = spec.with_inner(i);
        }
        let freeze = m.flags & cordon_object::BPF_F_RDONLY_PROG != 0;
        Map::create_for_object(&spec, m.initial_data.as_deref(), freeze)
            .map_err(|e| format!("map {}: {e}", m.name))
    };
    let mut maps = Vec::new();
    for m in &obj.maps {
        let inner = match &m.inner {
            Some(i) => Some(create(i, None)?),
            None => None,
        };
        maps.push(create(m, inner.as_ref())?);
    }
    let vmlinux = vmlinux();
    let insns = with_kfunc_ids(obj, p, |_, name| {
        vmlinux
            .and_then(|v| v.find_func(name))
            .ok_or_else(|| format!("kfunc {name} is not in vmlinux (Cordon test kfunc)"))
    })?;
    let map_refs: Vec<&Map> = maps.iter().collect();
    let func_info: Vec<FuncInfo> = p
        .func_info
        .iter()
        .map(|f| FuncInfo {
            insn_off: f.insn as u32,
            type_id: f.type_id,
        })
        .collect();
    let line_info: Vec<LLine> = p
        .line_info
        .iter()
        .map(|l| LLine {
            insn_off: l.insn as u32,
            file_name_off: l.file_name_off,
            line_off: l.line_off,
            line_col: (l.line << 10) | l.column,
        })
        .collect();
    let mut load =
        cordon_linux::ProgLoad::new(cordon_linux::ProgType(p.prog_type.kernel_id()), &insns)
            .with_maps(&map_refs)
            .with_license("GPL")
            .with_log_level(log_level);
    if let Some(b) = &btf
        && !func_info.is_empty()
    {
        load = load.with_btf(b, &func_info, &line_info);
    }
    let v = load.verdict().map_err(|e| format!("load: {e}"))?;
    Ok((v.accepted, v.log))
}

/// The running kernel's BTF (parsed once).
fn vmlinux() -> Option<&'static Btf> {
    static V: std::sync::OnceLock<Option<Btf>> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        std::fs::read("/sys/kernel/btf/vmlinux")
            .ok()
            .and_then(|b| Btf::parse(&b).ok())
    })
    .as_ref()
}
