//! XDP helpers that see the whole (possibly multi-buffer) packet, with
//! Linux's semantics (`net/core/filter.c`): `bpf_xdp_get_buff_len`,
//! `bpf_xdp_load_bytes`, `bpf_xdp_store_bytes`, `bpf_xdp_adjust_tail` and the
//! `bpf_xdp_pull_data` kfunc.
//!
//! A packet is its linear part (`data..data_end`) followed by the fragments
//! of its [`XdpFrags`]. Offsets count from `data`; metadata is not part of it.

use cordon_exec::{Abort, HelperResult, RunContext};
use cordon_verifier::proto::helper as id;

use super::{HelperImpl, KfuncFn, check_mem, extra_ids, h, neg};
use crate::ctx::{ETH_HLEN, FRAG_PAGE_SIZE, XDP_FRAME_STRUCT, XdpCtx, XdpFrags};
use crate::maps::errno::EINVAL;
use crate::state::{CtxKind, with_inv};

const EFAULT: i32 = 14;

pub(super) fn helpers() -> Vec<(u32, HelperImpl)> {
    vec![
        (id::XDP_ADJUST_TAIL, h(xdp_adjust_tail)),
        (extra_ids::XDP_LOAD_BYTES, h(|c, a| xdp_bytes(c, a, false))),
        (extra_ids::XDP_STORE_BYTES, h(|c, a| xdp_bytes(c, a, true))),
        (extra_ids::XDP_GET_BUFF_LEN, h(xdp_get_buff_len)),
    ]
}

/// XDP kfuncs by name (`bpf_xdp_pull_data`).
pub fn kfuncs() -> Vec<(&'static str, KfuncFn)> {
    vec![(
        cordon_verifier::proto::kfunc::XDP_PULL_DATA,
        h(xdp_pull_data),
    )]
}

/// The XDP context of the run (the argument must be it in checked mode) and
/// its fragments while the packet has any (`xdp_buff_has_frags`).
fn xdp_ctx<'a>(
    ctx: &RunContext<'_>,
    arg: u64,
) -> Result<(&'a mut XdpCtx, Option<&'a mut XdpFrags>), Abort> {
    let p = with_inv(|inv| {
        if inv.kind != CtxKind::Xdp || (ctx.is_checked() && arg != inv.ctx) {
            return Err(Abort::Fault(format!(
                "{arg:#x} is not the XDP context of this run"
            )));
        }
        Ok(inv.ctx)
    })?;
    // SAFETY: the run's backing XdpCtx, alive for the whole run.
    let x = unsafe { &mut *(p as *mut XdpCtx) };
    // SAFETY: the runtime sets `frags` to the run's XdpFrags (or 0), which
    // outlives the run; programs cannot write it (not in their context view).
    let frags = unsafe { x.frag_info() }.filter(|f| f.has_frags);
    Ok((x, frags))
}

/// `xdp_get_buff_len`: linear length plus fragment bytes.
fn buff_len(x: &XdpCtx, frags: Option<&XdpFrags>) -> u64 {
    (x.data_end - x.data) + frags.map_or(0, |f| f.size as u64)
}

fn xdp_get_buff_len(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (x, frags) = xdp_ctx(ctx, a[0])?;
    Ok(buff_len(x, frags.as_deref()))
}

/// `bpf_xdp_load_bytes` / `bpf_xdp_store_bytes`: `-EFAULT` for an offset or
/// length above 0xffff, `-EINVAL` past the end of the packet (fragments
/// included); the buffer is left untouched on error.
fn xdp_bytes(ctx: &mut RunContext<'_>, a: [u64; 5], store: bool) -> HelperResult {
    let (x, frags) = xdp_ctx(ctx, a[0])?;
    let (off, buf, len) = (a[1] as u32 as u64, a[2], a[3] as u32 as u64);
    check_mem(ctx, buf, len, !store)?;
    if off > 0xffff || len > 0xffff {
        return Ok(neg(EFAULT));
    }
    if off + len > buff_len(x, frags.as_deref()) {
        return Ok(neg(EINVAL));
    }
    // Walk the linear part, then the fragments, copying the overlap.
    let linear = (x.data, x.data_end - x.data);
    let segs = std::iter::once(linear).chain(frags.as_deref().into_iter().flat_map(|f| {
        f.live()
            .iter()
            .map(|g| (g.addr + g.off as u64, g.size as u64))
    }));
    let (mut off, mut done) = (off, 0u64);
    for (addr, size) in segs {
        if done == len {
            break;
        }
        if off >= size {
            off -= size;
            continue;
        }
        let n = (size - off).min(len - done);
        let (pkt, mem) = ((addr + off) as *mut u8, (buf + done) as *mut u8);
        // SAFETY: [pkt, pkt + n) lies in the linear part or a fragment page;
        // [mem, mem + n) is within the buffer the verifier (or check_mem)
        // allowed for `len` bytes.
        unsafe {
            if store {
                std::ptr::copy(mem as *const u8, pkt, n as usize);
            } else {
                std::ptr::copy(pkt as *const u8, mem, n as usize);
            }
        }
        done += n;
        off = 0;
    }
    Ok(0)
}

