//! The bpf_conformance suite through the checked interpreter: r1 = mem, r2 = its
//! length, 512-byte stack, helper 5 = unwind. Every case must pass.

use std::path::PathBuf;

use cordon_exec::conformance::{conformance_helpers, run_plugin};
use cordon_exec::{ExecOptions, Executable};
use cordon_isa::{Program, datafile};

fn shared_dir() -> PathBuf {
    match std::env::var_os("CORDON_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")),
    }
}

fn cases() -> Vec<(String, datafile::TestCase)> {
    let dir = shared_dir().join("conformance/tests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&p).unwrap();
            let tc = datafile::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, tc)
        })
        .collect()
}

fn run_case(tc: &datafile::TestCase) -> Result<u64, String> {
    let insns = tc.program_insns().map_err(|e| format!("assembly: {e}"))?;
    let program = Program::new(insns).map_err(|e| format!("decode: {e}"))?;
    let exe = Executable::checked(
        &program,
        &conformance_helpers(),
        ExecOptions::named("conformance"),
    )
    .map_err(|e| format!("load: {e}"))?;
    let mut mem = tc.mem.clone();
    exe.run(&mut mem).map_err(|e| format!("run: {e}"))
}

#[test]
fn conformance_suite_passes_in_checked_mode() {
    let cases = cases();
    let mut failures = Vec::new();
    let mut passed = 0;
    for (name, tc) in &cases {
        let Some(expected) = tc.result else {
            failures.push(format!("{name}: no expected result"));
            continue;
        };
        match run_case(tc) {
            Ok(r0) if r0 == expected => passed += 1,
            Ok(r0) => failures.push(format!("{name}: r0 = {r0:#x}, expected {expected:#x}")),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    eprintln!("conformance: {passed} of {} passed", cases.len());
    assert_eq!(cases.len(), 313, "expected the full suite of 313 cases");
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The same suite through the plugin entry point (hex on "stdin", memory as the
/// first argument in the runner's format `xx  yy  `), comparing the printed r0.
#[test]
fn conformance_suite_passes_through_the_plugin_protocol() {
    let mut failures = Vec::new();
    for (name, tc) in cases() {
        let insns = tc.program_insns().unwrap();
        let code: String = cordon_isa::insn::to_bytes(&insns)
            .iter()
            .map(|b| format!("{b:02x} "))
            .collect();
        let mut args = Vec::new();
        if !tc.mem.is_empty() {
            args.push(
                tc.mem
                    .iter()
                    .map(|b| format!("{b:02x}  "))
                    .collect::<String>(),
            );
        }
        args.push("--engine".to_string());
        args.push("interp".to_string());
        match run_plugin(&args, &code) {
            Ok(out) => {
                let r0 = u64::from_str_radix(&out, 16).unwrap();
                if Some(r0) != tc.result {
                    failures.push(format!("{name}: printed {out}, expected {:?}", tc.result));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
