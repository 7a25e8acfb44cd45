//! `__sk_buff` helpers that reshape the packet or read skb state the way
//! Linux's `BPF_PROG_TEST_RUN` skb sees it: VLAN push/pop (hardware-accelerated
//! tag first, as `skb_vlan_push` / `skb_vlan_pop`), `bpf_skb_change_tail`,
//! `bpf_skb_change_head`, `bpf_skb_adjust_room`, `bpf_skb_change_proto`,
//! `bpf_skb_change_type`, `bpf_skb_load_bytes_relative`,
//! `bpf_get_hash_recalc`, `bpf_get_socket_cookie`, the socket's cgroup ids,
//! and the calling task's pid/tgid, uid/gid and comm.
//!
//! The packet lives in the run's frame; a helper that needs more head- or
//! tailroom than the frame has moves it into a larger buffer owned by the
//! invocation (Linux's `pskb_expand_head`). Every buffer the packet ever lived
//! in stays allocated until the run ends, so stale pointers of checked-mode
//! programs never dangle.
//!
//! `LD_ABS` / `LD_IND` read relative to `data` as Linux's do: after a helper
//! that moves `data` or `data_end` (VLAN push/pop, change_tail/head,
//! adjust_room, change_proto) the run's input window follows the packet
//! ([`RunContext::set_input_window`]), and so do tail calls made afterwards.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use cordon_exec::context::{PacketHeaders, set_packet_headers};
use cordon_exec::{Abort, HelperResult, RunContext};

use super::{HelperImpl, h, neg};
use crate::ctx::{ETH_HLEN, SkbCtx, sk_buff};
use crate::maps::errno::{EINVAL, ENOMEM};

/// Linux's internal `ENOTSUPP`.
const ENOTSUPP: i32 = 524;
const EFAULT: i32 = 14;
const EALREADY: i32 = 114;
use crate::state::{CtxKind, with_inv};

/// Helper ids implemented here.
pub mod ids {
    pub const SKB_VLAN_PUSH: u32 = 18;
    pub const SKB_VLAN_POP: u32 = 19;
    pub const GET_HASH_RECALC: u32 = 34;
    pub const SKB_CHANGE_TAIL: u32 = 38;
    pub const SKB_CHANGE_HEAD: u32 = 43;
    pub const GET_SOCKET_COOKIE: u32 = 46;
    pub const SKB_ADJUST_ROOM: u32 = 50;
    pub const SKB_CHANGE_TYPE: u32 = 32;
    pub const SKB_CHANGE_PROTO: u32 = 31;
    pub const SKB_CGROUP_ID: u32 = 79;
    pub const SKB_ANCESTOR_CGROUP_ID: u32 = 83;
    pub const SKB_LOAD_BYTES_RELATIVE: u32 = 68;
    pub const GET_CURRENT_PID_TGID: u32 = 14;
    pub const GET_CURRENT_UID_GID: u32 = 15;
    pub const GET_CURRENT_COMM: u32 = 16;
}

/// `BPF_SKB_MAX_LEN` (`SKB_MAX_ALLOC`: 16 KiB minus the shared info).
pub const SKB_MAX_LEN: u64 = 16384 - 320;
/// `skb->transport_header` when no transport header is set.
const TRANSPORT_UNSET: u16 = 0xffff;
/// `VLAN_HLEN`.
const VLAN_HLEN: u64 = 4;
/// Headroom a relocated packet gets in front of it (`NET_SKB_PAD`).
const RELOC_PAD: u64 = 64;
/// Largest buffer a relocation allocates.
const RELOC_MAX: u64 = 1 << 20;

const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

/// Skb state of one run that `struct __sk_buff` does not show.
#[derive(Debug, Default)]
pub struct SkbState {
    /// The buffer the packet may occupy now: `[lo, hi)`.
    lo: u64,
    hi: u64,
    /// `skb_network_offset`: the network header relative to `data`.
    net_off: i64,
    /// Linux's `skb_headroom`: where `data` is in the kernel's buffer. The
    /// header offsets below are relative to that buffer's head, as Linux
    /// keeps them, because `pskb_expand_head` shifts them all, the unset
    /// transport header (`0xffff`) included: after the head grows that
    /// header counts as set, which `bpf_skb_change_tail` sees.
    headroom: i64,
    /// `skb->transport_header` (u16 from the head; `0xffff`: not set).
    transport: u16,
    /// The MAC header relative to `data` (socket filters see the packet from
    /// the network header, 14 bytes after it).
    mac_off: i64,
    /// `skb->encapsulation` (set by `bpf_skb_adjust_room` with encap flags).
    encapsulation: bool,
    /// `skb->l4_hash || skb->sw_hash`: `skb->hash` is valid.
    hash_valid: bool,
    /// The socket's cookie once generated (0: not yet).
    cookie: u64,
    /// Whether checked mode was granted `[lo, hi)`.
    granted: bool,
    /// Whether the input window moved since the run started (checked mode
    /// was then granted the first window, so stale pointers into it stay
    /// readable as before the move).
    window_moved: bool,
    /// Buffers the packet was moved to (freed when the run ends).
    heaps: Vec<PacketBuf>,
}

/// A zeroed buffer a packet moves into, placed below 4 GiB when the system
/// allows it (like [`crate::frame`]), so the 32-bit `data` / `data_end`
/// fields unverified programs read in checked mode hold whole pointers.
#[derive(Debug)]
struct PacketBuf {
    ptr: *mut u8,
    len: usize,
    mapped: bool,
}

