//! Markdown rendering, machine information and the BENCHMARKS.md section.

use std::fmt::Write as _;

use crate::suite::{Col, Results, Row};
use crate::timing::{Measured, Settings, Spread, geomean};

pub const BEGIN: &str = "<!-- cordon-bench:begin -->";
pub const END: &str = "<!-- cordon-bench:end -->";

/// Where and when the numbers were taken.
pub struct Machine {
    pub cpu: String,
    pub cpus: usize,
    pub kernel: String,
    pub load_before: String,
    pub load_after: String,
    pub date: String,
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

pub fn load_average() -> String {
    read_trim("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

impl Machine {
    pub fn probe(load_before: String) -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read_trim("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
            load_before,
            load_after: load_average(),
            date: utc_now(),
        }
    }
}

/// `YYYY-MM-DD HH:MM UTC` without a date crate.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        t / 3600,
        t % 3600 / 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (H. Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn ns(x: f64) -> String {
    if x >= 100_000.0 {
        format!("{:.0} µs", x / 1000.0)
    } else if x >= 10_000.0 {
        format!("{:.1} µs", x / 1000.0)
    } else if x >= 100.0 {
        format!("{x:.0} ns")
    } else {
        format!("{x:.1} ns")
    }
}

fn ratio(x: f64) -> String {
    if x >= 10.0 {
        format!("{x:.0}×")
    } else {
        format!("{x:.2}×")
    }
}

/// Ratio of an engine to native on one row.
fn row_ratio(r: &Row, c: Col) -> Option<f64> {
    r.cell(c)
        .as_ref()
        .ok()
        .map(|m| m.median_ns / r.native.median_ns)
}

fn col_geomean(rows: &[Row], c: Col) -> (Option<f64>, usize) {
    let xs: Vec<f64> = rows.iter().filter_map(|r| row_ratio(r, c)).collect();
    (geomean(&xs), xs.len())
}

/// Goal verdicts (also used for the exit summary).
pub struct Goal {
    pub name: String,
    pub target: String,
    pub measured: String,
    pub met: Option<bool>,
}

pub fn goals(res: &Results) -> Vec<Goal> {
    let mut g = Vec::new();
    let rows = &res.rows;
    let (jit_gm, n) = col_geomean(rows, Col::CordonJit);
    g.push(Goal {
        name: "Cordon JIT geometric mean vs native".into(),
        target: "≤ 1.5×".into(),
        measured: jit_gm.map_or("n/a".into(), |x| format!("{} over {n} workloads", ratio(x))),
        met: jit_gm.map(|x| x <= 1.5),
    });
    let vs_scalar: Vec<f64> = rows
        .iter()
        .filter_map(|r| {
            Some(r.cell(Col::CordonJit).as_ref().ok()?.median_ns / r.native_novec.median_ns)
        })
        .collect();
    let scalar_gm = geomean(&vs_scalar);
    g.push(Goal {
        name: "(reference) Cordon JIT vs native without auto-vectorisation".into(),
        target: "—".into(),
        measured: scalar_gm.map_or("n/a".into(), |x| {
            format!("{} over {} workloads", ratio(x), vs_scalar.len())
        }),
        met: None,
    });
    let vs_linux: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.cell(Col::CordonJit).as_ref().ok()?.median_ns,
                r.cell(Col::Linux).as_ref().ok()?.median_ns,
            ))
        })
        .collect();
    let faster = vs_linux.iter().filter(|(c, l)| c < l).count();
    g.push(Goal {
        name: "Cordon JIT faster than Linux's JIT".into(),
        target: "on most workloads".into(),
        measured: if vs_linux.is_empty() {
            res.linux_skip.clone().unwrap_or_else(|| "n/a".into())
        } else {
            format!("faster on {faster} of {}", vs_linux.len())
        },
        met: (!vs_linux.is_empty()).then_some(faster * 2 > vs_linux.len()),
    });
    let vs_rbpf: Vec<f64> = rows
        .iter()
        .filter_map(|r| {
            Some(
                r.cell(Col::RbpfJit).as_ref().ok()?.median_ns
                    / r.cell(Col::CordonJit).as_ref().ok()?.median_ns,
            )
        })
        .collect();
    let rbpf_gm = geomean(&vs_rbpf);
    let at_least_2 = vs_rbpf.iter().filter(|&&x| x >= 2.0).count();
    g.push(Goal {
        name: "Cordon JIT vs rbpf's JIT (speed-up)".into(),
        target: "≥ 2×".into(),
        measured: rbpf_gm.map_or("n/a".into(), |x| {
            format!(
                "{} geometric mean; ≥ 2× on {at_least_2} of {}",
                ratio(x),
                vs_rbpf.len()
            )
        }),
        met: rbpf_gm.map(|x| x >= 2.0),
    });
    let empty = res
        .empty
        .iter()
        .find(|e| e.label.starts_with("Cordon JIT, `Program::call`"))
        .and_then(|e| e.m.as_ref().ok().map(|m| m.median_ns));
    g.push(Goal {
        name: "empty program through the API (`Program::call`, JIT)".into(),
        target: "≤ 15 ns".into(),
        measured: empty.map_or("n/a".into(), ns),
        met: empty.map(|x| x <= 15.0),
    });
    // `compile` is sorted by size, largest first: the headline is the
    // largest program (fixed per-program costs dominate small ones).
    let per_k: Vec<f64> = res
        .compile
        .iter()
        .map(|c| c.compile.median_ns / c.insns as f64 / 1000.0)
        .collect();
    let largest = res.compile.first().zip(per_k.first());
    let worst = per_k.iter().copied().reduce(f64::max);
    g.push(Goal {
        name: "JIT compile time per 1,000 instructions (largest program)".into(),
        target: "≤ 1 ms".into(),
        measured: largest.map_or("n/a".into(), |(c, x)| {
            format!(
                "{x:.2} ms on `{}` ({} insns); worst of the {} largest: {:.2} ms",
                c.workload,
                c.insns,
                per_k.len(),
                worst.unwrap_or(*x)
            )
        }),
        met: largest.map(|(_, x)| *x <= 1.0),
    });
    let over = res
        .stack
        .iter()
        .find(|s| matches!(s.strategy, cordon::StackStrategy::ThreadShadow))
        .and_then(|s| s.jit_vs_native)
        .map(|r| (r.median - 1.0) * 100.0);
    g.push(Goal {
        name: "shadow stack vs native-stack frames (JIT, callchain)".into(),
        target: "≤ 2 %".into(),
        measured: over.map_or("n/a".into(), |x| format!("{x:+.1} %")),
        met: over.map(|x| x <= 2.0),
    });
    g
}

