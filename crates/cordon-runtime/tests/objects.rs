//! Every tests/bpf program on both engines, with the results tests/bpf/README.md predicts.

use std::path::PathBuf;
use std::sync::Arc;

use cordon_runtime::{Backend, CompiledProgram, Config, LoadedObject, Runtime};

fn bpf_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bpf"))
}

/// Backend and whether programs are verified (trusted) or run unverified (checked).
#[derive(Clone, Copy, Debug)]
struct Mode(Backend, bool);

fn runtime(mode: Mode) -> Runtime {
    Runtime::new(Config {
        backend: mode.0,
        verify: mode.1,
        cpus: 4,
        ..Config::default()
    })
}

fn load(rt: &Runtime, name: &str) -> LoadedObject {
    let bytes = std::fs::read(bpf_dir().join(name)).unwrap();
    rt.load(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn prog(o: &LoadedObject, name: &str) -> Arc<CompiledProgram> {
    o.program(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

const BACKENDS: [Mode; 4] = [
    Mode(Backend::Interpreter, true),
    Mode(Backend::Jit, true),
    Mode(Backend::Interpreter, false),
    Mode(Backend::Jit, false),
];

fn zero(n: usize) -> Vec<u8> {
    vec![0u8; n]
}

#[test]
fn tc_mark() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "tc_mark.o");
        let p = prog(&o, "tc_mark");
        let mut pkt = zero(100);
        pkt[12] = 0x08;
        let r = p.run_skb(&pkt).unwrap();
        assert_eq!(r.retval, 0, "{b:?} TC_ACT_OK");
        // mark = len << 16 | protocol & 0xffff (protocol is big-endian 0x0800 -> 0x0008)
        assert_eq!(r.ctx_u32(8), Some(100 << 16 | 0x0008), "{b:?}");
        assert_eq!(r.ctx_u32(32), Some(100 % 8), "{b:?} priority");
        assert_eq!(r.ctx_u32(48), Some(2), "{b:?} cb[0] = ifindex + 1");
        let p = prog(&o, "cls_len");
        let r = p.run_skb(&pkt).unwrap();
        assert_eq!(r.ctx_u32(8), Some(100 ^ 0x5a5a), "{b:?}");
    }
}

fn ipv4_udp(len: usize, dport: u16) -> Vec<u8> {
    let mut p = zero(len);
    p[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    p[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    p[12] = 0x08;
    p[14] = 0x45;
    p[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    p[23] = 17;
    p[26..30].copy_from_slice(&[10, 0, 0, 1]);
    p[30..34].copy_from_slice(&[10, 0, 0, 2]);
    p[34..36].copy_from_slice(&1234u16.to_be_bytes());
    p[36..38].copy_from_slice(&dport.to_be_bytes());
    p
}

#[test]
fn xdp_firewall_counts_and_drops() {
    for obj in ["xdp_firewall.o", "xdp_firewall_v1.o"] {
        for b in BACKENDS {
            let rt = runtime(b);
            let o = load(&rt, obj);
            let p = prog(&o, "xdp_firewall");
            cordon_runtime::set_cpu(1);
            // Non-IP: pass, counted under 3.
            let r = p.run_xdp(&zero(60)).unwrap();
            assert_eq!(r.retval, 2, "{obj} {b:?} XDP_PASS");
            assert_eq!(r.packet, zero(60));
            // A rule dropping UDP from 10.0.0.1 to port 53.
            let rules = o.map_handle("fw_rules").unwrap();
            let mut key = [0u8; 20];
            key[0..4].copy_from_slice(&[10, 0, 0, 1]);
            key[16..18].copy_from_slice(&53u16.to_ne_bytes());
            key[18] = 17;
            key[19] = 4;
            let mut rule = [0u8; 16];
            rule[0] = 1; // XDP_DROP
            rules.update_value(&key, &rule, 0).unwrap();
            assert_eq!(
                p.run_xdp(&ipv4_udp(80, 53)).unwrap().retval,
                1,
                "{obj} {b:?} drop"
            );
            assert_eq!(
                p.run_xdp(&ipv4_udp(80, 54)).unwrap().retval,
                2,
                "{obj} {b:?} pass"
            );
            let hits =
                u64::from_ne_bytes(rules.lookup_value(&key).unwrap()[8..16].try_into().unwrap());
            assert_eq!(hits, 1);
            let stats = o.map_handle("fw_stats").unwrap();
            let per_cpu = |k: u32| stats.lookup_percpu_values(&k.to_ne_bytes()).unwrap();
            let packets = |k: u32| u64::from_ne_bytes(per_cpu(k)[1][0..8].try_into().unwrap());
            assert_eq!(
                (packets(0), packets(1), packets(2), packets(3)),
                (1, 1, 0, 1)
            );
            let bytes = u64::from_ne_bytes(per_cpu(3)[1][8..16].try_into().unwrap());
            assert_eq!(bytes, 60);
            // Truncated IPv4 header: malformed, dropped.
            let mut short = ipv4_udp(80, 53);
            short.truncate(20);
            assert_eq!(p.run_xdp(&short).unwrap().retval, 1);
            assert_eq!(packets(2), 1);
        }
    }
}

#[test]
fn xdp_swap_echo_and_adjust_head() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "xdp_swap.o");
        let p = prog(&o, "xdp_echo");
        let input = ipv4_udp(64, 7);
        let r = p.run_xdp(&input).unwrap();
        assert_eq!(r.retval, 3, "{b:?} XDP_TX");
        let out = &r.packet;
        assert_eq!(&out[0..6], &input[6..12]);
        assert_eq!(&out[6..12], &input[0..6]);
        assert_eq!(&out[26..30], &input[30..34]);
        assert_eq!(&out[30..34], &input[26..30]);
        assert_eq!(&out[34..36], &input[36..38]);
        assert_eq!(&out[36..38], &input[34..36]);
        // First byte 0xff: adjust_head(+4), pass, the packet loses 4 bytes.
        let mut ff = zero(40);
        ff[0] = 0xff;
        ff[4] = 0xaa;
        let r = p.run_xdp(&ff).unwrap();
        assert_eq!(r.retval, 2, "{b:?}");
        assert_eq!(r.packet.len(), 36);
        assert_eq!(r.packet[0], 0xaa);
        assert_eq!(p.run_xdp(&ipv4_udp(64, 8)).unwrap().retval, 2);
        assert!(p.run_xdp(&zero(13)).is_err(), "Linux refuses < 14 bytes");
    }
}

#[test]
fn socket_filter_sees_the_network_header() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "socket_filter.o");
        let p = prog(&o, "socket_filter");
        let udp = ipv4_udp(100, 7);
        let r = p.run_skb(&udp).unwrap();
        assert_eq!(r.retval, 86, "{b:?} skb->len = 100 - 14");
        assert_eq!(
            &r.packet[..14],
            &[0u8; 14],
            "Ethernet header zeroed in data_out"
        );
        assert_eq!(&r.packet[14..], &udp[14..]);
        let mut tcp = udp.clone();
        tcp[23] = 6;
        assert_eq!(p.run_skb(&tcp).unwrap().retval, 64, "{b:?} min(86, 64)");
        tcp[16..18].copy_from_slice(&40u16.to_be_bytes());
        assert_eq!(p.run_skb(&tcp).unwrap().retval, 40);
        assert_eq!(p.run_skb(&zero(100)).unwrap().retval, 0);
    }
}

