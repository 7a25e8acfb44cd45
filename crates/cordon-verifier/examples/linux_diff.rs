//! Differential fuzzing against the running kernel: generated programs (the
//! soundness fuzzer's generator, XDP and tc types) are verified by Cordon
//! and loaded into Linux; the verdicts are compared.
//!
//! `cargo run --release -p cordon-verifier --example linux_diff -- --count 2000 [--seed N] [--show 5]`
//!
//! Prints the counts and the first disagreements (program, both messages).
//! Needs root / bpf(); prints a skip message otherwise.

#[path = "../tests/fuzz/mod.rs"]
mod fuzz;

use cordon_isa::{Program, assemble_linux};
use cordon_linux::{Map, MapSpec, MapType, ProgLoad, ProgType as LType};
use cordon_verifier::{ProgType, verify};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, d: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(d)
    };
    let (count, seed, show) = (arg("--count", 2000), arg("--seed", 1), arg("--show", 5));
    if let Err(e) = cordon_linux::available() {
        println!("skipped: {e}");
        return;
    }
    let maps = [
        Map::create(&MapSpec::new(MapType::ARRAY, 4, 16, 4)).expect("array map"),
        Map::create(&MapSpec::new(MapType::HASH, 4, 8, 8)).expect("hash map"),
    ];
    let refs: Vec<&Map> = maps.iter().collect();
    let mut rng = fuzz::Rng::new(seed);
    let (mut compared, mut agree, mut cordon_only, mut linux_only) = (0u64, 0u64, 0u64, 0u64);
    let mut shown = 0;
    while compared < count {
        let t = *rng.pick(&[ProgType::Xdp, ProgType::SchedCls]);
        let text = fuzz::gen_text(&mut rng, t);
        let Ok(insns) = assemble_linux(&text) else {
            continue;
        };
        let insns = if rng.chance(50) {
            fuzz::mutate(&mut rng, &insns)
        } else {
            insns
        };
        let Ok(prog) = Program::new(insns.clone()) else {
            continue;
        };
        let mut env = fuzz::env(t);
        env.limits.max_insn_processed = 1_000_000;
        env.log_level = 1;
        let c = verify(&prog, &env);
        let lt = if t == ProgType::Xdp {
            LType::XDP
        } else {
            LType::SCHED_CLS
        };
        let l = match ProgLoad::new(lt, &insns)
            .with_maps(&refs)
            .with_license("GPL")
            .with_log_level(1)
            .verdict()
        {
            Ok(v) => v,
            Err(e) => {
                println!("load error: {e}");
                continue;
            }
        };
        compared += 1;
        if c.is_ok() == l.accepted {
            agree += 1;
            continue;
        }
        if c.is_ok() {
            cordon_only += 1;
        } else {
            linux_only += 1;
        }
        if shown < show {
            shown += 1;
            let tail = |s: &str| s.lines().rev().nth(1).unwrap_or("").to_string();
            println!(
                "--- disagreement: Cordon {}, Linux {} ---\n{}\nCordon: {}\nLinux: {}\n",
                if c.is_ok() { "accepts" } else { "rejects" },
                if l.accepted { "accepts" } else { "rejects" },
                cordon_isa::disassemble(&insns).unwrap_or_default(),
                c.as_ref().err().map(|e| e.to_string()).unwrap_or_default(),
                tail(&l.log)
            );
        }
    }
    println!(
        "compared {compared}, agree {agree}, Cordon-only accepts {cordon_only}, Linux-only accepts {linux_only}"
    );
}
