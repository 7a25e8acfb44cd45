//! Kernel maps created with `BPF_MAP_CREATE`, and the element commands.

use crate::btf::Btf;
use crate::error::{KernelError, available, possible_cpus};
use crate::sys::{self, MapCreateAttr, MapElemAttr, cmd};
use crate::types::MapType;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Flags for [`Map::update`] (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`, `BPF_F_LOCK`).
pub mod update_flags {
    pub const ANY: u64 = 0;
    pub const NOEXIST: u64 = 1;
    pub const EXIST: u64 = 2;
    pub const F_LOCK: u64 = 4;
}

/// What to create. Build with [`MapSpec::new`] (or the shorthands) and the
/// `with_*` methods.
#[derive(Clone, Copy, Debug)]
pub struct MapSpec<'a> {
    pub map_type: MapType,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    /// Object name (sanitised and cut to 15 bytes like libbpf does).
    pub name: &'a str,
    /// Template of the inner map for `ARRAY_OF_MAPS` / `HASH_OF_MAPS`.
    pub inner: Option<&'a Map>,
    /// BTF object with the key and value type ids.
    pub btf: Option<(&'a Btf, u32, u32)>,
    /// `map_extra` (bloom filter hash count, arena address).
    pub map_extra: u64,
}

impl<'a> MapSpec<'a> {
    pub fn new(map_type: MapType, key_size: u32, value_size: u32, max_entries: u32) -> Self {
        MapSpec {
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            name: "",
            inner: None,
            btf: None,
            map_extra: 0,
        }
    }

    /// `BPF_MAP_TYPE_ARRAY` with 4-byte keys.
    pub fn array(value_size: u32, max_entries: u32) -> Self {
        Self::new(MapType::ARRAY, 4, value_size, max_entries)
    }

    /// `BPF_MAP_TYPE_HASH`.
    pub fn hash(key_size: u32, value_size: u32, max_entries: u32) -> Self {
        Self::new(MapType::HASH, key_size, value_size, max_entries)
    }

    pub fn with_flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    pub fn with_name(mut self, name: &'a str) -> Self {
        self.name = name;
        self
    }

    pub fn with_inner(mut self, inner: &'a Map) -> Self {
        self.inner = Some(inner);
        self
    }

    pub fn with_btf(mut self, btf: &'a Btf, key_type_id: u32, value_type_id: u32) -> Self {
        self.btf = Some((btf, key_type_id, value_type_id));
        self
    }

    pub fn with_map_extra(mut self, map_extra: u64) -> Self {
        self.map_extra = map_extra;
        self
    }
}

/// A map owned by this process; closed on drop.
#[derive(Debug)]
pub struct Map {
    fd: OwnedFd,
    map_type: MapType,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
}

impl AsFd for Map {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Map {
    /// `BPF_MAP_CREATE`.
    pub fn create(spec: &MapSpec<'_>) -> Result<Map, KernelError> {
        available()?;
        let (btf_fd, key_id, value_id) = match spec.btf {
            Some((btf, k, v)) => (btf.as_fd().as_raw_fd() as u32, k, v),
            None => (0, 0, 0),
        };
        let mut attr = MapCreateAttr {
            map_type: spec.map_type.0,
            key_size: spec.key_size,
            value_size: spec.value_size,
            max_entries: spec.max_entries,
            map_flags: spec.flags,
            inner_map_fd: spec.inner.map_or(0, |m| m.fd.as_raw_fd() as u32),
            map_name: sys::obj_name(spec.name),
            btf_fd,
            btf_key_type_id: key_id,
            btf_value_type_id: value_id,
            map_extra: spec.map_extra,
            ..Default::default()
        };
        let fd = sys::bpf_fd(cmd::MAP_CREATE, &mut attr).map_err(|errno| {
            KernelError::syscall(
                cmd::MAP_CREATE,
                errno,
                format!(
                    "type {} key_size {} value_size {} max_entries {} flags {:#x}",
                    spec.map_type, spec.key_size, spec.value_size, spec.max_entries, spec.flags
                ),
            )
        })?;
        Ok(Map {
            fd,
            map_type: spec.map_type,
            key_size: spec.key_size,
            value_size: spec.value_size,
            max_entries: spec.max_entries,
        })
    }

    /// Open a pinned map (`BPF_OBJ_GET`), e.g. one of a
    /// [`crate::KernelObject`]'s maps, for direct syscall access.
    pub fn from_pinned(path: &std::path::Path) -> Result<Map, KernelError> {
        available()?;
        let fd = sys::obj_get(path)
            .map_err(|e| KernelError::syscall(cmd::OBJ_GET, e, path.display().to_string()))?;
        let info: sys::MapInfoPrefix = sys::obj_info(fd.as_fd()).map_err(|e| {
            KernelError::syscall(cmd::OBJ_GET_INFO_BY_FD, e, path.display().to_string())
        })?;
        Ok(Map {
            fd,
            map_type: MapType(info.map_type),
            key_size: info.key_size,
            value_size: info.value_size,
            max_entries: info.max_entries,
        })
    }

    pub fn map_type(&self) -> MapType {
        self.map_type
    }
    pub fn key_size(&self) -> u32 {
        self.key_size
    }
    pub fn value_size(&self) -> u32 {
        self.value_size
    }
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// Size of the value buffer the syscalls exchange: `value_size`, or for
    /// per-CPU maps `round_up(value_size, 8) * possible_cpus`.
    pub fn value_buf_size(&self) -> Result<usize, KernelError> {
        if self.map_type.is_per_cpu() {
            Ok((self.value_size as usize).div_ceil(8) * 8 * possible_cpus()?)
        } else {
            Ok(self.value_size as usize)
        }
    }

    fn check_key(&self, key: &[u8]) -> Result<(), KernelError> {
        if key.len() != self.key_size as usize {
            return Err(KernelError::InvalidArgument(format!(
                "key is {} bytes, map {} has key_size {}",
                key.len(),
                self.map_type,
                self.key_size
            )));
        }
        Ok(())
    }

    fn elem(&self, cmd: u32, key: u64, value: u64, flags: u64) -> Result<(), i32> {
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key,
            value,
            flags,
            ..Default::default()
        };
        sys::bpf(cmd, &mut attr).map(|_| ())
    }

    /// `BPF_MAP_UPDATE_ELEM`. `value` must be [`Map::value_buf_size`] bytes
    /// (for per-CPU maps: every CPU's value, each padded to 8 bytes). For
    /// prog arrays and maps of maps use [`Map::update_fd`].
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), KernelError> {
        self.check_key(key)?;
        let want = self.value_buf_size()?;
        if value.len() != want {
            return Err(KernelError::InvalidArgument(format!(
                "value is {} bytes, map {} wants {want}",
                value.len(),
                self.map_type
            )));
        }
        self.elem(cmd::MAP_UPDATE_ELEM, sys::ptr(key), sys::ptr(value), flags)
            .map_err(|e| KernelError::syscall(cmd::MAP_UPDATE_ELEM, e, ""))
    }

    /// Store a file descriptor (program for a prog array, map for a map of
    /// maps) under `key`.
    pub fn update_fd(&self, key: &[u8], fd: BorrowedFd<'_>) -> Result<(), KernelError> {
        self.check_key(key)?;
        let v = (fd.as_raw_fd() as u32).to_ne_bytes();
        self.elem(cmd::MAP_UPDATE_ELEM, sys::ptr(key), sys::ptr(&v), 0)
            .map_err(|e| KernelError::syscall(cmd::MAP_UPDATE_ELEM, e, ""))
    }

    /// `BPF_MAP_LOOKUP_ELEM`: `None` when the key is absent (`ENOENT`). For
    /// per-CPU maps the result holds every CPU's value, each padded to 8
    /// bytes (see [`Map::lookup_per_cpu`]). For queues and stacks pass an
    /// empty key: this peeks.
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        self.check_key(key)?;
        let mut value = vec![0u8; self.value_buf_size()?];
        match self.elem(
            cmd::MAP_LOOKUP_ELEM,
            sys::ptr(key),
            sys::ptr_mut(&mut value),
            0,
        ) {
            Ok(()) => Ok(Some(value)),
            Err(libc::ENOENT) => Ok(None),
            Err(e) => Err(KernelError::syscall(cmd::MAP_LOOKUP_ELEM, e, "")),
        }
    }

    /// A per-CPU lookup split into one `value_size`-byte value per CPU.
    pub fn lookup_per_cpu(&self, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>, KernelError> {
        if !self.map_type.is_per_cpu() {
            return Err(KernelError::InvalidArgument(format!(
                "map {} is not per-CPU",
                self.map_type
            )));
        }
        let stride = (self.value_size as usize).div_ceil(8) * 8;
        Ok(self.lookup(key)?.map(|buf| {
            buf.chunks(stride)
                .map(|c| c[..self.value_size as usize].to_vec())
                .collect()
        }))
    }

    /// `BPF_MAP_LOOKUP_AND_DELETE_ELEM` (pop for queues and stacks, with an
    /// empty key). `None` when empty / absent.
    pub fn lookup_and_delete(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        self.check_key(key)?;
        let mut value = vec![0u8; self.value_buf_size()?];
        match self.elem(
            cmd::MAP_LOOKUP_AND_DELETE_ELEM,
            sys::ptr(key),
            sys::ptr_mut(&mut value),
            0,
        ) {
            Ok(()) => Ok(Some(value)),
            Err(libc::ENOENT) => Ok(None),
            Err(e) => Err(KernelError::syscall(cmd::MAP_LOOKUP_AND_DELETE_ELEM, e, "")),
        }
    }

    /// `BPF_MAP_DELETE_ELEM`: `false` when the key was absent (`ENOENT`).
    pub fn delete(&self, key: &[u8]) -> Result<bool, KernelError> {
        self.check_key(key)?;
        match self.elem(cmd::MAP_DELETE_ELEM, sys::ptr(key), 0, 0) {
            Ok(()) => Ok(true),
            Err(libc::ENOENT) => Ok(false),
            Err(e) => Err(KernelError::syscall(cmd::MAP_DELETE_ELEM, e, "")),
        }
    }

    /// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (the first key for
    /// `None`), or `None` at the end.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, KernelError> {
        if let Some(k) = key {
            self.check_key(k)?;
        }
        let mut next = vec![0u8; self.key_size as usize];
        match self.elem(
            cmd::MAP_GET_NEXT_KEY,
            key.map_or(0, sys::ptr),
            sys::ptr_mut(&mut next),
            0,
        ) {
            Ok(()) => Ok(Some(next)),
            Err(libc::ENOENT) => Ok(None),
            Err(e) => Err(KernelError::syscall(cmd::MAP_GET_NEXT_KEY, e, "")),
        }
    }

    /// Every key, in the kernel's iteration order.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>, KernelError> {
        let mut out = Vec::new();
        let mut cur = self.next_key(None)?;
        while let Some(k) = cur {
            // A hash map can be modified concurrently; cap at max_entries
            // so a misbehaving kernel cannot make this loop forever.
            if out.len() > self.max_entries as usize {
                break;
            }
            cur = self.next_key(Some(&k))?;
            out.push(k);
        }
        Ok(out)
    }

    /// Every (key, value) pair, values as [`Map::lookup`] returns them. Keys
    /// deleted between listing and lookup are left out.
    pub fn entries(&self) -> Result<crate::Entries, KernelError> {
        let mut out = Vec::new();
        for k in self.keys()? {
            if let Some(v) = self.lookup(&k)? {
                out.push((k, v));
            }
        }
        Ok(out)
    }

    /// One map of a BPF object, created the way libbpf creates it: a
    /// `PERF_EVENT_ARRAY` declared with `max_entries` 0 gets one entry per
    /// possible CPU; a global-data map (`.data`, `.rodata`, `.bss`) gets its
    /// section contents `initial_data` stored at key 0 and is then frozen
    /// when `freeze` (read-only data, `BPF_F_RDONLY_PROG`).
    ///
    /// Errors name the step that failed (create, the initial update, the
    /// freeze) through the kernel's errno.
    pub fn create_for_object(
        spec: &MapSpec<'_>,
        initial_data: Option<&[u8]>,
        freeze: bool,
    ) -> Result<Map, KernelError> {
        let mut spec = *spec;
        if spec.map_type == MapType::PERF_EVENT_ARRAY && spec.max_entries == 0 {
            spec.max_entries = u32::try_from(possible_cpus()?).unwrap_or(u32::MAX);
        }
        let map = Map::create(&spec)?;
        if let Some(data) = initial_data {
            map.update(&0u32.to_ne_bytes(), data, update_flags::ANY)?;
            if freeze {
                map.freeze()?;
            }
        }
        Ok(map)
    }

    /// `BPF_MAP_FREEZE`: no more syscall writes (programs may still write
    /// unless the program was loaded knowing the map is read-only).
    pub fn freeze(&self) -> Result<(), KernelError> {
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            ..Default::default()
        };
        sys::bpf(cmd::MAP_FREEZE, &mut attr)
            .map(|_| ())
            .map_err(|e| KernelError::syscall(cmd::MAP_FREEZE, e, ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_map_with_initial_data_is_filled_and_frozen() {
        let spec = MapSpec::array(8, 1).with_name("obj.rodata");
        let data = 0x1122_3344_5566_7788u64.to_ne_bytes();
        let m = crate::require!(Map::create_for_object(&spec, Some(&data), true));
        assert_eq!(m.lookup(&0u32.to_ne_bytes()).unwrap(), Some(data.to_vec()));
        // Frozen: the syscall side may no longer write (EPERM).
        let e = m.update(&0u32.to_ne_bytes(), &[0; 8], 0).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EPERM), "{e}");

        // Writable data stays writable.
        let m = Map::create_for_object(&spec, Some(&data), false).unwrap();
        m.update(&0u32.to_ne_bytes(), &[1; 8], 0).unwrap();
    }

    #[test]
    fn perf_event_array_of_zero_entries_gets_one_per_possible_cpu() {
        let spec = MapSpec::new(MapType::PERF_EVENT_ARRAY, 4, 4, 0);
        let m = crate::require!(Map::create_for_object(&spec, None, false));
        assert_eq!(m.max_entries() as usize, possible_cpus().unwrap());
    }

    #[test]
    fn object_map_refusals_come_back_as_errors() {
        // Linux refuses an array with 0-byte keys at creation.
        let spec = MapSpec::new(MapType::ARRAY, 0, 8, 1);
        let e = match Map::create_for_object(&spec, None, false) {
            Err(e) if e.skip().is_some() => return,
            Err(e) => e,
            Ok(_) => panic!("an array with 0-byte keys was created"),
        };
        assert_eq!(e.errno(), Some(libc::EINVAL), "{e}");
        // Section data that is not value_size bytes is refused, naming both.
        let e = Map::create_for_object(&MapSpec::array(8, 1), Some(&[0; 4]), true).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("value is 4 bytes") && text.contains("wants 8"),
            "{text}"
        );
    }
}
