//! The whole bpf_conformance suite through the `cordon-conformance-plugin` binary,
//! exactly as the suite's runner drives it: memory as the first argument, the
//! program as base16 on stdin, r0 in hex on stdout — on both engines.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn shared_dir() -> PathBuf {
    std::env::var_os("CORDON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x} ")).collect()
}

fn run_plugin(engine: &str, mem: &[u8], program: &[u8]) -> Result<u64, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cordon-conformance-plugin"));
    if !mem.is_empty() {
        cmd.arg(hex(mem));
    }
    let mut child = cmd
        .args(["--engine", engine])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plugin");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(hex(program).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8(out.stdout).unwrap();
    u64::from_str_radix(text.trim(), 16).map_err(|e| format!("bad output {text:?}: {e}"))
}

fn suite(engine: &str) {
    let dir = shared_dir().join("conformance/tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("conformance tests directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for path in &files {
        let case = cordon_isa::datafile::parse(&std::fs::read_to_string(path).unwrap()).unwrap();
        let insns = case.program_insns().unwrap();
        let program = cordon_isa::insn::to_bytes(&insns);
        let expected = case.result.expect("result section");
        match run_plugin(engine, &case.mem, &program) {
            Ok(r0) if r0 == expected => {}
            other => failures.push(format!(
                "{}: {other:?}, expected {expected:#x}",
                path.display()
            )),
        }
    }
    assert_eq!(files.len(), 313);
    assert!(
        failures.is_empty(),
        "{engine}: {} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "conformance via plugin, engine {engine}: {} of {} pass",
        files.len(),
        files.len()
    );
}

#[test]
fn conformance_suite_through_plugin_interp() {
    suite("interp");
}

#[test]
fn conformance_suite_through_plugin_jit() {
    suite("jit");
}

#[test]
fn plugin_rejects_bad_input_with_a_message() {
    let err = run_plugin("interp", &[], &[0xff; 8]).unwrap_err();
    assert!(err.contains("instruction 0"), "{err}");
    let err = run_plugin("vm", &[], &[0x95, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
    assert!(err.contains("unknown engine"), "{err}");
}
