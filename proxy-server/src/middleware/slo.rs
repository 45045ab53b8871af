//! `egg:swift#slo`: static large objects. A manifest, stored as a JSON
//! list of segments (`?multipart-manifest=put`, each segment checked with a
//! HEAD), is served as its segments joined: a GET streams them, fetched one
//! at a time by subrequests into the pipeline to the right (as the caller,
//! so the segment containers' ACLs apply), each checked against the
//! manifest's size and ETag. `?multipart-manifest=get` returns the manifest
//! itself (`&format=raw` in the form it was put in),
//! `?multipart-manifest=delete` deletes the segments and then the
//! manifest, and container listings show an SLO's ETag as `slo_etag`.
//!
//! The SLO's ETag and size are kept in sysmeta at PUT time
//! (`X-Object-Sysmeta-Slo-Etag`, `-Size`); conditional requests, `Range`
//! and `?part-number=N` are judged here on the joined object.

use super::{subrequest, BoxFuture, Build, Handler, Next, ObjectPath};
use crate::proxy::Proxy;
use bytes::Bytes;
use common::backend_headers as bh;
use common::config::Section;
use common::http::{self as h, Body};
use common::listing_format::{best_match, push_json_str, push_py_json, push_py_object, xml_text};
use futures_util::StreamExt;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `swift.source` of the SLO's subrequests.
const SOURCE: &str = "SLO";
const SYSMETA_SLO_ETAG: &str = "x-object-sysmeta-slo-etag";
const SYSMETA_SLO_SIZE: &str = "x-object-sysmeta-slo-size";
/// The container update's ETag as the object servers will send it.
const OVERRIDE_ETAG: &str = "x-object-sysmeta-container-update-override-etag";
/// Nested manifests deeper than this are refused when read.
const MAX_RECURSION_DEPTH: u32 = 10;
/// Swift's bulk middleware's response formats, best first.
const ACCEPTABLE_FORMATS: [&str; 4] = ["text/plain", "application/json", "application/xml", "text/xml"];
/// Sub-manifests kept while serving one GET (twice the recursion depth).
const SUB_MANIFEST_CACHE: usize = 20;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `[filter:slo]` options, with Swift's defaults.
#[derive(Debug, Clone)]
pub struct SloSettings {
    pub max_manifest_segments: usize,
    pub max_manifest_size: usize,
    /// Seconds between heartbeat spaces of a `?heartbeat=on` PUT.
    pub yield_frequency: u64,
    /// Segment HEADs in flight during a manifest PUT.
    pub concurrency: usize,
    /// Segment DELETEs in flight during a manifest delete.
    pub delete_concurrency: usize,
    /// Segments smaller than this (bytes) are rate limited...
    pub rate_limit_under_size: u64,
    /// ...after this many segments of a GET...
    pub rate_limit_after_segment: u64,
    /// ...to this many per second (0: no limit).
    pub rate_limit_segments_per_sec: u64,
    /// A GET streaming longer than this (seconds) is cut off.
    pub max_get_time: u64,
}

impl SloSettings {
    pub fn from_section(s: &Section) -> Result<SloSettings, String> {
        let e = |e: common::config::ConfigError| e.to_string();
        let concurrency = s.get_usize("concurrency", 2).map_err(e)?.clamp(1, 1000);
        Ok(SloSettings {
            max_manifest_segments: s.get_usize("max_manifest_segments", 1000).map_err(e)?,
            max_manifest_size: s.get_usize("max_manifest_size", 8 * 1024 * 1024).map_err(e)?,
            yield_frequency: s.get_u64("yield_frequency", 10).map_err(e)?,
            concurrency,
            delete_concurrency: s.get_usize("delete_concurrency", concurrency).map_err(e)?.clamp(1, 1000),
            rate_limit_under_size: s.get_u64("rate_limit_under_size", 1024 * 1024).map_err(e)?,
            rate_limit_after_segment: s.get_u64("rate_limit_after_segment", 10).map_err(e)?,
            rate_limit_segments_per_sec: s.get_u64("rate_limit_segments_per_sec", 1).map_err(e)?,
            max_get_time: s.get_u64("max_get_time", 86400).map_err(e)?,
        })
    }
}

impl Default for SloSettings {
    fn default() -> SloSettings {
        SloSettings {
            max_manifest_segments: 1000,
            max_manifest_size: 8 * 1024 * 1024,
            yield_frequency: 10,
            concurrency: 2,
            delete_concurrency: 2,
            rate_limit_under_size: 1024 * 1024,
            rate_limit_after_segment: 10,
            rate_limit_segments_per_sec: 1,
            max_get_time: 86400,
        }
    }
}

pub struct Slo {
    inner: Arc<Inner>,
}

/// What the spawned tasks (streaming GETs, heartbeating PUTs) share.
struct Inner {
    settings: SloSettings,
    next: Next,
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    let settings = SloSettings::from_section(section)?;
    build.capabilities.insert(
        "slo".into(),
        serde_json::json!({
            "max_manifest_segments": settings.max_manifest_segments,
            "max_manifest_size": settings.max_manifest_size,
            "yield_frequency": settings.yield_frequency,
            // No longer configurable in Swift; reported for old clients.
            "min_segment_size": 1,
            // `?async=on` deletes (expirer-queued) are not implemented.
            "allow_async_delete": false,
        }),
    );
    Ok(Arc::new(Slo::new(settings, next)))
}

impl Slo {
    pub fn new(settings: SloSettings, next: Next) -> Slo {
        Slo { inner: Arc::new(Inner { settings, next }) }
    }
}

impl Handler for Slo {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.handle(req).await })
    }
}

impl Inner {
    fn handle(self: Arc<Self>, req: Request<Body>) -> BoxFuture<'static, Response<Body>> {
        Box::pin(async move {
            let query = req.uri().query().map(str::to_string);
            let param = |k: &str| super::query_param(query.as_deref(), k);
            let Some(path) = ObjectPath::parse(req.uri().path()) else {
                if req.method() == Method::GET && is_container_path(req.uri().path()) {
                    return container_listing(self.next.call(req).await).await;
                }
                return self.next.call(req).await;
            };
            let manifest = param("multipart-manifest");
            match (req.method().clone(), manifest.as_deref()) {
                (Method::PUT, Some("put")) => self.put_manifest(req, path).await,
                (Method::DELETE, Some("delete")) => self.delete_manifest(req, path).await,
                (Method::GET, _) | (Method::HEAD, _) => self.get_or_head(req, path).await,
                _ if req.headers().contains_key("x-static-large-object") => h::text(
                    StatusCode::BAD_REQUEST,
                    "X-Static-Large-Object is a reserved header. To create a static large object add query param multipart-manifest=put.",
                ),
                _ => self.next.call(req).await,
            }
        })
    }
}

fn is_container_path(path: &str) -> bool {
    let Ok(path) = common::path::unquote_internal(path) else { return false };
    common::path::split_path(&path, 3, 3, false).is_ok_and(|s| s.iter().all(|p| p.as_deref().is_some_and(|p| !p.is_empty())))
}

// ---------------------------------------------------------------------
// Small shared pieces.

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5_hex(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

fn unquote_etag(v: &str) -> String {
    let v = v.trim();
    v.strip_prefix("W/").unwrap_or(v).trim_matches('"').to_string()
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on" | "t" | "y"))
}

fn is_slo(headers: &HeaderMap) -> bool {
    is_true(h::header_str(headers, "x-static-large-object"))
}

/// `"404 Not Found"`, as Swift names a status.
fn status_line(s: StatusCode) -> String {
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}

/// swob's default body for a status, as bulk reports it.
fn default_reason_body(s: StatusCode) -> String {
    let explanation = match s.as_u16() {
        400 => "The server could not comply with the request since it is either malformed or otherwise incorrect.",
        401 => "This server could not verify that you are authorized to access the document you requested.",
        404 => "The resource could not be found.",
        406 => "The resource is not available in a format acceptable to your browser.",
        422 => "Unable to process the contained instructions",
        500 => "The server has either erred or is incapable of performing the requested operation.",
        502 => "Bad gateway.",
        _ => "",
    };
    let reason = s.canonical_reason().unwrap_or("");
    if explanation.is_empty() {
        reason.to_string()
    } else {
        format!("{reason}\n{explanation}")
    }
}

/// Removes a `swift_bytes` parameter from a content type (Swift's
/// `clean_content_type`).
fn clean_content_type(value: &str) -> &str {
    match value.rsplit_once(';') {
        Some((left, right)) if right.trim_start().starts_with("swift_bytes=") => left,
        _ => value,
    }
}

fn clean_content_type_header(headers: &mut HeaderMap) {
    if let Some(ct) = h::header_str(headers, "content-type") {
        let clean = clean_content_type(ct);
        if clean.len() != ct.len() {
            if let Ok(v) = HeaderValue::from_str(clean) {
                headers.insert(http::header::CONTENT_TYPE, v);
            }
        }
    }
}

fn set(headers: &mut HeaderMap, name: &'static str, value: impl ToString) {
    if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
        headers.insert(name, v);
    }
}

/// A copy of a request's head without its body (for subrequests and
/// refetches made after the request has gone on).
fn head_of(parts: &Parts) -> Parts {
    let mut p = Request::new(()).into_parts().0;
    p.method = parts.method.clone();
    p.uri = parts.uri.clone();
    p.headers = parts.headers.clone();
    p.extensions = parts.extensions.clone();
    p
}

/// Reads a body up to `limit` bytes; `Err(())` when it is longer.
async fn read_limited(mut body: Body, limit: usize) -> Result<Vec<u8>, Option<BoxError>> {
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(Some)?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Strict base64 (the standard alphabet, padding optional), as Swift's
/// `strict_b64decode`.
fn b64decode(s: &str) -> Option<Vec<u8>> {
    super::base64_decode_unpadded(s.trim_end_matches('='))
}

/// The response format a client asked for with `Accept` (bulk's
/// formats); `None` when its header is malformed.
fn out_format(headers: &HeaderMap) -> Option<&'static str> {
    best_match(h::header_str(headers, "accept").unwrap_or(""), &ACCEPTABLE_FORMATS).ok()
}

