//! XDP redirect maps (devmap, devmap_hash, cpumap, xskmap): host API with
//! Linux's checks, `bpf_redirect_map` decisions recorded in the run result
//! on every engine, and the verifier's map/function compatibility rules.

use cordon_isa::Insn;
use cordon_object::{MapSpec, Object, ProgType};
use cordon_runtime::maps::{BPF_ANY, BPF_EXIST, BPF_NOEXIST, errno};
use cordon_runtime::{
    Backend, Config, LoadError, Map, MapDef, MapError, MapType, Redirect, RedirectTarget, Runtime,
};

const MODES: [(Backend, bool); 4] = [
    (Backend::Interpreter, true),
    (Backend::Jit, true),
    (Backend::Interpreter, false),
    (Backend::Jit, false),
];

const DEVMAP: u32 = 14;
const CPUMAP: u32 = 16;
const XSKMAP: u32 = 17;
const DEVMAP_HASH: u32 = 25;
const ARRAY: u32 = 2;

const XDP_ABORTED: u32 = 0;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;
const BPF_F_BROADCAST: i32 = 1 << 3;
const BPF_F_EXCLUDE_INGRESS: i32 = 1 << 4;

const ENODEV: i32 = 19;
const EOVERFLOW: i32 = 75;

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

fn lddw(dst: u8, v: u64) -> [Insn; 2] {
    [
        i(0x18, dst, 0, 0, v as u32 as i32),
        i(0, 0, 0, 0, (v >> 32) as u32 as i32),
    ]
}

const EXIT: Insn = Insn::new(0x95, 0, 0, 0, 0);

fn spec(name: &str, map_type: u32, value: u32, max: u32) -> MapSpec {
    MapSpec::btf_defined(name, map_type, 4, value, max)
}

fn object(prog_type: ProgType, insns: Vec<Insn>, maps: Vec<MapSpec>) -> Object {
    Object::single_program("p", "xdp", prog_type, insns).with_maps(maps)
}

/// `return bpf_redirect_map(&maps[0], key, flags);`
fn redirect_prog(map: MapSpec, key: u64, flags: i32) -> Object {
    let mut v = Vec::new();
    v.extend(lddw_map(1, 0));
    v.extend(lddw(2, key));
    v.push(i(0xb7, 3, 0, 0, flags));
    v.push(i(0x85, 0, 0, 0, 51));
    v.push(EXIT);
    object(ProgType::Xdp, v, vec![map])
}

fn key(k: u32) -> [u8; 4] {
    k.to_ne_bytes()
}

fn val(a: u32, b: u32) -> Vec<u8> {
    [a.to_ne_bytes(), b.to_ne_bytes()].concat()
}

fn create(t: MapType, value: u32, max: u32) -> cordon_runtime::MapHandle {
    Map::create(&MapDef::new(t, 4, value, max).with_name("m"), 2).unwrap()
}

// ----- host API ----------------------------------------------------------------

#[test]
fn creation_follows_linux_attribute_checks() {
    for t in [MapType::DevMap, MapType::DevMapHash, MapType::CpuMap] {
        for v in [4, 8] {
            Map::create(&MapDef::new(t, 4, v, 4), 2).unwrap();
        }
        for (k, v, max) in [(4, 12, 4), (4, 0, 4), (8, 4, 4), (4, 4, 0)] {
            let e = Map::create(&MapDef::new(t, k, v, max), 2).unwrap_err();
            assert!(matches!(e, MapError::InvalidAttr { .. }), "{t} {e}");
            assert_eq!(e.errno(), errno::EINVAL);
        }
    }
    Map::create(&MapDef::new(MapType::XskMap, 4, 4, 4), 2).unwrap();
    let e = Map::create(&MapDef::new(MapType::XskMap, 4, 8, 4), 2).unwrap_err();
    assert!(e.to_string().contains("must be 4 (a socket)"), "{e}");
    // Huge maps are refused with an error, not an abort.
    for t in [MapType::DevMap, MapType::DevMapHash, MapType::XskMap] {
        let e = Map::create(&MapDef::new(t, 4, 4, 1 << 31), 2).unwrap_err();
        assert!(matches!(e, MapError::OutOfMemory { .. }), "{t} {e}");
        assert_eq!(e.errno(), errno::ENOMEM);
    }
    let e = Map::create(&MapDef::new(MapType::DevMapHash, 4, 4, u32::MAX), 2).unwrap_err();
    assert!(matches!(e, MapError::InvalidAttr { .. }), "{e}");
    // cpumap: at most NR_CPUS entries, only BPF_F_NUMA_NODE.
    let e = Map::create(&MapDef::new(MapType::CpuMap, 4, 4, 8193), 2).unwrap_err();
    assert_eq!(e.errno(), errno::E2BIG, "{e}");
    let rdonly = cordon_runtime::maps::flags::BPF_F_RDONLY;
    Map::create(&MapDef::new(MapType::DevMap, 4, 4, 4).with_flags(rdonly), 2).unwrap();
    let e = Map::create(&MapDef::new(MapType::CpuMap, 4, 4, 4).with_flags(rdonly), 2).unwrap_err();
    assert!(matches!(e, MapError::InvalidMapFlags { .. }), "{e}");
    // Program flags are Linux's to set, not the user's.
    let rdprog = cordon_runtime::maps::flags::BPF_F_RDONLY_PROG;
    let e = Map::create(&MapDef::new(MapType::DevMap, 4, 4, 4).with_flags(rdprog), 2).unwrap_err();
    assert!(matches!(e, MapError::InvalidMapFlags { .. }), "{e}");
    // devmaps are read-only for programs (dev_map_init_map).
    let m = create(MapType::DevMap, 4, 4);
    assert_eq!(m.def().flags & rdprog, rdprog);
    assert_eq!(MapType::from_id(25).unwrap(), MapType::DevMapHash);
    assert_eq!(MapType::DevMapHash.name(), "devmap_hash");
}

