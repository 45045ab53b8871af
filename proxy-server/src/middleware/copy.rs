//! `egg:swift#copy`: server-side copies. `COPY` with `Destination:
//! <container>/<object>` (and `Destination-Account`) becomes a `PUT` of the
//! destination with `X-Copy-From`; a `PUT` with `X-Copy-From:
//! <container>/<object>` (and `X-Copy-From-Account`) is served by two
//! subrequests into the pipeline to the right: a `GET` of the source (with
//! `X-Newest`, as the caller, so its read ACL applies and a DLO manifest
//! arrives joined) and a `PUT` of the destination whose body is the
//! source's, streamed.

use super::{subrequest, BoxFuture, Build, Handler, Next, ObjectPath};
use crate::proxy::Proxy;
use common::backend_headers as bh;
use common::config::Section;
use common::http::{self as h, Body};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use std::sync::Arc;

/// `swift.source` of the copy's subrequests (Swift's "server-side copy").
const SOURCE: &str = "SSC";

pub struct Copy {
    next: Next,
}

pub fn factory(_section: &Section, _proxy: &Proxy, next: Next, _build: &mut Build) -> Result<Next, String> {
    Ok(Arc::new(Copy { next }))
}

impl Handler for Copy {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let Some(path) = ObjectPath::parse(req.uri().path()) else { return self.next.call(req).await };
            if req.method().as_str() == "COPY" {
                return match copy_as_put(req, path) {
                    Ok((req, path)) => self.put_copy(req, path).await,
                    Err(resp) => resp,
                };
            }
            if req.method() == Method::PUT && req.headers().contains_key("x-copy-from") {
                return self.put_copy(req, path).await;
            }
            self.next.call(req).await
        })
    }
}

/// Decodes a header naming `<container>/<object>` (raw UTF-8 or
/// percent-encoded, a leading `/` allowed).
fn container_and_object(value: &str, header: &str) -> Result<(String, String), Response<Body>> {
    let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
    decoded
        .trim_start_matches('/')
        .split_once('/')
        .filter(|(c, o)| !c.is_empty() && !o.is_empty())
        .map(|(c, o)| (c.to_string(), o.to_string()))
        .ok_or_else(|| {
            h::text(StatusCode::PRECONDITION_FAILED, format!("{header} header must be of the form <container name>/<object name>"))
        })
}

/// An account named by `X-Copy-From-Account` / `Destination-Account`.
fn account_header(value: &str) -> Result<String, Response<Body>> {
    let account = percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned();
    if account.is_empty() || account.contains('/') {
        return Err(h::text(StatusCode::PRECONDITION_FAILED, "Account name cannot be empty or contain slashes"));
    }
    Ok(account)
}

fn utf8_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
}

/// Swift's `handle_COPY`: the request becomes the destination's `PUT`
/// with `X-Copy-From` naming this object.
fn copy_as_put(mut req: Request<Body>, path: ObjectPath) -> Result<(Request<Body>, ObjectPath), Response<Body>> {
    let Some(dest) = utf8_header(req.headers(), "destination") else {
        return Err(h::text(StatusCode::PRECONDITION_FAILED, "Destination header required"));
    };
    let (container, object) = container_and_object(dest, "Destination")?;
    let mut account = path.account.clone();
    if let Some(a) = utf8_header(req.headers(), "destination-account") {
        account = account_header(a)?;
        let src_account =
            HeaderValue::from_str(&h::quote_path(&path.account)).map_err(|_| h::text(StatusCode::BAD_REQUEST, "Bad account"))?;
        req.headers_mut().insert("x-copy-from-account", src_account);
    }
    let source = h::quote_path(&format!("/{}/{}", path.container, path.object));
    let dest = ObjectPath { version: path.version, account, container, object };
    let hm = req.headers_mut();
    hm.remove("destination");
    hm.remove("destination-account");
    hm.insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
    hm.insert("x-copy-from", HeaderValue::from_str(&source).map_err(|_| h::text(StatusCode::BAD_REQUEST, "Bad source"))?);
    *req.method_mut() = Method::PUT;
    Ok((req, dest))
}

