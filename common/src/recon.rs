//! Swift's recon middleware (`swift/common/middleware/recon.py`): the
//! `GET /recon/<what>[/<type>]` monitoring endpoints of the storage servers,
//! which `swift-recon` polls.
//!
//! Figures come from the system (`/proc`, `statvfs`, the devices dir, the
//! ring files) or from the recon cache: JSON files under `recon_cache_path`
//! that the daemons (replicators, auditors, updaters, `swift-recon-cron`, ...)
//! merge their figures into. Every cache-backed answer carries all of its
//! keys, `null` when the file or the key is missing, because `swift-recon`
//! indexes several of them directly and crashes on a missing key.
//!
//! As in Swift, recon is enabled by the server's paste pipeline
//! (`pipeline = recon object-server` with `[filter:recon] use =
//! egg:swift#recon`); its settings are `[DEFAULT]` plus `[filter:recon]`, not
//! the app's section. Every server type answers every endpoint the same way
//! (an account server answers `/recon/async` from `object.recon`), and the
//! answers do not depend on `mount_check`: `unmounted` and `diskusage` always
//! check for a real mount point, as Swift's `check_mount` does.

use crate::config::{ConfigError, ConfigFile, Section};
use crate::http::{self as h, Body};
use crate::server::ServerSettings;
use crate::swift_conf::{StoragePolicy, SwiftConf};
use http::{HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Swift's `DEFAULT_RECON_CACHE_PATH`.
pub const DEFAULT_RECON_CACHE_PATH: &str = "/var/cache/swift";
/// Cache file of the object daemons (replicator, auditor, updater, expirer,
/// reconstructor) and `swift-recon-cron` (async pendings).
pub const RECON_OBJECT_FILE: &str = "object.recon";
/// Cache file of the container daemons (replicator, auditor, updater, sharder).
pub const RECON_CONTAINER_FILE: &str = "container.recon";
/// Cache file of the account daemons (replicator, auditor).
pub const RECON_ACCOUNT_FILE: &str = "account.recon";
/// Cache file of `swift-drive-audit`.
pub const RECON_DRIVE_FILE: &str = "drive.recon";
/// Cache file of `swift-object-relinker`.
pub const RECON_RELINKER_FILE: &str = "relinker.recon";

/// The recon middleware's own settings: Swift's `filter_factory` gives it
/// `[DEFAULT]` merged with `[filter:recon]` (paste's rules: see
/// [`ConfigFile::section`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconSettings {
    /// `devices`: the directory holding one directory per device.
    pub devices: PathBuf,
    /// `swift_dir`: where the ring files are.
    pub swift_dir: PathBuf,
    /// `recon_cache_path`: where the `*.recon` cache files are.
    pub recon_cache_path: PathBuf,
}

impl ReconSettings {
    /// The recon settings when the server's `[pipeline:main]` names a recon
    /// filter (a `recon` entry, or any entry whose `[filter:<name>]` says
    /// `use = egg:swift#recon`); `None` when recon is not in the pipeline or
    /// there is no pipeline, as in Swift.
    pub fn from_config(conf: &ConfigFile) -> Result<Option<ReconSettings>, ConfigError> {
        let Some(pipeline) = conf.pipeline() else { return Ok(None) };
        // The last name is the app; only the filters before it can be recon.
        let filters = &pipeline[..pipeline.len().saturating_sub(1)];
        let mut found = None;
        for name in filters {
            let section = conf.filter_section(name);
            let uses_recon = section.as_ref().and_then(|s| s.get("use")).is_some_and(|u| u.trim() == "egg:swift#recon");
            if uses_recon || name == "recon" {
                found = Some(section.unwrap_or_else(|| conf.defaults()));
                break;
            }
        }
        let Some(section) = found else { return Ok(None) };
        ReconSettings::from_section(&section).map(Some)
    }

    /// Reads the settings from the effective filter section.
    pub fn from_section(s: &Section) -> Result<ReconSettings, ConfigError> {
        Ok(ReconSettings {
            devices: PathBuf::from(s.get_str("devices", "/srv/node")?),
            swift_dir: PathBuf::from(s.get_str("swift_dir", "/etc/swift")?),
            recon_cache_path: PathBuf::from(s.get_str("recon_cache_path", DEFAULT_RECON_CACHE_PATH)?),
        })
    }
}

/// What a recon request gets, before it becomes an HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub enum ReconAnswer {
    /// 200, `application/json`.
    Json(Value),
    /// 404 `Invalid path: <path>` (the path quoted as Swift's `req.path`).
    InvalidPath(String),
    /// 500 `Internal server error.`: a figure could not be read (for
    /// example the devices dir is missing). The text is for the log.
    Failed(String),
}

