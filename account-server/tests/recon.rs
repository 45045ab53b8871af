//! Recon (`/recon/*`) on the real `swift-account-server`: enabled by the
//! pipeline as in Swift, answering before the account routes. The full
//! endpoint-by-endpoint check is in `container-server/tests/recon.rs`;
//! every server answers the same way.

use common::testing::{free_port, http_request, ServerProcess};
use serde_json::{json, Value};
use std::path::Path;

/// Starts the server with `pipeline`; returns its dir, the process and port.
fn start(pipeline: &str) -> (tempfile::TempDir, ServerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in ["node/sda", "etc", "cache"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("etc/swift.conf"),
        "[swift-hash]\nswift_hash_path_suffix = suf\n[storage-policy:0]\nname = gold\ndefault = yes\n\
         [storage-policy:2]\nname = silver\n",
    )
    .unwrap();
    let port = free_port();
    let conf = root.join("account-server.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\ndevices = {root}/node\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = {port}\n\
             swift_dir = {root}/etc\nlog_requests = false\nrecon_cache_path = {root}/cache\n\
             [pipeline:main]\npipeline = {pipeline}\n[app:account-server]\nuse = egg:swift#account\n\
             [filter:recon]\nuse = egg:swift#recon\n[filter:healthcheck]\nuse = egg:swift#healthcheck\n",
            root = root.display(),
        ),
    )
    .unwrap();
    let proc = ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_swift-account-server")), &conf, port);
    (dir, proc)
}

fn json(port: u16, path: &str) -> Value {
    let r = http_request(port, "GET", path);
    assert_eq!((r.status, r.header("content-type")), (200, Some("application/json")), "{path}: {}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn recon_answers_when_in_the_pipeline() {
    let (dir, proc) = start("healthcheck recon account-server");
    let (root, port) = (dir.path(), proc.port);
    assert_eq!(json(port, "/recon/version"), json!({"version": common::VERSION}));
    assert!(http_request(port, "GET", "/recon/time").text().parse::<f64>().is_ok());
    assert_eq!(json(port, "/recon/unmounted"), json!([{"device": "sda", "mounted": false}]));
    // Rings of every policy of swift.conf, keyed by full path.
    std::fs::write(root.join("etc/object-2.ring.gz"), b"").unwrap();
    std::fs::write(root.join("etc/account.ring.gz"), b"abc").unwrap();
    let mut want = serde_json::Map::new();
    want.insert(root.join("etc/object-2.ring.gz").display().to_string(), json!("d41d8cd98f00b204e9800998ecf8427e"));
    want.insert(root.join("etc/account.ring.gz").display().to_string(), json!("900150983cd24fb0d6963f7d28e17f72"));
    assert_eq!(json(port, "/recon/ringmd5"), Value::Object(want));
    std::fs::write(root.join("cache/account.recon"), r#"{"account_audits_passed": 2, "replication_last": 17.5}"#).unwrap();
    let audit = json(port, "/recon/auditor/account");
    assert_eq!(keys(&audit), ["account_auditor_pass_completed", "account_audits_failed", "account_audits_passed", "account_audits_since"]);
    assert_eq!(audit["account_audits_passed"], json!(2));
    assert_eq!(json(port, "/recon/replication/account")["replication_last"], json!(17.5));
    let r = http_request(port, "GET", "/recon/nothing");
    assert_eq!((r.status, r.text()), (404, "Invalid path: /recon/nothing".to_string()));
    // The server's own routes still answer.
    assert_eq!(http_request(port, "HEAD", "/sdz/0/a").status, 507);
}

#[test]
fn recon_is_off_without_it_in_the_pipeline() {
    let (_dir, proc) = start("account-server");
    let r = http_request(proc.port, "GET", "/recon/version");
    assert_ne!(r.status, 200);
    assert_ne!(r.header("content-type"), Some("application/json"));
}
