//! Every `negative/*.data` file of the conformance suite that carries raw bytecode and
//! an `-- error` section must be rejected by the decoder, with a message naming the
//! instruction.

use cordon_isa::{Insn, Program};
use std::path::PathBuf;

fn shared_dir() -> PathBuf {
    std::env::var_os("CORDON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// Parse a `-- raw` section: either one 64-bit hex word per line (`0x...`) or bytes.
fn parse_raw(text: &str) -> Vec<Insn> {
    let mut insns = Vec::new();
    let mut bytes = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        if let Some(hex) = line.strip_prefix("0x") {
            insns.push(Insn::from_u64(u64::from_str_radix(hex, 16).unwrap()));
        } else {
            for b in line.split_whitespace() {
                bytes.push(u8::from_str_radix(b, 16).unwrap());
            }
        }
    }
    for c in bytes.chunks(8) {
        insns.push(Insn::from_bytes(c.try_into().unwrap()));
    }
    insns
}

fn section(text: &str, name: &str) -> Option<String> {
    let marker = format!("-- {name}");
    let start = text.lines().position(|l| l.trim() == marker)?;
    let lines: Vec<&str> = text
        .lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with("-- "))
        .collect();
    Some(lines.join("\n"))
}

#[test]
fn negative_raw_programs_are_rejected() {
    let dir = shared_dir().join("conformance/negative");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("conformance/negative directory") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let (Some(raw), Some(_)) = (section(&text, "raw"), section(&text, "error")) else {
            continue;
        };
        let insns = parse_raw(&raw);
        match Program::new(insns) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => {
                assert!(e.index().is_some(), "{}: {e}", path.display());
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 45, "expected 45 raw negative cases");
}
