//! Shadow stack (mechanism 1): where the r10 frames of eBPF programs live.
//!
//! Programs never get their frames from the native (Rust) stack of the thread that
//! runs them. Instead every invocation and every bpf-to-bpf call takes its frame
//! from a [`FrameArena`]: a bump allocator over one contiguous region that grows
//! downwards. Allocation is `sp -= size` after a bounds check, release is
//! `sp += size`; because invocations on one thread are strictly nested (program A
//! calls a helper that runs program B, B finishes before A continues) the LIFO
//! discipline always holds. Running out of space is a clean
//! [`ExecError::StackExhausted`](crate::ExecError::StackExhausted) naming the
//! program; the process continues.
//!
//! A [`ShadowStack`] is an `mmap`'d region with a `PROT_NONE` guard page at both
//! ends, so even a bug in generated code that walked off a frame would fault
//! instead of silently corrupting neighbouring memory. The bounds check on
//! allocation means correct engines never touch the guard pages.
//!
//! Three placements are available ([`StackStrategy`]), so they can be compared:
//!
//! * [`StackStrategy::ThreadShadow`] (default): one shadow stack per thread, shared by
//!   every program and every nesting level on that thread (the seed's approach 2).
//! * [`StackStrategy::PerProgram`]: each program owns one shadow stack per thread
//!   (the seed's approach 3, Linux's "private stack"). Still bump-allocated, so a
//!   program that nests into itself works while space lasts.
//! * [`StackStrategy::Native`]: the baseline; frames live in a local array on the
//!   native stack of the engine's entry function (what Linux's interpreter does).
//!   Its capacity is fixed at [`NATIVE_STACK_BYTES`].
//!
//! The arena layout is `#[repr(C)]` so JIT-compiled code can allocate and release
//! frames inline: load `sp`, subtract the frame size, compare with `limit`, store.

use std::cell::UnsafeCell;
use std::ptr;

/// Default size of a per-thread shadow stack: 256 KiB (512 frames of 512 bytes).
pub const DEFAULT_SHADOW_STACK_SIZE: usize = 256 * 1024;

/// Capacity of the native-stack baseline: 8 frames of 512 bytes.
pub const NATIVE_STACK_BYTES: usize = 8 * 512;

/// Frames are rounded up to this alignment (as in the seed's `round_up(depth, 16)`).
pub const FRAME_ALIGN: u64 = 16;

/// Where the r10 frames of an invocation come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StackStrategy {
    /// One shadow stack per thread, shared LIFO by every program on that thread.
    #[default]
    ThreadShadow,
    /// One shadow stack per program per thread.
    PerProgram,
    /// Frames in a local array on the native stack (baseline for comparison).
    Native,
}

/// Errors creating a shadow stack.
#[derive(Debug, thiserror::Error)]
pub enum ShadowStackError {
    #[error(
        "shadow stack size {0} bytes is invalid: it must be at least one page and at most 1 GiB"
    )]
    BadSize(usize),
    #[error("mmap of {size} bytes for a shadow stack failed: {err}")]
    Mmap { size: usize, err: std::io::Error },
    #[error("mprotect of the shadow stack's usable area failed: {0}")]
    Mprotect(std::io::Error),
    #[error("cannot resize the shadow stack of this thread while a program is running on it")]
    Busy,
}

/// A LIFO bump allocator over a contiguous region, growing downwards.
///
/// Layout (`#[repr(C)]`, all fields 8 bytes) for generated code:
///
/// | offset | field   | meaning |
/// |-------:|---------|---------|
/// | 0      | `sp`    | lowest byte in use; the next frame ends here |
/// | 8      | `limit` | lowest usable byte (just above the low guard page) |
/// | 16     | `top`   | one past the highest usable byte |
/// | 24     | `active`| number of invocations currently using the arena |
///
/// Invariant: `limit <= sp <= top`.
#[repr(C)]
#[derive(Debug)]
pub struct FrameArena {
    pub sp: u64,
    pub limit: u64,
    pub top: u64,
    pub active: u64,
}

impl FrameArena {
    pub const OFFSET_SP: usize = std::mem::offset_of!(FrameArena, sp);
    pub const OFFSET_LIMIT: usize = std::mem::offset_of!(FrameArena, limit);
    pub const OFFSET_TOP: usize = std::mem::offset_of!(FrameArena, top);

    /// An arena over `[base, base + len)`.
    pub(crate) fn over(base: u64, len: u64) -> FrameArena {
        FrameArena {
            sp: base + len,
            limit: base,
            top: base + len,
            active: 0,
        }
    }

    /// Take a frame of `size` bytes (already rounded). Returns the frame's top
    /// (the value of r10), or `None` when the arena has less than `size` left.
    #[inline(always)]
    pub fn alloc(&mut self, size: u64) -> Option<u64> {
        if self.sp - self.limit < size {
            return None;
        }
        let top = self.sp;
        self.sp -= size;
        Some(top)
    }

    /// Release the most recent frame of `size` bytes.
    #[inline(always)]
    pub fn free(&mut self, size: u64) {
        debug_assert!(self.sp + size <= self.top);
        self.sp += size;
    }