// SAFETY: exclusively owned memory.
unsafe impl Send for PacketBuf {}

impl PacketBuf {
    fn new(len: usize) -> Option<PacketBuf> {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        {
            // SAFETY: anonymous private mapping, no fixed address.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                    -1,
                    0,
                )
            };
            if p != libc::MAP_FAILED {
                return Some(PacketBuf {
                    ptr: p as *mut u8,
                    len,
                    mapped: true,
                });
            }
        }
        let layout = std::alloc::Layout::from_size_align(len, 64).ok()?;
        // SAFETY: non-zero size (callers ask for at least RELOC_PAD bytes).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        (!ptr.is_null()).then_some(PacketBuf {
            ptr,
            len,
            mapped: false,
        })
    }

    fn addr(&self) -> u64 {
        self.ptr as u64
    }
}

impl Drop for PacketBuf {
    fn drop(&mut self) {
        if self.mapped {
            // SAFETY: the mapping made in `new`, unmapped once.
            unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
        } else {
            let layout = std::alloc::Layout::from_size_align(self.len, 64).expect("layout of new");
            // SAFETY: allocated in `new` with this layout.
            unsafe { std::alloc::dealloc(self.ptr, layout) };
        }
    }
}

impl SkbState {
    /// State of a fresh test-run skb in the buffer `[lo, hi)` with the network
    /// header `net_off` bytes after `data`.
    pub(crate) fn new(lo: u64, hi: u64, net_off: i64, headroom: i64) -> SkbState {
        SkbState {
            lo,
            hi,
            net_off,
            headroom,
            // Only socket filters start with data at the network header.
            mac_off: if net_off == 0 { -(ETH_HLEN as i64) } else { 0 },
            transport: TRANSPORT_UNSET,
            ..SkbState::default()
        }
    }

    /// `skb_cow_head(skb, need)`: when the headroom is short Linux expands
    /// the head by the shortfall rounded up to `NET_SKB_PAD`, shifting every
    /// header offset.
    fn cow_head(&mut self, need: u64) {
        let need = need as i64;
        if need > self.headroom {
            let nhead = (need - self.headroom + 63) & !63;
            self.headroom += nhead;
            self.transport = self.transport.wrapping_add(nhead as u16);
        }
    }

    /// `skb_transport_offset` if the transport header is set.
    fn trans_off(&self) -> Option<i64> {
        (self.transport != TRANSPORT_UNSET).then(|| self.transport as i64 - self.headroom)
    }

    /// Whether the transport header sits where the network header is.
    fn trans_same(&self) -> bool {
        self.transport as i64 == self.headroom + self.net_off
    }

    /// `skb_clear_hash`.
    pub(crate) fn clear_hash(&mut self) {
        self.hash_valid = false;
    }

    /// `__skb_set_sw_hash`.
    pub(crate) fn set_hash_valid(&mut self) {
        self.hash_valid = true;
    }
}

pub(super) fn helpers() -> Vec<(u32, HelperImpl)> {
    vec![
        (ids::SKB_VLAN_PUSH, reshaping(vlan_push)),
        (ids::SKB_VLAN_POP, reshaping(vlan_pop)),
        (ids::GET_HASH_RECALC, h(get_hash_recalc)),
        (ids::SKB_CHANGE_TAIL, reshaping(change_tail)),
        (ids::SKB_CHANGE_HEAD, reshaping(change_head)),
        (ids::GET_SOCKET_COOKIE, h(get_socket_cookie)),
        (ids::SKB_ADJUST_ROOM, reshaping(adjust_room)),
        (ids::SKB_CHANGE_TYPE, h(change_type)),
        (ids::SKB_CHANGE_PROTO, reshaping(change_proto)),
        (ids::SKB_CGROUP_ID, h(skb_cgroup_id)),
        (ids::SKB_ANCESTOR_CGROUP_ID, h(skb_ancestor_cgroup_id)),
        (ids::SKB_LOAD_BYTES_RELATIVE, h(load_bytes_relative)),
        (ids::GET_CURRENT_PID_TGID, h(|_, _| Ok(current_pid_tgid()))),
        (ids::GET_CURRENT_UID_GID, h(|_, _| Ok(current_uid_gid()))),
        (ids::GET_CURRENT_COMM, h(current_comm)),
    ]
}

