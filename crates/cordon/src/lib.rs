//! The Cordon embedding API: load clang-compiled BPF objects and run their
//! programs with Linux's semantics, on the interpreter or the JIT.
//!
//! * [`Engine`]: configuration ([`Config`]: backend, verification, verifier
//!   profile, stack strategy and size, instruction budget, CPU slots) and the
//!   kfunc registry ([`Engine::register_kfunc`]).
//! * [`Object`]: a loaded ELF object — its maps ([`Object::map`], host access
//!   through [`MapHandle`]) and programs ([`Object::program`]), tail-call slots
//!   ([`Object::set_tail_call`]).
//! * [`Program`]: verified and compiled once, cheap to clone, `Send + Sync`.
//!   Run it like Linux's `BPF_PROG_TEST_RUN` ([`Program::run_xdp`],
//!   [`Program::run_skb`], [`Program::run_raw`], or [`Program::run`] by
//!   program type) to get a [`RunResult`] (return value, output packet,
//!   context, redirect, `bpf_trace_printk` lines, duration), or call it with
//!   explicit registers and no allocation ([`Program::call`]).
//!
//! ```
//! use cordon::{Engine, Config, Backend};
//!
//! # fn main() -> Result<(), cordon::Error> {
//! let engine = Engine::new(Config { backend: Backend::Jit, ..Config::default() });
//! let object = engine.load_object(include_bytes!("../../../tests/bpf/tc_mark.o"))?;
//! let program = object.program("tc_mark")?;
//!
//! let mut packet = vec![0u8; 100];
//! packet[12] = 0x08; // EtherType IPv4
//! let result = program.run_skb(&packet)?;
//! assert_eq!(result.retval, 0); // TC_ACT_OK
//! // skb->mark = len << 16 | protocol
//! assert_eq!(result.ctx_u32(cordon::ctx::sk_buff::MARK), Some(100 << 16 | 0x0008));
//! # Ok(())
//! # }
//! ```
//!
//! Host-defined kfuncs are registered with a prototype from the verifier's
//! registry types, so the verifier checks every call:
//!
//! ```
//! use cordon::{Engine, ArgType, RetType};
//!
//! let mut engine = Engine::default();
//! engine.register_kfunc("host_add", &[ArgType::Anything, ArgType::Anything], RetType::Integer, 0,
//!     |_ctx, args| Ok(args[0].wrapping_add(args[1])));
//! ```

use std::path::Path;
use std::sync::Arc;

use cordon_runtime::{CompiledProgram, LoadedObject, Runtime};

pub use cordon_exec::jit::{JitConfig, OptLevel};
pub use cordon_exec::{Abort, HelperResult, RunContext, StackStrategy};
pub use cordon_isa::Insn;
pub use cordon_runtime::ctx;
pub use cordon_runtime::maps::{self, MapDef};
pub use cordon_runtime::{
    Backend, Config, ExtMap, LoadError, Map, MapError, MapHandle, MapType, ObjMap, ProgKind,
    Redirect, RedirectTarget, RunError, RunResult, set_cpu,
};
pub use cordon_verifier::Profile;
pub use cordon_verifier::proto::{ArgType, ObjTypeId, RetType, flags as kfunc_flags};

/// Every error of the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("map '{map}': {source}")]
    Map {
        map: String,
        #[source]
        source: MapError,
    },
    #[error("cannot read '{path}': {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Configuration, helper/kfunc registry and shared state of loaded objects.
pub struct Engine {
    rt: Runtime,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(Config::default())
    }
}

impl Engine {
    pub fn new(config: Config) -> Engine {
        Engine {
            rt: Runtime::new(config),
        }
    }

    /// An engine with the interpreter backend and default settings.
    pub fn interpreter() -> Engine {
        Engine::new(Config::default())
    }

    /// An engine with the JIT backend and default settings.
    pub fn jit() -> Engine {
        Engine::new(Config {
            backend: Backend::Jit,
            ..Config::default()
        })
    }

    pub fn config(&self) -> &Config {
        self.rt.config()
    }

