//! `BPF_MAP_TYPE_ARRAY_OF_MAPS` and `BPF_MAP_TYPE_HASH_OF_MAPS`.
//!
//! Slots hold strong references to inner maps (`Arc::into_raw` pointers). A
//! program lookup returns the inner map's address — the same representation as the
//! map pointers programs get from `ld_imm64` — which helpers turn back into a
//! [`Map`] with [`Map::from_prog_ptr`]. Replaced or deleted inner maps are released
//! after an epoch grace period (see [`EpochGuard`](super::EpochGuard)), like Linux
//! releases them after an RCU grace period. Inserted maps are checked against the
//! outer map's template as `bpf_map_meta_equal` does.

use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use super::errno::*;
use super::hash::HashTable;
use super::map::{Map, MapHandle};
use super::util::try_null_ptrs;
use super::validate::check_inner_compatible;
use super::{BPF_ANY, MapDef, MapError, MapType};

fn retire(p: *const Map) {
    if p.is_null() {
        return;
    }
    // SAFETY: `p` came from Arc::into_raw and its slot no longer refers to it.
    let arc = unsafe { Arc::from_raw(p) };
    let g = crossbeam_epoch::pin();
    g.defer(move || drop(arc));
    g.flush();
}

fn check(tmpl: &MapDef, inner: &Map) -> Result<(), MapError> {
    if inner.map_type().is_map_of_maps() {
        return Err(MapError::IncompatibleInnerMap {
            reason: "an inner map cannot itself hold maps".to_string(),
        });
    }
    check_inner_compatible(tmpl, inner.def())
}

pub(crate) struct ArrayOfMaps {
    template: MapDef,
    slots: Box<[AtomicPtr<Map>]>,
}

impl ArrayOfMaps {
    pub(crate) fn new(def: &MapDef) -> Result<ArrayOfMaps, MapError> {
        Ok(ArrayOfMaps {
            template: def.inner.as_deref().cloned().unwrap_or_default(),
            slots: try_null_ptrs(def.max_entries as usize, &def.name)?,
        })
    }

    pub(crate) fn template(&self) -> &MapDef {
        &self.template
    }

    /// Program lookup: inner map address or null.
    ///
    /// # Safety
    /// `key` readable for 4 bytes.
    #[inline]
    pub(crate) unsafe fn lookup(&self, key: *const u8) -> *mut u8 {
        // SAFETY: caller contract.
        let i = unsafe { ptr::read_unaligned(key as *const u32) };
        match self.slots.get(i as usize) {
            Some(s) => s.load(Ordering::Acquire) as *mut u8,
            None => ptr::null_mut(),
        }
    }

    pub(crate) fn set(&self, index: u32, inner: &MapHandle, flags: u64) -> Result<(), MapError> {
        if flags != BPF_ANY {
            return Err(MapError::InvalidFlags {
                map_type: MapType::ArrayOfMaps,
                flags,
            });
        }
        let Some(slot) = self.slots.get(index as usize) else {
            return Err(MapError::Full);
        };
        check(&self.template, inner)?;
        let new = Arc::into_raw(Arc::clone(inner)) as *mut Map;
        retire(slot.swap(new, Ordering::AcqRel));
        Ok(())
    }

    pub(crate) fn delete(&self, index: u32) -> i64 {
        let Some(slot) = self.slots.get(index as usize) else {
            return -(E2BIG as i64);
        };
        let old = slot.swap(ptr::null_mut(), Ordering::AcqRel);
        if old.is_null() {
            return -(ENOENT as i64);
        }
        retire(old);
        0
    }

    pub(crate) fn get(&self, index: u32) -> Option<MapHandle> {
        let _g = crossbeam_epoch::pin();
        let p = self.slots.get(index as usize)?.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: the slot holds a strong reference, kept alive past our guard.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    }

    pub(crate) fn max_entries(&self) -> u32 {
        self.slots.len() as u32
    }
}

