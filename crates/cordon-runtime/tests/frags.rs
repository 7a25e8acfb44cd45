//! XDP multi-buffer packets (Linux's test_run fragments) on both engines, in
//! verified and checked mode: layout, `ctx_in.data_end`, the frags-aware
//! helpers and their error codes, refused input, and the prototypes.

use std::sync::Arc;

use cordon_isa::{Insn, assemble_linux};
use cordon_object::{Object, ProgType};
use cordon_runtime::{Backend, CompiledProgram, Config, LoadError, RunError, Runtime};

const MODES: [(Backend, bool); 4] = [
    (Backend::Interpreter, true),
    (Backend::Jit, true),
    (Backend::Interpreter, false),
    (Backend::Jit, false),
];

const EINVAL: u64 = -22i64 as u64;
const EFAULT: u64 = -14i64 as u64;

fn object(section: &str, prog_type: ProgType, insns: Vec<Insn>) -> Object {
    Object::single_program("p", section, prog_type, insns)
}

fn load_in(
    (backend, verify): (Backend, bool),
    section: &str,
    prog_type: ProgType,
    asm: &str,
) -> Result<Arc<CompiledProgram>, LoadError> {
    let rt = Runtime::new(Config {
        backend,
        verify,
        cpus: 2,
        ..Config::default()
    });
    let insns = assemble_linux(asm).unwrap_or_else(|e| panic!("{e}\n{asm}"));
    let o = rt.load_parsed(object(section, prog_type, insns))?;
    o.program("p")
}

fn load(mode: (Backend, bool), asm: &str) -> Arc<CompiledProgram> {
    load_in(mode, "xdp.frags", ProgType::Xdp, asm).unwrap_or_else(|e| panic!("{mode:?}: {e}"))
}

/// A recognisable packet of `len` bytes.
fn pkt(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + (i >> 9)) as u8).collect()
}

/// Returns `data_end - data` (the linear length the program can reach).
const LINEAR_LEN: &str = "
r2 = *(u32 *)(r1 +0)
r0 = *(u32 *)(r1 +4)
r0 -= r2
exit";

/// Returns `bpf_xdp_get_buff_len(ctx)`.
const BUFF_LEN: &str = "
call 188
exit";

/// `bpf_xdp_load_bytes(ctx, off, fp-8, 8)`: the 8 bytes, or the error.
fn load8(off: i64) -> String {
    format!(
        "
r2 = {off}
r3 = r10
r3 += -8
r4 = 8
call 189
if r0 != 0 goto out
r0 = *(u64 *)(r10 -8)
out:
exit"
    )
}

/// `bpf_xdp_store_bytes(ctx, off, &0x8877665544332211, 8)`.
fn store8(off: i64) -> String {
    format!(
        "
r5 = 0x8877665544332211 ll
*(u64 *)(r10 -8) = r5
r2 = {off}
r3 = r10
r3 += -8
r4 = 8
call 190
exit"
    )
}

/// `bpf_xdp_adjust_tail(ctx, a)`, then (if that worked) `(ctx, b)`.
fn adjust2(a: i32, b: i32) -> String {
    format!(
        "
r6 = r1
r2 = {a}
call 65
if r0 != 0 goto out
r1 = r6
r2 = {b}
call 65
out:
exit"
    )
}

#[test]
fn input_beyond_the_linear_area_becomes_fragments() {
    for mode in MODES {
        let lin = load(mode, LINEAR_LEN);
        let len = load(mode, BUFF_LEN);
        for (n, linear) in [
            (14usize, 14u64),
            (3520, 3520),
            (3521, 3520),
            (9000, 3520),
            (3520 + 17 * 4096, 3520),
        ] {
            let p = pkt(n);
            let r = lin.run_xdp(&p).unwrap();
            assert_eq!(r.r0, linear, "{mode:?} {n}");
            assert_eq!(r.packet, p, "{mode:?} {n}: data_out is linear + fragments");
            assert_eq!(r.ctx_u32(4), Some(linear as u32), "ctx_out.data_end");
            assert_eq!(len.run_xdp(&p).unwrap().r0, n as u64, "{mode:?} {n}");
            let mut buf = p.clone();
            assert_eq!(len.run_xdp_in_place(&mut buf).unwrap(), n as u64);
            assert_eq!(buf, p, "{mode:?} {n}: in-place output");
        }
    }
}

