//! Swift's object-auditor daemon: walks every object on the node's devices,
//! checks it against its own metadata, and moves what is corrupt to
//! `<dev>/quarantined/objects[-N]/` so that replication brings a good copy.
//!
//! Behaviour follows `swift/obj/auditor.py` (`AuditorWorker`, replication
//! policies only). Swift audits in two kinds of pass, and so do we:
//!
//! - **ZBF** (zero-byte-file) pass, at `zero_byte_files_per_second`: reads
//!   the metadata of every file that defines an object's state (`.data`,
//!   `.meta`, `.ts`) and compares the `.data`'s size with `Content-Length`,
//!   without reading bodies. Cheap, so bad metadata is found soon.
//! - **ALL** pass, at `files_per_second` and `bytes_per_second`: the same
//!   checks, then reads every byte of every non-empty `.data` (in chunks,
//!   on the device's blocking pool) and compares the MD5 with the `ETag`.
//!
//! Swift's daemon forks one process for each kind (and, with `concurrency`
//! above 1, one ALL process per device); its `once` mode runs both kinds
//! once. Here one [`Daemon::run_once`](common::daemon::Daemon::run_once) is
//! that `once`: the ZBF pass and the ALL pass run side by side, the ALL pass
//! over one device at a time or, with `concurrency` N above 1, over N
//! devices at once, each with its own rate limits as Swift's per-device
//! processes have. The daemon mode repeats that every `interval` seconds
//! (Swift restarts its ZBF scanner every `interval` while the ALL pass is
//! still going; ours waits for the ALL pass). `zero_byte_files_per_second =
//! 0` turns the ZBF pass off, as in Swift.
//!
//! Checks, as Swift's `DiskFile.open` and reader make them: unreadable
//! metadata (none at all, checksum mismatch), a `name` whose hash is not the
//! hash directory's, a missing or malformed `Content-Length` or
//! `X-Delete-At`, a size other than `Content-Length`, a body whose MD5 is not
//! the `ETag`. Expired objects are not checked further, as in Swift. A bad
//! file is moved alone ([`diskfile::quarantine_file`]; Swift moves the whole
//! hash directory) and its suffix's hash is invalidated. A file that is gone
//! or replaced by the time it would be quarantined was superseded by a newer
//! write and is left alone. Metadata in a format we do not know
//! ([`MetadataError::UnknownFormat`]) is logged and counted as an error,
//! never quarantined: that is no proof of corruption. The ALL pass also
//! invalidates the suffix of a tombstone older than `reclaim_age`, so the
//! replicator reclaims it.
//!
//! Each pass keeps Swift's progress file
//! `<dev>/objects[-N]/auditor_status_<ALL|ZBF>.json` (the partitions still
//! to do), so a restarted auditor carries on where it stopped, and reports
//! to the recon cache what Swift's does: `object_auditor_stats_ALL` and
//! `object_auditor_stats_ZBF` (`errors`, `passes`, `quarantined`,
//! `bytes_processed`, `start_time`, `audit_time`), nested per device
//! (`{"sdb1": {...}}`) for per-device ALL passes and under the joined device
//! names for a `--devices` run, as `swift-recon --auditor` expects. Figures
//! are written every `log_time` seconds during a pass (counting since the
//! previous report, as Swift's) and, for the whole pass, at its end (Swift
//! writes them after the first object and then every `log_time`, never at
//! the end). A `--partitions` run (Swift's auditor has no such option)
//! reports nothing to recon.
//!
//! Not done: audit watchers (`watchers = ...`), the `-z` command-line
//! option, erasure-coded policies, and the removal of stale rsync temp files
//! (`rsync_tempfile_timeout` is accepted and ignored).

use crate::diskfile::{self, FileInfo, ObjectLocation, OnDisk};
use crate::hashes;
use crate::metadata::{self, Metadata, MetadataError};
use common::config::{ConfigError, ConfigFile, Section};
use common::daemon::{non_negative, Scope};
use common::devices::Devices;
use common::hash::HashPathConf;
use common::log;
use common::server::ServerSettings;
use common::swift_conf::SwiftConf;
use md5::{Digest, Md5};
use rand::seq::SliceRandom;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Bytes read from a body at a time (Swift's `disk_chunk_size`).
const CHUNK_SIZE: usize = 64 * 1024;
/// Bytes read per trip to the device's blocking pool: the bytes limit is
/// applied between trips.
const READ_PER_TRIP: usize = 16 * CHUNK_SIZE;
/// Seconds a rate limiter may fall behind and then catch up faster than its
/// rate (Swift's `rate_buffer`).
const RATE_BUFFER: Duration = Duration::from_secs(5);
/// The progress file is rewritten at most this often (Swift's
/// `MIN_TIME_UPDATE_AUDITOR_STATUS`).
const STATUS_UPDATE_EVERY: Duration = Duration::from_secs(60);

/// The `[object-auditor]` section of `object-server.conf` (with `[DEFAULT]`
/// merged in, as Swift's daemons read it).
#[derive(Debug, Clone)]
pub struct AuditorSettings {
    /// devices, mount_check, swift_dir, log_name (default `object-auditor`),
    /// log_level, threads_per_disk, recon_cache_path.
    pub server: ServerSettings,
    /// `interval`: seconds from the start of one audit to the next (30).
    pub interval: Duration,
    /// `concurrency`: devices the ALL pass audits at once (1).
    pub concurrency: usize,
    /// `files_per_second`: files the ALL pass audits per second at most (20;
    /// 0 is unlimited).
    pub files_per_second: f64,
    /// `bytes_per_second`: body bytes the ALL pass reads per second at most
    /// (10000000; 0 is unlimited).
    pub bytes_per_second: f64,
    /// `zero_byte_files_per_second`: files the ZBF pass audits per second at
    /// most (50); 0 turns the ZBF pass off.
    pub zero_byte_files_per_second: f64,
    /// `log_time`: seconds between progress lines and recon reports within
    /// a pass (3600).
    pub log_time: Duration,
    /// `object_size_stats`: object size bucket limits in bytes, sorted; the
    /// counts are logged at the end of each pass (none by default).
    pub object_size_stats: Vec<u64>,
    /// `reclaim_age`: seconds after which a tombstone's suffix is
    /// invalidated for the replicator to reclaim it (604800; from
    /// `[object-replicator]` when this section does not set it, as Swift).
    pub reclaim_age: f64,
}

impl AuditorSettings {
    /// Reads `[object-auditor]`, or `[DEFAULT]` alone when the file has no
    /// such section; errors name the file, line and key.
    pub fn from_config(conf: &ConfigFile) -> Result<AuditorSettings, ConfigError> {
        let section: Section = conf.section("object-auditor").unwrap_or_else(|| conf.defaults());
        let server = ServerSettings::from_section(&section, "object-auditor", 6200)?;
        let concurrency = section.get_usize("concurrency", 1)?;
        if concurrency == 0 {
            return Err(section.value_error("concurrency", "0", "a count of 1 or more"));
        }
        let mut object_size_stats = Vec::new();
        for item in section.get_list("object_size_stats")? {
            let size =
                item.parse::<u64>().map_err(|_| section.value_error("object_size_stats", &item, "sizes in bytes, comma-separated"))?;
            object_size_stats.push(size);
        }
        object_size_stats.sort_unstable();
        object_size_stats.dedup();
        let reclaim_age = match conf.section("object-replicator").filter(|_| !section.contains_key("reclaim_age")) {
            Some(replicator) => non_negative(&replicator, "reclaim_age", hashes::DEFAULT_RECLAIM_AGE.as_secs_f64())?,
            None => non_negative(&section, "reclaim_age", hashes::DEFAULT_RECLAIM_AGE.as_secs_f64())?,
        };
        Ok(AuditorSettings {
            server,
            interval: Duration::from_secs_f64(non_negative(&section, "interval", 30.0)?),
            concurrency,
            files_per_second: non_negative(&section, "files_per_second", 20.0)?,
            bytes_per_second: non_negative(&section, "bytes_per_second", 10_000_000.0)?,
            zero_byte_files_per_second: non_negative(&section, "zero_byte_files_per_second", 50.0)?,
            log_time: Duration::from_secs_f64(non_negative(&section, "log_time", 3600.0)?),
            object_size_stats,
            reclaim_age,
        })
    }
}

/// The two kinds of audit pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditType {
    /// Every byte of every object.
    All,
    /// Metadata and sizes only.
    Zbf,
}

