//! Account requests: listings and metadata (Swift's `AccountController`).

use crate::backend::{best_response, quorum, Answer};
use crate::listing;
use crate::middleware::Authorization;
use crate::proxy::{answer_response, query, Ctx, Proxy};
use bytes::Bytes;
use common::backend_headers as bh;
use common::http::{self as h, Body};
use common::timestamp::Timestamp;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

pub async fn handle(p: &Proxy, ctx: &Ctx, req: Request<Body>) -> Response<Body> {
    let method = req.method().clone();
    let owner = match p.authorize(ctx, &method, None, req.headers()).await {
        Authorization::Deny(denied) => return denied,
        Authorization::Allow { owner } => owner,
    };
    let mut req = req;
    if !owner {
        crate::proxy::strip_owner_headers(req.headers_mut());
    }
    let mut resp = match method {
        Method::GET | Method::HEAD => get(p, ctx, &req).await,
        Method::POST => post(p, ctx, &req).await,
        Method::PUT | Method::DELETE => {
            if !p.settings.allow_account_management {
                let mut r = h::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
                r.headers_mut().insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS, POST"));
                return r;
            }
            if method == Method::DELETE && req.uri().query().is_some_and(|q| !q.is_empty()) {
                return h::text(StatusCode::BAD_REQUEST, "Bad Request: DELETE of an account takes no query string");
            }
            write(p, ctx, &req, method).await
        }
        _ => h::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    };
    if !owner {
        crate::proxy::strip_owner_headers(resp.headers_mut());
    }
    resp
}

/// Adds `X-Account-Access-Control` (for owners) from the stored sysmeta.
fn add_acl_header(from: &HeaderMap, to: &mut HeaderMap) {
    if let Some(acls) = h::header_str(from, crate::proxy::ACCOUNT_ACL_SYSMETA) {
        if let Ok(clean) = crate::auth::validate_account_acl(acls) {
            if !clean.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&clean) {
                    to.insert("x-account-access-control", v);
                }
            }
        }
    }
}

/// A listing GET or HEAD, answered in JSON (the `listing_formats`
/// middleware renders what the client asked for).
async fn get(p: &Proxy, ctx: &Ctx, req: &Request<Body>) -> Response<Body> {
    let method = req.method().clone();
    let mut q = query(req);
    if let Err(r) = listing::constrain_limit(&mut q, p.swift.constraints.account_listing_limit) {
        return r;
    }
    let part = p.account_ring.get_part(&ctx.account, None, None).unwrap_or(0);
    let path = format!("/{}", ctx.account);
    let mut headers = p.backend_headers(ctx, &method, &path);
    // A middleware's listing that may show reserved names.
    if let Some(v) = req.headers().get(bh::BACKEND_ALLOW_RESERVED_NAMES) {
        headers.insert(bh::BACKEND_ALLOW_RESERVED_NAMES, v.clone());
    }
    let newest = h::header_str(req.headers(), "x-newest").is_some_and(|v| common::config::parse_bool(v) == Some(true));
    let backend_path = format!("{part}{path}");
    let backend_query = listing::backend_query(&q);
    let mut ans = p.backends.read(&p.account_ring, part, method.clone(), &backend_path, &backend_query, &headers, newest).await;
    p.remember_info(&ctx.account, None, &ans);
    if ans.status == StatusCode::NOT_FOUND && p.settings.account_autocreate {
        ans = fake_account(&ctx.account);
    }
    if !ans.status.is_success() {
        if ans.status == StatusCode::NOT_FOUND
            && h::header_str(&ans.headers, "x-account-status").is_some_and(|s| s.eq_ignore_ascii_case("deleted"))
        {
            return h::text(StatusCode::GONE, "Gone");
        }
        return answer_response(&ans, &method);
    }
    let mut r = listing::json_response(&ans, &method);
    add_acl_header(&ans.headers, r.headers_mut());
    r
}

/// What Swift answers for a missing account under `account_autocreate`.
fn fake_account(account: &str) -> Answer {
    let _ = account;
    let now = Timestamp::now().normal();
    let mut hm = HeaderMap::new();
    for (k, v) in [
        ("x-account-container-count", "0"),
        ("x-account-object-count", "0"),
        ("x-account-bytes-used", "0"),
        (bh::TIMESTAMP, now.as_str()),
        (bh::PUT_TIMESTAMP, now.as_str()),
    ] {
        if let Ok(v) = HeaderValue::from_str(v) {
            hm.insert(k, v);
        }
    }
    // 204, as an account server answers a HEAD of an empty account.
    Answer { status: StatusCode::NO_CONTENT, headers: hm, body: Bytes::from_static(b"[]") }
}

