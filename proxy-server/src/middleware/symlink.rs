//! `egg:swift#symlink`: objects that point at other objects.
//!
//! A `PUT` with `X-Symlink-Target: <container>/<object>` (and optionally
//! `X-Symlink-Target-Account`) stores a zero-byte object whose system
//! metadata names the target; a `GET` or `HEAD` of it is answered by the
//! target, read with subrequests into the pipeline to the right (as the
//! caller, so the target container's read ACL applies), with
//! `Content-Location` naming the target. At most `symloop_max` links are
//! followed (409 beyond). `?symlink=get` reads the link itself, its target
//! shown as `X-Symlink-Target*` headers.
//!
//! A *static* link also carries `X-Symlink-Target-Etag`: the target must
//! exist with that ETag when the link is made (its size is kept as well),
//! and a read answers 409 once the target has changed.
//!
//! A link's target goes into its container listing row as parameters of
//! the row's ETag (`<md5 of nothing>; symlink_target=...`, through the
//! container-update override), which this middleware turns back into
//! `symlink_path`, `symlink_etag` and `symlink_bytes` fields of JSON
//! listings. A `POST` to a link updates the link's metadata and answers
//! 307 with the target as `Location`.

use super::{subrequest, AllowAll, AuthorizeHook, BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use bytes::Bytes;
use common::backend_headers as bh;
use common::config::Section;
use common::http::{self as h, Body};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;

/// `swift.source` of the symlink's subrequests.
const SOURCE: &str = "SYM";

/// Links followed at most, unless configured (Swift's `DEFAULT_SYMLOOP_MAX`).
const DEFAULT_SYMLOOP_MAX: usize = 2;

const TARGET: &str = "x-symlink-target";
const TARGET_ACCOUNT: &str = "x-symlink-target-account";
const TARGET_ETAG: &str = "x-symlink-target-etag";
const TARGET_BYTES: &str = "x-symlink-target-bytes";

const SYSMETA_TARGET: &str = "x-object-sysmeta-symlink-target";
const SYSMETA_TARGET_ACCOUNT: &str = "x-object-sysmeta-symlink-target-account";
const SYSMETA_TARGET_ETAG: &str = "x-object-sysmeta-symlink-target-etag";
const SYSMETA_TARGET_BYTES: &str = "x-object-sysmeta-symlink-target-bytes";
/// A link whose hop does not count towards `symloop_max` (set by
/// versioning for its own links).
const SYSMETA_SYMLOOP_EXTEND: &str = "x-object-sysmeta-symloop-extend";
/// A link that may point at a reserved name (set by versioning).
const SYSMETA_ALLOW_RESERVED_NAMES: &str = "x-object-sysmeta-allow-reserved-names";

/// The listing ETag of a link: the MD5 of its (empty) body.
const MD5_OF_EMPTY_STRING: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// A JSON listing longer than this is passed on unread.
const MAX_LISTING_LENGTH: usize = 1024 * 10_000 * 2;

const TARGET_FORM: &str = "X-Symlink-Target header must be of the form <container name>/<object name>";

/// Left in a request by a middleware that makes links on its own
/// authority (Swift's `swift.symlink_override`): a static link's
/// `X-Symlink-Target-Etag` and `X-Symlink-Target-Bytes` are taken as given
/// instead of being checked against the target.
#[derive(Debug, Clone, Copy)]
pub struct SymlinkOverride;

pub struct Symlink {
    symloop_max: usize,
    next: Next,
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    let symloop_max = match section.get_i64("symloop_max", DEFAULT_SYMLOOP_MAX as i64).map_err(|e| e.to_string())? {
        n if n < 1 => DEFAULT_SYMLOOP_MAX,
        n => n as usize,
    };
    build.capabilities.insert("symlink".into(), serde_json::json!({ "symloop_max": symloop_max, "static_links": true }));
    Ok(Arc::new(Symlink { symloop_max, next }))
}

impl Handler for Symlink {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let Some(path) = SplitPath::parse(req.uri().path()) else { return self.next.call(req).await };
            let result = match (&path.object, req.method().clone()) {
                (None, Method::GET) => Ok(self.container_get(req, &path).await),
                (None, _) => Ok(self.next.call(req).await),
                (Some(_), Method::GET | Method::HEAD) => {
                    if super::query_param(req.uri().query(), "symlink").as_deref() == Some("get") {
                        Ok(self.get_link_itself(req).await)
                    } else {
                        self.get_or_head(req).await
                    }
                }
                (Some(_), Method::PUT) if req.headers().contains_key(TARGET) => self.put(req, &path).await,
                (Some(_), Method::POST) => self.post(req, &path).await,
                // DELETE, OPTIONS, and PUTs of plain objects.
                _ => Ok(self.next.call(req).await),
            };
            result.unwrap_or_else(|refused| refused)
        })
    }
}

/// A container or object path: the raw (quoted) version and account, as
/// link targets and `symlink_path` are built from, and the unquoted names.
#[derive(Debug, Clone)]
struct SplitPath {
    raw_version: String,
    raw_account: String,
    account: String,
    container: String,
    object: Option<String>,
}

