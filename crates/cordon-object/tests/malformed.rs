//! Every malformed-input error path, built by patching real objects.

mod common;

use common::*;
use cordon_object::{BtfError, Object, ObjectError};

fn err(bytes: &[u8]) -> ObjectError {
    match Object::parse(bytes) {
        Ok(_) => panic!("malformed object was accepted"),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e
        }
    }
}

/// File offset of the `entry`-th Elf64_Rel applying to `section`.
fn rel_entry(b: &[u8], section: &str, entry: usize) -> usize {
    let r = rel_for(b, section);
    assert!(r.size >= (entry + 1) * 16);
    r.offset + entry * 16
}

#[test]
fn not_elf_and_truncated() {
    assert!(matches!(err(b"hello, world"), ObjectError::Elf(_)));
    assert!(matches!(err(&[]), ObjectError::Elf(_)));
    let b = read_obj("xdp_firewall.o");
    for len in [4, 63, 64, 200, b.len() / 2, b.len() - 1] {
        let e = err(&b[..len]);
        assert!(
            matches!(e, ObjectError::Elf(_) | ObjectError::Section { .. }),
            "{len}: {e}"
        );
    }
}

#[test]
fn wrong_machine() {
    let mut b = read_obj("xdp_firewall.o");
    put_u16(&mut b, 0x12, 62);
    assert_eq!(err(&b), ObjectError::NotBpf(62));
}

