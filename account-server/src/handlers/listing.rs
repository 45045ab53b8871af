//! Account `GET`: container listings (Swift's `GET` and
//! `account_listing_response`).
//!
//! The query helpers mirror the container server's (`query_param`,
//! `listing_params`); they would be shared from `common` once both servers
//! agree on a home for them.

use super::{bad_request, deleted_response, device_failure, refuse, set_header, storage_failure, true_value};
use crate::routing::Refusal;
use crate::server::AccountServer;
use crate::storage::{self, Lookup};
use common::db::account::ListedContainer;
use common::db::listing::{listing_content_type, render_account, ContainerEntry, ListingItem, ListingParams, NegotiationError};
use common::http::{self as h, Body};
use common::path::StoragePath;
use common::timestamp::Timestamp;
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

/// The listing parameters of an account GET: `limit` defaults to, and may
/// not exceed, `max_limit` (Swift's `constrain_req_limit`; a `limit` that
/// is not all digits is ignored). Account listings take no `path`.
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
        path: None,
        reverse: true_value(p("reverse")?.as_deref()),
    })
}

impl AccountServer {
    /// A listed container as the client sees it; the policy name is given
    /// when `swift.conf` knows the index (Swift ≥ 2.35).
    fn container_entry(&self, name: String, c: ListedContainer) -> ContainerEntry {
        let storage_policy =
            u32::try_from(c.storage_policy_index).ok().and_then(|i| self.swift.policy_by_index(i)).map(|p| p.name.clone());
        ContainerEntry {
            name,
            count: c.object_count,
            bytes: c.bytes_used,
            last_modified: Timestamp::parse(&c.put_timestamp).unwrap_or(Timestamp::ZERO).isoformat(),
            storage_policy,
        }
    }

    /// `GET /dev/part/a?...`: the listing in the negotiated format with the
    /// HEAD headers; 204 exactly when the rendered body is empty.
    pub async fn get_account(&self, path: StoragePath, headers: &HeaderMap, query: Option<&str>) -> Response<Body> {
        let prepared = (|| -> Result<_, Refusal> {
            let params = listing_params(query, self.swift.constraints.account_listing_limit)?;
            let format = query_param(query, "format")?;
            Ok((params, format))
        })();
        let (params, format) = match prepared {
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
        let result = self
            .store
            .run(&path.device, move |dev| storage::list_account(store.db_file(&dev, p.partition, &p.account), &params))
            .await;
        let (state, items) = match result {
            Err(e) => return device_failure(&path.device, e),
            Ok(Err(e)) => return storage_failure("account GET", e),
            Ok(Ok(Lookup::Missing { status_deleted })) => return deleted_response(StatusCode::NOT_FOUND, status_deleted, ""),
            Ok(Ok(Lookup::Found(r))) => r,
        };
        let entries: Vec<ListingItem<ContainerEntry>> = items
            .into_iter()
            .map(|i| match i {
                ListingItem::Row(n, c) => ListingItem::Row(n.clone(), self.container_entry(n, c)),
                ListingItem::Subdir(s) => ListingItem::Subdir(s),
            })
            .collect();
        let body = render_account(&entries, &path.account, content_type);
        let len = body.len();
        let mut r = if body.is_empty() {
            h::status(StatusCode::NO_CONTENT)
        } else {
            let mut r = Response::new(h::full(body));
            *r.status_mut() = StatusCode::OK;
            r
        };
        for (k, v) in self.account_headers(&state) {
            set_header(&mut r, &k, &v);
        }
        set_header(&mut r, "content-type", &format!("{content_type}; charset=utf-8"));
        set_header(&mut r, "content-length", &len.to_string());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_decode_like_swob() {
        let p = listing_params(Some("prefix=a+b%2Fc&limit=5&reverse=on&marker=%C3%A9&path=x"), 10_000).unwrap();
        assert_eq!(p.prefix.as_deref(), Some("a b/c"));
        assert_eq!((p.limit, p.reverse, p.marker.as_str(), p.path.clone()), (5, true, "é", None));
        assert_eq!(listing_params(Some("limit=abc"), 10_000).unwrap().limit, 10_000);
        assert_eq!(listing_params(Some("limit=10001"), 10_000).unwrap_err(), (StatusCode::PRECONDITION_FAILED, "Maximum limit is 10000".into()));
        assert_eq!(listing_params(Some("end_marker=%ff"), 10_000).unwrap_err().0, 400);
    }
}
