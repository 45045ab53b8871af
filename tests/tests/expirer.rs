//! The object expirer against a real cluster: objects past their
//! X-Delete-At leave the container listing, the container's counts and
//! every primary's disk once `swift-object-expirer once` has run; objects
//! not yet due stay, and an object whose X-Delete-At was moved by a POST
//! is not deleted by its old task.

use cluster::client::{login, request, Session};
use cluster::{Cluster, Options};
use common::expirer_queue::{self, ExpirerQueue};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn start(dir: &Path) -> Cluster {
    Cluster::start(Options::for_test(dir)).expect("cluster starts")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

/// Runs the expirer once on every object server.
fn expire(c: &Cluster) {
    let n = std::fs::read_dir(c.etc.join("object-server")).expect("configs").count();
    for i in 1..=n {
        c.run_once("object-expirer", "object", i, &[]).expect("swift-object-expirer once");
    }
}

/// The object names of a container listing through the proxy.
fn listing(s: &Session, container: &str) -> Vec<String> {
    let r = s.req("GET", &format!("/{container}?format=json"), &[], b"");
    assert!(r.status == 200 || r.status == 204, "listing: {}", r.status);
    if r.body.is_empty() {
        return Vec::new();
    }
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&r.body).expect("a JSON listing");
    rows.iter().filter_map(|r| r["name"].as_str().map(str::to_string)).collect()
}

fn object_count(s: &Session, container: &str) -> Option<u64> {
    s.req("HEAD", &format!("/{container}"), &[], b"").header("x-container-object-count").and_then(|v| v.parse().ok())
}

