//! `.BTF.ext`: per-section function info, line info and CO-RE relocations.
//! Offsets in the raw records are in bytes from the start of their ELF section.

use super::parse::Reader;
use super::{Btf, BtfError};

/// One `bpf_func_info` record as found in the object (byte offset in its section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtFuncInfo {
    pub insn_off: u32,
    pub type_id: u32,
}

/// One `bpf_line_info` record, strings resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtLineInfo {
    pub insn_off: u32,
    pub file: String,
    /// The source line's text (as recorded by clang; may be empty).
    pub line_text: String,
    pub line: u32,
    pub column: u32,
    /// Raw string offsets of `file` and `line_text` in `.BTF`.
    pub file_name_off: u32,
    pub line_off: u32,
}

/// CO-RE relocation kinds (`enum bpf_core_relo_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoreReloKind {
    FieldByteOffset,
    FieldByteSize,
    FieldExists,
    FieldSigned,
    FieldLShiftU64,
    FieldRShiftU64,
    TypeIdLocal,
    TypeIdTarget,
    TypeExists,
    TypeSize,
    EnumvalExists,
    EnumvalValue,
    TypeMatches,
    Unknown(u32),
}

impl CoreReloKind {
    pub fn from_raw(v: u32) -> CoreReloKind {
        use CoreReloKind::*;
        match v {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLShiftU64,
            5 => FieldRShiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            o => Unknown(o),
        }
    }

    /// libbpf's short name (`byte_off`, `field_exists`, ...).
    pub fn name(self) -> &'static str {
        use CoreReloKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLShiftU64 => "lshift_u64",
            FieldRShiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
            Unknown(_) => "unknown",
        }
    }
}

/// One `bpf_core_relo` record, access string resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreRelo {
    pub insn_off: u32,
    pub type_id: u32,
    /// Access specification, e.g. `0:2:1` (root index, member index, array index).
    pub access: String,
    pub kind: CoreReloKind,
}

/// Parsed `.BTF.ext`, grouped by ELF section name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BtfExt {
    pub func_info: Vec<(String, Vec<ExtFuncInfo>)>,
    pub line_info: Vec<(String, Vec<ExtLineInfo>)>,
    pub core_relos: Vec<(String, Vec<CoreRelo>)>,
}

impl BtfExt {
    /// Parse `.BTF.ext` bytes; strings are looked up in `btf`.
    pub fn parse(data: &[u8], btf: &Btf) -> Result<BtfExt, BtfError> {
        let ext = |m: String| BtfError::Ext(m);
        let mut r = Reader::new(data, 0);
        let magic = r.u16("BTF.ext magic")?;
        if magic != super::parse::BTF_MAGIC {
            return Err(ext(format!("bad magic {magic:#06x}")));
        }
        let version = r.u8("BTF.ext version")?;
        if version != 1 {
            return Err(ext(format!("unsupported version {version}")));
        }
        let _flags = r.u8("BTF.ext flags")?;
        let hdr_len = r.u32("BTF.ext header length")? as usize;
        if hdr_len < 24 || hdr_len > data.len() {
            return Err(ext(format!(
                "header length {hdr_len} invalid for {} bytes",
                data.len()
            )));
        }
        let fi_off = r.u32("func_info_off")? as usize;
        let fi_len = r.u32("func_info_len")? as usize;
        let li_off = r.u32("line_info_off")? as usize;
        let li_len = r.u32("line_info_len")? as usize;
        let (cr_off, cr_len) = if hdr_len >= 32 {
            (
                r.u32("core_relo_off")? as usize,
                r.u32("core_relo_len")? as usize,
            )
        } else {
            (0, 0)
        };
        let strings = |off: u32| -> Result<String, BtfError> {
            btf.string_at(off)
                .map(String::from)
                .ok_or_else(|| ext(format!("string offset {off} is not a valid BTF string")))
        };
        let part = |name: &str, off: usize, len: usize| -> Result<&[u8], BtfError> {
            let start = hdr_len.checked_add(off);
            let end = start.and_then(|s| s.checked_add(len));
            match (start, end) {
                (Some(s), Some(e)) if e <= data.len() => Ok(&data[s..e]),
                _ => Err(ext(format!(
                    "{name} [{off}, +{len}) is outside the section ({} bytes)",
                    data.len()
                ))),
            }
        };
        let mut out = BtfExt::default();
        for (sec, recs) in
            info_blocks(part("func_info", fi_off, fi_len)?, 8, "func_info", &strings)?
        {
            let recs = recs
                .iter()
                .map(|b| ExtFuncInfo {
                    insn_off: le32(b, 0),
                    type_id: le32(b, 4),
                })
                .collect();
            out.func_info.push((sec, recs));
        }
        for (sec, recs) in info_blocks(
            part("line_info", li_off, li_len)?,
            16,
            "line_info",
            &strings,
        )? {
            let mut v = Vec::with_capacity(recs.len());
            for b in recs {
                let line_col = le32(b, 12);
                v.push(ExtLineInfo {
                    insn_off: le32(b, 0),
                    file: strings(le32(b, 4))?,
                    line_text: strings(le32(b, 8))?,
                    line: line_col >> 10,
                    column: line_col & 0x3ff,
                    file_name_off: le32(b, 4),
                    line_off: le32(b, 8),
                });
            }
            out.line_info.push((sec, v));
        }
        if cr_len > 0 {
            for (sec, recs) in info_blocks(
                part("core_relo", cr_off, cr_len)?,
                16,
                "core_relo",
                &strings,
            )? {
                let mut v = Vec::with_capacity(recs.len());
                for b in recs {
                    v.push(CoreRelo {
                        insn_off: le32(b, 0),
                        type_id: le32(b, 4),
                        access: strings(le32(b, 8))?,
                        kind: CoreReloKind::from_raw(le32(b, 12)),
                    });
                }
                out.core_relos.push((sec, v));
            }
        }
        Ok(out)
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

type Blocks<'a> = Vec<(String, Vec<&'a [u8]>)>;

/// Decode `rec_size, { sec_name_off, num_info, records[] }*`.
fn info_blocks<'a>(
    data: &'a [u8],
    min_rec: usize,
    what: &'static str,
    strings: &dyn Fn(u32) -> Result<String, BtfError>,
) -> Result<Blocks<'a>, BtfError> {
    let mut out = Vec::new();
    if data.is_empty() {
        return Ok(out);
    }
    let mut r = Reader::new(data, 0);
    let rec_size = r.u32(what)? as usize;
    if rec_size < min_rec || !rec_size.is_multiple_of(4) {
        return Err(BtfError::Ext(format!(
            "{what} record size {rec_size} is invalid (at least {min_rec}, multiple of 4)"
        )));
    }
    while r.remaining() > 0 {
        let sec_off = r.u32(what)?;
        let num = r.u32(what)? as usize;
        let sec = strings(sec_off)?;
        let total = num.checked_mul(rec_size).ok_or_else(|| {
            BtfError::Ext(format!("{what} for section {sec}: {num} records overflow"))
        })?;
        if total > r.remaining() {
            return Err(BtfError::Ext(format!(
                "{what} for section {sec}: {num} records of {rec_size} bytes at offset {} exceed the {} bytes left",
                r.pos(),
                r.remaining()
            )));
        }
        let body = r.bytes(total, what)?;
        out.push((sec, body.chunks_exact(rec_size).collect()));
    }
    Ok(out)
}
