//! Failure accounting against an in-process endpoint that injects faults
//! at exact request numbers, so every count can be checked exactly; and
//! the exit statuses of bad arguments and a failed login.

use bench::fake_endpoint::{serve, Faults};
use http::StatusCode;
use serde_json::Value;
use std::process::{Command, Output};

const BENCH: &str = env!("CARGO_BIN_EXE_swift-bench");

/// Starts the fake endpoint on its own runtime (it lives as long as the
/// returned runtime) and returns its auth URL.
fn endpoint(faults: Faults, object_size: u64) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}/auth/v1.0", listener.local_addr().unwrap());
    rt.spawn(serve(listener, faults, object_size));
    (rt, url)
}

fn bench(auth_url: &str, extra: &[&str]) -> Output {
    Command::new(BENCH).args(["-A", auth_url, "-U", "test:tester", "-K", "testing"]).args(extra).output().unwrap()
}

fn run_json(auth_url: &str, extra: &[&str]) -> Value {
    let out = bench(auth_url, &[extra, &["--json"]].concat());
    assert!(out.status.success(), "swift-bench failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("--json prints one JSON object")
}

fn phase<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["phases"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("no {name} phase"))
}

/// (attempts, successes, failures by label), after checking the totals
/// add up within the phase.
fn counts(report: &Value, name: &str) -> (u64, u64, Vec<(String, u64)>) {
    let p = phase(report, name);
    let attempts = p["attempts"].as_u64().unwrap();
    let successes = p["successes"].as_u64().unwrap();
    let failures: Vec<(String, u64)> = p["failures"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap())).collect();
    let failed: u64 = failures.iter().map(|(_, n)| n).sum();
    assert_eq!(p["failed"].as_u64(), Some(failed), "{name}: failed is the sum of failures");
    assert_eq!(successes + failed, attempts, "{name}: successes + failures = attempts");
    (attempts, successes, failures)
}

#[test]
fn injected_statuses_and_dropped_connections_are_all_counted() {
    let faults = Faults { put_status_every: Some((3, StatusCode::SERVICE_UNAVAILABLE)), drop_get_every: Some(4), ..Faults::default() };
    let (_rt, url) = endpoint(faults, 1024);
    let r = run_json(&url, &["-c", "4", "-s", "1K", "-n", "30", "-g", "40", "-C", "3"]);
    assert_eq!(counts(&r, "container_put"), (3, 3, vec![]));
    assert_eq!(counts(&r, "put"), (30, 20, vec![("503".into(), 10)]));
    assert_eq!(counts(&r, "get"), (40, 30, vec![("connection_error".into(), 10)]));
    assert_eq!(counts(&r, "head"), (20, 20, vec![]), "only stored objects are HEADed");
    assert_eq!(counts(&r, "delete"), (20, 20, vec![]), "only stored objects are DELETEd");
    assert_eq!(counts(&r, "container_delete"), (3, 3, vec![]));
    assert_eq!(phase(&r, "put")["bytes"], 20 * 1024);
    assert_eq!(phase(&r, "get")["bytes"], 30 * 1024);
}

#[test]
fn unreachable_storage_is_counted_as_connect_errors() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/v1/AUTH_test", dead.local_addr().unwrap());
    drop(dead);
    let (_rt, url) = endpoint(Faults { storage_url: Some(dead_url), ..Faults::default() }, 0);
    let r = run_json(&url, &["-c", "2", "-n", "5", "-g", "5", "-C", "2", "-s", "0"]);
    assert_eq!(counts(&r, "container_put"), (2, 0, vec![("connect_error".into(), 2)]));
    assert_eq!(counts(&r, "put"), (5, 0, vec![("connect_error".into(), 5)]));
    assert_eq!(phase(&r, "get")["skipped"], "no object was stored");
    assert_eq!(counts(&r, "get"), (0, 0, vec![]));
    assert_eq!(counts(&r, "container_delete"), (2, 0, vec![("connect_error".into(), 2)]));
}

#[test]
fn timed_phases_run_for_their_duration_and_clean_up() {
    let (_rt, url) = endpoint(Faults::default(), 0);
    let r = run_json(&url, &["-c", "2", "-s", "0", "-C", "1", "--duration", "0.3"]);
    let (puts, put_ok, _) = counts(&r, "put");
    assert!(puts > 0 && put_ok == puts);
    assert!(counts(&r, "get").0 > 0);
    assert!(counts(&r, "head").0 > 0);
    assert_eq!(counts(&r, "delete"), (puts, puts, vec![]), "every stored object is deleted");
}

#[test]
fn table_lists_every_phase_and_its_failures() {
    let (_rt, url) = endpoint(Faults { put_status_every: Some((2, StatusCode::INSUFFICIENT_STORAGE)), ..Faults::default() }, 0);
    let out = bench(&url, &["-c", "2", "-n", "10", "-g", "10", "-C", "1", "-s", "0"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for label in ["container PUT", "object PUT", "object GET", "object HEAD", "object DELETE", "container DELETE"] {
        assert!(text.contains(label), "{label} missing:\n{text}");
    }
    assert!(text.contains("failures: 507 x5"), "{text}");
    assert!(!text.contains('\r'), "no progress line when stdout is not a terminal:\n{text}");
}

#[test]
fn bad_arguments_exit_2_with_a_reason() {
    for (args, reason) in [
        (&["-A", "http://127.0.0.1:1/auth/v1.0", "-U", "u", "-K", "k", "-s", "4X"][..], "not a size"),
        (&["-A", "http://127.0.0.1:1/auth/v1.0", "-U", "u", "-K", "k", "-c", "0"], "0"),
        (&["-A", "https://127.0.0.1:1/auth/v1.0", "-U", "u", "-K", "k"], "https is not supported"),
        (&["-U", "u", "-K", "k"], "AUTH_URL"),
        (&["-A", "http://127.0.0.1:1/auth/v1.0", "-U", "u", "-K", "k", "-n", "5", "--duration", "3"], "cannot be used with"),
    ] {
        let out = Command::new(BENCH).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}

#[test]
fn failed_login_exits_1() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/auth/v1.0", dead.local_addr().unwrap());
    drop(dead);
    let out = bench(&url, &["--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
}
