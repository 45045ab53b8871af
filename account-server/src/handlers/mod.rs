//! The HTTP contract of the account server, one file per operation
//! family, plus the request/response helpers they share.

pub mod account;
pub mod container;
pub mod listing;

use crate::routing::Refusal;
use crate::server::AccountServer;
use crate::storage::AccountState;
use common::db::broker::title_case_header;
use common::db::{DbError, Metadata, MetadataLimits};
use common::devices::DeviceError;
use common::http::{self as h, Body};
use common::log;
use common::timestamp::Timestamp;
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

/// Adds a header, skipping values HTTP cannot carry.
pub fn set_header(resp: &mut Response<Body>, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value.as_bytes())) {
        resp.headers_mut().insert(n, v);
    }
}

/// Swift's `_deleted_response`: `status`, with `X-Account-Status: Deleted`
/// when the database says the account was deleted (not merely missing).
pub fn deleted_response(status: StatusCode, status_deleted: bool, body: &str) -> Response<Body> {
    let mut r = h::text(status, body);
    if status_deleted {
        set_header(&mut r, "x-account-status", "Deleted");
    }
    r
}

/// Whether `key` (lower case) is account metadata we keep: user metadata
/// (`X-Account-Meta-*`) and system metadata (`X-Account-Sysmeta-*`), with
/// something after the prefix (Swift's `is_sys_or_user_meta`).
pub fn is_account_meta(key: &str) -> bool {
    let user = key.len() > "x-account-meta-".len() && key.starts_with("x-account-meta-");
    let sys = key.len() > "x-account-sysmeta-".len() && key.starts_with("x-account-sysmeta-");
    user || sys
}

/// The metadata a PUT/POST carries, stamped with its timestamp.
pub fn request_metadata(headers: &HeaderMap, ts: &Timestamp) -> Result<Metadata, Refusal> {
    let mut md = Metadata::new();
    for (name, value) in headers {
        if !is_account_meta(name.as_str()) {
            continue;
        }
        let value = std::str::from_utf8(value.as_bytes()).map_err(|_| bad_request("Metadata must be valid UTF-8"))?;
        md.insert(title_case_header(name.as_str()), (value.to_string(), ts.internal()));
    }
    Ok(md)
}

fn ts_normal(s: &str) -> String {
    Timestamp::parse(s).unwrap_or(Timestamp::ZERO).normal()
}

impl AccountServer {
    /// Swift's metadata limits from `swift.conf`.
    pub fn metadata_limits(&self) -> MetadataLimits {
        let c = &self.swift.constraints;
        MetadataLimits { max_count: c.max_meta_count, max_overall_size: c.max_meta_overall_size }
    }

    /// Swift's `get_response_headers`: totals, timestamps, per-policy
    /// totals (policies named in `swift.conf` only) and live metadata.
    pub fn account_headers(&self, state: &AccountState) -> Vec<(String, String)> {
        let info = &state.info;
        let mut v = vec![
            ("x-account-container-count".to_string(), info.container_count.to_string()),
            ("x-account-object-count".to_string(), info.object_count.to_string()),
            ("x-account-bytes-used".to_string(), info.bytes_used.to_string()),
            ("x-timestamp".to_string(), ts_normal(&info.created_at)),
            ("x-put-timestamp".to_string(), ts_normal(&info.put_timestamp)),
        ];
        for stats in &state.policy_stats {
            let Some(policy) = u32::try_from(stats.storage_policy_index).ok().and_then(|i| self.swift.policy_by_index(i)) else {
                continue;
            };
            let prefix = format!("X-Account-Storage-Policy-{}", policy.name);
            v.push((format!("{prefix}-Container-Count"), stats.container_count.to_string()));
            v.push((format!("{prefix}-Object-Count"), stats.object_count.to_string()));
            v.push((format!("{prefix}-Bytes-Used"), stats.bytes_used.to_string()));
        }
        for (k, (value, _)) in &state.metadata {
            if !value.is_empty() {
                v.push((k.clone(), value.clone()));
            }
        }
        v
    }
}
