//! The proxy application: routing of client requests, authentication,
//! account/container info, and the gatekeeper rules on headers.

use crate::backend::{Answer, Backends};
use crate::middleware::{AuthRequest, Authorization, AuthorizeHook, BoxFuture, Handler, Next};
use crate::settings::ProxySettings;
use bytes::Bytes;
use common::backend_headers as bh;
use common::http::{self as h, Body};
use common::server::{RequestInfo, Service};
use common::swift_conf::SwiftConf;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use ring::Ring;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Everything the proxy needs to serve requests.
pub struct Proxy {
    pub settings: ProxySettings,
    pub swift: SwiftConf,
    pub account_ring: Ring,
    pub container_ring: Ring,
    /// Object rings by storage policy index.
    pub object_rings: HashMap<u32, Ring>,
    pub backends: Backends,
    info_cache: Mutex<HashMap<String, (Instant, Arc<Answer>)>>,
    /// What the pipeline's middlewares registered for `GET /info`.
    capabilities: OnceLock<serde_json::Map<String, serde_json::Value>>,
}

/// What a controller knows about the request beyond the HTTP message.
pub struct Ctx {
    pub info: RequestInfo,
    /// The auth middleware's judgement (none: no auth in the pipeline).
    pub auth: Option<AuthorizeHook>,
    /// Unquoted path segments under `/v1`.
    pub account: String,
    pub container: Option<String>,
    pub object: Option<String>,
    /// `<scheme>://<host>` as the client addressed us.
    pub host_url: String,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Config(#[from] common::config::ConfigError),
    #[error("{0}")]
    SwiftConf(#[from] common::swift_conf::SwiftConfError),
    #[error("{0}")]
    Ring(#[from] ring::RingError),
}

impl Proxy {
    /// Loads swift.conf and the rings named by the settings.
    pub fn new(settings: ProxySettings) -> Result<Proxy, SetupError> {
        let swift = SwiftConf::load_dir(&settings.swift_dir)?;
        let account_ring = Ring::load_named(&settings.swift_dir, "account", swift.hash.clone())?;
        let container_ring = Ring::load_named(&settings.swift_dir, "container", swift.hash.clone())?;
        let mut object_rings = HashMap::new();
        for p in &swift.policies {
            object_rings.insert(p.index, Ring::load_named(&settings.swift_dir, &p.ring_name(), swift.hash.clone())?);
        }
        let backends = Backends {
            client: common::backend::BackendClient::new(settings.conn_timeout, settings.node_timeout),
            putters: Default::default(),
            errors: crate::nodes::ErrorLimiter::new(settings.error_suppression_limit, settings.error_suppression_interval),
            node_timeout: settings.node_timeout,
            request_node_count_factor: settings.request_node_count_factor,
        };
        Ok(Proxy {
            settings,
            swift,
            account_ring,
            container_ring,
            object_rings,
            backends,
            info_cache: Mutex::new(HashMap::new()),
            capabilities: OnceLock::new(),
        })
    }

    /// Records what the middlewares registered for `/info` (once, when the
    /// pipeline is built).
    pub fn set_capabilities(&self, capabilities: serde_json::Map<String, serde_json::Value>) {
        let _ = self.capabilities.set(capabilities);
    }

    /// What the middlewares registered for `/info`.
    pub fn capabilities(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.capabilities.get()
    }

    /// Headers every backend request carries.
    pub fn backend_headers(&self, ctx: &Ctx, method: &Method, path: &str) -> HeaderMap {
        let mut hm = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&ctx.info.trans_id) {
            hm.insert(bh::TRANS_ID, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("{method} {}", h::quote_path(path))) {
            hm.insert(http::header::REFERER, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("proxy-server {}", std::process::id())) {
            hm.insert(http::header::USER_AGENT, v);
        }
        hm.insert(http::header::CONNECTION, HeaderValue::from_static("keep-alive"));
        hm
    }

    /// Account or container info (a HEAD answer), cached for
    /// `recheck_*_existence` (a tenth of that for 404s).
    pub async fn info(&self, ctx: &Ctx, account: &str, container: Option<&str>) -> Arc<Answer> {
        if let Some(a) = self.cached_info(account, container) {
            return a;
        }
        let (ring, part) = match container {
            Some(c) => (&self.container_ring, self.container_ring.get_part(account, Some(c), None).unwrap_or(0)),
            None => (&self.account_ring, self.account_ring.get_part(account, None, None).unwrap_or(0)),
        };
        let path = match container {
            Some(c) => format!("/{account}/{c}"),
            None => format!("/{account}"),
        };
        let headers = self.backend_headers(ctx, &Method::HEAD, &path);
        let ans = self.backends.read(ring, part, Method::HEAD, &format!("{part}{path}"), "", &headers, false).await;
        self.remember_info(account, container, &ans);
        Arc::new(ans)
    }

    fn info_key(account: &str, container: Option<&str>) -> String {
        match container {
            Some(c) => format!("{account}/{c}"),
            None => account.to_string(),
        }
    }

    /// The cached answer for the account or container, while it is fresh.
    pub fn cached_info(&self, account: &str, container: Option<&str>) -> Option<Arc<Answer>> {
        let ttl = if container.is_some() { self.settings.recheck_container_existence } else { self.settings.recheck_account_existence };
        let cache = self.info_cache.lock().expect("info cache lock");
        let (at, a) = cache.get(&Self::info_key(account, container))?;
        let ttl = if a.status == StatusCode::NOT_FOUND { ttl / 10 } else { ttl };
        (at.elapsed() < ttl).then(|| a.clone())
    }

    /// Caches what a backend GET or HEAD of the account or container
    /// answered (its headers: a listing's body is not kept), as Swift's
    /// controllers set the info cache from every such answer.
    pub fn remember_info(&self, account: &str, container: Option<&str>, ans: &Answer) {
        if !(ans.status.is_success() || ans.status == StatusCode::NOT_FOUND) {
            return;
        }
        let kept = Arc::new(Answer { status: ans.status, headers: ans.headers.clone(), body: Bytes::new() });
        let mut cache = self.info_cache.lock().expect("info cache lock");
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(Self::info_key(account, container), (Instant::now(), kept));
    }

    /// Account or container info as a middleware reads it (Swift's
    /// `get_account_info`/`get_container_info` served from its cache):
    /// the cached answer's headers, system metadata included, for the
    /// unquoted `/<version>/<account>[/<container>]`; `None` unless a
    /// fresh answer that found it is cached.
    pub fn middleware_info(&self, path: &str) -> Option<HeaderMap> {
        let segs = common::path::split_path(path, 2, 3, false).ok()?;
        let account = segs[1].as_deref()?;
        let container = segs[2].as_deref();
        let ans = self.cached_info(account, container).filter(|a| a.status.is_success())?;
        let mut hm = HeaderMap::new();
        client_headers(&ans.headers, &mut hm);
        if container.is_some() {
            if let Some(v) = self.policy_name(&ans.headers) {
                hm.insert("x-storage-policy", v);
            }
        }
        Some(hm)
    }

    /// The name of the storage policy a container answer names by index.
    pub fn policy_name(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let index = h::header_str(headers, bh::BACKEND_STORAGE_POLICY_INDEX)?.parse::<u32>().ok()?;
        HeaderValue::from_str(&self.swift.policy_by_index(index)?.name).ok()
    }

    /// Forgets cached info after a write through this proxy.
    pub fn clear_info(&self, account: &str, container: Option<&str>) {
        let mut cache = self.info_cache.lock().expect("info cache lock");
        match container {
            Some(c) => {
                cache.remove(&format!("{account}/{c}"));
            }
            None => {
                cache.remove(account);
            }
        }
    }

    /// Asks the request's auth middleware whether it may do `method` here,
    /// given the container ACL that applies; allowed as owner when the
    /// pipeline has no auth.
    pub async fn authorize(&self, ctx: &Ctx, method: &Method, acl: Option<&str>, headers: &HeaderMap) -> Authorization {
        let req =
            AuthRequest { method, account: &ctx.account, container: ctx.container.as_deref(), object: ctx.object.as_deref(), acl, headers };
        crate::middleware::authorize(ctx.auth.as_ref(), &req).await
    }
}

/// Where account ACLs are stored (Swift's `core-access-control` sysmeta).
pub const ACCOUNT_ACL_SYSMETA: &str = "x-account-sysmeta-core-access-control";

/// Headers only an account's owner may set or see (Swift's
/// `swift_owner_headers`).
pub const OWNER_HEADERS: &[&str] = &[
    "x-container-read",
    "x-container-write",
    "x-container-sync-key",
    "x-container-sync-to",
    "x-account-meta-temp-url-key",
    "x-account-meta-temp-url-key-2",
    "x-container-meta-temp-url-key",
    "x-container-meta-temp-url-key-2",
    "x-account-access-control",
];

/// Removes the owner-only headers (from a non-owner's request or from a
/// response to one).
pub fn strip_owner_headers(headers: &mut HeaderMap) {
    for h in OWNER_HEADERS {
        headers.remove(*h);
    }
}

/// Copies a backend answer's headers that a client may see.
pub fn client_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        let n = name.as_str();
        // System metadata and backend headers go on to the middlewares;
        // the gatekeeper keeps them from clients.
        if matches!(n, "connection" | "keep-alive" | "transfer-encoding" | "date" | "server" | "x-trans-id" | "content-length") {
            continue;
        }
        if n == "etag" {
            // Swift's proxy hands out bare MD5s (etag_quoter aside).
            if let Ok(v) = HeaderValue::from_str(&value.to_str().unwrap_or_default().replace('"', "")) {
                to.append(name.clone(), v);
            }
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

/// A response from a backend answer, with its (small) body.
pub fn answer_response(a: &Answer, method: &Method) -> Response<Body> {
    let body = if *method == Method::HEAD { Bytes::new() } else { a.body.clone() };
    let mut r = Response::new(h::full(body.clone()));
    *r.status_mut() = a.status;
    client_headers(&a.headers, r.headers_mut());
    let len = if *method == Method::HEAD {
        a.headers.get(http::header::CONTENT_LENGTH).cloned().unwrap_or(HeaderValue::from(0))
    } else {
        HeaderValue::from(body.len())
    };
    r.headers_mut().insert(http::header::CONTENT_LENGTH, len);
    r
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = q else { return Vec::new() };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
            (dec(k), dec(v))
        })
        .collect()
}

/// The decoded query parameters of a request.
pub fn query(req: &Request<Body>) -> Vec<(String, String)> {
    parse_query(req.uri().query())
}

/// One query parameter.
pub fn param<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The proxy server: the pipeline built from `[pipeline:main]`, served by
/// the common scaffold.
pub struct ProxyService {
    pub pipeline: Next,
}

impl Service for ProxyService {
    fn server_type(&self) -> &'static str {
        "proxy-server"
    }

    fn allowed_methods(&self) -> Vec<&'static str> {
        vec!["COPY", "DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"]
    }

    fn handles_options(&self) -> bool {
        true
    }

    fn pipeline(self: Arc<Self>) -> Next {
        Arc::new(Finish { next: self.pipeline.clone() })
    }

    async fn handle(self: Arc<Self>, req: Request<Body>, _info: RequestInfo) -> Response<Body> {
        self.pipeline().call(req).await
    }
}

/// What the proxy's server adds to every answer (eventlet's part in
/// Swift): `Connection: keep-alive` echoed, `Date`, a default
/// `Content-Type`.
struct Finish {
    next: Next,
}

impl Handler for Finish {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let keep_alive = h::header_str(req.headers(), "connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive"));
            let mut resp = self.next.call(req).await;
            let hm = resp.headers_mut();
            if keep_alive && !hm.contains_key(http::header::CONNECTION) {
                hm.insert(http::header::CONNECTION, HeaderValue::from_static("keep-alive"));
            }
            if !hm.contains_key(http::header::DATE) {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                if let Ok(v) = HeaderValue::from_str(&common::timestamp::http_date(now)) {
                    hm.insert(http::header::DATE, v);
                }
            }
            if !hm.contains_key(http::header::CONTENT_TYPE) && !resp.status().is_informational() {
                resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
            }
            resp
        })
    }
}