#[test]
fn devmap_host_updates() {
    let m = create(MapType::DevMap, 8, 4);
    m.update_value(&key(1), &val(7, 0), BPF_ANY).unwrap();
    assert_eq!(m.lookup_value(&key(1)).unwrap(), val(7, 0));
    assert_eq!(m.lookup_value(&key(0)).unwrap_err(), MapError::NotFound);
    // BPF_NOEXIST is always EEXIST for devmaps, BPF_EXIST works on empty slots.
    assert_eq!(
        m.update_value(&key(0), &val(3, 0), BPF_NOEXIST)
            .unwrap_err(),
        MapError::Exists
    );
    m.update_value(&key(0), &val(3, 0), BPF_EXIST).unwrap();
    let e = m.update_value(&key(0), &val(3, 0), 3).unwrap_err();
    assert!(matches!(e, MapError::InvalidFlags { .. }), "{e}");
    assert_eq!(
        m.update_value(&key(4), &val(3, 0), BPF_ANY).unwrap_err(),
        MapError::Full
    );
    // A program fd cannot be attached (no devmap programs in Cordon); fd 0
    // or negative means none, as in Linux.
    let e = m.update_value(&key(2), &val(3, 5), BPF_ANY).unwrap_err();
    assert_eq!(e.errno(), errno::EINVAL);
    assert!(e.to_string().contains("bpf_prog.fd 5"), "{e}");
    m.update_value(&key(2), &val(3, u32::MAX), BPF_ANY).unwrap();
    assert_eq!(
        m.lookup_value(&key(2)).unwrap(),
        val(3, 0),
        "prog id reads 0"
    );
    // ifindex 0 clears the slot (Linux's dev_map_update_elem), but not with a program fd.
    let e = m.update_value(&key(1), &val(0, 9), BPF_ANY).unwrap_err();
    assert_eq!(e.errno(), errno::EINVAL);
    m.update_value(&key(1), &val(0, 0), BPF_ANY).unwrap();
    assert_eq!(m.lookup_value(&key(1)).unwrap_err(), MapError::NotFound);
    // Wrong value size.
    let e = m.update_value(&key(1), &[1, 0, 0, 0], BPF_ANY).unwrap_err();
    assert!(
        matches!(
            e,
            MapError::ValueSize {
                expected: 8,
                got: 4
            }
        ),
        "{e}"
    );
    // Delete: any index below max_entries succeeds, beyond is EINVAL.
    m.delete_value(&key(3)).unwrap();
    m.delete_value(&key(0)).unwrap();
    assert_eq!(m.lookup_value(&key(0)).unwrap_err(), MapError::NotFound);
    let e = m.delete_value(&key(4)).unwrap_err();
    assert_eq!(e.errno(), errno::EINVAL);
    // Keys iterate over every index, as Linux's dev_map_get_next_key.
    let keys: Vec<u32> = m
        .keys()
        .map(|k| u32::from_ne_bytes(k.try_into().unwrap()))
        .collect();
    assert_eq!(keys, [0, 1, 2, 3]);
}

#[test]
fn host_device_list_restricts_ifindexes() {
    for t in [MapType::DevMap, MapType::DevMapHash] {
        let m = create(t, 4, 4);
        m.update_value(&key(0), &key(42), BPF_ANY).unwrap();
        m.set_devices(Some(vec![1, 2])).unwrap();
        let e = m.update_value(&key(1), &key(42), BPF_ANY).unwrap_err();
        assert_eq!(e.errno(), errno::EINVAL);
        assert!(e.to_string().contains("no such device"), "{e}");
        m.update_value(&key(1), &key(2), BPF_ANY).unwrap();
        m.set_devices(None).unwrap();
        m.update_value(&key(1), &key(42), BPF_ANY).unwrap();
    }
    let e = create(MapType::CpuMap, 4, 2).set_devices(None).unwrap_err();
    assert!(matches!(e, MapError::OpNotSupported { .. }), "{e}");
}

