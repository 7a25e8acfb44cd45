//! `BPF_MAP_TYPE_XSKMAP` (17), following `net/xdp/xskmap.c`: an array of
//! AF_XDP sockets. Cordon has no sockets: the host stores an opaque `u32`
//! socket id in each entry (Linux takes a socket fd there) and
//! `bpf_redirect_map` records it.
//!
//! As in Linux the host cannot read entries back (lookup is EOPNOTSUPP),
//! `BPF_NOEXIST` on a set entry is EEXIST and `BPF_EXIST` on an empty one
//! ENOENT. Known difference: a program-side lookup returns a pointer to the
//! stored 4-byte socket id (read-only), where Linux returns a `struct
//! bpf_xdp_sock *` whose only field is the socket's `queue_id`; a host that
//! wants identical reads stores the queue id as the socket id.

use super::devmap::{Slots, delete_index, pack, u32_at};
use super::{BPF_EXIST, BPF_NOEXIST, MapDef, MapError, MapType};

pub(crate) struct XskMap {
    slots: Slots,
}

impl XskMap {
    pub(crate) fn new(def: &MapDef) -> Result<XskMap, MapError> {
        Ok(XskMap {
            slots: Slots::new(def.max_entries, &def.name)?,
        })
    }

    pub(crate) fn slots(&self) -> &Slots {
        &self.slots
    }

    /// `xsk_map_update_elem` with a host socket id instead of a socket fd.
    pub(crate) fn update(&self, key: u32, value: &[u8], flags: u64) -> Result<(), MapError> {
        if flags > BPF_EXIST {
            return Err(MapError::InvalidFlags {
                map_type: MapType::XskMap,
                flags,
            });
        }
        if key >= self.slots.len() {
            return Err(MapError::Full);
        }
        let old = self.slots.get(key).is_some();
        if old && flags == BPF_NOEXIST {
            return Err(MapError::Exists);
        }
        if !old && flags == BPF_EXIST {
            return Err(MapError::NotFound);
        }
        self.slots.set(key, pack(u32_at(value, 0), 0));
        Ok(())
    }

    /// `xsk_map_delete_elem`.
    pub(crate) fn delete(&self, key: u32) -> Result<(), MapError> {
        delete_index(MapType::XskMap, &self.slots, key)
    }
}