#[test]
fn maps_basic_sums() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "maps_basic.o");
        let p = prog(&o, "maps_basic");
        let mut pkt = zero(100);
        pkt[0] = 9; // key 9, idx 1
        // arr[1] = 100, pcpu_arr[1] = 1, hash = 1, pcpu_hash = 2, lru = 100, lru_pcpu = 3
        assert_eq!(p.run_skb(&pkt).unwrap().retval, 207, "{b:?}");
        // Second run: 200 + 2 + 2 + 4 + 100 + 6
        assert_eq!(p.run_skb(&pkt).unwrap().retval, 314, "{b:?}");
        let arr = o.map_handle("arr").unwrap();
        assert_eq!(
            arr.lookup_value(&1u32.to_ne_bytes()).unwrap(),
            200u64.to_ne_bytes()
        );
    }
}

#[test]
fn tail_calls_through_static_slots() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "tail_call.o");
        let p = prog(&o, "tail_entry");
        let mut pkt = zero(100);
        assert_eq!(p.run_skb(&pkt).unwrap().retval, 1, "{b:?} slot 0");
        pkt[0] = 1;
        let r = p.run_skb(&pkt).unwrap();
        assert_eq!((r.retval, r.tail_calls), (200, 1), "{b:?} slot 1");
        pkt[0] = 2;
        assert_eq!(p.run_skb(&pkt).unwrap().retval, 99, "{b:?} empty slot");
        // Host updates of the slots.
        let one = prog(&o, "tail_one");
        o.set_tail_call("jump_table", 2, &one).unwrap();
        assert_eq!(p.run_skb(&pkt).unwrap().retval, 1, "{b:?} new slot 2");
    }
}

