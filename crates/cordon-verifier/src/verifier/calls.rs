//! Calls and exits: helpers and kfuncs checked against the shared prototype
//! registry, static subprograms (verified in the caller's context), global
//! functions (checked against their signature), callbacks, open-coded
//! iterators, references and spin locks.

use super::ops::mark_ptr_or_null;
use super::precision::{F_CALLBACK_ENTRY, F_CALLBACK_EXIT, F_SUBPROG_ENTRY};
use super::{Engine, Flow, Res};
use crate::env::{ArgKind, GlobalRet, MapType, ProgType};
use crate::facts::SafePointKind;
use crate::log::fmt_reg;
use crate::proto::{ArgType, HelperProto, RetType, flags, helper, progs};
use crate::state::{
    Frame, FrameKind, IterState, LockState, RefKind, RefState, Reg, RegType, SlotType,
};

/// What argument checking learned.
#[derive(Default)]
struct ArgMeta {
    map: Option<u32>,
    release: Option<u32>,
    alloc_size: Option<u64>,
    callback: Option<usize>,
    /// (frame, spi) of an iterator argument, and its reference id.
    iter: Option<(usize, usize, u32)>,
    /// Register of the last memory argument and whether it was NULL / written.
    mem: Option<(u8, bool, bool)>,
    /// Statically known map key (array lookups with it cannot fail).
    const_key: Option<u64>,
}

fn prog_mask(t: ProgType) -> u32 {
    match t {
        ProgType::SocketFilter => progs::SOCKET_FILTER,
        ProgType::SchedCls | ProgType::SchedAct => progs::SCHED_CLS,
        ProgType::Xdp => progs::XDP,
        ProgType::Generic { .. } => progs::GENERIC,
    }
}

/// Types accepted where a helper reads or writes memory.
const MEM_TYPES: &[RegType] = &[
    RegType::Stack,
    RegType::Packet,
    RegType::PacketMeta,
    RegType::MapKey,
    RegType::MapValue,
    RegType::Mem,
];

fn type_name(r: &Reg) -> String {
    type_name_in(None, r)
}

fn type_name_in(reg: Option<&crate::proto::Registry>, r: &Reg) -> String {
    let mut s = r.ty.name().to_string();
    if r.ty == RegType::BtfId
        && let Some(t) = r.obj.and_then(|o| reg.and_then(|g| g.obj_type(o)))
    {
        s.push_str(&t.name);
    }
    if r.ty == RegType::Mem && r.rdonly {
        s = format!("rdonly_{s}");
    }
    if r.maybe_null {
        s.push_str("_or_null");
    }
    s
}

