//! Object GET and HEAD: metadata headers, conditional requests, byte ranges
//! (single and `multipart/byteranges`), and a body streamed from disk in
//! `disk_chunk_size` pieces (swift/obj/server.py `GET`/`HEAD`, swob's
//! conditional and range handling).

use crate::constraints;
use crate::diskfile::{self, OpenError, OpenObject};
use crate::put::etag_list;
use crate::{ObjectServer, Target};
use bytes::Bytes;
use common::backend_headers as bh;
use common::http::{self as h, Body, BoxError};
use common::timestamp::{http_date, parse_http_date};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Frame;
use md5::{Digest, Md5};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// Swift's limits on `Range` headers (swob).
const MAX_RANGES: usize = 50;
const MAX_RANGE_OVERLAPS: usize = 2;
const MAX_NONASCENDING_RANGES: usize = 8;

/// A syntactically valid `Range: bytes=` header: `(start, end)` pairs with
/// inclusive ends as written; `None` for an open side.
pub fn parse_range(value: &str) -> Option<Vec<(Option<u64>, Option<u64>)>> {
    let v: String = value.chars().filter(|c| *c != ' ').collect();
    if v.len() < 6 || !v[..6].eq_ignore_ascii_case("bytes=") {
        return None;
    }
    let mut out = Vec::new();
    for r in v[6..].split(',') {
        let (s, e) = r.split_once('-')?;
        let start = if s.is_empty() { None } else { Some(s.parse::<u64>().ok()?) };
        let end = if e.is_empty() {
            start?;
            None
        } else {
            if !e.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let end = e.parse::<u64>().ok()?;
            if start.is_some_and(|s| end < s) {
                return None;
            }
            Some(end)
        };
        out.push((start, end));
    }
    Some(out)
}

/// Swob's `ranges_for_length`: half-open `(start, stop)` byte ranges to
/// send; an empty list means 416.
pub fn ranges_for_length(ranges: &[(Option<u64>, Option<u64>)], length: u64) -> Vec<(u64, u64)> {
    let mut all = Vec::new();
    for &(begin, end) in ranges {
        match (begin, end) {
            (None, Some(0)) => {}
            (None, Some(e)) => all.push((length.saturating_sub(e), length)),
            (Some(b), None) => {
                if b < length {
                    all.push((b, length))
                }
            }
            (Some(b), Some(e)) => {
                if b < length {
                    all.push((b, (e + 1).min(length)))
                }
            }
            (None, None) => {}
        }
    }
    if all.len() > MAX_RANGES {
        return Vec::new();
    }
    let mut overlaps = 0;
    for i in 0..all.len() {
        for j in i + 1..all.len() {
            let ((s1, e1), (s2, e2)) = (all[i], all[j]);
            if (s1 < s2 && s2 < e1) || (s1 < e2 && e2 < e1) || (s2 < s1 && s1 < e2) || (s2 < e1 && e1 < e2) {
                overlaps += 1;
                if overlaps > MAX_RANGE_OVERLAPS {
                    return Vec::new();
                }
            }
        }
    }
    let ascending = all.windows(2).all(|w| w[0] <= w[1]);
    if !ascending && all.len() >= MAX_NONASCENDING_RANGES {
        return Vec::new();
    }
    all
}

fn content_range(start: u64, stop: u64, size: u64) -> String {
    format!("bytes {}-{}/{}", start, stop - 1, size)
}

/// One piece of a response body.
enum Segment {
    Bytes(Bytes),
    File { start: u64, stop: u64 },
}

/// A response body fed through a bounded channel by a producer task, so
/// disk reads run ahead of the client by at most a few chunks.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, BoxError>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// The most one blocking read of a body takes (in whole `disk_chunk_size`
/// chunks, at least one): with the block being read, the one being sent
/// and the chunks of the one before still queued, a large GET holds at most
/// about 3 MiB, whatever the object's size. One GiB GET through the proxy,
/// by read size: 64 KiB 430 MB/s, 256 KiB 499, 512 KiB 557, 1 MiB 598.
const READ_SIZE: usize = 1 << 20;

