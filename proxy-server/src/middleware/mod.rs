//! The proxy's middlewares, and what they share: the `Handler` every piece
//! of `[pipeline:main]` is, the request context a middleware leaves for the
//! ones to its right (Swift's WSGI `environ` keys), and subrequests.
//!
//! # Adding a middleware
//!
//! 1. Write `middleware/<name>.rs` with a struct holding its settings and
//!    `next: Next` (the pipeline to its right, Swift's `app`), a
//!    `pub fn factory(section: &Section, next: Next, build: &mut Build) ->
//!    Result<Next, String>` that reads only its own section, and
//!    `impl Handler` whose `call` looks at the request, answers it or passes
//!    it on with `self.next.call(req)`, and may change the response on the
//!    way back.
//! 2. Register its entry point (the `egg:swift#<entry>` name Swift uses) in
//!    `pipeline::ENTRY_POINTS`; if Swift inserts it into every pipeline,
//!    add it to `pipeline::REQUIRED` as well.
//! 3. It talks to the rest of the proxy only through the request: headers,
//!    the extensions below (`RequestInfo`, `AuthorizeHook`, `SwiftSource`)
//!    and subrequests into `next` (see `subrequest`), never by reaching
//!    into a controller.
//! 4. Unit-test it against a fake next handler (`testing::Recorder`).

pub mod account_quotas;
pub mod bulk;
pub mod cache;
pub mod catch_errors;
pub mod container_quotas;
pub mod copy;
pub mod crossdomain;
pub mod dlo;
pub mod domain_remap;
pub mod etag_quoter;
pub mod formpost;
pub mod gatekeeper;
pub mod healthcheck;
pub mod listing_formats;
pub mod object_versioning;
pub mod proxy_logging;
pub mod ratelimit;
pub mod slo;
pub mod staticweb;
pub mod symlink;
pub mod tempauth;
pub mod tempurl;
pub mod versioned_writes;

use crate::proxy::Proxy;
use common::http::Body;
pub use common::pipeline::{request_info, BoxFuture, FnHandler, Handler, Next};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use std::sync::Arc;

/// What building a pipeline gathers from its middlewares.
#[derive(Default)]
pub struct Build {
    /// Capabilities for `GET /info`, by middleware (Swift's
    /// `register_swift_info`).
    pub capabilities: serde_json::Map<String, serde_json::Value>,
    /// Whether an auth middleware is in the pipeline.
    pub has_auth: bool,
}

/// Which middleware made a subrequest (Swift's `swift.source`, logged in
/// the access line's `source` field): `SSC` for copy, `DLO`, `TA` for
/// tempauth's account look-ups, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwiftSource(pub &'static str);

/// Set on a response by a middleware whose listing must reach the client
/// as it is, unformatted by `listing_formats` (Swift's
/// `swift.format_listing = False`, e.g. object versioning's `?versions`).
#[derive(Debug, Clone, Copy)]
pub struct ListingAsIs;

/// The auth middleware's answer for one request, as controllers ask it
/// (Swift's `swift.authorize`).
pub enum Authorization {
    /// Allowed; `owner` means full control of the account (Swift's
    /// `swift_owner`: may see and set ACLs and other owner-only headers).
    Allow { owner: bool },
    /// The 401 or 403 to answer with.
    Deny(Response<Body>),
}

/// What a controller is about to do, for the auth middleware to judge.
pub struct AuthRequest<'a> {
    pub method: &'a Method,
    /// Unquoted names under `/v1`.
    pub account: &'a str,
    pub container: Option<&'a str>,
    pub object: Option<&'a str>,
    /// The container ACL that applies (`X-Container-Read` for reads,
    /// `X-Container-Write` for writes), when the controller knows it.
    pub acl: Option<&'a str>,
    /// The request's headers (`Referer`, ...).
    pub headers: &'a HeaderMap,
}

/// An auth middleware's judgement, left in the request for controllers
/// (and carried into subrequests, which act as the same caller).
pub trait Authorize: Send + Sync {
    fn authorize<'a>(&'a self, req: &'a AuthRequest<'a>) -> BoxFuture<'a, Authorization>;
}

/// The `Authorize` of the auth middleware that saw the request. A request
/// without one is allowed everything, as in Swift when no auth middleware
/// runs (the pipeline warns at start-up).
#[derive(Clone)]
pub struct AuthorizeHook(pub Arc<dyn Authorize>);

