//! Container and account DB replication against the real binaries, after
//! Swift's probe tests (`test/probe/test_db_replicator.py`,
//! `test_container_failures.py`): a database lost with a disk is rebuilt, a
//! container created while one of its primaries was down reaches it and
//! the handoff copy goes, and a container deleted on two nodes but written
//! on the third converges.
//!
//! Each test runs `swift-<kind>-replicator <kind-server i.conf> once` on
//! every server, round after round, until what a user would see has
//! converged, or a deadline passes.

use cluster::client::{login, request, Resp, Session};
use cluster::{Cluster, Options};
use ring::Device;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long replication may take to converge on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(180);

const ACCOUNT: &str = "AUTH_test";

fn start(dir: &Path) -> Cluster {
    Cluster::start(Options::for_test(dir)).expect("cluster starts")
}

/// Where a container's (or, without one, the account's) database lives.
struct DbPlace {
    part: u32,
    hash: String,
    primaries: Vec<Device>,
    others: Vec<Device>,
    datadir: &'static str,
}

fn place(c: &Cluster, container: Option<&str>) -> DbPlace {
    let conf = common::swift_conf::SwiftConf::load_dir(&c.etc).unwrap();
    let kind = if container.is_some() { "container" } else { "account" };
    let ring = ring::Ring::load_named(&c.etc, kind, conf.hash.clone()).unwrap();
    let (part, primaries) = ring.get_nodes(ACCOUNT, container, None).unwrap();
    let hash = conf.hash.hash_path(ACCOUNT, container, None).unwrap();
    let others = ring.table().devs().iter().flatten().filter(|d| !primaries.iter().any(|p| p.id == d.id)).cloned().collect();
    DbPlace { part, hash, primaries, others, datadir: if container.is_some() { "containers" } else { "accounts" } }
}

impl DbPlace {
    fn hash_dir(&self, c: &Cluster, d: &Device) -> PathBuf {
        c.device_dir(d).join(self.datadir).join(self.part.to_string()).join(&self.hash[self.hash.len() - 3..]).join(&self.hash)
    }

    fn db_file(&self, c: &Cluster, d: &Device) -> PathBuf {
        self.hash_dir(c, d).join(format!("{}.db", self.hash))
    }

    /// `http://ip:port/<dev>/<part>/<account>[/<container>[/<object>]]`.
    fn url(&self, d: &Device, rest: &str) -> String {
        format!("http://{}:{}/{}/{}/{ACCOUNT}{rest}", d.ip, d.port, d.device, self.part)
    }
}

/// The server (1-based, as in the configs) that holds device `d`.
fn server_of(d: &Device) -> usize {
    d.device[3..].parse().unwrap()
}

/// Runs `<kind>-replicator once` on every `kind` server, round after round,
/// until `converged` says nothing is left to do (`Err` says what is).
fn replicate_until(c: &Cluster, kind: &str, mut converged: impl FnMut() -> Result<(), String>) {
    let end = Instant::now() + DEADLINE;
    let mut rounds = 0;
    loop {
        for i in 1..=4 {
            c.run_once(&format!("{kind}-replicator"), kind, i, &[]).expect("the replicator runs");
        }
        rounds += 1;
        match converged() {
            Ok(()) => return,
            Err(why) if Instant::now() > end => panic!("not converged after {rounds} rounds of replication: {why}"),
            Err(_) => {}
        }
    }
}

/// Polls `check` until it holds or the deadline passes.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !check() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn head(url: &str) -> Resp {
    request("HEAD", url, &[], b"")
}

fn session(c: &Cluster) -> Session {
    login(&c.auth_url(), "test:tester", "testing")
}

/// The object count a container server reports for the container, if it
/// has it live.
fn object_count(p: &DbPlace, d: &Device, container: &str) -> Option<u64> {
    let r = head(&p.url(d, &format!("/{container}")));
    (r.status == 204).then(|| r.header("x-container-object-count").and_then(|v| v.parse().ok())).flatten()
}

