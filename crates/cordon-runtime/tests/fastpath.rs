//! Map helper fast paths (call-site specialisation) give what the generic
//! helpers give: every scenario runs on the four modes — verified programs
//! (specialised call sites: inline array lookups, direct map and cheap helper
//! calls) on the interpreter and the JIT, and unverified programs (checked
//! mode, always the generic helpers) on both — and all must agree with each
//! other and with Linux's documented results (`-EEXIST`, `-ENOENT`, `-E2BIG`,
//! `-EINVAL`, NULL for missing keys and out-of-range indices).

use cordon_isa::Insn;
use cordon_object::{MapSpec, Object, ProgType};
use cordon_runtime::{Backend, Config, LoadedObject, Runtime, set_cpu};

const MODES: [(Backend, bool); 4] = [
    (Backend::Interpreter, true),
    (Backend::Jit, true),
    (Backend::Interpreter, false),
    (Backend::Jit, false),
];

const EEXIST: u64 = -17i64 as u64;
const ENOENT: u64 = -2i64 as u64;
const E2BIG: u64 = -7i64 as u64;
const EINVAL: u64 = -22i64 as u64;
/// r0 of a lookup that found nothing.
const NULL: u64 = 0xdead;

// ---- a tiny assembler with labels ---------------------------------------------

enum A {
    I(Insn),
    /// Conditional or unconditional jump to a label.
    J(u8, u8, u8, i32, &'static str),
    L(&'static str),
    /// `lddw dst, map[idx]`.
    Map(u8, i32),
}

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> A {
    A::I(Insn::new(code, dst, src, off, imm))
}

fn assemble(items: &[A]) -> Vec<Insn> {
    let mut at = std::collections::BTreeMap::new();
    let mut pc = 0usize;
    for it in items {
        match it {
            A::L(l) => {
                at.insert(*l, pc);
            }
            A::Map(..) => pc += 2,
            _ => pc += 1,
        }
    }
    let mut out = Vec::new();
    for it in items {
        match *it {
            A::I(x) => out.push(x),
            A::J(code, dst, src, imm, l) => {
                let off = at[l] as i64 - out.len() as i64 - 1;
                out.push(Insn::new(code, dst, src, off as i16, imm));
            }
            A::L(_) => {}
            A::Map(dst, idx) => {
                out.push(Insn::new(0x18, dst, 5, 0, idx));
                out.push(Insn::new(0, 0, 0, 0, 0));
            }
        }
    }
    out
}

fn map(name: &str, map_type: u32, key: u32, value: u32, max: u32) -> MapSpec {
    MapSpec::btf_defined(name, map_type, key, value, max)
}

fn object(insns: Vec<Insn>, maps: Vec<MapSpec>) -> Object {
    Object::single_program("p", "xdp", ProgType::Xdp, insns).with_maps(maps)
}

/// XDP prologue: a 16-byte packet `key, op, flags, value` (u32 each) into
/// r7, r8, r9 and the stack: key at fp-4, value (u64) at fp-16. Short
/// packets return 0x1111.
fn prologue() -> Vec<A> {
    vec![
        i(0x61, 6, 1, 0, 0), // r6 = ctx->data
        i(0x61, 2, 1, 4, 0), // r2 = ctx->data_end
        i(0xbf, 3, 6, 0, 0), // r3 = r6
        i(0x07, 3, 0, 0, 16),
        A::J(0x2d, 3, 2, 0, "short"), // if r3 > r2
        i(0x61, 7, 6, 0, 0),
        i(0x61, 8, 6, 4, 0),
        i(0x61, 9, 6, 8, 0),
        i(0x61, 1, 6, 12, 0),
        i(0x63, 10, 7, -4, 0),  // *(u32 *)(fp - 4) = key
        i(0x7b, 10, 1, -16, 0), // *(u64 *)(fp - 16) = value
    ]
}

fn epilogue() -> Vec<A> {
    vec![
        A::L("null"),
        i(0xb7, 0, 0, 0, NULL as i32),
        i(0x95, 0, 0, 0, 0),
        A::L("short"),
        i(0xb7, 0, 0, 0, 0x1111),
        i(0x95, 0, 0, 0, 0),
    ]
}

/// op 0: lookup (r0 = the value, `+= 1000` written back; NULL if absent),
/// op 1: update with `flags`, op 2: delete; all on map 0.
fn ops_program() -> Vec<Insn> {
    let mut v = prologue();
    v.extend([
        A::J(0x15, 8, 0, 1, "update"),
        A::J(0x15, 8, 0, 2, "delete"),
        A::Map(1, 0),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -4),
        i(0x85, 0, 0, 0, 1),
        A::J(0x15, 0, 0, 0, "null"),
        i(0x79, 1, 0, 0, 0),
        i(0xbf, 2, 1, 0, 0),
        i(0x07, 2, 0, 0, 1000),
        i(0x7b, 0, 2, 0, 0),
        i(0xbf, 0, 1, 0, 0),
        i(0x95, 0, 0, 0, 0),
        A::L("update"),
        A::Map(1, 0),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -4),
        i(0xbf, 3, 10, 0, 0),
        i(0x07, 3, 0, 0, -16),
        i(0xbf, 4, 9, 0, 0),
        i(0x85, 0, 0, 0, 2),
        i(0x95, 0, 0, 0, 0),
        A::L("delete"),
        A::Map(1, 0),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -4),
        i(0x85, 0, 0, 0, 3),
        i(0x95, 0, 0, 0, 0),
    ]);
    v.extend(epilogue());
    assemble(&v)
}