#[test]
fn ringbuf_events() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "ringbuf.o");
        let p = prog(&o, "ringbuf_events");
        assert_eq!(p.run_skb(&zero(100)).unwrap().retval, 2, "{b:?}");
        assert_eq!(
            p.run_skb(&zero(101)).unwrap().retval,
            1,
            "{b:?} odd: discarded"
        );
        let rb = o.map_handle("events").unwrap();
        let mut recs = Vec::new();
        rb.ringbuf_consume(|r| {
            recs.push(r.to_vec());
            true
        })
        .unwrap();
        assert_eq!(recs.len(), 3);
        let field = |r: &Vec<u8>, i: usize| u32::from_ne_bytes(r[i..i + 4].try_into().unwrap());
        assert_eq!((field(&recs[0], 0), field(&recs[0], 4)), (100, 1));
        assert_eq!((field(&recs[1], 0), field(&recs[1], 4)), (100, 2));
        assert_eq!((field(&recs[2], 0), field(&recs[2], 4)), (101, 1));
        let seq = |r: &Vec<u8>| u64::from_ne_bytes(r[8..16].try_into().unwrap());
        assert_eq!((seq(&recs[0]), seq(&recs[1]), seq(&recs[2])), (0, 1, 2));
    }
}

#[test]
fn queue_stack_map_in_map_spin_lock() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "queue_stack.o");
        let p = prog(&o, "queue_stack");
        assert_eq!(
            p.run_skb(&zero(100)).unwrap().retval,
            100 * 1000 + 101,
            "{b:?}"
        );
        assert_eq!(
            p.run_skb(&zero(100)).unwrap().retval,
            100 * 1000 + 101,
            "{b:?} maps empty again"
        );

        let o = load(&rt, "map_in_map.o");
        let p = prog(&o, "map_in_map");
        assert_eq!(p.run_skb(&zero(100)).unwrap().retval, 1100, "{b:?}");
        assert_eq!(p.run_skb(&zero(100)).unwrap().retval, 1200, "{b:?}");
        let inner_b = o.map_handle("inner_b").unwrap();
        assert_eq!(
            inner_b.lookup_value(&0u32.to_ne_bytes()).unwrap(),
            2u64.to_ne_bytes()
        );

        let o = load(&rt, "spin_lock.o");
        let p = prog(&o, "spin_add");
        assert_eq!(p.run_skb(&zero(100)).unwrap().retval, 100, "{b:?}");
        assert_eq!(p.run_skb(&zero(50)).unwrap().retval, 150, "{b:?}");
    }
}

