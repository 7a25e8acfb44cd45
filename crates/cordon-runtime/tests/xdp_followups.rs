//! Linux-equality follow-ups around XDP and tail calls, compared with the
//! running kernel (skipped cleanly when `bpf()` is not permitted) and run on
//! both engines, verified and checked:
//! * a prog_array fixes the program type, `xdp_has_frags` and
//!   `expected_attach_type` of its first program (`__bpf_prog_map_compatible`);
//! * XDP metadata is limited to 216 bytes (headroom after `struct xdp_frame`)
//!   for `bpf_xdp_adjust_meta` and for test_run's `ctx_in.data`.

use std::os::fd::AsFd;
use std::sync::Arc;

use cordon_isa::assemble_linux;
use cordon_linux::{
    AttachType, Map as KMap, MapSpec as KMapSpec, MapType as KMapType, ProgLoad, ProgType as KType,
    TestRun,
};
use cordon_object::{MapSpec, Object, ProgType, ProgramSpec, RelocKind, Relocation};
use cordon_runtime::{
    Backend, CompiledProgram, Config, LoadError, LoadedObject, RunError, Runtime,
};

const MODES: [(Backend, bool); 4] = [
    (Backend::Interpreter, true),
    (Backend::Jit, true),
    (Backend::Interpreter, false),
    (Backend::Jit, false),
];

const EINVAL: i32 = 22;
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// One program of a test object: name, section, type, assembly; `uses_jmp`
/// means its instruction 1 is an `lddw` of the object's prog_array "jmp".
struct P<'a> {
    name: &'a str,
    section: &'a str,
    ty: ProgType,
    asm: &'a str,
    uses_jmp: bool,
}

fn prog_array_spec() -> MapSpec {
    MapSpec::btf_defined("jmp", 3, 4, 4, 4)
}