const LOOKUP: u32 = 0;
const UPDATE: u32 = 1;
const DELETE: u32 = 2;

fn packet(key: u32, op: u32, flags: u32, value: u32) -> Vec<u8> {
    [key, op, flags, value]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect()
}

fn runtime((backend, verify): (Backend, bool)) -> Runtime {
    Runtime::new(Config {
        backend,
        verify,
        cpus: 2,
        ..Config::default()
    })
}

/// One step: (cpu, packet, expected r0 or None to only compare modes).
type Step = (u32, Vec<u8>, Option<u64>);

/// What one mode produced: r0 per step and map 0's entries.
type Outcome = (Vec<u64>, Vec<(Vec<u8>, Vec<u8>)>);

/// Runs `steps` on every mode; returns the r0s and the final contents of
/// map 0 (sorted) per mode, after checking that all modes agree.
fn run_all(obj: impl Fn() -> Object, steps: &[Step]) -> Vec<u64> {
    let mut results: Vec<Outcome> = Vec::new();
    for mode in MODES {
        let rt = runtime(mode);
        let o: LoadedObject = rt.load_parsed(obj()).unwrap();
        let p = o.program("p").unwrap();
        assert_eq!(p.is_verified(), mode.1);
        let mut r0s = Vec::new();
        for (n, (cpu, pkt, want)) in steps.iter().enumerate() {
            set_cpu(*cpu);
            let r = p.run_xdp(pkt).unwrap().r0;
            if let Some(w) = want {
                assert_eq!(r, *w, "{mode:?} step {n}: r0 {r:#x}, expected {w:#x}");
            }
            r0s.push(r);
        }
        let name = o.map_names()[0].to_string();
        let m = o.map_handle(&name).unwrap();
        let mut contents: Vec<_> = m.entries().collect();
        contents.sort();
        results.push((r0s, contents));
    }
    for (k, r) in results.iter().enumerate().skip(1) {
        assert_eq!(
            r, &results[0],
            "mode {:?} differs from {:?}",
            MODES[k], MODES[0]
        );
    }
    results.swap_remove(0).0
}

fn with_map(t: u32, max: u32) -> impl Fn() -> Object {
    move || object(ops_program(), vec![map("m", t, 4, 8, max)])
}

