//! Map types kept outside [`crate::maps`]: `lpm_trie`, `bloom_filter` and
//! `perf_event_array` (which has no events in Cordon).
//!
//! Programs see these maps as tagged pointers (the address of the [`ExtMap`]
//! with bit 0 set, never a valid [`crate::maps::Map`] address since maps are
//! aligned), so the map helpers can dispatch with one bit test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::maps::errno::{EEXIST, EINVAL, ENOENT, EOPNOTSUPP};
use crate::maps::flags::BPF_F_NO_PREALLOC;
use crate::maps::{BPF_ANY, BPF_EXIST, BPF_NOEXIST};

const ENOSPC: i32 = 28;
/// `BPF_F_ZERO_SEED`.
const BPF_F_ZERO_SEED: u32 = 1 << 6;

/// `enum bpf_map_type` ids of the types in this module.
pub const PERF_EVENT_ARRAY: u32 = 4;
pub const LPM_TRIE: u32 = 11;
pub const BLOOM_FILTER: u32 = 30;

/// Whether `map_type` is implemented here.
pub fn is_ext_type(map_type: u32) -> bool {
    matches!(map_type, PERF_EVENT_ARRAY | LPM_TRIE | BLOOM_FILTER)
}

/// Whether a program-visible map pointer is an [`ExtMap`].
#[inline]
pub fn is_ext_ptr(p: u64) -> bool {
    p & 1 != 0
}

struct LpmEntry {
    prefixlen: u32,
    /// Key data with the bits beyond `prefixlen` cleared.
    data: Vec<u8>,
    /// Stable value memory (never moved; freed after an epoch grace period).
    value: *mut u8,
}

// SAFETY: `value` is owned heap memory only accessed under the map's rules.
unsafe impl Send for LpmEntry {}

enum Kind {
    Lpm(Mutex<Vec<LpmEntry>>),
    Bloom {
        bits: Box<[AtomicU64]>,
        mask: u64,
        hashes: u32,
        seed: u32,
    },
    PerfEventArray,
}

/// Creation attributes of an [`ExtMap`].
#[derive(Clone, Copy, Debug)]
pub struct ExtMapDef<'a> {
    pub name: &'a str,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    /// Bloom filter: number of hash functions (low 4 bits; 0 means 5).
    pub map_extra: u64,
}

/// An `lpm_trie`, `bloom_filter` or `perf_event_array` map.
pub struct ExtMap {
    name: String,
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    kind: Kind,
}

impl std::fmt::Debug for ExtMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtMap")
            .field("name", &self.name)
            .field("map_type", &self.map_type)
            .finish_non_exhaustive()
    }
}

impl Drop for ExtMap {
    fn drop(&mut self) {
        if let Kind::Lpm(entries) = &mut self.kind {
            for e in entries.get_mut().drain(..) {
                // SAFETY: allocated by `alloc_value` with this size; no program runs
                // (the map is being dropped).
                unsafe { free_value(e.value, self.value_size) };
            }
        }
    }
}

fn alloc_value(size: u32) -> *mut u8 {
    Box::into_raw(vec![0u8; size as usize].into_boxed_slice()) as *mut u8
}

unsafe fn free_value(p: *mut u8, size: u32) {
    // SAFETY: caller contract: `p` came from `alloc_value(size)`.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, size as usize)) });
}

fn mask_prefix(data: &[u8], prefixlen: u32) -> Vec<u8> {
    let mut out = data.to_vec();
    for (i, b) in out.iter_mut().enumerate() {
        let bit = i as u32 * 8;
        if bit >= prefixlen {
            *b = 0;
        } else if prefixlen - bit < 8 {
            *b &= 0xffu8 << (8 - (prefixlen - bit));
        }
    }
    out
}

fn prefix_matches(entry: &[u8], key: &[u8], prefixlen: u32) -> bool {
    mask_prefix(key, prefixlen) == entry
}

