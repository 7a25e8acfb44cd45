//! `cordon run OBJ`: load an object with the embedding API and run one
//! program on one packet (`--data-in`) or on every packet of a capture
//! (`--pcap`).

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use cordon_object::{MapSpec, Object, ProgType};
use serde_json::{Value, json};

use crate::engine::{Loaded, Session};
use crate::mapinit::{self, MapUpdate};
use crate::pcap::PcapReader;
use crate::report::PcapStats;
use crate::run::RunArgs;
use crate::{Engine, btfmt, objcmd, retname};

/// `--tail-call MAP:INDEX=PROG`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailCall {
    pub map: String,
    pub index: u32,
    pub prog: String,
}

/// Parse one `--tail-call MAP:INDEX=PROG`.
pub fn parse_tail_call(spec: &str) -> Result<TailCall> {
    let bad =
        || anyhow!("--tail-call {spec:?}: expected MAP:INDEX=PROG (e.g. jump_table:2=tail_one)");
    let (map, rest) = spec.split_once(':').ok_or_else(bad)?;
    let (index, prog) = rest.split_once('=').ok_or_else(bad)?;
    if map.is_empty() || prog.is_empty() {
        return Err(bad());
    }
    let index = index
        .trim()
        .parse::<u32>()
        .map_err(|_| anyhow!("--tail-call {spec:?}: slot {index:?} is not a number"))?;
    Ok(TailCall {
        map: map.to_string(),
        index,
        prog: prog.to_string(),
    })
}

/// `BPF_MAP_TYPE_PROG_ARRAY`.
const PROG_ARRAY: u32 = 3;
/// Map types whose updates take no key (queue, stack, bloom filter).
fn keyless(map_type: u32) -> bool {
    matches!(map_type, 22 | 23 | 30)
}

