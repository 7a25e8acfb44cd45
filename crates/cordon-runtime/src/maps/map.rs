//! The [`Map`] object: creation, program-side operations and the host API.

use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use crossbeam_epoch::Guard;

use super::array::{ArrayLayout, ArrayMap};
use super::devmap::RedirectMap;
use super::errno::*;
use super::flags::{BPF_F_RDONLY, BPF_F_RDONLY_PROG, BPF_F_WRONLY};
use super::hash::HashTable;
use super::of_maps::{ArrayOfMaps, HashOfMaps};
use super::prog_array::{ProgArray, ProgramHandle};
use super::queue::QueueStack;
use super::ringbuf::RingBuf;
use super::util::opt_ptr;
use super::validate::validate_def;
use super::{BPF_F_LOCK, MapDef, MapError, MapType, current_cpu};

/// Shared handle to a map.
pub type MapHandle = Arc<Map>;

enum Imp {
    Array(ArrayMap),
    Hash(HashTable),
    ProgArray(ProgArray),
    RingBuf(RingBuf),
    Queue(QueueStack),
    ArrayOfMaps(ArrayOfMaps),
    HashOfMaps(HashOfMaps),
    Redirect(RedirectMap),
}

/// Key of a [`ForEachStep`]: an array index (the caller stores it where the
/// callback can read it, as Linux passes `&i`) or a hash element's key.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ForEachKey {
    Index(u32),
    Ptr(*const u8),
}

/// One element of a `bpf_for_each_map_elem` walk: the cursor for the next
/// step, the key and the value (valid while the map lives).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ForEachStep {
    pub pos: u64,
    pub key: ForEachKey,
    pub value: *mut u8,
    /// Memory holding every value the walk hands out, when contiguous
    /// (arrays: the CPU's value area), so checked mode grants it once.
    pub values_area: Option<(*mut u8, usize)>,
}

/// A BPF map. See the [module documentation](super) for the model.
pub struct Map {
    def: MapDef,
    map_type: MapType,
    id: u32,
    ncpus: u32,
    frozen: AtomicBool,
    imp: Imp,
}

impl std::fmt::Debug for Map {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Map")
            .field("id", &self.id)
            .field("type", &self.map_type)
            .field("name", &self.def.name)
            .field("key_size", &self.def.key_size)
            .field("value_size", &self.def.value_size)
            .field("max_entries", &self.def.max_entries)
            .field("flags", &self.def.flags)
            .finish()
    }
}

/// A record read from a ring buffer by [`Map::ringbuf_consume`].
pub type RingBufRecord<'a> = &'a [u8];

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

const RET_EOPNOTSUPP: i64 = -(EOPNOTSUPP as i64);
const RET_ENOTSUPP: i64 = -(ENOTSUPP as i64);
const RET_EINVAL: i64 = -(EINVAL as i64);

impl Map {
    /// Creates a map after validating `def` as `BPF_MAP_CREATE` does. `ncpus` is
    /// the number of CPU slots of per-CPU maps and per-CPU LRU lists (at least 1).
    pub fn create(def: &MapDef, ncpus: u32) -> Result<MapHandle, MapError> {
        let t = validate_def(def)?;
        let ncpus = ncpus.max(1);
        let n = ncpus as usize;
        let mut def = def.clone();
        let imp = match t {
            MapType::Array => Imp::Array(ArrayMap::new(&def, false, n)?),
            MapType::PercpuArray => Imp::Array(ArrayMap::new(&def, true, n)?),
            MapType::Hash | MapType::PercpuHash | MapType::LruHash | MapType::LruPercpuHash => {
                let h = HashTable::new(&def, t, def.value_size, n)?;
                def.max_entries = h.max_entries();
                Imp::Hash(h)
            }
            MapType::ProgArray => Imp::ProgArray(ProgArray::new(def.max_entries, &def.name)?),
            MapType::RingBuf => Imp::RingBuf(RingBuf::new(&def)?),
            MapType::Queue => Imp::Queue(QueueStack::new(&def, false)?),
            MapType::Stack => Imp::Queue(QueueStack::new(&def, true)?),
            MapType::ArrayOfMaps => Imp::ArrayOfMaps(ArrayOfMaps::new(&def)?),
            MapType::HashOfMaps => Imp::HashOfMaps(HashOfMaps::new(&def, n)?),
            MapType::DevMap | MapType::DevMapHash | MapType::CpuMap | MapType::XskMap => {
                if matches!(t, MapType::DevMap | MapType::DevMapHash) {
                    // dev_map_init_map: lookups point straight at the entry.
                    def.flags |= BPF_F_RDONLY_PROG;
                }
                Imp::Redirect(RedirectMap::new(t, &def, ncpus)?)
            }
        };
        Ok(Arc::new(Map {
            def,
            map_type: t,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            ncpus,
            frozen: AtomicBool::new(false),
            imp,
        }))
    }

    /// Creates an `array` / `percpu_array` whose element 0 (on every CPU) starts
    /// with `data` (global `.data` / `.rodata` / `.bss` sections). Call
    /// [`Map::freeze`] afterwards for `.rodata`.
    pub fn create_with_data(def: &MapDef, ncpus: u32, data: &[u8]) -> Result<MapHandle, MapError> {
        let m = Map::create(def, ncpus)?;
        match &m.imp {
            Imp::Array(a) => a.init_data(data)?,
            _ => {
                return Err(MapError::WrongValueKind(
                    "initial data is only supported for array and percpu_array maps",
                ));
            }
        }
        Ok(m)
    }

