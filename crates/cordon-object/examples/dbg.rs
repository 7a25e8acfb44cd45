// temporary: export linked programs as simple text for a kernel cross-check
use std::fmt::Write;
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
fn map_line(m: &cordon_object::MapSpec) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {}",
        m.map_type,
        m.key_size,
        m.value_size,
        m.max_entries,
        m.flags,
        m.btf_key_type_id.unwrap_or(0),
        m.btf_value_type_id.unwrap_or(0),
        m.map_extra,
        m.initial_data.as_deref().map(hex).unwrap_or("-".into())
    )
}
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let o = cordon_object::Object::parse(&std::fs::read(&path).unwrap()).unwrap();
    let mut s = String::new();
    if let Some(b) = &o.btf {
        writeln!(s, "btf {}", hex(&b.for_kernel().to_bytes())).unwrap();
    }
    for m in &o.maps {
        writeln!(s, "map {} {}", m.name, map_line(m)).unwrap();
        if let Some(i) = &m.inner {
            writeln!(s, "inner {}", map_line(i)).unwrap();
        }
        for (slot, init) in &m.initial_slots {
            let (k, n) = match init {
                cordon_object::SlotInit::Program(n) => ("prog", n),
                cordon_object::SlotInit::Map(n) => ("map", n),
            };
            writeln!(s, "slot {} {} {} {}", m.name, slot, k, n).unwrap();
        }
    }
    for k in &o.kfuncs {
        writeln!(s, "kfunc {k}").unwrap();
    }
    for p in &o.programs {
        let bytes: Vec<u8> = p.insns.iter().flat_map(|i| i.to_bytes()).collect();
        writeln!(
            s,
            "prog {} {} {}",
            p.name,
            p.prog_type.kernel_id(),
            hex(&bytes)
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
    print!("{s}");
}
