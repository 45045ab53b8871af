//! The container auditor against a real cluster: a container database
//! replica corrupted on disk is found by `swift-container-auditor once` on
//! its node and quarantined with its directory, the other replicas are left
//! as they were, the container still answers through the proxy, and recon
//! reports the failed audit as `swift-recon container --auditor` reads it;
//! the account auditor passes every account replica.

use cluster::client::{login, request};
use cluster::{Cluster, Options};
use common::testing::files_under;
use std::path::PathBuf;

/// The container's database file on each of its primaries, with the
/// primary and the index of its servers.
fn container_dbs(c: &Cluster, account: &str, container: &str) -> Vec<(ring::Device, usize, PathBuf)> {
    let conf = common::swift_conf::SwiftConf::load_dir(&c.etc).unwrap();
    let ring = ring::Ring::load_named(&c.etc, "container", conf.hash.clone()).unwrap();
    let (part, primaries) = ring.get_nodes(account, Some(container), None).unwrap();
    let hash = conf.hash.hash_path(account, Some(container), None).unwrap();
    primaries
        .into_iter()
        .map(|d| {
            let db = c.device_dir(&d).join(format!("containers/{part}/{}/{hash}/{hash}.db", &hash[hash.len() - 3..]));
            let i = d.device[3..].parse().expect("sdb<i>");
            (d, i, db)
        })
        .collect()
}

fn recon(port: u16, what: &str) -> serde_json::Value {
    let r = request("GET", &format!("http://127.0.0.1:{port}/recon/{what}"), &[], b"");
    assert_eq!(r.status, 200, "/recon/{what}");
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn a_corrupt_container_replica_is_quarantined_and_the_others_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(Options::for_test(dir.path())).expect("cluster starts");
    let s = login(&c.auth_url(), "test:tester", "testing");
    assert_eq!(s.req("PUT", "/audited", &[], b"").status, 201);
    assert_eq!(s.req("PUT", "/audited/o", &[], b"some bytes").status, 201);
    let dbs = container_dbs(&c, "AUTH_test", "audited");
    assert_eq!(dbs.len(), 3);
    for (_, _, db) in &dbs {
        assert!(db.is_file(), "{} exists", db.display());
    }
    let (bad_dev, bad, bad_db) = dbs[0].clone();
    // Overwrite SQLite's header: the file is no longer a database.
    cluster::rot(&bad_db, 0, 100).unwrap();

    // An audit of another device of that node does not touch it.
    c.run_once("container-auditor", "container", bad, &["--devices", "sdb99"]).unwrap();
    assert!(bad_db.is_file());

    c.run_once("container-auditor", "container", bad, &[]).unwrap();
    let hash_dir = bad_db.parent().unwrap();
    let device = c.device_dir(&bad_dev);
    let quarantined = device.join("quarantined/containers").join(hash_dir.file_name().unwrap());
    assert!(quarantined.join(bad_db.file_name().unwrap()).is_file(), "the database is in {}", quarantined.display());
    assert!(!hash_dir.exists(), "the whole hash directory moved");
    // What swift-recon container --auditor reads (the nodes share one
    // recon cache: read it before another node's audit rewrites it).
    let port = bad_dev.port;
    let stats = recon(port, "auditor/container");
    assert_eq!(stats["container_audits_failed"], 1, "{stats}");
    assert_eq!(stats["container_audits_passed"], 0, "{stats}");
    assert!(stats["container_auditor_pass_completed"].as_f64().is_some(), "{stats}");
    assert!(stats["container_audits_since"].as_f64().unwrap() > 1.0e9, "{stats}");
    assert_eq!(recon(port, "quarantined")["containers"], 1);

    // The other replicas: not touched, and each one's own audit passes.
    for (d, i, path) in &dbs[1..] {
        assert!(path.is_file(), "{} stays", path.display());
        assert!(files_under(&c.device_dir(d).join("quarantined")).is_empty());
        c.run_once("container-auditor", "container", *i, &[]).unwrap();
        assert!(path.is_file());
        let stats = recon(d.port, "auditor/container");
        assert_eq!((stats["container_audits_passed"].as_u64(), stats["container_audits_failed"].as_u64()), (Some(1), Some(0)), "{stats}");
    }
    // The account auditor passes the account's three replicas (recon read
    // after each node's pass, the cache being shared).
    let mut passed = 0;
    for i in 1..=c.opts.devices {
        c.run_once("account-auditor", "account", i, &[]).unwrap();
        let port = c.servers("account")[i - 1].port;
        let stats = recon(port, "auditor/account");
        assert_eq!(stats["account_audits_failed"], 0, "{stats}");
        assert!(stats["account_auditor_pass_completed"].as_f64().is_some(), "{stats}");
        passed += stats["account_audits_passed"].as_u64().unwrap();
    }
    assert_eq!(passed, 3);
    // Clients still see the container and its object.
    let r = s.req("GET", "/audited", &[], b"");
    assert_eq!((r.status, r.text().trim()), (200, "o"));
}
