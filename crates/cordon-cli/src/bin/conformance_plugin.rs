//! `cordon-conformance-plugin [MEMHEX] [--engine interp|jit] [--elf]`
//!
//! The bpf_conformance plugin: program bytes as base16 on stdin, r0 printed in
//! hex on stdout (exit 0); any error goes to stderr with a non-zero exit.

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut stdin = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut stdin) {
        eprintln!("cordon-conformance-plugin: cannot read the program from stdin: {e}");
        return ExitCode::from(2);
    }
    match cordon_exec::conformance::run_plugin(&args, &stdin) {
        Ok(r0) => {
            println!("{r0}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
