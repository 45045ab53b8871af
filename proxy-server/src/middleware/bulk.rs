//! `egg:swift#bulk`: many operations in one request, as Swift's `bulk`
//! middleware does them.
//!
//! * `PUT /v1/<account>[/<container>[/<prefix>]]?extract-archive=tar|tar.gz|tar.bz2`
//!   expands the archive in the body: each regular file becomes a `PUT` of
//!   `<upload path>/<name in the archive>` (files that would land outside
//!   a container are skipped), a missing container is created first (at most
//!   `max_containers_per_extraction` of them), and the request's
//!   `X-Object-Meta-*`, `X-Delete-At` and `X-Delete-After` headers, plus the
//!   files' `user.mime_type` and `user.meta.*` xattrs (pax records), go with
//!   each file. The archive streams: a blocking task reads it (decompressing
//!   with `flate2` or `bzip2`) from a bounded channel fed by the request
//!   body, and hands over one file at a time whose bytes stream, through
//!   another bounded channel, into that file's `PUT`.
//! * `POST|DELETE /v1/<account>...?bulk-delete` deletes the objects and
//!   containers listed in the body (one percent-encoded `/<container>[/<object>]`
//!   a line), objects first and then containers, `delete_concurrency` at a
//!   time.
//!
//! Both answer `200 OK` at once and report the real outcome in the body
//! (`Response Status`, `Response Body`, `Errors` and the counts) as text,
//! JSON or XML, picked by `Accept`; while the work goes on they send a
//! space every `yield_frequency` seconds so that neither the client nor a
//! load balancer times out, and then `\r\n\r\n` before the report.

use super::{query_param, subrequest, BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use crate::resume::ChannelBody;
use bytes::Bytes;
use common::config::{ConfigError, Section};
use common::http::{self as h, Body, BoxError};
use common::listing_format::{best_match, push_json_str, xml_text, XML_DECLARATION};
use common::swift_conf::Constraints;
use futures_util::stream::{FuturesUnordered, StreamExt};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use std::cell::Cell;
use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Read};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// `swift.source` of extract-archive's subrequests.
const EXTRACT_SOURCE: &str = "EA";
/// `swift.source` of bulk delete's subrequests.
const DELETE_SOURCE: &str = "BD";

/// The report formats `Accept` may pick, the first being the default.
const ACCEPTABLE_FORMATS: [&str; 4] = ["text/plain", "application/json", "application/xml", "text/xml"];

/// Bytes of an archived file sent to its `PUT` at a time.
const CHUNK: usize = 64 * 1024;

/// The shortest heartbeat period: Swift's `yield_frequency = 0` means
/// "after every item"; a timer that fires without pause would only send
/// spaces.
const MIN_YIELD_FREQUENCY: Duration = Duration::from_millis(10);

/// The filter's options (Swift's names and defaults), and the cluster
/// constraints it applies.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Most containers one extraction may create.
    pub max_containers_per_extraction: u64,
    /// Failed files after which an extraction stops.
    pub max_failed_extractions: usize,
    /// Most names one bulk delete may list.
    pub max_deletes_per_request: usize,
    /// Failed deletes after which a bulk delete stops.
    pub max_failed_deletes: usize,
    /// How often a space is sent while the work goes on.
    pub yield_frequency: Duration,
    /// Deletes in flight at once (1 to 1000).
    pub delete_concurrency: usize,
    /// Times a container delete answered `409 Conflict` is tried again
    /// (after `retry_interval`^n seconds): its objects' deletes may not
    /// have reached the container listing yet.
    pub delete_container_retry_count: u32,
    /// Base of the back-off between those tries, in seconds.
    pub retry_interval: f64,
    /// Longest `<container>/<object>` in bytes (object and container name
    /// limits, plus two slashes).
    pub max_path_length: usize,
    /// Largest file an archive may hold (`max_file_size`).
    pub max_file_size: u64,
}

impl Settings {
    pub fn from_section(section: &Section, constraints: &Constraints) -> Result<Settings, ConfigError> {
        Ok(Settings {
            max_containers_per_extraction: section.get_u64("max_containers_per_extraction", 10000)?,
            max_failed_extractions: section.get_usize("max_failed_extractions", 1000)?,
            max_deletes_per_request: section.get_usize("max_deletes_per_request", 10000)?,
            max_failed_deletes: section.get_usize("max_failed_deletes", 1000)?,
            yield_frequency: Duration::from_secs(section.get_u64("yield_frequency", 10)?),
            delete_concurrency: section.get_usize("delete_concurrency", 2)?.clamp(1, 1000),
            delete_container_retry_count: section.get_u64("delete_container_retry_count", 0)?.try_into().unwrap_or(u32::MAX),
            retry_interval: 1.5,
            max_path_length: (constraints.max_object_name_length + constraints.max_container_name_length + 2) as usize,
            max_file_size: constraints.max_file_size,
        })
    }
}

impl Default for Settings {
    fn default() -> Settings {
        let c = Constraints::default();
        Settings {
            max_containers_per_extraction: 10000,
            max_failed_extractions: 1000,
            max_deletes_per_request: 10000,
            max_failed_deletes: 1000,
            yield_frequency: Duration::from_secs(10),
            delete_concurrency: 2,
            delete_container_retry_count: 0,
            retry_interval: 1.5,
            max_path_length: (c.max_object_name_length + c.max_container_name_length + 2) as usize,
            max_file_size: c.max_file_size,
        }
    }
}

pub struct Bulk {
    next: Next,
    settings: Arc<Settings>,
}

pub fn factory(section: &Section, proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    let settings = Settings::from_section(section, &proxy.swift.constraints).map_err(|e| e.to_string())?;
    register_capabilities(&settings, build);
    Ok(Arc::new(Bulk { next, settings: Arc::new(settings) }))
}

/// `/info`'s `bulk_upload` and `bulk_delete`, as Swift registers them.
fn register_capabilities(settings: &Settings, build: &mut Build) {
    build.capabilities.insert(
        "bulk_upload".into(),
        serde_json::json!({
            "max_containers_per_extraction": settings.max_containers_per_extraction,
            "max_failed_extractions": settings.max_failed_extractions,
        }),
    );
    build.capabilities.insert(
        "bulk_delete".into(),
        serde_json::json!({
            "max_deletes_per_request": settings.max_deletes_per_request,
            "max_failed_deletes": settings.max_failed_deletes,
        }),
    );
}

impl Handler for Bulk {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let query = req.uri().query();
            if query_param(query, "bulk-delete").is_some() && matches!(*req.method(), Method::POST | Method::DELETE) {
                return self.bulk_delete(req).await;
            }
            if req.method() == Method::PUT {
                if let Some(format) = query_param(query, "extract-archive") {
                    return match Compression::from_param(&format) {
                        Some(compression) => self.extract_archive(req, compression).await,
                        None => h::text(StatusCode::BAD_REQUEST, "Unsupported archive format"),
                    };
                }
            }
            self.next.call(req).await
        })
    }
}

