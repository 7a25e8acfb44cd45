//! BTF encoding, and the kernel sanitization libbpf applies before
//! `BPF_BTF_LOAD` (so the kernel can load an object's BTF unchanged otherwise).

use std::collections::HashMap;

use super::{Btf, BtfType, IntEncoding, Linkage, Member, Param, VarSecInfo};

/// String table builder that keeps the original table as a prefix, so every
/// offset of the object (BTF.ext file names, line text) stays valid.
struct Strings {
    bytes: Vec<u8>,
    index: HashMap<String, u32>,
}

impl Strings {
    fn new(original: &[u8]) -> Strings {
        let mut index = HashMap::new();
        let mut start = 0;
        for (i, &b) in original.iter().enumerate() {
            if b == 0 {
                if let Ok(s) = std::str::from_utf8(&original[start..i]) {
                    index.entry(s.to_string()).or_insert(start as u32);
                }
                start = i + 1;
            }
        }
        let mut bytes = original.to_vec();
        if bytes.is_empty() {
            bytes.push(0);
            index.insert(String::new(), 0);
        }
        Strings { bytes, index }
    }

    fn off(&mut self, s: Option<&str>) -> u32 {
        let s = s.unwrap_or("");
        if let Some(&o) = self.index.get(s) {
            return o;
        }
        let o = self.bytes.len() as u32;
        self.bytes.extend_from_slice(s.as_bytes());
        self.bytes.push(0);
        self.index.insert(s.to_string(), o);
        o
    }
}

fn info(kind: u32, vlen: usize, kflag: bool) -> u32 {
    (kind << 24) | (vlen as u32 & 0xffff) | if kflag { 1 << 31 } else { 0 }
}

fn linkage_raw(l: Linkage) -> u32 {
    match l {
        Linkage::Static => 0,
        Linkage::Global => 1,
        Linkage::Extern => 2,
        Linkage::Other(v) => v,
    }
}

fn members(out: &mut Vec<u32>, strs: &mut Strings, ms: &[Member]) -> bool {
    let kflag = ms.iter().any(|m| m.bitfield_size != 0);
    for m in ms {
        out.push(strs.off(m.name.as_deref()));
        out.push(m.type_id);
        out.push(if kflag {
            (m.bitfield_size << 24) | (m.bit_offset & 0x00ff_ffff)
        } else {
            m.bit_offset
        });
    }
    kflag
}

impl Btf {
    /// Offset of `s` in the string table (e.g. to build kernel `bpf_line_info`).
    pub fn string_offset(&self, s: &str) -> Option<u32> {
        let mut start = 0;
        for (i, &b) in self.strings.iter().enumerate() {
            if b == 0 {
                if &self.strings[start..i] == s.as_bytes() {
                    return Some(start as u32);
                }
                start = i + 1;
            }
        }
        None
    }

    /// Encode as a `.BTF` blob. The original string table is kept as a prefix,
    /// so string offsets from the object's `.BTF.ext` remain valid.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut strs = Strings::new(&self.strings);
        let mut words: Vec<u32> = Vec::new();
        for t in self.types.iter().skip(1) {
            let Some(t) = t else { continue };
            let start = words.len();
            words.extend([0, 0, 0]);
            let (name, kind, vlen, kflag, size_or_type): (Option<&str>, u32, usize, bool, u32) =
                match t {
                    BtfType::Int {
                        name,
                        size,
                        encoding: IntEncoding { signed, char, bool },
                        bit_offset,
                        bits,
                    } => {
                        let enc = (*signed as u32) | (*char as u32) << 1 | (*bool as u32) << 2;
                        words.push((enc << 24) | ((*bit_offset as u32) << 16) | *bits as u32);
                        (Some(name), 1, 0, false, *size)
                    }
                    BtfType::Ptr { type_id } => (None, 2, 0, false, *type_id),
                    BtfType::Array {
                        elem_type,
                        index_type,
                        nelems,
                    } => {
                        words.extend([*elem_type, *index_type, *nelems]);
                        (None, 3, 0, false, 0)
                    }
                    BtfType::Struct {
                        name,
                        size,
                        members: ms,
                    } => {
                        let kf = members(&mut words, &mut strs, ms);
                        (name.as_deref(), 4, ms.len(), kf, *size)
                    }
                    BtfType::Union {
                        name,
                        size,
                        members: ms,
                    } => {
                        let kf = members(&mut words, &mut strs, ms);
                        (name.as_deref(), 5, ms.len(), kf, *size)
                    }
                    BtfType::Enum {
                        name,
                        size,
                        signed,
                        values,
                    } => {
                        for v in values {
                            words.push(strs.off(Some(&v.name)));
                            words.push(v.value as u32);
                        }
                        (name.as_deref(), 6, values.len(), *signed, *size)
                    }
                    BtfType::Fwd { name, is_union } => (Some(name), 7, 0, *is_union, 0),
                    BtfType::Typedef { name, type_id } => (Some(name), 8, 0, false, *type_id),
                    BtfType::Volatile { type_id } => (None, 9, 0, false, *type_id),
                    BtfType::Const { type_id } => (None, 10, 0, false, *type_id),
                    BtfType::Restrict { type_id } => (None, 11, 0, false, *type_id),
                    BtfType::Func {
                        name,
                        proto,
                        linkage,
                    } => (
                        Some(name),
                        12,
                        linkage_raw(*linkage) as usize,
                        false,
                        *proto,
                    ),
                    BtfType::FuncProto { ret, params } => {
                        for p in params {
                            words.push(strs.off(p.name.as_deref()));
                            words.push(p.type_id);
                        }
                        (None, 13, params.len(), false, *ret)
                    }
                    BtfType::Var {
                        name,
                        type_id,
                        linkage,
                    } => {
                        words.push(linkage_raw(*linkage));
                        (Some(name), 14, 0, false, *type_id)
                    }
                    BtfType::DataSec { name, size, vars } => {
                        for v in vars {
                            words.extend([v.type_id, v.offset, v.size]);
                        }
                        (Some(name), 15, vars.len(), false, *size)
                    }
                    BtfType::Float { name, size } => (Some(name), 16, 0, false, *size),
                    BtfType::DeclTag {
                        name,
                        type_id,
                        component_idx,
                    } => {
                        words.push(*component_idx as u32);
                        (Some(name), 17, 0, false, *type_id)
                    }
                    BtfType::TypeTag { name, type_id } => (Some(name), 18, 0, false, *type_id),
                    BtfType::Enum64 {
                        name,
                        size,
                        signed,
                        values,
                    } => {
                        for v in values {
                            words.push(strs.off(Some(&v.name)));
                            words.push(v.value as u64 as u32);
                            words.push((v.value as u64 >> 32) as u32);
                        }
                        (name.as_deref(), 19, values.len(), *signed, *size)
                    }
                };
            words[start] = strs.off(name);
            words[start + 1] = info(kind, vlen, kflag);
            words[start + 2] = size_or_type;
        }
        let type_len = words.len() * 4;
        let mut out = Vec::with_capacity(24 + type_len + strs.bytes.len());
        out.extend_from_slice(&super::parse::BTF_MAGIC.to_le_bytes());
        out.push(1);
        out.push(0);
        for v in [
            24u32,
            0,
            type_len as u32,
            type_len as u32,
            strs.bytes.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for w in words {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&strs.bytes);
        out
    }