/// Lowercase hex of an MD5 digest.
fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Streams `plan` from `file`. With `verify` (a whole-object read: the
/// stored ETag and the data file's name), the body is hashed as it goes and
/// its last chunk is held back until the hash matches: on a mismatch the
/// file is quarantined and the body ends in an error instead, so the reader
/// sees a broken transfer, never a complete one with rotten bytes.
fn stream_body(
    server: Arc<ObjectServer>,
    target: Target,
    file: std::fs::File,
    plan: Vec<Segment>,
    verify: Option<(String, String)>,
) -> Body {
    let (tx, rx) = mpsc::channel(2);
    let chunk = server.settings.disk_chunk_size;
    tokio::spawn(async move {
        let dev = target.path.device.clone();
        let mut file = Some(file);
        let mut md5 = verify.as_ref().map(|_| Md5::new());
        let mut held: Option<Bytes> = None;
        for seg in plan {
            match seg {
                Segment::Bytes(b) => {
                    if tx.send(Ok(b)).await.is_err() {
                        return;
                    }
                }
                Segment::File { start, stop } => {
                    // One trip to the blocking pool reads (and hashes)
                    // up to READ_SIZE: a trip costs two thread hand-offs,
                    // too many at one chunk a trip (see READ_SIZE). The next
                    // block is read while the last one goes out, a chunk at
                    // a time.
                    let mut off = start;
                    let mut ready: Option<Bytes> = None;
                    while off < stop || ready.is_some() {
                        let len = ((stop - off) as usize).min(chunk * (READ_SIZE / chunk).max(1));
                        let read = async {
                            if len == 0 {
                                return None;
                            }
                            let Some(f) = file.take() else {
                                return Some(Err(std::io::Error::other("object file already closed")));
                            };
                            let mut hasher = md5.take();
                            let (f, hasher, r) = server
                                .devices
                                .run(&dev, move || {
                                    let r = diskfile::read_bytes(&f, off, len);
                                    if let (Some(h), Ok(data)) = (hasher.as_mut(), &r) {
                                        h.update(data);
                                    }
                                    (f, hasher, r)
                                })
                                .await;
                            file = Some(f);
                            md5 = hasher;
                            Some(r)
                        };
                        let verifying = verify.is_some();
                        let send = send_pieces(&tx, ready.take(), chunk, verifying.then_some(&mut held));
                        let (r, sent) = tokio::join!(read, send);
                        if !sent {
                            return;
                        }
                        match r {
                            None => {}
                            Some(Ok(d)) if d.len() == len => {
                                off += len as u64;
                                ready = Some(d);
                            }
                            Some(Ok(_)) => {
                                let _ = tx.send(Err("object file shorter than expected".into())).await;
                                return;
                            }
                            Some(Err(e)) => {
                                common::log::error(&format!("ERROR reading {}: {e}", target.name));
                                let _ = tx.send(Err(Box::new(e) as BoxError)).await;
                                return;
                            }
                        }
                    }
                }
            }
        }
        let (Some(m), Some((expect, data_file))) = (md5, verify) else { return };
        let got = hex(&m.finalize());
        if got == expect {
            if let Some(last) = held {
                let _ = tx.send(Ok(last)).await;
            }
            return;
        }
        // The file rotted: quarantine it so replication brings a good copy,
        // and break the response instead of completing it.
        common::log::error(&format!("ERROR {}: ETag {expect} but body hashes to {got}", target.name));
        quarantine(&server, &target, data_file).await;
        let _ = tx.send(Err(format!("object body does not hash to its ETag {expect}").into())).await;
    });
    ChannelBody { rx }.boxed()
}

/// Sends `data` into the body a `chunk` at a time; with `held`, each piece
/// waits there until the next one comes (the last stays for the hash
/// check). False when the reader has gone.
async fn send_pieces(
    tx: &mpsc::Sender<Result<Bytes, BoxError>>,
    data: Option<Bytes>,
    chunk: usize,
    mut held: Option<&mut Option<Bytes>>,
) -> bool {
    let Some(data) = data else { return true };
    let mut at = 0;
    while at < data.len() {
        let piece = data.slice(at..(at + chunk).min(data.len()));
        at += piece.len();
        let out = match held.as_deref_mut() {
            Some(h) => h.replace(piece),
            None => Some(piece),
        };
        if let Some(out) = out {
            if tx.send(Ok(out)).await.is_err() {
                return false;
            }
        }
    }
    true
}

/// Quarantines the data file `data_file` of `target`, logging where it went.
async fn quarantine(server: &ObjectServer, target: &Target, data_file: String) {
    let loc = target.location.clone();
    let name = data_file.clone();
    match server.devices.run(&target.path.device, move || diskfile::quarantine_file(&loc, &name)).await {
        Ok(Some(to)) => {
            common::log::error(&format!("Quarantined {} ({data_file}) to {}", target.name, to.display()));
            if let Some(statsd) = &server.settings.server.statsd {
                statsd.increment("quarantines");
            }
        }
        Ok(None) => {}
        Err(e) => common::log::error(&format!("ERROR quarantining {} ({data_file}): {e}", target.name)),
    }
}

/// Checks a whole object that fits in one disk read against its stored
/// ETag before anything is sent. `Ok(None)`: the bytes do not match; the
/// file has been quarantined and the replica counts as missing.
async fn verified(
    server: &ObjectServer,
    target: &Target,
    data: Bytes,
    size: u64,
    etag: &str,
    data_file: &str,
) -> std::io::Result<Option<Bytes>> {
    if data.len() as u64 != size {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "object file shorter than expected"));
    }
    let got = hex(&Md5::digest(&data));
    if got == etag {
        return Ok(Some(data));
    }
    common::log::error(&format!("ERROR {}: ETag {etag} but body hashes to {got}", target.name));
    quarantine(server, target, data_file.to_string()).await;
    Ok(None)
}

