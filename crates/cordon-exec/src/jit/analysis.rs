//! Control-flow analysis of a validated program for the JIT: which instruction
//! indices start a BPF function, which instructions each function can reach, and
//! where the basic blocks begin.
//!
//! A function is the set of instructions reachable from its entry by jumps and
//! fall-through (calls are not followed). For a verified program those sets are
//! disjoint; for an unverified program run in checked mode two functions may
//! share code (a jump across a function boundary), in which case the shared
//! instructions are simply translated into both, which is exactly what the
//! flat-`pc` interpreter does.

use cordon_isa::{Kind, Program};

/// Where control goes after an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Continue at the next instruction (which may be one past the end).
    Next(usize),
    /// Unconditional jump.
    Jump(usize),
    /// Conditional jump: fall-through and taken target.
    Branch { next: usize, target: usize },
    /// `exit`: return from the current function.
    Return,
}

/// Control flow out of slot `pc` (which must hold an instruction, not the
/// second half of an `lddw`).
pub(crate) fn flow(kind: &Kind, pc: usize) -> Flow {
    let rel = |off: i64| (pc as i64 + 1 + off) as usize;
    match *kind {
        Kind::Ja { off } => Flow::Jump(rel(off as i64)),
        Kind::Jcond { off, .. } | Kind::MayGoto { off } => Flow::Branch {
            next: pc + 1,
            target: rel(off as i64),
        },
        Kind::Exit => Flow::Return,
        Kind::Lddw { .. } => Flow::Next(pc + 2),
        _ => Flow::Next(pc + 1),
    }
}

/// One BPF function as the JIT sees it.
#[derive(Clone, Debug)]
pub(crate) struct Function {
    /// Index of the first instruction.
    pub entry: usize,
    /// Reachable instruction indices in increasing order.
    pub pcs: Vec<usize>,
    /// `leader[i]` is true when `pcs[i]` starts a basic block.
    pub leader: Vec<bool>,
    /// `back[i]` is true when `pcs[i]` is the target of a jump from itself or a
    /// later instruction (a loop header): its block can only be sealed once the
    /// whole function is translated; every other block is sealed on entry.
    pub back: Vec<bool>,
}

/// Entries of all functions: 0 and every `call local` target, sorted.
pub(crate) fn function_entries(prog: &Program) -> Vec<usize> {
    let mut entries = vec![0usize];
    for (pc, kind) in prog.kinds().iter().enumerate() {
        if let Some(Kind::CallLocal { rel }) = kind {
            entries.push((pc as i64 + 1 + *rel as i64) as usize);
        }
    }
    entries.sort_unstable();
    entries.dedup();
    entries
}

/// Reachability and block leaders of the function starting at `entry`.
pub(crate) fn analyse_function(prog: &Program, entry: usize) -> Function {
    let n = prog.len();
    let mut seen = vec![false; n];
    let mut is_leader = vec![false; n];
    let mut is_back = vec![false; n];
    let mut work = vec![entry];
    seen[entry] = true;
    is_leader[entry] = true;
    while let Some(pc) = work.pop() {
        let kind = prog
            .kind(pc)
            .expect("validated program: targets are instructions");
        let mut visit = |t: usize, leader: bool, work: &mut Vec<usize>| {
            if t >= n {
                // Falls off the end: the translator emits the run-time error.
                return;
            }
            if leader {
                is_leader[t] = true;
            }
            if t <= pc {
                is_back[t] = true;
            }
            if !seen[t] {
                seen[t] = true;
                work.push(t);
            }
        };
        match flow(&kind, pc) {
            Flow::Next(t) => visit(t, false, &mut work),
            Flow::Jump(t) => visit(t, true, &mut work),
            Flow::Branch { next, target } => {
                visit(next, true, &mut work);
                visit(target, true, &mut work);
            }
            Flow::Return => {}
        }
    }
    let pcs: Vec<usize> = (0..n).filter(|&p| seen[p]).collect();
    // An instruction whose predecessor in `pcs` does not fall through into it
    // starts a block as well (it is only reached by a jump, already marked, or
    // it follows a terminator).
    let leader = pcs.iter().map(|&p| is_leader[p]).collect();
    let back = pcs.iter().map(|&p| is_back[p]).collect();
    Function {
        entry,
        pcs,
        leader,
        back,
    }
}

