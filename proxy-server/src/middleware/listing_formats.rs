//! `egg:swift#listing_formats`: clients choose the format of account and
//! container listings (`?format=json|xml|plain`, else `Accept`; 406 when
//! nothing fits), while everything to its right, the app and the
//! subrequests of other middlewares, deals in JSON only. For a GET or HEAD
//! of an account or container under a valid API version it sends the
//! request on with `format=json` (the client's `Accept` stays, for the
//! middlewares to its right; the app ignores it), then renders the app's
//! JSON listing as plain text or XML byte for byte as Swift does, with
//! `Content-Type: ...; charset=utf-8` and the length fixed. Only a 200 or
//! 204 `application/json` answer is converted: errors, anything that does
//! not look like a listing, and a response marked `ListingAsIs` by a
//! middleware in charge of its own listing go back as they came. Swift
//! inserts it into every pipeline (see `pipeline::REQUIRED`).

use super::{BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use bytes::Bytes;
use common::backend_headers::BACKEND_ALLOW_RESERVED_NAMES;
use common::config::Section;
use common::http::{self as h, Body};
use common::listing_format::{
    account_to_xml as write_account_xml, container_to_xml as write_container_xml, listing_content_type, NegotiationError, XmlEntry,
};
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use std::sync::Arc;

/// A JSON answer longer than this is not taken for a listing and passes
/// through (Swift's `MAX_CONTAINER_LISTING_CONTENT_LENGTH`: 10,000 names of
/// up to 1024 bytes, twice over for the other fields). It also bounds what
/// this middleware holds in memory.
const MAX_LISTING_LENGTH: u64 = 1024 * 10_000 * 2;

/// Swift's marker of reserved names (`swift.common.utils.RESERVED`).
const RESERVED: char = '\0';

pub struct ListingFormats {
    /// Swift's `valid_api_versions` (from `swift.conf`).
    valid_api_versions: Vec<String>,
    next: Next,
}

pub fn factory(_section: &Section, proxy: &Proxy, next: Next, _build: &mut Build) -> Result<Next, String> {
    Ok(Arc::new(ListingFormats { valid_api_versions: proxy.swift.constraints.valid_api_versions.clone(), next }))
}

/// A listing format a client may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    /// `application/xml`, or `text/xml` when that is what `Accept` chose.
    Xml {
        text_xml: bool,
    },
    Plain,
}

impl Format {
    /// The format of one of [`common::listing_format::LISTING_CONTENT_TYPES`].
    fn of(content_type: &str) -> Format {
        match content_type {
            "application/json" => Format::Json,
            "application/xml" => Format::Xml { text_xml: false },
            "text/xml" => Format::Xml { text_xml: true },
            _ => Format::Plain,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml { text_xml: false } => "application/xml; charset=utf-8",
            Format::Xml { text_xml: true } => "text/xml; charset=utf-8",
            Format::Plain => "text/plain; charset=utf-8",
        }
    }
}

/// Swift's `get_listing_content_type` (see [`listing_content_type`]), as a
/// [`Format`].
pub fn negotiate(format_param: Option<&str>, accept: Option<&str>) -> Result<Format, NegotiationError> {
    listing_content_type(format_param, accept).map(Format::of)
}

/// The account (and container) a listing request names: `None` for any
/// other path, or one under an API version not in `valid_api_versions`.
fn listing_target(raw_path: &str, valid_api_versions: &[String]) -> Option<(String, Option<String>)> {
    let path = common::path::unquote_internal(raw_path).ok()?;
    let segs = common::path::split_path(&path, 2, 3, false).ok()?;
    let mut it = segs.into_iter().map(|s| s.filter(|s| !s.is_empty()));
    let version = it.next()??;
    if !valid_api_versions.contains(&version) {
        return None;
    }
    let account = it.next()??;
    Some((account, it.next().flatten()))
}

