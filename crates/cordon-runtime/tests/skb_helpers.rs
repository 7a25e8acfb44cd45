//! The skb helpers of `helpers/skb.rs` (VLAN push/pop, change_tail,
//! change_head, get_hash_recalc, get_socket_cookie) on both engines, verified
//! and checked: prototypes accepted and refused as Linux does, packet pointers
//! invalidated, the packet moved past the frame, and hand-written programs
//! compared with Linux's test_run (retval, data_out).

use std::sync::Arc;

use cordon_isa::{Insn, assemble_linux};
use cordon_linux::{ProgLoad, ProgType as KType, TestRun};
use cordon_object::{Object, ProgType};
use cordon_runtime::{Backend, CompiledProgram, Config, LoadError, RunError, Runtime};

const MODES: [(Backend, bool); 4] = [
    (Backend::Interpreter, true),
    (Backend::Jit, true),
    (Backend::Interpreter, false),
    (Backend::Jit, false),
];

const VLAN_PUSH: i32 = 18;
const VLAN_POP: i32 = 19;
const HASH_RECALC: i32 = 34;
const CHANGE_TAIL: i32 = 38;
const CHANGE_HEAD: i32 = 43;
const SOCKET_COOKIE: i32 = 46;
const ADJUST_ROOM: i32 = 50;
const CHANGE_PROTO: i32 = 31;
const CGROUP_ID: i32 = 79;
const ANCESTOR_CGROUP_ID: i32 = 83;
const ALL: [i32; 10] = [
    VLAN_PUSH,
    VLAN_POP,
    HASH_RECALC,
    CHANGE_TAIL,
    CHANGE_HEAD,
    SOCKET_COOKIE,
    ADJUST_ROOM,
    CHANGE_PROTO,
    CGROUP_ID,
    ANCESTOR_CGROUP_ID,
];

fn object(section: &str, prog_type: ProgType, insns: Vec<Insn>) -> Object {
    Object::single_program("p", section, prog_type, insns)
}

fn section(t: ProgType) -> &'static str {
    match t {
        ProgType::Xdp => "xdp",
        ProgType::SocketFilter => "socket",
        _ => "tc",
    }
}

fn load_as(
    (backend, verify): (Backend, bool),
    prog_type: ProgType,
    asm: &str,
) -> Result<Arc<CompiledProgram>, LoadError> {
    let rt = Runtime::new(Config {
        backend,
        verify,
        ..Config::default()
    });
    let insns = assemble_linux(asm).unwrap_or_else(|e| panic!("{e}\n{asm}"));
    let o = rt.load_parsed(object(section(prog_type), prog_type, insns))?;
    o.program("p")
}

fn load(mode: (Backend, bool), asm: &str) -> Arc<CompiledProgram> {
    load_as(mode, ProgType::SchedCls, asm).unwrap_or_else(|e| panic!("{mode:?}: {e}\n{asm}"))
}

/// An IPv4/UDP frame of `len` bytes (a counting pattern after the headers).
fn frame(len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xfe, 2, 0, 0, 0, 0x12, 0x34]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14..34].copy_from_slice(&[
        0x45, 0, 0, 20, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f
}

/// A frame of `len` bytes of a local ethertype (0x88b5): Linux refuses IPv4
/// frames too short for an IP header.
fn short(len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i * 5 + 1) as u8).collect();
    f[..6].fill(0);
    f[12..14].copy_from_slice(&[0x88, 0xb5]);
    f
}

/// The frame with an 802.1Q tag (VID 100) inserted after the MAC addresses.
fn tagged(len: usize) -> Vec<u8> {
    let mut f = frame(len - 4);
    f.splice(12..12, [0x81, 0x00, 0x00, 0x64]);
    f
}

/// `call id` with r1 = ctx, r2 and r3 as given, r4 = 0.
fn call(id: i32, r2: i64, r3: i64) -> String {
    format!("r2 = {r2}\nr3 = {r3}\nr4 = 0\ncall {id}\nexit")
}

fn linux_type(t: ProgType) -> KType {
    match t {
        ProgType::Xdp => KType::XDP,
        ProgType::SocketFilter => KType::SOCKET_FILTER,
        _ => KType::SCHED_CLS,
    }
}

