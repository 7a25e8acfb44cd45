//! `BPF_F_ZERO_SEED` hash maps iterate in the kernel's order: the same host
//! updates and deletes on a Linux map (bpf syscall) and a Cordon map, then
//! the `get_next_key` sequences must be identical (this is the order
//! `bpf_for_each_map_elem` walks). Key sizes cover Linux's word-wise
//! (`jhash2`, multiples of 4) and byte-wise (`jhash`) hashing. Skipped
//! without bpf().

use cordon_linux::{Map as KMap, MapSpec as KSpec, MapType as KType, require};
use cordon_runtime::maps::flags::BPF_F_ZERO_SEED;
use cordon_runtime::maps::{Map, MapDef, MapType};

fn key_of(i: u32, size: usize) -> Vec<u8> {
    // Spread the index over the whole key so every byte matters.
    let x = i.wrapping_mul(0x9e37_79b9) ^ 0x5bd1_e995;
    (0..size)
        .map(|b| (x.rotate_left(b as u32 * 5) >> (b % 4 * 8)) as u8 ^ (i >> (b % 3 * 8)) as u8)
        .collect()
}

fn same_order(t: MapType, key_size: usize, flags: u32) {
    let max = 64u32;
    let kmap = require!(KMap::create(
        &KSpec::new(KType(t as u32), key_size as u32, 8, max).with_flags(flags)
    ));
    let cmap = Map::create(
        &MapDef::new(t, key_size as u32, 8, max).with_flags(flags),
        2,
    )
    .unwrap();
    let vsize = kmap.value_buf_size().unwrap();
    let value = |i: u32| {
        let mut v = vec![0u8; vsize];
        v[..4].copy_from_slice(&i.to_ne_bytes());
        v
    };
    let cvalue = |i: u32| {
        let mut v = vec![0u8; cmap.host_value_size()];
        v[..4].copy_from_slice(&i.to_ne_bytes());
        v
    };
    // Insert 50 keys, replace every third (Linux puts the new element at
    // the head of its bucket), delete every fifth.
    for i in 0..50 {
        kmap.update(&key_of(i, key_size), &value(i), 0).unwrap();
        cmap.update_value(&key_of(i, key_size), &cvalue(i), 0)
            .unwrap();
    }
    for i in (0..50).step_by(3) {
        kmap.update(&key_of(i, key_size), &value(i + 1), 0).unwrap();
        cmap.update_value(&key_of(i, key_size), &cvalue(i + 1), 0)
            .unwrap();
    }
    for i in (0..50).step_by(5) {
        // Short keys repeat, so a key may already be gone: both must agree.
        let k = kmap.delete(&key_of(i, key_size)).unwrap();
        let c = cmap.delete_value(&key_of(i, key_size)).is_ok();
        assert_eq!(k, c, "{t:?} key_size {key_size}: delete {i}");
    }
    let linux = kmap.keys().unwrap();
    let cordon: Vec<Vec<u8>> = cmap.keys().collect();
    assert!(
        linux.len() >= 10,
        "{t:?} key_size {key_size}: {}",
        linux.len()
    );
    assert_eq!(cordon, linux, "{t:?} key_size {key_size}: iteration order");
}

#[test]
fn zero_seed_hash_order_equals_linux() {
    require!(cordon_linux::available());
    for key_size in [4, 8, 12, 16, 20, 1, 2, 3, 5, 6, 7, 13, 14, 15] {
        same_order(MapType::Hash, key_size, BPF_F_ZERO_SEED);
        same_order(MapType::PercpuHash, key_size, BPF_F_ZERO_SEED);
    }
}
