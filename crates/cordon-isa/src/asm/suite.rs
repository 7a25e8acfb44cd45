//! The bpf_conformance (uBPF-style) assembly syntax.
//!
//! ```text
//! # comment
//! mov32 %r0, 0x10          ; ALU: add sub mul div sdiv or and lsh rsh mod smod xor mov arsh
//! neg %r1                  ;      (suffix 32 = 32-bit ALU, none or 64 = ALU64)
//! movsx1664 %r0, %r1       ; sign-extending moves movsx{8,16,32}{32,64}
//! be16 %r0 / le32 %r0 / bswap64 %r0 (alias swap64)
//! lddw %r0, 0x1122334455667788 [, map_fd|map_value|btf_id|func|map_idx|map_idx_value]
//! ldxw %r0, [%r1+4]   ldxsb %r0, [%r1-2]   stw [%r10-8], 5   stxdw [%r10-8], %r1
//! ldabsh 12   ldindw %r1, 4
//! ja label | ja +3   ja32 label   jeq %r1, 5, label   jsgt32 %r1, %r2, -2
//! call 5 | call helper 5 | call local label | call runtime 7 [, off] | call %r2
//! exit
//! lock [fetch] add|or|and|xor[32] [%r10-8], %r1   lock xchg[32] …   lock cmpxchg[32] …
//! label:
//! ```

use super::{AsmError, Builder, Field, Num, is_label_name, parse_num};
use crate::insn::Insn;
use crate::opcode::*;

/// Assemble text in the conformance suite's syntax into raw instruction slots.
///
/// Rejects unknown mnemonics, registers other than `%r0`..`%r10`, wrong operand
/// counts, out-of-range immediates (decimal must fit `i32`, hex `0xffffffff`) and
/// offsets (16 bits), undefined or duplicate labels, and an empty program. An
/// undefined label `exit` refers to the first `exit` instruction.
pub fn assemble(text: &str) -> Result<Vec<Insn>, AsmError> {
    let mut b = Builder::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let code = raw.split('#').next().unwrap_or("");
        let code = normalize_brackets(code, line)?;
        let mut rest = code.trim();
        if rest.is_empty() {
            continue;
        }
        // Leading label(s): `name:`.
        loop {
            let first = rest.split_whitespace().next().unwrap_or("");
            let Some(name) = first.strip_suffix(':') else {
                break;
            };
            if !is_label_name(name) {
                return Err(AsmError::new(line, format!("invalid label name `{name}`")));
            }
            b.define_label(name, line)?;
            rest = rest[first.len()..].trim_start();
        }
        if rest.is_empty() {
            continue;
        }
        let (mnemonic, args) = match rest.find(char::is_whitespace) {
            Some(p) => (&rest[..p], rest[p..].trim()),
            None => (rest, ""),
        };
        Line {
            b: &mut b,
            line,
            mnemonic,
        }
        .assemble(args)?;
    }
    b.finish(true)
}

/// Remove whitespace inside `[...]` so `[%r1 + 8]` reads as `[%r1+8]`.
fn normalize_brackets(s: &str, line: usize) -> Result<String, AsmError> {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '[' => {
                if depth > 0 {
                    return Err(AsmError::new(line, "nested `[`"));
                }
                depth += 1;
                out.push(c);
            }
            ']' => {
                if depth == 0 {
                    return Err(AsmError::new(line, "`]` without `[`"));
                }
                depth -= 1;
                out.push(c);
            }
            c if depth > 0 && c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    if depth > 0 {
        return Err(AsmError::new(line, "`[` without `]`"));
    }
    Ok(out)
}

/// Comma-separated operands; each must be one word.
fn split_operands(args: &str, line: usize) -> Result<Vec<&str>, AsmError> {
    if args.is_empty() {
        return Ok(Vec::new());
    }
    args.split(',')
        .map(|p| {
            let p = p.trim();
            if p.is_empty() {
                Err(AsmError::new(line, "empty operand"))
            } else if p.contains(char::is_whitespace) {
                Err(AsmError::new(
                    line,
                    format!("operands must be separated by `,`: `{p}`"),
                ))
            } else {
                Ok(p)
            }
        })
        .collect()
}

