//! The object auditor against a real cluster: a replica rotten on disk is
//! found by `swift-object-auditor once` on its node and quarantined, the
//! other replicas and the node's good objects are left as they were,
//! clients keep getting the right bytes, and recon reports what happened.

use cluster::client::{login, request};
use cluster::{body_of, rot, Cluster, Options};
use common::testing::files_under;
use std::path::{Path, PathBuf};

fn start(dir: &Path) -> Cluster {
    Cluster::start(Options::for_test(dir)).expect("cluster starts")
}

/// The directory of ring device `d`, and the index `i` of its servers.
fn device_dir(c: &Cluster, d: &ring::Device) -> (PathBuf, usize) {
    (c.device_dir(d), d.device[3..].parse().expect("sdb<i>"))
}

/// Where `/AUTH_test/<container>/<object>` lives: its hash dir below a
/// device, and its primaries.
fn placement(c: &Cluster, container: &str, object: &str) -> (String, Vec<ring::Device>) {
    let p = c.placement("AUTH_test", container, object).unwrap();
    (p.hash_dir_below_device(), p.primaries)
}

/// The `.data` file of a replica.
fn data_file(device: &Path, hash_dir: &str) -> Option<PathBuf> {
    std::fs::read_dir(device.join(hash_dir)).ok()?.flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "data"))
}

/// What `swift-recon <args>` prints about the cluster.
fn swift_recon(c: &Cluster, args: &[&str]) -> String {
    let exe = std::env::current_exe().unwrap();
    let bin_dir = exe.parent().and_then(Path::parent).unwrap();
    let out = std::process::Command::new(bin_dir.join("swift-recon")).args(args).arg("--swiftdir").arg(&c.etc).output().unwrap();
    assert!(out.status.success(), "swift-recon {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn recon(port: u16, what: &str) -> serde_json::Value {
    let r = request("GET", &format!("http://127.0.0.1:{port}/recon/{what}"), &[], b"");
    assert_eq!(r.status, 200, "/recon/{what}");
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn a_rotten_replica_is_quarantined_and_the_others_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path());
    let s = login(&c.auth_url(), "test:tester", "testing");
    assert_eq!(s.req("PUT", "/audit", &[], b"").status, 201);
    // Several of the auditor's read trips long.
    let data = body_of(3 * 1024 * 1024 + 5, 7);
    assert_eq!(s.req("PUT", "/audit/big", &[], &data).status, 201);
    let (hash_dir, primaries) = placement(&c, "audit", "big");
    let (bad_dev, bad) = device_dir(&c, &primaries[0]);
    // A good object on the same node as the rotten replica.
    let small = b"a small good object".to_vec();
    let mut good_here = None;
    for n in 0..100 {
        let name = format!("small{n}");
        let (h, p) = placement(&c, "audit", &name);
        if p.iter().any(|d| d.device == primaries[0].device) {
            assert_eq!(s.req("PUT", &format!("/audit/{name}"), &[], &small).status, 201);
            good_here = Some((name, h));
            break;
        }
    }
    let (good_name, good_here) = good_here.expect("an object placed on the node");
    let bad_data = data_file(&bad_dev, &hash_dir).expect("the replica's .data");
    let data_name = bad_data.file_name().unwrap().to_owned();
    rot(&bad_data, 2_000_000, 16).unwrap();

    // An audit of another device of that node does not touch it.
    c.run_once("object-auditor", "object", bad, &["--devices", "sdb99"]).unwrap();
    assert!(bad_data.is_file());

    c.run_once("object-auditor", "object", bad, &[]).unwrap();
    let quarantined = bad_dev.join("quarantined/objects").join(hash_dir.rsplit('/').next().unwrap()).join(&data_name);
    assert!(quarantined.is_file(), "the rotten .data is in {}", quarantined.display());
    assert!(!bad_data.exists());
    assert_eq!(files_under(&bad_dev.join("quarantined")), vec![quarantined.clone()], "nothing else is quarantined");
    assert!(data_file(&bad_dev, &good_here).is_some(), "the node's good object stays");
    for d in &primaries[1..] {
        let (dev, _) = device_dir(&c, d);
        let f = data_file(&dev, &hash_dir).expect("the other replicas stay");
        assert_eq!(std::fs::read(&f).unwrap(), data, "{} untouched", f.display());
        assert!(files_under(&dev.join("quarantined")).is_empty());
    }
    // What swift-recon --auditor and -q read (the cluster's nodes share
    // one recon cache: read it before another node's audit rewrites it).
    let port = c.servers("object")[bad - 1].port;
    let stats = recon(port, "auditor/object");
    let all = &stats["object_auditor_stats_ALL"];
    assert_eq!(all["quarantined"], 1, "{stats}");
    assert_eq!(all["errors"], 0, "{stats}");
    assert!(all["passes"].as_u64().unwrap() >= 2, "{stats}");
    assert!(all["bytes_processed"].as_u64().unwrap() >= data.len() as u64, "{stats}");
    assert!(stats["object_auditor_stats_ZBF"]["passes"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(recon(port, "quarantined")["objects"], 1);
    let out = swift_recon(&c, &["object", "--auditor", "-q"]);
    assert!(out.contains("[ALL_quarantined_last_path] low: 1, high: 1"), "{out}");
    assert!(out.contains("[quarantined_objects] low: 0, high: 1, avg: 0.2, total: 1,"), "{out}");
    // An audit of a good replica's node finds nothing.
    let (good_dev, good) = device_dir(&c, &primaries[1]);
    c.run_once("object-auditor", "object", good, &[]).unwrap();
    assert!(data_file(&good_dev, &hash_dir).is_some());

    for i in 0..10 {
        let r = s.req("GET", "/audit/big", &[], b"");
        assert_eq!(r.status, 200, "GET {i}");
        assert!(r.is_complete() && r.body == data, "GET {i}: the right bytes");
    }
    assert_eq!(s.req("GET", &format!("/audit/{good_name}"), &[], b"").body, small);

    // The quarantine invalidated the suffix: one replication pass on every
    // node brings the corrupted primary a good copy again.
    for i in 1..=c.opts.devices {
        c.run_once("object-replicator", "object", i, &[]).unwrap();
    }
    let restored = data_file(&bad_dev, &hash_dir).expect("the corrupted primary holds the object again");
    assert_eq!(std::fs::read(&restored).unwrap(), data, "{} is a good copy", restored.display());
    let direct = format!(
        "http://{}:{}/{}/{}/AUTH_test/audit/big",
        primaries[0].ip,
        primaries[0].port,
        primaries[0].device,
        hash_dir.split('/').nth(1).unwrap()
    );
    let r = request("GET", &direct, &[], b"");
    assert_eq!((r.status, r.body == data), (200, true), "served by the restored primary");
}
