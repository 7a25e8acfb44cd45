//! Sampling: a fixed number of iterations per sample (calibrated once), the
//! median of several samples, in thread CPU time (the machine may be shared;
//! Linux's BPF_PROG_TEST_RUN timer likewise pauses while the task is
//! rescheduled).

use std::hint::black_box;
use std::time::Duration;

/// How long and how often to sample.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Target duration of one sample.
    pub sample: Duration,
    /// Samples per measurement (the median is reported).
    pub samples: usize,
}

impl Settings {
    pub fn full() -> Settings {
        Settings {
            sample: Duration::from_millis(25),
            samples: 9,
        }
    }

    pub fn quick() -> Settings {
        Settings {
            sample: Duration::from_millis(3),
            samples: 3,
        }
    }
}

/// A measurement: median, minimum and maximum ns per run over the samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    pub median_ns: f64,
    pub min_ns: f64,
    pub max_ns: f64,
    pub iters: u64,
}

impl Measured {
    pub fn from_samples(mut ns: Vec<f64>, iters: u64) -> Measured {
        ns.sort_by(f64::total_cmp);
        let n = ns.len();
        let median = if n % 2 == 1 {
            ns[n / 2]
        } else {
            (ns[n / 2 - 1] + ns[n / 2]) / 2.0
        };
        Measured {
            median_ns: median,
            min_ns: ns[0],
            max_ns: ns[n - 1],
            iters,
        }
    }
}

/// Median and quartiles of a set of ratios (e.g. paired per-round time
/// ratios of two configurations measured back to back).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    /// First and third quartile (nearest-rank).
    pub q1: f64,
    pub q3: f64,
    pub n: usize,
}

impl Spread {
    /// None for an empty set or one with a non-finite value.
    pub fn of(mut xs: Vec<f64>) -> Option<Spread> {
        if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
            return None;
        }
        xs.sort_by(f64::total_cmp);
        let n = xs.len();
        let median = if n % 2 == 1 {
            xs[n / 2]
        } else {
            (xs[n / 2 - 1] + xs[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            q1: xs[(n - 1) / 4],
            q3: xs[(3 * (n - 1)).div_ceil(4)],
            n,
        })
    }
}

/// CPU time of the calling thread.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn time_iters(iters: u64, f: &mut impl FnMut() -> u64) -> Duration {
    let start = thread_cpu_time();
    for _ in 0..iters {
        black_box(f());
    }
    thread_cpu_time() - start
}

/// Iterations so that one sample takes about `target`.
fn calibrate(target: Duration, f: &mut impl FnMut() -> u64) -> u64 {
    let mut iters = 1u64;
    loop {
        let t = time_iters(iters, f);
        if t >= target / 4 || iters >= 1 << 30 {
            let per = t.as_secs_f64() / iters as f64;
            let want = (target.as_secs_f64() / per.max(1e-12)).ceil() as u64;
            return want.clamp(1, 1 << 32);
        }
        iters *= 4;
    }
}

/// Measure `f` (one run per call) in user space.
pub fn measure(s: Settings, mut f: impl FnMut() -> u64) -> Measured {
    let iters = calibrate(s.sample, &mut f);
    let ns = (0..s.samples)
        .map(|_| time_iters(iters, &mut f).as_nanos() as f64 / iters as f64)
        .collect();
    Measured::from_samples(ns, iters)
}

/// Measure with a sampler that runs `iters` iterations itself and returns
/// the mean ns per run it measured (Linux's test_run with `repeat`).
pub fn measure_external<E>(
    s: Settings,
    mut sample: impl FnMut(u32) -> Result<f64, E>,
) -> Result<Measured, E> {
    // Calibrate on the kernel's own per-run figure.
    let mut iters = 1u32;
    let per = loop {
        let ns = sample(iters)?;
        let total = ns * iters as f64;
        if total >= s.sample.as_nanos() as f64 / 4.0 || iters >= 1 << 24 {
            break ns.max(0.5);
        }
        iters = iters.saturating_mul(4);
    };
    let iters = ((s.sample.as_nanos() as f64 / per).ceil() as u64).clamp(1, 1 << 26) as u32;
    let mut ns = Vec::with_capacity(s.samples);
    for _ in 0..s.samples {
        ns.push(sample(iters)?);
    }
    Ok(Measured::from_samples(ns, iters as u64))
}

/// Geometric mean (None for an empty set).
pub fn geomean(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    Some((xs.iter().map(|x| x.ln()).sum::<f64>() / xs.len() as f64).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_sample_counts() {
        let m = Measured::from_samples(vec![5.0, 1.0, 3.0], 10);
        assert_eq!((m.median_ns, m.min_ns, m.max_ns), (3.0, 1.0, 5.0));
        let m = Measured::from_samples(vec![4.0, 1.0, 3.0, 2.0], 10);
        assert_eq!(m.median_ns, 2.5);
    }

    #[test]
    fn spread_of_paired_ratios() {
        assert_eq!(Spread::of(vec![]), None);
        assert_eq!(Spread::of(vec![1.0, f64::NAN]), None);
        let s = Spread::of(vec![1.05, 0.99, 1.01, 1.00, 1.30]).unwrap();
        assert_eq!((s.median, s.q1, s.q3, s.n), (1.01, 1.00, 1.05, 5));
        let s = Spread::of(vec![2.0, 1.0]).unwrap();
        assert_eq!((s.median, s.q1, s.q3), (1.5, 1.0, 2.0));
    }

    #[test]
    fn geomean_of_ratios() {
        assert_eq!(geomean(&[]), None);
        let g = geomean(&[2.0, 8.0]).unwrap();
        assert!((g - 4.0).abs() < 1e-12);
    }

    #[test]
    fn measure_counts_iterations() {
        let mut calls = 0u64;
        let m = measure(
            Settings {
                sample: Duration::from_micros(200),
                samples: 3,
            },
            || {
                calls += 1;
                calls
            },
        );
        assert!(m.iters >= 1);
        assert!(calls >= 3 * m.iters);
        assert!(m.min_ns <= m.median_ns && m.median_ns <= m.max_ns);
    }
}