fn not_found(ts: Option<common::timestamp::Timestamp>, headers: &HeaderMap) -> Response<Body> {
    // swob: If-Match: * on a missing object is 412.
    if h::header_str(headers, "if-match").is_some_and(|v| etag_list(v).iter().any(|t| t == "*")) {
        return h::status(StatusCode::PRECONDITION_FAILED);
    }
    let mut r = h::status(StatusCode::NOT_FOUND);
    if let Some(ts) = ts {
        r.headers_mut().insert(bh::BACKEND_TIMESTAMP, HeaderValue::from_str(&ts.internal()).expect("timestamps are ASCII"));
    }
    r
}

/// The status a conditional request gets instead of 200, if any (swob's
/// `_get_conditional_response_status`).
fn conditional_status(headers: &HeaderMap, etag: &str, last_modified: u64) -> Option<StatusCode> {
    let contains = |v: &str| {
        let tags = etag_list(v);
        tags.iter().any(|t| t == "*" || t == etag)
    };
    if h::header_str(headers, "if-none-match").is_some_and(contains) {
        return Some(StatusCode::NOT_MODIFIED);
    }
    if h::header_str(headers, "if-match").is_some_and(|v| !contains(v)) {
        return Some(StatusCode::PRECONDITION_FAILED);
    }
    if let Some(ims) = h::header_str(headers, "if-modified-since").and_then(parse_http_date) {
        if last_modified <= ims {
            return Some(StatusCode::NOT_MODIFIED);
        }
    }
    if let Some(ius) = h::header_str(headers, "if-unmodified-since").and_then(parse_http_date) {
        if last_modified > ius {
            return Some(StatusCode::PRECONDITION_FAILED);
        }
    }
    None
}

