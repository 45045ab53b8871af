//! Swift's `object_versioning` (`X-Versions-Enabled`). It is not a paste
//! entry point of its own: the `versioned_writes` filter puts it in the
//! pipeline when `allow_object_versioning = true`, as Swift does.
//!
//! A container with versioning enabled keeps every version of its objects
//! in a hidden container of the same account, named in the reserved
//! namespace: `\0versions\0<container>`. Each version is the object
//! `\0<name>\0<inverted timestamp>` there (inverted so a listing shows the
//! newest first), and the object in the user's container is a static
//! symlink to its newest version (made by the `symlink` middleware to the
//! right, marked with `X-Object-Sysmeta-Versions-Symlink`). A `DELETE`
//! leaves a delete marker (a zero-byte version of content type
//! [`DELETE_MARKER_CONTENT_TYPE`]).
//!
//! Requests may name a version with `?version-id=<timestamp>` (or `null`,
//! the object written while versioning was off); `GET <container>?versions`
//! lists all versions. Subrequests into the hidden container carry
//! `X-Backend-Allow-Reserved-Names: true`, which clients cannot send (the
//! gatekeeper strips `X-Backend-*`), so clients never reach it directly.

use super::{info, subrequest, AllowAll, AuthRequest, Authorization, AuthorizeHook, BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use common::backend_headers::BACKEND_ALLOW_RESERVED_NAMES;
use common::config::Section;
use common::http::{self as h, Body};
use common::timestamp::Timestamp;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `swift.source` of the middleware's subrequests.
const SOURCE: &str = "OV";
const RESERVED: char = '\0';

/// The content type of a delete marker.
pub const DELETE_MARKER_CONTENT_TYPE: &str = "application/x-deleted;swift_versions_deleted=1";
const CLIENT_VERSIONS_ENABLED: &str = "x-versions-enabled";
const SYSMETA_VERSIONS_ENABLED: &str = "x-container-sysmeta-versions-enabled";
const SYSMETA_VERSIONS_CONT: &str = "x-container-sysmeta-versions-container";
const SYSMETA_VERSIONS_SYMLINK: &str = "x-object-sysmeta-versions-symlink";
/// The legacy `versioned_writes` location (refused together with this).
const SYSMETA_LEGACY_LOC: &str = "x-container-sysmeta-versions-location";
// The symlink middleware's headers.
const SYMLINK_TARGET: &str = "x-symlink-target";
const SYMLINK_TARGET_ACCOUNT: &str = "x-symlink-target-account";
const SYSMETA_SYMLINK_TARGET_ETAG: &str = "x-object-sysmeta-symlink-target-etag";
const SYSMETA_SYMLINK_TARGET_BYTES: &str = "x-object-sysmeta-symlink-target-bytes";
const SYSMETA_SYMLOOP_EXTEND: &str = "x-object-sysmeta-symloop-extend";
const SYSMETA_ALLOW_RESERVED_NAMES: &str = "x-object-sysmeta-allow-reserved-names";

pub struct ObjectVersioning {
    max_file_size: u64,
    account_listing_limit: usize,
    next: Next,
}

/// The pipeline to the right of `versioned_writes` with object versioning
/// in front of it.
pub fn wrap(_section: &Section, proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    build.capabilities.insert("object_versioning".into(), serde_json::json!({}));
    Ok(Arc::new(ObjectVersioning {
        max_file_size: proxy.swift.constraints.max_file_size,
        account_listing_limit: proxy.swift.constraints.account_listing_limit as usize,
        next,
    }))
}

/// `\0<part>\0<part>...`: Swift's `get_reserved_name`.
pub fn reserved_name(parts: &[&str]) -> String {
    let mut s = String::new();
    for p in parts {
        s.push(RESERVED);
        s.push_str(p);
    }
    s
}

/// The parts of a reserved name; `None` for a user name.
pub fn split_reserved_name(name: &str) -> Option<Vec<&str>> {
    name.strip_prefix(RESERVED).map(|rest| rest.split(RESERVED).collect())
}

/// The hidden container of `container`'s versions.
pub fn versions_container_name(container: &str) -> String {
    reserved_name(&["versions", container])
}

/// The name, in the versions container, of `object` at `version_id`.
pub fn versions_object_name(object: &str, version_id: &Timestamp) -> String {
    reserved_name(&[object, &version_id.invert().internal()])
}

/// The user's object name and the version id of a version's name.
pub fn parse_versions_object_name(name: &str) -> Option<(String, String)> {
    match split_reserved_name(name)?.as_slice() {
        [object, inv] => Some((object.to_string(), Timestamp::parse(inv).ok()?.invert().internal())),
        _ => None,
    }
}

/// A version id of a timestamp: its internal form without offset.
fn timestamp_to_version(ts: &Timestamp) -> Timestamp {
    Timestamp::from_raw(ts.raw(), 0).unwrap_or(*ts)
}

fn utf8_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

fn true_header(headers: &HeaderMap, name: &str) -> bool {
    h::header_str(headers, name).and_then(common::config::parse_bool) == Some(true)
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_bytes(s.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    h::text(status, body)
}

fn unquote(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Swift's `_check_response_error`: a 404 becomes 412, other client
/// errors pass as they are, server errors become 503.
fn check_response(resp: Response<Body>) -> Result<Response<Body>, Response<Body>> {
    if resp.status().is_success() {
        Ok(resp)
    } else if resp.status() == StatusCode::NOT_FOUND {
        Err(text(StatusCode::PRECONDITION_FAILED, "Precondition Failed"))
    } else if resp.status().is_client_error() {
        Err(resp)
    } else {
        Err(text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"))
    }
}

fn versions_container_missing() -> Response<Body> {
    text(StatusCode::INTERNAL_SERVER_ERROR, "The versions container does not exist. You may want to re-enable object versioning.")
}

/// A client path split as Swift's `split_path(2, 4, True)`, unquoted.
struct Path {
    version: String,
    account: String,
    container: Option<String>,
    object: Option<String>,
}

impl Path {
    /// `None` for a path with reserved names: a client's request passes on
    /// to be refused, and the middleware's own subrequests never come back
    /// through it.
    fn parse(raw: &str) -> Option<Path> {
        let path = common::path::unquote(raw).ok()?;
        let segs = common::path::split_path(&path, 2, 4, true).ok()?;
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        Some(Path { version: segs[0].clone()?, account: segs[1].clone()?, container: nonempty(&segs[2]), object: nonempty(&segs[3]) })
    }
}

impl Handler for ObjectVersioning {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let Some(path) = Path::parse(req.uri().path()) else { return self.next.call(req).await };
            if path.version != "v1" && path.version != "v1.0" {
                return self.next.call(req).await;
            }
            let result = match (&path.container, &path.object) {
                (None, _) if req.method() == Method::GET => self.list_containers(req, &path).await,
                (None, _) => Ok(self.next.call(req).await),
                (Some(c), None) => {
                    let c = c.clone();
                    self.container_request(req, &path, &c).await
                }
                (Some(c), Some(o)) => {
                    let (c, o) = (c.clone(), o.clone());
                    self.object_request(req, &path, &c, &o).await
                }
            };
            result.unwrap_or_else(|resp| resp)
        })
    }
}

/// What an object request acts on.
struct Obj<'a> {
    version: &'a str,
    account: &'a str,
    container: &'a str,
    object: &'a str,
    /// The hidden versions container, if the container was ever versioned.
    versions: Option<String>,
    enabled: bool,
    write_acl: Option<String>,
}