#[test]
fn devmap_hash_host_updates_and_linux_iteration_order() {
    let m = create(MapType::DevMapHash, 4, 4);
    let e = m.update_value(&key(5), &key(0), BPF_ANY).unwrap_err();
    assert!(
        matches!(
            e,
            MapError::InvalidValue {
                field: "ifindex",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.errno(), errno::EINVAL);
    // Buckets are key & 3; newest first inside a bucket.
    for (k, ifindex) in [(1, 10), (5, 50), (2, 20), (9, 90)] {
        m.update_value(&key(k), &key(ifindex), BPF_ANY).unwrap();
    }
    let keys: Vec<u32> = m
        .keys()
        .map(|k| u32::from_ne_bytes(k.try_into().unwrap()))
        .collect();
    assert_eq!(keys, [9, 5, 1, 2]);
    assert_eq!(m.len(), Some(4));
    assert_eq!(
        m.update_value(&key(3), &key(30), BPF_ANY).unwrap_err(),
        MapError::Full
    );
    assert_eq!(
        m.update_value(&key(5), &key(51), BPF_NOEXIST).unwrap_err(),
        MapError::Exists
    );
    // Replacing moves the key to the front of its bucket.
    m.update_value(&key(1), &key(11), BPF_EXIST).unwrap();
    let keys: Vec<u32> = m
        .keys()
        .map(|k| u32::from_ne_bytes(k.try_into().unwrap()))
        .collect();
    assert_eq!(keys, [1, 9, 5, 2]);
    assert_eq!(m.lookup_value(&key(1)).unwrap(), key(11));
    // An absent key restarts from the first key.
    assert_eq!(m.next_key(Some(&key(77))).unwrap(), Some(key(1).to_vec()));
    assert_eq!(m.delete_value(&key(3)).unwrap_err(), MapError::NotFound);
    m.delete_value(&key(9)).unwrap();
    m.update_value(&key(3), &key(30), BPF_ANY).unwrap();
    assert_eq!(m.len(), Some(4));
}

#[test]
fn cpumap_host_updates() {
    let m = create(MapType::CpuMap, 8, 4);
    m.update_value(&key(1), &val(192, 0), BPF_ANY).unwrap();
    assert_eq!(m.lookup_value(&key(1)).unwrap(), val(192, 0));
    // The runtime has 2 CPUs: CPU 2 does not exist (Linux: !cpu_possible).
    let e = m.update_value(&key(2), &val(192, 0), BPF_ANY).unwrap_err();
    assert_eq!(e.errno(), ENODEV, "{e}");
    let e = m
        .update_value(&key(1), &val(16385, 0), BPF_ANY)
        .unwrap_err();
    assert_eq!(e.errno(), EOVERFLOW, "{e}");
    assert!(e.to_string().contains("qsize 16385"), "{e}");
    m.update_value(&key(0), &val(16384, 0), BPF_ANY).unwrap();
    assert_eq!(
        m.update_value(&key(4), &val(1, 0), BPF_ANY).unwrap_err(),
        MapError::Full
    );
    assert_eq!(
        m.update_value(&key(0), &val(1, 0), BPF_NOEXIST)
            .unwrap_err(),
        MapError::Exists
    );
    let e = m.update_value(&key(0), &val(1, 3), BPF_ANY).unwrap_err();
    assert_eq!(e.errno(), errno::ENOMEM, "{e}");
    assert!(e.to_string().contains("bpf_prog.fd 3"), "{e}");
    // qsize 0 is a delete in Linux (cpu_map_update_elem), not an error.
    m.update_value(&key(1), &val(0, 0), BPF_ANY).unwrap();
    assert_eq!(m.lookup_value(&key(1)).unwrap_err(), MapError::NotFound);
    let e = m.update_value(&key(1), &[0; 4], BPF_ANY).unwrap_err();
    assert!(matches!(e, MapError::ValueSize { .. }), "{e}");
    assert_eq!(m.delete_value(&key(4)).unwrap_err().errno(), errno::EINVAL);
}

#[test]
fn xskmap_host_updates() {
    let m = create(MapType::XskMap, 4, 4);
    assert_eq!(
        m.update_value(&key(0), &key(9), BPF_EXIST).unwrap_err(),
        MapError::NotFound
    );
    m.update_value(&key(0), &key(9), BPF_NOEXIST).unwrap();
    assert_eq!(
        m.update_value(&key(0), &key(9), BPF_NOEXIST).unwrap_err(),
        MapError::Exists
    );
    m.update_value(&key(0), &key(10), BPF_EXIST).unwrap();
    // Linux: xsk_map_lookup_elem_sys_only is EOPNOTSUPP.
    let e = m.lookup_value(&key(0)).unwrap_err();
    assert_eq!(e.errno(), errno::EOPNOTSUPP, "{e}");
    assert_eq!(
        m.update_value(&key(4), &key(1), BPF_ANY).unwrap_err(),
        MapError::Full
    );
    m.delete_value(&key(0)).unwrap();
    m.update_value(&key(0), &key(1), BPF_NOEXIST).unwrap();
}

// ----- bpf_redirect_map on every engine ------------------------------------------

fn run_redirect(
    mode: (Backend, bool),
    spec: MapSpec,
    fill: &[(u32, Vec<u8>)],
    k: u64,
    flags: i32,
) -> cordon_runtime::RunResult {
    let rt = runtime(mode);
    let o = rt.load_parsed(redirect_prog(spec, k, flags)).unwrap();
    let m = o.map_handle("m").unwrap();
    for (key_, v) in fill {
        m.update_value(&key(*key_), v, BPF_ANY).unwrap();
    }
    let p = o.program("p").unwrap();
    assert_eq!(p.is_verified(), mode.1);
    p.run_xdp(&[0u8; 64]).unwrap()
}

#[test]
fn devmap_redirect_is_recorded() {
    for mode in MODES {
        for (t, name) in [
            (DEVMAP, MapType::DevMap),
            (DEVMAP_HASH, MapType::DevMapHash),
        ] {
            let fill = [(1, val(7, 0)), (3, val(1, 0))];
            let r = run_redirect(mode, spec("m", t, 8, 8), &fill, 1, 0);
            assert_eq!(r.retval, XDP_REDIRECT, "{mode:?}");
            assert_eq!(
                r.redirect,
                Some(Redirect::Map {
                    map: "m".into(),
                    map_type: name,
                    key: 1,
                    target: RedirectTarget::Device { ifindex: 7 },
                    flags: 0,
                }),
                "{mode:?}"
            );
            // The key is truncated to 32 bits (Linux passes a u32 to the lookup).
            let r = run_redirect(mode, spec("m", t, 8, 8), &fill, (1 << 32) | 3, 0);
            assert_eq!(r.retval, XDP_REDIRECT);
            assert!(
                matches!(
                    &r.redirect,
                    Some(Redirect::Map {
                        key: 3,
                        target: RedirectTarget::Device { ifindex: 1 },
                        ..
                    })
                ),
                "{:?}",
                r.redirect
            );
            // Absent key: the action in the low flag bits, nothing recorded.
            for action in [XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX] {
                let r = run_redirect(mode, spec("m", t, 8, 8), &fill, 2, action as i32);
                assert_eq!((r.retval, &r.redirect), (action, &None), "{mode:?}");
            }
            // Unknown flag bits abort.
            let r = run_redirect(mode, spec("m", t, 8, 8), &fill, 1, 1 << 5);
            assert_eq!((r.retval, &r.redirect), (XDP_ABORTED, &None));
            let r = run_redirect(mode, spec("m", t, 8, 8), &fill, 1, 4 | XDP_PASS as i32);
            assert_eq!(r.retval, XDP_ABORTED);
            // Broadcast redirects to every device even for an absent key; the
            // test run's ingress device is 1 (lo).
            let r = run_redirect(mode, spec("m", t, 8, 8), &fill, 2, BPF_F_BROADCAST);
            assert_eq!(r.retval, XDP_REDIRECT);
            let Some(Redirect::Map {
                target:
                    RedirectTarget::Broadcast {
                        ifindexes,
                        exclude_ingress: false,
                    },
                ..
            }) = r.redirect
            else {
                panic!("{:?}", r.redirect)
            };
            assert_eq!(ifindexes, [7, 1]);
            let r = run_redirect(
                mode,
                spec("m", t, 8, 8),
                &fill,
                2,
                BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS,
            );
            assert_eq!(r.retval, XDP_REDIRECT);
            assert!(
                matches!(&r.redirect, Some(Redirect::Map { target: RedirectTarget::Broadcast { ifindexes, exclude_ingress: true }, .. }) if ifindexes == &[7]),
                "{:?}",
                r.redirect
            );
        }
    }
}

#[test]
fn cpumap_and_xskmap_redirects_are_recorded() {
    for mode in MODES {
        let r = run_redirect(
            mode,
            spec("m", CPUMAP, 4, 2),
            &[(1, key(64).to_vec())],
            1,
            0,
        );
        assert_eq!(r.retval, XDP_REDIRECT, "{mode:?}");
        assert!(
            matches!(
                &r.redirect,
                Some(Redirect::Map {
                    map_type: MapType::CpuMap,
                    key: 1,
                    target: RedirectTarget::Cpu { cpu: 1, qsize: 64 },
                    ..
                })
            ),
            "{:?}",
            r.redirect
        );
        let r = run_redirect(
            mode,
            spec("m", CPUMAP, 4, 2),
            &[(1, key(64).to_vec())],
            0,
            XDP_DROP as i32,
        );
        assert_eq!((r.retval, &r.redirect), (XDP_DROP, &None));
        // Broadcast is a devmap flag only.
        let r = run_redirect(
            mode,
            spec("m", CPUMAP, 4, 2),
            &[(1, key(64).to_vec())],
            1,
            BPF_F_BROADCAST,
        );
        assert_eq!(r.retval, XDP_ABORTED);

        let r = run_redirect(
            mode,
            spec("m", XSKMAP, 4, 4),
            &[(2, key(1234).to_vec())],
            2,
            0,
        );
        assert_eq!(r.retval, XDP_REDIRECT, "{mode:?}");
        assert!(
            matches!(
                &r.redirect,
                Some(Redirect::Map {
                    map_type: MapType::XskMap,
                    key: 2,
                    target: RedirectTarget::Socket { id: 1234 },
                    ..
                })
            ),
            "{:?}",
            r.redirect
        );
        let r = run_redirect(
            mode,
            spec("m", XSKMAP, 4, 4),
            &[(2, key(1234).to_vec())],
            3,
            XDP_PASS as i32,
        );
        assert_eq!((r.retval, &r.redirect), (XDP_PASS, &None));
    }
}

/// Two calls: the second (a miss) clears what the first recorded, as
/// Linux's `bpf_redirect_info` does.
#[test]
fn a_later_miss_clears_the_record() {
    for mode in MODES {
        let mut v = Vec::new();
        v.extend(lddw_map(1, 0));
        v.push(i(0xb7, 2, 0, 0, 0));
        v.push(i(0xb7, 3, 0, 0, 0));
        v.push(i(0x85, 0, 0, 0, 51));
        v.extend(lddw_map(1, 0));
        v.push(i(0xb7, 2, 0, 0, 1));
        v.push(i(0xb7, 3, 0, 0, XDP_PASS as i32));
        v.push(i(0x85, 0, 0, 0, 51));
        v.push(EXIT);
        let rt = runtime(mode);
        let o = rt
            .load_parsed(object(ProgType::Xdp, v, vec![spec("m", DEVMAP, 4, 2)]))
            .unwrap();
        o.map_handle("m")
            .unwrap()
            .update_value(&key(0), &key(5), BPF_ANY)
            .unwrap();
        let r = o.program("p").unwrap().run_xdp(&[0; 64]).unwrap();
        assert_eq!((r.retval, &r.redirect), (XDP_PASS, &None), "{mode:?}");
    }
}

/// `r0 = *(u32 *)bpf_map_lookup_elem(&m, &key0) (+ offset)`, or 0xff on a miss.
fn lookup_prog(map_type: u32, value: u32, write: bool) -> Object {
    let mut v = vec![
        i(0x62, 10, 0, -4, 0), // *(u32 *)(r10 - 4) = 0
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -4),
    ];
    v.extend(lddw_map(1, 0));
    v.extend([
        i(0x85, 0, 0, 0, 1),
        i(0x55, 0, 0, 2, 0), // if r0 != 0 goto +2
        i(0xb7, 0, 0, 0, 0xff),
        EXIT,
    ]);
    if write {
        v.push(i(0x62, 0, 0, 0, 9)); // *(u32 *)(r0 + 0) = 9
    }
    v.extend([i(0x61, 0, 0, 0, 0), EXIT]);
    object(ProgType::Xdp, v, vec![spec("m", map_type, value, 4)])
}

#[test]
fn programs_read_devmap_and_xskmap_entries() {
    for mode in MODES {
        for (t, v, stored) in [
            (DEVMAP, 8, val(7, 0)),
            (DEVMAP_HASH, 4, key(7).to_vec()),
            (XSKMAP, 4, key(7).to_vec()),
        ] {
            let rt = runtime(mode);
            let o = rt.load_parsed(lookup_prog(t, v, false)).unwrap();
            let p = o.program("p").unwrap();
            assert_eq!(p.run_xdp(&[0; 64]).unwrap().retval, 0xff, "{mode:?} {t}");
            o.map_handle("m")
                .unwrap()
                .update_value(&key(0), &stored, BPF_ANY)
                .unwrap();
            assert_eq!(p.run_xdp(&[0; 64]).unwrap().retval, 7, "{mode:?} {t}");
        }
    }
}

// ----- verifier ----------------------------------------------------------------------

fn verify_error(o: Object) -> String {
    let rt = runtime(MODES[0]);
    let o = rt.load_parsed(o).unwrap();
    match o.program("p").err() {
        Some(LoadError::Verify { message, log, .. }) => format!("{message}\n{log}"),
        Some(other) => panic!("not a verifier error: {other}"),
        None => panic!("the verifier accepted the program"),
    }
}

fn call_with_map(map_type: u32, value: u32, helper: i32) -> Object {
    let mut v = vec![
        i(0x62, 10, 0, -8, 0), // key and value on the stack
        i(0x62, 10, 0, -4, 0),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -8),
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, -4),
        i(0xb7, 4, 0, 0, 0),
    ];
    v.extend(lddw_map(1, 0));
    v.extend([i(0x85, 0, 0, 0, helper), i(0xb7, 0, 0, 0, 2), EXIT]);
    object(ProgType::Xdp, v, vec![spec("m", map_type, value, 4)])
}