/// A helper that may move `data` / `data_end`: once it returns, the input
/// window (`LD_ABS` / `LD_IND`, tail calls) is the packet it left.
fn reshaping(f: fn(&mut RunContext<'_>, [u64; 5]) -> HelperResult) -> HelperImpl {
    h(move |ctx, a| {
        let r = f(ctx, a)?;
        sync_window(ctx)?;
        Ok(r)
    })
}

/// Restores the thread's previous negative LD_ABS / LD_IND header setting
/// when an skb run ends (unwinding included).
pub(crate) struct HeadersGuard(Option<PacketHeaders>);

impl Drop for HeadersGuard {
    fn drop(&mut self) {
        // SAFETY: restores the setting of the enclosing run (or none).
        unsafe { set_packet_headers(self.0) };
    }
}

impl SkbState {
    /// Where Linux's SKF_NET_OFF / SKF_LL_OFF loads point with `data` at
    /// `data`: the network and MAC headers, bounded below by the buffer.
    fn headers(&self, data: u64) -> PacketHeaders {
        PacketHeaders {
            head: self.lo,
            mac: Some(data.wrapping_add_signed(self.mac_off)),
            network: data.wrapping_add_signed(self.net_off),
        }
    }

    /// Publishes the header positions for negative LD_ABS / LD_IND offsets
    /// of the run starting now with `data` at `data`, until the guard drops.
    ///
    /// # Safety
    /// `[lo, hi)` must stay valid until the guard drops.
    pub(crate) unsafe fn publish_headers(&self, data: u64) -> HeadersGuard {
        // SAFETY: forwarded to the caller; the guard restores the setting.
        HeadersGuard(unsafe { set_packet_headers(Some(self.headers(data))) })
    }
}

/// Makes the input window `[data, data_end)` of the run's skb, and moves the
/// headers negative LD_ABS / LD_IND offsets read from with it.
fn sync_window(ctx: &mut RunContext<'_>) -> Result<(), Abort> {
    with_inv(|inv| {
        if inv.kind != CtxKind::Skb {
            return Ok(());
        }
        // SAFETY: the run's backing SkbCtx, alive for the whole run.
        let s = unsafe { &*(inv.ctx as *const SkbCtx) };
        // SAFETY: the packet buffer `[lo, hi)` stays allocated until the
        // invocation ends, when the run's guard restores the setting.
        unsafe { set_packet_headers(Some(inv.skb.headers(s.data))) };
        let window = (s.data, s.data_end - s.data);
        if window == inv.input {
            return Ok(());
        }
        let st = &mut inv.skb;
        if ctx.is_checked() && !st.window_moved {
            // SAFETY: the first window lies in the run's frame, which
            // outlives the invocation.
            unsafe { ctx.grant(inv.input.0, inv.input.1, true) };
        }
        st.window_moved = true;
        inv.input = window;
        // SAFETY: `[data, data_end)` lies in the packet buffer `[lo, hi)`,
        // which stays allocated until the invocation ends.
        unsafe { ctx.set_input_window(window.0, window.1) };
        Ok(())
    })
}

/// The run's skb context and state (the argument must be the context in
/// checked mode).
fn skb_and_state<'a>(
    ctx: &RunContext<'_>,
    arg: u64,
) -> Result<(&'a mut SkbCtx, &'a mut SkbState), Abort> {
    with_inv(|inv| {
        if inv.kind != CtxKind::Skb || (ctx.is_checked() && arg != inv.ctx) {
            return Err(Abort::Fault(format!(
                "{arg:#x} is not the __sk_buff context of this run"
            )));
        }
        let st: *mut SkbState = &mut inv.skb;
        // SAFETY: the run's backing SkbCtx and the invocation's skb state,
        // both alive for the whole run; helpers run one at a time.
        Ok(unsafe { (&mut *(inv.ctx as *mut SkbCtx), &mut *st) })
    })
}

fn len(s: &SkbCtx) -> u64 {
    s.data_end - s.data
}

fn protocol(s: &SkbCtx) -> u16 {
    u16::from_be(s.get_u32(sk_buff::PROTOCOL) as u16)
}

fn set_protocol(s: &mut SkbCtx, p: u16) {
    s.set_u32(sk_buff::PROTOCOL, p.to_be() as u32);
}

fn eth_type_vlan(p: u16) -> bool {
    p == ETH_P_8021Q || p == ETH_P_8021AD
}

/// Sets `data`/`data_end` (and `data_meta`, `len`) after a change.
fn set_packet(s: &mut SkbCtx, data: u64, end: u64) {
    s.set_pointers(data, data, end);
    s.set_u32(sk_buff::LEN, (end - data) as u32);
}

/// Makes room for `push` more bytes before `data` and `grow` more after
/// `data_end`, moving the packet into a new buffer when the current one is too
/// small. `false` when no buffer can be that large.
fn reserve(
    ctx: &mut RunContext<'_>,
    s: &mut SkbCtx,
    st: &mut SkbState,
    push: u64,
    grow: u64,
) -> bool {
    let fits = s.data - st.lo >= push && st.hi - s.data_end >= grow;
    if !fits {
        let plen = len(s);
        let size = RELOC_PAD + push + plen + grow;
        if size > RELOC_MAX {
            return false;
        }
        let size = size.next_multiple_of(4096);
        let Some(buf) = PacketBuf::new(size as usize) else {
            return false;
        };
        let at = RELOC_PAD + push;
        let base = buf.addr();
        // SAFETY: [data, data_end) is the current packet inside the old
        // buffer; the new one has room for it at `at`; they do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                s.data as *const u8,
                (base + at) as *mut u8,
                plen as usize,
            )
        };
        st.heaps.push(buf);
        st.lo = base;
        st.hi = base + size;
        st.granted = false;
        set_packet(s, base + at, base + at + plen);
    }
    if ctx.is_checked() && !st.granted {
        // SAFETY: the buffer stays allocated until the invocation ends.
        unsafe { ctx.grant(st.lo, st.hi - st.lo, true) };
        st.granted = true;
    }
    true
}

fn bytes<'a>(at: u64, n: u64) -> &'a mut [u8] {
    // SAFETY: callers pass ranges inside the packet buffer `[lo, hi)`.
    unsafe { std::slice::from_raw_parts_mut(at as *mut u8, n as usize) }
}

