//! Soundness fuzzing harness shared by `tests/soundness_fuzz.rs` (a proptest
//! in the normal suite) and `examples/soundness_fuzz.rs` (long runs).
//!
//! Programs are generated from a menu of plausible fragments (ALU, context
//! loads, packet bounds checks, map lookups with NULL checks and indexed
//! value accesses, stack traffic, branches, bounded loops), or mutated from
//! accepted programs and from the repository's real tests/bpf programs.
//! Whatever the verifier accepts is run in cordon-exec's *checked*
//! interpreter with a modelled world: the context is a backing struct (its
//! packet-pointer fields rewritten to 64-bit loads using
//! [`cordon_verifier::VerifiedFacts::ctx_accesses`], the way the runtime
//! will), a packet buffer, map values as regions, and stand-ins for the
//! helpers. Any memory violation, misaligned atomic, call-depth error, stack
//! exhaustion or budget exhaustion is a verifier soundness bug.
#![allow(dead_code)]

use cordon_exec::{ExecError, ExecOptions, Executable, HelperRegistry, Region};
use cordon_isa::{Insn, Kind, Program, assemble_linux};
use cordon_verifier::{CtxField, MapInfo, MapType, ProgType, VerifiedFacts, VerifyEnv, verify};
use std::fmt::Write;

/// Small deterministic RNG (xorshift64*), so a failure reproduces from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    /// An "interesting" immediate: small, boundary or random.
    pub fn imm(&mut self) -> i64 {
        match self.below(6) {
            0 => self.below(16) as i64,
            1 => *self.pick(&[
                -1,
                0,
                1,
                7,
                8,
                15,
                16,
                63,
                64,
                255,
                256,
                4095,
                i32::MAX as i64,
                i32::MIN as i64,
            ]),
            2 => -(self.below(64) as i64),
            3 => self.below(512) as i64,
            _ => self.next() as i32 as i64,
        }
    }
}

/// The program types fuzzed and their context size.
pub const TYPES: &[ProgType] = &[
    ProgType::Generic {
        ctx_size: 64,
        ctx_writable: true,
    },
    ProgType::Xdp,
    ProgType::SchedCls,
];

/// Maps of generated programs: 0 array(4 -> 16, 4 entries), 1 hash(4 -> 8, 8).
pub fn maps() -> Vec<MapInfo> {
    vec![
        MapInfo::new("arr", MapType::Array, 4, 16, 4),
        MapInfo::new("hash", MapType::Hash, 4, 8, 8),
    ]
}

const SIZES: &[&str] = &["u8", "u16", "u32", "u64"];
const ALU: &[&str] = &[
    "+=", "-=", "*=", "&=", "|=", "^=", "<<=", ">>=", "s>>=", "=", "/=", "%=",
];
const JMP: &[&str] = &[
    "==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&",
];

