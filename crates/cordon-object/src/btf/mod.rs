//! BTF (BPF Type Format) parser and type resolution helpers.
//!
//! Own implementation rather than a crate: the only maintained Rust BTF
//! parsers live inside larger loaders (aya-obj, libbpf-rs via C) and either
//! pull in a whole loader or C code; what the verifier needs (function
//! prototypes, decl tags, struct layouts, bounded type-chain resolution that
//! never panics on hostile input) is small and easier to audit here.
//!
//! Layout (kernel `include/uapi/linux/btf.h`): a 24-byte header, a type
//! section of variable-length records and a string section. Type id 0 is
//! `void`; the first record is id 1.

mod encode;
mod ext;
mod parse;

use std::collections::HashMap;

pub use ext::{BtfExt, CoreRelo, CoreReloKind, ExtFuncInfo, ExtLineInfo};

/// Why BTF data was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    #[error("BTF is truncated: {what} needs {need} bytes at offset {offset}, only {len} available")]
    Truncated {
        what: &'static str,
        offset: usize,
        need: usize,
        len: usize,
    },
    #[error("bad BTF magic {0:#06x} (expected 0xeb9f, little-endian)")]
    BadMagic(u16),
    #[error("unsupported BTF version {0}")]
    BadVersion(u8),
    #[error("bad BTF header: {0}")]
    BadHeader(String),
    #[error("BTF type [{id}]: unknown kind {kind}")]
    UnknownKind { id: u32, kind: u32 },
    #[error("BTF type [{id}]: {problem}")]
    BadType { id: u32, problem: String },
    #[error("BTF string offset {offset} is out of range (string section is {len} bytes)")]
    BadStringOffset { offset: u32, len: usize },
    #[error("BTF string at offset {0} is not NUL-terminated or not UTF-8")]
    BadString(u32),
    #[error("BTF type [{from}] refers to type id {to}, which does not exist ({count} types)")]
    BadTypeId { from: u32, to: u32, count: u32 },
    #[error("BTF type chain starting at [{0}] loops or is deeper than 32 levels")]
    TypeLoop(u32),
    #[error("BTF type [{id}] ({kind}) has no size")]
    NoSize { id: u32, kind: &'static str },
    #[error("BTF.ext: {0}")]
    Ext(String),
}

/// Integer encoding bits of a `BTF_KIND_INT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntEncoding {
    pub signed: bool,
    pub char: bool,
    pub bool: bool,
}

/// A struct/union member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: Option<String>,
    pub type_id: u32,
    /// Offset from the start of the aggregate, in bits.
    pub bit_offset: u32,
    /// Bitfield size in bits (0 when not a bitfield).
    pub bitfield_size: u32,
}

/// An enumerator (`BTF_KIND_ENUM` values are widened to 64 bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enumerator {
    pub name: String,
    pub value: i64,
}

/// A function prototype parameter (an unnamed `void` last parameter means varargs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    pub name: Option<String>,
    pub type_id: u32,
}

/// One variable of a `DATASEC`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VarSecInfo {
    pub type_id: u32,
    pub offset: u32,
    pub size: u32,
}

/// Linkage of a `FUNC` (`vlen`) or `VAR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linkage {
    Static,
    Global,
    Extern,
    Other(u32),
}

impl Linkage {
    fn from_raw(v: u32) -> Linkage {
        match v {
            0 => Linkage::Static,
            1 => Linkage::Global,
            2 => Linkage::Extern,
            o => Linkage::Other(o),
        }
    }
}

/// A BTF type record (names resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BtfType {
    Int {
        name: String,
        size: u32,
        encoding: IntEncoding,
        bit_offset: u8,
        bits: u8,
    },
    Ptr {
        type_id: u32,
    },
    Array {
        elem_type: u32,
        index_type: u32,
        nelems: u32,
    },
    Struct {
        name: Option<String>,
        size: u32,
        members: Vec<Member>,
    },
    Union {
        name: Option<String>,
        size: u32,
        members: Vec<Member>,
    },
    Enum {
        name: Option<String>,
        size: u32,
        signed: bool,
        values: Vec<Enumerator>,
    },
    Fwd {
        name: String,
        is_union: bool,
    },
    Typedef {
        name: String,
        type_id: u32,
    },
    Volatile {
        type_id: u32,
    },
    Const {
        type_id: u32,
    },
    Restrict {
        type_id: u32,
    },
    Func {
        name: String,
        proto: u32,
        linkage: Linkage,
    },
    FuncProto {
        ret: u32,
        params: Vec<Param>,
    },
    Var {
        name: String,
        type_id: u32,
        linkage: Linkage,
    },
    DataSec {
        name: String,
        size: u32,
        vars: Vec<VarSecInfo>,
    },
    Float {
        name: String,
        size: u32,
    },
    /// `component_idx` is -1 for a tag on the type itself, else a member/param index.
    DeclTag {
        name: String,
        type_id: u32,
        component_idx: i32,
    },
    TypeTag {
        name: String,
        type_id: u32,
    },
    Enum64 {
        name: Option<String>,
        size: u32,
        signed: bool,
        values: Vec<Enumerator>,
    },
}