impl AuditType {
    /// Swift's name: `ALL` or `ZBF`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditType::All => "ALL",
            AuditType::Zbf => "ZBF",
        }
    }

    /// The recon cache key of its figures.
    pub fn recon_key(self) -> &'static str {
        match self {
            AuditType::All => "object_auditor_stats_ALL",
            AuditType::Zbf => "object_auditor_stats_ZBF",
        }
    }
}

/// Counts of one pass (or of one reporting period of it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AuditStats {
    /// Object locations audited without an error, quarantines included
    /// (Swift's `passes`).
    pub passes: u64,
    /// Files moved to `quarantined/`.
    pub quarantined: u64,
    /// Locations that could not be audited (disk errors, metadata we cannot
    /// read); they are tried again next pass.
    pub errors: u64,
    /// Body bytes read and checked.
    pub bytes_processed: u64,
}

impl AuditStats {
    fn add(&mut self, o: &AuditStats) {
        self.passes += o.passes;
        self.quarantined += o.quarantined;
        self.errors += o.errors;
        self.bytes_processed += o.bytes_processed;
    }
}

/// What one worker (Swift's `AuditorWorker`: one kind of pass over some
/// devices) did.
#[derive(Debug, Clone)]
pub struct WorkerReport {
    pub audit_type: AuditType,
    /// The key its recon figures nest under (`sdb1`, or the joined names of
    /// a `--devices` run); `None` for a pass over all devices.
    pub device_key: Option<String>,
    /// The whole pass.
    pub total: AuditStats,
    /// Its recon entry for the whole pass.
    pub recon_entry: Value,
}

/// What one [`ObjectAuditor::audit`] did: the ZBF and ALL workers' reports.
#[derive(Debug, Clone, Default)]
pub struct AuditReport {
    pub workers: Vec<WorkerReport>,
}

impl AuditReport {
    /// The sum over the workers of one kind.
    pub fn total(&self, t: AuditType) -> AuditStats {
        let mut sum = AuditStats::default();
        for w in self.workers.iter().filter(|w| w.audit_type == t) {
            sum.add(&w.total);
        }
        sum
    }

    /// The recon value of one kind: the flat entry of a pass over all
    /// devices, or the entries nested by device key.
    pub fn recon_value(&self, t: AuditType) -> Value {
        let mut nested = serde_json::Map::new();
        for w in self.workers.iter().filter(|w| w.audit_type == t) {
            match &w.device_key {
                None => return w.recon_entry.clone(),
                Some(k) => {
                    nested.insert(k.clone(), w.recon_entry.clone());
                }
            }
        }
        Value::Object(nested)
    }
}

/// The daemon: settings, the cluster's hash secrets and replication
/// policies, and the per-device pools.
pub struct ObjectAuditor {
    settings: AuditorSettings,
    hash: HashPathConf,
    /// Indexes of the replication policies (objects dirs walked).
    policies: Vec<u32>,
    devices: Arc<Devices>,
    /// Serialises this process's read-merge-write of the recon cache.
    recon_lock: tokio::sync::Mutex<()>,
}

impl common::daemon::Daemon for ObjectAuditor {
    const NAME: &'static str = "object-auditor";
    const SCOPED: bool = true;
    const RECON_FILE: &'static str = common::recon::RECON_OBJECT_FILE;

    fn from_config(conf: &ConfigFile) -> Result<Self, String> {
        let settings = AuditorSettings::from_config(conf).map_err(|e| e.to_string())?;
        let swift = SwiftConf::load_dir(&settings.server.swift_dir).map_err(|e| format!("loading swift.conf: {e}"))?;
        Ok(ObjectAuditor::new(settings, &swift))
    }

    fn server(&self) -> &ServerSettings {
        &self.settings.server
    }

    fn interval(&self) -> Duration {
        self.settings.interval
    }

    /// Runs the ZBF and ALL passes (Swift's `once`); returns the recon
    /// figures `object_auditor_stats_ALL` and `object_auditor_stats_ZBF`.
    async fn run_once(self: Arc<Self>, scope: Scope) -> Vec<(&'static str, Value)> {
        let report = self.audit(&scope).await;
        [AuditType::All, AuditType::Zbf].into_iter().map(|t| (t.recon_key(), report.recon_value(t))).collect()
    }
}

impl ObjectAuditor {
    /// Builds the auditor for the replication policies of `swift`.
    pub fn new(settings: AuditorSettings, swift: &SwiftConf) -> ObjectAuditor {
        let mut policies = Vec::new();
        for p in &swift.policies {
            if p.policy_type == "replication" {
                policies.push(p.index);
            } else {
                log::warning(&format!("Not auditing policy {} ({}): {} policies are not supported", p.index, p.name, p.policy_type));
            }
        }
        let s = &settings.server;
        let devices = Arc::new(Devices::new(s.devices.clone(), s.mount_check, s.threads_per_disk));
        ObjectAuditor { settings, hash: swift.hash.clone(), policies, devices, recon_lock: tokio::sync::Mutex::new(()) }
    }

    /// The settings in use.
    pub fn settings(&self) -> &AuditorSettings {
        &self.settings
    }

    /// Runs the ZBF pass (unless `zero_byte_files_per_second` is 0) and the
    /// ALL pass side by side over the devices (and partitions) of `scope`.
    pub async fn audit(self: &Arc<Self>, scope: &Scope) -> AuditReport {
        let reports_recon = scope.partitions.is_empty();
        if reports_recon {
            // Swift clears both entries when an audit starts, so figures of
            // an earlier audit are not mistaken for this one's.
            for t in [AuditType::All, AuditType::Zbf] {
                self.dump_recon(t.recon_key(), None, json!({})).await;
            }
        }
        let mut devices = self.list_devices().await;
        devices.retain(|d| scope.has_device(d));
        for wanted in &scope.devices {
            if !devices.contains(wanted) {
                log::warning(&format!("Not auditing device {wanted}: no such device in {}", self.devices.root().display()));
            }
        }
        if devices.is_empty() {
            return AuditReport::default();
        }
        // Spread the work of several nodes restarted together.
        devices.shuffle(&mut rand::thread_rng());
        let joined_key = (!scope.devices.is_empty()).then(|| {
            let mut names = devices.clone();
            names.sort();
            names.concat()
        });
        let zbf = async {
            if self.settings.zero_byte_files_per_second > 0.0 {
                vec![Worker::new(self.clone(), AuditType::Zbf, devices.clone(), joined_key.clone(), scope, reports_recon).run().await]
            } else {
                Vec::new()
            }
        };
        let all = async {
            if self.settings.concurrency == 1 {
                vec![Worker::new(self.clone(), AuditType::All, devices.clone(), joined_key.clone(), scope, reports_recon).run().await]
            } else {
                // Swift's parallel mode: one worker per device, each with
                // its own rate limits, reporting under its device's name.
                common::daemon::sweep(devices.clone(), self.settings.concurrency, 0.0, |device| {
                    let worker = Worker::new(self.clone(), AuditType::All, vec![device.clone()], Some(device), scope, reports_recon);
                    worker.run()
                })
                .await
            }
        };
        let (mut zbf, all) = tokio::join!(zbf, all);
        zbf.extend(all);
        AuditReport { workers: zbf }
    }

    /// The names in the devices directory (files among them fail the device
    /// check later, as in Swift).
    async fn list_devices(&self) -> Vec<String> {
        let root = self.devices.root().to_path_buf();
        tokio::task::spawn_blocking(move || match std::fs::read_dir(&root) {
            Ok(it) => it.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect(),
            Err(e) => {
                log::error(&format!("ERROR: Unable to list devices in {}: {e}", root.display()));
                Vec::new()
            }
        })
        .await
        .unwrap_or_default()
    }