/// `egg:swift#recon` in a storage server's pipeline: takes every path
/// starting `/recon/` (whatever the method, as Swift's middleware) and
/// passes the rest on.
pub struct ReconFilter {
    recon: Arc<Recon>,
    next: crate::pipeline::Next,
}

impl ReconFilter {
    pub fn new(recon: Arc<Recon>, next: crate::pipeline::Next) -> ReconFilter {
        ReconFilter { recon, next }
    }
}

impl crate::pipeline::Handler for ReconFilter {
    fn call(&self, req: http::Request<Body>) -> crate::pipeline::BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            let raw_path = req.uri().path();
            if Recon::handles(raw_path) {
                return self.recon.clone().respond(raw_path).await;
            }
            self.next.call(req).await
        })
    }
}

/// The recon endpoints of one storage server.
#[derive(Debug, Clone)]
pub struct Recon {
    devices: PathBuf,
    recon_cache_path: PathBuf,
    /// Account, container, then one object ring per storage policy.
    rings: Vec<PathBuf>,
    /// The `swift.conf` the server loaded (its app's `swift_dir`).
    swift_conf_file: PathBuf,
}

impl Recon {
    /// `swift_conf_file` is the `swift.conf` the server loaded and
    /// `policies` its storage policies (one object ring each).
    pub fn new(settings: &ReconSettings, swift_conf_file: PathBuf, policies: &[StoragePolicy]) -> Recon {
        let dir = &settings.swift_dir;
        let mut rings = vec![dir.join("account.ring.gz"), dir.join("container.ring.gz")];
        rings.extend(policies.iter().map(|p| dir.join(format!("{}.ring.gz", p.ring_name()))));
        Recon { devices: settings.devices.clone(), recon_cache_path: settings.recon_cache_path.clone(), rings, swift_conf_file }
    }

    /// The recon endpoints of a storage server, when its pipeline enables
    /// recon: ring paths under recon's `swift_dir`, `swift.conf` from the
    /// server's own `swift_dir` (the file Swift's server loaded).
    pub fn for_server(server: &ServerSettings, swift: &SwiftConf) -> Option<Arc<Recon>> {
        let settings = server.recon.as_ref()?;
        Some(Arc::new(Recon::new(settings, server.swift_dir.join("swift.conf"), &swift.policies)))
    }

    /// Whether a request path (as sent, percent-encoded) is recon's: Swift's
    /// middleware takes every path starting `/recon/`, whatever the method.
    pub fn handles(raw_path: &str) -> bool {
        decode(raw_path).starts_with("/recon/")
    }

    /// Answers a recon request off the async runtime and builds Swift's
    /// response.
    pub async fn respond(self: Arc<Self>, raw_path: &str) -> Response<Body> {
        let path = raw_path.to_string();
        let answer = match tokio::task::spawn_blocking(move || self.answer(&path)).await {
            Ok(a) => a,
            Err(e) => ReconAnswer::Failed(format!("recon task failed: {e}")),
        };
        match answer {
            ReconAnswer::Json(v) => {
                let body = v.to_string();
                let mut resp = h::text(StatusCode::OK, body);
                resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                resp
            }
            ReconAnswer::InvalidPath(p) => plain(StatusCode::NOT_FOUND, format!("Invalid path: {p}")),
            ReconAnswer::Failed(why) => {
                crate::log::error(&format!("recon {raw_path}: {why}"));
                plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.".to_string())
            }
        }
    }

    /// Answers `raw_path` (`/recon/<what>[/<type>]`). Blocking: reads
    /// `/proc`, the devices dir, ring files and cache files.
    pub fn answer(&self, raw_path: &str) -> ReconAnswer {
        let path = decode(raw_path);
        let invalid = || ReconAnswer::InvalidPath(h::quote_path(&path));
        let Some(rest) = path.strip_prefix("/recon/") else { return invalid() };
        // Swift's split_path(1, 3, True): the type keeps any further slashes.
        let (check, kind) = match rest.split_once('/') {
            Some((c, k)) => (c, Some(k)),
            None => (rest, None),
        };
        if check.is_empty() {
            return invalid();
        }
        let result = match (check, kind) {
            ("mem", _) => self.mem(),
            ("load", _) => self.load(),
            ("async", _) => Ok(self.async_pendings()),
            ("replication", None) => Ok(self.replication("object")),
            ("replication", Some(k @ ("account" | "container" | "object"))) => Ok(self.replication(k)),
            ("devices", _) => Ok(self.device_list()),
            ("updater", Some(k @ ("container" | "object"))) => Ok(self.updater(k)),
            ("auditor", Some(k @ ("account" | "container" | "object"))) => Ok(self.auditor(k)),
            ("expirer", Some("object")) => Ok(self.expirer()),
            ("mounted", _) => self.mounted(),
            ("unmounted", _) => self.unmounted(),
            ("diskusage", _) => self.diskusage(),
            ("ringmd5", _) => Ok(self.ring_md5()),
            ("swiftconfmd5", _) => Ok(self.swift_conf_md5()),
            ("quarantined", _) => self.quarantined(),
            ("sockstat", _) => self.sockstat(),
            ("version", _) => Ok(json!({ "version": crate::VERSION })),
            ("driveaudit", _) => Ok(self.read_cache(RECON_DRIVE_FILE, &["drive_audit_errors"], false)),
            ("time", _) => Ok(json!(unix_time())),
            ("sharding", _) => Ok(self.read_cache(RECON_CONTAINER_FILE, &["sharding_stats", "sharding_time", "sharding_last"], false)),
            ("relinker", _) => Ok(self.read_cache(RECON_RELINKER_FILE, &["devices", "workers"], true)),
            ("reconstruction", Some("object")) => {
                Ok(self.read_cache(RECON_OBJECT_FILE, &["object_reconstruction_last", "object_reconstruction_time"], false))
            }
            _ => return invalid(),
        };
        match result {
            Ok(v) => ReconAnswer::Json(v),
            Err(why) => ReconAnswer::Failed(why),
        }
    }