impl SplitPath {
    fn parse(raw: &str) -> Option<SplitPath> {
        let unquoted = common::path::unquote_internal(raw).ok()?;
        let segs = common::path::split_path(&unquoted, 3, 4, true).ok()?;
        let mut raw_segs = raw.splitn(4, '/').skip(1);
        Some(SplitPath {
            raw_version: raw_segs.next()?.to_string(),
            raw_account: raw_segs.next()?.to_string(),
            account: segs[1].clone()?,
            container: segs[2].clone()?,
            object: segs[3].clone().filter(|o| !o.is_empty()),
        })
    }
}

/// A plain-text answer (Swift's `content_type='text/plain'`).
fn plain(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut resp = h::text(status, body);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

fn with_location(mut resp: Response<Body>, location: Option<&str>) -> Response<Body> {
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        resp.headers_mut().insert(http::header::CONTENT_LOCATION, v);
    }
    resp
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) -> Result<(), Response<Body>> {
    let v = HeaderValue::from_str(value).map_err(|_| plain(StatusCode::BAD_REQUEST, format!("Bad {name} header")))?;
    headers.insert(name, v);
    Ok(())
}

/// Swift's `normalize_etag`: an ETag without its surrounding quotes.
fn normalize_etag(etag: &str) -> &str {
    if etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"') {
        &etag[1..etag.len() - 1]
    } else {
        etag
    }
}

/// The link's own `x-object-sysmeta-symlink-*` headers as the
/// `X-Symlink-*` a client sees.
fn sysmeta_to_user(headers: &mut HeaderMap) {
    for (user, sys) in [
        (TARGET, SYSMETA_TARGET),
        (TARGET_ACCOUNT, SYSMETA_TARGET_ACCOUNT),
        (TARGET_ETAG, SYSMETA_TARGET_ETAG),
        (TARGET_BYTES, SYSMETA_TARGET_BYTES),
    ] {
        if let Some(v) = headers.remove(sys) {
            headers.insert(user, v);
        }
    }
}

/// Where a walk through links has got to.
#[derive(Default)]
struct Walk {
    /// Links followed so far.
    hops: usize,
    /// The quoted path of the last target, for `Content-Location`.
    last_target: Option<String>,
}

impl Symlink {
    /// A `GET`/`HEAD` with `?symlink=get`: the link itself.
    async fn get_link_itself(&self, req: Request<Body>) -> Response<Body> {
        let mut resp = self.next.call(req).await;
        sysmeta_to_user(resp.headers_mut());
        resp
    }

    /// A `GET`/`HEAD` that follows links to their target.
    async fn get_or_head(&self, mut req: Request<Body>) -> Result<Response<Body>, Response<Body>> {
        // A link's Range is about its target: the object server is asked to
        // ignore it for a link (added to the names middlewares to the left
        // asked for).
        let names = match h::header_str(req.headers(), bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT) {
            Some(v) if !v.trim().is_empty() => format!("{v},{SYSMETA_TARGET}"),
            _ => SYSMETA_TARGET.to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&names) {
            req.headers_mut().insert(bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT, v);
        }
        let orig = parts_of(&req);
        self.follow(&orig, req, None, true, &mut Walk::default()).await
    }

    /// Swift's `_recursive_get_head`: answers `req`, following the link it
    /// finds (a static one always, a dynamic one when `follow_dynamic`),
    /// and checking each hop against the ETag the link before it promised.
    async fn follow(
        &self,
        orig: &http::request::Parts,
        mut req: Request<Body>,
        mut target_etag: Option<String>,
        mut follow_dynamic: bool,
        walk: &mut Walk,
    ) -> Result<Response<Body>, Response<Body>> {
        loop {
            let method = req.method().clone();
            let mut headers = req.headers().clone();
            let raw_path = req.uri().path().to_string();
            let resp = self.next.call(req).await;
            let rh = resp.headers();
            let link_target = h::header_str(rh, SYSMETA_TARGET).filter(|t| !t.is_empty()).map(str::to_string);
            let link_etag = h::header_str(rh, SYSMETA_TARGET_ETAG).filter(|t| !t.is_empty()).map(str::to_string);
            let Some(link_target) = link_target.filter(|_| link_etag.is_some() || follow_dynamic) else {
                // Not a link (or one not to follow): the answer, checked
                // against what a static link promised.
                let final_etag = h::header_str(rh, "etag").filter(|e| !e.is_empty());
                if let (Some(found), Some(wanted)) = (final_etag, target_etag.as_deref()) {
                    if found != wanted {
                        let msg = format!("Object Etag '{found}' does not match X-Symlink-Target-Etag header '{wanted}'");
                        return Err(with_location(plain(StatusCode::CONFLICT, msg), walk.last_target.as_deref()));
                    }
                }
                // Only after a hop: which target answered.
                return Ok(with_location(resp, walk.last_target.as_deref()));
            };
            // A link is a zero-byte object: its body is dropped.
            let found_etag = link_etag.clone().or_else(|| h::header_str(rh, "etag").map(str::to_string));
            if let Some(wanted) = &target_etag {
                if Some(wanted) != found_etag.as_ref() {
                    return Err(with_location(
                        plain(StatusCode::CONFLICT, "X-Symlink-Target-Etag headers do not match"),
                        walk.last_target.as_deref(),
                    ));
                }
            }
            if walk.hops >= self.symloop_max {
                return Err(plain(
                    StatusCode::CONFLICT,
                    format!("Too many levels of symbolic links, maximum allowed is {}", self.symloop_max),
                ));
            }
            let Some(here) = SplitPath::parse(&raw_path) else { return Err(h::status(StatusCode::INTERNAL_SERVER_ERROR)) };
            let account = h::header_str(rh, SYSMETA_TARGET_ACCOUNT).filter(|a| !a.is_empty()).unwrap_or(&here.raw_account);
            let target = format!("/{}/{}/{}", here.raw_version, account, link_target.trim_start_matches('/'));
            let extend = h::header_str(rh, SYSMETA_SYMLOOP_EXTEND).and_then(common::config::parse_bool) == Some(true);
            let reserved = h::header_str(rh, SYSMETA_ALLOW_RESERVED_NAMES).and_then(common::config::parse_bool) == Some(true);
            drop(resp);
            headers.remove(bh::BACKEND_STORAGE_POLICY_INDEX);
            if reserved {
                headers.insert(bh::BACKEND_ALLOW_RESERVED_NAMES, HeaderValue::from_static("true"));
            }
            req = subrequest(orig, method, &target, headers, h::empty(), SOURCE)?;
            if reserved {
                // Users cannot name reserved objects: a middleware that
                // could made this link, so the hop is on its authority.
                req.extensions_mut().insert(AuthorizeHook(Arc::new(AllowAll)));
            }
            walk.last_target = Some(target);
            if !extend {
                walk.hops += 1;
            }
            target_etag = link_etag;
            follow_dynamic = true;
        }
    }

