//! Swift's object-expirer daemon: deletes the objects whose `X-Delete-At`
//! has passed, so they leave the listings and the disks (until then they
//! are only hidden from reads).
//!
//! Behaviour follows `swift/obj/expirer.py`. The object servers record
//! every object with `X-Delete-At` as a task row
//! `<delete_at>-<account>/<container>/<object>` in a task container of the
//! hidden `.expiring_objects` account ([`common::expirer_queue`]). Each pass
//! lists the task containers whose names (times) are due, and for each due
//! task assigned to this process (`processes`/`process`: the MD5 of
//! `<task container>/<task object>` mod `processes`):
//!
//! 1. deletes the object on every primary with `X-If-Delete-At` (the object
//!    server refuses with 412 when the object's `X-Delete-At` has changed
//!    since) and `X-Timestamp` = the task's time, naming the container
//!    replicas to update as the proxy would, so the row and counts go;
//! 2. when a quorum of primaries answered 2xx or 409 (a newer object), or
//!    the task is older than `reclaim_age` and the rest said 404/412,
//!    removes the task row from every replica of its task container;
//!    otherwise the task stays for the next pass.
//!
//! A task container that was empty when listed is deleted. Swift's expirer
//! goes through an internal proxy; we talk to the account, container and
//! object servers directly, through the rings, as the object updater does.

use common::backend::{read_body, BackendClient};
use common::backend_headers::{self as bh, AccountUpdate, ContainerUpdate, UpdateNode, UpdateTarget};
use common::config::{ConfigError, ConfigFile, Section};
use common::expirer_queue::{self, ExpirerQueue, Task};
use common::http::empty;
use common::log;
use common::server::ServerSettings;
use common::swift_conf::SwiftConf;
use common::timestamp::Timestamp;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use md5::{Digest, Md5};
use ring::{Device, Ring};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rows asked for per listing request (the servers' own limit).
const LISTING_LIMIT: usize = 10000;
/// Largest listing body read (10000 rows of long names).
const LISTING_BYTES: usize = 64 * 1024 * 1024;

/// The `[object-expirer]` section of `object-server.conf` (over `[DEFAULT]`).
#[derive(Debug, Clone)]
pub struct ExpirerSettings {
    /// devices, swift_dir, log_name (default `object-expirer`), log_level,
    /// conn_timeout, node_timeout, recon_cache_path.
    pub server: ServerSettings,
    /// `interval`: seconds from the start of one pass to the next (300).
    pub interval: Duration,
    /// `concurrency`: tasks worked on at once (1).
    pub concurrency: usize,
    /// `tasks_per_second`: tasks started per second at most (50; 0: no limit).
    pub tasks_per_second: f64,
    /// `processes`: how many expirers share the queue (0: this one does all).
    pub processes: u64,
    /// `process`: which share is this one's, `0..processes`.
    pub process: u64,
    /// `reclaim_age`: seconds after which a task whose object cannot be
    /// deleted (404, 412) is dropped (604800, a week).
    pub reclaim_age: u64,
    /// `expiring_objects_account_name` after `auto_create_account_prefix`
    /// (deprecated in Swift: keep the default `expiring_objects`).
    pub account_name: Option<String>,
}

impl ExpirerSettings {
    /// Reads `[object-expirer]`, or `[DEFAULT]` alone when the file has no
    /// such section; errors name the file, line and key.
    pub fn from_config(conf: &ConfigFile) -> Result<ExpirerSettings, ConfigError> {
        let section: Section = conf.section("object-expirer").unwrap_or_else(|| conf.defaults());
        let server = ServerSettings::from_section(&section, "object-expirer", 6200)?;
        let sweep = common::daemon::SweepSettings::from_section(&section, 1, "tasks_per_second")?;
        let processes = section.get_u64("processes", 0)?;
        let process = section.get_u64("process", 0)?;
        if processes > 0 && process >= processes {
            return Err(section.value_error("process", &process.to_string(), "less than processes"));
        }
        Ok(ExpirerSettings {
            server,
            interval: sweep.interval,
            concurrency: sweep.concurrency,
            tasks_per_second: sweep.per_second,
            processes,
            process,
            reclaim_age: section.get_u64("reclaim_age", 604_800)?,
            account_name: section.get("expiring_objects_account_name").map(str::to_string),
        })
    }
}

/// Whether process `process` of `processes` owns a task (Swift's
/// `hash_mod`): every task belongs to exactly one of them.
pub fn is_mine(task_container: &str, task_object: &str, processes: u64, process: u64) -> bool {
    if processes == 0 {
        return true;
    }
    let digest: [u8; 16] = Md5::digest(format!("{task_container}/{task_object}").as_bytes()).into();
    u128::from_be_bytes(digest) % processes as u128 == process as u128
}

/// A due task of this process, where it was found.
#[derive(Debug, Clone)]
struct Due {
    container: String,
    object: String,
    task: Task,
}

/// What became of one task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The object is gone (or newer) and the task row removed.
    Expired,
    /// Left for the next pass.
    Retry,
}

