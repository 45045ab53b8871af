//! The sending side of DB replication, generic over containers and
//! accounts (Swift's `Replicator` in `swift/common/db_replicator.py`).
//!
//! One pass: for every database on this node's devices (the ring's
//! devices whose replication address is ours), reclaim old tombstones,
//! then for every other primary of its partition:
//!
//! * `sync` → 404: the peer has no copy: push the whole database (a
//!   consistent snapshot, `VACUUM INTO`, uploaded with
//!   `REPLICATE /<dev>/tmp/<id>`, our stand-in for Swift's rsync) and
//!   `complete_rsync`;
//! * in sync (its point or ours covers our max_row, or equal hashes): only
//!   the sync point is recorded;
//! * far behind (less than half our rows and more than `per_diff` behind):
//!   whole push then `rsync_then_merge`;
//! * otherwise `merge_items` of the rows since its sync point, `per_diff`
//!   at a time, at most `max_diffs` batches, then `merge_syncs`.
//!
//! A 507 from a peer brings in the next handoff instead. A database on a
//! node that is not one of its primaries (a handoff) is removed once every
//! primary took it and no row arrived meanwhile (Swift's
//! `_replicate_object` and `cleanup_post_replicate`). A database deleted
//! and empty for `reclaim_age` is removed (Swift's `is_reclaimable`).
//!
//! Containers whose replicas disagree on the storage policy take the better
//! replica's (Swift's `incorrect_policy_index`). Shard ranges: we have none,
//! so none are sent; the container policy reconciler
//! (`_post_replicate_hook`, misplaced objects) is not run.

use super::broker::{parse_metadata, BrokerKind, DatabaseBroker};
use super::replication::{adopt_policy, incorrect_policy_index, rpc_body, sync_args, PolicyInfo, SyncPoint, TMP_SEGMENT_NAME};
use crate::backend::{read_body, BackendClient};
use crate::config::{ConfigError, Section};
use crate::daemon::{non_negative, Scope};
use crate::devices::Devices;
use crate::host::{is_local_device, whataremyips};
use crate::http::{full, Body};
use crate::log;
use crate::server::ServerSettings;
use crate::timestamp::Timestamp;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `[container-replicator]` / `[account-replicator]` options (Swift's
/// names; `rsync_*` options are accepted and ignored: no rsync here).
#[derive(Debug, Clone)]
pub struct ReplicatorSettings {
    /// devices, mount_check, bind_ip/bind_port (which ring devices are
    /// ours), conn_timeout, node_timeout, recon_cache_path, log_name.
    pub server: ServerSettings,
    /// `interval` (or Swift's older `run_pause`): seconds between passes (30).
    pub interval: Duration,
    /// `concurrency`: databases replicated at once (8).
    pub concurrency: usize,
    /// `databases_per_second` (50).
    pub databases_per_second: f64,
    /// `per_diff`: rows per `merge_items` (1000).
    pub per_diff: usize,
    /// `max_diffs`: batches per database and peer per pass (100).
    pub max_diffs: usize,
    /// `reclaim_age`: seconds after which tombstones and deleted databases
    /// go (604800).
    pub reclaim_age: f64,
    /// `handoffs_only`: replicate only databases this node holds as a
    /// handoff (to drain a node quickly; not for normal operation).
    pub handoffs_only: bool,
    /// `handoff_delete`: a handoff copy goes once this many primaries took
    /// it; `None` (Swift's `auto`) waits for all of them.
    pub handoff_delete: Option<usize>,
}

impl ReplicatorSettings {
    /// Reads `section` (`[DEFAULT]` merged in); `log_name` defaults to the
    /// daemon's name.
    pub fn from_section(section: &Section, name: &str, default_port: u16) -> Result<ReplicatorSettings, ConfigError> {
        let mut server = ServerSettings::from_section(section, name, default_port)?;
        // Swift's DB replicator waits 10 s for a peer, not a server's 3 s.
        if !section.contains_key("node_timeout") {
            server.node_timeout = Duration::from_secs(10);
        }
        let run_pause = non_negative(section, "run_pause", 30.0)?;
        let interval = non_negative(section, "interval", run_pause)?;
        let concurrency = section.get_usize("concurrency", 8)?;
        if concurrency == 0 {
            return Err(section.value_error("concurrency", "0", "a count of 1 or more"));
        }
        let per_diff = section.get_usize("per_diff", 1000)?;
        if per_diff == 0 {
            return Err(section.value_error("per_diff", "0", "a count of 1 or more"));
        }
        Ok(ReplicatorSettings {
            server,
            interval: Duration::from_secs_f64(interval),
            concurrency,
            databases_per_second: non_negative(section, "databases_per_second", 50.0)?,
            per_diff,
            max_diffs: section.get_usize("max_diffs", 100)?.max(1),
            reclaim_age: non_negative(section, "reclaim_age", 604800.0)?,
            handoffs_only: section.get_bool("handoffs_only", false)?,
            handoff_delete: match section.get_str("handoff_delete", "auto")?.trim() {
                "auto" | "" => None,
                n => match n.parse::<usize>() {
                    Ok(0) => None,
                    Ok(n) => Some(n),
                    Err(_) => return Err(section.value_error("handoff_delete", n, "auto or a count of primaries")),
                },
            },
        })
    }
}

/// A device of the ring as replication needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: u32,
    pub region: i64,
    pub replication_ip: String,
    pub replication_port: u16,
    pub device: String,
}

