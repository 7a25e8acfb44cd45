//! Raw `.BTF` decoding.

use super::{Btf, BtfError, BtfType, Enumerator, IntEncoding, Linkage, Member, Param, VarSecInfo};

pub(crate) const BTF_MAGIC: u16 = 0xeb9f;
const MAX_TYPES: usize = 1 << 20;

/// Little-endian cursor over a byte slice that reports truncation precisely.
pub(crate) struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8], pos: usize) -> Self {
        Reader { data, pos }
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
    pub(crate) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], BtfError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        match end {
            Some(end) => {
                let s = &self.data[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(BtfError::Truncated {
                what,
                offset: self.pos,
                need: n,
                len: self.data.len(),
            }),
        }
    }
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, BtfError> {
        Ok(self.bytes(1, what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, BtfError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, BtfError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A NUL-terminated UTF-8 string at `offset` in a string table.
pub(crate) fn str_at(strings: &[u8], offset: u32) -> Result<&str, BtfError> {
    let start = offset as usize;
    if start >= strings.len() {
        return Err(BtfError::BadStringOffset {
            offset,
            len: strings.len(),
        });
    }
    let rest = &strings[start..];
    let end = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or(BtfError::BadString(offset))?;
    std::str::from_utf8(&rest[..end]).map_err(|_| BtfError::BadString(offset))
}

pub(crate) struct Header {
    pub hdr_len: usize,
    pub type_off: usize,
    pub type_len: usize,
    pub str_off: usize,
    pub str_len: usize,
}

fn header(data: &[u8]) -> Result<Header, BtfError> {
    let mut r = Reader::new(data, 0);
    let magic = r.u16("header magic")?;
    if magic != BTF_MAGIC {
        return Err(BtfError::BadMagic(magic));
    }
    let version = r.u8("header version")?;
    if version != 1 {
        return Err(BtfError::BadVersion(version));
    }
    let _flags = r.u8("header flags")?;
    let hdr_len = r.u32("header length")? as usize;
    let type_off = r.u32("type_off")? as usize;
    let type_len = r.u32("type_len")? as usize;
    let str_off = r.u32("str_off")? as usize;
    let str_len = r.u32("str_len")? as usize;
    if hdr_len < 24 {
        return Err(BtfError::BadHeader(format!(
            "header length {hdr_len} is shorter than 24"
        )));
    }
    let body = data.len().saturating_sub(hdr_len);
    if hdr_len > data.len() {
        return Err(BtfError::Truncated {
            what: "header",
            offset: 0,
            need: hdr_len,
            len: data.len(),
        });
    }
    for (name, off, len) in [("type", type_off, type_len), ("string", str_off, str_len)] {
        if off.checked_add(len).is_none_or(|e| e > body) {
            return Err(BtfError::BadHeader(format!(
                "{name} section [{off}, +{len}) is outside the {body} bytes after the header"
            )));
        }
    }
    if !type_off.is_multiple_of(4) || !type_len.is_multiple_of(4) {
        return Err(BtfError::BadHeader(format!(
            "type section offset {type_off} / length {type_len} not 4-byte aligned"
        )));
    }
    if str_len == 0 || data[hdr_len + str_off] != 0 {
        return Err(BtfError::BadHeader(
            "string section must start with an empty string".into(),
        ));
    }
    Ok(Header {
        hdr_len,
        type_off,
        type_len,
        str_off,
        str_len,
    })
}

pub(crate) fn parse_btf(data: &[u8]) -> Result<Btf, BtfError> {
    let h = header(data)?;
    let strings = data[h.hdr_len + h.str_off..h.hdr_len + h.str_off + h.str_len].to_vec();
    let tdata = &data[h.hdr_len + h.type_off..h.hdr_len + h.type_off + h.type_len];
    let mut r = Reader::new(tdata, 0);
    let mut types: Vec<Option<BtfType>> = vec![None];
    while r.remaining() > 0 {
        let id = types.len() as u32;
        if types.len() > MAX_TYPES {
            return Err(BtfError::BadHeader(format!("more than {MAX_TYPES} types")));
        }
        types.push(Some(parse_type(&mut r, &strings, id)?));
    }
    let count = types.len() as u32;
    for (id, t) in types.iter().enumerate() {
        let Some(t) = t else { continue };
        for to in t.referenced() {
            if to >= count {
                return Err(BtfError::BadTypeId {
                    from: id as u32,
                    to,
                    count,
                });
            }
        }
    }
    let btf = Btf::from_parts(types, strings);
    // Reject reference chains that loop (a -> const b -> a ...), so that every
    // later resolution is bounded.
    for id in 1..count {
        btf.skip_mods_and_typedefs(id)?;
        if let Some(BtfType::Ptr { type_id }) = btf.type_by_id(id) {
            btf.skip_mods_and_typedefs(*type_id)?;
        }
    }
    Ok(btf)
}

fn parse_type(r: &mut Reader<'_>, strings: &[u8], id: u32) -> Result<BtfType, BtfError> {
    let name_off = r.u32("type name_off")?;
    let info = r.u32("type info")?;
    let size_or_type = r.u32("type size/type")?;
    let vlen = (info & 0xffff) as usize;
    let kind = (info >> 24) & 0x1f;
    let kflag = info >> 31 != 0;
    // Every name offset must be valid, even for kinds that carry no name.
    str_at(strings, name_off)?;
    let name = |off: u32| -> Result<Option<String>, BtfError> {
        let s = str_at(strings, off)?;
        Ok((!s.is_empty()).then(|| s.to_string()))
    };
    let req_name = |off: u32, what: &str| -> Result<String, BtfError> {
        name(off)?.ok_or_else(|| BtfError::BadType {
            id,
            problem: format!("{what} must have a name"),
        })
    };
    let bad = |problem: String| BtfError::BadType { id, problem };
    let members = |r: &mut Reader<'_>| -> Result<Vec<Member>, BtfError> {
        let mut out = Vec::with_capacity(vlen.min(r.remaining() / 12));
        for _ in 0..vlen {
            let n = r.u32("member name_off")?;
            let t = r.u32("member type")?;
            let off = r.u32("member offset")?;
            let (bit_offset, bitfield_size) = if kflag {
                (off & 0x00ff_ffff, off >> 24)
            } else {
                (off, 0)
            };
            out.push(Member {
                name: name(n)?,
                type_id: t,
                bit_offset,
                bitfield_size,
            });
        }
        Ok(out)
    };
    Ok(match kind {
        1 => {
            let enc = r.u32("int encoding")?;
            let bits = (enc & 0xff) as u8;
            let bit_offset = ((enc >> 16) & 0xff) as u8;
            let e = (enc >> 24) & 0x0f;
            if size_or_type == 0 || size_or_type > 16 || bits as u32 > size_or_type * 8 {
                return Err(bad(format!(
                    "int of size {size_or_type} with {bits} bits is invalid"
                )));
            }
            BtfType::Int {
                name: req_name(name_off, "int")?,
                size: size_or_type,
                encoding: IntEncoding {
                    signed: e & 1 != 0,
                    char: e & 2 != 0,
                    bool: e & 4 != 0,
                },
                bit_offset,
                bits,
            }
        }
        2 => BtfType::Ptr {
            type_id: size_or_type,
        },
        3 => {
            let elem_type = r.u32("array elem type")?;
            let index_type = r.u32("array index type")?;
            let nelems = r.u32("array nelems")?;
            BtfType::Array {
                elem_type,
                index_type,
                nelems,
            }
        }
        4 => BtfType::Struct {
            name: name(name_off)?,
            size: size_or_type,
            members: members(r)?,
        },
        5 => BtfType::Union {
            name: name(name_off)?,
            size: size_or_type,
            members: members(r)?,
        },
        6 => {
            let mut values = Vec::with_capacity(vlen.min(r.remaining() / 8));
            for _ in 0..vlen {
                let n = r.u32("enum name_off")?;
                let v = r.u32("enum value")?;
                values.push(Enumerator {
                    name: req_name(n, "enumerator")?,
                    value: if kflag { v as i32 as i64 } else { v as i64 },
                });
            }
            BtfType::Enum {
                name: name(name_off)?,
                size: size_or_type,
                signed: kflag,
                values,
            }
        }
        7 => BtfType::Fwd {
            name: req_name(name_off, "fwd")?,
            is_union: kflag,
        },
        8 => BtfType::Typedef {
            name: req_name(name_off, "typedef")?,
            type_id: size_or_type,
        },
        9 => BtfType::Volatile {
            type_id: size_or_type,
        },
        10 => BtfType::Const {
            type_id: size_or_type,
        },
        11 => BtfType::Restrict {
            type_id: size_or_type,
        },
        12 => BtfType::Func {
            name: req_name(name_off, "func")?,
            proto: size_or_type,
            linkage: Linkage::from_raw(vlen as u32),
        },
        13 => {
            let mut params = Vec::with_capacity(vlen.min(r.remaining() / 8));
            for _ in 0..vlen {
                let n = r.u32("param name_off")?;
                let t = r.u32("param type")?;
                params.push(Param {
                    name: name(n)?,
                    type_id: t,
                });
            }
            BtfType::FuncProto {
                ret: size_or_type,
                params,
            }
        }
        14 => BtfType::Var {
            name: req_name(name_off, "var")?,
            type_id: size_or_type,
            linkage: Linkage::from_raw(r.u32("var linkage")?),
        },
        15 => {
            let mut vars = Vec::with_capacity(vlen.min(r.remaining() / 12));
            for _ in 0..vlen {
                vars.push(VarSecInfo {
                    type_id: r.u32("datasec var type")?,
                    offset: r.u32("datasec var offset")?,
                    size: r.u32("datasec var size")?,
                });
            }
            BtfType::DataSec {
                name: req_name(name_off, "datasec")?,
                size: size_or_type,
                vars,
            }
        }
        16 => BtfType::Float {
            name: req_name(name_off, "float")?,
            size: size_or_type,
        },
        17 => BtfType::DeclTag {
            name: req_name(name_off, "decl_tag")?,
            type_id: size_or_type,
            component_idx: r.u32("decl_tag component_idx")? as i32,
        },
        18 => BtfType::TypeTag {
            name: req_name(name_off, "type_tag")?,
            type_id: size_or_type,
        },
        19 => {
            let mut values = Vec::with_capacity(vlen.min(r.remaining() / 12));
            for _ in 0..vlen {
                let n = r.u32("enum64 name_off")?;
                let lo = r.u32("enum64 value lo")?;
                let hi = r.u32("enum64 value hi")?;
                values.push(Enumerator {
                    name: req_name(n, "enumerator")?,
                    value: (((hi as u64) << 32) | lo as u64) as i64,
                });
            }
            BtfType::Enum64 {
                name: name(name_off)?,
                size: size_or_type,
                signed: kflag,
                values,
            }
        }
        k => return Err(BtfError::UnknownKind { id, kind: k }),
    })
}
