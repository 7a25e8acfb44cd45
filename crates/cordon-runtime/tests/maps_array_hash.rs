//! Array, per-CPU array and hash-family maps: program-side and host-side
//! semantics, flags and errno paths.

use std::ptr;

use cordon_runtime::maps::flags::*;
use cordon_runtime::maps::*;

const ENOENT: i64 = -2;
const E2BIG: i64 = -7;
const EEXIST: i64 = -17;
const EINVAL: i64 = -22;
const EPERM: i64 = -1;

fn k(i: u32) -> [u8; 4] {
    i.to_ne_bytes()
}

fn read_u64(p: *const u8) -> u64 {
    assert!(!p.is_null());
    unsafe { ptr::read_unaligned(p as *const u64) }
}

fn array(value_size: u32, max: u32) -> MapHandle {
    Map::create(&MapDef::new(MapType::Array, 4, value_size, max), 2).unwrap()
}

#[test]
fn array_lookup_update_and_errnos() {
    let m = array(8, 4);
    unsafe {
        let p = m.lookup(k(1).as_ptr());
        assert_eq!(read_u64(p), 0);
        assert_eq!(p as usize % 8, 0);
        assert_eq!(p, m.lookup(k(1).as_ptr()), "array pointers are stable");
        assert!(m.lookup(k(4).as_ptr()).is_null());
        assert!(m.lookup(k(u32::MAX).as_ptr()).is_null());

        let v = 0x1122_3344_5566_7788u64.to_ne_bytes();
        assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_ANY), 0);
        assert_eq!(read_u64(p), 0x1122_3344_5566_7788);
        assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_EXIST), 0);
        assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_NOEXIST), EEXIST);
        assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), 3), EINVAL);
        assert_eq!(
            m.update(k(1).as_ptr(), v.as_ptr(), BPF_F_LOCK),
            EINVAL,
            "no spin lock"
        );
        assert_eq!(m.update(k(4).as_ptr(), v.as_ptr(), BPF_ANY), E2BIG);
        assert_eq!(m.delete(k(1).as_ptr()), EINVAL);
        // Queue operations do not apply.
        assert!(m.push(v.as_ptr(), 0) < 0);
    }
    assert_eq!(
        m.lookup_value(&k(1)).unwrap(),
        0x1122_3344_5566_7788u64.to_ne_bytes()
    );
    assert_eq!(m.lookup_value(&k(9)), Err(MapError::NotFound));
    assert_eq!(
        m.update_value(&k(2), &[1; 8], BPF_NOEXIST),
        Err(MapError::Exists)
    );
    assert_eq!(m.update_value(&k(7), &[1; 8], BPF_ANY), Err(MapError::Full));
    assert_eq!(
        m.update_value(&k(7), &[1; 8], BPF_ANY).unwrap_err().errno(),
        7
    );
    assert!(matches!(
        m.update_value(&k(2), &[1; 8], 8),
        Err(MapError::InvalidFlags { flags: 8, .. })
    ));
    assert_eq!(
        m.update_value(&[0; 3], &[1; 8], 0),
        Err(MapError::KeySize {
            expected: 4,
            got: 3
        })
    );
    assert_eq!(
        m.update_value(&k(0), &[1; 7], 0),
        Err(MapError::ValueSize {
            expected: 8,
            got: 7
        })
    );
    let e = m.delete_value(&k(0)).unwrap_err();
    assert_eq!(e.errno(), 22);
}

#[test]
fn array_get_next_key() {
    let m = array(4, 3);
    let mut next = [0u8; 4];
    unsafe {
        assert_eq!(m.get_next_key(ptr::null(), next.as_mut_ptr()), 0);
        assert_eq!(u32::from_ne_bytes(next), 0);
        assert_eq!(m.get_next_key(k(0).as_ptr(), next.as_mut_ptr()), 0);
        assert_eq!(u32::from_ne_bytes(next), 1);
        assert_eq!(m.get_next_key(k(2).as_ptr(), next.as_mut_ptr()), ENOENT);
        assert_eq!(m.get_next_key(k(77).as_ptr(), next.as_mut_ptr()), 0);
        assert_eq!(u32::from_ne_bytes(next), 0);
    }
    let keys: Vec<u32> = m
        .keys()
        .map(|k| u32::from_ne_bytes(k.try_into().unwrap()))
        .collect();
    assert_eq!(keys, vec![0, 1, 2]);
    assert_eq!(m.entries().count(), 3);
}

