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

/// Whether `path` is a BPF ELF object (reads the first four bytes).
pub fn is_object_file(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut magic = [0u8; 4];
    let mut n = 0;
    while n < 4 {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    Ok(n == 4 && crate::objcmd::is_elf(&magic))
}

/// Load a program from `.s` assembly or raw `.bin` bytecode (any other extension
/// is read as bytecode).
pub fn load_program(path: &Path, syntax: Syntax) -> Result<Program> {
    if path.extension().is_some_and(|e| e == "s" || e == "asm") {
        return assemble_file(path, syntax);
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if crate::objcmd::is_elf(&bytes) {
        return Err(anyhow!(
            "{}: is an ELF object, not a raw program",
            path.display()
        ));
    }
    Program::from_bytes(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))
}
