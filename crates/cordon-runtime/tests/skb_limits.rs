//! Input-size rules of Linux's `BPF_PROG_TEST_RUN` for skb programs (tc
//! classifier/action, socket filter) and XDP: IPv4/IPv6 frames too short
//! for their network header are refused with EINVAL by Linux
//! (`bpf_prog_test_run_skb`) and with [`RunError::NetworkHeaderTooShort`]
//! by Cordon, on both engines, verified and checked; lengths at and around
//! each boundary are compared with the running kernel.

use cordon_isa::Insn;
use cordon_linux::{KernelError, ProgType as KType, test_run};
use cordon_object::{Object, ProgType};
use cordon_runtime::{Backend, Config, RunError, Runtime};

const MODES: [(Backend, bool); 4] = [
    (Backend::Interpreter, true),
    (Backend::Jit, true),
    (Backend::Interpreter, false),
    (Backend::Jit, false),
];

const EINVAL: i32 = 22;

fn object(prog_type: ProgType, insns: Vec<Insn>) -> Object {
    Object::single_program("p", "test", prog_type, insns)
}

/// `r0 = *(u32 *)(ctx + 0); exit`: `skb->len` (tc, socket) or the low half
/// of `xdp_md->data` (XDP: only the accept/refuse decision and data_out are
/// compared there, see [`compare`]).
fn len_program() -> Vec<Insn> {
    vec![Insn::new(0x61, 0, 1, 0, 0), Insn::new(0x95, 0, 0, 0, 0)]
}

/// A frame of `len` bytes (at least 14) with Ethernet type `ethertype`.
fn frame(len: usize, ethertype: u16) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i * 7 + 1) as u8).collect();
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    f
}

