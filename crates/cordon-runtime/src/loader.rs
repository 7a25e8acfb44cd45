//! The loading pipeline: object → maps → (per program) kfunc/helper
//! resolution → verification → context rewriting → relocation → patching →
//! compilation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use cordon_exec::jit::{JitConfig, JitExecutable};
use cordon_exec::{ExecOptions, Executable, HelperRegistry, StackStrategy};
use cordon_isa::{Insn, Program};
use cordon_object::btf::Btf;
use cordon_object::{MapOrigin, MapSpec, Object, ProgramSpec, SlotInit};
use cordon_verifier::object::spin_lock_off;
use cordon_verifier::proto::{self, ArgType, RetType, kfunc};
use cordon_verifier::{CtxField, Profile, ProgType, Registry, VerifyEnv, verify};

use crate::ctx::hidden;
use crate::error::LoadError;
use crate::extmaps::{self, ExtMap};
use crate::helpers::{self, HelperImpl, KfuncFn, TestObjects, internal};
use crate::maps::{self, Map, MapDef, MapHandle, MapType};
use crate::patch::{self, PInsn};
use crate::program::{CompiledProgram, Exe, ProgKind};

/// Which engine runs programs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The interpreter.
    #[default]
    Interpreter,
    /// The Cranelift JIT.
    Jit,
}

/// Engine configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub backend: Backend,
    /// Verify programs (default). Unverified programs run in checked mode.
    pub verify: bool,
    /// Verifier profile (privileged by default).
    pub profile: Profile,
    /// Where r10 frames live.
    pub stack: StackStrategy,
    /// Usable bytes of each shadow stack.
    pub shadow_stack_size: usize,
    /// Instruction budget of checked (unverified) runs.
    pub instruction_budget: u64,
    /// Number of CPU slots of per-CPU maps (`bpf_get_smp_processor_id` range).
    /// Defaults to [`possible_cpus`], the count Linux sizes per-CPU maps by.
    pub cpus: u32,
    /// Verifier log level on success (Linux bits; failures always log level 1).
    pub log_level: u32,
    /// JIT code generation settings.
    pub jit: JitConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: Backend::Interpreter,
            verify: true,
            profile: Profile::Privileged,
            stack: StackStrategy::default(),
            shadow_stack_size: 256 * 1024,
            instruction_budget: cordon_exec::DEFAULT_INSTRUCTION_BUDGET,
            cpus: possible_cpus(),
            log_level: 0,
            jit: JitConfig::default(),
        }
    }
}

/// The number of possible CPUs of this machine, as Linux counts them for
/// per-CPU maps (`num_possible_cpus()`): one past the highest CPU listed in
/// `/sys/devices/system/cpu/possible`. Falls back to
/// [`std::thread::available_parallelism`] (then 1) where that file is missing
/// or unreadable, or lists a CPU past Linux's largest `NR_CPUS` (8192).
pub fn possible_cpus() -> u32 {
    static CPUS: OnceLock<u32> = OnceLock::new();
    *CPUS.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|text| parse_cpu_list(&text))
            .unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, |n| n.get().min(8192) as u32)
            })
    })
}

/// One past the highest CPU of a kernel CPU list (`0-3,5,7-8` -> 9); `None`
/// for malformed lists, descending ranges and CPUs of 8192 or more.
fn parse_cpu_list(text: &str) -> Option<u32> {
    let mut max: Option<u32> = None;
    for part in text.trim().split(',') {
        let last = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?);
                if a > b {
                    return None;
                }
                b
            }
            None => part.parse::<u32>().ok()?,
        };
        max = Some(max.map_or(last, |m| m.max(last)));
    }
    max.filter(|&m| m < 8192).map(|m| m + 1)
}

/// Everything programs of one load share: configuration, prototype registry,
/// helper and kfunc implementations.
pub struct Env {
    pub(crate) config: Config,
    pub(crate) registry: Arc<Registry>,
    pub(crate) helpers: HelperRegistry,
}

static NEXT_PROG_ID: AtomicU32 = AtomicU32::new(1);

