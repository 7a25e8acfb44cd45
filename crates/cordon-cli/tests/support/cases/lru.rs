//! lru_evict: four LRU maps (common and BPF_F_NO_COMMON_LRU lists, plain and
//! per-CPU values) driven past capacity by the same operations; which keys
//! survive, their values and the per-map counters must equal Linux's.

use super::super::packets::sized;
use super::Case;

const MAPS: &[&str] = &[
    "lru_common",
    "lru_nocommon",
    "lru_pcpu",
    "lru_pcpu_nocommon",
    "lru_stats",
];

/// One run: pattern (0 mixed, 1 fresh keys + hot lookups, 2 deletes of keys
/// 0..ops), seed, operation count, key space (0 = 256).
fn pkt(pattern: u8, seed: u8, ops: u16, space: u8) -> Vec<u8> {
    let [lo, hi] = ops.to_le_bytes();
    sized(&[pattern, seed, lo, hi, space], 64)
}

pub fn lru_cases() -> Vec<Case> {
    vec![
        Case::new(
            "lru_evict.o",
            "lru_evict",
            vec![
                pkt(0, 1, 600, 0),
                pkt(0, 2, 800, 200),
                pkt(0, 3, 1024, 160),
                pkt(1, 4, 300, 0),
                pkt(0, 5, 500, 100),
                pkt(2, 0, 64, 0),
                pkt(0, 6, 700, 0),
            ],
        )
        .named("mixed")
        .maps(MAPS),
        // A hot set of 24 keys inserted first, then streams of fresh keys
        // with a lookup of one hot key every third operation.
        Case::new(
            "lru_evict.o",
            "lru_evict",
            vec![
                pkt(0, 9, 200, 24),
                pkt(1, 1, 1024, 0),
                pkt(1, 2, 1024, 0),
                pkt(0, 10, 300, 24),
                pkt(1, 3, 1024, 0),
            ],
        )
        .named("hot_set")
        .maps(MAPS),
        // Key space just above the capacity: constant thrashing.
        Case::new(
            "lru_evict.o",
            "lru_evict",
            vec![
                pkt(0, 7, 1024, 130),
                pkt(0, 8, 1024, 70),
                pkt(0, 11, 1024, 140),
            ],
        )
        .named("thrash")
        .maps(MAPS),
    ]
}
