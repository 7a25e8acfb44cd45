//! Instruction patching after verification (Linux's `bpf_patch_insn_data`):
//! single-slot instructions are replaced by sequences, and every jump, call
//! and subprogram start is remapped.
//!
//! Used for:
//! * `bpf_tail_call`: a call into the runtime that runs the target with the
//!   same context and, when it ran, returns its result from the *current*
//!   frame (so a tail call in a subprogram replaces only that frame);
//! * `bpf_loop`: inlined into an instruction loop that calls the callback
//!   subprogram (Linux's `inline_bpf_loop`), with r6–r9 saved in 32 extra
//!   bytes of the caller's frame;
//! * `bpf_for_each_map_elem`: inlined the same way, the elements coming from
//!   the runtime's cursor helper (see [`crate::helpers::for_each`]);
//! * `bpf_throw` in a program with an exception callback: call the callback
//!   with the cookie, then end the program with its return value.

use std::collections::BTreeMap;

use cordon_isa::Insn;

use crate::helpers::internal;

/// One instruction of a replacement sequence.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PInsn {
    /// Emitted as is (jumps inside the sequence are already relative to it).
    Raw(Insn),
    /// `call` of the subprogram starting at this *original* instruction index.
    CallOld(usize),
}

const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;
const JA: u8 = 0x05;
const JA32: u8 = 0x06;

fn is_jump(i: &Insn) -> bool {
    let class = i.code & 7;
    (class == 5 || class == 6) && i.code != CALL && i.code != EXIT
}

/// Applies `patches` (original index → replacement of that single slot).
/// Returns the new code and the new index of every original index (plus one
/// past the end).
pub(crate) fn apply(
    insns: &[Insn],
    patches: &BTreeMap<usize, Vec<PInsn>>,
) -> Result<(Vec<Insn>, Vec<usize>), String> {
    let mut new_pc = Vec::with_capacity(insns.len() + 1);
    let mut pos = 0usize;
    for pc in 0..insns.len() {
        new_pc.push(pos);
        pos += patches.get(&pc).map_or(1, Vec::len);
    }
    new_pc.push(pos);
    let rel = |from_new: usize, target_old: usize| -> Result<i64, String> {
        let t = *new_pc
            .get(target_old)
            .ok_or_else(|| format!("jump target {target_old} outside the program"))?;
        Ok(t as i64 - (from_new as i64 + 1))
    };
    let mut out = Vec::with_capacity(pos);
    let mut pc = 0;
    while pc < insns.len() {
        let here = new_pc[pc];
        if let Some(seq) = patches.get(&pc) {
            for (k, p) in seq.iter().enumerate() {
                match *p {
                    PInsn::Raw(i) => out.push(i),
                    PInsn::CallOld(target) => {
                        let imm = rel(here + k, target)?;
                        out.push(Insn::new(CALL, 0, 1, 0, to_i32(imm)?));
                    }
                }
            }
            pc += 1;
            continue;
        }
        let mut i = insns[pc];
        if i.is_lddw() {
            out.push(i);
            if let Some(next) = insns.get(pc + 1) {
                out.push(*next);
            }
            pc += 2;
            continue;
        }
        if (i.code == CALL && i.src == 1) || i.code == JA32 {
            let target = (pc as i64 + 1 + i.imm as i64) as usize;
            i.imm = to_i32(rel(here, target)?)?;
        } else if is_jump(&i) {
            let target = (pc as i64 + 1 + i.off as i64) as usize;
            let off = rel(here, target)?;
            i.off = i16::try_from(off).map_err(|_| {
                format!("instruction {pc}: jump offset {off} no longer fits 16 bits after patching")
            })?;
        }
        out.push(i);
        pc += 1;
    }
    Ok((out, new_pc))
}

fn to_i32(v: i64) -> Result<i32, String> {
    i32::try_from(v).map_err(|_| format!("offset {v} does not fit 32 bits"))
}

/// A tiny assembler for replacement sequences with forward/backward labels.
struct Seq {
    out: Vec<PInsn>,
    /// (index of jump, label) to fix.
    fixups: Vec<(usize, usize)>,
    labels: Vec<Option<usize>>,
}

impl Seq {
    fn new() -> Seq {
        Seq {
            out: Vec::new(),
            fixups: Vec::new(),
            labels: Vec::new(),
        }
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.out.len());
    }
    fn raw(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.out
            .push(PInsn::Raw(Insn::new(code, dst, src, off, imm)));
    }
    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, l: usize) {
        self.fixups.push((self.out.len(), l));
        self.raw(code, dst, src, 0, imm);
    }
    fn finish(mut self) -> Vec<PInsn> {
        for (at, l) in self.fixups {
            let target = self.labels[l].expect("bound label");
            if let PInsn::Raw(i) = &mut self.out[at] {
                i.off = (target as i64 - at as i64 - 1) as i16;
            }
        }
        self.out
    }
}

