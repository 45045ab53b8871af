//! Recon (`/recon/*`) on the real `swift-container-server`: every endpoint's
//! JSON shape and its figures against the files, `statvfs` and the cache.

use common::testing::{free_port, http_request, HttpReply, ServerProcess};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

struct Node {
    dir: tempfile::TempDir,
    proc: ServerProcess,
}

impl Node {
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn get(&self, path: &str) -> HttpReply {
        http_request(self.proc.port, "GET", path)
    }

    /// The JSON body of a recon endpoint, which must answer 200 JSON.
    fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
    }
}

/// Starts a container server on devices `sda` (a plain dir) and `sdb`
/// (marked as a mount point with Swift's `.ismount` stub); `defaults` and
/// `filter` are extra lines for `[DEFAULT]` and `[filter:recon]`, where
/// `{root}` stands for the node's directory.
fn start(pipeline: &str, defaults: &str, filter: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for d in ["node/sda", "node/sdb", "etc", "cache"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("node/sdb/.ismount"), b"").unwrap();
    std::fs::write(
        root.join("etc/swift.conf"),
        "[swift-hash]\nswift_hash_path_prefix = pre\nswift_hash_path_suffix = suf\n\
         [storage-policy:0]\nname = gold\ndefault = yes\n[storage-policy:1]\nname = silver\n",
    )
    .unwrap();
    let port = free_port();
    let conf = root.join("container-server.conf");
    let defaults = defaults.replace("{root}", &root.display().to_string());
    let filter = filter.replace("{root}", &root.display().to_string());
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\ndevices = {root}/node\nbind_ip = 127.0.0.1\nbind_port = {port}\nswift_dir = {root}/etc\n\
             log_requests = false\n{defaults}\n\
             [pipeline:main]\npipeline = {pipeline}\n\
             [app:container-server]\nuse = egg:swift#container\n\
             [filter:healthcheck]\nuse = egg:swift#healthcheck\n\
             [filter:recon]\nuse = egg:swift#recon\n{filter}\n",
            root = root.display(),
        ),
    )
    .unwrap();
    let proc = ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_swift-container-server")), &conf, port);
    Node { dir, proc }
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[test]
fn every_endpoint_has_swifts_shape_and_real_figures() {
    // recon_cache_path set in [filter:recon] only: it must be honoured.
    let node = start("recon container-server", "mount_check = false", "recon_cache_path = {root}/cache");
    let root = node.dir.path().to_path_buf();

    // mounted: /proc/mounts, which always has the root filesystem.
    let mounted = node.json("/recon/mounted");
    let mounted = mounted.as_array().unwrap();
    assert!(mounted.iter().all(|m| keys(m) == ["device", "path"]));
    assert!(mounted.iter().any(|m| m["path"] == "/"), "{mounted:?}");

    // unmounted and diskusage: sda is a plain directory, sdb carries the stub.
    assert_eq!(node.json("/recon/unmounted"), json!([{"device": "sda", "mounted": false}]));
    let du = node.json("/recon/diskusage");
    assert_eq!(du[0], json!({"device": "sda", "mounted": false, "size": "", "used": "", "avail": ""}));
    assert_eq!(keys(&du[1]), ["avail", "device", "mounted", "size", "used"]);
    assert_eq!((du[1]["device"].as_str(), du[1]["mounted"].as_bool()), (Some("sdb"), Some(true)));
    let (size, used, avail) = (du[1]["size"].as_u64().unwrap(), du[1]["used"].as_u64().unwrap(), du[1]["avail"].as_u64().unwrap());
    assert_eq!(used + avail, size);
    // GNU stat: %s is statvfs f_bsize (what Swift multiplies by), %b f_blocks.
    let out = std::process::Command::new("stat").args(["-f", "-c", "%s %b"]).arg(root.join("node/sdb")).output().unwrap();
    let fields: Vec<u64> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(|v| v.parse().unwrap()).collect();
    assert_eq!(size, fields[0] * fields[1]);

    // ringmd5: full paths of the rings present, object-N for every policy.
    let etc = root.join("etc");
    assert_eq!(node.json("/recon/ringmd5"), json!({}));
    let rings: [(&str, &[u8]); 4] = [("account", b"acct"), ("container", b"cont"), ("object", b"obj0"), ("object-1", b"obj1")];
    let mut want = serde_json::Map::new();
    for (name, bytes) in rings {
        let p = etc.join(format!("{name}.ring.gz"));
        std::fs::write(&p, bytes).unwrap();
        want.insert(p.display().to_string(), json!(md5_hex(bytes)));
    }
    // Not a policy of swift.conf: not reported.
    std::fs::write(etc.join("object-7.ring.gz"), b"x").unwrap();
    assert_eq!(node.json("/recon/ringmd5"), Value::Object(want));
    let conf_path = etc.join("swift.conf");
    assert_eq!(node.json("/recon/swiftconfmd5"), json!({ conf_path.display().to_string(): md5_hex(&std::fs::read(&conf_path).unwrap()) }));

    // quarantined
    assert_eq!(node.json("/recon/quarantined"), json!({"objects": 0, "containers": 0, "accounts": 0, "policies": {}}));
    for d in ["sda/quarantined/objects/a", "sdb/quarantined/objects-1/b", "sdb/quarantined/containers/c"] {
        std::fs::create_dir_all(root.join("node").join(d)).unwrap();
    }
    assert_eq!(
        node.json("/recon/quarantined"),
        json!({"objects": 2, "containers": 1, "accounts": 0, "policies": {"0": {"objects": 1}, "1": {"objects": 1}}})
    );

    // Cache-backed endpoints: every key, null before any daemon wrote.
    let cached: [(&str, &[&str]); 16] = [
        ("/recon/async", &["async_pending", "async_pending_last"]),
        (
            "/recon/replication",
            &["object_replication_last", "object_replication_time", "replication_last", "replication_stats", "replication_time"],
        ),
        (
            "/recon/replication/object",
            &["object_replication_last", "object_replication_time", "replication_last", "replication_stats", "replication_time"],
        ),
        ("/recon/replication/container", &["replication_last", "replication_stats", "replication_time"]),
        ("/recon/replication/account", &["replication_last", "replication_stats", "replication_time"]),
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
        ("/recon/reconstruction/object", &["object_reconstruction_last", "object_reconstruction_time"]),
        ("/recon/sharding", &["sharding_last", "sharding_stats", "sharding_time"]),
        ("/recon/driveaudit", &["drive_audit_errors"]),
        ("/recon/relinker", &["devices", "workers"]),
        ("/recon/sockstat", &["orphan", "tcp6_in_use", "tcp_in_use", "tcp_mem_allocated_bytes", "time_wait"]),
    ];
    for (path, want) in cached {
        let v = node.json(path);
        assert_eq!(keys(&v), want, "{path}");
        if path != "/recon/sockstat" {
            assert!(v.as_object().unwrap().values().all(Value::is_null), "{path}: {v}");
        }
    }
    // ... and the daemons' figures once the cache files exist.
    let cache = root.join("cache");
    std::fs::write(cache.join("object.recon"), r#"{"async_pending": 3, "async_pending_last": 1700000000.5}"#).unwrap();
    std::fs::write(cache.join("container.recon"), r#"{"container_updater_sweep": 0.25, "replication_stats": {"attempted": 4}}"#).unwrap();
    std::fs::write(cache.join("drive.recon"), r#"{"drive_audit_errors": 1}"#).unwrap();
    assert_eq!(node.json("/recon/async"), json!({"async_pending": 3, "async_pending_last": 1700000000.5}));
    assert_eq!(node.json("/recon/updater/container"), json!({"container_updater_sweep": 0.25}));
    assert_eq!(node.json("/recon/replication/container")["replication_stats"], json!({"attempted": 4}));
    assert_eq!(node.json("/recon/driveaudit"), json!({"drive_audit_errors": 1}));

    // System figures.
    let load = node.json("/recon/load");
    assert_eq!(keys(&load), ["15m", "1m", "5m", "processes", "tasks"]);
    assert!(load["1m"].is_f64() && load["processes"].is_u64() && load["tasks"].is_string());
    assert!(node.json("/recon/mem")["MemTotal"].as_str().is_some_and(|v| v.ends_with("kB")));
    assert!(node.json("/recon/sockstat")["tcp_in_use"].is_u64());
    assert_eq!(node.json("/recon/version"), json!({"version": common::VERSION}));
    let t = node.get("/recon/time");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let t: f64 = t.text().parse().unwrap_or_else(|_| panic!("/recon/time is a bare number: {}", t.text()));
    assert!((t - now).abs() < 3600.0, "{t} vs {now}");
    assert_eq!(node.json("/recon/devices"), json!({ format!("{}/node", root.display()): ["sda", "sdb"] }));

    // Anything else: 404 with Swift's text.
    for p in ["/recon/bogus", "/recon/replication/bogus", "/recon/updater/account", "/recon/"] {
        let r = node.get(p);
        assert_eq!((r.status, r.text()), (404, format!("Invalid path: {p}")), "{p}");
        assert_eq!(r.header("content-type"), Some("text/plain"));
    }

    // The container server's own routes are unchanged.
    assert_eq!(node.get("/sda/0/a/c").status, 404);
    let r = http_request(node.proc.port, "OPTIONS", "/recon/mem");
    assert_eq!(r.header("server").map(|s| s.split('/').next().unwrap()), Some("container-server"));
}

#[test]
fn mount_check_does_not_change_what_recon_reports() {
    // Swift's recon always checks for real mount points.
    let node = start("healthcheck recon container-server", "mount_check = true", "");
    assert_eq!(node.json("/recon/unmounted"), json!([{"device": "sda", "mounted": false}]));
    let du = node.json("/recon/diskusage");
    assert_eq!(du[0]["mounted"], json!(false));
    assert_eq!(du[1]["mounted"], json!(true));
}

#[test]
fn recon_cache_path_in_default_is_honoured() {
    let node = start("recon container-server", "mount_check = false\nrecon_cache_path = {root}/cache", "");
    assert_eq!(node.json("/recon/auditor/account")["account_audits_passed"], Value::Null);
    std::fs::write(node.path("cache/account.recon"), r#"{"account_audits_passed": 9}"#).unwrap();
    assert_eq!(node.json("/recon/auditor/account")["account_audits_passed"], json!(9));
}

#[test]
fn without_recon_in_the_pipeline_recon_paths_are_ordinary_paths() {
    let node = start("container-server", "mount_check = false", "");
    let r = node.get("/recon/version");
    assert_ne!(r.header("content-type"), Some("application/json"));
    assert_ne!(r.status, 200);
}
