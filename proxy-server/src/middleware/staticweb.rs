//! `egg:swift#staticweb`: serves a container as a static web site, driven
//! by the container's metadata:
//!
//! | header                                  | effect                                             |
//! |-----------------------------------------|----------------------------------------------------|
//! | `X-Container-Meta-Web-Index`            | object served for `.../container/` and `.../dir/`  |
//! | `X-Container-Meta-Web-Listings`         | `true`: HTML listings where no index object is     |
//! | `X-Container-Meta-Web-Listings-CSS`     | style sheet the listings link (relative to the container, or absolute) |
//! | `X-Container-Meta-Web-Listings-Label`   | shown instead of `/v1/<account>` in listing titles |
//! | `X-Container-Meta-Web-Error`            | suffix of error pages: `<status><suffix>`, e.g. `404error.html` |
//! | `X-Container-Meta-Web-Directory-Type`   | content type of directory markers (default `application/directory`) |
//!
//! As in Swift it acts only on GET and HEAD of containers and objects, and
//! only for requests without a token (anonymous web access, allowed through
//! the container's read ACL, e.g. `.r:*`), with `X-Web-Mode: true`, or
//! carrying a temporary URL (tempurl, to its left, has already checked the
//! signature and refused the request otherwise). Everything else goes on to
//! the right untouched. A container path without the trailing slash is
//! redirected (301) to the one with it, as is a directory (a marker object
//! or a prefix with objects under it), so that relative links work.
//!
//! Its subrequests (source `SW`) go through the pipeline to its right on
//! the caller's authority: the container look-up, index and error pages,
//! and the JSON container listings it renders as HTML.

use super::{
    authorize, info, query_param, subrequest, AuthRequest, Authorization, AuthorizeHook, BoxFuture, Build, Handler, Next, SwiftSource,
};
use crate::proxy::Proxy;
use common::config::Section;
use common::http::{self as h, html_escape, quote_path, Body};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION, USER_AGENT};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::sync::Arc;

/// `swift.source` of the middleware's subrequests.
const SOURCE: &str = "SW";

/// Listing bodies larger than this are not rendered (the app's listings are
/// at most 10,000 entries; this only bounds memory).
const MAX_LISTING_BYTES: usize = 64 * 1024 * 1024;

pub struct StaticWeb {
    /// `url_base`'s scheme and host, used in redirects instead of `http`
    /// and the request's `Host`.
    url_scheme: Option<String>,
    url_host: Option<String>,
    next: Next,
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    let url_base = section.value("url_base").map_err(|e| e.to_string())?.filter(|v| !v.is_empty());
    let (url_scheme, url_host) = match url_base {
        Some(base) => {
            let (scheme, rest) = base.split_once("://").ok_or_else(|| format!("{}: url_base {base:?} is not a URL", section.name()))?;
            let host = rest.split('/').next().unwrap_or_default();
            (Some(scheme.to_string()).filter(|s| !s.is_empty()), Some(host.to_string()).filter(|s| !s.is_empty()))
        }
        None => (None, None),
    };
    build.capabilities.insert("staticweb".into(), serde_json::json!({}));
    Ok(Arc::new(StaticWeb { url_scheme, url_host, next }))
}

