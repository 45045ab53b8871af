//! Swift's object-updater daemon: replays the async pendings that the
//! object server saved when a container update failed at write time, so
//! that container listings converge once the container servers are back.
//!
//! Behaviour follows `swift/obj/updater.py`: per device, the newest pending
//! of each object is sent to every container replica of the container
//! ring (older ones for the same object are unlinked unsent); a replica
//! that answers 2xx is remembered in the pending's `successes` list so it
//! is not sent again; once every replica has it, the pending is unlinked,
//! otherwise it is rewritten atomically with the new successes. One sweep,
//! then sleep out the rest of `interval`; `--once` runs one sweep. Where
//! Swift forks per device, we run up to `concurrency` pendings at a time as
//! tasks of one runtime; all file work goes through [`Devices::run`], in
//! [`crate::diskfile`].

use crate::async_pending;
use crate::diskfile::{self, AsyncPendingFile};
use common::backend::{read_body, BackendClient};
use common::backend_headers as bh;
use common::config::{ConfigError, ConfigFile, Section};
use common::devices::Devices;
use common::http::empty;
use common::log;
use common::server::ServerSettings;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use rand::seq::SliceRandom;
use ring::{Device, Ring};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `[object-updater]` section of `object-server.conf` (with
/// `[DEFAULT]` merged in, as Swift's daemons read it).
#[derive(Debug, Clone)]
pub struct UpdaterSettings {
    /// devices, mount_check, swift_dir, log_name (default
    /// `object-updater`), log_level, conn_timeout, node_timeout (10 here),
    /// recon_cache_path: the keys every storage daemon shares.
    pub server: ServerSettings,
    /// `interval`: seconds from the start of one sweep to the next (300).
    pub interval: Duration,
    /// `concurrency`: async pendings sent at once (8, Swift's default).
    pub concurrency: usize,
    /// `objects_per_second` (50), or from the deprecated `slowdown`
    /// (seconds between objects: `1 / (slowdown + 0.01)`), as Swift.
    pub objects_per_second: f64,
}

impl UpdaterSettings {
    /// Reads `[object-updater]`, or `[DEFAULT]` alone when the file has no
    /// such section; errors name the file, line and key.
    pub fn from_config(conf: &ConfigFile) -> Result<UpdaterSettings, ConfigError> {
        let section: Section = conf.section("object-updater").unwrap_or_else(|| conf.defaults());
        let mut server = ServerSettings::from_section(&section, "object-updater", 6200)?;
        // Swift's object-updater waits longer for a container server than
        // the servers' shared default (10 s, not 3).
        if !section.contains_key("node_timeout") {
            server.node_timeout = Duration::from_secs(10);
        }
        let sweep = common::daemon::SweepSettings::from_section(&section, 8, "objects_per_second")?;
        Ok(UpdaterSettings { server, interval: sweep.interval, concurrency: sweep.concurrency, objects_per_second: sweep.per_second })
    }
}

/// An async pending as stored on disk, in Swift's format (see
/// [`crate::async_pending`]).
pub use crate::async_pending::AsyncPending;

/// What one sweep did (Swift's updater stats).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepStats {
    /// Pendings every container replica took (then unlinked).
    pub successes: u64,
    /// Pendings some replica has not taken yet (kept for the next sweep).
    pub failures: u64,
    /// Unreadable pendings moved to `quarantined/objects`.
    pub quarantines: u64,
    /// Pendings unlinked unsent because a newer one for the object exists.
    pub unlinks: u64,
    /// Disk or ring errors.
    pub errors: u64,
}

/// One pending's outcome within a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    Quarantined,
    Error,
    /// Gone before we read it (another sweep, or a replaced file).
    Skipped,
}

/// The daemon: settings, the container ring, device pools and a client.
pub struct ObjectUpdater {
    settings: UpdaterSettings,
    ring: Arc<Ring>,
    devices: Arc<Devices>,
    client: BackendClient,
    user_agent: String,
}

impl common::daemon::Daemon for ObjectUpdater {
    const NAME: &'static str = "object-updater";
    const RECON_FILE: &'static str = common::recon::RECON_OBJECT_FILE;

    fn from_config(conf: &ConfigFile) -> Result<Self, String> {
        let settings = UpdaterSettings::from_config(conf).map_err(|e| e.to_string())?;
        let ring = Ring::load_with_swift_conf(&settings.server.swift_dir, "container")?;
        Ok(ObjectUpdater::new(settings, ring))
    }

    fn server(&self) -> &ServerSettings {
        &self.settings.server
    }

    fn interval(&self) -> Duration {
        self.settings.interval
    }

