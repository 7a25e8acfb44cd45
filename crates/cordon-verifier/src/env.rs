//! Everything the verifier needs to know besides the bytecode.

use crate::proto::Registry;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Who loads the program. Privileged matches Linux with CAP_BPF + CAP_PERFMON
/// (+ CAP_NET_ADMIN); unprivileged matches an unprivileged socket filter load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Profile {
    #[default]
    Privileged,
    Unprivileged,
}

/// Program type: decides the context layout, which helpers may be called and
/// whether direct packet access exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgType {
    /// `struct __sk_buff`, socket filter rules (cb[] writable, no direct packet access).
    SocketFilter,
    /// `struct __sk_buff`, tc classifier rules (direct packet access, some fields writable).
    SchedCls,
    /// `struct __sk_buff`, tc action rules (same context rules as [`ProgType::SchedCls`]).
    SchedAct,
    /// `struct xdp_md`.
    Xdp,
    /// A Cordon embedding: the context is `ctx_size` bytes of plain memory.
    Generic { ctx_size: u32, ctx_writable: bool },
}

impl Profile {
    /// `"privileged"` or `"unprivileged"` (what a CLI's `--profile` takes).
    pub fn from_name(name: &str) -> Option<Profile> {
        match name {
            "privileged" | "priv" => Some(Profile::Privileged),
            "unprivileged" | "unpriv" => Some(Profile::Unprivileged),
            _ => None,
        }
    }
}

impl ProgType {
    /// From Linux's `enum bpf_prog_type` number (1 socket filter, 3 tc
    /// classifier, 4 tc action, 6 XDP); `None` for types Cordon does not verify.
    pub fn from_linux(id: u32) -> Option<ProgType> {
        Some(match id {
            1 => ProgType::SocketFilter,
            3 => ProgType::SchedCls,
            4 => ProgType::SchedAct,
            6 => ProgType::Xdp,
            _ => return None,
        })
    }

    /// From the names Cordon and Linux use (`xdp`, `socket_filter`,
    /// `sched_cls`/`tc`/`classifier`, `sched_act`/`action`).
    pub fn from_name(name: &str) -> Option<ProgType> {
        Some(match name {
            "xdp" => ProgType::Xdp,
            "socket_filter" | "socket" => ProgType::SocketFilter,
            "sched_cls" | "tc" | "classifier" => ProgType::SchedCls,
            "sched_act" | "action" => ProgType::SchedAct,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ProgType::SocketFilter => "socket_filter",
            ProgType::SchedCls => "sched_cls",
            ProgType::SchedAct => "sched_act",
            ProgType::Xdp => "xdp",
            ProgType::Generic { .. } => "generic",
        }
    }
    pub(crate) fn is_skb(self) -> bool {
        matches!(
            self,
            ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct
        )
    }
}

/// Map types the verifier distinguishes (numbering follows Linux's `enum bpf_map_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapType {
    Hash,
    Array,
    ProgArray,
    PercpuHash,
    PercpuArray,
    LruHash,
    LruPercpuHash,
    DevMap,
    CpuMap,
    XskMap,
    Queue,
    Stack,
    RingBuf,
    PerfEventArray,
    LpmTrie,
    ArrayOfMaps,
    HashOfMaps,
    BloomFilter,
    /// Any other Linux map type number (treated like a hash map for lookups).
    Other(u32),
}

impl MapType {
    pub fn from_linux(t: u32) -> MapType {
        match t {
            1 => MapType::Hash,
            2 => MapType::Array,
            3 => MapType::ProgArray,
            5 => MapType::PercpuHash,
            6 => MapType::PercpuArray,
            9 => MapType::LruHash,
            10 => MapType::LruPercpuHash,
            14 => MapType::DevMap,
            16 => MapType::CpuMap,
            17 => MapType::XskMap,
            22 => MapType::Queue,
            23 => MapType::Stack,
            27 => MapType::RingBuf,
            4 => MapType::PerfEventArray,
            11 => MapType::LpmTrie,
            12 => MapType::ArrayOfMaps,
            13 => MapType::HashOfMaps,
            30 => MapType::BloomFilter,
            other => MapType::Other(other),
        }
    }
    pub fn linux_id(self) -> u32 {
        match self {
            MapType::Hash => 1,
            MapType::Array => 2,
            MapType::ProgArray => 3,
            MapType::PercpuHash => 5,
            MapType::PercpuArray => 6,
            MapType::LruHash => 9,
            MapType::LruPercpuHash => 10,
            MapType::DevMap => 14,
            MapType::CpuMap => 16,
            MapType::XskMap => 17,
            MapType::Queue => 22,
            MapType::Stack => 23,
            MapType::RingBuf => 27,
            MapType::PerfEventArray => 4,
            MapType::LpmTrie => 11,
            MapType::ArrayOfMaps => 12,
            MapType::HashOfMaps => 13,
            MapType::BloomFilter => 30,
            MapType::Other(n) => n,
        }
    }
    /// Array-like maps whose lookups never fail for in-range keys but are still
    /// `_or_null` to the verifier, and whose values are directly addressable.
    pub fn is_array(self) -> bool {
        matches!(self, MapType::Array | MapType::PercpuArray)
    }
}