impl Handler for StaticWeb {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            // A subrequest of a middleware to the left (an info look-up of
            // tempurl or ratelimit) acts on its maker's own authority, like
            // Swift's pre-authorized requests, which staticweb leaves alone.
            if !matches!(*req.method(), Method::GET | Method::HEAD)
                || req.extensions().get::<AuthorizeHook>().is_none()
                || req.extensions().get::<SwiftSource>().is_some()
            {
                return self.next.call(req).await;
            }
            let Some(path) = common::path::unquote(req.uri().path()).ok() else {
                return self.next.call(req).await;
            };
            let Ok(segs) = common::path::split_path(&path, 2, 4, true) else {
                return self.next.call(req).await;
            };
            let headers = req.headers();
            let has_token = ["x-auth-token", "x-storage-token"].iter().any(|n| headers.contains_key(*n));
            let temp_url = query_param(req.uri().query(), "temp_url_sig").is_some();
            if has_token && !temp_url && !web_mode(headers) {
                return self.next.call(req).await;
            }
            let mut it = segs.into_iter();
            let (version, account, container, object) =
                (it.next().flatten(), it.next().flatten(), it.next().flatten(), it.next().flatten());
            let (Some(version), Some(account), Some(container)) = (version, account, container) else {
                return self.next.call(req).await;
            };
            let (parts, _body) = req.into_parts();
            let ctx = Context { sw: self, parts, path, version, account, container, temp_url };
            match object {
                Some(object) => ctx.object(&object).await,
                None => ctx.container().await,
            }
        })
    }
}

/// Swift's `config_true_value` of `X-Web-Mode`.
fn web_mode(headers: &HeaderMap) -> bool {
    h::header_str(headers, "x-web-mode").and_then(common::config::parse_bool).unwrap_or(false)
}

/// The container's web settings (`X-Container-Meta-Web-*`), trimmed;
/// empty when the container could not be read.
#[derive(Debug, Default)]
struct WebMeta {
    index: String,
    error: String,
    listings: String,
    listings_label: String,
    listings_css: String,
    dir_type: String,
    read_acl: Option<String>,
}

impl WebMeta {
    fn from_headers(hm: &HeaderMap) -> WebMeta {
        let meta = |name: &str| {
            hm.get(format!("x-container-meta-web-{name}"))
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
                .unwrap_or_default()
        };
        WebMeta {
            index: meta("index"),
            error: meta("error"),
            listings: meta("listings"),
            listings_label: meta("listings-label"),
            listings_css: meta("listings-css"),
            dir_type: meta("directory-type"),
            read_acl: h::header_str(hm, "x-container-read").map(str::to_string),
        }
    }

    fn listings_on(&self) -> bool {
        common::config::parse_bool(&self.listings).unwrap_or(false)
    }
}

/// One request staticweb handles.
struct Context<'a> {
    sw: &'a StaticWeb,
    parts: Parts,
    /// The unquoted request path.
    path: String,
    version: String,
    account: String,
    container: String,
    /// The request carries a temporary URL (tempurl let it through).
    temp_url: bool,
}

fn is_success(s: StatusCode) -> bool {
    s.is_success()
}

fn is_success_or_redirect(s: StatusCode) -> bool {
    s.is_success() || s.is_redirection()
}