/// Generate one program as Linux-syntax assembly.
pub fn gen_text(rng: &mut Rng, t: ProgType) -> String {
    let mut s = String::new();
    let ctx_size = match t {
        ProgType::Generic { ctx_size, .. } => ctx_size as i64,
        ProgType::Xdp => 24,
        _ => 192,
    };
    s.push_str("r6 = r1\n");
    for r in [0, 7, 8, 9] {
        let _ = writeln!(s, "r{r} = {}", rng.imm());
    }
    let n = 2 + rng.below(10);
    let mut label = 0;
    let mut open: Vec<usize> = Vec::new();
    for _ in 0..n {
        let d = rng.below(10);
        let reg = |rng: &mut Rng| *rng.pick(&[0u8, 7, 8, 9]);
        match rng.below(11) {
            0 | 1 => {
                let w = if rng.chance(30) { "w" } else { "r" };
                let op = rng.pick(ALU);
                if rng.chance(50) {
                    let imm = rng.imm();
                    let imm = if (op.contains("/") || op.contains("%")) && imm == 0 {
                        3
                    } else {
                        imm
                    };
                    let _ = writeln!(s, "{w}{} {op} {imm}", reg(rng));
                } else {
                    let _ = writeln!(s, "{w}{} {op} {w}{}", reg(rng), reg(rng));
                }
            }
            2 => {
                // Context load (or store for the writable generic context).
                let size = *rng.pick(SIZES);
                let off = rng.below(ctx_size as u64 + 8) as i64 - 4;
                if matches!(t, ProgType::Generic { .. }) && rng.chance(40) {
                    let _ = writeln!(s, "*({size} *)(r6 {off:+}) = r{}", reg(rng));
                } else {
                    let _ = writeln!(s, "r{} = *({size} *)(r6 {off:+})", reg(rng));
                }
            }
            3 if t != TYPES[0] => {
                // Packet bounds check then access.
                let (dof, eof) = if t == ProgType::Xdp { (0, 4) } else { (76, 80) };
                let k = rng.below(40) as i64;
                let off = rng.below(44) as i64 - 2;
                let size = *rng.pick(SIZES);
                let _ = writeln!(
                    s,
                    "r2 = *(u32 *)(r6 +{dof})\nr3 = *(u32 *)(r6 +{eof})\nr4 = r2\nr4 += {k}\n\
                     if r4 > r3 goto l{label}\nr{} = *({size} *)(r2 {off:+})",
                    reg(rng)
                );
                if rng.chance(30) {
                    let _ = writeln!(s, "*({size} *)(r2 {off:+}) = r{}", reg(rng));
                }
                let _ = writeln!(s, "l{label}:");
                label += 1;
            }
            4 | 5 => {
                // Map lookup, NULL check, (indexed) value access.
                let m = rng.below(2);
                let key = if rng.chance(70) {
                    rng.below(6) as i64
                } else {
                    rng.imm()
                };
                let _ = writeln!(
                    s,
                    "*(u32 *)(r10 -4) = {key}\nr2 = r10\nr2 += -4\nr1 = map[idx:{m}]\n\
                     call bpf_map_lookup_elem#1"
                );
                if rng.chance(90) {
                    let _ = writeln!(s, "if r0 == 0 goto l{label}");
                }
                if rng.chance(50) {
                    let src = reg(rng);
                    if rng.chance(50) {
                        let mask = *rng.pick(&[3i64, 7, 8, 15, 31, 255]);
                        let _ = writeln!(s, "r1 = r{src}\nr1 &= {mask}\nr0 += r1");
                    } else {
                        // Linked scalars with a delta: bound the base, use the copy.
                        let k = rng.below(12) as i64 - 4;
                        let op = if rng.chance(30) { "-=" } else { "+=" };
                        let cmp = *rng.pick(&["<", "<=", "s<", "s<="]);
                        let n = rng.below(20);
                        let _ = writeln!(
                            s,
                            "r1 = r{src}\nr1 {op} {k}\nif r{src} {cmp} {n} goto m{label}\ngoto l{label}\n\
                             m{label}: if r{src} s< 0 goto l{label}\nr0 += r1"
                        );
                    }
                }
                let size = *rng.pick(SIZES);
                let off = rng.below(20) as i64 - 2;
                if rng.chance(50) {
                    let _ = writeln!(s, "r{} = *({size} *)(r0 {off:+})", *rng.pick(&[7u8, 8, 9]));
                } else {
                    let _ = writeln!(s, "*({size} *)(r0 {off:+}) = r{}", *rng.pick(&[7u8, 8, 9]));
                }
                let _ = writeln!(s, "l{label}:\nr0 = 0");
                label += 1;
            }
            6 => {
                let size = *rng.pick(SIZES);
                let off = -(rng.below(72) as i64) + if rng.chance(5) { 8 } else { 0 };
                if rng.chance(50) {
                    let _ = writeln!(s, "*({size} *)(r10 {off:+}) = r{}", reg(rng));
                } else {
                    let _ = writeln!(s, "r{} = *({size} *)(r10 {off:+})", reg(rng));
                }
            }
            7 => {
                // Forward branch over the next fragments.
                let _ = writeln!(
                    s,
                    "if r{} {} {} goto l{label}",
                    reg(rng),
                    rng.pick(JMP),
                    rng.imm()
                );
                open.push(label);
                label += 1;
            }
            8 => {
                // Bounded loop.
                let c = *rng.pick(&[7u8, 8, 9]);
                let n = 1 + rng.below(6);
                let body = reg(rng);
                let _ = writeln!(
                    s,
                    "r{c} = 0\nl{label}:\nr{body} += {}\nr{c} += 1\nif r{c} < {n} goto l{label}",
                    rng.imm()
                );
                label += 1;
            }
            9 => {
                let _ = writeln!(
                    s,
                    "call bpf_get_prandom_u32#7\nr{} = r0",
                    *rng.pick(&[7u8, 8, 9])
                );
                let _ = writeln!(s, "r0 = {}", rng.imm());
            }
            _ => {
                // Pointer arithmetic with a (maybe) bounded scalar, then access.
                let p = *rng.pick(&["r10", "r6"]);
                let mask = *rng.pick(&[7i64, 8, 15, 56]);
                let _ = writeln!(
                    s,
                    "r5 = r{}\nr5 &= {mask}\nr4 = {p}\nr4 += -64\nr4 += r5\nr{} = *(u8 *)(r4 +{})",
                    reg(rng),
                    reg(rng),
                    d
                );
            }
        }
        if !open.is_empty() && rng.chance(40) {
            let l = open.remove(0);
            let _ = writeln!(s, "l{l}:");
        }
    }
    for l in open {
        let _ = writeln!(s, "l{l}:");
    }
    s.push_str("r0 = 0\nexit\n");
    s
}

