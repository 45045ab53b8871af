//! `egg:swift#formpost`: uploads from an HTML form. A `POST` of
//! `multipart/form-data` to `/v1/<account>/<container>[/<prefix>]` whose
//! fields carry `redirect`, `max_file_size`, `max_file_count`, `expires` and
//! `signature` (the HMAC of
//! `<path>\n<redirect>\n<max_file_size>\n<max_file_count>\n<expires>` under
//! one of the account's or container's temp URL keys, in a digest of
//! `allowed_digests`) stores each file field as the object
//! `<path>/<filename>` (`<prefix><filename>` when the path names an object
//! prefix). Optional fields: `x_delete_at`, `x_delete_after`,
//! `content-type`, `content-encoding`.
//!
//! The answer is the last upload's status line (or the first failing
//! upload's body), as `text/plain`, or with a `redirect` a `303` to
//! `<redirect>?status=<code>&message=<message>`. Form errors are
//! `400 FormPost: <why>`, a bad or expired signature `401`.
//!
//! Nothing is held whole: the request body is read through a streaming
//! boundary scanner (`Multipart`), and each file streams into its `PUT`
//! subrequest (source `FP`, on the form's authority) through a bounded
//! channel, stopping with `400 max_file_size exceeded` once a file is over
//! the limit. Field values are capped at 4 KiB, as in Swift. We scan for
//! boundaries ourselves rather than use a multipart crate: Swift's parser
//! is lenient in ways (blank lines before the first boundary, a missing
//! closing boundary, LF-only first line) that forms in the wild rely on and
//! that a strict RFC 7578 parser refuses, and its errors are part of the
//! answer.

use super::tempurl::{allowed_digests, extract_digest_and_algorithm, hmac_hex, parts_of, streq_const_time, tempurl_keys};
use super::{subrequest, AllowAll, AuthorizeHook, BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use crate::resume::ChannelBody;
use bytes::{Buf, Bytes, BytesMut};
use common::config::Section;
use common::http::{self as h, Body, BoxError};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::collections::HashMap;
use std::sync::Arc;

/// `swift.source` of the uploads and info look-ups.
const SOURCE: &str = "FP";
/// Most bytes of a field's value kept (the rest is read and dropped).
const MAX_VALUE_LENGTH: usize = 4096;
/// Bytes of a file handed to its `PUT` at a time.
const READ_CHUNK_SIZE: usize = 64 * 1024;
/// Longest part header line (or run of bytes without a line end) read.
const MAX_HEADER_LINE: usize = 8192;

pub struct FormPost {
    allowed_digests: Vec<String>,
    next: Next,
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    Ok(Arc::new(FormPost::from_section(section, next, build)?))
}

impl FormPost {
    fn from_section(section: &Section, next: Next, build: &mut Build) -> Result<FormPost, String> {
        let (allowed, deprecated) = allowed_digests(section)?;
        let mut caps = serde_json::json!({ "allowed_digests": allowed });
        if !deprecated.is_empty() {
            caps["deprecated_digests"] = serde_json::json!(deprecated);
        }
        build.capabilities.insert("formpost".into(), caps);
        Ok(FormPost { allowed_digests: allowed, next })
    }
}

/// Why a form was refused.
#[derive(Debug, thiserror::Error)]
enum FormError {
    #[error("invalid starting boundary")]
    MimeInvalid,
    /// A 400 with this reason.
    #[error("{0}")]
    Invalid(String),
    /// A 401 with this reason.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("error reading the request body: {0}")]
    Read(BoxError),
}

impl FormError {
    fn response(&self, account: &str) -> Response<Body> {
        match self {
            FormError::Unauthorized(why) => {
                let mut resp = h::text(StatusCode::UNAUTHORIZED, format!("FormPost: {}", title(why)));
                if let Ok(v) = HeaderValue::from_str(&format!("Swift realm=\"{}\"", h::quote_path(account))) {
                    resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
                }
                resp
            }
            other => plain(StatusCode::BAD_REQUEST, format!("FormPost: {other}").into_bytes()),
        }
    }
}

/// A `text/plain` answer.
fn plain(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(h::full(body.clone()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    resp
}

/// Python's `str.title()` for ASCII text: `invalid signature` →
/// `Invalid Signature`.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        out.extend(if prev_letter { c.to_lowercase().collect::<Vec<_>>() } else { c.to_uppercase().collect() });
        prev_letter = c.is_alphabetic();
    }
    out
}

impl Handler for FormPost {
    fn call(&self, mut req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            if req.method() != Method::POST {
                return self.next.call(req).await;
            }
            let (kind, attrs) = parse_content_disposition(h::header_str(req.headers(), "content-type").unwrap_or(""));
            let Some(boundary) = attrs.get("boundary").filter(|_| kind == "multipart/form-data").cloned() else {
                return self.next.call(req).await;
            };
            let agent = format!("{} FormPost", h::header_str(req.headers(), "user-agent").unwrap_or(""));
            if let Ok(v) = HeaderValue::from_str(agent.trim()) {
                req.headers_mut().insert(http::header::USER_AGENT, v);
            }
            let path = common::path::unquote(req.uri().path()).unwrap_or_default();
            let account = path.split('/').nth(2).unwrap_or("").to_string();
            match self.translate_form(req, &path, boundary.as_bytes()).await {
                Ok(resp) => resp,
                Err(e) => e.response(&account),
            }
        })
    }
}

