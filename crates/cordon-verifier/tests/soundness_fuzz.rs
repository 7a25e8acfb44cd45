//! Soundness fuzzing in the normal suite: generated and mutated programs
//! (from accepted ones and from real tests/bpf programs); whatever the
//! verifier accepts runs in the checked interpreter without a violation.
//! Long runs: `cargo run --release -p cordon-verifier --example soundness_fuzz -- --seconds 300`.

mod fuzz;
use fuzz::{Corpus, Counts, Rng, step};
use proptest::prelude::*;

fn session(seed: u64, steps: u32, real: bool) -> Counts {
    let mut rng = Rng::new(seed);
    let mut corpus = Corpus {
        entries: if real {
            fuzz::real_programs()
        } else {
            Vec::new()
        },
    };
    let mut counts = Counts::default();
    for _ in 0..steps {
        if let Some(failure) = step(&mut rng, &mut corpus, &mut counts) {
            panic!("seed {seed}: verifier accepted an unsafe program: {failure}");
        }
    }
    counts
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// 24 sessions of 100 generated/mutated programs each (2,400 programs).
    #[test]
    fn accepted_programs_run_without_violations(seed in any::<u64>()) {
        let c = session(seed, 100, false);
        prop_assert!(c.generated == 100);
    }
}

/// Mutants of the real programs (xdp_firewall, socket filters, tc programs).
#[test]
fn mutated_real_programs_run_without_violations() {
    let real = fuzz::real_programs();
    assert!(real.len() >= 5, "only {} real programs", real.len());
    let c = session(0x5eed, 600, true);
    eprintln!("{c:?}");
    assert!(c.accepted > 0, "{c:?}");
}

/// The generator is useful: a good share of its programs is accepted.
#[test]
fn generator_produces_accepted_programs() {
    let c = session(42, 400, false);
    eprintln!("{c:?}");
    assert!(c.accepted * 10 >= c.generated, "{c:?}");
}

/// The harness catches violations: a program the verifier would reject
/// (out-of-bounds map value access) fails when run unverified.
#[test]
fn harness_detects_out_of_bounds_access() {
    let insns = cordon_isa::assemble_linux(
        "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:0]\ncall bpf_map_lookup_elem#1\n\
         if r0 == 0 goto l\nr0 = *(u64 *)(r0 +96)\nl: r0 = 0\nexit",
    )
    .unwrap();
    let env = fuzz::env(fuzz::TYPES[0]);
    let prog = cordon_isa::Program::new(insns.clone()).unwrap();
    assert!(cordon_verifier::verify(&prog, &env).is_err());
    // Bypass the verifier: lower and run it directly.
    let mut rng = Rng::new(1);
    let mut world = fuzz::World::new(env.maps.clone());
    let mut env_ok = env.clone();
    env_ok.maps[0].value_size = 128; // the verifier now accepts it...
    if let Err(e) = cordon_verifier::verify(&prog, &env_ok) {
        panic!("{e}");
    }
    let out = fuzz::check(&insns, &env_ok, &mut world, &mut rng, 1);
    // ...but the world has 4 x 16 bytes of values: the run must be caught.
    assert!(matches!(out, fuzz::Outcome::Unsound(_)), "{out:?}");
}

/// Differential check in the normal suite: generated XDP and tc programs
/// get the same verdict from Cordon and from Linux (skips where bpf() is
/// not permitted). Longer runs: `examples/linux_diff.rs`.
#[test]
fn generated_programs_same_verdict_as_linux() {
    use cordon_linux::{Map, MapSpec, MapType, ProgLoad, ProgType as LType};
    use cordon_verifier::ProgType;
    let maps = [
        cordon_linux::require!(Map::create(&MapSpec::new(MapType::ARRAY, 4, 16, 4))),
        cordon_linux::require!(Map::create(&MapSpec::new(MapType::HASH, 4, 8, 8))),
    ];
    let refs: Vec<&Map> = maps.iter().collect();
    let mut rng = Rng::new(0xd1ff);
    let (mut compared, mut disagreements) = (0, Vec::new());
    while compared < 300 {
        let t = *rng.pick(&[ProgType::Xdp, ProgType::SchedCls]);
        let text = fuzz::gen_text(&mut rng, t);
        let Ok(insns) = cordon_isa::assemble_linux(&text) else {
            continue;
        };
        let prog = cordon_isa::Program::new(insns.clone()).unwrap();
        let mut env = fuzz::env(t);
        env.limits.max_insn_processed = 1_000_000;
        let cordon = cordon_verifier::verify(&prog, &env);
        let lt = if t == ProgType::Xdp {
            LType::XDP
        } else {
            LType::SCHED_CLS
        };
        let linux = cordon_linux::require!(
            ProgLoad::new(lt, &insns)
                .with_maps(&refs)
                .with_license("GPL")
                .with_log_level(1)
                .verdict()
        );
        compared += 1;
        if cordon.is_ok() != linux.accepted {
            disagreements.push(format!(
                "{text}\nCordon: {:?}\nLinux: {}",
                cordon.err().map(|e| e.to_string()),
                linux.log.lines().rev().nth(1).unwrap_or("")
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {compared} disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n\n")
    );
}