#[test]
fn prototypes_accept_and_reject_like_linux() {
    let mode = (Backend::Interpreter, true);
    let probe = assemble_linux("r0 = 0\nexit").unwrap();
    let linux_up = ProgLoad::new(KType::SCHED_CLS, &probe).load().is_ok();
    for id in ALL {
        let asm = call(id, 0, 0);
        for t in [ProgType::SchedCls, ProgType::SocketFilter, ProgType::Xdp] {
            let ours = load_as(mode, t, &asm);
            // Linux: tc may call all of them, socket filters only the cookie,
            // XDP none.
            let expected =
                t == ProgType::SchedCls || (t == ProgType::SocketFilter && id == SOCKET_COOKIE);
            assert_eq!(ours.is_ok(), expected, "helper {id} in {t:?}: {ours:?}");
            if !expected {
                assert!(
                    matches!(ours, Err(LoadError::Verify { .. })),
                    "helper {id} in {t:?}"
                );
            }
            if linux_up {
                let insns = assemble_linux(&asm).unwrap();
                let k = ProgLoad::new(linux_type(t), &insns).load();
                assert_eq!(k.is_ok(), expected, "Linux: helper {id} in {t:?}");
            }
        }
        // r1 must be the context (a stack pointer is refused).
        let not_ctx = format!("r1 = r10\nr1 += -8\n{}", call(id, 0, 0));
        assert!(
            matches!(
                load_as(mode, ProgType::SchedCls, &not_ctx),
                Err(LoadError::Verify { .. })
            ),
            "helper {id} with r1 = fp-8"
        );
        // Uninitialised arguments are refused where the helper takes them.
        if matches!(
            id,
            VLAN_PUSH | CHANGE_TAIL | CHANGE_HEAD | ADJUST_ROOM | CHANGE_PROTO
        ) {
            let uninit = format!("r2 = 0\ncall {id}\nexit");
            assert!(
                matches!(
                    load_as(mode, ProgType::SchedCls, &uninit),
                    Err(LoadError::Verify { .. })
                ),
                "helper {id} with r3 uninitialised"
            );
        }
    }
}

#[test]
fn reshaping_helpers_invalidate_packet_pointers() {
    let mode = (Backend::Jit, true);
    for (id, reshapes) in [
        (VLAN_PUSH, true),
        (VLAN_POP, true),
        (CHANGE_TAIL, true),
        (CHANGE_HEAD, true),
        (ADJUST_ROOM, true),
        (CHANGE_PROTO, true),
        (HASH_RECALC, false),
        (SOCKET_COOKIE, false),
        (CGROUP_ID, false),
        (ANCESTOR_CGROUP_ID, false),
    ] {
        // r7 = data (checked against data_end), the helper, then *r7.
        let asm = format!(
            "
r6 = r1
r7 = *(u32 *)(r6 +76)
r8 = *(u32 *)(r6 +80)
r0 = r7
r0 += 14
if r0 > r8 goto out
r1 = r6
r2 = 60
r3 = 0
r4 = 0
call {id}
r0 = *(u8 *)(r7 +0)
out:
exit"
        );
        let r = load_as(mode, ProgType::SchedCls, &asm);
        if reshapes {
            assert!(
                matches!(r, Err(LoadError::Verify { .. })),
                "helper {id}: packet pointer used after the call"
            );
        } else {
            assert!(r.is_ok(), "helper {id}: {r:?}");
        }
    }
}

#[test]
fn checked_mode_refuses_a_foreign_context() {
    for backend in [Backend::Interpreter, Backend::Jit] {
        for id in ALL {
            let p = load((backend, false), &format!("r1 = r10\n{}", call(id, 60, 0)));
            assert!(
                matches!(p.run_skb(&frame(60)), Err(RunError::Exec { .. })),
                "{backend:?} helper {id}"
            );
        }
    }
}

/// Grows the packet to `n` bytes, writes 0xab into its last byte through
/// freshly loaded packet pointers and returns `data_end - data`.
fn grow_and_write(n: i64) -> String {
    format!(
        "
r6 = r1
r2 = {n}
r3 = 0
call 38
if r0 != 0 goto out
r2 = *(u32 *)(r6 +76)
r3 = *(u32 *)(r6 +80)
r4 = r2
r4 += {n}
if r4 > r3 goto fail
r4 += -1
r5 = 0xab
*(u8 *)(r4 +0) = r5
r0 = *(u32 *)(r6 +0)
exit
fail:
r0 = -1
out:
exit"
    )
}

/// `change_head(room)`, then writes 0xcd into the first byte and returns
/// `skb->len`.
fn head_and_write(room: i64) -> String {
    format!(
        "
r6 = r1
r2 = {room}
r3 = 0
call 43
if r0 != 0 goto out
r2 = *(u32 *)(r6 +76)
r3 = *(u32 *)(r6 +80)
r4 = r2
r4 += 1
if r4 > r3 goto fail
r5 = 0xcd
*(u8 *)(r2 +0) = r5
r0 = *(u32 *)(r6 +0)
exit
fail:
r0 = -1
out:
exit"
    )
}