#[test]
fn array_layout_and_rounding() {
    let m = array(5, 10);
    let l = m.array_layout().unwrap();
    assert_eq!(l.elem_size, 8);
    assert_eq!(l.max_entries, 10);
    for i in 0..10 {
        let p = unsafe { m.lookup(k(i).as_ptr()) };
        assert_eq!(p, unsafe { l.base.add(i as usize * 8) });
        assert!(m.owns_ptr(p));
    }
    assert_eq!(m.host_value_size(), 5);
    assert_eq!(m.lookup_value(&k(3)).unwrap().len(), 5);
}

#[test]
fn global_data_and_freeze() {
    let def = MapDef::new(MapType::Array, 4, 16, 1)
        .with_name(".rodata")
        .with_flags(BPF_F_RDONLY_PROG);
    let m = Map::create_with_data(&def, 1, b"hello").unwrap();
    let v = m.lookup_value(&k(0)).unwrap();
    assert_eq!(&v[..5], b"hello");
    assert_eq!(&v[5..], &[0; 11]);
    m.freeze().unwrap();
    assert!(m.is_frozen());
    assert_eq!(m.freeze().unwrap_err().errno(), 16);
    let e = m.update_value(&k(0), &[0; 16], 0).unwrap_err();
    assert!(matches!(
        e,
        MapError::ReadOnly {
            reason: "frozen",
            ..
        }
    ));
    assert_eq!(e.errno(), 1);
    // Programs cannot write a BPF_F_RDONLY_PROG map through helpers.
    assert_eq!(
        unsafe { m.update(k(0).as_ptr(), [0u8; 16].as_ptr(), 0) },
        EPERM
    );

    // .data: frozen only for the host; programs still write.
    let d = Map::create_with_data(&MapDef::new(MapType::Array, 4, 8, 1), 1, &[1, 2]).unwrap();
    d.freeze().unwrap();
    assert_eq!(unsafe { d.update(k(0).as_ptr(), [9u8; 8].as_ptr(), 0) }, 0);
    assert_eq!(d.lookup_value(&k(0)).unwrap(), vec![9; 8]);

    assert!(matches!(
        Map::create_with_data(&MapDef::new(MapType::Array, 4, 4, 1), 1, &[0; 5]),
        Err(MapError::InitialData {
            got: 5,
            capacity: 4
        })
    ));
    assert!(Map::create_with_data(&MapDef::new(MapType::Hash, 4, 4, 1), 1, &[0; 1]).is_err());
}

#[test]
fn host_access_flags() {
    let ro = Map::create(
        &MapDef::new(MapType::Hash, 4, 4, 4).with_flags(BPF_F_RDONLY),
        1,
    )
    .unwrap();
    assert_eq!(ro.update_value(&k(1), &k(1), 0).unwrap_err().errno(), 1);
    assert_eq!(ro.delete_value(&k(1)).unwrap_err().errno(), 1);
    assert_eq!(unsafe { ro.update(k(1).as_ptr(), k(1).as_ptr(), 0) }, 0);
    assert_eq!(ro.lookup_value(&k(1)).unwrap(), k(1));
    let wo = Map::create(
        &MapDef::new(MapType::Hash, 4, 4, 4).with_flags(BPF_F_WRONLY),
        1,
    )
    .unwrap();
    wo.update_value(&k(1), &k(2), 0).unwrap();
    assert!(matches!(
        wo.lookup_value(&k(1)),
        Err(MapError::WriteOnly { .. })
    ));
}