/// Check the tail calls and map updates against the object before loading.
fn check_setup(obj: &Object, tail_calls: &[TailCall], updates: &[MapUpdate]) -> Result<()> {
    let map_names = || {
        obj.maps
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for t in tail_calls {
        let (_, m) = obj.map(&t.map).ok_or_else(|| {
            anyhow!(
                "--tail-call: no map named {:?} (maps: {})",
                t.map,
                map_names()
            )
        })?;
        if m.map_type != PROG_ARRAY {
            bail!(
                "--tail-call: map {:?} is a {}, not a prog_array",
                t.map,
                m.type_name()
            );
        }
        if t.index >= m.max_entries {
            bail!(
                "--tail-call: slot {} is out of range for {:?} (max_entries {})",
                t.index,
                t.map,
                m.max_entries
            );
        }
        if obj.program(&t.prog).is_none() {
            bail!(
                "--tail-call: no program named {:?} (programs: {})",
                t.prog,
                obj.programs
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    for u in updates {
        let (_, m) = obj.map(&u.map).ok_or_else(|| {
            anyhow!(
                "{}: no map named {:?} (maps: {})",
                u.origin,
                u.map,
                map_names()
            )
        })?;
        let want_key = if keyless(m.map_type) {
            0
        } else {
            m.key_size as usize
        };
        if u.key.len() != want_key {
            bail!(
                "{}: map {:?} ({}) takes a {want_key}-byte key, got {} bytes",
                u.origin,
                u.map,
                m.type_name(),
                u.key.len()
            );
        }
        if u.value.len() != m.value_size as usize {
            bail!(
                "{}: map {:?} ({}) takes a {}-byte value, got {} bytes",
                u.origin,
                u.map,
                m.type_name(),
                m.value_size,
                u.value.len()
            );
        }
    }
    Ok(())
}

pub fn run(args: &RunArgs) -> Result<()> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let obj = Object::parse(&bytes).map_err(|e| anyhow!("{}: {e}", args.file.display()))?;
    let spec = objcmd::select_program(&obj, &args.file, args.prog.as_deref())?;
    let prog_name = spec.name.clone();
    let spec_insns = spec.insns.clone();
    let prog_type = spec.prog_type;
    if !matches!(
        prog_type,
        ProgType::Xdp | ProgType::SchedCls | ProgType::SchedAct | ProgType::SocketFilter
    ) {
        bail!(
            "{}: program {prog_name} has type {prog_type}; cordon run supports xdp, tc/classifier/action and socket programs",
            args.file.display()
        );
    }
    let tail_calls = args
        .tail_calls
        .iter()
        .map(|s| parse_tail_call(s))
        .collect::<Result<Vec<_>>>()?;
    let mut updates = Vec::new();
    if let Some(f) = &args.maps_file {
        updates.extend(mapinit::read_maps_file(f)?);
    }
    for s in &args.map_updates {
        updates.push(mapinit::parse_update(s)?);
    }
    check_setup(&obj, &tail_calls, &updates)?;

    let session = Session::new(args.engine, args.profile.verifier(), !args.unverified);
    let loaded = session
        .load(&bytes)
        .with_context(|| format!("cannot load {}", args.file.display()))?;
    let prog = loaded
        .program(&prog_name)
        .with_context(|| format!("{}: program {prog_name}", args.file.display()))?;
    for t in &tail_calls {
        loaded
            .set_tail_call(&t.map, t.index, &t.prog)
            .with_context(|| format!("--tail-call {}:{}={}", t.map, t.index, t.prog))?;
    }
    for u in &updates {
        loaded
            .update_map(&u.map, &u.key, &u.value)
            .with_context(|| u.origin.clone())?;
    }
    let engine = match args.engine {
        Engine::Interp => "interp",
        Engine::Jit => "jit",
    };
    let mut out = match &args.pcap {
        Some(path) => run_pcap(args, &spec_insns, &prog, path, prog_type, engine)?,
        None => run_once(args, &prog, prog_type)?,
    };
    let live = session.test_objects_live();
    if args.json {
        out["program"] = json!(prog_name);
        out["engine"] = json!(engine);
        out["verified"] = json!(!args.unverified);
        out["test_objects_live"] = json!(live);
        if args.dump_maps {
            out["maps"] = dump_maps(&obj, &loaded);
        }
        println!("{out}");
    } else {
        if live != 0 {
            println!("test objects live: {live}");
        }
        if args.dump_maps {
            print!("{}", maps_text(&dump_maps(&obj, &loaded)));
        }
    }
    Ok(())
}

/// One packet (`--data-in`), `--repeat` times; the last run's results.
fn run_once(args: &RunArgs, prog: &crate::engine::Prog, t: ProgType) -> Result<Value> {
    let data = match &args.data_in {
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => bail!("cordon run on an object needs --data-in FILE (the packet) or --pcap FILE"),
    };
    let ctx_in = match &args.ctx_in {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?),
        None => None,
    };
    let mut last = None;
    let mut total = Duration::ZERO;
    for _ in 0..args.repeat {
        let start = Instant::now();
        let r = prog.run(&data, ctx_in.as_deref());
        total += start.elapsed();
        last = Some(r.with_context(|| format!("{} failed", args.file.display()))?);
    }
    let r = last.expect("repeat >= 1");
    let duration_ns = (total.as_nanos() / u128::from(args.repeat)) as u64;
    if let Some(p) = &args.data_out {
        std::fs::write(p, &r.packet).with_context(|| format!("cannot write {}", p.display()))?;
    }
    if let Some(p) = &args.ctx_out {
        std::fs::write(p, &r.ctx_out).with_context(|| format!("cannot write {}", p.display()))?;
    }
    let name = retname::return_name(t, u64::from(r.retval));
    if !args.json {
        for line in &r.trace {
            eprintln!("trace: {line}");
        }
        println!("retval: {}", r.retval);
        if let Some(n) = name {
            println!("action: {n}");
        }
        if let Some(rd) = &r.redirect {
            println!("redirect: {}", crate::redirect::text(rd));
        }
        println!("duration: {duration_ns} ns");
    }
    Ok(json!({
        "retval": r.retval,
        "r0": r.r0,
        "action": name,
        "redirect": r.redirect.as_ref().map(crate::redirect::json),
        "duration_ns": duration_ns,
        "data_out_len": r.packet.len(),
        "tail_calls": r.tail_calls,
        "trace": r.trace,
    }))
}

/// Packets per timed batch (reading the capture is not timed).
const BATCH: usize = 1024;

/// Whether the program calls `bpf_trace_printk` (helper 6).
fn uses_trace_printk(insns: &[cordon_isa::Insn]) -> bool {
    insns
        .iter()
        .any(|i| i.code == 0x85 && i.src == 0 && i.imm == 6)
}

fn run_pcap(
    args: &RunArgs,
    spec_insns: &[cordon_isa::Insn],
    prog: &crate::engine::Prog,
    path: &Path,
    t: ProgType,
    engine: &str,
) -> Result<Value> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = PcapReader::new(std::io::BufReader::new(file))
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    // A progress bar for long captures, only on a terminal.
    let bar = (std::io::stderr().is_terminal() && size > 8 << 20).then(|| {
        let b = indicatif::ProgressBar::new(size);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} [{bar:40}] {percent}% {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    });
    let mut stats = PcapStats::default();
    // XDP programs without trace output take the allocation-free path.
    let xdp_fast = prog.is_xdp() && !uses_trace_printk(spec_insns);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut trace_lines = 0u64;
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut done = false;
    while !done {
        batch.clear();
        while batch.len() < BATCH {
            match reader
                .next_packet()
                .map_err(|e| anyhow!("{}: {e}", path.display()))?
            {
                Some(p) => batch.push(p.data),
                None => {
                    done = true;
                    break;
                }
            }
        }
        let first = stats.packets;
        let start = Instant::now();
        if xdp_fast {
            // XDP: the allocation-free path (no trace lines to collect).
            for (i, pkt) in batch.iter().enumerate() {
                let mut last = None;
                for _ in 0..args.repeat {
                    buf.clear();
                    buf.extend_from_slice(pkt);
                    last = Some(prog.run_xdp_in_place(&mut buf));
                }
                match last.expect("repeat >= 1") {
                    Ok(r0) => stats.record(r0),
                    Err(e) => stats.record_error(first + i as u64, &e),
                }
            }
        } else {
            for (i, pkt) in batch.iter().enumerate() {
                let mut last = None;
                for _ in 0..args.repeat {
                    last = Some(prog.run(pkt, None));
                }
                match last.expect("repeat >= 1") {
                    Ok(r) => {
                        stats.record(u64::from(r.retval));
                        trace_lines += r.trace.len() as u64;
                    }
                    Err(e) => stats.record_error(first + i as u64, &e),
                }
            }
        }
        stats.run_time += start.elapsed();
        stats.packets += batch.len() as u64;
        stats.runs += (batch.len() as u64) * u64::from(args.repeat);
        if let Some(b) = &bar {
            b.set_position(reader.position());
            b.set_message(format!("{} packets", stats.packets));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if !args.json {
        print!("{}", stats.text(t, engine));
        if trace_lines > 0 {
            println!("trace_printk lines: {trace_lines}");
        }
    }
    let mut v = stats.json(t, engine);
    v["trace_lines"] = json!(trace_lines);
    Ok(v)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every map's contents as JSON: hex keys/values, plus BTF-decoded
/// `formatted` keys/values when the object has BTF.
fn dump_maps(obj: &Object, loaded: &Loaded) -> Value {
    let mut out = serde_json::Map::new();
    for spec in &obj.maps {
        out.insert(spec.name.clone(), dump_map(obj, spec, loaded));
    }
    Value::Object(out)
}

fn dump_map(obj: &Object, spec: &MapSpec, loaded: &Loaded) -> Value {
    let fmt = |id: Option<u32>, bytes: &[u8]| -> Option<Value> {
        btfmt::format(obj.btf.as_ref()?, id?, bytes)
    };
    match loaded.dump_map(&spec.name) {
        Ok(crate::engine::Dump::Entries(entries)) => {
            let items: Vec<Value> = entries
                .iter()
                .map(|e| {
                    let mut item = json!({ "key": hex(&e.key) });
                    match &e.values {
                        crate::engine::Values::One(v) => item["value"] = json!(hex(v)),
                        crate::engine::Values::PerCpu(vs) => {
                            item["values"] = json!(vs.iter().map(|v| hex(v)).collect::<Vec<_>>())
                        }
                    }
                    if let Some(k) = fmt(spec.btf_key_type_id, &e.key) {
                        let mut f = json!({ "key": k });
                        match &e.values {
                            crate::engine::Values::One(v) => {
                                if let Some(v) = fmt(spec.btf_value_type_id, v) {
                                    f["value"] = v;
                                }
                            }
                            crate::engine::Values::PerCpu(vs) => {
                                let vals: Option<Vec<Value>> =
                                    vs.iter().map(|v| fmt(spec.btf_value_type_id, v)).collect();
                                if let Some(vals) = vals {
                                    f["values"] = json!(vals);
                                }
                            }
                        }
                        item["formatted"] = f;
                    }
                    item
                })
                .collect();
            json!({ "type": spec.type_name(), "entries": items })
        }
        Ok(crate::engine::Dump::NotIterable) => {
            json!({ "type": spec.type_name(), "entries": null, "note": "this map type has no keys to iterate" })
        }
        Err(e) => json!({ "type": spec.type_name(), "error": format!("{e:#}") }),
    }
}

/// The `--dump-maps` JSON as compact text: one line per entry, BTF-formatted
/// when possible (`KEY => VALUE`, per-CPU maps `KEY => [CPU0, CPU1, ...]`).
fn maps_text(maps: &Value) -> String {
    let mut s = String::new();
    let Some(maps) = maps.as_object() else {
        return s;
    };
    for (name, m) in maps {
        let ty = m["type"].as_str().unwrap_or("?");
        match (&m["entries"], &m["error"]) {
            (_, Value::String(e)) => s.push_str(&format!("map {name} ({ty}): error: {e}\n")),
            (Value::Array(entries), _) => {
                s.push_str(&format!("map {name} ({ty}): {} entries\n", entries.len()));
                for e in entries {
                    let f = &e["formatted"];
                    let key = if f["key"].is_null() {
                        &e["key"]
                    } else {
                        &f["key"]
                    };
                    let value = match (&f["value"], &f["values"], &e["value"], &e["values"]) {
                        (v, _, _, _) if !v.is_null() => v,
                        (_, v, _, _) if !v.is_null() => v,
                        (_, _, v, _) if !v.is_null() => v,
                        (_, _, _, v) => v,
                    };
                    s.push_str(&format!("  {key} => {value}\n"));
                }
            }
            _ => s.push_str(&format!("map {name} ({ty}): contents not iterable\n")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_call_specs() {
        assert_eq!(
            parse_tail_call("jump_table:2=tail_one").unwrap(),
            TailCall {
                map: "jump_table".into(),
                index: 2,
                prog: "tail_one".into()
            }
        );
        for bad in [
            "jump_table",
            "jump_table:2",
            ":2=x",
            "m:x=p",
            "m:2=",
            "m:-1=p",
        ] {
            assert!(parse_tail_call(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn compact_map_text() {
        let v = json!({
            "h": {"type": "hash", "entries": [
                {"key": "01", "value": "02", "formatted": {"key": 1, "value": {"a": 2}}},
                {"key": "03", "value": "04"}
            ]},
            "p": {"type": "percpu_array", "entries": [
                {"key": "00", "values": ["01", "02"], "formatted": {"key": 0, "values": [1, 2]}}
            ]},
            "q": {"type": "queue", "entries": null},
        });
        assert_eq!(
            maps_text(&v),
            "map h (hash): 2 entries\n  1 => {\"a\":2}\n  \"03\" => \"04\"\n\
             map p (percpu_array): 1 entries\n  0 => [1,2]\n\
             map q (queue): contents not iterable\n"
        );
    }
}