/// Registers as a bit set (bit `r` for `r0..r9`).
pub(crate) type RegSet = u16;

pub(crate) const ARGS: RegSet = 0b11_1110; // r1..r5

fn bit(r: u8) -> RegSet {
    if r < 10 { 1 << r } else { 0 }
}

fn operand_bits(src: cordon_isa::Operand) -> RegSet {
    match src {
        cordon_isa::Operand::Reg(r) => bit(r),
        cordon_isa::Operand::Imm(_) => 0,
    }
}

/// Registers read and written by one instruction. `callee_in(target)` gives the
/// registers a local call passes; `checked` selects the checked calling
/// convention (callees hand r0–r5 back, `exit` of a callee reads r0–r5).
fn uses_defs(
    kind: &Kind,
    pc: usize,
    checked: bool,
    callee_in: &dyn Fn(usize) -> RegSet,
) -> (RegSet, RegSet) {
    use cordon_isa::{AluOp, AtomicOp};
    match *kind {
        Kind::Alu { op, dst, src, .. } => match op {
            AluOp::Mov | AluOp::MovSx(_) => (operand_bits(src), bit(dst)),
            _ => (bit(dst) | operand_bits(src), bit(dst)),
        },
        Kind::Endian { dst, .. } => (bit(dst), bit(dst)),
        Kind::Ja { .. } | Kind::MayGoto { .. } => (0, 0),
        Kind::Jcond { dst, src, .. } => (bit(dst) | operand_bits(src), 0),
        Kind::Exit => (if checked { 1 | ARGS } else { 1 }, 0),
        Kind::CallHelper { .. } | Kind::CallKfunc { .. } => (ARGS, 1),
        Kind::Callx { reg } => (ARGS | bit(reg), 1),
        Kind::CallLocal { rel } => {
            let target = (pc as i64 + 1 + rel as i64) as usize;
            (callee_in(target), if checked { 1 | ARGS } else { 1 })
        }
        Kind::Lddw { dst, .. } => (0, bit(dst)),
        Kind::LdAbs { .. } => (0, 1),
        Kind::LdInd { src, .. } => (bit(src), 1),
        Kind::Ldx { dst, src, .. } => (bit(src), bit(dst)),
        Kind::St { dst, .. } => (bit(dst), 0),
        Kind::Stx { dst, src, .. } => (bit(dst) | bit(src), 0),
        Kind::Atomic {
            op,
            fetch,
            dst,
            src,
            ..
        } => {
            if op == AtomicOp::Cmpxchg {
                (bit(dst) | bit(src) | 1, 1)
            } else {
                (bit(dst) | bit(src), if fetch { bit(src) } else { 0 })
            }
        }
    }
}

/// Registers live at the entry of `f` (read before being written on some path).
pub(crate) fn live_in(
    prog: &Program,
    f: &Function,
    checked: bool,
    callee_in: &dyn Fn(usize) -> RegSet,
) -> RegSet {
    // Indexed by position in `f.pcs` (sorted), so the cost is linear in the
    // function's size, not the program's.
    let pos = |pc: usize| f.pcs.binary_search(&pc).ok();
    let mut live = vec![0 as RegSet; f.pcs.len()];
    let at = |live: &[RegSet], pc: usize| pos(pc).map_or(0, |i| live[i]);
    let mut changed = true;
    while changed {
        changed = false;
        for i in (0..f.pcs.len()).rev() {
            let pc = f.pcs[i];
            let kind = prog.kind(pc).expect("reachable instruction");
            let out = match flow(&kind, pc) {
                Flow::Next(t) | Flow::Jump(t) => at(&live, t),
                Flow::Branch { next, target } => at(&live, next) | at(&live, target),
                Flow::Return => 0,
            };
            let (u, d) = uses_defs(&kind, pc, checked, callee_in);
            let l = u | (out & !d);
            if l != live[i] {
                live[i] = l;
                changed = true;
            }
        }
    }
    at(&live, f.entry)
}