/// Two VLAN pushes and a pop, then the vlan fields, protocol and length.
const VLAN_DANCE: &str = "
r6 = r1
r2 = 0xa888
r3 = 5
call 18
r1 = r6
r2 = 0x81
r3 = 0x0fed
call 18
r7 = *(u32 *)(r6 +0)
r1 = r6
call 19
r0 = *(u32 *)(r6 +24)
r0 <<= 16
r1 = *(u32 *)(r6 +28)
r0 |= r1
r0 <<= 8
r1 = *(u32 *)(r6 +20)
r0 |= r1
r0 <<= 16
r0 |= r7
r1 = *(u32 *)(r6 +16)
r1 <<= 48
r0 ^= r1
exit";

/// Runs `asm` as a tc program in Linux and on the four Cordon modes on every
/// packet; retval and data_out must agree.
fn compare_with_linux(asm: &str, packets: &[Vec<u8>]) {
    let insns = assemble_linux(asm).unwrap();
    let kprog = cordon_linux::require!(ProgLoad::new(KType::SCHED_CLS, &insns).load());
    for pkt in packets {
        let linux = kprog.test_run(&TestRun::new(pkt));
        for mode in MODES {
            let p = load(mode, asm);
            let ours = p.run_skb(pkt);
            let what = format!("{mode:?} {} bytes\n{asm}", pkt.len());
            match (&linux, &ours) {
                (Ok(k), Ok(r)) => {
                    assert_eq!(r.retval, k.retval, "retval: {what}");
                    assert_eq!(r.packet, k.data_out, "data_out: {what}");
                }
                (k, r) => panic!(
                    "Linux {:?} vs Cordon {:?}: {what}",
                    k.as_ref().map(|k| k.retval),
                    r.as_ref().map(|r| r.retval)
                ),
            }
        }
    }
}

#[test]
fn growing_past_the_frame_matches_linux() {
    // 3776 bytes fit the frame; more moves the packet into a new buffer.
    let pkts = [frame(60), frame(1500), frame(3700)];
    for n in [100, 3000, 3776, 3777, 4000, 9000, 16064, 16065] {
        compare_with_linux(&grow_and_write(n), &pkts);
    }
    for room in [1, 50, 64, 65, 3000, 9000, 16004] {
        compare_with_linux(&head_and_write(room), &pkts);
    }
}

#[test]
fn vlan_push_and_pop_match_linux() {
    compare_with_linux(VLAN_DANCE, &[frame(60), tagged(64), short(14)]);
    // Pop then push on a tagged frame: the payload tag becomes the skb's.
    let pop_push = "
r6 = r1
call 19
r7 = r0
r1 = r6
r2 = 0x81
r3 = 9
call 18
r0 = *(u32 *)(r6 +0)
r0 <<= 8
r0 |= r7
exit";
    let mut tag18 = short(18);
    tag18[12..16].copy_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    let mut tag17 = tag18.clone();
    tag17.truncate(17);
    compare_with_linux(pop_push, &[frame(60), tagged(64), tag18, tag17]);
}

#[test]
fn the_socket_cookie_and_the_flow_hash_are_stable_per_run() {
    // cookie == cookie, hash == hash == skb->hash, both non-zero; the cookie
    // differs between runs (a new socket each time, as in Linux).
    let asm = "
r6 = r1
call 46
r7 = r0
r1 = r6
call 46
if r0 != r7 goto bad
r1 = r6
call 34
r8 = r0
r1 = r6
call 34
if r0 != r8 goto bad
r1 = *(u32 *)(r6 +68)
if r1 != r8 goto bad
if r8 == 0 goto bad
r0 = r7
exit
bad:
r0 = 0
exit";
    for mode in MODES {
        let p = load(mode, asm);
        let a = p.run_skb(&frame(60)).unwrap().r0;
        let b = p.run_skb(&frame(60)).unwrap().r0;
        assert!(a != 0 && b != 0 && a != b, "{mode:?}: cookies {a} {b}");
    }
    // The same flow hashes the same in both directions; another flow differs.
    let hash = "call 34\nexit";
    let mut reply = frame(60);
    reply[26..30].copy_from_slice(&[10, 0, 0, 2]);
    reply[30..34].copy_from_slice(&[10, 0, 0, 1]);
    reply.copy_within(34..36, 60 - 2);
    reply.copy_within(36..38, 34);
    reply.copy_within(58..60, 36);
    let mut other = frame(60);
    other[33] = 3;
    for mode in MODES {
        let p = load(mode, hash);
        let h = |f: &[u8]| p.run_skb(f).unwrap().retval;
        assert_eq!(h(&frame(60)), h(&reply), "{mode:?}");
        assert_ne!(h(&frame(60)), h(&other), "{mode:?}");
    }
}

