//! One object PUT to one object server, over a plain HTTP/1.1 connection:
//! headers with `Expect: 100-continue`, wait for `100 Continue` (a final
//! status instead means the node refused, e.g. 507, and a handoff can take
//! its place before any data was sent), then the body in chunked encoding,
//! then the final status. hyper's client cannot wait for `100 Continue`,
//! which is why this is written against a `TcpStream` (Swift does the same
//! with its `bufferedhttp`).

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A node's final answer to a PUT.
#[derive(Debug, Clone)]
pub struct PutAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
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
                return Ok(PutAnswer { status, headers: map });
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

/// Discards a response body whose length the headers give.
async fn drain_body(stream: &mut TcpStream, headers: &HeaderMap, timeout: Duration) {
    let len = headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let mut left = len.min(1 << 20);
    let mut buf = [0u8; 8192];
    while left > 0 {
        let want = (left as usize).min(buf.len());
        match tokio::time::timeout(timeout, stream.read(&mut buf[..want])).await {
            Ok(Ok(n)) if n > 0 => left -= n as u64,
            _ => return,
        }
    }
}

impl Putter {
    /// Connects and sends the request head; waits for `100 Continue`.
    pub async fn connect(
        ip: &str,
        port: u16,
        path: &str,
        headers: &HeaderMap,
        conn_timeout: Duration,
        node_timeout: Duration,
    ) -> Result<Putter, PutError> {
        let addr = if ip.contains(':') && !ip.starts_with('[') { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") };
        let tcp = tokio::time::timeout(conn_timeout, TcpStream::connect(&addr))
            .await
            .map_err(|_| PutError::Io(format!("connect to {addr} timed out")))?
            .map_err(|e| PutError::Io(format!("connect to {addr}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        // Header values go out as the client sent them: bytes, not text
        // (object metadata need not be UTF-8).
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
        let mut stream = tcp;
        tokio::time::timeout(node_timeout, stream.write_all(&head))
            .await
            .map_err(|_| PutError::Io("timeout sending headers".into()))?
            .map_err(|e| PutError::Io(e.to_string()))?;
        let first = read_head(&mut stream, node_timeout).await?;
        if first.status == StatusCode::CONTINUE {
            Ok(Putter { stream, node_timeout })
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
        drain_body(&mut self.stream, &answer.headers, self.node_timeout).await;
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_spans_reads() {
        assert_eq!(find_head_end(b"", b"HTTP/1.1 100 Continue\r\n\r\nrest"), Some(25));
        assert_eq!(find_head_end(b"HTTP/1.1 100 Continue\r\n\r", b"\nrest"), Some(1));
        assert_eq!(find_head_end(b"", b"HTTP/1.1 100"), None);
    }
}
