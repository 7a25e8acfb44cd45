//! Map operation costs: hash lookup/update with 1 and 2 threads, array lookup.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use cordon_runtime::maps::{BPF_ANY, Map, MapDef, MapHandle, MapType};
use criterion::{Criterion, criterion_group, criterion_main};

const ENTRIES: u32 = 10_000;

fn keys(seed: u64) -> Vec<[u8; 4]> {
    let mut x = seed;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % ENTRIES as u64) as u32).to_ne_bytes()
        })
        .collect()
}

fn hash_map() -> MapHandle {
    let m = Map::create(&MapDef::new(MapType::Hash, 4, 8, ENTRIES), 2).unwrap();
    for i in 0..ENTRIES {
        m.update_value(&i.to_ne_bytes(), &(i as u64).to_ne_bytes(), BPF_ANY)
            .unwrap();
    }
    m
}

/// Runs `op` `iters` times on each of `threads` threads at once; returns the
/// wall time, i.e. the per-thread cost of one op while all threads run.
fn run_threads(threads: usize, iters: u64, op: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                cordon_runtime::maps::set_current_cpu(t as u32);
                barrier.wait();
                for i in 0..iters {
                    op(t, i);
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

fn bench(c: &mut Criterion) {
    let m = hash_map();
    let ks = [keys(1), keys(2)];
    let val = 7u64.to_ne_bytes();

    let lookup = |t: usize, i: u64| {
        let k = &ks[t][(i & 4095) as usize];
        black_box(unsafe { m.lookup(k.as_ptr()) });
    };
    let update = |t: usize, i: u64| {
        let k = &ks[t][(i & 4095) as usize];
        black_box(unsafe { m.update(k.as_ptr(), val.as_ptr(), BPF_ANY) });
    };
    c.bench_function("hash_lookup/1_thread", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            lookup(0, i)
        })
    });
    c.bench_function("hash_lookup/2_threads", |b| {
        b.iter_custom(|iters| run_threads(2, iters, &lookup))
    });
    c.bench_function("hash_update/1_thread", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            update(0, i)
        })
    });
    c.bench_function("hash_update/2_threads", |b| {
        b.iter_custom(|iters| run_threads(2, iters, &update))
    });

    let a = Map::create(&MapDef::new(MapType::Array, 4, 8, 1024), 1).unwrap();
    c.bench_function("array_lookup/1_thread", |b| {
        let mut i = 0u32;
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(unsafe { a.lookup(black_box(i.to_ne_bytes()).as_ptr()) })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
