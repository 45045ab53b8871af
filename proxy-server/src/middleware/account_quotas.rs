//! `egg:swift#account_quotas`: refuses object uploads (413) that would take
//! an account over its quota of bytes or objects, overall or in the storage
//! policy of the target container; deletes and metadata updates always
//! pass. The quotas are account system metadata, set by reseller admins
//! only:
//!
//! | client header (POST/PUT on the account)    | stored as                                  |
//! |--------------------------------------------|--------------------------------------------|
//! | `X-Account-Quota-Bytes`                    | `X-Account-Sysmeta-Quota-Bytes`            |
//! | `X-Account-Quota-Count`                    | `X-Account-Sysmeta-Quota-Count`            |
//! | `X-Account-Quota-Bytes-Policy-<name>`      | `X-Account-Sysmeta-Quota-Bytes-Policy-<N>` |
//! | `X-Account-Quota-Count-Policy-<name>`      | `X-Account-Sysmeta-Quota-Count-Policy-<N>` |
//! | `X-Account-Meta-Quota-Bytes` (obsolete)    | as `X-Account-Quota-Bytes`, and as meta    |
//!
//! Each has an `X-Remove-...` form, and an empty value removes it too.
//! Anyone who may read the account sees the quotas under the client names.
//! A quota that was stored as plain `X-Account-Meta-Quota-Bytes` before
//! this middleware ran still counts, unless the system metadata overrides it.
//!
//! The account's usage comes from a HEAD of the account (and of the
//! container, for per-policy quotas) made through the pipeline to the
//! right on the middleware's own authority (source `AQ`), once per object
//! PUT: exact, at the price of a round trip. An upload without a
//! `Content-Length` (chunked) counts as zero bytes, so it is refused only
//! once the account is already over its byte quota, as in Swift.
//!
//! A refusal waits for the authorization: the request goes on with its
//! `authorize` wrapped so that the caller's own 401/403 wins over the 413
//! (an unauthorized caller learns nothing about the account's usage).

use super::tempauth::ResellerRequest;
use super::{info, AuthRequest, Authorization, Authorize, AuthorizeHook, BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use common::config::Section;
use common::http::{self as h, Body};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use std::sync::Arc;

/// `swift.source` of the middleware's info look-ups.
const SOURCE: &str = "AQ";

pub struct AccountQuotas {
    /// The storage policies, `(index, name)`, for the per-policy headers.
    policies: Vec<(u32, String)>,
    next: Next,
}

pub fn factory(_section: &Section, proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    build.capabilities.insert("account_quotas".into(), serde_json::json!({}));
    let policies = proxy.swift.policies.iter().map(|p| (p.index, p.name.clone())).collect();
    Ok(Arc::new(AccountQuotas { policies, next }))
}

impl Handler for AccountQuotas {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let Some(segs) =
                common::path::unquote_internal(req.uri().path()).ok().and_then(|p| common::path::split_path(&p, 2, 4, true).ok())
            else {
                return self.next.call(req).await;
            };
            let (version, account) = (segs[0].clone().unwrap_or_default(), segs[1].clone().unwrap_or_default());
            if segs[2].is_none() {
                return self.account_request(req).await;
            }
            // Quota headers on container and object requests mean nothing;
            // only object uploads count, and resellers are not held to them.
            if req.method() != Method::PUT || segs[3].is_none() || req.extensions().get::<ResellerRequest>().is_some() {
                return self.next.call(req).await;
            }
            let container = segs[2].clone().unwrap_or_default();
            self.object_put(req, &version, &account, &container).await
        })
    }
}

