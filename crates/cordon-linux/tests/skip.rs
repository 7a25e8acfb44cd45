//! The skip path: with CORDON_LINUX_DISABLE set every entry point reports
//! `Unavailable`, and `require!` turns that into a printed skip. (Its own
//! test binary with a single test, so setting the variable races nothing.)

use cordon_isa::Insn;
use cordon_linux::{
    Btf, KernelError, KernelObject, Map, MapSpec, ProgLoad, ProgType, available, require, test_run,
    verdict,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

static AFTER_REQUIRE: AtomicBool = AtomicBool::new(false);

fn skipped_body() {
    let _map = require!(Map::create(&MapSpec::array(8, 1)));
    AFTER_REQUIRE.store(true, Ordering::SeqCst);
}

fn assert_unavailable<T: std::fmt::Debug>(what: &str, r: Result<T, KernelError>) {
    match r {
        Err(KernelError::Unavailable(reason)) => {
            assert!(reason.contains("CORDON_LINUX_DISABLE"), "{what}: {reason}");
        }
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[test]
fn disabled_by_environment() {
    // SAFETY: this binary runs only this test, so no other thread reads the
    // environment concurrently.
    unsafe { std::env::set_var("CORDON_LINUX_DISABLE", "1") };
    let exit = [Insn::new(0xb7, 0, 0, 0, 0), Insn::new(0x95, 0, 0, 0, 0)];
    assert_unavailable("available", available());
    assert_unavailable("Map::create", Map::create(&MapSpec::array(8, 1)));
    assert_unavailable("verdict", verdict(ProgType::XDP, &exit, &[]));
    assert_unavailable("load", ProgLoad::new(ProgType::XDP, &exit).load());
    assert_unavailable(
        "test_run",
        test_run(ProgType::XDP, &exit, &[], &[0; 14], None, 1),
    );
    assert_unavailable("Btf::load", Btf::load(&[]));
    let obj = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/bpf/tail_call.o"
    ));
    assert_unavailable("KernelObject::load", KernelObject::load(obj));
    assert_unavailable(
        "KernelObject::verdict",
        KernelObject::verdict(obj, "tail_entry"),
    );

    skipped_body();
    assert!(
        !AFTER_REQUIRE.load(Ordering::SeqCst),
        "require! did not return early"
    );

    // "0" means enabled again.
    unsafe { std::env::set_var("CORDON_LINUX_DISABLE", "0") };
    match available() {
        Ok(()) => {}
        Err(KernelError::Unavailable(reason)) => {
            assert!(!reason.contains("CORDON_LINUX_DISABLE"), "{reason}");
        }
        Err(e) => panic!("{e}"),
    }
}
