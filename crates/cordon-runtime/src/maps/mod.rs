//! BPF maps with Linux semantics.
//!
//! # Model
//!
//! A map is a [`Map`] object shared through [`MapHandle`] (`Arc<Map>`). It has two
//! faces:
//!
//! * **Program side** (`unsafe` methods on raw pointers: [`Map::lookup`],
//!   [`Map::update`], [`Map::delete`], [`Map::push`], [`Map::pop`], [`Map::peek`],
//!   [`Map::get_next_key`], the ring buffer operations, ...). They return what the
//!   Linux helpers return: a raw value pointer (null when absent) or `0` / a
//!   negative errno. Value pointers point into memory that is allocated once when
//!   the map is created and never moved or freed while the map lives, exactly as
//!   Linux's preallocated maps: deleted elements are recycled through a free list,
//!   so a stale pointer always points to valid memory of the map (possibly reused
//!   by another key, as in Linux).
//! * **Host side** (safe methods on byte slices: [`Map::lookup_value`],
//!   [`Map::update_value`], [`Map::delete_value`], [`Map::next_key`],
//!   [`Map::keys`], [`Map::entries`], ...), with the `bpf(2)` syscall's semantics and
//!   a typed [`MapError`].
//!
//! # CPUs
//!
//! Per-CPU maps have `ncpus` slots given at creation. The "current CPU" of a thread
//! is a thread-local slot index set by the runtime with [`set_current_cpu`] (it is
//! what `bpf_get_smp_processor_id` returns); program-side operations use it.
//!
//! # Map pointers seen by programs
//!
//! A program sees a map as the address of its [`Map`] object
//! ([`Map::as_prog_ptr`]); helpers turn it back with [`Map::from_prog_ptr`]. The
//! loaded program must keep a [`MapHandle`] for every map it references. Lookups in
//! `array_of_maps` / `hash_of_maps` return the inner map's address in the same form.
//! Inner maps (and programs in a `prog_array`) removed by the host are released only
//! after an epoch grace period: the runtime must hold an [`EpochGuard`] (from
//! [`pin`]) while a program runs, so that pointers it obtained stay valid until it
//! exits.
//!
//! The C-ABI functions in [`abi`] have the register signatures of the Linux map
//! helpers, for JIT-compiled code and the interpreter.
//!
//! # Known differences from Linux
//!
//! * Hash maps are always preallocated; `BPF_F_NO_PREALLOC` is accepted and only
//!   means that untouched elements are never written (their pages stay
//!   uncommitted). Semantics (E2BIG when full, replacement allowed when full) are
//!   those of Linux.
//! * LRU maps reproduce `bpf_lru_list.c` (global active/inactive/free lists,
//!   per-CPU local free and pending lists, reference bits, rotation, refill
//!   batches of `clamp(max_entries / ncpus / 2, 1, 128)`, per-CPU lists with
//!   `BPF_F_NO_COMMON_LRU`), so for operations on one CPU the surviving keys
//!   are Linux's when `ncpus` equals Linux's possible CPUs. Concurrent
//!   allocations on several CPUs interleave differently from any given Linux
//!   run, as they would between two Linux runs.
//! * Redirect maps (`devmap`, `devmap_hash`, `cpumap`, `xskmap`) hold what the
//!   host chose: ifindexes (any > 0 unless [`Map::set_devices`] registered a
//!   list), CPUs below the runtime's CPU count, opaque socket ids. Programs
//!   cannot be attached to entries (`bpf_prog.fd` > 0 is EINVAL), and an
//!   xskmap lookup from a program returns the stored socket id (read-only)
//!   where Linux returns a `struct bpf_xdp_sock *` (whose only field is
//!   `queue_id`). Unverified (checked-mode) programs may write xskmap values.
//! * Hash iteration order depends on a per-map random seed (Linux uses jhash with
//!   a random seed too). `BPF_F_ZERO_SEED` maps hash with Linux's own function
//!   (`htab_map_hash`, seed 0), so their order is the kernel's.
//! * A lock-free lookup that cannot conclude (two attempts raced with writers on
//!   the same bucket) takes the bucket lock, so a key that exists during the whole
//!   lookup is always found, even while it is being replaced.

pub mod abi;
mod array;
mod cpumap;
pub(crate) mod devmap;
mod error;
mod hash;
mod lru;
mod lru_list;
mod map;
mod of_maps;
mod prog_array;
mod queue;
mod ringbuf;
mod util;
mod validate;
mod xskmap;

pub use array::ArrayLayout;
pub use error::{MapError, errno};
pub(crate) use map::ForEachKey;
pub use map::{Entries, Keys, Map, MapHandle, RingBufRecord};
pub use prog_array::{ProgramHandle, attach_type, section_expected_attach_type};
pub use ringbuf::{ringbuf_discard, ringbuf_submit};
pub use util::{bpf_spin_lock, bpf_spin_unlock};
pub use validate::validate_def;

use std::cell::Cell;
use std::fmt;

