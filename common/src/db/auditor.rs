//! Swift's database auditor (`swift/common/db_auditor.py`, with
//! `swift/container/auditor.py` and `swift/account/auditor.py`): walks every
//! container or account database on the local devices, opens it and reads
//! its info, and moves a database SQLite cannot read (malformed, not a
//! database at all, disk I/O error) to `<device>/quarantined/<type>s/<hash>/`
//! so that replication puts a good copy back.
//!
//! As in Swift, a database that counts as deleted is neither passed nor
//! failed, and a check that finds the content wrong (an account whose
//! totals do not match its per-policy totals) fails the audit without
//! quarantining: the rows are readable, only the figures are off.
//!
//! Beyond Swift: a database whose account/container name does not hash to
//! the directory it sits in fails the audit (it can never be found by a
//! request, and replication would hand it to the wrong nodes). It is not
//! quarantined: a wrong `swift_hash_path_*` in `swift.conf` would otherwise
//! quarantine every database of the node.

use super::account::AccountKind;
use super::broker::{BrokerKind, DatabaseBroker, DbError};
use super::container::ContainerKind;
use crate::config::{ConfigError, ConfigFile, Section};
use crate::daemon::{non_negative, Daemon, Scope};
use crate::devices::Devices;
use crate::hash::HashPathConf;
use crate::log;
use crate::server::ServerSettings;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A database flavour the auditor knows how to check.
pub trait AuditedKind: BrokerKind + Sized {
    /// The daemon's name: `container-auditor`, also its config section.
    const AUDITOR_NAME: &'static str;
    /// Where the daemon reports (`container.recon`, `account.recon`).
    const RECON_FILE: &'static str;
    /// The server's port in Swift (only a default of the shared settings).
    const DEFAULT_PORT: u16;
    /// The databases' directory below a device (`containers`, `accounts`).
    const DATADIR: &'static str;

    /// Runs the kind's checks: `Ok(None)` when the database counts as
    /// deleted (not audited, as in Swift), else the account and container
    /// it holds. Blocking.
    fn check(broker: &mut DatabaseBroker<Self>) -> Result<Option<(String, Option<String>)>, AuditError>;
}

/// Why a database failed its audit.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// SQLite or the file failed (some of these quarantine, see
    /// [`quarantine_reason`]).
    #[error(transparent)]
    Db(#[from] DbError),
    /// The database reads, but what it says is inconsistent (Swift's
    /// `DatabaseAuditorException`).
    #[error("{0}")]
    Invalid(String),
}

impl AuditedKind for ContainerKind {
    const AUDITOR_NAME: &'static str = "container-auditor";
    const RECON_FILE: &'static str = crate::recon::RECON_CONTAINER_FILE;
    const DEFAULT_PORT: u16 = 6201;
    const DATADIR: &'static str = super::container::DATADIR;

    fn check(broker: &mut DatabaseBroker<Self>) -> Result<Option<(String, Option<String>)>, AuditError> {
        if broker.is_deleted()? {
            return Ok(None);
        }
        let info = broker.get_info()?;
        Ok(Some((info.account, Some(info.container))))
    }
}

impl AuditedKind for AccountKind {
    const AUDITOR_NAME: &'static str = "account-auditor";
    const RECON_FILE: &'static str = crate::recon::RECON_ACCOUNT_FILE;
    const DEFAULT_PORT: u16 = 6202;
    const DATADIR: &'static str = super::account::DATADIR;

    /// Swift's account `_audit`: the account's totals must equal the sums
    /// of its per-policy totals.
    fn check(broker: &mut DatabaseBroker<Self>) -> Result<Option<(String, Option<String>)>, AuditError> {
        if broker.is_deleted()? {
            return Ok(None);
        }
        let info = broker.get_info()?;
        let stats = broker.get_policy_stats()?;
        let sum = |f: fn(&super::account::PolicyStats) -> i64| stats.iter().map(f).sum::<i64>();
        let totals = [
            ("container_count", info.container_count, sum(|s| s.container_count)),
            ("object_count", info.object_count, sum(|s| s.object_count)),
            ("bytes_used", info.bytes_used, sum(|s| s.bytes_used)),
        ];
        for (key, total, across) in totals {
            if total != across {
                return Err(AuditError::Invalid(format!(
                    "The total {key} for the account {} ({total}) does not match the sum of {key} across policies ({across})",
                    info.account
                )));
            }
        }
        Ok(Some((info.account, None)))
    }
}