impl BtfType {
    /// Kernel kind name (`"struct"`, `"func_proto"`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            BtfType::Int { .. } => "int",
            BtfType::Ptr { .. } => "ptr",
            BtfType::Array { .. } => "array",
            BtfType::Struct { .. } => "struct",
            BtfType::Union { .. } => "union",
            BtfType::Enum { .. } => "enum",
            BtfType::Fwd { .. } => "fwd",
            BtfType::Typedef { .. } => "typedef",
            BtfType::Volatile { .. } => "volatile",
            BtfType::Const { .. } => "const",
            BtfType::Restrict { .. } => "restrict",
            BtfType::Func { .. } => "func",
            BtfType::FuncProto { .. } => "func_proto",
            BtfType::Var { .. } => "var",
            BtfType::DataSec { .. } => "datasec",
            BtfType::Float { .. } => "float",
            BtfType::DeclTag { .. } => "decl_tag",
            BtfType::TypeTag { .. } => "type_tag",
            BtfType::Enum64 { .. } => "enum64",
        }
    }

    /// The type's own name, if it has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            BtfType::Int { name, .. }
            | BtfType::Fwd { name, .. }
            | BtfType::Typedef { name, .. }
            | BtfType::Func { name, .. }
            | BtfType::Var { name, .. }
            | BtfType::DataSec { name, .. }
            | BtfType::Float { name, .. }
            | BtfType::DeclTag { name, .. }
            | BtfType::TypeTag { name, .. } => Some(name),
            BtfType::Struct { name, .. }
            | BtfType::Union { name, .. }
            | BtfType::Enum { name, .. }
            | BtfType::Enum64 { name, .. } => name.as_deref(),
            _ => None,
        }
    }

    /// Type ids this record refers to (for validation).
    fn referenced(&self) -> Vec<u32> {
        match self {
            BtfType::Ptr { type_id }
            | BtfType::Typedef { type_id, .. }
            | BtfType::Volatile { type_id }
            | BtfType::Const { type_id }
            | BtfType::Restrict { type_id }
            | BtfType::Var { type_id, .. }
            | BtfType::DeclTag { type_id, .. }
            | BtfType::TypeTag { type_id, .. } => vec![*type_id],
            BtfType::Func { proto, .. } => vec![*proto],
            BtfType::Array {
                elem_type,
                index_type,
                ..
            } => vec![*elem_type, *index_type],
            BtfType::Struct { members, .. } | BtfType::Union { members, .. } => {
                members.iter().map(|m| m.type_id).collect()
            }
            BtfType::FuncProto { ret, params } => std::iter::once(*ret)
                .chain(params.iter().map(|p| p.type_id))
                .collect(),
            BtfType::DataSec { vars, .. } => vars.iter().map(|v| v.type_id).collect(),
            _ => Vec::new(),
        }
    }

    fn is_modifier_or_typedef(&self) -> Option<u32> {
        match self {
            BtfType::Typedef { type_id, .. }
            | BtfType::Volatile { type_id }
            | BtfType::Const { type_id }
            | BtfType::Restrict { type_id }
            | BtfType::TypeTag { type_id, .. } => Some(*type_id),
            _ => None,
        }
    }
}

/// Maximum length of a modifier/typedef/array chain (Linux's `MAX_RESOLVE_DEPTH`).
pub const MAX_RESOLVE_DEPTH: usize = 32;

/// Parsed BTF: all types (index 0 is `void`) plus the raw string table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Btf {
    /// `types[0]` is a placeholder for `void`; use [`Btf::type_by_id`].
    types: Vec<Option<BtfType>>,
    strings: Vec<u8>,
    /// Type ids by name (lookups stay linear-time free on large BTF).
    by_name: HashMap<String, Vec<u32>>,
    /// Decl tag ids by the type they annotate.
    tags: HashMap<u32, Vec<u32>>,
}

impl Btf {
    /// Parse raw `.BTF` section bytes. Validates every record and every type
    /// reference; never panics.
    pub fn parse(data: &[u8]) -> Result<Btf, BtfError> {
        parse::parse_btf(data)
    }