/// `bpf_skb_adjust_room(ctx, diff, mode, flags)` twice, then
/// `change_tail(len)`: the three results and the length.
fn room_twice(diff: i32, mode: u32, flags: u64) -> String {
    format!(
        "
r6 = r1
r2 = {diff}
r3 = {mode}
r4 = {flags} ll
call 50
r7 = r0
r1 = r6
r2 = {diff}
r3 = {mode}
r4 = {flags} ll
call 50
r8 = r0
r1 = r6
r2 = *(u32 *)(r6 +0)
r3 = 0
call 38
r0 &= 0xfff
r7 &= 0xfff
r7 <<= 12
r0 |= r7
r8 &= 0xfff
r8 <<= 24
r0 |= r8
exit"
    )
}

#[test]
fn adjust_room_matches_linux() {
    let v6 = {
        let mut f = frame(80);
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14] = 0x60;
        f
    };
    let pkts = [frame(60), frame(1500), v6, short(60)];
    const V4: u64 = 1 << 1;
    const V6: u64 = 1 << 2;
    const UDP: u64 = 1 << 4;
    for (diff, mode, flags) in [
        (8, 1, 0),
        (8, 0, 0),
        (-8, 0, 0),
        (-20, 1, 0),
        (100, 1, 0),
        (4095, 1, 0),
        (4096, 1, 0),
        (28, 1, V4 | UDP),
        (40, 1, V6),
        (20, 1, V4 | V6),
        (8, 2, 0),
        (-8, 1, 1 << 7),
        (8, 1, 1 << 9),
    ] {
        compare_with_linux(&room_twice(diff, mode, flags), &pkts);
    }
}

#[test]
fn change_type_load_bytes_relative_and_task_helpers_are_typed_like_linux() {
    let mode = (Backend::Interpreter, true);
    let probe = assemble_linux("r0 = 0\nexit").unwrap();
    let linux_up = ProgLoad::new(KType::SCHED_CLS, &probe).load().is_ok();
    let stack_buf = "r3 = r10\nr3 += -8\nr4 = 8\nr5 = 0\nr2 = 0\n";
    // (program, allowed in [tc, socket, xdp])
    let cases: Vec<(String, [bool; 3])> = vec![
        ("r2 = 3\ncall 32\nexit".into(), [true, false, false]),
        (format!("{stack_buf}call 68\nexit"), [true, true, false]),
        ("call 14\nexit".into(), [true, true, true]),
        ("call 15\nexit".into(), [true, true, true]),
        (
            "r1 = r10\nr1 += -16\nr2 = 16\ncall 16\nexit".into(),
            [true, true, true],
        ),
    ];
    for (asm, allowed) in &cases {
        let asm = asm.as_str();
        for (t, ok) in [ProgType::SchedCls, ProgType::SocketFilter, ProgType::Xdp]
            .into_iter()
            .zip(*allowed)
        {
            let ours = load_as(mode, t, asm);
            assert_eq!(ours.is_ok(), ok, "{t:?}:\n{asm}\n{ours:?}");
            if linux_up {
                let insns = assemble_linux(asm).unwrap();
                let k = ProgLoad::new(linux_type(t), &insns).load();
                assert_eq!(k.is_ok(), ok, "Linux {t:?}:\n{asm}");
            }
        }
    }
    // Refused arguments: a zero or unknown comm size, a comm buffer that is
    // not memory, a relative load into a buffer smaller than the size.
    for asm in [
        "r1 = r10\nr1 += -16\nr2 = 0\ncall 16\nexit",
        "r1 = r10\nr1 += -16\nr2 = *(u32 *)(r10 -4)\ncall 16\nexit",
        "r1 = 0\nr2 = 16\ncall 16\nexit",
        "r2 = 0\nr3 = r10\nr3 += -8\nr4 = 16\nr5 = 0\ncall 68\nexit",
    ] {
        assert!(
            matches!(
                load_as(mode, ProgType::SchedCls, asm),
                Err(LoadError::Verify { .. })
            ),
            "{asm}"
        );
    }
}

