//! Call-site specialisation (`cordon_exec::specialise`): inline array lookups
//! and direct calls give the same results on the interpreter and the JIT,
//! only in trusted mode, only at the sites the table names; the table builder
//! refuses sites that are not helper calls and arrays that do not describe
//! storage.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use cordon_exec::jit::JitExecutable;
use cordon_exec::{
    CallSiteError, CallSites, CallSpec, DirectFn, ExecOptions, Executable, HelperRegistry,
};
use cordon_isa::opcode::*;
use cordon_isa::{Insn, Program};

/// Array storage the programs read and write through looked-up pointers.
struct Storage {
    words: Box<[AtomicU64]>,
}

impl Storage {
    fn new(n: usize) -> Arc<Storage> {
        Arc::new(Storage {
            words: (0..n).map(|i| AtomicU64::new(i as u64 * 100 + 7)).collect(),
        })
    }
    fn base(&self) -> u64 {
        self.words.as_ptr() as u64
    }
    fn get(&self, i: usize) -> u64 {
        self.words[i].load(Ordering::Relaxed)
    }
}

const GENERIC: u64 = 0x6e6e_6e6e;

/// Helper 1 as the generic path sees it: counts its calls, returns GENERIC.
fn generic(count: &Arc<AtomicU64>) -> HelperRegistry {
    let mut h = HelperRegistry::new();
    let c = count.clone();
    h.register(1, "generic", move |_, _| {
        c.fetch_add(1, Ordering::Relaxed);
        Ok(GENERIC)
    });
    let c = count.clone();
    h.register(2, "generic2", move |_, a| {
        c.fetch_add(1, Ordering::Relaxed);
        Ok(a[0] ^ GENERIC)
    });
    h
}

/// Key = the u32 at input offset 0, stored at `fp + key_off`; `call 1`; null ->
/// u64::MAX; else the first word of the value is incremented and its new
/// value returned.
fn lookup_prog(key_off: i16) -> Vec<Insn> {
    prog![
        ldx(4, 3, 1, 0),
        stx(4, 10, 3, key_off),
        mov64r(2, 10),
        alu64_imm(ALU_ADD, 2, key_off as i32),
        mov64(1, 0),
        call(1), // pc 5
        jmp_imm(JMP_JNE, 0, 0, 3),
        mov64(0, 0),
        alu64_imm(ALU_SUB, 0, 1),
        exit(),
        ldx(8, 1, 0, 0),
        alu64_imm(ALU_ADD, 1, 1),
        stx(8, 0, 1, 0),
        mov64r(0, 1),
        exit(),
    ]
}
const LOOKUP_PC: usize = 5;

fn sites(prog: &[Insn], specs: &[(usize, CallSpec)], owner: Option<Arc<Storage>>) -> CallSites {
    let p = program(prog);
    let mut b = CallSites::builder(&p);
    for &(pc, spec) in specs {
        // SAFETY: the tests' specs point into storage they keep alive and call
        // functions that read nothing but their arguments.
        unsafe { b.specialise(pc, spec) }.unwrap();
    }
    if let Some(o) = owner {
        b.keep_alive(o);
    }
    b.build()
}

fn opts(call_sites: CallSites) -> ExecOptions {
    ExecOptions {
        call_sites,
        ..ExecOptions::default()
    }
}

/// Trusted interpreter and JIT, and checked interpreter and JIT.
struct Engines {
    trusted: (Executable, JitExecutable),
    checked: (Executable, JitExecutable),
}

fn engines(prog: &[Insn], h: &HelperRegistry, s: &CallSites) -> Engines {
    let p = program(prog);
    // SAFETY: the test programs only access their stack, input and the
    // storage the specs point into.
    let trusted = unsafe {
        (
            Executable::trusted(&p, h, opts(s.clone())).unwrap(),
            JitExecutable::trusted(&p, h, opts(s.clone())).unwrap(),
        )
    };
    let checked = (
        Executable::checked(&p, h, opts(s.clone())).unwrap(),
        JitExecutable::checked(&p, h, opts(s.clone())).unwrap(),
    );
    Engines { trusted, checked }
}

fn run_key(e: &Engines, key: u32) -> (u64, u64) {
    let mut m1 = key.to_ne_bytes();
    let mut m2 = key.to_ne_bytes();
    (
        e.trusted.0.run(&mut m1).unwrap(),
        e.trusted.1.run(&mut m2).unwrap(),
    )
}

