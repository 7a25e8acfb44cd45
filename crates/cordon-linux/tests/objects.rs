//! The bpftool/libbpf object layer against the running kernel, with the
//! committed objects of tests/bpf. Every test skips (prints `skipped: ...`)
//! where bpf(), bpftool or bpffs is not available.

use cordon_linux::{
    KernelError, KernelObject, MapType, ObjectLoad, ProgType, TestRun, possible_cpus, require,
};
use std::path::{Path, PathBuf};
use std::process::Command;

fn obj(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bpf")).join(name)
}

/// Ethernet + IPv4 + `proto` header of `len` bytes from 10.0.0.1 to port 80.
fn ipv4_packet(len: usize, proto: u8, first_byte: u8) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0] = first_byte;
    p[1..6].copy_from_slice(&[0, 0, 0, 0, 1]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    p[12..14].copy_from_slice(&[0x08, 0x00]);
    p[14] = 0x45;
    p[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    p[22] = 64;
    p[23] = proto;
    p[26..30].copy_from_slice(&[10, 0, 0, 1]);
    p[30..34].copy_from_slice(&[10, 0, 0, 2]);
    p[34..36].copy_from_slice(&40000u16.to_be_bytes());
    p[36..38].copy_from_slice(&80u16.to_be_bytes());
    p
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn lookup<'a>(entries: &'a [(Vec<u8>, Vec<u8>)], key: &[u8]) -> &'a [u8] {
    &entries
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no key {key:?} in {entries:?}"))
        .1
}

#[test]
fn xdp_firewall_drops_by_rule_and_counts_per_cpu() {
    let o = require!(KernelObject::load(&obj("xdp_firewall.o")));
    assert_eq!(o.programs(), ["xdp_firewall"]);
    assert_eq!(o.maps(), ["fw_rules", "fw_stats"]);
    let pkt = ipv4_packet(64, 6, 0x02);
    let run = o.run("xdp_firewall", &pkt, None, 1).unwrap();
    assert_eq!(run.retval, 2, "XDP_PASS without rules");
    assert_eq!(run.data_out, pkt);

    // struct fw_key { u32 addr[4]; u16 port; u8 proto; u8 family; }
    let mut key = vec![0u8; 20];
    key[0..4].copy_from_slice(&[10, 0, 0, 1]);
    key[16..18].copy_from_slice(&80u16.to_le_bytes());
    key[18] = 6;
    key[19] = 4;
    // struct fw_rule { u32 action; u32 pad; u64 hits; }
    let mut rule = vec![0u8; 16];
    rule[0..4].copy_from_slice(&1u32.to_le_bytes()); // XDP_DROP
    o.map_update("fw_rules", &key, &rule).unwrap();
    let run = o.run("xdp_firewall", &pkt, None, 1).unwrap();
    assert_eq!(run.retval, 1, "XDP_DROP by rule");

    let rules = o.dump_map("fw_rules").unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(u64_at(lookup(&rules, &key), 8), 1, "rule hits");

    // fw_stats is a per-CPU array of { u64 packets; u64 bytes; }.
    let ncpu = possible_cpus().unwrap();
    let stats = o.dump_map_per_cpu("fw_stats").unwrap();
    assert_eq!(stats.len(), 4);
    for (key, values) in &stats {
        assert_eq!(values.len(), ncpu, "one value per possible CPU");
        let packets: u64 = values.iter().map(|v| u64_at(v, 0)).sum();
        let bytes: u64 = values.iter().map(|v| u64_at(v, 8)).sum();
        let want = match u32_at(key, 0) {
            0 | 1 => 1, // one pass, one drop
            _ => 0,
        };
        assert_eq!((packets, bytes), (want, want * 64), "stat {key:?}");
    }
    let flat = o.dump_map("fw_stats").unwrap();
    assert!(flat.iter().all(|(_, v)| v.len() == 16 * ncpu));
}

#[test]
fn tail_calls_follow_the_prog_array() {
    let o = require!(KernelObject::load(&obj("tail_call.o")));
    let run = |b: u8| {
        o.run("tail_entry", &ipv4_packet(64, 17, b), None, 1)
            .unwrap()
            .retval
    };
    assert_eq!(run(0), 1, "slot 0: tail_one");
    assert_eq!(run(1), 128, "slot 1: tail_double = len * 2");
    assert_eq!(run(2), 99, "slot 2 empty");
    o.set_tail_call("jump_table", 2, "tail_one").unwrap();
    assert_eq!(run(2), 1, "slot 2 filled");
    assert_eq!(run(6), 1, "6 % 4 == 2");
    // Prog arrays dump program ids.
    assert_eq!(o.dump_map("jump_table").unwrap().len(), 3);
    assert!(matches!(
        o.set_tail_call("jump_table", 0, "nope"),
        Err(KernelError::NotFound { .. })
    ));
}

