//! Map definitions: BTF-defined (`.maps`), legacy (`maps`, `struct bpf_map_def`)
//! and global data sections (`.data`, `.rodata*`, `.bss`, ...).

use crate::ObjectError;
use crate::btf::{Btf, BtfType};
use crate::elf::{Elf, R_BPF_64_ABS64, STT_SECTION, is_data_section};

/// Linux map type numbers (`enum bpf_map_type`) with their names.
pub const MAP_TYPES: &[(u32, &str)] = &[
    (1, "hash"),
    (2, "array"),
    (3, "prog_array"),
    (4, "perf_event_array"),
    (5, "percpu_hash"),
    (6, "percpu_array"),
    (7, "stack_trace"),
    (8, "cgroup_array"),
    (9, "lru_hash"),
    (10, "lru_percpu_hash"),
    (11, "lpm_trie"),
    (12, "array_of_maps"),
    (13, "hash_of_maps"),
    (14, "devmap"),
    (15, "sockmap"),
    (16, "cpumap"),
    (17, "xskmap"),
    (18, "sockhash"),
    (19, "cgroup_storage"),
    (20, "reuseport_sockarray"),
    (21, "percpu_cgroup_storage"),
    (22, "queue"),
    (23, "stack"),
    (24, "sk_storage"),
    (25, "devmap_hash"),
    (26, "struct_ops"),
    (27, "ringbuf"),
    (28, "inode_storage"),
    (29, "task_storage"),
    (30, "bloom_filter"),
    (31, "user_ringbuf"),
    (32, "cgrp_storage"),
    (33, "arena"),
];

pub const MAP_TYPE_ARRAY: u32 = 2;
pub const MAP_TYPE_PROG_ARRAY: u32 = 3;
pub const MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
pub const MAP_TYPE_HASH_OF_MAPS: u32 = 13;

/// `BPF_F_RDONLY_PROG`: programs may not write the map.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// Name of a map type number, if Linux knows it.
pub fn map_type_name(t: u32) -> Option<&'static str> {
    MAP_TYPES.iter().find(|(n, _)| *n == t).map(|(_, s)| *s)
}

/// Where a map definition came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapOrigin {
    /// BTF-defined map in `.maps`.
    Btf,
    /// `struct bpf_map_def` in a `maps` section.
    Legacy,
    /// A global data section (`.data`, `.rodata`, `.bss`, ...): one-element array.
    GlobalData,
    /// The inner map prototype of a map-of-maps.
    Inner,
}

/// A statically initialized slot of a prog_array or map-of-maps (`.values = { [i] = &x }`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotInit {
    /// Name of a program of this object.
    Program(String),
    /// Name of a map of this object.
    Map(String),
}

/// A map the object declares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    pub name: String,
    /// ELF section of the definition (`.maps`, `maps`, `.rodata`, ...).
    pub section: String,
    pub origin: MapOrigin,
    /// `enum bpf_map_type` number (see [`map_type_name`]).
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    /// As declared; 0 for a `perf_event_array` means "one per CPU" to libbpf.
    pub max_entries: u32,
    pub flags: u32,
    pub numa_node: u32,
    pub map_extra: u64,
    /// Inner map prototype of `array_of_maps` / `hash_of_maps`.
    pub inner: Option<Box<MapSpec>>,
    /// Initial value of a global-data map (`.bss`: zeros).
    pub initial_data: Option<Vec<u8>>,
    /// Statically filled slots: `(index, what)`.
    pub initial_slots: Vec<(u32, SlotInit)>,
    pub btf_key_type_id: Option<u32>,
    pub btf_value_type_id: Option<u32>,
}

impl MapSpec {
    pub fn type_name(&self) -> &'static str {
        map_type_name(self.map_type).unwrap_or("unknown")
    }

    /// `(btf_key_type_id, btf_value_type_id)` to pass to the kernel's
    /// `BPF_MAP_CREATE`, or `None` to create the map without BTF. Linux
    /// rejects BTF for fd-holding maps, queue/stack and a few others (libbpf
    /// drops it for the same list); keyless global-data maps pass `(0, datasec)`.
    pub fn kernel_btf_ids(&self) -> Option<(u32, u32)> {
        const NO_BTF: &[u32] = &[3, 4, 7, 8, 12, 13, 14, 15, 16, 17, 18, 22, 23, 25];
        if NO_BTF.contains(&self.map_type) {
            return None;
        }
        let value = self.btf_value_type_id?;
        Some((self.btf_key_type_id.unwrap_or(0), value))
    }
}

