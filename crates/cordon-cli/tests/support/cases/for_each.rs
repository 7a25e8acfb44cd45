//! for_each_map: `bpf_for_each_map_elem` over array, hash (zero seed) and
//! percpu_array; return values (calls, sums, early stops, deletions, the
//! -EINVAL of non-zero flags) and the maps afterwards (including the order
//! in which hash elements were visited) must equal Linux's.

use super::super::packets::sized;
use super::Case;

/// Operation `op` with parameter `param` (see tests/bpf/for_each_map.c).
fn op(op: u8, param: u8) -> Vec<u8> {
    sized(&[op, param], 64)
}

/// Return values of operation 7 (percpu_hash and lru_hash walks) for the
/// successive parameters `params`, from a model of the two maps (Linux and
/// Cordon run every packet of a case on the same CPU, so per-CPU values add up).
fn op7_model(params: &[u8]) -> Vec<u32> {
    use std::collections::BTreeMap;
    let (mut pcpu, mut lru) = (BTreeMap::new(), BTreeMap::new());
    params
        .iter()
        .map(|&p| {
            for k in 1..=u64::from(p).min(30) {
                pcpu.insert(k, k);
                lru.entry(k).or_insert(k);
            }
            // The program returns the percpu_hash sum plus the running sum
            // after both walks: 2 × percpu_hash + lru.
            let mut sum = 0u64;
            for (weight, m) in [(2, &mut pcpu), (1, &mut lru)] {
                for (k, v) in m.iter_mut() {
                    *v += 1;
                    sum += weight * *k * *v;
                }
            }
            ((pcpu.len() as u32) << 24) | ((lru.len() as u32) << 16) | (sum as u32 & 0xffff)
        })
        .collect()
}

pub fn for_each_cases() -> Vec<Case> {
    vec![
        // Array: three full walks adding key + 1 to every value, early
        // stops at keys 5, 15 and never (200), non-zero flags, then two
        // per-CPU walks.
        Case::new(
            "for_each_map.o",
            "for_each",
            vec![
                op(0, 0),
                op(0, 0),
                op(0, 0),
                op(3, 5),
                op(3, 15),
                op(3, 0),
                op(3, 200),
                op(5, 1),
                op(5, 0),
                op(2, 0),
                op(2, 0),
            ],
        )
        .named("array")
        .expect(|i, _| {
            // calls << 16 | Σ values (after the k-th walk each value is k·(key+1)).
            let walk = |k: u32| 16 << 16 | (k * (1..=16).sum::<u32>()) & 0xffff;
            [
                walk(1),
                walk(2),
                walk(3),
                6,
                16,
                1,
                16,
                -22i32 as u32,
                16 + 16 * 1000,
                8 << 16 | 80,
                8 << 16 | 160,
            ][i]
        })
        .maps(&["arr", "pcpu"]),
        // Hash: walks of an empty map, of 10, 25 and 40 keys (order
        // recorded), early stops, and deleting the odd keys from inside the
        // callback (the walk goes on past the deleted element).
        Case::new(
            "for_each_map.o",
            "for_each",
            vec![
                op(6, 3),
                op(4, 0),
                op(1, 10),
                op(6, 4),
                op(1, 25),
                op(6, 7),
                op(4, 0),
                op(6, 100),
                op(4, 0),
                op(1, 40),
                op(6, 33),
            ],
        )
        .named("hash")
        .expect(|i, _| {
            let full = |n: u32| n << 16 | (1..=n).map(|k| 3 * k * k).sum::<u32>() & 0xffff;
            [
                0,
                0,
                full(10),
                4,
                full(25),
                7,
                25 << 8 | 13,
                12,
                12 << 8,
                full(40),
                33,
            ][i]
        })
        .maps(&["hash", "order"]),
        // percpu_hash and lru_hash walks (value writes, lru order recorded),
        // then a walk of percpu_array from inside each hash callback.
        Case::new(
            "for_each_map.o",
            "for_each",
            vec![
                op(7, 5),
                op(7, 20),
                op(7, 30),
                op(7, 3),
                op(1, 12),
                op(8, 0),
                op(4, 0),
                op(8, 0),
            ],
        )
        .named("percpu_lru_nested")
        .expect(|i, _| {
            let op7 = op7_model(&[5, 20, 30, 3]);
            let full12 = 12 << 16 | (1..=12u32).map(|k| 3 * k * k).sum::<u32>() & 0xffff;
            [
                op7[0],
                op7[1],
                op7[2],
                op7[3],
                full12,
                12 << 16 | 50,
                12 << 8 | 6,
                6 << 16 | 24,
            ][i]
        })
        .maps(&["pcpu_hash", "lru", "order", "hash", "pcpu"]),
    ]
}
