//! Runtime semantics on hand-built objects: load errors, tail-call limit,
//! reference leaks, packet helpers, checksums.

use cordon_isa::Insn;
use cordon_object::{FuncLinkage, FunctionSpan, MapSpec, Object, ProgType};
use cordon_runtime::helpers::{csum_diff, csum_fold, csum_replace};
use cordon_runtime::{Backend, Config, LoadError, Runtime};

const MODES: [(Backend, bool); 4] = [
    (Backend::Interpreter, true),
    (Backend::Jit, true),
    (Backend::Interpreter, false),
    (Backend::Jit, false),
];

fn runtime((backend, verify): (Backend, bool)) -> Runtime {
    Runtime::new(Config {
        backend,
        verify,
        cpus: 2,
        ..Config::default()
    })
}

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}

fn lddw_map(dst: u8, map: i32) -> [Insn; 2] {
    [i(0x18, dst, 5, 0, map), i(0, 0, 0, 0, 0)]
}

const EXIT: Insn = Insn::new(0x95, 0, 0, 0, 0);

fn map(name: &str, map_type: u32, key: u32, value: u32, max: u32) -> MapSpec {
    MapSpec::btf_defined(name, map_type, key, value, max)
}

fn object(prog_type: ProgType, insns: Vec<Insn>, maps: Vec<MapSpec>, kfuncs: &[&str]) -> Object {
    Object::single_program("p", "test", prog_type, insns)
        .with_maps(maps)
        .with_kfuncs(kfuncs)
}

#[test]
fn unknown_helper_is_a_load_error() {
    for mode in MODES {
        let rt = runtime(mode);
        for (id, name) in [(70, true), (99_999, false)] {
            let o = rt
                .load_parsed(object(
                    ProgType::SchedCls,
                    vec![i(0x85, 0, 0, 0, id), EXIT],
                    vec![],
                    &[],
                ))
                .unwrap();
            let e = o.program("p").unwrap_err();
            match &e {
                LoadError::UnknownHelper {
                    index: 0,
                    id: got,
                    name: n,
                    ..
                } => {
                    assert_eq!(*got, id);
                    assert_eq!(n.is_some(), name, "{e}");
                }
                other => panic!("{other}"),
            }
            assert!(
                e.to_string().contains(&format!("unknown helper {id}")),
                "{e}"
            );
        }
    }
}