    /// Number of type ids, including `void` (id 0).
    pub fn len(&self) -> u32 {
        self.types.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    /// The type with this id; `None` for `void` (0) or an id out of range.
    pub fn type_by_id(&self, id: u32) -> Option<&BtfType> {
        self.types.get(id as usize).and_then(|t| t.as_ref())
    }

    /// All `(id, type)` pairs, from id 1.
    pub fn types(&self) -> impl Iterator<Item = (u32, &BtfType)> {
        self.types
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.as_ref().map(|t| (i as u32, t)))
    }

    /// A string from the string section (`None` if out of range / invalid).
    pub fn string_at(&self, offset: u32) -> Option<&str> {
        parse::str_at(&self.strings, offset).ok()
    }

    /// First type of the given kind name (see [`BtfType::kind_name`]) with this name.
    pub fn find_by_name(&self, name: &str, kind: &str) -> Option<u32> {
        self.by_name
            .get(name)?
            .iter()
            .copied()
            .find(|&id| self.type_by_id(id).is_some_and(|t| t.kind_name() == kind))
    }

    /// Id of the `FUNC` named `name`.
    pub fn find_func(&self, name: &str) -> Option<u32> {
        self.find_by_name(name, "func")
    }

    /// Follow typedefs, `const`, `volatile`, `restrict` and type tags.
    pub fn skip_mods_and_typedefs(&self, id: u32) -> Result<u32, BtfError> {
        let mut cur = id;
        for _ in 0..=MAX_RESOLVE_DEPTH {
            match self
                .type_by_id(cur)
                .and_then(|t| t.is_modifier_or_typedef())
            {
                Some(next) => cur = next,
                None => return Ok(cur),
            }
        }
        Err(BtfError::TypeLoop(id))
    }

    /// Follow modifiers only (not typedefs).
    pub fn skip_mods(&self, id: u32) -> Result<u32, BtfError> {
        let mut cur = id;
        for _ in 0..=MAX_RESOLVE_DEPTH {
            match self.type_by_id(cur) {
                Some(
                    BtfType::Volatile { type_id }
                    | BtfType::Const { type_id }
                    | BtfType::Restrict { type_id }
                    | BtfType::TypeTag { type_id, .. },
                ) => cur = *type_id,
                _ => return Ok(cur),
            }
        }
        Err(BtfError::TypeLoop(id))
    }

    /// Size in bytes of a type (pointers are 8 bytes; arrays multiply).
    pub fn size_of(&self, id: u32) -> Result<u64, BtfError> {
        self.size_of_depth(id, 0)
    }

    fn size_of_depth(&self, id: u32, depth: usize) -> Result<u64, BtfError> {
        if depth > MAX_RESOLVE_DEPTH {
            return Err(BtfError::TypeLoop(id));
        }
        let resolved = self.skip_mods_and_typedefs(id)?;
        let Some(t) = self.type_by_id(resolved) else {
            return Err(BtfError::NoSize { id, kind: "void" });
        };
        Ok(match t {
            BtfType::Int { size, .. }
            | BtfType::Struct { size, .. }
            | BtfType::Union { size, .. }
            | BtfType::Enum { size, .. }
            | BtfType::Enum64 { size, .. }
            | BtfType::DataSec { size, .. }
            | BtfType::Float { size, .. } => *size as u64,
            BtfType::Ptr { .. } => 8,
            BtfType::Array {
                elem_type, nelems, ..
            } => self
                .size_of_depth(*elem_type, depth + 1)?
                .checked_mul(*nelems as u64)
                .ok_or(BtfError::BadType {
                    id: resolved,
                    problem: "array size overflows".into(),
                })?,
            BtfType::Var { type_id, .. } => self.size_of_depth(*type_id, depth + 1)?,
            other => {
                return Err(BtfError::NoSize {
                    id: resolved,
                    kind: other.kind_name(),
                });
            }
        })
    }

    /// Members of a struct or union (after skipping modifiers/typedefs).
    pub fn members(&self, id: u32) -> Option<&[Member]> {
        let id = self.skip_mods_and_typedefs(id).ok()?;
        match self.type_by_id(id)? {
            BtfType::Struct { members, .. } | BtfType::Union { members, .. } => Some(members),
            _ => None,
        }
    }

    /// A struct/union member by name (not descending into anonymous members).
    pub fn member(&self, id: u32, name: &str) -> Option<&Member> {
        self.members(id)?
            .iter()
            .find(|m| m.name.as_deref() == Some(name))
    }