#[test]
fn spin_lock_values() {
    // value: [u32 lock][u32 pad][u64 data]
    for t in [MapType::Array, MapType::Hash] {
        let def = MapDef::new(t, 4, 16, 4).with_spin_lock(0);
        let m = Map::create(&def, 1).unwrap();
        let mut v = [0u8; 16];
        v[0..4].copy_from_slice(&0xdead_beefu32.to_ne_bytes());
        v[8..16].copy_from_slice(&42u64.to_ne_bytes());
        m.update_value(&k(1), &v, BPF_ANY).unwrap();
        m.update_value(&k(1), &v, BPF_F_LOCK).unwrap();
        let got = m.lookup_value_flags(&k(1), BPF_F_LOCK).unwrap();
        assert_eq!(
            &got[0..4],
            &[0; 4],
            "lock word is neither copied in nor out"
        );
        assert_eq!(u64::from_ne_bytes(got[8..16].try_into().unwrap()), 42);
        let p = unsafe { m.lookup(k(1).as_ptr()) };
        assert_eq!(unsafe { ptr::read(p as *const u32) }, 0, "lock is free");
        unsafe {
            bpf_spin_lock(p as *mut u32);
            assert_eq!(ptr::read_volatile(p as *const u32), 1);
            bpf_spin_unlock(p as *mut u32);
        }
        assert!(matches!(
            m.lookup_value_flags(&k(1), 8),
            Err(MapError::InvalidFlags { .. })
        ));
    }
    let plain = Map::create(&MapDef::new(MapType::Hash, 4, 8, 4), 1).unwrap();
    assert!(matches!(
        plain.lookup_value_flags(&k(1), BPF_F_LOCK),
        Err(MapError::InvalidFlags { .. })
    ));
    assert_eq!(
        unsafe { plain.update(k(1).as_ptr(), [0u8; 8].as_ptr(), BPF_F_LOCK) },
        EINVAL
    );
}

#[test]
fn percpu_array_slots() {
    let m = Map::create(&MapDef::new(MapType::PercpuArray, 4, 4, 2), 3).unwrap();
    assert_eq!(m.host_value_size(), 3 * 8);
    std::thread::scope(|s| {
        for cpu in 0..3u32 {
            let m = &m;
            s.spawn(move || {
                set_current_cpu(cpu);
                let v = (100 + cpu).to_ne_bytes();
                assert_eq!(unsafe { m.update(k(1).as_ptr(), v.as_ptr(), 0) }, 0);
                let p = unsafe { m.lookup(k(1).as_ptr()) };
                assert_eq!(unsafe { ptr::read(p as *const u32) }, 100 + cpu);
            });
        }
    });
    let slots = m.lookup_percpu_values(&k(1)).unwrap();
    assert_eq!(
        slots,
        vec![k(100).to_vec(), k(101).to_vec(), k(102).to_vec()]
    );
    unsafe {
        let p2 = m.lookup_percpu_elem(k(1).as_ptr(), 2);
        assert_eq!(ptr::read(p2 as *const u32), 102);
        assert!(m.lookup_percpu_elem(k(1).as_ptr(), 3).is_null());
        assert!(m.lookup_percpu_elem(k(2).as_ptr(), 0).is_null());
        assert_eq!(
            m.update(k(1).as_ptr(), [0u8; 4].as_ptr(), BPF_F_LOCK),
            EINVAL
        );
    }
    let mut all = vec![0u8; 24];
    for c in 0..3 {
        all[c * 8..c * 8 + 4].copy_from_slice(&k(7 + c as u32));
    }
    m.update_value(&k(0), &all, BPF_EXIST).unwrap();
    assert_eq!(m.lookup_value(&k(0)).unwrap(), all);
    assert_eq!(
        m.update_value(&k(0), &all, BPF_NOEXIST),
        Err(MapError::Exists)
    );
    assert!(m.array_layout().unwrap().cpu_stride >= 16);
    // A non-percpu map has no per-CPU view.
    assert!(unsafe { array(4, 2).lookup_percpu_elem(k(0).as_ptr(), 0) }.is_null());
}

#[test]
fn percpu_isolation_under_threads() {
    let m = Map::create(&MapDef::new(MapType::PercpuArray, 4, 8, 1), 4).unwrap();
    let h = Map::create(&MapDef::new(MapType::PercpuHash, 4, 8, 4), 4).unwrap();
    h.update_value(&k(5), &[0; 32], 0).unwrap();
    std::thread::scope(|s| {
        for cpu in 0..4u32 {
            let (m, h) = (&m, &h);
            s.spawn(move || {
                set_current_cpu(cpu);
                for _ in 0..10_000 * (cpu + 1) {
                    for map in [m, h] {
                        let key = if std::ptr::eq(map, m) { k(0) } else { k(5) };
                        let p = unsafe { map.lookup(key.as_ptr()) } as *mut u64;
                        unsafe { *p += 1 };
                    }
                }
            });
        }
    });
    for (map, key) in [(&m, k(0)), (&h, k(5))] {
        let v: Vec<u64> = map
            .lookup_percpu_values(&key)
            .unwrap()
            .iter()
            .map(|b| u64::from_ne_bytes(b[..8].try_into().unwrap()))
            .collect();
        assert_eq!(v, vec![10_000, 20_000, 30_000, 40_000]);
    }
}

