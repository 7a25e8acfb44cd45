//! Queue/stack, ring buffer, prog_array and maps of maps.

use std::any::Any;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cordon_runtime::maps::flags::BPF_F_INNER_MAP;
use cordon_runtime::maps::ringbuf_flags::*;
use cordon_runtime::maps::*;

const ENOENT: i64 = -2;
const E2BIG: i64 = -7;
const EAGAIN: i64 = -11;
const EINVAL: i64 = -22;

fn k(i: u32) -> [u8; 4] {
    i.to_ne_bytes()
}

fn qs(t: MapType, max: u32) -> MapHandle {
    Map::create(&MapDef::new(t, 0, 4, max), 1).unwrap()
}

fn pop(m: &Map) -> Result<u32, i64> {
    let mut v = [0u8; 4];
    match unsafe { m.pop(v.as_mut_ptr()) } {
        0 => Ok(u32::from_ne_bytes(v)),
        e => Err(e),
    }
}

#[test]
fn queue_fifo_and_overwrite() {
    let q = qs(MapType::Queue, 3);
    unsafe {
        for i in 1..=3 {
            assert_eq!(q.push(k(i).as_ptr(), BPF_ANY), 0);
        }
        assert_eq!(q.push(k(4).as_ptr(), BPF_ANY), E2BIG);
        assert_eq!(q.push(k(4).as_ptr(), BPF_NOEXIST), EINVAL);
        assert_eq!(q.push(k(4).as_ptr(), 4), EINVAL);
        // BPF_EXIST overwrites the oldest element.
        assert_eq!(q.push(k(4).as_ptr(), BPF_EXIST), 0);
        let mut v = [0u8; 4];
        assert_eq!(q.peek(v.as_mut_ptr()), 0);
        assert_eq!(u32::from_ne_bytes(v), 2);
        assert_eq!(q.lookup(ptr::null()), ptr::null_mut());
        assert_eq!(q.update(ptr::null(), v.as_ptr(), 0), EINVAL);
        assert_eq!(q.delete(ptr::null()), EINVAL);
    }
    assert_eq!(q.len(), Some(3));
    assert_eq!(
        (pop(&q), pop(&q), pop(&q), pop(&q)),
        (Ok(2), Ok(3), Ok(4), Err(ENOENT))
    );
    let mut v = [0u8; 4];
    assert_eq!(unsafe { q.peek(v.as_mut_ptr()) }, ENOENT);
    // Host API.
    q.push_value(&k(9), 0).unwrap();
    assert_eq!(q.peek_value().unwrap(), k(9));
    assert_eq!(q.pop_value().unwrap(), k(9));
    assert_eq!(q.pop_value(), Err(MapError::NotFound));
    assert_eq!(q.delete_value(&[]).unwrap_err().errno(), 22);
    assert_eq!(q.next_key(None).unwrap_err().errno(), 22);
    assert!(matches!(
        q.push_value(&k(1), BPF_NOEXIST),
        Err(MapError::InvalidFlags { .. })
    ));
}

#[test]
fn stack_lifo_and_overwrite() {
    let s = qs(MapType::Stack, 3);
    unsafe {
        for i in 1..=3 {
            assert_eq!(s.push(k(i).as_ptr(), 0), 0);
        }
        assert_eq!(s.push(k(4).as_ptr(), 0), E2BIG);
        assert_eq!(
            s.push(k(4).as_ptr(), BPF_EXIST),
            0,
            "drops the oldest (bottom)"
        );
    }
    assert_eq!(
        (pop(&s), pop(&s), pop(&s), pop(&s)),
        (Ok(4), Ok(3), Ok(2), Err(ENOENT))
    );
    // Wrap-around many times.
    for round in 0..10u32 {
        for i in 0..3 {
            s.push_value(&k(round * 10 + i), 0).unwrap();
        }
        for i in (0..3).rev() {
            assert_eq!(s.pop_value().unwrap(), k(round * 10 + i));
        }
    }
}

fn ring(size: u32) -> MapHandle {
    Map::create(&MapDef::new(MapType::RingBuf, 0, 0, size), 1).unwrap()
}

fn drain(r: &Map) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    r.ringbuf_consume(|rec| {
        out.push(rec.to_vec());
        true
    })
    .unwrap();
    out
}

