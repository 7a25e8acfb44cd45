//! Whole-object loading: functions, programs, linking and relocation.

use std::collections::{BTreeMap, HashMap, HashSet};

use cordon_isa::Insn;
use cordon_isa::opcode::{
    CALL_KFUNC, CALL_LOCAL, OP_CALL, OP_LDDW, PSEUDO_FUNC, PSEUDO_MAP_IDX, PSEUDO_MAP_IDX_VALUE,
};

use crate::btf::{Btf, BtfExt, BtfType};
use crate::elf::{Elf, R_BPF_64_32, R_BPF_64_64, STB_LOCAL, STT_FUNC};
use crate::maps::{self, MapLoc, MapOrigin};
use crate::{
    FuncInfo, FuncLinkage, FunctionSpan, LineInfo, Object, ObjectError, ProgType, ProgramSpec,
    RelocKind, Relocation,
};

/// A function of an executable section.
struct Func {
    section: usize,
    /// First slot within the section.
    start: usize,
    len: usize,
    name: String,
    global: bool,
}

pub(crate) fn load(bytes: &[u8]) -> Result<Object, ObjectError> {
    let elf = Elf::parse(bytes)?;

    let mut btf = match elf.section_by_name(".BTF") {
        Some(s) => Some(Btf::parse(s.data).map_err(ObjectError::Btf)?),
        None => None,
    };
    if let Some(b) = btf.as_mut() {
        fixup_datasecs(&elf, b);
    }
    let ext = match (elf.section_by_name(".BTF.ext"), btf.as_ref()) {
        (Some(s), Some(b)) => Some(BtfExt::parse(s.data, b).map_err(ObjectError::BtfExt)?),
        _ => None,
    };

    let license = elf.section_by_name("license").map(|s| {
        let end = s.data.iter().position(|&b| b == 0).unwrap_or(s.data.len());
        String::from_utf8_lossy(&s.data[..end]).into_owned()
    });
    let kernel_version = match elf.section_by_name("version") {
        Some(s) if s.data.len() == 4 => Some(u32::from_le_bytes(
            s.data.try_into().expect("4 bytes checked"),
        )),
        Some(s) => {
            return Err(ObjectError::Section {
                section: "version".into(),
                problem: format!("must be 4 bytes, found {}", s.data.len()),
            });
        }
        None => None,
    };

    let (maps, map_locs) = maps::collect(&elf, btf.as_ref())?;
    let (funcs, code) = collect_functions(&elf)?;

    let mut linker = Linker {
        elf: &elf,
        funcs: &funcs,
        code: &code,
        maps: &maps,
        map_locs: &map_locs,
        btf: btf.as_ref(),
        ext: ext.as_ref(),
        kfuncs: Vec::new(),
        kfunc_index: HashMap::new(),
        ksyms: btf.as_ref().map(ksym_names),
    };
    let mut programs = Vec::new();
    for (fi, f) in funcs.iter().enumerate() {
        let sec = elf.section(f.section).expect("function section exists");
        if sec.name == ".text" {
            continue;
        }
        programs.push(linker.link(fi, &sec.name)?);
    }
    let kfuncs = linker.kfuncs;
    Ok(Object {
        programs,
        maps,
        kfuncs,
        license,
        kernel_version,
        btf,
    })
}

/// Names of the `__ksym` externs: the entries of DATASEC `.ksyms`.
fn ksym_names(btf: &Btf) -> HashSet<String> {
    let Some(id) = btf.find_by_name(".ksyms", "datasec") else {
        return HashSet::new();
    };
    let Some(BtfType::DataSec { vars, .. }) = btf.type_by_id(id) else {
        return HashSet::new();
    };
    vars.iter()
        .filter_map(|v| btf.type_by_id(v.type_id).and_then(|t| t.name()))
        .map(String::from)
        .collect()
}

/// clang leaves DATASEC sizes and variable offsets for the loader to fill in.
fn fixup_datasecs(elf: &Elf<'_>, btf: &mut Btf) {
    let secs: Vec<(u32, String)> = btf
        .types()
        .filter_map(|(id, t)| match t {
            BtfType::DataSec { name, .. } => Some((id, name.clone())),
            _ => None,
        })
        .collect();
    for (id, name) in secs {
        let Some(sec) = elf.section_by_name(&name) else {
            continue;
        };
        let Ok(size) = u32::try_from(sec.size) else {
            continue;
        };
        let index = sec.index;
        let offset_of = |var: &str| {
            elf.symbol_named(index, var)
                .and_then(|s| u32::try_from(s.value).ok())
        };
        btf.fixup_datasec(id, size, &offset_of);
    }
}

