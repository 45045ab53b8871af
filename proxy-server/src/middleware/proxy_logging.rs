//! `egg:swift#proxy_logging`: the proxy's access log, one line per request
//! in Swift's format, written when the response has ended (its body fully
//! sent, failed or dropped), with the bytes really received from the client
//! and really sent to it.
//!
//! Swift's pipeline runs it twice. The left-most instance logs the client's
//! request and marks it (`AccessLogMade`, Swift's
//! `swift.proxy_access_log_made`) so the right-most one lets it pass
//! unlogged; subrequests that middlewares between the two make (copy's
//! `SSC`, `DLO`, tempauth's `TA`) reach the right-most one under their own
//! `SwiftSource` and are logged there, with that source in the line.
//!
//! The default line (Swift's `log_msg_template`), each field url-quoted,
//! a missing or zero value written `-`:
//!
//! ```text
//! client_ip remote_addr end_time.datetime method path protocol status_int
//! referer user_agent auth_token bytes_recvd bytes_sent client_etag
//! transaction_id headers request_time source log_info start_time end_time
//! policy_index access_user_id
//! ```
//!
//! With `log_statsd_host` set (or `access_log_statsd_host`, which wins, as
//! do the other `access_log_statsd_*` options), each logged request is
//! also sent to StatsD as Swift's proxy_logging sends it, under
//! `[<log_statsd_metric_prefix>.]proxy-server.`:
//!
//! ```text
//! <type>.<verb>.<status>.timing                  request time, ms
//! <type>.<verb>.<status>.xfer                    bytes received + sent
//! <type>.GET.<status>.first-byte.timing          time to the response head
//! object.policy.<index>.<verb>.<status>.timing   and .xfer, .first-byte.timing
//! ```
//!
//! `<type>` is `account`, `container` or `object` from the path, else the
//! subrequest's source (`SSC`, ...), else `UNKNOWN`; a verb not in
//! `log_statsd_valid_http_methods` is `BAD_METHOD`; the policy variant is
//! sent only for object requests whose policy `swift.conf` knows.

use super::{BoxFuture, Build, Handler, Next, SwiftSource};
use crate::proxy::Proxy;
use bytes::Bytes;
use common::backend_headers as bh;
use common::config::Section;
use common::http::{Body, BoxError};
use common::statsd::StatsdClient;
use http::{Request, Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Swift's default `log_msg_template`.
const DEFAULT_TEMPLATE: &str = "{client_ip} {remote_addr} {end_time.datetime} {method} {path} {protocol} {status_int} \
     {referer} {user_agent} {auth_token} {bytes_recvd} {bytes_sent} {client_etag} {transaction_id} {headers} \
     {request_time} {source} {log_info} {start_time} {end_time} {policy_index} {access_user_id}";

/// Request headers whose values are cut to `reveal_sensitive_prefix`
/// characters in the line (Swift registers these two in its
/// `filter_factory`).
const SENSITIVE_HEADERS: &[&str] = &["x-auth-token", "x-storage-token"];

/// Where finished lines go: `common::log::info` unless a test captures them.
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// The mark a proxy_logging instance leaves on the request it logs (Swift's
/// `swift.proxy_access_log_made`). It records the request's source, since
/// a subrequest inherits its parent's extensions: a request is already
/// logged only when the mark was made for its own source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessLogMade {
    source: Option<&'static str>,
}

/// Extra facts for the line's `log_info` field (Swift's `swift.log_info`):
/// the instance logging a request puts a fresh one in it, and code to its
/// right may `append` to it; the entries are joined with `,`.
#[derive(Debug, Clone, Default)]
pub struct LogInfo(Arc<Mutex<Vec<String>>>);

impl LogInfo {
    pub fn append(&self, info: impl Into<String>) {
        if let Ok(mut v) = self.0.lock() {
            v.push(info.into());
        }
    }

    fn joined(&self) -> String {
        self.0.lock().map(|v| v.join(",")).unwrap_or_default()
    }
}

/// What the line's template is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
    /// `start_time` or `end_time` (`end` true), with an optional part.
    Time {
        end: bool,
        part: TimePart,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimePart {
    /// Seconds since the epoch with nine decimals.
    Float,
    /// `%d/%b/%Y/%H/%M/%S` in GMT.
    Datetime,
    /// Whole seconds.
    S,
    Ms,
    Us,
    Ns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    ClientIp,
    RemoteAddr,
    Domain,
    Method,
    Path,
    Protocol,
    StatusInt,
    WireStatusInt,
    Referer,
    UserAgent,
    AuthToken,
    BytesRecvd,
    BytesSent,
    ClientEtag,
    TransactionId,
    Headers,
    RequestTime,
    Ttfb,
    Source,
    LogInfo,
    PolicyIndex,
    Pid,
    Account,
    Container,
    Object,
    AccessUserId,
}

impl Field {
    fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "client_ip" => Field::ClientIp,
            "remote_addr" => Field::RemoteAddr,
            "domain" => Field::Domain,
            "method" => Field::Method,
            "path" => Field::Path,
            "protocol" => Field::Protocol,
            "status_int" => Field::StatusInt,
            "wire_status_int" => Field::WireStatusInt,
            "referer" => Field::Referer,
            "user_agent" => Field::UserAgent,
            "auth_token" => Field::AuthToken,
            "bytes_recvd" => Field::BytesRecvd,
            "bytes_sent" => Field::BytesSent,
            "client_etag" => Field::ClientEtag,
            "transaction_id" => Field::TransactionId,
            "headers" => Field::Headers,
            "request_time" => Field::RequestTime,
            "ttfb" => Field::Ttfb,
            "source" => Field::Source,
            "log_info" => Field::LogInfo,
            "policy_index" => Field::PolicyIndex,
            "pid" => Field::Pid,
            "account" => Field::Account,
            "container" => Field::Container,
            "object" => Field::Object,
            "access_user_id" => Field::AccessUserId,
            _ => return None,
        })
    }
}