/// The archive formats of `?extract-archive=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Bzip2,
}

impl Compression {
    /// `tar`, `tar.gz` or `tar.bz2`, any case, dots around ignored.
    fn from_param(value: &str) -> Option<Compression> {
        match value.to_ascii_lowercase().trim_matches('.') {
            "tar" => Some(Compression::None),
            "tar.gz" => Some(Compression::Gzip),
            "tar.bz2" => Some(Compression::Bzip2),
            _ => None,
        }
    }
}

/// The report format `Accept` asks for; `None` when it allows none of them
/// (or cannot be read), which the report answers with 406.
fn report_format(headers: &HeaderMap) -> Option<&'static str> {
    match headers.get(http::header::ACCEPT) {
        None => Some(ACCEPTABLE_FORMATS[0]),
        Some(v) => best_match(v.to_str().ok()?, &ACCEPTABLE_FORMATS).ok(),
    }
}

/// swob's status line for `code` (its reasons differ from the RFC's in a
/// few places).
fn status_line(code: StatusCode) -> String {
    let reason = match code.as_u16() {
        413 => "Request Entity Too Large",
        414 => "Request URI Too Long",
        416 => "Requested Range Not Satisfiable",
        499 => "Client Disconnect",
        500 => "Internal Error",
        _ => code.canonical_reason().unwrap_or("Unknown"),
    };
    format!("{} {reason}", code.as_u16())
}

/// Python's `urllib.parse.quote` (with `/` safe) of raw bytes, as Swift
/// names failed files: names need not be UTF-8.
fn quote_bytes(name: &[u8]) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b'/');
    percent_encoding::percent_encode(name, SET).to_string()
}

/// `quote_bytes` of at most the first `max` bytes (Swift cuts names this
/// way in its error list).
fn quote_cut(name: &[u8], max: usize) -> String {
    quote_bytes(&name[..name.len().min(max)])
}

/// Whether the request says how long its body is (or that it is chunked).
fn has_length(headers: &HeaderMap) -> bool {
    headers.contains_key(http::header::CONTENT_LENGTH)
        || h::header_str(headers, "transfer-encoding").is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"))
}

/// `(version, account, rest)` of the unquoted request path (Swift's
/// `split_path(2, 3, True)`).
fn split_account_path(raw: &str) -> Option<(String, String, String)> {
    let path = common::path::unquote(raw).ok()?;
    let mut segs = common::path::split_path(&path, 2, 3, true).ok()?.into_iter();
    Some((segs.next()??, segs.next()??, segs.next().flatten().unwrap_or_default()))
}

/// The headers every subrequest carries from the request: its token, and
/// `User-Agent` with `agent` appended (Swift's `%(orig)s <agent>`).
fn subrequest_headers(orig: &HeaderMap, agent: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(token) = orig.get("x-auth-token") {
        headers.insert("x-auth-token", token.clone());
    }
    let ua = orig.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if let Ok(v) = HeaderValue::from_str(&format!("{ua} {agent}")) {
        headers.insert(http::header::USER_AGENT, v);
    }
    headers
}