type Code = BTreeMap<usize, Vec<Insn>>;

fn collect_functions(elf: &Elf<'_>) -> Result<(Vec<Func>, Code), ObjectError> {
    let mut funcs = Vec::new();
    let mut code = BTreeMap::new();
    for sec in elf.sections.iter().filter(|s| s.is_exec()) {
        if sec.data.len() % 8 != 0 {
            return Err(ObjectError::Section {
                section: sec.name.clone(),
                problem: format!(
                    "code size {} is not a multiple of 8 (instruction size)",
                    sec.data.len()
                ),
            });
        }
        let insns: Vec<Insn> = sec
            .data
            .chunks_exact(8)
            .map(|c| Insn::from_bytes(c.try_into().expect("chunk of 8")))
            .collect();
        let total = insns.len();
        code.insert(sec.index, insns);
        let mut syms: Vec<_> = elf
            .symbols_in(sec.index)
            .filter(|s| s.st_type == STT_FUNC)
            .collect();
        syms.sort_by_key(|s| s.value);
        let mut local: Vec<Func> = Vec::new();
        for (k, s) in syms.iter().enumerate() {
            let bad = |problem: &str| ObjectError::Function {
                section: sec.name.clone(),
                name: s.name.clone(),
                offset: s.value,
                size: s.size,
                problem: problem.to_string(),
            };
            if s.name.is_empty() {
                return Err(bad("has no name"));
            }
            if s.value % 8 != 0 || s.size % 8 != 0 {
                return Err(bad("is not aligned to instructions (8 bytes)"));
            }
            let start = (s.value / 8) as usize;
            let size = if s.size == 0 {
                let next = syms.get(k + 1).map_or(total, |n| (n.value / 8) as usize);
                next.saturating_sub(start)
            } else {
                (s.size / 8) as usize
            };
            if start.checked_add(size).is_none_or(|e| e > total) || size == 0 {
                return Err(bad(&format!(
                    "does not fit the section ({} instructions)",
                    total
                )));
            }
            if let Some(prev) = local.last()
                && prev.start + prev.len > start
            {
                return Err(bad(&format!("overlaps function {}", prev.name)));
            }
            local.push(Func {
                section: sec.index,
                start,
                len: size,
                name: s.name.clone(),
                global: s.bind != STB_LOCAL,
            });
        }
        if local.is_empty() && total > 0 {
            return Err(ObjectError::Section {
                section: sec.name.clone(),
                problem: "contains code but no function symbols".into(),
            });
        }
        funcs.extend(local);
    }
    funcs.sort_by_key(|f| (f.section, f.start));
    Ok((funcs, code))
}

struct Linker<'l, 'a> {
    elf: &'l Elf<'a>,
    funcs: &'l [Func],
    code: &'l Code,
    maps: &'l [maps::MapSpec],
    map_locs: &'l [MapLoc],
    btf: Option<&'l Btf>,
    ext: Option<&'l BtfExt>,
    kfuncs: Vec<String>,
    kfunc_index: HashMap<String, usize>,
    /// Names in BTF DATASEC `.ksyms` (the `__ksym` externs), when the object has BTF.
    ksyms: Option<HashSet<String>>,
}

/// Per-program linking state.
struct Out {
    insns: Vec<Insn>,
    /// `(function index, start slot in insns)` in placement order.
    placed: Vec<(usize, usize)>,
    base_of: HashMap<usize, usize>,
    relocations: Vec<Relocation>,
    kfuncs: Vec<String>,
}

impl Out {
    fn place(&mut self, funcs: &[Func], code: &Code, fi: usize) -> usize {
        if let Some(&base) = self.base_of.get(&fi) {
            return base;
        }
        let f = &funcs[fi];
        let base = self.insns.len();
        let sec = &code[&f.section];
        self.insns.extend_from_slice(&sec[f.start..f.start + f.len]);
        self.placed.push((fi, base));
        self.base_of.insert(fi, base);
        base
    }
}

