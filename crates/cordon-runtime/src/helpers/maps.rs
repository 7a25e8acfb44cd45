//! Map helpers: lookup/update/delete, queue/stack, ring buffer, percpu lookup.

use std::collections::BTreeSet;

use cordon_exec::{Abort, CallSiteError, CallSites, CallSpec, DirectFn, HelperResult, RunContext};
use cordon_isa::{Kind, Program};
use cordon_verifier::proto::helper as id;
use cordon_verifier::{CallMap, VerifiedFacts};

use super::{HelperImpl, check_mem, ext_arg, extra_ids, h, map_arg, neg};
use crate::loader::ObjMap;
use crate::maps::{Map, MapType, errno};
use crate::state::with_inv;

pub(super) fn helpers() -> Vec<(u32, HelperImpl)> {
    vec![
        (id::MAP_LOOKUP_ELEM, h(lookup)),
        (id::MAP_UPDATE_ELEM, h(update)),
        (id::MAP_DELETE_ELEM, h(delete)),
        (id::MAP_PUSH_ELEM, h(push)),
        (id::MAP_POP_ELEM, h(|c, a| pop_peek(c, a, false))),
        (id::MAP_PEEK_ELEM, h(|c, a| pop_peek(c, a, true))),
        (extra_ids::MAP_LOOKUP_PERCPU_ELEM, h(lookup_percpu)),
        (id::RINGBUF_OUTPUT, h(ringbuf_output)),
        (id::RINGBUF_RESERVE, h(ringbuf_reserve)),
        (id::RINGBUF_SUBMIT, h(|c, a| ringbuf_finish(c, a, true))),
        (id::RINGBUF_DISCARD, h(|c, a| ringbuf_finish(c, a, false))),
        (id::RINGBUF_QUERY, h(ringbuf_query)),
        (id::PERF_EVENT_OUTPUT, h(perf_event_output)),
    ]
}

/// Bytes of a value as the program sees it.
fn value_size(m: &Map) -> u64 {
    m.value_size() as u64
}

/// After a lookup in checked mode: let the program use what it got.
fn grant_result(ctx: &mut RunContext<'_>, m: &Map, p: *mut u8) -> Result<(), Abort> {
    if p.is_null() || !ctx.is_checked() {
        return Ok(());
    }
    if m.map_type().is_map_of_maps() {
        with_inv(|inv| {
            inv.known_maps.push(p as u64);
            Ok(())
        })
    } else {
        let writable = m.def().flags & crate::maps::flags::BPF_F_RDONLY_PROG == 0;
        // SAFETY: map values stay valid while the map lives; the program holds the
        // map (or, for inner maps, the run holds an epoch guard).
        unsafe { ctx.grant(p as u64, value_size(m), writable) };
        Ok(())
    }
}

fn lookup(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    if let Some(e) = ext_arg(ctx, a[0])? {
        check_mem(ctx, a[1], e.key_size() as u64, false)?;
        // SAFETY: key checked or verified.
        let p = unsafe { e.lookup(a[1] as *const u8) };
        if !p.is_null() && ctx.is_checked() {
            // SAFETY: LPM values are freed only after an epoch grace period.
            unsafe { ctx.grant(p as u64, e.value_size() as u64, true) };
        }
        return Ok(p as u64);
    }
    let m = map_arg(ctx, a[0])?;
    check_mem(ctx, a[1], m.key_size() as u64, false)?;
    if ctx.is_checked() && !supports_lookup(m) {
        return Ok(0);
    }
    // SAFETY: key checked (checked mode) or verified.
    let p = unsafe { m.lookup(a[1] as *const u8) };
    grant_result(ctx, m, p)?;
    Ok(p as u64)
}

fn supports_lookup(m: &Map) -> bool {
    !matches!(
        m.map_type(),
        MapType::RingBuf | MapType::Queue | MapType::Stack | MapType::ProgArray
    )
}

