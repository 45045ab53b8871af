//! The receiving end of SSYNC (swift/obj/ssync_receiver.py): `SSYNC
//! /<dev>/<part>` answers `200` at once and then speaks the line protocol
//! of [`super::wire`] on the two bodies, while a task applies what the
//! sender offers.
//!
//! At most `replication_concurrency` receptions run at once per server
//! (`:ERROR: 503` beyond), each under the partition's replication lock
//! (`<part>/.lock-replication`) and one of the device's
//! `replication_concurrency_per_device` locks (`<dev>/.lock`, `.lock1`,
//! ...), both waited for at most `replication_lock_timeout`.
//!
//! Subrequests write as the object server's PUT, POST and DELETE do with
//! Swift's `X-Backend-Replication`: every header sent becomes metadata,
//! `X-Delete-At` may be in the past, and no container or expirer update is
//! sent (the sender's copy already made them).

use super::disk::{self, Applied, PostUpdate, Refusal};
use super::wire::{self, LineReader, Outbox, WireError};
use super::ReceiverSettings;
use crate::constraints;
use crate::diskfile::ObjectLocation;
use crate::metadata::Metadata;
use crate::ObjectServer;
use bytes::Bytes;
use common::backend_headers as bh;
use common::http::{self as h, Body};
use common::log;
use common::server::RequestInfo;
use common::timestamp::Timestamp;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// Header lines one subrequest may carry (Swift allows 90 metadata items
/// and sysmeta besides; a sender never needs this many).
const MAX_SUBREQUEST_HEADERS: usize = 1024;

/// Offers checked against the disk in one trip to the device's pool.
const CHECK_BATCH: usize = 128;

/// Headers that are sent but never stored: the ETag is recomputed, the
/// name comes from the subrequest's path, the others are addressed to the
/// receiver itself (Swift leaves out `etag` and `x-backend-no-commit` and
/// overrides the rest; neither sender sends them).
const NOT_STORED: [&str; 8] = [
    "etag",
    bh::BACKEND_NO_COMMIT,
    "name",
    bh::BACKEND_STORAGE_POLICY_INDEX,
    bh::BACKEND_REPLICATION,
    bh::BACKEND_REPLICATION_HEADERS,
    bh::BACKEND_SSYNC_FRAG_INDEX,
    bh::BACKEND_SSYNC_NODE_INDEX,
];

/// The server-wide state of SSYNC receptions: the slots that bound how
/// many run at once.
pub struct Receptions {
    slots: Option<Arc<Semaphore>>,
}

impl Receptions {
    /// Slots for `settings.replication_concurrency` receptions (0: no bound).
    pub fn new(settings: &ReceiverSettings) -> Receptions {
        Receptions { slots: (settings.replication_concurrency > 0).then(|| Arc::new(Semaphore::new(settings.replication_concurrency))) }
    }

    /// A slot, `Err` when all are taken; `None` inside when unbounded.
    fn try_enter(&self) -> Result<Option<OwnedSemaphorePermit>, ()> {
        match &self.slots {
            None => Ok(None),
            Some(s) => match s.clone().try_acquire_owned() {
                Ok(p) => Ok(Some(p)),
                Err(TryAcquireError::NoPermits) | Err(TryAcquireError::Closed) => Err(()),
            },
        }
    }
}

/// Handles `SSYNC /<dev>/<part>`.
pub async fn handle(server: Arc<ObjectServer>, req: Request<Body>, device: String, partition: u32, info: RequestInfo) -> Response<Body> {
    let policy = match server.policy_index(req.headers()) {
        Ok(p) => p,
        Err(r) => return r,
    };
    if let Some(v) = req.headers().get(bh::BACKEND_SSYNC_FRAG_INDEX).filter(|v| !v.is_empty()) {
        // Replication policies have no fragments; the value must still
        // be an integer, as Swift checks.
        if v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()).is_none() {
            return h::text(
                StatusCode::BAD_REQUEST,
                format!("Invalid X-Backend-Ssync-Frag-Index {:?}", String::from_utf8_lossy(v.as_bytes())),
            );
        }
    }
    let device_path = match server.check_device(&device).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (out, body) = wire::channel(server.settings.server.connections.client_timeout);
    let session = Session { server, device, partition, policy, device_path, remote: info.remote };
    tokio::spawn(session.run(req.into_body(), out));
    let mut resp = Response::new(body.boxed());
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=UTF-8"));
    resp
}

