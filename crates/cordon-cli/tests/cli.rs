//! The `cordon` command line: every subcommand, JSON shape, exit codes, and
//! clear errors (never panics) on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bpf(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bpf")).join(name)
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(path)
}

fn cordon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .output()
        .expect("spawn cordon")
}

/// `cordon COMMAND FILE ARGS...`
fn on(command: &str, file: &Path, args: &[&str]) -> Output {
    let mut a = vec![command, p(file)];
    a.extend_from_slice(args);
    cordon(&a)
}

/// `cordon run FILE ARGS...`
fn run(file: &Path, args: &[&str]) -> Output {
    on("run", file, args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code `code`, and no panic message.
#[track_caller]
fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
    assert!(!stderr(o).contains("panicked"), "{}", stderr(o));
}

/// A clean error: exit 2, `error: ...` naming `needle` on stderr.
#[track_caller]
fn assert_error(o: &Output, needle: &str) {
    assert_exit(o, 2);
    let e = stderr(o);
    assert!(e.starts_with("error: "), "{e}");
    assert!(e.contains(needle), "expected {needle:?} in: {e}");
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(stdout(o).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

#[test]
fn raw_programs_run_on_both_engines() {
    let dir = tmp();
    let src = dir.path().join("p.s");
    // r0 = first byte + length; writes 0x7f to byte 1.
    std::fs::write(
        &src,
        "r0 = *(u8 *)(r1 +0)\nr0 += r2\nr3 = 127\n*(u8 *)(r1 +1) = r3\nexit\n",
    )
    .unwrap();
    let input = dir.path().join("in.bin");
    std::fs::write(&input, [5u8, 0, 0, 0]).unwrap();
    for engine in ["interp", "jit"] {
        let out = dir.path().join(format!("out-{engine}.bin"));
        let o = run(
            &src,
            &[
                "--data-in",
                p(&input),
                "--data-out",
                p(&out),
                "--engine",
                engine,
            ],
        );
        assert_exit(&o, 0);
        let text = stdout(&o);
        assert!(text.contains("retval: 9\n"), "{text}");
        assert!(text.contains("duration: "), "{text}");
        assert_eq!(std::fs::read(&out).unwrap(), [5, 127, 0, 0]);
        let o = run(
            &src,
            &[
                "--data-in",
                p(&input),
                "--json",
                "--repeat",
                "3",
                "--engine",
                engine,
            ],
        );
        assert_exit(&o, 0);
        let v = json(&o);
        assert_eq!(v["retval"], 9);
        assert!(v["duration_ns"].is_u64());
        assert!(v["test_objects_live"].is_u64());
    }
}

#[test]
fn asm_and_disasm_round_trip() {
    let dir = tmp();
    let src = dir.path().join("p.s");
    std::fs::write(&src, "r0 = 1\nr0 += 2\nexit\n").unwrap();
    let bin = dir.path().join("p.bin");
    let o = cordon(&["asm", p(&src), p(&bin)]);
    assert_exit(&o, 0);
    assert_eq!(std::fs::read(&bin).unwrap().len(), 24);
    let o = cordon(&["disasm", p(&bin)]);
    assert_exit(&o, 0);
    assert_eq!(
        stdout(&o),
        "0: (b7) r0 = 1\n1: (07) r0 += 2\n2: (95) exit\n"
    );
    let o = cordon(&["disasm", p(&bin), "--suite"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("mov %r0, 1"), "{}", stdout(&o));
    let o = cordon(&["disasm", p(&bin), "--prog", "x"]);
    assert_error(&o, "--prog applies to objects");
}

#[test]
fn disasm_object_interleaves_source_lines() {
    let o = cordon(&["disasm", p(&bpf("xdp_firewall.o"))]);
    assert_exit(&o, 0);
    let text = stdout(&o);
    assert!(
        text.starts_with("; program xdp_firewall (section xdp, type xdp)"),
        "{text}"
    );
    assert!(text.contains("; map[idx:0] = fw_rules (hash)"), "{text}");
    assert!(
        text.contains("; if ((void *)(eth + 1) > data_end) { @ xdp_firewall.c:117\n"),
        "{text}"
    );
    assert!(text.contains("(85) call bpf_map_lookup_elem#1"), "{text}");
    // Every instruction is printed once, in order.
    let pcs: Vec<usize> = text
        .lines()
        .filter_map(|l| l.split_once(':')?.0.parse().ok())
        .collect();
    assert!(pcs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(pcs.last(), Some(&186));

    // Subprograms get a header; kfunc calls are named.
    let o = cordon(&["disasm", p(&bpf("subprogs.o")), "--prog", "prog_a"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("\nsquare_plus:\n"), "{}", stdout(&o));
    let o = cordon(&["disasm", p(&bpf("kfunc_obj.o"))]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("call cordon_test_acquire#"),
        "{}",
        stdout(&o)
    );
    // Every program when --prog is omitted.
    let o = cordon(&["disasm", p(&bpf("tail_call.o"))]);
    assert_exit(&o, 0);
    for name in ["tail_one", "tail_double", "tail_entry"] {
        assert!(stdout(&o).contains(&format!("; program {name} ")));
    }
    let o = cordon(&["disasm", p(&bpf("tail_call.o")), "--prog", "nope"]);
    assert_error(
        &o,
        "no program named \"nope\" (programs: tail_one, tail_double, tail_entry)",
    );
}

#[test]
fn inspect_lists_programs_maps_relocations_kfuncs() {
    let o = cordon(&["inspect", p(&bpf("xdp_firewall.o"))]);
    assert_exit(&o, 0);
    let t = stdout(&o);
    assert!(
        t.contains("fw_rules (hash, section .maps): key 20 value 16 max_entries 1024"),
        "{t}"
    );
    assert!(
        t.contains("xdp_firewall (section xdp, type xdp): 187 instructions"),
        "{t}"
    );
    assert!(t.contains("reloc   139: map fw_rules"), "{t}");
    let o = cordon(&["inspect", p(&bpf("kfunc_obj.o"))]);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("kfuncs (2):"), "{}", stdout(&o));
}

#[test]
fn verify_exit_codes() {
    let o = cordon(&["verify", p(&bpf("xdp_firewall.o"))]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).starts_with("xdp_firewall: accepted ("),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    // Level 1 on success: Linux keeps only the summary line.
    let o = on(
        "verify",
        &bpf("subprogs.o"),
        &["--prog", "prog_b", "--log-level", "1"],
    );
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("prog_b: accepted"));
    assert!(!stdout(&o).contains("prog_a"));
    // Unprivileged: pointer subtraction is refused, so the firewall is rejected.
    let fw = bpf("xdp_firewall.o");
    let o = on(
        "verify",
        &fw,
        &["--profile", "unprivileged", "--log-level", "1"],
    );
    assert_exit(&o, 1);
    assert_eq!(stdout(&o), "xdp_firewall: rejected\n");
    let e = stderr(&o);
    assert!(e.contains("pointer -= pointer prohibited"), "{e}");
    assert!(e.contains("xdp_firewall.c:113"), "{e}");
    let o = on("verify", &fw, &["--log-level", "9"]);
    assert_exit(&o, 2);
}

#[test]
fn malformed_inputs_give_clear_errors() {
    let dir = tmp();
    // Truncated ELF, at several lengths.
    let full = std::fs::read(bpf("xdp_firewall.o")).unwrap();
    for cut in [4usize, 64, 300, full.len() / 2, full.len() - 1] {
        let f = dir.path().join(format!("cut{cut}.o"));
        std::fs::write(&f, &full[..cut]).unwrap();
        for cmd in ["inspect", "disasm", "verify", "run"] {
            let o = cordon(&[cmd, p(&f)]);
            assert_exit(&o, 2);
            assert!(
                stderr(&o).starts_with("error: "),
                "{cmd} {cut}: {}",
                stderr(&o)
            );
            assert!(
                stderr(&o).contains(&format!("cut{cut}.o")),
                "{}",
                stderr(&o)
            );
        }
    }
    // Missing files.
    let missing = dir.path().join("missing.o");
    for cmd in ["inspect", "disasm", "verify", "run"] {
        let o = cordon(&[cmd, p(&missing)]);
        assert_error(&o, "cannot read");
    }
    // A directory is unreadable as a program.
    let o = cordon(&["run", p(dir.path())]);
    assert_exit(&o, 2);
    // Not an object for inspect.
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "hello").unwrap();
    let o = cordon(&["inspect", p(&txt)]);
    assert_error(&o, "not an ELF object");
    // Several programs and no --prog.
    assert_error(&run(&bpf("tail_call.o"), &[]), "choose one with --prog");
    assert_error(
        &run(&bpf("tail_call.o"), &["--prog", "missing"]),
        "no program named \"missing\"",
    );
    // Object-only options on raw programs.
    let src = dir.path().join("p.s");
    std::fs::write(&src, "r0 = 0\nexit\n").unwrap();
    for (args, needle) in [
        (
            &["--dump-maps"][..],
            "--dump-maps applies to BPF ELF objects",
        ),
        (&["--repeat", "0"][..], "--repeat must be at least 1"),
    ] {
        assert_error(&run(&src, args), needle);
    }
    // A bad instruction in assembly.
    std::fs::write(&src, "r0 = \nexit\n").unwrap();
    assert_exit(&run(&src, &[]), 2);
    // An unreadable --data-in.
    std::fs::write(&src, "r0 = 0\nexit\n").unwrap();
    assert_error(&run(&src, &["--data-in", p(&missing)]), "cannot read");
}

#[test]
fn conformance_plugin_runs_a_program_with_memory() {
    // ldxh %r0, [%r1+2]; exit -- over aa bb 11 22 cc dd -> 0x2211.
    let program = "6910020000000000" // ldxh r0, [r1+2]
        .to_string()
        + "9500000000000000"; // exit
    let mut child = Command::new(env!("CARGO_BIN_EXE_cordon-conformance-plugin"))
        .arg("aabb1122ccdd")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(program.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 0);
    assert_eq!(stdout(&o).trim(), "2211");
    // The same file from the shared suite, when it is present.
    let shared = std::env::var("CORDON_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo("../shared"));
    let data = shared.join("conformance/tests/ldxh.data");
    if let Ok(text) = std::fs::read_to_string(&data) {
        assert!(text.contains("ldxh %r0, [%r1+2]") && text.contains("0x2211"));
    } else {
        cordon_linux::report_skip(&format!("{} not found", data.display()));
    }
}

#[test]
fn demo_capture_is_reproducible() {
    let script = repo("demo/make_pcap.py");
    match Command::new("python3").arg(&script).arg("--check").output() {
        Ok(o) => assert_exit(&o, 0),
        Err(e) => cordon_linux::report_skip(&format!("python3 not available: {e}")),
    }
}

/// An IPv4/TCP frame from `src` to port 443.
fn tcp_frame(src: [u8; 4]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 0xfe, 2, 0, 0, 0, 0x12, 0x34, 8, 0];
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[10, 0, 0, 254, 0x10, 0x00, 0x01, 0xbb]);
    f.extend_from_slice(&[0u8; 16]);
    f
}

const BLOCK_66: &str =
    "fw_rules:0a000042_000000000000000000000000_0000_00_04=01000000_00000000_0000000000000000";

#[test]
fn run_object_json_and_map_setup() {
    let dir = tmp();
    let pkt = dir.path().join("p.bin");
    std::fs::write(&pkt, tcp_frame([10, 0, 0, 66])).unwrap();
    let fw = bpf("xdp_firewall.o");
    // No rules: XDP_PASS. --prog may be omitted (one program).
    let o = run(&fw, &["--data-in", p(&pkt)]);
    assert_exit(&o, 0);
    let t = stdout(&o);
    assert!(
        t.starts_with("retval: 2\naction: XDP_PASS\nduration: "),
        "{t}"
    );
    for engine in ["interp", "jit"] {
        for verified in [true, false] {
            let out = dir.path().join("out.bin");
            let mut args = vec![
                "--prog",
                "xdp_firewall",
                "--data-in",
                p(&pkt),
                "--data-out",
                p(&out),
                "--engine",
                engine,
                "--map-update",
                BLOCK_66,
                "--json",
                "--dump-maps",
            ];
            if !verified {
                args.push("--unverified");
            }
            let o = run(&fw, &args);
            assert_exit(&o, 0);
            let v = json(&o);
            assert_eq!(v["retval"], 1, "{v}");
            assert_eq!(v["action"], "XDP_DROP");
            assert_eq!(v["engine"], engine);
            assert_eq!(v["verified"], verified);
            assert_eq!(v["test_objects_live"], 0);
            assert!(v["duration_ns"].is_u64());
            let rules = &v["maps"]["fw_rules"]["entries"];
            assert_eq!(rules.as_array().unwrap().len(), 1);
            assert_eq!(rules[0]["formatted"]["value"]["hits"], 1);
            assert_eq!(rules[0]["formatted"]["key"]["family"], 4);
            // fw_stats[1] (drop): one packet of 54 bytes on the CPU that ran.
            let stats = &v["maps"]["fw_stats"]["entries"][1]["formatted"]["values"];
            let packets: u64 = stats
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["packets"].as_u64().unwrap())
                .sum();
            assert_eq!(packets, 1, "{stats}");
            assert_eq!(std::fs::read(&out).unwrap(), tcp_frame([10, 0, 0, 66]));
        }
    }
    // The same rule from a maps file.
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"{"maps": {"fw_rules": [{"key": "0a000042000000000000000000000000 00000004", "value": "01000000000000000000000000000000", "comment": "x"}]}}"#,
    )
    .unwrap();
    let o = run(
        &fw,
        &["--data-in", p(&pkt), "--maps-file", p(&rules), "--json"],
    );
    assert_exit(&o, 0);
    assert_eq!(json(&o)["retval"], 1);
}

