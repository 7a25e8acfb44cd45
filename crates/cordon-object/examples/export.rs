//! Export what the loader produced, as line-oriented text, for
//! `tests/bpf/kernel_check.py` (which loads it into Linux with raw `bpf()`
//! calls and runs it with `BPF_PROG_TEST_RUN`).
//!
//! `cargo run -p cordon-object --example export -- file.o` (exit 1 with
//! `error: ...` on stderr for a file that cannot be read or parsed).
//!
//! Lines: `btf <hex of Btf::for_kernel().to_bytes()>`;
//! `map <name> <type> <key> <value> <max> <flags> <btf key> <btf value> <map_extra> <kernel btf 0/1> <initial data hex or ->`;
//! `inner <same fields without the name>`; `slot <map> <index> prog|map <name>`;
//! `kfunc <name>` (in index order); `prog <name> <kernel prog type> <insns hex>`;
//! `funcinfo <insn:type_id,...>`; `lineinfo <insn:file_off:line_off:line<<10|col,...>`.

use std::fmt::Write;

use cordon_object::{MapSpec, Object, SlotInit};

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn map_fields(m: &MapSpec) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {} {}",
        m.map_type,
        m.key_size,
        m.value_size,
        m.max_entries,
        m.flags,
        m.btf_key_type_id.unwrap_or(0),
        m.btf_value_type_id.unwrap_or(0),
        m.map_extra,
        m.kernel_btf_ids().is_some() as u8,
        m.initial_data
            .as_deref()
            .map_or_else(|| "-".to_string(), hex)
    )
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: export <file.o>");
        std::process::exit(2);
    };
    let obj = std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|bytes| Object::parse(&bytes).map_err(|e| e.to_string()));
    match obj {
        Ok(obj) => print!("{}", export(&obj)),
        Err(e) => {
            eprintln!("error: {path}: {e}");
            std::process::exit(1);
        }
    }
}

/// The whole export of one object (format in the module documentation).
fn export(obj: &Object) -> String {
    let mut s = String::new();
    if let Some(b) = &obj.btf {
        writeln!(s, "btf {}", hex(&b.for_kernel().to_bytes())).unwrap();
    }
    for m in &obj.maps {
        writeln!(s, "map {} {}", m.name, map_fields(m)).unwrap();
        if let Some(i) = &m.inner {
            writeln!(s, "inner {}", map_fields(i)).unwrap();
        }
        for (slot, init) in &m.initial_slots {
            let (k, n) = match init {
                SlotInit::Program(n) => ("prog", n),
                SlotInit::Map(n) => ("map", n),
            };
            writeln!(s, "slot {} {slot} {k} {n}", m.name).unwrap();
        }
    }
    for k in &obj.kfuncs {
        writeln!(s, "kfunc {k}").unwrap();
    }
    for p in &obj.programs {
        let code: Vec<u8> = p.insns.iter().flat_map(|i| i.to_bytes()).collect();
        writeln!(
            s,
            "prog {} {} {}",
            p.name,
            p.prog_type.kernel_id(),
            hex(&code)
        )
        .unwrap();
        let fi: Vec<String> = p
            .func_info
            .iter()
            .map(|f| format!("{}:{}", f.insn, f.type_id))
            .collect();
        writeln!(s, "funcinfo {}", fi.join(",")).unwrap();
        let li: Vec<String> = p
            .line_info
            .iter()
            .map(|l| {
                format!(
                    "{}:{}:{}:{}",
                    l.insn,
                    l.file_name_off,
                    l.line_off,
                    (l.line << 10) | l.column
                )
            })
            .collect();
        writeln!(s, "lineinfo {}", li.join(",")).unwrap();
    }
    s
}
