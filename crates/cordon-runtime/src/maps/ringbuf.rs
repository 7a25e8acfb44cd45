//! `BPF_MAP_TYPE_RINGBUF`, after Linux's `ringbuf.c`.
//!
//! The data area (`max_entries` bytes, a power of two) is mapped twice back to
//! back, so a record that wraps around the end is still contiguous, and is
//! preceded by one metadata page holding a pointer to the ring's state. Records
//! have Linux's 8-byte header `{ u32 len; u32 pg_off; }` (`len` carries the busy and
//! discard bits; `pg_off` is the header's page offset from the metadata page, which
//! is how `bpf_ringbuf_submit(sample)` finds the ring) and are 8-byte aligned.
//! Producers serialise on a spin lock; the host consumer reads committed records in
//! order and can block in [`RingBuf::poll`] until a producer wakes it.

use std::ptr;
use std::slice;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use parking_lot::{Condvar, Mutex};

use super::errno::*;
use super::ringbuf_flags::*;
use super::util::{SpinLock, round8};
use super::{MapDef, MapError};

/// `RINGBUF_MAX_RECORD_SZ`.
const MAX_RECORD_SZ: u64 = (u32::MAX / 4) as u64;
/// Unit of `pg_off` in record headers.
const PG: usize = 4096;

struct Inner {
    region: *mut u8,
    region_len: usize,
    data: *mut u8,
    mask: u64,
    consumer_pos: CachePadded<AtomicU64>,
    producer_pos: CachePadded<AtomicU64>,
    /// Guarded by `lock`.
    pending_pos: AtomicU64,
    lock: SpinLock,
    consumer: Mutex<()>,
    waiters: AtomicU32,
    wake_lock: Mutex<u64>,
    wake: Condvar,
}

// SAFETY: the raw pointers refer to a mapping owned by `Inner`; all shared state
// is atomic or lock-protected.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: the region was mapped in `RingBuf::new` with this length.
        unsafe { libc::munmap(self.region as *mut libc::c_void, self.region_len) };
    }
}

pub(crate) struct RingBuf {
    inner: Box<Inner>,
}

fn os_err(def: &MapDef, bytes: usize, what: &str) -> MapError {
    MapError::OutOfMemory {
        name: def.name.clone(),
        bytes: bytes as u64,
        reason: format!("{what}: {}", std::io::Error::last_os_error()),
    }
}