    // ----- introspection -------------------------------------------------------

    /// The definition (with the effective `max_entries`, e.g. rounded up for
    /// per-CPU LRU maps).
    pub fn def(&self) -> &MapDef {
        &self.def
    }
    /// The map type.
    pub fn map_type(&self) -> MapType {
        self.map_type
    }
    /// Unique id of this map in the process (Linux map ids; never 0).
    pub fn id(&self) -> u32 {
        self.id
    }
    /// Map name.
    pub fn name(&self) -> &str {
        &self.def.name
    }
    /// Number of CPU slots.
    pub fn ncpus(&self) -> u32 {
        self.ncpus
    }
    /// Key size in bytes.
    pub fn key_size(&self) -> u32 {
        self.def.key_size
    }
    /// Value size in bytes (as seen by programs).
    pub fn value_size(&self) -> u32 {
        self.def.value_size
    }
    /// Effective `max_entries`.
    pub fn max_entries(&self) -> u32 {
        self.def.max_entries
    }
    /// Size of the value buffer of host lookups/updates: `ncpus *
    /// round_up(value_size, 8)` for per-CPU maps, 4 (an id) for prog arrays and
    /// maps of maps, `value_size` otherwise.
    pub fn host_value_size(&self) -> usize {
        match &self.imp {
            Imp::Array(a) => a.host_value_size(),
            Imp::Hash(h) => h.host_value_size(),
            _ => self.def.value_size as usize,
        }
    }
    /// Number of elements of hash maps (all flavours) and queues/stacks.
    pub fn len(&self) -> Option<u32> {
        match &self.imp {
            Imp::Hash(h) => Some(h.len()),
            Imp::HashOfMaps(h) => Some(h.table().len()),
            Imp::Queue(q) => Some(q.len()),
            Imp::Redirect(r) => r.len(),
            _ => None,
        }
    }
    /// Whether [`Map::len`] is `Some(0)`.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
    /// Memory layout of an array / percpu_array map (stable for the map's life).
    pub fn array_layout(&self) -> Option<ArrayLayout> {
        match &self.imp {
            Imp::Array(a) => Some(a.layout()),
            _ => None,
        }
    }
    /// Whether `p` points into this map's value memory (slab or ring buffer).
    pub fn owns_ptr(&self, p: *const u8) -> bool {
        match &self.imp {
            Imp::Array(a) => a.owns(p),
            Imp::Hash(h) => h.owns(p),
            Imp::HashOfMaps(h) => h.table().owns(p),
            Imp::RingBuf(r) => r.owns(p),
            Imp::Redirect(r) => r.owns(p),
            _ => false,
        }
    }
    /// The inner map template of a map of maps.
    pub fn inner_template(&self) -> Option<&MapDef> {
        match &self.imp {
            Imp::ArrayOfMaps(a) => Some(a.template()),
            Imp::HashOfMaps(h) => Some(h.template()),
            _ => None,
        }
    }