    /// A copy the kernel accepts, sanitized like libbpf does before loading:
    /// `extern` functions become global with named parameters, and the
    /// `__ksym` / `__kconfig` entries of their DATASECs become 4-byte global
    /// variables of type `int`. Type ids of existing types are unchanged.
    pub fn for_kernel(&self) -> Btf {
        let mut types = self.types.clone();
        // An `int` for the placeholder variables.
        let int_id = match types.iter().position(|t| {
            matches!(t, Some(BtfType::Int { size: 4, encoding, bits: 32, .. }) if encoding.signed)
        }) {
            Some(i) => i as u32,
            None => {
                types.push(Some(BtfType::Int {
                    name: "int".into(),
                    size: 4,
                    encoding: IntEncoding {
                        signed: true,
                        char: false,
                        bool: false,
                    },
                    bit_offset: 0,
                    bits: 32,
                }));
                (types.len() - 1) as u32
            }
        };
        let mut dummy: Option<u32> = None;
        let mut protos_to_name = Vec::new();
        for t in types.iter_mut() {
            match t {
                Some(BtfType::Func { linkage, proto, .. }) if *linkage == Linkage::Extern => {
                    *linkage = Linkage::Global;
                    protos_to_name.push(*proto);
                }
                Some(BtfType::Var {
                    linkage, type_id, ..
                }) if *linkage == Linkage::Extern => {
                    *linkage = Linkage::Global;
                    *type_id = int_id;
                }
                _ => {}
            }
        }
        for p in protos_to_name {
            if let Some(Some(BtfType::FuncProto { params, .. })) = types.get_mut(p as usize) {
                for (k, Param { name, type_id }) in params.iter_mut().enumerate() {
                    if name.is_none() && *type_id != 0 {
                        *name = Some(format!("arg{k}"));
                    }
                }
            }
        }
        for i in 0..types.len() {
            let is_extern_sec = matches!(
                &types[i],
                Some(BtfType::DataSec { name, .. }) if name == ".ksyms" || name == ".kconfig"
            );
            if !is_extern_sec {
                continue;
            }
            let vars: Vec<VarSecInfo> = match &types[i] {
                Some(BtfType::DataSec { vars, .. }) => vars.clone(),
                _ => continue,
            };
            let mut fixed = Vec::with_capacity(vars.len());
            for (k, v) in vars.iter().enumerate() {
                let is_func = matches!(
                    types.get(v.type_id as usize),
                    Some(Some(BtfType::Func { .. }))
                );
                let type_id = if is_func {
                    *dummy.get_or_insert_with(|| {
                        types.push(Some(BtfType::Var {
                            name: "__cordon_ksym".into(),
                            type_id: int_id,
                            linkage: Linkage::Global,
                        }));
                        (types.len() - 1) as u32
                    })
                } else {
                    v.type_id
                };
                fixed.push(VarSecInfo {
                    type_id,
                    offset: 4 * k as u32,
                    size: 4,
                });
            }
            if let Some(BtfType::DataSec { vars, size, .. }) = &mut types[i] {
                *size = 4 * fixed.len() as u32;
                *vars = fixed;
            }
        }
        Btf::from_parts(types, self.strings.clone())
    }
}
