//! Compiles the benchmark workloads natively (`-DNATIVE -O2`) from the same
//! C source as the BPF objects in `benches/workloads`: the speed limit.
//!
//! The compiler is `$CORDON_BENCH_CC`, else clang-19 when it is installed
//! (the same front and middle end as the BPF build), else the `cc` crate's
//! default C compiler.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches/workloads");
    let source = dir.join("workloads.c");
    println!("cargo:rerun-if-changed={}", source.display());
    println!(
        "cargo:rerun-if-changed={}",
        dir.join("workloads.h").display()
    );
    println!("cargo:rerun-if-env-changed=CORDON_BENCH_CC");

    let compiler = std::env::var("CORDON_BENCH_CC").ok().or_else(|| {
        Command::new("clang-19")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|_| "clang-19".to_string())
    });
    let base = || {
        let mut b = cc::Build::new();
        if let Some(c) = &compiler {
            b.compiler(c);
        }
        // The same optimisation level as the BPF build; no -march: the
        // baseline x86-64 target (no popcnt), as a distribution builds it.
        b.file(&source)
            .define("NATIVE", None)
            .opt_level(2)
            .flag_if_supported("-fno-strict-aliasing")
            .warnings(true);
        b
    };
    // native_<name>: plain -O2 (auto-vectorised where the compiler can).
    let build = base();
    build.compile("cordon_bench_workloads");
    // native_novec_<name>: -O2 without auto-vectorisation, the scalar
    // reference (BPF has no SIMD).
    let mut scalar = base();
    scalar
        .define("NATIVE_PREFIX", "native_novec_")
        .flag_if_supported("-fno-vectorize")
        .flag_if_supported("-fno-slp-vectorize")
        .flag_if_supported("-fno-tree-vectorize");
    scalar.compile("cordon_bench_workloads_novec");
    let used = build.get_compiler();
    println!(
        "cargo:rustc-env=CORDON_BENCH_NATIVE_CC={}",
        used.path().display()
    );
}
