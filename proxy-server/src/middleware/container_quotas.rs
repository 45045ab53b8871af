//! `egg:swift#container_quotas`: refuses object uploads (413) that would
//! take a container over the quotas its owner set as ordinary container
//! metadata: `X-Container-Meta-Quota-Bytes` (bytes stored) and
//! `X-Container-Meta-Quota-Count` (objects). A container PUT or POST
//! setting either to anything but digits (or empty, to remove it) gets 400.
//!
//! The container's usage comes from a HEAD of the container made through
//! the pipeline to the right on the middleware's own authority (source
//! `CQ`), once per object PUT. A chunked upload counts as zero bytes, as in
//! Swift. Copies are checked too: `copy` sits to the left and sends its
//! PUT (with the source's length) through here.
//!
//! Before answering 413 the caller is authorized against the container's
//! write ACL, so that someone who could not have written there learns
//! nothing about the container.

use super::info;
use super::{AuthRequest, Authorization, AuthorizeHook, BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use common::config::Section;
use common::http::{self as h, Body};
use http::{Method, Request, Response, StatusCode};
use std::sync::Arc;

/// `swift.source` of the middleware's info look-ups.
const SOURCE: &str = "CQ";

pub struct ContainerQuotas {
    next: Next,
}

pub fn factory(_section: &Section, _proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    build.capabilities.insert("container_quotas".into(), serde_json::json!({}));
    Ok(Arc::new(ContainerQuotas { next }))
}

/// A quota value as Swift accepts it: ASCII digits only (a larger number
/// than fits is as good as no limit).
fn quota(value: &str) -> Option<u64> {
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit())).then(|| value.parse().unwrap_or(u64::MAX))
}

impl Handler for ContainerQuotas {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let Some(segs) =
                common::path::unquote_internal(req.uri().path()).ok().and_then(|p| common::path::split_path(&p, 3, 4, true).ok())
            else {
                return self.next.call(req).await;
            };
            let [Some(version), Some(account), Some(container), object] = <[Option<String>; 4]>::try_from(segs).unwrap_or_default() else {
                return self.next.call(req).await;
            };
            match (object, req.method()) {
                (None, &Method::PUT | &Method::POST) => {
                    for (name, reason) in
                        [("x-container-meta-quota-bytes", "Invalid bytes quota."), ("x-container-meta-quota-count", "Invalid count quota.")]
                    {
                        if req.headers().get(name).is_some_and(|v| !v.is_empty() && v.to_str().ok().and_then(quota).is_none()) {
                            return h::text(StatusCode::BAD_REQUEST, reason);
                        }
                    }
                    self.next.call(req).await
                }
                (Some(object), &Method::PUT) => self.object_put(req, &version, &account, &container, &object).await,
                _ => self.next.call(req).await,
            }
        })
    }
}

impl ContainerQuotas {
    async fn object_put(&self, req: Request<Body>, version: &str, account: &str, container: &str, object: &str) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let Some(info) = info(&self.next, &parts, &format!("/{version}/{account}/{container}"), SOURCE).await else {
            // A missing container gets its 404 from the controller.
            return self.next.call(Request::from_parts(parts, body)).await;
        };
        let number = |name: &str| h::header_str(&info, name).and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        let length = h::header_str(&parts.headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
        let limit = |name: &str| h::header_str(&info, name).and_then(quota);
        let over = limit("x-container-meta-quota-bytes").is_some_and(|q| q < number("x-container-bytes-used").saturating_add(length))
            || limit("x-container-meta-quota-count").is_some_and(|q| q < number("x-container-object-count").saturating_add(1));
        if !over {
            return self.next.call(Request::from_parts(parts, body)).await;
        }
        if let Some(hook) = parts.extensions.get::<AuthorizeHook>() {
            let r = AuthRequest {
                method: &parts.method,
                account,
                container: Some(container),
                object: Some(object),
                acl: h::header_str(&info, "x-container-write"),
                headers: &parts.headers,
            };
            if let Authorization::Deny(denied) = hook.0.authorize(&r).await {
                return denied;
            }
        }
        h::text(StatusCode::PAYLOAD_TOO_LARGE, "Upload exceeds quota.")
    }
}

#[cfg(test)]
mod tests {
    use super::super::account_quotas::tests::with_token_auth;
    use super::super::testing::{body_of, request, Recorder, Seen};
    use super::*;
    use http::HeaderValue;