#[test]
fn ringbuf_reserve_submit_discard_layout() {
    let r = ring(4096);
    assert_eq!(r.ringbuf_query(BPF_RB_RING_SIZE), 4096);
    let a = r.ringbuf_reserve(5, 0);
    assert!(!a.is_null());
    assert_eq!(a as usize % 8, 0);
    let hdr_len = unsafe { ptr::read((a as *const u8).sub(8) as *const u32) };
    assert_eq!(hdr_len, 5 | BPF_RINGBUF_BUSY_BIT);
    assert_eq!(
        r.ringbuf_query(BPF_RB_PROD_POS),
        16,
        "8-byte header + 5 rounded to 8"
    );
    assert_eq!(r.ringbuf_query(BPF_RB_AVAIL_DATA), 16);
    let b = r.ringbuf_reserve(3, 0);
    unsafe {
        ptr::copy_nonoverlapping(b"hello".as_ptr(), a, 5);
        ptr::copy_nonoverlapping(b"xyz".as_ptr(), b, 3);
        // Nothing is consumable while the first record is busy.
        ringbuf_submit(b, 0);
        assert!(drain(&r).is_empty());
        ringbuf_submit(a, BPF_RB_NO_WAKEUP);
        let hdr_len = ptr::read(a.sub(8) as *const u32);
        assert_eq!(hdr_len, 5);
    }
    assert_eq!(drain(&r), vec![b"hello".to_vec(), b"xyz".to_vec()]);
    assert_eq!(r.ringbuf_query(BPF_RB_CONS_POS), 32);
    assert_eq!(r.ringbuf_query(BPF_RB_AVAIL_DATA), 0);
    assert_eq!(r.ringbuf_query(99), 0);
    let c = r.ringbuf_reserve(8, 0);
    unsafe { ringbuf_discard(c, 0) };
    assert_eq!(
        unsafe { ptr::read(c.sub(8) as *const u32) },
        8 | BPF_RINGBUF_DISCARD_BIT
    );
    unsafe { assert_eq!(r.ringbuf_output(b"out".as_ptr(), 3, 0), 0) };
    assert_eq!(
        drain(&r),
        vec![b"out".to_vec()],
        "discarded records are skipped"
    );
    assert!(r.ringbuf_reserve(8, 1).is_null(), "reserve takes no flags");
    unsafe { assert_eq!(r.ringbuf_output(b"x".as_ptr(), 1, 4), EINVAL) };
    // Unsupported generic operations.
    assert_eq!(r.lookup_value(&[]).unwrap_err().errno(), 524);
    assert_eq!(unsafe { r.update(ptr::null(), ptr::null(), 0) }, -524);
}

#[test]
fn ringbuf_full_and_wraparound() {
    let r = ring(4096);
    // A record may use at most size - 8 bytes... reservations beyond the free space fail.
    assert!(r.ringbuf_reserve(4096, 0).is_null());
    assert!(r.ringbuf_reserve(u32::MAX as u64, 0).is_null());
    let mut n = 0;
    loop {
        let p = r.ringbuf_reserve(100, 0);
        if p.is_null() {
            break;
        }
        unsafe { ringbuf_submit(p, 0) };
        n += 1;
    }
    assert_eq!(n, 4095 / 112);
    unsafe { assert_eq!(r.ringbuf_output([0u8; 100].as_ptr(), 100, 0), EAGAIN) };
    assert_eq!(drain(&r).len(), n);
    // Records now straddle the end of the data area and are still contiguous.
    for round in 0..200u32 {
        let len = 1 + (round * 37) % 1000;
        let data: Vec<u8> = (0..len).map(|i| (i ^ round) as u8).collect();
        unsafe { assert_eq!(r.ringbuf_output(data.as_ptr(), len as u64, 0), 0) };
        assert_eq!(drain(&r), vec![data]);
    }
    // A busy record keeps its space until it is submitted and consumed.
    let held = r.ringbuf_reserve(2100, 0);
    assert!(!held.is_null());
    assert!(
        r.ringbuf_reserve(2100, 0).is_null(),
        "2108 + 2108 bytes exceed the 4096-byte ring"
    );
    let small = r.ringbuf_reserve(1000, 0);
    assert!(!small.is_null());
    unsafe { ringbuf_submit(small, 0) };
    assert!(
        drain(&r).is_empty(),
        "the busy record in front blocks the consumer"
    );
    unsafe { ringbuf_discard(held, 0) };
    assert_eq!(drain(&r).len(), 1);
    assert!(!r.ringbuf_reserve(2100, 0).is_null());
}