    /// A `PUT` with `X-Symlink-Target`: the link is checked, its target
    /// moved into sysmeta and into its container row's ETag.
    async fn put(&self, req: Request<Body>, path: &SplitPath) -> Result<Response<Body>, Response<Body>> {
        let (mut parts, body) = req.into_parts();
        let has_body = match h::header_str(&parts.headers, "content-length") {
            Some(v) => !v.trim().parse::<u64>().is_ok_and(|n| n == 0),
            None => !first_bytes(body).await.is_empty(),
        };
        if has_body {
            return Err(plain(StatusCode::BAD_REQUEST, "Symlink requests require a zero byte body"));
        }
        let (target_path, etag) = prepare_headers(&mut parts.headers, path)?;
        if let Some(etag) = etag {
            self.check_static_target(&mut parts, &target_path, &etag).await?;
        }
        let hm = &mut parts.headers;
        for (user, sys) in [(TARGET, SYSMETA_TARGET), (TARGET_ACCOUNT, SYSMETA_TARGET_ACCOUNT)] {
            if let Some(v) = hm.remove(user) {
                hm.insert(sys, v);
            }
        }
        // The link's listing row carries its target in its ETag's
        // parameters (a link is zero bytes, so the ETag itself is known).
        // Parameters another middleware put there (an SLO's slo_etag)
        // stay; a copied link's old symlink_* ones do not.
        let override_etag = format!("{}etag", bh::OBJECT_SYSMETA_CONTAINER_UPDATE_OVERRIDE_PREFIX);
        let existing = h::header_str(hm, &override_etag).unwrap_or(MD5_OF_EMPTY_STRING).to_string();
        let mut params: Vec<String> = existing.split(';').map(|p| p.trim().to_string()).collect();
        params.retain(|p| !p.starts_with("symlink_target"));
        let header = |hm: &HeaderMap, n: &str| h::header_str(hm, n).unwrap_or("").to_string();
        params.push(format!("symlink_target={}", header(hm, SYSMETA_TARGET)));
        if hm.contains_key(SYSMETA_TARGET_ACCOUNT) {
            params.push(format!("symlink_target_account={}", header(hm, SYSMETA_TARGET_ACCOUNT)));
        }
        if hm.contains_key(SYSMETA_TARGET_ETAG) {
            params.push(format!("symlink_target_etag={}", header(hm, SYSMETA_TARGET_ETAG)));
            params.push(format!("symlink_target_bytes={}", header(hm, SYSMETA_TARGET_BYTES)));
        }
        let value = HeaderValue::from_str(&params.join("; ")).map_err(|_| plain(StatusCode::BAD_REQUEST, "Bad symlink target"))?;
        hm.insert(HeaderName::from_bytes(override_etag.as_bytes()).expect("a valid header name"), value);
        hm.remove(TRANSFER_ENCODING);
        hm.insert(CONTENT_LENGTH, HeaderValue::from(0));
        Ok(self.next.call(Request::from_parts(parts, h::empty())).await)
    }

