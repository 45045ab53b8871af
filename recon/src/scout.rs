//! Asking every host at once (Swift's `Scout`): one request per host, all
//! in flight together (at most [`POOL_SIZE`], Swift's green-pool size),
//! each bounded by the `-t` timeout from connect to the last body byte, so
//! a dead or stalled server costs at most the timeout and never hangs the
//! command. Failures come back as the text Swift's urllib would print.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

/// How many requests are in flight at once (Swift's `pool_size`).
pub const POOL_SIZE: usize = 30;

/// Largest response body read from a host; recon answers are small.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// A storage server as the rings name it: `(ip, port)`.
pub type Host = (String, u16);

/// Why a host gave no usable answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoutError {
    /// The HTTP status for an error answer, -1 when there was none (Swift's
    /// convention).
    pub status: i32,
    /// What Swift prints after `-> <url>: `.
    pub message: String,
}

impl ScoutError {
    fn failed(message: impl Into<String>) -> ScoutError {
        ScoutError { status: -1, message: message.into() }
    }
}

/// One host's answer to a recon request.
#[derive(Debug, Clone)]
pub struct Scouted {
    pub host: Host,
    /// `http://ip:port/recon/<type>`, as Swift prints it.
    pub url: String,
    pub result: Result<Value, ScoutError>,
    /// When the request started and ended (seconds since the epoch); `-T`
    /// compares the remote clock with this window.
    pub ts_start: f64,
    pub ts_end: f64,
}

/// One host's answer to `OPTIONS /`.
#[derive(Debug, Clone)]
pub struct ServerTypeAnswer {
    pub host: Host,
    /// `http://ip:port/`.
    pub url: String,
    /// The `Server` header's part before the first `/`.
    pub result: Result<String, ScoutError>,
}

/// `http://<ip>:<port>/`: Swift writes the ip bare, even an IPv6 one.
pub fn base_url(host: &Host) -> String {
    format!("http://{}:{}/", host.0, host.1)
}

/// Sends the requests of one check to all hosts.
#[derive(Clone)]
pub struct Scout {
    timeout: Duration,
    pool: Arc<Semaphore>,
}

impl Scout {
    /// `timeout` bounds each host's whole exchange.
    pub fn new(timeout: Duration) -> Scout {
        Scout { timeout, pool: Arc::new(Semaphore::new(POOL_SIZE)) }
    }

    /// `GET /recon/<recon_type>` from every host; answers in `hosts` order.
    pub async fn recon(&self, hosts: &[Host], recon_type: &str) -> Vec<Scouted> {
        let mut tasks = Vec::with_capacity(hosts.len());
        for host in hosts {
            let (scout, host, path) = (self.clone(), host.clone(), format!("/recon/{recon_type}"));
            tasks.push(tokio::spawn(async move {
                let _permit = scout.pool.acquire().await;
                let url = format!("http://{}:{}{}", host.0, host.1, path);
                let ts_start = crate::format::now();
                let result = match scout.exchange(&host, Method::GET, &path, true).await {
                    Ok((status, _, body)) if status.is_success() => parse_json(&body),
                    Ok((status, _, _)) => Err(http_error(status)),
                    Err(e) => Err(e),
                };
                let ts_end = crate::format::now();
                Scouted { host, url, result, ts_start, ts_end }
            }));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (task, host) in tasks.into_iter().zip(hosts) {
            out.push(task.await.unwrap_or_else(|e| Scouted {
                host: host.clone(),
                url: format!("http://{}:{}/recon/{recon_type}", host.0, host.1),
                result: Err(ScoutError::failed(format!("internal error: {e}"))),
                ts_start: 0.0,
                ts_end: 0.0,
            }));
        }
        out
    }

    /// `OPTIONS /` to every host, for the `Server` header; answers in
    /// `hosts` order.
    pub async fn server_types(&self, hosts: &[Host]) -> Vec<ServerTypeAnswer> {
        let mut tasks = Vec::with_capacity(hosts.len());
        for host in hosts {
            let (scout, host) = (self.clone(), host.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = scout.pool.acquire().await;
                let result = match scout.exchange(&host, Method::OPTIONS, "/", false).await {
                    Ok((status, headers, _)) if status == StatusCode::OK => server_type(&headers),
                    Ok((status, _, _)) => Err(http_error(status)),
                    Err(e) => Err(e),
                };
                ServerTypeAnswer { url: base_url(&host), host, result }
            }));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (task, host) in tasks.into_iter().zip(hosts) {
            out.push(task.await.unwrap_or_else(|e| ServerTypeAnswer {
                host: host.clone(),
                url: base_url(host),
                result: Err(ScoutError::failed(format!("internal error: {e}"))),
            }));
        }
        out
    }