/// Why a reception ended early, and what the sender is told.
#[derive(Debug)]
enum Failure {
    /// The sender went away: nothing to tell.
    Disconnected(String),
    /// The sender was too slow: `:ERROR: 408`.
    Timeout(String),
    /// The locks could not be had in time: `:ERROR: 0`, logged at debug.
    LockTimeout(String),
    /// An HTTP-style refusal: `:ERROR: <status>`, not logged.
    Refused(u16, String),
    /// Anything else: `:ERROR: 0`, logged.
    Other(String),
}

impl From<WireError> for Failure {
    fn from(e: WireError) -> Failure {
        match e {
            WireError::Timeout(..) => Failure::Timeout(e.to_string()),
            WireError::Disconnected(m) => Failure::Disconnected(m),
            WireError::Protocol(m) => Failure::Other(m),
        }
    }
}

/// One SSYNC reception.
struct Session {
    server: Arc<ObjectServer>,
    device: String,
    partition: u32,
    policy: u32,
    device_path: PathBuf,
    remote: SocketAddr,
}

/// What one subrequest did: its status, a reason for the log, and how many
/// body bytes it read.
struct Outcome {
    status: u16,
    reason: String,
    consumed: u64,
}

impl Outcome {
    fn new(status: u16, reason: impl Into<String>, consumed: u64) -> Outcome {
        Outcome { status, reason: reason.into(), consumed }
    }
}

fn refusal_status(r: &Refusal) -> u16 {
    match r {
        Refusal::Conflict(_) => 409,
        Refusal::Collision => 403,
        Refusal::NotFound => 404,
        Refusal::Storage(_) => 507,
        Refusal::Io(_) => 500,
    }
}

fn applied_status(a: Applied) -> u16 {
    match a {
        Applied::Created => 201,
        Applied::Accepted => 202,
        Applied::NoContent => 204,
        Applied::NotFound => 404,
    }
}

impl Session {
    fn settings(&self) -> &ReceiverSettings {
        &self.server.settings.ssync
    }

    fn chunk_size(&self) -> usize {
        self.server.settings.network_chunk_size
    }

    fn log(&self, level: log::Level, msg: &str) {
        log::write(level, &format!("ssync receiver (remote_addr: {}, path: {}/{}) {msg}", self.remote.ip(), self.device, self.partition));
    }

    async fn run(self, body: Body, out: Outbox) {
        // Something at once, so that the response head goes out and the
        // sender knows the exchange has started.
        if out.send(Bytes::from_static(b"\r\n"), "start").await.is_err() {
            return;
        }
        let mut input = LineReader::new(body, self.server.settings.server.connections.client_timeout);
        let failure = match self.exchange(&mut input, &out).await {
            Ok(()) => {
                // The sender ends its body after reading our last line;
                // reading that end lets the connection be kept.
                let _ = input.drain("end of request").await;
                out.finish();
                return;
            }
            Err(f) => f,
        };
        let line = match failure {
            Failure::Disconnected(m) => {
                self.log(log::Level::Error, &format!("read failed: {m}"));
                None
            }
            Failure::Timeout(m) => {
                self.log(log::Level::Error, &format!("TIMEOUT: {m}"));
                Some(wire::error_line(408, &m))
            }
            Failure::LockTimeout(m) => {
                self.log(log::Level::Debug, &format!("LOCK TIMEOUT: {m}"));
                Some(wire::error_line(0, &m))
            }
            Failure::Refused(status, m) => Some(wire::error_line(status, &m)),
            Failure::Other(m) => {
                self.log(log::Level::Error, &format!("EXCEPTION: {m}"));
                Some(wire::error_line(0, &m))
            }
        };
        match line {
            // The error line, then the end of our body; the rest of the
            // sender's body is left unread, so hyper closes the connection
            // after it (Swift's hang-up) rather than read it.
            Some(line) if out.send(line.clone(), "error").await.is_ok() => out.finish(),
            _ => out.abort("ssync reception failed"),
        }
    }