fn lookup_percpu(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let m = map_arg(ctx, a[0])?;
    check_mem(ctx, a[1], m.key_size() as u64, false)?;
    if a[2] > u32::MAX as u64 {
        return Ok(0);
    }
    // SAFETY: key checked or verified.
    let p = unsafe { m.lookup_percpu_elem(a[1] as *const u8, a[2] as u32) };
    grant_result(ctx, m, p)?;
    Ok(p as u64)
}

fn update(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    if let Some(e) = ext_arg(ctx, a[0])? {
        check_mem(ctx, a[1], e.key_size() as u64, false)?;
        check_mem(ctx, a[2], e.value_size() as u64, false)?;
        // SAFETY: checked or verified.
        return Ok(unsafe { e.update(a[1] as *const u8, a[2] as *const u8, a[3]) } as u64);
    }
    let m = map_arg(ctx, a[0])?;
    check_mem(ctx, a[1], m.key_size() as u64, false)?;
    if ctx.is_checked() && (m.map_type().is_map_of_maps() || m.map_type() == MapType::ProgArray) {
        // Linux: programs cannot update fd maps.
        return Ok(neg(errno::EOPNOTSUPP));
    }
    check_mem(ctx, a[2], value_size(m), false)?;
    // SAFETY: key and value checked or verified.
    Ok(unsafe { m.update(a[1] as *const u8, a[2] as *const u8, a[3]) } as u64)
}

fn delete(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    if let Some(e) = ext_arg(ctx, a[0])? {
        check_mem(ctx, a[1], e.key_size() as u64, false)?;
        // SAFETY: checked or verified.
        return Ok(unsafe { e.delete(a[1] as *const u8) } as u64);
    }
    let m = map_arg(ctx, a[0])?;
    check_mem(ctx, a[1], m.key_size() as u64, false)?;
    // SAFETY: key checked or verified.
    Ok(unsafe { m.delete(a[1] as *const u8) } as u64)
}

fn push(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    if let Some(e) = ext_arg(ctx, a[0])? {
        check_mem(ctx, a[1], e.value_size() as u64, false)?;
        // SAFETY: checked or verified.
        return Ok(unsafe { e.push(a[1] as *const u8, a[2]) } as u64);
    }
    let m = map_arg(ctx, a[0])?;
    check_mem(ctx, a[1], value_size(m), false)?;
    // SAFETY: value checked or verified.
    Ok(unsafe { m.push(a[1] as *const u8, a[2]) } as u64)
}

fn pop_peek(ctx: &mut RunContext<'_>, a: [u64; 5], peek: bool) -> HelperResult {
    if let Some(e) = ext_arg(ctx, a[0])? {
        check_mem(ctx, a[1], e.value_size() as u64, false)?;
        if !peek {
            return Ok(neg(errno::EOPNOTSUPP));
        }
        // SAFETY: checked or verified.
        return Ok(unsafe { e.peek(a[1] as *const u8) } as u64);
    }
    let m = map_arg(ctx, a[0])?;
    check_mem(ctx, a[1], value_size(m), true)?;
    // SAFETY: value checked or verified.
    let r = unsafe {
        if peek {
            m.peek(a[1] as *mut u8)
        } else {
            m.pop(a[1] as *mut u8)
        }
    };
    Ok(r as u64)
}

fn ringbuf_output(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let m = map_arg(ctx, a[0])?;
    check_mem(ctx, a[1], a[2], false)?;
    // SAFETY: data checked or verified.
    Ok(unsafe { m.ringbuf_output(a[1] as *const u8, a[2], a[3]) } as u64)
}

fn ringbuf_reserve(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let m = map_arg(ctx, a[0])?;
    let p = m.ringbuf_reserve(a[1], a[2]);
    if !p.is_null() && ctx.is_checked() {
        with_inv(|inv| {
            inv.reserved.push(p as u64);
            Ok(())
        })?;
        // SAFETY: the record stays valid until submitted or discarded.
        unsafe { ctx.grant(p as u64, a[1], true) };
    }
    Ok(p as u64)
}

