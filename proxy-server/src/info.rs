//! `GET /info`: the cluster's capabilities (Swift's `/info` controller).
//! Only features this proxy implements are listed, so clients and Swift's
//! functional tests skip the rest instead of failing.

use crate::proxy::Proxy;
use common::http::{self as h, Body};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use serde_json::json;

pub fn info(p: &Proxy, req: &Request<Body>) -> Response<Body> {
    if !p.settings.expose_info {
        return h::text(StatusCode::FORBIDDEN, "Forbidden");
    }
    match *req.method() {
        Method::GET | Method::HEAD => {}
        Method::OPTIONS => {
            let mut r = h::status(StatusCode::OK);
            r.headers_mut().insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            return r;
        }
        _ => {
            let mut r = h::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            r.headers_mut().insert(http::header::ALLOW, HeaderValue::from_static("GET, HEAD, OPTIONS"));
            return r;
        }
    }
    let c = &p.swift.constraints;
    let policies: Vec<serde_json::Value> = p
        .swift
        .policies
        .iter()
        .filter(|pol| !pol.is_deprecated)
        .map(|pol| {
            let mut v = json!({"name": pol.name, "aliases": pol.aliases_string()});
            if pol.is_default {
                v["default"] = json!(true);
            }
            v
        })
        .collect();
    let mut body = json!({
        "swift": {
            "version": common::VERSION,
            "account_autocreate": p.settings.account_autocreate,
            "allow_account_management": p.settings.allow_account_management,
            "allow_open_expired": p.settings.allow_open_expired,
            "strict_cors_mode": p.settings.strict_cors_mode,
            "policies": policies,
            "max_file_size": c.max_file_size,
            "max_meta_name_length": c.max_meta_name_length,
            "max_meta_value_length": c.max_meta_value_length,
            "max_meta_count": c.max_meta_count,
            "max_meta_overall_size": c.max_meta_overall_size,
            "max_header_size": c.max_header_size,
            "max_request_line": c.max_request_line,
            "max_object_name_length": c.max_object_name_length,
            "container_listing_limit": c.container_listing_limit,
            "account_listing_limit": c.account_listing_limit,
            "max_account_name_length": c.max_account_name_length,
            "max_container_name_length": c.max_container_name_length,
            "extra_header_count": c.extra_header_count,
        }
    });
    if let Some(caps) = p.capabilities() {
        for (name, value) in caps {
            body[name] = value.clone();
        }
    }
    let text = body.to_string();
    let mut r = h::text(StatusCode::OK, text);
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=UTF-8"));
    if req.method() == Method::HEAD {
        *r.body_mut() = h::empty();
    }
    r
}