    /// Container `a/c` holding 100 bytes in 2 objects, with `meta` headers;
    /// anything else 404s on HEAD and 201s on PUT.
    fn container(meta: &[(&'static str, &'static str)]) -> Arc<Recorder> {
        let meta = meta.to_vec();
        Recorder::new(move |seen: &Seen| match (seen.method.as_str(), seen.uri.as_str()) {
            ("HEAD", "/v1/a/c") => {
                let mut r = h::status(StatusCode::NO_CONTENT);
                for (k, v) in [("x-container-bytes-used", "100"), ("x-container-object-count", "2")].iter().chain(meta.iter()) {
                    r.headers_mut().insert(*k, HeaderValue::from_static(v));
                }
                r
            }
            ("HEAD", _) => h::status(StatusCode::NOT_FOUND),
            ("PUT", _) => h::status(StatusCode::CREATED),
            _ => h::status(StatusCode::NO_CONTENT),
        })
    }

    async fn put(m: &ContainerQuotas, path: &str, body: &'static str) -> StatusCode {
        m.call(request("PUT", path, &[("content-length", &body.len().to_string())], body)).await.status()
    }

    #[tokio::test]
    async fn bytes_quota() {
        let next = container(&[("x-container-meta-quota-bytes", "110")]);
        let m = ContainerQuotas { next: next.clone() };
        assert_eq!(put(&m, "/v1/a/c/o", "0123456789").await, StatusCode::CREATED);
        let seen = next.seen();
        assert_eq!((seen[0].method.as_str(), seen[0].uri.as_str(), seen[0].source), ("HEAD", "/v1/a/c", Some("CQ")));
        let resp = m.call(request("PUT", "/v1/a/c/o", &[("content-length", "11")], "01234567890")).await;
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body_of(resp).await, "Upload exceeds quota.");
        assert_eq!(next.seen().len(), 3, "the refused upload was not passed on");
    }

    #[tokio::test]
    async fn count_quota() {
        let m = ContainerQuotas { next: container(&[("x-container-meta-quota-count", "3")]) };
        assert_eq!(put(&m, "/v1/a/c/o", "").await, StatusCode::CREATED);
        let m = ContainerQuotas { next: container(&[("x-container-meta-quota-count", "2")]) };
        assert_eq!(put(&m, "/v1/a/c/o", "").await, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn no_or_bogus_quota_and_other_requests_pass() {
        for meta in [&[][..], &[("x-container-meta-quota-bytes", "lots")], &[("x-container-meta-quota-count", "-1")]] {
            let m = ContainerQuotas { next: container(meta) };
            assert_eq!(put(&m, "/v1/a/c/o", "0123456789").await, StatusCode::CREATED, "{meta:?}");
        }
        let next = container(&[("x-container-meta-quota-bytes", "0")]);
        let m = ContainerQuotas { next: next.clone() };
        // A missing container is the controller's 404 to give.
        assert_eq!(put(&m, "/v1/a/nope/o", "x").await, StatusCode::CREATED);
        for (method, path) in [("POST", "/v1/a/c/o"), ("DELETE", "/v1/a/c/o"), ("GET", "/v1/a/c/o"), ("PUT", "/v1/a//x/y")] {
            m.call(request(method, path, &[], "")).await;
        }
        assert!(next.seen().iter().all(|s| s.method != Method::HEAD || s.uri == "/v1/a/nope"));
    }

    #[tokio::test]
    async fn quota_values_are_checked() {
        let m = ContainerQuotas { next: container(&[]) };
        for (method, header, value, status) in [
            ("POST", "x-container-meta-quota-bytes", "abc", StatusCode::BAD_REQUEST),
            ("PUT", "x-container-meta-quota-count", "-1", StatusCode::BAD_REQUEST),
            ("POST", "x-container-meta-quota-bytes", "10", StatusCode::NO_CONTENT),
            ("POST", "x-container-meta-quota-count", "", StatusCode::NO_CONTENT),
            ("PUT", "x-container-meta-quota-bytes", "0", StatusCode::CREATED),
        ] {
            let r = m.call(request(method, "/v1/a/c", &[(header, value)], "")).await;
            assert_eq!(r.status(), status, "{method} {header}: {value}");
        }
    }

    #[tokio::test]
    async fn the_callers_own_refusal_comes_before_the_413() {
        let m = ContainerQuotas { next: container(&[("x-container-meta-quota-count", "1")]) };
        let stranger = m.call(with_token_auth(request("PUT", "/v1/a/c/o", &[("x-auth-token", "bad")], ""))).await;
        assert_eq!(stranger.status(), StatusCode::FORBIDDEN);
        let owner = m.call(with_token_auth(request("PUT", "/v1/a/c/o", &[("x-auth-token", "secret")], ""))).await;
        assert_eq!(owner.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
