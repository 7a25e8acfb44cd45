//! XDP redirect maps: `devmap` (14), `devmap_hash` (25) and the shared slot
//! storage also used by `cpumap` ([`super::cpumap`]) and `xskmap`
//! ([`super::xskmap`]), following `kernel/bpf/devmap.c`.
//!
//! Cordon has no network devices: a devmap value names an ifindex that the
//! host decides about. Any ifindex > 0 is accepted unless the host registered
//! a device list with [`Map::set_devices`](super::Map::set_devices), in which
//! case other ifindexes are refused as Linux refuses an ifindex without a
//! device (EINVAL). Devmap programs (`bpf_prog.fd` > 0 in an 8-byte value)
//! cannot be attached (EINVAL); the `bpf_prog.id` read back is always 0.
//!
//! Program-side lookups return a pointer to the stored `struct
//! bpf_devmap_val` (`ifindex`, `bpf_prog.id`), read-only for programs as in
//! Linux (which sets `BPF_F_RDONLY_PROG` on these maps).

use std::collections::BTreeMap;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;

use super::cpumap::CpuMap;
use super::errno::*;
use super::xskmap::XskMap;
use super::{BPF_EXIST, BPF_NOEXIST, MapDef, MapError, MapType};

/// One entry: a presence flag and the 8-byte value (`u32` target, `u32`
/// program id) in native byte order, so that a pointer to `val` is the
/// program-visible value.
#[derive(Default)]
#[repr(C, align(8))]
pub(crate) struct Slot {
    val: AtomicU64,
    present: AtomicBool,
}

/// `max_entries` slots allocated zeroed (all absent), lazily committed.
pub(crate) struct Slots {
    slots: Box<[Slot]>,
}

/// Upper bound of the slot memory of one redirect map (Linux would fail the
/// `vmalloc` of its pointer array long before on most machines).
const MAX_SLOT_BYTES: u64 = 1 << 30;

impl Slots {
    pub(crate) fn new(n: u32, name: &str) -> Result<Slots, MapError> {
        let bytes = n as u64 * size_of::<Slot>() as u64;
        let oom = |reason: &str| MapError::OutOfMemory {
            name: name.to_string(),
            bytes,
            reason: reason.to_string(),
        };
        if bytes > MAX_SLOT_BYTES {
            return Err(oom("above Cordon's 1 GiB limit for a redirect map"));
        }
        if n == 0 {
            return Ok(Slots {
                slots: Box::new([]),
            });
        }
        let layout =
            std::alloc::Layout::array::<Slot>(n as usize).map_err(|e| oom(&e.to_string()))?;
        // Zeroed memory is a valid `[Slot]` (every entry absent) and stays
        // uncommitted until an entry is written.
        // SAFETY: non-zero size (n > 0).
        let p = unsafe { std::alloc::alloc_zeroed(layout) } as *mut Slot;
        if p.is_null() {
            return Err(oom("the allocator refused"));
        }
        // SAFETY: `p` is a fresh allocation of `n` zero-initialised slots with
        // the layout `Box<[Slot]>` frees with.
        let slots = unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, n as usize)) };
        Ok(Slots { slots })
    }

    pub(crate) fn len(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The value of slot `i`, if present.
    pub(crate) fn get(&self, i: u32) -> Option<u64> {
        let s = self.slots.get(i as usize)?;
        if s.present.load(Ordering::Acquire) {
            Some(s.val.load(Ordering::Acquire))
        } else {
            None
        }
    }

    /// Program-visible pointer to the value of slot `i`, null if absent.
    pub(crate) fn ptr(&self, i: u32) -> *mut u8 {
        match self.slots.get(i as usize) {
            Some(s) if s.present.load(Ordering::Acquire) => s.val.as_ptr() as *mut u8,
            _ => ptr::null_mut(),
        }
    }

    /// Whether `p` points into the slot memory.
    pub(crate) fn owns(&self, p: *const u8) -> bool {
        let start = self.slots.as_ptr() as usize;
        let end = start + std::mem::size_of_val(&*self.slots);
        (start..end).contains(&(p as usize))
    }

    pub(crate) fn set(&self, i: u32, v: u64) {
        let s = &self.slots[i as usize];
        s.val.store(v, Ordering::Release);
        s.present.store(true, Ordering::Release);
    }

    /// Clears slot `i`; whether it was present.
    pub(crate) fn clear(&self, i: u32) -> bool {
        self.slots[i as usize].present.swap(false, Ordering::AcqRel)
    }
}