    /// Figures as Swift's updater reports them: `object_updater_sweep`
    /// (seconds) and `async_pending`, the pendings left for the next sweep
    /// (those written meanwhile count in the next one).
    async fn run_once(self: Arc<Self>, _scope: common::daemon::Scope) -> Vec<(&'static str, serde_json::Value)> {
        let begin = Instant::now();
        let stats = self.sweep().await;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        vec![
            ("object_updater_sweep", serde_json::json!(begin.elapsed().as_secs_f64())),
            ("async_pending", serde_json::json!(stats.failures)),
            ("async_pending_last", serde_json::json!(now)),
        ]
    }
}

impl ObjectUpdater {
    /// Builds the updater around an already loaded container ring.
    pub fn new(settings: UpdaterSettings, ring: Ring) -> ObjectUpdater {
        let s = &settings.server;
        let devices = Arc::new(Devices::new(s.devices.clone(), s.mount_check, s.threads_per_disk));
        let client = BackendClient::new(s.conn_timeout, s.node_timeout);
        ObjectUpdater { settings, ring: Arc::new(ring), devices, client, user_agent: format!("object-updater {}", std::process::id()) }
    }

    /// The settings in use.
    pub fn settings(&self) -> &UpdaterSettings {
        &self.settings
    }

    /// Sweeps every device once and returns the counts; logs one line.
    pub async fn sweep(self: &Arc<Self>) -> SweepStats {
        log::info("Begin object update sweep");
        let begin = Instant::now();
        let (mut pendings, unlinks, scan_errors) = self.find_pendings().await;
        // Spread the load: several nodes' updaters should not all start on
        // the same containers.
        pendings.shuffle(&mut rand::thread_rng());
        let outcomes = common::daemon::sweep(pendings, self.settings.concurrency, self.settings.objects_per_second, |(device, pending)| {
            let me = self.clone();
            async move { me.process_pending(device, pending).await }
        })
        .await;
        let count = |o: Outcome| outcomes.iter().filter(|x| **x == o).count() as u64;
        let stats = SweepStats {
            successes: count(Outcome::Success),
            failures: count(Outcome::Failure),
            quarantines: count(Outcome::Quarantined),
            unlinks,
            errors: count(Outcome::Error) + scan_errors,
        };
        if let Some(statsd) = &self.settings.server.statsd {
            // Swift counts each as it happens; the sums of a sweep are the
            // same counters to StatsD.
            statsd.update_counts(&[
                ("successes", stats.successes),
                ("failures", stats.failures),
                ("quarantines", stats.quarantines),
                ("unlinks", stats.unlinks),
                ("errors", stats.errors),
            ]);
        }
        log::info(&format!(
            "Object update sweep completed: {:.02}s, {} successes, {} failures, {} quarantines, {} unlinks, {} errors",
            begin.elapsed().as_secs_f64(),
            stats.successes,
            stats.failures,
            stats.quarantines,
            stats.unlinks,
            stats.errors
        ));
        stats
    }

    /// The newest pending per object on every usable device, with the
    /// count of older ones unlinked and of scan errors. Devices failing the
    /// mount check are logged and skipped.
    async fn find_pendings(&self) -> (Vec<(String, AsyncPendingFile)>, u64, u64) {
        let root = self.devices.root().to_path_buf();
        let names = tokio::task::spawn_blocking(move || {
            std::fs::read_dir(&root)
                .map(|it| it.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect::<Vec<_>>())
                .unwrap_or_else(|e| {
                    log::error(&format!("ERROR: Unable to list devices in {}: {e}", root.display()));
                    Vec::new()
                })
        })
        .await
        .unwrap_or_default();
        let (mut found, mut unlinks, mut errors) = (Vec::new(), 0, 0);
        for device in names {
            let dev = device.clone();
            let scan = match self.devices.check_async(&device).await {
                Err(e) => Err(format!("Skipping {e}")),
                Ok(path) => {
                    self.devices
                        .run(&device, move || {
                            diskfile::list_async_pendings(&path).map_err(|e| format!("ERROR listing async pendings on {dev}: {e}"))
                        })
                        .await
                }
            };
            match scan {
                Ok(scan) => {
                    unlinks += scan.unlinked;
                    errors += scan.errors;
                    found.extend(scan.newest.into_iter().map(|p| (device.clone(), p)));
                }
                Err(message) => log::warning(&message),
            }
        }
        (found, unlinks, errors)
    }