fn be16(at: u64) -> u16 {
    let b = bytes(at, 2);
    u16::from_be_bytes([b[0], b[1]])
}

/// `bpf_skb_vlan_push(skb, vlan_proto, vlan_tci)`: the new tag goes into the
/// (hardware-accelerated) skb fields; a tag already there is first written
/// into the packet after the MAC addresses (`skb_vlan_push`).
fn vlan_push(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (s, st) = skb_and_state(ctx, a[0])?;
    let mut proto = u16::from_be(a[1] as u16);
    if !eth_type_vlan(proto) {
        proto = ETH_P_8021Q;
    }
    let tci = a[2] as u16;
    if s.get_u32(sk_buff::VLAN_PRESENT) != 0 {
        // The MAC addresses move even if the packet is shorter than them
        // (Linux reads and writes past its tail): keep 12 bytes after data.
        let short = 12u64.saturating_sub(len(s));
        if !reserve(ctx, s, st, VLAN_HLEN, short) {
            return Ok(neg(ENOMEM));
        }
        st.cow_head(VLAN_HLEN);
        st.headroom -= VLAN_HLEN as i64;
        let old_proto = u16::from_be(s.get_u32(sk_buff::VLAN_PROTO) as u16);
        let old_tci = s.get_u32(sk_buff::VLAN_TCI) as u16;
        let data = s.data - VLAN_HLEN;
        let end = s.data_end;
        // Move the MAC addresses to the front, then the tag behind them.
        bytes(data, 16).copy_within(4..16, 0);
        let hdr = bytes(data + 12, 4);
        hdr[..2].copy_from_slice(&old_proto.to_be_bytes());
        hdr[2..].copy_from_slice(&old_tci.to_be_bytes());
        set_packet(s, data, end);
        set_protocol(s, old_proto);
        // The network header moves with the tag (offset from data unchanged).
    }
    s.set_u32(sk_buff::VLAN_PRESENT, 1);
    s.set_u32(sk_buff::VLAN_TCI, tci as u32);
    s.set_u32(sk_buff::VLAN_PROTO, proto.to_be() as u32);
    Ok(0)
}

/// `__skb_vlan_pop`: removes the tag after the MAC addresses; `Err(errno)`
/// when the packet is too short to hold one.
fn vlan_pop_payload(s: &mut SkbCtx, st: &mut SkbState) -> Result<u16, i32> {
    const VLAN_ETH_HLEN: u64 = 18;
    if len(s) < VLAN_ETH_HLEN {
        return Err(ENOMEM);
    }
    let tci = be16(s.data + 14);
    let encap = be16(s.data + 16);
    bytes(s.data, 16).copy_within(0..12, 4);
    let proto = if encap >= 0x0600 {
        encap
    } else if st.hi - s.data >= 20 && be16(s.data + 18) == 0xffff {
        0x0001 // ETH_P_802_3
    } else {
        0x0004 // ETH_P_802_2
    };
    set_protocol(s, proto);
    let (data, end) = (s.data + VLAN_HLEN, s.data_end);
    set_packet(s, data, end);
    st.headroom += VLAN_HLEN as i64;
    st.net_off -= VLAN_HLEN as i64;
    if st.net_off < ETH_HLEN as i64 {
        st.net_off = ETH_HLEN as i64;
    }
    Ok(tci)
}

/// `bpf_skb_vlan_pop(skb)`: drops the accelerated tag (or the outer tag in
/// the packet) and moves the next tag of the packet into the skb fields.
fn vlan_pop(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (s, st) = skb_and_state(ctx, a[0])?;
    if s.get_u32(sk_buff::VLAN_PRESENT) != 0 {
        s.set_u32(sk_buff::VLAN_PRESENT, 0);
        s.set_u32(sk_buff::VLAN_TCI, 0);
        s.set_u32(sk_buff::VLAN_PROTO, 0);
    } else {
        if !eth_type_vlan(protocol(s)) {
            return Ok(0);
        }
        if let Err(e) = vlan_pop_payload(s, st) {
            return Ok(neg(e));
        }
    }
    let next = protocol(s);
    if !eth_type_vlan(next) {
        return Ok(0);
    }
    match vlan_pop_payload(s, st) {
        Ok(tci) => {
            s.set_u32(sk_buff::VLAN_PRESENT, 1);
            s.set_u32(sk_buff::VLAN_TCI, tci as u32);
            s.set_u32(sk_buff::VLAN_PROTO, next.to_be() as u32);
            Ok(0)
        }
        Err(e) => Ok(neg(e)),
    }
}

/// `bpf_skb_change_tail(skb, len, flags)`: trims or zero-extends the packet.
fn change_tail(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (s, st) = skb_and_state(ctx, a[0])?;
    let (new_len, flags) = (a[1] as u32 as u64, a[2]);
    // __bpf_skb_min_len: the network offset, replaced by the transport
    // offset when one is set; offsets at or below data do not count.
    let mut min_len = st.net_off.max(0) as u64;
    if let Some(t) = st.trans_off()
        && t > 0
    {
        min_len = t as u64;
    }
    if flags != 0 || new_len > SKB_MAX_LEN || new_len < min_len {
        return Ok(neg(EINVAL));
    }
    if st.encapsulation {
        return Ok(neg(ENOTSUPP));
    }
    let old = len(s);
    if new_len > old {
        if !reserve(ctx, s, st, 0, new_len - old) {
            return Ok(neg(ENOMEM));
        }
        bytes(s.data_end, new_len - old).fill(0);
    } else if ctx.is_checked() && !st.granted {
        reserve(ctx, s, st, 0, 0);
    }
    let data = s.data;
    set_packet(s, data, data + new_len);
    // skb_gso_reset.
    if s.get_u32(sk_buff::GSO_SIZE) != 0 {
        s.set_u32(sk_buff::GSO_SIZE, 0);
        s.set_u32(sk_buff::GSO_SEGS, 0);
    }
    Ok(0)
}

