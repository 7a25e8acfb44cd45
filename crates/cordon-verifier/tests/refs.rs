//! References (acquire/release kfuncs, ring buffer records), spin locks,
//! open-coded iterators, bpf_throw, and the resource tables kept at safe points.

mod common;
use common::*;
use cordon_verifier::{Location, SafePointKind, state::RefKind};

const ACQ: &str = "r1 = 7\ncall KF(cordon_test_acquire)\n";

#[test]
fn acquire_release() {
    let f = accept(
        &sock(),
        &format!(
            "{ACQ}if r0 == 0 goto out\nr1 = r0\ncall KF(cordon_test_release)\nout: r0 = 0\nexit"
        ),
    );
    assert_eq!(f.max_refs, 1);
}

#[test]
fn unreleased_reference() {
    reject(
        &sock(),
        &format!("{ACQ}if r0 == 0 goto out\nout: r0 = 0\nexit"),
        "Unreleased reference id=1 alloc_insn=1",
    );
}

#[test]
fn null_branch_has_no_reference() {
    // Without the NULL check the pointer may be NULL and cannot be released.
    reject(
        &sock(),
        &format!("{ACQ}r1 = r0\ncall KF(cordon_test_release)\nr0 = 0\nexit"),
        "expected pointer to cordon_test_obj but R1 has type ptr_cordon_test_obj_or_null",
    );
}

#[test]
fn use_after_release() {
    reject(
        &sock(),
        &format!(
            "{ACQ}if r0 == 0 goto out\nr6 = r0\nr1 = r0\ncall KF(cordon_test_release)\nr0 = *(u32 *)(r6 +0)\nout: r0 = 0\nexit"
        ),
        "R6 invalid mem access 'scalar'",
    );
}

#[test]
fn double_release() {
    reject(
        &sock(),
        &format!(
            "{ACQ}if r0 == 0 goto out\nr6 = r0\nr1 = r0\ncall KF(cordon_test_release)\nr1 = r6\ncall KF(cordon_test_release)\nout: r0 = 0\nexit"
        ),
        "expected pointer to cordon_test_obj",
    );
}

#[test]
fn object_reads_within_size() {
    accept(
        &sock(),
        &format!(
            "{ACQ}if r0 == 0 goto out\nr6 = *(u64 *)(r0 +8)\nr1 = r0\ncall KF(cordon_test_release)\nout: r0 = 0\nexit"
        ),
    );
    reject(
        &sock(),
        &format!(
            "{ACQ}if r0 == 0 goto out\nr6 = *(u64 *)(r0 +16)\nr1 = r0\ncall KF(cordon_test_release)\nout: r0 = 0\nexit"
        ),
        "access beyond struct cordon_test_obj at off 16 size 8",
    );
    reject(
        &sock(),
        &format!(
            "{ACQ}if r0 == 0 goto out\n*(u64 *)(r0 +0) = 1\nr1 = r0\ncall KF(cordon_test_release)\nout: r0 = 0\nexit"
        ),
        "only read is supported",
    );
}

#[test]
fn reference_survives_spill_and_subprog() {
    // Released in a static subprogram after a round trip through the stack.
    accept(
        &sock(),
        &format!(
            "{ACQ}if r0 == 0 goto out\n*(u64 *)(r10 -8) = r0\nr1 = *(u64 *)(r10 -8)\ncall rel\nout: r0 = 0\nexit\nrel: call KF(cordon_test_release)\nr0 = 0\nexit"
        ),
    );
}

#[test]
fn ringbuf_reserve_submit() {
    let res = "r1 = map[idx:2]\nr2 = 16\nr3 = 0\ncall bpf_ringbuf_reserve#131\n";
    accept(
        &sock(),
        &format!(
            "{res}if r0 == 0 goto out\n*(u64 *)(r0 +8) = 1\nr1 = r0\nr2 = 0\ncall bpf_ringbuf_submit#132\nout: r0 = 0\nexit"
        ),
    );
    reject(
        &sock(),
        &format!(
            "{res}if r0 == 0 goto out\n*(u64 *)(r0 +16) = 1\nr1 = r0\nr2 = 0\ncall bpf_ringbuf_submit#132\nout: r0 = 0\nexit"
        ),
        "invalid access to memory, mem_size=16 off=16 size=8",
    );
    reject(
        &sock(),
        &format!("{res}if r0 == 0 goto out\nr0 = 0\nout: r0 = 0\nexit"),
        "Unreleased reference id=1 alloc_insn=4",
    );
    reject(
        &sock(),
        &format!(
            "{res}if r0 == 0 goto out\nr0 += 8\nr1 = r0\nr2 = 0\ncall bpf_ringbuf_discard#133\nout: r0 = 0\nexit"
        ),
        "R1 must have zero offset when passed to release func",
    );
    reject(
        &sock(),
        "r1 = map[idx:2]\ncall bpf_get_prandom_u32#7\nr2 = r0\nr1 = map[idx:2]\nr3 = 0\ncall bpf_ringbuf_reserve#131\nr0 = 0\nexit",
        "R2 is not a known constant",
    );
}

