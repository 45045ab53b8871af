//! Swift's object-replicator daemon (swift/obj/replicator.py, replication
//! policies, with SSYNC as the transport): replicas of every partition
//! converge after any single failure.
//!
//! Each pass walks the partitions under `objects[-N]` of every local
//! device (the ring's devices whose replication address is this server's:
//! Swift's `whataremyips` and `bind_port`), in random order:
//!
//! - A partition this device is a primary for (an *update* job): its suffix
//!   hashes are compared with each other primary's (`REPLICATE`), the
//!   suffixes that differ are synced over SSYNC, and the peer is asked to
//!   rehash them. A primary that answers 507 (unmounted) is replaced by the
//!   next handoff, as in Swift; one that cannot be reached is retried next
//!   pass (the other replicas still hold the data).
//! - A partition this device is not a primary for (a *revert* job, left by
//!   a write while a primary was down): everything is synced to every
//!   primary, and the local copy is removed only when all of them (or
//!   `handoff_delete` of them) confirmed. Only the objects whose state is
//!   still the one synced are removed: a write that landed meanwhile stays
//!   for the next pass (Swift removes the whole partition).
//!
//! SSYNC never replaces newer state with older: a receiver takes a `.data`,
//! `.ts` or `.meta` only when it is newer than its own.

