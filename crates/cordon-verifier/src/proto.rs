//! The one prototype registry for helpers and kfuncs, shared by the verifier
//! (argument and return checking) and the runtime (which binds the
//! implementations by the same ids and names).

use std::collections::HashMap;

/// Index of a host object type in [`Registry::obj_types`] (a "BTF id" for
/// objects handed out by kfuncs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjTypeId(pub u32);

/// A host object type programs may hold pointers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjType {
    pub name: String,
    /// Bytes the program may read through the pointer.
    pub size: u32,
    /// Whether the program may also write those bytes.
    pub writable: bool,
}

/// How one argument register is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    /// Unused argument slot.
    None,
    /// Any initialized value.
    Anything,
    /// `lddw` map pointer.
    ConstMapPtr,
    /// Pointer to `key_size` readable bytes of the map in the preceding `ConstMapPtr` arg.
    PtrToMapKey,
    /// Pointer to `value_size` readable bytes.
    PtrToMapValue,
    /// Pointer to `value_size` bytes the helper writes.
    PtrToUninitMapValue,
    /// Pointer to readable memory; the next arg is its size (`ConstSize*`).
    PtrToMem,
    /// Like `PtrToMem` but NULL (with a zero size) is allowed.
    PtrToMemOrNull,
    /// Pointer to memory the helper writes; the next arg is its size.
    PtrToUninitMem,
    /// Size of the preceding memory argument, bounded, non-zero.
    ConstSize,
    /// Size of the preceding memory argument, bounded, may be zero.
    ConstSizeOrZero,
    /// Allocation size that must be a known constant (ringbuf_reserve).
    ConstAllocSizeOrZero,
    /// The program's context, unmodified.
    PtrToCtx,
    /// A pointer to the stack.
    PtrToStack,
    /// A pointer to the stack or NULL.
    PtrToStackOrNull,
    /// A subprogram address (`lddw src=4`) used as a callback.
    CallbackFn,
    /// A map value pointer pointing at the map's `struct bpf_spin_lock`.
    PtrToSpinLock,
    /// A pointer to a host object of this type.
    PtrToBtfId(ObjTypeId),
    /// A referenced host object pointer, released by this call.
    ReleasePtrToBtfId(ObjTypeId),
    /// A ring buffer record from `ringbuf_reserve`, released by this call.
    ReleaseRingbufMem,
    /// Stack slot for a new `bpf_iter_num` (16 bytes, uninitialized).
    IterNumUninit,
    /// An initialized `bpf_iter_num` on the stack.
    IterNum,
}

impl ArgType {
    pub fn is_size(self) -> bool {
        matches!(
            self,
            ArgType::ConstSize | ArgType::ConstSizeOrZero | ArgType::ConstAllocSizeOrZero
        )
    }
}

/// What a call leaves in R0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetType {
    Integer,
    Void,
    /// Pointer to a value of the map passed as the `ConstMapPtr` argument, or NULL.
    PtrToMapValueOrNull,
    /// Pointer to memory whose size is the constant in argument `size_arg` (0-based), or NULL.
    PtrToMemOrNull {
        size_arg: u8,
    },
    /// Pointer to a host object, or NULL.
    PtrToBtfIdOrNull(ObjTypeId),
    /// Pointer to a host object, never NULL.
    PtrToBtfId(ObjTypeId),
    /// Read-only pointer to `size` bytes, or NULL (an iterator's `next`).
    PtrToRdonlyMemOrNull {
        size: u32,
    },
    /// The call never returns (`bpf_throw`).
    NoReturn,
}

