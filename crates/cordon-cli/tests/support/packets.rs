//! Packet builders for the comparison tests (Ethernet frames, checksums not
//! needed by any test program).
#![allow(dead_code)]

pub fn ip4(a: [u8; 4]) -> [u8; 4] {
    a
}

pub fn ip6(words: [u16; 8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, w) in words.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&w.to_be_bytes());
    }
    out
}

pub fn eth(ethertype: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 0xfe, 0x02, 0, 0, 0, 0x12, 0x34];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

pub fn tcp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

pub fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// IPv4 header (IHL 5) + `l4`; `total` overrides the total-length field.
pub fn ipv4_hdr(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8], total: Option<u16>) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.unwrap_or((20 + l4.len()) as u16).to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(l4);
    h
}

pub fn ipv4(src: [u8; 4], proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = eth(0x0800);
    f.extend(ipv4_hdr(src, [10, 0, 0, 254], proto, l4, None));
    f
}

pub fn ipv6(src: [u8; 16], next: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = eth(0x86dd);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    f.extend_from_slice(&[next, 64]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ip6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xfe]));
    f.extend_from_slice(l4);
    f
}

/// A frame of `len` bytes whose first bytes are `head` (rest: a counting pattern).
pub fn sized(head: &[u8], len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let n = head.len().min(len);
    f[..n].copy_from_slice(&head[..n]);
    f
}

/// Pad a frame with zeros up to `len` bytes.
pub fn padded(mut f: Vec<u8>, len: usize) -> Vec<u8> {
    if f.len() < len {
        f.resize(len, 0);
    }
    f
}
