//! Swift's account reaper (`swift/account/reaper.py`): removes the data of
//! accounts a reseller admin deleted. Such an account's database is only
//! marked (`status = 'DELETED'`, `delete_timestamp` = the DELETE's
//! timestamp); this daemon finds those databases on the local devices and,
//! once `delay_reaping` has passed since the delete, DELETEs every object of
//! every container of the account on every object primary, then every
//! container on every container primary. The account database itself stays:
//! once its containers are gone it is an empty deleted account, which the
//! account replicator reclaims after `reclaim_age`.
//!
//! Which node reaps what follows Swift's rule: every primary of the
//! account's partition takes part, each reaping the containers whose name's
//! MD5 modulo the replica count is its index among the primaries, so the
//! work is split and a down primary only delays its share. Other nodes
//! (handoffs) do nothing.
//!
//! Swift reports nothing to recon for the reaper, only log lines; neither
//! do we.

use crate::settings::DEFAULT_PORT;
use common::backend::{read_body, BackendClient};
use common::backend_headers::{self as bh, AccountUpdate, ContainerUpdate, UpdateNode, UpdateTarget};
use common::config::{ConfigError, ConfigFile, Section};
use common::daemon::{non_negative, Daemon, Scope};
use common::db::listing::{ListingItem, ListingParams};
use common::db::{AccountBroker, AccountInfo};
use common::devices::Devices;
use common::http::empty;
use common::log;
use common::server::ServerSettings;
use common::swift_conf::SwiftConf;
use common::timestamp::Timestamp;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use md5::{Digest, Md5};
use ring::{Device, Ring};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where account databases live below a device.
const DATADIR: &str = common::db::account::DATADIR;

/// Containers listed from the account database per page, per primary
/// (Swift's `container_limit`).
const CONTAINER_PAGE: usize = 1000;

/// Largest container listing page read from a container server (10000
/// entries of at most ~1 KiB each).
const LISTING_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The `[account-reaper]` section of `account-server.conf` (over
/// `[DEFAULT]`).
#[derive(Debug, Clone)]
pub struct ReaperSettings {
    /// devices, mount_check, swift_dir, bind_ip and bind_port (which ring
    /// devices are this node's), log_name (`account-reaper`), log_level,
    /// conn_timeout (0.5).
    pub server: ServerSettings,
    /// `node_timeout`: seconds to wait for a server's answer (10, Swift's
    /// reaper default, longer than the servers').
    pub node_timeout: Duration,
    /// `interval`: seconds from the start of one pass to the next (3600).
    pub interval: Duration,
    /// `concurrency` (25): containers of an account, and objects of a
    /// container, are each reaped `sqrt(concurrency)` at a time.
    pub concurrency: usize,
    /// `delay_reaping`: seconds after the account's DELETE before its data
    /// is removed (0), a window to undelete by hand.
    pub delay_reaping: f64,
    /// `reap_warn_after`: seconds after `delay_reaping` past which an
    /// account whose containers could not all be removed is warned about
    /// (30 days).
    pub reap_warn_after: f64,
}

impl ReaperSettings {
    /// Reads `[account-reaper]`, or `[DEFAULT]` alone when there is none;
    /// errors name the file, line and key.
    pub fn from_config(conf: &ConfigFile) -> Result<ReaperSettings, ConfigError> {
        let section: Section = conf.section("account-reaper").unwrap_or_else(|| conf.defaults());
        let mut server = ServerSettings::from_section(&section, "account-reaper", DEFAULT_PORT)?;
        server.conn_timeout = Duration::from_secs_f64(non_negative(&section, "conn_timeout", 0.5)?);
        let concurrency = section.get_usize("concurrency", 25)?;
        if concurrency == 0 {
            return Err(section.value_error("concurrency", "0", "a count of 1 or more"));
        }
        Ok(ReaperSettings {
            server,
            node_timeout: Duration::from_secs_f64(non_negative(&section, "node_timeout", 10.0)?),
            interval: Duration::from_secs_f64(non_negative(&section, "interval", 3600.0)?),
            concurrency,
            delay_reaping: non_negative(&section, "delay_reaping", 0.0)?,
            reap_warn_after: non_negative(&section, "reap_warn_after", 86400.0 * 30.0)?,
        })
    }

    /// Containers (and objects) reaped at once: Swift's `sqrt(concurrency)`.
    pub fn inner_concurrency(&self) -> usize {
        ((self.concurrency as f64).sqrt() as usize).max(1)
    }
}

/// Which of a partition's primaries reaps `container`: the index Swift
/// picks, MD5 of the name as an integer modulo the primary count.
pub fn container_shard(container: &str, primaries: usize) -> usize {
    let digest: [u8; 16] = Md5::digest(container.as_bytes()).into();
    (u128::from_be_bytes(digest) % primaries.max(1) as u128) as usize
}

/// Whether an account is to be reaped at `now` (Unix seconds): marked
/// deleted, still listing containers (an empty one is left to the
/// replicator's reclaim), and deleted more than `delay_reaping` seconds ago.
pub fn is_due(info: &AccountInfo, now: f64, delay_reaping: f64) -> bool {
    let deleted_at = Timestamp::parse(&info.delete_timestamp).unwrap_or(Timestamp::ZERO).as_secs_f64();
    info.is_status_deleted() && info.container_count > 0 && now - deleted_at > delay_reaping
}

/// What one account's pass did (Swift's `stats_*`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReapStats {
    pub containers_deleted: u64,
    pub containers_remaining: u64,
    pub containers_possibly_remaining: u64,
    pub objects_deleted: u64,
    pub objects_remaining: u64,
    pub objects_possibly_remaining: u64,
    /// Answers by class (2 for 2xx, ...).
    pub return_codes: BTreeMap<u16, u64>,
}

