//! Unit tests of the BTF parser on hand-built blobs.

use super::*;

/// Build a BTF blob from raw type words and a string table.
pub(crate) fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xeb9fu16.to_le_bytes());
    v.push(1);
    v.push(0);
    v.extend_from_slice(&24u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&((types.len() * 4) as u32).to_le_bytes());
    v.extend_from_slice(&((types.len() * 4) as u32).to_le_bytes());
    v.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    for t in types {
        v.extend_from_slice(&t.to_le_bytes());
    }
    v.extend_from_slice(strings);
    v
}

fn info(kind: u32, vlen: u32, kflag: bool) -> u32 {
    (kind << 24) | vlen | if kflag { 1 << 31 } else { 0 }
}

const STRS: &[u8] = b"\0int\0s\0a\0b\0t\0";
// offsets: int=1 s=5 a=7 b=9 t=11

#[test]
fn parses_struct_and_resolves() {
    let types = [
        // [1] int: 4 bytes, signed 32 bits
        1,
        info(1, 0, false),
        4,
        (1 << 24) | 32,
        // [2] struct s { int a; int b[3]; } size 16
        5,
        info(4, 2, false),
        16,
        7,
        1,
        0,
        9,
        3,
        32,
        // [3] array int[3]
        0,
        info(3, 0, false),
        0,
        1,
        1,
        3,
        // [4] typedef t -> const -> struct s
        11,
        info(8, 0, false),
        5,
        // [5] const -> 2
        0,
        info(10, 0, false),
        2,
        // [6] ptr -> 4
        0,
        info(2, 0, false),
        4,
    ];
    let btf = Btf::parse(&blob(&types, STRS)).unwrap();
    assert_eq!(btf.len(), 7);
    assert_eq!(btf.size_of(3).unwrap(), 12);
    assert_eq!(btf.size_of(4).unwrap(), 16);
    assert_eq!(btf.size_of(6).unwrap(), 8);
    assert_eq!(btf.skip_mods_and_typedefs(4).unwrap(), 2);
    assert_eq!(btf.member(4, "b").unwrap().bit_offset, 32);
    assert_eq!(btf.type_name(6), "t *");
    assert_eq!(btf.type_name(3), "int[3]");
    assert!(matches!(
        btf.type_by_id(1),
        Some(BtfType::Int {
            encoding: IntEncoding { signed: true, .. },
            bits: 32,
            ..
        })
    ));
}

#[test]
fn rejects_typedef_loop() {
    // [1] typedef t -> 2, [2] const -> 1
    let types = [11, info(8, 0, false), 2, 0, info(10, 0, false), 1];
    assert_eq!(Btf::parse(&blob(&types, STRS)), Err(BtfError::TypeLoop(1)));
}

#[test]
fn rejects_bad_type_id() {
    let types = [0, info(2, 0, false), 9];
    assert!(matches!(
        Btf::parse(&blob(&types, STRS)),
        Err(BtfError::BadTypeId { from: 1, to: 9, .. })
    ));
}

#[test]
fn rejects_bad_string_offset() {
    let types = [200, info(8, 0, false), 0];
    assert!(matches!(
        Btf::parse(&blob(&types, STRS)),
        Err(BtfError::BadStringOffset { offset: 200, .. })
    ));
}

#[test]
fn rejects_unknown_kind_and_truncation() {
    let types = [0, info(25, 0, false), 0];
    assert_eq!(
        Btf::parse(&blob(&types, STRS)),
        Err(BtfError::UnknownKind { id: 1, kind: 25 })
    );
    // struct with 5 members but no member records
    let types = [5, info(4, 5, false), 16];
    assert!(matches!(
        Btf::parse(&blob(&types, STRS)),
        Err(BtfError::Truncated { .. })
    ));
}

#[test]
fn rejects_bad_header() {
    let mut b = blob(&[], STRS);
    b[0] = 0;
    assert!(matches!(Btf::parse(&b), Err(BtfError::BadMagic(_))));
    let mut b = blob(&[], STRS);
    b[2] = 2;
    assert_eq!(Btf::parse(&b), Err(BtfError::BadVersion(2)));
    let mut b = blob(&[], STRS);
    b[20] = 0xff; // str_len way too large
    assert!(matches!(Btf::parse(&b), Err(BtfError::BadHeader(_))));
    assert!(matches!(
        Btf::parse(&b[..10]),
        Err(BtfError::Truncated { .. })
    ));
}

#[test]
fn array_size_loop_is_bounded() {
    // [1] array of [1] (self-referential array)
    let types = [0, info(3, 0, false), 0, 1, 1, 2];
    let btf = Btf::parse(&blob(&types, STRS)).unwrap();
    assert_eq!(btf.size_of(1), Err(BtfError::TypeLoop(1)));
    assert!(btf.type_name(1).contains("..."));
}