/// Packs a value as the program sees it (`u32` target then `u32` id).
pub(crate) fn pack(target: u32, id: u32) -> u64 {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&target.to_ne_bytes());
    b[4..].copy_from_slice(&id.to_ne_bytes());
    u64::from_ne_bytes(b)
}

/// The `u32` target of a packed value.
pub(crate) fn target_of(v: u64) -> u32 {
    let b = v.to_ne_bytes();
    u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

/// Writes the first `out.len()` bytes (4 or 8) of a packed value.
pub(crate) fn unpack_into(v: u64, out: &mut [u8]) {
    let b = v.to_ne_bytes();
    let n = out.len().min(8);
    out[..n].copy_from_slice(&b[..n]);
}

/// `u32` at byte `off` of a host buffer (0 when the buffer is shorter).
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map_or(0, |s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// `fd_array`-style `get_next_key` over `max` indexes (empty slots included).
pub(crate) fn index_next_key(max: u32, key: Option<u32>) -> Option<u32> {
    let index = key.unwrap_or(u32::MAX);
    if index >= max {
        Some(0)
    } else if index == max - 1 {
        None
    } else {
        Some(index + 1)
    }
}

/// Update flags Linux accepts for these maps (`map_flags > BPF_EXIST` is EINVAL).
fn check_update_flags(t: MapType, flags: u64) -> Result<(), MapError> {
    if flags > BPF_EXIST {
        return Err(MapError::InvalidFlags { map_type: t, flags });
    }
    Ok(())
}

/// The host's device list (`None`: any ifindex > 0 is a device).
#[derive(Default)]
pub(crate) struct Devices(RwLock<Option<Vec<u32>>>);

impl Devices {
    fn check(&self, t: MapType, ifindex: u32) -> Result<(), MapError> {
        if let Some(list) = &*self.0.read()
            && !list.contains(&ifindex)
        {
            return Err(MapError::InvalidValue {
                map_type: t,
                field: "ifindex",
                value: ifindex as u64,
                reason: "no such device registered by the host",
                errno: EINVAL,
            });
        }
        Ok(())
    }
}

/// Validates an ifindex + optional program fd value (`__dev_map_alloc_node`).
fn check_dev_value(t: MapType, devices: &Devices, value: &[u8]) -> Result<u32, MapError> {
    let ifindex = u32_at(value, 0);
    devices.check(t, ifindex)?;
    check_no_prog(t, value, EINVAL)?;
    Ok(ifindex)
}

/// Cordon cannot attach devmap/cpumap programs: `bpf_prog.fd` must be <= 0.
/// `errno` is what Linux returns when the program cannot be attached (devmap
/// EINVAL; cpumap ENOMEM, its answer to any entry setup failure).
pub(crate) fn check_no_prog(t: MapType, value: &[u8], errno: i32) -> Result<(), MapError> {
    let fd = u32_at(value, 4) as i32;
    if value.len() >= 8 && fd > 0 {
        return Err(MapError::InvalidValue {
            map_type: t,
            field: "bpf_prog.fd",
            value: fd as u64,
            reason: "Cordon cannot attach programs to redirect map entries",
            errno,
        });
    }
    Ok(())
}

/// `BPF_MAP_TYPE_DEVMAP`: an array of devices indexed by key.
pub(crate) struct DevMap {
    slots: Slots,
    devices: Devices,
}

impl DevMap {
    pub(crate) fn new(def: &MapDef) -> Result<DevMap, MapError> {
        Ok(DevMap {
            slots: Slots::new(def.max_entries, &def.name)?,
            devices: Devices::default(),
        })
    }

    /// `dev_map_update_elem`: ifindex 0 clears the slot (a program fd with it
    /// is EINVAL); `BPF_NOEXIST` is always EEXIST.
    fn update(&self, key: u32, value: &[u8], flags: u64) -> Result<(), MapError> {
        let t = MapType::DevMap;
        check_update_flags(t, flags)?;
        if key >= self.slots.len() {
            return Err(MapError::Full);
        }
        if flags == BPF_NOEXIST {
            return Err(MapError::Exists);
        }
        if u32_at(value, 0) == 0 {
            check_no_prog(t, value, EINVAL)?;
            self.slots.clear(key);
            return Ok(());
        }
        let ifindex = check_dev_value(t, &self.devices, value)?;
        self.slots.set(key, pack(ifindex, 0));
        Ok(())
    }

    fn delete(&self, key: u32) -> Result<(), MapError> {
        delete_index(MapType::DevMap, &self.slots, key)
    }
}

/// Delete of an array-like redirect map: EINVAL outside `max_entries`,
/// success whether or not the slot was set.
pub(crate) fn delete_index(t: MapType, slots: &Slots, key: u32) -> Result<(), MapError> {
    if key >= slots.len() {
        return Err(MapError::InvalidValue {
            map_type: t,
            field: "key",
            value: key as u64,
            reason: "index is outside max_entries",
            errno: EINVAL,
        });
    }
    slots.clear(key);
    Ok(())
}

#[derive(Default)]
struct HashState {
    /// Bucket index -> entries (key, slot), newest first (`hlist_add_head`).
    buckets: BTreeMap<u32, Vec<(u32, u32)>>,
    /// Recycled slot indexes.
    free: Vec<u32>,
    /// Slots `fresh..` were never used.
    fresh: u32,
}

impl HashState {
    fn take_slot(&mut self, max: u32) -> Option<u32> {
        self.free.pop().or_else(|| {
            (self.fresh < max).then(|| {
                self.fresh += 1;
                self.fresh - 1
            })
        })
    }
}

/// `BPF_MAP_TYPE_DEVMAP_HASH`: devices by arbitrary `u32` key, at most
/// `max_entries`, iterated in Linux's order (bucket `key & (n_buckets - 1)`,
/// newest first within a bucket).
pub(crate) struct DevMapHash {
    slots: Slots,
    mask: u32,
    state: RwLock<HashState>,
    devices: Devices,
}

impl DevMapHash {
    pub(crate) fn new(def: &MapDef) -> Result<DevMapHash, MapError> {
        let n_buckets = def.max_entries.next_power_of_two();
        Ok(DevMapHash {
            slots: Slots::new(def.max_entries, &def.name)?,
            mask: n_buckets - 1,
            state: RwLock::new(HashState::default()),
            devices: Devices::default(),
        })
    }

    fn slot_in(&self, st: &HashState, key: u32) -> Option<u32> {
        st.buckets
            .get(&(key & self.mask))?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, s)| *s)
    }

    fn slot_of(&self, key: u32) -> Option<u32> {
        self.slot_in(&self.state.read(), key)
    }

    fn lookup_ptr(&self, key: u32) -> *mut u8 {
        self.slot_of(key)
            .map_or(ptr::null_mut(), |s| self.slots.ptr(s))
    }

    /// The value of `key`, read under the lock so that it is this key's even
    /// while the host recycles slots.
    fn get(&self, key: u32) -> Option<u64> {
        let st = self.state.read();
        self.slot_in(&st, key).and_then(|s| self.slots.get(s))
    }

    /// `__dev_map_hash_update_elem`: ifindex 0 is EINVAL; `BPF_EXIST` on an
    /// absent key creates it (as Linux); a replaced key moves to the front
    /// of its bucket.
    fn update(&self, key: u32, value: &[u8], flags: u64) -> Result<(), MapError> {
        let t = MapType::DevMapHash;
        check_update_flags(t, flags)?;
        let ifindex = u32_at(value, 0);
        if ifindex == 0 {
            return Err(MapError::InvalidValue {
                map_type: t,
                field: "ifindex",
                value: 0,
                reason: "a devmap_hash entry needs a device",
                errno: EINVAL,
            });
        }
        let mut st = self.state.write();
        let b = key & self.mask;
        let old = st
            .buckets
            .get(&b)
            .and_then(|l| l.iter().position(|(k, _)| *k == key));
        if old.is_some() && flags == BPF_NOEXIST {
            return Err(MapError::Exists);
        }
        check_dev_value(t, &self.devices, value)?;
        let slot = match old {
            Some(pos) => {
                let list = st.buckets.get_mut(&b).expect("bucket exists");
                let (_, old_slot) = list.remove(pos);
                // The replaced entry's memory may still be read by a running
                // program (as Linux's RCU-delayed free): take a fresh slot when
                // one is free, else reuse the old one in place.
                match st.take_slot(self.slots.len()) {
                    Some(s) => {
                        self.slots.clear(old_slot);
                        st.free.push(old_slot);
                        s
                    }
                    None => old_slot,
                }
            }
            None => st.take_slot(self.slots.len()).ok_or(MapError::Full)?,
        };
        self.slots.set(slot, pack(ifindex, 0));
        st.buckets.entry(b).or_default().insert(0, (key, slot));
        Ok(())
    }

    fn delete(&self, key: u32) -> Result<(), MapError> {
        let mut st = self.state.write();
        let b = key & self.mask;
        let Some(list) = st.buckets.get_mut(&b) else {
            return Err(MapError::NotFound);
        };
        let Some(pos) = list.iter().position(|(k, _)| *k == key) else {
            return Err(MapError::NotFound);
        };
        let (_, slot) = list.remove(pos);
        if list.is_empty() {
            st.buckets.remove(&b);
        }
        self.slots.clear(slot);
        st.free.push(slot);
        Ok(())
    }

    /// `dev_map_hash_get_next_key`: next in the key's bucket, else the first
    /// of the following non-empty bucket; the very first key when `key` is
    /// absent.
    fn next_key(&self, key: Option<u32>) -> Option<u32> {
        let st = self.state.read();
        let first_from = |from: u32| {
            st.buckets
                .range(from..)
                .find_map(|(_, l)| l.first().map(|(k, _)| *k))
        };
        let Some(key) = key else { return first_from(0) };
        let b = key & self.mask;
        let list = st.buckets.get(&b);
        match list.and_then(|l| l.iter().position(|(k, _)| *k == key)) {
            None => first_from(0),
            Some(pos) => match list.and_then(|l| l.get(pos + 1)) {
                Some((k, _)) => Some(*k),
                None => b.checked_add(1).and_then(first_from),
            },
        }
    }

    fn len(&self) -> u32 {
        self.state
            .read()
            .buckets
            .values()
            .map(|l| l.len() as u32)
            .sum()
    }

    /// All entries in iteration order (for broadcast).
    fn values(&self) -> Vec<u32> {
        let st = self.state.read();
        st.buckets
            .values()
            .flatten()
            .filter_map(|(_, s)| self.slots.get(*s).map(target_of))
            .collect()
    }
}

