//! `cordon run`: raw programs here, objects in [`crate::objrun`].

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use cordon_exec::jit::JitExecutable;
use cordon_exec::{ExecOptions, Executable};

use crate::{Engine, ProfileArg, Syntax, input, objrun};

#[derive(Args)]
pub struct RunArgs {
    /// BPF ELF object (`.o`), raw bytecode (`.bin`) or assembly (`.s`).
    pub file: PathBuf,
    /// Program of the object to run (may be omitted when the object has one).
    #[arg(long)]
    pub prog: Option<String>,
    /// Packet bytes (raw programs: r1 = pointer to them, r2 = their length).
    #[arg(long)]
    pub data_in: Option<PathBuf>,
    /// Write the packet, as the program left it, to this file.
    #[arg(long)]
    pub data_out: Option<PathBuf>,
    /// Input context (`struct xdp_md` / `struct __sk_buff` bytes, Linux's
    /// test_run `ctx_in` rules; objects only).
    #[arg(long, value_name = "FILE", conflicts_with = "pcap")]
    pub ctx_in: Option<PathBuf>,
    /// Write the context after the run (Linux's `ctx_out`) to this file (objects only).
    #[arg(long, value_name = "FILE", conflicts_with = "pcap")]
    pub ctx_out: Option<PathBuf>,
    /// Run over every packet of a pcap or pcapng capture (objects only).
    #[arg(long, conflicts_with_all = ["data_in", "data_out"])]
    pub pcap: Option<PathBuf>,
    /// Run the program this many times (each run starts from the original input).
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Execution engine.
    #[arg(long, value_enum, default_value_t = Engine::Interp)]
    pub engine: Engine,
    /// Who loads the program (objects only).
    #[arg(long, value_enum, default_value_t = ProfileArg::Privileged)]
    pub profile: ProfileArg,
    /// Skip the verifier: run in checked mode (every access bounds-checked,
    /// instruction budget) instead of verified-then-trusted (objects only).
    #[arg(long)]
    pub unverified: bool,
    /// Put program PROG in slot INDEX of prog array MAP before the run:
    /// `MAP:INDEX=PROG` (repeatable; objects only).
    #[arg(long = "tail-call", value_name = "MAP:INDEX=PROG")]
    pub tail_calls: Vec<String>,
    /// Store an entry in a map before the run: `MAP:KEYHEX=VALUEHEX`
    /// (`MAP:=VALUEHEX` pushes onto a queue/stack; repeatable; objects only).
    #[arg(long = "map-update", value_name = "MAP:KEY=VALUE")]
    pub map_updates: Vec<String>,
    /// Store the entries of a JSON maps file before the run (format:
    /// {"maps": {"NAME": [{"key": HEX, "value": HEX}, ...]}}; objects only).
    #[arg(long, value_name = "FILE")]
    pub maps_file: Option<PathBuf>,
    /// Print every map's contents after the run (JSON).
    #[arg(long)]
    pub dump_maps: bool,
    /// Syntax of a `.s` input.
    #[arg(long, value_enum, default_value_t = Syntax::Auto)]
    pub syntax: Syntax,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: RunArgs) -> Result<()> {
    if args.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    if input::is_object_file(&args.file)? {
        return objrun::run(&args);
    }
    let object_only = [
        ("--prog", args.prog.is_some()),
        ("--pcap", args.pcap.is_some()),
        ("--ctx-in", args.ctx_in.is_some()),
        ("--ctx-out", args.ctx_out.is_some()),
        ("--tail-call", !args.tail_calls.is_empty()),
        ("--map-update", !args.map_updates.is_empty()),
        ("--maps-file", args.maps_file.is_some()),
        ("--dump-maps", args.dump_maps),
        ("--unverified", args.unverified),
        ("--profile", args.profile != ProfileArg::Privileged),
    ];
    for (flag, given) in object_only {
        if given {
            bail!(
                "{flag} applies to BPF ELF objects; {} is a raw program",
                args.file.display()
            );
        }
    }
    run_raw(&args)
}

/// One run of a raw program over its input memory.
type RawRun = dyn Fn(&mut [u8]) -> Result<u64, cordon_exec::ExecError>;

/// A raw `.bin` / `.s` program: checked mode with the conformance suite's helpers.
fn run_raw(args: &RunArgs) -> Result<()> {
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
    let opts = ExecOptions::named(&name);
    let load = || format!("cannot load {}", args.file.display());
    let exe: Box<RawRun> = match args.engine {
        Engine::Interp => {
            let e = Executable::checked(&program, &helpers, opts).with_context(load)?;
            Box::new(move |m| e.run(m))
        }
        Engine::Jit => {
            let e = JitExecutable::checked(&program, &helpers, opts).with_context(load)?;
            Box::new(move |m| e.run(m))
        }
    };
    let mut mem = data.clone();
    let mut retval = 0;
    let mut total = std::time::Duration::ZERO;
    for i in 0..args.repeat {
        if i > 0 {
            mem.copy_from_slice(&data);
        }
        let start = Instant::now();
        let r = exe(&mut mem);
        total += start.elapsed();
        retval = r.with_context(|| format!("{} failed", args.file.display()))?;
    }
    let duration_ns = total.as_nanos() / u128::from(args.repeat);
    if let Some(p) = &args.data_out {
        std::fs::write(p, &mem).with_context(|| format!("cannot write {}", p.display()))?;
    }
    if args.json {
        let v = serde_json::json!({
            "retval": retval,
            "duration_ns": duration_ns as u64,
            "test_objects_live": 0,
        });
        println!("{v}");
    } else {
        println!("retval: {retval}");
        println!("duration: {duration_ns} ns");
    }
    Ok(())
}
