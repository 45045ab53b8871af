//! `egg:swift#versioned_writes`: Swift's legacy object versioning, and the
//! filter that puts the newer `object_versioning` in the pipeline.
//!
//! A container names another container of the same account as the keeper
//! of its old versions, in one of two modes:
//!
//! * **stack** (`X-Versions-Location`): a `PUT` over an existing object
//!   first copies the current object to the versions container; a `DELETE`
//!   removes the current object and puts the newest archived version back
//!   in its place (the stack pops).
//! * **history** (`X-History-Location`): a `PUT` archives as above; a
//!   `DELETE` archives the current object, writes a delete marker (a
//!   zero-byte object of content type [`DELETE_MARKER_CONTENT_TYPE`]) and
//!   then deletes the object; nothing is ever restored.
//!
//! The location is stored as container system metadata
//! (`X-Container-Sysmeta-Versions-Location` and `-Versions-Mode`) and shown
//! back under the client header of its mode. Archived copies are named
//! `<3 hex digits: byte length of the name><name>/<timestamp>`, so a
//! reversed prefix listing finds the newest first.
//!
//! The archive and restore subrequests are the middleware's own (source
//! `VW`): the caller needs write access to the versioned container only,
//! which is checked before anything is copied.
//!
//! With `allow_object_versioning = true` the filter also puts
//! [`super::object_versioning`] to its right, as Swift's factory does.

use super::{info, subrequest, AllowAll, AuthRequest, Authorization, AuthorizeHook, BoxFuture, Build, Handler, Next, ObjectPath};
use crate::proxy::Proxy;
use common::config::Section;
use common::http::{self as h, Body};
use common::timestamp::Timestamp;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::collections::VecDeque;
use std::sync::Arc;

/// `swift.source` of the middleware's subrequests.
const SOURCE: &str = "VW";

/// The content type of a history-mode delete marker.
pub const DELETE_MARKER_CONTENT_TYPE: &str = "application/x-deleted;swift_versions_deleted=1";
const CLIENT_VERSIONS_LOC: &str = "x-versions-location";
const CLIENT_HISTORY_LOC: &str = "x-history-location";
const SYSMETA_VERSIONS_LOC: &str = "x-container-sysmeta-versions-location";
const SYSMETA_VERSIONS_MODE: &str = "x-container-sysmeta-versions-mode";
const REMOVE_HEADERS: [&str; 2] = ["x-remove-versions-location", "x-remove-history-location"];

pub struct VersionedWrites {
    /// `allow_versioned_writes`: `None` when the section does not set it
    /// (container requests then pass untouched, as in Swift).
    allow: Option<bool>,
    max_file_size: u64,
    next: Next,
}

pub fn factory(section: &Section, proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    let allow = match section.get("allow_versioned_writes") {
        Some(_) => Some(section.get_bool("allow_versioned_writes", false).map_err(|e| e.to_string())?),
        None => None,
    };
    if allow == Some(true) {
        build
            .capabilities
            .insert("versioned_writes".into(), serde_json::json!({ "allowed_flags": [CLIENT_VERSIONS_LOC, CLIENT_HISTORY_LOC] }));
    }
    let next = if section.get_bool("allow_object_versioning", false).map_err(|e| e.to_string())? {
        super::object_versioning::wrap(section, proxy, next, build)?
    } else {
        next
    };
    Ok(Arc::new(VersionedWrites { allow, max_file_size: proxy.swift.constraints.max_file_size, next }))
}

impl Handler for VersionedWrites {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let Some(segs) =
                common::path::unquote_internal(req.uri().path()).ok().and_then(|p| common::path::split_path(&p, 3, 4, true).ok())
            else {
                return self.next.call(req).await;
            };
            let is_object = segs[3].as_deref().is_some_and(|o| !o.is_empty());
            let result = if self.allow.is_some() && !is_object {
                self.container_request(req).await
            } else if is_object && matches!(*req.method(), Method::PUT | Method::DELETE) {
                match ObjectPath::parse(req.uri().path()) {
                    Some(path) => self.object_request(req, path).await,
                    None => Ok(self.next.call(req).await),
                }
            } else {
                Ok(self.next.call(req).await)
            };
            result.unwrap_or_else(|resp| resp)
        })
    }
}