/// The last upload made, or why the form stopped.
struct Outcome {
    status: StatusCode,
    message: &'static str,
    headers: HeaderMap,
    body: Bytes,
}

impl FormPost {
    /// Uploads each file of the form: the answer to send.
    async fn translate_form(&self, req: Request<Body>, path: &str, boundary: &[u8]) -> Result<Response<Body>, FormError> {
        let parts = parts_of(&req);
        let keys = match path.splitn(5, '/').collect::<Vec<_>>()[..] {
            ["", version, account, container, ..] if matches!(version, "v1" | "v1.0") && !account.is_empty() && !container.is_empty() => {
                tempurl_keys(&self.next, &parts, account, container, SOURCE).await
            }
            _ => Vec::new(),
        };
        let mut form = Multipart::new(req.into_body(), boundary);
        form.start().await?;

        let mut attributes: HashMap<String, String> = HashMap::new();
        let mut outcome: Option<Outcome> = None;
        let mut file_count = 0u64;
        while let Some(hdrs) = form.next_part().await? {
            let (disposition, attrs) = parse_content_disposition(hdrs.get("content-disposition").map(String::as_str).unwrap_or(""));
            let filename = attrs.get("filename").filter(|f| !f.is_empty());
            if disposition == "form-data" && filename.is_some() {
                file_count += 1;
                let max_file_count = int_attribute(&attributes, "max_file_count", "max_file_count not an integer")?;
                if file_count as i64 > max_file_count {
                    outcome = Some(Outcome {
                        status: StatusCode::BAD_REQUEST,
                        message: "max file count exceeded",
                        headers: HeaderMap::new(),
                        body: Bytes::new(),
                    });
                    break;
                }
                let mut file_attributes = attributes.clone();
                file_attributes.insert("filename".into(), filename.cloned().unwrap_or_default());
                for name in ["content-type", "content-encoding"] {
                    if let (false, Some(v)) = (attributes.contains_key(name), hdrs.get(name)) {
                        let v = if v.is_empty() && name == "content-type" { "application/octet-stream" } else { v };
                        file_attributes.insert(name.into(), v.to_string());
                    }
                }
                let done = self.perform_subrequest(&parts, path, &file_attributes, &mut form, &keys).await?;
                let failed = !done.status.is_success();
                outcome = Some(done);
                if failed {
                    break;
                }
            } else {
                let mut data = Vec::new();
                while let Some(chunk) = form.read(MAX_VALUE_LENGTH - data.len()).await? {
                    data.extend_from_slice(&chunk);
                    if data.len() >= MAX_VALUE_LENGTH {
                        form.drain().await?;
                        break;
                    }
                }
                if let Some(name) = attrs.get("name") {
                    let value = String::from_utf8_lossy(&data).trim_end_matches(['\r', '\n', '-']).to_string();
                    attributes.insert(name.to_lowercase(), value);
                }
            }
        }
        let outcome = outcome.unwrap_or(Outcome {
            status: StatusCode::BAD_REQUEST,
            message: "no files to process",
            headers: HeaderMap::new(),
            body: Bytes::new(),
        });
        Ok(respond(outcome, attributes.get("redirect").filter(|r| !r.is_empty())))
    }

