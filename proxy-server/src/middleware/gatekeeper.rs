//! `egg:swift#gatekeeper`: clients may neither send nor see the headers
//! servers use among themselves (system metadata, `X-Backend-*`, the
//! container/account/delete-at update targets). An inbound `X-Timestamp` is
//! kept as `X-Backend-Inbound-X-Timestamp` (`shunt_inbound_x_timestamp`),
//! and `X-Allow-Reserved-Names` becomes its backend form only when
//! `allow_reserved_names_header` is on. Swift inserts it into every
//! pipeline (see `pipeline::REQUIRED`).

use super::{BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use common::backend_headers as bh;
use common::config::Section;
use common::http::Body;
use http::{HeaderMap, HeaderName, Request, Response};
use std::sync::Arc;

pub struct Gatekeeper {
    shunt_x_timestamp: bool,
    allow_reserved_names_header: bool,
    next: Next,
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, _build: &mut Build) -> Result<Next, String> {
    Ok(Arc::new(Gatekeeper {
        shunt_x_timestamp: section.get_bool("shunt_inbound_x_timestamp", true).map_err(|e| e.to_string())?,
        allow_reserved_names_header: section.get_bool("allow_reserved_names_header", false).map_err(|e| e.to_string())?,
        next,
    }))
}

/// Swift's `inbound_exclusions` (the same list goes for responses): the
/// sysmeta prefixes, anything starting `x-backend`, and the update-target
/// headers that predate the `X-Backend-*` names.
pub fn is_internal_header(name: &str) -> bool {
    // Swift matches the bare prefix `x-backend` (no dash).
    name.starts_with("x-backend")
        || name.starts_with("x-object-sysmeta-")
        || name.starts_with("x-container-sysmeta-")
        || name.starts_with("x-account-sysmeta-")
        || name.starts_with("x-object-transient-sysmeta-")
        || matches!(
            name,
            bh::ACCOUNT_HOST
                | bh::ACCOUNT_DEVICE
                | bh::ACCOUNT_PARTITION
                | bh::CONTAINER_HOST
                | bh::CONTAINER_DEVICE
                | bh::CONTAINER_PARTITION
                | bh::CONTAINER_ROOT_DB_STATE
                | bh::DELETE_AT_HOST
                | bh::DELETE_AT_DEVICE
                | bh::DELETE_AT_PARTITION
                | bh::DELETE_AT_CONTAINER
        )
}

fn remove_internal(headers: &mut HeaderMap) {
    let internal: Vec<HeaderName> = headers.keys().filter(|n| is_internal_header(n.as_str())).cloned().collect();
    for n in internal {
        headers.remove(&n);
    }
}

impl Handler for Gatekeeper {
    fn call(&self, mut req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let hm = req.headers_mut();
            remove_internal(hm);
            if let Some(ts) = hm.remove(bh::TIMESTAMP) {
                if self.shunt_x_timestamp {
                    hm.insert(bh::BACKEND_INBOUND_X_TIMESTAMP, ts);
                }
            }
            if let Some(v) = hm.remove("x-allow-reserved-names") {
                if self.allow_reserved_names_header {
                    hm.insert(bh::BACKEND_ALLOW_RESERVED_NAMES, v);
                }
            }
            let mut resp = self.next.call(req).await;
            remove_internal(resp.headers_mut());
            resp
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{request, Recorder};
    use super::*;
    use http::StatusCode;

    #[tokio::test]
    async fn internal_headers_neither_come_in_nor_go_out() {
        let next = Recorder::new(|_| {
            let mut r = common::http::status(StatusCode::OK);
            for (k, v) in [("x-object-sysmeta-secret", "1"), ("x-backend-timestamp", "2"), ("x-object-meta-color", "red")] {
                r.headers_mut().insert(k, v.parse().unwrap());
            }
            r
        });
        let m = Gatekeeper { shunt_x_timestamp: true, allow_reserved_names_header: false, next: next.clone() };
        let resp = m
            .call(request(
                "PUT",
                "/v1/a/c/o",
                &[
                    ("x-object-sysmeta-x", "1"),
                    ("x-backend-storage-policy-index", "1"),
                    ("x-backendish", "1"),
                    ("x-container-host", "1.2.3.4:5"),
                    ("x-container-meta-ok", "1"),
                    ("x-timestamp", "1700000000.00000"),
                    ("x-allow-reserved-names", "true"),
                ],
                "",
            ))
            .await;
        let seen = &next.seen()[0].headers;
        let mut names: Vec<&str> = seen.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["x-backend-inbound-x-timestamp", "x-container-meta-ok"], "{seen:?}");
        let out: Vec<&str> = resp.headers().keys().map(|k| k.as_str()).filter(|k| k.starts_with("x-")).collect();
        assert_eq!(out, ["x-object-meta-color"]);
    }
}