/// Parses a `log_msg_template` (Python `str.format` syntax without format
/// specs: `{field}`, `{start_time.part}`, `{{` and `}}`).
fn parse_template(template: &str) -> Result<Vec<Piece>, String> {
    let bad = |why: String| format!("Cannot interpolate log_msg_template: {why}");
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '}' => return Err(bad("single '}' encountered".into())),
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(bad("expected '}' before end of string".into())),
                    }
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                let (field, part) = match name.split_once('.') {
                    Some((f, p)) => (f, Some(p)),
                    None => (name.as_str(), None),
                };
                let piece = match (field, part) {
                    ("start_time" | "end_time", part) => {
                        let part = match part {
                            None => TimePart::Float,
                            Some("datetime") => TimePart::Datetime,
                            Some("s") => TimePart::S,
                            Some("ms") => TimePart::Ms,
                            Some("us") => TimePart::Us,
                            Some("ns") => TimePart::Ns,
                            Some(p) => return Err(bad(format!("{field}.{p} is not supported by this proxy"))),
                        };
                        Piece::Time { end: field == "end_time", part }
                    }
                    (f, None) => Piece::Field(Field::parse(f).ok_or_else(|| bad(format!("unknown field {f:?}")))?),
                    (f, Some(p)) => return Err(bad(format!("{f}.{p} is not supported by this proxy"))),
                };
                pieces.push(piece);
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Python's `quote(value, safe=':/{}')`, as Swift quotes every field.
fn quote_field(value: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'_')
        .remove(b'.')
        .remove(b'-')
        .remove(b'~')
        .remove(b':')
        .remove(b'/')
        .remove(b'{')
        .remove(b'}');
    percent_encoding::utf8_percent_encode(value, SET).to_string()
}

/// Swift's `cap_length`: the first `max` characters and `...` when longer.
fn cap_length(value: &str, max: usize) -> String {
    match value.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &value[..at]),
        None => value.to_string(),
    }
}

/// Python's `str.title()`, as WSGI header names come out of Swift's
/// `req.headers`.
fn title_case(name: &str) -> String {
    let mut prev_cased = false;
    name.chars()
        .map(|c| {
            let out = if prev_cased { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() };
            prev_cased = c.is_ascii_alphabetic();
            out
        })
        .collect()
}

/// The middleware's settings, from its own section.
struct Settings {
    template: Vec<Piece>,
    log_headers: bool,
    /// Lower-case names; empty: all headers.
    log_headers_only: Vec<String>,
    reveal_sensitive_prefix: usize,
    /// Where request metrics go (`None`: no `log_statsd_host`).
    statsd: Option<StatsdClient>,
    /// Verbs named in metrics; others are `BAD_METHOD`.
    valid_methods: Vec<String>,
    /// The storage policy indexes of `swift.conf`.
    policies: Vec<u32>,
}

/// Swift's default `log_statsd_valid_http_methods`.
const DEFAULT_VALID_METHODS: &str = "GET,HEAD,POST,PUT,DELETE,COPY,OPTIONS,UPDATE";

impl Settings {
    fn from_section(section: &Section) -> Result<Settings, String> {
        let template = parse_template(section.get("log_msg_template").unwrap_or(DEFAULT_TEMPLATE))?;
        let log_headers = match section.get("access_log_headers") {
            Some(_) => section.get_bool("access_log_headers", false),
            None => section.get_bool("log_headers", false),
        }
        .map_err(|e| e.to_string())?;
        let log_headers_only = common::config::list_from_csv(section.get("access_log_headers_only").unwrap_or(""))
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let reveal_sensitive_prefix = section.get_usize("reveal_sensitive_prefix", 16).map_err(|e| e.to_string())?;
        let statsd = StatsdClient::from_section_preferring(section, "access_", "proxy-server").map_err(|e| e.to_string())?;
        let valid_methods = section
            .get("access_log_statsd_valid_http_methods")
            .or_else(|| section.get("log_statsd_valid_http_methods"))
            .unwrap_or(DEFAULT_VALID_METHODS)
            .split(',')
            .map(|m| m.trim().to_ascii_uppercase())
            .filter(|m| !m.is_empty())
            .collect();
        Ok(Settings { template, log_headers, log_headers_only, reveal_sensitive_prefix, statsd, valid_methods, policies: vec![0] })
    }

    /// Swift's `statsd_metric_name`: `<type>.<verb>.<status>`, and the
    /// `<type>.policy.<index>.<verb>.<status>` variant for an object
    /// request in a known policy.
    fn metric_names(&self, facts: &RequestFacts, status: u16, policy_index: Option<&str>) -> (String, Option<String>) {
        let kind = if !facts.object.is_empty() {
            "object"
        } else if !facts.container.is_empty() {
            "container"
        } else if !facts.account.is_empty() {
            "account"
        } else if !facts.source.is_empty() {
            facts.source.as_str()
        } else {
            "UNKNOWN"
        };
        let verb = if self.valid_methods.contains(&facts.method) { facts.method.as_str() } else { "BAD_METHOD" };
        let policy = policy_index
            .and_then(|p| p.trim().parse::<u32>().ok())
            .filter(|p| kind == "object" && self.policies.contains(p))
            .map(|p| format!("object.policy.{p}.{verb}.{status}"));
        (format!("{kind}.{verb}.{status}"), policy)
    }
}

