//! The Linux verifier-log / llvm-objdump assembly syntax.
//!
//! ```text
//! ; comment (also `// comment`; a line starting with `#` is a comment too)
//! r0 = 1                 w1 += w2            r1 s>>= 3          r0 = -r0
//! r0 = (s16)r1           r0 = be16 r0        r0 = bswap64 r0    r0 = 0x1122 ll
//! r1 = map[fd:3]         r1 = map[fd:3][0]+16   r1 = map[idx:0]  r1 = btf_id[7]  r1 = func[pc+4]
//! r1 = *(u32 *)(r1 +0)   r1 = *(s8 *)(r2 -1)    *(u64 *)(r10 -8) = r1   *(u32 *)(r10 -4) = 7
//! r0 = *(u8 *)skb[23]    r0 = *(u16 *)skb[r3 + 4]
//! lock *(u64 *)(r10 -8) += r1     r1 = atomic64_fetch_add((u64 *)(r10 -8), r1)
//! r1 = atomic_xchg((u32 *)(r10 -4), r1)      r0 = atomic_cmpxchg((u32 *)(r10 -4), r0, r1)
//! if r2 > 0x10 goto pc+3   if w2 s< w3 goto label   goto pc-2   gotol label
//! call 1   call bpf_map_lookup_elem#1   call bpf_loop   call pc+5   call label
//! call kernel-function#1234   callx r2   exit
//! label:
//! 12: (b7) r0 = 1        ; a verifier-log line: the index is ignored, the opcode is checked
//! ```
//!
//! 32-bit ALU operations and JMP32 comparisons are written with `wN` registers on
//! both sides; mixing `r` and `w` is an error. Immediates: decimal must fit `i32`;
//! hex may be up to `0xffffffff` (the 32-bit pattern) where the value is used as
//! 32 bits or printed that way by Linux (32-bit ALU, jumps), but only up to
//! `0x7fffffff` for 64-bit ALU operations and 64-bit stores, where the immediate
//! is sign-extended (write `r0 = 0xffffffff ll` for the 64-bit value).

use super::{AsmError, Builder, Field, Num, is_label_name, parse_num};
use crate::disasm::helpers::helper_id;
use crate::insn::Insn;
use crate::opcode::*;

/// Assemble text in Linux's verifier-log syntax (what [`crate::disasm::format_kind`]
/// and [`crate::disassemble`] print) into raw instruction slots.
pub fn assemble_linux(text: &str) -> Result<Vec<Insn>, AsmError> {
    let mut b = Builder::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim_start().starts_with('#') {
            continue;
        }
        let toks = lex(raw, line)?;
        if toks.is_empty() {
            continue;
        }
        let mut p = Parser {
            toks,
            i: 0,
            line,
            b: &mut b,
            lddw_prefix: false,
        };
        p.statement()?;
    }
    b.finish(false)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok<'a> {
    Ident(&'a str),
    Num(&'a str),
    Punct(&'static str),
}

impl std::fmt::Display for Tok<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Ident(s) | Tok::Num(s) => write!(f, "`{s}`"),
            Tok::Punct(s) => write!(f, "`{s}`"),
        }
    }
}

const PUNCTS: [&str; 35] = [
    "s>>=", "s<=", "s>=", "s/=", "s%=", "<<=", ">>=", "==", "!=", "<=", ">=", "+=", "-=", "*=",
    "/=", "|=", "&=", "%=", "^=", "s<", "s>", "<", ">", "=", "&", "(", ")", "*", "[", "]", ",",
    "+", "-", ":", "#",
];

fn lex(s: &str, line: usize) -> Result<Vec<Tok<'_>>, AsmError> {
    let mut toks = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    'outer: while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b';' || s[i..].starts_with("//") {
            break;
        }
        // Signed operators start with `s`: `s<`, `s>>=`, `s/=` ...
        let ident_start = c.is_ascii_alphabetic() || c == b'_' || c == b'.';
        if !ident_start
            || (c == b's' && matches!(bytes.get(i + 1), Some(b'<' | b'>' | b'/' | b'%')))
        {
            for p in PUNCTS {
                if s[i..].starts_with(p) {
                    toks.push(Tok::Punct(p));
                    i += p.len();
                    continue 'outer;
                }
            }
        }
        if ident_start {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'$'))
            {
                i += 1;
            }
            toks.push(Tok::Ident(&s[start..i]));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            toks.push(Tok::Num(&s[start..i]));
        } else {
            let ch = s[i..].chars().next().unwrap_or('?');
            return Err(AsmError::new(line, format!("unexpected character `{ch}`")));
        }
    }
    Ok(toks)
}

/// `rN` / `wN` with N in 0..=10.
fn reg_name(s: &str) -> Option<(bool, u8)> {
    let wide = match s.as_bytes().first()? {
        b'r' => true,
        b'w' => false,
        _ => return None,
    };
    let n = &s[1..];
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return None;
    }
    let r: u8 = n.parse().ok()?;
    (r <= 10).then_some((wide, r))
}

fn looks_like_reg(s: &str) -> bool {
    s.len() > 1 && s.starts_with(['r', 'w']) && s[1..].bytes().all(|b| b.is_ascii_digit())
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Reg {
    wide: bool,
    n: u8,
}

impl std::fmt::Display for Reg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", if self.wide { 'r' } else { 'w' }, self.n)
    }
}

enum Target<'a> {
    Rel(i64),
    Label(&'a str),
}

struct Parser<'a, 'b> {
    toks: Vec<Tok<'a>>,
    i: usize,
    line: usize,
    b: &'b mut Builder,
    /// The line carried a `(18)` opcode prefix: a bare constant is an `lddw`
    /// (Linux's verifier log prints `r1 = 0x...` without `ll`).
    lddw_prefix: bool,
}

/// Load/store type: size bits and signedness.
#[derive(Clone, Copy)]
struct Ty {
    size: u8,
    bytes: u8,
    signed: bool,
}

