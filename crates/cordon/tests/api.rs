//! The embedding API end to end: loading, host kfuncs, maps, tail-call slots,
//! the raw call path, threads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cordon::{ArgType, Backend, Config, Engine, Error, Insn, LoadError, ProgKind, RetType};
use cordon_object::{Object, ProgType};

fn bpf(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../tests/bpf/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn engines() -> Vec<Engine> {
    vec![Engine::interpreter(), Engine::jit()]
}

fn one_program(prog_type: ProgType, insns: Vec<Insn>, kfuncs: &[&str]) -> Object {
    Object::single_program("p", "s", prog_type, insns).with_kfuncs(kfuncs)
}

#[test]
fn host_kfunc_is_verified_and_called() {
    for backend in [Backend::Interpreter, Backend::Jit] {
        let mut engine = Engine::new(Config {
            backend,
            ..Config::default()
        });
        let calls = Arc::new(AtomicU64::new(0));
        let c = Arc::clone(&calls);
        engine.register_kfunc(
            "host_mul",
            &[ArgType::Anything, ArgType::Anything],
            RetType::Integer,
            0,
            move |_, a| {
                c.fetch_add(1, Ordering::Relaxed);
                Ok(a[0].wrapping_mul(a[1]))
            },
        );
        let insns = vec![
            Insn::new(0xb7, 1, 0, 0, 6),
            Insn::new(0xb7, 2, 0, 0, 7),
            Insn::new(0x85, 0, 2, 0, 0),
            Insn::new(0x95, 0, 0, 0, 0),
        ];
        let o = engine
            .load_parsed(one_program(
                ProgType::SchedCls,
                insns.clone(),
                &["host_mul"],
            ))
            .unwrap();
        let p = o.program("p").unwrap();
        assert!(p.is_verified());
        assert_eq!(p.run_skb(&[0; 20]).unwrap().retval, 42);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        // A program calling a kfunc the engine does not know fails to load.
        let e = Engine::default()
            .load_parsed(one_program(ProgType::SchedCls, insns, &["host_mul"]))
            .unwrap()
            .program("p")
            .unwrap_err();
        assert!(
            matches!(e, Error::Load(LoadError::UnresolvedKfunc { .. })),
            "{e}"
        );
    }
}

#[test]
fn programs_are_shared_across_threads() {
    for engine in engines() {
        let o = engine.load_object(&bpf("maps_basic.o")).unwrap();
        let p = o.program("maps_basic").unwrap();
        assert_eq!(p.kind(), ProgKind::SchedCls);
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let p = p.clone();
                s.spawn(move || {
                    let mut pkt = vec![0u8; 64];
                    pkt[0] = t;
                    for _ in 0..100 {
                        p.run(&pkt).unwrap();
                    }
                });
            }
        });
        let arr = o.map("arr").unwrap();
        for t in 0..4u32 {
            let v = arr.lookup_value(&t.to_ne_bytes()).unwrap();
            assert_eq!(u64::from_ne_bytes(v.try_into().unwrap()), 100 * 64);
        }
        // Per-CPU values were spread over the threads' CPU slots, summing to 100.
        let pc = o.map("pcpu_arr").unwrap();
        let total: u64 = pc
            .lookup_percpu_values(&0u32.to_ne_bytes())
            .unwrap()
            .iter()
            .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap()))
            .sum();
        assert_eq!(total, 100);
    }
}

#[test]
fn tail_call_slots_from_the_host() {
    for engine in engines() {
        let o = engine.load_object(&bpf("tail_call.o")).unwrap();
        let entry = o.program("tail_entry").unwrap();
        let double = o.program("tail_double").unwrap();
        let mut pkt = vec![0u8; 30];
        assert_eq!(entry.run(&pkt).unwrap().retval, 1);
        o.clear_tail_call("jump_table", 0).unwrap();
        assert_eq!(entry.run(&pkt).unwrap().retval, 99);
        o.set_tail_call("jump_table", 0, &double).unwrap();
        assert_eq!(entry.run(&pkt).unwrap().retval, 60);
        pkt[0] = 7; // 7 % 4 = 3: empty
        assert_eq!(entry.run(&pkt).unwrap().retval, 99);
        assert!(
            o.set_tail_call("jump_table", 4, &double).is_err(),
            "out of range"
        );
        assert!(o.set_tail_call("no_such_map", 0, &double).is_err());
    }
}

#[test]
fn raw_call_path() {
    for backend in [Backend::Interpreter, Backend::Jit] {
        let engine = Engine::new(Config {
            backend,
            ..Config::default()
        });
        // r0 = r1 + r2 * r3 (raw programs run in checked mode).
        let insns = vec![
            Insn::new(0xbf, 0, 2, 0, 0),
            Insn::new(0x2f, 0, 3, 0, 0),
            Insn::new(0x0f, 0, 1, 0, 0),
            Insn::new(0x95, 0, 0, 0, 0),
        ];
        let o = engine
            .load_parsed(one_program(ProgType::Unspec, insns, &[]))
            .unwrap();
        let p = o.program("p").unwrap();
        assert!(!p.is_verified());
        for k in 0..1000u64 {
            assert_eq!(p.call([k, 3, k, 0, 0], &mut []).unwrap(), k + 3 * k);
        }
        let mut data = vec![1u8, 2, 3];
        let r = p.run_raw(&mut data).unwrap();
        assert_eq!(r.r0, data.as_ptr() as u64, "r1 + r2 * r3 with r3 = 0");
    }
}

#[test]
fn errors_tell_what_to_do() {
    let engine = Engine::default();
    let e = engine.load_file("/no/such/file.o").err().unwrap();
    assert!(e.to_string().contains("/no/such/file.o"), "{e}");
    let o = engine.load_object(&bpf("tc_mark.o")).unwrap();
    let e = o.program("nope").unwrap_err().to_string();
    assert!(
        e.contains("tc_mark") && e.contains("cls_len"),
        "lists the programs: {e}"
    );
    let p = o.program("tc_mark").unwrap();
    let e = p.run_xdp(&[0; 64]).unwrap_err().to_string();
    assert!(e.contains("run_skb"), "{e}");
    let e = p.run_skb(&[0; 10]).unwrap_err().to_string();
    assert!(e.contains("at least 14 bytes"), "{e}");
    assert!(engine.load_object(b"not an elf").is_err());
    assert_eq!(
        o.program_names(),
        vec!["tc_mark".to_string(), "cls_len".to_string()]
    );
}

#[test]
fn test_objects_live_counter() {
    for engine in engines() {
        let o = engine.load_object(&bpf("kfunc_obj.o")).unwrap();
        let p = o.program("kfunc_acquire_release").unwrap();
        for b in 0..=255u8 {
            let mut pkt = vec![0u8; 20];
            pkt[0] = b;
            let want = if b == 0 { u32::MAX } else { 3 * b as u32 };
            assert_eq!(p.run(&pkt).unwrap().retval, want);
        }
        assert_eq!(engine.test_objects_live(), 0);
    }
}
