//! Object reads that survive a storage node failing mid-body: the rest of
//! the object is fetched from the next node with `If-Match` on the same
//! ETag (Swift's `recoverable_node_timeout` resumption), so the client gets
//! the whole object, or an error, never a silently short one.
//!
//! A ranged read resumes with a `Range` from the first byte not yet sent.
//! A whole-object read does not trust the bytes already sent: an object
//! server breaks off a whole-object body whose bytes do not hash to the
//! stored ETag (rot on its disk), after sending all but the last chunk of
//! them. So the next node's copy is read from its start, its first bytes are
//! compared (by a fast 128-bit hash) with what the client has, and only if
//! they agree does the rest follow; otherwise the client's response is
//! broken off too, never completed with a bad prefix. The price, paid only
//! when a node fails, is reading that prefix again from the next node.

use crate::proxy::Proxy;
use bytes::Bytes;
use common::http::{self as h, Body, BoxError};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use ring::Device;
use std::sync::Arc;
use xxhash_rust::xxh3::Xxh3Default;

/// A body fed by a task through a bounded channel: back-pressure reaches
/// the task.
pub struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, BoxError>>,
}

impl ChannelBody {
    /// A body and the sender that feeds it (a few chunks of buffering).
    pub fn channel() -> (tokio::sync::mpsc::Sender<Result<Bytes, BoxError>>, ChannelBody) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        (tx, ChannelBody { rx })
    }
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx).map(|item| item.map(|r| r.map(http_body::Frame::data)))
    }
}

/// Where the bytes being streamed sit in the object, and how to ask
/// another node for the rest.
pub struct Resume {
    /// First byte of the object this body starts at.
    pub start: u64,
    /// Last byte (inclusive) this body ends at.
    pub end: u64,
    pub etag: String,
    /// Nodes not yet tried, in order.
    pub nodes: Vec<Device>,
    /// Backend request path without the device: `/<part>/<a>/<c>/<o>`.
    pub path: String,
    /// The backend headers of the original request (Range is replaced).
    pub headers: HeaderMap,
    /// The body is the whole object (a 200): resume only from a replica
    /// whose first bytes match those already sent.
    pub whole_object: bool,
}

/// The byte span a 200 or single-range 206 response carries, from its
/// `Content-Length` and `Content-Range`.
pub fn span(status: StatusCode, headers: &HeaderMap) -> Option<(u64, u64)> {
    let len: u64 = h::header_str(headers, "content-length")?.parse().ok()?;
    if len == 0 {
        return None;
    }
    match status {
        StatusCode::OK => Some((0, len - 1)),
        StatusCode::PARTIAL_CONTENT => {
            let range = h::header_str(headers, "content-range")?.strip_prefix("bytes ")?;
            let (span, _) = range.split_once('/')?;
            let (a, b) = span.split_once('-')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        }
        _ => None,
    }
}

/// Wraps `body` so that an error part-way through is answered by resuming
/// from the next node.
pub fn resumable(p: Arc<Proxy>, mut body: Body, r: Resume) -> Body {
    let (tx, out) = ChannelBody::channel();
    tokio::spawn(async move {
        let mut offset = r.start;
        let mut nodes = r.nodes.iter();
        // What the client has been sent, for whole-object reads.
        let mut sent = r.whole_object.then(Xxh3Default::new);
        let mut leftover: Option<Bytes> = None;
        loop {
            let next = match leftover.take() {
                Some(data) => Some(Ok(http_body::Frame::data(data))),
                None => body.frame().await,
            };
            match next {
                None => return,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        offset += data.len() as u64;
                        if let Some(h) = sent.as_mut() {
                            h.update(&data);
                        }
                        if tx.send(Ok(data)).await.is_err() {
                            return; // the client went away
                        }
                    }
                }
                Some(Err(e)) => {
                    let mut resumed = None;
                    if offset <= r.end {
                        for node in nodes.by_ref() {
                            let attempt = match &sent {
                                Some(h) => resume_whole(&p, node, &r, offset, h.digest128()).await,
                                None => resume_range(&p, node, &r, offset).await.map(|b| (b, Bytes::new())),
                            };
                            match attempt {
                                Ok(found) => {
                                    common::log::warning(&format!(
                                        "resuming a GET at byte {offset} from {}:{}/{}",
                                        node.ip, node.port, node.device
                                    ));
                                    resumed = Some(found);
                                    break;
                                }
                                Err(Unresumable::NodeFailed) => p.backends.errors.error(node),
                                Err(Unresumable::NoCopy) => {}
                                Err(Unresumable::SentBytesDiffer) => {
                                    common::log::error(&format!(
                                        "ERROR GET {}: the {offset} bytes sent differ from the copy on {}:{}/{}; breaking off",
                                        r.path, node.ip, node.port, node.device
                                    ));
                                    break;
                                }
                            }
                        }
                    }
                    match resumed {
                        Some((b, rest)) => {
                            body = b;
                            leftover = (!rest.is_empty()).then_some(rest);
                        }
                        None => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
            }
        }
    });
    out.boxed()
}