use crate::hashes;
use crate::ssync::disk;
use crate::ssync::sender::{Sender, Source, SyncReport, Target};
use crate::ssync::wire::ObjectTimestamps;
use common::backend::{read_body, BackendClient};
use common::backend_headers as bh;
use common::config::{ConfigError, ConfigFile, Section};
use common::daemon::Scope;
use common::devices::Devices;
use common::host::{is_local_device, whataremyips};
use common::log;
use common::server::ServerSettings;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use rand::seq::SliceRandom;
use ring::{Device, Ring, RingTable};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The `[object-replicator]` section of `object-server.conf` (with
/// `[DEFAULT]` merged in), under Swift's names and defaults.
#[derive(Debug, Clone)]
pub struct ReplicatorSettings {
    /// devices, mount_check, swift_dir, log_name (`object-replicator`),
    /// log_level, bind_ip, bind_port (6200), conn_timeout (0.5),
    /// node_timeout (10 here), recon_cache_path.
    pub server: ServerSettings,
    /// `ring_ip` (default `bind_ip`): the address matched against the
    /// ring's replication addresses; `0.0.0.0` means every local address.
    pub ring_ip: String,
    /// `servers_per_port`: when above 0, devices are matched by address
    /// only (each has a port of its own).
    pub servers_per_port: u64,
    /// `interval` (or the deprecated `run_pause`; 30 s): from the start of
    /// one pass to the start of the next.
    pub interval: Duration,
    /// `concurrency` (1): partitions replicated at once.
    pub concurrency: usize,
    /// `handoffs_first` (false): handoff partitions before all others, and
    /// the pass stops while any is left.
    pub handoffs_first: bool,
    /// `handoff_delete` (`auto`, 0 here): a handoff partition is removed
    /// after this many primaries took it; 0 means all of them.
    pub handoff_delete: usize,
    /// `http_timeout` (60 s): longest wait for a `REPLICATE` answer and for
    /// each line of an SSYNC answer.
    pub http_timeout: Duration,
    /// `lockup_timeout` (1800 s): a pass in which no partition finishes for
    /// this long is abandoned.
    pub lockup_timeout: Duration,
    /// `reclaim_age` (one week): tombstones older than this are reclaimed
    /// when hashing, and temp files older than this are deleted.
    pub reclaim_age: Duration,
    /// `ring_check_interval` (15 s): how often the ring files are checked;
    /// a changed ring ends the pass.
    pub ring_check_interval: Duration,
    /// `stats_interval` (300 s): how often progress is logged in a pass.
    pub stats_interval: Duration,
    /// `network_chunk_size` (65536): largest chunk sent at once.
    pub network_chunk_size: usize,
    /// `disk_chunk_size` (65536): bytes read from disk at a time.
    pub disk_chunk_size: usize,
}

fn seconds(s: &Section, key: &str, default: f64) -> Result<Duration, ConfigError> {
    Ok(Duration::from_secs_f64(common::daemon::non_negative(s, key, default)?))
}

impl ReplicatorSettings {
    /// Reads `[object-replicator]`, or `[DEFAULT]` alone when the file has
    /// no such section; errors name the file, line and key.
    pub fn from_config(conf: &ConfigFile) -> Result<ReplicatorSettings, ConfigError> {
        let s: Section = conf.section("object-replicator").unwrap_or_else(|| conf.defaults());
        let mut server = ServerSettings::from_section(&s, "object-replicator", 6200)?;
        // Swift's replicator waits longer for a peer than the servers'
        // shared default (10 s, not 3).
        if !s.contains_key("node_timeout") {
            server.node_timeout = Duration::from_secs(10);
        }
        let interval = match (s.get("interval").filter(|v| !v.is_empty()), s.get("run_pause").filter(|v| !v.is_empty())) {
            (Some(_), run_pause) => {
                if run_pause.is_some() {
                    log::warning(
                        "Option object-replicator/run_pause is deprecated and object-replicator/interval is already configured. \
                         You can safely remove run_pause; it is now ignored and will be removed in a future version.",
                    );
                }
                seconds(&s, "interval", 30.0)?
            }
            (None, Some(_)) => {
                log::warning(
                    "Option object-replicator/run_pause is deprecated and will be removed in a future version. \
                     Update your configuration to use option object-replicator/interval.",
                );
                seconds(&s, "run_pause", 30.0)?
            }
            (None, None) => Duration::from_secs(30),
        };
        let concurrency = s.get_usize("concurrency", 1)?;
        if concurrency == 0 {
            return Err(s.value_error("concurrency", "0", "a count of 1 or more"));
        }
        let handoff_delete = match s.get_str("handoff_delete", "auto")?.trim() {
            v if v.eq_ignore_ascii_case("auto") => 0,
            v => v.parse::<usize>().map_err(|_| s.value_error("handoff_delete", v, "auto or a number of replicas"))?,
        };
        let chunk = |key: &str| -> Result<usize, ConfigError> {
            let v = s.get_usize(key, 65536)?;
            if v == 0 {
                return Err(s.value_error(key, "0", "a positive number of bytes"));
            }
            Ok(v)
        };
        // We have no rsync: SSYNC is the only transport.
        if let Some(m) = s.get("sync_method").filter(|m| !m.trim().eq_ignore_ascii_case("ssync")) {
            log::warning(&format!("sync_method = {m} is not supported; replicating with ssync"));
        }
        Ok(ReplicatorSettings {
            ring_ip: s.get_str("ring_ip", &server.bind_ip)?,
            servers_per_port: s.get_u64("servers_per_port", 0)?,
            interval,
            concurrency,
            handoffs_first: s.get_bool("handoffs_first", false)?,
            handoff_delete,
            http_timeout: seconds(&s, "http_timeout", 60.0)?,
            lockup_timeout: seconds(&s, "lockup_timeout", 1800.0)?,
            reclaim_age: seconds(&s, "reclaim_age", 604800.0)?,
            ring_check_interval: seconds(&s, "ring_check_interval", 15.0)?,
            stats_interval: seconds(&s, "stats_interval", 300.0)?,
            network_chunk_size: chunk("network_chunk_size")?,
            disk_chunk_size: chunk("disk_chunk_size")?,
            server,
        })
    }
}

/// One pass's figures for one device (Swift's replicator `Stats`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Partitions worked on.
    pub attempted: u64,
    /// Peers that failed, and per peer address and device how often.
    pub failure: u64,
    pub failure_nodes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Peers whose hashes already matched.
    pub hashmatch: u64,
    /// Handoff partitions removed.
    pub remove: u64,
    /// Syncs attempted (Swift's name from its rsync days).
    pub rsync: u64,
    /// Peers that are in sync after the pass.
    pub success: u64,
    /// Suffixes looked at, rehashed, and synced.
    pub suffix_count: u64,
    pub suffix_hash: u64,
    pub suffix_sync: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.attempted += o.attempted;
        self.failure += o.failure;
        self.hashmatch += o.hashmatch;
        self.remove += o.remove;
        self.rsync += o.rsync;
        self.success += o.success;
        self.suffix_count += o.suffix_count;
        self.suffix_hash += o.suffix_hash;
        self.suffix_sync += o.suffix_sync;
        for (ip, devs) in &o.failure_nodes {
            for (dev, n) in devs {
                *self.failure_nodes.entry(ip.clone()).or_default().entry(dev.clone()).or_default() += n;
            }
        }
    }

    /// Notes failed peers, by (replication address, device).
    pub fn add_failures<'a>(&mut self, failures: impl IntoIterator<Item = &'a (String, String)>) {
        for (ip, dev) in failures {
            self.failure += 1;
            *self.failure_nodes.entry(ip.clone()).or_default().entry(dev.clone()).or_default() += 1;
        }
    }

    /// As `replication_stats` in the recon cache.
    pub fn to_recon(&self) -> Value {
        json!({
            "attempted": self.attempted,
            "failure": self.failure,
            "failure_nodes": self.failure_nodes,
            "hashmatch": self.hashmatch,
            "remove": self.remove,
            "rsync": self.rsync,
            "success": self.success,
            "suffix_count": self.suffix_count,
            "suffix_hash": self.suffix_hash,
            "suffix_sync": self.suffix_sync,
        })
    }
}

/// One partition to replicate.
struct Job {
    /// `<dev>/objects[-N]/<part>`.
    path: PathBuf,
    source: Source,
    /// The other primaries (all of them for a handoff partition).
    nodes: Vec<Device>,
    /// A handoff partition: sync it away, then remove it.
    delete: bool,
    region: i64,
    table: Arc<RingTable>,
}

/// The state of one pass, shared by its jobs.
struct Pass {
    start: Instant,
    job_count: usize,
    stats: Mutex<BTreeMap<String, Stats>>,
    partition_times: Mutex<Vec<f64>>,
    handoffs_remaining: AtomicUsize,
    aborted: AtomicBool,
    last_progress: Mutex<Instant>,
    ring_mtimes: Vec<(PathBuf, Option<SystemTime>)>,
    next_ring_check: Mutex<Instant>,
}

