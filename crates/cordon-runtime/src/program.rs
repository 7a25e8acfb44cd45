//! A loaded, verified and compiled program, and how it runs: contexts built
//! like Linux's `BPF_PROG_TEST_RUN`, the per-run state, tail calls.

use std::any::Any;
use std::time::{Duration, Instant};

use cordon_exec::jit::JitExecutable;
use cordon_exec::{Abort, ExecError, Executable, HelperResult, Region, RunContext};
use cordon_isa::Insn;

use crate::ctx::{
    ETH_HLEN, FRAME_SIZE, MAX_SKB_FRAGS, SHARED_INFO_SIZE, SK_BUFF_SIZE, SKB_HEADROOM,
    SKB_MAX_DATA, SkbCtx, XDP_MD_SIZE, XdpCtx, XdpInputError, XdpPacket, eth_type_trans, sk_buff,
};
use crate::error::RunError;
use crate::frame::Frame;
use crate::maps::{self, ProgramHandle};
use crate::state::{CtxKind, CurrentGuard, Invocation, Redirect, current_ptr, with_inv};

/// Linux's `MAX_TAIL_CALL_CNT`.
pub const MAX_TAIL_CALLS: u32 = 33;

/// Program types Cordon runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgKind {
    /// `SEC("xdp")`: `struct xdp_md`.
    Xdp,
    /// `SEC("tc")` / `SEC("classifier")`: `struct __sk_buff`, direct packet access.
    SchedCls,
    /// `SEC("action")`.
    SchedAct,
    /// `SEC("socket")`: `struct __sk_buff` seen from the network header.
    SocketFilter,
    /// Anything else: r1 = data, r2 = length (always run in checked mode).
    Raw,
}

impl ProgKind {
    pub fn name(self) -> &'static str {
        match self {
            ProgKind::Xdp => "xdp",
            ProgKind::SchedCls => "sched_cls",
            ProgKind::SchedAct => "sched_act",
            ProgKind::SocketFilter => "socket_filter",
            ProgKind::Raw => "raw",
        }
    }

    /// `enum bpf_prog_type`.
    pub fn kernel_id(self) -> u32 {
        match self {
            ProgKind::SocketFilter => 1,
            ProgKind::SchedCls => 3,
            ProgKind::SchedAct => 4,
            ProgKind::Xdp => 6,
            ProgKind::Raw => 0,
        }
    }

    pub fn is_skb(self) -> bool {
        matches!(
            self,
            ProgKind::SchedCls | ProgKind::SchedAct | ProgKind::SocketFilter
        )
    }
}

/// The compiled code (one per program: the size difference does not matter).
#[allow(clippy::large_enum_variant)]
pub(crate) enum Exe {
    Interp(Executable),
    Jit(JitExecutable),
}

impl Exe {
    #[inline]
    fn run_with(
        &self,
        args: [u64; 5],
        input: &mut [u8],
        extra: &[Region<'_>],
    ) -> Result<u64, ExecError> {
        match self {
            Exe::Interp(e) => e.run_with(args, input, extra),
            Exe::Jit(e) => e.run_with(args, input, extra),
        }
    }
}

/// What one run produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunResult {
    /// The program's full 64-bit r0.
    pub r0: u64,
    /// `retval` as Linux's test_run reports it: the low 32 bits of r0.
    pub retval: u32,
    /// The packet after the run (Linux's `data_out`; empty for raw runs).
    pub packet: Vec<u8>,
    /// The context after the run as Linux's `ctx_out` reports it
    /// (`struct xdp_md` / `struct __sk_buff`; empty for raw runs).
    pub ctx_out: Vec<u8>,
    /// A redirect the program requested.
    pub redirect: Option<Redirect>,
    /// `bpf_trace_printk` output, one entry per call.
    pub trace: Vec<String>,
    /// Linux's `tail_call_cnt` at the end: tail calls that passed the index
    /// and limit checks (including ones that found an empty slot).
    pub tail_calls: u32,
    /// Time spent in the program (helpers included).
    pub duration: Duration,
}

impl RunResult {
    /// A 32-bit field of `ctx_out` at byte offset `off` (e.g. `__sk_buff.mark` at 8).
    pub fn ctx_u32(&self, off: usize) -> Option<u32> {
        let b = self.ctx_out.get(off..off + 4)?;
        Some(u32::from_ne_bytes(b.try_into().ok()?))
    }
}