/// Why an error means the file is broken and must be quarantined (Swift's
/// `possibly_quarantine`): SQLite found the image malformed, the file is
/// not a database, or the disk failed under it. Other errors (a busy lock,
/// a missing table) leave the database where it is.
pub fn quarantine_reason(e: &AuditError) -> Option<&'static str> {
    use rusqlite::ErrorCode;
    let AuditError::Db(DbError::Sqlite(rusqlite::Error::SqliteFailure(err, _))) = e else { return None };
    match err.code {
        ErrorCode::DatabaseCorrupt => Some("malformed database"),
        ErrorCode::NotADatabase => Some("corrupted database"),
        ErrorCode::SystemIoFailure => Some("disk error while accessing database"),
        _ => None,
    }
}

/// Swift's `quarantine_db`: moves the database's whole hash directory
/// (`<device>/<type>s/<part>/<suffix>/<hash>`) to
/// `<device>/quarantined/<type>s/<hash>`, or to `<hash>-<random hex>` when
/// an earlier quarantine of the same hash is there. Returns the new path.
/// `db_type` is `container` or `account`. Blocking.
pub fn quarantine_db(db_file: &Path, db_type: &str) -> std::io::Result<PathBuf> {
    let invalid = || std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} is not in a hash directory", db_file.display()));
    let hash_dir = db_file.parent().ok_or_else(invalid)?;
    let hash = hash_dir.file_name().ok_or_else(invalid)?;
    let device = hash_dir.ancestors().nth(4).ok_or_else(invalid)?;
    let base = device.join("quarantined").join(format!("{db_type}s"));
    std::fs::create_dir_all(&base)?;
    let target = base.join(hash);
    match std::fs::rename(hash_dir, &target) {
        Ok(()) => Ok(target),
        // rename(2) onto a non-empty directory: an earlier quarantine of
        // the same database is kept beside this one.
        Err(e) if target.exists() => {
            let target = base.join(format!("{}-{:032x}", hash.to_string_lossy(), rand::random::<u128>()));
            std::fs::rename(hash_dir, &target).map_err(|_| e)?;
            Ok(target)
        }
        Err(e) => Err(e),
    }
}

/// What auditing one database came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audit {
    Passed,
    /// Counts as deleted: not audited (Swift counts it nowhere).
    Skipped,
    /// Failed; the message is logged.
    Failed(String),
    /// Failed and moved to this quarantine directory.
    Quarantined(PathBuf),
}

/// Audits the database at `db_file`: `hash` is the hash-path function the
/// name must hash with (to its directory name). Blocking. Logs failures.
pub fn audit_db<K: AuditedKind>(db_file: &Path, hash: &HashPathConf) -> Audit {
    let mut broker = DatabaseBroker::<K>::new(db_file.to_path_buf());
    let checked = K::check(&mut broker);
    drop(broker);
    let dir_hash = db_file.parent().and_then(Path::file_name).map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    let names = match checked {
        Ok(None) => return Audit::Skipped,
        Ok(Some(names)) => names,
        Err(e) => {
            if let Some(reason) = quarantine_reason(&e) {
                return match quarantine_db(db_file, K::DB_TYPE) {
                    Ok(to) => {
                        let from = db_file.parent().unwrap_or(db_file);
                        log::error(&format!("Quarantined {} to {} due to {reason}", from.display(), to.display()));
                        Audit::Quarantined(to)
                    }
                    Err(qe) => {
                        let msg = format!("ERROR could not quarantine {} ({reason}): {qe}", db_file.display());
                        log::error(&msg);
                        Audit::Failed(msg)
                    }
                };
            }
            let msg = match e {
                AuditError::Invalid(m) => format!("Audit Failed for {}: {m}", db_file.display()),
                AuditError::Db(e) => format!("ERROR Could not get {} info {}: {e}", K::DB_TYPE, db_file.display()),
            };
            log::error(&msg);
            return Audit::Failed(msg);
        }
    };
    let (account, container) = names;
    match hash.hash_path(&account, container.as_deref(), None) {
        Ok(h) if h == dir_hash => Audit::Passed,
        Ok(h) => {
            let name = container.map(|c| format!("/{account}/{c}")).unwrap_or_else(|| format!("/{account}"));
            let msg = format!("Audit Failed for {}: {name} hashes to {h}, not to its directory {dir_hash}", db_file.display());
            log::error(&msg);
            Audit::Failed(msg)
        }
        Err(e) => {
            let msg = format!("Audit Failed for {}: {e}", db_file.display());
            log::error(&msg);
            Audit::Failed(msg)
        }
    }
}