/// What a bulk operation reports in its body.
#[derive(Debug, Clone, PartialEq)]
struct Report {
    status: StatusCode,
    body: String,
    /// The counts, in the order Swift's JSON has them.
    counts: Vec<(&'static str, u64)>,
    /// `(quoted name, status line)` of each failure.
    errors: Vec<(String, String)>,
}

impl Report {
    fn new(status: StatusCode, counts: &[&'static str]) -> Report {
        Report { status, body: String::new(), counts: counts.iter().map(|c| (*c, 0)).collect(), errors: Vec::new() }
    }

    fn count(&mut self, name: &str) {
        if let Some((_, n)) = self.counts.iter_mut().find(|(k, _)| *k == name) {
            *n += 1;
        }
    }

    fn get(&self, name: &str) -> u64 {
        self.counts.iter().find(|(k, _)| *k == name).map_or(0, |(_, n)| *n)
    }

    fn fail(mut self, status: StatusCode, body: impl Into<String>) -> Report {
        self.status = status;
        self.body = body.into();
        self
    }

    /// Swift's `get_heartbeat_response_body`: JSON in Swift's key order,
    /// or text or XML with the keys sorted (XML without its declaration,
    /// which only a heartbeat sends).
    fn render(&self, format: Option<&str>, root: &str) -> String {
        let status = status_line(self.status);
        let mut out = String::new();
        if format == Some("application/json") {
            out.push_str("{\"Response Status\": ");
            push_json_str(&mut out, &status);
            out.push_str(", \"Response Body\": ");
            push_json_str(&mut out, &self.body);
            for (k, v) in &self.counts {
                out.push_str(&format!(", \"{k}\": {v}"));
            }
            out.push_str(", \"Errors\": [");
            for (i, (name, status)) in self.errors.iter().enumerate() {
                out.push_str(if i == 0 { "[" } else { ", [" });
                push_json_str(&mut out, name);
                out.push_str(", ");
                push_json_str(&mut out, status);
                out.push(']');
            }
            out.push_str("]}");
            return out;
        }
        let mut fields: Vec<(&str, String)> = self.counts.iter().map(|(k, v)| (*k, v.to_string())).collect();
        fields.push(("Response Body", self.body.clone()));
        fields.push(("Response Status", status));
        fields.sort();
        if format.is_some_and(|f| f.ends_with("/xml")) {
            out.push_str(&format!("<{root}>\n"));
            for (k, v) in fields {
                let tag = k.replace(' ', "_").to_lowercase();
                out.push_str(&format!("<{tag}>{}</{tag}>\n", xml_text(&v)));
            }
            out.push_str("<errors>\n");
            for (name, status) in &self.errors {
                out.push_str(&format!("<object><name>{}</name><status>{}</status></object>\n", xml_text(name), xml_text(status)));
            }
            out.push_str(&format!("</errors>\n</{root}>\n"));
            return out;
        }
        for (k, v) in fields {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push_str("Errors:\n");
        for (name, status) in &self.errors {
            out.push_str(&format!("{name}, {status}\n"));
        }
        out
    }
}

/// The `200 OK` a bulk operation answers with at once: its body is a space
/// (the XML declaration first, for XML) every `every` while `work` runs,
/// then `\r\n\r\n` if anything was sent, then the report. The work stops
/// when the client goes away.
fn heartbeat_response(
    format: Option<&'static str>,
    root: &'static str,
    every: Duration,
    work: impl Future<Output = Report> + Send + 'static,
) -> Response<Body> {
    let (tx, body) = ChannelBody::channel();
    let every = every.max(MIN_YIELD_FREQUENCY);
    tokio::spawn(async move {
        let mut work = std::pin::pin!(work);
        let mut beat = Bytes::from_static(if format.is_some_and(|f| f.ends_with("/xml")) { XML_DECLARATION.as_bytes() } else { b" " });
        let mut separator = "";
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        // A client slow to read gets one space per period, not a burst.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let report = loop {
            tokio::select! {
                report = &mut work => break report,
                _ = ticks.tick() => {
                    if tx.send(Ok(beat.clone())).await.is_err() {
                        return;
                    }
                    beat = Bytes::from_static(b" ");
                    separator = "\r\n\r\n";
                }
            }
        };
        let _ = tx.send(Ok(Bytes::from(format!("{separator}{}", report.render(format, root))))).await;
    });
    let mut resp = Response::new(body.boxed());
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static(format.unwrap_or("text/html; charset=UTF-8")));
    resp
}

/// The request's context for subrequests (its headers and extensions),
/// shareable between tasks.
fn context_of(parts: &Parts) -> Arc<Parts> {
    let mut base = Request::new(()).into_parts().0;
    base.method = parts.method.clone();
    base.uri = parts.uri.clone();
    base.headers = parts.headers.clone();
    base.extensions = parts.extensions.clone();
    Arc::new(base)
}

// ---------------------------------------------------------------------------
// Extract archive

/// One regular file of the archive, handed from the reading task: its name
/// as stored, its size, the headers its pax records give, and its bytes.
struct Member {
    name: Vec<u8>,
    size: u64,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: ChannelBody,
}

/// The extraction of one archive: what it has done so far.
struct Extraction {
    next: Next,
    settings: Arc<Settings>,
    parts: Arc<Parts>,
    version: String,
    account: String,
    /// Where files go: `<container>[/<prefix>]`, or empty for the account.
    base: String,
    report: Report,
    containers_accessed: HashSet<String>,
    containers_created: u64,
    /// `400 Bad Request`, or `502 Bad Gateway` once a file failed with 5xx.
    failed_status: StatusCode,
}

/// Why an extraction or a delete stopped early: the report's status and body.
type Abort = (StatusCode, String);

impl Bulk {
    async fn extract_archive(&self, req: Request<Body>, compression: Compression) -> Response<Body> {
        let format = report_format(req.headers());
        let (parts, mut body) = req.into_parts();
        // Read the first bytes before answering: a client that waits for
        // `100 Continue` sends its archive only once asked for it.
        let first = body.frame().await;
        let mut report = Report::new(StatusCode::CREATED, &["Number Files Created"]);
        let start = (|| {
            if format.is_none() {
                return Err((StatusCode::NOT_ACCEPTABLE, String::new()));
            }
            if !has_length(&parts.headers) {
                return Err((StatusCode::LENGTH_REQUIRED, String::new()));
            }
            split_account_path(parts.uri.path()).ok_or((StatusCode::NOT_FOUND, String::new()))
        })();
        let work = match start {
            Err((status, body)) => {
                report = report.fail(status, body);
                futures_util::future::Either::Left(async move { report })
            }
            Ok((version, account, base)) => {
                let extraction = Extraction {
                    next: self.next.clone(),
                    settings: self.settings.clone(),
                    parts: context_of(&parts),
                    version,
                    account,
                    base: base.trim_end_matches('/').to_string(),
                    report,
                    containers_accessed: HashSet::new(),
                    containers_created: 0,
                    failed_status: StatusCode::BAD_REQUEST,
                };
                futures_util::future::Either::Right(extraction.run(first, body, compression))
            }
        };
        heartbeat_response(format, "extract", self.settings.yield_frequency, work)
    }
}

impl Extraction {
    async fn run(mut self, first: Option<Result<http_body::Frame<Bytes>, BoxError>>, body: Body, compression: Compression) -> Report {
        let (chunk_tx, chunk_rx) = mpsc::channel(4);
        let (member_tx, mut members) = mpsc::channel(1);
        tokio::task::spawn_blocking(move || read_archive(chunk_rx, compression, member_tx));
        let pump = async move {
            pump_body(first, body, chunk_tx).await;
            std::future::pending::<Infallible>().await
        };
        let outcome = tokio::select! {
            outcome = self.put_members(&mut members) => outcome,
            never = pump => match never {},
        };
        match outcome {
            Err((status, body)) => self.report.fail(status, body),
            Ok(()) if !self.report.errors.is_empty() => {
                let status = self.failed_status;
                self.report.fail(status, "")
            }
            Ok(()) if self.report.get("Number Files Created") == 0 => {
                self.report.fail(StatusCode::BAD_REQUEST, "Invalid Tar File: No Valid Files")
            }
            Ok(()) => self.report,
        }
    }

    /// Uploads the archive's files one after the other, until the archive
    /// ends or too many failed.
    async fn put_members(&mut self, members: &mut mpsc::Receiver<Result<Member, String>>) -> Result<(), Abort> {
        while let Some(member) = members.recv().await {
            let member = member.map_err(|e| (StatusCode::BAD_REQUEST, format!("Invalid Tar File: {e}")))?;
            if self.report.errors.len() >= self.settings.max_failed_extractions {
                break;
            }
            self.put_member(member).await?;
        }
        Ok(())
    }

    async fn put_member(&mut self, member: Member) -> Result<(), Abort> {
        let max = self.settings.max_path_length;
        let mut name: &[u8] = &member.name;
        if let Some(rest) = name.strip_prefix(b"./") {
            name = rest;
        }
        while let Some(rest) = name.strip_prefix(b"/") {
            name = rest;
        }
        let obj_path = if self.base.is_empty() { name.to_vec() } else { [self.base.as_bytes(), b"/", name].concat() };
        if !obj_path.contains(&b'/') {
            // Outside any container.
            return Ok(());
        }
        let Some(obj_name) = std::str::from_utf8(&obj_path).ok().filter(|s| !s.contains('\0')) else {
            self.report.errors.push((quote_cut(&obj_path, max), status_line(StatusCode::PRECONDITION_FAILED)));
            return Ok(());
        };
        if member.size > self.settings.max_file_size {
            self.report.errors.push((quote_cut(&obj_path, max), status_line(StatusCode::PAYLOAD_TOO_LARGE)));
            return Ok(());
        }
        let container = obj_name.split('/').next().unwrap_or_default().to_string();
        let mut container_failure = None;
        if !self.containers_accessed.contains(&container) {
            let cont_path = format!("/{}/{}/{container}", self.version, self.account);
            match self.create_container(&cont_path).await {
                Ok(true) => {
                    self.containers_created += 1;
                    if self.containers_created > self.settings.max_containers_per_extraction {
                        return Err((
                            StatusCode::BAD_REQUEST,
                            format!("More than {} containers to create from tar.", self.settings.max_containers_per_extraction),
                        ));
                    }
                }
                Ok(false) => {}
                Err(status) => {
                    // The object's PUT may still succeed (an ACL may let
                    // the caller write where it may not create).
                    if status == StatusCode::UNAUTHORIZED {
                        return Err((StatusCode::UNAUTHORIZED, String::new()));
                    }
                    container_failure = Some((quote_cut(cont_path.as_bytes(), max), status_line(status)));
                }
            }
        }

        let mut headers = subrequest_headers(&self.parts.headers, "BulkExpand");
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(member.size));
        for (k, v) in &self.parts.headers {
            let k = k.as_str();
            if k == "x-delete-at" || k == "x-delete-after" || k.strip_prefix("x-object-meta-").is_some_and(|m| !m.is_empty()) {
                headers.append(k.parse::<HeaderName>().expect("a header name"), v.clone());
            }
        }
        for (k, v) in member.headers {
            headers.insert(k, v);
        }
        let destination = format!("/{}/{}/{obj_name}", self.version, self.account);
        let status = match subrequest(&self.parts, Method::PUT, &h::quote_path(&destination), headers, member.body.boxed(), EXTRACT_SOURCE)
        {
            Ok(put) => self.next.call(put).await.status(),
            Err(_) => StatusCode::BAD_REQUEST,
        };
        self.containers_accessed.insert(container);
        if status.is_success() {
            self.report.count("Number Files Created");
            return Ok(());
        }
        if let Some(failure) = container_failure {
            self.report.errors.push(failure);
        }
        if status == StatusCode::UNAUTHORIZED {
            self.report.errors.push((quote_cut(&obj_path, max), status_line(status)));
            return Err((StatusCode::UNAUTHORIZED, String::new()));
        }
        if status.is_server_error() {
            self.failed_status = StatusCode::BAD_GATEWAY;
        }
        self.report.errors.push((quote_cut(&obj_path, max), status_line(status)));
        Ok(())
    }

