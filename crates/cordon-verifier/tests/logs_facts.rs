//! Log output (levels 1 and 2, statistics, line info) and verified facts.

mod common;
use common::*;
use cordon_verifier::{LineInfo, Profile, ProgType, VerifyEnv, verify};

#[test]
fn level1_log_shows_failing_path_and_reason() {
    let e = reject(
        &sock(),
        "r0 = 0\nr1 = 5\nr0 = *(u64 *)(r1 +0)\nexit",
        "R1 invalid mem access 'scalar'",
    );
    assert_eq!(e.insn, Some(2));
    assert!(e.log.contains("2: (79) r0 = *(u64 *)(r1 +0)"), "{}", e.log);
    // The reason is the last line before the statistics line, as in Linux.
    assert!(
        e.log
            .contains("R1 invalid mem access 'scalar'\nprocessed 3 insns"),
        "{}",
        e.log
    );
    assert!(e.to_string().starts_with("insn 2: "));
}

#[test]
fn level1_log_shows_branch_state() {
    let e = reject(
        &sock(),
        "call bpf_get_prandom_u32#7\nif r0 > 5 goto bad\nr0 = 0\nexit\nbad: r0 = *(u64 *)(r0 +0)\nexit",
        "R0 invalid mem access 'scalar'",
    );
    assert!(
        e.log.contains("from 1 to 4: R0=scalar(umin=6)"),
        "{}",
        e.log
    );
    // The fall-through path that succeeded is not part of the level-1 log.
    assert!(!e.log.contains("3: (95) exit"), "{}", e.log);
}

#[test]
fn level2_log_prints_every_state() {
    let env = sock().with_log_level(2);
    let f = verify(&prog(&env, "r0 = 1\nexit"), &env).unwrap();
    let _ = f;
    let e = verify(&prog(&env, "r0 = 1\nr1 = *(u64 *)(r0 +0)\nexit"), &env).unwrap_err();
    assert!(e.log.contains("0: R1=ctx() R10=fp0"), "{}", e.log);
    assert!(e.log.contains("1: R0=1 R1=ctx() R10=fp0"), "{}", e.log);
}

#[test]
fn statistics_line() {
    let e = reject(
        &sock(),
        "r0 = *(u64 *)(r1 +1000)\nexit",
        "invalid bpf_context access",
    );
    assert!(e.log.contains("processed 1 insns (limit 1000000) max_states_per_insn 1 total_states 1 peak_states 1 mark_read 0"), "{}", e.log);
}

#[test]
fn no_log_at_level_zero() {
    let env = sock().with_log_level(0);
    let e = verify(&prog(&env, "r0 = *(u64 *)(r1 +1000)\nexit"), &env).unwrap_err();
    assert!(e.log.is_empty());
    assert_eq!(e.message, "invalid bpf_context access off=1000 size=8");
}

#[test]
fn line_info_in_log() {
    let mut env = sock();
    env.line_info = vec![
        LineInfo {
            insn: 0,
            file: "prog.c".into(),
            line: 10,
            col: 1,
            source: "int x = 0;".into(),
        },
        LineInfo {
            insn: 1,
            file: "prog.c".into(),
            line: 11,
            col: 5,
            source: "return *(long *)ctx->bad;".into(),
        },
    ];
    let e = verify(&prog(&env, "r0 = 0\nr0 = *(u64 *)(r1 +1000)\nexit"), &env).unwrap_err();
    // As Linux: the source line before the instruction that starts it, then
    // the instruction, then the problem, then the statistics.
    let lines: Vec<&str> = e.log.lines().collect();
    let n = lines.len();
    assert!(n >= 4, "{}", e.log);
    assert_eq!(
        lines[n - 4],
        "; return *(long *)ctx->bad; @ prog.c:11",
        "{}",
        e.log
    );
    assert_eq!(lines[n - 3], "1: (79) r0 = *(u64 *)(r1 +1000)", "{}", e.log);
    assert_eq!(lines[n - 2], "invalid bpf_context access off=1000 size=8");
    assert!(lines[n - 1].starts_with("processed 2 insns"), "{}", e.log);
    assert!(lines.contains(&"; int x = 0; @ prog.c:10"), "{}", e.log);
    assert_eq!(
        e.to_string(),
        "insn 1: invalid bpf_context access off=1000 size=8"
    );
}

/// Structural errors (found before any path is explored) name the source
/// line of the offending instruction too.
#[test]
fn line_info_for_structural_errors() {
    let mut env = sock();
    env.line_info = vec![LineInfo {
        insn: 0,
        file: "a.c".into(),
        line: 3,
        col: 1,
        source: "  return 0;  ".into(),
    }];
    let e = verify(&prog(&env, "r0 = 0\nexit\nr0 = 1\nexit"), &env).unwrap_err();
    assert_eq!(e.log, "; return 0; @ a.c:3\nunreachable insn 2\n");
}

