//! The workload table: names, fixed inputs and the native entry points
//! compiled from `benches/workloads/workloads.c` by `build.rs`.

use std::ffi::c_void;

/// `__u32 native_<name>(const __u8 *data, __u64 len, void *map)`.
pub type NativeFn = unsafe extern "C" fn(*const u8, u64, *mut c_void) -> u32;

unsafe extern "C" {
    fn native_primes(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_log2(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_switch(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_memcpy(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_strcmp(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_checksum(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_popcount(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_bsearch(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_parse(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_crc32(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_fnv1a(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_unrolled(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_matmul(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_callchain(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_empty(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_hash_map(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_array_map(d: *const u8, len: u64, map: *mut c_void) -> u32;
}

// The same entry points compiled without auto-vectorisation.
unsafe extern "C" {
    fn native_novec_primes(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_log2(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_switch(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_memcpy(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_strcmp(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_checksum(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_popcount(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_bsearch(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_parse(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_crc32(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_fnv1a(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_unrolled(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_matmul(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_callchain(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_empty(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_hash_map(d: *const u8, len: u64, map: *mut c_void) -> u32;
    fn native_novec_array_map(d: *const u8, len: u64, map: *mut c_void) -> u32;
}

/// Map helpers of the native build: the same map implementation
/// (cordon-runtime's) that Cordon's `bpf_map_lookup_elem` uses, called
/// directly.
///
/// # Safety
/// `map` must be a live map's program pointer and `key` valid for its key size.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cordon_bench_map_lookup(
    map: *mut c_void,
    key: *const c_void,
) -> *mut c_void {
    // SAFETY: caller contract (the workloads pass a live map and a stack key).
    unsafe { cordon::maps::abi::bpf_map_lookup_elem(map as u64, key as u64) as *mut c_void }
}

/// See [`cordon_bench_map_lookup`].
///
/// # Safety
/// `map` must be a live map's program pointer, `key` and `value` valid for
/// its key and value sizes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cordon_bench_map_update(
    map: *mut c_void,
    key: *const c_void,
    value: *const c_void,
    flags: u64,
) -> i64 {
    // SAFETY: caller contract.
    unsafe {
        cordon::maps::abi::bpf_map_update_elem(map as u64, key as u64, value as u64, flags) as i64
    }
}

/// One benchmark workload.
#[derive(Clone, Copy)]
pub struct Workload {
    pub name: &'static str,
    pub about: &'static str,
    /// The map the workload uses (object map name), if any.
    pub map: Option<&'static str>,
    pub native: NativeFn,
    /// The same C compiled without auto-vectorisation (BPF has no SIMD).
    pub native_novec: NativeFn,
    pub input: fn() -> Vec<u8>,
}

impl Workload {
    pub fn xdp_name(&self) -> String {
        format!("xdp_{}", self.name)
    }

    pub fn raw_name(&self) -> String {
        format!("raw_{}", self.name)
    }
}

/// The empty program (call overhead), measured separately.
pub const EMPTY: Workload = Workload {
    name: "empty",
    about: "returns XDP_PASS",
    map: None,
    native: native_empty,
    native_novec: native_novec_empty,
    input: input_empty,
};

/// Every timed workload, in table order.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "primes",
        about: "count primes below 500 by trial division (nested loops, div/mod)",
        map: None,
        native: native_primes,
        native_novec: native_novec_primes,
        input: input_primes,
    },
    Workload {
        name: "log2",
        about: "branchy floor(log2) of 256 words",
        map: None,
        native: native_log2,
        native_novec: native_novec_log2,
        input: input_log2,
    },
    Workload {
        name: "switch",
        about: "8-way switch per byte over 512 bytes (a byte-code machine)",
        map: None,
        native: native_switch,
        native_novec: native_novec_switch,
        input: input_random::<512>,
    },
    Workload {
        name: "memcpy",
        about: "copy 8 x 128 bytes of packet to the stack, data-dependent reads back",
        map: None,
        native: native_memcpy,
        native_novec: native_novec_memcpy,
        input: input_random::<1024>,
    },
    Workload {
        name: "strcmp",
        about: "strcmp of 63 pairs of 16-byte records in the packet",
        map: None,
        native: native_strcmp,
        native_novec: native_novec_strcmp,
        input: input_strcmp,
    },
    Workload {
        name: "checksum",
        about: "RFC 1071 Internet checksum over 1500 bytes",
        map: None,
        native: native_checksum,
        native_novec: native_novec_checksum,
        input: input_random::<1500>,
    },
    Workload {
        name: "popcount",
        about: "bit count of 192 64-bit words (SWAR)",
        map: None,
        native: native_popcount,
        native_novec: native_novec_popcount,
        input: input_random::<1536>,
    },
    Workload {
        name: "bsearch",
        about: "256 branch-free binary searches (lower bound, at most 63) in a 64-entry stack table",
        map: None,
        native: native_bsearch,
        native_novec: native_novec_bsearch,
        input: input_bsearch,
    },
    Workload {
        name: "parse",
        about: "Ethernet/VLAN/IPv4/TCP/UDP parsing and flow hash of 32 frames",
        map: None,
        native: native_parse,
        native_novec: native_novec_parse,
        input: input_parse,
    },
    Workload {
        name: "crc32",
        about: "bitwise CRC-32 over 256 bytes",
        map: None,
        native: native_crc32,
        native_novec: native_novec_crc32,
        input: input_random::<256>,
    },
    Workload {
        name: "fnv1a",
        about: "64-bit FNV-1a over 1500 bytes (serial multiply chain)",
        map: None,
        native: native_fnv1a,
        native_novec: native_novec_fnv1a,
        input: input_random::<1500>,
    },
    Workload {
        name: "unrolled",
        about: "FNV-1a over 512 bytes, fully unrolled (≈1,500 instructions of straight-line code)",
        map: None,
        native: native_unrolled,
        native_novec: native_novec_unrolled,
        input: input_random::<512>,
    },
    Workload {
        name: "matmul",
        about: "8x8 u32 matrix product (triple nested loop)",
        map: None,
        native: native_matmul,
        native_novec: native_novec_matmul,
        input: input_random::<512>,
    },
    Workload {
        name: "callchain",
        about: "64 bpf-to-bpf call chains 6 frames deep, stack arrays in every frame",
        map: None,
        native: native_callchain,
        native_novec: native_novec_callchain,
        input: input_random::<512>,
    },
    Workload {
        name: "hash_map",
        about: "128 hash-map update + lookup pairs",
        map: Some("bench_hash"),
        native: native_hash_map,
        native_novec: native_novec_hash_map,
        input: input_random::<512>,
    },
    Workload {
        name: "array_map",
        about: "256 array-map lookups with read-modify-write",
        map: Some("bench_array"),
        native: native_array_map,
        native_novec: native_novec_array_map,
        input: input_random::<256>,
    },
];

/// xorshift64*: fixed inputs, identical on every engine and every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn input_random<const N: usize>() -> Vec<u8> {
    let mut r = Rng::new(N as u64);
    (0..N).map(|_| (r.next() >> 56) as u8).collect()
}

fn input_empty() -> Vec<u8> {
    vec![0u8; 64]
}

fn input_primes() -> Vec<u8> {
    let mut v = vec![0u8; 64];
    v[..2].copy_from_slice(&500u16.to_le_bytes());
    v
}

fn input_log2() -> Vec<u8> {
    let mut r = Rng::new(2);
    let mut v = Vec::with_capacity(1024);
    for _ in 0..256 {
        let w = (r.next() as u32) >> r.below(32);
        v.extend_from_slice(&w.to_le_bytes());
    }
    v
}

fn input_strcmp() -> Vec<u8> {
    let mut r = Rng::new(3);
    let base = b"cordon-benchmark";
    let mut v = vec![0u8; 1024];
    for rec in v.chunks_mut(16) {
        let prefix = r.below(15) as usize;
        rec[..prefix].copy_from_slice(&base[..prefix]);
        let len = prefix + r.below((15 - prefix) as u64 + 1) as usize;
        for b in &mut rec[prefix..len] {
            *b = b'a' + r.below(3) as u8;
        }
        // rec[len..] stays NUL (len <= 15).
    }
    v
}

fn input_bsearch() -> Vec<u8> {
    let mut r = Rng::new(4);
    let mut table: Vec<u32> = (0..64).map(|_| r.next() as u32).collect();
    table.sort_unstable();
    let mut v = Vec::with_capacity(1280);
    for t in &table {
        v.extend_from_slice(&t.to_le_bytes());
    }
    for q in 0..256 {
        // Every fourth query is a table entry (exact hits).
        let key = if q % 4 == 0 {
            table[r.below(64) as usize]
        } else {
            r.next() as u32
        };
        v.extend_from_slice(&key.to_le_bytes());
    }
    v
}

fn input_parse() -> Vec<u8> {
    let mut r = Rng::new(5);
    let mut v = vec![0u8; 2048];
    for (i, f) in v.chunks_mut(64).enumerate() {
        for b in f.iter_mut() {
            *b = (r.next() >> 56) as u8;
        }
        let mut off = 12;
        let kind = i % 8;
        if kind == 5 {
            f[off..off + 2].copy_from_slice(&0x8100u16.to_be_bytes());
            off += 4;
        }
        let ethertype: u16 = if kind == 7 { 0x86dd } else { 0x0800 };
        f[off..off + 2].copy_from_slice(&ethertype.to_be_bytes());
        off += 2;
        let ihl = if kind == 3 { 6 } else { 5 };
        f[off] = 0x40 | ihl;
        f[off + 9] = match kind {
            0 | 2 | 5 => 6,
            1 | 3 => 17,
            _ => 1,
        };
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::{Packet, native};

    fn run_native(name: &str) -> (Vec<u8>, u32) {
        let w = WORKLOADS.iter().find(|w| w.name == name).expect("workload");
        let input = (w.input)();
        let r = native(w, &Packet::new(&input), std::ptr::null_mut());
        (input, r)
    }

    #[test]
    fn inputs_are_fixed_and_fit_an_xdp_frame() {
        for w in WORKLOADS.iter().chain([&EMPTY]) {
            let a = (w.input)();
            assert_eq!(a, (w.input)(), "{}: input must be deterministic", w.name);
            // Linux: XDP test_run needs >= 14 bytes and at most 3520 linear bytes.
            assert!(
                (14..=3520).contains(&a.len()),
                "{}: {} bytes",
                w.name,
                a.len()
            );
        }
    }

    #[test]
    fn native_primes_counts_primes_below_500() {
        let want = (2..500u32)
            .filter(|&i| (2..i).take_while(|j| j * j <= i).all(|j| i % j != 0))
            .count() as u32;
        assert_eq!(want, 95);
        assert_eq!(run_native("primes").1, want);
    }

    #[test]
    fn native_checksum_is_rfc1071() {
        let (input, got) = run_native("checksum");
        let mut sum: u32 = input[..1500]
            .chunks(2)
            .map(|c| u16::from_ne_bytes([c[0], c[1]]) as u32)
            .sum();
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        assert_eq!(got, !sum & 0xffff);
    }

    #[test]
    fn native_crc32_is_ieee_crc32() {
        let (input, got) = run_native("crc32");
        let mut crc = 0xffff_ffffu32;
        for &b in &input[..256] {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
            }
        }
        assert_eq!(got, !crc);
        // Known answer of the algorithm itself: CRC-32("123456789").
        let mut c = 0xffff_ffffu32;
        for &b in b"123456789" {
            c ^= b as u32;
            for _ in 0..8 {
                c = (c >> 1) ^ (0xedb8_8320 & (c & 1).wrapping_neg());
            }
        }
        assert_eq!(!c, 0xcbf4_3926);
    }

    #[test]
    fn native_fnv1a_and_popcount_match_rust() {
        let (input, got) = run_native("fnv1a");
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for &b in &input[..1500] {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        assert_eq!(got, (h ^ (h >> 32)) as u32);
        let (input, got) = run_native("unrolled");
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for &b in &input[..512] {
            h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
        assert_eq!(got, (h ^ (h >> 32)) as u32);
        let (input, got) = run_native("popcount");
        let want: u32 = input[..1536].iter().map(|b| b.count_ones()).sum();
        assert_eq!(got, want);
    }

    #[test]
    fn native_bsearch_is_a_clamped_lower_bound() {
        let (input, got) = run_native("bsearch");
        let word = |i: usize| u32::from_le_bytes(input[4 * i..4 * i + 4].try_into().unwrap());
        let table: Vec<u32> = (0..64).map(word).collect();
        let mut acc = 0u32;
        for q in 0..256 {
            let key = word(64 + q);
            // Six halving steps over 64 entries: the lower bound, at most 63.
            let lo = table.partition_point(|&t| t < key).min(63) as u32;
            acc = acc.wrapping_mul(3).wrapping_add(lo);
        }
        assert_eq!(got, acc);
    }

    #[test]
    fn short_packets_are_refused_by_the_bounds_checks() {
        for w in WORKLOADS.iter().filter(|w| w.map.is_none()) {
            let r = native(w, &Packet::new(&[1u8; 1]), std::ptr::null_mut());
            assert_eq!(r, 0, "{}", w.name);
        }
    }
}
