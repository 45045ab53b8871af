//! Object reads that survive a storage node failing mid-body: the rest of
//! the object is fetched from the next node with a `Range` from the first
//! byte not yet sent and `If-Match` on the same ETag (Swift's
//! `recoverable_node_timeout` resumption), so the client gets the whole
//! object, or an error, never a silently short one.

use crate::proxy::Proxy;
use bytes::Bytes;
use common::http::{self as h, Body, BoxError};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use ring::Device;
use std::sync::Arc;

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
        let mut nodes = r.nodes.into_iter();
        loop {
            match body.frame().await {
                None => return,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        offset += data.len() as u64;
                        if tx.send(Ok(data)).await.is_err() {
                            return; // the client went away
                        }
                    }
                }
                Some(Err(e)) => {
                    let mut resumed = None;
                    if offset <= r.end {
                        for node in nodes.by_ref() {
                            let mut headers = r.headers.clone();
                            let range = format!("bytes={offset}-{}", r.end);
                            headers.insert(http::header::RANGE, HeaderValue::from_str(&range).expect("ASCII"));
                            if let Ok(v) = HeaderValue::from_str(&r.etag) {
                                headers.insert(http::header::IF_MATCH, v);
                            }
                            let path = format!("/{}{}", node.device, r.path);
                            match p.backends.client.request(Method::GET, &node.ip, node.port, &path, headers, h::empty()).await {
                                Ok(resp) if resp.status() == StatusCode::PARTIAL_CONTENT => {
                                    common::log::warning(&format!(
                                        "resuming a GET at byte {offset} from {}:{}/{}",
                                        node.ip, node.port, node.device
                                    ));
                                    resumed = Some(crate::backend::stream_body(resp, p.settings.node_timeout).1);
                                    break;
                                }
                                Ok(_) => {}
                                Err(_) => p.backends.errors.error(&node),
                            }
                        }
                    }
                    match resumed {
                        Some(b) => body = b,
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