/// Metadata of one map, by map index (the `imm` of `lddw src=5/6`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapInfo {
    pub name: String,
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// Offset of a `struct bpf_spin_lock` inside the value, if it has one.
    pub spin_lock_off: Option<u32>,
    /// The program may not write map values (BPF_F_RDONLY_PROG / frozen).
    pub rdonly_prog: bool,
    /// Maps of maps: index (in [`VerifyEnv::maps`]) of the inner map
    /// prototype; lookups return a pointer to a map like it.
    pub inner_map: Option<u32>,
}

impl MapInfo {
    pub fn new(
        name: &str,
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Self {
        MapInfo {
            name: name.to_string(),
            map_type,
            key_size,
            value_size,
            max_entries,
            spin_lock_off: None,
            rdonly_prog: false,
            inner_map: None,
        }
    }
}

/// One argument of a global function, from its BTF `func_proto`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// Any integer (or enum) argument.
    Scalar,
    /// The program context.
    PtrToCtx,
    /// A pointer to `size` bytes of readable and writable memory (BTF pointer
    /// to a sized type). Linux treats such arguments as maybe-NULL unless
    /// the BTF tags them `arg:nonnull` (`__arg_nonnull`): set `nullable`
    /// to `true` unless that tag is present.
    PtrToMem { size: u32, nullable: bool },
}

/// What a global function returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GlobalRet {
    #[default]
    Scalar,
    Void,
}

/// Signature of a global (non-static) function, filled by the integrator from
/// BTF. Global functions are verified once, on their own, from this signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalFuncSig {
    pub name: String,
    pub args: Vec<ArgKind>,
    pub ret: GlobalRet,
}

/// One line-info record (BTF `bpf_line_info` resolved to text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInfo {
    pub insn: usize,
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub source: String,
}

/// Numeric limits (Linux's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Stack bytes per frame and along any call chain (MAX_BPF_STACK).
    pub max_stack: u32,
    /// Maximum call frames (MAX_CALL_FRAMES).
    pub max_call_frames: usize,
    /// A subprogram with a tail call may not be reached with this much caller stack.
    pub tail_call_stack: u32,
    /// Instruction visits before giving up (BPF_COMPLEXITY_LIMIT_INSNS).
    pub max_insn_processed: u64,
    /// Pending branches before giving up (BPF_COMPLEXITY_LIMIT_JMP_SEQ).
    pub max_jmp_seq: usize,
    /// Rounding of per-frame stack depth when combining frames (16 with a JIT).
    pub stack_round: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stack: 512,
            max_call_frames: 8,
            tail_call_stack: 256,
            max_insn_processed: 1_000_000,
            max_jmp_seq: 8192,
            stack_round: 16,
        }
    }
}

/// Why [`VerifyEnv::from_parts`] refused its inputs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    #[error(
        "program type {0} is not supported by Cordon's verifier (supported: 1 socket_filter, 3 sched_cls, 4 sched_act, 6 xdp)"
    )]
    UnsupportedProgType(u32),
    #[error("unknown profile {0:?} (expected \"privileged\" or \"unprivileged\")")]
    UnknownProfile(String),
    #[error("log level {0} is invalid (bits 1 = failing path, 2 = everything, 4 = statistics)")]
    BadLogLevel(u32),
    #[error("map {map}: inner map index {inner} is out of range")]
    BadInnerMap { map: usize, inner: u32 },
}