#[test]
fn run_object_setup_errors() {
    let dir = tmp();
    let pkt = dir.path().join("p.bin");
    std::fs::write(&pkt, tcp_frame([10, 0, 0, 66])).unwrap();
    let fw = bpf("xdp_firewall.o");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"maps\": {\"fw_rules\": [{\"key\": \"00\"}]}}").unwrap();
    let cases: [(&str, &str, &str); 9] = [
        (
            "--map-update",
            "fw_rules:00=00",
            "takes a 20-byte key, got 1 bytes",
        ),
        (
            "--map-update",
            "nosuch:00=00",
            "no map named \"nosuch\" (maps: fw_rules, fw_stats)",
        ),
        ("--map-update", "fw_rules", "expected MAP:KEYHEX=VALUEHEX"),
        ("--map-update", "fw_rules:zz=00", "is not hex"),
        ("--maps-file", p(&bad), "missing \"value\""),
        (
            "--maps-file",
            "/nonexistent/rules.json",
            "cannot read maps file",
        ),
        ("--tail-call", "fw_rules", "expected MAP:INDEX=PROG"),
        ("--tail-call", "fw_rules:x=xdp_firewall", "is not a number"),
        ("--tail-call", "fw_rules:0=xdp_firewall", "not a prog_array"),
    ];
    for (option, value, needle) in cases {
        assert_error(&run(&fw, &["--data-in", p(&pkt), option, value]), needle);
    }
    // Packets Linux refuses (shorter than an Ethernet header) are errors too.
    std::fs::write(&pkt, [1u8, 2, 3]).unwrap();
    assert_error(&run(&fw, &["--data-in", p(&pkt)]), "too short");
    // An object run needs a packet.
    assert_error(&run(&fw, &[]), "needs --data-in FILE");
}