    /// Swift's `_from_recon_cache`: the named keys of a cache file, each
    /// `null` when missing; all `null` when the file is missing, unreadable
    /// or not a JSON object. `quiet_when_missing` suits figures that exist
    /// only while a tool runs (the relinker).
    fn read_cache(&self, file: &str, keys: &[&str], quiet_when_missing: bool) -> Value {
        let path = self.recon_cache_path.join(file);
        let data = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => Some(map),
                Ok(_) => {
                    crate::log::error(&format!("Error retrieving recon data from {}: not a JSON object", path.display()));
                    None
                }
                Err(e) => {
                    crate::log::error(&format!("Error parsing recon cache file {}: {e}", path.display()));
                    None
                }
            },
            Err(e) => {
                // Swift logs a missing file as an error, except for the
                // relinker's; until our daemons write the cache that is the
                // normal state, so it is only worth a debug line here.
                if e.kind() != std::io::ErrorKind::NotFound {
                    crate::log::error(&format!("Error reading recon cache file {}: {e}", path.display()));
                } else if !quiet_when_missing {
                    crate::log::write(crate::log::Level::Debug, &format!("No recon cache file {}", path.display()));
                }
                None
            }
        };
        let mut out = Map::new();
        for key in keys {
            let value = data.as_ref().and_then(|d| d.get(*key)).cloned().unwrap_or(Value::Null);
            out.insert(key.to_string(), value);
        }
        Value::Object(out)
    }

    fn async_pendings(&self) -> Value {
        self.read_cache(RECON_OBJECT_FILE, &["async_pending", "async_pending_last"], false)
    }

    fn replication(&self, kind: &str) -> Value {
        let mut keys = vec!["replication_time", "replication_stats", "replication_last"];
        let file = match kind {
            "account" => RECON_ACCOUNT_FILE,
            "container" => RECON_CONTAINER_FILE,
            _ => {
                keys.extend(["object_replication_time", "object_replication_last"]);
                RECON_OBJECT_FILE
            }
        };
        self.read_cache(file, &keys, false)
    }

    fn updater(&self, kind: &str) -> Value {
        if kind == "container" {
            self.read_cache(RECON_CONTAINER_FILE, &["container_updater_sweep"], false)
        } else {
            self.read_cache(RECON_OBJECT_FILE, &["object_updater_sweep", "object_updater_stats", "object_updater_last"], false)
        }
    }

    fn auditor(&self, kind: &str) -> Value {
        match kind {
            "account" => self.read_cache(
                RECON_ACCOUNT_FILE,
                &["account_audits_passed", "account_auditor_pass_completed", "account_audits_since", "account_audits_failed"],
                false,
            ),
            "container" => self.read_cache(
                RECON_CONTAINER_FILE,
                &["container_audits_passed", "container_auditor_pass_completed", "container_audits_since", "container_audits_failed"],
                false,
            ),
            _ => self.read_cache(RECON_OBJECT_FILE, &["object_auditor_stats_ALL", "object_auditor_stats_ZBF"], false),
        }
    }

    fn expirer(&self) -> Value {
        self.read_cache(RECON_OBJECT_FILE, &["object_expiration_pass", "expired_last_pass"], false)
    }

    /// `{"<devices>": [names]}`, or `{"<devices>": null}` when the dir
    /// cannot be listed.
    fn device_list(&self) -> Value {
        let names = match list_dir(&self.devices) {
            Ok(mut names) => {
                names.sort();
                json!(names)
            }
            Err(e) => {
                crate::log::error(&format!("Error listing devices {}: {e}", self.devices.display()));
                Value::Null
            }
        };
        let mut out = Map::new();
        out.insert(self.devices.display().to_string(), names);
        Value::Object(out)
    }

    /// Every mounted filesystem, from `/proc/mounts`.
    fn mounted(&self) -> Result<Value, String> {
        let text = read_proc("/proc/mounts")?;
        Ok(Value::Array(parse_mounts(&text)))
    }

    fn load(&self) -> Result<Value, String> {
        parse_loadavg(&read_proc("/proc/loadavg")?).ok_or_else(|| "cannot parse /proc/loadavg".to_string())
    }

    fn mem(&self) -> Result<Value, String> {
        Ok(parse_meminfo(&read_proc("/proc/meminfo")?))
    }

    fn sockstat(&self) -> Result<Value, String> {
        // Both files are optional (no IPv6, or not Linux): their keys stay null.
        let v4 = read_optional("/proc/net/sockstat")?;
        let v6 = read_optional("/proc/net/sockstat6")?;
        Ok(parse_sockstat(v4.as_deref(), v6.as_deref(), page_size()))
    }

    /// Device directories (entries of `devices` that are directories,
    /// symlinks followed), sorted, each with whether it is mounted.
    fn device_mounts(&self) -> Result<Vec<(String, bool)>, String> {
        let mut names = list_dir(&self.devices).map_err(|e| format!("listing {}: {e}", self.devices.display()))?;
        names.sort();
        Ok(names
            .into_iter()
            .filter(|n| self.devices.join(n).is_dir())
            .map(|n| {
                let mounted = valid_drive_name(&n) && crate::devices::is_mount(&self.devices.join(&n));
                (n, mounted)
            })
            .collect())
    }

    /// Device dirs that are not mount points: `{"device", "mounted": false}`.
    fn unmounted(&self) -> Result<Value, String> {
        let list = self
            .device_mounts()?
            .into_iter()
            .filter(|(_, mounted)| !mounted)
            .map(|(device, _)| json!({ "device": device, "mounted": false }))
            .collect();
        Ok(Value::Array(list))
    }

    /// Size, used and available bytes of every mounted device (Swift's
    /// figures: `f_bsize` times `f_blocks`, `f_blocks - f_bavail`, `f_bavail`);
    /// unmounted devices get `"mounted": false` and empty strings.
    fn diskusage(&self) -> Result<Value, String> {
        let mut list = Vec::new();
        for (device, mounted) in self.device_mounts()? {
            let usage = if mounted { disk_usage(&self.devices.join(&device)) } else { None };
            list.push(match usage {
                Some(u) => json!({ "device": device, "mounted": true, "size": u.size, "used": u.used, "avail": u.avail }),
                None => json!({ "device": device, "mounted": false, "size": "", "used": "", "avail": "" }),
            });
        }
        Ok(Value::Array(list))
    }

    /// MD5 of each ring file that exists, keyed by its full path; `null`
    /// when it exists but cannot be read.
    fn ring_md5(&self) -> Value {
        let mut out = Map::new();
        for ring in &self.rings {
            if !ring.exists() {
                continue;
            }
            let sum = match md5_file(ring) {
                Ok(s) => Value::String(s),
                Err(e) => {
                    if e.kind() != std::io::ErrorKind::NotFound {
                        crate::log::error(&format!("Error reading ringfile {}: {e}", ring.display()));
                    }
                    Value::Null
                }
            };
            out.insert(ring.display().to_string(), sum);
        }
        Value::Object(out)
    }

    /// `{"<swift.conf path>": md5 or null}`.
    fn swift_conf_md5(&self) -> Value {
        let sum = match md5_file(&self.swift_conf_file) {
            Ok(s) => Value::String(s),
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    crate::log::error(&format!("Error reading swift.conf {}: {e}", self.swift_conf_file.display()));
                }
                Value::Null
            }
        };
        let mut out = Map::new();
        out.insert(self.swift_conf_file.display().to_string(), sum);
        Value::Object(out)
    }

    /// Quarantined objects, containers and accounts over every device
    /// (`<dev>/quarantined/{objects[-N],containers,accounts}`), objects also
    /// per policy index.
    fn quarantined(&self) -> Result<Value, String> {
        let mut counts = QuarantineCounts::default();
        let devices = list_dir(&self.devices).map_err(|e| format!("listing {}: {e}", self.devices.display()))?;
        for device in devices {
            let qpath = self.devices.join(device).join("quarantined");
            if !qpath.exists() {
                continue;
            }
            let kinds = list_dir(&qpath).map_err(|e| format!("listing {}: {e}", qpath.display()))?;
            for kind in kinds {
                counts.add(&kind, quarantined_entries(&qpath.join(&kind)));
            }
        }
        Ok(counts.to_json())
    }
}