fn hash(t: MapType, ks: u32, vs: u32, max: u32) -> MapHandle {
    Map::create(&MapDef::new(t, ks, vs, max), 2).unwrap()
}

#[test]
fn hash_flags_and_errnos() {
    for t in [MapType::Hash, MapType::PercpuHash] {
        let m = hash(t, 4, 8, 2);
        let v = 5u64.to_ne_bytes();
        unsafe {
            assert!(m.lookup(k(1).as_ptr()).is_null());
            assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_EXIST), ENOENT);
            assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_NOEXIST), 0);
            assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_NOEXIST), EEXIST);
            assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_EXIST), 0);
            assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), 3), EINVAL);
            assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), 1 << 10), EINVAL);
            assert_eq!(m.update(k(2).as_ptr(), v.as_ptr(), BPF_ANY), 0);
            // Full: new keys fail with E2BIG, existing keys still update.
            assert_eq!(m.update(k(3).as_ptr(), v.as_ptr(), BPF_ANY), E2BIG);
            assert_eq!(m.update(k(3).as_ptr(), v.as_ptr(), BPF_EXIST), ENOENT);
            assert_eq!(m.update(k(2).as_ptr(), v.as_ptr(), BPF_NOEXIST), EEXIST);
            assert_eq!(
                m.update(k(2).as_ptr(), 9u64.to_ne_bytes().as_ptr(), BPF_ANY),
                0
            );
            assert_eq!(read_u64(m.lookup(k(2).as_ptr())), 9);
            assert_eq!(m.len(), Some(2));
            assert_eq!(m.delete(k(3).as_ptr()), ENOENT);
            assert_eq!(m.delete(k(2).as_ptr()), 0);
            assert!(m.lookup(k(2).as_ptr()).is_null());
            assert_eq!(m.delete(k(2).as_ptr()), ENOENT);
            assert_eq!(m.update(k(3).as_ptr(), v.as_ptr(), BPF_ANY), 0);
            assert_eq!(m.len(), Some(2));
            assert_eq!(m.pop(ptr::null_mut()), -95);
        }
        assert_eq!(m.delete_value(&k(9)), Err(MapError::NotFound));
        assert_eq!(
            m.update_value(&k(9), &vec![0; m.host_value_size()], 0),
            Err(MapError::Full)
        );
    }
}

#[test]
fn hash_key_sizes_and_iteration() {
    for ks in [1u32, 3, 5, 8, 13, 40] {
        let m = hash(MapType::Hash, ks, 12, 64);
        let key = |i: u32| -> Vec<u8> { (0..ks).map(|b| (i.wrapping_mul(31) + b) as u8).collect() };
        for i in 0..50u32 {
            let mut v = vec![0u8; 12];
            v[..4].copy_from_slice(&i.to_ne_bytes());
            m.update_value(&key(i), &v, BPF_NOEXIST)
                .unwrap_or_else(|e| panic!("ks {ks} i {i}: {e}"));
        }
        // Keys of 1 byte: 50 distinct values of (i*31) as u8.
        let mut seen: Vec<Vec<u8>> = m.keys().collect();
        assert_eq!(seen.len(), 50, "ks {ks}");
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 50);
        for i in 0..50 {
            let v = m.lookup_value(&key(i)).unwrap();
            assert_eq!(&v[..4], &i.to_ne_bytes());
            let p = unsafe { m.lookup(key(i).as_ptr()) };
            assert_eq!(p as usize % 8, 0);
        }
        // get_next_key of an absent key restarts from the first key.
        let mut absent = key(1000);
        absent[0] ^= 0xff;
        if m.lookup_value(&absent).is_err() {
            assert_eq!(
                m.next_key(Some(&absent)).unwrap(),
                m.next_key(None).unwrap()
            );
        }
        for i in 0..50 {
            m.delete_value(&key(i)).unwrap();
        }
        assert_eq!(m.next_key(None).unwrap(), None);
        assert_eq!(m.keys().count(), 0);
        assert!(m.is_empty());
    }
}