/// `bpf_skb_change_head(skb, head_room, flags)`: prepends zeroed bytes (a new
/// MAC header; the network header stays where it is).
fn change_head(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (s, st) = skb_and_state(ctx, a[0])?;
    let (room, flags) = (a[1] as u32, a[2]);
    let old = len(s) as u32;
    let new_len = old.wrapping_add(room);
    let gso = s.get_u32(sk_buff::GSO_SIZE) != 0;
    if flags != 0 || (!gso && new_len as u64 > SKB_MAX_LEN) || new_len < old {
        return Ok(neg(EINVAL));
    }
    let room = room as u64;
    if !reserve(ctx, s, st, room, 0) {
        return Ok(neg(ENOMEM));
    }
    let (data, end) = (s.data - room, s.data_end);
    bytes(data, room).fill(0);
    set_packet(s, data, end);
    st.cow_head(room);
    st.headroom -= room as i64;
    st.net_off += room as i64;
    Ok(0)
}

/// `bpf_get_socket_cookie(skb)`: test-run skbs carry a socket whose cookie
/// is generated on first use from a global counter (`sock_gen_cookie`).
fn get_socket_cookie(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let (_, st) = skb_and_state(ctx, a[0])?;
    if st.cookie == 0 {
        st.cookie = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    Ok(st.cookie)
}

/// `bpf_get_hash_recalc(skb)`: `skb_get_hash`, which computes the flow hash
/// unless one is set (by the stack or `bpf_set_hash`).
fn get_hash_recalc(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (s, st) = skb_and_state(ctx, a[0])?;
    if !st.hash_valid {
        let hash = flow_hash(s, st);
        s.set_u32(sk_buff::HASH, hash);
        st.hash_valid = true;
    }
    Ok(s.get_u32(sk_buff::HASH) as u64)
}

/// The flow keys Linux hashes: addresses, ports and protocols.
#[derive(Default)]
struct FlowKeys {
    n_proto: u16,
    ip_proto: u8,
    src: [u8; 16],
    dst: [u8; 16],
    ports: [u16; 2],
}

/// The flow dissector's view (Ethernet VLAN tags, IPv4 without fragments
/// past the first, IPv6, TCP/UDP/UDP-Lite/SCTP/DCCP ports) hashed with a
/// per-process random key, made direction-independent like
/// `__flow_hash_consistentify`; never 0. Linux's value depends on its own
/// boot-time random key, so only these properties are comparable.
fn flow_hash(s: &SkbCtx, st: &SkbState) -> u32 {
    let pkt = bytes(s.data, len(s));
    let mut k = FlowKeys {
        n_proto: protocol(s),
        ..FlowKeys::default()
    };
    let mut off = st.net_off.max(0) as usize;
    while eth_type_vlan(k.n_proto) && off + 4 <= pkt.len() {
        k.n_proto = u16::from_be_bytes([pkt[off + 2], pkt[off + 3]]);
        off += 4;
    }
    let l4 = match k.n_proto {
        0x0800 if off + 20 <= pkt.len() && pkt[off] >> 4 == 4 => {
            let ihl = ((pkt[off] & 0xf) as usize) * 4;
            k.ip_proto = pkt[off + 9];
            k.src[..4].copy_from_slice(&pkt[off + 12..off + 16]);
            k.dst[..4].copy_from_slice(&pkt[off + 16..off + 20]);
            let frag_off = u16::from_be_bytes([pkt[off + 6], pkt[off + 7]]) & 0x1fff;
            (ihl >= 20 && frag_off == 0).then_some(off + ihl)
        }
        0x86dd if off + 40 <= pkt.len() && pkt[off] >> 4 == 6 => {
            k.ip_proto = pkt[off + 6];
            k.src.copy_from_slice(&pkt[off + 8..off + 24]);
            k.dst.copy_from_slice(&pkt[off + 24..off + 40]);
            Some(off + 40)
        }
        _ => None,
    };
    if let Some(l4) = l4
        && matches!(k.ip_proto, 6 | 17 | 33 | 132 | 136)
        && l4 + 4 <= pkt.len()
    {
        k.ports = [
            u16::from_be_bytes([pkt[l4], pkt[l4 + 1]]),
            u16::from_be_bytes([pkt[l4 + 2], pkt[l4 + 3]]),
        ];
    }
    if (k.dst, k.ports[1]) < (k.src, k.ports[0]) {
        std::mem::swap(&mut k.src, &mut k.dst);
        k.ports.swap(0, 1);
    }
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let mut hs = KEY.get_or_init(Default::default).build_hasher();
    hs.write_u16(k.n_proto);
    hs.write_u8(k.ip_proto);
    hs.write(&k.src);
    hs.write(&k.dst);
    hs.write_u16(k.ports[0]);
    hs.write_u16(k.ports[1]);
    let v = hs.finish();
    match (v ^ (v >> 32)) as u32 {
        0 => 1,
        h => h,
    }
}

/// `bpf_skb_adjust_room` flags and modes.
mod adj {
    pub const FIXED_GSO: u64 = 1 << 0;
    pub const ENCAP_L3_IPV4: u64 = 1 << 1;
    pub const ENCAP_L3_IPV6: u64 = 1 << 2;
    pub const ENCAP_L4_GRE: u64 = 1 << 3;
    pub const ENCAP_L4_UDP: u64 = 1 << 4;
    pub const NO_CSUM_RESET: u64 = 1 << 5;
    pub const ENCAP_L2_ETH: u64 = 1 << 6;
    pub const DECAP_L3_IPV4: u64 = 1 << 7;
    pub const DECAP_L3_IPV6: u64 = 1 << 8;
    pub const ENCAP_L2_SHIFT: u64 = 56;
    pub const ENCAP_L3_MASK: u64 = ENCAP_L3_IPV4 | ENCAP_L3_IPV6;
    pub const DECAP_L3_MASK: u64 = DECAP_L3_IPV4 | DECAP_L3_IPV6;
    pub const MASK: u64 = FIXED_GSO
        | ENCAP_L3_MASK
        | ENCAP_L4_GRE
        | ENCAP_L4_UDP
        | ENCAP_L2_ETH
        | (0xff << ENCAP_L2_SHIFT)
        | DECAP_L3_MASK;
    pub const MODE_NET: u32 = 0;
    pub const MODE_MAC: u32 = 1;
}

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;

/// `bpf_skb_net_base_len`: the fixed IP header length of the protocol.
fn net_base_len(proto: u16) -> u64 {
    match proto {
        ETH_P_IP => 20,
        ETH_P_IPV6 => 40,
        _ => 0,
    }
}

/// `bpf_skb_adjust_room(skb, len_diff, mode, flags)`: inserts zeroed room
/// (or removes bytes) after the MAC header (`BPF_ADJ_ROOM_MAC`) or after the
/// fixed IP header (`BPF_ADJ_ROOM_NET`); encapsulation flags mark the skb
/// encapsulated and may switch `protocol` to the new outer header's.
fn adjust_room(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (s, st) = skb_and_state(ctx, a[0])?;
    let (diff, mode, flags) = (a[1] as i32, a[2] as u32, a[3]);
    let shrink = diff < 0;
    let diff_abs = diff.unsigned_abs() as u64;
    let proto = protocol(s);
    if flags & !(adj::MASK | adj::NO_CSUM_RESET) != 0 {
        return Ok(neg(EINVAL));
    }
    if diff_abs > 0xfff {
        return Ok(neg(EFAULT));
    }
    if proto != ETH_P_IP && proto != ETH_P_IPV6 {
        return Ok(neg(ENOTSUPP));
    }
    // skb_mac_header_len: the MAC header starts at data for tc programs.
    let mut off = st.net_off;
    match mode {
        adj::MODE_NET => off += net_base_len(proto) as i64,
        adj::MODE_MAC => {}
        _ => return Ok(neg(ENOTSUPP)),
    }
    let mut len_min = net_base_len(proto);
    if flags & adj::DECAP_L3_MASK != 0 {
        if !shrink {
            return Ok(neg(EINVAL));
        }
        len_min = match flags & adj::DECAP_L3_MASK {
            adj::DECAP_L3_IPV4 => 20,
            adj::DECAP_L3_IPV6 => 40,
            _ => return Ok(neg(EINVAL)),
        };
    }
    let skb_len = len(s) as u32;
    let len_cur = skb_len.wrapping_sub(st.net_off as u32) as u64;
    let gso = s.get_u32(sk_buff::GSO_SIZE) != 0;
    if (shrink && (diff_abs >= len_cur || len_cur - diff_abs < len_min))
        || (!shrink && skb_len as u64 + diff_abs > SKB_MAX_LEN && !gso)
    {
        return Ok(neg(ENOTSUPP));
    }
    let ret = if shrink {
        net_shrink(ctx, s, st, off, diff_abs, flags)
    } else {
        net_grow(ctx, s, st, off, diff_abs, flags)
    };
    Ok(match ret {
        Ok(()) => 0,
        Err(e) => neg(e),
    })
}

/// Test-run skbs carry no GSO type, so a GSO skb (`gso_size` from ctx_in)
/// is neither TCP nor UDP-L4 GSO: Linux refuses to resize it.
fn refuse_gso(s: &SkbCtx) -> Result<(), i32> {
    if s.get_u32(sk_buff::GSO_SIZE) != 0 {
        return Err(ENOTSUPP);
    }
    Ok(())
}

fn net_grow(
    ctx: &mut RunContext<'_>,
    s: &mut SkbCtx,
    st: &mut SkbState,
    off: i64,
    len: u64,
    flags: u64,
) -> Result<(), i32> {
    refuse_gso(s)?;
    st.cow_head(len);
    let encap = flags & adj::ENCAP_L3_MASK != 0;
    let inner_mac_len = (flags >> adj::ENCAP_L2_SHIFT) & 0xff;
    let mac_len = st.net_off;
    if encap {
        if flags & adj::ENCAP_L3_MASK == adj::ENCAP_L3_MASK {
            return Err(EINVAL);
        }
        if flags & adj::ENCAP_L4_GRE != 0 && flags & adj::ENCAP_L4_UDP != 0 {
            return Err(EINVAL);
        }
        if flags & adj::ENCAP_L2_ETH != 0 && inner_mac_len < ETH_HLEN as u64 {
            return Err(EINVAL);
        }
        if st.encapsulation {
            return Err(EALREADY);
        }
        if inner_mac_len > len {
            return Err(EINVAL);
        }
    }
    hdr_push(ctx, s, st, off, len)?;
    if encap {
        st.encapsulation = true;
        st.net_off = mac_len;
        if flags & (adj::ENCAP_L4_GRE | adj::ENCAP_L4_UDP) != 0 {
            let nh_len = if flags & adj::ENCAP_L3_IPV6 != 0 {
                40
            } else {
                20
            };
            st.transport = (st.headroom + mac_len + nh_len) as u16;
        }
        let proto = protocol(s);
        if proto == ETH_P_IP && flags & adj::ENCAP_L3_IPV6 != 0 {
            set_protocol(s, ETH_P_IPV6);
        } else if proto == ETH_P_IPV6 && flags & adj::ENCAP_L3_IPV4 != 0 {
            set_protocol(s, ETH_P_IP);
        }
    }
    Ok(())
}

fn net_shrink(
    ctx: &mut RunContext<'_>,
    s: &mut SkbCtx,
    st: &mut SkbState,
    off: i64,
    len: u64,
    flags: u64,
) -> Result<(), i32> {
    if flags & !(adj::FIXED_GSO | adj::DECAP_L3_MASK | adj::NO_CSUM_RESET) != 0 {
        return Err(EINVAL);
    }
    refuse_gso(s)?;
    hdr_pop(ctx, s, st, off, len)?;
    if flags & adj::DECAP_L3_IPV4 != 0 {
        set_protocol(s, ETH_P_IP);
    } else if flags & adj::DECAP_L3_IPV6 != 0 {
        set_protocol(s, ETH_P_IPV6);
    }
    Ok(())
}

/// `bpf_skb_change_type(skb, pkt_type)`: only between `PACKET_HOST` (0) and
/// `PACKET_OTHERHOST` (3), from and to.
fn change_type(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (s, _) = skb_and_state(ctx, a[0])?;
    const PACKET_OTHERHOST: u32 = 3;
    let to = a[1] as u32;
    if s.get_u32(sk_buff::PKT_TYPE) > PACKET_OTHERHOST || to > PACKET_OTHERHOST {
        return Ok(neg(EINVAL));
    }
    s.set_u32(sk_buff::PKT_TYPE, to);
    Ok(0)
}

/// `bpf_skb_load_bytes_relative(skb, offset, to, len, start_header)`: bytes
/// from the MAC (0) or network (1) header up to the packet's end; `to` is
/// zeroed and `-EFAULT` returned otherwise.
fn load_bytes_relative(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (s, st) = skb_and_state(ctx, a[0])?;
    let (off, to, n, hdr) = (a[1] as u32 as u64, a[2], a[3] as u32 as u64, a[4] as u32);
    super::check_mem(ctx, to, n, true)?;
    let start = match hdr {
        0 => Some(s.data as i64 + st.mac_off),
        1 => Some(s.data as i64 + st.net_off),
        _ => None,
    };
    let src = start
        .filter(|_| off <= 0xffff)
        .map(|st| st + off as i64)
        .filter(|&p| p + n as i64 <= s.data_end as i64);
    match src {
        Some(p) => {
            // SAFETY: [p, p + n) lies in the packet buffer (the MAC header
            // and the packet, up to data_end); `to` is verified or checked.
            unsafe { std::ptr::copy(p as *const u8, to as *mut u8, n as usize) };
            Ok(0)
        }
        None => {
            // SAFETY: `to` is verified or checked for `n` bytes.
            unsafe { std::ptr::write_bytes(to as *mut u8, 0, n as usize) };
            Ok(neg(EFAULT))
        }
    }
}

/// `bpf_get_current_pid_tgid`: the calling thread of the host process
/// (Linux's test_run runs in the calling task): `tgid << 32 | pid`.
fn current_pid_tgid() -> u64 {
    // SAFETY: plain system calls without arguments.
    let (tgid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
    (tgid as u32 as u64) << 32 | tid as u32 as u64
}

/// `bpf_get_current_uid_gid`: `gid << 32 | uid` of the host process.
fn current_uid_gid() -> u64 {
    // SAFETY: plain system calls without arguments.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    (gid as u64) << 32 | uid as u64
}

/// `bpf_get_current_comm(buf, size)`: the calling thread's name, cut to
/// `size - 1` bytes, NUL-terminated and zero-padded (`strscpy_pad`).
fn current_comm(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (buf, size) = (a[0], a[1] as u32 as u64);
    super::check_mem(ctx, buf, size, true)?;
    if size == 0 {
        return Ok(neg(EINVAL));
    }
    let mut comm = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes into the buffer.
    unsafe { libc::prctl(libc::PR_GET_NAME, comm.as_mut_ptr()) };
    let name_len = comm.iter().position(|&b| b == 0).unwrap_or(15);
    let n = name_len.min(size as usize - 1);
    // SAFETY: `buf` is verified or checked for `size` bytes.
    let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, size as usize) };
    out[..n].copy_from_slice(&comm[..n]);
    out[n..].fill(0);
    Ok(0)
}