    /// Writes `entry` as the recon value `key`, or into it under
    /// `device_key` (Swift's nested entries, merged with those of other
    /// devices).
    async fn dump_recon(&self, key: &'static str, device_key: Option<String>, entry: Value) {
        let _one_writer = self.recon_lock.lock().await;
        let path = self.settings.server.recon_cache_path.join(common::recon::RECON_OBJECT_FILE);
        let _ = tokio::task::spawn_blocking(move || {
            let value = match device_key {
                None => entry,
                Some(k) => {
                    let mut nested = std::fs::read(&path)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                        .and_then(|mut doc| doc.get_mut(key).map(Value::take))
                        .and_then(|v| match v {
                            Value::Object(m) => Some(m),
                            _ => None,
                        })
                        .unwrap_or_default();
                    nested.insert(k, entry);
                    Value::Object(nested)
                }
            };
            common::daemon::dump_recon_cache(&path, &[(key, value)]);
        })
        .await;
    }
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Swift's `EventletRateLimiter`: at most `per_second` units a second on
/// average; after falling behind (a slow file) it may catch up faster, for
/// at most [`RATE_BUFFER`] worth. 0 is unlimited.
#[derive(Debug)]
struct RateLimiter {
    per_second: f64,
    /// When the next unit is due.
    next: Option<Instant>,
}

impl RateLimiter {
    fn new(per_second: f64) -> RateLimiter {
        RateLimiter { per_second, next: None }
    }

    /// How long to wait before `units` more may go, counting them as gone.
    fn delay(&mut self, units: u64, now: Instant) -> Duration {
        if self.per_second <= 0.0 || units == 0 {
            return Duration::ZERO;
        }
        // A year caps absurd settings (a rate of 1e-300) without overflow.
        let cost = Duration::from_secs_f64((units as f64 / self.per_second).min(365.0 * 86400.0));
        let mut due = self.next.unwrap_or(now);
        if now.saturating_duration_since(due) > RATE_BUFFER {
            due = now;
        }
        self.next = Some(due + cost);
        due.saturating_duration_since(now)
    }

    async fn wait(&mut self, units: u64) {
        let d = self.delay(units, Instant::now());
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

/// How the audit of one location ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Good, deleted, expired, empty, or superseded meanwhile.
    Passed,
    Quarantined,
    /// Not audited (disk error, metadata we cannot read).
    Error,
}

/// What the checks of the metadata decided.
enum Checked {
    Finished(Outcome),
    /// A `.data` whose metadata is good: its size, and the open file when
    /// the body is to be read.
    Data {
        size: u64,
        body: Option<BodyCheck>,
    },
}

/// The settings the blocking checks need.
#[derive(Clone)]
struct CheckContext {
    hash: HashPathConf,
    audit_type: AuditType,
    /// Unix seconds.
    now: f64,
    reclaim_age: f64,
}

/// One Swift `AuditorWorker`: one kind of pass over some devices, auditing
/// one location at a time under its own rate limits.
struct Worker {
    auditor: Arc<ObjectAuditor>,
    audit_type: AuditType,
    devices: Vec<String>,
    device_key: Option<String>,
    /// Only these partitions (empty: all); the progress file is used only
    /// for full passes.
    partitions: Vec<u32>,
    reports_recon: bool,
    files: RateLimiter,
    bytes: RateLimiter,
    /// Since the last report.
    period: AuditStats,
    total: AuditStats,
    begin: Instant,
    begin_wall: SystemTime,
    period_start: SystemTime,
    last_report: Instant,
    auditing: Duration,
    /// Counts per `object_size_stats` bucket, the last one for larger sizes.
    size_buckets: Vec<u64>,
}

impl Worker {
    fn new(
        auditor: Arc<ObjectAuditor>,
        audit_type: AuditType,
        devices: Vec<String>,
        device_key: Option<String>,
        scope: &Scope,
        reports_recon: bool,
    ) -> Worker {
        let s = &auditor.settings;
        let files_per_second = match audit_type {
            AuditType::All => s.files_per_second,
            AuditType::Zbf => s.zero_byte_files_per_second,
        };
        let buckets = s.object_size_stats.len() + 1;
        let bytes = RateLimiter::new(s.bytes_per_second);
        Worker {
            audit_type,
            devices,
            device_key,
            partitions: scope.partitions.clone(),
            reports_recon,
            files: RateLimiter::new(files_per_second),
            bytes,
            period: AuditStats::default(),
            total: AuditStats::default(),
            begin: Instant::now(),
            begin_wall: SystemTime::now(),
            period_start: SystemTime::now(),
            last_report: Instant::now(),
            auditing: Duration::ZERO,
            size_buckets: vec![0; if s.object_size_stats.is_empty() { 0 } else { buckets }],
            auditor,
        }
    }

    fn description(&self) -> String {
        match &self.device_key {
            Some(_) => format!("{} - {}", self.audit_type.as_str(), self.devices.join(",")),
            None => self.audit_type.as_str().to_string(),
        }
    }

    async fn run(mut self) -> WorkerReport {
        log::info(&format!("Begin object audit ({})", self.description()));
        for device in self.devices.clone() {
            self.audit_device(&device).await;
        }
        let elapsed = self.begin.elapsed().as_secs_f64().max(0.000001);
        log::info(&format!(
            "Object audit ({}) pass completed: {elapsed:.02}s. Total quarantined: {}, Total errors: {}, Total files/sec: {:.2}, \
             Total bytes/sec: {:.2}, Auditing time: {:.2}, Rate: {:.2}",
            self.description(),
            self.total.quarantined,
            self.total.errors,
            (self.total.passes + self.total.errors) as f64 / elapsed,
            self.total.bytes_processed as f64 / elapsed,
            self.auditing.as_secs_f64(),
            self.auditing.as_secs_f64() / elapsed,
        ));
        if !self.size_buckets.is_empty() {
            log::info(&format!("Object audit stats: {}", self.size_stats_json()));
        }
        // The whole pass, where Swift leaves the last `log_time` period's
        // figures (and nothing for a pass shorter than that but the first
        // object's).
        let recon_entry = self.recon_entry(&self.total, self.begin_wall);
        // Nested entries are merged into the cache here; a flat one is the
        // daemon frame's to write (it writes full passes only).
        if self.reports_recon && self.device_key.is_some() {
            self.auditor.dump_recon(self.audit_type.recon_key(), self.device_key.clone(), recon_entry.clone()).await;
        }
        WorkerReport { audit_type: self.audit_type, device_key: self.device_key, total: self.total, recon_entry }
    }

    /// Swift's `{"10": 1, "100": 1, "OVER": 1}`, in bucket order.
    fn size_stats_json(&self) -> String {
        let limits = &self.auditor.settings.object_size_stats;
        let mut parts: Vec<String> = limits.iter().zip(&self.size_buckets).map(|(l, n)| format!("\"{l}\": {n}")).collect();
        parts.push(format!("\"OVER\": {}", self.size_buckets.last().copied().unwrap_or(0)));
        format!("{{{}}}", parts.join(", "))
    }

    fn record_size(&mut self, size: u64) {
        if self.size_buckets.is_empty() {
            return;
        }
        let limits = &self.auditor.settings.object_size_stats;
        let i = limits.iter().position(|l| size <= *l).unwrap_or(limits.len());
        self.size_buckets[i] += 1;
    }

    /// Swift's recon entry: the counts since `start` (`audit_time` is the
    /// time spent auditing since the pass began, as in Swift).
    fn recon_entry(&self, counts: &AuditStats, start: SystemTime) -> Value {
        json!({
            "errors": counts.errors,
            "passes": counts.passes,
            "quarantined": counts.quarantined,
            "bytes_processed": counts.bytes_processed,
            "start_time": unix_secs(start),
            "audit_time": self.auditing.as_secs_f64(),
        })
    }

    /// Every `log_time`: a progress line and the recon figures of the
    /// period, then a new period.
    async fn maybe_report(&mut self) {
        if self.last_report.elapsed() < self.auditor.settings.log_time {
            return;
        }
        let since = self.last_report.elapsed().as_secs_f64().max(0.000001);
        let total = self.begin.elapsed().as_secs_f64().max(0.000001);
        log::info(&format!(
            "Object audit ({}). Since {:.0}: Locally: {} passed, {} quarantined, {} errors, files/sec: {:.2}, bytes/sec: {:.2}, \
             Total time: {total:.2}, Auditing time: {:.2}, Rate: {:.2}",
            self.description(),
            unix_secs(self.period_start),
            self.period.passes,
            self.period.quarantined,
            self.period.errors,
            self.period.passes as f64 / since,
            self.period.bytes_processed as f64 / since,
            self.auditing.as_secs_f64(),
            self.auditing.as_secs_f64() / total,
        ));
        if self.reports_recon {
            let entry = self.recon_entry(&self.period, self.period_start);
            self.auditor.dump_recon(self.audit_type.recon_key(), self.device_key.clone(), entry).await;
        }
        self.period = AuditStats::default();
        self.period_start = SystemTime::now();
        self.last_report = Instant::now();
    }

