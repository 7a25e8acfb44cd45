//! Cordon's runtime: maps, helpers, kfuncs, program contexts and the loading
//! pipeline that turns clang-compiled BPF objects into running programs.
//!
//! * [`loader`]: [`Runtime`] (configuration, prototype registry, kfuncs) loads
//!   objects into [`LoadedObject`]s: maps are created from the object's
//!   specifications (global data initialised, `.rodata` frozen, spin-lock
//!   offsets from BTF, static prog_array / map-of-maps slots filled); each
//!   program is checked against the registry (unknown helper ids and kfunc
//!   names are load errors), verified by `cordon-verifier`, has its context
//!   accesses rewritten (Linux's `convert_ctx_accesses`), its map / global
//!   data / function addresses relocated, `bpf_tail_call`, `bpf_loop` and
//!   `bpf_throw` (with an exception callback) patched, and is compiled for the
//!   interpreter or the JIT — trusted when verified, checked otherwise.
//! * [`program`]: [`CompiledProgram`] runs XDP, tc, socket-filter and raw
//!   programs with Linux's test_run contexts and returns a [`RunResult`].
//! * [`helpers`]: helper implementations by Linux id and the built-in kfuncs.
//! * [`maps`]: the map types.

pub mod ctx;
pub mod error;
pub mod extmaps;
pub mod frame;
pub mod helpers;
pub mod loader;
pub mod maps;
mod patch;
pub mod program;
mod state;

pub use error::{LoadError, RunError};
pub use extmaps::{ExtMap, ExtMapDef};
pub use loader::{Backend, Config, LoadedObject, ObjMap, Runtime};
pub use maps::{Map, MapDef, MapError, MapHandle, MapType};
pub use program::{CompiledProgram, MAX_TAIL_CALLS, ProgKind, RunResult, set_cpu};
pub use state::Redirect;
