//! `egg:swift#tempauth`: v1 login (`/auth/v1.0`), tokens, and the
//! `authorize` callback controllers call (Swift's `swift.authorize`). The
//! rules themselves (tokens, groups, container and account ACLs) are in
//! `crate::auth`; this is the middleware around them.

use super::{AllowAll, AuthRequest, Authorization, Authorize, AuthorizeHook, BoxFuture, Build, Handler, Next, SwiftSource};
use crate::auth::{Decision, Identity, LoginError, TempAuth};
use crate::proxy::{Proxy, ACCOUNT_ACL_SYSMETA};
use crate::settings::TempAuthSettings;
use common::config::Section;
use common::http::{self as h, Body};
use common::server::RequestInfo;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use std::sync::Arc;

pub struct TempAuthMiddleware {
    auth: Arc<TempAuth>,
    next: Next,
}

pub fn factory(section: &Section, proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    let settings = TempAuthSettings::from_section(section).map_err(|e| e.to_string())?;
    // Every proxy sharing swift.conf derives the same token key.
    let mut secret = proxy.swift.hash.prefix.clone();
    secret.push(0);
    secret.extend_from_slice(&proxy.swift.hash.suffix);
    build.capabilities.insert("tempauth".into(), serde_json::json!({"account_acls": true}));
    build.has_auth = true;
    Ok(Arc::new(TempAuthMiddleware { auth: Arc::new(TempAuth::new(settings, &secret)), next }))
}

impl Handler for TempAuthMiddleware {
    fn call(&self, mut req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let prefix = &self.auth.settings().auth_prefix;
            if let Ok(path) = common::path::unquote(req.uri().path()) {
                if path.starts_with(prefix.as_str()) || path == prefix.trim_end_matches('/') {
                    return login(&self.auth, &req, &path);
                }
            }
            // A subrequest keeps the judgement of the request it was made
            // for (or the override of a middleware acting for itself).
            if req.extensions().get::<AuthorizeHook>().is_none() {
                let identity = identity(&self.auth, req.headers());
                if identity.as_ref().is_some_and(|id| id.groups.iter().any(|g| g == ".reseller_admin")) {
                    req.extensions_mut().insert(ResellerRequest);
                }
                let hook = TempAuthorize { auth: self.auth.clone(), identity, next: self.next.clone(), info: super::request_info(&req) };
                req.extensions_mut().insert(AuthorizeHook(Arc::new(hook)));
            }
            self.next.call(req).await
        })
    }
}

/// Left in a request whose caller is a reseller admin (Swift's
/// `reseller_request` environ key): `account_quotas` lets only them set
/// quotas, and does not hold their uploads to them. Subrequests carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResellerRequest;

/// The caller a request's `X-Auth-Token` (or `X-Storage-Token`) names, with
/// the groups of an `X-Service-Token` added.
fn identity(auth: &TempAuth, headers: &http::HeaderMap) -> Option<Identity> {
    let token = h::header_str(headers, "x-auth-token").or_else(|| h::header_str(headers, "x-storage-token"))?;
    let mut id = auth.validate(token)?;
    if let Some(st) = h::header_str(headers, "x-service-token").and_then(|t| auth.validate(t)) {
        id.groups.extend(st.groups);
    }
    Some(id)
}

/// One request's `authorize`: tempauth's rules for its caller.
struct TempAuthorize {
    auth: Arc<TempAuth>,
    identity: Option<Identity>,
    /// For the account look-up behind account ACLs.
    next: Next,
    info: RequestInfo,
}

impl Authorize for TempAuthorize {
    fn authorize<'a>(&'a self, r: &'a AuthRequest<'a>) -> BoxFuture<'a, Authorization> {
        Box::pin(async move {
            let referer = h::header_str(r.headers, "referer");
            let decision = self.auth.authorize(self.identity.as_ref(), r.method.as_str(), r.account, r.container, r.object, r.acl, referer);
            let decision = match (&decision, &self.identity) {
                (Decision::Deny, Some(identity)) if self.auth.account_prefix(r.account).is_some() => {
                    self.account_acls(r, identity).await.unwrap_or(decision)
                }
                _ => decision,
            };
            match decision {
                Decision::Allow { owner } => Authorization::Allow { owner },
                Decision::Deny => Authorization::Deny(denied(self.identity.is_some(), r.account)),
            }
        })
    }
}

impl TempAuthorize {
    /// The account's ACLs (`X-Account-Access-Control`, kept as sysmeta),
    /// read with a HEAD of the account made on tempauth's own authority.
    async fn account_acls(&self, r: &AuthRequest<'_>, identity: &Identity) -> Option<Decision> {
        let mut head = Request::new(h::empty());
        *head.method_mut() = Method::HEAD;
        *head.uri_mut() = format!("/v1/{}", h::quote_path(r.account)).parse().ok()?;
        head.extensions_mut().insert(self.info.clone());
        head.extensions_mut().insert(SwiftSource("TA"));
        head.extensions_mut().insert(AuthorizeHook(Arc::new(AllowAll)));
        let resp = self.next.call(head).await;
        if !resp.status().is_success() {
            return None;
        }
        let acls = h::header_str(resp.headers(), ACCOUNT_ACL_SYSMETA).and_then(crate::auth::parse_account_acl)?;
        crate::auth::account_acl_decision(&acls, identity, r.method.as_str(), r.container.is_some())
    }
}