#[test]
fn too_much_or_too_little_input_is_refused_as_linux_does() {
    for mode in MODES {
        let p = load(mode, BUFF_LEN);
        match p.run_xdp(&pkt(3521 + 17 * 4096)) {
            Err(RunError::TooManyFragments {
                len, max, frags, ..
            }) => {
                assert_eq!((len, max, frags), (3521 + 17 * 4096, 3520 + 17 * 4096, 17));
            }
            other => panic!("{mode:?}: {other:?}"),
        }
        let mut big = pkt(100_000);
        assert!(matches!(
            p.run_xdp_in_place(&mut big),
            Err(RunError::TooManyFragments { .. })
        ));
        assert_eq!(big.len(), 100_000, "input left alone on error");
        assert!(matches!(
            p.run_xdp(&pkt(13)),
            Err(RunError::PacketTooShort { len: 13, .. })
        ));
        // Metadata does not count towards the 14 bytes.
        let mut ctx = [0u8; 24];
        ctx[0..4].copy_from_slice(&8u32.to_ne_bytes());
        ctx[4..8].copy_from_slice(&21u32.to_ne_bytes());
        assert!(matches!(
            p.run_xdp_with(&pkt(21), Some(&ctx)),
            Err(RunError::PacketTooShort { len: 13, .. })
        ));
    }
}

#[test]
fn ctx_in_data_end_sets_the_linear_size() {
    let ctx = |meta: u32, end: u32| {
        let mut c = [0u8; 24];
        c[0..4].copy_from_slice(&meta.to_ne_bytes());
        c[4..8].copy_from_slice(&end.to_ne_bytes());
        c
    };
    for mode in MODES {
        let lin = load(mode, LINEAR_LEN);
        let len = load(mode, BUFF_LEN);
        let p = pkt(4000);
        // (metadata, data_end) → linear bytes after the metadata (Linux 6.18).
        for (meta, end, linear) in [
            (0u32, 1000u32, 1000u64),
            (0, 4000, 3520),
            (0, 3600, 3520),
            (0, 10, 10),
            (8, 4000, 3520),
            (8, 1000, 992),
        ] {
            let r = lin.run_xdp_with(&p, Some(&ctx(meta, end))).unwrap();
            assert_eq!(r.r0, linear, "{mode:?} meta {meta} data_end {end}");
            assert_eq!(
                r.packet, p,
                "data_out has metadata, linear part and fragments"
            );
            assert_eq!(r.ctx_u32(0), Some(meta));
            assert_eq!(r.ctx_u32(4), Some(meta + linear as u32));
            let r = len.run_xdp_with(&p, Some(&ctx(meta, end))).unwrap();
            assert_eq!(r.r0, 4000 - u64::from(meta), "buff_len excludes metadata");
        }
        for bad in [ctx(0, 4001), ctx(12, 8), ctx(2, 4000)] {
            assert!(
                matches!(
                    lin.run_xdp_with(&p, Some(&bad)),
                    Err(RunError::BadContext {
                        errno: "EINVAL",
                        ..
                    })
                ),
                "{mode:?} {bad:?}"
            );
        }
    }
}

#[test]
fn load_and_store_bytes_cross_into_fragments() {
    let p = pkt(9000);
    let le = |off: usize| u64::from_le_bytes(p[off..off + 8].try_into().unwrap());
    for mode in MODES {
        for off in [0usize, 3512, 3516, 3520, 7612, 7616, 8992] {
            let r = load(mode, &load8(off as i64)).run_xdp(&p).unwrap();
            assert_eq!(r.r0, le(off), "{mode:?} load at {off}");
            let r = load(mode, &store8(off as i64)).run_xdp(&p).unwrap();
            assert_eq!(r.r0, 0, "{mode:?} store at {off}");
            let mut want = p.clone();
            want[off..off + 8].copy_from_slice(&0x8877665544332211u64.to_le_bytes());
            assert_eq!(r.packet, want, "{mode:?} store at {off}");
        }
        // Past the end: -EINVAL; offset above 0xffff: -EFAULT (buffer untouched).
        for (off, err) in [
            (8993i64, EINVAL),
            (9000, EINVAL),
            (0x10000, EFAULT),
            (-1, EFAULT),
        ] {
            let r = load(mode, &load8(off)).run_xdp(&p).unwrap();
            assert_eq!(r.r0, err, "{mode:?} load at {off}");
            let r = load(mode, &store8(off)).run_xdp(&p).unwrap();
            assert_eq!(r.r0, err, "{mode:?} store at {off}");
            assert_eq!(r.packet, p, "{mode:?} failed store changes nothing");
        }
        // A linear packet: the same limits on its own length.
        let small = pkt(100);
        let r = load(mode, &load8(92)).run_xdp(&small).unwrap();
        assert_eq!(r.r0, u64::from_le_bytes(small[92..100].try_into().unwrap()));
        assert_eq!(load(mode, &load8(93)).run_xdp(&small).unwrap().r0, EINVAL);
    }
}