/// The `[container-auditor]` / `[account-auditor]` section (over
/// `[DEFAULT]`).
#[derive(Debug, Clone)]
pub struct AuditorSettings {
    /// devices, mount_check, swift_dir, log_name (default the section's
    /// name), log_level, recon_cache_path.
    pub server: ServerSettings,
    /// `interval`: seconds from the start of one pass to the next (1800).
    pub interval: Duration,
    /// `containers_per_second` / `accounts_per_second`: databases audited
    /// per second at most (200).
    pub per_second: f64,
}

impl AuditorSettings {
    /// Reads the `K` auditor's section, or `[DEFAULT]` alone when the file
    /// has none; errors name the file, line and key.
    pub fn from_config<K: AuditedKind>(conf: &ConfigFile) -> Result<AuditorSettings, ConfigError> {
        let section: Section = conf.section(K::AUDITOR_NAME).unwrap_or_else(|| conf.defaults());
        Ok(AuditorSettings {
            server: ServerSettings::from_section(&section, K::AUDITOR_NAME, K::DEFAULT_PORT)?,
            interval: Duration::from_secs_f64(non_negative(&section, "interval", 1800.0)?),
            per_second: non_negative(&section, &format!("{}s_per_second", K::DB_TYPE), 200.0)?,
        })
    }
}

/// What one pass counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassStats {
    pub passed: u64,
    /// Failed, quarantined ones included (Swift counts them as failures).
    pub failed: u64,
    pub quarantined: u64,
}

/// How often the counts go to recon during a long pass (Swift's
/// `logging_interval`).
const REPORT_INTERVAL: Duration = Duration::from_secs(3600);

/// The counts since the last report to recon (Swift's `passes`,
/// `failures` and `reported`), kept across passes as Swift keeps them.
struct Progress {
    /// When the counting began, Unix seconds (`<type>_audits_since`).
    since: f64,
    /// The same moment on the monotonic clock, to time the next report.
    started: Instant,
    passed: u64,
    failed: u64,
}