impl Pass {
    fn record(&self, device: &str, stats: Stats, began: Instant) {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).entry(device.to_string()).or_default().add(&stats);
        self.partition_times.lock().unwrap_or_else(|e| e.into_inner()).push(began.elapsed().as_secs_f64());
        *self.last_progress.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn total(&self) -> Stats {
        let mut t = Stats::default();
        for s in self.stats.lock().unwrap_or_else(|e| e.into_inner()).values() {
            t.add(s);
        }
        t
    }
}

/// The daemon: settings, the object rings of the replication policies,
/// device pools and clients.
pub struct ObjectReplicator {
    settings: ReplicatorSettings,
    /// (policy index, its object ring).
    rings: Vec<(u32, Arc<Ring>)>,
    devices: Arc<Devices>,
    /// For `REPLICATE`: waits `http_timeout` for an answer.
    replicate_client: BackendClient,
    sender: Sender,
    user_agent: String,
}

impl common::daemon::Daemon for ObjectReplicator {
    const NAME: &'static str = "object-replicator";
    const SCOPED: bool = true;
    const RECON_FILE: &'static str = common::recon::RECON_OBJECT_FILE;

    fn from_config(conf: &ConfigFile) -> Result<Self, String> {
        let settings = ReplicatorSettings::from_config(conf).map_err(|e| e.to_string())?;
        let swift = common::swift_conf::SwiftConf::load_dir(&settings.server.swift_dir).map_err(|e| format!("loading swift.conf: {e}"))?;
        let mut rings = Vec::new();
        for p in swift.policies.iter().filter(|p| p.policy_type == "replication") {
            let ring = Ring::load_named(&settings.server.swift_dir, &p.ring_name(), swift.hash.clone())
                .map_err(|e| format!("loading the {} ring from {}: {e}", p.ring_name(), settings.server.swift_dir.display()))?;
            rings.push((p.index, Arc::new(ring)));
        }
        Ok(ObjectReplicator::new(settings, rings))
    }

    fn server(&self) -> &ServerSettings {
        &self.settings.server
    }

    fn interval(&self) -> Duration {
        self.settings.interval
    }

    /// Figures as Swift's replicator reports them: `replication_stats`,
    /// `replication_time` (minutes), `replication_last` (end, Unix time) and
    /// the same two under `object_` names.
    async fn run_once(self: Arc<Self>, scope: Scope) -> Vec<(&'static str, Value)> {
        log::info("Starting object replication pass.");
        let begin = Instant::now();
        let stats = self.replicate(&scope).await;
        let minutes = begin.elapsed().as_secs_f64() / 60.0;
        log::info(&format!("Object replication complete. ({minutes:.02} minutes)"));
        let end = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        vec![
            ("replication_stats", stats.to_recon()),
            ("replication_time", json!(minutes)),
            ("replication_last", json!(end)),
            ("object_replication_time", json!(minutes)),
            ("object_replication_last", json!(end)),
        ]
    }
}

impl ObjectReplicator {
    /// Builds the replicator around already loaded rings.
    pub fn new(mut settings: ReplicatorSettings, rings: Vec<(u32, Arc<Ring>)>) -> ObjectReplicator {
        if settings.handoff_delete > 0 || settings.handoffs_first {
            log::warning(
                "Handoff only mode is not intended for normal operation, please disable handoffs_first and handoff_delete \
                 before the next normal rebalance",
            );
        }
        if settings.handoff_delete > 0 && rings.iter().all(|(_, r)| r.table().replica_count() <= settings.handoff_delete as f64) {
            log::warning(&format!(
                "No storage policies found for which handoff_delete={} would have an effect. Disabling.",
                settings.handoff_delete
            ));
            settings.handoff_delete = 0;
        }
        let s = &settings.server;
        let devices = Arc::new(Devices::new(s.devices.clone(), s.mount_check, s.threads_per_disk));
        let user_agent = format!("object-replicator {}", std::process::id());
        let sender = Sender {
            client: BackendClient::new(s.conn_timeout, s.node_timeout),
            devices: devices.clone(),
            node_timeout: s.node_timeout,
            http_timeout: settings.http_timeout,
            network_chunk_size: settings.network_chunk_size,
            disk_chunk_size: settings.disk_chunk_size,
            user_agent: user_agent.clone(),
        };
        let replicate_client = BackendClient::new(s.conn_timeout, settings.http_timeout);
        ObjectReplicator { settings, rings, devices, replicate_client, sender, user_agent }
    }

    /// The settings in use.
    pub fn settings(&self) -> &ReplicatorSettings {
        &self.settings
    }