    /// One request on a fresh connection, within the timeout. The body is
    /// read only when `read_body` (OPTIONS answers carry none we need).
    async fn exchange(
        &self,
        host: &Host,
        method: Method,
        path: &str,
        read_body: bool,
    ) -> Result<(StatusCode, HeaderMap, Bytes), ScoutError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        // urllib reports connect failures as URLError (`<urlopen error
        // ...>`) and a read that times out as a bare `timed out`.
        let stream = match tokio::time::timeout_at(deadline, TcpStream::connect((host.0.as_str(), host.1))).await {
            Err(_) => return Err(ScoutError::failed("<urlopen error timed out>")),
            Ok(Err(e)) => return Err(ScoutError::failed(format!("<urlopen error {}>", io_error_text(&e)))),
            Ok(Ok(s)) => s,
        };
        let work = async {
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| ScoutError::failed(error_chain(&e)))?;
            let conn = tokio::spawn(conn);
            let authority = if host.0.contains(':') { format!("[{}]:{}", host.0, host.1) } else { format!("{}:{}", host.0, host.1) };
            let req = Request::builder()
                .method(method)
                .uri(path)
                .header(http::header::HOST, authority)
                .header(http::header::USER_AGENT, "swift-recon")
                .header(http::header::CONNECTION, "close")
                .body(Empty::<Bytes>::new())
                .map_err(|e| ScoutError::failed(e.to_string()))?;
            let resp = sender.send_request(req).await.map_err(|e| ScoutError::failed(error_chain(&e)))?;
            let (parts, body) = resp.into_parts();
            let body = if read_body {
                Limited::new(body, BODY_LIMIT)
                    .collect()
                    .await
                    .map_err(|e| ScoutError::failed(format!("reading the response: {e}")))?
                    .to_bytes()
            } else {
                Bytes::new()
            };
            conn.abort();
            Ok((parts.status, parts.headers, body))
        };
        match tokio::time::timeout_at(deadline, work).await {
            Ok(r) => r,
            Err(_) => Err(ScoutError::failed("timed out")),
        }
    }
}

/// The `Server` header's type part (`object-server` of
/// `object-server/2.38.3`). Swift crashes on a 200 without the header; we
/// report it for that host.
fn server_type(headers: &HeaderMap) -> Result<String, ScoutError> {
    match headers.get(http::header::SERVER) {
        None => Err(ScoutError { status: 200, message: "no Server header in the OPTIONS response".into() }),
        Some(v) => {
            let text = String::from_utf8_lossy(v.as_bytes());
            Ok(text.split('/').next().unwrap_or_default().to_string())
        }
    }
}

/// Swift's urllib `HTTPError` text: `HTTP Error 503: Service Unavailable`.
fn http_error(status: StatusCode) -> ScoutError {
    ScoutError {
        status: i32::from(status.as_u16()),
        message: format!("HTTP Error {}: {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
    }
}

/// The body as JSON; anything else is reported for the host (Swift would
/// stop with a traceback).
fn parse_json(body: &[u8]) -> Result<Value, ScoutError> {
    serde_json::from_slice(body).map_err(|e| ScoutError::failed(format!("invalid JSON in the response: {e}")))
}

/// An OS error as Python shows it: `[Errno 111] Connection refused`.
fn io_error_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let text = e.to_string();
            let suffix = format!(" (os error {code})");
            format!("[Errno {code}] {}", text.strip_suffix(&suffix).unwrap_or(&text))
        }
        None => e.to_string(),
    }
}

/// An error with its causes, `outer: inner`, so a hyper parse error says
/// what was wrong with the answer.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_like_urllib() {
        assert_eq!(http_error(StatusCode::SERVICE_UNAVAILABLE).message, "HTTP Error 503: Service Unavailable");
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(io_error_text(&e), "[Errno 111] Connection refused");
        let mut h = HeaderMap::new();
        h.insert(http::header::SERVER, "object-server/2.38.3".parse().unwrap());
        assert_eq!(server_type(&h).unwrap(), "object-server");
        assert!(server_type(&HeaderMap::new()).is_err());
        assert!(parse_json(b"<html>").is_err());
        assert_eq!(parse_json(b"1.5").unwrap(), serde_json::json!(1.5));
    }
}
