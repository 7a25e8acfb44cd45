//! Runs every workload on every engine: result check first, then timing.

use std::ffi::c_void;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cordon::{Backend, StackStrategy};
use cordon_exec::jit::JitExecutable;
use cordon_exec::{ExecOptions, HelperRegistry};
use cordon_linux::{KernelError, KernelObject, TestRun};

use crate::engines::{
    BenchError, CordonEngine, CordonProgram, Packet, Rbpf, XdpCall, native, native_novec,
};
use crate::timing::{Measured, Settings, Spread, measure, measure_external};
use crate::workloads::{EMPTY, WORKLOADS, Workload};

/// Engine columns of the main table (native is the reference column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Col {
    CordonInterp,
    CordonJit,
    RbpfInterp,
    RbpfJit,
    Linux,
}

impl Col {
    pub const ALL: [Col; 5] = [
        Col::CordonInterp,
        Col::CordonJit,
        Col::RbpfInterp,
        Col::RbpfJit,
        Col::Linux,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Col::CordonInterp => "Cordon interp",
            Col::CordonJit => "Cordon JIT",
            Col::RbpfInterp => "rbpf interp",
            Col::RbpfJit => "rbpf JIT",
            Col::Linux => "Linux JIT",
        }
    }
}

/// One engine's result on one workload: a measurement or why there is none.
pub type Cell = Result<Measured, String>;

pub struct Row {
    pub workload: Workload,
    /// Instructions of the XDP program as Cordon runs it.
    pub insns: usize,
    pub native: Measured,
    /// Native code compiled without auto-vectorisation.
    pub native_novec: Measured,
    pub cells: Vec<(Col, Cell)>,
    /// Cordon JIT: verification + compilation time through the API.
    pub jit_load: Duration,
}

impl Row {
    pub fn cell(&self, c: Col) -> &Cell {
        &self
            .cells
            .iter()
            .find(|(k, _)| *k == c)
            .expect("every column")
            .1
    }
}

pub struct EmptyCall {
    pub label: &'static str,
    pub m: Cell,
}

pub struct CompileTime {
    pub workload: &'static str,
    pub insns: usize,
    pub code_bytes: usize,
    pub compile: Measured,
}

pub struct StackRow {
    pub strategy: StackStrategy,
    /// Over the rounds' fastest samples.
    pub jit: Measured,
    pub interp: Measured,
    /// Per round: this strategy's fastest sample over `Native`'s fastest of
    /// the same round (measured back to back), over the rounds.
    pub jit_vs_native: Option<Spread>,
    pub interp_vs_native: Option<Spread>,
}

pub struct Results {
    pub rows: Vec<Row>,
    pub empty: Vec<EmptyCall>,
    pub compile: Vec<CompileTime>,
    pub stack: Vec<StackRow>,
    /// Why the Linux column is empty, when it is.
    pub linux_skip: Option<String>,
}

pub struct Options {
    pub settings: Settings,
    pub only: Vec<String>,
    pub objects: PathBuf,
    /// Print progress to stderr.
    pub verbose: bool,
}

fn progress(o: &Options, msg: &str) {
    if o.verbose {
        eprintln!("cordon-bench: {msg}");
    }
}

fn check(engine: &str, w: &Workload, got: u64, want: u32) -> Result<(), BenchError> {
    // Linux reports the low 32 bits of r0; every body returns a __u32.
    if got != want as u64 {
        return Err(BenchError::WrongResult {
            engine: engine.to_string(),
            workload: w.name.to_string(),
            got,
            want: want as u64,
        });
    }
    Ok(())
}

/// A reference engine (rbpf, Linux) disagreeing with native code is not a
/// Cordon bug: its cell says so loudly (and is not timed) instead of ending
/// the suite. Cordon disagreeing ends the suite ([`check`]).
fn foreign_check(engine: &str, w: &Workload, got: u64, want: u32) -> Result<(), String> {
    if got == want as u64 {
        return Ok(());
    }
    let why = format!("WRONG RESULT {got:#x} (native: {want:#x}), not timed");
    eprintln!("cordon-bench: warning: {engine} on '{}': {why}", w.name);
    Err(why)
}

