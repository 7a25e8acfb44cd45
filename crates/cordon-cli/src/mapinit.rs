//! Map contents given on the command line before a run:
//! `--map-update MAP:KEYHEX=VALUEHEX` and `--maps-file FILE.json`.
//!
//! Hex strings may contain `_`, `.` or `-` as separators and may start with
//! `0x`. An empty key (`MAP:=VALUE`) pushes onto a queue or stack. For
//! per-CPU maps the value is stored on every CPU, as `bpftool map update`
//! does.
//!
//! The maps file is one JSON object:
//!
//! ```json
//! {
//!   "comment": "optional",
//!   "maps": {
//!     "fw_rules": [
//!       { "key": "0a000042...", "value": "01000000...", "comment": "optional" }
//!     ]
//!   }
//! }
//! ```

use std::path::Path;

use serde_json::Value;

/// One entry to store in a map before the program runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapUpdate {
    pub map: String,
    /// Empty for a queue/stack push.
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Where it came from, for error messages.
    pub origin: String,
}

/// A malformed map update.
#[derive(Debug, thiserror::Error)]
pub enum MapInitError {
    #[error("--map-update {spec:?}: expected MAP:KEYHEX=VALUEHEX")]
    Syntax { spec: String },
    #[error("{origin}: {field} {text:?} is not hex: {problem}")]
    Hex {
        origin: String,
        field: &'static str,
        text: String,
        problem: String,
    },
    #[error("cannot read maps file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("maps file {path}: {problem}")]
    File { path: String, problem: String },
}

/// Decode a hex string with optional `0x` prefix and `_ . -` separators.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let digits: Vec<u8> = t
        .bytes()
        .filter(|b| !matches!(b, b'_' | b'.' | b'-' | b' '))
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            let s = std::str::from_utf8(pair).map_err(|_| format!("byte {i} is not ASCII"))?;
            u8::from_str_radix(s, 16).map_err(|_| format!("byte {i} ({s:?}) is not two hex digits"))
        })
        .collect()
}

/// Parse one `--map-update MAP:KEYHEX=VALUEHEX`.
pub fn parse_update(spec: &str) -> Result<MapUpdate, MapInitError> {
    let syntax = || MapInitError::Syntax {
        spec: spec.to_string(),
    };
    let (map, rest) = spec.split_once(':').ok_or_else(syntax)?;
    let (key, value) = rest.split_once('=').ok_or_else(syntax)?;
    if map.is_empty() || value.trim().is_empty() {
        return Err(syntax());
    }
    let origin = format!("--map-update {spec}");
    let hex = |field: &'static str, text: &str| {
        parse_hex(text).map_err(|problem| MapInitError::Hex {
            origin: origin.clone(),
            field,
            text: text.to_string(),
            problem,
        })
    };
    Ok(MapUpdate {
        map: map.to_string(),
        key: hex("key", key)?,
        value: hex("value", value)?,
        origin: origin.clone(),
    })
}

/// Read a maps file (format in the module documentation).
pub fn read_maps_file(path: &Path) -> Result<Vec<MapUpdate>, MapInitError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| MapInitError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_maps_json(&text, &shown)
}

/// Parse the maps file text; `path` names it in errors.
pub fn parse_maps_json(text: &str, path: &str) -> Result<Vec<MapUpdate>, MapInitError> {
    let bad = |problem: String| MapInitError::File {
        path: path.to_string(),
        problem,
    };
    let doc: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let top = doc
        .as_object()
        .ok_or_else(|| bad("the top level must be a JSON object".into()))?;
    for k in top.keys() {
        if k != "maps" && k != "comment" {
            return Err(bad(format!(
                "unknown top-level field {k:?} (expected \"maps\" and optionally \"comment\")"
            )));
        }
    }
    let maps = top
        .get("maps")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("missing object field \"maps\"".into()))?;
    let mut out = Vec::new();
    for (map, entries) in maps {
        let entries = entries
            .as_array()
            .ok_or_else(|| bad(format!("maps.{map} must be an array of entries")))?;
        for (i, e) in entries.iter().enumerate() {
            let origin = format!("{path}: maps.{map}[{i}]");
            let obj = e
                .as_object()
                .ok_or_else(|| bad(format!("maps.{map}[{i}] must be an object")))?;
            for k in obj.keys() {
                if !matches!(k.as_str(), "key" | "value" | "comment") {
                    return Err(bad(format!("maps.{map}[{i}]: unknown field {k:?}")));
                }
            }
            let field = |name: &'static str, required: bool| -> Result<Vec<u8>, MapInitError> {
                match obj.get(name) {
                    None if !required => Ok(Vec::new()),
                    None => Err(bad(format!("maps.{map}[{i}]: missing \"{name}\""))),
                    Some(Value::String(s)) => parse_hex(s).map_err(|problem| MapInitError::Hex {
                        origin: origin.clone(),
                        field: name,
                        text: s.clone(),
                        problem,
                    }),
                    Some(_) => Err(bad(format!(
                        "maps.{map}[{i}]: \"{name}\" must be a hex string"
                    ))),
                }
            };
            out.push(MapUpdate {
                map: map.clone(),
                key: field("key", false)?,
                value: field("value", true)?,
                origin,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_forms() {
        assert_eq!(parse_hex("0a0b").unwrap(), vec![10, 11]);
        assert_eq!(parse_hex("0x0a_0b").unwrap(), vec![10, 11]);
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("é1").is_err());
    }

    #[test]
    fn update_specs() {
        let u = parse_update("fw_rules:01020304=ff").unwrap();
        assert_eq!(
            (u.map.as_str(), u.key, u.value),
            ("fw_rules", vec![1, 2, 3, 4], vec![0xff])
        );
        let push = parse_update("queue:=2a000000").unwrap();
        assert!(push.key.is_empty());
        for bad in ["nomap", "m:01", ":01=02", "m:01=", "m:0=01", "m:01=xyz"] {
            assert!(parse_update(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn maps_json() {
        let u = parse_maps_json(
            r#"{"comment":"x","maps":{"a":[{"key":"01","value":"02","comment":"c"}],"q":[{"value":"03"}]}}"#,
            "f.json",
        )
        .unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].key, vec![1]);
        assert!(u[1].key.is_empty());
        for bad in [
            "[]",
            "{}",
            r#"{"maps":[]}"#,
            r#"{"maps":{"a":{}}}"#,
            r#"{"maps":{"a":[{"key":"01"}]}}"#,
            r#"{"maps":{"a":[{"key":1,"value":"01"}]}}"#,
            r#"{"maps":{"a":[{"key":"01","value":"01","extra":1}]}}"#,
            r#"{"maps":{},"typo":1}"#,
            "not json",
        ] {
            assert!(parse_maps_json(bad, "f").is_err(), "{bad}");
        }
    }
}
