//! Shared helpers for the verifier's integration tests. Every `accept` /
//! `reject` is also compared with the running kernel's verifier
//! ([`linux::compare`]).
#![allow(dead_code)]

pub mod linux;

use cordon_isa::{Program, assemble_linux};
use cordon_verifier::{
    MapInfo, MapType, Profile, ProgType, VerifiedFacts, VerifyEnv, VerifyError, verify,
};

/// Maps every test environment has, by index:
/// 0 hash(4 -> 8), 1 array(4 -> 16, 1 entry), 2 ringbuf, 3 prog_array,
/// 4 array with a spin lock at 0 (value 16), 5 queue (value 8), 6 read-only array.
pub fn maps() -> Vec<MapInfo> {
    let mut locked = MapInfo::new("locked", MapType::Array, 4, 16, 4);
    locked.spin_lock_off = Some(0);
    let mut ro = MapInfo::new("ro", MapType::Array, 4, 8, 1);
    ro.rdonly_prog = true;
    vec![
        MapInfo::new("h", MapType::Hash, 4, 8, 16),
        MapInfo::new("a", MapType::Array, 4, 16, 1),
        MapInfo::new("rb", MapType::RingBuf, 0, 0, 4096),
        MapInfo::new("jmp", MapType::ProgArray, 4, 4, 4),
        locked,
        MapInfo::new("q", MapType::Queue, 0, 8, 16),
        ro,
    ]
}

pub fn env(t: ProgType) -> VerifyEnv {
    VerifyEnv::new(t).with_maps(maps()).with_log_level(1)
}

pub fn xdp() -> VerifyEnv {
    env(ProgType::Xdp)
}

pub fn tc() -> VerifyEnv {
    env(ProgType::SchedCls)
}

pub fn sock() -> VerifyEnv {
    env(ProgType::SocketFilter)
}

pub fn unpriv() -> VerifyEnv {
    env(ProgType::SocketFilter).with_profile(Profile::Unprivileged)
}

/// Replace `KF(name)` by the registry id of kfunc `name`.
pub fn kf(env: &VerifyEnv, text: &str) -> String {
    let mut out = text.to_string();
    for k in env.registry.kfuncs() {
        out = out.replace(
            &format!("KF({})", k.name),
            &format!("kernel-function#{}", k.id),
        );
    }
    out
}

pub fn prog(env: &VerifyEnv, text: &str) -> Program {
    let insns = assemble_linux(&kf(env, text)).unwrap_or_else(|e| panic!("assemble: {e}\n{text}"));
    Program::new(insns).unwrap_or_else(|e| panic!("decode: {e}\n{text}"))
}

pub fn run(env: &VerifyEnv, text: &str) -> Result<VerifiedFacts, VerifyError> {
    verify(&prog(env, text), env)
}

#[track_caller]
pub fn accept(env: &VerifyEnv, text: &str) -> VerifiedFacts {
    let p = prog(env, text);
    let r = verify(&p, env);
    if r.is_ok() {
        linux::compare(env, p.insns(), true, text);
    }
    match r {
        Ok(f) => f,
        Err(e) => panic!(
            "expected accept, got: {e}\n--- log ---\n{}\n--- prog ---\n{text}",
            e.log
        ),
    }
}

#[track_caller]
pub fn reject(env: &VerifyEnv, text: &str, msg: &str) -> VerifyError {
    let p = prog(env, text);
    let r = verify(&p, env);
    if r.is_err() {
        linux::compare(env, p.insns(), false, text);
    }
    match r {
        Ok(_) => panic!("expected reject with `{msg}`, got accept\n--- prog ---\n{text}"),
        Err(e) => {
            assert!(
                e.message.contains(msg),
                "expected `{msg}`, got `{}`\n--- log ---\n{}",
                e.message,
                e.log
            );
            e
        }
    }
}