/// The daemon: settings, rings and a client.
pub struct ObjectExpirer {
    settings: ExpirerSettings,
    queue: ExpirerQueue,
    account_ring: Arc<Ring>,
    container_ring: Arc<Ring>,
    object_rings: HashMap<u32, Arc<Ring>>,
    client: BackendClient,
    user_agent: String,
    /// Storage policy of each target container, looked up once per pass.
    policies: Mutex<HashMap<(String, String), ContainerPolicy>>,
}

/// A target container's storage policy, as its replicas told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContainerPolicy {
    Policy(u32),
    /// Every replica that answered said 404.
    Missing,
    /// No replica answered.
    Unknown,
}

impl common::daemon::Daemon for ObjectExpirer {
    const NAME: &'static str = "object-expirer";
    const RECON_FILE: &'static str = common::recon::RECON_OBJECT_FILE;

    fn from_config(conf: &ConfigFile) -> Result<Self, String> {
        let settings = ExpirerSettings::from_config(conf).map_err(|e| e.to_string())?;
        let dir = settings.server.swift_dir.clone();
        let swift = SwiftConf::load_dir(&dir).map_err(|e| format!("loading swift.conf: {e}"))?;
        let load = |name: &str| Ring::load_named(&dir, name, swift.hash.clone()).map_err(|e| format!("loading the {name} ring: {e}"));
        let account_ring = load("account")?;
        let container_ring = load("container")?;
        let mut object_rings = HashMap::new();
        for policy in &swift.policies {
            object_rings.insert(policy.index, Arc::new(load(&policy.ring_name())?));
        }
        if object_rings.is_empty() {
            object_rings.insert(0, Arc::new(load("object")?));
        }
        Ok(ObjectExpirer::new(settings, swift, account_ring, container_ring, object_rings))
    }

    fn server(&self) -> &ServerSettings {
        &self.settings.server
    }

    fn interval(&self) -> Duration {
        self.settings.interval
    }

    /// Swift's figures: `object_expiration_pass` (seconds) and
    /// `expired_last_pass` (objects).
    async fn run_once(self: Arc<Self>, _scope: common::daemon::Scope) -> Vec<(&'static str, serde_json::Value)> {
        let begin = Instant::now();
        let expired = self.pass().await;
        vec![
            ("object_expiration_pass", serde_json::json!(begin.elapsed().as_secs_f64())),
            ("expired_last_pass", serde_json::json!(expired)),
        ]
    }
}