/// Copies the client's metadata headers for a backend write.
pub fn meta_headers(from: &HeaderMap, to: &mut HeaderMap, kind: &str) {
    let prefixes = [format!("x-{kind}-meta-"), format!("x-remove-{kind}-meta-")];
    let sysmeta = [format!("x-{kind}-sysmeta-"), format!("x-{kind}-transient-sysmeta-")];
    for (name, value) in from {
        let n = name.as_str();
        if sysmeta.iter().any(|p| n.starts_with(p.as_str())) {
            // Only middlewares can have set these: the gatekeeper removes
            // them from clients' requests.
            to.insert(name.clone(), value.clone());
        } else if let Some(rest) = n.strip_prefix(&prefixes[1]) {
            // X-Remove-<kind>-Meta-Foo: clear Foo.
            if let Ok(name) = http::HeaderName::from_bytes(format!("{}{rest}", prefixes[0]).as_bytes()) {
                to.insert(name, HeaderValue::from_static(""));
            }
        } else if n.starts_with(&prefixes[0]) {
            to.insert(name.clone(), value.clone());
        }
    }
}

/// Checks a client's `X-Account-Access-Control`, if any.
fn check_acl_header(req: &Request<Body>) -> Result<(), Response<Body>> {
    if let Some(v) = req.headers().get("x-account-access-control") {
        let text = v.to_str().map_err(|_| h::text(StatusCode::BAD_REQUEST, "Invalid X-Account-Access-Control"))?;
        crate::auth::validate_account_acl(text).map_err(|e| h::text(StatusCode::BAD_REQUEST, e))?;
    }
    Ok(())
}

async fn post(p: &Proxy, ctx: &Ctx, req: &Request<Body>) -> Response<Body> {
    if let Err(e) = crate::constraints::check_metadata(req.headers(), "account", &p.swift.constraints) {
        return h::text(StatusCode::BAD_REQUEST, e);
    }
    if let Err(r) = check_acl_header(req) {
        return r;
    }
    let mut ans = account_write(p, ctx, req, Method::POST).await;
    if ans.status == StatusCode::NOT_FOUND && p.settings.account_autocreate {
        let created = create_account(p, ctx).await;
        if created.status.is_success() {
            ans = account_write(p, ctx, req, Method::POST).await;
        }
    }
    p.clear_info(&ctx.account, None);
    answer_response(&ans, &Method::POST)
}

async fn write(p: &Proxy, ctx: &Ctx, req: &Request<Body>, method: Method) -> Response<Body> {
    if method == Method::PUT {
        if let Err(e) = crate::constraints::check_metadata(req.headers(), "account", &p.swift.constraints) {
            return h::text(StatusCode::BAD_REQUEST, e);
        }
        if let Err(r) = check_acl_header(req) {
            return r;
        }
    }
    let ans = account_write(p, ctx, req, method.clone()).await;
    p.clear_info(&ctx.account, None);
    answer_response(&ans, &method)
}

async fn account_write(p: &Proxy, ctx: &Ctx, req: &Request<Body>, method: Method) -> Answer {
    let part = p.account_ring.get_part(&ctx.account, None, None).unwrap_or(0);
    let path = format!("/{}", ctx.account);
    let mut headers = p.backend_headers(ctx, &method, &path);
    meta_headers(req.headers(), &mut headers, "account");
    if let Some(v) = req.headers().get("x-account-access-control") {
        // Validated by the caller (account_acl_header).
        let clean = v.to_str().ok().and_then(|v| crate::auth::validate_account_acl(v).ok()).unwrap_or_default();
        if let Ok(v) = HeaderValue::from_str(&clean) {
            headers.insert(http::HeaderName::from_static(crate::proxy::ACCOUNT_ACL_SYSMETA), v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&Timestamp::now().internal()) {
        headers.insert(bh::TIMESTAMP, v);
    }
    let answers = p.backends.write(&p.account_ring, part, method, &format!("{part}{path}"), |_| headers.clone(), Bytes::new()).await;
    pick(&answers)
}

/// The best answer of a write, or 503.
pub fn pick(answers: &[Answer]) -> Answer {
    match best_response(answers, quorum(answers.len())) {
        Some(i) => answers[i].clone(),
        None => Answer { status: StatusCode::SERVICE_UNAVAILABLE, headers: HeaderMap::new(), body: Bytes::new() },
    }
}

/// Creates the account on its servers (account autocreate).
pub async fn create_account(p: &Proxy, ctx: &Ctx) -> Answer {
    let part = p.account_ring.get_part(&ctx.account, None, None).unwrap_or(0);
    let path = format!("/{}", ctx.account);
    let mut headers = p.backend_headers(ctx, &Method::PUT, &path);
    if let Ok(v) = HeaderValue::from_str(&Timestamp::now().internal()) {
        headers.insert(bh::TIMESTAMP, v);
    }
    let answers = p.backends.write(&p.account_ring, part, Method::PUT, &format!("{part}{path}"), |_| headers.clone(), Bytes::new()).await;
    p.clear_info(&ctx.account, None);
    pick(&answers)
}
