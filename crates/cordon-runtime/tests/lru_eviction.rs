//! LRU eviction order, derived by hand from Linux's `bpf_lru_list.c` (the
//! kernel comparison is in `lru_linux.rs` and tests/bpf/lru_evict.c): refill
//! batches of `clamp(max_entries / ncpus / 2, 1, 128)` for the common LRU,
//! reference bits from program lookups, per-CPU lists of
//! `BPF_F_NO_COMMON_LRU` shrunk by up to 4, the allocation-before-check of
//! `htab_lru_map_update_elem`, and safety under concurrent use.

use std::collections::BTreeSet;

use cordon_runtime::maps::flags::BPF_F_NO_COMMON_LRU;
use cordon_runtime::maps::*;

const ENOENT: i64 = -2;
const EEXIST: i64 = -17;
const EINVAL: i64 = -22;

fn k(i: u32) -> [u8; 4] {
    i.to_ne_bytes()
}

fn lru(t: MapType, flags: u32, max: u32, ncpus: u32) -> MapHandle {
    Map::create(&MapDef::new(t, 4, 8, max).with_flags(flags), ncpus).unwrap()
}

/// Program-side update of `key` with value `key` on the current CPU.
fn put(m: &Map, key: u32, flags: u64) -> i64 {
    let v = vec![key as u8; m.host_value_size().min(8)];
    let mut value = [0u8; 8];
    value[..v.len()].copy_from_slice(&v);
    unsafe { m.update(k(key).as_ptr(), value.as_ptr(), flags) }
}

/// Program-side lookup (sets the reference bit).
fn touch(m: &Map, key: u32) -> bool {
    !unsafe { m.lookup(k(key).as_ptr()) }.is_null()
}

fn keys(m: &Map) -> BTreeSet<u32> {
    m.keys()
        .map(|b| u32::from_ne_bytes(b[..4].try_into().unwrap()))
        .collect()
}

fn set(ranges: &[std::ops::RangeInclusive<u32>]) -> BTreeSet<u32> {
    ranges.iter().flat_map(|r| r.clone()).collect()
}

#[test]
fn common_lru_evicts_the_oldest_unreferenced_batch() {
    set_current_cpu(0);
    // 2 CPUs: refill batch 128 / 2 / 2 = 32.
    let m = lru(MapType::LruHash, 0, 128, 2);
    for i in 0..128 {
        assert_eq!(put(&m, i, BPF_ANY), 0);
    }
    assert_eq!(m.len(), Some(128));
    for i in 0..16 {
        assert!(touch(&m, i));
    }
    // Full: the next insert refills 32 nodes from the inactive tail, skipping
    // (and activating) the referenced keys 0..16.
    assert_eq!(put(&m, 128, BPF_ANY), 0);
    assert_eq!(keys(&m), set(&[0..=15, 48..=128]));
    // The other 31 nodes of the batch take the next inserts without eviction.
    for i in 129..160 {
        assert_eq!(put(&m, i, BPF_ANY), 0);
    }
    assert_eq!(m.len(), Some(128));
    assert_eq!(put(&m, 160, BPF_ANY), 0);
    assert_eq!(keys(&m), set(&[0..=15, 80..=160]));
}

#[test]
fn refill_batch_follows_the_cpu_count() {
    set_current_cpu(0);
    for (ncpus, evicted) in [(1, 64), (2, 32), (4, 16), (64, 1)] {
        let m = lru(MapType::LruHash, 0, 128, ncpus);
        for i in 0..=128 {
            assert_eq!(put(&m, i, BPF_ANY), 0);
        }
        assert_eq!(keys(&m), set(&[evicted..=128]), "{ncpus} CPUs");
    }
}