impl ObjectExpirer {
    /// Builds the expirer around loaded rings (object rings by policy index).
    pub fn new(
        settings: ExpirerSettings,
        swift: SwiftConf,
        account_ring: Ring,
        container_ring: Ring,
        object_rings: HashMap<u32, Arc<Ring>>,
    ) -> ObjectExpirer {
        let s = &settings.server;
        let client = BackendClient::new(s.conn_timeout, s.node_timeout);
        let prefix = swift.constraints.auto_create_account_prefix.clone();
        let mut queue = ExpirerQueue::new(&prefix, expirer_queue::DEFAULT_DIVISOR);
        if let Some(name) = &settings.account_name {
            queue.account = format!("{prefix}{name}");
        }
        ObjectExpirer {
            settings,
            queue,
            account_ring: Arc::new(account_ring),
            container_ring: Arc::new(container_ring),
            object_rings,
            client,
            user_agent: format!("object-expirer {}", std::process::id()),
            policies: Mutex::new(HashMap::new()),
        }
    }

    /// One pass over the due task containers; the number of objects expired.
    pub async fn pass(self: &Arc<Self>) -> u64 {
        let begin = Instant::now();
        if let Ok(mut p) = self.policies.lock() {
            p.clear();
        }
        let now = Timestamp::now();
        let account = self.queue.account.clone();
        let containers = match self.list(&self.account_ring, &account, None, now.secs()).await {
            Ok(names) => names,
            Err(e) => {
                log::error(&format!("ERROR listing the expirer queue account {account}: {e}"));
                return 0;
            }
        };
        log::info(&format!("Pass beginning for task account {account}; {} possible containers", containers.len()));
        let (mut due_count, mut expired) = (0, 0);
        for container in containers {
            let Some(at) = container.parse::<u64>().ok() else {
                log::error(&format!("skipping invalid task container: {account}/{container}"));
                continue;
            };
            // The names sort as times: the rest are not due yet.
            if at > now.secs() {
                break;
            }
            // One task container at a time: memory holds one listing, not
            // the whole queue.
            let due = match self.list(&self.container_ring, &account, Some(&container), now.secs()).await {
                Ok(objects) if objects.is_empty() => {
                    self.delete_task_container(&container).await;
                    continue;
                }
                Ok(objects) => self.due_tasks(&container, objects, now),
                Err(e) => {
                    log::error(&format!("ERROR listing objects in container {account} {container}: {e}"));
                    continue;
                }
            };
            due_count += due.len();
            let outcomes = common::daemon::sweep(due, self.settings.concurrency, self.settings.tasks_per_second, |due| {
                let me = self.clone();
                async move { me.expire(due).await }
            })
            .await;
            expired += outcomes.iter().filter(|o| **o == Outcome::Expired).count() as u64;
        }
        log::info(&format!(
            "Pass completed in {}s; {expired} objects expired ({due_count} tasks due for this process)",
            begin.elapsed().as_secs()
        ));
        expired
    }

    /// The tasks of one container that are due and this process's.
    fn due_tasks(&self, container: &str, objects: Vec<String>, now: Timestamp) -> Vec<Due> {
        let mut out = Vec::new();
        for object in objects {
            let Some(task) = expirer_queue::parse_task_object(&object) else {
                log::error(&format!("Unexpected error handling task {object:?}"));
                continue;
            };
            // Rows sort by their time: none after this one is due.
            if task.delete_at > now {
                break;
            }
            if is_mine(container, &object, self.settings.processes, self.settings.process) {
                out.push(Due { container: container.to_string(), object, task });
            }
        }
        out
    }

    /// Deletes one task's object, then its row when that is settled.
    async fn expire(&self, due: Due) -> Outcome {
        let t = &due.task;
        let statuses = self.delete_object(t).await;
        let ok = statuses.iter().filter(|s| s.is_some_and(|s| s.is_success() || s == StatusCode::CONFLICT)).count();
        let gone = statuses.iter().filter(|s| matches!(s, Some(StatusCode::NOT_FOUND | StatusCode::PRECONDITION_FAILED))).count();
        let need = quorum(statuses.len());
        let old = t.delete_at.as_secs_f64() < Timestamp::now().as_secs_f64() - self.settings.reclaim_age as f64;
        let path = format!("{}/{}/{}", t.account, t.container, t.object);
        if !(ok >= need || (old && ok + gone >= need)) {
            log::error(&format!(
                "Unexpected response while deleting object {} {} {}: {statuses:?} (retrying next pass)",
                self.queue.account, due.container, due.object
            ));
            return Outcome::Retry;
        }
        if self.pop_queue(&due.container, &due.object).await {
            log::write(log::Level::Debug, &format!("expired {path}"));
            Outcome::Expired
        } else {
            Outcome::Retry
        }
    }

