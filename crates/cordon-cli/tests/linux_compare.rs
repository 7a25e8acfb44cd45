//! Every tests/bpf program run in Cordon (interpreter and JIT) and in the
//! Linux kernel (cordon-linux) on the same packets: return value, output
//! packet and map contents must agree; per-CPU maps are compared as the sum
//! over CPUs (each side runs every packet on one CPU). Programs Linux cannot
//! load are checked against tests/bpf/README.md's predictions instead.
//!
//! Where bpf() is not permitted the Linux half is skipped with a printed
//! `skipped:` line and the README predictions are still checked.

mod support {
    pub mod cases;
    pub mod cordon_side;
    pub mod linux_side;
    pub mod outcome;
    pub mod packets;
}

use std::path::PathBuf;

use support::cases::{Case, LinuxLoad, all_cases};
use support::cordon_side::{self, Engine};
use support::linux_side;
use support::outcome::{Outcome, check_expected, diff};

/// Differences known today, by case name, with the reason; each must still
/// show up (with `needle` in the problem text), so the list cannot go stale:
/// when Cordon starts agreeing the test fails until the entry is removed.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "tc_mark.o/tc_mark",
        "ctx_out",
        "Cordon's skb ctx_out lacks __sk_buff.wire_len (+160), which Linux sets to the packet length",
    ),
    (
        "tc_mark.o/cls_len",
        "ctx_out",
        "Cordon's skb ctx_out lacks __sk_buff.wire_len (+160), which Linux sets to the packet length",
    ),
    (
        "lpm_bloom.o/lpm_bloom",
        "lpm_trie",
        "the runtime has no LPM trie / bloom filter maps",
    ),
    (
        "perf_output.o/perf_sample",
        "perf_event_array",
        "the runtime has no perf_event_array maps",
    ),
    (
        "bloom_ulong.o/bloom_len",
        "bloom_filter",
        "the runtime has no bloom filter maps",
    ),
];

fn bpf_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bpf"))
}

/// Result of one case, for the summary table.
struct Row {
    name: String,
    fields: String,
    linux: String,
    problems: Vec<String>,
}

fn compare_case(case: &Case) -> Row {
    let dir = bpf_dir();
    let mut problems = Vec::new();
    let mut fields = vec!["retval", "data_out"];
    if case.ctx {
        fields.push("ctx_out");
    }
    if !case.maps.is_empty() {
        fields.push("maps");
    }
    let linux = match linux_side::run(case, &dir) {
        Ok(o) => Some(o),
        Err(e) => match e.skip() {
            Some(reason) => {
                if case.linux != LinuxLoad::None {
                    cordon_linux::report_skip(&format!("{}: Linux side: {reason}", case.name));
                }
                None
            }
            None => {
                problems.push(format!("Linux: {e}"));
                None
            }
        },
    };
    if let (Some(l), Some(e)) = (&linux, &case.expect) {
        problems.extend(check_expected("Linux", l, e));
    }
    for engine in [Engine::Interp, Engine::Jit] {
        let label = format!("Cordon-{engine:?}");
        let c: Outcome = match cordon_side::run(case, &dir, engine) {
            Ok(o) => o,
            Err(e) => {
                problems.push(format!("{label}: {e}"));
                continue;
            }
        };
        if let Some(e) = &case.expect {
            problems.extend(check_expected(&label, &c, e));
        }
        if let Some(l) = &linux {
            problems.extend(diff("Linux", l, &label, &c));
        }
    }
    Row {
        name: case.name.clone(),
        fields: fields.join(", "),
        linux: match (&linux, case.linux) {
            (Some(_), LinuxLoad::Libbpf) => "compared (libbpf)".into(),
            (Some(_), LinuxLoad::Raw) => "compared (raw bpf())".into(),
            (None, LinuxLoad::None) => "not loadable: README values".into(),
            (_, _) => "skipped: README values".into(),
        },
        problems,
    }
}

#[test]
fn every_test_program_agrees_with_linux() {
    let cases = all_cases();
    // Every object in tests/bpf has at least one case.
    let mut objects: Vec<String> = std::fs::read_dir(bpf_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".o"))
        .collect();
    objects.sort();
    for o in &objects {
        assert!(
            cases.iter().any(|c| c.object == o),
            "tests/bpf/{o} has no comparison case"
        );
    }
    let rows: Vec<Row> = cases.iter().map(compare_case).collect();
    let mut table = String::from("\n| program | compared | Linux | agree |\n|---|---|---|---|\n");
    let mut failures = Vec::new();
    for r in &rows {
        let known = KNOWN_DIFFERENCES.iter().find(|(n, _, _)| *n == r.name);
        let verdict = match (known, r.problems.is_empty()) {
            (None, true) => "yes".to_string(),
            (None, false) => {
                failures.push(format!("{}:\n  {}", r.name, r.problems.join("\n  ")));
                "NO".to_string()
            }
            (Some((_, needle, why)), false) => {
                if !r.problems.iter().any(|p| p.contains(needle)) {
                    failures.push(format!(
                        "{}: differs, but not as KNOWN_DIFFERENCES says ({needle}):\n  {}",
                        r.name,
                        r.problems.join("\n  ")
                    ));
                }
                format!("no (known: {why})")
            }
            (Some(_), true) => {
                failures.push(format!(
                    "{}: now agrees with Linux; remove it from KNOWN_DIFFERENCES",
                    r.name
                ));
                "yes (listed as known difference)".to_string()
            }
        };
        table.push_str(&format!(
            "| {} | {} | {} | {verdict} |\n",
            r.name, r.fields, r.linux
        ));
    }
    // Shown with --nocapture, and in the failure message.
    println!("{table}");
    for r in &rows {
        if !r.problems.is_empty() {
            println!("{}:\n  {}", r.name, r.problems.join("\n  "));
        }
    }
    assert!(failures.is_empty(), "{table}\n{}", failures.join("\n"));
}

#[test]
fn deep_calls_model_matches_readme() {
    // The README's value for a 100-byte packet; checks the Rust model of the chain.
    assert_eq!(support::cases::level_chain_for_test(100), 505);
}