impl ExtMap {
    /// Creates a map with `BPF_MAP_CREATE`'s checks for these types.
    /// `map_extra` is the bloom filter's number of hash functions (low 4 bits).
    pub fn create(def: &ExtMapDef<'_>, ncpus: u32) -> Result<Arc<ExtMap>, String> {
        let ExtMapDef {
            name,
            map_type,
            key_size,
            value_size,
            max_entries,
            flags,
            map_extra,
        } = *def;
        let kind = match map_type {
            LPM_TRIE => {
                if !(5..=4 + 256).contains(&key_size)
                    || value_size == 0
                    || max_entries == 0
                    || flags & BPF_F_NO_PREALLOC == 0
                {
                    return Err(format!(
                        "lpm_trie needs key_size 5..=260 (4-byte prefix length + data), value_size > 0, max_entries > 0 and BPF_F_NO_PREALLOC (EINVAL); got key {key_size}, value {value_size}, max {max_entries}, flags {flags:#x}"
                    ));
                }
                Kind::Lpm(Mutex::new(Vec::new()))
            }
            BLOOM_FILTER => {
                if key_size != 0 || value_size == 0 || max_entries == 0 || map_extra & !0xf != 0 {
                    return Err(format!(
                        "bloom_filter needs key_size 0, value_size > 0, max_entries > 0 and map_extra < 16 (EINVAL); got key {key_size}, value {value_size}, max {max_entries}, map_extra {map_extra}"
                    ));
                }
                let hashes = match (map_extra & 0xf) as u32 {
                    0 => 5,
                    n => n,
                };
                let mut nr_bits = max_entries as u64 * hashes as u64;
                nr_bits = nr_bits / 5 * 7;
                let (nr_bits, mask) = if nr_bits > 1 << 31 {
                    (1u64 << 31, (1u64 << 31) - 1)
                } else if nr_bits <= 64 {
                    (64, 63)
                } else {
                    let n = nr_bits.next_power_of_two();
                    (n, n - 1)
                };
                let words = nr_bits.div_ceil(64) as usize;
                let seed = if flags & BPF_F_ZERO_SEED != 0 {
                    0
                } else {
                    let x = 0u8;
                    (std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64)
                        ^ (&x as *const u8 as u64))
                        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                        >> 32
                } as u32;
                Kind::Bloom {
                    bits: (0..words).map(|_| AtomicU64::new(0)).collect(),
                    mask,
                    hashes,
                    seed,
                }
            }
            PERF_EVENT_ARRAY => {
                if key_size != 4 || value_size != 4 {
                    return Err(format!(
                        "perf_event_array needs 4-byte keys and values (EINVAL); got key {key_size}, value {value_size}"
                    ));
                }
                Kind::PerfEventArray
            }
            other => return Err(format!("map type {other} is not an extension map type")),
        };
        let max_entries = if map_type == PERF_EVENT_ARRAY && max_entries == 0 {
            ncpus.max(1)
        } else {
            max_entries
        };
        Ok(Arc::new(ExtMap {
            name: name.to_string(),
            map_type,
            key_size,
            value_size,
            max_entries,
            kind,
        }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    /// `enum bpf_map_type` id.
    pub fn map_type(&self) -> u32 {
        self.map_type
    }
    pub fn key_size(&self) -> u32 {
        self.key_size
    }
    pub fn value_size(&self) -> u32 {
        self.value_size
    }
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// The tagged pointer programs hold.
    pub fn as_prog_ptr(&self) -> u64 {
        self as *const ExtMap as u64 | 1
    }

    /// # Safety
    /// `p` must come from [`ExtMap::as_prog_ptr`] of a live map.
    pub unsafe fn from_prog_ptr<'a>(p: u64) -> &'a ExtMap {
        // SAFETY: caller contract.
        unsafe { &*((p & !1) as *const ExtMap) }
    }

    fn lpm_key<'k>(&self, key: &'k [u8]) -> (u32, &'k [u8]) {
        let prefixlen = u32::from_ne_bytes(key[..4].try_into().expect("4 bytes"));
        (prefixlen, &key[4..])
    }

    fn max_prefixlen(&self) -> u32 {
        (self.key_size - 4) * 8
    }

    /// Program lookup: value pointer or null (LPM: longest matching prefix).
    ///
    /// # Safety
    /// `key` readable for `key_size` bytes.
    pub unsafe fn lookup(&self, key: *const u8) -> *mut u8 {
        let Kind::Lpm(entries) = &self.kind else {
            return std::ptr::null_mut();
        };
        // SAFETY: caller contract.
        let key = unsafe { std::slice::from_raw_parts(key, self.key_size as usize) };
        let (plen, data) = self.lpm_key(key);
        let plen = plen.min(self.max_prefixlen());
        let entries = entries.lock();
        entries
            .iter()
            .filter(|e| e.prefixlen <= plen && prefix_matches(&e.data, data, e.prefixlen))
            .max_by_key(|e| e.prefixlen)
            .map_or(std::ptr::null_mut(), |e| e.value)
    }

    /// Program/host update: 0 or a negative errno.
    ///
    /// # Safety
    /// `key` readable for `key_size` bytes, `value` for `value_size` bytes.
    pub unsafe fn update(&self, key: *const u8, value: *const u8, flags: u64) -> i64 {
        match &self.kind {
            Kind::Lpm(entries) => {
                if flags > BPF_EXIST {
                    return -(EINVAL as i64);
                }
                // SAFETY: caller contract.
                let (key, value) = unsafe {
                    (
                        std::slice::from_raw_parts(key, self.key_size as usize),
                        std::slice::from_raw_parts(value, self.value_size as usize),
                    )
                };
                let (plen, data) = self.lpm_key(key);
                if plen > self.max_prefixlen() {
                    return -(EINVAL as i64);
                }
                let data = mask_prefix(data, plen);
                let mut entries = entries.lock();
                if let Some(e) = entries
                    .iter()
                    .find(|e| e.prefixlen == plen && e.data == data)
                {
                    if flags == BPF_NOEXIST {
                        return -(EEXIST as i64);
                    }
                    // SAFETY: the value has value_size bytes.
                    unsafe { std::ptr::copy(value.as_ptr(), e.value, value.len()) };
                    return 0;
                }
                if flags == BPF_EXIST {
                    return -(ENOENT as i64);
                }
                if entries.len() >= self.max_entries as usize {
                    return -(ENOSPC as i64);
                }
                let v = alloc_value(self.value_size);
                // SAFETY: fresh allocation of value_size bytes.
                unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), v, value.len()) };
                entries.push(LpmEntry {
                    prefixlen: plen,
                    data,
                    value: v,
                });
                0
            }
            Kind::Bloom { .. } => -(EINVAL as i64),
            Kind::PerfEventArray => -(EOPNOTSUPP as i64),
        }
    }

    /// Program/host delete (LPM: exact prefix).
    ///
    /// # Safety
    /// `key` readable for `key_size` bytes.
    pub unsafe fn delete(&self, key: *const u8) -> i64 {
        let Kind::Lpm(entries) = &self.kind else {
            return -(EOPNOTSUPP as i64);
        };
        // SAFETY: caller contract.
        let key = unsafe { std::slice::from_raw_parts(key, self.key_size as usize) };
        let (plen, data) = self.lpm_key(key);
        if plen > self.max_prefixlen() {
            return -(EINVAL as i64);
        }
        let data = mask_prefix(data, plen);
        let mut entries = entries.lock();
        let Some(i) = entries
            .iter()
            .position(|e| e.prefixlen == plen && e.data == data)
        else {
            return -(ENOENT as i64);
        };
        let e = entries.swap_remove(i);
        let (p, size) = (e.value as usize, self.value_size);
        let guard = crossbeam_epoch::pin();
        // SAFETY: programs that may still hold the value pointer run under an
        // epoch guard; the memory is freed after they all finish.
        unsafe { guard.defer_unchecked(move || free_value(p as *mut u8, size)) };
        0
    }

    fn bloom_hash(&self, value: &[u8], i: u32, seed: u32, mask: u64) -> u64 {
        let h = if value.len().is_multiple_of(4) {
            let words: Vec<u32> = value
                .chunks_exact(4)
                .map(|c| u32::from_ne_bytes(c.try_into().expect("4 bytes")))
                .collect();
            jhash2(&words, seed.wrapping_add(i))
        } else {
            jhash(value, seed.wrapping_add(i))
        };
        h as u64 & mask
    }

    /// Bloom filter push (`bpf_map_push_elem`).
    ///
    /// # Safety
    /// `value` readable for `value_size` bytes.
    pub unsafe fn push(&self, value: *const u8, flags: u64) -> i64 {
        let Kind::Bloom {
            bits,
            mask,
            hashes,
            seed,
        } = &self.kind
        else {
            return -(EOPNOTSUPP as i64);
        };
        if flags != BPF_ANY {
            return -(EINVAL as i64);
        }
        // SAFETY: caller contract.
        let v = unsafe { std::slice::from_raw_parts(value, self.value_size as usize) };
        for i in 0..*hashes {
            let b = self.bloom_hash(v, i, *seed, *mask);
            bits[(b / 64) as usize].fetch_or(1 << (b % 64), Ordering::Relaxed);
        }
        0
    }

    /// Bloom filter peek (`bpf_map_peek_elem`): 0 if possibly present, `-ENOENT` if not.
    ///
    /// # Safety
    /// `value` readable for `value_size` bytes.
    pub unsafe fn peek(&self, value: *const u8) -> i64 {
        let Kind::Bloom {
            bits,
            mask,
            hashes,
            seed,
        } = &self.kind
        else {
            return -(EOPNOTSUPP as i64);
        };
        // SAFETY: caller contract.
        let v = unsafe { std::slice::from_raw_parts(value, self.value_size as usize) };
        for i in 0..*hashes {
            let b = self.bloom_hash(v, i, *seed, *mask);
            if bits[(b / 64) as usize].load(Ordering::Relaxed) & (1 << (b % 64)) == 0 {
                return -(ENOENT as i64);
            }
        }
        0
    }

    // ----- host side -----

    /// Host lookup (LPM: longest prefix match; bloom: `Some(empty)` if possibly present).
    pub fn lookup_value(&self, key: &[u8]) -> Result<Option<Vec<u8>>, i32> {
        match &self.kind {
            Kind::Lpm(_) => {
                if key.len() != self.key_size as usize {
                    return Err(EINVAL);
                }
                // SAFETY: key has key_size bytes; the value lives while we hold a pin.
                let _g = crossbeam_epoch::pin();
                let p = unsafe { self.lookup(key.as_ptr()) };
                if p.is_null() {
                    return Ok(None);
                }
                // SAFETY: value_size bytes of a live value.
                Ok(Some(
                    unsafe { std::slice::from_raw_parts(p, self.value_size as usize) }.to_vec(),
                ))
            }
            Kind::Bloom { .. } => {
                if key.len() != self.value_size as usize {
                    return Err(EINVAL);
                }
                // SAFETY: value_size bytes.
                Ok((unsafe { self.peek(key.as_ptr()) } == 0).then(Vec::new))
            }
            Kind::PerfEventArray => Err(EOPNOTSUPP),
        }
    }

    /// Host update (bloom: `key` is the value to add, `value` is ignored).
    pub fn update_value(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), i32> {
        let r = match &self.kind {
            Kind::Bloom { .. } => {
                if key.len() != self.value_size as usize {
                    return Err(EINVAL);
                }
                // SAFETY: value_size bytes.
                unsafe { self.push(key.as_ptr(), flags) }
            }
            _ => {
                if key.len() != self.key_size as usize || value.len() != self.value_size as usize {
                    return Err(EINVAL);
                }
                // SAFETY: sizes checked.
                unsafe { self.update(key.as_ptr(), value.as_ptr(), flags) }
            }
        };
        if r < 0 { Err(-r as i32) } else { Ok(()) }
    }

    /// Host delete.
    pub fn delete_value(&self, key: &[u8]) -> Result<(), i32> {
        if key.len() != self.key_size as usize {
            return Err(EINVAL);
        }
        // SAFETY: size checked.
        let r = unsafe { self.delete(key.as_ptr()) };
        if r < 0 { Err(-r as i32) } else { Ok(()) }
    }

    /// LPM entries as (key, value), by decreasing prefix length.
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let Kind::Lpm(entries) = &self.kind else {
            return Vec::new();
        };
        let _g = crossbeam_epoch::pin();
        let entries = entries.lock();
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = entries
            .iter()
            .map(|e| {
                let mut k = e.prefixlen.to_ne_bytes().to_vec();
                k.extend_from_slice(&e.data);
                // SAFETY: live value of value_size bytes (under the lock).
                let v = unsafe { std::slice::from_raw_parts(e.value, self.value_size as usize) };
                (k, v.to_vec())
            })
            .collect();
        out.sort_by(|a, b| b.0[..4].cmp(&a.0[..4]).then(a.0.cmp(&b.0)));
        out
    }
}