    /// Sends the conditional DELETE to every primary of the object; each
    /// one's status (`None`: no answer). An unknown container answers 404
    /// for all.
    async fn delete_object(&self, t: &Task) -> Vec<Option<StatusCode>> {
        let policy = match self.container_policy(&t.account, &t.container).await {
            ContainerPolicy::Policy(p) => p,
            ContainerPolicy::Missing => return vec![Some(StatusCode::NOT_FOUND)],
            ContainerPolicy::Unknown => return vec![None],
        };
        let Some(ring) = self.object_rings.get(&policy) else {
            log::error(&format!("ERROR no object ring for policy {policy} of /{}/{}", t.account, t.container));
            return vec![None];
        };
        let (part, nodes) = match ring.get_nodes(&t.account, Some(&t.container), Some(&t.object)) {
            Ok(found) => found,
            Err(e) => {
                log::error(&format!("ERROR bad task target /{}/{}/{}: {e}", t.account, t.container, t.object));
                return vec![None];
            }
        };
        let (cpart, cnodes) = self.container_ring.get_nodes(&t.account, Some(&t.container), None).unwrap_or_default();
        let updates = spread(&cnodes, nodes.len());
        let mut base = HeaderMap::new();
        let when = t.delete_at.normal();
        self.insert(&mut base, bh::TIMESTAMP, &when);
        self.insert(&mut base, bh::IF_DELETE_AT, &when);
        // We remove the task row ourselves once the object is settled.
        self.insert(&mut base, bh::BACKEND_CLEAN_EXPIRING_OBJECT_QUEUE, "no");
        self.insert(&mut base, bh::BACKEND_STORAGE_POLICY_INDEX, &policy.to_string());
        let path = format!("/{}/{}/{}", t.account, t.container, t.object);
        let sends = nodes.iter().enumerate().map(|(i, node)| {
            let mut headers = base.clone();
            if let Some(mine) = updates.get(i) {
                ContainerUpdate(update_target(cpart, mine)).write(&mut headers);
            }
            self.send(Method::DELETE, node, part, path.clone(), headers)
        });
        futures_join(sends).await
    }

    /// Removes a task row from every replica of its task container (Swift's
    /// `direct_delete_container_entry`); true when a quorum took it. The
    /// replicas that missed it get it from container replication.
    async fn pop_queue(&self, container: &str, object: &str) -> bool {
        let (part, nodes) = match self.container_ring.get_nodes(&self.queue.account, Some(container), None) {
            Ok(found) => found,
            Err(_) => return false,
        };
        let mut headers = HeaderMap::new();
        self.insert(&mut headers, bh::TIMESTAMP, &Timestamp::now().internal());
        self.insert(&mut headers, bh::BACKEND_STORAGE_POLICY_INDEX, "0");
        let path = format!("/{}/{container}/{object}", self.queue.account);
        let statuses = futures_join(nodes.iter().map(|n| self.send(Method::DELETE, n, part, path.clone(), headers.clone()))).await;
        let ok = statuses.iter().filter(|s| s.is_some_and(|s| s.is_success() || s == StatusCode::NOT_FOUND)).count();
        ok >= quorum(statuses.len())
    }

