//! Support for the bpf_conformance suite: its helper set and the plugin protocol.
//!
//! The suite's runner starts a plugin process as
//! `PLUGIN [MEMHEX] [options] [--elf]`, writes the program as base16 on stdin and
//! reads r0 in hex from stdout (parsed with `stoull(s, nullptr, 16)`, so plain hex
//! without `0x`). [`run_plugin`] is the whole plugin minus process I/O, so it can
//! be tested without spawning the binary.

use cordon_isa::Program;

use crate::context::Region;
use crate::error::{ExecError, LoadError};
use crate::exec::{ExecOptions, Executable};
use crate::helpers::{Abort, HelperRegistry};

/// Id of the suite's "unwind" helper.
pub const UNWIND_HELPER_ID: u32 = 5;

/// The helpers the conformance suite expects: helper 5 "unwind" returns its first
/// argument, and when that is 0 the program stops at once with r0 = 0.
pub fn conformance_helpers() -> HelperRegistry {
    let mut reg = HelperRegistry::new();
    reg.register(UNWIND_HELPER_ID, "unwind", |_ctx, args| {
        if args[0] == 0 {
            Err(Abort::Stop(0))
        } else {
            Ok(args[0])
        }
    });
    reg
}

/// Why the plugin failed (reported on stderr with a non-zero exit).
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(
        "usage: cordon-conformance-plugin [MEMHEX] [--engine interp|jit] [--elf] (program as base16 on stdin): {0}"
    )]
    Usage(String),
    #[error("{what}: invalid hex at byte offset {offset}: {detail}")]
    Hex {
        what: &'static str,
        offset: usize,
        detail: String,
    },
    #[error("{0}")]
    Jit(#[from] crate::jit::ConformanceError),
    #[error("ELF input not supported by this plugin yet")]
    ElfNotSupported,
    #[error("program rejected: {0}")]
    Load(#[from] LoadError),
    #[error("program failed: {0}")]
    Exec(#[from] ExecError),
}

/// Decode base16 text; whitespace may separate bytes (not split one).
pub fn parse_hex(what: &'static str, text: &str) -> Result<Vec<u8>, PluginError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut hi: Option<(usize, u8)> = None;
    for (offset, c) in text.char_indices() {
        if c.is_whitespace() {
            if let Some((at, _)) = hi {
                return Err(PluginError::Hex {
                    what,
                    offset: at,
                    detail: String::from("odd number of hex digits in a byte"),
                });
            }
            continue;
        }
        let Some(v) = c.to_digit(16) else {
            return Err(PluginError::Hex {
                what,
                offset,
                detail: format!("{c:?} is not a hex digit"),
            });
        };
        match hi.take() {
            None => hi = Some((offset, v as u8)),
            Some((_, h)) => out.push(h << 4 | v as u8),
        }
    }
    if let Some((at, _)) = hi {
        return Err(PluginError::Hex {
            what,
            offset: at,
            detail: String::from("odd number of hex digits"),
        });
    }
    Ok(out)
}

/// Run `bytecode` the way the suite expects: checked interpreter, r1 = `mem`,
/// r2 = its length, 512-byte frames, helper 5 = unwind.
pub fn run_conformance(bytecode: &[u8], mem: &mut [u8]) -> Result<u64, PluginError> {
    let program = Program::from_bytes(bytecode).map_err(LoadError::from)?;
    let exe = Executable::checked(
        &program,
        &conformance_helpers(),
        ExecOptions::named("conformance"),
    )?;
    let args = [mem.as_mut_ptr() as u64, mem.len() as u64, 0, 0, 0];
    let no_extra: [Region<'_>; 0] = [];
    Ok(exe.run_with(args, mem, &no_extra)?)
}

/// The plugin: `args` are the command-line arguments after the program name,
/// `stdin` the program text. Returns the line to print on stdout (r0 in hex).
pub fn run_plugin(args: &[String], stdin: &str) -> Result<String, PluginError> {
    let mut mem_hex: Option<&str> = None;
    let mut engine = "interp";
    let mut elf = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--elf" {
            elf = true;
        } else if a == "--engine" {
            i += 1;
            engine = args
                .get(i)
                .map(String::as_str)
                .ok_or_else(|| PluginError::Usage("--engine needs a value".into()))?;
        } else if let Some(v) = a.strip_prefix("--engine=") {
            engine = v;
        } else if a.starts_with('-') {
            return Err(PluginError::Usage(format!("unknown option {a:?}")));
        } else if i == 0 {
            mem_hex = Some(a);
        } else {
            return Err(PluginError::Usage(format!(
                "unexpected argument {a:?} (memory must come first)"
            )));
        }
        i += 1;
    }
    match engine {
        "interp" | "jit" => {}
        other => {
            return Err(PluginError::Usage(format!(
                "unknown engine {other:?} (expected interp or jit)"
            )));
        }
    }
    if elf {
        return Err(PluginError::ElfNotSupported);
    }
    let mut mem = match mem_hex {
        Some(h) => parse_hex("memory", h)?,
        None => Vec::new(),
    };
    let code = parse_hex("program", stdin)?;
    let r0 = match engine {
        "jit" => crate::jit::run_conformance(&code, &mut mem)?,
        _ => run_conformance(&code, &mut mem)?,
    };
    Ok(format!("{r0:x}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    // mov r0, r2 (length); exit
    const LEN_PROG: &str = "bf 20 00 00 00 00 00 00 95 00 00 00 00 00 00 00";
    // lddw r0, 0x1122334455667788; exit
    const LDDW_PROG: &str =
        "18 00 00 00 88 77 66 55\n00 00 00 00 44 33 22 11 95 00 00 00 00 00 00 00";

    #[test]
    fn prints_r0_in_plain_hex() {
        assert_eq!(run_plugin(&[], LDDW_PROG).unwrap(), "1122334455667788");
        assert_eq!(
            run_plugin(&args(&["--engine", "interp"]), LDDW_PROG).unwrap(),
            "1122334455667788"
        );
    }

    #[test]
    fn memory_argument_and_options_in_any_order() {
        // The runner's own format: two spaces after every byte.
        let mem = "00  01  02  ";
        assert_eq!(run_plugin(&args(&[mem]), LEN_PROG).unwrap(), "3");
        assert_eq!(
            run_plugin(&args(&[mem, "--engine", "interp"]), LEN_PROG).unwrap(),
            "3"
        );
        assert_eq!(
            run_plugin(&args(&[mem, "--engine=interp"]), LEN_PROG).unwrap(),
            "3"
        );
        assert_eq!(run_plugin(&args(&["0a0b"]), LEN_PROG).unwrap(), "2");
        assert_eq!(run_plugin(&args(&[]), LEN_PROG).unwrap(), "0");
    }

    #[test]
    fn jit_engine_runs_and_elf_is_a_clear_error() {
        let mem = "0a 0b 0c";
        assert_eq!(
            run_plugin(&args(&[mem, "--engine", "jit"]), LEN_PROG).unwrap(),
            "3"
        );
        assert_eq!(
            run_plugin(&args(&["0a0b", "--engine=jit"]), LEN_PROG).unwrap(),
            "2"
        );
        let e = run_plugin(&args(&["00", "--elf", "--engine", "interp"]), LEN_PROG).unwrap_err();
        assert_eq!(e.to_string(), "ELF input not supported by this plugin yet");
        let e = run_plugin(&args(&["--elf"]), LEN_PROG).unwrap_err();
        assert!(matches!(e, PluginError::ElfNotSupported));
    }

    #[test]
    fn bad_input_is_reported() {
        assert!(matches!(
            run_plugin(&args(&["--engine"]), LEN_PROG),
            Err(PluginError::Usage(_))
        ));
        assert!(matches!(
            run_plugin(&args(&["--engine", "vm"]), LEN_PROG),
            Err(PluginError::Usage(_))
        ));
        assert!(matches!(
            run_plugin(&args(&["--fast"]), LEN_PROG),
            Err(PluginError::Usage(_))
        ));
        assert!(matches!(
            run_plugin(&args(&["--engine", "interp", "00"]), LEN_PROG),
            Err(PluginError::Usage(_))
        ));
        let e = run_plugin(&args(&["0g"]), LEN_PROG).unwrap_err();
        assert_eq!(
            e.to_string(),
            "memory: invalid hex at byte offset 1: 'g' is not a hex digit"
        );
        let e = run_plugin(&[], "bf 2").unwrap_err();
        assert!(
            matches!(
                e,
                PluginError::Hex {
                    what: "program",
                    offset: 3,
                    ..
                }
            ),
            "{e}"
        );
        let e = run_plugin(&[], "b f").unwrap_err();
        assert!(matches!(e, PluginError::Hex { offset: 0, .. }), "{e}");
        // Not a multiple of 8 bytes, empty program, invalid opcode.
        assert!(matches!(
            run_plugin(&[], "95 00 00"),
            Err(PluginError::Load(_))
        ));
        assert!(matches!(run_plugin(&[], ""), Err(PluginError::Load(_))));
        assert!(matches!(
            run_plugin(&[], "ff 00 00 00 00 00 00 00"),
            Err(PluginError::Load(_))
        ));
        // Runtime failure: load from address 0.
        let e = run_plugin(&[], "79 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00").unwrap_err();
        assert!(
            matches!(
                e,
                PluginError::Exec(ExecError::MemoryAccess { index: 0, .. })
            ),
            "{e}"
        );
    }

    #[test]
    fn unwind_helper() {
        // r1 = 0; call 5; r0 = 2; exit  → stops with 0
        let p = "b7 01 00 00 00 00 00 00 85 00 00 00 05 00 00 00 b7 00 00 00 02 00 00 00 95 00 00 00 00 00 00 00";
        assert_eq!(run_plugin(&[], p).unwrap(), "0");
    }
}
