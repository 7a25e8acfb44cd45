//! Loads unmodified clang/libbpf-style BPF ELF objects (`clang -target bpf -O2 -g`).
//!
//! [`Object::parse`] finds every `SEC()` program, links each one with exactly
//! the subprograms it reaches, and rewrites every relocation so the result is
//! self-contained (the kernel's "index" pseudo sources):
//!
//! * map reference: `lddw src=BPF_PSEUDO_MAP_IDX (5), imm = index into Object::maps`;
//! * global data: `lddw src=BPF_PSEUDO_MAP_IDX_VALUE (6), imm = map index, next imm = offset`;
//! * kfunc call: `call src=2, imm = index into Object::kfuncs` (resolved by name);
//! * bpf-to-bpf call: `call src=1`, and function address (`lddw src=4`), with the
//!   final relative `imm`.
//!
//! Every linked program passes [`cordon_isa::Program::new`].

pub mod btf;
mod core_relo;
mod elf;
mod error;
mod link;
mod maps;
mod prog_type;
mod report;
mod single;

use cordon_isa::{DecodeError, Insn, Program};

pub use btf::{Btf, BtfError, BtfExt, BtfType, CoreReloKind};
pub use error::ObjectError;
pub use maps::{
    BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, MAP_TYPES, MapOrigin, MapSpec, SlotInit, map_type_name,
};
pub use prog_type::{BPF_F_XDP_HAS_FRAGS, ProgType, section_prog_flags};

/// A parsed and linked BPF object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    /// Programs in section/offset order.
    pub programs: Vec<ProgramSpec>,
    /// Maps: BTF-defined (`.maps`), then legacy (`maps`), then global data sections.
    pub maps: Vec<MapSpec>,
    /// kfunc names; a `call src=2` has `imm` = index into this list.
    pub kfuncs: Vec<String>,
    /// Contents of the `license` section.
    pub license: Option<String>,
    /// Contents of the legacy `version` section.
    pub kernel_version: Option<u32>,
    /// The object's BTF (`.BTF`), with DATASEC sizes and offsets filled in.
    pub btf: Option<Btf>,
}

/// Linkage of a (sub)program, from its ELF symbol binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FuncLinkage {
    /// `static` function: verified in its caller's context.
    Static,
    /// Global (non-static) function: verified on its own by Linux.
    Global,
}

/// One function inside a linked program. `functions[0]` is the program itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionSpan {
    pub name: String,
    /// ELF section the code came from.
    pub section: String,
    /// First instruction slot in [`ProgramSpec::insns`].
    pub start: usize,
    /// Number of instruction slots.
    pub len: usize,
    pub linkage: FuncLinkage,
    /// BTF `FUNC` id, when the object has BTF.
    pub btf_id: Option<u32>,
}

/// `bpf_func_info` for the linked program (`insn` in slots).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuncInfo {
    pub insn: usize,
    pub type_id: u32,
}

/// `bpf_line_info` for the linked program, strings resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineInfo {
    pub insn: usize,
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The source line's text (trimmed of surrounding whitespace).
    pub text: String,
    /// Raw `.BTF` string offsets of the file name and the (untrimmed) line
    /// text, valid in [`Btf::to_bytes`] / [`Btf::for_kernel`] output too: what
    /// a kernel `bpf_line_info` needs.
    pub file_name_off: u32,
    pub line_off: u32,
}

/// What a relocation turned an instruction into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelocKind {
    /// `lddw src=5`: map `map` (index into [`Object::maps`]).
    Map { map: usize },
    /// `lddw src=6`: address of `offset` inside global-data map `map`.
    MapValue { map: usize, offset: u32 },
    /// `call src=2`: kfunc `kfunc` (index into [`Object::kfuncs`]).
    Kfunc { kfunc: usize },
    /// `call src=1` to function `function` starting at slot `target`.
    Call { target: usize, function: String },
    /// `lddw src=4`: address of function `function` at slot `target`.
    FuncAddr { target: usize, function: String },
}

/// A relocated instruction of a linked program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relocation {
    /// Instruction slot in [`ProgramSpec::insns`].
    pub insn: usize,
    /// ELF symbol the relocation named (or the callee for relocation-less local calls).
    pub symbol: String,
    pub kind: RelocKind,
}

/// A CO-RE relocation of a linked program. Targets are resolved against the
/// object's own BTF (the local type *is* the target type), so `value` is what
/// the instruction holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreRelocation {
    pub insn: usize,
    pub kind: CoreReloKind,
    pub type_id: u32,
    pub type_name: String,
    /// Access string (`0:2:1`).
    pub access: String,
    /// The relocated value (offset, size, existence, ...).
    pub value: u64,
}

/// A program of the object, linked with the subprograms it reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramSpec {
    /// Function name of the program.
    pub name: String,
    /// `SEC()` name.
    pub section: String,
    pub prog_type: ProgType,
    /// Linked, relocated instruction slots.
    pub insns: Vec<Insn>,
    /// Functions in the linked code, `[0]` is the program itself.
    pub functions: Vec<FunctionSpan>,
    /// Index into `functions` of the exception callback named by the BTF decl
    /// tag `exception_callback:<fn>` on the program, if any.
    pub exception_callback: Option<usize>,
    pub func_info: Vec<FuncInfo>,
    pub line_info: Vec<LineInfo>,
    pub relocations: Vec<Relocation>,
    pub core_relocations: Vec<CoreRelocation>,
    /// Names of the kfuncs this program calls.
    pub kfuncs: Vec<String>,
}

impl ProgramSpec {
    /// The `BPF_PROG_LOAD` `prog_flags` its section implies (libbpf's rules,
    /// e.g. [`BPF_F_XDP_HAS_FRAGS`] for `SEC("xdp.frags")`).
    pub fn prog_flags(&self) -> u32 {
        section_prog_flags(&self.section)
    }

    /// Decode and validate the linked code.
    pub fn program(&self) -> Result<Program, DecodeError> {
        Program::new(self.insns.clone())
    }

    /// Source line of instruction `insn`: the last line-info record at or before it.
    pub fn line_at(&self, insn: usize) -> Option<&LineInfo> {
        let i = self.line_info.partition_point(|l| l.insn <= insn);
        self.line_info[..i].last()
    }

    /// The function containing instruction `insn`.
    pub fn function_at(&self, insn: usize) -> Option<&FunctionSpan> {
        self.functions
            .iter()
            .find(|f| insn >= f.start && insn < f.start + f.len)
    }

    /// `file:line:column: text` of an instruction, for messages.
    pub fn describe_insn(&self, insn: usize) -> Option<String> {
        self.line_at(insn)
            .map(|l| format!("{}:{}:{}: {}", l.file, l.line, l.column, l.text))
    }
}

impl Object {
    /// Parse and link an ELF object. Never panics on malformed input.
    pub fn parse(bytes: &[u8]) -> Result<Object, ObjectError> {
        link::load(bytes)
    }

    /// The program whose function name is `name`.
    pub fn program(&self, name: &str) -> Option<&ProgramSpec> {
        self.programs.iter().find(|p| p.name == name)
    }

    /// The map named `name` and its index.
    pub fn map(&self, name: &str) -> Option<(usize, &MapSpec)> {
        self.maps.iter().enumerate().find(|(_, m)| m.name == name)
    }

    /// Human-readable report (programs, maps, relocations, kfuncs) for `cordon inspect`.
    pub fn report(&self) -> String {
        self.to_string()
    }
}