    /// Swift's `_validate_etag_and_update_sysmeta`: a static link's target
    /// must exist (read as the caller) with the ETag the link names; its
    /// size, ETag and content type become the link's.
    async fn check_static_target(&self, parts: &mut http::request::Parts, target_path: &str, etag: &str) -> Result<(), Response<Body>> {
        if parts.extensions.get::<SymlinkOverride>().is_some() {
            let bytes = h::header_str(&parts.headers, TARGET_BYTES).unwrap_or("").to_string();
            set(&mut parts.headers, SYSMETA_TARGET_ETAG, etag)?;
            set(&mut parts.headers, SYSMETA_TARGET_BYTES, &bytes)?;
            return Ok(());
        }
        let quoted = h::quote_path(target_path);
        let mut headers = HeaderMap::new();
        if h::header_str(&parts.headers, bh::BACKEND_ALLOW_RESERVED_NAMES).and_then(common::config::parse_bool) == Some(true) {
            headers.insert(bh::BACKEND_ALLOW_RESERVED_NAMES, HeaderValue::from_static("true"));
        }
        let head = subrequest(parts, Method::HEAD, &quoted, headers, h::empty(), SOURCE)?;
        let mut walk = Walk { hops: 0, last_target: Some(quoted.clone()) };
        let resp = self.follow(parts, head, Some(etag.to_string()), false, &mut walk).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(with_location(plain(StatusCode::CONFLICT, "X-Symlink-Target does not exist"), walk.last_target.as_deref()));
        }
        if !resp.status().is_success() {
            return Err(h::status(resp.status()));
        }
        let rh = resp.headers();
        let hm = &mut parts.headers;
        // The target's own listing ETag parameters (an SLO's slo_etag)
        // carry over to the link's row.
        let override_etag = format!("{}etag", bh::OBJECT_SYSMETA_CONTAINER_UPDATE_OVERRIDE_PREFIX);
        if !hm.contains_key(override_etag.as_str()) {
            let carried = match (h::header_str(rh, &override_etag), h::header_str(rh, "x-object-sysmeta-slo-etag")) {
                (Some(v), _) => v.split_once(';').map(|(_, params)| format!("{MD5_OF_EMPTY_STRING};{params}")),
                (None, Some(slo_etag)) => Some(format!("{MD5_OF_EMPTY_STRING}; slo_etag={slo_etag}")),
                (None, None) => None,
            };
            if let Some(v) = carried.and_then(|v| HeaderValue::from_str(&v).ok()) {
                hm.insert(HeaderName::from_bytes(override_etag.as_bytes()).expect("a valid header name"), v);
            }
        }
        let bytes = h::header_str(rh, "x-object-sysmeta-slo-size").or_else(|| h::header_str(rh, "content-length")).unwrap_or("0");
        let bytes = bytes.to_string();
        set(hm, SYSMETA_TARGET_BYTES, &bytes)?;
        set(hm, SYSMETA_TARGET_ETAG, etag)?;
        if h::header_str(hm, "content-type").is_none_or(str::is_empty) {
            if let Some(ct) = rh.get(CONTENT_TYPE) {
                hm.insert(CONTENT_TYPE, ct.clone());
            }
        }
        Ok(())
    }

    /// A `POST`: never sets a target; applied to a link, answered with a
    /// 307 to its target (the link's metadata is updated all the same).
    async fn post(&self, req: Request<Body>, path: &SplitPath) -> Result<Response<Body>, Response<Body>> {
        if req.headers().contains_key(TARGET) {
            return Err(plain(StatusCode::BAD_REQUEST, "A PUT request is required to set a symlink target"));
        }
        let resp = self.next.call(req).await;
        if !resp.status().is_success() {
            return Ok(resp);
        }
        let rh = resp.headers();
        let Some(target) = h::header_str(rh, SYSMETA_TARGET).filter(|t| !t.is_empty()) else { return Ok(resp) };
        let account = h::header_str(rh, SYSMETA_TARGET_ACCOUNT).filter(|a| !a.is_empty()).unwrap_or(&path.raw_account);
        let location = format!("/{}/{}/{}", path.raw_version, account, target.trim_start_matches('/'));
        let mut redirect = h::text(
            StatusCode::TEMPORARY_REDIRECT,
            "The requested POST was applied to a symlink. POST directly to the target to apply requested metadata.",
        );
        let out = redirect.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&location) {
            out.insert(http::header::LOCATION, v);
        }
        if let Some(v) = rh.get(SYSMETA_TARGET_ETAG) {
            out.insert(TARGET_ETAG, v.clone());
        }
        for (k, v) in rh {
            if k.as_str().starts_with("x-object-sysmeta-") {
                out.insert(k.clone(), v.clone());
            }
        }
        Ok(redirect)
    }

    /// A container `GET`: links in the JSON listing get their
    /// `symlink_path` (and a static link's `symlink_etag`, `symlink_bytes`).
    async fn container_get(&self, req: Request<Body>, path: &SplitPath) -> Response<Body> {
        let resp = self.next.call(req).await;
        // An empty container's 204 has nothing to rewrite.
        if resp.status() != StatusCode::OK {
            return resp;
        }
        let (mut parts, body) = resp.into_parts();
        let Some(bytes) = read_limited(body, MAX_LISTING_LENGTH).await else {
            return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Error reading the listing");
        };
        let rewritten = bytes
            .windows(15)
            .any(|w| w == b"symlink_target=")
            .then(|| serde_json::from_slice::<Vec<Value>>(&bytes).ok())
            .flatten()
            .map(|items| listing_with_links(items, &path.raw_version, &path.raw_account));
        let body = match rewritten {
            Some(json) => {
                parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(json.len()));
                parts.headers.remove(ETAG);
                Bytes::from(json)
            }
            None => bytes,
        };
        Response::from_parts(parts, h::full(body))
    }
}

