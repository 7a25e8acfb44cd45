//! Human-readable report of an object (used by `cordon inspect`).

use std::fmt::{self, Display, Formatter};

use crate::{FuncLinkage, MapSpec, Object, ProgramSpec, RelocKind, SlotInit};

impl Display for Object {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "license: {}",
            self.license.as_deref().unwrap_or("(none)")
        )?;
        if let Some(v) = self.kernel_version {
            writeln!(f, "kernel version: {v:#x}")?;
        }
        match &self.btf {
            Some(b) => writeln!(f, "btf: {} types", b.len().saturating_sub(1))?,
            None => writeln!(f, "btf: (none)")?,
        }
        writeln!(f, "maps ({}):", self.maps.len())?;
        for (i, m) in self.maps.iter().enumerate() {
            write!(f, "  [{i}] ")?;
            write_map(f, m)?;
        }
        writeln!(f, "kfuncs ({}):", self.kfuncs.len())?;
        for (i, k) in self.kfuncs.iter().enumerate() {
            writeln!(f, "  [{i}] {k}")?;
        }
        writeln!(f, "programs ({}):", self.programs.len())?;
        for p in &self.programs {
            write_program(f, self, p)?;
        }
        Ok(())
    }
}

fn write_map(f: &mut Formatter<'_>, m: &MapSpec) -> fmt::Result {
    writeln!(
        f,
        "{} ({}, section {}): key {} value {} max_entries {} flags {:#x}",
        m.name,
        m.type_name(),
        m.section,
        m.key_size,
        m.value_size,
        m.max_entries,
        m.flags
    )?;
    if let Some(inner) = &m.inner {
        write!(f, "      inner: ")?;
        write_map(f, inner)?;
    }
    for (slot, init) in &m.initial_slots {
        match init {
            SlotInit::Program(p) => writeln!(f, "      [{slot}] = program {p}")?,
            SlotInit::Map(n) => writeln!(f, "      [{slot}] = map {n}")?,
        }
    }
    if let Some(d) = &m.initial_data {
        writeln!(f, "      initial data: {} bytes", d.len())?;
    }
    Ok(())
}

fn write_program(f: &mut Formatter<'_>, obj: &Object, p: &ProgramSpec) -> fmt::Result {
    writeln!(
        f,
        "  {} (section {}, type {}): {} instructions",
        p.name,
        p.section,
        p.prog_type,
        p.insns.len()
    )?;
    for (i, func) in p.functions.iter().enumerate() {
        let link = match func.linkage {
            FuncLinkage::Static => "static",
            FuncLinkage::Global => "global",
        };
        let cb = if p.exception_callback == Some(i) {
            ", exception callback"
        } else {
            ""
        };
        writeln!(
            f,
            "    func {} [{}..{}) {link} from {}{cb}",
            func.name,
            func.start,
            func.start + func.len,
            func.section
        )?;
    }
    if !p.kfuncs.is_empty() {
        writeln!(f, "    kfuncs: {}", p.kfuncs.join(", "))?;
    }
    for r in &p.relocations {
        let what = match &r.kind {
            RelocKind::Map { map } => format!("map {}", map_name(obj, *map)),
            RelocKind::MapValue { map, offset } => {
                format!("data {}+{offset}", map_name(obj, *map))
            }
            RelocKind::Kfunc { kfunc } => format!(
                "kfunc {}",
                obj.kfuncs.get(*kfunc).map_or("?", String::as_str)
            ),
            RelocKind::Call { target, function } => format!("call {function} at {target}"),
            RelocKind::FuncAddr { target, function } => {
                format!("address of {function} at {target}")
            }
        };
        write!(f, "    reloc {:>5}: {what}", r.insn)?;
        match p.line_at(r.insn) {
            Some(l) => writeln!(f, "  ({}:{})", l.file, l.line)?,
            None => writeln!(f)?,
        }
    }
    for c in &p.core_relocations {
        writeln!(
            f,
            "    co-re {:>5}: {} {} access {} = {}",
            c.insn,
            c.kind.name(),
            c.type_name,
            c.access,
            c.value
        )?;
    }
    if !p.line_info.is_empty() {
        writeln!(
            f,
            "    line info: {} records, func info: {} records",
            p.line_info.len(),
            p.func_info.len()
        )?;
    }
    Ok(())
}

fn map_name(obj: &Object, i: usize) -> &str {
    obj.maps.get(i).map_or("?", |m| m.name.as_str())
}