/// Swift's `get_heartbeat_response_body`: `pairs` (sorted by key for text
/// and XML; in order for JSON) and the failed names with their reasons.
fn result_body(format: &str, pairs: &[(&str, Value)], errors: &[(String, String)], root: &str) -> String {
    let mut out = String::new();
    if format == "application/json" {
        let mut all: Vec<(String, Value)> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let errs = errors.iter().map(|(n, s)| Value::Array(vec![Value::String(n.clone()), Value::String(s.clone())])).collect();
        all.push(("Errors".into(), Value::Array(errs)));
        push_py_object(&mut out, all.iter().map(|(k, v)| (k, v)));
        return out;
    }
    let mut sorted: Vec<&(&str, Value)> = pairs.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if format.ends_with("/xml") {
        out.push_str(&format!("<{root}>\n"));
        for (k, v) in sorted {
            let key = k.replace(' ', "_").to_lowercase();
            out.push_str(&format!("<{key}>{}</{key}>\n", xml_text(&text(v))));
        }
        out.push_str("<errors>\n");
        for (name, status) in errors {
            out.push_str(&format!("<object><name>{}</name><status>{}</status></object>\n", xml_text(name), xml_text(status)));
        }
        out.push_str(&format!("</errors>\n</{root}>\n"));
        return out;
    }
    for (k, v) in sorted {
        out.push_str(&format!("{k}: {}\n", text(v)));
    }
    out.push_str("Errors:\n");
    for (name, status) in errors {
        out.push_str(&format!("{name}, {status}\n"));
    }
    out
}

/// A name as Swift's `quote` writes it in error lists.
fn quote(name: &str) -> String {
    h::quote_path(name)
}

// ---------------------------------------------------------------------
// Ranges and conditions on the joined object.

