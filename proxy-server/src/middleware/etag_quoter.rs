//! `egg:swift#etag_quoter`: double-quotes the `ETag` of object responses,
//! as RFC 7232 wants (`"d41d8cd98f00b204e9800998ecf8427e"`), for the
//! accounts and containers that ask for it; some CDNs need it, some older
//! clients want bare MD5s.
//!
//! Whether to quote is decided by the container's
//! `X-Container-Rfc-Compliant-Etags`, else the account's
//! `X-Account-Rfc-Compliant-Etags`, else `enable_by_default` (false) of
//! the filter's section. Owners set the two headers with a PUT or POST of
//! the container or account (`true`/`false`; empty, or
//! `X-Remove-...-Rfc-Compliant-Etags`, removes); they are kept as system
//! metadata (`X-{Account,Container}-Sysmeta-Rfc-Compliant-Etags`) and shown
//! under the client names.
//!
//! The flags come from HEADs of the container (and of the account when the
//! container says nothing) through the pipeline to the right, made on the
//! middleware's own authority (source `EQ`). Unlike Swift, which reads them
//! from its info cache before passing the request on, they are looked up
//! after the response and only when it carries an ETag that is not
//! already quoted: a response without one (a DELETE, a 404, an ETag a
//! middleware already quoted) costs nothing, and with the default
//! configuration an object GET or HEAD costs one or two HEADs more. Reads
//! that other middlewares make (DLO and SLO segments, a copy's source) are
//! not quoted: the ETag is theirs to use, and a large manifest would pay
//! the look-ups once per segment.

use super::info;
use super::{BoxFuture, Build, Handler, Next, SwiftSource};
use crate::proxy::Proxy;
use common::config::{parse_bool, Section};
use common::http::{self as h, Body};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method, Request, Response};
use std::sync::Arc;

/// `swift.source` of the middleware's info look-ups.
const SOURCE: &str = "EQ";

pub struct EtagQuoter {
    /// Quote when neither the container nor the account says.
    enable_by_default: bool,
    next: Next,
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    let enable_by_default = section.get_bool("enable_by_default", false).map_err(|e| e.to_string())?;
    build.capabilities.insert("etag_quoter".into(), serde_json::json!({ "enable_by_default": enable_by_default }));
    Ok(Arc::new(EtagQuoter { enable_by_default, next }))
}

/// Whether an ETag value is already a quoted (strong or weak) entity tag.
fn is_quoted(etag: &[u8]) -> bool {
    (etag.starts_with(b"\"") || etag.starts_with(b"W/\"")) && etag.ends_with(b"\"") && etag.len() >= 2
}

/// A GET or HEAD another middleware made (Swift's `swift.source` set).
fn is_middleware_read(req: &Request<Body>) -> bool {
    matches!(*req.method(), Method::GET | Method::HEAD) && req.extensions().get::<SwiftSource>().is_some()
}

impl Handler for EtagQuoter {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let Some(segs) =
                common::path::unquote_internal(req.uri().path()).ok().and_then(|p| common::path::split_path(&p, 2, 4, true).ok())
            else {
                return self.next.call(req).await;
            };
            let [Some(version), Some(account), container, object] = <[Option<String>; 4]>::try_from(segs).unwrap_or_default() else {
                return self.next.call(req).await;
            };
            if !matches!(version.as_str(), "v1" | "v1.0") {
                return self.next.call(req).await;
            }
            match (container, object) {
                (container, None) => self.flag_request(req, if container.is_some() { "container" } else { "account" }).await,
                // A middleware reading an object (a DLO or SLO segment, a
                // copy's source) uses the ETag itself and would pay one or
                // two look-ups per read; what it answers the client passed
                // through here, or is a write's answer, which is quoted.
                (Some(_), Some(_)) if is_middleware_read(&req) => self.next.call(req).await,
                (Some(container), Some(_)) => self.object_request(req, &version, &account, &container).await,
                (None, Some(_)) => self.next.call(req).await,
            }
        })
    }
}

