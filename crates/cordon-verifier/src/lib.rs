//! Cordon's static verifier: a Linux-compatible abstract interpreter for eBPF.
//!
//! * [`verify`] / [`Verifier`] check a [`cordon_isa::Program`] under a
//!   [`VerifyEnv`] (program type, privilege profile, maps, the shared
//!   helper/kfunc [`proto::Registry`], global function signatures, line info,
//!   limits) and return [`VerifiedFacts`] or a [`VerifyError`] with a
//!   Linux-style message and log.
//! * [`proto`] is the one prototype registry shared with the runtime.
//! * [`facts`] holds what the runtime needs later: stack depths per call
//!   chain, reference counts and resource tables at safe points.

pub mod branch;
pub mod cfg;
pub mod ctx;
pub mod env;
pub mod error;
pub mod facts;
pub mod log;
pub mod proto;
pub mod prune;
pub mod scalar;
pub mod state;
pub mod tnum;
mod verifier;

pub use env::{
    ArgKind, GlobalFuncSig, GlobalRet, Limits, LineInfo, MapInfo, MapType, Profile, ProgType,
    VerifyEnv,
};
pub use error::VerifyError;
pub use facts::{
    Held, HeldLock, HeldRef, Location, SafePoint, SafePointKind, Stats, SubprogFacts, VerifiedFacts,
};
pub use proto::{ArgType, HelperProto, KfuncProto, Registry, RetType};
pub use verifier::{Verifier, verify};