    /// Swift's `create_container`: `HEAD`, and `PUT` if it is missing.
    /// `Ok(true)` when created, `Ok(false)` when it was there; the failing
    /// status otherwise.
    async fn create_container(&self, cont_path: &str) -> Result<bool, StatusCode> {
        let quoted = h::quote_path(cont_path);
        let headers = subrequest_headers(&self.parts.headers, "BulkExpand");
        let head = subrequest(&self.parts, Method::HEAD, &quoted, headers.clone(), h::empty(), EXTRACT_SOURCE).map_err(|r| r.status())?;
        let resp = self.next.call(head).await;
        if resp.status().is_success() {
            return Ok(false);
        }
        if resp.status() != StatusCode::NOT_FOUND {
            return Err(resp.status());
        }
        let mut headers = headers;
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
        let put = subrequest(&self.parts, Method::PUT, &quoted, headers, h::empty(), EXTRACT_SOURCE).map_err(|r| r.status())?;
        let status = self.next.call(put).await.status();
        if status.is_success() {
            Ok(true)
        } else {
            Err(status)
        }
    }
}

/// Feeds the request body into the archive reader's channel; a broken
/// body ends it with an error.
async fn pump_body(first: Option<Result<http_body::Frame<Bytes>, BoxError>>, mut body: Body, tx: mpsc::Sender<io::Result<Bytes>>) {
    let mut frame = first;
    loop {
        match frame {
            None => return,
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    if !data.is_empty() && tx.send(Ok(data)).await.is_err() {
                        return;
                    }
                }
            }
            Some(Err(e)) => {
                let _ = tx.send(Err(io::Error::other(format!("error reading the request body: {e}")))).await;
                return;
            }
        }
        frame = body.frame().await;
    }
}

/// Which layer of the stream failed, to name the error as Python's
/// `tarfile` does.
#[derive(Default)]
struct Failures {
    input: Cell<bool>,
    decompression: Cell<bool>,
}

/// The request body as a blocking `Read`, chunk by chunk from the pump.
struct ChunkReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    buf: Bytes,
    failures: Rc<Failures>,
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => {
                    self.failures.input.set(true);
                    return Err(e);
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// A decompressor whose errors are remembered as such (unless its input
/// failed).
struct Decompressed<R> {
    inner: R,
    failures: Rc<Failures>,
}

impl<R: Read> Read for Decompressed<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.inner.read(out).inspect_err(|_| {
            if !self.failures.input.get() {
                self.failures.decompression.set(true);
            }
        })
    }
}

/// Reads the archive from the body chunks (on a blocking thread), sending
/// each regular file to `members` and its bytes into the file's body; ends
/// with an `Err` naming what was wrong with the archive, if anything.
fn read_archive(chunks: mpsc::Receiver<io::Result<Bytes>>, compression: Compression, members: mpsc::Sender<Result<Member, String>>) {
    let failures = Rc::new(Failures::default());
    let mut input = ChunkReader { rx: chunks, buf: Bytes::new(), failures: failures.clone() };
    let reader: Box<dyn Read> = match compression {
        Compression::None => Box::new(input),
        Compression::Gzip => {
            // Python's tarfile checks the magic number itself.
            let mut magic = [0u8; 2];
            let got = match read_up_to(&mut input, &mut magic) {
                Ok(n) => n,
                Err(e) => {
                    let _ = members.blocking_send(Err(e.to_string()));
                    return;
                }
            };
            if magic[..got] != [0x1f, 0x8b] {
                let _ = members.blocking_send(Err("not a gzip file".into()));
                return;
            }
            let inner = flate2::read::MultiGzDecoder::new(io::Cursor::new(magic).chain(input));
            Box::new(Decompressed { inner, failures: failures.clone() })
        }
        Compression::Bzip2 => {
            let inner = bzip2::read::MultiBzDecoder::new(input);
            Box::new(Decompressed { inner, failures: failures.clone() })
        }
    };
    if let Err(e) = send_members(reader, &members) {
        let message = if failures.decompression.get() { "invalid compressed data".to_string() } else { e.to_string() };
        let _ = members.blocking_send(Err(message));
    }
}

/// Fills `buf` as far as the stream allows; the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The archive's regular files, one at a time: each is sent to `members`
/// and its bytes written into its body while the receiver reads them. A
/// body dropped unread (the file was skipped or refused) is skipped here.
fn send_members(reader: Box<dyn Read>, members: &mpsc::Sender<Result<Member, String>>) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    let mut started = false;
    for entry in archive.entries()? {
        let mut entry = match entry {
            Ok(e) => e,
            // Python's tarfile says so of a first block that is no tar
            // header.
            Err(_) if !started => return Err(io::Error::other("invalid header")),
            Err(e) => return Err(e),
        };
        started = true;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse()) {
            continue;
        }
        let name = entry.path_bytes().into_owned();
        let size = entry.size();
        let headers = pax_headers(&mut entry);
        let (tx, body) = ChannelBody::channel();
        if members.blocking_send(Ok(Member { name, size, headers, body })).is_err() {
            return Ok(()); // the extraction stopped
        }
        let mut buf = vec![0u8; CHUNK];
        let mut sent = 0u64;
        loop {
            let n = match entry.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e.to_string().into()));
                    return Err(e);
                }
            };
            if n == 0 {
                break;
            }
            sent += n as u64;
            if tx.blocking_send(Ok(Bytes::copy_from_slice(&buf[..n]))).is_err() {
                break; // not wanted: the archive reader skips the rest
            }
        }
        if sent < size && !tx.is_closed() {
            let _ = tx.blocking_send(Err("unexpected end of data".into()));
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected end of data"));
        }
    }
    Ok(())
}

