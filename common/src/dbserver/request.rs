//! Reading the requests of the account and container servers (the two
//! servers in front of a [`DatabaseBroker`](crate::db::DatabaseBroker)):
//! headers, `X-Timestamp`, query and listing parameters, and the metadata
//! a PUT or POST carries, with Swift's rules.
//!
//! A request that breaks a rule becomes a [`Refusal`]: the status and a
//! one-line reason, which [`super::response::refuse`] turns into the
//! response.

use crate::backend_headers as bh;
use crate::db::broker::title_case_header;
use crate::db::listing::{listing_content_type, ListingParams, NegotiationError};
use crate::db::{Metadata, MetadataLimits};
use crate::path::{parse_storage_path, StoragePath};
use crate::swift_conf::Constraints;
use crate::timestamp::Timestamp;
use http::{HeaderMap, StatusCode};

/// A refused request: status and one-line reason.
pub type Refusal = (StatusCode, String);

/// 400 with a reason.
pub fn bad_request(reason: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, reason.into())
}

/// Parses the raw (quoted) request path of `min` to `max` segments
/// (`parse_storage_path`) and checks Swift's name limits (the proxy
/// enforces them; we refuse too, so a bad name never reaches a database).
pub fn parse_path(raw_path: &str, min: usize, max: usize, limits: &Constraints) -> Result<StoragePath, Refusal> {
    let path = parse_storage_path(raw_path, min, max).map_err(|e| (e.status(), e.to_string()))?;
    check_name_lengths(&path, limits)?;
    Ok(path)
}

/// Swift's limits on account, container and object name lengths.
fn check_name_lengths(path: &StoragePath, limits: &Constraints) -> Result<(), Refusal> {
    let too_long = |what: &str, len: usize, max: u64| bad_request(format!("{what} name length of {len} longer than {max}"));
    if path.account.len() as u64 > limits.max_account_name_length {
        return Err(too_long("Account", path.account.len(), limits.max_account_name_length));
    }
    if let Some(c) = &path.container {
        if c.len() as u64 > limits.max_container_name_length {
            return Err(too_long("Container", c.len(), limits.max_container_name_length));
        }
    }
    if let Some(o) = &path.object {
        if o.len() as u64 > limits.max_object_name_length {
            return Err(too_long("Object", o.len(), limits.max_object_name_length));
        }
    }
    Ok(())
}

/// A header as UTF-8 text; `Err` when present but not UTF-8.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Refusal> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v.as_bytes()).map(Some).map_err(|_| bad_request(format!("Invalid UTF-8 in {name}"))),
    }
}

/// The request's required `X-Timestamp` (Swift's `valid_timestamp`).
pub fn request_timestamp(headers: &HeaderMap) -> Result<Timestamp, Refusal> {
    match header(headers, bh::TIMESTAMP) {
        Ok(Some(v)) => Timestamp::parse(v).map_err(|_| bad_request("Invalid X-Timestamp header")),
        Ok(None) => Err(bad_request("Missing X-Timestamp header")),
        Err(_) => Err(bad_request("Invalid X-Timestamp header")),
    }
}

/// Swift's `config_true_value`, for header and query values.
pub fn true_value(v: Option<&str>) -> bool {
    matches!(v.map(|s| s.trim().to_ascii_lowercase()).as_deref(), Some("true" | "1" | "yes" | "on" | "t" | "y"))
}

/// Decodes one `application/x-www-form-urlencoded` component to bytes.
fn form_decode(s: &str) -> Vec<u8> {
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus).collect()
}

/// The last value of query parameter `name` (Swift's `get_param`):
/// `Ok(None)` when absent, 400 when not UTF-8.
pub fn query_param(query: Option<&str>, name: &str) -> Result<Option<String>, Refusal> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(k) == name.as_bytes() {
            found = Some(v);
        }
    }
    match found {
        None => Ok(None),
        Some(v) => String::from_utf8(form_decode(v)).map(Some).map_err(|_| bad_request(format!("\"{name}\" parameter not valid UTF-8"))),
    }
}

/// The listing parameters of a container GET (Swift's
/// `validate_container_params`): see [`listing_params`]; `path` is read.
pub fn container_listing_params(query: Option<&str>, max_limit: u64) -> Result<ListingParams, Refusal> {
    listing_params(query, max_limit, true)
}

/// The listing parameters of an account GET: see [`listing_params`].
/// Account listings take no `path`, so it is not even decoded (a bad one
/// is no error).
pub fn account_listing_params(query: Option<&str>, max_limit: u64) -> Result<ListingParams, Refusal> {
    listing_params(query, max_limit, false)
}

