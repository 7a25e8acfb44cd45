//! The comparison cases: every tests/bpf program, inputs chosen to cover its
//! branches, map set-up, the maps to compare afterwards and, where
//! tests/bpf/README.md predicts them, the expected return values.
#![allow(dead_code)]

use super::packets::*;

mod for_each;
mod frags;
mod ld_abs;
mod lru;
mod more;
mod redirect_map;
mod skb;

/// How Linux loads the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinuxLoad {
    /// `bpftool prog loadall` (libbpf).
    Libbpf,
    /// Raw `bpf()` with what cordon-object produced (libbpf 1.1 refuses it).
    Raw,
    /// Linux cannot run it (Cordon-only kfuncs): expected values only.
    None,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub object: &'static str,
    pub prog: &'static str,
    pub packets: Vec<Vec<u8>>,
    /// (map, key, value) stored before the first run; empty key = push.
    pub updates: Vec<(&'static str, Vec<u8>, Vec<u8>)>,
    /// (prog array, slot, program) set before the first run.
    pub tail_calls: Vec<(&'static str, u32, &'static str)>,
    /// Maps whose contents are compared after the last run.
    pub maps: Vec<&'static str>,
    /// Expected return values (low 32 bits) from tests/bpf/README.md.
    pub expect: Option<Vec<u32>>,
    pub linux: LinuxLoad,
    /// Compare the context after each run (skb programs: Linux gets a zeroed
    /// `struct __sk_buff` as ctx_in so it returns ctx_out).
    pub ctx: bool,
}

impl Case {
    fn new(object: &'static str, prog: &'static str, packets: Vec<Vec<u8>>) -> Case {
        Case {
            name: format!("{object}/{prog}"),
            object,
            prog,
            packets,
            updates: Vec::new(),
            tail_calls: Vec::new(),
            maps: Vec::new(),
            expect: None,
            linux: LinuxLoad::Libbpf,
            ctx: false,
        }
    }
    fn maps(mut self, maps: &[&'static str]) -> Case {
        self.maps = maps.to_vec();
        self
    }
    fn expect(mut self, f: impl Fn(usize, &[u8]) -> u32) -> Case {
        self.expect = Some(
            self.packets
                .iter()
                .enumerate()
                .map(|(i, p)| f(i, p))
                .collect(),
        );
        self
    }
    fn linux(mut self, l: LinuxLoad) -> Case {
        self.linux = l;
        self
    }
    fn ctx(mut self) -> Case {
        self.ctx = true;
        self
    }
    fn named(mut self, suffix: &str) -> Case {
        self.name = format!("{}/{suffix}", self.name);
        self
    }
}

/// The firewall rules of the demo (demo/rules.json), as (key, value) pairs.
pub fn demo_rules() -> Vec<(Vec<u8>, Vec<u8>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../demo/rules.json");
    let text = std::fs::read_to_string(path).expect("demo/rules.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("rules.json is JSON");
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    doc["maps"]["fw_rules"]
        .as_array()
        .expect("maps.fw_rules")
        .iter()
        .map(|e| {
            (
                hex(e["key"].as_str().unwrap()),
                hex(e["value"].as_str().unwrap()),
            )
        })
        .collect()
}

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;

fn firewall(object: &'static str) -> Case {
    let v6_bad = ip6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xbad]);
    let v6_good = ip6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    let mut short_ip = ipv4([10, 0, 0, 7], 6, &tcp(1, 80, b""));
    short_ip.truncate(14 + 12);
    let mut ihl3 = ipv4([10, 0, 0, 7], 17, &udp(1, 53, b"12345678"));
    ihl3[14] = 0x43;
    let mut short_tcp = ipv4([10, 0, 0, 66], 6, &tcp(1, 80, b""));
    short_tcp.truncate(14 + 20 + 10);
    let mut short_v6 = ipv6(v6_good, 17, &udp(1, 53, b""));
    short_v6.truncate(14 + 30);
    let mut short_udp6 = ipv6(v6_good, 17, &udp(1, 53, b""));
    short_udp6.truncate(14 + 40 + 4);
    let mut arp = eth(0x0806);
    arp.extend_from_slice(&[0u8; 28]);
    let packets = vec![
        (ipv4([10, 0, 0, 66], 6, &tcp(4000, 443, b"hello")), XDP_DROP),
        (ipv4([10, 0, 0, 66], 1, &[8, 0, 0, 0, 0, 1, 0, 1]), XDP_DROP),
        (
            ipv4([192, 0, 2, 99], 17, &udp(5000, 53, b"query")),
            XDP_DROP,
        ),
        (ipv4([192, 0, 2, 99], 6, &tcp(5000, 53, b"")), XDP_PASS),
        (
            ipv4([198, 51, 100, 23], 6, &tcp(5000, 23, b"login")),
            XDP_DROP,
        ),
        (
            ipv4([198, 51, 100, 23], 6, &tcp(5000, 80, b"GET /")),
            XDP_PASS,
        ),
        (ipv4([198, 51, 100, 23], 17, &udp(5000, 23, b"")), XDP_PASS),
        (ipv4([10, 0, 0, 1], 6, &tcp(5000, 22, b"ssh")), XDP_PASS),
        (ipv4([10, 0, 0, 2], 6, &tcp(5000, 22, b"ssh")), XDP_PASS),
        (ipv6(v6_bad, 6, &tcp(5000, 443, b"x")), XDP_DROP),
        (ipv6(v6_bad, 58, &[128, 0, 0, 0, 0, 1, 0, 1]), XDP_DROP),
        (ipv6(v6_good, 17, &udp(5000, 53, b"q")), XDP_PASS),
        (arp, XDP_PASS),
        (short_ip, XDP_DROP),
        (ihl3, XDP_DROP),
        (short_tcp, XDP_DROP),
        (short_v6, XDP_DROP),
        (short_udp6, XDP_DROP),
        (padded(eth(0x0800), 14), XDP_DROP),
    ];
    let expect: Vec<u32> = packets.iter().map(|(_, r)| *r).collect();
    let mut c = Case::new(
        object,
        "xdp_firewall",
        packets.into_iter().map(|(p, _)| p).collect(),
    )
    .maps(&["fw_rules", "fw_stats"]);
    c.expect = Some(expect);
    c.updates = demo_rules()
        .into_iter()
        .map(|(k, v)| ("fw_rules", k, v))
        .collect();
    c
}

