//! Thin layer over the `object` crate: sections, symbols and REL entries as
//! plain values, validated once.

use std::collections::{BTreeMap, HashMap};

use object::LittleEndian as LE;
use object::read::elf::{ElfFile64, FileHeader as _, SectionHeader as _, Sym as _};
use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

use crate::ObjectError;

pub(crate) const EM_BPF: u16 = 247;
pub(crate) const SHT_NOBITS: u32 = 8;
pub(crate) const SHT_REL: u32 = 9;
pub(crate) const SHT_RELA: u32 = 4;
pub(crate) const SHT_PROGBITS: u32 = 1;
pub(crate) const SHF_EXECINSTR: u64 = 0x4;
pub(crate) const STT_SECTION: u8 = 3;
pub(crate) const STT_FUNC: u8 = 2;
pub(crate) const STB_LOCAL: u8 = 0;

/// R_BPF_NONE.
pub(crate) const R_BPF_NONE: u32 = 0;
/// R_BPF_64_64: 64-bit immediate of an `lddw`.
pub(crate) const R_BPF_64_64: u32 = 1;
/// R_BPF_64_ABS64: 64-bit data word (`.maps` initializers, debug info).
pub(crate) const R_BPF_64_ABS64: u32 = 2;
/// R_BPF_64_32: 32-bit immediate of a `call`.
pub(crate) const R_BPF_64_32: u32 = 10;

pub(crate) struct Section<'a> {
    pub index: usize,
    pub name: String,
    pub sh_type: u32,
    pub flags: u64,
    pub info: u32,
    pub size: u64,
    /// Contents (empty for SHT_NOBITS).
    pub data: &'a [u8],
}