#[test]
fn a_container_db_lost_with_its_disk_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let s = session(&c);
    assert_eq!(s.req("PUT", "/lost", &[], b"").status, 201);
    for o in ["o1", "o2", "o3"] {
        assert_eq!(s.req("PUT", &format!("/lost/{o}"), &[], b"data").status, 201);
    }
    let p = place(&c, Some("lost"));
    wait_for("every primary to list 3 objects", || p.primaries.iter().all(|d| object_count(&p, d, "lost") == Some(3)));
    let victim = p.primaries[0].clone();
    std::fs::remove_dir_all(p.hash_dir(&c, &victim)).unwrap();
    assert_eq!(head(&p.url(&victim, "/lost")).status, 404);
    replicate_until(&c, "container", || match object_count(&p, &victim, "lost") {
        Some(3) => Ok(()),
        other => Err(format!("the rebuilt primary reports {other:?} objects")),
    });
    let listing = request("GET", &p.url(&victim, "/lost?format=json"), &[], b"").text();
    assert!(listing.contains("\"o1\"") && listing.contains("\"o3\""), "{listing}");
}

#[test]
fn an_account_db_lost_with_its_disk_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let s = session(&c);
    for name in ["a1", "a2"] {
        assert_eq!(s.req("PUT", &format!("/{name}"), &[], b"").status, 201);
    }
    let p = place(&c, None);
    let count = |d: &Device| {
        let r = head(&p.url(d, ""));
        (r.status == 204).then(|| r.header("x-account-container-count").and_then(|v| v.parse::<u64>().ok())).flatten()
    };
    wait_for("every account primary to count 2 containers", || p.primaries.iter().all(|d| count(d) == Some(2)));
    let victim = p.primaries[1].clone();
    std::fs::remove_dir_all(p.hash_dir(&c, &victim)).unwrap();
    assert_eq!(head(&p.url(&victim, "")).status, 404);
    replicate_until(&c, "account", || match count(&victim) {
        Some(2) => Ok(()),
        other => Err(format!("the rebuilt primary counts {other:?} containers")),
    });
}

#[test]
fn a_container_made_while_a_primary_was_down_reaches_it_and_the_handoff_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path());
    let s = session(&c);
    let p = place(&c, Some("late"));
    let down = p.primaries[2].clone();
    let ip = c.opts.bind_ip.clone();
    c.servers("container")[server_of(&down) - 1].kill();
    assert_eq!(s.req("PUT", "/late", &[], b"").status, 201);
    assert_eq!(s.req("PUT", "/late/o", &[], b"data").status, 201);
    let handoffs: Vec<Device> = p.others.iter().filter(|d| p.db_file(&c, d).exists()).cloned().collect();
    c.servers("container")[server_of(&down) - 1].restart(&ip).unwrap();
    replicate_until(&c, "container", || {
        if object_count(&p, &down, "late") != Some(1) {
            return Err("the primary that was down has not got the container".into());
        }
        match handoffs.iter().find(|d| p.db_file(&c, d).exists()) {
            Some(d) => Err(format!("the handoff copy on {} is still there", d.device)),
            None => Ok(()),
        }
    });
    for d in &p.primaries {
        assert_eq!(object_count(&p, d, "late"), Some(1), "primary {}", d.device);
    }
}

#[test]
fn a_container_deleted_on_two_nodes_and_written_on_the_third_converges() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let s = session(&c);
    assert_eq!(s.req("PUT", "/split", &[], b"").status, 201);
    let p = place(&c, Some("split"));
    wait_for("every primary to have the container", || p.primaries.iter().all(|d| object_count(&p, d, "split") == Some(0)));
    // What a partition of the cluster can leave behind: two primaries saw
    // the (empty) container's DELETE, the third only a later object write.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let (t_delete, t_write) = (format!("{:.5}", now + 1.0), format!("{:.5}", now + 2.0));
    for d in &p.primaries[..2] {
        assert_eq!(request("DELETE", &p.url(d, "/split"), &[("X-Timestamp", &t_delete)], b"").status, 204);
    }
    let write = [
        ("X-Timestamp", t_write.as_str()),
        ("X-Size", "4"),
        ("X-Content-Type", "text/plain"),
        ("X-Etag", "8d777f385d3dfec8815d20f7496026dc"),
    ];
    assert_eq!(request("PUT", &p.url(&p.primaries[2], "/split/o"), &write, b"").status, 201);
    replicate_until(&c, "container", || {
        for d in &p.primaries {
            if object_count(&p, d, "split") != Some(1) {
                return Err(format!("{} does not list the object", d.device));
            }
        }
        Ok(())
    });
    // Swift's rule: a container holding rows is not deleted, whatever its
    // delete timestamp; the user sees it with the object.
    assert_eq!(s.req("GET", "/split", &[], b"").text().trim(), "o");
}

