//! `egg:swift#tempurl`: temporary URLs. A request carrying
//! `temp_url_sig` and `temp_url_expires` (and optionally
//! `temp_url_prefix`, `temp_url_ip_range`, `filename`, `inline`) is allowed
//! without a token when the signature is the HMAC of
//! `[ip=<range>\n]<METHOD>\n<expires>\n<path>` under one of the temp URL
//! keys of the account (`X-Account-Meta-Temp-URL-Key`, `-Key-2`) or of the
//! container (`X-Container-Meta-Temp-URL-Key`, `-Key-2`). `<path>` is the
//! unquoted `/v1/<a>/<c>/<o>`, or `prefix:/v1/<a>/<c>/<prefix>` for a
//! prefix URL.
//!
//! The signature is hex (its length says SHA-1, SHA-256 or SHA-512) or
//! `<digest>:<base64>` (standard or URL-safe, padding optional); only the
//! digests of `allowed_digests` count (default, as Swift 2.38's code:
//! `sha1 sha256 sha512`, SHA-1 reported as deprecated in `/info`; leave
//! it out of the list to refuse SHA-1 signatures). `temp_url_expires` is
//! Unix seconds or ISO 8601 (`2024-01-02T03:04:05Z`). A `HEAD` is also
//! allowed by a `GET`, `PUT` or `POST` signature.
//!
//! A valid URL leaves an `AuthorizeHook` in the request that allows the
//! key's scope only (the whole account for an account key, the one
//! container for a container key), so that segments of a manifest read
//! through it are held to the same scope; tempauth keeps a hook it finds.
//! Anything else wrong answers 401 (`Temp URL invalid`).
//!
//! Headers: `X-Object-Manifest` and `X-Symlink-Target` are refused (400)
//! on writes; `incoming_remove_headers` (default `x-timestamp
//! x-open-expired`) are dropped from the request and
//! `outgoing_remove_headers` (default `x-object-meta-*`) from the response,
//! except those matching the `*_allow_headers` (default outgoing:
//! `x-object-meta-public-*`); a trailing `*` matches a prefix. A successful
//! `GET`/`HEAD` gets `Content-Disposition` (attachment named after the
//! object, or `filename`, or `inline`) and `Expires`.
//!
//! Keys are read from account and container info (HEADs through the
//! pipeline to the right, source `TU`) for every signed request; nothing is
//! cached here.

use super::{info, AuthRequest, Authorization, Authorize, AuthorizeHook, BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use common::config::Section;
use common::http::{self as h, Body};
use hmac::{Hmac, Mac};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use std::net::IpAddr;
use std::sync::Arc;

/// `swift.source` of the info look-ups.
const SOURCE: &str = "TU";

/// Headers a temp URL may never set on a write.
const DISALLOWED_INCOMING_HEADERS: &[&str] = &["x-object-manifest", "x-symlink-target"];

const DEFAULT_METHODS: &str = "GET HEAD PUT POST DELETE";
const DEFAULT_INCOMING_REMOVE_HEADERS: &str = "x-timestamp x-open-expired";
const DEFAULT_INCOMING_ALLOW_HEADERS: &str = "";
const DEFAULT_OUTGOING_REMOVE_HEADERS: &str = "x-object-meta-*";
const DEFAULT_OUTGOING_ALLOW_HEADERS: &str = "x-object-meta-public-*";

/// The digests a signature may use: Swift's supported ones.
const SUPPORTED_DIGESTS: &[&str] = &["sha1", "sha256", "sha512"];
/// Still accepted when allowed, but reported as deprecated.
const DEPRECATED_DIGESTS: &[&str] = &["sha1"];
/// What `allowed_digests` is when the section does not set it (Swift's
/// `DEFAULT_ALLOWED_DIGESTS`).
const DEFAULT_ALLOWED_DIGESTS: &str = "sha1 sha256 sha512";

pub struct TempUrl {
    methods: Vec<String>,
    allowed_digests: Vec<String>,
    incoming: HeaderRules,
    outgoing: HeaderRules,
    next: Next,
}

/// Header names to remove unless allowed; a pattern ending in `*` is a
/// prefix. Names are lower case.
struct HeaderRules {
    remove: Vec<String>,
    allow: Vec<String>,
}

impl HeaderRules {
    fn new(remove: &[String], allow: &[String]) -> HeaderRules {
        let lower = |v: &[String]| v.iter().map(|s| s.to_ascii_lowercase()).collect();
        HeaderRules { remove: lower(remove), allow: lower(allow) }
    }

    fn matches(patterns: &[String], name: &str) -> bool {
        patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == p,
        })
    }

    fn removes(&self, name: &str) -> bool {
        !Self::matches(&self.allow, name) && Self::matches(&self.remove, name)
    }

    fn clean(&self, headers: &mut HeaderMap) {
        let doomed: Vec<_> = headers.keys().filter(|k| self.removes(k.as_str())).cloned().collect();
        for name in doomed {
            headers.remove(name);
        }
    }
}