    /// The prototype of a `FUNC` (or the `FUNC_PROTO` itself): `(ret, params)`.
    pub fn func_proto(&self, id: u32) -> Option<(u32, &[Param])> {
        let proto = match self.type_by_id(id)? {
            BtfType::Func { proto, .. } => *proto,
            BtfType::FuncProto { .. } => id,
            _ => return None,
        };
        match self.type_by_id(proto)? {
            BtfType::FuncProto { ret, params } => Some((*ret, params)),
            _ => None,
        }
    }

    /// Decl tags attached to type `id`: `(component_idx, tag)` pairs.
    pub fn decl_tags(&self, id: u32) -> Vec<(i32, &str)> {
        let Some(tags) = self.tags.get(&id) else {
            return Vec::new();
        };
        tags.iter()
            .filter_map(|&t| match self.type_by_id(t) {
                Some(BtfType::DeclTag {
                    name,
                    component_idx,
                    ..
                }) => Some((*component_idx, name.as_str())),
                _ => None,
            })
            .collect()
    }

    fn from_parts(types: Vec<Option<BtfType>>, strings: Vec<u8>) -> Btf {
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        let mut tags: HashMap<u32, Vec<u32>> = HashMap::new();
        for (id, t) in types.iter().enumerate() {
            let Some(t) = t else { continue };
            if let Some(n) = t.name() {
                by_name.entry(n.to_string()).or_default().push(id as u32);
            }
            if let BtfType::DeclTag { type_id, .. } = t {
                tags.entry(*type_id).or_default().push(id as u32);
            }
        }
        Btf {
            types,
            strings,
            by_name,
            tags,
        }
    }

    /// Human-readable name of a type for messages (`struct fw_key`, `u32 *`, ...).
    pub fn type_name(&self, id: u32) -> String {
        self.type_name_depth(id, 0)
    }

    fn type_name_depth(&self, id: u32, depth: usize) -> String {
        if depth > MAX_RESOLVE_DEPTH {
            return "...".into();
        }
        let Some(t) = self.type_by_id(id) else {
            return "void".into();
        };
        let named = |kw: &str, n: &Option<String>| match n {
            Some(n) => format!("{kw} {n}"),
            None => format!("{kw} (anon)"),
        };
        match t {
            BtfType::Int { name, .. }
            | BtfType::Typedef { name, .. }
            | BtfType::Float { name, .. }
            | BtfType::Func { name, .. }
            | BtfType::Var { name, .. }
            | BtfType::DataSec { name, .. } => name.clone(),
            BtfType::Struct { name, .. } => named("struct", name),
            BtfType::Union { name, .. } => named("union", name),
            BtfType::Enum { name, .. } | BtfType::Enum64 { name, .. } => named("enum", name),
            BtfType::Fwd { name, is_union } => {
                format!("{} {name}", if *is_union { "union" } else { "struct" })
            }
            BtfType::Ptr { type_id } => format!("{} *", self.type_name_depth(*type_id, depth + 1)),
            BtfType::Array {
                elem_type, nelems, ..
            } => format!("{}[{nelems}]", self.type_name_depth(*elem_type, depth + 1)),
            BtfType::Const { type_id } => {
                format!("const {}", self.type_name_depth(*type_id, depth + 1))
            }
            BtfType::Volatile { type_id } => {
                format!("volatile {}", self.type_name_depth(*type_id, depth + 1))
            }
            BtfType::Restrict { type_id } => {
                format!("{} restrict", self.type_name_depth(*type_id, depth + 1))
            }
            BtfType::TypeTag { name, type_id } => format!(
                "{} __tag({name})",
                self.type_name_depth(*type_id, depth + 1)
            ),
            BtfType::FuncProto { .. } => "func_proto".into(),
            BtfType::DeclTag { name, .. } => format!("decl_tag {name}"),
        }
    }

    /// Set a `DATASEC`'s size and its variables' offsets (clang leaves them
    /// to the loader). `offset_of` maps a variable name to its offset.
    pub(crate) fn fixup_datasec(
        &mut self,
        datasec_id: u32,
        size: u32,
        offset_of: &dyn Fn(&str) -> Option<u32>,
    ) {
        let var_names: Vec<Option<String>> = match self.type_by_id(datasec_id) {
            Some(BtfType::DataSec { vars, .. }) => vars
                .iter()
                .map(|v| {
                    self.type_by_id(v.type_id)
                        .and_then(|t| t.name().map(String::from))
                })
                .collect(),
            _ => return,
        };
        if let Some(Some(BtfType::DataSec {
            size: s, vars: vs, ..
        })) = self.types.get_mut(datasec_id as usize)
        {
            *s = size;
            for (v, name) in vs.iter_mut().zip(var_names) {
                if let Some(off) = name.as_deref().and_then(offset_of) {
                    v.offset = off;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