#[test]
fn global_data_maps_are_found_by_section_name() {
    let o = require!(KernelObject::load(&obj("global_data.o")));
    let pkt = ipv4_packet(64, 17, 0);
    // len * 3 + counter (5) + 'h' + custom (7) + table[64 % 4]
    assert_eq!(
        o.run("global_data", &pkt, None, 1).unwrap().retval,
        192 + 5 + 104 + 7 + 10
    );
    assert_eq!(
        o.run("global_data", &pkt, None, 1).unwrap().retval,
        192 + 6 + 104 + 7 + 10
    );
    let bss = o.dump_map(".bss").unwrap();
    assert_eq!(bss.len(), 1);
    assert_eq!(u64_at(&bss[0].1, 0), 2, "calls");
    let data = o.dump_map(".data").unwrap();
    assert_eq!(u64_at(&data[0].1, 0), 7, "counter");
    assert_eq!(&data[0].1[8..13], b"hello");
    assert_eq!(o.dump_map("global_d.data").unwrap(), data);
    let custom = o.dump_map(".data.custom").unwrap();
    assert_eq!(u32_at(&custom[0].1, 0), 7);
    let rodata = o.dump_map(".rodata").unwrap();
    assert_eq!(u32_at(&rodata[0].1, 0), 3, "multiplier");
    assert!(
        o.maps().iter().any(|m| m == "_rodata_str1_1"),
        "{}",
        o.describe()
    );
}

#[test]
fn every_plain_map_type() {
    let o = require!(KernelObject::load(&obj("maps_basic.o")));
    let mut pkt = ipv4_packet(64, 17, 0);
    pkt[0..4].copy_from_slice(&1u32.to_le_bytes());
    // arr 64 + pcpu_arr 1 + hash 1 + pcpu_hash 2 + lru 64 + lru_pcpu 3
    assert_eq!(o.run("maps_basic", &pkt, None, 1).unwrap().retval, 135);
    let k1 = 1u32.to_le_bytes();
    assert_eq!(u64_at(lookup(&o.dump_map("arr").unwrap(), &k1), 0), 64);
    let pcpu = o.dump_map_per_cpu("pcpu_arr").unwrap();
    let values = &pcpu.iter().find(|(k, _)| k == &k1).unwrap().1;
    assert_eq!(values.len(), possible_cpus().unwrap());
    assert_eq!(values.iter().map(|v| u64_at(v, 0)).sum::<u64>(), 1);
    let lru_pcpu = o.dump_map_per_cpu("lru_pcpu").unwrap();
    assert_eq!(lru_pcpu.len(), 1);
    assert_eq!(lru_pcpu[0].1.iter().map(|v| u64_at(v, 0)).sum::<u64>(), 3);
}

#[test]
fn queue_push_from_user_space() {
    let o = require!(KernelObject::load(&obj("queue_stack.o")));
    o.map_update("fifo", &[], &5u32.to_le_bytes()).unwrap();
    // fifo pops the pre-pushed 5; lifo pops len + 1.
    let run = o
        .run("queue_stack", &ipv4_packet(64, 17, 0), None, 1)
        .unwrap();
    assert_eq!(run.retval, 5 * 1000 + 65);
}

#[test]
fn bpf_to_bpf_calls() {
    let o = require!(KernelObject::load(&obj("subprogs.o")));
    let pkt = ipv4_packet(64, 17, 0);
    assert_eq!(
        o.run("prog_a", &pkt, None, 1).unwrap().retval,
        3 * 64 + 64 * 64 + 3
    );
    assert_eq!(o.run("prog_b", &pkt, None, 1).unwrap().retval, 64 + 6);
    let run = o.run("prog_b", &pkt, None, 50).unwrap();
    assert_eq!(run.retval, 70);
}

#[test]
fn socket_filter_offsets_start_at_the_network_header() {
    let o = require!(KernelObject::load(&obj("socket_filter.o")));
    let udp = ipv4_packet(64, 17, 0);
    assert_eq!(
        o.run("socket_filter", &udp, None, 1).unwrap().retval,
        50,
        "skb->len without Ethernet"
    );
    let tcp = ipv4_packet(120, 6, 0);
    assert_eq!(
        o.run("socket_filter", &tcp, None, 1).unwrap().retval,
        64,
        "TCP cut to 64"
    );
    let mut arp = ipv4_packet(64, 17, 0);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    arp[14] = 0;
    assert_eq!(o.run("socket_filter", &arp, None, 1).unwrap().retval, 0);
}

