//! Program contexts with Linux's UAPI layouts (`struct xdp_md`,
//! `struct __sk_buff`) and the runtime's backing structures.
//!
//! The program sees the UAPI layout at the start of the backing structure; the
//! packet pointers live as real 64-bit pointers behind it. Verified programs
//! have their `data` / `data_end` / `data_meta` loads rewritten into 64-bit
//! loads of those hidden fields (what Linux's `convert_ctx_accesses` does).
//! The 32-bit UAPI fields hold the low 32 bits of the pointers; packet buffers
//! are placed below 4 GiB when possible (see [`crate::frame`]), so unverified
//! programs running in checked mode see the real pointers too.

/// `XDP_PACKET_HEADROOM`.
pub const XDP_HEADROOM: usize = 256;
/// Size of the page a test-run packet lives in.
pub const FRAME_SIZE: usize = 4096;
/// `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64.
pub const SHARED_INFO_SIZE: usize = 320;
/// Largest linear XDP packet Linux's test_run builds (3520 bytes).
pub const XDP_MAX_LINEAR: usize = FRAME_SIZE - XDP_HEADROOM - SHARED_INFO_SIZE;
/// `MAX_SKB_FRAGS` (`CONFIG_MAX_SKB_FRAGS`, 17 by default): fragments an XDP
/// test-run packet may have.
pub const MAX_SKB_FRAGS: usize = 17;
/// Size of one fragment page (`PAGE_SIZE`, also the loopback queue's
/// `frag_size`, which bounds how far the last fragment may grow).
pub const FRAG_PAGE_SIZE: usize = FRAME_SIZE;
/// `NET_SKB_PAD`.
pub const SKB_HEADROOM: usize = 64;
/// Largest skb test-run input (3712 bytes).
pub const SKB_MAX_DATA: usize = FRAME_SIZE - SKB_HEADROOM - SHARED_INFO_SIZE;
/// `sizeof(struct xdp_frame)` (Linux 6.13+), stored at the start of the headroom.
pub const XDP_FRAME_STRUCT: usize = 40;
/// Most metadata an XDP packet can carry (216 bytes): it lives in the
/// headroom after the `struct xdp_frame`. `bpf_xdp_adjust_meta` cannot move
/// `data_meta` below it and test_run refuses a larger `ctx_in.data` (EINVAL),
/// both measured on Linux 6.18 (which also requires 4-byte alignment).
pub const XDP_MAX_META: usize = XDP_HEADROOM - XDP_FRAME_STRUCT;
/// `ETH_HLEN`.
pub const ETH_HLEN: usize = 14;

/// `struct xdp_md` size.
pub const XDP_MD_SIZE: usize = 24;
/// `struct __sk_buff` size.
pub const SK_BUFF_SIZE: usize = 192;

/// `struct xdp_md` field offsets.
pub mod xdp_md {
    pub const DATA: usize = 0;
    pub const DATA_END: usize = 4;
    pub const DATA_META: usize = 8;
    pub const INGRESS_IFINDEX: usize = 12;
    pub const RX_QUEUE_INDEX: usize = 16;
    pub const EGRESS_IFINDEX: usize = 20;
}

/// `struct __sk_buff` field offsets.
pub mod sk_buff {
    pub const LEN: usize = 0;
    pub const PKT_TYPE: usize = 4;
    pub const MARK: usize = 8;
    pub const QUEUE_MAPPING: usize = 12;
    pub const PROTOCOL: usize = 16;
    pub const VLAN_PRESENT: usize = 20;
    pub const VLAN_TCI: usize = 24;
    pub const VLAN_PROTO: usize = 28;
    pub const PRIORITY: usize = 32;
    pub const INGRESS_IFINDEX: usize = 36;
    pub const IFINDEX: usize = 40;
    pub const TC_INDEX: usize = 44;
    pub const CB: usize = 48;
    pub const HASH: usize = 68;
    pub const TC_CLASSID: usize = 72;
    pub const DATA: usize = 76;
    pub const DATA_END: usize = 80;
    pub const NAPI_ID: usize = 84;
    pub const FAMILY: usize = 88;
    pub const DATA_META: usize = 140;
    pub const TSTAMP: usize = 152;
    pub const WIRE_LEN: usize = 160;
    pub const GSO_SEGS: usize = 164;
    pub const GSO_SIZE: usize = 176;
    pub const HWTSTAMP: usize = 184;
}

