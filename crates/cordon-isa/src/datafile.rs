//! Parser for the bpf_conformance `.data` test format.
//!
//! A line starting with `--` followed by a word opens a section; the sections read
//! here are `asm`, `raw`, `mem`, `result` and `error`, others are ignored. `#` starts
//! a comment everywhere except in `asm` (where the assembler handles comments itself)
//! and `error` (whose text is kept as is).

use crate::asm::{AsmError, assemble};
use crate::insn::Insn;

/// One conformance test case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TestCase {
    /// The `-- asm` section, verbatim.
    pub asm: Option<String>,
    /// The `-- raw` section: instruction slots (replaces `asm` when present).
    pub raw: Option<Vec<Insn>>,
    /// The `-- mem` section: the input memory (empty when absent).
    pub mem: Vec<u8>,
    /// The `-- result` section: expected r0.
    pub result: Option<u64>,
    /// The `-- error` section: the program must be rejected; the text (trimmed,
    /// possibly empty) is the expected message.
    pub error: Option<String>,
}

/// Why a `.data` file could not be parsed. `line` is 1-based.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DataFileError {
    #[error("line {line}: section `{section}` appears twice")]
    DuplicateSection { line: usize, section: String },
    #[error("line {line}: `--` must be followed by a section name")]
    MissingSectionName { line: usize },
    #[error("line {line}: invalid hex byte `{token}` in `-- {section}`")]
    BadByte {
        line: usize,
        section: &'static str,
        token: String,
    },
    #[error(
        "line {line}: invalid instruction word `{token}` in `-- raw` (expected 0x followed by up to 16 hex digits)"
    )]
    BadWord { line: usize, token: String },
    #[error("`-- raw` holds {0} bytes, not a multiple of 8")]
    RawLength(usize),
    #[error(
        "line {line}: invalid result `{text}` (expected 0x-prefixed hex or decimal, at most 64 bits)"
    )]
    BadResult { line: usize, text: String },
    #[error("line {line}: `-- result` holds more than one value")]
    ExtraResult { line: usize },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Asm,
    Raw,
    Mem,
    Result,
    Error,
    Other,
}

/// Parse the text of a `.data` file.
pub fn parse(text: &str) -> Result<TestCase, DataFileError> {
    let mut tc = TestCase::default();
    let mut section = Section::None;
    let mut seen: Vec<String> = Vec::new();
    let mut asm = String::new();
    let mut error = String::new();
    let mut raw_words: Vec<Insn> = Vec::new();
    let mut raw_bytes: Vec<u8> = Vec::new();
    let mut raw_seen = false;
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if let Some(rest) = line.strip_prefix("--") {
            let name = rest.split_whitespace().next();
            let Some(name) = name else {
                return Err(DataFileError::MissingSectionName { line: lineno });
            };
            if seen.iter().any(|s| s == name) {
                return Err(DataFileError::DuplicateSection {
                    line: lineno,
                    section: name.to_string(),
                });
            }
            seen.push(name.to_string());
            section = match name {
                "asm" => {
                    tc.asm = Some(String::new());
                    Section::Asm
                }
                "raw" => {
                    raw_seen = true;
                    Section::Raw
                }
                "mem" => Section::Mem,
                "result" => Section::Result,
                "error" => {
                    tc.error = Some(String::new());
                    Section::Error
                }
                _ => Section::Other,
            };
            continue;
        }
        let code = line.split('#').next().unwrap_or("").trim();
        match section {
            Section::None | Section::Other => {}
            Section::Asm => {
                asm.push_str(line);
                asm.push('\n');
            }
            Section::Error => {
                error.push_str(line);
                error.push('\n');
            }
            Section::Mem => parse_bytes(code, lineno, "mem", &mut tc.mem)?,
            Section::Raw => {
                for token in code.split_whitespace() {
                    if let Some(hex) = token
                        .strip_prefix("0x")
                        .or_else(|| token.strip_prefix("0X"))
                    {
                        if hex.is_empty() || hex.len() > 16 {
                            return Err(DataFileError::BadWord {
                                line: lineno,
                                token: token.to_string(),
                            });
                        }
                        let v =
                            u64::from_str_radix(hex, 16).map_err(|_| DataFileError::BadWord {
                                line: lineno,
                                token: token.to_string(),
                            })?;
                        raw_words.push(Insn::from_u64(v));
                    } else {
                        parse_bytes(token, lineno, "raw", &mut raw_bytes)?;
                    }
                }
            }
            Section::Result => {
                if code.is_empty() {
                    continue;
                }
                if tc.result.is_some() {
                    return Err(DataFileError::ExtraResult { line: lineno });
                }
                tc.result = Some(parse_result(code).ok_or_else(|| DataFileError::BadResult {
                    line: lineno,
                    text: code.to_string(),
                })?);
            }
        }
    }
    if tc.asm.is_some() {
        tc.asm = Some(asm);
    }
    if tc.error.is_some() {
        tc.error = Some(error.trim().to_string());
    }
    if raw_seen {
        if !raw_bytes.len().is_multiple_of(Insn::SIZE) {
            return Err(DataFileError::RawLength(raw_bytes.len()));
        }
        raw_words.extend(
            raw_bytes
                .chunks_exact(Insn::SIZE)
                .map(|c| Insn::from_bytes(c.try_into().unwrap_or_default())),
        );
        tc.raw = Some(raw_words);
    }
    Ok(tc)
}

