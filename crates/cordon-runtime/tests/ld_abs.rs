//! LD_ABS / LD_IND after helpers that reshape the skb read the new packet,
//! as Linux's (relative to the new `data`, bounded by the new length), on
//! both engines in verified and checked mode, compared with the running
//! kernel; checked mode keeps stale pointers into the first packet readable
//! and still refuses accesses outside every region.

use std::sync::Arc;

use cordon_isa::{Insn, assemble_linux};
use cordon_linux::{ProgType as KType, test_run};
use cordon_object::{Object, ProgType};
use cordon_runtime::{Backend, CompiledProgram, Config, LoadError, RunError, Runtime};

const MODES: [(Backend, bool); 4] = [
    (Backend::Interpreter, true),
    (Backend::Jit, true),
    (Backend::Interpreter, false),
    (Backend::Jit, false),
];

fn object(insns: Vec<Insn>) -> Object {
    Object::single_program("p", "tc", ProgType::SchedCls, insns)
}

fn load(mode: (Backend, bool), insns: &[Insn]) -> Result<Arc<CompiledProgram>, LoadError> {
    let rt = Runtime::new(Config {
        backend: mode.0,
        verify: mode.1,
        ..Config::default()
    });
    rt.load_parsed(object(insns.to_vec()))?.program("p")
}

/// A 60-byte IPv4 frame with a recognisable payload.
fn frame() -> Vec<u8> {
    let mut f: Vec<u8> = (0..60).map(|i| (i * 11 + 5) as u8).collect();
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..16].copy_from_slice(&[0x08, 0x00, 0x45, 0x00]);
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f
}

/// Runs `asm` in Linux and on the four modes; retval and packet must agree.
fn compare(asm: &str, what: &str) -> Option<u32> {
    let insns = assemble_linux(asm).unwrap_or_else(|e| panic!("{e}\n{asm}"));
    let pkt = frame();
    let k = test_run(
        KType(ProgType::SchedCls.kernel_id()),
        &insns,
        &[],
        &pkt,
        None,
        1,
    );
    let k = match k {
        Ok(k) => k,
        Err(e) => {
            match e.skip() {
                Some(reason) => cordon_linux::report_skip(reason),
                None => panic!("{what}: {e}"),
            }
            return None;
        }
    };
    for mode in MODES {
        let p = load(mode, &insns).unwrap_or_else(|e| panic!("{what} {mode:?}: {e}"));
        let r = p
            .run_skb(&pkt)
            .unwrap_or_else(|e| panic!("{what} {mode:?}: {e}"));
        assert_eq!(r.retval, k.retval, "{what} {mode:?}: retval");
        assert_eq!(r.packet, k.data_out, "{what} {mode:?}: packet");
    }
    Some(k.retval)
}

#[test]
fn loads_after_change_head_read_the_new_packet() {
    // change_head(14): the old Ethernet type is at 26, the packet's last
    // byte at 73 (LD_IND from the new length).
    let r = compare(
        "
r6 = r1
r2 = 14
r3 = 0
call 43
r7 = *(u32 *)(r6 +0)
r0 = *(u16 *)skb[26]
r8 = r0
r7 += -1
r0 = *(u8 *)skb[r7 + 0]
r8 <<= 8
r0 |= r8
exit",
        "change_head",
    );
    if let Some(r) = r {
        assert_eq!(r, 0x0008_0000 | u32::from(frame()[59]), "{r:#x}");
    }
}

#[test]
fn loads_past_the_trimmed_end_end_the_program() {
    // change_tail(20): offset 20 was inside the old packet; Linux ends the
    // program with 0 there.
    let r = compare(
        "
r6 = r1
r2 = 20
r3 = 0
call 38
r0 = *(u8 *)skb[19]
r0 = *(u8 *)skb[20]
r0 = 99
exit",
        "change_tail trim",
    );
    assert!(matches!(r, Some(0) | None), "{r:?}");
    // Grown: the new bytes are readable (and zero).
    let r = compare(
        "
r6 = r1
r2 = 100
r3 = 0
call 38
r0 = *(u32 *)skb[96]
r0 += 7
exit",
        "change_tail grow",
    );
    assert!(matches!(r, Some(7) | None), "{r:?}");
}

#[test]
fn loads_after_vlan_push_and_adjust_room() {
    compare(
        "
r6 = r1
r2 = 0x81
r3 = 5
call 18
r1 = r6
r2 = 0x81
r3 = 6
call 18
r0 = *(u32 *)skb[12]
r7 = r0
r0 = *(u16 *)skb[16]
r7 ^= r0
r0 = r7
exit",
        "vlan_push twice",
    );
    compare(
        "
r6 = r1
r2 = 8
r3 = 0
r4 = 0
call 50
r0 = *(u32 *)skb[22]
r7 = r0
r0 = *(u32 *)skb[64]
r0 += r7
exit",
        "adjust_room +8",
    );
}

#[test]
fn checked_mode_keeps_the_first_packet_readable() {
    // change_head(4000) moves the packet into a new buffer; an unverified
    // program may still read through its stale `data` pointer, and its
    // loads see the new packet.
    let asm = "
r6 = r1
r9 = *(u32 *)(r6 +76)
r2 = 4000
r3 = 0
call 43
r0 = *(u8 *)(r9 +14)
r7 = r0
r0 = *(u8 *)skb[4014]
r0 <<= 8
r0 |= r7
exit";
    let insns = assemble_linux(asm).unwrap();
    let f = frame();
    for backend in [Backend::Interpreter, Backend::Jit] {
        let p = load((backend, false), &insns).unwrap();
        let r = p.run_skb(&f).unwrap();
        assert_eq!(
            r.retval,
            u32::from(f[14]) << 8 | u32::from(f[14]),
            "{backend:?}"
        );
        assert_eq!(r.packet.len(), 4060, "{backend:?}");
        // The verifier refuses the stale pointer.
        assert!(
            matches!(load((backend, true), &insns), Err(LoadError::Verify { .. })),
            "{backend:?}"
        );
    }
}

#[test]
fn checked_mode_still_refuses_memory_outside_the_packet() {
    // After the move, a pointer 64 KiB past the old packet is no region.
    let asm = "
r6 = r1
r9 = *(u32 *)(r6 +76)
r2 = 4000
r3 = 0
call 43
r9 += 65536
r0 = *(u8 *)(r9 +0)
exit";
    let insns = assemble_linux(asm).unwrap();
    for backend in [Backend::Interpreter, Backend::Jit] {
        let p = load((backend, false), &insns).unwrap();
        assert!(
            matches!(p.run_skb(&frame()), Err(RunError::Exec { .. })),
            "{backend:?}"
        );
    }
}