impl Linker<'_, '_> {
    fn sec_name(&self, index: usize) -> String {
        self.elf
            .section(index)
            .map_or_else(|| format!("#{index}"), |s| s.name.clone())
    }

    fn link(&mut self, main: usize, section: &str) -> Result<ProgramSpec, ObjectError> {
        let name = self.funcs[main].name.clone();
        let mut out = Out {
            insns: Vec::new(),
            placed: Vec::new(),
            base_of: HashMap::new(),
            relocations: Vec::new(),
            kfuncs: Vec::new(),
        };
        out.place(self.funcs, self.code, main);

        let exception_cb = self.exception_callback(&name)?;
        let mut cb_index = None;
        if let Some(cb) = exception_cb {
            out.place(self.funcs, self.code, cb);
            cb_index = Some(1);
        }

        let mut i = 0;
        while i < out.placed.len() {
            let (fi, base) = out.placed[i];
            self.relocate_function(&mut out, fi, base)?;
            i += 1;
        }

        let spec = self.finish(out, &name, section, cb_index)?;
        spec.program()
            .map_err(|error| ObjectError::InvalidProgram {
                program: name.clone(),
                error,
            })?;
        Ok(spec)
    }

    /// The function named by the `exception_callback:<fn>` decl tag on `prog`.
    fn exception_callback(&self, prog: &str) -> Result<Option<usize>, ObjectError> {
        let Some(btf) = self.btf else { return Ok(None) };
        let Some(id) = btf.find_func(prog) else {
            return Ok(None);
        };
        let mut found = None;
        for (comp, tag) in btf.decl_tags(id) {
            let Some(cb) = tag.strip_prefix("exception_callback:") else {
                continue;
            };
            let err = |problem: String| ObjectError::Program {
                program: prog.to_string(),
                problem,
            };
            if comp != -1 {
                return Err(err(format!(
                    "decl tag `{tag}` must be on the function itself"
                )));
            }
            if found.is_some() {
                return Err(err("more than one exception_callback decl tag".into()));
            }
            let fi = self
                .funcs
                .iter()
                .position(|f| f.name == cb)
                .ok_or_else(|| {
                    err(format!(
                        "exception callback {cb} is not a function of the object"
                    ))
                })?;
            found = Some(fi);
        }
        Ok(found)
    }

    fn relocate_function(
        &mut self,
        out: &mut Out,
        fi: usize,
        base: usize,
    ) -> Result<(), ObjectError> {
        let f = &self.funcs[fi];
        let sec_name = self.sec_name(f.section);
        let mut j = 0;
        while j < f.len {
            let slot = f.start + j;
            let pc = base + j;
            let insn = out.insns[pc];
            let rel = self.elf.rel_at(f.section, slot as u64 * 8);
            let sym_name =
                |r: crate::elf::Rel| self.elf.symbols[r.sym].display_name(&self.elf.sections);
            if insn.code == OP_LDDW {
                if j + 1 < f.len
                    && let Some(r2) = self.elf.rel_at(f.section, (slot as u64 + 1) * 8)
                {
                    return Err(ObjectError::RelocationInsn {
                        section: sec_name,
                        insn: slot + 1,
                        code: out.insns[pc + 1].code,
                        symbol: sym_name(r2),
                    });
                }
                if j + 1 >= f.len {
                    // Truncated lddw: left for validation to report.
                    j += 1;
                    continue;
                }
                if let Some(r) = rel {
                    self.relocate_lddw(out, f, slot, pc, r)?;
                } else if insn.src == PSEUDO_FUNC {
                    let target = slot as i64 + 1 + insn.imm as i64;
                    let (t, callee) = self.local_target(out, f.section, slot, target)?;
                    out.insns[pc].imm = (t as i64 - (pc as i64 + 1)) as i32;
                    out.relocations.push(Relocation {
                        insn: pc,
                        symbol: callee.clone(),
                        kind: RelocKind::FuncAddr {
                            target: t,
                            function: callee,
                        },
                    });
                }
                j += 2;
                continue;
            }
            if insn.code == OP_CALL {
                self.relocate_call(out, f, slot, pc, rel)?;
            } else if let Some(r) = rel {
                return Err(ObjectError::RelocationInsn {
                    section: sec_name,
                    insn: slot,
                    code: insn.code,
                    symbol: sym_name(r),
                });
            }
            j += 1;
        }
        Ok(())
    }