/// The raw query with every `format` parameter replaced by one
/// `format=json` (where the first was, else at the end).
fn json_query(query: Option<&str>) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut placed = false;
    for kv in query.unwrap_or("").split('&').filter(|kv| !kv.is_empty()) {
        if super::query_param(Some(kv), "format").is_some() {
            if !placed {
                out.push("format=json");
                placed = true;
            }
            continue;
        }
        out.push(kv);
    }
    if !placed {
        out.push("format=json");
    }
    out.join("&")
}

/// Adds `Accept` to the response's `Vary` (the listing depends on it).
fn vary_on_accept(headers: &mut HeaderMap) {
    let value = match headers.get(VARY) {
        None => "Accept".to_string(),
        Some(v) => {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            if v.split(',').any(|t| t.trim().eq_ignore_ascii_case("accept")) {
                return;
            }
            format!("{v}, Accept")
        }
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(VARY, v);
    }
}

impl Handler for ListingFormats {
    fn call(&self, mut req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let method = req.method().clone();
            if method != Method::GET && method != Method::HEAD {
                return self.next.call(req).await;
            }
            let Some((account, container)) = listing_target(req.uri().path(), &self.valid_api_versions) else {
                return self.next.call(req).await;
            };
            let query = req.uri().query();
            let format_param = super::query_param(query, "format");
            let accept = req.headers().get(ACCEPT).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let format = match negotiate(format_param.as_deref(), accept.as_deref()) {
                Ok(f) => f,
                Err(NegotiationError::BadAccept) => return h::text(StatusCode::BAD_REQUEST, "Invalid Accept header"),
                Err(NegotiationError::NotAcceptable) => return h::text(StatusCode::NOT_ACCEPTABLE, "Not Acceptable"),
            };
            // With ?format= the answer does not depend on Accept; as Swift's
            // get_listing_content_type, the request's Accept becomes the
            // chosen type, so that middlewares to the right in charge of
            // their own listing (?versions) see what the client asked for.
            let can_vary = format_param.is_none();
            let chosen_accept = format_param.as_deref().filter(|f| !f.is_empty()).and_then(|f| listing_content_type(Some(f), None).ok());
            let path_and_query = format!("{}?{}", req.uri().path(), json_query(query));
            let mut uri = req.uri().clone().into_parts();
            uri.path_and_query = match path_and_query.parse() {
                Ok(pq) => Some(pq),
                Err(_) => return h::text(StatusCode::PRECONDITION_FAILED, "Bad URL"),
            };
            *req.uri_mut() = match http::Uri::from_parts(uri) {
                Ok(u) => u,
                Err(_) => return h::text(StatusCode::PRECONDITION_FAILED, "Bad URL"),
            };
            if let Some(chosen) = chosen_accept {
                req.headers_mut().insert(ACCEPT, HeaderValue::from_static(chosen));
            }
            let allow_reserved =
                h::header_str(req.headers(), BACKEND_ALLOW_RESERVED_NAMES).is_some_and(|v| common::config::parse_bool(v) == Some(true));

            let resp = self.next.call(req).await;
            // A middleware to the right may be in charge of its listing.
            if resp.extensions().get::<super::ListingAsIs>().is_some() {
                return resp;
            }
            if resp.status() != StatusCode::OK && resp.status() != StatusCode::NO_CONTENT {
                return resp;
            }
            let (mut parts, body) = resp.into_parts();
            if can_vary {
                vary_on_accept(&mut parts.headers);
            }
            let content_type = parts.headers.get(CONTENT_TYPE).map(|v| v.as_bytes()).unwrap_or_default();
            if content_type.split(|b| *b == b';').next() != Some(b"application/json") {
                return Response::from_parts(parts, body);
            }
            if method == Method::HEAD {
                parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
                parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
                return Response::from_parts(parts, body);
            }
            // Without a length, or too long, it is not a listing the app
            // made (Swift has staticweb in mind); never buffer it.
            let length = h::header_str(&parts.headers, "content-length").and_then(|l| l.parse::<u64>().ok());
            if length.is_none_or(|l| l > MAX_LISTING_LENGTH) {
                return Response::from_parts(parts, body);
            }
            let json = match body.collect().await {
                Ok(c) => c.to_bytes(),
                Err(e) => {
                    common::log::error(&format!("Error reading a listing for {account}: {e}"));
                    return h::text(StatusCode::INTERNAL_SERVER_ERROR, "An error occurred");
                }
            };
            let Some(listing) = parse_listing(&json) else {
                return Response::from_parts(parts, h::full(json));
            };
            let (listing, filtered) =
                if allow_reserved { (listing, false) } else { filter_reserved(listing, &account, container.as_deref()) };
            let rendered = match format {
                // The app's JSON is Swift's (`json.dumps`) already.
                Format::Json if !filtered => Some(json.clone()),
                Format::Json => Some(Bytes::from(python_json(&listing))),
                Format::Plain => listing_to_text(&listing).map(Bytes::from),
                Format::Xml { .. } => match &container {
                    Some(c) => container_to_xml(&listing, c).map(Bytes::from),
                    None => account_to_xml(&listing, &account).map(Bytes::from),
                },
            };
            // A record without the fields a format needs: not our listing.
            let Some(rendered) = rendered else { return Response::from_parts(parts, h::full(json)) };
            if rendered.is_empty() {
                parts.status = StatusCode::NO_CONTENT;
            }
            parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
            parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(rendered.len()));
            Response::from_parts(parts, h::full(rendered))
        })
    }
}