/// `bpf_xdp_adjust_tail`: a linear packet moves `data_end` (up to the
/// shared-info tailroom, down to 14 bytes after `data`); a multi-buffer packet
/// grows its last fragment into the rest of its page or shrinks from the
/// last fragment backwards, releasing fragments it empties (and the linear
/// part once none is left).
fn xdp_adjust_tail(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (x, frags) = xdp_ctx(ctx, a[0])?;
    let offset = a[1] as i32;
    if let Some(f) = frags {
        return Ok(if offset < 0 {
            frags_shrink(x, f, offset.wrapping_neg())
        } else {
            frags_grow(f, offset)
        });
    }
    let offset = offset as i64;
    let end = x.data_end as i64 + offset;
    if end > x.max_end as i64 || end < x.data as i64 + ETH_HLEN as i64 {
        return Ok(neg(EINVAL));
    }
    if offset > 0 {
        // SAFETY: [data_end, end) lies inside the frame, below the tailroom.
        unsafe { std::ptr::write_bytes(x.data_end as *mut u8, 0, offset as usize) };
    }
    let (meta, data) = (x.data_meta, x.data);
    x.set_pointers(meta, data, end as u64);
    Ok(0)
}

/// `bpf_xdp_frags_increase_tail`: only into the last fragment's page.
fn frags_grow(f: &mut XdpFrags, offset: i32) -> u64 {
    let Some(last) = f.nr.checked_sub(1).map(|i| &mut f.frags[i as usize]) else {
        return neg(EINVAL);
    };
    let tailroom = FRAG_PAGE_SIZE as i64 - last.size as i64 - last.off as i64;
    if offset as i64 > tailroom {
        return neg(EINVAL);
    }
    let end = last.addr + last.off as u64 + last.size as u64;
    // SAFETY: [end, end + offset) is inside the fragment's page (tailroom).
    unsafe { std::ptr::write_bytes(end as *mut u8, 0, offset as usize) };
    last.size += offset as u32;
    f.size += offset as u32;
    0
}

/// `bpf_xdp_frags_shrink_tail` (`offset` = bytes to remove; a wrapped
/// `-INT_MIN` stays negative and changes nothing, as in Linux).
fn frags_shrink(x: &mut XdpCtx, f: &mut XdpFrags, mut offset: i32) -> u64 {
    let len = ((x.data_end - x.data) + f.size as u64) as i64;
    if offset as i64 > len - ETH_HLEN as i64 {
        return neg(EINVAL);
    }
    let (mut freed_frags, mut freed_len) = (0u32, 0u32);
    let mut i = f.nr as usize;
    while i > 0 && offset > 0 {
        i -= 1;
        let frag = &mut f.frags[i];
        let shrink = (offset as u32).min(frag.size);
        freed_len += shrink;
        offset -= shrink as i32;
        if shrink == frag.size {
            freed_frags += 1;
            *frag = Default::default();
        } else {
            frag.size -= shrink;
        }
    }
    f.nr -= freed_frags;
    f.size -= freed_len;
    if f.nr == 0 {
        f.has_frags = false;
        let (meta, data) = (x.data_meta, x.data);
        x.set_pointers(meta, data, x.data_end - offset as u64);
    }
    0
}

/// `bpf_xdp_pull_data(ctx, len)`: makes the first `len` bytes of the packet
/// linear. Nothing to do when they already are; `-EINVAL` past the packet or
/// when the headroom (above the `xdp_frame`) and the tailroom (below the
/// shared info) cannot take them. Data and metadata move down into the
/// headroom only as far as the tailroom falls short; bytes are then taken
/// from the front of the fragments, releasing the ones emptied.
fn xdp_pull_data(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (x, frags) = xdp_ctx(ctx, a[0])?;
    let len = a[1] as u32 as u64;
    let data_len = x.data_end - x.data;
    if len <= data_len {
        return Ok(0);
    }
    let Some(f) = frags else {
        // Linear only: len exceeds the whole packet.
        return Ok(neg(EINVAL));
    };
    if len > buff_len(x, Some(&*f)) {
        return Ok(neg(EINVAL));
    }
    let start = x.data_meta;
    let headroom = start - (x.hard_start + XDP_FRAME_STRUCT as u64);
    let tailroom = x.max_end - x.data_end;
    let mut delta = len - data_len;
    if delta > tailroom + headroom {
        return Ok(neg(EINVAL));
    }
    let (mut meta, mut data, mut end) = (x.data_meta, x.data, x.data_end);
    if delta > tailroom {
        let shift = delta - tailroom;
        // SAFETY: [start - shift, end) lies in the frame: shift <= headroom.
        unsafe {
            std::ptr::copy(
                start as *const u8,
                (start - shift) as *mut u8,
                (end - start) as usize,
            )
        };
        (meta, data, end) = (meta - shift, data - shift, end - shift);
    }
    let mut freed = 0usize;
    let live = (f.nr as usize).min(f.frags.len());
    for frag in f.frags[..live].iter_mut() {
        if delta == 0 {
            break;
        }
        let n = delta.min(frag.size as u64);
        // SAFETY: the source is inside the fragment's page; the destination
        // [end, end + n) is below max_end (delta <= tailroom after the shift).
        unsafe {
            std::ptr::copy_nonoverlapping(
                (frag.addr + frag.off as u64) as *const u8,
                end as *mut u8,
                n as usize,
            )
        };
        end += n;
        f.size -= n as u32;
        delta -= n;
        frag.off += n as u32;
        frag.size -= n as u32;
        if frag.size == 0 {
            freed += 1;
        }
    }
    if freed > 0 {
        let nr = live;
        f.frags.copy_within(freed..nr, 0);
        for g in &mut f.frags[nr - freed..nr] {
            *g = Default::default();
        }
        f.nr -= freed as u32;
        if f.nr == 0 {
            f.has_frags = false;
        }
    }
    x.set_pointers(meta, data, end);
    Ok(0)
}
