//! Negative LD_ABS / LD_IND offsets (Linux's `SKF_NET_OFF` / `SKF_LL_OFF`)
//! read relative to the network / MAC header set with
//! `context::set_packet_headers`, bounded by `[head, end of the input
//! window)`, identically on the interpreter and the JIT in checked and
//! trusted mode; every other negative offset ends the program with 0.

mod common;

use common::*;
use cordon_exec::context::{PacketHeaders, SKF_LL_OFF, SKF_NET_OFF, set_packet_headers};
use cordon_exec::jit::JitExecutable;
use cordon_exec::{ExecOptions, Executable, HelperRegistry};
use cordon_isa::Insn;

/// Buffer layout: head at 0, the input window `[WIN, LEN)`.
const LEN: usize = 64;
const WIN: usize = 8;

fn buffer() -> Vec<u8> {
    (0..LEN).map(|i| (i * 7 + 3) as u8).collect()
}

/// Big-endian value of `size` bytes of `buffer()` at `at`.
fn expect(at: usize, size: usize) -> u64 {
    buffer()[at..at + size]
        .iter()
        .fold(0u64, |v, &b| (v << 8) | u64::from(b))
}

/// Runs `insns` on the four engine modes with the window `[WIN, LEN)` of a
/// fresh buffer and the headers given as offsets into it; all must agree.
fn run4(insns: &[Insn], mac: Option<usize>, net: Option<usize>, head: usize) -> u64 {
    let prog = program(insns);
    let helpers = HelperRegistry::new();
    let opts = ExecOptions::default;
    let interp_c = Executable::checked(&prog, &helpers, opts()).expect("load");
    // SAFETY: the test programs only make legacy packet loads.
    let interp_t = unsafe { Executable::trusted(&prog, &helpers, opts()) }.expect("load");
    let jit_c = JitExecutable::checked(&prog, &helpers, opts()).expect("load");
    // SAFETY: as above.
    let jit_t = unsafe { JitExecutable::trusted(&prog, &helpers, opts()) }.expect("load");
    let mut results = Vec::new();
    for engine in 0..4 {
        let mut buf = buffer();
        let (front, window) = buf.split_at_mut(WIN);
        let base = front.as_ptr() as u64;
        let headers = net.map(|n| PacketHeaders {
            head: base + head as u64,
            mac: mac.map(|m| base + m as u64),
            network: base + n as u64,
        });
        // SAFETY: `[base, base + LEN)` stays alive until the reset below.
        let old = unsafe { set_packet_headers(headers) };
        let r = match engine {
            0 => interp_c.run(window),
            1 => interp_t.run(window),
            2 => jit_c.run(window),
            _ => jit_t.run(window),
        };
        // SAFETY: restores the previous setting.
        unsafe { set_packet_headers(old) };
        results.push(r.unwrap_or_else(|e| panic!("engine {engine}: {e}")));
    }
    assert!(
        results.iter().all(|&r| r == results[0]),
        "engines disagree (interp checked, interp trusted, jit checked, jit trusted): {results:?}"
    );
    results[0]
}

/// `r0 = 7; LD_ABS size at off` (a load that fails ends with 0).
fn abs(size: u32, off: i32) -> Vec<Insn> {
    prog![mov64(0, 7), ld_abs(size, off), exit()]
}

/// `r3 = src; LD_IND size at r3 + imm`.
fn ind(size: u32, src: u64, imm: i32) -> Vec<Insn> {
    prog![mov64(0, 7), lddw(3, src), ld_ind(size, 3, imm), exit()]
}

const MAC: usize = WIN;
const NET: usize = WIN + 14;

#[test]
fn network_relative_loads_read_from_the_network_header() {
    for size in [1u32, 2, 4] {
        let s = size as usize;
        for k in [0usize, 1, 5, LEN - NET - s] {
            let got = run4(&abs(size, SKF_NET_OFF + k as i32), Some(MAC), Some(NET), 0);
            assert_eq!(got, expect(NET + k, s), "size {size} k {k}");
        }
        // One byte past the end of the window.
        let past = (LEN - NET - s + 1) as i32;
        assert_eq!(
            run4(&abs(size, SKF_NET_OFF + past), Some(MAC), Some(NET), 0),
            0
        );
    }
}

