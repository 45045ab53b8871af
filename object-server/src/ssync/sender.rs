//! The sending end of SSYNC (swift/obj/ssync_sender.py), used by the
//! replicator: for a partition's suffixes, offer every object with its
//! timestamps, then send what the receiver wants: a PUT of the `.data`
//! (its body streamed from disk a chunk at a time), a POST of the `.meta`,
//! or a DELETE for the `.ts`.
//!
//! Each send waits at most `node_timeout` for the connection to take it;
//! each wait for the receiver's answers at most `http_timeout`. A failure
//! anywhere drops the connection, so the receiver never mistakes a
//! cut-off stream for a finished one.

use super::disk;
use super::wire::{self, Batch, LineReader, ObjectTimestamps, Outbox, Wanted, WireError};
use crate::diskfile::{self, ObjectLocation, OpenError, OpenObject};
use crate::metadata::Metadata;
use bytes::Bytes;
use common::backend::{read_body, BackendClient};
use common::backend_headers as bh;
use common::devices::Devices;
use common::timestamp::Timestamp;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use md5::{Digest, Md5};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why a sync did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No answer, or not `200`.
    #[error("{0}")]
    Connect(String),
    /// The exchange broke, timed out, or the receiver said `:ERROR:`.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// Our own disk failed.
    #[error("{0}")]
    Disk(String),
}

/// What a completed sync covered.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    /// Every object offered, with the timestamps offered, that the receiver
    /// now has (or something newer): those it wanted but we could not send
    /// (unreadable, gone meanwhile) are left out, so a handoff never
    /// deletes them on the strength of this sync.
    pub available: Vec<(String, ObjectTimestamps)>,
    /// How many objects the receiver asked for.
    pub wanted: usize,
}

/// Where the objects come from: one partition of one local device.
#[derive(Debug, Clone)]
pub struct Source {
    /// The device's name (for its pool) and directory.
    pub device: String,
    pub device_path: PathBuf,
    pub policy: u32,
    pub partition: u32,
}

impl Source {
    fn partition_dir(&self) -> PathBuf {
        self.device_path.join(diskfile::policy_dir("objects", self.policy)).join(self.partition.to_string())
    }
}

/// Where the objects go: a node's replication address and device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub ip: String,
    pub port: u16,
    pub device: String,
}

/// An SSYNC client.
#[derive(Clone)]
pub struct Sender {
    /// Connects within `conn_timeout` and waits `node_timeout` for the
    /// response head.
    pub client: BackendClient,
    pub devices: Arc<Devices>,
    /// Longest wait for the connection to take each chunk sent.
    pub node_timeout: Duration,
    /// Longest wait for each line of the receiver's answers.
    pub http_timeout: Duration,
    /// Largest line or chunk sent at once.
    pub network_chunk_size: usize,
    /// Bytes read from disk at a time for a PUT body.
    pub disk_chunk_size: usize,
    pub user_agent: String,
}