fn array_spec(s: &Storage, elem_words: u64, max_entries: u32) -> CallSpec {
    CallSpec::ArrayLookup {
        base: s.base(),
        elem_size: elem_words * 8,
        max_entries,
    }
}

#[test]
fn inline_array_lookup_matches_on_both_engines() {
    for key_off in [-4i16, -7] {
        let st = Storage::new(16);
        let prog = lookup_prog(key_off);
        let count = Arc::new(AtomicU64::new(0));
        let s = sites(
            &prog,
            &[(LOOKUP_PC, array_spec(&st, 1, 16))],
            Some(st.clone()),
        );
        let e = engines(&prog, &generic(&count), &s);
        for k in [0u32, 5, 15] {
            let before = st.get(k as usize);
            let (i, j) = run_key(&e, k);
            assert_eq!(i, before + 1, "interpreter, key {k}");
            assert_eq!(j, before + 2, "JIT, key {k}");
            assert_eq!(st.get(k as usize), before + 2);
        }
        // Out of range: NULL, on both engines.
        for k in [16u32, 17, 1 << 31, u32::MAX] {
            assert_eq!(run_key(&e, k), (u64::MAX, u64::MAX), "key {k}");
        }
        assert_eq!(count.load(Ordering::Relaxed), 0, "the generic helper ran");
    }
}

#[test]
fn inline_array_lookup_with_odd_element_size() {
    // 3 words per element (24 bytes: a multiply, not a shift).
    let st = Storage::new(3 * 5);
    let prog = lookup_prog(-4);
    let count = Arc::new(AtomicU64::new(0));
    let s = sites(
        &prog,
        &[(LOOKUP_PC, array_spec(&st, 3, 5))],
        Some(st.clone()),
    );
    let e = engines(&prog, &generic(&count), &s);
    for k in 0..5u32 {
        let w = k as usize * 3;
        let before = st.get(w);
        assert_eq!(run_key(&e, k), (before + 1, before + 2));
        assert_eq!(
            st.get(w + 1),
            (w as u64 + 1) * 100 + 7,
            "neighbour untouched"
        );
    }
    assert_eq!(run_key(&e, 5), (u64::MAX, u64::MAX));
    assert_eq!(count.load(Ordering::Relaxed), 0);
}

#[test]
fn checked_mode_ignores_call_sites() {
    // Return r0 of the call directly: the generic helper's value.
    let prog = prog![
        st(4, 10, -4, 1),
        mov64r(2, 10),
        alu64_imm(ALU_ADD, 2, -4),
        call(1),
        exit()
    ];
    let st_ = Storage::new(4);
    let count = Arc::new(AtomicU64::new(0));
    let s = sites(&prog, &[(3, array_spec(&st_, 1, 4))], Some(st_.clone()));
    let e = engines(&prog, &generic(&count), &s);
    assert_eq!(e.checked.0.run(&mut []).unwrap(), GENERIC);
    assert_eq!(e.checked.1.run(&mut []).unwrap(), GENERIC);
    assert_eq!(count.load(Ordering::Relaxed), 2);
    assert_eq!(e.trusted.0.run(&mut []).unwrap(), st_.base() + 8);
    assert_eq!(e.trusted.1.run(&mut []).unwrap(), st_.base() + 8);
    assert_eq!(count.load(Ordering::Relaxed), 2);
}

unsafe extern "C" fn digits4(a: u64, b: u64, c: u64, d: u64) -> u64 {
    a * 1000 + b * 100 + c * 10 + d
}
unsafe extern "C" fn sum5(a: u64, b: u64, c: u64, d: u64, e: u64) -> u64 {
    a + b + c + d + e
}
static TICKS: AtomicU64 = AtomicU64::new(0);
unsafe extern "C" fn tick() -> u64 {
    TICKS.fetch_add(1, Ordering::Relaxed) + 1000
}

