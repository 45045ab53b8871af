//! A cluster spread over three hosts (127.0.0.1, 127.0.0.2, 127.0.0.3),
//! as `swift-saio --hosts 3` starts it: the rings hold three hosts, the
//! proxy reaches servers on all of them, each server answers for its own
//! devices on its own address, and the daemons, whose servers share ports
//! across hosts as on real nodes, each find exactly their own devices
//! (Swift's `is_local_device` over `bind_ip` and `bind_port`), so
//! replication still heals a primary that missed a write.

use cluster::client::{login, request};
use cluster::{Cluster, Options, Placement};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const HOSTS: [&str; 3] = ["127.0.0.1", "127.0.0.2", "127.0.0.3"];

/// How long replication may take to converge on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(180);

fn start(dir: &std::path::Path) -> Cluster {
    Cluster::start(Options { hosts: 3, ..Options::for_test(dir) }).expect("a 3-host cluster starts")
}

fn ring(c: &Cluster, kind: &str) -> ring::Ring {
    let conf = common::swift_conf::SwiftConf::load_dir(&c.etc).unwrap();
    ring::Ring::load_named(&c.etc, kind, conf.hash.clone()).unwrap()
}

/// The object server (1-based, as in the configs) that holds device `d`.
fn server_of(d: &ring::Device) -> usize {
    d.device[3..].parse().unwrap()
}

fn has_data(c: &Cluster, p: &Placement, d: &ring::Device) -> bool {
    p.data_file(c, d).is_some()
}

#[test]
fn three_hosts_in_the_rings_each_server_on_its_own_address() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    assert_eq!(c.host_ips(), HOSTS);
    // Every ring holds the three hosts; each device carries the address
    // its server binds, and a partition's replicas are on three hosts.
    for kind in ["object", "container", "account"] {
        let r = ring(&c, kind);
        let devs: Vec<ring::Device> = r.table().devs().iter().flatten().cloned().collect();
        let ips: BTreeSet<&str> = devs.iter().map(|d| d.ip.as_str()).collect();
        assert_eq!(ips, HOSTS.into_iter().collect(), "{kind} ring");
        for d in &devs {
            let server = c.procs.iter().find(|p| p.name == format!("{kind}-server {}", server_of(d))).unwrap();
            assert_eq!((d.ip.as_str(), d.port), (server.ip.as_str(), server.port), "{kind} {}", d.device);
            assert_eq!((d.replication_ip.as_str(), d.replication_port), (d.ip.as_str(), d.port));
        }
        for container in (0..20).map(|n| format!("c{n}")) {
            let (_, nodes) = r.get_nodes("AUTH_test", Some(&container), None).unwrap();
            let on: BTreeSet<&str> = nodes.iter().map(|d| d.ip.as_str()).collect();
            assert_eq!(on.len(), 3, "{kind}: one replica per host: {nodes:?}");
        }
    }
    // Servers of one kind on different hosts share a port, as on real
    // nodes: only the address tells them apart.
    let ports: BTreeSet<u16> = c.procs.iter().filter(|p| p.name.starts_with("object-server ")).map(|p| p.port).collect();
    assert_eq!(ports.len(), 2, "4 object servers on 3 hosts: two on the first, sharing one port with the others");

    // Through the proxy (on the first address) to servers on all three.
    let s = login(&c.auth_url(), "test:tester", "testing");
    assert_eq!(s.req("PUT", "/photos", &[], b"").status, 201);
    assert_eq!(s.req("PUT", "/photos/cat.jpg", &[], b"meow").status, 201);
    let r = s.req("GET", "/photos/cat.jpg", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "meow"));
    let p = c.placement("AUTH_test", "photos", "cat.jpg").unwrap();
    for d in &p.primaries {
        let r = request("GET", &p.direct_url(d, "AUTH_test", "photos", "cat.jpg"), &[], b"");
        assert_eq!((r.status, r.text().as_str()), (200, "meow"), "{} on {}", d.device, d.ip);
    }
    let r = s.req("GET", "/photos?format=json", &[], b"");
    assert!(r.text().contains("cat.jpg"), "{}", r.text());

    // Each storage server answers recon on its own address, for its own
    // device, from its host's recon cache.
    for p in c.procs.iter().filter(|p| p.port != 0 && p.name != "proxy-server") {
        let device = format!("sdb{}", p.name.rsplit(' ').next().unwrap());
        let r = request("GET", &format!("http://{}:{}/recon/devices", p.ip, p.port), &[], b"");
        assert_eq!(r.status, 200, "{}", p.name);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let listed: Vec<&str> =
            v.as_object().unwrap().values().next().unwrap().as_array().unwrap().iter().filter_map(|d| d.as_str()).collect();
        assert_eq!(listed, [device.as_str()], "{} on {}:{}", p.name, p.ip, p.port);
        let r = request("GET", &format!("http://{}:{}/recon/ringmd5", p.ip, p.port), &[], b"");
        assert_eq!(r.status, 200, "{}", p.name);
    }
    // Every process logs to logs/<name>.log.
    for name in ["proxy-server", "object-server-1", "container-server-3", "account-server-2", "object-updater-4"] {
        assert!(c.log_dir().join(format!("{name}.log")).is_file(), "{name}.log");
    }
}