/// Sums of quarantined items, as Swift's `get_quarantine_count` keeps them.
#[derive(Debug, Default)]
struct QuarantineCounts {
    objects: u64,
    containers: u64,
    accounts: u64,
    /// Policy index (as written in the dir name) → objects.
    policies: std::collections::BTreeMap<String, u64>,
}

impl QuarantineCounts {
    /// Adds `n` items found in the quarantine dir named `kind`.
    fn add(&mut self, kind: &str, n: u64) {
        if n == 0 {
            return;
        }
        if kind.starts_with("objects") {
            let policy = kind.split_once('-').map_or("0", |(_, p)| p);
            *self.policies.entry(policy.to_string()).or_default() += n;
            self.objects += n;
        } else if kind == "containers" {
            self.containers += n;
        } else if kind == "accounts" {
            self.accounts += n;
        }
        // Swift raises (500) on any other name; we skip it so one stray
        // directory does not hide every count.
    }

    fn to_json(&self) -> Value {
        let policies: Map<String, Value> = self.policies.iter().map(|(p, n)| (p.clone(), json!({ "objects": n }))).collect();
        json!({ "objects": self.objects, "containers": self.containers, "accounts": self.accounts, "policies": policies })
    }
}

/// How many entries a quarantine dir holds: Swift counts its link count
/// minus 2 (one link per subdirectory, plus itself and its parent's entry).
/// Filesystems that do not count directory links (btrfs reports 1) get a
/// real count of the subdirectories instead.
fn quarantined_entries(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else { return 0 };
    let links = meta.nlink();
    if links > 2 {
        return links - 2;
    }
    if links == 1 && meta.is_dir() {
        return std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(Result::ok).filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).count() as u64)
            .unwrap_or(0);
    }
    0
}