    /// One pass over `scope`; returns the totals.
    async fn replicate(self: &Arc<Self>, scope: &Scope) -> Stats {
        let paths: Vec<PathBuf> = self.rings.iter().map(|(_, r)| r.path().to_path_buf()).collect();
        let ring_mtimes =
            tokio::task::spawn_blocking(move || paths.into_iter().map(|p| (p.clone(), ring_mtime(&p))).collect()).await.unwrap_or_default();
        let (mut jobs, device_failures) = self.collect_jobs(scope).await;
        jobs.shuffle(&mut rand::thread_rng());
        if self.settings.handoffs_first {
            // Stable: handoffs first, each group still shuffled.
            jobs.sort_by_key(|j| !j.delete);
        }
        let pass = Arc::new(Pass {
            start: Instant::now(),
            job_count: jobs.len(),
            stats: Mutex::new(device_failures),
            partition_times: Mutex::new(Vec::new()),
            handoffs_remaining: AtomicUsize::new(0),
            aborted: AtomicBool::new(false),
            last_progress: Mutex::new(Instant::now()),
            ring_mtimes,
            next_ring_check: Mutex::new(Instant::now() + self.settings.ring_check_interval),
        });
        let heartbeat = {
            let (me, pass) = (self.clone(), pass.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(me.settings.stats_interval.max(Duration::from_secs(1))).await;
                    stats_line(&pass);
                }
            })
        };
        let work = {
            let (me, pass) = (self.clone(), pass.clone());
            common::daemon::sweep(jobs, self.settings.concurrency, 0.0, move |job| {
                let (me, pass) = (me.clone(), pass.clone());
                async move { me.run_job(job, pass).await }
            })
        };
        tokio::select! {
            _ = work => {}
            _ = self.lockup_watch(&pass) => {
                log::error(&format!(
                    "Lockup detected: no partition replicated in {:.0} seconds; abandoning this replication pass.",
                    self.settings.lockup_timeout.as_secs_f64()
                ));
            }
        }
        heartbeat.abort();
        stats_line(&pass);
        pass.total()
    }

    /// Resolves once no job has finished for `lockup_timeout` (never, when
    /// it is 0).
    async fn lockup_watch(&self, pass: &Pass) {
        let limit = self.settings.lockup_timeout;
        if limit.is_zero() {
            return std::future::pending().await;
        }
        loop {
            let since = pass.last_progress.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
            if since >= limit {
                return;
            }
            tokio::time::sleep((limit - since).max(Duration::from_millis(100))).await;
        }
    }

    /// The jobs of every local device in scope (Swift's
    /// `build_replication_jobs`), and the stats of devices that failed
    /// their check (a failure for every peer).
    async fn collect_jobs(&self, scope: &Scope) -> (Vec<Job>, BTreeMap<String, Stats>) {
        let mut failed: BTreeMap<String, Stats> = BTreeMap::new();
        let ring_ip = self.settings.ring_ip.clone();
        let my_ips = tokio::task::spawn_blocking(move || whataremyips(&ring_ip)).await.unwrap_or_default();
        let port = (self.settings.servers_per_port == 0).then_some(self.settings.server.bind_port);
        let mut jobs = Vec::new();
        for (policy, ring) in &self.rings {
            // The table may be reloaded from disk: not on the runtime.
            let r = ring.clone();
            let Ok(table) = tokio::task::spawn_blocking(move || r.table()).await else { continue };
            let local: Vec<Device> = table
                .devs()
                .iter()
                .flatten()
                .filter(|d| is_local_device(&my_ips, port, &d.replication_ip, d.replication_port))
                .cloned()
                .collect();
            if local.is_empty() {
                let ips: Vec<String> = my_ips.iter().map(IpAddr::to_string).collect();
                log::error(&format!(
                    "Can't find itself in policy with index {policy} with ips {} and with port {} in ring file, not replicating",
                    ips.join(", "),
                    port.map_or_else(|| "None".to_string(), |p| p.to_string())
                ));
                continue;
            }
            for dev in local.into_iter().filter(|d| scope.has_device(&d.device)) {
                let device_path = match self.devices.check_async(&dev.device).await {
                    Ok(p) => p,
                    Err(e) => {
                        log::warning(&format!("Skipping {e}"));
                        let all: Vec<(String, String)> =
                            table.devs().iter().flatten().map(|d| (d.replication_ip.clone(), d.device.clone())).collect();
                        failed.entry(dev.device.clone()).or_default().add_failures(&all);
                        continue;
                    }
                };
                let obj_path = device_path.join(crate::diskfile::policy_dir("objects", *policy));
                let tmp_path = device_path.join(crate::diskfile::policy_dir("tmp", *policy));
                let cutoff = SystemTime::now().checked_sub(self.settings.reclaim_age).unwrap_or(UNIX_EPOCH);
                let listed = self
                    .devices
                    .run(&dev.device, move || -> std::io::Result<Option<Vec<String>>> {
                        let _ = disk::unlink_older_than(&tmp_path, cutoff);
                        if !obj_path.exists() {
                            std::fs::create_dir_all(&obj_path)?;
                            return Ok(None);
                        }
                        let mut names = Vec::new();
                        for e in std::fs::read_dir(&obj_path)? {
                            names.push(e?.file_name().to_string_lossy().into_owned());
                        }
                        Ok(Some(names))
                    })
                    .await;
                let names = match listed {
                    Ok(Some(n)) => n,
                    Ok(None) => continue,
                    Err(e) => {
                        log::error(&format!("ERROR listing partitions of {}: {e}", dev.device));
                        continue;
                    }
                };
                for name in names {
                    let Ok(partition) = name.parse::<u32>() else { continue };
                    if !scope.has_partition(partition) {
                        continue;
                    }
                    if partition as usize >= table.partition_count() {
                        log::warning(&format!("Partition {partition} on {} is not in the ring; skipping", dev.device));
                        continue;
                    }
                    let part_nodes = table.part_nodes(partition);
                    let nodes: Vec<Device> = part_nodes.iter().filter(|n| n.id != dev.id).map(|n| (*n).clone()).collect();
                    let delete = nodes.len() == part_nodes.len();
                    jobs.push(Job {
                        path: device_path.join(crate::diskfile::policy_dir("objects", *policy)).join(&name),
                        source: Source { device: dev.device.clone(), device_path: device_path.clone(), policy: *policy, partition },
                        nodes,
                        delete,
                        region: dev.region,
                        table: table.clone(),
                    });
                }
            }
        }
        (jobs, failed)
    }

    /// Runs one job unless the pass was stopped (Swift's checks before
    /// each job in `replicate`).
    async fn run_job(self: Arc<Self>, job: Job, pass: Arc<Pass>) {
        if pass.aborted.load(Ordering::SeqCst) {
            return;
        }
        let failed_targets =
            || -> Vec<(String, String)> { job.nodes.iter().map(|n| (n.replication_ip.clone(), n.device.clone())).collect() };
        if let Err(e) = self.devices.check_async(&job.source.device).await {
            log::warning(&format!("Skipping {e}"));
            let mut stats = Stats::default();
            stats.add_failures(&failed_targets());
            pass.record(&job.source.device, stats, Instant::now());
            return;
        }
        if self.settings.handoffs_first && !job.delete && pass.handoffs_remaining.load(Ordering::SeqCst) > 0 {
            if !pass.aborted.swap(true, Ordering::SeqCst) {
                log::warning("Handoffs first mode still has handoffs remaining.  Aborting current replication pass.");
            }
            return;
        }
        if self.ring_changed(&pass).await {
            if !pass.aborted.swap(true, Ordering::SeqCst) {
                log::info("Ring change detected. Aborting current replication pass.");
            }
            return;
        }
        let path = job.path.clone();
        let is_file = self.devices.run(&job.source.device, move || path.is_file().then(|| std::fs::remove_file(&path))).await;
        if let Some(removed) = is_file {
            log::warning(&format!("Removing partition directory which was a file: {} ({removed:?})", job.path.display()));
            return;
        }
        let began = Instant::now();
        let stats = if job.delete { self.revert(&job, &pass).await } else { self.update(&job).await };
        if let Some(statsd) = &self.settings.server.statsd {
            // Swift's names: per job kind, a count per device and a timer.
            let kind = if job.delete { "delete" } else { "update" };
            statsd.increment(&format!("partition.{kind}.count.{}", job.source.device));
            statsd.update_counts(&[("suffix.hashes", stats.suffix_hash), ("suffix.syncs", stats.suffix_sync)]);
            statsd.timing_since(&format!("partition.{kind}.timing"), began);
        }
        pass.record(&job.source.device, stats, began);
    }

    /// Whether a ring file changed since the pass began (checked at most
    /// every `ring_check_interval`).
    async fn ring_changed(&self, pass: &Pass) -> bool {
        {
            let mut next = pass.next_ring_check.lock().unwrap_or_else(|e| e.into_inner());
            if Instant::now() < *next {
                return false;
            }
            *next = Instant::now() + self.settings.ring_check_interval;
        }
        let known = pass.ring_mtimes.clone();
        tokio::task::spawn_blocking(move || known.iter().any(|(path, mtime)| ring_mtime(path) != *mtime)).await.unwrap_or(false)
    }

    /// Replicates a partition this device is a primary for (Swift's
    /// `update`).
    async fn update(&self, job: &Job) -> Stats {
        let mut stats = Stats { attempted: 1, ..Stats::default() };
        let mut targets: BTreeSet<(String, String)> = BTreeSet::new();
        let mut failures: BTreeSet<(String, String)> = BTreeSet::new();
        let part_dir = job.path.clone();
        let reclaim = self.settings.reclaim_age;
        let dev = job.source.device.clone();
        let mut local_hash = match self.devices.run(&dev, move || hashes::get_hashes(&part_dir, &[], reclaim)).await {
            Ok(h) => h,
            Err(e) => {
                log::error(&format!("Error syncing partition {}: {e}", job.path.display()));
                stats.add_failures(&job.nodes.iter().map(|n| (n.replication_ip.clone(), n.device.clone())).collect::<Vec<_>>());
                return stats;
            }
        };
        let mut primaries = job.nodes.clone();
        primaries.shuffle(&mut rand::thread_rng());
        let partition = job.source.partition;
        let mut nodes = primaries.into_iter().chain(job.table.handoffs(partition).cloned());
        let mut attempts_left = job.nodes.len();
        let mut synced_regions: BTreeSet<i64> = BTreeSet::new();
        while attempts_left > 0 {
            let Some(node) = nodes.next() else {
                log::error(&format!("Ran out of handoffs while replicating partition {partition} of policy {}", job.source.policy));
                break;
            };
            let key = (node.replication_ip.clone(), node.device.clone());
            let node_str = node_to_string(&node);
            targets.insert(key.clone());
            attempts_left -= 1;
            // One sync per remote region per pass.
            if synced_regions.contains(&node.region) {
                continue;
            }
            let remote_hash = match self.replicate_request(&node, job.source.policy, partition, &[]).await {
                Err(e) => {
                    log::error(&format!("Error syncing with node: {node_str}: {e}"));
                    failures.insert(key);
                    continue;
                }
                Ok(Err(StatusCode::INSUFFICIENT_STORAGE)) => {
                    log::error(&format!("{node_str} responded as unmounted"));
                    failures.insert(key);
                    if self.settings.handoff_delete > 0 {
                        // +1 for our own copy.
                        let safe = 1 + targets.difference(&failures).count();
                        if safe + attempts_left < self.settings.handoff_delete {
                            attempts_left += 1;
                        }
                    } else {
                        // Always be willing to place another replica.
                        attempts_left += 1;
                    }
                    continue;
                }
                Ok(Err(status)) => {
                    log::error(&format!("Invalid response {} from {node_str}", status.as_u16()));
                    failures.insert(key);
                    continue;
                }
                Ok(Ok(h)) => h,
            };
            let differing = |local: &BTreeMap<String, String>| -> Vec<String> {
                local.iter().filter(|(s, h)| remote_hash.get(*s) != Some(*h)).map(|(s, _)| s.clone()).collect()
            };
            let suffixes = differing(&local_hash);
            if suffixes.is_empty() {
                stats.hashmatch += 1;
                continue;
            }
            // Our cached hashes may be stale: rehash those suffixes first.
            let (part_dir, recalc) = (job.path.clone(), suffixes.clone());
            stats.suffix_hash += recalc.len() as u64;
            match self.devices.run(&dev, move || hashes::get_hashes(&part_dir, &recalc, reclaim)).await {
                Ok(h) => local_hash = h,
                Err(e) => {
                    log::error(&format!("Error syncing partition {}: {e}", job.path.display()));
                    failures.insert(key);
                    break;
                }
            }
            let suffixes = differing(&local_hash);
            if suffixes.is_empty() {
                stats.hashmatch += 1;
                continue;
            }
            stats.rsync += 1;
            match self.sender.sync(&job.source, &target_of(&node), &suffixes).await {
                Ok(_) => {
                    // Have the peer rehash what it was sent now, so its
                    // next answer is current.
                    if let Err(e) = self.replicate_request(&node, job.source.policy, partition, &suffixes).await {
                        log::error(&format!("Error rehashing on {node_str}/{partition}: {e}"));
                    }
                    if node.region != job.region {
                        synced_regions.insert(node.region);
                    }
                }
                Err(e) => {
                    log::error(&format!("{node_str}/{partition} {e}"));
                    failures.insert(key);
                }
            }
            stats.suffix_sync += suffixes.len() as u64;
        }
        stats.suffix_count += local_hash.len() as u64;
        stats.success += targets.difference(&failures).count() as u64;
        stats.add_failures(&failures);
        stats
    }

    /// Syncs a handoff partition to its primaries and removes what they
    /// all took (Swift's `revert`).
    async fn revert(&self, job: &Job, pass: &Pass) -> Stats {
        let mut stats = Stats { attempted: 1, ..Stats::default() };
        let dev = job.source.device.clone();
        let partition = job.source.partition;
        // The receiver takes the same lock for an incoming SSYNC: two nodes
        // reverting the same partition to each other cannot both remove it.
        let mut lock = match self.lock_partition(job).await {
            Some(l) => Some(l),
            None => {
                log::info(&format!(
                    "Unable to lock handoff partition {partition} for replication on device {dev} policy {}",
                    job.source.policy
                ));
                pass.handoffs_remaining.fetch_add(1, Ordering::SeqCst);
                return stats;
            }
        };
        let part_dir = job.path.clone();
        let suffixes = match self.devices.run(&dev, move || disk::list_suffixes(&part_dir)).await {
            Ok(s) => s,
            Err(e) => {
                log::error(&format!("Error syncing handoff partition {}: {e}", job.path.display()));
                pass.handoffs_remaining.fetch_add(1, Ordering::SeqCst);
                return stats;
            }
        };
        let mut reports: Vec<SyncReport> = Vec::new();
        let mut failures: BTreeSet<(String, String)> = BTreeSet::new();
        let mut responses = 0usize;
        if !suffixes.is_empty() {
            for node in &job.nodes {
                stats.rsync += 1;
                responses += 1;
                match self.sender.sync(&job.source, &target_of(node), &suffixes).await {
                    Ok(r) => reports.push(r),
                    Err(e) => {
                        log::error(&format!("{}/{partition} {e}", node_to_string(node)));
                        failures.insert((node.replication_ip.clone(), node.device.clone()));
                    }
                }
            }
        }
        let delete_handoff = if self.settings.handoff_delete > 0 {
            reports.len() >= self.settings.handoff_delete.min(job.nodes.len())
        } else {
            responses == job.nodes.len() && reports.len() == job.nodes.len()
        };
        let mut removed = false;
        if !suffixes.is_empty() && delete_handoff {
            stats.remove += 1;
            let synced = synced_everywhere(&reports);
            let part_dir = job.path.clone();
            // The lock goes with the removal: should this task be abandoned
            // (lockup_timeout), the blocking removal still holds it.
            let held = lock.take();
            let result = self
                .devices
                .run(&dev, move || -> std::io::Result<(disk::Removal, bool)> {
                    let _held = held;
                    let r = disk::remove_synced(&part_dir, &synced)?;
                    Ok((r, disk::remove_partition_if_empty(&part_dir)?))
                })
                .await;
            match result {
                Ok((r, gone)) => {
                    log::info(&format!("Removed {} objects of handoff partition {}", r.removed, job.path.display()));
                    if r.kept > 0 {
                        log::info(&format!("Kept {} objects of {} that changed while syncing", r.kept, job.path.display()));
                    }
                    removed = gone;
                }
                Err(e) => {
                    log::error(&format!("Error removing handoff partition {}: {e}", job.path.display()));
                    // Cleaning up failed: the next pass must sync again.
                    failures.extend(job.nodes.iter().map(|n| (n.replication_ip.clone(), n.device.clone())));
                }
            }
        } else if suffixes.is_empty() {
            let (part_dir, held) = (job.path.clone(), lock.take());
            match self
                .devices
                .run(&dev, move || {
                    let _held = held;
                    disk::remove_partition_if_empty(&part_dir)
                })
                .await
            {
                Ok(gone) => {
                    if gone {
                        log::info(&format!("Removing partition: {}", job.path.display()));
                    }
                    removed = gone;
                }
                Err(e) => log::error(&format!("Error removing empty partition {}: {e}", job.path.display())),
            }
        }
        drop(lock);
        if !removed {
            pass.handoffs_remaining.fetch_add(1, Ordering::SeqCst);
        }
        let targets: BTreeSet<(String, String)> = job.nodes.iter().map(|n| (n.replication_ip.clone(), n.device.clone())).collect();
        stats.success += targets.difference(&failures).count() as u64;
        stats.add_failures(&failures);
        stats
    }

    /// The partition's replication lock, waited for at most 0.2 s as Swift's
    /// revert does.
    async fn lock_partition(&self, job: &Job) -> Option<std::fs::File> {
        let deadline = Instant::now() + Duration::from_millis(200);
        let path = disk::partition_lock_path(&job.path);
        loop {
            let p = path.clone();
            match self.devices.run(&job.source.device, move || disk::try_lock(&p)).await {
                Ok(Some(f)) => return Some(f),
                Ok(None) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
                Ok(None) => return None,
                Err(e) => {
                    log::error(&format!("Error locking {}: {e}", path.display()));
                    return None;
                }
            }
        }
    }

    /// `REPLICATE /<dev>/<part>[/<suf>-<suf>...]` to `node`: its suffix
    /// hashes, or the status it answered with.
    async fn replicate_request(
        &self,
        node: &Device,
        policy: u32,
        partition: u32,
        suffixes: &[String],
    ) -> Result<Result<BTreeMap<String, String>, StatusCode>, String> {
        let mut path = format!("/{}/{partition}", node.device);
        if !suffixes.is_empty() {
            path.push('/');
            path.push_str(&suffixes.join("-"));
        }
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        headers.insert(bh::BACKEND_STORAGE_POLICY_INDEX, HeaderValue::from(policy));
        if let Ok(ua) = HeaderValue::from_str(&self.user_agent) {
            headers.insert(http::header::USER_AGENT, ua);
        }
        let method = Method::from_bytes(b"REPLICATE").map_err(|e| e.to_string())?;
        let resp = self
            .replicate_client
            .request(method, &node.replication_ip, node.replication_port, &path, headers, common::http::empty())
            .await
            .map_err(|e| e.to_string())?;
        let (status, _, body) = read_body(resp, 64 << 20, self.settings.http_timeout).await.map_err(|e| e.to_string())?;
        if status != StatusCode::OK {
            return Ok(Err(status));
        }
        // Up to 64 MiB of pickle: decode it off the runtime.
        let decoded = tokio::task::spawn_blocking(move || hashes::decode_replicate_response(&body)).await.map_err(|e| e.to_string())?;
        decoded.map(Ok).map_err(|e| format!("bad REPLICATE answer: {e}"))
    }
}

