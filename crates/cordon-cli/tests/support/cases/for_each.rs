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
    ]
}
