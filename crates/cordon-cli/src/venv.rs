//! Object → verifier environment: map specs → `MapInfo`, kfunc names →
//! registry ids, BTF signatures of global functions → `GlobalFuncSig`,
//! exception callback, line info. Used by `cordon verify`.

use anyhow::{Result, anyhow};
use cordon_isa::{Insn, Program};
use cordon_object::btf::{Btf, BtfType};
use cordon_object::{FuncLinkage, MapSpec, Object, ProgramSpec};
use cordon_verifier::{
    ArgKind, GlobalFuncSig, GlobalRet, LineInfo, MapInfo, MapType, ProgType, VerifyEnv,
};

/// The verifier's program type for an object program type.
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

/// A global function's signature from its BTF prototype.
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

/// The environment and the program to verify (kfunc calls renumbered from
/// object kfunc indices to registry ids).
pub fn build(obj: &Object, p: &ProgramSpec, base: VerifyEnv) -> Result<(Program, VerifyEnv)> {
    let mut env = base;
    let info_of = |m: &MapSpec| {
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
        info.rdonly_prog =
            m.flags & cordon_object::BPF_F_RDONLY_PROG != 0 || m.section.starts_with(".rodata");
        info
    };
    // Object map indices first (what `lddw src=5/6` carries), then the inner
    // map prototypes of maps of maps.
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
                .ok_or_else(|| anyhow!("insn {i}: kfunc index {} out of range", insn.imm))?;
            let id = env.registry.kfunc_id(name).ok_or_else(|| {
                anyhow!(
                    "insn {i}: kfunc {name} is not known to this host (no such kfunc registered)"
                )
            })?;
            insn.imm = id as i32;
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
    let prog = Program::new(insns).map_err(|e| anyhow!("program {}: {e}", p.name))?;
    Ok((prog, env))
}
