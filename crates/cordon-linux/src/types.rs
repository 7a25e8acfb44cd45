//! Program, map and attach type numbers (`enum bpf_prog_type`,
//! `enum bpf_map_type`, `enum bpf_attach_type`), as open newtypes so any
//! value the kernel knows can be passed.

use std::fmt;

macro_rules! uapi_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $c:ident = $v:expr),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub u32);

        impl $name {
            $($(#[$vm])* pub const $c: $name = $name($v);)*

            /// The UAPI name without its prefix (`XDP`, `PERCPU_ARRAY`), if known.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($v => Some(stringify!($c)),)*
                    _ => None,
                }
            }

            /// Look a value up by its UAPI name without prefix, case-insensitively.
            pub fn from_name(name: &str) -> Option<$name> {
                $(if name.eq_ignore_ascii_case(stringify!($c)) { return Some($name($v)); })*
                None
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => write!(f, "{}::{}", stringify!($name), n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}", self.0),
                }
            }
        }
    };
}

uapi_enum! {
    /// `enum bpf_prog_type`.
    ProgType {
        UNSPEC = 0,
        SOCKET_FILTER = 1,
        KPROBE = 2,
        SCHED_CLS = 3,
        SCHED_ACT = 4,
        TRACEPOINT = 5,
        XDP = 6,
        PERF_EVENT = 7,
        CGROUP_SKB = 8,
        CGROUP_SOCK = 9,
        LWT_IN = 10,
        LWT_OUT = 11,
        LWT_XMIT = 12,
        SOCK_OPS = 13,
        SK_SKB = 14,
        CGROUP_DEVICE = 15,
        SK_MSG = 16,
        RAW_TRACEPOINT = 17,
        CGROUP_SOCK_ADDR = 18,
        LWT_SEG6LOCAL = 19,
        LIRC_MODE2 = 20,
        SK_REUSEPORT = 21,
        FLOW_DISSECTOR = 22,
        CGROUP_SYSCTL = 23,
        RAW_TRACEPOINT_WRITABLE = 24,
        CGROUP_SOCKOPT = 25,
        TRACING = 26,
        STRUCT_OPS = 27,
        EXT = 28,
        LSM = 29,
        SK_LOOKUP = 30,
        SYSCALL = 31,
        NETFILTER = 32,
    }
}

uapi_enum! {
    /// `enum bpf_map_type`.
    MapType {
        UNSPEC = 0,
        HASH = 1,
        ARRAY = 2,
        PROG_ARRAY = 3,
        PERF_EVENT_ARRAY = 4,
        PERCPU_HASH = 5,
        PERCPU_ARRAY = 6,
        STACK_TRACE = 7,
        CGROUP_ARRAY = 8,
        LRU_HASH = 9,
        LRU_PERCPU_HASH = 10,
        LPM_TRIE = 11,
        ARRAY_OF_MAPS = 12,
        HASH_OF_MAPS = 13,
        DEVMAP = 14,
        SOCKMAP = 15,
        CPUMAP = 16,
        XSKMAP = 17,
        SOCKHASH = 18,
        CGROUP_STORAGE = 19,
        REUSEPORT_SOCKARRAY = 20,
        PERCPU_CGROUP_STORAGE = 21,
        QUEUE = 22,
        STACK = 23,
        SK_STORAGE = 24,
        DEVMAP_HASH = 25,
        STRUCT_OPS = 26,
        RINGBUF = 27,
        INODE_STORAGE = 28,
        TASK_STORAGE = 29,
        BLOOM_FILTER = 30,
        USER_RINGBUF = 31,
        CGRP_STORAGE = 32,
        ARENA = 33,
    }
}

impl MapType {
    /// Per-CPU maps: a syscall lookup returns one value per possible CPU,
    /// each rounded up to 8 bytes.
    pub fn is_per_cpu(self) -> bool {
        matches!(
            self,
            MapType::PERCPU_HASH
                | MapType::PERCPU_ARRAY
                | MapType::LRU_PERCPU_HASH
                | MapType::PERCPU_CGROUP_STORAGE
        )
    }
}

