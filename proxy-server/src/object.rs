//! Object requests (Swift's `ObjectController`): streamed GET/HEAD with
//! failover between nodes, streamed PUT to every primary with quorum, POST
//! and DELETE. (`COPY` and `X-Copy-From` are the copy middleware's.)

use crate::account::{meta_headers, pick};
use crate::backend::{best_response, futures_join_all, quorum, Answer};
use crate::middleware::Authorization;
use crate::nodes::update_target;
use crate::proxy::{answer_response, client_headers, Ctx, Proxy};
use crate::putter::{PutAnswer, PutError, Putter};
use bytes::Bytes;
use common::backend_headers::{self as bh, ContainerUpdate, DeleteAtUpdate};
use common::expirer_queue::{self, ExpirerQueue};
use common::http::{self as h, Body};
use common::timestamp::{parse_int_header, Timestamp, MAX_DELETE_AT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use ring::{Device, Ring};

/// Client headers stored with an object besides its metadata (Swift's
/// allowed headers), passed through on PUT and POST.
const STORED_HEADERS: &[&str] = &[
    "content-disposition",
    "content-encoding",
    "x-delete-at",
    "x-object-manifest",
    "x-static-large-object",
    "cache-control",
    "content-language",
    "expires",
    "x-robots-tag",
];

/// Request headers passed through to object servers on reads (the last
/// one set by the DLO middleware: a manifest's Range is its own).
const READ_HEADERS: &[&str] =
    &["range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since", bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT];

/// Where an object lives.
struct Target<'a> {
    account: &'a str,
    container: &'a str,
    object: &'a str,
}

impl Target<'_> {
    fn path(&self) -> String {
        format!("/{}/{}/{}", self.account, self.container, self.object)
    }
}

pub async fn handle(p: &std::sync::Arc<Proxy>, ctx: &Ctx, req: Request<Body>) -> Response<Body> {
    let method = req.method().clone();
    let container = ctx.container.as_deref().expect("object requests have a container");
    let object = ctx.object.as_deref().expect("object requests have an object");
    let info = p.info(ctx, &ctx.account, Some(container)).await;
    if info.status == StatusCode::NOT_FOUND {
        // Authorize first so an anonymous caller learns nothing.
        if let Authorization::Deny(denied) = p.authorize(ctx, &method, None, req.headers()).await {
            return denied;
        }
        return not_found();
    }
    if !info.status.is_success() {
        return h::text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }
    let policy = h::header_str(&info.headers, bh::BACKEND_STORAGE_POLICY_INDEX).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
    let Some(ring) = p.object_rings.get(&policy) else {
        return h::text(StatusCode::SERVICE_UNAVAILABLE, format!("No object ring for policy {policy}"));
    };
    let acl_header = if matches!(method, Method::GET | Method::HEAD) { "x-container-read" } else { "x-container-write" };
    let acl = h::header_str(&info.headers, acl_header);
    if let Authorization::Deny(denied) = p.authorize(ctx, &method, acl, req.headers()).await {
        return denied;
    }
    let target = Target { account: &ctx.account, container, object };
    let mut resp = match method.as_str() {
        "GET" | "HEAD" => get(p, ctx, &req, ring, policy, &target).await,
        "PUT" => put(p, ctx, req, ring, policy, &target).await,
        "POST" => post(p, ctx, &req, ring, policy, &target).await,
        "DELETE" => delete(p, ctx, &req, ring, policy, &target).await,
        _ => h::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    };
    // For proxy_logging's access line and metrics (the gatekeeper keeps it
    // from the client).
    policy_header(resp.headers_mut(), policy);
    resp
}

/// Passes a client's `X-Open-Expired: true` on to the object servers when
/// the operator allows it (`allow_open_expired`).
fn open_expired(p: &Proxy, client: &HeaderMap, backend: &mut HeaderMap) {
    let asked = h::header_str(client, "x-open-expired").is_some_and(|v| common::config::parse_bool(v) == Some(true));
    if p.settings.allow_open_expired && asked {
        backend.insert(bh::BACKEND_OPEN_EXPIRED, HeaderValue::from_static("true"));
    }
}