/// The four redirect map kinds behind one [`Map`](super::Map) variant.
pub(crate) enum RedirectMap {
    Dev(DevMap),
    DevHash(DevMapHash),
    Cpu(CpuMap),
    Xsk(XskMap),
}

/// What `bpf_redirect_map` found for a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Devmap / devmap_hash: the device's ifindex.
    Device(u32),
    /// Cpumap: the CPU (the key) and its queue size.
    Cpu { cpu: u32, qsize: u32 },
    /// Xskmap: the host's socket id.
    Socket(u32),
}

impl RedirectMap {
    pub(crate) fn new(t: MapType, def: &MapDef, ncpus: u32) -> Result<RedirectMap, MapError> {
        Ok(match t {
            MapType::DevMap => RedirectMap::Dev(DevMap::new(def)?),
            MapType::DevMapHash => RedirectMap::DevHash(DevMapHash::new(def)?),
            MapType::CpuMap => RedirectMap::Cpu(CpuMap::new(def, ncpus)?),
            _ => RedirectMap::Xsk(XskMap::new(def)?),
        })
    }

    /// Program-side `bpf_map_lookup_elem`.
    ///
    /// # Safety
    /// `key` readable for 4 bytes.
    pub(crate) unsafe fn lookup(&self, key: *const u8) -> *mut u8 {
        // SAFETY: caller contract.
        let k = unsafe { ptr::read_unaligned(key as *const u32) };
        match self {
            RedirectMap::Dev(d) => d.slots.ptr(k),
            RedirectMap::DevHash(h) => h.lookup_ptr(k),
            RedirectMap::Cpu(c) => c.slots().ptr(k),
            RedirectMap::Xsk(x) => x.slots().ptr(k),
        }
    }

