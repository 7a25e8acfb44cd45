//! Real clang-compiled programs (the repository's tests/bpf objects, loaded
//! by cordon-object) against their Linux 6.18 verdicts. The adapter below is
//! what an integrator does: map specs -> `MapInfo`, kfunc names -> registry
//! ids, BTF signatures of global functions -> `GlobalFuncSig`, line info.

use cordon_isa::{Insn, Program};
use cordon_object::btf::{Btf, BtfType};
use cordon_object::{FuncLinkage, Object, ProgramSpec};
use cordon_verifier::{
    ArgKind, GlobalFuncSig, GlobalRet, LineInfo, MapInfo, MapType, ProgType, VerifiedFacts,
    VerifyEnv, VerifyError, verify,
};
use std::path::PathBuf;

fn bpf_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bpf"))
}

fn prog_type(t: cordon_object::ProgType) -> Option<ProgType> {
    use cordon_object::ProgType as O;
    Some(match t {
        O::SocketFilter => ProgType::SocketFilter,
        O::SchedCls => ProgType::SchedCls,
        O::SchedAct => ProgType::SchedAct,
        O::Xdp => ProgType::Xdp,
        _ => return None,
    })
}

/// Offset of a `struct bpf_spin_lock` member of a map value type.
fn spin_lock_off(btf: &Btf, value_type: u32) -> Option<u32> {
    for m in btf.members(value_type)? {
        let t = btf.skip_mods_and_typedefs(m.type_id).ok()?;
        if let Some(BtfType::Struct { name: Some(n), .. }) = btf.type_by_id(t)
            && n == "bpf_spin_lock"
        {
            return Some(m.bit_offset / 8);
        }
    }
    None
}

fn global_sig(btf: &Btf, func_btf_id: u32, name: &str) -> GlobalFuncSig {
    let mut args = Vec::new();
    let mut ret = GlobalRet::Scalar;
    if let Some((r, params)) = btf.func_proto(func_btf_id) {
        if r == 0 {
            ret = GlobalRet::Void;
        }
        for p in params {
            let t = btf.skip_mods_and_typedefs(p.type_id).unwrap_or(0);
            let kind = match btf.type_by_id(t) {
                Some(BtfType::Ptr { type_id }) => {
                    let pointee = btf.skip_mods_and_typedefs(*type_id).unwrap_or(0);
                    let pname = btf
                        .type_by_id(pointee)
                        .and_then(|x| x.name().map(str::to_string));
                    match pname.as_deref() {
                        Some("__sk_buff") | Some("xdp_md") => ArgKind::PtrToCtx,
                        _ => ArgKind::PtrToMem {
                            size: btf.size_of(pointee).unwrap_or(0) as u32,
                            nullable: false,
                        },
                    }
                }
                _ => ArgKind::Scalar,
            };
            args.push(kind);
        }
    }
    GlobalFuncSig {
        name: name.to_string(),
        args,
        ret,
    }
}

/// Build the environment and the program (kfunc calls renumbered to registry ids).
fn load(obj: &Object, p: &ProgramSpec) -> Option<(Program, VerifyEnv)> {
    let t = prog_type(p.prog_type)?;
    let mut env = VerifyEnv::new(t).with_log_level(1);
    let info_of = |m: &cordon_object::MapSpec| {
        let mut info = MapInfo::new(
            &m.name,
            MapType::from_linux(m.map_type),
            m.key_size,
            m.value_size,
            m.max_entries,
        );
        if let (Some(btf), Some(v)) = (&obj.btf, m.btf_value_type_id) {
            info.spin_lock_off = spin_lock_off(btf, v);
        }
        info.rdonly_prog = m.flags & 0x80 != 0 || m.section.starts_with(".rodata");
        info
    };
    // Map indices of the object first (what `lddw src=5/6` carries), then the
    // inner map prototypes of maps of maps.
    env.maps = obj.maps.iter().map(info_of).collect();
    for (i, m) in obj.maps.iter().enumerate() {
        if let Some(inner) = &m.inner {
            env.maps.push(info_of(inner));
            env.maps[i].inner_map = Some(env.maps.len() as u32 - 1);
        }
    }
    let mut insns: Vec<Insn> = p.insns.clone();
    for (i, insn) in insns.iter_mut().enumerate() {
        if insn.code == 0x85 && insn.src == 2 {
            let name = obj
                .kfuncs
                .get(insn.imm as usize)
                .cloned()
                .unwrap_or_default();
            insn.imm = env.registry.kfunc_id(&name).unwrap_or(0) as i32;
            assert!(
                insn.imm != 0,
                "insn {i}: kfunc {name} is not in the registry"
            );
        }
    }
    if let Some(btf) = &obj.btf {
        for f in p.functions.iter().skip(1) {
            if f.linkage == FuncLinkage::Global
                && let Some(id) = f.btf_id
            {
                env.global_funcs
                    .insert(f.start, global_sig(btf, id, &f.name));
            }
        }
    }
    env.exception_callback = p
        .exception_callback
        .and_then(|i| p.functions.get(i))
        .map(|f| f.start);
    env.line_info = p
        .line_info
        .iter()
        .map(|l| LineInfo {
            insn: l.insn,
            file: l.file.clone(),
            line: l.line,
            col: l.column,
            source: l.text.clone(),
        })
        .collect();
    Some((Program::new(insns).ok()?, env))
}