#[test]
fn spin_lock_from_many_threads() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "spin_lock.o");
        let p = prog(&o, "spin_add");
        std::thread::scope(|s| {
            for _ in 0..4 {
                let p = Arc::clone(&p);
                s.spawn(move || {
                    for _ in 0..500 {
                        p.run_skb(&zero(20)).unwrap();
                    }
                });
            }
        });
        let v = o
            .map_handle("shared")
            .unwrap()
            .lookup_value(&0u32.to_ne_bytes())
            .unwrap();
        assert_eq!(
            u64::from_ne_bytes(v[8..16].try_into().unwrap()),
            4 * 500 * 20,
            "{b:?}"
        );
        assert_eq!(
            u32::from_ne_bytes(v[4..8].try_into().unwrap()),
            2000,
            "{b:?}"
        );
    }
}

#[test]
fn global_data_and_printk() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "global_data.o");
        let p = prog(&o, "global_data");
        let r = p.run_skb(&zero(101)).unwrap();
        // min(101,1500)*3 + counter 5 + 'h' + 7 + table[101 % 4 = 1] = 20
        let expect = 101 * 3 + 5 + b'h' as u64 + 7 + 20;
        assert_eq!(r.r0, expect, "{b:?}");
        assert_eq!(
            r.trace,
            vec![
                format!("global_data len=101 ret={expect}"),
                "call\n".to_string()
            ]
        );
        let r = p.run_skb(&zero(101)).unwrap();
        assert_eq!(r.r0, expect + 1, "{b:?} counter += 1");
        // .rodata is frozen for the host.
        let rodata = o
            .map_names()
            .into_iter()
            .find(|n| n.ends_with(".rodata"))
            .map(str::to_string)
            .unwrap();
        let m = o.map_handle(&rodata).unwrap();
        assert!(
            m.update_value(&0u32.to_ne_bytes(), &vec![0; m.value_size() as usize], 0)
                .is_err()
        );
    }
}

#[test]
fn subprograms() {
    for obj in ["subprogs.o", "subprogs_v1.o", "subprogs_nobtf.o"] {
        for b in BACKENDS {
            let rt = runtime(b);
            let o = load(&rt, obj);
            let a = prog(&o, "prog_a");
            let bb = prog(&o, "prog_b");
            for len in [14usize, 100, 300] {
                let l = (len & 0xff) as u64;
                assert_eq!(
                    a.run_skb(&zero(len)).unwrap().r0 as u32 as u64,
                    3 * l + l * l + 3,
                    "{obj} {b:?} {len}"
                );
                assert_eq!(
                    bb.run_skb(&zero(len)).unwrap().retval as u64,
                    (len as u64).min(100) + 6,
                    "{obj} {b:?}"
                );
            }
        }
    }
}

#[test]
fn bpf_loop_and_open_coded_iterators() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "loop_callback.o");
        let p = prog(&o, "loop_sum");
        for len in [14usize, 40, 63, 100, 127] {
            let n = (len % 64) as u64;
            let iters = n.min(50);
            let sum: u64 = (0..iters).map(|i| i * i).sum();
            assert_eq!(
                p.run_skb(&zero(len)).unwrap().r0,
                sum + iters * 100_000,
                "{b:?} len {len}"
            );
        }
        let o = load(&rt, "iter_for.o");
        let p = prog(&o, "iter_sum");
        for len in [14usize, 99, 150] {
            let n = (len % 100) as u64;
            assert_eq!(
                p.run_skb(&zero(len)).unwrap().r0,
                (0..n).map(|i| 3 * i).sum::<u64>(),
                "{b:?}"
            );
        }
    }
}