fn failed(engine: &str, w: &Workload, e: impl std::fmt::Display) -> BenchError {
    BenchError::Failed {
        engine: engine.to_string(),
        workload: w.name.to_string(),
        message: e.to_string(),
    }
}

/// Time a Cordon program on the lowest-overhead call path, after checking
/// both that path and `run_xdp` against native.
fn time_cordon(
    label: &str,
    p: &CordonProgram,
    w: &Workload,
    input: &[u8],
    want: u32,
    s: Settings,
) -> Result<Measured, BenchError> {
    let got = p.run_xdp(input).map_err(|e| failed(label, w, e))?;
    check(&format!("{label} (run_xdp)"), w, got as u64, want)?;
    let mut packet = Packet::new(input);
    let call = XdpCall::new(&mut packet);
    let got = call
        .call(&p.program, &mut packet)
        .map_err(|e| failed(label, w, e))?;
    check(label, w, got & 0xffff_ffff, want)?;
    if got >> 32 != 0 {
        return Err(failed(label, w, format!("r0 {got:#x} has high bits set")));
    }
    let prog = &p.program;
    Ok(measure(s, || {
        call.call(prog, &mut packet).unwrap_or(u64::MAX)
    }))
}

fn raw_object(objects: &Path) -> Result<cordon_object::Object, BenchError> {
    let path = objects.join("workloads_raw.o");
    let bytes = std::fs::read(&path).map_err(|source| BenchError::Io {
        path: path.display().to_string(),
        source,
    })?;
    cordon_object::Object::parse(&bytes)
        .map_err(|e| BenchError::Usage(format!("{}: {e}", path.display())))
}

fn rbpf_cells(
    raw: &cordon_object::Object,
    w: &Workload,
    input: &[u8],
    want: u32,
    s: Settings,
) -> Result<[Cell; 2], BenchError> {
    if w.map.is_some() {
        let why = "n/a: rbpf has no maps".to_string();
        return Ok([Err(why.clone()), Err(why)]);
    }
    let Some(spec) = raw.program(&w.raw_name()) else {
        return Err(failed(
            "rbpf",
            w,
            format!("no program {} in workloads_raw.o", w.raw_name()),
        ));
    };
    let code = cordon_isa::insn::to_bytes(&spec.insns);
    let vm = match Rbpf::new(code) {
        Ok(vm) => vm,
        Err(e) => {
            let why = format!("n/a: rbpf refuses the program: {e}");
            return Ok([Err(why.clone()), Err(why)]);
        }
    };
    let mut packet = Packet::new(input);
    let interp = match vm.interp(&mut packet) {
        Ok(got) => match foreign_check("rbpf interp", w, got, want) {
            Ok(()) => Ok(measure(s, || vm.interp(&mut packet).unwrap_or(u64::MAX))),
            Err(why) => Err(why),
        },
        Err(e) => Err(format!("n/a: rbpf interpreter fails: {e}")),
    };
    let jit = match vm.jit_error() {
        Some(e) => Err(format!("n/a: rbpf JIT refuses the program: {e}")),
        None => {
            let got = vm.jit(&mut packet).map_err(|e| failed("rbpf JIT", w, e))?;
            match foreign_check("rbpf JIT", w, got, want) {
                Ok(()) => Ok(measure(s, || vm.jit(&mut packet).unwrap_or(u64::MAX))),
                Err(why) => Err(why),
            }
        }
    };
    Ok([interp, jit])
}

fn linux_cell(
    obj: &KernelObject,
    w: &Workload,
    input: &[u8],
    want: u32,
    s: Settings,
) -> Result<Cell, BenchError> {
    let prog = match obj.program(&w.xdp_name()) {
        Ok(p) => p,
        Err(e) => return Ok(Err(format!("n/a: {e}"))),
    };
    let run = |repeat: u32| -> Result<cordon_linux::KernelRun, KernelError> {
        prog.test_run(&TestRun::new(input).with_repeat(repeat))
    };
    let first = run(1).map_err(|e| failed("Linux", w, e))?;
    if let Err(why) = foreign_check("Linux", w, first.retval as u64, want) {
        return Ok(Err(why));
    }
    let m = measure_external(s, |n| run(n).map(|r| r.duration_ns as f64))
        .map_err(|e| failed("Linux", w, e))?;
    Ok(Ok(m))
}