fn ringbuf_finish(ctx: &mut RunContext<'_>, a: [u64; 5], submit: bool) -> HelperResult {
    if ctx.is_checked() {
        with_inv(|inv| match inv.reserved.iter().position(|&r| r == a[0]) {
            Some(i) => {
                inv.reserved.swap_remove(i);
                Ok(())
            }
            None => Err(Abort::Fault(format!(
                "{:#x} is not a ring buffer record this run reserved",
                a[0]
            ))),
        })?;
    }
    // SAFETY: a record from ringbuf_reserve, finished once (verified or tracked).
    unsafe {
        if submit {
            crate::maps::ringbuf_submit(a[0] as *mut u8, a[1]);
        } else {
            crate::maps::ringbuf_discard(a[0] as *mut u8, a[1]);
        }
    }
    Ok(0)
}

fn ringbuf_query(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let m = map_arg(ctx, a[0])?;
    Ok(m.ringbuf_query(a[1]))
}

/// `bpf_perf_event_output`: Cordon has no perf events; Linux returns `-ENOENT`
/// for a perf_event_array slot without an event (and `-EINVAL` for bad flags).
fn perf_event_output(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    match ext_arg(ctx, a[1])? {
        Some(e) if e.map_type() == crate::extmaps::PERF_EVENT_ARRAY => {}
        _ => {
            return Err(Abort::Fault(
                "bpf_perf_event_output needs a perf_event_array".into(),
            ));
        }
    }
    check_mem(ctx, a[3], a[4], false)?;
    const BPF_F_INDEX_MASK: u64 = 0xffff_ffff;
    const BPF_F_CTXLEN_MASK: u64 = 0xfffff << 32;
    if a[2] & !(BPF_F_INDEX_MASK | BPF_F_CTXLEN_MASK) != 0 {
        return Ok(neg(errno::EINVAL));
    }
    Ok(neg(errno::ENOENT))
}

// ----- call-site specialisation ------------------------------------------------

/// The call sites of a verified program that can bypass the generic helper
/// dispatch, as Linux's `do_misc_fixups` does: `bpf_map_lookup_elem` /
/// `update_elem` / `delete_elem` on a map the verifier proved constant at the
/// site (`facts.call_maps`) become inline array lookups or direct calls of the
/// map's table ([`Map::specialised_lookup`] and friends), and
/// `bpf_ktime_get_ns`, `bpf_get_prandom_u32` and `bpf_get_smp_processor_id`
/// become direct calls. Everything else stays generic: sites whose map varies,
/// inner maps of map-in-map lookups (their verifier map index is an inner-map
/// template, past the object's maps), extension maps, maps of maps, and calls
/// the loader rewrote.
///
/// `program` is the final (rewritten) program and `new_pc[i]` the index in it
/// of instruction `i` of the verified one. The table keeps every map it points
/// into alive.
pub(crate) fn call_sites(
    program: &Program,
    facts: &VerifiedFacts,
    new_pc: &[usize],
    maps: &[ObjMap],
) -> Result<CallSites, CallSiteError> {
    let mut b = CallSites::builder(program);
    let mut held = BTreeSet::new();
    for (&pc, cm) in &facts.call_maps {
        let CallMap::Const { map, .. } = *cm else {
            continue;
        };
        let Some(ObjMap::Core(m)) = maps.get(map as usize) else {
            continue;
        };
        // The instruction must still be the one call it was (not expanded by
        // a rewrite).
        let (Some(&at), Some(&next)) = (new_pc.get(pc), new_pc.get(pc + 1)) else {
            continue;
        };
        if next != at + 1 {
            continue;
        }
        let Some(Kind::CallHelper { id: helper }) = program.kind(at) else {
            continue;
        };
        let spec = match u32::try_from(helper) {
            Ok(id::MAP_LOOKUP_ELEM) => m.specialised_lookup(),
            Ok(id::MAP_UPDATE_ELEM) => m.specialised_update(),
            Ok(id::MAP_DELETE_ELEM) => m.specialised_delete(),
            _ => None,
        };
        if let Some(spec) = spec {
            // SAFETY: the verifier proved this call's map is `m` on every path
            // and that r2 (and r3 for updates) point at key (value) memory of
            // the map's sizes; the specs call exactly what the generic helper
            // calls in trusted mode; the table holds `m`.
            unsafe { b.specialise(at, spec)? };
            if held.insert(map) {
                b.keep_alive(m.clone());
            }
        }
    }
    for at in 0..program.len() {
        let Some(Kind::CallHelper { id: helper }) = program.kind(at) else {
            continue;
        };
        let func: unsafe extern "C" fn() -> u64 = match u32::try_from(helper) {
            Ok(id::KTIME_GET_NS) => fast_ktime_get_ns,
            Ok(id::GET_PRANDOM_U32) => fast_get_prandom_u32,
            Ok(id::GET_SMP_PROCESSOR_ID) => fast_get_smp_processor_id,
            _ => continue,
        };
        let spec = CallSpec::Direct {
            func: DirectFn::A0(func),
            bind: None,
        };
        // SAFETY: the functions take no argument and are the helpers' bodies.
        unsafe { b.specialise(at, spec)? };
    }
    Ok(b.build())
}