/// A failed subrequest as Swift reports it: the caller's fault (412) or
/// the cluster's (503).
fn check_response(resp: &Response<Body>) -> Result<(), Response<Body>> {
    if resp.status().is_success() {
        Ok(())
    } else if resp.status().is_client_error() {
        Err(h::text(StatusCode::PRECONDITION_FAILED, "Precondition Failed"))
    } else {
        Err(h::text(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"))
    }
}

/// `<3 hex digits of the name's byte length><name>/`: the listing prefix
/// of an object's archived versions.
pub fn versions_prefix(object: &str) -> String {
    format!("{:03x}{object}/", object.len())
}

fn header_value(s: &str) -> Result<HeaderValue, Response<Body>> {
    HeaderValue::from_bytes(s.as_bytes()).map_err(|_| h::text(StatusCode::BAD_REQUEST, "Bad header value"))
}

/// A header's value as UTF-8 (clients send container names unquoted).
fn utf8_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

fn remove_swift_bytes(ct: &str) -> &str {
    match ct.rsplit_once(';') {
        Some((left, right)) if right.trim_start().starts_with("swift_bytes=") => left,
        _ => ct,
    }
}

/// One entry of a versions container listing.
struct Item {
    name: String,
    content_type: String,
}

/// The versions of one object, newest first, fetched a page at a time.
struct Listing<'a> {
    vw: &'a VersionedWrites,
    parts: &'a Parts,
    path: String,
    prefix: String,
    marker: String,
    buffered: VecDeque<Item>,
    done: bool,
}

impl Listing<'_> {
    async fn next(&mut self) -> Result<Option<Item>, Response<Body>> {
        if self.buffered.is_empty() && !self.done {
            let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
            let uri =
                format!("{}?format=json&prefix={}&marker={}&reverse=on", h::quote_path(&self.path), enc(&self.prefix), enc(&self.marker));
            let resp = self.vw.call_as_self(self.parts, Method::GET, &uri, HeaderMap::new(), h::empty()).await?;
            if resp.status() == StatusCode::NOT_FOUND {
                self.done = true;
                return Ok(None);
            }
            check_response(&resp)?;
            let body = resp.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
            let items: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap_or_default();
            if items.is_empty() {
                self.done = true;
            }
            for item in items {
                let name = item["name"].as_str().unwrap_or_default().to_string();
                self.marker = name.clone();
                let content_type = item["content_type"].as_str().unwrap_or_default().to_string();
                self.buffered.push_back(Item { name, content_type });
            }
        }
        Ok(self.buffered.pop_front())
    }
}