/// Byte counts of one filesystem, as recon reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    pub size: u64,
    pub used: u64,
    pub avail: u64,
}

/// Swift's `diskusage` figures for the filesystem holding `path`: Python's
/// `os.statvfs` `f_bsize` times `f_blocks` (size), `f_blocks - f_bavail`
/// (used, so reserved blocks count as used) and `f_bavail` (avail).
pub fn disk_usage(path: &Path) -> Option<DiskUsage> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs only writes into the zeroed struct we own; the path is
    // NUL-terminated and outlives the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let bsize = st.f_bsize as u64;
    let (blocks, bavail) = (st.f_blocks as u64, st.f_bavail as u64);
    Some(DiskUsage {
        size: bsize.saturating_mul(blocks),
        used: bsize.saturating_mul(blocks.saturating_sub(bavail)),
        avail: bsize.saturating_mul(bavail),
    })
}

/// Swift's `check_drive` name rule: the name must survive `quote_plus`
/// unchanged (ASCII letters, digits and `_.-~`).
fn valid_drive_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-~".contains(&b))
}

/// `/proc/mounts` lines as `{"device": source, "path": mount point}`, the
/// fields left escaped as the kernel writes them (as Swift does).
pub fn parse_mounts(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let device = fields.next()?;
            let path = fields.next()?;
            Some(json!({ "device": device, "path": path }))
        })
        .collect()
}

/// `/proc/loadavg` as `{"1m", "5m", "15m", "tasks", "processes"}`.
pub fn parse_loadavg(text: &str) -> Option<Value> {
    let f: Vec<&str> = text.split_whitespace().collect();
    if f.len() < 5 {
        return None;
    }
    Some(json!({
        "1m": f[0].parse::<f64>().ok()?,
        "5m": f[1].parse::<f64>().ok()?,
        "15m": f[2].parse::<f64>().ok()?,
        "tasks": f[3],
        "processes": f[4].parse::<u64>().ok()?,
    }))
}

/// `/proc/meminfo` as `{"MemTotal": "24684092 kB", ...}` (values kept as
/// text, as Swift does).
pub fn parse_meminfo(text: &str) -> Value {
    let mut out = Map::new();
    for line in text.lines() {
        if let Some((key, value)) = line.split_once(':') {
            out.insert(key.to_string(), Value::String(value.trim().to_string()));
        }
    }
    Value::Object(out)
}