    /// Resolve a local call/function-address target (section-relative slot) to
    /// a slot of the linked program, placing the callee if needed.
    fn local_target(
        &self,
        out: &mut Out,
        section: usize,
        from_slot: usize,
        target: i64,
    ) -> Result<(usize, String), ObjectError> {
        let bad = |problem: String| ObjectError::BadCall {
            section: self.sec_name(section),
            insn: from_slot,
            target,
            problem,
        };
        // `funcs` is sorted by (section, start) and functions do not overlap.
        let key = (section, usize::try_from(target).unwrap_or(usize::MAX));
        let after = self.funcs.partition_point(|g| (g.section, g.start) <= key);
        let found = after.checked_sub(1).filter(|&i| {
            let g = &self.funcs[i];
            g.section == section && target >= g.start as i64 && target < (g.start + g.len) as i64
        });
        let Some(fi) = found else {
            return Err(bad(format!(
                "not inside any function of section {}",
                self.sec_name(section)
            )));
        };
        let g = &self.funcs[fi];
        if target != g.start as i64 {
            return Err(bad(format!(
                "lands inside function {} at +{}, not at its start",
                g.name,
                target - g.start as i64
            )));
        }
        let b = out.place(self.funcs, self.code, fi);
        Ok((b, g.name.clone()))
    }

    fn relocate_call(
        &mut self,
        out: &mut Out,
        f: &Func,
        slot: usize,
        pc: usize,
        rel: Option<crate::elf::Rel>,
    ) -> Result<(), ObjectError> {
        let insn = out.insns[pc];
        let sec_name = self.sec_name(f.section);
        let (target_sec, target, symbol) = match rel {
            Some(r) => {
                let sym = &self.elf.symbols[r.sym];
                let symbol = sym.display_name(&self.elf.sections);
                if r.r_type != R_BPF_64_32 && r.r_type != R_BPF_64_64 {
                    return Err(ObjectError::RelocationType {
                        section: sec_name,
                        insn: slot,
                        r_type: r.r_type,
                        symbol,
                    });
                }
                if sym.undefined {
                    if sym.name.is_empty() {
                        return Err(ObjectError::Unresolved {
                            section: sec_name,
                            insn: slot,
                            symbol,
                            problem: "call to an unnamed undefined symbol".into(),
                        });
                    }
                    if let Some(ksyms) = &self.ksyms
                        && !ksyms.contains(&sym.name)
                    {
                        return Err(ObjectError::Unresolved {
                            section: sec_name,
                            insn: slot,
                            symbol,
                            problem: "extern function is not a kfunc (not declared __ksym, no entry in BTF DATASEC .ksyms); linking several BPF objects is not supported".into(),
                        });
                    }
                    let next = self.kfuncs.len();
                    let k = *self.kfunc_index.entry(sym.name.clone()).or_insert(next);
                    if k == next {
                        self.kfuncs.push(sym.name.clone());
                    }
                    if !out.kfuncs.contains(&sym.name) {
                        out.kfuncs.push(sym.name.clone());
                    }
                    out.insns[pc] = Insn::new(OP_CALL, 0, CALL_KFUNC, 0, k as i32);
                    out.relocations.push(Relocation {
                        insn: pc,
                        symbol,
                        kind: RelocKind::Kfunc { kfunc: k },
                    });
                    return Ok(());
                }
                let Some(ts) = sym.section.and_then(|i| self.elf.section(i)) else {
                    return Err(ObjectError::Unresolved {
                        section: sec_name,
                        insn: slot,
                        symbol,
                        problem: "symbol is not defined in any section".into(),
                    });
                };
                if !ts.is_exec() {
                    return Err(ObjectError::RelocationTarget {
                        section: sec_name,
                        insn: slot,
                        symbol,
                        problem: format!(
                            "call target is in section {}, which is not code",
                            ts.name
                        ),
                    });
                }
                if !sym.value.is_multiple_of(8) {
                    return Err(ObjectError::RelocationTarget {
                        section: sec_name,
                        insn: slot,
                        symbol,
                        problem: format!("symbol value {} is not instruction-aligned", sym.value),
                    });
                }
                let target = (sym.value / 8) as i64 + insn.imm as i64 + 1;
                (ts.index, target, Some(symbol))
            }
            None => {
                if insn.src != CALL_LOCAL {
                    return Ok(()); // helper call (or kfunc by BTF id): nothing to link
                }
                (f.section, slot as i64 + 1 + insn.imm as i64, None)
            }
        };
        let (t, callee) = if target_sec == f.section {
            self.local_target(out, f.section, slot, target)?
        } else {
            // Cross-section call: resolve in the target section, report at the caller.
            self.local_target(out, target_sec, slot, target)
                .map_err(|e| match e {
                    ObjectError::BadCall {
                        target, problem, ..
                    } => ObjectError::BadCall {
                        section: sec_name.clone(),
                        insn: slot,
                        target,
                        problem,
                    },
                    other => other,
                })?
        };
        out.insns[pc] = Insn::new(
            OP_CALL,
            0,
            CALL_LOCAL,
            0,
            (t as i64 - (pc as i64 + 1)) as i32,
        );
        out.relocations.push(Relocation {
            insn: pc,
            symbol: symbol.unwrap_or_else(|| callee.clone()),
            kind: RelocKind::Call {
                target: t,
                function: callee,
            },
        });
        Ok(())
    }

