//! A trivial Swift-shaped HTTP endpoint that does no work: tempauth login,
//! then 201 for PUT, an empty 200 for GET/HEAD, 204 for DELETE. It exists
//! to measure the bench itself (how many requests/s one process can drive,
//! `examples/fast_endpoint.rs`) and to test failure accounting with faults
//! injected at exact request numbers.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Faults to inject, by the request's number among requests of its verb
/// (1-based, counted by the server, so the totals are exact).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Every n-th object PUT is answered with this status.
    pub put_status_every: Option<(u64, StatusCode)>,
    /// Every n-th GET has its connection closed without an answer.
    pub drop_get_every: Option<u64>,
    /// Hand out this storage URL at login instead of our own (e.g. a port
    /// nothing listens on, to make every request a connect error).
    pub storage_url: Option<String>,
}

/// Object size the endpoint claims for GETs (it never stores anything).
#[derive(Default)]
struct State {
    addr: Option<SocketAddr>,
    faults: Faults,
    puts: AtomicU64,
    gets: AtomicU64,
    object_size: u64,
}

/// Serves on `listener` until the task is dropped. GET answers carry
/// `object_size` bytes of zeros (one shared buffer), like a stored object.
pub async fn serve(listener: TcpListener, faults: Faults, object_size: u64) {
    let state = Arc::new(State { addr: listener.local_addr().ok(), faults, object_size, ..State::default() });
    let body = Bytes::from(vec![0u8; object_size as usize]);
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let (state, body) = (state.clone(), body.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(state.clone(), body.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// The connection-dropping fault: an error from the service makes hyper
/// close the connection without writing a response.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

async fn answer(state: Arc<State>, body: Bytes, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Dropped> {
    let empty = || Full::new(Bytes::new());
    let path = req.uri().path();
    if path.starts_with("/auth/") {
        let addr = state.addr.map_or_else(|| "127.0.0.1:0".to_string(), |a| a.to_string());
        let storage_url = state.faults.storage_url.clone().unwrap_or_else(|| format!("http://{addr}/v1/AUTH_bench"));
        return Ok(Response::builder()
            .header("x-storage-url", storage_url)
            .header("x-auth-token", "AUTH_tkbench")
            .body(empty())
            .unwrap_or_default());
    }
    // /v1/AUTH_bench/container/object: 4 segments after the leading slash.
    let is_object = path.split('/').filter(|s| !s.is_empty()).count() >= 4;
    let method = req.method().clone();
    // Read the whole request body before answering, as a real server does:
    // answering early makes hyper close the connection under the client.
    let mut body_in = req.into_body();
    while let Some(frame) = body_in.frame().await {
        if frame.is_err() {
            return Err(Dropped);
        }
    }
    let (status, body) = match method {
        Method::PUT if is_object => {
            let n = state.puts.fetch_add(1, Ordering::Relaxed) + 1;
            match state.faults.put_status_every {
                Some((every, status)) if n.checked_rem(every) == Some(0) => (status, empty()),
                _ => (StatusCode::CREATED, empty()),
            }
        }
        Method::PUT => (StatusCode::CREATED, empty()),
        Method::GET => {
            let n = state.gets.fetch_add(1, Ordering::Relaxed) + 1;
            if state.faults.drop_get_every.is_some_and(|every| n.checked_rem(every) == Some(0)) {
                return Err(Dropped);
            }
            (StatusCode::OK, Full::new(body))
        }
        Method::HEAD => {
            let mut resp = Response::new(empty());
            resp.headers_mut().insert(http::header::CONTENT_LENGTH, state.object_size.into());
            return Ok(resp);
        }
        Method::DELETE => (StatusCode::NO_CONTENT, empty()),
        _ => (StatusCode::METHOD_NOT_ALLOWED, empty()),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    Ok(resp)
}
