//! Container updates after an object PUT or DELETE, and async pendings for
//! the ones that fail (swift/obj/server.py `container_update`,
//! `async_update`).
//!
//! # Async pendings
//!
//! A failed update is saved at
//! `<dev>/async_pending[-N]/<last 3 of obj hash>/<obj hash>-<timestamp>`
//! (the update's `X-Meta-Timestamp` or `X-Timestamp`, internal form) in
//! Swift's format, a protocol-0 pickle of `{'op', 'account', 'container',
//! 'obj', 'headers', 'db_state'}` (see [`crate::async_pending`]), so
//! Swift's object updater replays ours and ours replays Swift's. The file
//! is written to a temp file, fsynced and renamed, so it is whole or absent.
//!
//! # The expirer queue
//!
//! An object with `X-Delete-At` also has a task row in the hidden
//! `.expiring_objects` account ([`update_expirer_queue`], Swift's
//! `delete_at_update`), which the object expirer works through.

use crate::{ObjectServer, Target};
use bytes::Bytes;
use common::backend_headers::{self as bh, ContainerUpdate, DeleteAtUpdate, UpdateHeaderError, UpdateNode};
use common::expirer_queue::{self, ExpirerQueue};
use common::http::{self as h};
use common::timestamp::Timestamp;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One update to send to every container replica named in the request.
#[derive(Debug, Clone)]
pub struct AsyncUpdate {
    pub op: String,
    pub account: String,
    pub container: String,
    pub obj: String,
    /// Lower-case header names to values.
    pub headers: BTreeMap<String, String>,
    pub db_state: Option<String>,
}

/// Sends `op` for `target` with `headers_out` to the container servers the
/// request names (`X-Container-Host`/`-Device`/`-Partition`), waiting at
/// most `container_update_timeout`; updates still running after that carry
/// on in the background and save an async pending if they fail.
pub async fn update_containers(
    server: &Arc<ObjectServer>,
    req_headers: &HeaderMap,
    method_and_path: &str,
    op: &str,
    target: &Target,
    mut headers_out: BTreeMap<String, String>,
) {
    let updates = match ContainerUpdate::parse(req_headers) {
        Ok(Some(ContainerUpdate(updates))) => updates,
        // No partition: the request names no container servers.
        Ok(None) | Err(UpdateHeaderError::MissingPartition { .. }) => return,
        Err(UpdateHeaderError::CountMismatch { hosts, devices, .. }) => {
            common::log::error(&format!(
                "ERROR Container update failed: different numbers of hosts and devices in request: {hosts:?} vs {devices:?}"
            ));
            return;
        }
        Err(e) => {
            common::log::error(&format!("ERROR Container update failed: {e}"));
            return;
        }
    };
    let partition = updates.partition;
    headers_out.insert(bh::TRANS_ID.into(), h::header_str(req_headers, bh::TRANS_ID).unwrap_or("-").to_string());
    let host_hdr = h::header_str(req_headers, "host").unwrap_or("localhost");
    headers_out.insert("referer".into(), format!("{} http://{host_hdr}{}", op_method(method_and_path), path_of(method_and_path)));
    headers_out.insert(bh::BACKEND_STORAGE_POLICY_INDEX.into(), target.location.policy.to_string());
    headers_out.insert("user-agent".into(), format!("object-server {}", std::process::id()));
    let update = AsyncUpdate {
        op: op.to_string(),
        account: target.account.clone(),
        container: target.container.clone(),
        obj: target.object.clone(),
        headers: headers_out,
        db_state: h::header_str(req_headers, bh::CONTAINER_ROOT_DB_STATE).map(str::to_string),
    };
    let mut tasks = Vec::new();
    for node in updates.nodes {
        let server = server.clone();
        let update = update.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            if !send_one(&server, &node, partition, &update).await {
                save_async_pending(&server, &target, &update).await;
            }
        }));
    }
    let wait_all = async {
        for t in tasks {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(server.settings.container_update_timeout, wait_all).await.is_err() {
        common::log::write(common::log::Level::Debug, "Container update timeout; updates continue in the background");
    }
}

fn op_method(s: &str) -> &str {
    s.split_once(' ').map_or("", |(m, _)| m)
}

fn path_of(s: &str) -> &str {
    s.split_once(' ').map_or(s, |(_, p)| p)
}

/// Sends one update; true when the container server answered 2xx.
async fn send_one(server: &ObjectServer, node: &UpdateNode, partition: u32, u: &AsyncUpdate) -> bool {
    let (host, device) = (&node.host, &node.device);
    let Some((ip, port)) = node.ip_port() else {
        common::log::error(&format!("ERROR container update failed: bad host {host:?} (saving for async update later)"));
        return false;
    };
    if device.is_empty() {
        return false;
    }
    let mut headers = HeaderMap::new();
    for (k, v) in &u.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_bytes(v.as_bytes())) {
            headers.insert(n, v);
        }
    }
    let path = format!("/{device}/{partition}/{}/{}/{}", u.account, u.container, u.obj);
    let method = Method::from_bytes(u.op.as_bytes()).unwrap_or(Method::PUT);
    let st = &server.settings.server;
    match server.client.request(method, &ip, port, &path, headers, h::full(Bytes::new())).await {
        Ok(resp) => match common::backend::read_body(resp, 64 * 1024, st.node_timeout).await {
            Ok((status, _, _)) if status.is_success() => true,
            Ok((status, _, _)) => {
                common::log::error(&format!(
                    "ERROR Container update failed (saving for async update later): {} response from {host}/{device}",
                    status.as_u16()
                ));
                false
            }
            Err(e) => {
                common::log::error(&format!("ERROR container update failed with {host}/{device} (saving for async update later): {e}"));
                false
            }
        },
        Err(e) => {
            common::log::error(&format!("ERROR container update failed with {host}/{device} (saving for async update later): {e}"));
            false
        }
    }
}

