//! Packet helpers: XDP head/tail/meta adjustment and byte access, skb byte
//! access and checksum helpers (redirects are in `redirect.rs`).

use cordon_exec::{Abort, HelperResult, RunContext};
use cordon_verifier::proto::helper as id;

use super::{HelperImpl, check_mem, extra_ids, h, neg};
use crate::ctx::{ETH_HLEN, SkbCtx, XDP_FRAME_STRUCT, XdpCtx, sk_buff};
use crate::maps::errno::EINVAL;
use crate::state::{CtxKind, with_inv};

pub(super) fn helpers() -> Vec<(u32, HelperImpl)> {
    vec![
        (id::XDP_ADJUST_HEAD, h(xdp_adjust_head)),
        (id::XDP_ADJUST_META, h(xdp_adjust_meta)),
        (id::SKB_LOAD_BYTES, h(skb_load_bytes)),
        (id::SKB_STORE_BYTES, h(skb_store_bytes)),
        (id::CSUM_DIFF, h(bpf_csum_diff)),
        (
            id::L3_CSUM_REPLACE,
            h(|c, a| csum_replace_helper(c, a, false)),
        ),
        (
            id::L4_CSUM_REPLACE,
            h(|c, a| csum_replace_helper(c, a, true)),
        ),
        (extra_ids::SKB_PULL_DATA, h(skb_pull_data)),
        (extra_ids::CSUM_UPDATE, h(csum_update)),
        (extra_ids::SET_HASH_INVALID, h(set_hash_invalid)),
        (extra_ids::SET_HASH, h(set_hash)),
    ]
}

const EFAULT: i32 = 14;
const EACCES: i32 = 13;

/// The XDP context of the run (the argument must be it in checked mode).
fn xdp<'a>(ctx: &RunContext<'_>, arg: u64) -> Result<&'a mut XdpCtx, Abort> {
    let p = with_inv(|inv| {
        if inv.kind != CtxKind::Xdp || (ctx.is_checked() && arg != inv.ctx) {
            return Err(Abort::Fault(format!(
                "{arg:#x} is not the XDP context of this run"
            )));
        }
        Ok(inv.ctx)
    })?;
    // SAFETY: the run's backing XdpCtx, alive for the whole run.
    Ok(unsafe { &mut *(p as *mut XdpCtx) })
}

fn skb<'a>(ctx: &RunContext<'_>, arg: u64) -> Result<&'a mut SkbCtx, Abort> {
    let p = with_inv(|inv| {
        if inv.kind != CtxKind::Skb || (ctx.is_checked() && arg != inv.ctx) {
            return Err(Abort::Fault(format!(
                "{arg:#x} is not the __sk_buff context of this run"
            )));
        }
        Ok(inv.ctx)
    })?;
    // SAFETY: the run's backing SkbCtx, alive for the whole run.
    Ok(unsafe { &mut *(p as *mut SkbCtx) })
}

fn xdp_adjust_head(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let x = xdp(ctx, a[0])?;
    let offset = a[1] as i32 as i64;
    let metalen = x.data - x.data_meta;
    let data_start = x.hard_start + XDP_FRAME_STRUCT as u64 + metalen;
    let data = x.data as i64 + offset;
    if data < data_start as i64 || data > x.data_end as i64 - ETH_HLEN as i64 {
        return Ok(neg(EINVAL));
    }
    let data = data as u64;
    let meta = (x.data_meta as i64 + offset) as u64;
    if metalen != 0 {
        // SAFETY: both ranges lie inside the frame.
        unsafe { std::ptr::copy(x.data_meta as *const u8, meta as *mut u8, metalen as usize) };
    }
    let end = x.data_end;
    x.set_pointers(meta, data, end);
    Ok(0)
}

fn xdp_adjust_meta(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let x = xdp(ctx, a[0])?;
    let offset = a[1] as i32 as i64;
    let frame_end = (x.hard_start + XDP_FRAME_STRUCT as u64) as i64;
    let meta = x.data_meta as i64 + offset;
    if meta < frame_end || meta > x.data as i64 {
        return Ok(neg(EINVAL));
    }
    let metalen = x.data as i64 - meta;
    // xdp_metalen_invalid: 4-byte aligned, at most what skb_shared_info's
    // u8 meta_len holds.
    if metalen % 4 != 0 || metalen > 255 {
        return Ok(neg(EACCES));
    }
    let (data, end) = (x.data, x.data_end);
    x.set_pointers(meta as u64, data, end);
    Ok(0)
}