fn ring_mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Swift's `node_to_string(node, replication=True)`.
fn node_to_string(d: &Device) -> String {
    format!("{}:{}/{}", ring::device::format_ip(&d.replication_ip), d.replication_port, d.device)
}

fn target_of(d: &Device) -> Target {
    Target { ip: d.replication_ip.clone(), port: d.replication_port, device: d.device.clone() }
}

/// The objects every successful sync took with the same timestamps: what
/// a handoff may remove.
fn synced_everywhere(reports: &[SyncReport]) -> Vec<(String, ObjectTimestamps)> {
    let Some((first, rest)) = reports.split_first() else { return Vec::new() };
    let others: Vec<HashMap<&str, &ObjectTimestamps>> =
        rest.iter().map(|r| r.available.iter().map(|(h, t)| (h.as_str(), t)).collect()).collect();
    first.available.iter().filter(|(h, t)| others.iter().all(|o| o.get(h.as_str()) == Some(&t))).cloned().collect()
}

/// Logs the pass's progress (Swift's `stats_line`).
fn stats_line(pass: &Pass) {
    let stats = pass.total();
    let elapsed = pass.start.elapsed().as_secs_f64();
    if stats.attempted == 0 {
        log::info(&format!("Nothing replicated for {elapsed} seconds."));
        return;
    }
    let total = pass.job_count.max(1) as f64;
    let done = stats.attempted as f64;
    log::info(&format!(
        "{}/{} ({:.2}%) partitions replicated in {elapsed:.2}s ({:.2}/sec, {} remaining)",
        stats.attempted,
        pass.job_count,
        done * 100.0 / total,
        done / elapsed.max(0.000001),
        eta(elapsed, done, total)
    ));
    log::info(&format!("{} successes, {} failures", stats.success, stats.failure));
    if stats.suffix_count > 0 {
        let n = stats.suffix_count as f64;
        log::info(&format!(
            "{} suffixes checked - {:.2}% hashed, {:.2}% synced",
            stats.suffix_count,
            stats.suffix_hash as f64 * 100.0 / n,
            stats.suffix_sync as f64 * 100.0 / n
        ));
    }
    let mut times = pass.partition_times.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if !times.is_empty() {
        times.sort_by(f64::total_cmp);
        log::info(&format!(
            "Partition times: max {:.4}s, min {:.4}s, med {:.4}s",
            times[times.len() - 1],
            times[0],
            times[times.len() / 2]
        ));
    }
}

