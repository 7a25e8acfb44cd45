//! Low-level pieces shared by the map implementations: stable zeroed slabs,
//! spin locks, key hashing and value copies.

use std::alloc::{self, Layout};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use super::MapError;

/// Rounds `n` up to a multiple of 8.
#[inline]
pub(crate) const fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// A zero-initialised heap block that never moves and is freed only on drop.
pub(crate) struct Slab {
    ptr: *mut u8,
    layout: Option<Layout>,
}

// SAFETY: a slab is plain memory; synchronisation of its contents is the job of
// the map that owns it.
unsafe impl Send for Slab {}
unsafe impl Sync for Slab {}

impl Slab {
    /// Allocates `bytes` zeroed bytes aligned to `align` (a power of two).
    /// A zero-sized slab has a dangling, well-aligned pointer.
    pub(crate) fn new(bytes: usize, align: usize, name: &str) -> Result<Slab, MapError> {
        if bytes == 0 {
            return Ok(Slab {
                ptr: align as *mut u8,
                layout: None,
            });
        }
        let oom = |reason: &str| MapError::OutOfMemory {
            name: name.to_string(),
            bytes: bytes as u64,
            reason: reason.to_string(),
        };
        let layout = Layout::from_size_align(bytes, align).map_err(|_| oom("size overflow"))?;
        // SAFETY: layout has non-zero size.
        let ptr = unsafe { alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            return Err(oom("allocator returned null"));
        }
        Ok(Slab {
            ptr,
            layout: Some(layout),
        })
    }

    #[inline]
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub(crate) fn len(&self) -> usize {
        self.layout.map_or(0, |l| l.size())
    }

    /// Whether `p` points inside this slab.
    pub(crate) fn contains(&self, p: *const u8) -> bool {
        let start = self.ptr as usize;
        let p = p as usize;
        p >= start && p < start + self.len()
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        if let Some(layout) = self.layout {
            // SAFETY: allocated in `new` with this layout.
            unsafe { alloc::dealloc(self.ptr, layout) };
        }
    }
}

/// Builds a boxed slice of `n` elements, reporting allocation failure as a
/// map error instead of aborting.
pub(crate) fn try_slice<T>(
    n: usize,
    name: &str,
    f: impl FnMut(usize) -> T,
) -> Result<Box<[T]>, MapError> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|e| MapError::OutOfMemory {
        name: name.to_string(),
        bytes: (n as u64).saturating_mul(std::mem::size_of::<T>() as u64),
        reason: e.to_string(),
    })?;
    v.extend((0..n).map(f));
    Ok(v.into_boxed_slice())
}

/// A slice of `n` null atomic pointers from zeroed memory (committed lazily by
/// the OS, so huge, mostly empty fd arrays cost address space only).
pub(crate) fn try_null_ptrs<T>(n: usize, name: &str) -> Result<Box<[AtomicPtr<T>]>, MapError> {
    if n == 0 {
        return Ok(Box::new([]));
    }
    let oom = |reason: &str| MapError::OutOfMemory {
        name: name.to_string(),
        bytes: (n as u64).saturating_mul(8),
        reason: reason.to_string(),
    };
    let layout = Layout::array::<AtomicPtr<T>>(n).map_err(|_| oom("size overflow"))?;
    // SAFETY: non-zero size.
    let p = unsafe { alloc::alloc_zeroed(layout) } as *mut AtomicPtr<T>;
    if p.is_null() {
        return Err(oom("allocator returned null"));
    }
    // SAFETY: all-zero bits are a valid null AtomicPtr; the block was allocated by
    // the global allocator with the layout of `[AtomicPtr<T>; n]`, as Box expects.
    Ok(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, n)) })
}

/// Computes `a * b + c` in u64, failing on overflow with a creation error.
pub(crate) fn checked_size(parts: &[(u64, u64)], name: &str) -> Result<usize, MapError> {
    let mut total: u64 = 0;
    for &(a, b) in parts {
        total = a
            .checked_mul(b)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| MapError::OutOfMemory {
                name: name.to_string(),
                bytes: u64::MAX,
                reason: "size overflow".to_string(),
            })?;
    }
    usize::try_from(total).map_err(|_| MapError::OutOfMemory {
        name: name.to_string(),
        bytes: total,
        reason: "larger than the address space".to_string(),
    })
}

/// Test-and-test-and-set spin lock that yields the CPU after spinning a while
/// (host threads can be preempted while holding it).
#[derive(Default)]
pub(crate) struct SpinLock(AtomicU32);

impl SpinLock {
    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_> {
        lock_word(&self.0);
        SpinGuard(&self.0)
    }
}

pub(crate) struct SpinGuard<'a>(&'a AtomicU32);

