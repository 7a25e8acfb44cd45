//! `bpf_for_each_map_elem` on interpreter and JIT, verified and checked:
//! tests/bpf/for_each_map.o (array, hash, percpu_array, percpu_hash,
//! lru_hash, early stop, counting, value writes, deletes from the callback,
//! nested walks, non-zero flags) with the results
//! tests/bpf/README.md gives, the hash walk order equal to the map's key
//! order, and hand-built programs that must be refused or fault.

use std::path::PathBuf;

use cordon_isa::Insn;
use cordon_object::{FuncLinkage, FunctionSpan, MapSpec, Object, ProgType};
use cordon_runtime::{Backend, Config, LoadedObject, Runtime};

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

fn load_c(rt: &Runtime) -> LoadedObject {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/bpf/for_each_map.o"
    ));
    rt.load(&std::fs::read(path).unwrap()).unwrap()
}

fn pkt(op: u8, param: u8) -> Vec<u8> {
    let mut p = vec![0u8; 64];
    p[0] = op;
    p[1] = param;
    p
}

fn u32_at(v: &[u8]) -> u32 {
    u32::from_ne_bytes(v[..4].try_into().unwrap())
}

fn u64_at(v: &[u8]) -> u64 {
    u64::from_ne_bytes(v[..8].try_into().unwrap())
}

#[test]
fn array_walks_stops_flags_and_percpu() {
    for mode in MODES {
        let rt = runtime(mode);
        let o = load_c(&rt);
        let p = o.program("for_each").unwrap();
        let run = |op, param| p.run_skb(&pkt(op, param)).unwrap().r0 as u32;
        for k in 1..=3u32 {
            assert_eq!(run(0, 0), 16 << 16 | (k * 136), "{mode:?} walk {k}");
        }
        assert_eq!(run(3, 5), 6, "{mode:?}");
        assert_eq!(run(3, 0), 1, "{mode:?}");
        assert_eq!(run(3, 200), 16, "{mode:?}");
        assert_eq!(run(5, 1), -22i32 as u32, "{mode:?}: flags != 0 is -EINVAL");
        assert_eq!(run(5, 0), 16 + 16 * 1000, "{mode:?}");
        assert_eq!(run(2, 0), 8 << 16 | 80, "{mode:?}");
        assert_eq!(run(2, 0), 8 << 16 | 160, "{mode:?}");
        let arr = o.map_handle("arr").unwrap();
        for key in 0..16u32 {
            let v = arr.lookup_value(&key.to_ne_bytes()).unwrap();
            assert_eq!(u64_at(&v), 3 * (key as u64 + 1), "{mode:?} arr[{key}]");
        }
    }
}

#[test]
fn hash_walk_order_deletes_and_early_stop() {
    for mode in MODES {
        let rt = runtime(mode);
        let o = load_c(&rt);
        let p = o.program("for_each").unwrap();
        let hash = o.map_handle("hash").unwrap();
        let order = o.map_handle("order").unwrap();
        let run = |op, param| p.run_skb(&pkt(op, param)).unwrap().r0 as u32;
        let full = |n: u32| n << 16 | (1..=n).map(|k| 3 * k * k).sum::<u32>() & 0xffff;
        let recorded = || -> Vec<u32> {
            let n = u32_at(&order.lookup_value(&0u32.to_ne_bytes()).unwrap());
            (1..=n)
                .map(|i| u32_at(&order.lookup_value(&i.to_ne_bytes()).unwrap()))
                .collect()
        };
        let key_order = || -> Vec<u32> { hash.keys().map(|k| u32_at(&k)).collect() };
        assert_eq!(run(6, 3), 0, "{mode:?}: empty map");
        assert_eq!(run(1, 25), full(25), "{mode:?}");
        // The walk visits elements in get_next_key order.
        let keys = key_order();
        assert_eq!(keys.len(), 25);
        assert_eq!(recorded(), keys, "{mode:?}");
        assert_eq!(run(6, 7), 7, "{mode:?}");
        assert_eq!(recorded()[..7], keys[..7], "{mode:?}");
        // Deleting the current element goes on with the rest.
        assert_eq!(run(4, 0), 25 << 8 | 13, "{mode:?}");
        let left = key_order();
        assert_eq!(left.len(), 12);
        assert!(left.iter().all(|k| k % 2 == 0), "{mode:?} {left:?}");
        assert_eq!(run(4, 0), 12 << 8, "{mode:?}");
        assert_eq!(run(6, 100), 12, "{mode:?}");
        assert_eq!(recorded(), left, "{mode:?}");
    }
}

