//! Names of program return values (XDP actions, tc actions).

use cordon_object::ProgType;

/// What the return value of a program of type `t` means, when it has names.
pub fn return_name(t: ProgType, retval: u64) -> Option<&'static str> {
    // Linux looks at the low 32 bits (XDP: u32 action; tc: int).
    let v = retval as u32;
    match t {
        ProgType::Xdp => Some(match v {
            0 => "XDP_ABORTED",
            1 => "XDP_DROP",
            2 => "XDP_PASS",
            3 => "XDP_TX",
            4 => "XDP_REDIRECT",
            _ => return None,
        }),
        ProgType::SchedCls | ProgType::SchedAct => Some(match v as i32 {
            -1 => "TC_ACT_UNSPEC",
            0 => "TC_ACT_OK",
            1 => "TC_ACT_RECLASSIFY",
            2 => "TC_ACT_SHOT",
            3 => "TC_ACT_PIPE",
            4 => "TC_ACT_STOLEN",
            5 => "TC_ACT_QUEUED",
            6 => "TC_ACT_REPEAT",
            7 => "TC_ACT_REDIRECT",
            8 => "TC_ACT_TRAP",
            _ => return None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(return_name(ProgType::Xdp, 1), Some("XDP_DROP"));
        assert_eq!(return_name(ProgType::Xdp, 9), None);
        assert_eq!(return_name(ProgType::SchedCls, 2), Some("TC_ACT_SHOT"));
        assert_eq!(
            return_name(ProgType::SchedCls, 0xffff_ffff),
            Some("TC_ACT_UNSPEC")
        );
        assert_eq!(return_name(ProgType::SocketFilter, 0), None);
    }
}