#[test]
fn adjust_tail_grows_and_shrinks_across_fragments() {
    // 9000 bytes: linear 3520, fragments 4096 + 1384 (2712 bytes of tailroom).
    let p = pkt(9000);
    for mode in MODES {
        let run = |a: i32, b: i32| load(mode, &adjust2(a, b)).run_xdp(&p).unwrap();
        // Growing fills the last fragment's page with zeros, no further.
        let r = run(2712, 0);
        assert_eq!(r.r0, 0, "{mode:?}");
        assert_eq!(r.packet.len(), 9000 + 2712);
        assert_eq!(&r.packet[..9000], &p[..]);
        assert!(
            r.packet[9000..].iter().all(|&b| b == 0),
            "grown bytes zeroed"
        );
        assert_eq!(run(2713, 0).r0, EINVAL, "{mode:?} beyond the page");
        assert_eq!(run(2713, 0).packet, p);
        // Shrinking trims the last fragment, releases emptied ones and, once
        // none is left, the linear part.
        for (trim, left) in [
            (1, 8999),
            (1384, 7616),
            (1385, 7615),
            (5480, 3520),
            (8986, 14),
        ] {
            let r = run(-trim, 0);
            assert_eq!(r.r0, 0, "{mode:?} trim {trim}");
            assert_eq!(r.packet, p[..left], "{mode:?} trim {trim}");
        }
        assert_eq!(
            run(-8987, 0).r0,
            EINVAL,
            "{mode:?}: fewer than 14 bytes left"
        );
        // A trimmed fragment regains its page; without fragments the linear
        // limit (3520 bytes) applies again.
        let r = run(-1000, 2000);
        assert_eq!((r.r0, r.packet.len()), (0, 10000), "{mode:?}");
        assert_eq!(run(-5480, 1).r0, EINVAL, "{mode:?} linear part is full");
        let r = run(-5490, 10);
        assert_eq!((r.r0, r.packet.len()), (0, 3520), "{mode:?}");
        // -INT_MIN stays negative in Linux: nothing happens, success.
        let r = run(i32::MIN, 0);
        assert_eq!((r.r0, r.packet.len()), (0, 9000), "{mode:?}");
        // The buffer length and linear length follow.
        let r = load(
            mode,
            &format!("r6 = r1\nr2 = -5000\ncall 65\nr1 = r6\n{BUFF_LEN}"),
        )
        .run_xdp(&p)
        .unwrap();
        assert_eq!(r.r0, 4000);
        let r = load(
            mode,
            &format!("r6 = r1\nr2 = -5490\ncall 65\nr1 = r6\n{LINEAR_LEN}"),
        )
        .run_xdp(&p)
        .unwrap();
        assert_eq!(
            r.r0, 3510,
            "{mode:?} linear part shrinks after the fragments"
        );
    }
}

#[test]
fn in_place_runs_return_linear_part_and_fragments() {
    for mode in MODES {
        let prog = load(mode, &adjust2(-100, 0));
        let p = pkt(9000);
        let mut buf = p.clone();
        assert_eq!(prog.run_xdp_in_place(&mut buf).unwrap(), 0);
        assert_eq!(buf, p[..8900]);
        // Reusing the buffer (and this thread's fragment pages) many times.
        for _ in 0..50 {
            buf.clear();
            buf.extend_from_slice(&p);
            prog.run_xdp_in_place(&mut buf).unwrap();
            assert_eq!(buf, p[..8900]);
        }
    }
}

#[test]
fn frags_flag_comes_from_the_section() {
    for mode in MODES {
        let frags = load_in(mode, "xdp.frags", ProgType::Xdp, BUFF_LEN).unwrap();
        let plain = load_in(mode, "xdp", ProgType::Xdp, BUFF_LEN).unwrap();
        assert!(frags.xdp_has_frags());
        assert!(!plain.xdp_has_frags());
        // Linux's test_run builds fragments for both.
        assert_eq!(plain.run_xdp(&pkt(9000)).unwrap().r0, 9000);
        assert_eq!(frags.run_xdp(&pkt(9000)).unwrap().r0, 9000);
    }
}