#[test]
fn run_object_tail_calls_trace_and_kfuncs() {
    let dir = tmp();
    let pkt = dir.path().join("p.bin");
    let mut frame = vec![2u8; 60];
    frame[0] = 2; // slot 2: empty unless set
    std::fs::write(&pkt, &frame).unwrap();
    let tc = bpf("tail_call.o");
    let entry = |extra: &[&str]| {
        let mut a = vec!["--prog", "tail_entry", "--data-in", p(&pkt)];
        a.extend_from_slice(extra);
        run(&tc, &a)
    };
    let o = entry(&["--json"]);
    assert_exit(&o, 0);
    assert_eq!(json(&o)["retval"], 99);
    let o = entry(&["--json", "--tail-call", "jump_table:2=tail_double"]);
    assert_exit(&o, 0);
    let v = json(&o);
    assert_eq!(v["retval"], 120);
    assert_eq!(v["tail_calls"], 1);
    for (slot, needle) in [
        ("jump_table:9=tail_double", "slot 9 is out of range"),
        ("jump_table:1=nope", "no program named \"nope\""),
    ] {
        assert_error(&entry(&["--tail-call", slot]), needle);
    }
    // bpf_printk output: stderr in text mode, "trace" in JSON.
    let gd = bpf("global_data.o");
    let o = run(&gd, &["--data-in", p(&pkt)]);
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("trace: global_data len=60 ret="),
        "{}",
        stderr(&o)
    );
    let o = run(&gd, &["--data-in", p(&pkt), "--json"]);
    let v = json(&o);
    assert_eq!(v["trace"][1], "call\n");
    // The test kfuncs: first byte 5 -> 15, every object released.
    frame[0] = 5;
    std::fs::write(&pkt, &frame).unwrap();
    let o = run(&bpf("kfunc_obj.o"), &["--data-in", p(&pkt), "--json"]);
    assert_exit(&o, 0);
    let v = json(&o);
    assert_eq!(v["retval"], 15);
    assert_eq!(v["test_objects_live"], 0);
}

