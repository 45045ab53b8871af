//! The HTTP side: one pooled keep-alive hyper client shared by every
//! worker, tempauth v1 login, and one request classified as a success
//! (with the bytes it moved) or exactly one [`Failure`].

use crate::stats::Failure;
use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

static X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");
static OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");

/// What a request does, and so how its response is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Container PUT (empty body).
    CreateContainer,
    /// Object PUT of the shared payload.
    Put,
    /// Object GET; the body must be exactly the payload's length.
    Get,
    /// Object HEAD.
    Head,
    /// Object or container DELETE.
    Delete,
}

/// The client every worker shares: pooled connections (one kept per
/// worker), the auth token, and the one payload all PUTs send.
#[derive(Clone)]
pub struct SwiftClient {
    http: Client<HttpConnector, Full<Bytes>>,
    token: HeaderValue,
    /// Cloning `Bytes` bumps a reference count: no PUT copies the payload.
    payload: Bytes,
    payload_len: HeaderValue,
}

/// Builds the pooled client. Keeping at least `concurrency` idle
/// connections per host means every worker finds its connection again
/// instead of reconnecting, which would make the tool the bottleneck.
pub fn http_client(concurrency: usize, connect_timeout: Duration) -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency.max(1))
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// Logs in with tempauth v1: `GET AUTH_URL` with X-Auth-User and
/// X-Auth-Key; returns the storage URL (without a trailing slash) and the
/// token. Errors say what went wrong in one line.
pub async fn authenticate(
    http: &Client<HttpConnector, Full<Bytes>>,
    auth_url: &Uri,
    user: &str,
    key: &str,
    timeout: Duration,
) -> anyhow::Result<(String, HeaderValue)> {
    let req = Request::get(auth_url.clone())
        .header("x-auth-user", HeaderValue::from_str(user).context("the user name is not a valid header value")?)
        .header("x-auth-key", HeaderValue::from_str(key).context("the key is not a valid header value")?)
        .body(Full::new(Bytes::new()))?;
    let resp = tokio::time::timeout(timeout, http.request(req))
        .await
        .map_err(|_| anyhow!("no answer from {auth_url} within {timeout:?}"))?
        .map_err(|e| anyhow!("cannot reach {auth_url}: {}", error_chain(&e)))?;
    let status = resp.status();
    let storage_url = resp.headers().get("x-storage-url").and_then(|v| v.to_str().ok()).map(str::to_string);
    let token = resp.headers().get("x-auth-token").cloned();
    if !status.is_success() {
        bail!("authentication as {user:?} at {auth_url} failed: {status}");
    }
    let storage_url = storage_url.ok_or_else(|| anyhow!("{auth_url} answered {status} without X-Storage-Url"))?;
    let token = token.ok_or_else(|| anyhow!("{auth_url} answered {status} without X-Auth-Token"))?;
    let parsed = crate::args::parse_http_url(&storage_url).map_err(|e| anyhow!("X-Storage-Url {e}"))?;
    // Object names are appended to the path: a query string would swallow them.
    if parsed.query().is_some() {
        bail!("X-Storage-Url {storage_url:?} has a query string; expected http://host[:port]/v1/ACCOUNT");
    }
    Ok((storage_url.trim_end_matches('/').to_string(), token))
}

/// hyper's errors say little at the top level ("client error (Connect)");
/// the cause chain says what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl SwiftClient {
    /// A client sending `token` on every request and `payload` on PUTs.
    pub fn new(http: Client<HttpConnector, Full<Bytes>>, token: HeaderValue, payload: Bytes) -> SwiftClient {
        let payload_len = HeaderValue::from(payload.len() as u64);
        SwiftClient { http, token, payload, payload_len }
    }

    /// Length of the payload every PUT sends and every GET must return.
    pub fn payload_len(&self) -> u64 {
        self.payload.len() as u64
    }

    /// Makes one request and reads its whole response. Returns the object
    /// bytes moved (payload sent by a PUT, body received by a GET) or why
    /// it failed. Bodies are drained frame by frame and dropped, so a
    /// large GET is never copied or buffered, and error responses are read
    /// out too so the connection goes back to the pool.
    pub async fn execute(&self, op: Op, uri: Uri) -> Result<u64, Failure> {
        let method = match op {
            Op::CreateContainer | Op::Put => Method::PUT,
            Op::Get => Method::GET,
            Op::Head => Method::HEAD,
            Op::Delete => Method::DELETE,
        };
        let mut req = Request::new(Full::new(if op == Op::Put { self.payload.clone() } else { Bytes::new() }));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        headers.insert(X_AUTH_TOKEN.clone(), self.token.clone());
        match op {
            Op::Put => {
                headers.insert(CONTENT_LENGTH, self.payload_len.clone());
                headers.insert(CONTENT_TYPE, OCTET_STREAM.clone());
            }
            Op::CreateContainer => {
                headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            }
            _ => {}
        }
        let resp = self.http.request(req).await.map_err(|e| if e.is_connect() { Failure::Connect } else { Failure::Connection })?;
        let status = resp.status();
        let mut body = resp.into_body();
        let mut received = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| Failure::Body)?;
            if let Some(data) = frame.data_ref() {
                received += data.len() as u64;
            }
        }
        if !status.is_success() {
            return Err(Failure::Status(status.as_u16()));
        }
        match op {
            Op::Put => Ok(self.payload_len()),
            Op::Get if received != self.payload_len() => Err(Failure::WrongLength),
            Op::Get => Ok(received),
            _ => Ok(0),
        }
    }
}