impl Section<'_> {
    pub fn is_exec(&self) -> bool {
        self.sh_type == SHT_PROGBITS && self.flags & SHF_EXECINSTR != 0
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Symbol {
    pub index: usize,
    pub name: String,
    pub value: u64,
    pub size: u64,
    /// Defining section, `None` if undefined or absolute.
    pub section: Option<usize>,
    pub undefined: bool,
    pub st_type: u8,
    pub bind: u8,
}

impl Symbol {
    /// Name for messages (section symbols carry their section's name).
    pub fn display_name(&self, sections: &[Section<'_>]) -> String {
        if self.name.is_empty() {
            if let Some(s) = self
                .section
                .and_then(|i| sections.iter().find(|s| s.index == i))
            {
                return s.name.clone();
            }
            return format!("#{}", self.index);
        }
        self.name.clone()
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Rel {
    pub sym: usize,
    pub r_type: u32,
}

pub(crate) struct Elf<'a> {
    pub sections: Vec<Section<'a>>,
    /// Indexed by symbol index (0 is the null symbol).
    pub symbols: Vec<Symbol>,
    /// Relocations per target section index, keyed by byte offset.
    pub rels: BTreeMap<usize, BTreeMap<u64, Rel>>,
    /// Position in `sections` by section index.
    by_index: HashMap<usize, usize>,
    by_name: HashMap<String, usize>,
    /// Symbol indices defined in each section.
    syms_by_section: HashMap<usize, Vec<usize>>,
    /// First symbol with a given (section, name).
    sym_by_name: HashMap<(usize, String), usize>,
}

impl<'a> Elf<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Elf<'a>, ObjectError> {
        let file = ElfFile64::<LE>::parse(bytes).map_err(|e| ObjectError::Elf(e.to_string()))?;
        let machine = file.elf_header().e_machine(LE).0;
        if machine != EM_BPF {
            return Err(ObjectError::NotBpf(machine));
        }
        let mut sections = Vec::new();
        for s in file.sections() {
            let index = s.index().0;
            let name = s
                .name()
                .map_err(|e| ObjectError::Section {
                    section: format!("#{index}"),
                    problem: format!("bad name: {e}"),
                })?
                .to_string();
            let h = s.elf_section_header();
            let sh_type = h.sh_type(LE).0;
            let data = if sh_type == SHT_NOBITS {
                &[][..]
            } else {
                s.data().map_err(|e| ObjectError::Section {
                    section: name.clone(),
                    problem: format!("contents unreadable: {e}"),
                })?
            };
            sections.push(Section {
                index,
                name,
                sh_type,
                flags: h.sh_flags(LE).0,
                info: h.sh_info(LE),
                size: h.sh_size(LE),
                data,
            });
        }

        let count = file.elf_symbol_table().len();
        let mut symbols: Vec<Symbol> = (0..count)
            .map(|index| Symbol {
                index,
                name: String::new(),
                value: 0,
                size: 0,
                section: None,
                undefined: true,
                st_type: 0,
                bind: 0,
            })
            .collect();
        for sym in file.symbols() {
            let index = sym.index().0;
            let name = sym.name().map_err(|e| ObjectError::Symbol {
                index,
                problem: format!("bad name: {e}"),
            })?;
            let raw = sym.elf_symbol();
            let Some(slot) = symbols.get_mut(index) else {
                continue;
            };
            *slot = Symbol {
                index,
                name: name.to_string(),
                value: sym.address(),
                size: raw.st_size(LE),
                section: sym.section_index().map(|i| i.0),
                undefined: sym.is_undefined(),
                st_type: raw.st_type().0,
                bind: raw.st_bind().0,
            };
        }

        let mut by_index = HashMap::new();
        let mut by_name = HashMap::new();
        for (pos, s) in sections.iter().enumerate() {
            by_index.entry(s.index).or_insert(pos);
            by_name.entry(s.name.clone()).or_insert(pos);
        }
        let mut rels: BTreeMap<usize, BTreeMap<u64, Rel>> = BTreeMap::new();
        for s in &sections {
            if s.sh_type != SHT_REL && s.sh_type != SHT_RELA {
                continue;
            }
            let target = s.info as usize;
            let Some(tsec) = by_index.get(&target).map(|&p| &sections[p]) else {
                return Err(ObjectError::Section {
                    section: s.name.clone(),
                    problem: format!(
                        "relocations apply to section index {target}, which does not exist"
                    ),
                });
            };
            if !relevant_target(tsec) {
                continue; // debug info, BTF: nothing to link
            }
            if s.sh_type == SHT_RELA {
                return Err(ObjectError::Section {
                    section: s.name.clone(),
                    problem: "RELA relocations are not used by BPF objects (expected REL)".into(),
                });
            }
            if s.data.len() % 16 != 0 {
                return Err(ObjectError::Section {
                    section: s.name.clone(),
                    problem: format!("size {} is not a multiple of 16 (Elf64_Rel)", s.data.len()),
                });
            }
            let map = rels.entry(target).or_default();
            for (entry, chunk) in s.data.chunks_exact(16).enumerate() {
                let offset = u64::from_le_bytes(chunk[0..8].try_into().expect("8 bytes"));
                let info = u64::from_le_bytes(chunk[8..16].try_into().expect("8 bytes"));
                let sym = (info >> 32) as usize;
                let r_type = info as u32;
                if sym >= count {
                    return Err(ObjectError::RelocationSymbol {
                        section: s.name.clone(),
                        entry,
                        symbol: sym,
                        count,
                    });
                }
                if offset.checked_add(8).is_none_or(|e| e > tsec.size) {
                    return Err(ObjectError::RelocationOffset {
                        section: tsec.name.clone(),
                        offset,
                        problem: format!("outside the section ({} bytes)", tsec.size),
                    });
                }
                if r_type == R_BPF_NONE {
                    continue;
                }
                map.insert(offset, Rel { sym, r_type });
            }
        }
        let mut syms_by_section: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut sym_by_name = HashMap::new();
        for s in &symbols {
            if let Some(sec) = s.section {
                syms_by_section.entry(sec).or_default().push(s.index);
                if !s.name.is_empty() {
                    sym_by_name.entry((sec, s.name.clone())).or_insert(s.index);
                }
            }
        }
        Ok(Elf {
            sections,
            symbols,
            rels,
            by_index,
            by_name,
            syms_by_section,
            sym_by_name,
        })
    }

    pub fn section(&self, index: usize) -> Option<&Section<'a>> {
        self.by_index.get(&index).map(|&p| &self.sections[p])
    }

    pub fn section_by_name(&self, name: &str) -> Option<&Section<'a>> {
        self.by_name.get(name).map(|&p| &self.sections[p])
    }

    /// Symbols defined in section `index`.
    pub fn symbols_in(&self, index: usize) -> impl Iterator<Item = &Symbol> {
        self.syms_by_section
            .get(&index)
            .into_iter()
            .flatten()
            .map(|&i| &self.symbols[i])
    }

    /// The first symbol named `name` defined in section `index`.
    pub fn symbol_named(&self, index: usize, name: &str) -> Option<&Symbol> {
        self.sym_by_name
            .get(&(index, name.to_string()))
            .map(|&i| &self.symbols[i])
    }

    pub fn rel_at(&self, section: usize, offset: u64) -> Option<Rel> {
        self.rels.get(&section)?.get(&offset).copied()
    }
}

/// Sections whose relocations matter to loading (code, maps, data).
fn relevant_target(s: &Section<'_>) -> bool {
    s.is_exec() || s.name == ".maps" || s.name == "maps" || s.name.starts_with("maps/")
}

/// Global-data section names handled as single-element array maps.
pub(crate) fn is_data_section(name: &str) -> bool {
    let base = |b: &str| name == b || name.starts_with(&format!("{b}."));
    base(".data") || base(".rodata") || base(".bss")
}