    /// Bytes still available.
    pub fn available(&self) -> u64 {
        self.sp - self.limit
    }

    /// Total usable bytes.
    pub fn capacity(&self) -> u64 {
        self.top - self.limit
    }
}

/// Round a frame size up to [`FRAME_ALIGN`].
pub const fn round_frame(size: u64) -> u64 {
    (size + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

fn page_size() -> usize {
    static PAGE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let p = PAGE.load(std::sync::atomic::Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let p = if p <= 0 { 4096 } else { p as usize };
    PAGE.store(p, std::sync::atomic::Ordering::Relaxed);
    p
}

/// An `mmap`'d shadow stack with guard pages at both ends.
#[derive(Debug)]
pub struct ShadowStack {
    map: *mut libc::c_void,
    map_len: usize,
    /// The size asked for at creation (before rounding to pages).
    requested: usize,
    /// Boxed so that the arena's address is stable (engines keep pointers to it).
    arena: Box<UnsafeCell<FrameArena>>,
}

// SAFETY: the mapping is owned exclusively by this value; the arena is only used
// by the thread that currently owns the stack (thread-local or `ThreadLocal`).
unsafe impl Send for ShadowStack {}

impl ShadowStack {
    /// Map a new shadow stack with `size` usable bytes (rounded up to whole pages),
    /// plus one `PROT_NONE` guard page below and above.
    pub fn new(size: usize) -> Result<ShadowStack, ShadowStackError> {
        let page = page_size();
        if size == 0 || size > (1 << 30) {
            return Err(ShadowStackError::BadSize(size));
        }
        let usable = size.div_ceil(page) * page;
        let map_len = usable + 2 * page;
        // SAFETY: anonymous private mapping with no address hint; checked below.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(ShadowStackError::Mmap {
                size: map_len,
                err: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: `map + page .. map + page + usable` lies inside the mapping.
        let usable_ptr = unsafe { (map as *mut u8).add(page) };
        let rc = unsafe {
            libc::mprotect(
                usable_ptr as *mut libc::c_void,
                usable,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            // SAFETY: unmapping exactly what we mapped.
            unsafe { libc::munmap(map, map_len) };
            return Err(ShadowStackError::Mprotect(err));
        }
        Ok(ShadowStack {
            map,
            map_len,
            requested: size,
            arena: Box::new(UnsafeCell::new(FrameArena::over(
                usable_ptr as u64,
                usable as u64,
            ))),
        })
    }

    /// The arena handing out frames from this stack.
    #[inline]
    pub fn arena_ptr(&self) -> *mut FrameArena {
        self.arena.get()
    }

    /// Usable bytes (excluding guard pages).
    pub fn size(&self) -> usize {
        self.map_len - 2 * page_size()
    }

    /// Address range of the usable area.
    pub fn usable_range(&self) -> std::ops::Range<u64> {
        // SAFETY: limit/top never change after creation.
        let a = unsafe { &*self.arena.get() };
        a.limit..a.top
    }

    /// Address ranges of the low and high guard pages.
    pub fn guard_ranges(&self) -> [std::ops::Range<u64>; 2] {
        let page = page_size() as u64;
        let base = self.map as u64;
        let end = base + self.map_len as u64;
        [base..base + page, end - page..end]
    }

    /// Whether any invocation is currently using this stack.
    #[inline]
    pub fn is_busy(&self) -> bool {
        // SAFETY: read of a plain field by the owning thread.
        unsafe { (*self.arena.get()).active != 0 }
    }
}

impl Drop for ShadowStack {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped; nothing uses it any more
        // (the owner is being dropped, so no invocation is running on it).
        unsafe {
            libc::munmap(self.map, self.map_len);
        }
    }
}

thread_local! {
    static THREAD_STACK: UnsafeCell<Option<ShadowStack>> = const { UnsafeCell::new(None) };
}

/// The arena of the current thread's shared shadow stack, creating the stack with
/// `size` usable bytes on first use. When the existing stack is idle and its size
/// differs from `size` (rounded to pages), it is replaced; while an invocation is
/// running on it (nesting) the existing stack is used whatever its size.
///
/// The returned pointer stays valid until the thread exits or the stack is
/// replaced, which cannot happen while the arena's `active` count is non-zero.
#[inline(always)]
pub(crate) fn thread_arena(size: usize) -> Result<*mut FrameArena, ShadowStackError> {
    let fast = THREAD_STACK.with(|cell| {
        // SAFETY: the cell is only accessed by this thread, and never
        // re-entrantly (no callbacks run while the reference is alive).
        match unsafe { &*cell.get() } {
            Some(s) if s.requested == size || s.is_busy() => Some(s.arena_ptr()),
            _ => None,
        }
    });
    match fast {
        Some(arena) => Ok(arena),
        None => new_thread_stack(size),
    }
}

/// Creates (or replaces the idle) shadow stack of this thread.
#[cold]
#[inline(never)]
fn new_thread_stack(size: usize) -> Result<*mut FrameArena, ShadowStackError> {
    THREAD_STACK.with(|cell| {
        // SAFETY: as in `thread_arena`.
        let slot = unsafe { &mut *cell.get() };
        match slot {
            Some(s) if s.requested == size || s.is_busy() => {}
            _ => {
                // Drop the old (idle) one first to bound memory use.
                *slot = None;
                *slot = Some(ShadowStack::new(size)?);
            }
        }
        Ok(slot.as_ref().expect("just set").arena_ptr())
    })
}

/// Usable address range of the current thread's shared shadow stack, if it exists.
pub fn current_thread_stack_range() -> Option<std::ops::Range<u64>> {
    THREAD_STACK.with(|cell| {
        // SAFETY: see `thread_arena`.
        let slot = unsafe { &*cell.get() };
        slot.as_ref().map(|s| s.usable_range())
    })
}

/// Guard page ranges of the current thread's shared shadow stack, if it exists.
pub fn current_thread_guard_ranges() -> Option<[std::ops::Range<u64>; 2]> {
    THREAD_STACK.with(|cell| {
        // SAFETY: see `thread_arena`.
        let slot = unsafe { &*cell.get() };
        slot.as_ref().map(|s| s.guard_ranges())
    })
}

/// Per-program, per-thread shadow stacks (approach 3 of the seed).
#[derive(Debug, Default)]
pub(crate) struct PerProgramStacks {
    stacks: thread_local::ThreadLocal<ProgramStack>,
}

#[derive(Debug)]
struct ProgramStack(UnsafeCell<ShadowStack>);
// SAFETY: each ProgramStack is only ever touched by the thread that created it
// (ThreadLocal hands out the current thread's entry only); Send is needed so the
// owning Executable can be dropped on another thread.
unsafe impl Send for ProgramStack {}

impl PerProgramStacks {
    pub(crate) fn arena(&self, size: usize) -> Result<*mut FrameArena, ShadowStackError> {
        let s = self
            .stacks
            .get_or_try(|| ShadowStack::new(size).map(|s| ProgramStack(UnsafeCell::new(s))))?;
        // SAFETY: only this thread uses its entry.
        Ok(unsafe { (*s.0.get()).arena_ptr() })
    }

    /// Usable range of the calling thread's stack for this program, if created.
    pub(crate) fn current_range(&self) -> Option<std::ops::Range<u64>> {
        // SAFETY: only this thread uses its entry.
        self.stacks
            .get()
            .map(|s| unsafe { (*s.0.get()).usable_range() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_is_lifo_and_bounded() {
        let s = ShadowStack::new(4096).unwrap();
        let a = unsafe { &mut *s.arena_ptr() };
        let cap = a.capacity();
        assert!(cap >= 4096);
        let top = a.top;
        assert_eq!(a.alloc(512), Some(top));
        assert_eq!(a.alloc(512), Some(top - 512));
        assert_eq!(a.available(), cap - 1024);
        assert_eq!(a.alloc(cap), None);
        a.free(512);
        a.free(512);
        assert_eq!(a.sp, top);
    }

    #[test]
    fn guard_pages_surround_usable_area() {
        let s = ShadowStack::new(8192).unwrap();
        let r = s.usable_range();
        let [lo, hi] = s.guard_ranges();
        assert_eq!(lo.end, r.start);
        assert_eq!(hi.start, r.end);
        // The usable area is writable.
        unsafe {
            ptr::write_bytes(r.start as *mut u8, 0xab, (r.end - r.start) as usize);
        }
    }

    /// Permissions of the mapping containing `addr`, from /proc/self/maps.
    #[cfg(target_os = "linux")]
    fn perms_at(addr: u64) -> Option<String> {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        maps.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            let (range, perms) = (it.next()?, it.next()?);
            let (a, b) = range.split_once('-')?;
            let (a, b) = (
                u64::from_str_radix(a, 16).ok()?,
                u64::from_str_radix(b, 16).ok()?,
            );
            (a <= addr && addr < b).then(|| perms.to_string())
        })
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn guard_pages_are_inaccessible() {
        let s = ShadowStack::new(16384).unwrap();
        let [lo, hi] = s.guard_ranges();
        let r = s.usable_range();
        assert_eq!(perms_at(lo.start).as_deref(), Some("---p"));
        assert_eq!(perms_at(hi.end - 1).as_deref(), Some("---p"));
        assert_eq!(perms_at(r.start).as_deref(), Some("rw-p"));
        assert_eq!(perms_at(r.end - 1).as_deref(), Some("rw-p"));
        assert_eq!(s.size(), 16384);
    }

    #[test]
    fn bad_sizes_are_rejected() {
        assert!(matches!(
            ShadowStack::new(0),
            Err(ShadowStackError::BadSize(0))
        ));
        assert!(ShadowStack::new(2 << 30).is_err());
    }

    #[test]
    fn round_frame_aligns_to_16() {
        assert_eq!(round_frame(0), 0);
        assert_eq!(round_frame(1), 16);
        assert_eq!(round_frame(512), 512);
        assert_eq!(round_frame(513), 528);
    }
}