/// Location of a map definition inside its ELF section (for relocations).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MapLoc {
    pub section: usize,
    pub offset: u64,
    pub size: u64,
}

/// Read every map definition. Returns the maps and where each lives.
pub(crate) fn collect(
    elf: &Elf<'_>,
    btf: Option<&Btf>,
) -> Result<(Vec<MapSpec>, Vec<MapLoc>), ObjectError> {
    let mut maps = Vec::new();
    let mut locs = Vec::new();
    if let Some(sec) = elf.section_by_name(".maps") {
        let btf = btf.ok_or(ObjectError::MapsWithoutBtf)?;
        btf_maps(elf, btf, sec.index, &mut maps, &mut locs)?;
    }
    for sec in &elf.sections {
        if sec.name == "maps" || sec.name.starts_with("maps/") {
            legacy_maps(elf, sec.index, &mut maps, &mut locs)?;
        }
    }
    for sec in &elf.sections {
        if !is_data_section(&sec.name) || sec.size == 0 || sec.is_exec() {
            continue;
        }
        let size = u32::try_from(sec.size).map_err(|_| ObjectError::Section {
            section: sec.name.clone(),
            problem: format!("size {} is too large for a map value", sec.size),
        })?;
        let data = if sec.sh_type == crate::elf::SHT_NOBITS {
            vec![0; size as usize]
        } else {
            sec.data.to_vec()
        };
        let readonly = sec.name == ".rodata" || sec.name.starts_with(".rodata.");
        maps.push(MapSpec {
            name: sec.name.clone(),
            section: sec.name.clone(),
            origin: MapOrigin::GlobalData,
            map_type: MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: size,
            max_entries: 1,
            flags: BPF_F_MMAPABLE | if readonly { BPF_F_RDONLY_PROG } else { 0 },
            numa_node: 0,
            map_extra: 0,
            inner: None,
            initial_data: Some(data),
            initial_slots: Vec::new(),
            btf_key_type_id: None,
            btf_value_type_id: btf.and_then(|b| b.find_by_name(&sec.name, "datasec")),
        });
        locs.push(MapLoc {
            section: sec.index,
            offset: 0,
            size: sec.size,
        });
    }
    Ok((maps, locs))
}

