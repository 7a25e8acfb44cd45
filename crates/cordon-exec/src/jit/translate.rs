//! Translation of one BPF function into Cranelift IR.
//!
//! BPF registers r0–r9 are Cranelift [`Variable`]s (SSA, register-allocated);
//! r10 is the function's frame top, a plain SSA value. The generated functions
//! take the [`RunContext`] pointer as their first argument and the frame top as
//! their second. Everything that can end a run early (helper stop or fault,
//! checked-mode violation, budget, stack exhaustion) records the outcome in the
//! run context (`status`, and the error through a shim) and returns; every caller
//! tests `status` after each call and returns at once when it is set, so the
//! Rust entry point sees the outcome.
//!
//! Frame protocol (the shadow stack, mechanism 1): while a function runs,
//! `arena.sp` equals the bottom of its own frame (`fp - frame_size`). A local
//! call allocates the callee's frame inline at the call site: `limit` is loaded
//! from the arena, `sp - limit < size` branches to a cold exhaustion path,
//! `arena.sp = sp - size` is stored, the callee is called with its frame top
//! (`sp`) and `arena.sp = sp` is stored back after the return. No `arena.sp` load
//! is needed at all: the caller knows its own frame bottom.

use cordon_isa::opcode::MAY_GOTO_MAX_LOOPS;
use cordon_isa::{AluOp, AtomicOp, EndianOp, JmpCond, Kind, Operand, Program, Size};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I8, I16, I32, I64};
use cranelift_codegen::ir::{
    AbiParam, AtomicRmwOp, Block, BlockArg, Endianness, FuncRef, InstBuilder, MemFlagsData, SigRef,
    Signature, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, Variable};

use super::analysis::{Flow, Function, flow};
use super::runtime::{self, FaultCode};
use super::stack::{self, Slot};
use crate::context::{RunContext, STATUS_STOPPED};
use crate::decode::Op;
use crate::interp::MAX_CALL_FRAMES;
use crate::shadow_stack::FrameArena;

/// Which of the two engines' modes the code is generated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    Trusted,
    Checked,
}

/// The shape of a generated function.
#[derive(Clone, Debug)]
pub(crate) enum Variant {
    /// The program entry, called from Rust:
    /// `extern "C" fn(ctx, fp, r1, r2, r3, r4, r5) -> r0`.
    Main,
    /// A bpf-to-bpf callee. Trusted: `(ctx, fp, live regs…) -> r0`.
    /// Checked: `(ctx, fp, depth, budget, live regs…) -> (r0, r1…r5, budget)`:
    /// in checked mode the callee sees every register the caller had (like the
    /// interpreter's single register file) and hands r1–r5 back.
    Callee { params: Vec<u8> },
}

/// Signature of a generated function.
pub(crate) fn signature(call_conv: CallConv, flavor: Flavor, variant: &Variant) -> Signature {
    let mut sig = Signature::new(call_conv);
    let p = |sig: &mut Signature, n: usize| {
        for _ in 0..n {
            sig.params.push(AbiParam::new(I64));
        }
    };
    match variant {
        Variant::Main => {
            p(&mut sig, 7);
            sig.returns.push(AbiParam::new(I64));
        }
        Variant::Callee { params } => {
            p(&mut sig, 2);
            if flavor == Flavor::Checked {
                p(&mut sig, 2);
            }
            p(&mut sig, params.len());
            let nret = if flavor == Flavor::Checked { 7 } else { 1 };
            for _ in 0..nret {
                sig.returns.push(AbiParam::new(I64));
            }
        }
    }
    sig
}

