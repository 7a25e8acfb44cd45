//! Structure checks done before abstract interpretation: subprogram
//! discovery, jumps staying inside their subprogram, no fall-through off a
//! subprogram's end, depth-first control-flow walk (unreachable code,
//! back-edges, recursion), prune points and static register liveness.

use crate::env::VerifyEnv;
use cordon_isa::{AtomicOp, Kind, Operand, Program, opcode::PSEUDO_FUNC};

/// A contiguous subprogram `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subprog {
    pub start: usize,
    pub end: usize,
    /// Instructions that call another subprogram (`call src=1`), with the callee index.
    pub calls: Vec<(usize, usize)>,
    /// Instructions that take another subprogram's address (`lddw src=4`), with its index.
    pub func_refs: Vec<(usize, usize)>,
    pub has_tail_call: bool,
    pub has_ld_abs: bool,
}

/// Result of the structural pass.
#[derive(Clone, Debug)]
pub struct Cfg {
    pub subprogs: Vec<Subprog>,
    /// `subprog_of[pc]` = index of the subprogram containing `pc`.
    pub subprog_of: Vec<usize>,
    /// Jump edges `(from, to)` that close a loop.
    pub back_edges: Vec<(usize, usize)>,
    /// Instructions where states are checkpointed for pruning.
    pub prune_point: Vec<bool>,
    /// Registers live on entry to each instruction (bit r).
    pub live_in: Vec<u16>,
    /// Subprogram index of the exception callback.
    pub exception_cb: Option<usize>,
}

/// A structural error: instruction index and message.
pub type CfgError = (Option<usize>, String);

fn target(pc: usize, rel: i64) -> i64 {
    pc as i64 + 1 + rel
}