pub struct ProxyLogging {
    settings: Arc<Settings>,
    sink: Sink,
    next: Next,
}

pub fn factory(section: &Section, proxy: &Proxy, next: Next, _build: &mut Build) -> Result<Next, String> {
    let policies = proxy.swift.policies.iter().map(|p| p.index).collect();
    Ok(Arc::new(ProxyLogging::from_section_with_policies(section, policies, next)?))
}

impl ProxyLogging {
    /// Reads its section. Lines go to the proxy's log, under the section's
    /// `access_log_name` (or `log_name`) when it sets one.
    pub fn from_section(section: &Section, next: Next) -> Result<ProxyLogging, String> {
        Self::from_section_with_policies(section, vec![0], next)
    }

    /// As `from_section`, knowing the storage policies of `swift.conf`
    /// (metrics name a policy only when it exists).
    pub fn from_section_with_policies(section: &Section, policies: Vec<u32>, next: Next) -> Result<ProxyLogging, String> {
        let mut settings = Settings::from_section(section)?;
        settings.policies = policies;
        let name = section.get("access_log_name").or_else(|| section.get("log_name")).map(str::to_string);
        let sink: Sink = match name {
            // The line under the access log's own name (Swift's
            // access_log_name, else the section's log_name).
            Some(name) => Arc::new(move |line: &str| common::log::info_as(&name, line)),
            None => Arc::new(|line: &str| common::log::info(line)),
        };
        Ok(ProxyLogging { settings: Arc::new(settings), sink, next })
    }

    /// Sends the lines to `sink` instead (tests).
    #[cfg(test)]
    fn with_sink(mut self, sink: Sink) -> ProxyLogging {
        self.sink = sink;
        self
    }
}

/// What the client's side of the request has done, shared with the
/// request-body wrapper.
#[derive(Default)]
struct Received {
    bytes: AtomicU64,
    /// Reading the request body failed (Swift's `client_disconnect`).
    failed: AtomicBool,
}

/// The request body, counting the bytes that pass (Swift's `InputProxy`).
struct CountedBody {
    inner: Body,
    received: Arc<Received>,
}

impl http_body::Body for CountedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.received.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
            }
            Poll::Ready(Some(Err(_))) => self.received.failed.store(true, Ordering::Relaxed),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What the line says about the request, taken as it entered this instance.
struct RequestFacts {
    client_ip: String,
    remote_addr: String,
    domain: String,
    method: String,
    /// Swift's `req.path_qs`: the path re-quoted, then the raw query.
    path_qs: String,
    protocol: String,
    referer: String,
    user_agent: String,
    auth_token: String,
    client_etag: String,
    transaction_id: String,
    headers: String,
    source: String,
    policy_index: Option<String>,
    account: String,
    container: String,
    object: String,
}

