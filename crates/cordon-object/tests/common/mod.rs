//! Helpers shared by the integration tests: locating the committed objects and
//! patching raw ELF bytes (sections, symbols, relocations) to build malformed inputs.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn bpf_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/bpf"))
}

pub fn read_obj(name: &str) -> Vec<u8> {
    let p = bpf_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Names of every committed object file, sorted.
pub fn all_objects() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(bpf_dir())
        .expect("tests/bpf exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".o"))
        .collect();
    v.sort();
    v
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

#[derive(Clone, Copy, Debug)]
pub struct Shdr {
    /// Offset of the section header itself.
    pub hdr: usize,
    pub index: usize,
    pub name_off: usize,
    pub sh_type: u32,
    pub offset: usize,
    pub size: usize,
    pub info: u32,
}

pub fn sections(b: &[u8]) -> Vec<(String, Shdr)> {
    let shoff = u64_at(b, 0x28) as usize;
    let shentsize = u16_at(b, 0x3a) as usize;
    let shnum = u16_at(b, 0x3c) as usize;
    let shstrndx = u16_at(b, 0x3e) as usize;
    let hdr = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(b, hdr(shstrndx) + 24) as usize;
    (0..shnum)
        .map(|i| {
            let h = hdr(i);
            let name_off = strtab + u32_at(b, h) as usize;
            let end = b[name_off..].iter().position(|&c| c == 0).unwrap();
            let name = String::from_utf8_lossy(&b[name_off..name_off + end]).into_owned();
            (
                name,
                Shdr {
                    hdr: h,
                    index: i,
                    name_off,
                    sh_type: u32_at(b, h + 4),
                    offset: u64_at(b, h + 24) as usize,
                    size: u64_at(b, h + 32) as usize,
                    info: u32_at(b, h + 44),
                },
            )
        })
        .collect()
}

pub fn section(b: &[u8], name: &str) -> Shdr {
    sections(b)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no section {name}"))
        .1
}

/// The REL section applying to section `name`.
pub fn rel_for(b: &[u8], name: &str) -> Shdr {
    let target = section(b, name).index as u32;
    sections(b)
        .into_iter()
        .find(|(_, s)| s.sh_type == 9 && s.info == target)
        .unwrap_or_else(|| panic!("no relocations for {name}"))
        .1
}

/// Byte offset (in the file) of symbol `name`'s Elf64_Sym entry.
pub fn symbol(b: &[u8], name: &str) -> usize {
    let symtab = section(b, ".symtab");
    let strtab = section(b, ".strtab");
    for i in 0..symtab.size / 24 {
        let e = symtab.offset + i * 24;
        let n = strtab.offset + u32_at(b, e) as usize;
        let end = b[n..].iter().position(|&c| c == 0).unwrap();
        if &b[n..n + end] == name.as_bytes() {
            return e;
        }
    }
    panic!("no symbol {name}");
}

pub fn put_u16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}
pub fn get_u64(b: &[u8], o: usize) -> u64 {
    u64_at(b, o)
}
pub fn get_u32(b: &[u8], o: usize) -> u32 {
    u32_at(b, o)
}