impl Context<'_> {
    async fn web_meta(&self) -> WebMeta {
        let path = format!("/{}/{}/{}", self.version, self.account, self.container);
        info(&self.sw.next, &self.parts, &path, SOURCE).await.map(|hm| WebMeta::from_headers(&hm)).unwrap_or_default()
    }

    /// The client's request again (same method, headers and authority),
    /// for `path` (unquoted) when given, marked as staticweb's.
    async fn again(&self, path: Option<&str>) -> Response<Body> {
        let mut parts = self.parts.clone();
        if let Some(path) = path {
            let mut uri = quote_path(path);
            if let Some(q) = parts.uri.query() {
                uri.push('?');
                uri.push_str(q);
            }
            match uri.parse() {
                Ok(u) => parts.uri = u,
                Err(_) => return h::text(StatusCode::PRECONDITION_FAILED, "Bad URL"),
            }
        }
        let agent = format!("{} StaticWeb", h::header_str(&parts.headers, "user-agent").unwrap_or("None"));
        if let Ok(v) = HeaderValue::from_str(&agent) {
            parts.headers.insert(USER_AGENT, v);
        }
        parts.extensions.remove::<super::proxy_logging::AccessLogMade>();
        parts.extensions.insert(SwiftSource(SOURCE));
        self.sw.next.call(Request::from_parts(parts, h::empty())).await
    }

    /// A GET of `path_and_query` (quoted) of staticweb's own.
    async fn get(&self, path_and_query: &str) -> Response<Body> {
        let mut headers = HeaderMap::new();
        let agent = format!("{} StaticWeb", h::header_str(&self.parts.headers, "user-agent").unwrap_or("None"));
        if let Ok(v) = HeaderValue::from_str(&agent) {
            headers.insert(USER_AGENT, v);
        }
        match subrequest(&self.parts, Method::GET, path_and_query, headers, h::empty(), SOURCE) {
            Ok(req) => self.sw.next.call(req).await,
            Err(resp) => resp,
        }
    }

    /// `resp`, or in its place the container's error page for its status
    /// (`<status><web-error>`) when there is one, with `resp`'s status.
    async fn error_response(&self, meta: &WebMeta, resp: Response<Body>) -> Response<Body> {
        if meta.error.is_empty() {
            return resp;
        }
        let status = resp.status();
        let page = format!("/{}/{}/{}/{}{}", self.version, self.account, self.container, status.as_u16(), meta.error);
        let mut page = self.get(&quote_path(&page)).await;
        if !is_success(page.status()) {
            return resp;
        }
        *page.status_mut() = status;
        page
    }

    /// 301 to the request's path with a slash added.
    fn redirect_with_slash(&self) -> Response<Body> {
        let scheme = self.sw.url_scheme.as_deref().unwrap_or("http");
        let host = self
            .sw
            .url_host
            .clone()
            .or_else(|| h::header_str(&self.parts.headers, "host").map(str::to_string))
            .unwrap_or_else(|| "localhost".into());
        let location = format!("{scheme}://{host}{}", quote_path(&format!("{}/", self.path)));
        let mut resp =
            h::text(StatusCode::MOVED_PERMANENTLY, "<html><h1>Moved Permanently</h1><p>The resource has moved permanently.</p></html>");
        if let Ok(v) = HeaderValue::from_str(&location) {
            resp.headers_mut().insert(LOCATION, v);
        }
        resp
    }

    async fn container(self) -> Response<Body> {
        let meta = self.web_meta().await;
        let auth = AuthRequest {
            method: &self.parts.method,
            account: &self.account,
            container: Some(&self.container),
            object: None,
            acl: meta.read_acl.as_deref(),
            headers: &self.parts.headers,
        };
        if let Authorization::Deny(refusal) = authorize(self.parts.extensions.get::<AuthorizeHook>(), &auth).await {
            return self.error_response(&meta, refusal).await;
        }
        if meta.listings.is_empty() && meta.index.is_empty() {
            if web_mode(&self.parts.headers) {
                return h::text(StatusCode::NOT_FOUND, "<html><h1>Not Found</h1><p>The resource could not be found.</p></html>");
            }
            return self.sw.next.call(Request::from_parts(self.parts, h::empty())).await;
        }
        if !self.path.ends_with('/') {
            return self.redirect_with_slash();
        }
        if meta.index.is_empty() {
            return self.listing(&meta, "").await;
        }
        let resp = self.again(Some(&format!("{}{}", self.path, meta.index))).await;
        let status = resp.status();
        if status == StatusCode::NOT_FOUND {
            return self.listing(&meta, "").await;
        }
        if !is_success_or_redirect(status) {
            return self.error_response(&meta, resp).await;
        }
        resp
    }

    async fn object(self, object: &str) -> Response<Body> {
        let resp = self.again(None).await;
        let mut status = resp.status();
        let mut meta = self.web_meta().await;
        if is_success_or_redirect(status) {
            let dir_type = if meta.dir_type.is_empty() { "application/directory" } else { meta.dir_type.as_str() };
            let length = h::header_str(resp.headers(), "content-length").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(0);
            // A directory marker stands for the directory: look for an
            // index or a listing as for a missing object.
            if h::header_str(resp.headers(), "content-type") == Some(dir_type) && length <= 1 {
                status = StatusCode::NOT_FOUND;
            } else {
                return resp;
            }
        }
        if status != StatusCode::NOT_FOUND {
            meta.error.clear();
            return resp;
        }
        if meta.listings.is_empty() && meta.index.is_empty() {
            return resp;
        }
        if !meta.index.is_empty() {
            let dir = if self.path.ends_with('/') { self.path.clone() } else { format!("{}/", self.path) };
            let index = self.again(Some(&format!("{dir}{}", meta.index))).await;
            let index_status = index.status();
            if is_success_or_redirect(index_status) {
                if !self.path.ends_with('/') {
                    return self.redirect_with_slash();
                }
                return index;
            }
            if index_status != StatusCode::NOT_FOUND {
                return index;
            }
        }
        if self.path.ends_with('/') {
            return self.listing(&meta, object).await;
        }
        // Is it a directory, with objects under it?
        let probe = format!(
            "{}?format=json&limit=1&delimiter=/&prefix={}",
            quote_path(&format!("/{}/{}/{}", self.version, self.account, self.container)),
            quote_path(&format!("{object}/"))
        );
        let listing = self.get(&probe).await;
        let found = is_success(listing.status()) && read_listing(listing).await.is_some_and(|l| !l.is_empty());
        if !found {
            return self.error_response(&meta, not_found()).await;
        }
        self.redirect_with_slash()
    }

    /// The HTML listing of the container (under `prefix`, which ends with
    /// `/` when given).
    async fn listing(&self, meta: &WebMeta, prefix: &str) -> Response<Body> {
        let label = if meta.listings_label.is_empty() {
            self.path.clone()
        } else {
            let rest: Vec<&str> = self.path.split('/').skip(4).collect();
            format!("{}/{}", meta.listings_label, rest.join("/"))
        };
        if !meta.listings_on() {
            let body = disabled_page(&label, meta, &self.css_path(meta, prefix));
            return self.error_response(meta, html(StatusCode::NOT_FOUND, body)).await;
        }
        let mut query = "format=json&delimiter=/".to_string();
        if !prefix.is_empty() {
            query.push_str("&prefix=");
            query.push_str(&quote_path(prefix));
        }
        let container_path = quote_path(&format!("/{}/{}/{}", self.version, self.account, self.container));
        let resp = self.get(&format!("{container_path}?{query}")).await;
        if !is_success(resp.status()) {
            return self.error_response(meta, resp).await;
        }
        let listing = read_listing(resp).await.unwrap_or_default();
        if !prefix.is_empty() && listing.is_empty() {
            return self.error_response(meta, not_found()).await;
        }
        let (temp_url_prefix, temp_url_qs) =
            if self.temp_url { temp_url_links(self.parts.uri.query()) } else { (String::new(), String::new()) };
        let body = listing_page(&label, &self.css_path(meta, prefix), prefix, &temp_url_prefix, &temp_url_qs, &listing);
        let mut resp = html(StatusCode::OK, body);
        // Tells tempurl that this answer to a container-root temp URL is
        // a page made here, not a listing it must refuse (the gatekeeper
        // keeps it from clients).
        resp.headers_mut().insert("x-backend-content-generator", http::HeaderValue::from_static("staticweb"));
        resp
    }

    /// The `href` of the listings' style sheet, from a listing of `prefix`;
    /// empty for the built-in style.
    fn css_path(&self, meta: &WebMeta, prefix: &str) -> String {
        let css = &meta.listings_css;
        if css.is_empty() {
            return String::new();
        }
        if css.starts_with('/') || css.starts_with("http://") || css.starts_with("https://") {
            quote_url(css)
        } else {
            format!("{}{}", "../".repeat(prefix.matches('/').count()), quote_path(css))
        }
    }
}

