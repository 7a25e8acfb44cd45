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
//!   cancellation release. For engines: every context load/store with the
//!   field it touches ([`CtxAccess`]: offset, size, read/write, and whether
//!   it yields `data`/`data_end`/`data_meta`, which the runtime rewrites to
//!   64-bit loads of its own backing struct as Linux's
//!   `convert_ctx_accesses` does), frame bytes per subprogram
//!   ([`VerifiedFacts::subprog_frames`], for
//!   `cordon_exec::ExecOptions::subprog_frames`), the map (and constant
//!   array key) of every helper call site ([`CallMap`], for inlining array
//!   lookups), and the instructions no path reaches
//!   ([`VerifiedFacts::unreached`], never checked, never to be run).
//!
//! For a command line (`cordon verify OBJ --prog NAME --log-level N
//! --profile privileged|unprivileged`), [`VerifyEnv::from_parts`] builds the
//! environment from the program type number, profile name, log level and
//! maps; add line info, global function signatures and the exception
//! callback with the `with_*` builders.
//!
//! # Testing against Linux
//!
//! Every `accept`/`reject` snippet of the integration tests is also loaded
//! into the running kernel and the verdicts must agree
//! (`tests/common/linux.rs`; cases Linux cannot express — generic program
//! type, the unprivileged profile where unprivileged bpf() is disabled,
//! Cordon-only kfuncs, global functions — are recorded as skipped); every
//! tests/bpf program goes through cordon-object's output into both
//! verifiers (`tests/objects.rs`). Soundness: `tests/soundness_fuzz.rs` and
//! `examples/soundness_fuzz.rs` run whatever the verifier accepts in
//! cordon-exec's checked interpreter. Throughput against Linux's own
//! verification time: `benches/verify.rs`.

pub mod branch;
pub mod cfg;
pub mod ctx;
pub mod env;
pub mod error;
pub mod facts;
pub mod log;
#[cfg(feature = "object")]
pub mod object;
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
