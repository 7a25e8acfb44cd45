//! The abstract interpreter: explores every path of the program with
//! Linux's register model, prunes with a visited-state cache, and collects
//! the verified facts.

mod calls;
mod mem;
mod ops;
mod precision;

use crate::cfg::Cfg;
use crate::env::{ArgKind, VerifyEnv};
use crate::error::VerifyError;
use crate::facts::{
    Held, HeldLock, HeldRef, Location, MAX_VARIANTS, SafePoint, SafePointKind, Stats, SubprogFacts,
    VerifiedFacts,
};
use crate::log;
use crate::prune::{Mode, states_equal};
use crate::state::{Frame, FrameKind, Reg, RegType, SlotType, State};
use cordon_isa::{Kind, Program};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

/// Internal error: message about the current instruction.
pub(crate) type Res<T> = Result<T, String>;

/// What happens after an instruction.
pub(crate) enum Flow {
    Next(usize),
    /// The path ended (exit, throw, or an impossible branch).
    End,
}

struct Checkpoint {
    /// The state (dropped once the checkpoint is evicted from the cache).
    state: Option<State>,
    /// Paths still being explored below this checkpoint (0 = complete).
    branches: u32,
    parent: Option<usize>,
    hit: u32,
    miss: u32,
    /// Instructions executed from the parent checkpoint to this one.
    trace: Vec<precision::TraceEntry>,
}

struct Pending {
    state: State,
    trace: Vec<precision::TraceEntry>,
    pc: usize,
    prev: usize,
    parent: Option<usize>,
}

/// The verifier for one program.
pub struct Verifier<'a> {
    prog: &'a Program,
    env: &'a VerifyEnv,
}

impl<'a> Verifier<'a> {
    pub fn new(prog: &'a Program, env: &'a VerifyEnv) -> Verifier<'a> {
        Verifier { prog, env }
    }

    /// Verify the program; on success return the facts it proved.
    pub fn verify(&self) -> Result<VerifiedFacts, VerifyError> {
        let started = Instant::now();
        let cfg = match Cfg::build(self.prog, self.env) {
            Ok(c) => c,
            Err((insn, message)) => {
                let mut log = String::new();
                if self.env.verbosity() > 0 {
                    let li = insn.and_then(|pc| {
                        self.env
                            .line_info
                            .iter()
                            .filter(|l| l.insn <= pc)
                            .max_by_key(|l| l.insn)
                    });
                    if let Some(li) = li {
                        let _ = writeln!(log, "; {} @ {}:{}", li.source.trim(), li.file, li.line);
                    }
                    let _ = writeln!(log, "{message}");
                }
                return Err(VerifyError { insn, message, log });
            }
        };
        let mut e = Engine::new(self.prog, self.env, cfg);
        let result = e.run_all();
        let mut stats = e.stats;
        stats.verification_time_usec = started.elapsed().as_micros() as u64;
        match result {
            Ok(()) => {
                let subprogs = e.stack_check().map_err(|(insn, m)| {
                    let mut err = e.error(insn, m);
                    err.log.push_str(&e.stats_lines(&stats));
                    err
                })?;
                let block = e.stats_lines(&stats);
                e.log.push_str(&block);
                let max_stack_depth = subprogs.first().map(|s| s.chain_stack_depth).unwrap_or(0);
                Ok(VerifiedFacts {
                    subprogs,
                    ctx_accesses: std::mem::take(&mut e.ctx_accesses),
                    call_maps: std::mem::take(&mut e.call_maps),
                    unreached: (0..e.prog.len())
                        .filter(|&pc| !e.seen[pc] && e.prog.kind(pc).is_some())
                        .collect(),
                    max_stack_depth,
                    max_refs: e.max_refs,
                    safe_points: std::mem::take(&mut e.safe_points),
                    back_edges: e.cfg.back_edges.clone(),
                    stats,
                    log: std::mem::take(&mut e.log),
                })
            }
            Err(m) => {
                let pc = e.pc;
                let mut err = e.error(Some(pc), m);
                err.log.push_str(&e.stats_lines(&stats));
                Err(err)
            }
        }
    }
}

/// Verify `prog` under `env`.
pub fn verify(prog: &Program, env: &VerifyEnv) -> Result<VerifiedFacts, VerifyError> {
    Verifier::new(prog, env).verify()
}