/// A `Range` header as swob parses it: `(first, last)` pairs where a
/// missing first means a suffix; `None` when the header is not valid
/// (and so is ignored).
fn parse_range(value: &str) -> Option<Vec<(Option<u64>, Option<u64>)>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let mut out = Vec::new();
    for part in spec.split(',') {
        let (a, b) = part.trim().split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        let a = if a.is_empty() { None } else { Some(a.parse::<u64>().ok()?) };
        let b = if b.is_empty() { None } else { Some(b.parse::<u64>().ok()?) };
        match (a, b) {
            (None, None) => return None,
            (Some(a), Some(b)) if b < a => return None,
            _ => out.push((a, b)),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// swob's `ranges_for_length`: satisfiable ranges as (start, end
/// exclusive).
fn ranges_for_length(ranges: &[(Option<u64>, Option<u64>)], length: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &r in ranges {
        match r {
            (None, Some(0)) => {}
            (None, Some(n)) => out.push((length.saturating_sub(n), length)),
            (Some(s), _) if s >= length => {}
            (Some(s), None) => out.push((s, length)),
            (Some(s), Some(e)) => out.push((s, (e + 1).min(length))),
            (None, None) => {}
        }
    }
    out
}

fn etag_listed(value: &str, etag: &str) -> bool {
    value.split(',').map(unquote_etag).any(|t| t == "*" || t == etag)
}

/// 304 or 412 when the request's conditions rule a 200 out, judged on the
/// SLO's ETag and the manifest's modification time (swob's order).
fn conditional_status(req: &HeaderMap, etag: &str, last_modified: Option<u64>) -> Option<StatusCode> {
    if h::header_str(req, "if-none-match").is_some_and(|v| etag_listed(v, etag)) {
        return Some(StatusCode::NOT_MODIFIED);
    }
    if h::header_str(req, "if-match").is_some_and(|v| !etag_listed(v, etag)) {
        return Some(StatusCode::PRECONDITION_FAILED);
    }
    if let Some(lm) = last_modified {
        let date = |n| h::header_str(req, n).and_then(common::timestamp::parse_http_date);
        if date("if-modified-since").is_some_and(|ims| lm <= ims) {
            return Some(StatusCode::NOT_MODIFIED);
        }
        if date("if-unmodified-since").is_some_and(|ius| lm > ius) {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    None
}

// ---------------------------------------------------------------------
// The stored manifest.

/// One segment of a stored manifest.
#[derive(Debug, Clone)]
enum Segment {
    /// Inline bytes.
    Data(Bytes),
    Object {
        /// `/container/object`, unquoted.
        name: String,
        /// The segment object's (or sub-SLO's) whole size.
        bytes: u64,
        hash: String,
        /// The part used, (first, last) inclusive.
        range: Option<(u64, u64)>,
        sub_slo: bool,
    },
}

impl Segment {
    /// Bytes this segment adds to the joined object.
    fn length(&self) -> u64 {
        match self {
            Segment::Data(d) => d.len() as u64,
            Segment::Object { range: Some((a, b)), .. } => b - a + 1,
            Segment::Object { bytes, .. } => *bytes,
        }
    }

    /// Its part of the SLO ETag.
    fn etag_part(&self) -> String {
        match self {
            Segment::Data(d) => md5_hex(d),
            Segment::Object { hash, range: Some((a, b)), .. } => format!("{hash}:{a}-{b};"),
            Segment::Object { hash, .. } => hash.clone(),
        }
    }
}

/// Parses a stored manifest (Swift's `_annotate_segments`).
fn parse_stored(body: &[u8]) -> Option<Vec<Segment>> {
    let items: Vec<Value> = serde_json::from_slice(body).ok()?;
    items
        .iter()
        .map(|item| {
            if let Some(data) = item.get("data") {
                return Some(Segment::Data(Bytes::from(b64decode(data.as_str()?)?)));
            }
            let sub_slo = match item.get("sub_slo") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => is_true(Some(s)),
                _ => false,
            };
            let as_u64 = |v: &Value| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
            let mut bytes = item.get("bytes").and_then(as_u64).unwrap_or(0);
            if sub_slo {
                // A sub-SLO's size rides in its content type.
                let ct = item.get("content_type").and_then(Value::as_str).unwrap_or("");
                if let Some(sb) = ct.split(';').find_map(|p| p.trim().strip_prefix("swift_bytes=")) {
                    bytes = sb.parse().unwrap_or(bytes);
                }
            }
            let range = match item.get("range").and_then(Value::as_str) {
                Some(r) => {
                    let (a, b) = r.split_once('-')?;
                    Some((a.parse().ok()?, b.parse().ok()?))
                }
                None => None,
            };
            Some(Segment::Object {
                name: item.get("name")?.as_str()?.to_string(),
                bytes,
                hash: item.get("hash").and_then(Value::as_str).unwrap_or("").to_string(),
                range,
                sub_slo,
            })
        })
        .collect()
}

/// The stored manifest in the form it is put in (`format=raw`).
fn raw_manifest(body: &[u8]) -> Option<Vec<u8>> {
    let items: Vec<Value> = serde_json::from_slice(body).ok()?;
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let Value::Object(mut map) = item else { return None };
        if !map.contains_key("data") {
            for k in ["content_type", "last_modified", "sub_slo"] {
                map.remove(k);
            }
            for (from, to) in [("name", "path"), ("bytes", "size_bytes"), ("hash", "etag")] {
                let v = map.remove(from).unwrap_or(Value::Null);
                map.insert(to.into(), v);
            }
        }
        // serde_json's map is sorted: Swift's `sort_keys=True`.
        push_py_object(&mut out, map.iter());
    }
    out.push(']');
    Some(out.into_bytes())
}

/// What the manifest's response headers say about the SLO.
struct Attrs {
    manifest_etag: String,
    slo_etag: String,
    slo_size: Option<u64>,
    last_modified: Option<u64>,
}

impl Attrs {
    fn from_headers(hm: &HeaderMap) -> Attrs {
        Attrs {
            manifest_etag: h::header_str(hm, "etag").map(unquote_etag).unwrap_or_default(),
            slo_etag: h::header_str(hm, SYSMETA_SLO_ETAG).unwrap_or("").trim().to_string(),
            slo_size: h::header_str(hm, SYSMETA_SLO_SIZE).and_then(|v| v.trim().parse().ok()),
            last_modified: h::header_str(hm, "last-modified").and_then(common::timestamp::parse_http_date),
        }
    }

    /// A manifest written before the SLO's ETag and size were kept.
    fn is_legacy(&self) -> bool {
        self.slo_etag.is_empty() || self.slo_size.is_none()
    }

    fn update_from_segments(&mut self, segments: &[Segment]) {
        if !self.is_legacy() {
            return;
        }
        let mut etag = Md5::new();
        for s in segments {
            etag.update(s.etag_part().as_bytes());
        }
        self.slo_etag = hex(&etag.finalize());
        self.slo_size = Some(segments.iter().map(Segment::length).sum());
    }
}

/// `?part-number=N`: `Err` unless a whole number above zero.
fn part_number(query: Option<&str>) -> Result<Option<usize>, ()> {
    match super::query_param(query, "part-number") {
        None => Ok(None),
        Some(v) => v.trim().parse::<usize>().ok().filter(|&n| n > 0).map(Some).ok_or(()),
    }
}

// ---------------------------------------------------------------------
// GET and HEAD.

impl Inner {
    async fn get_or_head(self: Arc<Self>, req: Request<Body>, path: ObjectPath) -> Response<Body> {
        let query = req.uri().query().map(str::to_string);
        let manifest_get = super::query_param(query.as_deref(), "multipart-manifest").as_deref() == Some("get");
        let raw = manifest_get && super::query_param(query.as_deref(), "format").as_deref() == Some("raw");
        let (mut parts, body) = req.into_parts();
        if !manifest_get {
            // A manifest's Range is the joined object's: ask for all of it.
            let names = match h::header_str(&parts.headers, bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT) {
                Some(v) if !v.is_empty() => format!("{v},X-Static-Large-Object"),
                _ => "X-Static-Large-Object".to_string(),
            };
            set(&mut parts.headers, bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT, names);
        }
        let base = head_of(&parts);
        let resp = self.next.call(Request::from_parts(parts, body)).await;
        if !is_slo(resp.headers()) {
            return non_slo(resp);
        }
        if manifest_get {
            return manifest_response(resp, raw, &base.method).await;
        }
        let head = base.method == Method::HEAD;
        let part_num = match part_number(query.as_deref()) {
            Ok(n) => n,
            Err(()) => {
                let msg = if head { "" } else { "Part number must be an integer greater than 0" };
                let mut r = h::text(StatusCode::BAD_REQUEST, msg);
                if !msg.is_empty() {
                    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=UTF-8"));
                }
                return r;
            }
        };
        let mut attrs = Attrs::from_headers(resp.headers());
        let status = resp.status();
        let mut refetch = match status {
            StatusCode::PRECONDITION_FAILED | StatusCode::NOT_MODIFIED => {
                // The object server judged the manifest's own ETag.
                if !attrs.is_legacy() {
                    if let Some(s) = conditional_status(&base.headers, &attrs.slo_etag, attrs.last_modified) {
                        return self.conditional_response(resp.into_parts().0.headers, &attrs, s);
                    }
                }
                true
            }
            StatusCode::RANGE_NOT_SATISFIABLE | StatusCode::PARTIAL_CONTENT => true,
            _ => false,
        };
        if head && (attrs.is_legacy() || part_num.is_some()) {
            refetch = true;
        }
        let resp = if refetch {
            let mut headers = HeaderMap::new();
            for name in ["x-open-expired", "x-newest"] {
                if let Some(v) = base.headers.get(name) {
                    headers.insert(name, v.clone());
                }
            }
            set(&mut headers, bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT, "X-Static-Large-Object");
            let uri = base.uri.to_string();
            let req = match subrequest(&base, Method::GET, &uri, headers, h::empty(), SOURCE) {
                Ok(r) => r,
                Err(r) => return r,
            };
            let resp = self.next.call(req).await;
            if !is_slo(resp.headers()) {
                return non_slo(resp);
            }
            attrs = Attrs::from_headers(resp.headers());
            resp
        } else {
            resp
        };
        let (rparts, rbody) = resp.into_parts();
        if !rparts.status.is_success() {
            return Response::from_parts(rparts, rbody);
        }
        let needs_segments = !head || refetch;
        let segments = if needs_segments {
            let body = match read_limited(rbody, usize::MAX).await {
                Ok(b) => b,
                Err(_) => return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Unable to load SLO manifest"),
            };
            match parse_stored(&body) {
                Some(s) => s,
                None => return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Unable to load SLO manifest"),
            }
        } else {
            Vec::new()
        };
        if needs_segments {
            attrs.update_from_segments(&segments);
        }
        let headers = rparts.headers;
        if let Some(s) = conditional_status(&base.headers, &attrs.slo_etag, attrs.last_modified) {
            return self.conditional_response(headers, &attrs, s);
        }
        let total = attrs.slo_size.unwrap_or(0);
        let mut out = slo_headers(headers, &attrs);
        if let Some(n) = part_num {
            set(&mut out, "x-parts-count", segments.len());
            if n > segments.len() {
                let msg = if head { "" } else { "The requested part number is not satisfiable" };
                let mut r = Response::new(if head { h::empty() } else { h::full(msg) });
                *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                set(&mut out, "content-length", msg.len());
                set(&mut out, "content-range", format!("bytes */{total}"));
                *r.headers_mut() = out;
                return r;
            }
        }
        let part_range = part_num.map(|n| {
            let start: u64 = segments[..n - 1].iter().map(Segment::length).sum();
            (start, start + segments[n - 1].length())
        });
        if head {
            let mut r = Response::new(h::empty());
            if let Some((s, e)) = part_range {
                *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                set(&mut out, "content-length", e - s);
                set(&mut out, "content-range", format!("bytes {s}-{}/{total}", e.max(1) - 1));
            }
            *r.headers_mut() = out;
            return r;
        }
        // Which bytes: Range, else the part, else all.
        let ranges = match h::header_str(&base.headers, "range").and_then(parse_range) {
            Some(spec) => {
                let r = ranges_for_length(&spec, total);
                if r.is_empty() {
                    let mut resp = h::text(StatusCode::RANGE_NOT_SATISFIABLE, "Requested Range Not Satisfiable");
                    for (k, v) in &out {
                        if !resp.headers().contains_key(k) {
                            resp.headers_mut().insert(k.clone(), v.clone());
                        }
                    }
                    set(resp.headers_mut(), "content-range", format!("bytes */{total}"));
                    return resp;
                }
                Some(r)
            }
            None => part_range.map(|r| vec![r]),
        };
        let mut status = StatusCode::OK;
        let content_type = h::header_str(&out, "content-type").unwrap_or("application/octet-stream").to_string();
        let mut plan: Vec<Span> = Vec::new();
        match ranges {
            None => plan.push(Span { first: 0, end: total, preamble: None }),
            Some(r) if r.len() == 1 => {
                let (s, e) = r[0];
                status = StatusCode::PARTIAL_CONTENT;
                set(&mut out, "content-range", format!("bytes {s}-{}/{total}", e - 1));
                plan.push(Span { first: s, end: e, preamble: None });
            }
            Some(r) => {
                status = StatusCode::PARTIAL_CONTENT;
                let boundary = format!("{:032x}", rand::random::<u128>());
                for (i, (s, e)) in r.into_iter().enumerate() {
                    let lead = if i == 0 { "" } else { "\r\n" };
                    let pre =
                        format!("{lead}--{boundary}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {s}-{}/{total}\r\n\r\n", e - 1);
                    plan.push(Span { first: s, end: e, preamble: Some(Bytes::from(pre)) });
                }
                plan.push(Span { first: 0, end: 0, preamble: Some(Bytes::from(format!("\r\n--{boundary}--"))) });
                set(&mut out, "content-type", format!("multipart/byteranges;boundary={boundary}"));
            }
        }
        let length: u64 = plan.iter().map(|s| s.end - s.first + s.preamble.as_ref().map_or(0, |p| p.len() as u64)).sum();
        set(&mut out, "content-length", length);
        let (tx, body) = crate::resume::ChannelBody::channel();
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let mut fetcher = Fetcher {
            inner: self.clone(),
            base: head_of(&base),
            version: path.version.clone(),
            account: path.account.clone(),
            manifest: format!("/{}/{}/{}/{}", path.version, path.account, path.container, path.object),
            tx,
            first: Some(first_tx),
            fetched: 0,
            next_allowed: Instant::now(),
            started: Instant::now(),
            cache: HashMap::new(),
        };
        let segments = Arc::new(segments);
        tokio::spawn(async move {
            for span in plan {
                if let Some(pre) = span.preamble {
                    if !fetcher.send(pre).await {
                        return;
                    }
                }
                if span.end > span.first {
                    let r = fetcher.walk(segments.clone(), span.first as i64, span.end as i64 - 1, 1).await;
                    if let Err(e) = r {
                        common::log::error(&format!("ERROR: An error occurred while retrieving segments: {e}"));
                        fetcher.fail(e).await;
                        return;
                    }
                }
            }
            fetcher.signal(Ok(()));
        });
        // As Swift's `validate_first_segment`: a first segment that cannot
        // be read is a 409 rather than a broken 200.
        if let Ok(Err(e)) = first_rx.await {
            let _ = e;
            return h::text(
                StatusCode::CONFLICT,
                "<html><h1>Conflict</h1><p>There was a conflict when trying to complete your request.</p></html>",
            );
        }
        let mut r = Response::new(body.boxed());
        *r.status_mut() = status;
        *r.headers_mut() = out;
        r
    }

    fn conditional_response(&self, headers: HeaderMap, attrs: &Attrs, status: StatusCode) -> Response<Body> {
        let mut out = slo_headers(headers, attrs);
        set(&mut out, "content-length", 0);
        let mut r = Response::new(h::empty());
        *r.status_mut() = status;
        *r.headers_mut() = out;
        r
    }
}

/// The SLO's response headers from its manifest's.
fn slo_headers(mut hm: HeaderMap, attrs: &Attrs) -> HeaderMap {
    for name in ["content-range", "transfer-encoding", "content-encoding"] {
        hm.remove(name);
    }
    clean_content_type_header(&mut hm);
    set(&mut hm, "etag", format!("\"{}\"", attrs.slo_etag));
    set(&mut hm, "x-manifest-etag", &attrs.manifest_etag);
    set(&mut hm, "content-length", attrs.slo_size.unwrap_or(0));
    hm.insert(http::header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    hm
}

/// A response that is not an SLO's, passed on with any `swift_bytes`
/// taken out of its content type.
fn non_slo(mut resp: Response<Body>) -> Response<Body> {
    clean_content_type_header(resp.headers_mut());
    resp
}

/// `?multipart-manifest=get`: the stored manifest, or (`format=raw`) the
/// manifest as it would be put.
async fn manifest_response(resp: Response<Body>, raw: bool, method: &Method) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    if !parts.status.is_success() {
        return Response::from_parts(parts, body);
    }
    if !raw {
        parts.headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        return Response::from_parts(parts, body);
    }
    clean_content_type_header(&mut parts.headers);
    if *method == Method::HEAD {
        return Response::from_parts(parts, body);
    }
    let Ok(stored) = read_limited(body, usize::MAX).await else {
        return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Unable to load SLO manifest");
    };
    let Some(json) = raw_manifest(&stored) else {
        return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Unable to load SLO manifest");
    };
    set(&mut parts.headers, "content-length", json.len());
    set(&mut parts.headers, "etag", md5_hex(&json));
    Response::from_parts(parts, h::full(json))
}

/// A part of a GET's body: optional bytes (multipart headers), then the
/// joined object's bytes `first..end`.
struct Span {
    first: u64,
    end: u64,
    preamble: Option<Bytes>,
}

/// Streams segments into a GET's body (Swift's `SegmentedIterable` with
/// the listing iterator that walks sub-manifests).
struct Fetcher {
    inner: Arc<Inner>,
    base: Parts,
    version: String,
    account: String,
    /// The manifest's path, for messages.
    manifest: String,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, BoxError>>,
    /// Told once whether the first segment could be read.
    first: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    fetched: u64,
    next_allowed: Instant,
    started: Instant,
    cache: HashMap<String, Arc<Vec<Segment>>>,
}

impl Fetcher {
    fn signal(&mut self, r: Result<(), String>) {
        if let Some(tx) = self.first.take() {
            let _ = tx.send(r);
        }
    }

    /// Sends bytes to the client; false when it went away.
    async fn send(&mut self, data: Bytes) -> bool {
        self.signal(Ok(()));
        self.tx.send(Ok(data)).await.is_ok()
    }

    /// Breaks the body (or, before the first byte, makes the answer 409).
    async fn fail(&mut self, e: String) {
        if self.first.is_some() {
            self.signal(Err(e));
        } else {
            let _ = self.tx.send(Err(e.into())).await;
        }
    }

    /// Streams the bytes `first..=last` of the object made of `segments`
    /// (Swift's `_byterange_listing_iterator`).
    fn walk(&mut self, segments: Arc<Vec<Segment>>, mut first: i64, mut last: i64, depth: u32) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            for seg in segments.iter() {
                let len = seg.length() as i64;
                if first >= len {
                    first -= len;
                    last -= len;
                    continue;
                }
                if last < 0 {
                    return Ok(());
                }
                match seg {
                    Segment::Data(d) => {
                        let (a, b) = (first.max(0) as usize, (len - 1).min(last) as usize);
                        if !self.send(d.slice(a..=b)).await {
                            return Err("client disconnected".into());
                        }
                    }
                    Segment::Object { name, bytes, hash, range, sub_slo } => {
                        let (rs, re) = range.map(|(a, b)| (a as i64, b as i64)).unwrap_or((0, len - 1));
                        let (a, b) = (rs + first.max(0), re.min(rs + last));
                        if *sub_slo {
                            if depth >= MAX_RECURSION_DEPTH {
                                return Err(format!("While processing manifest {}, max recursion depth was exceeded", self.manifest));
                            }
                            let sub = self.sub_manifest(name).await?;
                            self.walk(sub, a, b, depth + 1).await?;
                        } else {
                            self.fetch(name, *bytes, hash, a as u64, b as u64).await?;
                        }
                    }
                }
                first -= len;
                last -= len;
            }
            Ok(())
        })
    }

    fn segment_uri(&self, name: &str, query: &str) -> String {
        let path = h::quote_path(&format!("/{}/{}/{}", self.version, self.account, name.trim_start_matches('/')));
        format!("{path}?{query}")
    }

    async fn sub_manifest(&mut self, name: &str) -> Result<Arc<Vec<Segment>>, String> {
        if let Some(s) = self.cache.get(name) {
            return Ok(s.clone());
        }
        let uri = self.segment_uri(name, "multipart-manifest=get");
        let req =
            subrequest(&self.base, Method::GET, &uri, HeaderMap::new(), h::empty(), SOURCE).map_err(|_| format!("bad path {name}"))?;
        let resp = self.inner.next.call(req).await;
        let status = resp.status();
        let body = read_limited(resp.into_body(), usize::MAX).await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("while fetching {}, GET of submanifest {name} failed with status {}", self.manifest, status.as_u16()));
        }
        let segments =
            parse_stored(&body).ok_or_else(|| format!("while fetching {}, JSON-decoding of submanifest {name} failed", self.manifest))?;
        if self.cache.len() >= SUB_MANIFEST_CACHE {
            self.cache.clear();
        }
        let segments = Arc::new(segments);
        self.cache.insert(name.to_string(), segments.clone());
        Ok(segments)
    }

    /// Swift's `RateLimitedIterator` over small segments, and the
    /// `max_get_time` cut-off.
    async fn pace(&mut self, len: u64) -> Result<(), String> {
        let s = &self.inner.settings;
        if self.started.elapsed() > Duration::from_secs(s.max_get_time) {
            return Err(format!("While processing manifest {}, max LO GET time of {}s exceeded", self.manifest, s.max_get_time));
        }
        self.fetched += 1;
        if s.rate_limit_segments_per_sec > 0 && self.fetched > s.rate_limit_after_segment && len < s.rate_limit_under_size {
            let now = Instant::now();
            if self.next_allowed > now {
                tokio::time::sleep(self.next_allowed - now).await;
            }
            self.next_allowed = self.next_allowed.max(now) + Duration::from_secs_f64(1.0 / s.rate_limit_segments_per_sec as f64);
        }
        Ok(())
    }

    /// Streams bytes `a..=b` of the segment object `name`, checking it is
    /// still the object the manifest names.
    async fn fetch(&mut self, name: &str, bytes: u64, hash: &str, a: u64, b: u64) -> Result<(), String> {
        self.pace(b - a + 1).await?;
        let whole = a == 0 && b + 1 == bytes;
        let mut headers = HeaderMap::new();
        if !whole {
            set(&mut headers, "range", format!("bytes={a}-{b}"));
        }
        let uri = self.segment_uri(name, "multipart-manifest=get");
        let req = subrequest(&self.base, Method::GET, &uri, headers, h::empty(), SOURCE).map_err(|_| format!("bad path {name}"))?;
        let resp = self.inner.next.call(req).await;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("While processing manifest {}, got {} while retrieving {name}", self.manifest, status.as_u16()));
        }
        let etag = h::header_str(resp.headers(), "etag").map(unquote_etag).unwrap_or_default();
        let length = h::header_str(resp.headers(), "content-length").and_then(|v| v.parse::<u64>().ok());
        if (!hash.is_empty() && etag != hash) || (whole && length.is_some_and(|l| l != bytes)) {
            return Err(format!("Object segment no longer valid: {name} etag: {etag} != {hash} or {} != {bytes}.", length.unwrap_or(0)));
        }
        let mut body = resp.into_body();
        let mut sent = 0u64;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Ok(data) = f.into_data() {
                        sent += data.len() as u64;
                        if !self.send(data).await {
                            return Err("client disconnected".into());
                        }
                    }
                }
                Err(e) => return Err(format!("error reading segment {name}: {e}")),
            }
        }
        if sent != b - a + 1 {
            return Err(format!("segment {name}: expected {} bytes, got {sent}", b - a + 1));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------
// Container listings.

/// Moves the `slo_etag` the manifest PUT left in a listed `hash` into a
/// key of its own (Swift's `handle_container_listing`).
async fn container_listing(resp: Response<Body>) -> Response<Body> {
    let json = h::header_str(resp.headers(), "content-type").is_some_and(|ct| ct.trim().starts_with("application/json"));
    if resp.status() != StatusCode::OK || !json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = read_limited(body, 64 * 1024 * 1024).await else {
        return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Error reading listing");
    };
    if !bytes.windows(9).any(|w| w == b"slo_etag=") {
        return Response::from_parts(parts, h::full(bytes));
    }
    let Ok(items) = serde_json::from_slice::<Vec<Value>>(&bytes) else {
        return Response::from_parts(parts, h::full(bytes));
    };
    let order = ["name", "hash", "bytes", "content_type", "last_modified"];
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let Value::Object(mut map) = item else {
            push_py_json(&mut out, &item);
            continue;
        };
        let mut slo_etag = None;
        if let Some(hash) = map.get("hash").and_then(Value::as_str) {
            let mut params = hash.split(';');
            let etag = params.next().unwrap_or("").trim().to_string();
            let mut kept = String::new();
            for p in params {
                match p.trim().split_once('=') {
                    Some(("slo_etag", v)) => slo_etag = Some(format!("\"{}\"", v.trim())),
                    Some((k, v)) => kept.push_str(&format!("; {}={}", k.trim(), v.trim())),
                    None => {}
                }
            }
            if slo_etag.is_some() {
                map.insert("hash".into(), Value::String(format!("{etag}{kept}")));
            }
        }
        let mut pairs: Vec<(String, Value)> = Vec::new();
        for k in order {
            if let Some(v) = map.remove(k) {
                pairs.push((k.to_string(), v));
            }
        }
        pairs.extend(map);
        if let Some(e) = slo_etag {
            pairs.push(("slo_etag".into(), Value::String(e)));
        }
        push_py_object(&mut out, pairs.iter().map(|(k, v)| (k, v)));
    }
    out.push(']');
    set(&mut parts.headers, "content-length", out.len());
    Response::from_parts(parts, h::full(out))
}