fn object(progs: &[P<'_>], with_array: bool) -> Object {
    let programs = progs
        .iter()
        .map(|p| {
            let mut insns = assemble_linux(p.asm).unwrap_or_else(|e| panic!("{e}\n{}", p.asm));
            if p.uses_jmp {
                // As the ELF linker leaves it: BPF_PSEUDO_MAP_IDX, map 0.
                insns[1].src = 5;
            }
            let relocations = if p.uses_jmp {
                vec![Relocation {
                    insn: 1,
                    symbol: "jmp".into(),
                    kind: RelocKind::Map { map: 0 },
                }]
            } else {
                Vec::new()
            };
            ProgramSpec {
                relocations,
                ..ProgramSpec::single_function(p.name, p.section, p.ty, insns)
            }
        })
        .collect();
    Object {
        programs,
        maps: if with_array {
            vec![prog_array_spec()]
        } else {
            Vec::new()
        },
        kfuncs: Vec::new(),
        license: Some("GPL".into()),
        kernel_version: None,
        btf: None,
    }
}

fn runtime((backend, verify): (Backend, bool)) -> Runtime {
    Runtime::new(Config {
        backend,
        verify,
        cpus: 2,
        ..Config::default()
    })
}

/// Tail-calls slot 0 of "jmp"; returns 1 (XDP_DROP / TC_ACT_SHOT) when the
/// slot is empty.
const CALLER: &str = "
r6 = r1
r2 = 0 ll
r1 = r6
r3 = 0
call 12
r0 = 1
exit";

/// Cordon's section and type for a kernel (type, prog_flags,
/// expected_attach_type) as libbpf loads that section.
struct Flavour {
    section: &'static str,
    ty: ProgType,
    ktype: KType,
    flags: u32,
    eat: u32,
}

const fn fl(section: &'static str, ty: ProgType, ktype: KType, flags: u32, eat: u32) -> Flavour {
    Flavour {
        section,
        ty,
        ktype,
        flags,
        eat,
    }
}

const XDP: Flavour = fl("xdp", ProgType::Xdp, KType::XDP, 0, 37);
const XDP_FRAGS: Flavour = fl(
    "xdp.frags",
    ProgType::Xdp,
    KType::XDP,
    BPF_F_XDP_HAS_FRAGS,
    37,
);
const XDP_DEVMAP: Flavour = fl("xdp/devmap", ProgType::Xdp, KType::XDP, 0, 33);
const XDP_FRAGS_DEVMAP: Flavour = fl(
    "xdp.frags/devmap",
    ProgType::Xdp,
    KType::XDP,
    BPF_F_XDP_HAS_FRAGS,
    33,
);
const TC: Flavour = fl("tc", ProgType::SchedCls, KType::SCHED_CLS, 0, 0);
const TCX_INGRESS: Flavour = fl("tcx/ingress", ProgType::SchedCls, KType::SCHED_CLS, 0, 46);
const ACTION: Flavour = fl("action", ProgType::SchedAct, KType::SCHED_ACT, 0, 0);

/// (first program, second program, property named in Cordon's error or
/// `None` when both are accepted).
const CASES: &[(&Flavour, &Flavour, Option<&str>)] = &[
    (&XDP, &XDP, None),
    (&XDP_FRAGS, &XDP_FRAGS, None),
    (&TC, &TC, None),
    (&XDP, &XDP_FRAGS, Some("xdp_has_frags 1")),
    (&XDP_FRAGS, &XDP, Some("xdp_has_frags 0")),
    (&XDP, &TC, Some("program type 3")),
    (&TC, &XDP, Some("program type 6")),
    (&TC, &ACTION, Some("program type 4")),
    (&XDP, &XDP_DEVMAP, Some("expected_attach_type 33")),
    (
        &XDP_FRAGS_DEVMAP,
        &XDP_FRAGS,
        Some("expected_attach_type 37"),
    ),
    (&XDP_DEVMAP, &XDP_FRAGS_DEVMAP, Some("xdp_has_frags 1")),
    (&TC, &TCX_INGRESS, Some("expected_attach_type 46")),
];

/// Kernel: inserts `a` at 0, `b` at 1, empties slot 0 and inserts `b` again;
/// the errno of the two `b` insertions.
fn kernel_inserts(a: &Flavour, b: &Flavour) -> Option<(Option<i32>, Option<i32>)> {
    let load = |f: &Flavour| {
        let insns = assemble_linux("r0 = 2\nexit").unwrap();
        let mut l = ProgLoad::new(f.ktype, &insns).with_expected_attach_type(AttachType(f.eat));
        l.prog_flags = f.flags;
        l.load()
    };
    let map = match KMap::create(&KMapSpec::new(KMapType::PROG_ARRAY, 4, 4, 4)) {
        Ok(m) => m,
        Err(e) => {
            cordon_linux::report_skip(e.skip().unwrap_or_else(|| panic!("{e}")));
            return None;
        }
    };
    let (pa, pb) = (load(a).unwrap(), load(b).unwrap());
    map.update_fd(&0u32.to_ne_bytes(), pa.as_fd()).unwrap();
    let first = map.update_fd(&1u32.to_ne_bytes(), pb.as_fd()).err();
    assert!(map.delete(&0u32.to_ne_bytes()).unwrap());
    let again = map.update_fd(&1u32.to_ne_bytes(), pb.as_fd()).err();
    Some((
        first.map(|e| e.errno().unwrap()),
        again.map(|e| e.errno().unwrap()),
    ))
}

fn target(rt: &Runtime, name: &str, f: &Flavour, ret: u32) -> Arc<CompiledProgram> {
    let asm = format!("r0 = {ret}\nexit");
    let o = rt
        .load_parsed(object(
            &[P {
                name,
                section: f.section,
                ty: f.ty,
                asm: &asm,
                uses_jmp: false,
            }],
            false,
        ))
        .unwrap();
    o.program(name).unwrap()
}

fn array_object(rt: &Runtime, caller: &Flavour) -> LoadedObject {
    rt.load_parsed(object(
        &[P {
            name: "caller",
            section: caller.section,
            ty: caller.ty,
            asm: CALLER,
            uses_jmp: true,
        }],
        true,
    ))
    .unwrap()
}

fn slot_errno(e: &LoadError) -> i32 {
    match e {
        LoadError::TailCallSlot { .. } => EINVAL,
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn prog_array_properties_match_linux() {
    let mut kernel = true;
    for (a, b, refusal) in CASES {
        let k = if kernel { kernel_inserts(a, b) } else { None };
        kernel &= k.is_some();
        if let Some((first, again)) = k {
            let want = refusal.map(|_| EINVAL);
            assert_eq!(
                (first, again),
                (want, want),
                "kernel: {} then {}",
                a.section,
                b.section
            );
        }
        for mode in MODES {
            let rt = runtime(mode);
            let obj = array_object(&rt, a);
            let (pa, pb) = (target(&rt, "first", a, 2), target(&rt, "second", b, 3));
            obj.set_tail_call("jmp", 0, &pa).unwrap();
            let r1 = obj.set_tail_call("jmp", 1, &pb);
            obj.map_handle("jmp")
                .unwrap()
                .delete_value(&0u32.to_ne_bytes())
                .unwrap();
            let r2 = obj.set_tail_call("jmp", 1, &pb);
            let ctx = format!("{mode:?}: {} then {}", a.section, b.section);
            match refusal {
                None => {
                    r1.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    r2.unwrap_or_else(|e| panic!("{ctx}: {e}"));
                }
                Some(prop) => {
                    for r in [r1, r2] {
                        let e = r.expect_err(&ctx);
                        assert_eq!(slot_errno(&e), EINVAL);
                        let msg = e.to_string();
                        for part in ["'second'", "'first'", prop] {
                            assert!(msg.contains(part), "{ctx}: {msg:?} lacks {part:?}");
                        }
                    }
                }
            }
        }
    }
}

/// The accepted programs really run as tail-call targets; the caller (which
/// uses the array) is compiled first and binds its properties.
#[test]
fn prog_array_caller_binds_owner() {
    let pkt = vec![0u8; 64];
    for mode in MODES {
        let rt = runtime(mode);
        let obj = array_object(&rt, &XDP);
        let caller = obj.program("caller").unwrap();
        assert_eq!(
            caller.run_xdp(&pkt).unwrap().retval,
            1,
            "{mode:?}: empty slot"
        );
        let frags = target(&rt, "frags", &XDP_FRAGS, 3);
        let e = obj.set_tail_call("jmp", 0, &frags).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("'frags'") && msg.contains("'caller'") && msg.contains("xdp_has_frags"),
            "{mode:?}: {msg}"
        );
        let tc = target(&rt, "tc_prog", &TC, 3);
        let msg = obj.set_tail_call("jmp", 0, &tc).unwrap_err().to_string();
        assert!(
            msg.contains("'tc_prog'") && msg.contains("'caller'") && msg.contains("program type"),
            "{mode:?}: {msg}"
        );
        let ok = target(&rt, "plain", &XDP, 3);
        obj.set_tail_call("jmp", 0, &ok).unwrap();
        assert_eq!(
            caller.run_xdp(&pkt).unwrap().retval,
            3,
            "{mode:?}: tail call"
        );

        // A frags program inserted first, then a non-frags caller loads:
        // refused like Linux's bpf_check_tail_call at load (EINVAL).
        let rt = runtime(mode);
        let obj = array_object(&rt, &XDP);
        let frags = target(&rt, "frags", &XDP_FRAGS, 3);
        obj.set_tail_call("jmp", 0, &frags).unwrap();
        let e = obj.program("caller").unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, LoadError::Map { .. })
                && msg.contains("'caller'")
                && msg.contains("'frags'"),
            "{mode:?}: {msg}"
        );
        // A frags caller is fine with it and runs it.
        let obj = array_object(&rt, &XDP_FRAGS);
        obj.set_tail_call("jmp", 0, &frags).unwrap();
        let caller = obj.program("caller").unwrap();
        assert_eq!(
            caller.run_xdp(&pkt).unwrap().retval,
            3,
            "{mode:?}: frags tail call"
        );
    }
}