/// The listing parameters of a GET: `limit` defaults to, and may not
/// exceed, `max_limit` (Swift's `constrain_req_limit`; a `limit` that is
/// not all digits is ignored). The parameters are decoded in Swift's order,
/// so the first bad one is the one named in the 400.
fn listing_params(query: Option<&str>, max_limit: u64, with_path: bool) -> Result<ListingParams, Refusal> {
    let p = |n: &str| query_param(query, n);
    let mut limit = max_limit;
    if let Some(given) = p("limit")?.filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit())) {
        limit = given.parse::<u64>().unwrap_or(u64::MAX);
        if limit > max_limit {
            return Err((StatusCode::PRECONDITION_FAILED, format!("Maximum limit is {max_limit}")));
        }
    }
    Ok(ListingParams {
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        marker: p("marker")?.unwrap_or_default(),
        end_marker: p("end_marker")?.unwrap_or_default(),
        prefix: p("prefix")?,
        delimiter: p("delimiter")?,
        path: if with_path { p("path")? } else { None },
        reverse: true_value(p("reverse")?.as_deref()),
        allow_reserved: false,
    })
}

/// The listing content type a GET or HEAD asks for with `format` (the query
/// parameter) or else its `Accept` header (Swift's `get_listing_content_type`).
pub fn negotiate_listing(format: Option<&str>, headers: &HeaderMap) -> Result<&'static str, NegotiationError> {
    let accept = headers.get("accept").and_then(|v| v.to_str().ok());
    listing_content_type(format, accept)
}

/// Whether `key` (a lower-case header name) is user metadata
/// (`X-<type>-Meta-*`) or system metadata (`X-<type>-Sysmeta-*`) of
/// `server_type` (`"account"` or `"container"`), with something after the
/// prefix (Swift's `is_sys_or_user_meta`).
pub fn is_sys_or_user_meta(server_type: &str, key: &str) -> bool {
    let Some(rest) = key.strip_prefix("x-").and_then(|k| k.strip_prefix(server_type)) else {
        return false;
    };
    ["-meta-", "-sysmeta-"].iter().any(|p| rest.strip_prefix(p).is_some_and(|name| !name.is_empty()))
}

/// The metadata a PUT/POST carries: the headers `keep` accepts, under
/// their title-case names, stamped with the request's timestamp. A value
/// that is not UTF-8 is a 400.
pub fn request_metadata(headers: &HeaderMap, ts: &Timestamp, keep: impl Fn(&str) -> bool) -> Result<Metadata, Refusal> {
    let mut md = Metadata::new();
    for (name, value) in headers {
        if !keep(name.as_str()) {
            continue;
        }
        let value = std::str::from_utf8(value.as_bytes()).map_err(|_| bad_request("Metadata must be valid UTF-8"))?;
        md.insert(title_case_header(name.as_str()), (value.to_string(), ts.internal()));
    }
    Ok(md)
}

/// Swift's metadata limits from `swift.conf`'s constraints.
pub fn metadata_limits(c: &Constraints) -> MetadataLimits {
    MetadataLimits { max_count: c.max_meta_count, max_overall_size: c.max_meta_overall_size }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_params_decode_like_swob() {
        let p = container_listing_params(Some("prefix=a+b%2Fc&limit=5&reverse=on&marker=%C3%A9"), 10_000).unwrap();
        assert_eq!(p.prefix.as_deref(), Some("a b/c"));
        assert_eq!((p.limit, p.reverse, p.marker.as_str()), (5, true, "é"));
        assert_eq!(container_listing_params(Some("limit=abc"), 10_000).unwrap().limit, 10_000);
        let over = container_listing_params(Some("limit=10001"), 10_000).unwrap_err();
        assert_eq!(over, (StatusCode::PRECONDITION_FAILED, "Maximum limit is 10000".into()));
        assert_eq!(container_listing_params(Some("marker=%ff"), 10_000).unwrap_err().0, 400);
    }

    #[test]
    fn account_params_decode_like_swob_and_take_no_path() {
        let p = account_listing_params(Some("prefix=a+b%2Fc&limit=5&reverse=on&marker=%C3%A9&path=x"), 10_000).unwrap();
        assert_eq!(p.prefix.as_deref(), Some("a b/c"));
        assert_eq!((p.limit, p.reverse, p.marker.as_str(), p.path.clone()), (5, true, "é", None));
        assert_eq!(account_listing_params(Some("limit=abc"), 10_000).unwrap().limit, 10_000);
        let over = account_listing_params(Some("limit=10001"), 10_000).unwrap_err();
        assert_eq!(over, (StatusCode::PRECONDITION_FAILED, "Maximum limit is 10000".into()));
        assert_eq!(account_listing_params(Some("end_marker=%ff"), 10_000).unwrap_err().0, 400);
        // Only a container listing decodes `path`.
        assert!(account_listing_params(Some("path=%ff"), 10_000).is_ok());
        assert_eq!(container_listing_params(Some("path=%ff"), 10_000).unwrap_err().0, 400);
    }

    #[test]
    fn meta_keys_follow_swift() {
        assert!(is_sys_or_user_meta("account", "x-account-meta-color"));
        assert!(is_sys_or_user_meta("account", "x-account-sysmeta-quota"));
        assert!(!is_sys_or_user_meta("account", "x-account-meta-"));
        assert!(!is_sys_or_user_meta("account", "x-container-meta-color"));
        assert!(is_sys_or_user_meta("container", "x-container-sysmeta-x"));
        assert!(!is_sys_or_user_meta("container", "x-container-read"));
    }
}
