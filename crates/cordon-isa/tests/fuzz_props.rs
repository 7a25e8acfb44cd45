//! Property tests: garbage never panics the decoder, the assemblers or the `.data`
//! parser; every valid instruction survives encode → decode → print → assemble in
//! both syntaxes.

use cordon_isa::asm::encode_into;
use cordon_isa::disasm::{disassemble_suite, format_insn, format_insn_suite};
use cordon_isa::opcode::*;
use cordon_isa::{
    AluOp, AtomicOp, EndianOp, Insn, JmpCond, Kind, Operand, Program, Size, assemble,
    assemble_linux, classify, datafile, disassemble, format_kind, format_kind_suite,
};
use proptest::prelude::*;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 3000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------- garbage in ----------

/// Text made of pieces of both syntaxes, so the parsers get past their first token.
fn token_soup() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "mov",
        "mov32",
        "add",
        "lddw",
        "ldxw",
        "stxdw",
        "stw",
        "ja",
        "ja32",
        "jeq",
        "jne32",
        "call",
        "local",
        "runtime",
        "helper",
        "exit",
        "lock",
        "fetch",
        "xchg",
        "cmpxchg32",
        "be16",
        "bswap64",
        "movsx832",
        "neg",
        "ldabsb",
        "ldindh",
        "%r0",
        "%r1",
        "%r10",
        "%r11",
        "%",
        "[",
        "]",
        "+",
        "-",
        ",",
        ":",
        "#",
        ";",
        "//",
        " ",
        " ",
        "\n",
        "0x",
        "0",
        "1",
        "-1",
        "2147483648",
        "0xffffffff",
        "0x10000",
        "18446744073709551616",
        "L1",
        "L1:",
        "exit:",
        "r0",
        "w1",
        "r10",
        "r11",
        "=",
        "+=",
        "s>>=",
        "s<",
        "==",
        "&",
        "*",
        "(",
        ")",
        "u32",
        "u64",
        "s8",
        "ll",
        "if",
        "goto",
        "gotol",
        "pc",
        "pc+1",
        "pc-1",
        "map",
        "fd",
        "idx",
        "btf_id",
        "func",
        "skb",
        "atomic_fetch_add",
        "atomic64_cmpxchg",
        "atomic_xchg",
        "kernel-function",
        "bpf_map_lookup_elem",
        "unknown",
        "callx",
        "off",
        "12:",
        "(b7)",
        "é",
        "\t",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = Program::from_bytes(&bytes) {
            // A valid program prints and re-assembles in both syntaxes.
            let text = disassemble(p.insns()).unwrap();
            prop_assert_eq!(&assemble_linux(&text).unwrap(), p.insns());
            let text = disassemble_suite(p.insns()).unwrap();
            prop_assert_eq!(&assemble(&text).unwrap(), p.insns());
        }
    }

    #[test]
    fn disassembler_never_panics(words in prop::collection::vec(any::<u64>(), 0..20)) {
        let insns: Vec<Insn> = words.into_iter().map(Insn::from_u64).collect();
        let _ = disassemble(&insns);
        let _ = disassemble_suite(&insns);
    }

    #[test]
    fn assemblers_never_panic_on_arbitrary_text(text in ".{0,200}") {
        let _ = assemble(&text);
        let _ = assemble_linux(&text);
        let _ = datafile::parse(&text);
    }

    #[test]
    fn assemblers_never_panic_on_token_soup(text in token_soup()) {
        if let Ok(insns) = assemble(&text) {
            prop_assert!(!insns.is_empty());
        }
        if let Ok(insns) = assemble_linux(&text) {
            prop_assert!(!insns.is_empty());
        }
        let _ = datafile::parse(&format!("-- asm\n{text}\n-- raw\n{text}\n-- mem\n{text}\n-- result\n{text}"));
    }
}

// ---------- valid instructions round-trip ----------

fn size() -> impl Strategy<Value = Size> {
    prop_oneof![Just(Size::B), Just(Size::H), Just(Size::W), Just(Size::DW)]
}

fn writable() -> impl Strategy<Value = u8> {
    0u8..=9
}