/// Offsets of the hidden 64-bit packet pointers in the backing structures.
pub mod hidden {
    /// XDP: `data`, `data_end`, `data_meta` as 64-bit pointers.
    pub const XDP_DATA: i16 = 24;
    pub const XDP_DATA_END: i16 = 32;
    pub const XDP_DATA_META: i16 = 40;
    /// skb: `data`, `data_end`, `data_meta` as 64-bit pointers.
    pub const SKB_DATA: i16 = 192;
    pub const SKB_DATA_END: i16 = 200;
    pub const SKB_DATA_META: i16 = 208;
}

/// The backing structure of an XDP context.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, Default)]
pub struct XdpCtx {
    /// `struct xdp_md` as the program sees it.
    pub md: [u32; 6],
    pub data: u64,
    pub data_end: u64,
    pub data_meta: u64,
    /// `data_hard_start`: start of the frame.
    pub hard_start: u64,
    /// Highest `data_end` (frame end minus the shared-info tailroom).
    pub max_end: u64,
    /// Address of the packet's [`XdpFrags`] (its `skb_shared_info`), 0 for a
    /// packet built without fragments.
    pub frags: u64,
}

/// One fragment (`skb_frag_t`): `size` bytes at `addr + off` in a page.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpFrag {
    pub addr: u64,
    pub off: u32,
    pub size: u32,
}

/// The fragment part of an XDP packet (what Linux keeps in the frame's
/// `skb_shared_info`): the linear part lies between `data` and `data_end`,
/// the rest of the packet in `frags[..nr]`, in order.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XdpFrags {
    /// `xdp_buff_has_frags`: set by test_run when the input did not fit the
    /// linear area, cleared when shrinking releases the last fragment.
    pub has_frags: bool,
    /// `nr_frags`.
    pub nr: u32,
    /// `xdp_frags_size`: bytes in all fragments.
    pub size: u32,
    pub frags: [XdpFrag; MAX_SKB_FRAGS],
}

impl XdpFrags {
    /// The live fragments.
    pub fn live(&self) -> &[XdpFrag] {
        &self.frags[..(self.nr as usize).min(MAX_SKB_FRAGS)]
    }
}

/// The backing structure of an skb context.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub struct SkbCtx {
    /// `struct __sk_buff` as the program sees it.
    pub uapi: [u8; SK_BUFF_SIZE],
    pub data: u64,
    pub data_end: u64,
    pub data_meta: u64,
}

impl Default for SkbCtx {
    fn default() -> Self {
        SkbCtx {
            uapi: [0; SK_BUFF_SIZE],
            data: 0,
            data_end: 0,
            data_meta: 0,
        }
    }
}

impl XdpCtx {
    /// Set the three packet pointers (hidden and UAPI fields).
    pub fn set_pointers(&mut self, meta: u64, data: u64, end: u64) {
        self.data_meta = meta;
        self.data = data;
        self.data_end = end;
        self.md[0] = data as u32;
        self.md[1] = end as u32;
        self.md[2] = meta as u32;
    }

    /// The UAPI bytes (`ctx_out`).
    pub fn uapi_bytes(&self) -> Vec<u8> {
        self.md.iter().flat_map(|v| v.to_ne_bytes()).collect()
    }