/// Compile-only JIT timing of the instructions Cordon runs (helpers bound
/// to placeholders: the code is never executed).
fn compile_time(p: &CordonProgram, w: &Workload, s: Settings) -> Result<CompileTime, BenchError> {
    let insns = p.program.insns().to_vec();
    let n = insns.len();
    let program =
        cordon_isa::Program::new(insns.clone()).map_err(|e| failed("JIT compile", w, e))?;
    let mut helpers = HelperRegistry::new();
    for i in &insns {
        if i.code == 0x85 && i.src == 0 {
            helpers.register(i.imm as u32, "placeholder", |_, _| Ok(0));
        }
    }
    let compile = || {
        // SAFETY: compiled only, never run.
        unsafe { JitExecutable::trusted(&program, &helpers, ExecOptions::named(w.name)) }
    };
    let code_bytes = compile()
        .map_err(|e| failed("JIT compile", w, e))?
        .code_size();
    // Fewer samples: compiling is slower than running.
    let s = Settings {
        samples: s.samples.min(5),
        ..s
    };
    let m = measure(s, || compile().map(|e| e.code_size() as u64).unwrap_or(0));
    Ok(CompileTime {
        workload: w.name,
        insns: n,
        code_bytes,
        compile: m,
    })
}

pub fn run(o: &Options) -> Result<Results, BenchError> {
    let s = o.settings;
    let xdp_obj = o.objects.join("workloads.o");
    let selected: Vec<Workload> = WORKLOADS
        .iter()
        .copied()
        .filter(|w| o.only.is_empty() || o.only.iter().any(|n| n == w.name))
        .collect();
    if selected.is_empty() {
        return Err(BenchError::Usage(format!(
            "--only {:?} matches no workload",
            o.only
        )));
    }

    progress(o, "loading workloads.o into Cordon (interpreter, JIT)");
    let interp = CordonEngine::new(
        "Cordon interp",
        Backend::Interpreter,
        StackStrategy::ThreadShadow,
        &xdp_obj,
    )?;
    let jit = CordonEngine::new(
        "Cordon JIT",
        Backend::Jit,
        StackStrategy::ThreadShadow,
        &xdp_obj,
    )?;
    let raw = raw_object(&o.objects)?;

    progress(o, "loading workloads.o into Linux (bpftool, verifier)");
    let (linux, linux_skip) = match KernelObject::load(&xdp_obj) {
        Ok(k) => (Some(k), None),
        Err(e) => {
            let why = match e.skip() {
                Some(r) => format!("Linux column skipped: {r}"),
                None => format!("Linux column skipped: loading the object failed: {e}"),
            };
            eprintln!("cordon-bench: {why}");
            (None, Some(why))
        }
    };

    let mut rows = Vec::new();
    let mut compile = Vec::new();
    for w in &selected {
        progress(o, &format!("workload {}", w.name));
        let input = (w.input)();
        let packet = Packet::new(&input);
        let map: *mut c_void = match w.map {
            Some(m) => jit.map_ptr(m)?,
            None => std::ptr::null_mut(),
        };
        let want = native(w, &packet, map);
        let native_m = measure(s, || native(w, &packet, map) as u64);
        check(
            "native without auto-vectorisation",
            w,
            native_novec(w, &packet, map) as u64,
            want,
        )?;
        let novec_m = measure(s, || native_novec(w, &packet, map) as u64);

        let pi = interp.program(w)?;
        let pj = jit.program(w)?;
        let mut cells = vec![
            (
                Col::CordonInterp,
                Ok(time_cordon("Cordon interp", &pi, w, &input, want, s)?),
            ),
            (
                Col::CordonJit,
                Ok(time_cordon("Cordon JIT", &pj, w, &input, want, s)?),
            ),
        ];
        let [ri, rj] = rbpf_cells(&raw, w, &input, want, s)?;
        cells.push((Col::RbpfInterp, ri));
        cells.push((Col::RbpfJit, rj));
        let lc = match &linux {
            Some(k) => linux_cell(k, w, &input, want, s)?,
            None => Err("n/a".to_string()),
        };
        cells.push((Col::Linux, lc));
        compile.push(compile_time(&pj, w, s)?);
        rows.push(Row {
            workload: *w,
            insns: pj.program.insns().len(),
            native: native_m,
            native_novec: novec_m,
            cells,
            jit_load: pj.load_time,
        });
    }
    compile.sort_by_key(|c| std::cmp::Reverse(c.insns));
    compile.truncate(5);

    progress(o, "empty program");
    let empty = empty_calls(o, &interp, &jit, linux.as_ref())?;

    let stack = if selected.iter().any(|w| w.name == "callchain") {
        progress(o, "shadow stack strategies on callchain");
        stack_rows(o, &xdp_obj)?
    } else {
        Vec::new()
    };

    Ok(Results {
        rows,
        empty,
        compile,
        stack,
        linux_skip,
    })
}