    /// Checks the form's signature and expiry and uploads one file, its
    /// body streamed from the form.
    async fn perform_subrequest(
        &self,
        orig: &Parts,
        path: &str,
        attributes: &HashMap<String, String>,
        form: &mut Multipart,
        keys: &[String],
    ) -> Result<Outcome, FormError> {
        if keys.is_empty() {
            return Err(FormError::Unauthorized("invalid signature"));
        }
        let max_file_size = int_attribute(attributes, "max_file_size", "max_file_size not an integer")?;
        let mut target = path.to_string();
        if !target.ends_with('/') && target.matches('/').count() < 4 {
            target.push('/');
        }
        target.push_str(attributes.get("filename").map(String::as_str).unwrap_or("filename"));

        let mut headers = HeaderMap::new();
        headers.insert(http::header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        for (field, header, why) in [
            ("x_delete_at", "x-delete-at", "x_delete_at not an integer: Unix timestamp required."),
            ("x_delete_after", "x-delete-after", "x_delete_after not an integer: Number of seconds required."),
        ] {
            if attributes.contains_key(field) {
                let n = int_attribute(attributes, field, why)?;
                headers.insert(HeaderName::from_static(header), HeaderValue::from(n));
            }
        }
        if let Some(ct) = attributes.get("content-type") {
            let ct = if ct.is_empty() { "application/octet-stream" } else { ct };
            let v = HeaderValue::from_str(ct).map_err(|_| FormError::Invalid("content-type not valid".into()))?;
            headers.insert(http::header::CONTENT_TYPE, v);
        }
        if let Some(ce) = attributes.get("content-encoding") {
            let v = HeaderValue::from_str(ce).map_err(|_| FormError::Invalid("content-encoding not valid".into()))?;
            headers.insert(http::header::CONTENT_ENCODING, v);
        }
        for name in [http::header::USER_AGENT, http::header::ORIGIN] {
            if let Some(v) = orig.headers.get(&name) {
                headers.insert(name, v.clone());
            }
        }

        let expires = int_attribute(attributes, "expires", "expired not an integer")?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        if (expires as f64) < now {
            return Err(FormError::Unauthorized("form expired"));
        }
        let field = |name: &str, default: &'static str| -> String {
            attributes.get(name).filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| default.to_string())
        };
        let hmac_body = format!(
            "{path}\n{}\n{}\n{}\n{}",
            field("redirect", ""),
            field("max_file_size", "0"),
            field("max_file_count", "0"),
            field("expires", "0")
        );
        let given = attributes.get("signature").map(String::as_str).unwrap_or("");
        let (digest, signature) = extract_digest_and_algorithm(given).ok_or(FormError::Unauthorized("invalid signature"))?;
        if !self.allowed_digests.iter().any(|d| d == digest) {
            return Err(FormError::Unauthorized("invalid signature"));
        }
        if !keys.iter().any(|k| hmac_hex(digest, k.as_bytes(), hmac_body.as_bytes()).is_some_and(|s| streq_const_time(&s, &signature))) {
            return Err(FormError::Unauthorized("invalid signature"));
        }

        let (tx, body) = ChannelBody::channel();
        let mut put = match subrequest(orig, Method::PUT, &h::quote_path(&target), headers, body.boxed(), SOURCE) {
            Ok(put) => put,
            Err(resp) => {
                return Ok(Outcome { status: resp.status(), message: "", headers: HeaderMap::new(), body: Bytes::new() });
            }
        };
        // The signature is the form's authority.
        put.extensions_mut().insert(AuthorizeHook(Arc::new(AllowAll)));

        /// How feeding the file to its `PUT` ended.
        enum Fed {
            All,
            TooBig,
            Failed(FormError),
        }
        let feed = async move {
            let mut sent: u64 = 0;
            loop {
                match form.read(READ_CHUNK_SIZE).await {
                    Ok(Some(chunk)) => {
                        sent += chunk.len() as u64;
                        if max_file_size < 0 || sent > max_file_size as u64 {
                            let _ = tx.send(Err("max_file_size exceeded".into())).await;
                            return Fed::TooBig;
                        }
                        // The PUT stopped reading (it failed): its answer says why.
                        if tx.send(Ok(chunk)).await.is_err() {
                            return Fed::All;
                        }
                    }
                    Ok(None) => return Fed::All,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string().into())).await;
                        return Fed::Failed(e);
                    }
                }
            }
        };
        let (fed, resp) = tokio::join!(feed, self.next.call(put));
        match fed {
            Fed::TooBig => return Err(FormError::Invalid("max_file_size exceeded".into())),
            Fed::Failed(e) => return Err(e),
            Fed::All => {}
        }
        let (head, body) = resp.into_parts();
        let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        Ok(Outcome { status: head.status, message: "", headers: head.headers, body })
    }
}