#[test]
fn tail_call_with_reference_rejected() {
    reject(
        &sock(),
        &format!(
            "r6 = r1\n{ACQ}if r0 == 0 goto out\nr7 = r0\nr1 = r6\nr2 = map[idx:3]\nr3 = 0\ncall bpf_tail_call#12\nr1 = r7\ncall KF(cordon_test_release)\nout: r0 = 0\nexit"
        ),
        "tail_call would lead to reference leak",
    );
}

// ---------- spin locks ----------

const LOCKED: &str = "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:4]\ncall bpf_map_lookup_elem#1\nif r0 == 0 goto out\nr6 = r0\n";

#[test]
fn lock_unlock() {
    accept(
        &tc(),
        &format!(
            "{LOCKED}r1 = r6\ncall bpf_spin_lock#93\nr1 = 5\n*(u64 *)(r6 +8) = r1\nr1 = r6\ncall bpf_spin_unlock#94\nout: r0 = 0\nexit"
        ),
    );
}

#[test]
fn missing_unlock() {
    reject(
        &tc(),
        &format!("{LOCKED}r1 = r6\ncall bpf_spin_lock#93\nout: r0 = 0\nexit"),
        "BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region",
    );
}

#[test]
fn calls_while_locked() {
    reject(
        &tc(),
        &format!(
            "{LOCKED}r1 = r6\ncall bpf_spin_lock#93\ncall bpf_ktime_get_ns#5\nr1 = r6\ncall bpf_spin_unlock#94\nout: r0 = 0\nexit"
        ),
        "function calls are not allowed while holding a lock",
    );
}

#[test]
fn double_lock_and_bad_unlock() {
    reject(
        &tc(),
        &format!(
            "{LOCKED}r1 = r6\ncall bpf_spin_lock#93\nr1 = r6\ncall bpf_spin_lock#93\nout: r0 = 0\nexit"
        ),
        "function calls are not allowed while holding a lock",
    );
    reject(
        &tc(),
        &format!("{LOCKED}r1 = r6\ncall bpf_spin_unlock#94\nout: r0 = 0\nexit"),
        "bpf_spin_unlock without taking a lock",
    );
}

#[test]
fn lock_must_point_at_lock_field() {
    reject(
        &tc(),
        &format!("{LOCKED}r1 = r6\nr1 += 8\ncall bpf_spin_lock#93\nout: r0 = 0\nexit"),
        "off 8 doesn't point to 'struct bpf_spin_lock' that is at 0",
    );
    reject(
        &tc(),
        "*(u32 *)(r10 -4) = 0\nr2 = r10\nr2 += -4\nr1 = map[idx:1]\ncall bpf_map_lookup_elem#1\nif r0 == 0 goto out\nr1 = r0\ncall bpf_spin_lock#93\nout: r0 = 0\nexit",
        "map 'a' has no valid bpf_spin_lock",
    );
    reject(
        &tc(),
        &format!("{LOCKED}r1 = *(u32 *)(r6 +0)\nout: r0 = 0\nexit"),
        "bpf_spin_lock cannot be accessed directly by load/store",
    );
}

// ---------- iterators ----------

fn iter_loop(body: &str) -> String {
    format!(
        "r1 = r10\nr1 += -8\nr2 = 0\nr3 = 10\ncall KF(bpf_iter_num_new)\n\
         loop: r1 = r10\nr1 += -8\ncall KF(bpf_iter_num_next)\nif r0 == 0 goto done\n{body}\ngoto loop\n\
         done: r1 = r10\nr1 += -8\ncall KF(bpf_iter_num_destroy)\nr0 = 0\nexit"
    )
}