#[test]
fn direct_calls_pass_arguments_and_bind_r1() {
    // r0 = h1(1,2,3,4,5) [direct, r1 bound to 9] ; r6 = r0
    // r0 = h2(r6,...)    [direct, sum5]          ; r6 = r0
    // r0 = h1(...)       [direct, arity 0]       ; r0 += r6
    let prog = prog![
        mov64(1, 1),
        mov64(2, 2),
        mov64(3, 3),
        mov64(4, 4),
        mov64(5, 5),
        call(1), // 5
        mov64r(6, 0),
        mov64r(1, 6),
        mov64(2, 10),
        mov64(3, 20),
        mov64(4, 30),
        mov64(5, 40),
        call(2), // 12
        mov64r(6, 0),
        call(1), // 14
        alu64_reg(ALU_ADD, 0, 6),
        exit(),
    ];
    let count = Arc::new(AtomicU64::new(0));
    let s = sites(
        &prog,
        &[
            (
                5,
                CallSpec::Direct {
                    func: DirectFn::A4(digits4),
                    bind: Some(9),
                },
            ),
            (
                12,
                CallSpec::Direct {
                    func: DirectFn::A5(sum5),
                    bind: None,
                },
            ),
            (
                14,
                CallSpec::Direct {
                    func: DirectFn::A0(tick),
                    bind: None,
                },
            ),
        ],
        None,
    );
    let e = engines(&prog, &generic(&count), &s);
    let first = 9234; // bound r1 = 9, then r2..r4
    let second = first + 100;
    let t0 = TICKS.load(Ordering::Relaxed);
    let i = e.trusted.0.run(&mut []).unwrap();
    let j = e.trusted.1.run(&mut []).unwrap();
    assert_eq!(TICKS.load(Ordering::Relaxed), t0 + 2);
    assert_eq!(i, second + 1000 + t0);
    assert_eq!(j, second + 1000 + t0 + 1);
    assert_eq!(count.load(Ordering::Relaxed), 0, "the generic helpers ran");
    // Checked mode: the generic helpers.
    let want = GENERIC + (GENERIC ^ GENERIC);
    assert_eq!(e.checked.0.run(&mut []).unwrap(), want);
    assert_eq!(e.checked.1.run(&mut []).unwrap(), want);
    assert_eq!(count.load(Ordering::Relaxed), 6);
}

#[test]
fn unspecialised_sites_stay_generic() {
    // Two calls of helper 1; only the first is specialised.
    let prog = prog![
        st(4, 10, -4, 2),
        mov64r(2, 10),
        alu64_imm(ALU_ADD, 2, -4),
        call(1), // 3
        mov64r(6, 0),
        mov64r(2, 10),
        alu64_imm(ALU_ADD, 2, -4),
        call(1), // 7
        alu64_reg(ALU_XOR, 0, 6),
        exit(),
    ];
    let st_ = Storage::new(4);
    let count = Arc::new(AtomicU64::new(0));
    let s = sites(&prog, &[(3, array_spec(&st_, 1, 4))], Some(st_.clone()));
    let e = engines(&prog, &generic(&count), &s);
    let want = (st_.base() + 16) ^ GENERIC;
    assert_eq!(e.trusted.0.run(&mut []).unwrap(), want);
    assert_eq!(e.trusted.1.run(&mut []).unwrap(), want);
    assert_eq!(count.load(Ordering::Relaxed), 2);
}

#[test]
fn specialised_calls_inside_subprograms() {
    // main: r1 = key; call sub; exit.  sub: key on its own frame, call 1, return
    // the value or 77 when NULL.
    let prog = prog![
        ldx(4, 1, 1, 0),
        call_local(1),
        exit(),
        stx(4, 10, 1, -8), // 3
        mov64r(2, 10),
        alu64_imm(ALU_ADD, 2, -8),
        call(1), // 6
        jmp_imm(JMP_JEQ, 0, 0, 2),
        ldx(8, 0, 0, 0),
        exit(),
        mov64(0, 77),
        exit(),
    ];
    let st_ = Storage::new(8);
    let count = Arc::new(AtomicU64::new(0));
    let s = sites(&prog, &[(6, array_spec(&st_, 1, 8))], Some(st_.clone()));
    let e = engines(&prog, &generic(&count), &s);
    for k in [0u32, 3, 7] {
        assert_eq!(run_key(&e, k), (k as u64 * 100 + 7, k as u64 * 100 + 7));
    }
    assert_eq!(run_key(&e, 8), (77, 77));
    assert_eq!(count.load(Ordering::Relaxed), 0);
}