#[test]
fn cpuv4_instructions() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "cpuv4.o");
        let p = prog(&o, "cpuv4_ops");
        let mut pkt = zero(64);
        pkt[0] = 0xf9; // c = -7
        pkt[2..4].copy_from_slice(&(-300i16).to_ne_bytes());
        pkt[4..8].copy_from_slice(&(-100_000i32).to_ne_bytes());
        let (c, h, w) = (-7i64, -300i64, -100_000i64);
        let sx = c + h + w;
        let q = sx / c + sx % c;
        let r = ((w as i32) / ((h as i32) | 1) + (w as i32) % 7) as i64;
        let sx2 = (q + r) as i8 as i64;
        let swapped = (w as u64).swap_bytes()
            ^ ((h as i32 as u32).swap_bytes() as u64)
            ^ ((c as i16 as u16).swap_bytes() as u64);
        let ret = ((q + r + sx2) as i32) ^ ((swapped >> 32) as i32);
        let res = p.run_skb(&pkt).unwrap();
        assert_eq!(res.retval, ret as u32, "{b:?}");
        let m = o.map_handle("results").unwrap();
        let get = |k: u32| {
            i64::from_ne_bytes(
                m.lookup_value(&k.to_ne_bytes())
                    .unwrap()
                    .try_into()
                    .unwrap(),
            )
        };
        assert_eq!(
            (get(0), get(1), get(2), get(3) as u64),
            (q, r, sx2, swapped),
            "{b:?}"
        );
    }
}

#[test]
fn kfunc_objects_are_released() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "kfunc_obj.o");
        let p = prog(&o, "kfunc_acquire_release");
        let mut pkt = zero(20);
        assert_eq!(
            p.run_skb(&pkt).unwrap().retval,
            u32::MAX,
            "{b:?} NULL -> -1"
        );
        pkt[0] = 21;
        assert_eq!(p.run_skb(&pkt).unwrap().retval, 63, "{b:?} 3 * id");
        assert_eq!(rt.test_objects_live(), 0);
    }
}

#[test]
fn legacy_maps() {
    for obj in ["legacy_maps.o", "legacy_maps_nobtf.o"] {
        for b in BACKENDS {
            let rt = runtime(b);
            let o = load(&rt, obj);
            let p = prog(&o, "legacy_count");
            let pkt = ipv4_udp(60, 1);
            assert_eq!(p.run_skb(&pkt).unwrap().retval, 1, "{obj} {b:?}");
            assert_eq!(p.run_skb(&pkt).unwrap().retval, 2, "{obj} {b:?}");
            let seen = o.map_handle("seen").unwrap();
            // Socket filters see the IP header: byte 9 is the protocol (17).
            assert!(seen.lookup_value(&17u32.to_ne_bytes()).is_ok());
        }
    }
}

#[test]
fn exceptions() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "exceptions.o");
        let name = o.program_names()[0].to_string();
        let p = prog(&o, &name);
        assert_eq!(p.run_skb(&zero(100)).unwrap().retval, 100, "{b:?}");
        assert_eq!(
            p.run_skb(&zero(101)).unwrap().retval,
            1101,
            "{b:?} throw(len + 1000)"
        );

        let o = load(&rt, "exception_cb.o");
        let p = prog(&o, "throw_with_cb");
        let mut pkt = zero(60);
        assert_eq!(p.run_skb(&pkt).unwrap().retval, 60, "{b:?}");
        pkt[0] = 21;
        assert_eq!(
            p.run_skb(&pkt).unwrap().retval,
            42,
            "{b:?} callback doubles the cookie"
        );
    }
}

#[test]
fn deep_calls_and_tail_call_in_subprogram() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "deep_calls.o");
        let p = prog(&o, "deep_entry");
        assert_eq!(p.run_skb(&zero(100)).unwrap().retval, 505, "{b:?}");
    }
}

#[test]
fn core_relocations() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "core_local.o");
        let p = prog(&o, "core_read");
        // b = 0, c[1] = 0, mode = 0; + 1000 (a exists) + 8 * 10000 (sizeof c)
        // + 32 * 100000 (sizeof struct cfg) + 5 * 1000000 (MODE_ON)
        assert_eq!(
            p.run_skb(&zero(60)).unwrap().r0,
            1000 + 80_000 + 3_200_000 + 5_000_000,
            "{b:?}"
        );
    }
}