fn not_found() -> Response<Body> {
    h::text(StatusCode::NOT_FOUND, "<html><h1>Not Found</h1><p>The resource could not be found.</p></html>")
}

fn policy_header(hm: &mut HeaderMap, policy: u32) {
    hm.insert(bh::BACKEND_STORAGE_POLICY_INDEX, HeaderValue::from(policy));
}

/// GET/HEAD: the first node with a good answer streams it to the client
/// (the one reader, `getter::GetOrHead`); a body that breaks part-way is
/// resumed from the nodes not yet tried.
async fn get(p: &std::sync::Arc<Proxy>, ctx: &Ctx, req: &Request<Body>, ring: &Ring, policy: u32, t: &Target<'_>) -> Response<Body> {
    let method = req.method().clone();
    let part = ring.get_part(t.account, Some(t.container), Some(t.object)).unwrap_or(0);
    let path = t.path();
    let mut headers = p.backend_headers(ctx, &method, &path);
    policy_header(&mut headers, policy);
    for name in READ_HEADERS {
        if let Some(v) = req.headers().get(*name) {
            headers.insert(HeaderName::from_static(name), v.clone());
        }
    }
    open_expired(p, req.headers(), &mut headers);
    let newest = h::header_str(req.headers(), "x-newest").is_some_and(|v| common::config::parse_bool(v) == Some(true));
    let reader = crate::getter::GetOrHead {
        backends: &p.backends,
        ring,
        part,
        method: method.clone(),
        path: format!("{part}{path}"),
        query: String::new(),
        headers,
        newest,
    };
    let source = match reader.source(false).await {
        Ok(s) => s,
        Err(a) if a.status == StatusCode::NOT_FOUND => return not_found(),
        Err(a) if a.status == StatusCode::SERVICE_UNAVAILABLE => return h::text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        Err(a) => {
            let mut r = answer_response(&a, &method);
            r.headers_mut().insert(http::header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return r;
        }
    };
    let body = match (method == Method::GET, crate::resume::span(source.status, &source.headers), h::header_str(&source.headers, "etag")) {
        (true, Some((start, end)), Some(etag)) => crate::resume::resumable(
            p.clone(),
            source.body,
            crate::resume::Resume {
                start,
                end,
                etag: etag.to_string(),
                nodes: source.rest,
                path: format!("/{part}{path}"),
                headers: reader.headers.clone(),
                whole_object: source.status == StatusCode::OK,
            },
        ),
        _ => source.body,
    };
    let mut r = Response::new(if method == Method::HEAD { h::empty() } else { body });
    *r.status_mut() = source.status;
    client_headers(&source.headers, r.headers_mut());
    if let Some(len) = source.headers.get(http::header::CONTENT_LENGTH) {
        r.headers_mut().insert(http::header::CONTENT_LENGTH, len.clone());
    }
    r.headers_mut().insert(http::header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
}

/// The `X-Container-*` update headers for each of `n` object requests,
/// spread so every container replica is named at least once (Swift's
/// `_get_update_target` / `max(Qc + Ro - Qo, Rc)` spreading).
fn container_updates(p: &Proxy, t: &Target<'_>, n_objects: usize) -> Vec<Vec<Device>> {
    let cpart = p.container_ring.get_part(t.account, Some(t.container), None).unwrap_or(0);
    let cnodes: Vec<Device> = p.container_ring.table().part_nodes(cpart).into_iter().cloned().collect();
    spread_updates(&cnodes, n_objects, false)
}

/// Hands `nodes` out over `n_objects` requests, `max(Qc + Ro - Qo, Rc)`
/// in all; `reversed` starts from the last request, as Swift spreads the
/// expirer queue's replicas against the container's.
fn spread_updates(nodes: &[Device], n_objects: usize, reversed: bool) -> Vec<Vec<Device>> {
    let n = n_objects.max(1);
    let mut out = vec![Vec::new(); n];
    if nodes.is_empty() {
        return out;
    }
    let rc = nodes.len();
    let updates = (quorum(rc) + n_objects).saturating_sub(quorum(n_objects)).max(rc);
    for i in 0..updates {
        let slot = if reversed { n - 1 - i % n } else { i % n };
        out[slot].push(nodes[i % rc].clone());
    }
    out
}

fn add_container_headers(hm: &mut HeaderMap, p: &Proxy, t: &Target<'_>, nodes: &[Device]) {
    let cpart = p.container_ring.get_part(t.account, Some(t.container), None).unwrap_or(0);
    ContainerUpdate(update_target(cpart, nodes)).write(hm);
}

/// Where an object's expirer task goes (Swift's `get_delete_at_nodes`):
/// the task container of `.expiring_objects` and its replicas, and which
/// of them each object request names.
struct DeleteAtUpdates {
    container: String,
    partition: u32,
    /// Per object request (by primary index), the replicas it names.
    per_request: Vec<Vec<Device>>,
}

fn delete_at_updates(p: &Proxy, t: &Target<'_>, delete_at: u64, n_objects: usize) -> DeleteAtUpdates {
    let queue = ExpirerQueue::new(&p.swift.constraints.auto_create_account_prefix, expirer_queue::DEFAULT_DIVISOR);
    let container = queue.container(&p.swift.hash, delete_at, t.account, t.container, t.object);
    let partition = p.container_ring.get_part(&queue.account, Some(&container), None).unwrap_or(0);
    let nodes: Vec<Device> = p.container_ring.table().part_nodes(partition).into_iter().cloned().collect();
    DeleteAtUpdates { container, partition, per_request: spread_updates(&nodes, n_objects, true) }
}

impl DeleteAtUpdates {
    /// Adds the `X-Delete-At-*` headers of object request `i`.
    fn add_headers(&self, hm: &mut HeaderMap, i: usize) {
        let Some(nodes) = self.per_request.get(i) else { return };
        DeleteAtUpdate { target: update_target(self.partition, nodes), container: Some(self.container.clone()) }.write(hm);
    }
}

/// The timestamp of a write: the `X-Timestamp` a middleware set (clients
/// cannot: the gatekeeper sets theirs aside), else now, as Swift's
/// `_update_x_timestamp`. A bad one is the request's fault (400).
fn write_timestamp(headers: &HeaderMap) -> Result<Timestamp, Response<Body>> {
    match h::header_str(headers, bh::TIMESTAMP) {
        Some(v) => Timestamp::parse(v).map_err(|_| h::text(StatusCode::BAD_REQUEST, "X-Timestamp should be a UNIX timestamp float value")),
        None => Ok(Timestamp::now()),
    }
}

/// Validates and normalises `X-Delete-At` / `X-Delete-After` (Swift's
/// `check_delete_headers`): integers as Python reads them, in the future,
/// clamped to Swift's ten digits.
fn delete_at(headers: &HeaderMap, now: &Timestamp) -> Result<Option<u64>, String> {
    if let Some(after) = h::header_str(headers, "x-delete-after") {
        let secs = parse_int_header(after).ok_or_else(|| "Non-integer X-Delete-After".to_string())?;
        let at = (now.secs() as i64).saturating_add(secs).min(MAX_DELETE_AT);
        if at as f64 <= now.as_secs_f64() {
            return Err("X-Delete-After in past".into());
        }
        return Ok(Some(at as u64));
    }
    if let Some(at) = h::header_str(headers, bh::DELETE_AT) {
        // "1.5e9" or "nan" is 400, not a float rounded into some date.
        let at = parse_int_header(at).ok_or_else(|| "Non-integer X-Delete-At".to_string())?.min(MAX_DELETE_AT);
        if at as f64 <= now.as_secs_f64() {
            return Err("X-Delete-At in past".into());
        }
        return Ok(Some(at as u64));
    }
    Ok(None)
}

/// Headers for an object write that come from the client.
fn object_write_headers(req_headers: &HeaderMap, out: &mut HeaderMap) {
    meta_headers(req_headers, out, "object");
    for name in STORED_HEADERS {
        if let Some(v) = req_headers.get(*name) {
            out.insert(HeaderName::from_static(name), v.clone());
        }
    }
}

/// The content type for a name, as Python's `mimetypes` (which Swift
/// uses) would guess it: `mime_guess` with Python's few differing answers.
fn guess_content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "wav" => "audio/x-wav",
        _ => mime_guess::from_path(name).first_raw().unwrap_or("application/octet-stream"),
    }
}