#[test]
fn percpu_hash_lru_and_nested_walks() {
    for mode in MODES {
        let rt = runtime(mode);
        let o = load_c(&rt);
        let p = o.program("for_each").unwrap();
        let run = |op, param| p.run_skb(&pkt(op, param)).unwrap().r0 as u32;
        // 5 keys (value k) in both maps, +1 in each walk: Σ k(k+1) = 70;
        // the program returns 2 × percpu_hash sum + lru sum.
        assert_eq!(run(7, 5), 5 << 24 | 5 << 16 | 210, "{mode:?}");
        // 20 keys: percpu_hash reset to k, +1: Σ k(k+1) = 3080; lru keeps
        // 1..5 (k + 1, + 1 = k + 2) and adds 6..20: 85 + 3010.
        assert_eq!(
            run(7, 20),
            20 << 24 | 20 << 16 | (2 * 3080 + 3095),
            "{mode:?}"
        );
        let lru = o.map_handle("lru").unwrap();
        let order = o.map_handle("order").unwrap();
        let n = u32_at(&order.lookup_value(&0u32.to_ne_bytes()).unwrap());
        let recorded: Vec<u32> = (1..=n)
            .map(|i| u32_at(&order.lookup_value(&i.to_ne_bytes()).unwrap()))
            .collect();
        let keys: Vec<u32> = lru.keys().map(|k| u32_at(&k)).collect();
        assert_eq!(recorded, keys, "{mode:?}: lru walk order is its key order");
        // Nested: for each of 12 hash keys k, walk percpu_array until key
        // k % 8: Σ (k % 8 + 1) = 50.
        assert_eq!(run(1, 12) >> 16, 12, "{mode:?}");
        assert_eq!(run(8, 0), 12 << 16 | 50, "{mode:?}");
        assert_eq!(run(4, 0), 12 << 8 | 6, "{mode:?}");
        assert_eq!(run(8, 0), 6 << 16 | 24, "{mode:?}");
    }
}

// ----- hand-built programs --------------------------------------------------

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}

const EXIT: Insn = Insn::new(0x95, 0, 0, 0, 0);

fn hash_spec() -> MapSpec {
    MapSpec::btf_defined("h", 1, 4, 8, 8)
}

/// Inserts key 1 into map `h`, then `r2 = callback` (`func` = the callback
/// address as an lddw src=4, or `None`: `r2 = 12345`) and calls helper
/// `helper` with r1 = map, r3 = 0, r4 = 0; returns its result. `cb` follows
/// (only when `with_func`).
fn object(helper: i32, with_func: bool, cb: &[Insn]) -> Object {
    let mut main = vec![
        i(0x62, 10, 0, -4, 1),  // *(u32 *)(r10 - 4) = 1
        i(0x7a, 10, 0, -16, 7), // *(u64 *)(r10 - 16) = 7
        i(0x18, 1, 5, 0, 0),    // r1 = map[0]
        i(0, 0, 0, 0, 0),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -4),
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, -16),
        i(0xb7, 4, 0, 0, 0),
        i(0x85, 0, 0, 0, 2), // map_update_elem
        i(0x18, 1, 5, 0, 0), // r1 = map[0]
        i(0, 0, 0, 0, 0),
    ];
    let after_func = main.len() + 2 + 4;
    if with_func {
        // r2 = func (lddw src=4, relative to the lddw).
        let rel = after_func as i32 - main.len() as i32 - 1;
        main.push(i(0x18, 2, 4, 0, rel));
        main.push(i(0, 0, 0, 0, 0));
    } else {
        main.push(i(0x18, 2, 0, 0, 12345));
        main.push(i(0, 0, 0, 0, 0));
    }
    main.push(i(0xb7, 3, 0, 0, 0));
    main.push(i(0xb7, 4, 0, 0, 0));
    main.push(i(0x85, 0, 0, 0, helper));
    main.push(EXIT);
    assert_eq!(main.len(), after_func);
    let main_len = main.len();
    let mut insns = main;
    let cb = if with_func { cb } else { &[] };
    insns.extend_from_slice(cb);
    let mut o =
        Object::single_program("p", "tc", ProgType::SchedCls, insns).with_maps(vec![hash_spec()]);
    let p = &mut o.programs[0];
    p.functions[0].len = main_len;
    if !cb.is_empty() {
        p.functions.push(FunctionSpan {
            name: "cb".into(),
            section: "tc".into(),
            start: main_len,
            len: cb.len(),
            linkage: FuncLinkage::Static,
            btf_id: None,
        });
    }
    o
}

