//! CO-RE relocations resolved against the object's own BTF.
//!
//! Cordon has no kernel BTF to relocate against: the program's own types are
//! the target. The value of each relocation is computed the way libbpf does
//! (`bpf_core_calc_relo`) and checked against what clang encoded in the
//! instruction; a mismatch, an unknown kind or a malformed access string is an
//! error naming the relocation.

use cordon_isa::Insn;
use cordon_isa::opcode::{
    CLS_ALU, CLS_ALU64, CLS_LDX, CLS_MASK, CLS_ST, CLS_STX, OP_LDDW, SRC_MASK, SRC_X,
};

use crate::btf::{Btf, BtfType, CoreRelo, CoreReloKind};
use crate::{CoreRelocation, ObjectError};

pub(crate) fn apply(
    btf: &Btf,
    program: &str,
    insns: &mut [Insn],
    relos: &[(usize, CoreRelo)],
) -> Result<Vec<CoreRelocation>, ObjectError> {
    let mut out = Vec::with_capacity(relos.len());
    for (pc, r) in relos {
        let type_name = btf.type_name(r.type_id);
        let err = |problem: String| ObjectError::Core {
            program: program.to_string(),
            insn: *pc,
            kind: r.kind.name(),
            type_name: type_name.clone(),
            access: r.access.clone(),
            problem,
        };
        let (value, validate) = compute(btf, r).map_err(err)?;
        patch_insn(insns, *pc, r.kind, value, validate).map_err(err)?;
        out.push(CoreRelocation {
            insn: *pc,
            kind: r.kind,
            type_id: r.type_id,
            type_name: type_name.clone(),
            access: r.access.clone(),
            value,
        });
    }
    Ok(out)
}

fn parse_access(s: &str) -> Result<Vec<u32>, String> {
    let v: Result<Vec<u32>, _> = s.split(':').map(str::parse::<u32>).collect();
    match v {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("malformed access string `{s}`")),
    }
}

/// The relocated value, and whether clang's encoded value must equal it
/// (not for bitfields: clang sizes bitfield loads by the record's alignment,
/// libbpf by the field's type; both are consistent, libbpf's wins).
fn compute(btf: &Btf, r: &CoreRelo) -> Result<(u64, bool), String> {
    use CoreReloKind::*;
    let e = |x: crate::BtfError| x.to_string();
    if btf.type_by_id(r.type_id).is_none() {
        return Err(format!("type id {} does not exist", r.type_id));
    }
    match r.kind {
        TypeIdLocal | TypeIdTarget => Ok((r.type_id as u64, true)),
        TypeExists | TypeMatches => Ok((1, true)),
        TypeSize => Ok((btf.size_of(r.type_id).map_err(e)?, true)),
        EnumvalExists | EnumvalValue => {
            let acc = parse_access(&r.access)?;
            let t = btf.skip_mods_and_typedefs(r.type_id).map_err(e)?;
            let values = match btf.type_by_id(t) {
                Some(BtfType::Enum { values, .. } | BtfType::Enum64 { values, .. }) => values,
                _ => return Err("enum value relocation on a non-enum type".into()),
            };
            let v = values
                .get(acc[0] as usize)
                .ok_or_else(|| format!("enumerator index {} out of range", acc[0]))?;
            Ok((
                if r.kind == EnumvalExists {
                    1
                } else {
                    v.value as u64
                },
                true,
            ))
        }
        FieldByteOffset | FieldByteSize | FieldExists | FieldSigned | FieldLShiftU64
        | FieldRShiftU64 => field(btf, r),
        Unknown(k) => Err(format!("unknown CO-RE relocation kind {k}")),
    }
}