/// What the replicator asks of the account or container ring (the ring
/// crate depends on this one, so it implements this for its `Ring` behind
/// its `db` feature).
/// Lookups may reload the ring from disk: called on blocking threads.
pub trait DbRing: Send + Sync + 'static {
    /// Every device of the ring.
    fn devices(&self) -> Vec<Node>;
    /// The primaries of `part`, in replica order.
    fn part_nodes(&self, part: u32) -> Vec<Node>;
    /// The handoffs of `part`, in Swift's order.
    fn more_nodes(&self, part: u32) -> Vec<Node>;
    /// The partition of an account or container.
    fn get_part(&self, account: &str, container: Option<&str>) -> Option<u32>;
}

/// What a pass did: Swift's `stats` of the DB replicator, reported to
/// recon as `replication_stats`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    pub attempted: u64,
    pub success: u64,
    pub failure: u64,
    pub no_change: u64,
    pub hashmatch: u64,
    pub rsync: u64,
    pub diff: u64,
    pub diff_capped: u64,
    pub remote_merge: u64,
    pub remove: u64,
    pub empty: u64,
    /// replication ip → device → failures.
    pub failure_nodes: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Stats {
    fn add_failure(&mut self, ip: &str, device: &str) {
        self.failure += 1;
        *self.failure_nodes.entry(ip.to_string()).or_default().entry(device.to_string()).or_default() += 1;
    }

    /// Swift's `replication_stats` dict.
    pub fn to_json(&self, start: f64) -> Value {
        serde_json::json!({
            "attempted": self.attempted, "success": self.success, "failure": self.failure,
            "no_change": self.no_change, "hashmatch": self.hashmatch, "rsync": self.rsync,
            "diff": self.diff, "diff_capped": self.diff_capped, "remote_merge": self.remote_merge,
            "remove": self.remove, "empty": self.empty, "ts_repl": 0, "deferred": 0, "start": start,
            "failure_nodes": self.failure_nodes,
        })
    }
}

/// Why one push to a peer failed.
#[derive(Debug)]
enum PeerError {
    /// 507: the peer's device is unmounted; try a handoff.
    NotMounted,
    Other(String),
}

fn other(e: impl std::fmt::Display) -> PeerError {
    PeerError::Other(e.to_string())
}

/// One database to replicate.
#[derive(Debug, Clone)]
struct Job {
    device: String,
    node_id: u32,
    partition: u32,
    db_file: PathBuf,
}

