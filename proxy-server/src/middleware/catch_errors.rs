//! `egg:swift#catch_errors`: gives each request its transaction id (with
//! the operator's `trans_id_suffix` and the client's `X-Trans-Id-Extra`),
//! returns it as `X-Trans-Id` and `X-Openstack-Request-Id`, and turns a
//! panic anywhere to its right into a logged 500 instead of a dropped
//! connection.

use super::{BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use common::backend_headers as bh;
use common::config::Section;
use common::http::{self as h, Body};
use common::server::RequestInfo;
use futures_util::FutureExt;
use http::{HeaderValue, Request, Response, StatusCode};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

pub struct CatchErrors {
    trans_id_suffix: String,
    next: Next,
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, _build: &mut Build) -> Result<Next, String> {
    Ok(Arc::new(CatchErrors { trans_id_suffix: section.get("trans_id_suffix").unwrap_or("").to_string(), next }))
}

/// Swift's `generate_trans_id`: `tx<21 hex>-<10 hex time><suffix>`, the
/// suffix quoted.
fn trans_id(suffix: &str, extra: Option<&str>) -> String {
    let mut suffix = suffix.to_string();
    if let Some(extra) = extra {
        // Swift keeps the last 32 characters of the client's part.
        let chars: Vec<char> = extra.chars().collect();
        suffix.push('-');
        suffix.extend(&chars[chars.len().saturating_sub(32)..]);
    }
    format!("{}{}", common::server::new_trans_id(), h::quote_path(&suffix).replace('/', "%2F"))
}

impl Handler for CatchErrors {
    fn call(&self, mut req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let mut info = super::request_info(&req);
            info.trans_id = trans_id(&self.trans_id_suffix, h::header_str(req.headers(), "x-trans-id-extra"));
            let trans_id = info.trans_id.clone();
            req.extensions_mut().insert::<RequestInfo>(info);
            // Lines logged while serving it carry the proxy's id.
            let served = common::log::with_trans_id(trans_id.clone(), AssertUnwindSafe(self.next.call(req)).catch_unwind());
            let mut resp = match served.await {
                Ok(resp) => resp,
                Err(panic) => {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    common::log::error(&format!("Error: An error occurred: {what} (txn: {trans_id})"));
                    h::text(StatusCode::INTERNAL_SERVER_ERROR, "An error occurred")
                }
            };
            if let Ok(v) = HeaderValue::from_str(&trans_id) {
                resp.headers_mut().insert("x-openstack-request-id", v.clone());
                resp.headers_mut().insert(bh::TRANS_ID, v);
            }
            resp
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{request, Recorder};
    use super::super::FnHandler;
    use super::*;

    #[tokio::test]
    async fn each_request_gets_a_transaction_id() {
        let next = Recorder::new(|_| h::status(StatusCode::OK));
        let m = CatchErrors { trans_id_suffix: "-east".into(), next: next.clone() };
        let resp = m.call(request("GET", "/v1/a", &[("x-trans-id-extra", "mine"), ("x-trans-id", "forged")], "")).await;
        let id = resp.headers()["x-trans-id"].to_str().unwrap();
        assert!(id.starts_with("tx") && id.ends_with("-east-mine"), "{id}");
        assert_ne!(id, "forged");
        assert_eq!(resp.headers()["x-openstack-request-id"], resp.headers()["x-trans-id"]);
    }

    #[tokio::test]
    async fn a_panic_is_a_500() {
        let next: Next = Arc::new(FnHandler(|_req: Request<Body>| async move {
            if true {
                panic!("boom");
            }
            h::status(StatusCode::OK)
        }));
        let m = CatchErrors { trans_id_suffix: String::new(), next };
        let resp = m.call(request("GET", "/v1/a", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(resp.headers().contains_key("x-trans-id"));
    }
}