#[test]
fn helper_prototypes_accept_and_reject_like_linux() {
    let mode = (Backend::Interpreter, true);
    // Accepted: ctx, offset, stack buffer, constant size.
    load(mode, &load8(0));
    load(mode, &store8(0));
    // A zero size is not a valid ARG_CONST_SIZE.
    let zero = "r2 = 0\nr3 = r10\nr3 += -8\nr4 = 0\ncall 189\nexit";
    assert!(matches!(
        load_in(mode, "xdp.frags", ProgType::Xdp, zero),
        Err(LoadError::Verify { .. })
    ));
    // The buffer must be memory of the size given (8 bytes of stack, not 16).
    let short = "r2 = 0\nr3 = r10\nr3 += -8\nr4 = 16\ncall 189\nexit";
    assert!(matches!(
        load_in(mode, "xdp.frags", ProgType::Xdp, short),
        Err(LoadError::Verify { .. })
    ));
    // r1 must be the context.
    let not_ctx = "r1 = r10\nr1 += -8\ncall 188\nexit";
    assert!(matches!(
        load_in(mode, "xdp.frags", ProgType::Xdp, not_ctx),
        Err(LoadError::Verify { .. })
    ));
    // XDP-only helpers: a tc program may not call them.
    for id in [188, 189, 190] {
        let asm = format!("r2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall {id}\nexit");
        assert!(
            load_in(mode, "tc", ProgType::SchedCls, &asm).is_err(),
            "helper {id} in a tc program"
        );
    }
}

#[test]
fn checked_mode_faults_on_bad_buffers_instead_of_corrupting_memory() {
    for backend in [Backend::Interpreter, Backend::Jit] {
        let mode = (backend, false);
        for id in [189, 190] {
            let asm = format!("r2 = 0\nr3 = 4096\nr4 = 8\ncall {id}\nexit");
            let p = load(mode, &asm);
            assert!(
                matches!(p.run_xdp(&pkt(9000)), Err(RunError::Exec { .. })),
                "{backend:?} helper {id}"
            );
        }
        // The context argument must be the run's context.
        let p = load(mode, "r1 = r10\ncall 188\nexit");
        assert!(matches!(p.run_xdp(&pkt(9000)), Err(RunError::Exec { .. })));
    }
}

/// One input: the packet and an optional `ctx_in`.
type Input = (Vec<u8>, Option<[u8; 24]>);

/// Runs `asm` as a `BPF_F_XDP_HAS_FRAGS` program in Linux and on the four
/// Cordon modes; retval, data_out and ctx_out (or failing at all) must agree.
fn compare_with_linux(asm: &str, inputs: &[Input]) {
    use cordon_linux::{ProgLoad, ProgType as KType, TestRun};
    let insns = assemble_linux(asm).unwrap();
    let mut kload = ProgLoad::new(KType::XDP, &insns).with_license("GPL");
    kload.prog_flags = cordon_object::BPF_F_XDP_HAS_FRAGS;
    let kprog = cordon_linux::require!(kload.load());
    for (pkt, ctx) in inputs {
        let mut run = TestRun::new(pkt);
        if let Some(c) = ctx {
            run = run.with_ctx(c);
        }
        let linux = kprog.test_run(&run);
        for mode in MODES {
            let p = load(mode, asm);
            let ours = p.run_xdp_with(pkt, ctx.as_ref().map(|c| &c[..]));
            let what = format!("{mode:?} {} bytes ctx {ctx:?}\n{asm}", pkt.len());
            match (&linux, &ours) {
                (Ok(k), Ok(r)) => {
                    assert_eq!(r.retval, k.retval, "retval: {what}");
                    assert_eq!(r.packet, k.data_out, "data_out: {what}");
                    if ctx.is_some() {
                        assert_eq!(r.ctx_out, k.ctx_out, "ctx_out: {what}");
                    }
                }
                (Err(_), Err(_)) => {}
                (k, r) => panic!(
                    "Linux {:?} vs Cordon {:?}: {what}",
                    k.as_ref().map(|k| k.retval),
                    r
                ),
            }
        }
    }
}