fn skb_load_bytes(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let s = skb(ctx, a[0])?;
    let (off, to, len) = (a[1] as u32 as u64, a[2], a[3] as u32 as u64);
    check_mem(ctx, to, len, true)?;
    let plen = s.data_end - s.data;
    if off > i32::MAX as u64 || off > plen || len > plen - off {
        // SAFETY: `to` verified or checked for `len` bytes.
        unsafe { std::ptr::write_bytes(to as *mut u8, 0, len as usize) };
        return Ok(neg(EFAULT));
    }
    // SAFETY: packet range checked.
    unsafe { std::ptr::copy((s.data + off) as *const u8, to as *mut u8, len as usize) };
    Ok(0)
}

fn skb_store_bytes(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let s = skb(ctx, a[0])?;
    let (off, from, len, flags) = (a[1] as u32 as u64, a[2], a[3] as u32 as u64, a[4]);
    check_mem(ctx, from, len, false)?;
    const BPF_F_RECOMPUTE_CSUM: u64 = 1;
    const BPF_F_INVALIDATE_HASH: u64 = 2;
    if flags & !(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH) != 0 {
        return Ok(neg(EINVAL));
    }
    let plen = s.data_end - s.data;
    if off > 0xffff || off > plen || len > plen - off {
        return Ok(neg(EFAULT));
    }
    // SAFETY: packet range checked.
    unsafe { std::ptr::copy(from as *const u8, (s.data + off) as *mut u8, len as usize) };
    if flags & BPF_F_INVALIDATE_HASH != 0 {
        s.set_u32(sk_buff::HASH, 0);
        with_inv(|inv| {
            inv.skb.clear_hash();
            Ok(())
        })?;
    }
    Ok(0)
}