#[test]
fn verifier_rejects_what_linux_rejects() {
    // Programs cannot update or delete redirect map entries; devmaps are
    // read-only for programs (BPF_F_RDONLY_PROG), which Linux checks first.
    for t in [DEVMAP, DEVMAP_HASH, CPUMAP, XSKMAP] {
        for (helper, name) in [(2, "bpf_map_update_elem#2"), (3, "bpf_map_delete_elem#3")] {
            let e = verify_error(call_with_map(t, 4, helper));
            let want = if t == DEVMAP || t == DEVMAP_HASH {
                "write into map forbidden".to_string()
            } else {
                format!("cannot pass map_type {t} into func {name}")
            };
            assert!(e.contains(&want), "{t}: {e}");
        }
    }
    // cpumap entries cannot be looked up from programs.
    let e = verify_error(call_with_map(CPUMAP, 4, 1));
    assert!(
        e.contains("cannot pass map_type 16 into func bpf_map_lookup_elem#1"),
        "{e}"
    );
    // bpf_redirect_map only takes redirect maps.
    let e = verify_error(redirect_prog(spec("m", ARRAY, 4, 4), 0, 0));
    assert!(
        e.contains("cannot pass map_type 2 into func bpf_redirect_map#51"),
        "{e}"
    );
    // Lookups return read-only values.
    for t in [DEVMAP, DEVMAP_HASH, XSKMAP] {
        let e = verify_error(lookup_prog(t, 4, true));
        assert!(e.contains("write into map forbidden"), "{t}: {e}");
    }
}