    /// Walks `<dev>/objects[-N]/<part>/<suffix>/<hash>` of every policy,
    /// listing one directory at a time (a device may hold millions of
    /// objects).
    async fn audit_device(&mut self, device: &str) {
        let auditor = self.auditor.clone();
        let dev_path = match auditor.devices.check_async(device).await {
            Ok(p) => p,
            Err(e) => {
                log::write(log::Level::Debug, &format!("Skipping: {e}"));
                return;
            }
        };
        let use_status = self.partitions.is_empty();
        for &policy in &auditor.policies {
            let objects = dev_path.join(diskfile::policy_dir("objects", policy));
            let audit_type = self.audit_type;
            let objs = objects.clone();
            let partitions =
                auditor.devices.run(device, move || if use_status { partitions_to_do(&objs, audit_type) } else { list_names(&objs) }).await;
            let partitions = match partitions {
                Ok(p) => p,
                Err(e) => {
                    log::error(&format!("ERROR listing partitions in {}: {e}", objects.display()));
                    self.count(Outcome::Error);
                    continue;
                }
            };
            for (i, part) in partitions.iter().enumerate() {
                if use_status {
                    let (objs, rest) = (objects.clone(), partitions[i..].to_vec());
                    auditor.devices.run(device, move || update_status(&objs, &rest, audit_type)).await;
                }
                // Names that are not partitions (stray files) are skipped.
                let Some(partition) = part.parse::<u32>().ok().filter(|p| p.to_string() == *part) else { continue };
                if !self.partitions.is_empty() && !self.partitions.contains(&partition) {
                    continue;
                }
                self.audit_partition(device, &dev_path, policy, partition).await;
            }
            if use_status {
                let objs = objects.clone();
                auditor.devices.run(device, move || update_status(&objs, &[], audit_type)).await;
            }
        }
        if use_status {
            // The pass is complete on this device: the next starts afresh.
            let (policies, audit_type, dev) = (auditor.policies.clone(), self.audit_type, dev_path.clone());
            auditor.devices.run(device, move || clear_status(&dev, &policies, audit_type)).await;
        }
    }

    async fn audit_partition(&mut self, device: &str, dev_path: &Path, policy: u32, partition: u32) {
        let auditor = self.auditor.clone();
        let part_loc = ObjectLocation { device_path: dev_path.to_path_buf(), policy, partition, hash: String::new() };
        let part_dir = part_loc.partition_dir();
        let dir = part_dir.clone();
        let suffixes = match auditor.devices.run(device, move || list_names(&dir)).await {
            Ok(names) => names,
            Err(e) => {
                log::error(&format!("ERROR listing {}: {e}", part_dir.display()));
                self.count(Outcome::Error);
                return;
            }
        };
        for suffix in suffixes {
            let dir = part_dir.join(&suffix);
            let listed = dir.clone();
            let hashes = match auditor.devices.run(device, move || list_names(&listed)).await {
                Ok(names) => names,
                Err(e) => {
                    log::error(&format!("ERROR listing {}: {e}", dir.display()));
                    self.count(Outcome::Error);
                    continue;
                }
            };
            for hash in hashes {
                // Only a hash dir in its own suffix dir maps back to a
                // location; anything else is not an object of ours.
                if hash.len() != 32 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) || !hash.ends_with(suffix.as_str()) {
                    log::warning(&format!("Skipping {}: not an object hash directory", dir.join(&hash).display()));
                    continue;
                }
                let loc = ObjectLocation { device_path: dev_path.to_path_buf(), policy, partition, hash };
                self.audit_one(device, loc).await;
            }
        }
    }

    fn count(&mut self, o: Outcome) {
        let one = match o {
            Outcome::Passed => AuditStats { passes: 1, ..Default::default() },
            Outcome::Quarantined => AuditStats { passes: 1, quarantined: 1, ..Default::default() },
            Outcome::Error => AuditStats { errors: 1, ..Default::default() },
        };
        if let Some(statsd) = &self.auditor.settings.server.statsd {
            statsd.update_counts(&[("quarantines", one.quarantined), ("errors", one.errors)]);
        }
        self.period.add(&one);
        self.total.add(&one);
    }

    async fn audit_one(&mut self, device: &str, loc: ObjectLocation) {
        let started = Instant::now();
        let outcome = self.audit_location(device, loc).await;
        if let Some(statsd) = &self.auditor.settings.server.statsd {
            statsd.timing_since("timing", started);
        }
        self.count(outcome);
        self.auditing += started.elapsed();
        self.files.wait(1).await;
        self.maybe_report().await;
    }

    async fn audit_location(&mut self, device: &str, loc: ObjectLocation) -> Outcome {
        let auditor = self.auditor.clone();
        let ctx = CheckContext {
            hash: auditor.hash.clone(),
            audit_type: self.audit_type,
            now: unix_secs(SystemTime::now()),
            reclaim_age: auditor.settings.reclaim_age,
        };
        let l = loc.clone();
        match auditor.devices.run(device, move || check_location(&l, &ctx)).await {
            Checked::Finished(o) => o,
            Checked::Data { size, body } => {
                self.record_size(size);
                match body {
                    None => Outcome::Passed,
                    Some(body) => self.read_body(device, loc, body).await,
                }
            }
        }
    }

    /// Reads the whole body on the device's pool, a trip at a time, keeping
    /// to `bytes_per_second` between trips, then judges it.
    async fn read_body(&mut self, device: &str, loc: ObjectLocation, mut body: BodyCheck) -> Outcome {
        let auditor = self.auditor.clone();
        loop {
            let (b, read) = auditor
                .devices
                .run(device, move || {
                    let r = body.read_some();
                    (body, r)
                })
                .await;
            body = b;
            match read {
                Ok(0) => break,
                Ok(n) => {
                    self.period.bytes_processed += n as u64;
                    self.total.bytes_processed += n as u64;
                    self.bytes.wait(n as u64).await;
                }
                Err(e) => {
                    log::error(&format!("ERROR Trying to audit {}: reading: {e}", body.path.display()));
                    return Outcome::Error;
                }
            }
        }
        auditor.devices.run(device, move || body.judge(&loc)).await
    }
}

/// The names in `dir`; a missing dir or a file in place of one lists as
/// empty.
fn list_names(dir: &Path) -> io::Result<Vec<String>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            let mut names = Vec::new();
            for e in rd {
                if let Ok(name) = e?.file_name().into_string() {
                    names.push(name);
                }
            }
            Ok(names)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn status_path(objects_dir: &Path, audit_type: AuditType) -> PathBuf {
    objects_dir.join(format!("auditor_status_{}.json", audit_type.as_str()))
}

/// The partitions this pass still has to do on a device: those saved in
/// its progress file by an audit that stopped, else all of them.
fn partitions_to_do(objects_dir: &Path, audit_type: AuditType) -> io::Result<Vec<String>> {
    let path = status_path(objects_dir, audit_type);
    match std::fs::read(&path) {
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => {
                if let Some(list) = v.get("partitions").and_then(Value::as_array) {
                    return Ok(list.iter().filter_map(|p| p.as_str().map(String::from)).collect());
                }
                log::warning(&format!("Loading JSON from {} failed (no partitions list)", path.display()));
            }
            Err(e) => log::warning(&format!("Loading JSON from {} failed ({e})", path.display())),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {}
        Err(e) => log::warning(&format!("Cannot read {} ({e})", path.display())),
    }
    Ok(list_names(objects_dir)?.into_iter().filter(|n| !n.starts_with("auditor_status_")).collect())
}

/// Saves the partitions still to do (at most once a minute, except the
/// final empty list), as Swift's `update_auditor_status`.
fn update_status(objects_dir: &Path, partitions: &[String], audit_type: AuditType) {
    if !objects_dir.is_dir() {
        return;
    }
    let path = status_path(objects_dir, audit_type);
    let recent = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < STATUS_UPDATE_EVERY);
    if recent && !partitions.is_empty() {
        return;
    }
    if let Err(e) = std::fs::write(&path, json!({ "partitions": partitions }).to_string()) {
        log::warning(&format!("Cannot write {} ({e})", path.display()));
    }
}