/// A program ready to run. Cheap to share (`Arc`) and to run from many threads.
pub struct CompiledProgram {
    pub(crate) id: u32,
    pub(crate) name: String,
    pub(crate) kind: ProgKind,
    pub(crate) exe: Exe,
    /// Maps the program references (kept alive by it).
    pub(crate) maps: Vec<crate::loader::ObjMap>,
    /// Their program-visible pointers, sorted (checked mode validates against it).
    pub(crate) map_ptrs: Vec<u64>,
    /// Global data values the code addresses directly: (start, len, writable).
    pub(crate) data_regions: Vec<(u64, u64, bool)>,
    pub(crate) verified: bool,
    pub(crate) verifier_log: String,
    pub(crate) insns: Vec<Insn>,
    pub(crate) ncpus: u32,
    /// Loaded with `BPF_F_XDP_HAS_FRAGS` (`SEC("xdp.frags")`).
    pub(crate) xdp_has_frags: bool,
    /// `expected_attach_type` libbpf would load it with (from its section).
    pub(crate) expected_attach_type: u32,
}

impl std::fmt::Debug for CompiledProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledProgram")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("verified", &self.verified)
            .field("insns", &self.insns.len())
            .finish_non_exhaustive()
    }
}

impl ProgramHandle for CompiledProgram {
    fn prog_id(&self) -> u32 {
        self.id
    }
    fn prog_type(&self) -> u32 {
        self.kind.kernel_id()
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn prog_name(&self) -> &str {
        &self.name
    }
    fn xdp_has_frags(&self) -> bool {
        self.xdp_has_frags
    }
    fn expected_attach_type(&self) -> u32 {
        self.expected_attach_type
    }
}

thread_local! {
    static CPU_ASSIGNED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}
static NEXT_CPU: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Gives the calling thread a CPU slot (round robin over `ncpus`) the first
/// time it runs a program, unless the host set one with [`set_cpu`].
#[inline]
fn ensure_cpu(ncpus: u32) {
    if !CPU_ASSIGNED.with(|c| c.replace(true)) {
        let n = NEXT_CPU.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        maps::set_current_cpu(n % ncpus.max(1));
    }
}

/// Pins the calling thread to CPU slot `cpu` (what `bpf_get_smp_processor_id`
/// returns and which per-CPU map slot programs use).
pub fn set_cpu(cpu: u32) {
    CPU_ASSIGNED.with(|c| c.set(true));
    maps::set_current_cpu(cpu);
}

impl CompiledProgram {
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> ProgKind {
        self.kind
    }

    /// Whether the program was loaded with `BPF_F_XDP_HAS_FRAGS`
    /// (`SEC("xdp.frags")`): it declares it handles multi-buffer packets.
    /// Like Linux's test_run, Cordon builds fragments for every XDP program
    /// given input beyond the linear area; the flag is what Linux checks when
    /// attaching to devices and mixing programs in program arrays.
    pub fn xdp_has_frags(&self) -> bool {
        self.xdp_has_frags
    }

    /// Whether the program was verified (and runs without run-time checks).
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// The verifier's log (level 1: the summary line) of a verified program.
    pub fn verifier_log(&self) -> &str {
        &self.verifier_log
    }

    /// The instructions that run (after relocation and rewriting).
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }

    /// Maps the program references.
    pub fn maps(&self) -> &[crate::loader::ObjMap] {
        &self.maps
    }

