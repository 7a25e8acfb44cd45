//! Errors of loading (pre-decoding) and running programs.

use cordon_isa::DecodeError;

use crate::shadow_stack::ShadowStackError;

/// Why a program could not be prepared for execution.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(
        "instruction {index}: lddw with pseudo source {pseudo} ({name}) must be resolved to a plain 64-bit immediate by the loader before execution"
    )]
    UnresolvedPseudo {
        index: usize,
        pseudo: u8,
        name: &'static str,
    },
    #[error("instruction {index}: call to unknown helper {id}")]
    UnknownHelper { index: usize, id: i32 },
    #[error("instruction {index}: call to unknown kfunc with BTF id {btf_id} (BTF object {off})")]
    UnknownKfunc { index: usize, btf_id: i32, off: i16 },
    #[error(
        "frame size {size} bytes for the subprogram at instruction {index} is too large (at most {max})"
    )]
    FrameTooLarge { index: usize, size: u64, max: u64 },
    #[error(
        "subprogram frame size given for instruction {index}, which is not an instruction start"
    )]
    BadSubprogram { index: usize },
    #[error(
        "the native-stack baseline holds {capacity} bytes but {needed} bytes are needed for 8 frames of the largest size"
    )]
    NativeStackTooSmall { needed: u64, capacity: u64 },
    #[error("invalid shadow stack size {0} bytes")]
    BadStackSize(usize),
}

/// Kind of memory access, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Load,
    Store,
    Atomic,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::Load => "load",
            Access::Store => "store",
            Access::Atomic => "atomic access",
        })
    }
}

/// Why a run ended without a normal `exit` (or a helper's stop).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(
        "instruction {index}: {access} of {size} bytes at {addr:#x} is outside every region this invocation may access"
    )]
    MemoryAccess {
        index: usize,
        access: Access,
        addr: u64,
        size: u32,
    },
    #[error("instruction {index}: atomic access of {size} bytes at {addr:#x} is not aligned")]
    MisalignedAtomic { index: usize, addr: u64, size: u32 },
    #[error("instruction {index}: instruction budget of {budget} exhausted")]
    BudgetExhausted { index: usize, budget: u64 },
    #[error("instruction {index}: call exceeds the limit of {max} call frames")]
    CallDepth { index: usize, max: usize },
    #[error(
        "program '{program}': shadow stack exhausted at instruction {index}: a frame of {needed} bytes was requested but only {available} of {capacity} bytes are left"
    )]
    StackExhausted {
        program: String,
        index: usize,
        needed: u64,
        available: u64,
        capacity: u64,
    },
    #[error("program '{program}': cannot set up its stack: {source}")]
    Stack {
        program: String,
        source: ShadowStackError,
    },
    #[error("instruction {index}: helper {id} ({name}) failed: {message}")]
    HelperFault {
        index: usize,
        id: i64,
        name: String,
        message: String,
    },
    #[error("instruction {index}: helper {id} ({name}) panicked")]
    HelperPanic { index: usize, id: i64, name: String },
    #[error("instruction {index}: callx to unknown helper {id}")]
    UnknownHelper { index: usize, id: u64 },
    #[error("instruction {index}: execution ran past the last instruction")]
    FellOffEnd { index: usize },
}

impl ExecError {
    /// The instruction index the error refers to, when there is one.
    pub fn index(&self) -> Option<usize> {
        match *self {
            ExecError::MemoryAccess { index, .. }
            | ExecError::MisalignedAtomic { index, .. }
            | ExecError::BudgetExhausted { index, .. }
            | ExecError::CallDepth { index, .. }
            | ExecError::StackExhausted { index, .. }
            | ExecError::HelperFault { index, .. }
            | ExecError::HelperPanic { index, .. }
            | ExecError::UnknownHelper { index, .. }
            | ExecError::FellOffEnd { index } => Some(index),
            ExecError::Stack { .. } => None,
        }
    }
}
