//! `cordon-bench`: the benchmark suite of Cordon against native code, rbpf
//! and Linux's JIT on the workloads of `benches/workloads`.
//!
//! ```text
//! cargo run --release -p cordon-bench -- [--quick] [--write BENCHMARKS.md] [--only NAME]...
//! ```
//!
//! Prints a markdown report; `--write FILE` also replaces the section between
//! `<!-- cordon-bench:begin -->` and `<!-- cordon-bench:end -->` of FILE
//! (appending the markers when absent). Exits non-zero when an engine returns
//! a result different from native code's.

mod engines;
mod report;
mod suite;
mod timing;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;

use engines::BenchError;
use timing::Settings;

struct Args {
    quick: bool,
    write: Option<PathBuf>,
    only: Vec<String>,
    objects: PathBuf,
}

const USAGE: &str =
    "usage: cordon-bench [--quick] [--write FILE] [--only WORKLOAD]... [--objects DIR]";

fn parse_args() -> Result<Args, BenchError> {
    let mut a = Args {
        quick: false,
        write: None,
        only: Vec::new(),
        objects: std::env::var_os("CORDON_BENCH_OBJECTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../benches/workloads"
                ))
            }),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| BenchError::Usage(format!("{name} needs a value\n{USAGE}")))
        };
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--write" => a.write = Some(PathBuf::from(value("--write")?)),
            "--only" => a.only.push(value("--only")?),
            "--objects" => a.objects = PathBuf::from(value("--objects")?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => {
                return Err(BenchError::Usage(format!(
                    "unknown argument {other:?}\n{USAGE}"
                )));
            }
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cordon-bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<(), BenchError> {
    let args = parse_args()?;
    let settings = if args.quick {
        Settings::quick()
    } else {
        Settings::full()
    };
    let load_before = report::load_average();
    let results = suite::run(&suite::Options {
        settings,
        only: args.only.clone(),
        objects: args.objects.clone(),
        verbose: true,
    })?;
    let machine = report::Machine::probe(load_before);
    let mut command = String::from("cargo run --release -p cordon-bench --");
    if args.quick {
        command.push_str(" --quick");
    }
    for o in &args.only {
        command.push_str(&format!(" --only {o}"));
    }
    if let Some(w) = &args.write {
        command.push_str(&format!(" --write {}", w.display()));
    }
    let text = report::render(
        &results,
        &report::RenderInfo {
            machine: &machine,
            settings,
            quick: args.quick,
            command,
            native_cc: env!("CORDON_BENCH_NATIVE_CC"),
        },
    );
    println!("{text}");
    if let Some(path) = &args.write {
        let doc = match std::fs::read_to_string(path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(BenchError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        let out = report::splice(&doc, &text)
            .map_err(|e| BenchError::Usage(format!("{}: {e}", path.display())))?;
        std::fs::write(path, out).map_err(|source| BenchError::Io {
            path: path.display().to_string(),
            source,
        })?;
        eprintln!(
            "cordon-bench: wrote the results section of {}",
            path.display()
        );
    }
    Ok(())
}