impl EtagQuoter {
    /// An account or container request: the client's flag goes in as
    /// system metadata and comes back out under the client's name.
    async fn flag_request(&self, mut req: Request<Body>, kind: &str) -> Response<Body> {
        let client = HeaderName::from_bytes(format!("x-{kind}-rfc-compliant-etags").as_bytes()).expect("a valid header name");
        let sysmeta = HeaderName::from_bytes(format!("x-{kind}-sysmeta-rfc-compliant-etags").as_bytes()).expect("a valid header name");
        let hm = req.headers_mut();
        if let Some(v) = hm.get(&client) {
            // Stored as Swift stores the Python bool it makes of the value.
            let stored = match v.as_bytes() {
                b"" => "",
                v if std::str::from_utf8(v).ok().and_then(parse_bool) == Some(true) => "True",
                _ => "False",
            };
            hm.insert(sysmeta.clone(), HeaderValue::from_static(stored));
        }
        if hm.get(format!("x-remove-{kind}-rfc-compliant-etags")).is_some_and(|v| !v.is_empty()) {
            hm.insert(sysmeta.clone(), HeaderValue::from_static(""));
        }
        let mut resp = self.next.call(req).await;
        let hm = resp.headers_mut();
        if let http::header::Entry::Occupied(e) = hm.entry(&sysmeta) {
            let values: Vec<HeaderValue> = e.remove_entry_mult().1.collect();
            for v in values {
                hm.append(&client, v);
            }
        }
        resp
    }

    /// An object request: its response's ETag quoted if the container, the
    /// account or the default says so.
    async fn object_request(&self, req: Request<Body>, version: &str, account: &str, container: &str) -> Response<Body> {
        let (parts, body) = req.into_parts();
        // What the look-ups need of the request as it came in (see
        // `subrequest`): its headers and its context.
        let mut orig = Request::new(());
        *orig.headers_mut() = parts.headers.clone();
        *orig.extensions_mut() = parts.extensions.clone();
        let (orig, ()) = orig.into_parts();
        let mut resp = self.next.call(Request::from_parts(parts, body)).await;
        if resp.headers().get_all(http::header::ETAG).iter().all(|v| is_quoted(v.as_bytes())) {
            return resp;
        }
        if !self.wants_quotes(&orig, version, account, container).await {
            return resp;
        }
        let hm = resp.headers_mut();
        let etags: Vec<HeaderValue> = hm.get_all(http::header::ETAG).iter().cloned().collect();
        hm.remove(http::header::ETAG);
        for v in etags {
            let v = if is_quoted(v.as_bytes()) {
                v
            } else {
                let mut quoted = Vec::with_capacity(v.len() + 2);
                quoted.push(b'"');
                quoted.extend_from_slice(v.as_bytes());
                quoted.push(b'"');
                HeaderValue::from_bytes(&quoted).unwrap_or(v)
            };
            hm.append(http::header::ETAG, v);
        }
        resp
    }

