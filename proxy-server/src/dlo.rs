//! Dynamic large objects (Swift's `dlo` middleware): a GET or HEAD of an
//! object carrying `X-Object-Manifest: <container>/<prefix>` returns the
//! concatenation of the objects listed under that prefix, in name order.

use crate::auth::Decision;
use crate::proxy::{client_headers, Ctx, Proxy};

use common::http::{self as h, Body};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use std::sync::Arc;

/// One segment of the assembled object.
struct Segment {
    name: String,
    bytes: u64,
}

/// At most this many listing pages (of 10,000 names) are read.
const MAX_LISTING_PAGES: usize = 1000;

/// Splits `container/prefix` (percent-encoded, as clients send it).
pub fn parse_manifest(value: &str) -> Option<(String, String)> {
    let decoded = percent_encoding::percent_decode_str(value).decode_utf8().ok()?;
    let (c, prefix) = decoded.trim_start_matches('/').split_once('/')?;
    (!c.is_empty()).then(|| (c.to_string(), prefix.to_string()))
}

/// A single `bytes=` range as (start, end exclusive) within `len`; `None`
/// for no or several ranges (served whole, as Swift's DLO does), `Err` when
/// unsatisfiable.
fn single_range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|v| v.trim().strip_prefix("bytes=")) else { return Ok(None) };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(s), Some(e)) if s <= e => (s, (e + 1).min(len)),
        (Some(s), None) if b.is_empty() => (s, len),
        (None, Some(n)) if a.is_empty() => (len.saturating_sub(n), len),
        _ => return Ok(None),
    };
    if range.0 >= len {
        return Err(());
    }
    Ok(Some(range))
}

/// Whether `value` (an `If-Match`/`If-None-Match` list) names `etag` or `*`.
fn names_etag(value: &str, etag: &str) -> bool {
    value.split(',').map(|t| t.trim().trim_start_matches("W/").trim_matches('"')).any(|t| t == "*" || t == etag)
}

/// 412 or 304 when `If-Match` / `If-None-Match` rule the answer out.
fn conditional_status(req_headers: &HeaderMap, etag: &str) -> Option<StatusCode> {
    if h::header_str(req_headers, "if-match").is_some_and(|v| !names_etag(v, etag)) {
        return Some(StatusCode::PRECONDITION_FAILED);
    }
    if h::header_str(req_headers, "if-none-match").is_some_and(|v| names_etag(v, etag)) {
        return Some(StatusCode::NOT_MODIFIED);
    }
    None
}