fn legacy_maps(
    elf: &Elf<'_>,
    sec_index: usize,
    maps: &mut Vec<MapSpec>,
    locs: &mut Vec<MapLoc>,
) -> Result<(), ObjectError> {
    let sec = elf.section(sec_index).expect("section exists");
    let mut syms: Vec<_> = elf
        .symbols_in(sec_index)
        .filter(|s| s.st_type != STT_SECTION && !s.name.is_empty())
        .collect();
    syms.sort_by_key(|s| s.value);
    if syms.is_empty() {
        return Ok(());
    }
    // Older compilers leave st_size at 0: all definitions then share the section evenly.
    let even = sec.size / syms.len() as u64;
    for s in syms {
        let size = if s.size == 0 { even } else { s.size };
        let def = s
            .value
            .checked_add(size)
            .filter(|&e| e <= sec.data.len() as u64)
            .map(|e| &sec.data[s.value as usize..e as usize])
            .ok_or_else(|| ObjectError::MapDefinition {
                map: s.name.clone(),
                problem: format!(
                    "definition at offset {} (size {size}) is outside section {} ({} bytes)",
                    s.value,
                    sec.name,
                    sec.data.len()
                ),
            })?;
        if def.len() < 16 {
            return Err(ObjectError::MapDefinition {
                map: s.name.clone(),
                problem: format!(
                    "legacy definition is {} bytes, struct bpf_map_def needs at least 16",
                    def.len()
                ),
            });
        }
        let word = |i: usize| {
            def.get(i * 4..i * 4 + 4)
                .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        if def.len() > 20 && def[20..].iter().any(|&b| b != 0) {
            return Err(ObjectError::MapDefinition {
                map: s.name.clone(),
                problem:
                    "legacy definition has non-zero fields after map_flags (unsupported extension)"
                        .into(),
            });
        }
        let spec = MapSpec {
            name: s.name.clone(),
            section: sec.name.clone(),
            origin: MapOrigin::Legacy,
            map_type: word(0),
            key_size: word(1),
            value_size: word(2),
            max_entries: word(3),
            flags: word(4),
            numa_node: 0,
            map_extra: 0,
            inner: None,
            initial_data: None,
            initial_slots: Vec::new(),
            btf_key_type_id: None,
            btf_value_type_id: None,
        };
        check_type(&spec)?;
        maps.push(spec);
        locs.push(MapLoc {
            section: sec_index,
            offset: s.value,
            size,
        });
    }
    Ok(())
}

fn check_type(spec: &MapSpec) -> Result<(), ObjectError> {
    if map_type_name(spec.map_type).is_none() {
        return Err(ObjectError::UnknownMapType {
            map: spec.name.clone(),
            map_type: spec.map_type,
        });
    }
    Ok(())
}

fn btf_maps(
    elf: &Elf<'_>,
    btf: &Btf,
    sec_index: usize,
    maps: &mut Vec<MapSpec>,
    locs: &mut Vec<MapLoc>,
) -> Result<(), ObjectError> {
    let sec = elf.section(sec_index).expect("section exists");
    let Some(ds_id) = btf.find_by_name(".maps", "datasec") else {
        return Err(ObjectError::Section {
            section: ".maps".into(),
            problem: "BTF has no DATASEC .maps describing the map definitions".into(),
        });
    };
    let Some(BtfType::DataSec { vars, .. }) = btf.type_by_id(ds_id) else {
        unreachable!("find_by_name returned a datasec");
    };
    for v in vars {
        let Some(BtfType::Var { name, type_id, .. }) = btf.type_by_id(v.type_id) else {
            return Err(ObjectError::Section {
                section: ".maps".into(),
                problem: format!("DATASEC entry [{}] is not a VAR", v.type_id),
            });
        };
        let sym = elf
            .symbol_named(sec_index, name)
            .ok_or_else(|| ObjectError::MapDefinition {
                map: name.clone(),
                problem: "no ELF symbol in .maps for this BTF variable".into(),
            })?;
        let def_size = btf
            .size_of(*type_id)
            .map_err(|e| ObjectError::MapDefinition {
                map: name.clone(),
                problem: format!("definition type: {e}"),
            })?;
        let mut spec = parse_btf_def(btf, name, *type_id, 0)?;
        spec.section = sec.name.clone();
        spec.origin = MapOrigin::Btf;
        // `.values = { [i] = &x }`: ABS64 relocations inside the definition.
        if let Some(values) = btf.member(*type_id, "values") {
            let base = sym.value.checked_add((values.bit_offset / 8) as u64);
            // A flexible `values[]` initializer extends past the struct size.
            let end = sym.value.checked_add(def_size.max(sym.size));
            let (base, end) = match (base, end) {
                (Some(b), Some(e)) if b <= e => (b, e),
                _ => {
                    return Err(ObjectError::MapDefinition {
                        map: name.clone(),
                        problem: format!(
                            "values[] at bit offset {} lies outside the definition at {} (size {})",
                            values.bit_offset, sym.value, def_size
                        ),
                    });
                }
            };
            if let Some(rels) = elf.rels.get(&sec_index) {
                for (&off, rel) in rels.range(base..end) {
                    if rel.r_type != R_BPF_64_ABS64 {
                        return Err(ObjectError::MapDefinition {
                            map: name.clone(),
                            problem: format!(
                                "relocation type {} at .maps offset {off}, expected R_BPF_64_ABS64",
                                rel.r_type
                            ),
                        });
                    }
                    if !(off - base).is_multiple_of(8) {
                        return Err(ObjectError::MapDefinition {
                            map: name.clone(),
                            problem: format!(
                                "misaligned values[] relocation at .maps offset {off}"
                            ),
                        });
                    }
                    let slot = ((off - base) / 8) as u32;
                    let target = &elf.symbols[rel.sym];
                    let init = match target.section.and_then(|i| elf.section(i)) {
                        Some(s) if s.is_exec() => SlotInit::Program(target.name.clone()),
                        Some(s) if s.index == sec_index => SlotInit::Map(target.name.clone()),
                        _ => {
                            return Err(ObjectError::MapDefinition {
                                map: name.clone(),
                                problem: format!(
                                    "values[{slot}] points at symbol {}, which is neither a program nor a map",
                                    target.display_name(&elf.sections)
                                ),
                            });
                        }
                    };
                    match (spec.map_type, &init) {
                        (MAP_TYPE_PROG_ARRAY, SlotInit::Program(_))
                        | (MAP_TYPE_ARRAY_OF_MAPS | MAP_TYPE_HASH_OF_MAPS, SlotInit::Map(_)) => {}
                        _ => {
                            return Err(ObjectError::MapDefinition {
                                map: name.clone(),
                                problem: format!(
                                    "values[{slot}] = {init:?} does not fit a {} map",
                                    spec.type_name()
                                ),
                            });
                        }
                    }
                    if slot >= spec.max_entries {
                        return Err(ObjectError::MapDefinition {
                            map: name.clone(),
                            problem: format!(
                                "values[{slot}] is beyond max_entries {}",
                                spec.max_entries
                            ),
                        });
                    }
                    spec.initial_slots.push((slot, init));
                }
            }
        }
        maps.push(spec);
        locs.push(MapLoc {
            section: sec_index,
            offset: sym.value,
            size: def_size,
        });
    }
    Ok(())
}

/// Decode a BTF map definition struct (`__uint`, `__type`, `__array` members).
fn parse_btf_def(btf: &Btf, name: &str, type_id: u32, depth: u32) -> Result<MapSpec, ObjectError> {
    let err = |problem: String| ObjectError::MapDefinition {
        map: name.to_string(),
        problem,
    };
    let members = btf.members(type_id).ok_or_else(|| {
        err(format!(
            "definition type {} is not a struct",
            btf.type_name(type_id)
        ))
    })?;
    let mut spec = MapSpec {
        name: name.to_string(),
        section: ".maps".into(),
        origin: MapOrigin::Inner,
        map_type: 0,
        key_size: 0,
        value_size: 0,
        max_entries: 0,
        flags: 0,
        numa_node: 0,
        map_extra: 0,
        inner: None,
        initial_data: None,
        initial_slots: Vec::new(),
        btf_key_type_id: None,
        btf_value_type_id: None,
    };
    let mut key_size = None;
    let mut value_size = None;
    for m in members {
        let mname = m.name.as_deref().unwrap_or("");
        // __uint(name, val) is `int (*name)[val]`; __ulong(name, val) is
        // `enum { __unique_value = val } *name` (libbpf >= 1.2).
        let ulong = || -> Result<u64, ObjectError> {
            let p = btf
                .skip_mods_and_typedefs(m.type_id)
                .map_err(|e| err(format!("{mname}: {e}")))?;
            let Some(BtfType::Ptr { type_id }) = btf.type_by_id(p) else {
                return Err(err(format!("{mname} is not __uint(): not a pointer")));
            };
            match btf.type_by_id(*type_id) {
                Some(BtfType::Array { nelems, .. }) => Ok(*nelems as u64),
                Some(BtfType::Enum { values, .. } | BtfType::Enum64 { values, .. })
                    if values.len() == 1 =>
                {
                    Ok(values[0].value as u64)
                }
                _ => Err(err(format!(
                    "{mname} is neither __uint() nor __ulong(): pointer to {}",
                    btf.type_name(*type_id)
                ))),
            }
        };
        let uint = || -> Result<u32, ObjectError> {
            let v = ulong()?;
            u32::try_from(v).map_err(|_| err(format!("{mname} value {v} does not fit 32 bits")))
        };
        // __type(name, T) is `T *name`.
        let pointee = || -> Result<u32, ObjectError> {
            let p = btf
                .skip_mods_and_typedefs(m.type_id)
                .map_err(|e| err(format!("{mname}: {e}")))?;
            match btf.type_by_id(p) {
                Some(BtfType::Ptr { type_id }) => Ok(*type_id),
                _ => Err(err(format!("{mname} is not __type(): not a pointer"))),
            }
        };
        match mname {
            "type" => spec.map_type = uint()?,
            "max_entries" => spec.max_entries = uint()?,
            "map_flags" => spec.flags = uint()?,
            "numa_node" => spec.numa_node = uint()?,
            "map_extra" => spec.map_extra = ulong()?,
            "pinning" => {
                uint()?; // pinning is a loader concern: ignored
            }
            "key_size" => key_size = Some(uint()?),
            "value_size" => value_size = Some(uint()?),
            "key" => {
                let t = pointee()?;
                let sz = btf.size_of(t).map_err(|e| err(format!("key type: {e}")))?;
                spec.key_size =
                    u32::try_from(sz).map_err(|_| err(format!("key size {sz} too large")))?;
                spec.btf_key_type_id = Some(t);
            }
            "value" => {
                let t = pointee()?;
                let sz = btf
                    .size_of(t)
                    .map_err(|e| err(format!("value type: {e}")))?;
                spec.value_size =
                    u32::try_from(sz).map_err(|_| err(format!("value size {sz} too large")))?;
                spec.btf_value_type_id = Some(t);
            }
            "values" => {
                // __array(values, T) is `T *values[]`.
                let a = btf
                    .skip_mods_and_typedefs(m.type_id)
                    .map_err(|e| err(format!("values: {e}")))?;
                let Some(BtfType::Array { elem_type, .. }) = btf.type_by_id(a) else {
                    return Err(err("values is not __array(): not an array".into()));
                };
                let p = btf
                    .skip_mods_and_typedefs(*elem_type)
                    .map_err(|e| err(format!("values: {e}")))?;
                let Some(BtfType::Ptr { type_id: inner_t }) = btf.type_by_id(p) else {
                    return Err(err(
                        "values is not __array(): element is not a pointer".into()
                    ));
                };
                let inner_t = btf
                    .skip_mods_and_typedefs(*inner_t)
                    .map_err(|e| err(format!("values: {e}")))?;
                if let Some(BtfType::Struct { .. }) = btf.type_by_id(inner_t) {
                    if depth > 0 {
                        return Err(err(
                            "nested map-of-maps definitions are not supported".into()
                        ));
                    }
                    let inner = parse_btf_def(btf, &format!("{name}.inner"), inner_t, depth + 1)?;
                    spec.inner = Some(Box::new(inner));
                }
                // A function prototype element: prog_array slots. Nothing to record.
            }
            other => return Err(err(format!("unknown map definition field `{other}`"))),
        }
    }
    if let Some(ks) = key_size {
        if spec.btf_key_type_id.is_some() && ks != spec.key_size {
            return Err(err(format!(
                "key_size {ks} conflicts with the key type size {}",
                spec.key_size
            )));
        }
        spec.key_size = ks;
    }
    if let Some(vs) = value_size {
        if spec.btf_value_type_id.is_some() && vs != spec.value_size {
            return Err(err(format!(
                "value_size {vs} conflicts with the value type size {}",
                spec.value_size
            )));
        }
        spec.value_size = vs;
    }
    check_type(&spec)?;
    let of_maps = matches!(
        spec.map_type,
        MAP_TYPE_ARRAY_OF_MAPS | MAP_TYPE_HASH_OF_MAPS
    );
    if of_maps {
        if spec.inner.is_none() {
            return Err(err(format!(
                "{} needs an inner map definition (__array(values, ...))",
                spec.type_name()
            )));
        }
        if spec.value_size == 0 {
            spec.value_size = 4; // map fd / id
        }
    } else if spec.inner.is_some() {
        return Err(err(format!(
            "__array(values, struct ...) is only valid for map-of-maps, not {}",
            spec.type_name()
        )));
    }
    if spec.map_type == MAP_TYPE_PROG_ARRAY && spec.value_size == 0 {
        spec.value_size = 4;
    }
    Ok(spec)
}