uapi_enum! {
    /// `enum bpf_attach_type` (the values most tests need; any other can be
    /// written as `AttachType(n)`).
    AttachType {
        CGROUP_INET_INGRESS = 0,
        CGROUP_INET_EGRESS = 1,
        CGROUP_INET_SOCK_CREATE = 2,
        CGROUP_SOCK_OPS = 3,
        SK_SKB_STREAM_PARSER = 4,
        SK_SKB_STREAM_VERDICT = 5,
        CGROUP_DEVICE = 6,
        SK_MSG_VERDICT = 7,
        CGROUP_INET4_BIND = 8,
        CGROUP_INET6_BIND = 9,
        CGROUP_INET4_CONNECT = 10,
        CGROUP_INET6_CONNECT = 11,
        CGROUP_INET4_POST_BIND = 12,
        CGROUP_INET6_POST_BIND = 13,
        CGROUP_UDP4_SENDMSG = 14,
        CGROUP_UDP6_SENDMSG = 15,
        LIRC_MODE2 = 16,
        FLOW_DISSECTOR = 17,
        CGROUP_SYSCTL = 18,
        CGROUP_UDP4_RECVMSG = 19,
        CGROUP_UDP6_RECVMSG = 20,
        CGROUP_GETSOCKOPT = 21,
        CGROUP_SETSOCKOPT = 22,
        TRACE_RAW_TP = 23,
        TRACE_FENTRY = 24,
        TRACE_FEXIT = 25,
        MODIFY_RETURN = 26,
        LSM_MAC = 27,
        TRACE_ITER = 28,
        CGROUP_INET4_GETPEERNAME = 29,
        CGROUP_INET6_GETPEERNAME = 30,
        CGROUP_INET4_GETSOCKNAME = 31,
        CGROUP_INET6_GETSOCKNAME = 32,
        XDP_DEVMAP = 33,
        CGROUP_INET_SOCK_RELEASE = 34,
        XDP_CPUMAP = 35,
        SK_LOOKUP = 36,
        XDP = 37,
        SK_SKB_VERDICT = 38,
        SK_REUSEPORT_SELECT = 39,
        SK_REUSEPORT_SELECT_OR_MIGRATE = 40,
        PERF_EVENT = 41,
        TRACE_KPROBE_MULTI = 42,
        LSM_CGROUP = 43,
        STRUCT_OPS = 44,
        NETFILTER = 45,
        TCX_INGRESS = 46,
        TCX_EGRESS = 47,
    }
}

/// `lddw` pseudo sources (`src` of the first slot).
pub mod pseudo {
    /// `imm` is a map file descriptor.
    pub const MAP_FD: u8 = 1;
    /// `imm` is a map fd, second `imm` an offset into its value.
    pub const MAP_VALUE: u8 = 2;
    /// `imm` is a kernel BTF id.
    pub const BTF_ID: u8 = 3;
    /// `imm` is a pc-relative subprogram offset.
    pub const FUNC: u8 = 4;
    /// `imm` is an index into `fd_array`.
    pub const MAP_IDX: u8 = 5;
    /// `imm` is an index into `fd_array`, second `imm` an offset into its value.
    pub const MAP_IDX_VALUE: u8 = 6;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(ProgType::XDP.name(), Some("XDP"));
        assert_eq!(ProgType::from_name("sched_cls"), Some(ProgType::SCHED_CLS));
        assert_eq!(format!("{:?}", MapType(999)), "MapType(999)");
        assert_eq!(
            MapType::from_name("percpu_array"),
            Some(MapType::PERCPU_ARRAY)
        );
        assert!(MapType::LRU_PERCPU_HASH.is_per_cpu());
        assert!(!MapType::ARRAY.is_per_cpu());
    }
}