impl RingBuf {
    pub(crate) fn new(def: &MapDef) -> Result<RingBuf, MapError> {
        let size = def.max_entries as usize;
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(PG as libc::c_long) as usize;
        if !size.is_multiple_of(page) {
            return Err(MapError::OutOfMemory {
                name: def.name.clone(),
                bytes: size as u64,
                reason: format!("ring size is not a multiple of the host page size {page}"),
            });
        }
        let meta = page;
        let total = meta + 2 * size;
        // SAFETY: plain anonymous reservation; checked below.
        let region = unsafe {
            libc::mmap(
                ptr::null_mut(),
                total,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if region == libc::MAP_FAILED {
            return Err(os_err(def, total, "mmap reserve"));
        }
        let region = region as *mut u8;
        let fail = |what: &str| {
            let e = os_err(def, total, what);
            // SAFETY: unmapping our own reservation.
            unsafe { libc::munmap(region as *mut libc::c_void, total) };
            e
        };
        // SAFETY: fixed mappings inside our reservation.
        unsafe {
            let m = libc::mmap(
                region as *mut libc::c_void,
                meta,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            );
            if m == libc::MAP_FAILED {
                return Err(fail("mmap metadata page"));
            }
            let fd = libc::memfd_create(c"cordon-ringbuf".as_ptr(), libc::MFD_CLOEXEC);
            if fd < 0 {
                return Err(fail("memfd_create"));
            }
            if libc::ftruncate(fd, size as libc::off_t) != 0 {
                libc::close(fd);
                return Err(fail("ftruncate"));
            }
            for copy in 0..2 {
                let m = libc::mmap(
                    region.add(meta + copy * size) as *mut libc::c_void,
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED | libc::MAP_FIXED,
                    fd,
                    0,
                );
                if m == libc::MAP_FAILED {
                    libc::close(fd);
                    return Err(fail("mmap data area"));
                }
            }
            libc::close(fd);
        }
        let inner = Box::new(Inner {
            region,
            region_len: total,
            // SAFETY: inside the region.
            data: unsafe { region.add(meta) },
            mask: size as u64 - 1,
            consumer_pos: CachePadded::new(AtomicU64::new(0)),
            producer_pos: CachePadded::new(AtomicU64::new(0)),
            pending_pos: AtomicU64::new(0),
            lock: SpinLock::default(),
            consumer: Mutex::new(()),
            waiters: AtomicU32::new(0),
            wake_lock: Mutex::new(0),
            wake: Condvar::new(),
        });
        // SAFETY: the metadata page is writable and 8-aligned.
        unsafe { ptr::write(region as *mut *const Inner, &*inner as *const Inner) };
        Ok(RingBuf { inner })
    }

    pub(crate) fn owns(&self, p: *const u8) -> bool {
        let i = &self.inner;
        let s = i.data as usize;
        (p as usize) >= s && (p as usize) < s + 2 * (i.mask as usize + 1)
    }

    /// `bpf_ringbuf_reserve`: pointer to `size` writable bytes, or null.
    pub(crate) fn reserve(&self, size: u64, flags: u64) -> *mut u8 {
        if flags != 0 || size > MAX_RECORD_SZ {
            return ptr::null_mut();
        }
        let i = &*self.inner;
        let len = round8(size as usize + BPF_RINGBUF_HDR_SZ as usize) as u64;
        if len > i.mask + 1 {
            return ptr::null_mut();
        }
        let cons = i.consumer_pos.load(Ordering::Acquire);
        let _g = i.lock.lock();
        let prod = i.producer_pos.load(Ordering::Relaxed);
        let mut pend = i.pending_pos.load(Ordering::Relaxed);
        while pend < prod {
            // SAFETY: header inside the data area.
            let hlen =
                unsafe { hdr_len(i.data.add((pend & i.mask) as usize)) }.load(Ordering::Acquire);
            if hlen & BPF_RINGBUF_BUSY_BIT != 0 {
                break;
            }
            let l = (hlen & !BPF_RINGBUF_DISCARD_BIT) as usize;
            pend += round8(l + BPF_RINGBUF_HDR_SZ as usize) as u64;
        }
        i.pending_pos.store(pend, Ordering::Relaxed);
        let new_prod = prod + len;
        if new_prod - cons > i.mask || new_prod - pend > i.mask {
            return ptr::null_mut();
        }
        // SAFETY: header slot inside the first copy of the data area.
        let hdr = unsafe { i.data.add((prod & i.mask) as usize) };
        let pg_off = ((hdr as usize - i.region as usize) / PG) as u32;
        // SAFETY: header is 8-aligned and ours until published.
        unsafe {
            hdr_len(hdr).store(size as u32 | BPF_RINGBUF_BUSY_BIT, Ordering::Relaxed);
            (*(hdr.add(4) as *const AtomicU32)).store(pg_off, Ordering::Relaxed);
        }
        i.producer_pos.store(new_prod, Ordering::Release);
        // SAFETY: record body follows the header.
        unsafe { hdr.add(BPF_RINGBUF_HDR_SZ as usize) }
    }

    /// `bpf_ringbuf_output`.
    ///
    /// # Safety
    /// `data` readable for `size` bytes.
    pub(crate) unsafe fn output(&self, data: *const u8, size: u64, flags: u64) -> i64 {
        if flags & !(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP) != 0 {
            return -(EINVAL as i64);
        }
        let rec = self.reserve(size, 0);
        if rec.is_null() {
            return -(EAGAIN as i64);
        }
        // SAFETY: the record has `size` bytes; caller's data is readable.
        unsafe {
            ptr::copy_nonoverlapping(data, rec, size as usize);
            commit(rec, flags, false);
        }
        0
    }

    /// `bpf_ringbuf_query`.
    pub(crate) fn query(&self, flags: u64) -> u64 {
        let i = &self.inner;
        match flags {
            BPF_RB_AVAIL_DATA => {
                let prod = i.producer_pos.load(Ordering::Acquire);
                let cons = i.consumer_pos.load(Ordering::Acquire);
                prod - cons
            }
            BPF_RB_RING_SIZE => i.mask + 1,
            BPF_RB_CONS_POS => i.consumer_pos.load(Ordering::Acquire),
            BPF_RB_PROD_POS => i.producer_pos.load(Ordering::Acquire),
            _ => 0,
        }
    }

    /// Consumes committed records in order, calling `f(record)` for each
    /// non-discarded one until it returns `false`. Returns the number of records
    /// passed to `f`.
    pub(crate) fn consume(&self, f: &mut dyn FnMut(&[u8]) -> bool) -> usize {
        let i = &*self.inner;
        let _c = i.consumer.lock();
        let mut cons = i.consumer_pos.load(Ordering::Acquire);
        let mut n = 0;
        loop {
            let prod = i.producer_pos.load(Ordering::Acquire);
            if cons >= prod {
                break;
            }
            // SAFETY: header inside the data area.
            let hdr = unsafe { i.data.add((cons & i.mask) as usize) };
            // SAFETY: as above.
            let len = unsafe { hdr_len(hdr) }.load(Ordering::Acquire);
            if len & BPF_RINGBUF_BUSY_BIT != 0 {
                break;
            }
            let l = (len & !BPF_RINGBUF_DISCARD_BIT) as usize;
            let total = round8(l + BPF_RINGBUF_HDR_SZ as usize) as u64;
            let mut go_on = true;
            if len & BPF_RINGBUF_DISCARD_BIT == 0 {
                n += 1;
                // SAFETY: the record is committed and contiguous (double mapping).
                let rec = unsafe { slice::from_raw_parts(hdr.add(BPF_RINGBUF_HDR_SZ as usize), l) };
                go_on = f(rec);
            }
            cons += total;
            i.consumer_pos.store(cons, Ordering::Release);
            if !go_on {
                break;
            }
        }
        n
    }

    fn first_ready(&self) -> bool {
        let i = &*self.inner;
        let cons = i.consumer_pos.load(Ordering::Acquire);
        let prod = i.producer_pos.load(Ordering::Acquire);
        if cons >= prod {
            return false;
        }
        // SAFETY: header inside the data area.
        let len = unsafe { hdr_len(i.data.add((cons & i.mask) as usize)) }.load(Ordering::Acquire);
        len & BPF_RINGBUF_BUSY_BIT == 0
    }

    /// Consumes available records; if none, waits up to `timeout` (forever if
    /// `None`) for a producer wake-up and consumes again.
    pub(crate) fn poll(
        &self,
        timeout: Option<Duration>,
        f: &mut dyn FnMut(&[u8]) -> bool,
    ) -> usize {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let n = self.consume(f);
            if n > 0 {
                return n;
            }
            let i = &*self.inner;
            let mut g = i.wake_lock.lock();
            i.waiters.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            let ready = self.first_ready();
            let mut timed_out = false;
            if !ready {
                match deadline {
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            timed_out = true;
                        } else {
                            timed_out = i.wake.wait_for(&mut g, d - now).timed_out();
                        }
                    }
                    None => i.wake.wait(&mut g),
                }
            }
            i.waiters.fetch_sub(1, Ordering::SeqCst);
            drop(g);
            if timed_out {
                return self.consume(f);
            }
        }
    }
}