/// Runs the expirer on every node until `done` holds (the queue reaches the
/// account listing only after a container-updater pass), or fails.
fn expire_until(c: &Cluster, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        expire(c);
        if done() {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The task rows of `/<account>/<container>/<object>` due at `delete_at`,
/// as each replica of its task container lists them.
fn task_rows(c: &Cluster, account: &str, container: &str, object: &str, delete_at: u64) -> Vec<bool> {
    let conf = common::swift_conf::SwiftConf::load_dir(&c.etc).expect("swift.conf");
    let queue = ExpirerQueue::new(&conf.constraints.auto_create_account_prefix, expirer_queue::DEFAULT_DIVISOR);
    let task_container = queue.container(&conf.hash, delete_at, account, container, object);
    let task = expirer_queue::task_object(delete_at, account, container, object);
    let ring = ring::Ring::load_named(&c.etc, "container", conf.hash.clone()).expect("container ring");
    let (part, nodes) = ring.get_nodes(&queue.account, Some(&task_container), None).expect("task container nodes");
    nodes
        .iter()
        .map(|d| {
            let url = format!("http://{}:{}/{}/{part}/{}/{task_container}?format=json", d.ip, d.port, d.device, queue.account);
            let r = request("GET", &url, &[], b"");
            let rows: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap_or_default();
            rows.iter().any(|r| r["name"].as_str() == Some(task.as_str()))
        })
        .collect()
}

#[test]
fn expired_objects_leave_listings_counts_and_disks() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let s = login(&c.auth_url(), "test:tester", "testing");
    let account = s.url.rsplit('/').next().expect("account").to_string();
    assert_eq!(s.req("PUT", "/exp", &[], b"").status, 201);
    for name in ["gone1", "gone2"] {
        assert_eq!(s.req("PUT", &format!("/exp/{name}"), &[("X-Delete-After", "1")], b"short-lived").status, 201);
    }
    assert_eq!(s.req("PUT", "/exp/stays", &[], b"kept").status, 201);
    assert_eq!(s.req("PUT", "/exp/later", &[("X-Delete-After", "3600")], b"kept a while").status, 201);
    assert_eq!(listing(&s, "exp").len(), 4);

    // Hidden from reads once due, but still listed and on disk.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ["gone1", "gone2"].iter().any(|n| s.req("GET", &format!("/exp/{n}"), &[], b"").status != 404) {
        assert!(Instant::now() < deadline, "the objects never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(listing(&s, "exp").len(), 4);

    expire_until(&c, "the expired objects to leave the listing", || {
        listing(&s, "exp") == ["later", "stays"] && object_count(&s, "exp") == Some(2)
    });
    for name in ["gone1", "gone2"] {
        let p = c.placement(&account, "exp", name).unwrap();
        for d in &p.primaries {
            assert_eq!(p.data_file(&c, d), None, "{name} still has a .data on {}", d.device);
            assert!(p.hash_dir(&c, d).is_dir(), "{name}: no tombstone on {}", d.device);
        }
    }
    for name in ["stays", "later"] {
        let p = c.placement(&account, "exp", name).unwrap();
        assert!(p.primaries.iter().all(|d| p.data_file(&c, d).is_some()), "{name} lost a replica");
        assert_eq!(s.req("GET", &format!("/exp/{name}"), &[], b"").status, 200);
    }
    // The not-yet-due object keeps its task.
    let later_at: u64 = s.req("HEAD", "/exp/later", &[], b"").header("x-delete-at").and_then(|v| v.parse().ok()).expect("X-Delete-At");
    assert!(task_rows(&c, &account, "exp", "later", later_at).iter().all(|&t| t), "the task of 'later' is missing");

    // Recon reports the pass, as Swift's expirer does.
    let port = c.procs.iter().find(|p| p.name == "object-server 1").expect("object server 1").port;
    let r = request("GET", &format!("http://127.0.0.1:{port}/recon/expirer/object"), &[], b"");
    let recon: serde_json::Value = serde_json::from_slice(&r.body).expect("recon JSON");
    assert!(recon["object_expiration_pass"].is_number() && recon["expired_last_pass"].is_number(), "{recon}");
}

#[test]
fn a_post_moves_the_task_and_the_old_one_deletes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path());
    // The updaters would withdraw the old task within seconds: stop them so
    // the expirer meets it, and run them by hand afterwards.
    for p in c.procs.iter_mut().filter(|p| p.name.starts_with("object-updater ")) {
        p.stop(Duration::from_secs(10));
    }
    let s = login(&c.auth_url(), "test:tester", "testing");
    let account = s.url.rsplit('/').next().expect("account").to_string();
    assert_eq!(s.req("PUT", "/moved", &[], b"").status, 201);
    let first = now() + 4;
    assert_eq!(s.req("PUT", "/moved/o", &[("X-Delete-At", &first.to_string())], b"body").status, 201);
    assert!(task_rows(&c, &account, "moved", "o", first).iter().all(|&t| t), "no task for the first X-Delete-At");
    let second = now() + 3600;
    assert_eq!(s.req("POST", "/moved/o", &[("X-Delete-At", &second.to_string())], b"").status, 202);
    assert!(task_rows(&c, &account, "moved", "o", second).iter().all(|&t| t), "the POST queued no new task");

    // Past the first time: its task is still queued (its withdrawal waits
    // in async pendings for the updater), and the object servers refuse it
    // (412: X-Delete-At moved), so the object stays and so does the task.
    let deadline = Instant::now() + Duration::from_secs(30);
    while now() <= first + 1 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(task_rows(&c, &account, "moved", "o", first).iter().all(|&t| t), "the old task went before the updater ran");
    expire(&c);
    assert_eq!(s.req("GET", "/moved/o", &[], b"").status, 200);
    assert_eq!(listing(&s, "moved"), ["o"]);
    let p = c.placement(&account, "moved", "o").unwrap();
    assert!(p.primaries.iter().all(|d| p.data_file(&c, d).is_some()), "a replica was deleted");
    assert!(task_rows(&c, &account, "moved", "o", first).iter().all(|&t| t), "a refused task was dropped before reclaim_age");

    // The updaters deliver the withdrawal; the new task stays.
    let n = std::fs::read_dir(c.etc.join("object-server")).expect("configs").count();
    for i in 1..=n {
        c.run_once("object-updater", "object", i, &[]).expect("swift-object-updater once");
    }
    assert!(task_rows(&c, &account, "moved", "o", first).iter().all(|&t| !t), "the old task was not withdrawn");
    assert!(task_rows(&c, &account, "moved", "o", second).iter().all(|&t| t), "the new task is gone");
    expire(&c);
    assert_eq!(s.req("GET", "/moved/o", &[], b"").status, 200);
}