/// Removes the progress files of a finished pass on one device.
fn clear_status(device_path: &Path, policies: &[u32], audit_type: AuditType) {
    for &p in policies {
        let path = status_path(&device_path.join(diskfile::policy_dir("objects", p)), audit_type);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != io::ErrorKind::NotFound {
                log::warning(&format!("Cannot remove {} ({e})", path.display()));
            }
        }
    }
}

/// Whether `path` still names the file `opened` was opened from: one that
/// a newer write renamed over or cleaned up is superseded, not corrupt.
fn still_linked(path: &Path, opened: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(path), opened.metadata()) {
        (Ok(now), Ok(then)) => now.dev() == then.dev() && now.ino() == then.ino(),
        _ => false,
    }
}

/// Moves the bad file `filename` of `loc` (opened as `opened`) aside (which
/// invalidates its suffix), unless a newer write has replaced it meanwhile.
fn quarantine(loc: &ObjectLocation, filename: &str, opened: &File, reason: &str) -> Outcome {
    let path = loc.hash_dir().join(filename);
    if !still_linked(&path, opened) {
        log::write(log::Level::Debug, &format!("Not quarantining {}: replaced meanwhile ({reason})", path.display()));
        return Outcome::Passed;
    }
    let to = match diskfile::quarantine_file(loc, filename) {
        Ok(Some(to)) => to,
        Ok(None) => return Outcome::Passed,
        Err(e) => {
            log::error(&format!("ERROR Trying to audit {}: quarantining failed: {e} (it {reason})", path.display()));
            return Outcome::Error;
        }
    };
    // quarantine_file has invalidated the suffix's hash: the replicator
    // rehashes it and brings a good copy back.
    log::error(&format!("ERROR Object {} failed audit and was quarantined to {}: {reason}", path.display(), to.display()));
    Outcome::Quarantined
}

/// How reading a file's metadata went.
enum MetaRead {
    /// The open file and its metadata.
    Good(File, Metadata),
    /// Not to be audited further.
    Done(Outcome),
}

/// Opens `filename` of `loc` and reads its metadata; bad metadata
/// quarantines it.
fn read_metadata(loc: &ObjectLocation, filename: &str) -> MetaRead {
    let path = loc.hash_dir().join(filename);
    let file = match File::open(&path) {
        Ok(f) => f,
        // Superseded since the directory was listed.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return MetaRead::Done(Outcome::Passed),
        Err(e) => {
            log::error(&format!("ERROR Trying to audit {}: {e}", path.display()));
            return MetaRead::Done(Outcome::Error);
        }
    };
    let e = match metadata::read_file(&file, &path) {
        Ok(m) => return MetaRead::Good(file, m),
        Err(e) => e,
    };
    MetaRead::Done(match judge_metadata_error(&e) {
        MetadataFault::Corrupt => quarantine(loc, filename, &file, &format!("Exception reading metadata: {e}")),
        // A newer write may have taken a sidecar away with the old file:
        // that is no fault of this file.
        MetadataFault::Unreadable | MetadataFault::Disk if !still_linked(&path, &file) => Outcome::Passed,
        MetadataFault::Unreadable => {
            log::error(&format!("ERROR Trying to audit {}: metadata left in place, not readable by us: {e}", path.display()));
            Outcome::Error
        }
        MetadataFault::Disk => {
            log::error(&format!("ERROR Trying to audit {}: {e}", path.display()));
            Outcome::Error
        }
    })
}

/// What a metadata error says about the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetadataFault {
    /// No metadata at all, bytes that fail their checksum, or a known
    /// format that does not decode: quarantine.
    Corrupt,
    /// A blob in a format we do not know: not proof of corruption (another
    /// writer, a newer format), so the file stays.
    Unreadable,
    /// The disk or filesystem failed: try again next pass.
    Disk,
}

fn judge_metadata_error(e: &MetadataError) -> MetadataFault {
    match e {
        MetadataError::Missing | MetadataError::Corrupt(_) => MetadataFault::Corrupt,
        MetadataError::UnknownFormat(_) => MetadataFault::Unreadable,
        MetadataError::NoSpace | MetadataError::XattrNotSupported | MetadataError::Io(_) => MetadataFault::Disk,
    }
}

/// Python's `int()` of a metadata value: optional sign and spaces.
fn parse_int(v: &str) -> Option<i128> {
    let t = v.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Longer than any size or time: treat as a (valid) huge number.
    t.parse::<i128>().ok().or(Some(if t.starts_with('-') { i128::MIN } else { i128::MAX }))
}

/// The blocking metadata checks of one hash directory (Swift's
/// `DiskFile.open` from an audit location).
fn check_location(loc: &ObjectLocation, ctx: &CheckContext) -> Checked {
    let dir = loc.hash_dir();
    let state: OnDisk = match diskfile::scan(&dir) {
        Ok(s) => s,
        Err(e) => {
            log::error(&format!("ERROR Trying to audit {}: {e}", dir.display()));
            return Checked::Finished(Outcome::Error);
        }
    };
    if let Some(ts) = &state.ts {
        return Checked::Finished(check_tombstone(loc, ts, ctx));
    }
    // Nothing, or only a .meta waiting for its .data: nothing to audit.
    let Some(data) = &state.data else { return Checked::Finished(Outcome::Passed) };
    let (file, meta) = match read_metadata(loc, &data.filename) {
        MetaRead::Good(f, m) => (f, m),
        MetaRead::Done(o) => return Checked::Finished(o),
    };
    let bad = |why: &str| Checked::Finished(quarantine(loc, &data.filename, &file, why));
    let Some(name) = meta.get("name") else { return bad("missing name metadata") };
    match ctx.hash.hash_path(name.trim_start_matches('/'), None, None) {
        Ok(h) if h == loc.hash => {}
        _ => return bad("Hash of name in metadata does not match directory name"),
    }
    let mut post = None;
    if let Some(m) = &state.meta {
        match read_metadata(loc, &m.filename) {
            MetaRead::Good(f, mm) => post = Some((f, m.filename.as_str(), mm)),
            // Replaced by a newer POST: the .data is still ours to check.
            MetaRead::Done(Outcome::Passed) => {}
            MetaRead::Done(o) => return Checked::Finished(o),
        }
    }
    // An older .meta that still carries the newest content type is read
    // too (Swift's `_merge_content_type_metadata`).
    if let Some(c) = state.ctype.as_ref().filter(|c| state.meta.as_ref().map(|m| &m.filename) != Some(&c.filename)) {
        match read_metadata(loc, &c.filename) {
            MetaRead::Good(..) | MetaRead::Done(Outcome::Passed) => {}
            MetaRead::Done(o) => return Checked::Finished(o),
        }
    }
    // After a POST, the .meta holds the user metadata, X-Delete-At included.
    let (holder, holder_name, holder_meta) = match &post {
        Some((f, n, mm)) => (f, *n, mm),
        None => (&file, data.filename.as_str(), &meta),
    };
    if let Some(value) = holder_meta.get("X-Delete-At") {
        match parse_int(value) {
            None => return Checked::Finished(quarantine(loc, holder_name, holder, &format!("bad metadata x-delete-at value {value}"))),
            // Expired: the expirer's to remove; Swift does not audit it.
            Some(at) if (at as f64) <= ctx.now => return Checked::Finished(Outcome::Passed),
            Some(_) => {}
        }
    }
    let Some(length) = meta.get("Content-Length") else { return bad("missing content-length in metadata") };
    let Some(length) = parse_int(length) else { return bad(&format!("bad metadata content-length value {length}")) };
    let size = match file.metadata() {
        Ok(m) => m.len(),
        Err(e) => {
            log::error(&format!("ERROR Trying to audit {}: {e}", dir.join(&data.filename).display()));
            return Checked::Finished(Outcome::Error);
        }
    };
    if length != size as i128 {
        return bad(&format!("metadata content-length {length} does not match actual object size {size}"));
    }
    if ctx.audit_type == AuditType::Zbf || size == 0 {
        return Checked::Data { size, body: None };
    }
    let body = BodyCheck {
        file,
        path: dir.join(&data.filename),
        filename: data.filename.clone(),
        size,
        etag: meta.get("ETag").cloned(),
        md5: Md5::new(),
        read: 0,
    };
    Checked::Data { size, body: Some(body) }
}