/// 401 for an anonymous caller (with the realm), 403 for a known one.
fn denied(known: bool, account: &str) -> Response<Body> {
    if known {
        return h::text(StatusCode::FORBIDDEN, "<html><h1>Forbidden</h1><p>Access was denied to this resource.</p></html>");
    }
    let mut r = h::text(
        StatusCode::UNAUTHORIZED,
        "<html><h1>Unauthorized</h1><p>This server could not verify that you are authorized to access the document you requested.</p></html>",
    );
    if let Ok(v) = HeaderValue::from_str(&format!("Swift realm=\"{}\"", h::quote_path(account))) {
        r.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
    }
    r
}

/// `GET /auth/v1.0` and `GET /auth/v1/<account>/auth`.
fn login(auth: &TempAuth, req: &Request<Body>, path: &str) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return h::text(StatusCode::BAD_REQUEST, "Bad Request");
    }
    let host = h::header_str(req.headers(), "host").unwrap_or("localhost");
    let host_url = format!("http://{host}");
    let headers = req.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    match auth.login(path, header, &host_url) {
        Ok(l) => {
            let mut r = h::status(StatusCode::OK);
            let hm = r.headers_mut();
            for (k, v) in [("x-auth-token", &l.token), ("x-storage-token", &l.token), ("x-storage-url", &l.storage_url)] {
                if let Ok(v) = HeaderValue::from_str(v) {
                    hm.insert(k, v);
                }
            }
            hm.insert("x-auth-token-expires", HeaderValue::from(l.expires_in));
            r
        }
        Err(LoginError::BadRequest) => h::text(StatusCode::BAD_REQUEST, "Bad Request"),
        Err(LoginError::Unauthorized { realm }) => {
            let mut r = h::text(StatusCode::UNAUTHORIZED, "Unauthorized");
            if let Ok(v) = HeaderValue::from_str(&format!("Swift realm=\"{}\"", h::quote_path(&realm))) {
                r.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
            }
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{request, Recorder};
    use super::*;
    use common::config::ConfigFile;

    fn middleware(next: Next) -> TempAuthMiddleware {
        let conf = ConfigFile::parse("[filter:auth]\nuse = egg:swift#tempauth\nuser_test_tester = testing .admin\n", "p.conf").unwrap();
        let settings = TempAuthSettings::from_section(&conf.filter_section("auth").unwrap()).unwrap();
        TempAuthMiddleware { auth: Arc::new(TempAuth::new(settings, b"secret")), next }
    }

    /// A next handler that asks the request's authorize hook about the
    /// request and answers 204 when allowed.
    fn asking_next() -> Next {
        Arc::new(super::super::FnHandler(|req: Request<Body>| async move {
            let hook = req.extensions().get::<AuthorizeHook>().cloned();
            let path = req.uri().path().to_string();
            let segs: Vec<&str> = path.split('/').collect();
            let r = AuthRequest {
                method: req.method(),
                account: segs[2],
                container: segs.get(3).copied(),
                object: None,
                acl: None,
                headers: req.headers(),
            };
            match super::super::authorize(hook.as_ref(), &r).await {
                Authorization::Allow { owner: true } => h::status(StatusCode::NO_CONTENT),
                Authorization::Allow { owner: false } => h::status(StatusCode::OK),
                Authorization::Deny(resp) => resp,
            }
        }))
    }

    #[tokio::test]
    async fn login_then_the_token_owns_the_account() {
        let m = middleware(asking_next());
        let resp = m.call(request("GET", "/auth/v1.0", &[("x-auth-user", "test:tester"), ("x-auth-key", "testing")], "")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let token = resp.headers()["x-auth-token"].to_str().unwrap().to_string();
        assert!(resp.headers()["x-storage-url"].to_str().unwrap().ends_with("/v1/AUTH_test"));
        let bad = m.call(request("GET", "/auth/v1.0", &[("x-auth-user", "test:tester"), ("x-auth-key", "wrong")], "")).await;
        assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);

        let owner = m.call(request("GET", "/v1/AUTH_test/c", &[("x-auth-token", &token)], "")).await;
        assert_eq!(owner.status(), StatusCode::NO_CONTENT);
        let anonymous = m.call(request("GET", "/v1/AUTH_test/c", &[], "")).await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        assert!(anonymous.headers().contains_key("www-authenticate"));
        let other = m.call(request("GET", "/v1/AUTH_other/c", &[("x-auth-token", &token)], "")).await;
        assert_eq!(other.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn a_subrequest_keeps_the_hook_it_carries() {
        let next = Recorder::new(|_| h::status(StatusCode::OK));
        let m = middleware(next.clone());
        let mut req = request("GET", "/v1/AUTH_test/c", &[], "");
        req.extensions_mut().insert(AuthorizeHook(Arc::new(AllowAll)));
        assert_eq!(m.call(req).await.status(), StatusCode::OK);
        assert_eq!(next.seen().len(), 1);
    }
}
