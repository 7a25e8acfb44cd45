//! Adapter from cordon-object's output to the verifier's inputs: map specs
//! become [`MapInfo`] (spin lock offset from BTF, read-only for the program,
//! inner map prototypes), BTF signatures of global functions become
//! [`GlobalFuncSig`], plus the exception callback and line info. Used by
//! cordon-runtime's loader and by this crate's object tests, so both see a
//! program exactly the same way. Only with the `object` feature (default).
//!
//! Program type and kfunc ids are left to the caller: the runtime chooses
//! the program type from its own attach kinds and renumbers kfunc calls
//! against its registry while patching.

use cordon_object::btf::{Btf, BtfType};
use cordon_object::{FuncLinkage, MapOrigin, MapSpec, Object, ProgramSpec};

use crate::env::{ArgKind, GlobalFuncSig, GlobalRet, LineInfo, MapInfo, MapType, VerifyEnv};

/// `BPF_F_RDONLY_PROG`: the program may only read the map.
const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// Offset in bytes of a `struct bpf_spin_lock` member of the map value type
/// `value_type`, or `None` (no such member, or the id is not a struct/union).
pub fn spin_lock_off(btf: &Btf, value_type: u32) -> Option<u32> {
    for m in btf.members(value_type)? {
        let t = btf.skip_mods_and_typedefs(m.type_id).ok()?;
        if let Some(BtfType::Struct { name: Some(n), .. }) = btf.type_by_id(t)
            && n == "bpf_spin_lock"
        {
            return Some(m.bit_offset / 8);
        }
    }
    None
}

/// The verifier's description of one map of an object. `btf` is the
/// object's BTF (for the spin lock offset). Read-only for the program when
/// created with `BPF_F_RDONLY_PROG` or when it is a `.rodata*` global data
/// section (as libbpf creates them).
pub fn map_info(m: &MapSpec, btf: Option<&Btf>) -> MapInfo {
    let mut info = MapInfo::new(
        &m.name,
        MapType::from_linux(m.map_type),
        m.key_size,
        m.value_size,
        m.max_entries,
    );
    if let (Some(btf), Some(v)) = (btf, m.btf_value_type_id) {
        info.spin_lock_off = spin_lock_off(btf, v);
    }
    info.rdonly_prog = m.flags & BPF_F_RDONLY_PROG != 0
        || (m.origin == MapOrigin::GlobalData && m.section.starts_with(".rodata"));
    info
}

/// The maps of an object as the verifier indexes them: the object's maps
/// first, in order (the index `lddw src=BPF_PSEUDO_MAP_FD/VALUE` carries),
/// then the inner map prototypes of maps of maps, each linked from its outer
/// map's `inner_map`.
pub fn map_infos(obj: &Object) -> Vec<MapInfo> {
    let btf = obj.btf.as_ref();
    let mut maps: Vec<MapInfo> = obj.maps.iter().map(|m| map_info(m, btf)).collect();
    for (i, m) in obj.maps.iter().enumerate() {
        if let Some(inner) = &m.inner {
            maps.push(map_info(inner, btf));
            maps[i].inner_map = Some(maps.len() as u32 - 1);
        }
    }
    maps
}

/// A global function's signature from its BTF `FUNC` (id `func_btf_id`).
/// Pointers to `__sk_buff`/`xdp_md` are the context; other pointers are
/// memory of the pointee's size, maybe NULL unless the argument is tagged
/// `arg:nonnull` (`__arg_nonnull`), as Linux; everything else is a scalar.
/// A return type of `void` gives [`GlobalRet::Void`]. An id that is not a
/// function gives no arguments and a scalar return.
pub fn global_func_sig(btf: &Btf, func_btf_id: u32, name: &str) -> GlobalFuncSig {
    let mut args = Vec::new();
    let mut ret = GlobalRet::Scalar;
    if let Some((r, params)) = btf.func_proto(func_btf_id) {
        if r == 0 {
            ret = GlobalRet::Void;
        }
        let tags = btf.decl_tags(func_btf_id);
        for (k, p) in params.iter().enumerate() {
            let t = btf.skip_mods_and_typedefs(p.type_id).unwrap_or(0);
            let kind = match btf.type_by_id(t) {
                Some(BtfType::Ptr { type_id }) => {
                    let pointee = btf.skip_mods_and_typedefs(*type_id).unwrap_or(0);
                    let pname = btf.type_by_id(pointee).and_then(BtfType::name);
                    match pname {
                        Some("__sk_buff") | Some("xdp_md") => ArgKind::PtrToCtx,
                        _ => ArgKind::PtrToMem {
                            size: u32::try_from(btf.size_of(pointee).unwrap_or(0))
                                .unwrap_or(u32::MAX),
                            nullable: !tags
                                .iter()
                                .any(|&(i, t)| i == k as i32 && t == "arg:nonnull"),
                        },
                    }
                }
                _ => ArgKind::Scalar,
            };
            args.push(kind);
        }
    }
    GlobalFuncSig {
        name: name.to_string(),
        args,
        ret,
    }
}