/// Mutate one field of one instruction (or swap/duplicate instructions).
pub fn mutate(rng: &mut Rng, insns: &[Insn]) -> Vec<Insn> {
    let mut out = insns.to_vec();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let i = rng.below(out.len() as u64) as usize;
        let x = &mut out[i];
        match rng.below(7) {
            0 => x.imm = rng.imm() as i32,
            1 => x.off = (x.off as i32 + rng.below(17) as i32 - 8) as i16,
            2 => x.imm = x.imm.wrapping_add(rng.below(17) as i32 - 8),
            3 => x.dst = rng.below(11) as u8,
            4 => x.src = rng.below(11) as u8,
            5 => {
                // Same class, another operation.
                x.code = (x.code & 0x0f) | ((rng.below(14) as u8) << 4);
            }
            _ => {
                let j = rng.below(out.len() as u64) as usize;
                out.swap(i, j);
            }
        }
    }
    out
}

/// How one program fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a valid program (decode) or rejected by the verifier.
    Rejected,
    /// Accepted and every run stayed within the rules.
    Ran { runs: u32 },
    /// Accepted but the checked interpreter caught a violation.
    Unsound(String),
}

/// The modelled world for one program run: map value buffers at stable
/// addresses, a packet and a context backing struct.
pub struct World {
    pub maps: Vec<MapInfo>,
    values: Vec<Box<[u8]>>,
}

const MAP_COOKIE: u64 = 0xc0de_0000;

impl World {
    pub fn new(maps: Vec<MapInfo>) -> World {
        let values = maps
            .iter()
            .map(|m| {
                let n = if m.map_type.is_array() {
                    m.max_entries.max(1)
                } else {
                    1
                };
                vec![0u8; (m.value_size * n).max(1) as usize].into_boxed_slice()
            })
            .collect();
        World { maps, values }
    }

    fn helpers(&self, seed: u64) -> HelperRegistry {
        let mut h = HelperRegistry::new();
        let maps: Vec<(bool, u32, u32, u64)> = self
            .maps
            .iter()
            .zip(&self.values)
            .map(|(m, v)| {
                (
                    m.map_type.is_array(),
                    m.max_entries,
                    m.value_size,
                    v.as_ptr() as u64,
                )
            })
            .collect();
        let key_sizes: Vec<u32> = self.maps.iter().map(|m| m.key_size).collect();
        h.register(1, "map_lookup_elem", move |ctx, a| {
            let idx = a[0].wrapping_sub(MAP_COOKIE) as usize;
            let Some(&(is_array, max, vs, base)) = maps.get(idx) else {
                return Err(cordon_exec::Abort::Fault(format!(
                    "r1 {:#x} is not a map",
                    a[0]
                )));
            };
            let ks = key_sizes[idx].max(1) as u64;
            let key = ctx.read_bytes(a[1], ks)?;
            let mut k = [0u8; 8];
            let n = key.len().min(8);
            k[..n].copy_from_slice(&key[..n]);
            let k = u64::from_le_bytes(k);
            Ok(if is_array {
                if ks == 4 && (k as u32) < max {
                    base + (k as u32 as u64) * vs as u64
                } else {
                    0
                }
            } else if k % 2 == 0 {
                base
            } else {
                0
            })
        });
        let counter = std::sync::atomic::AtomicU64::new(seed | 1);
        h.register(7, "get_prandom_u32", move |_, _| {
            let x = counter.fetch_add(0x9e37_79b9, std::sync::atomic::Ordering::Relaxed);
            Ok((x ^ (x >> 17)) & 0xffff_ffff)
        });
        // Every other helper the fuzzed real programs call: a stand-in that
        // returns 0 (a valid integer, and NULL for every *_or_null return).
        for id in 2..220u32 {
            if id != 7 {
                h.register(id, "stand_in", |_, _| Ok(0));
            }
        }
        h
    }
}

