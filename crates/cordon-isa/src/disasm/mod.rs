//! Disassembly in Linux's verifier-log syntax (the format of `kernel/bpf/disasm.c`)
//! and in the conformance suite's assembler syntax.
//!
//! Linux syntax, one example per instruction class:
//!
//! ```text
//! r0 = 1                 w0 += w1              r1 s>>= 3        r0 = -r0
//! r0 = (s16)r1           r0 = be16 r0          r0 = bswap64 r0
//! r0 = 0x1122334455667788 ll                   r1 = map[fd:3]   r1 = map[fd:3][0]+16
//! r1 = *(u32 *)(r1 +0)   r1 = *(s8 *)(r2 +1)   *(u64 *)(r10 -8) = r1   *(u8 *)(r10 -1) = 7
//! r0 = *(u8 *)skb[23]    r0 = *(u16 *)skb[r3 + 4]
//! lock *(u32 *)(r10 -8) += r1                  r1 = atomic64_fetch_add((u64 *)(r10 -8), r1)
//! r1 = atomic_xchg((u32 *)(r10 -4), r1)        r0 = atomic64_cmpxchg((u64 *)(r10 -8), r0, r1)
//! goto pc+5              gotol pc+70000        if r2 > 0x10 goto pc+3   if w2 s< w3 goto pc-2
//! call bpf_map_lookup_elem#1   call pc+3       call kernel-function#1234   callx r2   exit
//! ```
//!
//! Everything printed here is accepted by [`crate::assemble_linux`] and assembles back
//! to the same bytes (unless a name resolver in [`DisasmOptions`] replaced a name).

pub mod helpers;
mod suite;
mod syntax;

pub use helpers::{HELPER_NAMES, helper_id, helper_name};
pub use suite::{disassemble_suite, format_insn_suite, format_kind_suite};

use crate::insn::{AluOp, AtomicOp, Insn, JmpCond, Kind, Operand, Problem, Size};
use crate::opcode::*;
use crate::program::DecodeError;
use std::fmt::Write as _;
use syntax::{Syntax, format_insn_in, listing, render};

/// Optional knobs for [`disassemble_with`].
#[derive(Default, Clone, Copy)]
pub struct DisasmOptions<'a> {
    /// Name of helper `id`; consulted before Linux's helper table. The printed form
    /// stays `call NAME#ID`.
    pub helper_name: Option<&'a dyn Fn(i32) -> Option<String>>,
    /// Name of the kfunc with BTF id `btf_id` in BTF object `off`; printed as
    /// `call NAME#ID` (as Linux does), instead of `call kernel-function#ID`.
    pub kfunc_name: Option<&'a dyn Fn(i32, i16) -> Option<String>>,
    /// Append `; target N` (the absolute instruction index) to local calls and
    /// to `lddw` of a function address.
    pub annotate_calls: bool,
}

impl std::fmt::Debug for DisasmOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisasmOptions")
            .field("helper_name", &self.helper_name.is_some())
            .field("kfunc_name", &self.kfunc_name.is_some())
            .field("annotate_calls", &self.annotate_calls)
            .finish()
    }
}

/// Print one instruction in Linux's verifier-log syntax (without index and opcode).
///
/// [`Kind::Ja`] is printed as `goto` when its offset fits 16 bits and as `gotol`
/// otherwise; [`format_insn`] knows the actual encoding.
pub fn format_kind(kind: &Kind) -> String {
    render(kind, false, &Linux::plain())
}

/// Classify and print one slot (`next` is the following slot, needed by `lddw`).
pub fn format_insn(insn: Insn, next: Option<Insn>) -> Result<String, Problem> {
    format_insn_in(insn, next, &Linux::plain())
}

/// Disassemble a sequence of slots into verifier-log lines `PC: (OP) TEXT`, e.g.
/// `0: (b7) r0 = 1`. Every slot is validated on its own (jump targets are not
/// checked, so fragments can be printed); the second half of an `lddw` gets no line.
pub fn disassemble(insns: &[Insn]) -> Result<String, DecodeError> {
    disassemble_with(insns, &DisasmOptions::default())
}

/// [`disassemble`] with name resolvers and call annotations.
pub fn disassemble_with(insns: &[Insn], opts: &DisasmOptions<'_>) -> Result<String, DecodeError> {
    listing(
        insns,
        |pc| Linux { opts, pc: Some(pc) },
        |out, pc, insn, text| {
            let _ = writeln!(out, "{pc}: ({:02x}) {text}", insn.code);
        },
    )
}

/// The C type Linux prints for a load or store.
fn ctype(size: Size, signed: bool) -> &'static str {
    match (size, signed) {
        (Size::B, true) => "s8",
        (Size::H, true) => "s16",
        (Size::W, true) => "s32",
        (s, _) => s.ctype(),
    }
}