fn alu_assign_op(p: &str) -> Option<(u8, i16)> {
    Some(match p {
        "+=" => (ALU_ADD, 0),
        "-=" => (ALU_SUB, 0),
        "*=" => (ALU_MUL, 0),
        "/=" => (ALU_DIV, 0),
        "s/=" => (ALU_DIV, 1),
        "|=" => (ALU_OR, 0),
        "&=" => (ALU_AND, 0),
        "<<=" => (ALU_LSH, 0),
        ">>=" => (ALU_RSH, 0),
        "s>>=" => (ALU_ARSH, 0),
        "%=" => (ALU_MOD, 0),
        "s%=" => (ALU_MOD, 1),
        "^=" => (ALU_XOR, 0),
        _ => return None,
    })
}

fn jmp_op(p: &str) -> Option<u8> {
    Some(match p {
        "==" => JMP_JEQ,
        "!=" => JMP_JNE,
        ">" => JMP_JGT,
        ">=" => JMP_JGE,
        "<" => JMP_JLT,
        "<=" => JMP_JLE,
        "s>" => JMP_JSGT,
        "s>=" => JMP_JSGE,
        "s<" => JMP_JSLT,
        "s<=" => JMP_JSLE,
        "&" => JMP_JSET,
        _ => return None,
    })
}

