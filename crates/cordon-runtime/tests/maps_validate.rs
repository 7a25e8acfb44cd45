//! Creation-time attribute validation (Linux `map_alloc_check` rules).

use cordon_runtime::maps::flags::*;
use cordon_runtime::maps::*;

fn create(def: MapDef) -> Result<MapHandle, MapError> {
    Map::create(&def, 2)
}

fn errno_of(def: MapDef) -> i32 {
    create(def).expect_err("must be rejected").errno()
}

fn field_of(def: MapDef) -> &'static str {
    match create(def).expect_err("must be rejected") {
        MapError::InvalidAttr { field, .. } | MapError::AttrTooBig { field, .. } => field,
        e => panic!("unexpected error {e:?}"),
    }
}

#[test]
fn unknown_type_is_named() {
    let def = MapDef {
        map_type: 4242,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        ..MapDef::default()
    };
    let e = create(def).unwrap_err();
    assert_eq!(e, MapError::UnknownMapType { id: 4242 });
    assert!(e.to_string().contains("4242"));
    assert_eq!(e.errno(), 22);
    assert!(
        MapType::from_id(4).is_err(),
        "perf_event_array is not implemented"
    );
}

#[test]
fn array_rules() {
    for t in [MapType::Array, MapType::PercpuArray] {
        assert_eq!(field_of(MapDef::new(t, 8, 4, 1)), "key_size");
        assert_eq!(field_of(MapDef::new(t, 4, 0, 1)), "value_size");
        assert_eq!(field_of(MapDef::new(t, 4, 4, 0)), "max_entries");
        assert_eq!(
            errno_of(MapDef::new(t, 4, 4, 1).with_flags(BPF_F_NO_PREALLOC)),
            22
        );
        assert_eq!(
            errno_of(MapDef::new(t, 4, 4, 1).with_flags(BPF_F_PRESERVE_ELEMS)),
            22
        );
        assert_eq!(
            errno_of(MapDef::new(t, 4, 4, 1).with_flags(BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)),
            22
        );
        assert_eq!(
            errno_of(MapDef::new(t, 4, 4, 1).with_flags(BPF_F_RDONLY | BPF_F_WRONLY)),
            22
        );
        assert_eq!(errno_of(MapDef::new(t, 4, i32::MAX as u32 + 1, 1)), 7);
    }
    assert!(create(MapDef::new(MapType::Array, 4, 4, 1).with_flags(BPF_F_MMAPABLE)).is_ok());
    assert!(create(MapDef::new(MapType::Array, 4, 4, 1).with_flags(BPF_F_INNER_MAP)).is_ok());
    assert!(create(MapDef::new(MapType::Array, 4, 4, 1).with_flags(BPF_F_RDONLY_PROG)).is_ok());
    assert_eq!(
        errno_of(MapDef::new(MapType::PercpuArray, 4, 4, 1).with_flags(BPF_F_MMAPABLE)),
        22
    );
    // Per-CPU values are limited to PCPU_MIN_UNIT_SIZE.
    assert!(create(MapDef::new(MapType::PercpuArray, 4, 32768, 1)).is_ok());
    assert_eq!(errno_of(MapDef::new(MapType::PercpuArray, 4, 32769, 1)), 7);
    assert!(
        create(MapDef::new(MapType::PercpuArray, 4, 32761, 1)).is_ok(),
        "rounds up to 32768"
    );
}

#[test]
fn fd_array_rules() {
    for t in [MapType::ProgArray, MapType::ArrayOfMaps] {
        let inner = MapDef::new(MapType::Array, 4, 4, 1);
        let mk = |d: MapDef| {
            if t == MapType::ArrayOfMaps {
                d.with_inner(inner.clone())
            } else {
                d
            }
        };
        assert!(create(mk(MapDef::new(t, 4, 4, 8))).is_ok());
        assert_eq!(field_of(mk(MapDef::new(t, 4, 8, 8))), "value_size");
        assert_eq!(field_of(mk(MapDef::new(t, 8, 4, 8))), "key_size");
        assert_eq!(field_of(mk(MapDef::new(t, 4, 4, 0))), "max_entries");
        assert_eq!(
            errno_of(mk(MapDef::new(t, 4, 4, 8).with_flags(BPF_F_RDONLY_PROG))),
            22
        );
        assert_eq!(
            errno_of(mk(MapDef::new(t, 4, 4, 8).with_flags(BPF_F_MMAPABLE))),
            22
        );
    }
}

