//! Counting and printing the results of a run over a capture.

use std::collections::BTreeMap;
use std::time::Duration;

use cordon_object::ProgType;
use serde_json::{Value, json};

use crate::retname;

/// Results of running a program over every packet of a capture.
#[derive(Debug, Default)]
pub struct PcapStats {
    /// Packets read from the capture.
    pub packets: u64,
    /// Program runs (packets × repeat).
    pub runs: u64,
    /// Count per return value (low 32 bits, as Linux reports it).
    pub by_retval: BTreeMap<u32, u64>,
    /// Packets the runtime refused to run (e.g. shorter than an Ethernet
    /// header), with the first error message.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Time spent inside the runs (capture reading excluded).
    pub run_time: Duration,
}

impl PcapStats {
    pub fn record(&mut self, retval: u64) {
        *self.by_retval.entry(retval as u32).or_default() += 1;
    }

    pub fn record_error(&mut self, packet: u64, e: &dyn std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("packet {packet}: {e}"));
        }
    }

    /// Mean nanoseconds per run.
    pub fn ns_per_run(&self) -> f64 {
        if self.runs == 0 {
            0.0
        } else {
            self.run_time.as_nanos() as f64 / self.runs as f64
        }
    }

    /// Runs per second.
    pub fn runs_per_second(&self) -> f64 {
        let s = self.run_time.as_secs_f64();
        if s == 0.0 { 0.0 } else { self.runs as f64 / s }
    }

    fn label(t: ProgType, v: u32) -> String {
        match retname::return_name(t, u64::from(v)) {
            Some(n) => n.to_string(),
            None => v.to_string(),
        }
    }

    /// The text report.
    pub fn text(&self, t: ProgType, engine: &str) -> String {
        let mut s = format!("packets: {}\n", self.packets);
        let width = self
            .by_retval
            .keys()
            .map(|&v| Self::label(t, v).len())
            .max()
            .unwrap_or(0);
        let ran = self.packets.saturating_sub(self.errors).max(1);
        for (&v, &n) in &self.by_retval {
            let label = Self::label(t, v);
            let pct = 100.0 * n as f64 / ran as f64;
            s.push_str(&format!("  {label:<width$}  {n:>10}  {pct:5.1}%\n"));
        }
        if self.errors > 0 {
            s.push_str(&format!(
                "  not run: {} ({})\n",
                self.errors,
                self.first_error.as_deref().unwrap_or("")
            ));
        }
        s.push_str(&format!(
            "time per packet: {:.1} ns ({engine}), {:.2} M packets/s\n",
            self.ns_per_run(),
            self.runs_per_second() / 1e6
        ));
        s
    }

    /// The JSON report fields.
    pub fn json(&self, t: ProgType, engine: &str) -> Value {
        let results: serde_json::Map<String, Value> = self
            .by_retval
            .iter()
            .map(|(&v, &n)| (Self::label(t, v), json!(n)))
            .collect();
        json!({
            "packets": self.packets,
            "runs": self.runs,
            "results": results,
            "errors": self.errors,
            "first_error": self.first_error,
            "engine": engine,
            "duration_ns": self.ns_per_run().round() as u64,
            "ns_per_packet": self.ns_per_run(),
            "packets_per_second": self.runs_per_second().round() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports() {
        let mut s = PcapStats {
            packets: 4,
            runs: 4,
            run_time: Duration::from_nanos(400),
            ..Default::default()
        };
        s.record(1);
        s.record(2);
        s.record(2);
        s.record_error(3, &"too short");
        let t = s.text(ProgType::Xdp, "interp");
        assert!(t.contains("XDP_DROP"), "{t}");
        assert!(t.contains("XDP_PASS"), "{t}");
        assert!(t.contains("not run: 1 (packet 3: too short)"), "{t}");
        assert!(t.contains("time per packet: 100.0 ns"), "{t}");
        let j = s.json(ProgType::Xdp, "jit");
        assert_eq!(j["results"]["XDP_PASS"], 2);
        assert_eq!(j["errors"], 1);
        assert_eq!(j["packets_per_second"], 10_000_000);
        let j = s.json(ProgType::SocketFilter, "jit");
        assert_eq!(j["results"]["2"], 2);
    }
}