#[test]
fn verifier_accepts_what_linux_accepts() {
    let rt = runtime(MODES[0]);
    for t in [DEVMAP, DEVMAP_HASH, CPUMAP, XSKMAP] {
        let o = rt
            .load_parsed(redirect_prog(spec("m", t, 4, 4), 0, 0))
            .unwrap();
        assert!(o.program("p").unwrap().is_verified(), "{t}");
    }
    for t in [DEVMAP, DEVMAP_HASH, XSKMAP] {
        let o = rt.load_parsed(lookup_prog(t, 4, false)).unwrap();
        assert!(o.program("p").unwrap().is_verified(), "{t}");
    }
}

#[test]
fn redirect_map_from_tc_is_rejected() {
    let mut o = redirect_prog(spec("m", DEVMAP, 4, 4), 0, 0);
    o.programs[0].prog_type = ProgType::SchedCls;
    let e = verify_error(o);
    assert!(e.contains("redirect_map"), "{e}");
}

// ----- the same verdicts as Linux ---------------------------------------------------

/// Every compatibility rule above, loaded into the running kernel too: Linux
/// and Cordon must accept the same programs, and reject the map/function
/// combinations with the same message.
#[test]
fn verifier_verdicts_match_linux() {
    use cordon_linux::{Map as KMap, MapSpec as KSpec, MapType as KMapType, ProgType as KType};
    cordon_linux::require!(cordon_linux::available());
    let cases: Vec<(&str, Object)> = vec![
        ("devmap lookup", lookup_prog(DEVMAP, 8, false)),
        ("devmap_hash lookup", lookup_prog(DEVMAP_HASH, 4, false)),
        ("xskmap lookup", lookup_prog(XSKMAP, 4, false)),
        ("devmap lookup + write", lookup_prog(DEVMAP, 8, true)),
        (
            "devmap_hash lookup + write",
            lookup_prog(DEVMAP_HASH, 4, true),
        ),
        ("xskmap lookup + write", lookup_prog(XSKMAP, 4, true)),
        ("cpumap lookup", call_with_map(CPUMAP, 4, 1)),
        ("devmap update", call_with_map(DEVMAP, 4, 2)),
        ("devmap_hash delete", call_with_map(DEVMAP_HASH, 4, 3)),
        ("devmap_hash update", call_with_map(DEVMAP_HASH, 4, 2)),
        ("cpumap update", call_with_map(CPUMAP, 4, 2)),
        ("cpumap delete", call_with_map(CPUMAP, 4, 3)),
        ("xskmap update", call_with_map(XSKMAP, 4, 2)),
        ("xskmap delete", call_with_map(XSKMAP, 4, 3)),
        (
            "redirect_map array",
            redirect_prog(spec("m", ARRAY, 4, 4), 0, 0),
        ),
        (
            "redirect_map devmap",
            redirect_prog(spec("m", DEVMAP, 4, 4), 0, 2),
        ),
        (
            "redirect_map devmap_hash",
            redirect_prog(spec("m", DEVMAP_HASH, 8, 4), 0, 0),
        ),
        (
            "redirect_map cpumap",
            redirect_prog(spec("m", CPUMAP, 4, 2), 0, 0),
        ),
        (
            "redirect_map xskmap",
            redirect_prog(spec("m", XSKMAP, 4, 4), 0, 0),
        ),
    ];
    let rt = runtime(MODES[0]);
    for (what, o) in cases {
        let m = &o.maps[0];
        let kmap = cordon_linux::require!(KMap::create(&KSpec::new(
            KMapType(m.map_type),
            m.key_size,
            m.value_size,
            m.max_entries
        )));
        let insns = o.programs[0].insns.clone();
        let linux = cordon_linux::require!(cordon_linux::verdict(
            KType(ProgType::Xdp.kernel_id()),
            &insns,
            &[&kmap]
        ));
        let loaded = rt.load_parsed(o).unwrap();
        let cordon = loaded.program("p");
        assert_eq!(
            cordon.is_ok(),
            linux.accepted,
            "{what}: Linux {}, Cordon {:?}\n{}",
            if linux.accepted { "accepts" } else { "rejects" },
            cordon.as_ref().err().map(|e| e.to_string()),
            linux.log
        );
        if let Err(LoadError::Verify { message, .. }) = &cordon
            && (message.contains("cannot pass map_type")
                || message.ends_with("write into map forbidden"))
        {
            assert!(
                linux
                    .log
                    .contains(message.split(": ").last().unwrap_or(message)),
                "{what}: Cordon says {message:?}, Linux:\n{}",
                linux.log
            );
        }
    }
}