/// Flags of a prototype (kfunc flags follow Linux's KF_* names).
pub mod flags {
    /// The call returns a reference that must be released.
    pub const ACQUIRE: u32 = 1 << 0;
    /// The call releases the reference passed in its release argument.
    pub const RELEASE: u32 = 1 << 1;
    /// The returned pointer may be NULL.
    pub const RET_NULL: u32 = 1 << 2;
    /// The call may sleep.
    pub const SLEEPABLE: u32 = 1 << 3;
    /// The call has effects outside the program (e.g. reboot-like operations).
    pub const DESTRUCTIVE: u32 = 1 << 4;
    /// Constructor of an open-coded iterator.
    pub const ITER_NEW: u32 = 1 << 5;
    /// `next` of an open-coded iterator.
    pub const ITER_NEXT: u32 = 1 << 6;
    /// Destructor of an open-coded iterator.
    pub const ITER_DESTROY: u32 = 1 << 7;
    /// The call may move or resize packet data: packet pointers are invalidated.
    pub const CHANGES_PKT_DATA: u32 = 1 << 8;
    /// The call throws (never returns normally).
    pub const THROW: u32 = 1 << 9;
    /// Helper calls a callback synchronously, possibly many times (bpf_loop).
    pub const CALLS_CALLBACK: u32 = 1 << 10;
    /// The call takes a spin lock / releases it.
    pub const SPIN_LOCK: u32 = 1 << 11;
    pub const SPIN_UNLOCK: u32 = 1 << 12;
    /// The call is `bpf_tail_call`.
    pub const TAIL_CALL: u32 = 1 << 13;
}

/// Which program types may call a helper.
pub mod progs {
    pub const SOCKET_FILTER: u32 = 1 << 0;
    pub const SCHED_CLS: u32 = 1 << 1;
    pub const XDP: u32 = 1 << 2;
    pub const GENERIC: u32 = 1 << 3;
    pub const SKB: u32 = SOCKET_FILTER | SCHED_CLS;
    pub const ALL: u32 = SOCKET_FILTER | SCHED_CLS | XDP | GENERIC;
}

/// Prototype of a helper (by Linux helper id) or kfunc (by registry id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelperProto {
    pub id: u32,
    pub name: String,
    pub args: [ArgType; 5],
    pub ret: RetType,
    pub flags: u32,
    /// Program types allowed to call it ([`progs`] bits).
    pub prog_types: u32,
}

impl HelperProto {
    pub fn new(id: u32, name: &str, args: &[ArgType], ret: RetType, flags: u32) -> HelperProto {
        let mut a = [ArgType::None; 5];
        for (i, t) in args.iter().take(5).enumerate() {
            a[i] = *t;
        }
        HelperProto {
            id,
            name: name.to_string(),
            args: a,
            ret,
            flags,
            prog_types: progs::ALL,
        }
    }
    pub fn only(mut self, prog_types: u32) -> Self {
        self.prog_types = prog_types;
        self
    }
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
    pub fn nargs(&self) -> usize {
        self.args
            .iter()
            .take_while(|a| **a != ArgType::None)
            .count()
    }
}

/// Kfunc prototypes use the same shape; ids are registry ids (the `imm` of
/// `call src=2` as resolved by the loader).
pub type KfuncProto = HelperProto;