#[test]
fn register_state_formatting() {
    let env = xdp().with_log_level(2);
    let text = "r2 = *(u32 *)(r1 +0)\nr3 = *(u32 *)(r1 +4)\nr4 = r2\nr4 += 8\nif r4 > r3 goto out\nr1 = map[idx:0]\nr9 = r10\nr9 += -8\nr0 = 0\nr0 = *(u64 *)(r0 +0)\nout: r0 = 0\nexit";
    let e = verify(&prog(&env, text), &env).unwrap_err();
    assert!(e.log.contains("R2=pkt(r=8)"), "{}", e.log);
    assert!(e.log.contains("R3=pkt_end()"), "{}", e.log);
    assert!(e.log.contains("R4=pkt(off=8,r=8)"), "{}", e.log);
    assert!(e.log.contains("R1=map_ptr(map=h,ks=4,vs=8)"), "{}", e.log);
    assert!(e.log.contains("R9=fp-8"), "{}", e.log);
}

#[test]
fn facts_for_accepted_program() {
    let text =
        "*(u64 *)(r10 -24) = 0\ncall f\nr0 = 0\nexit\nf: *(u64 *)(r10 -40) = 0\nr0 = 0\nexit";
    let f = accept(&sock(), text);
    assert_eq!(f.subprogs.len(), 2);
    assert_eq!(f.subprogs[0].stack_depth, 24);
    assert_eq!(f.subprogs[1].stack_depth, 40);
    assert_eq!(f.max_stack_depth, 32 + 48);
    assert_eq!(f.max_refs, 0);
    assert!(f.stats.insn_processed >= 7);
    assert!(f.safe_points.contains_key(&1));
}

#[test]
fn profile_defaults_to_privileged() {
    let e = VerifyEnv::new(ProgType::Xdp);
    assert_eq!(e.profile, Profile::Privileged);
    assert_eq!(e.limits.max_stack, 512);
    assert_eq!(e.limits.max_call_frames, 8);
    assert_eq!(e.limits.max_insn_processed, 1_000_000);
}

#[test]
fn registry_is_shared_shape() {
    let r = cordon_verifier::Registry::linux();
    let lookup = r.helper(1).unwrap();
    assert_eq!(lookup.name, "map_lookup_elem");
    assert_eq!(lookup.nargs(), 2);
    for name in [
        "bpf_iter_num_new",
        "bpf_iter_num_next",
        "bpf_iter_num_destroy",
        "cordon_test_acquire",
        "cordon_test_release",
        "bpf_throw",
    ] {
        let id = r.kfunc_id(name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(r.kfunc(id).unwrap().name, name);
    }
    for id in [
        1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 23, 26, 28, 44, 51, 54, 65, 87, 88, 89, 93, 94, 125,
        130, 131, 132, 133, 134, 181,
    ] {
        assert!(r.helper(id).is_some(), "helper {id}");
    }
}

#[test]
fn stats_flag_adds_time_and_stack_depth() {
    let env = sock().with_log_level(1 | 4);
    let f = verify(
        &prog(
            &env,
            "*(u64 *)(r10 -24) = 0\ncall f\nr0 = 0\nexit\nf: *(u64 *)(r10 -8) = 0\nr0 = 0\nexit",
        ),
        &env,
    )
    .unwrap();
    assert!(f.log.contains("verification time "), "{}", f.log);
    assert!(f.log.contains("stack depth 24+8\n"), "{}", f.log);
    assert!(f.log.contains("processed "), "{}", f.log);
    // Level 1 starts with the initial state, like Linux.
    assert!(f.log.starts_with("0: R1=ctx() R10=fp0\n"), "{}", f.log);
}

#[test]
fn env_from_simple_inputs() {
    use cordon_verifier::{EnvError, MapInfo, MapType, Profile, ProgType, VerifyEnv};
    let env = VerifyEnv::from_parts(
        1,
        "unprivileged",
        5,
        vec![MapInfo::new("m", MapType::Hash, 4, 8, 1)],
    )
    .unwrap();
    assert_eq!(env.prog_type, ProgType::SocketFilter);
    assert_eq!(env.profile, Profile::Unprivileged);
    assert_eq!(env.log_level, 5);
    assert_eq!(env.maps.len(), 1);
    assert_eq!(
        VerifyEnv::from_parts(2, "privileged", 1, vec![]).unwrap_err(),
        EnvError::UnsupportedProgType(2)
    );
    assert_eq!(
        VerifyEnv::from_parts(6, "admin", 1, vec![]).unwrap_err(),
        EnvError::UnknownProfile("admin".into())
    );
    assert_eq!(
        VerifyEnv::from_parts(6, "privileged", 8, vec![]).unwrap_err(),
        EnvError::BadLogLevel(8)
    );
    let mut m = MapInfo::new("outer", MapType::ArrayOfMaps, 4, 4, 1);
    m.inner_map = Some(3);
    assert_eq!(
        VerifyEnv::from_parts(6, "privileged", 0, vec![m]).unwrap_err(),
        EnvError::BadInnerMap { map: 0, inner: 3 }
    );
    assert_eq!(ProgType::from_name("tc"), Some(ProgType::SchedCls));
    // The environment verifies: an unprivileged pointer leak is refused.
    let env = VerifyEnv::from_parts(1, "unprivileged", 1, vec![]).unwrap();
    let e = cordon_verifier::verify(&prog(&env, "r0 = r10\nexit"), &env).unwrap_err();
    assert_eq!(e.message, "R0 leaks addr as return value");
}