fn empty_calls(
    o: &Options,
    interp: &CordonEngine,
    jit: &CordonEngine,
    linux: Option<&KernelObject>,
) -> Result<Vec<EmptyCall>, BenchError> {
    let s = o.settings;
    let w = &EMPTY;
    let input = (w.input)();
    let mut packet = Packet::new(&input);
    let want = native(w, &packet, std::ptr::null_mut());
    let mut out = vec![EmptyCall {
        label: "native call (same C source)",
        m: Ok(measure(s, || {
            native(w, &packet, std::ptr::null_mut()) as u64
        })),
    }];
    for (label, engine) in [
        ("Cordon JIT, `Program::call`", jit),
        ("Cordon interp, `Program::call`", interp),
    ] {
        let p = engine.program(w)?;
        let m = time_cordon(label, &p, w, &input, want, s)?;
        out.push(EmptyCall { label, m: Ok(m) });
    }
    let p = jit.program(w)?;
    let _ = &mut packet;
    out.push(EmptyCall {
        label: "Cordon JIT, `Program::run_xdp` (packet copy, result vectors)",
        m: Ok(measure(s, || p.run_xdp(&input).map_or(u64::MAX, u64::from))),
    });
    let lc = match linux {
        Some(k) => linux_cell(k, w, &input, want, s)?,
        None => Err("n/a".to_string()),
    };
    out.push(EmptyCall {
        label: "Linux JIT, BPF_PROG_TEST_RUN (kernel-measured, per repeat)",
        m: lc,
    });
    Ok(out)
}

