//! Container requests (Swift's `ContainerController`).

use crate::account::{create_account, meta_headers, pick};
use crate::listing;
use crate::middleware::Authorization;
use crate::proxy::{answer_response, query, Ctx, Proxy};
use bytes::Bytes;
use common::backend_headers::{self as bh, AccountUpdate};
use common::http::{self as h, Body};
use common::timestamp::Timestamp;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};

pub async fn handle(p: &Proxy, ctx: &Ctx, req: Request<Body>) -> Response<Body> {
    let method = req.method().clone();
    let container = ctx.container.as_deref().expect("container requests have a container");
    match method {
        Method::GET | Method::HEAD => {
            let info = p.info(ctx, &ctx.account, Some(container)).await;
            let acl = h::header_str(&info.headers, "x-container-read");
            match p.authorize(ctx, &method, acl, req.headers()).await {
                Authorization::Deny(denied) => denied,
                Authorization::Allow { owner } => get(p, ctx, &req, owner).await,
            }
        }
        Method::PUT | Method::POST | Method::DELETE => match p.authorize(ctx, &method, None, req.headers()).await {
            Authorization::Deny(denied) => denied,
            Authorization::Allow { owner } => {
                if container.contains('/') {
                    return h::text(StatusCode::BAD_REQUEST, "Container name cannot contain slashes");
                }
                let mut req = req;
                if !owner {
                    crate::proxy::strip_owner_headers(req.headers_mut());
                }
                write(p, ctx, &req, method).await
            }
        },
        _ => h::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    }
}

/// A listing GET or HEAD, answered in JSON (the `listing_formats`
/// middleware renders what the client asked for).
async fn get(p: &Proxy, ctx: &Ctx, req: &Request<Body>, owner: bool) -> Response<Body> {
    let method = req.method().clone();
    let container = ctx.container.as_deref().expect("container");
    let mut q = query(req);
    if let Err(r) = listing::constrain_limit(&mut q, p.swift.constraints.container_listing_limit) {
        return r;
    }
    let part = p.container_ring.get_part(&ctx.account, Some(container), None).unwrap_or(0);
    let path = format!("/{}/{}", ctx.account, container);
    let mut headers = p.backend_headers(ctx, &method, &path);
    // A middleware's listing that may show reserved names.
    if let Some(v) = req.headers().get(bh::BACKEND_ALLOW_RESERVED_NAMES) {
        headers.insert(bh::BACKEND_ALLOW_RESERVED_NAMES, v.clone());
    }
    let newest = h::header_str(req.headers(), "x-newest").is_some_and(|v| common::config::parse_bool(v) == Some(true));
    let backend_path = format!("{part}{path}");
    let backend_query = listing::backend_query(&q);
    let ans = p.backends.read(&p.container_ring, part, method.clone(), &backend_path, &backend_query, &headers, newest).await;
    p.remember_info(&ctx.account, Some(container), &ans);
    let mut resp = if !ans.status.is_success() {
        answer_response(&ans, &method)
    } else {
        let mut r = listing::json_response(&ans, &method);
        if let Some(v) = p.policy_name(&ans.headers) {
            r.headers_mut().insert("x-storage-policy", v);
        }
        r
    };
    if !owner {
        crate::proxy::strip_owner_headers(resp.headers_mut());
    }
    resp
}

async fn write(p: &Proxy, ctx: &Ctx, req: &Request<Body>, method: Method) -> Response<Body> {
    let container = ctx.container.as_deref().expect("container");
    if method != Method::DELETE {
        if let Err(e) = crate::constraints::check_metadata(req.headers(), "container", &p.swift.constraints) {
            return h::text(StatusCode::BAD_REQUEST, e);
        }
    }
    let mut extra = HeaderMap::new();
    meta_headers(req.headers(), &mut extra, "container");
    for name in ["x-container-read", "x-container-write"] {
        if let Some(v) = req.headers().get(name) {
            let Ok(text) = v.to_str() else { return h::text(StatusCode::BAD_REQUEST, format!("Invalid {name}")) };
            match crate::auth::clean_acl(name, text) {
                Ok(clean) => {
                    if let Ok(v) = HeaderValue::from_str(&clean) {
                        extra.insert(http::HeaderName::from_static(name), v);
                    }
                }
                Err(e) => return h::text(StatusCode::BAD_REQUEST, e),
            }
        }
        let remove = format!("x-remove-{}", &name[2..]);
        if req.headers().contains_key(remove.as_str()) {
            extra.insert(http::HeaderName::from_static(name), HeaderValue::from_static(""));
        }
    }
    for name in ["x-container-sync-key", "x-container-sync-to", "x-versions-location", "x-history-location"] {
        if let Some(v) = req.headers().get(name) {
            extra.insert(http::HeaderName::from_static(name), v.clone());
        }
    }
    if method == Method::PUT {
        // As Swift: the index only when the client names a policy; the
        // default always, which the container server uses only to create
        // (a PUT of an existing container keeps its policy: 202).
        if let Some(name) = h::header_str(req.headers(), "x-storage-policy").filter(|n| !n.trim().is_empty()) {
            match p.swift.policy_by_name(name) {
                Some(pol) if !pol.is_deprecated => {
                    extra.insert(bh::BACKEND_STORAGE_POLICY_INDEX, HeaderValue::from(pol.index));
                }
                _ => return h::text(StatusCode::BAD_REQUEST, format!("Invalid X-Storage-Policy {name:?}")),
            }
        }
        extra.insert(bh::BACKEND_STORAGE_POLICY_DEFAULT, HeaderValue::from(p.swift.default_policy().index));
        // The account must exist first (created on demand under autocreate).
        let info = p.info(ctx, &ctx.account, None).await;
        if info.status == StatusCode::NOT_FOUND {
            if !p.settings.account_autocreate {
                return h::text(StatusCode::NOT_FOUND, "Not Found");
            }
            let created = create_account(p, ctx).await;
            if !created.status.is_success() {
                return h::text(StatusCode::SERVICE_UNAVAILABLE, "Could not create the account");
            }
        } else if !info.status.is_success() {
            return h::text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        }
    }
    let part = p.container_ring.get_part(&ctx.account, Some(container), None).unwrap_or(0);
    let path = format!("/{}/{}", ctx.account, container);
    let mut headers = p.backend_headers(ctx, &method, &path);
    for (k, v) in &extra {
        headers.insert(k.clone(), v.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&Timestamp::now().internal()) {
        headers.insert(bh::TIMESTAMP, v);
    }
    // Tell each container server which account server(s) to update, spread
    // so every account replica is named (Swift's _backend_requests).
    let account_part = p.account_ring.get_part(&ctx.account, None, None).unwrap_or(0);
    let account_nodes: Vec<ring::Device> = p.account_ring.table().part_nodes(account_part).into_iter().cloned().collect();
    let n_containers = p.container_ring.table().part_nodes(part).len().max(1);
    let per_node = |i: usize| -> HeaderMap {
        let mut hm = headers.clone();
        if method == Method::PUT || method == Method::DELETE {
            let mine: Vec<&ring::Device> =
                account_nodes.iter().enumerate().filter(|(j, _)| j % n_containers == i % n_containers).map(|(_, d)| d).collect();
            AccountUpdate(crate::nodes::update_target(account_part, mine)).write(&mut hm);
        }
        hm
    };
    let answers = p.backends.write(&p.container_ring, part, method.clone(), &format!("{part}{path}"), per_node, Bytes::new()).await;
    p.clear_info(&ctx.account, Some(container));
    p.clear_info(&ctx.account, None);
    let ans = pick(&answers);
    answer_response(&ans, &method)
}