    /// Deletes an empty task container (a 409 means rows came meanwhile),
    /// naming the account replicas to update as the proxy would.
    async fn delete_task_container(&self, container: &str) {
        let account = &self.queue.account;
        let (part, nodes) = match self.container_ring.get_nodes(account, Some(container), None) {
            Ok(found) => found,
            Err(_) => return,
        };
        let (apart, anodes) = self.account_ring.get_nodes(account, None, None).unwrap_or((0, Vec::new()));
        let updates = spread(&anodes, nodes.len());
        let mut base = HeaderMap::new();
        self.insert(&mut base, bh::TIMESTAMP, &Timestamp::now().internal());
        let path = format!("/{account}/{container}");
        let sends = nodes.iter().enumerate().map(|(i, node)| {
            let mut headers = base.clone();
            if let Some(mine) = updates.get(i) {
                AccountUpdate(update_target(apart, mine)).write(&mut headers);
            }
            self.send(Method::DELETE, node, part, path.clone(), headers)
        });
        let statuses = futures_join(sends).await;
        if !statuses.iter().any(|s| s.is_some_and(|s| s.is_success() || s == StatusCode::NOT_FOUND || s == StatusCode::CONFLICT)) {
            log::error(&format!("Exception while deleting container {account} {container}: {statuses:?}"));
        }
    }

    /// The storage policy of a target container, from its first replica
    /// that answers a HEAD.
    async fn container_policy(&self, account: &str, container: &str) -> ContainerPolicy {
        let key = (account.to_string(), container.to_string());
        if let Some(known) = self.policies.lock().ok().and_then(|p| p.get(&key).copied()) {
            return known;
        }
        let Ok((part, nodes)) = self.container_ring.get_nodes(account, Some(container), None) else { return ContainerPolicy::Missing };
        let path = format!("/{account}/{container}");
        let mut found = ContainerPolicy::Unknown;
        for node in &nodes {
            let mut headers = HeaderMap::new();
            self.insert(&mut headers, "user-agent", &self.user_agent);
            let target = format!("/{}/{part}{path}", node.device);
            let Ok(resp) = self.client.request(Method::HEAD, &node.ip, node.port, &target, headers, empty()).await else { continue };
            let status = resp.status();
            let policy = resp.headers().get(bh::BACKEND_STORAGE_POLICY_INDEX).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
            let _ = read_body(resp, 64 * 1024, self.client.node_timeout()).await;
            if status.is_success() {
                found = ContainerPolicy::Policy(policy.unwrap_or(0));
                break;
            }
            if status == StatusCode::NOT_FOUND {
                found = ContainerPolicy::Missing;
            }
        }
        // A container nobody answered for is asked again: it may be back.
        if found != ContainerPolicy::Unknown {
            if let Ok(mut p) = self.policies.lock() {
                p.insert(key, found);
            }
        }
        found
    }

    /// The names in an account (`container` None) or container listing,
    /// from the first primary that answers, page by page. Names in the
    /// queue start with their time (`<time>` containers, `<time>-...`
    /// tasks) and sort by it: paging stops after the first page that
    /// reaches past `due_by`, so a pass holds what is due, not a whole
    /// day's tasks.
    async fn list(&self, ring: &Ring, account: &str, container: Option<&str>, due_by: u64) -> Result<Vec<String>, String> {
        let (part, nodes) = ring.get_nodes(account, container, None).map_err(|e| e.to_string())?;
        let path = match container {
            Some(c) => format!("/{account}/{c}"),
            None => format!("/{account}"),
        };
        let mut names = Vec::new();
        let mut marker = String::new();
        loop {
            let page = self.list_page(&nodes, part, &path, &marker).await?;
            let full = page.len() >= LISTING_LIMIT;
            let Some(last) = page.last().cloned() else { break };
            names.extend(page);
            let past_due = last.split('-').next().and_then(|t| t.parse::<u64>().ok()).is_some_and(|t| t > due_by);
            if !full || past_due {
                break;
            }
            marker = last;
        }
        Ok(names)
    }

