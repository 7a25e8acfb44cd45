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
//! * [`maps`]: the map types; [`extmaps`]: `lpm_trie`, `bloom_filter`,
//!   `perf_event_array`.
//!
//! # Modes
//!
//! Verified programs run in the engines' trusted mode with the verifier's
//! per-subprogram frame sizes. With [`Config::verify`] off (and for raw
//! programs, whose context the verifier cannot describe) programs run in
//! checked mode: every memory access is checked against the invocation's
//! regions (stack, packet, context, global data, map values and objects
//! helpers handed out), helpers check pointer and map arguments, spin locks
//! and ring-buffer records left behind are released, and an instruction
//! budget bounds the run. Packet frames are placed below 4 GiB so the 32-bit
//! `data` / `data_end` context fields hold the whole pointer there.
//!
//! # Known differences from Linux
//!
//! * `bpf_redirect*` are recorded in the [`RunResult`] ([`Redirect`]), not
//!   performed. Devmap / devmap_hash / cpumap / xskmap entries name host-chosen
//!   ifindexes, CPUs and socket ids (see [`maps`]); there are no devices,
//!   kthreads or AF_XDP sockets behind them, and no programs attached to entries.
//! * `perf_event_array` maps exist but have no events: `bpf_perf_event_output`
//!   returns `-ENOENT`, as Linux does for a slot without an event.
//! * `bpf_trace_printk` supports `%p`, `%px`, `%pK` (printed as hex, not
//!   hashed) but not the other `%p` extensions; lines are returned per run.
//! * A tail call runs the target nested on the same shadow stack (Linux
//!   replaces the frame): results, the 33-call limit and the
//!   replace-the-subprogram-frame rule are Linux's, but the target gets fresh
//!   call frames and, in checked mode, its own instruction budget.
//! * `bpf_loop` is always inlined (as Linux does for constant callbacks): the
//!   callback is chosen among the program's address-taken functions.

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
pub use loader::{Backend, Config, LoadedObject, ObjMap, Runtime, possible_cpus};
pub use maps::{Map, MapDef, MapError, MapHandle, MapType};
pub use program::{CompiledProgram, MAX_TAIL_CALLS, ProgKind, RunResult, set_cpu};
pub use state::{Redirect, RedirectTarget};