#[test]
fn iterator_loop_converges() {
    let f = accept(&sock(), &iter_loop("r6 = *(u32 *)(r0 +0)"));
    assert!(f.stats.insn_processed < 1000);
}

#[test]
fn iterator_loop_with_counter_on_stack_converges() {
    let text = format!(
        "*(u64 *)(r10 -16) = 0\n{}",
        iter_loop("r6 = *(u64 *)(r10 -16)\nr6 += 1\n*(u64 *)(r10 -16) = r6")
    );
    accept(&sock(), &text);
}

#[test]
fn iterator_must_be_destroyed() {
    let text = iter_loop("r6 = 0").replace(
        "done: r1 = r10\nr1 += -8\ncall KF(bpf_iter_num_destroy)\n",
        "done: ",
    );
    reject(&sock(), &text, "Unreleased reference id=1 alloc_insn=4");
}

#[test]
fn iterator_element_is_read_only_and_sized() {
    reject(
        &sock(),
        &iter_loop("*(u32 *)(r0 +0) = 1"),
        "R0 cannot write into rdonly_mem",
    );
    reject(
        &sock(),
        &iter_loop("r6 = *(u64 *)(r0 +0)"),
        "invalid access to memory, mem_size=4 off=0 size=8",
    );
}

#[test]
fn iterator_next_needs_initialized_iterator() {
    reject(
        &sock(),
        "r1 = r10\nr1 += -8\ncall KF(bpf_iter_num_next)\nr0 = 0\nexit",
        "expected an initialized iter_num as arg #0",
    );
    reject(
        &sock(),
        "r1 = r10\nr1 += -8\nr2 = 0\nr3 = 10\ncall KF(bpf_iter_num_new)\nr1 = r10\nr1 += -8\nr2 = 0\nr3 = 10\ncall KF(bpf_iter_num_new)\nr0 = 0\nexit",
        "expected uninitialized iter_num",
    );
    reject(
        &sock(),
        "r1 = r10\nr1 += -8\nr2 = 0\nr3 = 10\ncall KF(bpf_iter_num_new)\n*(u64 *)(r10 -8) = 0\nr0 = 0\nexit",
        "cannot overwrite iterator stack slot",
    );
}

// ---------- throw ----------

#[test]
fn throw_ends_path() {
    // The path after bpf_throw is not explored: the bad access is never reached.
    accept(
        &tc(),
        "r1 = 1\ncall KF(bpf_throw)\nr0 = *(u64 *)(r1 +0)\nexit",
    );
}

#[test]
fn throw_with_reference_cordon_vs_linux() {
    let text = format!(
        "{ACQ}if r0 == 0 goto out\nr6 = r0\nr1 = 1\ncall KF(bpf_throw)\nr1 = r6\ncall KF(cordon_test_release)\nout: r0 = 0\nexit"
    );
    let f = accept(&tc(), &text);
    let sp = &f.safe_points[&5];
    assert_eq!(sp.kind, SafePointKind::Throw);
    assert_eq!(sp.variants.len(), 1);
    let held = &sp.variants[0];
    assert_eq!(held.refs.len(), 1);
    assert!(matches!(held.refs[0].kind, RefKind::Object { .. }));
    assert_eq!(held.refs[0].acquired_at, 1);
    assert!(
        held.refs[0]
            .locations
            .contains(&Location::Reg { frame: 0, reg: 6 })
    );
    let mut linux = tc();
    linux.throw_releases_resources = false;
    reject(&linux, &text, "Unreleased reference id=1 alloc_insn=1");
}

#[test]
fn throw_in_callback_rejected() {
    reject(
        &tc(),
        "r1 = 10\nr2 = func[cb]\nr3 = 0\nr4 = 0\ncall bpf_loop#181\nr0 = 0\nexit\ncb: r1 = 1\ncall KF(bpf_throw)\nr0 = 0\nexit",
        "bpf_throw cannot be called from callback subprog",
    );
}

// ---------- safe point tables ----------