impl<'a> Parser<'a, '_> {
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, AsmError> {
        Err(AsmError::new(self.line, msg))
    }

    fn peek(&self) -> Option<Tok<'a>> {
        self.toks.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<Tok<'a>> {
        self.toks.get(self.i + k).copied()
    }

    fn found(&self) -> String {
        match self.peek() {
            Some(t) => t.to_string(),
            None => "end of line".to_string(),
        }
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        let t = self.peek();
        if t.is_some() {
            self.i += 1;
        }
        t
    }

    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(q)) if q == p) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: &str) -> Result<(), AsmError> {
        if self.eat(p) {
            Ok(())
        } else {
            self.err(format!("expected `{p}`, found {}", self.found()))
        }
    }

    fn eat_ident(&mut self, name: &str) -> bool {
        if self.peek() == Some(Tok::Ident(name)) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect_ident(&mut self, name: &str) -> Result<(), AsmError> {
        if self.eat_ident(name) {
            Ok(())
        } else {
            self.err(format!("expected `{name}`, found {}", self.found()))
        }
    }

    fn reg(&mut self) -> Result<Reg, AsmError> {
        match self.peek() {
            Some(Tok::Ident(s)) => match reg_name(s) {
                Some((wide, n)) => {
                    self.i += 1;
                    Ok(Reg { wide, n })
                }
                None if looks_like_reg(s) => {
                    self.err(format!("Invalid register `{s}` (r0..r10 / w0..w10)"))
                }
                None => self.err(format!("expected a register, found `{s}`")),
            },
            _ => self.err(format!("expected a register, found {}", self.found())),
        }
    }

    /// A register that must be 64-bit (`rN`).
    fn reg64(&mut self) -> Result<u8, AsmError> {
        let r = self.reg()?;
        if !r.wide {
            return self.err(format!("expected a 64-bit register r{}, found {r}", r.n));
        }
        Ok(r.n)
    }

    fn at_reg(&self) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if looks_like_reg(s))
    }

    /// `[-] NUMBER`.
    fn num(&mut self) -> Result<(Num, String), AsmError> {
        let neg = self.eat("-");
        match self.next() {
            Some(Tok::Num(s)) => match parse_num(s) {
                Some(mut n) => {
                    n.neg = neg;
                    let text = if neg { format!("-{s}") } else { s.to_string() };
                    Ok((n, text))
                }
                None => self.err(format!("invalid number `{s}`")),
            },
            other => {
                self.i -= usize::from(other.is_some());
                self.err(format!("expected a number, found {}", self.found()))
            }
        }
    }

    fn imm32(&mut self, sext: bool) -> Result<i32, AsmError> {
        let (n, text) = self.num()?;
        let v = if sext { n.imm32_sext() } else { n.imm32() };
        match v {
            Some(v) => Ok(v),
            None if sext && n.imm32().is_some() => self.err(format!(
                "immediate {text} is sign-extended to 64 bits and would mean {}; write it in decimal, or use `ll` for a 64-bit constant",
                n.imm32().unwrap_or_default()
            )),
            None => self.err(format!(
                "immediate {text} does not fit in 32 bits (decimal must fit a signed 32-bit integer, hex at most 0xffffffff)"
            )),
        }
    }

    /// `(` TYPE `*` `)`
    fn cast(&mut self) -> Result<Ty, AsmError> {
        self.expect("(")?;
        let ty = match self.next() {
            Some(Tok::Ident(t)) => {
                let (size, bytes, signed) = match t {
                    "u8" => (SIZE_B, 1, false),
                    "u16" => (SIZE_H, 2, false),
                    "u32" => (SIZE_W, 4, false),
                    "u64" => (SIZE_DW, 8, false),
                    "s8" => (SIZE_B, 1, true),
                    "s16" => (SIZE_H, 2, true),
                    "s32" => (SIZE_W, 4, true),
                    _ => {
                        return self.err(format!(
                            "expected a type u8, u16, u32, u64, s8, s16 or s32, found `{t}`"
                        ));
                    }
                };
                Ty {
                    size,
                    bytes,
                    signed,
                }
            }
            _ => {
                self.i -= 1;
                return self.err(format!("expected a type, found {}", self.found()));
            }
        };
        self.expect("*")?;
        self.expect(")")?;
        Ok(ty)
    }

    /// `(` rN [`+`|`-` NUMBER] `)`
    fn mem(&mut self) -> Result<(u8, i16), AsmError> {
        self.expect("(")?;
        let m = self.mem_inner()?;
        self.expect(")")?;
        Ok(m)
    }

    /// rN [`+`|`-` NUMBER]
    fn mem_inner(&mut self) -> Result<(u8, i16), AsmError> {
        let base = self.reg64()?;
        let off = if self.eat("+") {
            let neg = self.eat("-");
            let (mut n, text) = self.num()?;
            n.neg = neg;
            n.strict_i16().ok_or(()).or_else(|_| {
                self.err(format!(
                    "offset +{text} does not fit in a signed 16-bit offset"
                ))
            })?
        } else if self.peek() == Some(Tok::Punct("-")) {
            let (n, text) = self.num()?;
            n.strict_i16().ok_or(()).or_else(|_| {
                self.err(format!(
                    "offset {text} does not fit in a signed 16-bit offset"
                ))
            })?
        } else {
            0
        };
        Ok((base, off))
    }

    /// `pc+N`, `pc-N`, `+N`, `-N` or a label.
    fn target(&mut self) -> Result<Target<'a>, AsmError> {
        let rel = |p: &mut Self| -> Result<Target<'a>, AsmError> {
            let neg = if p.eat("+") {
                false
            } else if p.eat("-") {
                true
            } else {
                return p.err(format!(
                    "expected `+` or `-` after `pc`, found {}",
                    p.found()
                ));
            };
            let (n, text) = p.num()?;
            if n.neg {
                return p.err(format!("unexpected `-` in offset {text}"));
            }
            let v = if neg { -(n.mag as i128) } else { n.mag as i128 };
            match i64::try_from(v) {
                Ok(v) => Ok(Target::Rel(v)),
                Err(_) => p.err("offset out of range"),
            }
        };
        match self.peek() {
            Some(Tok::Ident("pc")) => {
                self.i += 1;
                rel(self)
            }
            Some(Tok::Punct("+" | "-")) => rel(self),
            Some(Tok::Ident(l)) if is_label_name(l) && reg_name(l).is_none() => {
                self.i += 1;
                Ok(Target::Label(l))
            }
            _ => self.err(format!(
                "expected a jump target (pc+N, pc-N or a label), found {}",
                self.found()
            )),
        }
    }

    fn push_target(&mut self, mut insn: Insn, t: Target<'a>, field: Field) -> Result<(), AsmError> {
        match t {
            Target::Rel(v) => {
                match field {
                    Field::Off16 => match i16::try_from(v) {
                        Ok(o) => insn.off = o,
                        Err(_) => {
                            return self.err(format!(
                                "jump offset {v} does not fit in 16 bits (use `gotol` for long unconditional jumps)"
                            ));
                        }
                    },
                    Field::Imm32 => match i32::try_from(v) {
                        Ok(o) => insn.imm = o,
                        Err(_) => return self.err(format!("offset {v} does not fit in 32 bits")),
                    },
                }
                self.b.push(insn);
            }
            Target::Label(l) => self.b.push_ref(insn, l, field, self.line),
        }
        Ok(())
    }

    fn statement(&mut self) -> Result<(), AsmError> {
        // Verifier-log prefix: `12:` and `(b7)`.
        if let (Some(Tok::Num(_)), Some(Tok::Punct(":"))) = (self.peek(), self.peek_at(1)) {
            self.i += 2;
        }
        let mut expected_code = None;
        if self.peek() == Some(Tok::Punct("(")) {
            if let (Some(Tok::Num(h) | Tok::Ident(h)), Some(Tok::Punct(")"))) =
                (self.peek_at(1), self.peek_at(2))
                && h.len() == 2
                && let Ok(code) = u8::from_str_radix(h, 16)
            {
                expected_code = Some(code);
                self.lddw_prefix = code == OP_LDDW;
                self.i += 3;
            } else {
                return self.err(format!(
                    "expected an opcode prefix like `(b7)`, found {}",
                    self.peek_at(1)
                        .map_or("end of line".to_string(), |t| t.to_string())
                ));
            }
        }
        // Labels.
        while let (Some(Tok::Ident(l)), Some(Tok::Punct(":"))) = (self.peek(), self.peek_at(1)) {
            if looks_like_reg(l) {
                return self.err(format!("a register name `{l}` cannot be a label"));
            }
            if !is_label_name(l) {
                return self.err(format!("invalid label name `{l}`"));
            }
            self.b.define_label(l, self.line)?;
            self.i += 2;
        }
        if self.peek().is_none() {
            if expected_code.is_some() {
                return self.err("opcode prefix without an instruction");
            }
            return Ok(());
        }
        let start = self.b.pc();
        self.instruction()?;
        if self.peek().is_some() {
            return self.err(format!("unexpected {} after the instruction", self.found()));
        }
        if let Some(code) = expected_code {
            let actual = self.b.code_at(start);
            if actual != Some(code) {
                return self.err(format!(
                    "opcode prefix ({code:02x}) does not match the instruction, which encodes as ({:02x})",
                    actual.unwrap_or_default()
                ));
            }
        }
        Ok(())
    }

    fn instruction(&mut self) -> Result<(), AsmError> {
        match self.peek() {
            Some(Tok::Ident("if")) => {
                self.i += 1;
                self.jcond()
            }
            Some(Tok::Ident(g @ ("goto" | "gotol"))) => {
                self.i += 1;
                let t = self.target()?;
                if g == "goto" {
                    self.push_target(Insn::new(OP_JA, 0, 0, 0, 0), t, Field::Off16)
                } else {
                    self.push_target(Insn::new(OP_JA32, 0, 0, 0, 0), t, Field::Imm32)
                }
            }
            Some(Tok::Ident("may_goto")) => {
                self.i += 1;
                let t = self.target()?;
                self.push_target(
                    Insn::new(OP_MAY_GOTO, 0, JCOND_MAY_GOTO, 0, 0),
                    t,
                    Field::Off16,
                )
            }
            Some(Tok::Ident("call")) => {
                self.i += 1;
                self.call()
            }
            Some(Tok::Ident("callx")) => {
                self.i += 1;
                let r = self.reg64()?;
                self.b.push(Insn::new(OP_CALLX, r, 0, 0, 0));
                Ok(())
            }
            Some(Tok::Ident("exit")) => {
                self.i += 1;
                self.b.push(Insn::new(OP_EXIT, 0, 0, 0, 0));
                Ok(())
            }
            Some(Tok::Ident("lock")) => {
                self.i += 1;
                self.lock()
            }
            Some(Tok::Punct("*")) => {
                self.i += 1;
                self.store()
            }
            Some(Tok::Ident(s)) if looks_like_reg(s) => self.assign(),
            _ => self.err(format!(
                "unrecognized instruction starting with {}",
                self.found()
            )),
        }
    }

    fn jcond(&mut self) -> Result<(), AsmError> {
        let dst = self.reg()?;
        let op = match self.next() {
            Some(Tok::Punct(p)) if jmp_op(p).is_some() => jmp_op(p).unwrap_or_default(),
            _ => {
                self.i -= 1;
                return self.err(format!(
                    "expected a comparison (==, !=, >, >=, <, <=, s>, s>=, s<, s<=, &), found {}",
                    self.found()
                ));
            }
        };
        let cls = if dst.wide { CLS_JMP } else { CLS_JMP32 };
        let insn = if self.at_reg() {
            let src = self.reg()?;
            if src.wide != dst.wide {
                return self.err(format!(
                    "cannot compare {dst} with {src}: use rN or wN on both sides"
                ));
            }
            Insn::new(cls | op | SRC_X, dst.n, src.n, 0, 0)
        } else {
            let imm = self.imm32(false)?;
            Insn::new(cls | op | SRC_K, dst.n, 0, 0, imm)
        };
        self.expect_ident("goto")?;
        let t = self.target()?;
        self.push_target(insn, t, Field::Off16)
    }

    fn call(&mut self) -> Result<(), AsmError> {
        match self.peek() {
            Some(Tok::Ident("pc")) => {
                let t = self.target()?;
                self.push_target(Insn::new(OP_CALL, 0, CALL_LOCAL, 0, 0), t, Field::Imm32)
            }
            Some(Tok::Num(_)) => {
                let id = self.imm32(false)?;
                self.b.push(Insn::new(OP_CALL, 0, CALL_HELPER, 0, id));
                Ok(())
            }
            Some(Tok::Ident("kernel")) if self.peek_at(1) == Some(Tok::Punct("-")) => {
                self.i += 2;
                self.expect_ident("function")?;
                self.expect("#")?;
                let id = self.imm32(false)?;
                let off = if self.eat_ident("off") {
                    self.expect(":")?;
                    let (n, text) = self.num()?;
                    match n.strict_i16() {
                        Some(o) => o,
                        None => {
                            return self
                                .err(format!("kfunc offset {text} does not fit in 16 bits"));
                        }
                    }
                } else {
                    0
                };
                self.b.push(Insn::new(OP_CALL, 0, CALL_KFUNC, off, id));
                Ok(())
            }
            Some(Tok::Ident(name)) => {
                self.i += 1;
                if self.eat("#") {
                    let id = self.imm32(false)?;
                    let ok = match helper_id(name) {
                        Some(known) => known == id,
                        None => name == "unknown",
                    };
                    if !ok {
                        return match helper_id(name) {
                            Some(known) => self.err(format!(
                                "helper `{name}` has id {known}, not {id}"
                            )),
                            None => self.err(format!(
                                "unknown helper `{name}` (write `call N`, `call unknown#N`, or `call kernel-function#N` for a kfunc)"
                            )),
                        };
                    }
                    self.b.push(Insn::new(OP_CALL, 0, CALL_HELPER, 0, id));
                    return Ok(());
                }
                if let Some(id) = helper_id(name) {
                    self.b.push(Insn::new(OP_CALL, 0, CALL_HELPER, 0, id));
                    return Ok(());
                }
                if !is_label_name(name) || looks_like_reg(name) {
                    return self.err(format!(
                        "expected a helper or a label after `call`, found `{name}`"
                    ));
                }
                self.b.push_ref(
                    Insn::new(OP_CALL, 0, CALL_LOCAL, 0, 0),
                    name,
                    Field::Imm32,
                    self.line,
                );
                Ok(())
            }
            _ => self.err(format!(
                "expected a helper id, helper name, `pc+N` or a label after `call`, found {}",
                self.found()
            )),
        }
    }

    /// `lock *(uN *)(rD +off) op= rS`
    fn lock(&mut self) -> Result<(), AsmError> {
        self.expect("*")?;
        let ty = self.cast()?;
        if ty.signed || ty.bytes < 4 {
            return self.err("atomic operations work on u32 or u64 only");
        }
        let (dst, off) = self.mem()?;
        let imm = match self.next() {
            Some(Tok::Punct("+=")) => ATOMIC_ADD,
            Some(Tok::Punct("|=")) => ATOMIC_OR,
            Some(Tok::Punct("&=")) => ATOMIC_AND,
            Some(Tok::Punct("^=")) => ATOMIC_XOR,
            other => {
                self.i -= usize::from(other.is_some());
                return self.err(format!(
                    "expected an atomic operation +=, |=, &= or ^=, found {}",
                    self.found()
                ));
            }
        };
        let src = self.value_reg(ty)?;
        self.b.push(Insn::new(
            CLS_STX | MODE_ATOMIC | ty.size,
            dst,
            src,
            off,
            imm,
        ));
        Ok(())
    }

    /// A source register of a store or atomic of type `ty`: `rN`, or `wN` for
    /// sizes up to 32 bits (llvm's alu32 output).
    fn value_reg(&mut self, ty: Ty) -> Result<u8, AsmError> {
        let r = self.reg()?;
        if !r.wide && ty.bytes == 8 {
            return self.err(format!(
                "a 64-bit access needs a 64-bit register, found {r}"
            ));
        }
        Ok(r.n)
    }

    /// `*(uN *)(rD +off) = rS | imm`
    fn store(&mut self) -> Result<(), AsmError> {
        let ty = self.cast()?;
        if ty.signed {
            return self.err("stores take an unsigned type (u8, u16, u32, u64)");
        }
        let (dst, off) = self.mem()?;
        self.expect("=")?;
        if self.at_reg() {
            let src = self.value_reg(ty)?;
            self.b
                .push(Insn::new(CLS_STX | MODE_MEM | ty.size, dst, src, off, 0));
        } else {
            let imm = self.imm32(ty.bytes == 8)?;
            self.b
                .push(Insn::new(CLS_ST | MODE_MEM | ty.size, dst, 0, off, imm));
        }
        Ok(())
    }

    /// Statements starting with a register.
    fn assign(&mut self) -> Result<(), AsmError> {
        let dst = self.reg()?;
        let cls = if dst.wide { CLS_ALU64 } else { CLS_ALU };
        match self.next() {
            Some(Tok::Punct("=")) => self.assign_rhs(dst),
            Some(Tok::Punct(p)) if alu_assign_op(p).is_some() => {
                let (op, off) = alu_assign_op(p).unwrap_or_default();
                if self.at_reg() {
                    let src = self.reg()?;
                    if src.wide != dst.wide {
                        return self.err(format!(
                            "cannot mix {dst} and {src}: use rN (64-bit) or wN (32-bit) on both sides"
                        ));
                    }
                    self.b
                        .push(Insn::new(cls | op | SRC_X, dst.n, src.n, off, 0));
                } else {
                    let imm = self.imm32(dst.wide)?;
                    self.b.push(Insn::new(cls | op | SRC_K, dst.n, 0, off, imm));
                }
                Ok(())
            }
            other => {
                self.i -= usize::from(other.is_some());
                self.err(format!(
                    "expected `=` or an operator like `+=` after {dst}, found {}",
                    self.found()
                ))
            }
        }
    }

    fn assign_rhs(&mut self, dst: Reg) -> Result<(), AsmError> {
        let cls = if dst.wide { CLS_ALU64 } else { CLS_ALU };
        match self.peek() {
            // Negation or a negative immediate.
            Some(Tok::Punct("-")) if matches!(self.peek_at(1), Some(Tok::Ident(_))) => {
                self.i += 1;
                let src = self.reg()?;
                if src != dst {
                    return self.err(format!("negation is in place: write `{dst} = -{dst}`"));
                }
                self.b.push(Insn::new(cls | ALU_NEG, dst.n, 0, 0, 0));
                Ok(())
            }
            Some(Tok::Punct("-") | Tok::Num(_)) => {
                let save = self.i;
                let (n, text) = self.num()?;
                if self.eat_ident("ll") || self.lddw_prefix {
                    if !dst.wide {
                        return self.err(format!(
                            "a 64-bit load needs a 64-bit register, found {dst}"
                        ));
                    }
                    let Some(v) = n.imm64() else {
                        return self.err(format!("constant {text} does not fit in 64 bits"));
                    };
                    self.lddw(
                        dst.n,
                        PSEUDO_IMM64,
                        v as u32 as i32,
                        (v >> 32) as u32 as i32,
                    );
                    return Ok(());
                }
                if dst.wide
                    && n.imm32_sext().is_none()
                    && n.imm64().is_some()
                    && n.imm32().is_none()
                {
                    return self.err(format!(
                        "constant {text} does not fit in 32 bits: write `{dst} = {text} ll` for a 64-bit load"
                    ));
                }
                self.i = save;
                let imm = self.imm32(dst.wide)?;
                self.b
                    .push(Insn::new(cls | ALU_MOV | SRC_K, dst.n, 0, 0, imm));
                Ok(())
            }
            Some(Tok::Ident(s)) if looks_like_reg(s) => {
                let src = self.reg()?;
                if src.wide != dst.wide {
                    return self.err(format!(
                        "cannot mix {dst} and {src}: use rN (64-bit) or wN (32-bit) on both sides"
                    ));
                }
                self.b
                    .push(Insn::new(cls | ALU_MOV | SRC_X, dst.n, src.n, 0, 0));
                Ok(())
            }
            Some(Tok::Punct("(")) => {
                self.i += 1;
                let bits: i16 = match self.next() {
                    Some(Tok::Ident("s8")) => 8,
                    Some(Tok::Ident("s16")) => 16,
                    Some(Tok::Ident("s32")) => 32,
                    other => {
                        self.i -= usize::from(other.is_some());
                        return self.err(format!(
                            "expected a sign-extension cast (s8), (s16) or (s32), found {}",
                            self.found()
                        ));
                    }
                };
                if bits == 32 && !dst.wide {
                    return self.err("(s32) sign extension needs 64-bit registers");
                }
                self.expect(")")?;
                let src = self.reg()?;
                if src.wide != dst.wide {
                    return self.err(format!(
                        "cannot mix {dst} and {src}: use rN (64-bit) or wN (32-bit) on both sides"
                    ));
                }
                self.b
                    .push(Insn::new(cls | ALU_MOV | SRC_X, dst.n, src.n, bits, 0));
                Ok(())
            }
            Some(Tok::Punct("*")) => {
                self.i += 1;
                self.load(dst)
            }
            Some(Tok::Ident(name)) => {
                self.i += 1;
                self.named_rhs(dst, name)
            }
            _ => self.err(format!(
                "expected a value after `=`, found {}",
                self.found()
            )),
        }
    }

    fn lddw(&mut self, dst: u8, pseudo: u8, imm: i32, next_imm: i32) {
        self.b.push(Insn::new(OP_LDDW, dst, pseudo, 0, imm));
        self.b.push(Insn::new(0, 0, 0, 0, next_imm));
    }

    /// `rD = *(T *)(rS +off)` or `r0 = *(T *)skb[...]`.
    fn load(&mut self, dst: Reg) -> Result<(), AsmError> {
        let ty = self.cast()?;
        if ty.signed && ty.bytes == 8 {
            return self.err("there is no sign-extending 64-bit load");
        }
        if self.eat_ident("skb") {
            if dst != (Reg { wide: true, n: 0 }) || ty.signed || ty.bytes == 8 {
                return self.err("packet loads are `r0 = *(u8|u16|u32 *)skb[...]`");
            }
            self.expect("[")?;
            if self.at_reg() {
                let src = self.reg64()?;
                let imm = if self.eat("+") || self.peek() == Some(Tok::Punct("-")) {
                    self.imm32(false)?
                } else {
                    0
                };
                self.expect("]")?;
                self.b
                    .push(Insn::new(CLS_LD | MODE_IND | ty.size, 0, src, 0, imm));
            } else {
                let imm = self.imm32(false)?;
                self.expect("]")?;
                self.b
                    .push(Insn::new(CLS_LD | MODE_ABS | ty.size, 0, 0, 0, imm));
            }
            return Ok(());
        }
        if !dst.wide && ty.bytes == 8 {
            return self.err(format!(
                "a 64-bit load needs a 64-bit register, found {dst}"
            ));
        }
        if !dst.wide && ty.signed {
            return self.err(format!(
                "a sign-extending load writes 64 bits: use r{}",
                dst.n
            ));
        }
        let (src, off) = self.mem()?;
        let mode = if ty.signed { MODE_MEMSX } else { MODE_MEM };
        self.b
            .push(Insn::new(CLS_LDX | mode | ty.size, dst.n, src, off, 0));
        Ok(())
    }

    /// `rD = NAME ...`: byte swaps, atomics with a result, pseudo `lddw` forms.
    fn named_rhs(&mut self, dst: Reg, name: &'a str) -> Result<(), AsmError> {
        for (prefix, code) in [
            ("be", CLS_ALU | ALU_END | SRC_X),
            ("le", CLS_ALU | ALU_END | SRC_K),
            ("bswap", CLS_ALU64 | ALU_END | SRC_K),
        ] {
            if let Some(bits) = name.strip_prefix(prefix)
                && let Ok(bits @ (16 | 32 | 64)) = bits.parse::<i32>()
            {
                let src = self.reg()?;
                if !dst.wide || src != dst {
                    return self.err(format!(
                        "byte swaps are in place on a 64-bit register: write `r{0} = {name} r{0}`",
                        dst.n
                    ));
                }
                self.b.push(Insn::new(code, dst.n, 0, 0, bits));
                return Ok(());
            }
        }
        if let Some(op) = name
            .strip_prefix("atomic64_")
            .map(|o| (o, Some(8)))
            .or_else(|| name.strip_prefix("atomic_").map(|o| (o, None)))
        {
            return self.atomic_call(dst, name, op.0, op.1);
        }
        if let Some((imm, size)) = match name {
            "cmpxchg_64" => Some((ATOMIC_CMPXCHG, SIZE_DW)),
            "cmpxchg32_32" => Some((ATOMIC_CMPXCHG, SIZE_W)),
            "xchg_64" => Some((ATOMIC_XCHG, SIZE_DW)),
            "xchg32_32" => Some((ATOMIC_XCHG, SIZE_W)),
            _ => None,
        } {
            return self.llvm_xchg(dst, name, imm, size);
        }
        match name {
            "map" => {
                self.expect("[")?;
                let pseudo = match self.next() {
                    Some(Tok::Ident("fd")) => PSEUDO_MAP_FD,
                    Some(Tok::Ident("idx")) => PSEUDO_MAP_IDX,
                    other => {
                        self.i -= usize::from(other.is_some());
                        return self.err(format!("expected `fd` or `idx`, found {}", self.found()));
                    }
                };
                self.expect(":")?;
                let imm = self.strict_i32("map fd/index")?;
                self.expect("]")?;
                let (pseudo, next) = if self.eat("[") {
                    let (n, text) = self.num()?;
                    if n.neg || n.mag != 0 {
                        return self.err(format!("map value index must be [0], found [{text}]"));
                    }
                    self.expect("]")?;
                    self.expect("+")?;
                    let (n, text) = self.num()?;
                    let off = match (n.neg, u32::try_from(n.mag)) {
                        (false, Ok(v)) => v,
                        _ => return self.err(format!("map value offset {text} out of range")),
                    };
                    let p = if pseudo == PSEUDO_MAP_FD {
                        PSEUDO_MAP_VALUE
                    } else {
                        PSEUDO_MAP_IDX_VALUE
                    };
                    (p, off as i32)
                } else {
                    (pseudo, 0)
                };
                self.lddw_pseudo(dst, pseudo, imm, next)
            }
            "btf_id" => {
                self.expect("[")?;
                let imm = self.strict_i32("BTF id")?;
                self.expect("]")?;
                let next = if self.eat("[") {
                    self.expect_ident("fd")?;
                    self.expect(":")?;
                    let v = self.strict_i32("BTF object fd")?;
                    self.expect("]")?;
                    v
                } else {
                    0
                };
                self.lddw_pseudo(dst, PSEUDO_BTF_ID, imm, next)
            }
            "func" => {
                if !dst.wide {
                    return self.err(format!(
                        "a 64-bit load needs a 64-bit register, found {dst}"
                    ));
                }
                self.expect("[")?;
                let t = self.target()?;
                self.expect("]")?;
                let next = if self.eat("[") {
                    let v = self.strict_i32("second immediate")?;
                    self.expect("]")?;
                    v
                } else {
                    0
                };
                self.push_target(
                    Insn::new(OP_LDDW, dst.n, PSEUDO_FUNC, 0, 0),
                    t,
                    Field::Imm32,
                )?;
                self.b.push(Insn::new(0, 0, 0, 0, next));
                Ok(())
            }
            _ => self.err(format!("expected a value after `=`, found `{name}`")),
        }
    }

    /// llvm's `r0 = cmpxchg_64(rD + off, r0, rS)`, `w0 = cmpxchg32_32(rD + off, w0, wS)`,
    /// `rS = xchg_64(rD + off, rS)` and `wS = xchg32_32(rD + off, wS)`.
    fn llvm_xchg(&mut self, out: Reg, name: &str, imm: i32, size: u8) -> Result<(), AsmError> {
        let wide = size == SIZE_DW;
        self.expect("(")?;
        let (dst, off) = self.mem_inner()?;
        self.expect(",")?;
        let mut regs = vec![out];
        if imm == ATOMIC_CMPXCHG {
            regs.push(self.reg()?);
            self.expect(",")?;
        }
        let src = self.reg()?;
        regs.push(src);
        self.expect(")")?;
        if regs.iter().any(|r| r.wide != wide) {
            let p = if wide { 'r' } else { 'w' };
            return self.err(format!("`{name}` takes {p}N registers"));
        }
        if imm == ATOMIC_CMPXCHG && (out.n != 0 || regs[1].n != 0) {
            return self.err(format!("`{name}` compares with and writes r0"));
        }
        if imm == ATOMIC_XCHG && out.n != src.n {
            return self.err(format!(
                "`{name}` writes the old value into its source register"
            ));
        }
        self.b.push(Insn::new(
            CLS_STX | MODE_ATOMIC | size,
            dst,
            src.n,
            off,
            imm,
        ));
        Ok(())
    }

    fn strict_i32(&mut self, what: &str) -> Result<i32, AsmError> {
        let (n, text) = self.num()?;
        match n.strict_i32() {
            Some(v) => Ok(v),
            None => self.err(format!(
                "{what} {text} does not fit in a signed 32-bit integer"
            )),
        }
    }

    fn lddw_pseudo(&mut self, dst: Reg, pseudo: u8, imm: i32, next: i32) -> Result<(), AsmError> {
        if !dst.wide {
            return self.err(format!(
                "a 64-bit load needs a 64-bit register, found {dst}"
            ));
        }
        self.lddw(dst.n, pseudo, imm, next);
        Ok(())
    }

    /// `rS = atomic[64]_fetch_OP((T *)(rD +off), rS)`, `rS = atomic[64]_xchg(...)`,
    /// `r0 = atomic[64]_cmpxchg((T *)(rD +off), r0, rS)`.
    fn atomic_call(
        &mut self,
        out: Reg,
        name: &str,
        op: &str,
        width: Option<u8>,
    ) -> Result<(), AsmError> {
        let imm = match op {
            "fetch_add" => ATOMIC_ADD | ATOMIC_FETCH,
            "fetch_or" => ATOMIC_OR | ATOMIC_FETCH,
            "fetch_and" => ATOMIC_AND | ATOMIC_FETCH,
            "fetch_xor" => ATOMIC_XOR | ATOMIC_FETCH,
            "xchg" => ATOMIC_XCHG,
            "cmpxchg" => ATOMIC_CMPXCHG,
            _ => return self.err(format!("unknown atomic operation `{name}`")),
        };
        self.expect("(")?;
        let ty = self.cast()?;
        if ty.signed || ty.bytes < 4 {
            return self.err("atomic operations work on u32 or u64 only");
        }
        if let Some(w) = width
            && w != ty.bytes
        {
            return self.err(format!("`{name}` needs a (u64 *) operand"));
        }
        let (dst, off) = self.mem()?;
        self.expect(",")?;
        if imm == ATOMIC_CMPXCHG {
            let r0 = self.reg()?;
            if r0.n != 0 || out.n != 0 {
                return self.err("compare-exchange compares with and writes r0: `r0 = atomic_cmpxchg((T *)(rD +off), r0, rS)`");
            }
            self.expect(",")?;
        }
        let src = self.reg()?;
        if ty.bytes == 8 && !(src.wide && out.wide) {
            return self.err("a 64-bit atomic needs 64-bit registers");
        }
        if imm != ATOMIC_CMPXCHG && src.n != out.n {
            return self.err(format!(
                "`{name}` writes the old value into its source register: write `r{0} = {name}(..., r{0})`",
                src.n
            ));
        }
        self.expect(")")?;
        self.b.push(Insn::new(
            CLS_STX | MODE_ATOMIC | ty.size,
            dst,
            src.n,
            off,
            imm,
        ));
        Ok(())
    }
}