/// `allowed_digests` of a section (tempurl's or formpost's): the supported
/// ones it lists, and which of those are deprecated. An error when none is
/// left.
pub(crate) fn allowed_digests(section: &Section) -> Result<(Vec<String>, Vec<String>), String> {
    let conf = section.get_str("allowed_digests", DEFAULT_ALLOWED_DIGESTS).map_err(|e| e.to_string())?;
    let conf = if conf.trim().is_empty() { DEFAULT_ALLOWED_DIGESTS.to_string() } else { conf };
    let mut allowed: Vec<String> =
        conf.split_whitespace().map(str::to_ascii_lowercase).filter(|d| SUPPORTED_DIGESTS.contains(&d.as_str())).collect();
    allowed.sort();
    allowed.dedup();
    if allowed.is_empty() {
        return Err(format!("{}: no valid digest algorithms in allowed_digests", section.name()));
    }
    let deprecated = allowed.iter().filter(|d| DEPRECATED_DIGESTS.contains(&d.as_str())).cloned().collect();
    Ok((allowed, deprecated))
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    Ok(Arc::new(TempUrl::from_section(section, next, build)?))
}

impl TempUrl {
    fn from_section(section: &Section, next: Next, build: &mut Build) -> Result<TempUrl, String> {
        let list = |key: &str, default: &str| -> Result<Vec<String>, String> {
            Ok(section.get_str(key, default).map_err(|e| e.to_string())?.split_whitespace().map(str::to_string).collect())
        };
        let methods = list("methods", DEFAULT_METHODS)?;
        let incoming_remove = list("incoming_remove_headers", DEFAULT_INCOMING_REMOVE_HEADERS)?;
        let incoming_allow = list("incoming_allow_headers", DEFAULT_INCOMING_ALLOW_HEADERS)?;
        let outgoing_remove = list("outgoing_remove_headers", DEFAULT_OUTGOING_REMOVE_HEADERS)?;
        let outgoing_allow = list("outgoing_allow_headers", DEFAULT_OUTGOING_ALLOW_HEADERS)?;
        let (allowed, deprecated) = allowed_digests(section)?;
        let mut caps = serde_json::json!({
            "methods": methods,
            "incoming_remove_headers": incoming_remove,
            "incoming_allow_headers": incoming_allow,
            "outgoing_remove_headers": outgoing_remove,
            "outgoing_allow_headers": outgoing_allow,
            "allowed_digests": allowed,
        });
        if !deprecated.is_empty() {
            caps["deprecated_digests"] = serde_json::json!(deprecated);
        }
        build.capabilities.insert("tempurl".into(), caps);
        Ok(TempUrl {
            methods,
            allowed_digests: allowed,
            incoming: HeaderRules::new(&incoming_remove, &incoming_allow),
            outgoing: HeaderRules::new(&outgoing_remove, &outgoing_allow),
            next,
        })
    }
}

/// The temp URL parameters of a query string (first value of each).
#[derive(Debug, Default)]
struct Params {
    sig: Option<String>,
    expires: Option<String>,
    prefix: Option<String>,
    filename: Option<String>,
    inline: bool,
    ip_range: Option<String>,
}

impl Params {
    fn parse(query: Option<&str>) -> Params {
        let q = |k| super::query_param(query, k);
        Params {
            sig: q("temp_url_sig"),
            expires: q("temp_url_expires"),
            prefix: q("temp_url_prefix"),
            filename: q("filename"),
            inline: q("inline").is_some(),
            ip_range: q("temp_url_ip_range"),
        }
    }
}

/// Whose key signed the URL: what the URL may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Account,
    Container,
}

impl Handler for TempUrl {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            if req.method() == Method::OPTIONS {
                return self.next.call(req).await;
            }
            let params = Params::parse(req.uri().query());
            let expires = params.expires.as_deref().map(|e| normalize_expires(e, now()));
            if params.sig.is_none() && expires.is_none() {
                return self.next.call(req).await;
            }
            match self.check(&req, &params, expires.unwrap_or(0)).await {
                Ok(valid) => self.forward(req, params, valid).await,
                Err(resp) => resp,
            }
        })
    }
}