    /// Runs inside invocation `inv` (shared with tail calls).
    #[inline]
    fn invoke(
        &self,
        inv: *mut Invocation,
        args: [u64; 5],
        input: &mut [u8],
        extra: &[Region<'_>],
    ) -> Result<u64, ExecError> {
        // SAFETY: `inv` is the live invocation of this run (a local of the caller).
        let prev = unsafe { std::mem::replace(&mut (*inv).prog, self as *const _) };
        let _current = CurrentGuard::enter(inv);
        let r = if self.data_regions.is_empty() || self.verified {
            self.exe.run_with(args, input, extra)
        } else {
            // Checked mode: the program addresses its global data directly.
            let mut all: Vec<Region<'_>> = extra.to_vec();
            for &(start, len, writable) in &self.data_regions {
                // SAFETY: array map values live as long as the program holds the map.
                all.push(unsafe { Region::from_raw(start, len, writable) });
            }
            self.exe.run_with(args, input, &all)
        };
        // SAFETY: as above.
        unsafe { (*inv).prog = prev };
        r
    }

    /// Runs a top-level invocation and cleans up what checked mode tracked.
    fn run_top(
        &self,
        inv: &mut Invocation,
        args: [u64; 5],
        input: &mut [u8],
        extra: &[Region<'_>],
        timed: bool,
    ) -> Result<(u64, Duration), RunError> {
        ensure_cpu(self.ncpus);
        // The epoch pin keeps what the program reaches through its maps alive
        // (hash elements, inner maps, tail-call targets). A program that
        // references no map can reach none of that, and skips the pin (a
        // thread-local access and an atomic read-modify-write per run).
        let _guard = (!self.maps.is_empty()).then(maps::pin);
        let start = timed.then(Instant::now);
        let r = self.invoke(inv as *mut Invocation, args, input, extra);
        let duration = start.map_or(Duration::ZERO, |s| s.elapsed());
        // Checked runs that ended abnormally may leave locks or records behind.
        inv.release_leftovers();
        match r {
            Ok(v) => Ok((v, duration)),
            Err(source) => Err(self.exec_error(source)),
        }
    }

    /// The error of a run that failed in the engine, naming the program.
    #[cold]
    #[inline(never)]
    fn exec_error(&self, source: ExecError) -> RunError {
        RunError::Exec {
            program: self.name.clone(),
            source,
        }
    }

    /// A `ctx_in` Linux's test_run refuses with `errno`.
    fn bad_ctx(&self, errno: &'static str, message: String) -> RunError {
        RunError::BadContext {
            program: self.name.clone(),
            errno,
            message,
        }
    }

    fn expect(&self, ok: bool, expected: &'static str) -> Result<(), RunError> {
        if ok {
            Ok(())
        } else {
            Err(RunError::WrongProgramType {
                program: self.name.clone(),
                actual: self.kind.name(),
                expected,
            })
        }
    }

    /// Runs an XDP program on a copy of `packet` the way Linux's test_run
    /// does: 256 bytes of headroom, ingress device 1 (`lo`), queue 0.
    pub fn run_xdp(&self, packet: &[u8]) -> Result<RunResult, RunError> {
        self.run_xdp_with(packet, None)
    }

    /// [`CompiledProgram::run_xdp`] with Linux's `ctx_in` (`struct xdp_md`):
    /// `data` is the length of metadata at the start of `packet`, `data_end`
    /// (at most the packet length) the size of the linear part (capped at
    /// 3520 bytes plus metadata; the rest of the packet becomes fragments),
    /// `data_meta` and `egress_ifindex` must be 0, `ingress_ifindex` 0 or 1
    /// (`lo`), and `rx_queue_index` 0.
    ///
    /// Input beyond the linear part goes to page-sized fragments (at most 17),
    /// as Linux's test_run does for every XDP program: the program sees only
    /// the linear part between `data` and `data_end`, the helpers
    /// (`bpf_xdp_load_bytes`, `bpf_xdp_adjust_tail`, ...) the whole packet,
    /// and [`RunResult::packet`] holds the linear part and the fragments.
    pub fn run_xdp_with(
        &self,
        packet: &[u8],
        ctx_in: Option<&[u8]>,
    ) -> Result<RunResult, RunError> {
        self.expect(self.kind == ProgKind::Xdp, "run_skb/run_raw")?;
        let bad = |errno, message| self.bad_ctx(errno, message);
        let mut md_in = [0u32; 6];
        let mut metalen = 0usize;
        let mut linear = packet.len();
        if let Some(c) = ctx_in {
            let md = ctx_fields::<6>(c).map_err(|m| bad("E2BIG", m))?;
            if md[2] != 0 {
                return Err(bad("EINVAL", "data_meta must be 0".into()));
            }
            if md[1] as usize > packet.len() || md[0] > md[1] {
                return Err(bad(
                    "EINVAL",
                    format!(
                        "data {} / data_end {} do not fit the {}-byte input",
                        md[0],
                        md[1],
                        packet.len()
                    ),
                ));
            }
            if md[0] % 4 != 0 || md[0] as usize > crate::ctx::XDP_MAX_META {
                return Err(bad(
                    "EINVAL",
                    format!(
                        "metadata length {} is invalid (a multiple of 4 of at most {} bytes)",
                        md[0],
                        crate::ctx::XDP_MAX_META
                    ),
                ));
            }
            if packet.len() - (md[0] as usize) < ETH_HLEN {
                return Err(RunError::PacketTooShort {
                    program: self.name.clone(),
                    kind: "xdp",
                    len: packet.len() - md[0] as usize,
                });
            }
            if md[5] != 0 {
                return Err(bad("EINVAL", "egress_ifindex must be 0".into()));
            }
            if md[3] == 0 && md[4] != 0 {
                return Err(bad(
                    "EINVAL",
                    "rx_queue_index without ingress_ifindex".into(),
                ));
            }
            if md[3] > 1 {
                return Err(bad(
                    "ENODEV",
                    format!("no device with ifindex {} (only lo = 1)", md[3]),
                ));
            }
            if md[4] != 0 {
                return Err(bad(
                    "EINVAL",
                    format!("lo has one rx queue, not {}", md[4] + 1),
                ));
            }
            metalen = md[0] as usize;
            linear = md[1] as usize;
            md_in = md;
        }
        let mut pkt = self.xdp_packet(packet, metalen, linear)?;
        let base = pkt.frame().addr();
        let mut x = XdpCtx::default();
        pkt.attach(&mut x);
        x.md[3] = 1; // ingress_ifindex: lo
        x.md[4] = md_in[4];
        let ctx_addr = &mut x as *mut XdpCtx as u64;
        let mut inv = Invocation::new(
            CtxKind::Xdp,
            ctx_addr,
            XDP_MD_SIZE as u64,
            (base, FRAME_SIZE as u64),
        );
        // SAFETY: `x` outlives the run; programs only read it (the verifier forbids
        // writes, and checked mode gets a read-only region).
        let extra = [unsafe { Region::from_raw(ctx_addr, XDP_MD_SIZE as u64, false) }];
        let (r0, duration) = self.run_top(
            &mut inv,
            [ctx_addr, 0, 0, 0, 0],
            pkt.frame_mut().bytes_mut(),
            &extra,
            true,
        )?;
        let x = *unsafe { &*(ctx_addr as *const XdpCtx) };
        let (meta, d, end) = (
            (x.data_meta - base) as usize,
            (x.data - base) as usize,
            (x.data_end - base) as usize,
        );
        let mut packet = Vec::with_capacity(end - meta + pkt.frag_bytes());
        pkt.output_into(&x, &mut packet);
        // Linux's ctx_out echoes ctx_in except for the packet offsets.
        let mut md = if ctx_in.is_some() { md_in } else { x.md };
        md[0] = (d - meta) as u32;
        md[1] = (end - meta) as u32;
        md[2] = 0;
        Ok(RunResult {
            r0,
            retval: r0 as u32,
            packet,
            ctx_out: md.iter().flat_map(|v| v.to_ne_bytes()).collect(),
            redirect: inv.redirect.take(),
            trace: std::mem::take(&mut inv.trace),
            tail_calls: inv.tail_calls,
            duration,
        })
    }

    /// Lowest-overhead XDP run: `packet` is copied into a frame (256 bytes of
    /// headroom, as [`CompiledProgram::run_xdp`]; beyond 3520 bytes into
    /// fragments) and the result copied back (`packet` is resized when the
    /// program moved its head or tail; no allocation when its capacity
    /// suffices). No timing, no trace lines. Returns the full r0.
    pub fn run_xdp_in_place(&self, packet: &mut Vec<u8>) -> Result<u64, RunError> {
        self.expect(self.kind == ProgKind::Xdp, "run_skb/run_raw")?;
        let mut pkt = self.xdp_packet(packet, 0, packet.len())?;
        let base = pkt.frame().addr();
        let mut x = XdpCtx::default();
        pkt.attach(&mut x);
        x.md[3] = 1;
        let ctx_addr = &mut x as *mut XdpCtx as u64;
        let mut inv = Invocation::new(
            CtxKind::Xdp,
            ctx_addr,
            XDP_MD_SIZE as u64,
            (base, FRAME_SIZE as u64),
        );
        // SAFETY: as in run_xdp_with.
        let extra = [unsafe { Region::from_raw(ctx_addr, XDP_MD_SIZE as u64, false) }];
        let (r0, _) = self.run_top(
            &mut inv,
            [ctx_addr, 0, 0, 0, 0],
            pkt.frame_mut().bytes_mut(),
            &extra,
            false,
        )?;
        // SAFETY: the run is over; `x` is ours again.
        let x = unsafe { *(ctx_addr as *const XdpCtx) };
        packet.clear();
        pkt.output_into(&x, packet);
        Ok(r0)
    }

    /// Builds an XDP test-run packet (see [`XdpPacket::build`]), with the
    /// errors Linux's test_run gives.
    fn xdp_packet(
        &self,
        packet: &[u8],
        metalen: usize,
        linear: usize,
    ) -> Result<XdpPacket, RunError> {
        XdpPacket::build(packet, metalen, linear).map_err(|e| match e {
            XdpInputError::TooShort { len } => RunError::PacketTooShort {
                program: self.name.clone(),
                kind: "xdp",
                len,
            },
            XdpInputError::TooManyFragments { len, max } => RunError::TooManyFragments {
                program: self.name.clone(),
                len,
                max,
                frags: MAX_SKB_FRAGS,
            },
        })
    }

    /// Runs a tc or socket-filter program on a copy of `packet` the way Linux's
    /// test_run does (`eth_type_trans` on device `lo`, ifindex 1; socket
    /// filters see the packet from the network header).
    pub fn run_skb(&self, packet: &[u8]) -> Result<RunResult, RunError> {
        self.run_skb_with(packet, None)
    }

    /// [`CompiledProgram::run_skb`] with Linux's `ctx_in` (`struct __sk_buff`):
    /// only `mark`, `priority`, `ingress_ifindex`, `ifindex` (0 or 1), `cb`,
    /// `tstamp`, `wire_len`, `gso_segs`, `gso_size` and `hwtstamp` may be set.
    pub fn run_skb_with(
        &self,
        packet: &[u8],
        ctx_in: Option<&[u8]>,
    ) -> Result<RunResult, RunError> {
        self.expect(self.kind.is_skb(), "run_xdp/run_raw")?;
        check_len(&self.name, "skb", packet.len(), SKB_MAX_DATA)?;
        let uapi_in = match ctx_in {
            Some(c) => {
                Some(skb_ctx_in(c).map_err(|(errno, message)| self.bad_ctx(errno, message))?)
            }
            None => None,
        };
        // After the ctx_in checks (E2BIG, EINVAL, ENODEV), as in Linux.
        check_net_header(&self.name, packet)?;
        let mut frame = Frame::take();
        let base = frame.addr();
        {
            fill_frame(frame.bytes_mut(), SKB_HEADROOM, packet);
        }
        let l2 = self.kind != ProgKind::SocketFilter;
        let start = base + SKB_HEADROOM as u64 + if l2 { 0 } else { ETH_HLEN as u64 };
        let end = base + (SKB_HEADROOM + packet.len()) as u64;
        let mut s = SkbCtx::default();
        let (pkt_type, proto) = eth_type_trans(packet);
        s.set_pointers(start, start, end);
        s.set_u32(sk_buff::LEN, (end - start) as u32);
        s.set_u32(sk_buff::PKT_TYPE, pkt_type);
        s.set_u32(sk_buff::PROTOCOL, proto.to_be() as u32);
        s.set_u32(sk_buff::IFINDEX, 1);
        if let Some(u) = &uapi_in {
            let len = s.get_u32(sk_buff::LEN);
            let get = |off: usize| u32::from_ne_bytes(u[off..off + 4].try_into().expect("4 bytes"));
            let wire = get(sk_buff::WIRE_LEN);
            if wire != 0 && (wire < len || wire > 65536) {
                return Err(self.bad_ctx(
                    "EINVAL",
                    format!("wire_len {wire} is below the packet length {len} or above 65536"),
                ));
            }
            if get(sk_buff::GSO_SEGS) > 65535 {
                return Err(self.bad_ctx("EINVAL", "gso_segs above 65535".into()));
            }
            for (from, to) in [
                (sk_buff::MARK, sk_buff::MARK + 4),
                (sk_buff::PRIORITY, sk_buff::INGRESS_IFINDEX + 4),
                (sk_buff::CB, sk_buff::CB + 20),
                (sk_buff::TSTAMP, sk_buff::GSO_SEGS + 4),
                (sk_buff::GSO_SIZE, sk_buff::GSO_SIZE + 4),
                (sk_buff::HWTSTAMP, sk_buff::HWTSTAMP + 8),
            ] {
                s.uapi[from..to].copy_from_slice(&u[from..to]);
            }
            s.set_u32(sk_buff::WIRE_LEN, if wire == 0 { len } else { wire });
        }
        let ctx_addr = &mut s as *mut SkbCtx as u64;
        let mut inv = Invocation::new(
            CtxKind::Skb,
            ctx_addr,
            SK_BUFF_SIZE as u64,
            (start, end - start),
        );
        // tc programs see the MAC header at `data` (network header 14 bytes
        // on), socket filters the network header.
        inv.skb = crate::helpers::SkbState::new(
            base,
            base + (FRAME_SIZE - SHARED_INFO_SIZE) as u64,
            if l2 { ETH_HLEN as i64 } else { 0 },
            (start - base) as i64,
        );
        // SAFETY: `s` outlives the run.
        let extra = [unsafe { Region::from_raw(ctx_addr, SK_BUFF_SIZE as u64, true) }];
        let off = (start - base) as usize;
        let len = (end - start) as usize;
        let (r0, duration) = {
            // SAFETY: the frame (and any buffer the packet moves to) outlives
            // the guard, which restores the thread's setting when dropped.
            let _headers = unsafe { inv.skb.publish_headers(start) };
            let input = &mut frame.bytes_mut()[off..off + len];
            self.run_top(&mut inv, [ctx_addr, 0, 0, 0, 0], input, &extra, true)?
        };
        let s = *unsafe { &*(ctx_addr as *const SkbCtx) };
        // Linux's data_out is skb->data for skb->len bytes (socket filters get
        // a zeroed Ethernet header pushed in front). Helpers may have moved
        // the packet into a buffer the invocation owns (still alive here).
        // SAFETY: [data, data_end) is the packet inside the frame or such a buffer.
        let data = unsafe {
            std::slice::from_raw_parts(s.data as *const u8, (s.data_end - s.data) as usize)
        };
        let mut out = if l2 {
            Vec::with_capacity(data.len())
        } else {
            vec![0u8; ETH_HLEN]
        };
        out.extend_from_slice(data);
        Ok(RunResult {
            r0,
            retval: r0 as u32,
            packet: out,
            ctx_out: skb_ctx_out(&s),
            redirect: inv.redirect.take(),
            trace: std::mem::take(&mut inv.trace),
            tail_calls: inv.tail_calls,
            duration,
        })
    }

    /// Runs with r1 = `data`, r2 = its length (raw programs; `data` is the
    /// program's input memory and LD_ABS packet).
    pub fn run_raw(&self, data: &mut [u8]) -> Result<RunResult, RunError> {
        let args = [data.as_mut_ptr() as u64, data.len() as u64, 0, 0, 0];
        let input = (data.as_mut_ptr() as u64, data.len() as u64);
        let mut inv = Invocation::new(CtxKind::None, 0, 0, input);
        let (r0, duration) = self.run_top(&mut inv, args, data, &[], true)?;
        Ok(RunResult {
            r0,
            retval: r0 as u32,
            redirect: inv.redirect.take(),
            trace: std::mem::take(&mut inv.trace),
            tail_calls: inv.tail_calls,
            duration,
            ..RunResult::default()
        })
    }

    /// Lowest-overhead call: explicit r1–r5 and input memory, no context, no
    /// allocation (unless a helper allocates), only r0 back.
    ///
    /// The same invocation as [`CompiledProgram::run_raw`] (CPU slot, map
    /// epoch pin for programs with maps, the current invocation for helpers
    /// and nested runs, cleanup of what a checked run left behind) without
    /// the timing and the result record.
    #[inline]
    pub fn call(&self, args: [u64; 5], input: &mut [u8]) -> Result<u64, RunError> {
        ensure_cpu(self.ncpus);
        // See `run_top`: only programs with maps need the epoch pin.
        let _guard = (!self.maps.is_empty()).then(maps::pin);
        let mut inv = std::mem::ManuallyDrop::new(Invocation::new(
            CtxKind::None,
            0,
            0,
            (input.as_mut_ptr() as u64, input.len() as u64),
        ));
        let r = self.invoke(&mut *inv, args, input, &[]);
        inv.release_leftovers();
        // Most calls store nothing in their invocation: skip its drop then.
        // (A panic unwinding out of a host helper leaks what it stored.)
        if !inv.owns_nothing() {
            // SAFETY: dropped once, not used afterwards.
            unsafe { std::mem::ManuallyDrop::drop(&mut inv) };
        }
        match r {
            Ok(v) => Ok(v),
            Err(source) => Err(self.exec_error(source)),
        }
    }
}

/// A zeroed page (as Linux's test_run allocates it) with `packet` at `at`.
fn fill_frame(f: &mut [u8], at: usize, packet: &[u8]) {
    let end = at + packet.len();
    f[..at].fill(0);
    f[at..end].copy_from_slice(packet);
    f[end..].fill(0);
}

fn check_len(program: &str, kind: &'static str, len: usize, max: usize) -> Result<(), RunError> {
    if len < ETH_HLEN {
        return Err(RunError::PacketTooShort {
            program: program.to_string(),
            kind,
            len,
        });
    }
    if len > max {
        return Err(RunError::PacketTooLong {
            program: program.to_string(),
            kind,
            len,
            max,
        });
    }
    Ok(())
}

/// Linux's `bpf_prog_test_run_skb` refuses (EINVAL) an IPv4 or IPv6 frame
/// whose linear data after the Ethernet header is shorter than the IP
/// header (`struct iphdr`, 20 bytes; `struct ipv6hdr`, 40 bytes). Only the
/// Ethernet type decides (a VLAN-tagged frame is not checked), for every
/// skb program type.
fn check_net_header(program: &str, packet: &[u8]) -> Result<(), RunError> {
    let (protocol, header) = match eth_type_trans(packet).1 {
        0x0800 => ("IPv4", 20),
        0x86dd => ("IPv6", 40),
        _ => return Ok(()),
    };
    if packet.len() - ETH_HLEN < header {
        return Err(RunError::NetworkHeaderTooShort {
            program: program.to_string(),
            kind: "skb",
            protocol,
            len: packet.len(),
            min: ETH_HLEN + header,
            header,
        });
    }
    Ok(())
}

/// The first `N` u32 fields of a context given as bytes; bytes past them
/// must be zero (Linux's `bpf_ctx_init`).
fn ctx_fields<const N: usize>(c: &[u8]) -> Result<[u32; N], String> {
    if c[(N * 4).min(c.len())..].iter().any(|&b| b != 0) {
        return Err(format!(
            "ctx_in has non-zero bytes past its {} bytes",
            N * 4
        ));
    }
    let mut out = [0u32; N];
    for (k, v) in out.iter_mut().enumerate() {
        let mut b = [0u8; 4];
        for (j, x) in b.iter_mut().enumerate() {
            *x = c.get(k * 4 + j).copied().unwrap_or(0);
        }
        *v = u32::from_ne_bytes(b);
    }
    Ok(out)
}

/// Checks an skb `ctx_in` as `convert___skb_to_skb` does; returns the full
/// 192 bytes.
fn skb_ctx_in(c: &[u8]) -> Result<[u8; SK_BUFF_SIZE], (&'static str, String)> {
    if c[SK_BUFF_SIZE.min(c.len())..].iter().any(|&b| b != 0) {
        return Err((
            "E2BIG",
            "ctx_in has non-zero bytes past the 192-byte __sk_buff".into(),
        ));
    }
    let mut u = [0u8; SK_BUFF_SIZE];
    let n = c.len().min(SK_BUFF_SIZE);
    u[..n].copy_from_slice(&c[..n]);
    let allowed = [
        (sk_buff::MARK, sk_buff::MARK + 4),
        (sk_buff::PRIORITY, sk_buff::IFINDEX + 4),
        (sk_buff::CB, sk_buff::CB + 20),
        (sk_buff::TSTAMP, sk_buff::GSO_SEGS + 4),
        (sk_buff::GSO_SIZE, sk_buff::GSO_SIZE + 4),
        (sk_buff::HWTSTAMP, sk_buff::HWTSTAMP + 8),
    ];
    for (off, &b) in u.iter().enumerate() {
        if b != 0 && !allowed.iter().any(|&(f, t)| off >= f && off < t) {
            return Err((
                "EINVAL",
                format!("__sk_buff byte {off} may not be set in ctx_in"),
            ));
        }
    }
    let ifindex = u32::from_ne_bytes(
        u[sk_buff::IFINDEX..sk_buff::IFINDEX + 4]
            .try_into()
            .expect("4"),
    );
    if ifindex > 1 {
        return Err((
            "ENODEV",
            format!("no device with ifindex {ifindex} (only lo = 1)"),
        ));
    }
    Ok(u)
}

/// Linux's `convert_skb_to___skb`: only these fields come back in `ctx_out`.
fn skb_ctx_out(s: &SkbCtx) -> Vec<u8> {
    let mut out = vec![0u8; SK_BUFF_SIZE];
    let copy = |out: &mut Vec<u8>, from: usize, to: usize| {
        out[from..to].copy_from_slice(&s.uapi[from..to]);
    };
    copy(&mut out, sk_buff::MARK, sk_buff::MARK + 4);
    copy(&mut out, sk_buff::PRIORITY, sk_buff::IFINDEX + 4); // priority, ingress_ifindex, ifindex
    copy(&mut out, sk_buff::CB, sk_buff::CB + 20);
    copy(&mut out, sk_buff::TSTAMP, sk_buff::GSO_SEGS + 4); // tstamp, wire_len, gso_segs
    copy(&mut out, sk_buff::GSO_SIZE, sk_buff::GSO_SIZE + 4);
    copy(&mut out, sk_buff::HWTSTAMP, sk_buff::HWTSTAMP + 8);
    out
}

/// Internal helper: try a tail call (r1 = ctx, r2 = prog_array, r3 = index).
pub(crate) fn tail_call_try(ctx: &mut RunContext<'_>, a: [u64; 5]) -> HelperResult {
    let map = crate::helpers::map_arg(ctx, a[1])?;
    let index = a[2] as u32;
    let inv = current_ptr();
    let (ctx_addr, ctx_len, input, kind) = with_inv(|inv| {
        if ctx.is_checked() && a[0] != inv.ctx {
            return Err(Abort::Fault(format!(
                "bpf_tail_call: {:#x} is not the program's context",
                a[0]
            )));
        }
        Ok((inv.ctx, inv.ctx_len, inv.input, inv.kind))
    })?;
    if map.map_type() != maps::MapType::ProgArray || index >= map.max_entries() {
        return Ok(0);
    }
    let count = with_inv(|inv| {
        if inv.tail_calls >= MAX_TAIL_CALLS {
            return Ok(None);
        }
        inv.tail_calls += 1;
        Ok(Some(()))
    })?;
    if count.is_none() {
        return Ok(0);
    }
    let guard = maps::pin();
    let Some(target) = map.tail_call_target(index, &guard) else {
        return Ok(0);
    };
    let Some(prog) = target.as_any().downcast_ref::<CompiledProgram>() else {
        return Err(Abort::Fault("prog_array holds a foreign program".into()));
    };
    // SAFETY: the invocation's input and context stay valid for the whole run;
    // the caller's frames are suspended while the target runs.
    let input = unsafe { std::slice::from_raw_parts_mut(input.0 as *mut u8, input.1 as usize) };
    let extra: Vec<Region<'static>> = if kind == CtxKind::None {
        Vec::new()
    } else {
        // SAFETY: as above.
        vec![unsafe { Region::from_raw(ctx_addr, ctx_len, kind == CtxKind::Skb) }]
    };
    let args = if kind == CtxKind::None {
        [a[0], 0, 0, 0, 0]
    } else {
        [ctx_addr, 0, 0, 0, 0]
    };
    match prog.invoke(inv, args, input, &extra) {
        Ok(v) => {
            let stopped = with_inv(|inv| {
                inv.tail_result = v;
                Ok(inv.stopped)
            })?;
            if stopped {
                // bpf_throw in the target ends the whole invocation.
                return Err(Abort::Stop(v));
            }
            Ok(1)
        }
        Err(e) => Err(Abort::Fault(format!(
            "tail-called program '{}' failed: {e}",
            prog.name
        ))),
    }
}

/// Internal helper: the result of the tail call just made.
pub(crate) fn tail_call_result(_: &mut RunContext<'_>, _: [u64; 5]) -> HelperResult {
    with_inv(|inv| Ok(inv.tail_result))
}