    /// The packet's fragments, if it was built with any.
    ///
    /// # Safety
    /// `self.frags` must be 0 or point to a live [`XdpFrags`] (as set by
    /// [`XdpPacket::attach`] for the duration of a run).
    pub unsafe fn frag_info<'a>(&self) -> Option<&'a mut XdpFrags> {
        // SAFETY: caller contract.
        unsafe { (self.frags as *mut XdpFrags).as_mut() }
    }
}

/// Why an XDP test-run input cannot be built (Linux's errno in each case).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XdpInputError {
    /// Fewer than 14 bytes after the metadata (`EINVAL`).
    TooShort { len: usize },
    /// More than the linear area plus [`MAX_SKB_FRAGS`] pages (`ENOMEM`).
    TooManyFragments { len: usize, max: usize },
}

/// An XDP test-run packet as Linux's `bpf_prog_test_run_xdp` builds it: a
/// zeroed page with 256 bytes of headroom (metadata taken from it) and
/// 320 bytes of `skb_shared_info` tailroom holding up to 3520 bytes (the
/// linear part, or less when `ctx_in.data_end` asks for less); the rest of the
/// input in page-sized fragments (at most [`MAX_SKB_FRAGS`]).
pub struct XdpPacket {
    frame: crate::frame::Frame,
    /// Offset of `data_meta` in the frame.
    start: usize,
    metalen: usize,
    linear: usize,
    pages: Vec<crate::frame::Frame>,
    frags: Option<Box<XdpFrags>>,
}

impl XdpPacket {
    /// Largest linear part (metadata included) for `metalen` bytes of metadata.
    pub fn max_linear(metalen: usize) -> usize {
        FRAME_SIZE - (XDP_HEADROOM - metalen) - SHARED_INFO_SIZE
    }

    /// Largest input for `metalen` bytes of metadata.
    pub fn max_input(metalen: usize) -> usize {
        Self::max_linear(metalen) + MAX_SKB_FRAGS * FRAG_PAGE_SIZE
    }

    /// Builds the packet: `input` starts with `metalen` bytes of metadata
    /// (a multiple of 4 of at most [`XDP_MAX_META`], checked by the caller); `linear` (metadata included, at
    /// most `input.len()`) bytes go to the linear part, capped at
    /// [`XdpPacket::max_linear`]; the rest becomes fragments.
    pub fn build(input: &[u8], metalen: usize, linear: usize) -> Result<XdpPacket, XdpInputError> {
        debug_assert!(metalen <= XDP_MAX_META && metalen <= linear && linear <= input.len());
        if input.len() - metalen < ETH_HLEN {
            return Err(XdpInputError::TooShort {
                len: input.len() - metalen,
            });
        }
        let max = Self::max_input(metalen);
        if input.len() > max {
            return Err(XdpInputError::TooManyFragments {
                len: input.len(),
                max,
            });
        }
        let linear = linear.min(Self::max_linear(metalen));
        let start = XDP_HEADROOM - metalen;
        let mut frame = crate::frame::Frame::take();
        let f = frame.bytes_mut();
        f[..start].fill(0);
        f[start..start + linear].copy_from_slice(&input[..linear]);
        f[start + linear..].fill(0);
        let rest = &input[linear..];
        let (pages, frags) = if rest.is_empty() {
            (Vec::new(), None)
        } else {
            let mut info = Box::<XdpFrags>::default();
            let mut pages = Vec::with_capacity(rest.len().div_ceil(FRAG_PAGE_SIZE));
            for chunk in rest.chunks(FRAG_PAGE_SIZE) {
                let mut page = crate::frame::Frame::take();
                page.bytes_mut()[..chunk.len()].copy_from_slice(chunk);
                info.frags[info.nr as usize] = XdpFrag {
                    addr: page.addr(),
                    off: 0,
                    size: chunk.len() as u32,
                };
                info.nr += 1;
                info.size += chunk.len() as u32;
                pages.push(page);
            }
            info.has_frags = true;
            (pages, Some(info))
        };
        Ok(XdpPacket {
            frame,
            start,
            metalen,
            linear,
            pages,
            frags,
        })
    }

