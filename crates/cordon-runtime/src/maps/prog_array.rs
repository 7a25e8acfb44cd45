//! `BPF_MAP_TYPE_PROG_ARRAY`: tail-call targets.
//!
//! Cordon's runtime owns the program type, so the array stores opaque
//! `Arc<dyn ProgramHandle>` values. A program handle reports its id (what the host
//! reads back, like Linux's `prog_fd_array_sys_lookup_elem`) and its program type
//! (all programs of one array must share the type, as `bpf_prog_map_compatible`
//! checks); the runtime downcasts with [`ProgramHandle::as_any`] to its own type
//! when performing a tail call. Slots are swapped atomically; a replaced or removed
//! program is released after an epoch grace period, so a program that read a
//! target under an [`EpochGuard`](super::EpochGuard) can still run it.

use std::any::Any;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crossbeam_epoch::Guard;

use super::errno::*;
use super::util::try_null_ptrs;
use super::{BPF_ANY, MapError, MapType};

/// A program that can be stored in a `prog_array` (implemented by the runtime's
/// loaded-program type).
pub trait ProgramHandle: Send + Sync + 'static {
    /// Program id (returned by host lookups of the array).
    fn prog_id(&self) -> u32;
    /// `enum bpf_prog_type` of the program.
    fn prog_type(&self) -> u32;
    /// For downcasting to the runtime's concrete program type.
    fn as_any(&self) -> &dyn Any;
}

type Slot = Arc<dyn ProgramHandle>;

const NO_OWNER: u64 = u64::MAX;

pub(crate) struct ProgArray {
    slots: Box<[AtomicPtr<Slot>]>,
    owner_type: AtomicU64,
}

impl ProgArray {
    pub(crate) fn new(max_entries: u32, name: &str) -> Result<ProgArray, MapError> {
        Ok(ProgArray {
            slots: try_null_ptrs(max_entries as usize, name)?,
            owner_type: AtomicU64::new(NO_OWNER),
        })
    }

    pub(crate) fn max_entries(&self) -> u32 {
        self.slots.len() as u32
    }

    /// `bpf_prog_map_compatible`: binds the array to the first program type seen
    /// (by insertion or by a program that uses the array) and rejects others.
    pub(crate) fn check_compatible(&self, prog_type: u32) -> Result<(), MapError> {
        match self.owner_type.compare_exchange(
            NO_OWNER,
            prog_type as u64,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => Ok(()),
            Err(owner) if owner == prog_type as u64 => Ok(()),
            Err(owner) => Err(MapError::IncompatibleProgram {
                prog_type,
                owner_type: owner as u32,
            }),
        }
    }

    pub(crate) fn set(&self, index: u32, prog: Slot, flags: u64) -> Result<(), MapError> {
        if flags != BPF_ANY {
            return Err(MapError::InvalidFlags {
                map_type: MapType::ProgArray,
                flags,
            });
        }
        let Some(slot) = self.slots.get(index as usize) else {
            return Err(MapError::Full);
        };
        self.check_compatible(prog.prog_type())?;
        let new = Box::into_raw(Box::new(prog));
        let old = slot.swap(new, Ordering::AcqRel);
        retire(old);
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

    /// The program at `index`, valid while `guard` is held.
    pub(crate) fn get<'g>(&self, index: u32, _guard: &'g Guard) -> Option<&'g Slot> {
        let p = self.slots.get(index as usize)?.load(Ordering::Acquire);
        // SAFETY: non-null slots point to a live Box; removal defers the free past
        // every guard pinned at the time of removal, including `_guard`.
        unsafe { p.as_ref() }
    }

    pub(crate) fn lookup_id(&self, index: u32) -> Option<u32> {
        let g = crossbeam_epoch::pin();
        self.get(index, &g).map(|p| p.prog_id())
    }

    pub(crate) fn clear(&self) {
        for s in self.slots.iter() {
            // Read first: untouched slots of a huge array stay uncommitted.
            if !s.load(Ordering::Relaxed).is_null() {
                retire(s.swap(ptr::null_mut(), Ordering::AcqRel));
            }
        }
    }
}

fn retire(old: *mut Slot) {
    if old.is_null() {
        return;
    }
    // SAFETY: `old` came from Box::into_raw and was unlinked by our swap.
    let b = unsafe { Box::from_raw(old) };
    let g = crossbeam_epoch::pin();
    g.defer(move || drop(b));
    g.flush();
}

impl Drop for ProgArray {
    fn drop(&mut self) {
        // Deferred like any removal: a guard-holding caller may still use a
        // reference it obtained before the map went away.
        self.clear();
    }
}