/// `bpf_skb_net_hdr_push`: `len` zeroed bytes inserted `off` bytes after
/// `data` (the first `off` bytes move to the new front; the caller did
/// `skb_cow_head`). A packet shorter than `off` moves the bytes behind its
/// end too, as Linux's memmove does.
fn hdr_push(
    ctx: &mut RunContext<'_>,
    s: &mut SkbCtx,
    st: &mut SkbState,
    off: i64,
    len: u64,
) -> Result<(), i32> {
    let off = off.max(0) as u64;
    if !reserve(ctx, s, st, len, off.saturating_sub(self::len(s))) {
        return Err(ENOMEM);
    }
    let (data, end) = (s.data - len, s.data_end);
    bytes(data, off + len).copy_within(len as usize..(len + off) as usize, 0);
    bytes(data + off, len).fill(0);
    set_packet(s, data, end);
    // mac and network headers move with the data; the transport header
    // follows the network header only where they coincide.
    let same = st.trans_same();
    st.headroom -= len as i64;
    if same {
        st.transport = (st.headroom + st.net_off) as u16;
    }
    Ok(())
}

/// `bpf_skb_net_hdr_pop`: `len` bytes removed `off` bytes after `data`
/// (`pskb_may_pull(off + len)` first: `-ENOMEM` past the packet).
fn hdr_pop(
    ctx: &mut RunContext<'_>,
    s: &mut SkbCtx,
    st: &mut SkbState,
    off: i64,
    len: u64,
) -> Result<(), i32> {
    let off = off.max(0) as u64;
    if off + len > self::len(s) {
        return Err(ENOMEM);
    }
    reserve(ctx, s, st, 0, 0);
    let (data, end) = (s.data, s.data_end);
    bytes(data, off + len).copy_within(0..off as usize, len as usize);
    set_packet(s, data + len, end);
    let same = st.trans_same();
    st.headroom += len as i64;
    if same {
        st.transport = (st.headroom + st.net_off) as u16;
    }
    Ok(())
}