/// The host rewrites and deletes devmap_hash entries while programs redirect
/// through the map on other threads: every run sees either a miss or one of
/// the ifindexes written for the key, never anything else.
#[test]
fn host_updates_race_with_redirecting_programs() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    for backend in [Backend::Interpreter, Backend::Jit] {
        let rt = runtime((backend, true));
        let o = rt
            .load_parsed(redirect_prog(
                spec("m", DEVMAP_HASH, 4, 8),
                3,
                XDP_PASS as i32,
            ))
            .unwrap();
        let m = o.map_handle("m").unwrap();
        let p = Arc::new(o.program("p").unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let runners: Vec<_> = (0..2)
            .map(|_| {
                let (p, stop) = (Arc::clone(&p), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut hits = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let r = p.run_xdp(&[0; 64]).unwrap();
                        match (r.retval, r.redirect) {
                            (XDP_PASS, None) => {}
                            (
                                XDP_REDIRECT,
                                Some(Redirect::Map {
                                    key: 3,
                                    target: RedirectTarget::Device { ifindex },
                                    ..
                                }),
                            ) => {
                                assert!((100..110).contains(&ifindex), "{ifindex}");
                                hits += 1;
                            }
                            other => panic!("{other:?}"),
                        }
                    }
                    hits
                })
            })
            .collect();
        for round in 0..3000u32 {
            // Other keys fill the map so replacements reuse slots.
            m.update_value(&key(round % 7 + 8), &key(5), BPF_ANY).ok();
            m.update_value(&key(3), &key(100 + round % 10), BPF_ANY)
                .unwrap();
            if round % 3 == 0 {
                m.delete_value(&key(3)).unwrap();
            }
            if round % 5 == 0 {
                m.delete_value(&key(round % 7 + 8)).ok();
            }
        }
        stop.store(true, Ordering::Relaxed);
        for r in runners {
            r.join().unwrap();
        }
        assert!(m.len().unwrap() <= 8);
    }
}

