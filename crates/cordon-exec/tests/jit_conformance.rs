//! The whole bpf_conformance suite on the JIT (checked and trusted mode), each
//! case also run on the interpreter and compared (r0 and the final memory).

mod jit_common;
use jit_common::*;

use cordon_exec::conformance::conformance_helpers;
use cordon_isa::Program;
use cordon_isa::datafile;

#[test]
fn conformance_suite_on_the_jit() {
    let dir = shared_dir().join("conformance/tests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 313, "expected the 313 cases of the suite");
    let helpers = conformance_helpers();
    let mut failures = Vec::new();
    let mut passed = 0;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        let case = match datafile::parse(&text) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: parse: {e}"));
                continue;
            }
        };
        let outcome = (|| -> Result<u64, String> {
            let insns = case.program_insns().map_err(|e| format!("asm: {e}"))?;
            let prog = Program::new(insns).map_err(|e| format!("decode: {e}"))?;
            let both = run_all_engines(&prog, &helpers, &case.mem)?;
            Ok(both)
        })();
        match (outcome, case.result, &case.error) {
            (Ok(r0), Some(want), _) if r0 == want => passed += 1,
            (Ok(r0), Some(want), _) => {
                failures.push(format!("{name}: r0 = {r0:#x}, want {want:#x}"))
            }
            (Err(e), None, Some(_)) => {
                let _ = e;
                passed += 1
            }
            (Err(e), _, _) => failures.push(format!("{name}: {e}")),
            (Ok(r0), None, _) => {
                failures.push(format!("{name}: r0 = {r0:#x} but an error was expected"))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    assert_eq!(passed, 313);
}

#[test]
fn plugin_entry_point_runs_the_jit() {
    let text = std::fs::read_to_string(shared_dir().join("conformance/tests/ldxdw.data")).unwrap();
    let case = datafile::parse(&text).unwrap();
    let code = cordon_isa::insn::to_bytes(&case.program_insns().unwrap());
    let mut mem = case.mem.clone();
    let r0 = cordon_exec::jit::run_conformance(&code, &mut mem).unwrap();
    assert_eq!(Some(r0), case.result);
    // A program that fails names the instruction, like the interpreter's plugin.
    let bad =
        cordon_isa::insn::to_bytes(&cordon_isa::assemble("ldxdw %r0, [%r1+64]\nexit").unwrap());
    let e = cordon_exec::jit::run_conformance(&bad, &mut mem).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("program failed: instruction 0: load of 8 bytes"),
        "{e}"
    );
    let e = cordon_exec::jit::run_conformance(&[0u8; 7], &mut mem).unwrap_err();
    assert!(e.to_string().starts_with("program rejected:"), "{e}");
}
