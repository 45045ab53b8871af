//! Talking to storage servers: reads that fail over from node to node, and
//! writes that go to every primary (handoffs replacing failed ones) and
//! answer with the best response a quorum agrees on.

use crate::nodes::{quorum_size, ErrorLimiter};
use bytes::Bytes;
use common::backend::{read_body, BackendClient};
use common::http::{self as h, Body};
use http::{HeaderMap, Method, Response, StatusCode};
use hyper::body::Incoming;
use ring::{Device, Ring};
use std::time::Duration;

/// A backend's whole (small) answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Backend plumbing shared by the controllers.
pub struct Backends {
    pub client: BackendClient,
    /// Idle connections for object PUTs (which hyper's client cannot make).
    pub putters: std::sync::Arc<crate::putter::PutterPool>,
    pub errors: ErrorLimiter,
    pub node_timeout: Duration,
    pub request_node_count_factor: usize,
}

/// Bodies of account/container answers are small (listings are capped at
/// 10,000 names of at most 1 KiB).
pub(crate) const MAX_SMALL_BODY: usize = 64 * 1024 * 1024;

impl Backends {
    /// Sends one request to one node and reads the whole answer; errors and
    /// 5xx count against the node, 507 error-limits it.
    pub async fn ask(&self, node: &Device, method: Method, path: &str, headers: HeaderMap, body: Bytes) -> Option<Answer> {
        self.ask_query(node, method, path, "", headers, body).await
    }

    /// `ask` with a query string (encoded, without `?`).
    pub async fn ask_query(
        &self,
        node: &Device,
        method: Method,
        path: &str,
        query: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Option<Answer> {
        let resp = self
            .client
            .request_with_query(method, &node.ip, node.port, &format!("/{}/{}", node.device, path), query, headers, h::full(body))
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.errors.error(node);
                common::log::warning(&format!("ERROR with {}:{}/{}: {e}", node.ip, node.port, node.device));
                return None;
            }
        };
        match read_body(resp, MAX_SMALL_BODY, self.node_timeout).await {
            Ok((status, headers, body)) => {
                self.note_status(node, status);
                Some(Answer { status, headers, body })
            }
            Err(e) => {
                self.errors.error(node);
                common::log::warning(&format!("ERROR reading from {}:{}/{}: {e}", node.ip, node.port, node.device));
                None
            }
        }
    }

    fn note_status(&self, node: &Device, status: StatusCode) {
        if status == StatusCode::INSUFFICIENT_STORAGE {
            self.errors.limit(node);
        } else if status.is_server_error() {
            self.errors.error(node);
        }
    }

    /// A read (GET/HEAD) of a small resource through the one reader
    /// (`getter::GetOrHead`); `path` is `<part>/<account>[/<container>]`.
    /// Returns the answer to pass on: the success, else 404 when a node
    /// said 404, else 503 (or another 4xx about the request).
    #[allow(clippy::too_many_arguments)]
    pub async fn read(&self, ring: &Ring, part: u32, method: Method, path: &str, query: &str, headers: &HeaderMap, newest: bool) -> Answer {
        crate::getter::GetOrHead {
            backends: self,
            ring,
            part,
            method,
            path: path.to_string(),
            query: query.to_string(),
            headers: headers.clone(),
            newest,
        }
        .read()
        .await
    }

    /// A write to every primary of `part`; a primary that fails (no answer,
    /// 5xx, 507) is replaced by the next handoff. `headers_for(i)` gives the
    /// headers of the i-th request (so account/container update headers can
    /// be spread over the nodes). Returns every final answer.
    pub async fn write(
        &self,
        ring: &Ring,
        part: u32,
        method: Method,
        path: &str,
        headers_for: impl Fn(usize) -> HeaderMap,
        body: Bytes,
    ) -> Vec<Answer> {
        let table = ring.table();
        let primaries: Vec<Device> = table.part_nodes(part).into_iter().cloned().collect();
        let mut handoffs = table.handoffs(part).cloned().collect::<Vec<_>>().into_iter().filter(|d| !self.errors.is_limited(d));
        let handoffs = std::sync::Mutex::new(&mut handoffs);
        let futs = primaries.iter().enumerate().map(|(i, primary)| {
            let headers = headers_for(i);
            let handoffs = &handoffs;
            let method = method.clone();
            let body = body.clone();
            async move {
                let mut node = primary.clone();
                let mut tries = 0;
                loop {
                    tries += 1;
                    let ans = if self.errors.is_limited(&node) {
                        None
                    } else {
                        self.ask(&node, method.clone(), path, headers.clone(), body.clone()).await
                    };
                    match ans {
                        Some(a) if !(a.status.is_server_error()) => return a,
                        last => {
                            let next = handoffs.lock().expect("handoff lock").next();
                            match next {
                                Some(n) if tries < 4 => node = n,
                                _ => {
                                    return last.unwrap_or(Answer {
                                        status: StatusCode::SERVICE_UNAVAILABLE,
                                        headers: HeaderMap::new(),
                                        body: Bytes::new(),
                                    })
                                }
                            }
                        }
                    }
                }
            }
        });
        // Every node is waited for (each within node_timeout): dropping a
        // slow account/container write would cancel it on that node.
        futures_join_all(futs).await
    }
}

