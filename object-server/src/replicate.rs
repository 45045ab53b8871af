//! REPLICATE: the suffix hashes of a partition, for the replicator to
//! compare with its peers (swift/obj/server.py `REPLICATE`).
//!
//! `REPLICATE /<dev>/<part>` answers [`hashes::get_hashes`] of the
//! partition as Swift does: a protocol-2 pickle of `{suffix: md5 hex}`
//! ([`hashes::encode_replicate_response`]), with Swift's Content-Type
//! (swob's default, `text/html; charset=UTF-8`; nobody reads it).
//! `REPLICATE /<dev>/<part>/<suf>-<suf>...` only marks those suffixes for
//! rehashing (the replicator sends it after syncing them, so the next
//! REPLICATE recomputes them) and answers a pickled `None`, as Swift since
//! it stopped rehashing there. Names that are not suffixes are ignored, as
//! Swift ignores them.

use crate::diskfile::policy_dir;
use crate::hashes;
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
    let device_path = match server.check_device(&device).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let dir = device_path.join(policy_dir("objects", policy)).join(partition.to_string());
    let reclaim_age = server.settings.reclaim_age;
    let only_invalidate = !suffixes.is_empty();
    let result = server
        .devices
        .run(&device, move || -> std::io::Result<Vec<u8>> {
            if only_invalidate {
                for s in suffixes.iter().filter(|s| hashes::valid_suffix(s)) {
                    hashes::invalidate_hash(&dir.join(s))?;
                }
                return Ok(hashes::REPLICATE_INVALIDATED_BODY.to_vec());
            }
            Ok(hashes::encode_replicate_response(&hashes::get_hashes(&dir, &[], reclaim_age)?))
        })
        .await;
    match result {
        Ok(body) => {
            let mut r = h::text(StatusCode::OK, "");
            r.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
            *r.body_mut() = h::full(body);
            r
        }
        Err(e) => {
            common::log::error(&format!("ERROR hashing partition {partition} on {device}: {e}"));
            h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error hashing partition")
        }
    }
}
