//! Verification errors.

/// Why a program was rejected: the instruction (when there is one), the
/// Linux-style message, and the verifier log up to the failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .insn { Some(i) => format!("insn {i}: {}", .message), None => .message.clone() })]
pub struct VerifyError {
    pub insn: Option<usize>,
    pub message: String,
    pub log: String,
}