/// `bpf_ktime_get_ns`, direct.
pub(super) extern "C" fn fast_ktime_get_ns() -> u64 {
    super::clock_ns(libc::CLOCK_MONOTONIC)
}

/// `bpf_get_prandom_u32`, direct.
pub(super) extern "C" fn fast_get_prandom_u32() -> u64 {
    super::prandom_u32() as u64
}

/// `bpf_get_smp_processor_id`, direct.
pub(super) extern "C" fn fast_get_smp_processor_id() -> u64 {
    crate::maps::current_cpu() as u64
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use cordon_exec::CallSpec;
    use cordon_isa::{Insn, Program};
    use cordon_verifier::{CallMap, VerifiedFacts};

    use super::*;
    use crate::extmaps::{ExtMap, ExtMapDef, LPM_TRIE};
    use crate::maps::{MapDef, flags::BPF_F_RDONLY_PROG};

    fn call(id: i32) -> Insn {
        Insn::new(0x85, 0, 0, 0, id)
    }

    fn maps() -> Vec<ObjMap> {
        let core = |t, k, v, n, f| {
            ObjMap::Core(Map::create(&MapDef::new(t, k, v, n).with_flags(f), 2).unwrap())
        };
        let mut array_of_maps = MapDef::new(MapType::ArrayOfMaps, 4, 4, 2);
        array_of_maps.inner = Some(Box::new(MapDef::new(MapType::Array, 4, 8, 4)));
        vec![
            core(MapType::Array, 4, 8, 4, 0),                      // 0
            core(MapType::Hash, 4, 8, 4, 0),                       // 1
            core(MapType::PercpuArray, 4, 8, 4, 0),                // 2
            ObjMap::Core(Map::create(&array_of_maps, 2).unwrap()), // 3
            ObjMap::Ext(
                ExtMap::create(
                    &ExtMapDef {
                        name: "lpm",
                        map_type: LPM_TRIE,
                        key_size: 8,
                        value_size: 8,
                        max_entries: 4,
                        flags: crate::maps::flags::BPF_F_NO_PREALLOC,
                        map_extra: 0,
                    },
                    1,
                )
                .unwrap(),
            ), // 4
            core(MapType::Array, 4, 8, 4, BPF_F_RDONLY_PROG),      // 5
            core(MapType::Queue, 0, 8, 4, 0),                      // 6
        ]
    }

    fn sites(insns: Vec<Insn>, call_maps: &[(usize, CallMap)]) -> CallSites {
        let program = Program::new(insns).unwrap();
        let facts = VerifiedFacts {
            call_maps: call_maps.iter().copied().collect::<BTreeMap<_, _>>(),
            ..VerifiedFacts::default()
        };
        let new_pc: Vec<usize> = (0..=program.len()).collect();
        call_sites(&program, &facts, &new_pc, &maps()).unwrap()
    }

    fn c(map: u32) -> CallMap {
        CallMap::Const { map, key: None }
    }

    #[test]
    fn which_sites_are_specialised() {
        let insns = vec![
            call(1),  // 0: array lookup -> inline
            call(1),  // 1: hash lookup -> direct
            call(2),  // 2: hash update -> direct
            call(3),  // 3: hash delete -> direct
            call(1),  // 4: percpu array lookup -> direct
            call(3),  // 5: array delete -> generic (EINVAL)
            call(1),  // 6: varying map -> generic
            call(1),  // 7: inner-map template (index past the maps) -> generic
            call(1),  // 8: array_of_maps lookup -> generic
            call(1),  // 9: extension map -> generic
            call(2),  // 10: RDONLY_PROG array update -> generic
            call(1),  // 11: RDONLY_PROG array lookup -> inline
            call(5),  // 12: ktime_get_ns -> direct
            call(7),  // 13: get_prandom_u32 -> direct
            call(8),  // 14: get_smp_processor_id -> direct
            call(87), // 15: queue push -> generic
            call(1),  // 16: lookup with no verifier fact -> generic
            Insn::new(0x95, 0, 0, 0, 0),
        ];
        let s = sites(
            insns,
            &[
                (0, c(0)),
                (1, c(1)),
                (2, c(1)),
                (3, c(1)),
                (4, c(2)),
                (5, c(0)),
                (6, CallMap::Varies),
                (7, c(7)),
                (8, c(3)),
                (9, c(4)),
                (10, c(5)),
                (11, c(5)),
                (15, c(6)),
            ],
        );
        let kind = |pc| match s.get(pc) {
            None => "generic",
            Some(CallSpec::ArrayLookup { .. }) => "inline",
            Some(CallSpec::Direct { .. }) => "direct",
        };
        let got: Vec<&str> = (0..17).map(kind).collect();
        assert_eq!(
            got,
            [
                "inline", "direct", "direct", "direct", "direct", "generic", "generic", "generic",
                "generic", "generic", "generic", "inline", "direct", "direct", "direct", "generic",
                "generic"
            ]
        );
        let Some(CallSpec::ArrayLookup {
            elem_size,
            max_entries,
            ..
        }) = s.get(0)
        else {
            unreachable!()
        };
        assert_eq!((elem_size, max_entries), (8, 4));
    }

    #[test]
    fn rewritten_calls_stay_generic() {
        // The verified program's call at 1 became a 3-instruction sequence
        // (as tail calls are rewritten); its fact must not be applied to
        // whatever instruction is now at its new index.
        let insns = vec![
            call(1),
            call(1),
            Insn::new(0xb7, 0, 0, 0, 0),
            call(1),
            Insn::new(0x95, 0, 0, 0, 0),
        ];
        let program = Program::new(insns).unwrap();
        let facts = VerifiedFacts {
            call_maps: [(0, c(0)), (1, c(0)), (2, c(0))].into_iter().collect(),
            ..VerifiedFacts::default()
        };
        // Old 0 -> 0, old 1 -> 1..=3 (expanded), old 2 -> 4 (exit).
        let new_pc = vec![0, 1, 4, 5];
        let s = call_sites(&program, &facts, &new_pc, &maps()).unwrap();
        assert!(s.get(0).is_some());
        assert!(s.get(1).is_none());
        assert!(s.get(3).is_none());
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn tables_hold_their_maps() {
        let m = maps();
        let ObjMap::Core(array) = &m[0] else {
            unreachable!()
        };
        let before = std::sync::Arc::strong_count(array);
        let program = Program::new(vec![call(1), call(2), Insn::new(0x95, 0, 0, 0, 0)]).unwrap();
        let facts = VerifiedFacts {
            call_maps: [(0, c(0)), (1, c(0))].into_iter().collect(),
            ..VerifiedFacts::default()
        };
        let s = call_sites(&program, &facts, &[0, 1, 2, 3], &m).unwrap();
        assert_eq!(s.len(), 2);
        // One reference however many sites use the map.
        assert_eq!(std::sync::Arc::strong_count(array), before + 1);
        drop(s);
        assert_eq!(std::sync::Arc::strong_count(array), before);
    }
}