/// # Safety
/// `hdr` must point to an 8-aligned record header inside a live ring.
#[inline]
unsafe fn hdr_len<'a>(hdr: *mut u8) -> &'a AtomicU32 {
    // SAFETY: caller contract.
    unsafe { &*(hdr as *const AtomicU32) }
}

/// # Safety
/// `sample` must come from `reserve` on a live ring and not be committed yet.
unsafe fn commit(sample: *mut u8, flags: u64, discard: bool) {
    // SAFETY: the header precedes the sample.
    let hdr = unsafe { sample.sub(BPF_RINGBUF_HDR_SZ as usize) };
    // SAFETY: caller contract.
    let pg_off = unsafe { (*(hdr.add(4) as *const AtomicU32)).load(Ordering::Relaxed) } as usize;
    let meta = ((hdr as usize) & !(PG - 1)) - pg_off * PG;
    // SAFETY: the metadata page starts with a pointer to the ring's state.
    let i: &Inner = unsafe { &**(meta as *const *const Inner) };
    // SAFETY: caller contract.
    let len = unsafe { hdr_len(hdr) };
    let mut new_len = len.load(Ordering::Relaxed) & !BPF_RINGBUF_BUSY_BIT;
    if discard {
        new_len |= BPF_RINGBUF_DISCARD_BIT;
    }
    len.swap(new_len, Ordering::AcqRel);
    let wake = if flags & BPF_RB_FORCE_WAKEUP != 0 {
        true
    } else if flags & BPF_RB_NO_WAKEUP == 0 {
        let cons = i.consumer_pos.load(Ordering::Acquire) & i.mask;
        cons == (hdr as usize - i.data as usize) as u64
    } else {
        false
    };
    if wake {
        fence(Ordering::SeqCst);
        if i.waiters.load(Ordering::SeqCst) > 0 {
            let mut g = i.wake_lock.lock();
            *g = g.wrapping_add(1);
            i.wake.notify_all();
        }
    }
}

/// `bpf_ringbuf_submit`: commits a reserved record.
///
/// # Safety
/// `sample` must be a pointer returned by [`Map::ringbuf_reserve`](super::Map::ringbuf_reserve)
/// on a ring that is still alive, not yet submitted or discarded.
pub unsafe fn ringbuf_submit(sample: *mut u8, flags: u64) {
    // SAFETY: caller contract.
    unsafe { commit(sample, flags, false) }
}

/// `bpf_ringbuf_discard`: drops a reserved record.
///
/// # Safety
/// As [`ringbuf_submit`].
pub unsafe fn ringbuf_discard(sample: *mut u8, flags: u64) {
    // SAFETY: caller contract.
    unsafe { commit(sample, flags, true) }
}