impl Sender {
    /// Syncs `suffixes` of `source`'s partition to `target`.
    pub async fn sync(&self, source: &Source, target: &Target, suffixes: &[String]) -> Result<SyncReport, SyncError> {
        if suffixes.is_empty() {
            return Ok(SyncReport::default());
        }
        let (part_dir, wanted_suffixes) = (source.partition_dir(), suffixes.to_vec());
        let available = self
            .devices
            .run(&source.device, move || disk::yield_hashes(&part_dir, &wanted_suffixes))
            .await
            .map_err(|e| SyncError::Disk(format!("listing the partition: {e}")))?;
        let (out, body) = wire::channel(self.node_timeout);
        let mut headers = HeaderMap::new();
        headers.insert(bh::BACKEND_STORAGE_POLICY_INDEX, HeaderValue::from(source.policy));
        if let Ok(ua) = HeaderValue::from_str(&self.user_agent) {
            headers.insert(http::header::USER_AGENT, ua);
        }
        let path = format!("/{}/{}", target.device, source.partition);
        let method = Method::from_bytes(b"SSYNC").map_err(|e| SyncError::Connect(e.to_string()))?;
        let resp = self
            .client
            .request(method, &target.ip, target.port, &path, headers, body.boxed())
            .await
            .map_err(|e| SyncError::Connect(e.to_string()))?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            let text = read_body(resp, 1024, self.http_timeout).await.map(|(_, _, b)| wire::cap(&b)).unwrap_or_default();
            return Err(SyncError::Connect(format!("Expected status 200; got {} ({text})", status.as_u16())));
        }
        let mut input = LineReader::new(resp.into_body(), self.http_timeout);
        let mut available = available;
        match self.exchange(source, &available, &out, &mut input).await {
            Ok((wanted, unsent)) => {
                available.retain(|(hash, _)| !unsent.contains(hash));
                // A clean end of our body; the receiver then ends its own,
                // and the connection may be kept.
                out.finish();
                input.set_timeout(self.node_timeout);
                let _ = input.drain("disconnect").await;
                Ok(SyncReport { available, wanted })
            }
            Err(e) => {
                out.abort("ssync send failed");
                // A receiver that gave up says why before it hangs up; a
                // send that failed on its hang-up would hide that.
                if matches!(e, SyncError::Wire(WireError::Disconnected(_) | WireError::Timeout(..))) {
                    input.set_timeout(Duration::from_secs(1));
                    while let Ok(Some(line)) = input.read_line(self.network_chunk_size, "error").await {
                        let line = wire::trim(&line);
                        if line.starts_with(wire::ERROR_PREFIX.as_bytes()) {
                            return Err(WireError::Protocol(format!("{e}; the receiver said {:?}", wire::cap(line))).into());
                        }
                    }
                }
                Err(e)
            }
        }
    }

    async fn exchange(
        &self,
        source: &Source,
        available: &[(String, ObjectTimestamps)],
        out: &Outbox,
        input: &mut LineReader<Incoming>,
    ) -> Result<(usize, Vec<String>), SyncError> {
        let send_map = self.missing_check(available, out, input).await?;
        let unsent = self.updates(source, &send_map, out, input).await?;
        Ok((send_map.len(), unsent))
    }

    /// Offers every object; returns what the receiver wants, in its order.
    async fn missing_check(
        &self,
        available: &[(String, ObjectTimestamps)],
        out: &Outbox,
        input: &mut LineReader<Incoming>,
    ) -> Result<Vec<(String, Wanted)>, SyncError> {
        let mut batch = Batch::new(self.network_chunk_size);
        batch.line(out, wire::MISSING_CHECK_START, "missing_check start").await?;
        for (i, (hash, t)) in available.iter().enumerate() {
            batch.line(out, &wire::encode_missing(hash, t), &format!("missing_check send line: {i} lines sent")).await?;
        }
        batch.line(out, wire::MISSING_CHECK_END, "missing_check end").await?;
        batch.flush(out, "missing_check end").await?;
        self.expect_start(input, wire::MISSING_CHECK_START, "missing_check start wait").await?;
        let mut wanted = Vec::new();
        loop {
            let line = self.read_line(input, "missing_check line wait").await?;
            let line = wire::latin1_or_utf8(wire::trim(&line));
            if line == wire::MISSING_CHECK_END {
                break;
            }
            if let Some(w) = wire::decode_wanted(&line) {
                wanted.push(w);
            }
        }
        Ok(wanted)
    }

    /// Sends what was wanted, then checks the receiver took all of it;
    /// returns the wanted objects that could not be sent.
    async fn updates(
        &self,
        source: &Source,
        send_map: &[(String, Wanted)],
        out: &Outbox,
        input: &mut LineReader<Incoming>,
    ) -> Result<Vec<String>, SyncError> {
        out.send(format!("{}\r\n", wire::UPDATES_START), "updates start").await?;
        let mut unsent = Vec::new();
        for (hash, want) in send_map {
            if !disk::is_object_hash(hash) {
                unsent.push(hash.clone());
                continue;
            }
            let loc = disk::location(&source.device_path, source.policy, source.partition, hash);
            let l = loc.clone();
            let opened = self.devices.run(&source.device, move || disk::open_by_hash(&l)).await;
            match opened {
                Ok(obj) => {
                    let name = obj.data_metadata.get("name").cloned().unwrap_or_default();
                    let post = (want.meta && obj.data_timestamp != obj.timestamp()).then(|| obj.meta_metadata.clone()).flatten();
                    if want.data {
                        self.send_put(source, &loc, &name, obj, out).await?;
                    }
                    if let Some(meta) = post {
                        self.send_subrequest("POST", &name, &sorted_headers(meta), out).await?;
                    }
                }
                Err(OpenError::Deleted(t)) if want.data => {
                    // The tombstone's own metadata names the object.
                    let l = loc.clone();
                    let name = self.devices.run(&source.device, move || tombstone_name(&l, t)).await;
                    match name {
                        Some(name) => self.send_subrequest("DELETE", &name, &[("X-Timestamp".to_string(), t.internal())], out).await?,
                        None => unsent.push(hash.clone()),
                    }
                }
                Err(OpenError::Io(e)) => return Err(SyncError::Disk(format!("opening {}: {e}", loc.hash_dir().display()))),
                // Gone, quarantined, unreadable: nothing was sent for it,
                // so the receiver holds no part of it.
                Err(_) => unsent.push(hash.clone()),
            }
        }
        out.send(format!("{}\r\n", wire::UPDATES_END), "updates end").await?;
        self.expect_start(input, wire::UPDATES_START, "updates start wait").await?;
        let line = self.read_line(input, "updates line wait").await?;
        let line = wire::trim(&line);
        if line != wire::UPDATES_END.as_bytes() {
            return Err(WireError::Protocol(format!("Unexpected response: {:?}", wire::cap(line))).into());
        }
        Ok(unsent)
    }

    async fn read_line(&self, input: &mut LineReader<Incoming>, context: &str) -> Result<Bytes, SyncError> {
        match input.read_line(self.network_chunk_size, context).await? {
            Some(l) => Ok(l),
            None => Err(WireError::Disconnected("Early disconnect".into()).into()),
        }
    }

    /// Skips blank lines up to `start`; anything else (an `:ERROR:` line
    /// included) ends the sync.
    async fn expect_start(&self, input: &mut LineReader<Incoming>, start: &str, context: &str) -> Result<(), SyncError> {
        loop {
            let line = self.read_line(input, context).await?;
            let line = wire::trim(&line);
            if line == start.as_bytes() {
                return Ok(());
            }
            if !line.is_empty() {
                return Err(WireError::Protocol(format!("Unexpected response: {:?}", wire::cap(line))).into());
            }
        }
    }

    async fn send_subrequest(&self, method: &str, name: &str, headers: &[(String, String)], out: &Outbox) -> Result<(), SyncError> {
        out.send(wire::encode_subrequest(method, name, headers), &format!("send_{}", method.to_ascii_lowercase())).await?;
        Ok(())
    }

    /// A PUT of the object's `.data`: its metadata as headers, then its
    /// body from disk, checked against its ETag on the way. A body that is
    /// short or does not match is quarantined and the sync ends: the
    /// receiver must not keep a copy of a bad file.
    async fn send_put(&self, source: &Source, loc: &ObjectLocation, name: &str, obj: OpenObject, out: &Outbox) -> Result<(), SyncError> {
        let mut headers = obj.data_metadata.clone();
        headers.remove("name");
        headers.insert("Content-Length".into(), obj.size.to_string());
        let expected_etag = headers.get("ETag").map(|e| e.to_ascii_lowercase());
        self.send_subrequest("PUT", name, &sorted_headers(headers), out).await?;
        let (size, data_file) = (obj.size, obj.data_file.clone());
        let mut file = obj.file;
        let mut offset = 0u64;
        let mut md5 = Md5::new();
        while offset < size {
            let len = usize::try_from(size - offset).unwrap_or(usize::MAX).min(self.disk_chunk_size);
            // The hashing runs with the read, off the runtime.
            let (f, m, chunk) = self
                .devices
                .run(&source.device, move || {
                    let r = diskfile::read_bytes(&file, offset, len);
                    if let Ok(c) = &r {
                        md5.update(c);
                    }
                    (file, md5, r)
                })
                .await;
            (file, md5) = (f, m);
            let chunk = chunk.map_err(|e| SyncError::Disk(format!("reading {}: {e}", loc.hash_dir().join(&data_file).display())))?;
            if chunk.is_empty() {
                break;
            }
            offset += chunk.len() as u64;
            out.send(chunk, "send_put chunk").await?;
        }
        let etag: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if offset != size || expected_etag.is_some_and(|e| e != etag) {
            let (l, f) = (loc.clone(), data_file.clone());
            let moved = self.devices.run(&source.device, move || diskfile::quarantine_file(&l, &f)).await;
            if let Ok(Some(to)) = moved {
                common::log::error(&format!(
                    "Quarantined {} to {}: body does not match its metadata",
                    loc.hash_dir().join(&data_file).display(),
                    to.display()
                ));
            }
            return Err(WireError::Protocol("Sent data length does not match content-length".into()).into());
        }
        Ok(())
    }
}

/// A tombstone's object name, from its metadata (Swift's tombstones carry
/// `name`); `None` when it cannot be read.
fn tombstone_name(loc: &ObjectLocation, t: Timestamp) -> Option<String> {
    let path = loc.hash_dir().join(format!("{}.ts", t.internal()));
    crate::metadata::read(&path).ok().and_then(|m| m.get("name").cloned())
}

/// Metadata as subrequest headers, sorted by name as Swift sends them;
/// values that would break the line protocol are left out.
fn sorted_headers(meta: Metadata) -> Vec<(String, String)> {
    meta.into_iter().filter(|(k, v)| !k.is_empty() && !k.contains([':', '\r', '\n']) && !v.contains(['\r', '\n'])).collect()
}
