//! What one side produced for a case, and how two outcomes are compared.

use std::collections::BTreeMap;

use cordon_object::MapSpec;

/// One run: retval (low 32 bits), packet after the run and, for cases that
/// compare it, the context after the run; or the error.
pub type Run = Result<RunOut, String>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOut {
    pub retval: u32,
    pub data_out: Vec<u8>,
    pub ctx_out: Option<Vec<u8>>,
}

/// Sorted (key, value) pairs of one map.
pub type MapEntries = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub runs: Vec<Run>,
    /// Map name -> sorted (key, value); per-CPU values summed over CPUs.
    pub maps: BTreeMap<String, MapEntries>,
}

/// Linux map types whose values are per CPU.
pub fn is_per_cpu(map_type: u32) -> bool {
    matches!(map_type, 5 | 6 | 10 | 21)
}

/// Sum per-CPU values word by word (u64 words when the value size allows,
/// else u32), sort by key. Non-per-CPU maps keep their single value.
pub fn sum_per_cpu(
    spec: &MapSpec,
    entries: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let vs = spec.value_size as usize;
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = entries
        .into_iter()
        .map(|(k, vals)| {
            if !is_per_cpu(spec.map_type) {
                let v = vals.into_iter().next().unwrap_or_default();
                return (k, v);
            }
            let mut sum = vec![0u8; vs];
            let word = if vs.is_multiple_of(8) { 8 } else { 4 };
            for v in vals {
                for (i, chunk) in v[..vs.min(v.len())].chunks(word).enumerate() {
                    let at = i * word;
                    if chunk.len() != word {
                        continue;
                    }
                    if word == 8 {
                        let a = u64::from_le_bytes(sum[at..at + 8].try_into().unwrap());
                        let b = u64::from_le_bytes(chunk.try_into().unwrap());
                        sum[at..at + 8].copy_from_slice(&a.wrapping_add(b).to_le_bytes());
                    } else {
                        let a = u32::from_le_bytes(sum[at..at + 4].try_into().unwrap());
                        let b = u32::from_le_bytes(chunk.try_into().unwrap());
                        sum[at..at + 4].copy_from_slice(&a.wrapping_add(b).to_le_bytes());
                    }
                }
            }
            (k, sum)
        })
        .collect();
    out.sort();
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The 4-byte words where two buffers differ: `+OFF: A vs B`.
fn word_diff(a: &[u8], b: &[u8], a_name: &str, b_name: &str) -> String {
    let n = a.len().max(b.len());
    let word = |buf: &[u8], at: usize| hex(buf.get(at..(at + 4).min(buf.len())).unwrap_or(&[]));
    (0..n)
        .step_by(4)
        .filter(|&at| word(a, at) != word(b, at))
        .map(|at| {
            format!(
                "+{at}: {a_name} {} vs {b_name} {}",
                word(a, at),
                word(b, at)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Differences between two outcomes, as readable lines (empty = equal).
pub fn diff(a_name: &str, a: &Outcome, b_name: &str, b: &Outcome) -> Vec<String> {
    let mut d = Vec::new();
    if a.runs.len() != b.runs.len() {
        d.push(format!("{} runs vs {} runs", a.runs.len(), b.runs.len()));
    }
    for (i, (x, y)) in a.runs.iter().zip(&b.runs).enumerate() {
        match (x, y) {
            (Ok(x), Ok(y)) => {
                if x.retval != y.retval {
                    d.push(format!(
                        "packet {i}: retval {a_name} {} vs {b_name} {}",
                        x.retval, y.retval
                    ));
                }
                if x.data_out != y.data_out {
                    d.push(format!(
                        "packet {i}: data_out {a_name} {} vs {b_name} {}",
                        hex(&x.data_out),
                        hex(&y.data_out)
                    ));
                }
                if let (Some(cx), Some(cy)) = (&x.ctx_out, &y.ctx_out)
                    && cx != cy
                {
                    d.push(format!(
                        "packet {i}: ctx_out ({} vs {} bytes) differs at {}",
                        cx.len(),
                        cy.len(),
                        word_diff(cx, cy, a_name, b_name)
                    ));
                }
            }
            (Err(_), Err(_)) => {}
            _ => d.push(format!("packet {i}: {a_name} {x:?} vs {b_name} {y:?}")),
        }
    }
    for (name, ea) in &a.maps {
        match b.maps.get(name) {
            None => d.push(format!("map {name}: missing on {b_name}")),
            Some(eb) if ea != eb => {
                let show = |e: &Vec<(Vec<u8>, Vec<u8>)>| {
                    e.iter()
                        .map(|(k, v)| format!("{}={}", hex(k), hex(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                d.push(format!(
                    "map {name}: {a_name} [{}] vs {b_name} [{}]",
                    show(ea),
                    show(eb)
                ));
            }
            _ => {}
        }
    }
    d
}

/// Differences between an outcome's return values and the expected ones.
pub fn check_expected(name: &str, o: &Outcome, expect: &[u32]) -> Vec<String> {
    let mut d = Vec::new();
    for (i, (r, e)) in o.runs.iter().zip(expect).enumerate() {
        match r {
            Ok(r) if r.retval == *e => {}
            Ok(r) => d.push(format!(
                "packet {i}: {name} returned {}, README predicts {e}",
                r.retval
            )),
            Err(err) => d.push(format!(
                "packet {i}: {name} failed ({err}), README predicts {e}"
            )),
        }
    }
    d
}