#[test]
fn unresolved_kfunc_is_a_load_error() {
    let rt = runtime(MODES[0]);
    let o = rt
        .load_parsed(object(
            ProgType::SchedCls,
            vec![i(0x85, 0, 2, 0, 0), EXIT],
            vec![],
            &["no_such_kfunc"],
        ))
        .unwrap();
    let e = o.program("p").unwrap_err();
    assert!(
        matches!(e, LoadError::UnresolvedKfunc { ref name, index: 0, .. } if name == "no_such_kfunc"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("register it with Engine::register_kfunc")
    );
}

#[test]
fn unsupported_map_type_is_a_load_error() {
    let rt = runtime(MODES[0]);
    let e = rt
        .load_parsed(object(
            ProgType::SchedCls,
            vec![i(0xb7, 0, 0, 0, 0), EXIT],
            vec![map("m", 7, 4, 8, 4)],
            &[],
        ))
        .err()
        .unwrap();
    assert!(
        matches!(e, LoadError::UnsupportedMapType { type_id: 7, ref type_name, .. } if type_name == "stack_trace"),
        "{e}"
    );
}

#[test]
fn verifier_rejection_carries_the_log() {
    let rt = runtime(MODES[0]);
    // r0 is never written.
    let o = rt
        .load_parsed(object(ProgType::SchedCls, vec![EXIT], vec![], &[]))
        .unwrap();
    match o.program("p").unwrap_err() {
        LoadError::Verify { log, message, .. } => {
            assert!(
                log.contains("R0 !read_ok") || message.contains("R0"),
                "{message}\n{log}"
            );
        }
        other => panic!("{other}"),
    }
    // Unverified mode runs it in checked mode (r0 starts as 0 there).
    let rt = runtime(MODES[2]);
    let o = rt
        .load_parsed(object(ProgType::SchedCls, vec![EXIT], vec![], &[]))
        .unwrap();
    let p = o.program("p").unwrap();
    assert!(!p.is_verified());
    p.run_skb(&[0; 20]).unwrap();
}

/// A program that counts its entries in `counter[0]` and tail-calls slot 0
/// of `progs` (itself): Linux allows 33 tail calls, so it runs 34 times.
fn self_tail_caller() -> Object {
    let mut v = vec![
        i(0xbf, 6, 1, 0, 0),   // r6 = r1
        i(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0
        i(0xbf, 2, 10, 0, 0),  // r2 = r10
        i(0x07, 2, 0, 0, -4),  // r2 += -4
    ];
    v.extend(lddw_map(1, 1)); // r1 = counter
    v.extend([
        i(0x85, 0, 0, 0, 1), // call map_lookup_elem
        i(0x15, 0, 0, 3, 0), // if r0 == 0 goto +3
        i(0x79, 1, 0, 0, 0), // r1 = *(u64 *)(r0 + 0)
        i(0x07, 1, 0, 0, 1), // r1 += 1
        i(0x7b, 0, 1, 0, 0), // *(u64 *)(r0 + 0) = r1
        i(0xbf, 1, 6, 0, 0), // r1 = r6
    ]);
    v.extend(lddw_map(2, 0)); // r2 = progs
    v.extend([
        i(0xb7, 3, 0, 0, 0),  // r3 = 0
        i(0x85, 0, 0, 0, 12), // call tail_call
        i(0xb7, 0, 0, 0, 7),  // r0 = 7
        EXIT,
    ]);
    object(
        ProgType::SchedCls,
        v,
        vec![map("progs", 3, 4, 4, 2), map("counter", 2, 4, 8, 1)],
        &[],
    )
}

#[test]
fn tail_call_limit_is_33() {
    for mode in MODES {
        let rt = runtime(mode);
        let o = rt.load_parsed(self_tail_caller()).unwrap();
        let p = o.program("p").unwrap();
        o.set_tail_call("progs", 0, &p).unwrap();
        let r = p.run_skb(&[0; 20]).unwrap();
        assert_eq!(r.retval, 7, "{mode:?}");
        assert_eq!(r.tail_calls, 33, "{mode:?}");
        let c = o
            .map_handle("counter")
            .unwrap()
            .lookup_value(&0u32.to_ne_bytes())
            .unwrap();
        assert_eq!(u64::from_ne_bytes(c.try_into().unwrap()), 34, "{mode:?}");
        // Out of range index and empty slot fall through without counting.
        let r2 = p.run_skb(&[0; 20]).unwrap();
        assert_eq!(r2.tail_calls, 33);
    }
}

#[test]
fn prog_array_refuses_other_program_types() {
    let rt = runtime(MODES[0]);
    let o = rt.load_parsed(self_tail_caller()).unwrap();
    let p = o.program("p").unwrap();
    o.set_tail_call("progs", 0, &p).unwrap();
    let xdp = rt
        .load_parsed(object(
            ProgType::Xdp,
            vec![i(0xb7, 0, 0, 0, 2), EXIT],
            vec![],
            &[],
        ))
        .unwrap();
    let x = xdp.program("p").unwrap();
    assert!(o.set_tail_call("progs", 1, &x).is_err());
}

#[test]
fn leaked_kfunc_reference_is_rejected_or_reported() {
    let insns = vec![
        i(0xb7, 1, 0, 0, 5), // r1 = 5
        i(0x85, 0, 2, 0, 0), // call cordon_test_acquire
        i(0xb7, 0, 0, 0, 0), // r0 = 0
        EXIT,
    ];
    let make = || {
        object(
            ProgType::SchedCls,
            insns.clone(),
            vec![],
            &["cordon_test_acquire"],
        )
    };
    for mode in MODES {
        let rt = runtime(mode);
        let o = rt.load_parsed(make()).unwrap();
        match o.program("p") {
            Err(LoadError::Verify { log, message, .. }) => {
                assert!(mode.1);
                assert!(
                    log.contains("Unreleased reference")
                        || message.contains("Unreleased reference"),
                    "{message}\n{log}"
                );
            }
            Ok(p) => {
                assert!(!mode.1, "the verifier must reject the leak");
                p.run_skb(&[0; 20]).unwrap();
                assert_eq!(rt.test_objects_live(), 1, "the leak is visible to the host");
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// XDP program: r0 = bpf_xdp_adjust_{head,tail}(ctx, delta).
fn xdp_adjust(helper: i32, delta: i32) -> Object {
    object(
        ProgType::Xdp,
        vec![i(0xb7, 2, 0, 0, delta), i(0x85, 0, 0, 0, helper), EXIT],
        vec![],
        &[],
    )
}

#[test]
fn xdp_adjust_head_and_tail_bounds() {
    const EINVAL: u32 = -22i32 as u32;
    for mode in MODES {
        let rt = runtime(mode);
        let run = |helper: i32, delta: i32, len: usize| {
            let o = rt.load_parsed(xdp_adjust(helper, delta)).unwrap();
            o.program("p").unwrap().run_xdp(&vec![0xab; len]).unwrap()
        };
        // Headroom is 256 bytes minus the 40-byte xdp_frame.
        let r = run(44, -216, 60);
        assert_eq!((r.retval, r.packet.len()), (0, 276), "{mode:?}");
        assert_eq!(&r.packet[..216], &[0u8; 216][..]);
        assert_eq!(run(44, -217, 60).retval, EINVAL, "{mode:?}");
        // At least ETH_HLEN bytes must remain.
        assert_eq!(run(44, 46, 60).packet.len(), 14);
        assert_eq!(run(44, 47, 60).retval, EINVAL);
        // Tail: up to the end of the page minus skb_shared_info.
        let max_grow = 4096 - 320 - 256 - 60;
        let r = run(65, max_grow, 60);
        assert_eq!(
            (r.retval, r.packet.len()),
            (0, 4096 - 320 - 256),
            "{mode:?}"
        );
        assert!(
            r.packet[60..].iter().all(|&b| b == 0),
            "grown bytes are zeroed"
        );
        assert_eq!(run(65, max_grow + 1, 60).retval, EINVAL);
        assert_eq!(run(65, -46, 60).packet.len(), 14);
        assert_eq!(run(65, -47, 60).retval, EINVAL);
    }
}

#[test]
fn xdp_packet_limits_follow_linux() {
    let rt = runtime(MODES[0]);
    let o = rt.load_parsed(xdp_adjust(44, 0)).unwrap();
    let p = o.program("p").unwrap();
    assert!(p.run_xdp(&[0; 3520]).is_ok());
    // Linux's test_run puts what does not fit the linear part into fragments
    // (for every XDP program, frags flag or not), up to 17 pages.
    assert!(p.run_xdp(&[0; 3521]).is_ok());
    assert!(p.run_xdp(&[0; 73152]).is_ok());
    assert!(p.run_xdp(&[0; 73153]).is_err());
    assert!(p.run_xdp(&[0; 13]).is_err());
    assert!(p.run_skb(&[0; 60]).is_err(), "wrong program type");
}

fn ipv4_header() -> [u8; 20] {
    [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ]
}

#[test]
fn checksum_helpers_match_known_values() {
    let h = ipv4_header();
    // The well-known checksum of this header is 0xb861.
    let sum = csum_diff(&[], &h, 0).unwrap();
    assert_eq!(csum_fold(sum), u16::from_ne_bytes([0xb8, 0x61]));
    // Diffing a header against itself changes nothing.
    let d = csum_diff(&h, &h, 0).unwrap();
    assert_eq!(csum_fold(d), 0);
    assert_eq!(
        csum_diff(&h[..3], &[], 0),
        None,
        "sizes must be multiples of 4"
    );
    assert_eq!(
        csum_diff(&[0; 260], &[0; 256], 0),
        None,
        "at most 512 bytes"
    );

    // Incremental updates equal a full recomputation.
    let mut with_sum = h;
    with_sum[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
    let check = u16::from_ne_bytes([with_sum[10], with_sum[11]]);
    let mut changed = with_sum;
    changed[12..16].copy_from_slice(&[10, 1, 2, 3]);
    changed[10..12].copy_from_slice(&[0, 0]);
    let full = csum_fold(csum_diff(&[], &changed, 0).unwrap());
    let from = u32::from_ne_bytes(h[12..16].try_into().unwrap());
    let to = u32::from_ne_bytes([10, 1, 2, 3]);
    assert_eq!(csum_replace(check, from, to, 4), Some(full));
    // 16-bit replacement: TTL/protocol word.
    let mut changed2 = with_sum;
    changed2[8] = 0x3f;
    changed2[10..12].copy_from_slice(&[0, 0]);
    let full2 = csum_fold(csum_diff(&[], &changed2, 0).unwrap());
    let from16 = u16::from_ne_bytes([h[8], h[9]]) as u32;
    let to16 = u16::from_ne_bytes([0x3f, h[9]]) as u32;
    assert_eq!(csum_replace(check, from16, to16, 2), Some(full2));
    // By diff (size 0).
    let diff = csum_diff(&h[12..16], &[10, 1, 2, 3], 0).unwrap();
    assert_eq!(csum_replace(check, 0, diff, 0), Some(full));
    assert_eq!(csum_replace(check, 0, 0, 3), None);
}

/// tc program: l3_csum_replace on the IPv4 checksum of the packet (offset 24),
/// then r0 = the 16-bit checksum from the packet.
#[test]
fn l3_csum_replace_in_a_program() {
    let from = u32::from_ne_bytes([0xc0, 0xa8, 0x00, 0x01]);
    let to = u32::from_ne_bytes([10, 1, 2, 3]);
    let mut v = vec![
        i(0xbf, 6, 1, 0, 0),  // r6 = r1
        i(0xb7, 2, 0, 0, 24), // r2 = 24
    ];
    v.extend([i(0x18, 3, 0, 0, from as i32), i(0, 0, 0, 0, 0)]);
    v.extend([i(0x18, 4, 0, 0, to as i32), i(0, 0, 0, 0, 0)]);
    v.extend([
        i(0xb7, 5, 0, 0, 4),  // r5 = 4 (size)
        i(0x85, 0, 0, 0, 10), // l3_csum_replace
        i(0xbf, 1, 6, 0, 0),
        i(0xb7, 2, 0, 0, 24),
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, -8),
        i(0xb7, 4, 0, 0, 2),
        i(0x85, 0, 0, 0, 26),  // skb_load_bytes(skb, 24, r10 - 8, 2)
        i(0x69, 0, 10, -8, 0), // r0 = *(u16 *)(r10 - 8)
        EXIT,
    ]);
    let mut pkt = vec![0u8; 60];
    pkt[12] = 0x08;
    pkt[14..34].copy_from_slice(&ipv4_header());
    pkt[24..26].copy_from_slice(&0xb861u16.to_be_bytes());
    let mut expect_pkt = pkt.clone();
    expect_pkt[26..30].copy_from_slice(&[10, 1, 2, 3]);
    expect_pkt[24..26].copy_from_slice(&[0, 0]);
    let expect = csum_fold(csum_diff(&[], &expect_pkt[14..34], 0).unwrap());
    for mode in MODES {
        let rt = runtime(mode);
        let o = rt
            .load_parsed(object(ProgType::SchedCls, v.clone(), vec![], &[]))
            .unwrap();
        let r = o.program("p").unwrap().run_skb(&pkt).unwrap();
        assert_eq!(r.retval as u16, expect, "{mode:?}");
    }
}

/// trace_printk with a bad format returns -EINVAL and prints nothing.
#[test]
fn trace_printk_rejects_bad_formats() {
    // "%q\0" on the stack.
    let fmt = u32::from_le_bytes([b'%', b'q', 0, 0]);
    let ok = u32::from_le_bytes([b'h', b'i', b'\n', 0]);
    for (word, ret, lines) in [(fmt, -22i64 as u64, 0usize), (ok, 3, 1)] {
        let v = vec![
            i(0x62, 10, 0, -4, word as i32), // *(u32 *)(r10 - 4) = fmt
            i(0xbf, 1, 10, 0, 0),
            i(0x07, 1, 0, 0, -4),
            i(0xb7, 2, 0, 0, 4),
            i(0x85, 0, 0, 0, 6),
            EXIT,
        ];
        for mode in MODES {
            let rt = runtime(mode);
            let o = rt
                .load_parsed(object(ProgType::SchedCls, v.clone(), vec![], &[]))
                .unwrap();
            let r = o.program("p").unwrap().run_skb(&[0; 20]).unwrap();
            assert_eq!((r.r0, r.trace.len()), (ret, lines), "{mode:?}");
        }
    }
}

/// Checked mode refuses helper arguments outside the program's memory.
#[test]
fn checked_mode_validates_helper_pointers() {
    for backend in [Backend::Interpreter, Backend::Jit] {
        let rt = runtime((backend, false));
        let mut v = lddw_map(1, 0).to_vec();
        v.extend([
            i(0xb7, 2, 0, 0, 0x1000), // r2 = bogus key pointer
            i(0x85, 0, 0, 0, 1),
            EXIT,
        ]);
        let o = rt
            .load_parsed(object(
                ProgType::SchedCls,
                v,
                vec![map("m", 1, 4, 8, 4)],
                &[],
            ))
            .unwrap();
        let e = o.program("p").unwrap().run_skb(&[0; 20]).unwrap_err();
        assert!(
            e.to_string().contains("outside the program's memory"),
            "{e}"
        );
        // A forged map pointer.
        let v = vec![
            i(0xb7, 1, 0, 0, 0x1234),
            i(0xbf, 2, 10, 0, 0),
            i(0x07, 2, 0, 0, -8),
            i(0x85, 0, 0, 0, 1),
            EXIT,
        ];
        let o = rt
            .load_parsed(object(ProgType::SchedCls, v, vec![], &[]))
            .unwrap();
        let e = o.program("p").unwrap().run_skb(&[0; 20]).unwrap_err();
        assert!(e.to_string().contains("not a map pointer"), "{e}");
    }
}

/// Entry: main calls `sub`, which tail-calls slot 0 of `progs`; main adds 1000
/// to what `sub` returns. A target that returns replaces only `sub`'s frame; a
/// target that throws ends the whole invocation.
fn entry_with_tail_call_in_subprogram() -> Object {
    let mut v = vec![
        i(0x85, 0, 1, 0, 2),    // call sub (insn 3)
        i(0x07, 0, 0, 0, 1000), // r0 += 1000
        EXIT,
    ];
    v.extend(lddw_map(2, 0));
    v.extend([
        i(0xb7, 3, 0, 0, 0),
        i(0x85, 0, 0, 0, 12), // tail_call(ctx, progs, 0)
        i(0xb7, 0, 0, 0, 3),
        EXIT,
    ]);
    let mut o = object(ProgType::SchedCls, v, vec![map("progs", 3, 4, 4, 1)], &[]);
    let p = &mut o.programs[0];
    p.functions[0].len = 3;
    p.functions.push(FunctionSpan {
        name: "sub".into(),
        section: "test".into(),
        start: 3,
        len: 6,
        linkage: FuncLinkage::Static,
        btf_id: None,
    });
    o
}

#[test]
fn tail_call_in_subprogram_and_throw_in_target() {
    for mode in MODES {
        let rt = runtime(mode);
        let entry = rt
            .load_parsed(entry_with_tail_call_in_subprogram())
            .unwrap();
        let e = entry.program("p").unwrap();
        assert_eq!(
            e.run_skb(&[0; 20]).unwrap().retval,
            1003,
            "{mode:?} empty slot"
        );
        let ret5 = rt
            .load_parsed(object(
                ProgType::SchedCls,
                vec![i(0xb7, 0, 0, 0, 5), EXIT],
                vec![],
                &[],
            ))
            .unwrap();
        entry
            .set_tail_call("progs", 0, &ret5.program("p").unwrap())
            .unwrap();
        assert_eq!(
            e.run_skb(&[0; 20]).unwrap().retval,
            1005,
            "{mode:?} target replaces sub"
        );
        let thrower = rt
            .load_parsed(object(
                ProgType::SchedCls,
                vec![
                    i(0xb7, 1, 0, 0, 77),
                    i(0x85, 0, 2, 0, 0),
                    i(0xb7, 0, 0, 0, 0),
                    EXIT,
                ],
                vec![],
                &["bpf_throw"],
            ))
            .unwrap();
        entry
            .set_tail_call("progs", 0, &thrower.program("p").unwrap())
            .unwrap();
        assert_eq!(
            e.run_skb(&[0; 20]).unwrap().retval,
            77,
            "{mode:?} throw ends everything"
        );
    }
}

/// Random helper calls with random arguments in checked mode end with a
/// value or an error, never a crash or a hang.
#[test]
fn checked_mode_survives_random_helper_arguments() {
    let ids: Vec<i32> = vec![
        1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 23, 25, 26, 28, 39, 40, 41, 42, 48, 87, 88, 89, 93, 94,
        125, 130, 131, 132, 133, 134, 181, 195,
    ];
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let maps = vec![
        map("h", 1, 4, 8, 8),
        map("q", 22, 0, 4, 4),
        map("rb", 27, 0, 0, 4096),
        map("pa", 3, 4, 4, 2),
    ];
    for (backend, rounds) in [(Backend::Interpreter, 600), (Backend::Jit, 100)] {
        let rt = runtime((backend, false));
        for round in 0..rounds {
            let id = ids[(rnd() % ids.len() as u64) as usize];
            let mut v = vec![
                i(0xbf, 6, 1, 0, 0),
                i(0x7a, 10, 0, -8, 1),
                i(0x7a, 10, 0, -16, 0),
            ];
            for reg in 1..=5u8 {
                match rnd() % 6 {
                    0 => v.extend(lddw_map(reg, (rnd() % maps.len() as u64) as i32)),
                    1 => {
                        v.push(i(0xbf, reg, 10, 0, 0));
                        v.push(i(0x07, reg, 0, 0, -((rnd() % 24) as i32)));
                    }
                    2 => v.push(i(0xbf, reg, 6, 0, 0)),
                    3 => v.push(i(0xb7, reg, 0, 0, (rnd() % 64) as i32)),
                    4 => v.extend([
                        i(0x18, reg, 0, 0, rnd() as i32),
                        i(0, 0, 0, 0, rnd() as i32),
                    ]),
                    _ => v.push(i(0xb7, reg, 0, 0, -((rnd() % 8) as i32))),
                }
            }
            v.push(i(0x85, 0, 0, 0, id));
            v.push(EXIT);
            let kind = if round % 3 == 0 {
                ProgType::Xdp
            } else {
                ProgType::SchedCls
            };
            let o = rt.load_parsed(object(kind, v, maps.clone(), &[])).unwrap();
            let p = match o.program("p") {
                Ok(p) => p,
                Err(e) => panic!("round {round}: {e}"),
            };
            let _ = if kind == ProgType::Xdp {
                p.run_xdp(&[0; 64])
            } else {
                p.run_skb(&[0; 64])
            };
        }
    }
}