#[test]
fn hash_rules() {
    for t in [
        MapType::Hash,
        MapType::PercpuHash,
        MapType::LruHash,
        MapType::LruPercpuHash,
    ] {
        assert!(create(MapDef::new(t, 4, 4, 1)).is_ok());
        assert_eq!(field_of(MapDef::new(t, 0, 4, 1)), "key_size");
        assert_eq!(field_of(MapDef::new(t, 4, 0, 1)), "value_size");
        assert_eq!(field_of(MapDef::new(t, 4, 4, 0)), "max_entries");
        assert_eq!(
            errno_of(MapDef::new(t, 4, 4, 1).with_flags(BPF_F_MMAPABLE)),
            22
        );
        assert_eq!(errno_of(MapDef::new(t, 2 << 20, 2 << 20, 1)), 7);
        assert_eq!(errno_of(MapDef::new(t, 4, 4, (1 << 31) + 1)), 7);
        assert!(
            create(MapDef::new(t, 4, 4, 1).with_flags(BPF_F_ZERO_SEED | BPF_F_NUMA_NODE)).is_ok()
        );
    }
    // BPF_F_NO_COMMON_LRU only for LRU maps.
    assert_eq!(
        errno_of(MapDef::new(MapType::Hash, 4, 4, 1).with_flags(BPF_F_NO_COMMON_LRU)),
        22
    );
    assert!(create(MapDef::new(MapType::LruHash, 4, 4, 1).with_flags(BPF_F_NO_COMMON_LRU)).is_ok());
    // LRU maps are always preallocated: ENOTSUPP (524).
    let e =
        create(MapDef::new(MapType::LruHash, 4, 4, 1).with_flags(BPF_F_NO_PREALLOC)).unwrap_err();
    assert!(matches!(e, MapError::NotSupported { .. }));
    assert_eq!(e.errno(), 524);
    assert!(create(MapDef::new(MapType::Hash, 4, 4, 1).with_flags(BPF_F_NO_PREALLOC)).is_ok());
    assert_eq!(errno_of(MapDef::new(MapType::PercpuHash, 4, 32769, 1)), 7);
    // key + value limit (KMALLOC_MAX_SIZE - sizeof(htab_elem)).
    assert!(create(MapDef::new(MapType::Hash, 4, (4 << 20) - 48 - 5, 1)).is_ok());
    assert_eq!(
        errno_of(MapDef::new(MapType::Hash, 4, (4 << 20) - 48 - 4, 1)),
        7
    );
    // hash_of_maps values are fds.
    let inner = MapDef::new(MapType::Array, 4, 4, 1);
    assert_eq!(
        field_of(MapDef::new(MapType::HashOfMaps, 4, 8, 1).with_inner(inner.clone())),
        "value_size"
    );
    assert!(create(MapDef::new(MapType::HashOfMaps, 4, 4, 1).with_inner(inner)).is_ok());
}

#[test]
fn queue_stack_rules() {
    for t in [MapType::Queue, MapType::Stack] {
        assert!(create(MapDef::new(t, 0, 4, 1)).is_ok());
        assert_eq!(field_of(MapDef::new(t, 4, 4, 1)), "key_size");
        assert_eq!(field_of(MapDef::new(t, 0, 0, 1)), "value_size");
        assert_eq!(field_of(MapDef::new(t, 0, 4, 0)), "max_entries");
        assert_eq!(
            errno_of(MapDef::new(t, 0, 4, 1).with_flags(BPF_F_NO_PREALLOC)),
            22
        );
        assert_eq!(errno_of(MapDef::new(t, 0, (4 << 20) + 1, 1)), 7);
        assert!(create(MapDef::new(t, 0, 4, 1).with_flags(BPF_F_RDONLY_PROG)).is_ok());
    }
}