#[test]
fn lpm_trie_and_bloom_filter() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "lpm_bloom.o");
        let p = prog(&o, "lpm_bloom");
        let routes = o.ext_map("routes").unwrap();
        let key = |plen: u32, a: [u8; 4]| {
            let mut k = plen.to_ne_bytes().to_vec();
            k.extend_from_slice(&a);
            k
        };
        routes
            .update_value(&key(8, [10, 0, 0, 0]), &4u32.to_ne_bytes(), 0)
            .unwrap();
        routes
            .update_value(&key(24, [10, 0, 0, 0]), &7u32.to_ne_bytes(), 0)
            .unwrap();
        let pkt = ipv4_udp(60, 1); // 10.0.0.1 -> 10.0.0.2
        assert_eq!(
            p.run_skb(&pkt).unwrap().retval,
            70,
            "{b:?} /24 wins, source new"
        );
        assert_eq!(p.run_skb(&pkt).unwrap().retval, 71, "{b:?} source seen");
        let mut other = pkt.clone();
        other[32] = 9; // 10.0.9.2: only the /8 matches
        assert_eq!(p.run_skb(&other).unwrap().retval, 41, "{b:?}");
        other[30] = 11; // 11.0.9.2: no route
        assert_eq!(p.run_skb(&other).unwrap().retval, 1, "{b:?}");

        let o = load(&rt, "bloom_ulong.o");
        let p = prog(&o, "bloom_len");
        assert_eq!(p.run_skb(&zero(100)).unwrap().retval, 10, "{b:?}");
    }
}

#[test]
fn perf_event_output_without_events() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "perf_output.o");
        let p = prog(&o, "perf_sample");
        assert_eq!(
            p.run_skb(&zero(100)).unwrap().retval,
            -2i32 as u32,
            "{b:?} -ENOENT"
        );
    }
}

#[test]
fn ctx_accesses_are_rewritten_when_verified() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "xdp_firewall.o");
        let p = prog(&o, "xdp_firewall");
        // ldxdw rX, [r1 + 24] / [r1 + 32]: the hidden 64-bit data / data_end.
        let rewritten = p
            .insns()
            .iter()
            .filter(|i| i.code == 0x79 && (i.off == 24 || i.off == 32))
            .count();
        assert_eq!(rewritten >= 2, p.is_verified(), "{b:?}: {rewritten}");
        let mut pkt = ipv4_udp(80, 53);
        let want = p.run_xdp(&pkt).unwrap();
        let r0 = p.run_xdp_in_place(&mut pkt).unwrap();
        assert_eq!((r0, &pkt), (want.r0, &want.packet), "{b:?}");
    }
}

/// RFC 1071 checksum over `bytes` with `seed` (0 when valid data is summed
/// including its checksum field).
fn inet_csum(bytes: &[u8], seed: u32) -> u16 {
    let mut sum = seed;
    for c in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Pseudo-header sum of an Ethernet + IPv4 (IHL 5) frame.
fn pseudo(p: &[u8]) -> u32 {
    let mut s: u32 = p[26..34]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    s += u32::from(p[23]) + (p.len() - 34) as u32;
    s
}

/// IPv4 frame to 10.0.0.254:`dport` (TCP or UDP) with valid checksums.
fn nat_frame(proto: u8, dport: u16) -> Vec<u8> {
    let l4_len = if proto == 6 { 20 + 5 } else { 8 + 5 };
    let mut p = zero(34 + l4_len);
    p[12] = 0x08;
    p[14] = 0x45;
    p[16..18].copy_from_slice(&((20 + l4_len) as u16).to_be_bytes());
    p[22] = 64;
    p[23] = proto;
    p[26..30].copy_from_slice(&[10, 0, 0, 5]);
    p[30..34].copy_from_slice(&[10, 0, 0, 254]);
    p[34..36].copy_from_slice(&40000u16.to_be_bytes());
    p[36..38].copy_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        p[46] = 0x50;
    } else {
        p[38..40].copy_from_slice(&(l4_len as u16).to_be_bytes());
    }
    let n = p.len();
    p[n - 5..].copy_from_slice(b"hello");
    let c = inet_csum(&p[14..34], 0);
    p[24..26].copy_from_slice(&c.to_be_bytes());
    let off = if proto == 6 { 50 } else { 40 };
    let c = inet_csum(&p[34..], pseudo(&p));
    p[off..off + 2].copy_from_slice(&c.to_be_bytes());
    p
}