/// `bpf_tail_call(ctx, map, index)` → try the tail call in the runtime; when
/// it happened, return its result from this frame.
pub(crate) fn tail_call_seq() -> Vec<PInsn> {
    let mut s = Seq::new();
    let fell = s.label();
    s.raw(CALL, 0, 0, 0, internal::TAIL_CALL_TRY as i32);
    s.jump(0x15, 0, 0, 0, fell); // if r0 == 0 goto fell
    s.raw(CALL, 0, 0, 0, internal::TAIL_CALL_RESULT as i32);
    s.raw(EXIT, 0, 0, 0, 0);
    s.bind(fell);
    // A failed tail call falls through; r0 is not readable after it.
    s.raw(0xb7, 0, 0, 0, 0);
    s.finish()
}

/// `bpf_throw(cookie)` in a program with an exception callback.
pub(crate) fn throw_seq(callback: usize) -> Vec<PInsn> {
    vec![
        PInsn::CallOld(callback),
        PInsn::Raw(Insn::new(0xbf, 1, 0, 0, 0)), // r1 = r0
        PInsn::Raw(Insn::new(CALL, 0, 0, 0, internal::STOP as i32)),
    ]
}

/// `BPF_MAX_LOOPS`.
const MAX_LOOPS: i32 = 8 * 1024 * 1024;

/// `bpf_loop(nr, callback, ctx, flags)` inlined: `callbacks` are the original
/// indices of every function whose address the program takes; `save` is the
/// frame offset (positive, multiple of 8) below which 32 bytes are free for
/// saving r6–r9.
pub(crate) fn loop_seq(callbacks: &[usize], save: i16) -> Vec<PInsn> {
    let mut s = Seq::new();
    let (lp, done, bad_flags, too_big, end) =
        (s.label(), s.label(), s.label(), s.label(), s.label());
    let calls: Vec<usize> = callbacks.iter().map(|_| s.label()).collect();
    let after = s.label();
    s.jump(0x55, 4, 0, 0, bad_flags); // if r4 != 0
    s.jump(0x26, 1, 0, MAX_LOOPS, too_big); // if w1 > MAX_LOOPS
    for (k, reg) in (6u8..=9).enumerate() {
        s.raw(0x7b, 10, reg, -(save + 8 * (k as i16 + 1)), 0); // *(u64 *)(r10 - ..) = rN
    }
    s.raw(0xbc, 6, 1, 0, 0); // w6 = w1
    s.raw(0xbf, 7, 2, 0, 0); // r7 = r2
    s.raw(0xbf, 8, 3, 0, 0); // r8 = r3
    s.raw(0xb7, 9, 0, 0, 0); // r9 = 0
    s.bind(lp);
    s.jump(0x3d, 9, 6, 0, done); // if r9 >= r6 goto done
    s.raw(0xbf, 1, 9, 0, 0); // r1 = r9
    s.raw(0xbf, 2, 8, 0, 0); // r2 = r8
    for (k, &cb) in callbacks.iter().enumerate() {
        s.jump(0x15, 7, 0, cb as i32, calls[k]); // if r7 == cb
    }
    s.raw(CALL, 0, 0, 0, internal::BAD_CALLBACK as i32);
    s.jump(JA, 0, 0, 0, done);
    for (k, &cb) in callbacks.iter().enumerate() {
        s.bind(calls[k]);
        s.out.push(PInsn::CallOld(cb));
        s.jump(JA, 0, 0, 0, after);
    }
    s.bind(after);
    s.raw(0x07, 9, 0, 0, 1); // r9 += 1
    s.jump(0x55, 0, 0, 0, done); // if r0 != 0 goto done
    s.jump(JA, 0, 0, 0, lp);
    s.bind(done);
    s.raw(0xbf, 0, 9, 0, 0); // r0 = r9
    for (k, reg) in (6u8..=9).enumerate() {
        s.raw(0x79, reg, 10, -(save + 8 * (k as i16 + 1)), 0);
    }
    s.jump(JA, 0, 0, 0, end);
    s.bind(bad_flags);
    s.raw(0xb7, 0, 0, 0, -22); // -EINVAL
    s.jump(JA, 0, 0, 0, end);
    s.bind(too_big);
    s.raw(0xb7, 0, 0, 0, -7); // -E2BIG
    s.bind(end);
    // `end` is the instruction after the sequence: a jump to one past the
    // last emitted instruction lands on the next original instruction.
    let mut out = s.finish();
    // The label `end` was bound at out.len(); the fixup already points there.
    out.shrink_to_fit();
    out
}

/// Bytes a function calling `bpf_loop` or `bpf_for_each_map_elem` gets below
/// its verified frame: r6–r9 saved at `save + 8..=save + 32`, the
/// for-each cursor at `save + 56` (see [`crate::helpers::for_each`]).
pub(crate) const CALLBACK_FRAME_EXTRA: u32 = 64;

