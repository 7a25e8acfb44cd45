//! Cases for tests/bpf/ld_abs_reshape.c: LD_ABS / LD_IND after each helper
//! that reshapes the skb (VLAN push/pop, change_head/tail, adjust_room,
//! change_proto, pull_data); packet, ctx and `res` compared with Linux.

use super::super::packets::*;
use super::Case;

/// `frame` with `arg` appended as its last two bytes (big-endian).
fn with_arg(mut frame: Vec<u8>, arg: u16) -> Vec<u8> {
    frame.extend_from_slice(&arg.to_be_bytes());
    frame
}

fn v4(len: usize) -> Vec<u8> {
    let f = ipv4([10, 0, 0, 1], 17, &udp(7, 9, &[0x5a; 4]));
    let mut f = sized(&f, len.max(f.len()));
    // Keep the IPv4 total length consistent with the padded frame.
    let total = (f.len() - 14 + 2) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f
}

fn v6() -> Vec<u8> {
    ipv6(
        ip6([0xfe80, 0, 0, 0, 0, 0, 0, 1]),
        17,
        &udp(7, 9, &[0xa5; 6]),
    )
}

fn single(prog: &'static str, name: String, pkt: Vec<u8>) -> Case {
    let mut c = Case::new("ld_abs_reshape.o", prog, vec![pkt])
        .maps(&["res"])
        .ctx();
    c.name = format!("ld_abs_reshape.o/{prog}/{name}");
    c
}

pub fn ld_abs_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for arg in [0u16, 1] {
        cases.push(single("vlan", format!("v4_{arg}"), with_arg(v4(60), arg)));
        cases.push(single("vlan", format!("v6_{arg}"), with_arg(v6(), arg)));
    }
    // A 16-byte non-IP frame: the MAC addresses move past its end.
    cases.push(single("vlan", "short".into(), with_arg(eth(0x88b5), 1)));
    for arg in [0u16, 2, 14, 100, 0xffff] {
        cases.push(single("head", format!("{arg}"), with_arg(v4(60), arg)));
    }
    for arg in [62u16, 90, 40, 14, 13, 0, 0xffff] {
        cases.push(single("tail", format!("{arg}"), with_arg(v4(60), arg)));
    }
    for arg in [8u16, 0xfff8, 0, 0xfffc, 0xff00] {
        cases.push(single("room", format!("v4_{arg:x}"), with_arg(v4(70), arg)));
        cases.push(single("room", format!("v6_{arg:x}"), with_arg(v6(), arg)));
    }
    for (name, pkt, arg) in [
        ("v4_to_v6", v4(60), 0x86ddu16),
        ("v6_to_v4", v6(), 0x0800),
        ("v4_same", v4(60), 0x0800),
        ("v4_bad", v4(60), 0x1234),
    ] {
        cases.push(single("proto", name.into(), with_arg(pkt, arg)));
    }
    for arg in [0u16, 20, 62, 63, 0xffff] {
        cases.push(single("pull", format!("{arg}"), with_arg(v4(60), arg)));
    }
    // The tail-called program reads the packet its caller reshaped.
    cases.push(single("tail_entry", "v4".into(), with_arg(v4(60), 0x0102)));
    cases.push(single(
        "tail_entry",
        "short".into(),
        with_arg(eth(0x88b5), 3),
    ));
    cases
}