impl Obj<'_> {
    fn object_path(&self) -> String {
        format!("/{}/{}/{}/{}", self.version, self.account, self.container, self.object)
    }

    fn version_path(&self, name: &str) -> String {
        format!("/{}/{}/{}/{}", self.version, self.account, self.versions.as_deref().unwrap_or_default(), name)
    }
}

impl ObjectVersioning {
    /// A subrequest on the middleware's own authority, into reserved names.
    async fn call_as_self(
        &self,
        parts: &Parts,
        method: Method,
        uri: &str,
        mut headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Body>, Response<Body>> {
        headers.insert(BACKEND_ALLOW_RESERVED_NAMES, HeaderValue::from_static("true"));
        let mut req = subrequest(parts, method, uri, headers, body, SOURCE)?;
        req.extensions_mut().insert(AuthorizeHook(Arc::new(AllowAll)));
        Ok(self.next.call(req).await)
    }

    // ----- accounts -----

    /// Swift's `AccountContext.list_containers`: a container's versions
    /// count in its listed bytes, and a versions container whose container
    /// is gone shows as a container of no objects, so its owner can see
    /// and clean up what it still stores.
    async fn list_containers(&self, req: Request<Body>, path: &Path) -> Result<Response<Body>, Response<Body>> {
        let (parts, body) = req.into_parts();
        let resp = self.next.call(Request::from_parts(parts.clone(), body)).await;
        if !resp.status().is_success() {
            return Ok(resp);
        }
        let (mut rparts, rbody) = resp.into_parts();
        let bytes = rbody.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        let Ok(mut listing) = serde_json::from_slice::<Vec<Map<String, Value>>>(&bytes) else {
            return Ok(Response::from_parts(rparts, h::full(bytes)));
        };
        // The same page of the hidden versions containers.
        let as_versions = |name: &str| (!name.contains(RESERVED)).then(|| versions_container_name(name));
        let mut query = Vec::new();
        let mut has_prefix = false;
        for kv in parts.uri.query().unwrap_or_default().split('&').filter(|kv| !kv.is_empty()) {
            let (k, _) = kv.split_once('=').unwrap_or((kv, ""));
            let key = unquote(k);
            let value = super::query_param(Some(kv), &key).unwrap_or_default();
            let value = match key.as_str() {
                "prefix" => {
                    has_prefix = true;
                    as_versions(&value).unwrap_or(value)
                }
                "marker" | "end_marker" => as_versions(&value).unwrap_or(value),
                _ => value,
            };
            query.push(format!("{}={}", h::quote_path(&key), h::quote_path(&value)));
        }
        if !has_prefix {
            query.push(format!("prefix={}", h::quote_path(&reserved_name(&["versions"]))));
        }
        let uri = format!("{}?{}", h::quote_path(&format!("/{}/{}", path.version, path.account)), query.join("&"));
        let vresp = self.call_as_self(&parts, Method::GET, &uri, HeaderMap::new(), h::empty()).await?;
        let vbytes = if vresp.status().is_success() {
            vresp.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default()
        } else {
            Default::default()
        };
        let mut versions: std::collections::BTreeMap<String, Map<String, Value>> =
            serde_json::from_slice::<Vec<Map<String, Value>>>(&vbytes)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|item| {
                    let name = item.get("name")?.as_str()?;
                    let container = match split_reserved_name(name)?.as_slice() {
                        ["versions", container] => container.to_string(),
                        _ => return None,
                    };
                    Some((container, item))
                })
                .collect();
        if versions.is_empty() {
            return Ok(Response::from_parts(rparts, h::full(bytes)));
        }
        let as_u64 = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
        for item in listing.iter_mut() {
            let Some(name) = item.get("name").and_then(Value::as_str) else { continue };
            if let Some(v) = versions.remove(name) {
                let total = as_u64(item.get("bytes")) + as_u64(v.get("bytes"));
                item.insert("bytes".into(), Value::from(total));
            }
        }
        for (name, mut item) in versions {
            item.insert("name".into(), Value::String(name));
            item.insert("count".into(), Value::from(0));
            listing.push(item);
        }
        let key = |item: &Map<String, Value>| {
            item.get("subdir").or_else(|| item.get("name")).and_then(Value::as_str).unwrap_or_default().to_string()
        };
        listing.sort_by_key(key);
        if super::query_param(parts.uri.query(), "reverse").as_deref().and_then(common::config::parse_bool) == Some(true) {
            listing.reverse();
        }
        let limit = super::query_param(parts.uri.query(), "limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(usize::MAX);
        listing.truncate(limit.min(self.account_listing_limit));
        let body = serde_json::to_vec(&listing).unwrap_or_default();
        rparts.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        Ok(Response::from_parts(rparts, h::full(body)))
    }

    // ----- containers -----

    async fn container_request(&self, req: Request<Body>, path: &Path, container: &str) -> Result<Response<Body>, Response<Body>> {
        let method = req.method().clone();
        if matches!(method, Method::PUT | Method::POST) && req.headers().contains_key(CLIENT_VERSIONS_ENABLED) {
            return self.enable_versioning(req, path, container).await;
        }
        if method == Method::DELETE {
            return self.container_delete(req, path).await;
        }
        let (parts, body) = req.into_parts();
        let listing_versions = method == Method::GET && super::query_param(parts.uri.query(), "versions").is_some();
        let resp = self.next.call(Request::from_parts(parts.clone(), body)).await;
        let (mut rparts, rbody) = resp.into_parts();
        if let Some(v) = rparts.headers.get(SYSMETA_VERSIONS_ENABLED).cloned() {
            rparts.headers.insert(CLIENT_VERSIONS_ENABLED, v);
        }
        let location = utf8_header(&rparts.headers, SYSMETA_VERSIONS_CONT).map(unquote).filter(|l| !l.is_empty());
        if let Some(location) = &location {
            // The versions' bytes count as the container's.
            if let Some(used) = h::header_str(&rparts.headers, "x-container-bytes-used").and_then(|v| v.parse::<u64>().ok()) {
                let vpath = h::quote_path(&format!("/{}/{}/{location}", path.version, path.account));
                if let Ok(vresp) = self.call_as_self(&parts, Method::HEAD, &vpath, HeaderMap::new(), h::empty()).await {
                    if vresp.status().is_success() {
                        let more =
                            h::header_str(vresp.headers(), "x-container-bytes-used").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
                        rparts.headers.insert("x-container-bytes-used", HeaderValue::from(used + more));
                    }
                }
            }
        }
        if !(rparts.status.is_success() && method == Method::GET) {
            return Ok(Response::from_parts(rparts, rbody));
        }
        let location = location.unwrap_or_else(|| versions_container_name(container));
        let bytes = rbody.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        let Ok(mut listing) = serde_json::from_slice::<Vec<Map<String, Value>>>(&bytes) else {
            return Ok(Response::from_parts(rparts, h::full(bytes)));
        };
        for item in listing.iter_mut() {
            let (Some(sp), Some(etag), Some(sbytes)) = (
                item.get("symlink_path").and_then(Value::as_str).map(str::to_string),
                item.get("symlink_etag").and_then(Value::as_str).map(str::to_string),
                item.get("symlink_bytes").cloned(),
            ) else {
                continue;
            };
            let sp = unquote(&sp);
            let Ok(segs) = common::path::split_path(&sp, 4, 4, true) else { continue };
            let (tgt_account, tgt_container, tgt_obj) =
                (segs[1].clone().unwrap_or_default(), segs[2].clone().unwrap_or_default(), segs[3].clone().unwrap_or_default());
            if tgt_container != location {
                continue;
            }
            let hash = item.get("hash").and_then(Value::as_str).unwrap_or_default().to_string();
            let params: String = hash.split(';').skip(1).map(|p| format!(";{p}")).collect();
            item.insert("bytes".into(), Value::from(sbytes.as_u64().or_else(|| sbytes.as_str().and_then(|s| s.parse().ok())).unwrap_or(0)));
            item.insert("version_symlink".into(), Value::Bool(true));
            item.insert("hash".into(), Value::String(format!("{etag}{params}")));
            item.remove("symlink_etag");
            item.remove("symlink_bytes");
            if let Some((name, version_id)) = parse_versions_object_name(&tgt_obj) {
                if !listing_versions {
                    let sp = format!("{}?version-id={version_id}", h::quote_path(&format!("/v1/{tgt_account}/{container}/{name}")));
                    item.insert("symlink_path".into(), Value::String(sp));
                }
            }
        }
        if listing_versions {
            // Only JSON (Swift's `_list_versions`), and listing_formats
            // leaves it as it is.
            let mut resp = self.list_versions(&parts, path, &location, listing, rparts).await?;
            resp.extensions_mut().insert(super::ListingAsIs);
            return Ok(resp);
        }
        let body = serde_json::to_vec(&listing).unwrap_or_default();
        rparts.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        Ok(Response::from_parts(rparts, h::full(body)))
    }

    async fn enable_versioning(&self, mut req: Request<Body>, path: &Path, container: &str) -> Result<Response<Body>, Response<Body>> {
        let (parts, body) = req.into_parts();
        let cpath = format!("/{}/{}/{container}", path.version, path.account);
        let cinfo = info(&self.next, &parts, &cpath, SOURCE).await;
        let exists = cinfo.is_some();
        let cinfo = cinfo.unwrap_or_default();
        if utf8_header(&cinfo, SYSMETA_LEGACY_LOC).is_some_and(|v| !v.is_empty())
            || utf8_header(&cinfo, "x-versions-location").is_some_and(|v| !v.is_empty())
        {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "Cannot enable object versioning on a container that is already using the legacy versioned writes feature.",
            ));
        }
        if utf8_header(&cinfo, "x-container-sync-to").is_some_and(|v| !v.is_empty()) {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "Cannot enable object versioning on a container configured as source of container syncing.",
            ));
        }
        req = Request::from_parts(parts, body);
        let enabled = true_header(req.headers(), CLIENT_VERSIONS_ENABLED);
        req.headers_mut().insert(SYSMETA_VERSIONS_ENABLED, HeaderValue::from_static(if enabled { "True" } else { "False" }));
        let mut created: Option<String> = None;
        if enabled {
            let mut hdrs = HeaderMap::new();
            if exists {
                if let Some(p) = cinfo.get("x-storage-policy") {
                    hdrs.insert("x-storage-policy", p.clone());
                }
            } else if req.method() == Method::PUT {
                if let Some(p) = req.headers().get("x-storage-policy") {
                    hdrs.insert("x-storage-policy", p.clone());
                }
            }
            let vcont = versions_container_name(container);
            let vpath = h::quote_path(&format!("/{}/{}/{vcont}", path.version, path.account));
            let (parts, body) = req.into_parts();
            let resp = self.call_as_self(&parts, Method::PUT, &vpath, hdrs, h::empty()).await?;
            req = Request::from_parts(parts, body);
            if resp.status().is_success() || resp.status() == StatusCode::CONFLICT {
                req.headers_mut().insert(SYSMETA_VERSIONS_CONT, value(&h::quote_path(&vcont)));
                created = Some(vpath);
            } else {
                return Err(text(StatusCode::INTERNAL_SERVER_ERROR, "Error enabling object versioning"));
            }
        }
        let parts_copy = {
            let (parts, body) = req.into_parts();
            let copy = parts.clone();
            req = Request::from_parts(parts, body);
            copy
        };
        let mut resp = self.next.call(req).await;
        if !resp.status().is_success() {
            if let Some(vpath) = created {
                let _ = self.call_as_self(&parts_copy, Method::DELETE, &vpath, HeaderMap::new(), h::empty()).await;
            }
        }
        if let Some(v) = resp.headers().get(SYSMETA_VERSIONS_ENABLED).cloned() {
            resp.headers_mut().insert(CLIENT_VERSIONS_ENABLED, v);
        }
        Ok(resp)
    }

    /// A versioned container goes only with its (empty) versions.
    async fn container_delete(&self, req: Request<Body>, path: &Path) -> Result<Response<Body>, Response<Body>> {
        let (parts, body) = req.into_parts();
        let container = path.container.as_deref().unwrap_or_default();
        let cinfo = info(&self.next, &parts, &format!("/{}/{}/{container}", path.version, path.account), SOURCE).await.unwrap_or_default();
        let vcont = utf8_header(&cinfo, SYSMETA_VERSIONS_CONT).map(unquote).unwrap_or_default();
        if !vcont.is_empty() {
            let vpath = h::quote_path(&format!("/v1/{}/{vcont}", path.account));
            let vresp = self.call_as_self(&parts, Method::HEAD, &vpath, HeaderMap::new(), h::empty()).await?;
            let count = h::header_str(vresp.headers(), "x-container-object-count").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            if vresp.status().is_success() && count > 0 {
                return Err(text(StatusCode::CONFLICT, "Delete all versions before deleting container."));
            } else if !vresp.status().is_success() && vresp.status() != StatusCode::NOT_FOUND {
                return Err(text(StatusCode::INTERNAL_SERVER_ERROR, "Error deleting versioned container"));
            }
            let dresp = self.call_as_self(&parts, Method::DELETE, &vpath, HeaderMap::new(), h::empty()).await?;
            if !dresp.status().is_success() && dresp.status() != StatusCode::NOT_FOUND {
                return Err(text(StatusCode::INTERNAL_SERVER_ERROR, "Error deleting versioned container"));
            }
        }
        Ok(self.next.call(Request::from_parts(parts, body)).await)
    }

    /// `GET <container>?versions`: the container's current objects merged
    /// with every version in the hidden container, as JSON.
    async fn list_versions(
        &self,
        parts: &Parts,
        path: &Path,
        location: &str,
        primary: Vec<Map<String, Value>>,
        mut rparts: http::response::Parts,
    ) -> Result<Response<Body>, Response<Body>> {
        if let Some(accept) = parts.headers.get(http::header::ACCEPT).and_then(|v| std::str::from_utf8(v.as_bytes()).ok()) {
            if common::listing_format::best_match(accept, &["application/json"]).is_err() {
                return Err(text(StatusCode::NOT_ACCEPTABLE, "Not Acceptable"));
            }
        }
        let q = parts.uri.query();
        let param = |k: &str| super::query_param(q, k);
        let mut marker = param("marker");
        if let Some(m) = &marker {
            marker = Some(match param("version_marker").as_deref() {
                None => format!("{}:", reserved_name(&[m, ""])),
                Some("null") => reserved_name(&[m, ""]),
                Some(v) => match Timestamp::parse(v) {
                    Ok(ts) => versions_object_name(m, &ts),
                    Err(_) => return Err(text(StatusCode::BAD_REQUEST, "invalid version_marker param")),
                },
            });
        } else if param("version_marker").is_some() {
            return Err(text(StatusCode::BAD_REQUEST, "version_marker param requires marker"));
        }
        let delim = param("delimiter").unwrap_or_default();
        if delim.chars().any(|c| "0123456789.\0".contains(c)) {
            return Err(text(StatusCode::BAD_REQUEST, "invalid delimiter param"));
        }
        let reverse = param("reverse").and_then(|v| common::config::parse_bool(&v)) == Some(true);
        let limit = param("limit").and_then(|v| v.parse::<usize>().ok()).unwrap_or(10_000).min(10_000);

        let mut null_listing = Vec::new();
        let mut subdirs: std::collections::BTreeSet<String> = Default::default();
        let mut current: std::collections::HashMap<String, Map<String, Value>> = Default::default();
        let mut latest: std::collections::HashSet<String> = Default::default();
        for mut item in primary {
            if let Some(s) = item.get("subdir").and_then(Value::as_str) {
                subdirs.insert(s.to_string());
            } else if item.get("version_symlink").is_some() {
                let sp = unquote(item.get("symlink_path").and_then(Value::as_str).unwrap_or_default());
                current.insert(sp, item);
            } else {
                item.insert("version_id".into(), Value::String("null".into()));
                item.insert("is_latest".into(), Value::Bool(true));
                latest.insert(item.get("name").and_then(Value::as_str).unwrap_or_default().to_string());
                null_listing.push(item);
            }
        }
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let mut query = vec!["format=json".to_string()];
        let prefix = param("prefix").map(|p| reserved_name(&[&p]));
        for (k, v) in [
            ("prefix", prefix),
            ("marker", marker),
            ("limit", param("limit")),
            ("delimiter", param("delimiter")),
            ("reverse", param("reverse")),
        ] {
            query.push(format!("{k}={}", enc(&v.unwrap_or_default())));
        }
        let vuri = format!("{}?{}", h::quote_path(&format!("/v1/{}/{location}", path.account)), query.join("&"));
        let vresp = self.call_as_self(parts, Method::GET, &vuri, HeaderMap::new(), h::empty()).await?;
        let mut versions_listing = Vec::new();
        if vresp.status().is_success() {
            let body = vresp.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let listing: Vec<Map<String, Value>> = serde_json::from_slice(&body).unwrap_or_default();
            for mut item in listing {
                if let Some(s) = item.get("subdir").and_then(Value::as_str) {
                    if let Some(parts) = split_reserved_name(s) {
                        subdirs.insert(parts[0].to_string());
                    }
                    continue;
                }
                let vname = item.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
                let Some((name, version_id)) = parse_versions_object_name(&vname) else { continue };
                let vpath = format!("/v1/{}/{location}/{vname}", path.account);
                let is_marker = item.get("content_type").and_then(Value::as_str) == Some(DELETE_MARKER_CONTENT_TYPE);
                let is_latest = if current.remove(&vpath).is_some() || (is_marker && !latest.contains(&name)) {
                    latest.insert(name.clone());
                    true
                } else {
                    false
                };
                item.insert("is_latest".into(), Value::Bool(is_latest));
                item.insert("name".into(), Value::String(name));
                item.insert("version_id".into(), Value::String(version_id));
                versions_listing.push(item);
            }
        } else if vresp.status() != StatusCode::NOT_FOUND {
            return Ok(vresp);
        }
        // Current objects whose version is gone still show.
        let mut broken = Vec::new();
        for item in current.values() {
            let sp = unquote(item.get("symlink_path").and_then(Value::as_str).unwrap_or_default());
            let Some(linked) = sp.splitn(5, '/').nth(4) else { continue };
            let Some((name, version_id)) = parse_versions_object_name(linked) else { continue };
            let mut b = Map::new();
            b.insert("name".into(), Value::String(name));
            b.insert("is_latest".into(), Value::Bool(true));
            b.insert("version_id".into(), Value::String(version_id));
            for k in ["content_type", "bytes", "hash", "last_modified"] {
                b.insert(k.into(), item.get(k).cloned().unwrap_or(Value::Null));
            }
            broken.push(b);
        }
        let mut all: Vec<Map<String, Value>> = null_listing.into_iter().chain(versions_listing).chain(broken).collect();
        all.extend(subdirs.into_iter().map(|s| {
            let mut m = Map::new();
            m.insert("subdir".into(), Value::String(s));
            m
        }));
        let key =
            |m: &Map<String, Value>| m.get("subdir").or_else(|| m.get("name")).and_then(Value::as_str).unwrap_or_default().to_string();
        // Stable sorts by name keep versions newest first within a name,
        // in reverse order too (Swift reverses the names only).
        if reverse {
            all.sort_by_key(|m| std::cmp::Reverse(key(m)));
        } else {
            all.sort_by_key(key);
        }
        all.truncate(limit);
        let body = serde_json::to_vec(&all).unwrap_or_default();
        rparts.headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        rparts.headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        rparts.status = StatusCode::OK;
        Ok(Response::from_parts(rparts, h::full(body)))
    }

    // ----- objects -----

    async fn object_request(
        &self,
        req: Request<Body>,
        path: &Path,
        container: &str,
        object: &str,
    ) -> Result<Response<Body>, Response<Body>> {
        let (parts, body) = req.into_parts();
        let cinfo = info(&self.next, &parts, &format!("/{}/{}/{container}", path.version, path.account), SOURCE).await.unwrap_or_default();
        let versions = utf8_header(&cinfo, SYSMETA_VERSIONS_CONT)
            .map(|v| unquote(v).split('/').next().unwrap_or_default().to_string())
            .filter(|v| !v.is_empty());
        let enabled = h::header_str(&cinfo, SYSMETA_VERSIONS_ENABLED).and_then(common::config::parse_bool) == Some(true);
        let o = Obj {
            version: &path.version,
            account: &path.account,
            container,
            object,
            versions,
            enabled,
            write_acl: utf8_header(&cinfo, "x-container-write").map(str::to_string),
        };
        let req = Request::from_parts(parts, body);
        if let Some(version_id) = super::query_param(req.uri().query(), "version-id").filter(|v| !v.is_empty()) {
            return self.with_version_id(req, &o, &version_id).await;
        }
        if o.versions.is_none() {
            return Ok(self.next.call(req).await);
        }
        match *req.method() {
            Method::PUT if o.enabled => self.handle_put(req, &o).await,
            Method::DELETE if o.enabled => self.handle_delete(req, &o).await,
            Method::PUT | Method::DELETE => Ok(self.next.call(req).await),
            Method::POST => self.handle_post(req, &o).await,
            _ => Ok(self.get_head(req, &o).await),
        }
    }

    async fn authorize_write(&self, parts: &Parts, o: &Obj<'_>) -> Result<(), Response<Body>> {
        let Some(hook) = parts.extensions.get::<AuthorizeHook>() else { return Ok(()) };
        let areq = AuthRequest {
            method: &parts.method,
            account: o.account,
            container: Some(o.container),
            object: Some(o.object),
            acl: o.write_acl.as_deref(),
            headers: &parts.headers,
        };
        match hook.0.authorize(&areq).await {
            Authorization::Allow { .. } => Ok(()),
            Authorization::Deny(resp) => Err(resp),
        }
    }

    /// Swift's `_copy_current`: an object written while versioning was off
    /// becomes a version before it is replaced.
    async fn copy_current(&self, parts: &Parts, o: &Obj<'_>) -> Result<(), Response<Body>> {
        self.authorize_write(parts, o).await?;
        let mut headers = HeaderMap::new();
        headers.insert("x-newest", HeaderValue::from_static("True"));
        let uri = format!("{}?symlink=get", h::quote_path(&o.object_path()));
        let source = self.call_as_self(parts, Method::GET, &uri, headers, h::empty()).await?;
        if source.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let source = check_response(source)?;
        if true_header(source.headers(), SYSMETA_VERSIONS_SYMLINK) {
            return Ok(());
        }
        let length = h::header_str(source.headers(), "content-length").and_then(|v| v.trim().parse::<u64>().ok());
        if length.is_none_or(|n| n > self.max_file_size) {
            return Err(text(StatusCode::PAYLOAD_TOO_LARGE, "Your request is too large."));
        }
        let sh = source.headers();
        let ts = h::header_str(sh, "x-backend-timestamp")
            .or_else(|| h::header_str(sh, "x-timestamp"))
            .and_then(|v| Timestamp::parse(v).ok())
            .or_else(|| {
                h::header_str(sh, "last-modified")
                    .and_then(common::timestamp::parse_http_date)
                    .and_then(|s| Timestamp::from_secs_f64(s as f64).ok())
            })
            .unwrap_or_else(Timestamp::now);
        let dest = o.version_path(&versions_object_name(o.object, &timestamp_to_version(&ts)));
        let (sparts, sbody) = source.into_parts();
        let mut headers = HeaderMap::new();
        for (name, value) in &sparts.headers {
            let skip =
                ["x-timestamp", "date", "last-modified", "x-trans-id", "x-openstack-request-id", "accept-ranges", "x-backend-timestamp"];
            if !skip.contains(&name.as_str()) {
                headers.append(name.clone(), value.clone());
            }
        }
        if let Some(size) = h::header_str(&sparts.headers, "x-object-sysmeta-slo-size").map(str::to_string) {
            let ct = h::header_str(&headers, "content-type").unwrap_or_default();
            let ct = ct.split(";swift_bytes=").next().unwrap_or_default().to_string();
            headers.insert(http::header::CONTENT_TYPE, value(&format!("{ct};swift_bytes={size}")));
        }
        let resp = self.call_as_self(parts, Method::PUT, &h::quote_path(&dest), headers, sbody).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(versions_container_missing());
        }
        check_response(resp).map(|_| ())
    }

    /// The client's data becomes a new version; the object becomes a link
    /// to it.
    async fn handle_put(&self, req: Request<Body>, o: &Obj<'_>) -> Result<Response<Body>, Response<Body>> {
        let (parts, body) = req.into_parts();
        self.copy_current(&parts, o).await?;
        let ts = h::header_str(&parts.headers, "x-timestamp").and_then(|v| Timestamp::parse(v).ok()).unwrap_or_else(Timestamp::now);
        let version_id = timestamp_to_version(&ts);
        let vname = versions_object_name(o.object, &version_id);
        let mut headers = HeaderMap::new();
        for (name, value) in &parts.headers {
            if !matches!(name.as_str(), "x-delete-at" | "x-delete-after") {
                headers.append(name.clone(), value.clone());
            }
        }
        let counted = Arc::new(AtomicU64::new(0));
        let counter = counted.clone();
        let body = body
            .map_frame(move |f| {
                if let Some(d) = f.data_ref() {
                    counter.fetch_add(d.len() as u64, Ordering::Relaxed);
                }
                f
            })
            .boxed();
        let put = self.call_as_self(&parts, Method::PUT, &h::quote_path(&o.version_path(&vname)), headers.clone(), body).await?;
        if put.status() == StatusCode::NOT_FOUND {
            return Err(versions_container_missing());
        }
        let put = check_response(put)?;
        let etag = h::header_str(put.headers(), "etag").unwrap_or_default().trim_matches('"').to_string();
        let bytes = match h::header_str(&headers, "x-object-sysmeta-slo-size") {
            Some(s) => s.to_string(),
            None => counted.load(Ordering::Relaxed).to_string(),
        };
        let ct = h::header_str(&headers, "content-type")
            .unwrap_or("application/octet-stream")
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        // A content type the proxy guessed: ask the stored version's.
        let ct = if h::header_str(&headers, "content-type").is_none() || true_header(&headers, "x-detect-content-type") {
            let head =
                self.call_as_self(&parts, Method::HEAD, &h::quote_path(&o.version_path(&vname)), HeaderMap::new(), h::empty()).await?;
            h::header_str(head.headers(), "content-type").map(str::to_string).unwrap_or(ct)
        } else {
            ct
        };
        self.put_symlink(parts, o, &vname, &etag, &bytes, &ct, &version_id).await
    }

    /// Swift's `_put_symlink_to_version`.
    #[allow(clippy::too_many_arguments)]
    async fn put_symlink(
        &self,
        parts: Parts,
        o: &Obj<'_>,
        vname: &str,
        etag: &str,
        bytes: &str,
        content_type: &str,
        version_id: &Timestamp,
    ) -> Result<Response<Body>, Response<Body>> {
        let mut headers = parts.headers.clone();
        for name in [
            "etag",
            "x-if-delete-at",
            SYMLINK_TARGET_ACCOUNT,
            "x-object-manifest",
            "x-static-large-object",
            "x-object-sysmeta-slo-etag",
            "x-object-sysmeta-slo-size",
            "content-length",
            "transfer-encoding",
            "x-detect-content-type",
            "x-timestamp",
        ] {
            headers.remove(name);
        }
        headers.insert(SYSMETA_SYMLINK_TARGET_ETAG, value(etag));
        headers.insert(SYSMETA_SYMLINK_TARGET_BYTES, value(bytes));
        headers.insert(http::header::CONTENT_TYPE, value(content_type));
        headers.insert(SYMLINK_TARGET, value(&h::quote_path(&format!("{}/{vname}", o.versions.as_deref().unwrap_or_default()))));
        headers.insert(SYSMETA_VERSIONS_SYMLINK, HeaderValue::from_static("true"));
        headers.insert(SYSMETA_SYMLOOP_EXTEND, HeaderValue::from_static("true"));
        headers.insert(SYSMETA_ALLOW_RESERVED_NAMES, HeaderValue::from_static("true"));
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
        headers.insert(BACKEND_ALLOW_RESERVED_NAMES, HeaderValue::from_static("true"));
        // On the caller's own authority: this is the caller's write.
        let req = subrequest(&parts, Method::PUT, &h::quote_path(&o.object_path()), headers, h::empty(), SOURCE)?;
        let mut resp = self.next.call(req).await;
        resp.headers_mut().insert(http::header::ETAG, value(etag));
        resp.headers_mut().insert("x-object-version-id", value(&version_id.internal()));
        Ok(resp)
    }

    /// A delete leaves a delete marker as the newest version.
    async fn handle_delete(&self, req: Request<Body>, o: &Obj<'_>) -> Result<Response<Body>, Response<Body>> {
        let (parts, body) = req.into_parts();
        self.copy_current(&parts, o).await?;
        let ts = Timestamp::now();
        let marker = versions_object_name(o.object, &ts);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(DELETE_MARKER_CONTENT_TYPE));
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
        let mresp = self.call_as_self(&parts, Method::PUT, &h::quote_path(&o.version_path(&marker)), headers, h::empty()).await?;
        check_response(mresp)?;
        let mut resp = self.next.call(Request::from_parts(parts, body)).await;
        if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND {
            resp.headers_mut().insert("x-object-version-id", value(&ts.internal()));
        }
        Ok(resp)
    }

    /// A POST to the link goes to the version it names.
    async fn handle_post(&self, req: Request<Body>, o: &Obj<'_>) -> Result<Response<Body>, Response<Body>> {
        let (parts, body) = req.into_parts();
        let resp = self.next.call(Request::from_parts(parts.clone(), body)).await;
        if resp.status() != StatusCode::TEMPORARY_REDIRECT || !true_header(resp.headers(), SYSMETA_VERSIONS_SYMLINK) {
            return Ok(resp);
        }
        let loc = unquote(h::header_str(resp.headers(), "location").unwrap_or_default());
        let loc_path = loc.find("/v1/").map(|i| &loc[i..]).unwrap_or(&loc).to_string();
        let Ok(segs) = common::path::split_path(&loc_path, 4, 4, true) else { return Ok(resp) };
        if segs[1].as_deref() != Some(o.account) || segs[2] != o.versions {
            return Ok(resp);
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &parts.headers {
            if !matches!(name.as_str(), "x-delete-at" | "x-delete-after") {
                headers.append(name.clone(), value.clone());
            }
        }
        self.call_as_self(&parts, Method::POST, &h::quote_path(&loc_path), headers, h::empty()).await
    }

    /// GET/HEAD of the current object: which version it is.
    async fn get_head(&self, req: Request<Body>, o: &Obj<'_>) -> Response<Body> {
        let mut resp = self.next.call(req).await;
        let hm = resp.headers_mut();
        hm.insert("x-object-version-id", HeaderValue::from_static("null"));
        if let Some(loc) = utf8_header(hm, "content-location").map(unquote) {
            let p = loc.find("/v1/").map(|i| &loc[i..]).unwrap_or(&loc).to_string();
            if let Ok(segs) = common::path::split_path(&p, 4, 4, true) {
                if segs[1].as_deref() == Some(o.account) && segs[2] == o.versions {
                    if let Some((_, vid)) = segs[3].as_deref().and_then(parse_versions_object_name) {
                        hm.insert("x-object-version-id", value(&vid));
                        let cl = format!("{}?version-id={vid}", h::quote_path(&o.object_path()));
                        hm.insert("content-location", value(&cl));
                    }
                }
            }
        }
        if let Some(target) = utf8_header(hm, SYMLINK_TARGET).map(unquote).filter(|t| !t.is_empty()) {
            if let Some((cont, vobj)) = target.split_once('/') {
                if Some(cont) == o.versions.as_deref() {
                    if let Some((_, vid)) = parse_versions_object_name(vobj) {
                        hm.insert("x-object-version-id", value(&vid));
                        let t = format!("{}?version-id={vid}", h::quote_path(&format!("{}/{}", o.container, o.object)));
                        hm.insert(SYMLINK_TARGET, value(&t));
                    }
                }
            }
        }
        resp
    }

    // ----- ?version-id= -----

    async fn with_version_id(&self, req: Request<Body>, o: &Obj<'_>, version_id: &str) -> Result<Response<Body>, Response<Body>> {
        if *req.method() == Method::POST {
            return Err(text(StatusCode::BAD_REQUEST, "POST to a specific version is not allowed"));
        }
        if o.versions.is_none() && version_id != "null" {
            return Err(text(StatusCode::BAD_REQUEST, "version-aware operations require that the container is versioned"));
        }
        let vid = if version_id == "null" && *req.method() != Method::PUT {
            None
        } else {
            Some(Timestamp::parse(version_id).map_err(|_| text(StatusCode::BAD_REQUEST, "Invalid version parameter"))?)
        };
        if *req.method() == Method::OPTIONS {
            return Ok(self.next.call(req).await);
        }
        let (mut parts, body) = req.into_parts();
        // The version-id parameter goes no further.
        strip_query_param(&mut parts, "version-id");
        match (parts.method.clone(), vid) {
            (Method::DELETE, None) => Ok(self.next.call(Request::from_parts(parts, body)).await),
            (Method::DELETE, Some(vid)) => self.delete_version(parts, body, o, &vid).await,
            (Method::PUT, Some(vid)) => self.put_version(parts, o, &vid).await,
            (_, None) => {
                let mut resp = self.next.call(Request::from_parts(parts, body)).await;
                if resp.status().is_success() {
                    let loc = utf8_header(resp.headers(), "content-location").map(unquote).unwrap_or_default();
                    if loc.contains(&reserved_name(&["versions", ""])) {
                        return Err(text(StatusCode::NOT_FOUND, "Not Found"));
                    }
                    resp.headers_mut().insert("x-object-version-id", HeaderValue::from_static("null"));
                }
                Ok(resp)
            }
            (method, Some(vid)) => {
                let vpath = o.version_path(&versions_object_name(o.object, &vid));
                let uri = match parts.uri.query() {
                    Some(q) if !q.is_empty() => format!("{}?{q}", h::quote_path(&vpath)),
                    _ => h::quote_path(&vpath),
                };
                let mut req = Request::from_parts(parts, body);
                *req.uri_mut() = uri.parse().map_err(|_| text(StatusCode::BAD_REQUEST, "Bad path"))?;
                req.headers_mut().insert(BACKEND_ALLOW_RESERVED_NAMES, HeaderValue::from_static("true"));
                let mut resp = self.next.call(req).await;
                let vid_s = vid.internal();
                if resp.status().is_success() {
                    resp.headers_mut().insert("x-object-version-id", value(&vid_s));
                }
                let ct = h::header_str(resp.headers(), "x-backend-content-type").or_else(|| h::header_str(resp.headers(), "content-type"));
                if ct == Some(DELETE_MARKER_CONTENT_TYPE) {
                    let mut r = text(StatusCode::NOT_FOUND, "Not Found");
                    r.headers_mut().insert("x-object-version-id", value(&vid_s));
                    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(DELETE_MARKER_CONTENT_TYPE));
                    return Err(r);
                }
                if method == Method::HEAD {
                    let (p, _) = resp.into_parts();
                    return Ok(Response::from_parts(p, h::empty()));
                }
                Ok(resp)
            }
        }
    }

    /// Is the object a tombstone, and which version does its link name?
    async fn check_head(&self, parts: &Parts, o: &Obj<'_>) -> Result<(bool, Option<String>), Response<Body>> {
        let mut headers = HeaderMap::new();
        headers.insert("x-newest", HeaderValue::from_static("True"));
        let uri = format!("{}?symlink=get", h::quote_path(&o.object_path()));
        let head = self.call_as_self(parts, Method::HEAD, &uri, headers, h::empty()).await?;
        if head.status() == StatusCode::NOT_FOUND {
            return Ok((true, None));
        }
        let head = check_response(head)?;
        let target = if true_header(head.headers(), SYSMETA_VERSIONS_SYMLINK) {
            utf8_header(head.headers(), SYMLINK_TARGET).map(str::to_string)
        } else {
            None
        };
        Ok((false, target))
    }

    async fn delete_version(&self, parts: Parts, body: Body, o: &Obj<'_>, vid: &Timestamp) -> Result<Response<Body>, Response<Body>> {
        let (tombstone, target) = self.check_head(&parts, o).await?;
        let vobj = versions_object_name(o.object, vid);
        let req_obj_path = format!("{}/{vobj}", o.versions.as_deref().unwrap_or_default());
        let current_version = if tombstone {
            "null".to_string()
        } else {
            match &target {
                Some(t) if unquote(t) == req_obj_path => {
                    // Deleting the current version deletes the link too.
                    let mut lreq = Request::from_parts(parts.clone(), h::empty());
                    *lreq.uri_mut() = h::quote_path(&o.object_path()).parse().map_err(|_| text(StatusCode::BAD_REQUEST, "Bad path"))?;
                    check_response(self.next.call(lreq).await)?;
                    "null".to_string()
                }
                Some(t) => {
                    unquote(t).split_once('/').and_then(|(_, n)| parse_versions_object_name(n)).map(|(_, v)| v).unwrap_or("null".into())
                }
                None => "null".to_string(),
            }
        };
        let mut req = Request::from_parts(parts, body);
        *req.uri_mut() = h::quote_path(&o.version_path(&vobj)).parse().map_err(|_| text(StatusCode::BAD_REQUEST, "Bad path"))?;
        req.headers_mut().insert(BACKEND_ALLOW_RESERVED_NAMES, HeaderValue::from_static("true"));
        let mut resp = self.next.call(req).await;
        resp.headers_mut().insert("x-object-version-id", value(&vid.internal()));
        resp.headers_mut().insert("x-object-current-version-id", value(&current_version));
        Ok(resp)
    }

    /// `PUT ?version-id=`: makes an older version the current one.
    async fn put_version(&self, parts: Parts, o: &Obj<'_>, vid: &Timestamp) -> Result<Response<Body>, Response<Body>> {
        let chunked = h::header_str(&parts.headers, "transfer-encoding").is_some();
        match h::header_str(&parts.headers, "content-length").map(|v| v.trim().parse::<u64>()) {
            Some(Ok(0)) => {}
            Some(_) => return Err(text(StatusCode::BAD_REQUEST, "PUT version-id requests require a zero byte body")),
            None if chunked => {}
            None => return Err(text(StatusCode::LENGTH_REQUIRED, "Length Required")),
        }
        let vname = versions_object_name(o.object, vid);
        let uri = format!("{}?symlink=get", h::quote_path(&o.version_path(&vname)));
        let head = self.call_as_self(&parts, Method::HEAD, &uri, HeaderMap::new(), h::empty()).await?;
        if head.status() == StatusCode::NOT_FOUND {
            let vcpath = format!("/{}/{}/{}", o.version, o.account, o.versions.as_deref().unwrap_or_default());
            let mut hreq = subrequest(&parts, Method::HEAD, &h::quote_path(&vcpath), HeaderMap::new(), h::empty(), SOURCE)?;
            hreq.extensions_mut().insert(AuthorizeHook(Arc::new(AllowAll)));
            hreq.headers_mut().insert(BACKEND_ALLOW_RESERVED_NAMES, HeaderValue::from_static("true"));
            return Err(if self.next.call(hreq).await.status().is_success() {
                text(StatusCode::NOT_FOUND, "The specified version does not exist")
            } else {
                versions_container_missing()
            });
        }
        let head = check_response(head)?;
        let etag = h::header_str(head.headers(), "etag").unwrap_or_default().trim_matches('"').to_string();
        let bytes = h::header_str(head.headers(), "content-length").unwrap_or("0").to_string();
        let ct = h::header_str(head.headers(), "content-type").unwrap_or_default().to_string();
        self.put_symlink(parts, o, &vname, &etag, &bytes, &ct, vid).await
    }
}

