//! Running a case in Cordon (the embedding API, crate `cordon`).

use std::collections::BTreeMap;
use std::path::Path;

use cordon::{Backend, Config, MapError};
use cordon_object::Object;

use super::cases::Case;
use super::outcome::{Outcome, RunOut, sum_per_cpu};

/// `BPF_MAP_TYPE_LPM_TRIE`: an extension map in Cordon's API.
const LPM_TRIE: u32 = 11;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Interp,
    Jit,
}

/// Run `case` in Cordon; per-CPU maps use slot 0 (the thread is pinned to it).
pub fn run(case: &Case, dir: &Path, engine: Engine) -> Result<Outcome, String> {
    cordon::set_cpu(0);
    let engine = cordon::Engine::new(Config {
        backend: match engine {
            Engine::Interp => Backend::Interpreter,
            Engine::Jit => Backend::Jit,
        },
        // As many CPU slots as Linux has possible CPUs: LRU maps size their
        // per-CPU lists and refill batches from it.
        cpus: cordon_linux::possible_cpus().map_or(1, |n| n as u32),
        ..Config::default()
    });
    let bytes = std::fs::read(dir.join(case.object)).map_err(|e| e.to_string())?;
    let parsed = Object::parse(&bytes).map_err(|e| e.to_string())?;
    let obj = engine
        .load_object(&bytes)
        .map_err(|e| format!("load: {e}"))?;
    for (map, slot, prog) in &case.tail_calls {
        let p = obj.program(prog).map_err(|e| e.to_string())?;
        obj.set_tail_call(map, *slot, &p)
            .map_err(|e| format!("tail call: {e}"))?;
    }
    for (map, key, value) in &case.updates {
        if parsed.map(map).is_some_and(|(_, m)| m.map_type == LPM_TRIE) {
            let m = obj.ext_map(map).map_err(|e| e.to_string())?;
            m.update_value(key, value, 0)
                .map_err(|errno| format!("update {map}: errno {errno}"))?;
            continue;
        }
        let m = obj.map(map).map_err(|e| e.to_string())?;
        let r = if key.is_empty() {
            m.push_value(value, 0)
        } else if m.map_type().is_percpu() {
            let n = m.ncpus() as usize;
            let stride = m.host_value_size() / n;
            let mut all = vec![0u8; m.host_value_size()];
            for c in 0..n {
                all[c * stride..c * stride + value.len()].copy_from_slice(value);
            }
            m.update_value(key, &all, 0)
        } else {
            m.update_value(key, value, 0)
        };
        r.map_err(|e| format!("update {map}: {e}"))?;
    }
    let prog = obj
        .program(case.prog)
        .map_err(|e| format!("program: {e}"))?;
    let mut runs = Vec::new();
    for p in &case.packets {
        let zero_ctx = [0u8; 192];
        let r = prog.run_with(p, case.ctx.then_some(&zero_ctx[..]));
        runs.push(
            r.map(|r| RunOut {
                retval: r.retval,
                data_out: r.packet,
                ctx_out: case.ctx.then_some(r.ctx_out),
            })
            .map_err(|e| e.to_string()),
        );
    }
    let mut maps = BTreeMap::new();
    for name in &case.maps {
        let spec = parsed.map(name).ok_or("no such map")?.1;
        if spec.map_type == LPM_TRIE {
            let m = obj.ext_map(name).map_err(|e| e.to_string())?;
            let entries = m.entries().into_iter().map(|(k, v)| (k, vec![v])).collect();
            maps.insert(name.to_string(), sum_per_cpu(spec, entries));
            continue;
        }
        let m = obj.map(name).map_err(|e| e.to_string())?;
        let mut entries = Vec::new();
        for k in m.keys() {
            let vals = if m.map_type().is_percpu() {
                m.lookup_percpu_values(&k)
            } else {
                m.lookup_value(&k).map(|v| vec![v])
            };
            match vals {
                Ok(v) => entries.push((k, v)),
                Err(MapError::NotFound) => {}
                Err(e) => return Err(format!("map {name}: {e}")),
            }
        }
        maps.insert(name.to_string(), sum_per_cpu(spec, entries));
    }
    let live = engine.test_objects_live();
    if live != 0 {
        return Err(format!(
            "{live} test kfunc objects not released after the runs"
        ));
    }
    Ok(Outcome { runs, maps })
}
