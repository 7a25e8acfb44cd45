//! Packet frames: 4 KiB pages, like the page Linux's test_run builds a packet
//! in, placed below 4 GiB when the system allows it (so the 32-bit `data`
//! fields of `xdp_md` / `__sk_buff` hold the whole pointer, which unverified
//! programs in checked mode rely on).
//!
//! Frames come from a global pool; each thread caches one frame. Frames are
//! never returned to the system.

use std::cell::Cell;

use parking_lot::Mutex;

use crate::ctx::FRAME_SIZE;

const FRAMES_PER_CHUNK: usize = 16;

static POOL: Mutex<Vec<usize>> = Mutex::new(Vec::new());

struct Cache(Cell<usize>);

impl Drop for Cache {
    fn drop(&mut self) {
        let p = self.0.get();
        if p != 0 {
            POOL.lock().push(p);
        }
    }
}

/// Frames beyond the first a thread keeps for itself (XDP fragment pages), so
/// multi-buffer runs do not take the pool lock either.
struct Spare(std::cell::RefCell<Vec<usize>>);

/// Frames a thread keeps in [`Spare`]: one per fragment page Linux allows.
const SPARE_FRAMES: usize = crate::ctx::MAX_SKB_FRAGS;

impl Drop for Spare {
    fn drop(&mut self) {
        let v = std::mem::take(&mut *self.0.borrow_mut());
        if !v.is_empty() {
            POOL.lock().extend(v);
        }
    }
}

thread_local! {
    static CACHE: Cache = const { Cache(Cell::new(0)) };
    static SPARE: Spare = const { Spare(std::cell::RefCell::new(Vec::new())) };
}

/// One packet frame of [`FRAME_SIZE`] bytes, returned to the pool on drop.
pub struct Frame {
    ptr: *mut u8,
}

// SAFETY: a frame is exclusively owned memory.
unsafe impl Send for Frame {}

impl Frame {
    /// Take a frame (contents unspecified).
    pub fn take() -> Frame {
        let cached = CACHE.try_with(|c| c.0.replace(0)).unwrap_or(0);
        if cached != 0 {
            return Frame {
                ptr: cached as *mut u8,
            };
        }
        let spare = SPARE
            .try_with(|s| s.0.try_borrow_mut().ok().and_then(|mut v| v.pop()))
            .ok()
            .flatten();
        if let Some(p) = spare {
            return Frame { ptr: p as *mut u8 };
        }
        let mut pool = POOL.lock();
        if pool.is_empty() {
            refill(&mut pool);
        }
        let p = pool.pop().expect("refilled pool");
        Frame { ptr: p as *mut u8 }
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn addr(&self) -> u64 {
        self.ptr as u64
    }

    /// Whether the whole frame lies below 4 GiB.
    pub fn is_low(&self) -> bool {
        self.addr() + FRAME_SIZE as u64 <= u32::MAX as u64
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the frame owns FRAME_SIZE bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, FRAME_SIZE) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the frame owns FRAME_SIZE bytes exclusively.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, FRAME_SIZE) }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        let p = self.ptr as usize;
        let kept = CACHE
            .try_with(|c| {
                if c.0.get() == 0 {
                    c.0.set(p);
                    true
                } else {
                    false
                }
            })
            .unwrap_or(false);
        if kept {
            return;
        }
        let spared = SPARE
            .try_with(|s| match s.0.try_borrow_mut() {
                Ok(mut v) if v.len() < SPARE_FRAMES => {
                    v.push(p);
                    true
                }
                _ => false,
            })
            .unwrap_or(false);
        if !spared {
            POOL.lock().push(p);
        }
    }
}

fn refill(pool: &mut Vec<usize>) {
    let len = FRAME_SIZE * FRAMES_PER_CHUNK;
    let base = map_low(len).unwrap_or_else(|| {
        // Fall back to ordinary memory (leaked into the pool on purpose).
        let layout = std::alloc::Layout::from_size_align(len, FRAME_SIZE).expect("layout");
        // SAFETY: non-zero size.
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        p as usize
    });
    for i in 0..FRAMES_PER_CHUNK {
        pool.push(base + i * FRAME_SIZE);
    }
}

#[cfg(target_os = "linux")]
fn map_low(len: usize) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    let (hint, extra) = (std::ptr::null_mut(), libc::MAP_32BIT);
    #[cfg(not(target_arch = "x86_64"))]
    let (hint, extra) = (0x4000_0000usize as *mut libc::c_void, 0);
    // SAFETY: anonymous private mapping, no fixed address.
    let p = unsafe {
        libc::mmap(
            hint,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    let addr = p as usize;
    if (addr + len) as u64 > u32::MAX as u64 {
        // Not low: still usable memory.
        return Some(addr);
    }
    Some(addr)
}

#[cfg(not(target_os = "linux"))]
fn map_low(_len: usize) -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_distinct_and_low_on_linux_x86() {
        let a = Frame::take();
        let b = Frame::take();
        assert_ne!(a.addr(), b.addr());
        assert_eq!(a.addr() % FRAME_SIZE as u64, 0);
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        assert!(a.is_low() && b.is_low());
    }

    #[test]
    fn many_frames_at_once_stay_distinct_and_are_reused() {
        // A fragment-heavy run holds 18 frames; all distinct, page aligned.
        let frames: Vec<Frame> = (0..SPARE_FRAMES + 1).map(|_| Frame::take()).collect();
        let mut addrs: Vec<u64> = frames.iter().map(Frame::addr).collect();
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), SPARE_FRAMES + 1);
        assert!(addrs.iter().all(|a| a % FRAME_SIZE as u64 == 0));
        drop(frames);
        // The thread's cache and spares hand the same frames back.
        let again: Vec<Frame> = (0..SPARE_FRAMES + 1).map(|_| Frame::take()).collect();
        let mut back: Vec<u64> = again.iter().map(Frame::addr).collect();
        back.sort_unstable();
        assert_eq!(back, addrs);
    }
}
