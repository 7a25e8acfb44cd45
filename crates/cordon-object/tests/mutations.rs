//! Property test: corrupted and truncated real objects never panic, and a
//! parse that succeeds always yields programs that validate.

mod common;

use std::sync::OnceLock;

use common::{all_objects, read_obj, sections};
use cordon_object::Object;
use proptest::prelude::*;

/// `(start, len)` byte ranges worth corrupting.
type Ranges = Vec<(usize, usize)>;

struct Corpus {
    /// (bytes, interesting byte ranges: headers, symbols, relocations, BTF, code, maps)
    objects: Vec<(Vec<u8>, Ranges)>,
}

fn corpus() -> &'static Corpus {
    static C: OnceLock<Corpus> = OnceLock::new();
    C.get_or_init(|| {
        let objects = all_objects()
            .iter()
            .map(|n| {
                let b = read_obj(n);
                let mut ranges = vec![(0, 64)];
                let shoff = u64::from_le_bytes(b[0x28..0x30].try_into().unwrap()) as usize;
                let shnum = u16::from_le_bytes(b[0x3c..0x3e].try_into().unwrap()) as usize;
                ranges.push((shoff, shnum * 64));
                for (name, s) in sections(&b) {
                    let debug = name.starts_with(".debug") || name.starts_with(".rel.debug");
                    if !debug && s.size > 0 && s.sh_type != 8 {
                        ranges.push((s.offset, s.size));
                    }
                }
                (b, ranges)
            })
            .collect();
        Corpus { objects }
    })
}

fn check(bytes: &[u8]) {
    if let Ok(obj) = Object::parse(bytes) {
        for p in &obj.programs {
            assert!(
                p.program().is_ok(),
                "accepted program {} must validate",
                p.name
            );
            for r in &p.relocations {
                assert!(r.insn < p.insns.len());
            }
        }
        let _ = obj.to_string();
        if let Some(btf) = &obj.btf {
            // Whatever BTF was accepted re-encodes to itself, sanitized or not.
            // (The string table may grow: names pointing into the middle of
            // another string are appended as strings of their own.)
            let again = cordon_object::Btf::parse(&btf.to_bytes()).expect("re-encoded BTF parses");
            assert!(
                again.types().eq(btf.types()),
                "re-encoded BTF has the same types"
            );
            assert!(cordon_object::Btf::parse(&btf.for_kernel().to_bytes()).is_ok());
        }
    }
}

proptest! {
    // CORDON_OBJECT_CASES=200000 for a deeper run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("CORDON_OBJECT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_objects_never_panic(
        which in any::<prop::sample::Index>(),
        muts in prop::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>(), 0u8..4),
            1..8,
        ),
    ) {
        let c = corpus();
        let (orig, ranges) = &c.objects[which.index(c.objects.len())];
        let mut b = orig.clone();
        for (r, at, v, mode) in muts {
            let (start, len) = ranges[r.index(ranges.len())];
            let i = start + at.index(len.max(1));
            if i >= b.len() {
                continue;
            }
            match mode {
                // single byte
                0 => b[i] = v,
                // bit flip
                1 => b[i] ^= 1 << (v % 8),
                // 32-bit word set to an edge value
                2 => {
                    let word: u32 = match v % 4 { 0 => 0, 1 => u32::MAX, 2 => 1, _ => v as u32 * 8 };
                    let end = (i + 4).min(b.len());
                    b[i..end].copy_from_slice(&word.to_le_bytes()[..end - i]);
                }
                // small increment (offsets, ids, sizes)
                _ => b[i] = b[i].wrapping_add(1 + v % 8),
            }
        }
        check(&b);
    }

    #[test]
    fn truncated_objects_never_panic(which in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let c = corpus();
        let (orig, _) = &c.objects[which.index(c.objects.len())];
        let len = cut.index(orig.len());
        check(&orig[..len]);
    }
}
