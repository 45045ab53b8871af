//! Account `GET`: container listings (Swift's `GET` and
//! `account_listing_response`).

use super::deleted_response;
use crate::server::AccountServer;
use crate::storage::{self, Lookup};
use common::db::account::ListedContainer;
use common::db::broker::timestamp_or_zero;
use common::db::listing::{render_account, ContainerEntry, ListingItem};
use common::dbserver::request::{account_listing_params, negotiate_listing, query_param, Refusal};
use common::dbserver::response::{device_failure, negotiation_failure, refuse, set_header, storage_failure};
use common::http::{self as h, Body};
use common::path::StoragePath;
use http::{HeaderMap, Response, StatusCode};

impl AccountServer {
    /// A listed container as the client sees it; the policy name is given
    /// when `swift.conf` knows the index (Swift ≥ 2.35).
    fn container_entry(&self, name: String, c: ListedContainer) -> ContainerEntry {
        let storage_policy = u32::try_from(c.storage_policy_index).ok().and_then(|i| self.swift.policy_by_index(i)).map(|p| p.name.clone());
        ContainerEntry {
            name,
            count: c.object_count,
            bytes: c.bytes_used,
            last_modified: timestamp_or_zero(&c.put_timestamp).isoformat(),
            storage_policy,
        }
    }

    /// `GET /dev/part/a?...`: the listing in the negotiated format with the
    /// HEAD headers; 204 exactly when the rendered body is empty.
    pub async fn get_account(&self, path: StoragePath, headers: &HeaderMap, query: Option<&str>) -> Response<Body> {
        let prepared = (|| -> Result<_, Refusal> {
            let mut params = account_listing_params(query, self.swift.constraints.account_listing_limit)?;
            params.allow_reserved = headers
                .get(common::backend_headers::BACKEND_ALLOW_RESERVED_NAMES)
                .and_then(|v| v.to_str().ok())
                .and_then(common::config::parse_bool)
                == Some(true);
            let format = query_param(query, "format")?;
            Ok((params, format))
        })();
        let (params, format) = match prepared {
            Ok(p) => p,
            Err(r) => return refuse(r),
        };
        let content_type = match negotiate_listing(format.as_deref(), headers) {
            Ok(ct) => ct,
            Err(e) => return negotiation_failure(e),
        };
        let result = self.store.run_on_db(&path, move |db| storage::list_account(db, &params)).await;
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
