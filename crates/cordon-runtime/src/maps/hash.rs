//! Hash maps: `hash`, `percpu_hash`, `lru_hash`, `lru_percpu_hash` (and the
//! storage of `hash_of_maps`).
//!
//! Layout follows Linux's preallocated `htab`: every element lives in one slab
//! allocated at creation (`[hdr | key (rounded to 8) | value (rounded to 8)]`,
//! per-CPU values in a second slab), so value pointers handed to programs stay
//! valid for the life of the map. Buckets are `hlist_nulls`-style singly linked
//! lists of element indices ending in a "nulls" marker that encodes the bucket
//! number; lookups are lock-free (a reader that wandered into another bucket
//! because an element was recycled sees the wrong nulls marker and restarts),
//! writers take a per-bucket spin lock. Element keys are rewritten only while the
//! element is off every list, under a per-element sequence counter that readers
//! check, so a lookup never reports a half-written key.
//!
//! Free elements of plain and per-CPU maps come from a lock-free stack plus a bump
//! index (untouched elements never have their memory committed); plain maps get
//! `ncpus + 1` spare elements so that replacing an existing key can publish a new
//! element before retiring the old one, as Linux's per-CPU `extra_elems`. LRU maps
//! take elements from [`Lru`].

use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use super::errno::*;
use super::flags::{BPF_F_NO_COMMON_LRU, BPF_F_ZERO_SEED};
use super::lru::Lru;
use super::util::{
    Slab, SpinGuard, SpinLock, checked_size, copy_value, copy_value_locked, hash_key, key_word,
    linux_htab_hash, random_seed, round8, try_slice,
};
use super::{BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapDef, MapError, MapType, current_cpu};

use crossbeam_utils::CachePadded;

const NULLS: u32 = 0x8000_0000;
const NIL: u32 = u32::MAX;
const HDR: usize = 16;

#[repr(C)]
struct Hdr {
    /// Next element in the bucket, or `NULLS | bucket`.
    next: AtomicU32,
    /// Next element in the free stack.
    free_next: AtomicU32,
    hash: AtomicU32,
    /// Odd while the key is being rewritten.
    seq: AtomicU32,
}

#[derive(Default)]
#[repr(C, align(16))]
struct Bucket {
    head: AtomicU32,
    /// Odd while a writer modifies the bucket; readers that miss check it to
    /// make sure they did not race with a writer.
    seq: AtomicU32,
    lock: SpinLock,
}

/// Bucket lock held by a writer; bumps the bucket sequence on both ends.
struct BucketGuard<'a> {
    bucket: &'a Bucket,
    _lock: SpinGuard<'a>,
}

impl Drop for BucketGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        let s = self.bucket.seq.load(Ordering::Relaxed);
        self.bucket.seq.store(s.wrapping_add(1), Ordering::Release);
    }
}

/// Flavour of a hash table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Plain,
    Percpu,
    Lru,
    LruPercpu,
}

pub(crate) struct HashTable {
    slab: Slab,
    pcpu: Option<Slab>,
    buckets: Box<[Bucket]>,
    mask: u32,
    elem_size: usize,
    key_size: usize,
    key_words: usize,
    value_size: usize,
    value8: usize,
    cap: u32,
    max_entries: u32,
    ncpus: usize,
    seed: u64,
    /// `BPF_F_ZERO_SEED`: Linux's jhash with seed 0, so the bucket order is
    /// the kernel's.
    linux_hash: bool,
    flavor: Flavor,
    lru: Option<Lru>,
    /// Per-CPU free lists of recycled elements.
    free: Box<[CachePadded<AtomicU64>]>,
    bump: AtomicU32,
    count: AtomicU32,
    lock_off: Option<u32>,
}

/// Callback given the value of an element that is being replaced or deleted
/// (called under the bucket lock, before the element can be reused).
pub(crate) type OldValueFn<'a> = Option<&'a mut dyn FnMut(*mut u8)>;