impl ReapStats {
    /// Counts one item's deletes as Swift does: deleted when more nodes
    /// said yes than failed, remaining when none did, else possibly left.
    fn tally(successes: usize, failures: usize) -> Tally {
        if successes > failures {
            Tally::Deleted
        } else if successes == 0 {
            Tally::Remaining
        } else {
            Tally::PossiblyRemaining
        }
    }
}

enum Tally {
    Deleted,
    Remaining,
    PossiblyRemaining,
}

/// An account database found marked deleted, with where it sits.
#[derive(Debug, Clone)]
struct Candidate {
    device: String,
    db: PathBuf,
    partition: u32,
    nodes: Vec<Device>,
    /// This node's index among the partition's primaries.
    shard: usize,
}

/// The daemon: settings, the three kinds of ring, device pools, a client.
pub struct AccountReaper {
    settings: ReaperSettings,
    account_ring: Arc<Ring>,
    container_ring: Arc<Ring>,
    /// Object ring by policy index; a policy without a ring file is absent
    /// (its objects are counted as remaining).
    object_rings: HashMap<i64, Arc<Ring>>,
    devices: Arc<Devices>,
    client: BackendClient,
}

impl Daemon for AccountReaper {
    const NAME: &'static str = "account-reaper";
    const RECON_FILE: &'static str = common::recon::RECON_ACCOUNT_FILE;

    fn from_config(conf: &ConfigFile) -> Result<Self, String> {
        let settings = ReaperSettings::from_config(conf).map_err(|e| e.to_string())?;
        let dir = settings.server.swift_dir.clone();
        let swift = SwiftConf::load_dir(&dir).map_err(|e| format!("loading swift.conf: {e}"))?;
        let load = |name: &str| Ring::load_named(&dir, name, swift.hash.clone());
        let account_ring = load("account").map_err(|e| format!("loading the account ring from {}: {e}", dir.display()))?;
        let container_ring = load("container").map_err(|e| format!("loading the container ring from {}: {e}", dir.display()))?;
        let mut object_rings = HashMap::new();
        for p in &swift.policies {
            match load(&p.ring_name()) {
                Ok(r) => {
                    object_rings.insert(i64::from(p.index), Arc::new(r));
                }
                Err(e) => log::warning(&format!("No ring for storage policy {} ({}): {e}", p.index, p.name)),
            }
        }
        Ok(AccountReaper::new(settings, account_ring, container_ring, object_rings))
    }

    fn server(&self) -> &ServerSettings {
        &self.settings.server
    }

    fn interval(&self) -> Duration {
        self.settings.interval
    }

    async fn run_once(self: Arc<Self>, _scope: Scope) -> Vec<(&'static str, serde_json::Value)> {
        self.pass().await;
        Vec::new()
    }
}