/// What a valid temp URL grants.
struct Valid {
    account: String,
    container: String,
    object: String,
    scope: Scope,
    /// The signature, as hex.
    sig: String,
    expires: u64,
}

impl TempUrl {
    /// Validates the temp URL of `req`: the grant, or the 401 (or 400) to
    /// answer with.
    async fn check(&self, req: &Request<Body>, params: &Params, expires: u64) -> Result<Valid, Response<Body>> {
        let invalid = || invalid(req.method(), req.uri().path());
        let sig = params.sig.as_deref().filter(|s| !s.is_empty()).ok_or_else(invalid)?;
        if expires == 0 {
            return Err(invalid());
        }
        let (digest, sig) = extract_digest_and_algorithm(sig).ok_or_else(invalid)?;
        if !self.allowed_digests.iter().any(|d| d == digest) {
            return Err(invalid());
        }
        let method = req.method().as_str();
        let container_root = matches!(*req.method(), Method::GET | Method::HEAD) && params.prefix.as_deref() == Some("");
        let (account, container, object) = self.path_parts(method, req.uri().path(), container_root).ok_or_else(invalid)?;

        if let Some(range) = params.ip_range.as_deref().filter(|r| !r.is_empty()) {
            let client = super::request_info(req).remote.ip();
            if !ip_in_network(client, range) {
                return Err(invalid());
            }
        }

        let parts = parts_of(req);
        let keys = keys(&self.next, &parts, &account, &container, SOURCE).await;
        if keys.is_empty() {
            return Err(invalid());
        }
        let path = match params.prefix.as_deref() {
            None => format!("/v1/{account}/{container}/{object}"),
            Some(prefix) if object.starts_with(prefix) => format!("prefix:/v1/{account}/{container}/{prefix}"),
            Some(_) => return Err(invalid()),
        };
        let methods: &[&str] = if method == "HEAD" { &["HEAD", "GET", "POST", "PUT"] } else { &[method] };
        let ip_range = params.ip_range.as_deref().filter(|r| !r.is_empty());
        let scope = methods
            .iter()
            .flat_map(|m| keys.iter().map(move |(key, scope)| (m, key, scope)))
            .find(|(m, key, _)| {
                let body = hmac_body(m, expires, &path, ip_range);
                hmac_hex(digest, key.as_bytes(), body.as_bytes()).is_some_and(|want| streq_const_time(&want, &sig))
            })
            .map(|(_, _, scope)| *scope)
            .ok_or_else(invalid)?;

        if !matches!(*req.method(), Method::GET | Method::HEAD) {
            if let Some(name) = DISALLOWED_INCOMING_HEADERS.iter().find(|n| req.headers().contains_key(**n)) {
                return Err(h::text(StatusCode::BAD_REQUEST, format!("The header '{}' is not allowed in this tempurl", title_case(name))));
            }
        }
        Ok(Valid { account, container, object, scope, sig, expires })
    }

    /// The unquoted account, container and object of a request this
    /// middleware serves (a configured method on a `v1` object, or on a
    /// container root when `container_root`).
    fn path_parts(&self, method: &str, raw_path: &str, container_root: bool) -> Option<(String, String, String)> {
        if !self.methods.iter().any(|m| m == method) {
            return None;
        }
        let path = common::path::unquote(raw_path).ok()?;
        let segs = common::path::split_path(&path, if container_root { 3 } else { 4 }, 4, true).ok()?;
        let object = segs.get(3).cloned().flatten().unwrap_or_default();
        if segs[0].as_deref() != Some("v1") || (!container_root && object.trim_matches('/').is_empty()) {
            return None;
        }
        Some((segs[1].clone()?, segs[2].clone()?, object))
    }