#[test]
fn run_over_the_demo_capture() {
    let pcap = repo("demo/sample.pcap");
    let rules = repo("demo/rules.json");
    let fw = bpf("xdp_firewall.o");
    let mut counts = Vec::new();
    for engine in ["interp", "jit"] {
        let o = run(
            &fw,
            &[
                "--pcap",
                p(&pcap),
                "--maps-file",
                p(&rules),
                "--engine",
                engine,
                "--json",
            ],
        );
        assert_exit(&o, 0);
        let v = json(&o);
        assert_eq!(v["packets"], 3000);
        let results = v["results"].as_object().unwrap();
        let total: u64 = results.values().map(|n| n.as_u64().unwrap()).sum();
        assert_eq!(total + v["errors"].as_u64().unwrap(), 3000);
        assert!(results["XDP_DROP"].as_u64().unwrap() > 100, "{v}");
        assert!(results["XDP_PASS"].as_u64().unwrap() > 1000, "{v}");
        // The runts of the capture: refused like Linux refuses them.
        assert!(v["first_error"].as_str().unwrap().contains("too short"));
        assert!(v["packets_per_second"].as_u64().unwrap() > 0);
        counts.push(v["results"].clone());
    }
    assert_eq!(counts[0], counts[1], "interpreter and JIT disagree");
    // Text report.
    let o = run(&fw, &["--pcap", p(&pcap), "--maps-file", p(&rules)]);
    assert_exit(&o, 0);
    let t = stdout(&o);
    assert!(t.starts_with("packets: 3000\n"), "{t}");
    assert!(
        t.contains("XDP_DROP") && t.contains("XDP_PASS") && t.contains("time per packet: "),
        "{t}"
    );
    // Not a capture.
    let o = run(&fw, &["--pcap", p(&fw)]);
    assert_error(&o, "not a pcap or pcapng capture");
    // --pcap and --data-in exclude each other.
    let o = run(&fw, &["--pcap", p(&pcap), "--data-in", p(&pcap)]);
    assert_exit(&o, 2);
}