/// The object headers a file's pax records give: `user.mime_type` becomes
/// `Content-Type`, `user.meta.<name>` becomes `X-Object-Meta-<name>`, as
/// GNU tar (`SCHILY.xattr.`) and BSD tar (`LIBARCHIVE.xattr.`) store them.
fn pax_headers<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    let Ok(Some(extensions)) = entry.pax_extensions() else { return out };
    for ext in extensions.flatten() {
        let Ok(key) = ext.key() else { continue };
        let name = if key == "SCHILY.xattr.user.mime_type" || key == "LIBARCHIVE.xattr.user.mime_type" {
            "content-type".to_string()
        } else if let Some(meta) = key.strip_prefix("SCHILY.xattr.user.meta.").or_else(|| key.strip_prefix("LIBARCHIVE.xattr.user.meta.")) {
            format!("x-object-meta-{meta}")
        } else {
            continue;
        };
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(ext.value_bytes())) {
            out.push((n, v));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Bulk delete

impl Bulk {
    async fn bulk_delete(&self, req: Request<Body>) -> Response<Body> {
        let format = report_format(req.headers());
        let (parts, body) = req.into_parts();
        // As Swift does, the whole list is read before the answer starts.
        let listed = self.names_to_delete(&parts, body, format).await;
        let report = Report::new(StatusCode::OK, &["Number Deleted", "Number Not Found"]);
        let work = match listed {
            Err((status, body)) => futures_util::future::Either::Left(std::future::ready(report.fail(status, body))),
            Ok((version, account, names)) => futures_util::future::Either::Right(delete_all(
                self.next.clone(),
                self.settings.clone(),
                context_of(&parts),
                version,
                account,
                names,
                report,
            )),
        };
        heartbeat_response(format, "delete", self.settings.yield_frequency, work)
    }

    /// The version, the account and the names (unquoted, as bytes) listed
    /// in the body, or why the request is refused.
    async fn names_to_delete(&self, parts: &Parts, mut body: Body, format: Option<&str>) -> Result<(String, String, Vec<Vec<u8>>), Abort> {
        if format.is_none() {
            return Err((StatusCode::NOT_ACCEPTABLE, String::new()));
        }
        let (version, account, _) = split_account_path(parts.uri.path()).ok_or((StatusCode::NOT_FOUND, String::new()))?;
        if h::header_str(&parts.headers, "content-type").is_some_and(|ct| !ct.starts_with("text/plain")) {
            // Only newline-separated names are understood.
            return Err((StatusCode::NOT_ACCEPTABLE, String::new()));
        }
        if !has_length(&parts.headers) {
            return Err((StatusCode::LENGTH_REQUIRED, String::new()));
        }
        let max_line = self.settings.max_path_length * 2;
        let too_many =
            || (StatusCode::PAYLOAD_TOO_LARGE, format!("Maximum Bulk Deletes: {} per request", self.settings.max_deletes_per_request));
        let bad_name = || (StatusCode::BAD_REQUEST, "Invalid File Name".to_string());
        let mut names = Vec::new();
        let mut line: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| (StatusCode::INTERNAL_SERVER_ERROR, String::new()))?;
            let Ok(data) = frame.into_data() else { continue };
            line.extend_from_slice(&data);
            while let Some(at) = line.iter().position(|b| *b == b'\n') {
                if at > max_line {
                    return Err(bad_name());
                }
                let rest = line.split_off(at + 1);
                names.push(unquote_line(&line));
                line = rest;
                if names.len() > self.settings.max_deletes_per_request {
                    return Err(too_many());
                }
            }
            if line.len() > max_line {
                return Err(bad_name());
            }
        }
        let last = unquote_line(&line);
        if !last.is_empty() {
            names.push(last);
            if names.len() > self.settings.max_deletes_per_request {
                return Err(too_many());
            }
        }
        Ok((version, account, names))
    }
}

/// One line of a bulk delete's body: whitespace around it removed, then
/// percent-decoded (`+` is a plus).
fn unquote_line(line: &[u8]) -> Vec<u8> {
    percent_encoding::percent_decode(line.trim_ascii()).collect()
}