async fn put(p: &Proxy, ctx: &Ctx, req: Request<Body>, ring: &Ring, policy: u32, t: &Target<'_>) -> Response<Body> {
    let chunked = h::header_str(req.headers(), "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let content_length = match h::header_str(req.headers(), "content-length") {
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => return h::text(StatusCode::BAD_REQUEST, "Invalid Content-Length"),
        },
        None => None,
    };
    if content_length.is_none() && !chunked {
        return h::text(StatusCode::LENGTH_REQUIRED, "Missing Content-Length header.");
    }
    if content_length.is_some_and(|n| n > p.swift.constraints.max_file_size) {
        return h::text(StatusCode::PAYLOAD_TOO_LARGE, "Your request is too large.");
    }
    if h::header_str(req.headers(), "if-none-match").is_some_and(|v| v.trim() != "*") {
        return h::text(StatusCode::BAD_REQUEST, "If-None-Match only supports *");
    }
    let (parts, body) = req.into_parts();
    let mut headers = HeaderMap::new();
    object_write_headers(&parts.headers, &mut headers);
    for name in ["etag", "if-none-match", "content-type"] {
        if let Some(v) = parts.headers.get(name) {
            headers.insert(HeaderName::from_static(name), v.clone());
        }
    }
    upload(p, ctx, &parts.headers, headers, body, content_length, ring, policy, t).await
}