impl Drop for ArrayOfMaps {
    fn drop(&mut self) {
        for s in self.slots.iter() {
            if !s.load(Ordering::Relaxed).is_null() {
                retire(s.swap(ptr::null_mut(), Ordering::AcqRel));
            }
        }
    }
}

pub(crate) struct HashOfMaps {
    template: MapDef,
    table: HashTable,
}

impl HashOfMaps {
    pub(crate) fn new(def: &MapDef, ncpus: usize) -> Result<HashOfMaps, MapError> {
        Ok(HashOfMaps {
            template: def.inner.as_deref().cloned().unwrap_or_default(),
            // Values are 8-byte map pointers internally (4-byte "fds" for the user).
            table: HashTable::new(def, MapType::HashOfMaps, 8, ncpus)?,
        })
    }

    pub(crate) fn template(&self) -> &MapDef {
        &self.template
    }

    pub(crate) fn table(&self) -> &HashTable {
        &self.table
    }

    /// Program lookup: inner map address or null.
    ///
    /// # Safety
    /// `key` readable for `key_size` bytes.
    #[inline]
    pub(crate) unsafe fn lookup(&self, key: *const u8) -> *mut u8 {
        // SAFETY: caller contract.
        let v = unsafe { self.table.lookup(key, 0, false) };
        if v.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: hash values are 8-aligned and hold a map pointer.
        unsafe { (*(v as *const AtomicU64)).load(Ordering::Acquire) as *mut u8 }
    }

    /// # Safety
    /// `key` readable for `key_size` bytes.
    pub(crate) unsafe fn set(
        &self,
        key: *const u8,
        inner: &MapHandle,
        flags: u64,
    ) -> Result<(), MapError> {
        check(&self.template, inner)?;
        let raw = Arc::into_raw(Arc::clone(inner));
        let bytes = (raw as u64).to_ne_bytes();
        let mut old: *const Map = ptr::null();
        let mut cb = |v: *mut u8| {
            // SAFETY: value area of 8 bytes.
            old = unsafe { (*(v as *const AtomicU64)).load(Ordering::Relaxed) } as *const Map;
        };
        // SAFETY: caller contract; value is our 8-byte buffer.
        let r = unsafe {
            self.table
                .update(key, bytes.as_ptr(), flags, 0, false, Some(&mut cb))
        };
        if r != 0 {
            // SAFETY: undo our into_raw.
            drop(unsafe { Arc::from_raw(raw) });
            return MapError::from_ret(r);
        }
        retire(old);
        Ok(())
    }

    /// # Safety
    /// `key` readable for `key_size` bytes.
    pub(crate) unsafe fn delete(&self, key: *const u8) -> i64 {
        let mut old: *const Map = ptr::null();
        let mut cb = |v: *mut u8| {
            // SAFETY: value area of 8 bytes.
            old = unsafe { (*(v as *const AtomicU64)).load(Ordering::Relaxed) } as *const Map;
        };
        // SAFETY: caller contract.
        let r = unsafe { self.table.delete(key, Some(&mut cb)) };
        retire(old);
        r
    }

    /// # Safety
    /// `key` readable for `key_size` bytes.
    pub(crate) unsafe fn get(&self, key: *const u8) -> Option<MapHandle> {
        let _g = crossbeam_epoch::pin();
        // SAFETY: caller contract.
        let p = unsafe { self.lookup(key) } as *const Map;
        if p.is_null() {
            return None;
        }
        // SAFETY: retired maps are freed only after our guard is released.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    }
}

impl Drop for HashOfMaps {
    fn drop(&mut self) {
        let mut ptrs = Vec::new();
        self.table.for_each(0, &mut |_, v| {
            // SAFETY: value area of 8 bytes.
            ptrs.push(unsafe { (*(v as *const AtomicU64)).load(Ordering::Relaxed) } as *const Map);
            true
        });
        for p in ptrs {
            retire(p);
        }
    }
}