impl RequestFacts {
    fn of(req: &Request<Body>, settings: &Settings, source: Option<&'static str>) -> RequestFacts {
        let headers = req.headers();
        let header = |name: &str| headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).unwrap_or_default();
        let info = super::request_info(req);
        let remote_addr = info.remote.ip().to_string();
        let mut client_ip = header("x-cluster-client-ip");
        if client_ip.is_empty() && headers.contains_key("x-forwarded-for") {
            client_ip = header("x-forwarded-for").split(',').next().unwrap_or("").trim().to_string();
        }
        if client_ip.is_empty() {
            client_ip = remote_addr.clone();
        }
        let mut domain = header("host");
        if let Some((host, _port)) = domain.rsplit_once(':') {
            domain = host.to_string();
        }
        let raw_path = req.uri().path();
        let path = match common::path::unquote(raw_path) {
            Ok(p) => common::http::quote_path(&p),
            Err(_) => raw_path.to_string(),
        };
        let path_qs = match req.uri().query() {
            Some(q) if !q.is_empty() => format!("{path}?{q}"),
            _ => path,
        };
        let (account, container, object) = aco(raw_path);
        let obscure = |name: &str, value: String| {
            if SENSITIVE_HEADERS.contains(&name) && !value.is_empty() {
                cap_length(&value, settings.reveal_sensitive_prefix)
            } else {
                value
            }
        };
        let logged_headers = if settings.log_headers {
            headers
                .iter()
                .filter(|(k, _)| settings.log_headers_only.is_empty() || settings.log_headers_only.iter().any(|o| o == k.as_str()))
                .map(|(k, v)| {
                    format!("{}: {}", title_case(k.as_str()), obscure(k.as_str(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                })
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            String::new()
        };
        RequestFacts {
            client_ip,
            remote_addr,
            domain,
            method: req.method().as_str().to_string(),
            path_qs,
            protocol: format!("{:?}", req.version()),
            referer: header("referer"),
            user_agent: header("user-agent"),
            auth_token: obscure("x-auth-token", header("x-auth-token")),
            client_etag: header("etag"),
            transaction_id: info.trans_id,
            headers: logged_headers,
            source: source.unwrap_or("").to_string(),
            policy_index: headers.get(bh::BACKEND_STORAGE_POLICY_INDEX).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
            account,
            container,
            object,
        }
    }
}

/// Account, container and object of a `/v1/...` path (empty when not one).
fn aco(raw_path: &str) -> (String, String, String) {
    let Ok(path) = common::path::unquote(raw_path) else { return Default::default() };
    let Ok(segs) = common::path::split_path(&path, 1, 4, true) else { return Default::default() };
    let mut it = segs.into_iter().map(Option::unwrap_or_default);
    let version = it.next().unwrap_or_default();
    if version != "v1" && version != "v1.0" {
        return Default::default();
    }
    (it.next().unwrap_or_default(), it.next().unwrap_or_default(), it.next().unwrap_or_default())
}

/// A request's line, waiting for the response to end.
struct PendingLine {
    settings: Arc<Settings>,
    sink: Sink,
    facts: RequestFacts,
    received: Arc<Received>,
    log_info: LogInfo,
    started_at: SystemTime,
    started: Instant,
    /// Seconds to the response's head, for GETs (Swift's `ttfb`).
    ttfb: Option<f64>,
}

/// How the response ended.
enum Ending {
    /// Its body was sent to the end.
    Complete,
    /// The body failed while being sent.
    Failed,
    /// The body was dropped before its end: the client went away.
    Aborted,
}

impl PendingLine {
    fn write(self, wire_status: Option<StatusCode>, resp_policy_index: Option<&str>, bytes_sent: u64, ending: Ending) {
        let wire = wire_status.map_or(0, |s| s.as_u16());
        // As Swift: a failed upload read means the client left (499), which
        // outranks what happened afterwards.
        let status = if self.received.failed.load(Ordering::Relaxed) {
            499
        } else {
            match ending {
                Ending::Complete => wire,
                Ending::Failed => 500,
                Ending::Aborted => 499,
            }
        };
        let elapsed = self.started.elapsed();
        let start = self.started_at.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let end = start + elapsed.as_secs_f64();
        let number = |n: u64| if n == 0 { String::new() } else { n.to_string() };
        let f = &self.facts;
        let policy_index = resp_policy_index.map(str::to_string).or_else(|| f.policy_index.clone()).unwrap_or_default();
        if let Some(statsd) = &self.settings.statsd {
            let millis = elapsed.as_secs_f64() * 1000.0;
            let xfer = (self.received.bytes.load(Ordering::Relaxed) + bytes_sent) as i64;
            let (name, policy_name) = self.settings.metric_names(f, status, Some(&policy_index));
            statsd.timing(&format!("{name}.timing"), millis);
            statsd.update_stats(&format!("{name}.xfer"), xfer);
            if let Some(name) = policy_name {
                statsd.timing(&format!("{name}.timing"), millis);
                statsd.update_stats(&format!("{name}.xfer"), xfer);
            }
        }
        let mut line = String::new();
        for piece in &self.settings.template {
            let value = match piece {
                Piece::Text(t) => {
                    line.push_str(t);
                    continue;
                }
                Piece::Time { end: is_end, part } => time_part(if *is_end { end } else { start }, *part),
                Piece::Field(field) => match field {
                    Field::ClientIp => f.client_ip.clone(),
                    Field::RemoteAddr => f.remote_addr.clone(),
                    Field::Domain => f.domain.clone(),
                    Field::Method => f.method.clone(),
                    Field::Path => f.path_qs.clone(),
                    Field::Protocol => f.protocol.clone(),
                    Field::StatusInt => number(u64::from(status)),
                    Field::WireStatusInt => number(u64::from(if wire == 0 { status } else { wire })),
                    Field::Referer => f.referer.clone(),
                    Field::UserAgent => f.user_agent.clone(),
                    Field::AuthToken => f.auth_token.clone(),
                    Field::BytesRecvd => number(self.received.bytes.load(Ordering::Relaxed)),
                    Field::BytesSent => number(bytes_sent),
                    Field::ClientEtag => f.client_etag.clone(),
                    Field::TransactionId => f.transaction_id.clone(),
                    Field::Headers => f.headers.clone(),
                    Field::RequestTime => format!("{:.4}", elapsed.as_secs_f64()),
                    Field::Ttfb => self.ttfb.filter(|t| *t != 0.0).map(|t| t.to_string()).unwrap_or_default(),
                    Field::Source => f.source.clone(),
                    Field::LogInfo => self.log_info.joined(),
                    Field::PolicyIndex => policy_index.clone(),
                    Field::Pid => std::process::id().to_string(),
                    Field::Account => f.account.clone(),
                    Field::Container => f.container.clone(),
                    Field::Object => f.object.clone(),
                    // Set by s3api in Swift, which this proxy does not run.
                    Field::AccessUserId => String::new(),
                },
            };
            if value.is_empty() {
                line.push('-');
            } else {
                line.push_str(&quote_field(&value));
            }
        }
        (self.sink)(&line);
    }
}

/// Swift's `StrFormatTime` views of a time in seconds since the epoch.
fn time_part(secs: f64, part: TimePart) -> String {
    let full = format!("{secs:.9}");
    let (whole, frac) = full.split_once('.').unwrap_or((&full, ""));
    match part {
        TimePart::Float => full.clone(),
        TimePart::S => whole.to_string(),
        TimePart::Ms => frac[..3].to_string(),
        TimePart::Us => frac[..6].to_string(),
        TimePart::Ns => frac.to_string(),
        TimePart::Datetime => {
            // log_date is `14/Nov/2023:22:13:21 +0000`; Swift's field is
            // `14/Nov/2023/22/13/21`.
            let date = common::timestamp::log_date(secs as u64);
            let date = date.split(' ').next().unwrap_or_default();
            date.replace(':', "/")
        }
    }
}

/// Writes the line if the request is dropped before its response head
/// (a panic to the right, which catch_errors turns into a 500, or the
/// connection going away first).
struct CallGuard(Option<PendingLine>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(line) = self.0.take() {
            let ending = if std::thread::panicking() { Ending::Failed } else { Ending::Aborted };
            line.write(None, None, 0, ending);
        }
    }
}

/// The response body, counting the bytes sent and writing the line when
/// it ends or is dropped.
struct LoggedBody {
    inner: Body,
    line: Option<PendingLine>,
    status: StatusCode,
    policy_index: Option<String>,
    sent: u64,
    /// A HEAD's body is never sent: its response ends with its head.
    head: bool,
    /// The body's length when the response says it (`Content-Length`):
    /// once that many bytes are sent, the server drops the body without
    /// polling it to its end, and that is a complete response.
    length: Option<u64>,
}

impl LoggedBody {
    fn finish(&mut self, ending: Ending) {
        if let Some(line) = self.line.take() {
            line.write(Some(self.status), self.policy_index.as_deref(), self.sent, ending);
        }
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
            }
            Poll::Ready(Some(Err(_))) => self.finish(Ending::Failed),
            Poll::Ready(None) => self.finish(Ending::Complete),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        // The server does not poll a body it knows to be over (empty, or
        // its last frame read), nor a HEAD's: that is an end, not an abort.
        let whole = self.length.is_some_and(|n| self.sent >= n);
        let ending = if self.head || whole || self.inner.is_end_stream() { Ending::Complete } else { Ending::Aborted };
        self.finish(ending);
    }
}