// ---------------------------------------------------------------------
// Manifest PUT.

/// One segment of a manifest as a client put it.
#[derive(Debug, Clone)]
enum Input {
    Data(Vec<u8>),
    Object { path: String, etag: Option<String>, size: Option<u64>, range: Option<(Option<u64>, Option<u64>)> },
}

/// Swift's `parse_and_validate_input`: the manifest's segments, or the
/// 400 naming every bad one.
fn parse_input(body: &[u8], path: &ObjectPath) -> Result<Vec<Input>, Response<Body>> {
    let bad = |msg: String| {
        let mut r = h::text(StatusCode::BAD_REQUEST, msg);
        r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        r
    };
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else { return Err(bad("Manifest must be valid JSON.\n".into())) };
    let Value::Array(items) = parsed else { return Err(bad("Manifest must be a list.\n".into())) };
    let mut errors: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let n = items.len();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            errors.push(format!("Index {i}: not a JSON object"));
            continue;
        };
        let kind = if map.contains_key("data") {
            "data"
        } else if map.contains_key("path") {
            "path"
        } else {
            errors.push(format!("Index {i}: expected keys to include one of 'data' or 'path'"));
            continue;
        };
        let allowed: &[&str] = if kind == "data" { &["data"] } else { &["path", "range", "etag", "size_bytes"] };
        let extra: Vec<String> = map
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| {
                let mut s = String::new();
                push_json_str(&mut s, k);
                s
            })
            .collect();
        if !extra.is_empty() {
            errors.push(format!("Index {i}: extraneous keys {}", extra.join(", ")));
            continue;
        }
        if kind == "data" {
            match map["data"].as_str().and_then(b64decode) {
                None => errors.push(format!("Index {i}: data must be valid base64")),
                Some(d) if d.is_empty() => errors.push(format!("Index {i}: too small; each segment must be at least 1 byte.")),
                Some(d) => out.push(Input::Data(d)),
            }
            continue;
        }
        let Some(seg_path) = map["path"].as_str() else {
            errors.push(format!("Index {i}: \"path\" must be a string"));
            continue;
        };
        let etag = match map.get("etag") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(format!("Index {i}: \"etag\" must be a string or null (if provided)"));
                continue;
            }
        };
        if !seg_path.trim_matches('/').contains('/') {
            errors.push(format!("Index {i}: path does not refer to an object. Path must be of the form /container/object."));
            continue;
        }
        let size = match map.get("size_bytes") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let parsed = match v {
                    Value::Number(num) => num.as_i64().or_else(|| num.as_f64().map(|f| f as i64)),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                let Some(sz) = parsed else {
                    errors.push(format!("Index {i}: invalid size_bytes"));
                    continue;
                };
                if sz < 1 && i != n - 1 {
                    errors.push(format!("Index {i}: too small; each segment must be at least 1 byte."));
                    continue;
                }
                Some(sz.max(0) as u64)
            }
        };
        let own = format!("/{}/{}/{}/{}", path.version, path.account, path.container, path.object);
        if format!("/{}/{}/{}", path.version, path.account, seg_path.trim_start_matches('/')) == own {
            errors.push(format!("Index {i}: manifest must not include itself as a segment"));
            continue;
        }
        let range = match map.get("range") {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) if r.is_empty() => None,
            Some(Value::String(r)) => {
                let Some(spec) = parse_range(&format!("bytes={r}")) else {
                    errors.push(format!("Index {i}: invalid range"));
                    continue;
                };
                if spec.len() > 1 {
                    errors.push(format!("Index {i}: multiple ranges (only one allowed)"));
                    continue;
                }
                if let Some(sz) = size {
                    if ranges_for_length(&spec, sz).len() != 1 {
                        errors.push(format!("Index {i}: unsatisfiable range"));
                        continue;
                    }
                }
                Some(spec[0])
            }
            Some(_) => {
                errors.push(format!("Index {i}: invalid range"));
                continue;
            }
        };
        out.push(Input::Object { path: seg_path.to_string(), etag, size, range });
    }
    if !out.is_empty() && errors.is_empty() && out.iter().all(|s| matches!(s, Input::Data(_))) {
        errors.push("Inline data segments require at least one object-backed segment.".into());
    }
    if !errors.is_empty() {
        return Err(bad(errors.iter().map(|e| format!("{e}\n")).collect()));
    }
    Ok(out)
}