    async fn exchange(&self, input: &mut LineReader<Body>, out: &Outbox) -> Result<(), Failure> {
        let _slot = self.server.ssync.try_enter().map_err(|()| {
            Failure::Refused(
                503,
                "<html><h1>Service Unavailable</h1><p>The server is currently unavailable. Please try again at a later time.</p></html>"
                    .into(),
            )
        })?;
        let _locks = self.lock().await?;
        self.missing_check(input, out).await?;
        self.updates(input, out).await
    }

    fn partition_dir(&self) -> PathBuf {
        self.device_path.join(crate::diskfile::policy_dir("objects", self.policy)).join(self.partition.to_string())
    }

    /// One of the device's replication locks, then the partition's
    /// (Swift's `replication_lock`, in its order: a reception queued for
    /// the device must not pin the partition meanwhile), within
    /// `replication_lock_timeout` overall.
    async fn lock(&self) -> Result<Vec<std::fs::File>, Failure> {
        let timeout = self.settings().replication_lock_timeout;
        let deadline = Instant::now() + timeout;
        let mut held = Vec::new();
        let per_device = self.settings().replication_concurrency_per_device;
        if per_device > 0 {
            let paths = (0..per_device).map(|i| disk::device_lock_path(&self.device_path, i)).collect();
            held.push(self.acquire(paths, timeout, deadline).await?);
        }
        held.push(self.acquire(vec![disk::partition_lock_path(&self.partition_dir())], timeout, deadline).await?);
        Ok(held)
    }

    async fn acquire(&self, paths: Vec<PathBuf>, timeout: Duration, deadline: Instant) -> Result<std::fs::File, Failure> {
        let mut pause = Duration::from_millis(10);
        let slower = (timeout / 100).max(pause);
        loop {
            let p = paths.clone();
            match self.server.devices.run(&self.device, move || disk::try_lock_any(&p)).await {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => {}
                Err(e) => return Err(Failure::Other(format!("locking {}: {e}", paths[0].display()))),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Failure::LockTimeout(format!("{} seconds: {}", timeout.as_secs_f64(), paths[0].display())));
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = slower;
        }
    }

    /// Reads the offers, answers with what is wanted (Swift's
    /// `missing_check`).
    async fn missing_check(&self, input: &mut LineReader<Body>, out: &Outbox) -> Result<(), Failure> {
        let chunk = self.chunk_size();
        let Some(line) = input.read_line(chunk, "missing_check start").await? else {
            return Err(Failure::Disconnected("client disconnected".into()));
        };
        if wire::trim(&line) != wire::MISSING_CHECK_START.as_bytes() {
            return Err(Failure::Other(format!("Looking for {} got {:?}", wire::MISSING_CHECK_START, wire::cap(&line))));
        }
        let mut wanted = Vec::new();
        let mut batch = Vec::new();
        loop {
            let line = input.read_line(chunk, "missing_check line").await?;
            // The end of the body ends the list too, as in Swift; the
            // updates step then finds the sender gone.
            let end = line.as_ref().is_none_or(|l| wire::trim(l) == wire::MISSING_CHECK_END.as_bytes());
            if let Some(l) = line.filter(|_| !end) {
                let offer = wire::decode_missing(&l)?;
                if !disk::is_object_hash(&offer.hash) {
                    return Err(Failure::Other(format!("bad object hash {:?}", wire::cap(offer.hash.as_bytes()))));
                }
                batch.push(offer);
            }
            if end || batch.len() >= CHECK_BATCH {
                wanted.extend(self.check_offers(std::mem::take(&mut batch)).await?);
            }
            if end {
                break;
            }
        }
        let mut answer = wire::Batch::new(chunk);
        let context = "missing_check answer";
        answer.line(out, wire::MISSING_CHECK_START, context).await?;
        // Swift joins the wanted lines and then adds one line end, so an
        // empty list leaves a blank line.
        answer.line(out, &wanted.join("\r\n"), context).await?;
        answer.line(out, wire::MISSING_CHECK_END, context).await?;
        answer.flush(out, context).await?;
        Ok(())
    }

