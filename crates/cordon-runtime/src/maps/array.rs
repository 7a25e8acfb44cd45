//! `BPF_MAP_TYPE_ARRAY` and `BPF_MAP_TYPE_PERCPU_ARRAY`.
//!
//! Values live in one slab allocated at creation; element `i` of CPU `c` is at
//! `base + c * cpu_stride + i * elem_size` with `elem_size = round_up(value_size, 8)`
//! (`cpu_stride` is 0 for plain arrays). Memory never moves, so the JIT may inline
//! lookups using [`ArrayMap::layout`].

use std::ptr;

use super::errno::*;
use super::flags::BPF_F_MMAPABLE;
use super::util::{Slab, checked_size, copy_value, copy_value_locked, round8};
use super::{BPF_EXIST, BPF_F_LOCK, BPF_NOEXIST, MapDef, MapError};

/// Memory layout of an array map's values (for inlined lookups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayLayout {
    /// Address of element 0 of CPU 0.
    pub base: *mut u8,
    /// Distance between consecutive elements (`round_up(value_size, 8)`).
    pub elem_size: usize,
    /// Number of elements.
    pub max_entries: u32,
    /// Distance between the value areas of consecutive CPUs (0 for plain arrays).
    pub cpu_stride: usize,
    /// Number of CPU slots (1 for plain arrays).
    pub ncpus: usize,
}

pub(crate) struct ArrayMap {
    slab: Slab,
    percpu: bool,
    ncpus: usize,
    max_entries: u32,
    value_size: usize,
    elem_size: usize,
    cpu_stride: usize,
    lock_off: Option<u32>,
}

impl ArrayMap {
    pub(crate) fn new(def: &MapDef, percpu: bool, ncpus: usize) -> Result<ArrayMap, MapError> {
        let elem_size = round8(def.value_size as usize);
        let copies = if percpu { ncpus } else { 1 };
        let bytes = checked_size(
            &[(def.max_entries as u64 * copies as u64, elem_size as u64)],
            &def.name,
        )?;
        let align = if def.flags & BPF_F_MMAPABLE != 0 {
            4096
        } else {
            64
        };
        let slab = Slab::new(bytes, align, &def.name)?;
        Ok(ArrayMap {
            slab,
            percpu,
            ncpus: copies,
            max_entries: def.max_entries,
            value_size: def.value_size as usize,
            elem_size,
            cpu_stride: if percpu {
                def.max_entries as usize * elem_size
            } else {
                0
            },
            lock_off: def.spin_lock_off,
        })
    }

    pub(crate) fn layout(&self) -> ArrayLayout {
        ArrayLayout {
            base: self.slab.ptr(),
            elem_size: self.elem_size,
            max_entries: self.max_entries,
            cpu_stride: self.cpu_stride,
            ncpus: self.ncpus,
        }
    }

    pub(crate) fn owns(&self, p: *const u8) -> bool {
        self.slab.contains(p)
    }

    #[inline(always)]
    fn elem(&self, index: u32, cpu: usize) -> *mut u8 {
        // SAFETY: callers check index < max_entries and cpu < ncpus.
        unsafe {
            self.slab
                .ptr()
                .add(cpu * self.cpu_stride + index as usize * self.elem_size)
        }
    }

    #[inline(always)]
    fn cpu(&self, cpu: u32) -> usize {
        let c = cpu as usize;
        if c < self.ncpus { c } else { c % self.ncpus }
    }

    /// Program lookup: pointer to the value of the current CPU, or null.
    ///
    /// # Safety
    /// `key` must be readable for 4 bytes.
    #[inline]
    pub(crate) unsafe fn lookup(&self, key: *const u8, cpu: u32) -> *mut u8 {
        // SAFETY: caller contract.
        let index = unsafe { ptr::read_unaligned(key as *const u32) };
        if index >= self.max_entries {
            return ptr::null_mut();
        }
        self.elem(index, if self.percpu { self.cpu(cpu) } else { 0 })
    }

    /// `bpf_map_lookup_percpu_elem`: null if the CPU does not exist.
    ///
    /// # Safety
    /// As [`ArrayMap::lookup`].
    pub(crate) unsafe fn lookup_percpu(&self, key: *const u8, cpu: u32) -> *mut u8 {
        if cpu as usize >= self.ncpus {
            return ptr::null_mut();
        }
        // SAFETY: caller contract.
        let index = unsafe { ptr::read_unaligned(key as *const u32) };
        if index >= self.max_entries {
            return ptr::null_mut();
        }
        self.elem(index, cpu as usize)
    }

    fn check_update(&self, index: u32, flags: u64) -> i64 {
        let allowed_lock = if self.percpu { 0 } else { BPF_F_LOCK };
        if flags & !allowed_lock > BPF_EXIST {
            return -(EINVAL as i64);
        }
        if index >= self.max_entries {
            return -(E2BIG as i64);
        }
        if flags & BPF_NOEXIST != 0 {
            return -(EEXIST as i64);
        }
        if flags & BPF_F_LOCK != 0 && self.lock_off.is_none() {
            return -(EINVAL as i64);
        }
        0
    }

