//! One object PUT to one object server, over a plain HTTP/1.1 connection:
//! headers with `Expect: 100-continue`, wait for `100 Continue` (a final
//! status instead means the node refused, e.g. 507, and a handoff can take
//! its place before any data was sent), then the body in chunked encoding,
//! then the final status. hyper's client cannot wait for `100 Continue`,
//! which is why this is written against a `TcpStream` (Swift does the same
//! with its `bufferedhttp`).
//!
//! A connection whose PUT ended cleanly (a final answer read whole, no
//! `Connection: close`) goes back to a [`PutterPool`] for the next PUT to
//! the same server: that saves a TCP handshake and teardown per replica.
//! A pooled connection is checked before reuse (any byte or EOF waiting on
//! it, or age, discards it), and a PUT whose reused connection fails before
//! any answer came back is tried once more on a new one.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A node's final answer to a PUT.
#[derive(Debug, Clone)]
pub struct PutAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// HTTP/1.1 (an HTTP/1.0 answer closes its connection).
    pub http11: bool,
}

/// Why a node could not take (or finish) the PUT.
#[derive(Debug)]
pub enum PutError {
    /// Connecting, writing or reading failed or timed out.
    Io(String),
    /// The node answered with a final status instead of `100 Continue`.
    Refused(PutAnswer),
}

/// A connection that has accepted the PUT's headers.
pub struct Putter {
    stream: TcpStream,
    node_timeout: Duration,
    /// Where the connection goes back when the PUT ends cleanly.
    pool: Arc<PutterPool>,
    addr: String,
}

/// Idle object-server connections, by `ip:port`.
#[derive(Default)]
pub struct PutterPool {
    idle: Mutex<HashMap<String, Vec<(TcpStream, Instant)>>>,
}

/// Idle connections kept per object server.
const MAX_IDLE_PER_NODE: usize = 64;

/// How long an idle connection is kept: well inside the object server's
/// keep-alive timeout, as for the other backend requests.
const MAX_IDLE_FOR: Duration = common::backend::BACKEND_POOL_IDLE;

impl PutterPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(TcpStream, Instant)>>> {
        self.idle.lock().expect("putter pool lock poisoned")
    }

    /// The most recently used idle connection to `addr` that is still
    /// open and has nothing waiting to be read.
    fn checkout(&self, addr: &str) -> Option<TcpStream> {
        loop {
            let (stream, since) = self.lock().get_mut(addr)?.pop()?;
            if since.elapsed() >= MAX_IDLE_FOR {
                // The rest were idle longer still.
                self.lock().remove(addr);
                return None;
            }
            // Readable now means the server closed it (EOF) or sent what
            // no request asked for: either way it cannot carry a PUT.
            let mut probe = [0u8; 1];
            match stream.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(stream),
                _ => continue,
            }
        }
    }

    fn checkin(&self, addr: String, stream: TcpStream) {
        let mut idle = self.lock();
        let list = idle.entry(addr).or_default();
        list.retain(|(_, since)| since.elapsed() < MAX_IDLE_FOR);
        if list.len() < MAX_IDLE_PER_NODE {
            list.push((stream, Instant::now()));
        }
    }

    /// Idle connections to `addr` (for tests).
    pub fn idle_count(&self, addr: &str) -> usize {
        self.lock().get(addr).map_or(0, Vec::len)
    }
}

const MAX_HEAD: usize = 64 * 1024;

async fn read_head(stream: &mut TcpStream, timeout: Duration) -> Result<PutAnswer, PutError> {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut byte = [0u8; 1024];
        // Read until the blank line; responses to PUTs carry small heads.
        let n = tokio::time::timeout(timeout, stream.peek(&mut byte))
            .await
            .map_err(|_| PutError::Io("timeout waiting for response".into()))?
            .map_err(|e| PutError::Io(e.to_string()))?;
        if n == 0 {
            return Err(PutError::Io("connection closed".into()));
        }
        let take = match find_head_end(&buf, &byte[..n]) {
            Some(end) => end,
            None => n,
        };
        let mut chunk = vec![0u8; take];
        stream.read_exact(&mut chunk).await.map_err(|e| PutError::Io(e.to_string()))?;
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_HEAD {
            return Err(PutError::Io("response head too large".into()));
        }
        let mut headers = [httparse::EMPTY_HEADER; 256];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let status = StatusCode::from_u16(resp.code.unwrap_or(500)).map_err(|e| PutError::Io(e.to_string()))?;
                let mut map = HeaderMap::new();
                for h in resp.headers.iter() {
                    if let (Ok(name), Ok(value)) = (http::HeaderName::from_bytes(h.name.as_bytes()), http::HeaderValue::from_bytes(h.value))
                    {
                        map.append(name, value);
                    }
                }
                return Ok(PutAnswer { status, headers: map, http11: resp.version == Some(1) });
            }
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return Err(PutError::Io(format!("bad response: {e}"))),
        }
    }
}