    /// The container's flag, else the account's, else the default; `false`
    /// when either look-up fails (as Swift leaves the ETag alone then).
    async fn wants_quotes(&self, orig: &Parts, version: &str, account: &str, container: &str) -> bool {
        let flag =
            |hm: &http::HeaderMap, name: &str| h::header_str(hm, name).filter(|v| !v.is_empty()).map(|v| parse_bool(v) == Some(true));
        let Some(cinfo) = info(&self.next, orig, &format!("/{version}/{account}/{container}"), SOURCE).await else {
            return false;
        };
        if let Some(on) = flag(&cinfo, "x-container-sysmeta-rfc-compliant-etags") {
            return on;
        }
        let Some(ainfo) = info(&self.next, orig, &format!("/{version}/{account}"), SOURCE).await else {
            return false;
        };
        flag(&ainfo, "x-account-sysmeta-rfc-compliant-etags").unwrap_or(self.enable_by_default)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{request, Recorder, Seen};
    use super::*;
    use http::StatusCode;

    /// Account `a` and container `a/c` with the given sysmeta flags (`None`:
    /// unset); objects answer with `etag`. Account and container requests
    /// echo back the sysmeta they were sent.
    fn cluster(account: Option<&'static str>, container: Option<&'static str>, etag: &'static str) -> Arc<Recorder> {
        Recorder::new(move |seen: &Seen| {
            let mut r = h::status(StatusCode::OK);
            let hm = r.headers_mut();
            match (seen.method.as_str(), seen.uri.as_str()) {
                ("HEAD", "/v1/a") => {
                    if let Some(f) = account {
                        hm.insert("x-account-sysmeta-rfc-compliant-etags", HeaderValue::from_static(f));
                    }
                }
                ("HEAD", "/v1/a/c") => {
                    if let Some(f) = container {
                        hm.insert("x-container-sysmeta-rfc-compliant-etags", HeaderValue::from_static(f));
                    }
                }
                (_, uri) if uri.matches('/').count() >= 4 => {
                    if !etag.is_empty() {
                        hm.insert(http::header::ETAG, HeaderValue::from_static(etag));
                    }
                }
                ("HEAD", _) => return h::status(StatusCode::NOT_FOUND),
                _ => {
                    for (k, v) in &seen.headers {
                        if k.as_str().contains("-sysmeta-") {
                            hm.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            r
        })
    }

    async fn etag(m: &EtagQuoter, method: &str, path: &str) -> Option<String> {
        let r = m.call(request(method, path, &[], "")).await;
        r.headers().get(http::header::ETAG).map(|v| v.to_str().unwrap().to_string())
    }

    const MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

    #[tokio::test]
    async fn the_container_overrides_the_account_which_overrides_the_default() {
        let quoted = format!("\"{MD5}\"");
        for (default, account, container, want) in [
            (false, None, None, MD5),
            (true, None, None, &quoted),
            (false, Some("True"), None, &quoted),
            (true, Some("False"), None, MD5),
            (false, None, Some("True"), &quoted),
            (true, None, Some("False"), MD5),
            (false, Some("False"), Some("True"), &quoted),
            (true, Some("True"), Some("False"), MD5),
            // An emptied flag is no flag.
            (false, Some("True"), Some(""), &quoted),
        ] {
            let next = cluster(account, container, MD5);
            let m = EtagQuoter { enable_by_default: default, next: next.clone() };
            for method in ["GET", "HEAD", "PUT"] {
                assert_eq!(etag(&m, method, "/v1/a/c/some/obj").await.as_deref(), Some(want), "{default} {account:?} {container:?}");
            }
            let heads: Vec<(String, Option<&str>)> =
                next.seen().iter().filter(|s| s.method == Method::HEAD).map(|s| (s.uri.clone(), s.source)).collect();
            assert_eq!(heads[0], ("/v1/a/c".to_string(), Some("EQ")));
        }
    }

    #[tokio::test]
    async fn etags_already_quoted_or_absent_cost_nothing() {
        for (etag_in, want) in [("\"quoted\"", Some("\"quoted\"")), ("W/\"weak\"", Some("W/\"weak\"")), ("", None)] {
            let next = cluster(None, None, etag_in);
            let m = EtagQuoter { enable_by_default: true, next: next.clone() };
            assert_eq!(etag(&m, "GET", "/v1/a/c/o").await.as_deref(), want);
            assert_eq!(next.seen().len(), 1, "no look-ups");
        }
        // Reads by other middlewares (segments, a copy's source) are left
        // alone; a copy's write is quoted.
        let next = cluster(None, None, MD5);
        let m = EtagQuoter { enable_by_default: true, next: next.clone() };
        for (method, want) in [("GET", MD5.to_string()), ("HEAD", MD5.to_string()), ("PUT", format!("\"{MD5}\""))] {
            let mut req = request(method, "/v1/a/c/seg", &[], "");
            req.extensions_mut().insert(SwiftSource("SLO"));
            let r = m.call(req).await;
            assert_eq!(r.headers()[http::header::ETAG], want.as_str(), "{method}");
        }
        let m = EtagQuoter { enable_by_default: true, next: cluster(None, None, "\"half") };
        assert_eq!(etag(&m, "GET", "/v1/a/c/o").await.as_deref(), Some("\"\"half\""));
    }

    #[tokio::test]
    async fn without_container_info_or_outside_the_api_nothing_changes() {
        let m = EtagQuoter { enable_by_default: true, next: cluster(None, None, MD5) };
        assert_eq!(etag(&m, "GET", "/v1/a/gone/o").await.as_deref(), Some(MD5));
        assert_eq!(etag(&m, "GET", "/v2/a/c/o").await.as_deref(), Some(MD5));
    }

    #[tokio::test]
    async fn owners_set_the_flags_as_sysmeta_and_see_them_by_their_names() {
        let next = cluster(None, None, MD5);
        let m = EtagQuoter { enable_by_default: false, next: next.clone() };
        for (path, kind) in [("/v1/a/c", "container"), ("/v1/a", "account")] {
            let client = format!("x-{kind}-rfc-compliant-etags");
            let sysmeta = format!("x-{kind}-sysmeta-rfc-compliant-etags");
            for (value, stored) in [("t", "True"), ("yes", "True"), ("f", "False"), ("bogus", "False"), ("", "")] {
                let r = m.call(request("POST", path, &[(client.as_str(), value)], "")).await;
                assert_eq!(next.seen().last().unwrap().headers[sysmeta.as_str()], stored);
                if stored.is_empty() {
                    continue;
                }
                assert_eq!(r.headers()[client.as_str()], stored);
                assert!(!r.headers().contains_key(sysmeta.as_str()));
            }
            let remove = format!("x-remove-{kind}-rfc-compliant-etags");
            m.call(request("POST", path, &[(remove.as_str(), "1"), (client.as_str(), "t")], "")).await;
            assert_eq!(next.seen().last().unwrap().headers[sysmeta.as_str()], "");
        }
    }
}