/// Signature of the helper trampolines `(ctx, slot|id, r1..r5) -> r0`.
pub(crate) fn trampoline_signature(call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    for _ in 0..7 {
        sig.params.push(AbiParam::new(I64));
    }
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// What the translator needs to know about a local call target.
#[derive(Clone, Debug)]
pub(crate) struct CalleeRef {
    pub func: FuncRef,
    pub params: Vec<u8>,
    /// Whether a call can end the run (helper calls, packet loads, further
    /// calls, falling off the end); otherwise trusted callers skip the
    /// `status` test after the call.
    pub may_stop: bool,
}

/// Imported signatures and functions of the function being built.
pub(crate) struct Imports {
    pub tramp_sig: SigRef,
    pub fault_sig: SigRef,
    /// The module's slow access check (`PreserveAll`, see `compile.rs`).
    pub slow_check: Option<FuncRef>,
    pub zero_sig: SigRef,
    /// Local call targets by entry instruction index.
    pub callee: Box<dyn Fn(usize) -> Option<CalleeRef>>,
    /// Specialised helper call sites by instruction index (see `calls.rs`).
    pub site: Box<dyn Fn(usize) -> Option<crate::specialise::CallSpec>>,
}

/// Translator of one function.
pub(crate) struct Tr<'a, 'b> {
    pub b: FunctionBuilder<'b>,
    pub prog: &'a Program,
    pub ops: &'a [Op],
    pub func: &'a Function,
    pub flavor: Flavor,
    pub variant: Variant,
    pub frame_size: u64,
    pub endianness: Endianness,
    pub imports: Imports,
    /// Instruction budget of a checked run.
    pub budget: u64,
    regs: [Variable; 10],
    /// Remaining instruction budget (checked mode).
    left: Option<Variable>,
    /// Remaining `may_goto` budget of this frame (full at function entry).
    loops: Variable,
    ctx: Value,
    fp: Value,
    /// Bottom of this function's frame: `fp - frame_size`.
    lo: Value,
    depth: Option<Value>,
    arena: Value,
    blocks: std::collections::HashMap<usize, Block>,
    bail: Option<Block>,
    fault: Option<Block>,
    stop0: Option<Block>,
    /// Stack slots held in variables (trusted code, see `stack.rs`).
    slots: std::collections::HashMap<Slot, Variable>,
}

fn mem_flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

fn ctx_flags() -> MemFlagsData {
    MemFlagsData::trusted()
}

impl<'a, 'b> Tr<'a, 'b> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mut b: FunctionBuilder<'b>,
        prog: &'a Program,
        ops: &'a [Op],
        func: &'a Function,
        flavor: Flavor,
        variant: Variant,
        frame_size: u64,
        endianness: Endianness,
        imports: Imports,
        budget: u64,
    ) -> Self {
        let regs = std::array::from_fn(|_| b.declare_var(I64));
        let left = (flavor == Flavor::Checked).then(|| b.declare_var(I64));
        let loops = b.declare_var(I64);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let params = b.block_params(entry).to_vec();
        let ctx = params[0];
        let fp = params[1];
        let mut t = Tr {
            b,
            prog,
            ops,
            func,
            flavor,
            variant,
            frame_size,
            endianness,
            imports,
            budget,
            regs,
            left,
            loops,
            ctx,
            fp,
            lo: fp,
            depth: None,
            arena: fp,
            blocks: std::collections::HashMap::with_capacity(func.pcs.len() / 4 + 4),
            bail: None,
            fault: None,
            stop0: None,
            slots: std::collections::HashMap::new(),
        };
        if flavor == Flavor::Trusted {
            for slot in stack::promotable_slots(prog, func) {
                let var = t.b.declare_var(I64);
                t.slots.insert(slot, var);
            }
        }
        t.prologue(&params);
        t
    }

    fn iconst(&mut self, ty: Type, v: i64) -> Value {
        let v = match ty {
            I8 => v as u8 as i64,
            I16 => v as u16 as i64,
            I32 => v as u32 as i64,
            _ => v,
        };
        self.b.ins().iconst(ty, v)
    }

    fn reg(&mut self, r: u8) -> Value {
        if r == 10 {
            self.fp
        } else {
            self.b.use_var(self.regs[r as usize])
        }
    }

    fn set(&mut self, r: u8, v: Value) {
        self.b.def_var(self.regs[r as usize], v);
    }

    fn ctx_load(&mut self, off: usize) -> Value {
        self.b.ins().load(I64, ctx_flags(), self.ctx, off as i32)
    }

    fn ctx_store(&mut self, off: usize, v: Value) {
        self.b.ins().store(ctx_flags(), v, self.ctx, off as i32);
    }

    fn prologue(&mut self, params: &[Value]) {
        let checked = self.flavor == Flavor::Checked;
        let zero = self.iconst(I64, 0);
        for r in 0..10u8 {
            self.set(r, zero);
        }
        for &var in self.slots.values() {
            self.b.def_var(var, zero);
        }
        let mut rest = &params[2..];
        match self.variant.clone() {
            Variant::Main => {
                for r in 1..=5u8 {
                    self.set(r, rest[r as usize - 1]);
                }
                if checked {
                    self.depth = Some(zero);
                }
            }
            Variant::Callee { params: regs } => {
                if checked {
                    self.depth = Some(rest[0]);
                    let left = self.left.expect("checked");
                    self.b.def_var(left, rest[1]);
                    rest = &rest[2..];
                }
                for (i, &r) in regs.iter().enumerate() {
                    self.set(r, rest[i]);
                }
            }
        }
        self.lo = self.b.ins().iadd_imm_s(self.fp, -(self.frame_size as i64));
        let full = self.iconst(I64, MAY_GOTO_MAX_LOOPS as i64);
        self.b.def_var(self.loops, full);
        if checked && matches!(self.variant, Variant::Main) {
            // The budget of a fresh run is a compile-time constant.
            let left = self.left.expect("checked");
            let v = self.iconst(I64, self.budget.min(i64::MAX as u64) as i64);
            self.b.def_var(left, v);
        }
    }

    fn block_at(&mut self, pc: usize) -> Block {
        if let Some(&b) = self.blocks.get(&pc) {
            return b;
        }
        let b = self.b.create_block();
        self.blocks.insert(pc, b);
        b
    }

    /// Return from the function after the run context recorded an outcome
    /// (filled in by [`Tr::finish_cold_blocks`]).
    fn bail_block(&mut self) -> Block {
        if let Some(b) = self.bail {
            return b;
        }
        let blk = self.b.create_block();
        self.b.set_cold_block(blk);
        self.bail = Some(blk);
        blk
    }

    /// The shared fault block: `(site, value)` (see [`runtime::site`]); records
    /// the error and returns.
    fn fault_block(&mut self) -> Block {
        if let Some(b) = self.fault {
            return b;
        }
        let blk = self.b.create_block();
        self.b.set_cold_block(blk);
        for _ in 0..2 {
            self.b.append_block_param(blk, I64);
        }
        self.fault = Some(blk);
        self.bail_block();
        blk
    }

    /// Fill the shared cold blocks that were used.
    fn finish_cold_blocks(&mut self) {
        if let Some(blk) = self.stop0 {
            let bail = self.bail_block();
            self.b.switch_to_block(blk);
            let one = self.iconst(I64, STATUS_STOPPED as i64);
            let zero = self.iconst(I64, 0);
            self.ctx_store(RunContext::OFFSET_STOP_VALUE, zero);
            self.ctx_store(RunContext::OFFSET_STATUS, one);
            self.b.ins().jump(bail, &[]);
        }
        if let Some(blk) = self.fault {
            let bail = self.bail_block();
            self.b.switch_to_block(blk);
            let p = self.b.block_params(blk).to_vec();
            let f = self.iconst(I64, runtime::jit_fault as *const () as usize as i64);
            let sig = self.imports.fault_sig;
            self.b.ins().call_indirect(sig, f, &[self.ctx, p[0], p[1]]);
            self.b.ins().jump(bail, &[]);
        }
        if let Some(blk) = self.bail {
            self.b.switch_to_block(blk);
            let zero = self.iconst(I64, 0);
            let n = match (&self.variant, self.flavor) {
                (Variant::Callee { .. }, Flavor::Checked) => 7,
                _ => 1,
            };
            let vals = vec![zero; n];
            self.b.ins().return_(&vals);
        }
    }

    /// Branch to the fault block when `cond` is true; continue in a new block.
    fn fault_if(&mut self, cond: Value, code: FaultCode, pc: usize, aux: u64, value: Value) {
        let fb = self.fault_block();
        let cont = self.b.create_block();
        let site = self.iconst(I64, runtime::site(code, pc, aux) as i64);
        let args = [BlockArg::Value(site), BlockArg::Value(value)];
        self.b.ins().brif(cond, fb, &args, cont, &[]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }

    /// After a call: end the run when `status` is set.
    fn check_status(&mut self) {
        let st = self.ctx_load(RunContext::OFFSET_STATUS);
        let bail = self.bail_block();
        let cont = self.b.create_block();
        self.b.ins().brif(st, bail, &[], cont, &[]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }

    /// Legacy packet loads past the input end the program with r0 = 0.
    fn stop0_block(&mut self) -> Block {
        if let Some(b) = self.stop0 {
            return b;
        }
        let blk = self.b.create_block();
        self.b.set_cold_block(blk);
        self.stop0 = Some(blk);
        blk
    }

    /// Translate the whole function and finish the builder.
    pub fn run(mut self) -> FunctionBuilder<'b> {
        let f = self.func;
        let entry_block = self.block_at(f.entry);
        self.b.ins().jump(entry_block, &[]);
        let mut open = false;
        let mut seg_left = 0usize;
        for i in 0..f.pcs.len() {
            let pc = f.pcs[i];
            if f.leader[i] {
                let blk = self.block_at(pc);
                if open {
                    self.b.ins().jump(blk, &[]);
                }
                if !f.back[i] {
                    // Every predecessor (earlier instructions only) is emitted.
                    self.b.seal_block(blk);
                }
                self.b.switch_to_block(blk);
                open = true;
                seg_left = 0;
            }
            debug_assert!(open, "instruction {pc} is not reached by fall-through");
            let kind = self.prog.kind(pc).expect("reachable instruction");
            if self.flavor == Flavor::Checked && seg_left == 0 {
                seg_left = self.segment_len(i);
                self.charge(pc, seg_left as u64);
            }
            seg_left = seg_left.saturating_sub(1);
            open = self.insn(pc, kind);
            if open {
                // Falls through to the next instruction.
                let Flow::Next(next) = flow(&kind, pc) else {
                    unreachable!("only fall-through instructions leave the block open")
                };
                if next >= self.prog.len() {
                    self.fell_off(next);
                    open = false;
                } else if i + 1 < f.pcs.len() && f.leader[i + 1] {
                    // The next iteration emits the jump.
                }
            }
        }
        if open {
            // The last reachable instruction falls through past the end.
            let n = self.prog.len();
            self.fell_off(n);
        }
        self.finish_cold_blocks();
        self.b.seal_all_blocks();
        self.b
    }

    /// Checked mode: instructions of the budget segment starting at `pcs[i]`:
    /// up to the end of the basic block, and including the first instruction with
    /// an observable effect (memory access, call), so that a budget running out
    /// inside a segment never skips an effect the interpreter would perform.
    fn segment_len(&self, i: usize) -> usize {
        let f = self.func;
        let mut n = 0;
        let mut j = i;
        while j < f.pcs.len() {
            if j > i && f.leader[j] {
                break;
            }
            n += 1;
            let pc = f.pcs[j];
            let kind = self.prog.kind(pc).expect("reachable");
            let effect = matches!(
                kind,
                Kind::Ldx { .. }
                    | Kind::St { .. }
                    | Kind::Stx { .. }
                    | Kind::Atomic { .. }
                    | Kind::LdAbs { .. }
                    | Kind::LdInd { .. }
                    | Kind::CallHelper { .. }
                    | Kind::CallKfunc { .. }
                    | Kind::CallLocal { .. }
                    | Kind::Callx { .. }
            );
            if effect || matches!(kind, Kind::Lddw { .. }) {
                // An lddw takes two slots: end the segment so that `pc + left`
                // stays the index of the instruction the budget runs out at.
                break;
            }
            match flow(&kind, pc) {
                Flow::Next(next) if j + 1 < f.pcs.len() && f.pcs[j + 1] == next => {}
                _ => break,
            }
            j += 1;
        }
        n
    }

    /// Checked mode: take `n` instructions from the budget (kept as a signed
    /// count in a variable); when it goes negative the interpreter would have
    /// stopped at instruction `pc + left_before`, which the fault path computes.
    fn charge(&mut self, pc: usize, n: u64) {
        let var = self.left.expect("checked");
        let left = self.b.use_var(var);
        let rest = self.b.ins().iadd_imm_s(left, -(n as i64));
        let short = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, rest, 0);
        self.fault_if(short, FaultCode::Budget, pc, n, rest);
        self.b.def_var(var, rest);
    }

    fn fell_off(&mut self, index: usize) {
        if self.flavor == Flavor::Checked {
            self.charge(index, 1);
        }
        let fb = self.fault_block();
        let site = self.iconst(I64, runtime::site(FaultCode::FellOff, index, 0) as i64);
        let zero = self.iconst(I64, 0);
        let args = [BlockArg::Value(site), BlockArg::Value(zero)];
        self.b.ins().jump(fb, &args);
    }

    /// Translate one instruction. Returns whether control falls through.
    fn insn(&mut self, pc: usize, kind: Kind) -> bool {
        match kind {
            Kind::Alu { wide, op, dst, src } => self.alu(wide, op, dst, src),
            Kind::Endian { op, bits, dst } => self.endian(op, bits, dst),
            Kind::Ja { .. } => {
                let Flow::Jump(t) = flow(&kind, pc) else {
                    unreachable!()
                };
                let blk = self.block_at(t);
                self.b.ins().jump(blk, &[]);
                return false;
            }
            Kind::Jcond {
                wide,
                cond,
                dst,
                src,
                ..
            } => {
                let Flow::Branch { next, target } = flow(&kind, pc) else {
                    unreachable!()
                };
                let c = self.condition(wide, cond, dst, src);
                let t = self.block_at(target);
                let n = self.block_at(next);
                self.b.ins().brif(c, t, &[], n, &[]);
                return false;
            }
            Kind::MayGoto { .. } => {
                let Flow::Branch { next, target } = flow(&kind, pc) else {
                    unreachable!()
                };
                // Budget exhausted: take the jump; otherwise spend one and fall through.
                let left = self.b.use_var(self.loops);
                let t = self.block_at(target);
                let spend = self.b.create_block();
                self.b.ins().brif(left, spend, &[], t, &[]);
                self.b.switch_to_block(spend);
                self.b.seal_block(spend);
                let rest = self.b.ins().iadd_imm_s(left, -1);
                self.b.def_var(self.loops, rest);
                let n = self.block_at(next);
                self.b.ins().jump(n, &[]);
                return false;
            }
            Kind::Exit => {
                self.exit();
                return false;
            }
            Kind::CallHelper { .. } if let Some(spec) = (self.imports.site)(pc) => {
                let args = [1u8, 2, 3, 4, 5].map(|r| self.reg(r));
                let r0 = super::calls::lower_special(&mut self.b, &spec, args);
                self.set(0, r0);
            }
            Kind::CallHelper { .. } | Kind::CallKfunc { .. } => {
                let slot = self.ops[pc].imm as i64;
                let slot = self.iconst(I64, slot);
                self.helper_call(pc, runtime::helper_trampoline(), slot);
            }
            Kind::Callx { reg } => {
                let id = self.reg(reg);
                self.helper_call(pc, runtime::callx_trampoline(), id);
            }
            Kind::CallLocal { .. } => {
                let op = self.ops[pc];
                self.local_call(pc, op.off as usize, op.imm);
            }
            Kind::Lddw { dst, .. } => {
                let v = self.iconst(I64, self.ops[pc].imm as i64);
                self.set(dst, v);
            }
            Kind::LdAbs { size, imm } => {
                let off = self.iconst(I32, imm as i64);
                self.packet_load(size, off);
            }
            Kind::LdInd { size, src, imm } => {
                let s = self.reg(src);
                let s = self.b.ins().ireduce(I32, s);
                let off = self.b.ins().iadd_imm_s(s, imm as i64);
                self.packet_load(size, off);
            }
            Kind::Ldx {
                size,
                sign_extend,
                dst,
                src,
                off,
            } => {
                if src == 10
                    && let Some(&var) = self.slots.get(&Slot { off, size })
                {
                    let v = self.b.use_var(var);
                    let v = self.slot_load(size, sign_extend, v);
                    self.set(dst, v);
                    return true;
                }
                let base = self.reg(src);
                let (addr, disp) = self.address(base, off);
                self.check_access(pc, addr, size, runtime::ACCESS_LOAD);
                let v = self.load(size, sign_extend, addr, disp);
                self.set(dst, v);
            }
            Kind::St {
                size,
                dst,
                off,
                imm,
            } => {
                if dst == 10
                    && let Some(&var) = self.slots.get(&Slot { off, size })
                {
                    let v = self.iconst(I64, imm as i64);
                    let v = self.slot_value(size, v);
                    self.b.def_var(var, v);
                    return true;
                }
                let base = self.reg(dst);
                let (addr, disp) = self.address(base, off);
                self.check_access(pc, addr, size, runtime::ACCESS_STORE);
                let v = self.iconst(I64, imm as i64);
                self.store(size, v, addr, disp);
            }
            Kind::Stx {
                size,
                dst,
                src,
                off,
            } => {
                if dst == 10
                    && let Some(&var) = self.slots.get(&Slot { off, size })
                {
                    let v = self.reg(src);
                    let v = self.slot_value(size, v);
                    self.b.def_var(var, v);
                    return true;
                }
                let base = self.reg(dst);
                let (addr, disp) = self.address(base, off);
                self.check_access(pc, addr, size, runtime::ACCESS_STORE);
                let v = self.reg(src);
                self.store(size, v, addr, disp);
            }
            Kind::Atomic {
                size,
                op,
                fetch,
                dst,
                src,
                off,
            } => self.atomic(pc, size, op, fetch, dst, src, off),
        }
        true
    }

    fn exit(&mut self) {
        let r0 = self.reg(0);
        match (&self.variant, self.flavor) {
            (Variant::Callee { .. }, Flavor::Checked) => {
                let mut vals: Vec<Value> = (0..6u8).map(|r| self.reg(r)).collect();
                let left = self.b.use_var(self.left.expect("checked"));
                vals.push(left);
                self.b.ins().return_(&vals);
            }
            _ => {
                self.b.ins().return_(&[r0]);
            }
        }
    }

    // ------------------------------------------------------------------ ALU

    fn operand(&mut self, wide: bool, src: Operand) -> Value {
        match (src, wide) {
            (Operand::Reg(r), true) => self.reg(r),
            (Operand::Reg(r), false) => {
                let v = self.reg(r);
                self.b.ins().ireduce(I32, v)
            }
            (Operand::Imm(i), true) => self.iconst(I64, i as i64),
            (Operand::Imm(i), false) => self.iconst(I32, i as i64),
        }
    }

    fn dst_val(&mut self, wide: bool, dst: u8) -> Value {
        let v = self.reg(dst);
        if wide {
            v
        } else {
            self.b.ins().ireduce(I32, v)
        }
    }

    fn alu(&mut self, wide: bool, op: AluOp, dst: u8, src: Operand) {
        let ty = if wide { I64 } else { I32 };
        let bits = if wide { 64 } else { 32 };
        let imm = match src {
            Operand::Imm(i) => Some(i as i64),
            Operand::Reg(_) => None,
        };
        let r = match op {
            AluOp::Mov => self.operand(wide, src),
            AluOp::MovSx(from) => {
                let s = match src {
                    Operand::Reg(r) => self.reg(r),
                    Operand::Imm(i) => self.iconst(I64, i as i64),
                };
                let nt = match from {
                    8 => I8,
                    16 => I16,
                    _ => I32,
                };
                let n = self.b.ins().ireduce(nt, s);
                if nt == ty {
                    n
                } else {
                    self.b.ins().sextend(ty, n)
                }
            }
            AluOp::Neg => {
                let d = self.dst_val(wide, dst);
                self.b.ins().ineg(d)
            }
            AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
                let d = self.dst_val(wide, dst);
                let s = match imm {
                    Some(i) => self.iconst(ty, i & (bits - 1)),
                    None => self.operand(wide, src),
                };
                match op {
                    AluOp::Lsh => self.b.ins().ishl(d, s),
                    AluOp::Rsh => self.b.ins().ushr(d, s),
                    _ => self.b.ins().sshr(d, s),
                }
            }
            AluOp::Div | AluOp::Mod | AluOp::SDiv | AluOp::SMod => {
                let d = self.dst_val(wide, dst);
                self.division(ty, op, d, src, imm)
            }
            _ => {
                let d = self.dst_val(wide, dst);
                let s = self.operand(wide, src);
                let ins = self.b.ins();
                match op {
                    AluOp::Add => ins.iadd(d, s),
                    AluOp::Sub => ins.isub(d, s),
                    AluOp::Mul => ins.imul(d, s),
                    AluOp::Or => ins.bor(d, s),
                    AluOp::And => ins.band(d, s),
                    AluOp::Xor => ins.bxor(d, s),
                    _ => unreachable!("handled above"),
                }
            }
        };
        let r = if wide {
            r
        } else {
            self.b.ins().uextend(I64, r)
        };
        self.set(dst, r);
    }

    /// Division and modulo with BPF semantics: `x / 0 = 0`, `x % 0 = x`,
    /// `INT_MIN / -1 = INT_MIN`, `INT_MIN % -1 = 0`; never traps.
    fn division(&mut self, ty: Type, op: AluOp, d: Value, src: Operand, imm: Option<i64>) -> Value {
        if let Some(i) = imm {
            // Immediate divisor: every special case is known now.
            let i = if ty == I32 { i as i32 as i64 } else { i };
            return match (op, i) {
                (AluOp::Div | AluOp::SDiv, 0) => self.iconst(ty, 0),
                (AluOp::Mod | AluOp::SMod, 0) => d,
                (AluOp::SDiv, -1) => self.b.ins().ineg(d),
                (AluOp::SMod, -1) => self.iconst(ty, 0),
                _ => {
                    let s = self.iconst(ty, i);
                    let ins = self.b.ins();
                    match op {
                        AluOp::Div => ins.udiv(d, s),
                        AluOp::Mod => ins.urem(d, s),
                        AluOp::SDiv => ins.sdiv(d, s),
                        _ => ins.srem(d, s),
                    }
                }
            };
        }
        let s = self.operand(ty == I64, src);
        let one = self.iconst(ty, 1);
        let zero = self.iconst(ty, 0);
        let is0 = self.b.ins().icmp_imm_u(IntCC::Equal, s, 0);
        match op {
            AluOp::Div | AluOp::Mod => {
                let safe = self.b.ins().select(is0, one, s);
                let r = self.div_raw(ty, op, d, safe);
                if op == AluOp::Div {
                    self.b.ins().select(is0, zero, r)
                } else {
                    self.b.ins().select(is0, d, r)
                }
            }
            _ => {
                let neg1 = self.b.ins().icmp_imm_s(IntCC::Equal, s, -1);
                let bad = self.b.ins().bor(is0, neg1);
                let safe = self.b.ins().select(bad, one, s);
                let r = self.div_raw(ty, op, d, safe);
                if op == AluOp::SDiv {
                    let nd = self.b.ins().ineg(d);
                    let q = self.b.ins().select(neg1, nd, r);
                    self.b.ins().select(is0, zero, q)
                } else {
                    // x % 1 == 0 covers the -1 divisor.
                    self.b.ins().select(is0, d, r)
                }
            }
        }
    }

    /// The division itself, on a divisor that cannot trap (non-zero, and not
    /// -1 for the signed forms). A 64-bit division is several times slower than
    /// a 32-bit one on many x86-64 cores, so when both operands fit in 32 bits
    /// (which makes them non-negative, so signed and unsigned results agree)
    /// divide in 32 bits, as LLVM's "bypass slow division" does for C.
    fn div_raw(&mut self, ty: Type, op: AluOp, d: Value, s: Value) -> Value {
        fn plain(
            ins: cranelift_frontend::FuncInstBuilder<'_, '_>,
            op: AluOp,
            d: Value,
            s: Value,
        ) -> Value {
            match op {
                AluOp::Div => ins.udiv(d, s),
                AluOp::Mod => ins.urem(d, s),
                AluOp::SDiv => ins.sdiv(d, s),
                _ => ins.srem(d, s),
            }
        }
        if ty != I64 {
            return plain(self.b.ins(), op, d, s);
        }
        let both = self.b.ins().bor(d, s);
        let high = self.b.ins().ushr_imm_u(both, 32);
        let fast = self.b.create_block();
        let slow = self.b.create_block();
        let join = self.b.create_block();
        let r = self.b.append_block_param(join, I64);
        self.b.ins().brif(high, slow, &[], fast, &[]);
        self.b.seal_block(fast);
        self.b.seal_block(slow);
        self.b.switch_to_block(fast);
        let d32 = self.b.ins().ireduce(I32, d);
        let s32 = self.b.ins().ireduce(I32, s);
        let uop = match op {
            AluOp::Div | AluOp::SDiv => AluOp::Div,
            _ => AluOp::Mod,
        };
        let q32 = plain(self.b.ins(), uop, d32, s32);
        let q = self.b.ins().uextend(I64, q32);
        self.b.ins().jump(join, &[BlockArg::Value(q)]);
        self.b.switch_to_block(slow);
        let q = plain(self.b.ins(), op, d, s);
        self.b.ins().jump(join, &[BlockArg::Value(q)]);
        self.b.seal_block(join);
        self.b.switch_to_block(join);
        r
    }

    fn endian(&mut self, op: EndianOp, bits: u8, dst: u8) {
        let d = self.reg(dst);
        let swap = match op {
            EndianOp::Swap => true,
            EndianOp::Be => self.endianness == Endianness::Little,
            EndianOp::Le => self.endianness == Endianness::Big,
        };
        let ty = match bits {
            16 => I16,
            32 => I32,
            _ => I64,
        };
        let v = if ty == I64 {
            d
        } else {
            self.b.ins().ireduce(ty, d)
        };
        let v = if swap { self.b.ins().bswap(v) } else { v };
        let v = if ty == I64 {
            v
        } else {
            self.b.ins().uextend(I64, v)
        };
        self.set(dst, v);
    }

    fn condition(&mut self, wide: bool, cond: JmpCond, dst: u8, src: Operand) -> Value {
        let a = self.dst_val(wide, dst);
        if cond == JmpCond::Set {
            let v = match src {
                Operand::Imm(i) => {
                    // Sign-extended to the comparison width (32 or 64 bits).
                    let i = i as i64;
                    self.b.ins().band_imm_s(a, i)
                }
                Operand::Reg(_) => {
                    let s = self.operand(wide, src);
                    self.b.ins().band(a, s)
                }
            };
            return self.b.ins().icmp_imm_u(IntCC::NotEqual, v, 0);
        }
        let cc = match cond {
            JmpCond::Eq => IntCC::Equal,
            JmpCond::Ne => IntCC::NotEqual,
            JmpCond::Gt => IntCC::UnsignedGreaterThan,
            JmpCond::Ge => IntCC::UnsignedGreaterThanOrEqual,
            JmpCond::Lt => IntCC::UnsignedLessThan,
            JmpCond::Le => IntCC::UnsignedLessThanOrEqual,
            JmpCond::Sgt => IntCC::SignedGreaterThan,
            JmpCond::Sge => IntCC::SignedGreaterThanOrEqual,
            JmpCond::Slt => IntCC::SignedLessThan,
            JmpCond::Sle => IntCC::SignedLessThanOrEqual,
            JmpCond::Set => unreachable!("handled above"),
        };
        match src {
            Operand::Imm(i) => self.b.ins().icmp_imm_s(cc, a, i as i64),
            Operand::Reg(_) => {
                let s = self.operand(wide, src);
                self.b.ins().icmp(cc, a, s)
            }
        }
    }

    // --------------------------------------------------------------- memory

    /// Address operands of an access at `base + off`: trusted code folds the
    /// offset into the memory instruction (one CLIF instruction instead of
    /// two); checked code computes the address once for the check and the
    /// access.
    fn address(&mut self, base: Value, off: i16) -> (Value, i32) {
        if self.flavor == Flavor::Checked {
            (self.b.ins().iadd_imm_s(base, off as i64), 0)
        } else {
            (base, off as i32)
        }
    }

    fn load(&mut self, size: Size, sign: bool, addr: Value, disp: i32) -> Value {
        let f = mem_flags();
        let ins = self.b.ins();
        match (size, sign) {
            (Size::B, false) => ins.uload8(I64, f, addr, disp),
            (Size::H, false) => ins.uload16(I64, f, addr, disp),
            (Size::W, false) => ins.uload32(f, addr, disp),
            (Size::B, true) => ins.sload8(I64, f, addr, disp),
            (Size::H, true) => ins.sload16(I64, f, addr, disp),
            (Size::W, true) => ins.sload32(f, addr, disp),
            (Size::DW, _) => ins.load(I64, f, addr, disp),
        }
    }

    /// What a promoted slot of `size` bytes holds after storing `v`: the
    /// stored bytes, zero-extended (what an unsigned load reads back).
    fn slot_value(&mut self, size: Size, v: Value) -> Value {
        let ty = match size {
            Size::B => I8,
            Size::H => I16,
            Size::W => I32,
            Size::DW => return v,
        };
        let n = self.b.ins().ireduce(ty, v);
        self.b.ins().uextend(I64, n)
    }

    /// A load from a promoted slot holding `v` (see [`Tr::slot_value`]).
    fn slot_load(&mut self, size: Size, sign: bool, v: Value) -> Value {
        let ty = match size {
            Size::B => I8,
            Size::H => I16,
            Size::W => I32,
            Size::DW => return v,
        };
        if !sign {
            return v;
        }
        let n = self.b.ins().ireduce(ty, v);
        self.b.ins().sextend(I64, n)
    }

    fn store(&mut self, size: Size, v: Value, addr: Value, disp: i32) {
        let f = mem_flags();
        let ins = self.b.ins();
        match size {
            Size::B => ins.istore8(f, v, addr, disp),
            Size::H => ins.istore16(f, v, addr, disp),
            Size::W => ins.istore32(f, v, addr, disp),
            Size::DW => ins.store(f, v, addr, disp),
        };
    }

    /// `d < len && len - d >= size` (with `d = addr - lo`).
    fn in_region_d(&mut self, d: Value, len: Value, size: u32) -> Value {
        let a = self.b.ins().icmp(IntCC::UnsignedLessThan, d, len);
        let rest = self.b.ins().isub(len, d);
        let c = self
            .b
            .ins()
            .icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, rest, size as i64);
        self.b.ins().band(a, c)
    }

    /// Checked mode: the access must lie in the live stack frames, the input, or
    /// a host-given or helper-granted region (checked in that order, like the
    /// interpreter). The first two are inline; the last is a call to the module's
    /// `PreserveAll` slow-check function, which records the error when the access
    /// is not allowed, so the call clobbers no register and the caller only tests
    /// `status` afterwards. Region bounds are reloaded from the context at each
    /// check rather than kept live across the function (cheap L1 loads; far less
    /// register pressure and register-allocation work).
    fn check_access(&mut self, pc: usize, addr: Value, size: Size, access: u64) {
        if self.flavor != Flavor::Checked {
            return;
        }
        let n = size.bytes();
        // Stack: [lo, stack_hi), at least this function's frame long.
        let hi = self.ctx_load(RunContext::OFFSET_STACK_HI);
        let d = self.b.ins().isub(addr, self.lo);
        let s_ok = if self.frame_size >= n as u64 {
            // len >= size: one unsigned comparison `d <= len - size`.
            let lo_n = self.b.ins().iadd_imm_s(self.lo, n as i64);
            let lim = self.b.ins().isub(hi, lo_n);
            self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, d, lim)
        } else {
            let len = self.b.ins().isub(hi, self.lo);
            self.in_region_d(d, len, n)
        };
        // Input: [input_ptr, input_ptr + input_len) (the length may be below size).
        let ip = self.ctx_load(RunContext::OFFSET_INPUT_PTR);
        let il = self.ctx_load(RunContext::OFFSET_INPUT_LEN);
        let d2 = self.b.ins().isub(addr, ip);
        let i_ok = self.in_region_d(d2, il, n);
        let ok_any = self.b.ins().bor(s_ok, i_ok);
        let ok = self.b.create_block();
        let slow = self.b.create_block();
        self.b.set_cold_block(slow);
        self.b.ins().brif(ok_any, ok, &[], slow, &[]);
        self.b.seal_block(slow);
        self.b.switch_to_block(slow);
        let kind = (access << 8) | n as u64;
        let site = self.iconst(I64, runtime::site(FaultCode::Access, pc, kind) as i64);
        let f = self
            .imports
            .slow_check
            .expect("checked mode has a slow check");
        self.b.ins().call(f, &[self.ctx, addr, site]);
        let st = self.ctx_load(RunContext::OFFSET_STATUS);
        let bail = self.bail_block();
        self.b.ins().brif(st, bail, &[], ok, &[]);
        self.b.seal_block(ok);
        self.b.switch_to_block(ok);
    }

    #[allow(clippy::too_many_arguments)]
    fn atomic(
        &mut self,
        pc: usize,
        size: Size,
        op: AtomicOp,
        fetch: bool,
        dst: u8,
        src: u8,
        off: i16,
    ) {
        let base = self.reg(dst);
        let addr = self.b.ins().iadd_imm_s(base, off as i64);
        let wide = size == Size::DW;
        let ty = if wide { I64 } else { I32 };
        if self.flavor == Flavor::Checked {
            let n = size.bytes() as i64;
            let mis = self.b.ins().band_imm_s(addr, n - 1);
            self.fault_if(mis, FaultCode::Misaligned, pc, n as u64, addr);
            self.check_access(pc, addr, size, runtime::ACCESS_ATOMIC);
        }
        let f = MemFlagsData::new().with_notrap().with_aligned();
        let s = self.reg(src);
        let s = if wide {
            s
        } else {
            self.b.ins().ireduce(I32, s)
        };
        if op == AtomicOp::Cmpxchg {
            let e = self.reg(0);
            let e = if wide {
                e
            } else {
                self.b.ins().ireduce(I32, e)
            };
            let old = self.b.ins().atomic_cas(f, addr, e, s);
            let old = if wide {
                old
            } else {
                self.b.ins().uextend(I64, old)
            };
            self.set(0, old);
            return;
        }
        let rmw = match op {
            AtomicOp::Add => AtomicRmwOp::Add,
            AtomicOp::Or => AtomicRmwOp::Or,
            AtomicOp::And => AtomicRmwOp::And,
            AtomicOp::Xor => AtomicRmwOp::Xor,
            AtomicOp::Xchg => AtomicRmwOp::Xchg,
            AtomicOp::Cmpxchg => unreachable!("handled above"),
        };
        let old = self.b.ins().atomic_rmw(ty, f, rmw, addr, s);
        if fetch {
            let old = if wide {
                old
            } else {
                self.b.ins().uextend(I64, old)
            };
            self.set(src, old);
        }
    }

    /// `LD_ABS` / `LD_IND`: big-endian load from the input at a 32-bit offset;
    /// out of bounds (or a negative offset) ends the program with r0 = 0.
    fn packet_load(&mut self, size: Size, off: Value) {
        let n = size.bytes() as i64;
        let neg = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, off, 0);
        let stop = self.stop0_block();
        let c1 = self.b.create_block();
        // Negative offsets (SKF_NET_OFF / SKF_LL_OFF): a cold call.
        let negative = self.b.create_block();
        self.b.set_cold_block(negative);
        let join = self.b.create_block();
        self.b.ins().brif(neg, negative, &[], c1, &[]);
        self.b.seal_block(negative);
        self.b.switch_to_block(negative);
        {
            let call_conv = self.b.func.dfg.signatures[self.imports.tramp_sig].call_conv;
            let mut sig = Signature::new(call_conv);
            sig.params.extend([AbiParam::new(I64); 3]);
            sig.returns.push(AbiParam::new(I64));
            let sig = self.b.import_signature(sig);
            let load_negative: unsafe extern "C" fn(*const RunContext<'_>, u64, u64) -> u64 =
                crate::context::cordon_load_negative;
            let f = self.iconst(I64, load_negative as usize as i64);
            let off64 = self.b.ins().uextend(I64, off);
            let size = self.iconst(I64, n);
            let call = self.b.ins().call_indirect(sig, f, &[self.ctx, off64, size]);
            let v = self.b.inst_results(call)[0];
            let failed = self.b.ins().icmp_imm_s(IntCC::Equal, v, -1);
            let ok = self.b.create_block();
            self.b.set_cold_block(ok);
            self.b.ins().brif(failed, stop, &[], ok, &[]);
            self.b.seal_block(ok);
            self.b.switch_to_block(ok);
            self.set(0, v);
            self.b.ins().jump(join, &[]);
        }
        self.b.seal_block(c1);
        self.b.switch_to_block(c1);
        let off64 = self.b.ins().uextend(I64, off);
        let end = self.b.ins().iadd_imm_s(off64, n);
        let len = self.ctx_load(RunContext::OFFSET_INPUT_LEN);
        let out = self.b.ins().icmp(IntCC::UnsignedGreaterThan, end, len);
        let c2 = self.b.create_block();
        self.b.ins().brif(out, stop, &[], c2, &[]);
        self.b.seal_block(c2);
        self.b.switch_to_block(c2);
        let base = self.ctx_load(RunContext::OFFSET_INPUT_PTR);
        let addr = self.b.ins().iadd(base, off64);
        let f = mem_flags();
        let v = match size {
            Size::B => self.b.ins().uload8(I64, f, addr, 0),
            Size::H => {
                let v = self.b.ins().load(I16, f, addr, 0);
                let v = if self.endianness == Endianness::Little {
                    self.b.ins().bswap(v)
                } else {
                    v
                };
                self.b.ins().uextend(I64, v)
            }
            _ => {
                let v = self.b.ins().load(I32, f, addr, 0);
                let v = if self.endianness == Endianness::Little {
                    self.b.ins().bswap(v)
                } else {
                    v
                };
                self.b.ins().uextend(I64, v)
            }
        };
        self.set(0, v);
        self.b.ins().jump(join, &[]);
        self.b.seal_block(join);
        self.b.switch_to_block(join);
    }

    // ---------------------------------------------------------------- calls

    fn helper_call(&mut self, pc: usize, tramp: usize, first: Value) {
        let idx = self.iconst(I64, pc as i64);
        self.ctx_store(RunContext::OFFSET_CALL_INDEX, idx);
        let f = self.iconst(I64, tramp as i64);
        let mut args = vec![self.ctx, first];
        for r in 1..=5u8 {
            args.push(self.reg(r));
        }
        let sig = self.imports.tramp_sig;
        let call = self.b.ins().call_indirect(sig, f, &args);
        let r0 = self.b.inst_results(call)[0];
        self.check_status();
        self.set(0, r0);
    }

    fn local_call(&mut self, pc: usize, target: usize, size: u64) {
        let checked = self.flavor == Flavor::Checked;
        let callee = (self.imports.callee)(target).expect("every call target has a function");
        let mut depth_next = None;
        if checked {
            let depth = self.depth.expect("checked");
            let full = self.b.ins().icmp_imm_u(
                IntCC::UnsignedGreaterThanOrEqual,
                depth,
                (MAX_CALL_FRAMES - 1) as i64,
            );
            self.fault_if(full, FaultCode::CallDepth, pc, 0, depth);
            depth_next = Some(self.b.ins().iadd_imm_s(depth, 1));
        }
        // Inline shadow-stack allocation of the callee's frame.
        self.arena = self.ctx_load(RunContext::OFFSET_ARENA);
        let limit = self.b.ins().load(
            I64,
            ctx_flags(),
            self.arena,
            FrameArena::OFFSET_LIMIT as i32,
        );
        let avail = self.b.ins().isub(self.lo, limit);
        let short = self
            .b
            .ins()
            .icmp_imm_u(IntCC::UnsignedLessThan, avail, size as i64);
        self.fault_if(short, FaultCode::StackExhausted, pc, size, avail);
        let need = self.iconst(I64, size as i64);
        let new_lo = self.b.ins().iadd_imm_s(self.lo, -(size as i64));
        self.b.ins().store(
            ctx_flags(),
            new_lo,
            self.arena,
            FrameArena::OFFSET_SP as i32,
        );
        if checked && size > 0 {
            let f = self.iconst(I64, runtime::jit_zero as *const () as usize as i64);
            let sig = self.imports.zero_sig;
            self.b.ins().call_indirect(sig, f, &[new_lo, need]);
        }
        let mut args = vec![self.ctx, self.lo];
        if checked {
            args.push(depth_next.expect("checked"));
            let left = self.b.use_var(self.left.expect("checked"));
            args.push(left);
        }
        for &r in &callee.params {
            args.push(self.reg(r));
        }
        let call = self.b.ins().call(callee.func, &args);
        let results = self.b.inst_results(call).to_vec();
        let lo = self.lo;
        self.b
            .ins()
            .store(ctx_flags(), lo, self.arena, FrameArena::OFFSET_SP as i32);
        if checked || callee.may_stop {
            self.check_status();
        }
        if checked {
            for r in 0..6u8 {
                self.set(r, results[r as usize]);
            }
            self.b.def_var(self.left.expect("checked"), results[6]);
        } else {
            self.set(0, results[0]);
        }
    }
}