#[test]
fn replication_across_hosts_finds_its_own_devices_and_heals_a_primary() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut c = start(root);
    let s = login(&c.auth_url(), "test:tester", "testing");
    assert_eq!(s.req("PUT", "/a", &[], b"").status, 201);
    // A primary on the second host misses the write; a handoff stands in.
    let p = c.placement("AUTH_test", "a", "o").unwrap();
    let down = p.primaries.iter().find(|d| d.ip == HOSTS[1]).expect("a primary on every host").clone();
    c.servers("object")[server_of(&down) - 1].kill();
    assert_eq!(s.req("PUT", "/a/o", &[], b"while one was down").status, 201);
    c.servers("object")[server_of(&down) - 1].restart("").unwrap();
    assert!(!has_data(&c, &p, &down), "the primary that was down missed the write");
    assert!(p.others.iter().any(|h| has_data(&c, &p, h)), "a handoff holds it");

    let end = Instant::now() + DEADLINE;
    loop {
        for i in 1..=4 {
            c.run_once("object-replicator", "object", i, &[]).expect("the object replicator runs");
        }
        let done = has_data(&c, &p, &down) && p.others.iter().all(|h| !p.hash_dir(&c, h).exists());
        if done {
            break;
        }
        assert!(Instant::now() < end, "the primary was not filled in, or the handoff kept the object");
    }
    let r = request("GET", &p.direct_url(&down, "AUTH_test", "a", "o"), &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "while one was down"));
    for i in 1..=4 {
        c.run_once("container-replicator", "container", i, &[]).expect("the container replicator runs");
        c.run_once("account-replicator", "account", i, &[]).expect("the account replicator runs");
    }

    // Each daemon found its own devices in the rings, and only those:
    // servers on other hosts listen on the same port.
    for daemon in ["object-replicator", "container-replicator", "account-replicator"] {
        for i in 1..=4 {
            let log = std::fs::read_to_string(c.log_dir().join(format!("{daemon}-{i}.log"))).unwrap();
            assert!(!log.contains("Can't find itself"), "{daemon} {i}:\n{log}");
            assert!(!log.contains("Skipping"), "{daemon} {i} took another host's device for its own:\n{log}");
        }
    }
    for i in 1..=4 {
        let names: Vec<String> = std::fs::read_dir(root.join("devices").join(i.to_string()))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [format!("sdb{i}")], "server {i} touched only its own device");
    }
    // Each host keeps its own recon cache, and the replicators of every
    // host reported there.
    for ip in HOSTS {
        let server = c.procs.iter().find(|p| p.ip == ip && p.name.starts_with("object-server ")).unwrap();
        let r = request("GET", &format!("http://{ip}:{}/recon/replication/object", server.port), &[], b"");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert!(v["replication_last"].is_number(), "{ip}: {v}");
        assert!(root.join("cache").join(ip).join("object.recon").is_file(), "{ip}");
    }
}