impl AccountReaper {
    /// Builds the reaper around loaded rings (object rings by policy index).
    pub fn new(settings: ReaperSettings, account_ring: Ring, container_ring: Ring, object_rings: HashMap<i64, Arc<Ring>>) -> Self {
        let s = &settings.server;
        let devices = Arc::new(Devices::new(s.devices.clone(), s.mount_check, s.threads_per_disk));
        let client = BackendClient::new(s.conn_timeout, settings.node_timeout);
        AccountReaper {
            settings,
            account_ring: Arc::new(account_ring),
            container_ring: Arc::new(container_ring),
            object_rings,
            devices,
            client,
        }
    }

    /// One pass over every device: finds the deleted accounts this node is
    /// a primary of and reaps them, one account at a time (as Swift).
    pub async fn pass(self: &Arc<Self>) {
        let begin = Instant::now();
        let root = self.devices.root().to_path_buf();
        let names = tokio::task::spawn_blocking(move || list_dir(&root)).await.unwrap_or_default();
        for device in names {
            if let Err(e) = self.devices.check_async(&device).await {
                log::warning(&format!("Skipping: {e}"));
                continue;
            }
            for candidate in self.find_candidates(&device).await {
                self.consider(candidate).await;
            }
        }
        log::info(&format!("Devices pass completed: {:.02}s", begin.elapsed().as_secs_f64()));
    }

    /// Account databases of the partitions of `device` that this node is a
    /// primary of (Swift's `reap_device` walk).
    async fn find_candidates(&self, device: &str) -> Vec<Candidate> {
        let (root, ring, dev) = (self.devices.root().to_path_buf(), self.account_ring.clone(), device.to_string());
        let (bind_ip, bind_port) = (self.settings.server.bind_ip.clone(), self.settings.server.bind_port);
        self.devices
            .run(device, move || {
                let datadir = root.join(&dev).join(DATADIR);
                let table = ring.table();
                let mut found = Vec::new();
                for part in list_dir(&datadir) {
                    let Ok(partition) = part.parse::<u32>() else { continue };
                    if partition as usize >= table.partition_count() {
                        continue;
                    }
                    let nodes: Vec<Device> = table.part_nodes(partition).into_iter().cloned().collect();
                    let Some(shard) = nodes.iter().position(|n| is_this_node(n, &dev, &bind_ip, bind_port)) else { continue };
                    let part_path = datadir.join(&part);
                    for suffix in list_dir(&part_path) {
                        for hash in list_dir(&part_path.join(&suffix)) {
                            let db = part_path.join(&suffix).join(&hash).join(format!("{hash}.db"));
                            if db.is_file() {
                                found.push(Candidate { device: dev.clone(), db, partition, nodes: nodes.clone(), shard });
                            }
                        }
                    }
                }
                found
            })
            .await
    }

    /// Reaps the candidate if it is marked deleted, still has containers,
    /// and `delay_reaping` has passed since its delete.
    async fn consider(self: &Arc<Self>, c: Candidate) {
        let db = c.db.clone();
        let info =
            self.devices.run(&c.device, move || -> Result<AccountInfo, common::db::DbError> { AccountBroker::new(db).get_info() }).await;
        let info = match info {
            Ok(info) => info,
            Err(e) => {
                log::error(&format!("Exception with account database {}: {e}", c.db.display()));
                return;
            }
        };
        if !is_due(&info, Timestamp::now().as_secs_f64(), self.settings.delay_reaping) {
            return;
        }
        let deleted_at = Timestamp::parse(&info.delete_timestamp).unwrap_or(Timestamp::ZERO).as_secs_f64();
        self.reap_account(&c, &info.account, deleted_at).await;
    }