#[test]
fn relocation_symbol_out_of_range() {
    let mut b = read_obj("maps_basic.o");
    let e = rel_entry(&b, "tc", 0);
    let t = get_u64(&b, e + 8) & 0xffff_ffff;
    put_u64(&mut b, e + 8, (9999 << 32) | t);
    match err(&b) {
        ObjectError::RelocationSymbol {
            section,
            entry,
            symbol,
            ..
        } => {
            assert_eq!((section.as_str(), entry, symbol), (".reltc", 0, 9999));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn relocation_wrong_type() {
    let mut b = read_obj("maps_basic.o");
    let e = rel_entry(&b, "tc", 0);
    let sym = get_u64(&b, e + 8) >> 32;
    put_u64(&mut b, e + 8, (sym << 32) | 7);
    match err(&b) {
        ObjectError::RelocationType {
            section,
            r_type,
            symbol,
            ..
        } => assert_eq!(
            (section.as_str(), r_type, symbol.as_str()),
            ("tc", 7, "arr")
        ),
        other => panic!("{other}"),
    }
}

#[test]
fn relocation_on_wrong_instruction() {
    let mut b = read_obj("maps_basic.o");
    let e = rel_entry(&b, "tc", 0);
    put_u64(&mut b, e, 0); // instruction 0 is neither lddw nor call
    let tc = section(&b, "tc");
    let code = b[tc.offset];
    match err(&b) {
        ObjectError::RelocationInsn {
            section,
            insn,
            code: c,
            symbol,
        } => {
            assert_eq!(
                (section.as_str(), insn, c, symbol.as_str()),
                ("tc", 0, code, "arr")
            );
        }
        other => panic!("{other}"),
    }
}

#[test]
fn relocation_offset_outside_section() {
    let mut b = read_obj("maps_basic.o");
    let e = rel_entry(&b, "tc", 0);
    put_u64(&mut b, e, 1 << 40);
    assert!(matches!(
        err(&b),
        ObjectError::RelocationOffset { section, .. } if section == "tc"
    ));
}

#[test]
fn relocation_to_null_symbol_is_unresolved() {
    let mut b = read_obj("maps_basic.o");
    let e = rel_entry(&b, "tc", 0);
    put_u64(&mut b, e + 8, 1); // symbol 0, R_BPF_64_64
    assert!(matches!(err(&b), ObjectError::Unresolved { section, .. } if section == "tc"));

    // A call relocation against the null symbol: an unnamed kfunc.
    let mut b = read_obj("kfunc_obj.o");
    let e = rel_entry(&b, "tc", 0);
    put_u64(&mut b, e + 8, 10);
    let e = err(&b);
    assert!(e.to_string().contains("unnamed undefined symbol"), "{e}");
}

#[test]
fn relocation_against_non_map_data() {
    let mut b = read_obj("maps_basic.o");
    let e = rel_entry(&b, "tc", 0);
    let license = symbol(&b, "LICENSE");
    let symtab = section(&b, ".symtab");
    let idx = ((license - symtab.offset) / 24) as u64;
    put_u64(&mut b, e + 8, (idx << 32) | 1);
    match err(&b) {
        ObjectError::RelocationTarget {
            section,
            symbol,
            problem,
            ..
        } => {
            assert_eq!((section.as_str(), symbol.as_str()), ("tc", "LICENSE"));
            assert!(problem.contains("license"), "{problem}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn unknown_legacy_map_type() {
    let mut b = read_obj("legacy_maps_nobtf.o");
    let maps = section(&b, "maps");
    let sym = symbol(&b, "proto_count");
    let value = get_u64(&b, sym + 8) as usize;
    put_u32(&mut b, maps.offset + value, 99);
    assert_eq!(
        err(&b),
        ObjectError::UnknownMapType {
            map: "proto_count".into(),
            map_type: 99
        }
    );
}

#[test]
fn legacy_map_definition_outside_section() {
    let mut b = read_obj("legacy_maps_nobtf.o");
    let sym = symbol(&b, "seen");
    put_u64(&mut b, sym + 16, 4096); // st_size
    assert!(matches!(err(&b), ObjectError::MapDefinition { map, .. } if map == "seen"));
}

#[test]
fn btf_maps_without_btf() {
    let mut b = read_obj("maps_basic.o");
    let btf = section(&b, ".BTF");
    assert_eq!(&b[btf.name_off..btf.name_off + 5], b".BTF\0");
    b[btf.name_off + 1] = b'X';
    assert_eq!(err(&b), ObjectError::MapsWithoutBtf);
}

#[test]
fn malformed_btf() {
    let orig = read_obj("xdp_firewall.o");
    let btf = section(&orig, ".BTF");
    let types = btf.offset + 24;

    let mut b = orig.clone();
    put_u16(&mut b, btf.offset, 0x1234);
    assert_eq!(err(&b), ObjectError::Btf(BtfError::BadMagic(0x1234)));

    // type [1] (a PTR) points at a type id that does not exist
    let mut b = orig.clone();
    assert_eq!(get_u32(&b, types + 4) >> 24, 2, "type [1] is a pointer");
    put_u32(&mut b, types + 8, 0xffff);
    assert!(matches!(
        err(&b),
        ObjectError::Btf(BtfError::BadTypeId {
            from: 1,
            to: 0xffff,
            ..
        })
    ));

    // type [1] becomes `const` of itself: a loop
    let mut b = orig.clone();
    put_u32(&mut b, types + 4, 10 << 24);
    put_u32(&mut b, types + 8, 1);
    assert_eq!(err(&b), ObjectError::Btf(BtfError::TypeLoop(1)));

    // unknown kind
    let mut b = orig.clone();
    put_u32(&mut b, types + 4, 31 << 24);
    assert_eq!(
        err(&b),
        ObjectError::Btf(BtfError::UnknownKind { id: 1, kind: 31 })
    );

    // string section length beyond the section
    let mut b = orig.clone();
    put_u32(&mut b, btf.offset + 20, 0x7fff_0000);
    assert!(matches!(err(&b), ObjectError::Btf(BtfError::BadHeader(_))));

    // name offset out of the string table
    let mut b = orig.clone();
    let strlen = get_u32(&b, btf.offset + 20);
    put_u32(&mut b, types, strlen + 10);
    assert!(matches!(
        err(&b),
        ObjectError::Btf(BtfError::BadStringOffset { .. })
    ));

    // .BTF.ext with a bad magic
    let mut b = orig.clone();
    let ext = section(&b, ".BTF.ext");
    put_u16(&mut b, ext.offset, 0);
    assert!(matches!(err(&b), ObjectError::BtfExt(BtfError::Ext(_))));

    // .BTF.ext func_info length beyond the section
    let mut b = orig;
    put_u32(&mut b, ext.offset + 12, 0x00ff_ffff);
    assert!(matches!(err(&b), ObjectError::BtfExt(_)));
}

#[test]
fn call_into_the_middle_of_a_function() {
    let mut b = read_obj("subprogs.o");
    let tc = section(&b, "tc");
    // prog_a instruction 3: `call` relocated against .text (imm 6 -> triple)
    let at = tc.offset + 3 * 8;
    assert_eq!(b[at], 0x85);
    put_u32(&mut b, at + 4, 7);
    match err(&b) {
        ObjectError::BadCall {
            section,
            insn,
            problem,
            ..
        } => {
            assert_eq!((section.as_str(), insn), ("tc", 3));
            assert!(
                problem.contains("lands inside function triple"),
                "{problem}"
            );
        }
        other => panic!("{other}"),
    }
    // A call far outside any function.
    put_u32(&mut b, at + 4, 5000);
    assert!(
        matches!(err(&b), ObjectError::BadCall { problem, .. } if problem.contains("not inside any function"))
    );
}

#[test]
fn misaligned_function_symbol() {
    let mut b = read_obj("subprogs.o");
    let sym = symbol(&b, "prog_b");
    put_u64(&mut b, sym + 8, 3);
    assert!(matches!(
        err(&b),
        ObjectError::Function { name, section, .. } if name == "prog_b" && section == "tc"
    ));
    let mut b = read_obj("subprogs.o");
    let sym = symbol(&b, "prog_b");
    put_u64(&mut b, sym + 16, 8 * 1000);
    assert!(matches!(err(&b), ObjectError::Function { name, .. } if name == "prog_b"));
}

#[test]
fn code_size_not_instruction_multiple() {
    let mut b = read_obj("socket_filter.o");
    let s = section(&b, "socket");
    put_u64(&mut b, s.hdr + 32, (s.size - 4) as u64);
    assert!(matches!(err(&b), ObjectError::Section { section, .. } if section == "socket"));
}

#[test]
fn invalid_instruction_after_linking() {
    let mut b = read_obj("socket_filter.o");
    let s = section(&b, "socket");
    b[s.offset] = 0xff;
    match err(&b) {
        ObjectError::InvalidProgram { program, error } => {
            assert_eq!(program, "socket_filter");
            assert_eq!(error.index(), Some(0));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn core_relocation_mismatch() {
    let orig = read_obj("core_local.o");
    let obj = Object::parse(&orig).unwrap();
    let p = obj.program("core_read").unwrap();
    let c = p
        .core_relocations
        .iter()
        .find(|c| c.access == "0:1")
        .unwrap();
    let tc = section(&orig, "tc");
    let at = tc.offset + c.insn * 8;
    let mut b = orig.clone();
    if b[at] & 0x07 == 0x07 || b[at] & 0x07 == 0x04 {
        put_u32(&mut b, at + 4, 9); // ALU immediate
    } else {
        put_u16(&mut b, at + 2, 9); // memory offset
    }
    match err(&b) {
        ObjectError::Core {
            program,
            insn,
            access,
            problem,
            ..
        } => {
            assert_eq!(
                (program.as_str(), insn, access.as_str()),
                ("core_read", c.insn, "0:1")
            );
            assert!(problem.contains("holds 9"), "{problem}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn messages_name_the_culprit() {
    let e = ObjectError::RelocationInsn {
        section: "xdp".into(),
        insn: 12,
        code: 0xbf,
        symbol: "fw_rules".into(),
    };
    assert_eq!(
        e.to_string(),
        "section xdp, instruction 12: relocation against symbol fw_rules on opcode 0xbf, which is neither lddw nor call"
    );
}

#[test]
fn extern_call_that_is_not_a_ksym() {
    let mut b = read_obj("kfunc_obj.o");
    let sym = symbol(&b, "cordon_test_acquire");
    let strtab = section(&b, ".strtab");
    let name = strtab.offset + get_u32(&b, sym) as usize;
    let last = name + "cordon_test_acquire".len() - 1;
    b[last] = b'X'; // ELF name no longer matches the BTF .ksyms entry
    match err(&b) {
        ObjectError::Unresolved {
            section,
            symbol,
            problem,
            ..
        } => {
            assert_eq!(
                (section.as_str(), symbol.as_str()),
                ("tc", "cordon_test_acquirX")
            );
            assert!(problem.contains("not a kfunc"), "{problem}");
        }
        other => panic!("{other}"),
    }
}
