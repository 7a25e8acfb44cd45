//! Fuzz the whole loader: any byte string must either parse into programs
//! that validate, or fail with an error — never panic or hang.
//!
//! Seed the corpus with the committed objects:
//! `mkdir -p corpus/parse && cp ../../../tests/bpf/*.o corpus/parse/`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(obj) = cordon_object::Object::parse(data) {
        for p in &obj.programs {
            assert!(p.program().is_ok(), "accepted program {} must validate", p.name);
        }
        let _ = obj.to_string();
    }
});