    /// Reaps this node's share of the account's containers and logs what
    /// came of it (Swift's `reap_account`).
    async fn reap_account(self: &Arc<Self>, c: &Candidate, account: &str, deleted_at: f64) {
        let begin = Timestamp::now().as_secs_f64();
        let started = Instant::now();
        log::info(&format!("Beginning pass on account {account}"));
        let stats = Arc::new(Mutex::new(ReapStats::default()));
        let limit = CONTAINER_PAGE * c.nodes.len().max(1);
        let mut marker = String::new();
        let mut complete = true;
        loop {
            let (db, m) = (c.db.clone(), marker.clone());
            let page = self
                .devices
                .run(&c.device, move || {
                    let params = ListingParams { limit, marker: m, ..ListingParams::default() };
                    AccountBroker::new(db).list_containers(&params)
                })
                .await;
            let names: Vec<String> = match page {
                Ok(items) => items
                    .into_iter()
                    .filter_map(|i| match i {
                        ListingItem::Row(name, _) => Some(name),
                        ListingItem::Subdir(_) => None,
                    })
                    .collect(),
                Err(e) => {
                    log::error(&format!("Exception with account {account}: {e}"));
                    complete = false;
                    break;
                }
            };
            let Some(last) = names.last().cloned() else { break };
            let mine: Vec<String> = names.into_iter().filter(|n| container_shard(n, c.nodes.len()) == c.shard).collect();
            let account_nodes = Arc::new(c.nodes.clone());
            common::daemon::sweep(mine, self.settings.inner_concurrency(), 0.0, |container| {
                let (me, stats, account, anodes, apart) =
                    (self.clone(), stats.clone(), account.to_string(), account_nodes.clone(), c.partition);
                async move { me.reap_container(&account, apart, &anodes, &container, &stats).await }
            })
            .await;
            marker = last;
        }
        let stats = stats.lock().map(|s| s.clone()).unwrap_or_default();
        log::info(&reap_log_line(account, complete, &stats, started.elapsed()));
        if stats.containers_remaining > 0 && begin - deleted_at >= self.settings.reap_warn_after + self.settings.delay_reaping {
            let when = Timestamp::from_secs_f64(deleted_at).map(|t| t.isoformat()).unwrap_or_default();
            log::warning(&format!("Account {account} has not been reaped since {when}"));
        }
    }