    /// The wanted lines for a batch of offers, from one trip to the disk.
    async fn check_offers(&self, offers: Vec<wire::Offer>) -> Result<Vec<String>, Failure> {
        let (device_path, policy, partition) = (self.device_path.clone(), self.policy, self.partition);
        let checked = self
            .server
            .devices
            .run(&self.device, move || -> std::io::Result<Vec<String>> {
                let mut wanted = Vec::new();
                for offer in &offers {
                    let local = disk::local_timestamps(&disk::location(&device_path, policy, partition, &offer.hash))?;
                    wanted.extend(wire::encode_wanted(offer, local.as_ref()));
                }
                Ok(wanted)
            })
            .await;
        checked.map_err(|e| Failure::Other(format!("checking offers: {e}")))
    }

    /// Applies the subrequests (Swift's `updates`).
    async fn updates(&self, input: &mut LineReader<Body>, out: &Outbox) -> Result<(), Failure> {
        let chunk = self.chunk_size();
        let Some(line) = input.read_line(chunk, "updates start").await? else {
            return Err(Failure::Disconnected("client disconnected".into()));
        };
        if wire::trim(&line) != wire::UPDATES_START.as_bytes() {
            return Err(Failure::Other(format!("Looking for {} got {:?}", wire::UPDATES_START, wire::cap(&line))));
        }
        let (mut successes, mut failures) = (0u64, 0u64);
        loop {
            let Some(line) = input.read_line(chunk, "updates line").await? else { break };
            if wire::trim(&line) == wire::UPDATES_END.as_bytes() {
                break;
            }
            let context = wire::latin1_or_utf8(wire::trim(&line));
            let (method, path) = wire::decode_request_line(&line)?;
            let mut headers: Vec<(String, String)> = Vec::new();
            let mut content_length: Option<u64> = None;
            loop {
                let Some(line) = input.read_line(chunk, "updates line").await? else {
                    return Err(Failure::Other(format!("Got no headers for {context}")));
                };
                if wire::trim(&line).is_empty() {
                    break;
                }
                // An object carries at most Swift's metadata items plus its
                // own headers; more is a broken or hostile sender, not data.
                if headers.len() >= MAX_SUBREQUEST_HEADERS {
                    return Err(Failure::Other(format!("too many headers for {context}")));
                }
                let (name, value) = wire::decode_header_line(&line)?;
                if name == "content-length" {
                    content_length =
                        Some(value.parse().map_err(|_| Failure::Other(format!("bad Content-Length {value:?} for {context}")))?);
                }
                headers.push((name, value));
            }
            match method.as_str() {
                "DELETE" | "POST" if content_length.unwrap_or(0) != 0 => {
                    return Err(Failure::Other(format!("{method} subrequest with content-length {path}")));
                }
                "DELETE" | "POST" => {}
                "PUT" if content_length.is_none() => return Err(Failure::Other(format!("No content-length sent for {context}"))),
                "PUT" => {}
                _ => return Err(Failure::Other(format!("Invalid subrequest method {method}"))),
            }
            let outcome = self.apply(&method, &path, &headers, content_length.unwrap_or(0), input, &context).await?;
            if (200..300).contains(&outcome.status) || outcome.status == 404 {
                successes += 1;
            } else {
                self.log(log::Level::Warning, &format!("subrequest failed with {}: {context} ({})", outcome.status, outcome.reason));
                failures += 1;
            }
            let s = self.settings();
            if failures >= s.replication_failure_threshold
                && (successes == 0 || failures as f64 / successes as f64 > s.replication_failure_ratio)
            {
                return Err(Failure::Other(format!("Too many {failures} failures to {successes} successes")));
            }
            // A subrequest that failed early leaves its body unread: read
            // it, to find the next subrequest (or a broken stream).
            input.skip(content_length.unwrap_or(0).saturating_sub(outcome.consumed), &context).await?;
        }
        if failures > 0 {
            return Err(Failure::Refused(500, format!("ERROR: With :UPDATES: {failures} failures to {successes} successes")));
        }
        let mut answer = wire::Batch::new(chunk);
        answer.line(out, wire::UPDATES_START, "updates answer").await?;
        answer.line(out, wire::UPDATES_END, "updates answer").await?;
        answer.flush(out, "updates answer").await?;
        Ok(())
    }

