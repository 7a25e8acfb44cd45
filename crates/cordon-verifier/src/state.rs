//! Abstract machine state: registers, stack slots, call frames, references, locks.

use crate::proto::ObjTypeId;
use crate::scalar::Scalar;

/// The type of a register's value (Linux's `enum bpf_reg_type`, with the
/// MAYBE_NULL / RDONLY modifiers as separate fields on [`Reg`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegType {
    NotInit,
    Scalar,
    Ctx,
    ConstMapPtr,
    MapValue,
    MapKey,
    Stack,
    Packet,
    PacketMeta,
    PacketEnd,
    /// Sized memory (ringbuf record, iterator element, global func arg).
    Mem,
    /// A host object from a kfunc.
    BtfId,
    /// Address of a subprogram (`lddw src=4`).
    Func,
}

impl RegType {
    pub fn is_pointer(self) -> bool {
        !matches!(self, RegType::NotInit | RegType::Scalar)
    }
    pub fn is_packet(self) -> bool {
        matches!(self, RegType::Packet | RegType::PacketMeta)
    }
    /// The name Linux's log uses.
    pub fn name(self) -> &'static str {
        match self {
            RegType::NotInit => "?",
            RegType::Scalar => "scalar",
            RegType::Ctx => "ctx",
            RegType::ConstMapPtr => "map_ptr",
            RegType::MapValue => "map_value",
            RegType::MapKey => "map_key",
            RegType::Stack => "fp",
            RegType::Packet => "pkt",
            RegType::PacketMeta => "pkt_meta",
            RegType::PacketEnd => "pkt_end",
            RegType::Mem => "mem",
            RegType::BtfId => "ptr_",
            RegType::Func => "func",
        }
    }
}

/// Flag in a scalar's [`Reg::id`]: the scalar is its linked base plus the
/// constant [`Reg::off`] (Linux's BPF_ADD_CONST).
pub const ADD_CONST: u32 = 1 << 30;

/// One register's abstract value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reg {
    pub ty: RegType,
    /// PTR_MAYBE_NULL.
    pub maybe_null: bool,
    /// MEM_RDONLY (for `Mem`).
    pub rdonly: bool,
    /// Fixed offset of a pointer; for a scalar whose id has [`ADD_CONST`],
    /// its difference to the linked base scalar.
    pub off: i32,
    /// Scalar value, or the variable part of a pointer's offset.
    pub var: Scalar,
    /// Identity shared by copies: NULL checks and linked scalars.
    pub id: u32,
    /// Reference this pointer carries (0 = unreferenced).
    pub ref_obj_id: u32,
    /// Packet pointers: bytes known readable from the packet pointer id's base.
    pub range: i32,
    /// Map index (map pointers, values, keys).
    pub map: u32,
    /// Memory size (`Mem`), subprogram index (`Func`).
    pub size: u32,
    /// Host object type (`BtfId`).
    pub obj: Option<ObjTypeId>,
    /// Frame number a stack pointer points into.
    pub frameno: u8,
    /// Scalars in checkpoint states: the exact value matters to some
    /// continuation (Linux's precision marks). Imprecise scalars match any
    /// scalar when pruning.
    pub precise: bool,
}

impl Default for Reg {
    fn default() -> Self {
        Reg::not_init()
    }
}

impl Reg {
    pub const fn not_init() -> Reg {
        Reg {
            ty: RegType::NotInit,
            maybe_null: false,
            rdonly: false,
            off: 0,
            var: Scalar::unknown(),
            id: 0,
            ref_obj_id: 0,
            range: 0,
            map: 0,
            size: 0,
            obj: None,
            frameno: 0,
            precise: false,
        }
    }
    pub fn scalar(var: Scalar) -> Reg {
        Reg {
            ty: RegType::Scalar,
            var,
            ..Reg::not_init()
        }
    }
    pub fn unknown() -> Reg {
        Reg::scalar(Scalar::unknown())
    }
    pub fn konst(v: u64) -> Reg {
        Reg::scalar(Scalar::konst(v))
    }
    pub fn ptr(ty: RegType) -> Reg {
        Reg {
            ty,
            var: Scalar::konst(0),
            ..Reg::not_init()
        }
    }
    pub fn stack(frameno: u8) -> Reg {
        Reg {
            frameno,
            ..Reg::ptr(RegType::Stack)
        }
    }
    pub fn is_scalar(&self) -> bool {
        self.ty == RegType::Scalar
    }
    pub fn is_pointer(&self) -> bool {
        self.ty.is_pointer()
    }
    pub fn is_init(&self) -> bool {
        self.ty != RegType::NotInit
    }
    pub fn is_const(&self) -> bool {
        self.is_scalar() && self.var.is_const()
    }
    pub fn is_null(&self) -> bool {
        self.is_scalar() && self.var.const_value() == Some(0)
    }
    /// Pointer whose offset is the known constant `off` (no variable part).
    pub fn fixed_off(&self) -> Option<i64> {
        self.var.const_value().map(|v| self.off as i64 + v as i64)
    }
}