    /// Deletes every object of the container (listed from its last
    /// primary), then the container on each of its primaries, each of them
    /// told which account replica to update (Swift's `reap_container`).
    async fn reap_container(
        self: &Arc<Self>,
        account: &str,
        account_partition: u32,
        account_nodes: &[Device],
        container: &str,
        stats: &Arc<Mutex<ReapStats>>,
    ) {
        let ring = self.container_ring.clone();
        let (a, c) = (account.to_string(), container.to_string());
        let Ok(Ok((part, nodes))) = tokio::task::spawn_blocking(move || ring.get_nodes(&a, Some(&c), None)).await else {
            log::error(&format!("Exception with container /{account}/{container}: no ring placement"));
            return;
        };
        let Some(lister) = nodes.last().cloned() else { return };
        let mut marker = String::new();
        loop {
            let Some((policy, names)) = self.list_objects(&lister, part, account, container, &marker, stats).await else { break };
            let Some(last) = names.last().cloned() else { break };
            let cnodes = Arc::new(nodes.clone());
            common::daemon::sweep(names, self.settings.inner_concurrency(), 0.0, |obj| {
                let (me, stats, account, container, cnodes) =
                    (self.clone(), stats.clone(), account.to_string(), container.to_string(), cnodes.clone());
                async move { me.reap_object(&account, &container, part, &cnodes, &obj, policy, &stats).await }
            })
            .await;
            marker = last;
        }
        let timestamp = Timestamp::now().internal();
        let path = format!("/{account}/{container}");
        let mut requests = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            // Swift pops the account replicas from the end, one per
            // container replica (with fewer account replicas, the first
            // one takes the rest).
            let Some(anode) = account_nodes.get(account_nodes.len().saturating_sub(1 + i)) else { break };
            let mut headers = update_headers(&[
                (bh::ACCOUNT_OVERRIDE_DELETED, "yes".into()),
                (bh::TIMESTAMP, timestamp.clone()),
                (bh::BACKEND_USE_REPLICATION_NETWORK, "true".into()),
            ]);
            AccountUpdate(update_target(account_partition, anode)).write(&mut headers);
            requests.push(self.send(Method::DELETE, node.clone(), part, path.clone(), headers));
        }
        let codes = futures_join(requests).await;
        let successes = self.count_codes(&codes, stats);
        let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
        match ReapStats::tally(successes, codes.len() - successes) {
            Tally::Deleted => s.containers_deleted += 1,
            Tally::Remaining => s.containers_remaining += 1,
            Tally::PossiblyRemaining => s.containers_possibly_remaining += 1,
        }
    }

    /// One page of the container's object names after `marker`, and the
    /// container's policy; `None` when the listing failed (the container
    /// is then tried for deletion anyway, as in Swift).
    async fn list_objects(
        &self,
        node: &Device,
        part: u32,
        account: &str,
        container: &str,
        marker: &str,
        stats: &Arc<Mutex<ReapStats>>,
    ) -> Option<(i64, Vec<String>)> {
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        let query = format!("format=json&marker={}", enc(marker));
        let path = format!("/{}/{part}/{account}/{container}", node.device);
        let headers = update_headers(&[(bh::BACKEND_USE_REPLICATION_NETWORK, "true".into())]);
        let resp =
            self.client.request_with_query(Method::GET, &node.replication_ip, node.replication_port, &path, &query, headers, empty()).await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                log::error(&format!("Timeout Exception with {}:{}/{}: {e}", node.replication_ip, node.replication_port, node.device));
                return None;
            }
        };
        let read = read_body(resp, LISTING_BODY_LIMIT, self.client.node_timeout()).await;
        let (status, headers, body) = match read {
            Ok(r) => r,
            Err(e) => {
                log::error(&format!("Timeout Exception with {}:{}/{}: {e}", node.replication_ip, node.replication_port, node.device));
                return None;
            }
        };
        self.count_codes(&[Some(status)], stats);
        if !status.is_success() {
            return None;
        }
        let policy = headers
            .get(bh::BACKEND_STORAGE_POLICY_INDEX)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0);
        if status == StatusCode::NO_CONTENT || body.is_empty() {
            return Some((policy, Vec::new()));
        }
        let listing: Vec<serde_json::Value> = match serde_json::from_slice(&body) {
            Ok(l) => l,
            Err(e) => {
                log::error(&format!("Exception with objects for container {container} for account {account}: {e}"));
                return None;
            }
        };
        Some((policy, listing.iter().filter_map(|o| o.get("name")?.as_str().map(String::from)).collect()))
    }

    /// Deletes one object on each of its primaries, each told which
    /// container replica to remove its row from (Swift's `reap_object`).
    #[allow(clippy::too_many_arguments)]
    async fn reap_object(
        self: &Arc<Self>,
        account: &str,
        container: &str,
        container_partition: u32,
        container_nodes: &[Device],
        obj: &str,
        policy: i64,
        stats: &Arc<Mutex<ReapStats>>,
    ) {
        let Some(ring) = self.object_rings.get(&policy).cloned() else {
            log::error(&format!("ERROR: invalid storage policy index: {policy}"));
            stats.lock().unwrap_or_else(|p| p.into_inner()).objects_remaining += 1;
            return;
        };
        let (a, c, o) = (account.to_string(), container.to_string(), obj.to_string());
        let Ok(Ok((part, nodes))) = tokio::task::spawn_blocking(move || ring.get_nodes(&a, Some(&c), Some(&o))).await else {
            stats.lock().unwrap_or_else(|p| p.into_inner()).objects_remaining += 1;
            return;
        };
        let timestamp = Timestamp::now().internal();
        let path = format!("/{account}/{container}/{obj}");
        let mut requests = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let Some(cnode) = container_nodes.get(i % container_nodes.len().max(1)) else { break };
            let mut headers = update_headers(&[
                (bh::BACKEND_STORAGE_POLICY_INDEX, policy.to_string()),
                (bh::TIMESTAMP, timestamp.clone()),
                (bh::BACKEND_USE_REPLICATION_NETWORK, "true".into()),
            ]);
            ContainerUpdate(update_target(container_partition, cnode)).write(&mut headers);
            requests.push(self.send(Method::DELETE, node.clone(), part, path.clone(), headers));
        }
        let codes = futures_join(requests).await;
        let successes = self.count_codes(&codes, stats);
        let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
        match ReapStats::tally(successes, codes.len() - successes) {
            Tally::Deleted => s.objects_deleted += 1,
            Tally::Remaining => s.objects_remaining += 1,
            Tally::PossiblyRemaining => s.objects_possibly_remaining += 1,
        }
    }

    /// Sends a body-less request to `node`'s replication address and
    /// returns its status (`None`: unreachable or timed out).
    fn send(
        &self,
        method: Method,
        node: Device,
        part: u32,
        path: String,
        headers: HeaderMap,
    ) -> tokio::task::JoinHandle<Option<StatusCode>> {
        let client = self.client.clone();
        tokio::spawn(async move {
            let target = format!("/{}/{part}{path}", node.device);
            match client.request(method, &node.replication_ip, node.replication_port, &target, headers, empty()).await {
                Ok(resp) => {
                    let status = resp.status();
                    // Drain the body so the connection can be reused.
                    let _ = read_body(resp, 64 * 1024, client.node_timeout()).await;
                    Some(status)
                }
                Err(e) => {
                    log::error(&format!("Timeout Exception with {}:{}/{}: {e}", node.replication_ip, node.replication_port, node.device));
                    None
                }
            }
        })
    }

    /// Adds the answers to the return-code counts; returns the 2xx count.
    fn count_codes(&self, codes: &[Option<StatusCode>], stats: &Arc<Mutex<ReapStats>>) -> usize {
        let mut s = stats.lock().unwrap_or_else(|p| p.into_inner());
        let mut ok = 0;
        for code in codes.iter().flatten() {
            *s.return_codes.entry(code.as_u16() / 100).or_default() += 1;
            if code.is_success() {
                ok += 1;
            }
        }
        ok
    }
}