/// `BPF_ANY`: create a new element or update an existing one.
pub const BPF_ANY: u64 = 0;
/// `BPF_NOEXIST`: create a new element only if it did not exist.
pub const BPF_NOEXIST: u64 = 1;
/// `BPF_EXIST`: update an existing element only.
pub const BPF_EXIST: u64 = 2;
/// `BPF_F_LOCK`: update/lookup the value under its `bpf_spin_lock`.
pub const BPF_F_LOCK: u64 = 4;

/// Map creation flags (`map_flags`), as in `linux/bpf.h`.
pub mod flags {
    /// Do not preallocate hash elements.
    pub const BPF_F_NO_PREALLOC: u32 = 1 << 0;
    /// LRU hash: one LRU list per CPU instead of a common one.
    pub const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;
    /// `numa_node` attribute is valid.
    pub const BPF_F_NUMA_NODE: u32 = 1 << 2;
    /// Host (syscall side) may only read.
    pub const BPF_F_RDONLY: u32 = 1 << 3;
    /// Host (syscall side) may only write.
    pub const BPF_F_WRONLY: u32 = 1 << 4;
    /// Stack trace maps: store build ids.
    pub const BPF_F_STACK_BUILD_ID: u32 = 1 << 5;
    /// Hash maps: zero hash seed (testing only).
    pub const BPF_F_ZERO_SEED: u32 = 1 << 6;
    /// Programs may only read.
    pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
    /// Programs may only write.
    pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;
    /// Clone map from listener for newly accepted socket.
    pub const BPF_F_CLONE: u32 = 1 << 9;
    /// Array map can be memory-mapped.
    pub const BPF_F_MMAPABLE: u32 = 1 << 10;
    /// perf_event_array: keep entries when the file is closed.
    pub const BPF_F_PRESERVE_ELEMS: u32 = 1 << 11;
    /// Array used as inner map: max_entries may differ from the template.
    pub const BPF_F_INNER_MAP: u32 = 1 << 12;
    /// All access-restriction flags.
    pub const BPF_F_ACCESS_MASK: u32 =
        BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG;
}

/// Ring buffer flags and query selectors.
pub mod ringbuf_flags {
    /// Do not wake up the consumer on submit.
    pub const BPF_RB_NO_WAKEUP: u64 = 1 << 0;
    /// Always wake up the consumer on submit.
    pub const BPF_RB_FORCE_WAKEUP: u64 = 1 << 1;
    /// `bpf_ringbuf_query`: bytes not yet consumed.
    pub const BPF_RB_AVAIL_DATA: u64 = 0;
    /// `bpf_ringbuf_query`: size of the data area.
    pub const BPF_RB_RING_SIZE: u64 = 1;
    /// `bpf_ringbuf_query`: consumer position.
    pub const BPF_RB_CONS_POS: u64 = 2;
    /// `bpf_ringbuf_query`: producer position.
    pub const BPF_RB_PROD_POS: u64 = 3;
    /// Record header: record is reserved but not committed.
    pub const BPF_RINGBUF_BUSY_BIT: u32 = 1 << 31;
    /// Record header: record was discarded.
    pub const BPF_RINGBUF_DISCARD_BIT: u32 = 1 << 30;
    /// Size of the record header (`struct bpf_ringbuf_hdr { u32 len; u32 pg_off; }`).
    pub const BPF_RINGBUF_HDR_SZ: u32 = 8;
}