fn expected(types: &[RegType]) -> String {
    types
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl Engine<'_> {
    fn type_err(&self, regno: u8, r: &Reg, types: &[RegType]) -> String {
        format!(
            "R{regno} type={} expected={}",
            type_name(r),
            expected(types)
        )
    }

    fn clobber_caller_saved(&mut self) {
        for r in 1..=5 {
            *self.st.reg_mut(r) = Reg::not_init();
        }
    }

    /// Pointers derived from a released reference become unusable.
    fn release_reference(&mut self, id: u32) -> Res<()> {
        let Some(pos) = self.st.refs.iter().position(|r| r.id == id) else {
            return Err(format!("reference id={id} has not been acquired before"));
        };
        self.st.refs.remove(pos);
        let privileged = self.privileged();
        self.st.for_each_reg(|r| {
            if r.ref_obj_id == id {
                *r = if privileged {
                    Reg::unknown()
                } else {
                    Reg::not_init()
                };
            }
        });
        Ok(())
    }

    fn acquire(&mut self, pc: usize, kind: RefKind) -> u32 {
        let id = self.new_id();
        self.st.refs.push(RefState { id, insn: pc, kind });
        id
    }

    fn check_map_compat(&self, proto: &HelperProto, map: Option<u32>) -> Res<()> {
        let Some(mi) = map else { return Ok(()) };
        let Some(m) = self.env.maps.get(mi as usize) else {
            return Ok(());
        };
        let f = proto.id;
        let t = m.map_type;
        // record_func_map: helpers that write a read-only (for programs) map.
        if (m.rdonly_prog || crate::proto::map_forces_rdonly_prog(t.linux_id()))
            && matches!(
                f,
                helper::MAP_DELETE_ELEM
                    | helper::MAP_UPDATE_ELEM
                    | helper::MAP_PUSH_ELEM
                    | helper::MAP_POP_ELEM
            )
        {
            return Err("write into map forbidden".into());
        }
        let ok_for_func = match f {
            helper::MAP_LOOKUP_ELEM => !matches!(
                t,
                MapType::RingBuf
                    | MapType::Queue
                    | MapType::Stack
                    | MapType::ProgArray
                    | MapType::PerfEventArray
                    | MapType::BloomFilter
            ),
            // Programs cannot update maps of maps (user space fills them).
            helper::MAP_UPDATE_ELEM | helper::MAP_DELETE_ELEM => !matches!(
                t,
                MapType::RingBuf
                    | MapType::Queue
                    | MapType::Stack
                    | MapType::ProgArray
                    | MapType::PerfEventArray
                    | MapType::BloomFilter
                    | MapType::ArrayOfMaps
                    | MapType::HashOfMaps
            ),
            helper::MAP_PUSH_ELEM | helper::MAP_PEEK_ELEM => {
                matches!(t, MapType::Queue | MapType::Stack | MapType::BloomFilter)
            }
            helper::MAP_POP_ELEM => matches!(t, MapType::Queue | MapType::Stack),
            helper::PERF_EVENT_OUTPUT => t == MapType::PerfEventArray,
            helper::RINGBUF_OUTPUT | helper::RINGBUF_RESERVE | helper::RINGBUF_QUERY => {
                t == MapType::RingBuf
            }
            helper::TAIL_CALL => t == MapType::ProgArray,
            helper::REDIRECT_MAP => crate::proto::redirect_map_takes(t.linux_id()),
            _ => true,
        } && crate::proto::map_allows_func(t.linux_id(), f);
        if !ok_for_func {
            return Err(format!(
                "cannot pass map_type {} into func bpf_{}#{}",
                t.linux_id(),
                proto.name,
                proto.id
            ));
        }
        Ok(())
    }

    fn check_args(&mut self, proto: &HelperProto, is_kfunc: bool) -> Res<ArgMeta> {
        let mut meta = ArgMeta::default();
        for (i, &ty) in proto.args.iter().enumerate() {
            if ty == ArgType::None {
                break;
            }
            let regno = i as u8 + 1;
            self.check_read(regno)?;
            let r = *self.st.reg(regno);
            let argn = if is_kfunc {
                format!("arg#{i}")
            } else {
                format!("R{regno}")
            };
            match ty {
                ArgType::None => {}
                ArgType::Anything => {
                    if r.is_pointer() && !self.privileged() {
                        return Err(format!("R{regno} leaks addr into helper function"));
                    }
                    if is_kfunc && !r.is_scalar() && proto.has(flags::THROW) {
                        return Err(format!("{argn} is not a scalar"));
                    }
                }
                ArgType::ConstMapPtr => {
                    if r.ty != RegType::ConstMapPtr || r.maybe_null {
                        return Err(self.type_err(regno, &r, &[RegType::ConstMapPtr]));
                    }
                    meta.map = Some(r.map);
                }
                ArgType::PtrToMapKey | ArgType::PtrToMapValue | ArgType::PtrToUninitMapValue => {
                    let Some(m) = meta.map.and_then(|m| self.env.maps.get(m as usize)) else {
                        return Err("invalid map_ptr to access map->key".into());
                    };
                    let size = if ty == ArgType::PtrToMapKey {
                        m.key_size
                    } else {
                        m.value_size
                    };
                    if !r.is_pointer() || r.maybe_null || !MEM_TYPES.contains(&r.ty) {
                        return Err(self.type_err(regno, &r, MEM_TYPES));
                    }
                    self.helper_mem_access(regno, size as u64, ty == ArgType::PtrToUninitMapValue)?;
                    if ty == ArgType::PtrToMapKey
                        && m.map_type.is_array()
                        && let Some((k, slot)) = self.constant_key(&r, size)
                    {
                        meta.const_key = Some(k);
                        if let Some((f, spi)) = slot {
                            self.mark_precise_slot(f, spi);
                        }
                    }
                }
                ArgType::PtrToMem | ArgType::PtrToMemOrNull | ArgType::PtrToUninitMem => {
                    if ty == ArgType::PtrToMemOrNull && r.is_null() {
                        self.mark_precise_regs(&[regno]);
                        meta.mem = Some((regno, true, false));
                        continue;
                    }
                    if !r.is_pointer() || r.maybe_null || !MEM_TYPES.contains(&r.ty) {
                        return Err(self.type_err(regno, &r, MEM_TYPES));
                    }
                    meta.mem = Some((regno, false, ty == ArgType::PtrToUninitMem));
                }
                ArgType::ConstSize | ArgType::ConstSizeOrZero => {
                    if !r.is_scalar() {
                        return Err(self.type_err(regno, &r, &[RegType::Scalar]));
                    }
                    self.mark_precise_regs(&[regno]);
                    let Some((mreg, null, write)) = meta.mem.take() else {
                        return Err(format!("R{regno} size argument without a memory argument"));
                    };
                    if r.var.smin < 0 {
                        return Err(format!(
                            "R{regno} min value is negative, either use unsigned or 'var &= const'"
                        ));
                    }
                    if r.var.umin == 0 && ty == ArgType::ConstSize {
                        return Err(format!("R{regno} invalid zero-sized read"));
                    }
                    if null {
                        if r.var.umax != 0 {
                            return Err(format!(
                                "R{mreg} is NULL but R{regno} size may be non-zero"
                            ));
                        }
                        continue;
                    }
                    if r.var.umax >= super::ops::MAX_VAR_OFF as u64 {
                        return Err(format!(
                            "R{regno} unbounded memory access, use 'var &= const' or 'if (var < const)'"
                        ));
                    }
                    if mreg != 0 && self.st.reg(mreg).rdonly && write {
                        return Err(format!("R{mreg} cannot write into rdonly_mem"));
                    }
                    self.helper_mem_access(mreg, r.var.umax, write)?;
                }
                ArgType::ConstAllocSizeOrZero => {
                    if !r.is_scalar() {
                        return Err(self.type_err(regno, &r, &[RegType::Scalar]));
                    }
                    let Some(v) = r.var.const_value() else {
                        return Err(format!("R{regno} is not a known constant'"));
                    };
                    self.mark_precise_regs(&[regno]);
                    meta.alloc_size = Some(v);
                }
                ArgType::PtrToCtx => {
                    if r.ty != RegType::Ctx {
                        return Err(self.type_err(regno, &r, &[RegType::Ctx]));
                    }
                    if r.fixed_off() != Some(0) {
                        return Err(format!(
                            "dereference of modified ctx ptr R{regno} off={} disallowed",
                            r.off
                        ));
                    }
                }
                ArgType::PtrToStack | ArgType::PtrToStackOrNull => {
                    if ty == ArgType::PtrToStackOrNull && r.is_null() {
                        self.mark_precise_regs(&[regno]);
                        continue;
                    }
                    if r.ty != RegType::Stack {
                        return Err(self.type_err(regno, &r, &[RegType::Stack]));
                    }
                }
                ArgType::CallbackFn => {
                    if r.ty != RegType::Func {
                        return Err(self.type_err(regno, &r, &[RegType::Func]));
                    }
                    meta.callback = Some(r.size as usize);
                }
                ArgType::PtrToSpinLock => {
                    if r.ty != RegType::MapValue || r.maybe_null {
                        return Err(self.type_err(regno, &r, &[RegType::MapValue]));
                    }
                }
                ArgType::PtrToBtfId(t) | ArgType::ReleasePtrToBtfId(t) => {
                    if r.ty != RegType::BtfId || r.obj != Some(t) || r.maybe_null {
                        let want = self
                            .env
                            .registry
                            .obj_type(t)
                            .map(|o| o.name.clone())
                            .unwrap_or_default();
                        return Err(format!(
                            "{argn} expected pointer to {want} but R{regno} has type {}",
                            type_name_in(Some(&self.env.registry), &r)
                        ));
                    }
                    if r.fixed_off() != Some(0) {
                        return Err(format!(
                            "R{regno} must have zero offset when passed to release func or trusted arg to kfunc"
                        ));
                    }
                    if let ArgType::ReleasePtrToBtfId(_) = ty {
                        if r.ref_obj_id == 0 {
                            return Err(format!(
                                "release kernel function {} expects refcounted PTR_TO_BTF_ID",
                                proto.name
                            ));
                        }
                        meta.release = Some(r.ref_obj_id);
                    }
                }
                ArgType::ReleaseRingbufMem => {
                    if r.ty != RegType::Mem || r.ref_obj_id == 0 || r.maybe_null {
                        return Err(format!(
                            "R{regno} type={} expected=ringbuf_mem",
                            type_name(&r)
                        ));
                    }
                    if r.fixed_off() != Some(0) {
                        return Err(format!(
                            "R{regno} must have zero offset when passed to release func"
                        ));
                    }
                    meta.release = Some(r.ref_obj_id);
                }
                ArgType::IterNumUninit | ArgType::IterNum => {
                    let Some(off) = (r.ty == RegType::Stack).then(|| r.fixed_off()).flatten()
                    else {
                        return Err(format!("{argn} expected pointer to an iterator on stack"));
                    };
                    if off % 8 != 0 || !(-(self.env.limits.max_stack as i64)..=-8).contains(&off) {
                        return Err(format!("{argn} expected pointer to an iterator on stack"));
                    }
                    let frame = r.frameno as usize;
                    let spi = ((-off - 1) / 8) as usize;
                    let slot = self.st.frames[frame].slot(spi).copied().unwrap_or_default();
                    let is_iter = slot.types[0] == SlotType::Iter && slot.iter.is_some();
                    if ty == ArgType::IterNumUninit {
                        if is_iter {
                            return Err(format!(
                                "{argn} expected uninitialized iter_num as arg #{i}"
                            ));
                        }
                        self.note_stack(r.frameno, -off);
                        meta.iter = Some((frame, spi, 0));
                    } else {
                        if !is_iter {
                            return Err(format!("expected an initialized iter_num as arg #{i}"));
                        }
                        meta.iter = Some((frame, spi, slot.spilled.ref_obj_id));
                    }
                }
            }
        }
        Ok(meta)
    }

    /// The key a stack pointer points at, when it is a known constant
    /// (zeroed bytes, or a spilled constant of exactly the key's size).
    fn constant_key(&self, r: &Reg, key_size: u32) -> Option<(u64, Option<(u8, u16)>)> {
        if !self.privileged() || r.ty != RegType::Stack {
            return None;
        }
        let off = r.fixed_off()?;
        if off >= 0 || key_size == 0 || key_size > 8 {
            return None;
        }
        let spi = ((-off - 1) / 8) as usize;
        let idx = (off + 8 * (spi as i64 + 1)) as usize;
        let slot = self.st.frames[r.frameno as usize].slot(spi)?;
        let end = idx + key_size as usize;
        if end > 8 {
            return None;
        }
        if slot.types[idx..end].iter().all(|t| *t == SlotType::Zero) {
            return Some((0, None));
        }
        if idx == 0
            && slot.is_spill()
            && slot.spill_size as u32 == key_size
            && slot.spilled.is_scalar()
        {
            let v = slot.spilled.var.const_value()?;
            return Some((v, Some((r.frameno, spi as u16))));
        }
        None
    }

    fn spin_lock(&mut self, pc: usize, lock: bool) -> Res<()> {
        let r = *self.st.reg(1);
        let Some(m) = self.env.maps.get(r.map as usize) else {
            return Err("R1 points to an unknown map".into());
        };
        let Some(l) = m.spin_lock_off else {
            return Err(format!("map '{}' has no valid bpf_spin_lock", m.name));
        };
        let Some(off) = r.fixed_off() else {
            return Err(
                "R1 doesn't have constant offset. bpf_spin_lock has to be at the constant offset"
                    .into(),
            );
        };
        if off != l as i64 {
            return Err(format!(
                "off {off} doesn't point to 'struct bpf_spin_lock' that is at {l}"
            ));
        }
        if lock {
            if self.st.lock.is_some() {
                return Err("Locking two bpf_spin_locks are not allowed".into());
            }
            self.st.lock = Some(LockState {
                map: r.map,
                ptr_id: r.id,
                insn: pc,
            });
        } else {
            match self.st.lock {
                None => return Err("bpf_spin_unlock without taking a lock".into()),
                Some(cur) if cur.map != r.map || cur.ptr_id != r.id => {
                    return Err("bpf_spin_unlock of different lock".into());
                }
                _ => self.st.lock = None,
            }
        }
        Ok(())
    }

    pub(crate) fn call_helper(&mut self, pc: usize, id: i32) -> Res<Flow> {
        let Some(proto) = self.env.registry.helper(id as u32).cloned() else {
            return Err(format!("invalid func unknown#{id}"));
        };
        if proto.prog_types & prog_mask(self.env.prog_type) == 0 {
            return Err(format!(
                "program of this type cannot use helper bpf_{}#{id}",
                proto.name
            ));
        }
        if self.st.lock.is_some() && !proto.has(flags::SPIN_UNLOCK) {
            return Err("function calls are not allowed while holding a lock".into());
        }
        if proto.has(flags::CALLS_CALLBACK) && !self.privileged() {
            return Err("loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN".into());
        }
        let meta = self.check_args(&proto, false)?;
        self.check_map_compat(&proto, meta.map)?;
        if let Some(map) = meta.map {
            use crate::facts::CallMap;
            let seen = CallMap::Const {
                map,
                key: meta.const_key,
            };
            let merged = match self.call_maps.get(&pc) {
                None => seen,
                Some(CallMap::Const { map: m, key }) if *m == map => CallMap::Const {
                    map,
                    key: if *key == meta.const_key { *key } else { None },
                },
                Some(_) => CallMap::Varies,
            };
            self.call_maps.insert(pc, merged);
        }
        self.finish_call(pc, &proto, meta, false)
    }

    pub(crate) fn call_kfunc(&mut self, pc: usize, id: i32) -> Res<Flow> {
        if !self.privileged() {
            return Err("loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN".into());
        }
        let Some(proto) = self.env.registry.kfunc(id as u32).cloned() else {
            return Err(format!("kernel btf_id {id} is not a function"));
        };
        if proto.has(flags::SLEEPABLE) && !self.env.sleepable {
            return Err(format!(
                "program must be sleepable to call sleepable kfunc {}",
                proto.name
            ));
        }
        // Linux registers its generic kfunc set (bpf_throw, object and
        // list kfuncs) only for some program types; the socket filter and
        // tc action types are not among them.
        if proto.has(flags::THROW)
            && matches!(
                self.env.prog_type,
                crate::env::ProgType::SocketFilter | crate::env::ProgType::SchedAct
            )
        {
            return Err(format!(
                "calling kernel function {} is not allowed",
                proto.name
            ));
        }
        if proto.prog_types & prog_mask(self.env.prog_type) == 0 {
            return Err(format!(
                "calling kernel function {} is not allowed",
                proto.name
            ));
        }
        if proto.has(flags::THROW) {
            return self.do_throw(pc, &proto);
        }
        self.record_safe_point(pc, SafePointKind::Call);
        if self.st.lock.is_some() {
            return Err("function calls are not allowed while holding a lock".into());
        }
        let meta = self.check_args(&proto, true)?;
        self.finish_call(pc, &proto, meta, true)
    }

    fn do_throw(&mut self, pc: usize, proto: &HelperProto) -> Res<Flow> {
        self.check_args(proto, true)?;
        if self.in_exception_cb {
            return Err(format!(
                "{} cannot be called from exception callback",
                proto.name
            ));
        }
        if self.st.in_callback > 0 || self.st.frames.iter().any(|f| f.kind == FrameKind::Callback) {
            return Err(format!(
                "{} cannot be called from callback subprog",
                proto.name
            ));
        }
        if !self.env.throw_releases_resources {
            if self.st.lock.is_some() {
                return Err(format!(
                    "{} cannot be used inside bpf_spin_lock-ed region",
                    proto.name
                ));
            }
            if let Some(r) = self.st.refs.first() {
                return Err(format!(
                    "Unreleased reference id={} alloc_insn={}",
                    r.id, r.insn
                ));
            }
        }
        self.record_safe_point(pc, SafePointKind::Throw);
        Ok(Flow::End)
    }

    fn finish_call(
        &mut self,
        pc: usize,
        proto: &HelperProto,
        meta: ArgMeta,
        is_kfunc: bool,
    ) -> Res<Flow> {
        // Effects that need the argument registers.
        if proto.has(flags::SPIN_LOCK) {
            self.spin_lock(pc, true)?;
        } else if proto.has(flags::SPIN_UNLOCK) {
            self.spin_lock(pc, false)?;
        }
        if proto.has(flags::TAIL_CALL) && !self.st.refs.is_empty() {
            return Err("tail_call would lead to reference leak".into());
        }
        if let Some(id) = meta.release {
            self.release_reference(id)?;
        }
        if proto.has(flags::CHANGES_PKT_DATA) {
            let privileged = self.privileged();
            self.st.for_each_reg(|r| {
                if matches!(
                    r.ty,
                    RegType::Packet | RegType::PacketMeta | RegType::PacketEnd
                ) {
                    *r = if privileged {
                        Reg::unknown()
                    } else {
                        Reg::not_init()
                    };
                }
            });
        }
        if proto.has(flags::ITER_NEW) {
            let (frame, spi, _) = meta.iter.ok_or("internal: iterator argument missing")?;
            let id = self.acquire(pc, RefKind::Iter);
            let f = &mut self.st.frames[frame];
            f.grow(spi);
            let slot = &mut f.stack[spi];
            slot.types = [SlotType::Iter; 8];
            slot.spill_size = 0;
            slot.spilled = Reg {
                ref_obj_id: id,
                ..Reg::not_init()
            };
            slot.iter = Some((IterState::Active, 0));
        }
        if proto.has(flags::ITER_DESTROY) {
            let (frame, spi, id) = meta.iter.ok_or("internal: iterator argument missing")?;
            self.st.refs.retain(|r| r.id != id);
            if let Some(slot) = self.st.frames[frame].stack.get_mut(spi) {
                *slot = Default::default();
            }
        }
        if let Some(cb) = meta.callback {
            return self.enter_callback(pc, cb, proto.id, meta.map);
        }
        self.clobber_caller_saved();
        let r0 = match proto.ret {
            RetType::Integer => Reg::unknown(),
            RetType::Void => Reg::not_init(),
            RetType::NoReturn => return Ok(Flow::End),
            RetType::PtrToMapValueOrNull
                if meta
                    .map
                    .and_then(|m| self.env.maps.get(m as usize))
                    .is_some_and(|m| {
                        matches!(m.map_type, MapType::ArrayOfMaps | MapType::HashOfMaps)
                    }) =>
            {
                // Lookup in a map of maps: a pointer to the inner map, or NULL.
                let outer = &self.env.maps[meta.map.unwrap_or(0) as usize];
                let Some(inner) = outer.inner_map else {
                    return Err(format!("map '{}' has no inner map prototype", outer.name));
                };
                let mut r = Reg::ptr(RegType::ConstMapPtr);
                r.map = inner;
                r.maybe_null = true;
                r.id = self.new_id();
                r
            }
            RetType::PtrToMapValueOrNull => {
                let mut r = Reg::ptr(RegType::MapValue);
                let map = meta.map.ok_or("internal: map argument missing")?;
                r.map = map;
                let info = self.env.maps.get(map as usize);
                // Array lookups with a constant in-range key cannot fail (Linux 6.14+).
                let never_null = proto.id == helper::MAP_LOOKUP_ELEM
                    && info.is_some_and(|m| {
                        m.map_type.is_array()
                            && meta.const_key.is_some_and(|k| k < m.max_entries as u64)
                    });
                r.maybe_null = !never_null;
                if r.maybe_null || info.is_some_and(|m| m.spin_lock_off.is_some()) {
                    r.id = self.new_id();
                }
                r
            }
            RetType::PtrToMemOrNull { .. } => {
                let size = meta.alloc_size.unwrap_or(0);
                if size > u32::MAX as u64 {
                    return Err(format!("allocation size {size} is too large"));
                }
                let mut r = Reg::ptr(RegType::Mem);
                r.size = size as u32;
                r.maybe_null = true;
                if proto.has(flags::ACQUIRE) {
                    let id = self.acquire(
                        pc,
                        RefKind::RingbufRecord {
                            map: meta.map.unwrap_or(0),
                        },
                    );
                    r.id = id;
                    r.ref_obj_id = id;
                } else {
                    r.id = self.new_id();
                }
                r
            }
            RetType::PtrToBtfIdOrNull(t) | RetType::PtrToBtfId(t) => {
                let mut r = Reg::ptr(RegType::BtfId);
                r.obj = Some(t);
                r.maybe_null = matches!(proto.ret, RetType::PtrToBtfIdOrNull(_));
                if proto.has(flags::ACQUIRE) {
                    let id = self.acquire(
                        pc,
                        RefKind::Object {
                            obj: Some(t),
                            acquired_by: proto.id,
                        },
                    );
                    r.id = id;
                    r.ref_obj_id = id;
                } else if r.maybe_null {
                    r.id = self.new_id();
                }
                r
            }
            RetType::PtrToRdonlyMemOrNull { size } => {
                let mut r = Reg::ptr(RegType::Mem);
                r.size = size;
                r.rdonly = true;
                r
            }
        };
        *self.st.reg_mut(0) = r0;
        if proto.has(flags::ITER_NEXT) {
            return self.iter_next(pc, meta);
        }
        let _ = is_kfunc;
        Ok(Flow::Next(pc + 1))
    }

    /// `bpf_iter_num_next`: one path where the iterator is drained (R0 = NULL)
    /// and, if it is active, one where it yields an element.
    fn iter_next(&mut self, pc: usize, meta: ArgMeta) -> Res<Flow> {
        let (frame, spi, _) = meta.iter.ok_or("internal: iterator argument missing")?;
        let state = self.st.frames[frame].stack[spi].iter.map(|x| x.0);
        if state == Some(IterState::Active) {
            let mut active = self.st.clone();
            if let Some(it) = active.frames[frame].stack[spi].iter.as_mut() {
                it.1 += 1;
            }
            self.push_branch(active, pc + 1)?;
        }
        if let Some(it) = self.st.frames[frame].stack[spi].iter.as_mut() {
            it.0 = IterState::Drained;
        }
        *self.st.reg_mut(0) = Reg::konst(0);
        Ok(Flow::Next(pc + 1))
    }

    /// A helper that calls `cb` synchronously: `bpf_loop` (r1 = index, r2 =
    /// ctx) or `bpf_for_each_map_elem` (Linux's `set_map_elem_callback_state`:
    /// r1 = map, r2 = key, r3 = value, r4 = ctx).
    fn enter_callback(
        &mut self,
        pc: usize,
        cb: usize,
        helper_id: u32,
        map: Option<u32>,
    ) -> Res<Flow> {
        let for_each = helper_id == helper::FOR_EACH_MAP_ELEM;
        if for_each {
            let m = map.ok_or("internal: map argument missing")?;
            let t = self
                .env
                .maps
                .get(m as usize)
                .map(|i| i.map_type.linux_id())
                .ok_or("internal: unknown map")?;
            if !crate::proto::map_has_for_each(t) {
                return Err("callback function not allowed for map".into());
            }
        }
        let depth = self.st.frames.len();
        if depth >= self.env.limits.max_call_frames {
            return Err(format!(
                "the call stack of {} frames is too deep",
                depth + 1
            ));
        }
        // Path where the helper returns (after zero or more callback runs).
        let mut done = self.st.clone();
        for r in 1..=5 {
            done.cur_mut().regs[r] = Reg::not_init();
        }
        done.cur_mut().regs[0] = Reg::unknown();
        self.push_branch(done, pc + 1)?;
        // Only this path enters the callback (the queued one returned).
        self.trace_mark(F_CALLBACK_ENTRY, None);
        let ctx_arg = *self.st.reg(3);
        let mut f = Frame::new(cb, pc, depth as u8, FrameKind::Callback);
        if let (true, Some(m)) = (for_each, map) {
            let mut map_ptr = Reg::ptr(RegType::ConstMapPtr);
            map_ptr.map = m;
            let mut key = Reg::ptr(RegType::MapKey);
            key.map = m;
            let mut value = Reg::ptr(RegType::MapValue);
            value.map = m;
            f.regs[1] = map_ptr;
            f.regs[2] = key;
            f.regs[3] = value;
            f.regs[4] = ctx_arg;
        } else {
            f.regs[1] = Reg::unknown();
            f.regs[2] = ctx_arg;
        }
        self.st.frames.push(f);
        self.st.in_callback += 1;
        Ok(Flow::Next(self.cfg.subprogs[cb].start))
    }

    pub(crate) fn call_local(&mut self, pc: usize, target: usize) -> Res<Flow> {
        let callee = self.cfg.subprog_of[target];
        if let Some(sig) = self.env.global_funcs.get(&target).cloned() {
            if self.st.lock.is_some() {
                return Err("global function calls are not allowed while holding a lock".into());
            }
            for (i, a) in sig.args.iter().enumerate().take(5) {
                let regno = i as u8 + 1;
                self.check_read(regno)?;
                let r = *self.st.reg(regno);
                match a {
                    ArgKind::Scalar => {
                        if !r.is_scalar() {
                            return Err(format!("R{regno} is not a scalar"));
                        }
                    }
                    ArgKind::PtrToCtx => {
                        if r.ty != RegType::Ctx || r.fixed_off() != Some(0) {
                            return Err(format!(
                                "arg#{i} expected pointer to ctx, but got {}",
                                type_name(&r)
                            ));
                        }
                    }
                    ArgKind::PtrToMem { size, nullable } => {
                        if *nullable && r.is_null() {
                            self.mark_precise_regs(&[regno]);
                            continue;
                        }
                        if !r.is_pointer() || r.maybe_null || !MEM_TYPES.contains(&r.ty) {
                            return Err(format!(
                                "arg#{i} expected pointer to memory, but got {}",
                                type_name(&r)
                            ));
                        }
                        self.helper_mem_access(regno, *size as u64, false)?;
                        self.helper_mem_access(regno, *size as u64, true)?;
                    }
                }
            }
            self.clobber_caller_saved();
            *self.st.reg_mut(0) = match sig.ret {
                GlobalRet::Scalar => Reg::unknown(),
                GlobalRet::Void => Reg::not_init(),
            };
            return Ok(Flow::Next(pc + 1));
        }
        let depth = self.st.frames.len();
        if depth >= self.env.limits.max_call_frames {
            return Err(format!(
                "the call stack of {} frames is too deep",
                depth + 1
            ));
        }
        self.trace_mark(F_SUBPROG_ENTRY, None);
        let mut f = Frame::new(callee, pc, depth as u8, FrameKind::Call);
        for r in 1..=5 {
            f.regs[r] = self.st.cur().regs[r];
        }
        self.st.frames.push(f);
        Ok(Flow::Next(target))
    }

    pub(crate) fn do_exit(&mut self, _pc: usize) -> Res<Flow> {
        let kind = self.st.cur().kind;
        match kind {
            FrameKind::Callback => {
                self.check_read(0)?;
                self.trace_mark(F_CALLBACK_EXIT, None);
                self.mark_precise_regs(&[0]);
                let r0 = *self.st.reg(0);
                if !r0.is_scalar() || r0.var.smin < 0 || r0.var.smax > 1 {
                    return Err(format!(
                        "At callback return the register R0 has {} should have been in [0, 1]",
                        fmt_reg(self.env, &r0)
                    ));
                }
                let f = self.st.frames.pop().ok_or("internal: no frame")?;
                self.st.in_callback -= 1;
                self.st.callback_unroll = self.st.callback_unroll.saturating_add(1);
                self.forget_frame(f.frameno);
                Ok(Flow::Next(f.callsite))
            }
            FrameKind::Call => {
                self.check_read(0)?;
                let r0 = *self.st.reg(0);
                // Linux 6.18 refuses every stack pointer here, the caller's too.
                if r0.ty == RegType::Stack {
                    return Err("cannot return stack pointer to the caller".into());
                }
                let f = self.st.frames.pop().ok_or("internal: no frame")?;
                self.forget_frame(f.frameno);
                self.clobber_caller_saved();
                *self.st.reg_mut(0) = r0;
                Ok(Flow::Next(f.callsite + 1))
            }
            FrameKind::Main => {
                let global = self.root_global.map(|s| self.cfg.subprogs[s].start);
                if self.st.lock.is_some() {
                    return Err(
                        "BPF_EXIT instruction in main prog cannot be used inside bpf_spin_lock-ed region"
                            .into(),
                    );
                }
                if let Some(r) = self.st.refs.first() {
                    return Err(format!(
                        "Unreleased reference id={} alloc_insn={}",
                        r.id, r.insn
                    ));
                }
                if let Some(g) = global {
                    let ret = self
                        .env
                        .global_funcs
                        .get(&g)
                        .map(|s| s.ret)
                        .unwrap_or_default();
                    // Linux 6.18 does not require a scalar from the
                    // exception callback (it loads `cb: r0 = r10; exit`).
                    if self.in_exception_cb {
                        self.check_read(0)?;
                    } else if ret == GlobalRet::Scalar {
                        self.check_read(0)?;
                        let r0 = *self.st.reg(0);
                        if !r0.is_scalar() {
                            return Err(format!(
                                "At subprogram exit the register R0 is not a scalar value ({})",
                                type_name(&r0)
                            ));
                        }
                    }
                    return Ok(Flow::End);
                }
                self.check_read(0)?;
                if self.st.reg(0).is_pointer() && !self.privileged() {
                    return Err("R0 leaks addr as return value".into());
                }
                Ok(Flow::End)
            }
        }
    }

    /// After frame `frameno` is gone, stack pointers into it are meaningless.
    fn forget_frame(&mut self, frameno: u8) {
        for f in &mut self.st.frames {
            for s in f.stack.iter_mut() {
                if s.is_spill() && s.spilled.ty == RegType::Stack && s.spilled.frameno >= frameno {
                    for t in s.types.iter_mut() {
                        if *t == SlotType::Spill {
                            *t = SlotType::Misc;
                        }
                    }
                    s.spilled = Reg::not_init();
                    s.spill_size = 0;
                }
            }
            for r in f.regs.iter_mut() {
                if r.ty == RegType::Stack && r.frameno >= frameno {
                    *r = Reg::not_init();
                }
            }
        }
        let _ = mark_ptr_or_null;
    }
}
