//! Program context layouts: which offsets and sizes may be read or written,
//! and which fields load packet pointers.

use crate::env::ProgType;

/// What a valid context load produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtxField {
    /// An integer of the access size.
    Scalar,
    PktData,
    PktEnd,
    PktMeta,
}

pub const XDP_MD_SIZE: u32 = 24;
pub const SK_BUFF_SIZE: u32 = 192;

/// `struct __sk_buff` field offsets used below.
mod skb {
    pub const MARK: u32 = 8;
    pub const QUEUE_MAPPING: u32 = 12;
    pub const PRIORITY: u32 = 32;
    pub const TC_INDEX: u32 = 44;
    pub const CB: u32 = 48;
    pub const CB_END: u32 = 68;
    pub const TC_CLASSID: u32 = 72;
    pub const DATA: u32 = 76;
    pub const DATA_END: u32 = 80;
    pub const FAMILY: u32 = 88;
    pub const LOCAL_PORT_END: u32 = 140;
    pub const DATA_META: u32 = 140;
    pub const FLOW_KEYS: u32 = 144;
    pub const TSTAMP: u32 = 152;
    pub const WIRE_LEN: u32 = 160;
    pub const SK: u32 = 168;
    pub const GSO_SIZE: u32 = 176;
    pub const TSTAMP_TYPE: u32 = 180;
    pub const HWTSTAMP: u32 = 184;
}

/// Size of the context object of a program type.
pub fn ctx_size(t: ProgType) -> u32 {
    match t {
        ProgType::Xdp => XDP_MD_SIZE,
        ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct => SK_BUFF_SIZE,
        ProgType::Generic { ctx_size, .. } => ctx_size,
    }
}

/// Checks a context access of `size` bytes at byte offset `off`.
/// `None` means Linux's "invalid bpf_context access".
pub fn access(t: ProgType, off: i64, size: u32, write: bool) -> Option<CtxField> {
    if off < 0 || off + size as i64 > ctx_size(t) as i64 {
        return None;
    }
    let off = off as u32;
    if !off.is_multiple_of(size) {
        return None;
    }
    match t {
        ProgType::Xdp => {
            // `egress_ifindex` (20) exists only for BPF_XDP_DEVMAP programs.
            if write || size != 4 || off == 20 {
                return None;
            }
            Some(match off {
                0 => CtxField::PktData,
                4 => CtxField::PktEnd,
                8 => CtxField::PktMeta,
                _ => CtxField::Scalar,
            })
        }
        ProgType::Generic { ctx_writable, .. } => {
            if write && !ctx_writable {
                return None;
            }
            Some(CtxField::Scalar)
        }
        ProgType::SocketFilter => {
            if write && !(skb::CB..skb::CB_END).contains(&off) {
                return None;
            }
            let field = off & !3;
            match off {
                _ if matches!(
                    field,
                    skb::TC_CLASSID | skb::DATA | skb::DATA_END | skb::DATA_META
                ) =>
                {
                    return None;
                }
                o if (skb::FAMILY..skb::LOCAL_PORT_END).contains(&o) => return None,
                o if (skb::TSTAMP..skb::WIRE_LEN + 4).contains(&o) => return None,
                _ => {}
            }
            skb_common(off, size, write)
        }
        ProgType::SchedCls | ProgType::SchedAct => {
            if write {
                let ok = matches!(
                    off & !3,
                    skb::MARK
                        | skb::TC_INDEX
                        | skb::PRIORITY
                        | skb::TC_CLASSID
                        | skb::QUEUE_MAPPING
                ) || (skb::CB..skb::CB_END).contains(&off)
                    || off == skb::TSTAMP;
                if !ok {
                    return None;
                }
            }
            if (skb::FAMILY..skb::LOCAL_PORT_END).contains(&off) {
                return None;
            }
            // The packet pointer fields: whole 4-byte loads only.
            match (off & !3, size) {
                (skb::DATA, 4) => Some(CtxField::PktData),
                (skb::DATA_END, 4) => Some(CtxField::PktEnd),
                (skb::DATA_META, 4) => Some(CtxField::PktMeta),
                (skb::DATA | skb::DATA_END | skb::DATA_META, _) => None,
                _ => skb_common(off, size, write),
            }
        }
    }
}

/// Rules shared by all `__sk_buff` program types.
fn skb_common(off: u32, size: u32, write: bool) -> Option<CtxField> {
    match off {
        // cb[]: any (aligned) size, reads and writes, within the array.
        o if (skb::CB..skb::CB_END).contains(&o) => {
            (o + size <= skb::CB_END).then_some(CtxField::Scalar)
        }
        // flow_keys and sk are pointers programs of these types cannot use;
        // gso_size (176) after sk is an ordinary field.
        skb::FLOW_KEYS..skb::TSTAMP | skb::SK..skb::GSO_SIZE => None,
        skb::TSTAMP | skb::HWTSTAMP => {
            (size == 8 && !(write && off == skb::HWTSTAMP)).then_some(CtxField::Scalar)
        }
        o if (skb::TSTAMP..skb::TSTAMP + 8).contains(&o)
            || (skb::HWTSTAMP..skb::HWTSTAMP + 8).contains(&o) =>
        {
            None
        }
        skb::TSTAMP_TYPE => (size == 1 && !write).then_some(CtxField::Scalar),
        o if o > skb::TSTAMP_TYPE && o < skb::HWTSTAMP => None,
        _ => {
            if size > 4 || (write && size != 4) {
                None
            } else {
                Some(CtxField::Scalar)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdp_fields() {
        assert_eq!(access(ProgType::Xdp, 0, 4, false), Some(CtxField::PktData));
        assert_eq!(access(ProgType::Xdp, 4, 4, false), Some(CtxField::PktEnd));
        assert_eq!(access(ProgType::Xdp, 0, 8, false), None);
        assert_eq!(access(ProgType::Xdp, 12, 4, true), None);
        assert_eq!(access(ProgType::Xdp, 24, 4, false), None);
    }

    #[test]
    fn skb_fields() {
        assert_eq!(
            access(ProgType::SchedCls, 76, 4, false),
            Some(CtxField::PktData)
        );
        assert_eq!(access(ProgType::SocketFilter, 76, 4, false), None);
        assert_eq!(
            access(ProgType::SocketFilter, 0, 4, false),
            Some(CtxField::Scalar)
        );
        assert_eq!(access(ProgType::SocketFilter, 0, 4, true), None);
        assert_eq!(
            access(ProgType::SocketFilter, 48, 4, true),
            Some(CtxField::Scalar)
        );
        assert_eq!(
            access(ProgType::SchedCls, 8, 4, true),
            Some(CtxField::Scalar)
        );
        assert_eq!(
            access(ProgType::SchedCls, 0, 2, false),
            Some(CtxField::Scalar)
        );
        assert_eq!(
            access(ProgType::SchedCls, 152, 8, false),
            Some(CtxField::Scalar)
        );
        assert_eq!(access(ProgType::SchedCls, 152, 4, false), None);
        assert_eq!(access(ProgType::SchedCls, 2, 4, false), None);
    }
}