#[test]
fn call_site_table_lists_held_references() {
    let text = format!(
        "{ACQ}if r0 == 0 goto out\n*(u64 *)(r10 -16) = r0\ncall bpf_ktime_get_ns#5\nr1 = *(u64 *)(r10 -16)\ncall KF(cordon_test_release)\nout: r0 = 0\nexit"
    );
    let f = accept(&sock(), &text);
    let sp = &f.safe_points[&4];
    assert_eq!(sp.kind, SafePointKind::Call);
    let held = &sp.variants[0];
    assert_eq!(held.refs.len(), 1);
    // Registers are recorded as they are at the call instruction (r0 still
    // holds the pointer; it is caller-saved and dies with the call).
    assert_eq!(
        held.refs[0].locations,
        vec![
            Location::Reg { frame: 0, reg: 0 },
            Location::Stack { frame: 0, off: -16 }
        ]
    );
    // Before the acquire nothing is held.
    assert!(f.safe_points[&1].variants.iter().all(|h| h.is_empty()));
}

#[test]
fn back_edge_table_lists_lock_and_iterator() {
    let f = accept(&sock(), &iter_loop("r6 = 0"));
    let (from, _) = f.back_edges[0];
    let sp = &f.safe_points[&from];
    assert_eq!(sp.kind, SafePointKind::BackEdge);
    assert!(
        sp.variants
            .iter()
            .all(|h| h.refs.len() == 1 && matches!(h.refs[0].kind, RefKind::Iter))
    );
    assert!(
        sp.variants[0].refs[0]
            .locations
            .contains(&Location::Stack { frame: 0, off: -8 })
    );
}

// ---------- exception callback ----------

fn with_cb(env: &cordon_verifier::VerifyEnv, start: usize) -> cordon_verifier::VerifyEnv {
    let mut e = env.clone();
    e.exception_callback = Some(start);
    e
}

#[test]
fn exception_callback_verified_on_its_own() {
    // insn 3 = the callback (not called by anyone).
    let text = "r1 = 5\ncall KF(bpf_throw)\nexit\ncb: r0 = r1\nr0 += 1\nexit";
    let f = accept(&with_cb(&tc(), 3), text);
    assert!(f.subprogs[1].is_exception_callback);
    // Without the declaration the callback is unreachable code.
    reject(&tc(), text, "unreachable insn 3");
    // Unlike other global functions, its return value is not checked to be
    // a scalar (Linux 6.18 loads this); it must be initialized.
    accept(
        &with_cb(&tc(), 3),
        "r1 = 5\ncall KF(bpf_throw)\nexit\ncb: r0 = r10\nexit",
    );
    reject(
        &with_cb(&tc(), 3),
        "r1 = 5\ncall KF(bpf_throw)\nexit\ncb: exit",
        "R0 !read_ok",
    );
    // Its argument is a scalar: it cannot be dereferenced.
    reject(
        &with_cb(&tc(), 3),
        "r1 = 5\ncall KF(bpf_throw)\nexit\ncb: r0 = *(u64 *)(r1 +0)\nexit",
        "R1 invalid mem access 'scalar'",
    );
}

#[test]
fn exception_callback_rules() {
    reject(
        &with_cb(&tc(), 3),
        "call cb\nr0 = 0\nexit\ncb: r0 = 0\nexit",
        "cannot call exception cb directly",
    );
    reject(
        &with_cb(&tc(), 3),
        "r1 = 5\ncall KF(bpf_throw)\nexit\ncb: call KF(bpf_throw)\nr0 = 0\nexit",
        "bpf_throw cannot be called from exception callback",
    );
}

/// Cordon's deliberate extension, compared with Linux: throwing while a
/// ring buffer record is held is accepted with `throw_releases_resources`
/// (the default; unwinding discards the record), rejected without it — and
/// the Linux comparison of the accepted case is made with the flag off,
/// where both reject.
#[test]
fn throw_with_ringbuf_record_held() {
    let text = "r1 = map[idx:2]\nr2 = 8\nr3 = 0\ncall bpf_ringbuf_reserve#131\nif r0 == 0 goto out\n\
                r6 = r0\nr1 = 1\ncall KF(bpf_throw)\nr1 = r6\nr2 = 0\ncall bpf_ringbuf_submit#132\n\
                out: r0 = 0\nexit";
    let f = accept(&tc(), text);
    let held = &f.safe_points[&8].variants[0];
    assert_eq!(held.refs.len(), 1);
    assert!(
        held.refs[0]
            .locations
            .contains(&Location::Reg { frame: 0, reg: 6 })
    );
    let mut linux = tc();
    linux.throw_releases_resources = false;
    reject(&linux, text, "Unreleased reference");
}
