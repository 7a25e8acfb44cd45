//! `bpf_for_each_map_elem` (helper 164): the callback gets r1 = map, r2 =
//! key (read-only), r3 = value, r4 = callback_ctx, must return 0 or 1, and
//! only maps with a `map_for_each_callback` are accepted. Every verdict is
//! also compared with the running kernel (see `common::linux`).

mod common;

use common::*;

/// `call bpf_for_each_map_elem(map[idx], cb, r10-8, flags)` then exit 0,
/// followed by `cb`.
fn with_cb(map: u32, flags: &str, cb: &str) -> String {
    format!(
        "*(u64 *)(r10 -8) = 0\nr1 = map[idx:{map}]\nr2 = func[cb]\nr3 = r10\nr3 += -8\n{flags}\n\
         call bpf_for_each_map_elem#164\nr0 = 0\nexit\ncb: {cb}"
    )
}

const COUNT_CB: &str = "r0 = *(u64 *)(r4 +0)\nr0 += 1\n*(u64 *)(r4 +0) = r0\nr0 = 0\nexit";

#[test]
fn accepts_callback_on_hash_and_array() {
    accept(&sock(), &with_cb(0, "r4 = 0", COUNT_CB));
    accept(&sock(), &with_cb(1, "r4 = 0", COUNT_CB));
}

#[test]
fn callback_reads_key_and_writes_value() {
    // Array value is 16 bytes: write its last word from the key.
    let cb = "r5 = *(u32 *)(r2 +0)\n*(u64 *)(r3 +8) = r5\nr0 = 1\nexit";
    accept(&sock(), &with_cb(1, "r4 = 0", cb));
    // Hash value is 8 bytes.
    let cb = "r5 = *(u32 *)(r2 +0)\n*(u64 *)(r3 +0) = r5\nr0 = 0\nexit";
    accept(&sock(), &with_cb(0, "r4 = 0", cb));
}

#[test]
fn callback_may_delete_through_map_and_key() {
    let cb = "call bpf_map_delete_elem#3\nr0 = 0\nexit";
    accept(&sock(), &with_cb(0, "r4 = 0", cb));
}

#[test]
fn null_ctx_and_variable_flags_are_accepted() {
    // Flags are checked at run time (-EINVAL), not by the verifier.
    let text = "r1 = map[idx:1]\nr2 = func[cb]\nr3 = 0\nr4 = 7\n\
                call bpf_for_each_map_elem#164\nexit\ncb: r0 = 0\nexit";
    accept(&sock(), text);
}

#[test]
fn rejects_write_through_key() {
    let cb = "*(u32 *)(r2 +0) = 1\nr0 = 0\nexit";
    reject(
        &sock(),
        &with_cb(0, "r4 = 0", cb),
        "R2 cannot write into map_key",
    );
}

#[test]
fn rejects_key_read_past_key_size() {
    let cb = "r5 = *(u64 *)(r2 +0)\nr0 = 0\nexit";
    reject(
        &sock(),
        &with_cb(0, "r4 = 0", cb),
        "invalid access to map key",
    );
}

#[test]
fn rejects_value_access_past_value_size() {
    let cb = "*(u64 *)(r3 +8) = 0\nr0 = 0\nexit";
    reject(
        &sock(),
        &with_cb(0, "r4 = 0", cb),
        "invalid access to map value",
    );
}

#[test]
fn rejects_return_value_outside_0_1() {
    reject(
        &sock(),
        &with_cb(0, "r4 = 0", "r0 = 2\nexit"),
        "At callback return the register R0 has",
    );
}

#[test]
fn rejects_unsupported_map_types() {
    // prog_array and queue have no map_for_each_callback.
    reject(
        &sock(),
        &with_cb(3, "r4 = 0", "r0 = 0\nexit"),
        "callback function not allowed for map",
    );
    reject(
        &sock(),
        &with_cb(5, "r4 = 0", "r0 = 0\nexit"),
        "callback function not allowed for map",
    );
}

#[test]
fn rejects_callback_that_is_not_a_function() {
    let text = "r1 = map[idx:0]\nr2 = 0\nr3 = 0\nr4 = 0\n\
                call bpf_for_each_map_elem#164\nr0 = 0\nexit";
    reject(&sock(), text, "R2 type=scalar expected=func");
}

#[test]
fn rejects_non_map_first_argument() {
    let text = "r1 = 0\nr2 = func[cb]\nr3 = 0\nr4 = 0\n\
                call bpf_for_each_map_elem#164\nr0 = 0\nexit\ncb: r0 = 0\nexit";
    reject(&sock(), text, "R1 type=scalar expected=map_ptr");
}

#[test]
fn caller_saved_registers_are_clobbered_after_the_call() {
    let text = "r1 = map[idx:0]\nr2 = func[cb]\nr3 = 0\nr4 = 0\n\
                call bpf_for_each_map_elem#164\nr0 = r1\nexit\ncb: r0 = 0\nexit";
    reject(&sock(), text, "R1 !read_ok");
}

/// Map types outside the standard test environment (verified by Cordon
/// only: the Linux comparison needs the standard maps).
fn env_with(t: cordon_verifier::MapType, key: u32, value: u32) -> cordon_verifier::VerifyEnv {
    cordon_verifier::VerifyEnv::new(cordon_verifier::ProgType::SocketFilter)
        .with_maps(vec![cordon_verifier::MapInfo::new("m", t, key, value, 8)])
        .with_log_level(1)
}

#[test]
fn per_cpu_and_lru_maps_are_accepted() {
    use cordon_verifier::MapType as T;
    let cb = "r5 = *(u32 *)(r2 +0)\n*(u64 *)(r3 +0) = r5\nr0 = 0\nexit";
    for t in [T::PercpuArray, T::PercpuHash, T::LruHash, T::LruPercpuHash] {
        let e = env_with(t, 4, 8);
        let r = run(&e, &with_cb(0, "r4 = 0", cb));
        assert!(r.is_ok(), "{t:?}: {:?}", r.err().map(|e| e.message));
    }
}

#[test]
fn maps_without_element_iteration_are_refused() {
    use cordon_verifier::MapType as T;
    for (t, key, value) in [
        (T::LpmTrie, 8, 8),
        (T::BloomFilter, 0, 8),
        (T::RingBuf, 0, 0),
        (T::Queue, 0, 8),
        (T::Stack, 0, 8),
        (T::ProgArray, 4, 4),
    ] {
        let e = env_with(t, key, value);
        let r = run(&e, &with_cb(0, "r4 = 0", "r0 = 0\nexit"));
        let msg = r.err().map(|e| e.message).unwrap_or_default();
        assert!(
            msg.contains("callback function not allowed for map"),
            "{t:?}: {msg}"
        );
    }
}

#[test]
fn per_cpu_value_bounds_are_the_value_size() {
    let cb = "*(u64 *)(r3 +8) = 0\nr0 = 0\nexit";
    let e = env_with(cordon_verifier::MapType::PercpuHash, 4, 8);
    let msg = run(&e, &with_cb(0, "r4 = 0", cb))
        .err()
        .map(|e| e.message)
        .unwrap_or_default();
    assert!(msg.contains("invalid access to map value"), "{msg}");
}

#[test]
fn unprivileged_programs_cannot_use_it() {
    reject(
        &unpriv(),
        &with_cb(1, "r4 = 0", COUNT_CB),
        "allowed for CAP_BPF and CAP_SYS_ADMIN",
    );
}