/// An integer form field (absent or empty is 0), parsed as Python's `int`.
fn int_attribute(attributes: &HashMap<String, String>, name: &str, why: &str) -> Result<i64, FormError> {
    match attributes.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(0),
        Some(v) => v.strip_prefix('+').unwrap_or(v).parse().map_err(|_| FormError::Invalid(why.to_string())),
    }
}

/// The answer to a form: the outcome as text, or a redirect carrying it.
fn respond(outcome: Outcome, redirect: Option<&String>) -> Response<Body> {
    let status_line = format!("{} {}", outcome.status.as_u16(), outcome.status.canonical_reason().unwrap_or(""));
    let mut resp = match redirect {
        None => {
            let mut body = status_line.clone();
            if !outcome.message.is_empty() {
                body = format!("{status_line}\r\nFormPost: {}", title(outcome.message));
            }
            let body = if !outcome.status.is_success() && !outcome.body.is_empty() { outcome.body.to_vec() } else { body.into_bytes() };
            plain(outcome.status, body)
        }
        Some(redirect) => {
            let sep = if redirect.contains('?') { '&' } else { '?' };
            let location = format!(
                "{redirect}{sep}status={}&message={}",
                outcome.status.as_u16(),
                percent_encoding::utf8_percent_encode(outcome.message, PY_QUOTE)
            );
            let body = format!("<html><body><p><a href=\"{location}\">Click to continue...</a></p></body></html>");
            let mut resp = Response::new(h::full(body.clone()));
            *resp.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(http::header::LOCATION, v);
            }
            resp.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            resp
        }
    };
    for (name, value) in &outcome.headers {
        if name.as_str().starts_with("access-control") {
            resp.headers_mut().append(name.clone(), value.clone());
        }
    }
    resp
}

/// Python's `urllib.parse.quote` (`/` safe).
const PY_QUOTE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b'/');

/// `form-data; name="file"; filename="a.txt"` → (`form-data`, its
/// attributes), as Swift's `parse_content_disposition`: attributes are
/// read while they match `word=("quoted"|token)(; ?|$)`.
fn parse_content_disposition(header: &str) -> (String, HashMap<String, String>) {
    let mut attributes = HashMap::new();
    let Some((value, mut rest)) = header.split_once(';').map(|(v, r)| (v.trim(), r.trim())) else {
        return (header.to_string(), attributes);
    };
    loop {
        let key_len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if key_len == 0 || !rest[key_len..].starts_with('=') {
            break;
        }
        let key = &rest[..key_len];
        let after = &rest[key_len + 1..];
        let (val, tail) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                // An unclosed quote matches neither form: stop.
                None => break,
            }
        } else {
            let end = after.find(['"', ';']).unwrap_or(after.len());
            if end == 0 {
                break;
            }
            (&after[..end], &after[end..])
        };
        let tail = if let Some(t) = tail.strip_prefix(';') {
            t.strip_prefix(' ').unwrap_or(t)
        } else if tail.is_empty() {
            tail
        } else {
            break;
        };
        attributes.insert(key.to_string(), val.trim_matches('"').to_string());
        rest = tail;
    }
    (value.to_string(), attributes)
}

/// A streaming reader of a `multipart/form-data` body, part by part, as
/// Swift's `iter_multipart_mime_documents`: at most a chunk and a
/// delimiter are held at a time.
struct Multipart {
    body: Body,
    buf: BytesMut,
    eof: bool,
    /// `--<boundary>`.
    dash_boundary: Vec<u8>,
    /// `\r\n--<boundary>`: what ends a part.
    delimiter: Vec<u8>,
    in_part: bool,
    part_done: bool,
    no_more_parts: bool,
}