/// The DB replicator of databases of kind `K` (`datadir` `containers` or
/// `accounts`).
pub struct DbReplicator<K: BrokerKind> {
    pub settings: ReplicatorSettings,
    ring: Arc<dyn DbRing>,
    devices: Arc<Devices>,
    client: BackendClient,
    datadir: &'static str,
    stats: Mutex<Stats>,
    kind: PhantomData<fn() -> K>,
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl<K: BrokerKind> DbReplicator<K> {
    pub fn new(settings: ReplicatorSettings, ring: Arc<dyn DbRing>, datadir: &'static str) -> Self {
        let s = &settings.server;
        let devices = Arc::new(Devices::new(s.devices.clone(), s.mount_check, s.threads_per_disk));
        let client = BackendClient::new(s.conn_timeout, s.node_timeout);
        DbReplicator { settings, ring, devices, client, datadir, stats: Mutex::new(Stats::default()), kind: PhantomData }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One pass over `scope`; returns Swift's recon figures
    /// (`replication_time` in seconds, `replication_stats`,
    /// `replication_last`).
    pub async fn run_once(self: Arc<Self>, scope: Scope) -> Vec<(&'static str, Value)> {
        let begin = Instant::now();
        let start = now_secs();
        *self.stats() = Stats::default();
        if self.settings.handoffs_only || self.settings.handoff_delete.is_some() {
            log::warning(
                "Starting replication pass with handoffs_only and/or handoffs_delete enabled. These modes are not intended for normal \
                 operation; use these options with care.",
            );
        }
        log::info("Beginning replication run");
        let jobs = self.collect_jobs(&scope).await;
        let me = self.clone();
        crate::daemon::sweep(jobs, self.settings.concurrency, self.settings.databases_per_second, move |job| {
            let me = me.clone();
            async move { me.replicate_db(job).await }
        })
        .await;
        let elapsed = begin.elapsed().as_secs_f64();
        let stats = self.stats().clone();
        log::info(&format!(
            "Replication run OVER: {:.2}s; attempted {}, success {}, failure {}, no_change {}, hashmatch {}, rsync {}, diff {}, \
             remote_merge {}, remove {}",
            elapsed,
            stats.attempted,
            stats.success,
            stats.failure,
            stats.no_change,
            stats.hashmatch,
            stats.rsync,
            stats.diff,
            stats.remote_merge,
            stats.remove
        ));
        // Swift's replicator counts each event as it happens; statsd sums
        // them, so the pass's totals give the same figures.
        if let Some(statsd) = &self.settings.server.statsd {
            statsd.update_counts(&[
                ("attempts", stats.attempted),
                ("successes", stats.success),
                ("failures", stats.failure),
                ("no_changes", stats.no_change),
                ("hashmatches", stats.hashmatch),
                ("rsyncs", stats.rsync),
                ("diffs", stats.diff),
                ("diff_caps", stats.diff_capped),
                ("remote_merges", stats.remote_merge),
                ("removes", stats.remove),
                ("empties", stats.empty),
            ]);
        }
        vec![
            ("replication_time", Value::from(elapsed)),
            ("replication_stats", stats.to_json(start)),
            ("replication_last", Value::from(now_secs())),
        ]
    }

    /// Every database on this node's ring devices in scope.
    async fn collect_jobs(&self, scope: &Scope) -> Vec<Job> {
        let bind_ip = self.settings.server.bind_ip.clone();
        let ring = self.ring.clone();
        let Ok((my_ips, devs)) = tokio::task::spawn_blocking(move || (whataremyips(&bind_ip), ring.devices())).await else {
            return Vec::new();
        };
        let port = self.settings.server.bind_port;
        let local: Vec<Node> =
            devs.into_iter().filter(|d| is_local_device(&my_ips, Some(port), &d.replication_ip, d.replication_port)).collect();
        if local.is_empty() {
            let ips: Vec<String> = my_ips.iter().map(IpAddr::to_string).collect();
            log::error(&format!("Can't find itself {} with port {port} in ring file, not replicating", ips.join(", ")));
        }
        let mut jobs = Vec::new();
        for node in local.into_iter().filter(|n| scope.has_device(&n.device)) {
            let path = match self.devices.check_async(&node.device).await {
                Ok(p) => p,
                Err(e) => {
                    log::warning(&format!("Skipping {e}"));
                    continue;
                }
            };
            let (datadir, reclaim_age) = (self.datadir, self.settings.reclaim_age);
            let found = self
                .devices
                .run(&node.device, move || {
                    // Uploads that never completed (Swift's unlink_older_than).
                    remove_older_than(&path.join(TMP_SEGMENT_NAME), now_secs() - reclaim_age);
                    walk_datadir(&path.join(datadir))
                })
                .await;
            for (partition, db_file) in found.into_iter().filter(|(p, _)| scope.has_partition(*p)) {
                jobs.push(Job { device: node.device.clone(), node_id: node.id, partition, db_file });
            }
        }
        jobs
    }

    /// Runs `work` on a fresh broker of `db_file` on the device's pool.
    async fn with_broker<T: Send + 'static>(
        &self,
        device: &str,
        db_file: &Path,
        work: impl FnOnce(&mut DatabaseBroker<K>) -> Result<T, super::DbError> + Send + 'static,
    ) -> Result<T, String> {
        let db = db_file.to_path_buf();
        self.devices
            .run(device, move || {
                let mut b = DatabaseBroker::<K>::new(db);
                work(&mut b)
            })
            .await
            .map_err(|e| e.to_string())
    }

    /// Swift's `_replicate_object`: one database to its primaries.
    async fn replicate_db(self: Arc<Self>, job: Job) {
        self.stats().attempted += 1;
        let now = now_secs();
        let reclaim_age = self.settings.reclaim_age;
        let ring = self.ring.clone();
        let read = self
            .with_broker(&job.device, &job.db_file, move |b| {
                let age = Timestamp::from_secs_f64((now - reclaim_age).max(0.0)).unwrap_or(Timestamp::ZERO);
                // Databases whose creation died half way (Swift's
                // `_reclaim_tmp_dbs`).
                if let Some(dir) = b.db_file().parent() {
                    remove_older_than_matching(dir, now - reclaim_age, |name| name.ends_with(".tmp"));
                }
                b.reclaim(&age, now - 2.0 * reclaim_age)?;
                let info = b.get_replication_info()?;
                // A container goes only once the account has heard of its
                // deletion (Swift's `report_up_to_date`), or the account
                // would list it for ever.
                let expired = b.is_reclaimable(now, reclaim_age)?;
                let reclaimable = expired && report_up_to_date(&info);
                let s = |k: &str| info.get(k).and_then(Value::as_str).map(String::from);
                let part = s("account").and_then(|a| ring.get_part(&a, s("container").as_deref()));
                Ok((info, (expired, reclaimable), part))
            })
            .await;
        let (info, (expired, reclaimable), part) = match read {
            Ok(r) => r,
            Err(e) => {
                log::error(&format!("ERROR reading db {}: {e}", job.db_file.display()));
                if e.contains("no such table") {
                    // Swift's rule: a database without its tables is moved
                    // aside; a good copy comes back from the other nodes.
                    let db = job.db_file.clone();
                    match self.devices.run(&job.device, move || super::auditor::quarantine_db(&db, K::DB_TYPE)).await {
                        Ok(to) => log::error(&format!("Quarantined DB {} to {}", job.db_file.display(), to.display())),
                        Err(qe) => log::error(&format!("ERROR quarantining DB {}: {qe}", job.db_file.display())),
                    }
                }
                let ring = self.ring.clone();
                let nodes = tokio::task::spawn_blocking(move || ring.part_nodes(job.partition)).await.unwrap_or_default();
                let mut st = self.stats();
                for n in nodes {
                    st.add_failure(&n.replication_ip, &n.device);
                }
                return;
            }
        };
        if reclaimable {
            self.delete_db(&job, None).await;
            return;
        }
        let mut partition = job.partition;
        let mut should_be_here = true;
        if let Some(p) = part.filter(|p| *p != job.partition) {
            log::error(&format!("Found db {} that should be on partition {p}; will replicate out and remove", job.db_file.display()));
            partition = p;
            should_be_here = false;
        }
        let ring = self.ring.clone();
        let Ok((nodes, more)) = tokio::task::spawn_blocking(move || (ring.part_nodes(partition), ring.more_nodes(partition))).await else {
            return;
        };
        if should_be_here {
            should_be_here = nodes.iter().any(|n| n.id == job.node_id);
        }
        if should_be_here && self.settings.handoffs_only {
            return;
        }
        // Swift's order: start with the node after ours, so that with nodes
        // a b c, a talks to b first, b to c and c to a, and no node starves.
        let mut targets: Vec<Node> = match nodes.iter().position(|n| n.id == job.node_id) {
            Some(i) if nodes.len() > 1 => nodes[i + 1..].iter().chain(nodes[..i].iter()).cloned().collect(),
            Some(_) => Vec::new(),
            None => nodes.clone(),
        };
        let mut more = more.into_iter().filter(|n| n.id != job.node_id);
        let mut responses = Vec::new();
        let mut i = 0;
        while i < targets.len() {
            let node = targets[i].clone();
            i += 1;
            let ok = match self.repl_to_node(&node, partition, &job, &info, expired).await {
                Ok(ok) => ok,
                Err(PeerError::NotMounted) => {
                    log::error(&format!(
                        "ERROR Remote drive not mounted {}:{}/{}",
                        node.replication_ip, node.replication_port, node.device
                    ));
                    match more.next() {
                        Some(h) => targets.push(h),
                        None => log::error(&format!(
                            "ERROR There are not enough handoff nodes to reach replica count for partition {partition}"
                        )),
                    }
                    false
                }
                Err(PeerError::Other(e)) => {
                    log::error(&format!(
                        "ERROR syncing {} with {}:{}/{}: {e}",
                        job.db_file.display(),
                        node.replication_ip,
                        node.replication_port,
                        node.device
                    ));
                    false
                }
            };
            let mut st = self.stats();
            if ok {
                st.success += 1;
            } else {
                st.add_failure(&node.replication_ip, &node.device);
            }
            drop(st);
            responses.push(ok);
        }
        let successes = responses.iter().filter(|r| **r).count();
        let enough = match self.settings.handoff_delete {
            Some(n) => successes >= n,
            None => !responses.is_empty() && successes == responses.len(),
        };
        if !should_be_here && enough {
            // Only if nothing arrived while we pushed (Swift's max_row
            // check), the pending file included: both are checked under the
            // lock pending writers take, so no update can slip in unseen.
            let before = info.get("max_row").and_then(Value::as_i64).unwrap_or(-1);
            self.delete_db(&job, Some(before)).await;
        }
    }

    /// Removes a database's directory under its lock, then the suffix and
    /// partition directories if they became empty (Swift's `delete_db`).
    /// With `unchanged_since`, only if the database still has that
    /// max_row and nothing pending.
    async fn delete_db(&self, job: &Job, unchanged_since: Option<i64>) {
        let db = job.db_file.clone();
        let removed = self
            .devices
            .run(&job.device, move || -> Result<bool, String> {
                let Some(hash_dir) = db.parent() else { return Ok(false) };
                {
                    let lock = super::pending::lock_dir(hash_dir, Duration::from_secs(10)).map_err(|e| e.to_string())?;
                    if lock.is_none() {
                        return Err("its directory is locked".into());
                    }
                    if let Some(before) = unchanged_since {
                        let pending = super::pending::pending_size(&super::pending::pending_path(&db)).map_err(|e| e.to_string())?;
                        let max_row = DatabaseBroker::<K>::new(db.clone()).max_row().map_err(|e| e.to_string())?;
                        if pending > 0 || max_row != before {
                            log::info(&format!(
                                "Not deleting db {} (new rows: {}, pending: {pending} bytes)",
                                db.display(),
                                max_row - before
                            ));
                            return Ok(false);
                        }
                    }
                    std::fs::remove_dir_all(hash_dir).map_err(|e| e.to_string())?;
                }
                let suffix = hash_dir.parent();
                for dir in [suffix, suffix.and_then(Path::parent)].into_iter().flatten() {
                    if std::fs::remove_dir(dir).is_err() {
                        break;
                    }
                }
                Ok(true)
            })
            .await;
        match removed {
            Ok(true) => self.stats().remove += 1,
            Ok(false) => {}
            Err(e) => log::error(&format!("ERROR removing db {}: {e}", job.db_file.display())),
        }
    }

    /// Sends one REPLICATE RPC; the status and body.
    async fn rpc(&self, node: &Node, partition: u32, hash: &str, op: &str, args: Vec<Value>) -> Result<(StatusCode, Bytes), PeerError> {
        self.rpc_with(&self.client, node, partition, hash, op, args).await
    }

    /// A client like ours that waits up to `timeout` for an answer: the
    /// peer answers an upload or a merge of a whole database only when done.
    fn patient_client(&self, timeout: Duration) -> BackendClient {
        BackendClient::new(self.settings.server.conn_timeout, timeout.max(self.settings.server.node_timeout))
    }

    /// [`Self::rpc`] with `client`.
    async fn rpc_with(
        &self,
        client: &BackendClient,
        node: &Node,
        partition: u32,
        hash: &str,
        op: &str,
        args: Vec<Value>,
    ) -> Result<(StatusCode, Bytes), PeerError> {
        let path = format!("/{}/{partition}/{hash}", node.device);
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let replicate = Method::from_bytes(b"REPLICATE").map_err(other)?;
        let resp = client
            .request(replicate, &node.replication_ip, node.replication_port, &path, headers, full(rpc_body(op, args)))
            .await
            .map_err(other)?;
        let (status, _, body) = read_body(resp, crate::dbserver::replicate::MAX_RPC_BODY, client.node_timeout()).await.map_err(other)?;
        if status == StatusCode::INSUFFICIENT_STORAGE {
            return Err(PeerError::NotMounted);
        }
        Ok((status, body))
    }

    /// Swift's `_repl_to_node` and `_handle_sync_response`.
    /// `expired`: the database was deleted, is empty and older than
    /// `reclaim_age` (only waiting for its account report to go).
    async fn repl_to_node(
        &self,
        node: &Node,
        partition: u32,
        job: &Job,
        info: &Map<String, Value>,
        expired: bool,
    ) -> Result<bool, PeerError> {
        let hash = db_hash(&job.db_file);
        let local_id = info.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        let (status, body) = self.rpc(node, partition, &hash, "sync", sync_args(info, K::DB_TYPE)).await?;
        if status == StatusCode::NOT_FOUND && expired {
            // The peer already reclaimed it, which is where we are going.
            // (Swift would send it again: the copy, re-id'd and so owing
            // its own account report, could then bounce between nodes for
            // as long as their updaters lag their replicators.)
            return Ok(true);
        }
        if status == StatusCode::NOT_FOUND {
            self.stats().rsync += 1;
            return self.push_whole(node, partition, job, info, "complete_rsync").await;
        }
        if !status.is_success() {
            return Err(PeerError::Other(format!("Bad response {status} to sync")));
        }
        let rinfo: Map<String, Value> = serde_json::from_slice(&body).map_err(|e| other(format!("bad sync reply: {e}")))?;
        let r_id = rinfo.get("id").and_then(Value::as_str).unwrap_or("").to_string();
        let r_point = rinfo.get("point").and_then(Value::as_i64).unwrap_or(-1);
        let r_max = rinfo.get("max_row").and_then(Value::as_i64).unwrap_or(-1);
        let r_hash = rinfo.get("hash").and_then(Value::as_str).unwrap_or("").to_string();
        let r_md = rinfo.get("metadata").and_then(Value::as_str).and_then(|m| parse_metadata(m).ok()).unwrap_or_default();
        // Only a peer that told all three timestamps can move ours.
        let ts = |k: &str| rinfo.get(k).and_then(Value::as_str).filter(|t| Timestamp::parse(t).is_ok()).map(String::from);
        let remote_ts = (ts("created_at"), ts("put_timestamp"), ts("delete_timestamp"));
        let differs = ["created_at", "put_timestamp", "delete_timestamp"].iter().any(|k| info.get(*k) != rinfo.get(*k));
        let merge_ts = match remote_ts {
            (Some(c), Some(p), Some(d)) if K::DB_TYPE == "container" && differs => Some((c, p, d)),
            _ => None,
        };
        // Containers: take the peer's policy if its replica is the better
        // one (Swift's ContainerReplicator._handle_sync_response).
        let adopt = match (PolicyInfo::from_info(info), PolicyInfo::from_info(&rinfo)) {
            (Some(local), Some(remote)) if incorrect_policy_index(&local, &remote) => Some(remote.storage_policy_index),
            _ => None,
        };
        let rid = r_id.clone();
        let local_sync = self
            .with_broker(&job.device, &job.db_file, move |b| {
                if let Some(policy) = adopt {
                    adopt_policy(b, policy)?;
                }
                if let Some((created, put, delete)) = merge_ts {
                    b.merge_timestamps(&created, &put, &delete)?;
                }
                if !r_md.is_empty() {
                    b.update_metadata(&r_md, None)?;
                }
                b.get_sync(&rid, false)
            })
            .await
            .map_err(other)?;
        let max_row = info.get("max_row").and_then(Value::as_i64).unwrap_or(-1);
        let local_hash = info.get("hash").and_then(Value::as_str).unwrap_or("");
        if r_point.max(local_sync) >= max_row {
            self.stats().no_change += 1;
            return Ok(true);
        }
        if r_hash == local_hash {
            self.stats().hashmatch += 1;
            let p = SyncPoint { remote_id: r_id, sync_point: r_point };
            self.with_broker(&job.device, &job.db_file, move |b| b.merge_syncs(&[p], false)).await.map_err(other)?;
            return Ok(true);
        }
        if max_row > 0 && (r_max as f64) / (max_row as f64) < 0.5 && max_row - r_max > self.settings.per_diff as i64 {
            self.stats().remote_merge += 1;
            return self.push_whole(node, partition, job, info, "rsync_then_merge").await;
        }
        self.usync(node, partition, job, r_point.max(local_sync), &r_id, &local_id).await
    }

    /// Swift's `_usync_db`: the rows since `point`, then the sync tables.
    async fn usync(
        &self,
        node: &Node,
        partition: u32,
        job: &Job,
        mut point: i64,
        remote_id: &str,
        local_id: &str,
    ) -> Result<bool, PeerError> {
        self.stats().diff += 1;
        let hash = db_hash(&job.db_file);
        let per_diff = self.settings.per_diff;
        let sync_table = self.with_broker(&job.device, &job.db_file, |b| b.get_syncs(true)).await.map_err(other)?;
        let mut diffs = 0;
        loop {
            let from = point;
            let rows = self.with_broker(&job.device, &job.db_file, move |b| b.get_items_since(from, per_diff)).await.map_err(other)?;
            let Some(last) = rows.last().and_then(|r| r.get("ROWID")).and_then(Value::as_i64) else { break };
            if diffs >= self.settings.max_diffs {
                self.stats().diff_capped += 1;
                log::info(&format!(
                    "Synchronization of {} has fallen more than {} rows behind; moving on and will try again next pass",
                    job.db_file.display(),
                    self.settings.max_diffs * per_diff
                ));
                return Ok(false);
            }
            diffs += 1;
            let rows = Value::Array(rows.into_iter().map(Value::Object).collect());
            let (status, _) = self.rpc(node, partition, &hash, "merge_items", vec![rows, Value::from(local_id)]).await?;
            if !status.is_success() {
                return Err(PeerError::Other(format!("Bad response {status} to merge_items")));
            }
            point = last;
        }
        let syncs = serde_json::to_value(&sync_table).map_err(other)?;
        let (status, _) = self.rpc(node, partition, &hash, "merge_syncs", vec![syncs]).await?;
        if !status.is_success() {
            return Err(PeerError::Other(format!("Bad response {status} to merge_syncs")));
        }
        let p = SyncPoint { remote_id: remote_id.to_string(), sync_point: point };
        self.with_broker(&job.device, &job.db_file, move |b| b.merge_syncs(&[p], false)).await.map_err(other)?;
        Ok(true)
    }

    /// Swift's `_rsync_db` over HTTP: a consistent snapshot of the database
    /// is uploaded to the peer's `<dev>/tmp/<local_id>`, then `method`
    /// (`complete_rsync` or `rsync_then_merge`) moves it into place there.
    async fn push_whole(&self, node: &Node, partition: u32, job: &Job, info: &Map<String, Value>, method: &str) -> Result<bool, PeerError> {
        let local_id = info.get("id").and_then(Value::as_str).unwrap_or("");
        let rows = info.get("count").and_then(Value::as_u64).unwrap_or(0);
        let db = job.db_file.clone();
        let snap_dir = self.devices.root().join(&job.device).join(TMP_SEGMENT_NAME);
        let (snapshot, len) = self.devices.run(&job.device, move || snapshot_db::<K>(&db, &snap_dir)).await.map_err(other)?;
        let result = self.upload(node, &job.device, &snapshot, len, local_id).await;
        let snap = snapshot.clone();
        self.devices
            .run(&job.device, move || {
                let _ = std::fs::remove_file(&snap);
            })
            .await;
        result?;
        let hash = db_hash(&job.db_file);
        let db_name = format!("{hash}.db");
        // The peer merges our rows into its copy before it answers: Swift
        // allows a second per 2000 rows.
        let client = self.patient_client(Duration::from_secs(rows / 2000));
        let args = vec![Value::from(local_id), Value::from(db_name)];
        let (status, _) = self.rpc_with(&client, node, partition, &hash, method, args).await?;
        Ok(status.is_success())
    }

    /// Streams `file` to `REPLICATE /<dev>/tmp/<name>` on `node`, read in
    /// chunks on the device's pool.
    async fn upload(&self, node: &Node, device: &str, file: &Path, len: u64, name: &str) -> Result<(), PeerError> {
        const CHUNK: usize = 1 << 20;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, crate::http::BoxError>>(4);
        let devices = self.devices.clone();
        let (dev, path) = (device.to_string(), file.to_path_buf());
        let reader = tokio::spawn(async move {
            let mut offset = 0u64;
            loop {
                let p = path.clone();
                let chunk = devices
                    .run(&dev, move || -> std::io::Result<Vec<u8>> {
                        use std::io::{Read, Seek, SeekFrom};
                        let mut f = std::fs::File::open(&p)?;
                        f.seek(SeekFrom::Start(offset))?;
                        let mut buf = Vec::with_capacity(CHUNK);
                        f.take(CHUNK as u64).read_to_end(&mut buf)?;
                        Ok(buf)
                    })
                    .await;
                match chunk {
                    Ok(buf) if buf.is_empty() => return,
                    Ok(buf) => {
                        offset += buf.len() as u64;
                        if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Box::new(e))).await;
                        return;
                    }
                }
            }
        });
        let body: Body = http_body_util::BodyExt::boxed(ChannelBody { rx, len });
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/octet-stream"));
        let replicate = Method::from_bytes(b"REPLICATE").map_err(other)?;
        let path = format!("/{}/{TMP_SEGMENT_NAME}/{name}", node.device);
        // The answer comes once the whole file is written: allow for a slow
        // link (1 MiB/s) on top of node_timeout.
        let client = self.patient_client(self.settings.server.node_timeout + Duration::from_secs(len >> 20));
        let sent = client.request(replicate, &node.replication_ip, node.replication_port, &path, headers, body).await;
        reader.abort();
        let resp = sent.map_err(other)?;
        let (status, _, _) = read_body(resp, 64 * 1024, client.node_timeout()).await.map_err(other)?;
        match status {
            StatusCode::INSUFFICIENT_STORAGE => Err(PeerError::NotMounted),
            s if s.is_success() => Ok(()),
            s => Err(PeerError::Other(format!("Bad response {s} to the database upload"))),
        }
    }
}