fn lens(lens: &[usize], head: &[u8]) -> Vec<Vec<u8>> {
    lens.iter().map(|&l| sized(head, l)).collect()
}

/// An IPv4 frame of exactly `len` bytes.
fn v4_len(proto: u8, len: usize, total: Option<u16>) -> Vec<u8> {
    let mut f = eth(0x0800);
    f.extend(ipv4_hdr([10, 0, 0, 1], [10, 0, 0, 2], proto, &[], total));
    padded(f, len)
}

pub fn all_cases() -> Vec<Case> {
    let mut cases = vec![firewall("xdp_firewall.o"), firewall("xdp_firewall_v1.o")];
    // Frames shorter than an Ethernet header: Linux refuses to run them (EINVAL).
    cases.push(
        Case::new(
            "xdp_firewall.o",
            "xdp_firewall",
            vec![vec![0xaa; 10], vec![]],
        )
        .named("runts")
        .maps(&["fw_stats"]),
    );

    // tc_mark: every length (>= 14) returns TC_ACT_OK; mark/priority/cb are context writes.
    cases.push(
        Case::new("tc_mark.o", "tc_mark", {
            let mut v = lens(&[14, 15, 60, 100, 1500], &[]);
            v.push(ipv6([1; 16], 17, &udp(1, 2, b"")));
            v
        })
        .expect(|_, _| 0)
        .ctx(),
    );
    cases.push(
        Case::new("tc_mark.o", "cls_len", lens(&[14, 64, 333], &[]))
            .expect(|_, _| 0)
            .ctx(),
    );

    // socket_filter: offsets from the network header; skb->len = frame - 14.
    cases.push(
        Case::new(
            "socket_filter.o",
            "socket_filter",
            vec![
                v4_len(17, 80, None),
                v4_len(6, 100, Some(40)),
                v4_len(6, 100, Some(1000)),
                v4_len(1, 60, None),
                ipv6([1; 16], 17, &udp(1, 2, b"abc")),
            ],
        )
        .expect(|i, p| match i {
            0 => (p.len() - 14) as u32,
            1 => 40,
            2 => 64,
            _ => 0,
        }),
    );

    // maps_basic: keys from the first four bytes; the same key twice; 0xffffffff deletes.
    cases.push(
        Case::new(
            "maps_basic.o",
            "maps_basic",
            vec![
                sized(&[1, 0, 0, 0], 64),
                sized(&[2, 0, 0, 0], 80),
                sized(&[1, 0, 0, 0], 100),
                sized(&[9, 0, 0, 0], 50),
                sized(&[0xff, 0xff, 0xff, 0xff], 70),
                sized(&[0xff, 0xff, 0xff, 0xff], 71),
            ],
        )
        .maps(&["arr", "pcpu_arr", "hash", "pcpu_hash", "lru", "lru_pcpu"]),
    );

    // tail_call: static slots {0: tail_one, 1: tail_double}; empty slots return 99.
    let tail_pkts = vec![
        sized(&[0], 40),
        sized(&[1], 40),
        sized(&[2], 40),
        sized(&[3], 50),
        sized(&[5], 77),
        sized(&[4], 20),
    ];
    cases.push(
        Case::new("tail_call.o", "tail_entry", tail_pkts.clone()).expect(|_, p| match p[0] % 4 {
            0 => 1,
            1 => 2 * p.len() as u32,
            _ => 99,
        }),
    );
    let mut set = Case::new("tail_call.o", "tail_entry", tail_pkts)
        .named("slot2=tail_double,slot3=tail_one")
        .expect(|_, p| match p[0] % 4 {
            0 | 3 => 1,
            _ => 2 * p.len() as u32,
        });
    set.tail_calls = vec![
        ("jump_table", 2, "tail_double"),
        ("jump_table", 3, "tail_one"),
    ];
    cases.push(set);
    cases.push(
        Case::new("tail_call.o", "tail_double", lens(&[14, 99], &[]))
            .expect(|_, p| 2 * p.len() as u32),
    );

    cases.push(
        Case::new("ringbuf.o", "ringbuf_events", lens(&[60, 61, 14, 15], &[]))
            .expect(|_, p| if p.len() % 2 == 0 { 2 } else { 1 })
            .maps(&[".bss"]),
    );
    cases.push(
        Case::new("queue_stack.o", "queue_stack", lens(&[20, 60, 1000], &[]))
            .expect(|_, p| (p.len() * 1000 + p.len() + 1) as u32),
    );
    cases.push(
        Case::new("map_in_map.o", "map_in_map", lens(&[20, 60, 100], &[]))
            .expect(|i, _| [20u32, 80, 180][i] + 1000)
            .maps(&["inner_a", "inner_b"]),
    );
    cases.push(
        Case::new(
            "global_data.o",
            "global_data",
            lens(&[14, 61, 100, 1600], &[]),
        )
        .expect(|i, p| {
            let len = p.len().min(1500) as u32;
            let table = [10u32, 20, 30, 40];
            len * 3 + (5 + i as u32) + u32::from(b'h') + 7 + table[len as usize % 4]
        })
        .maps(&[".data", ".bss", ".data.custom"]),
    );
    for obj in ["subprogs.o", "subprogs_v1.o", "subprogs_nobtf.o"] {
        let l = [14usize, 60, 100, 101, 300, 1000];
        cases.push(Case::new(obj, "prog_a", lens(&l, &[])).expect(|_, p| {
            let x = (p.len() & 0xff) as u32;
            3 * x + x * x + 3
        }));
        cases.push(
            Case::new(obj, "prog_b", lens(&l, &[])).expect(|_, p| p.len().min(100) as u32 + 6),
        );
    }
    cases.push(
        Case::new(
            "loop_callback.o",
            "loop_sum",
            lens(&[64, 70, 100, 127, 114, 115], &[]),
        )
        .expect(|_, p| {
            let n = (p.len() % 64).min(50) as u32;
            (0..n).map(|i| i * i).sum::<u32>() + n * 100_000
        }),
    );
    cases.push(
        Case::new(
            "iter_for.o",
            "iter_sum",
            lens(&[14, 99, 100, 150, 1000], &[]),
        )
        .expect(|_, p| {
            let n = (p.len() % 100) as u32;
            3 * n * n.saturating_sub(1) / 2
        }),
    );
    cases.push(
        Case::new("spin_lock.o", "spin_add", lens(&[14, 60, 100], &[]))
            .expect(|i, _| [14u32, 74, 174][i])
            .maps(&["shared"]),
    );
    cases.push(
        Case::new(
            "cpuv4.o",
            "cpuv4_ops",
            vec![
                sized(&[0x85, 0, 0xf0, 0xff, 0x10, 0x27, 0, 0], 60),
                sized(&[7, 0, 3, 0, 0xe8, 0x03, 0, 0], 60),
                sized(&[0, 0, 0, 0x80, 0, 0, 0, 0x80], 60),
                sized(&[0xff, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 60),
                sized(&[0x80, 0, 1, 0, 0x39, 0x30, 0, 0], 60),
            ],
        )
        .maps(&["results"]),
    );
    cases.push(
        Case::new("exceptions.o", "throw_big", lens(&[50, 100, 101, 200], &[])).expect(|_, p| {
            if p.len() > 100 {
                p.len() as u32 + 1000
            } else {
                p.len() as u32
            }
        }),
    );
    cases.push(
        Case::new(
            "exception_cb.o",
            "throw_with_cb",
            vec![
                sized(&[3], 40),
                sized(&[4], 40),
                sized(&[0xff], 60),
                sized(&[0], 77),
            ],
        )
        .expect(|_, p| {
            if p[0] & 1 == 1 {
                2 * u32::from(p[0])
            } else {
                p.len() as u32
            }
        })
        .linux(LinuxLoad::Raw),
    );
    // xdp_swap: UDP to port 7 is echoed (XDP_TX, swapped), first byte 0xff
    // moves the head by 4 (XDP_PASS, 4 bytes shorter), the rest passes.
    let echo = ipv4([10, 0, 0, 1], 17, &udp(1234, 7, b"echo me"));
    let mut head = ipv4([10, 0, 0, 1], 17, &udp(1234, 7, b"x"));
    head[0] = 0xff;
    let other_port = ipv4([10, 0, 0, 1], 17, &udp(1234, 8, b"x"));
    let tcp7 = ipv4([10, 0, 0, 1], 6, &tcp(1234, 7, b""));
    let mut arp = eth(0x0806);
    arp.extend_from_slice(&[0u8; 28]);
    let mut short_udp = ipv4([10, 0, 0, 1], 17, &udp(1234, 7, b""));
    short_udp.truncate(14 + 20 + 4);
    cases.push(
        Case::new(
            "xdp_swap.o",
            "xdp_echo",
            vec![echo, head, other_port, tcp7, arp, short_udp],
        )
        .expect(|i, _| [XDP_TX, XDP_PASS, XDP_PASS, XDP_PASS, XDP_PASS, XDP_PASS][i]),
    );
    // lpm_bloom: routes 10.0.0.0/8 -> 1, 10.1.0.0/16 -> 2, 192.168.0.0/24 -> 3.
    let lpm_key = |plen: u32, addr: [u8; 4]| {
        let mut k = plen.to_le_bytes().to_vec();
        k.extend_from_slice(&addr);
        k
    };
    let sock = |src: [u8; 4], dst: [u8; 4]| {
        let mut f = eth(0x0800);
        f.extend(ipv4_hdr(src, dst, 17, &udp(1, 2, b"lpm"), None));
        f
    };
    let mut lpm = Case::new(
        "lpm_bloom.o",
        "lpm_bloom",
        vec![
            sock([1, 1, 1, 1], [10, 9, 9, 9]),
            sock([1, 1, 1, 1], [10, 1, 2, 3]),
            sock([2, 2, 2, 2], [192, 168, 0, 77]),
            sock([2, 2, 2, 2], [192, 168, 1, 77]),
            sock([3, 3, 3, 3], [8, 8, 8, 8]),
        ],
    )
    .expect(|i, _| [10u32, 21, 30, 1, 0][i])
    .maps(&["routes"]);
    lpm.updates = vec![
        (
            "routes",
            lpm_key(8, [10, 0, 0, 0]),
            1u32.to_le_bytes().to_vec(),
        ),
        (
            "routes",
            lpm_key(16, [10, 1, 0, 0]),
            2u32.to_le_bytes().to_vec(),
        ),
        (
            "routes",
            lpm_key(24, [192, 168, 0, 0]),
            3u32.to_le_bytes().to_vec(),
        ),
    ];
    cases.push(lpm);
    cases.push(
        Case::new("perf_output.o", "perf_sample", lens(&[14, 60], &[]))
            .expect(|_, _| (-2i32) as u32),
    );
    cases.push(
        Case::new(
            "deep_calls.o",
            "deep_entry",
            lens(&[100, 14, 60, 1000], &[]),
        )
        .expect(|i, _| {
            if i == 0 {
                505
            } else {
                level_chain(&[14, 60, 1000][i - 1])
            }
        }),
    );
    cases.push(
        Case::new("bloom_ulong.o", "bloom_len", lens(&[60, 59, 61], &[]))
            .expect(|i, _| [10u32, 11, 10][i])
            .linux(LinuxLoad::Raw),
    );
    // core_local: cfg {a u32, b u64 @8, c u16[4] @16, flags:3 mode:5 @24}, 32 bytes.
    let mut cfg = vec![0u8; 32];
    cfg[8..16].copy_from_slice(&7u64.to_le_bytes());
    cfg[18..20].copy_from_slice(&3u16.to_le_bytes());
    cfg[24] = (9 << 3) | 5; // mode 9, flags 5
    let base = 1000 + 8 * 10_000 + 32 * 100_000 + 5 * 1_000_000;
    let mut core = Case::new("core_local.o", "core_read", lens(&[14, 60], &[]))
        .expect(move |_, _| base + 7 + 3 + 9)
        .maps(&["cfgs"])
        .linux(LinuxLoad::Raw);
    core.updates = vec![("cfgs", 0u32.to_le_bytes().to_vec(), cfg)];
    cases.push(core);
    let zero_core = Case::new("core_local.o", "core_read", lens(&[20], &[]))
        .named("zero")
        .expect(move |_, _| base)
        .linux(LinuxLoad::Raw);
    cases.push(zero_core);
    for obj in ["legacy_maps.o", "legacy_maps_nobtf.o"] {
        // Offset 9 from the network header = frame byte 23.
        let proto = |p: u8, len: usize| {
            let mut f = sized(&[], len);
            f[23] = p;
            f
        };
        cases.push(
            Case::new(
                obj,
                "legacy_count",
                vec![proto(6, 60), proto(17, 60), proto(6, 80), proto(6, 40)],
            )
            .expect(|i, _| [1u32, 1, 2, 3][i])
            .maps(&["proto_count", "seen"])
            .linux(LinuxLoad::Raw),
        );
    }
    cases.push(
        Case::new(
            "kfunc_obj.o",
            "kfunc_acquire_release",
            vec![sized(&[0], 20), sized(&[5], 20), sized(&[200], 30)],
        )
        .expect(|_, p| {
            if p[0] == 0 {
                u32::MAX
            } else {
                3 * u32::from(p[0])
            }
        })
        .linux(LinuxLoad::None),
    );
    cases.extend(more::more_cases());
    cases.extend(lru::lru_cases());
    cases.extend(frags::frags_cases());
    cases.extend(skb::skb_cases());
    cases.extend(for_each::for_each_cases());
    cases.extend(redirect_map::redirect_map_cases());
    cases.extend(ld_abs::ld_abs_cases());
    cases
}

/// deep_calls' result for a length other than 100, computed like the C code.
fn level_chain(len: &usize) -> u32 {
    fn level(x: u64, mul: u64, next: &dyn Fn(u64) -> u64) -> u64 {
        let buf: Vec<u64> = (0..6)
            .map(|i| x.wrapping_mul(mul).wrapping_add(i))
            .collect();
        next(buf[5] ^ buf[0]).wrapping_add(buf[3])
    }
    let l7 = |x: u64| x.wrapping_add(x >> 1);
    let l6 = |x: u64| level(x, 7, &l7);
    let l5 = |x: u64| level(x, 6, &l6);
    let l4 = |x: u64| level(x, 5, &l5);
    let l3 = |x: u64| level(x, 4, &l4);
    let l2 = |x: u64| level(x, 3, &l3);
    let l1 = |x: u64| l2(x.wrapping_add(1));
    l1(*len as u64 + 3) as u32
}

/// [`level_chain`] for a test of the model itself.
pub fn level_chain_for_test(len: usize) -> u32 {
    level_chain(&len)
}
