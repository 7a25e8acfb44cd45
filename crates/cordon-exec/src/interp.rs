//! The interpreter: one tight loop over pre-decoded [`Op`]s.
//!
//! `CHECKED` is a const generic, so the trusted instantiation contains no access
//! checks and no instruction budget at all. Registers live in a local array;
//! bpf-to-bpf call frames (saved r6–r9, r10, return pc) in a local fixed array;
//! r10 frames come from the invocation's [`FrameArena`] (shadow stack).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use cordon_isa::opcode::MAY_GOTO_MAX_LOOPS;

use crate::context::{RunContext, STATUS_RUNNING};
use crate::decode::{Op, OpCode};
use crate::error::{Access, ExecError};
use crate::shadow_stack::FrameArena;

/// Maximum number of frames (the entry plus nested bpf-to-bpf calls), as in Linux.
pub const MAX_CALL_FRAMES: usize = 8;

#[derive(Clone, Copy)]
struct CallFrame {
    ret: *const Op,
    saved: [u64; 4],
    fp: u64,
    size: u64,
    /// The caller's remaining `may_goto` budget.
    loops: u64,
}

#[inline(always)]
fn in_range(addr: u64, size: u64, lo: u64, len: u64) -> bool {
    let d = addr.wrapping_sub(lo);
    d < len && len - d >= size
}

#[cold]
#[inline(never)]
fn access_error(index: usize, access: Access, addr: u64, size: u64) -> ExecError {
    ExecError::MemoryAccess {
        index,
        access,
        addr,
        size: size as u32,
    }
}