    /// Program update of the current CPU's value.
    ///
    /// # Safety
    /// `key` readable for 4 bytes, `value` for `value_size` bytes.
    pub(crate) unsafe fn update(
        &self,
        key: *const u8,
        value: *const u8,
        flags: u64,
        cpu: u32,
    ) -> i64 {
        // SAFETY: caller contract.
        let index = unsafe { ptr::read_unaligned(key as *const u32) };
        let r = self.check_update(index, flags);
        if r != 0 {
            return r;
        }
        let dst = self.elem(index, if self.percpu { self.cpu(cpu) } else { 0 });
        // SAFETY: dst is a value slot of value_size bytes; value readable.
        unsafe {
            match (flags & BPF_F_LOCK != 0, self.lock_off) {
                (true, Some(off)) => copy_value_locked(dst, value, self.value_size, off, true),
                _ => copy_value(dst, value, self.value_size, self.lock_off),
            }
        }
        0
    }

    /// Host update: for per-CPU arrays `value` holds `ncpus` slots of `elem_size`.
    ///
    /// # Safety
    /// `key` readable for 4 bytes, `value` for [`ArrayMap::host_value_size`] bytes.
    pub(crate) unsafe fn update_host(&self, key: *const u8, value: *const u8, flags: u64) -> i64 {
        if !self.percpu {
            // SAFETY: forwarded.
            return unsafe { self.update(key, value, flags, 0) };
        }
        // SAFETY: caller contract.
        let index = unsafe { ptr::read_unaligned(key as *const u32) };
        let r = self.check_update(index, flags);
        if r != 0 {
            return r;
        }
        for cpu in 0..self.ncpus {
            // SAFETY: slot of elem_size bytes; source slice has ncpus * elem_size.
            unsafe {
                ptr::copy_nonoverlapping(
                    value.add(cpu * self.elem_size),
                    self.elem(index, cpu),
                    self.elem_size,
                )
            };
        }
        0
    }

    /// Host lookup into `out` ([`ArrayMap::host_value_size`] bytes).
    ///
    /// # Safety
    /// `key` readable for 4 bytes, `out` writable for the host value size.
    pub(crate) unsafe fn lookup_host(&self, key: *const u8, out: *mut u8, flags: u64) -> i64 {
        // SAFETY: caller contract.
        let index = unsafe { ptr::read_unaligned(key as *const u32) };
        if index >= self.max_entries {
            return -(ENOENT as i64);
        }
        if self.percpu {
            for cpu in 0..self.ncpus {
                // SAFETY: as in update_host.
                unsafe {
                    ptr::copy_nonoverlapping(
                        self.elem(index, cpu),
                        out.add(cpu * self.elem_size),
                        self.elem_size,
                    )
                };
            }
            return 0;
        }
        let src = self.elem(index, 0);
        // SAFETY: value slot and out buffer of value_size bytes.
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
        0
    }

    pub(crate) fn host_value_size(&self) -> usize {
        if self.percpu {
            self.ncpus * self.elem_size
        } else {
            self.value_size
        }
    }

    /// `array_map_get_next_key`.
    ///
    /// # Safety
    /// `key` null or readable for 4 bytes; `next` writable for 4 bytes.
    pub(crate) unsafe fn get_next_key(&self, key: *const u8, next: *mut u8) -> i64 {
        let index = if key.is_null() {
            u32::MAX
        } else {
            // SAFETY: caller contract.
            unsafe { ptr::read_unaligned(key as *const u32) }
        };
        let n = if index >= self.max_entries {
            0
        } else if index == self.max_entries - 1 {
            return -(ENOENT as i64);
        } else {
            index + 1
        };
        // SAFETY: caller contract.
        unsafe { ptr::write_unaligned(next as *mut u32, n) };
        0
    }

    /// Copies initial contents into element 0 (every CPU slot for per-CPU arrays).
    pub(crate) fn init_data(&self, data: &[u8]) -> Result<(), MapError> {
        if data.len() > self.value_size {
            return Err(MapError::InitialData {
                got: data.len(),
                capacity: self.value_size,
            });
        }
        for cpu in 0..self.ncpus {
            // SAFETY: element 0 exists (max_entries > 0) and has value_size bytes.
            unsafe { ptr::copy_nonoverlapping(data.as_ptr(), self.elem(0, cpu), data.len()) };
        }
        Ok(())
    }

    /// `bpf_for_each_map_elem` cursor: element `pos` (index order, as Linux's
    /// `bpf_for_each_array_elem`) as `(next pos, index, value of CPU `cpu`)`,
    /// `None` past the last element.
    pub(crate) fn cursor_next(&self, pos: u64, cpu: u32) -> Option<(u64, u32, *mut u8)> {
        let i = u32::try_from(pos).ok().filter(|&i| i < self.max_entries)?;
        let cpu = if self.percpu { self.cpu(cpu) } else { 0 };
        Some((pos + 1, i, self.elem(i, cpu)))
    }

    /// The contiguous value area of CPU `cpu` (every element, with the
    /// padding up to 8 bytes after each): what a walk hands out.
    pub(crate) fn cpu_area(&self, cpu: u32) -> (*mut u8, usize) {
        let cpu = if self.percpu { self.cpu(cpu) } else { 0 };
        (
            self.elem(0, cpu),
            self.max_entries as usize * self.elem_size,
        )
    }

    /// Calls `f(key, value)` for every element (current CPU's value for per-CPU
    /// arrays) until it returns `false`; returns the number of calls.
    pub(crate) fn for_each(&self, cpu: u32, f: &mut dyn FnMut(*const u8, *mut u8) -> bool) -> u32 {
        let cpu = if self.percpu { self.cpu(cpu) } else { 0 };
        let mut n = 0;
        for i in 0..self.max_entries {
            n += 1;
            let key = i.to_ne_bytes();
            if !f(key.as_ptr(), self.elem(i, cpu)) {
                break;
            }
        }
        n
    }
}
