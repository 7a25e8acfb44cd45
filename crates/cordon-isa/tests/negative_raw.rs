//! Every `negative/*.data` file of the conformance suite that carries raw bytecode and
//! an `-- error` section must be rejected by the decoder, with a message naming the
//! instruction.

use cordon_isa::{Program, datafile};
use std::path::PathBuf;

fn shared_dir() -> PathBuf {
    std::env::var_os("CORDON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

#[test]
fn negative_raw_programs_are_rejected() {
    let dir = shared_dir().join("conformance/negative");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("conformance/negative directory") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let tc = datafile::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (Some(raw), Some(_)) = (tc.raw, tc.error) else {
            continue;
        };
        match Program::new(raw) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => {
                assert!(e.index().is_some(), "{}: {e}", path.display());
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 45, "expected 45 raw negative cases");
}
