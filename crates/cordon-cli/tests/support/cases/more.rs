//! Cases for the programs added for helpers, contexts and edge cases the
//! first set did not cover from C (xdp_tail_meta … tail_chain).

use super::super::packets::*;
use super::Case;

const XDP_ABORTED: u32 = 0;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

/// Internet checksum (RFC 1071) of `bytes`, as stored big-endian.
pub fn inet_csum(bytes: &[u8], seed: u32) -> u16 {
    let mut sum = seed;
    for c in bytes.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Fill in the IPv4 header checksum and the TCP/UDP checksum (pseudo
/// header included) of an Ethernet + IPv4 (IHL 5) frame.
pub fn with_csums(mut f: Vec<u8>) -> Vec<u8> {
    f[24] = 0;
    f[25] = 0;
    let c = inet_csum(&f[14..34], 0);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let proto = f[23];
    let l4_len = f.len() - 34;
    let off = match proto {
        6 => 34 + 16,
        17 => 34 + 6,
        _ => return f,
    };
    f[off] = 0;
    f[off + 1] = 0;
    let mut pseudo = 0u32;
    for w in f[26..34].chunks(2) {
        pseudo += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    pseudo += u32::from(proto) + l4_len as u32;
    let c = inet_csum(&f[34..], pseudo);
    f[off..off + 2].copy_from_slice(&c.to_be_bytes());
    f
}

fn sdiv64(a: i64, b: i64) -> i64 {
    if b == 0 { 0 } else { a.wrapping_div(b) }
}
fn smod64(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { a.wrapping_rem(b) }
}
fn sdiv32(a: i32, b: i32) -> i32 {
    if b == 0 { 0 } else { a.wrapping_div(b) }
}
fn smod32(a: i32, b: i32) -> i32 {
    if b == 0 { a } else { a.wrapping_rem(b) }
}

/// sdiv_edge's result for dividend `a` and divisor `b`, with Linux's
/// semantics for division by zero and overflow.
fn sdiv_model(a: i64, b: i64) -> u32 {
    let (a32, b32) = (a as i32, b as i32);
    let r = [
        sdiv64(a, b),
        smod64(a, b),
        i64::from(sdiv32(a32, b32)),
        i64::from(smod32(a32, b32)),
        sdiv64(a, -7),
        smod64(a, -7),
        i64::from(sdiv32(a32, 3)),
        i64::from(smod32(a32, -3)),
    ];
    let x = r.iter().fold(0u64, |x, v| x ^ *v as u64);
    (x ^ (x >> 32)) as u32
}

fn two_i64(a: i64, b: i64, len: usize) -> Vec<u8> {
    let mut h = a.to_le_bytes().to_vec();
    h.extend_from_slice(&b.to_le_bytes());
    sized(&h, len)
}

/// Ethernet with VLAN tags (TPID, VID) then `ethertype`.
fn vlan_eth(tags: &[(u16, u16)], ethertype: u16) -> Vec<u8> {
    let mut f = eth(tags.first().map_or(ethertype, |t| t.0));
    for (i, (_, vid)) in tags.iter().enumerate() {
        f.extend_from_slice(&vid.to_be_bytes());
        let next = tags.get(i + 1).map_or(ethertype, |t| t.0);
        f.extend_from_slice(&next.to_be_bytes());
    }
    f
}

/// IPv6 header with next header `next` followed by extension headers
/// (type, total length in bytes) ending in `upper` and 8 payload bytes.
fn ipv6_exts(next_first: u8, exts: &[(u8, usize)], upper: u8) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, (_, len)) in exts.iter().enumerate() {
        let next = exts.get(i + 1).map_or(upper, |e| e.0);
        let mut h = vec![0u8; *len];
        h[0] = next;
        h[1] = (*len / 8 - 1) as u8;
        body.extend(h);
    }
    body.extend_from_slice(&[0x11; 8]);
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(body.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[next_first, 64]);
    ip.extend_from_slice(&ip6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]));
    ip.extend_from_slice(&ip6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2]));
    ip.extend(body);
    ip
}

/// IPv4/TCP frame whose TCP header carries `opts` (padded to 4 bytes).
fn tcp_with_opts(opts: &[u8]) -> Vec<u8> {
    let mut o = opts.to_vec();
    while !o.len().is_multiple_of(4) {
        o.push(0);
    }
    let mut t = tcp(40000, 443, b"");
    t[12] = (((20 + o.len()) / 4) << 4) as u8;
    t.truncate(20);
    t.extend(o);
    t.extend_from_slice(b"data");
    ipv4([10, 0, 0, 9], 6, &t)
}