    /// Registers kfunc `name` (or replaces the implementation of a built-in
    /// one) with its prototype and flags ([`kfunc_flags`]: `ACQUIRE`,
    /// `RELEASE`, `RET_NULL`, `SLEEPABLE`, ...). Objects loaded afterwards can
    /// call it; returns its registry id.
    pub fn register_kfunc<F>(
        &mut self,
        name: &str,
        args: &[ArgType],
        ret: RetType,
        flags: u32,
        func: F,
    ) -> u32
    where
        F: Fn(&mut RunContext<'_>, [u64; 5]) -> HelperResult + Send + Sync + 'static,
    {
        self.rt
            .register_kfunc(name, args, ret, flags, Arc::new(func))
    }

    /// Registers a host object type kfuncs may return pointers to
    /// ([`ArgType::PtrToBtfId`], [`RetType::PtrToBtfIdOrNull`]).
    pub fn register_obj_type(&mut self, name: &str, size: u32, writable: bool) -> ObjTypeId {
        self.rt.register_obj_type(name, size, writable)
    }

    /// Objects handed out by the built-in `cordon_test_acquire` kfunc and not
    /// yet released (what `cordon run` prints as `test_objects_live`).
    pub fn test_objects_live(&self) -> i64 {
        self.rt.test_objects_live()
    }

    /// Loads an ELF object from memory: parses it and creates its maps.
    /// Programs are verified and compiled on first [`Object::program`].
    pub fn load_object(&self, bytes: &[u8]) -> Result<Object, Error> {
        Ok(Object {
            inner: Arc::new(self.rt.load(bytes)?),
        })
    }

    /// Loads an ELF object from a file.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Object, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        self.load_object(&bytes)
    }

    /// Loads an object built in memory (e.g. a [`cordon_object::Object`] made
    /// from raw instructions).
    pub fn load_parsed(&self, object: cordon_object::Object) -> Result<Object, Error> {
        Ok(Object {
            inner: Arc::new(self.rt.load_parsed(object)?),
        })
    }
}

/// A loaded object. Cheap to clone.
#[derive(Clone)]
pub struct Object {
    inner: Arc<LoadedObject>,
}

impl Object {
    /// The program with function name (or section name) `name`, verified and
    /// compiled on first use.
    pub fn program(&self, name: &str) -> Result<Program, Error> {
        Ok(Program {
            inner: self.inner.program(name)?,
            _object: Arc::clone(&self.inner),
        })
    }