/// Helper ids (Linux numbering).
pub mod helper {
    pub const GET_NUMA_NODE_ID: u32 = 42;
    pub const JIFFIES64: u32 = 118;
    pub const MAP_LOOKUP_PERCPU_ELEM: u32 = 195;
    pub const XDP_GET_BUFF_LEN: u32 = 188;
    pub const XDP_LOAD_BYTES: u32 = 189;
    pub const XDP_STORE_BYTES: u32 = 190;
    pub const SKB_PULL_DATA: u32 = 39;
    pub const CSUM_UPDATE: u32 = 40;
    pub const KTIME_GET_COARSE_NS: u32 = 160;
    pub const KTIME_GET_TAI_NS: u32 = 208;
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    pub const MAP_UPDATE_ELEM: u32 = 2;
    pub const MAP_DELETE_ELEM: u32 = 3;
    pub const PERF_EVENT_OUTPUT: u32 = 25;
    pub const KTIME_GET_NS: u32 = 5;
    pub const TRACE_PRINTK: u32 = 6;
    pub const GET_PRANDOM_U32: u32 = 7;
    pub const GET_SMP_PROCESSOR_ID: u32 = 8;
    pub const SKB_STORE_BYTES: u32 = 9;
    pub const L3_CSUM_REPLACE: u32 = 10;
    pub const L4_CSUM_REPLACE: u32 = 11;
    pub const TAIL_CALL: u32 = 12;
    pub const REDIRECT: u32 = 23;
    pub const SKB_LOAD_BYTES: u32 = 26;
    pub const CSUM_DIFF: u32 = 28;
    pub const XDP_ADJUST_HEAD: u32 = 44;
    pub const REDIRECT_MAP: u32 = 51;
    pub const XDP_ADJUST_META: u32 = 54;
    pub const XDP_ADJUST_TAIL: u32 = 65;
    pub const MAP_PUSH_ELEM: u32 = 87;
    pub const MAP_POP_ELEM: u32 = 88;
    pub const MAP_PEEK_ELEM: u32 = 89;
    pub const SPIN_LOCK: u32 = 93;
    pub const SPIN_UNLOCK: u32 = 94;
    pub const KTIME_GET_BOOT_NS: u32 = 125;
    pub const RINGBUF_OUTPUT: u32 = 130;
    pub const RINGBUF_RESERVE: u32 = 131;
    pub const RINGBUF_SUBMIT: u32 = 132;
    pub const RINGBUF_DISCARD: u32 = 133;
    pub const RINGBUF_QUERY: u32 = 134;
    pub const LOOP: u32 = 181;
    pub const FOR_EACH_MAP_ELEM: u32 = 164;
    pub const GET_CURRENT_PID_TGID: u32 = 14;
    pub const GET_CURRENT_UID_GID: u32 = 15;
    pub const GET_CURRENT_COMM: u32 = 16;
    pub const SKB_VLAN_PUSH: u32 = 18;
    pub const SKB_VLAN_POP: u32 = 19;
    pub const SKB_CHANGE_PROTO: u32 = 31;
    pub const SKB_CHANGE_TYPE: u32 = 32;
    pub const GET_HASH_RECALC: u32 = 34;
    pub const SET_HASH_INVALID: u32 = 41;
    pub const SET_HASH: u32 = 48;
    pub const SKB_CHANGE_TAIL: u32 = 38;
    pub const SKB_CHANGE_HEAD: u32 = 43;
    pub const GET_SOCKET_COOKIE: u32 = 46;
    pub const SKB_ADJUST_ROOM: u32 = 50;
    pub const SKB_LOAD_BYTES_RELATIVE: u32 = 68;
    pub const SKB_CGROUP_ID: u32 = 79;
    pub const SKB_ANCESTOR_CGROUP_ID: u32 = 83;
}

/// Linux map type ids of the XDP redirect maps.
pub mod redirect_maps {
    pub const DEVMAP: u32 = 14;
    pub const CPUMAP: u32 = 16;
    pub const XSKMAP: u32 = 17;
    pub const DEVMAP_HASH: u32 = 25;
}

/// Function side of Linux's `check_map_func_compatibility` for
/// `bpf_redirect_map`: only devmap, devmap_hash, cpumap and xskmap.
pub fn redirect_map_takes(map_type: u32) -> bool {
    use redirect_maps::*;
    matches!(map_type, DEVMAP | DEVMAP_HASH | CPUMAP | XSKMAP)
}

/// Map side of Linux's `check_map_func_compatibility` for the redirect maps:
/// programs may only `bpf_redirect_map` into a cpumap, and may also look up
/// (never update or delete) devmap, devmap_hash and xskmap entries. `true`
/// for other map types (their rules are the function side's).
pub fn map_allows_func(map_type: u32, func: u32) -> bool {
    use redirect_maps::*;
    match map_type {
        DEVMAP | DEVMAP_HASH | XSKMAP => {
            func == helper::REDIRECT_MAP || func == helper::MAP_LOOKUP_ELEM
        }
        CPUMAP => func == helper::REDIRECT_MAP,
        _ => true,
    }
}

