//! xdp_redirect_map: bpf_redirect_map into a devmap, a devmap_hash, a cpumap
//! and an (empty) xskmap, with present and absent keys, fallback actions,
//! broadcast flags and flags the map type refuses; program-side devmap
//! lookups. Entries name ifindex 1 (lo, which exists in the kernel) and
//! CPU 0; Linux's test_run returns XDP_REDIRECT without sending.

use super::super::packets::sized;
use super::Case;

const XDP_ABORTED: u32 = 0;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;

/// `struct bpf_devmap_val { ifindex, bpf_prog.fd }` (fd 0: no program).
fn devmap_val(ifindex: u32) -> Vec<u8> {
    [ifindex.to_ne_bytes(), 0u32.to_ne_bytes()].concat()
}

pub fn redirect_map_cases() -> Vec<Case> {
    // (operation, key, flags) -> expected return value
    let runs: &[([u8; 3], u32)] = &[
        ([0, 1, 0], XDP_REDIRECT),
        ([0, 2, 2], XDP_PASS),
        ([0, 2, 1], XDP_DROP),
        ([0, 2, 3], XDP_TX),
        ([0, 2, 0], XDP_ABORTED),
        ([0, 9, 2], XDP_PASS),
        ([0, 1, 0x20], XDP_ABORTED),
        ([0, 1, 0x06], XDP_ABORTED),
        ([0, 2, 0x08], XDP_REDIRECT),
        ([0, 2, 0x18], XDP_REDIRECT),
        ([0, 1, 0x10], XDP_REDIRECT),
        ([1, 5, 0], XDP_REDIRECT),
        ([1, 1, 2], XDP_PASS),
        ([1, 1, 0x0a], XDP_REDIRECT),
        ([2, 0, 0], XDP_REDIRECT),
        ([2, 1, 2], XDP_PASS),
        ([2, 0, 0x08], XDP_ABORTED),
        ([3, 0, 2], XDP_PASS),
        ([3, 0, 0], XDP_ABORTED),
        ([3, 0, 0x08], XDP_ABORTED),
        ([4, 1, 0], 1 << 8),
        ([4, 2, 0], 0xff),
        ([5, 5, 0], 1 << 8),
        ([5, 6, 0], 0xff),
        ([6, 3, 0], XDP_REDIRECT),
        ([7, 0, 2], XDP_REDIRECT),
        ([7, 1, 2], XDP_PASS),
        ([9, 0, 0], XDP_PASS),
    ];
    let packets = runs.iter().map(|(b, _)| sized(b, 64)).collect();
    let expect: Vec<u32> = runs.iter().map(|(_, r)| *r).collect();
    let mut c =
        Case::new("xdp_redirect_map.o", "xdp_redirect_map", packets).expect(move |i, _| expect[i]);
    c.updates = vec![
        ("tx_dev", 1u32.to_ne_bytes().to_vec(), devmap_val(1)),
        ("tx_dev", 3u32.to_ne_bytes().to_vec(), devmap_val(1)),
        ("tx_hash", 5u32.to_ne_bytes().to_vec(), devmap_val(1)),
        (
            "cpus",
            0u32.to_ne_bytes().to_vec(),
            192u32.to_ne_bytes().to_vec(),
        ),
    ];
    vec![c.maps(&["tx_dev", "tx_hash", "cpus"])]
}