#[test]
fn ringbuf_rules() {
    let t = MapType::RingBuf;
    assert!(create(MapDef::new(t, 0, 0, 4096)).is_ok());
    assert!(create(MapDef::new(t, 0, 0, 1 << 16)).is_ok());
    assert_eq!(field_of(MapDef::new(t, 0, 0, 4096 * 3)), "max_entries");
    assert_eq!(field_of(MapDef::new(t, 0, 0, 2048)), "max_entries");
    assert_eq!(field_of(MapDef::new(t, 0, 0, 0)), "max_entries");
    assert_eq!(field_of(MapDef::new(t, 4, 0, 4096)), "key_size");
    assert_eq!(field_of(MapDef::new(t, 0, 4, 4096)), "value_size");
    assert_eq!(
        errno_of(MapDef::new(t, 0, 0, 4096).with_flags(BPF_F_RDONLY)),
        22
    );
    assert!(create(MapDef::new(t, 0, 0, 4096).with_flags(BPF_F_NUMA_NODE)).is_ok());
}

#[test]
fn map_in_map_rules() {
    let inner = MapDef::new(MapType::Hash, 4, 8, 16);
    // Missing template: EBADF as Linux with a bad inner_map_fd.
    let e = create(MapDef::new(MapType::ArrayOfMaps, 4, 4, 2)).unwrap_err();
    assert_eq!(
        e,
        MapError::MissingInnerMap {
            map_type: MapType::ArrayOfMaps
        }
    );
    assert_eq!(e.errno(), 9);
    // Two levels are not supported.
    let nested = MapDef::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(inner.clone());
    assert_eq!(
        field_of(MapDef::new(MapType::HashOfMaps, 4, 4, 2).with_inner(nested)),
        "inner map type"
    );
    // Template itself is validated.
    assert_eq!(
        field_of(
            MapDef::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(MapDef::new(
                MapType::Hash,
                0,
                8,
                1
            ))
        ),
        "key_size"
    );
    // prog_array cannot be an inner map.
    let e = create(
        MapDef::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(MapDef::new(
            MapType::ProgArray,
            4,
            4,
            1,
        )),
    )
    .unwrap_err();
    assert_eq!(e.errno(), 524);
    // Only maps of maps take a template.
    assert!(matches!(
        create(MapDef::new(MapType::Hash, 4, 4, 1).with_inner(inner)),
        Err(MapError::UnexpectedInnerMap { .. })
    ));
}

#[test]
fn spin_lock_rules() {
    assert!(create(MapDef::new(MapType::Hash, 4, 8, 1).with_spin_lock(4)).is_ok());
    assert_eq!(
        field_of(MapDef::new(MapType::Hash, 4, 8, 1).with_spin_lock(6)),
        "spin_lock_off"
    );
    assert_eq!(
        field_of(MapDef::new(MapType::Hash, 4, 8, 1).with_spin_lock(8)),
        "spin_lock_off"
    );
    assert_eq!(
        field_of(MapDef::new(MapType::PercpuHash, 4, 8, 1).with_spin_lock(0)),
        "spin_lock_off"
    );
    assert_eq!(
        field_of(MapDef::new(MapType::LruHash, 4, 8, 1).with_spin_lock(0)),
        "spin_lock_off"
    );
}

#[test]
fn errors_render_precisely() {
    let e = create(MapDef::new(MapType::Array, 8, 4, 1).with_name("cfg")).unwrap_err();
    assert_eq!(e.to_string(), "array map: invalid key_size 8: must be 4");
    let e = create(MapDef::new(MapType::RingBuf, 0, 0, 5000)).unwrap_err();
    assert!(e.to_string().contains("power of 2"), "{e}");
    assert!(validate_def(&MapDef::new(MapType::Queue, 0, 8, 3)).is_ok());
}

#[test]
fn huge_maps_fail_cleanly() {
    // 2^20 elements of ~4 MiB: terabytes, far beyond memory: ENOMEM, no abort.
    let e = create(MapDef::new(MapType::Hash, 4, (4 << 20) - 100, 1 << 20)).unwrap_err();
    assert!(matches!(e, MapError::OutOfMemory { .. }), "{e:?}");
    assert_eq!(e.errno(), 12);
    let e = create(MapDef::new(MapType::Array, 4, 1 << 30, 1 << 20)).unwrap_err();
    assert_eq!(e.errno(), 12);
    let e = create(MapDef::new(MapType::Queue, 0, 4 << 20, u32::MAX)).unwrap_err();
    assert_eq!(e.errno(), 12);
    // A large fd array is zero-filled lazily: either created quickly or ENOMEM.
    match create(MapDef::new(MapType::ProgArray, 4, 4, 1 << 24)) {
        Ok(m) => assert!(m.prog(123_456).is_none()),
        Err(e) => assert_eq!(e.errno(), 12),
    }
}