/// Rewrite what the runtime would: map references to plain immediates,
/// context accesses to the backing struct (packet pointer fields become
/// 64-bit loads at `ctx_size + 8 * k`).
fn lower(prog: &Program, facts: &VerifiedFacts, world: &World, ctx_size: u32) -> Option<Program> {
    let mut insns = prog.insns().to_vec();
    // Dead code was never checked: make it fault if it ever runs (a load
    // at r10+0 is outside every frame), as Linux's sanitize_dead_code
    // makes it harmless.
    let fault = Insn::new(0x71, 0, 10, 0, 0);
    for &pc in &facts.unreached {
        insns[pc] = fault;
        if matches!(prog.kind(pc), Some(Kind::Lddw { .. })) {
            insns[pc + 1] = fault;
        }
    }
    for pc in 0..insns.len() {
        if facts.unreached.binary_search(&pc).is_ok() {
            continue;
        }
        match prog.kind(pc) {
            Some(Kind::Lddw {
                pseudo,
                imm,
                next_imm,
                ..
            }) if pseudo != 0 => {
                let idx = imm as u32 as usize;
                let v = match pseudo {
                    1 | 5 => MAP_COOKIE + idx as u64,
                    2 | 6 => world.values.get(idx)?.as_ptr() as u64 + next_imm as u32 as u64,
                    _ => return None,
                };
                insns[pc].src = 0;
                insns[pc].imm = v as u32 as i32;
                insns[pc + 1].imm = (v >> 32) as u32 as i32;
            }
            _ => {}
        }
        if let Some(a) = facts.ctx_accesses.get(&pc) {
            let k = match a.field {
                CtxField::Scalar => continue,
                CtxField::PktData => 0,
                CtxField::PktEnd => 1,
                CtxField::PktMeta => 2,
            };
            insns[pc].code = 0x79; // ldx dw
            insns[pc].off = (ctx_size + 8 * k) as i16;
        }
    }
    Program::new(insns).ok()
}

fn ctx_size(t: ProgType) -> u32 {
    match t {
        ProgType::Generic { ctx_size, .. } => ctx_size,
        ProgType::Xdp => 24,
        _ => 192,
    }
}

/// Verify `insns` under `env`; if accepted, run it `runs` times with random
/// packets and contexts and report any violation.
pub fn check(
    insns: &[Insn],
    env: &VerifyEnv,
    world: &mut World,
    rng: &mut Rng,
    runs: u32,
) -> Outcome {
    let Ok(prog) = Program::new(insns.to_vec()) else {
        return Outcome::Rejected;
    };
    let facts = match verify(&prog, env) {
        Ok(f) => f,
        Err(_) => return Outcome::Rejected,
    };
    let cs = ctx_size(env.prog_type);
    let Some(lowered) = lower(&prog, &facts, world, cs) else {
        return Outcome::Unsound("accepted program with an unresolvable pseudo lddw".into());
    };
    let frames = facts.subprog_frames();
    let opts = ExecOptions {
        name: "fuzz".into(),
        frame_size: frames.first().map(|f| f.1).unwrap_or(0),
        subprog_frames: frames,
        instruction_budget: 20_000_000,
        ..ExecOptions::default()
    };
    let helpers = world.helpers(rng.next());
    let exe = match Executable::checked(&lowered, &helpers, opts) {
        Ok(e) => e,
        Err(e) => return Outcome::Unsound(format!("accepted but not loadable: {e}")),
    };
    for _ in 0..runs {
        let plen = 14 + rng.below(120) as usize;
        let mut packet: Vec<u8> = (0..plen).map(|_| rng.next() as u8).collect();
        let mut ctx = vec![0u8; cs as usize + 24];
        for b in ctx.iter_mut().take(cs as usize) {
            *b = rng.next() as u8;
        }
        let data = packet.as_mut_ptr() as u64;
        let end = data + plen as u64;
        ctx[cs as usize..cs as usize + 8].copy_from_slice(&data.to_le_bytes());
        ctx[cs as usize + 8..cs as usize + 16].copy_from_slice(&end.to_le_bytes());
        ctx[cs as usize + 16..cs as usize + 24].copy_from_slice(&data.to_le_bytes());
        let ctx_ptr = ctx.as_mut_ptr() as u64;
        let mut regions: Vec<Region<'_>> = vec![Region::writable(&mut ctx)];
        for v in world.values.iter_mut() {
            regions.push(Region::writable(v));
        }
        match exe.run_with([ctx_ptr, 0, 0, 0, 0], &mut packet, &regions) {
            Ok(_) => {}
            Err(e @ ExecError::BudgetExhausted { .. }) => {
                return Outcome::Unsound(format!("accepted program does not terminate: {e}"));
            }
            Err(e) => return Outcome::Unsound(e.to_string()),
        }
    }
    Outcome::Ran { runs }
}

