//! C-ABI entry points with the register-level signatures of the Linux map
//! helpers (all arguments and the result are 64-bit registers), so that JIT
//! code can call them directly and the interpreter can dispatch to them.
//!
//! `map` arguments are program-visible map pointers ([`Map::as_prog_ptr`]);
//! results are what the helpers return (pointers as integers, 0 / negative errno
//! as two's-complement `u64`).
//!
//! # Safety
//! All functions trust their pointers the way the Linux helpers trust the
//! verifier: `map` must be a live map pointer, and key / value / data pointers
//! must be valid for the sizes the map (or `size`) implies.

use super::Map;

/// Helper 1, `bpf_map_lookup_elem(map, key)`.
///
/// # Safety
/// See the [module documentation](self).
pub unsafe extern "C" fn bpf_map_lookup_elem(map: u64, key: u64) -> u64 {
    // SAFETY: module contract.
    unsafe { Map::from_prog_ptr(map).lookup(key as *const u8) as u64 }
}

/// Helper 2, `bpf_map_update_elem(map, key, value, flags)`.
///
/// # Safety
/// See the [module documentation](self).
pub unsafe extern "C" fn bpf_map_update_elem(map: u64, key: u64, value: u64, flags: u64) -> u64 {
    // SAFETY: module contract.
    unsafe { Map::from_prog_ptr(map).update(key as *const u8, value as *const u8, flags) as u64 }
}

/// Helper 3, `bpf_map_delete_elem(map, key)`.
///
/// # Safety
/// See the [module documentation](self).
pub unsafe extern "C" fn bpf_map_delete_elem(map: u64, key: u64) -> u64 {
    // SAFETY: module contract.
    unsafe { Map::from_prog_ptr(map).delete(key as *const u8) as u64 }
}

/// Helper 87, `bpf_map_push_elem(map, value, flags)`.
///
/// # Safety
/// See the [module documentation](self).
pub unsafe extern "C" fn bpf_map_push_elem(map: u64, value: u64, flags: u64) -> u64 {
    // SAFETY: module contract.
    unsafe { Map::from_prog_ptr(map).push(value as *const u8, flags) as u64 }
}

/// Helper 88, `bpf_map_pop_elem(map, value)`.
///
/// # Safety
/// See the [module documentation](self).
pub unsafe extern "C" fn bpf_map_pop_elem(map: u64, value: u64) -> u64 {
    // SAFETY: module contract.
    unsafe { Map::from_prog_ptr(map).pop(value as *mut u8) as u64 }
}

/// Helper 89, `bpf_map_peek_elem(map, value)`.
///
/// # Safety
/// See the [module documentation](self).
pub unsafe extern "C" fn bpf_map_peek_elem(map: u64, value: u64) -> u64 {
    // SAFETY: module contract.
    unsafe { Map::from_prog_ptr(map).peek(value as *mut u8) as u64 }
}

/// Helper 195, `bpf_map_lookup_percpu_elem(map, key, cpu)`.
///
/// # Safety
/// See the [module documentation](self).
pub unsafe extern "C" fn bpf_map_lookup_percpu_elem(map: u64, key: u64, cpu: u64) -> u64 {
    if cpu > u32::MAX as u64 {
        return 0;
    }
    // SAFETY: module contract.
    unsafe { Map::from_prog_ptr(map).lookup_percpu_elem(key as *const u8, cpu as u32) as u64 }
}

/// Helper 130, `bpf_ringbuf_output(ringbuf, data, size, flags)`.
///
/// # Safety
/// See the [module documentation](self).
pub unsafe extern "C" fn bpf_ringbuf_output(map: u64, data: u64, size: u64, flags: u64) -> u64 {
    // SAFETY: module contract.
    unsafe { Map::from_prog_ptr(map).ringbuf_output(data as *const u8, size, flags) as u64 }
}

/// Helper 131, `bpf_ringbuf_reserve(ringbuf, size, flags)`.
///
/// # Safety
/// See the [module documentation](self).
pub unsafe extern "C" fn bpf_ringbuf_reserve(map: u64, size: u64, flags: u64) -> u64 {
    // SAFETY: module contract.
    unsafe { Map::from_prog_ptr(map).ringbuf_reserve(size, flags) as u64 }
}

/// Helper 132, `bpf_ringbuf_submit(data, flags)`.
///
/// # Safety
/// `data` must be an unsubmitted record from [`bpf_ringbuf_reserve`].
pub unsafe extern "C" fn bpf_ringbuf_submit(data: u64, flags: u64) -> u64 {
    // SAFETY: caller contract.
    unsafe { super::ringbuf_submit(data as *mut u8, flags) };
    0
}

/// Helper 133, `bpf_ringbuf_discard(data, flags)`.
///
/// # Safety
/// As [`bpf_ringbuf_submit`].
pub unsafe extern "C" fn bpf_ringbuf_discard(data: u64, flags: u64) -> u64 {
    // SAFETY: caller contract.
    unsafe { super::ringbuf_discard(data as *mut u8, flags) };
    0
}

/// Helper 134, `bpf_ringbuf_query(ringbuf, flags)`.
///
/// # Safety
/// See the [module documentation](self).
pub unsafe extern "C" fn bpf_ringbuf_query(map: u64, flags: u64) -> u64 {
    // SAFETY: module contract.
    unsafe { Map::from_prog_ptr(map).ringbuf_query(flags) }
}