/// Object headers a copy carries over from its source unless the request
/// asks for fresh metadata (Swift excludes these from the source's).
const NOT_FROM_SOURCE: &[&str] = &[
    "x-static-large-object",
    "x-object-manifest",
    "etag",
    "content-type",
    bh::TIMESTAMP,
    bh::BACKEND_TIMESTAMP,
    "content-length",
    "transfer-encoding",
    "connection",
];

fn is_object_sysmeta(name: &str) -> bool {
    name.starts_with("x-object-sysmeta-")
}

fn is_object_meta(name: &str) -> bool {
    name.starts_with("x-object-meta-") || is_object_sysmeta(name) || name.starts_with("x-object-transient-sysmeta-")
}

impl Copy {
    /// Swift's `handle_PUT` of the copy middleware.
    async fn put_copy(&self, req: Request<Body>, dest: ObjectPath) -> Response<Body> {
        if h::header_str(req.headers(), "content-length").and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|n| n > 0) {
            return h::text(StatusCode::BAD_REQUEST, "Copy requests require a zero byte body");
        }
        let (parts, _) = req.into_parts();
        let src_account = match utf8_header(&parts.headers, "x-copy-from-account") {
            Some(a) => match account_header(a) {
                Ok(a) => a,
                Err(resp) => return resp,
            },
            None => dest.account.clone(),
        };
        let (src_container, src_object) =
            match container_and_object(utf8_header(&parts.headers, "x-copy-from").unwrap_or(""), "X-Copy-From") {
                Ok(co) => co,
                Err(resp) => return resp,
            };
        let source = ObjectPath { version: dest.version.clone(), account: src_account, container: src_container, object: src_object };
        let manifest_get = super::query_param(parts.uri.query(), "multipart-manifest").as_deref() == Some("get");

        // The source, read as the caller would read it (conditions and
        // Range apply), from the newest replica.
        let mut headers = parts.headers.clone();
        for name in ["x-copy-from", "x-copy-from-account", "content-length", "transfer-encoding", "content-type", "etag"] {
            headers.remove(name);
        }
        headers.insert("x-newest", HeaderValue::from_static("true"));
        let uri = match parts.uri.query() {
            // An SLO manifest is read in the form it is put in.
            Some(q) if manifest_get => format!("{}?{q}&format=raw", source.quoted()),
            Some(q) => format!("{}?{q}", source.quoted()),
            None => source.quoted(),
        };
        let get = match subrequest(&parts, Method::GET, &uri, headers, h::empty(), SOURCE) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let source_resp = self.next.call(get).await;
        if source_resp.status().as_u16() >= 300 {
            return source_resp;
        }
        let (sparts, sbody) = source_resp.into_parts();
        let Some(length) = h::header_str(&sparts.headers, "content-length").and_then(|v| v.parse::<u64>().ok()) else {
            // A source of unknown length cannot be copied in one PUT.
            return h::text(StatusCode::PAYLOAD_TOO_LARGE, "Your request is too large.");
        };

