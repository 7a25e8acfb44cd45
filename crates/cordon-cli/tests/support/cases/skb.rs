//! Cases for tests/bpf/skb_helpers.c: VLAN push/pop, change_tail/head, the
//! skb hash and the socket cookie (packet, ctx and `res` compared with Linux).

use super::super::packets::*;
use super::Case;

/// An Ethernet frame with `ethertype` whose bytes 14..16 hold `arg`
/// (big-endian), padded with a counting pattern to `len` bytes.
fn with_arg(ethertype: u16, arg: u16, len: usize) -> Vec<u8> {
    let mut f = eth(ethertype);
    f.extend_from_slice(&arg.to_be_bytes());
    let mut rest = sized(&[], len.saturating_sub(f.len()));
    f.append(&mut rest);
    f
}

/// A frame with VLAN tags (tpid, tci) in the packet, then `ethertype`,
/// padded to `len` bytes.
fn tagged(tags: &[(u16, u16)], ethertype: u16, len: usize) -> Vec<u8> {
    let mut f = eth(tags.first().map_or(ethertype, |t| t.0));
    for (i, (_, tci)) in tags.iter().enumerate() {
        f.extend_from_slice(&tci.to_be_bytes());
        let next = tags.get(i + 1).map_or(ethertype, |t| t.0);
        f.extend_from_slice(&next.to_be_bytes());
    }
    padded(f, len)
}

fn single(prog: &'static str, name: String, pkt: Vec<u8>) -> Case {
    let mut c = Case::new("skb_helpers.o", prog, vec![pkt])
        .maps(&["res"])
        .ctx();
    c.name = format!("skb_helpers.o/{prog}/{name}");
    c
}