#[test]
fn hand_built_walk_runs_on_four_modes() {
    // The callback adds the key to the value and keeps going.
    let cb = [
        i(0x61, 5, 2, 0, 0), // r5 = *(u32 *)(r2 + 0)
        i(0x79, 0, 3, 0, 0), // r0 = *(u64 *)(r3 + 0)
        i(0x0f, 0, 5, 0, 0), // r0 += r5
        i(0x7b, 3, 0, 0, 0), // *(u64 *)(r3 + 0) = r0
        i(0xb7, 0, 0, 0, 0), // r0 = 0
        EXIT,
    ];
    for mode in MODES {
        let rt = runtime(mode);
        let o = rt.load_parsed(object(164, true, &cb)).unwrap();
        let p = o.program("p").unwrap();
        assert_eq!(p.run_skb(&[0u8; 64]).unwrap().r0, 1, "{mode:?}");
        let v = o
            .map_handle("h")
            .unwrap()
            .lookup_value(&1u32.to_ne_bytes())
            .unwrap();
        // The update before each walk resets the value to 7.
        assert_eq!(u64_at(&v), 8, "{mode:?}");
    }
}

/// Loads the hand-built walk with callback `cb` on every mode: the verifier
/// must refuse it with `refused`, and checked mode must fault with `faults`.
fn refused_or_faults(with_func: bool, cb: &[Insn], refused: &str, faults: &str) {
    for mode in MODES {
        let rt = runtime(mode);
        let o = rt.load_parsed(object(164, with_func, cb)).unwrap();
        if mode.1 {
            let e = o.program("p").unwrap_err().to_string();
            assert!(e.contains(refused), "{mode:?}: {e}");
        } else {
            let p = o.program("p").unwrap();
            let e = p.run_skb(&[0u8; 64]).unwrap_err().to_string();
            assert!(e.contains(faults), "{mode:?}: {e}");
        }
    }
}

#[test]
fn write_through_the_key_is_refused_or_faults() {
    let cb = [
        i(0x62, 2, 0, 0, 5), // *(u32 *)(r2 + 0) = 5
        i(0xb7, 0, 0, 0, 0),
        EXIT,
    ];
    for mode in MODES {
        let rt = runtime(mode);
        let o = rt.load_parsed(object(164, true, &cb)).unwrap();
        if mode.1 {
            let e = o.program("p").unwrap_err().to_string();
            assert!(e.contains("cannot write into map_key"), "{mode:?}: {e}");
        } else {
            let p = o.program("p").unwrap();
            let e = p.run_skb(&[0u8; 64]).unwrap_err().to_string();
            assert!(e.contains("store of 4 bytes"), "{mode:?}: {e}");
            // The key is intact.
            let keys: Vec<Vec<u8>> = o.map_handle("h").unwrap().keys().collect();
            assert_eq!(keys, vec![1u32.to_ne_bytes().to_vec()], "{mode:?}");
        }
    }
}

#[test]
fn write_past_the_value_is_refused_or_faults() {
    let cb = [
        i(0x7a, 3, 0, 8, 0), // *(u64 *)(r3 + 8) = 0 (the value has 8 bytes)
        i(0xb7, 0, 0, 0, 0),
        EXIT,
    ];
    refused_or_faults(true, &cb, "invalid access to map value", "store of 8 bytes");
}

#[test]
fn callback_that_is_not_a_function_is_refused_or_faults() {
    let cb = [i(0xb7, 0, 0, 0, 0), EXIT];
    refused_or_faults(false, &cb, "expected=func", "not a function");
}

#[test]
fn callback_returning_2_is_refused_when_verified() {
    let cb = [i(0xb7, 0, 0, 0, 2), EXIT];
    for mode in MODES {
        let rt = runtime(mode);
        let o = rt.load_parsed(object(164, true, &cb)).unwrap();
        if mode.1 {
            let e = o.program("p").unwrap_err().to_string();
            assert!(e.contains("should have been in [0, 1]"), "{mode:?}: {e}");
        } else {
            // Unverified: any non-zero return stops the walk, as in Linux's loop.
            let p = o.program("p").unwrap();
            assert_eq!(p.run_skb(&[0u8; 64]).unwrap().r0, 1, "{mode:?}");
        }
    }
}

#[test]
fn internal_cursor_helper_cannot_be_called_by_programs() {
    // The cursor helper exists only in rewritten code: a program naming its
    // id is refused at load in every mode (so no program can hand it a
    // cursor of its choosing).
    let prog = vec![
        i(0x18, 1, 5, 0, 0),
        i(0, 0, 0, 0, 0),
        i(0xb7, 2, 0, 0, 0x1000),
        i(0x85, 0, 0, 0, 0x7f00_0005),
        EXIT,
    ];
    let mut o = object(164, false, &[]);
    let len = prog.len();
    o.programs[0].insns = prog;
    o.programs[0].functions[0].len = len;
    for mode in MODES {
        let rt = runtime(mode);
        let lo = rt.load_parsed(o.clone()).unwrap();
        let e = lo.program("p").unwrap_err().to_string();
        assert!(e.contains("unknown helper 2130706437"), "{mode:?}: {e}");
    }
}