/// Answers a GET/HEAD of a DLO manifest whose own response was `manifest`.
pub async fn respond(
    p: &Arc<Proxy>,
    ctx: &Ctx,
    method: &Method,
    req_headers: &HeaderMap,
    manifest: &HeaderMap,
    value: &str,
) -> Response<Body> {
    let Some((seg_container, prefix)) = parse_manifest(value) else {
        return h::text(StatusCode::BAD_REQUEST, "X-Object-Manifest must be in the format container/prefix");
    };
    let sctx = Ctx {
        info: ctx.info.clone(),
        identity: ctx.identity.clone(),
        account: ctx.account.clone(),
        container: Some(seg_container.clone()),
        object: None,
        host_url: ctx.host_url.clone(),
    };
    let info = p.info(&sctx, &ctx.account, Some(&seg_container)).await;
    if let Decision::Deny =
        p.authorize(&sctx, &Method::GET, h::header_str(&info.headers, "x-container-read"), h::header_str(req_headers, "referer")).await
    {
        return p.denied(&sctx);
    }
    // The segment listing, in name order.
    let mut segments: Vec<Segment> = Vec::new();
    let mut etags = Md5::new();
    if info.status.is_success() {
        let part = p.container_ring.get_part(&ctx.account, Some(&seg_container), None).unwrap_or(0);
        let path = format!("/{}/{}", ctx.account, seg_container);
        let headers = p.backend_headers(ctx, &Method::GET, &path);
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let mut marker = String::new();
        for _ in 0..MAX_LISTING_PAGES {
            let query = format!("format=json&prefix={}&marker={}", enc(&prefix), enc(&marker));
            let ans = p.backends.read(&p.container_ring, part, Method::GET, &format!("{part}{path}"), &query, &headers, false).await;
            if !ans.status.is_success() {
                break;
            }
            let items: Vec<serde_json::Value> = serde_json::from_slice(&ans.body).unwrap_or_default();
            if items.is_empty() {
                break;
            }
            for item in &items {
                let name = item["name"].as_str().unwrap_or_default().to_string();
                etags.update(item["hash"].as_str().unwrap_or_default().as_bytes());
                segments.push(Segment { bytes: item["bytes"].as_u64().unwrap_or(0), name: name.clone() });
                marker = name;
            }
        }
    }
    let total: u64 = segments.iter().map(|s| s.bytes).sum();
    let etag = format!("\"{}\"", etags.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>());
    let mut resp = Response::new(h::empty());
    client_headers(manifest, resp.headers_mut());
    let hm = resp.headers_mut();
    hm.insert(http::header::ETAG, HeaderValue::from_str(&etag).expect("hex is ASCII"));
    // Conditions are judged on the joined object's ETag, as swob does for
    // Swift's DLO responses.
    if let Some(status) = conditional_status(req_headers, etag.trim_matches('"')) {
        *resp.status_mut() = status;
        resp.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
        return resp;
    }
    hm.insert(http::header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let range = match single_range(h::header_str(req_headers, "range"), total) {
        Ok(r) => r,
        Err(()) => {
            let mut r = h::text(StatusCode::RANGE_NOT_SATISFIABLE, "Requested Range Not Satisfiable");
            r.headers_mut().insert(http::header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{total}")).expect("ASCII"));
            return r;
        }
    };
    let (start, end) = range.unwrap_or((0, total));
    if let Some((s, e)) = range {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let cr = format!("bytes {s}-{}/{total}", e - 1);
        resp.headers_mut().insert(http::header::CONTENT_RANGE, HeaderValue::from_str(&cr).expect("ASCII"));
    }
    resp.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if *method == Method::HEAD || start == end {
        return resp;
    }
    // Stream the segments that overlap [start, end).
    let policy = h::header_str(&info.headers, "x-backend-storage-policy-index").and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
    let (tx, out) = crate::resume::ChannelBody::channel();
    let proxy = p.clone();
    let account = ctx.account.clone();
    let base_headers = p.backend_headers(ctx, &Method::GET, &format!("/{account}/{seg_container}"));
    tokio::spawn(async move {
        let Some(ring) = proxy.object_rings.get(&policy) else {
            let _ = tx.send(Err("no object ring for the segments' policy".into())).await;
            return;
        };
        let mut offset = 0u64;
        for seg in segments {
            let (seg_start, seg_end) = (offset, offset + seg.bytes);
            offset = seg_end;
            if seg_end <= start || seg_start >= end || seg.bytes == 0 {
                continue;
            }
            let from = start.max(seg_start) - seg_start;
            let to = end.min(seg_end) - seg_start;
            let mut headers = base_headers.clone();
            headers.insert("x-backend-storage-policy-index", HeaderValue::from(policy));
            if from > 0 || to < seg.bytes {
                headers.insert(http::header::RANGE, HeaderValue::from_str(&format!("bytes={from}-{}", to - 1)).expect("ASCII"));
            }
            let part = ring.get_part(&account, Some(&seg_container), Some(&seg.name)).unwrap_or(0);
            let path = format!("/{account}/{seg_container}/{}", seg.name);
            let nodes = crate::nodes::node_iter(ring, part, (ring.table().replica_count().ceil() as usize) * 2, &proxy.backends.errors);
            let mut body = None;
            for node in &nodes {
                let r = proxy
                    .backends
                    .client
                    .request(Method::GET, &node.ip, node.port, &format!("/{}/{part}{path}", node.device), headers.clone(), h::empty())
                    .await;
                if let Ok(r) = r {
                    if r.status().is_success() {
                        body = Some(crate::backend::stream_body(r, proxy.settings.node_timeout).1);
                        break;
                    }
                }
            }
            let Some(mut body) = body else {
                let _ = tx.send(Err(format!("segment {} could not be read", seg.name).into())).await;
                return;
            };
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Ok(data) = f.into_data() {
                            if tx.send(Ok(data)).await.is_err() {
                                return; // the client went away
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
        }
    });
    *resp.body_mut() = out.boxed();
    resp
}