fn any_reg() -> impl Strategy<Value = u8> {
    0u8..=10
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        any_reg().prop_map(Operand::Reg),
        any::<i32>().prop_map(Operand::Imm)
    ]
}

fn alu() -> impl Strategy<Value = Kind> {
    let op = prop::sample::select(vec![
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::SDiv,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Neg,
        AluOp::Mod,
        AluOp::SMod,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::MovSx(8),
        AluOp::MovSx(16),
        AluOp::MovSx(32),
        AluOp::Arsh,
    ]);
    (any::<bool>(), op, writable(), operand(), any_reg()).prop_map(|(wide, op, dst, src, r)| {
        let (wide, src) = match op {
            AluOp::Neg => (wide, Operand::Imm(0)),
            AluOp::MovSx(32) => (true, Operand::Reg(r)),
            AluOp::MovSx(_) => (wide, Operand::Reg(r)),
            _ => (wide, src),
        };
        Kind::Alu { wide, op, dst, src }
    })
}

fn jumps() -> impl Strategy<Value = Kind> {
    let cond = prop::sample::select(vec![
        JmpCond::Eq,
        JmpCond::Gt,
        JmpCond::Ge,
        JmpCond::Set,
        JmpCond::Ne,
        JmpCond::Sgt,
        JmpCond::Sge,
        JmpCond::Lt,
        JmpCond::Le,
        JmpCond::Slt,
        JmpCond::Sle,
    ]);
    prop_oneof![
        any::<i32>().prop_map(|off| Kind::Ja { off }),
        any::<i16>().prop_map(|off| Kind::Ja { off: off as i32 }),
        (any::<bool>(), cond, any_reg(), operand(), any::<i16>()).prop_map(
            |(wide, cond, dst, src, off)| Kind::Jcond {
                wide,
                cond,
                dst,
                src,
                off
            }
        ),
        any::<i16>().prop_map(|off| Kind::MayGoto { off }),
        prop_oneof![any::<i32>(), 0i32..=211].prop_map(|id| Kind::CallHelper { id }),
        any::<i32>().prop_map(|rel| Kind::CallLocal { rel }),
        (any::<i32>(), any::<i16>()).prop_map(|(btf_id, off)| Kind::CallKfunc { btf_id, off }),
        any_reg().prop_map(|reg| Kind::Callx { reg }),
        Just(Kind::Exit),
    ]
}

fn loads_stores() -> impl Strategy<Value = Kind> {
    let small = prop_oneof![Just(Size::B), Just(Size::H), Just(Size::W)];
    let atomic = prop::sample::select(vec![
        AtomicOp::Add,
        AtomicOp::Or,
        AtomicOp::And,
        AtomicOp::Xor,
        AtomicOp::Xchg,
        AtomicOp::Cmpxchg,
    ]);
    prop_oneof![
        (writable(), 0u8..=6, any::<i32>(), any::<i32>()).prop_map(|(dst, pseudo, imm, next)| {
            let next_imm = if matches!(pseudo, PSEUDO_MAP_FD | PSEUDO_MAP_IDX) {
                0
            } else {
                next
            };
            Kind::Lddw {
                dst,
                pseudo,
                imm,
                next_imm,
            }
        }),
        (small.clone(), any::<i32>()).prop_map(|(size, imm)| Kind::LdAbs { size, imm }),
        (small.clone(), any_reg(), any::<i32>()).prop_map(|(size, src, imm)| Kind::LdInd {
            size,
            src,
            imm
        }),
        (size(), any::<bool>(), writable(), any_reg(), any::<i16>()).prop_map(
            |(size, sx, dst, src, off)| Kind::Ldx {
                size,
                sign_extend: sx && size != Size::DW,
                dst,
                src,
                off
            }
        ),
        (size(), any_reg(), any::<i16>(), any::<i32>()).prop_map(|(size, dst, off, imm)| {
            Kind::St {
                size,
                dst,
                off,
                imm,
            }
        }),
        (size(), any_reg(), any_reg(), any::<i16>()).prop_map(|(size, dst, src, off)| {
            Kind::Stx {
                size,
                dst,
                src,
                off,
            }
        }),
        (
            any::<bool>(),
            atomic,
            any::<bool>(),
            any_reg(),
            writable(),
            any::<i16>()
        )
            .prop_map(|(dw, op, fetch, dst, src, off)| Kind::Atomic {
                size: if dw { Size::DW } else { Size::W },
                op,
                fetch: fetch || matches!(op, AtomicOp::Xchg | AtomicOp::Cmpxchg),
                dst,
                src,
                off,
            }),
    ]
}

