//! Opcode field constants (RFC 9669, section 3 onwards).
//!
//! An opcode byte is split three ways depending on its class:
//! * ALU / ALU64 / JMP / JMP32: `op (4 bits) | source (1 bit) | class (3 bits)`
//! * LD / LDX / ST / STX: `mode (3 bits) | size (2 bits) | class (3 bits)`

// Instruction classes (low 3 bits).
pub const CLS_MASK: u8 = 0x07;
pub const CLS_LD: u8 = 0x00;
pub const CLS_LDX: u8 = 0x01;
pub const CLS_ST: u8 = 0x02;
pub const CLS_STX: u8 = 0x03;
pub const CLS_ALU: u8 = 0x04;
pub const CLS_JMP: u8 = 0x05;
pub const CLS_JMP32: u8 = 0x06;
pub const CLS_ALU64: u8 = 0x07;

// Source bit for ALU and JMP classes.
pub const SRC_MASK: u8 = 0x08;
/// Use the 32-bit immediate as the source operand.
pub const SRC_K: u8 = 0x00;
/// Use the source register as the source operand.
pub const SRC_X: u8 = 0x08;

// Operation (high 4 bits) for ALU classes.
pub const OP_MASK: u8 = 0xf0;
pub const ALU_ADD: u8 = 0x00;
pub const ALU_SUB: u8 = 0x10;
pub const ALU_MUL: u8 = 0x20;
pub const ALU_DIV: u8 = 0x30;
pub const ALU_OR: u8 = 0x40;
pub const ALU_AND: u8 = 0x50;
pub const ALU_LSH: u8 = 0x60;
pub const ALU_RSH: u8 = 0x70;
pub const ALU_NEG: u8 = 0x80;
pub const ALU_MOD: u8 = 0x90;
pub const ALU_XOR: u8 = 0xa0;
pub const ALU_MOV: u8 = 0xb0;
pub const ALU_ARSH: u8 = 0xc0;
pub const ALU_END: u8 = 0xd0;

// Operation (high 4 bits) for JMP classes.
pub const JMP_JA: u8 = 0x00;
pub const JMP_JEQ: u8 = 0x10;
pub const JMP_JGT: u8 = 0x20;
pub const JMP_JGE: u8 = 0x30;
pub const JMP_JSET: u8 = 0x40;
pub const JMP_JNE: u8 = 0x50;
pub const JMP_JSGT: u8 = 0x60;
pub const JMP_JSGE: u8 = 0x70;
pub const JMP_CALL: u8 = 0x80;
pub const JMP_EXIT: u8 = 0x90;
pub const JMP_JLT: u8 = 0xa0;
pub const JMP_JLE: u8 = 0xb0;
pub const JMP_JSLT: u8 = 0xc0;
pub const JMP_JSLE: u8 = 0xd0;
/// `BPF_JCOND`: conditional pseudo-jumps; `src == 0` is `may_goto`.
pub const JMP_JCOND: u8 = 0xe0;
/// `may_goto` (src field of a `BPF_JCOND` instruction).
pub const JCOND_MAY_GOTO: u8 = 0;
/// Loop budget of one program frame for `may_goto` (Linux `BPF_MAX_LOOPS`):
/// the frame's first `MAY_GOTO_MAX_LOOPS` executions fall through, later ones jump.
pub const MAY_GOTO_MAX_LOOPS: u64 = 8 * 1024 * 1024;

// Size (bits 3-4) for load/store classes.
pub const SIZE_MASK: u8 = 0x18;
pub const SIZE_W: u8 = 0x00;
pub const SIZE_H: u8 = 0x08;
pub const SIZE_B: u8 = 0x10;
pub const SIZE_DW: u8 = 0x18;

// Mode (bits 5-7) for load/store classes.
pub const MODE_MASK: u8 = 0xe0;
pub const MODE_IMM: u8 = 0x00;
pub const MODE_ABS: u8 = 0x20;
pub const MODE_IND: u8 = 0x40;
pub const MODE_MEM: u8 = 0x60;
pub const MODE_MEMSX: u8 = 0x80;
pub const MODE_ATOMIC: u8 = 0xc0;

// Atomic operations (the `imm` field of an atomic STX).
pub const ATOMIC_FETCH: i32 = 0x01;
pub const ATOMIC_ADD: i32 = 0x00;
pub const ATOMIC_OR: i32 = 0x40;
pub const ATOMIC_AND: i32 = 0x50;
pub const ATOMIC_XOR: i32 = 0xa0;
pub const ATOMIC_XCHG: i32 = 0xe0 | ATOMIC_FETCH;
pub const ATOMIC_CMPXCHG: i32 = 0xf0 | ATOMIC_FETCH;

// Pseudo sources of the 16-byte `lddw` (the `src` field).
pub const PSEUDO_IMM64: u8 = 0;
pub const PSEUDO_MAP_FD: u8 = 1;
pub const PSEUDO_MAP_VALUE: u8 = 2;
pub const PSEUDO_BTF_ID: u8 = 3;
pub const PSEUDO_FUNC: u8 = 4;
pub const PSEUDO_MAP_IDX: u8 = 5;
pub const PSEUDO_MAP_IDX_VALUE: u8 = 6;

// Call kinds (the `src` field of `call`).
pub const CALL_HELPER: u8 = 0;
pub const CALL_LOCAL: u8 = 1;
pub const CALL_KFUNC: u8 = 2;

// Whole opcodes used often enough to deserve a name.
pub const OP_LDDW: u8 = CLS_LD | MODE_IMM | SIZE_DW; // 0x18
pub const OP_CALL: u8 = CLS_JMP | JMP_CALL | SRC_K; // 0x85
pub const OP_CALLX: u8 = CLS_JMP | JMP_CALL | SRC_X; // 0x8d
pub const OP_EXIT: u8 = CLS_JMP | JMP_EXIT; // 0x95
pub const OP_JA: u8 = CLS_JMP | JMP_JA; // 0x05
pub const OP_JA32: u8 = CLS_JMP32 | JMP_JA; // 0x06
pub const OP_MAY_GOTO: u8 = CLS_JMP | JMP_JCOND; // 0xe5

/// Number of general purpose registers (r0..r10).
pub const NUM_REGS: usize = 11;
/// The read-only frame pointer.
pub const REG_FP: u8 = 10;