fn verify_all() -> Vec<(String, String, Result<VerifiedFacts, VerifyError>)> {
    let mut out = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(bpf_dir())
        .expect("tests/bpf")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".o"))
        .collect();
    names.sort();
    for n in names {
        let bytes = std::fs::read(bpf_dir().join(&n)).unwrap();
        let obj = Object::parse(&bytes).unwrap_or_else(|e| panic!("{n}: {e}"));
        for p in &obj.programs {
            let Some((prog, env)) = load(&obj, p) else {
                continue;
            };
            out.push((n.clone(), p.name.clone(), verify(&prog, &env)));
        }
    }
    out
}

/// Programs whose features the verifier does not support yet, with the reason
/// (none at the moment: every object Linux 6.18 loads is accepted).
const UNSUPPORTED: &[(&str, &str)] = &[];

#[test]
fn linux_verdicts_on_real_objects() {
    let results = verify_all();
    assert!(results.len() > 20, "only {} programs", results.len());
    let mut failures = Vec::new();
    for (obj, prog, r) in &results {
        if let Some((_, why)) = UNSUPPORTED.iter().find(|(o, _)| o == obj) {
            match r {
                Ok(_) => eprintln!("{obj}/{prog}: now accepted (was: {why})"),
                Err(e) => eprintln!("{obj}/{prog}: rejected ({why}): {e}"),
            }
            continue;
        }
        if let Err(e) = r {
            failures.push(format!(
                "{obj}/{prog}: {e}\n{}",
                e.log
                    .lines()
                    .rev()
                    .take(12)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "Linux accepts these, Cordon rejected:\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn facts_of_real_objects() {
    let results = verify_all();
    // kfunc_obj: one reference at most, released on every path.
    let k = results
        .iter()
        .find(|(o, _, _)| o == "kfunc_obj.o")
        .expect("kfunc_obj.o");
    assert_eq!(k.2.as_ref().unwrap().max_refs, 1);
    // deep_calls: an 8-frame chain within 512 bytes.
    let d = results
        .iter()
        .find(|(o, _, _)| o == "deep_calls.o")
        .expect("deep_calls.o");
    let f = d.2.as_ref().unwrap();
    assert_eq!(f.subprogs[0].chain_frames, 8, "{:?}", f.subprogs);
    assert!(
        f.max_stack_depth <= 512 && f.max_stack_depth > 256,
        "{}",
        f.max_stack_depth
    );
    // iter_for: the loop back-edge has a safe point holding the iterator.
    let i = results
        .iter()
        .find(|(o, _, _)| o == "iter_for.o")
        .expect("iter_for.o");
    let f = i.2.as_ref().unwrap();
    assert!(!f.back_edges.is_empty());
}

/// Dropping a bounds check from a real program must be caught: turn each
/// register-register conditional jump of the XDP firewall into a fall-through
/// and count the mutants rejected for an out-of-bounds packet access.
#[test]
fn mutants_without_bounds_checks_are_rejected() {
    let bytes = std::fs::read(bpf_dir().join("xdp_firewall.o")).unwrap();
    let obj = Object::parse(&bytes).unwrap();
    let p = &obj.programs[0];
    let (prog, env) = load(&obj, p).unwrap();
    verify(&prog, &env).expect("original verifies");
    let mut packet_rejects = 0;
    let mut mutants = 0;
    for i in 0..prog.len() {
        let is_reg_jcond = prog.kind(i).is_some_and(|k| {
            matches!(
                k,
                cordon_isa::Kind::Jcond {
                    src: cordon_isa::Operand::Reg(_),
                    ..
                }
            )
        });
        if !is_reg_jcond {
            continue;
        }
        let mut insns = prog.insns().to_vec();
        insns[i] = Insn::new(0x05, 0, 0, 0, 0); // goto +0: always fall through
        let Ok(m) = Program::new(insns) else { continue };
        mutants += 1;
        if let Err(e) = verify(&m, &env)
            && e.message.contains("invalid access to packet")
        {
            packet_rejects += 1;
        }
    }
    assert!(mutants > 3, "{mutants} mutants");
    assert!(
        packet_rejects > 0,
        "no mutant of {mutants} was rejected for a packet access"
    );
}

/// Load one program of an object into Linux the way Cordon's loader produced
/// it (as tests/bpf/kernel_check.py does): kernel-sanitized BTF, maps with
/// their kernel BTF ids, initial data (frozen for read-only maps), inner map
/// prototypes, kfunc ids looked up in vmlinux, func_info/line_info.
/// Returns Linux's verdict and log, or why the program cannot be compared.
fn linux_verdict(obj: &Object, p: &ProgramSpec) -> Result<(bool, String), String> {
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
        let mut max = m.max_entries;
        if m.map_type == 4 && max == 0 {
            max = cordon_linux::possible_cpus().unwrap_or(1) as u32;
        }
        let mut spec = LSpec::new(LMap(m.map_type), m.key_size, m.value_size, max)
            .with_flags(m.flags)
            .with_map_extra(m.map_extra);
        if let (Some(b), Some((k, v))) = (&btf, m.kernel_btf_ids()) {
            spec = spec.with_btf(b, k, v);
        }
        if let Some(i) = inner {
            spec = spec.with_inner(i);
        }
        let map = Map::create(&spec).map_err(|e| format!("map {}: {e}", m.name))?;
        if let Some(data) = &m.initial_data {
            map.update(&0u32.to_le_bytes(), data, 0)
                .map_err(|e| format!("map {} data: {e}", m.name))?;
            if m.flags & 0x80 != 0 {
                map.freeze()
                    .map_err(|e| format!("freeze {}: {e}", m.name))?;
            }
        }
        Ok(map)
    };
    let mut maps = Vec::new();
    for m in &obj.maps {
        let inner = match &m.inner {
            Some(i) => Some(create(i, None)?),
            None => None,
        };
        maps.push(create(m, inner.as_ref())?);
    }
    let vmlinux = std::fs::read("/sys/kernel/btf/vmlinux")
        .ok()
        .and_then(|b| Btf::parse(&b).ok());
    let mut insns = p.insns.clone();
    for insn in insns.iter_mut() {
        if insn.code == 0x85 && insn.src == 2 {
            let name = obj
                .kfuncs
                .get(insn.imm as usize)
                .cloned()
                .unwrap_or_default();
            let id = vmlinux
                .as_ref()
                .and_then(|v| v.find_func(&name))
                .ok_or_else(|| format!("kfunc {name} is not in vmlinux (Cordon test kfunc)"))?;
            insn.imm = id as i32;
        }
    }
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
            .with_log_level(1);
    if let Some(b) = &btf
        && !func_info.is_empty()
    {
        load = load.with_btf(b, &func_info, &line_info);
    }
    let v = load.verdict().map_err(|e| format!("load: {e}"))?;
    Ok((v.accepted, v.log))
}

/// Every tests/bpf program, as Cordon's loader produced it, gets the same
/// verdict from Cordon's verifier and from Linux's.
#[test]
fn same_verdict_as_linux_on_real_objects() {
    let mut names: Vec<String> = std::fs::read_dir(bpf_dir())
        .expect("tests/bpf")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".o"))
        .collect();
    names.sort();
    let (mut compared, mut agree, mut skipped) = (0, 0, Vec::new());
    let mut disagreements = Vec::new();
    for n in names {
        let bytes = std::fs::read(bpf_dir().join(&n)).unwrap();
        let obj = Object::parse(&bytes).unwrap_or_else(|e| panic!("{n}: {e}"));
        for p in &obj.programs {
            let Some((prog, env)) = load(&obj, p) else {
                skipped.push(format!(
                    "{n}/{}: program type not supported by Cordon",
                    p.name
                ));
                continue;
            };
            let cordon = verify(&prog, &env);
            match linux_verdict(&obj, p) {
                Err(why) if why.starts_with("skip: ") => {
                    cordon_linux::report_skip(&format!("Linux object comparison: {why}"));
                    return;
                }
                Err(why) => skipped.push(format!("{n}/{}: {why}", p.name)),
                Ok((linux_ok, log)) => {
                    compared += 1;
                    if linux_ok == cordon.is_ok() {
                        agree += 1;
                    } else {
                        let tail: Vec<&str> = log.lines().rev().take(6).collect();
                        disagreements.push(format!(
                            "{n}/{}: Cordon {:?}, Linux {}\n{}",
                            p.name,
                            cordon.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                            if linux_ok { "accepts" } else { "rejects" },
                            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                        ));
                    }
                }
            }
        }
    }
    eprintln!(
        "objects vs Linux: {compared} programs compared, {agree} agree; not compared: {skipped:#?}"
    );
    assert!(compared >= 20, "only {compared} programs compared");
    assert!(
        disagreements.is_empty(),
        "Cordon and Linux disagree:\n{}",
        disagreements.join("\n\n")
    );
}
