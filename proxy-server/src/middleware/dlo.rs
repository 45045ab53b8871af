//! `egg:swift#dlo`: dynamic large objects. A GET or HEAD of an object
//! carrying `X-Object-Manifest: <container>/<prefix>` returns the
//! concatenation of the objects listed under that prefix, in name order,
//! read with subrequests into the pipeline to the right (as the caller, so
//! the segment container's read ACL applies); `?multipart-manifest=get`
//! returns the manifest itself. A PUT of a manifest must name
//! `<container>/<prefix>`.

use super::{subrequest, BoxFuture, Build, Handler, Next, ObjectPath};
use crate::proxy::Proxy;
use common::backend_headers as bh;
use common::config::Section;
use common::http::{self as h, Body};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use std::sync::Arc;

/// `swift.source` of the DLO's subrequests.
const SOURCE: &str = "DLO";

/// At most this many listing pages (of 10,000 names) are read.
const MAX_LISTING_PAGES: usize = 1000;

pub struct Dlo {
    next: Next,
}

pub fn factory(_section: &Section, _proxy: &Proxy, next: Next, _build: &mut Build) -> Result<Next, String> {
    Ok(Arc::new(Dlo { next }))
}

/// One segment of the assembled object.
struct Segment {
    name: String,
    bytes: u64,
}

impl Handler for Dlo {
    fn call(&self, mut req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let Some(path) = ObjectPath::parse(req.uri().path()) else { return self.next.call(req).await };
            let manifest_get = super::query_param(req.uri().query(), "multipart-manifest").as_deref() == Some("get");
            match *req.method() {
                Method::PUT => {
                    if let Some(v) = req.headers().get("x-object-manifest") {
                        // Raw UTF-8 is allowed in the value, as Swift reads it.
                        let ok = std::str::from_utf8(v.as_bytes())
                            .ok()
                            .filter(|v| !v.contains('?') && !v.contains('&'))
                            .and_then(parse_manifest)
                            .is_some_and(|(_, prefix)| !prefix.starts_with('/'));
                        if !ok {
                            return h::text(StatusCode::BAD_REQUEST, "X-Object-Manifest must be in the format container/prefix");
                        }
                    }
                    self.next.call(req).await
                }
                Method::GET | Method::HEAD if !manifest_get => {
                    // A manifest's Range applies to the joined object, so the
                    // object server is asked to ignore it for one.
                    // (Added to any names a middleware to the left asked for.)
                    let names = match req.headers().get(bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT).and_then(|v| v.to_str().ok()) {
                        Some(v) if !v.is_empty() => format!("{v},X-Object-Manifest"),
                        _ => "X-Object-Manifest".to_string(),
                    };
                    if let Ok(v) = HeaderValue::from_str(&names) {
                        req.headers_mut().insert(bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT, v);
                    }
                    let (parts, body) = req.into_parts();
                    let mut base = Request::new(()).into_parts().0;
                    base.method = parts.method.clone();
                    base.headers = parts.headers.clone();
                    base.extensions = parts.extensions.clone();
                    let resp = self.next.call(Request::from_parts(parts, body)).await;
                    // The object server judges a conditional GET of a manifest
                    // on the manifest's own ETag (412, 304); the conditions are
                    // about the joined object, so they are judged again here.
                    let judged = matches!(resp.status(), StatusCode::PRECONDITION_FAILED | StatusCode::NOT_MODIFIED);
                    let manifest = resp.headers().get("x-object-manifest").and_then(|v| std::str::from_utf8(v.as_bytes()).ok());
                    match manifest.map(str::to_string) {
                        Some(value) if resp.status().is_success() || judged => {
                            let headers = resp.into_parts().0.headers;
                            self.joined(&base, &path, &headers, &value).await
                        }
                        _ => resp,
                    }
                }
                _ => self.next.call(req).await,
            }
        })
    }
}

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

/// The quoted URI of a subrequest: `path` (unquoted) with `query`.
fn uri(path: &str, query: &str) -> String {
    let quoted = h::quote_path(path);
    if query.is_empty() {
        quoted
    } else {
        format!("{quoted}?{query}")
    }
}

