//! `bpf_for_each_map_elem` (helper 164).
//!
//! The loader rewrites every call into an instruction loop
//! ([`crate::patch::for_each_seq`]) that calls the callback subprogram
//! directly, so neither engine ever calls back into BPF code from a helper.
//! The loop asks [`cursor_next`] (internal helper
//! [`internal::FOR_EACH_NEXT`](super::internal::FOR_EACH_NEXT)) for each
//! element. Its cursor lives in 24 bytes of the calling frame that the loader
//! added for the purpose:
//!
//! | offset | contents                                                      |
//! |--------|---------------------------------------------------------------|
//! | 0      | position (0 = start; map-specific, see `Map::for_each_next`)  |
//! | 8      | array maps: the current index (the key the callback reads)    |
//! | 16     | value pointer of the current element                          |
//!
//! Semantics are Linux's (`bpf_for_each_array_elem`, `bpf_for_each_hash_elem`):
//! flags other than 0 return `-EINVAL` before any element is visited; arrays
//! are walked in index order and hash maps bucket by bucket (the order of
//! `get_next_key`); per-CPU maps hand out the current CPU's value; the
//! callback's non-zero return stops the walk; the helper returns the number
//! of callback calls. The successor of a hash element is read after the
//! callback returned, so a callback deleting its own element continues with
//! the rest of the bucket as in Linux.

use cordon_exec::{Abort, HelperResult, RunContext};

use super::{check_mem, map_arg};
use crate::maps::ForEachKey;

/// Bytes of the cursor in the caller's frame.
pub(crate) const CURSOR_SIZE: u64 = 24;

/// `r0 = key pointer` of the next element (value pointer stored at cursor
/// +16), or 0 when the walk is over. `a[0]` is the map, `a[1]` the cursor.
pub(crate) fn cursor_next(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let m = map_arg(ctx, a[0])?;
    let cur = a[1];
    // In checked mode the cursor is program memory it could have changed;
    // every position is validated by the map, so a bad one only ends the walk.
    check_mem(ctx, cur, CURSOR_SIZE, true)?;
    if cur == 0 || !cur.is_multiple_of(8) {
        return Err(Abort::Fault(format!(
            "bpf_for_each_map_elem cursor at {cur:#x} is not 8-byte aligned"
        )));
    }
    let slot = cur as *mut u64;
    // SAFETY: 24 writable, aligned bytes: checked above in checked mode, the
    // loader's own frame slots in trusted mode.
    let pos = unsafe { slot.read() };
    let Some(step) = m.for_each_next(pos) else {
        return Err(Abort::Fault(format!(
            "bpf_for_each_map_elem: map '{}' ({:?}) cannot be iterated",
            m.name(),
            m.map_type()
        )));
    };
    let Some(step) = step else {
        return Ok(0);
    };
    let key = match step.key {
        ForEachKey::Index(i) => {
            // SAFETY: as above (cursor +8, a u32 key as Linux's `&i`).
            unsafe { (slot.add(1) as *mut u32).write(i) };
            cur + 8
        }
        ForEachKey::Ptr(k) => {
            if ctx.is_checked() {
                // SAFETY: element memory lives as long as the map, which the
                // program holds; keys are read-only to programs.
                unsafe { ctx.grant(k as u64, m.key_size() as u64, false) };
            }
            k as u64
        }
    };
    if ctx.is_checked() {
        let writable = m.def().flags & crate::maps::flags::BPF_F_RDONLY_PROG == 0;
        // Arrays: the whole value area once, at the start of the walk (one
        // grant per walk, not per element); hash maps: each value.
        let grant = match step.values_area {
            Some((p, len)) => (pos == 0).then_some((p as u64, len as u64)),
            None => Some((step.value as u64, m.value_size() as u64)),
        };
        if let Some((p, len)) = grant {
            // SAFETY: values live as long as the map, which the program holds.
            unsafe { ctx.grant(p, len, writable) };
        }
    }
    // SAFETY: as above.
    unsafe {
        slot.write(step.pos);
        slot.add(2).write(step.value as u64);
    }
    Ok(key)
}
