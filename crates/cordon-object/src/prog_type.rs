//! Program type from the ELF section name (libbpf's `SEC()` conventions).

/// `enum bpf_prog_type`, as far as a section name can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgType {
    /// Unknown section name (`raw`/other): the embedder decides.
    Unspec,
    SocketFilter,
    Kprobe,
    SchedCls,
    SchedAct,
    Tracepoint,
    Xdp,
    PerfEvent,
    CgroupSkb,
    CgroupSock,
    LwtIn,
    LwtOut,
    LwtXmit,
    SockOps,
    SkSkb,
    CgroupDevice,
    SkMsg,
    RawTracepoint,
    CgroupSockAddr,
    LwtSeg6local,
    LircMode2,
    SkReuseport,
    FlowDissector,
    CgroupSysctl,
    RawTracepointWritable,
    CgroupSockopt,
    Tracing,
    StructOps,
    Ext,
    Lsm,
    SkLookup,
    Syscall,
    Netfilter,
}

/// (section prefix, exact-or-prefix, type). A prefix entry matches `prefix`
/// itself and `prefix/...`.
const TABLE: &[(&str, ProgType)] = &[
    ("socket", ProgType::SocketFilter),
    ("sk_reuseport", ProgType::SkReuseport),
    ("kprobe", ProgType::Kprobe),
    ("uprobe", ProgType::Kprobe),
    ("kretprobe", ProgType::Kprobe),
    ("uretprobe", ProgType::Kprobe),
    ("ksyscall", ProgType::Kprobe),
    ("kretsyscall", ProgType::Kprobe),
    ("usdt", ProgType::Kprobe),
    ("kprobe.multi", ProgType::Kprobe),
    ("kretprobe.multi", ProgType::Kprobe),
    ("tc", ProgType::SchedCls),
    ("tcx", ProgType::SchedCls),
    ("netkit", ProgType::SchedCls),
    ("classifier", ProgType::SchedCls),
    ("action", ProgType::SchedAct),
    ("tracepoint", ProgType::Tracepoint),
    ("tp", ProgType::Tracepoint),
    ("raw_tracepoint", ProgType::RawTracepoint),
    ("raw_tp", ProgType::RawTracepoint),
    ("raw_tracepoint.w", ProgType::RawTracepointWritable),
    ("raw_tp.w", ProgType::RawTracepointWritable),
    ("tp_btf", ProgType::Tracing),
    ("fentry", ProgType::Tracing),
    ("fmod_ret", ProgType::Tracing),
    ("fexit", ProgType::Tracing),
    ("fentry.s", ProgType::Tracing),
    ("fmod_ret.s", ProgType::Tracing),
    ("fexit.s", ProgType::Tracing),
    ("iter", ProgType::Tracing),
    ("iter.s", ProgType::Tracing),
    ("freplace", ProgType::Ext),
    ("lsm", ProgType::Lsm),
    ("lsm.s", ProgType::Lsm),
    ("lsm_cgroup", ProgType::Lsm),
    ("xdp", ProgType::Xdp),
    ("xdp.frags", ProgType::Xdp),
    ("perf_event", ProgType::PerfEvent),
    ("lwt_in", ProgType::LwtIn),
    ("lwt_out", ProgType::LwtOut),
    ("lwt_xmit", ProgType::LwtXmit),
    ("lwt_seg6local", ProgType::LwtSeg6local),
    ("sockops", ProgType::SockOps),
    ("sk_skb", ProgType::SkSkb),
    ("sk_msg", ProgType::SkMsg),
    ("lirc_mode2", ProgType::LircMode2),
    ("flow_dissector", ProgType::FlowDissector),
    ("cgroup_skb", ProgType::CgroupSkb),
    ("cgroup/skb", ProgType::CgroupSkb),
    ("cgroup/sock", ProgType::CgroupSock),
    ("cgroup/sock_create", ProgType::CgroupSock),
    ("cgroup/sock_release", ProgType::CgroupSock),
    ("cgroup/post_bind4", ProgType::CgroupSock),
    ("cgroup/post_bind6", ProgType::CgroupSock),
    ("cgroup/dev", ProgType::CgroupDevice),
    ("cgroup/sysctl", ProgType::CgroupSysctl),
    ("cgroup/getsockopt", ProgType::CgroupSockopt),
    ("cgroup/setsockopt", ProgType::CgroupSockopt),
    ("struct_ops", ProgType::StructOps),
    ("struct_ops.s", ProgType::StructOps),
    ("sk_lookup", ProgType::SkLookup),
    ("syscall", ProgType::Syscall),
    ("netfilter", ProgType::Netfilter),
];

const SOCK_ADDR: &[&str] = &[
    "bind4",
    "bind6",
    "connect4",
    "connect6",
    "connect_unix",
    "sendmsg4",
    "sendmsg6",
    "sendmsg_unix",
    "recvmsg4",
    "recvmsg6",
    "recvmsg_unix",
    "getpeername4",
    "getpeername6",
    "getpeername_unix",
    "getsockname4",
    "getsockname6",
    "getsockname_unix",
];

/// `BPF_F_XDP_HAS_FRAGS` (`prog_flags`): the XDP program handles multi-buffer
/// packets (libbpf sets it for `SEC("xdp.frags")`).
pub const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// The `BPF_PROG_LOAD` `prog_flags` libbpf derives from a `SEC()` name:
/// [`BPF_F_XDP_HAS_FRAGS`] for `xdp.frags`, `xdp.frags/devmap` and
/// `xdp.frags/cpumap` (with or without the `?` marker), 0 otherwise.
pub fn section_prog_flags(section: &str) -> u32 {
    let section = section.strip_prefix('?').unwrap_or(section);
    match section {
        "xdp.frags" | "xdp.frags/devmap" | "xdp.frags/cpumap" => BPF_F_XDP_HAS_FRAGS,
        _ => 0,
    }
}