    /// Sends on a request whose temp URL is valid, and dresses the answer.
    async fn forward(&self, mut req: Request<Body>, params: Params, valid: Valid) -> Response<Body> {
        self.incoming.clean(req.headers_mut());
        let container = (valid.scope == Scope::Container).then(|| valid.container.clone());
        req.extensions_mut().insert(AuthorizeHook(Arc::new(SameScope { account: valid.account.clone(), container })));

        // Only the temp URL's own parameters go on, as in Swift.
        let mut query = form_urlencoded(&[("temp_url_sig", &valid.sig), ("temp_url_expires", params.expires.as_deref().unwrap_or(""))]);
        for (k, v) in [("temp_url_prefix", &params.prefix), ("filename", &params.filename)] {
            if let Some(v) = v.as_deref().filter(|v| k == "temp_url_prefix" || !v.is_empty()) {
                query.push('&');
                query.push_str(&form_urlencoded(&[(k, v)]));
            }
        }
        if params.inline {
            query.push_str("&inline=");
        }
        let path = req.uri().path().to_string();
        if let Ok(uri) = format!("{path}?{query}").parse() {
            *req.uri_mut() = uri;
        }
        let read = matches!(*req.method(), Method::GET | Method::HEAD);
        let method = req.method().clone();

        let mut resp = self.next.call(req).await;
        self.outgoing.clean(resp.headers_mut());
        if !read || !resp.status().is_success() {
            return resp;
        }
        let staticweb = h::header_str(resp.headers(), "x-backend-content-generator") == Some("staticweb");
        if !staticweb && valid.object.is_empty() {
            return invalid(&method, &path);
        }
        let filename = params.filename.as_deref().filter(|f| !f.is_empty());
        let disposition = if params.inline || staticweb {
            match filename {
                Some(f) => disposition_format("inline", f),
                None => "inline".to_string(),
            }
        } else if let Some(f) = filename {
            disposition_format("attachment", f)
        } else if let Some(existing) = resp.headers().get(http::header::CONTENT_DISPOSITION) {
            String::from_utf8_lossy(existing.as_bytes()).into_owned()
        } else {
            let name = path_basename(&path);
            disposition_format("attachment", &name)
        };
        let hm = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&disposition.replace('\n', "%0A")) {
            hm.insert(http::header::CONTENT_DISPOSITION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&common::timestamp::http_date(valid.expires)) {
            hm.insert(http::header::EXPIRES, v);
        }
        resp
    }
}

/// The `authorize` of a request made through a temp URL: anything in the
/// key's account, or in its container for a container key.
struct SameScope {
    account: String,
    container: Option<String>,
}

impl Authorize for SameScope {
    fn authorize<'a>(&'a self, r: &'a AuthRequest<'a>) -> BoxFuture<'a, Authorization> {
        Box::pin(async move {
            let allowed = r.account == self.account
                && match &self.container {
                    Some(c) => r.container == Some(c.as_str()),
                    None => true,
                };
            if allowed {
                Authorization::Allow { owner: false }
            } else {
                let mut resp = h::text(
                    StatusCode::UNAUTHORIZED,
                    "<html><h1>Unauthorized</h1><p>This server could not verify that you are authorized to access the document you requested.</p></html>",
                );
                if let Ok(v) = HeaderValue::from_str(&format!("Swift realm=\"{}\"", h::quote_path(r.account))) {
                    resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
                }
                Authorization::Deny(resp)
            }
        })
    }
}

/// A copy of a request's head, to make subrequests from.
pub(crate) fn parts_of<B>(req: &Request<B>) -> Parts {
    let (mut parts, _) = Request::new(()).into_parts();
    parts.method = req.method().clone();
    parts.uri = req.uri().clone();
    parts.headers = req.headers().clone();
    parts.extensions = req.extensions().clone();
    parts
}

/// The 401 of an invalid temp URL (no body for a HEAD), with swob's
/// realm: the path's account.
fn invalid(method: &Method, raw_path: &str) -> Response<Body> {
    let body = if method == Method::HEAD { "" } else { "401 Unauthorized: Temp URL invalid\n" };
    let mut resp = h::text(StatusCode::UNAUTHORIZED, body);
    let realm = raw_path.split('/').nth(2).filter(|a| !a.is_empty()).unwrap_or("unknown");
    if let Ok(v) = HeaderValue::from_str(&format!("Swift realm=\"{realm}\"")) {
        resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
    }
    resp
}

/// The temp URL keys of an account and its container (Swift's
/// `get_tempurl_keys_from_metadata` over account and container info),
/// account keys first.
async fn keys(next: &Next, parts: &Parts, account: &str, container: &str, source: &'static str) -> Vec<(String, Scope)> {
    let mut keys = Vec::new();
    let lookups = [
        (format!("/v1/{account}"), "x-account-meta-temp-url-key", Scope::Account),
        (format!("/v1/{account}/{container}"), "x-container-meta-temp-url-key", Scope::Container),
    ];
    for (path, header, scope) in lookups {
        if let Some(headers) = info(next, parts, &path, source).await {
            for name in [header.to_string(), format!("{header}-2")] {
                if let Some(v) = headers.get(name.as_str()) {
                    keys.push((String::from_utf8_lossy(v.as_bytes()).into_owned(), scope));
                }
            }
        }
    }
    keys
}

