//! Container `GET`: object listings (Swift's `GET_object` and
//! `listing_formats`).

use super::{bad_request, device_failure, info_headers, last_modified, refuse, set_header, storage_failure, true_value};
use crate::routing::Refusal;
use crate::server::ContainerServer;
use crate::storage;
use common::db::container::{extract_swift_bytes, ListedObject};
use common::db::listing::{listing_content_type, render_container, ListingItem, ListingParams, NegotiationError, ObjectEntry};
use common::http::{self as h, Body};
use common::path::StoragePath;
use http::{HeaderMap, Response, StatusCode};

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
        Some(v) => String::from_utf8(form_decode(v))
            .map(Some)
            .map_err(|_| bad_request(format!("\"{name}\" parameter not valid UTF-8"))),
    }
}

/// 400 or 406 for a failed format negotiation.
pub fn negotiation_failure(e: NegotiationError) -> Response<Body> {
    match e {
        NegotiationError::BadAccept => h::text(StatusCode::BAD_REQUEST, "Invalid Accept header"),
        NegotiationError::NotAcceptable => h::status(StatusCode::NOT_ACCEPTABLE),
    }
}

/// The listing parameters of a request (Swift's
/// `validate_container_params`): `limit` defaults to, and may not exceed,
/// `max_limit`; a `limit` that is not all digits is ignored.
pub fn listing_params(query: Option<&str>, max_limit: u64) -> Result<ListingParams, Refusal> {
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
        path: p("path")?,
        reverse: true_value(p("reverse")?.as_deref()),
    })
}

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
            let params = listing_params(query, self.swift.constraints.container_listing_limit)?;
            let format = query_param(query, "format")?;
            let policy = self.requested_policy(headers)?;
            Ok((params, format, policy))
        })();
        let (params, format, policy) = match prepared {
            Ok(p) => p,
            Err(r) => return refuse(r),
        };
        let accept = headers.get("accept").and_then(|v| v.to_str().ok());
        let content_type = match listing_content_type(format.as_deref(), accept) {
            Ok(ct) => ct,
            Err(e) => return negotiation_failure(e),
        };
        let store = self.store.clone();
        let p = path.clone();
        let result = self.store.run(&path.device, move |dev| storage::list_container(store.container_db(&dev, &p), &params, policy)).await;
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
        set_header(&mut r, "x-backend-record-type", "object");
        let listed_policy = policy.unwrap_or(state.info.storage_policy_index);
        set_header(&mut r, "x-backend-record-storage-policy-index", &listed_policy.to_string());
        for (k, v) in self.response_metadata(&state.metadata) {
            set_header(&mut r, k, v);
        }
        set_header(&mut r, "content-type", &format!("{content_type}; charset=utf-8"));
        set_header(&mut r, "content-length", &len.to_string());
        set_header(&mut r, "last-modified", &last_modified(&state.info));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_decode_like_swob() {
        let p = listing_params(Some("prefix=a+b%2Fc&limit=5&reverse=on&marker=%C3%A9"), 10_000).unwrap();
        assert_eq!(p.prefix.as_deref(), Some("a b/c"));
        assert_eq!((p.limit, p.reverse, p.marker.as_str()), (5, true, "é"));
        assert_eq!(listing_params(Some("limit=abc"), 10_000).unwrap().limit, 10_000);
        assert_eq!(listing_params(Some("limit=10001"), 10_000).unwrap_err(), (StatusCode::PRECONDITION_FAILED, "Maximum limit is 10000".into()));
        assert_eq!(listing_params(Some("marker=%ff"), 10_000).unwrap_err().0, 400);
    }
}