pub fn skb_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // One push: 802.1Q, 802.1ad, and a protocol that becomes 802.1Q.
    for proto in [0x8100u16, 0x88a8, 0x0800, 0] {
        cases.push(single(
            "vlan_push1",
            format!("{proto:04x}"),
            with_arg(0x0800, proto, 60),
        ));
    }
    // Two pushes: the first tag lands in the packet.
    for pkt in [
        ipv4([10, 0, 0, 1], 17, &udp(1, 2, b"x")),
        tagged(&[(0x8100, 0x0064)], 0x86dd, 64),
        // Shortest frame (not IPv4: Linux refuses IPv4 frames without a
        // whole IP header).
        with_arg(0x88b5, 0, 14),
    ] {
        let n = pkt.len();
        cases.push(single("vlan_push2", format!("len{n}"), pkt));
    }
    // Pop: untagged (nothing), one tag, two tags (the inner one moves into
    // the skb), 802.1ad outer, an 802.2 payload behind the tag, LLC-raw
    // (0xffff) payload, a truncated tag (-ENOMEM); bit 0 of the TCI pushes
    // first, bit 1 pops twice.
    let pops: Vec<(&str, Vec<u8>)> = vec![
        ("untagged", with_arg(0x0800, 0, 60)),
        ("untagged_push", with_arg(0x0800, 1, 60)),
        ("one", tagged(&[(0x8100, 0x0064)], 0x0800, 60)),
        ("one_twice", tagged(&[(0x8100, 0x0066)], 0x0800, 60)),
        ("one_push", tagged(&[(0x8100, 0x0065)], 0x0800, 60)),
        ("one_push_twice", tagged(&[(0x8100, 0x0067)], 0x0800, 60)),
        (
            "two",
            tagged(&[(0x88a8, 0x0c8), (0x8100, 0x0345)], 0x86dd, 70),
        ),
        (
            "two_twice",
            tagged(&[(0x88a8, 0x0ca), (0x8100, 0x0345)], 0x86dd, 70),
        ),
        (
            "three_twice",
            tagged(
                &[(0x8100, 0x0a), (0x8100, 0x0b), (0x88a8, 0x0c)],
                0x0800,
                80,
            ),
        ),
        ("llc", tagged(&[(0x8100, 0x0064)], 0x0030, 60)),
        ("raw8023", {
            let mut f = tagged(&[(0x8100, 0x0064)], 0x0030, 60);
            f[18] = 0xff;
            f[19] = 0xff;
            f
        }),
        ("short", {
            let mut f = tagged(&[(0x8100, 0x0064)], 0x0800, 18);
            f.truncate(17);
            f
        }),
        ("exact18", tagged(&[(0x8100, 0x0064)], 0x0800, 18)),
        ("short_twice", {
            let mut f = tagged(&[(0x8100, 0x0066), (0x8100, 0)], 0x0800, 20);
            f.truncate(20);
            f
        }),
    ];
    for (name, pkt) in pops {
        cases.push(single("vlan_pop", name.into(), pkt));
    }
    // change_tail: grow (zeroed), shrink, to the network header, the maximum,
    // refusals (below the network header, above the maximum).
    for n in [60u16, 100, 14, 16, 1500, 16064, 16065, 13, 0, 3000, 4000] {
        cases.push(single("tail", format!("{n}"), with_arg(0x0800, n, 60)));
    }
    for room in [0u16, 1, 10, 200] {
        cases.push(single(
            "tail_limits",
            format!("{room}"),
            with_arg(0x0800, room, 40),
        ));
    }
    // change_head: nothing, a few bytes, past the frame's headroom, the
    // maximum, one more (refused), a huge value (wraps: refused).
    for n in [
        0u16,
        4,
        14,
        64,
        65,
        500,
        4000,
        16064 - 60,
        16064 - 59,
        0xffff,
    ] {
        cases.push(single("head", format!("{n}"), with_arg(0x0800, n, 60)));
    }
    // adjust_room: parameters in the last 8 bytes (see skb_helpers.c).
    const GSO: u8 = 1;
    const V4: u8 = 1 << 1;
    const V6: u8 = 1 << 2;
    const GRE: u8 = 1 << 3;
    const UDP: u8 = 1 << 4;
    const L2: u8 = 1 << 6;
    let room = |base: Vec<u8>, diff: i16, mode: u8, flags: u8, inner: u8, decap: u8| {
        let mut f = base;
        let d = diff.to_be_bytes();
        f.extend_from_slice(&[d[0], d[1], mode, flags, inner, 0, 0, decap]);
        f
    };
    let v4 = || ipv4([10, 0, 0, 1], 17, &udp(7, 9, b"0123456789abcdef"));
    let v6 = || ipv6([3; 16], 6, &tcp(7, 9, b"0123456789"));
    let rooms: Vec<(&str, Vec<u8>)> = vec![
        ("mac_grow", room(v4(), 8, 1, 0, 0, 0)),
        ("net_grow", room(v4(), 8, 0, 0, 0, 0)),
        ("net_grow_v6", room(v6(), 16, 0, 0, 0, 0)),
        ("net_shrink", room(v4(), -8, 0, 0, 0, 0)),
        ("mac_shrink", room(v4(), -8, 1, 0, 0, 0)),
        ("shrink_too_far", room(v4(), -40, 0, 0, 0, 0)),
        ("shrink_all", room(v4(), -200, 1, 0, 0, 0)),
        ("fixed_gso", room(v4(), 4, 1, GSO, 0, 0)),
        ("ipip", room(v4(), 20, 1, V4, 0, 0)),
        ("udp_encap", room(v4(), 28, 1, V4 | UDP, 0, 0)),
        ("gre_eth", room(v4(), 38, 1, V4 | GRE | L2, 14, 0)),
        ("v6_in_v4", room(v4(), 40, 1, V6, 0, 0)),
        ("v4_in_v6", room(v6(), 20, 1, V4, 0, 0)),
        ("v6_udp", room(v6(), 48, 1, V6 | UDP, 0, 0)),
        ("eth_without_l3", room(v4(), 20, 1, L2, 10, 0)),
        ("eth_short_inner", room(v4(), 20, 1, V4 | L2, 10, 0)),
        ("both_l3", room(v4(), 10, 1, V4 | V6, 0, 0)),
        ("gre_and_udp", room(v4(), 10, 1, V4 | GRE | UDP, 0, 0)),
        ("inner_too_long", room(v4(), 4, 1, V4, 8, 0)),
        ("encap_shrink", room(v4(), -8, 1, V4, 0, 0)),
        ("decap_v4", room(v6(), -20, 1, 0, 0, 1)),
        ("decap_v6", room(v4(), -4, 1, 0, 0, 2)),
        ("decap_grow", room(v4(), 8, 1, 0, 0, 1)),
        ("decap_both", room(v4(), -8, 1, 0, 0, 3)),
        ("undefined_flag", room(v4(), 8, 1, 0, 0, 0x80)),
        ("diff_4095", room(v4(), 0xfff, 1, 0, 0, 0)),
        ("diff_4096", room(v4(), 0x1000, 1, 0, 0, 0)),
        ("diff_minus_4096", room(v4(), -0x1000, 1, 0, 0, 0)),
        ("mode_2", room(v4(), 8, 2, 0, 0, 0)),
        ("arp", room(with_arg(0x0806, 1, 60), 8, 1, 0, 0, 0)),
        ("csum_flag", room(v4(), 8, 0, 1 << 5, 0, 0)),
    ];
    for (name, pkt) in rooms {
        cases.push(single("room", name.into(), pkt));
    }
    // Growing past the headroom makes Linux expand the head, which shifts
    // the unset transport header into a set one: change_tail's minimum moves.
    for diff in [24i16, 32, 33, 63, 65, 100, 200, 1000, 2000] {
        cases.push(single(
            "room",
            format!("headroom_{diff}"),
            room(v4(), diff, 1, 0, 0, 0),
        ));
    }
    // change_proto: to the protocol in the last 2 bytes, flags before them.
    let with_tail = |mut f: Vec<u8>, flags: u8, proto: u16| {
        f.push(flags);
        f.extend_from_slice(&proto.to_be_bytes());
        f
    };
    let protos: Vec<(&str, Vec<u8>)> = vec![
        ("v4_to_v6", with_tail(v4(), 0, 0x86dd)),
        ("v6_to_v4", with_tail(v6(), 0, 0x0800)),
        ("v4_to_v4", with_tail(v4(), 0, 0x0800)),
        ("v6_to_arp", with_tail(v6(), 0, 0x0806)),
        ("arp_to_v6", with_tail(with_arg(0x0806, 1, 60), 0, 0x86dd)),
        ("flags", with_tail(v4(), 1, 0x86dd)),
    ];
    for (name, pkt) in protos {
        cases.push(single("proto", name.into(), pkt));
    }
    cases.push(
        Case::new("skb_helpers.o", "cgroup", vec![with_arg(0x0800, 0, 60)])
            .expect(|_, _| 1)
            .maps(&["res"])
            .ctx(),
    );
    // load_bytes_relative (offset = arg), change_type, the task helpers.
    for off in [0u16, 2, 10, 12, 14, 40, 42, 43, 56, 200] {
        cases.push(single("misc", format!("{off}"), with_arg(0x0800, off, 60)));
    }
    for (i, off) in [0u8, 4, 22, 26, 27, 90].into_iter().enumerate() {
        let mut f = ipv4([10, 0, 0, 1], 17, &udp(1, 2, b"0123456789"));
        f[15] = off;
        let mut c = Case::new("skb_helpers.o", "misc_sock", vec![f])
            .maps(&["res"])
            .ctx();
        c.name = format!("skb_helpers.o/misc_sock/{i}");
        cases.push(c);
    }
    cases.push(
        Case::new("skb_helpers.o", "task_xdp", vec![with_arg(0x0800, 0, 60)])
            .expect(|_, _| 2)
            .maps(&["res"]),
    );
    // Hash: every property holds on IPv4/IPv6/TCP/UDP/ARP/VLAN frames.
    cases.push(
        Case::new(
            "skb_helpers.o",
            "hash",
            vec![
                ipv4([10, 0, 0, 1], 6, &tcp(1000, 80, b"")),
                ipv4([10, 0, 0, 2], 17, &udp(53, 53, b"q")),
                ipv6([7; 16], 17, &udp(1, 2, b"")),
                with_arg(0x0806, 1, 60),
                tagged(&[(0x8100, 0x0064)], 0x0800, 60),
                with_arg(0x88b5, 0, 14),
            ],
        )
        .expect(|_, _| 0xff)
        .maps(&["res"])
        .ctx(),
    );
    cases.push(
        Case::new("skb_helpers.o", "cookie", vec![with_arg(0x0800, 0, 60)])
            .expect(|_, _| 3)
            .ctx(),
    );
    cases.push(
        Case::new(
            "skb_helpers.o",
            "cookie_sock",
            vec![ipv4([10, 0, 0, 1], 6, &tcp(1, 2, b""))],
        )
        .expect(|_, _| 3)
        .ctx(),
    );
    cases
}