    /// Freezes the map: the host can no longer write it (`BPF_MAP_FREEZE`);
    /// programs still can unless the map has `BPF_F_RDONLY_PROG`.
    pub fn freeze(&self) -> Result<(), MapError> {
        if self.frozen.swap(true, Ordering::AcqRel) {
            return Err(MapError::AlreadyFrozen {
                name: self.def.name.clone(),
            });
        }
        Ok(())
    }
    /// Whether [`Map::freeze`] was called.
    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::Acquire)
    }

    // ----- program-visible pointer ---------------------------------------------

    /// The value a program holds for this map (e.g. after `ld_imm64` with a map
    /// fd): the address of the `Map`.
    pub fn as_prog_ptr(&self) -> u64 {
        self as *const Map as u64
    }

    /// Turns a program-visible map pointer back into a reference.
    ///
    /// # Safety
    /// `p` must come from [`Map::as_prog_ptr`] or a map-of-maps lookup, and the map
    /// must be kept alive for `'a` (by a [`MapHandle`] the program holds, or by an
    /// [`EpochGuard`](super::EpochGuard) for inner maps).
    pub unsafe fn from_prog_ptr<'a>(p: u64) -> &'a Map {
        // SAFETY: caller contract.
        unsafe { &*(p as *const Map) }
    }

    // ----- program side --------------------------------------------------------

    #[inline(always)]
    fn cpu_if_percpu(&self) -> u32 {
        if self.map_type.is_percpu() {
            current_cpu()
        } else {
            0
        }
    }

    /// `bpf_map_lookup_elem`: value pointer (current CPU's slot for per-CPU maps,
    /// inner map pointer for maps of maps) or null.
    ///
    /// # Safety
    /// `key` must be readable for `key_size` bytes. For maps of maps the caller
    /// must hold an epoch guard while using the result.
    #[inline]
    pub unsafe fn lookup(&self, key: *const u8) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe {
            match &self.imp {
                Imp::Hash(h) => h.lookup(key, self.cpu_if_percpu(), true),
                Imp::Array(a) => a.lookup(key, self.cpu_if_percpu()),
                Imp::ArrayOfMaps(a) => a.lookup(key),
                Imp::HashOfMaps(h) => h.lookup(key),
                Imp::Redirect(r) => r.lookup(key),
                _ => ptr::null_mut(),
            }
        }
    }

    /// `bpf_map_lookup_percpu_elem`: the value of CPU `cpu`, null if absent or if
    /// `cpu >= ncpus` or the map is not per-CPU.
    ///
    /// # Safety
    /// `key` must be readable for `key_size` bytes.
    pub unsafe fn lookup_percpu_elem(&self, key: *const u8, cpu: u32) -> *mut u8 {
        if !self.map_type.is_percpu() {
            return ptr::null_mut();
        }
        // SAFETY: forwarded.
        unsafe {
            match &self.imp {
                Imp::Hash(h) => h.lookup_percpu(key, cpu),
                Imp::Array(a) => a.lookup_percpu(key, cpu),
                _ => ptr::null_mut(),
            }
        }
    }

    /// `bpf_map_update_elem` from a program: 0 or a negative errno.
    ///
    /// # Safety
    /// `key` readable for `key_size` bytes, `value` for `value_size` bytes.
    pub unsafe fn update(&self, key: *const u8, value: *const u8, flags: u64) -> i64 {
        if self.def.flags & BPF_F_RDONLY_PROG != 0 {
            return -(EPERM as i64);
        }
        // SAFETY: forwarded.
        unsafe {
            match &self.imp {
                Imp::Hash(h) => h.update(key, value, flags, current_cpu(), false, None),
                Imp::Array(a) => a.update(key, value, flags, current_cpu()),
                Imp::Queue(_) => RET_EINVAL,
                Imp::RingBuf(_) => RET_ENOTSUPP,
                _ => RET_EOPNOTSUPP,
            }
        }
    }

    /// `bpf_map_delete_elem` from a program.
    ///
    /// # Safety
    /// `key` readable for `key_size` bytes.
    pub unsafe fn delete(&self, key: *const u8) -> i64 {
        if self.def.flags & BPF_F_RDONLY_PROG != 0 {
            return -(EPERM as i64);
        }
        match &self.imp {
            // SAFETY: forwarded.
            Imp::Hash(h) => unsafe { h.delete(key, None) },
            Imp::Array(_) | Imp::Queue(_) => RET_EINVAL,
            Imp::RingBuf(_) => RET_ENOTSUPP,
            _ => RET_EOPNOTSUPP,
        }
    }

    /// `bpf_map_push_elem` (queue/stack).
    ///
    /// # Safety
    /// `value` readable for `value_size` bytes.
    pub unsafe fn push(&self, value: *const u8, flags: u64) -> i64 {
        match &self.imp {
            // SAFETY: forwarded.
            Imp::Queue(q) => unsafe { q.push(value, flags) },
            _ => RET_EOPNOTSUPP,
        }
    }

    /// `bpf_map_pop_elem` (queue/stack): copies the value to `value`.
    ///
    /// # Safety
    /// `value` writable for `value_size` bytes.
    pub unsafe fn pop(&self, value: *mut u8) -> i64 {
        match &self.imp {
            // SAFETY: forwarded.
            Imp::Queue(q) => unsafe { q.pop(value, true) },
            _ => RET_EOPNOTSUPP,
        }
    }

    /// `bpf_map_peek_elem` (queue/stack).
    ///
    /// # Safety
    /// `value` writable for `value_size` bytes.
    pub unsafe fn peek(&self, value: *mut u8) -> i64 {
        match &self.imp {
            // SAFETY: forwarded.
            Imp::Queue(q) => unsafe { q.pop(value, false) },
            _ => RET_EOPNOTSUPP,
        }
    }

    /// `map_get_next_key`: writes the key following `key` (the first key if `key`
    /// is null or absent) to `next`; `-ENOENT` after the last key.
    ///
    /// # Safety
    /// `key` null or readable for `key_size` bytes; `next` writable for `key_size`.
    pub unsafe fn get_next_key(&self, key: *const u8, next: *mut u8) -> i64 {
        // SAFETY: forwarded.
        unsafe {
            match &self.imp {
                Imp::Array(a) => a.get_next_key(key, next),
                Imp::Hash(h) => h.get_next_key(key, next),
                Imp::HashOfMaps(h) => h.table().get_next_key(key, next),
                Imp::ProgArray(p) => array_next_key(p.max_entries(), key, next),
                Imp::ArrayOfMaps(a) => array_next_key(a.max_entries(), key, next),
                Imp::Redirect(r) => {
                    let k = opt_ptr_u32(key);
                    match r.next_key(k) {
                        Some(n) => {
                            ptr::write_unaligned(next as *mut u32, n);
                            0
                        }
                        None => -(ENOENT as i64),
                    }
                }
                Imp::Queue(_) => RET_EINVAL,
                Imp::RingBuf(_) => RET_ENOTSUPP,
            }
        }
    }

    /// `bpf_for_each_map_elem`: calls `f(key, value)` for each element (current
    /// CPU's value for per-CPU maps) until it returns `false`; returns the number
    /// of calls, or `None` if the map type does not support iteration.
    pub fn for_each_elem(&self, mut f: impl FnMut(*const u8, *mut u8) -> bool) -> Option<u32> {
        match &self.imp {
            Imp::Array(a) => Some(a.for_each(current_cpu(), &mut f)),
            Imp::Hash(h) => Some(h.for_each(current_cpu(), &mut f)),
            _ => None,
        }
    }

    /// One step of `bpf_for_each_map_elem` from cursor `pos` (0 = start), for
    /// the current CPU: `Some(None)` when done, `None` if the map type has no
    /// element iteration. See [`ForEachStep`].
    pub(crate) fn for_each_next(&self, pos: u64) -> Option<Option<ForEachStep>> {
        match &self.imp {
            Imp::Array(a) => {
                let cpu = current_cpu();
                Some(a.cursor_next(pos, cpu).map(|(pos, i, value)| ForEachStep {
                    pos,
                    key: ForEachKey::Index(i),
                    value,
                    values_area: Some(a.cpu_area(cpu)),
                }))
            }
            Imp::Hash(h) => {
                Some(
                    h.cursor_next(pos, current_cpu())
                        .map(|(pos, k, value)| ForEachStep {
                            pos,
                            key: ForEachKey::Ptr(k),
                            value,
                            values_area: None,
                        }),
                )
            }
            _ => None,
        }
    }

    /// `bpf_ringbuf_reserve`: record pointer or null (also null for non-ringbuf
    /// maps). Finish it with [`ringbuf_submit`](super::ringbuf_submit) or
    /// [`ringbuf_discard`](super::ringbuf_discard).
    pub fn ringbuf_reserve(&self, size: u64, flags: u64) -> *mut u8 {
        match &self.imp {
            Imp::RingBuf(r) => r.reserve(size, flags),
            _ => ptr::null_mut(),
        }
    }

    /// `bpf_ringbuf_output`: 0, `-EAGAIN` if full, `-EINVAL` on bad flags.
    ///
    /// # Safety
    /// `data` readable for `size` bytes.
    pub unsafe fn ringbuf_output(&self, data: *const u8, size: u64, flags: u64) -> i64 {
        match &self.imp {
            // SAFETY: forwarded.
            Imp::RingBuf(r) => unsafe { r.output(data, size, flags) },
            _ => RET_EINVAL,
        }
    }

    /// `bpf_ringbuf_query` (0 for non-ringbuf maps and unknown selectors).
    pub fn ringbuf_query(&self, flags: u64) -> u64 {
        match &self.imp {
            Imp::RingBuf(r) => r.query(flags),
            _ => 0,
        }
    }

    /// Tail-call target at `index` of a prog_array, valid while `guard` is held.
    pub fn tail_call_target<'g>(
        &self,
        index: u32,
        guard: &'g Guard,
    ) -> Option<&'g Arc<dyn ProgramHandle>> {
        match &self.imp {
            Imp::ProgArray(p) => p.get(index, guard),
            _ => None,
        }
    }

    // ----- host side -----------------------------------------------------------

    fn op_err(&self, op: &'static str, errno: i32) -> MapError {
        MapError::OpNotSupported {
            map_type: self.map_type,
            op,
            errno,
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() != self.def.key_size as usize {
            return Err(MapError::KeySize {
                expected: self.def.key_size as usize,
                got: key.len(),
            });
        }
        Ok(())
    }

    fn check_readable(&self) -> Result<(), MapError> {
        if self.def.flags & BPF_F_WRONLY != 0 {
            return Err(MapError::WriteOnly {
                name: self.def.name.clone(),
            });
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<(), MapError> {
        if self.def.flags & BPF_F_RDONLY != 0 {
            return Err(MapError::ReadOnly {
                name: self.def.name.clone(),
                reason: "created with BPF_F_RDONLY",
            });
        }
        if self.is_frozen() {
            return Err(MapError::ReadOnly {
                name: self.def.name.clone(),
                reason: "frozen",
            });
        }
        Ok(())
    }

    fn check_lookup_flags(&self, flags: u64) -> Result<(), MapError> {
        if flags & !BPF_F_LOCK != 0 || (flags & BPF_F_LOCK != 0 && self.def.spin_lock_off.is_none())
        {
            return Err(MapError::InvalidFlags {
                map_type: self.map_type,
                flags,
            });
        }
        Ok(())
    }

    /// Host lookup (`BPF_MAP_LOOKUP_ELEM`) into `out` ([`Map::host_value_size`]
    /// bytes). Queues/stacks peek (key must be empty); prog arrays and maps of
    /// maps return the id of the stored program/map (4 bytes).
    pub fn lookup_into(&self, key: &[u8], out: &mut [u8], flags: u64) -> Result<(), MapError> {
        self.check_readable()?;
        self.check_key(key)?;
        self.check_lookup_flags(flags)?;
        let want = self.host_value_size();
        if out.len() != want {
            return Err(MapError::ValueSize {
                expected: want,
                got: out.len(),
            });
        }
        let id = |x: Option<u32>, out: &mut [u8]| match x {
            Some(v) => {
                out.copy_from_slice(&v.to_ne_bytes());
                Ok(())
            }
            None => Err(MapError::NotFound),
        };
        let k = key.as_ptr();
        match &self.imp {
            // SAFETY: sizes checked above.
            Imp::Array(a) => {
                MapError::from_ret(unsafe { a.lookup_host(k, out.as_mut_ptr(), flags) })
            }
            // SAFETY: sizes checked above.
            Imp::Hash(h) => {
                MapError::from_ret(unsafe { h.lookup_host(k, out.as_mut_ptr(), flags) })
            }
            // SAFETY: value buffer of value_size bytes.
            Imp::Queue(q) => MapError::from_ret(unsafe { q.pop(out.as_mut_ptr(), false) }),
            Imp::ProgArray(p) => id(
                p.lookup_id(u32::from_ne_bytes(key.try_into().unwrap_or_default())),
                out,
            ),
            Imp::ArrayOfMaps(a) => id(
                a.get(u32::from_ne_bytes(key.try_into().unwrap_or_default()))
                    .map(|m| m.id()),
                out,
            ),
            // SAFETY: key size checked.
            Imp::HashOfMaps(h) => id(unsafe { h.get(k) }.map(|m| m.id()), out),
            Imp::RingBuf(_) => Err(self.op_err("lookup", ENOTSUPP)),
            Imp::Redirect(r) => r.lookup_host(key_u32(key), out),
        }
    }

    /// Host lookup returning a new buffer (see [`Map::lookup_into`]).
    pub fn lookup_value(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        self.lookup_value_flags(key, 0)
    }

    /// Host lookup with flags (`BPF_F_LOCK`).
    pub fn lookup_value_flags(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, MapError> {
        let mut out = vec![0u8; self.host_value_size()];
        self.lookup_into(key, &mut out, flags)?;
        Ok(out)
    }

    /// Per-CPU values of `key`, one `value_size` vector per CPU slot.
    pub fn lookup_percpu_values(&self, key: &[u8]) -> Result<Vec<Vec<u8>>, MapError> {
        if !self.map_type.is_percpu() {
            return Err(self.op_err("per-CPU lookup", EINVAL));
        }
        let all = self.lookup_value(key)?;
        let stride = all.len() / self.ncpus as usize;
        Ok(all
            .chunks(stride)
            .map(|c| c[..self.def.value_size as usize].to_vec())
            .collect())
    }

    /// Host update (`BPF_MAP_UPDATE_ELEM`). For per-CPU maps `value` holds every
    /// CPU's value, each padded to a multiple of 8 bytes. Queues/stacks push (key
    /// must be empty).
    pub fn update_value(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.check_writable()?;
        self.check_key(key)?;
        let want = self.host_value_size();
        if value.len() != want {
            return Err(MapError::ValueSize {
                expected: want,
                got: value.len(),
            });
        }
        let (k, v) = (key.as_ptr(), value.as_ptr());
        let r = match &self.imp {
            // SAFETY: sizes checked.
            Imp::Array(a) => unsafe { a.update_host(k, v, flags) },
            // SAFETY: sizes checked.
            Imp::Hash(h) => unsafe { h.update(k, v, flags, current_cpu(), true, None) },
            // SAFETY: sizes checked.
            Imp::Queue(q) => unsafe { q.push(v, flags) },
            Imp::ProgArray(_) => {
                return Err(MapError::WrongValueKind(
                    "prog_array values are programs: use Map::set_prog",
                ));
            }
            Imp::ArrayOfMaps(_) | Imp::HashOfMaps(_) => {
                return Err(MapError::WrongValueKind(
                    "map-of-maps values are maps: use Map::update_inner_map",
                ));
            }
            Imp::RingBuf(_) => return Err(self.op_err("update", ENOTSUPP)),
            Imp::Redirect(r) => return r.update_host(key_u32(key), value, flags),
        };
        self.ret_to_result(r, flags)
    }

    fn ret_to_result(&self, r: i64, flags: u64) -> Result<(), MapError> {
        if r == -(EINVAL as i64) {
            return Err(MapError::InvalidFlags {
                map_type: self.map_type,
                flags,
            });
        }
        MapError::from_ret(r)
    }

    /// Host delete (`BPF_MAP_DELETE_ELEM`).
    pub fn delete_value(&self, key: &[u8]) -> Result<(), MapError> {
        self.check_writable()?;
        self.check_key(key)?;
        let idx = || u32::from_ne_bytes(key.try_into().unwrap_or_default());
        let r = match &self.imp {
            // SAFETY: key size checked.
            Imp::Hash(h) => unsafe { h.delete(key.as_ptr(), None) },
            // SAFETY: key size checked.
            Imp::HashOfMaps(h) => unsafe { h.delete(key.as_ptr()) },
            Imp::ProgArray(p) => p.delete(idx()),
            Imp::ArrayOfMaps(a) => a.delete(idx()),
            Imp::Array(_) => return Err(self.op_err("delete", EINVAL)),
            Imp::Queue(_) => return Err(self.op_err("delete", EINVAL)),
            Imp::RingBuf(_) => return Err(self.op_err("delete", ENOTSUPP)),
            Imp::Redirect(r) => return r.delete_host(idx()),
        };
        MapError::from_ret(r)
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: hash maps (any flavour) and
    /// queues/stacks (pop; key must be empty).
    pub fn lookup_and_delete(&self, key: &[u8], flags: u64) -> Result<Vec<u8>, MapError> {
        self.check_readable()?;
        self.check_writable()?;
        self.check_key(key)?;
        let mut out = vec![0u8; self.host_value_size()];
        let r = match &self.imp {
            // SAFETY: sizes checked.
            Imp::Hash(h) => unsafe { h.lookup_and_delete(key.as_ptr(), out.as_mut_ptr(), flags) },
            Imp::Queue(q) => {
                if flags != 0 {
                    return Err(MapError::InvalidFlags {
                        map_type: self.map_type,
                        flags,
                    });
                }
                // SAFETY: out has value_size bytes.
                unsafe { q.pop(out.as_mut_ptr(), true) }
            }
            _ => return Err(self.op_err("lookup_and_delete", ENOTSUPP)),
        };
        self.ret_to_result(r, flags)?;
        Ok(out)
    }

    /// Host `BPF_MAP_GET_NEXT_KEY`: `Ok(None)` after the last key.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, MapError> {
        if let Some(k) = key {
            self.check_key(k)?;
        }
        let mut next = vec![0u8; self.def.key_size as usize];
        // SAFETY: key null or key_size bytes; next has key_size bytes.
        let r = unsafe { self.get_next_key(opt_ptr(key), next.as_mut_ptr()) };
        match r {
            0 => Ok(Some(next)),
            r if r == -(ENOENT as i64) => Ok(None),
            r if r == RET_EINVAL => Err(self.op_err("get_next_key", EINVAL)),
            r if r == RET_ENOTSUPP => Err(self.op_err("get_next_key", ENOTSUPP)),
            r => Err(MapError::Errno((-r) as i32)),
        }
    }

    /// Iterator over the keys (get_next_key order).
    pub fn keys(&self) -> Keys<'_> {
        Keys {
            map: self,
            cur: None,
            done: false,
        }
    }

    /// Iterator over `(key, host value)` pairs; keys deleted while iterating
    /// are skipped.
    pub fn entries(&self) -> Entries<'_> {
        Entries { keys: self.keys() }
    }

    /// Host push onto a queue/stack (`BPF_EXIST` overwrites the oldest when full).
    pub fn push_value(&self, value: &[u8], flags: u64) -> Result<(), MapError> {
        self.update_value(&[], value, flags)
    }

    /// Host pop from a queue/stack.
    pub fn pop_value(&self) -> Result<Vec<u8>, MapError> {
        self.lookup_and_delete(&[], 0)
    }

    /// Host peek at a queue/stack.
    pub fn peek_value(&self) -> Result<Vec<u8>, MapError> {
        self.lookup_value(&[])
    }

    /// Stores `inner` at `key` of an `array_of_maps` (flags must be `BPF_ANY`) or
    /// `hash_of_maps` (`BPF_ANY` / `BPF_NOEXIST` / `BPF_EXIST`), after checking it
    /// against the template.
    pub fn update_inner_map(
        &self,
        key: &[u8],
        inner: &MapHandle,
        flags: u64,
    ) -> Result<(), MapError> {
        self.check_writable()?;
        self.check_key(key)?;
        match &self.imp {
            Imp::ArrayOfMaps(a) => a.set(
                u32::from_ne_bytes(key.try_into().unwrap_or_default()),
                inner,
                flags,
            ),
            Imp::HashOfMaps(h) => {
                if flags & BPF_F_LOCK != 0 {
                    return Err(MapError::InvalidFlags {
                        map_type: self.map_type,
                        flags,
                    });
                }
                // SAFETY: key size checked.
                unsafe { h.set(key.as_ptr(), inner, flags) }.map_err(|e| match e {
                    MapError::Errno(EINVAL) => MapError::InvalidFlags {
                        map_type: self.map_type,
                        flags,
                    },
                    e => e,
                })
            }
            _ => Err(self.op_err("update_inner_map", EINVAL)),
        }
    }

    /// The inner map stored at `key` of a map of maps.
    pub fn lookup_inner_map(&self, key: &[u8]) -> Result<Option<MapHandle>, MapError> {
        self.check_key(key)?;
        match &self.imp {
            Imp::ArrayOfMaps(a) => {
                Ok(a.get(u32::from_ne_bytes(key.try_into().unwrap_or_default())))
            }
            // SAFETY: key size checked.
            Imp::HashOfMaps(h) => Ok(unsafe { h.get(key.as_ptr()) }),
            _ => Err(self.op_err("lookup_inner_map", EINVAL)),
        }
    }

    /// Stores a program at `index` of a prog_array (flags must be `BPF_ANY`).
    pub fn set_prog(
        &self,
        index: u32,
        prog: Arc<dyn ProgramHandle>,
        flags: u64,
    ) -> Result<(), MapError> {
        self.check_writable()?;
        match &self.imp {
            Imp::ProgArray(p) => p.set(index, prog, flags),
            _ => Err(self.op_err("set_prog", EINVAL)),
        }
    }

    /// The program at `index` of a prog_array.
    pub fn prog(&self, index: u32) -> Option<Arc<dyn ProgramHandle>> {
        match &self.imp {
            Imp::ProgArray(p) => {
                let g = crossbeam_epoch::pin();
                p.get(index, &g).cloned()
            }
            _ => None,
        }
    }

    /// `bpf_prog_map_compatible`: binds a prog_array to `prog_type` on first use
    /// and rejects programs of another type (call when loading a program that
    /// uses the array).
    pub fn check_prog_compatible(&self, prog_type: u32) -> Result<(), MapError> {
        match &self.imp {
            Imp::ProgArray(p) => p.check_compatible(prog_type),
            _ => Ok(()),
        }
    }

    /// `bpf_prog_map_compatible` with every property the array fixes (type,
    /// `xdp_has_frags`, `expected_attach_type`); the first program binds them.
    pub fn check_prog_handle_compatible(&self, prog: &dyn ProgramHandle) -> Result<(), MapError> {
        match &self.imp {
            Imp::ProgArray(p) => p.check_compatible_prog(prog),
            _ => Ok(()),
        }
    }

    /// Name of the program that fixed a prog_array's properties, if any.
    pub fn prog_owner_name(&self) -> Option<String> {
        match &self.imp {
            Imp::ProgArray(p) => p.owner_name(),
            _ => None,
        }
    }

    /// Removes every program of a prog_array (Linux does this when the last user
    /// reference to the map goes away).
    pub fn clear_progs(&self) {
        if let Imp::ProgArray(p) = &self.imp {
            p.clear();
        }
    }

    /// Devmap / devmap_hash: registers the ifindexes the host considers
    /// devices (`None`: any ifindex > 0, the default). Later updates naming
    /// another ifindex are refused (Linux: EINVAL for an unknown device);
    /// existing entries are kept.
    pub fn set_devices(&self, ifindexes: Option<Vec<u32>>) -> Result<(), MapError> {
        match &self.imp {
            Imp::Redirect(r) if r.set_devices(ifindexes) => Ok(()),
            _ => Err(self.op_err("set_devices", EINVAL)),
        }
    }

    /// The redirect map behind this map (devmap, devmap_hash, cpumap, xskmap).
    pub(crate) fn redirect_map(&self) -> Option<&RedirectMap> {
        match &self.imp {
            Imp::Redirect(r) => Some(r),
            _ => None,
        }
    }

    /// Consumes committed ring buffer records in order, calling `f` for each
    /// (discarded records are skipped) until it returns `false`; returns how many
    /// records `f` saw.
    pub fn ringbuf_consume(
        &self,
        mut f: impl FnMut(RingBufRecord<'_>) -> bool,
    ) -> Result<usize, MapError> {
        match &self.imp {
            Imp::RingBuf(r) => Ok(r.consume(&mut f)),
            _ => Err(self.op_err("ringbuf_consume", EINVAL)),
        }
    }

    /// Like [`Map::ringbuf_consume`], but if nothing is available waits up to
    /// `timeout` (forever if `None`) for a producer's wake-up.
    pub fn ringbuf_poll(
        &self,
        timeout: Option<Duration>,
        mut f: impl FnMut(RingBufRecord<'_>) -> bool,
    ) -> Result<usize, MapError> {
        match &self.imp {
            Imp::RingBuf(r) => Ok(r.poll(timeout, &mut f)),
            _ => Err(self.op_err("ringbuf_poll", EINVAL)),
        }
    }
}

/// A 4-byte host key as `u32` (key size checked by the caller).
fn key_u32(key: &[u8]) -> u32 {
    u32::from_ne_bytes(key.try_into().unwrap_or_default())
}

/// A nullable program-side `u32` key.
///
/// # Safety
/// `key` null or readable for 4 bytes.
unsafe fn opt_ptr_u32(key: *const u8) -> Option<u32> {
    if key.is_null() {
        None
    } else {
        // SAFETY: caller contract.
        Some(unsafe { ptr::read_unaligned(key as *const u32) })
    }
}

/// `array_map_get_next_key` for fd arrays.
unsafe fn array_next_key(max: u32, key: *const u8, next: *mut u8) -> i64 {
    let index = if key.is_null() {
        u32::MAX
    } else {
        // SAFETY: caller contract.
        unsafe { ptr::read_unaligned(key as *const u32) }
    };
    let n = if index >= max {
        0
    } else if index == max - 1 {
        return -(ENOENT as i64);
    } else {
        index + 1
    };
    // SAFETY: caller contract.
    unsafe { ptr::write_unaligned(next as *mut u32, n) };
    0
}

/// Iterator returned by [`Map::keys`].
pub struct Keys<'a> {
    map: &'a Map,
    cur: Option<Vec<u8>>,
    done: bool,
}

impl Iterator for Keys<'_> {
    type Item = Vec<u8>;
    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        match self.map.next_key(self.cur.as_deref()) {
            Ok(Some(k)) => {
                self.cur = Some(k.clone());
                Some(k)
            }
            _ => {
                self.done = true;
                None
            }
        }
    }
}

