//! Errors of object loading. Every variant names the section, symbol or
//! instruction at fault.

use crate::btf::BtfError;
use cordon_isa::DecodeError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("not a valid 64-bit little-endian ELF file: {0}")]
    Elf(String),
    #[error("ELF machine is {0}, expected EM_BPF (247)")]
    NotBpf(u16),
    #[error("section {section}: {problem}")]
    Section { section: String, problem: String },
    #[error("symbol {index}: {problem}")]
    Symbol { index: usize, problem: String },
    #[error("section {section}: function {name} at offset {offset} (size {size}) {problem}")]
    Function {
        section: String,
        name: String,
        offset: u64,
        size: u64,
        problem: String,
    },
    #[error(
        "relocation section {section}: entry {entry} refers to symbol {symbol}, but the symbol table has {count} symbols"
    )]
    RelocationSymbol {
        section: String,
        entry: usize,
        symbol: usize,
        count: usize,
    },
    #[error("section {section}: relocation at byte offset {offset} is {problem}")]
    RelocationOffset {
        section: String,
        offset: u64,
        problem: String,
    },
    #[error(
        "section {section}, instruction {insn}: unsupported relocation type {r_type} against symbol {symbol}"
    )]
    RelocationType {
        section: String,
        insn: usize,
        r_type: u32,
        symbol: String,
    },
    #[error(
        "section {section}, instruction {insn}: relocation against symbol {symbol} on opcode {code:#04x}, which is neither lddw nor call"
    )]
    RelocationInsn {
        section: String,
        insn: usize,
        code: u8,
        symbol: String,
    },
    #[error("section {section}, instruction {insn}: relocation against symbol {symbol}: {problem}")]
    RelocationTarget {
        section: String,
        insn: usize,
        symbol: String,
        problem: String,
    },
    #[error("section {section}, instruction {insn}: unresolved symbol {symbol}: {problem}")]
    Unresolved {
        section: String,
        insn: usize,
        symbol: String,
        problem: String,
    },
    #[error("section {section}, instruction {insn}: call to instruction {target}: {problem}")]
    BadCall {
        section: String,
        insn: usize,
        target: i64,
        problem: String,
    },
    #[error("map {map}: unknown map type {map_type}")]
    UnknownMapType { map: String, map_type: u32 },
    #[error("map {map}: {problem}")]
    MapDefinition { map: String, problem: String },
    #[error("BTF-defined maps in section .maps require BTF, but the object has no .BTF section")]
    MapsWithoutBtf,
    #[error("section .BTF: {0}")]
    Btf(BtfError),
    #[error("section .BTF.ext: {0}")]
    BtfExt(BtfError),
    #[error(
        "program {program}: CO-RE relocation at instruction {insn} ({kind} of {type_name}, access {access}): {problem}"
    )]
    Core {
        program: String,
        insn: usize,
        kind: &'static str,
        type_name: String,
        access: String,
        problem: String,
    },
    #[error("program {program}: linked code is invalid: {error}")]
    InvalidProgram { program: String, error: DecodeError },
    #[error("program {program}: {problem}")]
    Program { program: String, problem: String },
}