fn parse_bytes(
    code: &str,
    line: usize,
    section: &'static str,
    out: &mut Vec<u8>,
) -> Result<(), DataFileError> {
    for token in code.split_whitespace() {
        let ok = token.len() == 2 && token.bytes().all(|b| b.is_ascii_hexdigit());
        let byte = if ok {
            u8::from_str_radix(token, 16).ok()
        } else {
            None
        };
        match byte {
            Some(b) => out.push(b),
            None => {
                return Err(DataFileError::BadByte {
                    line,
                    section,
                    token: token.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn parse_result(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(neg) = s.strip_prefix('-') {
        neg.parse::<i64>().ok().map(|v| (-v) as u64)
    } else {
        s.parse::<u64>().ok()
    }
}

impl TestCase {
    /// The program: the `raw` slots if present, else the assembled `asm` section.
    /// A case with neither is reported as an empty program.
    pub fn program_insns(&self) -> Result<Vec<Insn>, AsmError> {
        if let Some(raw) = &self.raw {
            return Ok(raw.clone());
        }
        match &self.asm {
            Some(text) => assemble(text),
            None => Err(AsmError::new(
                0,
                "test case has neither `-- asm` nor `-- raw`",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections() {
        let tc = parse(
            "# header\n-- asm\nmov %r0, 1 # c\nexit\n-- mem\n00 01\nff\n-- result\n0x10\n-- other\nxx\n",
        )
        .unwrap();
        assert_eq!(tc.asm.as_deref(), Some("mov %r0, 1 # c\nexit\n"));
        assert_eq!(tc.mem, vec![0, 1, 0xff]);
        assert_eq!(tc.result, Some(16));
        assert_eq!(tc.raw, None);
        assert_eq!(tc.error, None);
        assert_eq!(tc.program_insns().unwrap().len(), 2);
    }

    #[test]
    fn raw_words_and_bytes() {
        let tc = parse("-- raw\n0x5566778800000018\n0x1122334400000000\n-- result\n12\n").unwrap();
        let raw = tc.raw.clone().unwrap();
        assert_eq!(raw[0], Insn::new(0x18, 0, 0, 0, 0x55667788));
        assert_eq!(raw[1].imm, 0x11223344);
        assert_eq!(tc.result, Some(12));
        let tc =
            parse("-- raw\n62 1a fc ff 00 00 00 00\n95 00 00 00 00 00 00 00\n-- error\n").unwrap();
        let raw = tc.raw.unwrap();
        assert_eq!(raw[0], Insn::new(0x62, 10, 1, -4, 0));
        assert_eq!(raw[1].code, 0x95);
        assert_eq!(tc.error.as_deref(), Some(""));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse("-- raw\n62 1a\n"),
            Err(DataFileError::RawLength(2))
        ));
        assert!(matches!(
            parse("-- mem\n0g\n"),
            Err(DataFileError::BadByte { line: 2, .. })
        ));
        assert!(matches!(
            parse("-- result\nabc\n"),
            Err(DataFileError::BadResult { line: 2, .. })
        ));
        assert!(matches!(
            parse("-- asm\n-- asm\n"),
            Err(DataFileError::DuplicateSection { line: 2, .. })
        ));
        assert!(matches!(
            parse("-- raw\n0x\n"),
            Err(DataFileError::BadWord { line: 2, .. })
        ));
        assert!(parse("").unwrap().program_insns().is_err());
    }
}