/// Allows everything as owner: for subrequests a middleware makes on its
/// own behalf (Swift's `swift.authorize_override`).
pub struct AllowAll;

impl Authorize for AllowAll {
    fn authorize<'a>(&'a self, _req: &'a AuthRequest<'a>) -> BoxFuture<'a, Authorization> {
        Box::pin(async { Authorization::Allow { owner: true } })
    }
}

/// Asks the request's auth middleware about `req`; allowed as owner when
/// there is none.
pub async fn authorize(hook: Option<&AuthorizeHook>, req: &AuthRequest<'_>) -> Authorization {
    match hook {
        Some(h) => h.0.authorize(req).await,
        None => Authorization::Allow { owner: true },
    }
}

/// A request made by a middleware from the request it is handling (Swift's
/// `make_subrequest`): `path` is the quoted path with its query, `body` an
/// in-memory or a streaming body. It carries the original's context (its
/// transaction, its caller's authorization) and `User-Agent`, `Host` and
/// `Referer`, but none of the client's other headers.
pub fn subrequest(
    orig: &http::request::Parts,
    method: Method,
    path: &str,
    headers: HeaderMap,
    body: Body,
    source: &'static str,
) -> Result<Request<Body>, Response<Body>> {
    let mut req = Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = path.parse().map_err(|_| common::http::text(StatusCode::PRECONDITION_FAILED, "Bad URL"))?;
    *req.headers_mut() = headers;
    for name in [http::header::USER_AGENT, http::header::HOST, http::header::REFERER] {
        if let (Some(v), false) = (orig.headers.get(&name), req.headers().contains_key(&name)) {
            req.headers_mut().insert(name, v.clone());
        }
    }
    *req.extensions_mut() = orig.extensions.clone();
    // A new request: the access log has not seen it yet.
    req.extensions_mut().remove::<proxy_logging::AccessLogMade>();
    req.extensions_mut().insert(SwiftSource(source));
    Ok(req)
}

#[cfg(test)]
pub mod testing {
    //! A fake next handler for middleware unit tests.
    use super::*;
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use std::sync::Mutex;

    /// What the fake next handler saw of a request.
    #[derive(Debug, Clone)]
    pub struct Seen {
        pub method: Method,
        pub uri: String,
        pub headers: HeaderMap,
        pub body: Bytes,
        pub source: Option<&'static str>,
    }

    /// Records every request and answers with `answer(&Seen)`.
    pub struct Recorder {
        pub seen: Mutex<Vec<Seen>>,
        #[allow(clippy::type_complexity)]
        answer: Box<dyn Fn(&Seen) -> Response<Body> + Send + Sync>,
    }

    impl Recorder {
        pub fn new(answer: impl Fn(&Seen) -> Response<Body> + Send + Sync + 'static) -> Arc<Recorder> {
            Arc::new(Recorder { seen: Mutex::new(Vec::new()), answer: Box::new(answer) })
        }

        pub fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl Handler for Recorder {
        fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
            Box::pin(async move {
                let source = req.extensions().get::<SwiftSource>().map(|s| s.0);
                let (parts, body) = req.into_parts();
                let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                let seen = Seen { method: parts.method, uri: parts.uri.to_string(), headers: parts.headers, body, source };
                let resp = (self.answer)(&seen);
                self.seen.lock().unwrap().push(seen);
                resp
            })
        }
    }

    /// A request to `uri` with headers.
    pub fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Request<Body> {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(common::http::full(body.into())).unwrap()
    }

    /// A response's whole body.
    pub async fn body_of(resp: Response<Body>) -> Bytes {
        resp.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default()
    }
}