    async fn list_page(&self, nodes: &[Device], part: u32, path: &str, marker: &str) -> Result<Vec<String>, String> {
        let query = format!("format=json&limit={LISTING_LIMIT}&marker={}", quote_query(marker));
        let mut last_error = String::from("no replicas");
        let mut not_found = 0;
        for node in nodes {
            let mut headers = HeaderMap::new();
            self.insert(&mut headers, "user-agent", &self.user_agent);
            let target = format!("/{}/{part}{path}", node.device);
            let resp = match self.client.request_with_query(Method::GET, &node.ip, node.port, &target, &query, headers, empty()).await {
                Ok(r) => r,
                Err(e) => {
                    last_error = e.to_string();
                    continue;
                }
            };
            let (status, _, body) = match read_body(resp, LISTING_BYTES, self.client.node_timeout()).await {
                Ok(r) => r,
                Err(e) => {
                    last_error = e.to_string();
                    continue;
                }
            };
            if status == StatusCode::NO_CONTENT {
                return Ok(Vec::new());
            }
            if status == StatusCode::NOT_FOUND {
                not_found += 1;
                continue;
            }
            if !status.is_success() {
                last_error = format!("{status} from {}:{}/{}", node.ip, node.port, node.device);
                continue;
            }
            let rows: Vec<serde_json::Value> = serde_json::from_slice(&body).map_err(|e| format!("bad listing from {}: {e}", node.ip))?;
            return Ok(rows.iter().filter_map(|r| r.get("name").and_then(|n| n.as_str()).map(str::to_string)).collect());
        }
        // Everyone said 404: nothing there (a queue never written to).
        if not_found > 0 && not_found == nodes.len() {
            return Ok(Vec::new());
        }
        Err(last_error)
    }

    /// One backend request; its status, or `None` (logged) without one.
    async fn send(&self, method: Method, node: &Device, part: u32, path: String, mut headers: HeaderMap) -> Option<StatusCode> {
        self.insert(&mut headers, "user-agent", &self.user_agent);
        let target = format!("/{}/{part}{path}", node.device);
        match self.client.request(method.clone(), &node.ip, node.port, &target, headers, empty()).await {
            Ok(resp) => {
                let status = resp.status();
                // Drain the body so the connection can be reused.
                let _ = read_body(resp, 64 * 1024, self.client.node_timeout()).await;
                Some(status)
            }
            Err(e) => {
                log::error(&format!("ERROR {method} {}:{}/{}{path}: {e}", node.ip, node.port, node.device));
                None
            }
        }
    }

    fn insert(&self, headers: &mut HeaderMap, name: &str, value: &str) {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            headers.insert(n, v);
        }
    }
}