    /// The target `bpf_redirect_map` sends to for `key`.
    pub(crate) fn find(&self, key: u32) -> Option<Found> {
        match self {
            RedirectMap::Dev(d) => d.slots.get(key).map(|v| Found::Device(target_of(v))),
            RedirectMap::DevHash(h) => h.get(key).map(|v| Found::Device(target_of(v))),
            RedirectMap::Cpu(c) => c.slots().get(key).map(|v| Found::Cpu {
                cpu: key,
                qsize: target_of(v),
            }),
            RedirectMap::Xsk(x) => x.slots().get(key).map(|v| Found::Socket(target_of(v))),
        }
    }

    /// Devmap / devmap_hash: every device in iteration order (broadcast).
    pub(crate) fn devices(&self) -> Vec<u32> {
        match self {
            RedirectMap::Dev(d) => (0..d.slots.len())
                .filter_map(|i| d.slots.get(i).map(target_of))
                .collect(),
            RedirectMap::DevHash(h) => h.values(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn owns(&self, p: *const u8) -> bool {
        match self {
            RedirectMap::Dev(d) => d.slots.owns(p),
            RedirectMap::DevHash(h) => h.slots.owns(p),
            RedirectMap::Cpu(c) => c.slots().owns(p),
            RedirectMap::Xsk(x) => x.slots().owns(p),
        }
    }

    pub(crate) fn len(&self) -> Option<u32> {
        match self {
            RedirectMap::DevHash(h) => Some(h.len()),
            _ => None,
        }
    }

    pub(crate) fn max_entries(&self) -> u32 {
        match self {
            RedirectMap::Dev(d) => d.slots.len(),
            RedirectMap::DevHash(h) => h.slots.len(),
            RedirectMap::Cpu(c) => c.slots().len(),
            RedirectMap::Xsk(x) => x.slots().len(),
        }
    }

    /// Host lookup into `out` (`value_size` bytes).
    pub(crate) fn lookup_host(&self, key: u32, out: &mut [u8]) -> Result<(), MapError> {
        let v = match self {
            RedirectMap::Dev(d) => d.slots.get(key),
            RedirectMap::DevHash(h) => h.get(key),
            RedirectMap::Cpu(c) => c.slots().get(key),
            // xsk_map_lookup_elem_sys_only
            RedirectMap::Xsk(_) => {
                return Err(MapError::OpNotSupported {
                    map_type: MapType::XskMap,
                    op: "lookup from the host",
                    errno: EOPNOTSUPP,
                });
            }
        };
        unpack_into(v.ok_or(MapError::NotFound)?, out);
        Ok(())
    }

    /// Host update (`value` has `value_size` bytes).
    pub(crate) fn update_host(&self, key: u32, value: &[u8], flags: u64) -> Result<(), MapError> {
        match self {
            RedirectMap::Dev(d) => d.update(key, value, flags),
            RedirectMap::DevHash(h) => h.update(key, value, flags),
            RedirectMap::Cpu(c) => c.update(key, value, flags),
            RedirectMap::Xsk(x) => x.update(key, value, flags),
        }
    }

    pub(crate) fn delete_host(&self, key: u32) -> Result<(), MapError> {
        match self {
            RedirectMap::Dev(d) => d.delete(key),
            RedirectMap::DevHash(h) => h.delete(key),
            RedirectMap::Cpu(c) => c.delete(key),
            RedirectMap::Xsk(x) => x.delete(key),
        }
    }

    /// `get_next_key` (`None` after the last key).
    pub(crate) fn next_key(&self, key: Option<u32>) -> Option<u32> {
        match self {
            RedirectMap::DevHash(h) => h.next_key(key),
            _ => index_next_key(self.max_entries(), key),
        }
    }

    /// Registers the host's devices (devmap / devmap_hash only).
    pub(crate) fn set_devices(&self, list: Option<Vec<u32>>) -> bool {
        match self {
            RedirectMap::Dev(d) => *d.devices.0.write() = list,
            RedirectMap::DevHash(h) => *h.devices.0.write() = list,
            _ => return false,
        }
        true
    }
}

/// `dev_map_alloc_check` / `cpu_map_alloc` / `xsk_map_alloc` attribute checks.
pub(crate) fn check_def(t: MapType, def: &MapDef) -> Result<(), MapError> {
    use super::flags::*;
    let invalid = |field, value: u64, reason| MapError::InvalidAttr {
        map_type: t,
        field,
        value,
        reason,
    };
    let (allowed, sizes, size_reason): (u32, &[u32], &'static str) = match t {
        MapType::DevMap | MapType::DevMapHash => (
            BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY,
            &[4, 8],
            "must be 4 (ifindex) or 8 (ifindex, program fd)",
        ),
        MapType::CpuMap => (
            BPF_F_NUMA_NODE,
            &[4, 8],
            "must be 4 (qsize) or 8 (qsize, program fd)",
        ),
        _ => (
            BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY,
            &[4],
            "must be 4 (a socket)",
        ),
    };
    if def.max_entries == 0 {
        return Err(invalid("max_entries", 0, "must be non-zero"));
    }
    if def.key_size != 4 {
        return Err(invalid("key_size", def.key_size as u64, "must be 4"));
    }
    if !sizes.contains(&def.value_size) {
        return Err(invalid("value_size", def.value_size as u64, size_reason));
    }
    if def.flags & !allowed != 0 {
        return Err(MapError::InvalidMapFlags {
            map_type: t,
            flags: def.flags & !allowed,
            reason: "not allowed for this redirect map type",
        });
    }
    if t == MapType::DevMapHash && def.max_entries > 1 << 31 {
        return Err(invalid(
            "max_entries",
            def.max_entries as u64,
            "the bucket count (next power of two) overflows",
        ));
    }
    if t == MapType::CpuMap && def.max_entries > super::cpumap::nr_cpus() {
        return Err(MapError::AttrTooBig {
            map_type: t,
            field: "max_entries",
            value: def.max_entries as u64,
            limit: super::cpumap::nr_cpus() as u64,
        });
    }
    Ok(())
}