/// The runtime: configuration, registry and kfunc implementations. Register
/// kfuncs, then load objects.
pub struct Runtime {
    config: Config,
    registry: Registry,
    kfuncs: BTreeMap<String, KfuncFn>,
    test_objects: Arc<TestObjects>,
}

impl Runtime {
    pub fn new(config: Config) -> Runtime {
        let registry = Registry::linux();
        let test_objects = Arc::new(TestObjects::default());
        let kfuncs = helpers::builtin_kfuncs(&test_objects)
            .into_iter()
            .chain(helpers::xdp_kfuncs())
            .map(|(n, f)| (n.to_string(), f))
            .collect();
        Runtime {
            config,
            registry,
            kfuncs,
            test_objects,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The prototype registry (helpers and kfuncs) programs are verified against.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Objects of `cordon_test_acquire` not yet released.
    pub fn test_objects_live(&self) -> i64 {
        self.test_objects.live()
    }

    /// Registers (or replaces the implementation of) kfunc `name` with its
    /// prototype. Returns the kfunc's registry id.
    pub fn register_kfunc(
        &mut self,
        name: &str,
        args: &[ArgType],
        ret: RetType,
        flags: u32,
        func: KfuncFn,
    ) -> u32 {
        let id = match self.registry.kfunc_id(name) {
            Some(id) => id,
            None => self.registry.add_kfunc(name, args, ret, flags),
        };
        self.kfuncs.insert(name.to_string(), func);
        id
    }

    /// Registers a host object type kfuncs can return (`PtrToBtfId`).
    pub fn register_obj_type(&mut self, name: &str, size: u32, writable: bool) -> proto::ObjTypeId {
        self.registry.add_obj_type(proto::ObjType {
            name: name.to_string(),
            size,
            writable,
        })
    }

    fn env(&self) -> Arc<Env> {
        let mut helpers = HelperRegistry::new();
        let impls: Vec<(u32, HelperImpl)> = helpers::builtin_helpers();
        for (id, f) in impls {
            if let Some(p) = self.registry.helper(id) {
                let name = format!("bpf_{}", p.name);
                helpers.register_shared(id, &name, f);
            }
        }
        helpers.register(
            internal::TAIL_CALL_TRY,
            "bpf_tail_call",
            crate::program::tail_call_try,
        );
        helpers.register(
            internal::TAIL_CALL_RESULT,
            "bpf_tail_call(result)",
            crate::program::tail_call_result,
        );
        helpers.register(internal::STOP, "bpf_throw(exception callback)", |_, a| {
            crate::state::stop_invocation(a[0])
        });
        helpers.register(
            internal::FOR_EACH_NEXT,
            "bpf_for_each_map_elem(next)",
            helpers::for_each::cursor_next,
        );
        helpers.register(internal::BAD_CALLBACK, "bpf_loop", |_, _| {
            Err(cordon_exec::Abort::Fault(
                "the callback argument is not a function of this program".into(),
            ))
        });
        for k in self.registry.kfuncs() {
            if let Some(f) = self.kfuncs.get(&k.name) {
                let f = Arc::clone(f);
                helpers.register_kfunc(k.id, &k.name, move |c, a| f(c, a));
            }
        }
        Arc::new(Env {
            config: self.config.clone(),
            registry: Arc::new(self.registry.clone()),
            helpers,
        })
    }

    /// Parses an ELF object and creates its maps. Programs are verified and
    /// compiled on first use (prog_array initial slots at once).
    pub fn load(&self, bytes: &[u8]) -> Result<LoadedObject, LoadError> {
        let object = Object::parse(bytes).map_err(|e| LoadError::Object(e.to_string()))?;
        self.load_parsed(object)
    }

    /// Loads an already parsed (or hand-built) object.
    pub fn load_parsed(&self, object: Object) -> Result<LoadedObject, LoadError> {
        let env = self.env();
        let ncpus = env.config.cpus.max(1);
        let mut handles = Vec::with_capacity(object.maps.len());
        for m in &object.maps {
            if extmaps::is_ext_type(m.map_type) {
                let e = ExtMap::create(
                    &extmaps::ExtMapDef {
                        name: &m.name,
                        map_type: m.map_type,
                        key_size: m.key_size,
                        value_size: m.value_size,
                        max_entries: m.max_entries,
                        flags: m.flags,
                        map_extra: m.map_extra,
                    },
                    ncpus,
                )
                .map_err(|message| LoadError::Map {
                    map: m.name.clone(),
                    message,
                })?;
                handles.push(ObjMap::Ext(e));
                continue;
            }
            handles.push(ObjMap::Core(create_map(m, object.btf.as_ref(), ncpus)?));
        }
        let programs = object.programs.iter().map(|_| OnceLock::new()).collect();
        let loaded = LoadedObject {
            env,
            object,
            maps: handles,
            programs,
        };
        // Statically initialised map-of-maps and prog_array slots.
        for (i, m) in loaded.object.maps.iter().enumerate() {
            for (slot, init) in &m.initial_slots {
                let key = slot.to_ne_bytes();
                match init {
                    SlotInit::Map(name) => {
                        let inner = loaded.map_handle(name)?;
                        loaded
                            .core_map(i)?
                            .update_inner_map(&key, &inner, 0)
                            .map_err(|e| LoadError::Map {
                                map: m.name.clone(),
                                message: format!("slot {slot} = map '{name}': {e}"),
                            })?;
                    }
                    SlotInit::Program(name) => {
                        let prog = loaded.program(name)?;
                        loaded.set_tail_call(&m.name, *slot, &prog)?;
                    }
                }
            }
        }
        Ok(loaded)
    }
}

/// A map of an object: one of the core types or an extension type.
#[derive(Clone, Debug)]
pub enum ObjMap {
    Core(MapHandle),
    Ext(Arc<ExtMap>),
}

impl ObjMap {
    /// The pointer programs hold for this map.
    pub fn prog_ptr(&self) -> u64 {
        match self {
            ObjMap::Core(m) => m.as_prog_ptr(),
            ObjMap::Ext(e) => e.as_prog_ptr(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            ObjMap::Core(m) => m.name(),
            ObjMap::Ext(e) => e.name(),
        }
    }

    /// `enum bpf_map_type` id.
    pub fn type_id(&self) -> u32 {
        match self {
            ObjMap::Core(m) => m.map_type().id(),
            ObjMap::Ext(e) => e.map_type(),
        }
    }
}

/// Converts a map specification into a runtime definition.
fn map_def(m: &MapSpec, btf: Option<&Btf>) -> Result<MapDef, LoadError> {
    let t = MapType::from_id(m.map_type).map_err(|_| LoadError::UnsupportedMapType {
        map: m.name.clone(),
        type_id: m.map_type,
        type_name: m.type_name().to_string(),
    })?;
    let mut flags = m.flags;
    if m.origin == MapOrigin::GlobalData && m.section.starts_with(".rodata") {
        flags |= maps::flags::BPF_F_RDONLY_PROG;
    }
    let mut def = MapDef::new(t, m.key_size, m.value_size, m.max_entries)
        .with_flags(flags)
        .with_name(m.name.clone());
    if let (Some(btf), Some(v)) = (btf, m.btf_value_type_id)
        && let Some(off) = spin_lock_off(btf, v)
    {
        def = def.with_spin_lock(off);
    }
    if let Some(inner) = &m.inner {
        def = def.with_inner(map_def(inner, btf)?);
    }
    Ok(def)
}

fn create_map(m: &MapSpec, btf: Option<&Btf>, ncpus: u32) -> Result<MapHandle, LoadError> {
    let def = map_def(m, btf)?;
    let err = |e: maps::MapError| LoadError::Map {
        map: m.name.clone(),
        message: e.to_string(),
    };
    let handle = match &m.initial_data {
        Some(data) => Map::create_with_data(&def, ncpus, data).map_err(err)?,
        None => Map::create(&def, ncpus).map_err(err)?,
    };
    if m.origin == MapOrigin::GlobalData && m.section.starts_with(".rodata") {
        handle.freeze().map_err(err)?;
    }
    Ok(handle)
}

/// A loaded object: its maps and (lazily compiled) programs.
pub struct LoadedObject {
    env: Arc<Env>,
    object: Object,
    maps: Vec<ObjMap>,
    programs: Vec<OnceLock<Result<Arc<CompiledProgram>, LoadError>>>,
}

impl Drop for LoadedObject {
    fn drop(&mut self) {
        // prog_arrays hold programs that hold the arrays: break the cycle as
        // Linux does when the last user reference goes away.
        for m in &self.maps {
            if let ObjMap::Core(m) = m {
                m.clear_progs();
            }
        }
    }
}

impl LoadedObject {
    /// The parsed object.
    pub fn object(&self) -> &Object {
        &self.object
    }

    /// Program names in object order.
    pub fn program_names(&self) -> Vec<&str> {
        self.object
            .programs
            .iter()
            .map(|p| p.name.as_str())
            .collect()
    }

    /// Map names in object order.
    pub fn map_names(&self) -> Vec<&str> {
        self.object.maps.iter().map(|m| m.name.as_str()).collect()
    }

    /// The map named `name` (core or extension type).
    pub fn any_map(&self, name: &str) -> Result<ObjMap, LoadError> {
        self.object
            .maps
            .iter()
            .position(|m| m.name == name)
            .map(|i| self.maps[i].clone())
            .ok_or_else(|| LoadError::NoSuchMap {
                name: name.to_string(),
                available: self.map_names().join(", "),
            })
    }

    fn core_map(&self, i: usize) -> Result<MapHandle, LoadError> {
        match &self.maps[i] {
            ObjMap::Core(m) => Ok(Arc::clone(m)),
            ObjMap::Ext(e) => Err(LoadError::Map {
                map: e.name().to_string(),
                message: format!(
                    "is a {} map: use the extension map API (ext_map)",
                    cordon_object::map_type_name(e.map_type()).unwrap_or("?")
                ),
            }),
        }
    }

    /// The map named `name` (the core map types of [`crate::maps`]).
    pub fn map_handle(&self, name: &str) -> Result<MapHandle, LoadError> {
        match self.any_map(name)? {
            ObjMap::Core(m) => Ok(m),
            ObjMap::Ext(_) => {
                let i = self
                    .object
                    .maps
                    .iter()
                    .position(|m| m.name == name)
                    .unwrap_or(0);
                self.core_map(i)
            }
        }
    }

    /// The `lpm_trie` / `bloom_filter` / `perf_event_array` map named `name`.
    pub fn ext_map(&self, name: &str) -> Result<Arc<ExtMap>, LoadError> {
        match self.any_map(name)? {
            ObjMap::Ext(e) => Ok(e),
            ObjMap::Core(m) => Err(LoadError::Map {
                map: name.to_string(),
                message: format!("is a {} map: use map_handle", m.map_type()),
            }),
        }
    }

    /// All maps, in object order.
    pub fn maps(&self) -> &[ObjMap] {
        &self.maps
    }

    /// The program named `name` (function name, or section name), verified and
    /// compiled on first use.
    pub fn program(&self, name: &str) -> Result<Arc<CompiledProgram>, LoadError> {
        let idx = self
            .object
            .programs
            .iter()
            .position(|p| p.name == name)
            .or_else(|| self.object.programs.iter().position(|p| p.section == name))
            .ok_or_else(|| LoadError::NoSuchProgram {
                name: name.to_string(),
                available: self.program_names().join(", "),
            })?;
        self.programs[idx]
            .get_or_init(|| compile(&self.env, &self.object, &self.maps, idx).map(Arc::new))
            .clone()
    }

    /// Stores `prog` at `index` of prog_array `map`.
    pub fn set_tail_call(
        &self,
        map: &str,
        index: u32,
        prog: &Arc<CompiledProgram>,
    ) -> Result<(), LoadError> {
        let m = self.map_handle(map)?;
        let err = |e: maps::MapError| LoadError::TailCallSlot {
            map: map.to_string(),
            index,
            message: e.to_string(),
        };
        m.check_prog_handle_compatible(&**prog).map_err(|e| match e {
            maps::MapError::IncompatibleProgram { prog_type, owner_type } => {
                LoadError::TailCallSlot {
                    map: map.to_string(),
                    index,
                    message: format!(
                        "program '{}' has program type {prog_type} but the prog_array is bound to {} with program type {owner_type}",
                        prog.name,
                        m.prog_owner_name()
                            .map_or_else(|| "a program".to_string(), |n| format!("program '{n}'"))
                    ),
                }
            }
            e => err(e),
        })?;
        m.set_prog(index, Arc::clone(prog) as Arc<dyn maps::ProgramHandle>, 0)
            .map_err(err)
    }

    /// Objects of `cordon_test_acquire` not released (shared by the engine).
    pub fn env_config(&self) -> &Config {
        &self.env.config
    }
}

fn prog_kind(spec: &ProgramSpec) -> Result<ProgKind, LoadError> {
    use cordon_object::ProgType as O;
    Ok(match spec.prog_type {
        O::Xdp => ProgKind::Xdp,
        O::SchedCls => ProgKind::SchedCls,
        O::SchedAct => ProgKind::SchedAct,
        O::SocketFilter => ProgKind::SocketFilter,
        O::Unspec => ProgKind::Raw,
        other => {
            return Err(LoadError::UnsupportedProgType {
                program: spec.name.clone(),
                prog_type: other.name().to_string(),
            });
        }
    })
}

const CALL: u8 = 0x85;

/// Helpers implemented by rewriting their call sites (see `patch`).
fn patched_helper(id: u32) -> bool {
    id == proto::helper::TAIL_CALL
        || id == proto::helper::LOOP
        || id == proto::helper::FOR_EACH_MAP_ELEM
}

/// Compiles program `idx` of `object`.
fn compile(
    env: &Env,
    object: &Object,
    maps: &[ObjMap],
    idx: usize,
) -> Result<CompiledProgram, LoadError> {
    let spec = &object.programs[idx];
    let pname = spec.name.clone();
    let kind = prog_kind(spec)?;
    let mut insns: Vec<Insn> = spec.insns.clone();
    let bad = |index: usize, message: String| LoadError::BadInstruction {
        program: pname.clone(),
        index,
        message,
    };

    // 1. Helper ids and kfunc names against the registry and the implementations.
    let mut pc = 0;
    while pc < insns.len() {
        let i = insns[pc];
        if i.is_lddw() {
            pc += 2;
            continue;
        }
        if i.code == CALL && i.src == 0 {
            let known = u32::try_from(i.imm).ok().filter(|id| {
                env.registry.helper(*id).is_some()
                    && (env.helpers.get(*id).is_some() || patched_helper(*id))
            });
            if known.is_none() {
                return Err(LoadError::UnknownHelper {
                    program: pname,
                    index: pc,
                    id: i.imm,
                    name: cordon_isa::disasm::helper_name(i.imm).map(str::to_string),
                });
            }
        } else if i.code == CALL && i.src == 2 {
            let name = object.kfuncs.get(i.imm as usize).cloned().ok_or_else(|| {
                bad(
                    pc,
                    format!("kfunc index {} outside the object's kfunc list", i.imm),
                )
            })?;
            let id = env
                .registry
                .kfunc_id(&name)
                .filter(|id| env.helpers.get_kfunc(*id).is_some())
                .ok_or_else(|| LoadError::UnresolvedKfunc {
                    program: pname.clone(),
                    index: pc,
                    name: name.clone(),
                })?;
            insns[pc].imm = id as i32;
            insns[pc].off = 0;
        }
        pc += 1;
    }

    // 2. Verification.
    let verify_it = env.config.verify && kind != ProgKind::Raw;
    let program = Program::new(insns.clone()).map_err(|e| bad(0, e.to_string()))?;
    let facts = if verify_it {
        let venv = verify_env(env, object, spec, kind);
        match verify(&program, &venv) {
            Ok(f) => Some(f),
            Err(e) => {
                return Err(LoadError::Verify {
                    program: pname,
                    message: e.to_string(),
                    log: e.log.clone(),
                });
            }
        }
    } else {
        None
    };

    // 3. Context accesses (Linux's convert_ctx_accesses): packet pointer
    // fields become 64-bit loads of the backing structure's pointers.
    if let Some(f) = &facts {
        for (&at, acc) in &f.ctx_accesses {
            if acc.write || acc.field == CtxField::Scalar {
                continue;
            }
            let off = match (kind, acc.field) {
                (ProgKind::Xdp, CtxField::PktData) => hidden::XDP_DATA,
                (ProgKind::Xdp, CtxField::PktEnd) => hidden::XDP_DATA_END,
                (ProgKind::Xdp, CtxField::PktMeta) => hidden::XDP_DATA_META,
                (_, CtxField::PktData) => hidden::SKB_DATA,
                (_, CtxField::PktEnd) => hidden::SKB_DATA_END,
                (_, CtxField::PktMeta) => hidden::SKB_DATA_META,
                (_, CtxField::Scalar) => continue,
            };
            let i = &mut insns[at];
            if i.class() != 1 {
                return Err(bad(at, "context pointer field access is not a load".into()));
            }
            i.code = 0x79; // ldxdw
            i.off = off;
        }
    }

    // 4. Relocations: map pointers, global data addresses, function addresses.
    let mut callbacks = BTreeSet::new();
    let mut used_maps = BTreeSet::new();
    let mut data_regions: Vec<(u64, u64, bool)> = Vec::new();
    let mut pc = 0;
    while pc < insns.len() {
        let i = insns[pc];
        if !i.is_lddw() {
            pc += 1;
            continue;
        }
        let next_imm = insns.get(pc + 1).map_or(0, |n| n.imm);
        let value: Option<u64> = match i.src {
            0 => None,
            5 | 6 => {
                let m = maps
                    .get(i.imm as u32 as usize)
                    .ok_or_else(|| bad(pc, format!("map index {} out of range", i.imm)))?;
                used_maps.insert(i.imm as u32 as usize);
                let m = match m {
                    ObjMap::Ext(e) if i.src == 5 => {
                        insns[pc] = Insn::new(0x18, i.dst, 0, 0, e.as_prog_ptr() as u32 as i32);
                        insns[pc + 1] =
                            Insn::new(0, 0, 0, 0, (e.as_prog_ptr() >> 32) as u32 as i32);
                        pc += 2;
                        continue;
                    }
                    ObjMap::Ext(e) => {
                        return Err(bad(
                            pc,
                            format!("map '{}' has no directly addressable value", e.name()),
                        ));
                    }
                    ObjMap::Core(m) => m,
                };
                if i.src == 5 {
                    Some(m.as_prog_ptr())
                } else {
                    let layout = m.array_layout().ok_or_else(|| {
                        bad(
                            pc,
                            format!("map '{}' has no directly addressable value", m.name()),
                        )
                    })?;
                    let off = next_imm as u32 as u64;
                    if off >= m.value_size() as u64 {
                        return Err(bad(
                            pc,
                            format!("offset {off} outside the value of map '{}'", m.name()),
                        ));
                    }
                    let region = (
                        layout.base as u64,
                        m.value_size() as u64,
                        m.def().flags & maps::flags::BPF_F_RDONLY_PROG == 0,
                    );
                    if !data_regions.contains(&region) {
                        data_regions.push(region);
                    }
                    Some(layout.base as u64 + off)
                }
            }
            4 => {
                let target = pc as i64 + 1 + i.imm as i64;
                if target < 0 || target as usize >= insns.len() {
                    return Err(bad(
                        pc,
                        format!("function address {target} outside the program"),
                    ));
                }
                callbacks.insert(target as usize);
                Some(target as u64)
            }
            other => {
                return Err(bad(
                    pc,
                    format!(
                        "lddw with pseudo source {other} cannot be resolved (the object must use map indices)"
                    ),
                ));
            }
        };
        if let Some(v) = value {
            insns[pc] = Insn::new(0x18, i.dst, 0, 0, v as u32 as i32);
            if let Some(n) = insns.get_mut(pc + 1) {
                *n = Insn::new(0, 0, 0, 0, (v >> 32) as u32 as i32);
            }
        }
        pc += 2;
    }

    // 5. Frames and patches.
    let mut starts: Vec<usize> = spec.functions.iter().map(|f| f.start).collect();
    starts.sort_unstable();
    starts.dedup();
    let mut frames: BTreeMap<usize, u32> = match &facts {
        Some(f) => f.subprog_frames().into_iter().collect(),
        None => starts.iter().map(|&s| (s, 512)).collect(),
    };
    let func_of = |pc: usize| -> usize {
        let k = starts.partition_point(|&s| s <= pc);
        if k == 0 { 0 } else { starts[k - 1] }
    };
    let exception_cb = spec
        .exception_callback
        .and_then(|i| spec.functions.get(i))
        .map(|f| f.start);
    let throw_id = env.registry.kfunc_id(kfunc::THROW);
    let cb_list: Vec<usize> = callbacks.iter().copied().collect();
    let mut patches: BTreeMap<usize, Vec<PInsn>> = BTreeMap::new();
    let mut extended: BTreeSet<usize> = BTreeSet::new();
    let mut pc = 0;
    while pc < insns.len() {
        let i = insns[pc];
        if i.is_lddw() {
            pc += 2;
            continue;
        }
        if i.code == CALL && i.src == 0 && i.imm == proto::helper::TAIL_CALL as i32 {
            patches.insert(pc, patch::tail_call_seq());
        } else if i.code == CALL
            && i.src == 0
            && (i.imm == proto::helper::LOOP as i32
                || i.imm == proto::helper::FOR_EACH_MAP_ELEM as i32)
        {
            let f = func_of(pc);
            let depth = frames.get(&f).copied().unwrap_or(512);
            let save = depth.div_ceil(8) * 8;
            if !extended.contains(&f) {
                frames.insert(f, save + patch::CALLBACK_FRAME_EXTRA);
                extended.insert(f);
            }
            let save = i16::try_from(frames[&f] - patch::CALLBACK_FRAME_EXTRA)
                .map_err(|_| bad(pc, "frame too large for a callback helper".into()))?;
            patches.insert(
                pc,
                if i.imm == proto::helper::LOOP as i32 {
                    patch::loop_seq(&cb_list, save)
                } else {
                    patch::for_each_seq(&cb_list, save)
                },
            );
        } else if i.code == CALL
            && i.src == 2
            && Some(i.imm as u32) == throw_id
            && let Some(cb) = exception_cb
        {
            patches.insert(pc, patch::throw_seq(cb));
        }
        pc += 1;
    }
    let (final_insns, new_pc) = if patches.is_empty() {
        let n = insns.len();
        (insns, (0..=n).collect())
    } else {
        patch::apply(&insns, &patches).map_err(|m| bad(0, m))?
    };
    let subprog_frames: Vec<(usize, u32)> =
        frames.iter().map(|(&s, &sz)| (new_pc[s], sz)).collect();
    let program = Program::new(final_insns.clone()).map_err(|e| LoadError::Engine {
        program: pname.clone(),
        message: format!("rewritten code is invalid: {e}"),
    })?;

    // 6. Compile. Verified programs get their helper call sites specialised
    // (inline array lookups, direct map and cheap helper calls).
    let call_sites = match &facts {
        Some(f) => {
            helpers::call_sites(&program, f, &new_pc, maps).map_err(|e| LoadError::Engine {
                program: pname.clone(),
                message: format!("call-site specialisation: {e}"),
            })?
        }
        None => cordon_exec::CallSites::default(),
    };
    // Fields not named here (e.g. the 512-byte default frame, Linux's
    // MAX_BPF_STACK, for subprograms without an entry) keep their defaults.
    let options = ExecOptions {
        name: pname.clone(),
        subprog_frames,
        stack: env.config.stack,
        shadow_stack_size: env.config.shadow_stack_size,
        instruction_budget: env.config.instruction_budget,
        call_sites,
        ..ExecOptions::default()
    };
    let engine_err = |message: String| LoadError::Engine {
        program: pname.clone(),
        message,
    };
    let verified = facts.is_some();
    let exe = match (env.config.backend, verified) {
        (Backend::Interpreter, false) => Exe::Interp(
            Executable::checked(&program, &env.helpers, options)
                .map_err(|e| engine_err(e.to_string()))?,
        ),
        // SAFETY: the verifier accepted the program; rewriting kept its
        // memory accesses (ctx pointer loads now read the real pointers).
        (Backend::Interpreter, true) => Exe::Interp(unsafe {
            Executable::trusted(&program, &env.helpers, options)
                .map_err(|e| engine_err(e.to_string()))?
        }),
        (Backend::Jit, v) => {
            let mode = if v {
                cordon_exec::Mode::Trusted
            } else {
                cordon_exec::Mode::Checked
            };
            // SAFETY: trusted only for verified programs, as above.
            Exe::Jit(unsafe {
                JitExecutable::compile_with(&program, &env.helpers, options, mode, &env.config.jit)
                    .map_err(|e| engine_err(e.to_string()))?
            })
        }
    };
    let held: Vec<ObjMap> = used_maps.iter().map(|&i| maps[i].clone()).collect();
    let mut map_ptrs: Vec<u64> = held.iter().map(ObjMap::prog_ptr).collect();
    map_ptrs.sort_unstable();
    let prog = CompiledProgram {
        id: NEXT_PROG_ID.fetch_add(1, Ordering::Relaxed),
        name: pname,
        kind,
        exe,
        maps: held,
        map_ptrs,
        data_regions,
        verified,
        verifier_log: facts.as_ref().map(|f| f.log.clone()).unwrap_or_default(),
        insns: final_insns,
        ncpus: env.config.cpus.max(1),
        xdp_has_frags: spec.prog_flags() & cordon_object::BPF_F_XDP_HAS_FRAGS != 0,
        expected_attach_type: maps::section_expected_attach_type(&spec.section),
    };
    // bpf_check_tail_call: a program using a prog_array binds (or must match)
    // the array's owner properties, like one inserted into it.
    for m in &prog.maps {
        if let ObjMap::Core(h) = m {
            h.check_prog_handle_compatible(&prog)
                .map_err(|e| LoadError::Map {
                    map: h.name().to_string(),
                    message: format!("program '{}' uses it: {e}", prog.name),
                })?;
        }
    }
    Ok(prog)
}

/// The verifier's view of the program: maps, program type, global function
/// signatures from BTF, exception callback, line info, the registry.
fn verify_env(env: &Env, obj: &Object, p: &ProgramSpec, kind: ProgKind) -> VerifyEnv {
    let t = match kind {
        ProgKind::Xdp => ProgType::Xdp,
        ProgKind::SchedCls => ProgType::SchedCls,
        ProgKind::SchedAct => ProgType::SchedAct,
        ProgKind::SocketFilter => ProgType::SocketFilter,
        ProgKind::Raw => ProgType::Generic {
            ctx_size: 0,
            ctx_writable: false,
        },
    };
    let mut venv = VerifyEnv::new(t)
        .with_profile(env.config.profile)
        .with_log_level(env.config.log_level.max(1));
    venv.registry = Arc::clone(&env.registry);
    venv.throw_releases_resources = false;
    venv.with_object(obj, p)
}

#[cfg(test)]
mod cpu_tests {
    use super::{Config, parse_cpu_list, possible_cpus};

    #[test]
    fn cpu_lists_parse_like_the_kernel_prints_them() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(2));
        assert_eq!(parse_cpu_list("0\n"), Some(1));
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Some(9));
        assert_eq!(parse_cpu_list("0-8191"), Some(8192));
    }

    #[test]
    fn malformed_cpu_lists_are_refused() {
        for bad in [
            "",
            "\n",
            "x",
            "0-",
            "-3",
            "3-1",
            "0,,2",
            "0-8192",
            "4294967295",
            "1 2",
        ] {
            assert_eq!(parse_cpu_list(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn default_cpus_are_the_possible_cpus() {
        let n = possible_cpus();
        assert!((1..=8192).contains(&n));
        assert_eq!(Config::default().cpus, n);
        if let Ok(text) = std::fs::read_to_string("/sys/devices/system/cpu/possible") {
            assert_eq!(Some(n), parse_cpu_list(&text));
        }
        // The count cordon-linux reads for Linux's per-CPU map values.
        if let Ok(k) = cordon_linux::possible_cpus() {
            assert_eq!(n as usize, k);
        }
    }

    #[test]
    fn default_per_cpu_maps_have_a_slot_per_possible_cpu() {
        let def = crate::MapDef::new(crate::MapType::PercpuArray, 4, 8, 1);
        let m = crate::Map::create(&def, Config::default().cpus).unwrap();
        assert_eq!(m.ncpus(), possible_cpus());
    }
}