/// The temp URL keys (account's, then container's) for formpost.
pub(crate) async fn tempurl_keys(next: &Next, parts: &Parts, account: &str, container: &str, source: &'static str) -> Vec<String> {
    keys(next, parts, account, container, source).await.into_iter().map(|(k, _)| k).collect()
}

/// Seconds since the epoch, now.
fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `temp_url_expires` as Unix seconds: an integer or ISO 8601
/// (`%Y-%m-%dT%H:%M:%SZ`); 0 when unparsable or already past.
fn normalize_expires(value: &str, now: u64) -> u64 {
    let parsed = match value.trim().parse::<i64>() {
        Ok(n) => n,
        Err(_) => parse_iso8601(value).unwrap_or(0),
    };
    if parsed < 0 || (parsed as u64) < now {
        0
    } else {
        parsed as u64
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` as Unix seconds.
fn parse_iso8601(value: &str) -> Option<i64> {
    let b = value.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = value.get(r)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    let (y, mo, d, hh, mm, ss) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > month_days[(mo - 1) as usize] || hh > 23 || mm > 59 || ss > 61 {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((mo + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The signed text: `[ip=<range>\n]<method>\n<expires>\n<path>`.
pub(crate) fn hmac_body(method: &str, expires: u64, path: &str, ip_range: Option<&str>) -> String {
    match ip_range {
        Some(range) => format!("ip={range}\n{method}\n{expires}\n{path}"),
        None => format!("{method}\n{expires}\n{path}"),
    }
}

/// The hex HMAC of `message` under `key` with a supported digest.
pub(crate) fn hmac_hex(digest: &str, key: &[u8], message: &[u8]) -> Option<String> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Option<String> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key).ok()?;
        mac.update(message);
        Some(mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect())
    }
    match digest {
        "sha1" => run::<Hmac<sha1::Sha1>>(key, message),
        "sha256" => run::<Hmac<sha2::Sha256>>(key, message),
        "sha512" => run::<Hmac<sha2::Sha512>>(key, message),
        _ => None,
    }
}

/// A client's signature as `(digest, hex)`: plain hex (the length names
/// the digest) or `<digest>:<base64>` (standard or URL-safe, padding
/// optional). `None` when it does not decode.
pub(crate) fn extract_digest_and_algorithm(value: &str) -> Option<(&str, String)> {
    if let Some((algo, b64)) = value.split_once(':') {
        let url_safe = (b64.contains('-') || b64.contains('_')) && !(b64.contains('+') || b64.contains('/'));
        let b64 = if url_safe { b64.replace('-', "+").replace('_', "/") } else { b64.to_string() };
        let raw = super::base64_decode_unpadded(b64.trim_matches('='))?;
        return Some((algo, raw.iter().map(|b| format!("{b:02x}")).collect()));
    }
    // Only even lengths follow, so this is a full hex decode check.
    if !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let algo = match value.len() {
        40 => "sha1",
        64 => "sha256",
        128 => "sha512",
        _ => return None,
    };
    Some((algo, value.to_string()))
}

/// Compares two signatures in time independent of where they differ.
pub(crate) fn streq_const_time(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `client` is inside `range` (an address or a CIDR network whose
/// host bits are zero, as Python's strict `ip_network`).
fn ip_in_network(client: IpAddr, range: &str) -> bool {
    let (addr, bits) = match range.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (range, None),
    };
    let Ok(net) = addr.parse::<IpAddr>() else { return false };
    let width = if net.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => width,
        Some(b) => match b.parse::<u32>() {
            Ok(n) if n <= width && b.bytes().all(|c| c.is_ascii_digit()) => n,
            _ => return false,
        },
    };
    let as_u128 = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    };
    let client = match (client, net) {
        (IpAddr::V6(v6), IpAddr::V4(_)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => return false,
        },
        (IpAddr::V4(_), IpAddr::V6(_)) => return false,
        (c, _) => c,
    };
    let mask = if bits == 0 { 0 } else { (u128::MAX >> (128 - width)) & !((1u128 << (width - bits)) - 1) };
    let net = as_u128(net);
    net & !mask == 0 && as_u128(client) & mask == net
}

/// `X-Object-Manifest` for `x-object-manifest`.
fn title_case(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c.flat_map(char::to_lowercase)).collect()).unwrap_or_default()
        })
        .collect::<Vec<String>>()
        .join("-")
}

/// Python's `urllib.parse.quote`: `/` safe, and space too when `space`.
fn py_quote(s: &str, space: bool) -> String {
    const SLASH: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b'/');
    const SLASH_SPACE: &percent_encoding::AsciiSet = &SLASH.remove(b' ');
    percent_encoding::utf8_percent_encode(s, if space { SLASH_SPACE } else { SLASH }).to_string()
}

/// `<type>; filename="<quoted>"; filename*=UTF-8''<quoted>`.
fn disposition_format(kind: &str, filename: &str) -> String {
    format!("{kind}; filename=\"{}\"; filename*=UTF-8''{}", py_quote(filename, true), py_quote(filename, false))
}

/// The last segment of the unquoted path, trailing slashes ignored.
fn path_basename(raw_path: &str) -> String {
    let path = common::path::unquote(raw_path).unwrap_or_else(|_| raw_path.to_string());
    path.trim_end_matches('/').rsplit('/').next().unwrap_or("").to_string()
}

/// Python's `urlencode` of pairs (`quote_plus`).
fn form_urlencoded(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| py_quote(s, true).replace('/', "%2F").replace(' ', "+");
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, request, Recorder, Seen};
    use super::*;
    use common::config::ConfigFile;

    const ACCOUNT_KEY: &str = "akey";
    const CONTAINER_KEY: &str = "ckey";

    /// A next handler that knows account `AUTH_a` (key `akey`) and its
    /// container `c` (key `ckey`), and answers object requests by asking
    /// the request's authorize hook about them.
    fn backend() -> Arc<Recorder> {
        Recorder::new(|seen: &Seen| {
            let path = seen.uri.split('?').next().unwrap_or("").to_string();
            if seen.method == Method::HEAD && path == "/v1/AUTH_a" {
                let mut r = h::status(StatusCode::NO_CONTENT);
                r.headers_mut().insert("x-account-meta-temp-url-key", HeaderValue::from_static(ACCOUNT_KEY));
                return r;
            }
            if seen.method == Method::HEAD && path == "/v1/AUTH_a/c" {
                let mut r = h::status(StatusCode::NO_CONTENT);
                r.headers_mut().insert("x-container-meta-temp-url-key-2", HeaderValue::from_static(CONTAINER_KEY));
                return r;
            }
            if seen.method == Method::HEAD && path.matches('/').count() < 4 {
                return h::status(StatusCode::NOT_FOUND);
            }
            let mut r = h::text(StatusCode::OK, "data");
            r.headers_mut().insert("x-object-meta-secret", HeaderValue::from_static("s"));
            r.headers_mut().insert("x-object-meta-public-thing", HeaderValue::from_static("p"));
            r
        })
    }

    fn middleware(conf: &str, next: Next) -> Next {
        let conf = ConfigFile::parse(&format!("[filter:tempurl]\nuse = egg:swift#tempurl\n{conf}"), "p.conf").unwrap();
        let section = conf.filter_section("tempurl").unwrap();
        Arc::new(TempUrl::from_section(&section, next, &mut Build::default()).unwrap())
    }

    fn sig(digest: &str, key: &str, method: &str, expires: u64, path: &str) -> String {
        hmac_hex(digest, key.as_bytes(), hmac_body(method, expires, path, None).as_bytes()).unwrap()
    }

    fn url(path: &str, sig: &str, expires: u64, extra: &str) -> String {
        format!("{path}?temp_url_sig={sig}&temp_url_expires={expires}{extra}")
    }

    #[tokio::test]
    async fn a_signed_get_reads_the_object_with_a_disposition() {
        let next = backend();
        let m = middleware("", next.clone());
        let exp = now() + 600;
        let s = sig("sha256", ACCOUNT_KEY, "GET", exp, "/v1/AUTH_a/c/dir/o.txt");
        let resp = m.call(request("GET", &url("/v1/AUTH_a/c/dir/o.txt", &s, exp, "&other=1"), &[("x-timestamp", "1")], "")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-disposition"], "attachment; filename=\"o.txt\"; filename*=UTF-8''o.txt");
        assert_eq!(resp.headers()["expires"], common::timestamp::http_date(exp).as_str());
        assert!(!resp.headers().contains_key("x-object-meta-secret"));
        assert_eq!(resp.headers()["x-object-meta-public-thing"], "p");
        let seen = next.seen();
        let get = seen.iter().find(|s| s.method == Method::GET).unwrap();
        // Only the temp URL's own parameters go on; x-timestamp is dropped.
        assert_eq!(get.uri, format!("/v1/AUTH_a/c/dir/o.txt?temp_url_sig={s}&temp_url_expires={exp}"));
        assert!(!get.headers.contains_key("x-timestamp"));
        assert!(seen.iter().filter(|s| s.method == Method::HEAD).all(|s| s.source == Some("TU")));
    }

    #[tokio::test]
    async fn a_wrong_signature_method_path_or_expiry_is_401() {
        let m = middleware("", backend());
        let exp = now() + 600;
        let good = sig("sha256", ACCOUNT_KEY, "GET", exp, "/v1/AUTH_a/c/o");
        for (method, uri) in [
            ("GET", url("/v1/AUTH_a/c/o", &good.replace(&good[..1], if &good[..1] == "a" { "b" } else { "a" }), exp, "")),
            ("PUT", url("/v1/AUTH_a/c/o", &good, exp, "")),
            ("GET", url("/v1/AUTH_a/c/other", &good, exp, "")),
            ("GET", url("/v1/AUTH_a/c/o", &good, exp + 1, "")),
            ("GET", url("/v1/AUTH_a/c/o", &sig("sha256", ACCOUNT_KEY, "GET", 5, "/v1/AUTH_a/c/o"), 5, "")),
            ("GET", "/v1/AUTH_a/c/o?temp_url_sig=abc".to_string()),
        ] {
            let resp = m.call(request(method, &uri, &[], "")).await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{method} {uri}");
            assert_eq!(body_of(resp).await, "401 Unauthorized: Temp URL invalid\n");
        }
    }

    #[tokio::test]
    async fn head_is_allowed_by_get_put_or_post_but_not_the_reverse() {
        let m = middleware("", backend());
        let exp = now() + 600;
        for method in ["GET", "PUT", "POST", "HEAD"] {
            let s = sig("sha256", ACCOUNT_KEY, method, exp, "/v1/AUTH_a/c/o");
            assert_eq!(m.call(request("HEAD", &url("/v1/AUTH_a/c/o", &s, exp, ""), &[], "")).await.status(), StatusCode::OK);
        }
        let head = sig("sha256", ACCOUNT_KEY, "HEAD", exp, "/v1/AUTH_a/c/o");
        let resp = m.call(request("GET", &url("/v1/AUTH_a/c/o", &head, exp, ""), &[], "")).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn digests_encodings_and_sha1_as_allowed() {
        let exp = now() + 600;
        let path = "/v1/AUTH_a/c/o";
        let hex = sig("sha512", CONTAINER_KEY, "GET", exp, path);
        let raw: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        let b64 = super::super::base64_encode(&raw);
        let m = middleware("", backend());
        for s in [
            hex.clone(),
            format!("sha512:{b64}"),
            format!("sha512:{}", b64.trim_end_matches('=')),
            format!("sha512:{}", b64.replace('+', "-").replace('/', "_")),
        ] {
            let uri = url(path, &percent_encoding::utf8_percent_encode(&s, percent_encoding::NON_ALPHANUMERIC).to_string(), exp, "");
            assert_eq!(m.call(request("GET", &uri, &[], "")).await.status(), StatusCode::OK, "{s}");
        }
        // SHA-1 counts by default (deprecated, as in Swift 2.38), and not
        // once allowed_digests leaves it out.
        let sha1 = sig("sha1", ACCOUNT_KEY, "GET", exp, path);
        assert_eq!(m.call(request("GET", &url(path, &sha1, exp, ""), &[], "")).await.status(), StatusCode::OK);
        let without_sha1 = middleware("allowed_digests = sha256 sha512\n", backend());
        assert_eq!(without_sha1.call(request("GET", &url(path, &sha1, exp, ""), &[], "")).await.status(), StatusCode::UNAUTHORIZED);
        let sha1_only = middleware("allowed_digests = sha1\n", backend());
        assert_eq!(sha1_only.call(request("GET", &url(path, &hex, exp, ""), &[], "")).await.status(), StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn the_grant_is_scoped_to_the_keys_account_or_container() {
        let exp = now() + 600;
        let path = "/v1/AUTH_a/c/o";
        for (key, other_container_allowed) in [(ACCOUNT_KEY, true), (CONTAINER_KEY, false)] {
            let hook: Arc<std::sync::Mutex<Option<AuthorizeHook>>> = Arc::default();
            let keep = hook.clone();
            let next: Next = Arc::new(super::super::FnHandler(move |req: Request<Body>| {
                let keep = keep.clone();
                async move {
                    if req.method() == Method::HEAD {
                        return backend().call(req).await;
                    }
                    *keep.lock().unwrap() = req.extensions().get::<AuthorizeHook>().cloned();
                    h::status(StatusCode::OK)
                }
            }));
            let m = middleware("", next);
            let s = sig("sha256", key, "GET", exp, path);
            assert_eq!(m.call(request("GET", &url(path, &s, exp, ""), &[], "")).await.status(), StatusCode::OK);
            let hook = hook.lock().unwrap().clone().expect("a hook");
            let headers = HeaderMap::new();
            let ask = |account: &'static str, container: &'static str| AuthRequest {
                method: &Method::GET,
                account,
                container: Some(container),
                object: None,
                acl: None,
                headers: &headers,
            };
            assert!(matches!(hook.0.authorize(&ask("AUTH_a", "c")).await, Authorization::Allow { owner: false }));
            let other = hook.0.authorize(&ask("AUTH_a", "d")).await;
            assert_eq!(matches!(other, Authorization::Allow { .. }), other_container_allowed);
            assert!(matches!(hook.0.authorize(&ask("AUTH_b", "c")).await, Authorization::Deny(_)));
        }
    }

    #[tokio::test]
    async fn prefix_urls_filename_inline_and_disallowed_headers() {
        let m = middleware("", backend());
        let exp = now() + 600;
        let s = sig("sha256", ACCOUNT_KEY, "GET", exp, "prefix:/v1/AUTH_a/c/pre");
        let ok = m.call(request("GET", &url("/v1/AUTH_a/c/prefixed", &s, exp, "&temp_url_prefix=pre&inline"), &[], "")).await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()["content-disposition"], "inline");
        let no = m.call(request("GET", &url("/v1/AUTH_a/c/other", &s, exp, "&temp_url_prefix=pre"), &[], "")).await;
        assert_eq!(no.status(), StatusCode::UNAUTHORIZED);

        let s = sig("sha256", ACCOUNT_KEY, "GET", exp, "/v1/AUTH_a/c/o");
        let named = m.call(request("GET", &url("/v1/AUTH_a/c/o", &s, exp, "&filename=My+File.pdf"), &[], "")).await;
        assert_eq!(named.headers()["content-disposition"], "attachment; filename=\"My File.pdf\"; filename*=UTF-8''My%20File.pdf");

        let put = sig("sha256", ACCOUNT_KEY, "PUT", exp, "/v1/AUTH_a/c/o");
        let resp = m.call(request("PUT", &url("/v1/AUTH_a/c/o", &put, exp, ""), &[("x-object-manifest", "c/x")], "")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(resp).await, "The header 'X-Object-Manifest' is not allowed in this tempurl");
    }

    #[tokio::test]
    async fn ip_ranges_and_requests_without_a_temp_url() {
        let next = backend();
        let m = middleware("", next.clone());
        let exp = now() + 600;
        let path = "/v1/AUTH_a/c/o";
        let signed = |range: &str| hmac_hex("sha256", ACCOUNT_KEY.as_bytes(), hmac_body("GET", exp, path, Some(range)).as_bytes()).unwrap();
        // Unit-test requests come from 127.0.0.1.
        for (range, status) in
            [("127.0.0.0/8", StatusCode::OK), ("10.0.0.0/8", StatusCode::UNAUTHORIZED), ("127.0.0.1/8", StatusCode::UNAUTHORIZED)]
        {
            let uri = url(path, &signed(range), exp, &format!("&temp_url_ip_range={range}"));
            assert_eq!(m.call(request("GET", &uri, &[], "")).await.status(), status, "{range}");
        }
        let plain = m.call(request("GET", "/v1/AUTH_a/c/o?x=1", &[], "")).await;
        assert_eq!(plain.status(), StatusCode::OK);
        assert_eq!(next.seen().last().unwrap().uri, "/v1/AUTH_a/c/o?x=1");
    }

    #[test]
    fn expiry_forms() {
        assert_eq!(parse_iso8601("2017-01-02T03:04:05Z"), Some(1_483_326_245));
        assert_eq!(parse_iso8601("2017-13-02T03:04:05Z"), None);
        assert_eq!(normalize_expires("1483326245", 1_000), 1_483_326_245);
        assert_eq!(normalize_expires("2017-01-02T03:04:05Z", 1_000), 1_483_326_245);
        assert_eq!(normalize_expires("1483326245", 2_000_000_000), 0);
        assert_eq!(normalize_expires("soon", 0), 0);
    }
}