impl Cfg {
    pub fn build(prog: &Program, env: &VerifyEnv) -> Result<Cfg, CfgError> {
        let n = prog.len();
        let mut starts = vec![0usize];
        for pc in 0..n {
            let t = match prog.kind(pc) {
                Some(Kind::CallLocal { rel }) => target(pc, rel as i64),
                Some(Kind::Lddw {
                    pseudo: PSEUDO_FUNC,
                    imm,
                    ..
                }) => target(pc, imm as i64),
                Some(Kind::Callx { .. }) if !env.privileged() => {
                    return Err((Some(pc), "unknown opcode 8d".to_string()));
                }
                _ => continue,
            };
            if t < 0 || t >= n as i64 || prog.kind(t as usize).is_none() {
                return Err((Some(pc), format!("call to invalid destination {t}")));
            }
            starts.push(t as usize);
        }
        if let Some(x) = env.exception_callback {
            if x >= n || prog.kind(x).is_none() {
                return Err((Some(x), format!("exception callback at invalid insn {x}")));
            }
            starts.push(x);
        }
        starts.sort_unstable();
        starts.dedup();
        if starts.len() > 1 && !env.privileged() {
            return Err((
                Some(starts[1]),
                "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN"
                    .to_string(),
            ));
        }
        for (&insn, sig) in &env.global_funcs {
            if insn != 0 && starts.binary_search(&insn).is_err() {
                return Err((
                    Some(insn),
                    format!(
                        "global function {} at insn {insn} is not a subprogram start",
                        sig.name
                    ),
                ));
            }
        }
        let mut subprogs: Vec<Subprog> = Vec::with_capacity(starts.len());
        let mut subprog_of = vec![0usize; n];
        for (i, &s) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(n);
            for slot in subprog_of.iter_mut().take(end).skip(s) {
                *slot = i;
            }
            subprogs.push(Subprog {
                start: s,
                end,
                calls: Vec::new(),
                func_refs: Vec::new(),
                has_tail_call: false,
                has_ld_abs: false,
            });
        }
        let idx_of = |pc: usize| starts.binary_search(&pc).ok();
        // Per-subprogram checks: jumps stay inside, last insn is exit or ja.
        for (si, sp) in subprogs.iter_mut().enumerate() {
            for pc in sp.start..sp.end {
                let Some(k) = prog.kind(pc) else { continue };
                match k {
                    Kind::CallLocal { rel } => {
                        let t = target(pc, rel as i64) as usize;
                        sp.calls.push((pc, idx_of(t).unwrap_or(0)));
                    }
                    Kind::Lddw {
                        pseudo: PSEUDO_FUNC,
                        imm,
                        ..
                    } => {
                        let t = target(pc, imm as i64) as usize;
                        sp.func_refs.push((pc, idx_of(t).unwrap_or(0)));
                    }
                    Kind::CallHelper { id } if id == crate::proto::helper::TAIL_CALL as i32 => {
                        sp.has_tail_call = true;
                    }
                    Kind::LdAbs { .. } | Kind::LdInd { .. } => sp.has_ld_abs = true,
                    _ => {}
                }
                if let Some(off) = k.jump_offset() {
                    let t = target(pc, off as i64);
                    if t < sp.start as i64 || t >= sp.end as i64 {
                        return Err((Some(pc), format!("jump out of range from insn {pc} to {t}")));
                    }
                }
            }
            let last = sp.end - 1;
            if !matches!(prog.kind(last), Some(Kind::Exit) | Some(Kind::Ja { .. })) {
                let _ = si;
                return Err((Some(last), "last insn is not an exit or jmp".to_string()));
            }
        }
        let exception_cb = env.exception_callback.and_then(idx_of);
        if let Some(cb) = exception_cb {
            for sp in &subprogs {
                for &(pc, callee) in sp.calls.iter().chain(&sp.func_refs) {
                    if callee == cb {
                        return Err((Some(pc), "cannot call exception cb directly".to_string()));
                    }
                }
            }
        }
        let mut cfg = Cfg {
            subprogs,
            subprog_of,
            back_edges: Vec::new(),
            prune_point: vec![false; n],
            live_in: vec![0; n],
            exception_cb,
        };
        cfg.walk(prog, env)?;
        cfg.liveness(prog);
        Ok(cfg)
    }

    /// Successors of `pc`: (target, is_call_edge).
    fn succs(prog: &Program, pc: usize) -> Vec<(usize, bool)> {
        let Some(k) = prog.kind(pc) else {
            return Vec::new();
        };
        let next = |d: usize| (pc + d, false);
        match k {
            Kind::Exit => Vec::new(),
            Kind::Ja { off } => vec![(target(pc, off as i64) as usize, false)],
            Kind::Jcond { off, .. } | Kind::MayGoto { off } => {
                vec![next(1), (target(pc, off as i64) as usize, false)]
            }
            Kind::CallLocal { rel } => vec![next(1), (target(pc, rel as i64) as usize, true)],
            Kind::Lddw {
                pseudo: PSEUDO_FUNC,
                imm,
                ..
            } => vec![next(2), (target(pc, imm as i64) as usize, true)],
            Kind::Lddw { .. } => vec![next(2)],
            _ => vec![next(1)],
        }
    }

    fn walk(&mut self, prog: &Program, env: &VerifyEnv) -> Result<(), CfgError> {
        let n = prog.len();
        // 0 = unseen, 1 = on the DFS stack, 2 = done.
        let mut state = vec![0u8; n];
        let mut roots = vec![0usize];
        roots.extend(self.exception_cb.map(|s| self.subprogs[s].start));
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in roots {
            if state[root] != 0 {
                continue;
            }
            state[root] = 1;
            self.prune_point[root] = true;
            stack.push((root, 0));
            self.walk_from(prog, env, &mut state, &mut stack)?;
        }
        for (pc, st) in state.iter().enumerate() {
            if prog.kind(pc).is_some() && *st == 0 {
                return Err((Some(pc), format!("unreachable insn {pc}")));
            }
        }
        Ok(())
    }

    fn walk_from(
        &mut self,
        prog: &Program,
        env: &VerifyEnv,
        state: &mut [u8],
        stack: &mut Vec<(usize, usize)>,
    ) -> Result<(), CfgError> {
        let n = prog.len();
        while let Some(&mut (pc, ref mut next_i)) = stack.last_mut() {
            let succ = Self::succs(prog, pc);
            if *next_i >= succ.len() {
                state[pc] = 2;
                stack.pop();
                continue;
            }
            let (t, is_call) = succ[*next_i];
            *next_i += 1;
            if t >= n {
                return Err((Some(pc), format!("jump out of range from insn {pc} to {t}")));
            }
            let is_branch = is_call || prog.kind(pc).and_then(|k| k.jump_offset()).is_some();
            if is_branch {
                self.prune_point[t] = true;
                if matches!(prog.kind(pc), Some(Kind::Jcond { .. })) {
                    self.prune_point[pc + 1] = true;
                }
                if matches!(prog.kind(pc), Some(Kind::MayGoto { .. })) {
                    // Linux checkpoints every may_goto: loops bounded by it
                    // converge there.
                    self.prune_point[pc] = true;
                    self.prune_point[pc + 1] = true;
                }
            }
            if matches!(
                prog.kind(pc),
                Some(Kind::CallHelper { .. } | Kind::CallKfunc { .. } | Kind::CallLocal { .. })
            ) {
                self.prune_point[pc] = true;
                self.prune_point[pc + 1] = true;
            }
            match state[t] {
                0 => {
                    state[t] = 1;
                    stack.push((t, 0));
                }
                1 => {
                    if is_call || !env.privileged() {
                        return Err((Some(pc), format!("back-edge from insn {pc} to {t}")));
                    }
                    self.back_edges.push((pc, t));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn uses_defs(k: &Kind) -> (u16, u16) {
        const ARGS: u16 = 0b11_1110;
        const CLOBBER: u16 = 0b11_1111;
        let r = |x: u8| 1u16 << x;
        let op = |o: &Operand| match o {
            Operand::Reg(x) => r(*x),
            Operand::Imm(_) => 0,
        };
        match *k {
            Kind::Alu {
                op: aop, dst, src, ..
            } => {
                let du = if matches!(aop, cordon_isa::AluOp::Mov | cordon_isa::AluOp::MovSx(_)) {
                    0
                } else {
                    r(dst)
                };
                (du | op(&src), r(dst))
            }
            Kind::Endian { dst, .. } => (r(dst), r(dst)),
            Kind::Ja { .. } | Kind::MayGoto { .. } => (0, 0),
            Kind::Jcond { dst, src, .. } => (r(dst) | op(&src), 0),
            Kind::CallHelper { .. } | Kind::CallKfunc { .. } | Kind::CallLocal { .. } => {
                (ARGS, CLOBBER)
            }
            Kind::Callx { reg } => (ARGS | r(reg), CLOBBER),
            Kind::Exit => (r(0), 0),
            Kind::Lddw { dst, .. } => (0, r(dst)),
            Kind::LdAbs { .. } => (r(6), CLOBBER),
            Kind::LdInd { src, .. } => (r(6) | r(src), CLOBBER),
            Kind::Ldx { dst, src, .. } => (r(src), r(dst)),
            Kind::St { dst, .. } => (r(dst), 0),
            Kind::Stx { dst, src, .. } => (r(dst) | r(src), 0),
            Kind::Atomic {
                op: aop,
                fetch,
                dst,
                src,
                ..
            } => {
                if aop == AtomicOp::Cmpxchg {
                    (r(dst) | r(src) | r(0), r(0))
                } else if fetch {
                    (r(dst) | r(src), r(src))
                } else {
                    (r(dst) | r(src), 0)
                }
            }
        }
    }

    fn liveness(&mut self, prog: &Program) {
        let n = prog.len();
        let ud: Vec<(u16, u16)> = (0..n)
            .map(|pc| prog.kind(pc).map(|k| Self::uses_defs(&k)).unwrap_or((0, 0)))
            .collect();
        let succs: Vec<Vec<usize>> = (0..n)
            .map(|pc| {
                Self::succs(prog, pc)
                    .into_iter()
                    .filter(|&(t, call)| !call && t < n)
                    .map(|(t, _)| t)
                    .collect()
            })
            .collect();
        let mut changed = true;
        while changed {
            changed = false;
            for pc in (0..n).rev() {
                if prog.kind(pc).is_none() {
                    continue;
                }
                let out = succs[pc].iter().fold(0u16, |a, &s| a | self.live_in[s]);
                let (u, d) = ud[pc];
                let inn = u | (out & !d);
                if inn != self.live_in[pc] {
                    self.live_in[pc] = inn;
                    changed = true;
                }
            }
        }
    }
}