    /// Program names in object order.
    pub fn program_names(&self) -> Vec<String> {
        self.inner
            .program_names()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Map names in object order.
    pub fn map_names(&self) -> Vec<String> {
        self.inner
            .map_names()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Host access to map `name` (lookup, update, iterate, ...).
    pub fn map(&self, name: &str) -> Result<MapHandle, Error> {
        Ok(self.inner.map_handle(name)?)
    }

    /// Host access to an `lpm_trie`, `bloom_filter` or `perf_event_array` map.
    pub fn ext_map(&self, name: &str) -> Result<Arc<ExtMap>, Error> {
        Ok(self.inner.ext_map(name)?)
    }

    /// Every map of the object, in object order.
    pub fn maps(&self) -> Vec<ObjMap> {
        self.inner.maps().to_vec()
    }

    /// Stores `prog` in slot `index` of prog_array `map`.
    pub fn set_tail_call(&self, map: &str, index: u32, prog: &Program) -> Result<(), Error> {
        Ok(self.inner.set_tail_call(map, index, &prog.inner)?)
    }

    /// Removes slot `index` of prog_array `map`.
    pub fn clear_tail_call(&self, map: &str, index: u32) -> Result<(), Error> {
        let m = self.map(map)?;
        m.delete_value(&index.to_ne_bytes())
            .map_err(|source| Error::Map {
                map: map.to_string(),
                source,
            })
    }

    /// The parsed object (sections, BTF, relocations, ...).
    pub fn parsed(&self) -> &cordon_object::Object {
        self.inner.object()
    }
}

/// A verified, compiled program. Cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Program {
    inner: Arc<CompiledProgram>,
    _object: Arc<LoadedObject>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Program {
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    pub fn kind(&self) -> ProgKind {
        self.inner.kind()
    }

    /// Program id (what a host lookup of a prog_array slot returns).
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// Whether the verifier accepted it (it then runs without run-time checks);
    /// unverified programs run in checked mode.
    pub fn is_verified(&self) -> bool {
        self.inner.is_verified()
    }

    /// The verifier's log (summary line at the default log level).
    pub fn verifier_log(&self) -> &str {
        self.inner.verifier_log()
    }

    /// The instructions that run, after relocation and rewriting.
    pub fn insns(&self) -> &[Insn] {
        self.inner.insns()
    }

    /// Runs by program type: XDP and skb programs get `packet` as in Linux's
    /// test_run, raw programs a copy of it as r1/r2.
    pub fn run(&self, packet: &[u8]) -> Result<RunResult, Error> {
        Ok(match self.kind() {
            ProgKind::Xdp => self.inner.run_xdp(packet)?,
            ProgKind::Raw => {
                let mut data = packet.to_vec();
                let mut r = self.inner.run_raw(&mut data)?;
                r.packet = data;
                r
            }
            _ => self.inner.run_skb(packet)?,
        })
    }

    /// [`Program::run`] with Linux's `ctx_in` (`struct xdp_md` for XDP,
    /// `struct __sk_buff` for skb programs; see
    /// [`CompiledProgram::run_xdp_with`](cordon_runtime::CompiledProgram::run_xdp_with) and
    /// [`CompiledProgram::run_skb_with`](cordon_runtime::CompiledProgram::run_skb_with)
    /// for what may be set). `ctx_in` is ignored for raw programs.
    pub fn run_with(&self, packet: &[u8], ctx_in: Option<&[u8]>) -> Result<RunResult, Error> {
        Ok(match self.kind() {
            ProgKind::Xdp => self.inner.run_xdp_with(packet, ctx_in)?,
            ProgKind::Raw => return self.run(packet),
            _ => self.inner.run_skb_with(packet, ctx_in)?,
        })
    }

    /// Runs an XDP program (256 bytes headroom, ingress ifindex 1).
    pub fn run_xdp(&self, packet: &[u8]) -> Result<RunResult, Error> {
        Ok(self.inner.run_xdp(packet)?)
    }

    /// Lowest-overhead XDP run: `packet` is updated in place (resized when the
    /// program moved its head or tail); no allocation when its capacity
    /// suffices. Returns the full r0.
    pub fn run_xdp_in_place(&self, packet: &mut Vec<u8>) -> Result<u64, Error> {
        Ok(self.inner.run_xdp_in_place(packet)?)
    }

    /// Runs a tc or socket-filter program.
    pub fn run_skb(&self, packet: &[u8]) -> Result<RunResult, Error> {
        Ok(self.inner.run_skb(packet)?)
    }

    /// Runs with r1 = `data`, r2 = its length; `data` is modified in place.
    pub fn run_raw(&self, data: &mut [u8]) -> Result<RunResult, Error> {
        Ok(self.inner.run_raw(data)?)
    }

    /// Lowest-overhead call: explicit r1–r5, `input` as the accessible memory
    /// (and LD_ABS packet); no context, no allocation. Returns r0.
    ///
    /// Still a full invocation: helpers and kfuncs work (a host kfunc may call
    /// this or another program again on the same thread; its frames come from
    /// the same shadow stack), tail calls work, `bpf_trace_printk` output is
    /// discarded. Programs that reference maps pin the map epoch for the run;
    /// programs without maps skip it. Errors (a checked program's bad access,
    /// a stack exhausted by deep nesting) leave the thread's shadow stack as
    /// it was, so the next call works.
    #[inline]
    pub fn call(&self, args: [u64; 5], input: &mut [u8]) -> Result<u64, Error> {
        Ok(self.inner.call(args, input)?)
    }
}
