//! Real clang-compiled programs (the repository's tests/bpf objects, loaded
//! by cordon-object) against their Linux 6.18 verdicts. The adapter (objload) is
//! what an integrator does: map specs -> `MapInfo`, kfunc names -> registry
//! ids, BTF signatures of global functions -> `GlobalFuncSig`, line info.

mod objload;
use cordon_isa::{Insn, Program};
use cordon_object::Object;
use cordon_verifier::{VerifiedFacts, VerifyError, verify};
use objload::{bpf_dir, linux_verdict, load};

fn verify_all() -> Vec<(String, String, Result<VerifiedFacts, VerifyError>)> {
    let mut out = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(bpf_dir())
        .expect("tests/bpf")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".o"))
        .collect();
    names.sort();
    for n in names {
        let bytes = std::fs::read(bpf_dir().join(&n)).unwrap();
        let obj = Object::parse(&bytes).unwrap_or_else(|e| panic!("{n}: {e}"));
        for p in &obj.programs {
            let Some((prog, env)) = load(&obj, p) else {
                continue;
            };
            out.push((n.clone(), p.name.clone(), verify(&prog, &env)));
        }
    }
    out
}

/// Programs whose features the verifier does not support yet, with the reason
/// (none at the moment: every object Linux 6.18 loads is accepted).
const UNSUPPORTED: &[(&str, &str)] = &[];