/// The operator Linux's disassembler prints for an ALU operation
/// (`+=`, `s>>=`, `neg`, `=` for moves); the verifier log uses the same
/// text, e.g. in "pointer arithmetic with <op> operator".
pub fn alu_symbol(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div => "/=",
        AluOp::SDiv => "s/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Neg => "neg",
        AluOp::Mod => "%=",
        AluOp::SMod => "s%=",
        AluOp::Xor => "^=",
        AluOp::Mov | AluOp::MovSx(_) => "=",
        AluOp::Arsh => "s>>=",
    }
}

/// Linux's verifier-log syntax, with the name resolvers of `opts`; `pc`
/// (when printing a listing) for the `; target N` annotations.
struct Linux<'o, 'a> {
    opts: &'o DisasmOptions<'a>,
    pc: Option<usize>,
}

impl Linux<'static, 'static> {
    /// No resolvers, no annotations.
    fn plain() -> Self {
        const PLAIN: DisasmOptions<'static> = DisasmOptions {
            helper_name: None,
            kfunc_name: None,
            annotate_calls: false,
        };
        Linux {
            opts: &PLAIN,
            pc: None,
        }
    }
}

impl Linux<'_, '_> {
    /// Appends `; target N` (absolute index of pc + 1 + rel) when annotating.
    fn annotate(&self, s: &mut String, rel: i32) {
        if self.opts.annotate_calls
            && let Some(pc) = self.pc
        {
            let _ = write!(s, " ; target {}", pc as i64 + 1 + rel as i64);
        }
    }
}

/// `r` for 64-bit operations, `w` for 32-bit ones.
fn reg_prefix(wide: bool) -> char {
    if wide { 'r' } else { 'w' }
}

impl Syntax for Linux<'_, '_> {
    fn alu(&self, wide: bool, op: AluOp, dst: u8, src: Operand) -> String {
        let p = reg_prefix(wide);
        match (op, src) {
            (AluOp::Neg, _) => format!("{p}{dst} = -{p}{dst}"),
            (AluOp::MovSx(bits), Operand::Reg(s)) => format!("{p}{dst} = (s{bits}){p}{s}"),
            (_, Operand::Reg(s)) => format!("{p}{dst} {} {p}{s}", alu_symbol(op)),
            (_, Operand::Imm(i)) => format!("{p}{dst} {} {i}", alu_symbol(op)),
        }
    }

    fn endian(&self, name: &str, bits: u8, dst: u8) -> String {
        format!("r{dst} = {name}{bits} r{dst}")
    }

    fn ja(&self, off: i32, long: bool) -> String {
        if long {
            format!("gotol pc{off:+}")
        } else {
            format!("goto pc{off:+}")
        }
    }

    fn may_goto(&self, off: i16) -> String {
        format!("may_goto pc{off:+}")
    }

    fn jcond(&self, wide: bool, cond: JmpCond, dst: u8, src: Operand, off: i16) -> String {
        let p = reg_prefix(wide);
        let sym = cond.symbol();
        match src {
            Operand::Reg(s) => format!("if {p}{dst} {sym} {p}{s} goto pc{off:+}"),
            Operand::Imm(i) => format!("if {p}{dst} {sym} {:#x} goto pc{off:+}", i as u32),
        }
    }

    fn call_helper(&self, id: i32) -> String {
        let name = self
            .opts
            .helper_name
            .and_then(|f| f(id))
            .or_else(|| helper_name(id).map(str::to_string))
            .unwrap_or_else(|| "unknown".to_string());
        format!("call {name}#{id}")
    }

    fn call_local(&self, rel: i32) -> String {
        let mut s = format!("call pc{rel:+}");
        self.annotate(&mut s, rel);
        s
    }

    fn call_kfunc(&self, btf_id: i32, off: i16) -> String {
        let name = self
            .opts
            .kfunc_name
            .and_then(|f| f(btf_id, off))
            .unwrap_or_else(|| "kernel-function".to_string());
        if off == 0 {
            format!("call {name}#{btf_id}")
        } else {
            format!("call {name}#{btf_id} off:{off}")
        }
    }

    fn callx(&self, reg: u8) -> String {
        format!("callx r{reg}")
    }