        // The destination's headers: the source's metadata, then the
        // request's own headers over them.
        let fresh = h::header_str(&parts.headers, "x-fresh-metadata").is_some_and(|v| common::config::parse_bool(v) == Some(true));
        let mut sink = HeaderMap::new();
        for (name, value) in &sparts.headers {
            let n = name.as_str();
            let wanted = if fresh { is_object_sysmeta(n) } else { !NOT_FROM_SOURCE.contains(&n) };
            if wanted {
                sink.insert(name.clone(), value.clone());
            }
        }
        for (name, value) in &parts.headers {
            sink.insert(name.clone(), value.clone());
        }
        let dlo = sparts.headers.contains_key("x-object-manifest");
        if manifest_get && dlo {
            // Copying the manifest itself makes a new manifest.
            if let Some(v) = sparts.headers.get("x-object-manifest") {
                sink.insert("x-object-manifest", v.clone());
            }
        }
        let slo = sparts.headers.contains_key("x-static-large-object");
        // The source's ETag verifies the copy, unless the bytes are not
        // what it hashes: a part (206), a joined DLO or SLO, or an SLO
        // manifest (whose PUT makes its own ETag).
        if sparts.status == StatusCode::OK && !slo && (!dlo || manifest_get) {
            if let Some(etag) = sparts.headers.get(http::header::ETAG) {
                sink.insert(http::header::ETAG, etag.clone());
            }
        } else {
            sink.remove(http::header::ETAG);
            // Nor are the source's container listing values the copy's.
            let overrides: Vec<_> =
                sink.keys().filter(|k| k.as_str().starts_with(bh::OBJECT_SYSMETA_CONTAINER_UPDATE_OVERRIDE_PREFIX)).cloned().collect();
            for k in overrides {
                sink.remove(k);
            }
        }
        for name in [
            "x-copy-from",
            "x-copy-from-account",
            "x-newest",
            "range",
            "if-match",
            "if-none-match",
            "if-modified-since",
            "if-unmodified-since",
        ] {
            sink.remove(name);
        }
        if !parts.headers.contains_key(http::header::CONTENT_TYPE) {
            if let Some(ct) = sparts.headers.get(http::header::CONTENT_TYPE) {
                sink.insert(http::header::CONTENT_TYPE, ct.clone());
            }
        }
        sink.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
        // A copied SLO manifest is put as a manifest again.
        let dest_uri = if manifest_get && slo { format!("{}?multipart-manifest=put", dest.quoted()) } else { dest.quoted() };
        let put = match subrequest(&parts, Method::PUT, &dest_uri, sink.clone(), sbody, SOURCE) {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let mut resp = self.next.call(put).await;
        if resp.status().is_success() {
            let hm = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&h::quote_path(&format!("{}/{}", source.container, source.object))) {
                hm.insert("x-copied-from", v);
            }
            if let Ok(v) = HeaderValue::from_str(&h::quote_path(&source.account)) {
                hm.insert("x-copied-from-account", v);
            }
            if let Some(lm) = sparts.headers.get(http::header::LAST_MODIFIED) {
                hm.insert("x-copied-from-last-modified", lm.clone());
            }
            // Swift answers with the copy's metadata too.
            for (name, value) in &sink {
                if is_object_meta(name.as_str()) || name.as_str() == "x-delete-at" {
                    hm.insert(name.clone(), value.clone());
                }
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{request, Recorder, Seen};
    use super::*;

    /// A fake proxy app holding one object, `/v1/a/c/src` ("hello"), and
    /// accepting PUTs.
    fn app() -> Arc<Recorder> {
        Recorder::new(|seen: &Seen| match (seen.method.as_str(), seen.uri.as_str()) {
            ("GET", "/v1/a/c/src") => {
                let mut r = Response::new(h::full("hello"));
                let hm = r.headers_mut();
                for (k, v) in [
                    ("content-length", "5"),
                    ("etag", "5d41402abc4b2a76b9719d911017c592"),
                    ("content-type", "text/plain"),
                    ("x-object-meta-color", "blue"),
                    ("last-modified", "Tue, 01 Dec 2026 00:00:00 GMT"),
                ] {
                    hm.insert(k, v.parse().unwrap());
                }
                r
            }
            ("GET", _) => h::text(StatusCode::NOT_FOUND, "Not Found"),
            ("PUT", _) => h::status(StatusCode::CREATED),
            _ => h::status(StatusCode::METHOD_NOT_ALLOWED),
        })
    }

    #[tokio::test]
    async fn copy_reads_the_source_as_the_newest_and_puts_its_bytes() {
        let next = app();
        let m = Copy { next: next.clone() };
        let resp = m.call(request("COPY", "/v1/a/c/src", &[("destination", "d/dst"), ("x-object-meta-size", "big")], "")).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.headers()["x-copied-from"], "c/src");
        assert_eq!(resp.headers()["x-copied-from-account"], "a");
        assert_eq!(resp.headers()["x-object-meta-color"], "blue");
        let seen = next.seen();
        assert_eq!((seen[0].method.as_str(), seen[0].uri.as_str()), ("GET", "/v1/a/c/src"));
        assert_eq!(seen[0].headers["x-newest"], "true");
        assert_eq!(seen[0].source, Some("SSC"));
        let put = &seen[1];
        assert_eq!((put.method.as_str(), put.uri.as_str()), ("PUT", "/v1/a/d/dst"));
        assert_eq!(put.body, "hello");
        assert_eq!(put.headers["content-length"], "5");
        assert_eq!(put.headers["etag"], "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(put.headers["x-object-meta-color"], "blue");
        assert_eq!(put.headers["x-object-meta-size"], "big");
        assert!(!put.headers.contains_key("x-copy-from") && !put.headers.contains_key("destination"));
    }

    #[tokio::test]
    async fn fresh_metadata_leaves_the_sources_behind() {
        let next = app();
        let m = Copy { next: next.clone() };
        let resp = m.call(request("PUT", "/v1/a/d/dst", &[("x-copy-from", "/c/src"), ("x-fresh-metadata", "true")], "")).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert!(!next.seen()[1].headers.contains_key("x-object-meta-color"));
    }

    #[tokio::test]
    async fn refusals() {
        let next = app();
        let m = Copy { next: next.clone() };
        let r = m.call(request("PUT", "/v1/a/d/dst", &[("x-copy-from", "c/src"), ("content-length", "3")], "abc")).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = m.call(request("PUT", "/v1/a/d/dst", &[("x-copy-from", "nocontainer")], "")).await;
        assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
        let r = m.call(request("COPY", "/v1/a/c/src", &[], "")).await;
        assert_eq!(r.status(), StatusCode::PRECONDITION_FAILED);
        assert!(next.seen().is_empty());
        // A missing source is the answer; nothing is written.
        let r = m.call(request("COPY", "/v1/a/c/missing", &[("destination", "d/x")], "")).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(next.seen().len(), 1);
        // Other requests pass untouched.
        let r = m.call(request("PUT", "/v1/a/d/plain", &[], "x")).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(next.seen()[1].body, "x");
    }

    #[tokio::test]
    async fn an_slo_manifest_copy_is_put_as_a_manifest() {
        let next = Recorder::new(|seen: &Seen| match seen.method.as_str() {
            "GET" => {
                let mut r = Response::new(h::full("[]"));
                for (k, v) in [
                    ("content-length", "2"),
                    ("etag", "d751713988987e9331980363e24189ce"),
                    ("x-static-large-object", "True"),
                    ("x-object-sysmeta-container-update-override-etag", "x; slo_etag=y"),
                ] {
                    r.headers_mut().insert(k, v.parse().unwrap());
                }
                r
            }
            _ => h::status(StatusCode::CREATED),
        });
        let m = Copy { next: next.clone() };
        let r = m.call(request("COPY", "/v1/a/c/m?multipart-manifest=get", &[("destination", "c/m2")], "")).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let seen = next.seen();
        assert_eq!(seen[0].uri, "/v1/a/c/m?multipart-manifest=get&format=raw");
        assert_eq!(seen[1].uri, "/v1/a/c/m2?multipart-manifest=put");
        assert!(!seen[1].headers.contains_key("etag"));
        assert!(!seen[1].headers.contains_key("x-object-sysmeta-container-update-override-etag"));
        // A copy of the joined object does not carry the SLO's ETag either.
        m.call(request("COPY", "/v1/a/c/m", &[("destination", "c/m3")], "")).await;
        let seen = next.seen();
        assert_eq!(seen[3].uri, "/v1/a/c/m3");
        assert!(!seen[3].headers.contains_key("etag"));
    }
}
