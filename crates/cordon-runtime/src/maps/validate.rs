//! Attribute validation at map creation, following Linux's `map_alloc_check`
//! functions (`array_map_alloc_check`, `fd_array_map_alloc_check`,
//! `htab_map_alloc_check`, `queue_stack_map_alloc_check`, `ringbuf_map_alloc`,
//! `bpf_map_meta_alloc`).

use super::flags::*;
use super::util::round8;
use super::{MapDef, MapError, MapType};

/// `PCPU_MIN_UNIT_SIZE`: upper bound of a per-CPU value (rounded to 8).
pub(crate) const PCPU_MIN_UNIT_SIZE: u64 = 32 * 1024;
/// `KMALLOC_MAX_SIZE` on x86-64 (4 MiB).
pub(crate) const KMALLOC_MAX_SIZE: u64 = 4 << 20;
/// `sizeof(struct htab_elem)` on x86-64.
const HTAB_ELEM_SIZE: u64 = 48;
/// Ring buffer sizes must be multiples of this (`PAGE_SIZE` on x86-64).
pub(crate) const RINGBUF_PAGE_SIZE: u32 = 4096;

const ARRAY_CREATE_FLAG_MASK: u32 =
    BPF_F_NUMA_NODE | BPF_F_MMAPABLE | BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS | BPF_F_INNER_MAP;
const HTAB_CREATE_FLAG_MASK: u32 =
    BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_ZERO_SEED;
const QUEUE_STACK_CREATE_FLAG_MASK: u32 = BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK;
const RINGBUF_CREATE_FLAG_MASK: u32 = BPF_F_NUMA_NODE;

fn invalid(map_type: MapType, field: &'static str, value: u64, reason: &'static str) -> MapError {
    MapError::InvalidAttr {
        map_type,
        field,
        value,
        reason,
    }
}

fn bad_flags(map_type: MapType, flags: u32, reason: &'static str) -> MapError {
    MapError::InvalidMapFlags {
        map_type,
        flags,
        reason,
    }
}

fn too_big(map_type: MapType, field: &'static str, value: u64, limit: u64) -> MapError {
    MapError::AttrTooBig {
        map_type,
        field,
        value,
        limit,
    }
}

/// `bpf_map_flags_access_ok`: a map cannot be both read-only and write-only
/// for programs.
fn check_access(t: MapType, flags: u32) -> Result<(), MapError> {
    let both = BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
    if flags & both == both {
        return Err(bad_flags(
            t,
            both,
            "BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG are exclusive",
        ));
    }
    Ok(())
}

/// Validates a map definition the way `BPF_MAP_CREATE` does, without
/// allocating anything. Inner map templates are validated recursively.
pub fn validate_def(def: &MapDef) -> Result<MapType, MapError> {
    let t = def.kind()?;
    let f = def.flags;
    // bpf_get_file_flag(): host read-only and write-only are exclusive.
    if f & BPF_F_RDONLY != 0 && f & BPF_F_WRONLY != 0 {
        return Err(bad_flags(
            t,
            BPF_F_RDONLY | BPF_F_WRONLY,
            "BPF_F_RDONLY and BPF_F_WRONLY are exclusive",
        ));
    }
    match t {
        MapType::Array | MapType::PercpuArray | MapType::ProgArray | MapType::ArrayOfMaps => {
            check_array(t, def)?
        }
        MapType::Hash
        | MapType::PercpuHash
        | MapType::LruHash
        | MapType::LruPercpuHash
        | MapType::HashOfMaps => check_hash(t, def)?,
        MapType::Queue | MapType::Stack => check_queue_stack(t, def)?,
        MapType::RingBuf => check_ringbuf(t, def)?,
        MapType::DevMap | MapType::DevMapHash | MapType::CpuMap | MapType::XskMap => {
            super::devmap::check_def(t, def)?
        }
    }
    if t.is_map_of_maps() {
        let inner = def
            .inner
            .as_deref()
            .ok_or(MapError::MissingInnerMap { map_type: t })?;
        let it = validate_def(inner)?;
        if it.is_map_of_maps() {
            return Err(invalid(
                t,
                "inner map type",
                it.id() as u64,
                "more than one level of map-in-map is not supported",
            ));
        }
        if it == MapType::ProgArray {
            return Err(MapError::NotSupported {
                map_type: t,
                what: "prog_array as inner map",
            });
        }
    } else if def.inner.is_some() {
        return Err(MapError::UnexpectedInnerMap { map_type: t });
    }
    if let Some(off) = def.spin_lock_off {
        if !matches!(t, MapType::Hash | MapType::Array) {
            return Err(invalid(
                t,
                "spin_lock_off",
                off as u64,
                "bpf_spin_lock is only allowed in hash and array map values",
            ));
        }
        if !off.is_multiple_of(4) || off as u64 + 4 > def.value_size as u64 {
            return Err(invalid(
                t,
                "spin_lock_off",
                off as u64,
                "must be 4-byte aligned and inside the value",
            ));
        }
    }
    Ok(t)
}