pub(crate) struct Engine<'a> {
    pub(crate) prog: &'a Program,
    pub(crate) env: &'a VerifyEnv,
    pub(crate) cfg: Cfg,
    pub(crate) st: State,
    pub(crate) pc: usize,
    parent: Option<usize>,
    pending: Vec<Pending>,
    checkpoints: Vec<Checkpoint>,
    explored: Vec<Vec<usize>>,
    pub(crate) id_gen: u32,
    pub(crate) stats: Stats,
    /// Stack bytes used per subprogram.
    pub(crate) stack_depth: Vec<u32>,
    pub(crate) max_refs: u32,
    safe_points: BTreeMap<usize, SafePoint>,
    back_edge_src: Vec<bool>,
    /// Subprograms whose address is taken (callbacks).
    pub(crate) is_callback: Vec<bool>,
    /// Log: everything (level 2) or the current path (level 1).
    log: String,
    /// Index of the global subprogram being verified on its own (None = main).
    pub(crate) root_global: Option<usize>,
    /// Verifying the exception callback.
    pub(crate) in_exception_cb: bool,
    pub(crate) jmps_processed: u64,
    last_cp_insns: u64,
    last_cp_jmps: u64,
    /// Checkpoints currently cached.
    cur_states: u64,
    /// Instructions executed since the last checkpoint of this path.
    pub(crate) trace: Vec<precision::TraceEntry>,
    /// Pointer type each memory instruction used (Linux's aux ptr_type).
    pub(crate) mem_ptr: Vec<Option<RegType>>,
    pub(crate) ctx_accesses: BTreeMap<usize, crate::facts::CtxAccess>,
    pub(crate) call_maps: BTreeMap<usize, crate::facts::CallMap>,
    /// Instructions some explored path executed.
    seen: Vec<bool>,
    /// Check alignment of the current access even without strict alignment.
    pub(crate) strict_once: bool,
    /// Line info record last printed in the log (by first instruction).
    prev_linfo: Option<usize>,
    /// Line info sorted by instruction.
    linfo: Vec<&'a crate::env::LineInfo>,
}