    /// Sends one pending to the replicas that have not taken it yet, then
    /// unlinks it (all took it) or records the new successes.
    async fn process_pending(&self, device: String, file: AsyncPendingFile) -> Outcome {
        let ring = self.ring.clone();
        let devices = self.devices.clone();
        let (dev, path) = (device.clone(), file.path.clone());
        let read = self
            .devices
            .run(&device, move || -> Result<Option<(AsyncPending, u32, Vec<Device>)>, ReadError> {
                let bytes = match std::fs::read(&path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(ReadError::Disk(e.to_string())),
                };
                let pending: AsyncPending = match async_pending::decode(&bytes) {
                    Ok(p) => p,
                    Err(e) => {
                        let to = diskfile::quarantine_async_pending(&devices.root().join(&dev), &path)
                            .map_err(|e| ReadError::Disk(e.to_string()))?;
                        return Err(ReadError::Quarantined(format!("{e}; moved to {}", to.display())));
                    }
                };
                // Ring lookups may stat the ring file to reload it: keep
                // them off the runtime too.
                let (part, nodes) =
                    ring.get_nodes(&pending.account, Some(&pending.container), None).map_err(|e| ReadError::Disk(e.to_string()))?;
                Ok(Some((pending, part, nodes)))
            })
            .await;
        let (mut pending, part, nodes) = match read {
            Ok(Some(found)) => found,
            Ok(None) => return Outcome::Skipped,
            Err(ReadError::Quarantined(why)) => {
                log::error(&format!("ERROR Pickle problem, quarantining {}: {why}", file.path.display()));
                return Outcome::Quarantined;
            }
            Err(ReadError::Disk(e)) => {
                log::error(&format!("ERROR processing async pending {}: {e}", file.path.display()));
                return Outcome::Error;
            }
        };
        let todo: Vec<Device> = nodes.iter().filter(|n| !pending.successes.contains(&n.id)).cloned().collect();
        let new_successes = self.send_updates(&pending, file.policy, part, &todo).await;
        pending.successes.extend(new_successes.iter().copied());
        let all_done = !nodes.is_empty() && nodes.iter().all(|n| pending.successes.contains(&n.id));
        let path = file.path.clone();
        if all_done {
            let removed = self.devices.run(&device, move || diskfile::remove_async_pending(&path)).await;
            return match removed {
                Ok(()) => Outcome::Success,
                Err(e) => {
                    log::error(&format!("ERROR unlinking async pending {}: {e}", file.path.display()));
                    Outcome::Error
                }
            };
        }
        if !new_successes.is_empty() {
            let body = async_pending::encode(&pending);
            let dev_path = self.devices.root().join(&device);
            let policy = file.policy;
            let written = self.devices.run(&device, move || diskfile::replace_async_pending(&dev_path, policy, &path, &body)).await;
            if let Err(e) = written {
                log::error(&format!("ERROR rewriting async pending {}: {e}", file.path.display()));
            }
        }
        Outcome::Failure
    }

    /// Sends the update to `nodes` at once; the ids of those that answered
    /// 2xx. A replica that cannot be reached or times out is retried next
    /// sweep.
    async fn send_updates(&self, pending: &AsyncPending, policy: u32, part: u32, nodes: &[Device]) -> Vec<u32> {
        let headers = self.update_headers(pending, policy);
        let method = match Method::from_bytes(pending.op.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                log::error(&format!(
                    "ERROR async pending with bad op {:?} for /{}/{}/{}",
                    pending.op, pending.account, pending.container, pending.obj
                ));
                return Vec::new();
            }
        };
        let path = format!("/{}/{}/{}", pending.account, pending.container, pending.obj);
        let mut tasks = Vec::new();
        for node in nodes {
            let (client, headers, method) = (self.client.clone(), headers.clone(), method.clone());
            // Swift's updater talks to the replication network address.
            let (id, ip, port, device) = (node.id, node.replication_ip.clone(), node.replication_port, node.device.clone());
            let target = format!("/{device}/{part}{path}");
            tasks.push(tokio::spawn(async move {
                match client.request(method, &ip, port, &target, headers, empty()).await {
                    Ok(resp) => {
                        let status = resp.status();
                        // Drain the body so the connection can be reused.
                        let _ = read_body(resp, 64 * 1024, client.node_timeout()).await;
                        if status.is_success() {
                            return Some(id);
                        }
                        log::error(&format!("ERROR with remote server {ip}:{port}/{device}: Response {status}"));
                        None
                    }
                    Err(e) => {
                        log::error(&format!("ERROR with remote server {ip}:{port}/{device}: {e}"));
                        None
                    }
                }
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            if let Ok(Some(id)) = t.await {
                ids.push(id);
            }
        }
        ids
    }

    fn update_headers(&self, pending: &AsyncPending, policy: u32) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in &pending.headers {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                headers.insert(n, v);
            }
        }
        // The directory the pending was found in names its policy when the
        // pending does not (Swift's `setdefault`): an expirer queue row says
        // policy 0 while it waits in the object's policy's directory.
        if !headers.contains_key(bh::BACKEND_STORAGE_POLICY_INDEX) {
            headers.insert(HeaderName::from_static(bh::BACKEND_STORAGE_POLICY_INDEX), HeaderValue::from(policy));
        }
        if let Ok(ua) = HeaderValue::from_str(&self.user_agent) {
            headers.insert(http::header::USER_AGENT, ua);
        }
        headers
    }
}