/// `bpf_redirect(ifindex, flags)` then, when `second` is given, another
/// call (`None` ifindex: `bpf_redirect_map(&maps[0], 0, 0)`).
fn two_redirects(t: ProgType, first: (i32, i32), second: Option<(Option<i32>, i32)>) -> Object {
    let mut v = vec![
        i(0xb7, 1, 0, 0, first.0),
        i(0xb7, 2, 0, 0, first.1),
        i(0x85, 0, 0, 0, 23),
    ];
    match second {
        Some((Some(ifindex), flags)) => v.extend([
            i(0xb7, 1, 0, 0, ifindex),
            i(0xb7, 2, 0, 0, flags),
            i(0x85, 0, 0, 0, 23),
        ]),
        Some((None, flags)) => {
            v.extend(lddw_map(1, 0));
            v.extend([
                i(0xb7, 2, 0, 0, 0),
                i(0xb7, 3, 0, 0, flags),
                i(0x85, 0, 0, 0, 51),
            ]);
        }
        None => {}
    }
    v.push(EXIT);
    object(t, v, vec![spec("m", DEVMAP, 4, 2)])
}

#[test]
fn bpf_redirect_is_recorded_with_its_flags() {
    const TC_ACT_SHOT: u32 = 2;
    const TC_ACT_REDIRECT: u32 = 7;
    for mode in MODES {
        let rt = runtime(mode);
        let run = |o: Object, xdp: bool| {
            let o = rt.load_parsed(o).unwrap();
            o.map_handle("m")
                .unwrap()
                .update_value(&key(0), &key(9), BPF_ANY)
                .unwrap();
            let p = o.program("p").unwrap();
            let r = if xdp {
                p.run_xdp(&[0; 64])
            } else {
                p.run_skb(&[0; 64])
            };
            let r = r.unwrap();
            (r.retval, r.redirect)
        };
        let ifindex = |ifindex, flags| Some(Redirect::Ifindex { ifindex, flags });
        let xdp = |a, b| run(two_redirects(ProgType::Xdp, a, b), true);
        let tc = |a, b| run(two_redirects(ProgType::SchedCls, a, b), false);
        assert_eq!(xdp((5, 0), None), (XDP_REDIRECT, ifindex(5, 0)), "{mode:?}");
        assert_eq!(xdp((5, 1), None), (XDP_ABORTED, None));
        // A refused call leaves the earlier decision (Linux's bpf_redirect_info).
        assert_eq!(
            xdp((5, 0), Some((Some(6), 1))),
            (XDP_ABORTED, ifindex(5, 0))
        );
        // The last successful call wins, whichever helper made it.
        assert_eq!(
            xdp((5, 0), Some((Some(6), 0))),
            (XDP_REDIRECT, ifindex(6, 0))
        );
        let (ret, rec) = xdp((5, 0), Some((None, 0)));
        assert_eq!(ret, XDP_REDIRECT);
        assert!(
            matches!(
                rec,
                Some(Redirect::Map {
                    target: RedirectTarget::Device { ifindex: 9 },
                    ..
                })
            ),
            "{rec:?}"
        );
        // tc: BPF_F_INGRESS is recorded; other flags are TC_ACT_SHOT.
        assert_eq!(
            tc((3, 1), None),
            (TC_ACT_REDIRECT, ifindex(3, 1)),
            "{mode:?}"
        );
        assert_eq!(tc((3, 0), None), (TC_ACT_REDIRECT, ifindex(3, 0)));
        assert_eq!(tc((3, 0x10), None), (TC_ACT_SHOT, None));
        assert_eq!(tc((3, 1), Some((Some(4), 2))), (TC_ACT_SHOT, ifindex(3, 1)));
    }
}

// ----- host operations against the running kernel --------------------------------

#[derive(Clone, Copy, Debug)]
enum Op {
    Update(u32, u32, u32, u64),
    Lookup(u32),
    Delete(u32),
}

/// Runs `ops` on a new map of each side; every outcome (errno, value, the
/// final key order) must be the same. Cordon's device list is lo (1) only.
fn same_host_results_as_linux(t: MapType, value_size: u32, max: u32, ops: &[Op]) {
    use cordon_linux::{Map as KMap, MapSpec as KSpec, MapType as KMapType};
    let ncpus = cordon_linux::require!(cordon_linux::possible_cpus());
    let k = cordon_linux::require!(KMap::create(&KSpec::new(
        KMapType(t.id()),
        4,
        value_size,
        max
    )));
    let c = Map::create(&MapDef::new(t, 4, value_size, max), ncpus as u32).unwrap();
    if matches!(t, MapType::DevMap | MapType::DevMapHash) {
        c.set_devices(Some(vec![1])).unwrap();
    }
    let value = |a: u32, b: u32| val(a, b)[..value_size as usize].to_vec();
    let errno = |e: Option<i32>| format!("errno {}", e.unwrap_or(-1));
    for op in ops {
        let (linux, cordon) = match *op {
            Op::Update(key_, a, b, flags) => (
                k.update(&key(key_), &value(a, b), flags)
                    .map_or_else(|e| errno(e.errno()), |()| "ok".into()),
                c.update_value(&key(key_), &value(a, b), flags)
                    .map_or_else(|e| errno(Some(e.errno())), |()| "ok".into()),
            ),
            Op::Lookup(key_) => (
                match k.lookup(&key(key_)) {
                    Ok(Some(v)) => format!("{v:?}"),
                    Ok(None) => errno(Some(errno::ENOENT)),
                    Err(e) => errno(e.errno()),
                },
                c.lookup_value(&key(key_))
                    .map_or_else(|e| errno(Some(e.errno())), |v| format!("{v:?}")),
            ),
            Op::Delete(key_) => (
                match k.delete(&key(key_)) {
                    Ok(true) => "ok".into(),
                    Ok(false) => errno(Some(errno::ENOENT)),
                    Err(e) => errno(e.errno()),
                },
                c.delete_value(&key(key_))
                    .map_or_else(|e| errno(Some(e.errno())), |()| "ok".into()),
            ),
        };
        assert_eq!(cordon, linux, "{t} {op:?}");
    }
    let lkeys = cordon_linux::require!(k.keys());
    let ckeys: Vec<Vec<u8>> = c.keys().collect();
    assert_eq!(ckeys, lkeys, "{t}: key order");
}