impl Drop for SpinGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

#[inline]
fn lock_word(w: &AtomicU32) {
    if w.compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_ok()
    {
        return;
    }
    lock_word_slow(w);
}

#[cold]
fn lock_word_slow(w: &AtomicU32) {
    let mut spins = 0u32;
    loop {
        while w.load(Ordering::Relaxed) != 0 {
            if spins < 64 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
        if w.compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
    }
}

/// `bpf_spin_lock`: acquires the 4-byte lock word at `lock`.
///
/// # Safety
/// `lock` must be a valid, 4-byte aligned pointer to a lock word that lives at
/// least until the matching [`bpf_spin_unlock`] (e.g. inside a map value).
pub unsafe fn bpf_spin_lock(lock: *mut u32) {
    // SAFETY: guaranteed by the caller; AtomicU32 has the layout of u32.
    lock_word(unsafe { AtomicU32::from_ptr(lock) });
}

/// `bpf_spin_unlock`: releases the lock word at `lock`.
///
/// # Safety
/// Same as [`bpf_spin_lock`]; the lock must be held by the caller.
pub unsafe fn bpf_spin_unlock(lock: *mut u32) {
    // SAFETY: guaranteed by the caller.
    unsafe { AtomicU32::from_ptr(lock) }.store(0, Ordering::Release);
}

/// Reads the `i`-th 8-byte word of a key of `len` bytes, zero-padded (the word's
/// in-memory bytes are the key bytes, so stored keys can be handed out as is).
///
/// # Safety
/// `key` must be readable for `len` bytes.
#[inline(always)]
pub(crate) unsafe fn key_word(key: *const u8, len: usize, i: usize) -> u64 {
    let off = i * 8;
    // SAFETY: all reads stay within `key[off..len]`; unaligned reads are allowed.
    unsafe {
        let p = key.add(off);
        let rem = len - off;
        if rem >= 8 {
            return ptr::read_unaligned(p as *const u64);
        }
        if cfg!(target_endian = "little") {
            let mut v = 0u64;
            let mut at = 0;
            if rem & 4 != 0 {
                v = ptr::read_unaligned(p as *const u32) as u64;
                at = 4;
            }
            if rem & 2 != 0 {
                v |= (ptr::read_unaligned(p.add(at) as *const u16) as u64) << (8 * at);
                at += 2;
            }
            if rem & 1 != 0 {
                v |= (*p.add(at) as u64) << (8 * at);
            }
            v
        } else {
            let mut buf = [0u8; 8];
            ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), rem);
            u64::from_ne_bytes(buf)
        }
    }
}

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let r = (a as u128).wrapping_mul(b as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

const K0: u64 = 0xa076_1d64_78bd_642f;
const K1: u64 = 0xe703_7ed1_a0b4_28db;

/// Hashes a key (seeded, wyhash-style folded multiply over 8-byte words).
///
/// # Safety
/// `key` must be readable for `len` bytes.
#[inline]
pub(crate) unsafe fn hash_key(key: *const u8, len: usize, seed: u64) -> u32 {
    let mut h = seed ^ (len as u64).wrapping_mul(K1);
    let words = len.div_ceil(8);
    for i in 0..words {
        // SAFETY: forwarded.
        let w = unsafe { key_word(key, len, i) };
        h = fold_mul(h ^ w ^ K0, K1 ^ (i as u64));
    }
    let h = fold_mul(h, K0);
    (h ^ (h >> 32)) as u32
}

/// Linux's `htab_map_hash` (Bob Jenkins' lookup3 `jhash2` for keys of a
/// multiple of 4 bytes, byte-wise `jhash` otherwise) with seed `initval`.
/// Used for `BPF_F_ZERO_SEED` hash maps, whose bucket order (and so
/// `get_next_key` and `bpf_for_each_map_elem` order) Linux makes
/// deterministic: Cordon's order is then the same as the kernel's.
///
/// # Safety
/// `key` must be readable for `len` bytes.
pub(crate) unsafe fn linux_htab_hash(key: *const u8, len: usize, initval: u32) -> u32 {
    // SAFETY: forwarded.
    let k = unsafe { std::slice::from_raw_parts(key, len) };
    let word = |i: usize| u32::from_ne_bytes([k[i], k[i + 1], k[i + 2], k[i + 3]]);
    let init = 0xdead_beefu32.wrapping_add(initval);
    if len.is_multiple_of(4) {
        let mut n = len / 4;
        let mut a = init.wrapping_add((n as u32) << 2);
        let (mut b, mut c) = (a, a);
        let mut at = 0;
        while n > 3 {
            a = a.wrapping_add(word(at));
            b = b.wrapping_add(word(at + 4));
            c = c.wrapping_add(word(at + 8));
            jhash_mix(&mut a, &mut b, &mut c);
            n -= 3;
            at += 12;
        }
        if n == 0 {
            return c;
        }
        if n == 3 {
            c = c.wrapping_add(word(at + 8));
        }
        if n >= 2 {
            b = b.wrapping_add(word(at + 4));
        }
        a = a.wrapping_add(word(at));
        jhash_final(&mut a, &mut b, &mut c);
        return c;
    }
    let mut a = init.wrapping_add(len as u32);
    let (mut b, mut c) = (a, a);
    let mut rest = len;
    let mut at = 0;
    while rest > 12 {
        a = a.wrapping_add(word(at));
        b = b.wrapping_add(word(at + 4));
        c = c.wrapping_add(word(at + 8));
        jhash_mix(&mut a, &mut b, &mut c);
        rest -= 12;
        at += 12;
    }
    if rest == 0 {
        return c;
    }
    // The tail, byte by byte (little-endian positions within each word).
    for j in (0..rest).rev() {
        let v = (k[at + j] as u32) << (8 * (j % 4));
        match j / 4 {
            0 => a = a.wrapping_add(v),
            1 => b = b.wrapping_add(v),
            _ => c = c.wrapping_add(v),
        }
    }
    jhash_final(&mut a, &mut b, &mut c);
    c
}

#[inline(always)]
fn jhash_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
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

#[inline(always)]
fn jhash_final(a: &mut u32, b: &mut u32, c: &mut u32) {
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

/// A random 64-bit seed (from the std hasher's per-process random keys).
pub(crate) fn random_seed() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// Copies a map value of `size` bytes, skipping the 4-byte spin lock word at
/// `lock_off` if any (Linux's `copy_map_value`: special fields are not copied).
///
/// # Safety
/// Both pointers must be valid for `size` bytes and not overlap.
#[inline]
pub(crate) unsafe fn copy_value(dst: *mut u8, src: *const u8, size: usize, lock_off: Option<u32>) {
    // SAFETY: forwarded to the caller.
    unsafe {
        match lock_off {
            None => ptr::copy_nonoverlapping(src, dst, size),
            Some(off) => {
                let off = off as usize;
                ptr::copy_nonoverlapping(src, dst, off);
                let rest = off + 4;
                ptr::copy_nonoverlapping(src.add(rest), dst.add(rest), size - rest);
            }
        }
    }
}

/// Copies a value while holding the spin lock inside `locked` (Linux's
/// `copy_map_value_locked`). `locked_is_dst` tells which side holds the lock.
///
/// # Safety
/// As [`copy_value`]; `lock_off + 4 <= size` and the lock word is 4-aligned.
pub(crate) unsafe fn copy_value_locked(
    dst: *mut u8,
    src: *const u8,
    size: usize,
    lock_off: u32,
    locked_is_dst: bool,
) {
    let lock = if locked_is_dst {
        // SAFETY: in bounds by the caller's contract.
        unsafe { dst.add(lock_off as usize) }
    } else {
        // SAFETY: as above.
        unsafe { src.add(lock_off as usize) as *mut u8 }
    } as *mut u32;
    // SAFETY: forwarded.
    unsafe {
        bpf_spin_lock(lock);
        copy_value(dst, src, size, Some(lock_off));
        bpf_spin_unlock(lock);
    }
}

/// Host pointer of a slice, or null for an empty one (so "no key" can be passed).
pub(crate) fn opt_ptr(s: Option<&[u8]>) -> *const u8 {
    s.map_or(ptr::null(), |s| s.as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_word_matches_byte_copy() {
        let bytes: Vec<u8> = (1..=40u8).collect();
        for len in 1..=40usize {
            for i in 0..len.div_ceil(8) {
                let mut buf = [0u8; 8];
                let n = (len - i * 8).min(8);
                buf[..n].copy_from_slice(&bytes[i * 8..i * 8 + n]);
                let got = unsafe { key_word(bytes.as_ptr(), len, i) };
                assert_eq!(got, u64::from_ne_bytes(buf), "len {len} word {i}");
            }
        }
    }

    #[test]
    fn hash_depends_on_every_byte() {
        let base = [7u8; 13];
        let h0 = unsafe { hash_key(base.as_ptr(), 13, 1) };
        for i in 0..13 {
            let mut k = base;
            k[i] ^= 1;
            assert_ne!(unsafe { hash_key(k.as_ptr(), 13, 1) }, h0, "byte {i}");
        }
        assert_ne!(unsafe { hash_key(base.as_ptr(), 13, 2) }, h0, "seeded");
    }
}
