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
    // None at the moment. Entries look like
    // ("tc_mark.o/tc_mark", "ctx_out", "why it differs").
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

/// Packets of a classic little-endian pcap file (what demo/make_pcap.py writes).
fn pcap_packets(bytes: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes(), "classic pcap");
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(bytes[at + 16..at + 16 + len].to_vec());
        at += 16 + len;
    }
    out
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The demo end to end: `cordon run --pcap` over demo/sample.pcap with the
/// demo rules gives the same count per XDP action, the same refused packets
/// and the same `fw_rules` hits and `fw_stats` counters as running every
/// packet of the capture through Linux.
#[test]
fn demo_capture_agrees_with_linux() {
    use std::collections::BTreeMap;
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let pcap = root.join("demo/sample.pcap");
    let rules = root.join("demo/rules.json");
    let obj = bpf_dir().join("xdp_firewall.o");
    let packets = pcap_packets(&std::fs::read(&pcap).unwrap());
    assert_eq!(packets.len(), 3000);

    // Linux.
    linux_side::pin_to_cpu0();
    let kobj = cordon_linux::require!(cordon_linux::KernelObject::load(&obj));
    for (k, v) in support::cases::demo_rules() {
        kobj.map_update("fw_rules", &k, &v).unwrap();
    }
    let prog = kobj.program("xdp_firewall").unwrap();
    let names = [
        "XDP_ABORTED",
        "XDP_DROP",
        "XDP_PASS",
        "XDP_TX",
        "XDP_REDIRECT",
    ];
    let mut linux_counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut linux_errors = 0u64;
    for p in &packets {
        match prog.test_run(&cordon_linux::TestRun::new(p)) {
            Ok(r) => {
                *linux_counts
                    .entry(names[r.retval as usize].to_string())
                    .or_default() += 1
            }
            Err(e) if e.errno() == Some(libc::EINVAL) => linux_errors += 1,
            Err(e) => panic!("{e}"),
        }
    }
    let linux_rules: BTreeMap<Vec<u8>, Vec<u8>> =
        kobj.dump_map("fw_rules").unwrap().into_iter().collect();
    let linux_stats: Vec<(u64, u64)> = kobj
        .dump_map_per_cpu("fw_stats")
        .unwrap()
        .into_iter()
        .map(|(_, cpus)| {
            cpus.iter().fold((0, 0), |(p, b), v| {
                (
                    p + u64::from_le_bytes(v[0..8].try_into().unwrap()),
                    b + u64::from_le_bytes(v[8..16].try_into().unwrap()),
                )
            })
        })
        .collect();
    println!("Linux: {linux_counts:?}, refused {linux_errors}, fw_stats {linux_stats:?}");

    // Cordon, through the command line.
    for engine in ["interp", "jit"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_cordon"))
            .args([
                "run",
                obj.to_str().unwrap(),
                "--pcap",
                pcap.to_str().unwrap(),
            ])
            .args(["--maps-file", rules.to_str().unwrap(), "--engine", engine])
            .args(["--json", "--dump-maps"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let counts: BTreeMap<String, u64> = v["results"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
            .collect();
        assert_eq!(counts, linux_counts, "{engine}: per-action counts");
        assert_eq!(v["errors"], linux_errors, "{engine}: refused packets");
        let rules: BTreeMap<Vec<u8>, Vec<u8>> = v["maps"]["fw_rules"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    unhex(e["key"].as_str().unwrap()),
                    unhex(e["value"].as_str().unwrap()),
                )
            })
            .collect();
        assert_eq!(rules, linux_rules, "{engine}: fw_rules (hits per rule)");
        let stats: Vec<(u64, u64)> = v["maps"]["fw_stats"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .fold((0, 0), |(p, b), c| {
                        let c = unhex(c.as_str().unwrap());
                        (
                            p + u64::from_le_bytes(c[0..8].try_into().unwrap()),
                            b + u64::from_le_bytes(c[8..16].try_into().unwrap()),
                        )
                    })
            })
            .collect();
        assert_eq!(
            stats, linux_stats,
            "{engine}: fw_stats (packets, bytes per verdict)"
        );
    }
}

/// Reference numbers for BENCHMARKS.md (not a check): Linux's own measure of
/// the firewall over the demo capture, `BPF_PROG_TEST_RUN` with `repeat`
/// (mean time per run inside the kernel, JIT-compiled, rules loaded).
/// `cargo test --release -p cordon-cli --test linux_compare linux_reference -- --ignored --nocapture`
#[test]
#[ignore = "timing reference, run by hand"]
fn linux_reference_throughput() {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let packets = pcap_packets(&std::fs::read(root.join("demo/sample.pcap")).unwrap());
    linux_side::pin_to_cpu0();
    let kobj = cordon_linux::require!(cordon_linux::KernelObject::load(
        &bpf_dir().join("xdp_firewall.o")
    ));
    for (k, v) in support::cases::demo_rules() {
        kobj.map_update("fw_rules", &k, &v).unwrap();
    }
    let prog = kobj.program("xdp_firewall").unwrap();
    let repeat = 100u32;
    let (mut total_ns, mut runs) = (0u64, 0u64);
    for p in packets.iter().filter(|p| p.len() >= 14) {
        let r = prog
            .test_run(&cordon_linux::TestRun::new(p).with_repeat(repeat))
            .unwrap();
        total_ns += r.duration_ns * u64::from(repeat);
        runs += u64::from(repeat);
    }
    let ns = total_ns as f64 / runs as f64;
    println!(
        "Linux {}: xdp_firewall over demo/sample.pcap: {ns:.1} ns per packet ({:.2} M packets/s), {runs} runs",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        1e3 / ns
    );
}