/// Runs futures concurrently and collects their outputs in order.
pub async fn futures_join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future finished")).collect()
}

/// Runs `futs` concurrently until all finish, or until `quorum_reached`
/// says the finished ones already decide the answer and `grace` (Swift's
/// `post_quorum_timeout`) has passed since; stragglers are no longer
/// waited for (`None`). Pass spawned tasks' handles so that stragglers
/// still complete in the background, as Swift's do.
pub async fn join_quorum<F: std::future::Future>(
    futs: impl IntoIterator<Item = F>,
    quorum_reached: impl Fn(&[Option<F::Output>]) -> bool,
    grace: Duration,
) -> Vec<Option<F::Output>> {
    let mut set: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    let mut deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if !pending {
            return std::task::Poll::Ready(());
        }
        if deadline.is_none() && quorum_reached(&out) {
            deadline = Some(Box::pin(tokio::time::sleep(grace)));
        }
        match deadline.as_mut() {
            Some(d) => std::future::Future::poll(d.as_mut(), cx),
            None => std::task::Poll::Pending,
        }
    })
    .await;
    out
}

/// Whether the answers so far contain a quorum of one status class.
pub fn has_quorum(answers: &[Option<Answer>], quorum: usize) -> bool {
    let done: Vec<Answer> = answers.iter().flatten().cloned().collect();
    best_response(&done, quorum).is_some()
}

/// Swift's `best_response`: the first status class (2xx, 3xx, 4xx) that
/// `quorum` answers share wins, with its highest status; otherwise 503.
/// Returns the index of the winning answer.
pub fn best_response(answers: &[Answer], quorum: usize) -> Option<usize> {
    for class in [200u16, 300, 400] {
        let in_class: Vec<usize> = (0..answers.len()).filter(|&i| (class..class + 100).contains(&answers[i].status.as_u16())).collect();
        if in_class.len() >= quorum {
            return in_class.into_iter().max_by_key(|&i| answers[i].status.as_u16());
        }
    }
    None
}

/// The quorum for `n` nodes (`(n + 1) / 2`).
pub fn quorum(n: usize) -> usize {
    quorum_size(n)
}

/// Turns a streamed backend response into a client response body; each
/// chunk must arrive within `node_timeout`.
pub fn stream_body(resp: Response<Incoming>, node_timeout: Duration) -> (http::response::Parts, Body) {
    use http_body_util::BodyExt;
    let (parts, body) = resp.into_parts();
    (parts, common::backend::TimeoutBody::new(body, node_timeout).boxed())
}