impl VersionedWrites {
    /// A subrequest made on the middleware's own authority.
    async fn call_as_self(
        &self,
        parts: &Parts,
        method: Method,
        uri: &str,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Body>, Response<Body>> {
        let mut req = subrequest(parts, method, uri, headers, body, SOURCE)?;
        req.extensions_mut().insert(AuthorizeHook(Arc::new(AllowAll)));
        Ok(self.next.call(req).await)
    }

    /// Swift's `container_request`: the client headers become system
    /// metadata, and the stored location is shown back.
    async fn container_request(&self, mut req: Request<Body>) -> Result<Response<Body>, Response<Body>> {
        let enabled = self.allow == Some(true);
        let method = req.method().clone();
        let hm = req.headers_mut();
        let nonempty = |hm: &HeaderMap, n: &str| hm.get(n).is_some_and(|v| !v.is_empty());
        if hm.contains_key(CLIENT_VERSIONS_LOC) && hm.contains_key(CLIENT_HISTORY_LOC) {
            if !nonempty(hm, CLIENT_HISTORY_LOC) {
                hm.remove(CLIENT_HISTORY_LOC);
            } else if nonempty(hm, CLIENT_VERSIONS_LOC) {
                return Err(h::text(
                    StatusCode::BAD_REQUEST,
                    format!("Only one of {CLIENT_VERSIONS_LOC} or {CLIENT_HISTORY_LOC} may be specified"),
                ));
            } else {
                hm.remove(CLIENT_VERSIONS_LOC);
            }
        }
        let given = if let Some(v) = hm.get(CLIENT_VERSIONS_LOC) {
            Some((v.clone(), "stack"))
        } else {
            hm.get(CLIENT_HISTORY_LOC).map(|v| (v.clone(), "history"))
        };
        if let Some((value, mode)) = given {
            if value.is_empty() {
                hm.insert(REMOVE_HEADERS[0], HeaderValue::from_static("x"));
            } else if !enabled && matches!(method, Method::PUT | Method::POST) {
                return Err(h::text(StatusCode::PRECONDITION_FAILED, "Versioned Writes is disabled"));
            } else {
                if value.as_bytes().contains(&b'/') {
                    return Err(h::text(StatusCode::PRECONDITION_FAILED, "Container name cannot contain slashes"));
                }
                hm.insert(SYSMETA_VERSIONS_LOC, value);
                hm.insert(SYSMETA_VERSIONS_MODE, HeaderValue::from_static(mode));
                hm.insert(CLIENT_VERSIONS_LOC, HeaderValue::from_static(""));
                hm.remove(CLIENT_HISTORY_LOC);
                for name in REMOVE_HEADERS {
                    hm.remove(name);
                }
            }
        }
        if REMOVE_HEADERS.iter().any(|n| nonempty(hm, n)) {
            for name in [CLIENT_VERSIONS_LOC, SYSMETA_VERSIONS_LOC, SYSMETA_VERSIONS_MODE] {
                hm.insert(name, HeaderValue::from_static(""));
            }
            hm.remove(CLIENT_HISTORY_LOC);
        }
        for name in REMOVE_HEADERS {
            hm.remove(name);
        }
        let mut resp = self.next.call(req).await;
        let hm = resp.headers_mut();
        if let Some(location) = hm.get(SYSMETA_VERSIONS_LOC).filter(|v| !v.is_empty()).cloned() {
            let history = hm.get(SYSMETA_VERSIONS_MODE).is_some_and(|m| m == "history");
            hm.insert(if history { CLIENT_HISTORY_LOC } else { CLIENT_VERSIONS_LOC }, location);
        }
        Ok(resp)
    }

    /// Swift's `object_request`: archives or restores around a `PUT` or
    /// `DELETE` of an object whose container keeps versions.
    async fn object_request(&self, req: Request<Body>, path: ObjectPath) -> Result<Response<Body>, Response<Body>> {
        let (parts, body) = req.into_parts();
        let container_path = format!("/{}/{}/{}", path.version, path.account, path.container);
        let cinfo = info(&self.next, &parts, &container_path, SOURCE).await.unwrap_or_default();
        let mut enabled = self.allow == Some(true);
        let mut location = utf8_header(&cinfo, SYSMETA_VERSIONS_LOC).filter(|v| !v.is_empty()).map(str::to_string);
        let mode = h::header_str(&cinfo, SYSMETA_VERSIONS_MODE).filter(|v| !v.is_empty()).unwrap_or("stack").to_string();
        if location.is_none() {
            // Set before this middleware ran (the container server's own
            // `allow_versions`): it applies unless the operator said no.
            location = utf8_header(&cinfo, CLIENT_VERSIONS_LOC).filter(|v| !v.is_empty()).map(str::to_string);
            if self.allow.is_none() && location.is_some() {
                enabled = true;
            }
        }
        let req = Request::from_parts(parts, body);
        let Some(location) = location.filter(|_| enabled) else { return Ok(self.next.call(req).await) };
        let unquoted = percent_encoding::percent_decode_str(&location).decode_utf8_lossy().into_owned();
        let versions = unquoted.split('/').next().unwrap_or_default().to_string();
        let write_acl = utf8_header(&cinfo, "x-container-write").map(str::to_string);
        let target = Target { path, versions, write_acl };
        let (parts, body) = req.into_parts();
        if parts.method == Method::PUT {
            self.copy_current(&parts, &target).await?;
            return Ok(self.next.call(Request::from_parts(parts, body)).await);
        }
        if mode == "history" {
            self.copy_current(&parts, &target).await?;
            let marker = format!(
                "/{}/{}/{}/{}{}",
                target.path.version,
                target.path.account,
                target.versions,
                versions_prefix(&target.path.object),
                Timestamp::now().internal()
            );
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(DELETE_MARKER_CONTENT_TYPE));
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
            let resp = self.call_as_self(&parts, Method::PUT, &h::quote_path(&marker), headers, h::empty()).await?;
            check_response(&resp)?;
            return Ok(self.next.call(Request::from_parts(parts, body)).await);
        }
        self.delete_pop(Request::from_parts(parts, body), &target).await
    }