#[test]
fn array_lookups_in_and_out_of_range() {
    let steps: Vec<Step> = vec![
        (0, packet(3, UPDATE, 0, 5), Some(0)),
        (0, packet(3, LOOKUP, 0, 0), Some(5)),
        (0, packet(3, LOOKUP, 0, 0), Some(1005)),
        (0, packet(0, LOOKUP, 0, 0), Some(0)),
        (0, packet(7, LOOKUP, 0, 0), Some(0)),
        (0, packet(8, LOOKUP, 0, 0), Some(NULL)),
        (0, packet(1 << 31, LOOKUP, 0, 0), Some(NULL)),
        (0, packet(u32::MAX, LOOKUP, 0, 0), Some(NULL)),
        // Updates: NOEXIST on an array -> EEXIST, index past the end -> E2BIG,
        // unknown flags -> EINVAL, EXIST is fine; delete -> EINVAL.
        (0, packet(2, UPDATE, 1, 9), Some(EEXIST)),
        (0, packet(8, UPDATE, 0, 9), Some(E2BIG)),
        (0, packet(2, UPDATE, 8, 9), Some(EINVAL)),
        (0, packet(2, UPDATE, 2, 9), Some(0)),
        (0, packet(2, LOOKUP, 0, 0), Some(9)),
        (0, packet(2, DELETE, 0, 0), Some(EINVAL)),
        (0, packet(0, 0, 0, 0)[..15].to_vec(), Some(0x1111)),
    ];
    run_all(with_map(2, 8), &steps);
}

#[test]
fn hash_missing_keys_and_update_flags() {
    for t in [1u32, 9] {
        // hash, lru_hash (4 entries; LRU evicts instead of E2BIG, so only the
        // plain hash checks E2BIG).
        let mut steps: Vec<Step> = vec![
            (0, packet(1, LOOKUP, 0, 0), Some(NULL)),
            (0, packet(1, UPDATE, 1, 10), Some(0)),
            (0, packet(1, UPDATE, 1, 11), Some(EEXIST)),
            (0, packet(9, UPDATE, 2, 12), Some(ENOENT)),
            (0, packet(1, UPDATE, 2, 13), Some(0)),
            (0, packet(1, LOOKUP, 0, 0), Some(13)),
            (0, packet(1, LOOKUP, 0, 0), Some(1013)),
            (0, packet(1, UPDATE, 16, 1), Some(EINVAL)),
            (0, packet(5, DELETE, 0, 0), Some(ENOENT)),
            (0, packet(2, UPDATE, 0, 20), Some(0)),
            (0, packet(3, UPDATE, 0, 30), Some(0)),
            (0, packet(4, UPDATE, 0, 40), Some(0)),
        ];
        if t == 1 {
            steps.extend([
                (0, packet(6, UPDATE, 0, 60), Some(E2BIG)),
                // Replacing an existing key of a full map is allowed.
                (0, packet(4, UPDATE, 0, 41), Some(0)),
                (0, packet(4, LOOKUP, 0, 0), Some(41)),
            ]);
        } else {
            steps.push((0, packet(6, UPDATE, 0, 60), Some(0)));
        }
        steps.extend([
            (0, packet(2, DELETE, 0, 0), Some(0)),
            (0, packet(2, DELETE, 0, 0), Some(ENOENT)),
            (0, packet(2, LOOKUP, 0, 0), Some(NULL)),
        ]);
        run_all(with_map(t, 4), &steps);
    }
}

#[test]
fn percpu_maps_use_the_current_cpu() {
    for t in [6u32, 5, 10] {
        // percpu_array, percpu_hash, lru_percpu_hash
        let steps: Vec<Step> = vec![
            (1, packet(2, UPDATE, 0, 7), Some(0)),
            (1, packet(2, LOOKUP, 0, 0), Some(7)),
            (0, packet(2, LOOKUP, 0, 0), None),
            (0, packet(2, UPDATE, 0, 3), Some(0)),
            (0, packet(2, LOOKUP, 0, 0), Some(3)),
            (1, packet(2, LOOKUP, 0, 0), Some(1007)),
            (1, packet(9, LOOKUP, 0, 0), Some(NULL)),
        ];
        let r = run_all(with_map(t, 4), &steps);
        if t == 6 {
            // Array slots exist on every CPU (zero until written).
            assert_eq!(r[2], 0);
        }
    }
}

