//! Facts the runtime consumes: context accesses (for rewriting them like
//! Linux's convert_ctx_accesses), frames per subprogram, map arguments of
//! helper call sites.

mod common;
use common::*;
use cordon_verifier::{CallMap, CtxAccess, CtxField};

#[test]
fn xdp_packet_pointer_loads_are_recorded() {
    let f = accept(
        &xdp(),
        "r2 = *(u32 *)(r1 +0)\nr3 = *(u32 *)(r1 +4)\nr4 = *(u32 *)(r1 +12)\nr0 = 2\nexit",
    );
    assert_eq!(
        f.ctx_accesses.get(&0),
        Some(&CtxAccess {
            off: 0,
            size: 4,
            write: false,
            field: CtxField::PktData
        })
    );
    assert_eq!(f.ctx_accesses[&1].field, CtxField::PktEnd);
    assert_eq!(f.ctx_accesses[&2].field, CtxField::Scalar);
    assert_eq!(f.ctx_accesses[&2].off, 12);
    assert_eq!(f.ctx_accesses.len(), 3);
}

#[test]
fn skb_reads_and_writes_are_recorded() {
    let f = accept(
        &tc(),
        "r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\nr4 = *(u16 *)(r1 +0)\n\
         *(u32 *)(r1 +8) = 7\nr5 = 1\n*(u32 *)(r1 +48) = r5\nr0 = *(u32 *)(r1 +140)\nr0 = 0\nexit",
    );
    assert_eq!(f.ctx_accesses[&0].field, CtxField::PktData);
    assert_eq!(f.ctx_accesses[&1].field, CtxField::PktEnd);
    assert_eq!(
        f.ctx_accesses[&2],
        CtxAccess {
            off: 0,
            size: 2,
            write: false,
            field: CtxField::Scalar
        }
    );
    assert!(f.ctx_accesses[&3].write && f.ctx_accesses[&3].off == 8);
    assert!(f.ctx_accesses[&5].write && f.ctx_accesses[&5].off == 48);
    assert_eq!(f.ctx_accesses[&6].field, CtxField::PktMeta);
    // Stack and other accesses are not context accesses.
    let g = accept(
        &tc(),
        "*(u64 *)(r10 -8) = 0\nr0 = *(u64 *)(r10 -8)\nr0 = 0\nexit",
    );
    assert!(g.ctx_accesses.is_empty());
}

#[test]
fn ctx_access_through_subprogram_and_spill() {
    let f = accept(
        &xdp(),
        "*(u64 *)(r10 -8) = r1\ncall f\nr1 = *(u64 *)(r10 -8)\nr0 = *(u32 *)(r1 +16)\nr0 = 2\nexit\n\
         f: r0 = *(u32 *)(r1 +12)\nexit",
    );
    assert_eq!(f.ctx_accesses[&3].off, 16);
    assert_eq!(f.ctx_accesses[&6].off, 12);
    assert!(!f.ctx_accesses.contains_key(&0), "spill is a stack access");
}

#[test]
fn same_insn_with_ctx_and_stack_pointer_rejected() {
    // One load reads the context on one path and the stack on the other:
    // it could not be rewritten, Linux refuses it.
    let text = "r6 = r1\ncall bpf_get_prandom_u32#7\n*(u64 *)(r10 -8) = 0\nif r0 == 0 goto l\nr6 = r10\n\
                r6 += -8\nl: r0 = *(u32 *)(r6 +0)\nr0 = 0\nexit";
    reject(
        &sock(),
        text,
        "same insn cannot be used with different pointers",
    );
    // Stack on one path and map value on the other is fine.
    let ok = "*(u64 *)(r10 -8) = 0\nr6 = r10\nr6 += -8\n*(u32 *)(r10 -12) = 0\nr2 = r10\nr2 += -12\n\
              r1 = map[idx:1]\ncall bpf_map_lookup_elem#1\nif r0 == 0 goto l\nr6 = r0\n\
              l: r0 = *(u32 *)(r6 +0)\nr0 = 0\nexit";
    accept(&sock(), ok);
}

#[test]
fn subprogram_frames_for_the_engine() {
    let f = accept(
        &sock(),
        "*(u64 *)(r10 -24) = 0\ncall f\ncall g\nr0 = 0\nexit\n\
         f: *(u64 *)(r10 -40) = 0\nr0 = 0\nexit\ng: r0 = 0\nexit",
    );
    assert_eq!(f.subprog_frames(), vec![(0, 24), (5, 40), (8, 0)]);
    assert_eq!(f.frame_size(5), Some(40));
    assert_eq!(f.frame_size(6), None);
}

const LOOKUP: &str = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\n";

#[test]
fn constant_map_and_key_at_call_sites() {
    let f = accept(
        &sock(),
        &format!("{LOOKUP}r1 = map[idx:1]\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit"),
    );
    assert_eq!(
        f.call_maps.get(&5),
        Some(&CallMap::Const {
            map: 1,
            key: Some(0)
        })
    );
    // Hash maps: the map is known, the key is not tracked.
    let f = accept(
        &sock(),
        &format!("{LOOKUP}r1 = map[idx:0]\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit"),
    );
    assert_eq!(f.call_maps[&5], CallMap::Const { map: 0, key: None });
    // Helpers without a map argument have no entry.
    let f = accept(&sock(), "call bpf_get_prandom_u32#7\nr0 = 0\nexit");
    assert!(f.call_maps.is_empty());
}

#[test]
fn map_or_key_differing_across_paths() {
    // Two arrays chosen by a branch: the call site varies.
    let mut e = sock();
    e.maps[0] = cordon_verifier::MapInfo::new("a0", cordon_verifier::MapType::Array, 4, 8, 4);
    let f = accept(
        &e,
        &format!(
            "{LOOKUP}call bpf_get_prandom_u32#7\nr2 = r10\nr2 += -4\nr1 = map[idx:0]\n\
             if r0 == 0 goto l\nr1 = map[idx:1]\nl: call bpf_map_lookup_elem#1\nr0 = 0\nexit"
        ),
    );
    assert_eq!(f.call_maps[&11], CallMap::Varies);
    // Same array, two keys: the map is constant, the key is not.
    let f = accept(
        &sock(),
        "*(u32 *)(r10 -4) = 0\ncall bpf_get_prandom_u32#7\nif r0 == 0 goto l\n*(u32 *)(r10 -4) = 1\n\
         l: r2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit",
    );
    assert_eq!(f.call_maps[&8], CallMap::Const { map: 1, key: None });
}