#[test]
fn run_object_with_context_in_and_out() {
    let dir = tmp();
    let pkt = dir.path().join("p.bin");
    let mut frame = vec![0u8; 100];
    frame[12] = 0x08; // EtherType IPv4
    std::fs::write(&pkt, &frame).unwrap();
    let ctx_in = dir.path().join("ctx_in.bin");
    let mut ctx = vec![0u8; 192];
    ctx[8..12].copy_from_slice(&7u32.to_le_bytes()); // mark 7 on the way in
    std::fs::write(&ctx_in, &ctx).unwrap();
    let ctx_out = dir.path().join("ctx_out.bin");
    let tc_mark = |extra: &[&str]| {
        let mut a = vec![
            "--prog",
            "tc_mark",
            "--data-in",
            p(&pkt),
            "--ctx-in",
            p(&ctx_in),
        ];
        a.extend_from_slice(extra);
        run(&bpf("tc_mark.o"), &a)
    };
    let o = tc_mark(&["--ctx-out", p(&ctx_out), "--json"]);
    assert_exit(&o, 0);
    assert_eq!(json(&o)["action"], "TC_ACT_OK");
    let out = std::fs::read(&ctx_out).unwrap();
    assert_eq!(out.len(), 192);
    // skb->mark = len << 16 | protocol (0x0008 in network order read as u32).
    let mark = u32::from_le_bytes(out[8..12].try_into().unwrap());
    assert_eq!(mark, (100 << 16) | 0x0008);
    // Linux refuses a non-zero len in ctx_in; so does Cordon.
    ctx[0..4].copy_from_slice(&5u32.to_le_bytes());
    std::fs::write(&ctx_in, &ctx).unwrap();
    assert_exit(&tc_mark(&[]), 2);
}