    /// Refuses (with the auth middleware's answer) a caller who may not
    /// write to the versioned container.
    async fn authorize_write(&self, parts: &Parts, t: &Target) -> Result<(), Response<Body>> {
        let Some(hook) = parts.extensions.get::<AuthorizeHook>() else { return Ok(()) };
        let areq = AuthRequest {
            method: &parts.method,
            account: &t.path.account,
            container: Some(&t.path.container),
            object: Some(&t.path.object),
            acl: t.write_acl.as_deref(),
            headers: &parts.headers,
        };
        match hook.0.authorize(&areq).await {
            Authorization::Allow { .. } => Ok(()),
            Authorization::Deny(resp) => Err(resp),
        }
    }

    /// The newest copy of an object, raw (a symlink as itself), checked to
    /// fit one `PUT`.
    async fn get_source(&self, parts: &Parts, quoted_path: &str) -> Result<Response<Body>, Response<Body>> {
        let mut headers = HeaderMap::new();
        headers.insert("x-newest", HeaderValue::from_static("True"));
        let resp = self.call_as_self(parts, Method::GET, &format!("{quoted_path}?symlink=get"), headers, h::empty()).await?;
        if resp.status().is_success() {
            let length = h::header_str(resp.headers(), "content-length").and_then(|v| v.trim().parse::<u64>().ok());
            if length.is_none_or(|n| n > self.max_file_size) {
                return Err(h::text(StatusCode::PAYLOAD_TOO_LARGE, "Your request is too large."));
            }
        }
        Ok(resp)
    }

    /// Writes the body of a `get_source` answer to `dest` (unquoted) with
    /// its metadata.
    async fn put_copy(&self, parts: &Parts, dest: &str, source: Response<Body>) -> Result<(), Response<Body>> {
        let (sparts, sbody) = source.into_parts();
        let mut headers = HeaderMap::new();
        for (name, value) in &sparts.headers {
            let skip = [
                "x-timestamp",
                "date",
                "last-modified",
                "x-trans-id",
                "x-openstack-request-id",
                "accept-ranges",
                "connection",
                "transfer-encoding",
                "x-backend-timestamp",
            ];
            if !skip.contains(&name.as_str()) {
                headers.append(name.clone(), value.clone());
            }
        }
        // An SLO manifest keeps its large object's size in the listing.
        if let Some(size) = h::header_str(&sparts.headers, "x-object-sysmeta-slo-size").map(str::to_string) {
            let ct = h::header_str(&headers, "content-type").map(|c| remove_swift_bytes(c).to_string()).unwrap_or_default();
            headers.insert(http::header::CONTENT_TYPE, header_value(&format!("{ct};swift_bytes={size}"))?);
        }
        let resp = self.call_as_self(parts, Method::PUT, &h::quote_path(dest), headers, sbody).await?;
        check_response(&resp)
    }

    /// Swift's `_copy_current`: archives the current object, if any.
    async fn copy_current(&self, parts: &Parts, t: &Target) -> Result<(), Response<Body>> {
        self.authorize_write(parts, t).await?;
        let source = self.get_source(parts, &t.path.quoted()).await?;
        if source.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        check_response(&source)?;
        let ts = h::header_str(source.headers(), "x-timestamp")
            .and_then(|v| Timestamp::parse(v).ok())
            .or_else(|| {
                h::header_str(source.headers(), "last-modified")
                    .and_then(common::timestamp::parse_http_date)
                    .and_then(|s| Timestamp::from_secs_f64(s as f64).ok())
            })
            .unwrap_or_else(Timestamp::now);
        let dest = format!("/{}/{}/{}/{}{}", t.path.version, t.path.account, t.versions, versions_prefix(&t.path.object), ts.internal());
        self.put_copy(parts, &dest, source).await
    }

    /// Swift's `_restore_data`: puts an archived version (unquoted
    /// `version_path`) back as the current object; false if it vanished.
    async fn restore(&self, parts: &Parts, t: &Target, version_path: &str) -> Result<bool, Response<Body>> {
        let source = self.get_source(parts, &h::quote_path(version_path)).await?;
        if source.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        check_response(&source)?;
        let dest = format!("/{}/{}/{}/{}", t.path.version, t.path.account, t.path.container, t.path.object);
        self.put_copy(parts, &dest, source).await?;
        Ok(true)
    }

