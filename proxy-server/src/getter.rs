//! One reader for every GET and HEAD the proxy sends to storage servers
//! (Swift's `GetOrHeadHandler`): the nodes in ring order (primaries, then
//! handoffs, error-limited ones skipped, `request_node_count` in all), the
//! same failure rules for every caller, `X-Newest`, and a streamed body
//! whose every chunk must arrive within `node_timeout` and which can be
//! resumed from the nodes not yet tried.
//!
//! The rules, per node: no connection, a timeout or a 5xx counts against
//! the node (error limiting) and the next is tried; a 507 error-limits it
//! at once; a 404 is remembered and the next is tried; a 2xx or 3xx is the
//! answer; another 4xx (412, 416, ...) is an answer about the request and
//! ends the walk. After the last node: the first 404 if any node said so,
//! else 503. With `X-Newest` every node is asked at once and the success
//! with the newest timestamp wins.

use crate::backend::{futures_join_all, Answer, Backends, MAX_SMALL_BODY};
use bytes::Bytes;
use common::backend_headers as bh;
use common::http::{self as h, Body};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use ring::{Device, Ring};

/// A read of one resource.
pub struct GetOrHead<'a> {
    pub backends: &'a Backends,
    pub ring: &'a Ring,
    pub part: u32,
    pub method: Method,
    /// The backend path after the device: `<part>/<account>[/<c>[/<o>]]`.
    pub path: String,
    /// The query string (encoded, without `?`), or empty.
    pub query: String,
    pub headers: HeaderMap,
    /// Ask every node and serve the newest (`X-Newest`).
    pub newest: bool,
}

/// The node answer that serves the read.
pub struct Source {
    pub node: Device,
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Streamed (each chunk within `node_timeout`), or already in memory
    /// for `read`.
    pub body: Body,
    /// The nodes not tried yet, in order: where a broken body resumes.
    pub rest: Vec<Device>,
}

/// What one node said.
enum Attempt {
    /// Counted against the node; try the next.
    Failed,
    NotFound(Answer),
    /// A 4xx about the request itself: the answer.
    Refused(Answer),
    Found {
        status: StatusCode,
        headers: HeaderMap,
        body: Body,
    },
}

impl GetOrHead<'_> {
    fn nodes(&self) -> Vec<Device> {
        let replicas = self.ring.table().replica_count().ceil() as usize;
        crate::nodes::node_iter(self.ring, self.part, (replicas * self.backends.request_node_count_factor).max(1), &self.backends.errors)
    }

    /// Asks one node; `buffer` reads a (small) body whole, so that a body
    /// that fails counts against the node like any other failure.
    async fn ask(&self, node: &Device, buffer: bool) -> Attempt {
        let path = format!("/{}/{}", node.device, self.path);
        let resp = self
            .backends
            .client
            .request_with_query(self.method.clone(), &node.ip, node.port, &path, &self.query, self.headers.clone(), h::empty())
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.backends.errors.error(node);
                common::log::warning(&format!("ERROR {} from {}:{}/{}: {e}", self.method, node.ip, node.port, node.device));
                return Attempt::Failed;
            }
        };
        let status = resp.status();
        if status == StatusCode::INSUFFICIENT_STORAGE {
            self.backends.errors.limit(node);
            return Attempt::Failed;
        }
        if status.is_server_error() {
            self.backends.errors.error(node);
            return Attempt::Failed;
        }
        let small = buffer || !(status.is_success() || status.is_redirection());
        if small {
            return match common::backend::read_body(resp, MAX_SMALL_BODY, self.backends.node_timeout).await {
                Ok((status, headers, body)) => {
                    let answer = Answer { status, headers, body };
                    if status == StatusCode::NOT_FOUND {
                        Attempt::NotFound(answer)
                    } else if status.is_client_error() {
                        Attempt::Refused(answer)
                    } else {
                        Attempt::Found { status, headers: answer.headers, body: h::full(answer.body) }
                    }
                }
                Err(e) => {
                    self.backends.errors.error(node);
                    common::log::warning(&format!("ERROR reading from {}:{}/{}: {e}", node.ip, node.port, node.device));
                    Attempt::Failed
                }
            };
        }
        let (parts, body) = crate::backend::stream_body(resp, self.backends.node_timeout);
        Attempt::Found { status: parts.status, headers: parts.headers, body }
    }

    /// The answer that serves the read, or the final answer without one
    /// (404, 503, another 4xx).
    pub async fn source(&self, buffer: bool) -> Result<Source, Answer> {
        let nodes = self.nodes();
        let unavailable = || Answer { status: StatusCode::SERVICE_UNAVAILABLE, headers: HeaderMap::new(), body: Bytes::new() };
        let mut not_found: Option<Answer> = None;
        if self.newest {
            let attempts = futures_join_all(nodes.iter().map(|n| self.ask(n, buffer))).await;
            let mut refused = None;
            let mut best: Option<(Option<String>, usize, StatusCode, HeaderMap, Body)> = None;
            for (i, a) in attempts.into_iter().enumerate() {
                match a {
                    Attempt::Failed => {}
                    Attempt::NotFound(a) => {
                        not_found.get_or_insert(a);
                    }
                    Attempt::Refused(a) => {
                        refused.get_or_insert(a);
                    }
                    Attempt::Found { status, headers, body } => {
                        let ts = timestamp(&headers);
                        if best.as_ref().is_none_or(|b| ts > b.0) {
                            best = Some((ts, i, status, headers, body));
                        }
                    }
                }
            }
            return match (best, refused) {
                (Some((_, i, status, headers, body)), _) => {
                    // A resume asks for the same ETag, so an older copy
                    // among the others is passed over.
                    let rest = nodes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, n)| n.clone()).collect();
                    Ok(Source { node: nodes[i].clone(), status, headers, body, rest })
                }
                (None, Some(r)) => Err(r),
                (None, None) => Err(not_found.unwrap_or_else(unavailable)),
            };
        }
        for (i, node) in nodes.iter().enumerate() {
            match self.ask(node, buffer).await {
                Attempt::Failed => {}
                Attempt::NotFound(a) => {
                    not_found.get_or_insert(a);
                }
                Attempt::Refused(a) => return Err(a),
                Attempt::Found { status, headers, body } => {
                    return Ok(Source { node: node.clone(), status, headers, body, rest: nodes[i + 1..].to_vec() });
                }
            }
        }
        Err(not_found.unwrap_or_else(unavailable))
    }

    /// The whole (small) answer: account and container reads.
    pub async fn read(&self) -> Answer {
        match self.source(true).await {
            Ok(s) => {
                let body = s.body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
                Answer { status: s.status, headers: s.headers, body }
            }
            Err(a) => a,
        }
    }
}

/// The timestamp a node's answer is of (`X-Backend-Timestamp`, else
/// `X-Timestamp`); internal timestamps order as strings.
fn timestamp(headers: &HeaderMap) -> Option<String> {
    h::header_str(headers, bh::BACKEND_TIMESTAMP).or_else(|| h::header_str(headers, bh::TIMESTAMP)).map(str::to_string)
}
