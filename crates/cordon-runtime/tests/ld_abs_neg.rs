//! Negative LD_ABS / LD_IND offsets in tc and socket-filter programs:
//! `SKF_NET_OFF + k` reads the network header, `SKF_LL_OFF + k` the MAC
//! header, anything else (or past the packet) ends the program with 0 —
//! compared with the running kernel's BPF_PROG_TEST_RUN on both engines in
//! verified and checked mode, before and after helpers that reshape the skb.

use std::sync::Arc;

use cordon_isa::{Insn, assemble_linux};
use cordon_linux::{ProgType as KType, test_run};
use cordon_object::{Object, ProgType};
use cordon_runtime::{Backend, CompiledProgram, Config, LoadError, Runtime};

const SKF_NET_OFF: i32 = -0x10_0000;
const SKF_LL_OFF: i32 = -0x20_0000;

const MODES: [(Backend, bool); 4] = [
    (Backend::Interpreter, true),
    (Backend::Jit, true),
    (Backend::Interpreter, false),
    (Backend::Jit, false),
];

const KINDS: [ProgType; 2] = [ProgType::SchedCls, ProgType::SocketFilter];

fn object(kind: ProgType, insns: Vec<Insn>) -> Object {
    let section = if kind == ProgType::SocketFilter {
        "socket"
    } else {
        "tc"
    };
    Object::single_program("p", section, kind, insns)
}

fn load(
    kind: ProgType,
    mode: (Backend, bool),
    insns: &[Insn],
) -> Result<Arc<CompiledProgram>, LoadError> {
    let rt = Runtime::new(Config {
        backend: mode.0,
        verify: mode.1,
        ..Config::default()
    });
    rt.load_parsed(object(kind, insns.to_vec()))?.program("p")
}

/// A 60-byte IPv4 frame whose every byte differs from its neighbours.
fn frame() -> Vec<u8> {
    let mut f: Vec<u8> = (0..60).map(|i| (i * 11 + 5) as u8).collect();
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[12..16].copy_from_slice(&[0x08, 0x00, 0x45, 0x00]);
    f[16..18].copy_from_slice(&46u16.to_be_bytes());
    f
}

/// Big-endian value of `size` frame bytes at `at` (0 past the frame: the
/// program ended).
fn bytes(at: i64, size: usize) -> u32 {
    let f = frame();
    if at < 0 || at as usize + size > f.len() {
        return 0;
    }
    let at = at as usize;
    f[at..at + size]
        .iter()
        .fold(0u32, |v, &b| (v << 8) | u32::from(b))
}

/// Runs `asm` as a `kind` program in Linux and on the four modes; retval
/// and packet must agree. Returns the kernel's retval (`None`: skipped).
fn compare(kind: ProgType, asm: &str, what: &str) -> Option<u32> {
    let insns = assemble_linux(asm).unwrap_or_else(|e| panic!("{e}\n{asm}"));
    let pkt = frame();
    let k = match test_run(KType(kind.kernel_id()), &insns, &[], &pkt, None, 1) {
        Ok(k) => k,
        Err(e) => {
            match e.skip() {
                Some(reason) => cordon_linux::report_skip(reason),
                None => panic!("{what} {kind:?}: {e}"),
            }
            return None;
        }
    };
    for mode in MODES {
        let p = load(kind, mode, &insns).unwrap_or_else(|e| panic!("{what} {mode:?}: {e}"));
        let r = p
            .run_skb(&pkt)
            .unwrap_or_else(|e| panic!("{what} {kind:?} {mode:?}: {e}"));
        assert_eq!(
            r.retval, k.retval,
            "{what} {kind:?} {mode:?}: retval {:#x}, Linux {:#x}",
            r.retval, k.retval
        );
        assert_eq!(r.packet, k.data_out, "{what} {kind:?} {mode:?}: packet");
    }
    Some(k.retval)
}

fn ctype(size: usize) -> &'static str {
    match size {
        1 => "u8",
        2 => "u16",
        _ => "u32",
    }
}

/// `r6 = ctx; r0 = 7; r0 = LD_ABS; exit` (a failed load ends with 0, not 7).
fn abs(size: usize, off: i32) -> String {
    format!("r6 = r1\nr0 = 7\nr0 = *({} *)skb[{off}]\nexit", ctype(size))
}

/// Checks the kernel's and Cordon's result for `asm` against `want`.
fn check(kind: ProgType, asm: &str, what: &str, want: u32) {
    if let Some(k) = compare(kind, asm, what) {
        assert_eq!(k, want, "{what} {kind:?}: Linux {k:#x}, expected {want:#x}");
    }
}

#[test]
fn network_relative_loads() {
    // The network header is at frame offset 14 for tc and socket filters.
    for kind in KINDS {
        for size in [1, 2, 4] {
            for k in [
                0i64,
                1,
                2,
                9,
                45 - size as i64,
                46 - size as i64,
                47 - size as i64,
                100,
            ] {
                let off = SKF_NET_OFF + k as i32;
                check(
                    kind,
                    &abs(size, off),
                    &format!("net+{k} u{}", size * 8),
                    bytes(14 + k, size),
                );
            }
        }
    }
}

