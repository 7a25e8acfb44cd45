//! How `cordon run` shows the redirect a program requested (recorded by the
//! runtime, never performed).

use cordon::{Redirect, RedirectTarget};
use serde_json::{Value, json};

/// `BPF_F_INGRESS` of tc's `bpf_redirect`.
const BPF_F_INGRESS: u64 = 1;

/// One line, e.g. `devmap "tx_ports"[1] -> ifindex 7` or `ifindex 3 (ingress)`.
pub fn text(r: &Redirect) -> String {
    match r {
        Redirect::Ifindex { ifindex, flags } => {
            let ingress = if flags & BPF_F_INGRESS != 0 {
                " (ingress)"
            } else {
                ""
            };
            format!("ifindex {ifindex}{ingress}")
        }
        Redirect::Map {
            map,
            map_type,
            key,
            target,
            ..
        } => {
            let to = match target {
                RedirectTarget::Device { ifindex } => format!("ifindex {ifindex}"),
                RedirectTarget::Cpu { cpu, qsize } => format!("cpu {cpu} (qsize {qsize})"),
                RedirectTarget::Socket { id } => format!("xsk socket {id}"),
                RedirectTarget::Broadcast {
                    ifindexes,
                    exclude_ingress,
                } => {
                    let list: Vec<String> = ifindexes.iter().map(u32::to_string).collect();
                    let excl = if *exclude_ingress {
                        ", excluding ingress"
                    } else {
                        ""
                    };
                    format!("broadcast to ifindexes [{}]{excl}", list.join(", "))
                }
            };
            format!("{map_type} {map:?}[{key}] -> {to}")
        }
    }
}

/// The JSON form (`"redirect"` of `cordon run --json`).
pub fn json(r: &Redirect) -> Value {
    match r {
        Redirect::Ifindex { ifindex, flags } => json!({
            "kind": "ifindex",
            "ifindex": ifindex,
            "flags": flags,
            "ingress": flags & BPF_F_INGRESS != 0,
        }),
        Redirect::Map {
            map,
            map_type,
            key,
            target,
            flags,
        } => {
            let target = match target {
                RedirectTarget::Device { ifindex } => json!({ "ifindex": ifindex }),
                RedirectTarget::Cpu { cpu, qsize } => json!({ "cpu": cpu, "qsize": qsize }),
                RedirectTarget::Socket { id } => json!({ "socket": id }),
                RedirectTarget::Broadcast {
                    ifindexes,
                    exclude_ingress,
                } => json!({
                    "broadcast": ifindexes,
                    "exclude_ingress": exclude_ingress,
                }),
            };
            json!({
                "kind": "map",
                "map": map,
                "map_type": map_type.name(),
                "key": key,
                "flags": flags,
                "target": target,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cordon::MapType;

    #[test]
    fn formats() {
        let r = Redirect::Map {
            map: "tx".into(),
            map_type: MapType::DevMap,
            key: 1,
            target: RedirectTarget::Device { ifindex: 7 },
            flags: 2,
        };
        assert_eq!(text(&r), "devmap \"tx\"[1] -> ifindex 7");
        let j = json(&r);
        assert_eq!(j["target"]["ifindex"], 7);
        assert_eq!(j["map_type"], "devmap");
        let r = Redirect::Ifindex {
            ifindex: 3,
            flags: 1,
        };
        assert_eq!(text(&r), "ifindex 3 (ingress)");
        assert_eq!(json(&r)["ingress"], true);
        let r = Redirect::Map {
            map: "c".into(),
            map_type: MapType::CpuMap,
            key: 0,
            target: RedirectTarget::Cpu { cpu: 0, qsize: 64 },
            flags: 0,
        };
        assert_eq!(text(&r), "cpumap \"c\"[0] -> cpu 0 (qsize 64)");
        let r = Redirect::Map {
            map: "d".into(),
            map_type: MapType::DevMapHash,
            key: 0,
            target: RedirectTarget::Broadcast {
                ifindexes: vec![1, 2],
                exclude_ingress: true,
            },
            flags: 24,
        };
        assert_eq!(
            text(&r),
            "devmap_hash \"d\"[0] -> broadcast to ifindexes [1, 2], excluding ingress"
        );
        assert_eq!(json(&r)["target"]["broadcast"][1], 2);
    }
}
