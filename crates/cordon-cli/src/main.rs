//! `cordon`: run, verify, inspect, assemble and disassemble eBPF programs.

mod input;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "cordon",
    version,
    about = "Cordon: an embeddable eBPF runtime that keeps extensions safe while they run"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Which assembly syntax a text file uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Syntax {
    /// Guess: the bpf_conformance syntax when the text names `%r` registers, else Linux's.
    Auto,
    /// The bpf_conformance / uBPF syntax (`mov %r0, 1`).
    Suite,
    /// Linux's verifier-log / llvm-objdump syntax (`r0 = 1`).
    Linux,
}

/// Execution engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// The interpreter.
    Interp,
    /// The Cranelift JIT.
    Jit,
}

#[derive(Subcommand)]
enum Command {
    /// Run a program: raw bytecode (`.bin`) or assembly (`.s`).
    Run(run::RunArgs),
    /// Print a program in Linux's verifier-log syntax (or the suite's syntax).
    Disasm {
        /// Program file: `.bin` bytecode or `.s` assembly.
        file: PathBuf,
        /// Syntax of a `.s` input.
        #[arg(long, value_enum, default_value_t = Syntax::Auto)]
        syntax: Syntax,
        /// Print the bpf_conformance syntax instead of Linux's.
        #[arg(long)]
        suite: bool,
    },
    /// Assemble a `.s` file into raw bytecode.
    Asm {
        /// Assembly input.
        input: PathBuf,
        /// Bytecode output (8-byte little-endian instructions).
        output: PathBuf,
        /// Syntax of the input.
        #[arg(long, value_enum, default_value_t = Syntax::Auto)]
        syntax: Syntax,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Disasm {
            file,
            syntax,
            suite,
        } => disasm(&file, syntax, suite),
        Command::Asm {
            input,
            output,
            syntax,
        } => asm(&input, &output, syntax),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn disasm(file: &std::path::Path, syntax: Syntax, suite: bool) -> anyhow::Result<()> {
    let program = input::load_program(file, syntax)?;
    let text = if suite {
        cordon_isa::disasm::disassemble_suite(program.insns())?
    } else {
        let opts = cordon_isa::disasm::DisasmOptions {
            annotate_calls: true,
            ..Default::default()
        };
        cordon_isa::disasm::disassemble_with(program.insns(), &opts)?
    };
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
    Ok(())
}

fn asm(input: &std::path::Path, output: &std::path::Path, syntax: Syntax) -> anyhow::Result<()> {
    let program = input::assemble_file(input, syntax)?;
    std::fs::write(output, program.to_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", output.display()))?;
    eprintln!("{}: {} instructions", output.display(), program.len());
    Ok(())
}