    fn lddw(&self, dst: u8, pseudo: u8, imm: i32, next_imm: i32) -> String {
        let next = next_imm as u32;
        match pseudo {
            PSEUDO_MAP_FD => format!("r{dst} = map[fd:{imm}]"),
            PSEUDO_MAP_VALUE => format!("r{dst} = map[fd:{imm}][0]+{next}"),
            PSEUDO_MAP_IDX => format!("r{dst} = map[idx:{imm}]"),
            PSEUDO_MAP_IDX_VALUE => format!("r{dst} = map[idx:{imm}][0]+{next}"),
            PSEUDO_BTF_ID if next_imm == 0 => format!("r{dst} = btf_id[{imm}]"),
            PSEUDO_BTF_ID => format!("r{dst} = btf_id[{imm}][fd:{next_imm}]"),
            PSEUDO_FUNC => {
                let mut s = if next_imm == 0 {
                    format!("r{dst} = func[pc{imm:+}]")
                } else {
                    format!("r{dst} = func[pc{imm:+}][{next_imm}]")
                };
                self.annotate(&mut s, imm);
                s
            }
            _ => format!("r{dst} = {:#x} ll", Kind::lddw_value(imm, next_imm)),
        }
    }

    fn ld_abs(&self, size: Size, imm: i32) -> String {
        format!("r0 = *({} *)skb[{imm}]", size.ctype())
    }

    fn ld_ind(&self, size: Size, src: u8, imm: i32) -> String {
        format!("r0 = *({} *)skb[r{src} + {imm}]", size.ctype())
    }

    fn ldx(&self, size: Size, sign_extend: bool, dst: u8, src: u8, off: i16) -> String {
        format!("r{dst} = *({} *)(r{src} {off:+})", ctype(size, sign_extend))
    }

    fn st(&self, size: Size, dst: u8, off: i16, imm: i32) -> String {
        format!("*({} *)(r{dst} {off:+}) = {imm}", size.ctype())
    }

    fn stx(&self, size: Size, dst: u8, src: u8, off: i16) -> String {
        format!("*({} *)(r{dst} {off:+}) = r{src}", size.ctype())
    }