fn check_array(t: MapType, def: &MapDef) -> Result<(), MapError> {
    let f = def.flags;
    if matches!(t, MapType::ProgArray | MapType::ArrayOfMaps) {
        // fd_array_map_alloc_check
        if def.value_size != 4 {
            return Err(invalid(
                t,
                "value_size",
                def.value_size as u64,
                "must be 4 (a file descriptor)",
            ));
        }
        let prog_access = f & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG);
        if prog_access != 0 {
            return Err(bad_flags(
                t,
                prog_access,
                "program read-only/write-only is not supported for fd arrays",
            ));
        }
    }
    if def.max_entries == 0 {
        return Err(invalid(t, "max_entries", 0, "must be non-zero"));
    }
    if def.key_size != 4 {
        return Err(invalid(t, "key_size", def.key_size as u64, "must be 4"));
    }
    if def.value_size == 0 {
        return Err(invalid(t, "value_size", 0, "must be non-zero"));
    }
    if f & !ARRAY_CREATE_FLAG_MASK != 0 {
        return Err(bad_flags(
            t,
            f & !ARRAY_CREATE_FLAG_MASK,
            "unknown for arrays",
        ));
    }
    check_access(t, f)?;
    if t != MapType::Array && f & (BPF_F_MMAPABLE | BPF_F_INNER_MAP) != 0 {
        return Err(bad_flags(
            t,
            f & (BPF_F_MMAPABLE | BPF_F_INNER_MAP),
            "BPF_F_MMAPABLE and BPF_F_INNER_MAP are only for plain arrays",
        ));
    }
    if f & BPF_F_PRESERVE_ELEMS != 0 {
        return Err(bad_flags(
            t,
            BPF_F_PRESERVE_ELEMS,
            "BPF_F_PRESERVE_ELEMS is only for perf_event_array",
        ));
    }
    if def.value_size as u64 > i32::MAX as u64 {
        return Err(too_big(
            t,
            "value_size",
            def.value_size as u64,
            i32::MAX as u64,
        ));
    }
    if t == MapType::PercpuArray && round8(def.value_size as usize) as u64 > PCPU_MIN_UNIT_SIZE {
        return Err(too_big(
            t,
            "value_size",
            def.value_size as u64,
            PCPU_MIN_UNIT_SIZE,
        ));
    }
    Ok(())
}

fn check_hash(t: MapType, def: &MapDef) -> Result<(), MapError> {
    let f = def.flags;
    let percpu = t.is_percpu();
    let lru = matches!(t, MapType::LruHash | MapType::LruPercpuHash);
    if t == MapType::HashOfMaps && def.value_size != 4 {
        return Err(invalid(
            t,
            "value_size",
            def.value_size as u64,
            "must be 4 (a file descriptor)",
        ));
    }
    if f & !HTAB_CREATE_FLAG_MASK != 0 {
        return Err(bad_flags(
            t,
            f & !HTAB_CREATE_FLAG_MASK,
            "unknown for hash maps",
        ));
    }
    check_access(t, f)?;
    if !lru && f & BPF_F_NO_COMMON_LRU != 0 {
        return Err(bad_flags(
            t,
            BPF_F_NO_COMMON_LRU,
            "BPF_F_NO_COMMON_LRU is only for LRU hash maps",
        ));
    }
    if lru && f & BPF_F_NO_PREALLOC != 0 {
        return Err(MapError::NotSupported {
            map_type: t,
            what: "BPF_F_NO_PREALLOC on an LRU map",
        });
    }
    if def.max_entries == 0 {
        return Err(invalid(t, "max_entries", 0, "must be non-zero"));
    }
    if def.key_size == 0 {
        return Err(invalid(t, "key_size", 0, "must be non-zero"));
    }
    if def.value_size == 0 {
        return Err(invalid(t, "value_size", 0, "must be non-zero"));
    }
    let kv = def.key_size as u64 + def.value_size as u64;
    if kv >= KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE {
        return Err(too_big(
            t,
            "key_size + value_size",
            kv,
            KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE - 1,
        ));
    }
    if percpu && round8(def.value_size as usize) as u64 > PCPU_MIN_UNIT_SIZE {
        return Err(too_big(
            t,
            "value_size",
            def.value_size as u64,
            PCPU_MIN_UNIT_SIZE,
        ));
    }
    if def.max_entries as u64 > 1 << 31 {
        return Err(too_big(t, "max_entries", def.max_entries as u64, 1 << 31));
    }
    Ok(())
}

