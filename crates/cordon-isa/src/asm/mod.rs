//! Assemblers for the two textual syntaxes Cordon speaks.
//!
//! * [`assemble`]: the bpf_conformance / uBPF syntax (`mov32 %r0, 1`,
//!   `ldxdw %r0, [%r1+8]`, `lock fetch add [%r10-8], %r1`, `call local f`).
//! * [`assemble_linux`]: the syntax of Linux's verifier log and llvm-objdump
//!   (`w0 = 1`, `r1 = *(u32 *)(r1 +0)`, `if r2 > 0x10 goto pc+3`), which is what
//!   [`crate::disasm::format_kind`] prints.
//!
//! Both resolve labels (`name:` defines one), check every field range, and report
//! the first problem with its 1-based line number. They produce raw slots; whether the
//! program as a whole is valid (registers writable, jumps in range) is
//! [`crate::Program::new`]'s job.

mod encode;
mod linux;
mod suite;

pub use encode::{encode, encode_into};
pub use linux::assemble_linux;
pub use suite::assemble;

use crate::insn::Insn;
use std::collections::HashMap;

/// Why a text was rejected by an assembler. `line` is 1-based; 0 means the
/// problem concerns the whole text (for example, it holds no instruction).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(*.line, .message))]
pub struct AsmError {
    pub line: usize,
    pub message: String,
}

fn render(line: usize, message: &str) -> String {
    if line == 0 {
        message.to_string()
    } else {
        format!("line {line}: {message}")
    }
}

impl AsmError {
    pub fn new(line: usize, message: impl Into<String>) -> Self {
        AsmError {
            line,
            message: message.into(),
        }
    }
}

/// Which field of an instruction a label reference is resolved into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// 16-bit `off` (jumps).
    Off16,
    /// 32-bit `imm` (`gotol`, local calls, `lddw` of a function address).
    Imm32,
}

struct Fixup {
    pc: usize,
    line: usize,
    label: String,
    field: Field,
}

/// Collects instructions and labels, then resolves label references.
pub(crate) struct Builder {
    insns: Vec<Insn>,
    labels: HashMap<String, (usize, usize)>,
    fixups: Vec<Fixup>,
    first_exit: Option<usize>,
}

impl Builder {
    pub(crate) fn new() -> Self {
        Builder {
            insns: Vec::new(),
            labels: HashMap::new(),
            fixups: Vec::new(),
            first_exit: None,
        }
    }

    /// Index the next instruction will get.
    pub(crate) fn pc(&self) -> usize {
        self.insns.len()
    }

    pub(crate) fn define_label(&mut self, name: &str, line: usize) -> Result<(), AsmError> {
        if let Some((_, prev)) = self.labels.get(name) {
            return Err(AsmError::new(
                line,
                format!("duplicate label `{name}` (first defined on line {prev})"),
            ));
        }
        self.labels
            .insert(name.to_string(), (self.insns.len(), line));
        Ok(())
    }

    pub(crate) fn push(&mut self, insn: Insn) {
        if insn.code == crate::opcode::OP_EXIT && self.first_exit.is_none() {
            self.first_exit = Some(self.insns.len());
        }
        self.insns.push(insn);
    }

    /// Push an instruction whose `field` is to be filled with the distance to `label`.
    pub(crate) fn push_ref(&mut self, insn: Insn, label: &str, field: Field, line: usize) {
        self.fixups.push(Fixup {
            pc: self.insns.len(),
            line,
            label: label.to_string(),
            field,
        });
        self.push(insn);
    }

    /// Resolve labels. When `exit_alias` is set, an undefined label `exit` means the
    /// first `exit` instruction (the conformance suite's convention).
    pub(crate) fn finish(mut self, exit_alias: bool) -> Result<Vec<Insn>, AsmError> {
        if self.insns.is_empty() {
            return Err(AsmError::new(0, "program has no instructions"));
        }
        for f in &self.fixups {
            let target = match self.labels.get(&f.label) {
                Some(&(pc, _)) => pc,
                None if exit_alias && f.label == "exit" && self.first_exit.is_some() => {
                    self.first_exit.unwrap_or_default()
                }
                None => {
                    return Err(AsmError::new(
                        f.line,
                        format!("Invalid label: `{}` is not defined", f.label),
                    ));
                }
            };
            if target >= self.insns.len() {
                return Err(AsmError::new(
                    f.line,
                    format!(
                        "label `{}` is at the end of the program, not on an instruction",
                        f.label
                    ),
                ));
            }
            let rel = target as i64 - f.pc as i64 - 1;
            let insn = &mut self.insns[f.pc];
            match f.field {
                Field::Off16 => {
                    insn.off = i16::try_from(rel).map_err(|_| {
                        AsmError::new(
                            f.line,
                            format!(
                                "label `{}` is {rel} instructions away, too far for a 16-bit jump offset (use a 32-bit jump)",
                                f.label
                            ),
                        )
                    })?;
                }
                Field::Imm32 => {
                    insn.imm = i32::try_from(rel).map_err(|_| {
                        AsmError::new(f.line, format!("label `{}` is too far away", f.label))
                    })?;
                }
            }
        }
        Ok(self.insns)
    }
}