impl HashTable {
    pub(crate) fn new(
        def: &MapDef,
        t: MapType,
        value_size: u32,
        ncpus: usize,
    ) -> Result<HashTable, MapError> {
        let flavor = match t {
            MapType::PercpuHash => Flavor::Percpu,
            MapType::LruHash => Flavor::Lru,
            MapType::LruPercpuHash => Flavor::LruPercpu,
            _ => Flavor::Plain,
        };
        let percpu = matches!(flavor, Flavor::Percpu | Flavor::LruPercpu);
        let lru = matches!(flavor, Flavor::Lru | Flavor::LruPercpu);
        let mut max_entries = def.max_entries;
        let percpu_lru = lru && def.flags & BPF_F_NO_COMMON_LRU != 0;
        if percpu_lru {
            let n = ncpus as u64;
            let up = (max_entries as u64).div_ceil(n) * n;
            max_entries = if up > u32::MAX as u64 {
                (max_entries as u64 / n * n) as u32
            } else {
                up as u32
            };
        }
        if max_entries as u64 > 1 << 31 {
            return Err(MapError::AttrTooBig {
                map_type: t,
                field: "max_entries",
                value: max_entries as u64,
                limit: 1 << 31,
            });
        }
        let extra = if flavor == Flavor::Plain {
            ncpus as u32 + 1
        } else {
            0
        };
        let cap = max_entries as u64 + extra as u64;
        if cap >= NULLS as u64 {
            return Err(MapError::AttrTooBig {
                map_type: t,
                field: "max_entries",
                value: max_entries as u64,
                limit: (NULLS - 1 - extra) as u64,
            });
        }
        let cap = cap as u32;
        let key_size = def.key_size as usize;
        let value8 = round8(value_size as usize);
        let elem_size = HDR + round8(key_size) + if percpu { 0 } else { value8 };
        let slab = Slab::new(
            checked_size(&[(cap as u64, elem_size as u64)], &def.name)?,
            64,
            &def.name,
        )?;
        let pcpu = if percpu {
            Some(Slab::new(
                checked_size(&[(cap as u64 * ncpus as u64, value8 as u64)], &def.name)?,
                64,
                &def.name,
            )?)
        } else {
            None
        };
        let nb = max_entries.next_power_of_two();
        let buckets = try_slice(nb as usize, &def.name, |i| Bucket {
            head: AtomicU32::new(NULLS | i as u32),
            seq: AtomicU32::new(0),
            lock: SpinLock::default(),
        })?;
        let lru = if lru {
            Some(Lru::new(cap, ncpus, percpu_lru, &def.name)?)
        } else {
            None
        };
        Ok(HashTable {
            slab,
            pcpu,
            buckets,
            mask: nb - 1,
            elem_size,
            key_size,
            key_words: key_size.div_ceil(8),
            value_size: value_size as usize,
            value8,
            cap,
            max_entries,
            ncpus,
            seed: if def.flags & BPF_F_ZERO_SEED != 0 {
                0
            } else {
                random_seed()
            },
            linux_hash: def.flags & BPF_F_ZERO_SEED != 0,
            flavor,
            lru,
            free: try_slice(ncpus, &def.name, |_| {
                CachePadded::new(AtomicU64::new(NIL as u64))
            })?,
            bump: AtomicU32::new(0),
            count: AtomicU32::new(0),
            lock_off: def.spin_lock_off,
        })
    }

    pub(crate) fn max_entries(&self) -> u32 {
        self.max_entries
    }