/// Checks, fills in and sends an object's PUT to its nodes, streaming
/// `body`; answers the client with the quorum's verdict.
#[allow(clippy::too_many_arguments)]
async fn upload(
    p: &Proxy,
    ctx: &Ctx,
    client_headers_in: &HeaderMap,
    mut headers: HeaderMap,
    mut body: Body,
    content_length: Option<u64>,
    ring: &Ring,
    policy: u32,
    t: &Target<'_>,
) -> Response<Body> {
    if let Err(e) = crate::constraints::check_metadata(&headers, "object", &p.swift.constraints) {
        return h::text(StatusCode::BAD_REQUEST, e);
    }
    let now = match write_timestamp(client_headers_in) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let delete_at = match delete_at(client_headers_in, &now) {
        Ok(Some(at)) => {
            headers.remove("x-delete-after");
            headers.insert(bh::DELETE_AT, HeaderValue::from(at));
            Some(at)
        }
        Ok(None) => None,
        Err(e) => return h::text(StatusCode::BAD_REQUEST, e),
    };
    let detect = h::header_str(client_headers_in, "x-detect-content-type").is_some_and(|v| common::config::parse_bool(v) == Some(true));
    if detect || !headers.contains_key(http::header::CONTENT_TYPE) {
        let guess = guess_content_type(t.object);
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(guess));
    }
    if let Ok(v) = HeaderValue::from_str(&now.internal()) {
        headers.insert(bh::TIMESTAMP, v);
    }
    policy_header(&mut headers, policy);
    let path = t.path();
    let base = p.backend_headers(ctx, &Method::PUT, &path);
    for (k, v) in &base {
        headers.insert(k.clone(), v.clone());
    }
    let part = ring.get_part(t.account, Some(t.container), Some(t.object)).unwrap_or(0);
    let (primaries, handoffs) = crate::nodes::write_nodes(ring, part);
    let n = primaries.len();
    let need = quorum(n);
    let updates = container_updates(p, t, n);
    let delete_at_updates = delete_at.map(|at| delete_at_updates(p, t, at, n));
    // Connect to every primary at once; a refused or unreachable primary is
    // replaced by the next handoff.
    let handoffs = std::sync::Mutex::new(handoffs.into_iter().filter(|d| !p.backends.errors.is_limited(d)));
    let mut refusals: Vec<PutAnswer> = Vec::new();
    let connects = futures_join_all(primaries.iter().enumerate().map(|(i, primary)| {
        let mut hm = headers.clone();
        add_container_headers(&mut hm, p, t, &updates[i]);
        if let Some(d) = &delete_at_updates {
            d.add_headers(&mut hm, i);
        }
        let handoffs = &handoffs;
        let path = &path;
        async move {
            let mut node = primary.clone();
            let mut refused = Vec::new();
            for _ in 0..4 {
                if !p.backends.errors.is_limited(&node) {
                    let node_path = format!("/{}/{part}{}", node.device, path);
                    match Putter::connect(
                        &p.backends.putters,
                        &node.ip,
                        node.port,
                        &node_path,
                        &hm,
                        p.settings.conn_timeout,
                        p.settings.node_timeout,
                    )
                    .await
                    {
                        Ok(putter) => return (Some(putter), refused),
                        Err(PutError::Refused(a)) => {
                            if a.status == StatusCode::INSUFFICIENT_STORAGE {
                                p.backends.errors.limit(&node);
                            } else if a.status.is_client_error() {
                                // 409/412/...: an answer about the object, not the node.
                                refused.push(a);
                                return (None, refused);
                            } else {
                                p.backends.errors.error(&node);
                            }
                        }
                        Err(PutError::Io(e)) => {
                            p.backends.errors.error(&node);
                            common::log::warning(&format!("ERROR PUT to {}:{}/{}: {e}", node.ip, node.port, node.device));
                        }
                    }
                }
                let next = handoffs.lock().expect("handoff lock").next();
                match next {
                    Some(nx) => node = nx,
                    None => break,
                }
            }
            (None, refused)
        }
    }))
    .await;
    let mut putters: Vec<Putter> = Vec::new();
    for (putter, refused) in connects {
        refusals.extend(refused);
        if let Some(pt) = putter {
            putters.push(pt);
        }
    }
    if putters.len() < need {
        // A quorum of refusals that agree (e.g. 412 for If-None-Match, 409)
        // is the answer; otherwise too few nodes took the upload.
        let answers: Vec<Answer> =
            refusals.iter().map(|a| Answer { status: a.status, headers: a.headers.clone(), body: Bytes::new() }).collect();
        if let Some(i) = best_response(&answers, need) {
            return answer_response(&answers[i], &Method::PUT);
        }
        return h::text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    }
    // Stream: each chunk goes to every live putter before the next is read,
    // so a slow node slows the upload instead of growing memory.
    let mut sent: u64 = 0;
    let mut live: Vec<Option<Putter>> = putters.into_iter().map(Some).collect();
    loop {
        let frame = match tokio::time::timeout(p.settings.connections.client_timeout, body.frame()).await {
            Err(_) => return h::text(StatusCode::REQUEST_TIMEOUT, "Request Timeout"),
            Ok(None) => break,
            Ok(Some(Err(_))) => return h::text(StatusCode::from_u16(499).expect("499 is a valid code"), "Client Disconnect"),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else { continue };
        sent += data.len() as u64;
        if content_length.is_some_and(|n| sent > n) || sent > p.swift.constraints.max_file_size {
            return h::text(StatusCode::PAYLOAD_TOO_LARGE, "Your request is too large.");
        }
        let results = futures_join_all(live.iter_mut().map(|slot| {
            let data = data.clone();
            async move {
                if let Some(pt) = slot.as_mut() {
                    if pt.send(&data).await.is_err() {
                        *slot = None;
                    }
                }
            }
        }))
        .await;
        drop(results);
        if live.iter().filter(|s| s.is_some()).count() < need {
            return h::text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        }
    }
    if content_length.is_some_and(|n| sent < n) {
        // The client went away early: dropping the connections makes every
        // object server discard its partial upload.
        return h::text(StatusCode::from_u16(499).expect("499 is a valid code"), "Client Disconnect");
    }
    // Each node's final answer is awaited in its own task, so a node still
    // committing after the quorum answered finishes its write anyway.
    let finishing: Vec<_> = live.into_iter().flatten().map(|pt| tokio::spawn(pt.finish())).collect();
    let finals = crate::backend::join_quorum(
        finishing.into_iter().map(|task| async move {
            match task.await {
                Ok(Ok(a)) => Answer { status: a.status, headers: a.headers, body: Bytes::new() },
                _ => Answer { status: StatusCode::SERVICE_UNAVAILABLE, headers: HeaderMap::new(), body: Bytes::new() },
            }
        }),
        |done| crate::backend::has_quorum(done, need),
        p.settings.post_quorum_timeout,
    )
    .await;
    let answers: Vec<Answer> = finals
        .into_iter()
        .map(|a| a.unwrap_or(Answer { status: StatusCode::SERVICE_UNAVAILABLE, headers: HeaderMap::new(), body: Bytes::new() }))
        .collect();
    let Some(i) = best_response(&answers, need) else {
        return h::text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    };
    let winner = &answers[i];
    let mut r = h::status(winner.status);
    if winner.status.is_success() {
        if let Some(etag) = winner.headers.get(http::header::ETAG).and_then(|v| v.to_str().ok()) {
            if let Ok(v) = HeaderValue::from_str(&etag.replace('"', "")) {
                r.headers_mut().insert(http::header::ETAG, v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&common::timestamp::http_date(now.ceil_secs())) {
            r.headers_mut().insert(http::header::LAST_MODIFIED, v);
        }
    } else {
        let body = match winner.status.as_u16() {
            422 => "Unprocessable Entity",
            _ => "",
        };
        r = h::text(winner.status, body);
    }
    r
}

async fn post(p: &Proxy, ctx: &Ctx, req: &Request<Body>, ring: &Ring, policy: u32, t: &Target<'_>) -> Response<Body> {
    let mut headers = p.backend_headers(ctx, &Method::POST, &t.path());
    open_expired(p, req.headers(), &mut headers);
    object_write_headers(req.headers(), &mut headers);
    if let Some(ct) = req.headers().get(http::header::CONTENT_TYPE) {
        headers.insert(http::header::CONTENT_TYPE, ct.clone());
    }
    if let Err(e) = crate::constraints::check_metadata(&headers, "object", &p.swift.constraints) {
        return h::text(StatusCode::BAD_REQUEST, e);
    }
    let now = match write_timestamp(req.headers()) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let delete_at = match delete_at(req.headers(), &now) {
        Ok(Some(at)) => {
            headers.insert(bh::DELETE_AT, HeaderValue::from(at));
            Some(at)
        }
        Ok(None) => None,
        Err(e) => return h::text(StatusCode::BAD_REQUEST, e),
    };
    if let Ok(v) = HeaderValue::from_str(&now.internal()) {
        headers.insert(bh::TIMESTAMP, v);
    }
    policy_header(&mut headers, policy);
    write_to_object_nodes(p, ring, t, Method::POST, headers, delete_at).await
}

/// Sends a bodiless write (POST, DELETE) to the object's nodes, each told
/// which container replicas to update; answers with the quorum's verdict.
async fn write_to_object_nodes(
    p: &Proxy,
    ring: &Ring,
    t: &Target<'_>,
    method: Method,
    headers: HeaderMap,
    delete_at: Option<u64>,
) -> Response<Body> {
    let part = ring.get_part(t.account, Some(t.container), Some(t.object)).unwrap_or(0);
    let n = ring.table().part_nodes(part).len();
    let updates = container_updates(p, t, n);
    let delete_at_updates = delete_at.map(|at| delete_at_updates(p, t, at, n));
    let answers = p
        .backends
        .write(
            ring,
            part,
            method.clone(),
            &format!("{part}{}", t.path()),
            |i| {
                let mut hm = headers.clone();
                add_container_headers(&mut hm, p, t, &updates[i.min(updates.len() - 1)]);
                if let Some(d) = &delete_at_updates {
                    d.add_headers(&mut hm, i);
                }
                hm
            },
            Bytes::new(),
        )
        .await;
    let ans = pick(&answers);
    if ans.status == StatusCode::NOT_FOUND {
        return not_found();
    }
    answer_response(&ans, &method)
}

async fn delete(p: &Proxy, ctx: &Ctx, req: &Request<Body>, ring: &Ring, policy: u32, t: &Target<'_>) -> Response<Body> {
    let mut headers = p.backend_headers(ctx, &Method::DELETE, &t.path());
    let now = match write_timestamp(req.headers()) {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    if let Ok(v) = HeaderValue::from_str(&now.internal()) {
        headers.insert(bh::TIMESTAMP, v);
    }
    if let Some(v) = req.headers().get(bh::IF_DELETE_AT) {
        headers.insert(bh::IF_DELETE_AT, v.clone());
    }
    policy_header(&mut headers, policy);
    write_to_object_nodes(p, ring, t, Method::DELETE, headers, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(id: u32) -> Device {
        Device::from_json(
            id as usize,
            &serde_json::json!({"id": id, "ip": "127.0.0.1", "port": 6201, "device": format!("d{id}"), "zone": 1, "weight": 1.0}),
        )
        .expect("a device dict")
    }

    #[test]
    fn expirer_queue_replicas_are_spread_against_the_containers() {
        let nodes: Vec<Device> = (0..3).map(device).collect();
        let names = |v: Vec<Vec<Device>>| v.iter().map(|n| n.iter().map(|d| d.id).collect::<Vec<_>>()).collect::<Vec<_>>();
        // Swift names container replica i to object request i and queue
        // replica i to request n-1-i, so one lost request loses one of each.
        assert_eq!(names(spread_updates(&nodes, 3, false)), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(names(spread_updates(&nodes, 3, true)), vec![vec![2], vec![1], vec![0]]);
        // Two object requests: max(Qc + Ro - Qo, Rc) = 3 updates.
        assert_eq!(names(spread_updates(&nodes, 2, true)), vec![vec![1], vec![0, 2]]);
        assert_eq!(names(spread_updates(&[], 3, true)), vec![Vec::<u32>::new(); 3]);
    }

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn delete_at_must_be_a_future_integer() {
        let now = Timestamp::parse("1700000000.00000").unwrap();
        assert_eq!(delete_at(&with("x-delete-at", " 1800000000 "), &now), Ok(Some(1_800_000_000)));
        assert_eq!(delete_at(&with("x-delete-at", &"1".repeat(100)), &now), Ok(Some(9_999_999_999)));
        for not_integer in ["1800000000.5", "1.8e9", "inf", "nan", "", "12abc"] {
            assert_eq!(delete_at(&with("x-delete-at", not_integer), &now), Err("Non-integer X-Delete-At".into()), "{not_integer}");
        }
        assert_eq!(delete_at(&with("x-delete-at", "1700000000"), &now), Err("X-Delete-At in past".into()));
        assert_eq!(delete_at(&with("x-delete-after", "60"), &now), Ok(Some(1_700_000_060)));
        assert_eq!(delete_at(&with("x-delete-after", "1.5"), &now), Err("Non-integer X-Delete-After".into()));
        assert_eq!(delete_at(&with("x-delete-after", "0"), &now), Err("X-Delete-After in past".into()));
        assert_eq!(delete_at(&with("x-delete-after", "-1"), &now), Err("X-Delete-After in past".into()));
    }
}
