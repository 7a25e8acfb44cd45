//! Reading program files: raw bytecode or assembly.

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use cordon_isa::Program;

use crate::Syntax;

/// Pick the syntax of an assembly text.
fn resolve_syntax(text: &str, syntax: Syntax) -> Syntax {
    match syntax {
        Syntax::Auto if text.contains("%r") => Syntax::Suite,
        Syntax::Auto => Syntax::Linux,
        s => s,
    }
}

/// Assemble a `.s` file into a validated program.
pub fn assemble_file(path: &Path, syntax: Syntax) -> Result<Program> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let insns = match resolve_syntax(&text, syntax) {
        Syntax::Suite => cordon_isa::assemble(&text),
        _ => cordon_isa::assemble_linux(&text),
    }
    .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Program::new(insns).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Load a program from `.s` assembly or raw `.bin` bytecode (any other extension
/// is read as bytecode).
pub fn load_program(path: &Path, syntax: Syntax) -> Result<Program> {
    if path.extension().is_some_and(|e| e == "s" || e == "asm") {
        return assemble_file(path, syntax);
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(b"\x7fELF") {
        return Err(anyhow!(
            "{}: is an ELF object; object files are not supported by this command yet",
            path.display()
        ));
    }
    Program::from_bytes(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}
