//! Async pendings: container updates that failed at write time, saved for
//! the object updater, in Swift's format (swift/obj/server.py
//! `async_update`, swift/obj/diskfile.py `pickle_async_update`,
//! swift/obj/updater.py).
//!
//! The file, `<dev>/async_pending[-N]/<suffix>/<obj hash>-<timestamp>`, is a
//! pickle, **protocol 0** (Swift's `write_pickle` default), of
//!
//! ```text
//! {'op': 'PUT', 'account': 'a', 'container': 'c', 'obj': 'o',
//!  'headers': HeaderKeyDict({'X-Size': '5', 'X-Content-Type': 'text/plain',
//!                            'X-Etag': '...', 'X-Timestamp': '...', ...}),
//!  'db_state': None}
//! ```
//!
//! to which the updater adds `successes` (ring device ids of the container
//! replicas that took the update) and, for sharded containers,
//! `container_path` and `redirect_history`. `headers` is Swift's
//! `HeaderKeyDict` (pickled through `copy_reg._reconstructor`), its keys
//! title-cased; we keep them lower-case in memory and title-case them on
//! write, as the `HeaderKeyDict` would. [`encode`] writes that, in Swift's
//! key order; [`decode`] reads it (from Python 3 or Python 2 Swift) and the
//! JSON objects we wrote before (`{"op": ..., "headers": {...}, ...}`).

use crate::pickle::{self, Globals, Obj, Pickler};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An async pending as stored on disk, plus the `successes` the updater
/// adds: ring device ids of the container replicas that already took it.
/// Keys we do not know are kept in `extra` and written back when the file
/// is rewritten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsyncPending {
    pub op: String,
    pub account: String,
    pub container: String,
    pub obj: String,
    /// Lower-case header names to values, sent as they are.
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub db_state: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub successes: Vec<u32>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// A header name as Swift's `HeaderKeyDict` stores it (Python's
/// `str.title()`: a letter is upper-case after a non-letter, else lower).
fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut prev_letter = false;
    for c in name.chars() {
        if prev_letter {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        prev_letter = c.is_alphabetic();
    }
    out
}

fn json_to_obj(v: &serde_json::Value) -> Obj {
    use serde_json::Value as J;
    match v {
        J::Null => Obj::None,
        J::Bool(b) => Obj::Bool(*b),
        J::Number(n) => n.as_i64().map(Obj::Int).unwrap_or_else(|| Obj::Float(n.as_f64().unwrap_or(0.0))),
        J::String(s) => Obj::Str(s.clone()),
        J::Array(items) => Obj::List(items.iter().map(json_to_obj).collect()),
        J::Object(m) => Obj::Dict(m.iter().map(|(k, v)| (Obj::Str(k.clone()), json_to_obj(v))).collect()),
    }
}

/// Text from a pickled string: Python 3 `str`, or Python 2 `str` (bytes:
/// UTF-8, else Latin-1).
fn text(o: Obj) -> Option<String> {
    match o {
        Obj::Str(s) => Some(s),
        Obj::Bytes(b) => Some(String::from_utf8(b).unwrap_or_else(|e| e.as_bytes().iter().map(|&c| c as char).collect())),
        _ => None,
    }
}

fn obj_to_json(o: Obj) -> serde_json::Value {
    use serde_json::Value as J;
    match o {
        Obj::None => J::Null,
        Obj::Bool(b) => J::Bool(b),
        Obj::Int(i) => J::from(i),
        Obj::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        Obj::Str(_) | Obj::Bytes(_) => J::String(text(o).unwrap_or_default()),
        Obj::List(items) | Obj::Tuple(items) => J::Array(items.into_iter().map(obj_to_json).collect()),
        Obj::Dict(items) | Obj::HeaderKeyDict(items) => {
            J::Object(items.into_iter().filter_map(|(k, v)| Some((text(k)?, obj_to_json(v)))).collect())
        }
    }
}

/// The pickle Swift writes for `p` (protocol 0; see the module docs).
pub fn encode(p: &AsyncPending) -> Vec<u8> {
    let s = |v: &str| Obj::Str(v.to_string());
    let headers = p.headers.iter().map(|(k, v)| (s(&title_case(k)), s(v))).collect();
    let mut items = vec![
        (s("op"), s(&p.op)),
        (s("account"), s(&p.account)),
        (s("container"), s(&p.container)),
        (s("obj"), s(&p.obj)),
        (s("headers"), Obj::HeaderKeyDict(headers)),
        (s("db_state"), p.db_state.as_deref().map_or(Obj::None, s)),
    ];
    items.extend(p.extra.iter().map(|(k, v)| (s(k), json_to_obj(v))));
    if !p.successes.is_empty() {
        items.push((s("successes"), Obj::List(p.successes.iter().map(|&i| Obj::Int(i as i64)).collect())));
    }
    Pickler::dumps(&Obj::Dict(items), 0)
}

