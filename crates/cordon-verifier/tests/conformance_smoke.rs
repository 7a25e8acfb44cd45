//! Robustness: run the verifier over every program of the bpf_conformance
//! suite (as a generic program whose context is the test's memory). Each must
//! be verified or rejected with a message, never panic, and finish quickly.
//! The suite tests instruction semantics, not verifier rules, so no verdict
//! is asserted except for a few programs whose verdict is certain.

use cordon_isa::{Program, datafile};
use cordon_verifier::{ProgType, VerifyEnv, verify};
use std::path::PathBuf;

fn shared() -> PathBuf {
    std::env::var_os("CORDON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

#[test]
fn conformance_programs_never_panic() {
    let dir = shared().join("conformance/tests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        panic!("conformance suite not found at {}", dir.display());
    };
    let mut seen = 0;
    let mut accepted = 0;
    let mut verdicts = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().and_then(|x| x.to_str()) != Some("data") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(case) = datafile::parse(&text) else {
            continue;
        };
        let Ok(insns) = case.program_insns() else {
            continue;
        };
        let Ok(prog) = Program::new(insns) else {
            continue;
        };
        let env = VerifyEnv::new(ProgType::Generic {
            ctx_size: case.mem.len().max(1) as u32,
            ctx_writable: true,
        })
        .with_log_level(1);
        let started = std::time::Instant::now();
        let r = verify(&prog, &env);
        assert!(
            started.elapsed().as_secs() < 20,
            "{} took too long",
            path.display()
        );
        seen += 1;
        if r.is_ok() {
            accepted += 1;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        verdicts.push((name, r.map(|_| ()).map_err(|e| e.message)));
    }
    if std::env::var_os("VERDICTS").is_some() {
        for (n, v) in &verdicts {
            println!("{n}: {v:?}");
        }
    }
    assert!(seen > 100, "only {seen} programs");
    assert!(accepted > seen / 4, "accepted only {accepted} of {seen}");
    // Straight-line arithmetic programs must verify.
    for (name, v) in &verdicts {
        if matches!(
            name.as_str(),
            "add.data" | "add64.data" | "alu-arith.data" | "mov.data"
        ) {
            assert!(v.is_ok(), "{name}: {v:?}");
        }
    }
}
