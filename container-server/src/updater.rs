//! Swift's container-updater daemon: walks every container database on
//! this node and, for each container whose object count, bytes or
//! put/delete timestamps changed since the last report, PUTs the new stats
//! to the account servers named by the account ring. A report that a
//! quorum of account replicas accepted is recorded in the database
//! (`reported_*` columns), so an unchanged container costs one `get_info`.
//!
//! Behaviour follows `swift/container/updater.py`: one sweep, then sleep
//! out the rest of `interval`; `--once` runs one sweep. Where Swift forks
//! `concurrency` processes (one per partition directory), we run up to
//! `concurrency` containers at a time as tasks of one runtime; all
//! SQLite and directory work goes through [`Devices::run`].

use crate::settings::DEFAULT_PORT;
use common::backend::{read_body, BackendClient};
use common::backend_headers as bh;
use common::config::{ConfigError, ConfigFile, Section};
use common::db::broker::timestamp_or_zero;
use common::db::{ContainerBroker, ContainerInfo};
use common::devices::Devices;
use common::http::empty;
use common::log;
use common::server::ServerSettings;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use rand::seq::SliceRandom;
use ring::{Device, Ring};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where container databases live below a device (Swift's `DATADIR`).
const DATADIR: &str = "containers";

/// The `[container-updater]` section of `container-server.conf` (with
/// `[DEFAULT]` merged in, as Swift's daemons read it).
#[derive(Debug, Clone)]
pub struct UpdaterSettings {
    /// devices, mount_check, swift_dir, log_name (default
    /// `container-updater`), log_level, conn_timeout, node_timeout,
    /// recon_cache_path: the keys every storage daemon shares.
    pub server: ServerSettings,
    /// `interval`: seconds from the start of one sweep to the next (300).
    pub interval: Duration,
    /// `concurrency`: containers updated at once (4).
    pub concurrency: usize,
    /// `containers_per_second` (50), or from the deprecated `slowdown`
    /// (seconds between containers: `1 / (slowdown + 0.01)`), as Swift.
    pub containers_per_second: f64,
    /// `account_suppression_time`: seconds an account whose update failed
    /// is skipped, so a down account server is not hammered (60).
    pub account_suppression_time: Duration,
}

impl UpdaterSettings {
    /// Reads `[container-updater]`, or `[DEFAULT]` alone when the file has
    /// no such section; errors name the file, line and key.
    pub fn from_config(conf: &ConfigFile) -> Result<UpdaterSettings, ConfigError> {
        let section: Section = conf.section("container-updater").unwrap_or_else(|| conf.defaults());
        let server = ServerSettings::from_section(&section, "container-updater", DEFAULT_PORT)?;
        let sweep = common::daemon::SweepSettings::from_section(&section, 4, "containers_per_second")?;
        Ok(UpdaterSettings {
            server,
            interval: sweep.interval,
            concurrency: sweep.concurrency,
            containers_per_second: sweep.per_second,
            account_suppression_time: Duration::from_secs_f64(common::daemon::non_negative(&section, "account_suppression_time", 60.0)?),
        })
    }
}

/// What one sweep did (Swift's `successes`, `failures`, `no_changes`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepStats {
    /// Containers whose report a quorum of account servers accepted.
    pub successes: u64,
    /// Containers whose report failed (retried next sweep).
    pub failures: u64,
    /// Containers already reported as they are.
    pub no_changes: u64,
}

/// Whether `info` holds something the account servers have not been told.
/// Containers never PUT (auto-created by an object update, put timestamp
/// 0) are skipped: their stats are not trustworthy yet (Swift's rule).
pub fn needs_report(info: &ContainerInfo) -> bool {
    let put = timestamp_or_zero(&info.put_timestamp);
    if put <= timestamp_or_zero("0") {
        return false;
    }
    put > timestamp_or_zero(&info.reported_put_timestamp)
        || timestamp_or_zero(&info.delete_timestamp) > timestamp_or_zero(&info.reported_delete_timestamp)
        || info.object_count != info.reported_object_count
        || info.bytes_used != info.reported_bytes_used
}

/// Swift's `majority_size` (what its updater uses, not the proxy's
/// `quorum_size`): 2xx replies needed from `n` account replicas.
pub fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// The daemon: settings, the account ring, device pools and an HTTP client.
pub struct ContainerUpdater {
    settings: UpdaterSettings,
    ring: Arc<Ring>,
    devices: Arc<Devices>,
    client: BackendClient,
    /// Account → until when its updates are skipped.
    suppressions: Mutex<HashMap<String, Instant>>,
    user_agent: String,
}