struct Line<'b> {
    b: &'b mut Builder,
    line: usize,
    mnemonic: &'b str,
}

enum Target<'a> {
    Rel(i64),
    Label(&'a str),
}

impl Line<'_> {
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, AsmError> {
        Err(AsmError::new(self.line, msg))
    }

    fn count(&self, ops: &[&str], n: usize) -> Result<(), AsmError> {
        if ops.len() != n {
            return self.err(format!(
                "Invalid number of operands for {}: expected {n}, found {}",
                self.mnemonic,
                ops.len()
            ));
        }
        Ok(())
    }

    fn reg(&self, s: &str) -> Result<u8, AsmError> {
        if let Some(n) = s.strip_prefix("%r")
            && !n.is_empty()
            && n.bytes().all(|c| c.is_ascii_digit())
            && (n == "0" || !n.starts_with('0'))
            && let Ok(r) = n.parse::<u8>()
            && r <= 10
        {
            return Ok(r);
        }
        if s.starts_with('%') {
            self.err(format!("Invalid register: {s}"))
        } else {
            self.err(format!("expected a register %r0..%r10, found `{s}`"))
        }
    }

    fn num(&self, s: &str) -> Result<Num, AsmError> {
        match parse_num(s) {
            Some(n) => Ok(n),
            None => self.err(format!("expected a number, found `{s}`")),
        }
    }

    fn imm32(&self, s: &str) -> Result<i32, AsmError> {
        let n = self.num(s)?;
        match n.imm32() {
            Some(v) => Ok(v),
            None => self.err(format!(
                "immediate {s} out of range (decimal must fit a signed 32-bit integer, hex at most 0xffffffff)"
            )),
        }
    }

    /// `[%rN]`, `[%rN+off]`, `[%rN-off]`.
    fn mem(&self, s: &str) -> Result<(u8, i16), AsmError> {
        let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
            return self.err(format!(
                "expected a memory operand [%rN+offset], found `{s}`"
            ));
        };
        let split = inner.find(['+', '-']).unwrap_or(inner.len());
        let reg = self.reg(&inner[..split])?;
        if split == inner.len() {
            return Ok((reg, 0));
        }
        let off = &inner[split..];
        let n = self.num(off)?;
        match n.off16() {
            Some(o) => Ok((reg, o)),
            None => self.err(format!("offset {off} does not fit in 16 bits")),
        }
    }

    fn target<'a>(&self, s: &'a str) -> Result<Target<'a>, AsmError> {
        if s.starts_with(['+', '-']) {
            let n = self.num(s)?;
            let v = if n.neg {
                -(n.mag as i128)
            } else {
                n.mag as i128
            };
            return match i64::try_from(v) {
                Ok(v) => Ok(Target::Rel(v)),
                Err(_) => self.err(format!("jump offset {s} out of range")),
            };
        }
        if is_label_name(s) {
            Ok(Target::Label(s))
        } else {
            self.err(format!(
                "expected a label or a relative offset (+N / -N), found `{s}`"
            ))
        }
    }

    /// Push an instruction whose `field` is a jump target.
    fn push_target(&mut self, mut insn: Insn, t: &str, field: Field) -> Result<(), AsmError> {
        match self.target(t)? {
            Target::Rel(v) => {
                match field {
                    Field::Off16 => match i16::try_from(v) {
                        Ok(o) => insn.off = o,
                        Err(_) => {
                            return self.err(format!("jump offset {t} does not fit in 16 bits"));
                        }
                    },
                    Field::Imm32 => match i32::try_from(v) {
                        Ok(o) => insn.imm = o,
                        Err(_) => return self.err(format!("offset {t} does not fit in 32 bits")),
                    },
                }
                self.b.push(insn);
            }
            Target::Label(l) => self.b.push_ref(insn, l, field, self.line),
        }
        Ok(())
    }

    fn push(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Result<(), AsmError> {
        self.b.push(Insn::new(code, dst, src, off, imm));
        Ok(())
    }

    fn assemble(mut self, args: &str) -> Result<(), AsmError> {
        let m = self.mnemonic;
        match m {
            "lock" => return self.lock(args),
            "call" => return self.call(args),
            _ => {}
        }
        let ops = split_operands(args, self.line)?;
        if let Some(r) = self.alu(m, &ops) {
            return r;
        }
        if let Some(r) = self.jump(m, &ops) {
            return r;
        }
        match m {
            "exit" => {
                self.count(&ops, 0)?;
                self.push(OP_EXIT, 0, 0, 0, 0)
            }
            "lddw" => self.lddw(&ops),
            _ => {
                if let Some(r) = self.mem_insn(m, &ops) {
                    return r;
                }
                self.err(format!("Invalid mnemonic: `{m}`"))
            }
        }
    }

    fn alu(&mut self, m: &str, ops: &[&str]) -> Option<Result<(), AsmError>> {
        // Byte swaps.
        for (prefix, code) in [
            ("be", CLS_ALU | ALU_END | SRC_X),
            ("le", CLS_ALU | ALU_END | SRC_K),
            ("bswap", CLS_ALU64 | ALU_END | SRC_K),
            ("swap", CLS_ALU64 | ALU_END | SRC_K),
        ] {
            if let Some(bits) = m.strip_prefix(prefix)
                && matches!(bits, "16" | "32" | "64")
            {
                return Some((|| {
                    self.count(ops, 1)?;
                    let dst = self.reg(ops[0])?;
                    self.push(code, dst, 0, 0, bits.parse().unwrap_or(0))
                })());
            }
        }
        let (base, cls) = if let Some(b) = m.strip_suffix("32") {
            (b, CLS_ALU)
        } else if let Some(b) = m.strip_suffix("64") {
            (b, CLS_ALU64)
        } else {
            (m, CLS_ALU64)
        };
        if let Some(width) = base.strip_prefix("movsx") {
            let off: i16 = match width {
                "8" => 8,
                "16" => 16,
                "32" if cls == CLS_ALU64 => 32,
                _ => return None,
            };
            return Some((|| {
                self.count(ops, 2)?;
                let dst = self.reg(ops[0])?;
                if !ops[1].starts_with('%') {
                    return self.err(format!("{m} needs a register source, found `{}`", ops[1]));
                }
                let src = self.reg(ops[1])?;
                self.push(cls | ALU_MOV | SRC_X, dst, src, off, 0)
            })());
        }
        let (op, off) = match base {
            "add" => (ALU_ADD, 0),
            "sub" => (ALU_SUB, 0),
            "mul" => (ALU_MUL, 0),
            "div" => (ALU_DIV, 0),
            "sdiv" => (ALU_DIV, 1),
            "or" => (ALU_OR, 0),
            "and" => (ALU_AND, 0),
            "lsh" => (ALU_LSH, 0),
            "rsh" => (ALU_RSH, 0),
            "mod" => (ALU_MOD, 0),
            "smod" => (ALU_MOD, 1),
            "xor" => (ALU_XOR, 0),
            "mov" => (ALU_MOV, 0),
            "arsh" => (ALU_ARSH, 0),
            "neg" => {
                return Some((|| {
                    self.count(ops, 1)?;
                    let dst = self.reg(ops[0])?;
                    self.push(cls | ALU_NEG, dst, 0, 0, 0)
                })());
            }
            _ => return None,
        };
        Some((|| {
            self.count(ops, 2)?;
            let dst = self.reg(ops[0])?;
            if ops[1].starts_with('%') {
                let src = self.reg(ops[1])?;
                self.push(cls | op | SRC_X, dst, src, off, 0)
            } else {
                let imm = self.imm32(ops[1])?;
                self.push(cls | op | SRC_K, dst, 0, off, imm)
            }
        })())
    }

    fn jump(&mut self, m: &str, ops: &[&str]) -> Option<Result<(), AsmError>> {
        match m {
            "ja" => {
                return Some((|| {
                    self.count(ops, 1)?;
                    self.push_target(Insn::new(OP_JA, 0, 0, 0, 0), ops[0], Field::Off16)
                })());
            }
            "may_goto" => {
                return Some((|| {
                    self.count(ops, 1)?;
                    self.push_target(
                        Insn::new(OP_MAY_GOTO, 0, JCOND_MAY_GOTO, 0, 0),
                        ops[0],
                        Field::Off16,
                    )
                })());
            }
            "ja32" | "gotol" => {
                return Some((|| {
                    self.count(ops, 1)?;
                    self.push_target(Insn::new(OP_JA32, 0, 0, 0, 0), ops[0], Field::Imm32)
                })());
            }
            _ => {}
        }
        let (base, cls) = match m.strip_suffix("32") {
            Some(b) => (b, CLS_JMP32),
            None => (m, CLS_JMP),
        };
        let op = match base {
            "jeq" => JMP_JEQ,
            "jgt" => JMP_JGT,
            "jge" => JMP_JGE,
            "jset" => JMP_JSET,
            "jne" => JMP_JNE,
            "jsgt" => JMP_JSGT,
            "jsge" => JMP_JSGE,
            "jlt" => JMP_JLT,
            "jle" => JMP_JLE,
            "jslt" => JMP_JSLT,
            "jsle" => JMP_JSLE,
            _ => return None,
        };
        Some((|| {
            self.count(ops, 3)?;
            let dst = self.reg(ops[0])?;
            let insn = if ops[1].starts_with('%') {
                Insn::new(cls | op | SRC_X, dst, self.reg(ops[1])?, 0, 0)
            } else {
                Insn::new(cls | op | SRC_K, dst, 0, 0, self.imm32(ops[1])?)
            };
            self.push_target(insn, ops[2], Field::Off16)
        })())
    }

    fn lddw(&mut self, ops: &[&str]) -> Result<(), AsmError> {
        if ops.len() != 2 && ops.len() != 3 {
            return self.count(ops, 2);
        }
        let dst = self.reg(ops[0])?;
        let n = self.num(ops[1])?;
        let Some(v) = n.imm64() else {
            return self.err(format!("immediate {} does not fit in 64 bits", ops[1]));
        };
        let pseudo = match ops.get(2).copied() {
            None => PSEUDO_IMM64,
            Some("map_fd") => PSEUDO_MAP_FD,
            Some("map_value") => PSEUDO_MAP_VALUE,
            Some("btf_id") => PSEUDO_BTF_ID,
            Some("func") => PSEUDO_FUNC,
            Some("map_idx") => PSEUDO_MAP_IDX,
            Some("map_idx_value") => PSEUDO_MAP_IDX_VALUE,
            Some(other) => {
                return self.err(format!(
                    "unknown lddw pseudo source `{other}` (expected map_fd, map_value, btf_id, func, map_idx or map_idx_value)"
                ));
            }
        };
        self.b
            .push(Insn::new(OP_LDDW, dst, pseudo, 0, v as u32 as i32));
        self.b.push(Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32));
        Ok(())
    }

    fn mem_insn(&mut self, m: &str, ops: &[&str]) -> Option<Result<(), AsmError>> {
        let size_of = |s: &str| match s {
            "b" => Some(SIZE_B),
            "h" => Some(SIZE_H),
            "w" => Some(SIZE_W),
            "dw" => Some(SIZE_DW),
            _ => None,
        };
        if let Some(sz) = m.strip_prefix("ldxs").and_then(size_of)
            && sz != SIZE_DW
        {
            return Some((|| {
                self.count(ops, 2)?;
                let dst = self.reg(ops[0])?;
                let (src, off) = self.mem(ops[1])?;
                self.push(CLS_LDX | MODE_MEMSX | sz, dst, src, off, 0)
            })());
        }
        if let Some(sz) = m.strip_prefix("ldx").and_then(size_of) {
            return Some((|| {
                self.count(ops, 2)?;
                let dst = self.reg(ops[0])?;
                let (src, off) = self.mem(ops[1])?;
                self.push(CLS_LDX | MODE_MEM | sz, dst, src, off, 0)
            })());
        }
        if let Some(sz) = m.strip_prefix("stx").and_then(size_of) {
            return Some((|| {
                self.count(ops, 2)?;
                let (dst, off) = self.mem(ops[0])?;
                let src = self.reg(ops[1])?;
                self.push(CLS_STX | MODE_MEM | sz, dst, src, off, 0)
            })());
        }
        if let Some(sz) = m.strip_prefix("st").and_then(size_of) {
            return Some((|| {
                self.count(ops, 2)?;
                let (dst, off) = self.mem(ops[0])?;
                let imm = self.imm32(ops[1])?;
                self.push(CLS_ST | MODE_MEM | sz, dst, 0, off, imm)
            })());
        }
        if let Some(sz) = m.strip_prefix("ldabs").and_then(size_of)
            && sz != SIZE_DW
        {
            return Some((|| {
                self.count(ops, 1)?;
                let imm = self.imm32(ops[0])?;
                self.push(CLS_LD | MODE_ABS | sz, 0, 0, 0, imm)
            })());
        }
        if let Some(sz) = m.strip_prefix("ldind").and_then(size_of)
            && sz != SIZE_DW
        {
            return Some((|| {
                self.count(ops, 2)?;
                let src = self.reg(ops[0])?;
                let imm = self.imm32(ops[1])?;
                self.push(CLS_LD | MODE_IND | sz, 0, src, 0, imm)
            })());
        }
        None
    }

    /// `lock [fetch] op [%rD+off], %rS`.
    fn lock(&mut self, args: &str) -> Result<(), AsmError> {
        let mut words: Vec<&str> = Vec::new();
        let mut parts = args.split(',');
        if let Some(first) = parts.next() {
            words.extend(first.split_whitespace());
        }
        for p in parts {
            let p = p.trim();
            if p.is_empty() || p.contains(char::is_whitespace) {
                return self.err("Invalid number of operands for lock");
            }
            words.push(p);
        }
        let fetch = words.first() == Some(&"fetch");
        if fetch {
            words.remove(0);
        }
        if words.len() != 3 {
            return self.err(format!(
                "Invalid number of operands for lock: expected `lock [fetch] op [%rN+off], %rM`, found {} operand(s)",
                words.len()
            ));
        }
        let (base, size) = match words[0].strip_suffix("32") {
            Some(b) => (b, SIZE_W),
            None => (words[0], SIZE_DW),
        };
        let f = if fetch { ATOMIC_FETCH } else { 0 };
        let imm = match base {
            "add" => ATOMIC_ADD | f,
            "or" => ATOMIC_OR | f,
            "and" => ATOMIC_AND | f,
            "xor" => ATOMIC_XOR | f,
            "xchg" => ATOMIC_XCHG,
            "cmpxchg" => ATOMIC_CMPXCHG,
            other => return self.err(format!("Invalid atomic operation: `{other}`")),
        };
        let (dst, off) = self.mem(words[1])?;
        let src = self.reg(words[2])?;
        self.push(CLS_STX | MODE_ATOMIC | size, dst, src, off, imm)
    }

    /// `call N`, `call helper N`, `call local target`, `call runtime|kfunc N [, off]`, `call %rN`.
    fn call(&mut self, args: &str) -> Result<(), AsmError> {
        let mut parts = args.splitn(2, ',');
        let head: Vec<&str> = parts.next().unwrap_or("").split_whitespace().collect();
        let tail = parts.next().map(str::trim);
        let (mode, target) = match head.as_slice() {
            [t] => ("helper", *t),
            [m, t] => (*m, *t),
            _ => {
                return self.err(format!(
                    "Invalid number of operands for call: expected `call [helper|local|runtime] target`, found `{args}`"
                ));
            }
        };
        if tail.is_some() && mode != "runtime" && mode != "kfunc" {
            return self.err("Invalid number of operands for call");
        }
        match mode {
            "helper" if target.starts_with('%') => {
                let reg = self.reg(target)?;
                self.push(OP_CALLX, reg, 0, 0, 0)
            }
            "helper" => {
                let id = self.imm32(target)?;
                self.push(OP_CALL, 0, CALL_HELPER, 0, id)
            }
            "local" => self.push_target(
                Insn::new(OP_CALL, 0, CALL_LOCAL, 0, 0),
                target,
                Field::Imm32,
            ),
            "runtime" | "kfunc" => {
                let id = self.imm32(target)?;
                let off = match tail {
                    None => 0,
                    Some(t) => {
                        let n = self.num(t)?;
                        match n.off16() {
                            Some(o) => o,
                            None => return self.err(format!("offset {t} does not fit in 16 bits")),
                        }
                    }
                };
                self.push(OP_CALL, 0, CALL_KFUNC, off, id)
            }
            other => self.err(format!(
                "Invalid call mode `{other}` (expected helper, local, runtime or kfunc)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Insn {
        let v = assemble(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(v.len(), 1, "{s}");
        v[0]
    }

    fn bad(s: &str) -> String {
        assemble(s).expect_err(s).to_string()
    }

    #[test]
    fn alu() {
        assert_eq!(one("mov32 %r0, 1"), Insn::new(0xb4, 0, 0, 0, 1));
        assert_eq!(one("mov %r0, %r1"), Insn::new(0xbf, 0, 1, 0, 0));
        assert_eq!(one("add64 %r0, -3"), Insn::new(0x07, 0, 0, 0, -3));
        assert_eq!(one("sdiv32 %r2, %r3"), Insn::new(0x3c, 2, 3, 1, 0));
        assert_eq!(one("smod %r2, 7"), Insn::new(0x97, 2, 0, 1, 7));
        assert_eq!(one("neg %r4"), Insn::new(0x87, 4, 0, 0, 0));
        assert_eq!(one("neg32 %r4"), Insn::new(0x84, 4, 0, 0, 0));
        assert_eq!(one("arsh32 %r1, 0xffffffff"), Insn::new(0xc4, 1, 0, 0, -1));
        assert_eq!(one("movsx832 %r0, %r1"), Insn::new(0xbc, 0, 1, 8, 0));
        assert_eq!(one("movsx3264 %r0, %r1"), Insn::new(0xbf, 0, 1, 32, 0));
        assert_eq!(one("be16 %r0"), Insn::new(0xdc, 0, 0, 0, 16));
        assert_eq!(one("le64 %r0"), Insn::new(0xd4, 0, 0, 0, 64));
        assert_eq!(one("swap32 %r0"), Insn::new(0xd7, 0, 0, 0, 32));
        assert_eq!(one("bswap16 %r0"), Insn::new(0xd7, 0, 0, 0, 16));
    }

    #[test]
    fn may_goto() {
        assert_eq!(one("may_goto +3"), Insn::new(0xe5, 0, 0, 3, 0));
        assert_eq!(one("may_goto -1"), Insn::new(0xe5, 0, 0, -1, 0));
        let v = assemble("may_goto out\nja -2\nout:\nexit").unwrap();
        assert_eq!(v[0], Insn::new(0xe5, 0, 0, 1, 0));
        bad("may_goto %r1, +1");
        bad("may_goto");
    }

    #[test]
    fn memory() {
        assert_eq!(one("ldxw %r0, [%r1+4]"), Insn::new(0x61, 0, 1, 4, 0));
        assert_eq!(one("ldxdw %r0, [%r1]"), Insn::new(0x79, 0, 1, 0, 0));
        assert_eq!(one("ldxsh %r0, [%r1 - 2]"), Insn::new(0x89, 0, 1, -2, 0));
        assert_eq!(one("stb [%r10-1], 0x7f"), Insn::new(0x72, 10, 0, -1, 0x7f));
        assert_eq!(one("stxdw [%r10-8], %r3"), Insn::new(0x7b, 10, 3, -8, 0));
        assert_eq!(one("ldabsh 12"), Insn::new(0x28, 0, 0, 0, 12));
        assert_eq!(one("ldindb %r3, -1"), Insn::new(0x50, 0, 3, 0, -1));
        assert_eq!(
            one("lock fetch add32 [%r10-4], %r1"),
            Insn::new(0xc3, 10, 1, -4, 1)
        );
        assert_eq!(one("lock xor [%r1], %r2"), Insn::new(0xdb, 1, 2, 0, 0xa0));
        assert_eq!(
            one("lock cmpxchg [%r10-8], %r1"),
            Insn::new(0xdb, 10, 1, -8, 0xf1)
        );
        assert_eq!(
            one("lock xchg32 [%r10-8], %r1"),
            Insn::new(0xc3, 10, 1, -8, 0xe1)
        );
        let v = assemble("lddw %r0, 0x1122334455667788").unwrap();
        assert_eq!(v[0].to_u64(), 0x5566778800000018);
        assert_eq!(v[1].to_u64(), 0x1122334400000000);
        let v = assemble("lddw %r1, 3, map_fd").unwrap();
        assert_eq!(v[0], Insn::new(0x18, 1, 1, 0, 3));
    }

    #[test]
    fn jumps_and_calls() {
        let v = assemble("ja L\nmov %r0, 1\nL:\nexit").unwrap();
        assert_eq!(v[0], Insn::new(0x05, 0, 0, 1, 0));
        let v = assemble("L: mov %r0, 1\nja32 L\nexit").unwrap();
        assert_eq!(v[1], Insn::new(0x06, 0, 0, 0, -2));
        let v = assemble("jne %r0, 1, exit\nmov %r0, 2\nexit").unwrap();
        assert_eq!(v[0], Insn::new(0x55, 0, 0, 1, 1));
        assert_eq!(one("jsle32 %r1, %r2, -1"), Insn::new(0xde, 1, 2, -1, 0));
        assert_eq!(one("call 5"), Insn::new(0x85, 0, 0, 0, 5));
        assert_eq!(one("call %r2"), Insn::new(0x8d, 2, 0, 0, 0));
        assert_eq!(one("call runtime 9"), Insn::new(0x85, 0, 2, 0, 9));
        assert_eq!(one("call kfunc 9, 2"), Insn::new(0x85, 0, 2, 2, 9));
        let v = assemble("call local f\nexit\nf:\nexit").unwrap();
        assert_eq!(v[0], Insn::new(0x85, 0, 1, 0, 1));
    }

    #[test]
    fn rejections() {
        assert!(bad("or %r0, %r50").contains("Invalid register"));
        assert!(bad("or %r0, %r11").contains("Invalid register"));
        assert!(bad("mov32 %r0, 2147483648").contains("out of range"));
        assert!(bad("mov32 %r0, 0x100000000").contains("out of range"));
        assert!(bad("ja NOT_A_LABEL\nexit").contains("Invalid label"));
        assert!(bad("lock or [%r10-8]").contains("Invalid number of operands for lock"));
        assert!(bad("lock").contains("Invalid number of operands for lock"));
        assert!(bad("ldxq %r0, %r1").contains("Invalid mnemonic"));
        assert!(bad("ldxb %r0, %r1").contains("memory operand"));
        assert!(bad("ldxb %r0, [%r1+0x10000]").contains("16 bits"));
        assert!(bad("lddw %r0").contains("Invalid number of operands"));
        assert!(bad("mov %r0 1").contains("separated"));
        assert!(bad("").contains("no instructions"));
        assert!(bad("L:\nL:\nexit").contains("duplicate label"));
        assert!(bad("movsx3232 %r0, %r1").contains("Invalid mnemonic"));
        assert!(bad("movsx864 %r0, 1").contains("register source"));
        assert!(bad("ja 5").contains("label or a relative offset"));
        assert!(bad("ja +40000").contains("16 bits"));
        assert_eq!(bad("exit\nfoo %r0"), "line 2: Invalid mnemonic: `foo`");
    }
}