/// A tombstone's metadata must be readable too; an old one's suffix is
/// invalidated (ALL pass) so that the replicator reclaims it.
fn check_tombstone(loc: &ObjectLocation, ts: &FileInfo, ctx: &CheckContext) -> Outcome {
    if let MetaRead::Done(o) = read_metadata(loc, &ts.filename) {
        return o;
    }
    if ctx.audit_type == AuditType::All && ctx.now - ts.timestamp.as_secs_f64() > ctx.reclaim_age {
        let suffix_dir = loc.partition_dir().join(loc.suffix());
        if let Err(e) = hashes::invalidate_hash(&suffix_dir) {
            log::error(&format!("ERROR invalidating the hash of {}: {e}", suffix_dir.display()));
        }
    }
    Outcome::Passed
}

/// A `.data` being read through by the ALL pass.
struct BodyCheck {
    file: File,
    path: PathBuf,
    filename: String,
    size: u64,
    etag: Option<String>,
    md5: Md5,
    read: u64,
}

impl BodyCheck {
    /// Reads and hashes up to [`READ_PER_TRIP`] bytes, a chunk at a time;
    /// 0 at the end of the file.
    fn read_some(&mut self) -> io::Result<usize> {
        let mut buf = vec![0u8; CHUNK_SIZE];
        let mut got = 0;
        while got < READ_PER_TRIP {
            let n = match self.file.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                break;
            }
            self.md5.update(&buf[..n]);
            got += n;
        }
        if got > 0 {
            self.drop_cache(self.read, got as u64);
        }
        self.read += got as u64;
        Ok(got)
    }

    /// The audit reads each byte once: keep it out of the page cache, as
    /// Swift's reader does, so the hot objects of the node stay there.
    fn drop_cache(&self, offset: u64, len: u64) {
        use std::os::fd::AsRawFd;
        // SAFETY: advice on a descriptor we own; errors are harmless.
        unsafe {
            libc::posix_fadvise(self.file.as_raw_fd(), offset as libc::off_t, len as libc::off_t, libc::POSIX_FADV_DONTNEED);
        }
    }

    /// After the last byte: the length and the MD5 must match the metadata.
    fn judge(self, loc: &ObjectLocation) -> Outcome {
        let md5: String = self.md5.clone().finalize().iter().map(|b| format!("{b:02x}")).collect();
        let why = if self.read != self.size {
            format!("Bytes read: {}, does not match metadata: {}", self.read, self.size)
        } else if !self.etag.as_deref().is_some_and(|e| e.trim_matches('"').eq_ignore_ascii_case(&md5)) {
            format!("ETag {} and file's md5 {md5} do not match", self.etag.as_deref().unwrap_or("(none)"))
        } else {
            return Outcome::Passed;
        };
        quarantine(loc, &self.filename, &self.file, &why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::timestamp::Timestamp;
    use xattr::FileExt;

    const SWIFT_CONF: &str = "[swift-hash]\nswift_hash_path_suffix = changeme\n[storage-policy:0]\nname = gold\ndefault = yes\n";

    fn swift() -> SwiftConf {
        SwiftConf::from_config(&ConfigFile::parse(SWIFT_CONF, "swift.conf").unwrap()).unwrap()
    }

    fn settings(devices: &Path, recon: &Path, extra: &str) -> AuditorSettings {
        let text = format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nrecon_cache_path = {}\n\
             files_per_second = 0\nbytes_per_second = 0\nzero_byte_files_per_second = 0\n[object-auditor]\n{extra}",
            devices.display(),
            recon.display()
        );
        AuditorSettings::from_config(&ConfigFile::parse(&text, "object-server.conf").unwrap()).unwrap()
    }

    /// Writes `/a/c/<name>` on `sda` through diskfile's writer; `meta`
    /// overrides the metadata written.
    fn put(devices: &Path, name: &str, body: &[u8], meta: &[(&str, &str)]) -> (ObjectLocation, PathBuf) {
        let hash = swift().hash.hash_path("a", Some("c"), Some(name)).unwrap();
        let loc = ObjectLocation { device_path: devices.join("sda"), policy: 0, partition: 3, hash };
        let mut w = diskfile::DataWriter::create(&loc, Some(body.len() as u64), 0).unwrap();
        w.write(body).unwrap();
        let mut m = Metadata::new();
        m.insert("name".into(), format!("/a/c/{name}"));
        m.insert("Content-Length".into(), body.len().to_string());
        m.insert("ETag".into(), w.etag());
        m.insert("X-Timestamp".into(), "1700000000.00000".into());
        for (k, v) in meta {
            m.insert(k.to_string(), v.to_string());
        }
        w.commit(&loc, Timestamp::parse("1700000000").unwrap(), &m).unwrap();
        let data = loc.hash_dir().join("1700000000.00000.data");
        (loc, data)
    }

    fn quarantined(devices: &Path) -> Vec<PathBuf> {
        let mut v = common::testing::files_under(&devices.join("sda/quarantined"));
        v.sort();
        v
    }

    fn recon(dir: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(dir.join("object.recon")).unwrap()).unwrap()
    }

    #[test]
    fn settings_have_swifts_defaults_and_names() {
        let d = AuditorSettings::from_config(&ConfigFile::parse("[DEFAULT]\n", "d.conf").unwrap()).unwrap();
        assert_eq!(d.interval, Duration::from_secs(30));
        assert_eq!(d.concurrency, 1);
        assert_eq!((d.files_per_second, d.bytes_per_second, d.zero_byte_files_per_second), (20.0, 10_000_000.0, 50.0));
        assert_eq!(d.log_time, Duration::from_secs(3600));
        assert!(d.object_size_stats.is_empty());
        assert_eq!(d.reclaim_age, 604800.0);
        assert_eq!(d.server.log_name, "object-auditor");
        let conf = ConfigFile::parse(
            "[DEFAULT]\ndevices = /d\n[object-replicator]\nreclaim_age = 100\n[object-auditor]\ninterval = 5\nconcurrency = 2\n\
             object_size_stats = 1024, 10\nrsync_tempfile_timeout = auto\nlog_time = 60\n",
            "o.conf",
        )
        .unwrap();
        let s = AuditorSettings::from_config(&conf).unwrap();
        assert_eq!((s.interval, s.concurrency, s.log_time), (Duration::from_secs(5), 2, Duration::from_secs(60)));
        assert_eq!(s.object_size_stats, vec![10, 1024]);
        assert_eq!(s.reclaim_age, 100.0, "taken from [object-replicator] as Swift does");
        assert_eq!(s.server.devices, PathBuf::from("/d"));
        for bad in ["concurrency = 0", "files_per_second = fast", "object_size_stats = 1,x", "bytes_per_second = -1"] {
            let conf = ConfigFile::parse(&format!("[object-auditor]\n{bad}\n"), "b.conf").unwrap();
            assert!(AuditorSettings::from_config(&conf).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_sample_config_documents_every_option() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/object-server.conf-sample");
        let text = std::fs::read_to_string(path).unwrap();
        let s = AuditorSettings::from_config(&ConfigFile::parse(&text, path).unwrap()).unwrap();
        assert_eq!((s.interval, s.concurrency, s.files_per_second), (Duration::from_secs(30), 1, 20.0));
        let section = text.split("\n[object-auditor]\n").nth(1).unwrap();
        let section = section.split("\n[").next().unwrap();
        for key in [
            "interval",
            "concurrency",
            "files_per_second",
            "bytes_per_second",
            "zero_byte_files_per_second",
            "log_time",
            "object_size_stats",
            "reclaim_age",
            "rsync_tempfile_timeout",
            "recon_cache_path",
            "log_name",
        ] {
            assert!(section.contains(&format!("\n# {key} =")), "{key} is documented");
        }
    }

    #[test]
    fn rate_limiter_paces_and_forgives_only_a_little() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(10.0);
        assert_eq!(r.delay(1, t0), Duration::ZERO);
        assert_eq!(r.delay(1, t0), Duration::from_millis(100));
        assert_eq!(r.delay(5, t0), Duration::from_millis(200));
        // Behind by up to five seconds: catches up without waiting.
        let later = t0 + Duration::from_secs(3);
        assert_eq!(r.delay(10, later), Duration::ZERO);
        assert_eq!(r.delay(1, later), Duration::ZERO);
        // Idle for longer: the backlog is forgotten.
        let much_later = t0 + Duration::from_secs(60);
        assert_eq!(r.delay(1, much_later), Duration::ZERO);
        assert_eq!(r.delay(1, much_later), Duration::from_millis(100));
        let mut unlimited = RateLimiter::new(0.0);
        assert_eq!(unlimited.delay(1_000_000, t0), Duration::ZERO);
    }

    #[test]
    fn metadata_errors_are_judged_by_kind() {
        assert_eq!(judge_metadata_error(&MetadataError::Missing), MetadataFault::Corrupt);
        assert_eq!(judge_metadata_error(&MetadataError::Corrupt("checksum".into())), MetadataFault::Corrupt);
        assert_eq!(judge_metadata_error(&MetadataError::UnknownFormat("x".into())), MetadataFault::Unreadable);
        assert_eq!(judge_metadata_error(&MetadataError::XattrNotSupported), MetadataFault::Disk);
        assert_eq!(judge_metadata_error(&MetadataError::Io(io::Error::other("EIO"))), MetadataFault::Disk);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn good_objects_pass_and_bad_ones_alone_are_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let (devices, cache) = (dir.path().join("node"), dir.path().join("cache"));
        std::fs::create_dir_all(&cache).unwrap();
        let big: Vec<u8> = (0..3 * READ_PER_TRIP as u32 + 17).map(|i| (i % 251) as u8).collect();
        let (good_loc, good) = put(&devices, "good", &big, &[]);
        let (_, empty) = put(&devices, "empty", b"", &[]);
        // Bit rot: same length, other bytes.
        let (_, bad_md5) = put(&devices, "bad-md5", b"hello world", &[]);
        std::fs::write(&bad_md5, b"hello w0rld").unwrap();
        // Truncated after the metadata was written.
        let (_, bad_size) = put(&devices, "bad-size", b"hello world", &[]);
        std::fs::OpenOptions::new().write(true).open(&bad_size).unwrap().set_len(5).unwrap();
        // Metadata bytes that fail their checksum.
        let (_, bad_meta) = put(&devices, "bad-meta", b"x", &[]);
        File::open(&bad_meta).unwrap().set_xattr(metadata::XATTR_CHECKSUM_KEY, b"00000000000000000000000000000000").unwrap();
        // A name that does not hash to the directory it is in.
        let (_, misplaced) = put(&devices, "misplaced", b"x", &[("name", "/a/c/elsewhere")]);
        let (_, bad_cl) = put(&devices, "bad-cl", b"x", &[("Content-Length", "one")]);
        // Expired objects are the expirer's: not checked, even when rotten.
        let (_, expired) = put(&devices, "expired", b"hello", &[("X-Delete-At", "1000")]);
        std::fs::write(&expired, b"jello").unwrap();
        let (_, bad_delete_at) = put(&devices, "bad-delete-at", b"x", &[("X-Delete-At", "soon")]);

        let auditor = Arc::new(ObjectAuditor::new(settings(&devices, &cache, ""), &swift()));
        let report = auditor.audit(&Scope::default()).await;
        let all = report.total(AuditType::All);
        assert_eq!(all, AuditStats { passes: 9, quarantined: 6, errors: 0, bytes_processed: big.len() as u64 + 11 });
        let mut expect: Vec<PathBuf> = [&bad_md5, &bad_size, &bad_meta, &misplaced, &bad_cl, &bad_delete_at]
            .iter()
            .map(|p| {
                let hash = p.parent().unwrap().file_name().unwrap();
                devices.join("sda/quarantined/objects").join(hash).join("1700000000.00000.data")
            })
            .collect();
        expect.sort();
        assert_eq!(quarantined(&devices), expect);
        for p in [&good, &empty, &expired] {
            assert!(p.is_file(), "{} stays", p.display());
        }
        assert!(diskfile::open(&good_loc, "/a/c/good", 0.0).is_ok());
        // Nothing more to find a second time (quarantining took the
        // emptied hash dirs away).
        let again = auditor.audit(&Scope::default()).await.total(AuditType::All);
        assert_eq!((again.passes, again.quarantined, again.errors), (3, 0, 0));
        assert!(!devices.join("sda/objects/auditor_status_ALL.json").exists(), "a finished pass leaves no progress file");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_zero_byte_pass_checks_metadata_and_sizes_only() {
        let dir = tempfile::tempdir().unwrap();
        let (devices, cache) = (dir.path().join("node"), dir.path().join("cache"));
        std::fs::create_dir_all(&cache).unwrap();
        let (_, bad_md5) = put(&devices, "bad-md5", b"hello world", &[]);
        std::fs::write(&bad_md5, b"hello w0rld").unwrap();
        let (_, bad_size) = put(&devices, "bad-size", b"hello world", &[]);
        std::fs::write(&bad_size, b"hello").unwrap();
        let (_, bad_zero) = put(&devices, "bad-zero", b"", &[]);
        std::fs::write(&bad_zero, b"hello").unwrap();
        // Only the ZBF pass: an ALL pass that finds nothing to read.
        let s = settings(&devices, &cache, "zero_byte_files_per_second = 1000\n");
        let auditor = Arc::new(ObjectAuditor::new(s, &swift()));
        let mut checked = Vec::new();
        for w in [AuditType::Zbf] {
            let worker = Worker::new(auditor.clone(), w, vec!["sda".into()], None, &Scope::default(), false);
            checked.push(worker.run().await);
        }
        assert_eq!(checked[0].total, AuditStats { passes: 3, quarantined: 2, errors: 0, bytes_processed: 0 });
        assert!(bad_md5.is_file(), "the ZBF pass reads no bodies");
        assert!(!bad_size.exists() && !bad_zero.exists());
        // Both passes together: the ALL pass finds the rotten body.
        let report = auditor.audit(&Scope::default()).await;
        // The two passes run at once: the ZBF pass sees the rotten object
        // (a good size, so it passes) unless the ALL pass moved it first.
        let zbf = report.total(AuditType::Zbf);
        assert!(zbf.passes <= 1 && zbf.quarantined == 0 && zbf.errors == 0, "{zbf:?}");
        assert_eq!(report.total(AuditType::All), AuditStats { passes: 1, quarantined: 1, errors: 0, bytes_processed: 11 });
        assert!(!bad_md5.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn superseded_and_unreadable_files_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (devices, cache) = (dir.path().join("node"), dir.path().join("cache"));
        std::fs::create_dir_all(&cache).unwrap();
        // A file replaced after it was opened is not corrupt, whatever its
        // bytes say.
        let (loc, data) = put(&devices, "replaced", b"hello world", &[]);
        let ctx = CheckContext { hash: swift().hash, audit_type: AuditType::All, now: 2e9, reclaim_age: 604800.0 };
        let Checked::Data { body: Some(mut body), .. } = check_location(&loc, &ctx) else { panic!("a good object") };
        // Rotten in place (same inode), then replaced by a new write under
        // the same name (a new inode), before the old one's body is read.
        std::fs::write(&data, b"hello w0rld").unwrap();
        put(&devices, "replaced", b"HELLO WORLD", &[]);
        while body.read_some().unwrap() > 0 {}
        assert_eq!(body.judge(&loc), Outcome::Passed);
        assert!(quarantined(&devices).is_empty());
        // Gone between the listing and the check.
        let (loc, data) = put(&devices, "vanished", b"x", &[]);
        std::fs::remove_file(&data).unwrap();
        assert!(matches!(check_location(&loc, &ctx), Checked::Finished(Outcome::Passed)));
        // Metadata that passes its checksum but is in a format we cannot
        // decode: intact, so it is counted as an error and left in place.
        let (_, foreign) = put(&devices, "foreign", b"x", &[]);
        let blob = b"\x00future metadata format";
        let f = File::open(&foreign).unwrap();
        f.set_xattr(metadata::XATTR_KEY, blob).unwrap();
        f.set_xattr(metadata::XATTR_CHECKSUM_KEY, metadata::md5_hex(blob).as_bytes()).unwrap();
        let auditor = Arc::new(ObjectAuditor::new(settings(&devices, &cache, ""), &swift()));
        let all = auditor.audit(&Scope::default()).await.total(AuditType::All);
        assert_eq!((all.passes, all.quarantined, all.errors), (2, 0, 1));
        assert!(foreign.is_file());
        assert!(quarantined(&devices).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recon_gets_swifts_entries_flat_or_per_device() {
        let dir = tempfile::tempdir().unwrap();
        let (devices, cache) = (dir.path().join("node"), dir.path().join("cache"));
        std::fs::create_dir_all(&cache).unwrap();
        let (_, bad) = put(&devices, "bad", b"hello", &[]);
        std::fs::write(&bad, b"jello").unwrap();
        put(&devices, "good", b"hello", &[]);
        std::fs::create_dir_all(devices.join("sdb")).unwrap();
        let auditor = Arc::new(ObjectAuditor::new(settings(&devices, &cache, "zero_byte_files_per_second = 100\n"), &swift()));
        let values = common::daemon::Daemon::run_once(auditor.clone(), Scope::default()).await;
        let all = &values[0];
        assert_eq!(all.0, "object_auditor_stats_ALL");
        for k in ["errors", "passes", "quarantined", "bytes_processed", "start_time", "audit_time"] {
            assert!(all.1.get(k).is_some(), "{k}");
        }
        assert_eq!(all.1["passes"], 2);
        assert_eq!(values[1].0, "object_auditor_stats_ZBF");
        assert_eq!(values[1].1["passes"], 2);
        assert_eq!(all.1["quarantined"].as_u64().unwrap() + values[1].1["quarantined"].as_u64().unwrap(), 1);
        // A --devices run nests its figures under the devices' names and
        // writes them itself (the frame writes only full passes).
        let scope = Scope { devices: vec!["sda".into()], partitions: vec![] };
        auditor.audit(&scope).await;
        let doc = recon(&cache);
        assert_eq!(doc["object_auditor_stats_ALL"]["sda"]["passes"], 1);
        assert_eq!(doc["object_auditor_stats_ZBF"]["sda"]["passes"], 1);
        // Parallel ALL passes report per device.
        let auditor = Arc::new(ObjectAuditor::new(settings(&devices, &cache, "concurrency = 2\n"), &swift()));
        let report = auditor.audit(&Scope::default()).await;
        let v = report.recon_value(AuditType::All);
        assert_eq!(v["sda"]["passes"], 1);
        assert_eq!(v["sdb"]["passes"], 0);
        // (Floats only compared roughly: serde_json's parse is not exact.)
        let written = &recon(&cache)["object_auditor_stats_ALL"];
        for dev in ["sda", "sdb"] {
            assert_eq!(written[dev]["passes"], v[dev]["passes"]);
            assert_eq!(written[dev]["bytes_processed"], v[dev]["bytes_processed"]);
            assert!((written[dev]["start_time"].as_f64().unwrap() - v[dev]["start_time"].as_f64().unwrap()).abs() < 0.001);
        }
        assert_eq!(report.recon_value(AuditType::Zbf), json!({}));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn long_passes_report_every_log_time_and_the_whole_pass_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let (devices, cache) = (dir.path().join("node"), dir.path().join("cache"));
        std::fs::create_dir_all(&cache).unwrap();
        put(&devices, "one", b"1", &[]);
        put(&devices, "two", b"22", &[]);
        let auditor = Arc::new(ObjectAuditor::new(settings(&devices, &cache, "log_time = 0\n"), &swift()));
        let worker = Worker::new(auditor.clone(), AuditType::All, vec!["sda".into()], None, &Scope::default(), true);
        let report = worker.run().await;
        // Every object closed a period; the cache holds the last one.
        let last = &recon(&cache)["object_auditor_stats_ALL"];
        assert_eq!(last["passes"], 1);
        assert!([1, 2].contains(&last["bytes_processed"].as_u64().unwrap()), "{last}");
        assert_eq!(report.recon_entry["passes"], 2);
        assert_eq!(report.recon_entry["bytes_processed"], 3);
        assert!(report.recon_entry["start_time"].as_f64().unwrap() <= last["start_time"].as_f64().unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupted_pass_resumes_from_its_progress_file() {
        let dir = tempfile::tempdir().unwrap();
        let (devices, cache) = (dir.path().join("node"), dir.path().join("cache"));
        std::fs::create_dir_all(&cache).unwrap();
        let (_, bad) = put(&devices, "bad", b"hello", &[]);
        std::fs::write(&bad, b"jello").unwrap();
        // The audit that stopped had only partition 99 left to do.
        let objects = devices.join("sda/objects");
        std::fs::write(objects.join("auditor_status_ALL.json"), r#"{"partitions": ["99"]}"#).unwrap();
        let auditor = Arc::new(ObjectAuditor::new(settings(&devices, &cache, ""), &swift()));
        let all = auditor.audit(&Scope::default()).await.total(AuditType::All);
        assert_eq!(all.passes, 0, "partition 3 was done before the interruption");
        assert!(!objects.join("auditor_status_ALL.json").exists());
        let all = auditor.audit(&Scope::default()).await.total(AuditType::All);
        assert_eq!((all.passes, all.quarantined), (1, 1));
        // A scoped run skips other partitions.
        let (_, bad) = put(&devices, "bad", b"hello", &[]);
        std::fs::write(&bad, b"jello").unwrap();
        let all = auditor.audit(&Scope { devices: vec![], partitions: vec![4] }).await.total(AuditType::All);
        assert_eq!(all.passes, 0);
        assert!(bad.is_file());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_full_pass_has_old_tombstones_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        let (devices, cache) = (dir.path().join("node"), dir.path().join("cache"));
        std::fs::create_dir_all(&cache).unwrap();
        let (loc, _) = put(&devices, "deleted", b"x", &[]);
        let mut m = Metadata::new();
        m.insert("name".into(), "/a/c/deleted".into());
        diskfile::write_tombstone(&loc, Timestamp::parse("1700000002").unwrap(), &m).unwrap();
        let invalid = loc.partition_dir().join(hashes::HASH_INVALIDATIONS_FILE);
        let _ = std::fs::remove_file(&invalid);
        let auditor = Arc::new(ObjectAuditor::new(settings(&devices, &cache, ""), &swift()));
        for t in [AuditType::Zbf, AuditType::All] {
            let r = Worker::new(auditor.clone(), t, vec!["sda".into()], None, &Scope::default(), false).run().await;
            assert_eq!(r.total, AuditStats { passes: 1, ..Default::default() });
        }
        // Invalidated once, by the ALL pass: the replicator's rehash
        // reclaims the tombstone.
        assert_eq!(std::fs::read_to_string(&invalid).unwrap(), format!("{}\n", loc.suffix()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_tombstones_and_metas_are_quarantined_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (devices, cache) = (dir.path().join("node"), dir.path().join("cache"));
        std::fs::create_dir_all(&cache).unwrap();
        let (loc, data) = put(&devices, "posted", b"hello", &[]);
        let mut m = Metadata::new();
        m.insert("name".into(), "/a/c/posted".into());
        m.insert("X-Timestamp".into(), "1700000001.00000".into());
        diskfile::write_meta(&loc, Timestamp::parse("1700000001").unwrap(), None, &m).unwrap();
        let meta = loc.hash_dir().join("1700000001.00000.meta");
        File::open(&meta).unwrap().set_xattr(metadata::XATTR_CHECKSUM_KEY, b"0").unwrap();
        let (tloc, _) = put(&devices, "deleted", b"x", &[]);
        let mut m = Metadata::new();
        m.insert("name".into(), "/a/c/deleted".into());
        diskfile::write_tombstone(&tloc, Timestamp::parse("1700000002").unwrap(), &m).unwrap();
        let ts = tloc.hash_dir().join("1700000002.00000.ts");
        File::open(&ts).unwrap().remove_xattr(metadata::XATTR_KEY).unwrap();
        let auditor = Arc::new(ObjectAuditor::new(settings(&devices, &cache, ""), &swift()));
        let all = auditor.audit(&Scope::default()).await.total(AuditType::All);
        assert_eq!((all.passes, all.quarantined), (2, 2));
        assert!(data.is_file(), "the .data under a bad .meta stays");
        assert!(!meta.exists() && !ts.exists());
    }
}