/// The kernel side of [`prog_array_caller_binds_owner`]: a loaded caller
/// binds the array (`bpf_check_tail_call`), and a caller loaded after an
/// incompatible target was inserted is refused (EINVAL).
#[test]
fn prog_array_caller_binds_owner_on_linux() {
    let map = match KMap::create(&KMapSpec::new(KMapType::PROG_ARRAY, 4, 4, 4)) {
        Ok(m) => m,
        Err(e) => {
            cordon_linux::report_skip(e.skip().unwrap_or_else(|| panic!("{e}")));
            return;
        }
    };
    let mut caller_insns = assemble_linux(CALLER).unwrap();
    caller_insns[1].src = 5;
    let load_caller = |f: &Flavour, map: &KMap| {
        let maps = [map];
        let mut l = ProgLoad::new(f.ktype, &caller_insns)
            .with_expected_attach_type(AttachType(f.eat))
            .with_maps(&maps)
            .with_log_level(0);
        l.prog_flags = f.flags;
        l.load()
    };
    let target = |f: &Flavour| {
        let insns = assemble_linux("r0 = 3\nexit").unwrap();
        let mut l = ProgLoad::new(f.ktype, &insns).with_expected_attach_type(AttachType(f.eat));
        l.prog_flags = f.flags;
        l.load().unwrap()
    };
    let caller = load_caller(&XDP, &map).unwrap();
    let key = 0u32.to_ne_bytes();
    for f in [&XDP_FRAGS, &TC] {
        let e = map.update_fd(&key, target(f).as_fd()).unwrap_err();
        assert_eq!(e.errno(), Some(EINVAL), "{}", f.section);
    }
    map.update_fd(&key, target(&XDP).as_fd()).unwrap();
    let pkt = vec![0u8; 64];
    assert_eq!(caller.test_run(&TestRun::new(&pkt)).unwrap().retval, 3);

    let map = KMap::create(&KMapSpec::new(KMapType::PROG_ARRAY, 4, 4, 4)).unwrap();
    map.update_fd(&key, target(&XDP_FRAGS).as_fd()).unwrap();
    let e = load_caller(&XDP, &map).unwrap_err();
    assert_eq!(e.errno(), Some(EINVAL), "{e}");
    let caller = load_caller(&XDP_FRAGS, &map).unwrap();
    assert_eq!(caller.test_run(&TestRun::new(&pkt)).unwrap().retval, 3);
}

