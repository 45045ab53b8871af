//! REPLICATE: the suffix hashes of a partition, for the replicator to
//! compare with its peers.
//!
//! The answer is a JSON object `{"<suffix>": "<md5 hex>", ...}` (Swift
//! answers a protocol-2 pickle of the same dict). Hashes are computed on
//! every request from the files on disk, so no cache (`hashes.pkl`) can go
//! stale; suffixes named in the path (`/<dev>/<part>/<suf>-<suf>`) limit the
//! answer to those suffixes.

use crate::diskfile::{self, policy_dir};
use crate::ObjectServer;
use common::http::{self as h, Body};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use std::sync::Arc;

/// Handles `REPLICATE /<dev>/<part>[/<suf>-<suf>...]`.
pub async fn handle(
    server: Arc<ObjectServer>,
    headers: &HeaderMap,
    device: String,
    partition: u32,
    suffixes: Vec<String>,
) -> Response<Body> {
    let policy = match server.policy_index(headers) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if suffixes.iter().any(|s| s.len() != 3 || !s.bytes().all(|b| b.is_ascii_hexdigit())) {
        return h::text(StatusCode::BAD_REQUEST, "Invalid suffix");
    }
    let device_path = match server.check_device(&device).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let dir = device_path.join(policy_dir("objects", policy)).join(partition.to_string());
    match server.devices.run(&device, move || diskfile::partition_hashes(&dir, &suffixes)).await {
        Ok(hashes) => {
            let body = serde_json::to_vec(&hashes).unwrap_or_else(|_| b"{}".to_vec());
            let mut r = h::text(StatusCode::OK, "");
            *r.body_mut() = h::full(body.clone());
            r.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => {
            common::log::error(&format!("ERROR hashing partition {partition} on {device}: {e}"));
            h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error hashing partition")
        }
    }
}