pub struct RenderInfo<'a> {
    pub machine: &'a Machine,
    pub settings: Settings,
    pub quick: bool,
    pub command: String,
    pub native_cc: &'a str,
}

fn cell_text(c: &Result<Measured, String>, native: f64) -> String {
    match c {
        Ok(m) => format!("{} ({})", ns(m.median_ns), ratio(m.median_ns / native)),
        Err(why) => {
            if why.starts_with("n/a") {
                "n/a".into()
            } else if why.starts_with("WRONG") {
                "**wrong result**".into()
            } else {
                format!("n/a ({why})")
            }
        }
    }
}

pub fn render(res: &Results, info: &RenderInfo<'_>) -> String {
    let m = info.machine;
    let mut o = String::new();
    let _ = writeln!(o, "## Benchmark results\n");
    let _ = writeln!(
        o,
        "Generated by `{}` on {}.{}\n",
        info.command,
        m.date,
        if info.quick {
            " **Quick mode: few, short samples — for validating the suite, not for quoting.**"
        } else {
            ""
        }
    );
    let _ = writeln!(o, "| machine | |\n|---|---|");
    let _ = writeln!(o, "| CPU | {} ({} logical CPUs) |", m.cpu, m.cpus);
    let _ = writeln!(o, "| kernel | {} |", m.kernel);
    let _ = writeln!(
        o,
        "| load average (1/5/15 min) | {} at start, {} at end |",
        m.load_before, m.load_after
    );
    let _ = writeln!(
        o,
        "| sampling | median of {} samples of ≈{} ms each, thread CPU time; Linux: kernel-measured `duration` of BPF_PROG_TEST_RUN with `repeat` |",
        info.settings.samples,
        info.settings.sample.as_millis()
    );
    let _ = writeln!(
        o,
        "| native | same C source, `{} -O2`; \"no SIMD\" adds `-fno-vectorize -fno-slp-vectorize` |\n",
        info.native_cc
    );

    let _ = writeln!(o, "### Workloads\n");
    let _ = writeln!(
        o,
        "Time per run (ratio to native). Every engine's result was checked against native before timing. \
         Cordon and Linux run the same XDP programs of `benches/workloads/workloads.o`; rbpf runs the raw-memory \
         entries of `workloads_raw.o` (same bodies); Cordon is timed through `cordon::Program::call` with an XDP context.\n"
    );
    let mut head = String::from("| workload | insns | native | native, no SIMD |");
    let mut sep = String::from("|---|---:|---:|---:|");
    for c in Col::ALL {
        let _ = write!(head, " {} |", c.title());
        sep.push_str("---:|");
    }
    let _ = writeln!(o, "{head}\n{sep}");
    for r in &res.rows {
        let mut line = format!(
            "| {} | {} | {} | {} ({}) |",
            r.workload.name,
            r.insns,
            ns(r.native.median_ns),
            ns(r.native_novec.median_ns),
            ratio(r.native_novec.median_ns / r.native.median_ns)
        );
        for c in Col::ALL {
            let _ = write!(line, " {} |", cell_text(r.cell(c), r.native.median_ns));
        }
        let _ = writeln!(o, "{line}");
    }
    let novec: Vec<f64> = res
        .rows
        .iter()
        .map(|r| r.native_novec.median_ns / r.native.median_ns)
        .collect();
    let mut gm = format!(
        "| **geometric mean** | | 1.00× | **{}** |",
        geomean(&novec).map_or("n/a".into(), ratio)
    );
    for c in Col::ALL {
        let (g, n) = col_geomean(&res.rows, c);
        let _ = write!(
            gm,
            " {} |",
            g.map_or("n/a".into(), |g| if n == res.rows.len() {
                format!("**{}**", ratio(g))
            } else {
                format!("**{}** ({n} of {})", ratio(g), res.rows.len())
            })
        );
    }
    let _ = writeln!(o, "{gm}\n");
    let mut notes: Vec<String> = Vec::new();
    for r in &res.rows {
        for c in Col::ALL {
            if let Err(why) = r.cell(c) {
                let why = why.trim_start_matches("n/a: ").trim_start_matches("n/a");
                if !why.is_empty() {
                    let why = why.replace('\n', " ");
                    notes.push(format!("{} / {}: {why}", c.title(), r.workload.name));
                }
            }
        }
    }
    if let Some(s) = &res.linux_skip {
        notes.push(s.clone());
    }
    notes.dedup();
    for n in &notes {
        let _ = writeln!(o, "- {n}");
    }
    if !notes.is_empty() {
        o.push('\n');
    }
    let _ = writeln!(o, "<details><summary>What each workload does</summary>\n");
    for r in &res.rows {
        let _ = writeln!(o, "- `{}`: {}", r.workload.name, r.workload.about);
    }
    let _ = writeln!(o, "\n</details>\n");

    let _ = writeln!(
        o,
        "### Goals\n\n| goal | target | measured | met |\n|---|---|---|---|"
    );
    for g in goals(res) {
        let met = match g.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None if g.target == "—" => "—",
            None => "n/a",
        };
        let _ = writeln!(o, "| {} | {} | {} | {met} |", g.name, g.target, g.measured);
    }
    o.push('\n');

    let _ = writeln!(
        o,
        "### Empty program (call overhead)\n\n| path | ns per call |\n|---|---:|"
    );
    for e in &res.empty {
        let v = match &e.m {
            Ok(m) => ns(m.median_ns),
            Err(w) => w.clone(),
        };
        let _ = writeln!(o, "| {} | {v} |", e.label);
    }
    o.push('\n');

    let _ = writeln!(
        o,
        "### JIT compile time\n\nCompile only (`JitExecutable::trusted` on the instructions Cordon runs), largest workloads; \
         verification + compilation through the API (`Object::program`, first call) for comparison.\n"
    );
    let _ = writeln!(
        o,
        "| workload | insns | machine code | compile | per 1,000 insns | verify + compile (API) |\n|---|---:|---:|---:|---:|---:|"
    );
    for c in &res.compile {
        let load = res
            .rows
            .iter()
            .find(|r| r.workload.name == c.workload)
            .map_or("n/a".into(), |r| {
                format!("{:.2} ms", r.jit_load.as_secs_f64() * 1e3)
            });
        let _ = writeln!(
            o,
            "| {} | {} | {} B | {:.0} µs | {:.2} ms | {load} |",
            c.workload,
            c.insns,
            c.code_bytes,
            c.compile.median_ns / 1000.0,
            c.compile.median_ns / c.insns as f64 / 1000.0
        );
    }
    o.push('\n');

    if !res.stack.is_empty() {
        let rounds = res
            .stack
            .iter()
            .find_map(|s| s.jit_vs_native.map(|r| r.n))
            .unwrap_or(0);
        let _ = writeln!(
            o,
            "### Shadow stack (callchain: 64 chains of 6 bpf-to-bpf frames)\n\n\
             `StackStrategy` of cordon-exec; overhead relative to `Native` (frames in a local array on the native stack). \
             {rounds} interleaved rounds (order reversed every round); per round the fastest sample of each strategy \
             and its ratio to `Native`'s of the same round. Times: median of the rounds' fastest samples; \
             overhead: median of the paired ratios [quartiles].\n\n\
             | strategy | JIT | vs Native | interpreter | vs Native |\n|---|---:|---:|---:|---:|"
        );
        let pct = |r: Option<Spread>| {
            r.map_or("n/a".to_string(), |r| {
                format!(
                    "{:+.1} % [{:+.1}, {:+.1}]",
                    (r.median - 1.0) * 100.0,
                    (r.q1 - 1.0) * 100.0,
                    (r.q3 - 1.0) * 100.0
                )
            })
        };
        for s in &res.stack {
            let _ = writeln!(
                o,
                "| {:?} | {} | {} | {} | {} |",
                s.strategy,
                ns(s.jit.median_ns),
                pct(s.jit_vs_native),
                ns(s.interp.median_ns),
                pct(s.interp_vs_native)
            );
        }
        o.push('\n');
    }
    o
}