/// The three stack strategies on the call-chain workload.
///
/// Load on a shared machine only ever adds time and drifts over seconds, so:
/// many short interleaved rounds (the strategy order reverses every round, so
/// drift within a round favours none), each measurement's fastest sample, and
/// per round the ratio to `Native` measured in that same round; the median of
/// those paired ratios (with quartiles) is the overhead estimate.
fn stack_rows(o: &Options, xdp_obj: &Path) -> Result<Vec<StackRow>, BenchError> {
    let s = o.settings;
    let w = WORKLOADS
        .iter()
        .find(|w| w.name == "callchain")
        .expect("callchain workload");
    let input = (w.input)();
    let want = native(w, &Packet::new(&input), std::ptr::null_mut());
    let strategies = [
        StackStrategy::Native,
        StackStrategy::ThreadShadow,
        StackStrategy::PerProgram,
    ];
    let mut progs = Vec::new();
    for strategy in strategies {
        let j = CordonEngine::new(
            &format!("Cordon JIT {strategy:?}"),
            Backend::Jit,
            strategy,
            xdp_obj,
        )?;
        let i = CordonEngine::new(
            &format!("Cordon interp {strategy:?}"),
            Backend::Interpreter,
            strategy,
            xdp_obj,
        )?;
        let (pj, pi) = (j.program(w)?, i.program(w)?);
        progs.push((strategy, j, pj, i, pi));
    }
    let (rounds, per_round) = if s.samples >= 5 { (15, 3) } else { (3, 1) };
    let rs = Settings {
        sample: s.sample,
        samples: per_round,
    };
    let n = strategies.len();
    let mut jit: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut interp: Vec<Vec<f64>> = vec![Vec::new(); n];
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..n).collect()
        } else {
            (0..n).rev().collect()
        };
        for k in order {
            let (_, j, pj, i, pi) = &progs[k];
            // Interference only ever adds time: for this A/B comparison the
            // fastest sample is the robust estimate.
            jit[k].push(time_cordon(&j.label, pj, w, &input, want, rs)?.min_ns);
            interp[k].push(time_cordon(&i.label, pi, w, &input, want, rs)?.min_ns);
        }
    }
    let paired =
        |xs: &[f64], base: &[f64]| Spread::of(xs.iter().zip(base).map(|(x, b)| x / b).collect());
    Ok(progs
        .iter()
        .enumerate()
        .map(|(k, (strategy, ..))| StackRow {
            strategy: *strategy,
            jit: Measured::from_samples(jit[k].clone(), 0),
            interp: Measured::from_samples(interp[k].clone(), 0),
            jit_vs_native: paired(&jit[k], &jit[0]),
            interp_vs_native: paired(&interp[k], &interp[0]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects() -> PathBuf {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../benches/workloads"
        ))
    }

    /// Every workload gives native's result on Cordon's interpreter and JIT,
    /// through both `run_xdp` and `call` (what the suite checks before timing).
    #[test]
    fn cordon_agrees_with_native_on_every_workload() {
        let s = Settings {
            sample: Duration::from_micros(100),
            samples: 1,
        };
        let obj = objects().join("workloads.o");
        for backend in [Backend::Interpreter, Backend::Jit] {
            let e = CordonEngine::new("test", backend, StackStrategy::ThreadShadow, &obj).unwrap();
            for w in WORKLOADS.iter().chain([&EMPTY]) {
                let input = (w.input)();
                let map = match w.map {
                    Some(m) => e.map_ptr(m).unwrap(),
                    None => std::ptr::null_mut(),
                };
                let want = native(w, &Packet::new(&input), map);
                let p = e.program(w).unwrap();
                time_cordon("test", &p, w, &input, want, s)
                    .unwrap_or_else(|err| panic!("{backend:?} {}: {err}", w.name));
            }
        }
    }

    #[test]
    fn a_wrong_result_is_an_error() {
        let w = &WORKLOADS[0];
        assert!(check("x", w, 5, 5).is_ok());
        let e = check("x", w, 6, 5).unwrap_err().to_string();
        assert!(
            e.contains("returned 0x6") && e.contains("native code returned 0x5"),
            "{e}"
        );
        assert!(check("x", w, 1 << 32 | 5, 5).is_err());
        assert!(
            foreign_check("rbpf JIT", w, 7, 5)
                .unwrap_err()
                .starts_with("WRONG RESULT")
        );
    }

    /// rbpf runs the raw entries of the same bodies with the same results.
    #[test]
    fn rbpf_agrees_with_native_on_pure_workloads() {
        let raw = raw_object(&objects()).unwrap();
        for w in WORKLOADS
            .iter()
            .filter(|w| w.map.is_none() && w.name != "callchain")
        {
            let input = (w.input)();
            let want = native(w, &Packet::new(&input), std::ptr::null_mut());
            let spec = raw.program(&w.raw_name()).unwrap();
            let vm = Rbpf::new(cordon_isa::insn::to_bytes(&spec.insns)).unwrap();
            let mut p = Packet::new(&input);
            assert_eq!(vm.interp(&mut p).unwrap(), want as u64, "{}", w.name);
            if w.name == "unrolled" {
                // More machine code than rbpf's fixed 4 KiB JIT buffer.
                assert!(vm.jit_error().is_some());
                continue;
            }
            assert_eq!(vm.jit_error(), None, "{}", w.name);
            assert_eq!(vm.jit(&mut p).unwrap(), want as u64, "{}", w.name);
        }
    }
}
