//! The assemblers and disassemblers against the whole conformance suite:
//! every program assembles, validates, and survives both textual round trips
//! byte for byte; every negative text is rejected.

use cordon_isa::datafile::{self, TestCase};
use cordon_isa::disasm::{DisasmOptions, disassemble_suite, disassemble_with};
use cordon_isa::{Insn, Program, assemble, assemble_linux, disassemble};
use std::path::{Path, PathBuf};

fn shared_dir() -> PathBuf {
    std::env::var_os("CORDON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

fn cases(sub: &str) -> Vec<(PathBuf, TestCase)> {
    let dir = shared_dir().join("conformance").join(sub);
    let mut out: Vec<(PathBuf, TestCase)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let tc = datafile::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, tc)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

fn bytes(insns: &[Insn]) -> Vec<u8> {
    cordon_isa::insn::to_bytes(insns)
}

#[test]
fn every_conformance_program_assembles_and_validates() {
    let all = cases("tests");
    assert_eq!(all.len(), 313);
    for (path, tc) in &all {
        let insns = tc
            .program_insns()
            .unwrap_or_else(|e| panic!("{}: {e}", name(path)));
        assert!(tc.result.is_some(), "{}: no result", name(path));
        Program::new(insns.clone()).unwrap_or_else(|e| panic!("{}: {e}", name(path)));
        // Where both forms are given, the assembler must agree with the raw words.
        if let (Some(asm), Some(raw)) = (&tc.asm, &tc.raw) {
            assert_eq!(&assemble(asm).unwrap(), raw, "{}", name(path));
        }
    }
}

#[test]
fn suite_syntax_round_trip() {
    for (path, tc) in cases("tests") {
        let insns = tc.program_insns().unwrap();
        let text = disassemble_suite(&insns).unwrap_or_else(|e| panic!("{}: {e}", name(&path)));
        let again = assemble(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", name(&path)));
        assert_eq!(bytes(&again), bytes(&insns), "{}:\n{text}", name(&path));
    }
}

#[test]
fn linux_syntax_round_trip() {
    for (path, tc) in cases("tests") {
        let insns = tc.program_insns().unwrap();
        // The verifier-log listing (with `N: (op)` prefixes, which are checked) ...
        let listing = disassemble(&insns).unwrap_or_else(|e| panic!("{}: {e}", name(&path)));
        let again =
            assemble_linux(&listing).unwrap_or_else(|e| panic!("{}: {e}\n{listing}", name(&path)));
        assert_eq!(bytes(&again), bytes(&insns), "{}:\n{listing}", name(&path));
        // ... and the bare text, with call annotations as comments.
        let opts = DisasmOptions {
            annotate_calls: true,
            ..Default::default()
        };
        let bare: String = disassemble_with(&insns, &opts)
            .unwrap()
            .lines()
            .map(|l| {
                let text = l.split_once(") ").unwrap().1;
                format!("    {text}\n")
            })
            .collect();
        let again =
            assemble_linux(&bare).unwrap_or_else(|e| panic!("{}: {e}\n{bare}", name(&path)));
        assert_eq!(bytes(&again), bytes(&insns), "{}:\n{bare}", name(&path));
    }
}

/// Negative asm cases that are *not* assembler errors, and why.
const NOT_ASSEMBLER_ERRORS: [(&str, &str); 2] = [
    // `or %r0, %r10` reads the frame pointer, which is valid eBPF; the file tests
    // that a runner reports an `-- error` expectation the plugin does not meet.
    ("error.data", "valid program, runner-level negative test"),
    // Valid program whose `-- result` is deliberately wrong (the runner must notice).
    (
        "incorrect_return_value_high_bits.data",
        "valid program, wrong expected result",
    ),
];

#[test]
fn negative_asm_texts_are_rejected() {
    let mut rejected = 0;
    for (path, tc) in cases("negative") {
        let n = name(&path);
        if tc.raw.is_some() {
            continue;
        }
        if let Some((_, why)) = NOT_ASSEMBLER_ERRORS.iter().find(|(f, _)| *f == n) {
            let insns = tc
                .program_insns()
                .unwrap_or_else(|e| panic!("{n} ({why}): {e}"));
            Program::new(insns).unwrap_or_else(|e| panic!("{n} ({why}): {e}"));
            continue;
        }
        let err = match tc.program_insns() {
            Ok(insns) => panic!("{n} was assembled: {insns:?}"),
            Err(e) => e,
        };
        // The expected message, when the file gives one, must appear in ours (the
        // unknown-directive file expects "Invalid register" for an empty program).
        if let Some(expected) = &tc.error
            && !expected.is_empty()
            && n != "invalid_unknown_directive.data"
        {
            assert!(
                err.message.contains(expected.as_str()),
                "{n}: expected `{expected}`, got `{err}`"
            );
        }
        // Cases that expect the suite's "0x11" failure value are assembler errors too.
        if tc.asm.is_some() {
            assert!(
                err.line > 0 || err.message.contains("no instructions"),
                "{n}: {err}"
            );
        }
        rejected += 1;
    }
    // 15 texts: 13 rejected (2 of them have no program at all) + 2 runner-level cases.
    assert_eq!(rejected, 13);
}