impl Multipart {
    fn new(body: Body, boundary: &[u8]) -> Multipart {
        let dash_boundary = [b"--".as_slice(), boundary].concat();
        let delimiter = [b"\r\n".as_slice(), &dash_boundary].concat();
        Multipart {
            body,
            buf: BytesMut::new(),
            eof: false,
            dash_boundary,
            delimiter,
            in_part: false,
            part_done: false,
            no_more_parts: false,
        }
    }

    /// Reads more of the body into the buffer; false at its end.
    async fn fill(&mut self) -> Result<bool, FormError> {
        while !self.eof {
            match self.body.frame().await {
                None => self.eof = true,
                Some(Err(e)) => return Err(FormError::Read(e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            self.buf.extend_from_slice(&data);
                            return Ok(true);
                        }
                    }
                }
            }
        }
        Ok(false)
    }

    /// Reads the first boundary (blank lines before it are skipped).
    async fn start(&mut self) -> Result<(), FormError> {
        let limit = self.dash_boundary.len() + 2;
        loop {
            while !self.buf[..self.buf.len().min(limit)].contains(&b'\n') && self.buf.len() < limit {
                if !self.fill().await? {
                    break;
                }
            }
            let end = match self.buf[..self.buf.len().min(limit)].iter().position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => self.buf.len().min(limit),
            };
            let line = self.buf.split_to(end);
            if line.as_ref() == b"\r\n" {
                continue;
            }
            if line.trim_ascii() != self.dash_boundary.as_slice() {
                return Err(FormError::MimeInvalid);
            }
            return Ok(());
        }
    }

    /// The headers of the next part (names in lower case), after skipping
    /// what is left of the current one; `None` after the last part.
    async fn next_part(&mut self) -> Result<Option<HashMap<String, String>>, FormError> {
        if self.in_part {
            self.drain().await?;
            if self.no_more_parts {
                return Ok(None);
            }
        }
        self.in_part = true;
        self.part_done = false;
        let mut headers: HashMap<String, String> = HashMap::new();
        let mut last: Option<String> = None;
        loop {
            let line = self.readline().await?;
            if matches!(line.as_ref(), b"\r\n" | b"\n" | b"") {
                break;
            }
            let line = match std::str::from_utf8(&line) {
                Ok(s) => s.to_string(),
                Err(_) => line.iter().map(|&b| b as char).collect(),
            };
            let line = line.trim_end_matches(['\r', '\n']);
            if line.starts_with([' ', '\t']) {
                if let Some(v) = last.as_ref().and_then(|n| headers.get_mut(n)) {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                headers.entry(name.clone()).or_insert_with(|| value.trim().to_string());
                last = Some(name);
            }
        }
        Ok(Some(headers))
    }

    /// One header line of the current part (with its CRLF), or what is
    /// left of the part when no line end comes before its end.
    async fn readline(&mut self) -> Result<Bytes, FormError> {
        if self.part_done {
            return Ok(Bytes::new());
        }
        loop {
            let newline = find(&self.buf, b"\r\n");
            let boundary = find(&self.buf, &self.delimiter);
            match (newline, boundary) {
                (Some(n), b) if b.is_none_or(|b| n < b) => return Ok(self.buf.split_to(n + 2).freeze()),
                (_, Some(_)) => break,
                _ => {}
            }
            if self.buf.len() > MAX_HEADER_LINE {
                return Err(FormError::Invalid("part header line too long".into()));
            }
            if !self.fill().await? {
                self.no_more_parts = true;
                break;
            }
        }
        let mut rest = BytesMut::new();
        while let Some(chunk) = self.read(MAX_HEADER_LINE).await? {
            rest.extend_from_slice(&chunk);
        }
        Ok(rest.freeze())
    }

    /// Up to `max` bytes of the current part's data; `None` at its end.
    async fn read(&mut self, max: usize) -> Result<Option<Bytes>, FormError> {
        if self.part_done || max == 0 {
            return Ok(None);
        }
        // Enough to see a delimiter starting within the next `max` bytes,
        // and the two bytes after it.
        while self.buf.len() < max + self.delimiter.len() + 2 {
            if !self.fill().await? {
                self.no_more_parts = true;
                break;
            }
        }
        match find(&self.buf, &self.delimiter) {
            Some(pos) if pos <= max => {
                let data = self.buf.split_to(pos).freeze();
                self.buf.advance(self.delimiter.len());
                self.no_more_parts = self.buf.starts_with(b"--");
                self.buf.advance(self.buf.len().min(2));
                self.part_done = true;
                Ok(Some(data))
            }
            _ if self.buf.is_empty() => {
                self.part_done = true;
                Ok(None)
            }
            _ => {
                let n = max.min(self.buf.len());
                Ok(Some(self.buf.split_to(n).freeze()))
            }
        }
    }

    /// Reads and drops the rest of the current part.
    async fn drain(&mut self) -> Result<(), FormError> {
        while self.read(READ_CHUNK_SIZE).await?.is_some() {}
        Ok(())
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    (0..=hay.len() - needle.len()).find(|&i| hay[i] == first && &hay[i..i + needle.len()] == needle)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, Recorder, Seen};
    use super::*;
    use common::config::ConfigFile;
    use std::time::{SystemTime, UNIX_EPOCH};

    const KEY: &str = "secret";

    /// Account `AUTH_a` has temp URL key `secret`; uploads get 201, except
    /// to objects named `fail*` (503).
    fn backend() -> Arc<Recorder> {
        Recorder::new(|seen: &Seen| match (seen.method.as_str(), seen.uri.as_str()) {
            ("HEAD", "/v1/AUTH_a") => {
                let mut r = h::status(StatusCode::NO_CONTENT);
                r.headers_mut().insert("x-account-meta-temp-url-key", HeaderValue::from_static(KEY));
                r
            }
            ("HEAD", _) => h::status(StatusCode::NO_CONTENT),
            ("PUT", uri) if uri.contains("/fail") => h::text(StatusCode::SERVICE_UNAVAILABLE, "no room"),
            ("PUT", _) => {
                let mut r = h::status(StatusCode::CREATED);
                r.headers_mut().insert("access-control-allow-origin", HeaderValue::from_static("*"));
                r
            }
            _ => h::status(StatusCode::OK),
        })
    }

    fn middleware(next: Next) -> FormPost {
        let conf = ConfigFile::parse("[filter:formpost]\nuse = egg:swift#formpost\n", "p.conf").unwrap();
        FormPost::from_section(&conf.filter_section("formpost").unwrap(), next, &mut Build::default()).unwrap()
    }

    fn expires_in(secs: i64) -> String {
        (SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 + secs).to_string()
    }

    /// The fields of a signed form for `path`.
    fn signed(path: &str, redirect: &str, max_size: &str, max_count: &str, expires: &str) -> Vec<(String, String)> {
        let body = format!("{path}\n{redirect}\n{max_size}\n{max_count}\n{expires}");
        let sig = hmac_hex("sha256", KEY.as_bytes(), body.as_bytes()).unwrap();
        [("redirect", redirect), ("max_file_size", max_size), ("max_file_count", max_count), ("expires", expires), ("signature", &sig)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A multipart body: the fields, then the files `(name, content)`.
    fn form(fields: &[(String, String)], files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = Vec::new();
        for (k, v) in fields {
            b.extend_from_slice(format!("--BOUND\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
        }
        for (i, (name, content)) in files.iter().enumerate() {
            b.extend_from_slice(
                format!(
                    "--BOUND\r\nContent-Disposition: form-data; name=\"file{i}\"; filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n"
                )
                .as_bytes(),
            );
            b.extend_from_slice(content);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"--BOUND--\r\n");
        b
    }

    /// The body in small pieces, so that delimiters straddle chunks.
    fn post(path: &str, body: Vec<u8>) -> Request<Body> {
        let chunks: Vec<Result<http_body::Frame<Bytes>, BoxError>> =
            body.chunks(7).map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c)))).collect();
        let stream = futures_util::stream::iter(chunks);
        Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "multipart/form-data; boundary=BOUND")
            .body(http_body_util::StreamBody::new(stream).boxed())
            .unwrap()
    }

    #[tokio::test]
    async fn files_become_puts_and_the_answer_is_the_last_status() {
        let next = backend();
        let m = middleware(next.clone());
        let fields = signed("/v1/AUTH_a/c/pre-", "", "1024", "5", &expires_in(60));
        let big: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        let body = form(&fields, &[("one.txt", b"first\r\n--BOUN"), ("two.bin", &big)]);
        let resp = m.call(post("/v1/AUTH_a/c/pre-", body)).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(resp.headers()["content-type"], "text/plain");
        assert_eq!(resp.headers()["access-control-allow-origin"], "*");
        assert_eq!(body_of(resp).await, "201 Created");
        let puts: Vec<Seen> = next.seen().into_iter().filter(|s| s.method == Method::PUT).collect();
        assert_eq!(puts.len(), 2);
        assert_eq!(puts[0].uri, "/v1/AUTH_a/c/pre-one.txt");
        assert_eq!(puts[0].body, "first\r\n--BOUN");
        assert_eq!(puts[0].headers["content-type"], "text/plain");
        assert_eq!(puts[0].source, Some("FP"));
        assert_eq!(puts[1].uri, "/v1/AUTH_a/c/pre-two.bin");
        assert_eq!(puts[1].body, big);
    }

    #[tokio::test]
    async fn a_redirect_carries_status_and_message() {
        let m = middleware(backend());
        let fields = signed("/v1/AUTH_a/c", "https://example.com/done?x=1", "10", "1", &expires_in(60));
        let resp = m.call(post("/v1/AUTH_a/c", form(&fields, &[("a", b"1"), ("b", b"2")]))).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()["location"], "https://example.com/done?x=1&status=400&message=max%20file%20count%20exceeded");
    }

    #[tokio::test]
    async fn bad_signatures_expiry_and_sizes_are_refused() {
        let next = backend();
        let m = middleware(next.clone());
        let mut wrong = signed("/v1/AUTH_a/c", "", "10", "1", &expires_in(60));
        wrong[4].1 = "0".repeat(64);
        let resp = m.call(post("/v1/AUTH_a/c", form(&wrong, &[("a", b"1")]))).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_of(resp).await, "FormPost: Invalid Signature");

        let old = signed("/v1/AUTH_a/c", "", "10", "1", &expires_in(-10));
        let resp = m.call(post("/v1/AUTH_a/c", form(&old, &[("a", b"1")]))).await;
        assert_eq!(body_of(resp).await, "FormPost: Form Expired");

        let other_path = signed("/v1/AUTH_a/d", "", "10", "1", &expires_in(60));
        let resp = m.call(post("/v1/AUTH_a/c", form(&other_path, &[("a", b"1")]))).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

        let small = signed("/v1/AUTH_a/c", "", "10", "1", &expires_in(60));
        let resp = m.call(post("/v1/AUTH_a/c", form(&small, &[("a", &[b'x'; 11])]))).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(resp).await, "FormPost: max_file_size exceeded");

        let resp = m.call(post("/v1/AUTH_a/c", form(&small, &[]))).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(resp).await, "400 Bad Request\r\nFormPost: No Files To Process");

        let resp = m.call(post("/v1/AUTH_a/c", b"garbage\r\n".to_vec())).await;
        assert_eq!(body_of(resp).await, "FormPost: invalid starting boundary");
        assert!(next.seen().iter().all(|s| s.method != Method::PUT || s.body.is_empty()));
    }

    #[tokio::test]
    async fn a_failed_upload_stops_the_form_with_its_answer() {
        let next = backend();
        let m = middleware(next.clone());
        let fields = signed("/v1/AUTH_a/c", "", "10", "3", &expires_in(60));
        let resp = m.call(post("/v1/AUTH_a/c", form(&fields, &[("fail", b"1"), ("b", b"2")]))).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body_of(resp).await, "no room");
        assert_eq!(next.seen().iter().filter(|s| s.method == Method::PUT).count(), 1);
    }

    #[tokio::test]
    async fn other_requests_pass() {
        let next = backend();
        let m = middleware(next.clone());
        let req = Request::builder().method("POST").uri("/v1/AUTH_a/c/o").header("content-type", "text/plain").body(h::full("x")).unwrap();
        assert_eq!(m.call(req).await.status(), StatusCode::OK);
        assert_eq!(next.seen().len(), 1);
    }

    #[test]
    fn content_disposition_attributes() {
        let (v, a) = parse_content_disposition("form-data; name=\"file\"; filename=\"a b.txt\"");
        assert_eq!(v, "form-data");
        assert_eq!(a["name"], "file");
        assert_eq!(a["filename"], "a b.txt");
        let (v, a) = parse_content_disposition("multipart/form-data; boundary=----WebKit123");
        assert_eq!(v, "multipart/form-data");
        assert_eq!(a["boundary"], "----WebKit123");
        assert_eq!(title("max file count exceeded"), "Max File Count Exceeded");
    }
}