#[test]
fn linux_verdicts_on_real_objects() {
    let results = verify_all();
    assert!(results.len() > 20, "only {} programs", results.len());
    let mut failures = Vec::new();
    for (obj, prog, r) in &results {
        if let Some((_, why)) = UNSUPPORTED.iter().find(|(o, _)| o == obj) {
            match r {
                Ok(_) => eprintln!("{obj}/{prog}: now accepted (was: {why})"),
                Err(e) => eprintln!("{obj}/{prog}: rejected ({why}): {e}"),
            }
            continue;
        }
        if let Err(e) = r {
            failures.push(format!(
                "{obj}/{prog}: {e}\n{}",
                e.log
                    .lines()
                    .rev()
                    .take(12)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "Linux accepts these, Cordon rejected:\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn facts_of_real_objects() {
    let results = verify_all();
    // kfunc_obj: one reference at most, released on every path.
    let k = results
        .iter()
        .find(|(o, _, _)| o == "kfunc_obj.o")
        .expect("kfunc_obj.o");
    assert_eq!(k.2.as_ref().unwrap().max_refs, 1);
    // deep_calls: an 8-frame chain within 512 bytes.
    let d = results
        .iter()
        .find(|(o, _, _)| o == "deep_calls.o")
        .expect("deep_calls.o");
    let f = d.2.as_ref().unwrap();
    assert_eq!(f.subprogs[0].chain_frames, 8, "{:?}", f.subprogs);
    assert!(
        f.max_stack_depth <= 512 && f.max_stack_depth > 256,
        "{}",
        f.max_stack_depth
    );
    // iter_for: the loop back-edge has a safe point holding the iterator.
    let i = results
        .iter()
        .find(|(o, _, _)| o == "iter_for.o")
        .expect("iter_for.o");
    let f = i.2.as_ref().unwrap();
    assert!(!f.back_edges.is_empty());
}

/// Dropping a bounds check from a real program must be caught: turn each
/// register-register conditional jump of the XDP firewall into a fall-through
/// and count the mutants rejected for an out-of-bounds packet access.
#[test]
fn mutants_without_bounds_checks_are_rejected() {
    let bytes = std::fs::read(bpf_dir().join("xdp_firewall.o")).unwrap();
    let obj = Object::parse(&bytes).unwrap();
    let p = &obj.programs[0];
    let (prog, env) = load(&obj, p).unwrap();
    verify(&prog, &env).expect("original verifies");
    let mut packet_rejects = 0;
    let mut mutants = 0;
    for i in 0..prog.len() {
        let is_reg_jcond = prog.kind(i).is_some_and(|k| {
            matches!(
                k,
                cordon_isa::Kind::Jcond {
                    src: cordon_isa::Operand::Reg(_),
                    ..
                }
            )
        });
        if !is_reg_jcond {
            continue;
        }
        let mut insns = prog.insns().to_vec();
        insns[i] = Insn::new(0x05, 0, 0, 0, 0); // goto +0: always fall through
        let Ok(m) = Program::new(insns) else { continue };
        mutants += 1;
        if let Err(e) = verify(&m, &env)
            && e.message.contains("invalid access to packet")
        {
            packet_rejects += 1;
            // Linux's level-1 tail: the C source line (with file and line),
            // the failing instruction, the problem, the statistics.
            let lines: Vec<&str> = e.log.lines().collect();
            let n = lines.len();
            let at = e.insn.expect("instruction");
            assert_eq!(lines[n - 2], e.message, "{}", e.log);
            assert!(lines[n - 3].starts_with(&format!("{at}: (")), "{}", e.log);
            let src = lines[..n - 3]
                .iter()
                .rev()
                .find(|l| l.starts_with("; ") || l.starts_with("from "))
                .expect("a source line or path start");
            assert!(
                src.starts_with("; ") && src.contains(" @ ") && src.contains("xdp_firewall.c:"),
                "{}",
                e.log
            );
        }
    }
    assert!(mutants > 3, "{mutants} mutants");
    assert!(
        packet_rejects > 0,
        "no mutant of {mutants} was rejected for a packet access"
    );
}

/// Every tests/bpf program, as Cordon's loader produced it, gets the same
/// verdict from Cordon's verifier and from Linux's.
#[test]
fn same_verdict_as_linux_on_real_objects() {
    let mut names: Vec<String> = std::fs::read_dir(bpf_dir())
        .expect("tests/bpf")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".o"))
        .collect();
    names.sort();
    let (mut compared, mut agree, mut skipped) = (0, 0, Vec::new());
    let mut disagreements = Vec::new();
    for n in names {
        let bytes = std::fs::read(bpf_dir().join(&n)).unwrap();
        let obj = Object::parse(&bytes).unwrap_or_else(|e| panic!("{n}: {e}"));
        for p in &obj.programs {
            let Some((prog, env)) = load(&obj, p) else {
                skipped.push(format!(
                    "{n}/{}: program type not supported by Cordon",
                    p.name
                ));
                continue;
            };
            let cordon = verify(&prog, &env);
            match linux_verdict(&obj, p, 1) {
                Err(why) if why.starts_with("skip: ") => {
                    cordon_linux::report_skip(&format!(
                        "Linux object comparison: {}",
                        why.trim_start_matches("skip: ")
                    ));
                    return;
                }
                Err(why) => skipped.push(format!("{n}/{}: {why}", p.name)),
                Ok((linux_ok, log)) => {
                    compared += 1;
                    if linux_ok == cordon.is_ok() {
                        agree += 1;
                    } else {
                        let tail: Vec<&str> = log.lines().rev().take(6).collect();
                        disagreements.push(format!(
                            "{n}/{}: Cordon {:?}, Linux {}\n{}",
                            p.name,
                            cordon.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                            if linux_ok { "accepts" } else { "rejects" },
                            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                        ));
                    }
                }
            }
        }
    }
    eprintln!(
        "objects vs Linux: {compared} programs compared, {agree} agree; not compared: {skipped:#?}"
    );
    assert!(compared >= 20, "only {compared} programs compared");
    assert!(
        disagreements.is_empty(),
        "Cordon and Linux disagree:\n{}",
        disagreements.join("\n\n")
    );
}

/// Mutants of real programs (one instruction field changed, as the
/// soundness fuzzer does) get the same verdict from Cordon and Linux: a few
/// hundred loads of xdp_firewall, socket_filter and tail_call variants.
#[test]
fn mutants_of_real_programs_same_verdict_as_linux() {
    if let Err(e) = cordon_linux::available() {
        cordon_linux::report_skip(&format!("Linux mutant comparison: {e}"));
        return;
    }
    let mut rng = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let (mut compared, mut excepted, mut disagreements) = (0, 0, Vec::new());
    for name in [
        "xdp_firewall.o",
        "socket_filter.o",
        "maps_basic.o",
        "subprogs.o",
    ] {
        let bytes = std::fs::read(bpf_dir().join(name)).unwrap();
        let obj = Object::parse(&bytes).unwrap();
        for p in &obj.programs {
            let Some((prog, env)) = load(&obj, p) else {
                continue;
            };
            for _ in 0..60 {
                let mut insns = prog.insns().to_vec();
                let i = (next() % insns.len() as u64) as usize;
                match next() % 4 {
                    0 => insns[i].off = insns[i].off.wrapping_add((next() % 9) as i16 - 4),
                    1 => insns[i].imm = insns[i].imm.wrapping_add((next() % 17) as i32 - 8),
                    2 => insns[i].src = (next() % 11) as u8,
                    _ => insns[i].dst = (next() % 11) as u8,
                }
                let Ok(m) = Program::new(insns.clone()) else {
                    continue;
                };
                let cordon = verify(&m, &env);
                let mut spec = p.clone();
                spec.insns = insns;
                let Ok((linux_ok, log)) = linux_verdict(&obj, &spec, 1) else {
                    continue;
                };
                compared += 1;
                if cordon.is_ok() == linux_ok {
                    continue;
                }
                // Listed exceptions: (1) `lddw src=1/2` carry file
                // descriptors in Linux, map indices in Cordon (it has no
                // fds); (2) helpers outside Cordon's registry (the helpers
                // the runtime implements) that Linux has.
                let fd_form = m
                    .kinds()
                    .iter()
                    .any(|k| matches!(k, Some(cordon_isa::Kind::Lddw { pseudo: 1 | 2, .. })));
                let unknown_helper = cordon
                    .as_ref()
                    .err()
                    .is_some_and(|e| e.message.starts_with("invalid func unknown#"));
                if fd_form || (unknown_helper && linux_ok) {
                    excepted += 1;
                    continue;
                }
                {
                    disagreements.push(format!(
                        "{name}/{} insn {i}: Cordon {:?}, Linux {} ({})",
                        p.name,
                        cordon.err().map(|e| e.to_string()),
                        if linux_ok { "accepts" } else { "rejects" },
                        log.lines().rev().nth(1).unwrap_or("")
                    ));
                }
            }
        }
    }
    eprintln!(
        "real-program mutants vs Linux: {compared} compared, {} disagree, {excepted} listed exceptions",
        disagreements.len()
    );
    assert!(compared > 100, "only {compared} mutants compared");
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