impl Handler for ProxyLogging {
    fn call(&self, mut req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        let source = req.extensions().get::<SwiftSource>().map(|s| s.0);
        if req.extensions().get::<AccessLogMade>() == Some(&AccessLogMade { source }) {
            return self.next.call(req);
        }
        req.extensions_mut().insert(AccessLogMade { source });
        let log_info = LogInfo::default();
        req.extensions_mut().insert(log_info.clone());
        let started_at = SystemTime::now();
        let started = Instant::now();
        let facts = RequestFacts::of(&req, &self.settings, source);
        let received = Arc::new(Received::default());
        let counted = received.clone();
        let req = req.map(|inner| CountedBody { inner, received: counted }.boxed());
        let is_get = facts.method == "GET";
        let head = facts.method == "HEAD";
        let mut guard = CallGuard(Some(PendingLine {
            settings: self.settings.clone(),
            sink: self.sink.clone(),
            facts,
            received,
            log_info,
            started_at,
            started,
            ttfb: None,
        }));
        Box::pin(async move {
            let resp = self.next.call(req).await;
            let Some(mut line) = guard.0.take() else { return resp };
            let (parts, body) = resp.into_parts();
            let policy_index = common::http::header_str(&parts.headers, bh::BACKEND_STORAGE_POLICY_INDEX).map(str::to_string);
            if is_get {
                let ttfb = started.elapsed().as_secs_f64();
                line.ttfb = Some(ttfb);
                if let Some(statsd) = &self.settings.statsd {
                    let policy = policy_index.as_deref().or(line.facts.policy_index.as_deref());
                    let (name, policy_name) = self.settings.metric_names(&line.facts, parts.status.as_u16(), policy);
                    statsd.timing(&format!("{name}.first-byte.timing"), ttfb * 1000.0);
                    if let Some(name) = policy_name {
                        statsd.timing(&format!("{name}.first-byte.timing"), ttfb * 1000.0);
                    }
                }
            }
            let length = common::http::header_str(&parts.headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
            let body = LoggedBody { inner: body, line: Some(line), status: parts.status, policy_index, sent: 0, head, length };
            Response::from_parts(parts, body.boxed())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, request, Recorder};
    use super::super::{subrequest, FnHandler};
    use super::*;
    use common::server::RequestInfo;
    use http::{HeaderMap, Method};

    type Lines = Arc<Mutex<Vec<String>>>;

    fn logging(next: Next, conf: &str) -> (ProxyLogging, Lines) {
        let text = format!("[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n{conf}");
        let section = common::config::ConfigFile::parse(&text, "proxy-server.conf").unwrap().filter_section("proxy-logging").unwrap();
        let lines: Lines = Arc::default();
        let captured = lines.clone();
        let m = ProxyLogging::from_section(&section, next)
            .unwrap()
            .with_sink(Arc::new(move |l: &str| captured.lock().unwrap().push(l.to_string())));
        (m, lines)
    }

    fn from_client(mut req: Request<Body>) -> Request<Body> {
        req.extensions_mut().insert(RequestInfo {
            remote: "10.0.0.9:5555".parse().unwrap(),
            trans_id: "tx0123-abc".into(),
            started: Instant::now(),
        });
        req
    }

    fn lines(l: &Lines) -> Vec<String> {
        l.lock().unwrap().clone()
    }

    fn fields(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    fn assert_time_fields(f: &[String]) {
        // end_time.datetime: %d/%b/%Y/%H/%M/%S
        let d: Vec<&str> = f[2].split('/').collect();
        assert_eq!(d.len(), 6, "{}", f[2]);
        assert!(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].contains(&d[1]));
        // request_time with four decimals; start and end with nine.
        let (_, frac) = f[15].split_once('.').unwrap();
        assert_eq!(frac.len(), 4, "{}", f[15]);
        for t in [&f[18], &f[19]] {
            let (whole, frac) = t.split_once('.').unwrap();
            assert!(whole.len() >= 10 && frac.len() == 9, "{t}");
        }
        let (start, end): (f64, f64) = (f[18].parse().unwrap(), f[19].parse().unwrap());
        assert!(end >= start);
        assert_eq!(f[2], time_part(end, TimePart::Datetime));
    }

    #[tokio::test]
    async fn put_is_logged_field_by_field_with_the_bytes_received() {
        let next = Recorder::new(|_| {
            let mut r = common::http::status(StatusCode::CREATED);
            r.headers_mut().insert(bh::BACKEND_STORAGE_POLICY_INDEX, "1".parse().unwrap());
            r
        });
        let (m, log) = logging(next.clone(), "");
        let req = from_client(request(
            "PUT",
            "/v1/AUTH_test/c/o%20x%7E?multipart-manifest=put&a=b",
            &[
                ("x-forwarded-for", "1.2.3.4, 5.6.7.8"),
                ("referer", "http://example.com/a b"),
                ("user-agent", "curl/8.0"),
                ("x-auth-token", "AUTH_tk0123456789abcdef"),
                ("etag", "5eb63bbbe01eeed093cb22bb8f5acdc3"),
                ("host", "swift.example.com:8080"),
            ],
            "hello world",
        ));
        let resp = m.call(req).await;
        assert_eq!(next.seen()[0].body, "hello world");
        assert!(lines(&log).is_empty(), "written before the response ended");
        assert!(body_of(resp).await.is_empty());
        let log = lines(&log);
        assert_eq!(log.len(), 1);
        let f = fields(&log[0]);
        assert_eq!(f.len(), 22, "{}", log[0]);
        assert_eq!(f[0], "1.2.3.4");
        assert_eq!(f[1], "10.0.0.9");
        assert_eq!(f[3], "PUT");
        // Swift's req.path_qs (re-quoted path), quoted again for the line.
        assert_eq!(f[4], "/v1/AUTH_test/c/o%2520x~%3Fmultipart-manifest%3Dput%26a%3Db");
        assert_eq!(f[5], "HTTP/1.1");
        assert_eq!(f[6], "201");
        assert_eq!(f[7], "http://example.com/a%20b");
        assert_eq!(f[8], "curl/8.0");
        assert_eq!(f[9], "AUTH_tk012345678...");
        assert_eq!(f[10], "11");
        assert_eq!(f[11], "-");
        assert_eq!(f[12], "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(f[13], "tx0123-abc");
        assert_eq!(f[14], "-");
        assert_eq!(f[16], "-");
        assert_eq!(f[17], "-");
        assert_eq!(f[20], "1");
        assert_eq!(f[21], "-");
        assert_time_fields(&f);
    }

    #[tokio::test]
    async fn get_is_logged_when_its_body_has_been_sent() {
        let next = Recorder::new(|_| Response::new(common::http::full("0123456789")));
        let (m, log) = logging(next, "");
        let resp = m.call(from_client(request("GET", "/v1/a/c/o", &[("x-cluster-client-ip", "9.9.9.9")], ""))).await;
        assert!(lines(&log).is_empty());
        assert_eq!(body_of(resp).await, "0123456789");
        let log = lines(&log);
        assert_eq!(log.len(), 1);
        let f = fields(&log[0]);
        assert_eq!(f.len(), 22);
        assert_eq!(
            &f[..14],
            ["9.9.9.9", "10.0.0.9", &f[2], "GET", "/v1/a/c/o", "HTTP/1.1", "200", "-", "-", "-", "-", "10", "-", "tx0123-abc"]
        );
        assert_eq!(&f[16..18], ["-", "-"]);
        assert_eq!(&f[20..], ["-", "-"]);
        assert_time_fields(&f);
    }

    #[tokio::test]
    async fn head_and_empty_bodies_are_logged() {
        let next = Recorder::new(|_| {
            let mut r = common::http::status(StatusCode::NO_CONTENT);
            r.headers_mut().insert(http::header::CONTENT_LENGTH, "0".parse().unwrap());
            r
        });
        let (m, log) = logging(next, "");
        // The server never polls a HEAD's body; dropping it ends the response.
        let resp = m.call(from_client(request("HEAD", "/v1/a/c", &[], ""))).await;
        drop(resp);
        let resp = m.call(from_client(request("DELETE", "/v1/a/c/o", &[], ""))).await;
        drop(resp);
        let log = lines(&log);
        assert_eq!(log.len(), 2);
        let (head, delete) = (fields(&log[0]), fields(&log[1]));
        assert_eq!(
            (head[3].as_str(), head[4].as_str(), head[6].as_str(), head[10].as_str(), head[11].as_str()),
            ("HEAD", "/v1/a/c", "204", "-", "-")
        );
        assert_eq!((delete[3].as_str(), delete[6].as_str(), delete[11].as_str()), ("DELETE", "204", "-"));
    }

    #[tokio::test]
    async fn a_subrequest_is_logged_with_its_source() {
        let next = Recorder::new(|_| Response::new(common::http::full("abc")));
        let (m, log) = logging(next.clone(), "");
        let client = from_client(request("PUT", "/v1/a/c/o", &[("user-agent", "ua")], ""));
        let (mut parts, _) = client.into_parts();
        // The client's request was already logged by a proxy_logging to the left.
        parts.extensions.insert(AccessLogMade { source: None });
        let sub = subrequest(&parts, Method::GET, "/v1/a/c/src", HeaderMap::new(), common::http::empty(), "SSC").unwrap();
        let resp = m.call(sub).await;
        assert_eq!(body_of(resp).await, "abc");
        let log = lines(&log);
        assert_eq!(log.len(), 1);
        let f = fields(&log[0]);
        assert_eq!(
            (f[3].as_str(), f[4].as_str(), f[8].as_str(), f[11].as_str(), f[13].as_str()),
            ("GET", "/v1/a/c/src", "ua", "3", "tx0123-abc")
        );
        assert_eq!(f[16], "SSC");
        assert_eq!(next.seen()[0].source, Some("SSC"));
    }

    #[tokio::test]
    async fn a_request_is_logged_once_and_subrequests_by_the_rightmost() {
        // left proxy_logging -> a middleware making a DLO subrequest ->
        // right proxy_logging -> app
        let app = Recorder::new(|seen| Response::new(common::http::full(if seen.uri.ends_with("seg") { "segment" } else { "manifest" })));
        let (right, right_log) = logging(app.clone(), "");
        let right: Next = Arc::new(right);
        let to_right = right.clone();
        let mid: Next = Arc::new(FnHandler(move |req: Request<Body>| {
            let right = to_right.clone();
            async move {
                let (parts, body) = req.into_parts();
                let sub = subrequest(&parts, Method::GET, "/v1/a/c/seg", HeaderMap::new(), common::http::empty(), "DLO").unwrap();
                let seg = body_of(right.call(sub).await).await;
                assert_eq!(seg, "segment");
                right.call(Request::from_parts(parts, body)).await
            }
        }));
        let (left, left_log) = logging(mid, "");
        let resp = left.call(from_client(request("GET", "/v1/a/c/manifest", &[], ""))).await;
        assert_eq!(body_of(resp).await, "manifest");
        assert_eq!(app.seen().len(), 2);
        let (left_log, right_log) = (lines(&left_log), lines(&right_log));
        assert_eq!(left_log.len(), 1, "{left_log:?}");
        assert_eq!(right_log.len(), 1, "{right_log:?}");
        let (l, r) = (fields(&left_log[0]), fields(&right_log[0]));
        assert_eq!((l[4].as_str(), l[11].as_str(), l[16].as_str()), ("/v1/a/c/manifest", "8", "-"));
        assert_eq!((r[4].as_str(), r[11].as_str(), r[16].as_str()), ("/v1/a/c/seg", "7", "DLO"));
    }

    #[tokio::test]
    async fn an_aborted_download_is_a_499_with_the_bytes_sent() {
        let next: Next = Arc::new(FnHandler(|_req: Request<Body>| async move {
            let chunks = ["abcd", "efgh", "ijkl"].map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from(c))));
            Response::new(http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed())
        }));
        let (m, log) = logging(next, "");
        let resp = m.call(from_client(request("GET", "/v1/a/c/o", &[], ""))).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "abcd");
        assert!(lines(&log).is_empty());
        drop(body);
        let log = lines(&log);
        assert_eq!(log.len(), 1);
        let f = fields(&log[0]);
        assert_eq!((f[6].as_str(), f[11].as_str()), ("499", "4"));
    }