/// Iterator returned by [`Map::entries`].
pub struct Entries<'a> {
    keys: Keys<'a>,
}

impl Iterator for Entries<'_> {
    type Item = (Vec<u8>, Vec<u8>);
    fn next(&mut self) -> Option<(Vec<u8>, Vec<u8>)> {
        loop {
            let k = self.keys.next()?;
            match self.keys.map.lookup_value(&k) {
                Ok(v) => return Some((k, v)),
                Err(MapError::NotFound) => continue,
                Err(_) => return None,
            }
        }
    }
}

// ----- call-site specialisation ------------------------------------------------
//
// Raw entry points bound to one map's table at load time (the type dispatch,
// the `BPF_F_RDONLY_PROG` test and the map-pointer round trip of the generic
// helpers are resolved once), for engines that call them directly from a
// specialised call site (`cordon_exec::specialise`). Each does exactly what
// the `Map` method of the same operation does for that map type.

use cordon_exec::{CallSpec, DirectFn};

impl Map {
    /// How a program's `bpf_map_lookup_elem` on this map can bypass the
    /// generic helper: inline for `array` (value storage never moves), a
    /// direct call for `percpu_array` (current CPU's slot) and the hash
    /// flavours. `None` (generic path) for every other type, in particular
    /// maps of maps (their lookups return inner maps).
    pub fn specialised_lookup(&self) -> Option<CallSpec> {
        match &self.imp {
            Imp::Array(a) if !self.map_type.is_percpu() => {
                let l = a.layout();
                Some(CallSpec::ArrayLookup {
                    base: l.base as u64,
                    elem_size: l.elem_size as u64,
                    max_entries: l.max_entries,
                })
            }
            Imp::Array(a) => Some(CallSpec::Direct {
                func: DirectFn::A2(fast_array_lookup_percpu),
                bind: Some(a as *const ArrayMap as u64),
            }),
            Imp::Hash(h) => Some(CallSpec::Direct {
                func: DirectFn::A2(if self.map_type.is_percpu() {
                    fast_hash_lookup_percpu
                } else {
                    fast_hash_lookup
                }),
                bind: Some(h as *const HashTable as u64),
            }),
            _ => None,
        }
    }