fn field(btf: &Btf, r: &CoreRelo) -> Result<(u64, bool), String> {
    use CoreReloKind::*;
    let e = |x: crate::BtfError| x.to_string();
    let acc = parse_access(&r.access)?;
    let root = btf.skip_mods_and_typedefs(r.type_id).map_err(e)?;
    let root_size = btf.size_of(root).map_err(e)?;
    let mut bit_off: u64 = (acc[0] as u64)
        .checked_mul(root_size)
        .and_then(|v| v.checked_mul(8))
        .ok_or("offset overflow")?;
    let mut cur = root;
    let mut bitfield: u64 = 0;
    for &idx in &acc[1..] {
        let t = btf.skip_mods_and_typedefs(cur).map_err(e)?;
        match btf.type_by_id(t) {
            Some(BtfType::Struct { members, .. } | BtfType::Union { members, .. }) => {
                let m = members
                    .get(idx as usize)
                    .ok_or_else(|| format!("member index {idx} out of range"))?;
                bit_off = bit_off
                    .checked_add(m.bit_offset as u64)
                    .ok_or("offset overflow")?;
                bitfield = m.bitfield_size as u64;
                cur = m.type_id;
            }
            Some(BtfType::Array {
                elem_type, nelems, ..
            }) => {
                if idx >= *nelems && *nelems != 0 {
                    return Err(format!("array index {idx} beyond {nelems} elements"));
                }
                let es = btf.size_of(*elem_type).map_err(e)?;
                bit_off = es
                    .checked_mul(8)
                    .and_then(|v| v.checked_mul(idx as u64))
                    .and_then(|v| v.checked_add(bit_off))
                    .ok_or("offset overflow")?;
                bitfield = 0;
                cur = *elem_type;
            }
            Some(other) => return Err(format!("cannot access into a {}", other.kind_name())),
            None => return Err("cannot access into void".into()),
        }
    }
    let mt = btf.skip_mods_and_typedefs(cur).map_err(e)?;
    let mut byte_sz = btf.size_of(mt).map_err(e)?;
    if byte_sz == 0 {
        return Err("field has size 0".into());
    }
    let (byte_off, bit_sz) = if bitfield == 0 {
        (bit_off / 8, byte_sz.saturating_mul(8))
    } else {
        if byte_sz > 8 || bitfield > 64 {
            return Err(format!(
                "bitfield of {bitfield} bits in a {byte_sz}-byte type"
            ));
        }
        let mut byte_off = bit_off / 8 / byte_sz * byte_sz;
        while (bit_off - byte_off * 8) + bitfield > byte_sz * 8 {
            if byte_sz >= 8 {
                return Err("bitfield does not fit a 64-bit load".into());
            }
            byte_sz *= 2;
            byte_off = bit_off / 8 / byte_sz * byte_sz;
        }
        (byte_off, bitfield)
    };
    let value = match r.kind {
        FieldByteOffset => byte_off,
        FieldByteSize => byte_sz,
        FieldExists => 1,
        FieldSigned => match btf.type_by_id(mt) {
            Some(BtfType::Int { encoding, .. }) => encoding.signed as u64,
            Some(BtfType::Enum { signed, .. } | BtfType::Enum64 { signed, .. }) => *signed as u64,
            _ => 0,
        },
        FieldLShiftU64 => 64u64
            .checked_sub((bit_off - byte_off * 8).saturating_add(bit_sz))
            .ok_or("bitfield shift out of range")?,
        FieldRShiftU64 => 64u64
            .checked_sub(bit_sz)
            .ok_or("bitfield size out of range")?,
        _ => return Err("not a field relocation".into()),
    };
    Ok((value, bitfield == 0))
}

/// Patch the instruction where libbpf would (`bpf_core_patch_insn`); when
/// `validate`, the instruction must already hold `value`.
fn patch_insn(
    insns: &mut [Insn],
    pc: usize,
    kind: CoreReloKind,
    value: u64,
    validate: bool,
) -> Result<(), String> {
    let len = insns.len();
    let insn = *insns
        .get(pc)
        .ok_or_else(|| format!("instruction {pc} is outside the program ({len} slots)"))?;
    let mismatch = |found: i64| format!("instruction holds {found}, the local type gives {value}");
    match insn.code & CLS_MASK {
        CLS_ALU | CLS_ALU64 if insn.code & SRC_MASK != SRC_X => {
            if validate && insn.imm as u32 != value as u32 {
                return Err(mismatch(insn.imm as i64));
            }
            let imm = i32::try_from(value as i64)
                .map_err(|_| format!("value {value} does not fit a 32-bit immediate"))?;
            insns[pc].imm = imm;
        }
        CLS_LDX | CLS_ST | CLS_STX if kind == CoreReloKind::FieldByteOffset => {
            if validate && insn.off as i64 as u64 != value {
                return Err(mismatch(insn.off as i64));
            }
            insns[pc].off = i16::try_from(value)
                .map_err(|_| format!("offset {value} does not fit a 16-bit offset"))?;
        }
        _ if insn.code == OP_LDDW && pc + 1 < len => {
            let found = ((insns[pc + 1].imm as u32 as u64) << 32) | insn.imm as u32 as u64;
            if validate && found != value {
                return Err(mismatch(found as i64));
            }
            insns[pc].imm = value as u32 as i32;
            insns[pc + 1].imm = (value >> 32) as u32 as i32;
        }
        _ => {
            return Err(format!(
                "instruction opcode {:#04x} cannot carry a {} relocation",
                insn.code,
                kind.name()
            ));
        }
    }
    Ok(())
}