/// Environment for a fuzzed program of type `t`.
pub fn env(t: ProgType) -> VerifyEnv {
    let mut e = VerifyEnv::new(t).with_maps(maps());
    // Fuzzed programs are small: a lower complexity limit keeps mutants
    // with long loops from dominating the time.
    e.limits.max_insn_processed = 100_000;
    e
}

/// Counters of a fuzzing session.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub generated: u64,
    pub valid: u64,
    pub accepted: u64,
    pub executed_runs: u64,
}

/// A corpus of accepted programs to mutate, seeded from real objects.
pub struct Corpus {
    pub entries: Vec<(Vec<Insn>, VerifyEnv)>,
}

/// One fuzzing step: generate or mutate, check. Returns the failure, if any,
/// with the program's disassembly.
pub fn step(rng: &mut Rng, corpus: &mut Corpus, counts: &mut Counts) -> Option<String> {
    let (insns, env) = if corpus.entries.is_empty() || rng.chance(55) {
        let t = *rng.pick(TYPES);
        let text = gen_text(rng, t);
        let Ok(insns) = assemble_linux(&text) else {
            counts.generated += 1;
            return None;
        };
        (insns, env(t))
    } else {
        let i = rng.below(corpus.entries.len() as u64) as usize;
        let (base, env) = &corpus.entries[i];
        (mutate(rng, base), env.clone())
    };
    counts.generated += 1;
    if Program::new(insns.clone()).is_ok() {
        counts.valid += 1;
    }
    let mut world = World::new(env.maps.clone());
    match check(&insns, &env, &mut world, rng, 3) {
        Outcome::Rejected => None,
        Outcome::Ran { runs } => {
            counts.accepted += 1;
            counts.executed_runs += runs as u64;
            if corpus.entries.len() < 4096 {
                corpus.entries.push((insns, env));
            } else {
                let j = rng.below(corpus.entries.len() as u64) as usize;
                corpus.entries[j] = (insns, env);
            }
            None
        }
        Outcome::Unsound(why) => {
            counts.accepted += 1;
            let text = cordon_isa::disassemble(&insns).unwrap_or_default();
            Some(format!("{why}\nprogram type {:?}\n{text}", env.prog_type))
        }
    }
}

/// Real programs from tests/bpf (those of a fuzzable type that use only
/// helpers, maps and no kfuncs), with environments.
pub fn real_programs() -> Vec<(Vec<Insn>, VerifyEnv)> {
    use cordon_object::Object;
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bpf"));
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return out;
    };
    let mut names: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    names.sort();
    for path in names {
        if path.extension().is_none_or(|e| e != "o") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(obj) = Object::parse(&bytes) else {
            continue;
        };
        for p in &obj.programs {
            use cordon_object::ProgType as O;
            let t = match p.prog_type {
                O::Xdp => ProgType::Xdp,
                O::SchedCls => ProgType::SchedCls,
                O::SocketFilter => ProgType::SocketFilter,
                _ => continue,
            };
            if p.insns.iter().any(|i| i.code == 0x85 && i.src == 2) || p.functions.len() > 1 {
                continue;
            }
            let maps: Vec<MapInfo> = obj
                .maps
                .iter()
                .map(|m| {
                    let mut i = MapInfo::new(
                        &m.name,
                        MapType::from_linux(m.map_type),
                        m.key_size,
                        m.value_size,
                        m.max_entries,
                    );
                    i.rdonly_prog = m.flags & 0x80 != 0;
                    i
                })
                .collect();
            if obj.maps.iter().any(|m| m.inner.is_some()) {
                continue;
            }
            let mut env = VerifyEnv::new(t).with_maps(maps);
            env.limits.max_insn_processed = 200_000;
            if Program::new(p.insns.clone())
                .ok()
                .is_some_and(|prog| verify(&prog, &env).is_ok())
            {
                out.push((p.insns.clone(), env));
            }
        }
    }
    out
}