/// One container's outcome within a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    NoChange,
}

impl common::daemon::Daemon for ContainerUpdater {
    const NAME: &'static str = "container-updater";
    const RECON_FILE: &'static str = common::recon::RECON_CONTAINER_FILE;

    fn from_config(conf: &ConfigFile) -> Result<Self, String> {
        let settings = UpdaterSettings::from_config(conf).map_err(|e| e.to_string())?;
        let ring = Ring::load_with_swift_conf(&settings.server.swift_dir, "account")?;
        Ok(ContainerUpdater::new(settings, ring))
    }

    fn server(&self) -> &ServerSettings {
        &self.settings.server
    }

    fn interval(&self) -> Duration {
        self.settings.interval
    }

    /// `container_updater_sweep`: the seconds the sweep took, as Swift.
    async fn run_once(self: Arc<Self>, _scope: common::daemon::Scope) -> Vec<(&'static str, serde_json::Value)> {
        let begin = Instant::now();
        self.sweep().await;
        vec![("container_updater_sweep", serde_json::json!(begin.elapsed().as_secs_f64()))]
    }
}

impl ContainerUpdater {
    /// Builds the updater around an already loaded account ring.
    pub fn new(settings: UpdaterSettings, ring: Ring) -> ContainerUpdater {
        let s = &settings.server;
        let devices = Arc::new(Devices::new(s.devices.clone(), s.mount_check, s.threads_per_disk));
        let client = BackendClient::new(s.conn_timeout, s.node_timeout);
        ContainerUpdater {
            settings,
            ring: Arc::new(ring),
            devices,
            client,
            suppressions: Mutex::new(HashMap::new()),
            user_agent: format!("container-updater {}", std::process::id()),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &UpdaterSettings {
        &self.settings
    }

    /// Sweeps every device once and returns the counts; logs one line.
    pub async fn sweep(self: &Arc<Self>) -> SweepStats {
        log::info("Begin container update sweep");
        let begin = Instant::now();
        self.suppressions.lock().expect("suppression lock poisoned").retain(|_, until| *until > begin);
        let mut dbs = self.find_databases().await;
        // Swift shuffles the partitions so that several nodes' updaters do
        // not all start on the same accounts.
        dbs.shuffle(&mut rand::thread_rng());
        let outcomes = common::daemon::sweep(dbs, self.settings.concurrency, self.settings.containers_per_second, |(device, db)| {
            let me = self.clone();
            async move { me.process_container(device, db).await }
        })
        .await;
        let count = |o: Outcome| outcomes.iter().filter(|x| **x == o).count() as u64;
        let stats =
            SweepStats { successes: count(Outcome::Success), failures: count(Outcome::Failure), no_changes: count(Outcome::NoChange) };
        if let Some(statsd) = &self.settings.server.statsd {
            // Swift counts each as it happens; the sums of a sweep are the
            // same counters to StatsD.
            statsd.update_counts(&[("successes", stats.successes), ("failures", stats.failures), ("no_changes", stats.no_changes)]);
        }
        log::info(&format!(
            "Container update sweep completed: {:.02}s, {} successes, {} failures, {} with no changes",
            begin.elapsed().as_secs_f64(),
            stats.successes,
            stats.failures,
            stats.no_changes
        ));
        stats
    }

    /// Every `(device, db path)` below usable devices: devices that fail
    /// the mount check are logged and skipped.
    async fn find_databases(&self) -> Vec<(String, PathBuf)> {
        let root = self.devices.root().to_path_buf();
        let names = tokio::task::spawn_blocking(move || list_dir(&root)).await.unwrap_or_default();
        let mut found = Vec::new();
        for device in names {
            let dbs = match self.devices.check_async(&device).await {
                Ok(path) => Ok(self.devices.run(&device, move || walk_datadir(&path.join(DATADIR))).await),
                Err(e) => Err(e),
            };
            match dbs {
                Ok(dbs) => found.extend(dbs.into_iter().map(|db| (device.clone(), db))),
                Err(e) => log::warning(&format!("Skipping {e}")),
            }
        }
        found
    }

    /// Reports one container if it changed; records the report once a
    /// quorum of account replicas accepted it.
    async fn process_container(&self, device: String, db: PathBuf) -> Outcome {
        let ring = self.ring.clone();
        let db_for_read = db.clone();
        let read = self
            .devices
            .run(&device, move || -> Result<Option<(ContainerInfo, u32, Vec<Device>)>, String> {
                let mut broker = ContainerBroker::new(db_for_read);
                let info = broker.get_info().map_err(|e| e.to_string())?;
                if !needs_report(&info) {
                    return Ok(None);
                }
                // Ring lookups may stat the ring file to reload it: keep them
                // off the runtime too.
                let (part, nodes) = ring.get_nodes(&info.account, None, None).map_err(|e| e.to_string())?;
                Ok(Some((info, part, nodes)))
            })
            .await;
        let (info, part, nodes) = match read {
            Ok(Some(found)) => found,
            Ok(None) => return Outcome::NoChange,
            Err(e) => {
                log::error(&format!("Error processing container {}: {e}", db.display()));
                return Outcome::Failure;
            }
        };
        if self.suppressions.lock().expect("suppression lock poisoned").get(&info.account).is_some_and(|u| *u > Instant::now()) {
            // Swift counts neither success nor failure for a suppressed account.
            return Outcome::NoChange;
        }
        let statuses = self.send_reports(&info, part, &nodes).await;
        let successes = statuses.iter().filter(|s| s.is_some_and(|s| s.is_success())).count();
        if !nodes.is_empty() && successes >= quorum(nodes.len()) {
            let (put, delete, count, bytes) =
                (info.put_timestamp.clone(), info.delete_timestamp.clone(), info.object_count, info.bytes_used);
            let db_for_write = db.clone();
            let written = self.devices.run(&device, move || ContainerBroker::new(db_for_write).reported(&put, &delete, count, bytes)).await;
            return match written {
                Ok(()) => Outcome::Success,
                Err(e) => {
                    log::error(&format!("Error recording the report of {}: {e}", db.display()));
                    Outcome::Failure
                }
            };
        }
        if !nodes.is_empty() && statuses.iter().all(|s| *s == Some(StatusCode::NOT_FOUND)) {
            // Swift quarantines such a database (no account replica exists);
            // we have no container quarantine yet, so it is retried each sweep.
            log::warning(&format!(
                "Update report stub for /{}/{} {}: no account replica exists",
                info.account,
                info.container,
                db.display()
            ));
        } else {
            let until = Instant::now() + self.settings.account_suppression_time;
            self.suppressions.lock().expect("suppression lock poisoned").insert(info.account.clone(), until);
        }
        Outcome::Failure
    }

    /// PUTs the stats to every replica at once; `None` for a replica that
    /// could not be reached or timed out (Swift counts it as a 500).
    async fn send_reports(&self, info: &ContainerInfo, part: u32, nodes: &[Device]) -> Vec<Option<StatusCode>> {
        let headers = self.report_headers(info);
        let path = format!("/{}/{}", info.account, info.container);
        let mut tasks = Vec::new();
        for node in nodes {
            let (client, headers) = (self.client.clone(), headers.clone());
            // Swift's updater talks to the replication network address.
            let (ip, port, device) = (node.replication_ip.clone(), node.replication_port, node.device.clone());
            let target = format!("/{device}/{part}{path}");
            tasks.push(tokio::spawn(async move {
                match client.request(Method::PUT, &ip, port, &target, headers, empty()).await {
                    Ok(resp) => {
                        let status = resp.status();
                        // Drain the body so the connection can be reused.
                        let _ = read_body(resp, 64 * 1024, client.node_timeout()).await;
                        if !status.is_success() && status != StatusCode::NOT_FOUND {
                            log::error(&format!(
                                "ERROR account update failed with {ip}:{port}/{device} (will retry later): Response {status}"
                            ));
                        }
                        Some(status)
                    }
                    Err(e) => {
                        log::error(&format!("ERROR account update failed with {ip}:{port}/{device} (will retry later): {e}"));
                        None
                    }
                }
            }));
        }
        let mut statuses = Vec::with_capacity(tasks.len());
        for t in tasks {
            statuses.push(t.await.ok().flatten());
        }
        statuses
    }

    fn report_headers(&self, info: &ContainerInfo) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let mut add = |k: &'static str, v: String| {
            if let Ok(v) = HeaderValue::from_str(&v) {
                headers.insert(HeaderName::from_static(k), v);
            }
        };
        add(bh::PUT_TIMESTAMP, info.put_timestamp.clone());
        add(bh::DELETE_TIMESTAMP, info.delete_timestamp.clone());
        add(bh::OBJECT_COUNT, info.object_count.to_string());
        add(bh::BYTES_USED, info.bytes_used.to_string());
        // The account may have been deleted and re-created since the
        // container was: the report must land anyway.
        add(bh::ACCOUNT_OVERRIDE_DELETED, "yes".to_string());
        add(bh::BACKEND_STORAGE_POLICY_INDEX, info.storage_policy_index.to_string());
        add("user-agent", self.user_agent.clone());
        headers
    }
}