pub fn more_cases() -> Vec<Case> {
    let mut cases = Vec::new();

    // xdp_tail_meta: trim first byte % 8 (0xff: everything → -EINVAL).
    cases.push(
        Case::new(
            "xdp_tail_meta.o",
            "xdp_tail_meta",
            vec![
                sized(&[0], 60),
                sized(&[5], 60),
                sized(&[7], 20),
                sized(&[3], 17),
                sized(&[0xff], 60),
            ],
        )
        .expect(|_, p| {
            let trim = if p[0] == 0xff {
                p.len()
            } else {
                usize::from(p[0] % 8)
            };
            let fits = p.len() - trim.min(p.len()) >= 14;
            let new_len = if fits { p.len() - trim } else { p.len() };
            (1 << 24) | (u32::from(!fits) << 20) | new_len as u32
        }),
    );

    // tc_nat: 10.0.0.254:80 → 192.168.1.1:8080 with checksums fixed up.
    let mut udp_nocsum = ipv4([10, 0, 0, 5], 17, &udp(5353, 80, b"payload!"));
    udp_nocsum = with_csums(udp_nocsum);
    udp_nocsum[40] = 0;
    udp_nocsum[41] = 0;
    let mut short = with_csums(ipv4([10, 0, 0, 5], 6, &tcp(1, 80, b"")));
    short.truncate(36);
    cases.push(
        Case::new(
            "tc_nat.o",
            "tc_nat",
            vec![
                with_csums(ipv4([10, 0, 0, 5], 6, &tcp(40000, 80, b"GET / HTTP/1.0"))),
                with_csums(ipv4([172, 16, 3, 4], 17, &udp(5353, 80, b"odd"))),
                udp_nocsum,
                with_csums(ipv4([10, 0, 0, 5], 6, &tcp(40000, 443, b"tls"))),
                with_csums(ipv4([10, 0, 0, 5], 1, &[8, 0, 0, 0, 0, 1, 0, 1])),
                ipv6([1; 16], 6, &tcp(1, 80, b"")),
                short,
            ],
        )
        .expect(|i, _| [TC_ACT_OK, TC_ACT_OK, TC_ACT_OK, 1, 1, 1, TC_ACT_SHOT][i])
        .maps(&["nat_hits"]),
    );

    // csum_diff: correct header → 0xffff; zero checksum → fixed.
    let good = with_csums(ipv4([10, 1, 2, 3], 17, &udp(1, 2, b"abcd")));
    let fixed = {
        let c = [good[24], good[25]];
        let mut f = good.clone();
        f[24] = 0;
        f[25] = 0;
        (f, 0x1_0000 | u32::from(u16::from_le_bytes(c)))
    };
    let mut bad = good.clone();
    bad[24] ^= 0x55;
    let bad_fixed = 0x1_0000 | u32::from(u16::from_le_bytes([good[24], good[25]]));
    cases.push(
        Case::new(
            "csum_diff.o",
            "xdp_csum",
            vec![
                good,
                fixed.0,
                bad,
                ipv6([2; 16], 17, &udp(1, 2, b"")),
                sized(&[0; 12], 20),
            ],
        )
        .expect(move |i, _| [0xffff, fixed.1, bad_fixed, 0x8000_0000, 0x8000_0000][i]),
    );

    // redirect: ifindex from byte 0; 0xee passes a bad flag.
    cases.push(
        Case::new(
            "redirect.o",
            "xdp_redirect",
            vec![sized(&[0], 40), sized(&[5], 40), sized(&[0xee], 40)],
        )
        .expect(|i, _| [XDP_PASS, XDP_REDIRECT, XDP_ABORTED][i]),
    );
    cases.push(
        Case::new(
            "redirect.o",
            "tc_redirect",
            vec![
                sized(&[0, 0], 40),
                sized(&[3, 0], 40),
                sized(&[3, 1], 40),
                sized(&[0xee, 0], 40),
            ],
        )
        .expect(|i, _| [TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_REDIRECT, TC_ACT_SHOT][i]),
    );

    // time_rand: every property holds.
    cases.push(
        Case::new(
            "time_rand.o",
            "time_rand",
            vec![sized(&[], 14), sized(&[], 99)],
        )
        .expect(|_, _| 0x3f),
    );

    // printk_fmt: the byte counts bpf_trace_printk returns; 255 tries %n.
    cases.push(Case::new(
        "printk_fmt.o",
        "printk_fmt",
        vec![
            sized(&[], 14),
            sized(&[], 100),
            sized(&[], 255),
            sized(&[], 1500),
        ],
    ));

    // vlan_ipv6.
    const HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAG: u8 = 44;
    const DSTOPTS: u8 = 60;
    let with = |mut f: Vec<u8>, ip: Vec<u8>| {
        f.extend(ip);
        f
    };
    let mut trunc = with(eth(0x86dd), ipv6_exts(HOP, &[(HOP, 16), (ROUTING, 24)], 6));
    trunc.truncate(14 + 40 + 16 + 1);
    cases.push(
        Case::new(
            "vlan_ipv6.o",
            "vlan_ipv6",
            vec![
                with(eth(0x86dd), ipv6_exts(17, &[], 17)),
                with(
                    vlan_eth(&[(0x8100, 0x0064)], 0x86dd),
                    ipv6_exts(HOP, &[(HOP, 8), (FRAG, 8)], 6),
                ),
                with(
                    vlan_eth(&[(0x88a8, 0x2010), (0x8100, 0x0064)], 0x86dd),
                    ipv6_exts(ROUTING, &[(ROUTING, 24), (DSTOPTS, 16)], 58),
                ),
                with(
                    vlan_eth(&[(0x8100, 0x0007)], 0x86dd),
                    ipv6_exts(
                        DSTOPTS,
                        &[
                            (DSTOPTS, 8),
                            (HOP, 8),
                            (ROUTING, 8),
                            (FRAG, 8),
                            (DSTOPTS, 8),
                            (HOP, 8),
                        ],
                        17,
                    ),
                ),
                with(
                    eth(0x86dd),
                    ipv6_exts(
                        HOP,
                        &[
                            (HOP, 8),
                            (HOP, 8),
                            (HOP, 8),
                            (HOP, 8),
                            (HOP, 8),
                            (HOP, 8),
                            (HOP, 8),
                        ],
                        17,
                    ),
                ),
                with(vlan_eth(&[(0x8100, 0x0064)], 0x0800), vec![0x45; 20]),
                trunc,
                padded(vlan_eth(&[(0x8100, 5)], 0x86dd), 20),
            ],
        )
        .expect(|i, _| {
            [
                17,
                2 << 16 | 1 << 12 | 6,
                2 << 16 | 2 << 12 | 58,
                6 << 16 | 1 << 12 | 17,
                0xffd,
                0xfff,
                0xffe,
                0xffe,
            ][i]
        })
        .maps(&["vlan_seen"]),
    );

    // tcp_opts.
    let syn = [
        2, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0,
    ];
    let mut bad_doff = tcp_with_opts(&[]);
    bad_doff[14 + 20 + 12] = 0x30;
    cases.push(
        Case::new(
            "tcp_opts.o",
            "tcp_opts",
            vec![
                tcp_with_opts(&syn),
                tcp_with_opts(&[]),
                tcp_with_opts(&[1, 1, 1, 3, 3, 14, 0]),
                tcp_with_opts(&[2, 4, 0x23, 0x28, 99, 6, 1, 2, 3, 4, 4, 2]),
                tcp_with_opts(&[1, 2, 0]),
                tcp_with_opts(&[2, 40]),
                bad_doff,
                ipv4([10, 0, 0, 9], 17, &udp(1, 2, b"")),
            ],
        )
        .expect(|i, _| {
            [
                1460 << 16 | 7 << 8 | 1 << 4 | 1,
                0,
                14 << 8,
                0x2328 << 16 | 1 << 4,
                0xdead,
                0xdead,
                0xdead,
                0,
            ][i]
        })
        .maps(&["last_tsval"]),
    );

    // queue_full: 4 entries, pushes 6 (2 fail per map), BPF_EXIST replaces the oldest.
    cases.push(
        Case::new("queue_full.o", "queue_full", lens(&[20, 60, 20], &[]))
            .expect(|_, p| {
                let b = p.len() as u32 * 10;
                4 << 24 | ((b + 1) % 256) << 16 | ((4 * b + 106) % 65536)
            })
            .maps(&["order"]),
    );

    // ringbuf_query: nothing consumes, so prod - cons grows by both records.
    cases.push(
        Case::new(
            "ringbuf_query.o",
            "ringbuf_query",
            lens(&[14, 60, 61, 100], &[]),
        )
        .expect(|i, _| {
            let used: u32 = [14u32, 60, 61, 100][..=i]
                .iter()
                .map(|l| (l % 64 + 8).div_ceil(8) * 8 + 16)
                .sum();
            64 << 24 | used
        }),
    );

    // sdiv_edge: overflow, division by zero, signs.
    let pairs: [(i64, i64); 7] = [
        (i64::MIN, -1),
        (7, 0),
        (-7, 2),
        (100, -3),
        (0x8000_0000, -1),
        (-1, 0),
        (i64::MAX, i64::MIN),
    ];
    cases.push(
        Case::new(
            "sdiv_edge.o",
            "sdiv_edge",
            pairs.iter().map(|&(a, b)| two_i64(a, b, 40)).collect(),
        )
        .expect(move |i, _| sdiv_model(pairs[i].0, pairs[i].1))
        .maps(&["out"]),
    );

    // tail_chain: 33 tail calls, the 34th falls through.
    cases.push(
        Case::new("tail_chain.o", "chain_entry", lens(&[20, 60], &[]))
            .named("empty")
            .expect(|_, _| 1)
            .maps(&["chain_hits"]),
    );
    let mut chain = Case::new("tail_chain.o", "chain_entry", lens(&[20, 60], &[]))
        .expect(|_, _| 34)
        .maps(&["chain_hits"]);
    chain.tail_calls = vec![("chain", 0, "chain_step")];
    cases.push(chain);
    cases
}

fn lens(lens: &[usize], head: &[u8]) -> Vec<Vec<u8>> {
    lens.iter().map(|&l| sized(head, l)).collect()
}
