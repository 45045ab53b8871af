//! swift-recon against tiny fake servers in the test process: the failure
//! cases a real cluster rarely shows on demand (a server of the wrong type,
//! a dead host, a hung host, a body that is not JSON, a changed ring) and
//! the report lines for figures we choose.

mod support;

use serde_json::json;
use std::sync::{Arc, Mutex};
use support::*;

const RULE: &str = recon::format::RULE;

#[test]
fn validate_servers_reports_exactly_the_bad_hosts() {
    let good = Fake::start("127.0.0.1", |_, _| Reply::options("object"));
    let wrong = Fake::start("127.0.0.1", |_, _| Reply::options("container"));
    let hung = Fake::start("127.0.0.1", |_, _| Reply::Hang);
    let unavailable = Fake::start("127.0.0.1", |_, _| Reply::Http { status: 503, headers: vec![], body: String::new() });
    let anonymous = Fake::start("127.0.0.1", |_, _| Reply::Http { status: 200, headers: vec![], body: String::new() });
    let garbage = Fake::start("127.0.0.1", |_, _| Reply::Raw(b"this is not HTTP\r\n\r\n"));
    let dead = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let hosts = [good.host(), wrong.host(), hung.host(), unavailable.host(), anonymous.host(), garbage.host(), ("127.0.0.1", dead)];
    let etc = swift_dir(dir.path(), &hosts);

    let out = recon(&["object", "--validate-servers", "-t", "1", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 1, "{}", out.stdout);
    let lines = out.lines();
    assert_eq!(lines[0], RULE);
    assert_eq!(lines[1], "--> Starting reconnaissance on 7 hosts (object)");
    assert_eq!(lines[2], RULE);
    assert!(lines[3].ends_with("] Validating server type 'object' on 7 hosts..."), "{}", lines[3]);
    out.assert_line("1/7 hosts ok, 6 error[s] while checking hosts.");
    out.assert_line(&format!("Invalid: {} is container-server", wrong.url()));
    assert_eq!(out.stdout.matches("Invalid: ").count(), 1, "{}", out.stdout);
    out.assert_line(&format!("-> {}: timed out", hung.url()));
    out.assert_line(&format!("-> {}: HTTP Error 503: Service Unavailable", unavailable.url()));
    out.assert_line(&format!("-> {}: no Server header in the OPTIONS response", anonymous.url()));
    out.assert_line(&format!("-> http://127.0.0.1:{dead}/: <urlopen error [Errno 111] Connection refused>"));
    assert!(out.stdout.contains(&format!("-> {}: ", garbage.url())), "{}", out.stdout);
    assert!(!out.stdout.contains(&format!("-> {}:", good.url())), "{}", out.stdout);
    assert_eq!(*lines.last().unwrap(), RULE);

    // --suppress hides the connection errors but still counts them.
    let out = recon(&["--validate-servers", "-t", "1", "--suppress", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 1);
    out.assert_line("1/7 hosts ok, 6 error[s] while checking hosts.");
    assert!(!out.lines().iter().any(|l| l.starts_with("-> ")), "{}", out.stdout);
}

#[test]
fn validate_servers_passes_on_the_right_servers_of_each_type() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("swift.conf"), SWIFT_CONF).unwrap();
    for t in ["account", "container", "object"] {
        let a = Fake::start("127.0.0.1", move |_, _| Reply::options(t));
        let b = Fake::start("127.0.0.1", move |_, _| Reply::options(t));
        write_ring(&etc, t, &[a.host(), b.host()]);
    }
    let out = recon(&["account", "container", "object", "--validate-servers", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 0, "{}", out.stdout);
    assert_eq!(out.stdout.matches("2/2 hosts ok, 0 error[s] while checking hosts.").count(), 3, "{}", out.stdout);
    out.assert_line("--> Starting reconnaissance on 2 hosts (account)");
    out.assert_line("--> Starting reconnaissance on 2 hosts (container)");
    out.assert_line("--> Starting reconnaissance on 2 hosts (object)");
}

#[test]
fn md5_reports_the_host_whose_ring_differs_and_a_changed_local_ring() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(etc.join("swift.conf"), SWIFT_CONF).unwrap();
    // The rings must name the fakes before the fakes can know the ring's
    // md5, so the first fake reads it from here once the ring is written.
    let ring_sum = Arc::new(Mutex::new(String::new()));
    let conf_sum = md5_file(&etc.join("swift.conf"));
    // The fakes key their sums by their own swift_dir's full paths, which
    // must be matched by file name.
    let same = Fake::start("127.0.0.1", {
        let (r, c) = (ring_sum.clone(), conf_sum.clone());
        move |_, path| match path {
            "/recon/ringmd5" => {
                Reply::json(json!({"/srv/node1/etc/object.ring.gz": *r.lock().unwrap(), "/srv/node1/etc/account.ring.gz": "whatever"}))
            }
            "/recon/swiftconfmd5" => Reply::json(json!({"/srv/node1/etc/swift.conf": c})),
            _ => Reply::Http { status: 404, headers: vec![], body: String::new() },
        }
    });
    let other = Fake::start("127.0.0.1", move |_, path| match path {
        "/recon/ringmd5" => Reply::json(json!({"/srv/node2/etc/object.ring.gz": "0123456789abcdef0123456789abcdef"})),
        "/recon/swiftconfmd5" => Reply::json(json!({"/srv/node2/etc/swift.conf": conf_sum})),
        _ => Reply::Http { status: 404, headers: vec![], body: String::new() },
    });
    write_ring(&etc, "object", &[same.host(), other.host()]);
    *ring_sum.lock().unwrap() = md5_file(&etc.join("object.ring.gz"));
    let swiftdir = etc.to_str().unwrap();

    let out = recon(&["--md5", "--swiftdir", swiftdir]);
    assert_eq!(out.status, 0, "{}", out.stdout);
    assert!(out.stdout.contains("] Checking ring md5sums\n"), "{}", out.stdout);
    out.assert_line(&format!(
        "!! http://127.0.0.1:{}/recon/ringmd5 (object.ring.gz => 0123456789abcdef0123456789abcdef) doesn't match on disk md5sum",
        other.port
    ));
    assert_eq!(out.stdout.matches("!! ").count(), 1, "{}", out.stdout);
    out.assert_line("1/2 hosts matched, 1 error[s] while checking hosts.");
    assert!(out.stdout.contains("] Checking swift.conf md5sum\n"), "{}", out.stdout);
    out.assert_line("2/2 hosts matched, 0 error[s] while checking hosts.");

    // Change the local object ring (same hosts, another layout): now the
    // host that agreed before disagrees too.
    let before = md5_file(&etc.join("object.ring.gz"));
    let mut b = ring::builder::RingBuilder::new(5, 1.0, 1).unwrap();
    let ring = ring::RingData::load(&etc.join("object.ring.gz")).unwrap();
    for d in ring.devs.iter().flatten() {
        b.add_dev(d.clone(), None).unwrap();
    }
    b.rebalance(Some(2)).unwrap();
    b.get_ring().save(&etc.join("object.ring.gz"), 1).unwrap();
    assert_ne!(before, md5_file(&etc.join("object.ring.gz")));
    let out = recon(&["object", "--md5", "-v", "--swiftdir", swiftdir]);
    out.assert_line(&format!("!! http://127.0.0.1:{}/recon/ringmd5 (object.ring.gz => {before}) doesn't match on disk md5sum", same.port));
    out.assert_line("0/2 hosts matched, 2 error[s] while checking hosts.");
    out.assert_line(&format!("-> On disk object.ring.gz md5sum: {}", md5_file(&etc.join("object.ring.gz"))));
    out.assert_line(&format!("-> http://127.0.0.1:{}/recon/swiftconfmd5 matches.", same.port));
}