#[test]
fn per_cpu_lists_evict_only_their_own_nodes() {
    // 8 nodes, 2 CPUs: 4 each.
    let m = lru(MapType::LruHash, BPF_F_NO_COMMON_LRU, 8, 2);
    set_current_cpu(1);
    for i in 100..104 {
        assert_eq!(put(&m, i, BPF_ANY), 0);
    }
    set_current_cpu(0);
    for i in 0..4 {
        assert_eq!(put(&m, i, BPF_ANY), 0);
    }
    assert!(touch(&m, 0));
    // Rotation activates key 0; shrinking frees the other three at once.
    assert_eq!(put(&m, 4, BPF_ANY), 0);
    assert_eq!(keys(&m), set(&[0..=0, 4..=4, 100..=103]));
    assert_eq!(put(&m, 5, BPF_ANY), 0);
    assert_eq!(put(&m, 6, BPF_ANY), 0);
    // Inactive (4, 5, 6) is not smaller than active (0): they go, 0 stays.
    assert_eq!(put(&m, 7, BPF_ANY), 0);
    assert_eq!(keys(&m), set(&[0..=0, 7..=7, 100..=103]));
    set_current_cpu(0);
}

#[test]
fn lru_percpu_hash_per_cpu_lists() {
    let m = lru(MapType::LruPercpuHash, BPF_F_NO_COMMON_LRU, 8, 2);
    set_current_cpu(0);
    for i in 0..4 {
        assert_eq!(put(&m, i, BPF_ANY), 0);
    }
    assert!(touch(&m, 0));
    assert_eq!(put(&m, 4, BPF_ANY), 0);
    assert_eq!(keys(&m), set(&[0..=0, 4..=4]));
    // The value went to CPU 0's slot only.
    let vals = m.lookup_percpu_values(&k(4)).unwrap();
    assert_eq!(vals[0][0], 4);
    assert_eq!(vals[1], vec![0u8; 8]);
}

#[test]
fn noexist_on_a_present_key_is_refused_without_eviction_while_nodes_are_free() {
    set_current_cpu(0);
    for t in [MapType::LruHash, MapType::LruPercpuHash] {
        let m = lru(t, 0, 128, 2);
        for i in 0..100 {
            assert_eq!(put(&m, i, BPF_ANY), 0);
        }
        let before = m.lookup_value(&k(7)).unwrap();
        assert_eq!(put(&m, 7, BPF_NOEXIST), EEXIST, "{t:?}");
        assert_eq!(m.lookup_value(&k(7)).unwrap(), before);
        assert_eq!(m.len(), Some(100));
        // The node taken for the refused insert went back: 28 more fit.
        for i in 100..128 {
            assert_eq!(put(&m, i, BPF_NOEXIST), 0);
        }
        assert_eq!(keys(&m), set(&[0..=127]), "{t:?}");
    }
}

#[test]
fn invalid_flags_are_refused_before_any_eviction() {
    set_current_cpu(0);
    for t in [MapType::LruHash, MapType::LruPercpuHash] {
        let m = lru(t, 0, 128, 2);
        for i in 0..128 {
            assert_eq!(put(&m, i, BPF_ANY), 0);
        }
        for bad in [BPF_F_LOCK, 3, 1 << 8] {
            assert_eq!(put(&m, 1000, bad), EINVAL, "{t:?} flags {bad:#x}");
        }
        assert_eq!(keys(&m), set(&[0..=127]));
    }
}