#[test]
fn hash_replace_keeps_old_pointer_valid() {
    let m = hash(MapType::Hash, 4, 8, 4);
    m.update_value(&k(1), &1u64.to_ne_bytes(), 0).unwrap();
    let old = unsafe { m.lookup(k(1).as_ptr()) };
    m.update_value(&k(1), &2u64.to_ne_bytes(), 0).unwrap();
    let new = unsafe { m.lookup(k(1).as_ptr()) };
    assert_ne!(old, new, "replacement publishes a new element (as Linux)");
    assert_eq!(
        read_u64(old),
        1,
        "a reader of the old element sees a whole old value"
    );
    assert_eq!(read_u64(new), 2);
    assert!(m.owns_ptr(old) && m.owns_ptr(new));
    // Percpu hash updates in place.
    let p = hash(MapType::PercpuHash, 4, 8, 4);
    p.update_value(&k(1), &[1; 16], 0).unwrap();
    let a = unsafe { p.lookup(k(1).as_ptr()) };
    unsafe { p.update(k(1).as_ptr(), [2u8; 8].as_ptr(), 0) };
    assert_eq!(a, unsafe { p.lookup(k(1).as_ptr()) });
    assert_eq!(read_u64(a), u64::from_ne_bytes([2; 8]));
}

#[test]
fn percpu_hash_init_and_host_views() {
    let m = Map::create(&MapDef::new(MapType::PercpuHash, 4, 4, 8), 3).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            set_current_cpu(1);
            assert_eq!(unsafe { m.update(k(1).as_ptr(), k(77).as_ptr(), 0) }, 0);
        });
    });
    assert_eq!(
        m.lookup_percpu_values(&k(1)).unwrap(),
        vec![vec![0; 4], k(77).to_vec(), vec![0; 4]],
        "other CPUs' slots are zeroed when a program creates the element"
    );
    unsafe {
        assert_eq!(
            ptr::read(m.lookup_percpu_elem(k(1).as_ptr(), 1) as *const u32),
            77
        );
        assert!(m.lookup_percpu_elem(k(1).as_ptr(), 3).is_null());
    }
    let v = m.lookup_and_delete(&k(1), 0).unwrap();
    assert_eq!(v.len(), 24);
    assert_eq!(&v[8..12], &k(77));
    assert_eq!(m.lookup_value(&k(1)), Err(MapError::NotFound));
}

#[test]
fn hash_lookup_and_delete() {
    let m = hash(MapType::Hash, 4, 4, 4);
    m.update_value(&k(1), &k(11), 0).unwrap();
    assert_eq!(m.lookup_and_delete(&k(1), 0).unwrap(), k(11));
    assert_eq!(m.lookup_and_delete(&k(1), 0), Err(MapError::NotFound));
    assert!(matches!(
        m.lookup_and_delete(&k(1), BPF_F_LOCK),
        Err(MapError::InvalidFlags { .. })
    ));
    let a = array(4, 2);
    assert_eq!(a.lookup_and_delete(&k(0), 0).unwrap_err().errno(), 524);
}

#[test]
fn lru_keeps_referenced_keys() {
    let m = hash(MapType::LruHash, 4, 8, 256);
    for i in 0..256u32 {
        assert_eq!(
            unsafe { m.update(k(i).as_ptr(), (i as u64).to_ne_bytes().as_ptr(), 0) },
            0
        );
    }
    assert_eq!(m.len(), Some(256));
    for i in 0..128u32 {
        assert!(!unsafe { m.lookup(k(i).as_ptr()) }.is_null());
    }
    // Map is full: the next insert evicts unreferenced elements only.
    assert_eq!(
        unsafe { m.update(k(1000).as_ptr(), [0u8; 8].as_ptr(), 0) },
        0
    );
    let len = m.len().unwrap();
    assert!(len <= 256 && len > 128, "len {len}");
    for i in 0..128u32 {
        assert_eq!(
            m.lookup_value(&k(i)).unwrap(),
            (i as u64).to_ne_bytes(),
            "key {i}"
        );
    }
    assert!(m.lookup_value(&k(1000)).is_ok());
    let evicted = (128..256u32)
        .filter(|i| m.lookup_value(&k(*i)).is_err())
        .count();
    assert_eq!(evicted as u32, 256 + 1 - len);
    // Keep inserting: never fails, never exceeds max_entries.
    for i in 2000..3000u32 {
        assert_eq!(unsafe { m.update(k(i).as_ptr(), [1u8; 8].as_ptr(), 0) }, 0);
        assert!(m.len().unwrap() <= 256);
    }
    assert_eq!(m.keys().count() as u32, m.len().unwrap());
}

