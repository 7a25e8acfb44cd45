//! The raw bpf() layer against the running kernel. Every test skips (prints
//! `skipped: ...`) where bpf() is not permitted.

use cordon_isa::{Insn, assemble_linux};
use cordon_linux::{
    Btf, FuncInfo, KernelError, LineInfo, Map, MapSpec, MapType, ProgLoad, ProgType, TestRun,
    pseudo, require, test_run, update_flags, verdict,
};
use std::os::fd::AsFd;

fn asm(text: &str) -> Vec<Insn> {
    assemble_linux(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// An Ethernet + IPv4 + UDP packet of `len` bytes (len >= 42).
fn udp_packet(len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len];
    p[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    p[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    p[12..14].copy_from_slice(&[0x08, 0x00]);
    p[14] = 0x45;
    let ip_len = (len - 14) as u16;
    p[16..18].copy_from_slice(&ip_len.to_be_bytes());
    p[22] = 64;
    p[23] = 17;
    p[26..30].copy_from_slice(&[10, 0, 0, 1]);
    p[30..34].copy_from_slice(&[10, 0, 0, 2]);
    p[34..36].copy_from_slice(&1234u16.to_be_bytes());
    p[36..38].copy_from_slice(&53u16.to_be_bytes());
    p[38..40].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    for (i, b) in p[42..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

const XDP_REWRITE: &str = "
    r2 = *(u32 *)(r1 +0)
    r3 = *(u32 *)(r1 +4)
    r4 = r2
    r4 += 14
    if r4 > r3 goto drop
    *(u8 *)(r2 +0) = 0xaa
    r5 = *(u8 *)(r2 +13)
    r5 += 1
    *(u8 *)(r2 +13) = r5
    r0 = 3
    exit
drop:
    r0 = 1
    exit
";

#[test]
fn xdp_program_rewrites_the_packet() {
    let prog = asm(XDP_REWRITE);
    let pkt = udp_packet(64);
    let run = require!(test_run(ProgType::XDP, &prog, &[], &pkt, None, 1));
    assert_eq!(run.retval, 3, "XDP_TX");
    assert_eq!(run.data_out.len(), pkt.len());
    let mut want = pkt.clone();
    want[0] = 0xaa;
    want[13] = pkt[13] + 1;
    assert_eq!(run.data_out, want);
}

#[test]
fn xdp_rejects_packets_shorter_than_an_ethernet_header() {
    let prog = require!(ProgLoad::new(ProgType::XDP, &asm(XDP_REWRITE)).load());
    let err = prog
        .test_run(&TestRun::new(&[0u8; 13]))
        .expect_err("13-byte XDP packet");
    assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
    let ok = prog.test_run(&TestRun::new(&[0u8; 14])).unwrap();
    assert_eq!(ok.retval, 3);
    assert_eq!(ok.data_out[0], 0xaa);
}

/// `r0 = ctx->data_end - ctx->data`: the linear part the program can touch.
const XDP_LINEAR_LEN: &str = "
    r2 = *(u32 *)(r1 +0)
    r3 = *(u32 *)(r1 +4)
    r0 = r3
    r0 -= r2
    exit
";

#[test]
fn xdp_ctx_in_sets_ingress_and_the_linear_length() {
    // r0 = ctx->ingress_ifindex
    let ingress =
        require!(ProgLoad::new(ProgType::XDP, &asm("r0 = *(u32 *)(r1 +12)\nexit")).load());
    let pkt = udp_packet(60);
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index, egress_ifindex
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&60u32.to_le_bytes()); // data_end = packet length
    ctx[12..16].copy_from_slice(&1u32.to_le_bytes()); // lo
    let run = ingress
        .test_run(&TestRun::new(&pkt).with_ctx(&ctx))
        .unwrap();
    assert_eq!(run.retval, 1);
    assert_eq!(run.ctx_out.len(), 24, "ctx_out is sizeof(struct xdp_md)");
    // egress_ifindex may not be set.
    let mut bad = ctx;
    bad[20..24].copy_from_slice(&1u32.to_le_bytes());
    let err = ingress
        .test_run(&TestRun::new(&pkt).with_ctx(&bad))
        .expect_err("egress_ifindex set");
    assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");

    // data_end below the packet length shortens the linear part (the rest
    // becomes a fragment); beyond it is refused.
    let linear = ProgLoad::new(ProgType::XDP, &asm(XDP_LINEAR_LEN))
        .load()
        .unwrap();
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&40u32.to_le_bytes());
    let run = linear.test_run(&TestRun::new(&pkt).with_ctx(&ctx)).unwrap();
    assert_eq!(run.retval, 40);
    assert_eq!(run.data_out, pkt, "data_out still holds all 60 bytes");
    assert_eq!(&run.ctx_out[4..8], &40u32.to_le_bytes());
    ctx[4..8].copy_from_slice(&61u32.to_le_bytes());
    let err = linear
        .test_run(&TestRun::new(&pkt).with_ctx(&ctx))
        .expect_err("data_end beyond the packet");
    assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
}

#[test]
#[cfg(target_arch = "x86_64")]
fn xdp_linear_area_is_capped_at_3520_bytes() {
    // 4096 - 256 headroom - 320 skb_shared_info: longer packets continue in
    // fragments the program cannot reach directly; data_out returns them all.
    let prog = require!(ProgLoad::new(ProgType::XDP, &asm(XDP_LINEAR_LEN)).load());
    for (len, linear) in [(14usize, 14u32), (3520, 3520), (3521, 3520), (9000, 3520)] {
        let pkt: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let run = prog.test_run(&TestRun::new(&pkt)).unwrap();
        assert_eq!(run.retval, linear, "{len}-byte packet");
        assert_eq!(run.data_out, pkt, "{len}-byte packet");
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn skb_packets_are_limited_to_3712_bytes() {
    // 4096 - NET_SKB_PAD (64) - skb_shared_info (320) on x86-64.
    let prog =
        require!(ProgLoad::new(ProgType::SCHED_CLS, &asm("r0 = *(u32 *)(r1 +0)\nexit")).load());
    assert_eq!(
        prog.test_run(&TestRun::new(&[0u8; 3712])).unwrap().retval,
        3712
    );
    for len in [13usize, 3713] {
        let err = prog
            .test_run(&TestRun::new(&vec![0u8; len]))
            .expect_err("out of range");
        assert_eq!(err.errno(), Some(libc::EINVAL), "{len}: {err}");
    }
}

#[test]
fn a_too_small_data_out_buffer_is_enospc_after_the_run() {
    let m = require!(Map::create(&MapSpec::array(8, 1)));
    let maps = [&m];
    let prog = ProgLoad::new(ProgType::XDP, &asm(COUNT_RUNS))
        .with_maps(&maps)
        .load()
        .unwrap();
    let mut run = TestRun::new(&[1u8; 64]);
    run.data_out_size = Some(10);
    let err = prog.test_run(&run).expect_err("10-byte data_out");
    assert_eq!(err.errno(), Some(libc::ENOSPC), "{err}");
    assert!(err.to_string().contains("needs data 64"), "{err}");
    assert_eq!(
        m.lookup(&0u32.to_le_bytes()).unwrap(),
        Some(1u64.to_le_bytes().to_vec()),
        "the program ran"
    );
}

#[test]
fn root_may_read_uninitialised_stack() {
    let v = require!(verdict(
        ProgType::SOCKET_FILTER,
        &asm("r0 = *(u64 *)(r10 -8)\nexit"),
        &[]
    ));
    assert!(v.accepted, "{}", v.log);
}

#[test]
fn xdp_metadata_must_start_the_buffer() {
    let prog = require!(ProgLoad::new(ProgType::XDP, &asm(XDP_LINEAR_LEN)).load());
    let pkt = udp_packet(64);
    let mut ctx = [0u8; 24];
    ctx[0..4].copy_from_slice(&8u32.to_le_bytes()); // data: 8 bytes of metadata
    ctx[4..8].copy_from_slice(&64u32.to_le_bytes());
    let run = prog.test_run(&TestRun::new(&pkt).with_ctx(&ctx)).unwrap();
    assert_eq!(run.retval, 56, "the first 8 input bytes are metadata");
    assert_eq!(run.data_out, pkt, "data_out starts at data_meta");
    ctx[8..12].copy_from_slice(&4u32.to_le_bytes()); // data_meta != 0
    let err = prog
        .test_run(&TestRun::new(&pkt).with_ctx(&ctx))
        .expect_err("data_meta set");
    assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
}

#[test]
fn retval_is_the_low_32_bits_of_r0() {
    let run = require!(test_run(
        ProgType::SCHED_CLS,
        &asm("r0 = -5\nexit"),
        &[],
        &udp_packet(64),
        None,
        1
    ));
    assert_eq!(run.retval, (-5i32) as u32);
}

#[test]
fn skb_len_differs_between_socket_filter_and_tc() {
    // r0 = skb->len
    let prog = asm("r0 = *(u32 *)(r1 +0)\nexit");
    let pkt = udp_packet(64);
    let tc = require!(test_run(ProgType::SCHED_CLS, &prog, &[], &pkt, None, 1));
    assert_eq!(tc.retval, 64, "tc sees the Ethernet header");
    assert_eq!(tc.data_out, pkt);
    let sf = test_run(ProgType::SOCKET_FILTER, &prog, &[], &pkt, None, 1).unwrap();
    assert_eq!(sf.retval, 50, "socket filters start at the network header");
    // data_out holds the whole frame again, Ethernet header zeroed.
    assert_eq!(sf.data_out.len(), 64);
    assert_eq!(&sf.data_out[..14], &[0u8; 14]);
    assert_eq!(&sf.data_out[14..], &pkt[14..]);
}

#[test]
fn skb_ctx_in_mark_is_visible_and_comes_back() {
    // skb->mark (offset 8) += 1; return skb->mark
    let prog = asm("
        r2 = *(u32 *)(r1 +8)
        r2 += 1
        *(u32 *)(r1 +8) = r2
        r0 = r2
        exit");
    let prog = require!(ProgLoad::new(ProgType::SCHED_CLS, &prog).load());
    let mut ctx = vec![0u8; 192];
    ctx[8..12].copy_from_slice(&41u32.to_le_bytes());
    let run = prog
        .test_run(&TestRun::new(&udp_packet(64)).with_ctx(&ctx))
        .unwrap();
    assert_eq!(run.retval, 42);
    assert!(
        run.ctx_out.len() >= 192,
        "ctx_out {} bytes",
        run.ctx_out.len()
    );
    assert_eq!(&run.ctx_out[8..12], &42u32.to_le_bytes());
    assert_eq!(&run.ctx_out[40..44], &1u32.to_le_bytes(), "ifindex = lo");
    // However short ctx_in is, ctx_out is the whole __sk_buff.
    let run = prog
        .test_run(&TestRun::new(&udp_packet(64)).with_ctx(&[0u8; 8]))
        .unwrap();
    assert_eq!(run.ctx_out.len(), 192);
    assert_eq!(run.retval, 1);
    // Fields test_run does not let you set (len at offset 0) are refused.
    ctx[0..4].copy_from_slice(&64u32.to_le_bytes());
    let err = prog
        .test_run(&TestRun::new(&udp_packet(64)).with_ctx(&ctx))
        .expect_err("skb->len in ctx_in");
    assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
}

#[test]
fn accepted_program_has_no_errno() {
    let v = require!(verdict(ProgType::XDP, &asm("r0 = 2\nexit"), &[]));
    assert!(v.accepted, "{}", v.log);
    assert_eq!(v.errno, None);
    assert!(v.log.contains("processed 2 insns"), "{}", v.log);
}

#[test]
fn reading_r0_before_writing_it_is_rejected() {
    let v = require!(verdict(ProgType::SOCKET_FILTER, &asm("exit"), &[]));
    assert!(!v.accepted);
    assert_eq!(v.errno, Some(libc::EACCES));
    assert!(v.log.contains("R0 !read_ok"), "{}", v.log);
}

#[test]
fn rejection_through_load_is_a_rejected_error() {
    // An 8-byte read of skb->len (root may read uninitialised stack, so
    // that is no longer a rejection).
    let insns = asm("r0 = *(u64 *)(r1 +0)\nexit");
    let err = match ProgLoad::new(ProgType::SCHED_CLS, &insns).load() {
        Ok(_) => panic!("8-byte skb->len read accepted"),
        Err(e) if e.is_unavailable() => {
            cordon_linux::report_skip(e.skip().unwrap_or_default());
            return;
        }
        Err(e) => e,
    };
    match &err {
        KernelError::Rejected { errno, log, .. } => {
            assert_eq!(*errno, libc::EACCES);
            assert!(
                log.contains("invalid bpf_context access off=0 size=8"),
                "{log}"
            );
        }
        other => panic!("expected Rejected, got {other}"),
    }
}

#[test]
fn a_huge_log_is_returned_whole() {
    // 20000 straight-line instructions at log level 2 print far more than
    // the first 1 MiB buffer; the log must still end with the summary line.
    let mut text = String::new();
    for _ in 0..20000 {
        text.push_str("r1 = 1\n");
    }
    text.push_str("r0 = 0\nexit\n");
    let insns = asm(&text);
    let v = require!(
        ProgLoad::new(ProgType::SOCKET_FILTER, &insns)
            .with_log_level(2)
            .verdict()
    );
    assert!(v.accepted, "errno {:?}", v.errno);
    assert!(v.log.len() > 1 << 20, "log only {} bytes", v.log.len());
    assert!(
        v.log.contains("processed 20002 insns"),
        "{}",
        &v.log[v.log.len() - 300..]
    );
}

/// Key 0 on the stack, then `call bpf_map_lookup_elem`; `pre` sets up r1.
const LOOKUP_AND_STORE: &str = "
    r1 = map[idx:0]
    *(u32 *)(r10 -4) = 0
    r2 = r10
    r2 += -4
    call bpf_map_lookup_elem#1
    if r0 == 0x0 goto out
    *(u64 *)(r0 +0) = 42
    r1 = map[idx:1][0]+8
    r2 = 7
    *(u64 *)(r1 +0) = r2
out:
    r0 = 0
    exit
";

#[test]
fn program_writes_maps_by_fd_array_index() {
    let insns = asm(LOOKUP_AND_STORE);
    assert_eq!(insns[0].src, pseudo::MAP_IDX);
    let a = require!(Map::create(&MapSpec::array(8, 4).with_name("written")));
    let b = Map::create(&MapSpec::array(16, 1)).unwrap();
    assert!(insns.iter().any(|i| i.src == pseudo::MAP_IDX_VALUE));
    let run = test_run(ProgType::XDP, &insns, &[&a, &b], &udp_packet(64), None, 1).unwrap();
    assert_eq!(run.retval, 0);
    assert_eq!(
        a.lookup(&0u32.to_le_bytes()).unwrap(),
        Some(42u64.to_le_bytes().to_vec())
    );
    assert_eq!(a.lookup(&1u32.to_le_bytes()).unwrap(), Some(vec![0; 8]));
    let mut want = vec![0u8; 16];
    want[8] = 7;
    assert_eq!(b.lookup(&0u32.to_le_bytes()).unwrap(), Some(want));
    let entries = a.entries().unwrap();
    assert_eq!(entries.len(), 4);
    // Without the second map the index is out of fd_array.
    let v = verdict(ProgType::XDP, &insns, &[&a]).unwrap();
    assert!(!v.accepted);
}

#[test]
fn hash_map_syscalls() {
    let m = require!(Map::create(&MapSpec::hash(4, 8, 8)));
    let k = |n: u32| n.to_le_bytes();
    assert_eq!(m.next_key(None).unwrap(), None);
    m.update(&k(1), &10u64.to_le_bytes(), update_flags::ANY)
        .unwrap();
    m.update(&k(2), &20u64.to_le_bytes(), update_flags::NOEXIST)
        .unwrap();
    let err = m
        .update(&k(2), &21u64.to_le_bytes(), update_flags::NOEXIST)
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::EEXIST));
    let err = m
        .update(&k(3), &30u64.to_le_bytes(), update_flags::EXIST)
        .unwrap_err();
    assert_eq!(err.errno(), Some(libc::ENOENT));
    assert_eq!(m.lookup(&k(2)).unwrap(), Some(20u64.to_le_bytes().to_vec()));
    assert_eq!(m.lookup(&k(3)).unwrap(), None);
    let mut keys = m.keys().unwrap();
    keys.sort();
    assert_eq!(keys, vec![k(1).to_vec(), k(2).to_vec()]);
    assert!(m.delete(&k(1)).unwrap());
    assert!(!m.delete(&k(1)).unwrap());
    assert!(matches!(
        m.lookup(&[0u8; 3]),
        Err(KernelError::InvalidArgument(_))
    ));
    m.freeze().unwrap();
    let err = m.update(&k(5), &[0; 8], 0).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EPERM), "{err}");
}

#[test]
fn queue_peek_and_pop() {
    let q = require!(Map::create(&MapSpec::new(MapType::QUEUE, 0, 4, 4)));
    q.update(&[], &1u32.to_le_bytes(), 0).unwrap();
    q.update(&[], &2u32.to_le_bytes(), 0).unwrap();
    assert_eq!(q.lookup(&[]).unwrap(), Some(1u32.to_le_bytes().to_vec()));
    assert_eq!(
        q.lookup_and_delete(&[]).unwrap(),
        Some(1u32.to_le_bytes().to_vec())
    );
    assert_eq!(
        q.lookup_and_delete(&[]).unwrap(),
        Some(2u32.to_le_bytes().to_vec())
    );
    assert_eq!(q.lookup_and_delete(&[]).unwrap(), None);
}

/// Adds 1 to the u64 at key 0 of map 0; returns XDP_PASS.
const COUNT_RUNS: &str = "
    r1 = map[idx:0]
    *(u32 *)(r10 -4) = 0
    r2 = r10
    r2 += -4
    call bpf_map_lookup_elem#1
    if r0 == 0x0 goto out
    r1 = 1
    lock *(u64 *)(r0 +0) += r1
out:
    r0 = 2
    exit
";

#[test]
fn per_cpu_array_counts_every_run() {
    let m = require!(Map::create(&MapSpec::new(MapType::PERCPU_ARRAY, 4, 8, 1)));
    let insns = asm(COUNT_RUNS);
    let run = test_run(ProgType::XDP, &insns, &[&m], &udp_packet(64), None, 25).unwrap();
    assert_eq!(run.retval, 2);
    let per_cpu = m.lookup_per_cpu(&0u32.to_le_bytes()).unwrap().unwrap();
    assert_eq!(per_cpu.len(), cordon_linux::possible_cpus().unwrap());
    let total: u64 = per_cpu
        .iter()
        .map(|v| u64::from_le_bytes(v[..8].try_into().unwrap()))
        .sum();
    assert_eq!(total, 25, "{per_cpu:?}");
    // Syscall writes need a value for every possible CPU.
    let ncpu = per_cpu.len();
    let err = m.update(&0u32.to_le_bytes(), &[0; 8], 0);
    assert!(ncpu == 1 || matches!(err, Err(KernelError::InvalidArgument(_))));
    m.update(&0u32.to_le_bytes(), &vec![0; 8 * ncpu], 0)
        .unwrap();
    assert_eq!(
        m.lookup(&0u32.to_le_bytes()).unwrap(),
        Some(vec![0; 8 * ncpu])
    );
}

#[test]
fn tail_call_through_a_prog_array() {
    let jt = require!(Map::create(&MapSpec::new(MapType::PROG_ARRAY, 4, 4, 2)));
    let callee = ProgLoad::new(ProgType::XDP, &asm("r0 = 9\nexit"))
        .load()
        .unwrap();
    let caller = asm("
        r2 = map[idx:0]
        r3 = 1
        call bpf_tail_call#12
        r0 = 1
        exit");
    let maps = [&jt];
    let caller = ProgLoad::new(ProgType::XDP, &caller)
        .with_maps(&maps)
        .load()
        .unwrap();
    let pkt = udp_packet(64);
    assert_eq!(
        caller.test_run(&TestRun::new(&pkt)).unwrap().retval,
        1,
        "empty slot"
    );
    jt.update_fd(&1u32.to_le_bytes(), callee.as_fd()).unwrap();
    assert_eq!(
        caller.test_run(&TestRun::new(&pkt)).unwrap().retval,
        9,
        "tail-called"
    );
    assert!(jt.delete(&1u32.to_le_bytes()).unwrap());
    assert_eq!(caller.test_run(&TestRun::new(&pkt)).unwrap().retval, 1);
}

#[test]
fn map_of_maps_with_an_inner_template() {
    let inner = require!(Map::create(&MapSpec::array(8, 2)));
    let outer =
        Map::create(&MapSpec::new(MapType::ARRAY_OF_MAPS, 4, 4, 1).with_inner(&inner)).unwrap();
    outer.update_fd(&0u32.to_le_bytes(), inner.as_fd()).unwrap();
    assert!(outer.lookup(&0u32.to_le_bytes()).unwrap().is_some());
}

/// Minimal BTF: [1] int (4 bytes, signed), [2] func_proto () -> int,
/// [3] func "main" of [2]. Strings: "", "int", "main", "t.c", "r0 = 5".
fn tiny_btf() -> Vec<u8> {
    let strings = b"\0int\0main\0t.c\0r0 = 5\0";
    let mut types = Vec::new();
    let mut u32s = |v: &[u32]| {
        for x in v {
            types.extend_from_slice(&x.to_le_bytes());
        }
    };
    u32s(&[1, 1 << 24, 4, (1 << 24) | 32]); // INT "int", size 4, signed, 32 bits
    u32s(&[0, 13 << 24, 1]); // FUNC_PROTO () -> [1]
    u32s(&[5, 12 << 24, 2]); // FUNC "main" static, type [2]
    let mut btf = Vec::new();
    btf.extend_from_slice(&0xeb9fu16.to_le_bytes());
    btf.push(1); // version
    btf.push(0); // flags
    for v in [
        24u32,
        0,
        types.len() as u32,
        types.len() as u32,
        strings.len() as u32,
    ] {
        btf.extend_from_slice(&v.to_le_bytes());
    }
    btf.extend_from_slice(&types);
    btf.extend_from_slice(strings);
    btf
}

#[test]
fn btf_backs_maps_and_line_info() {
    let btf = require!(Btf::load(&tiny_btf()));
    let m = Map::create(&MapSpec::new(MapType::ARRAY, 4, 4, 2).with_btf(&btf, 1, 1)).unwrap();
    m.update(&1u32.to_le_bytes(), &5i32.to_le_bytes(), 0)
        .unwrap();
    let insns = asm("r0 = 5\nexit");
    let func = [FuncInfo {
        insn_off: 0,
        type_id: 3,
    }];
    let lines = [LineInfo {
        insn_off: 0,
        file_name_off: 10,
        line_off: 14,
        line_col: (7 << 10) | 1,
    }];
    // Level 2: at level 1 a successful load keeps only the summary line.
    let v = ProgLoad::new(ProgType::SOCKET_FILTER, &insns)
        .with_btf(&btf, &func, &lines)
        .with_log_level(2)
        .verdict()
        .unwrap();
    assert!(v.accepted, "{}", v.log);
    assert!(v.log.contains("; r0 = 5 @ t.c:7"), "{}", v.log);
    // A func_info naming a non-FUNC type is refused.
    let bad = [FuncInfo {
        insn_off: 0,
        type_id: 1,
    }];
    let v = ProgLoad::new(ProgType::SOCKET_FILTER, &insns)
        .with_btf(&btf, &bad, &[])
        .verdict()
        .unwrap();
    assert!(!v.accepted);
    assert_eq!(v.errno, Some(libc::EINVAL));
}

#[test]
fn broken_btf_is_rejected_with_its_log() {
    let mut btf = tiny_btf();
    btf[0] = 0; // bad magic
    match Btf::load(&btf) {
        Err(KernelError::Rejected { errno, .. }) => assert_eq!(errno, libc::EINVAL),
        Err(e) if e.is_unavailable() => cordon_linux::report_skip(e.skip().unwrap_or_default()),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn program_types_without_a_test_runner_are_unavailable() {
    let prog = require!(ProgLoad::new(ProgType::KPROBE, &asm("r0 = 0\nexit")).load());
    match prog.test_run(&TestRun::new(&[0u8; 64])) {
        Err(KernelError::Unavailable(reason)) => {
            assert!(reason.contains("KPROBE"), "{reason}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
