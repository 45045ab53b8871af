//! swift-bench against a whole cluster started from the real binaries:
//! everything succeeds on a healthy cluster, and with three of four object
//! servers killed every object PUT is counted as a 503 and the totals add
//! up. (Needs the server binaries built: `cargo build --workspace`.)

use cluster::{Cluster, Options};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn start(dir: &std::path::Path) -> Cluster {
    Cluster::start(Options::for_test(dir)).expect("cluster starts (are the server binaries built? cargo build --workspace)")
}

fn run_json(c: &Cluster, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_swift-bench"))
        .args(["-A", &c.auth_url(), "-U", "test:tester", "-K", "testing", "--json", "--timeout", "30"])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "swift-bench failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("--json prints one JSON object")
}

/// (attempts, successes, failures by label) of one phase, after checking
/// successes + failures = attempts.
fn counts(report: &Value, name: &str) -> (u64, u64, Vec<(String, u64)>) {
    let p = report["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap();
    let attempts = p["attempts"].as_u64().unwrap();
    let successes = p["successes"].as_u64().unwrap();
    let failures: Vec<(String, u64)> = p["failures"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
    let failed: u64 = failures.iter().map(|(_, n)| n).sum();
    assert_eq!(p["failed"].as_u64(), Some(failed), "{name}: {p}");
    assert_eq!(successes + failed, attempts, "{name}: successes + failures = attempts: {p}");
    (attempts, successes, failures)
}

#[test]
fn healthy_cluster_everything_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let r = run_json(&c, &["-c", "4", "-s", "1K", "-n", "40", "-g", "80", "-C", "3"]);
    assert_eq!(counts(&r, "container_put"), (3, 3, vec![]));
    assert_eq!(counts(&r, "put"), (40, 40, vec![]));
    assert_eq!(counts(&r, "get"), (80, 80, vec![]));
    assert_eq!(counts(&r, "head"), (40, 40, vec![]));
    assert_eq!(counts(&r, "delete"), (40, 40, vec![]));
    assert_eq!(counts(&r, "container_delete"), (3, 3, vec![]));
    let get = r["phases"].as_array().unwrap().iter().find(|p| p["name"] == "get").unwrap();
    assert_eq!(get["bytes"], 80 * 1024, "every GET returned the whole object");
    assert!(get["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
}

#[test]
fn three_of_four_object_servers_down_puts_fail_as_503() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path());
    // One live object server holds at most one replica of any partition:
    // below the quorum of two, so the proxy must answer 503 to every PUT.
    for server in c.servers("object").into_iter().take(3) {
        server.kill();
    }
    let r = run_json(&c, &["-c", "4", "-s", "1K", "-n", "20", "-g", "20", "-C", "2"]);
    assert_eq!(counts(&r, "container_put"), (2, 2, vec![]), "container servers are all up");
    assert_eq!(counts(&r, "put"), (20, 0, vec![("503".into(), 20)]));
    assert_eq!(counts(&r, "get"), (0, 0, vec![]), "nothing stored, nothing to GET");
    assert_eq!(counts(&r, "delete"), (0, 0, vec![]));
    assert_eq!(counts(&r, "container_delete"), (2, 2, vec![]), "the containers are still removed");
}

/// Logs in as the bench does; returns (storage URL, token).
fn login(c: &Cluster) -> (String, String) {
    let r = cluster::client::request("GET", &c.auth_url(), &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    (r.header("x-storage-url").unwrap().to_string(), r.header("x-auth-token").unwrap().to_string())
}

/// Whether any swift-bench container in the account lists an object yet.
fn bench_has_stored_objects(storage_url: &str, token: &str) -> bool {
    let auth = [("X-Auth-Token", token)];
    let r = cluster::client::request("GET", storage_url, &auth, b"");
    r.text().lines().filter(|c| c.starts_with("swift-bench_")).any(|container| {
        let listing = cluster::client::request("GET", &format!("{storage_url}/{container}"), &auth, b"");
        listing.status == 200 && !listing.body.is_empty()
    })
}

#[test]
fn object_servers_killed_mid_put_every_failure_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path());
    let (storage_url, token) = login(&c);
    let child = Command::new(env!("CARGO_BIN_EXE_swift-bench"))
        .args(["-A", &c.auth_url(), "-U", "test:tester", "-K", "testing", "--json", "--timeout", "30"])
        .args(["-c", "4", "-s", "1K", "-C", "2", "--duration", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until PUTs are landing, then take three object servers away
    // while the (3 s) PUT phase is still running.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !bench_has_stored_objects(&storage_url, &token) {
        assert!(Instant::now() < deadline, "no object was stored within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    for server in c.servers("object").into_iter().take(3) {
        server.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "swift-bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).expect("--json prints one JSON object");
    let (_, put_ok, put_failures) = counts(&r, "put");
    assert!(put_ok > 0, "PUTs before the kill succeeded: {r}");
    assert!(!put_failures.is_empty(), "PUTs after the kill failed: {r}");
    assert!(put_failures.iter().all(|(status, _)| status == "503"), "PUT failures are 503s: {put_failures:?}");
    // Later phases may fail in several ways (404, 503, 409 for the
    // non-empty containers); whatever happens is counted.
    for name in ["container_put", "get", "head", "delete", "container_delete"] {
        counts(&r, name);
    }
    let (deletes, _, _) = counts(&r, "delete");
    assert_eq!(deletes, put_ok, "every stored object is deleted (or its failure counted)");
}
