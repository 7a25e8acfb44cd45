//! Long-running soundness fuzzing: generated and mutated programs; whatever
//! the verifier accepts runs in cordon-exec's checked interpreter.
//!
//! `cargo run --release -p cordon-verifier --example soundness_fuzz -- --seconds 300 [--seed N] [--generated-only]`
//!
//! Prints the counts (generated, decodable, accepted, executed runs) and
//! exits 1 with the failing program on the first violation.

#[path = "../tests/fuzz/mod.rs"]
mod fuzz;

use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let seconds = arg("--seconds").unwrap_or(60);
    let seed = arg("--seed").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    let mut rng = fuzz::Rng::new(seed);
    // `--generated-only`: no real programs in the corpus (what the proptest does).
    let real = if args.iter().any(|a| a == "--generated-only") {
        Vec::new()
    } else {
        fuzz::real_programs()
    };
    println!("seed {seed}, {} real programs in the corpus", real.len());
    let mut corpus = fuzz::Corpus { entries: real };
    let mut counts = fuzz::Counts::default();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut next_report = start + Duration::from_secs(30);
    while Instant::now() < deadline {
        for _ in 0..100 {
            if let Some(failure) = fuzz::step(&mut rng, &mut corpus, &mut counts) {
                println!("UNSOUND after {counts:?}:\n{failure}");
                std::process::exit(1);
            }
        }
        if Instant::now() >= next_report {
            println!("{:>5}s {counts:?}", start.elapsed().as_secs());
            next_report += Duration::from_secs(30);
        }
    }
    println!(
        "done: {:.1}s, generated {}, decodable {}, accepted {}, executed runs {} (corpus {})",
        start.elapsed().as_secs_f64(),
        counts.generated,
        counts.valid,
        counts.accepted,
        counts.executed_runs,
        corpus.entries.len()
    );
}