#[test]
fn ringbuf_poll_wakes_up() {
    let r = ring(1 << 14);
    let got = AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut seen = 0;
            while seen < 100 {
                seen += r
                    .ringbuf_poll(Some(Duration::from_secs(10)), |rec| {
                        assert_eq!(rec.len(), 16);
                        true
                    })
                    .unwrap();
            }
            got.store(seen, Ordering::SeqCst);
        });
        for i in 0..100u64 {
            let v = [i, i];
            unsafe { assert_eq!(r.ringbuf_output(v.as_ptr() as *const u8, 16, 0), 0) };
            if i % 10 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    assert_eq!(got.load(Ordering::SeqCst), 100);
    // Timeout with nothing to read.
    let n = r
        .ringbuf_poll(Some(Duration::from_millis(20)), |_| true)
        .unwrap();
    assert_eq!(n, 0);
}

struct Prog {
    id: u32,
    ty: u32,
}

impl ProgramHandle for Prog {
    fn prog_id(&self) -> u32 {
        self.id
    }
    fn prog_type(&self) -> u32 {
        self.ty
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn wait_released<T: ?Sized>(a: &Arc<T>) {
    for _ in 0..10_000 {
        if Arc::strong_count(a) == 1 {
            return;
        }
        pin().flush();
        std::thread::yield_now();
    }
    panic!(
        "deferred release never ran (strong count {})",
        Arc::strong_count(a)
    );
}

#[test]
fn prog_array_semantics() {
    let m = Map::create(&MapDef::new(MapType::ProgArray, 4, 4, 4), 1).unwrap();
    let p1: Arc<dyn ProgramHandle> = Arc::new(Prog { id: 11, ty: 1 });
    let p2: Arc<dyn ProgramHandle> = Arc::new(Prog { id: 12, ty: 1 });
    let other: Arc<dyn ProgramHandle> = Arc::new(Prog { id: 13, ty: 2 });
    m.set_prog(0, p1.clone(), BPF_ANY).unwrap();
    assert_eq!(m.set_prog(4, p1.clone(), BPF_ANY), Err(MapError::Full));
    assert!(matches!(
        m.set_prog(1, p1.clone(), BPF_NOEXIST),
        Err(MapError::InvalidFlags { .. })
    ));
    let e = m.set_prog(1, other.clone(), BPF_ANY).unwrap_err();
    assert_eq!(
        e,
        MapError::IncompatibleProgram {
            prog_type: 2,
            owner_type: 1
        }
    );
    assert_eq!(e.errno(), 22);
    assert!(m.check_prog_compatible(1).is_ok());
    assert!(m.check_prog_compatible(2).is_err());
    assert_eq!(m.lookup_value(&k(0)).unwrap(), k(11));
    assert_eq!(m.lookup_value(&k(1)), Err(MapError::NotFound));
    {
        let g = pin();
        let t = m.tail_call_target(0, &g).unwrap();
        assert_eq!(t.as_any().downcast_ref::<Prog>().unwrap().id, 11);
        assert!(m.tail_call_target(1, &g).is_none());
        assert!(m.tail_call_target(100, &g).is_none());
    }
    m.set_prog(0, p2.clone(), BPF_ANY).unwrap();
    wait_released(&p1);
    assert_eq!(m.prog(0).unwrap().prog_id(), 12);
    assert_eq!(m.delete_value(&k(0)), Ok(()));
    assert_eq!(m.delete_value(&k(0)), Err(MapError::NotFound));
    assert_eq!(m.delete_value(&k(9)), Err(MapError::Full));
    wait_released(&p2);
    assert!(matches!(
        m.update_value(&k(0), &k(1), 0),
        Err(MapError::WrongValueKind(_))
    ));
    assert_eq!(m.keys().count(), 4);
    m.set_prog(3, p2.clone(), BPF_ANY).unwrap();
    m.clear_progs();
    assert!(m.prog(3).is_none());
    // Program side: no lookups into prog arrays.
    assert!(unsafe { m.lookup(k(0).as_ptr()) }.is_null());
}

#[test]
fn array_of_maps() {
    let tmpl = MapDef::new(MapType::Array, 4, 8, 4);
    let outer = Map::create(
        &MapDef::new(MapType::ArrayOfMaps, 4, 4, 2).with_inner(tmpl.clone()),
        1,
    )
    .unwrap();
    let inner = Map::create(&tmpl, 1).unwrap();
    inner.update_value(&k(2), &7u64.to_ne_bytes(), 0).unwrap();
    outer.update_inner_map(&k(1), &inner, BPF_ANY).unwrap();
    assert_eq!(outer.lookup_value(&k(1)).unwrap(), inner.id().to_ne_bytes());
    assert_eq!(outer.lookup_value(&k(0)), Err(MapError::NotFound));
    {
        let _g = pin();
        let p = unsafe { outer.lookup(k(1).as_ptr()) };
        assert_eq!(p as u64, inner.as_prog_ptr());
        let m = unsafe { Map::from_prog_ptr(p as u64) };
        let v = unsafe { m.lookup(k(2).as_ptr()) };
        assert_eq!(unsafe { ptr::read(v as *const u64) }, 7);
        assert!(unsafe { outer.lookup(k(0).as_ptr()) }.is_null());
        assert!(unsafe { outer.lookup(k(2).as_ptr()) }.is_null());
    }
    // Compatibility with the template (array max_entries must match).
    let bad = Map::create(&MapDef::new(MapType::Array, 4, 8, 5), 1).unwrap();
    let e = outer.update_inner_map(&k(0), &bad, BPF_ANY).unwrap_err();
    assert!(e.to_string().contains("max_entries"), "{e}");
    let bad = Map::create(&MapDef::new(MapType::Array, 4, 16, 4), 1).unwrap();
    assert!(matches!(
        outer.update_inner_map(&k(0), &bad, 0),
        Err(MapError::IncompatibleInnerMap { .. })
    ));
    let bad = Map::create(&MapDef::new(MapType::Hash, 4, 8, 4), 1).unwrap();
    assert!(outer.update_inner_map(&k(0), &bad, 0).is_err());
    assert!(matches!(
        outer.update_inner_map(&k(0), &inner, BPF_NOEXIST),
        Err(MapError::InvalidFlags { .. })
    ));
    assert_eq!(
        outer.update_inner_map(&k(2), &inner, 0),
        Err(MapError::Full)
    );
    assert!(matches!(
        outer.update_value(&k(0), &k(0), 0),
        Err(MapError::WrongValueKind(_))
    ));
    // BPF_F_INNER_MAP relaxes max_entries.
    let t2 = MapDef::new(MapType::Array, 4, 8, 4).with_flags(BPF_F_INNER_MAP);
    let o2 = Map::create(
        &MapDef::new(MapType::ArrayOfMaps, 4, 4, 1).with_inner(t2),
        1,
    )
    .unwrap();
    let big = Map::create(
        &MapDef::new(MapType::Array, 4, 8, 100).with_flags(BPF_F_INNER_MAP),
        1,
    )
    .unwrap();
    o2.update_inner_map(&k(0), &big, 0).unwrap();
    // Delete releases the inner map after the grace period.
    assert_eq!(Arc::strong_count(&inner), 2);
    outer.delete_value(&k(1)).unwrap();
    assert_eq!(outer.delete_value(&k(1)), Err(MapError::NotFound));
    wait_released(&inner);
    assert!(outer.lookup_inner_map(&k(1)).unwrap().is_none());
    drop(o2);
    wait_released(&big);
}

#[test]
fn hash_of_maps() {
    let tmpl = MapDef::new(MapType::Hash, 4, 4, 8);
    let outer = Map::create(
        &MapDef::new(MapType::HashOfMaps, 4, 4, 2).with_inner(tmpl.clone()),
        1,
    )
    .unwrap();
    let a = Map::create(&tmpl, 1).unwrap();
    // Hash inner maps may differ in max_entries.
    let b = Map::create(&MapDef::new(MapType::Hash, 4, 4, 100), 1).unwrap();
    assert_eq!(
        outer.update_inner_map(&k(1), &a, BPF_EXIST),
        Err(MapError::NotFound)
    );
    outer.update_inner_map(&k(1), &a, BPF_NOEXIST).unwrap();
    assert_eq!(
        outer.update_inner_map(&k(1), &b, BPF_NOEXIST),
        Err(MapError::Exists)
    );
    outer.update_inner_map(&k(2), &b, BPF_ANY).unwrap();
    assert_eq!(
        outer.update_inner_map(&k(3), &b, BPF_ANY),
        Err(MapError::Full)
    );
    assert_eq!(outer.lookup_value(&k(2)).unwrap(), b.id().to_ne_bytes());
    let p = unsafe { outer.lookup(k(1).as_ptr()) };
    assert_eq!(p as u64, a.as_prog_ptr());
    // Replacement releases the old inner map.
    outer.update_inner_map(&k(1), &b, BPF_EXIST).unwrap();
    wait_released(&a);
    assert_eq!(outer.lookup_inner_map(&k(1)).unwrap().unwrap().id(), b.id());
    assert_eq!(outer.keys().count(), 2);
    outer.delete_value(&k(1)).unwrap();
    assert_eq!(outer.delete_value(&k(1)), Err(MapError::NotFound));
    assert!(Arc::strong_count(&b) >= 2, "still held by the outer map");
    drop(outer);
    wait_released(&b);
    // Program side cannot modify maps of maps.
    let o = Map::create(
        &MapDef::new(MapType::HashOfMaps, 4, 4, 2).with_inner(tmpl),
        1,
    )
    .unwrap();
    assert_eq!(unsafe { o.update(k(1).as_ptr(), k(1).as_ptr(), 0) }, -95);
    assert_eq!(unsafe { o.delete(k(1).as_ptr()) }, -95);
}

#[test]
fn c_abi_helpers() {
    use cordon_runtime::maps::abi::*;
    let h = Map::create(&MapDef::new(MapType::Hash, 4, 8, 4), 1).unwrap();
    let mp = h.as_prog_ptr();
    let key = k(3);
    let val = 99u64.to_ne_bytes();
    unsafe {
        assert_eq!(bpf_map_lookup_elem(mp, key.as_ptr() as u64), 0);
        assert_eq!(
            bpf_map_update_elem(mp, key.as_ptr() as u64, val.as_ptr() as u64, BPF_NOEXIST),
            0
        );
        assert_eq!(
            bpf_map_update_elem(mp, key.as_ptr() as u64, val.as_ptr() as u64, BPF_NOEXIST) as i64,
            -17
        );
        let p = bpf_map_lookup_elem(mp, key.as_ptr() as u64);
        assert_eq!(ptr::read(p as *const u64), 99);
        assert_eq!(bpf_map_delete_elem(mp, key.as_ptr() as u64), 0);
        assert_eq!(bpf_map_delete_elem(mp, key.as_ptr() as u64) as i64, ENOENT);
    }
    let q = qs(MapType::Stack, 2);
    let qp = q.as_prog_ptr();
    let mut out = [0u8; 4];
    unsafe {
        assert_eq!(bpf_map_push_elem(qp, k(5).as_ptr() as u64, 0), 0);
        assert_eq!(bpf_map_peek_elem(qp, out.as_mut_ptr() as u64), 0);
        assert_eq!(bpf_map_pop_elem(qp, out.as_mut_ptr() as u64), 0);
        assert_eq!(bpf_map_pop_elem(qp, out.as_mut_ptr() as u64) as i64, ENOENT);
    }
    assert_eq!(out, k(5));
    let pc = Map::create(&MapDef::new(MapType::PercpuArray, 4, 4, 1), 2).unwrap();
    unsafe {
        assert_ne!(
            bpf_map_lookup_percpu_elem(pc.as_prog_ptr(), k(0).as_ptr() as u64, 1),
            0
        );
        assert_eq!(
            bpf_map_lookup_percpu_elem(pc.as_prog_ptr(), k(0).as_ptr() as u64, 2),
            0
        );
        assert_eq!(
            bpf_map_lookup_percpu_elem(pc.as_prog_ptr(), k(0).as_ptr() as u64, 1 << 40),
            0
        );
    }
    let r = ring(4096);
    let rp = r.as_prog_ptr();
    unsafe {
        let rec = bpf_ringbuf_reserve(rp, 4, 0);
        assert_ne!(rec, 0);
        ptr::copy_nonoverlapping(b"abcd".as_ptr(), rec as *mut u8, 4);
        assert_eq!(bpf_ringbuf_submit(rec, 0), 0);
        let rec2 = bpf_ringbuf_reserve(rp, 4, 0);
        assert_eq!(bpf_ringbuf_discard(rec2, 0), 0);
        assert_eq!(bpf_ringbuf_output(rp, b"efgh".as_ptr() as u64, 4, 0), 0);
        assert_eq!(bpf_ringbuf_query(rp, BPF_RB_AVAIL_DATA), 48);
    }
    assert_eq!(drain(&r), vec![b"abcd".to_vec(), b"efgh".to_vec()]);
}
