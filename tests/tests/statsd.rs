//! StatsD metrics from a running cluster: every server's config sets
//! `log_statsd_host` and `log_statsd_port` in `[DEFAULT]`, pointing at a
//! UDP socket of this test, which then sees Swift's metric names.
//!
//! As in Swift, a server's or daemon's metrics are named after its
//! `log_name`: the test cluster sets `log_name = object-server-<i>`, so the
//! object servers send `object-server-<i>.PUT.timing`; the proxy's request
//! metrics are always under `proxy-server.`.

use cluster::{Cluster, Options};
use std::collections::BTreeSet;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

/// Reads datagrams into `seen` (metric names, without value and type)
/// until `done` holds or 60 s pass; returns whether `done` held.
fn wait_for(collector: &UdpSocket, seen: &mut BTreeSet<String>, done: impl Fn(&BTreeSet<String>) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 2048];
    while !done(seen) {
        if Instant::now() > deadline {
            return false;
        }
        if let Ok(n) = collector.recv(&mut buf) {
            let datagram = String::from_utf8_lossy(&buf[..n]);
            if let Some((name, _)) = datagram.split_once(':') {
                seen.insert(name.to_string());
            }
        }
    }
    true
}

/// Whether some object server `i` sent `object-server-<i>.<metric>`.
fn from_an_object_server(seen: &BTreeSet<String>, metric: &str) -> bool {
    seen.iter().any(|m| {
        m.strip_prefix("object-server-").and_then(|r| r.split_once('.')).is_some_and(|(i, rest)| i.parse::<u32>().is_ok() && rest == metric)
    })
}

#[test]
fn a_put_and_a_get_are_sent_to_statsd_with_swifts_names() {
    let collector = UdpSocket::bind("127.0.0.1:0").unwrap();
    collector.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let port = collector.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let extra_conf = format!("log_statsd_host = 127.0.0.1\nlog_statsd_port = {port}\n");
    let c = Cluster::start(Options { extra_conf, ..Options::for_test(dir.path()) }).expect("cluster starts");
    let s = cluster::client::login(&c.auth_url(), "test:tester", "testing");
    assert_eq!(s.req("PUT", "/metrics", &[], b"").status, 201);
    assert_eq!(s.req("PUT", "/metrics/o", &[], b"some bytes").status, 201);
    let r = s.req("GET", "/metrics/o", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"some bytes"[..]));

    let mut seen = BTreeSet::new();
    let wanted = [
        "proxy-server.object.PUT.201.timing",
        "proxy-server.object.PUT.201.xfer",
        "proxy-server.object.GET.200.timing",
        "proxy-server.object.GET.200.first-byte.timing",
        "proxy-server.object.GET.200.xfer",
        "proxy-server.container.PUT.201.timing",
    ];
    let arrived = wait_for(&collector, &mut seen, |seen| {
        wanted.iter().all(|w| seen.contains(*w)) && from_an_object_server(seen, "PUT.timing") && from_an_object_server(seen, "GET.timing")
    });
    assert!(arrived, "missing some of {wanted:?} or object-server-<i>.PUT/GET.timing; got {seen:?}");

    // A daemon's counters: the container updater sends the new container's
    // listing to its account and counts the success (under the daemon's
    // log name, `container-updater-<i>` here).
    for i in 1..=4 {
        c.run_once("container-updater", "container", i, &[]).expect("container-updater runs");
    }
    let arrived =
        wait_for(&collector, &mut seen, |seen| seen.iter().any(|m| m.starts_with("container-updater") && m.ends_with(".successes")));
    assert!(arrived, "no container-updater successes; got {seen:?}");
}
