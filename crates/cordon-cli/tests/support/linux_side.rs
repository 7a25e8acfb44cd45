//! Running a case in the Linux kernel (cordon-linux).

use std::collections::BTreeMap;
use std::path::Path;

use cordon_linux::{KernelError, KernelObject, TestRun};
use cordon_object::Object;

use super::cases::{Case, LinuxLoad};
use super::outcome::{Outcome, Run, RunOut, sum_per_cpu};

/// `sizeof(struct __sk_buff)`.
const SK_BUFF_SIZE: usize = 192;

fn test_run(prog: &cordon_linux::Program, case: &Case, pkt: &[u8]) -> Result<Run, KernelError> {
    let zero_ctx = [0u8; SK_BUFF_SIZE];
    let mut run = TestRun::new(pkt);
    if case.ctx {
        run = run.with_ctx(&zero_ctx);
    }
    match prog.test_run(&run) {
        Ok(r) => Ok(Ok(RunOut {
            retval: r.retval,
            data_out: r.data_out,
            ctx_out: case.ctx.then_some(r.ctx_out),
        })),
        Err(e) => errno_run(&e).ok_or(e),
    }
}

/// Pin the calling thread (and the bpftool processes it spawns) to CPU 0, so
/// every test run of a case uses the same per-CPU slot.
pub fn pin_to_cpu0() {
    // SAFETY: plain libc calls on a local cpu_set_t.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn errno_run(e: &KernelError) -> Option<Run> {
    let errno = e.errno()?;
    Some(Err(format!("errno {}", cordon_linux::errno_name(errno))))
}

/// Run `case` in Linux; `Err(Unavailable)` when bpf() is not permitted here.
pub fn run(case: &Case, dir: &Path) -> Result<Outcome, KernelError> {
    match case.linux {
        LinuxLoad::Libbpf => run_libbpf(case, dir),
        LinuxLoad::Raw => run_raw(case, dir),
        LinuxLoad::None => Err(KernelError::Unavailable(
            "Linux cannot load this object (Cordon-only kfuncs)".into(),
        )),
    }
}

fn run_libbpf(case: &Case, dir: &Path) -> Result<Outcome, KernelError> {
    pin_to_cpu0();
    let obj_path = dir.join(case.object);
    let obj = KernelObject::load(&obj_path)?;
    for (map, slot, prog) in &case.tail_calls {
        obj.set_tail_call(map, *slot, prog)?;
    }
    for (map, key, value) in &case.updates {
        obj.map_update(map, key, value)?;
    }
    let prog = obj.program(case.prog)?;
    let mut runs = Vec::new();
    for p in &case.packets {
        runs.push(test_run(&prog, case, p)?);
    }
    let parsed = Object::parse(&std::fs::read(&obj_path).expect("object")).expect("parse");
    let mut maps = BTreeMap::new();
    for m in &case.maps {
        let spec = parsed.map(m).expect("map in object").1;
        let entries = obj.dump_map_per_cpu(m)?;
        maps.insert(m.to_string(), sum_per_cpu(spec, entries));
    }
    Ok(Outcome { runs, maps })
}