/// Swift's `compute_eta`: the time left at the current rate, as `<n><unit>`.
fn eta(elapsed: f64, done: f64, total: f64) -> String {
    let left = if done > 0.0 { elapsed / done * (total - done).max(0.0) } else { 0.0 };
    if left >= 3600.0 {
        format!("{}h", (left / 3600.0).round() as u64)
    } else if left >= 60.0 {
        format!("{}m", (left / 60.0).round() as u64)
    } else {
        format!("{}s", left.round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_replicator_section() {
        let conf = ConfigFile::parse(
            "[DEFAULT]\ndevices = /d\nbind_ip = 10.0.0.2\nbind_port = 6210\n[app:object-server]\nuse = egg:swift#object\n\
             [object-replicator]\nrun_pause = 7\nconcurrency = 3\nhandoffs_first = yes\nhandoff_delete = 2\nreclaim_age = 60\n",
            "o.conf",
        )
        .unwrap();
        let s = ReplicatorSettings::from_config(&conf).unwrap();
        assert_eq!(s.interval, Duration::from_secs(7), "run_pause is read when interval is not set");
        assert_eq!((s.concurrency, s.handoffs_first, s.handoff_delete), (3, true, 2));
        assert_eq!(s.reclaim_age, Duration::from_secs(60));
        assert_eq!((s.ring_ip.as_str(), s.server.bind_port), ("10.0.0.2", 6210));
        assert_eq!(s.server.node_timeout, Duration::from_secs(10));
        assert_eq!(s.server.log_name, "object-replicator");
        let d = ReplicatorSettings::from_config(&ConfigFile::parse("[DEFAULT]\n", "d.conf").unwrap()).unwrap();
        assert_eq!((d.interval, d.concurrency, d.handoff_delete, d.handoffs_first), (Duration::from_secs(30), 1, 0, false));
        assert_eq!(
            (d.http_timeout, d.lockup_timeout, d.reclaim_age),
            (Duration::from_secs(60), Duration::from_secs(1800), Duration::from_secs(604800))
        );
        assert_eq!((d.ring_check_interval, d.stats_interval), (Duration::from_secs(15), Duration::from_secs(300)));
        assert_eq!(d.server.bind_port, 6200);
        let c = ConfigFile::parse("[object-replicator]\ninterval = 5\nrun_pause = 9\n", "c.conf").unwrap();
        assert_eq!(ReplicatorSettings::from_config(&c).unwrap().interval, Duration::from_secs(5), "interval wins");
        for bad in ["concurrency = 0", "handoff_delete = some", "interval = soon", "http_timeout = -1"] {
            let c = ConfigFile::parse(&format!("[object-replicator]\n{bad}\n"), "b.conf").unwrap();
            assert!(ReplicatorSettings::from_config(&c).is_err(), "{bad}");
        }
    }

    #[test]
    fn recon_stats_have_swift_keys() {
        let mut s = Stats { attempted: 2, success: 3, ..Stats::default() };
        s.add_failures(&[("10.0.0.1".to_string(), "sda".to_string()), ("10.0.0.1".to_string(), "sda".to_string())]);
        let v = s.to_recon();
        for k in [
            "attempted",
            "failure",
            "failure_nodes",
            "hashmatch",
            "remove",
            "rsync",
            "success",
            "suffix_count",
            "suffix_hash",
            "suffix_sync",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["failure"], 2);
        assert_eq!(v["failure_nodes"]["10.0.0.1"]["sda"], 2);
        assert_eq!(eta(10.0, 1.0, 100.0), "17m");
    }

    #[test]
    fn a_handoff_removes_only_what_every_primary_took() {
        let t = |s: &str| ObjectTimestamps::data_only(common::timestamp::Timestamp::parse(s).unwrap());
        let r = |v: &[(&str, &str)]| SyncReport { available: v.iter().map(|(h, s)| (h.to_string(), t(s))).collect(), wanted: 0 };
        let reports = [r(&[("a", "1"), ("b", "1"), ("c", "1")]), r(&[("a", "1"), ("b", "2")])];
        assert_eq!(synced_everywhere(&reports), vec![("a".to_string(), t("1"))]);
        assert!(synced_everywhere(&[]).is_empty());
    }
}
