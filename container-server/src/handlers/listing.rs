//! Container `GET`: object listings (Swift's `GET_object` and
//! `listing_formats`).

use super::{info_headers, last_modified};
use crate::server::ContainerServer;
use crate::storage;
use common::backend_headers as bh;
use common::db::container::{extract_swift_bytes, ListedObject};
use common::db::listing::{render_container, ListingItem, ObjectEntry};
use common::dbserver::request::{container_listing_params, negotiate_listing, query_param, Refusal};
use common::dbserver::response::{device_failure, negotiation_failure, refuse, set_header, storage_failure};
use common::http::{self as h, Body};
use common::path::StoragePath;
use http::{HeaderMap, Response, StatusCode};

/// A listed row as the client sees it: `swift_bytes` overrides the size
/// and leaves the content type (Swift's `update_object_record`).
fn object_entry(name: String, o: ListedObject) -> ObjectEntry {
    let (content_type, swift_bytes) = extract_swift_bytes(&o.content_type);
    let bytes = swift_bytes.and_then(|b| b.parse().ok()).unwrap_or(o.size);
    ObjectEntry { name, bytes, hash: o.etag, content_type, last_modified: o.last_modified.isoformat() }
}

impl ContainerServer {
    /// `GET /dev/part/a/c?...`: the listing in the negotiated format; 204
    /// exactly when the rendered body is empty.
    pub async fn get_container(&self, path: StoragePath, headers: &HeaderMap, query: Option<&str>) -> Response<Body> {
        let prepared = (|| -> Result<_, Refusal> {
            let mut params = container_listing_params(query, self.swift.constraints.container_listing_limit)?;
            params.allow_reserved = headers
                .get(common::backend_headers::BACKEND_ALLOW_RESERVED_NAMES)
                .and_then(|v| v.to_str().ok())
                .and_then(common::config::parse_bool)
                == Some(true);
            let format = query_param(query, "format")?;
            let policy = self.requested_policy(headers)?;
            Ok((params, format, policy))
        })();
        let (params, format, policy) = match prepared {
            Ok(p) => p,
            Err(r) => return refuse(r),
        };
        let content_type = match negotiate_listing(format.as_deref(), headers) {
            Ok(ct) => ct,
            Err(e) => return negotiation_failure(e),
        };
        let result = self.store.run_on_db(&path, move |db| storage::list_container(db, &params, policy)).await;
        let (state, items) = match result {
            Err(e) => return device_failure(&path.device, e),
            Ok(Err(e)) => return storage_failure("container GET", e),
            Ok(Ok(r)) => r,
        };
        if state.deleted {
            let mut r = h::status(StatusCode::NOT_FOUND);
            for (k, v) in info_headers(&state.info, true) {
                set_header(&mut r, k, &v);
            }
            return r;
        }
        let entries: Vec<ListingItem<ObjectEntry>> = items
            .into_iter()
            .map(|i| match i {
                ListingItem::Row(n, o) => ListingItem::Row(n.clone(), object_entry(n, o)),
                ListingItem::Subdir(s) => ListingItem::Subdir(s),
            })
            .collect();
        let body = render_container(&entries, path.container.as_deref().unwrap_or_default(), content_type);
        let status = if body.is_empty() { StatusCode::NO_CONTENT } else { StatusCode::OK };
        let len = body.len();
        let mut r = if body.is_empty() { h::status(status) } else { Response::new(h::full(body)) };
        *r.status_mut() = status;
        for (k, v) in info_headers(&state.info, false) {
            set_header(&mut r, k, &v);
        }
        set_header(&mut r, bh::BACKEND_RECORD_TYPE, "object");
        let listed_policy = policy.unwrap_or(state.info.storage_policy_index);
        set_header(&mut r, bh::BACKEND_RECORD_STORAGE_POLICY_INDEX, &listed_policy.to_string());
        for (k, v) in self.response_metadata(&state.metadata) {
            set_header(&mut r, k, v);
        }
        set_header(&mut r, "content-type", &format!("{content_type}; charset=utf-8"));
        set_header(&mut r, "content-length", &len.to_string());
        set_header(&mut r, "last-modified", &last_modified(&state.info));
        r
    }
}
