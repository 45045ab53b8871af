//! The account reaper against a real cluster: a reseller admin DELETEs an
//! account through the proxy, `swift-account-reaper once` runs on every
//! account server, and then none of the account's objects or containers is
//! left on any of their primaries, while another account keeps its data.

use cluster::client::{login, request};
use cluster::{Cluster, Options};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "AUTH_test2";

/// The direct URLs of a container on each of its primaries.
fn container_urls(c: &Cluster, container: &str) -> Vec<String> {
    let conf = common::swift_conf::SwiftConf::load_dir(&c.etc).unwrap();
    let ring = ring::Ring::load_named(&c.etc, "container", conf.hash).unwrap();
    let (part, nodes) = ring.get_nodes(ACCOUNT, Some(container), None).unwrap();
    let quoted = common::http::quote_path(container);
    nodes.iter().map(|d| format!("http://{}:{}/{}/{part}/{ACCOUNT}/{quoted}", d.ip, d.port, d.device)).collect()
}

/// The direct URLs of an object on each of its primaries.
fn object_urls(c: &Cluster, container: &str, object: &str) -> Vec<String> {
    let p = c.placement(ACCOUNT, container, object).unwrap();
    let (cq, oq) = (common::http::quote_path(container), common::http::quote_path(object));
    p.primaries.iter().map(|d| p.direct_url(d, ACCOUNT, &cq, &oq)).collect()
}

fn statuses(urls: &[String]) -> Vec<u16> {
    urls.iter().map(|u| request("HEAD", u, &[], b"").status).collect()
}

#[test]
fn a_deleted_accounts_objects_and_containers_are_reaped_from_every_primary() {
    let dir = tempfile::tempdir().unwrap();
    let c = Cluster::start(Options::for_test(dir.path())).expect("cluster starts");
    let doomed = login(&c.auth_url(), "test2:tester2", "testing2");
    let kept = login(&c.auth_url(), "test:tester", "testing");
    // MD5 modulo 3 of these names is 1, 2, 0 and 2: each primary of the
    // account reaps its share.
    let containers = ["c1", "c2", "c3", "c 4"];
    let objects = ["a", "b/c", "d e", "f\u{e9}"];
    for cont in containers {
        let cq = common::http::quote_path(cont);
        assert_eq!(doomed.req("PUT", &format!("/{cq}"), &[], b"").status, 201);
        for o in objects {
            let oq = common::http::quote_path(o);
            assert_eq!(doomed.req("PUT", &format!("/{cq}/{oq}"), &[], o.as_bytes()).status, 201);
        }
    }
    assert_eq!(kept.req("PUT", "/keep", &[], b"").status, 201);
    assert_eq!(kept.req("PUT", "/keep/k", &[], b"kept").status, 201);
    for cont in containers {
        assert!(statuses(&container_urls(&c, cont)).iter().all(|s| *s == 204), "{cont} on every primary");
        for o in objects {
            assert_eq!(statuses(&object_urls(&c, cont, o)), vec![200; 3], "{cont}/{o} on every primary");
        }
    }

    // Only a reseller admin may delete an account.
    let account_url = format!("http://127.0.0.1:{}/v1/{ACCOUNT}", c.proxy_port);
    assert_eq!(request("DELETE", &account_url, &[("X-Auth-Token", kept.token.as_str())], b"").status, 403);
    let admin = login(&c.auth_url(), "admin:admin", "admin");
    let r = request("DELETE", &account_url, &[("X-Auth-Token", admin.token.as_str())], b"");
    assert_eq!(r.status, 204, "{}", r.text());

    // With delay_reaping not yet over, a pass leaves everything.
    let bin_dir = std::env::current_exe().unwrap().parent().and_then(|p| p.parent()).unwrap().to_path_buf();
    for i in 1..=c.opts.devices {
        let base = std::fs::read_to_string(c.etc.join(format!("account-server/{i}.conf"))).unwrap();
        let delayed = dir.path().join(format!("delayed-{i}.conf"));
        // The layout has an [account-reaper] section already: the option goes in it.
        let text = if base.contains("[account-reaper]\n") {
            base.replace("[account-reaper]\n", "[account-reaper]\ndelay_reaping = 3600\n")
        } else {
            format!("{base}\n[account-reaper]\ndelay_reaping = 3600\n")
        };
        std::fs::write(&delayed, text).unwrap();
        let st = std::process::Command::new(bin_dir.join("swift-account-reaper")).arg(&delayed).arg("once").status().unwrap();
        assert!(st.success());
    }
    for cont in containers {
        assert!(statuses(&container_urls(&c, cont)).iter().all(|s| *s == 204), "{cont} waits out delay_reaping");
        assert_eq!(statuses(&object_urls(&c, cont, objects[0])), vec![200; 3]);
    }

    // One pass on every account server reaps; a container DELETE that
    // raced its objects' row removals (409) is retried by the next pass.
    let deadline = Instant::now() + Duration::from_secs(60);
    let servers = c.opts.devices;
    let gone = |c: &Cluster| {
        containers.iter().all(|cont| {
            statuses(&container_urls(c, cont)).iter().all(|s| *s == 404)
                && objects.iter().all(|o| statuses(&object_urls(c, cont, o)).iter().all(|s| *s == 404))
        })
    };
    loop {
        for i in 1..=servers {
            c.run_once("account-reaper", "account", i, &[]).unwrap();
        }
        if gone(&c) {
            break;
        }
        assert!(Instant::now() < deadline, "the account's data is still there after the reaper's passes");
    }
    for cont in containers {
        for o in objects {
            for u in object_urls(&c, cont, o) {
                let r = request("HEAD", &u, &[], b"");
                assert_eq!(r.status, 404, "{u}");
                assert!(r.header("x-backend-timestamp").is_some(), "{u}: a tombstone, so replication spreads the delete");
            }
        }
    }

    // The other account is untouched.
    let r = kept.req("GET", "/keep/k", &[], b"");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"kept"[..]));
    assert_eq!(kept.req("GET", "", &[], b"").text().trim(), "keep");
}