#[test]
fn mac_relative_loads() {
    // Socket filters read the MAC header before `data`.
    for kind in KINDS {
        for size in [1, 2, 4] {
            for k in [
                0i64,
                1,
                6,
                12,
                14,
                59 - size as i64,
                60 - size as i64,
                61 - size as i64,
            ] {
                let off = SKF_LL_OFF + k as i32;
                check(
                    kind,
                    &abs(size, off),
                    &format!("ll+{k} u{}", size * 8),
                    bytes(k, size),
                );
            }
        }
    }
}

#[test]
fn offsets_outside_both_ranges_end_the_program_with_zero() {
    for kind in KINDS {
        for off in [
            SKF_LL_OFF - 1,
            SKF_LL_OFF - 4,
            -0x30_0000,
            i32::MIN,
            SKF_NET_OFF - 1,
            SKF_NET_OFF - 4,
            -1,
            -4,
        ] {
            for size in [1, 2, 4] {
                check(kind, &abs(size, off), &format!("{off:#x} u{}", size * 8), 0);
            }
        }
    }
}

#[test]
fn ld_ind_register_and_immediate_combinations() {
    for kind in KINDS {
        let cases: [(i64, i32, usize, u32); 7] = [
            (i64::from(SKF_NET_OFF), 3, 2, bytes(17, 2)),
            (5, SKF_LL_OFF, 4, bytes(5, 4)),
            (i64::from(SKF_LL_OFF), 14, 1, bytes(14, 1)),
            // The sum lands below SKF_LL_OFF.
            (i64::from(SKF_LL_OFF), -1, 1, 0),
            // The sum wraps from negative back to a positive offset.
            (i64::from(SKF_NET_OFF), 0x10_0002, 1, bytes(2, 1)),
            // Only the low 32 bits of the register count.
            (
                0x7_0000_0000 | i64::from(SKF_NET_OFF as u32),
                1,
                1,
                bytes(15, 1),
            ),
            // Past the packet end from the network header.
            (i64::from(SKF_NET_OFF), 44, 4, 0),
        ];
        for (src, imm, size, want) in cases {
            let asm = format!(
                "r6 = r1\nr7 = {src} ll\nr0 = 7\nr0 = *({} *)skb[r7 + {imm}]\nexit",
                ctype(size)
            );
            check(
                kind,
                &asm,
                &format!("ind {src:#x}+{imm} u{}", size * 8),
                want,
            );
        }
    }
}

#[test]
fn a_failed_load_stops_and_successes_combine() {
    for kind in KINDS {
        check(
            kind,
            &format!(
                "r6 = r1\nr0 = 7\nr0 = *(u8 *)skb[{}]\nr0 = 9\nexit",
                SKF_LL_OFF - 1
            ),
            "stop",
            0,
        );
        let asm = format!(
            "r6 = r1\nr0 = *(u8 *)skb[{}]\nr7 = r0\nr0 = *(u16 *)skb[{}]\nr7 <<= 16\nr0 |= r7\nexit",
            SKF_NET_OFF,
            SKF_LL_OFF + 12
        );
        check(kind, &asm, "combined", bytes(14, 1) << 16 | bytes(12, 2));
    }
}

/// Loads after a reshaping helper: the MAC range (bytes 0..20) and the
/// network range (bytes 0..8), xor-folded so every byte counts.
fn after(prefix: &str, what: &str) -> Option<u32> {
    let mut asm = String::from("r6 = r1\n");
    asm.push_str(prefix);
    asm.push_str("r8 = 0\n");
    for k in (0..20).step_by(4) {
        asm.push_str(&format!(
            "r0 = *(u32 *)skb[{}]\nr8 <<= 1\nr8 ^= r0\n",
            SKF_LL_OFF + k
        ));
    }
    for k in (0..8).step_by(4) {
        asm.push_str(&format!(
            "r0 = *(u32 *)skb[{}]\nr8 <<= 3\nr8 ^= r0\n",
            SKF_NET_OFF + k
        ));
    }
    asm.push_str("r0 = r8\nexit");
    compare(ProgType::SchedCls, &asm, what)
}

#[test]
fn loads_after_reshaping_helpers_follow_the_headers() {
    // One vlan_push only sets the offloaded tag; a second one inserts the
    // first tag into the packet (the MAC header moves 4 bytes down).
    after("r1 = r6\nr2 = 0x81\nr3 = 5\ncall 18\n", "vlan_push once");
    after(
        "r1 = r6\nr2 = 0x81\nr3 = 5\ncall 18\nr1 = r6\nr2 = 0x81\nr3 = 6\ncall 18\n",
        "vlan_push twice",
    );
    after(
        "r1 = r6\nr2 = 0x81\nr3 = 5\ncall 18\nr1 = r6\nr2 = 0x81\nr3 = 6\ncall 18\n\
         r1 = r6\ncall 19\n",
        "vlan_push twice, pop",
    );
    // adjust_room (BPF_ADJ_ROOM_NET) inserts room after the network header.
    after(
        "r1 = r6\nr2 = 8\nr3 = 0\nr4 = 0\ncall 50\n",
        "adjust_room +8",
    );
    // change_head pushes room in front of the MAC header.
    after("r1 = r6\nr2 = 14\nr3 = 0\ncall 43\n", "change_head 14");
    // change_tail trims the packet: the bounds move.
    after("r1 = r6\nr2 = 20\nr3 = 0\ncall 38\n", "change_tail 20");
}
