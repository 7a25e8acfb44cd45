//! XDP multi-buffer cases: packets beyond the 3520-byte linear area become
//! page-sized fragments (Linux's test_run, up to 17 of them).

use super::super::packets::*;
use super::{Case, LinuxLoad};

/// Linear area of an XDP test-run packet without metadata.
const LINEAR: usize = 3520;
/// Fragment page size.
const PAGE: usize = 4096;

/// A `len`-byte frame whose bytes 14 and 15 ask xdp_frags.o to trim
/// `32 * trim` and then grow `16 * grow` bytes.
fn frame(len: usize, trim: u8, grow: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i * 7 + (i >> 8)) as u8).collect();
    f[14] = trim;
    f[15] = grow;
    f
}

/// The packet length after xdp_frags.o's `bpf_xdp_adjust_tail` calls, as
/// Linux computes it: (linear length, fragment sizes).
fn after_adjust(len: usize, trim: usize, grow: usize) -> usize {
    let mut linear = len.min(LINEAR);
    let mut frags: Vec<usize> = (linear..len)
        .step_by(PAGE)
        .map(|s| PAGE.min(len - s))
        .collect();
    let total = |l: usize, f: &[usize]| l + f.iter().sum::<usize>();
    if trim > 0 {
        if frags.is_empty() {
            if linear >= trim + 14 {
                linear -= trim;
            }
        } else if trim + 14 <= total(linear, &frags) {
            let mut left = trim;
            while left > 0 {
                match frags.last_mut() {
                    Some(last) if *last <= left => {
                        left -= *last;
                        frags.pop();
                    }
                    Some(last) => {
                        *last -= left;
                        left = 0;
                    }
                    None => {
                        linear -= left;
                        left = 0;
                    }
                }
            }
        }
    }
    if grow > 0 {
        match frags.last_mut() {
            Some(last) if *last + grow <= PAGE => *last += grow,
            Some(_) => {}
            None if linear + grow <= LINEAR => linear += grow,
            None => {}
        }
    }
    total(linear, &frags)
}

pub fn frags_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    // (length, trim / 32, grow / 16); lengths differ: the stats map is keyed by it.
    let plan: [(usize, u8, u8); 12] = [
        (100, 0, 0),
        (101, 1, 2),
        (3520, 0, 3),
        (3521, 0, 3),
        (3522, 0, 0),
        (4000, 16, 0),
        (9000, 50, 100),
        (9001, 0, 150),
        (9002, 0, 200),
        (9003, 255, 10),
        (20000, 130, 1),
        (3520 + 17 * 4096, 3, 0),
    ];
    let packets: Vec<Vec<u8>> = plan.iter().map(|&(l, t, g)| frame(l, t, g)).collect();
    cases.push(
        Case::new("xdp_frags.o", "xdp_frags", packets)
            .maps(&["frag_stats"])
            .expect(|_, p| {
                after_adjust(p.len(), 32 * usize::from(p[14]), 16 * usize::from(p[15])) as u32
            }),
    );
    // The same program loaded with raw bpf() and BPF_F_XDP_HAS_FRAGS from
    // cordon-object's section flags.
    cases.push(
        Case::new(
            "xdp_frags.o",
            "xdp_frags",
            vec![frame(100, 0, 1), frame(6000, 2, 3)],
        )
        .maps(&["frag_stats"])
        .linux(LinuxLoad::Raw)
        .named("raw"),
    );
    // Refused input: one byte beyond 17 fragments (ENOMEM), 13 bytes (EINVAL).
    cases.push(
        Case::new(
            "xdp_frags.o",
            "xdp_frags",
            vec![
                frame(3521 + 17 * 4096, 0, 0),
                sized(&[], 13),
                frame(64, 0, 0),
            ],
        )
        .maps(&["frag_stats"])
        .named("refused"),
    );
    // A plain SEC("xdp") program also gets fragments in Linux's test_run:
    // bpf_xdp_adjust_tail trims the last fragment, data_end stays at 3520.
    cases.push(
        Case::new(
            "xdp_tail_meta.o",
            "xdp_tail_meta",
            vec![sized(&[5], 5000), sized(&[0], 9000), sized(&[7], 3521)],
        )
        .named("frags"),
    );
    cases
}

#[test]
fn model_of_adjust_tail_matches_hand_computed_values() {
    // 4000: one 480-byte fragment; trimming 512 releases it and 32 linear bytes.
    assert_eq!(after_adjust(4000, 512, 0), 3488);
    // 9000: fragments 4096 + 1384; trim 1600 leaves 3880 in the first, whose
    // 216 bytes of tailroom cannot take 1600 more.
    assert_eq!(after_adjust(9000, 1600, 1600), 7400);
    assert_eq!(after_adjust(100, 0, 0), 100);
    assert_eq!(
        after_adjust(100, 90, 0),
        100,
        "would leave fewer than 14 bytes"
    );
}
