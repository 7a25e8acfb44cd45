//! `cordon run`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use cordon_exec::{ExecOptions, Executable};

use crate::{Engine, Syntax, input};

#[derive(Args)]
pub struct RunArgs {
    /// Program file: `.bin` bytecode or `.s` assembly.
    file: PathBuf,
    /// Input bytes: the program gets r1 = pointer to them, r2 = their length.
    #[arg(long)]
    data_in: Option<PathBuf>,
    /// Write the input buffer, as the program left it, to this file.
    #[arg(long)]
    data_out: Option<PathBuf>,
    /// Run the program this many times (each run starts from the original input).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Execution engine.
    #[arg(long, value_enum, default_value_t = Engine::Interp)]
    engine: Engine,
    /// Syntax of a `.s` input.
    #[arg(long, value_enum, default_value_t = Syntax::Auto)]
    syntax: Syntax,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: RunArgs) -> Result<()> {
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    let program = input::load_program(&args.file, args.syntax)?;
    let data = match &args.data_in {
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => Vec::new(),
    };
    let name = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "prog".into());
    // Raw programs are not verified: they run in checked mode (every access
    // bounds-checked, instruction budget), with the conformance suite's helpers.
    let helpers = cordon_exec::conformance::conformance_helpers();
    let exe = match args.engine {
        Engine::Interp => Executable::checked(&program, &helpers, ExecOptions::named(&name))
            .with_context(|| format!("cannot load {}", args.file.display()))?,
        Engine::Jit => bail!("the JIT engine is not available in this build yet"),
    };
    let mut mem = data.clone();
    let mut retval = 0;
    let mut total = std::time::Duration::ZERO;
    for i in 0..args.repeat {
        if i > 0 {
            mem.copy_from_slice(&data);
        }
        let start = Instant::now();
        let r = exe.run(&mut mem);
        total += start.elapsed();
        retval = r.with_context(|| format!("{} failed", args.file.display()))?;
    }
    let duration_ns = total.as_nanos() / u128::from(args.repeat);
    if let Some(p) = &args.data_out {
        std::fs::write(p, &mem).with_context(|| format!("cannot write {}", p.display()))?;
    }
    if args.json {
        println!("{{\"retval\": {retval}, \"duration_ns\": {duration_ns}}}");
    } else {
        println!("retval: {retval}");
        println!("duration: {duration_ns} ns");
    }
    Ok(())
}