#[test]
fn tc_context_in_and_out() {
    let o = require!(KernelObject::load(&obj("tc_mark.o")));
    let pkt = ipv4_packet(64, 17, 0);
    let ctx = vec![0u8; 192];
    let run = o.run("tc_mark", &pkt, Some(&ctx), 1).unwrap();
    assert_eq!(run.retval, 0, "TC_ACT_OK");
    assert_eq!(run.ctx_out.len(), 192, "sizeof(struct __sk_buff)");
    // mark = len << 16 | protocol (network order, as read: 0x0008)
    assert_eq!(u32_at(&run.ctx_out, 8), (64 << 16) | 0x0008, "mark");
    assert_eq!(u32_at(&run.ctx_out, 32), 0, "priority = 64 % 8");
    assert_eq!(
        u32_at(&run.ctx_out, 48),
        u32_at(&run.ctx_out, 40) + 1,
        "cb[0] = ifindex + 1"
    );
    let run = o.run("cls_len", &pkt, Some(&ctx), 1).unwrap();
    assert_eq!(u32_at(&run.ctx_out, 8), 64 ^ 0x5a5a);
}

#[test]
fn objects_libbpf_refuses_are_rejections() {
    // The Cordon test kfuncs do not exist in Linux: libbpf cannot resolve them.
    match KernelObject::load(&obj("kfunc_obj.o")) {
        Err(KernelError::Rejected { log, .. }) => {
            assert!(log.contains("cordon_test_acquire"), "{log}");
        }
        Err(e) if e.is_unavailable() => cordon_linux::report_skip(e.skip().unwrap_or_default()),
        other => panic!("expected a rejection, got {other:?}"),
    }
    let v = require!(KernelObject::verdict(
        &obj("kfunc_obj.o"),
        "kfunc_acquire_release"
    ));
    assert!(!v.accepted);
    assert!(
        v.libbpf_output.contains("cordon_test_acquire"),
        "{}",
        v.libbpf_output
    );
}

#[test]
fn pins_are_removed_on_drop_even_after_a_panic() {
    let o = require!(KernelObject::load(&obj("tail_call.o")));
    let prog = o.prog_path("tail_entry").unwrap();
    let map = o.map_path("jump_table").unwrap();
    assert!(prog.exists() && map.exists());
    drop(o);
    assert!(!prog.exists() && !prog.parent().unwrap().exists());
    assert!(!map.exists() && !map.parent().unwrap().exists());

    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let o = KernelObject::load(&obj("maps_basic.o")).unwrap();
        tx.send(o.map_path("arr").unwrap()).unwrap();
        panic!("test failure while an object is loaded");
    });
    assert!(result.is_err());
    let pinned = rx.recv().unwrap();
    assert!(!pinned.exists() && !pinned.parent().unwrap().exists());
}

/// Compile tests/data/reject.c, or `None` (with a skip message) without clang.
fn build_reject_object(dir: &Path) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/reject.c");
    let out = dir.join("reject.o");
    for clang in [
        std::env::var("CLANG").unwrap_or_default().as_str(),
        "clang-19",
        "clang",
    ] {
        if clang.is_empty() {
            continue;
        }
        let status = Command::new(clang)
            .args(["-target", "bpf", "-O2", "-c"])
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .status();
        if let Ok(s) = status
            && s.success()
        {
            return Some(out);
        }
    }
    cordon_linux::report_skip("no clang to build tests/data/reject.c");
    None
}