/// `/proc/net/sockstat` and `sockstat6` as Swift's five keys; the TCP
/// memory figure is in pages and is reported in bytes.
pub fn parse_sockstat(v4: Option<&str>, v6: Option<&str>, page_size: u64) -> Value {
    let mut out = json!({
        "tcp_in_use": null, "orphan": null, "time_wait": null, "tcp_mem_allocated_bytes": null, "tcp6_in_use": null,
    });
    let field = |f: &[&str], i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    for line in v4.unwrap_or("").lines().filter(|l| l.starts_with("TCP: inuse")) {
        // TCP: inuse N orphan N tw N alloc N mem N
        let f: Vec<&str> = line.split_whitespace().collect();
        out["tcp_in_use"] = json!(field(&f, 2));
        out["orphan"] = json!(field(&f, 4));
        out["time_wait"] = json!(field(&f, 6));
        out["tcp_mem_allocated_bytes"] = json!(field(&f, 10).map(|pages| pages * page_size));
    }
    for line in v6.unwrap_or("").lines().filter(|l| l.starts_with("TCP6: inuse")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        out["tcp6_in_use"] = json!(field(&f, 2));
    }
    out
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

fn unix_time() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Hex MD5 of a file's bytes, read in chunks.
fn md5_file(path: &Path) -> std::io::Result<String> {
    use md5::{Digest, Md5};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Entry names of a directory (unsorted, lossy UTF-8).
fn list_dir(dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::read_dir(dir)?.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned())).collect()
}

fn read_proc(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))
}

fn read_optional(path: &str) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("reading {path}: {e}")),
    }
}

/// The path as the WSGI `PATH_INFO` Swift matches on: percent-decoded.
fn decode(raw_path: &str) -> String {
    percent_encoding::percent_decode_str(raw_path).decode_utf8_lossy().into_owned()
}