#[test]
fn section_attach_types() {
    use cordon_runtime::maps::section_expected_attach_type as eat;
    assert_eq!(eat("xdp"), 37);
    assert_eq!(eat("?xdp.frags"), 37);
    assert_eq!(eat("xdp/devmap"), 33);
    assert_eq!(eat("xdp.frags/cpumap"), 35);
    assert_eq!(eat("tcx/egress"), 47);
    assert_eq!(eat("tc/ingress"), 46);
    assert_eq!(eat("tc"), 0);
    assert_eq!(eat("classifier"), 0);
    assert_eq!(eat("socket"), 0);
    assert_eq!(eat(""), 0);
}

// ---------------------------------------------------------------- metadata

/// Returns `data - data_meta`.
const META_LEN: &str = "
r2 = *(u32 *)(r1 +0)
r3 = *(u32 *)(r1 +8)
r0 = r2
r0 -= r3
exit";

fn adjust_meta(by: i32) -> String {
    format!("r2 = {by}\ncall 54\nexit")
}

fn xdp_md(meta: u32, end: u32) -> Vec<u8> {
    let mut ctx = vec![0u8; 24];
    ctx[0..4].copy_from_slice(&meta.to_ne_bytes());
    ctx[4..8].copy_from_slice(&end.to_ne_bytes());
    ctx
}

/// `Ok(retval)` or `Err(errno)` of a kernel test run (`None`: no bpf()).
fn kernel_run(asm: &str, pkt: &[u8], ctx: Option<&[u8]>) -> Option<Result<u32, i32>> {
    let insns = assemble_linux(asm).unwrap();
    let p = match ProgLoad::new(KType::XDP, &insns).load() {
        Ok(p) => p,
        Err(e) => {
            cordon_linux::report_skip(e.skip().unwrap_or_else(|| panic!("{e}")));
            return None;
        }
    };
    let mut run = TestRun::new(pkt);
    run.ctx_in = ctx;
    Some(
        p.test_run(&run)
            .map(|r| r.retval)
            .map_err(|e| e.errno().unwrap()),
    )
}