/// Reads an async pending: a pickle written by Swift (Python 3 or 2) or by
/// [`encode`], or one of the JSON objects we wrote before.
pub fn decode(bytes: &[u8]) -> Result<AsyncPending, String> {
    if bytes.first() == Some(&b'{') {
        return serde_json::from_slice(bytes).map_err(|e| e.to_string());
    }
    let Obj::Dict(items) = pickle::load(bytes, Globals::Reconstruct)? else {
        return Err("async pending is not a dict".into());
    };
    let mut fields: BTreeMap<String, Obj> = BTreeMap::new();
    for (k, v) in items {
        let key = text(k).ok_or("async pending key is not a string")?;
        fields.insert(key, v);
    }
    let mut field = |name: &str| -> Result<String, String> {
        fields.remove(name).and_then(text).ok_or_else(|| format!("async pending without a string {name:?}"))
    };
    let (op, account, container, obj) = (field("op")?, field("account")?, field("container")?, field("obj")?);
    let headers = match fields.remove("headers") {
        Some(Obj::Dict(items)) => {
            let mut out = BTreeMap::new();
            for (k, v) in items {
                let k = text(k).ok_or("async pending header name is not a string")?;
                let v = match v {
                    Obj::Int(i) => i.to_string(),
                    other => text(other).ok_or_else(|| format!("async pending header {k:?} is not a string"))?,
                };
                out.insert(k.to_ascii_lowercase(), v);
            }
            out
        }
        _ => return Err("async pending without headers".into()),
    };
    let db_state = match fields.remove("db_state") {
        None | Some(Obj::None) => None,
        Some(other) => Some(text(other).ok_or("async pending db_state is not a string")?),
    };
    let successes = match fields.remove("successes") {
        None | Some(Obj::None) => Vec::new(),
        Some(Obj::List(ids)) => ids
            .into_iter()
            .map(|i| match i {
                Obj::Int(i) => u32::try_from(i).map_err(|_| format!("device id {i} out of range")),
                other => Err(format!("device id {other:?} is not an integer")),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("async pending successes is not a list: {other:?}")),
    };
    let extra = fields.into_iter().map(|(k, v)| (k, obj_to_json(v))).collect();
    Ok(AsyncPending { op, account, container, obj, headers, db_state, successes, extra })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/swift").join(name)).unwrap()
    }

    fn expected(name: &str) -> AsyncPending {
        let v: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
        let headers =
            v["headers"].as_object().unwrap().iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_string())).collect();
        AsyncPending {
            op: v["op"].as_str().unwrap().into(),
            account: v["account"].as_str().unwrap().into(),
            container: v["container"].as_str().unwrap().into(),
            obj: v["obj"].as_str().unwrap().into(),
            headers,
            db_state: v["db_state"].as_str().map(String::from),
            successes: v
                .get("successes")
                .map_or(Vec::new(), |s| s.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect()),
            extra: Default::default(),
        }
    }

    #[test]
    fn reads_what_swift_wrote() {
        assert_eq!(decode(&fixture("async_pending.pickle")).unwrap(), expected("async_pending.json"));
        let with_successes = decode(&fixture("async_pending.successes.pickle")).unwrap();
        assert_eq!(with_successes, expected("async_pending.successes.json"));
        assert_eq!(with_successes.successes, vec![1, 3]);
    }

    #[test]
    fn writes_what_swift_writes() {
        // Swift's bytes, give or take the order of the headers (Swift's
        // dict keeps insertion order, we write them sorted): same length,
        // same structure, same values.
        for name in ["async_pending", "async_pending.successes"] {
            let p = expected(&format!("{name}.json"));
            let ours = encode(&p);
            let swifts = fixture(&format!("{name}.pickle"));
            assert_eq!(ours.len(), swifts.len(), "{name}");
            assert!(ours.starts_with(b"(dp0\nVop\np1\nVPUT\np2\nsVaccount\n"), "{name}");
            let contains = |needle: &[u8]| ours.windows(needle.len()).any(|w| w == needle);
            assert!(contains(b"Vheaders\np9\nccopy_reg\n_reconstructor\np10\n(cswift.common.header_key_dict\nHeaderKeyDict\n"));
            assert_eq!(decode(&ours).unwrap(), p, "{name}");
        }
        // Header names are written as HeaderKeyDict keeps them.
        assert_eq!(title_case("x-backend-storage-policy-index"), "X-Backend-Storage-Policy-Index");
        assert_eq!(title_case("x-etag"), "X-Etag");
    }

    #[test]
    fn unknown_keys_survive_and_old_json_reads() {
        let raw = r#"{"op":"PUT","account":"a","container":"c","obj":"o","headers":{"x-size":"1"},"db_state":null,"future":7}"#;
        let mut p = decode(raw.as_bytes()).unwrap();
        assert_eq!(p.extra["future"], 7);
        p.successes.push(3);
        p.extra.insert("container_path".into(), serde_json::Value::Null);
        p.extra.insert("redirect_history".into(), serde_json::json!([".shards_a/c_1"]));
        assert_eq!(decode(&encode(&p)).unwrap(), p);
    }

    #[test]
    fn bad_pendings_are_errors() {
        for bad in [&b""[..], b"(dp0\n", b"N.", b"(dp0\nVop\np1\nVPUT\np2\ns.", b"\x80\x02}q\x00.", b"{not json"] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