/// Drops one parameter from a request's query.
fn strip_query_param(parts: &mut Parts, key: &str) {
    let Some(q) = parts.uri.query() else { return };
    let kept: Vec<&str> = q.split('&').filter(|kv| super::query_param(Some(kv), key).is_none()).collect();
    let path = parts.uri.path().to_string();
    let uri = if kept.is_empty() { path } else { format!("{path}?{}", kept.join("&")) };
    if let Ok(u) = uri.parse() {
        parts.uri = u;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{request, Recorder, Seen};
    use super::*;

    #[test]
    fn reserved_names_round_trip() {
        assert_eq!(versions_container_name("c"), "\0versions\0c");
        let ts = Timestamp::parse("1700000000.12345").unwrap();
        let name = versions_object_name("o/x", &ts);
        assert!(name.starts_with("\0o/x\0"));
        assert_eq!(parse_versions_object_name(&name), Some(("o/x".to_string(), "1700000000.12345".to_string())));
        assert_eq!(parse_versions_object_name("plain"), None);
        // Newer versions sort first.
        let newer = versions_object_name("o/x", &Timestamp::parse("1700000001.00000").unwrap());
        assert!(newer < name);
    }

    #[tokio::test]
    async fn enabling_creates_the_hidden_container_and_shows_the_flag() {
        let next = Recorder::new(|seen: &Seen| {
            let mut r = h::status(if seen.method == Method::HEAD { StatusCode::NOT_FOUND } else { StatusCode::CREATED });
            if let Some(v) = seen.headers.get(SYSMETA_VERSIONS_ENABLED) {
                r.headers_mut().insert(SYSMETA_VERSIONS_ENABLED, v.clone());
            }
            r
        });
        let m = ObjectVersioning { max_file_size: 1 << 30, account_listing_limit: 10_000, next: next.clone() };
        let resp = m.call(request("PUT", "/v1/a/c", &[("x-versions-enabled", "true")], "")).await;
        assert_eq!(resp.headers()[CLIENT_VERSIONS_ENABLED], "True");
        let seen = next.seen();
        assert_eq!((seen[1].method.as_str(), seen[1].uri.as_str()), ("PUT", "/v1/a/%00versions%00c"));
        assert_eq!(seen[1].headers[BACKEND_ALLOW_RESERVED_NAMES], "true");
        assert_eq!(seen[2].headers[SYSMETA_VERSIONS_CONT], "%00versions%00c");
    }

    #[tokio::test]
    async fn a_versioned_put_writes_a_version_and_links_to_it() {
        let next = Recorder::new(|seen: &Seen| match (seen.method.as_str(), seen.uri.as_str()) {
            ("HEAD", "/v1/a/c") => {
                let mut r = h::status(StatusCode::NO_CONTENT);
                r.headers_mut().insert(SYSMETA_VERSIONS_CONT, HeaderValue::from_static("%00versions%00c"));
                r.headers_mut().insert(SYSMETA_VERSIONS_ENABLED, HeaderValue::from_static("True"));
                r
            }
            ("GET", _) => h::status(StatusCode::NOT_FOUND),
            _ => {
                let mut r = h::status(StatusCode::CREATED);
                r.headers_mut().insert("etag", HeaderValue::from_static("\"abc\""));
                r
            }
        });
        let m = ObjectVersioning { max_file_size: 1 << 30, account_listing_limit: 10_000, next: next.clone() };
        let resp = m.call(request("PUT", "/v1/a/c/o", &[("x-timestamp", "1700000000.00000"), ("content-type", "text/x")], "data")).await;
        assert_eq!(resp.headers()["x-object-version-id"], "1700000000.00000");
        let seen = next.seen();
        let version = &seen[2];
        assert!(version.uri.starts_with("/v1/a/%00versions%00c/%00o%00"), "{}", version.uri);
        assert_eq!(version.body, "data");
        let link = &seen[3];
        assert_eq!(link.uri, "/v1/a/c/o");
        assert_eq!(link.headers[SYSMETA_SYMLINK_TARGET_BYTES], "4");
        assert_eq!(link.headers[SYSMETA_SYMLINK_TARGET_ETAG], "abc");
        assert_eq!(link.headers[SYSMETA_VERSIONS_SYMLINK], "true");
        assert!(link.body.is_empty());
    }
    #[tokio::test]
    async fn account_listings_count_the_versions_bytes() {
        let next = Recorder::new(|seen: &Seen| {
            let body = if seen.uri.contains("prefix=%00versions") {
                r#"[{"name": "\u0000versions\u0000a", "count": 2, "bytes": 10}, {"name": "\u0000versions\u0000gone", "count": 1, "bytes": 7}]"#
            } else {
                r#"[{"name": "a", "count": 1, "bytes": 5}, {"name": "b", "count": 1, "bytes": 1}]"#
            };
            Response::new(h::full(body))
        });
        let m = ObjectVersioning { max_file_size: 1 << 30, account_listing_limit: 10_000, next: next.clone() };
        let resp = m.call(request("GET", "/v1/a?format=json&limit=3", &[], "")).await;
        let listing: Vec<Value> = serde_json::from_slice(&super::super::testing::body_of(resp).await).unwrap();
        let rows: Vec<(&str, u64, u64)> =
            listing.iter().map(|r| (r["name"].as_str().unwrap(), r["count"].as_u64().unwrap(), r["bytes"].as_u64().unwrap())).collect();
        assert_eq!(rows, [("a", 1, 15), ("b", 1, 1), ("gone", 0, 7)]);
        let seen = next.seen();
        assert_eq!(seen[1].uri, "/v1/a?format=json&limit=3&prefix=%00versions");
        assert_eq!(seen[1].headers[BACKEND_ALLOW_RESERVED_NAMES], "true");
    }
    #[tokio::test]
    async fn a_client_naming_reserved_names_is_passed_on_untouched() {
        let next = Recorder::new(|_| h::status(StatusCode::PRECONDITION_FAILED));
        let m = ObjectVersioning { max_file_size: 1 << 30, account_listing_limit: 10_000, next: next.clone() };
        let resp = m.call(request("PUT", "/v1/a/c/%00o%001", &[], "data")).await;
        assert_eq!(resp.status(), StatusCode::PRECONDITION_FAILED);
        let seen = next.seen();
        assert_eq!(seen.len(), 1, "no look-ups, no versions");
        assert!(!seen[0].headers.contains_key(BACKEND_ALLOW_RESERVED_NAMES));
    }
}