impl ProgType {
    /// Program type for a `SEC()` name; [`ProgType::Unspec`] when unknown.
    pub fn from_section(section: &str) -> ProgType {
        // `SEC("?xdp")`: libbpf's "do not auto-load" marker.
        let section = section.strip_prefix('?').unwrap_or(section);
        let mut best: Option<(usize, ProgType)> = None;
        for &(prefix, t) in TABLE {
            let hit = section == prefix
                || section
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('+'));
            if hit && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), t));
            }
        }
        if let Some((_, t)) = best {
            return t;
        }
        if let Some(rest) = section.strip_prefix("cgroup/")
            && SOCK_ADDR.contains(&rest)
        {
            return ProgType::CgroupSockAddr;
        }
        ProgType::Unspec
    }

    /// The kernel's `enum bpf_prog_type` number.
    pub fn kernel_id(self) -> u32 {
        use ProgType::*;
        match self {
            Unspec => 0,
            SocketFilter => 1,
            Kprobe => 2,
            SchedCls => 3,
            SchedAct => 4,
            Tracepoint => 5,
            Xdp => 6,
            PerfEvent => 7,
            CgroupSkb => 8,
            CgroupSock => 9,
            LwtIn => 10,
            LwtOut => 11,
            LwtXmit => 12,
            SockOps => 13,
            SkSkb => 14,
            CgroupDevice => 15,
            SkMsg => 16,
            RawTracepoint => 17,
            CgroupSockAddr => 18,
            LwtSeg6local => 19,
            LircMode2 => 20,
            SkReuseport => 21,
            FlowDissector => 22,
            CgroupSysctl => 23,
            RawTracepointWritable => 24,
            CgroupSockopt => 25,
            Tracing => 26,
            StructOps => 27,
            Ext => 28,
            Lsm => 29,
            SkLookup => 30,
            Syscall => 31,
            Netfilter => 32,
        }
    }

    /// Short lower-case name (`xdp`, `sched_cls`, ...).
    pub fn name(self) -> &'static str {
        use ProgType::*;
        match self {
            Unspec => "unspec",
            SocketFilter => "socket_filter",
            Kprobe => "kprobe",
            SchedCls => "sched_cls",
            SchedAct => "sched_act",
            Tracepoint => "tracepoint",
            Xdp => "xdp",
            PerfEvent => "perf_event",
            CgroupSkb => "cgroup_skb",
            CgroupSock => "cgroup_sock",
            LwtIn => "lwt_in",
            LwtOut => "lwt_out",
            LwtXmit => "lwt_xmit",
            SockOps => "sock_ops",
            SkSkb => "sk_skb",
            CgroupDevice => "cgroup_device",
            SkMsg => "sk_msg",
            RawTracepoint => "raw_tracepoint",
            CgroupSockAddr => "cgroup_sock_addr",
            LwtSeg6local => "lwt_seg6local",
            LircMode2 => "lirc_mode2",
            SkReuseport => "sk_reuseport",
            FlowDissector => "flow_dissector",
            CgroupSysctl => "cgroup_sysctl",
            RawTracepointWritable => "raw_tracepoint_writable",
            CgroupSockopt => "cgroup_sockopt",
            Tracing => "tracing",
            StructOps => "struct_ops",
            Ext => "ext",
            Lsm => "lsm",
            SkLookup => "sk_lookup",
            Syscall => "syscall",
            Netfilter => "netfilter",
        }
    }
}

impl std::fmt::Display for ProgType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::ProgType::{self, *};

    #[test]
    fn section_names() {
        for (s, t) in [
            ("xdp", Xdp),
            ("xdp/foo", Xdp),
            ("xdp.frags", Xdp),
            ("tc", SchedCls),
            ("tc/ingress", SchedCls),
            ("classifier", SchedCls),
            ("socket", SocketFilter),
            ("socket/1", SocketFilter),
            ("kprobe/do_sys_open", Kprobe),
            ("raw_tp.w/x", RawTracepointWritable),
            ("cgroup/connect4", CgroupSockAddr),
            ("cgroup/skb", CgroupSkb),
            ("fentry/foo", Tracing),
            ("?xdp", Xdp),
            ("xdpfoo", Unspec),
            ("raw", Unspec),
            ("", Unspec),
        ] {
            assert_eq!(ProgType::from_section(s), t, "{s}");
        }
        assert_eq!(Xdp.kernel_id(), 6);
        use super::{BPF_F_XDP_HAS_FRAGS, section_prog_flags};
        for s in [
            "xdp.frags",
            "?xdp.frags",
            "xdp.frags/devmap",
            "xdp.frags/cpumap",
        ] {
            assert_eq!(section_prog_flags(s), BPF_F_XDP_HAS_FRAGS, "{s}");
        }
        for s in ["xdp", "xdp/devmap", "xdp.fragsx", "xdp.frags/foo", "tc", ""] {
            assert_eq!(section_prog_flags(s), 0, "{s}");
        }
        assert_eq!(SchedCls.kernel_id(), 3);
        assert_eq!(SocketFilter.kernel_id(), 1);
    }
}
