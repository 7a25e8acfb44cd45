//! `BPF_MAP_TYPE_CPUMAP` (16), following `kernel/bpf/cpumap.c`: an array
//! indexed by CPU whose values are `struct bpf_cpumap_val` (`qsize`,
//! optional program fd). Cordon runs no per-CPU kthreads: an entry only
//! records the queue size, and `bpf_redirect_map` records the target CPU.
//!
//! The CPUs are the map's `ncpus` slots (the runtime's configured CPU
//! count): an entry for a CPU at or above it is refused with ENODEV, as
//! Linux refuses a CPU that is not possible. As in Linux, `qsize` 0 deletes
//! the entry and `qsize` above 16384 is EOVERFLOW. Programs attached to
//! entries (`bpf_prog.fd` > 0) are not supported (ENOMEM, as Linux reports
//! any failure to set up an entry).

use super::devmap::{Slots, check_no_prog, delete_index, pack, u32_at};
use super::{BPF_EXIST, BPF_NOEXIST, MapDef, MapError, MapType};

/// `NR_CPUS`, the largest `max_entries` of a cpumap: the host kernel's
/// (`/sys/devices/system/cpu/kernel_max` + 1) when it can be read, else 8192
/// (`CONFIG_NR_CPUS` of x86-64 distribution kernels).
pub(crate) fn nr_cpus() -> u32 {
    static N: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/kernel_max")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .and_then(|m| m.checked_add(1))
            .unwrap_or(8192)
    })
}

/// Largest queue size Linux accepts ("sanity limit on qsize").
pub(crate) const MAX_QSIZE: u32 = 16384;

const EOVERFLOW: i32 = 75;
const ENODEV: i32 = 19;
const ENOMEM: i32 = 12;

pub(crate) struct CpuMap {
    slots: Slots,
    ncpus: u32,
}

impl CpuMap {
    pub(crate) fn new(def: &MapDef, ncpus: u32) -> Result<CpuMap, MapError> {
        Ok(CpuMap {
            slots: Slots::new(def.max_entries, &def.name)?,
            ncpus: ncpus.max(1),
        })
    }

    pub(crate) fn slots(&self) -> &Slots {
        &self.slots
    }

    /// `cpu_map_update_elem`.
    pub(crate) fn update(&self, key: u32, value: &[u8], flags: u64) -> Result<(), MapError> {
        let t = MapType::CpuMap;
        if flags > BPF_EXIST {
            return Err(MapError::InvalidFlags { map_type: t, flags });
        }
        if key >= self.slots.len() {
            return Err(MapError::Full);
        }
        if flags == BPF_NOEXIST {
            return Err(MapError::Exists);
        }
        let qsize = u32_at(value, 0);
        if qsize > MAX_QSIZE {
            return Err(MapError::InvalidValue {
                map_type: t,
                field: "qsize",
                value: qsize as u64,
                reason: "the queue size limit is 16384",
                errno: EOVERFLOW,
            });
        }
        if key >= self.ncpus {
            return Err(MapError::InvalidValue {
                map_type: t,
                field: "cpu (key)",
                value: key as u64,
                reason: "not one of the runtime's configured CPUs",
                errno: ENODEV,
            });
        }
        if qsize == 0 {
            self.slots.clear(key);
            return Ok(());
        }
        check_no_prog(t, value, ENOMEM)?;
        self.slots.set(key, pack(qsize, 0));
        Ok(())
    }

    /// `cpu_map_delete_elem`.
    pub(crate) fn delete(&self, key: u32) -> Result<(), MapError> {
        delete_index(MapType::CpuMap, &self.slots, key)
    }
}