#[test]
fn fragments_and_helpers_match_linux() {
    let ctx = |meta: u32, end: u32| {
        let mut c = [0u8; 24];
        c[0..4].copy_from_slice(&meta.to_ne_bytes());
        c[4..8].copy_from_slice(&end.to_ne_bytes());
        Some(c)
    };
    let sizes = [14usize, 100, 3520, 3521, 4000, 8192, 9000, 20000];
    let plain: Vec<Input> = sizes.iter().map(|&n| (pkt(n), None)).collect();
    let mut with_ctx: Vec<Input> = vec![
        (pkt(4000), ctx(0, 1000)),
        (pkt(4000), ctx(0, 10)),
        (pkt(4000), ctx(8, 4000)),
        (pkt(4000), ctx(8, 1000)),
        (pkt(9000), ctx(4, 3600)),
        (pkt(21), ctx(8, 21)),
        (pkt(100), ctx(8, 8)),
        (pkt(100), ctx(0, 0)),
        (pkt(4096 * 3), ctx(0, 0)),
        (pkt(4000), ctx(0, 4001)),
        (pkt(3521 + 17 * 4096), None),
        (pkt(3520 + 17 * 4096), None),
    ];
    with_ctx.extend(plain.iter().cloned());
    compare_with_linux(LINEAR_LEN, &with_ctx);
    compare_with_linux(BUFF_LEN, &with_ctx);
    for off in [
        0i64, 80, 3512, 3516, 3520, 4000, 7612, 7616, 8992, 8993, 0xffff, 0x10000, -1,
    ] {
        compare_with_linux(&load8(off), &plain);
        compare_with_linux(&store8(off), &plain);
    }
    for (a, b) in [
        (1, 0),
        (2712, 0),
        (2713, 0),
        (100, 100),
        (-1, 0),
        (-86, 0),
        (-87, 0),
        (-1384, 0),
        (-1385, 7),
        (-1000, 2000),
        (-5480, 1),
        (-5490, 10),
        (-8986, 0),
        (-8987, 0),
        (-19986, 0),
        (i32::MIN, 0),
    ] {
        compare_with_linux(&adjust2(a, b), &plain);
    }
}

#[test]
fn helper_prototypes_agree_with_linux() {
    use cordon_linux::{KernelError, ProgLoad, ProgType as KType};
    let uninit_store = "r2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall 190\nexit";
    let uninit_load = "r2 = 0\nr3 = r10\nr3 += -8\nr4 = 8\ncall 189\nexit";
    let zero = "r2 = 0\nr3 = r10\nr3 += -8\nr4 = 0\ncall 189\nexit";
    let short = "r2 = 0\nr3 = r10\nr3 += -8\nr4 = 16\ncall 189\nexit";
    let not_ctx = "r1 = r10\nr1 += -8\ncall 188\nexit";
    let var_size = "r6 = r1\ncall 188\nr4 = r0\nr4 &= 7\nr4 += 1\nr1 = r6\nr2 = 0\nr3 = r10\nr3 += -8\ncall 189\nexit";
    let unbounded =
        "r6 = r1\ncall 188\nr4 = r0\nr1 = r6\nr2 = 0\nr3 = r10\nr3 += -8\ncall 189\nexit";
    let mut verdicts = Vec::new();
    for asm in [
        load8(0).as_str(),
        store8(0).as_str(),
        BUFF_LEN,
        uninit_store,
        uninit_load,
        zero,
        short,
        not_ctx,
        var_size,
        unbounded,
    ] {
        let insns = assemble_linux(asm).unwrap();
        let mut kload = ProgLoad::new(KType::XDP, &insns).with_license("GPL");
        kload.prog_flags = cordon_object::BPF_F_XDP_HAS_FRAGS;
        let linux_ok = match kload.load() {
            Ok(_) => true,
            Err(KernelError::Rejected { .. }) => false,
            Err(e) => match e.skip() {
                Some(reason) => {
                    cordon_linux::report_skip(reason);
                    return;
                }
                None => panic!("{e}"),
            },
        };
        let ours = load_in(
            (Backend::Interpreter, true),
            "xdp.frags",
            ProgType::Xdp,
            asm,
        );
        assert_eq!(ours.is_ok(), linux_ok, "{asm}\nCordon: {:?}", ours.err());
        verdicts.push(linux_ok);
    }
    // The set has programs Linux accepts and programs it rejects.
    assert!(verdicts.contains(&true) && verdicts.contains(&false));
}
