//! Objects built in code instead of parsed from ELF: one program of
//! hand-written instructions, for tests, benchmarks and embedders that
//! generate code.

use cordon_isa::Insn;

use crate::{FuncLinkage, FunctionSpan, MapOrigin, MapSpec, Object, ProgType, ProgramSpec};

impl ProgramSpec {
    /// A program of one global function (`functions[0]` spans every slot)
    /// with no BTF, line info, relocations or kfuncs.
    ///
    /// `insns` must already be in the linked form [`Object::parse`] produces:
    /// map references as `lddw src=5 imm=<index into Object::maps>`, global
    /// data as `src=6`, kfunc calls as `call src=2 imm=<index into
    /// Object::kfuncs>`. Nothing is checked here; [`ProgramSpec::program`]
    /// (and every loader) decodes and validates the code.
    pub fn single_function(
        name: &str,
        section: &str,
        prog_type: ProgType,
        insns: Vec<Insn>,
    ) -> ProgramSpec {
        let len = insns.len();
        ProgramSpec {
            name: name.into(),
            section: section.into(),
            prog_type,
            insns,
            functions: vec![FunctionSpan {
                name: name.into(),
                section: section.into(),
                start: 0,
                len,
                linkage: FuncLinkage::Global,
                btf_id: None,
            }],
            exception_callback: None,
            func_info: Vec::new(),
            line_info: Vec::new(),
            relocations: Vec::new(),
            core_relocations: Vec::new(),
            kfuncs: Vec::new(),
        }
    }
}

impl Object {
    /// An object holding exactly one program,
    /// [`ProgramSpec::single_function`]`(name, section, prog_type, insns)`,
    /// licensed `"GPL"` (so GPL-only helpers are allowed, as for most test
    /// programs), with no maps, kfuncs, kernel version or BTF. Add maps and
    /// kfuncs with [`Object::with_maps`] and [`Object::with_kfuncs`].
    ///
    /// ```
    /// use cordon_isa::Insn;
    /// use cordon_object::{Object, ProgType};
    ///
    /// let o = Object::single_program(
    ///     "p",
    ///     "xdp",
    ///     ProgType::Xdp,
    ///     vec![Insn::new(0xb7, 0, 0, 0, 2), Insn::new(0x95, 0, 0, 0, 0)],
    /// );
    /// assert_eq!(o.programs[0].functions[0].len, 2);
    /// assert!(o.programs[0].program().is_ok());
    /// ```
    pub fn single_program(
        name: &str,
        section: &str,
        prog_type: ProgType,
        insns: Vec<Insn>,
    ) -> Object {
        Object {
            programs: vec![ProgramSpec::single_function(
                name, section, prog_type, insns,
            )],
            maps: Vec::new(),
            kfuncs: Vec::new(),
            license: Some("GPL".into()),
            kernel_version: None,
            btf: None,
        }
    }

    /// Replaces the object's maps; `lddw src=5 imm=i` refers to `maps[i]`.
    pub fn with_maps(mut self, maps: Vec<MapSpec>) -> Object {
        self.maps = maps;
        self
    }

    /// Replaces the object's kfunc list (`call src=2 imm=i` calls
    /// `kfuncs[i]`) and records the same names as called by every program.
    pub fn with_kfuncs<S: AsRef<str>>(mut self, kfuncs: &[S]) -> Object {
        let names: Vec<String> = kfuncs.iter().map(|s| s.as_ref().to_string()).collect();
        for p in &mut self.programs {
            p.kfuncs = names.clone();
        }
        self.kfuncs = names;
        self
    }
}

impl MapSpec {
    /// A BTF-style (`SEC(".maps")`) map definition with flags, NUMA node and
    /// `map_extra` 0, no inner map, no initial contents and no BTF key/value
    /// types. The sizes are not checked here; map creation checks them as
    /// Linux does.
    pub fn btf_defined(
        name: &str,
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> MapSpec {
        MapSpec {
            name: name.into(),
            section: ".maps".into(),
            origin: MapOrigin::Btf,
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            numa_node: 0,
            map_extra: 0,
            inner: None,
            initial_data: None,
            initial_slots: Vec::new(),
            btf_key_type_id: None,
            btf_value_type_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon_isa::DecodeError;

    const EXIT: Insn = Insn::new(0x95, 0, 0, 0, 0);

    #[test]
    fn single_program_has_one_global_function_over_all_slots() {
        let insns = vec![
            Insn::new(0x18, 1, 5, 0, 0),
            Insn::new(0, 0, 0, 0, 0),
            Insn::new(0x85, 0, 2, 0, 0),
            EXIT,
        ];
        let o = Object::single_program("f", "tc", ProgType::SchedCls, insns.clone())
            .with_maps(vec![MapSpec::btf_defined("m", 2, 4, 8, 1)])
            .with_kfuncs(&["bpf_k"]);
        assert_eq!(o.programs.len(), 1);
        let p = o.program("f").unwrap();
        assert_eq!(
            (p.section.as_str(), p.prog_type),
            ("tc", ProgType::SchedCls)
        );
        assert_eq!(p.insns, insns);
        assert_eq!(p.functions.len(), 1);
        let f = &p.functions[0];
        assert_eq!((f.name.as_str(), f.section.as_str()), ("f", "tc"));
        assert_eq!((f.start, f.len, f.linkage), (0, 4, FuncLinkage::Global));
        assert_eq!(p.kfuncs, ["bpf_k"]);
        assert_eq!(o.kfuncs, ["bpf_k"]);
        assert_eq!(o.license.as_deref(), Some("GPL"));
        let (idx, m) = o.map("m").unwrap();
        assert_eq!(idx, 0);
        assert_eq!(
            (m.map_type, m.key_size, m.value_size, m.max_entries),
            (2, 4, 8, 1)
        );
        assert_eq!((m.origin, m.section.as_str()), (MapOrigin::Btf, ".maps"));
        assert!(p.program().is_ok());
    }

    #[test]
    fn malformed_code_is_refused_when_decoded_not_built() {
        // A `lddw` whose second slot is missing: built as given, refused by
        // `program()` with a decode error rather than a panic.
        let o =
            Object::single_program("p", "xdp", ProgType::Xdp, vec![Insn::new(0x18, 0, 0, 0, 1)]);
        let e: DecodeError = o.programs[0].program().unwrap_err();
        assert!(!e.to_string().is_empty());
        // An empty program is refused too.
        let o = Object::single_program("p", "xdp", ProgType::Xdp, Vec::new());
        assert_eq!(o.programs[0].functions[0].len, 0);
        assert!(o.programs[0].program().is_err());
    }
}