/// Entry names of a directory; an unreadable one is logged and empty.
fn list_dir(path: &Path) -> Vec<String> {
    match std::fs::read_dir(path) {
        Ok(entries) => entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect(),
        Err(e) => {
            log::error(&format!("ERROR:  Failed to get paths to drive partitions: {}: {e}", path.display()));
            Vec::new()
        }
    }
}

/// Every `*.db` file at `<datadir>/<part>/<suffix>/<hash>/`; a missing
/// datadir (a device with no containers yet) is simply empty.
fn walk_datadir(datadir: &Path) -> Vec<PathBuf> {
    let read = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p).map(|it| it.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default()
    };
    let mut dbs = Vec::new();
    for part in read(datadir).into_iter().filter(|p| p.is_dir()) {
        for suffix in read(&part).into_iter().filter(|p| p.is_dir()) {
            for hash in read(&suffix).into_iter().filter(|p| p.is_dir()) {
                dbs.extend(read(&hash).into_iter().filter(|p| p.extension().is_some_and(|e| e == "db")));
            }
        }
    }
    dbs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(put: &str, count: i64) -> ContainerInfo {
        ContainerInfo {
            put_timestamp: put.into(),
            delete_timestamp: "0".into(),
            object_count: count,
            reported_put_timestamp: "0".into(),
            reported_delete_timestamp: "0".into(),
            ..ContainerInfo::default()
        }
    }

    #[test]
    fn reports_only_what_changed() {
        let mut i = info("1700000000.00000", 3);
        assert!(needs_report(&i));
        i.reported_put_timestamp = i.put_timestamp.clone();
        i.reported_object_count = 3;
        assert!(!needs_report(&i));
        i.bytes_used = 10;
        assert!(needs_report(&i));
        // Auto-created containers (never PUT) are not reported.
        assert!(!needs_report(&info("0", 5)));
    }

    #[test]
    fn quorum_is_a_majority() {
        assert_eq!([1, 2, 3, 4, 5].map(quorum), [1, 2, 2, 3, 3]);
    }

    #[test]
    fn settings_come_from_the_updater_section() {
        let conf = ConfigFile::parse(
            "[DEFAULT]\ndevices = /d\nmount_check = false\n[app:container-server]\nuse = egg:swift#container\n\
             [container-updater]\ninterval = 5\nconcurrency = 2\nslowdown = 0.09\nnode_timeout = 7\n",
            "c.conf",
        )
        .unwrap();
        let s = UpdaterSettings::from_config(&conf).unwrap();
        assert_eq!(s.interval, Duration::from_secs(5));
        assert_eq!(s.concurrency, 2);
        assert!((s.containers_per_second - 10.0).abs() < 1e-9);
        assert_eq!(s.server.node_timeout, Duration::from_secs(7));
        assert_eq!(s.server.devices, PathBuf::from("/d"));
        assert_eq!(s.server.log_name, "container-updater");
        let d = UpdaterSettings::from_config(&ConfigFile::parse("[DEFAULT]\n", "d.conf").unwrap()).unwrap();
        assert_eq!((d.interval, d.concurrency, d.containers_per_second), (Duration::from_secs(300), 4, 50.0));
        let bad = ConfigFile::parse("[container-updater]\nconcurrency = 0\n", "b.conf").unwrap();
        assert!(UpdaterSettings::from_config(&bad).is_err());
        let bad = ConfigFile::parse("[container-updater]\ninterval = soon\n", "b.conf").unwrap();
        assert!(UpdaterSettings::from_config(&bad).is_err());
    }

    #[test]
    fn datadir_walk_finds_db_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path().join("containers/12/abc/ffabc");
        std::fs::create_dir_all(&h).unwrap();
        std::fs::write(h.join("ffabc.db"), b"").unwrap();
        std::fs::write(h.join("ffabc.db.pending"), b"").unwrap();
        assert_eq!(walk_datadir(&dir.path().join("containers")), vec![h.join("ffabc.db")]);
        assert!(walk_datadir(&dir.path().join("nothing")).is_empty());
    }
}