/// Why a pending could not be read.
enum ReadError {
    /// Not an async pending we can parse: moved aside.
    Quarantined(String),
    /// The disk or the ring failed: left in place for the next sweep.
    Disk(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn settings_come_from_the_updater_section() {
        let conf = ConfigFile::parse(
            "[DEFAULT]\ndevices = /d\nmount_check = false\n[app:object-server]\nuse = egg:swift#object\n\
             [object-updater]\ninterval = 5\nconcurrency = 2\nslowdown = 0.09\nnode_timeout = 7\n",
            "o.conf",
        )
        .unwrap();
        let s = UpdaterSettings::from_config(&conf).unwrap();
        assert_eq!(s.interval, Duration::from_secs(5));
        assert_eq!(s.concurrency, 2);
        assert!((s.objects_per_second - 10.0).abs() < 1e-9);
        assert_eq!(s.server.node_timeout, Duration::from_secs(7));
        assert_eq!(s.server.devices, PathBuf::from("/d"));
        assert_eq!(s.server.log_name, "object-updater");
        let d = UpdaterSettings::from_config(&ConfigFile::parse("[DEFAULT]\n", "d.conf").unwrap()).unwrap();
        assert_eq!((d.interval, d.concurrency, d.objects_per_second), (Duration::from_secs(300), 8, 50.0));
        assert_eq!(d.server.node_timeout, Duration::from_secs(10));
        let bad = ConfigFile::parse("[object-updater]\nconcurrency = 0\n", "b.conf").unwrap();
        assert!(UpdaterSettings::from_config(&bad).is_err());
        let bad = ConfigFile::parse("[object-updater]\ninterval = soon\n", "b.conf").unwrap();
        assert!(UpdaterSettings::from_config(&bad).is_err());
    }

    #[test]
    fn pending_keeps_unknown_keys_and_adds_successes() {
        let raw = r#"{"op":"PUT","account":"a","container":"c","obj":"o","headers":{"x-size":"1"},"db_state":null,"future":7}"#;
        let mut p: AsyncPending = serde_json::from_slice(raw.as_bytes()).unwrap();
        assert!(p.successes.is_empty());
        p.successes.push(3);
        let v: serde_json::Value = serde_json::to_value(&p).unwrap();
        assert_eq!(v["successes"], serde_json::json!([3]));
        assert_eq!(v["future"], 7);
        let back: AsyncPending = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn only_the_newest_pending_per_object_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let hash = "0123456789abcdef0123456789abcabc";
        let sfx = dir.path().join("async_pending/abc");
        std::fs::create_dir_all(&sfx).unwrap();
        for ts in ["1700000001.00000", "1700000002.00000", "1700000003.00000"] {
            std::fs::write(sfx.join(format!("{hash}-{ts}")), b"{}").unwrap();
        }
        let other = dir.path().join("async_pending-2/fff");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("0123456789abcdef0123456789abcfff-1700000001.00000"), b"{}").unwrap();
        std::fs::write(other.join("junk"), b"").unwrap();
        let mut scan = diskfile::list_async_pendings(dir.path()).unwrap();
        scan.newest.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(scan.unlinked, 2);
        assert_eq!(scan.errors, 1);
        assert_eq!(scan.newest.len(), 2);
        assert_eq!(scan.newest[0], AsyncPendingFile { path: sfx.join(format!("{hash}-1700000003.00000")), policy: 0 });
        assert_eq!(scan.newest[1].policy, 2);
        assert_eq!(std::fs::read_dir(&sfx).unwrap().count(), 1);
    }

    #[test]
    fn rewrite_and_remove_pendings() {
        let dir = tempfile::tempdir().unwrap();
        let sfx = dir.path().join("async_pending/abc");
        std::fs::create_dir_all(&sfx).unwrap();
        let f = sfx.join("0123456789abcdef0123456789abcabc-1700000001.00000");
        std::fs::write(&f, b"{}").unwrap();
        diskfile::replace_async_pending(dir.path(), 0, &f, br#"{"successes":[1]}"#).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), br#"{"successes":[1]}"#);
        diskfile::remove_async_pending(&f).unwrap();
        assert!(!sfx.exists(), "the empty suffix dir goes too");
        // Gone already is not an error.
        diskfile::remove_async_pending(&f).unwrap();
    }
}