/// A call site whose map depends on the packet (map 0 or map 1): the
/// verifier cannot pin it, so it stays generic; results still agree.
#[test]
fn call_site_with_a_varying_map_stays_generic_and_agrees() {
    let mut v = prologue();
    v.extend([
        A::Map(1, 0),
        A::J(0x15, 8, 0, 0, "lookup"),
        A::Map(1, 1),
        A::L("lookup"),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -4),
        i(0x85, 0, 0, 0, 1),
        A::J(0x15, 0, 0, 0, "null"),
        i(0x79, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    v.extend(epilogue());
    let insns = assemble(&v);
    let obj = || {
        object(
            insns.clone(),
            vec![map("a", 2, 4, 8, 4), map("h", 1, 4, 8, 4)],
        )
    };
    let steps: Vec<Step> = vec![
        (0, packet(1, 0, 0, 0), Some(0)),
        (0, packet(9, 0, 0, 0), Some(NULL)),
        (0, packet(1, 1, 0, 0), Some(NULL)),
    ];
    run_all(obj, &steps);
}

/// `array_of_maps`: the outer lookup and the inner lookup (an inner map the
/// verifier only knows by its template) stay generic; results agree.
#[test]
fn map_in_map_inner_lookups_agree() {
    let mut v = prologue();
    v.extend([
        // outer lookup with key 0
        i(0x62, 10, 0, -8, 0),
        A::Map(1, 0),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -8),
        i(0x85, 0, 0, 0, 1),
        A::J(0x15, 0, 0, 0, "null"),
        // inner lookup with the packet's key
        i(0xbf, 1, 0, 0, 0),
        i(0xbf, 2, 10, 0, 0),
        i(0x07, 2, 0, 0, -4),
        i(0x85, 0, 0, 0, 1),
        A::J(0x15, 0, 0, 0, "null"),
        i(0x79, 0, 0, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ]);
    v.extend(epilogue());
    let insns = assemble(&v);
    let mut results = Vec::new();
    for mode in MODES {
        let rt = runtime(mode);
        let mut outer = map("outer", 12, 4, 4, 2);
        outer.inner = Some(Box::new(map("inner", 2, 4, 8, 4)));
        let o = rt.load_parsed(object(insns.clone(), vec![outer])).unwrap();
        let p = o.program("p").unwrap();
        let before = p.run_xdp(&packet(1, 0, 0, 0)).unwrap().r0;
        assert_eq!(before, NULL, "{mode:?}: empty outer slot");
        let inner = cordon_runtime::Map::create(
            &cordon_runtime::MapDef::new(cordon_runtime::MapType::Array, 4, 8, 4),
            2,
        )
        .unwrap();
        inner
            .update_value(&1u32.to_ne_bytes(), &77u64.to_ne_bytes(), 0)
            .unwrap();
        let outer = o.map_handle("outer").unwrap();
        outer
            .update_inner_map(&0u32.to_ne_bytes(), &inner, 0)
            .unwrap();
        let r: Vec<u64> = [1u32, 0, 4]
            .iter()
            .map(|&k| p.run_xdp(&packet(k, 0, 0, 0)).unwrap().r0)
            .collect();
        assert_eq!(r, vec![77, 0, NULL], "{mode:?}");
        results.push(r);
    }
}

/// `bpf_ktime_get_ns`, `bpf_get_prandom_u32` and `bpf_get_smp_processor_id`
/// (direct calls when verified): sane values, the CPU the host set.
#[test]
fn cheap_helpers() {
    let v = vec![
        i(0x85, 0, 0, 0, 5), // ktime
        i(0xbf, 6, 0, 0, 0),
        i(0x85, 0, 0, 0, 5),
        i(0x1f, 0, 6, 0, 0), // r0 -= r6 (>= 0: monotonic)
        i(0xbf, 6, 0, 0, 0),
        i(0x85, 0, 0, 0, 7), // prandom: 32 bits
        i(0x77, 0, 0, 0, 32),
        i(0x4f, 6, 0, 0, 0), // r6 |= r0 >> 32 (0)
        i(0x85, 0, 0, 0, 8), // cpu
        i(0x67, 0, 0, 0, 48),
        i(0x4f, 0, 6, 0, 0),
        i(0x95, 0, 0, 0, 0),
    ];
    let insns = assemble(&v);
    for mode in MODES {
        let rt = runtime(mode);
        let o = rt.load_parsed(object(insns.clone(), vec![])).unwrap();
        let p = o.program("p").unwrap();
        for cpu in [0u32, 1] {
            set_cpu(cpu);
            let r = p.run_xdp(&[0u8; 64]).unwrap().r0;
            assert_eq!(r >> 48, cpu as u64, "{mode:?}");
            assert!(r & 0xffff_ffff_ffff < 1_000_000_000, "{mode:?}: {r:#x}");
        }
    }
}
