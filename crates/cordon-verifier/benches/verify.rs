//! Verification throughput of Cordon's verifier against Linux's on the same
//! programs: the largest tests/bpf objects (through cordon-object, loaded
//! into Linux with the same instructions, maps, BTF and func/line info) and
//! a synthetic program with many branches and a loop.
//!
//! `cargo bench -p cordon-verifier --bench verify [-- --runs N]`
//!
//! Per program: instructions processed, Cordon's median wall time and
//! throughput (processed instructions per second), peak states, peak heap
//! bytes while verifying (a counting global allocator), and Linux's own
//! "verification time N usec"
//! (median over the same number of loads at log level 4 | 1) with its
//! processed count. Linux is skipped with a message where bpf() is not
//! permitted.

#[path = "../tests/objload/mod.rs"]
mod objload;

use cordon_isa::{Program, assemble_linux};
use cordon_object::Object;
use cordon_verifier::{MapInfo, MapType, ProgType, VerifyEnv, verify};
use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes and their peak, to report the verifier's peak
/// memory per program exactly (states, logs, facts).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new >= l.size() {
                let now = LIVE.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak heap bytes allocated while running `f`, above what was live before.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Linux's own verification time (usec) and processed count from a log.
fn linux_stats(log: &str) -> (Option<u64>, Option<u64>) {
    let time = log
        .lines()
        .find_map(|l| l.strip_prefix("verification time "))
        .and_then(|r| r.split_whitespace().next()?.parse().ok());
    let processed = log
        .lines()
        .find_map(|l| l.strip_prefix("processed "))
        .and_then(|r| r.split_whitespace().next()?.parse().ok());
    (time, processed)
}

/// A synthetic program with many branches on unknown values, map lookups
/// and a bounded loop whose iterations differ (so states do not converge
/// early).
fn synthetic() -> String {
    let mut s = String::from("r9 = 0\nr6 = r1\n");
    for b in 0..120 {
        let _ = write!(
            s,
            "call bpf_get_prandom_u32#7\nif r0 > {} goto a{b}\nr9 += r0\nr9 &= 0xffff\ngoto b{b}\n\
             a{b}: *(u32 *)(r10 -4) = {}\nr2 = r10\nr2 += -4\nr1 = map[idx:0]\ncall bpf_map_lookup_elem#1\n\
             if r0 == 0 goto b{b}\nr1 = *(u64 *)(r0 +{})\nr9 ^= r1\nb{b}: r9 &= 0xff\n",
            (b * 7919) % 1000,
            b % 4,
            (b % 2) * 8
        );
    }
    s.push_str(
        "r8 = 0\nloop: call bpf_get_prandom_u32#7\nif r0 & 1 goto odd\nr9 += 3\ngoto next\n\
         odd: r9 += 1\nnext: r8 += 1\nif r8 < 48 goto loop\nr0 = 2\nexit\n",
    );
    s
}

/// Loads the program into Linux: (accepted, log) or why it could not.
type LinuxLoad = Box<dyn Fn() -> Result<(bool, String), String>>;

struct Case {
    name: String,
    prog: Program,
    env: VerifyEnv,
    linux: Option<LinuxLoad>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let mut cases: Vec<Case> = Vec::new();
    for obj_name in ["xdp_firewall.o", "deep_calls.o"] {
        let bytes = std::fs::read(objload::bpf_dir().join(obj_name)).expect("tests/bpf object");
        let obj = std::sync::Arc::new(Object::parse(&bytes).expect("object parses"));
        for (i, p) in obj.programs.iter().enumerate() {
            let Some((prog, env)) = objload::load(&obj, p) else {
                continue;
            };
            let o = obj.clone();
            cases.push(Case {
                name: format!("{obj_name}/{}", p.name),
                prog,
                env,
                linux: Some(Box::new(move || {
                    objload::linux_verdict(&o, &o.programs[i], 4 | 1)
                })),
            });
        }
    }
    // The synthetic program, against an array map.
    let text = synthetic();
    let insns = assemble_linux(&text).expect("synthetic assembles");
    let env = VerifyEnv::new(ProgType::Xdp)
        .with_maps(vec![MapInfo::new("arr", MapType::Array, 4, 16, 4)])
        .with_log_level(0);
    let linux_insns = insns.clone();
    cases.push(Case {
        name: format!(
            "synthetic ({} insns, 120 branch blocks + loop)",
            insns.len()
        ),
        prog: Program::new(insns).expect("synthetic decodes"),
        env,
        linux: Some(Box::new(move || {
            let map = cordon_linux::Map::create(&cordon_linux::MapSpec::array(16, 4))
                .map_err(|e| e.to_string())?;
            let maps = [&map];
            let v = cordon_linux::ProgLoad::new(cordon_linux::ProgType::XDP, &linux_insns)
                .with_maps(&maps)
                .with_license("GPL")
                .with_log_level(4 | 1)
                .verdict()
                .map_err(|e| e.to_string())?;
            Ok((v.accepted, v.log))
        })),
    });

    println!(
        "{:<52} {:>7} {:>10} {:>12} {:>7} {:>9} | {:>10} {:>9}",
        "program", "insns", "cordon us", "insn/s", "peak st", "heap KiB", "linux us", "linux pr"
    );
    let linux_ok = cordon_linux::available();
    if let Err(e) = &linux_ok {
        println!("(Linux skipped: {e})");
    }
    for c in &cases {
        let mut env = c.env.clone();
        env.log_level = 0;
        // Warm up, and check it is accepted.
        let facts = verify(&c.prog, &env).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let (_, peak_bytes) = peak_heap(|| verify(&c.prog, &env));
        let mut times = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let r = verify(&c.prog, &env);
            times.push(t.elapsed().as_secs_f64());
            assert!(r.is_ok());
        }
        let t = median(times);
        let processed = facts.stats.insn_processed;
        let (mut lt, mut lp) = (String::from("-"), String::from("-"));
        if linux_ok.is_ok()
            && let Some(l) = &c.linux
        {
            let mut ltimes = Vec::new();
            for _ in 0..runs {
                match l() {
                    Ok((true, log)) => {
                        let (time, processed) = linux_stats(&log);
                        if let Some(t) = time {
                            ltimes.push(t as f64);
                        }
                        if let Some(p) = processed {
                            lp = p.to_string();
                        }
                    }
                    Ok((false, log)) => {
                        lt = format!("REJECTED: {}", log.lines().last().unwrap_or(""));
                        break;
                    }
                    Err(e) => {
                        lt = format!("error: {e}");
                        break;
                    }
                }
            }
            if !ltimes.is_empty() {
                lt = format!("{:.0}", median(ltimes));
            }
        }
        println!(
            "{:<52} {:>7} {:>10.0} {:>12.0} {:>7} {:>9} | {:>10} {:>9}",
            c.name,
            processed,
            t * 1e6,
            processed as f64 / t,
            facts.stats.peak_states,
            peak_bytes.div_ceil(1024),
            lt,
            lp
        );
    }
}