/// How many bytes of `new` complete a head begun in `old` (through the
/// `\r\n\r\n`), if it ends there.
fn find_head_end(old: &[u8], new: &[u8]) -> Option<usize> {
    let mut joined = old[old.len().saturating_sub(3)..].to_vec();
    let offset = joined.len();
    joined.extend_from_slice(new);
    joined.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4 - offset)
}

/// The PUT's request head. Header values go out as the client sent them:
/// bytes, not text (object metadata need not be UTF-8).
fn request_head(addr: &str, path: &str, headers: &HeaderMap) -> Vec<u8> {
    let mut head: Vec<u8> = format!(
        "PUT {} HTTP/1.1\r\nHost: {addr}\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n",
        common::http::quote_path(path)
    )
    .into_bytes();
    for (name, value) in headers {
        if matches!(name.as_str(), "host" | "expect" | "transfer-encoding" | "content-length" | "connection") {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Discards a response body whose length the headers give (up to 1 MiB);
/// true when all of it was read, so the connection may carry another
/// request.
async fn drain_body(stream: &mut TcpStream, headers: &HeaderMap, timeout: Duration) -> bool {
    let Some(len) = headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok())
    else {
        return false;
    };
    if len > 1 << 20 {
        return false;
    }
    let mut left = len;
    let mut buf = [0u8; 8192];
    while left > 0 {
        let want = (left as usize).min(buf.len());
        match tokio::time::timeout(timeout, stream.read(&mut buf[..want])).await {
            Ok(Ok(n)) if n > 0 => left -= n as u64,
            _ => return false,
        }
    }
    true
}

/// Whether the server means to keep the connection open after `answer`.
fn keeps_alive(answer: &PutAnswer) -> bool {
    answer.http11
        && !answer
            .headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("close"))
        && !answer.headers.contains_key(http::header::TRANSFER_ENCODING)
}

impl Putter {
    /// Sends the request head on a pooled connection to the node, or a new
    /// one; waits for `100 Continue`.
    #[allow(clippy::too_many_arguments)]
    pub async fn connect(
        pool: &Arc<PutterPool>,
        ip: &str,
        port: u16,
        path: &str,
        headers: &HeaderMap,
        conn_timeout: Duration,
        node_timeout: Duration,
    ) -> Result<Putter, PutError> {
        let addr = if ip.contains(':') && !ip.starts_with('[') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") };
        let head = request_head(&addr, path, headers);
        if let Some(stream) = pool.checkout(&addr) {
            match Putter::start(stream, &head, node_timeout).await {
                Ok(stream) => return Ok(Putter { stream, node_timeout, pool: pool.clone(), addr }),
                Err(PutError::Refused(a)) => return Err(PutError::Refused(a)),
                // The server closed it as we reused it: no answer came
                // back, so a new connection may carry the request.
                Err(PutError::Io(_)) => {}
            }
        }
        let tcp = tokio::time::timeout(conn_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| PutError::Io(format!("connect to {addr} timed out")))?
            .map_err(|e| PutError::Io(format!("connect to {addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let stream = Putter::start(tcp, &head, node_timeout).await?;
        Ok(Putter { stream, node_timeout, pool: pool.clone(), addr })
    }

    /// Sends `head` and reads the first answer: `100 Continue` or refusal.
    async fn start(mut stream: TcpStream, head: &[u8], node_timeout: Duration) -> Result<TcpStream, PutError> {
        tokio::time::timeout(node_timeout, stream.write_all(head))
            .await
            .map_err(|_| PutError::Io("timeout sending headers".into()))?
            .map_err(|e| PutError::Io(e.to_string()))?;
        let first = read_head(&mut stream, node_timeout).await?;
        if first.status == StatusCode::CONTINUE {
            Ok(stream)
        } else {
            Err(PutError::Refused(first))
        }
    }

    /// Sends one chunk of the body.
    pub async fn send(&mut self, data: &Bytes) -> Result<(), PutError> {
        if data.is_empty() {
            return Ok(());
        }
        let head = format!("{:x}\r\n", data.len());
        let fut = async {
            let s = &mut self.stream;
            s.write_all(head.as_bytes()).await?;
            s.write_all(data).await?;
            s.write_all(b"\r\n").await
        };
        tokio::time::timeout(self.node_timeout, fut)
            .await
            .map_err(|_| PutError::Io("timeout sending data".into()))?
            .map_err(|e| PutError::Io(e.to_string()))
    }

    /// Ends the body and reads the final status.
    pub async fn finish(mut self) -> Result<PutAnswer, PutError> {
        tokio::time::timeout(self.node_timeout, self.stream.write_all(b"0\r\n\r\n"))
            .await
            .map_err(|_| PutError::Io("timeout finishing".into()))?
            .map_err(|e| PutError::Io(e.to_string()))?;
        let answer = read_head(&mut self.stream, self.node_timeout).await?;
        if drain_body(&mut self.stream, &answer.headers, self.node_timeout).await && keeps_alive(&answer) {
            self.pool.checkin(self.addr, self.stream);
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in object server: answers each PUT's head with `100
    /// Continue`, reads the chunked body to its end, then answers 201 with
    /// `extra` headers; counts the connections it accepts. A connection is
    /// closed after `close_after` requests.
    async fn fake_object_server(extra: &'static str, close_after: usize) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    for _ in 0..close_after {
                        // The head, then the body up to its last chunk.
                        for end in [&b"\r\n\r\n"[..], &b"0\r\n\r\n"[..]] {
                            while !seen.windows(end.len()).any(|w| w == end) {
                                let n = s.read(&mut buf).await.unwrap();
                                if n == 0 {
                                    return;
                                }
                                seen.extend_from_slice(&buf[..n]);
                            }
                            let at = seen.windows(end.len()).position(|w| w == end).unwrap() + end.len();
                            seen.drain(..at);
                            if end == b"\r\n\r\n" {
                                s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.unwrap();
                            }
                        }
                        let answer = format!("HTTP/1.1 201 Created\r\nContent-Length: 2\r\n{extra}\r\nok");
                        s.write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        (port, accepted)
    }

    async fn put(pool: &Arc<PutterPool>, port: u16) -> StatusCode {
        let t = Duration::from_secs(5);
        let mut putter = Putter::connect(pool, "127.0.0.1", port, "/sda/1/a/c/o", &HeaderMap::new(), t, t).await.unwrap();
        putter.send(&Bytes::from_static(b"body")).await.unwrap();
        putter.finish().await.unwrap().status
    }

    #[tokio::test]
    async fn a_connection_carries_the_next_put_to_its_server() {
        let (port, accepted) = fake_object_server("", usize::MAX).await;
        let pool = Arc::new(PutterPool::default());
        for _ in 0..3 {
            assert_eq!(put(&pool, port).await, StatusCode::CREATED);
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(pool.idle_count(&format!("127.0.0.1:{port}")), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closes_is_not_reused() {
        // Told so: `Connection: close`.
        let (port, accepted) = fake_object_server("Connection: close\r\n", usize::MAX).await;
        let pool = Arc::new(PutterPool::default());
        assert_eq!(put(&pool, port).await, StatusCode::CREATED);
        assert_eq!(pool.idle_count(&format!("127.0.0.1:{port}")), 0);
        assert_eq!(put(&pool, port).await, StatusCode::CREATED);
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);

        // Closed while idle, without a word: the next PUT finds it closed
        // (or fails on it) and goes out on a new connection.
        let (port, accepted) = fake_object_server("", 1).await;
        let addr = format!("127.0.0.1:{port}");
        assert_eq!(put(&pool, port).await, StatusCode::CREATED);
        assert_eq!(pool.idle_count(&addr), 1);
        assert_eq!(put(&pool, port).await, StatusCode::CREATED);
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn head_end_spans_reads() {
        assert_eq!(find_head_end(b"", b"HTTP/1.1 100 Continue\r\n\r\nrest"), Some(25));
        assert_eq!(find_head_end(b"HTTP/1.1 100 Continue\r\n\r", b"\nrest"), Some(1));
        assert_eq!(find_head_end(b"", b"HTTP/1.1 100"), None);
    }
}