    fn relocate_lddw(
        &mut self,
        out: &mut Out,
        f: &Func,
        slot: usize,
        pc: usize,
        r: crate::elf::Rel,
    ) -> Result<(), ObjectError> {
        let insn = out.insns[pc];
        let sec_name = self.sec_name(f.section);
        let sym = &self.elf.symbols[r.sym];
        let symbol = sym.display_name(&self.elf.sections);
        if r.r_type != R_BPF_64_64 {
            return Err(ObjectError::RelocationType {
                section: sec_name,
                insn: slot,
                r_type: r.r_type,
                symbol,
            });
        }
        let target_err = |problem: String| ObjectError::RelocationTarget {
            section: sec_name.clone(),
            insn: slot,
            symbol: symbol.clone(),
            problem,
        };
        if sym.undefined {
            return Err(ObjectError::Unresolved {
                section: sec_name.clone(),
                insn: slot,
                symbol: symbol.clone(),
                problem: "extern variables (__ksym / __kconfig data) are not supported".into(),
            });
        }
        let Some(ts) = sym.section.and_then(|i| self.elf.section(i)) else {
            return Err(ObjectError::Unresolved {
                section: sec_name.clone(),
                insn: slot,
                symbol: symbol.clone(),
                problem: "symbol is not defined in any section".into(),
            });
        };
        let off = i64::try_from(sym.value as i128 + insn.imm as i128)
            .map_err(|_| target_err(format!("symbol value {} is out of range", sym.value)))?;
        if ts.is_exec() {
            if off < 0 || off % 8 != 0 {
                return Err(target_err(format!(
                    "function address offset {off} is not instruction-aligned"
                )));
            }
            let (t, callee) =
                self.local_target(out, ts.index, slot, off / 8)
                    .map_err(|e| match e {
                        ObjectError::BadCall { problem, .. } => target_err(problem),
                        other => other,
                    })?;
            out.insns[pc] = Insn::new(
                OP_LDDW,
                insn.dst,
                PSEUDO_FUNC,
                0,
                (t as i64 - (pc as i64 + 1)) as i32,
            );
            out.insns[pc + 1].imm = 0;
            out.relocations.push(Relocation {
                insn: pc,
                symbol,
                kind: RelocKind::FuncAddr {
                    target: t,
                    function: callee,
                },
            });
            return Ok(());
        }
        let candidates = self
            .map_locs
            .iter()
            .enumerate()
            .filter(|(_, l)| l.section == ts.index);
        for (mi, loc) in candidates {
            let spec = &self.maps[mi];
            if spec.origin == MapOrigin::GlobalData {
                if off < 0 || off as u64 >= loc.size.max(1) {
                    return Err(target_err(format!(
                        "offset {off} is outside global data section {} ({} bytes)",
                        ts.name, loc.size
                    )));
                }
                out.insns[pc] = Insn::new(OP_LDDW, insn.dst, PSEUDO_MAP_IDX_VALUE, 0, mi as i32);
                out.insns[pc + 1].imm = off as i32;
                out.relocations.push(Relocation {
                    insn: pc,
                    symbol,
                    kind: RelocKind::MapValue {
                        map: mi,
                        offset: off as u32,
                    },
                });
                return Ok(());
            }
            if off >= 0 && off as u64 == loc.offset {
                out.insns[pc] = Insn::new(OP_LDDW, insn.dst, PSEUDO_MAP_IDX, 0, mi as i32);
                out.insns[pc + 1].imm = 0;
                out.relocations.push(Relocation {
                    insn: pc,
                    symbol,
                    kind: RelocKind::Map { map: mi },
                });
                return Ok(());
            }
        }
        if self.map_locs.iter().any(|l| l.section == ts.index) {
            return Err(target_err(format!(
                "no map definition starts at offset {off} of section {}",
                ts.name
            )));
        }
        Err(target_err(format!(
            "symbol is in section {}, which is neither code, a map section nor a global data section",
            ts.name
        )))
    }