/// The head of a request without its body, to make subrequests from.
fn parts_of(req: &Request<Body>) -> http::request::Parts {
    let mut parts = Request::new(()).into_parts().0;
    parts.method = req.method().clone();
    parts.uri = req.uri().clone();
    parts.headers = req.headers().clone();
    parts.extensions = req.extensions().clone();
    parts
}

/// A whole body of at most `limit` bytes; `None` when it is longer or
/// breaks.
async fn read_limited(mut body: Body, limit: usize) -> Option<Bytes> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.ok()?.into_data() {
            if buf.len() + data.len() > limit {
                return None;
            }
            buf.extend_from_slice(&data);
        }
    }
    Some(buf.freeze())
}

/// The first bytes of a body of unknown length (empty when it has none).
async fn first_bytes(mut body: Body) -> Bytes {
    while let Some(frame) = body.frame().await {
        match frame.map(|f| f.into_data()) {
            Ok(Ok(data)) if !data.is_empty() => return data,
            Ok(_) => continue,
            // A body that breaks is not an empty one.
            Err(_) => return Bytes::from_static(b"?"),
        }
    }
    Bytes::new()
}

/// A header's value as UTF-8 text (`HeaderValue::to_str` takes ASCII only).
fn utf8_header(hm: &HeaderMap, name: &str) -> Option<String> {
    hm.get(name).and_then(|v| std::str::from_utf8(v.as_bytes()).ok()).map(str::to_string)
}

/// Swift's `_validate_and_prep_request_headers`: checks the target
/// headers of a link's `PUT` and normalizes them (quoted
/// `<container>/<object>`, quoted account); answers the target's unquoted
/// path and the static link's ETag.
fn prepare_headers(hm: &mut HeaderMap, path: &SplitPath) -> Result<(String, Option<String>), Response<Body>> {
    // Clients send the target raw (UTF-8) or percent-encoded.
    let raw = utf8_header(hm, TARGET).ok_or_else(|| plain(StatusCode::PRECONDITION_FAILED, TARGET_FORM))?;
    let target = percent_encoding::percent_decode_str(&raw).decode_utf8_lossy().into_owned();
    if target.starts_with('/') {
        return Err(plain(StatusCode::PRECONDITION_FAILED, TARGET_FORM));
    }
    let segs =
        common::path::split_path(&format!("/{target}"), 2, 2, true).map_err(|_| plain(StatusCode::PRECONDITION_FAILED, TARGET_FORM))?;
    let (container, object) = match (&segs[0], &segs[1]) {
        (Some(c), Some(o)) => (c.clone(), o.clone()),
        _ => return Err(plain(StatusCode::PRECONDITION_FAILED, TARGET_FORM)),
    };
    set(hm, TARGET, &h::quote_path(&format!("{container}/{object}")))?;
    let account = match utf8_header(hm, TARGET_ACCOUNT) {
        Some(raw) => {
            let account = percent_encoding::percent_decode_str(&raw).decode_utf8_lossy().into_owned();
            if account.is_empty() {
                return Err(h::text(StatusCode::PRECONDITION_FAILED, "Account name cannot be empty"));
            }
            if account.contains('/') {
                return Err(h::text(StatusCode::PRECONDITION_FAILED, "Account name cannot contain slashes"));
            }
            set(hm, TARGET_ACCOUNT, &h::quote_path(&account))?;
            account
        }
        None => path.account.clone(),
    };
    if account == path.account && container == path.container && Some(&object) == path.object.as_ref() {
        return Err(plain(StatusCode::BAD_REQUEST, "Symlink cannot target itself"));
    }
    let etag = h::header_str(hm, TARGET_ETAG).map(normalize_etag).filter(|e| !e.is_empty()).map(str::to_string);
    if etag.as_deref().is_some_and(|e| e.contains([';', '"', '\\'])) {
        return Err(plain(StatusCode::BAD_REQUEST, "Bad X-Symlink-Target-Etag format"));
    }
    if etag.is_none() && h::header_str(hm, "content-type").is_none_or(str::is_empty) {
        hm.insert(CONTENT_TYPE, HeaderValue::from_static("application/symlink"));
    }
    Ok((format!("/v1/{account}/{container}/{object}"), etag))
}