/// `bpf_skb_change_proto(skb, proto, flags)`: IPv4 to IPv6 inserts 20
/// zeroed bytes after the MAC header, IPv6 to IPv4 removes 20; the program
/// rewrites the header itself. The hash is cleared.
fn change_proto(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let (s, st) = skb_and_state(ctx, a[0])?;
    let (to, flags) = (u16::from_be(a[1] as u16), a[2]);
    if flags != 0 {
        return Ok(neg(EINVAL));
    }
    const LEN_DIFF: u64 = 40 - 20;
    let off = st.net_off;
    let r = match (protocol(s), to) {
        (ETH_P_IP, ETH_P_IPV6) => {
            st.cow_head(LEN_DIFF);
            hdr_push(ctx, s, st, off, LEN_DIFF).map(|()| ETH_P_IPV6)
        }
        (ETH_P_IPV6, ETH_P_IP) => hdr_pop(ctx, s, st, off, LEN_DIFF).map(|()| ETH_P_IP),
        _ => Err(ENOTSUPP),
    };
    match r {
        Ok(p) => {
            // GSO skbs keep gso_size and gso_segs (Linux stopped adjusting
            // the MSS here; test-run skbs have no GSO type to convert).
            set_protocol(s, p);
            s.set_u32(sk_buff::HASH, 0);
            st.hash_valid = false;
            Ok(0)
        }
        Err(e) => Ok(neg(e)),
    }
}