/// What Linux did with one input: the retval and data_out, or the errno.
fn kernel(t: ProgType, pkt: &[u8]) -> Result<Option<(u32, Vec<u8>)>, KernelError> {
    match test_run(KType(t.kernel_id()), &len_program(), &[], pkt, None, 1) {
        Ok(k) => Ok(Some((k.retval, k.data_out))),
        Err(KernelError::Syscall { errno, .. }) => {
            assert_eq!(
                errno,
                EINVAL,
                "{t:?}: {} bytes: unexpected errno",
                pkt.len()
            );
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Runs `pkt` on Linux and on Cordon's four modes; both must accept it with
/// the same result or both refuse it. Returns whether Linux accepted it.
fn compare(t: ProgType, pkt: &[u8]) -> Option<bool> {
    let k = match kernel(t, pkt) {
        Ok(k) => k,
        Err(e) => {
            e.skip()
                .map(cordon_linux::report_skip)
                .unwrap_or_else(|| panic!("{e}"));
            return None;
        }
    };
    for mode in MODES {
        let rt = Runtime::new(Config {
            backend: mode.0,
            verify: mode.1,
            ..Config::default()
        });
        let o = rt.load_parsed(object(t, len_program())).unwrap();
        let p = o.program("p").unwrap();
        let r = match t {
            ProgType::Xdp => p.run_xdp(pkt),
            _ => p.run_skb(pkt),
        };
        let what = format!("{t:?} {mode:?} {} bytes", pkt.len());
        match (&k, r) {
            (Some((retval, data)), Ok(r)) => {
                if t != ProgType::Xdp {
                    assert_eq!(r.retval, *retval, "{what}: retval");
                }
                assert_eq!(&r.packet, data, "{what}: data_out");
            }
            (None, Err(RunError::NetworkHeaderTooShort { len, min, .. })) => {
                assert_eq!(len, pkt.len(), "{what}");
                assert!(len < min, "{what}: min {min}");
            }
            (k, r) => panic!("{what}: Linux {k:?}, Cordon {r:?}"),
        }
    }
    Some(k.is_some())
}

const SKB_TYPES: [ProgType; 3] = [
    ProgType::SchedCls,
    ProgType::SchedAct,
    ProgType::SocketFilter,
];

#[test]
fn short_ipv4_and_ipv6_frames_are_refused_as_linux() {
    for t in SKB_TYPES {
        for (ethertype, min) in [(0x0800u16, 34usize), (0x86dd, 54)] {
            for len in [14, 15, min - 2, min - 1, min, min + 1, min + 20] {
                let Some(accepted) = compare(t, &frame(len, ethertype)) else {
                    return;
                };
                assert_eq!(accepted, len >= min, "{t:?} {ethertype:#x} {len}");
            }
        }
    }
}

#[test]
fn other_ethertypes_are_not_checked() {
    // ARP, VLAN-tagged IPv4 (only the outer Ethernet type counts), 802.3
    // length field, and an unknown type: accepted at 14 and 15 bytes.
    for t in SKB_TYPES {
        for ethertype in [0x0806u16, 0x8100, 0x0040, 0x88b5] {
            for len in [14, 15, 33] {
                let Some(accepted) = compare(t, &frame(len, ethertype)) else {
                    return;
                };
                assert!(accepted, "{t:?} {ethertype:#x} {len}");
            }
        }
    }
}

#[test]
fn xdp_does_not_check_the_network_header() {
    for (ethertype, min) in [(0x0800u16, 34usize), (0x86dd, 54)] {
        for len in [14, 15, min - 1, min] {
            let Some(accepted) = compare(ProgType::Xdp, &frame(len, ethertype)) else {
                return;
            };
            assert!(accepted, "xdp {ethertype:#x} {len}");
        }
    }
}

#[test]
fn refusal_names_program_protocol_and_lengths() {
    let rt = Runtime::new(Config::default());
    let o = rt
        .load_parsed(object(ProgType::SchedCls, len_program()))
        .unwrap();
    let p = o.program("p").unwrap();
    let e = p.run_skb(&frame(33, 0x0800)).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(
            e,
            RunError::NetworkHeaderTooShort {
                protocol: "IPv4",
                len: 33,
                min: 34,
                header: 20,
                ..
            }
        ),
        "{e:?}"
    );
    for part in ["'p'", "IPv4", "33 bytes", "34 bytes", "20-byte", "EINVAL"] {
        assert!(text.contains(part), "{part:?} missing from {text}");
    }
    let e = p.run_skb(&frame(53, 0x86dd)).unwrap_err();
    assert!(
        matches!(
            e,
            RunError::NetworkHeaderTooShort {
                protocol: "IPv6",
                len: 53,
                min: 54,
                header: 40,
                ..
            }
        ),
        "{e:?}"
    );
    // The Ethernet minimum still comes first.
    assert!(matches!(
        p.run_skb(&[0u8; 13]),
        Err(RunError::PacketTooShort { len: 13, .. })
    ));
    assert_eq!(p.run_skb(&frame(34, 0x0800)).unwrap().retval, 34);
}

#[test]
fn ctx_in_errors_come_before_the_network_header_check() {
    // A 33-byte IPv4 frame with ctx_in naming a device that does not exist:
    // Linux looks the device up first (ENODEV); with a valid ctx_in the
    // frame is refused (EINVAL).
    let pkt = frame(33, 0x0800);
    let mut bad = vec![0u8; 192];
    bad[40..44].copy_from_slice(&0x7fff_fff0u32.to_ne_bytes()); // ifindex
    let good = vec![0u8; 192];
    let kt = KType(ProgType::SchedCls.kernel_id());
    for (ctx, errno) in [(&bad, 19), (&good, EINVAL)] {
        match test_run(kt, &len_program(), &[], &pkt, Some(ctx), 1) {
            Err(KernelError::Syscall { errno: e, .. }) => assert_eq!(e, errno),
            Err(e) => match e.skip() {
                Some(reason) => return cordon_linux::report_skip(reason),
                None => panic!("{e}"),
            },
            Ok(k) => panic!("Linux ran it: {}", k.retval),
        }
    }
    for mode in MODES {
        let rt = Runtime::new(Config {
            backend: mode.0,
            verify: mode.1,
            ..Config::default()
        });
        let o = rt
            .load_parsed(object(ProgType::SchedCls, len_program()))
            .unwrap();
        let p = o.program("p").unwrap();
        assert!(
            matches!(
                p.run_skb_with(&pkt, Some(&bad)),
                Err(RunError::BadContext {
                    errno: "ENODEV",
                    ..
                })
            ),
            "{mode:?}"
        );
        assert!(
            matches!(
                p.run_skb_with(&pkt, Some(&good)),
                Err(RunError::NetworkHeaderTooShort { len: 33, .. })
            ),
            "{mode:?}"
        );
    }
}
