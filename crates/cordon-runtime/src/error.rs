//! Errors of loading objects and running programs.

use cordon_exec::ExecError;

/// Why an object or program could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("cannot parse the BPF object: {0}")]
    Object(String),
    #[error("no program named '{name}' in the object (programs: {available})")]
    NoSuchProgram { name: String, available: String },
    #[error("no map named '{name}' in the object (maps: {available})")]
    NoSuchMap { name: String, available: String },
    #[error(
        "map '{map}': map type {type_id} ({type_name}) is not supported by Cordon (supported: hash, array, prog_array, percpu_hash, percpu_array, lru_hash, lru_percpu_hash, array_of_maps, hash_of_maps, queue, stack, ringbuf)"
    )]
    UnsupportedMapType {
        map: String,
        type_id: u32,
        type_name: String,
    },
    #[error("map '{map}': {message}")]
    Map { map: String, message: String },
    #[error(
        "program '{program}': program type {prog_type} is not supported (supported: xdp, tc/classifier/action, socket, raw)"
    )]
    UnsupportedProgType { program: String, prog_type: String },
    #[error(
        "program '{program}', instruction {index}: call to unknown helper {id}{}; register it or remove the call",
        name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
    )]
    UnknownHelper {
        program: String,
        index: usize,
        id: i32,
        name: Option<String>,
    },
    #[error(
        "program '{program}', instruction {index}: kfunc '{name}' is not registered; register it with Engine::register_kfunc"
    )]
    UnresolvedKfunc {
        program: String,
        index: usize,
        name: String,
    },
    #[error("program '{program}', instruction {index}: {message}")]
    BadInstruction {
        program: String,
        index: usize,
        message: String,
    },
    #[error("program '{program}' was rejected by the verifier: {message}\nverifier log:\n{log}")]
    Verify {
        program: String,
        message: String,
        log: String,
    },
    #[error("program '{program}': cannot prepare it for execution: {message}")]
    Engine { program: String, message: String },
    #[error("prog_array '{map}' slot {index}: {message}")]
    TailCallSlot {
        map: String,
        index: u32,
        message: String,
    },
    #[error("cannot read '{path}': {message}")]
    Io { path: String, message: String },
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "program '{program}': packet of {len} bytes is too short: Linux's test_run needs at least 14 bytes (an Ethernet header) for {kind} programs"
    )]
    PacketTooShort {
        program: String,
        kind: &'static str,
        len: usize,
    },
    #[error(
        "program '{program}': {protocol} packet of {len} bytes is too short: Linux's test_run needs at least {min} bytes for {kind} programs (the 14-byte Ethernet header and a {header}-byte {protocol} header) and fails with EINVAL"
    )]
    NetworkHeaderTooShort {
        program: String,
        kind: &'static str,
        /// `IPv4` or `IPv6` (the Ethernet type of the frame).
        protocol: &'static str,
        len: usize,
        min: usize,
        /// The network header length Linux requires (20 or 40 bytes).
        header: usize,
    },
    #[error(
        "program '{program}': packet of {len} bytes is longer than the {max} bytes Linux's test_run puts in the linear area of {kind} programs"
    )]
    PacketTooLong {
        program: String,
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "program '{program}': XDP packet of {len} bytes is longer than the {max} bytes Linux's test_run accepts (the linear area and {frags} page-sized fragments; Linux fails with ENOMEM)"
    )]
    TooManyFragments {
        program: String,
        len: usize,
        max: usize,
        frags: usize,
    },
    #[error("program '{program}' is a {actual} program; call {expected} instead")]
    WrongProgramType {
        program: String,
        actual: &'static str,
        expected: &'static str,
    },
    #[error(
        "program '{program}': invalid ctx_in (Linux's test_run would fail with {errno}): {message}"
    )]
    BadContext {
        program: String,
        errno: &'static str,
        message: String,
    },
    #[error("program '{program}': {source}")]
    Exec {
        program: String,
        #[source]
        source: ExecError,
    },
}