fn cordon_run(
    mode: (Backend, bool),
    asm: &str,
    pkt: &[u8],
    ctx: Option<&[u8]>,
) -> Result<u32, i32> {
    let rt = runtime(mode);
    let o = rt
        .load_parsed(object(
            &[P {
                name: "p",
                section: "xdp",
                ty: ProgType::Xdp,
                asm,
                uses_jmp: false,
            }],
            false,
        ))
        .unwrap();
    let p = o.program("p").unwrap();
    match p.run_xdp_with(pkt, ctx) {
        Ok(r) => Ok(r.retval),
        Err(RunError::BadContext {
            errno: "EINVAL", ..
        }) => Err(EINVAL),
        Err(e) => panic!("{mode:?}: unexpected {e}"),
    }
}

/// The expectation measured on Linux 6.18 (also asserted against the running
/// kernel when available).
fn compare(asm: &str, pkt: &[u8], ctx: Option<&[u8]>, want: Result<u32, i32>, kernel: &mut bool) {
    if *kernel {
        match kernel_run(asm, pkt, ctx) {
            Some(k) => assert_eq!(k, want, "kernel: {asm} ctx {ctx:?}"),
            None => *kernel = false,
        }
    }
    for mode in MODES {
        assert_eq!(cordon_run(mode, asm, pkt, ctx), want, "{mode:?}: {asm}");
    }
}

#[test]
fn adjust_meta_limit_matches_linux() {
    let pkt = vec![0u8; 64];
    let mut kernel = true;
    let einval = (-EINVAL) as u32;
    let eacces = (-13i32) as u32;
    for (by, want) in [
        (0, 0),
        (-4, 0),
        (-212, 0),
        (-216, 0),
        (-220, einval),
        (-252, einval),
        (-256, einval),
        (-3, eacces),
        (4, einval),
        (i32::MIN, einval),
    ] {
        compare(&adjust_meta(by), &pkt, None, Ok(want), &mut kernel);
    }
}

#[test]
fn ctx_in_meta_limit_matches_linux() {
    let pkt = vec![0x5au8; 300];
    let mut kernel = true;
    let einval = (-EINVAL) as u32;
    for m in [0u32, 4, 40, 200, 212, 216] {
        let ctx = xdp_md(m, 300);
        compare(META_LEN, &pkt, Some(&ctx), Ok(m), &mut kernel);
        // The headroom left above the xdp_frame bounds adjust_meta further.
        let room = 216 - m as i32;
        compare(&adjust_meta(-room), &pkt, Some(&ctx), Ok(0), &mut kernel);
        compare(
            &adjust_meta(-room - 4),
            &pkt,
            Some(&ctx),
            Ok(einval),
            &mut kernel,
        );
    }
    // Refused: past 216 bytes, and unaligned.
    for m in [220u32, 224, 252, 256, 2, 6, 214] {
        let ctx = xdp_md(m, 300);
        compare(META_LEN, &pkt, Some(&ctx), Err(EINVAL), &mut kernel);
    }
}

// ------------------------------------------------------- bpf_xdp_pull_data

/// BTF id of FUNC `name` in the running kernel's vmlinux BTF.
fn vmlinux_func_id(name: &str) -> Option<u32> {
    let b = std::fs::read("/sys/kernel/btf/vmlinux").ok()?;
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
    };
    if b.get(0..2)? != [0x9f, 0xeb] {
        return None;
    }
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let str_off = u32_at(16)? as usize;
    let (types, strs) = (hdr_len + type_off, hdr_len + str_off);
    let (mut o, mut id) = (types, 1u32);
    while o < types + type_len {
        let (name_off, info) = (u32_at(o)? as usize, u32_at(o + 4)?);
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        if kind == 12 {
            let s = &b[strs + name_off..];
            let n = s.iter().position(|&c| c == 0)?;
            if &s[..n] == name.as_bytes() {
                return Some(id);
            }
        }
        o += 12
            + match kind {
                1 | 14 | 17 => 4,
                3 => 12,
                4 | 5 | 15 | 19 => vlen * 12,
                6 | 13 => vlen * 8,
                _ => 0,
            };
        id += 1;
    }
    None
}