impl VerifyEnv {
    /// Describes program `p` of `obj` to the verifier: replaces the maps
    /// ([`map_infos`]), adds the signatures of its global functions (from
    /// the object's BTF; none without BTF), and sets the exception callback
    /// and line info. Program type, profile, registry and limits stay as
    /// they are.
    pub fn with_object(mut self, obj: &Object, p: &ProgramSpec) -> VerifyEnv {
        self.maps = map_infos(obj);
        if let Some(btf) = &obj.btf {
            for f in p.functions.iter().skip(1) {
                if f.linkage == FuncLinkage::Global
                    && let Some(id) = f.btf_id
                {
                    self.global_funcs
                        .insert(f.start, global_func_sig(btf, id, &f.name));
                }
            }
        }
        self.exception_callback = p
            .exception_callback
            .and_then(|i| p.functions.get(i))
            .map(|f| f.start);
        self.line_info = p
            .line_info
            .iter()
            .map(|l| LineInfo {
                insn: l.insn,
                file: l.file.clone(),
                line: l.line,
                col: l.column,
                source: l.text.clone(),
            })
            .collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProgType;

    fn object(name: &str) -> Object {
        let path = format!("{}/../../tests/bpf/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Object::parse(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn env_for(obj: &Object, prog: &str) -> VerifyEnv {
        let p = obj.programs.iter().find(|p| p.name == prog).expect(prog);
        VerifyEnv::new(ProgType::SchedCls).with_object(obj, p)
    }

    /// Raw BTF: int; int *; int f(int *a, int *b) global; b tagged
    /// arg:nonnull; void g(void) global.
    fn btf_with_global_funcs() -> Btf {
        let strings = b"\0int\0a\0b\0f\0arg:nonnull\0g\0";
        let off = |s: &str| {
            let mut pat = vec![0u8];
            pat.extend_from_slice(s.as_bytes());
            pat.push(0);
            strings.windows(pat.len()).position(|w| w == pat).unwrap() as u32 + 1
        };
        let kind = |k: u32, vlen: u32| (k << 24) | vlen;
        let mut t: Vec<u32> = Vec::new();
        t.extend([off("int"), kind(1, 0), 4, (1 << 24) | 32]); // 1: int
        t.extend([0, kind(2, 0), 1]); // 2: int *
        t.extend([0, kind(13, 2), 1, off("a"), 2, off("b"), 2]); // 3: proto
        t.extend([off("f"), kind(12, 1), 3]); // 4: FUNC f, global
        t.extend([off("arg:nonnull"), kind(17, 0), 4, 1]); // 5: tag on b
        t.extend([0, kind(13, 0), 0]); // 6: void (void)
        t.extend([off("g"), kind(12, 1), 6]); // 7: FUNC g, global
        let types: Vec<u8> = t.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut raw = Vec::new();
        raw.extend(0xeb9fu16.to_le_bytes());
        raw.extend([1u8, 0]);
        for w in [24u32, 0, types.len() as u32, types.len() as u32] {
            raw.extend(w.to_le_bytes());
        }
        raw.extend((strings.len() as u32).to_le_bytes());
        raw.extend(&types);
        raw.extend(strings);
        Btf::parse(&raw).expect("hand-made BTF parses")
    }

    #[test]
    fn spin_lock_offset_comes_from_value_btf() {
        let obj = object("spin_lock.o");
        let env = env_for(&obj, "spin_add");
        assert_eq!(env.maps.len(), 1);
        assert_eq!(env.maps[0].name, "shared");
        assert_eq!(env.maps[0].spin_lock_off, Some(0));
        assert!(!env.maps[0].rdonly_prog);
    }

    #[test]
    fn inner_map_prototypes_follow_object_maps() {
        let obj = object("map_in_map.o");
        let env = env_for(&obj, &obj.programs[0].name);
        let n = obj.maps.len();
        let outers: Vec<usize> = (0..n).filter(|&i| obj.maps[i].inner.is_some()).collect();
        assert_eq!(outers.len(), 2, "outer_arr and outer_hash");
        assert_eq!(env.maps.len(), n + outers.len());
        for (k, &i) in outers.iter().enumerate() {
            assert_eq!(env.maps[i].inner_map, Some((n + k) as u32));
        }
        assert!(env.maps[n..].iter().all(|m| m.inner_map.is_none()));
    }

    #[test]
    fn rodata_sections_are_read_only_for_the_program() {
        let obj = object("global_data.o");
        let env = env_for(&obj, &obj.programs[0].name);
        for (m, info) in obj.maps.iter().zip(&env.maps) {
            assert_eq!(
                info.rdonly_prog,
                m.section.starts_with(".rodata"),
                "{}",
                m.section
            );
        }
        assert!(env.maps.iter().any(|m| m.rdonly_prog));
        assert!(env.maps.iter().any(|m| !m.rdonly_prog));
    }

    #[test]
    fn rdonly_prog_flag_without_rodata_section() {
        let obj = object("maps_basic.o");
        let mut m = obj.maps[0].clone();
        assert!(!map_info(&m, None).rdonly_prog);
        m.flags |= BPF_F_RDONLY_PROG;
        assert!(map_info(&m, None).rdonly_prog);
        // A `.maps` map whose name merely looks like rodata is not read-only.
        m.flags = 0;
        m.section = ".rodata.fake".into();
        assert!(!map_info(&m, None).rdonly_prog);
    }

    #[test]
    fn global_functions_exception_callback_and_line_info() {
        let obj = object("exception_cb.o");
        let p = &obj.programs[0];
        let env = VerifyEnv::new(ProgType::SchedCls).with_object(&obj, p);
        let cb = p.exception_callback.expect("exception callback in BTF");
        assert_eq!(env.exception_callback, Some(p.functions[cb].start));
        let sig = env
            .global_funcs
            .get(&p.functions[cb].start)
            .expect("on_exception is global");
        assert_eq!(sig.name, "on_exception");
        assert_eq!(sig.args, vec![ArgKind::Scalar]);
        assert_eq!(sig.ret, GlobalRet::Scalar);
        assert_eq!(env.line_info.len(), p.line_info.len());
        assert!(!env.line_info.is_empty());

        let obj = object("deep_calls.o");
        let p = obj
            .programs
            .iter()
            .find(|p| p.name == "deep_entry")
            .unwrap();
        let env = VerifyEnv::new(ProgType::SchedCls).with_object(&obj, p);
        let sig = env.global_funcs.values().find(|s| s.name == "try_tail");
        assert_eq!(sig.expect("try_tail").args, vec![ArgKind::PtrToCtx]);
        assert!(env.global_funcs.values().all(|s| s.name != "level7"));
    }

    #[test]
    fn pointer_args_are_nullable_unless_tagged_nonnull() {
        let btf = btf_with_global_funcs();
        let f = global_func_sig(&btf, 4, "f");
        assert_eq!(
            f.args,
            vec![
                ArgKind::PtrToMem {
                    size: 4,
                    nullable: true
                },
                ArgKind::PtrToMem {
                    size: 4,
                    nullable: false
                },
            ]
        );
        assert_eq!(f.ret, GlobalRet::Scalar);
        let g = global_func_sig(&btf, 7, "g");
        assert!(g.args.is_empty());
        assert_eq!(g.ret, GlobalRet::Void);
    }

    #[test]
    fn bad_btf_ids_give_defaults_not_panics() {
        let btf = btf_with_global_funcs();
        for id in [0, 1, 2, 5, 8, u32::MAX] {
            let s = global_func_sig(&btf, id, "x");
            assert!(s.args.is_empty(), "id {id}");
            assert_eq!(s.ret, GlobalRet::Scalar, "id {id}");
            assert_eq!(spin_lock_off(&btf, id), None, "id {id}");
        }
        // A map whose value type id points outside the object's BTF.
        let obj = object("spin_lock.o");
        let mut m = obj.maps[0].clone();
        m.btf_value_type_id = Some(u32::MAX);
        assert_eq!(map_info(&m, obj.btf.as_ref()).spin_lock_off, None);
        // Without BTF: no lock offset, no global signatures.
        let mut obj = object("exception_cb.o");
        obj.btf = None;
        let env = VerifyEnv::new(ProgType::SchedCls).with_object(&obj, &obj.programs[0]);
        assert!(env.global_funcs.is_empty());
        // An exception callback index past the functions is ignored.
        let mut p = obj.programs[0].clone();
        p.exception_callback = Some(usize::MAX);
        let env = VerifyEnv::new(ProgType::SchedCls).with_object(&obj, &p);
        assert_eq!(env.exception_callback, None);
    }
}
