//! Map helpers: lookup/update/delete, queue/stack, ring buffer, percpu lookup.

use cordon_exec::{Abort, HelperResult, RunContext};
use cordon_verifier::proto::helper as id;

use super::{HelperImpl, check_mem, ext_arg, extra_ids, h, map_arg, neg};
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