/// Everything about the load besides the bytecode.
#[derive(Clone, Debug)]
pub struct VerifyEnv {
    pub prog_type: ProgType,
    pub profile: Profile,
    /// Map metadata by map index.
    pub maps: Vec<MapInfo>,
    /// Helper and kfunc prototypes (shared with the runtime).
    pub registry: Arc<Registry>,
    /// Global functions by the instruction index where they start.
    pub global_funcs: BTreeMap<usize, GlobalFuncSig>,
    /// Optional line info, sorted or not.
    pub line_info: Vec<LineInfo>,
    pub limits: Limits,
    /// Linux's log level bits: 1 = the failing path, 2 = every instruction's
    /// state, 4 = statistics (verification time, stack depths). 0 = no log.
    pub log_level: u32,
    /// BPF_F_STRICT_ALIGNMENT: also enforce alignment on packet and map accesses.
    pub strict_alignment: bool,
    /// Cordon extension: accept `bpf_throw` while references or locks are held
    /// (they are released while unwinding). Linux rejects this.
    pub throw_releases_resources: bool,
    /// The program is sleepable (may call SLEEPABLE kfuncs).
    pub sleepable: bool,
    /// First instruction of the exception callback named by the main
    /// program's `exception_callback:<fn>` BTF decl tag: verified on its own
    /// with one scalar argument, must return a scalar, cannot be called.
    pub exception_callback: Option<usize>,
}

impl VerifyEnv {
    pub fn new(prog_type: ProgType) -> VerifyEnv {
        VerifyEnv {
            prog_type,
            profile: Profile::Privileged,
            maps: Vec::new(),
            registry: Arc::new(Registry::linux()),
            global_funcs: BTreeMap::new(),
            line_info: Vec::new(),
            limits: Limits::default(),
            log_level: 0,
            strict_alignment: false,
            throw_releases_resources: true,
            sleepable: false,
            exception_callback: None,
        }
    }
    pub fn with_profile(mut self, p: Profile) -> Self {
        self.profile = p;
        self
    }
    pub fn with_maps(mut self, maps: Vec<MapInfo>) -> Self {
        self.maps = maps;
        self
    }
    pub fn with_log_level(mut self, level: u32) -> Self {
        self.log_level = level;
        self
    }
    pub fn with_global(mut self, insn: usize, sig: GlobalFuncSig) -> Self {
        self.global_funcs.insert(insn, sig);
        self
    }
    pub fn with_line_info(mut self, line_info: Vec<LineInfo>) -> Self {
        self.line_info = line_info;
        self
    }
    pub fn with_exception_callback(mut self, insn: Option<usize>) -> Self {
        self.exception_callback = insn;
        self
    }

    /// Build an environment from the simple inputs a command line has:
    /// Linux's program type number (e.g. an object's section type), a
    /// profile name (`privileged` / `unprivileged`), a Linux log level (bits
    /// 1, 2, 4) and the maps by index. Add line info, global function
    /// signatures and the exception callback with the `with_*` builders.
    ///
    /// ```
    /// use cordon_verifier::{MapInfo, MapType, VerifyEnv};
    /// let env = VerifyEnv::from_parts(6, "unprivileged", 1, vec![
    ///     MapInfo::new("counters", MapType::Array, 4, 8, 16),
    /// ]).unwrap();
    /// assert_eq!(env.prog_type, cordon_verifier::ProgType::Xdp);
    /// assert!(VerifyEnv::from_parts(6, "root", 1, vec![]).is_err());
    /// ```
    pub fn from_parts(
        linux_prog_type: u32,
        profile: &str,
        log_level: u32,
        maps: Vec<MapInfo>,
    ) -> Result<VerifyEnv, EnvError> {
        let t = ProgType::from_linux(linux_prog_type)
            .ok_or(EnvError::UnsupportedProgType(linux_prog_type))?;
        let p =
            Profile::from_name(profile).ok_or_else(|| EnvError::UnknownProfile(profile.into()))?;
        if log_level > 7 {
            return Err(EnvError::BadLogLevel(log_level));
        }
        for (i, m) in maps.iter().enumerate() {
            if let Some(inner) = m.inner_map
                && inner as usize >= maps.len()
            {
                return Err(EnvError::BadInnerMap { map: i, inner });
            }
        }
        Ok(VerifyEnv::new(t)
            .with_profile(p)
            .with_log_level(log_level)
            .with_maps(maps))
    }
    /// 0 (none), 1 (failing path) or 2 (everything).
    pub(crate) fn verbosity(&self) -> u32 {
        if self.log_level & 2 != 0 {
            2
        } else {
            self.log_level & 1
        }
    }
    pub(crate) fn privileged(&self) -> bool {
        self.profile == Profile::Privileged
    }
}