/// How a manifest PUT ended, before it is written out in the client's
/// format.
enum PutOutcome {
    /// Segments that failed validation, with reasons.
    Problems(Vec<(String, String)>),
    /// The client's ETag is not the SLO's.
    EtagMismatch,
    /// The manifest's own PUT answered.
    Stored { status: StatusCode, headers: HeaderMap, body: Bytes },
}

impl Inner {
    async fn put_manifest(self: Arc<Self>, req: Request<Body>, path: ObjectPath) -> Response<Body> {
        let s = &self.settings;
        if req.headers().contains_key("x-copy-from") {
            return h::text(StatusCode::METHOD_NOT_ALLOWED, "Multipart Manifest PUTs cannot be COPY requests");
        }
        let length = h::header_str(req.headers(), "content-length").and_then(|v| v.trim().parse::<u64>().ok());
        let chunked = h::header_str(req.headers(), "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let too_big = || h::text(StatusCode::PAYLOAD_TOO_LARGE, format!("Manifest File > {} bytes", s.max_manifest_size));
        match length {
            None if !chunked => return h::text(StatusCode::LENGTH_REQUIRED, "Length Required"),
            Some(n) if n > s.max_manifest_size as u64 => return too_big(),
            _ => {}
        }
        let (parts, body) = req.into_parts();
        let body = match read_limited(body, s.max_manifest_size).await {
            Ok(b) => b,
            Err(None) => return too_big(),
            Err(Some(_)) => return h::text(StatusCode::BAD_REQUEST, "Error reading manifest"),
        };
        let inputs = match parse_input(&body, &path) {
            Ok(i) => i,
            Err(r) => return r,
        };
        let object_segments = inputs.iter().filter(|i| matches!(i, Input::Object { .. })).count();
        if object_segments > s.max_manifest_segments {
            return h::text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Number of object-backed segments must be <= {}", s.max_manifest_segments),
            );
        }
        let format = out_format(&parts.headers).unwrap_or("text/plain");
        let heartbeat = is_true(super::query_param(parts.uri.query(), "heartbeat").as_deref());
        if !heartbeat {
            return match self.clone().store_manifest(parts, path, inputs).await {
                PutOutcome::Problems(problems) => {
                    let body = result_body(format, &[], &problems, "upload");
                    let mut r = h::text(StatusCode::BAD_REQUEST, body);
                    set(r.headers_mut(), "content-type", format);
                    r
                }
                PutOutcome::EtagMismatch => h::text(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "<html><h1>Unprocessable Entity</h1><p>Unable to process the contained instructions</p></html>",
                ),
                PutOutcome::Stored { status, headers, body } => {
                    let mut r = Response::new(h::full(body));
                    *r.status_mut() = status;
                    *r.headers_mut() = headers;
                    r
                }
            };
        }
        // Heartbeat: 202 at once, a space every `yield_frequency` seconds
        // while the segments are checked, then the outcome as a body.
        let (tx, out) = crate::resume::ChannelBody::channel();
        let every = Duration::from_secs(s.yield_frequency.max(1));
        let inner = self.clone();
        tokio::spawn(async move {
            let mut work = tokio::spawn(inner.store_manifest(parts, path, inputs));
            if tx.send(Ok(Bytes::from_static(b" "))).await.is_err() {
                work.abort();
                return;
            }
            let outcome = loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = tokio::time::sleep(every) => {
                        if tx.send(Ok(Bytes::from_static(b" "))).await.is_err() {
                            work.abort();
                            return;
                        }
                    }
                }
            };
            let body = match outcome {
                Ok(PutOutcome::Problems(problems)) => {
                    let st = StatusCode::BAD_REQUEST;
                    let pairs =
                        [("Response Status", Value::String(status_line(st))), ("Response Body", Value::String(default_reason_body(st)))];
                    result_body(format, &pairs, &problems, "upload")
                }
                Ok(PutOutcome::EtagMismatch) => {
                    let st = StatusCode::UNPROCESSABLE_ENTITY;
                    let pairs =
                        [("Response Status", Value::String(status_line(st))), ("Response Body", Value::String(default_reason_body(st)))];
                    result_body(format, &pairs, &[], "upload")
                }
                Ok(PutOutcome::Stored { status, headers, body }) => {
                    let mut pairs = vec![("Response Status", Value::String(status_line(status)))];
                    if status.is_success() {
                        pairs.push(("Etag", Value::String(h::header_str(&headers, "etag").unwrap_or("").to_string())));
                        pairs.push(("Last Modified", Value::String(h::header_str(&headers, "last-modified").unwrap_or("").to_string())));
                    }
                    pairs.push(("Response Body", Value::String(String::from_utf8_lossy(&body).into_owned())));
                    result_body(format, &pairs, &[], "upload")
                }
                Err(_) => {
                    let st = StatusCode::INTERNAL_SERVER_ERROR;
                    let pairs = [("Response Status", Value::String(status_line(st))), ("Response Body", Value::String(String::new()))];
                    result_body(format, &pairs, &[], "upload")
                }
            };
            let mut chunk = b"\r\n\r\n".to_vec();
            chunk.extend_from_slice(body.as_bytes());
            let _ = tx.send(Ok(Bytes::from(chunk))).await;
        });
        let mut r = Response::new(out.boxed());
        *r.status_mut() = StatusCode::ACCEPTED;
        set(r.headers_mut(), "content-type", format);
        r
    }

    /// HEADs the segments, checks them, and writes the manifest.
    async fn store_manifest(self: Arc<Self>, parts: Parts, path: ObjectPath, inputs: Vec<Input>) -> PutOutcome {
        // Each distinct segment is HEADed once, through this middleware so
        // a sub-SLO reports its joined size and ETag.
        let mut unique: Vec<String> = Vec::new();
        for i in &inputs {
            if let Input::Object { path: p, .. } = i {
                if !unique.contains(p) {
                    unique.push(p.clone());
                }
            }
        }
        let base = head_of(&parts);
        let heads: HashMap<String, Response<Body>> = futures_util::stream::iter(unique.into_iter().map(|p| {
            let inner = self.clone();
            let uri = h::quote_path(&format!("/{}/{}/{}", path.version, path.account, p.trim_start_matches('/')));
            let req = subrequest(&base, Method::HEAD, &uri, HeaderMap::new(), h::empty(), SOURCE);
            async move {
                let resp = match req {
                    Ok(r) => inner.handle(r).await,
                    Err(r) => r,
                };
                (p, resp)
            }
        }))
        .buffered(self.settings.concurrency)
        .collect()
        .await;

        let mut problems: Vec<(String, String)> = Vec::new();
        let mut stored: Vec<String> = Vec::new();
        let mut etag = Md5::new();
        let mut total: u64 = 0;
        let n = inputs.len();
        for (i, input) in inputs.iter().enumerate() {
            let (seg_path, want_etag, want_size, range) = match input {
                Input::Data(d) => {
                    total += d.len() as u64;
                    etag.update(md5_hex(d).as_bytes());
                    let mut s = String::from("{\"data\": ");
                    push_json_str(&mut s, &super::base64_encode(d));
                    s.push('}');
                    stored.push(s);
                    continue;
                }
                Input::Object { path, etag, size, range } => (path, etag, size, range),
            };
            let resp = &heads[seg_path];
            let qname = quote(seg_path);
            if !resp.status().is_success() {
                problems.push((qname, status_line(resp.status())));
                continue;
            }
            let hm = resp.headers();
            let content_length = h::header_str(hm, "content-length").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let seg_etag = h::header_str(hm, "etag").map(unquote_etag).unwrap_or_default();
            let mut seg_len = content_length;
            let mut stored_range = None;
            if let Some(r) = range {
                let spans = ranges_for_length(&[*r], content_length);
                match spans.first() {
                    None => problems.push((qname.clone(), "Unsatisfiable Range".into())),
                    Some(&(0, e)) if e == content_length => {}
                    Some(&(a, e)) => {
                        stored_range = Some((a, e - 1));
                        seg_len = e - a;
                    }
                }
            }
            if seg_len < 1 && i != n - 1 {
                problems.push((qname.clone(), "Too small; each segment must be at least 1 byte.".into()));
            }
            if want_size.is_some_and(|s| s != content_length) {
                problems.push((qname.clone(), "Size Mismatch".into()));
            }
            if want_etag.as_ref().is_some_and(|e| *e != seg_etag) {
                problems.push((qname.clone(), "Etag Mismatch".into()));
            }
            let last_modified = h::header_str(hm, "last-modified")
                .and_then(common::timestamp::parse_http_date)
                .and_then(|secs| common::timestamp::Timestamp::from_secs_f64(secs as f64).ok())
                .map(|t| t.isoformat())
                .unwrap_or_default();
            let content_type = h::header_str(hm, "content-type").unwrap_or("application/octet-stream");
            let mut s = String::from("{\"name\": ");
            push_json_str(&mut s, &format!("/{}", seg_path.trim_start_matches('/')));
            s.push_str(&format!(", \"bytes\": {content_length}, \"hash\": "));
            push_json_str(&mut s, &seg_etag);
            s.push_str(", \"content_type\": ");
            push_json_str(&mut s, content_type);
            s.push_str(", \"last_modified\": ");
            push_json_str(&mut s, &last_modified);
            if let Some((a, b)) = stored_range {
                s.push_str(&format!(", \"range\": \"{a}-{b}\""));
            }
            if is_slo(hm) {
                s.push_str(", \"sub_slo\": true");
            }
            s.push('}');
            stored.push(s);
            total += seg_len;
            let part = match stored_range {
                Some((a, b)) => format!("{seg_etag}:{a}-{b};"),
                None => seg_etag.clone(),
            };
            etag.update(part.as_bytes());
        }
        if !problems.is_empty() {
            return PutOutcome::Problems(problems);
        }
        let slo_etag = hex(&etag.finalize());
        if h::header_str(&parts.headers, "etag").map(unquote_etag).is_some_and(|e| !e.is_empty() && e != slo_etag) {
            return PutOutcome::EtagMismatch;
        }
        let json = format!("[{}]", stored.join(", ")).into_bytes();
        let manifest_etag = md5_hex(&json);

        let mut headers = parts.headers.clone();
        for name in ["transfer-encoding", "etag", "content-length"] {
            headers.remove(name);
        }
        set(&mut headers, SYSMETA_SLO_ETAG, &slo_etag);
        set(&mut headers, SYSMETA_SLO_SIZE, total);
        set(&mut headers, "x-static-large-object", "True");
        set(&mut headers, "etag", &manifest_etag);
        set(&mut headers, "content-length", json.len());
        // Listings show both ETags; a value a middleware to the left set
        // is kept.
        let existing = h::header_str(&headers, OVERRIDE_ETAG).unwrap_or("").to_string();
        let (val, params) =
            existing.split_once(';').map(|(v, p)| (v.to_string(), format!(";{p}"))).unwrap_or((existing.clone(), String::new()));
        let val = if val.is_empty() { manifest_etag.clone() } else { val };
        set(&mut headers, OVERRIDE_ETAG, format!("{val}{params}; slo_etag={slo_etag}"));
        let ct = match h::header_str(&headers, "content-type").filter(|c| !c.is_empty()) {
            Some(c) => c.to_string(),
            None => mime_guess::from_path(&path.object).first_raw().unwrap_or("application/octet-stream").to_string(),
        };
        set(&mut headers, "content-type", format!("{ct};swift_bytes={total}"));

        let mut req = Request::new(h::full(json));
        *req.method_mut() = Method::PUT;
        *req.uri_mut() = parts.uri.clone();
        *req.headers_mut() = headers;
        *req.extensions_mut() = parts.extensions.clone();
        let resp = self.next.call(req).await;
        let (mut rparts, rbody) = resp.into_parts();
        let body = read_limited(rbody, 1024 * 1024).await.unwrap_or_default();
        if rparts.status.is_success() {
            set(&mut rparts.headers, "etag", format!("\"{slo_etag}\""));
        }
        PutOutcome::Stored { status: rparts.status, headers: rparts.headers, body: Bytes::from(body) }
    }
}