/// Pulls `len` bytes, returns `(ret & 0xff) << 16 | (data_end - data)`.
fn pull_prog(len: u32) -> String {
    format!(
        "
r6 = r1
r1 = r6
r2 = {len}
call 0
r0 &= 0xff
r0 <<= 16
r2 = *(u32 *)(r6 +0)
r3 = *(u32 *)(r6 +4)
r3 -= r2
r0 |= r3
exit"
    )
}
const PULL_CALL: usize = 3;

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    retval: u32,
    data_out: Vec<u8>,
}

fn kernel_pull(asm: &str, pkt: &[u8], ctx: &[u8]) -> Option<Result<Outcome, i32>> {
    let id = vmlinux_func_id("bpf_xdp_pull_data")?;
    let mut insns = assemble_linux(asm).unwrap();
    insns[PULL_CALL].src = 2;
    insns[PULL_CALL].imm = id as i32;
    let mut l = ProgLoad::new(KType::XDP, &insns);
    l.prog_flags = BPF_F_XDP_HAS_FRAGS;
    let p = match l.load() {
        Ok(p) => p,
        Err(e) => {
            cordon_linux::report_skip(e.skip().unwrap_or_else(|| panic!("{e}")));
            return None;
        }
    };
    let mut run = TestRun::new(pkt);
    run.ctx_in = Some(ctx);
    Some(
        p.test_run(&run)
            .map(|r| Outcome {
                retval: r.retval,
                data_out: r.data_out,
            })
            .map_err(|e| e.errno().unwrap()),
    )
}

fn pull_object(asm: &str, section: &str, ty: ProgType) -> Object {
    let mut o = object(
        &[P {
            name: "p",
            section,
            ty,
            asm,
            uses_jmp: false,
        }],
        false,
    );
    let prog = &mut o.programs[0];
    prog.insns[PULL_CALL].src = 2;
    prog.insns[PULL_CALL].imm = 0;
    prog.relocations.push(Relocation {
        insn: PULL_CALL,
        symbol: "bpf_xdp_pull_data".into(),
        kind: RelocKind::Kfunc { kfunc: 0 },
    });
    prog.kfuncs.push("bpf_xdp_pull_data".into());
    o.kfuncs.push("bpf_xdp_pull_data".into());
    o
}

fn cordon_pull(mode: (Backend, bool), asm: &str, pkt: &[u8], ctx: &[u8]) -> Outcome {
    let rt = runtime(mode);
    let o = rt
        .load_parsed(pull_object(asm, "xdp.frags", ProgType::Xdp))
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    let r = o
        .program("p")
        .unwrap()
        .run_xdp_with(pkt, Some(ctx))
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    Outcome {
        retval: r.retval,
        data_out: r.packet,
    }
}

/// (input length, metadata, linear length incl. metadata, pull length,
/// expected pull return (0 / -EINVAL), expected linear length after).
const PULLS: &[(usize, u32, u32, u32, i32, u32)] = &[
    (6000, 0, 3520, 100, 0, 3520),
    (6000, 0, 200, 300, 0, 300),
    (6000, 0, 200, 3520, 0, 3520),
    (6000, 0, 200, 3521, 0, 3521),
    (6000, 0, 200, 3536, 0, 3536),
    (6000, 0, 200, 3736, 0, 3736),
    (6000, 0, 200, 3737, -22, 200),
    (6000, 0, 200, 6000, -22, 200),
    (6000, 0, 200, 6001, -22, 200),
    (6000, 8, 208, 3728, 0, 3728),
    (6000, 8, 208, 3729, -22, 200),
    (3500, 0, 3400, 3500, 0, 3500),
    (3500, 0, 3400, 3450, 0, 3450),
    (9000, 0, 1000, 3000, 0, 3000),
    (3500, 0, 3400, 0, 0, 3400),
];