    /// How a program's `bpf_map_update_elem` on this map can bypass the
    /// generic helper (array and hash flavours without `BPF_F_RDONLY_PROG`).
    pub fn specialised_update(&self) -> Option<CallSpec> {
        if self.def.flags & BPF_F_RDONLY_PROG != 0 {
            return None;
        }
        match &self.imp {
            Imp::Array(a) => Some(CallSpec::Direct {
                func: DirectFn::A4(fast_array_update),
                bind: Some(a as *const ArrayMap as u64),
            }),
            Imp::Hash(h) => Some(CallSpec::Direct {
                func: DirectFn::A4(fast_hash_update),
                bind: Some(h as *const HashTable as u64),
            }),
            _ => None,
        }
    }

    /// How a program's `bpf_map_delete_elem` on this map can bypass the
    /// generic helper (hash flavours without `BPF_F_RDONLY_PROG`).
    pub fn specialised_delete(&self) -> Option<CallSpec> {
        if self.def.flags & BPF_F_RDONLY_PROG != 0 {
            return None;
        }
        match &self.imp {
            Imp::Hash(h) => Some(CallSpec::Direct {
                func: DirectFn::A2(fast_hash_delete),
                bind: Some(h as *const HashTable as u64),
            }),
            _ => None,
        }
    }
}