#[test]
fn lru_flags_and_percpu() {
    for t in [MapType::LruHash, MapType::LruPercpuHash] {
        let m = hash(t, 4, 8, 4);
        let v = [3u8; 8];
        unsafe {
            assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_EXIST), ENOENT);
            assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_NOEXIST), 0);
            assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_NOEXIST), EEXIST);
            assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_F_LOCK), EINVAL);
            assert_eq!(m.update(k(1).as_ptr(), v.as_ptr(), BPF_EXIST), 0);
            assert_eq!(read_u64(m.lookup(k(1).as_ptr())), u64::from_ne_bytes(v));
            assert_eq!(m.delete(k(1).as_ptr()), 0);
            assert_eq!(m.delete(k(1).as_ptr()), ENOENT);
        }
        assert_eq!(m.len(), Some(0));
    }
    // Per-CPU LRU lists: max_entries rounded up to a multiple of ncpus.
    let def = MapDef::new(MapType::LruHash, 4, 8, 10).with_flags(BPF_F_NO_COMMON_LRU);
    let m = Map::create(&def, 4).unwrap();
    assert_eq!(m.max_entries(), 12);
    std::thread::scope(|s| {
        for cpu in 0..4u32 {
            let m = &m;
            s.spawn(move || {
                set_current_cpu(cpu);
                for i in 0..100u32 {
                    let key = k(cpu * 1000 + i);
                    assert_eq!(unsafe { m.update(key.as_ptr(), [0u8; 8].as_ptr(), 0) }, 0);
                    assert!(!unsafe { m.lookup(key.as_ptr()) }.is_null());
                }
            });
        }
    });
    // Each CPU owns 3 elements, so at most 3 keys per CPU survive.
    assert!(m.len().unwrap() <= 12);
    for cpu in 0..4u32 {
        let alive = (0..100)
            .filter(|i| m.lookup_value(&k(cpu * 1000 + i)).is_ok())
            .count();
        assert!((1..=3).contains(&alive), "cpu {cpu}: {alive}");
        assert!(
            m.lookup_value(&k(cpu * 1000 + 99)).is_ok(),
            "newest key of cpu {cpu} survives"
        );
    }
}

#[test]
fn for_each_elem() {
    let m = hash(MapType::Hash, 4, 4, 16);
    for i in 0..10 {
        m.update_value(&k(i), &k(i * 2), 0).unwrap();
    }
    let mut sum = 0;
    let n = m
        .for_each_elem(|key, val| {
            let (kk, vv) = unsafe { (ptr::read(key as *const u32), ptr::read(val as *const u32)) };
            assert_eq!(vv, kk * 2);
            sum += kk;
            true
        })
        .unwrap();
    assert_eq!((n, sum), (10, 45));
    assert_eq!(m.for_each_elem(|_, _| false), Some(1));
    let a = array(4, 5);
    assert_eq!(a.for_each_elem(|_, _| true), Some(5));
}

#[test]
fn map_pointer_round_trip() {
    let m = array(4, 1);
    let p = m.as_prog_ptr();
    let back = unsafe { Map::from_prog_ptr(p) };
    assert_eq!(back.id(), m.id());
    assert_ne!(array(4, 1).id(), m.id());
    assert_eq!(MapType::from_id(27).unwrap(), MapType::RingBuf);
    assert_eq!(MapType::LruPercpuHash.name(), "lru_percpu_hash");
}

#[test]
fn unaligned_keys_and_values() {
    let mut buf = [0u8; 64];
    let h = hash(MapType::Hash, 12, 9, 8);
    let a = array(9, 8);
    for off in 1..8usize {
        for (i, b) in buf[off..off + 12].iter_mut().enumerate() {
            *b = (off * 16 + i) as u8;
        }
        for (i, b) in buf[32 + off..32 + off + 9].iter_mut().enumerate() {
            *b = (off + i) as u8;
        }
        unsafe {
            let key = buf.as_ptr().add(off);
            let val = buf.as_ptr().add(32 + off);
            assert_eq!(h.update(key, val, BPF_NOEXIST), 0);
            let p = h.lookup(key);
            assert_eq!(
                std::slice::from_raw_parts(p, 9),
                &buf[32 + off..32 + off + 9]
            );
            let idx = [0u8, off as u8, 0, 0, 0];
            assert_eq!(a.update(idx.as_ptr().add(1), val, 0), 0);
            let q = a.lookup(idx.as_ptr().add(1));
            assert_eq!(
                std::slice::from_raw_parts(q, 9),
                &buf[32 + off..32 + off + 9]
            );
        }
    }
    assert_eq!(h.len(), Some(7));
}
