//! Whole-program decoding and validation.

use crate::insn::{Insn, Kind, Problem, classify};

/// Maximum number of instruction slots in one program (Linux's `BPF_COMPLEXITY_LIMIT_INSNS`).
pub const MAX_INSNS: usize = 1_000_000;

/// Why a program's bytecode was rejected. Always names the instruction index.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("program is empty")]
    Empty,
    #[error("program length {0} bytes is not a multiple of 8")]
    BadLength(usize),
    #[error("program has {0} instructions, more than the limit of {MAX_INSNS}")]
    TooLong(usize),
    #[error("instruction {index}: {problem}")]
    Insn { index: usize, problem: Problem },
}

impl DecodeError {
    /// Index of the offending instruction, when there is one.
    pub fn index(&self) -> Option<usize> {
        match self {
            DecodeError::Insn { index, .. } => Some(*index),
            _ => None,
        }
    }
}

/// A validated program: every slot decodes to a [`Kind`], every jump and local
/// call lands on an instruction that is not the second half of an `lddw`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    insns: Vec<Insn>,
    kinds: Vec<Option<Kind>>,
}

impl Program {
    /// Decode and validate bytecode (8-byte little-endian slots).
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, DecodeError> {
        if !bytes.len().is_multiple_of(Insn::SIZE) {
            return Err(DecodeError::BadLength(bytes.len()));
        }
        let insns: Vec<Insn> = bytes
            .chunks_exact(Insn::SIZE)
            .map(|c| Insn::from_bytes(c.try_into().expect("chunk of 8")))
            .collect();
        Program::new(insns)
    }

    /// Validate already-split instruction slots.
    pub fn new(insns: Vec<Insn>) -> Result<Program, DecodeError> {
        let kinds = validate(&insns)?;
        Ok(Program { insns, kinds })
    }

    /// The raw slots (an `lddw` takes two).
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// The typed view of slot `pc`; `None` for the second half of an `lddw`.
    pub fn kind(&self, pc: usize) -> Option<Kind> {
        self.kinds.get(pc).copied().flatten()
    }

    /// All typed slots, `None` where a slot is the second half of an `lddw`.
    pub fn kinds(&self) -> &[Option<Kind>] {
        &self.kinds
    }

    /// Bytecode of the whole program.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::insn::to_bytes(&self.insns)
    }
}

/// Validate every slot of a program; returns the typed view of each slot
/// (`None` for the second half of an `lddw`).
pub fn validate(insns: &[Insn]) -> Result<Vec<Option<Kind>>, DecodeError> {
    if insns.is_empty() {
        return Err(DecodeError::Empty);
    }
    if insns.len() > MAX_INSNS {
        return Err(DecodeError::TooLong(insns.len()));
    }
    let err = |index, problem| DecodeError::Insn { index, problem };
    let mut kinds = Vec::with_capacity(insns.len());
    let mut pc = 0;
    while pc < insns.len() {
        let kind = classify(insns[pc], insns.get(pc + 1).copied()).map_err(|p| err(pc, p))?;
        kinds.push(Some(kind));
        if matches!(kind, Kind::Lddw { .. }) {
            kinds.push(None);
            pc += 2;
        } else {
            pc += 1;
        }
    }
    let n = insns.len() as i64;
    for (pc, kind) in kinds.iter().enumerate() {
        let Some(kind) = kind else { continue };
        let (rel, is_call) = match *kind {
            Kind::CallLocal { rel } => (rel, true),
            k => match k.jump_offset() {
                Some(off) => (off, false),
                None => continue,
            },
        };
        let target = pc as i64 + 1 + rel as i64;
        if target < 0 || target >= n {
            return Err(err(
                pc,
                if is_call {
                    Problem::CallOutOfRange(target)
                } else {
                    Problem::JumpOutOfRange(target)
                },
            ));
        }
        if kinds[target as usize].is_none() {
            return Err(err(
                pc,
                if is_call {
                    Problem::CallIntoLddw(target)
                } else {
                    Problem::JumpIntoLddw(target)
                },
            ));
        }
    }
    Ok(kinds)
}
