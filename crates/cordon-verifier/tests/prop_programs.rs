//! Robustness: random (decodable) programs never make the verifier panic or
//! run away; every run ends in facts or an error naming an instruction.

use cordon_isa::{Insn, Program};
use cordon_verifier::{Limits, MapInfo, MapType, Profile, ProgType, VerifyEnv, verify};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

static DECODED: AtomicUsize = AtomicUsize::new(0);
static ACCEPTED: AtomicUsize = AtomicUsize::new(0);

/// Opcodes worth generating (ALU, jumps, memory, calls, exit, lddw).
const CODES: &[u8] = &[
    0x07, 0x0f, 0x17, 0x1f, 0x27, 0x2f, 0x37, 0x3f, 0x47, 0x4f, 0x57, 0x5f, 0x67, 0x6f, 0x77, 0x7f,
    0x87, 0x97, 0x9f, 0xa7, 0xaf, 0xb7, 0xbf, 0xc7, 0xcf, 0xdc, 0xd4, 0x04, 0x0c, 0x14, 0x1c, 0x24,
    0x34, 0x44, 0x54, 0x64, 0x74, 0x84, 0x94, 0xa4, 0xb4, 0xbc, 0xc4, 0x05, 0x15, 0x1d, 0x25, 0x2d,
    0x35, 0x45, 0x55, 0x5d, 0x65, 0x6d, 0x75, 0xa5, 0xad, 0xb5, 0xc5, 0xd5, 0x16, 0x1e, 0x26, 0xa6,
    0x61, 0x69, 0x71, 0x79, 0x62, 0x6a, 0x72, 0x7a, 0x63, 0x6b, 0x73, 0x7b, 0xdb, 0xc3, 0x85, 0x95,
    0x18, 0x30, 0x28, 0x20, 0x40,
];

fn insn() -> impl Strategy<Value = Insn> {
    (
        prop::sample::select(CODES),
        0u8..11,
        0u8..11,
        -8i16..8,
        prop_oneof![
            -16i32..16,
            Just(1),
            Just(7),
            Just(12),
            Just(181),
            -512i32..0
        ],
    )
        .prop_map(|(code, dst, src, off, imm)| {
            let off = if matches!(code & 0x07, 0x01..=0x03) {
                off * 8
            } else {
                off
            };
            Insn::new(
                code,
                dst,
                src & if code == 0x85 { 1 } else { 0x0f },
                off,
                imm,
            )
        })
}

fn envs() -> Vec<VerifyEnv> {
    let maps = vec![
        MapInfo::new("h", MapType::Hash, 4, 8, 4),
        MapInfo::new("a", MapType::Array, 4, 16, 1),
    ];
    let limits = Limits {
        max_insn_processed: 20_000,
        ..Limits::default()
    };
    let mut v = Vec::new();
    for t in [
        ProgType::Xdp,
        ProgType::SocketFilter,
        ProgType::Generic {
            ctx_size: 64,
            ctx_writable: true,
        },
    ] {
        for p in [Profile::Privileged, Profile::Unprivileged] {
            let mut e = VerifyEnv::new(t)
                .with_profile(p)
                .with_maps(maps.clone())
                .with_log_level(2);
            e.limits = limits;
            v.push(e);
        }
    }
    v
}

/// Make every slot decodable: reserved fields zeroed, jump targets and local
/// calls inside the program, lddw completed, program ends with `r0 = 0; exit`.
fn fix(insns: &mut Vec<Insn>) {
    insns.push(Insn::new(0xb7, 0, 0, 0, 0));
    insns.push(Insn::new(0x95, 0, 0, 0, 0));
    let n = insns.len() as i64;
    let mut i = 0usize;
    while i < insns.len() {
        let x = &mut insns[i];
        let class = x.code & 0x07;
        let is_x = x.code & 0x08 != 0;
        let op = x.code & 0xf0;
        let target = |i: usize, off: i64| -> i64 {
            let t = (i as i64 + 1 + off).clamp(0, n - 1);
            t - i as i64 - 1
        };
        match class {
            0x04 | 0x07 => {
                x.dst %= 10;
                x.off = 0;
                if op == 0xd0 {
                    x.src = 0;
                    x.imm = [16, 32, 64][(x.imm.unsigned_abs() % 3) as usize];
                    if class == 0x07 && is_x {
                        x.code = 0xd7;
                    }
                } else if op == 0x80 {
                    x.code = class | 0x80;
                    x.src = 0;
                    x.imm = 0;
                } else if is_x {
                    x.imm = 0;
                } else {
                    x.src = 0;
                    if matches!(op, 0x60 | 0x70 | 0xc0) {
                        x.imm = x.imm.rem_euclid(if class == 0x07 { 64 } else { 32 });
                    }
                    if matches!(op, 0x30 | 0x90) && x.imm == 0 {
                        x.imm = 3;
                    }
                }
            }
            0x05 | 0x06 => match op {
                0x00 => {
                    x.code = 0x05;
                    x.dst = 0;
                    x.src = 0;
                    x.imm = 0;
                    x.off = target(i, x.off as i64) as i16;
                }
                0x80 => {
                    x.code = 0x85;
                    x.dst = 0;
                    x.off = 0;
                    if x.src == 1 {
                        x.imm = target(i, x.imm as i64) as i32;
                    } else {
                        x.src = 0;
                    }
                }
                0x90 => *x = Insn::new(0x95, 0, 0, 0, 0),
                _ => {
                    if is_x {
                        x.imm = 0;
                    } else {
                        x.src = 0;
                    }
                    x.off = target(i, x.off as i64) as i16;
                }
            },
            0x01 => {
                x.dst %= 10;
                x.imm = 0;
            }
            0x02 => x.src = 0,
            // STX and atomic add: imm 0.
            0x03 => x.imm = 0,
            _ => {
                if x.code == 0x18 {
                    x.dst %= 10;
                    x.off = 0;
                    x.src %= 7;
                    if x.src == 3 || x.src == 4 {
                        x.src = 0;
                    }
                    if x.src != 0 {
                        x.imm = x.imm.rem_euclid(2);
                    }
                    let next = Insn::new(0, 0, 0, 0, 0);
                    if i + 1 < insns.len() - 2 {
                        insns[i + 1] = next;
                    } else {
                        insns.insert(i + 1, next);
                    }
                    i += 1;
                } else {
                    x.dst = 0;
                    x.off = 0;
                    if x.code & 0xe0 == 0x20 {
                        x.src = 0;
                    }
                }
            }
        }
        i += 1;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn random_programs_never_panic(mut insns in prop::collection::vec(insn(), 1..40)) {
        fix(&mut insns);
        let Ok(prog) = Program::new(insns) else { return Ok(()) };
        DECODED.fetch_add(1, Ordering::Relaxed);
        for env in envs() {
            match verify(&prog, &env) {
                Ok(f) => {
                    ACCEPTED.fetch_add(1, Ordering::Relaxed);
                    prop_assert!(f.stats.insn_processed <= 20_000)
                }
                Err(e) => prop_assert!(!e.message.is_empty()),
            }
        }
    }
}

#[test]
fn random_programs_are_mostly_decodable() {
    // Run the property first (same process), then check the generator is not vacuous.
    random_programs_never_panic();
    let d = DECODED.load(Ordering::Relaxed);
    let a = ACCEPTED.load(Ordering::Relaxed);
    eprintln!("decoded {d}, accepted {a}");
    assert!(d > 100, "only {d} decodable programs");
    assert!(a > 0, "no random program verified");
}