fn object_headers(server: &ObjectServer, obj: &OpenObject) -> HeaderMap {
    let mut hm = HeaderMap::new();
    let mut put = |k: &str, v: &str| {
        if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_bytes(v.as_bytes())) {
            hm.insert(n, v);
        }
    };
    put("content-type", obj.metadata.get("Content-Type").map_or("application/octet-stream", String::as_str));
    for (k, v) in &obj.metadata {
        let lk = k.to_ascii_lowercase();
        if constraints::is_object_meta(&lk) || server.settings.allowed_headers.contains(&lk) {
            put(&lk, v);
        }
    }
    let ts = obj.timestamp();
    put("etag", &format!("\"{}\"", obj.metadata.get("ETag").map_or("", String::as_str)));
    put("last-modified", &http_date(ts.ceil_secs()));
    put("content-length", &obj.size.to_string());
    if let Some(ce) = obj.metadata.get("Content-Encoding") {
        put("content-encoding", ce);
    }
    put(bh::TIMESTAMP, &ts.normal());
    put(bh::BACKEND_TIMESTAMP, &ts.internal());
    put(bh::BACKEND_DATA_TIMESTAMP, &obj.data_timestamp.internal());
    put(bh::BACKEND_DURABLE_TIMESTAMP, &obj.data_timestamp.internal());
    put("accept-ranges", "bytes");
    hm
}