    #[tokio::test]
    async fn a_body_dropped_after_its_content_length_is_complete() {
        // hyper stops polling a body once Content-Length bytes are sent.
        let next: Next = Arc::new(FnHandler(|_req: Request<Body>| async move {
            let chunks = ["abcd", "efgh"].map(|c| Ok::<_, BoxError>(Frame::data(Bytes::from(c))));
            let mut r = Response::new(http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed());
            r.headers_mut().insert(http::header::CONTENT_LENGTH, "8".parse().unwrap());
            r
        }));
        let (m, log) = logging(next, "");
        let mut body = m.call(from_client(request("GET", "/v1/a/c/o", &[], ""))).await.into_body();
        body.frame().await.unwrap().unwrap();
        body.frame().await.unwrap().unwrap();
        drop(body);
        let f = fields(&lines(&log)[0]);
        assert_eq!((f[6].as_str(), f[11].as_str()), ("200", "8"));
    }

    #[tokio::test]
    async fn a_failed_upload_is_a_499_with_the_bytes_received() {
        let next = Recorder::new(|_| common::http::status(StatusCode::REQUEST_TIMEOUT));
        let (m, log) = logging(next, "");
        let chunks: Vec<Result<Frame<Bytes>, BoxError>> = vec![Ok(Frame::data(Bytes::from("12345"))), Err("client went away".into())];
        let mut req = from_client(request("PUT", "/v1/a/c/o", &[], ""));
        *req.body_mut() = http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed();
        body_of(m.call(req).await).await;
        let f = fields(&lines(&log)[0]);
        assert_eq!((f[6].as_str(), f[10].as_str()), ("499", "5"));
    }