const JHASH_INITVAL: u32 = 0xdead_beef;

#[inline]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline]
fn fin(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

/// Linux's `jhash` (Bob Jenkins' lookup3 over bytes).
pub fn jhash(key: &[u8], initval: u32) -> u32 {
    let mut a = JHASH_INITVAL
        .wrapping_add(key.len() as u32)
        .wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let mut k = key;
    let word = |s: &[u8]| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]);
    while k.len() > 12 {
        a = a.wrapping_add(word(&k[0..4]));
        b = b.wrapping_add(word(&k[4..8]));
        c = c.wrapping_add(word(&k[8..12]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    let byte = |i: usize, shift: u32| (k.get(i).copied().unwrap_or(0) as u32) << shift;
    let n = k.len();
    if n > 8 {
        c = c.wrapping_add(byte(8, 0) + byte(9, 8) + byte(10, 16) + byte(11, 24));
    }
    if n > 4 {
        b = b.wrapping_add(byte(4, 0) + byte(5, 8) + byte(6, 16) + byte(7, 24));
    }
    a = a.wrapping_add(byte(0, 0) + byte(1, 8) + byte(2, 16) + byte(3, 24));
    // Bytes past the length are zero in `byte`, matching the fall-through switch.
    fin(&mut a, &mut b, &mut c);
    c
}

/// Linux's `jhash2` (lookup3 over 32-bit words).
pub fn jhash2(k: &[u32], initval: u32) -> u32 {
    let mut a = JHASH_INITVAL
        .wrapping_add((k.len() as u32) << 2)
        .wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let mut k = k;
    while k.len() > 3 {
        a = a.wrapping_add(k[0]);
        b = b.wrapping_add(k[1]);
        c = c.wrapping_add(k[2]);
        mix(&mut a, &mut b, &mut c);
        k = &k[3..];
    }
    match k.len() {
        3 => {
            c = c.wrapping_add(k[2]);
            b = b.wrapping_add(k[1]);
            a = a.wrapping_add(k[0]);
        }
        2 => {
            b = b.wrapping_add(k[1]);
            a = a.wrapping_add(k[0]);
        }
        1 => a = a.wrapping_add(k[0]),
        _ => return c,
    }
    fin(&mut a, &mut b, &mut c);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(
        name: &str,
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        flags: u32,
        map_extra: u64,
    ) -> ExtMapDef<'_> {
        ExtMapDef {
            name,
            map_type,
            key_size,
            value_size,
            max_entries,
            flags,
            map_extra,
        }
    }

    fn lpm() -> Arc<ExtMap> {
        ExtMap::create(&def("r", LPM_TRIE, 8, 4, 16, BPF_F_NO_PREALLOC, 0), 1).unwrap()
    }

    fn key(plen: u32, addr: [u8; 4]) -> Vec<u8> {
        let mut k = plen.to_ne_bytes().to_vec();
        k.extend_from_slice(&addr);
        k
    }

    #[test]
    fn lpm_longest_prefix_wins() {
        let m = lpm();
        m.update_value(&key(8, [10, 0, 0, 0]), &1u32.to_ne_bytes(), 0)
            .unwrap();
        m.update_value(&key(24, [10, 1, 2, 99]), &2u32.to_ne_bytes(), 0)
            .unwrap();
        m.update_value(&key(0, [0; 4]), &3u32.to_ne_bytes(), 0)
            .unwrap();
        let get = |a| {
            m.lookup_value(&key(32, a))
                .unwrap()
                .map(|v| u32::from_ne_bytes(v.try_into().unwrap()))
        };
        assert_eq!(get([10, 1, 2, 3]), Some(2));
        assert_eq!(get([10, 1, 3, 3]), Some(1));
        assert_eq!(get([11, 0, 0, 0]), Some(3));
        assert_eq!(m.update_value(&key(33, [0; 4]), &[0; 4], 0), Err(EINVAL));
        assert_eq!(
            m.update_value(&key(8, [10, 9, 9, 9]), &[0; 4], BPF_NOEXIST),
            Err(EEXIST)
        );
        m.delete_value(&key(24, [10, 1, 2, 0])).unwrap();
        assert_eq!(get([10, 1, 2, 3]), Some(1));
        assert_eq!(m.delete_value(&key(24, [10, 1, 2, 0])), Err(ENOENT));
        assert!(
            ExtMap::create(&def("r", LPM_TRIE, 8, 4, 16, 0, 0), 1).is_err(),
            "needs NO_PREALLOC"
        );
    }

    #[test]
    fn bloom_has_no_false_negatives() {
        let m = ExtMap::create(&def("b", BLOOM_FILTER, 0, 4, 100, 0, 3), 1).unwrap();
        for v in 0u32..100 {
            m.update_value(&v.to_ne_bytes(), &[], 0).unwrap();
        }
        for v in 0u32..100 {
            assert!(m.lookup_value(&v.to_ne_bytes()).unwrap().is_some());
        }
        let fp = (1000u32..3000)
            .filter(|v| m.lookup_value(&v.to_ne_bytes()).unwrap().is_some())
            .count();
        assert!(fp < 400, "{fp} false positives");
    }

    #[test]
    fn jhash_known_values() {
        // lookup3's published test vector: hashlittle("", 0) = 0xdeadbeef.
        assert_eq!(jhash(b"", 0), 0xdead_beef);
        // hashlittle("Four score and seven years ago", 0) = 0x17770551.
        assert_eq!(jhash(b"Four score and seven years ago", 0), 0x1777_0551);
        assert_eq!(jhash(b"Four score and seven years ago", 1), 0xcd62_8161);
    }
}