impl Progress {
    fn new() -> Progress {
        Progress { since: unix_now(), started: Instant::now(), passed: 0, failed: 0 }
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// The auditor daemon of one database flavour.
pub struct DatabaseAuditor<K: AuditedKind> {
    settings: AuditorSettings,
    hash: HashPathConf,
    devices: Arc<Devices>,
    progress: Arc<std::sync::Mutex<Progress>>,
    kind: PhantomData<fn() -> K>,
}

/// `swift-container-auditor`.
pub type ContainerAuditor = DatabaseAuditor<ContainerKind>;
/// `swift-account-auditor`.
pub type AccountAuditor = DatabaseAuditor<AccountKind>;

impl<K: AuditedKind> Daemon for DatabaseAuditor<K> {
    const NAME: &'static str = K::AUDITOR_NAME;
    const SCOPED: bool = true;
    const RECON_FILE: &'static str = K::RECON_FILE;

    fn from_config(conf: &ConfigFile) -> Result<Self, String> {
        let settings = AuditorSettings::from_config::<K>(conf).map_err(|e| e.to_string())?;
        let swift_conf = crate::swift_conf::SwiftConf::load_dir(&settings.server.swift_dir).map_err(|e| e.to_string())?;
        Ok(DatabaseAuditor::new(settings, swift_conf.hash))
    }

    fn server(&self) -> &ServerSettings {
        &self.settings.server
    }

    fn interval(&self) -> Duration {
        self.settings.interval
    }

    /// Swift's recon keys: `<type>_auditor_pass_completed` (seconds of the
    /// pass), and `<type>_audits_passed`, `_failed` and `_since`: the
    /// counts since the last hourly report and when that was (Unix
    /// seconds). Swift writes the counts only at the hourly reports; we
    /// also write them after every pass, so a pass shorter than an hour
    /// shows too.
    async fn run_once(self: Arc<Self>, scope: Scope) -> Vec<(&'static str, serde_json::Value)> {
        let begin = Instant::now();
        self.audit_pass(&scope).await;
        let mut figures = vec![(recon_keys::<K>()[0], serde_json::json!(begin.elapsed().as_secs_f64()))];
        if let Ok(p) = self.progress.lock() {
            figures.extend(counts_figures::<K>(&p));
        }
        figures
    }
}

/// `<type>_auditor_pass_completed`, `<type>_audits_passed`, `_failed`,
/// `_since`.
fn recon_keys<K: AuditedKind>() -> [&'static str; 4] {
    match K::DB_TYPE {
        "account" => ["account_auditor_pass_completed", "account_audits_passed", "account_audits_failed", "account_audits_since"],
        _ => ["container_auditor_pass_completed", "container_audits_passed", "container_audits_failed", "container_audits_since"],
    }
}

fn counts_figures<K: AuditedKind>(p: &Progress) -> Vec<(&'static str, serde_json::Value)> {
    let keys = recon_keys::<K>();
    vec![(keys[1], serde_json::json!(p.passed)), (keys[2], serde_json::json!(p.failed)), (keys[3], serde_json::json!(p.since))]
}

/// Adds one outcome to the counts and, once `REPORT_INTERVAL` has passed
/// since the last report, logs them and (for a full pass) writes them to
/// the recon cache, then starts counting anew (Swift's hourly report).
/// Blocking (the cache write).
fn record<K: AuditedKind>(progress: &std::sync::Mutex<Progress>, outcome: &Audit, cache: Option<&Path>, interval: Duration) {
    let Ok(mut p) = progress.lock() else { return };
    match outcome {
        Audit::Passed => p.passed += 1,
        Audit::Skipped => {}
        Audit::Failed(_) | Audit::Quarantined(_) => p.failed += 1,
    }
    if p.started.elapsed() < interval {
        return;
    }
    log::info(&format!(
        "Since {}: {} audits: {} passed audit, {} failed audit",
        crate::timestamp::log_date(p.since as u64),
        K::DB_TYPE,
        p.passed,
        p.failed
    ));
    if let Some(cache) = cache {
        crate::daemon::dump_recon_cache(cache, &counts_figures::<K>(&p));
    }
    *p = Progress::new();
}

impl<K: AuditedKind> DatabaseAuditor<K> {
    /// Builds the auditor; `hash` is the cluster's hash-path secrets.
    pub fn new(settings: AuditorSettings, hash: HashPathConf) -> Self {
        let s = &settings.server;
        let devices = Arc::new(Devices::new(s.devices.clone(), s.mount_check, s.threads_per_disk));
        DatabaseAuditor { settings, hash, devices, progress: Arc::new(std::sync::Mutex::new(Progress::new())), kind: PhantomData }
    }

    /// Audits every database in `scope` once, one at a time at most
    /// `per_second` a second (Swift's sequential, rate-limited walk), and
    /// logs the pass.
    pub async fn audit_pass(self: &Arc<Self>, scope: &Scope) -> PassStats {
        let title = format!("{}{}", K::DB_TYPE[..1].to_ascii_uppercase(), &K::DB_TYPE[1..]);
        log::info(&format!("Begin {} audit pass.", K::DB_TYPE));
        let begin = Instant::now();
        let dbs = self.find_databases(scope).await;
        // Only a full pass reports to recon, as the frame does.
        let cache = scope.is_all().then(|| self.settings.server.recon_cache_path.join(K::RECON_FILE));
        let outcomes = crate::daemon::sweep(dbs, 1, self.settings.per_second, |(device, db)| {
            let (me, cache) = (self.clone(), cache.clone());
            async move {
                let (hash, progress) = (me.hash.clone(), me.progress.clone());
                me.devices
                    .run(&device, move || {
                        let outcome = audit_db::<K>(&db, &hash);
                        record::<K>(&progress, &outcome, cache.as_deref(), REPORT_INTERVAL);
                        outcome
                    })
                    .await
            }
        })
        .await;
        let mut stats = PassStats::default();
        for o in outcomes {
            match o {
                Audit::Passed => stats.passed += 1,
                Audit::Skipped => {}
                Audit::Failed(_) => stats.failed += 1,
                Audit::Quarantined(_) => {
                    stats.failed += 1;
                    stats.quarantined += 1;
                }
            }
        }
        log::info(&format!(
            "{title} audit pass completed: {:.02}s, {} passed audit, {} failed audit, {} quarantined",
            begin.elapsed().as_secs_f64(),
            stats.passed,
            stats.failed,
            stats.quarantined
        ));
        // Swift's auditor metrics, summed over the pass.
        if let Some(statsd) = &self.settings.server.statsd {
            statsd.update_counts(&[("passes", stats.passed), ("failures", stats.failed), ("quarantines", stats.quarantined)]);
        }
        stats
    }

    /// Every `(device, db file)` of the scope: devices that fail the mount
    /// check are logged and skipped (Swift's `audit_location_generator`).
    async fn find_databases(&self, scope: &Scope) -> Vec<(String, PathBuf)> {
        let root = self.devices.root().to_path_buf();
        let names = tokio::task::spawn_blocking(move || list_dir(&root)).await.unwrap_or_default();
        let mut found = Vec::new();
        for device in names.into_iter().filter(|d| scope.has_device(d)) {
            match self.devices.check_async(&device).await {
                Ok(path) => {
                    let scope = scope.clone();
                    let dbs = self.devices.run(&device, move || walk_datadir(&path.join(K::DATADIR), &scope)).await;
                    found.extend(dbs.into_iter().map(|db| (device.clone(), db)));
                }
                Err(e) => log::warning(&format!("Skipping {e}")),
            }
        }
        found
    }
}

/// Entry names of a directory, sorted; an unreadable one is logged and empty.
fn list_dir(path: &Path) -> Vec<String> {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            let mut names: Vec<String> = entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect();
            names.sort();
            names
        }
        Err(e) => {
            log::error(&format!("ERROR: Unable to access {}: {e}", path.display()));
            Vec::new()
        }
    }
}