/// Account or container info for a middleware (Swift's `get_account_info`
/// / `get_container_info`): the headers of a HEAD of the unquoted `path`
/// (`/v1/<account>[/<container>]`) made through `next` on the middleware's
/// own authority, system metadata included; `None` when it failed.
///
/// In a built proxy the answer comes from the proxy's info cache while it
/// is fresh (every request carries [`InfoCache`]); the HEAD is made only
/// on a miss, and refills the cache on its way through the controller.
/// As in Swift, the bytes of a versioned container include its versions'.
pub async fn info(next: &Next, orig: &http::request::Parts, path: &str, source: &'static str) -> Option<HeaderMap> {
    let Some(cache) = orig.extensions.get::<InfoCache>() else {
        return info_by_head(next, orig, path, source).await;
    };
    let mut hm = cached_info(cache, next, orig, path, source).await?;
    let versions = common::http::header_str(&hm, "x-container-sysmeta-versions-container")
        .map(|v| percent_encoding::percent_decode_str(v).decode_utf8_lossy().split('/').next().unwrap_or_default().to_string())
        .filter(|v| !v.is_empty());
    if let Some(versions) = versions {
        let account = path.rsplit_once('/').map(|(a, _)| a).unwrap_or_default();
        let bytes = |hm: &HeaderMap| common::http::header_str(hm, "x-container-bytes-used").and_then(|v| v.parse::<u64>().ok());
        if let Some(vhm) = cached_info(cache, next, orig, &format!("{account}/{versions}"), source).await {
            let total = bytes(&hm).unwrap_or(0) + bytes(&vhm).unwrap_or(0);
            hm.insert("x-container-bytes-used", total.into());
        }
    }
    Some(hm)
}

/// What the cache holds for `path`, filled by a HEAD on a miss (Swift's
/// `get_*_info` reads the cache the controller set, not the answer the
/// middlewares to the right made of it).
async fn cached_info(cache: &InfoCache, next: &Next, orig: &http::request::Parts, path: &str, source: &'static str) -> Option<HeaderMap> {
    if let Some(hm) = cache.0.middleware_info(path) {
        return Some(hm);
    }
    let headers = info_by_head(next, orig, path, source).await;
    cache.0.middleware_info(path).or(headers)
}

async fn info_by_head(next: &Next, orig: &http::request::Parts, path: &str, source: &'static str) -> Option<HeaderMap> {
    let mut hm = HeaderMap::new();
    // Info look-ups may name reserved (versions) containers.
    hm.insert(common::backend_headers::BACKEND_ALLOW_RESERVED_NAMES, http::HeaderValue::from_static("true"));
    let mut head = subrequest(orig, Method::HEAD, &common::http::quote_path(path), hm, common::http::empty(), source).ok()?;
    head.extensions_mut().insert(AuthorizeHook(Arc::new(AllowAll)));
    let resp = next.call(head).await;
    resp.status().is_success().then(|| resp.into_parts().0.headers)
}

/// The proxy whose info cache [`info`] reads (Swift's `swift.infocache`
/// and `swift.cache`), put in every request by [`WithInfoCache`].
#[derive(Clone)]
pub struct InfoCache(pub Arc<Proxy>);

/// The head of a built pipeline: gives every request the [`InfoCache`].
pub struct WithInfoCache {
    pub proxy: Arc<Proxy>,
    pub next: Next,
}

impl Handler for WithInfoCache {
    fn call(&self, mut req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        req.extensions_mut().insert(InfoCache(self.proxy.clone()));
        self.next.call(req)
    }
}

/// The unquoted `/<version>/<account>/<container>/<object>` of an object
/// request; `None` for any other path (middlewares that act on objects
/// pass those on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    pub version: String,
    pub account: String,
    pub container: String,
    pub object: String,
}

impl ObjectPath {
    pub fn parse(path: &str) -> Option<ObjectPath> {
        let path = common::path::unquote_internal(path).ok()?;
        let segs = common::path::split_path(&path, 4, 4, true).ok()?;
        let mut it = segs.into_iter().map(|s| s.filter(|s| !s.is_empty()));
        Some(ObjectPath { version: it.next()??, account: it.next()??, container: it.next()??, object: it.next()?? })
    }

    /// The quoted path, as a subrequest's URI takes it.
    pub fn quoted(&self) -> String {
        common::http::quote_path(&format!("/{}/{}/{}/{}", self.version, self.account, self.container, self.object))
    }
}

/// Base64 of the standard alphabet with its padding already stripped, as
/// SLO's data segments and tempurl's signatures take it; `None` on any
/// other character or an impossible length.
pub fn base64_decode_unpadded(s: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine;
    const UNPADDED: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::RequireNone).with_decode_allow_trailing_bits(true),
    );
    UNPADDED.decode(s).ok()
}

/// Standard base64 with padding.
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// One decoded query parameter of a (raw) query string.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let dec = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
        (dec(k) == key).then(|| dec(v))
    })
}