/// `csum_partial` as x86-64 computes it: the 32-bit one's complement sum of
/// the buffer (native-endian 32-bit words, `len` a multiple of 4) and `seed`.
fn csum_partial32(words: impl Iterator<Item = u32>, seed: u32) -> u32 {
    let mut sum = seed as u64;
    for w in words {
        sum += w as u64;
    }
    while sum >> 32 != 0 {
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    sum as u32
}

/// `bpf_csum_diff`: the one's complement sum of `~from` words followed by
/// `to` words and `seed`, folded to 16 bits (not complemented) as Linux
/// returns it since 6.13 on every architecture. `None` for sizes Linux refuses.
pub fn csum_diff(from: &[u8], to: &[u8], seed: u32) -> Option<u32> {
    if !from.len().is_multiple_of(4) || !to.len().is_multiple_of(4) || from.len() + to.len() > 512 {
        return None;
    }
    let word = |c: &[u8]| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
    let words = from
        .chunks_exact(4)
        .map(|c| !word(c))
        .chain(to.chunks_exact(4).map(word));
    let s = csum_partial32(words, seed);
    let s = (s & 0xffff) + (s >> 16);
    Some((s & 0xffff) + (s >> 16))
}

/// `csum_fold`: fold a 32-bit sum to 16 bits and complement.
pub fn csum_fold(sum: u32) -> u16 {
    let mut s = (sum & 0xffff) + (sum >> 16);
    s = (s & 0xffff) + (s >> 16);
    !(s as u16)
}

fn csum_add(a: u32, b: u32) -> u32 {
    let (s, c) = a.overflowing_add(b);
    s.wrapping_add(c as u32)
}

/// Incremental checksum update of a 16-bit checksum field (native-endian
/// value as stored): `size` 2 or 4 replaces `from` by `to`; size 0 adds the
/// 32-bit diff `to` (`csum_replace_by_diff`). `None` for other sizes.
pub fn csum_replace(check: u16, from: u32, to: u32, size: u32) -> Option<u16> {
    let unfolded = !(check as u32) & 0xffff;
    Some(match size {
        0 => csum_fold(csum_add(to, unfolded)),
        2 => {
            // csum_replace2: 16-bit one's complement arithmetic.
            let mut s = (!check as u32 & 0xffff) + (!(from as u16) as u32) + (to as u16 as u32);
            s = (s & 0xffff) + (s >> 16);
            s = (s & 0xffff) + (s >> 16);
            !(s as u16)
        }
        4 => csum_fold(csum_add(csum_add(unfolded, !from), to)),
        _ => return None,
    })
}

fn bpf_csum_diff(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (from, from_size, to, to_size, seed) = (a[0], a[1] as u32, a[2], a[3] as u32, a[4] as u32);
    if (from_size | to_size) % 4 != 0 || from_size as u64 + to_size as u64 > 512 {
        return Ok(neg(EINVAL));
    }
    check_mem(ctx, from, from_size as u64, false)?;
    check_mem(ctx, to, to_size as u64, false)?;
    // SAFETY: ranges verified or checked (NULL only with size 0).
    let (f, t) = unsafe {
        (
            slice_or_empty(from, from_size as usize),
            slice_or_empty(to, to_size as usize),
        )
    };
    Ok(csum_diff(f, t, seed).map_or(neg(EINVAL), |v| v as u64))
}

unsafe fn slice_or_empty<'a>(p: u64, len: usize) -> &'a [u8] {
    if len == 0 {
        &[]
    } else {
        // SAFETY: caller contract.
        unsafe { std::slice::from_raw_parts(p as *const u8, len) }
    }
}

fn csum_replace_helper(ctx: &mut RunContext<'_>, a: [u64; 5], l4: bool) -> HelperResult {
    let s = skb(ctx, a[0])?;
    let (off, from, to, flags) = (a[1] as u32 as u64, a[2] as u32, a[3] as u32, a[4]);
    const HDR_FIELD_MASK: u64 = 0xf;
    const F_PSEUDO_HDR: u64 = 1 << 4;
    const F_MARK_MANGLED_0: u64 = 1 << 5;
    const F_MARK_ENFORCE: u64 = 1 << 6;
    const F_IPV6: u64 = 1 << 7;
    let allowed = if l4 {
        HDR_FIELD_MASK | F_PSEUDO_HDR | F_MARK_MANGLED_0 | F_MARK_ENFORCE | F_IPV6
    } else {
        HDR_FIELD_MASK
    };
    if flags & !allowed != 0 {
        return Ok(neg(EINVAL));
    }
    let size = (flags & HDR_FIELD_MASK) as u32;
    let plen = s.data_end - s.data;
    // The checksum field must be 16-bit aligned (Linux: `offset & 1` is EFAULT).
    if off > 0xffff || off & 1 != 0 || off + 2 > plen {
        return Ok(neg(EFAULT));
    }
    let p = (s.data + off) as *mut u8;
    // SAFETY: two bytes inside the packet.
    let check = unsafe { u16::from_ne_bytes([*p, *p.add(1)]) };
    let mmzero = l4 && flags & F_MARK_MANGLED_0 != 0;
    if mmzero && check == 0 {
        return Ok(0);
    }
    let Some(mut new) = csum_replace(check, from, to, size) else {
        return Ok(neg(EINVAL));
    };
    if mmzero && new == 0 {
        new = 0xffff; // CSUM_MANGLED_0
    }
    // SAFETY: as above.
    unsafe { std::ptr::copy_nonoverlapping(new.to_ne_bytes().as_ptr(), p, 2) };
    Ok(0)
}

/// `bpf_skb_pull_data`: test-run skbs are linear and private, so this only
/// checks the length (`skb_ensure_writable`: `-ENOMEM` beyond the packet).
fn skb_pull_data(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let s = skb(ctx, a[0])?;
    let len = a[1] as u32 as u64;
    if len > s.data_end - s.data {
        return Ok(neg(12));
    }
    Ok(0)
}

/// `bpf_csum_update`: test-run skbs are `CHECKSUM_NONE`, so Linux returns `-ENOTSUPP`.
fn csum_update(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    skb(ctx, a[0])?;
    Ok(neg(524))
}

fn set_hash_invalid(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    skb(ctx, a[0])?.set_u32(sk_buff::HASH, 0);
    with_inv(|inv| {
        inv.skb.clear_hash();
        Ok(0)
    })
}

fn set_hash(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    skb(ctx, a[0])?.set_u32(sk_buff::HASH, a[1] as u32);
    with_inv(|inv| {
        inv.skb.set_hash_valid();
        Ok(0)
    })
}