/// Swift's `_extract_symlink_path_json` over a listing: each row whose
/// `hash` carries `symlink_target*` parameters gets them as fields, the
/// other parameters staying in `hash`. Written as Python's `json.dumps`.
fn listing_with_links(items: Vec<Value>, raw_version: &str, raw_account: &str) -> String {
    let mut out = String::from("[");
    for (i, mut item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if let Some(map) = item.as_object_mut() {
            if let Some(hash) = map.get("hash").and_then(Value::as_str).map(str::to_string) {
                let mut params = hash.split(';');
                let mut new_hash = params.next().unwrap_or("").trim().to_string();
                let mut target = None;
                let mut account = raw_account.to_string();
                let mut extra = Vec::new();
                for p in params {
                    let Some((k, v)) = p.split_once('=') else { continue };
                    let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                    let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') { &v[1..v.len() - 1] } else { v };
                    match k.as_str() {
                        "symlink_target" => target = Some(v.to_string()),
                        "symlink_target_account" => account = v.to_string(),
                        "symlink_target_etag" => extra.push(("symlink_etag", Value::String(v.to_string()))),
                        "symlink_target_bytes" => {
                            extra.push(("symlink_bytes", v.parse::<u64>().map(Value::from).unwrap_or(Value::String(v.to_string()))))
                        }
                        _ => new_hash.push_str(&format!("; {k}={v}")),
                    }
                }
                map.insert("hash".into(), Value::String(new_hash));
                for (k, v) in extra {
                    map.insert(k.into(), v);
                }
                if let Some(t) = target {
                    map.insert("symlink_path".into(), Value::String(format!("/{raw_version}/{account}/{t}")));
                }
            }
        }
        common::listing_format::push_py_json(&mut out, &item);
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, request, Recorder, Seen};
    use super::*;

    const TARGET_ETAG_HEX: &str = "5d41402abc4b2a76b9719d911017c592";

    fn response(status: StatusCode, headers: &[(&str, &str)], body: &'static str) -> Response<Body> {
        let mut r = Response::new(h::full(body));
        *r.status_mut() = status;
        for (k, v) in headers {
            r.headers_mut().insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        r
    }

    /// A fake proxy app: `/v1/a/c/t` is an object ("hello"), `/v1/a/c/l`
    /// a dynamic link to it, `/v1/a/c/s` a static link to it, `/v1/a/c/l2`
    /// a link to `l`, `/v1/a/c/l3` a link to `l2`; `/v1/b/c/x` is a link to
    /// account `a`; every PUT and POST succeeds, a POST answering with the
    /// object's sysmeta.
    fn app() -> Arc<Recorder> {
        Recorder::new(|seen: &Seen| {
            fn link(target: &'static str, extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
                let mut hs = vec![(SYSMETA_TARGET, target), ("etag", MD5_OF_EMPTY_STRING), ("content-length", "0")];
                hs.extend_from_slice(extra);
                hs
            }
            let object_headers: Option<Vec<(&str, &str)>> = match seen.uri.split('?').next().unwrap() {
                "/v1/a/c/t" => Some(vec![("etag", TARGET_ETAG_HEX), ("content-length", "5"), ("content-type", "text/plain")]),
                "/v1/a/c/l" => Some(link("c/t", &[])),
                "/v1/a/c/s" => Some(link("c/t", &[(SYSMETA_TARGET_ETAG, TARGET_ETAG_HEX), (SYSMETA_TARGET_BYTES, "5")])),
                "/v1/a/c/bad" => Some(link("c/t", &[(SYSMETA_TARGET_ETAG, "0123")])),
                "/v1/a/c/l2" => Some(link("c/l", &[])),
                "/v1/a/c/l3" => Some(link("c/l2", &[])),
                "/v1/b/c/x" => Some(link("c/t", &[(SYSMETA_TARGET_ACCOUNT, "a")])),
                _ => None,
            };
            match (seen.method.as_str(), object_headers) {
                ("PUT", _) => response(StatusCode::CREATED, &[], ""),
                ("POST", Some(hs)) => {
                    let sys: Vec<_> = hs.into_iter().filter(|(k, _)| k.starts_with("x-object-sysmeta-")).collect();
                    response(StatusCode::ACCEPTED, &sys, "")
                }
                ("GET", Some(hs)) => {
                    let body = if seen.uri.starts_with("/v1/a/c/t") { "hello" } else { "" };
                    response(StatusCode::OK, &hs, body)
                }
                ("HEAD", Some(hs)) => response(StatusCode::OK, &hs, ""),
                _ => response(StatusCode::NOT_FOUND, &[], ""),
            }
        })
    }

    fn symlink(next: Arc<Recorder>) -> Symlink {
        Symlink { symloop_max: 2, next }
    }

    #[tokio::test]
    async fn a_get_follows_links_to_the_target() {
        let next = app();
        let m = symlink(next.clone());
        let resp = m.call(request("GET", "/v1/a/c/l2", &[("range", "bytes=1-2")], "")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-location"], "/v1/a/c/t");
        assert_eq!(body_of(resp).await, "hello");
        let seen = next.seen();
        let uris: Vec<_> = seen.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["/v1/a/c/l2", "/v1/a/c/l", "/v1/a/c/t"]);
        // Range goes along; the object server ignores it for links.
        assert_eq!(seen[2].headers["range"], "bytes=1-2");
        assert_eq!(seen[0].headers[bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT], SYSMETA_TARGET);
        assert_eq!((seen[0].source, seen[1].source), (None, Some("SYM")));
        // A plain object has no Content-Location.
        let resp = m.call(request("HEAD", "/v1/a/c/t", &[], "")).await;
        assert!(!resp.headers().contains_key("content-location"));
    }

    #[tokio::test]
    async fn too_many_links_are_a_conflict() {
        let m = symlink(app());
        let resp = m.call(request("GET", "/v1/a/c/l3", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(body_of(resp).await, "Too many levels of symbolic links, maximum allowed is 2");
        let m = Symlink { symloop_max: 3, next: app() };
        assert_eq!(m.call(request("GET", "/v1/a/c/l3", &[], "")).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_static_link_checks_its_targets_etag() {
        let m = symlink(app());
        let resp = m.call(request("GET", "/v1/a/c/s", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let resp = m.call(request("GET", "/v1/a/c/bad", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(resp.headers()["content-location"], "/v1/a/c/t");
        assert_eq!(body_of(resp).await, format!("Object Etag '{TARGET_ETAG_HEX}' does not match X-Symlink-Target-Etag header '0123'"));
    }

    #[tokio::test]
    async fn a_link_to_another_account_and_a_missing_target() {
        let next = app();
        let m = symlink(next.clone());
        let resp = m.call(request("GET", "/v1/b/c/x", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(next.seen()[1].uri, "/v1/a/c/t");
        // A link to nowhere: the 404, saying where it looked.
        let next = Recorder::new(|seen: &Seen| match seen.uri.as_str() {
            "/v1/a/c/l" => response(StatusCode::OK, &[(SYSMETA_TARGET, "c/gone%20away")], ""),
            _ => response(StatusCode::NOT_FOUND, &[], ""),
        });
        let resp = symlink(next).call(request("GET", "/v1/a/c/l", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.headers()["content-location"], "/v1/a/c/gone%20away");
    }

    #[tokio::test]
    async fn symlink_get_reads_the_link_itself() {
        let next = app();
        let resp = symlink(next.clone()).call(request("HEAD", "/v1/a/c/s?symlink=get", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[TARGET], "c/t");
        assert_eq!(resp.headers()[TARGET_ETAG], TARGET_ETAG_HEX);
        assert_eq!(resp.headers()[TARGET_BYTES], "5");
        assert!(!resp.headers().contains_key(SYSMETA_TARGET));
        assert_eq!(next.seen().len(), 1);
    }

    #[tokio::test]
    async fn a_dynamic_link_put_is_stored_with_sysmeta_and_its_listing_etag() {
        let next = app();
        let m = symlink(next.clone());
        let resp = m.call(request("PUT", "/v1/a/d/new", &[(TARGET, "c/dealde%2Fl04 011e%204c8df/x.png")], "")).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let put = &next.seen()[0];
        let target = "c/dealde/l04%20011e%204c8df/x.png";
        assert_eq!(put.headers[SYSMETA_TARGET], target);
        assert!(!put.headers.contains_key(TARGET));
        assert_eq!(put.headers["content-type"], "application/symlink");
        assert_eq!(put.headers["content-length"], "0");
        assert_eq!(
            put.headers["x-object-sysmeta-container-update-override-etag"],
            format!("{MD5_OF_EMPTY_STRING}; symlink_target={target}").as_str()
        );
        // Into another account.
        m.call(request("PUT", "/v1/b/d/new", &[(TARGET, "c/t"), (TARGET_ACCOUNT, "a")], "")).await;
        let put = &next.seen()[1];
        assert_eq!(put.headers[SYSMETA_TARGET_ACCOUNT], "a");
        assert_eq!(
            put.headers["x-object-sysmeta-container-update-override-etag"],
            format!("{MD5_OF_EMPTY_STRING}; symlink_target=c/t; symlink_target_account=a").as_str()
        );
    }

    #[tokio::test]
    async fn a_static_link_put_checks_the_target_and_keeps_its_size() {
        let next = app();
        let m = symlink(next.clone());
        let resp = m.call(request("PUT", "/v1/a/d/new", &[(TARGET, "c/t"), (TARGET_ETAG, &format!("\"{TARGET_ETAG_HEX}\""))], "")).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        let seen = next.seen();
        assert_eq!((seen[0].method.as_str(), seen[0].uri.as_str(), seen[0].source), ("HEAD", "/v1/a/c/t", Some("SYM")));
        let put = &seen[1];
        assert_eq!(put.headers[SYSMETA_TARGET_ETAG], TARGET_ETAG_HEX);
        assert_eq!(put.headers[SYSMETA_TARGET_BYTES], "5");
        assert_eq!(put.headers["content-type"], "text/plain");
        assert_eq!(
            put.headers["x-object-sysmeta-container-update-override-etag"],
            format!("{MD5_OF_EMPTY_STRING}; symlink_target=c/t; symlink_target_etag={TARGET_ETAG_HEX}; symlink_target_bytes=5").as_str()
        );
        // A wrong ETag, a missing target.
        let resp = m.call(request("PUT", "/v1/a/d/new", &[(TARGET, "c/t"), (TARGET_ETAG, "nope")], "")).await;
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(body_of(resp).await, format!("Object Etag '{TARGET_ETAG_HEX}' does not match X-Symlink-Target-Etag header 'nope'"));
        let resp = m.call(request("PUT", "/v1/a/d/new", &[(TARGET, "c/missing"), (TARGET_ETAG, "nope")], "")).await;
        assert_eq!(resp.status(), StatusCode::CONFLICT);
        assert_eq!(resp.headers()["content-location"], "/v1/a/c/missing");
        assert_eq!(body_of(resp).await, "X-Symlink-Target does not exist");
        // A static link to a dynamic link checks the link, not its target.
        let resp = m.call(request("PUT", "/v1/a/d/new", &[(TARGET, "c/l"), (TARGET_ETAG, MD5_OF_EMPTY_STRING)], "")).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        // Told by a trusted middleware: taken as given.
        let mut req = request("PUT", "/v1/a/d/new", &[(TARGET, "c/x"), (TARGET_ETAG, "abc"), (TARGET_BYTES, "7")], "");
        req.extensions_mut().insert(SymlinkOverride);
        let before = next.seen().len();
        assert_eq!(m.call(req).await.status(), StatusCode::CREATED);
        let seen = next.seen();
        assert_eq!(seen.len(), before + 1);
        assert_eq!(seen[before].headers[SYSMETA_TARGET_BYTES], "7");
    }

    #[tokio::test]
    async fn bad_link_puts_are_refused() {
        let next = app();
        let m = symlink(next.clone());
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, StatusCode, &'a str);
        let cases: &[Case] = &[
            (&[(TARGET, "c/t")], "body", StatusCode::BAD_REQUEST, "Symlink requests require a zero byte body"),
            (&[(TARGET, "justobject")], "", StatusCode::PRECONDITION_FAILED, TARGET_FORM),
            (&[(TARGET, "/c/t")], "", StatusCode::PRECONDITION_FAILED, TARGET_FORM),
            (&[(TARGET, "%2Fc/t")], "", StatusCode::PRECONDITION_FAILED, TARGET_FORM),
            (&[(TARGET, "d/me")], "", StatusCode::BAD_REQUEST, "Symlink cannot target itself"),
            (&[(TARGET, "c/t"), (TARGET_ACCOUNT, "a/b")], "", StatusCode::PRECONDITION_FAILED, "Account name cannot contain slashes"),
            (&[(TARGET, "c/t"), (TARGET_ETAG, "a;b")], "", StatusCode::BAD_REQUEST, "Bad X-Symlink-Target-Etag format"),
        ];
        for (headers, body, status, msg) in cases {
            let resp = m.call(request("PUT", "/v1/a/d/me", headers, body.to_string())).await;
            assert_eq!(resp.status(), *status, "{headers:?}");
            assert_eq!(body_of(resp).await, *msg);
        }
        assert!(next.seen().is_empty());
        let resp = m.call(request("POST", "/v1/a/c/t", &[(TARGET, "c/x")], "")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(resp).await, "A PUT request is required to set a symlink target");
    }

    #[tokio::test]
    async fn a_post_to_a_link_is_applied_and_redirected() {
        let next = app();
        let m = symlink(next.clone());
        let resp = m.call(request("POST", "/v1/a/c/s", &[("x-object-meta-a", "b")], "")).await;
        assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(resp.headers()["location"], "/v1/a/c/t");
        assert_eq!(resp.headers()[TARGET_ETAG], TARGET_ETAG_HEX);
        assert_eq!(next.seen()[0].method, Method::POST);
        let resp = m.call(request("POST", "/v1/b/c/x", &[], "")).await;
        assert_eq!(resp.headers()["location"], "/v1/a/c/t");
        // A plain object's POST is the app's answer.
        assert_eq!(m.call(request("POST", "/v1/a/c/t", &[], "")).await.status(), StatusCode::ACCEPTED);
    }

    #[tokio::test]
    async fn listings_show_where_links_point() {
        let listing = concat!(
            r#"[{"name": "l", "hash": "d41d8cd98f00b204e9800998ecf8427e; symlink_target=c/t", "bytes": 0}, "#,
            r#"{"name": "s", "hash": "d41d8cd98f00b204e9800998ecf8427e; slo_etag=abc; symlink_target=c/t; "#,
            r#"symlink_target_account=b; symlink_target_etag=e; symlink_target_bytes=5", "bytes": 0}, "#,
            r#"{"subdir": "x/"}, {"name": "plain", "hash": "e", "bytes": 1}]"#
        );
        let next = Recorder::new(move |_: &Seen| response(StatusCode::OK, &[("content-type", "application/json; charset=utf-8")], listing));
        let resp = symlink(next).call(request("GET", "/v1/AUTH_a/c?format=json", &[], "")).await;
        let len: usize = resp.headers()["content-length"].to_str().unwrap().parse().unwrap();
        let body = body_of(resp).await;
        assert_eq!(len, body.len());
        let items: Vec<Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(items[0]["hash"], MD5_OF_EMPTY_STRING);
        assert_eq!(items[0]["symlink_path"], "/v1/AUTH_a/c/t");
        assert!(items[0].get("symlink_etag").is_none());
        assert_eq!(items[1]["hash"], format!("{MD5_OF_EMPTY_STRING}; slo_etag=abc").as_str());
        assert_eq!(items[1]["symlink_path"], "/v1/b/c/t");
        assert_eq!(items[1]["symlink_etag"], "e");
        assert_eq!(items[1]["symlink_bytes"], 5);
        assert_eq!(items[2]["subdir"], "x/");
        assert_eq!(items[3]["hash"], "e");
    }

    #[tokio::test]
    async fn other_requests_pass_untouched() {
        let next = app();
        let m = symlink(next.clone());
        assert_eq!(m.call(request("DELETE", "/v1/a/c/l", &[], "")).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(m.call(request("PUT", "/v1/a/c/plain", &[], "x")).await.status(), StatusCode::CREATED);
        assert_eq!(m.call(request("GET", "/v1/a", &[], "")).await.status(), StatusCode::NOT_FOUND);
        let seen = next.seen();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1].body, "x");
        assert!(!seen[1].headers.contains_key("x-object-sysmeta-container-update-override-etag"));
    }
}