impl AccountQuotas {
    /// Turns the client's quota headers into system metadata (resellers
    /// only), and shows the stored quotas under the client names.
    async fn account_request(&self, mut req: Request<Body>) -> Response<Body> {
        if matches!(*req.method(), Method::POST | Method::PUT) {
            let reseller = req.extensions().get::<ResellerRequest>().is_some();
            let hm = req.headers_mut();
            // The obsolete meta form stands in for the current one unless
            // that is given (non-empty).
            for (legacy, current) in [
                ("x-account-meta-quota-bytes", "x-account-quota-bytes"),
                ("x-remove-account-meta-quota-bytes", "x-remove-account-quota-bytes"),
            ] {
                if let Some(v) = hm.get(legacy).cloned() {
                    if hm.get(current).is_none_or(|c| c.is_empty()) {
                        hm.insert(current, v);
                    }
                }
            }
            for kind in ["quota-bytes", "quota-count"] {
                if let Err(refusal) = self.translate(hm, kind, reseller) {
                    return refusal;
                }
            }
        }
        let mut resp = self.next.call(req).await;
        let hm = resp.headers_mut();
        let mut shown: Vec<(String, HeaderValue)> = Vec::new();
        for kind in ["quota-bytes", "quota-count"] {
            if let Some(v) = hm.get(format!("x-account-sysmeta-{kind}")).filter(|v| !v.is_empty()) {
                shown.push((format!("x-account-{kind}"), v.clone()));
            }
            for (index, name) in &self.policies {
                if let Some(v) = hm.get(format!("x-account-sysmeta-{kind}-policy-{index}")).filter(|v| !v.is_empty()) {
                    shown.push((format!("x-account-{kind}-policy-{name}"), v.clone()));
                }
            }
        }
        for (name, value) in shown {
            if let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) {
                hm.insert(name, value);
            }
        }
        resp
    }

    /// Swift's `validate_and_translate_quotas` for one kind (`quota-bytes`
    /// or `quota-count`): the overall and per-policy values the request
    /// sets (`""` removes), checked and written as system metadata for a
    /// reseller; 403 for anyone else who tries. The per-policy client
    /// headers are consumed.
    fn translate(&self, hm: &mut HeaderMap, kind: &str, reseller: bool) -> Result<(), Response<Body>> {
        let text = |v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned();
        let set = |hm: &HeaderMap, name: &str| hm.get(name).is_some_and(|v| !v.is_empty());
        // (sysmeta name, new value)
        let mut new: Vec<(String, Option<String>)> = Vec::new();
        let overall =
            if set(hm, &format!("x-remove-account-{kind}")) { Some(String::new()) } else { hm.get(format!("x-account-{kind}")).map(text) };
        new.push((format!("x-account-sysmeta-{kind}"), overall));
        for (index, name) in &self.policies {
            let tail = format!("account-{kind}-policy-{}", name.to_ascii_lowercase());
            let given = hm.remove(format!("x-{tail}").as_str()).map(|v| text(&v));
            let value = if set(hm, &format!("x-remove-{tail}")) { Some(String::new()) } else { given };
            new.push((format!("x-account-sysmeta-{kind}-policy-{index}"), value));
        }
        if !reseller {
            return if new.iter().any(|(_, v)| v.is_some()) { Err(forbidden()) } else { Ok(()) };
        }
        if new.iter().any(|(_, v)| v.as_deref().is_some_and(|q| !q.is_empty() && !q.bytes().all(|b| b.is_ascii_digit()))) {
            return Err(h::text(
                StatusCode::BAD_REQUEST,
                "<html><h1>Bad Request</h1><p>The server could not comply with the request since it is either malformed or otherwise incorrect.</p></html>",
            ));
        }
        for (name, value) in new {
            if let (Some(value), Ok(name)) = (value, HeaderName::from_bytes(name.as_bytes())) {
                // Digits or empty: always a valid header value.
                if let Ok(v) = HeaderValue::from_str(&value) {
                    hm.insert(name, v);
                }
            }
        }
        Ok(())
    }

    /// Checks an object upload against the account's quotas.
    async fn object_put(&self, req: Request<Body>, version: &str, account: &str, container: &str) -> Response<Body> {
        let length = h::header_str(req.headers(), "content-length").and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(0);
        let (parts, body) = req.into_parts();
        let Some(ainfo) = info(&self.next, &parts, &format!("/{version}/{account}"), SOURCE).await else {
            return self.next.call(Request::from_parts(parts, body)).await;
        };
        let number = |name: &str| h::header_str(&ainfo, name).and_then(|v| v.trim().parse::<i64>().ok());
        let bytes_quota = number("x-account-sysmeta-quota-bytes").or_else(|| {
            // A stored but unparsable sysmeta value is no quota at all.
            if ainfo.contains_key("x-account-sysmeta-quota-bytes") {
                None
            } else {
                number("x-account-meta-quota-bytes")
            }
        });
        let used = number("x-account-bytes-used").unwrap_or(0);
        let objects = number("x-account-object-count").unwrap_or(0);
        if bytes_quota.is_some_and(|q| q >= 0 && q < used.saturating_add(length))
            || number("x-account-sysmeta-quota-count").is_some_and(|q| q >= 0 && q < objects.saturating_add(1))
        {
            return self.exceeded(parts, body, "Upload exceeds quota.").await;
        }

        // Per-policy quotas need the container's policy: one more look-up,
        // made only when the account has such a quota.
        let has_policy_quota = ainfo.keys().any(|k| {
            k.as_str().starts_with("x-account-sysmeta-quota-bytes-policy-")
                || k.as_str().starts_with("x-account-sysmeta-quota-count-policy-")
        });
        if !has_policy_quota {
            return self.next.call(Request::from_parts(parts, body)).await;
        }
        let Some(cinfo) = info(&self.next, &parts, &format!("/{version}/{account}/{container}"), SOURCE).await else {
            return self.next.call(Request::from_parts(parts, body)).await;
        };
        let index = h::header_str(&cinfo, common::backend_headers::BACKEND_STORAGE_POLICY_INDEX)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0);
        let name = self.policies.iter().find(|(i, _)| *i == index).map(|(_, n)| n.to_ascii_lowercase()).unwrap_or_default();
        let policy_used = number(&format!("x-account-storage-policy-{name}-bytes-used")).unwrap_or(0);
        let policy_objects = number(&format!("x-account-storage-policy-{name}-object-count")).unwrap_or(0);
        if number(&format!("x-account-sysmeta-quota-bytes-policy-{index}"))
            .is_some_and(|q| q >= 0 && q < policy_used.saturating_add(length))
            || number(&format!("x-account-sysmeta-quota-count-policy-{index}"))
                .is_some_and(|q| q >= 0 && q < policy_objects.saturating_add(1))
        {
            return self.exceeded(parts, body, "Upload exceeds policy quota.").await;
        }
        self.next.call(Request::from_parts(parts, body)).await
    }

    /// Swift's `quota_exceeded`: the 413 is given where the controller
    /// authorizes the request, after the caller's own verdict, so the
    /// container's ACLs apply first. Without an auth middleware, at once.
    async fn exceeded(&self, mut parts: Parts, body: Body, reason: &'static str) -> Response<Body> {
        let Some(orig) = parts.extensions.get::<AuthorizeHook>().cloned() else {
            return h::text(StatusCode::PAYLOAD_TOO_LARGE, reason);
        };
        parts.extensions.insert(AuthorizeHook(Arc::new(RefuseAfterAuthorize { orig, reason })));
        self.next.call(Request::from_parts(parts, body)).await
    }
}