/// Replace the marked section of `doc` with `section` (markers appended at
/// the end when absent); the rest of the document is kept byte for byte.
pub fn splice(doc: &str, section: &str) -> Result<String, String> {
    let block = format!("{BEGIN}\n{}\n{END}", section.trim_end());
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => Ok(format!("{}{block}{}", &doc[..b], &doc[e + END.len()..])),
        (None, None) => {
            let mut out = doc.to_string();
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&block);
            out.push('\n');
            Ok(out)
        }
        _ => Err(format!(
            "the markers {BEGIN} and {END} must both be present, in this order, or both absent"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_replaces_only_the_section() {
        let doc = format!("# Title\n\nintro\n\n{BEGIN}\nold\n{END}\n\ntail\n");
        let out = splice(&doc, "new table\n").unwrap();
        assert_eq!(
            out,
            format!("# Title\n\nintro\n\n{BEGIN}\nnew table\n{END}\n\ntail\n")
        );
        // Idempotent.
        assert_eq!(splice(&out, "new table").unwrap(), out);
    }

    #[test]
    fn splice_appends_markers_when_absent() {
        assert_eq!(splice("", "x").unwrap(), format!("{BEGIN}\nx\n{END}\n"));
        assert_eq!(
            splice("# B\ntext", "x").unwrap(),
            format!("# B\ntext\n\n{BEGIN}\nx\n{END}\n")
        );
    }

    #[test]
    fn splice_refuses_broken_markers() {
        assert!(splice(&format!("{END}\n{BEGIN}\n"), "x").is_err());
        assert!(splice(&format!("{BEGIN}\n"), "x").is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