fn endian() -> impl Strategy<Value = Kind> {
    (
        prop_oneof![Just(EndianOp::Le), Just(EndianOp::Be), Just(EndianOp::Swap)],
        prop_oneof![Just(16u8), Just(32u8), Just(64u8)],
        writable(),
    )
        .prop_map(|(op, bits, dst)| Kind::Endian { op, bits, dst })
}

fn valid_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![alu(), endian(), jumps(), loads_stores()]
}

fn slots(a: Insn, b: Option<Insn>) -> Vec<Insn> {
    let mut v = vec![a];
    v.extend(b);
    v
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn valid_instructions_round_trip(kind in valid_kind(), ja32 in any::<bool>()) {
        let (a, b) = encode_into(&kind, ja32);
        // encode → decode
        prop_assert_eq!(classify(a, b), Ok(kind));
        let expected = slots(a, b);
        let bytes = cordon_isa::insn::to_bytes(&expected);
        let decoded: Vec<Insn> = bytes
            .chunks_exact(8)
            .map(|c| Insn::from_bytes(c.try_into().unwrap()))
            .collect();
        prop_assert_eq!(&decoded, &expected);
        // → Linux syntax → assemble_linux
        let text = format_insn(a, b).unwrap();
        let back = assemble_linux(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&back, &expected, "{}", text);
        // → suite syntax → assemble
        let text = format_insn_suite(a, b).unwrap();
        let back = assemble(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&back, &expected, "{}", text);
        // The Kind-only printers agree with the canonical encoding.
        let canonical = cordon_isa::encode(&kind);
        let canonical = slots(canonical.0, canonical.1);
        let text = format_kind(&kind);
        prop_assert_eq!(&assemble_linux(&text).unwrap(), &canonical, "{}", text);
        let text = format_kind_suite(&kind);
        prop_assert_eq!(&assemble(&text).unwrap(), &canonical, "{}", text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..cfg() })]

    #[test]
    fn instruction_sequences_round_trip(
        kinds in prop::collection::vec((valid_kind(), any::<bool>()), 1..12)
    ) {
        let mut insns = Vec::new();
        for (kind, ja32) in &kinds {
            let (a, b) = encode_into(kind, *ja32);
            insns.extend(slots(a, b));
        }
        let listing = disassemble(&insns).unwrap();
        let back = assemble_linux(&listing)
            .map_err(|e| TestCaseError::fail(format!("{listing}: {e}")))?;
        prop_assert_eq!(&back, &insns, "{}", listing);
        let text = disassemble_suite(&insns).unwrap();
        let back = assemble(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&back, &insns, "{}", text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..cfg() })]

    /// Corrupting bytes of a valid program never panics the decoder, and whatever
    /// still decodes prints and re-assembles to the same bytes.
    #[test]
    fn corrupted_programs(
        kinds in prop::collection::vec((valid_kind(), any::<bool>()), 1..8),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut insns = Vec::new();
        for (kind, ja32) in &kinds {
            let (a, b) = encode_into(kind, *ja32);
            insns.extend(slots(a, b));
        }
        let mut bytes = cordon_isa::insn::to_bytes(&insns);
        for (at, v) in flips {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if let Ok(p) = Program::from_bytes(&bytes) {
            let listing = disassemble(p.insns()).unwrap();
            prop_assert_eq!(&assemble_linux(&listing).unwrap(), p.insns(), "{}", listing);
            let text = disassemble_suite(p.insns()).unwrap();
            prop_assert_eq!(&assemble(&text).unwrap(), p.insns(), "{}", text);
        }
        let split: Vec<Insn> = bytes
            .chunks_exact(8)
            .map(|c| Insn::from_bytes(c.try_into().unwrap()))
            .collect();
        if let Ok(listing) = disassemble(&split) {
            prop_assert_eq!(&assemble_linux(&listing).unwrap(), &split, "{}", listing);
        }
    }
}