/// A listing marker as a query value: bytes other than unreserved ones
/// percent-encoded.
fn quote_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A majority of `n` replicas (Swift's `quorum_size`).
fn quorum(n: usize) -> usize {
    n / 2 + 1
}

/// Hands `nodes` (a container's or account's replicas) out over `n`
/// requests so that each replica is named at least once, as the proxy does.
/// The update target of ring devices `nodes` in `partition` (hosts as
/// `ip:port`, IPv6 in brackets, as the proxy names them).
fn update_target(partition: u32, nodes: &[Device]) -> UpdateTarget {
    UpdateTarget::new(partition, nodes.iter().map(|d| UpdateNode::new(format!("{}:{}", ring::device::format_ip(&d.ip), d.port), &d.device)))
}

fn spread(nodes: &[Device], n: usize) -> Vec<Vec<Device>> {
    let n = n.max(1);
    let mut out = vec![Vec::new(); n];
    let updates = if nodes.is_empty() { 0 } else { (quorum(nodes.len()) + n).saturating_sub(quorum(n)).max(nodes.len()) };
    for i in 0..updates {
        out[i % n].push(nodes[i % nodes.len()].clone());
    }
    out
}

/// Runs the futures together; their outputs in order.
async fn futures_join<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    let mut futures: Vec<Option<_>> = futures.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *out = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_expirer_section() {
        let conf = ConfigFile::parse(
            "[DEFAULT]\ndevices = /d\nmount_check = false\n[app:object-server]\nuse = egg:swift#object\n\
             [object-expirer]\ninterval = 30\nconcurrency = 4\ntasks_per_second = 0\nprocesses = 3\nprocess = 2\nreclaim_age = 60\n",
            "o.conf",
        )
        .expect("a config");
        let s = ExpirerSettings::from_config(&conf).expect("valid settings");
        assert_eq!(s.interval, Duration::from_secs(30));
        assert_eq!((s.concurrency, s.tasks_per_second, s.processes, s.process, s.reclaim_age), (4, 0.0, 3, 2, 60));
        assert_eq!(s.server.log_name, "object-expirer");

        let defaults = ExpirerSettings::from_config(&ConfigFile::parse("[DEFAULT]\n", "o.conf").expect("a config")).expect("defaults");
        assert_eq!(defaults.interval, Duration::from_secs(300));
        assert_eq!((defaults.concurrency, defaults.tasks_per_second, defaults.processes, defaults.reclaim_age), (1, 50.0, 0, 604_800));

        let bad = ConfigFile::parse("[object-expirer]\nprocesses = 2\nprocess = 2\n", "o.conf").expect("a config");
        let err = ExpirerSettings::from_config(&bad).expect_err("process must be below processes").to_string();
        assert!(err.contains("process") && err.contains("o.conf"), "{err}");
    }

    #[test]
    fn the_sample_config_documents_every_option() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/object-server.conf-sample");
        let text = std::fs::read_to_string(path).expect("the sample config");
        let s = ExpirerSettings::from_config(&ConfigFile::parse(&text, path).expect("it parses")).expect("valid settings");
        assert_eq!((s.interval, s.concurrency, s.processes), (Duration::from_secs(300), 1, 0));
        let section = text.split("\n[object-expirer]\n").nth(1).expect("an [object-expirer] section");
        let section = section.split("\n[").next().unwrap_or(section);
        for key in [
            "interval",
            "concurrency",
            "tasks_per_second",
            "processes",
            "process",
            "reclaim_age",
            "expiring_objects_account_name",
            "recon_cache_path",
            "log_name",
        ] {
            assert!(section.contains(&format!("\n# {key} =")), "{key} is documented");
        }
    }

    #[test]
    fn processes_divide_the_tasks() {
        // Swift: int(md5(b'1699919963/1700000123-a/c/o').hexdigest(), 16) % 3 == 0, % 7 == 1.
        assert!(is_mine("1699919963", "1700000123-a/c/o", 3, 0));
        assert!(!is_mine("1699919963", "1700000123-a/c/o", 3, 1));
        assert!(is_mine("1699919963", "1700000123-a/c/o", 7, 1));
        assert!(is_mine("1699919963", "1700000123-a/c/o", 0, 0), "processes = 0: one expirer does everything");
        // Every task belongs to exactly one of the processes, and each gets a share.
        let mut shares = [0usize; 3];
        for i in 0..300 {
            let task = format!("1700000123-a/c/o{i}");
            let owners: Vec<u64> = (0..3).filter(|&p| is_mine("1699919963", &task, 3, p)).collect();
            assert_eq!(owners.len(), 1, "{task}");
            shares[owners[0] as usize] += 1;
        }
        assert!(shares.iter().all(|&n| n > 50), "{shares:?}");
    }

    #[test]
    fn listing_markers_are_quoted() {
        assert_eq!(quote_query("1700000123-a/c/o x&y=é"), "1700000123-a%2Fc%2Fo%20x%26y%3D%C3%A9");
    }

    #[test]
    fn updates_name_every_replica() {
        let dev = |id: u32| {
            Device::from_json(
                id as usize,
                &serde_json::json!({"id": id, "ip": "127.0.0.1", "port": 6201, "device": format!("d{id}"), "zone": 1, "weight": 1.0}),
            )
            .expect("a device dict")
        };
        let nodes: Vec<Device> = (0..3).map(dev).collect();
        let ids = |v: Vec<Vec<Device>>| v.iter().map(|n| n.iter().map(|d| d.id).collect::<Vec<_>>()).collect::<Vec<_>>();
        assert_eq!(ids(spread(&nodes, 3)), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(ids(spread(&nodes, 2)), vec![vec![0, 2], vec![1]]);
        assert_eq!(ids(spread(&[], 2)), vec![Vec::<u32>::new(); 2]);
    }
}