#[test]
fn tc_nat_keeps_checksums_valid() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "tc_nat.o");
        let p = prog(&o, "tc_nat");
        for proto in [6u8, 17] {
            let r = p.run_skb(&nat_frame(proto, 80)).unwrap();
            assert_eq!(r.retval, 0, "{b:?} proto {proto} rewritten");
            let out = &r.packet;
            assert_eq!(&out[30..34], &[192, 168, 1, 1], "{b:?} daddr");
            assert_eq!(&out[36..38], &8080u16.to_be_bytes(), "{b:?} dport");
            assert_eq!(inet_csum(&out[14..34], 0), 0, "{b:?} IPv4 checksum");
            assert_eq!(
                inet_csum(&out[34..], pseudo(out)),
                0,
                "{b:?} proto {proto} L4 checksum with the new pseudo header"
            );
        }
        // UDP without a checksum keeps none (BPF_F_MARK_MANGLED_0).
        let mut f = nat_frame(17, 80);
        f[40] = 0;
        f[41] = 0;
        let r = p.run_skb(&f).unwrap();
        assert_eq!((r.retval, r.packet[40], r.packet[41]), (0, 0, 0), "{b:?}");
        assert_eq!(p.run_skb(&nat_frame(6, 443)).unwrap().retval, 1, "{b:?}");
        let hits = o.map_handle("nat_hits").unwrap();
        assert_eq!(
            hits.lookup_value(&1u32.to_ne_bytes()).unwrap(),
            2u64.to_ne_bytes(),
            "{b:?} two UDP rewrites"
        );
    }
}

#[test]
fn tail_chain_stops_after_33_tail_calls() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "tail_chain.o");
        let entry = prog(&o, "chain_entry");
        assert_eq!(entry.run_skb(&zero(60)).unwrap().retval, 1, "{b:?} empty");
        o.set_tail_call("chain", 0, &prog(&o, "chain_step"))
            .unwrap();
        let r = entry.run_skb(&zero(60)).unwrap();
        assert_eq!((r.retval, r.tail_calls), (34, 33), "{b:?}");
        let hits = o.map_handle("chain_hits").unwrap();
        assert_eq!(
            hits.lookup_value(&0u32.to_ne_bytes()).unwrap(),
            2u64.to_ne_bytes(),
            "{b:?} one fall-through per run"
        );
    }
}

#[test]
fn printk_formats() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "printk_fmt.o");
        let p = prog(&o, "printk_fmt");
        let r = p.run_skb(&zero(100)).unwrap();
        let want = [
            "no args",
            "d=-100 i=-100 u=100",
            "x=64 ld=-100 lu=100",
            "lx=640000000abc lld=-100",
            "llu=109951162780348 llx=640000000abc",
            "c=W s=cordon 100%",
            "w=  100 z=00000064",
        ];
        assert_eq!(r.trace, want, "{b:?}");
        let total: usize = want.iter().map(|s| s.len()).sum();
        assert_eq!(r.retval as usize, total, "{b:?} sum of formatted lengths");
        // %n is refused (-EINVAL): + 1000.
        let r = p.run_skb(&zero(255)).unwrap();
        assert_eq!(r.trace.len(), 7, "{b:?}");
        let total: usize = r.trace.iter().map(|s| s.len()).sum();
        assert_eq!(r.retval as usize, total + 1000, "{b:?}");
    }
}

