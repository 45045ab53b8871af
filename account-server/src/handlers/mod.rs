//! The HTTP contract of the account server, one file per operation
//! family, plus the account-only helpers they share (the ones the container
//! server needs too are in `common::dbserver::request` and `common::dbserver::response`).

pub mod account;
pub mod container;
pub mod listing;

use crate::server::AccountServer;
use crate::storage::AccountState;
use common::backend_headers as bh;
use common::db::broker::timestamp_or_zero;
use common::db::{Metadata, MetadataLimits};
use common::dbserver::request::{self, Refusal};
use common::dbserver::response::set_header;
use common::http::{self as h, Body};
use common::timestamp::Timestamp;
use http::{HeaderMap, Response, StatusCode};

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
    request::is_sys_or_user_meta("account", key)
}

/// The metadata a PUT/POST carries, stamped with its timestamp.
pub fn request_metadata(headers: &HeaderMap, ts: &Timestamp) -> Result<Metadata, Refusal> {
    request::request_metadata(headers, ts, is_account_meta)
}

impl AccountServer {
    /// Swift's metadata limits from `swift.conf`.
    pub fn metadata_limits(&self) -> MetadataLimits {
        request::metadata_limits(&self.swift.constraints)
    }

    /// Swift's `get_response_headers`: totals, timestamps, per-policy
    /// totals (policies named in `swift.conf` only) and live metadata.
    pub fn account_headers(&self, state: &AccountState) -> Vec<(String, String)> {
        let info = &state.info;
        let mut v = vec![
            ("x-account-container-count".to_string(), info.container_count.to_string()),
            ("x-account-object-count".to_string(), info.object_count.to_string()),
            ("x-account-bytes-used".to_string(), info.bytes_used.to_string()),
            (bh::TIMESTAMP.to_string(), timestamp_or_zero(&info.created_at).normal()),
            (bh::PUT_TIMESTAMP.to_string(), timestamp_or_zero(&info.put_timestamp).normal()),
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
