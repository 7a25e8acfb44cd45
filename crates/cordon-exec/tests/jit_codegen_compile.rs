//! JIT compile time on a large straight-line program (the shape of the
//! benchmark suite's `unrolled` workload): every configuration compiles it to
//! code that gives the interpreter's result. `CORDON_JIT_TIMING=1` prints the
//! per-1,000-instruction compile time and Cranelift's pass timings.

mod jit_common;
use jit_common::*;

use cordon_exec::conformance::conformance_helpers;
use cordon_exec::jit::{JitConfig, JitExecutable, OptLevel, RegAlloc};
use cordon_exec::{ExecOptions, Mode};
use cordon_isa::{Program, assemble};

/// FNV-1a over `n` input bytes, fully unrolled (about 3 instructions a byte).
fn unrolled(n: usize) -> String {
    let mut s = String::from("lddw %r3, 0xcbf29ce484222325\nlddw %r2, 0x100000001b3\n");
    for i in 0..n {
        s.push_str(&format!(
            "ldxb %r4, [%r1+{i}]\nxor %r3, %r4\nmul %r3, %r2\n"
        ));
    }
    s.push_str("mov %r0, %r3\nexit\n");
    s
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn large_straight_line_program_compiles_fast_and_right_in_every_configuration() {
    let n = std::env::var("CORDON_JIT_UNROLL")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512usize);
    let p = Program::new(assemble(&unrolled(n)).expect("assembles")).expect("valid");
    let input: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
    let want = fnv(&input);
    assert_eq!(
        run_all_engines(&p, &conformance_helpers(), &input),
        Ok(want)
    );
    let show = std::env::var_os("CORDON_JIT_TIMING").is_some();
    for opt_level in [OptLevel::None, OptLevel::Speed] {
        for regalloc in [RegAlloc::Backtracking, RegAlloc::SinglePass] {
            let config = JitConfig {
                opt_level,
                regalloc,
                ..JitConfig::default()
            };
            let compile = || {
                // SAFETY: the program only reads its n-byte input.
                unsafe {
                    JitExecutable::compile_with(
                        &p,
                        &conformance_helpers(),
                        ExecOptions::named("unrolled"),
                        Mode::Trusted,
                        &config,
                    )
                }
                .expect("compiles")
            };
            let x = compile();
            let (r, _) = with_input(&input, |m| x.run(m).map_err(|e| e.to_string()));
            assert_eq!(r, Ok(want), "{config:?}");
            if show {
                let _ = cranelift_codegen::timing::take_current();
                let t = std::time::Instant::now();
                let rounds = 5;
                for _ in 0..rounds {
                    drop(compile());
                }
                let per = t.elapsed().as_secs_f64() * 1e3 / rounds as f64;
                let insns = p.len() as f64 / 1000.0;
                eprintln!(
                    "{opt_level:?}/{regalloc:?}: {per:.3} ms, {:.3} ms per 1,000 insns, {} bytes\n{}",
                    per / insns,
                    x.code_size(),
                    cranelift_codegen::timing::take_current()
                );
            }
        }
    }
}

/// A small program's compile time is not dominated by a fixed per-compile
/// cost: compiling it 50 times takes well under 50 ms per program in release
/// builds (`CORDON_JIT_TIMING=1` prints the phases).
#[test]
fn small_programs_compile_without_a_large_fixed_cost() {
    let p = Program::new(assemble(&unrolled(8)).expect("assembles")).expect("valid");
    let input: Vec<u8> = (0..8).map(|i| (i * 7 + 3) as u8).collect();
    let helpers = conformance_helpers();
    let compile = || {
        // SAFETY: the program only reads its 8-byte input.
        unsafe {
            JitExecutable::compile_with(
                &p,
                &helpers,
                ExecOptions::named("small"),
                Mode::Trusted,
                &JitConfig::default(),
            )
        }
        .expect("compiles")
    };
    let x = compile();
    let (r, _) = with_input(&input, |m| x.run(m).map_err(|e| e.to_string()));
    assert_eq!(r, Ok(fnv(&input)));
    let t = std::time::Instant::now();
    let rounds = 50;
    let mut in_drop = std::time::Duration::ZERO;
    for _ in 0..rounds {
        let x = compile();
        let d = std::time::Instant::now();
        drop(x);
        in_drop += d.elapsed();
    }
    let per = t.elapsed().as_secs_f64() * 1e3 / rounds as f64;
    let per_drop = in_drop.as_secs_f64() * 1e3 / rounds as f64;
    if std::env::var_os("CORDON_JIT_TIMING").is_some() {
        eprintln!(
            "small program ({} insns): {per:.3} ms per compile and drop ({per_drop:.3} ms drop)",
            p.len()
        );
    }
    assert!(per < 50.0, "{per} ms per compile of {} insns", p.len());
}