impl Dlo {
    /// The segments under `prefix` in `container`, in name order, from
    /// container listings read as the caller. A refusal (401, 403) is the
    /// answer; a missing container has no segments.
    async fn segments(
        &self,
        base: &http::request::Parts,
        path: &ObjectPath,
        container: &str,
        prefix: &str,
    ) -> Result<(Vec<Segment>, String), Response<Body>> {
        let mut segments: Vec<Segment> = Vec::new();
        let mut etags = Md5::new();
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let listing = format!("/{}/{}/{container}", path.version, path.account);
        let mut marker = String::new();
        for _ in 0..MAX_LISTING_PAGES {
            let query = format!("format=json&prefix={}&marker={}", enc(prefix), enc(&marker));
            let req = subrequest(base, Method::GET, &uri(&listing, &query), HeaderMap::new(), h::empty(), SOURCE)?;
            let resp = self.next.call(req).await;
            if matches!(resp.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                return Err(resp);
            }
            if !resp.status().is_success() {
                break;
            }
            let body = resp.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let items: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
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
        let etag = etags.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>();
        Ok((segments, etag))
    }

    /// Answers a GET/HEAD of a DLO manifest whose own response had
    /// `manifest` as its headers.
    async fn joined(&self, base: &http::request::Parts, path: &ObjectPath, manifest: &HeaderMap, value: &str) -> Response<Body> {
        let Some((seg_container, prefix)) = parse_manifest(value) else {
            return h::text(StatusCode::BAD_REQUEST, "X-Object-Manifest must be in the format container/prefix");
        };
        let (segments, etag) = match self.segments(base, path, &seg_container, &prefix).await {
            Ok(s) => s,
            Err(refused) => return refused,
        };
        let total: u64 = segments.iter().map(|s| s.bytes).sum();
        let mut resp = Response::new(h::empty());
        *resp.headers_mut() = manifest.clone();
        let hm = resp.headers_mut();
        for name in [http::header::CONTENT_LENGTH, http::header::CONTENT_RANGE, http::header::TRANSFER_ENCODING] {
            hm.remove(name);
        }
        hm.insert(http::header::ETAG, HeaderValue::from_str(&format!("\"{etag}\"")).expect("hex is ASCII"));
        // Conditions are judged on the joined object's ETag, as swob does
        // for Swift's DLO responses.
        if let Some(status) = conditional_status(&base.headers, &etag) {
            *resp.status_mut() = status;
            resp.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
            return resp;
        }
        hm.insert(http::header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let range = match single_range(h::header_str(&base.headers, "range"), total) {
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
        if base.method == Method::HEAD || start == end {
            return resp;
        }
        // Stream the segments that overlap [start, end), one subrequest each.
        let (tx, out) = crate::resume::ChannelBody::channel();
        let next = self.next.clone();
        let mut seg_base = Request::new(()).into_parts().0;
        seg_base.headers = base.headers.clone();
        seg_base.extensions = base.extensions.clone();
        let container_path = format!("/{}/{}/{seg_container}", path.version, path.account);
        tokio::spawn(async move {
            let mut offset = 0u64;
            for seg in segments {
                let (seg_start, seg_end) = (offset, offset + seg.bytes);
                offset = seg_end;
                if seg_end <= start || seg_start >= end || seg.bytes == 0 {
                    continue;
                }
                let from = start.max(seg_start) - seg_start;
                let to = end.min(seg_end) - seg_start;
                let mut headers = HeaderMap::new();
                if from > 0 || to < seg.bytes {
                    headers.insert(http::header::RANGE, HeaderValue::from_str(&format!("bytes={from}-{}", to - 1)).expect("ASCII"));
                }
                let seg_uri = uri(&format!("{container_path}/{}", seg.name), "");
                let resp = match subrequest(&seg_base, Method::GET, &seg_uri, headers, h::empty(), SOURCE) {
                    Ok(req) => next.call(req).await,
                    Err(resp) => resp,
                };
                if !resp.status().is_success() {
                    let _ = tx.send(Err(format!("segment {} could not be read: {}", seg.name, resp.status()).into())).await;
                    return;
                }
                let mut body = resp.into_body();
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, request, Recorder, Seen};
    use super::*;

    /// A fake proxy app with a manifest `/v1/a/c/m` over segments
    /// `s/p1` ("abc") and `s/p2` ("defg").
    fn app() -> Arc<Recorder> {
        Recorder::new(|seen: &Seen| {
            let uri = seen.uri.as_str();
            if uri == "/v1/a/c/m" {
                let mut r = h::status(StatusCode::OK);
                r.headers_mut().insert("x-object-manifest", "s/p".parse().unwrap());
                r.headers_mut().insert("content-length", "0".parse().unwrap());
                return r;
            }
            if uri.starts_with("/v1/a/s?") {
                let listing = if uri.contains("marker=&") || uri.ends_with("marker=") {
                    r#"[{"name":"p1","bytes":3,"hash":"900150983cd24fb0d6963f7d28e17f72"},{"name":"p2","bytes":4,"hash":"025d1ea5d9a2f0c5a8f6d1b6b1e1a1a1"}]"#
                } else {
                    "[]"
                };
                return Response::new(h::full(listing));
            }
            let body = match uri {
                "/v1/a/s/p1" => "abc",
                "/v1/a/s/p2" => "defg",
                _ => return h::status(StatusCode::NOT_FOUND),
            };
            match h::header_str(&seen.headers, "range").and_then(|r| r.strip_prefix("bytes=")) {
                Some(r) => {
                    let (a, b) = r.split_once('-').unwrap();
                    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                    let mut resp = Response::new(h::full(body[a..=b].to_string()));
                    *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
                    resp
                }
                None => Response::new(h::full(body)),
            }
        })
    }

    #[tokio::test]
    async fn a_manifest_is_served_as_its_segments_joined() {
        let next = app();
        let m = Dlo { next: next.clone() };
        let resp = m.call(request("GET", "/v1/a/c/m", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-length"], "7");
        let mut etags = Md5::new();
        etags.update(b"900150983cd24fb0d6963f7d28e17f72025d1ea5d9a2f0c5a8f6d1b6b1e1a1a1");
        let etag = format!("\"{}\"", etags.finalize().iter().map(|b| format!("{b:02x}")).collect::<String>());
        assert_eq!(resp.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(body_of(resp).await, "abcdefg");
        let seen = next.seen();
        assert_eq!(seen[0].headers["x-backend-ignore-range-if-metadata-present"], "X-Object-Manifest");
        assert!(seen[1..].iter().all(|s| s.source == Some("DLO")));

        // A range across the two segments asks each for its part.
        let resp = m.call(request("GET", "/v1/a/c/m", &[("range", "bytes=2-4")], "")).await;
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(resp.headers()["content-range"], "bytes 2-4/7");
        assert_eq!(body_of(resp).await, "cde");
        // Conditions are judged on the joined ETag.
        let resp = m.call(request("HEAD", "/v1/a/c/m", &[("if-none-match", &etag)], "")).await;
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    }

    #[tokio::test]
    async fn the_manifest_itself_and_manifest_puts() {
        let next = app();
        let m = Dlo { next: next.clone() };
        let resp = m.call(request("GET", "/v1/a/c/m?multipart-manifest=get", &[], "")).await;
        assert_eq!(resp.headers()["content-length"], "0");
        assert_eq!(next.seen().len(), 1);
        for bad in ["nocontainer", "c/?x", "/c"] {
            let r = m.call(request("PUT", "/v1/a/c/m2", &[("x-object-manifest", bad)], "")).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        let r = m.call(request("PUT", "/v1/a/c/m2", &[("x-object-manifest", "s/p")], "")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND); // the fake app's answer: passed on
        assert_eq!(next.seen().len(), 2);
    }
}