/// Waits for every request; a task that panicked counts as unreachable.
async fn futures_join(tasks: Vec<tokio::task::JoinHandle<Option<StatusCode>>>) -> Vec<Option<StatusCode>> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.ok().flatten());
    }
    out
}

/// The one server to update, `node` in `partition`. The host is
/// `ip:port` without brackets, as Swift's reaper writes it.
fn update_target(partition: u32, node: &Device) -> UpdateTarget {
    UpdateTarget::new(partition, [UpdateNode::new(format!("{}:{}", node.ip, node.port), &node.device)])
}

fn update_headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(v) {
            headers.insert(HeaderName::from_static(k), v);
        }
    }
    headers.insert(http::header::USER_AGENT, HeaderValue::from_static("account-reaper"));
    headers
}

/// Swift's summary line of an account's pass.
fn reap_log_line(account: &str, complete: bool, s: &ReapStats, elapsed: Duration) -> String {
    let mut line = format!("{} pass on account {account}", if complete { "Completed" } else { "Incomplete" });
    for (n, what) in [
        (s.containers_deleted, "containers deleted"),
        (s.objects_deleted, "objects deleted"),
        (s.containers_remaining, "containers remaining"),
        (s.objects_remaining, "objects remaining"),
        (s.containers_possibly_remaining, "containers possibly remaining"),
        (s.objects_possibly_remaining, "objects possibly remaining"),
    ] {
        if n > 0 {
            line.push_str(&format!(", {n} {what}"));
        }
    }
    if !s.return_codes.is_empty() {
        let codes: Vec<String> = s.return_codes.iter().map(|(class, n)| format!("{n} {class}xxs")).collect();
        line.push_str(&format!(", return codes: {}", codes.join(", ")));
    }
    line.push_str(&format!(", elapsed: {:.02}s", elapsed.as_secs_f64()));
    line
}

/// Whether ring device `node` is `device` of this server: same device
/// name, the port this server binds (unless 0), and an address of this
/// host (Swift's `is_local_device` over `whataremyips(bind_ip)`: with a
/// wildcard `bind_ip`, any address an interface holds).
fn is_this_node(node: &Device, device: &str, bind_ip: &str, bind_port: u16) -> bool {
    if node.device != device || (bind_port != 0 && node.port != bind_port) {
        return false;
    }
    let Ok(ip) = node.ip.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>() else { return false };
    match bind_ip.parse::<std::net::IpAddr>() {
        Ok(b) if !b.is_unspecified() => b == ip,
        // Binding a socket to an address succeeds only if the host has it.
        _ => std::net::UdpSocket::bind((ip, 0)).is_ok(),
    }
}