fn check_queue_stack(t: MapType, def: &MapDef) -> Result<(), MapError> {
    let f = def.flags;
    if def.max_entries == 0 {
        return Err(invalid(t, "max_entries", 0, "must be non-zero"));
    }
    if def.key_size != 0 {
        return Err(invalid(t, "key_size", def.key_size as u64, "must be 0"));
    }
    if def.value_size == 0 {
        return Err(invalid(t, "value_size", 0, "must be non-zero"));
    }
    if f & !QUEUE_STACK_CREATE_FLAG_MASK != 0 {
        return Err(bad_flags(
            t,
            f & !QUEUE_STACK_CREATE_FLAG_MASK,
            "unknown for queue/stack maps",
        ));
    }
    check_access(t, f)?;
    if def.value_size as u64 > KMALLOC_MAX_SIZE {
        return Err(too_big(
            t,
            "value_size",
            def.value_size as u64,
            KMALLOC_MAX_SIZE,
        ));
    }
    Ok(())
}

fn check_ringbuf(t: MapType, def: &MapDef) -> Result<(), MapError> {
    let f = def.flags;
    if f & !RINGBUF_CREATE_FLAG_MASK != 0 {
        return Err(bad_flags(
            t,
            f & !RINGBUF_CREATE_FLAG_MASK,
            "only BPF_F_NUMA_NODE is allowed for ring buffers",
        ));
    }
    if def.key_size != 0 {
        return Err(invalid(t, "key_size", def.key_size as u64, "must be 0"));
    }
    if def.value_size != 0 {
        return Err(invalid(t, "value_size", def.value_size as u64, "must be 0"));
    }
    if !def.max_entries.is_power_of_two() || !def.max_entries.is_multiple_of(RINGBUF_PAGE_SIZE) {
        return Err(invalid(
            t,
            "max_entries",
            def.max_entries as u64,
            "must be a power of 2 and a multiple of the page size (4096)",
        ));
    }
    Ok(())
}

/// `bpf_map_meta_equal` (+ `array_map_meta_equal`): whether `inner` may be stored
/// in an outer map whose template is `tmpl`.
pub(crate) fn check_inner_compatible(tmpl: &MapDef, inner: &MapDef) -> Result<(), MapError> {
    let diff = |what: &str, a: u64, b: u64| {
        Err(MapError::IncompatibleInnerMap {
            reason: format!("{what} is {b}, template has {a}"),
        })
    };
    if tmpl.map_type != inner.map_type {
        return diff("map_type", tmpl.map_type as u64, inner.map_type as u64);
    }
    if tmpl.key_size != inner.key_size {
        return diff("key_size", tmpl.key_size as u64, inner.key_size as u64);
    }
    if tmpl.value_size != inner.value_size {
        return diff(
            "value_size",
            tmpl.value_size as u64,
            inner.value_size as u64,
        );
    }
    // Devmaps always get BPF_F_RDONLY_PROG at creation (dev_map_init_map);
    // a template from an object does not carry it yet.
    let flags = |d: &MapDef| match d.kind() {
        Ok(MapType::DevMap | MapType::DevMapHash) => d.flags | BPF_F_RDONLY_PROG,
        _ => d.flags,
    };
    if flags(tmpl) != flags(inner) {
        return diff("map_flags", tmpl.flags as u64, inner.flags as u64);
    }
    if tmpl.spin_lock_off != inner.spin_lock_off {
        return Err(MapError::IncompatibleInnerMap {
            reason: "bpf_spin_lock layout differs".to_string(),
        });
    }
    if tmpl.map_type == MapType::Array.id()
        && tmpl.flags & BPF_F_INNER_MAP == 0
        && tmpl.max_entries != inner.max_entries
    {
        return diff(
            "max_entries",
            tmpl.max_entries as u64,
            inner.max_entries as u64,
        );
    }
    Ok(())
}