/// A pcapng block (little-endian).
fn ng_block(ty: u32, body: &[u8]) -> Vec<u8> {
    let mut padded = body.to_vec();
    while !padded.len().is_multiple_of(4) {
        padded.push(0);
    }
    let total = (padded.len() + 12) as u32;
    let mut b = ty.to_le_bytes().to_vec();
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(&padded);
    b.extend_from_slice(&total.to_le_bytes());
    b
}

#[test]
fn run_over_a_pcapng_capture() {
    let mut f = Vec::new();
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    f.extend(ng_block(0x0a0d_0d0a, &shb));
    f.extend(ng_block(1, &[1, 0, 0, 0, 0, 0, 0, 0])); // Ethernet, snaplen 0
    for src in [[10, 0, 0, 66], [10, 0, 0, 1], [10, 0, 0, 66]] {
        let pkt = tcp_frame(src);
        let mut epb = vec![0u8; 12];
        epb.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        epb.extend_from_slice(&pkt);
        f.extend(ng_block(6, &epb));
    }
    let dir = tmp();
    let path = dir.path().join("c.pcapng");
    std::fs::write(&path, &f).unwrap();
    let fw = bpf("xdp_firewall.o");
    let o = run(
        &fw,
        &["--pcap", p(&path), "--map-update", BLOCK_66, "--json"],
    );
    assert_exit(&o, 0);
    let v = json(&o);
    assert_eq!(v["packets"], 3);
    assert_eq!(v["results"]["XDP_DROP"], 2);
    assert_eq!(v["results"]["XDP_PASS"], 1);
    // Truncated in the middle of a block: a clear error naming the offset.
    std::fs::write(&path, &f[..f.len() - 10]).unwrap();
    let o = run(&fw, &["--pcap", p(&path)]);
    assert_error(&o, "capture truncated at byte");
}

/// Corrupted objects (deterministic byte mutations of a real one) through
/// every object command: an error or a result, never a panic or a signal.
#[test]
fn corrupted_objects_never_crash_the_cli() {
    let dir = tmp();
    let orig = std::fs::read(bpf("xdp_firewall.o")).unwrap();
    let pkt = dir.path().join("p.bin");
    std::fs::write(&pkt, tcp_frame([10, 0, 0, 66])).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..150 {
        let mut bytes = orig.clone();
        for _ in 0..1 + next() % 8 {
            let at = (next() as usize) % bytes.len();
            bytes[at] = next() as u8;
        }
        let f = dir.path().join(format!("m{round}.o"));
        std::fs::write(&f, &bytes).unwrap();
        for args in [
            vec!["inspect", p(&f)],
            vec!["disasm", p(&f)],
            vec!["verify", p(&f)],
            vec!["run", p(&f), "--data-in", p(&pkt)],
        ] {
            let o = cordon(&args);
            let code = o.status.code();
            assert!(
                matches!(code, Some(0..=2)),
                "round {round} {args:?}: {:?}\n{}",
                o.status,
                stderr(&o)
            );
            assert!(
                !stderr(&o).contains("panicked"),
                "round {round} {args:?}: {}",
                stderr(&o)
            );
        }
    }
}