/// Every `*.db` at `<datadir>/<part>/<suffix>/<hash>/` whose partition is
/// in `scope`; a missing datadir is empty.
fn walk_datadir(datadir: &Path, scope: &Scope) -> Vec<PathBuf> {
    let read = |p: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(p).map(|it| it.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default()
    };
    let mut dbs = Vec::new();
    for part in read(datadir).into_iter().filter(|p| p.is_dir()) {
        // Like Swift, skip what does not look like a partition.
        let number = part.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse::<u32>().ok());
        if !number.is_some_and(|n| scope.has_partition(n)) {
            continue;
        }
        for suffix in read(&part).into_iter().filter(|p| p.is_dir()) {
            for hash in read(&suffix).into_iter().filter(|p| p.is_dir()) {
                dbs.extend(read(&hash).into_iter().filter(|p| p.extension().is_some_and(|e| e == "db") && p.is_file()));
            }
        }
    }
    dbs.sort();
    dbs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::account::ContainerRecord;
    use crate::db::broker::{db_path, InitParams};
    use crate::db::{AccountBroker, ContainerBroker};
    use crate::timestamp::Timestamp;

    fn hash() -> HashPathConf {
        HashPathConf::new("", "test-suffix")
    }

    fn make_container(dev: &Path, account: &str, container: &str) -> PathBuf {
        let h = hash().hash_path(account, Some(container), None).unwrap();
        let file = db_path(dev, "containers", 7, &h);
        let mut b = ContainerBroker::new(file.clone());
        b.initialize(&InitParams {
            account: account.into(),
            container: Some(container.into()),
            put_timestamp: Timestamp::now(),
            storage_policy_index: 0,
            device: "sda".into(),
        })
        .unwrap();
        file
    }

    fn make_account(dev: &Path, account: &str) -> PathBuf {
        let h = hash().hash_path(account, None, None).unwrap();
        let file = db_path(dev, "accounts", 3, &h);
        let mut b = AccountBroker::new(file.clone());
        b.initialize(&InitParams {
            account: account.into(),
            container: None,
            put_timestamp: Timestamp::now(),
            storage_policy_index: 0,
            device: "sda".into(),
        })
        .unwrap();
        let now = Timestamp::now();
        b.put_container(ContainerRecord::new("c", &now, &Timestamp::ZERO, 3, 30, 0)).unwrap();
        file
    }

    #[test]
    fn good_databases_pass() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("sda");
        let c = make_container(&dev, "AUTH_a", "c");
        assert_eq!(audit_db::<ContainerKind>(&c, &hash()), Audit::Passed);
        let a = make_account(&dev, "AUTH_a");
        assert_eq!(audit_db::<AccountKind>(&a, &hash()), Audit::Passed);
        assert!(c.exists() && a.exists());
        assert!(!dev.join("quarantined").exists());
    }

    #[test]
    fn a_file_that_is_not_a_database_is_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("sda");
        let c = make_container(&dev, "AUTH_a", "c");
        std::fs::write(&c, b"this is not a database, just some bytes that are long enough to be a header....!").unwrap();
        let hash_dir = c.parent().unwrap().to_path_buf();
        let name = hash_dir.file_name().unwrap().to_owned();
        let to = dev.join("quarantined/containers").join(&name);
        assert_eq!(audit_db::<ContainerKind>(&c, &hash()), Audit::Quarantined(to.clone()));
        assert!(!hash_dir.exists());
        assert!(to.join(c.file_name().unwrap()).is_file());

        // The same hash quarantined again goes beside the first.
        let c2 = make_container(&dev, "AUTH_a", "c");
        std::fs::write(&c2, vec![0xa5u8; 4096]).unwrap();
        match audit_db::<ContainerKind>(&c2, &hash()) {
            Audit::Quarantined(p) => {
                assert_ne!(p, to);
                assert!(p.file_name().unwrap().to_string_lossy().starts_with(&*name.to_string_lossy()));
                assert!(p.join(c2.file_name().unwrap()).is_file());
            }
            other => panic!("{other:?}"),
        }
        assert!(to.is_dir());
    }

    #[test]
    fn a_truncated_database_is_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("sda");
        let a = make_account(&dev, "AUTH_t");
        // Many rows, so the tables span many pages.
        let mut b = AccountBroker::new(a.clone());
        let now = Timestamp::now();
        for i in 0..2000 {
            b.put_container(ContainerRecord::new(&format!("container-{i:05}"), &now, &Timestamp::ZERO, 1, 1, 0)).unwrap();
        }
        b.get_info().unwrap();
        drop(b);
        let len = std::fs::metadata(&a).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&a).unwrap().set_len(len / 3).unwrap();
        match audit_db::<AccountKind>(&a, &hash()) {
            Audit::Quarantined(p) => assert!(p.starts_with(dev.join("quarantined/accounts"))),
            other => panic!("{other:?}"),
        }
        assert!(!a.exists());
    }

    #[test]
    fn a_name_that_does_not_hash_to_its_directory_fails_but_stays() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("sda");
        let c = make_container(&dev, "AUTH_a", "c");
        let other = HashPathConf::new("", "another-suffix");
        assert!(matches!(audit_db::<ContainerKind>(&c, &other), Audit::Failed(m) if m.contains("hashes to")));
        assert!(c.exists());
    }

    #[test]
    fn deleted_databases_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("sda");
        let c = make_container(&dev, "AUTH_a", "c");
        ContainerBroker::new(c.clone()).delete_db(&Timestamp::now()).unwrap();
        assert_eq!(audit_db::<ContainerKind>(&c, &hash()), Audit::Skipped);
    }

    #[tokio::test]
    async fn a_pass_counts_and_quarantines() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("sda");
        make_container(&dev, "AUTH_a", "c1");
        let bad = make_container(&dev, "AUTH_a", "c2");
        std::fs::write(&bad, vec![7u8; 1024]).unwrap();
        std::fs::create_dir_all(dir.path().join("sdb/containers/not-a-partition/abc/xyz")).unwrap();
        let conf = ConfigFile::parse(
            &format!(
                "[DEFAULT]\ndevices = {}\nmount_check = false\n[container-auditor]\ncontainers_per_second = 0\n",
                dir.path().display()
            ),
            "c.conf",
        )
        .unwrap();
        let settings = AuditorSettings::from_config::<ContainerKind>(&conf).unwrap();
        assert_eq!(settings.interval, Duration::from_secs(1800));
        assert_eq!(settings.per_second, 0.0);
        assert_eq!(settings.server.log_name, "container-auditor");
        let auditor = Arc::new(ContainerAuditor::new(settings, hash()));
        let stats = auditor.audit_pass(&Scope::default()).await;
        assert_eq!(stats, PassStats { passed: 1, failed: 1, quarantined: 1 });
        let figures = auditor.clone().run_once(Scope::default()).await;
        let get = |k: &str| figures.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()).unwrap();
        // The counts run on from the first pass (no hourly report yet).
        assert_eq!(get("container_audits_passed"), serde_json::json!(2));
        assert_eq!(get("container_audits_failed"), serde_json::json!(1));
        assert!(get("container_audits_since").as_f64().unwrap() > 1.0e9);
        assert!(get("container_auditor_pass_completed").is_f64());
        // A scope of other devices sees nothing.
        let none = auditor.audit_pass(&Scope { devices: vec!["sdb".into()], partitions: vec![] }).await;
        assert_eq!(none, PassStats::default());
    }

    #[test]
    fn counts_are_reported_hourly_and_start_anew() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("container.recon");
        let progress = std::sync::Mutex::new(Progress::new());
        record::<ContainerKind>(&progress, &Audit::Passed, Some(&cache), REPORT_INTERVAL);
        record::<ContainerKind>(&progress, &Audit::Failed("x".into()), Some(&cache), REPORT_INTERVAL);
        assert!(!cache.exists(), "not an hour yet");
        let since = progress.lock().unwrap().since;
        record::<ContainerKind>(&progress, &Audit::Quarantined(PathBuf::from("q")), Some(&cache), Duration::ZERO);
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
        assert_eq!(doc["container_audits_passed"], 1);
        assert_eq!(doc["container_audits_failed"], 2);
        assert_eq!(doc["container_audits_since"].as_f64().unwrap(), since);
        let p = progress.lock().unwrap();
        assert_eq!((p.passed, p.failed), (0, 0));
    }

    #[test]
    fn account_settings() {
        let conf = ConfigFile::parse("[account-auditor]\ninterval = 5\naccounts_per_second = 3\nlog_name = aa\n", "a.conf").unwrap();
        let s = AuditorSettings::from_config::<AccountKind>(&conf).unwrap();
        assert_eq!((s.interval, s.per_second, s.server.log_name.as_str()), (Duration::from_secs(5), 3.0, "aa"));
        let bad = ConfigFile::parse("[account-auditor]\naccounts_per_second = -1\n", "a.conf").unwrap();
        assert!(AuditorSettings::from_config::<AccountKind>(&bad).is_err());
    }
}
