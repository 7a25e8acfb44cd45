//! `cordon`: run, verify, inspect, assemble and disassemble eBPF programs.

mod btfmt;
mod engine;
mod input;
mod mapinit;
mod objcmd;
mod objrun;
mod pcap;
mod redirect;
mod report;
mod retname;
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

/// Who loads the program (decides what the verifier allows).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// Linux with CAP_BPF + CAP_PERFMON (+ CAP_NET_ADMIN).
    Privileged,
    /// An unprivileged socket filter load.
    Unprivileged,
}

impl ProfileArg {
    pub fn verifier(self) -> cordon::Profile {
        match self {
            ProfileArg::Privileged => cordon::Profile::Privileged,
            ProfileArg::Unprivileged => cordon::Profile::Unprivileged,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run a program: a BPF ELF object (`.o`), raw bytecode (`.bin`) or assembly (`.s`).
    Run(Box<run::RunArgs>),
    /// Print a program in Linux's verifier-log syntax (or the suite's syntax).
    Disasm {
        /// BPF ELF object, `.bin` bytecode or `.s` assembly.
        file: PathBuf,
        /// Program of an object to print (default: every program).
        #[arg(long)]
        prog: Option<String>,
        /// Syntax of a `.s` input.
        #[arg(long, value_enum, default_value_t = Syntax::Auto)]
        syntax: Syntax,
        /// Print the bpf_conformance syntax instead of Linux's (raw programs only).
        #[arg(long)]
        suite: bool,
    },
    /// Show an object's programs, maps, relocations and kfuncs.
    Inspect {
        /// BPF ELF object.
        file: PathBuf,
    },
    /// Verify an object's programs: exit 0 when accepted, 1 when rejected (log on stderr).
    Verify {
        /// BPF ELF object.
        file: PathBuf,
        /// Program to verify (default: every program).
        #[arg(long)]
        prog: Option<String>,
        /// Verifier log level (Linux's bits: 1 = failing path, 2 = every instruction, 4 = statistics).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=7))]
        log_level: u32,
        /// Who loads the program.
        #[arg(long, value_enum, default_value_t = ProfileArg::Privileged)]
        profile: ProfileArg,
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
    // Output piped into `head` and friends: exit quietly when the reader
    // goes away instead of failing on EPIPE.
    // SAFETY: restoring the default disposition of SIGPIPE at start-up,
    // before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(*args).map(|()| ExitCode::SUCCESS),
        Command::Disasm {
            file,
            prog,
            syntax,
            suite,
        } => disasm(&file, prog.as_deref(), syntax, suite).map(|()| ExitCode::SUCCESS),
        Command::Inspect { file } => objcmd::inspect(&file).map(|()| ExitCode::SUCCESS),
        Command::Verify {
            file,
            prog,
            log_level,
            profile,
        } => objcmd::verify(&file, prog.as_deref(), log_level, profile.verifier()),
        Command::Asm {
            input,
            output,
            syntax,
        } => asm(&input, &output, syntax).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // 2: distinct from `verify`'s 1 (= rejected).
            ExitCode::from(2)
        }
    }
}

fn disasm(
    file: &std::path::Path,
    prog: Option<&str>,
    syntax: Syntax,
    suite: bool,
) -> anyhow::Result<()> {
    if input::is_object_file(file)? {
        if suite {
            anyhow::bail!("--suite applies to raw programs, not to objects");
        }
        return objcmd::disasm(file, prog);
    }
    if prog.is_some() {
        anyhow::bail!(
            "--prog applies to objects; {} is a raw program",
            file.display()
        );
    }
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