/// `bpf_for_each_map_elem(map, callback, ctx, flags)` inlined as a loop over
/// the [`internal::FOR_EACH_NEXT`] cursor: `callbacks` as for
/// [`loop_seq`]; `save` the frame offset below which
/// [`CALLBACK_FRAME_EXTRA`] bytes are free.
pub(crate) fn for_each_seq(callbacks: &[usize], save: i16) -> Vec<PInsn> {
    let mut s = Seq::new();
    let (lp, done, bad_flags, end) = (s.label(), s.label(), s.label(), s.label());
    let calls: Vec<usize> = callbacks.iter().map(|_| s.label()).collect();
    let after = s.label();
    let cursor = -(save + 56);
    s.jump(0x55, 4, 0, 0, bad_flags); // if r4 != 0
    for (k, reg) in (6u8..=9).enumerate() {
        s.raw(0x7b, 10, reg, -(save + 8 * (k as i16 + 1)), 0); // *(u64 *)(r10 - ..) = rN
    }
    s.raw(0xbf, 6, 1, 0, 0); // r6 = r1 (map)
    s.raw(0xbf, 7, 2, 0, 0); // r7 = r2 (callback)
    s.raw(0xbf, 8, 3, 0, 0); // r8 = r3 (callback_ctx)
    s.raw(0xb7, 9, 0, 0, 0); // r9 = 0 (calls)
    s.raw(0x7a, 10, 0, cursor, 0); // *(u64 *)(r10 + cursor) = 0
    s.bind(lp);
    s.raw(0xbf, 1, 6, 0, 0); // r1 = r6
    s.raw(0xbf, 2, 10, 0, 0); // r2 = r10
    s.raw(0x07, 2, 0, 0, cursor as i32); // r2 += cursor
    s.raw(CALL, 0, 0, 0, internal::FOR_EACH_NEXT as i32);
    s.jump(0x15, 0, 0, 0, done); // if r0 == 0 goto done
    s.raw(0xbf, 2, 0, 0, 0); // r2 = r0 (key)
    s.raw(0xbf, 1, 6, 0, 0); // r1 = r6 (map)
    s.raw(0x79, 3, 10, cursor + 16, 0); // r3 = value
    s.raw(0xbf, 4, 8, 0, 0); // r4 = r8 (ctx)
    s.raw(0x07, 9, 0, 0, 1); // r9 += 1
    for (k, &cb) in callbacks.iter().enumerate() {
        s.jump(0x15, 7, 0, cb as i32, calls[k]); // if r7 == cb
    }
    s.raw(CALL, 0, 0, 0, internal::BAD_CALLBACK as i32);
    s.jump(JA, 0, 0, 0, done);
    for (k, &cb) in callbacks.iter().enumerate() {
        s.bind(calls[k]);
        s.out.push(PInsn::CallOld(cb));
        s.jump(JA, 0, 0, 0, after);
    }
    s.bind(after);
    s.jump(0x55, 0, 0, 0, done); // if r0 != 0 goto done (stop)
    s.jump(JA, 0, 0, 0, lp);
    s.bind(done);
    s.raw(0xbf, 0, 9, 0, 0); // r0 = r9
    for (k, reg) in (6u8..=9).enumerate() {
        s.raw(0x79, reg, 10, -(save + 8 * (k as i16 + 1)), 0);
    }
    s.jump(JA, 0, 0, 0, end);
    s.bind(bad_flags);
    s.raw(0xb7, 0, 0, 0, -22); // -EINVAL
    s.bind(end);
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_and_calls_are_remapped() {
        // 0: if r1 == 0 goto 3 ; 1: call 12 ; 2: call local +1 (-> 4) ; 3: exit ; 4: exit
        let insns = vec![
            Insn::new(0x15, 1, 0, 2, 0),
            Insn::new(CALL, 0, 0, 0, 12),
            Insn::new(CALL, 0, 1, 0, 1),
            Insn::new(EXIT, 0, 0, 0, 0),
            Insn::new(EXIT, 0, 0, 0, 0),
        ];
        let mut p = BTreeMap::new();
        p.insert(1usize, tail_call_seq());
        let (out, map) = apply(&insns, &p).unwrap();
        assert_eq!(out.len(), 5 - 1 + tail_call_seq().len());
        assert_eq!(map[3], 2 + tail_call_seq().len());
        // The branch still reaches the first exit.
        let j = out[0];
        assert_eq!(1 + j.off as usize, map[3]);
        // The local call still reaches instruction 4.
        let c = out[map[2]];
        assert_eq!((map[2] as i64 + 1 + c.imm as i64) as usize, map[4]);
    }

    #[test]
    fn for_each_sequence_labels_resolve() {
        let seq = for_each_seq(&[10, 20], 16);
        let n = seq.len();
        for (k, p) in seq.iter().enumerate() {
            if let PInsn::Raw(i) = p
                && is_jump(i)
            {
                let t = k as i64 + 1 + i.off as i64;
                assert!(t >= 0 && t as usize <= n, "jump at {k} to {t} of {n}");
            }
        }
    }

    #[test]
    fn loop_sequence_labels_resolve() {
        let seq = loop_seq(&[10, 20], 16);
        let n = seq.len();
        for (k, p) in seq.iter().enumerate() {
            if let PInsn::Raw(i) = p
                && is_jump(i)
            {
                let t = k as i64 + 1 + i.off as i64;
                assert!(t >= 0 && t as usize <= n, "jump at {k} to {t} of {n}");
            }
        }
    }
}
