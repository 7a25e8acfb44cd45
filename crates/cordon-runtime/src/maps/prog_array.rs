//! `BPF_MAP_TYPE_PROG_ARRAY`: tail-call targets.
//!
//! Cordon's runtime owns the program type, so the array stores opaque
//! `Arc<dyn ProgramHandle>` values. A program handle reports its id (what the host
//! reads back, like Linux's `prog_fd_array_sys_lookup_elem`) and the properties
//! `bpf_prog_map_compatible` requires all programs of one array to share
//! (program type, `xdp_has_frags`, `expected_attach_type`); the runtime downcasts with [`ProgramHandle::as_any`] to its own type
//! when performing a tail call. Slots are swapped atomically; a replaced or removed
//! program is released after an epoch grace period, so a program that read a
//! target under an [`EpochGuard`](super::EpochGuard) can still run it.

use std::any::Any;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex};

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
    /// Program name (named in compatibility errors).
    fn prog_name(&self) -> &str {
        ""
    }
    /// Loaded with `BPF_F_XDP_HAS_FRAGS`.
    fn xdp_has_frags(&self) -> bool {
        false
    }
    /// `expected_attach_type` of the program (`enum bpf_attach_type`).
    fn expected_attach_type(&self) -> u32 {
        0
    }
}

/// `enum bpf_attach_type` values libbpf sets at load for the program sections
/// Cordon runs.
pub mod attach_type {
    /// `BPF_XDP_DEVMAP`
    pub const XDP_DEVMAP: u32 = 33;
    /// `BPF_XDP_CPUMAP`
    pub const XDP_CPUMAP: u32 = 35;
    /// `BPF_XDP`
    pub const XDP: u32 = 37;
    /// `BPF_TCX_INGRESS`
    pub const TCX_INGRESS: u32 = 46;
    /// `BPF_TCX_EGRESS`
    pub const TCX_EGRESS: u32 = 47;
}

/// The `expected_attach_type` libbpf loads a program of ELF section `section`
/// with (`SEC("xdp")` -> `BPF_XDP`, `SEC("xdp/devmap")` -> `BPF_XDP_DEVMAP`,
/// `SEC("tcx/ingress")` -> `BPF_TCX_INGRESS`, ...; 0 for sections without one
/// such as `tc`, `classifier`, `socket`). A leading `?` (no autoload) is
/// ignored.
pub fn section_expected_attach_type(section: &str) -> u32 {
    let s = section.strip_prefix('?').unwrap_or(section);
    let (head, tail) = s.split_once('/').unwrap_or((s, ""));
    match (head, tail) {
        ("xdp" | "xdp.frags", "devmap") => attach_type::XDP_DEVMAP,
        ("xdp" | "xdp.frags", "cpumap") => attach_type::XDP_CPUMAP,
        ("xdp" | "xdp.frags", _) => attach_type::XDP,
        ("tcx" | "tc", "ingress") => attach_type::TCX_INGRESS,
        ("tcx" | "tc", "egress") => attach_type::TCX_EGRESS,
        _ => 0,
    }
}

/// What the first program fixes for every later one (`struct bpf_map_owner`:
/// program type, `xdp_has_frags`, `expected_attach_type`; JITed-ness and
/// sleepability are equal for every Cordon program of a runtime).
struct Owner {
    prog_type: u32,
    /// `None` while the array is bound by type only ([`ProgArray::check_compatible`]).
    props: Option<OwnerProps>,
}

struct OwnerProps {
    name: String,
    xdp_has_frags: bool,
    expected_attach_type: u32,
}

type Slot = Arc<dyn ProgramHandle>;

pub(crate) struct ProgArray {
    slots: Box<[AtomicPtr<Slot>]>,
    owner: Mutex<Option<Owner>>,
}

impl ProgArray {
    pub(crate) fn new(max_entries: u32, name: &str) -> Result<ProgArray, MapError> {
        Ok(ProgArray {
            slots: try_null_ptrs(max_entries as usize, name)?,
            owner: Mutex::new(None),
        })
    }

    pub(crate) fn max_entries(&self) -> u32 {
        self.slots.len() as u32
    }

    fn owner(&self) -> std::sync::MutexGuard<'_, Option<Owner>> {
        // The owner is plain data written whole: a panic elsewhere cannot
        // leave it half-updated, so a poisoned lock is still usable.
        self.owner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `bpf_prog_map_compatible` by program type only: binds the array to
    /// `prog_type` if it has no owner yet and rejects another type.
    pub(crate) fn check_compatible(&self, prog_type: u32) -> Result<(), MapError> {
        let mut owner = self.owner();
        match &*owner {
            None => {
                *owner = Some(Owner {
                    prog_type,
                    props: None,
                });
                Ok(())
            }
            Some(o) if o.prog_type == prog_type => Ok(()),
            Some(o) => Err(MapError::IncompatibleProgram {
                prog_type,
                owner_type: o.prog_type,
            }),
        }
    }

    /// `__bpf_prog_map_compatible`: the first program (inserted, or using the
    /// array) fixes its type, `xdp_has_frags` and `expected_attach_type` for
    /// the array's lifetime (emptying the array does not reset it); a program
    /// differing in any of them is refused (EINVAL).
    pub(crate) fn check_compatible_prog(&self, prog: &dyn ProgramHandle) -> Result<(), MapError> {
        let mut owner = self.owner();
        let props = || OwnerProps {
            name: prog.prog_name().to_string(),
            xdp_has_frags: prog.xdp_has_frags(),
            expected_attach_type: prog.expected_attach_type(),
        };
        let o = match &mut *owner {
            None => {
                *owner = Some(Owner {
                    prog_type: prog.prog_type(),
                    props: Some(props()),
                });
                return Ok(());
            }
            Some(o) => o,
        };
        if o.prog_type != prog.prog_type() {
            return Err(MapError::IncompatibleProgram {
                prog_type: prog.prog_type(),
                owner_type: o.prog_type,
            });
        }
        let Some(p) = &o.props else {
            o.props = Some(props());
            return Ok(());
        };
        let mismatch =
            |property, value: u32, owner_value: u32| MapError::IncompatibleProgramProperty {
                program: prog.prog_name().to_string(),
                owner: p.name.clone(),
                property,
                value,
                owner_value,
            };
        if p.xdp_has_frags != prog.xdp_has_frags() {
            return Err(mismatch(
                "xdp_has_frags",
                prog.xdp_has_frags() as u32,
                p.xdp_has_frags as u32,
            ));
        }
        if p.expected_attach_type != prog.expected_attach_type() {
            return Err(mismatch(
                "expected_attach_type",
                prog.expected_attach_type(),
                p.expected_attach_type,
            ));
        }
        Ok(())
    }

    /// Name of the program that fixed the array's properties, if any.
    pub(crate) fn owner_name(&self) -> Option<String> {
        self.owner()
            .as_ref()
            .and_then(|o| o.props.as_ref())
            .map(|p| p.name.clone())
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
        self.check_compatible_prog(&*prog)?;
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