#[test]
fn a_bad_answer_is_reported_for_its_host_and_the_rest_still_counts() {
    let good = Fake::start("127.0.0.1", |_, _| Reply::json(json!({"1m": 0.5, "5m": 0.25, "15m": 1.0, "tasks": "1/86", "processes": 42})));
    let html = Fake::start("127.0.0.1", |_, _| Reply::Http { status: 200, headers: vec![], body: "<html>oops</html>".into() });
    let shapeless = Fake::start("127.0.0.1", |_, _| Reply::json(json!({"load": 1})));
    let hung = Fake::start("127.0.0.1", |_, _| Reply::Hang);
    let dead = closed_port();
    let dir = tempfile::tempdir().unwrap();
    let etc = swift_dir(dir.path(), &[good.host(), html.host(), shapeless.host(), hung.host(), ("127.0.0.1", dead)]);
    let out = recon(&["-l", "-t", "1", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 0, "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("-> http://127.0.0.1:{}/recon/load: invalid JSON in the response: ", html.port)),
        "{}",
        out.stdout
    );
    out.assert_line(&format!("-> http://127.0.0.1:{}/recon/load: unexpected response: no '1m' in it", shapeless.port));
    out.assert_line(&format!("-> http://127.0.0.1:{}/recon/load: timed out", hung.port));
    out.assert_line(&format!("-> http://127.0.0.1:{dead}/recon/load: <urlopen error [Errno 111] Connection refused>"));
    out.assert_line("[1m_load_avg] low: 0, high: 0, avg: 0.5, total: 0, Failed: 0.0%, no_result: 0, reported: 1");
    out.assert_line("[5m_load_avg] low: 0, high: 0, avg: 0.2, total: 0, Failed: 0.0%, no_result: 0, reported: 1");
    out.assert_line("[15m_load_avg] low: 1, high: 1, avg: 1.0, total: 1, Failed: 0.0%, no_result: 0, reported: 1");
}

#[test]
fn disk_usage_and_unmounted_print_swifts_report() {
    let one = Fake::start("127.0.0.1", |_, path| match path {
        "/recon/diskusage" => Reply::json(json!([
            {"device": "sdb1", "mounted": true, "size": 1000, "used": 250, "avail": 750},
            {"device": "sdb2", "mounted": true, "size": 1000, "used": 500, "avail": 500},
        ])),
        _ => Reply::json(json!([])),
    });
    let two = Fake::start("127.0.0.2", |_, path| match path {
        "/recon/diskusage" => Reply::json(json!([
            {"device": "sdb1", "mounted": true, "size": 2000, "used": 1500, "avail": 500},
            {"device": "sdb9", "mounted": false, "size": "", "used": "", "avail": ""},
            {"device": "sdb3", "mounted": "[Errno 5] Input/output error", "size": "", "used": "", "avail": ""},
        ])),
        _ => Reply::json(json!([
            {"device": "sdb9", "mounted": false},
            {"device": "sdb3", "mounted": "[Errno 5] Input/output error"},
        ])),
    });
    let dir = tempfile::tempdir().unwrap();
    let etc = swift_dir(dir.path(), &[one.host(), two.host()]);
    let out = recon(&["-d", "--top", "2", "--lowest", "1", "-u", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 0, "{}", out.stdout);
    let stars = "*".repeat(69);
    let lines = out.lines();
    let start = lines.iter().position(|l| *l == "Distribution Graph:").expect(&out.stdout);
    assert_eq!(
        lines[start..].iter().take(12).copied().collect::<Vec<_>>(),
        [
            "Distribution Graph:",
            &format!(" 25%    1 {stars}"),
            &format!(" 50%    1 {stars}"),
            &format!(" 75%    1 {stars}"),
            "Disk usage: space used: 2250 of 4000",
            "Disk usage: space free: 1750 of 4000",
            "Disk usage: lowest: 25.0%, highest: 75.0%, avg: 56.25%",
            RULE,
            "TOP 2",
            "75.00%  127.0.0.2       sdb1",
            "50.00%  127.0.0.1       sdb2",
            "LOWEST 1",
        ]
    );
    out.assert_line("25.00%  127.0.0.1       sdb1");
    out.assert_line(&format!("-> http://127.0.0.2:{}/recon/diskusage/sdb3: Error: [Errno 5] Input/output error", two.port));
    out.assert_line(&format!("Not mounted: sdb9 on 127.0.0.2:{}", two.port));
    out.assert_line(&format!("Device errors: sdb3 on 127.0.0.2:{}", two.port));

    let out = recon(&["-d", "--human-readable", "--swiftdir", etc.to_str().unwrap()]);
    out.assert_line("Disk usage: space used: 2 kB of 4 kB");
}

#[test]
fn every_check_runs_against_swift_shaped_answers() {
    let a = fake_storage("127.0.0.1", "object", json!({}), json!({}));
    let b = fake_storage("127.0.0.2", "object", json!({}), json!({}));
    let dir = tempfile::tempdir().unwrap();
    let etc = swift_dir(dir.path(), &[a.host(), b.host()]);
    let out = recon(&["--all", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 0, "{}\n{}", out.stdout, out.stderr);
    for line in [
        "[async_pending] low: 3, high: 3, avg: 3.0, total: 6, Failed: 0.0%, no_result: 0, reported: 2",
        "[ALL_auditor] - No hosts returned valid data.",
        "[ZBF_auditor] - No hosts returned valid data.",
        "[updater_last_sweep] - No hosts returned valid data.",
        "[object_expiration_pass] - No hosts returned valid data.",
        "[object_reconstruction_time] - No hosts returned valid data.",
        "[replication_time] - No hosts returned valid data.",
        "[failure] - No hosts returned valid data.",
        "[quarantined_objects_0] low: 1, high: 1, avg: 1.0, total: 2, Failed: 0.0%, no_result: 0, reported: 2",
        "[quarantined_accounts] low: 0, high: 0, avg: 0.0, total: 0, Failed: 0.0%, no_result: 0, reported: 2",
        "[tcp_mem_allocated_bytes] low: 4096, high: 4096, avg: 4096.0, total: 8192, Failed: 0.0%, no_result: 0, reported: 2",
        "[drive_audit_errors] - No hosts returned valid data.",
        "2/2 hosts ok, 0 error[s] while checking hosts.",
        "Versions matched (2.38.3), 0 error[s] while checking hosts.",
        "Disk usage: lowest: 40.0%, highest: 40.0%, avg: 40.0%",
    ] {
        out.assert_line(line);
    }
    // Both hosts' clocks are ours.
    assert!(out.stdout.contains("2/2 hosts matched, 0 error[s] while checking hosts.\n"), "{}", out.stdout);
    assert!(!out.lines().iter().any(|l| l.starts_with("-> ")), "{}", out.stdout);

    // The account and container variants, and the refusals Swift prints.
    let out = recon(&["account", "-a", "--updater", "--auditor", "--sharding", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 0);
    out.assert_line("Error: Can't check asyncs on non object servers.");
    out.assert_line("Error: Can't check updaters on account servers.");
    out.assert_line("Error: Can't check sharding on non container servers.");
    out.assert_line("[account_auditor_pass_completed] - No hosts returned valid data.");
}

#[test]
fn bad_input_gives_a_clear_message_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = recon(&["--validate-servers", "--swiftdir", missing.to_str().unwrap()]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);

    let etc = swift_dir(dir.path(), &[("127.0.0.1", closed_port())]);
    std::fs::write(etc.join("container.ring.gz"), b"not a ring").unwrap();
    let out = recon(&["container", "--validate-servers", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("cannot load ring") && out.stderr.contains("container.ring.gz"), "{}", out.stderr);

    let out = recon(&["proxy", "--validate-servers", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 1);
    assert_eq!(out.lines()[1], "Invalid Server Type");

    let out = recon(&["--policy", "silver", "--validate-servers", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 2);
    out.assert_line("Invalid Storage Policy: silver");
    // An alias and an index name the policy.
    for p in ["gold", "0"] {
        let out = recon(&["--policy", p, "--suppress", "--validate-servers", "--swiftdir", etc.to_str().unwrap()]);
        out.assert_line("--> Starting reconnaissance on 1 hosts (object)");
    }

    let out = recon(&["--frobnicate"]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("swift-recon: error: no such option: --frobnicate"), "{}", out.stderr);
    let out = recon(&["-t", "soon"]);
    assert_eq!(out.status, 2);

    std::fs::remove_file(etc.join("swift.conf")).unwrap();
    let out = recon(&["--validate-servers", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("swift.conf"), "{}", out.stderr);

    let out = recon(&[]);
    assert_eq!(out.status, 0);
    assert!(out.stdout.contains("--validate-servers"));
}

#[test]
fn region_and_zone_filter_the_hosts() {
    let a = Fake::start("127.0.0.1", |_, _| Reply::options("object"));
    let b = Fake::start("127.0.0.1", |_, _| Reply::options("container"));
    let dir = tempfile::tempdir().unwrap();
    let etc = swift_dir(dir.path(), &[a.host(), b.host()]);
    let out = recon(&["-z", "1", "--validate-servers", "--swiftdir", etc.to_str().unwrap()]);
    assert_eq!(out.status, 0, "{}", out.stdout);
    out.assert_line("1/1 hosts ok, 0 error[s] while checking hosts.");
    let out = recon(&["--region", "2", "--validate-servers", "--swiftdir", etc.to_str().unwrap()]);
    out.assert_line("--> Starting reconnaissance on 0 hosts (object)");
}
