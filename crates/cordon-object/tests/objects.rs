//! Load every committed object of tests/bpf and check concrete facts.

mod common;

use common::{all_objects, read_obj};
use cordon_isa::opcode::{CALL_KFUNC, CALL_LOCAL, OP_CALL, OP_LDDW};
use cordon_isa::{AluOp, EndianOp, Kind};
use cordon_object::{
    BtfType, CoreReloKind, FuncLinkage, MapOrigin, Object, ProgType, ProgramSpec, RelocKind,
    SlotInit,
};

fn load(name: &str) -> Object {
    Object::parse(&read_obj(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every relocation record agrees with the instruction it describes.
fn check_relocations(obj: &Object, p: &ProgramSpec) {
    for r in &p.relocations {
        let i = p.insns[r.insn];
        match &r.kind {
            RelocKind::Map { map } => {
                assert_eq!((i.code, i.src, i.imm), (OP_LDDW, 5, *map as i32), "{r:?}");
                assert_eq!(p.insns[r.insn + 1].imm, 0);
                assert!(*map < obj.maps.len());
            }
            RelocKind::MapValue { map, offset } => {
                assert_eq!((i.code, i.src, i.imm), (OP_LDDW, 6, *map as i32), "{r:?}");
                assert_eq!(p.insns[r.insn + 1].imm as u32, *offset);
                assert_eq!(obj.maps[*map].origin, MapOrigin::GlobalData);
                assert!(*offset < obj.maps[*map].value_size);
            }
            RelocKind::Kfunc { kfunc } => {
                assert_eq!((i.code, i.src, i.imm), (OP_CALL, CALL_KFUNC, *kfunc as i32));
                assert!(p.kfuncs.contains(&obj.kfuncs[*kfunc]));
            }
            RelocKind::Call { target, function } => {
                assert_eq!((i.code, i.src), (OP_CALL, CALL_LOCAL));
                assert_eq!((r.insn as i64 + 1 + i.imm as i64) as usize, *target);
                let f = p.function_at(*target).unwrap();
                assert_eq!((&f.name, f.start), (function, *target));
            }
            RelocKind::FuncAddr { target, function } => {
                assert_eq!((i.code, i.src), (OP_LDDW, 4));
                assert_eq!((r.insn as i64 + 1 + i.imm as i64) as usize, *target);
                assert_eq!(&p.function_at(*target).unwrap().name, function);
            }
        }
    }
}

#[test]
fn every_committed_object_loads_and_validates() {
    let names = all_objects();
    assert!(
        names.len() >= 28,
        "expected the committed objects, found {names:?}"
    );
    for name in names {
        let obj = load(&name);
        assert!(!obj.programs.is_empty(), "{name}: no programs");
        assert_eq!(obj.license.as_deref(), Some("GPL"), "{name}");
        for p in &obj.programs {
            let prog = p
                .program()
                .unwrap_or_else(|e| panic!("{name}/{}: {e}", p.name));
            assert_eq!(prog.len(), p.insns.len());
            assert_eq!(p.functions[0].name, p.name);
            assert_eq!(p.functions[0].start, 0);
            let covered: usize = p.functions.iter().map(|f| f.len).sum();
            assert_eq!(
                covered,
                p.insns.len(),
                "{name}/{}: functions cover the code",
                p.name
            );
            check_relocations(&obj, p);
            // No raw ELF-style references may survive: every map/call pseudo is an index form.
            for (pc, k) in prog.kinds().iter().enumerate() {
                match k {
                    Some(Kind::Lddw { pseudo, .. }) => {
                        assert!(
                            matches!(pseudo, 0 | 4 | 5 | 6),
                            "{name}/{} insn {pc}",
                            p.name
                        )
                    }
                    Some(Kind::CallKfunc { btf_id, off }) => {
                        assert!(*btf_id >= 0 && (*btf_id as usize) < obj.kfuncs.len());
                        assert_eq!(*off, 0);
                    }
                    _ => {}
                }
            }
            if let Some(btf) = &obj.btf {
                assert_eq!(p.func_info.len(), p.functions.len(), "{name}/{}", p.name);
                for (fi, f) in p.func_info.iter().zip(&p.functions) {
                    assert_eq!(fi.insn, f.start);
                    assert_eq!(Some(fi.type_id), f.btf_id);
                    assert_eq!(btf.type_by_id(fi.type_id).unwrap().name(), Some(&*f.name));
                }
                assert!(!p.line_info.is_empty());
                assert!(p.line_info.windows(2).all(|w| w[0].insn <= w[1].insn));
            } else {
                assert!(p.func_info.is_empty() && p.line_info.is_empty());
            }
        }
        let report = obj.report();
        for p in &obj.programs {
            assert!(report.contains(&p.name), "{name}: report names {}", p.name);
        }
    }
}

#[test]
fn xdp_firewall() {
    for name in ["xdp_firewall.o", "xdp_firewall_v1.o"] {
        let obj = load(name);
        assert_eq!(obj.programs.len(), 1);
        let p = obj.program("xdp_firewall").unwrap();
        assert_eq!(p.section, "xdp");
        assert_eq!(p.prog_type, ProgType::Xdp);
        assert_eq!(p.prog_type.kernel_id(), 6);
        let btf = obj.btf.as_ref().unwrap();

        let (ri, rules) = obj.map("fw_rules").unwrap();
        assert_eq!(
            (
                rules.map_type,
                rules.key_size,
                rules.value_size,
                rules.max_entries,
                rules.flags
            ),
            (1, 20, 16, 1024, 0)
        );
        assert_eq!(rules.type_name(), "hash");
        assert_eq!(rules.origin, MapOrigin::Btf);
        assert_eq!(
            btf.type_name(rules.btf_key_type_id.unwrap()),
            "struct fw_key"
        );
        assert_eq!(
            btf.type_name(rules.btf_value_type_id.unwrap()),
            "struct fw_rule"
        );
        let key = rules.btf_key_type_id.unwrap();
        assert_eq!(btf.member(key, "port").unwrap().bit_offset, 128);
        assert_eq!(btf.member(key, "family").unwrap().bit_offset, 152);

        let (si, stats) = obj.map("fw_stats").unwrap();
        assert_eq!(
            (
                stats.map_type,
                stats.key_size,
                stats.value_size,
                stats.max_entries
            ),
            (6, 4, 16, 4)
        );
        assert_eq!(stats.type_name(), "percpu_array");

        let rule_refs: Vec<_> = p
            .relocations
            .iter()
            .filter(|r| r.kind == RelocKind::Map { map: ri })
            .collect();
        assert_eq!(rule_refs.len(), 3, "three lookups in fw_rules");
        let stat_refs = p
            .relocations
            .iter()
            .filter(|r| r.kind == RelocKind::Map { map: si })
            .count();
        assert!(stat_refs >= 5);
        // Line info names the source of the first fw_rules lookup.
        let l = p.line_at(rule_refs[0].insn).unwrap();
        assert_eq!(l.file, "./xdp_firewall.c");
        assert_eq!(l.line, 69);
        assert!(
            l.text.contains("bpf_map_lookup_elem(&fw_rules, key)"),
            "{}",
            l.text
        );
        assert!(
            p.describe_insn(rule_refs[0].insn)
                .unwrap()
                .contains("xdp_firewall.c:69:")
        );
        assert!(l.column > 0, "{l:?}");
    }
}

#[test]
fn subprograms_static_and_global() {
    for name in ["subprogs.o", "subprogs_v1.o", "subprogs_nobtf.o"] {
        let obj = load(name);
        let names: Vec<_> = obj.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["prog_a", "prog_b"], "{name}");
        let a = obj.program("prog_a").unwrap();
        let fa: Vec<_> = a
            .functions
            .iter()
            .map(|f| (f.name.as_str(), f.linkage))
            .collect();
        assert_eq!(
            fa,
            [
                ("prog_a", FuncLinkage::Global),
                ("triple", FuncLinkage::Static),
                ("square_plus", FuncLinkage::Static)
            ]
        );
        assert_eq!(a.functions[1].section, ".text");
        // square_plus calls triple: a relocation-less call inside .text, relinked.
        let sp = &a.functions[2];
        let inner = a
            .relocations
            .iter()
            .find(|r| r.insn >= sp.start && r.insn < sp.start + sp.len)
            .unwrap();
        assert_eq!(
            inner.kind,
            RelocKind::Call {
                target: a.functions[1].start,
                function: "triple".into()
            }
        );
        let b = obj.program("prog_b").unwrap();
        let fb: Vec<_> = b.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(fb, ["prog_b", "global_clamp", "triple"]);
        assert_eq!(b.functions[1].linkage, FuncLinkage::Global);
        // Each program gets its own copy of `triple`, only what it reaches.
        assert!(!fb.contains(&"square_plus"));
        if let Some(btf) = &obj.btf {
            let id = b.functions[1].btf_id.unwrap();
            let (ret, params) = btf.func_proto(id).unwrap();
            assert_eq!(btf.type_name(ret), "int");
            let pn: Vec<_> = params.iter().map(|p| p.name.as_deref().unwrap()).collect();
            assert_eq!(pn, ["x", "max"]);
            assert!(matches!(
                btf.type_by_id(id),
                Some(BtfType::Func {
                    linkage: cordon_object::btf::Linkage::Global,
                    ..
                })
            ));
        } else {
            assert_eq!(b.functions[1].btf_id, None);
        }
    }
}

#[test]
fn bpf_loop_callback_address() {
    let obj = load("loop_callback.o");
    let p = obj.program("loop_sum").unwrap();
    let cb = p
        .functions
        .iter()
        .find(|f| f.name == "square_step")
        .unwrap();
    assert_eq!(cb.linkage, FuncLinkage::Static);
    let r = p
        .relocations
        .iter()
        .find(|r| matches!(r.kind, RelocKind::FuncAddr { .. }))
        .unwrap();
    assert_eq!(
        r.kind,
        RelocKind::FuncAddr {
            target: cb.start,
            function: "square_step".into()
        }
    );
    let i = p.insns[r.insn];
    assert_eq!(i.src, 4);
    assert_eq!(r.insn as i64 + 1 + i.imm as i64, cb.start as i64);
    // the helper call right after is bpf_loop (181)
    let prog = p.program().unwrap();
    assert!(prog.kinds().contains(&Some(Kind::CallHelper { id: 181 })));
}

#[test]
fn global_data_sections() {
    let obj = load("global_data.o");
    let names: Vec<_> = obj.maps.iter().map(|m| m.name.as_str()).collect();
    for n in [
        ".rodata",
        ".data",
        ".data.custom",
        ".rodata.cfg",
        ".bss",
        ".rodata.str1.1",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let btf = obj.btf.as_ref().unwrap();
    let var_off = |sec: &str, var: &str| -> u32 {
        let id = btf.find_by_name(sec, "datasec").unwrap();
        let Some(BtfType::DataSec { vars, size, .. }) = btf.type_by_id(id) else {
            panic!()
        };
        assert_eq!(
            *size,
            obj.map(sec).unwrap().1.value_size,
            "datasec size fixed up"
        );
        vars.iter()
            .find(|v| btf.type_by_id(v.type_id).unwrap().name() == Some(var))
            .unwrap()
            .offset
    };
    let u32_in = |sec: &str, off: u32| {
        let d = obj.map(sec).unwrap().1.initial_data.as_ref().unwrap();
        u32::from_le_bytes(d[off as usize..off as usize + 4].try_into().unwrap())
    };
    assert_eq!(u32_in(".rodata", var_off(".rodata", "multiplier")), 3);
    let t = var_off(".rodata", "table");
    assert_eq!(
        (0..4)
            .map(|i| u32_in(".rodata", t + 4 * i))
            .collect::<Vec<_>>(),
        [10, 20, 30, 40]
    );
    assert_eq!(u32_in(".data", var_off(".data", "counter")), 5);
    let g = var_off(".data", "greeting") as usize;
    assert_eq!(
        &obj.map(".data").unwrap().1.initial_data.as_ref().unwrap()[g..g + 6],
        b"hello\0"
    );
    assert_eq!(u32_in(".data.custom", 0), 7);
    assert_eq!(u32_in(".rodata.cfg", 0), 1500);
    let (_, bss) = obj.map(".bss").unwrap();
    assert_eq!(bss.initial_data.as_deref(), Some(&[0u8; 8][..]));
    let (_, s) = obj.map(".rodata.str1.1").unwrap();
    assert_eq!(s.initial_data.as_deref(), Some(&b"call\n\0"[..]));
    for m in &obj.maps {
        assert_eq!((m.map_type, m.key_size, m.max_entries), (2, 4, 1));
        let ro = m.name.starts_with(".rodata");
        assert_eq!(
            m.flags & cordon_object::BPF_F_RDONLY_PROG != 0,
            ro,
            "{}",
            m.name
        );
        assert_eq!(m.btf_value_type_id, btf.find_by_name(&m.name, "datasec"));
    }
    // `counter` is read and written through .data + its offset.
    let p = obj.program("global_data").unwrap();
    let (di, _) = obj.map(".data").unwrap();
    let counter = var_off(".data", "counter");
    assert!(p.relocations.iter().any(|r| r.kind
        == RelocKind::MapValue {
            map: di,
            offset: counter
        }));
    let (ti, _) = obj.map(".rodata").unwrap();
    assert!(
        p.relocations
            .iter()
            .any(|r| r.kind == RelocKind::MapValue { map: ti, offset: t })
    );
}

#[test]
fn kfuncs_by_name() {
    let obj = load("kfunc_obj.o");
    assert_eq!(obj.kfuncs, ["cordon_test_acquire", "cordon_test_release"]);
    let p = obj.program("kfunc_acquire_release").unwrap();
    assert_eq!(p.kfuncs, obj.kfuncs);
    let calls: Vec<_> = p
        .relocations
        .iter()
        .filter_map(|r| match r.kind {
            RelocKind::Kfunc { kfunc } => Some((kfunc, r.symbol.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        calls,
        [(0, "cordon_test_acquire"), (1, "cordon_test_release")]
    );
    let btf = obj.btf.as_ref().unwrap();
    let acq = btf.find_func("cordon_test_acquire").unwrap();
    let (ret, params) = btf.func_proto(acq).unwrap();
    assert_eq!(btf.type_name(ret), "struct cordon_test_obj *");
    assert_eq!(params.len(), 1);

    let obj = load("iter_for.o");
    assert_eq!(
        obj.kfuncs,
        [
            "bpf_iter_num_new",
            "bpf_iter_num_next",
            "bpf_iter_num_destroy"
        ]
    );
}

#[test]
fn exceptions_and_callback() {
    let obj = load("exceptions.o");
    assert_eq!(obj.kfuncs, ["bpf_throw"]);
    let p = obj.program("throw_big").unwrap();
    assert_eq!(p.exception_callback, None);
    assert_eq!(p.functions[1].name, "check_len");

    let obj = load("exception_cb.o");
    let p = obj.program("throw_with_cb").unwrap();
    assert_eq!(p.exception_callback, Some(1));
    assert_eq!(p.functions[1].name, "on_exception");
    assert_eq!(p.functions[1].linkage, FuncLinkage::Global);
    let btf = obj.btf.as_ref().unwrap();
    let tags = btf.decl_tags(btf.find_func("throw_with_cb").unwrap());
    assert_eq!(tags, [(-1, "exception_callback:on_exception")]);
    assert!(obj.report().contains("exception callback"));
}

#[test]
fn legacy_maps_with_and_without_btf() {
    for name in ["legacy_maps.o", "legacy_maps_nobtf.o"] {
        let obj = load(name);
        let (pi, pc) = obj.map("proto_count").unwrap();
        assert_eq!(
            (
                pc.origin,
                pc.section.as_str(),
                pc.map_type,
                pc.key_size,
                pc.value_size,
                pc.max_entries
            ),
            (MapOrigin::Legacy, "maps", 2, 4, 8, 256)
        );
        let (si, seen) = obj.map("seen").unwrap();
        assert_eq!((seen.map_type, seen.max_entries, seen.flags), (1, 64, 1));
        let p = obj.program("legacy_count").unwrap();
        assert_eq!(p.prog_type, ProgType::SocketFilter);
        let maps: Vec<_> = p.relocations.iter().map(|r| r.kind.clone()).collect();
        assert_eq!(
            maps,
            [RelocKind::Map { map: si }, RelocKind::Map { map: pi }]
        );
    }
    assert!(load("legacy_maps_nobtf.o").btf.is_none());
}

#[test]
fn tail_calls_and_map_in_map() {
    let obj = load("tail_call.o");
    let names: Vec<_> = obj.programs.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["tail_one", "tail_double", "tail_entry"]);
    let (_, jt) = obj.map("jump_table").unwrap();
    assert_eq!(
        (jt.map_type, jt.key_size, jt.value_size, jt.max_entries),
        (3, 4, 4, 4)
    );
    assert_eq!(
        jt.initial_slots,
        [
            (0, SlotInit::Program("tail_one".into())),
            (1, SlotInit::Program("tail_double".into()))
        ]
    );
    let prog = obj.program("tail_entry").unwrap().program().unwrap();
    assert!(prog.kinds().contains(&Some(Kind::CallHelper { id: 12 })));

    let obj = load("map_in_map.o");
    let (_, outer) = obj.map("outer_arr").unwrap();
    assert_eq!(
        (outer.map_type, outer.key_size, outer.value_size),
        (12, 4, 4)
    );
    let inner = outer.inner.as_ref().unwrap();
    assert_eq!(
        (
            inner.map_type,
            inner.key_size,
            inner.value_size,
            inner.max_entries
        ),
        (2, 4, 8, 4)
    );
    assert_eq!(outer.initial_slots, [(0, SlotInit::Map("inner_a".into()))]);
    let (_, oh) = obj.map("outer_hash").unwrap();
    assert_eq!(oh.map_type, 13);
    assert_eq!(oh.inner.as_ref().unwrap().max_entries, 4);
    assert_eq!(oh.initial_slots, [(7, SlotInit::Map("inner_b".into()))]);
}

#[test]
fn other_map_types() {
    let obj = load("maps_basic.o");
    let got: Vec<_> = obj
        .maps
        .iter()
        .map(|m| {
            (
                m.name.as_str(),
                m.type_name(),
                m.key_size,
                m.value_size,
                m.max_entries,
                m.flags,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("arr", "array", 4, 8, 8, 0),
            ("pcpu_arr", "percpu_array", 4, 8, 8, 0),
            ("hash", "hash", 4, 8, 128, 1),
            ("pcpu_hash", "percpu_hash", 4, 8, 128, 0),
            ("lru", "lru_hash", 4, 8, 16, 0),
            ("lru_pcpu", "lru_percpu_hash", 4, 8, 16, 0),
        ]
    );
    // __uint(key_size/value_size) without BTF types
    let (_, pa) = obj.map("pcpu_arr").unwrap();
    assert_eq!((pa.btf_key_type_id, pa.btf_value_type_id), (None, None));

    let obj = load("queue_stack.o");
    let (_, q) = obj.map("fifo").unwrap();
    let (_, s) = obj.map("lifo").unwrap();
    assert_eq!(
        (q.type_name(), q.key_size, q.value_size, q.max_entries),
        ("queue", 0, 4, 16)
    );
    assert_eq!((s.type_name(), s.key_size, s.value_size), ("stack", 0, 4));

    let obj = load("ringbuf.o");
    let (_, rb) = obj.map("events").unwrap();
    assert_eq!(
        (rb.type_name(), rb.key_size, rb.value_size, rb.max_entries),
        ("ringbuf", 0, 0, 4096)
    );
    assert!(obj.map(".bss").is_some());

    let obj = load("spin_lock.o");
    let (_, m) = obj.map("shared").unwrap();
    let btf = obj.btf.as_ref().unwrap();
    let v = m.btf_value_type_id.unwrap();
    assert_eq!(btf.type_name(v), "struct locked");
    let lock = btf.member(v, "lock").unwrap();
    assert_eq!(btf.type_name(lock.type_id), "struct bpf_spin_lock");
    assert_eq!(btf.size_of(v).unwrap(), 16);
}

#[test]
fn program_types_and_sections() {
    let obj = load("tc_mark.o");
    let got: Vec<_> = obj
        .programs
        .iter()
        .map(|p| (p.name.as_str(), p.section.as_str(), p.prog_type))
        .collect();
    assert_eq!(
        got,
        [
            ("tc_mark", "tc", ProgType::SchedCls),
            ("cls_len", "classifier", ProgType::SchedCls)
        ]
    );
    let obj = load("socket_filter.o");
    let p = obj.program("socket_filter").unwrap();
    assert_eq!(p.prog_type, ProgType::SocketFilter);
    let prog = p.program().unwrap();
    assert!(
        prog.kinds()
            .iter()
            .any(|k| matches!(k, Some(Kind::LdAbs { imm: 9, .. })))
    );
}

#[test]
fn cpu_v4_instructions() {
    let obj = load("cpuv4.o");
    let p = obj.program("cpuv4_ops").unwrap();
    let prog = p.program().unwrap();
    let kinds: Vec<Kind> = prog.kinds().iter().flatten().copied().collect();
    let has = |f: &dyn Fn(&Kind) -> bool| kinds.iter().any(f);
    assert!(has(&|k| matches!(
        k,
        Kind::Alu {
            op: AluOp::SDiv,
            ..
        }
    )));
    assert!(has(&|k| matches!(
        k,
        Kind::Alu {
            op: AluOp::SMod,
            ..
        }
    )));
    assert!(has(&|k| matches!(
        k,
        Kind::Alu {
            op: AluOp::MovSx(_),
            ..
        }
    )));
    assert!(has(&|k| matches!(
        k,
        Kind::Endian {
            op: EndianOp::Swap,
            bits: 64,
            ..
        }
    )));
    assert!(has(&|k| matches!(
        k,
        Kind::Endian {
            op: EndianOp::Swap,
            bits: 16,
            ..
        }
    )));
    assert!(has(&|k| matches!(
        k,
        Kind::Ldx {
            sign_extend: true,
            ..
        }
    )));
    assert_eq!(p.functions[1].name, "signed_ops");
}

#[test]
fn core_relocations_against_local_types() {
    let obj = load("core_local.o");
    let p = obj.program("core_read").unwrap();
    let got: Vec<_> = p
        .core_relocations
        .iter()
        .map(|c| (c.kind, c.type_name.as_str(), c.access.as_str(), c.value))
        .collect();
    for want in [
        (CoreReloKind::FieldByteOffset, "struct cfg", "0:1", 8),
        (CoreReloKind::FieldByteOffset, "struct cfg", "0:2:1", 18),
        (CoreReloKind::FieldExists, "struct cfg", "0:0", 1),
        (CoreReloKind::FieldByteSize, "struct cfg", "0:2", 8),
        (CoreReloKind::TypeSize, "struct cfg", "0", 32),
        (CoreReloKind::EnumvalExists, "enum cfg_mode", "1", 1),
        (CoreReloKind::EnumvalValue, "enum cfg_mode", "1", 5),
        // bitfield `mode:5` at bit 195: one byte at offset 24
        (CoreReloKind::FieldByteOffset, "struct cfg", "0:4", 24),
        (CoreReloKind::FieldByteSize, "struct cfg", "0:4", 1),
        (CoreReloKind::FieldLShiftU64, "struct cfg", "0:4", 56),
        (CoreReloKind::FieldRShiftU64, "struct cfg", "0:4", 59),
        (CoreReloKind::FieldSigned, "struct cfg", "0:4", 0),
    ] {
        assert!(got.contains(&want), "{want:?} in {got:?}");
    }
    // The bitfield size relocation was patched to libbpf's value (clang encoded 8).
    let bs = p
        .core_relocations
        .iter()
        .find(|c| c.kind == CoreReloKind::FieldByteSize && c.access == "0:4")
        .unwrap();
    assert_eq!(p.insns[bs.insn].imm, 1);
    assert!(obj.report().contains("co-re"));
}

#[test]
fn lpm_bloom_perf_maps() {
    let obj = load("lpm_bloom.o");
    let (_, lpm) = obj.map("routes").unwrap();
    assert_eq!(
        (
            lpm.type_name(),
            lpm.key_size,
            lpm.value_size,
            lpm.max_entries,
            lpm.flags
        ),
        ("lpm_trie", 8, 4, 256, 1)
    );
    let (_, bloom) = obj.map("seen_src").unwrap();
    assert_eq!(
        (
            bloom.type_name(),
            bloom.key_size,
            bloom.value_size,
            bloom.max_entries,
            bloom.map_extra
        ),
        ("bloom_filter", 0, 4, 1024, 3)
    );
    let obj = load("perf_output.o");
    let (_, pe) = obj.map("samples").unwrap();
    assert_eq!(
        (pe.type_name(), pe.key_size, pe.value_size, pe.max_entries),
        ("perf_event_array", 4, 4, 0)
    );
}

#[test]
fn deep_call_chain() {
    let obj = load("deep_calls.o");
    let p = obj.program("deep_entry").unwrap();
    let names: Vec<_> = p.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "deep_entry",
            "try_tail",
            "level1",
            "level2",
            "level3",
            "level4",
            "level5",
            "level6",
            "level7"
        ]
    );
    let global: Vec<_> = p
        .functions
        .iter()
        .filter(|f| f.linkage == FuncLinkage::Global)
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(global, ["deep_entry", "try_tail", "level1"]);
    // The tail call is made from try_tail, with the prog_array relocated there.
    let tt = &p.functions[1];
    let (ci, _) = obj.map("chain").unwrap();
    let r = p
        .relocations
        .iter()
        .find(|r| r.kind == RelocKind::Map { map: ci })
        .unwrap();
    assert!(r.insn >= tt.start && r.insn < tt.start + tt.len);
    // Every call lands on a function start, each function is called exactly once.
    let calls: Vec<_> = p
        .relocations
        .iter()
        .filter_map(|r| match &r.kind {
            RelocKind::Call { function, .. } => Some(function.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 8);
    for n in &names[1..] {
        assert_eq!(calls.iter().filter(|c| *c == n).count(), 1, "{n}");
    }
}

#[test]
fn xdp_packet_rewrite() {
    let obj = load("xdp_swap.o");
    let p = obj.program("xdp_echo").unwrap();
    assert_eq!(p.prog_type, ProgType::Xdp);
    let prog = p.program().unwrap();
    // bpf_xdp_adjust_head is helper 44
    assert!(prog.kinds().contains(&Some(Kind::CallHelper { id: 44 })));
    assert!(obj.maps.is_empty() && obj.kfuncs.is_empty());
}

#[test]
fn btf_round_trips_and_sanitizes() {
    for name in all_objects() {
        let obj = load(&name);
        let Some(btf) = &obj.btf else { continue };
        let bytes = btf.to_bytes();
        let again = cordon_object::Btf::parse(&bytes).unwrap();
        assert_eq!(&again, btf, "{name}: encode/parse round trip");
        let k = btf.for_kernel();
        let kb = cordon_object::Btf::parse(&k.to_bytes()).unwrap();
        for (id, t) in kb.types() {
            match t {
                BtfType::Func { linkage, proto, .. } => {
                    assert_ne!(
                        *linkage,
                        cordon_object::btf::Linkage::Extern,
                        "{name} [{id}]"
                    );
                    if *linkage == cordon_object::btf::Linkage::Global {
                        let (_, params) = kb.func_proto(*proto).unwrap();
                        assert!(params.iter().all(|p| p.name.is_some() || p.type_id == 0));
                    }
                }
                BtfType::DataSec {
                    name: n,
                    vars,
                    size,
                } if n == ".ksyms" => {
                    assert_eq!(*size as usize, vars.len() * 4);
                    for v in vars {
                        assert!(matches!(
                            kb.type_by_id(v.type_id),
                            Some(BtfType::Var { .. })
                        ));
                    }
                }
                _ => {}
            }
        }
        // Every line-info string keeps its offset.
        for p in &obj.programs {
            for l in &p.line_info {
                let off = btf.string_offset(&l.file).unwrap();
                assert_eq!(kb.string_at(off), Some(l.file.as_str()));
                assert_eq!(kb.string_at(l.file_name_off), Some(l.file.as_str()));
                assert_eq!(
                    kb.string_at(l.line_off).map(str::trim),
                    Some(l.text.as_str())
                );
            }
        }
    }
}

#[test]
fn kernel_btf_ids_follow_linux_rules() {
    let obj = load("queue_stack.o");
    assert!(obj.map("fifo").unwrap().1.btf_value_type_id.is_some());
    assert_eq!(obj.map("fifo").unwrap().1.kernel_btf_ids(), None);
    let obj = load("tail_call.o");
    assert_eq!(obj.map("jump_table").unwrap().1.kernel_btf_ids(), None);
    let obj = load("maps_basic.o");
    let (_, arr) = obj.map("arr").unwrap();
    assert_eq!(
        arr.kernel_btf_ids(),
        Some((arr.btf_key_type_id.unwrap(), arr.btf_value_type_id.unwrap()))
    );
    assert_eq!(obj.map("pcpu_arr").unwrap().1.kernel_btf_ids(), None);
    let obj = load("global_data.o");
    let (_, data) = obj.map(".data").unwrap();
    assert_eq!(
        data.kernel_btf_ids(),
        Some((0, data.btf_value_type_id.unwrap()))
    );
}

#[test]
fn ulong_map_extra() {
    let obj = load("bloom_ulong.o");
    let (_, m) = obj.map("lengths").unwrap();
    assert_eq!(
        (
            m.type_name(),
            m.key_size,
            m.value_size,
            m.max_entries,
            m.map_extra
        ),
        ("bloom_filter", 0, 4, 64, 5)
    );
}

/// The running kernel's BTF (every kind, ~100k types) parses, resolves and
/// round-trips. Skipped where /sys/kernel/btf/vmlinux is not readable.
#[test]
fn vmlinux_btf() {
    let Ok(raw) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        eprintln!("skipped: no /sys/kernel/btf/vmlinux");
        return;
    };
    let btf = cordon_object::Btf::parse(&raw).unwrap();
    assert!(btf.len() > 10_000);
    let it = btf.find_by_name("bpf_iter_num", "struct").unwrap();
    assert_eq!(btf.size_of(it).unwrap(), 8);
    let throw = btf.find_func("bpf_throw").unwrap();
    let (ret, params) = btf.func_proto(throw).unwrap();
    assert_eq!((btf.type_name(ret).as_str(), params.len()), ("void", 1));
    let skb = btf.find_by_name("__sk_buff", "struct").unwrap();
    assert_eq!(btf.size_of(skb).unwrap(), 192);
    assert_eq!(btf.member(skb, "mark").unwrap().bit_offset, 8 * 8);
    let again = cordon_object::Btf::parse(&btf.to_bytes()).unwrap();
    assert_eq!(again, btf);
}