/// A plain-text response, as Swift's recon sends its errors.
fn plain(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = h::text(status, body);
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
        recon: Recon,
    }

    fn fixture(swift_conf: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["node/sda", "node/sdb", "etc", "cache"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("etc/swift.conf"), swift_conf).unwrap();
        let swift = SwiftConf::load_dir(&root.join("etc")).unwrap();
        let settings = ReconSettings { devices: root.join("node"), swift_dir: root.join("etc"), recon_cache_path: root.join("cache") };
        let recon = Recon::new(&settings, root.join("etc/swift.conf"), &swift.policies);
        Fixture { dir, recon }
    }

    const TWO_POLICIES: &str = "[swift-hash]\nswift_hash_path_suffix = s\n[storage-policy:0]\nname = gold\ndefault = yes\n\
                                [storage-policy:1]\nname = silver\n";

    fn json(f: &Fixture, path: &str) -> Value {
        match f.recon.answer(path) {
            ReconAnswer::Json(v) => v,
            other => panic!("{path}: {other:?}"),
        }
    }

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    #[test]
    fn cache_endpoints_have_every_key_null_without_a_cache() {
        let f = fixture(TWO_POLICIES);
        let cases: [(&str, &[&str]); 14] = [
            ("/recon/async", &["async_pending", "async_pending_last"]),
            ("/recon/driveaudit", &["drive_audit_errors"]),
            ("/recon/sharding", &["sharding_last", "sharding_stats", "sharding_time"]),
            ("/recon/relinker", &["devices", "workers"]),
            ("/recon/replication/account", &["replication_last", "replication_stats", "replication_time"]),
            ("/recon/replication/container", &["replication_last", "replication_stats", "replication_time"]),
            (
                "/recon/replication/object",
                &["object_replication_last", "object_replication_time", "replication_last", "replication_stats", "replication_time"],
            ),
            (
                "/recon/replication",
                &["object_replication_last", "object_replication_time", "replication_last", "replication_stats", "replication_time"],
            ),
            (
                "/recon/auditor/account",
                &["account_auditor_pass_completed", "account_audits_failed", "account_audits_passed", "account_audits_since"],
            ),
            (
                "/recon/auditor/container",
                &["container_auditor_pass_completed", "container_audits_failed", "container_audits_passed", "container_audits_since"],
            ),
            ("/recon/auditor/object", &["object_auditor_stats_ALL", "object_auditor_stats_ZBF"]),
            ("/recon/updater/container", &["container_updater_sweep"]),
            ("/recon/updater/object", &["object_updater_last", "object_updater_stats", "object_updater_sweep"]),
            ("/recon/expirer/object", &["expired_last_pass", "object_expiration_pass"]),
        ];
        for (path, want) in cases {
            let v = json(&f, path);
            assert_eq!(keys(&v), want, "{path}");
            assert!(v.as_object().unwrap().values().all(Value::is_null), "{path}: {v}");
        }
        let v = json(&f, "/recon/reconstruction/object");
        assert_eq!(keys(&v), ["object_reconstruction_last", "object_reconstruction_time"]);
    }

    #[test]
    fn cache_values_are_passed_through_and_missing_keys_are_null() {
        let f = fixture(TWO_POLICIES);
        let cache = f.dir.path().join("cache");
        std::fs::write(
            cache.join("object.recon"),
            r#"{"async_pending": 7, "object_replication_time": 1.5, "replication_stats": {"attempted": 3}}"#,
        )
        .unwrap();
        std::fs::write(cache.join("container.recon"), "not json").unwrap();
        std::fs::write(cache.join("drive.recon"), "[1, 2]").unwrap();
        assert_eq!(json(&f, "/recon/async"), json!({"async_pending": 7, "async_pending_last": null}));
        let r = json(&f, "/recon/replication/object");
        assert_eq!(r["object_replication_time"], json!(1.5));
        assert_eq!(r["replication_stats"], json!({"attempted": 3}));
        assert_eq!(r["replication_last"], Value::Null);
        assert_eq!(json(&f, "/recon/updater/container"), json!({"container_updater_sweep": null}));
        assert_eq!(json(&f, "/recon/driveaudit"), json!({"drive_audit_errors": null}));
    }

    #[test]
    fn unknown_paths_are_invalid_and_types_are_checked() {
        let f = fixture(TWO_POLICIES);
        for p in [
            "/recon/",
            "/recon/bogus",
            "/recon/replication/bogus",
            "/recon/replication/",
            "/recon/updater/account",
            "/recon/expirer/container",
            "/recon/reconstruction",
            "/recon//mem",
            "/recon/auditor",
        ] {
            assert_eq!(f.recon.answer(p), ReconAnswer::InvalidPath(p.to_string()), "{p}");
        }
        assert_eq!(f.recon.answer("/recon/b%20x"), ReconAnswer::InvalidPath("/recon/b%20x".into()));
        // Like Swift, endpoints without a type ignore any trailing part.
        assert!(json(&f, "/recon/version/anything")["version"].is_string());
        // Swift matches the decoded path.
        assert!(json(&f, "/recon/%6Coad").get("1m").is_some());
        assert!(Recon::handles("/recon/mem") && Recon::handles("/%72econ/mem"));
        assert!(!Recon::handles("/recon") && !Recon::handles("/sda/0/recon/x"));
    }

    #[test]
    fn ring_and_swift_conf_md5s() {
        let f = fixture(TWO_POLICIES);
        let etc = f.dir.path().join("etc");
        assert_eq!(json(&f, "/recon/ringmd5"), json!({}));
        std::fs::write(etc.join("account.ring.gz"), b"abc").unwrap();
        std::fs::write(etc.join("object-1.ring.gz"), b"").unwrap();
        std::fs::write(etc.join("object-2.ring.gz"), b"not a policy").unwrap();
        let mut want = Map::new();
        want.insert(etc.join("account.ring.gz").display().to_string(), json!("900150983cd24fb0d6963f7d28e17f72"));
        want.insert(etc.join("object-1.ring.gz").display().to_string(), json!("d41d8cd98f00b204e9800998ecf8427e"));
        assert_eq!(json(&f, "/recon/ringmd5"), Value::Object(want));
        let conf = etc.join("swift.conf");
        let want = md5_file(&conf).unwrap();
        assert_eq!(json(&f, "/recon/swiftconfmd5"), json!({ conf.display().to_string(): want }));
        std::fs::remove_file(&conf).unwrap();
        assert_eq!(json(&f, "/recon/swiftconfmd5"), json!({ conf.display().to_string(): null }));
    }

    #[test]
    fn devices_unmounted_and_diskusage() {
        let f = fixture(TWO_POLICIES);
        let node = f.dir.path().join("node");
        std::fs::write(node.join("afile"), b"").unwrap();
        assert_eq!(json(&f, "/recon/devices"), json!({ node.display().to_string(): ["afile", "sda", "sdb"] }));
        assert_eq!(json(&f, "/recon/unmounted"), json!([{"device": "sda", "mounted": false}, {"device": "sdb", "mounted": false}]));
        // The operator's stub marks sdb as a mount point.
        std::fs::write(node.join("sdb/.ismount"), b"").unwrap();
        assert_eq!(json(&f, "/recon/unmounted"), json!([{"device": "sda", "mounted": false}]));
        let du = json(&f, "/recon/diskusage");
        assert_eq!(du[0], json!({"device": "sda", "mounted": false, "size": "", "used": "", "avail": ""}));
        assert_eq!(du[1]["device"], "sdb");
        assert_eq!(du[1]["mounted"], true);
        let (size, used, avail) = (du[1]["size"].as_u64().unwrap(), du[1]["used"].as_u64().unwrap(), du[1]["avail"].as_u64().unwrap());
        assert!(size > 0 && used + avail == size, "{du}");
        assert_eq!(du.as_array().unwrap().len(), 2);
    }

    #[test]
    fn a_missing_devices_dir_fails_and_lists_null() {
        let f = fixture(TWO_POLICIES);
        let node = f.dir.path().join("node");
        std::fs::remove_dir_all(&node).unwrap();
        assert!(matches!(f.recon.answer("/recon/unmounted"), ReconAnswer::Failed(_)));
        assert_eq!(json(&f, "/recon/devices"), json!({ node.display().to_string(): null }));
    }

    #[test]
    fn quarantine_counts_per_type_and_policy() {
        let f = fixture(TWO_POLICIES);
        let node = f.dir.path().join("node");
        assert_eq!(json(&f, "/recon/quarantined"), json!({"objects": 0, "containers": 0, "accounts": 0, "policies": {}}));
        for d in [
            "sda/quarantined/objects/h1",
            "sda/quarantined/objects/h2",
            "sdb/quarantined/objects/h3",
            "sdb/quarantined/objects-1/h4",
            "sda/quarantined/containers/c1",
            "sdb/quarantined/accounts/a1",
            "sdb/quarantined/accounts/a2",
        ] {
            std::fs::create_dir_all(node.join(d)).unwrap();
        }
        assert_eq!(
            json(&f, "/recon/quarantined"),
            json!({"objects": 4, "containers": 1, "accounts": 2, "policies": {"0": {"objects": 3}, "1": {"objects": 1}}})
        );
    }

    #[test]
    fn proc_parsers() {
        let mounts = parse_mounts("/dev/sda1 / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n");
        assert_eq!(mounts, vec![json!({"device": "/dev/sda1", "path": "/"}), json!({"device": "proc", "path": "/proc"})]);
        assert_eq!(
            parse_loadavg("0.10 0.25 1.00 1/86 12345\n").unwrap(),
            json!({"1m": 0.1, "5m": 0.25, "15m": 1.0, "tasks": "1/86", "processes": 12345})
        );
        assert_eq!(parse_loadavg("garbage"), None);
        assert_eq!(
            parse_meminfo("MemTotal:       24684092 kB\nHugePages_Total:       0\n"),
            json!({"MemTotal": "24684092 kB", "HugePages_Total": "0"})
        );
        let s = parse_sockstat(
            Some("sockets: used 100\nTCP: inuse 5 orphan 1 tw 2 alloc 7 mem 3\nUDP: inuse 1 mem 0\n"),
            Some("TCP6: inuse 4\nUDP6: inuse 1\n"),
            4096,
        );
        assert_eq!(s, json!({"tcp_in_use": 5, "orphan": 1, "time_wait": 2, "tcp_mem_allocated_bytes": 12288, "tcp6_in_use": 4}));
        let s = parse_sockstat(None, None, 4096);
        assert_eq!(keys(&s).len(), 5);
        assert!(s.as_object().unwrap().values().all(Value::is_null));
    }

    #[test]
    fn system_endpoints_answer_on_linux() {
        let f = fixture(TWO_POLICIES);
        assert!(json(&f, "/recon/time").is_f64());
        assert_eq!(json(&f, "/recon/version"), json!({"version": crate::VERSION}));
        let load = json(&f, "/recon/load");
        assert_eq!(keys(&load), ["15m", "1m", "5m", "processes", "tasks"]);
        assert!(json(&f, "/recon/mem").get("MemTotal").is_some_and(Value::is_string));
        assert!(json(&f, "/recon/mounted").as_array().unwrap().iter().any(|m| m["path"] == "/"));
        assert_eq!(keys(&json(&f, "/recon/sockstat")).len(), 5);
    }

    #[test]
    fn settings_follow_the_pipeline_and_paste_rules() {
        let parse = |text: &str| ReconSettings::from_config(&ConfigFile::parse(text, "t.conf").unwrap()).unwrap();
        assert_eq!(parse("[DEFAULT]\ndevices = /d\n"), None);
        assert_eq!(parse("[pipeline:main]\npipeline = object-server\n[app:object-server]\nuse = egg:swift#object\n"), None);
        let s = parse(
            "[DEFAULT]\ndevices = /d\nrecon_cache_path = /c\n[pipeline:main]\npipeline = healthcheck recon object-server\n\
             [filter:recon]\nuse = egg:swift#recon\n",
        )
        .unwrap();
        assert_eq!(s, ReconSettings { devices: "/d".into(), swift_dir: "/etc/swift".into(), recon_cache_path: "/c".into() });
        // recon_cache_path only in the filter section.
        let s = parse("[pipeline:main]\npipeline = recon object-server\n[filter:recon]\nuse = egg:swift#recon\nrecon_cache_path = /f\n")
            .unwrap();
        assert_eq!((s.recon_cache_path, s.devices), ("/f".into(), "/srv/node".into()));
        // Another name for the recon filter.
        let s = parse("[pipeline:main]\npipeline = mon object-server\n[filter:mon]\nuse = egg:swift#recon\nswift_dir = /s\n").unwrap();
        assert_eq!(s.swift_dir, PathBuf::from("/s"));
    }
}
