//! Commands on BPF ELF objects: `inspect`, `disasm OBJ`, `verify`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use cordon::{Config, LoadError, Profile};
use cordon_object::{Object, ProgramSpec, RelocKind};

/// Whether `bytes` start like an ELF file.
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF")
}

/// Read and parse an object file.
pub fn read_object(path: &Path) -> Result<Object> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !is_elf(&bytes) {
        bail!("{}: not an ELF object (no \\x7fELF header)", path.display());
    }
    Object::parse(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// The program named `name`, or the only program when `name` is `None`.
pub fn select_program<'a>(
    obj: &'a Object,
    path: &Path,
    name: Option<&str>,
) -> Result<&'a ProgramSpec> {
    let names = || {
        obj.programs
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => obj.program(n).ok_or_else(|| {
            anyhow!(
                "{}: no program named {n:?} (programs: {})",
                path.display(),
                names()
            )
        }),
        None => match obj.programs.as_slice() {
            [only] => Ok(only),
            [] => bail!("{}: the object has no programs", path.display()),
            _ => bail!(
                "{}: the object has {} programs, choose one with --prog (programs: {})",
                path.display(),
                obj.programs.len(),
                names()
            ),
        },
    }
}

/// `cordon inspect OBJ`.
pub fn inspect(path: &Path) -> Result<()> {
    let obj = read_object(path)?;
    print!("{}", obj.report());
    Ok(())
}

/// Strip the directory from a BTF line-info file name, as Linux's log does.
fn base_name(file: &str) -> &str {
    file.rsplit('/').next().unwrap_or(file)
}

/// Disassembly of one linked program in Linux's verifier-log syntax, with the
/// source line (`; text @ file:line`) before the first instruction of every
/// line-info record and a header line per function.
pub fn disasm_program(obj: &Object, p: &ProgramSpec) -> Result<String> {
    let kfunc = |imm: i32, _off: i16| obj.kfuncs.get(imm as usize).cloned();
    let opts = cordon_isa::disasm::DisasmOptions {
        kfunc_name: Some(&kfunc),
        annotate_calls: true,
        ..Default::default()
    };
    let text = cordon_isa::disasm::disassemble_with(&p.insns, &opts)
        .map_err(|e| anyhow!("program {}: {e}", p.name))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "; program {} (section {}, type {}), {} instructions",
        p.name,
        p.section,
        p.prog_type,
        p.insns.len()
    );
    let mut map_refs: Vec<usize> = p
        .relocations
        .iter()
        .filter_map(|r| match r.kind {
            RelocKind::Map { map } | RelocKind::MapValue { map, .. } => Some(map),
            _ => None,
        })
        .collect();
    map_refs.sort_unstable();
    map_refs.dedup();
    for m in map_refs {
        if let Some(spec) = obj.maps.get(m) {
            let _ = writeln!(out, "; map[idx:{m}] = {} ({})", spec.name, spec.type_name());
        }
    }
    let mut next_line = 0;
    // Like Linux, a record repeating the previous source line is not printed again.
    let mut last_printed: Option<(&str, u32)> = None;
    for line in text.lines() {
        let pc: Option<usize> = line.split_once(':').and_then(|(n, _)| n.parse().ok());
        if let Some(pc) = pc {
            if let Some(f) = p.functions.iter().find(|f| f.start == pc) {
                let _ = writeln!(out, "{}:", f.name);
            }
            // Line-info records starting at or before this instruction that
            // were not printed yet (lddw second halves have no line).
            while next_line < p.line_info.len() && p.line_info[next_line].insn <= pc {
                let l = &p.line_info[next_line];
                if l.line != 0
                    && !l.text.is_empty()
                    && last_printed != Some((l.file.as_str(), l.line))
                {
                    let _ = writeln!(out, "; {} @ {}:{}", l.text, base_name(&l.file), l.line);
                    last_printed = Some((l.file.as_str(), l.line));
                }
                next_line += 1;
            }
        }
        let _ = writeln!(out, "{line}");
    }
    Ok(out)
}

/// `cordon disasm OBJ [--prog NAME]`: every program when no name is given.
pub fn disasm(path: &Path, prog: Option<&str>) -> Result<()> {
    let obj = read_object(path)?;
    let progs: Vec<&ProgramSpec> = match prog {
        Some(_) => vec![select_program(&obj, path, prog)?],
        None => obj.programs.iter().collect(),
    };
    if progs.is_empty() {
        bail!("{}: the object has no programs", path.display());
    }
    for (i, p) in progs.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", disasm_program(&obj, p)?);
    }
    Ok(())
}

/// `cordon verify OBJ`: 0 when every selected program is accepted, 1 when one
/// is rejected (the verifier log on stderr); errors before verification
/// (unreadable or malformed object, unsupported map types, unknown helpers
/// or kfuncs) are `Err`. Programs are verified exactly as `cordon run` loads
/// them (the embedding API's object → verifier environment), so the two
/// commands always agree.
pub fn verify(
    path: &Path,
    prog: Option<&str>,
    log_level: u32,
    profile: Profile,
) -> Result<ExitCode> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let obj = Object::parse(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let progs: Vec<&ProgramSpec> = match prog {
        Some(_) => vec![select_program(&obj, path, prog)?],
        None => obj.programs.iter().collect(),
    };
    if progs.is_empty() {
        bail!("{}: the object has no programs", path.display());
    }
    let engine = cordon::Engine::new(Config {
        verify: true,
        profile,
        log_level,
        ..Config::default()
    });
    let loaded = engine
        .load_object(&bytes)
        .with_context(|| format!("cannot load {}", path.display()))?;
    let mut rejected = false;
    for p in progs {
        match loaded.program(&p.name) {
            Ok(compiled) => {
                let log = compiled.verifier_log();
                if log_level != 0 && !log.is_empty() {
                    eprint!("{log}");
                    if !log.ends_with('\n') {
                        eprintln!();
                    }
                }
                let summary = log
                    .lines()
                    .find(|l| l.starts_with("processed "))
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default();
                println!("{}: accepted{summary}", p.name);
            }
            Err(cordon::Error::Load(LoadError::Verify { message, log, .. })) => {
                rejected = true;
                if !log.is_empty() {
                    eprint!("{log}");
                    if !log.ends_with('\n') {
                        eprintln!();
                    }
                }
                // "insn N: ..." -> the source line of instruction N.
                let at = message
                    .strip_prefix("insn ")
                    .and_then(|r| r.split_once(':'))
                    .and_then(|(n, _)| n.parse::<usize>().ok())
                    .and_then(|i| p.describe_insn(i))
                    .map(|s| format!(" ({s})"))
                    .unwrap_or_default();
                eprintln!("{}: rejected: {message}{at}", p.name);
                println!("{}: rejected", p.name);
            }
            Err(e) => {
                return Err(anyhow!(e))
                    .with_context(|| format!("{}: program {}", path.display(), p.name));
            }
        }
    }
    Ok(if rejected {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