    /// Applies one subrequest, as the object server would answer it.
    async fn apply(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        length: u64,
        input: &mut LineReader<Body>,
        context: &str,
    ) -> Result<Outcome, Failure> {
        let target = match self.target(path) {
            Ok(t) => t,
            Err(reason) => return Ok(Outcome::new(400, reason, 0)),
        };
        let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let Some(ts) = header(bh::TIMESTAMP).and_then(|v| Timestamp::parse(v).ok()) else {
            return Ok(Outcome::new(400, "Missing or invalid X-Timestamp header", 0));
        };
        // The object server's request checks, on the headers that an HTTP
        // request could carry.
        let mut checkable = HeaderMap::new();
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_bytes(v.as_bytes())) {
                checkable.append(k, v);
            }
        }
        checkable.insert(bh::BACKEND_REPLICATION, HeaderValue::from_static("True"));
        if let Err(r) = constraints::check_metadata(&checkable, &self.server.swift.constraints) {
            return Ok(Outcome::new(r.status().as_u16(), "metadata refused", 0));
        }
        let mut stored = Metadata::new();
        for (k, v) in headers.iter().filter(|(k, _)| !NOT_STORED.contains(&k.as_str())) {
            stored.insert(wire::title_bytes(k), v.clone());
        }
        let (loc, name) = target;
        let dev = self.device.clone();
        match method {
            "PUT" => self.put(loc, name, ts, stored, &checkable, length, input, context).await,
            "DELETE" => {
                let r = self.server.devices.run(&dev, move || disk::apply_delete(&loc, &name, ts)).await;
                Ok(match r {
                    Ok(a) => Outcome::new(applied_status(a), "", 0),
                    Err(e) => Outcome::new(refusal_status(&e), e.to_string(), 0),
                })
            }
            _ => {
                if let Some(v) = header(bh::DELETE_AT).filter(|v| !v.is_empty()) {
                    if v.trim().parse::<i64>().is_err() {
                        return Ok(Outcome::new(400, "Non-integer X-Delete-At", 0));
                    }
                }
                let content_type = match header("content-type") {
                    None => None,
                    Some(ct) => match header("content-type-timestamp").map(Timestamp::parse).unwrap_or(Ok(ts)) {
                        Ok(t) => Some((ct.to_string(), t)),
                        Err(e) => return Ok(Outcome::new(400, e.to_string(), 0)),
                    },
                };
                let post = PostUpdate { timestamp: ts, metadata: stored, content_type };
                let r = self.server.devices.run(&dev, move || disk::apply_post(&loc, &name, &post)).await;
                Ok(match r {
                    Ok(a) => Outcome::new(applied_status(a), "", 0),
                    Err(e) => Outcome::new(refusal_status(&e), e.to_string(), 0),
                })
            }
        }
    }

    /// The object a subrequest path (`/a/c/o`, quoted) names: its location
    /// in this partition and its name.
    fn target(&self, path: &str) -> Result<(ObjectLocation, String), String> {
        let full = format!("/{}/{}{path}", self.device, self.partition);
        let p = common::path::parse_storage_path(&full, 5, 5).map_err(|e| e.to_string())?;
        let (c, o) = (p.container.unwrap_or_default(), p.object.unwrap_or_default());
        if o.len() as u64 > self.server.swift.constraints.max_object_name_length {
            return Err(format!("Object name length of {} longer than {}", o.len(), self.server.swift.constraints.max_object_name_length));
        }
        let hash = self.server.swift.hash.hash_path(&p.account, Some(&c), Some(&o)).map_err(|e| e.to_string())?;
        Ok((disk::location(&self.device_path, self.policy, self.partition, &hash), format!("/{}/{c}/{o}", p.account)))
    }

    /// A replicated PUT: its body streamed from the SSYNC stream to a temp
    /// file (one chunk in memory at a time), then committed.
    #[allow(clippy::too_many_arguments)]
    async fn put(
        &self,
        loc: ObjectLocation,
        name: String,
        ts: Timestamp,
        mut stored: Metadata,
        headers: &HeaderMap,
        length: u64,
        input: &mut LineReader<Body>,
        context: &str,
    ) -> Result<Outcome, Failure> {
        let Some(ctype) = h::header_str(headers, "content-type").map(str::to_string) else {
            return Ok(Outcome::new(400, "No content type", 0));
        };
        if length > self.server.swift.constraints.max_file_size {
            return Ok(Outcome::new(413, "Your request is too large.", 0));
        }
        if let Err(r) = constraints::check_delete_headers(headers, ts) {
            return Ok(Outcome::new(r.status().as_u16(), "bad X-Delete-At", 0));
        }
        let dev = self.device.clone();
        let (l, n, server) = (loc.clone(), name.clone(), self.server.clone());
        let begun = self
            .server
            .devices
            .run(&dev, move || {
                // statvfs: disk work too.
                let reserve = server.reserve_bytes(&l.device_path);
                disk::begin_put(&l, &n, ts, length, reserve)
            })
            .await;
        let mut writer = match begun {
            Ok(w) => w,
            Err(e) => return Ok(Outcome::new(refusal_status(&e), e.to_string(), 0)),
        };
        let mut consumed = 0u64;
        while consumed < length {
            let want = usize::try_from(length - consumed).unwrap_or(usize::MAX).min(self.chunk_size());
            let chunk = match input.read_chunk(want, context).await {
                Ok(c) => c,
                Err(e) => {
                    // Dropping the writer deletes its temp file: disk work.
                    self.server.devices.run(&dev, move || drop(writer)).await;
                    return Err(e.into());
                }
            };
            consumed += chunk.len() as u64;
            let (w, r) = self
                .server
                .devices
                .run(&dev, move || {
                    let r = writer.write(&chunk);
                    (writer, r)
                })
                .await;
            writer = w;
            if let Err(e) = r {
                let status = refusal_status(&Refusal::from(e));
                self.server.devices.run(&dev, move || drop(writer)).await;
                return Ok(Outcome::new(status, "write failed", consumed));
            }
        }
        let etag = writer.etag();
        if let Some(sent) = h::header_str(headers, "etag").map(|e| e.trim_matches('"').to_ascii_lowercase()).filter(|e| !e.is_empty()) {
            if sent != etag {
                self.server.devices.run(&dev, move || drop(writer)).await;
                return Ok(Outcome::new(422, "Etag of the body does not match the ETag header", consumed));
            }
        }
        stored.insert("name".into(), name);
        stored.insert("X-Timestamp".into(), ts.internal());
        stored.insert("Content-Type".into(), ctype);
        stored.insert("Content-Length".into(), length.to_string());
        stored.insert("ETag".into(), etag);
        let committed = self.server.devices.run(&dev, move || disk::commit_put(writer, &loc, ts, &stored)).await;
        Ok(match committed {
            Ok(a) => Outcome::new(applied_status(a), "", consumed),
            Err(e) => Outcome::new(refusal_status(&e), e.to_string(), consumed),
        })
    }
}
