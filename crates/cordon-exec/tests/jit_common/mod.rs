//! Shared by the JIT tests: running one program on every engine and comparing.
#![allow(dead_code)]

use std::cell::RefCell;
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

thread_local! {
    /// One input buffer per thread, reused by every run so that all engines see
    /// the input at the same address (r0 and error messages may contain it).
    static BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on a copy of `mem` placed at a stable address; returns the final memory.
pub fn with_input(mem: &[u8], f: impl FnOnce(&mut [u8]) -> Result<u64, String>) -> Outcome {
    BUF.with(|b| {
        let mut b = b.borrow_mut();
        if b.capacity() < 4096 {
            *b = Vec::with_capacity(4096);
        }
        assert!(mem.len() <= 4096, "test inputs are at most 4 KiB");
        b.clear();
        b.extend_from_slice(mem);
        let r = f(&mut b[..]);
        (r, b.clone())
    })
}

fn msg(r: Result<u64, ExecError>) -> Result<u64, String> {
    r.map_err(|e| e.to_string())
}

/// Run on the checked interpreter.
pub fn interp_checked(
    prog: &Program,
    helpers: &HelperRegistry,
    mem: &[u8],
    opts: ExecOptions,
) -> Outcome {
    match Executable::checked(prog, helpers, opts) {
        Ok(x) => with_input(mem, |m| msg(x.run(m))),
        Err(e) => (Err(e.to_string()), mem.to_vec()),
    }
}

/// Run on the checked JIT.
pub fn jit_checked(
    prog: &Program,
    helpers: &HelperRegistry,
    mem: &[u8],
    opts: ExecOptions,
) -> Outcome {
    match JitExecutable::checked(prog, helpers, opts) {
        Ok(x) => with_input(mem, |m| msg(x.run(m))),
        Err(e) => (Err(e.to_string()), mem.to_vec()),
    }
}

/// Zero the calling thread's shadow stack, so that trusted runs (which do not
/// zero their frames) of programs reading stack they never wrote are
/// deterministic.
pub fn clear_thread_stack() {
    if let Some(r) = cordon_exec::shadow_stack::current_thread_stack_range() {
        // SAFETY: the usable area of this thread's shadow stack is mapped
        // read-write, and no program runs on it right now.
        unsafe { std::ptr::write_bytes(r.start as *mut u8, 0, (r.end - r.start) as usize) };
    }
}

/// Run on the trusted interpreter and the trusted JIT.
///
/// # Safety
/// Only for programs whose checked run on this input succeeded (so every access
/// they make is valid).
pub unsafe fn trusted_both(
    prog: &Program,
    helpers: &HelperRegistry,
    mem: &[u8],
    opts: ExecOptions,
) -> (Outcome, Outcome) {
    clear_thread_stack();
    let i = match unsafe { Executable::trusted(prog, helpers, opts.clone()) } {
        Ok(x) => with_input(mem, |m| msg(x.run(m))),
        Err(e) => (Err(e.to_string()), mem.to_vec()),
    };
    clear_thread_stack();
    let j = match unsafe { JitExecutable::trusted(prog, helpers, opts) } {
        Ok(x) => with_input(mem, |m| msg(x.run(m))),
        Err(e) => (Err(e.to_string()), mem.to_vec()),
    };
    (i, j)
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
        return Err(format!("interpreter {i:?} != JIT {j:?}"));
    }
    if i.0.is_ok() {
        // SAFETY: the checked run succeeded, so every access of this input is valid.
        let (ti, tj) = unsafe { trusted_both(prog, helpers, mem, opts) };
        if ti != i {
            return Err(format!("trusted interpreter {ti:?} != checked {i:?}"));
        }
        if tj != i {
            return Err(format!("trusted JIT {tj:?} != checked {i:?}"));
        }
    }
    i.0
}