/// xdp_redirect_map.o reads (operation, key, flags) from the packet's first
/// three bytes (tests/bpf/xdp_redirect_map.c); the rest is padding.
fn redirect_packet(dir: &Path, name: &str, op_key_flags: [u8; 3]) -> PathBuf {
    let mut pkt = op_key_flags.to_vec();
    pkt.resize(64, 0);
    let f = dir.join(name);
    std::fs::write(&f, pkt).unwrap();
    f
}

/// `cordon run` prints the redirect the program requested (recorded, never
/// performed) as one line, and as the `"redirect"` object with `--json`; a
/// run without a redirect prints neither; a map entry of the wrong size is a
/// clean error.
#[test]
fn run_shows_the_recorded_redirect() {
    let dir = tmp();
    let obj = bpf("xdp_redirect_map.o");
    let to_dev = redirect_packet(dir.path(), "dev.bin", [0, 1, 0]);
    let to_cpu = redirect_packet(dir.path(), "cpu.bin", [2, 0, 0]);
    // Key 2 is not in tx_dev; flags 2 make the miss return XDP_PASS.
    let miss = redirect_packet(dir.path(), "miss.bin", [0, 2, 2]);
    // struct bpf_devmap_val { ifindex 7, prog fd 0 }.
    let dev_entry = "tx_dev:01000000=0700000000000000";
    for engine in ["interp", "jit"] {
        let args = |pkt: &Path, update: &str, json: bool| {
            let mut a = vec![
                "--prog",
                "xdp_redirect_map",
                "--engine",
                engine,
                "--data-in",
                p(pkt),
                "--map-update",
            ];
            a.push(update);
            if json {
                a.push("--json");
            }
            run(&obj, &a)
        };

        let o = args(&to_dev, dev_entry, false);
        assert_exit(&o, 0);
        let out = stdout(&o);
        assert!(out.contains("retval: 4\n"), "{engine}: {out}");
        assert!(out.contains("action: XDP_REDIRECT\n"), "{engine}: {out}");
        assert!(
            out.lines()
                .any(|l| l == "redirect: devmap \"tx_dev\"[1] -> ifindex 7"),
            "{engine}: {out}"
        );

        let j = json(&args(&to_dev, dev_entry, true));
        assert_eq!(j["retval"], 4, "{engine}: {j}");
        assert_eq!(
            j["redirect"],
            serde_json::json!({
                "kind": "map",
                "map": "tx_dev",
                "map_type": "devmap",
                "key": 1,
                "flags": 0,
                "target": { "ifindex": 7 },
            }),
            "{engine}: {j}"
        );

        // cpumap entry: queue size 192 on CPU 0.
        let cpu_entry = "cpus:00000000=c0000000";
        let o = args(&to_cpu, cpu_entry, false);
        assert_exit(&o, 0);
        assert!(
            stdout(&o)
                .lines()
                .any(|l| l == "redirect: cpumap \"cpus\"[0] -> cpu 0 (qsize 192)"),
            "{engine}: {}",
            stdout(&o)
        );
        let j = json(&args(&to_cpu, cpu_entry, true));
        assert_eq!(j["redirect"]["map_type"], "cpumap", "{engine}: {j}");
        assert_eq!(
            j["redirect"]["target"],
            serde_json::json!({ "cpu": 0, "qsize": 192 }),
            "{engine}: {j}"
        );

        // No redirect requested: no line, JSON null.
        let o = args(&miss, dev_entry, false);
        assert_exit(&o, 0);
        assert!(
            stdout(&o).contains("retval: 2\n"),
            "{engine}: {}",
            stdout(&o)
        );
        assert!(
            !stdout(&o).contains("redirect:"),
            "{engine}: {}",
            stdout(&o)
        );
        let j = json(&args(&miss, dev_entry, true));
        assert_eq!(j["retval"], 2, "{engine}: {j}");
        assert!(j["redirect"].is_null(), "{engine}: {j}");

        // A devmap value of 3 bytes is refused before the run.
        let o = args(&to_dev, "tx_dev:01000000=070000", false);
        assert_error(&o, "\"tx_dev\" (devmap) takes a 8-byte value, got 3 bytes");
        assert!(
            !stdout(&o).contains("redirect:"),
            "{engine}: {}",
            stdout(&o)
        );
    }
}