/// Is `s` a valid label name (`[A-Za-z_.][A-Za-z0-9_.$]*`)?
pub(crate) fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$')
}

/// A parsed integer literal: sign, magnitude and radix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Num {
    pub neg: bool,
    pub mag: u64,
    pub hex: bool,
}

/// Parse `[+-]?(0x[0-9a-f]+|[0-9]+)`; `None` if `s` is not such a literal or
/// does not fit in 64 bits.
pub(crate) fn parse_num(s: &str) -> Option<Num> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (hex, digits) = match rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        Some(d) => (true, d),
        None => (false, rest),
    };
    if digits.is_empty() {
        return None;
    }
    let ok = if hex {
        digits.bytes().all(|b| b.is_ascii_hexdigit())
    } else {
        digits.bytes().all(|b| b.is_ascii_digit())
    };
    if !ok {
        return None;
    }
    let mag = u64::from_str_radix(digits, if hex { 16 } else { 10 }).ok()?;
    Some(Num { neg, mag, hex })
}

impl Num {
    /// The value as a 32-bit immediate: decimal must fit `i32`; hex may be up to
    /// `0xffffffff` (taken as the bit pattern) or down to `-0x80000000`.
    pub(crate) fn imm32(self) -> Option<i32> {
        self.signed_bits(32).map(|v| v as i32)
    }

    /// As [`Num::imm32`] but hex is limited to `0x7fffffff` (for immediates that
    /// are sign-extended to 64 bits, where `0xffffffff` would silently mean -1).
    pub(crate) fn imm32_sext(self) -> Option<i32> {
        if self.hex && !self.neg && self.mag > i32::MAX as u64 {
            return None;
        }
        self.imm32()
    }

    /// The value as a 16-bit offset (same rules as [`Num::imm32`], on 16 bits).
    pub(crate) fn off16(self) -> Option<i16> {
        self.signed_bits(16).map(|v| v as i16)
    }

    /// Strict signed 16-bit value (no bit-pattern reading of hex).
    pub(crate) fn strict_i16(self) -> Option<i16> {
        let v = self.as_i128();
        i16::try_from(v).ok()
    }

    /// Strict signed 32-bit value.
    pub(crate) fn strict_i32(self) -> Option<i32> {
        i32::try_from(self.as_i128()).ok()
    }

    /// The value as 64 bits: anything from `-2^63` to `2^64-1`.
    pub(crate) fn imm64(self) -> Option<u64> {
        if self.neg {
            if self.mag > 1u64 << 63 {
                None
            } else {
                Some(self.mag.wrapping_neg())
            }
        } else {
            Some(self.mag)
        }
    }

    fn as_i128(self) -> i128 {
        if self.neg {
            -(self.mag as i128)
        } else {
            self.mag as i128
        }
    }

    fn signed_bits(self, bits: u32) -> Option<i64> {
        let v = self.as_i128();
        let min = -(1i128 << (bits - 1));
        let smax = (1i128 << (bits - 1)) - 1;
        let umax = (1i128 << bits) - 1;
        if v >= min && v <= smax {
            Some(v as i64)
        } else if self.hex && !self.neg && v <= umax {
            // Bit pattern: reinterpret as signed.
            Some((v - (1i128 << bits)) as i64)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let n = |s| parse_num(s).unwrap();
        assert_eq!(n("12").imm32(), Some(12));
        assert_eq!(n("-3").imm32(), Some(-3));
        assert_eq!(n("0xffffffff").imm32(), Some(-1));
        assert_eq!(n("0x80000000").imm32(), Some(i32::MIN));
        assert_eq!(n("2147483648").imm32(), None);
        assert_eq!(n("-2147483648").imm32(), Some(i32::MIN));
        assert_eq!(n("-2147483649").imm32(), None);
        assert_eq!(n("0x100000000").imm32(), None);
        assert_eq!(n("0xffffffff").imm32_sext(), None);
        assert_eq!(n("-0x80000000").imm32_sext(), Some(i32::MIN));
        assert_eq!(n("0xffff").off16(), Some(-1));
        assert_eq!(n("0x10000").off16(), None);
        assert_eq!(n("32768").off16(), None);
        assert_eq!(n("-32768").off16(), Some(i16::MIN));
        assert_eq!(n("0xffff").strict_i16(), None);
        assert_eq!(n("-1").imm64(), Some(u64::MAX));
        assert_eq!(n("18446744073709551615").imm64(), Some(u64::MAX));
        assert_eq!(n("-9223372036854775808").imm64(), Some(1 << 63));
        assert_eq!(n("-9223372036854775809").imm64(), None);
        assert!(parse_num("18446744073709551616").is_none());
        assert!(parse_num("0x").is_none());
        assert!(parse_num("-").is_none());
        assert!(parse_num("12a").is_none());
        assert!(parse_num("").is_none());
    }

    #[test]
    fn labels() {
        assert!(is_label_name("L1"));
        assert!(is_label_name("_x.y$"));
        assert!(!is_label_name("1L"));
        assert!(!is_label_name(""));
        assert!(!is_label_name("a-b"));
    }
}