    #[tokio::test]
    async fn headers_and_the_token_prefix_follow_the_section() {
        let next = Recorder::new(|_| common::http::status(StatusCode::OK));
        let (m, log) = logging(next, "log_headers = true\nreveal_sensitive_prefix = 4\n");
        let req = from_client(request("GET", "/v1/a", &[("x-auth-token", "AUTH_tk0123"), ("x-object-meta-a1b", "v")], ""));
        drop(m.call(req).await);
        let f = fields(&lines(&log)[0]);
        assert_eq!(f[9], "AUTH...");
        assert_eq!(f[14], "X-Auth-Token:%20AUTH...%0AX-Object-Meta-A1B:%20v");
    }

    /// A StatsD collector on a local port; returns the datagrams received
    /// until `want` have come (or five seconds without one).
    fn collector() -> (std::net::UdpSocket, String) {
        let r = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        r.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let conf = format!("log_statsd_host = 127.0.0.1\nlog_statsd_port = {}\n", r.local_addr().unwrap().port());
        (r, conf)
    }

    fn received(r: &std::net::UdpSocket, want: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while out.len() < want {
            let Ok(n) = r.recv(&mut buf) else { break };
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        out
    }

    fn name_and_type(datagram: &str) -> String {
        let (name, rest) = datagram.split_once(':').unwrap();
        format!("{name}|{}", rest.split('|').nth(1).unwrap())
    }

    #[tokio::test]
    async fn requests_are_sent_to_statsd_as_swift_names_them() {
        let (r, conf) = collector();
        let next = Recorder::new(|seen| {
            let mut resp = if seen.method == "PUT" {
                common::http::status(StatusCode::CREATED)
            } else {
                Response::new(common::http::full("0123456789"))
            };
            resp.headers_mut().insert(bh::BACKEND_STORAGE_POLICY_INDEX, "0".parse().unwrap());
            resp
        });
        let (m, _log) = logging(next, &conf);
        body_of(m.call(from_client(request("PUT", "/v1/a/c/o", &[], "hello"))).await).await;
        let put = received(&r, 4);
        assert_eq!(
            put.iter().map(|d| name_and_type(d)).collect::<Vec<_>>(),
            [
                "proxy-server.object.PUT.201.timing|ms",
                "proxy-server.object.PUT.201.xfer|c",
                "proxy-server.object.policy.0.PUT.201.timing|ms",
                "proxy-server.object.policy.0.PUT.201.xfer|c"
            ]
        );
        assert_eq!(put[1], "proxy-server.object.PUT.201.xfer:5|c");
        body_of(m.call(from_client(request("GET", "/v1/a/c/o", &[], ""))).await).await;
        let get = received(&r, 6);
        assert_eq!(
            get.iter().map(|d| name_and_type(d)).collect::<Vec<_>>(),
            [
                "proxy-server.object.GET.200.first-byte.timing|ms",
                "proxy-server.object.policy.0.GET.200.first-byte.timing|ms",
                "proxy-server.object.GET.200.timing|ms",
                "proxy-server.object.GET.200.xfer|c",
                "proxy-server.object.policy.0.GET.200.timing|ms",
                "proxy-server.object.policy.0.GET.200.xfer|c"
            ]
        );
        assert_eq!(get[3], "proxy-server.object.GET.200.xfer:10|c");
    }

    #[tokio::test]
    async fn metric_types_verbs_and_the_access_prefix() {
        let (r, conf) = collector();
        let next = Recorder::new(|_| common::http::status(StatusCode::NO_CONTENT));
        // access_log_statsd_* wins; a policy the cluster lacks is not named.
        let conf = format!("{}log_statsd_metric_prefix = ignored\naccess_log_statsd_metric_prefix = c1\n", conf);
        let (m, _log) = logging(next, &conf);
        for (method, path) in [("HEAD", "/v1/a/c"), ("HEAD", "/v1/a"), ("PATCH", "/v1/a"), ("GET", "/info")] {
            drop(m.call(from_client(request(method, path, &[(bh::BACKEND_STORAGE_POLICY_INDEX, "7")], ""))).await);
        }
        let names: Vec<String> = received(&r, 9).iter().map(|d| name_and_type(d)).collect();
        assert_eq!(
            names,
            [
                "c1.proxy-server.container.HEAD.204.timing|ms",
                "c1.proxy-server.container.HEAD.204.xfer|c",
                "c1.proxy-server.account.HEAD.204.timing|ms",
                "c1.proxy-server.account.HEAD.204.xfer|c",
                "c1.proxy-server.account.BAD_METHOD.204.timing|ms",
                "c1.proxy-server.account.BAD_METHOD.204.xfer|c",
                "c1.proxy-server.UNKNOWN.GET.204.first-byte.timing|ms",
                "c1.proxy-server.UNKNOWN.GET.204.timing|ms",
                "c1.proxy-server.UNKNOWN.GET.204.xfer|c"
            ]
        );
    }

    #[test]
    fn a_custom_template_is_checked_at_start_up() {
        let p = parse_template("{method} {{x}} {end_time.s}.{end_time.ms}").unwrap();
        assert_eq!(
            p,
            [
                Piece::Field(Field::Method),
                Piece::Text(" {x} ".into()),
                Piece::Time { end: true, part: TimePart::S },
                Piece::Text(".".into()),
                Piece::Time { end: true, part: TimePart::Ms }
            ]
        );
        assert!(parse_template("{nope}").is_err());
        assert!(parse_template("{method").is_err());
        assert!(parse_template("{path.anonymized}").is_err());
        assert_eq!(time_part(10000001.0, TimePart::Datetime), "26/Apr/1970/17/46/41");
        assert_eq!(time_part(10000001.0, TimePart::Float), "10000001.000000000");
    }
}
