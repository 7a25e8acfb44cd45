//! Cordon's static verifier: a Linux-compatible abstract interpreter for eBPF.
//!
//! ```no_run
//! use cordon_verifier::{MapInfo, MapType, ProgType, VerifyEnv, verify};
//! # let prog: cordon_isa::Program = unimplemented!();
//! let env = VerifyEnv::new(ProgType::Xdp)
//!     .with_maps(vec![MapInfo::new("counters", MapType::Array, 4, 8, 16)])
//!     .with_log_level(1);
//! match verify(&prog, &env) {
//!     Ok(facts) => println!("stack {} bytes, {} refs", facts.max_stack_depth, facts.max_refs),
//!     Err(e) => eprintln!("{}\n{}", e, e.log),
//! }
//! ```
//!
//! * Inputs ([`VerifyEnv`]): program type (context layout, helper set,
//!   packet access), [`Profile`] (privileged = Linux with CAP_BPF/PERFMON,
//!   unprivileged), maps by index (`lddw src=5/6`; `src=1/2` are treated as
//!   indices too), the shared helper/kfunc [`proto::Registry`] (kfunc calls
//!   carry the registry id in `imm`), global function signatures
//!   ([`GlobalFuncSig`], by first instruction), the exception callback,
//!   line info, [`Limits`], log level (Linux bits: 1 path, 2 all, 4 stats).
//! * Structure ([`mod@cfg`]): subprograms from `call src=1` and `lddw src=4`,
//!   jumps inside their subprogram, no fall-through, no unreachable code,
//!   loops only when privileged, no recursion; frames, combined stack and
//!   the tail-call stack rule are checked over every call chain after
//!   exploration.
//! * Abstract interpretation ([`Verifier`]): Linux's register types
//!   ([`state::RegType`]), scalars as [`tnum::Tnum`] + 64/32-bit signed and
//!   unsigned bounds ([`scalar::Scalar`]), branch refinement on both sides
//!   ([`branch`]) with linked scalars, NULL checks by id, packet ranges,
//!   per-byte stack slots with spills, references, one spin lock,
//!   callbacks, open-coded iterators, `bpf_throw`, precision tracking and
//!   state pruning ([`prune`]).
//! * Output ([`VerifiedFacts`]): per-subprogram stack depth, worst chain
//!   depth and caller stack (composition), most references held at once, and
//!   at every call, `bpf_throw` and loop back-edge a table of which registers
//!   and stack slots of which frames hold which references and the lock
//!   ([`facts::SafePoint`]) — what exception unwinding and watchdog
//!   cancellation release.

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

pub use ctx::CtxField;
pub use env::{
    ArgKind, EnvError, GlobalFuncSig, GlobalRet, Limits, LineInfo, MapInfo, MapType, Profile,
    ProgType, VerifyEnv,
};
pub use error::VerifyError;
pub use facts::{
    CallMap, CtxAccess, Held, HeldLock, HeldRef, Location, SafePoint, SafePointKind, Stats,
    SubprogFacts, VerifiedFacts,
};
pub use proto::{ArgType, HelperProto, KfuncProto, Registry, RetType};
pub use verifier::{Verifier, verify};