/// Load what cordon-object produced with raw bpf() (as tests/bpf/kernel_check.py).
fn run_raw(case: &Case, dir: &Path) -> Result<Outcome, KernelError> {
    use cordon_linux::{FuncInfo, LineInfo, Map, MapSpec as LSpec, MapType, ProgLoad, ProgType};
    pin_to_cpu0();
    cordon_linux::available()?;
    let bytes = std::fs::read(dir.join(case.object)).expect("object");
    let obj = Object::parse(&bytes).expect("parse");
    let p = obj.program(case.prog).expect("program");
    let btf = match &obj.btf {
        Some(b) => Some(cordon_linux::Btf::load(&b.for_kernel().to_bytes())?),
        None => None,
    };
    let mut maps = Vec::new();
    for m in &obj.maps {
        assert!(
            m.inner.is_none(),
            "raw loading of maps of maps is not needed"
        );
        let mut spec = LSpec::new(MapType(m.map_type), m.key_size, m.value_size, m.max_entries)
            .with_flags(m.flags)
            .with_map_extra(m.map_extra)
            .with_name(&m.name);
        if let (Some(b), Some((k, v))) = (&btf, m.kernel_btf_ids()) {
            spec = spec.with_btf(b, k, v);
        }
        let freeze = m.flags & cordon_object::BPF_F_RDONLY_PROG != 0;
        maps.push(Map::create_for_object(
            &spec,
            m.initial_data.as_deref(),
            freeze,
        )?);
    }
    let vmlinux = std::fs::read("/sys/kernel/btf/vmlinux")
        .ok()
        .and_then(|b| cordon_object::Btf::parse(&b).ok());
    let mut insns = p.insns.clone();
    for insn in insns.iter_mut() {
        if insn.code == 0x85 && insn.src == 2 {
            let name = &obj.kfuncs[insn.imm as usize];
            let id = vmlinux
                .as_ref()
                .and_then(|v| v.find_func(name))
                .ok_or_else(|| KernelError::Unavailable(format!("kfunc {name} not in vmlinux")))?;
            insn.imm = id as i32;
        }
    }
    let refs: Vec<&Map> = maps.iter().collect();
    let func_info: Vec<FuncInfo> = p
        .func_info
        .iter()
        .map(|f| FuncInfo {
            insn_off: f.insn as u32,
            type_id: f.type_id,
        })
        .collect();
    let line_info: Vec<LineInfo> = p
        .line_info
        .iter()
        .map(|l| LineInfo {
            insn_off: l.insn as u32,
            file_name_off: l.file_name_off,
            line_off: l.line_off,
            line_col: (l.line << 10) | l.column,
        })
        .collect();
    let mut load = ProgLoad::new(ProgType(p.prog_type.kernel_id()), &insns)
        .with_maps(&refs)
        .with_license("GPL")
        .with_name(case.prog);
    // BPF_F_XDP_HAS_FRAGS for SEC("xdp.frags"), as libbpf sets it.
    load.prog_flags = p.prog_flags();
    if let Some(b) = &btf
        && !func_info.is_empty()
    {
        load = load.with_btf(b, &func_info, &line_info);
    }
    let prog = load.load()?;
    let by_name = |n: &str| {
        obj.map(n)
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("{}: no map {n}", case.name))
    };
    for (map, key, value) in &case.updates {
        let m = &maps[by_name(map)];
        if m.map_type().is_per_cpu() {
            let cpus = cordon_linux::possible_cpus()?;
            let slot = m.value_buf_size()? / cpus;
            let mut all = vec![0u8; slot * cpus];
            for c in 0..cpus {
                all[c * slot..c * slot + value.len()].copy_from_slice(value);
            }
            m.update(key, &all, 0)?;
        } else {
            m.update(key, value, 0)?;
        }
    }
    let mut runs = Vec::new();
    for pkt in &case.packets {
        runs.push(test_run(&prog, case, pkt)?);
    }
    let mut out_maps = BTreeMap::new();
    for name in &case.maps {
        let i = by_name(name);
        let m = &maps[i];
        let spec = &obj.maps[i];
        let mut entries = Vec::new();
        for k in m.keys()? {
            if m.map_type().is_per_cpu() {
                let vals = m.lookup_per_cpu(&k)?.unwrap_or_default();
                entries.push((
                    k,
                    vals.into_iter()
                        .map(|v| v[..spec.value_size as usize].to_vec())
                        .collect(),
                ));
            } else if let Some(v) = m.lookup(&k)? {
                entries.push((k, vec![v]));
            }
        }
        out_maps.insert(name.to_string(), sum_per_cpu(spec, entries));
    }
    Ok(Outcome {
        runs,
        maps: out_maps,
    })
}
