//! Shared by the JIT tests: running one program on every engine and comparing.
#![allow(dead_code)]

use std::path::PathBuf;

use cordon_exec::jit::JitExecutable;
use cordon_exec::{ExecError, ExecOptions, Executable, HelperRegistry};
use cordon_isa::Program;

/// The shared directory (CORDON_SHARED, else ../../../shared from this crate).
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("CORDON_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")),
    }
}

/// Outcome of one run: r0 or the error's message, and the final input memory.
pub type Outcome = (Result<u64, String>, Vec<u8>);

fn outcome(r: Result<u64, ExecError>, mem: Vec<u8>) -> Outcome {
    (r.map_err(|e| e.to_string()), mem)
}

/// Run on the checked interpreter.
pub fn interp_checked(
    prog: &Program,
    helpers: &HelperRegistry,
    mem: &[u8],
    opts: ExecOptions,
) -> Outcome {
    let mut m = mem.to_vec();
    let r = Executable::checked(prog, helpers, opts)
        .map_err(|e| e.to_string())
        .and_then(|x| x.run(&mut m).map_err(|e| e.to_string()));
    (r, m)
}

/// Run on the checked JIT.
pub fn jit_checked(
    prog: &Program,
    helpers: &HelperRegistry,
    mem: &[u8],
    opts: ExecOptions,
) -> Outcome {
    let mut m = mem.to_vec();
    let exe = match JitExecutable::checked(prog, helpers, opts) {
        Ok(x) => x,
        Err(e) => return (Err(e.to_string()), m),
    };
    let r = exe.run(&mut m);
    outcome(r, m)
}

/// Run on the trusted JIT and the trusted interpreter.
///
/// # Safety
/// Only for programs whose checked run succeeded (all accesses were valid).
pub unsafe fn trusted_both(
    prog: &Program,
    helpers: &HelperRegistry,
    mem: &[u8],
    opts: ExecOptions,
) -> (Outcome, Outcome) {
    let mut m1 = mem.to_vec();
    let r1 = unsafe { Executable::trusted(prog, helpers, opts.clone()) }
        .map_err(|e| e.to_string())
        .and_then(|x| x.run(&mut m1).map_err(|e| e.to_string()));
    let mut m2 = mem.to_vec();
    let r2 = unsafe { JitExecutable::trusted(prog, helpers, opts) }
        .map_err(|e| e.to_string())
        .and_then(|x| x.run(&mut m2).map_err(|e| e.to_string()));
    ((r1, m1), (r2, m2))
}

/// Run `prog` on the checked interpreter and the checked JIT and require the same
/// outcome (r0 or error message, and memory); when it succeeded, also on both
/// trusted engines. Returns the common r0, or the common error message.
pub fn run_all_engines(
    prog: &Program,
    helpers: &HelperRegistry,
    mem: &[u8],
) -> Result<u64, String> {
    let opts = ExecOptions::named("test");
    let i = interp_checked(prog, helpers, mem, opts.clone());
    let j = jit_checked(prog, helpers, mem, opts.clone());
    if i != j {
        return Err(format!("interpreter {:?} != JIT {:?}", i, j));
    }
    if i.0.is_ok() {
        // SAFETY: the checked run succeeded, so every access of this input is valid.
        let (ti, tj) = unsafe { trusted_both(prog, helpers, mem, opts) };
        if ti != i {
            return Err(format!("trusted interpreter {:?} != checked {:?}", ti, i));
        }
        if tj != i {
            return Err(format!("trusted JIT {:?} != checked {:?}", tj, i));
        }
    }
    i.0
}