#[test]
fn a_primary_far_behind_gets_the_rows_it_missed_and_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    // Tiny batches, so that a primary 6 rows behind counts as far behind
    // (Swift sends it the whole database to merge with its own) and a
    // usync is capped after one batch per pass.
    let opts = Options { extra_conf: "per_diff = 2\nmax_diffs = 1\n".into(), ..Options::for_test(dir.path()) };
    let mut c = Cluster::start(opts).expect("cluster starts");
    let s = session(&c);
    assert_eq!(s.req("PUT", "/behind", &[], b"").status, 201);
    let p = place(&c, Some("behind"));
    wait_for("every primary to have the container", || p.primaries.iter().all(|d| object_count(&p, d, "behind") == Some(0)));
    let late = p.primaries[0].clone();
    let ip = c.opts.bind_ip.clone();
    c.servers("container")[server_of(&late) - 1].kill();
    for i in 0..6 {
        assert_eq!(s.req("PUT", &format!("/behind/o{i}"), &[], b"data").status, 201);
    }
    c.servers("container")[server_of(&late) - 1].restart(&ip).unwrap();
    // A row only the late primary has (written straight to it).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let ts = format!("{:.5}", now + 1.0);
    let write =
        [("X-Timestamp", ts.as_str()), ("X-Size", "1"), ("X-Content-Type", "text/plain"), ("X-Etag", "0cc175b9c0f1b6a831c399e269772661")];
    assert_eq!(request("PUT", &p.url(&late, "/behind/mine"), &write, b"").status, 201);
    replicate_until(&c, "container", || {
        for d in &p.primaries {
            let n = object_count(&p, d, "behind");
            if n != Some(7) {
                return Err(format!("{} lists {n:?} objects", d.device));
            }
        }
        Ok(())
    });
    // The pass reported to recon as Swift's replicator does (what
    // `swift-recon container -r` reads).
    let d = &p.primaries[1];
    let recon = request("GET", &format!("http://{}:{}/recon/replication/container", d.ip, d.port), &[], b"");
    assert_eq!(recon.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&recon.body).unwrap();
    assert!(v["replication_time"].is_number(), "{v}");
    assert!(v["replication_last"].is_number(), "{v}");
    // The servers of this cluster share one recon cache: the figures are
    // those of the last server's pass, which may have had nothing to do.
    assert!(v["replication_stats"]["attempted"].is_u64(), "{v}");
    assert!(v["replication_stats"]["failure_nodes"].is_object(), "{v}");
}

#[test]
fn a_deleted_container_is_removed_after_reclaim_age_once_its_account_knows() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options { extra_conf: "reclaim_age = 1\n".into(), ..Options::for_test(dir.path()) };
    let c = Cluster::start(opts).expect("cluster starts");
    let s = session(&c);
    assert_eq!(s.req("PUT", "/gone", &[], b"").status, 201);
    let p = place(&c, Some("gone"));
    wait_for("every primary to have the container", || p.primaries.iter().all(|d| object_count(&p, d, "gone") == Some(0)));
    assert_eq!(s.req("DELETE", "/gone", &[], b"").status, 204);
    // The container updaters (running every 5 s) tell the account; only
    // then may the deleted databases go.
    replicate_until(&c, "container", || match p.primaries.iter().find(|d| p.db_file(&c, d).exists()) {
        Some(d) => Err(format!("{} still has the deleted database", d.device)),
        None => Ok(()),
    });
    let listing = s.req("GET", "/?format=json", &[], b"").text();
    assert!(!listing.contains("\"gone\""), "{listing}");
}