/// Map types with a `map_for_each_callback` (`bpf_for_each_map_elem`): array,
/// hash, percpu_hash, percpu_array, lru_hash, lru_percpu_hash (Linux also has
/// the local-storage maps, which Cordon does not create).
pub fn map_has_for_each(map_type: u32) -> bool {
    matches!(map_type, 1 | 2 | 5 | 6 | 9 | 10)
}

/// Map types Linux always creates with `BPF_F_RDONLY_PROG`: devmap and
/// devmap_hash (`dev_map_init_map`: a lookup points straight at the entry).
pub fn map_forces_rdonly_prog(map_type: u32) -> bool {
    use redirect_maps::*;
    matches!(map_type, DEVMAP | DEVMAP_HASH)
}

/// Map types whose values programs may only read whatever the map flags say:
/// those of [`map_forces_rdonly_prog`] and xskmap (Linux returns a read-only
/// socket pointer; Cordon a read-only 4-byte socket id).
pub fn map_values_rdonly(map_type: u32) -> bool {
    map_forces_rdonly_prog(map_type) || map_type == redirect_maps::XSKMAP
}

/// Names of the built-in kfuncs.
pub mod kfunc {
    pub const ITER_NUM_NEW: &str = "bpf_iter_num_new";
    pub const ITER_NUM_NEXT: &str = "bpf_iter_num_next";
    pub const ITER_NUM_DESTROY: &str = "bpf_iter_num_destroy";
    pub const TEST_ACQUIRE: &str = "cordon_test_acquire";
    pub const TEST_RELEASE: &str = "cordon_test_release";
    pub const THROW: &str = "bpf_throw";
    /// Linux 6.18's `bpf_xdp_pull_data(struct xdp_md *, u32 len)` (XDP only).
    pub const XDP_PULL_DATA: &str = "bpf_xdp_pull_data";
    /// Name of the host object type `cordon_test_acquire` returns.
    pub const TEST_OBJ: &str = "cordon_test_obj";
}

/// The registry: helpers by Linux id, kfuncs by registry id (1-based, in
/// registration order), host object types by [`ObjTypeId`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    helpers: HashMap<u32, HelperProto>,
    kfuncs: Vec<KfuncProto>,
    obj_types: Vec<ObjType>,
}

/// Further helpers of `bpf_base_func_proto`, `xdp_func_proto` and
/// `tc_cls_act_func_proto` that cordon-runtime implements.
fn base_xdp_tc_protos(r: &mut Registry) {
    use ArgType::*;
    use helper as e;
    let p = HelperProto::new;
    r.add_helper(p(
        e::MAP_LOOKUP_PERCPU_ELEM,
        "map_lookup_percpu_elem",
        &[ConstMapPtr, PtrToMapKey, Anything],
        RetType::PtrToMapValueOrNull,
        flags::RET_NULL,
    ));
    r.add_helper(p(
        e::GET_NUMA_NODE_ID,
        "get_numa_node_id",
        &[],
        RetType::Integer,
        0,
    ));
    r.add_helper(p(e::JIFFIES64, "jiffies64", &[], RetType::Integer, 0));
    r.add_helper(
        p(
            e::XDP_LOAD_BYTES,
            "xdp_load_bytes",
            &[PtrToCtx, Anything, PtrToUninitMem, ConstSize],
            RetType::Integer,
            0,
        )
        .only(progs::XDP),
    );
    r.add_helper(
        p(
            e::XDP_STORE_BYTES,
            "xdp_store_bytes",
            &[PtrToCtx, Anything, PtrToMem, ConstSize],
            RetType::Integer,
            0,
        )
        .only(progs::XDP),
    );
    r.add_helper(p(
        e::KTIME_GET_COARSE_NS,
        "ktime_get_coarse_ns",
        &[],
        RetType::Integer,
        0,
    ));
    r.add_helper(p(
        e::KTIME_GET_TAI_NS,
        "ktime_get_tai_ns",
        &[],
        RetType::Integer,
        0,
    ));
    r.add_helper(
        p(
            e::SKB_PULL_DATA,
            "skb_pull_data",
            &[PtrToCtx, Anything],
            RetType::Integer,
            flags::CHANGES_PKT_DATA,
        )
        .only(progs::SCHED_CLS),
    );
    r.add_helper(
        p(
            e::CSUM_UPDATE,
            "csum_update",
            &[PtrToCtx, Anything],
            RetType::Integer,
            0,
        )
        .only(progs::SCHED_CLS),
    );
    r.add_helper(
        p(
            e::XDP_GET_BUFF_LEN,
            "xdp_get_buff_len",
            &[PtrToCtx],
            RetType::Integer,
            0,
        )
        .only(progs::XDP),
    );
}