    async fn delete_as_self(&self, parts: &Parts, path: &str) -> Result<Response<Body>, Response<Body>> {
        self.call_as_self(parts, Method::DELETE, &h::quote_path(path), HeaderMap::new(), h::empty()).await
    }

    /// Swift's `handle_obj_versions_delete_pop` (stack mode): the newest
    /// archived version replaces the object and leaves the archive; a
    /// delete marker on top is taken off instead (restoring what lies
    /// under it when the object is gone).
    async fn delete_pop(&self, req: Request<Body>, t: &Target) -> Result<Response<Body>, Response<Body>> {
        let (parts, body) = req.into_parts();
        let versions_base = format!("/{}/{}/{}", t.path.version, t.path.account, t.versions);
        let mut listing = Listing {
            vw: self,
            parts: &parts,
            path: versions_base.clone(),
            prefix: versions_prefix(&t.path.object),
            marker: String::new(),
            buffered: VecDeque::new(),
            done: false,
        };
        let mut authed = false;
        let mut instead: Option<String> = None;
        while let Some(previous) = listing.next().await? {
            if !authed {
                self.authorize_write(&parts, t).await?;
                authed = true;
            }
            let previous_path = format!("{versions_base}/{}", previous.name);
            if previous.content_type == DELETE_MARKER_CONTENT_TYPE {
                let mut headers = HeaderMap::new();
                headers.insert("x-newest", HeaderValue::from_static("True"));
                let head = self.call_as_self(&parts, Method::HEAD, &t.path.quoted(), headers, h::empty()).await?;
                if head.status() != StatusCode::NOT_FOUND {
                    // The object was written again after the marker: an
                    // ordinary delete of it.
                    check_response(&head)?;
                    break;
                }
                while let Some(older) = listing.next().await? {
                    if older.content_type == DELETE_MARKER_CONTENT_TYPE {
                        break;
                    }
                    let older_path = format!("{versions_base}/{}", older.name);
                    if !self.restore(&parts, t, &older_path).await? {
                        continue;
                    }
                    let resp = self.delete_as_self(&parts, &older_path).await?;
                    if resp.status() != StatusCode::NOT_FOUND {
                        check_response(&resp)?;
                    }
                    break;
                }
                instead = Some(previous_path);
            } else {
                if !self.restore(&parts, t, &previous_path).await? {
                    continue;
                }
                instead = Some(previous_path);
            }
            break;
        }
        match instead {
            Some(path) => self.delete_as_self(&parts, &path).await,
            None => Ok(self.next.call(Request::from_parts(parts, body)).await),
        }
    }
}

