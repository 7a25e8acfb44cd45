//! Map keys and values as JSON, decoded with the object's BTF (like
//! bpftool's `formatted` output): integers as numbers, structs as objects,
//! arrays as arrays, char arrays as strings, enums by name.

use cordon_object::btf::{Btf, BtfType};
use serde_json::{Map, Value, json};

/// Nesting bound (BTF is untrusted input).
const MAX_DEPTH: usize = 32;

/// Decode `bytes` as BTF type `id`; `None` when the type is unknown or the
/// bytes are too short for it.
pub fn format(btf: &Btf, id: u32, bytes: &[u8]) -> Option<Value> {
    value(btf, id, bytes, 0)
}

fn le_uint(bytes: &[u8]) -> u128 {
    bytes
        .iter()
        .rev()
        .fold(0u128, |acc, &b| (acc << 8) | u128::from(b))
}

fn int_value(raw: u128, size: usize, signed: bool) -> Value {
    if signed && size > 0 && size <= 8 {
        let shift = 128 - 8 * size as u32;
        let v = ((raw << shift) as i128) >> shift;
        json!(v as i64)
    } else if size <= 8 {
        json!(raw as u64)
    } else {
        // __int128: as a string.
        json!(raw.to_string())
    }
}

fn value(btf: &Btf, id: u32, bytes: &[u8], depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let id = btf.skip_mods_and_typedefs(id).ok()?;
    let t = btf.type_by_id(id)?;
    let size = btf.size_of(id).ok()? as usize;
    let data = bytes.get(..size)?;
    Some(match t {
        BtfType::Int {
            encoding,
            bits,
            bit_offset,
            ..
        } => {
            let raw = le_uint(data) >> bit_offset;
            let raw = if u32::from(*bits) < 128 {
                raw & ((1u128 << bits) - 1)
            } else {
                raw
            };
            if encoding.bool {
                json!(raw != 0)
            } else {
                let signed = encoding.signed;
                let width = (usize::from(*bits)).div_ceil(8).max(1);
                int_value(raw, width, signed)
            }
        }
        BtfType::Ptr { .. } => json!(format!("{:#x}", le_uint(data))),
        BtfType::Enum { values, signed, .. } | BtfType::Enum64 { values, signed, .. } => {
            let raw = le_uint(data);
            let v = match int_value(raw, size, *signed) {
                Value::Number(n) => n.as_i64().or_else(|| n.as_u64().map(|u| u as i64)),
                _ => None,
            };
            match v.and_then(|v| values.iter().find(|e| e.value == v)) {
                Some(e) => json!(e.name),
                None => int_value(raw, size, *signed),
            }
        }
        BtfType::Array {
            elem_type, nelems, ..
        } => {
            let elem = btf.skip_mods_and_typedefs(*elem_type).ok()?;
            let esize = btf.size_of(elem).ok()? as usize;
            // clang marks `char` by name (encoding: signed), not with BTF_INT_CHAR.
            if let Some(BtfType::Int {
                name,
                encoding,
                size: 1,
                ..
            }) = btf.type_by_id(elem)
                && (encoding.char || name == "char")
                && let Some(s) = c_string(data)
            {
                return Some(json!(s));
            }
            if esize == 0 {
                return Some(json!([]));
            }
            let items: Option<Vec<Value>> = (0..*nelems as usize)
                .map(|i| value(btf, elem, data.get(i * esize..)?, depth + 1))
                .collect();
            Value::Array(items?)
        }
        BtfType::Struct { members, .. } | BtfType::Union { members, .. } => {
            let mut obj = Map::new();
            for (i, m) in members.iter().enumerate() {
                let name = m.name.clone().unwrap_or_else(|| format!("<anon{i}>"));
                let v = if m.bitfield_size != 0 {
                    // Read enough bytes around the bitfield and extract it.
                    let start = (m.bit_offset / 8) as usize;
                    let shift = m.bit_offset % 8;
                    let end = (start + 16).min(data.len());
                    let raw = le_uint(data.get(start..end)?) >> shift;
                    let bits = m.bitfield_size.min(64);
                    let raw = raw & ((1u128 << bits) - 1);
                    json!(raw as u64)
                } else {
                    value(
                        btf,
                        m.type_id,
                        data.get((m.bit_offset / 8) as usize..)?,
                        depth + 1,
                    )?
                };
                obj.insert(name, v);
            }
            Value::Object(obj)
        }
        BtfType::Float { size: 8, .. } => {
            json!(f64::from_le_bytes(data.try_into().ok()?))
        }
        BtfType::Float { size: 4, .. } => {
            json!(f32::from_le_bytes(data.try_into().ok()?))
        }
        BtfType::DataSec { vars, .. } => {
            let mut obj = Map::new();
            for v in vars {
                let Some(BtfType::Var { name, type_id, .. }) = btf.type_by_id(v.type_id) else {
                    continue;
                };
                let off = v.offset as usize;
                let field = data.get(off..off + v.size as usize)?;
                obj.insert(name.clone(), value(btf, *type_id, field, depth + 1)?);
            }
            Value::Object(obj)
        }
        _ => return None,
    })
}

