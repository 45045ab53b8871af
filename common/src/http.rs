//! HTTP types and small response helpers shared by every server.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full};

/// Error type of streamed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type every handler returns.
pub type Body = BoxBody<Bytes, BoxError>;

/// An empty body.
pub fn empty() -> Body {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed()
}

/// A body held in memory.
pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).map_err(|never| match never {}).boxed()
}

/// A response with a one-line reason (or an empty body when
/// `reason` is empty). `Content-Length` is always set.
pub fn text(status: StatusCode, reason: impl Into<String>) -> Response<Body> {
    let reason = reason.into();
    let mut resp = Response::new(if reason.is_empty() { empty() } else { full(reason.clone()) });
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(reason.len()));
    if !reason.is_empty() {
        // swob's default for error and status bodies.
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
    }
    resp
}

/// An empty-bodied response with `Content-Length: 0`.
pub fn status(status: StatusCode) -> Response<Body> {
    text(status, "")
}

/// Swift's 507 body, naming the drive.
pub fn insufficient_storage(drive: &str) -> Response<Body> {
    let body = format!(
        "<html><h1>Insufficient Storage</h1><p>There was not enough space to save the resource. Drive: {}</p></html>",
        html_escape(drive)
    );
    let mut resp = text(StatusCode::INSUFFICIENT_STORAGE, body);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
    resp
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML and XML text.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// A header's value as UTF-8 text, if present and valid.
pub fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Python's `urllib.parse.quote` with `/` safe: how Swift quotes backend
/// request paths.
pub fn quote_path(path: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b'/');
    percent_encoding::utf8_percent_encode(path, SET).to_string()
}
