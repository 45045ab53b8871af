//! Request checks shared by the object verbs, with Swift's statuses and
//! one-line reasons (swift/common/constraints.py).

use crate::metadata::Metadata;
use common::backend_headers as bh;
use common::http::{self as h, Body};
use common::swift_conf::Constraints;
use common::timestamp::{parse_int_header, Timestamp, MAX_DELETE_AT};
use http::{HeaderMap, Response, StatusCode};
use std::collections::BTreeSet;

fn bad(reason: impl Into<String>) -> Response<Body> {
    h::text(StatusCode::BAD_REQUEST, reason)
}

/// Refuses requests with more headers than Swift's `MAX_HEADER_COUNT`.
pub fn check_header_count(headers: &HeaderMap, c: &Constraints) -> Result<(), Response<Body>> {
    if headers.len() as u64 > c.max_header_count() {
        return Err(bad("Too many headers"));
    }
    Ok(())
}

/// The request's `X-Timestamp` (Swift's `valid_timestamp`).
pub fn valid_timestamp(headers: &HeaderMap) -> Result<Timestamp, Response<Body>> {
    let Some(v) = headers.get(bh::TIMESTAMP) else { return Err(bad("Missing X-Timestamp header")) };
    v.to_str().ok().and_then(|s| Timestamp::parse(s.trim()).ok()).ok_or_else(|| bad("Invalid X-Timestamp header"))
}

/// `X-Timestamp` if valid, else the current time (Swift's
/// `ensure_x_timestamp` for GET/HEAD).
pub fn request_time(headers: &HeaderMap) -> Timestamp {
    valid_timestamp(headers).unwrap_or_else(|_| Timestamp::now())
}

/// Swift's `check_metadata(req, 'object')`.
pub fn check_metadata(headers: &HeaderMap, c: &Constraints) -> Result<(), Response<Body>> {
    const PREFIX: &str = "x-object-meta-";
    let mut count = 0u64;
    let mut size = 0u64;
    for (name, value) in headers {
        let key = name.as_str();
        let value = value.as_bytes();
        if value.len() as u64 > c.max_header_size {
            let cut: String = key.chars().take(c.max_meta_name_length as usize).collect();
            return Err(bad(format!("Header value too long: {cut}")));
        }
        let Some(meta) = key.strip_prefix(PREFIX) else { continue };
        if meta.is_empty() {
            return Err(bad("Metadata name cannot be empty"));
        }
        count += 1;
        size += (meta.len() + value.len()) as u64;
        if meta.len() as u64 > c.max_meta_name_length {
            return Err(bad(format!("Metadata name too long: {PREFIX}{meta}")));
        }
        if value.len() as u64 > c.max_meta_value_length {
            return Err(bad(format!("Metadata value longer than {}: {PREFIX}{meta}", c.max_meta_value_length)));
        }
        if count > c.max_meta_count {
            return Err(bad(format!("Too many metadata items; max {}", c.max_meta_count)));
        }
        if size > c.max_meta_overall_size {
            return Err(bad(format!("Total metadata too large; max {}", c.max_meta_overall_size)));
        }
    }
    Ok(())
}

/// Swift's `check_delete_headers` for a write at `now`: the normalised
/// `X-Delete-At` (seconds) if any. `X-Delete-After` becomes `X-Delete-At`.
pub fn check_delete_headers(headers: &HeaderMap, now: Timestamp) -> Result<Option<u64>, Response<Body>> {
    let now_f = now.as_secs_f64();
    let replication = h::header_str(headers, bh::BACKEND_REPLICATION).and_then(common::config::parse_bool).unwrap_or(false);
    if let Some(v) = headers.get("x-delete-after") {
        let after = v.to_str().ok().and_then(parse_int_header).ok_or_else(|| bad("Non-integer X-Delete-After"))?;
        let at = (now_f + after as f64).floor().min(MAX_DELETE_AT as f64);
        if at <= now_f {
            return Err(bad("X-Delete-After in past"));
        }
        return Ok(Some(at as u64));
    }
    if let Some(v) = headers.get(bh::DELETE_AT) {
        let at = v.to_str().ok().and_then(parse_int_header).ok_or_else(|| bad("Non-integer X-Delete-At"))?;
        if (at as f64) <= now_f && !replication {
            return Err(bad("X-Delete-At in past"));
        }
        return Ok(Some(at.clamp(0, MAX_DELETE_AT) as u64));
    }
    Ok(None)
}

/// Python's `str.title()` on an ASCII header name: `x-object-meta-foo` →
/// `X-Object-Meta-Foo`, how Swift stores header names.
pub fn title_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut prev_cased = false;
    for ch in name.chars() {
        if ch.is_alphabetic() {
            if prev_cased {
                out.extend(ch.to_lowercase());
            } else {
                out.extend(ch.to_uppercase());
            }
            prev_cased = true;
        } else {
            out.push(ch);
            prev_cased = false;
        }
    }
    out
}

/// Whether a header is object metadata kept by a PUT: user metadata,
/// system metadata or transient system metadata.
pub fn is_object_meta(name: &str) -> bool {
    name.starts_with("x-object-meta-") || name.starts_with("x-object-sysmeta-") || name.starts_with("x-object-transient-sysmeta-")
}

/// The metadata a request carries: headers selected by `keep`, plus the
/// `allowed` headers, names title-cased. Values that are not text are
/// UTF-8, else taken as Latin-1, as WSGI does.
pub fn request_metadata(headers: &HeaderMap, allowed: &BTreeSet<String>, keep: impl Fn(&str) -> bool) -> Metadata {
    let mut m = Metadata::new();
    for (name, value) in headers {
        let n = name.as_str();
        if keep(n) || allowed.contains(n) {
            // UTF-8 (what Swift clients send) is kept as is; other bytes
            // are taken as Latin-1, as WSGI does.
            let v = match std::str::from_utf8(value.as_bytes()) {
                Ok(s) => s.to_string(),
                Err(_) => value.as_bytes().iter().map(|&b| b as char).collect(),
            };
            m.insert(title_case(n), v);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_like_python() {
        assert_eq!(title_case("x-object-meta-foo1bar"), "X-Object-Meta-Foo1Bar");
        assert_eq!(title_case("content-disposition"), "Content-Disposition");
    }

    #[test]
    fn metadata_limits() {
        let c = Constraints::default();
        let mut hm = HeaderMap::new();
        hm.insert("x-object-meta-a", "b".parse().unwrap());
        assert!(check_metadata(&hm, &c).is_ok());
        hm.insert("x-object-meta-big", "v".repeat(257).parse().unwrap());
        assert!(check_metadata(&hm, &c).is_err());
    }
}