/// Entry names of a directory, sorted; a missing or unreadable one is empty.
fn list_dir(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .map(|it| it.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(ip: &str, port: u16, name: &str) -> Device {
        Device::from_json(
            0,
            &serde_json::json!({"id": 0, "region": 1, "zone": 1, "ip": ip, "port": port, "device": name, "weight": 1.0, "meta": ""}),
        )
        .unwrap()
    }

    #[test]
    fn settings_have_swifts_defaults() {
        let conf = ConfigFile::parse("[DEFAULT]\nbind_port = 6012\n", "a.conf").unwrap();
        let s = ReaperSettings::from_config(&conf).unwrap();
        assert_eq!(s.interval, Duration::from_secs(3600));
        assert_eq!((s.concurrency, s.inner_concurrency()), (25, 5));
        assert_eq!((s.delay_reaping, s.reap_warn_after), (0.0, 2_592_000.0));
        assert_eq!((s.server.conn_timeout, s.node_timeout), (Duration::from_millis(500), Duration::from_secs(10)));
        assert_eq!((s.server.bind_port, s.server.log_name.as_str()), (6012, "account-reaper"));
        let conf = ConfigFile::parse("[account-reaper]\ndelay_reaping = 60\nconcurrency = 4\nnode_timeout = 2\n", "a.conf").unwrap();
        let s = ReaperSettings::from_config(&conf).unwrap();
        assert_eq!((s.delay_reaping, s.inner_concurrency(), s.node_timeout), (60.0, 2, Duration::from_secs(2)));
        assert!(ReaperSettings::from_config(&ConfigFile::parse("[account-reaper]\nconcurrency = 0\n", "a.conf").unwrap()).is_err());
        assert!(ReaperSettings::from_config(&ConfigFile::parse("[account-reaper]\ndelay_reaping = -1\n", "a.conf").unwrap()).is_err());
    }

    #[test]
    fn only_deleted_accounts_with_containers_past_the_delay_are_due() {
        let info = AccountInfo {
            status: "DELETED".into(),
            put_timestamp: "1700000000.00000".into(),
            delete_timestamp: "1700000100.00000".into(),
            container_count: 2,
            ..AccountInfo::default()
        };
        assert!(is_due(&info, 1_700_000_101.0, 0.0));
        assert!(!is_due(&info, 1_700_000_101.0, 3600.0), "inside delay_reaping");
        assert!(is_due(&info, 1_700_003_701.0, 3600.0));
        assert!(!is_due(&AccountInfo { container_count: 0, ..info.clone() }, 1_800_000_000.0, 0.0), "nothing left to reap");
        let live = AccountInfo { status: String::new(), delete_timestamp: "0".into(), ..info };
        assert!(!is_due(&live, 1_800_000_000.0, 0.0));
    }

    #[test]
    fn shards_split_containers_among_primaries() {
        // python: int(md5(b'c').hexdigest(), 16) % 3
        let digest: [u8; 16] = Md5::digest(b"c").into();
        assert_eq!(container_shard("c", 3), (u128::from_be_bytes(digest) % 3) as usize);
        assert_eq!(container_shard("anything", 1), 0);
        let mut seen = [0; 3];
        for i in 0..300 {
            seen[container_shard(&format!("container-{i}"), 3)] += 1;
        }
        assert!(seen.iter().all(|n| *n > 50), "{seen:?}");
    }

    #[test]
    fn this_node_is_found_by_device_port_and_address() {
        let d = device("127.0.0.1", 6012, "sdb1");
        assert!(is_this_node(&d, "sdb1", "127.0.0.1", 6012));
        assert!(is_this_node(&d, "sdb1", "0.0.0.0", 6012));
        assert!(is_this_node(&d, "sdb1", "0.0.0.0", 0));
        assert!(!is_this_node(&d, "sdb2", "127.0.0.1", 6012));
        assert!(!is_this_node(&d, "sdb1", "127.0.0.1", 6022));
        assert!(!is_this_node(&d, "sdb1", "127.0.0.2", 6012));
        // 192.0.2.0/24 is for documentation: no host has it.
        assert!(!is_this_node(&device("192.0.2.7", 6012, "sdb1"), "sdb1", "0.0.0.0", 6012));
    }

    #[test]
    fn the_log_line_is_swifts() {
        let mut s = ReapStats { containers_deleted: 2, objects_deleted: 5, ..ReapStats::default() };
        s.return_codes.insert(2, 21);
        s.return_codes.insert(4, 1);
        let line = reap_log_line("AUTH_x", true, &s, Duration::from_millis(1500));
        assert_eq!(
            line,
            "Completed pass on account AUTH_x, 2 containers deleted, 5 objects deleted, return codes: 21 2xxs, 1 4xxs, elapsed: 1.50s"
        );
    }
}