/// A NUL-terminated printable string filling a char array, if it is one.
fn c_string(data: &[u8]) -> Option<String> {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    if data[end..].iter().any(|&b| b != 0) {
        return None;
    }
    let s = std::str::from_utf8(&data[..end]).ok()?;
    s.chars()
        .all(|c| !c.is_control() || c == '\n' || c == '\t')
        .then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_object::Object;

    fn obj(name: &str) -> Object {
        let p = format!("{}/../../tests/bpf/{name}", env!("CARGO_MANIFEST_DIR"));
        Object::parse(&std::fs::read(p).unwrap()).unwrap()
    }

    #[test]
    fn firewall_key_and_value() {
        let o = obj("xdp_firewall.o");
        let btf = o.btf.as_ref().unwrap();
        let (_, rules) = o.map("fw_rules").unwrap();
        let mut key = vec![10, 0, 0, 66];
        key.extend_from_slice(&[0; 12]);
        key.extend_from_slice(&23u16.to_le_bytes());
        key.extend_from_slice(&[6, 4]);
        let k = format(btf, rules.btf_key_type_id.unwrap(), &key).unwrap();
        assert_eq!(k["port"], 23);
        assert_eq!(k["proto"], 6);
        assert_eq!(k["family"], 4);
        assert_eq!(k["addr"][0], u32::from_le_bytes([10, 0, 0, 66]));
        let mut val = 1u32.to_le_bytes().to_vec();
        val.extend_from_slice(&[0; 4]);
        val.extend_from_slice(&7u64.to_le_bytes());
        let v = format(btf, rules.btf_value_type_id.unwrap(), &val).unwrap();
        assert_eq!(v, json!({"action": 1, "pad": 0, "hits": 7}));
        // Too short: no formatting.
        assert!(format(btf, rules.btf_value_type_id.unwrap(), &val[..8]).is_none());
    }

    #[test]
    fn data_sections_and_bitfields() {
        let o = obj("global_data.o");
        let btf = o.btf.as_ref().unwrap();
        let (_, data) = o.map(".data").unwrap();
        let init = data.initial_data.clone().unwrap();
        let v = format(btf, data.btf_value_type_id.unwrap(), &init).unwrap();
        assert_eq!(v["counter"], 5);
        assert_eq!(v["greeting"], "hello");
        let o = obj("core_local.o");
        let btf = o.btf.as_ref().unwrap();
        let (_, cfgs) = o.map("cfgs").unwrap();
        let mut cfg = vec![0u8; 32];
        cfg[24] = (9 << 3) | 5;
        let v = format(btf, cfgs.btf_value_type_id.unwrap(), &cfg).unwrap();
        assert_eq!(v["flags"], 5);
        assert_eq!(v["mode"], 9);
    }
}