// ---------------------------------------------------------------------
// Manifest DELETE.

/// An object to delete, or why it cannot be.
struct ToDelete {
    /// `/container/object`.
    name: String,
    error: Option<(StatusCode, String)>,
    /// The top manifest's `?version-id=`, deleted as that version.
    version_id: Option<String>,
}

impl Inner {
    async fn delete_manifest(self: Arc<Self>, req: Request<Body>, path: ObjectPath) -> Response<Body> {
        let (parts, _) = req.into_parts();
        let base = head_of(&parts);
        let format = out_format(&parts.headers);
        let mut resp = h::status(StatusCode::OK);
        if let Some(f) = format {
            set(resp.headers_mut(), "content-type", f);
        }
        let mut deleted = 0u64;
        let mut not_found = 0u64;
        let mut failed: Vec<(String, String)> = Vec::new();
        let mut failure_status = StatusCode::BAD_REQUEST;
        let mut status = StatusCode::OK;
        let mut body_msg = String::new();
        match format {
            None => {
                status = StatusCode::NOT_ACCEPTABLE;
                body_msg = default_reason_body(status);
            }
            Some(_) => {
                let version_id = super::query_param(parts.uri.query(), "version-id");
                let targets = match self.segments_to_delete(&base, &path, version_id).await {
                    Ok(t) => t,
                    Err((st, msg)) => {
                        status = st;
                        body_msg = msg;
                        Vec::new()
                    }
                };
                let mut jobs = Vec::new();
                for t in targets {
                    match t.error {
                        Some((code, _)) if code == StatusCode::NOT_FOUND => not_found += 1,
                        Some((_, msg)) => failed.push((quote(&t.name), msg)),
                        None => jobs.push((t.name, t.version_id)),
                    }
                }
                let results: Vec<(String, StatusCode)> = futures_util::stream::iter(jobs.into_iter().map(|(name, version_id)| {
                    let mut uri = h::quote_path(&format!("/{}/{}/{}", path.version, path.account, name.trim_start_matches('/')));
                    if let Some(v) = version_id {
                        uri = format!("{uri}?version-id={}", h::quote_path(&v));
                    }
                    let req = subrequest(&base, Method::DELETE, &uri, HeaderMap::new(), h::empty(), SOURCE);
                    let next = self.next.clone();
                    async move {
                        let st = match req {
                            Ok(r) => next.call(r).await.status(),
                            Err(r) => r.status(),
                        };
                        (name, st)
                    }
                }))
                .buffered(self.settings.delete_concurrency)
                .collect()
                .await;
                for (name, st) in results {
                    if st.is_success() {
                        deleted += 1;
                    } else if st == StatusCode::NOT_FOUND {
                        not_found += 1;
                    } else {
                        if st == StatusCode::UNAUTHORIZED {
                            failure_status = StatusCode::UNAUTHORIZED;
                        } else if st.is_server_error() {
                            failure_status = StatusCode::BAD_GATEWAY;
                        }
                        failed.push((quote(&name), status_line(st)));
                    }
                }
                if status == StatusCode::OK {
                    if !failed.is_empty() {
                        status = failure_status;
                    } else if deleted == 0 && not_found == 0 {
                        status = StatusCode::BAD_REQUEST;
                        body_msg = "Invalid bulk delete.".into();
                    }
                }
            }
        }
        let pairs = [
            ("Response Status", Value::String(status_line(status))),
            ("Response Body", Value::String(body_msg)),
            ("Number Deleted", Value::from(deleted)),
            ("Number Not Found", Value::from(not_found)),
        ];
        let body = result_body(format.unwrap_or("text/plain"), &pairs, &failed, "delete");
        set(resp.headers_mut(), "content-length", body.len());
        *resp.body_mut() = h::full(body);
        resp
    }

    /// The segments of the manifest at `path` and of its sub-manifests,
    /// each manifest after its segments (Swift's
    /// `get_segments_to_delete_iter`).
    async fn segments_to_delete(
        &self,
        base: &Parts,
        path: &ObjectPath,
        version_id: Option<String>,
    ) -> Result<Vec<ToDelete>, (StatusCode, String)> {
        /// A manifest still to be read (`sub_slo`) or an object to delete.
        struct Pending {
            target: ToDelete,
            sub_slo: bool,
        }
        let top = ToDelete { name: format!("/{}/{}", path.container, path.object), error: None, version_id };
        let mut queue = std::collections::VecDeque::new();
        queue.push_back(Pending { target: top, sub_slo: true });
        let mut out = Vec::new();
        while let Some(mut seg) = queue.pop_front() {
            if queue.len() > self.settings.max_manifest_segments * 10 {
                return Err((StatusCode::BAD_REQUEST, "Too many buffered slo segments to delete.".into()));
            }
            if seg.sub_slo {
                match self.manifest_items(base, path, &seg.target.name, seg.target.version_id.as_deref()).await {
                    Ok(items) => {
                        for item in items {
                            if item.get("data").is_some() {
                                continue;
                            }
                            let Some(name) = item.get("name").and_then(Value::as_str) else { continue };
                            let sub = match item.get("sub_slo") {
                                Some(Value::Bool(b)) => *b,
                                Some(Value::String(s)) => is_true(Some(s)),
                                _ => false,
                            };
                            let target = ToDelete { name: name.to_string(), error: None, version_id: None };
                            queue.push_back(Pending { target, sub_slo: sub });
                        }
                    }
                    Err(e) => seg.target.error = Some(e),
                }
                // The manifest goes after its segments.
                seg.sub_slo = false;
                queue.push_back(seg);
            } else {
                out.push(seg.target);
            }
        }
        Ok(out)
    }