    /// Build the [`ProgramSpec`]: function spans, BTF.ext info mapped to linked slots.
    fn finish(
        &self,
        out: Out,
        name: &str,
        section: &str,
        exception_callback: Option<usize>,
    ) -> Result<ProgramSpec, ObjectError> {
        let mut functions = Vec::new();
        let mut func_info = Vec::new();
        let mut line_info = Vec::new();
        let mut core = Vec::new();
        for &(fi, base) in &out.placed {
            let f = &self.funcs[fi];
            let sec = self.sec_name(f.section);
            let range = f.start as u32 * 8..(f.start + f.len) as u32 * 8;
            let map_off = |off: u32| base + (off / 8) as usize - f.start;
            let mut btf_id = None;
            if let Some(ext) = self.ext {
                for (s, recs) in ext.func_info.iter().filter(|(s, _)| *s == sec) {
                    let _ = s;
                    for r in recs.iter().filter(|r| range.contains(&r.insn_off)) {
                        if r.insn_off / 8 == f.start as u32 {
                            btf_id = Some(r.type_id);
                        }
                        func_info.push(FuncInfo {
                            insn: map_off(r.insn_off),
                            type_id: r.type_id,
                        });
                    }
                }
                for (_, recs) in ext.line_info.iter().filter(|(s, _)| *s == sec) {
                    for r in recs.iter().filter(|r| range.contains(&r.insn_off)) {
                        line_info.push(LineInfo {
                            insn: map_off(r.insn_off),
                            file: r.file.clone(),
                            line: r.line,
                            column: r.column,
                            text: r.line_text.trim().to_string(),
                            file_name_off: r.file_name_off,
                            line_off: r.line_off,
                        });
                    }
                }
                for (_, recs) in ext.core_relos.iter().filter(|(s, _)| *s == sec) {
                    for r in recs.iter().filter(|r| range.contains(&r.insn_off)) {
                        core.push((map_off(r.insn_off), r.clone()));
                    }
                }
            }
            if btf_id.is_none() {
                btf_id = self.btf.and_then(|b| b.find_func(&f.name));
            }
            functions.push(FunctionSpan {
                name: f.name.clone(),
                section: sec,
                start: base,
                len: f.len,
                linkage: if f.global {
                    FuncLinkage::Global
                } else {
                    FuncLinkage::Static
                },
                btf_id,
            });
        }
        func_info.sort_by_key(|r| r.insn);
        line_info.sort_by_key(|r| r.insn);
        core.sort_by_key(|(i, _)| *i);
        let mut relocations = out.relocations;
        relocations.sort_by_key(|r| r.insn);
        let mut insns = out.insns;
        let core_relocations = match (self.btf, core.is_empty()) {
            (_, true) => Vec::new(),
            (Some(btf), false) => crate::core_relo::apply(btf, name, &mut insns, &core)?,
            (None, false) => {
                return Err(ObjectError::Program {
                    program: name.to_string(),
                    problem: "CO-RE relocations without BTF".into(),
                });
            }
        };
        Ok(ProgramSpec {
            name: name.to_string(),
            section: section.to_string(),
            prog_type: ProgType::from_section(section),
            insns,
            functions,
            exception_callback,
            func_info,
            line_info,
            relocations,
            core_relocations,
            kfuncs: out.kfuncs,
        })
    }
}
