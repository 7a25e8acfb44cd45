//! The same hand-written programs in Linux (BPF_PROG_TEST_RUN) and in Cordon:
//! context fields, packet views, head/tail adjustment and checksums must give
//! the same retval and output packet. Skipped where the kernel is unavailable.

use cordon_isa::Insn;
use cordon_linux::{ProgType as KType, require, test_run};
use cordon_object::{Object, ProgType};
use cordon_runtime::{Backend, Config, Runtime};

fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(code, dst, src, off, imm)
}

const EXIT: Insn = Insn::new(0x95, 0, 0, 0, 0);

fn object(prog_type: ProgType, insns: Vec<Insn>) -> Object {
    Object::single_program("p", "test", prog_type, insns)
}

fn packets() -> Vec<Vec<u8>> {
    let zero = vec![0u8; 64];
    let mut unicast = vec![0u8; 80];
    unicast[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    unicast[12] = 0x08;
    unicast[14] = 0x45;
    unicast[23] = 17;
    let mut bcast = vec![0x11u8; 100];
    bcast[0..6].fill(0xff);
    bcast[12..14].copy_from_slice(&[0x86, 0xdd]);
    let mut mcast = vec![0u8; 60];
    mcast[0] = 0x01;
    mcast[12..16].copy_from_slice(&[0x00, 0x20, 0xff, 0xff]);
    vec![zero, unicast, bcast, mcast]
}

const TC: ProgType = ProgType::SchedCls;
const XDP: ProgType = ProgType::Xdp;
const SOCKET: ProgType = ProgType::SocketFilter;

/// The kernel's id of a program type.
fn ktype(t: ProgType) -> KType {
    KType(t.kernel_id())
}

/// [`compare`] for each program type of `types`, `what` prefixed by its name.
fn compare_on(types: &[ProgType], insns: &[Insn], what: &str) {
    for &t in types {
        compare(t, insns.to_vec(), &format!("{t:?} {what}"));
    }
}

/// Runs `insns` in Linux and in Cordon (4 modes) on every packet; compares
/// retval and data_out.
fn compare(ctype: ProgType, insns: Vec<Insn>, what: &str) {
    let ktype = ktype(ctype);
    for pkt in packets() {
        let k = require!(test_run(ktype, &insns, &[], &pkt, None, 1));
        for backend in [Backend::Interpreter, Backend::Jit] {
            for verify in [true, false] {
                let rt = Runtime::new(Config {
                    backend,
                    verify,
                    ..Config::default()
                });
                let o = rt.load_parsed(object(ctype, insns.clone())).unwrap();
                let p = o.program("p").unwrap();
                let r = match ctype {
                    ProgType::Xdp => p.run_xdp(&pkt),
                    _ => p.run_skb(&pkt),
                }
                .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(
                    r.retval, k.retval,
                    "{what} {backend:?} verify={verify} packet {pkt:02x?}"
                );
                assert_eq!(
                    r.packet, k.data_out,
                    "{what} {backend:?} verify={verify}: data_out"
                );
            }
        }
    }
}

#[test]
fn skb_fields_match_linux() {
    // gso_size (176) is left out: cordon-verifier refuses it (it treats
    // 168..180 as the `sk` pointer; Linux allows u32 reads of gso_size).
    let tc = [
        0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 68, 72, 84, 164,
    ];
    for off in tc {
        // tc_classid (72) is not readable by socket filters.
        let types: &[ProgType] = if off == 72 { &[TC] } else { &[TC, SOCKET] };
        compare_on(
            types,
            &[i(0x61, 0, 1, off, 0), EXIT],
            &format!("__sk_buff+{off}"),
        );
    }
    // Narrow loads of the protocol field.
    for (code, what) in [(0x71, "protocol u8"), (0x69, "protocol u16")] {
        compare(TC, vec![i(code, 0, 1, 16, 0), EXIT], what);
    }
}

#[test]
fn packet_pointers_match_linux() {
    // r0 = data_end - data (+ first byte when there is one).
    let tc = vec![
        i(0x61, 2, 1, 76, 0),
        i(0x61, 3, 1, 80, 0),
        i(0xbf, 0, 3, 0, 0),
        i(0x1f, 0, 2, 0, 0),
        EXIT,
    ];
    compare(TC, tc, "tc data_end - data");
    let xdp = vec![
        i(0x61, 2, 1, 0, 0),
        i(0x61, 3, 1, 4, 0),
        i(0x61, 4, 1, 8, 0),
        i(0xbf, 0, 3, 0, 0),
        i(0x1f, 0, 2, 0, 0),
        i(0x1f, 2, 4, 0, 0), // data - data_meta
        i(0x0f, 0, 2, 0, 0),
        EXIT,
    ];
    compare(XDP, xdp, "xdp data_end - data + data - meta");
    // egress_ifindex (20) needs BPF_XDP_DEVMAP in Linux.
    for off in [12, 16] {
        compare(
            XDP,
            vec![i(0x61, 0, 1, off, 0), EXIT],
            &format!("xdp_md+{off}"),
        );
    }
}

#[test]
fn xdp_adjust_helpers_match_linux() {
    for (helper, delta) in [
        (44, -216),
        (44, -217),
        (44, 46),
        (44, 47),
        (44, -8),
        (65, -46),
        (65, -47),
        (65, 100),
        (65, 3500),
        (54, -8),
        (54, -6),
        (54, -40),
    ] {
        compare(
            XDP,
            call2(helper, delta),
            &format!("helper {helper}({delta})"),
        );
    }
}

#[test]
fn csum_diff_matches_linux() {
    for (from, to, seed) in [
        (0, 8, 0x1234),
        (8, 0, 0),
        (4, 4, 0xffff_0000u32 as i32),
        (8, 8, 7),
    ] {
        let mut insns = vec![
            i(0x7a, 10, 0, -8, 0x0102_0304),
            i(0x7a, 10, 0, -16, 0x7f00_ff01),
            i(0x62, 10, 0, -12, 0xdead_beefu32 as i32),
        ];
        // r1 = from ptr (or 0), r2 = from size, r3 = to ptr (or 0), r4 = to size, r5 = seed
        if from == 0 {
            insns.push(i(0xb7, 1, 0, 0, 0));
        } else {
            insns.push(i(0xbf, 1, 10, 0, 0));
            insns.push(i(0x07, 1, 0, 0, -16));
        }
        insns.push(i(0xb7, 2, 0, 0, from));
        if to == 0 {
            insns.push(i(0xb7, 3, 0, 0, 0));
        } else {
            insns.push(i(0xbf, 3, 10, 0, 0));
            insns.push(i(0x07, 3, 0, 0, -8));
        }
        insns.extend([
            i(0xb7, 4, 0, 0, to),
            i(0xb7, 5, 0, 0, seed),
            i(0x85, 0, 0, 0, 28),
            EXIT,
        ]);
        compare_on(
            &[TC, XDP],
            &insns,
            &format!("csum_diff {from} {to} {seed:#x}"),
        );
    }
}

/// `r0 = helper(ctx, arg)`.
fn call2(helper: i32, arg: i32) -> Vec<Insn> {
    vec![i(0xb7, 2, 0, 0, arg), i(0x85, 0, 0, 0, helper), EXIT]
}

/// `r0 = helper(ctx, r2..r5)` with constant arguments.
fn call5(helper: i32, args: [i32; 4]) -> Vec<Insn> {
    vec![
        i(0xb7, 2, 0, 0, args[0]),
        i(0xb7, 3, 0, 0, args[1]),
        i(0xb7, 4, 0, 0, args[2]),
        i(0xb7, 5, 0, 0, args[3]),
        i(0x85, 0, 0, 0, helper),
        EXIT,
    ]
}

#[test]
fn skb_checksum_helpers_match_linux() {
    let from = i32::from_ne_bytes([0xc0, 0xa8, 0, 1]);
    let to = i32::from_ne_bytes([10, 1, 2, 3]);
    let cases: Vec<(i32, [i32; 4])> = vec![
        (10, [24, from, to, 4]),
        (10, [24, 0x0011, 0x2233, 2]),
        (10, [24, 0, 0x1234_5678, 0]),
        (10, [24, 0, 0, 3]),
        (10, [24, 0, 0, 0x14]),
        (10, [0x10000, from, to, 4]),
        (10, [59, from, to, 4]),
        (11, [40, from, to, 4 | 0x10]),
        (11, [40, 0x0011, 0x2233, 2]),
        (11, [40, from, to, 4 | 0x20]),
        (11, [40, 0, 0x1234_5678, 0x10]),
        (11, [40, from, to, 4 | 0x100]),
    ];
    for (helper, args) in cases {
        compare(
            TC,
            call5(helper, args),
            &format!("helper {helper} {args:x?}"),
        );
    }
}

#[test]
fn skb_bytes_and_redirect_match_linux() {
    // skb_store_bytes(ctx, off, r10 - 8, len, flags) after storing 8 bytes.
    for (off, len, flags) in [
        (10, 4, 0),
        (56, 8, 0),
        (57, 8, 0),
        (0, 8, 2),
        (0, 4, 4),
        (0x10000, 4, 0),
    ] {
        let insns = vec![
            i(0x7a, 10, 0, -8, 0x5566_7788),
            i(0xb7, 2, 0, 0, off),
            i(0xbf, 3, 10, 0, 0),
            i(0x07, 3, 0, 0, -8),
            i(0xb7, 4, 0, 0, len),
            i(0xb7, 5, 0, 0, flags),
            i(0x85, 0, 0, 0, 9),
            EXIT,
        ];
        compare(TC, insns, &format!("store_bytes {off} {len} {flags}"));
    }
    // skb_load_bytes(ctx, off, r10 - 8, len): r0 = result + loaded byte.
    for (off, len) in [(0, 8), (56, 8), (57, 8), (59, 1), (-1, 4)] {
        let insns = vec![
            i(0x7a, 10, 0, -8, -1),
            i(0xb7, 2, 0, 0, off),
            i(0xbf, 3, 10, 0, 0),
            i(0x07, 3, 0, 0, -8),
            i(0xb7, 4, 0, 0, len),
            i(0x85, 0, 0, 0, 26),
            i(0x71, 1, 10, -8, 0),
            i(0x0f, 0, 1, 0, 0),
            EXIT,
        ];
        compare_on(&[TC, SOCKET], &insns, &format!("load_bytes {off} {len}"));
    }
    for flags in [0, 1, 2] {
        let insns = vec![
            i(0xb7, 1, 0, 0, 5),
            i(0xb7, 2, 0, 0, flags),
            i(0x85, 0, 0, 0, 23),
            EXIT,
        ];
        compare_on(&[TC, XDP], &insns, &format!("redirect flags {flags}"));
    }
}

/// Like `compare`, with a `ctx_in`; also compares `ctx_out` (or the error).
fn compare_ctx(ctype: ProgType, insns: &[Insn], pkt: &[u8], ctx: &[u8], what: &str) {
    let k = test_run(ktype(ctype), insns, &[], pkt, Some(ctx), 1);
    if let Err(e) = &k
        && e.skip().is_some()
    {
        cordon_linux::report_skip(e.skip().unwrap());
        return;
    }
    for backend in [Backend::Interpreter, Backend::Jit] {
        let rt = Runtime::new(Config {
            backend,
            ..Config::default()
        });
        let o = rt.load_parsed(object(ctype, insns.to_vec())).unwrap();
        let p = o.program("p").unwrap();
        let r = match ctype {
            ProgType::Xdp => p.run_xdp_with(pkt, Some(ctx)),
            _ => p.run_skb_with(pkt, Some(ctx)),
        };
        match (&k, r) {
            (Ok(k), Ok(r)) => {
                assert_eq!(r.retval, k.retval, "{what} {backend:?}");
                assert_eq!(r.packet, k.data_out, "{what} {backend:?} data_out");
                assert_eq!(r.ctx_out, k.ctx_out, "{what} {backend:?} ctx_out");
            }
            (Err(_), Err(_)) => {}
            (k, r) => panic!("{what} {backend:?}: Linux {k:?}, Cordon {r:?}"),
        }
    }
}

#[test]
fn ctx_in_matches_linux() {
    let mut pkt = vec![0u8; 64];
    pkt[12] = 0x08;
    // skb: r0 = mark + priority + cb[0] + wire_len + ingress_ifindex, mark += 1.
    let insns = vec![
        i(0x61, 0, 1, 8, 0),
        i(0x61, 2, 1, 32, 0),
        i(0x0f, 0, 2, 0, 0),
        i(0x61, 2, 1, 48, 0),
        i(0x0f, 0, 2, 0, 0),
        i(0x61, 2, 1, 160, 0),
        i(0x0f, 0, 2, 0, 0),
        i(0x61, 2, 1, 36, 0),
        i(0x0f, 0, 2, 0, 0),
        i(0x61, 2, 1, 8, 0),
        i(0x07, 2, 0, 0, 1),
        i(0x63, 1, 2, 8, 0),
        EXIT,
    ];
    let field =
        |ctx: &mut Vec<u8>, off: usize, v: u32| ctx[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    let mut ctx = vec![0u8; 192];
    field(&mut ctx, 8, 5);
    field(&mut ctx, 32, 3);
    field(&mut ctx, 48, 900);
    field(&mut ctx, 36, 7);
    let plain = ctx.clone();
    field(&mut ctx, 160, 100);
    let wire_len = ctx.clone();
    field(&mut ctx, 160, 10);
    let mut bad = vec![0u8; 192];
    field(&mut bad, 0, 64);
    for (c, what) in [
        (&plain[..], "skb ctx_in"),
        (&wire_len[..], "skb wire_len"),
        (&ctx[..], "skb wire_len < len"),
        (&bad[..], "skb len set"),
        (&ctx[..52], "short skb ctx"),
    ] {
        compare_ctx(TC, &insns, &pkt, c, what);
    }

    // xdp: r0 = (data - data_meta) * 1000 + (data_end - data) + rx_queue_index.
    let insns = vec![
        i(0x61, 2, 1, 0, 0),
        i(0x61, 3, 1, 4, 0),
        i(0x61, 4, 1, 8, 0),
        i(0xbf, 0, 2, 0, 0),
        i(0x1f, 0, 4, 0, 0),
        i(0x27, 0, 0, 0, 1000),
        i(0x1f, 3, 2, 0, 0),
        i(0x0f, 0, 3, 0, 0),
        i(0x61, 2, 1, 16, 0),
        i(0x0f, 0, 2, 0, 0),
        EXIT,
    ];
    let md = |v: [u32; 6]| v.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<u8>>();
    for (ctx, what) in [
        (md([0, 64, 0, 0, 0, 0]), "xdp plain"),
        (md([8, 64, 0, 1, 0, 0]), "xdp 8 bytes metadata"),
        (md([6, 64, 0, 0, 0, 0]), "xdp unaligned metadata"),
        (md([0, 64, 4, 0, 0, 0]), "xdp data_meta set"),
        (md([0, 64, 0, 0, 0, 1]), "xdp egress set"),
        (md([0, 64, 0, 0, 1, 0]), "xdp rx queue without device"),
        (md([0, 65, 0, 0, 0, 0]), "xdp data_end too big"),
    ] {
        compare_ctx(XDP, &insns, &pkt, &ctx, what);
    }
}

#[test]
fn small_skb_helpers_match_linux() {
    // skb_pull_data(ctx, len) (39), then csum_update(ctx, 5) (40).
    for (helper, arg) in [(39, 0), (39, 14), (39, 64), (39, 65), (39, 1000), (40, 5)] {
        compare(TC, call2(helper, arg), &format!("helper {helper}({arg})"));
    }
    // set_hash(ctx, 77) then r0 = skb->hash; set_hash_invalid then r0 += skb->hash
    let insns = vec![
        i(0xbf, 6, 1, 0, 0),
        i(0xb7, 2, 0, 0, 77),
        i(0x85, 0, 0, 0, 48),
        i(0x61, 7, 6, 68, 0),
        i(0xbf, 1, 6, 0, 0),
        i(0x85, 0, 0, 0, 41),
        i(0x61, 0, 6, 68, 0),
        i(0x0f, 0, 7, 0, 0),
        EXIT,
    ];
    compare(TC, insns, "set_hash");
}