#[test]
fn allocation_happens_before_the_flag_check_as_in_linux() {
    set_current_cpu(0);
    // lru_hash takes a node (evicting a batch when full) before looking the
    // key up, so refused updates on a full map still evict, exactly as
    // htab_lru_map_update_elem does.
    let m = lru(MapType::LruHash, 0, 128, 2);
    for i in 0..128 {
        assert_eq!(put(&m, i, BPF_ANY), 0);
    }
    assert_eq!(put(&m, 100, BPF_NOEXIST), EEXIST);
    assert_eq!(keys(&m), set(&[32..=127]));
    // The refused update's node is free again: one more insert evicts nothing.
    assert_eq!(put(&m, 500, BPF_ANY), 0);
    assert_eq!(m.len(), Some(97));
    // BPF_EXIST on an absent key: ENOENT after taking a node.
    let m = lru(MapType::LruHash, 0, 128, 2);
    for i in 0..128 {
        assert_eq!(put(&m, i, BPF_ANY), 0);
    }
    assert_eq!(put(&m, 999, BPF_EXIST), ENOENT);
    assert_eq!(keys(&m), set(&[32..=127]));
    // A NOEXIST insert of a key that its own allocation evicted succeeds.
    let m = lru(MapType::LruHash, 0, 128, 2);
    for i in 0..128 {
        assert_eq!(put(&m, i, BPF_ANY), 0);
    }
    assert_eq!(put(&m, 5, BPF_NOEXIST), 0);
    assert_eq!(keys(&m), set(&[5..=5, 32..=127]));

    // lru_percpu_hash takes no node for BPF_EXIST: nothing is evicted.
    let m = lru(MapType::LruPercpuHash, 0, 128, 2);
    for i in 0..128 {
        assert_eq!(put(&m, i, BPF_ANY), 0);
    }
    assert_eq!(put(&m, 999, BPF_EXIST), ENOENT);
    assert_eq!(keys(&m), set(&[0..=127]));
    // Updating a present key in place sets its reference bit.
    assert_eq!(put(&m, 0, BPF_EXIST), 0);
    assert_eq!(put(&m, 128, BPF_ANY), 0);
    assert_eq!(keys(&m), set(&[0..=0, 33..=128]));
}

#[test]
fn replacing_and_deleting_reuse_nodes_without_eviction() {
    set_current_cpu(0);
    let m = lru(MapType::LruHash, 0, 64, 2);
    for round in 0..50u32 {
        for i in 0..64 {
            assert_eq!(put(&m, i, BPF_ANY), 0, "round {round}");
        }
        assert_eq!(keys(&m), set(&[0..=63]), "round {round}");
    }
    for i in 0..64 {
        assert_eq!(m.delete_value(&k(i)), Ok(()));
    }
    assert_eq!(m.len(), Some(0));
    for i in 64..128 {
        assert_eq!(put(&m, i, BPF_NOEXIST), 0);
    }
    assert_eq!(keys(&m), set(&[64..=127]));
}

#[test]
fn concurrent_cpus_keep_the_map_consistent() {
    for t in [MapType::LruHash, MapType::LruPercpuHash] {
        for flags in [0, BPF_F_NO_COMMON_LRU] {
            let m = lru(t, flags, 64, 4);
            std::thread::scope(|s| {
                for cpu in 0..4u32 {
                    let m = &m;
                    s.spawn(move || {
                        set_current_cpu(cpu);
                        let mut x = 0x1234_5678u32 ^ cpu;
                        for _ in 0..20_000 {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            // Shared keys: replacements and deletes of nodes
                            // pending on other CPUs' lists.
                            let key = x % 200;
                            match x >> 29 {
                                0..=4 => {
                                    let r = put(
                                        m,
                                        key,
                                        [BPF_ANY, BPF_NOEXIST, BPF_EXIST][(x % 3) as usize],
                                    );
                                    assert!(r == 0 || r == EEXIST || r == ENOENT, "{r}");
                                }
                                5 | 6 => {
                                    touch(m, key);
                                }
                                _ => {
                                    let _ = m.delete_value(&k(key));
                                }
                            }
                        }
                    });
                }
            });
            let n = m.keys().count() as u32;
            assert_eq!(m.len(), Some(n), "{t:?} flags {flags}");
            assert!(n <= 64);
            for key in keys(&m) {
                let v = m.lookup_value(&k(key)).unwrap();
                assert!(v.chunks(8).all(|c| c[0] == key as u8 || c == [0; 8]));
            }
            // Still fully usable: fill it with fresh keys.
            set_current_cpu(0);
            for i in 1000..1064 {
                assert_eq!(put(&m, i, BPF_ANY), 0);
            }
        }
    }
}