#[test]
fn task_helpers_report_the_calling_thread() {
    // r0 = pid_tgid, comm in fp-16 compared by the host.
    let asm = "
r1 = r10
r1 += -16
r2 = 16
call 16
call 14
exit";
    // SAFETY: plain system calls.
    let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes.
    unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    for mode in MODES {
        let p = load(mode, asm);
        let r = p.run_skb(&frame(60)).unwrap();
        assert_eq!(r.r0, (pid as u64) << 32 | tid as u64, "{mode:?}");
        let p = load(mode, "call 15\nexit");
        // SAFETY: plain system calls.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        assert_eq!(
            p.run_skb(&frame(60)).unwrap().r0,
            (gid as u64) << 32 | uid as u64
        );
    }
    // Checked mode: a comm buffer outside the program's memory faults.
    for backend in [Backend::Interpreter, Backend::Jit] {
        let p = load((backend, false), "r1 = 4096\nr2 = 16\ncall 16\nexit");
        assert!(
            matches!(p.run_skb(&frame(60)), Err(RunError::Exec { .. })),
            "{backend:?}"
        );
        let p = load(
            (backend, false),
            "r2 = 0\nr3 = 4096\nr4 = 8\nr5 = 0\ncall 68\nexit",
        );
        assert!(
            matches!(p.run_skb(&frame(60)), Err(RunError::Exec { .. })),
            "{backend:?}"
        );
    }
}

/// `bpf_skb_change_proto(ctx, htons(proto), flags)`; returns the result and
/// `skb->len`, `skb->protocol`, `skb->hash` folded together.
fn change_proto(proto: u16, flags: u64) -> String {
    let be = proto.to_be();
    format!(
        "
r6 = r1
call 34
r1 = r6
r2 = {be}
r3 = {flags} ll
call 31
r0 &= 0xfff
r1 = *(u32 *)(r6 +0)
r1 <<= 12
r0 |= r1
r1 = *(u32 *)(r6 +16)
r1 <<= 32
r0 |= r1
r1 = *(u32 *)(r6 +68)
if r1 == 0 goto out
r0 |= 0x40000000
out:
exit"
    )
}

#[test]
fn change_proto_matches_linux() {
    let v6 = {
        let mut f = frame(80);
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[14] = 0x60;
        f
    };
    // (Linux's test_run refuses IPv4/IPv6 frames without a whole IP header.)
    let mut v6_short = v6.clone();
    v6_short.truncate(54);
    let pkts = [frame(60), frame(34), v6, v6_short, short(60)];
    for (proto, flags) in [(0x86dd, 0), (0x0800, 0), (0x0806, 0), (0x86dd, 1)] {
        compare_with_linux(&change_proto(proto, flags), &pkts);
    }
    // With GSO (gso_size and gso_segs in ctx_in): both are kept.
    let insns = assemble_linux(&change_proto(0x86dd, 0)).unwrap();
    let kprog = cordon_linux::require!(ProgLoad::new(KType::SCHED_CLS, &insns).load());
    let mut ctx = [0u8; 192];
    ctx[164..168].copy_from_slice(&7u32.to_ne_bytes()); // gso_segs
    ctx[176..180].copy_from_slice(&1400u32.to_ne_bytes()); // gso_size
    let pkt = frame(200);
    let k = kprog
        .test_run(&TestRun::new(&pkt).with_ctx(&ctx))
        .expect("Linux run");
    for mode in MODES {
        let r = load(mode, &change_proto(0x86dd, 0))
            .run_skb_with(&pkt, Some(&ctx))
            .unwrap();
        assert_eq!(r.retval, k.retval, "{mode:?}");
        assert_eq!(r.packet, k.data_out, "{mode:?}");
        assert_eq!(r.ctx_out, k.ctx_out, "{mode:?}");
    }
}

#[test]
fn tiny_packets_after_head_expansion_match_linux() {
    // change_head(66) expands Linux's head, which makes the unset transport
    // header count as set 1 byte after data: change_tail(1) is then allowed
    // and a VLAN insertion moves MAC bytes past the 1-byte packet's end.
    for room in [65, 66, 70, 128] {
        let asm = format!(
            "
r6 = r1
r2 = {room}
r3 = 0
call 43
r1 = r6
r2 = 1
r3 = 0
call 38
r7 = r0
r1 = r6
r2 = 0x81
r3 = 5
call 18
r1 = r6
r2 = 0x81
r3 = 6
call 18
r0 = *(u32 *)(r6 +0)
r0 <<= 8
r7 &= 0xff
r0 |= r7
exit"
        );
        compare_with_linux(&asm, &[frame(60), frame(200)]);
        // change_tail(1): refused below the network header (room 65: the
        // transport offset is 0, which does not count) or the transport
        // header (room 70: 5, room 128: 63), accepted for 66 (offset 1).
        let r = load(MODES[1], &asm).run_skb(&frame(60)).unwrap();
        let expected = if room == 66 { 0 } else { 0xea };
        assert_eq!(r.retval & 0xff, expected, "room {room}");
    }
}