    /// The stored items of the manifest `name` (`/container/object`).
    async fn manifest_items(
        &self,
        base: &Parts,
        path: &ObjectPath,
        name: &str,
        version_id: Option<&str>,
    ) -> Result<Vec<Value>, (StatusCode, String)> {
        let mut uri = format!(
            "{}?multipart-manifest=get",
            h::quote_path(&format!("/{}/{}/{}", path.version, path.account, name.trim_start_matches('/')))
        );
        if let Some(v) = version_id {
            uri = format!("{uri}&version-id={}", h::quote_path(v));
        }
        let mut headers = HeaderMap::new();
        // Only the last byte of an object that is not a manifest.
        set(&mut headers, "range", "bytes=-1");
        set(&mut headers, bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT, "X-Static-Large-Object");
        let req = subrequest(base, Method::GET, &uri, headers, h::empty(), SOURCE).map_err(|r| (r.status(), "Bad path".to_string()))?;
        let resp = self.next.call(req).await;
        let st = resp.status();
        if st.is_success() {
            if !is_slo(resp.headers()) {
                return Err((StatusCode::BAD_REQUEST, "Not an SLO manifest".into()));
            }
            let body = read_limited(resp.into_body(), usize::MAX).await.unwrap_or_default();
            return serde_json::from_slice(&body).map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, "Unable to load SLO manifest".into()));
        }
        Err(match st {
            StatusCode::NOT_FOUND => (st, "SLO manifest not found".into()),
            StatusCode::UNAUTHORIZED => (st, "401 Unauthorized".into()),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Unable to load SLO manifest or segment.".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, request, Recorder, Seen};
    use super::*;
    use std::sync::Mutex;

    /// A fake proxy app: an object store in memory that stores what is
    /// PUT (with its headers), answers GET/HEAD with ranges, and DELETE.
    struct Store {
        objects: Mutex<HashMap<String, (HeaderMap, Bytes)>>,
    }

    fn store() -> (Arc<Store>, Arc<Recorder>) {
        let st = Arc::new(Store { objects: Mutex::new(HashMap::new()) });
        let s = st.clone();
        let rec = Recorder::new(move |seen: &Seen| s.answer(seen));
        (st, rec)
    }

    impl Store {
        fn put(&self, path: &str, body: &[u8]) {
            let mut hm = HeaderMap::new();
            hm.insert("etag", md5_hex(body).parse().unwrap());
            hm.insert("content-type", "application/octet-stream".parse().unwrap());
            self.objects.lock().unwrap().insert(path.to_string(), (hm, Bytes::copy_from_slice(body)));
        }

        fn answer(&self, seen: &Seen) -> Response<Body> {
            let path = seen.uri.split('?').next().unwrap().to_string();
            let path = common::path::unquote_internal(&path).unwrap();
            let mut objects = self.objects.lock().unwrap();
            match seen.method.as_str() {
                "PUT" => {
                    let mut hm = HeaderMap::new();
                    for (k, v) in &seen.headers {
                        if k.as_str().starts_with("x-object-sysmeta-") || k == "x-static-large-object" || k == "content-type" {
                            hm.insert(k.clone(), v.clone());
                        }
                    }
                    let etag = md5_hex(&seen.body);
                    if let Some(want) = h::header_str(&seen.headers, "etag") {
                        if want != etag {
                            return h::status(StatusCode::UNPROCESSABLE_ENTITY);
                        }
                    }
                    hm.insert("etag", etag.parse().unwrap());
                    objects.insert(path, (hm, seen.body.clone()));
                    let mut r = h::status(StatusCode::CREATED);
                    r.headers_mut().insert("last-modified", "Thu, 01 Jan 2026 00:00:00 GMT".parse().unwrap());
                    r
                }
                "DELETE" => match objects.remove(&path) {
                    Some(_) => h::status(StatusCode::NO_CONTENT),
                    None => h::status(StatusCode::NOT_FOUND),
                },
                "GET" | "HEAD" => {
                    let Some((hm, body)) = objects.get(&path) else { return h::status(StatusCode::NOT_FOUND) };
                    let mut headers = hm.clone();
                    headers.insert("last-modified", "Thu, 01 Jan 2026 00:00:00 GMT".parse().unwrap());
                    let ignore = is_slo(hm) && h::header_str(&seen.headers, bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT).is_some();
                    let etag = h::header_str(hm, "etag").unwrap().to_string();
                    if h::header_str(&seen.headers, "if-match").is_some_and(|v| !etag_listed(v, &etag)) {
                        let mut r = h::status(StatusCode::PRECONDITION_FAILED);
                        r.headers_mut().extend(headers);
                        return r;
                    }
                    let (status, data) = match h::header_str(&seen.headers, "range").and_then(parse_range) {
                        Some(spec) if !ignore => {
                            let (a, e) = ranges_for_length(&spec, body.len() as u64)[0];
                            (StatusCode::PARTIAL_CONTENT, body.slice(a as usize..e as usize))
                        }
                        _ => (StatusCode::OK, body.clone()),
                    };
                    headers.insert("content-length", data.len().into());
                    let mut r = Response::new(if seen.method == Method::HEAD { h::empty() } else { h::full(data) });
                    *r.status_mut() = status;
                    *r.headers_mut() = headers;
                    r
                }
                _ => h::status(StatusCode::METHOD_NOT_ALLOWED),
            }
        }
    }

    fn slo(next: Arc<Recorder>) -> Slo {
        let settings = SloSettings { rate_limit_segments_per_sec: 0, ..SloSettings::default() };
        Slo::new(settings, next)
    }

    fn segments() -> (Arc<Store>, Arc<Recorder>) {
        let (st, rec) = store();
        st.put("/v1/a/c/s1", b"aaaa");
        st.put("/v1/a/c/s2", b"bbbbbb");
        st.put("/v1/a/c/s3", b"c");
        (st, rec)
    }

    async fn put_manifest(m: &Slo, path: &str, manifest: &str) -> Response<Body> {
        m.call(request(
            "PUT",
            &format!("{path}?multipart-manifest=put"),
            &[("content-length", &manifest.len().to_string())],
            manifest.to_string(),
        ))
        .await
    }

    fn etag_of(parts: &[&str]) -> String {
        md5_hex(parts.concat().as_bytes())
    }

    #[tokio::test]
    async fn a_manifest_put_is_checked_and_stored_with_its_sysmeta() {
        let (st, rec) = segments();
        let m = slo(rec.clone());
        let manifest = format!(
            r#"[{{"path": "/c/s1", "etag": "{}", "size_bytes": 4}}, {{"path": "c/s2"}}, {{"data": "WFla"}}, {{"path": "/c/s3", "range": "0-0"}}]"#,
            md5_hex(b"aaaa")
        );
        let resp = put_manifest(&m, "/v1/a/c/m", &manifest).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let c = md5_hex(b"c");
        let slo_etag = etag_of(&[&md5_hex(b"aaaa"), &md5_hex(b"bbbbbb"), &md5_hex(b"XYZ"), &c]);
        assert_eq!(resp.headers()["etag"], format!("\"{slo_etag}\"").as_str());
        let seen = rec.seen();
        assert!(seen.iter().filter(|s| s.method == Method::HEAD).all(|s| s.source == Some("SLO")));
        let put = seen.iter().find(|s| s.method == Method::PUT).unwrap();
        assert_eq!(put.headers[SYSMETA_SLO_ETAG], slo_etag.as_str());
        assert_eq!(put.headers[SYSMETA_SLO_SIZE], "14");
        assert_eq!(put.headers["x-static-large-object"], "True");
        assert_eq!(put.headers["content-type"], "application/octet-stream;swift_bytes=14");
        let manifest_etag = md5_hex(&put.body);
        assert_eq!(put.headers[OVERRIDE_ETAG], format!("{manifest_etag}; slo_etag={slo_etag}").as_str());
        let stored: Vec<Value> = serde_json::from_slice(&put.body).unwrap();
        assert_eq!(stored[0]["name"], "/c/s1");
        assert_eq!(stored[0]["bytes"], 4);
        assert_eq!(stored[0]["last_modified"], "2026-01-01T00:00:00.000000");
        assert_eq!(stored[2]["data"], "WFla");
        // A whole-object range is dropped; others are kept.
        assert_eq!(stored[3].get("range"), None);
        assert!(st.objects.lock().unwrap().contains_key("/v1/a/c/m"));
    }

    #[tokio::test]
    async fn bad_manifests_are_refused_with_reasons() {
        let (_st, rec) = segments();
        let m = slo(rec.clone());
        let r = put_manifest(&m, "/v1/a/c/m", "not json").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(r).await, "Manifest must be valid JSON.\n");
        let r = put_manifest(&m, "/v1/a/c/m", r#"[{"path": "/c/s1", "teag": "x"}, {"path": "nocontainer"}, {"data": "!!"}]"#).await;
        assert_eq!(
            body_of(r).await,
            "Index 0: extraneous keys \"teag\"\nIndex 1: path does not refer to an object. Path must be of the form /container/object.\nIndex 2: data must be valid base64\n"
        );
        let r = put_manifest(&m, "/v1/a/c/m", r#"[{"data": "WFla"}]"#).await;
        assert_eq!(body_of(r).await, "Inline data segments require at least one object-backed segment.\n");
        let r = put_manifest(&m, "/v1/a/c/m", r#"[{"path": "/c/m"}]"#).await;
        assert_eq!(body_of(r).await, "Index 0: manifest must not include itself as a segment\n");
        // Checked against the segments themselves.
        let r = put_manifest(&m, "/v1/a/c/m", r#"[{"path": "/c/s1", "size_bytes": 5, "etag": "x"}, {"path": "/c/nope"}]"#).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(r).await, "Errors:\n/c/s1, Size Mismatch\n/c/s1, Etag Mismatch\n/c/nope, 404 Not Found\n");
        let r = m
            .call(request(
                "PUT",
                "/v1/a/c/m?multipart-manifest=put",
                &[("etag", "nope"), ("content-length", "20")],
                r#"[{"path": "/c/s1"}]"#,
            ))
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(rec.seen().iter().all(|s| s.method != Method::PUT));
        let r = m.call(request("POST", "/v1/a/c/m", &[("x-static-large-object", "true")], "")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn heartbeat_puts_answer_202_and_report_in_the_body() {
        let (_st, rec) = segments();
        let m = slo(rec);
        let r = m
            .call(request(
                "PUT",
                "/v1/a/c/m?multipart-manifest=put&heartbeat=on",
                &[("accept", "application/json"), ("content-length", "40")],
                r#"[{"path": "/c/s1"}, {"path": "/c/gone"}]"#,
            ))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body = body_of(r).await;
        let text = std::str::from_utf8(&body).unwrap();
        let (ws, json) = text.split_once("\r\n\r\n").unwrap();
        assert!(ws.trim().is_empty());
        let v: Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["Response Status"], "400 Bad Request");
        assert_eq!(v["Errors"][0][0], "/c/gone");
        assert_eq!(v["Errors"][0][1], "404 Not Found");
    }

    async fn abc_manifest() -> (Arc<Store>, Arc<Recorder>, Slo) {
        let (st, rec) = segments();
        let m = slo(rec.clone());
        let r =
            put_manifest(&m, "/v1/a/c/m", r#"[{"path": "/c/s1"}, {"data": "WFla"}, {"path": "/c/s2", "range": "1-3"}, {"path": "/c/s3"}]"#)
                .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        (st, rec, m)
    }

    #[tokio::test]
    async fn get_joins_the_segments_with_ranges_and_conditions() {
        let (_st, _rec, m) = abc_manifest().await;
        let r = m.call(request("GET", "/v1/a/c/m", &[], "")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-length"], "11");
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let want = etag_of(&[&md5_hex(b"aaaa"), &md5_hex(b"XYZ"), &format!("{}:1-3;", md5_hex(b"bbbbbb")), &md5_hex(b"c")]);
        assert_eq!(etag, format!("\"{want}\""));
        assert_eq!(body_of(r).await, "aaaaXYZbbbc");

        let r = m.call(request("GET", "/v1/a/c/m", &[("range", "bytes=3-7")], "")).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()["content-range"], "bytes 3-7/11");
        assert_eq!(body_of(r).await, "aXYZb");
        let r = m.call(request("GET", "/v1/a/c/m", &[("range", "bytes=-2")], "")).await;
        assert_eq!(body_of(r).await, "bc");
        let r = m.call(request("GET", "/v1/a/c/m", &[("range", "bytes=20-")], "")).await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        let r = m.call(request("GET", "/v1/a/c/m", &[("range", "bytes=0-0,10-10")], "")).await;
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("multipart/byteranges"));
        let len: usize = r.headers()["content-length"].to_str().unwrap().parse().unwrap();
        let body = body_of(r).await;
        assert_eq!(body.len(), len);
        assert!(std::str::from_utf8(&body).unwrap().contains("Content-Range: bytes 10-10/11\r\n\r\nc\r\n--"));

        // Conditions are judged on the SLO's ETag.
        let r = m.call(request("GET", "/v1/a/c/m", &[("if-match", &etag)], "")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(body_of(r).await, "aaaaXYZbbbc");
        let r = m.call(request("HEAD", "/v1/a/c/m", &[("if-none-match", &etag)], "")).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        let r = m.call(request("GET", "/v1/a/c/m", &[("if-match", "\"other\"")], "")).await;
        assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);

        let r = m.call(request("HEAD", "/v1/a/c/m", &[], "")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-length"], "11");
        assert_eq!(r.headers()["x-static-large-object"], "True");
    }

    #[tokio::test]
    async fn part_numbers() {
        let (_st, _rec, m) = abc_manifest().await;
        let r = m.call(request("GET", "/v1/a/c/m?part-number=3", &[], "")).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()["content-range"], "bytes 7-9/11");
        assert_eq!(r.headers()["x-parts-count"], "4");
        assert_eq!(body_of(r).await, "bbb");
        let r = m.call(request("HEAD", "/v1/a/c/m?part-number=1", &[], "")).await;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers()["content-length"], "4");
        let r = m.call(request("GET", "/v1/a/c/m?part-number=9", &[], "")).await;
        assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.headers()["content-range"], "bytes */11");
        assert_eq!(body_of(r).await, "The requested part number is not satisfiable");
        let r = m.call(request("GET", "/v1/a/c/m?part-number=0", &[], "")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn the_manifest_itself_raw_and_stored() {
        let (_st, _rec, m) = abc_manifest().await;
        let r = m.call(request("GET", "/v1/a/c/m?multipart-manifest=get", &[], "")).await;
        assert_eq!(r.headers()["content-type"], "application/json; charset=utf-8");
        let stored: Vec<Value> = serde_json::from_slice(&body_of(r).await).unwrap();
        assert_eq!(stored[2]["range"], "1-3");
        let r = m.call(request("GET", "/v1/a/c/m?multipart-manifest=get&format=raw", &[], "")).await;
        assert_eq!(r.headers()["content-type"], "application/octet-stream");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        let body = body_of(r).await;
        assert_eq!(etag, md5_hex(&body));
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.starts_with(r#"[{"etag": ""#), "{text}");
        let raw: Vec<Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(raw[0]["path"], "/c/s1");
        assert_eq!(raw[0]["size_bytes"], 4);
        assert_eq!(raw[1]["data"], "WFla");
        // The raw form puts back as the same SLO.
        let r = put_manifest(&m, "/v1/a/c/m2", text).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = m.call(request("GET", "/v1/a/c/m2", &[], "")).await;
        assert_eq!(body_of(r).await, "aaaaXYZbbbc");
    }

    #[tokio::test]
    async fn nested_manifests_are_joined_and_a_bad_segment_is_a_409() {
        let (st, _rec, m) = abc_manifest().await;
        let r = put_manifest(&m, "/v1/a/c/outer", r#"[{"path": "/c/s3"}, {"path": "/c/m", "range": "2-8"}]"#).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = m.call(request("GET", "/v1/a/c/outer", &[], "")).await;
        assert_eq!(r.headers()["content-length"], "8");
        assert_eq!(body_of(r).await, "caaXYZbb");
        let r = m.call(request("GET", "/v1/a/c/outer", &[("range", "bytes=4-6")], "")).await;
        assert_eq!(body_of(r).await, "YZb");
        // A segment changed since the manifest was written.
        st.put("/v1/a/c/s1", b"zzzz");
        let r = m.call(request("GET", "/v1/a/c/m", &[], "")).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        // ...or part-way: the body breaks.
        st.put("/v1/a/c/s1", b"aaaa");
        st.put("/v1/a/c/s3", b"d");
        let r = m.call(request("GET", "/v1/a/c/m", &[], "")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.into_body().collect().await.is_err());
    }

    #[tokio::test]
    async fn multipart_delete_removes_segments_then_the_manifest() {
        let (st, rec, m) = abc_manifest().await;
        let r = put_manifest(&m, "/v1/a/c/outer", r#"[{"path": "/c/m"}, {"path": "/c/gone-later"}]"#).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = put_manifest(&m, "/v1/a/c/outer", r#"[{"path": "/c/m"}]"#).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        st.objects.lock().unwrap().remove("/v1/a/c/s3");
        let r = m.call(request("DELETE", "/v1/a/c/outer?multipart-manifest=delete", &[("accept", "application/json")], "")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "application/json");
        let v: Value = serde_json::from_slice(&body_of(r).await).unwrap();
        assert_eq!(v["Number Deleted"], 4);
        assert_eq!(v["Number Not Found"], 1);
        assert_eq!(v["Response Status"], "200 OK");
        assert!(st.objects.lock().unwrap().is_empty());
        let deletes: Vec<String> = rec.seen().iter().filter(|s| s.method == Method::DELETE).map(|s| s.uri.clone()).collect();
        // Each manifest after its own segments, as Swift orders them.
        let pos = |p: &str| deletes.iter().position(|d| d == p).unwrap();
        assert!(pos("/v1/a/c/m") > pos("/v1/a/c/s2"));
        // A plain object is not a manifest.
        st.put("/v1/a/c/plain", b"x");
        let r = m.call(request("DELETE", "/v1/a/c/plain?multipart-manifest=delete", &[], "")).await;
        assert_eq!(
            body_of(r).await,
            "Number Deleted: 0\nNumber Not Found: 0\nResponse Body: \nResponse Status: 400 Bad Request\nErrors:\n/c/plain, Not an SLO manifest\n"
        );
    }

    #[tokio::test]
    async fn multipart_delete_of_a_version_reads_and_deletes_that_version() {
        let (_st, rec, m) = abc_manifest().await;
        let r =
            m.call(request("DELETE", "/v1/a/c/m?multipart-manifest=delete&version-id=1.5", &[("accept", "application/json")], "")).await;
        let v: Value = serde_json::from_slice(&body_of(r).await).unwrap();
        assert_eq!(v["Number Deleted"], 4);
        let seen = rec.seen();
        let get = seen.iter().find(|s| s.method == Method::GET).unwrap();
        assert_eq!(get.uri, "/v1/a/c/m?multipart-manifest=get&version-id=1.5");
        let deletes: Vec<&str> = seen.iter().filter(|s| s.method == Method::DELETE).map(|s| s.uri.as_str()).collect();
        // The segments are plain objects; only the manifest is a version.
        assert!(deletes.contains(&"/v1/a/c/s1"));
        assert_eq!(deletes.last(), Some(&"/v1/a/c/m?version-id=1.5"));
    }

    #[tokio::test]
    async fn listings_show_the_slo_etag_apart() {
        let listing =
            r#"[{"name": "m", "hash": "abc; slo_etag=def", "bytes": 3, "content_type": "x", "last_modified": "t"}, {"subdir": "d/"}]"#;
        let mut resp = Response::new(h::full(listing));
        resp.headers_mut().insert("content-type", "application/json; charset=utf-8".parse().unwrap());
        let r = container_listing(resp).await;
        let v: Vec<Value> = serde_json::from_slice(&body_of(r).await).unwrap();
        assert_eq!(v[0]["hash"], "abc");
        assert_eq!(v[0]["slo_etag"], "\"def\"");
        assert_eq!(v[1]["subdir"], "d/");
    }

    #[test]
    fn base64_round_trips() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"abcd", b"\xff\x00\x10"] {
            assert_eq!(b64decode(&super::super::base64_encode(data)).unwrap(), data);
        }
        assert_eq!(b64decode("WFla").unwrap(), b"XYZ");
        assert!(b64decode("W").is_none());
        assert!(b64decode("a b").is_none());
    }
}