/// `lookup` on a plain or LRU hash table (`t`: its `HashTable`).
///
/// # Safety
/// `t` from [`Map::specialised_lookup`] of a live map; `key` readable for the key size.
unsafe extern "C" fn fast_hash_lookup(t: u64, key: u64) -> u64 {
    // SAFETY: caller contract.
    unsafe { (*(t as *const HashTable)).lookup(key as *const u8, 0, true) as u64 }
}

/// `lookup` on a per-CPU (LRU) hash table: the current CPU's value.
///
/// # Safety
/// As [`fast_hash_lookup`].
unsafe extern "C" fn fast_hash_lookup_percpu(t: u64, key: u64) -> u64 {
    // SAFETY: caller contract.
    unsafe { (*(t as *const HashTable)).lookup(key as *const u8, current_cpu(), true) as u64 }
}

/// `update` on any hash flavour.
///
/// # Safety
/// `t` from [`Map::specialised_update`] of a live map; `key` and `value`
/// readable for the key and value sizes.
unsafe extern "C" fn fast_hash_update(t: u64, key: u64, value: u64, flags: u64) -> u64 {
    // SAFETY: caller contract.
    unsafe {
        (*(t as *const HashTable)).update(
            key as *const u8,
            value as *const u8,
            flags,
            current_cpu(),
            false,
            None,
        ) as u64
    }
}

