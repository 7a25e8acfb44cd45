//! The eBPF instruction set as Cordon understands it (RFC 9669, cpu v1–v4).
//!
//! * [`Insn`] is one raw 8-byte slot; [`Kind`] is its typed, validated meaning.
//! * [`Program`] is a validated sequence of slots: every field checked, every jump
//!   in range, nothing jumps into the second half of an `lddw`, r10 never written.
//! * [`opcode`] holds the encoding constants.
//! * [`asm`] assembles the conformance suite's syntax ([`assemble`]) and Linux's
//!   verifier-log syntax ([`assemble_linux`]); [`disasm`] prints both.
//! * [`datafile`] parses the conformance suite's `.data` test files.

pub mod asm;
pub mod datafile;
pub mod disasm;
pub mod insn;
pub mod opcode;
pub mod program;

pub use asm::{AsmError, assemble, assemble_linux, encode};
pub use disasm::{disassemble, format_kind, format_kind_suite};
pub use insn::{AluOp, AtomicOp, EndianOp, Insn, JmpCond, Kind, Operand, Problem, Size, classify};
pub use program::{DecodeError, MAX_INSNS, Program, validate};