/// Skb helpers of Linux's `tc_cls_act_func_proto` (`get_socket_cookie` and
/// `skb_load_bytes_relative` also `sk_filter_func_proto`) and the task
/// helpers of `bpf_base_func_proto` (implemented by cordon-runtime).
fn skb_and_task_protos(r: &mut Registry) {
    use ArgType::*;
    use flags::CHANGES_PKT_DATA;
    use helper as ids;
    let p = HelperProto::new;
    let tc = |id, name, args: &[ArgType], flags| {
        p(id, name, args, RetType::Integer, flags).only(progs::SCHED_CLS)
    };
    r.add_helper(tc(
        ids::SKB_VLAN_PUSH,
        "skb_vlan_push",
        &[PtrToCtx, Anything, Anything],
        CHANGES_PKT_DATA,
    ));
    r.add_helper(tc(
        ids::SKB_VLAN_POP,
        "skb_vlan_pop",
        &[PtrToCtx],
        CHANGES_PKT_DATA,
    ));
    r.add_helper(tc(ids::GET_HASH_RECALC, "get_hash_recalc", &[PtrToCtx], 0));
    r.add_helper(tc(
        ids::SET_HASH_INVALID,
        "set_hash_invalid",
        &[PtrToCtx],
        0,
    ));
    r.add_helper(tc(ids::SET_HASH, "set_hash", &[PtrToCtx, Anything], 0));
    r.add_helper(tc(
        ids::SKB_CHANGE_TAIL,
        "skb_change_tail",
        &[PtrToCtx, Anything, Anything],
        CHANGES_PKT_DATA,
    ));
    r.add_helper(tc(
        ids::SKB_CHANGE_HEAD,
        "skb_change_head",
        &[PtrToCtx, Anything, Anything],
        CHANGES_PKT_DATA,
    ));
    r.add_helper(tc(
        ids::SKB_ADJUST_ROOM,
        "skb_adjust_room",
        &[PtrToCtx, Anything, Anything, Anything],
        CHANGES_PKT_DATA,
    ));
    r.add_helper(tc(
        ids::SKB_CHANGE_PROTO,
        "skb_change_proto",
        &[PtrToCtx, Anything, Anything],
        CHANGES_PKT_DATA,
    ));
    r.add_helper(tc(ids::SKB_CGROUP_ID, "skb_cgroup_id", &[PtrToCtx], 0));
    r.add_helper(tc(
        ids::SKB_ANCESTOR_CGROUP_ID,
        "skb_ancestor_cgroup_id",
        &[PtrToCtx, Anything],
        0,
    ));
    r.add_helper(tc(
        ids::SKB_CHANGE_TYPE,
        "skb_change_type",
        &[PtrToCtx, Anything],
        0,
    ));
    r.add_helper(
        p(
            ids::SKB_LOAD_BYTES_RELATIVE,
            "skb_load_bytes_relative",
            &[PtrToCtx, Anything, PtrToUninitMem, ConstSize, Anything],
            RetType::Integer,
            0,
        )
        .only(progs::SKB),
    );
    // bpf_base_func_proto (privileged programs of every type).
    r.add_helper(p(
        ids::GET_CURRENT_PID_TGID,
        "get_current_pid_tgid",
        &[],
        RetType::Integer,
        0,
    ));
    r.add_helper(p(
        ids::GET_CURRENT_UID_GID,
        "get_current_uid_gid",
        &[],
        RetType::Integer,
        0,
    ));
    r.add_helper(p(
        ids::GET_CURRENT_COMM,
        "get_current_comm",
        &[PtrToUninitMem, ConstSize],
        RetType::Integer,
        0,
    ));
    r.add_helper(
        p(
            ids::GET_SOCKET_COOKIE,
            "get_socket_cookie",
            &[PtrToCtx],
            RetType::Integer,
            0,
        )
        .only(progs::SKB),
    );
}