    fn atomic(
        &self,
        size: Size,
        op: AtomicOp,
        name: &str,
        fetch: bool,
        dst: u8,
        src: u8,
        off: i16,
    ) -> String {
        let t = size.ctype();
        let w = if size == Size::DW { "64" } else { "" };
        match op {
            AtomicOp::Cmpxchg => {
                format!("r0 = atomic{w}_cmpxchg(({t} *)(r{dst} {off:+}), r0, r{src})")
            }
            AtomicOp::Xchg => format!("r{src} = atomic{w}_xchg(({t} *)(r{dst} {off:+}), r{src})"),
            _ if fetch => {
                format!("r{src} = atomic{w}_fetch_{name}(({t} *)(r{dst} {off:+}), r{src})")
            }
            _ => {
                let sym = match op {
                    AtomicOp::Add => "+=",
                    AtomicOp::Or => "|=",
                    AtomicOp::And => "&=",
                    _ => "^=",
                };
                format!("lock *({t} *)(r{dst} {off:+}) {sym} r{src}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::JmpCond;

    fn k(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> String {
        format_insn(Insn::new(code, dst, src, off, imm), Some(Insn::default())).unwrap()
    }

    #[test]
    fn alu() {
        assert_eq!(k(0xb7, 0, 0, 0, 1), "r0 = 1");
        assert_eq!(k(0xbc, 0, 1, 0, 0), "w0 = w1");
        assert_eq!(k(0x04, 0, 0, 0, -3), "w0 += -3");
        assert_eq!(k(0x87, 0, 0, 0, 0), "r0 = -r0");
        assert_eq!(k(0x84, 3, 0, 0, 0), "w3 = -w3");
        assert_eq!(k(0xc7, 1, 0, 0, 3), "r1 s>>= 3");
        assert_eq!(k(0x3f, 1, 2, 1, 0), "r1 s/= r2");
        assert_eq!(k(0x9c, 1, 2, 1, 0), "w1 s%= w2");
        assert_eq!(k(0xbf, 0, 1, 16, 0), "r0 = (s16)r1");
        assert_eq!(k(0xbc, 0, 1, 8, 0), "w0 = (s8)w1");
        assert_eq!(k(0xdc, 0, 0, 0, 16), "r0 = be16 r0");
        assert_eq!(k(0xd4, 0, 0, 0, 32), "r0 = le32 r0");
        assert_eq!(k(0xd7, 0, 0, 0, 64), "r0 = bswap64 r0");
    }

    #[test]
    fn memory() {
        assert_eq!(k(0x61, 1, 1, 0, 0), "r1 = *(u32 *)(r1 +0)");
        assert_eq!(k(0x91, 1, 2, 1, 0), "r1 = *(s8 *)(r2 +1)");
        assert_eq!(k(0x7b, 10, 1, -8, 0), "*(u64 *)(r10 -8) = r1");
        assert_eq!(k(0x72, 10, 0, -1, 7), "*(u8 *)(r10 -1) = 7");
        assert_eq!(k(0x30, 0, 0, 0, 23), "r0 = *(u8 *)skb[23]");
        assert_eq!(k(0x48, 0, 3, 0, 4), "r0 = *(u16 *)skb[r3 + 4]");
        assert_eq!(k(0xc3, 10, 1, -8, 0), "lock *(u32 *)(r10 -8) += r1");
        assert_eq!(
            k(0xdb, 10, 1, -8, 1),
            "r1 = atomic64_fetch_add((u64 *)(r10 -8), r1)"
        );
        assert_eq!(
            k(0xc3, 10, 1, -8, 0xf1),
            "r0 = atomic_cmpxchg((u32 *)(r10 -8), r0, r1)"
        );
        assert_eq!(
            k(0xdb, 10, 2, -8, 0xe1),
            "r2 = atomic64_xchg((u64 *)(r10 -8), r2)"
        );
        assert_eq!(
            format_insn(
                Insn::new(0x18, 0, 0, 0, 0x55667788),
                Some(Insn::new(0, 0, 0, 0, 0x11223344))
            )
            .unwrap(),
            "r0 = 0x1122334455667788 ll"
        );
        assert_eq!(
            format_insn(Insn::new(0x18, 1, 1, 0, 3), Some(Insn::default())).unwrap(),
            "r1 = map[fd:3]"
        );
        assert_eq!(
            format_insn(Insn::new(0x18, 1, 2, 0, 3), Some(Insn::new(0, 0, 0, 0, 16))).unwrap(),
            "r1 = map[fd:3][0]+16"
        );
    }

    #[test]
    fn jumps() {
        assert_eq!(k(0x25, 2, 0, 3, 0x10), "if r2 > 0x10 goto pc+3");
        assert_eq!(k(0xce, 2, 3, -2, 0), "if w2 s< w3 goto pc-2");
        assert_eq!(k(0x15, 2, 0, 0, -1), "if r2 == 0xffffffff goto pc+0");
        assert_eq!(k(0x05, 0, 0, 5, 0), "goto pc+5");
        assert_eq!(k(0xe5, 0, 0, 3, 0), "may_goto pc+3");
        assert_eq!(k(0xe5, 0, 0, -1, 0), "may_goto pc-1");
        assert_eq!(k(0x06, 0, 0, 0, 70000), "gotol pc+70000");
        assert_eq!(k(0x06, 0, 0, 0, 1), "gotol pc+1");
        assert_eq!(format_kind(&Kind::Ja { off: 70000 }), "gotol pc+70000");
        assert_eq!(k(0x85, 0, 0, 0, 1), "call bpf_map_lookup_elem#1");
        assert_eq!(k(0x85, 0, 0, 0, 999), "call unknown#999");
        assert_eq!(k(0x85, 0, 1, 0, 3), "call pc+3");
        assert_eq!(k(0x85, 0, 2, 0, 1234), "call kernel-function#1234");
        assert_eq!(k(0x8d, 2, 0, 0, 0), "callx r2");
        assert_eq!(k(0x95, 0, 0, 0, 0), "exit");
        assert_eq!(
            format_kind(&Kind::Jcond {
                wide: true,
                cond: JmpCond::Set,
                dst: 1,
                src: Operand::Reg(2),
                off: -1
            }),
            "if r1 & r2 goto pc-1"
        );
    }

    #[test]
    fn listing() {
        let insns = [
            Insn::new(0xb7, 0, 0, 0, 1),
            Insn::new(0x18, 1, 0, 0, 1),
            Insn::new(0, 0, 0, 0, 0),
            Insn::new(0x85, 0, 1, 0, 1),
            Insn::new(0x95, 0, 0, 0, 0),
            Insn::new(0x85, 0, 5, 0, 0),
        ];
        let e = disassemble(&insns).unwrap_err();
        assert_eq!(e.index(), Some(5));
        let text = disassemble(&insns[..5]).unwrap();
        assert_eq!(
            text,
            "0: (b7) r0 = 1\n1: (18) r1 = 0x1 ll\n3: (85) call pc+1\n4: (95) exit\n"
        );
        let helper = |id: i32| (id == 1).then(|| "my_helper".to_string());
        let opts = DisasmOptions {
            helper_name: Some(&helper),
            annotate_calls: true,
            ..Default::default()
        };
        let text = disassemble_with(
            &[
                Insn::new(0x85, 0, 0, 0, 1),
                Insn::new(0x85, 0, 1, 0, -2),
                Insn::new(0x85, 0, 0, 0, 2),
            ],
            &opts,
        )
        .unwrap();
        assert_eq!(
            text,
            "0: (85) call my_helper#1\n1: (85) call pc-2 ; target 0\n2: (85) call bpf_map_update_elem#2\n"
        );
    }
}