/// Deletes the objects listed and then the containers, reporting each.
async fn delete_all(
    next: Next,
    settings: Arc<Settings>,
    parts: Arc<Parts>,
    version: String,
    account: String,
    names: Vec<Vec<u8>>,
    mut report: Report,
) -> Report {
    let mut failed_status = StatusCode::BAD_REQUEST;
    let listed: Vec<&Vec<u8>> = names.iter().filter(|n| !n.is_empty()).collect();
    let is_object = |n: &[u8]| {
        let mut trimmed = n;
        while let Some(rest) = trimmed.strip_prefix(b"/") {
            trimmed = rest;
        }
        while let Some(rest) = trimmed.strip_suffix(b"/") {
            trimmed = rest;
        }
        trimmed.contains(&b'/')
    };
    // Objects first, so that their containers may be empty by their turn.
    let objects = listed.iter().copied().filter(|n| is_object(n));
    let containers = listed.iter().copied().filter(|n| !is_object(n));
    let phases: [Box<dyn Iterator<Item = &Vec<u8>> + Send + '_>; 2] = [Box::new(objects), Box::new(containers)];
    for phase in phases {
        let mut todo = phase;
        let mut in_flight = FuturesUnordered::new();
        loop {
            while in_flight.len() < settings.delete_concurrency {
                let Some(name) = todo.next() else { break };
                let mut trimmed: &[u8] = name;
                while let Some(rest) = trimmed.strip_prefix(b"/") {
                    trimmed = rest;
                }
                let path = [format!("/{version}/{account}/").as_bytes(), trimmed].concat();
                match String::from_utf8(path).ok().filter(|p| !p.contains('\0')) {
                    Some(path) => in_flight.push(delete_one(next.clone(), settings.clone(), parts.clone(), path, name)),
                    None => report.errors.push((quote_bytes(name), status_line(StatusCode::PRECONDITION_FAILED))),
                }
            }
            let Some((name, status)) = in_flight.next().await else { break };
            record_delete(&mut report, &mut failed_status, name, status);
            if report.errors.len() >= settings.max_failed_deletes {
                // Stop, but hear out the deletes already sent.
                while let Some((name, status)) = in_flight.next().await {
                    record_delete(&mut report, &mut failed_status, name, status);
                }
                return report.fail(StatusCode::BAD_REQUEST, "Max delete failures exceeded");
            }
        }
    }
    if !report.errors.is_empty() {
        return report.fail(failed_status, "");
    }
    if report.get("Number Deleted") + report.get("Number Not Found") == 0 {
        return report.fail(StatusCode::BAD_REQUEST, "Invalid bulk delete.");
    }
    report
}

/// One `DELETE`, tried again on `409 Conflict` as configured.
async fn delete_one(next: Next, settings: Arc<Settings>, parts: Arc<Parts>, path: String, name: &[u8]) -> (&[u8], StatusCode) {
    let mut headers = subrequest_headers(&parts.headers, "BulkDelete");
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
    let quoted = h::quote_path(&path);
    let mut retry = 0;
    loop {
        let status = match subrequest(&parts, Method::DELETE, &quoted, headers.clone(), h::empty(), DELETE_SOURCE) {
            Ok(req) => next.call(req).await.status(),
            Err(resp) => resp.status(),
        };
        if status == StatusCode::CONFLICT && retry < settings.delete_container_retry_count {
            retry += 1;
            tokio::time::sleep(Duration::from_secs_f64(settings.retry_interval.powi(retry as i32))).await;
            continue;
        }
        return (name, status);
    }
}

/// Swift's `_process_delete`, without the retry (done by `delete_one`).
fn record_delete(report: &mut Report, failed_status: &mut StatusCode, name: &[u8], status: StatusCode) {
    if status.is_success() {
        report.count("Number Deleted");
    } else if status == StatusCode::NOT_FOUND {
        report.count("Number Not Found");
    } else {
        if status.is_server_error() {
            *failed_status = StatusCode::BAD_GATEWAY;
        }
        report.errors.push((quote_bytes(name), status_line(status)));
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, request, Recorder, Seen};
    use super::*;
    use std::io::Write;

    /// A tar of regular files (name, bytes), plus whatever `extra` adds.
    fn tar_with(files: &[(&str, &[u8])], extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut hdr = tar::Header::new_gnu();
            hdr.set_size(data.len() as u64);
            hdr.set_mode(0o644);
            b.append_data(&mut hdr, name, *data).unwrap();
        }
        extra(&mut b);
        b.into_inner().unwrap()
    }

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        tar_with(files, |_| {})
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn bzip(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// A proxy where container `c1` is missing (and can be created),
    /// `c2` and `cont` exist, and object writes succeed.
    fn app() -> Arc<Recorder> {
        Recorder::new(|seen: &Seen| match (seen.method.as_str(), seen.uri.as_str()) {
            ("HEAD", "/v1/a/c1") => h::status(StatusCode::NOT_FOUND),
            ("HEAD", _) => h::status(StatusCode::NO_CONTENT),
            ("PUT", _) => h::status(StatusCode::CREATED),
            _ => h::status(StatusCode::METHOD_NOT_ALLOWED),
        })
    }

    fn bulk(next: Arc<Recorder>, settings: Settings) -> Bulk {
        Bulk { next, settings: Arc::new(settings) }
    }

    async fn put_archive(m: &Bulk, uri: &str, accept: &str, archive: Vec<u8>) -> (Response<Body>, String) {
        let len = archive.len().to_string();
        let headers = [("accept", accept), ("content-length", len.as_str()), ("x-auth-token", "AUTH_tk"), ("x-object-meta-color", "blue")];
        let mut resp = m.call(request("PUT", uri, &headers, archive)).await;
        let body = resp.body_mut().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        (resp, String::from_utf8(body.to_vec()).unwrap())
    }

    fn json(body: &str) -> serde_json::Value {
        serde_json::from_str(body.trim_start()).unwrap()
    }

    fn puts(seen: &[Seen]) -> Vec<(String, Bytes)> {
        seen.iter().filter(|s| s.method == Method::PUT).map(|s| (s.uri.clone(), s.body.clone())).collect()
    }

    #[tokio::test]
    async fn a_tar_lands_in_two_containers_creating_the_missing_one() {
        let archive = tar_with(&[("c1/a.txt", b"alpha"), ("c1/b.txt", b"bravo"), ("c2/d/e.txt", b"echo"), ("top.txt", b"ignored")], |b| {
            let mut dir = tar::Header::new_gnu();
            dir.set_entry_type(tar::EntryType::Directory);
            dir.set_size(0);
            b.append_data(&mut dir, "c2/empty/", io::empty()).unwrap();
            let mut link = tar::Header::new_gnu();
            link.set_entry_type(tar::EntryType::Symlink);
            link.set_size(0);
            b.append_link(&mut link, "c2/link", "d/e.txt").unwrap();
        });
        let next = app();
        let m = bulk(next.clone(), Settings::default());
        let (resp, body) = put_archive(&m, "/v1/a?extract-archive=tar", "application/json", archive).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(body, r#"{"Response Status": "201 Created", "Response Body": "", "Number Files Created": 3, "Errors": []}"#);
        let seen = next.seen();
        let calls: Vec<(&str, &str)> = seen.iter().map(|s| (s.method.as_str(), s.uri.as_str())).collect();
        assert_eq!(
            calls,
            [
                ("HEAD", "/v1/a/c1"),
                ("PUT", "/v1/a/c1"),
                ("PUT", "/v1/a/c1/a.txt"),
                ("PUT", "/v1/a/c1/b.txt"),
                ("HEAD", "/v1/a/c2"),
                ("PUT", "/v1/a/c2/d/e.txt"),
            ]
        );
        let put = &seen[2];
        assert_eq!(put.body, "alpha");
        assert_eq!(put.headers["content-length"], "5");
        assert_eq!(put.headers["x-auth-token"], "AUTH_tk");
        assert_eq!(put.headers["x-object-meta-color"], "blue");
        assert_eq!(put.source, Some("EA"));
        assert!(!put.uri.contains('?'));
        assert!(seen.iter().all(|s| s.headers["x-auth-token"] == "AUTH_tk"));
    }

    #[tokio::test]
    async fn compressed_archives_under_a_prefix_with_xattrs() {
        let big = vec![7u8; 3 * CHUNK + 11];
        let archive = tar_with(&[("x/1", b"one"), ("2", &big)], |b| {
            b.append_pax_extensions([
                ("SCHILY.xattr.user.mime_type", &b"application/food-diary"[..]),
                ("SCHILY.xattr.user.meta.lunch", &b"burger"[..]),
                ("LIBARCHIVE.xattr.user.meta.dinner", &b"ziti"[..]),
                ("SCHILY.xattr.user.stuff", &b"whee"[..]),
            ])
            .unwrap();
            let mut hdr = tar::Header::new_ustar();
            hdr.set_size(4);
            hdr.set_mode(0o644);
            // A name as `tar -C dir .` writes it.
            hdr.as_old_mut().name[..7].copy_from_slice(b"./x/3.z");
            hdr.set_cksum();
            b.append(&hdr, &b"meta"[..]).unwrap();
        });
        for (format, packed) in [("tar.gz", gzip(&archive)), ("TAR.BZ2", bzip(&archive))] {
            let next = app();
            let m = bulk(next.clone(), Settings::default());
            let (_, body) = put_archive(&m, &format!("/v1/a/cont/dir/?extract-archive={format}"), "application/json", packed).await;
            assert_eq!(json(&body)["Number Files Created"], 3, "{format}: {body}");
            let seen = next.seen();
            assert_eq!((seen[0].method.as_str(), seen[0].uri.as_str()), ("HEAD", "/v1/a/cont"));
            assert_eq!(
                puts(&seen),
                [
                    ("/v1/a/cont/dir/x/1".to_string(), Bytes::from_static(b"one")),
                    ("/v1/a/cont/dir/2".to_string(), Bytes::from(big.clone())),
                    ("/v1/a/cont/dir/x/3.z".to_string(), Bytes::from_static(b"meta")),
                ]
            );
            let meta = &seen[3].headers;
            assert_eq!(meta["content-type"], "application/food-diary");
            assert_eq!(meta["x-object-meta-lunch"], "burger");
            assert_eq!(meta["x-object-meta-dinner"], "ziti");
            assert_eq!(meta["x-object-meta-color"], "blue");
            assert!(!meta.contains_key("x-object-meta-stuff"));
        }
    }

    #[tokio::test]
    async fn bad_archives_are_reported() {
        let garbage = vec![b'x'; 2000];
        let mut truncated = tar_of(&[("c2/whole", b"fine"), ("c2/cut", &[1u8; 5000])]);
        truncated.truncate(512 * 3 + 100);
        let cases: [(&str, Vec<u8>, &str); 5] = [
            ("tar", garbage.clone(), "Invalid Tar File: invalid header"),
            ("tar.gz", garbage.clone(), "Invalid Tar File: not a gzip file"),
            ("tar.bz2", garbage.clone(), "Invalid Tar File: invalid compressed data"),
            ("tar", truncated, "Invalid Tar File: unexpected end of data"),
            ("tar", tar_of(&[("base-level-only", b"x")]), "Invalid Tar File: No Valid Files"),
        ];
        for (format, archive, expected) in cases {
            let m = bulk(app(), Settings::default());
            let (resp, body) = put_archive(&m, &format!("/v1/a?extract-archive={format}"), "application/json", archive).await;
            assert_eq!(resp.status(), StatusCode::OK);
            let report = json(&body);
            assert_eq!(report["Response Status"], "400 Bad Request", "{format}: {body}");
            assert_eq!(report["Response Body"], expected);
        }
        // An unknown format is refused outright; other requests pass on.
        let next = app();
        let m = bulk(next.clone(), Settings::default());
        let resp = m.call(request("PUT", "/v1/a/c?extract-archive=zip", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(resp).await, "Unsupported archive format");
        let resp = m.call(request("PUT", "/v1/a/c/o?bulk-delete", &[], "x")).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        assert_eq!(next.seen().len(), 1);
        // No length: 411 in the report.
        let resp = m.call(request("PUT", "/v1/a?extract-archive=tar", &[], "")).await;
        assert!(String::from_utf8_lossy(&body_of(resp).await).contains("Response Status: 411 Length Required\n"));
    }

    #[tokio::test]
    async fn extraction_limits() {
        let archive = tar_of(&[("c1/a", b"1"), ("c3/b", b"2")]);
        // Both containers are missing: the second is one too many.
        let next2 = Recorder::new(|seen: &Seen| match seen.method.as_str() {
            "HEAD" => h::status(StatusCode::NOT_FOUND),
            _ => h::status(StatusCode::CREATED),
        });
        let m2 = bulk(next2.clone(), Settings { max_containers_per_extraction: 1, ..Settings::default() });
        let (_, body) = put_archive(&m2, "/v1/a?extract-archive=tar", "application/json", archive.clone()).await;
        let report = json(&body);
        assert_eq!(report["Response Status"], "400 Bad Request");
        assert_eq!(report["Response Body"], "More than 1 containers to create from tar.");
        assert_eq!(report["Number Files Created"], 1);
        assert_eq!(puts(&next2.seen()).len(), 3);

        // Failing writes stop the extraction after max_failed_extractions,
        // and a 5xx makes the report's status 502.
        let failing = Recorder::new(|seen: &Seen| match seen.method.as_str() {
            "HEAD" => h::status(StatusCode::NO_CONTENT),
            _ => h::status(StatusCode::SERVICE_UNAVAILABLE),
        });
        let m = bulk(failing.clone(), Settings { max_failed_extractions: 1, ..Settings::default() });
        let (_, body) = put_archive(&m, "/v1/a/c2?extract-archive=tar", "application/json", archive).await;
        assert_eq!(
            body,
            r#"{"Response Status": "502 Bad Gateway", "Response Body": "", "Number Files Created": 0, "Errors": [["c2/c1/a", "503 Service Unavailable"]]}"#
        );
        assert_eq!(puts(&failing.seen()).len(), 1);

        // Too large a file is not sent.
        let next = app();
        let m = bulk(next.clone(), Settings { max_file_size: 3, ..Settings::default() });
        let (_, body) = put_archive(&m, "/v1/a?extract-archive=tar", "text/plain", tar_of(&[("c2/big", b"four"), ("c2/ok", b"ok")])).await;
        assert_eq!(
            body,
            "Number Files Created: 1\nResponse Body: \nResponse Status: 400 Bad Request\nErrors:\nc2/big, 413 Request Entity Too Large\n"
        );
        assert_eq!(puts(&next.seen()).len(), 1);
    }

    #[tokio::test]
    async fn unauthorized_stops_the_extraction() {
        let next = Recorder::new(|_: &Seen| h::status(StatusCode::UNAUTHORIZED));
        let m = bulk(next.clone(), Settings::default());
        let (_, body) = put_archive(&m, "/v1/a?extract-archive=tar", "application/json", tar_of(&[("c/a", b"1"), ("c/b", b"2")])).await;
        let report = json(&body);
        assert_eq!(report["Response Status"], "401 Unauthorized");
        assert_eq!(report["Errors"], serde_json::json!([]));
        assert_eq!(next.seen().len(), 1);
    }

    /// A proxy holding `/v1/a/c/found` and a full container `c`, with
    /// `c/err` failing.
    fn delete_app() -> Arc<Recorder> {
        Recorder::new(|seen: &Seen| match (seen.method.as_str(), seen.uri.as_str()) {
            ("DELETE", "/v1/a/c/found") | ("DELETE", "/v1/a/empty/") => h::status(StatusCode::NO_CONTENT),
            ("DELETE", "/v1/a/c/err") => h::status(StatusCode::SERVICE_UNAVAILABLE),
            ("DELETE", "/v1/a/c") => h::status(StatusCode::CONFLICT),
            ("DELETE", "/v1/a/c/nope") => h::status(StatusCode::UNAUTHORIZED),
            _ => h::status(StatusCode::NOT_FOUND),
        })
    }

    async fn post_delete(m: &Bulk, uri: &str, headers: &[(&str, &str)], list: &str) -> String {
        let len = list.len().to_string();
        let mut all = vec![("content-length", len.as_str())];
        all.extend_from_slice(headers);
        let resp = m.call(request("POST", uri, &all, list.to_string())).await;
        assert_eq!(resp.status(), StatusCode::OK);
        String::from_utf8(body_of(resp).await.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn bulk_delete_counts_found_missing_and_failures() {
        let next = delete_app();
        let m = bulk(next.clone(), Settings { delete_concurrency: 1, ..Settings::default() });
        let list = "/c\n/c/found\n c/missing \r\n\n/c/err\n/empty/\n%2Fc%2Fnope\n/c/bad%00name";
        let body = post_delete(&m, "/v1/a?bulk-delete", &[("accept", "application/json"), ("x-auth-token", "t")], list).await;
        let report = json(&body);
        assert_eq!(report["Response Status"], "502 Bad Gateway");
        assert_eq!(report["Number Deleted"], 2);
        assert_eq!(report["Number Not Found"], 1);
        assert_eq!(
            report["Errors"],
            serde_json::json!([
                ["/c/err", "503 Service Unavailable"],
                ["/c/nope", "401 Unauthorized"],
                ["/c/bad%00name", "412 Precondition Failed"],
                ["/c", "409 Conflict"]
            ])
        );
        let seen = next.seen();
        let deleted: Vec<&str> = seen.iter().map(|s| s.uri.as_str()).collect();
        // Objects first, then containers.
        assert_eq!(deleted, ["/v1/a/c/found", "/v1/a/c/missing", "/v1/a/c/err", "/v1/a/c/nope", "/v1/a/c", "/v1/a/empty/"]);
        assert!(seen.iter().all(|s| s.method == Method::DELETE && s.source == Some("BD") && s.headers["x-auth-token"] == "t"));
    }

    #[tokio::test]
    async fn bulk_delete_limits_and_refusals() {
        let m = bulk(delete_app(), Settings { max_deletes_per_request: 2, ..Settings::default() });
        let body = post_delete(&m, "/v1/a?bulk-delete", &[], "/c/1\n/c/2\n/c/3\n").await;
        assert!(body.contains("Response Status: 413 Request Entity Too Large\n"), "{body}");
        assert!(body.contains("Response Body: Maximum Bulk Deletes: 2 per request\n"), "{body}");

        let m = bulk(delete_app(), Settings { max_failed_deletes: 2, delete_concurrency: 1, ..Settings::default() });
        let body = post_delete(&m, "/v1/a?bulk-delete", &[("accept", "application/json")], "/c/err\n/c/err\n/c/err\n/c/found").await;
        assert_eq!(
            body,
            r#"{"Response Status": "400 Bad Request", "Response Body": "Max delete failures exceeded", "Number Deleted": 0, "Number Not Found": 0, "Errors": [["/c/err", "503 Service Unavailable"], ["/c/err", "503 Service Unavailable"]]}"#
        );

        let m = bulk(delete_app(), Settings::default());
        let long = format!("/c/{}\n", "x".repeat(3000));
        let body = post_delete(&m, "/v1/a?bulk-delete", &[], &long).await;
        assert!(body.contains("Response Body: Invalid File Name\n"), "{body}");
        let body = post_delete(&m, "/v1/a?bulk-delete", &[], "\n\n").await;
        assert!(body.contains("Response Body: Invalid bulk delete.\nResponse Status: 400 Bad Request\n"), "{body}");
        let body = post_delete(&m, "/v1/a?bulk-delete", &[("content-type", "application/json")], "/c/found").await;
        assert!(body.contains("Response Status: 406 Not Acceptable\n"), "{body}");
        let body = post_delete(&m, "/v1/a?bulk-delete", &[("accept", "image/png")], "/c/found").await;
        assert!(body.contains("Response Status: 406 Not Acceptable\n"), "{body}");
    }

    #[tokio::test]
    async fn report_formats() {
        let m = bulk(delete_app(), Settings::default());
        // Swift's functional test: a DELETE to an object with the list.
        let resp = m
            .call(request("DELETE", "/v1/a/c/found?bulk-delete", &[("accept", "application/xml"), ("content-length", "7")], "c/found"))
            .await;
        assert_eq!(resp.headers()["content-type"], "application/xml");
        assert_eq!(
            body_of(resp).await,
            "<delete>\n<number_deleted>1</number_deleted>\n<number_not_found>0</number_not_found>\n\
             <response_body></response_body>\n<response_status>200 OK</response_status>\n<errors>\n</errors>\n</delete>\n"
        );
        let body = post_delete(&m, "/v1/a?bulk-delete", &[("accept", "text/xml")], "/c/x%26y\n/c/e%72r").await;
        assert!(body.contains("<number_not_found>1</number_not_found>\n"), "{body}");
        assert!(
            body.contains("<object><name>/c/err</name><status>503 Service Unavailable</status></object>\n</errors>\n</delete>\n"),
            "{body}"
        );
        let body = post_delete(&m, "/v1/a?bulk-delete", &[], "/c/found\n/c/gone").await;
        assert_eq!(body, "Number Deleted: 1\nNumber Not Found: 1\nResponse Body: \nResponse Status: 200 OK\nErrors:\n");
        let (resp, body) = put_archive(&m, "/v1/a/c2?extract-archive=tar", "text/xml", tar_of(&[("a", b"1")])).await;
        assert_eq!(resp.headers()["content-type"], "text/xml");
        assert!(body.starts_with("<extract>\n<number_files_created>0</number_files_created>\n"), "{body}");
    }

    /// A proxy slower than the heartbeat.
    struct Slow(Arc<Recorder>);

    impl Handler for Slow {
        fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(60)).await;
                self.0.call(req).await
            })
        }
    }

    #[tokio::test]
    async fn heartbeats_come_before_the_report() {
        let settings = Settings { yield_frequency: Duration::from_millis(10), ..Settings::default() };
        let m = Bulk { next: Arc::new(Slow(app())), settings: Arc::new(settings) };
        let (_, body) = put_archive(&m, "/v1/a/c2?extract-archive=tar", "application/xml", tar_of(&[("a", b"1")])).await;
        assert!(body.starts_with(XML_DECLARATION), "{body}");
        let (beats, report) = body.split_once("\r\n\r\n").unwrap();
        assert!(beats[XML_DECLARATION.len()..].bytes().all(|b| b == b' '));
        assert!(report.starts_with("<extract>\n"), "{report}");
        assert!(report.contains("<response_status>201 Created</response_status>"), "{report}");
    }

    #[test]
    fn settings_and_capabilities() {
        let conf = common::config::ConfigFile::parse(
            "[filter:bulk]\nuse = egg:swift#bulk\nmax_deletes_per_request = 5\ndelete_concurrency = 5000\nyield_frequency = 3\n",
            "proxy-server.conf",
        )
        .unwrap();
        let s = Settings::from_section(&conf.filter_section("bulk").unwrap(), &Constraints::default()).unwrap();
        assert_eq!((s.max_deletes_per_request, s.delete_concurrency, s.yield_frequency), (5, 1000, Duration::from_secs(3)));
        assert_eq!(s.max_path_length, 1024 + 256 + 2);
        let mut build = Build::default();
        register_capabilities(&s, &mut build);
        assert_eq!(
            serde_json::Value::Object(build.capabilities),
            serde_json::json!({
                "bulk_upload": {"max_containers_per_extraction": 10000, "max_failed_extractions": 1000},
                "bulk_delete": {"max_deletes_per_request": 5, "max_failed_deletes": 1000},
            })
        );
    }
}