impl Registry {
    pub fn empty() -> Registry {
        Registry::default()
    }

    /// The helpers and kfuncs Cordon supports out of the box.
    pub fn linux() -> Registry {
        use ArgType::*;
        use RetType::*;
        use flags::*;
        use helper as h;
        let mut r = Registry::empty();
        let p = HelperProto::new;
        r.add_helper(p(
            h::MAP_LOOKUP_ELEM,
            "map_lookup_elem",
            &[ConstMapPtr, PtrToMapKey],
            PtrToMapValueOrNull,
            RET_NULL,
        ));
        r.add_helper(p(
            h::MAP_UPDATE_ELEM,
            "map_update_elem",
            &[ConstMapPtr, PtrToMapKey, PtrToMapValue, Anything],
            Integer,
            0,
        ));
        r.add_helper(p(
            h::MAP_DELETE_ELEM,
            "map_delete_elem",
            &[ConstMapPtr, PtrToMapKey],
            Integer,
            0,
        ));
        r.add_helper(p(
            h::MAP_PUSH_ELEM,
            "map_push_elem",
            &[ConstMapPtr, PtrToMapValue, Anything],
            Integer,
            0,
        ));
        r.add_helper(p(
            h::MAP_POP_ELEM,
            "map_pop_elem",
            &[ConstMapPtr, PtrToUninitMapValue],
            Integer,
            0,
        ));
        r.add_helper(p(
            h::MAP_PEEK_ELEM,
            "map_peek_elem",
            &[ConstMapPtr, PtrToUninitMapValue],
            Integer,
            0,
        ));
        r.add_helper(p(
            h::PERF_EVENT_OUTPUT,
            "perf_event_output",
            &[PtrToCtx, ConstMapPtr, Anything, PtrToMem, ConstSizeOrZero],
            Integer,
            0,
        ));
        r.add_helper(p(h::KTIME_GET_NS, "ktime_get_ns", &[], Integer, 0));
        r.add_helper(p(
            h::KTIME_GET_BOOT_NS,
            "ktime_get_boot_ns",
            &[],
            Integer,
            0,
        ));
        r.add_helper(p(h::GET_PRANDOM_U32, "get_prandom_u32", &[], Integer, 0));
        r.add_helper(p(
            h::GET_SMP_PROCESSOR_ID,
            "get_smp_processor_id",
            &[],
            Integer,
            0,
        ));
        r.add_helper(p(
            h::TRACE_PRINTK,
            "trace_printk",
            &[PtrToMem, ConstSize],
            Integer,
            0,
        ));
        r.add_helper(p(
            h::TAIL_CALL,
            "tail_call",
            &[PtrToCtx, ConstMapPtr, Anything],
            Void,
            TAIL_CALL,
        ));
        r.add_helper(p(
            h::LOOP,
            "loop",
            &[Anything, CallbackFn, PtrToStackOrNull, Anything],
            Integer,
            CALLS_CALLBACK,
        ));
        r.add_helper(p(
            h::FOR_EACH_MAP_ELEM,
            "for_each_map_elem",
            &[ConstMapPtr, CallbackFn, PtrToStackOrNull, Anything],
            Integer,
            CALLS_CALLBACK,
        ));
        r.add_helper(p(
            h::RINGBUF_OUTPUT,
            "ringbuf_output",
            &[ConstMapPtr, PtrToMem, ConstSizeOrZero, Anything],
            Integer,
            0,
        ));
        r.add_helper(p(
            h::RINGBUF_RESERVE,
            "ringbuf_reserve",
            &[ConstMapPtr, ConstAllocSizeOrZero, Anything],
            RetType::PtrToMemOrNull { size_arg: 1 },
            ACQUIRE | RET_NULL,
        ));
        r.add_helper(p(
            h::RINGBUF_SUBMIT,
            "ringbuf_submit",
            &[ReleaseRingbufMem, Anything],
            Void,
            RELEASE,
        ));
        r.add_helper(p(
            h::RINGBUF_DISCARD,
            "ringbuf_discard",
            &[ReleaseRingbufMem, Anything],
            Void,
            RELEASE,
        ));
        r.add_helper(p(
            h::RINGBUF_QUERY,
            "ringbuf_query",
            &[ConstMapPtr, Anything],
            Integer,
            0,
        ));
        r.add_helper(p(
            h::SPIN_LOCK,
            "spin_lock",
            &[PtrToSpinLock],
            Void,
            SPIN_LOCK,
        ));
        r.add_helper(p(
            h::SPIN_UNLOCK,
            "spin_unlock",
            &[PtrToSpinLock],
            Void,
            SPIN_UNLOCK,
        ));
        r.add_helper(
            p(
                h::XDP_ADJUST_HEAD,
                "xdp_adjust_head",
                &[PtrToCtx, Anything],
                Integer,
                CHANGES_PKT_DATA,
            )
            .only(progs::XDP),
        );
        r.add_helper(
            p(
                h::XDP_ADJUST_TAIL,
                "xdp_adjust_tail",
                &[PtrToCtx, Anything],
                Integer,
                CHANGES_PKT_DATA,
            )
            .only(progs::XDP),
        );
        r.add_helper(
            p(
                h::XDP_ADJUST_META,
                "xdp_adjust_meta",
                &[PtrToCtx, Anything],
                Integer,
                CHANGES_PKT_DATA,
            )
            .only(progs::XDP),
        );
        r.add_helper(
            p(
                h::SKB_LOAD_BYTES,
                "skb_load_bytes",
                &[PtrToCtx, Anything, PtrToUninitMem, ConstSize],
                Integer,
                0,
            )
            .only(progs::SKB),
        );
        r.add_helper(
            p(
                h::SKB_STORE_BYTES,
                "skb_store_bytes",
                &[PtrToCtx, Anything, PtrToMem, ConstSize, Anything],
                Integer,
                CHANGES_PKT_DATA,
            )
            .only(progs::SCHED_CLS),
        );
        r.add_helper(
            p(
                h::CSUM_DIFF,
                "csum_diff",
                &[
                    PtrToMemOrNull,
                    ConstSizeOrZero,
                    PtrToMemOrNull,
                    ConstSizeOrZero,
                    Anything,
                ],
                Integer,
                0,
            )
            .only(progs::SCHED_CLS | progs::XDP),
        );
        r.add_helper(
            p(
                h::L3_CSUM_REPLACE,
                "l3_csum_replace",
                &[PtrToCtx, Anything, Anything, Anything, Anything],
                Integer,
                CHANGES_PKT_DATA,
            )
            .only(progs::SCHED_CLS),
        );
        r.add_helper(
            p(
                h::L4_CSUM_REPLACE,
                "l4_csum_replace",
                &[PtrToCtx, Anything, Anything, Anything, Anything],
                Integer,
                CHANGES_PKT_DATA,
            )
            .only(progs::SCHED_CLS),
        );
        r.add_helper(
            p(h::REDIRECT, "redirect", &[Anything, Anything], Integer, 0)
                .only(progs::SCHED_CLS | progs::XDP),
        );
        r.add_helper(
            p(
                h::REDIRECT_MAP,
                "redirect_map",
                &[ConstMapPtr, Anything, Anything],
                Integer,
                0,
            )
            .only(progs::XDP),
        );
        skb_and_task_protos(&mut r);
        base_xdp_tc_protos(&mut r);

        let obj = r.add_obj_type(ObjType {
            name: kfunc::TEST_OBJ.to_string(),
            size: 16,
            writable: false,
        });
        r.add_kfunc(
            kfunc::ITER_NUM_NEW,
            &[IterNumUninit, Anything, Anything],
            Integer,
            ITER_NEW,
        );
        r.add_kfunc(
            kfunc::ITER_NUM_NEXT,
            &[IterNum],
            PtrToRdonlyMemOrNull { size: 4 },
            ITER_NEXT | RET_NULL,
        );
        r.add_kfunc(kfunc::ITER_NUM_DESTROY, &[IterNum], Void, ITER_DESTROY);
        r.add_kfunc(
            kfunc::TEST_ACQUIRE,
            &[Anything],
            PtrToBtfIdOrNull(obj),
            ACQUIRE | RET_NULL,
        );
        r.add_kfunc(
            kfunc::TEST_RELEASE,
            &[ReleasePtrToBtfId(obj)],
            Void,
            RELEASE,
        );
        r.add_kfunc(kfunc::THROW, &[Anything], NoReturn, THROW);
        r.add_kfunc_for(
            kfunc::XDP_PULL_DATA,
            &[PtrToCtx, Anything],
            Integer,
            CHANGES_PKT_DATA,
            progs::XDP,
        );
        r
    }