/// The proxy app, last in the pipeline (Swift's `proxy-server` app).
pub struct App(pub Arc<Proxy>);

impl Handler for App {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(self.0.clone().route(req))
    }
}

impl Proxy {
    async fn route(self: Arc<Self>, req: Request<Body>) -> Response<Body> {
        let info = crate::middleware::request_info(&req);
        let raw_path = req.uri().path().to_string();
        if raw_path == "/info" {
            return crate::info::info(&self, &req);
        }
        // Reserved (`\0`) names only for middlewares' requests; the
        // gatekeeper strips X-Backend-* from clients'.
        let allow_reserved =
            h::header_str(req.headers(), bh::BACKEND_ALLOW_RESERVED_NAMES).is_some_and(|v| common::config::parse_bool(v) == Some(true));
        let unquote = if allow_reserved { common::path::unquote_internal } else { common::path::unquote };
        let path = match unquote(&raw_path) {
            Ok(p) => p,
            Err(e) => return h::text(e.status(), e.to_string()),
        };
        let host = h::header_str(req.headers(), "host").unwrap_or("localhost").to_string();
        let host_url = format!("http://{host}");
        let segs = match common::path::split_path(&path, 1, 4, true) {
            Ok(s) => s,
            Err(_) => return h::text(StatusCode::NOT_FOUND, "Not Found"),
        };
        let version = segs[0].clone().unwrap_or_default();
        let valid_version = self.swift.constraints.valid_api_versions.contains(&version);
        // Swift: an account under an unknown version is a bad request; a
        // path that names no account has no controller ("Bad URL").
        if !valid_version {
            return if segs[1].is_some() {
                h::text(StatusCode::BAD_REQUEST, "Invalid path")
            } else {
                h::text(StatusCode::PRECONDITION_FAILED, "Bad URL")
            };
        }
        let Some(account) = segs[1].clone() else {
            // "/v1" alone is a bad URL; "/v1//c/o" names no account.
            let rest = path.trim_start_matches('/').split_once('/').map_or("", |(_, r)| r);
            return if rest.trim_matches('/').is_empty() {
                h::text(StatusCode::PRECONDITION_FAILED, "Bad URL")
            } else {
                h::text(StatusCode::NOT_FOUND, "Not Found")
            };
        };
        if let Some(te) = h::header_str(req.headers(), "transfer-encoding") {
            // Only chunked transfer coding is implemented (as in Swift).
            if te.split(',').any(|c| !c.trim().eq_ignore_ascii_case("chunked")) {
                return h::text(StatusCode::NOT_IMPLEMENTED, "Not Implemented");
            }
        }
        let container = segs[2].clone();
        let object = segs[3].clone();
        if object.is_some() && container.is_none() {
            return h::text(StatusCode::NOT_FOUND, "Not Found");
        }
        // eventlet refuses header lines longer than max_header_size.
        let max_line = self.swift.constraints.max_header_size as usize;
        if req.headers().iter().any(|(n, v)| n.as_str().len() + 2 + v.len() > max_line) {
            return h::text(StatusCode::BAD_REQUEST, "Header value too long");
        }
        let auth = req.extensions().get::<AuthorizeHook>().cloned();
        let ctx = Ctx { info, auth, account, container, object, host_url };
        if let Some(e) =
            [Some(("account", &ctx.account)), ctx.container.as_ref().map(|c| ("container", c)), ctx.object.as_ref().map(|o| ("object", o))]
                .into_iter()
                .flatten()
                .find_map(|(kind, name)| crate::constraints::check_name(kind, name, &self.swift.constraints).err())
        {
            return h::text(StatusCode::BAD_REQUEST, e);
        }
        if req.method() == Method::OPTIONS {
            return crate::cors::options(&self, &ctx, &req).await;
        }
        let origin = h::header_str(req.headers(), "origin").map(str::to_string);
        let mut resp = if ctx.object.is_some() {
            crate::object::handle(&self, &ctx, req).await
        } else if ctx.container.is_some() {
            crate::container::handle(&self, &ctx, req).await
        } else {
            crate::account::handle(&self, &ctx, req).await
        };
        if let Some(origin) = origin {
            crate::cors::apply(&self, &ctx, &origin, &mut resp).await;
        }
        resp
    }
}

/// Reads a small request body (account/container requests), within the
/// client timeout; `None` if it is too large or the client stalls.
pub async fn small_body(req: Request<Body>, limit: usize, timeout: Duration) -> Option<Bytes> {
    use http_body_util::BodyExt;
    let limited = http_body_util::Limited::new(req.into_body(), limit);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(c)) => Some(c.to_bytes()),
        _ => None,
    }
}