#[test]
fn verifier_verdicts_per_program() {
    let dir = tempfile::tempdir().unwrap();
    let Some(path) = build_reject_object(dir.path()) else {
        return;
    };
    let good = require!(KernelObject::verdict(&path, "good"));
    assert!(good.accepted, "{}", good.libbpf_output);
    assert_eq!(good.errno, None);
    assert!(good.log.contains("processed 3 insns"), "{}", good.log);
    let bad = KernelObject::verdict(&path, "bad_read").unwrap();
    assert!(!bad.accepted);
    assert_eq!(bad.errno, Some(libc::EACCES));
    assert!(bad.log.contains("invalid access to packet"), "{}", bad.log);
    match KernelObject::load(&path) {
        Err(KernelError::Rejected { errno, log, .. }) => {
            assert_eq!(errno, libc::EACCES);
            assert!(log.contains("invalid access to packet"), "{log}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    // Accepted objects report their programs.
    let v = KernelObject::verdict(&obj("subprogs.o"), "prog_b").unwrap();
    assert!(v.accepted);
    assert!(matches!(
        KernelObject::verdict(&obj("subprogs.o"), "missing"),
        Err(KernelError::NotFound { .. })
    ));
}

#[test]
fn pinned_objects_open_for_direct_syscalls() {
    let o = require!(KernelObject::load(&obj("maps_basic.o")));
    let prog = o.program("maps_basic").unwrap();
    assert_eq!(prog.prog_type(), ProgType::SCHED_CLS);
    let mut pkt = ipv4_packet(64, 17, 0);
    pkt[0..4].copy_from_slice(&2u32.to_le_bytes());
    let run = prog.test_run(&TestRun::new(&pkt)).unwrap();
    assert_eq!(run.retval, 135);
    let arr = o.map("arr").unwrap();
    assert_eq!(
        (arr.map_type(), arr.key_size(), arr.value_size()),
        (MapType::ARRAY, 4, 8)
    );
    assert_eq!(
        arr.lookup(&2u32.to_le_bytes()).unwrap(),
        Some(64u64.to_le_bytes().to_vec())
    );
    let pcpu = o.map("pcpu_hash").unwrap();
    assert!(pcpu.map_type().is_per_cpu());
    let values = pcpu.lookup_per_cpu(&2u32.to_le_bytes()).unwrap().unwrap();
    assert_eq!(values.iter().map(|v| u64_at(v, 0)).sum::<u64>(), 2);
    // The same bytes through bpftool.
    let dumped = o.dump_map_per_cpu("pcpu_hash").unwrap();
    assert_eq!(dumped, vec![(2u32.to_le_bytes().to_vec(), values)]);
}

#[test]
fn bpftool_type_argument_overrides_section_names() {
    let opts = ObjectLoad {
        prog_type: Some("classifier".into()),
    };
    // socket_filter.o as a tc classifier: LD_ABS offsets now start at the
    // Ethernet header instead of the network header.
    let o = require!(KernelObject::load_with(&obj("socket_filter.o"), &opts));
    assert_eq!(
        o.program("socket_filter").unwrap().prog_type(),
        ProgType::SCHED_CLS
    );
    let udp = ipv4_packet(64, 17, 0);
    assert_eq!(
        o.run("socket_filter", &udp, None, 1).unwrap().retval,
        0,
        "byte 0 is a MAC byte"
    );
    let mut fake = udp.clone();
    fake[0] = 0x45; // "version 4"
    fake[9] = 17; // "protocol UDP"
    assert_eq!(
        o.run("socket_filter", &fake, None, 1).unwrap().retval,
        64,
        "skb->len with Ethernet"
    );
    let bad = ObjectLoad {
        prog_type: Some("no_such_type".into()),
    };
    assert!(KernelObject::load_with(&obj("socket_filter.o"), &bad).is_err());
}

/// (object, program, packet length, expected return values of consecutive runs),
/// from what each tests/bpf/*.c says it computes.
const EXPECTED: &[(&str, &str, usize, &[u32])] = &[
    // inner_a[0] += len, +1000 for the hash-of-maps hit
    ("map_in_map.o", "map_in_map", 64, &[64 + 1000, 128 + 1000]),
    // shared total += len under the lock
    ("spin_lock.o", "spin_add", 64, &[64, 128, 192]),
    // sum of i*i for i < 70 % 64 = 6, plus iters * 100000
    ("loop_callback.o", "loop_sum", 70, &[55 + 600_000]),
    // sum of 3*i for i < 70
    ("iter_for.o", "iter_sum", 70, &[3 * 2415]),
    // len <= 100: returns len; len > 100 throws len + 1000
    ("exceptions.o", "throw_big", 64, &[64]),
    ("exceptions.o", "throw_big", 120, &[1120]),
    // even length: both events submitted; odd: the reserved one discarded
    ("ringbuf.o", "ringbuf_events", 64, &[2, 2]),
    ("ringbuf.o", "ringbuf_events", 65, &[1]),
    ("subprogs_v1.o", "prog_a", 64, &[3 * 64 + 64 * 64 + 3]),
    ("subprogs_nobtf.o", "prog_b", 64, &[70]),
    ("xdp_firewall_v1.o", "xdp_firewall", 64, &[2]),
];

#[test]
fn committed_objects_compute_what_their_sources_say() {
    for &(file, prog, len, want) in EXPECTED {
        let o = require!(KernelObject::load(&obj(file)));
        let pkt = ipv4_packet(len, 17, 0);
        let got: Vec<u32> = want
            .iter()
            .map(|_| o.run(prog, &pkt, None, 1).unwrap().retval)
            .collect();
        assert_eq!(got, want, "{file} {prog} on {len} bytes");
    }
}

#[test]
fn ringbuf_sequence_lives_in_bss() {
    let o = require!(KernelObject::load(&obj("ringbuf.o")));
    for _ in 0..3 {
        o.run("ringbuf_events", &ipv4_packet(64, 17, 0), None, 1)
            .unwrap();
    }
    let bss = o.dump_map(".bss").unwrap();
    assert_eq!(
        o.map_path(".bss").unwrap(),
        o.map_path("ringbuf_bss").unwrap()
    );
    assert_eq!(u64_at(&bss[0].1, 0), 6, "two sequence numbers per run");
}
