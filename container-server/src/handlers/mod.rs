//! The HTTP contract of the container server, one file per operation
//! family, plus the container-only helpers they share (the ones the account
//! server needs too are in `common::dbserver::request` and `common::dbserver::response`).

pub mod container;
pub mod listing;
pub mod object;

use crate::server::ContainerServer;
use common::backend_headers as bh;
use common::db::broker::timestamp_or_zero;
use common::db::{ContainerInfo, Metadata};
use common::dbserver::request::{self, bad_request, Refusal};
use common::timestamp::{http_date, Timestamp};
use http::HeaderMap;

impl ContainerServer {
    /// `X-Backend-Storage-Policy-Index`, which must name a configured policy.
    pub fn requested_policy(&self, headers: &HeaderMap) -> Result<Option<i64>, Refusal> {
        let Some(raw) = headers.get(bh::BACKEND_STORAGE_POLICY_INDEX) else { return Ok(None) };
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
        request::is_sys_or_user_meta("container", key)
            || matches!(key, "x-container-read" | "x-container-write" | "x-container-sync-key" | "x-container-sync-to")
            || (self.settings.allow_versions && key == "x-versions-location")
    }

    /// The metadata a PUT/POST carries, stamped with its timestamp.
    pub fn request_metadata(&self, headers: &HeaderMap, ts: &Timestamp) -> Result<Metadata, Refusal> {
        request::request_metadata(headers, ts, |key| self.is_saved_header(key))
    }

    /// The stored metadata worth returning: live values of saved keys.
    pub fn response_metadata<'a>(&'a self, md: &'a Metadata) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        md.iter()
            .filter(|(k, (v, _))| !v.is_empty() && self.is_saved_header(&k.to_ascii_lowercase()))
            .map(|(k, (v, _))| (k.as_str(), v.as_str()))
    }
}

fn ts_internal(s: &str) -> String {
    timestamp_or_zero(s).internal()
}

fn ts_normal(s: &str) -> String {
    timestamp_or_zero(s).normal()
}

/// Swift's `gen_resp_headers`: backend timestamps always, counts and
/// client timestamps only for a live container.
pub fn info_headers(info: &ContainerInfo, deleted: bool) -> Vec<(&'static str, String)> {
    let mut v = vec![
        (bh::BACKEND_TIMESTAMP, ts_internal(&info.created_at)),
        (bh::BACKEND_PUT_TIMESTAMP, ts_internal(&info.put_timestamp)),
        (bh::BACKEND_DELETE_TIMESTAMP, ts_internal(&info.delete_timestamp)),
        (bh::BACKEND_STATUS_CHANGED_AT, ts_internal(&info.status_changed_at)),
        (bh::BACKEND_STORAGE_POLICY_INDEX, info.storage_policy_index.to_string()),
    ];
    if !deleted {
        v.extend([
            ("x-container-object-count", info.object_count.to_string()),
            ("x-container-bytes-used", info.bytes_used.to_string()),
            (bh::TIMESTAMP, ts_normal(&info.created_at)),
            (bh::PUT_TIMESTAMP, ts_normal(&info.put_timestamp)),
            (bh::BACKEND_SHARDING_STATE, "unsharded".to_string()),
        ]);
    }
    v
}

/// `Last-Modified` from the put timestamp, rounded up to whole seconds as
/// swob does.
pub fn last_modified(info: &ContainerInfo) -> String {
    http_date(timestamp_or_zero(&info.put_timestamp).ceil_secs())
}