#[test]
fn xdp_meta_tail_and_queue_full() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "xdp_tail_meta.o");
        let p = prog(&o, "xdp_tail_meta");
        let mut pkt = zero(60);
        pkt[0] = 5;
        let r = p.run_xdp(&pkt).unwrap();
        assert_eq!(r.retval, 1 << 24 | 55, "{b:?} meta kept, 5 bytes trimmed");
        pkt[0] = 0xff;
        assert_eq!(p.run_xdp(&pkt).unwrap().retval, 1 << 24 | 1 << 20 | 60);

        let o = load(&rt, "queue_full.o");
        let p = prog(&o, "queue_full");
        let r = p.run_skb(&zero(20)).unwrap();
        assert_eq!(r.retval, 4 << 24 | 201 << 16 | (4 * 200 + 106), "{b:?}");
        let order = o.map_handle("order").unwrap();
        let got: Vec<u32> = (0..5u32)
            .map(|k| {
                let v = order.lookup_value(&k.to_ne_bytes()).unwrap();
                u32::from_ne_bytes(v[..4].try_into().unwrap())
            })
            .collect();
        assert_eq!(
            got,
            [300, 203, 202, 201, u32::MAX],
            "{b:?} stack LIFO order"
        );
    }
}

#[test]
fn sdiv_smod_edges() {
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "sdiv_edge.o");
        let p = prog(&o, "sdiv_edge");
        let out = o.map_handle("out").unwrap();
        let get = |k: u32| {
            i64::from_ne_bytes(
                out.lookup_value(&k.to_ne_bytes()).unwrap()[..8]
                    .try_into()
                    .unwrap(),
            )
        };
        let run = |a: i64, d: i64| {
            let mut pkt = zero(40);
            pkt[..8].copy_from_slice(&a.to_le_bytes());
            pkt[8..16].copy_from_slice(&d.to_le_bytes());
            p.run_skb(&pkt).unwrap();
            (0..8).map(get).collect::<Vec<i64>>()
        };
        let r = run(i64::MIN, -1);
        assert_eq!(&r[..4], &[i64::MIN, 0, 0, 0], "{b:?} overflow (low half 0)");
        let r = run(7, 0);
        assert_eq!(&r[..4], &[0, 7, 0, 7], "{b:?} by zero");
        let r = run(-7, 2);
        assert_eq!(&r[..8], &[-3, -1, -3, -1, 1, 0, -2, -1], "{b:?} signs");
        let r = run(0x8000_0000, -1);
        assert_eq!(r[2], i64::from(i32::MIN), "{b:?} INT_MIN / -1");
        assert_eq!(r[3], 0, "{b:?} INT_MIN % -1");
    }
}

#[test]
fn tcp_options_walk() {
    // SYN options: MSS 1460, NOP, window scale 7, SACK permitted, timestamps.
    let opts = [
        2u8, 4, 0x05, 0xb4, 1, 3, 3, 7, 4, 2, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0,
    ];
    let mut pkt = ipv4_udp(34 + 40 + 4, 80);
    pkt[23] = 6;
    pkt[46] = 10 << 4;
    pkt[54..74].copy_from_slice(&opts);
    for b in BACKENDS {
        let rt = runtime(b);
        let o = load(&rt, "tcp_opts.o");
        let p = prog(&o, "tcp_opts");
        let r = p.run_skb(&pkt).unwrap();
        assert_eq!(r.retval, 1460 << 16 | 7 << 8 | 1 << 4 | 1, "{b:?}");
        let ts = o.map_handle("last_tsval").unwrap();
        assert_eq!(
            ts.lookup_value(&0u32.to_ne_bytes()).unwrap(),
            0xdead_beefu32.to_ne_bytes(),
            "{b:?}"
        );
    }
}
