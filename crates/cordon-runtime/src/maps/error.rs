//! Typed errors of the host-side map API.

use super::MapType;

/// Linux errno values used by the map code (positive; program-side operations
/// return them negated).
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such entry.
    pub const ENOENT: i32 = 2;
    /// Argument list too long (map full, index out of range, size limits).
    pub const E2BIG: i32 = 7;
    /// Bad file descriptor (no usable inner map template).
    pub const EBADF: i32 = 9;
    /// Try again (ring buffer full in `bpf_ringbuf_output`).
    pub const EAGAIN: i32 = 11;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// Entry exists.
    pub const EEXIST: i32 = 17;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Operation not supported (user-visible variant).
    pub const EOPNOTSUPP: i32 = 95;
    /// Operation not supported (kernel-internal value that Linux leaks to user space).
    pub const ENOTSUPP: i32 = 524;
}

/// Error returned by map creation and by the host-side map API.
///
/// Every variant corresponds to the errno Linux returns in the same situation
/// (see [`MapError::errno`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The map type id is not one Cordon implements.
    #[error("unknown or unsupported map type id {id}")]
    UnknownMapType {
        /// The raw `enum bpf_map_type` value.
        id: u32,
    },
    /// An attribute has a value Linux rejects with EINVAL.
    #[error("{map_type} map: invalid {field} {value}: {reason}")]
    InvalidAttr {
        /// Map type being created.
        map_type: MapType,
        /// Attribute name (`key_size`, `value_size`, `max_entries`, ...).
        field: &'static str,
        /// Offending value.
        value: u64,
        /// What Linux requires.
        reason: &'static str,
    },
    /// An attribute exceeds a size limit (Linux: E2BIG).
    #[error("{map_type} map: {field} {value} is too big (limit {limit})")]
    AttrTooBig {
        /// Map type being created.
        map_type: MapType,
        /// Attribute name.
        field: &'static str,
        /// Offending value.
        value: u64,
        /// Largest accepted value.
        limit: u64,
    },
    /// Creation flags not accepted for this map type (Linux: EINVAL).
    #[error("{map_type} map: flags {flags:#x} not allowed ({reason})")]
    InvalidMapFlags {
        /// Map type being created.
        map_type: MapType,
        /// The offending flag bits.
        flags: u32,
        /// Why they are rejected.
        reason: &'static str,
    },
    /// A combination Linux reports as ENOTSUPP (e.g. LRU without preallocation).
    #[error("{map_type} map: {what} is not supported")]
    NotSupported {
        /// Map type.
        map_type: MapType,
        /// What is not supported.
        what: &'static str,
    },
    /// A map-in-map was created without an inner map template (Linux: EBADF).
    #[error("{map_type} map: an inner map definition is required")]
    MissingInnerMap {
        /// Outer map type.
        map_type: MapType,
    },
    /// An inner map definition was given for a map type that does not hold maps.
    #[error("{map_type} map: only array_of_maps and hash_of_maps take an inner map definition")]
    UnexpectedInnerMap {
        /// Map type.
        map_type: MapType,
    },
    /// An inner map is not compatible with the outer map's template (Linux: EINVAL).
    #[error("inner map is incompatible with the template of the outer map: {reason}")]
    IncompatibleInnerMap {
        /// Which property differs.
        reason: String,
    },
    /// A program is not compatible with the programs already in a prog_array (EINVAL).
    #[error("program type {prog_type} does not match the prog_array owner type {owner_type}")]
    IncompatibleProgram {
        /// Type of the program being inserted.
        prog_type: u32,
        /// Type the array is bound to.
        owner_type: u32,
    },
    /// A program differs from the prog_array's first program in a property
    /// the array fixes (`xdp_has_frags`, `expected_attach_type`; EINVAL).
    #[error(
        "program '{program}' has {property} {value} but the prog_array is bound to program '{owner}' with {property} {owner_value}"
    )]
    IncompatibleProgramProperty {
        /// Name of the program being inserted.
        program: String,
        /// Name of the program that fixed the array's properties.
        owner: String,
        /// The differing property.
        property: &'static str,
        /// Its value in the program being inserted.
        value: u32,
        /// Its value fixed by the owner.
        owner_value: u32,
    },
    /// Memory for the map could not be allocated (Linux: ENOMEM).
    #[error("cannot allocate {bytes} bytes for map {name:?}: {reason}")]
    OutOfMemory {
        /// Map name.
        name: String,
        /// Requested size.
        bytes: u64,
        /// OS or allocator error.
        reason: String,
    },
    /// A host buffer has the wrong size for the key.
    #[error("key buffer has {got} bytes, map key_size is {expected}")]
    KeySize {
        /// Expected size.
        expected: usize,
        /// Given size.
        got: usize,
    },
    /// A host buffer has the wrong size for the value.
    #[error("value buffer has {got} bytes, expected {expected}")]
    ValueSize {
        /// Expected size (for per-CPU maps: ncpus * round_up(value_size, 8)).
        expected: usize,
        /// Given size.
        got: usize,
    },
    /// Update or lookup flags are invalid for this map (Linux: EINVAL).
    #[error("invalid flags {flags:#x} for {map_type} map")]
    InvalidFlags {
        /// Map type.
        map_type: MapType,
        /// Flags given.
        flags: u64,
    },
    /// No element for the key (Linux: ENOENT).
    #[error("no such element")]
    NotFound,
    /// The element exists and BPF_NOEXIST was given (Linux: EEXIST).
    #[error("element exists (BPF_NOEXIST)")]
    Exists,
    /// The map is full or an index is outside `max_entries` (Linux: E2BIG).
    #[error("map is full or index out of range")]
    Full,
    /// The map was frozen or created read-only for the host (Linux: EPERM).
    #[error("map {name:?} is read-only for the host: {reason}")]
    ReadOnly {
        /// Map name.
        name: String,
        /// `frozen` or `BPF_F_RDONLY`.
        reason: &'static str,
    },
    /// The map was created write-only for the host (Linux: EPERM).
    #[error("map {name:?} is write-only for the host (BPF_F_WRONLY)")]
    WriteOnly {
        /// Map name.
        name: String,
    },
    /// The operation does not exist for this map type.
    #[error("{op} is not supported on {map_type} maps")]
    OpNotSupported {
        /// Map type.
        map_type: MapType,
        /// Operation name.
        op: &'static str,
        /// Errno Linux returns for it.
        errno: i32,
    },
    /// The operation needs a value of another kind (e.g. `update` on a map of maps
    /// needs a map handle, use `update_inner_map`).
    #[error("{0}")]
    WrongValueKind(&'static str),
    /// Initial data does not fit the map.
    #[error("initial data of {got} bytes does not fit the map ({capacity} bytes)")]
    InitialData {
        /// Bytes given.
        got: usize,
        /// Bytes available.
        capacity: usize,
    },
    /// `freeze` on a map that is already frozen (Linux: EBUSY).
    #[error("map {name:?} is already frozen")]
    AlreadyFrozen {
        /// Map name.
        name: String,
    },
    /// A value given to a host update is refused (e.g. devmap ifindex 0 in a
    /// devmap_hash, an unknown device, a cpumap queue size over 16384).
    #[error("{map_type} map: {field} {value} refused: {reason}")]
    InvalidValue {
        /// Map type.
        map_type: MapType,
        /// Value field (`ifindex`, `qsize`, `bpf_prog.fd`, `cpu`).
        field: &'static str,
        /// Offending value.
        value: u64,
        /// Why it is refused.
        reason: &'static str,
        /// Errno Linux returns for it (EINVAL, ENODEV, EOVERFLOW).
        errno: i32,
    },
    /// Any other errno from the shared program/host implementation.
    #[error("map operation failed with errno {0}")]
    Errno(i32),
}