/// Authorizes as the caller's auth middleware does, then refuses what it
/// allows with a 413.
struct RefuseAfterAuthorize {
    orig: AuthorizeHook,
    reason: &'static str,
}

impl Authorize for RefuseAfterAuthorize {
    fn authorize<'a>(&'a self, req: &'a AuthRequest<'a>) -> BoxFuture<'a, Authorization> {
        Box::pin(async move {
            match self.orig.0.authorize(req).await {
                Authorization::Allow { .. } => Authorization::Deny(h::text(StatusCode::PAYLOAD_TOO_LARGE, self.reason)),
                denied => denied,
            }
        })
    }
}

fn forbidden() -> Response<Body> {
    h::text(StatusCode::FORBIDDEN, "<html><h1>Forbidden</h1><p>Access was denied to this resource.</p></html>")
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::testing::{request, Recorder, Seen};
    use super::super::FnHandler;
    use super::*;

    /// An account `a` holding 1000 bytes in 10 objects (600 bytes and 6
    /// objects in policy `gold`, index 1), with the sysmeta `quota`
    /// headers; container `c` is in `gold`. Other requests: 201/204.
    pub fn account(quota: &[(&str, &str)]) -> Arc<Recorder> {
        let quota: Vec<(String, String)> = quota.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Recorder::new(move |seen: &Seen| {
            let mut r = h::status(if seen.method == Method::PUT { StatusCode::CREATED } else { StatusCode::NO_CONTENT });
            let hm = r.headers_mut();
            match (seen.method.as_str(), seen.uri.as_str()) {
                (_, "/v1/a") => {
                    for (k, v) in [
                        ("x-account-bytes-used", "1000"),
                        ("x-account-object-count", "10"),
                        ("x-account-storage-policy-gold-bytes-used", "600"),
                        ("x-account-storage-policy-gold-object-count", "6"),
                    ] {
                        hm.insert(k, HeaderValue::from_static(v));
                    }
                    for (k, v) in &quota {
                        hm.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
                    }
                }
                ("HEAD", "/v1/a/c") => {
                    hm.insert("x-backend-storage-policy-index", HeaderValue::from_static("1"));
                }
                _ => {}
            }
            r
        })
    }

    fn middleware(next: Next) -> AccountQuotas {
        AccountQuotas { policies: vec![(0, "silver".into()), (1, "gold".into())], next }
    }

    fn reseller(mut req: Request<Body>) -> Request<Body> {
        req.extensions_mut().insert(ResellerRequest);
        req
    }

    /// A next handler standing in for the controllers: object PUTs ask the
    /// request's authorize hook (allowing only token `secret`), HEADs come
    /// from `info`.
    pub fn authorizing(info: Arc<Recorder>) -> Next {
        Arc::new(FnHandler(move |req: Request<Body>| {
            let info = info.clone();
            async move {
                if req.method() == Method::HEAD {
                    return info.call(req).await;
                }
                let hook = req.extensions().get::<AuthorizeHook>().cloned();
                let r = AuthRequest {
                    method: req.method(),
                    account: "a",
                    container: Some("c"),
                    object: Some("o"),
                    acl: None,
                    headers: req.headers(),
                };
                match super::super::authorize(hook.as_ref(), &r).await {
                    Authorization::Allow { .. } => h::status(StatusCode::CREATED),
                    Authorization::Deny(resp) => resp,
                }
            }
        }))
    }

    /// The hook a test's auth middleware leaves: only `X-Auth-Token:
    /// secret` is allowed.
    struct TokenAuth;
    impl Authorize for TokenAuth {
        fn authorize<'a>(&'a self, r: &'a AuthRequest<'a>) -> BoxFuture<'a, Authorization> {
            Box::pin(async move {
                if h::header_str(r.headers, "x-auth-token") == Some("secret") {
                    Authorization::Allow { owner: true }
                } else {
                    Authorization::Deny(forbidden())
                }
            })
        }
    }

    pub fn with_token_auth(mut req: Request<Body>) -> Request<Body> {
        req.extensions_mut().insert(AuthorizeHook(Arc::new(TokenAuth)));
        req
    }

    async fn put(m: &AccountQuotas, length: usize) -> Response<Body> {
        m.call(request("PUT", "/v1/a/c/o", &[("content-length", &length.to_string())], vec![b'x'; length])).await
    }

    #[tokio::test]
    async fn uploads_within_the_byte_quota_pass_and_beyond_it_get_413() {
        let next = account(&[("x-account-sysmeta-quota-bytes", "1100")]);
        let m = middleware(next.clone());
        assert_eq!(put(&m, 100).await.status(), StatusCode::CREATED);
        let seen = next.seen();
        assert_eq!((seen[0].method.as_str(), seen[0].uri.as_str(), seen[0].source), ("HEAD", "/v1/a", Some("AQ")));
        assert_eq!(seen[1].method, Method::PUT);
        let refused = put(&m, 101).await;
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(super::super::testing::body_of(refused).await, "Upload exceeds quota.");
        // A chunked upload counts as empty: refused only once over quota.
        let chunked = || request("PUT", "/v1/a/c/o", &[("transfer-encoding", "chunked")], "xx");
        assert_eq!(m.call(chunked()).await.status(), StatusCode::CREATED);
        let m = middleware(account(&[("x-account-sysmeta-quota-bytes", "999")]));
        assert_eq!(m.call(chunked()).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Deletes, posts and container writes are never held back.
        for (method, path) in [("DELETE", "/v1/a/c/o"), ("POST", "/v1/a/c/o"), ("PUT", "/v1/a/c2"), ("POST", "/v1/a/c")] {
            assert!(m.call(request(method, path, &[], "")).await.status().is_success(), "{method} {path}");
        }
    }

    #[tokio::test]
    async fn the_legacy_meta_quota_counts_unless_sysmeta_overrides_it() {
        let m = middleware(account(&[("x-account-meta-quota-bytes", "1000")]));
        assert_eq!(put(&m, 1).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let m = middleware(account(&[("x-account-meta-quota-bytes", "1000"), ("x-account-sysmeta-quota-bytes", "2000")]));
        assert_eq!(put(&m, 1).await.status(), StatusCode::CREATED);
        // A bogus value is no quota.
        let m = middleware(account(&[("x-account-sysmeta-quota-bytes", "pasty-plastogene")]));
        assert_eq!(put(&m, 1).await.status(), StatusCode::CREATED);
    }

    #[tokio::test]
    async fn the_count_quota_counts_the_new_object() {
        let m = middleware(account(&[("x-account-sysmeta-quota-count", "11")]));
        assert_eq!(put(&m, 0).await.status(), StatusCode::CREATED);
        let m = middleware(account(&[("x-account-sysmeta-quota-count", "10")]));
        assert_eq!(put(&m, 0).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let m = middleware(account(&[("x-account-sysmeta-quota-count", "0")]));
        assert_eq!(put(&m, 0).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn per_policy_quotas_use_the_containers_policy() {
        // gold holds 600 bytes in 6 objects.
        let next = account(&[("x-account-sysmeta-quota-bytes-policy-1", "650")]);
        let m = middleware(next.clone());
        assert_eq!(put(&m, 50).await.status(), StatusCode::CREATED);
        assert_eq!(next.seen()[1].uri, "/v1/a/c");
        let refused = put(&m, 51).await;
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(super::super::testing::body_of(refused).await, "Upload exceeds policy quota.");
        let m = middleware(account(&[("x-account-sysmeta-quota-count-policy-1", "6")]));
        assert_eq!(put(&m, 0).await.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // A quota on another policy does not apply.
        let m = middleware(account(&[("x-account-sysmeta-quota-bytes-policy-0", "0")]));
        assert_eq!(put(&m, 1).await.status(), StatusCode::CREATED);
        // Without any per-policy quota the container is not looked up.
        let next = account(&[]);
        assert_eq!(put(&middleware(next.clone()), 1).await.status(), StatusCode::CREATED);
        assert_eq!(next.seen().len(), 2);
    }

    #[tokio::test]
    async fn resellers_are_not_held_to_quotas() {
        let next = account(&[("x-account-sysmeta-quota-bytes", "0")]);
        let m = middleware(next.clone());
        let r = m.call(reseller(request("PUT", "/v1/a/c/o", &[("content-length", "5")], "hello"))).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(next.seen().len(), 1);
    }

    #[tokio::test]
    async fn the_callers_own_refusal_comes_before_the_413() {
        let m = middleware(authorizing(account(&[("x-account-sysmeta-quota-bytes", "0")])));
        let stranger = m.call(with_token_auth(request("PUT", "/v1/a/c/o", &[("x-auth-token", "bad")], ""))).await;
        assert_eq!(stranger.status(), StatusCode::FORBIDDEN);
        let owner = m.call(with_token_auth(request("PUT", "/v1/a/c/o", &[("x-auth-token", "secret")], ""))).await;
        assert_eq!(owner.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let m = middleware(authorizing(account(&[("x-account-sysmeta-quota-bytes", "1000")])));
        let under = m.call(with_token_auth(request("PUT", "/v1/a/c/o", &[("x-auth-token", "secret")], ""))).await;
        assert_eq!(under.status(), StatusCode::CREATED);
    }

    #[tokio::test]
    async fn only_resellers_set_quotas() {
        for headers in [
            &[("x-account-quota-bytes", "100")][..],
            &[("x-account-quota-count", "0")],
            &[("x-account-meta-quota-bytes", "0")],
            &[("x-account-quota-bytes", "")],
            &[("x-remove-account-quota-bytes", "t")],
            &[("x-remove-account-meta-quota-bytes", "t")],
            &[("x-account-quota-bytes-policy-gold", "1")],
            &[("X-Remove-Account-Quota-Count-Policy-Gold", "t")],
        ] {
            let next = account(&[]);
            let r = middleware(next.clone()).call(request("POST", "/v1/a", headers, "")).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{headers:?}");
            assert!(next.seen().is_empty());
        }
        // Other account metadata is the owner's business.
        let r = middleware(account(&[])).call(request("POST", "/v1/a", &[("x-account-meta-color", "red")], "")).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn a_reseller_sets_and_removes_quotas_as_sysmeta() {
        let next = account(&[]);
        let m = middleware(next.clone());
        let post = |headers: &[(&str, &str)]| m.call(reseller(request("POST", "/v1/a", headers, "")));
        assert_eq!(
            post(&[("x-account-quota-bytes", "100"), ("x-account-quota-count-policy-gold", "7")]).await.status(),
            StatusCode::NO_CONTENT
        );
        let sent = &next.seen()[0].headers;
        assert_eq!(sent["x-account-sysmeta-quota-bytes"], "100");
        assert_eq!(sent["x-account-sysmeta-quota-count-policy-1"], "7");
        assert!(!sent.contains_key("x-account-quota-count-policy-gold"));
        assert!(!sent.contains_key("x-account-sysmeta-quota-count"));
        // The legacy header loses to the current one.
        post(&[("x-account-meta-quota-bytes", "200"), ("x-account-quota-bytes", "100")]).await;
        assert_eq!(next.seen()[1].headers["x-account-sysmeta-quota-bytes"], "100");
        post(&[("x-account-meta-quota-bytes", "200")]).await;
        assert_eq!(next.seen()[2].headers["x-account-sysmeta-quota-bytes"], "200");
        // Removal: X-Remove-* or an empty value.
        post(&[("x-remove-account-quota-bytes", "t"), ("x-account-quota-bytes", "5")]).await;
        assert_eq!(next.seen()[3].headers["x-account-sysmeta-quota-bytes"], "");
        post(&[("x-account-quota-count", ""), ("x-remove-account-quota-bytes-policy-gold", "1")]).await;
        assert_eq!(next.seen()[4].headers["x-account-sysmeta-quota-count"], "");
        assert_eq!(next.seen()[4].headers["x-account-sysmeta-quota-bytes-policy-1"], "");
        // Not a number: 400, nothing sent.
        assert_eq!(post(&[("x-account-quota-bytes", "abc")]).await.status(), StatusCode::BAD_REQUEST);
        assert_eq!(post(&[("x-account-quota-bytes-policy-silver", "-1")]).await.status(), StatusCode::BAD_REQUEST);
        assert_eq!(next.seen().len(), 5);
    }

    #[tokio::test]
    async fn stored_quotas_are_shown_under_their_client_names() {
        let m = middleware(account(&[
            ("x-account-sysmeta-quota-bytes", "1000"),
            ("x-account-sysmeta-quota-count-policy-1", "10"),
            ("x-account-sysmeta-quota-count", ""),
        ]));
        let r = m.call(request("HEAD", "/v1/a", &[], "")).await;
        assert_eq!(r.headers()["x-account-quota-bytes"], "1000");
        assert_eq!(r.headers()["x-account-quota-count-policy-gold"], "10");
        assert!(!r.headers().contains_key("x-account-quota-count"));
    }
}
