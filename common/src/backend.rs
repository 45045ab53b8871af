//! The HTTP client servers use to talk to each other (object server →
//! container server, container server → account server, proxy → storage
//! servers): pooled keep-alive connections, connect and response timeouts.

use crate::http::{quote_path, Body};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Why a backend request produced no response.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("timeout after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Http(String),
}

/// A pooled HTTP/1.1 client for backend requests.
#[derive(Clone)]
pub struct BackendClient {
    client: Client<HttpConnector, Body>,
    node_timeout: Duration,
}

/// How long an idle pooled backend connection is kept.
pub const BACKEND_POOL_IDLE: Duration = Duration::from_secs(20);

impl BackendClient {
    /// `conn_timeout` bounds connecting; `node_timeout` bounds waiting for
    /// the response headers (callers bound body reads themselves).
    pub fn new(conn_timeout: Duration, node_timeout: Duration) -> BackendClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(conn_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            // Well inside the servers' keep-alive timeout (client_timeout,
            // 60 s by default), so an idle connection is dropped here before
            // the server closes it under a request just sent on it.
            .pool_idle_timeout(BACKEND_POOL_IDLE)
            .pool_max_idle_per_host(64)
            // 90 metadata items plus Swift's own headers exceed hyper's
            // default of 100.
            .http1_max_headers(256)
            .build(connector);
        BackendClient { client, node_timeout: node_timeout + conn_timeout }
    }

    /// How long a response may take (connect plus node timeout); callers
    /// use it to bound reading small bodies too.
    pub fn node_timeout(&self) -> Duration {
        self.node_timeout
    }

    /// Sends `method` to `http://ip:port<path>` (`path` unquoted; it is
    /// quoted here as Swift does) with `headers` and `body`.
    pub async fn request(
        &self,
        method: Method,
        ip: &str,
        port: u16,
        path: &str,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Incoming>, BackendError> {
        self.request_with_query(method, ip, port, path, "", headers, body).await
    }

    /// Like `request`, with a query string (already encoded, without `?`).
    #[allow(clippy::too_many_arguments)]
    pub async fn request_with_query(
        &self,
        method: Method,
        ip: &str,
        port: u16,
        path: &str,
        query: &str,
        headers: HeaderMap,
        body: Body,
    ) -> Result<Response<Incoming>, BackendError> {
        let host = if ip.contains(':') && !ip.starts_with('[') { format!("[{ip}]") } else { ip.to_string() };
        let q = if query.is_empty() { String::new() } else { format!("?{query}") };
        let uri = format!("http://{host}:{port}{}{q}", quote_path(path));
        let mut req = Request::builder().method(method).uri(&uri).body(body).map_err(|e| BackendError::Http(format!("{uri}: {e}")))?;
        *req.headers_mut() = headers;
        match tokio::time::timeout(self.node_timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(BackendError::Http(format!("{uri}: {e}"))),
            Err(_) => Err(BackendError::Timeout(self.node_timeout)),
        }
    }
}

/// Reads a whole (small) response body, at most `limit` bytes, within
/// `timeout`.
pub async fn read_body(resp: Response<Incoming>, limit: usize, timeout: Duration) -> Result<(StatusCode, HeaderMap, Bytes), BackendError> {
    let (parts, body) = resp.into_parts();
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => Ok((parts.status, parts.headers, collected.to_bytes())),
        Ok(Err(e)) => Err(BackendError::Http(e.to_string())),
        Err(_) => Err(BackendError::Timeout(timeout)),
    }
}

/// A streamed body whose every frame must arrive within `timeout` (Swift's
/// `node_timeout` per chunk): a stalled storage server ends the stream
/// with an error instead of holding the client forever.
pub struct TimeoutBody<B> {
    inner: B,
    timeout: Duration,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<B> TimeoutBody<B> {
    pub fn new(inner: B, timeout: Duration) -> TimeoutBody<B> {
        TimeoutBody { inner, timeout, sleep: Box::pin(tokio::time::sleep(timeout)) }
    }
}

impl<B> http_body::Body for TimeoutBody<B>
where
    B: http_body::Body + Unpin,
    B::Error: Into<crate::http::BoxError>,
{
    type Data = B::Data;
    type Error = crate::http::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match std::future::Future::poll(this.sleep.as_mut(), cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(format!("no data from the storage server for {:?}", this.timeout).into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    /// One frame, then silence.
    struct Stall(bool);

    impl http_body::Body for Stall {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::convert::Infallible>>> {
            if self.0 {
                std::task::Poll::Pending
            } else {
                self.0 = true;
                std::task::Poll::Ready(Some(Ok(http_body::Frame::data(bytes::Bytes::from_static(b"x")))))
            }
        }
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let mut body = TimeoutBody::new(Stall(false), Duration::from_millis(50));
        assert_eq!(body.frame().await.unwrap().unwrap().into_data().unwrap(), "x");
        // Nothing more comes: the next frame is an error, not a hang.
        assert!(body.frame().await.unwrap().is_err());
    }
}