#[test]
fn host_operations_match_linux() {
    use Op::*;
    const FD_NOT_OPEN: u32 = 100_000;
    cordon_linux::require!(cordon_linux::available());
    let (any, noexist, exist) = (BPF_ANY, BPF_NOEXIST, BPF_EXIST);
    let dev = [
        Update(1, 1, 0, any),
        Lookup(1),
        Update(2, 1, FD_NOT_OPEN, any),
        Update(2, 999_999, 0, any),
        Update(2, 1, u32::MAX, exist),
        Update(1, 0, 0, any),
        Lookup(1),
        Lookup(2),
        Update(1, 0, FD_NOT_OPEN, any),
        Update(4, 1, 0, any),
        Update(0, 1, 0, noexist),
        Update(0, 1, 0, 3),
        Delete(3),
        Delete(4),
        Lookup(4),
        Update(3, 1, 0, any),
    ];
    same_host_results_as_linux(MapType::DevMap, 8, 4, &dev);
    same_host_results_as_linux(MapType::DevMap, 4, 4, &dev);
    let hash = [
        Update(1, 0, 0, any),
        Update(1, 1, 0, exist),
        Update(5, 1, 0, noexist),
        Update(5, 1, 0, noexist),
        Update(2, 1, 0, any),
        Update(9, 1, 0, any),
        Update(3, 1, 0, any),
        Update(1, 1, 0, any),
        Update(7, 999_999, 0, any),
        Update(7, 1, FD_NOT_OPEN, any),
        Lookup(5),
        Lookup(4),
        Delete(4),
        Delete(9),
        Update(13, 1, 0, any),
        Update(8, 1, 0, 4),
    ];
    same_host_results_as_linux(MapType::DevMapHash, 8, 4, &hash);
    let cpu = [
        Update(0, 64, 0, any),
        Lookup(0),
        Update(0, 0, 0, any),
        Lookup(0),
        Update(1, 16385, 0, any),
        Update(1, 16384, 0, any),
        Update(1, 1, 0, noexist),
        Update(3, 64, 0, any),
        Update(4, 64, 0, any),
        Update(0, 8, FD_NOT_OPEN, any),
        Delete(1),
        Delete(4),
        Update(0, 7, 0, exist),
    ];
    same_host_results_as_linux(MapType::CpuMap, 8, 4, &cpu);
    same_host_results_as_linux(MapType::CpuMap, 4, 4, &cpu);
    same_host_results_as_linux(MapType::XskMap, 4, 4, &[Lookup(0), Delete(0), Delete(4)]);
    // The cpumap size limit is the kernel's NR_CPUS.
    for max in [64, 256, 257, 4096, 8192, 8193] {
        let spec = cordon_linux::MapSpec::new(cordon_linux::MapType(16), 4, 4, max);
        let linux = cordon_linux::Map::create(&spec).map_err(|e| e.errno());
        let cordon = Map::create(&MapDef::new(MapType::CpuMap, 4, 4, max), 2);
        assert_eq!(
            cordon.as_ref().map(|_| ()).map_err(|e| Some(e.errno())),
            linux.as_ref().map(|_| ()).map_err(|e| *e),
            "cpumap max_entries {max}"
        );
    }
}

/// A devmap can be the inner map of a map of maps (Linux allows it): the
/// template from an object lacks the BPF_F_RDONLY_PROG devmaps get at
/// creation, which must not make them incompatible.
#[test]
fn devmaps_as_inner_maps() {
    let inner = MapDef::new(MapType::DevMap, 4, 4, 4);
    let outer = Map::create(
        &MapDef::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(inner.clone()),
        2,
    )
    .unwrap();
    let dev = Map::create(&inner, 2).unwrap();
    outer.update_inner_map(&key(0), &dev, BPF_ANY).unwrap();
    let other = Map::create(&MapDef::new(MapType::DevMap, 4, 8, 4), 2).unwrap();
    let e = outer
        .update_inner_map(&key(1), &other, BPF_ANY)
        .unwrap_err();
    assert!(matches!(e, MapError::IncompatibleInnerMap { .. }), "{e}");
    let hash = Map::create(&MapDef::new(MapType::DevMapHash, 4, 4, 4), 2).unwrap();
    let e = outer.update_inner_map(&key(1), &hash, BPF_ANY).unwrap_err();
    assert!(matches!(e, MapError::IncompatibleInnerMap { .. }), "{e}");
}