/// Run pre-decoded `ops` from instruction 0.
///
/// The caller has set up `ctx` (arena, input, `stack_hi`) and allocated the entry
/// frame whose top is `r10`; it restores the arena afterwards.
///
/// # Safety
/// `ops` must come from [`crate::decode::decode`] (every target in range, a
/// `FellOff` sentinel at the end, registers ≤ r10). Unless `CHECKED`, the program
/// must be verified: every memory access it makes must be valid.
#[allow(clippy::too_many_lines)]
pub(crate) unsafe fn interpret<const CHECKED: bool>(
    ops: &[Op],
    ctx: &mut RunContext<'_>,
    args: [u64; 5],
    r10: u64,
    budget: u64,
    program: &str,
) -> Result<u64, ExecError> {
    let mut reg = [0u64; 16];
    reg[1..6].copy_from_slice(&args);
    reg[10] = r10;
    let arena: *mut FrameArena = ctx.arena;
    // SAFETY: the arena outlives the invocation; it is only accessed through raw
    // pointers (helpers running nested programs use it too, strictly nested).
    let mut stack_lo = unsafe { (*arena).sp };
    let stack_hi = ctx.stack_hi;
    let mut stack_len = stack_hi - stack_lo;
    // Reloaded after helper calls (a helper may move the window:
    // `RunContext::set_input_window`).
    let mut input_lo = ctx.input_ptr;
    let mut input_len = ctx.input_len;
    let mut frames = [CallFrame {
        ret: std::ptr::null(),
        saved: [0; 4],
        fp: 0,
        size: 0,
        loops: 0,
    }; MAX_CALL_FRAMES - 1];
    // `may_goto` budget of the current frame (each frame starts with a full one).
    let mut loops = MAY_GOTO_MAX_LOOPS;
    let mut depth = 0usize;
    let mut left = budget;
    let base = ops.as_ptr();
    // The instruction pointer: one past the op being executed.
    let mut ip = base;
    // Index of the op being executed (only needed on slow paths).
    macro_rules! index {
        () => {
            // SAFETY: `ip` always points into `ops` (or one past an op in it).
            (unsafe { ip.offset_from(base) } as usize - 1)
        };
    }
    macro_rules! goto {
        ($target:expr) => {
            // SAFETY: targets were validated to be in range at load time.
            ip = unsafe { base.add($target as usize) }
        };
    }

    // Registers are indexed with `& 15` into a 16-entry array: no bounds checks,
    // no unsafe (cordon-isa already rejects registers above r10).
    macro_rules! dst {
        ($op:expr) => {
            reg[($op.dst & 15) as usize]
        };
    }
    macro_rules! src {
        ($op:expr) => {
            reg[($op.src & 15) as usize]
        };
    }
    macro_rules! check {
        ($addr:expr, $size:expr, $access:expr, $write:expr) => {
            if CHECKED
                && !in_range($addr, $size, stack_lo, stack_len)
                && !in_range($addr, $size, input_lo, input_len)
                && !ctx.in_extra_regions($addr, $size, $write)
            {
                return Err(access_error(index!(), $access, $addr, $size));
            }
        };
    }
    macro_rules! load {
        ($op:expr, $t:ty) => {{
            let addr = src!($op).wrapping_add($op.off as i64 as u64);
            check!(addr, size_of::<$t>() as u64, Access::Load, false);
            // SAFETY: checked above (checked mode) or guaranteed by the verifier.
            unsafe { (addr as *const $t).read_unaligned() }
        }};
    }
    macro_rules! store {
        ($op:expr, $t:ty, $v:expr) => {{
            let addr = dst!($op).wrapping_add($op.off as i64 as u64);
            check!(addr, size_of::<$t>() as u64, Access::Store, true);
            // SAFETY: as for loads.
            unsafe { (addr as *mut $t).write_unaligned($v as $t) }
        }};
    }
    macro_rules! atomic_ptr {
        ($op:expr, $t:ty) => {{
            let addr = dst!($op).wrapping_add($op.off as i64 as u64);
            let size = size_of::<$t>() as u64;
            if addr % size != 0 {
                return Err(ExecError::MisalignedAtomic {
                    index: index!(),
                    addr,
                    size: size as u32,
                });
            }
            check!(addr, size, Access::Atomic, true);
            addr as *mut $t
        }};
    }
    macro_rules! atomic32 {
        ($op:expr, $method:ident, $fetch:expr) => {{
            let p = atomic_ptr!($op, u32);
            // SAFETY: aligned and valid (checked, or verified).
            let old = unsafe { AtomicU32::from_ptr(p) }.$method(src!($op) as u32, Ordering::SeqCst);
            if $fetch {
                src!($op) = old as u64;
            }
        }};
    }
    macro_rules! atomic64 {
        ($op:expr, $method:ident, $fetch:expr) => {{
            let p = atomic_ptr!($op, u64);
            // SAFETY: aligned and valid (checked, or verified).
            let old = unsafe { AtomicU64::from_ptr(p) }.$method(src!($op), Ordering::SeqCst);
            if $fetch {
                src!($op) = old;
            }
        }};
    }
    macro_rules! jump {
        ($op:expr, $cond:expr) => {
            if $cond {
                goto!($op.off);
            }
        };
    }
    macro_rules! packet {
        ($off:expr, $n:literal) => {{
            let off: u32 = $off;
            let mut b = [0u8; $n];
            if (off as i32) < 0 || off as u64 + $n > input_len {
                // Negative offsets read relative to the skb's network or MAC
                // header (SKF_NET_OFF / SKF_LL_OFF); otherwise Linux ends the
                // program with r0 = 0 on an out-of-bounds legacy packet load.
                let v = if (off as i32) < 0 {
                    ctx.load_negative(off as i32, $n)
                } else {
                    None
                };
                let Some(v) = v else {
                    return Ok(0);
                };
                b.copy_from_slice(&v.to_be_bytes()[4 - $n..]);
            } else {
                // SAFETY: in bounds of the input, which is valid for the whole run.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        (input_lo + off as u64) as *const u8,
                        b.as_mut_ptr(),
                        $n,
                    )
                };
            }
            b
        }};
    }

    loop {
        // SAFETY: `ip` always points at an op: jump/call targets were validated,
        // return addresses are call sites + 1, and a `FellOff` op ends the array.
        let op = unsafe { *ip };
        // SAFETY: as above; at most one past the op just read.
        ip = unsafe { ip.add(1) };
        if CHECKED {
            if left == 0 {
                return Err(ExecError::BudgetExhausted {
                    index: index!(),
                    budget,
                });
            }
            left -= 1;
        }
        match op.code {
            // ---------------- 64-bit ALU ----------------
            OpCode::Add64I => dst!(op) = dst!(op).wrapping_add(op.imm),
            OpCode::Add64R => dst!(op) = dst!(op).wrapping_add(src!(op)),
            OpCode::Sub64I => dst!(op) = dst!(op).wrapping_sub(op.imm),
            OpCode::Sub64R => dst!(op) = dst!(op).wrapping_sub(src!(op)),
            OpCode::Mul64I => dst!(op) = dst!(op).wrapping_mul(op.imm),
            OpCode::Mul64R => dst!(op) = dst!(op).wrapping_mul(src!(op)),
            OpCode::Div64I => dst!(op) = dst!(op).checked_div(op.imm).unwrap_or(0),
            OpCode::Div64R => dst!(op) = dst!(op).checked_div(src!(op)).unwrap_or(0),
            OpCode::SDiv64I => dst!(op) = sdiv64(dst!(op), op.imm),
            OpCode::SDiv64R => dst!(op) = sdiv64(dst!(op), src!(op)),
            OpCode::Mod64I => dst!(op) = dst!(op).checked_rem(op.imm).unwrap_or(dst!(op)),
            OpCode::Mod64R => dst!(op) = dst!(op).checked_rem(src!(op)).unwrap_or(dst!(op)),
            OpCode::SMod64I => dst!(op) = smod64(dst!(op), op.imm),
            OpCode::SMod64R => dst!(op) = smod64(dst!(op), src!(op)),
            OpCode::Or64I => dst!(op) |= op.imm,
            OpCode::Or64R => dst!(op) |= src!(op),
            OpCode::And64I => dst!(op) &= op.imm,
            OpCode::And64R => dst!(op) &= src!(op),
            OpCode::Lsh64I => dst!(op) <<= op.imm,
            OpCode::Lsh64R => dst!(op) <<= src!(op) & 63,
            OpCode::Rsh64I => dst!(op) >>= op.imm,
            OpCode::Rsh64R => dst!(op) >>= src!(op) & 63,
            OpCode::Arsh64I => dst!(op) = ((dst!(op) as i64) >> op.imm) as u64,
            OpCode::Arsh64R => dst!(op) = ((dst!(op) as i64) >> (src!(op) & 63)) as u64,
            OpCode::Xor64I => dst!(op) ^= op.imm,
            OpCode::Xor64R => dst!(op) ^= src!(op),
            OpCode::Mov64I => dst!(op) = op.imm,
            OpCode::Mov64R => dst!(op) = src!(op),
            OpCode::Neg64 => dst!(op) = dst!(op).wrapping_neg(),
            OpCode::MovSx64_8 => dst!(op) = src!(op) as i8 as i64 as u64,
            OpCode::MovSx64_16 => dst!(op) = src!(op) as i16 as i64 as u64,
            OpCode::MovSx64_32 => dst!(op) = src!(op) as i32 as i64 as u64,

            // ---------------- 32-bit ALU (upper half zeroed) ----------------
            OpCode::Add32I => dst!(op) = (dst!(op) as u32).wrapping_add(op.imm as u32) as u64,
            OpCode::Add32R => dst!(op) = (dst!(op) as u32).wrapping_add(src!(op) as u32) as u64,
            OpCode::Sub32I => dst!(op) = (dst!(op) as u32).wrapping_sub(op.imm as u32) as u64,
            OpCode::Sub32R => dst!(op) = (dst!(op) as u32).wrapping_sub(src!(op) as u32) as u64,
            OpCode::Mul32I => dst!(op) = (dst!(op) as u32).wrapping_mul(op.imm as u32) as u64,
            OpCode::Mul32R => dst!(op) = (dst!(op) as u32).wrapping_mul(src!(op) as u32) as u64,
            OpCode::Div32I => dst!(op) = div32(dst!(op), op.imm),
            OpCode::Div32R => dst!(op) = div32(dst!(op), src!(op)),
            OpCode::SDiv32I => dst!(op) = sdiv32(dst!(op), op.imm),
            OpCode::SDiv32R => dst!(op) = sdiv32(dst!(op), src!(op)),
            OpCode::Mod32I => dst!(op) = mod32(dst!(op), op.imm),
            OpCode::Mod32R => dst!(op) = mod32(dst!(op), src!(op)),
            OpCode::SMod32I => dst!(op) = smod32(dst!(op), op.imm),
            OpCode::SMod32R => dst!(op) = smod32(dst!(op), src!(op)),
            OpCode::Or32I => dst!(op) = (dst!(op) as u32 | op.imm as u32) as u64,
            OpCode::Or32R => dst!(op) = (dst!(op) as u32 | src!(op) as u32) as u64,
            OpCode::And32I => dst!(op) = (dst!(op) as u32 & op.imm as u32) as u64,
            OpCode::And32R => dst!(op) = (dst!(op) as u32 & src!(op) as u32) as u64,
            OpCode::Lsh32I => dst!(op) = ((dst!(op) as u32) << op.imm) as u64,
            OpCode::Lsh32R => dst!(op) = ((dst!(op) as u32) << (src!(op) & 31)) as u64,
            OpCode::Rsh32I => dst!(op) = ((dst!(op) as u32) >> op.imm) as u64,
            OpCode::Rsh32R => dst!(op) = ((dst!(op) as u32) >> (src!(op) & 31)) as u64,
            OpCode::Arsh32I => dst!(op) = ((dst!(op) as i32) >> op.imm) as u32 as u64,
            OpCode::Arsh32R => dst!(op) = ((dst!(op) as i32) >> (src!(op) & 31)) as u32 as u64,
            OpCode::Xor32I => dst!(op) = (dst!(op) as u32 ^ op.imm as u32) as u64,
            OpCode::Xor32R => dst!(op) = (dst!(op) as u32 ^ src!(op) as u32) as u64,
            OpCode::Mov32I => dst!(op) = op.imm as u32 as u64,
            OpCode::Mov32R => dst!(op) = src!(op) as u32 as u64,
            OpCode::Neg32 => dst!(op) = (dst!(op) as u32).wrapping_neg() as u64,
            OpCode::MovSx32_8 => dst!(op) = src!(op) as i8 as i32 as u32 as u64,
            OpCode::MovSx32_16 => dst!(op) = src!(op) as i16 as i32 as u32 as u64,

            // ---------------- byte order ----------------
            OpCode::Le16 => dst!(op) = (dst!(op) as u16).to_le() as u64,
            OpCode::Le32 => dst!(op) = (dst!(op) as u32).to_le() as u64,
            OpCode::Le64 => dst!(op) = dst!(op).to_le(),
            OpCode::Be16 => dst!(op) = (dst!(op) as u16).to_be() as u64,
            OpCode::Be32 => dst!(op) = (dst!(op) as u32).to_be() as u64,
            OpCode::Be64 => dst!(op) = dst!(op).to_be(),
            OpCode::Swap16 => dst!(op) = (dst!(op) as u16).swap_bytes() as u64,
            OpCode::Swap32 => dst!(op) = (dst!(op) as u32).swap_bytes() as u64,
            OpCode::Swap64 => dst!(op) = dst!(op).swap_bytes(),

            // ---------------- jumps ----------------
            OpCode::Ja => goto!(op.off),
            OpCode::MayGoto => {
                if loops == 0 {
                    goto!(op.off);
                } else {
                    loops -= 1;
                }
            }
            OpCode::Jeq64I => jump!(op, dst!(op) == op.imm),
            OpCode::Jeq64R => jump!(op, dst!(op) == src!(op)),
            OpCode::Jgt64I => jump!(op, dst!(op) > op.imm),
            OpCode::Jgt64R => jump!(op, dst!(op) > src!(op)),
            OpCode::Jge64I => jump!(op, dst!(op) >= op.imm),
            OpCode::Jge64R => jump!(op, dst!(op) >= src!(op)),
            OpCode::Jset64I => jump!(op, dst!(op) & op.imm != 0),
            OpCode::Jset64R => jump!(op, dst!(op) & src!(op) != 0),
            OpCode::Jne64I => jump!(op, dst!(op) != op.imm),
            OpCode::Jne64R => jump!(op, dst!(op) != src!(op)),
            OpCode::Jsgt64I => jump!(op, (dst!(op) as i64) > op.imm as i64),
            OpCode::Jsgt64R => jump!(op, (dst!(op) as i64) > src!(op) as i64),
            OpCode::Jsge64I => jump!(op, (dst!(op) as i64) >= op.imm as i64),
            OpCode::Jsge64R => jump!(op, (dst!(op) as i64) >= src!(op) as i64),
            OpCode::Jlt64I => jump!(op, dst!(op) < op.imm),
            OpCode::Jlt64R => jump!(op, dst!(op) < src!(op)),
            OpCode::Jle64I => jump!(op, dst!(op) <= op.imm),
            OpCode::Jle64R => jump!(op, dst!(op) <= src!(op)),
            OpCode::Jslt64I => jump!(op, (dst!(op) as i64) < op.imm as i64),
            OpCode::Jslt64R => jump!(op, (dst!(op) as i64) < src!(op) as i64),
            OpCode::Jsle64I => jump!(op, (dst!(op) as i64) <= op.imm as i64),
            OpCode::Jsle64R => jump!(op, (dst!(op) as i64) <= src!(op) as i64),
            OpCode::Jeq32I => jump!(op, dst!(op) as u32 == op.imm as u32),
            OpCode::Jeq32R => jump!(op, dst!(op) as u32 == src!(op) as u32),
            OpCode::Jgt32I => jump!(op, dst!(op) as u32 > op.imm as u32),
            OpCode::Jgt32R => jump!(op, dst!(op) as u32 > src!(op) as u32),
            OpCode::Jge32I => jump!(op, dst!(op) as u32 >= op.imm as u32),
            OpCode::Jge32R => jump!(op, dst!(op) as u32 >= src!(op) as u32),
            OpCode::Jset32I => jump!(op, dst!(op) as u32 & op.imm as u32 != 0),
            OpCode::Jset32R => jump!(op, dst!(op) as u32 & src!(op) as u32 != 0),
            OpCode::Jne32I => jump!(op, dst!(op) as u32 != op.imm as u32),
            OpCode::Jne32R => jump!(op, dst!(op) as u32 != src!(op) as u32),
            OpCode::Jsgt32I => jump!(op, (dst!(op) as i32) > op.imm as i32),
            OpCode::Jsgt32R => jump!(op, (dst!(op) as i32) > src!(op) as i32),
            OpCode::Jsge32I => jump!(op, (dst!(op) as i32) >= op.imm as i32),
            OpCode::Jsge32R => jump!(op, (dst!(op) as i32) >= src!(op) as i32),
            OpCode::Jlt32I => jump!(op, (dst!(op) as u32) < op.imm as u32),
            OpCode::Jlt32R => jump!(op, (dst!(op) as u32) < src!(op) as u32),
            OpCode::Jle32I => jump!(op, dst!(op) as u32 <= op.imm as u32),
            OpCode::Jle32R => jump!(op, dst!(op) as u32 <= src!(op) as u32),
            OpCode::Jslt32I => jump!(op, (dst!(op) as i32) < op.imm as i32),
            OpCode::Jslt32R => jump!(op, (dst!(op) as i32) < src!(op) as i32),
            OpCode::Jsle32I => jump!(op, (dst!(op) as i32) <= op.imm as i32),
            OpCode::Jsle32R => jump!(op, (dst!(op) as i32) <= src!(op) as i32),

            // ---------------- calls ----------------
            OpCode::CallHelper | OpCode::Callx => {
                let args = [reg[1], reg[2], reg[3], reg[4], reg[5]];
                // Specialised call sites (trusted executables only: the table
                // is empty in checked mode) need no run context.
                if !CHECKED
                    && op.code == OpCode::CallHelper
                    && let Some(spec) = ctx.helpers.sites.get(index!())
                {
                    // SAFETY: the loader registered the spec for this call of
                    // this verified program (`CallSitesBuilder::specialise`).
                    reg[0] = unsafe { spec.invoke(args) };
                    continue;
                }
                ctx.call_index = index!() as u64;
                let r0 = if op.code == OpCode::CallHelper {
                    ctx.invoke_slot(op.imm as usize, args)
                } else {
                    ctx.invoke_id(dst!(op), args)
                };
                if ctx.status != STATUS_RUNNING {
                    return ctx.take_outcome();
                }
                reg[0] = r0;
                input_lo = ctx.input_ptr;
                input_len = ctx.input_len;
            }
            OpCode::CallLocal => {
                if depth == MAX_CALL_FRAMES - 1 {
                    return Err(ExecError::CallDepth {
                        index: index!(),
                        max: MAX_CALL_FRAMES,
                    });
                }
                let size = op.imm;
                // SAFETY: see above.
                let Some(top) = (unsafe { (*arena).alloc(size) }) else {
                    // SAFETY: see above.
                    let a = unsafe { &*arena };
                    return Err(ExecError::StackExhausted {
                        program: program.to_string(),
                        index: index!(),
                        needed: size,
                        available: a.available(),
                        capacity: a.capacity(),
                    });
                };
                if CHECKED {
                    // Unverified programs may read before writing: never expose
                    // stale data from earlier frames.
                    // SAFETY: the frame was just allocated from the arena.
                    unsafe { std::ptr::write_bytes((top - size) as *mut u8, 0, size as usize) };
                }
                // SAFETY: depth < MAX_CALL_FRAMES - 1 checked above.
                *unsafe { frames.get_unchecked_mut(depth) } = CallFrame {
                    ret: ip,
                    saved: [reg[6], reg[7], reg[8], reg[9]],
                    fp: reg[10],
                    size,
                    loops,
                };
                loops = MAY_GOTO_MAX_LOOPS;
                depth += 1;
                reg[10] = top;
                stack_lo = top - size;
                stack_len = stack_hi - stack_lo;
                goto!(op.off);
            }
            OpCode::Exit => {
                if depth == 0 {
                    return Ok(reg[0]);
                }
                depth -= 1;
                // SAFETY: depth < MAX_CALL_FRAMES - 1.
                let f = *unsafe { frames.get_unchecked(depth) };
                reg[6] = f.saved[0];
                reg[7] = f.saved[1];
                reg[8] = f.saved[2];
                reg[9] = f.saved[3];
                reg[10] = f.fp;
                loops = f.loops;
                // SAFETY: releasing the frame allocated by the matching call.
                unsafe { (*arena).free(f.size) };
                stack_lo += f.size;
                stack_len = stack_hi - stack_lo;
                ip = f.ret;
            }

            // ---------------- loads and stores ----------------
            OpCode::Lddw => {
                dst!(op) = op.imm;
                // SAFETY: the second half of an lddw is followed by at least the sentinel.
                ip = unsafe { ip.add(1) };
            }
            OpCode::LdAbsB => reg[0] = u8::from_be_bytes(packet!(op.imm as u32, 1)) as u64,
            OpCode::LdAbsH => reg[0] = u16::from_be_bytes(packet!(op.imm as u32, 2)) as u64,
            OpCode::LdAbsW => reg[0] = u32::from_be_bytes(packet!(op.imm as u32, 4)) as u64,
            OpCode::LdIndB => {
                let off = (src!(op) as u32).wrapping_add(op.imm as u32);
                reg[0] = u8::from_be_bytes(packet!(off, 1)) as u64
            }
            OpCode::LdIndH => {
                let off = (src!(op) as u32).wrapping_add(op.imm as u32);
                reg[0] = u16::from_be_bytes(packet!(off, 2)) as u64
            }
            OpCode::LdIndW => {
                let off = (src!(op) as u32).wrapping_add(op.imm as u32);
                reg[0] = u32::from_be_bytes(packet!(off, 4)) as u64
            }
            OpCode::LdxB => dst!(op) = load!(op, u8) as u64,
            OpCode::LdxH => dst!(op) = load!(op, u16) as u64,
            OpCode::LdxW => dst!(op) = load!(op, u32) as u64,
            OpCode::LdxDW => dst!(op) = load!(op, u64),
            OpCode::LdxSB => dst!(op) = load!(op, i8) as i64 as u64,
            OpCode::LdxSH => dst!(op) = load!(op, i16) as i64 as u64,
            OpCode::LdxSW => dst!(op) = load!(op, i32) as i64 as u64,
            OpCode::StB => store!(op, u8, op.imm),
            OpCode::StH => store!(op, u16, op.imm),
            OpCode::StW => store!(op, u32, op.imm),
            OpCode::StDW => store!(op, u64, op.imm),
            OpCode::StxB => store!(op, u8, src!(op)),
            OpCode::StxH => store!(op, u16, src!(op)),
            OpCode::StxW => store!(op, u32, src!(op)),
            OpCode::StxDW => store!(op, u64, src!(op)),

            // ---------------- atomics ----------------
            OpCode::AAdd32 => atomic32!(op, fetch_add, false),
            OpCode::AOr32 => atomic32!(op, fetch_or, false),
            OpCode::AAnd32 => atomic32!(op, fetch_and, false),
            OpCode::AXor32 => atomic32!(op, fetch_xor, false),
            OpCode::AFAdd32 => atomic32!(op, fetch_add, true),
            OpCode::AFOr32 => atomic32!(op, fetch_or, true),
            OpCode::AFAnd32 => atomic32!(op, fetch_and, true),
            OpCode::AFXor32 => atomic32!(op, fetch_xor, true),
            OpCode::AXchg32 => atomic32!(op, swap, true),
            OpCode::ACmpxchg32 => {
                let p = atomic_ptr!(op, u32);
                // SAFETY: aligned and valid (checked, or verified).
                let a = unsafe { AtomicU32::from_ptr(p) };
                let old = match a.compare_exchange(
                    reg[0] as u32,
                    src!(op) as u32,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(v) | Err(v) => v,
                };
                reg[0] = old as u64;
            }
            OpCode::AAdd64 => atomic64!(op, fetch_add, false),
            OpCode::AOr64 => atomic64!(op, fetch_or, false),
            OpCode::AAnd64 => atomic64!(op, fetch_and, false),
            OpCode::AXor64 => atomic64!(op, fetch_xor, false),
            OpCode::AFAdd64 => atomic64!(op, fetch_add, true),
            OpCode::AFOr64 => atomic64!(op, fetch_or, true),
            OpCode::AFAnd64 => atomic64!(op, fetch_and, true),
            OpCode::AFXor64 => atomic64!(op, fetch_xor, true),
            OpCode::AXchg64 => atomic64!(op, swap, true),
            OpCode::ACmpxchg64 => {
                let p = atomic_ptr!(op, u64);
                // SAFETY: aligned and valid (checked, or verified).
                let a = unsafe { AtomicU64::from_ptr(p) };
                let old = match a.compare_exchange(
                    reg[0],
                    src!(op),
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                ) {
                    Ok(v) | Err(v) => v,
                };
                reg[0] = old;
            }

            OpCode::Invalid | OpCode::FellOff => {
                return Err(ExecError::FellOffEnd { index: index!() });
            }
        }
    }
}

#[inline(always)]
fn sdiv64(a: u64, b: u64) -> u64 {
    if b == 0 {
        0
    } else {
        (a as i64).wrapping_div(b as i64) as u64
    }
}

#[inline(always)]
fn smod64(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        (a as i64).wrapping_rem(b as i64) as u64
    }
}

#[inline(always)]
fn div32(a: u64, b: u64) -> u64 {
    (a as u32).checked_div(b as u32).unwrap_or(0) as u64
}

#[inline(always)]
fn mod32(a: u64, b: u64) -> u64 {
    let a = a as u32;
    a.checked_rem(b as u32).unwrap_or(a) as u64
}

#[inline(always)]
fn sdiv32(a: u64, b: u64) -> u64 {
    let b = b as i32;
    if b == 0 {
        0
    } else {
        (a as i32).wrapping_div(b) as u32 as u64
    }
}

#[inline(always)]
fn smod32(a: u64, b: u64) -> u64 {
    let b = b as i32;
    if b == 0 {
        a as u32 as u64
    } else {
        (a as i32).wrapping_rem(b) as u32 as u64
    }
}