/// The ids of the calling process's cgroup-v2 cgroup and its ancestors,
/// root first: the test-run skb's socket belongs to the calling task's
/// default-hierarchy cgroup, whose id is the inode number of its directory
/// in a cgroup2 mount. Without a cgroup2 mount only the root (id 1) is known.
fn cgroup_ancestry() -> Vec<u64> {
    use std::os::unix::fs::MetadataExt;
    let path = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        });
    let mount = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let (left, right) = l.split_once(" - ")?;
                right
                    .starts_with("cgroup2 ")
                    .then(|| left.split(' ').nth(4).map(str::to_string))
                    .flatten()
            })
        });
    let (Some(path), Some(mount)) = (path, mount) else {
        return vec![1];
    };
    let mut ids = Vec::new();
    let mut dir = std::path::PathBuf::from(mount);
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for i in 0..=parts.len() {
        if i > 0 {
            dir.push(parts[i - 1]);
        }
        match std::fs::metadata(&dir) {
            Ok(m) => ids.push(m.ino()),
            Err(_) => break,
        }
    }
    if ids.is_empty() {
        ids.push(1);
    }
    ids
}

/// `bpf_skb_cgroup_id(skb)`: the cgroup (v2) id of the skb's socket.
fn skb_cgroup_id(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    skb_and_state(ctx, a[0])?;
    Ok(cgroup_ancestry().last().copied().unwrap_or(1))
}

/// `bpf_skb_ancestor_cgroup_id(skb, level)`: the id of the socket cgroup's
/// ancestor at `level` (0: the root), 0 beyond the cgroup's own level.
fn skb_ancestor_cgroup_id(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    skb_and_state(ctx, a[0])?;
    let level = a[1] as i32;
    if level < 0 {
        return Ok(0);
    }
    Ok(cgroup_ancestry().get(level as usize).copied().unwrap_or(0))
}