/// The map types Cordon implements, with their `enum bpf_map_type` ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum MapType {
    /// `BPF_MAP_TYPE_HASH`
    Hash = 1,
    /// `BPF_MAP_TYPE_ARRAY`
    Array = 2,
    /// `BPF_MAP_TYPE_PROG_ARRAY`
    ProgArray = 3,
    /// `BPF_MAP_TYPE_PERCPU_HASH`
    PercpuHash = 5,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`
    PercpuArray = 6,
    /// `BPF_MAP_TYPE_LRU_HASH`
    LruHash = 9,
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`
    LruPercpuHash = 10,
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS`
    ArrayOfMaps = 12,
    /// `BPF_MAP_TYPE_HASH_OF_MAPS`
    HashOfMaps = 13,
    /// `BPF_MAP_TYPE_DEVMAP`
    DevMap = 14,
    /// `BPF_MAP_TYPE_CPUMAP`
    CpuMap = 16,
    /// `BPF_MAP_TYPE_XSKMAP`
    XskMap = 17,
    /// `BPF_MAP_TYPE_QUEUE`
    Queue = 22,
    /// `BPF_MAP_TYPE_STACK`
    Stack = 23,
    /// `BPF_MAP_TYPE_DEVMAP_HASH`
    DevMapHash = 25,
    /// `BPF_MAP_TYPE_RINGBUF`
    RingBuf = 27,
}

impl MapType {
    /// All implemented types.
    pub const ALL: [MapType; 16] = [
        MapType::Hash,
        MapType::Array,
        MapType::ProgArray,
        MapType::PercpuHash,
        MapType::PercpuArray,
        MapType::LruHash,
        MapType::LruPercpuHash,
        MapType::ArrayOfMaps,
        MapType::HashOfMaps,
        MapType::Queue,
        MapType::Stack,
        MapType::RingBuf,
        MapType::DevMap,
        MapType::DevMapHash,
        MapType::CpuMap,
        MapType::XskMap,
    ];

    /// Converts a raw `enum bpf_map_type` id.
    pub fn from_id(id: u32) -> Result<MapType, MapError> {
        MapType::ALL
            .into_iter()
            .find(|t| *t as u32 == id)
            .ok_or(MapError::UnknownMapType { id })
    }

    /// The raw `enum bpf_map_type` id.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Linux's name for the type (as in bpftool), e.g. `lru_percpu_hash`.
    pub fn name(self) -> &'static str {
        match self {
            MapType::Hash => "hash",
            MapType::Array => "array",
            MapType::ProgArray => "prog_array",
            MapType::PercpuHash => "percpu_hash",
            MapType::PercpuArray => "percpu_array",
            MapType::LruHash => "lru_hash",
            MapType::LruPercpuHash => "lru_percpu_hash",
            MapType::ArrayOfMaps => "array_of_maps",
            MapType::HashOfMaps => "hash_of_maps",
            MapType::Queue => "queue",
            MapType::Stack => "stack",
            MapType::RingBuf => "ringbuf",
            MapType::DevMap => "devmap",
            MapType::DevMapHash => "devmap_hash",
            MapType::CpuMap => "cpumap",
            MapType::XskMap => "xskmap",
        }
    }

    /// Whether values are per CPU.
    pub fn is_percpu(self) -> bool {
        matches!(
            self,
            MapType::PercpuArray | MapType::PercpuHash | MapType::LruPercpuHash
        )
    }

    /// Whether this is an XDP redirect map (`devmap`, `devmap_hash`,
    /// `cpumap`, `xskmap`): the maps `bpf_redirect_map` takes.
    pub fn is_redirect_map(self) -> bool {
        matches!(
            self,
            MapType::DevMap | MapType::DevMapHash | MapType::CpuMap | MapType::XskMap
        )
    }

    /// Whether this is a map-in-map type.
    pub fn is_map_of_maps(self) -> bool {
        matches!(self, MapType::ArrayOfMaps | MapType::HashOfMaps)
    }
}

impl fmt::Display for MapType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Attributes of a map to create (the fields of `BPF_MAP_CREATE` Cordon uses).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MapDef {
    /// Raw `enum bpf_map_type` id (see [`MapType`]); unknown ids are rejected at creation.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries (ring buffer: data size in bytes).
    pub max_entries: u32,
    /// `map_flags` (see [`flags`]).
    pub flags: u32,
    /// Template of the inner map for `array_of_maps` / `hash_of_maps`.
    pub inner: Option<Box<MapDef>>,
    /// Map name (for errors and introspection).
    pub name: String,
    /// Offset of a `struct bpf_spin_lock` in the value, if the value's BTF has one
    /// (enables `BPF_F_LOCK` and makes value copies skip the lock word).
    pub spin_lock_off: Option<u32>,
}

impl MapDef {
    /// A definition with the given type and sizes, no flags, empty name.
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> MapDef {
        MapDef {
            map_type: map_type.id(),
            key_size,
            value_size,
            max_entries,
            ..MapDef::default()
        }
    }

    /// Sets `map_flags`.
    pub fn with_flags(mut self, flags: u32) -> MapDef {
        self.flags = flags;
        self
    }

    /// Sets the name.
    pub fn with_name(mut self, name: impl Into<String>) -> MapDef {
        self.name = name.into();
        self
    }

    /// Sets the inner map template.
    pub fn with_inner(mut self, inner: MapDef) -> MapDef {
        self.inner = Some(Box::new(inner));
        self
    }

    /// Sets the offset of the `bpf_spin_lock` in the value.
    pub fn with_spin_lock(mut self, off: u32) -> MapDef {
        self.spin_lock_off = Some(off);
        self
    }

    /// The map type, or [`MapError::UnknownMapType`].
    pub fn kind(&self) -> Result<MapType, MapError> {
        MapType::from_id(self.map_type)
    }
}

thread_local! {
    static CURRENT_CPU: Cell<u32> = const { Cell::new(0) };
}

/// Sets the CPU slot of the calling thread (what per-CPU map operations and
/// `bpf_get_smp_processor_id` use). The runtime assigns each worker thread a
/// distinct slot in `0..ncpus`. Threads that never call this use slot 0.
pub fn set_current_cpu(cpu: u32) {
    CURRENT_CPU.with(|c| c.set(cpu));
}

/// The CPU slot of the calling thread (see [`set_current_cpu`]).
#[inline]
pub fn current_cpu() -> u32 {
    CURRENT_CPU.with(|c| c.get())
}

/// Epoch guard that keeps inner maps and tail-call targets obtained by a program
/// alive. Hold one for the whole run of a program.
pub type EpochGuard = crossbeam_epoch::Guard;

/// Pins the calling thread to the current epoch (see [`EpochGuard`]). Cheap
/// (a few nanoseconds) and re-entrant.
#[inline]
pub fn pin() -> EpochGuard {
    crossbeam_epoch::pin()
}