impl<'a> Engine<'a> {
    fn new(prog: &'a Program, env: &'a VerifyEnv, cfg: Cfg) -> Engine<'a> {
        let n = prog.len();
        let mut back_edge_src = vec![false; n];
        for &(from, _) in &cfg.back_edges {
            back_edge_src[from] = true;
        }
        let mut is_callback = vec![false; cfg.subprogs.len()];
        for sp in &cfg.subprogs {
            for &(_, callee) in &sp.func_refs {
                is_callback[callee] = true;
            }
        }
        let nsub = cfg.subprogs.len();
        Engine {
            prog,
            env,
            cfg,
            st: State {
                frames: vec![Frame::new(0, usize::MAX, 0, FrameKind::Main)],
                refs: Vec::new(),
                lock: None,
                in_callback: 0,
                callback_unroll: 0,
                may_goto_depth: 0,
            },
            pc: 0,
            parent: None,
            pending: Vec::new(),
            checkpoints: Vec::new(),
            explored: vec![Vec::new(); n],
            id_gen: 0,
            stats: Stats::default(),
            stack_depth: vec![0; nsub],
            max_refs: 0,
            safe_points: BTreeMap::new(),
            back_edge_src,
            is_callback,
            log: String::new(),
            root_global: None,
            in_exception_cb: false,
            jmps_processed: 0,
            last_cp_insns: 0,
            last_cp_jmps: 0,
            cur_states: 0,
            trace: Vec::new(),
            mem_ptr: vec![None; n],
            ctx_accesses: BTreeMap::new(),
            call_maps: BTreeMap::new(),
            seen: vec![false; n],
            strict_once: false,
            prev_linfo: None,
            linfo: {
                let mut l: Vec<&crate::env::LineInfo> = env.line_info.iter().collect();
                l.sort_by_key(|l| l.insn);
                l
            },
        }
    }

    pub(crate) fn new_id(&mut self) -> u32 {
        self.id_gen += 1;
        self.id_gen
    }

    pub(crate) fn privileged(&self) -> bool {
        self.env.privileged()
    }

    /// Build the public error, with the log and line info.
    fn error(&self, insn: Option<usize>, message: String) -> VerifyError {
        let mut log = String::new();
        if self.env.verbosity() > 0 {
            log.push_str(&self.log);
            // Structural errors (no trace) name the source line here; on a
            // path the trace already printed it before the instruction.
            if let Some(pc) = insn
                && let Some(li) = self.line_info(pc)
                && self.prev_linfo != Some(li.insn)
            {
                let _ = writeln!(log, "; {} @ {}:{}", li.source.trim(), li.file, li.line);
            }
            let _ = writeln!(log, "{message}");
        }
        VerifyError { insn, message, log }
    }

    /// Linux's closing log lines: statistics (with flag 4) and the
    /// `processed ...` line.
    fn stats_lines(&self, stats: &Stats) -> String {
        let mut out = String::new();
        if self.env.log_level & 4 != 0 {
            let _ = writeln!(
                out,
                "verification time {} usec",
                stats.verification_time_usec
            );
            let depths: Vec<String> = self
                .stack_depth
                .iter()
                .enumerate()
                .map(|(i, d)| (d + self.may_goto_stack(i)).to_string())
                .collect();
            let _ = writeln!(out, "stack depth {}", depths.join("+"));
        }
        if self.env.log_level != 0 {
            let _ = writeln!(out, "{}", stats.line(self.env.limits.max_insn_processed));
        }
        out
    }

    /// The line info record covering `pc` (the last one starting at or before it).
    fn line_info(&self, pc: usize) -> Option<&'a crate::env::LineInfo> {
        let i = self.linfo.partition_point(|l| l.insn <= pc);
        i.checked_sub(1).map(|i| self.linfo[i])
    }

    /// Verify the main program, then each global function on its own.
    fn run_all(&mut self) -> Res<()> {
        // Map references are resolved for the whole program up front, dead
        // code included (as Linux does at load time).
        for pc in 0..self.prog.len() {
            if let Some(Kind::Lddw {
                pseudo,
                imm,
                next_imm,
                ..
            }) = self.prog.kind(pc)
                && let Err(m) = self.lddw_check(pseudo, imm, next_imm)
            {
                self.pc = pc;
                return Err(m);
            }
        }
        let mut main = Frame::new(0, usize::MAX, 0, FrameKind::Main);
        main.regs[1] = Reg::ptr(RegType::Ctx);
        let init = State {
            frames: vec![main],
            refs: Vec::new(),
            lock: None,
            in_callback: 0,
            callback_unroll: 0,
            may_goto_depth: 0,
        };
        self.run_from(init, 0)?;
        let globals: Vec<(usize, crate::env::GlobalFuncSig)> = self
            .env
            .global_funcs
            .iter()
            .filter(|(insn, _)| **insn != 0 && Some(**insn) != self.env.exception_callback)
            .map(|(i, s)| (*i, s.clone()))
            .collect();
        for (insn, sig) in globals {
            let sub = self.cfg.subprog_of[insn];
            self.root_global = Some(sub);
            let mut f = Frame::new(sub, usize::MAX, 0, FrameKind::Main);
            for (i, a) in sig.args.iter().enumerate().take(5) {
                let r = &mut f.regs[i + 1];
                *r = match a {
                    ArgKind::Scalar => Reg::unknown(),
                    ArgKind::PtrToCtx => Reg::ptr(RegType::Ctx),
                    ArgKind::PtrToMem { size, nullable } => {
                        let mut m = Reg::ptr(RegType::Mem);
                        m.size = *size;
                        m.maybe_null = *nullable;
                        if *nullable {
                            m.id = {
                                self.id_gen += 1;
                                self.id_gen
                            };
                        }
                        m
                    }
                };
            }
            let init = State {
                frames: vec![f],
                refs: Vec::new(),
                lock: None,
                in_callback: 0,
                callback_unroll: 0,
                may_goto_depth: 0,
            };
            if self.env.verbosity() > 0 {
                let _ = writeln!(
                    self.log,
                    "Validating {}() func#{} at insn {insn}...",
                    sig.name, sub
                );
            }
            self.run_from(init, insn)?;
        }
        if let (Some(insn), Some(sub)) = (self.env.exception_callback, self.cfg.exception_cb) {
            // The exception callback: one scalar argument (the cookie).
            self.root_global = Some(sub);
            self.in_exception_cb = true;
            let mut f = Frame::new(sub, usize::MAX, 0, FrameKind::Main);
            f.regs[1] = Reg::unknown();
            let init = State {
                frames: vec![f],
                refs: Vec::new(),
                lock: None,
                in_callback: 0,
                callback_unroll: 0,
                may_goto_depth: 0,
            };
            if self.env.verbosity() > 0 {
                let _ = writeln!(
                    self.log,
                    "Validating exception callback func#{sub} at insn {insn}..."
                );
            }
            self.run_from(init, insn)?;
            self.in_exception_cb = false;
        }
        Ok(())
    }

    fn run_from(&mut self, init: State, pc: usize) -> Res<()> {
        self.st = init;
        self.pc = pc;
        self.parent = None;
        self.pending.clear();
        self.checkpoints.clear();
        self.cur_states = 0;
        self.trace.clear();
        self.prev_linfo = None;
        for e in &mut self.explored {
            e.clear();
        }
        if self.env.verbosity() == 1 {
            self.log.clear();
        }
        if self.env.verbosity() == 1 {
            let _ = writeln!(
                self.log,
                "{}: {}",
                self.pc,
                log::fmt_state(self.env, &self.st)
            );
        }
        self.do_check()
    }

    fn do_check(&mut self) -> Res<()> {
        let limit = self.env.limits.max_insn_processed;
        loop {
            self.stats.insn_processed += 1;
            if self.stats.insn_processed > limit {
                return Err(format!(
                    "BPF program is too large. Processed {} insn",
                    self.stats.insn_processed
                ));
            }
            let pc = self.pc;
            if self.cfg.prune_point[pc] && self.is_state_visited(pc)? {
                if self.env.verbosity() > 1 {
                    let _ = writeln!(self.log, "{pc}: safe");
                }
                self.path_end();
                if !self.pop() {
                    return Ok(());
                }
                continue;
            }
            if self.env.verbosity() > 1 {
                let _ = writeln!(self.log, "{pc}: {}", log::fmt_state(self.env, &self.st));
            }
            if self.env.verbosity() > 0 {
                // Linux's verbose_linfo: the source line, when it changes.
                if let Some(li) = self.line_info(pc)
                    && self.prev_linfo != Some(li.insn)
                {
                    let _ = writeln!(self.log, "; {} @ {}:{}", li.source.trim(), li.file, li.line);
                    self.prev_linfo = Some(li.insn);
                }
                let _ = writeln!(self.log, "{pc}: {}", log::disasm(self.prog, self.env, pc));
            }
            self.trace_push(pc);
            self.seen[pc] = true;
            if self.back_edge_src[pc] {
                self.record_safe_point(pc, SafePointKind::BackEdge);
            }
            let refs = self
                .st
                .refs
                .iter()
                .filter(|r| !matches!(r.kind, crate::state::RefKind::Iter))
                .count() as u32;
            self.max_refs = self.max_refs.max(refs);
            match self.step(pc)? {
                Flow::Next(next) => self.pc = next,
                Flow::End => {
                    self.path_end();
                    if !self.pop() {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn step(&mut self, pc: usize) -> Res<Flow> {
        let Some(kind) = self.prog.kind(pc) else {
            return Err(format!("invalid insn idx {pc}"));
        };
        match kind {
            Kind::Alu { .. } | Kind::Endian { .. } => {
                self.do_alu(kind)?;
                Ok(Flow::Next(pc + 1))
            }
            Kind::Ja { off } => {
                self.jmps_processed += 1;
                Ok(Flow::Next((pc as i64 + 1 + off as i64) as usize))
            }
            Kind::Jcond { .. } => {
                self.jmps_processed += 1;
                self.do_jcond(pc, kind)
            }
            Kind::MayGoto { off } => {
                self.jmps_processed += 1;
                self.do_may_goto(pc, off)
            }
            Kind::Lddw { .. } => {
                self.do_lddw(kind)?;
                Ok(Flow::Next(pc + 2))
            }
            Kind::Ldx { .. } | Kind::St { .. } | Kind::Stx { .. } | Kind::Atomic { .. } => {
                self.do_mem(kind)?;
                Ok(Flow::Next(pc + 1))
            }
            Kind::LdAbs { .. } | Kind::LdInd { .. } => {
                self.do_ld_abs(kind)?;
                Ok(Flow::Next(pc + 1))
            }
            Kind::CallHelper { id } => {
                self.record_safe_point(pc, SafePointKind::Call);
                self.call_helper(pc, id)
            }
            Kind::CallKfunc { btf_id, off } => {
                if off != 0 {
                    return Err(format!("kfunc btf_obj_fd/offset {off} not supported"));
                }
                self.call_kfunc(pc, btf_id)
            }
            Kind::CallLocal { rel } => {
                self.record_safe_point(pc, SafePointKind::Call);
                self.call_local(pc, (pc as i64 + 1 + rel as i64) as usize)
            }
            Kind::Callx { .. } => Err("BPF_CALL uses reserved fields".to_string()),
            Kind::Exit => self.do_exit(pc),
        }
    }

    /// Queue the other side of a branch.
    pub(crate) fn push_branch(&mut self, state: State, pc: usize) -> Res<()> {
        if self.pending.len() >= self.env.limits.max_jmp_seq {
            return Err(format!(
                "The sequence of {} jumps is too complex.",
                self.pending.len()
            ));
        }
        if let Some(p) = self.parent {
            self.checkpoints[p].branches += 1;
        }
        self.pending.push(Pending {
            state,
            trace: self.trace.clone(),
            pc,
            prev: self.pc,
            parent: self.parent,
        });
        Ok(())
    }

    fn pop(&mut self) -> bool {
        let Some(p) = self.pending.pop() else {
            return false;
        };
        self.st = p.state;
        self.trace = p.trace;
        self.pc = p.pc;
        self.parent = p.parent;
        self.prev_linfo = None;
        if self.env.verbosity() == 1 {
            self.log.clear();
        }
        if self.env.verbosity() > 0 {
            let _ = writeln!(
                self.log,
                "from {} to {}: {}",
                p.prev,
                p.pc,
                log::fmt_state(self.env, &self.st)
            );
        }
        true
    }

    fn path_end(&mut self) {
        let mut cur = self.parent;
        while let Some(i) = cur {
            let cp = &mut self.checkpoints[i];
            cp.branches = cp.branches.saturating_sub(1);
            if cp.branches > 0 {
                break;
            }
            cur = cp.parent;
        }
    }

    /// Instructions where loops converge by state inclusion even though the
    /// loop is still being explored: iterator `next` calls and helpers that
    /// call callbacks repeatedly.
    fn is_convergence_point(&self, pc: usize) -> bool {
        match self.prog.kind(pc) {
            Some(Kind::CallKfunc { btf_id, .. }) => self
                .env
                .registry
                .kfunc(btf_id as u32)
                .is_some_and(|k| k.has(crate::proto::flags::ITER_NEXT)),
            Some(Kind::CallHelper { id }) => self
                .env
                .registry
                .helper(id as u32)
                .is_some_and(|k| k.has(crate::proto::flags::CALLS_CALLBACK)),
            _ => false,
        }
    }

    /// `may_goto`: this path continues at the jump target (budget exhausted);
    /// the fall-through is queued one `may_goto` deeper, with the scalars that
    /// changed since the in-progress visit of this instruction widened (as
    /// Linux does), so that loops bounded only by `may_goto` converge.
    fn do_may_goto(&mut self, pc: usize, off: i16) -> Res<Flow> {
        // An earlier visit of this instruction on the current path (not the
        // checkpoint just taken of the current state).
        let prev = self.explored[pc].iter().rev().find_map(|&ci| {
            if Some(ci) == self.parent {
                return None;
            }
            let cp = &self.checkpoints[ci];
            let old = cp.state.as_ref()?;
            let same_calls = old.frames.len() == self.st.frames.len()
                && old
                    .frames
                    .iter()
                    .zip(&self.st.frames)
                    .all(|(a, b)| a.callsite == b.callsite && a.subprog == b.subprog);
            (cp.branches > 0 && same_calls).then(|| old.clone())
        });
        let mut fall = self.st.clone();
        fall.may_goto_depth = fall.may_goto_depth.saturating_add(1);
        if let Some(old) = prev {
            widen(&old, &mut fall);
        }
        self.push_branch(fall, pc + 1)?;
        Ok(Flow::Next((pc as i64 + 1 + off as i64) as usize))
    }

    fn is_may_goto(&self, pc: usize) -> bool {
        matches!(self.prog.kind(pc), Some(Kind::MayGoto { .. }))
    }

    /// Extra stack Linux gives a subprogram for its hidden `may_goto`
    /// counter: 8 bytes when the subprogram contains a `may_goto`.
    pub(crate) fn may_goto_stack(&self, sub: usize) -> u32 {
        let Some(sp) = self.cfg.subprogs.get(sub) else {
            return 0;
        };
        if (sp.start..sp.end.min(self.prog.len())).any(|pc| self.is_may_goto(pc)) {
            8
        } else {
            0
        }
    }

    fn is_state_visited(&mut self, pc: usize) -> Res<bool> {
        let conv = self.is_convergence_point(pc);
        let may_goto = self.is_may_goto(pc);
        let priv_ = self.privileged();
        let mut ancestor: Option<usize> = None;
        let mut found: Option<(usize, bool)> = None;
        let mut evict: Vec<usize> = Vec::new();
        for (pos, &ci) in self.explored[pc].iter().enumerate().rev() {
            let cp = &self.checkpoints[ci];
            let Some(old) = cp.state.as_ref() else {
                continue;
            };
            let hit = if cp.branches > 0 {
                if conv {
                    if ancestor.is_none() {
                        ancestor = Some(ci);
                    }
                    states_equal(old, &self.st, pc, &self.cfg, Mode::RangeWithin, priv_)
                } else if may_goto
                    && old.may_goto_depth != self.st.may_goto_depth
                    && states_equal(old, &self.st, pc, &self.cfg, Mode::RangeWithin, priv_)
                {
                    true
                } else {
                    if old.callback_unroll == self.st.callback_unroll
                        && states_equal(old, &self.st, pc, &self.cfg, Mode::Exact, priv_)
                    {
                        return Err(format!("infinite loop detected at insn {pc}"));
                    }
                    false
                }
            } else {
                states_equal(old, &self.st, pc, &self.cfg, Mode::NotExact, priv_)
            };
            let cp = &mut self.checkpoints[ci];
            if hit {
                let in_progress = cp.branches > 0;
                cp.hit += 1;
                found = Some((ci, in_progress));
                break;
            }
            cp.miss += 1;
            // Linux's heuristic: a state that keeps missing is unlikely to help.
            if cp.miss > cp.hit * 3 + 3 && ancestor != Some(ci) {
                evict.push(pos);
            }
        }
        if !evict.is_empty() {
            evict.sort_unstable();
            for &pos in evict.iter().rev() {
                let ci = self.explored[pc].remove(pos);
                self.checkpoints[ci].state = None;
                self.cur_states = self.cur_states.saturating_sub(1);
            }
        }
        if let Some((ci, in_progress)) = found {
            // The pruned path depends on what the old state's continuation
            // needed precisely (everything, when compared range-within).
            if let Some(old) = self.checkpoints[ci].state.clone() {
                self.propagate_precision(&old, in_progress);
            }
            return Ok(true);
        }
        // Only add a checkpoint every few jumps and instructions (as Linux
        // does), except where loops must converge.
        let since_insns = self.stats.insn_processed - self.last_cp_insns;
        let since_jmps = self.jmps_processed - self.last_cp_jmps;
        if !(conv
            || may_goto
            || self.explored[pc].is_empty()
            || (since_insns >= 8 && since_jmps >= 2))
        {
            return Ok(false);
        }
        if let Some(a) = ancestor
            && let Some(old) = self.checkpoints[a].state.clone()
        {
            widen(&old, &mut self.st);
        }
        self.last_cp_insns = self.stats.insn_processed;
        self.last_cp_jmps = self.jmps_processed;
        let idx = self.checkpoints.len();
        self.checkpoints.push(Checkpoint {
            state: Some(self.st.clone()),
            branches: 1,
            parent: self.parent,
            hit: 0,
            miss: 0,
            trace: std::mem::take(&mut self.trace),
        });
        self.parent = Some(idx);
        self.explored[pc].push(idx);
        self.stats.total_states += 1;
        self.stats.max_states_per_insn = self
            .stats
            .max_states_per_insn
            .max(self.explored[pc].len() as u32);
        self.cur_states += 1;
        self.stats.peak_states = self
            .stats
            .peak_states
            .max(self.cur_states + self.pending.len() as u64);
        Ok(false)
    }

    /// Grow the stack depth of the subprogram running in frame `frameno`.
    pub(crate) fn note_stack(&mut self, frameno: u8, bytes: i64) {
        if let Some(f) = self.st.frames.get(frameno as usize) {
            let sub = f.subprog;
            let b = bytes.clamp(0, u32::MAX as i64) as u32;
            if self.stack_depth[sub] < b {
                self.stack_depth[sub] = b;
            }
        }
    }

    /// Where every held reference and the lock live right now.
    pub(crate) fn held(&self) -> Held {
        let mut held = Held {
            frames: self
                .st
                .frames
                .iter()
                .map(|f| (f.subprog, f.callsite))
                .collect(),
            ..Held::default()
        };
        let locate = |pred: &dyn Fn(&Reg, bool) -> bool| {
            let mut locs = Vec::new();
            for f in &self.st.frames {
                for (r, reg) in f.regs.iter().enumerate() {
                    if pred(reg, false) {
                        locs.push(Location::Reg {
                            frame: f.frameno,
                            reg: r as u8,
                        });
                    }
                }
                for (spi, s) in f.stack.iter().enumerate() {
                    let is_iter = s.types[0] == SlotType::Iter && s.iter.is_some();
                    if (s.is_spill() || is_iter) && pred(&s.spilled, is_iter) {
                        locs.push(Location::Stack {
                            frame: f.frameno,
                            off: -((spi as i16 + 1) * 8),
                        });
                    }
                }
            }
            locs
        };
        for r in &self.st.refs {
            let id = r.id;
            held.refs.push(HeldRef {
                id,
                kind: r.kind,
                acquired_at: r.insn,
                locations: locate(&|reg: &Reg, _| reg.ref_obj_id == id),
            });
        }
        if let Some(l) = self.st.lock {
            let pid = l.ptr_id;
            held.lock = Some(HeldLock {
                map: l.map,
                acquired_at: l.insn,
                locations: if pid == 0 {
                    Vec::new()
                } else {
                    locate(&|reg: &Reg, it| !it && reg.ty == RegType::MapValue && reg.id == pid)
                },
            });
        }
        held
    }

    pub(crate) fn record_safe_point(&mut self, pc: usize, kind: SafePointKind) {
        let held = self.held();
        let sp = self.safe_points.entry(pc).or_insert(SafePoint {
            kind,
            variants: Vec::new(),
            truncated: false,
        });
        if sp.variants.contains(&held) {
            return;
        }
        if sp.variants.len() >= MAX_VARIANTS {
            sp.truncated = true;
            return;
        }
        sp.variants.push(held);
    }

    /// Combined stack depth checks over every call chain (after exploration,
    /// when each subprogram's own depth is known).
    fn stack_check(&self) -> Result<Vec<SubprogFacts>, (Option<usize>, String)> {
        let lim = &self.env.limits;
        let round = |d: u32| -> u32 {
            let r = lim.stack_round.max(1);
            d.div_ceil(r) * r
        };
        let n = self.cfg.subprogs.len();
        for (i, &d) in self.stack_depth.iter().enumerate() {
            if d > lim.max_stack {
                return Err((
                    Some(self.cfg.subprogs[i].start),
                    format!(
                        "stack size {d} of subprogram {i} is larger than {}",
                        lim.max_stack
                    ),
                ));
            }
        }
        // Callees of each subprogram (calls and callbacks whose address is taken).
        let callees: Vec<Vec<(usize, usize)>> = self
            .cfg
            .subprogs
            .iter()
            .map(|s| s.calls.iter().chain(s.func_refs.iter()).copied().collect())
            .collect();
        // Walk every chain from main (the call graph is acyclic: recursion was rejected).
        // Roots: the main program and the exception callback (which runs after
        // the main frames are unwound).
        let mut roots = vec![0usize];
        roots.extend(self.cfg.exception_cb);
        let mut caller_max = vec![0u32; n];
        for root in roots {
            let mut stack: Vec<(usize, usize, u32)> =
                vec![(root, 0, round(self.stack_depth[root]))];
            while let Some((sub, next, depth)) = stack.last().copied() {
                let frames = stack.len();
                if next == 0 {
                    let callers = depth - round(self.stack_depth[sub]);
                    caller_max[sub] = caller_max[sub].max(callers);
                    if frames > lim.max_call_frames {
                        return Err((
                            Some(self.cfg.subprogs[sub].start),
                            format!("the call stack of {frames} frames is too deep !"),
                        ));
                    }
                    if depth > lim.max_stack {
                        return Err((
                            Some(self.cfg.subprogs[sub].start),
                            format!("combined stack size of {frames} calls is {depth}. Too large"),
                        ));
                    }
                    if frames > 1 && self.cfg.subprogs[sub].has_tail_call {
                        let callers = depth - round(self.stack_depth[sub]);
                        if callers >= lim.tail_call_stack {
                            return Err((
                                Some(self.cfg.subprogs[sub].start),
                                format!(
                                    "tail_calls are not allowed when call stack of previous frames is {callers} bytes. Too large"
                                ),
                            ));
                        }
                    }
                }
                if next < callees[sub].len() {
                    stack.last_mut().expect("non-empty").1 += 1;
                    let callee = callees[sub][next].1;
                    stack.push((callee, 0, depth + round(self.stack_depth[callee])));
                } else {
                    stack.pop();
                }
            }
        }
        // Per-subprogram worst chains (memoised over the DAG, reverse topological order).
        let mut chain = vec![None::<(u32, u32)>; n];
        fn chain_of(
            s: usize,
            callees: &[Vec<(usize, usize)>],
            own: &dyn Fn(usize) -> u32,
            memo: &mut Vec<Option<(u32, u32)>>,
            depth: usize,
        ) -> (u32, u32) {
            if let Some(v) = memo[s] {
                return v;
            }
            let mut best = (0u32, 0u32);
            if depth < 64 {
                for &(_, c) in &callees[s] {
                    let (d, f) = chain_of(c, callees, own, memo, depth + 1);
                    best.0 = best.0.max(d);
                    best.1 = best.1.max(f);
                }
            }
            let v = (own(s) + best.0, best.1 + 1);
            memo[s] = Some(v);
            v
        }
        let own = |s: usize| round(self.stack_depth[s] + self.may_goto_stack(s));
        let mut out = Vec::with_capacity(n);
        for (i, sp) in self.cfg.subprogs.iter().enumerate() {
            let (d, f) = chain_of(i, &callees, &own, &mut chain, 0);
            out.push(SubprogFacts {
                start: sp.start,
                end: sp.end,
                stack_depth: self.stack_depth[i] + self.may_goto_stack(i),
                chain_stack_depth: d,
                chain_frames: f,
                caller_stack: caller_max[i],
                is_global: self.env.global_funcs.contains_key(&sp.start) && sp.start != 0,
                has_tail_call: sp.has_tail_call,
                is_callback: self.is_callback[i],
                is_exception_callback: self.cfg.exception_cb == Some(i),
            });
        }
        Ok(out)
    }
}

/// Loop widening at convergence points: scalars that changed since the last
/// visit become unknown, so the loop reaches a fixpoint.
fn widen(old: &State, cur: &mut State) {
    for (fo, fc) in old.frames.iter().zip(cur.frames.iter_mut()) {
        for (ro, rc) in fo.regs.iter().zip(fc.regs.iter_mut()) {
            if ro.is_scalar() && rc.is_scalar() && ro.var != rc.var {
                *rc = Reg::unknown();
            }
        }
        for (so, sc) in fo.stack.iter().zip(fc.stack.iter_mut()) {
            if so.is_spill()
                && sc.is_spill()
                && so.spilled.is_scalar()
                && sc.spilled.is_scalar()
                && so.spilled.var != sc.spilled.var
            {
                let keep_size = sc.spill_size;
                sc.spilled = Reg::unknown();
                if keep_size < 8 {
                    sc.spilled.var = sc.spilled.var.truncate(keep_size as u32);
                }
            }
        }
    }
}