#[test]
fn mac_relative_loads_read_from_the_mac_header() {
    for size in [1u32, 2, 4] {
        let s = size as usize;
        for k in [0usize, 1, 12, LEN - MAC - s] {
            let got = run4(&abs(size, SKF_LL_OFF + k as i32), Some(MAC), Some(NET), 0);
            assert_eq!(got, expect(MAC + k, s), "size {size} k {k}");
        }
        let past = (LEN - MAC - s + 1) as i32;
        assert_eq!(
            run4(&abs(size, SKF_LL_OFF + past), Some(MAC), Some(NET), 0),
            0
        );
        // The largest MAC-relative offset is far past any packet.
        assert_eq!(
            run4(&abs(size, SKF_NET_OFF - 1), Some(MAC), Some(NET), 0),
            0
        );
    }
}

#[test]
fn headers_before_the_window_are_readable_down_to_head() {
    // Socket filters: the window starts at the network header; the MAC
    // header lies before it, in the buffer's headroom.
    let (mac, net) = (2, WIN);
    assert_eq!(
        run4(&abs(4, SKF_LL_OFF), Some(mac), Some(net), 0),
        expect(mac, 4)
    );
    assert_eq!(
        run4(&abs(2, SKF_NET_OFF + 2), Some(mac), Some(net), 0),
        expect(net + 2, 2)
    );
    // Positive offsets stay relative to the window.
    assert_eq!(run4(&abs(1, 0), Some(mac), Some(net), 0), expect(WIN, 1));
    // A MAC header below head is refused.
    assert_eq!(run4(&abs(1, SKF_LL_OFF), Some(mac), Some(net), 4), 0);
    assert_eq!(
        run4(&abs(1, SKF_LL_OFF + 2), Some(mac), Some(net), 4),
        expect(4, 1)
    );
}

#[test]
fn offsets_below_the_mac_range_or_without_headers_end_with_zero() {
    for off in [SKF_LL_OFF - 1, SKF_LL_OFF - 4, i32::MIN, -0x30_0000] {
        assert_eq!(run4(&abs(1, off), Some(MAC), Some(NET), 0), 0, "{off:#x}");
    }
    // Without headers (raw / XDP runs) every negative offset fails.
    for off in [SKF_NET_OFF, SKF_LL_OFF, -1] {
        assert_eq!(run4(&abs(1, off), None, None, 0), 0, "{off:#x}");
    }
    // An unset MAC header fails SKF_LL_OFF loads only.
    assert_eq!(run4(&abs(1, SKF_LL_OFF), None, Some(NET), 0), 0);
    assert_eq!(
        run4(&abs(1, SKF_NET_OFF), None, Some(NET), 0),
        expect(NET, 1)
    );
    // Offsets -1 .. SKF_NET_OFF + window are in the network range, past
    // the packet.
    assert_eq!(run4(&abs(1, -1), Some(MAC), Some(NET), 0), 0);
}

#[test]
fn ld_ind_adds_register_and_immediate_in_32_bits() {
    let net = SKF_NET_OFF as u32 as u64;
    let ll = SKF_LL_OFF as u32 as u64;
    assert_eq!(
        run4(&ind(2, net, 3), Some(MAC), Some(NET), 0),
        expect(NET + 3, 2)
    );
    assert_eq!(
        run4(&ind(4, 5, SKF_LL_OFF), Some(MAC), Some(NET), 0),
        expect(MAC + 5, 4)
    );
    // High register bits are ignored.
    assert_eq!(
        run4(
            &ind(1, 0xdead_0000_0000_0000 | ll, 1),
            Some(MAC),
            Some(NET),
            0
        ),
        expect(MAC + 1, 1)
    );
    // Register and immediate summing below SKF_LL_OFF.
    assert_eq!(run4(&ind(1, ll, -1), Some(MAC), Some(NET), 0), 0);
    // A large register wrapping a negative immediate back to a positive offset.
    assert_eq!(
        run4(&ind(1, 0x1_0000_0002, 0), Some(MAC), Some(NET), 0),
        expect(WIN + 2, 1)
    );
    assert_eq!(
        run4(&ind(1, 12, -10), Some(MAC), Some(NET), 0),
        expect(WIN + 2, 1)
    );
}

#[test]
fn a_failed_negative_load_stops_the_program() {
    let p = prog![mov64(0, 7), ld_abs(1, SKF_LL_OFF - 1), mov64(0, 9), exit()];
    assert_eq!(run4(&p, Some(MAC), Some(NET), 0), 0);
    let p = prog![
        ld_abs(1, SKF_NET_OFF),
        mov64r(6, 0),
        ld_abs(1, SKF_LL_OFF + 1),
        alu64_imm(cordon_isa::opcode::ALU_LSH, 6, 8),
        alu64_reg(cordon_isa::opcode::ALU_OR, 0, 6),
        exit()
    ];
    assert_eq!(
        run4(&p, Some(MAC), Some(NET), 0),
        (expect(NET, 1) << 8) | expect(MAC + 1, 1)
    );
}