/// A listing is a JSON array of objects; anything else is not one.
fn parse_listing(body: &[u8]) -> Option<Vec<Map<String, Value>>> {
    match serde_json::from_slice(body).ok()? {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(m) => Some(m),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Drops the records whose name or subdir holds a reserved byte (clients
/// see them only with `X-Backend-Allow-Reserved-Names`); says whether any
/// was dropped.
fn filter_reserved(listing: Vec<Map<String, Value>>, account: &str, container: Option<&str>) -> (Vec<Map<String, Value>>, bool) {
    let before = listing.len();
    let kept: Vec<_> = listing
        .into_iter()
        .filter(|entry| {
            let hit = ["name", "subdir"].into_iter().find_map(|key| {
                let value = entry.get(key).and_then(Value::as_str).filter(|v| v.contains(RESERVED))?;
                Some((key, value))
            });
            let Some((key, value)) = hit else { return true };
            let whose = match container {
                Some(c) => format!("Container listing for {}/{}", h::quote_path(account), h::quote_path(c)),
                None => format!("Account listing for {}", h::quote_path(account)),
            };
            common::log::warning(&format!("{whose} had reserved byte in {key}: {value:?}"));
            false
        })
        .collect();
    let filtered = kept.len() != before;
    (kept, filtered)
}

/// A value as Python's `str()` writes what `json.loads` made of it.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// One name (or subdir) a line; `None` for a record with neither.
fn listing_to_text(listing: &[Map<String, Value>]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for item in listing {
        let name = item.get("name").or_else(|| item.get("subdir"))?.as_str()?;
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    Some(out)
}

/// Swift's `container_to_xml`; `None` when an object lacks one of the five
/// fields. Other fields are not rendered.
fn container_to_xml(listing: &[Map<String, Value>], container: &str) -> Option<String> {
    let entries = xml_entries(listing, &["name", "hash", "bytes", "content_type", "last_modified"], &[])?;
    Some(write_container_xml(container, entries))
}

/// Swift's `account_to_xml`; `None` when a container lacks one of the four
/// fields. A `storage_policy` is rendered when present.
fn account_to_xml(listing: &[Map<String, Value>], account: &str) -> Option<String> {
    let entries = xml_entries(listing, &["name", "count", "bytes", "last_modified"], &["storage_policy"])?;
    Some(write_account_xml(account, entries))
}

/// The records of `listing` for the XML writer: a subdir, or the
/// `required` fields then those of `optional` present, in order; `None`
/// when a record lacks a required field.
fn xml_entries(listing: &[Map<String, Value>], required: &[&'static str], optional: &[&'static str]) -> Option<Vec<XmlEntry<'static>>> {
    listing
        .iter()
        .map(|record| {
            if let Some(sub) = record.get("subdir") {
                return Some(XmlEntry::Subdir(py_str(sub).into()));
            }
            let mut fields = Vec::with_capacity(required.len() + optional.len());
            for &field in required {
                fields.push((field, py_str(record.get(field)?).into()));
            }
            for &field in optional {
                if let Some(v) = record.get(field) {
                    fields.push((field, py_str(v).into()));
                }
            }
            Some(XmlEntry::Record(fields))
        })
        .collect()
}

/// JSON as Python's `json.dumps` writes it (`", "` and `": "`, non-ASCII
/// as `\uXXXX`). Keys come out sorted (serde_json's map), which Swift's
/// would not be; used only when reserved names were filtered out.
fn python_json(listing: &[Map<String, Value>]) -> String {
    let mut out = String::from("[");
    for (i, m) in listing.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        common::listing_format::push_py_object(&mut out, m.iter());
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, request, Recorder, Seen};
    use super::*;

    const ACCOUNT_LISTING: &str = concat!(
        r#"[{"name": "bar", "count": 0, "bytes": 0, "last_modified": "1970-01-01T00:00:00.000000", "storage_policy": "gold"}, "#,
        r#"{"subdir": "foo_"}, "#,
        r#"{"name": "nobar", "count": 2, "bytes": 7, "last_modified": "2025-02-01T00:00:00.000000"}]"#
    );
    const CONTAINER_LISTING: &str = concat!(
        r#"[{"bytes": 0, "hash": "etag", "name": "a&b<'\"", "content_type": "text/plain", "#,
        r#""last_modified": "1970-01-01T00:00:00.000000", "symlink_path": "/v1/a/c/t"}, "#,
        r#"{"subdir": "d/\u00e9"}]"#
    );

    /// The app's answer: `body` as JSON with `status` (HEAD: no body).
    fn json_answer(status: StatusCode, body: &'static str) -> impl Fn(&Seen) -> Response<Body> {
        move |seen: &Seen| {
            let mut r = Response::new(if seen.method == Method::HEAD { h::empty() } else { h::full(body) });
            *r.status_mut() = status;
            let len = if seen.method == Method::HEAD { 0 } else { body.len() };
            r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
            r.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(len));
            r.headers_mut().insert("x-container-object-count", HeaderValue::from_static("1"));
            r
        }
    }

    fn filter(next: Arc<Recorder>) -> ListingFormats {
        ListingFormats { valid_api_versions: vec!["v1".into(), "v1.0".into()], next }
    }

    /// Status, Content-Type, Vary and body of `method uri` with `headers`
    /// through the filter to an app answering `listing`; checks that the
    /// app was asked for JSON and that Content-Length is the body's.
    async fn get(method: &str, uri: &str, headers: &[(&str, &str)], listing: &'static str) -> (StatusCode, String, Option<String>, String) {
        let next = Recorder::new(json_answer(StatusCode::OK, listing));
        let resp = filter(next.clone()).call(request(method, uri, headers, "")).await;
        let seen = &next.seen()[0];
        assert!(seen.uri.ends_with("format=json") && !seen.uri.contains("format=xml"), "{}", seen.uri);
        let header = |n| resp.headers().get(n).map(|v: &HeaderValue| v.to_str().unwrap().to_string());
        let (status, ct, vary, len) = (resp.status(), header(CONTENT_TYPE).unwrap(), header(VARY), header(CONTENT_LENGTH));
        assert_eq!(resp.headers()["x-container-object-count"], "1", "the app's headers stay");
        let body = String::from_utf8(body_of(resp).await.to_vec()).unwrap();
        assert_eq!(len.as_deref(), Some(body.len().to_string().as_str()), "Content-Length");
        (status, ct, vary, body)
    }

    /// The choice itself is `common::listing_format`'s (tested there);
    /// here, that each content type is the right `Format`.
    #[test]
    fn negotiation_follows_format_then_accept() {
        assert_eq!(negotiate(Some("json"), Some("text/plain")), Ok(Format::Json));
        assert_eq!(negotiate(Some("XML"), None), Ok(Format::Xml { text_xml: false }));
        assert_eq!(negotiate(Some("bogus"), Some("application/json")), Ok(Format::Plain));
        assert_eq!(negotiate(None, None), Ok(Format::Plain));
        assert_eq!(negotiate(None, Some("text/xml")), Ok(Format::Xml { text_xml: true }));
        assert_eq!(negotiate(None, Some("application/*")), Ok(Format::Json));
        assert_eq!(negotiate(None, Some("image/png")), Err(NegotiationError::NotAcceptable));
        assert_eq!(negotiate(None, Some("text/plain;q=x")), Err(NegotiationError::BadAccept));
        for ct in common::listing_format::LISTING_CONTENT_TYPES {
            assert!(Format::of(ct).content_type().starts_with(&format!("{ct};")), "{ct}");
        }
    }

    /// The proxy's rendering before this middleware existed, unchanged.
    #[test]
    fn renderings() {
        let items =
            parse_listing(br#"[{"name": "a&b", "hash": "h", "bytes": 1, "content_type": "t", "last_modified": "x"}, {"subdir": "d/"}]"#)
                .unwrap();
        assert_eq!(listing_to_text(&items).unwrap(), b"a&b\nd/\n");
        let xml = container_to_xml(&items, "c<").unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"c&lt;\"><object><name>a&amp;b</name>"));
        assert!(xml.ends_with("<subdir name=\"d/\"><name>d/</name></subdir></container>"));
    }

    #[tokio::test]
    async fn account_listings_in_every_format() {
        let (status, ct, vary, body) = get("GET", "/v1/a", &[], ACCOUNT_LISTING).await;
        assert_eq!((status, ct.as_str(), vary.as_deref()), (StatusCode::OK, "text/plain; charset=utf-8", Some("Accept")));
        assert_eq!(body, "bar\nfoo_\nnobar\n");
        let (_, ct, vary, body) = get("GET", "/v1/a?format=json", &[], ACCOUNT_LISTING).await;
        assert_eq!((ct.as_str(), vary, body.as_str()), ("application/json; charset=utf-8", None, ACCOUNT_LISTING));
        let (_, ct, _, body) = get("GET", "/v1/a?format=xml", &[], ACCOUNT_LISTING).await;
        assert_eq!(ct, "application/xml; charset=utf-8");
        assert_eq!(
            body.split('\n').collect::<Vec<_>>(),
            [
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                "<account name=\"a\">",
                "<container><name>bar</name><count>0</count><bytes>0</bytes>\
                 <last_modified>1970-01-01T00:00:00.000000</last_modified><storage_policy>gold</storage_policy></container>",
                "<subdir name=\"foo_\" />",
                "<container><name>nobar</name><count>2</count><bytes>7</bytes>\
                 <last_modified>2025-02-01T00:00:00.000000</last_modified></container>",
                "</account>",
            ]
        );
    }

    #[tokio::test]
    async fn container_listings_in_every_format() {
        let (status, ct, _, body) = get("GET", "/v1/a/c%20d", &[], CONTAINER_LISTING).await;
        assert_eq!((status, ct.as_str(), body.as_str()), (StatusCode::OK, "text/plain; charset=utf-8", "a&b<'\"\nd/\u{e9}\n"));
        let (_, ct, _, body) = get("GET", "/v1/a/c%20d?format=json", &[], CONTAINER_LISTING).await;
        assert_eq!((ct.as_str(), body.as_str()), ("application/json; charset=utf-8", CONTAINER_LISTING));
        let (_, ct, _, body) = get("GET", "/v1/a/c%20d/?format=xml", &[], CONTAINER_LISTING).await;
        assert_eq!(ct, "application/xml; charset=utf-8");
        // ElementTree's escaping; fields other than the five are left out.
        assert_eq!(
            body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"c d\">\
             <object><name>a&amp;b&lt;'\"</name><hash>etag</hash><bytes>0</bytes><content_type>text/plain</content_type>\
             <last_modified>1970-01-01T00:00:00.000000</last_modified></object>\
             <subdir name=\"d/\u{e9}\"><name>d/\u{e9}</name></subdir></container>"
        );
        let (_, _, _, body) = get("GET", "/v1/a/%22%3C?format=xml", &[], "[]").await;
        assert_eq!(body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"&quot;&lt;\" />");
    }

    #[tokio::test]
    async fn accept_chooses_when_format_does_not() {
        let (_, ct, vary, body) = get("GET", "/v1/a/c", &[("accept", "application/json")], CONTAINER_LISTING).await;
        assert_eq!((ct.as_str(), vary.as_deref(), body.as_str()), ("application/json; charset=utf-8", Some("Accept"), CONTAINER_LISTING));
        let (_, ct, _, body) = get("GET", "/v1/a/c", &[("accept", "text/xml;q=0.9, image/png")], CONTAINER_LISTING).await;
        assert_eq!(ct, "text/xml; charset=utf-8");
        assert!(body.starts_with("<?xml"));
        // ?format= wins, and the answer does not vary on Accept.
        let (_, ct, vary, _) = get("GET", "/v1/a?format=plain", &[("accept", "application/json")], ACCOUNT_LISTING).await;
        assert_eq!((ct.as_str(), vary), ("text/plain; charset=utf-8", None));
    }

    #[tokio::test]
    async fn an_unacceptable_format_is_refused_before_the_app() {
        let next = Recorder::new(json_answer(StatusCode::OK, "[]"));
        let m = filter(next.clone());
        let resp = m.call(request("GET", "/v1/a/c", &[("accept", "image/png")], "")).await;
        assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
        let resp = m.call(request("HEAD", "/v1/a", &[("accept", "image/png;q=x")], "")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(next.seen().is_empty());
    }

    #[tokio::test]
    async fn empty_listings() {
        let (status, ct, _, body) = get("GET", "/v1/a/c", &[], "[]").await;
        assert_eq!((status, ct.as_str(), body.as_str()), (StatusCode::NO_CONTENT, "text/plain; charset=utf-8", ""));
        let (status, _, _, body) = get("GET", "/v1/a/c?format=json", &[], "[]").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "[]"));
        let (status, _, _, body) = get("GET", "/v1/a?format=xml", &[], "[]").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<account name=\"a\">\n</account>")
        );
        // A 204 with no body is not a listing to render: it passes.
        let next = Recorder::new(json_answer(StatusCode::NO_CONTENT, ""));
        let resp = filter(next).call(request("GET", "/v1/a/c?format=xml", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/json; charset=utf-8");
    }

    #[tokio::test]
    async fn head_gets_the_type_and_no_length() {
        for (uri, accept, ct) in [
            ("/v1/a", "", "text/plain; charset=utf-8"),
            ("/v1/a/c?format=xml", "", "application/xml; charset=utf-8"),
            ("/v1/a/c?format=foo", "application/xml", "text/plain; charset=utf-8"),
            ("/v1/a/c", "application/xml", "application/xml; charset=utf-8"),
        ] {
            let next = Recorder::new(json_answer(StatusCode::NO_CONTENT, ""));
            let headers: &[(&str, &str)] = if accept.is_empty() { &[] } else { &[("accept", accept)] };
            let resp = filter(next.clone()).call(request("HEAD", uri, headers, "")).await;
            assert_eq!(next.seen()[0].method, Method::HEAD);
            assert!(next.seen()[0].uri.ends_with("?format=json"), "{}", next.seen()[0].uri);
            assert_eq!(resp.status(), StatusCode::NO_CONTENT);
            assert_eq!(resp.headers()[CONTENT_TYPE], ct, "{uri}");
            assert_eq!(resp.headers()[CONTENT_LENGTH], "0");
            assert_eq!(resp.headers().contains_key(VARY), !uri.contains("format="));
            assert!(body_of(resp).await.is_empty());
        }
    }

    #[test]
    fn vary_gains_accept_once() {
        let mut hm = HeaderMap::new();
        vary_on_accept(&mut hm);
        assert_eq!(hm[VARY], "Accept");
        vary_on_accept(&mut hm);
        assert_eq!(hm[VARY], "Accept");
        hm.insert(VARY, HeaderValue::from_static("Origin"));
        vary_on_accept(&mut hm);
        assert_eq!(hm[VARY], "Origin, Accept");
    }

    #[tokio::test]
    async fn errors_pass_untouched() {
        let next = Recorder::new(|_| h::text(StatusCode::NOT_FOUND, "Not Found"));
        let resp = filter(next.clone()).call(request("GET", "/v1/a/c?format=xml", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert!(!resp.headers().contains_key(VARY));
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/html; charset=UTF-8");
        assert_eq!(body_of(resp).await, "Not Found");
        assert!(next.seen()[0].uri.ends_with("?format=json"));
    }

    #[tokio::test]
    async fn other_requests_pass_untouched() {
        for (method, uri) in [
            ("GET", "/v1/a/c/o?format=xml"),
            ("GET", "/v1/a/c/o/?format=xml"),
            ("GET", "/v2/a?format=xml"),
            ("GET", "/v1?format=xml"),
            ("GET", "/info?format=xml"),
            ("POST", "/v1/a/c?format=xml"),
            ("PUT", "/v1/a/c?format=xml"),
        ] {
            let next = Recorder::new(json_answer(StatusCode::OK, CONTAINER_LISTING));
            let resp = filter(next.clone()).call(request(method, uri, &[("accept", "image/png")], "")).await;
            let seen = &next.seen()[0];
            assert_eq!((seen.uri.as_str(), seen.headers[ACCEPT].to_str().unwrap()), (uri, "image/png"));
            assert_eq!(resp.headers()[CONTENT_TYPE], "application/json; charset=utf-8", "{method} {uri}");
            assert!(!resp.headers().contains_key(VARY));
            assert_eq!(body_of(resp).await, CONTAINER_LISTING);
        }
    }

    #[tokio::test]
    async fn what_is_not_a_json_listing_passes() {
        for (ct, body) in [
            ("text/plain", "bar\n"),
            ("application/json", "not json"),
            ("application/json", "{}"),
            ("application/json", "[0]"),
            ("application/json", "[{\"no name\": \"nor subdir\"}]"),
        ] {
            let next = Recorder::new(move |_| {
                let mut r = Response::new(h::full(body));
                r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
                r.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
                r
            });
            let resp = filter(next).call(request("GET", "/v1/a/c?format=xml", &[], "")).await;
            assert_eq!((resp.status(), resp.headers()[CONTENT_TYPE].to_str().unwrap()), (StatusCode::OK, ct));
            assert_eq!(body_of(resp).await, body);
        }
    }

    #[test]
    fn the_app_is_asked_for_json() {
        assert_eq!(json_query(None), "format=json");
        assert_eq!(json_query(Some("prefix=a&format=xml&limit=2&%66ormat=plain")), "prefix=a&format=json&limit=2");
        assert_eq!(json_query(Some("prefix=a%26b&formats=x")), "prefix=a%26b&formats=x&format=json");
    }

    #[tokio::test]
    async fn reserved_names_are_hidden_unless_allowed() {
        const RESERVED_LISTING: &str = concat!(
            r#"[{"name": "bar", "count": 0, "bytes": 0, "last_modified": "x"}, "#,
            r#"{"name": "\u0000bar\u0000versions", "count": 0, "bytes": 0, "last_modified": "x"}, {"subdir": "\u0000foo_"}]"#
        );
        let (_, _, _, body) = get("GET", "/v1/a", &[], RESERVED_LISTING).await;
        assert_eq!(body, "bar\n");
        let (_, _, _, body) = get("GET", "/v1/a?format=json", &[], RESERVED_LISTING).await;
        assert_eq!(body, r#"[{"bytes": 0, "count": 0, "last_modified": "x", "name": "bar"}]"#);
        let allow = [(BACKEND_ALLOW_RESERVED_NAMES, "true")];
        let (_, _, _, body) = get("GET", "/v1/a", &allow, RESERVED_LISTING).await;
        assert_eq!(body, "bar\n\0bar\0versions\n\0foo_\n");
        let (_, _, _, body) = get("GET", "/v1/a?format=json", &allow, RESERVED_LISTING).await;
        assert_eq!(body, RESERVED_LISTING);
    }
}