/// Handles `GET` and `HEAD /<dev>/<part>/<a>/<c>/<o>`.
pub async fn handle(server: Arc<ObjectServer>, req: Request<Body>, target: Target, head: bool) -> Response<Body> {
    let headers = req.headers().clone();
    drop(req);
    // The proxy asks for expired objects too when its operator allows it
    // and the client sent X-Open-Expired (Swift's allow_open_expired).
    let open_expired = h::header_str(&headers, bh::BACKEND_OPEN_EXPIRED).is_some_and(|v| common::config::parse_bool(v) == Some(true));
    let now = if open_expired { 0.0 } else { constraints::request_time(&headers).as_secs_f64() };
    let loc = target.location.clone();
    let name = target.name.clone();
    // A whole small object is read in the same trip to the blocking pool
    // as the open: each trip is a thread hand-off, the largest cost of a
    // small GET. (A conditional GET that ends in 304 or 412 wastes one
    // small read.)
    let prefetch = (!head && !headers.contains_key(http::header::RANGE)).then_some(server.settings.disk_chunk_size);
    let opened = server
        .devices
        .run(&target.path.device, move || {
            let obj = diskfile::open(&loc, &name, now)?;
            let data = match prefetch {
                Some(chunk) if obj.size <= chunk as u64 => Some(diskfile::read_bytes(&obj.file, 0, obj.size as usize)),
                _ => None,
            };
            Ok((obj, data))
        })
        .await;
    let (obj, prefetched) = match opened {
        Ok(o) => o,
        Err(OpenError::Deleted(ts)) | Err(OpenError::Expired(ts, _)) => return not_found(Some(ts), &headers),
        Err(OpenError::NotFound) | Err(OpenError::Quarantined(_)) => return not_found(None, &headers),
        Err(OpenError::Collision) => return h::text(StatusCode::FORBIDDEN, "Object name collision"),
        Err(OpenError::XattrNotSupported) => return h::insufficient_storage(&target.path.device),
        Err(OpenError::Io(e)) => {
            common::log::error(&format!("ERROR opening {}: {e}", target.name));
            return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error reading object");
        }
    };
    let mut resp_headers = object_headers(&server, &obj);
    let etag = obj.metadata.get("ETag").cloned().unwrap_or_default();
    let size = obj.size;

    if let Some(status) = conditional_status(&headers, &etag, obj.timestamp().ceil_secs()) {
        let mut r = Response::new(h::empty());
        *r.status_mut() = status;
        resp_headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
        *r.headers_mut() = resp_headers;
        // Closing a file opened for reading does no disk work.
        drop(obj.file);
        return r;
    }
    if head {
        let mut r = Response::new(h::empty());
        *r.headers_mut() = resp_headers;
        drop(obj.file);
        return r;
    }

    // The proxy asks us to ignore Range for objects carrying certain
    // metadata (a DLO manifest's ranges apply to the assembled object).
    let ignore_range = h::header_str(&headers, bh::BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT).is_some_and(|names| {
        names.split(',').map(str::trim).filter(|n| !n.is_empty()).any(|n| resp_headers.contains_key(n.to_ascii_lowercase().as_str()))
    });
    let ranges = h::header_str(&headers, "range").and_then(parse_range).filter(|r| !r.is_empty() && !ignore_range);
    let mut status = StatusCode::OK;
    let mut plan = vec![Segment::File { start: 0, stop: size }];
    // Whole-object reads are checked against the stored ETag (an MD5 of
    // the bytes as they were written), as Swift's DiskFileReader does.
    let mut verify = (etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())).then(|| etag.to_ascii_lowercase());
    if let Some(ranges) = ranges {
        let spans = ranges_for_length(&ranges, size);
        if spans.is_empty() {
            let file = obj.file;
            server.devices.run(&target.path.device, move || drop(file)).await;
            let mut r = h::text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "<html><h1>Requested Range Not Satisfiable</h1><p>The Range requested is not available.</p></html>",
            );
            let keep_ct = r.headers().get(http::header::CONTENT_LENGTH).cloned();
            resp_headers.remove(http::header::CONTENT_LENGTH);
            for (k, v) in resp_headers.iter() {
                r.headers_mut().insert(k.clone(), v.clone());
            }
            if let Some(cl) = keep_ct {
                r.headers_mut().insert(http::header::CONTENT_LENGTH, cl);
            }
            r.headers_mut().insert(http::header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{size}")).expect("ASCII"));
            return r;
        }
        if size > 0 {
            status = StatusCode::PARTIAL_CONTENT;
            verify = None;
            if spans.len() == 1 {
                let (start, stop) = spans[0];
                resp_headers.insert(http::header::CONTENT_RANGE, HeaderValue::from_str(&content_range(start, stop, size)).expect("ASCII"));
                resp_headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(stop - start));
                plan = vec![Segment::File { start, stop }];
            } else {
                let boundary = format!("{:032x}", rand::random::<u128>());
                let ctype = resp_headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                plan.clear();
                let mut total: u64 = 0;
                for (start, stop) in spans {
                    let head =
                        format!("--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: {}\r\n\r\n", content_range(start, stop, size));
                    total += head.len() as u64 + (stop - start) + 2;
                    plan.push(Segment::Bytes(Bytes::from(head)));
                    plan.push(Segment::File { start, stop });
                    plan.push(Segment::Bytes(Bytes::from_static(b"\r\n")));
                }
                let tail = format!("--{boundary}--");
                total += tail.len() as u64;
                plan.push(Segment::Bytes(Bytes::from(tail)));
                resp_headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_str(&format!("multipart/byteranges;boundary={boundary}")).expect("ASCII"),
                );
                resp_headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(total));
            }
        }
    }
    // A whole object that fits in one disk read is checked before anything
    // goes out: rotten bytes become a missing replica, and the proxy reads
    // the next one.
    if let Some(etag) = verify.as_ref().filter(|_| size <= server.settings.disk_chunk_size as u64) {
        let read = match prefetched {
            Some(data) => data,
            None => {
                let file = obj.file;
                server.devices.run(&target.path.device, move || diskfile::read_bytes(&file, 0, size as usize)).await
            }
        };
        let checked = match read {
            Ok(data) => verified(&server, &target, data, size, etag, &obj.data_file).await,
            Err(e) => Err(e),
        };
        let body = match checked {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return not_found(None, &headers),
            Err(e) => {
                common::log::error(&format!("ERROR reading {}: {e}", target.name));
                return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error reading object");
            }
        };
        let mut r = Response::new(h::full(body));
        *r.headers_mut() = resp_headers;
        return r;
    }
    let verify = verify.map(|etag| (etag, obj.data_file.clone()));
    let body = stream_body(server.clone(), target, obj.file, plan, verify);
    let mut r = Response::new(body);
    *r.status_mut() = status;
    *r.headers_mut() = resp_headers;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_like_swob() {
        let r = parse_range("bytes=0-1,-3,5-").unwrap();
        assert_eq!(ranges_for_length(&r, 10), vec![(0, 2), (7, 10), (5, 10)]);
        assert!(parse_range("bytes=5-3").is_none());
        assert!(parse_range("bytes=-").is_none());
        assert!(parse_range("items=1-2").is_none());
        assert!(ranges_for_length(&parse_range("bytes=20-").unwrap(), 10).is_empty());
        assert_eq!(ranges_for_length(&parse_range("bytes=-20").unwrap(), 10), vec![(0, 10)]);
    }
}