/// What one byte of stack holds (Linux's `STACK_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SlotType {
    #[default]
    Invalid,
    Misc,
    Zero,
    Spill,
    /// Part of an open-coded iterator object.
    Iter,
}

/// Iterator state kept in its first stack slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IterState {
    Active,
    Drained,
}

/// One 8-byte stack slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct StackSlot {
    /// Byte i is the byte at offset `slot_base + i` (little-endian order).
    pub types: [SlotType; 8],
    /// The spilled register (when bytes are `Spill`) or iterator identity.
    pub spilled: Reg,
    /// Bytes the spill covers (8 for a full register spill).
    pub spill_size: u8,
    /// Iterator: `Some` in the first slot of an iterator object.
    pub iter: Option<(IterState, u32)>,
}

impl StackSlot {
    pub fn is_spill(&self) -> bool {
        self.types[0] == SlotType::Spill
    }
    pub fn is_full_spill(&self) -> bool {
        self.types.iter().all(|t| *t == SlotType::Spill) && self.spill_size == 8
    }
}

/// How a frame was entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    Main,
    /// Static subprogram called from `callsite`.
    Call,
    /// Callback of a helper called at `callsite` (bpf_loop).
    Callback,
}

/// One call frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    pub regs: [Reg; 11],
    /// Stack slots; index i covers bytes `[-(i+1)*8, -i*8)` of the frame.
    pub stack: Vec<StackSlot>,
    /// Index of the subprogram this frame runs.
    pub subprog: usize,
    /// Instruction that created the frame (call insn), or usize::MAX for main.
    pub callsite: usize,
    pub frameno: u8,
    pub kind: FrameKind,
}

impl Frame {
    pub fn new(subprog: usize, callsite: usize, frameno: u8, kind: FrameKind) -> Frame {
        let mut regs = [Reg::not_init(); 11];
        regs[10] = Reg::stack(frameno);
        Frame {
            regs,
            stack: Vec::new(),
            subprog,
            callsite,
            frameno,
            kind,
        }
    }
    /// Ensure slot `spi` exists.
    pub fn grow(&mut self, spi: usize) {
        if self.stack.len() <= spi {
            self.stack.resize(spi + 1, StackSlot::default());
        }
    }
    pub fn slot(&self, spi: usize) -> Option<&StackSlot> {
        self.stack.get(spi)
    }
}

/// What a reference is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefKind {
    /// A host object from an acquire kfunc (its type, the acquiring kfunc id).
    Object {
        obj: Option<ObjTypeId>,
        acquired_by: u32,
    },
    /// A ring buffer record from `ringbuf_reserve` (map index).
    RingbufRecord { map: u32 },
    /// An open-coded iterator on the stack.
    Iter,
}

/// An acquired reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RefState {
    pub id: u32,
    pub insn: usize,
    pub kind: RefKind,
}

/// The held spin lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LockState {
    /// Map whose value holds the lock.
    pub map: u32,
    /// Id of the map value pointer (0 for a direct value address).
    pub ptr_id: u32,
    pub insn: usize,
}

/// The whole abstract state of one path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    pub frames: Vec<Frame>,
    pub refs: Vec<RefState>,
    pub lock: Option<LockState>,
    /// Verifying a global function on its own / a callback body.
    pub in_callback: u32,
    /// Callback bodies completed on this path (Linux's
    /// callback_unroll_depth): two states in different iterations of a
    /// callback are never "the same state looping", so it only takes part
    /// in the infinite-loop check, not in pruning.
    pub callback_unroll: u32,
    /// `may_goto` fall-throughs taken on this path (Linux's may_goto_depth):
    /// at a `may_goto`, an in-progress state with a different depth that
    /// includes the current one ends the path (the loop converges), so a loop
    /// whose only exit is a `may_goto` is not an infinite loop.
    pub may_goto_depth: u32,
}

impl State {
    pub fn cur(&self) -> &Frame {
        self.frames.last().expect("at least one frame")
    }
    pub fn cur_mut(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("at least one frame")
    }
    pub fn depth(&self) -> usize {
        self.frames.len() - 1
    }
    pub fn reg(&self, r: u8) -> &Reg {
        &self.cur().regs[r as usize]
    }
    pub fn reg_mut(&mut self, r: u8) -> &mut Reg {
        &mut self.cur_mut().regs[r as usize]
    }
    /// Apply `f` to every register and spilled register in every frame.
    pub fn for_each_reg(&mut self, mut f: impl FnMut(&mut Reg)) {
        for fr in &mut self.frames {
            for r in fr.regs.iter_mut() {
                f(r);
            }
            for s in fr.stack.iter_mut() {
                if s.is_spill() {
                    f(&mut s.spilled);
                }
            }
        }
    }
    pub fn find_ref(&self, id: u32) -> Option<&RefState> {
        self.refs.iter().find(|r| r.id == id)
    }
}