/// The object a versioned write acts on and where its versions go.
struct Target {
    path: ObjectPath,
    /// The versions container (unquoted).
    versions: String,
    /// The versioned container's `X-Container-Write`.
    write_acl: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, request, Recorder, Seen};
    use super::super::{Authorize, BoxFuture};
    use super::*;
    use http::HeaderName;

    const ARCHIVE: &str = "/v1/a/ver/001o/1700000000.00000";

    /// A fake proxy app: container `c` versioned into `ver` in `mode`, an
    /// object `/v1/a/c/o` ("new") and one archived version ("old");
    /// everything written succeeds.
    fn app(mode: &'static str, listing: &'static str) -> Arc<Recorder> {
        Recorder::new(move |seen: &Seen| {
            let with = |status: StatusCode, body: &'static str, headers: &[(&str, &str)]| {
                let mut r = Response::new(h::full(body));
                *r.status_mut() = status;
                for (k, v) in headers {
                    r.headers_mut().insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
                }
                r
            };
            match (seen.method.as_str(), seen.uri.as_str()) {
                ("HEAD", "/v1/a/c") => with(
                    StatusCode::NO_CONTENT,
                    "",
                    &[(SYSMETA_VERSIONS_LOC, "ver"), (SYSMETA_VERSIONS_MODE, mode), ("x-container-write", "a2:u")],
                ),
                ("GET", "/v1/a/c/o?symlink=get") => with(
                    StatusCode::OK,
                    "new",
                    &[("content-length", "3"), ("x-timestamp", "1700000001.00000"), ("content-type", "text/new"), ("x-object-meta-k", "v")],
                ),
                ("GET", uri) if uri.starts_with(&format!("{ARCHIVE}?symlink=get")) => {
                    with(StatusCode::OK, "old", &[("content-length", "3"), ("content-type", "text/old")])
                }
                ("GET", uri) if uri.starts_with("/v1/a/ver?") => with(StatusCode::OK, listing, &[]),
                ("HEAD", "/v1/a/c/o") => with(StatusCode::NOT_FOUND, "", &[]),
                ("PUT", _) => with(StatusCode::CREATED, "", &[]),
                ("DELETE", _) => with(StatusCode::NO_CONTENT, "", &[]),
                _ => with(StatusCode::NOT_FOUND, "", &[]),
            }
        })
    }

    fn vw(next: Arc<Recorder>) -> VersionedWrites {
        VersionedWrites { allow: Some(true), max_file_size: 5 << 30, next }
    }

    fn calls(next: &Recorder) -> Vec<(String, String)> {
        next.seen().into_iter().map(|s| (s.method.to_string(), s.uri)).collect()
    }

    #[tokio::test]
    async fn container_headers_become_sysmeta_and_show_back() {
        let next = Recorder::new(|seen: &Seen| {
            let mut r = h::status(StatusCode::NO_CONTENT);
            for (k, v) in &seen.headers {
                if k.as_str().starts_with("x-container-sysmeta-") {
                    r.headers_mut().insert(k.clone(), v.clone());
                }
            }
            r
        });
        let m = vw(next.clone());
        let resp = m.call(request("POST", "/v1/a/c", &[("x-history-location", "ver%20s")], "")).await;
        let seen = &next.seen()[0];
        assert_eq!(seen.headers[SYSMETA_VERSIONS_LOC], "ver%20s");
        assert_eq!(seen.headers[SYSMETA_VERSIONS_MODE], "history");
        assert_eq!(seen.headers[CLIENT_VERSIONS_LOC], "");
        assert_eq!(resp.headers()[CLIENT_HISTORY_LOC], "ver%20s");
        assert!(!resp.headers().contains_key(CLIENT_VERSIONS_LOC));

        // Removing clears all three.
        m.call(request("POST", "/v1/a/c", &[("x-remove-versions-location", "x")], "")).await;
        let seen = &next.seen()[1];
        for n in [SYSMETA_VERSIONS_LOC, SYSMETA_VERSIONS_MODE, CLIENT_VERSIONS_LOC] {
            assert_eq!(seen.headers[n], "");
        }
        assert!(!seen.headers.contains_key("x-remove-versions-location"));

        // A location given with a remove header wins.
        m.call(request("POST", "/v1/a/c", &[("x-remove-versions-location", "x"), ("x-versions-location", "v2")], "")).await;
        assert_eq!(next.seen()[2].headers[SYSMETA_VERSIONS_LOC], "v2");

        let r = m.call(request("PUT", "/v1/a/c", &[("x-versions-location", "a"), ("x-history-location", "b")], "")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = m.call(request("PUT", "/v1/a/c", &[("x-versions-location", "a/b")], "")).await;
        assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
        assert_eq!(next.seen().len(), 3);

        // Disabled by the operator: setting a location is refused.
        let off = VersionedWrites { allow: Some(false), max_file_size: 1, next: next.clone() };
        let r = off.call(request("PUT", "/v1/a/c", &[("x-versions-location", "v")], "")).await;
        assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
        assert_eq!(body_of(r).await, "Versioned Writes is disabled");
    }

    #[tokio::test]
    async fn a_put_archives_the_current_object_first() {
        let next = app("stack", "[]");
        let r = vw(next.clone()).call(request("PUT", "/v1/a/c/o", &[], "newer")).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let seen = next.seen();
        assert_eq!(
            calls(&next),
            [
                ("HEAD".into(), "/v1/a/c".into()),
                ("GET".into(), "/v1/a/c/o?symlink=get".into()),
                ("PUT".into(), "/v1/a/ver/001o/1700000001.00000".into()),
                ("PUT".into(), "/v1/a/c/o".into()),
            ]
        );
        assert_eq!(seen[1].headers["x-newest"], "True");
        assert_eq!(seen[2].body, "new");
        assert_eq!(seen[2].headers["x-object-meta-k"], "v");
        assert_eq!(seen[2].headers["content-type"], "text/new");
        assert!(!seen[2].headers.contains_key("x-timestamp"));
        assert_eq!(seen[2].source, Some("VW"));
        assert_eq!(seen[3].body, "newer");
    }

    #[tokio::test]
    async fn history_delete_archives_and_leaves_a_marker() {
        let next = app("history", "[]");
        let r = vw(next.clone()).call(request("DELETE", "/v1/a/c/o", &[], "")).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let seen = next.seen();
        assert_eq!(seen[2].uri, "/v1/a/ver/001o/1700000001.00000");
        assert!(seen[3].uri.starts_with("/v1/a/ver/001o/"));
        assert_eq!(seen[3].headers["content-type"], DELETE_MARKER_CONTENT_TYPE);
        assert_eq!((seen[4].method.as_str(), seen[4].uri.as_str()), ("DELETE", "/v1/a/c/o"));
    }

    #[tokio::test]
    async fn stack_delete_pops_the_newest_version() {
        let next = app("stack", r#"[{"name": "001o/1700000000.00000", "content_type": "text/old"}]"#);
        let r = vw(next.clone()).call(request("DELETE", "/v1/a/c/o", &[], "")).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let c = calls(&next);
        assert!(c[1].1.starts_with("/v1/a/ver?format=json&prefix=001o%2F&marker=&reverse=on"), "{c:?}");
        assert_eq!(c[2], ("GET".into(), format!("{ARCHIVE}?symlink=get")));
        assert_eq!(c[3], ("PUT".into(), "/v1/a/c/o".into()));
        assert_eq!(next.seen()[3].body, "old");
        assert_eq!(c[4], ("DELETE".into(), ARCHIVE.into()));
        assert_eq!(c.len(), 5, "{c:?}");
        // With nothing archived, the object itself is deleted.
        let next = app("stack", "[]");
        vw(next.clone()).call(request("DELETE", "/v1/a/c/o", &[], "")).await;
        assert_eq!(calls(&next).last().unwrap(), &("DELETE".into(), "/v1/a/c/o".into()));
    }

    #[tokio::test]
    async fn stack_delete_takes_off_a_marker_and_restores_below_it() {
        let listing = r#"[{"name": "001o/2", "content_type": "application/x-deleted;swift_versions_deleted=1"},
                         {"name": "001o/1700000000.00000", "content_type": "text/old"}]"#;
        let next = app("stack", listing);
        vw(next.clone()).call(request("DELETE", "/v1/a/c/o", &[], "")).await;
        let c = calls(&next);
        assert_eq!(c[2], ("HEAD".into(), "/v1/a/c/o".into()));
        assert_eq!(c[4], ("PUT".into(), "/v1/a/c/o".into()));
        assert_eq!(c[5], ("DELETE".into(), ARCHIVE.into()));
        assert_eq!(c[6], ("DELETE".into(), "/v1/a/ver/001o/2".into()));
    }

    #[tokio::test]
    async fn a_location_in_raw_utf8_is_understood() {
        let next = Recorder::new(|seen: &Seen| match (seen.method.as_str(), seen.uri.as_str()) {
            ("HEAD", "/v1/a/c") => {
                let mut r = h::status(StatusCode::NO_CONTENT);
                r.headers_mut().insert(SYSMETA_VERSIONS_LOC, HeaderValue::from_bytes("vér".as_bytes()).unwrap());
                r
            }
            ("GET", _) => {
                let mut r = Response::new(h::full("x"));
                r.headers_mut().insert("content-length", HeaderValue::from(1));
                r.headers_mut().insert("x-timestamp", HeaderValue::from_static("1700000001.00000"));
                r
            }
            _ => h::status(StatusCode::CREATED),
        });
        vw(next.clone()).call(request("PUT", "/v1/a/c/o", &[], "y")).await;
        assert_eq!(calls(&next)[2], ("PUT".into(), "/v1/a/v%C3%A9r/001o/1700000001.00000".into()));
    }

    struct Deny;
    impl Authorize for Deny {
        fn authorize<'a>(&'a self, _req: &'a AuthRequest<'a>) -> BoxFuture<'a, Authorization> {
            Box::pin(async { Authorization::Deny(h::status(StatusCode::FORBIDDEN)) })
        }
    }

    #[tokio::test]
    async fn an_unauthorized_caller_archives_nothing() {
        let next = app("history", "[]");
        let mut req = request("PUT", "/v1/a/c/o", &[], "x");
        req.extensions_mut().insert(AuthorizeHook(Arc::new(Deny)));
        let r = vw(next.clone()).call(req).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(calls(&next), [("HEAD".to_string(), "/v1/a/c".to_string())]);
    }
}