    pub fn add_helper(&mut self, p: HelperProto) {
        self.helpers.insert(p.id, p);
    }

    /// Register a kfunc; returns its id (what `call src=2` carries in `imm`).
    pub fn add_kfunc(&mut self, name: &str, args: &[ArgType], ret: RetType, flags: u32) -> u32 {
        let id = self.kfuncs.len() as u32 + 1;
        self.kfuncs
            .push(HelperProto::new(id, name, args, ret, flags));
        id
    }

    /// Like [`Registry::add_kfunc`], for a kfunc only the program types in
    /// `prog_types` (a [`progs`] mask) may call, as Linux registers kfunc
    /// sets per program type; other programs are refused at load.
    pub fn add_kfunc_for(
        &mut self,
        name: &str,
        args: &[ArgType],
        ret: RetType,
        flags: u32,
        prog_types: u32,
    ) -> u32 {
        let id = self.kfuncs.len() as u32 + 1;
        self.kfuncs
            .push(HelperProto::new(id, name, args, ret, flags).only(prog_types));
        id
    }

    pub fn add_obj_type(&mut self, t: ObjType) -> ObjTypeId {
        self.obj_types.push(t);
        ObjTypeId(self.obj_types.len() as u32 - 1)
    }

    pub fn helper(&self, id: u32) -> Option<&HelperProto> {
        self.helpers.get(&id)
    }

    pub fn helpers(&self) -> impl Iterator<Item = &HelperProto> {
        self.helpers.values()
    }

    pub fn kfunc(&self, id: u32) -> Option<&KfuncProto> {
        id.checked_sub(1).and_then(|i| self.kfuncs.get(i as usize))
    }

    pub fn kfunc_id(&self, name: &str) -> Option<u32> {
        self.kfuncs.iter().find(|k| k.name == name).map(|k| k.id)
    }

    pub fn kfuncs(&self) -> &[KfuncProto] {
        &self.kfuncs
    }

    pub fn obj_type(&self, id: ObjTypeId) -> Option<&ObjType> {
        self.obj_types.get(id.0 as usize)
    }

    pub fn obj_types(&self) -> &[ObjType] {
        &self.obj_types
    }
}