impl MapError {
    /// The (positive) Linux errno for this error.
    pub fn errno(&self) -> i32 {
        use errno::*;
        match self {
            MapError::UnknownMapType { .. }
            | MapError::InvalidAttr { .. }
            | MapError::InvalidMapFlags { .. }
            | MapError::UnexpectedInnerMap { .. }
            | MapError::IncompatibleInnerMap { .. }
            | MapError::IncompatibleProgram { .. }
            | MapError::IncompatibleProgramProperty { .. }
            | MapError::KeySize { .. }
            | MapError::ValueSize { .. }
            | MapError::InvalidFlags { .. }
            | MapError::WrongValueKind(_)
            | MapError::InitialData { .. } => EINVAL,
            MapError::AttrTooBig { .. } | MapError::Full => E2BIG,
            MapError::NotSupported { .. } => ENOTSUPP,
            MapError::MissingInnerMap { .. } => EBADF,
            MapError::OutOfMemory { .. } => ENOMEM,
            MapError::NotFound => ENOENT,
            MapError::Exists => EEXIST,
            MapError::ReadOnly { .. } | MapError::WriteOnly { .. } => EPERM,
            MapError::OpNotSupported { errno, .. } | MapError::InvalidValue { errno, .. } => *errno,
            MapError::AlreadyFrozen { .. } => EBUSY,
            MapError::Errno(e) => *e,
        }
    }

    /// Converts a negative errno returned by a program-side operation.
    pub(crate) fn from_ret(ret: i64) -> Result<(), MapError> {
        if ret >= 0 {
            return Ok(());
        }
        let e = (-ret) as i32;
        Err(match e {
            errno::ENOENT => MapError::NotFound,
            errno::EEXIST => MapError::Exists,
            errno::E2BIG => MapError::Full,
            other => MapError::Errno(other),
        })
    }
}
