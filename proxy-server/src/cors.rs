//! `OPTIONS` on the API: the allowed verbs, and CORS preflight against the
//! container's `X-Container-Meta-Access-Control-*` settings.

use crate::proxy::{Ctx, Proxy};
use common::http::{self as h, Body};
use http::{HeaderValue, Request, Response, StatusCode};

pub async fn options(p: &Proxy, ctx: &Ctx, req: &Request<Body>) -> Response<Body> {
    let allowed: &[&str] = if ctx.object.is_some() {
        &["GET", "PUT", "POST", "HEAD", "DELETE", "OPTIONS", "COPY"]
    } else if ctx.container.is_some() {
        &["GET", "PUT", "POST", "HEAD", "DELETE", "OPTIONS"]
    } else if p.settings.allow_account_management {
        &["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE"]
    } else {
        &["GET", "POST", "HEAD", "OPTIONS"]
    };
    let allow = allowed.join(", ");
    let mut resp = h::status(StatusCode::OK);
    resp.headers_mut().insert(http::header::ALLOW, HeaderValue::from_str(&allow).expect("verbs are ASCII"));
    let Some(origin) = h::header_str(req.headers(), "origin").map(str::to_string) else { return resp };
    let Some(container) = ctx.container.as_deref() else { return resp };
    let info = p.info(ctx, &ctx.account, Some(container)).await;
    let container_origins = h::header_str(&info.headers, "x-container-meta-access-control-allow-origin").unwrap_or("");
    let origin_ok = origin_allowed(p, container_origins, &origin);
    let method_ok = h::header_str(req.headers(), "access-control-request-method").is_some_and(|m| allowed.contains(&m));
    if !origin_ok || !method_ok {
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        return resp;
    }
    let hm = resp.headers_mut();
    if container_origins.trim() == "*" {
        hm.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    } else if let Ok(v) = HeaderValue::from_str(&origin) {
        hm.insert("access-control-allow-origin", v);
        hm.insert(http::header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(age) = info.headers.get("x-container-meta-access-control-max-age") {
        hm.insert("access-control-max-age", age.clone());
    }
    hm.insert("access-control-allow-methods", HeaderValue::from_str(&allow).expect("verbs are ASCII"));
    if let Some(reqh) = req.headers().get("access-control-request-headers") {
        hm.insert("access-control-allow-headers", reqh.clone());
    }
    resp
}

/// Whether `origin` may make CORS requests to the container (its
/// `X-Container-Meta-Access-Control-Allow-Origin` plus the proxy's
/// `cors_allow_origin`).
fn origin_allowed(p: &Proxy, container_origins: &str, origin: &str) -> bool {
    let mut origins: Vec<&str> = p.settings.cors_allow_origin.iter().map(String::as_str).collect();
    origins.extend(container_origins.split_whitespace());
    origins.contains(&"*") || origins.contains(&origin)
}

/// Adds the CORS headers of an actual (not preflight) request's response,
/// as Swift's `cors_validation` does for container and object requests.
pub async fn apply(p: &Proxy, ctx: &Ctx, origin: &str, resp: &mut Response<Body>) {
    let Some(container) = ctx.container.as_deref() else { return };
    let info = p.info(ctx, &ctx.account, Some(container)).await;
    let allow = h::header_str(&info.headers, "x-container-meta-access-control-allow-origin").unwrap_or("").to_string();
    if p.settings.strict_cors_mode && !origin_allowed(p, &allow, origin) {
        return;
    }
    let hm = resp.headers_mut();
    if !hm.contains_key("access-control-expose-headers") {
        let mut expose: Vec<String> = [
            "cache-control",
            "content-language",
            "content-type",
            "expires",
            "last-modified",
            "pragma",
            "etag",
            "x-timestamp",
            "x-trans-id",
            "x-openstack-request-id",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        expose.extend(p.settings.cors_expose_headers.iter().map(|s| s.to_ascii_lowercase()));
        for name in hm.keys() {
            let n = name.as_str();
            if n.starts_with("x-container-meta") || n.starts_with("x-object-meta") {
                expose.push(n.to_string());
            }
        }
        if let Some(extra) = h::header_str(&info.headers, "x-container-meta-access-control-expose-headers") {
            expose.extend(extra.split_whitespace().map(str::to_ascii_lowercase));
        }
        expose.sort();
        expose.dedup();
        if let Ok(v) = HeaderValue::from_str(&expose.join(", ")) {
            hm.insert("access-control-expose-headers", v);
        }
    }
    if !hm.contains_key("access-control-allow-origin") {
        if allow.trim() == "*" {
            hm.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        } else if let Ok(v) = HeaderValue::from_str(origin) {
            hm.insert("access-control-allow-origin", v);
            hm.append(http::header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}