#[test]
fn executables_keep_the_owners_alive() {
    let prog = lookup_prog(-4);
    let st_ = Storage::new(4);
    let s = sites(
        &prog,
        &[(LOOKUP_PC, array_spec(&st_, 1, 4))],
        Some(st_.clone()),
    );
    let count = Arc::new(AtomicU64::new(0));
    let e = engines(&prog, &generic(&count), &s);
    drop(s);
    let weak = Arc::downgrade(&st_);
    drop(st_);
    assert!(
        weak.upgrade().is_some(),
        "storage freed under live executables"
    );
    assert_eq!(run_key(&e, 2), (208, 209));
    drop(e);
    assert!(weak.upgrade().is_none(), "storage leaked");
}

#[test]
fn builder_refuses_bad_sites() {
    let prog = program(&lookup_prog(-4));
    let mut b = CallSites::builder(&prog);
    let st_ = Storage::new(4);
    let ok = array_spec(&st_, 1, 4);
    let direct = CallSpec::Direct {
        func: DirectFn::A0(tick),
        bind: None,
    };
    // SAFETY: every call below is refused before anything is registered.
    unsafe {
        for pc in [0usize, 4, 6, 14, 15, 1000] {
            assert_eq!(
                b.specialise(pc, direct),
                Err(CallSiteError::NotAHelperCall { index: pc })
            );
        }
        let bad = [
            (0u64, 8u64, 4u32),
            (st_.base(), 0, 4),
            (st_.base(), 8, 0),
            (u64::MAX - 8, 8, 4),
            (st_.base(), u64::MAX, 2),
        ];
        for (base, elem_size, max_entries) in bad {
            let spec = CallSpec::ArrayLookup {
                base,
                elem_size,
                max_entries,
            };
            assert_eq!(
                b.specialise(LOOKUP_PC, spec),
                Err(CallSiteError::BadArray {
                    index: LOOKUP_PC,
                    base,
                    elem_size,
                    max_entries
                })
            );
        }
        assert!(b.is_empty());
        b.specialise(LOOKUP_PC, ok).unwrap();
        assert_eq!(
            b.specialise(LOOKUP_PC, direct),
            Err(CallSiteError::Duplicate { index: LOOKUP_PC })
        );
    }
    // Local calls, kfunc calls and callx are not helper calls either.
    let other = program(&prog![
        call_local(1),
        exit(),
        call_kfunc(5),
        callx(1),
        exit()
    ]);
    let mut b = CallSites::builder(&other);
    for pc in [0usize, 2, 3] {
        // SAFETY: refused.
        let r = unsafe { b.specialise(pc, direct) };
        assert_eq!(r, Err(CallSiteError::NotAHelperCall { index: pc }));
    }
    let msg = CallSiteError::NotAHelperCall { index: 3 }.to_string();
    assert!(msg.contains("instruction 3"), "{msg}");
}

#[test]
fn a_table_for_another_program_is_ignored_where_it_does_not_fit() {
    // Built for a program with a helper call at pc 3; used with one whose pc
    // 3 is an ALU instruction and whose call (pc 4) is not in the table.
    let donor = prog![
        st(4, 10, -4, 1),
        mov64r(2, 10),
        alu64_imm(ALU_ADD, 2, -4),
        call(1),
        exit()
    ];
    let st_ = Storage::new(4);
    let s = sites(&donor, &[(3, array_spec(&st_, 1, 4))], Some(st_.clone()));
    let prog = prog![
        st(4, 10, -4, 1),
        mov64r(2, 10),
        alu64_imm(ALU_ADD, 2, -4),
        mov64(0, 0),
        call(1),
        exit()
    ];
    let count = Arc::new(AtomicU64::new(0));
    let e = engines(&prog, &generic(&count), &s);
    assert_eq!(e.trusted.0.run(&mut []).unwrap(), GENERIC);
    assert_eq!(e.trusted.1.run(&mut []).unwrap(), GENERIC);
    // And a shorter program: the site is past its end.
    let short = prog![call(1), exit()];
    let e = engines(&short, &generic(&count), &s);
    assert_eq!(e.trusted.0.run(&mut []).unwrap(), GENERIC);
    assert_eq!(e.trusted.1.run(&mut []).unwrap(), GENERIC);
    assert_eq!(count.load(Ordering::Relaxed), 4);
    let _ = Program::new(short.to_vec()).unwrap();
}