#[test]
fn xdp_pull_data_matches_linux() {
    let mut kernel = true;
    for &(n, meta, linear, len, ret, lin_after) in PULLS {
        let pkt: Vec<u8> = (0..n).map(|i| (i * 7 + (i >> 8)) as u8).collect();
        let ctx = xdp_md(meta, linear);
        let asm = pull_prog(len);
        let want = Outcome {
            retval: ((ret as u32) & 0xff) << 16 | lin_after,
            data_out: pkt.clone(),
        };
        if kernel {
            match kernel_pull(&asm, &pkt, &ctx) {
                Some(k) => assert_eq!(
                    k.map(|o| (o.retval, o.data_out == pkt)),
                    Ok((want.retval, true)),
                    "kernel: {n} {meta} {linear} {len}"
                ),
                None => kernel = false,
            }
        }
        for mode in MODES {
            let got = cordon_pull(mode, &asm, &pkt, &ctx);
            assert_eq!(
                got.retval, want.retval,
                "{mode:?}: {n} {meta} {linear} {len}"
            );
            assert!(
                got.data_out == want.data_out,
                "{mode:?}: data_out {n} {linear} {len}"
            );
        }
    }
}

/// A packet pointer taken before the pull is stale after it: Linux and
/// Cordon's verifier refuse the program ("invalid mem access").
#[test]
fn xdp_pull_data_invalidates_packet_pointers() {
    let stale = "
r6 = r1
r7 = *(u32 *)(r6 +0)
r2 = 64
call 0
r8 = *(u32 *)(r6 +4)
r1 = *(u32 *)(r6 +0)
r1 += 14
if r1 > r8 goto +2
r0 = *(u8 *)(r7 +0)
exit
r0 = 0
exit";
    // Control: the same reads through the fresh pointer are accepted.
    let fresh = stale.replace("r0 = *(u8 *)(r7 +0)", "r0 = *(u8 *)(r1 -14)");
    if let Some(id) = vmlinux_func_id("bpf_xdp_pull_data") {
        for (asm, ok) in [(stale, false), (fresh.as_str(), true)] {
            let mut insns = assemble_linux(asm).unwrap();
            insns[PULL_CALL].src = 2;
            insns[PULL_CALL].imm = id as i32;
            let mut l = ProgLoad::new(KType::XDP, &insns);
            l.prog_flags = BPF_F_XDP_HAS_FRAGS;
            match l.load() {
                Ok(_) => assert!(ok, "kernel accepted the stale pointer"),
                Err(e) if e.skip().is_some() => {
                    cordon_linux::report_skip(e.skip().unwrap());
                    break;
                }
                Err(e) => assert!(!ok, "kernel refused the fresh pointer: {e}"),
            }
        }
    }
    for mode in [(Backend::Interpreter, true), (Backend::Jit, true)] {
        let rt = runtime(mode);
        let e = rt
            .load_parsed(pull_object(stale, "xdp.frags", ProgType::Xdp))
            .and_then(|o| o.program("p"))
            .unwrap_err();
        assert!(matches!(e, LoadError::Verify { .. }), "{mode:?}: {e}");
        let rt = runtime(mode);
        rt.load_parsed(pull_object(&fresh, "xdp.frags", ProgType::Xdp))
            .and_then(|o| o.program("p"))
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    }
}

/// Linux registers `bpf_xdp_pull_data` for XDP programs only and refuses a
/// tc program calling it at load; so does Cordon's verifier. Unverified
/// (checked) programs get the call refused when it runs (the context is not
/// an XDP one), on both engines, and nothing is touched.
#[test]
fn xdp_pull_data_refused_outside_xdp() {
    let asm = pull_prog(100);
    let pkt = vec![0u8; 64];
    for mode in MODES {
        let rt = runtime(mode);
        let loaded = rt
            .load_parsed(pull_object(&asm, "tc", ProgType::SchedCls))
            .and_then(|o| o.program("p"));
        let verified = mode.1;
        if verified {
            let msg = loaded.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                msg.contains("calling kernel function bpf_xdp_pull_data is not allowed"),
                "{mode:?}: {msg}"
            );
        } else {
            let p = loaded.unwrap();
            let e = p.run_skb(&pkt).unwrap_err().to_string();
            assert!(e.contains("not the XDP context"), "{mode:?}: {e}");
        }
    }
}