impl Builder {
    /// Opcode of the instruction at `pc`, if already pushed.
    pub(crate) fn code_at(&self, pc: usize) -> Option<u8> {
        self.insns.get(pc).map(|i| i.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Insn {
        let v = assemble_linux(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        v[0]
    }

    fn bad(s: &str) -> String {
        assemble_linux(s).expect_err(s).to_string()
    }

    #[test]
    fn alu() {
        assert_eq!(one("r0 = 1"), Insn::new(0xb7, 0, 0, 0, 1));
        assert_eq!(one("w1 += w2"), Insn::new(0x0c, 1, 2, 0, 0));
        assert_eq!(one("w1 &= 0xffffffff"), Insn::new(0x54, 1, 0, 0, -1));
        assert_eq!(one("r1 s>>= 3"), Insn::new(0xc7, 1, 0, 0, 3));
        assert_eq!(one("r1 s/= r2"), Insn::new(0x3f, 1, 2, 1, 0));
        assert_eq!(one("w1 s%= -7"), Insn::new(0x94, 1, 0, 1, -7));
        assert_eq!(one("r0 = -r0"), Insn::new(0x87, 0, 0, 0, 0));
        assert_eq!(one("r0 = -5"), Insn::new(0xb7, 0, 0, 0, -5));
        assert_eq!(one("r0 = (s16)r1"), Insn::new(0xbf, 0, 1, 16, 0));
        assert_eq!(one("w0 = (s8)w1"), Insn::new(0xbc, 0, 1, 8, 0));
        assert_eq!(one("r0 = be16 r0"), Insn::new(0xdc, 0, 0, 0, 16));
        assert_eq!(one("r3 = bswap64 r3"), Insn::new(0xd7, 3, 0, 0, 64));
        let v = assemble_linux("r0 = 0x1122334455667788 ll").unwrap();
        assert_eq!(v[0].to_u64(), 0x5566778800000018);
        assert_eq!(v[1].to_u64(), 0x1122334400000000);
        let v = assemble_linux("r1 = map[fd:3][0]+16").unwrap();
        assert_eq!((v[0].src, v[0].imm, v[1].imm), (2, 3, 16));
    }

    #[test]
    fn memory() {
        assert_eq!(one("r1 = *(u32 *)(r1 +0)"), Insn::new(0x61, 1, 1, 0, 0));
        assert_eq!(one("w1 = *(u16 *)(r1 + 2)"), Insn::new(0x69, 1, 1, 2, 0));
        assert_eq!(one("r1 = *(s8 *)(r2 -1)"), Insn::new(0x91, 1, 2, -1, 0));
        assert_eq!(one("*(u64 *)(r10 -8) = r1"), Insn::new(0x7b, 10, 1, -8, 0));
        assert_eq!(one("*(u32 *)(r10 - 4) = w1"), Insn::new(0x63, 10, 1, -4, 0));
        assert_eq!(one("*(u8 *)(r10 -1) = 7"), Insn::new(0x72, 10, 0, -1, 7));
        assert_eq!(one("r0 = *(u8 *)skb[23]"), Insn::new(0x30, 0, 0, 0, 23));
        assert_eq!(one("r0 = *(u16 *)skb[r3 + 4]"), Insn::new(0x48, 0, 3, 0, 4));
        assert_eq!(
            one("r0 = *(u16 *)skb[r3 + -4]"),
            Insn::new(0x48, 0, 3, 0, -4)
        );
        assert_eq!(
            one("lock *(u64 *)(r10 -8) += r1"),
            Insn::new(0xdb, 10, 1, -8, 0)
        );
        assert_eq!(
            one("r1 = atomic64_fetch_add((u64 *)(r10 -8), r1)"),
            Insn::new(0xdb, 10, 1, -8, 1)
        );
        assert_eq!(
            one("w1 = atomic_fetch_or((u32 *)(r10 - 4), w1)"),
            Insn::new(0xc3, 10, 1, -4, 0x41)
        );
        assert_eq!(
            one("r0 = atomic_cmpxchg((u32 *)(r10 -8), r0, r1)"),
            Insn::new(0xc3, 10, 1, -8, 0xf1)
        );
        assert_eq!(
            one("r0 = cmpxchg_64(r1 + 8, r0, r2)"),
            Insn::new(0xdb, 1, 2, 8, 0xf1)
        );
        assert_eq!(
            one("w3 = xchg32_32(r1 - 4, w3)"),
            Insn::new(0xc3, 1, 3, -4, 0xe1)
        );
        assert!(assemble_linux("r0 = cmpxchg_64(r1 + 8, r1, r2)").is_err());
        assert!(assemble_linux("w3 = xchg_64(r1 + 0, w3)").is_err());
    }

    #[test]
    fn control() {
        assert_eq!(
            one("if r2 > 0x10 goto pc+3"),
            Insn::new(0x25, 2, 0, 3, 0x10)
        );
        assert_eq!(one("if w2 s< w3 goto pc-2"), Insn::new(0xce, 2, 3, -2, 0));
        assert_eq!(one("goto pc+5"), Insn::new(0x05, 0, 0, 5, 0));
        assert_eq!(one("may_goto pc+2"), Insn::new(0xe5, 0, 0, 2, 0));
        assert_eq!(one("may_goto pc-4"), Insn::new(0xe5, 0, 0, -4, 0));
        assert_eq!(one("gotol pc+70000"), Insn::new(0x06, 0, 0, 0, 70000));
        assert_eq!(one("call 1"), Insn::new(0x85, 0, 0, 0, 1));
        assert_eq!(
            one("call bpf_map_lookup_elem#1"),
            Insn::new(0x85, 0, 0, 0, 1)
        );
        assert_eq!(one("call bpf_loop"), Insn::new(0x85, 0, 0, 0, 181));
        assert_eq!(one("call unknown#-3"), Insn::new(0x85, 0, 0, 0, -3));
        assert_eq!(one("call pc+5"), Insn::new(0x85, 0, 1, 0, 5));
        assert_eq!(
            one("call kernel-function#12 off:2"),
            Insn::new(0x85, 0, 2, 2, 12)
        );
        assert_eq!(one("callx r2"), Insn::new(0x8d, 2, 0, 0, 0));
        let v = assemble_linux("  if r1 == 0 goto out\n  r0 = 1\nout:\n  exit ; done").unwrap();
        assert_eq!(v[0], Insn::new(0x15, 1, 0, 1, 0));
        let v = assemble_linux("call f\nexit\nf: r0 = 0\nexit").unwrap();
        assert_eq!(v[0], Insn::new(0x85, 0, 1, 0, 1));
        let v = assemble_linux("0: (b7) r0 = 1 ; R0_w=1\n1: (95) exit").unwrap();
        assert_eq!(v.len(), 2);
        let v = assemble_linux("0: (18) r1 = 0x1\n2: (95) exit").unwrap();
        assert_eq!(
            v,
            [
                Insn::new(0x18, 1, 0, 0, 1),
                Insn::default(),
                Insn::new(0x95, 0, 0, 0, 0)
            ]
        );
    }

    #[test]
    fn rejections() {
        assert!(bad("w0 = r1").contains("cannot mix"));
        assert!(bad("r0 = 0xffffffff").contains("sign-extended"));
        assert!(bad("r0 = 0x100000000").contains("ll"));
        assert!(bad("r11 = 1").contains("Invalid register"));
        assert!(bad("r0 = be16 r1").contains("in place"));
        assert!(bad("if r1 > w2 goto pc+1").contains("cannot compare"));
        assert!(bad("goto nowhere").contains("Invalid label"));
        assert!(bad("call bpf_map_lookup_elem#2").contains("has id 1"));
        assert!(bad("call frobnicate#2").contains("unknown helper"));
        assert!(bad("r0 = *(u64 *)(r1 +32768)").contains("16-bit"));
        assert!(bad("r1 = atomic_fetch_add((u32 *)(r10 -8), r2)").contains("source register"));
        assert!(bad("0: (b7) r0 = r1").contains("does not match"));
        assert!(bad("r0 = 1 2").contains("unexpected"));
        assert!(bad("r0 @ 1").contains("unexpected character"));
        assert!(bad("").contains("no instructions"));
        assert!(bad("w0 = *(u64 *)(r1 +0)").contains("64-bit"));
        assert_eq!(
            bad("exit\nr0 += "),
            "line 2: expected a number, found end of line"
        );
    }
}