/// Swift's `delete_at_update`: records (`PUT`) or withdraws (`DELETE`) the
/// expirer queue's task row for `target`, due at `delete_at` (seconds).
///
/// A `PUT` goes to the task container replicas the proxy named
/// (`X-Delete-At-Host`/`-Device`/`-Partition`/`-Container`); the proxy names
/// each replica to only some object servers, so without `X-Delete-At-Host`
/// there is nothing to do. A `DELETE` (the old row when `X-Delete-At`
/// changes or the object goes) is always saved as an async pending for the
/// updater, as Swift does: the proxy sends no hosts for it. Every failed
/// send is saved as an async pending too, so no task row is lost.
/// `extra` adds to the row's headers (the content type with the object's
/// size). `ts` is the request's timestamp. Waits for the sends (each
/// bounded by `node_timeout`).
#[allow(clippy::too_many_arguments)]
pub async fn update_expirer_queue(
    server: &Arc<ObjectServer>,
    req_headers: &HeaderMap,
    method_and_path: &str,
    op: &str,
    delete_at: u64,
    ts: Timestamp,
    target: &Target,
    extra: BTreeMap<String, String>,
) {
    if h::header_str(req_headers, bh::BACKEND_REPLICATION).and_then(common::config::parse_bool) == Some(true) {
        return;
    }
    let queue = ExpirerQueue::new(&server.swift.constraints.auto_create_account_prefix, expirer_queue::DEFAULT_DIVISOR);
    let mut task_container = queue.container(&server.swift.hash, delete_at, &target.account, &target.container, &target.object);
    let mut headers_out = BTreeMap::new();
    // The expirer queue's account is a system account: always policy 0.
    headers_out.insert(bh::BACKEND_STORAGE_POLICY_INDEX.to_string(), "0".to_string());
    headers_out.insert(bh::TIMESTAMP.to_string(), ts.internal());
    headers_out.insert(bh::TRANS_ID.into(), h::header_str(req_headers, bh::TRANS_ID).unwrap_or("-").to_string());
    let host_hdr = h::header_str(req_headers, "host").unwrap_or("localhost");
    headers_out.insert("referer".into(), format!("{} http://{host_hdr}{}", op_method(method_and_path), path_of(method_and_path)));
    headers_out.insert("user-agent".into(), format!("object-server {}", std::process::id()));
    let mut sends: Vec<UpdateNode> = Vec::new();
    let mut partition = 0;
    if op == "DELETE" {
        let clean =
            h::header_str(req_headers, bh::BACKEND_CLEAN_EXPIRING_OBJECT_QUEUE).and_then(common::config::parse_bool).unwrap_or(true);
        if !clean {
            return;
        }
    } else {
        let parsed = DeleteAtUpdate::parse(req_headers);
        // No X-Delete-At-Host: other object servers update the queue.
        if let Ok(None) = parsed {
            return;
        }
        // The proxy's name wins: it matches the hosts and partition it sent.
        if let Some(named) = DeleteAtUpdate::parse_container(req_headers) {
            match named.parse::<i64>() {
                Ok(n) => task_container = expirer_queue::normalize(n),
                Err(_) => common::log::error(&format!("ERROR bad X-Delete-At-Container {named:?}; using {task_container}")),
            }
        }
        match parsed {
            Ok(None) => return,
            Ok(Some(DeleteAtUpdate { target: updates, .. })) => {
                partition = updates.partition;
                sends = updates.nodes.into_iter().filter(UpdateNode::is_complete).collect();
            }
            // Swift sends to none of them and leaves the row to the updater.
            Err(UpdateHeaderError::MissingPartition { .. }) => {}
            Err(e) => common::log::error(&format!("ERROR expirer queue update for {}: {e}; saving it for the updater", target.name)),
        }
        headers_out.insert(bh::SIZE.into(), "0".into());
        headers_out.insert(bh::CONTENT_TYPE.into(), expirer_queue::TASK_CONTENT_TYPE.into());
        headers_out.insert(bh::ETAG.into(), expirer_queue::EMPTY_ETAG.into());
        headers_out.extend(extra);
    }
    let update = AsyncUpdate {
        op: op.to_string(),
        account: queue.account.clone(),
        container: task_container,
        obj: expirer_queue::task_object(delete_at, &target.account, &target.container, &target.object),
        headers: headers_out,
        db_state: None,
    };
    // The pending is filed under the task row's hash, as Swift's
    // `pickle_async_update` names it, so it never replaces the object's own.
    let hash = match server.swift.hash.hash_path(&update.account, Some(&update.container), Some(&update.obj)) {
        Ok(hash) => hash,
        Err(e) => {
            common::log::error(&format!("ERROR expirer queue update for {}: {e}", target.name));
            return;
        }
    };
    let mut pending_target = target.clone();
    pending_target.location.hash = hash;
    if sends.is_empty() {
        save_async_pending(server, &pending_target, &update).await;
        return;
    }
    let mut tasks = Vec::new();
    for node in sends {
        let (server, update, pending_target) = (server.clone(), update.clone(), pending_target.clone());
        tasks.push(tokio::spawn(async move {
            if !send_one(&server, &node, partition, &update).await {
                save_async_pending(&server, &pending_target, &update).await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Swift's `_conditional_delete_at_update`: after a write that leaves the
/// object with `new_delete_at` (0: none) where it had `orig_delete_at`,
/// queues the new task and withdraws the old one. `content_length` is the
/// object's size, for the task row's content type.
#[allow(clippy::too_many_arguments)]
pub async fn update_delete_at(
    server: &Arc<ObjectServer>,
    req_headers: &HeaderMap,
    method_and_path: &str,
    target: &Target,
    ts: Timestamp,
    orig_delete_at: u64,
    new_delete_at: u64,
    content_length: Option<&str>,
) {
    if new_delete_at != 0 {
        let mut extra = BTreeMap::new();
        extra.insert(bh::CONTENT_TYPE.to_string(), task_content_type(content_length));
        extra.insert(bh::CONTENT_TYPE_TIMESTAMP.to_string(), ts.internal());
        update_expirer_queue(server, req_headers, method_and_path, "PUT", new_delete_at, ts, target, extra).await;
    }
    if orig_delete_at != 0 && orig_delete_at != new_delete_at {
        update_expirer_queue(server, req_headers, method_and_path, "DELETE", orig_delete_at, ts, target, BTreeMap::new()).await;
    }
}

/// Swift's `embed_expirer_bytes_in_ctype`: the task row's content type
/// carries the object's size, for queue statistics.
pub fn task_content_type(content_length: Option<&str>) -> String {
    let bytes = content_length.and_then(|l| l.trim().parse::<u64>().ok()).unwrap_or(0);
    format!("{};swift_expirer_bytes={bytes}", expirer_queue::TASK_CONTENT_TYPE)
}

async fn save_async_pending(server: &ObjectServer, target: &Target, u: &AsyncUpdate) {
    let body = crate::async_pending::encode(&crate::async_pending::AsyncPending {
        op: u.op.clone(),
        account: u.account.clone(),
        container: u.container.clone(),
        obj: u.obj.clone(),
        headers: u.headers.clone(),
        db_state: u.db_state.clone(),
        successes: Vec::new(),
        extra: Default::default(),
    });
    let ts = u
        .headers
        .get(bh::META_TIMESTAMP)
        .or_else(|| u.headers.get(bh::TIMESTAMP))
        .and_then(|t| common::timestamp::Timestamp::parse(t).ok())
        .map(|t| t.internal())
        .unwrap_or_default();
    let loc = target.location.clone();
    let r = server
        .devices
        .run(&target.path.device, move || crate::diskfile::write_async_pending(&loc.device_path, loc.policy, &loc.hash, &ts, &body))
        .await;
    match r {
        Ok(_) => {
            if let Some(statsd) = &server.settings.server.statsd {
                statsd.increment("async_pendings");
            }
        }
        Err(e) => common::log::error(&format!("ERROR writing async pending for {}: {e}", target.name)),
    }
}

/// The expirer queue updates of PUT, POST and DELETE, against an object
/// server in this process whose task container replica cannot be reached:
/// what would have been sent is found in the async pendings.
#[cfg(test)]
mod tests {
    use crate::async_pending::{self, AsyncPending};
    use crate::settings::ObjectSettings;
    use crate::ObjectServer;
    use common::backend::{read_body, BackendClient};
    use common::config::ConfigFile;
    use common::expirer_queue::{self, ExpirerQueue};
    use common::swift_conf::SwiftConf;
    use http::{HeaderMap, HeaderValue, Method};
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    async fn start(root: &Path) -> (u16, SwiftConf) {
        std::fs::create_dir_all(root.join("sda")).expect("device dir");
        let conf = ConfigFile::parse(
            &format!(
                "[DEFAULT]\ndevices = {}\nmount_check = false\nlog_requests = false\n[app:object-server]\nuse = egg:swift#object\n",
                root.display()
            ),
            "o.conf",
        )
        .expect("a config");
        let settings = ObjectSettings::from_config(&conf).expect("settings");
        let swift_conf = ConfigFile::parse("[swift-hash]\nswift_hash_path_suffix = expirer-tests\n", "s.conf").expect("swift.conf");
        let swift = SwiftConf::from_config(&swift_conf).expect("swift.conf");
        let limits = settings.server.connections.clone();
        let server = Arc::new(ObjectServer::new(settings, swift.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("an address").port();
        tokio::spawn(async move {
            common::server::serve(server, listener, &limits, false, std::future::pending(), Duration::from_secs(1)).await
        });
        (port, swift)
    }

    async fn req(port: u16, method: &str, headers: &[(&str, &str)]) -> u16 {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).expect("a name"), HeaderValue::from_str(v).expect("a value"));
        }
        let body: &[u8] = if method == "PUT" { b"body" } else { b"" };
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let client = BackendClient::new(Duration::from_secs(2), Duration::from_secs(10));
        let m = Method::from_bytes(method.as_bytes()).expect("a method");
        let resp = client.request(m, "127.0.0.1", port, "/sda/7/a/c/o", h, common::http::full(body.to_vec())).await.expect("an answer");
        read_body(resp, 1 << 20, Duration::from_secs(10)).await.expect("a body").0.as_u16()
    }

    /// Every async pending on the device, by the path it updates.
    fn pendings(root: &Path) -> Vec<(String, AsyncPending)> {
        let scan = crate::diskfile::list_async_pendings(&root.join("sda")).expect("a scan");
        let mut out: Vec<(String, AsyncPending)> = scan
            .newest
            .iter()
            .map(|f| async_pending::decode(&std::fs::read(&f.path).expect("a pending")).expect("Swift's format"))
            .map(|p| (format!("{} /{}/{}/{}", p.op, p.account, p.container, p.obj), p))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[tokio::test]
    async fn writes_queue_and_withdraw_expirer_tasks() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let root = dir.path().join("devices");
        let (port, swift) = start(&root).await;
        let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("a port").local_addr().expect("an address").port();
        let dead_host = format!("127.0.0.1:{dead}");
        let queue = ExpirerQueue::new(".", expirer_queue::DEFAULT_DIVISOR);
        let (t1, t2) = (9_000_000_000u64, 9_100_000_000u64);
        let row = |at: u64| format!("/.expiring_objects/{}/{at}-a/c/o", queue.container(&swift.hash, at, "a", "c", "o"));

        // A PUT whose queue replica is down leaves the task row for the updater,
        // filed under the row's own hash, exactly as Swift's delete_at_update sends it.
        let task_container = queue.container(&swift.hash, t1, "a", "c", "o");
        let put = [
            ("X-Timestamp", "1700000001.00000"),
            ("Content-Type", "text/plain"),
            ("X-Delete-At", "9000000000"),
            ("X-Delete-At-Host", dead_host.as_str()),
            ("X-Delete-At-Device", "sdx"),
            ("X-Delete-At-Partition", "3"),
            ("X-Delete-At-Container", task_container.as_str()),
        ];
        assert_eq!(req(port, "PUT", &put).await, 201);
        let found = pendings(&root);
        assert_eq!(found.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), vec![format!("PUT {}", row(t1))]);
        let h = &found[0].1.headers;
        assert_eq!(h.get("x-content-type").map(String::as_str), Some("text/plain;swift_expirer_bytes=4"));
        assert_eq!(h.get("x-size").map(String::as_str), Some("0"));
        assert_eq!(h.get("x-etag").map(String::as_str), Some(expirer_queue::EMPTY_ETAG));
        assert_eq!(h.get("x-timestamp").map(String::as_str), Some("1700000001.00000"));
        assert_eq!(h.get("x-backend-storage-policy-index").map(String::as_str), Some("0"));
        let hash = swift.hash.hash_path(".expiring_objects", Some(&task_container), Some(&format!("{t1}-a/c/o"))).expect("a hash");
        let scan = crate::diskfile::list_async_pendings(&root.join("sda")).expect("a scan");
        assert!(scan.newest[0].path.to_string_lossy().contains(&format!("/{hash}-1700000001.00000")));

        // A POST moving X-Delete-At withdraws the old row (the newer pending
        // for the row replaces the PUT, as the updater would); this object
        // server was named no queue replica for the new row, so sends nothing.
        assert_eq!(req(port, "POST", &[("X-Timestamp", "1700000002.00000"), ("X-Delete-At", "9100000000")]).await, 202);
        let keys: Vec<String> = pendings(&root).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![format!("DELETE {}", row(t1))]);

        // The expirer's own DELETE leaves the queue to the expirer.
        let expirer =
            [("X-Timestamp", "1700000003.00000"), ("X-Backend-Clean-Expiring-Object-Queue", "no"), ("X-If-Delete-At", "9000000000")];
        assert_eq!(req(port, "DELETE", &expirer).await, 412, "X-Delete-At moved");
        // A client's DELETE withdraws the current row.
        assert_eq!(req(port, "DELETE", &[("X-Timestamp", "1700000004.00000")]).await, 204);
        let keys: Vec<String> = pendings(&root).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![format!("DELETE {}", row(t1)), format!("DELETE {}", row(t2))]);
    }
}
