//! Stack slots held in registers.
//!
//! In a verified program most stack traffic is the compiler's own: spills and
//! fills at constant `r10` offsets. When nothing in a function ever takes the
//! frame's address (r10 is used only as the base of plain loads and stores),
//! no helper, callee or other instruction can reach the frame: its slots are
//! private to those loads and stores, and a slot accessed only with one width
//! at one offset (no access of another width or offset overlaps it) behaves
//! exactly like a register. Such slots become Cranelift variables, so the
//! register allocator keeps them in machine registers and spills only when it
//! runs out, as a native compiler would.
//!
//! Only trusted (verified) code is analysed: in checked mode any register may
//! hold a frame address computed at run time.

use cordon_isa::{Kind, Operand, Program, Size};

use super::analysis::Function;

/// A stack slot kept in a variable: `[r10 + off, r10 + off + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Slot {
    pub off: i16,
    pub size: Size,
}

impl Slot {
    fn range(self) -> (i64, i64) {
        let lo = self.off as i64;
        (lo, lo + self.size.bytes() as i64)
    }
}

/// Whether instruction `kind` uses r10 in any way other than as the base of a
/// non-atomic load or store (which would let the frame's address escape into a
/// register, memory, a helper or a callee).
fn leaks_frame(kind: &Kind) -> bool {
    let reg = |o: Operand| matches!(o, Operand::Reg(10));
    match *kind {
        Kind::Alu { dst, src, .. } => dst == 10 || reg(src),
        Kind::Endian { dst, .. } => dst == 10,
        Kind::Jcond { dst, src, .. } => dst == 10 || reg(src),
        Kind::Callx { reg } => reg == 10,
        Kind::LdInd { src, .. } => src == 10,
        Kind::Ldx { dst, .. } => dst == 10,
        Kind::Stx { src, .. } => src == 10,
        Kind::Atomic { dst, src, .. } => dst == 10 || src == 10,
        Kind::Lddw { dst, .. } => dst == 10,
        Kind::St { .. }
        | Kind::Ja { .. }
        | Kind::MayGoto { .. }
        | Kind::Exit
        | Kind::CallHelper { .. }
        | Kind::CallKfunc { .. }
        | Kind::CallLocal { .. }
        | Kind::LdAbs { .. } => false,
    }
}

/// The r10-relative access of an instruction, if it has one.
fn frame_access(kind: &Kind) -> Option<Slot> {
    match *kind {
        Kind::Ldx {
            size, src: 10, off, ..
        }
        | Kind::St {
            size, dst: 10, off, ..
        }
        | Kind::Stx {
            size, dst: 10, off, ..
        } => Some(Slot { off, size }),
        _ => None,
    }
}

/// The slots of `f` that can live in variables (sorted, disjoint). Empty when
/// the frame's address is used in any other way.
pub(crate) fn promotable_slots(prog: &Program, f: &Function) -> Vec<Slot> {
    let mut accesses: Vec<Slot> = Vec::new();
    for &pc in &f.pcs {
        let Some(kind) = prog.kind(pc) else {
            return Vec::new();
        };
        if leaks_frame(&kind) {
            return Vec::new();
        }
        if let Some(s) = frame_access(&kind) {
            accesses.push(s);
        }
    }
    accesses.sort_unstable_by_key(|s| (s.off, s.size.bytes()));
    accesses.dedup();
    // Sorted by offset: a slot overlaps another access only if a neighbour in
    // offset order overlaps it, but several accesses can share a start, so
    // compare against the furthest end seen so far and the next start.
    let mut out = Vec::new();
    let mut max_end = i64::MIN;
    for (i, s) in accesses.iter().enumerate() {
        let (lo, hi) = s.range();
        let before = max_end > lo;
        let after = accesses.get(i + 1).is_some_and(|n| n.range().0 < hi);
        if !before && !after {
            out.push(*s);
        }
        max_end = max_end.max(hi);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jit::analysis::analyse_function;
    use cordon_isa::assemble;

    fn slots(src: &str) -> Vec<(i16, Size)> {
        let prog = Program::new(assemble(src).expect("assembles")).expect("valid");
        let f = analyse_function(&prog, 0);
        promotable_slots(&prog, &f)
            .into_iter()
            .map(|s| (s.off, s.size))
            .collect()
    }

    #[test]
    fn spill_slots_are_promoted() {
        let s = slots(
            "stxdw [%r10-8], %r1\n stxw [%r10-16], %r2\n ldxdw %r0, [%r10-8]\n ldxw %r3, [%r10-16]\n exit",
        );
        assert_eq!(s, vec![(-16, Size::W), (-8, Size::DW)]);
    }

    #[test]
    fn address_taken_frame_is_not_promoted() {
        assert!(
            slots("stxdw [%r10-8], %r1\n mov %r2, %r10\n ldxdw %r0, [%r10-8]\n exit").is_empty()
        );
        assert!(slots("stxdw [%r10-8], %r1\n stxdw [%r10-16], %r10\n exit").is_empty());
        assert!(slots("stdw [%r10-8], 1\n mov %r1, 1\n lock add [%r10-8], %r1\n exit").is_empty());
        assert!(slots("stdw [%r10-8], 1\n jeq %r10, 0, +0\n exit").is_empty());
    }

    #[test]
    fn overlapping_widths_stay_in_memory() {
        // A doubleword written and its low word read back, next to a clean slot.
        let s = slots(
            "stxdw [%r10-8], %r1\n ldxw %r0, [%r10-8]\n stxh [%r10-10], %r1\n ldxh %r2, [%r10-10]\n \
             stxw [%r10-20], %r1\n ldxb %r3, [%r10-17]\n stxdw [%r10-32], %r1\n exit",
        );
        assert_eq!(s, vec![(-32, Size::DW), (-10, Size::H)]);
    }
}
