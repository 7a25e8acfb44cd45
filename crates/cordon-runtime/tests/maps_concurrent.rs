//! Concurrent stress tests (2-4 threads) checking invariants of the maps.

use std::collections::HashMap;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cordon_runtime::maps::flags::BPF_F_NO_COMMON_LRU;
use cordon_runtime::maps::*;

const ENOENT: i64 = -2;
const E2BIG: i64 = -7;
const EEXIST: i64 = -17;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn k(i: u32) -> [u8; 4] {
    i.to_ne_bytes()
}

fn read_u64(p: *const u8) -> u64 {
    unsafe { ptr::read_volatile(p as *const u64) }
}

#[test]
fn hash_disjoint_owners_match_model() {
    for t in [MapType::Hash, MapType::PercpuHash] {
        let m = Map::create(&MapDef::new(t, 4, 8, 1024), 4).unwrap();
        let models: Vec<HashMap<u32, u64>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4u32)
                .map(|tid| {
                    let m = &m;
                    s.spawn(move || {
                        set_current_cpu(tid);
                        let mut rng = Rng(0x9e37_79b9 + tid as u64);
                        let mut model = HashMap::new();
                        for step in 0..20_000u64 {
                            let key = tid * 1000 + rng.below(250) as u32;
                            let kb = k(key);
                            let val = ((key as u64) << 32) | step;
                            match rng.below(5) {
                                0 => {
                                    let r = unsafe {
                                        m.update(
                                            kb.as_ptr(),
                                            val.to_ne_bytes().as_ptr(),
                                            BPF_NOEXIST,
                                        )
                                    };
                                    if let std::collections::hash_map::Entry::Vacant(e) =
                                        model.entry(key)
                                    {
                                        assert_eq!(r, 0);
                                        e.insert(val);
                                    } else {
                                        assert_eq!(r, EEXIST);
                                    }
                                }
                                1 => {
                                    let r = unsafe {
                                        m.update(kb.as_ptr(), val.to_ne_bytes().as_ptr(), BPF_ANY)
                                    };
                                    assert_eq!(r, 0, "never full: 4 x 250 keys <= 1024");
                                    model.insert(key, val);
                                }
                                2 => {
                                    let r = unsafe {
                                        m.update(kb.as_ptr(), val.to_ne_bytes().as_ptr(), BPF_EXIST)
                                    };
                                    if let Some(slot) = model.get_mut(&key) {
                                        assert_eq!(r, 0);
                                        *slot = val;
                                    } else {
                                        assert_eq!(r, ENOENT);
                                    }
                                }
                                3 => {
                                    let r = unsafe { m.delete(kb.as_ptr()) };
                                    assert_eq!(
                                        r,
                                        if model.remove(&key).is_some() {
                                            0
                                        } else {
                                            ENOENT
                                        }
                                    );
                                }
                                _ => {
                                    let p = unsafe { m.lookup(kb.as_ptr()) };
                                    match model.get(&key) {
                                        Some(v) => assert_eq!(read_u64(p), *v, "key {key}"),
                                        None => assert!(p.is_null()),
                                    }
                                    // Peek at another thread's key: absent or inside the map.
                                    let other = ((tid + 1) % 4) * 1000 + rng.below(250) as u32;
                                    let q = unsafe { m.lookup(k(other).as_ptr()) };
                                    assert!(q.is_null() || m.owns_ptr(q));
                                }
                            }
                        }
                        model
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total: usize = models.iter().map(|m| m.len()).sum();
        assert_eq!(m.len().unwrap() as usize, total);
        assert_eq!(m.keys().count(), total);
        for (tid, model) in models.iter().enumerate() {
            for (key, v) in model {
                let got = m.lookup_value(&k(*key)).unwrap();
                let slot = if t == MapType::PercpuHash {
                    &got[tid * 8..tid * 8 + 8]
                } else {
                    &got[..8]
                };
                assert_eq!(u64::from_ne_bytes(slot.try_into().unwrap()), *v);
            }
        }
    }
}

#[test]
fn hash_full_contention() {
    let m = Map::create(&MapDef::new(MapType::Hash, 4, 8, 64), 4).unwrap();
    std::thread::scope(|s| {
        for tid in 0..4u64 {
            let m = &m;
            s.spawn(move || {
                let mut rng = Rng(77 + tid);
                for _ in 0..30_000 {
                    let key = k(rng.below(256) as u32);
                    if rng.below(2) == 0 {
                        let r = unsafe { m.update(key.as_ptr(), [1u8; 8].as_ptr(), BPF_ANY) };
                        assert!(r == 0 || r == E2BIG, "update returned {r}");
                    } else {
                        let r = unsafe { m.delete(key.as_ptr()) };
                        assert!(r == 0 || r == ENOENT);
                    }
                    assert!(m.len().unwrap() <= 64);
                }
            });
        }
    });
    assert_eq!(m.keys().count() as u32, m.len().unwrap());
    for key in m.keys() {
        assert_eq!(m.lookup_value(&key).unwrap(), vec![1; 8]);
    }
}

#[test]
fn replaced_key_is_always_visible() {
    let m = Map::create(&MapDef::new(MapType::Hash, 4, 16, 8), 4).unwrap();
    for i in 0..8 {
        m.update_value(&k(i), &[0; 16], 0).unwrap();
    }
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let (m, stop) = (&m, &stop);
            s.spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let v = [n * 2 + w, n * 2 + w];
                    let key = k((n % 8) as u32);
                    assert_eq!(
                        unsafe { m.update(key.as_ptr(), v.as_ptr() as *const u8, BPF_EXIST) },
                        0
                    );
                }
            });
        }
        for r in 0..2u32 {
            let m = &m;
            s.spawn(move || {
                for i in 0..200_000u32 {
                    let key = k((i + r) % 8);
                    let p = unsafe { m.lookup(key.as_ptr()) };
                    assert!(!p.is_null(), "a key being replaced must stay visible");
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(m.len(), Some(8));
}

#[test]
fn stale_pointer_stays_in_map_memory() {
    let m = Map::create(&MapDef::new(MapType::Hash, 4, 8, 32), 4).unwrap();
    let stop = AtomicBool::new(false);
    m.update_value(&k(7), &7u64.to_ne_bytes(), 0).unwrap();
    std::thread::scope(|s| {
        let (m2, stop2) = (&m, &stop);
        s.spawn(move || {
            let mut rng = Rng(5);
            while !stop2.load(Ordering::Relaxed) {
                let key = rng.below(40) as u32;
                unsafe {
                    m2.delete(k(key).as_ptr());
                    m2.update(
                        k(key).as_ptr(),
                        (key as u64).to_ne_bytes().as_ptr(),
                        BPF_ANY,
                    );
                }
            }
        });
        let mut checked = 0;
        for _ in 0..200_000 {
            let p = unsafe { m.lookup(k(7).as_ptr()) };
            if p.is_null() {
                continue;
            }
            // The other thread may delete key 7 and recycle the element for any
            // key: the pointer still refers to a value slot of this map, holding a
            // value some update wrote.
            for _ in 0..10 {
                assert!(m.owns_ptr(p));
                assert!(read_u64(p) < 40);
            }
            checked += 1;
        }
        stop.store(true, Ordering::Relaxed);
        assert!(checked > 0);
    });
}

#[test]
fn lru_under_pressure() {
    for (flags, ncpus) in [(0, 4), (BPF_F_NO_COMMON_LRU, 4)] {
        for t in [MapType::LruHash, MapType::LruPercpuHash] {
            let m = Map::create(&MapDef::new(t, 4, 8, 128).with_flags(flags), ncpus).unwrap();
            std::thread::scope(|s| {
                for tid in 0..4u32 {
                    let m = &m;
                    s.spawn(move || {
                        set_current_cpu(tid);
                        let mut rng = Rng(11 + tid as u64);
                        for i in 0..20_000u32 {
                            let key = tid * 100_000 + (rng.below(400) as u32);
                            let v = (key as u64).to_ne_bytes();
                            assert_eq!(
                                unsafe { m.update(k(key).as_ptr(), v.as_ptr(), BPF_ANY) },
                                0
                            );
                            if i % 3 == 0 {
                                let p = unsafe { m.lookup(k(key).as_ptr()) };
                                // With per-CPU LRU lists no other thread can evict
                                // and recycle this thread's elements; with a common
                                // LRU they can (as in Linux), so only check there.
                                if !p.is_null() && flags == BPF_F_NO_COMMON_LRU {
                                    assert_eq!(read_u64(p), key as u64);
                                }
                                if !p.is_null() {
                                    assert!(m.owns_ptr(p));
                                }
                            }
                            if i % 7 == 0 {
                                let r = unsafe { m.delete(k(key).as_ptr()) };
                                assert!(r == 0 || r == ENOENT);
                            }
                            assert!(m.len().unwrap() <= m.max_entries());
                        }
                    });
                }
            });
            let keys: Vec<Vec<u8>> = m.keys().collect();
            assert_eq!(keys.len() as u32, m.len().unwrap(), "{t} flags {flags}");
            for key in keys {
                let id = u32::from_ne_bytes(key.clone().try_into().unwrap());
                let v = m.lookup_value(&key).unwrap();
                // Per-CPU: the writer's slot holds the key; the others are 0 or the key.
                let ok = v.chunks(8).all(|c| {
                    let x = u64::from_ne_bytes(c.try_into().unwrap());
                    x == id as u64 || (t == MapType::LruPercpuHash && x == 0)
                });
                assert!(ok, "value of key {id} is {v:?}");
            }
        }
    }
}

#[test]
fn ringbuf_producers_and_consumer() {
    let r = Map::create(&MapDef::new(MapType::RingBuf, 0, 0, 1 << 16), 1).unwrap();
    const N: u64 = 20_000;
    let done = AtomicU64::new(0);
    std::thread::scope(|s| {
        for pid in 0..3u64 {
            let (r, done) = (&r, &done);
            s.spawn(move || {
                let mut rng = Rng(pid + 1);
                let mut seq = 0;
                while seq < N {
                    let extra = rng.below(200) as usize;
                    let len = 16 + extra;
                    if rng.below(10) == 0 {
                        let p = r.ringbuf_reserve(len as u64, 0);
                        if !p.is_null() {
                            unsafe { ringbuf_discard(p, 0) };
                        }
                        continue;
                    }
                    let p = r.ringbuf_reserve(len as u64, 0);
                    if p.is_null() {
                        std::thread::yield_now();
                        continue;
                    }
                    unsafe {
                        ptr::write_unaligned(p as *mut u64, pid);
                        ptr::write_unaligned(p.add(8) as *mut u64, seq);
                        for i in 16..len {
                            *p.add(i) = (seq as usize + i) as u8;
                        }
                        ringbuf_submit(p, 0);
                    }
                    seq += 1;
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let (r, done) = (&r, &done);
        s.spawn(move || {
            let mut next = [0u64; 3];
            loop {
                let finished = done.load(Ordering::SeqCst) == 3;
                r.ringbuf_poll(Some(Duration::from_millis(5)), |rec| {
                    let pid = u64::from_ne_bytes(rec[..8].try_into().unwrap());
                    let seq = u64::from_ne_bytes(rec[8..16].try_into().unwrap());
                    assert_eq!(seq, next[pid as usize], "producer {pid} out of order");
                    for (i, b) in rec.iter().enumerate().skip(16) {
                        assert_eq!(*b, (seq as usize + i) as u8);
                    }
                    next[pid as usize] += 1;
                    true
                })
                .unwrap();
                if finished && r.ringbuf_query(ringbuf_flags::BPF_RB_AVAIL_DATA) == 0 {
                    break;
                }
            }
            assert_eq!(next, [N; 3]);
        });
    });
}

#[test]
fn queue_concurrent_push_pop() {
    let q = Map::create(&MapDef::new(MapType::Queue, 0, 8, 64), 1).unwrap();
    let total = AtomicU64::new(0);
    let popped: Vec<Vec<u64>> = std::thread::scope(|s| {
        for p in 0..2u64 {
            let q = &q;
            s.spawn(move || {
                let mut i = 0;
                while i < 10_000 {
                    let v = p << 32 | i;
                    match unsafe { q.push(v.to_ne_bytes().as_ptr(), 0) } {
                        0 => i += 1,
                        E2BIG => std::thread::yield_now(),
                        e => panic!("push {e}"),
                    }
                }
            });
        }
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (q, total) = (&q, &total);
                s.spawn(move || {
                    let mut got = Vec::new();
                    while total.load(Ordering::SeqCst) < 20_000 {
                        let mut v = [0u8; 8];
                        match unsafe { q.pop(v.as_mut_ptr()) } {
                            0 => {
                                got.push(u64::from_ne_bytes(v));
                                total.fetch_add(1, Ordering::SeqCst);
                            }
                            ENOENT => std::thread::yield_now(),
                            e => panic!("pop {e}"),
                        }
                    }
                    got
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut rest = Vec::new();
    while let Ok(v) = q.pop_value() {
        rest.push(u64::from_ne_bytes(v.try_into().unwrap()));
    }
    let mut all: Vec<u64> = popped.iter().flatten().copied().chain(rest).collect();
    for per_popper in &popped {
        // FIFO: each producer's values come out of one popper in increasing order.
        for p in 0..2u64 {
            let seq: Vec<u64> = per_popper
                .iter()
                .filter(|v| *v >> 32 == p)
                .copied()
                .collect();
            assert!(seq.windows(2).all(|w| w[0] < w[1]));
        }
    }
    all.sort();
    let want: Vec<u64> = (0..2u64)
        .flat_map(|p| (0..10_000).map(move |i| p << 32 | i))
        .collect();
    assert_eq!(all, want);
}

#[test]
fn inner_map_replacement_while_programs_run() {
    let tmpl = MapDef::new(MapType::Array, 4, 8, 1);
    let outer = Map::create(
        &MapDef::new(MapType::ArrayOfMaps, 4, 4, 1).with_inner(tmpl.clone()),
        1,
    )
    .unwrap();
    let first = Map::create(&tmpl, 1).unwrap();
    first
        .update_value(&k(0), &(first.id() as u64).to_ne_bytes(), 0)
        .unwrap();
    outer.update_inner_map(&k(0), &first, 0).unwrap();
    let stop = AtomicBool::new(false);
    let last: Arc<std::sync::Mutex<Option<MapHandle>>> = Arc::default();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (outer, stop) = (&outer, &stop);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // A "program run": pinned for its whole duration.
                    let _g = pin();
                    let p = unsafe { outer.lookup(k(0).as_ptr()) };
                    assert!(!p.is_null());
                    let inner = unsafe { Map::from_prog_ptr(p as u64) };
                    for _ in 0..50 {
                        let v = unsafe { inner.lookup(k(0).as_ptr()) };
                        assert_eq!(
                            read_u64(v),
                            inner.id() as u64,
                            "inner map freed while in use"
                        );
                    }
                }
            });
        }
        let (outer, last) = (&outer, &last);
        s.spawn(move || {
            for _ in 0..3000 {
                let m = Map::create(&tmpl, 1).unwrap();
                m.update_value(&k(0), &(m.id() as u64).to_ne_bytes(), 0)
                    .unwrap();
                outer.update_inner_map(&k(0), &m, 0).unwrap();
                *last.lock().unwrap() = Some(m);
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        while last.lock().unwrap().is_none() {}
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
    });
    // The first inner map is released once no pinned reader can see it.
    for _ in 0..10_000 {
        if Arc::strong_count(&first) == 1 {
            break;
        }
        pin().flush();
        std::thread::yield_now();
    }
    assert_eq!(Arc::strong_count(&first), 1);
}

#[test]
fn iteration_during_churn_sees_whole_keys() {
    let m = Map::create(&MapDef::new(MapType::Hash, 8, 8, 128), 2).unwrap();
    let pattern = |i: u64| (i * 0x0101_0101_0101_0101).to_ne_bytes();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let (m, stop) = (&m, &stop);
            s.spawn(move || {
                let mut rng = Rng(99 + t);
                while !stop.load(Ordering::Relaxed) {
                    let key = pattern(rng.below(200));
                    unsafe {
                        if rng.below(2) == 0 {
                            m.update(key.as_ptr(), key.as_ptr(), BPF_ANY);
                        } else {
                            m.delete(key.as_ptr());
                        }
                    }
                }
            });
        }
        let mut seen = 0;
        let mut rounds = 0;
        while seen < 20_000 || rounds < 300 {
            rounds += 1;
            for key in m.keys().take(10_000) {
                assert!(key.iter().all(|b| *b == key[0]), "torn key {key:?}");
                seen += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    for key in m.keys() {
        assert_eq!(m.lookup_value(&key).unwrap(), key);
    }
}