    /// The frame holding the linear part.
    pub fn frame(&self) -> &crate::frame::Frame {
        &self.frame
    }

    pub fn frame_mut(&mut self) -> &mut crate::frame::Frame {
        &mut self.frame
    }

    /// Bytes in fragments when built.
    pub fn frag_bytes(&self) -> usize {
        self.frags.as_ref().map_or(0, |f| f.size as usize)
    }

    /// Number of fragment pages when built.
    pub fn frag_pages(&self) -> usize {
        self.pages.len()
    }

    /// Points `x` at this packet: packet pointers, `data_hard_start`, the
    /// linear limit and the fragments. `x` must not outlive `self`.
    pub fn attach(&mut self, x: &mut XdpCtx) {
        let base = self.frame.addr();
        let meta = base + self.start as u64;
        x.set_pointers(meta, meta + self.metalen as u64, meta + self.linear as u64);
        x.hard_start = base;
        x.max_end = base + (FRAME_SIZE - SHARED_INFO_SIZE) as u64;
        x.frags = self
            .frags
            .as_mut()
            .map_or(0, |f| &mut **f as *mut XdpFrags as u64);
    }

    /// Linux's `data_out` after a run: `data_meta..data_end` of the linear
    /// part followed by every remaining fragment, appended to `out`.
    pub fn output_into(&self, x: &XdpCtx, out: &mut Vec<u8>) {
        let base = self.frame.addr();
        let (meta, end) = ((x.data_meta - base) as usize, (x.data_end - base) as usize);
        out.extend_from_slice(&self.frame.bytes()[meta..end]);
        if let Some(info) = &self.frags {
            for f in info.live() {
                // SAFETY: every live fragment lies in one of `self.pages`
                // (helpers keep off + size within the page).
                let bytes = unsafe {
                    std::slice::from_raw_parts(
                        (f.addr + f.off as u64) as *const u8,
                        f.size as usize,
                    )
                };
                out.extend_from_slice(bytes);
            }
        }
    }
}

impl SkbCtx {
    pub fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.uapi[off..off + 4].try_into().expect("4 bytes"))
    }

    pub fn set_u32(&mut self, off: usize, v: u32) {
        self.uapi[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// Set the packet pointers (hidden and UAPI fields) and `len`.
    pub fn set_pointers(&mut self, meta: u64, data: u64, end: u64) {
        self.data_meta = meta;
        self.data = data;
        self.data_end = end;
        self.set_u32(sk_buff::DATA, data as u32);
        self.set_u32(sk_buff::DATA_END, end as u32);
        self.set_u32(sk_buff::DATA_META, meta as u32);
    }
}

/// `eth_type_trans` for the loopback device (address 00:00:00:00:00:00) as
/// Linux's skb test_run applies it: `(pkt_type, protocol in network order)`.
pub fn eth_type_trans(frame: &[u8]) -> (u32, u16) {
    let dst = &frame[..6];
    // `lo`'s broadcast address is 00:00:00:00:00:00 too, so a multicast
    // destination (even ff:ff:ff:ff:ff:ff) is never PACKET_BROADCAST.
    let pkt_type = if dst[0] & 1 != 0 {
        2 // PACKET_MULTICAST
    } else if dst.iter().any(|&b| b != 0) {
        3 // PACKET_OTHERHOST
    } else {
        0 // PACKET_HOST
    };
    let proto = u16::from_be_bytes([frame[12], frame[13]]);
    let proto = if proto >= 0x0600 {
        proto
    } else if frame.len() >= 16 && frame[14] == 0xff && frame[15] == 0xff {
        0x0001 // ETH_P_802_3
    } else {
        0x0004 // ETH_P_802_2
    };
    (pkt_type, proto)
}