/// Why a node could not take over a read.
enum Unresumable {
    /// It failed or timed out (counts against it).
    NodeFailed,
    /// It has no matching copy (404, 412 on the ETag, ...).
    NoCopy,
    /// Its copy starts with other bytes than the client was sent: the
    /// response must not be completed from any node.
    SentBytesDiffer,
}

/// Asks `node` for bytes `offset..=end` of the same ETag.
async fn resume_range(p: &Proxy, node: &Device, r: &Resume, offset: u64) -> Result<Body, Unresumable> {
    let range = format!("bytes={offset}-{}", r.end);
    let resp = request_copy(p, node, r, Some(&range)).await?;
    if resp.status() != StatusCode::PARTIAL_CONTENT {
        return Err(Unresumable::NoCopy);
    }
    Ok(crate::backend::stream_body(resp, p.settings.node_timeout).1)
}

/// Reads `node`'s whole copy, checking that its first `offset` bytes hash
/// to `sent` (what the client already has): returns the body positioned
/// after them and the bytes of its current chunk past them.
async fn resume_whole(p: &Proxy, node: &Device, r: &Resume, offset: u64, sent: u128) -> Result<(Body, Bytes), Unresumable> {
    let resp = request_copy(p, node, r, None).await?;
    let same_length = h::header_str(resp.headers(), "content-length").and_then(|v| v.parse::<u64>().ok()) == Some(r.end + 1);
    if resp.status() != StatusCode::OK || !same_length {
        return Err(Unresumable::NoCopy);
    }
    let mut body = crate::backend::stream_body(resp, p.settings.node_timeout).1;
    let mut hash = Xxh3Default::new();
    let mut skipped = 0u64;
    let mut rest = Bytes::new();
    while skipped < offset {
        let mut data = match body.frame().await {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(d) => d,
                Err(_) => continue,
            },
            Some(Err(_)) | None => return Err(Unresumable::NodeFailed),
        };
        let take = ((offset - skipped) as usize).min(data.len());
        rest = data.split_off(take);
        hash.update(&data);
        skipped += take as u64;
    }
    if hash.digest128() != sent {
        return Err(Unresumable::SentBytesDiffer);
    }
    Ok((body, rest))
}

/// A GET of the same object and ETag from `node`, with `range` if given.
async fn request_copy(
    p: &Proxy,
    node: &Device,
    r: &Resume,
    range: Option<&str>,
) -> Result<http::Response<hyper::body::Incoming>, Unresumable> {
    let mut headers = r.headers.clone();
    headers.remove(http::header::RANGE);
    if let Some(range) = range {
        headers.insert(http::header::RANGE, HeaderValue::from_str(range).map_err(|_| Unresumable::NoCopy)?);
    }
    if let Ok(v) = HeaderValue::from_str(&r.etag) {
        headers.insert(http::header::IF_MATCH, v);
    }
    let path = format!("/{}{}", node.device, r.path);
    p.backends.client.request(Method::GET, &node.ip, node.port, &path, headers, h::empty()).await.map_err(|_| Unresumable::NodeFailed)
}
