//! The HTTP contract of the container server, one file per operation
//! family, plus the request/response helpers they share.

pub mod container;
pub mod listing;
pub mod object;

use crate::routing::Refusal;
use crate::server::ContainerServer;
use common::db::broker::title_case_header;
use common::db::{ContainerInfo, DbError, Metadata};
use common::devices::DeviceError;
use common::http::{self as h, Body};
use common::log;
use common::timestamp::{http_date, Timestamp};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

/// A one-line refusal as a response.
pub fn refuse((status, reason): Refusal) -> Response<Body> {
    h::text(status, reason)
}

/// 400 with a reason.
pub fn bad_request(reason: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, reason.into())
}

/// Maps a storage failure to a response, logging what is the server's
/// fault (once, here).
pub fn storage_failure(what: &str, e: DbError) -> Response<Body> {
    match e {
        DbError::InvalidMetadata(reason) => h::text(StatusCode::BAD_REQUEST, reason),
        DbError::NotFound(_) => h::status(StatusCode::NOT_FOUND),
        e => {
            log::error(&format!("ERROR {what}: {e}"));
            h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// 507 for a device that cannot take requests.
pub fn device_failure(device: &str, _e: DeviceError) -> Response<Body> {
    h::insufficient_storage(device)
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
    match header(headers, "x-timestamp") {
        Ok(Some(v)) => Timestamp::parse(v).map_err(|_| bad_request("Invalid X-Timestamp header")),
        Ok(None) => Err(bad_request("Missing X-Timestamp header")),
        Err(_) => Err(bad_request("Invalid X-Timestamp header")),
    }
}

/// Swift's `config_true_value`.
pub fn true_value(v: Option<&str>) -> bool {
    matches!(v.map(|s| s.trim().to_ascii_lowercase()).as_deref(), Some("true" | "1" | "yes" | "on" | "t" | "y"))
}

impl ContainerServer {
    /// `X-Backend-Storage-Policy-Index`, which must name a configured policy.
    pub fn requested_policy(&self, headers: &HeaderMap) -> Result<Option<i64>, Refusal> {
        let Some(raw) = headers.get("x-backend-storage-policy-index") else { return Ok(None) };
        let text = String::from_utf8_lossy(raw.as_bytes());
        let known = text.trim().parse::<u32>().ok().filter(|i| self.swift.policy_by_index(*i).is_some());
        match known {
            Some(i) => Ok(Some(i64::from(i))),
            None => Err(bad_request(format!("Invalid X-Backend-Storage-Policy-Index '{text}'"))),
        }
    }

    /// Whether `key` (lower case) is container metadata we keep: user and
    /// system metadata and Swift's `save_headers`.
    pub fn is_saved_header(&self, key: &str) -> bool {
        let user = key.len() > "x-container-meta-".len() && key.starts_with("x-container-meta-");
        let sys = key.len() > "x-container-sysmeta-".len() && key.starts_with("x-container-sysmeta-");
        user || sys
            || matches!(key, "x-container-read" | "x-container-write" | "x-container-sync-key" | "x-container-sync-to")
            || (self.settings.allow_versions && key == "x-versions-location")
    }

    /// The metadata a PUT/POST carries, stamped with its timestamp.
    pub fn request_metadata(&self, headers: &HeaderMap, ts: &Timestamp) -> Result<Metadata, Refusal> {
        let mut md = Metadata::new();
        for (name, value) in headers {
            if !self.is_saved_header(name.as_str()) {
                continue;
            }
            let value = std::str::from_utf8(value.as_bytes()).map_err(|_| bad_request("Metadata must be valid UTF-8"))?;
            md.insert(title_case_header(name.as_str()), (value.to_string(), ts.internal()));
        }
        Ok(md)
    }

    /// The stored metadata worth returning: live values of saved keys.
    pub fn response_metadata<'a>(&'a self, md: &'a Metadata) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        md.iter()
            .filter(|(k, (v, _))| !v.is_empty() && self.is_saved_header(&k.to_ascii_lowercase()))
            .map(|(k, (v, _))| (k.as_str(), v.as_str()))
    }
}

fn ts_internal(s: &str) -> String {
    Timestamp::parse(s).unwrap_or(Timestamp::ZERO).internal()
}

fn ts_normal(s: &str) -> String {
    Timestamp::parse(s).unwrap_or(Timestamp::ZERO).normal()
}

/// Swift's `gen_resp_headers`: backend timestamps always, counts and
/// client timestamps only for a live container.
pub fn info_headers(info: &ContainerInfo, deleted: bool) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("x-backend-timestamp", ts_internal(&info.created_at)),
        ("x-backend-put-timestamp", ts_internal(&info.put_timestamp)),
        ("x-backend-delete-timestamp", ts_internal(&info.delete_timestamp)),
        ("x-backend-status-changed-at", ts_internal(&info.status_changed_at)),
        ("x-backend-storage-policy-index", info.storage_policy_index.to_string()),
    ];
    if !deleted {
        v.extend([
            ("x-container-object-count", info.object_count.to_string()),
            ("x-container-bytes-used", info.bytes_used.to_string()),
            ("x-timestamp", ts_normal(&info.created_at)),
            ("x-put-timestamp", ts_normal(&info.put_timestamp)),
            ("x-backend-sharding-state", "unsharded".to_string()),
        ]);
    }
    v
}

/// Adds a header, skipping values HTTP cannot carry.
pub fn set_header(resp: &mut Response<Body>, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value.as_bytes())) {
        resp.headers_mut().insert(n, v);
    }
}

/// `Last-Modified` from the put timestamp, rounded up to whole seconds as
/// swob does.
pub fn last_modified(info: &ContainerInfo) -> String {
    http_date(Timestamp::parse(&info.put_timestamp).unwrap_or(Timestamp::ZERO).ceil_secs())
}