    pub(crate) fn len(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    fn is_percpu(&self) -> bool {
        self.pcpu.is_some()
    }

    pub(crate) fn owns(&self, p: *const u8) -> bool {
        self.slab.contains(p) || self.pcpu.as_ref().is_some_and(|s| s.contains(p))
    }

    // ----- element accessors -------------------------------------------------

    #[inline(always)]
    fn elem_ptr(&self, idx: u32) -> *mut u8 {
        debug_assert!(idx < self.cap);
        // SAFETY: idx < cap, so the element is inside the slab.
        unsafe { self.slab.ptr().add(idx as usize * self.elem_size) }
    }

    #[inline(always)]
    fn hdr(&self, idx: u32) -> &Hdr {
        // SAFETY: element headers are 8-aligned (slab 64-aligned, elem_size % 8 == 0)
        // and live as long as `self`.
        unsafe { &*(self.elem_ptr(idx) as *const Hdr) }
    }

    #[inline(always)]
    fn key_atom(&self, idx: u32, w: usize) -> &AtomicU64 {
        // SAFETY: word `w` of the key area, 8-aligned, inside the element.
        unsafe { &*(self.elem_ptr(idx).add(HDR + w * 8) as *const AtomicU64) }
    }

    /// Value of element `idx` for CPU `cpu` (ignored unless per-CPU).
    #[inline(always)]
    fn value_ptr(&self, idx: u32, cpu: usize) -> *mut u8 {
        match &self.pcpu {
            // SAFETY: cpu < ncpus and idx < cap: inside the per-CPU slab.
            Some(p) => unsafe {
                p.ptr()
                    .add((cpu * self.cap as usize + idx as usize) * self.value8)
            },
            // SAFETY: the value area follows the key area inside the element.
            None => unsafe { self.elem_ptr(idx).add(HDR + self.key_words * 8) },
        }
    }

    #[inline(always)]
    fn cpu(&self, cpu: u32) -> usize {
        let c = cpu as usize;
        if c < self.ncpus { c } else { c % self.ncpus }
    }

    /// # Safety
    /// `key` readable for `key_size` bytes.
    #[inline(always)]
    unsafe fn key_eq(&self, idx: u32, key: *const u8) -> bool {
        for w in 0..self.key_words {
            // SAFETY: caller contract.
            let k = unsafe { key_word(key, self.key_size, w) };
            if self.key_atom(idx, w).load(Ordering::Relaxed) != k {
                return false;
            }
        }
        true
    }

    fn copy_key_out(&self, idx: u32, out: *mut u8) {
        let mut off = 0;
        for w in 0..self.key_words {
            let bytes = self.key_atom(idx, w).load(Ordering::Relaxed).to_ne_bytes();
            let n = (self.key_size - off).min(8);
            // SAFETY: caller of the public op guarantees `out` has key_size bytes.
            unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), out.add(off), n) };
            off += n;
        }
    }

    #[inline(always)]
    unsafe fn hash(&self, key: *const u8) -> u32 {
        // SAFETY: caller contract.
        unsafe {
            if self.linux_hash {
                linux_htab_hash(key, self.key_size, 0)
            } else {
                hash_key(key, self.key_size, self.seed)
            }
        }
    }

    // ----- lookup ------------------------------------------------------------

    /// Takes the lock of bucket `b` for a modification.
    #[inline]
    fn lock_bucket(&self, b: u32) -> BucketGuard<'_> {
        let bucket = &self.buckets[b as usize];
        let lock = bucket.lock.lock();
        let s = bucket.seq.load(Ordering::Relaxed);
        bucket.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        BucketGuard {
            bucket,
            _lock: lock,
        }
    }

    /// Lookup (`lookup_nulls_elem_raw`): lock-free; a hit is validated by the
    /// element's sequence counter (the element was not recycled while its key was
    /// compared), a miss by the bucket's (no writer touched the bucket during the
    /// walk) and the nulls marker (the walk did not stray into another bucket).
    /// After two inconclusive attempts the bucket lock is taken.
    ///
    /// # Safety
    /// `key` readable for `key_size` bytes.
    #[inline]
    unsafe fn find(&self, key: *const u8, hash: u32) -> Option<u32> {
        let b = hash & self.mask;
        let bucket = &self.buckets[b as usize];
        'again: for _ in 0..2 {
            let bs = bucket.seq.load(Ordering::Acquire);
            let mut n = bucket.head.load(Ordering::Acquire);
            while n & NULLS == 0 {
                let h = self.hdr(n);
                let s1 = h.seq.load(Ordering::Acquire);
                // SAFETY: caller contract.
                if h.hash.load(Ordering::Relaxed) == hash && unsafe { self.key_eq(n, key) } {
                    fence(Ordering::Acquire);
                    if s1 & 1 == 0 && h.seq.load(Ordering::Relaxed) == s1 {
                        return Some(n);
                    }
                    // The element was recycled under us: start over.
                    continue 'again;
                }
                n = h.next.load(Ordering::Acquire);
            }
            if n & !NULLS != b || bs & 1 != 0 {
                continue;
            }
            fence(Ordering::Acquire);
            if bucket.seq.load(Ordering::Relaxed) == bs {
                return None;
            }
        }
        let _g = bucket.lock.lock();
        // SAFETY: caller contract.
        unsafe { self.find_locked(b, key, hash) }.map(|(i, _)| i)
    }

    /// Lookup with the bucket lock held (`lookup_elem_raw`): returns the element
    /// and its predecessor (NIL = bucket head).
    unsafe fn find_locked(&self, b: u32, key: *const u8, hash: u32) -> Option<(u32, u32)> {
        let mut prev = NIL;
        let mut n = self.buckets[b as usize].head.load(Ordering::Relaxed);
        while n & NULLS == 0 {
            let h = self.hdr(n);
            // SAFETY: caller contract.
            if h.hash.load(Ordering::Relaxed) == hash && unsafe { self.key_eq(n, key) } {
                return Some((n, prev));
            }
            prev = n;
            n = h.next.load(Ordering::Relaxed);
        }
        None
    }

    fn unlink_locked(&self, b: u32, idx: u32, prev: u32) {
        let next = self.hdr(idx).next.load(Ordering::Relaxed);
        if prev == NIL {
            self.buckets[b as usize].head.store(next, Ordering::Release);
        } else {
            self.hdr(prev).next.store(next, Ordering::Release);
        }
    }

    fn link_head_locked(&self, b: u32, idx: u32) {
        let head = &self.buckets[b as usize].head;
        self.hdr(idx)
            .next
            .store(head.load(Ordering::Relaxed), Ordering::Relaxed);
        head.store(idx, Ordering::Release);
    }

    /// Program lookup: value pointer (current CPU's for per-CPU maps) or null.
    ///
    /// # Safety
    /// `key` readable for `key_size` bytes.
    #[inline]
    pub(crate) unsafe fn lookup(&self, key: *const u8, cpu: u32, mark: bool) -> *mut u8 {
        // SAFETY: caller contract.
        let hash = unsafe { self.hash(key) };
        // SAFETY: caller contract.
        match unsafe { self.find(key, hash) } {
            Some(idx) => {
                if mark && let Some(lru) = &self.lru {
                    lru.set_ref(idx);
                }
                self.value_ptr(idx, if self.is_percpu() { self.cpu(cpu) } else { 0 })
            }
            None => ptr::null_mut(),
        }
    }

    /// `bpf_map_lookup_percpu_elem`.
    ///
    /// # Safety
    /// As [`HashTable::lookup`].
    pub(crate) unsafe fn lookup_percpu(&self, key: *const u8, cpu: u32) -> *mut u8 {
        if !self.is_percpu() || cpu as usize >= self.ncpus {
            return ptr::null_mut();
        }
        // SAFETY: caller contract.
        let hash = unsafe { self.hash(key) };
        // SAFETY: caller contract.
        match unsafe { self.find(key, hash) } {
            Some(idx) => {
                if let Some(lru) = &self.lru {
                    lru.set_ref(idx);
                }
                self.value_ptr(idx, cpu as usize)
            }
            None => ptr::null_mut(),
        }
    }

    // ----- allocation ----------------------------------------------------------

    /// Pops from free list `list` (a tagged Treiber stack: the tag in the high
    /// half defeats ABA).
    fn pop_list(&self, list: &AtomicU64) -> Option<u32> {
        let mut head = list.load(Ordering::Acquire);
        loop {
            let idx = head as u32;
            if idx == NIL {
                return None;
            }
            let next = self.hdr(idx).free_next.load(Ordering::Relaxed);
            let new = (((head >> 32) + 1) << 32) | next as u64;
            match list.compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(idx),
                Err(h) => head = h,
            }
        }
    }

    /// Takes a free element: from the calling CPU's free list, then from the
    /// other CPUs' lists (as Linux's `pcpu_freelist`), then a never-used one.
    fn pop_free(&self) -> Option<u32> {
        let n = self.free.len();
        let me = current_cpu() as usize % n;
        for i in 0..n {
            if let Some(idx) = self.pop_list(&self.free[(me + i) % n]) {
                return Some(idx);
            }
        }
        let mut b = self.bump.load(Ordering::Relaxed);
        while b < self.cap {
            match self
                .bump
                .compare_exchange_weak(b, b + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Some(b),
                Err(x) => b = x,
            }
        }
        None
    }

    /// Returns an element to the calling CPU's free list.
    fn push_free(&self, idx: u32) {
        let list = &self.free[current_cpu() as usize % self.free.len()];
        let mut head = list.load(Ordering::Relaxed);
        loop {
            self.hdr(idx)
                .free_next
                .store(head as u32, Ordering::Relaxed);
            let new = (((head >> 32) + 1) << 32) | idx as u64;
            match list.compare_exchange_weak(head, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Uncounts and frees an element just unlinked by a delete. Plain and per-CPU
    /// maps free before uncounting, so an insert that got past the count always
    /// finds a free element; LRU lists free nodes by themselves, so there the count
    /// drops first and never exceeds the number of linked elements.
    fn retire(&self, idx: u32) {
        if self.lru.is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
            self.release(idx);
        } else {
            self.release(idx);
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Gives an element back to its allocator.
    fn release(&self, idx: u32) {
        match &self.lru {
            Some(lru) => lru.push_free(idx),
            None => self.push_free(idx),
        }
    }

    /// Writes hash, key and (through `write_value`) the value into an element that
    /// is on no bucket list.
    ///
    /// # Safety
    /// `key` readable for `key_size` bytes; `idx` exclusively owned by the caller.
    unsafe fn init_elem(&self, idx: u32, key: *const u8, hash: u32, write_value: impl FnOnce()) {
        let h = self.hdr(idx);
        let s = h.seq.load(Ordering::Relaxed);
        h.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        h.hash.store(hash, Ordering::Relaxed);
        for w in 0..self.key_words {
            // SAFETY: caller contract.
            let k = unsafe { key_word(key, self.key_size, w) };
            self.key_atom(idx, w).store(k, Ordering::Relaxed);
        }
        // The value is written inside the window too, so a reader that reaches
        // this (not yet linked) element through a stale link never returns it
        // half-initialised.
        write_value();
        h.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    /// LRU eviction callback (`htab_lru_map_delete_node`).
    fn evict(&self, idx: u32) -> bool {
        let hash = self.hdr(idx).hash.load(Ordering::Relaxed);
        let b = hash & self.mask;
        let _g = self.lock_bucket(b);
        let mut prev = NIL;
        let mut n = self.buckets[b as usize].head.load(Ordering::Relaxed);
        while n & NULLS == 0 {
            if n == idx {
                self.unlink_locked(b, idx, prev);
                self.count.fetch_sub(1, Ordering::Relaxed);
                return true;
            }
            prev = n;
            n = self.hdr(n).next.load(Ordering::Relaxed);
        }
        false
    }

    fn lru_pop(&self, cpu: u32) -> Option<u32> {
        let lru = self.lru.as_ref()?;
        lru.pop_free(self.cpu(cpu), &|idx| self.evict(idx))
    }

    // ----- values --------------------------------------------------------------

    /// Copies a program value (value_size bytes) into a per-CPU slot, zeroing the
    /// padding up to the rounded size.
    unsafe fn write_slot(&self, dst: *mut u8, value: *const u8) {
        // SAFETY: dst has value8 bytes, value has value_size bytes.
        unsafe {
            ptr::copy_nonoverlapping(value, dst, self.value_size);
            ptr::write_bytes(dst.add(self.value_size), 0, self.value8 - self.value_size);
        }
    }

    /// `pcpu_copy_value`: `onallcpus` means `value` holds ncpus rounded slots.
    unsafe fn pcpu_copy(&self, idx: u32, value: *const u8, onallcpus: bool, cpu: u32) {
        if onallcpus {
            for c in 0..self.ncpus {
                // SAFETY: source has ncpus * value8 bytes.
                unsafe {
                    ptr::copy_nonoverlapping(
                        value.add(c * self.value8),
                        self.value_ptr(idx, c),
                        self.value8,
                    )
                };
            }
        } else {
            // SAFETY: forwarded.
            unsafe {
                ptr::copy_nonoverlapping(value, self.value_ptr(idx, self.cpu(cpu)), self.value_size)
            };
        }
    }

    /// `pcpu_init_value`: from a program, other CPUs' slots are zeroed.
    unsafe fn pcpu_init(&self, idx: u32, value: *const u8, onallcpus: bool, cpu: u32) {
        if onallcpus {
            // SAFETY: forwarded.
            unsafe { self.pcpu_copy(idx, value, true, cpu) };
            return;
        }
        let me = self.cpu(cpu);
        for c in 0..self.ncpus {
            let dst = self.value_ptr(idx, c);
            if c == me {
                // SAFETY: forwarded.
                unsafe { self.write_slot(dst, value) };
            } else {
                // SAFETY: slot of value8 bytes.
                unsafe { ptr::write_bytes(dst, 0, self.value8) };
            }
        }
    }

    unsafe fn write_value(&self, idx: u32, value: *const u8, onallcpus: bool, cpu: u32) {
        if self.is_percpu() {
            // SAFETY: forwarded.
            unsafe { self.pcpu_init(idx, value, onallcpus, cpu) };
        } else {
            // SAFETY: value area of value8 bytes.
            unsafe {
                copy_value(
                    self.value_ptr(idx, 0),
                    value,
                    self.value_size,
                    self.lock_off,
                )
            };
        }
    }

    // ----- update / delete -----------------------------------------------------

    fn check_flags(old: bool, flags: u64) -> i64 {
        let f = flags & !BPF_F_LOCK;
        if old && f == BPF_NOEXIST {
            return -(EEXIST as i64);
        }
        if !old && f == BPF_EXIST {
            return -(ENOENT as i64);
        }
        0
    }

    /// Update from a program (`onallcpus == false`) or the host (`true`: per-CPU
    /// values hold `ncpus` slots of `round_up(value_size, 8)`).
    ///
    /// # Safety
    /// `key` readable for `key_size`, `value` for the value size described above.
    pub(crate) unsafe fn update(
        &self,
        key: *const u8,
        value: *const u8,
        flags: u64,
        cpu: u32,
        onallcpus: bool,
        on_old: OldValueFn<'_>,
    ) -> i64 {
        // SAFETY: all forwarded to the caller's contract.
        unsafe {
            match self.flavor {
                Flavor::Plain => self.update_plain(key, value, flags, on_old),
                Flavor::Percpu => self.update_percpu(key, value, flags, cpu, onallcpus),
                Flavor::Lru => self.update_lru(key, value, flags, cpu),
                Flavor::LruPercpu => self.update_lru_percpu(key, value, flags, cpu, onallcpus),
            }
        }
    }

    unsafe fn update_plain(
        &self,
        key: *const u8,
        value: *const u8,
        flags: u64,
        mut on_old: OldValueFn<'_>,
    ) -> i64 {
        if flags & !BPF_F_LOCK > BPF_EXIST {
            return -(EINVAL as i64);
        }
        // SAFETY: caller contract.
        let hash = unsafe { self.hash(key) };
        let b = hash & self.mask;
        if flags & BPF_F_LOCK != 0 {
            let Some(off) = self.lock_off else {
                return -(EINVAL as i64);
            };
            // SAFETY: caller contract.
            let old = unsafe { self.find(key, hash) };
            let r = Self::check_flags(old.is_some(), flags);
            if r != 0 {
                return r;
            }
            if let Some(idx) = old {
                // SAFETY: value area of an element; caller's value buffer.
                unsafe {
                    copy_value_locked(self.value_ptr(idx, 0), value, self.value_size, off, true)
                };
                return 0;
            }
        }
        let _g = self.lock_bucket(b);
        // SAFETY: caller contract.
        let old = unsafe { self.find_locked(b, key, hash) };
        let r = Self::check_flags(old.is_some(), flags);
        if r != 0 {
            return r;
        }
        if let Some((old_idx, prev)) = old {
            if flags & BPF_F_LOCK != 0 {
                let off = self.lock_off.unwrap_or(0);
                // SAFETY: as above.
                unsafe {
                    copy_value_locked(
                        self.value_ptr(old_idx, 0),
                        value,
                        self.value_size,
                        off,
                        true,
                    )
                };
                return 0;
            }
            match self.pop_free() {
                Some(new) => {
                    // SAFETY: `new` is exclusively ours.
                    unsafe {
                        self.init_elem(new, key, hash, || self.write_value(new, value, false, 0));
                    }
                    // Publish the new element before retiring the old one so that
                    // concurrent lookups always find the key.
                    self.link_head_locked(b, new);
                    let prev = if prev == NIL { new } else { prev };
                    self.unlink_locked(b, old_idx, prev);
                    if let Some(f) = on_old.as_mut() {
                        f(self.value_ptr(old_idx, 0));
                    }
                    self.push_free(old_idx);
                }
                None => {
                    // More concurrent replacements than spare elements: update in
                    // place instead of failing.
                    if let Some(f) = on_old.as_mut() {
                        f(self.value_ptr(old_idx, 0));
                    }
                    // SAFETY: value area of a linked element, under the bucket lock.
                    unsafe { self.write_value(old_idx, value, false, 0) };
                }
            }
            return 0;
        }
        if !self.reserve_count() {
            return -(E2BIG as i64);
        }
        let Some(new) = self.pop_free_retry() else {
            self.count.fetch_sub(1, Ordering::Relaxed);
            return -(ENOMEM as i64);
        };
        // SAFETY: `new` is exclusively ours.
        unsafe {
            self.init_elem(new, key, hash, || self.write_value(new, value, false, 0));
        }
        self.link_head_locked(b, new);
        0
    }

    /// Counts one more element unless the map is full (never overshoots, so
    /// `len() <= max_entries` holds at every instant).
    fn reserve_count(&self) -> bool {
        self.count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                (c < self.max_entries).then_some(c + 1)
            })
            .is_ok()
    }

    /// Spare elements can be held briefly by concurrent replacements; wait for
    /// them instead of failing an insert that is within `max_entries`.
    fn pop_free_retry(&self) -> Option<u32> {
        for i in 0..1000 {
            if let Some(x) = self.pop_free() {
                return Some(x);
            }
            if i < 100 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        None
    }

    unsafe fn update_percpu(
        &self,
        key: *const u8,
        value: *const u8,
        flags: u64,
        cpu: u32,
        onallcpus: bool,
    ) -> i64 {
        if flags > BPF_EXIST {
            return -(EINVAL as i64);
        }
        // SAFETY: caller contract.
        let hash = unsafe { self.hash(key) };
        let b = hash & self.mask;
        let _g = self.lock_bucket(b);
        // SAFETY: caller contract.
        let old = unsafe { self.find_locked(b, key, hash) };
        let r = Self::check_flags(old.is_some(), flags);
        if r != 0 {
            return r;
        }
        if let Some((idx, _)) = old {
            // SAFETY: per-CPU slots of a linked element.
            unsafe { self.pcpu_copy(idx, value, onallcpus, cpu) };
            return 0;
        }
        if !self.reserve_count() {
            return -(E2BIG as i64);
        }
        let Some(new) = self.pop_free_retry() else {
            self.count.fetch_sub(1, Ordering::Relaxed);
            return -(ENOMEM as i64);
        };
        // SAFETY: `new` is exclusively ours.
        unsafe {
            self.init_elem(new, key, hash, || {
                self.pcpu_init(new, value, onallcpus, cpu)
            });
        }
        self.link_head_locked(b, new);
        0
    }

    unsafe fn update_lru(&self, key: *const u8, value: *const u8, flags: u64, cpu: u32) -> i64 {
        if flags > BPF_EXIST {
            return -(EINVAL as i64);
        }
        // SAFETY: caller contract.
        let hash = unsafe { self.hash(key) };
        let b = hash & self.mask;
        let Some(new) = self.lru_pop(cpu) else {
            return -(ENOMEM as i64);
        };
        // SAFETY: `new` is exclusively ours (on the inactive list, not linked).
        unsafe {
            self.init_elem(new, key, hash, || {
                copy_value(self.value_ptr(new, 0), value, self.value_size, None)
            });
        }
        let old;
        {
            let _g = self.lock_bucket(b);
            // SAFETY: caller contract.
            let found = unsafe { self.find_locked(b, key, hash) };
            let r = Self::check_flags(found.is_some(), flags);
            if r != 0 {
                drop(_g);
                self.release(new);
                return r;
            }
            self.link_head_locked(b, new);
            old = found.map(|(o, prev)| {
                if let Some(lru) = &self.lru {
                    lru.set_ref(new);
                }
                let prev = if prev == NIL { new } else { prev };
                self.unlink_locked(b, o, prev);
                o
            });
            if old.is_none() {
                self.count.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(o) = old {
            self.release(o);
        }
        0
    }

    unsafe fn update_lru_percpu(
        &self,
        key: *const u8,
        value: *const u8,
        flags: u64,
        cpu: u32,
        onallcpus: bool,
    ) -> i64 {
        if flags > BPF_EXIST {
            return -(EINVAL as i64);
        }
        // SAFETY: caller contract.
        let hash = unsafe { self.hash(key) };
        let b = hash & self.mask;
        let mut new = None;
        if flags != BPF_EXIST {
            match self.lru_pop(cpu) {
                Some(n) => new = Some(n),
                None => return -(ENOMEM as i64),
            }
        }
        let ret;
        {
            let _g = self.lock_bucket(b);
            // SAFETY: caller contract.
            let found = unsafe { self.find_locked(b, key, hash) };
            ret = Self::check_flags(found.is_some(), flags);
            if ret == 0 {
                if let Some((idx, _)) = found {
                    if let Some(lru) = &self.lru {
                        lru.set_ref(idx);
                    }
                    // SAFETY: slots of a linked element.
                    unsafe { self.pcpu_copy(idx, value, onallcpus, cpu) };
                } else if let Some(n) = new.take() {
                    // SAFETY: `n` is exclusively ours.
                    unsafe {
                        self.init_elem(n, key, hash, || self.pcpu_init(n, value, onallcpus, cpu));
                    }
                    self.link_head_locked(b, n);
                    self.count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if let Some(n) = new {
            self.release(n);
        }
        ret
    }

    /// Delete (`htab_map_delete_elem`).
    ///
    /// # Safety
    /// `key` readable for `key_size` bytes.
    pub(crate) unsafe fn delete(&self, key: *const u8, mut on_old: OldValueFn<'_>) -> i64 {
        // SAFETY: caller contract.
        let hash = unsafe { self.hash(key) };
        let b = hash & self.mask;
        let idx;
        {
            let _g = self.lock_bucket(b);
            // SAFETY: caller contract.
            let Some((i, prev)) = (unsafe { self.find_locked(b, key, hash) }) else {
                return -(ENOENT as i64);
            };
            self.unlink_locked(b, i, prev);
            if let Some(f) = on_old.as_mut() {
                f(self.value_ptr(i, 0));
            }
            idx = i;
        }
        self.retire(idx);
        0
    }

    /// Host lookup-and-delete: copies the value (all CPUs for per-CPU maps) to
    /// `out`, then deletes.
    ///
    /// # Safety
    /// `key` readable for `key_size`, `out` writable for the host value size.
    pub(crate) unsafe fn lookup_and_delete(&self, key: *const u8, out: *mut u8, flags: u64) -> i64 {
        if flags & !BPF_F_LOCK != 0 || (flags & BPF_F_LOCK != 0 && self.lock_off.is_none()) {
            return -(EINVAL as i64);
        }
        // SAFETY: caller contract.
        let hash = unsafe { self.hash(key) };
        let b = hash & self.mask;
        let idx;
        {
            let _g = self.lock_bucket(b);
            // SAFETY: caller contract.
            let Some((i, prev)) = (unsafe { self.find_locked(b, key, hash) }) else {
                return -(ENOENT as i64);
            };
            // SAFETY: caller contract.
            unsafe { self.copy_out(i, out, flags) };
            self.unlink_locked(b, i, prev);
            idx = i;
        }
        self.retire(idx);
        0
    }

    unsafe fn copy_out(&self, idx: u32, out: *mut u8, flags: u64) {
        if self.is_percpu() {
            for c in 0..self.ncpus {
                // SAFETY: out has ncpus * value8 bytes.
                unsafe {
                    ptr::copy_nonoverlapping(
                        self.value_ptr(idx, c),
                        out.add(c * self.value8),
                        self.value8,
                    )
                };
            }
            return;
        }
        let src = self.value_ptr(idx, 0);
        // SAFETY: out has value_size bytes.
        unsafe {
            match (flags & BPF_F_LOCK != 0, self.lock_off) {
                (true, Some(off)) => copy_value_locked(out, src, self.value_size, off, false),
                (_, Some(off)) => {
                    copy_value(out, src, self.value_size, Some(off));
                    ptr::write_bytes(out.add(off as usize), 0, 4);
                }
                _ => ptr::copy_nonoverlapping(src, out, self.value_size),
            }
        }
    }

    /// Host lookup (does not touch LRU reference bits, as Linux's syscall path).
    ///
    /// # Safety
    /// As [`HashTable::lookup_and_delete`].
    pub(crate) unsafe fn lookup_host(&self, key: *const u8, out: *mut u8, flags: u64) -> i64 {
        if flags & !BPF_F_LOCK != 0 || (flags & BPF_F_LOCK != 0 && self.lock_off.is_none()) {
            return -(EINVAL as i64);
        }
        // SAFETY: caller contract.
        let hash = unsafe { self.hash(key) };
        // SAFETY: caller contract.
        match unsafe { self.find(key, hash) } {
            Some(idx) => {
                // SAFETY: caller contract.
                unsafe { self.copy_out(idx, out, flags) };
                0
            }
            None => -(ENOENT as i64),
        }
    }

    pub(crate) fn host_value_size(&self) -> usize {
        if self.is_percpu() {
            self.ncpus * self.value8
        } else {
            self.value_size
        }
    }

    /// `htab_map_get_next_key`.
    ///
    /// # Safety
    /// `key` null or readable for `key_size`; `next` writable for `key_size`.
    pub(crate) unsafe fn get_next_key(&self, key: *const u8, next: *mut u8) -> i64 {
        // A key copied from an element that was recycled meanwhile could be torn;
        // retry a few times (a torn copy needs a concurrent delete + reinsert).
        for _ in 0..8 {
            // SAFETY: forwarded.
            match unsafe { self.next_key_once(key, next) } {
                Some(r) => return r,
                None => continue,
            }
        }
        // SAFETY: forwarded.
        unsafe { self.next_key_once(key, next) }.unwrap_or(-(ENOENT as i64))
    }

    /// One attempt of `get_next_key`; `None` if the copied key may be torn.
    unsafe fn next_key_once(&self, key: *const u8, next: *mut u8) -> Option<i64> {
        let copy = |n: u32| {
            let h = self.hdr(n);
            let s1 = h.seq.load(Ordering::Acquire);
            self.copy_key_out(n, next);
            fence(Ordering::Acquire);
            (s1 & 1 == 0 && h.seq.load(Ordering::Relaxed) == s1).then_some(0)
        };
        let mut start = 0usize;
        if !key.is_null() {
            // SAFETY: caller contract.
            let hash = unsafe { self.hash(key) };
            // SAFETY: caller contract.
            if let Some(idx) = unsafe { self.find(key, hash) } {
                let n = self.hdr(idx).next.load(Ordering::Acquire);
                if n & NULLS == 0 {
                    return copy(n);
                }
                start = (hash & self.mask) as usize + 1;
            }
        }
        for b in &self.buckets[start.min(self.buckets.len())..] {
            let n = b.head.load(Ordering::Acquire);
            if n & NULLS == 0 {
                return copy(n);
            }
        }
        Some(-(ENOENT as i64))
    }

    /// `bpf_for_each_hash_elem`: calls `f(key, value)` for each element (current
    /// CPU's value for per-CPU maps) until it returns `false`.
    /// `bpf_for_each_map_elem` cursor (Linux's `bpf_for_each_hash_elem`):
    /// buckets in order, each list from its head. `pos` is 0 before the first
    /// element, else `(bucket + 1) << 32 | element` of the element handed out
    /// last; its successor is read *after* the callback ran, so deleting the
    /// current element (whose `next` stays intact, as in Linux) continues with
    /// the rest of the bucket. Returns `(pos, key, value of CPU cpu)`, `None`
    /// when every bucket was visited (or `pos` does not name an element).
    pub(crate) fn cursor_next(&self, pos: u64, cpu: u32) -> Option<(u64, *const u8, *mut u8)> {
        let cpu = if self.is_percpu() { self.cpu(cpu) } else { 0 };
        let nb = self.buckets.len() as u64;
        let (mut bucket, mut n) = if pos == 0 {
            (0u64, self.buckets.first()?.head.load(Ordering::Acquire))
        } else {
            let (b, idx) = ((pos >> 32).checked_sub(1)?, pos as u32);
            if b >= nb || idx >= self.cap {
                return None;
            }
            (b, self.hdr(idx).next.load(Ordering::Acquire))
        };
        loop {
            if n & NULLS == 0 {
                if n >= self.cap {
                    return None;
                }
                // SAFETY: key area of the element (HDR offset), inside the slab.
                let key = unsafe { self.elem_ptr(n).add(HDR) };
                return Some(((bucket + 1) << 32 | n as u64, key, self.value_ptr(n, cpu)));
            }
            bucket += 1;
            if bucket >= nb {
                return None;
            }
            n = self.buckets[bucket as usize].head.load(Ordering::Acquire);
        }
    }

    pub(crate) fn for_each(&self, cpu: u32, f: &mut dyn FnMut(*const u8, *mut u8) -> bool) -> u32 {
        let cpu = if self.is_percpu() { self.cpu(cpu) } else { 0 };
        let mut calls = 0;
        for b in self.buckets.iter() {
            let mut n = b.head.load(Ordering::Acquire);
            while n & NULLS == 0 {
                calls += 1;
                // SAFETY: key area of the element (HDR offset).
                let key = unsafe { self.elem_ptr(n).add(HDR) };
                if !f(key, self.value_ptr(n, cpu)) {
                    return calls;
                }
                n = self.hdr(n).next.load(Ordering::Acquire);
            }
        }
        calls
    }
}
