//! LRU maps against the kernel's: the same pseudo-random host-side updates
//! (`BPF_ANY` / `BPF_NOEXIST` / `BPF_EXIST`, replacements set the reference
//! bit as in Linux) and deletes, from a thread pinned to CPU 0, on a Linux
//! map (bpf syscall) and a Cordon map with as many CPU slots as Linux has
//! possible CPUs. Every return code and, periodically, the full contents
//! (keys and every CPU's value) must be equal. Skipped without bpf().

use cordon_linux::{Map as KMap, MapSpec as KSpec, MapType as KType, require};
use cordon_runtime::maps::flags::BPF_F_NO_COMMON_LRU;
use cordon_runtime::maps::{Map, MapDef, MapType, set_current_cpu};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
}

type Contents = Vec<(Vec<u8>, Vec<u8>)>;

fn kernel_contents(m: &KMap) -> Contents {
    let mut out: Contents = m
        .keys()
        .unwrap()
        .into_iter()
        .filter_map(|k| {
            let v = if m.map_type().is_per_cpu() {
                m.lookup_per_cpu(&k).unwrap()?.concat()
            } else {
                m.lookup(&k).unwrap()?
            };
            Some((k, v))
        })
        .collect();
    out.sort();
    out
}

fn cordon_contents(m: &Map) -> Contents {
    let mut out: Contents = m
        .keys()
        .filter_map(|k| {
            let v = if m.map_type().is_percpu() {
                m.lookup_percpu_values(&k).ok()?.concat()
            } else {
                m.lookup_value(&k).ok()?
            };
            Some((k, v))
        })
        .collect();
    out.sort();
    out
}

/// Runs `ops` operations on keys below `space`; panics on the first
/// difference. With `spread`, each operation runs on a pseudo-random CPU
/// (the thread is re-pinned and Cordon's CPU slot follows), which exercises
/// the other CPUs' local lists, stealing and frees of nodes pending on
/// another CPU. Returns how many keys were evicted on the Linux side
/// (successful inserts minus deletes minus the final size), to show the
/// run actually exercised eviction.
fn compare(
    t: MapType,
    flags: u32,
    max: u32,
    seed: u64,
    ops: usize,
    space: u32,
    spread: bool,
) -> Option<i64> {
    cordon_linux::available().ok()?;
    cordon_linux::pin_to_cpu(0).ok()?;
    set_current_cpu(0);
    let ncpus = cordon_linux::possible_cpus().ok()?;
    let kmap = KMap::create(&KSpec::new(KType(t as u32), 4, 8, max).with_flags(flags)).ok()?;
    let cmap = Map::create(&MapDef::new(t, 4, 8, max).with_flags(flags), ncpus as u32).unwrap();
    let vsize = kmap.value_buf_size().unwrap();
    assert_eq!(vsize, cmap.host_value_size());
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (mut inserts, mut deletes) = (0i64, 0i64);
    for i in 0..ops {
        let r = rng.next();
        if spread {
            let cpu = (r >> 8) as usize % ncpus;
            cordon_linux::pin_to_cpu(cpu).ok()?;
            set_current_cpu(cpu as u32);
        }
        let key = (r % space).to_ne_bytes();
        let what = format!("{t:?} flags {flags} max {max} seed {seed} op {i}");
        let (k_res, c_res) = match (r >> 20) % 8 {
            0..=5 => {
                let uflags = [0u64, 0, 0, 1, 2, 0][((r >> 24) % 6) as usize];
                let mut value = vec![0u8; vsize];
                for (n, chunk) in value.chunks_mut(8).enumerate() {
                    chunk.copy_from_slice(&((i as u64) << 8 | n as u64).to_ne_bytes());
                }
                let present = cmap.lookup_value(&key).is_ok();
                let k = kmap.update(&key, &value, uflags).map_err(|e| e.errno());
                let c = cmap
                    .update_value(&key, &value, uflags)
                    .map_err(|e| Some(e.errno()));
                if k.is_ok() && !present {
                    inserts += 1;
                }
                (k, c)
            }
            _ => {
                let k = kmap.delete(&key).unwrap();
                let c = cmap.delete_value(&key).is_ok();
                assert_eq!(k, c, "{what}: delete found the key (Linux vs Cordon)");
                if k {
                    deletes += 1;
                }
                (Ok(()), Ok(()))
            }
        };
        assert_eq!(k_res, c_res, "{what}: Linux vs Cordon result");
        if i % 64 == 63 || i + 1 == ops {
            let (k, c) = (kernel_contents(&kmap), cordon_contents(&cmap));
            if k != c {
                let only = |a: &Contents, b: &Contents| -> Vec<(Vec<u8>, Vec<u8>)> {
                    a.iter().filter(|e| !b.contains(e)).cloned().collect()
                };
                panic!(
                    "{what}: contents differ ({} vs {} entries); only in Linux {:?}; only in Cordon {:?}",
                    k.len(),
                    c.len(),
                    only(&k, &c),
                    only(&c, &k)
                );
            }
        }
    }
    let left = kernel_contents(&kmap).len() as i64;
    Some(inserts - deletes - left)
}

fn variants() -> [(MapType, u32); 4] {
    [
        (MapType::LruHash, 0),
        (MapType::LruHash, BPF_F_NO_COMMON_LRU),
        (MapType::LruPercpuHash, 0),
        (MapType::LruPercpuHash, BPF_F_NO_COMMON_LRU),
    ]
}

#[test]
fn lru_host_operations_match_linux() {
    require!(cordon_linux::available());
    let mut evicted = 0;
    for (t, flags) in variants() {
        for (max, space) in [(128, 300), (64, 80), (37, 100), (5, 12), (1000, 1500)] {
            for seed in 1..=3 {
                match compare(t, flags, max, seed, 1500, space, false) {
                    Some(e) => evicted += e,
                    None => {
                        cordon_linux::report_skip("bpf() or CPU pinning unavailable");
                        return;
                    }
                }
            }
        }
    }
    assert!(
        evicted > 1000,
        "only {evicted} evictions: the runs do not test eviction"
    );
}

#[test]
fn lru_refill_batch_sizes_match_linux() {
    require!(cordon_linux::available());
    // max_entries around the points where the common LRU's refill batch
    // (max_entries / ncpus / 2, clamped to 1..=128) changes.
    for (t, flags) in variants() {
        for max in [1, 2, 3, 4, 7, 8, 255, 256, 257, 600] {
            if compare(
                t,
                flags,
                max,
                max as u64,
                4 * max as usize + 64,
                max + max / 2 + 2,
                false,
            )
            .is_none()
            {
                cordon_linux::report_skip("bpf() or CPU pinning unavailable");
                return;
            }
        }
    }
}

#[test]
fn lru_host_operations_on_several_cpus_match_linux() {
    require!(cordon_linux::available());
    let ncpus = require!(cordon_linux::possible_cpus());
    if ncpus < 2 {
        cordon_linux::report_skip("one possible CPU: nothing to spread over");
        return;
    }
    let mut evicted = 0;
    for (t, flags) in variants() {
        for (max, space) in [(128, 300), (16, 40), (5, 12), (300, 700)] {
            for seed in 1..=3 {
                match compare(t, flags, max, seed, 2000, space, true) {
                    Some(e) => evicted += e,
                    None => {
                        cordon_linux::report_skip("bpf() or CPU pinning unavailable");
                        return;
                    }
                }
            }
        }
    }
    assert!(evicted > 1000, "only {evicted} evictions");
}