/// `delete` on any hash flavour.
///
/// # Safety
/// `t` from [`Map::specialised_delete`] of a live map; `key` readable.
unsafe extern "C" fn fast_hash_delete(t: u64, key: u64) -> u64 {
    // SAFETY: caller contract.
    unsafe { (*(t as *const HashTable)).delete(key as *const u8, None) as u64 }
}

/// `lookup` on a per-CPU array: the current CPU's slot.
///
/// # Safety
/// `a` from [`Map::specialised_lookup`] of a live map; `key` readable for 4 bytes.
unsafe extern "C" fn fast_array_lookup_percpu(a: u64, key: u64) -> u64 {
    // SAFETY: caller contract.
    unsafe { (*(a as *const ArrayMap)).lookup(key as *const u8, current_cpu()) as u64 }
}

/// `update` on a (per-CPU) array.
///
/// # Safety
/// `a` from [`Map::specialised_update`] of a live map; `key` readable for 4
/// bytes, `value` for the value size.
unsafe extern "C" fn fast_array_update(a: u64, key: u64, value: u64, flags: u64) -> u64 {
    // SAFETY: caller contract.
    unsafe {
        (*(a as *const ArrayMap)).update(key as *const u8, value as *const u8, flags, current_cpu())
            as u64
    }
}