/// An upload body fed through a channel (chunks read on the device's
/// pool), with its exact length so it goes with `Content-Length`.
struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, crate::http::BoxError>>,
    len: u64,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = crate::http::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(http_body::Frame::data)))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.len)
    }
}

/// `<hash>` of `<...>/<hash>/<hash>.db`.
fn db_hash(db_file: &Path) -> String {
    db_file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A consistent copy of a database in `dir` (pending updates merged
/// first): SQLite's `VACUUM INTO` reads one snapshot under a read
/// transaction, so a concurrent writer can never tear it. ROWIDs of the
/// rows tables are kept (they are `INTEGER PRIMARY KEY`), and with them
/// the sync points that refer to them.
fn snapshot_db<K: BrokerKind>(db_file: &Path, dir: &Path) -> Result<(PathBuf, u64), super::DbError> {
    std::fs::create_dir_all(dir)?;
    let out = dir.join(format!(".snapshot.{:016x}.db", rand::random::<u64>()));
    let mut b = DatabaseBroker::<K>::new(db_file.to_path_buf());
    b.commit_pending()?;
    let target = out.to_string_lossy().into_owned();
    b.conn()?.execute("VACUUM INTO ?1", [target])?;
    let len = std::fs::metadata(&out)?.len();
    Ok((out, len))
}

/// Whether a container's last report to its account matches its state
/// (Swift's `ContainerReplicator.report_up_to_date`); always for accounts.
fn report_up_to_date(info: &Map<String, Value>) -> bool {
    [
        ("reported_put_timestamp", "put_timestamp"),
        ("reported_delete_timestamp", "delete_timestamp"),
        ("reported_bytes_used", "bytes_used"),
        ("reported_object_count", "count"),
    ]
    .iter()
    .all(|(reported, value)| match info.get(*reported) {
        None => true,
        Some(r) => Some(r) == info.get(*value),
    })
}

/// Removes the files in `dir` last modified before `before` (seconds).
fn remove_older_than(dir: &Path, before: f64) {
    remove_older_than_matching(dir, before, |_| true)
}

/// Removes the files in `dir` whose name `wanted` accepts, last modified
/// before `before` (seconds).
fn remove_older_than_matching(dir: &Path, before: f64, wanted: impl Fn(&str) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten().filter(|e| e.file_name().to_str().is_some_and(&wanted)) {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .is_some_and(|t| t.as_secs_f64() < before);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Every `(partition, db file)` at `<datadir>/<part>/<suffix>/<hash>/<hash>.db`.
fn walk_datadir(datadir: &Path) -> Vec<(u32, PathBuf)> {
    let read = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p).map(|it| it.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default()
    };
    let mut dbs = Vec::new();
    for part_dir in read(datadir) {
        let Some(part) = part_dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok()) else { continue };
        for suffix in read(&part_dir).into_iter().filter(|p| p.is_dir()) {
            for hash_dir in read(&suffix).into_iter().filter(|p| p.is_dir()) {
                let Some(hash) = hash_dir.file_name().and_then(|n| n.to_str()).map(String::from) else { continue };
                let db = hash_dir.join(format!("{hash}.db"));
                if db.is_file() {
                    dbs.push((part, db));
                }
            }
        }
    }
    dbs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    #[test]
    fn settings_have_swifts_names_and_defaults() {
        let conf = ConfigFile::parse(
            "[DEFAULT]\ndevices = /d\nbind_port = 6201\n[container-replicator]\nrun_pause = 7\nper_diff = 10\nmax_diffs = 2\n\
             rsync_module = {replication_ip}::container\nreclaim_age = 60\n",
            "c.conf",
        )
        .unwrap();
        let section = conf.section("container-replicator").unwrap();
        let s = ReplicatorSettings::from_section(&section, "container-replicator", 6201).unwrap();
        assert_eq!((s.interval, s.per_diff, s.max_diffs, s.reclaim_age), (Duration::from_secs(7), 10, 2, 60.0));
        let d = ReplicatorSettings::from_section(&ConfigFile::parse("[DEFAULT]\n", "d.conf").unwrap().defaults(), "x", 6201).unwrap();
        assert_eq!((d.interval, d.concurrency, d.per_diff, d.max_diffs, d.reclaim_age), (Duration::from_secs(30), 8, 1000, 100, 604800.0));
        assert_eq!((d.handoffs_only, d.handoff_delete), (false, None));
        assert_eq!((d.server.node_timeout, d.server.conn_timeout), (Duration::from_secs(10), Duration::from_millis(500)));
        let h = ConfigFile::parse("[DEFAULT]\nhandoffs_only = yes\nhandoff_delete = 2\n", "h.conf").unwrap();
        let h = ReplicatorSettings::from_section(&h.defaults(), "x", 6201).unwrap();
        assert_eq!((h.handoffs_only, h.handoff_delete), (true, Some(2)));
        let bad = ConfigFile::parse("[DEFAULT]\nhandoff_delete = some\n", "b.conf").unwrap();
        assert!(ReplicatorSettings::from_section(&bad.defaults(), "x", 6201).is_err());
    }

    #[test]
    fn the_datadir_walk_finds_each_db_with_its_partition() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::super::broker::db_path(dir.path(), "containers", 12, "0123456789abcdef0123456789abcabc");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        std::fs::write(&db, b"").unwrap();
        std::fs::write(db.with_extension("db.pending"), b"").unwrap();
        assert_eq!(walk_datadir(&dir.path().join("containers")), vec![(12, db)]);
    }
}
