//! `bpf_redirect` and `bpf_redirect_map`: the redirect is decided exactly as
//! Linux decides it (return value, fallback action, flags checks, which
//! target) and recorded in the run result instead of being performed.

use cordon_exec::{Abort, HelperResult, RunContext};
use cordon_verifier::proto::helper as id;

use super::{HelperImpl, h};
use crate::maps::devmap::Found;
use crate::state::{CtxKind, Redirect, RedirectTarget, with_inv};

pub(super) fn helpers() -> Vec<(u32, HelperImpl)> {
    vec![
        (id::REDIRECT, h(redirect)),
        (id::REDIRECT_MAP, h(redirect_map)),
    ]
}

const TC_ACT_SHOT: u64 = 2;
const TC_ACT_REDIRECT: u64 = 7;
const XDP_ABORTED: u64 = 0;
const XDP_REDIRECT: u64 = 4;
/// `bpf_redirect` (tc): deliver to the device's ingress path.
pub const BPF_F_INGRESS: u64 = 1;
/// `bpf_redirect_map` (devmap): send to every device of the map.
pub const BPF_F_BROADCAST: u64 = 1 << 3;
/// `bpf_redirect_map` (devmap, with broadcast): skip the ingress device.
pub const BPF_F_EXCLUDE_INGRESS: u64 = 1 << 4;
/// Low flag bits of `bpf_redirect_map`: the action returned on a miss
/// (`XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX`).
pub const REDIRECT_ACTION_MASK: u64 = 3;

/// Offset of `ingress_ifindex` in `struct xdp_md`.
const XDP_MD_INGRESS_IFINDEX: usize = 3;

/// `bpf_redirect` (XDP: `bpf_xdp_redirect`, flags must be 0; tc: only
/// `BPF_F_INGRESS`). Bad flags return `XDP_ABORTED` / `TC_ACT_SHOT` and
/// leave the record as it was (Linux does not touch `bpf_redirect_info`).
fn redirect(_ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    with_inv(|inv| {
        let xdp = inv.kind == CtxKind::Xdp;
        let bad_flags = if xdp {
            a[1] != 0
        } else {
            a[1] & !BPF_F_INGRESS != 0
        };
        if bad_flags {
            return Ok(if xdp { XDP_ABORTED } else { TC_ACT_SHOT });
        }
        inv.redirect = Some(Redirect::Ifindex {
            ifindex: a[0] as u32,
            flags: a[1],
        });
        Ok(if xdp { XDP_REDIRECT } else { TC_ACT_REDIRECT })
    })
}

/// `bpf_redirect_map(map, key, flags)` (`__bpf_xdp_redirect_map`): flags
/// other than the action bits (and, for devmaps, `BPF_F_BROADCAST` /
/// `BPF_F_EXCLUDE_INGRESS`) return `XDP_ABORTED`; the key is truncated to
/// 32 bits; a miss without broadcast clears the record and returns the
/// action in the low flag bits; otherwise the target is recorded and the
/// helper returns `XDP_REDIRECT`.
fn redirect_map(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let m = super::map_arg(ctx, a[0])?;
    let Some(r) = m.redirect_map() else {
        return Err(Abort::Fault(format!(
            "bpf_redirect_map needs a devmap, devmap_hash, cpumap or xskmap; {:?} is a {}",
            m.name(),
            m.map_type()
        )));
    };
    let flags = a[2];
    let is_dev = matches!(
        m.map_type(),
        crate::maps::MapType::DevMap | crate::maps::MapType::DevMapHash
    );
    let allowed = REDIRECT_ACTION_MASK
        | if is_dev {
            BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS
        } else {
            0
        };
    if flags & !allowed != 0 {
        return Ok(XDP_ABORTED);
    }
    let key = a[1] as u32;
    let found = r.find(key);
    let broadcast = flags & BPF_F_BROADCAST != 0;
    let target = if broadcast {
        let exclude_ingress = flags & BPF_F_EXCLUDE_INGRESS != 0;
        let ingress = with_inv(|inv| Ok(ingress_ifindex(inv.kind, inv.ctx)))?;
        let ifindexes = r
            .devices()
            .into_iter()
            .filter(|i| !exclude_ingress || Some(*i) != ingress)
            .collect();
        RedirectTarget::Broadcast {
            ifindexes,
            exclude_ingress,
        }
    } else {
        match found {
            None => {
                with_inv(|inv| {
                    inv.redirect = None;
                    Ok(())
                })?;
                return Ok(flags & REDIRECT_ACTION_MASK);
            }
            Some(Found::Device(ifindex)) => RedirectTarget::Device { ifindex },
            Some(Found::Cpu { cpu, qsize }) => RedirectTarget::Cpu { cpu, qsize },
            Some(Found::Socket(id)) => RedirectTarget::Socket { id },
        }
    };
    let rec = Redirect::Map {
        map: m.name().to_string(),
        map_type: m.map_type(),
        key,
        target,
        flags,
    };
    with_inv(|inv| {
        inv.redirect = Some(rec);
        Ok(XDP_REDIRECT)
    })
}

/// The run's ingress ifindex (XDP context), for `BPF_F_EXCLUDE_INGRESS`.
fn ingress_ifindex(kind: CtxKind, ctx: u64) -> Option<u32> {
    if kind != CtxKind::Xdp || ctx == 0 {
        return None;
    }
    // SAFETY: the run's backing XdpCtx, alive for the whole run.
    let x = unsafe { &*(ctx as *const crate::ctx::XdpCtx) };
    Some(x.md[XDP_MD_INGRESS_IFINDEX])
}