/// Linux's test_run linear area for XDP (no metadata); the rest of a packet
/// goes into page-sized fragments, at most 17.
const XDP_LINEAR: usize = 3520;
const XDP_MAX_LEN: usize = XDP_LINEAR + 17 * 4096;

/// A 9000-byte packet through the multi-buffer program xdp_frags.o: the run
/// succeeds on both engines, and the output keeps all 9000 bytes with the
/// program's two writes across the linear/fragment boundary; a packet
/// larger than test_run accepts is refused with a message naming its size.
#[test]
fn run_multi_buffer_packet_through_files() {
    let dir = tmp();
    let obj = bpf("xdp_frags.o");
    // Bytes 14 and 15 (trim / 32, grow / 16) are 0: the program leaves the
    // length alone and returns bpf_xdp_get_buff_len(), which the model in
    // tests/support/cases/frags.rs (after_adjust(9000, 0, 0)) gives as 9000.
    let mut pkt: Vec<u8> = (0..9000).map(|i: usize| (i * 7 + (i >> 8)) as u8).collect();
    pkt[14] = 0;
    pkt[15] = 0;
    let input = dir.path().join("in.bin");
    std::fs::write(&input, &pkt).unwrap();
    // What the program writes: 0xdeadbeef across the end of the linear area,
    // and byte linear + 100 (in the first fragment) flipped.
    let mut expect = pkt.clone();
    expect[XDP_LINEAR - 2..XDP_LINEAR + 2].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    expect[XDP_LINEAR + 100] ^= 0xff;
    for engine in ["interp", "jit"] {
        let out = dir.path().join(format!("out-{engine}.bin"));
        let o = run(
            &obj,
            &[
                "--engine",
                engine,
                "--data-in",
                p(&input),
                "--data-out",
                p(&out),
            ],
        );
        assert_exit(&o, 0);
        assert!(
            stdout(&o).contains("retval: 9000\n"),
            "{engine}: {}",
            stdout(&o)
        );
        let got = std::fs::read(&out).unwrap();
        assert_eq!(got.len(), 9000, "{engine}");
        assert!(
            got == expect,
            "{engine}: output differs from the expected packet"
        );
    }

    // One byte more than 17 fragments hold, and a much larger packet: refused,
    // the size named, nothing written.
    for len in [XDP_MAX_LEN + 1, 80_000] {
        let big = dir.path().join(format!("big{len}.bin"));
        std::fs::write(&big, vec![0u8; len]).unwrap();
        let out = dir.path().join(format!("big{len}-out.bin"));
        for engine in ["interp", "jit"] {
            let o = run(
                &obj,
                &[
                    "--engine",
                    engine,
                    "--data-in",
                    p(&big),
                    "--data-out",
                    p(&out),
                ],
            );
            assert_error(&o, &format!("XDP packet of {len} bytes"));
            assert!(
                stderr(&o).contains(&XDP_MAX_LEN.to_string()),
                "{}",
                stderr(&o)
            );
            assert!(!stdout(&o).contains("retval"), "{}", stdout(&o));
            assert!(!out.exists(), "{engine}: {} written", out.display());
        }
    }
}