/// Python's `urllib.parse.quote(s, ':/')`, for absolute style sheet URLs.
fn quote_url(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b'/').remove(b':');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

fn not_found() -> Response<Body> {
    h::text(StatusCode::NOT_FOUND, "<html><h1>Not Found</h1><p>The resource could not be found.</p></html>")
}

fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(h::full(body.clone()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
    resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    resp
}

/// The entries of a JSON container listing; `None` when it is not one.
async fn read_listing(resp: Response<Body>) -> Option<Vec<serde_json::Map<String, serde_json::Value>>> {
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    if body.is_empty() {
        return Some(Vec::new());
    }
    if body.len() > MAX_LISTING_BYTES {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(&body).ok()?;
    Some(value.as_array()?.iter().filter_map(|v| v.as_object().cloned()).collect())
}

/// The temporary URL's prefix and the query string (`?...`, HTML-escaped)
/// that lets a listing's links carry it, as Swift builds them; both empty
/// for a temporary URL that is not prefix-based.
fn temp_url_links(query: Option<&str>) -> (String, String) {
    let Some(prefix) = query_param(query, "temp_url_prefix") else {
        return (String::new(), String::new());
    };
    let mut parts = vec![
        format!("temp_url_prefix={}", quote_path(&prefix)),
        format!("temp_url_expires={}", quote_path(&query_param(query, "temp_url_expires").unwrap_or_default())),
        format!("temp_url_sig={}", query_param(query, "temp_url_sig").unwrap_or_default()),
    ];
    if let Some(range) = query_param(query, "temp_url_ip_range") {
        parts.push(format!("temp_url_ip_range={}", quote_path(&range)));
    }
    if query_param(query, "inline").is_some() {
        parts.push("inline".into());
    }
    (prefix, format!("?{}", parts.join("&amp;")))
}

/// Swift's `human_readable`: 1023, 1Ki, 3Mi, ...
fn human_readable(value: f64) -> String {
    let mut value = value;
    let mut index: Option<usize> = None;
    let suffixes = ['K', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];
    while value >= 1024.0 && index.map_or(0, |i| i + 1) < suffixes.len() {
        index = Some(index.map_or(0, |i| i + 1));
        value = py_round(value / 1024.0);
    }
    match index {
        None => format!("{}", value.trunc() as i64),
        Some(i) => format!("{}{}i", py_round(value) as i64, suffixes[i]),
    }
}

/// Python 3's `round` (half to even).
fn py_round(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

/// Swift's link target for a name: quoted, and dots escaped too, so a name
/// such as `..` cannot climb out of the directory.
fn link(name: &str) -> String {
    quote_path(name).replace('.', "%2E")
}

fn head_of_page(out: &mut String, label: &str, css_href: &str, listing_style: bool) {
    out.push_str("<!DOCTYPE html>\n<html>\n");
    out.push_str(if listing_style { " <head>\n" } else { "<head>\n" });
    out.push_str(&format!("  <title>Listing of {}</title>\n", html_escape(label)));
    if !css_href.is_empty() {
        out.push_str(&format!("  <link rel=\"stylesheet\" type=\"text/css\" href=\"{css_href}\" />\n"));
    } else if listing_style {
        out.push_str(
            "  <style type=\"text/css\">\n   h1 {font-size: 1em; font-weight: bold;}\n   th {text-align: left; padding: 0px 1em 0px 1em;}\n   td {padding: 0px 1em 0px 1em;}\n   a {text-decoration: none;}\n  </style>\n",
        );
    } else {
        out.push_str("  <style type=\"text/css\">\n   h1 {font-size: 1em; font-weight: bold;}\n   p {font-size: 2}\n  </style>\n");
    }
}

/// The 404 page of a container whose listings are off.
fn disabled_page(label: &str, meta: &WebMeta, css_href: &str) -> String {
    let mut body = String::new();
    head_of_page(&mut body, label, css_href, false);
    body.push_str(
        "</head>\n<body>  <h1>Web Listing Disabled</h1>   <p>The owner of this web site has disabled web listing.   <p>If you are the owner of this web site, you can enable   web listing by setting X-Container-Meta-Web-Listings.</p>",
    );
    if !meta.index.is_empty() {
        body.push_str(&format!(
            "<h1>Index File Not Found</h1> <p>The owner of this web site has set  <b>X-Container-Meta-Web-Index: {}</b>.  However, this file is not found.</p>",
            html_escape(&meta.index)
        ));
    }
    body.push_str(" </body>\n</html>\n");
    body
}

/// The HTML listing: a parent link below the top, then the
/// subdirectories, then the objects, names relative to `prefix`.
fn listing_page(
    label: &str,
    css_href: &str,
    prefix: &str,
    temp_url_prefix: &str,
    temp_url_qs: &str,
    listing: &[serde_json::Map<String, serde_json::Value>],
) -> String {
    let mut body = String::new();
    head_of_page(&mut body, label, css_href, true);
    body.push_str(&format!(
        " </head>\n <body>\n  <h1 id=\"title\">Listing of {}</h1>\n  <table id=\"listing\">\n   <tr id=\"heading\">\n    <th class=\"colname\">Name</th>\n    <th class=\"colsize\">Size</th>\n    <th class=\"coldate\">Date</th>\n   </tr>\n",
        html_escape(label)
    ));
    if prefix.len() > temp_url_prefix.len() {
        body.push_str(&format!(
            "   <tr id=\"parent\" class=\"item\">\n    <td class=\"colname\"><a href=\"../{temp_url_qs}\">../</a></td>\n    <td class=\"colsize\">&nbsp;</td>\n    <td class=\"coldate\">&nbsp;</td>\n   </tr>\n"
        ));
    }
    let relative = |name: &str| name.strip_prefix(prefix).unwrap_or(name).to_string();
    for subdir in listing.iter().filter_map(|item| item.get("subdir").and_then(|v| v.as_str())) {
        let subdir = relative(subdir);
        body.push_str(&format!(
            "   <tr class=\"item subdir\">\n    <td class=\"colname\"><a href=\"./{}{temp_url_qs}\">{}</a></td>\n    <td class=\"colsize\">&nbsp;</td>\n    <td class=\"coldate\">&nbsp;</td>\n   </tr>\n",
            link(&subdir),
            html_escape(&subdir)
        ));
    }
    for item in listing {
        let Some(name) = item.get("name").and_then(|v| v.as_str()) else { continue };
        let name = relative(name);
        let content_type = item.get("content_type").and_then(|v| v.as_str()).unwrap_or("");
        let classes: Vec<String> = content_type.split('/').map(|t| format!("type-{}", html_escape(&t.to_lowercase()))).collect();
        let bytes = item.get("bytes").and_then(|v| v.as_f64()).unwrap_or(0.0);
        let modified = item.get("last_modified").and_then(|v| v.as_str()).unwrap_or("");
        let modified = html_escape(modified);
        let modified = modified.split('.').next().unwrap_or("").replace('T', " ");
        body.push_str(&format!(
            "   <tr class=\"item {}\">\n    <td class=\"colname\"><a href=\"./{}{temp_url_qs}\">{}</a></td>\n    <td class=\"colsize\">{}</td>\n    <td class=\"coldate\">{}</td>\n   </tr>\n",
            classes.join(" "),
            link(&name),
            html_escape(&name),
            human_readable(bytes),
            modified
        ));
    }
    body.push_str("  </table>\n </body>\n</html>\n");
    body
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, request, Recorder, Seen};
    use super::super::AllowAll;
    use super::*;

    /// A container `c` in account `a` holding `index.html`, `dir` (a
    /// directory marker), `dir/obj`, `404error.html` and `style.css`, with
    /// the web settings `meta`.
    fn app(meta: &'static [(&'static str, &'static str)]) -> Arc<Recorder> {
        Recorder::new(move |seen: &Seen| {
            let (path, query) = seen.uri.split_once('?').unwrap_or((seen.uri.as_str(), ""));
            let ok = |ct: &str, body: &str| {
                let mut r = h::text(StatusCode::OK, body.to_string());
                r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
                r
            };
            match (seen.method.as_str(), path) {
                ("HEAD", "/v1/a/c") => {
                    let mut r = h::status(StatusCode::NO_CONTENT);
                    for (k, v) in meta {
                        r.headers_mut().insert(http::HeaderName::from_static(k), HeaderValue::from_static(v));
                    }
                    r
                }
                ("GET", "/v1/a/c") if query.contains("prefix=dir/") => ok(
                    "application/json",
                    r#"[{"name":"dir/obj","bytes":2048,"content_type":"text/plain","last_modified":"2024-01-02T03:04:05.123456"}]"#,
                ),
                ("GET", "/v1/a/c") if query.contains("prefix=") => ok("application/json", "[]"),
                ("GET", "/v1/a/c") => ok(
                    "application/json",
                    r#"[{"subdir":"dir/"},{"name":"index.html","bytes":10,"content_type":"text/html","last_modified":"2024-01-02T03:04:05.123456"}]"#,
                ),
                (_, "/v1/a/c/index.html") => ok("text/html", "the index"),
                (_, "/v1/a/c/404error.html") => ok("text/html", "custom 404"),
                (_, "/v1/a/c/dir") => ok("application/directory", ""),
                (_, "/v1/a/c/dir/obj") => ok("text/plain", "ob"),
                _ => h::text(StatusCode::NOT_FOUND, "Not Found"),
            }
        })
    }

    fn staticweb(next: Arc<Recorder>) -> StaticWeb {
        StaticWeb { url_scheme: None, url_host: None, next }
    }

    async fn get(m: &StaticWeb, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, String) {
        let mut headers = headers.to_vec();
        headers.push(("host", "example.com:8080"));
        let mut req = request("GET", uri, &headers, "");
        req.extensions_mut().insert(AuthorizeHook(Arc::new(AllowAll)));
        let resp = m.call(req).await;
        let (parts, body) = resp.into_parts();
        (parts.status, parts.headers, String::from_utf8_lossy(&body_of(Response::new(body)).await).into_owned())
    }

    #[tokio::test]
    async fn a_token_without_web_mode_goes_straight_on() {
        let next = app(&[("x-container-meta-web-index", "index.html")]);
        let m = staticweb(next.clone());
        let (status, _, _) = get(&m, "/v1/a/c/", &[("x-auth-token", "t")]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(next.seen().len(), 1);
        assert_eq!(next.seen()[0].source, None);
        // With X-Web-Mode the token holder sees the site.
        let (status, _, body) = get(&m, "/v1/a/c/", &[("x-auth-token", "t"), ("x-web-mode", "true")]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "the index"));
    }

    #[tokio::test]
    async fn subrequests_of_other_middlewares_go_straight_on() {
        let next = app(&[("x-container-meta-web-listings", "true")]);
        let m = staticweb(next.clone());
        let mut req = request("HEAD", "/v1/a/c", &[], "");
        req.extensions_mut().insert(AuthorizeHook(Arc::new(AllowAll)));
        req.extensions_mut().insert(SwiftSource("TU"));
        assert_eq!(m.call(req).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(next.seen().len(), 1);
    }

    #[tokio::test]
    async fn the_container_redirects_to_its_slash_then_serves_the_index() {
        let m = staticweb(app(&[("x-container-meta-web-index", "index.html")]));
        let (status, headers, _) = get(&m, "/v1/a/c", &[]).await;
        assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(headers[LOCATION], "http://example.com:8080/v1/a/c/");
        let (status, _, body) = get(&m, "/v1/a/c/", &[]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "the index"));
    }

    #[tokio::test]
    async fn listings_show_subdirectories_and_objects() {
        let m = staticweb(app(&[("x-container-meta-web-listings", "true"), ("x-container-meta-web-listings-css", "style.css")]));
        let (status, headers, body) = get(&m, "/v1/a/c/", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CONTENT_TYPE], "text/html; charset=UTF-8");
        assert_eq!(headers["x-backend-content-generator"], "staticweb");
        assert!(body.contains("<title>Listing of /v1/a/c/</title>"), "{body}");
        assert!(body.contains(r#"<link rel="stylesheet" type="text/css" href="style.css" />"#));
        assert!(body.contains(r#"<a href="./dir/">dir/</a>"#));
        assert!(body.contains(r#"<tr class="item type-text type-html">"#));
        assert!(body.contains(r#"<a href="./index%2Ehtml">index.html</a>"#));
        assert!(body.contains(r#"<td class="coldate">2024-01-02 03:04:05</td>"#));
        assert!(!body.contains("../"));

        let (status, _, body) = get(&m, "/v1/a/c/dir/", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(r#"href="../style.css""#), "{body}");
        assert!(body.contains(r#"<a href="../">../</a>"#));
        assert!(body.contains(r#"<a href="./obj">obj</a>"#));
        assert!(body.contains(r#"<td class="colsize">2Ki</td>"#));
    }

    #[tokio::test]
    async fn a_directory_marker_redirects_and_objects_are_served() {
        let m = staticweb(app(&[("x-container-meta-web-listings", "true")]));
        let (status, headers, _) = get(&m, "/v1/a/c/dir", &[]).await;
        assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(headers[LOCATION], "http://example.com:8080/v1/a/c/dir/");
        let (status, _, body) = get(&m, "/v1/a/c/dir/obj", &[]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ob"));
    }

    #[tokio::test]
    async fn missing_things_get_the_error_page() {
        let m = staticweb(app(&[("x-container-meta-web-listings", "true"), ("x-container-meta-web-error", "error.html")]));
        let (status, _, body) = get(&m, "/v1/a/c/nothing", &[]).await;
        assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "custom 404"));
        let (status, _, body) = get(&m, "/v1/a/c/nothing/", &[]).await;
        assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, "custom 404"));
    }

    #[tokio::test]
    async fn listings_off_is_a_404_page() {
        let m = staticweb(app(&[("x-container-meta-web-index", "missing.html")]));
        let (status, _, body) = get(&m, "/v1/a/c/", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("Web Listing Disabled"));
        assert!(body.contains("<b>X-Container-Meta-Web-Index: missing.html</b>"));
        // Without any web settings the request is the app's.
        let next = app(&[]);
        let m = staticweb(next.clone());
        let (status, _, _) = get(&m, "/v1/a/c", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(next.seen().last().unwrap().source, None);
        let (status, _, _) = get(&m, "/v1/a/c", &[("x-web-mode", "true"), ("x-auth-token", "t")]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn temp_url_listings_carry_the_signature() {
        let m = staticweb(app(&[("x-container-meta-web-listings", "true")]));
        let (status, _, body) =
            get(&m, "/v1/a/c/dir/?temp_url_sig=abc&temp_url_expires=2024-01-01T00:00:00Z&temp_url_prefix=&inline", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains(
                r#"<a href="./obj?temp_url_prefix=&amp;temp_url_expires=2024-01-01T00%3A00%3A00Z&amp;temp_url_sig=abc&amp;inline">obj</a>"#
            ),
            "{body}"
        );
        assert!(body.contains(r#"href="../?temp_url_prefix"#));
    }

    #[test]
    fn human_readable_sizes() {
        assert_eq!(human_readable(0.0), "0");
        assert_eq!(human_readable(1023.0), "1023");
        assert_eq!(human_readable(1024.0), "1Ki");
        assert_eq!(human_readable(3.5 * 1024.0 * 1024.0), "4Mi");
    }
}
