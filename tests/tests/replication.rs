//! Object replication over SSYNC, against the real binaries, after Swift's
//! probe tests: a primary that missed writes is filled in and the handoff
//! that stood in for it lets go, a DELETE made while a primary was down
//! reaches it (no stale reads), a wiped device is refilled, and a POST made
//! while a primary was down travels.
//!
//! Each test runs `swift-object-replicator <object-server i.conf> once` on
//! every object server, round after round, until what a user would see has
//! converged, or a deadline passes.

use cluster::client::{login, request, Session};
use cluster::{Cluster, Options, Placement};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long replication may take to converge on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(180);

fn start(dir: &Path) -> Cluster {
    Cluster::start(Options::for_test(dir)).expect("cluster starts")
}

/// Where `/AUTH_test/<container>/<object>` lives.
fn placement(c: &Cluster, container: &str, object: &str) -> Placement {
    c.placement("AUTH_test", container, object).unwrap()
}

/// The file names in `d`'s hash directory of the object.
fn files(c: &Cluster, p: &Placement, d: &ring::Device) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(p.hash_dir(c, d))
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// The object straight from `d`'s object server.
fn direct(p: &Placement, d: &ring::Device, container: &str, object: &str, method: &str) -> cluster::client::Resp {
    request(method, &p.direct_url(d, "AUTH_test", container, object), &[], b"")
}

/// The object server (1-based, as in the configs) that holds device `d`.
fn server_of(d: &ring::Device) -> usize {
    d.device[3..].parse().unwrap()
}

/// Runs the replicator once on every object server, round after round,
/// until `converged` says nothing is left to do (`Err` says what is).
fn replicate_until(c: &Cluster, mut converged: impl FnMut() -> Result<(), String>) {
    let end = Instant::now() + DEADLINE;
    let mut rounds = 0;
    loop {
        for i in 1..=4 {
            c.run_once("object-replicator", "object", i, &[]).expect("the replicator runs");
        }
        rounds += 1;
        match converged() {
            Ok(()) => return,
            Err(why) if Instant::now() > end => panic!("not converged after {rounds} rounds of replication: {why}"),
            Err(_) => {}
        }
    }
}

/// Object names in `container` for which device `d` is a primary.
fn names_on(c: &Cluster, container: &str, d: &ring::Device, n: usize) -> Vec<String> {
    (0..1000).map(|i| format!("o{i}")).filter(|o| placement(c, container, o).primaries.iter().any(|p| p.id == d.id)).take(n).collect()
}

fn session(c: &Cluster, container: &str) -> Session {
    let s = login(&c.auth_url(), "test:tester", "testing");
    assert_eq!(s.req("PUT", &format!("/{container}"), &[], b"").status, 201);
    s
}

#[test]
fn a_primary_that_missed_writes_is_filled_in_and_the_handoff_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut c = start(root);
    let s = session(&c, "a");
    let down = placement(&c, "a", "o0").primaries[0].clone();
    let names = names_on(&c, "a", &down, 5);
    c.servers("object")[server_of(&down) - 1].kill();
    for o in &names {
        assert_eq!(s.req("PUT", &format!("/a/{o}"), &[], format!("body of {o}").as_bytes()).status, 201, "PUT {o}");
    }
    let ip = c.opts.bind_ip.clone();
    c.servers("object")[server_of(&down) - 1].restart(&ip).unwrap();
    for o in &names {
        let p = placement(&c, "a", o);
        assert!(files(&c, &p, &down).is_empty(), "{o} missed the primary that was down");
        assert!(p.others.iter().any(|h| !files(&c, &p, h).is_empty()), "{o} went to a handoff");
    }
    replicate_until(&c, || {
        for o in &names {
            let p = placement(&c, "a", o);
            for d in &p.primaries {
                if !files(&c, &p, d).iter().any(|f| f.ends_with(".data")) {
                    return Err(format!("{o} is not on primary {}", d.device));
                }
            }
            for h in &p.others {
                if p.hash_dir(&c, h).exists() {
                    return Err(format!("handoff {} still holds {o}: {:?}", h.device, files(&c, &p, h)));
                }
            }
        }
        Ok(())
    });
    for o in &names {
        let p = placement(&c, "a", o);
        for d in &p.primaries {
            let r = direct(&p, d, "a", o, "GET");
            assert_eq!((r.status, r.text()), (200, format!("body of {o}")), "{o} on {}", d.device);
        }
    }
    // A full pass reports to recon as Swift's replicator does, for
    // `swift-recon -r`.
    let recon: serde_json::Value = serde_json::from_slice(&std::fs::read(root.join("cache/object.recon")).unwrap()).unwrap();
    for key in ["replication_time", "replication_last", "object_replication_time", "object_replication_last"] {
        assert!(recon[key].is_number(), "{key} in {recon}");
    }
    assert!(recon["replication_stats"]["attempted"].is_u64(), "{recon}");
}

#[test]
fn a_delete_made_while_a_primary_was_down_reaches_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut c = start(root);
    let s = session(&c, "b");
    assert_eq!(s.req("PUT", "/b/o", &[], b"soon gone").status, 201);
    let p = placement(&c, "b", "o");
    let down = p.primaries[1].clone();
    c.servers("object")[server_of(&down) - 1].kill();
    assert_eq!(s.req("DELETE", "/b/o", &[], b"").status, 204);
    let ip = c.opts.bind_ip.clone();
    c.servers("object")[server_of(&down) - 1].restart(&ip).unwrap();
    // The primary that was down still serves the object: a stale read.
    assert_eq!(direct(&p, &down, "b", "o", "GET").status, 200);
    replicate_until(&c, || {
        for d in p.primaries.iter().chain(&p.others) {
            let r = direct(&p, d, "b", "o", "GET");
            if r.status != 404 {
                return Err(format!("{} answers {}", d.device, r.status));
            }
        }
        for h in &p.others {
            if p.hash_dir(&c, h).exists() {
                return Err(format!("handoff {} still holds the tombstone", h.device));
            }
        }
        Ok(())
    });
    for d in &p.primaries {
        let files = files(&c, &p, d);
        assert!(files.len() == 1 && files[0].ends_with(".ts"), "{} holds {files:?}", d.device);
    }
    assert_eq!(s.req("GET", "/b/o", &[], b"").status, 404);
    assert_eq!(s.req("GET", "/b/o", &[("X-Newest", "true")], b"").status, 404);
}

#[test]
fn a_wiped_device_is_refilled() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let c = start(root);
    let s = session(&c, "c");
    let wiped = placement(&c, "c", "o0").primaries[0].clone();
    let names = names_on(&c, "c", &wiped, 4);
    for o in &names {
        assert_eq!(s.req("PUT", &format!("/c/{o}"), &[("X-Object-Meta-Name", o)], format!("body of {o}").as_bytes()).status, 201);
    }
    std::fs::remove_dir_all(c.device_dir(&wiped).join("objects")).unwrap();
    for o in &names {
        assert_eq!(direct(&placement(&c, "c", o), &wiped, "c", o, "GET").status, 404);
    }
    replicate_until(&c, || {
        for o in &names {
            let r = direct(&placement(&c, "c", o), &wiped, "c", o, "GET");
            if r.status != 200 {
                return Err(format!("{o} on {}: {}", wiped.device, r.status));
            }
        }
        Ok(())
    });
    for o in &names {
        let r = direct(&placement(&c, "c", o), &wiped, "c", o, "GET");
        assert_eq!(r.text(), format!("body of {o}"));
        assert_eq!(r.header("x-object-meta-name"), Some(o.as_str()), "metadata came along");
    }
}

#[test]
fn a_post_made_while_a_primary_was_down_travels() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut c = start(root);
    let s = session(&c, "d");
    assert_eq!(s.req("PUT", "/d/o", &[("X-Object-Meta-Color", "red")], b"paint").status, 201);
    let p = placement(&c, "d", "o");
    let down = p.primaries[2].clone();
    c.servers("object")[server_of(&down) - 1].kill();
    let r = s.req("POST", "/d/o", &[("X-Object-Meta-Color", "blue"), ("Content-Type", "text/x-paint")], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let ip = c.opts.bind_ip.clone();
    c.servers("object")[server_of(&down) - 1].restart(&ip).unwrap();
    assert_eq!(direct(&p, &down, "d", "o", "HEAD").header("x-object-meta-color"), Some("red"));
    replicate_until(&c, || {
        for d in &p.primaries {
            let r = direct(&p, d, "d", "o", "HEAD");
            if r.header("x-object-meta-color") != Some("blue") {
                return Err(format!("{} answers {} with color {:?}", d.device, r.status, r.header("x-object-meta-color")));
            }
        }
        Ok(())
    });
    let r = direct(&p, &down, "d", "o", "GET");
    assert_eq!((r.status, r.text().as_str()), (200, "paint"));
    assert_eq!(r.header("content-type"), Some("text/x-paint"), "the new content type came with the .meta");
    assert!(files(&c, &p, &down).iter().any(|f| f.ends_with(".meta")), "{:?}", files(&c, &p, &down));
    // Every primary now holds the same files.
    let first = files(&c, &p, &p.primaries[0]);
    for d in &p.primaries {
        assert_eq!(files(&c, &p, d), first, "{}", d.device);
    }
}

#[test]
fn an_unmounted_primary_is_replaced_by_a_handoff_until_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let c = start(root);
    let s = session(&c, "e");
    assert_eq!(s.req("PUT", "/e/o", &[], b"kept three times").status, 201);
    let p = placement(&c, "e", "o");
    let (failed, handoff) = (p.primaries[0].clone(), p.others[0].clone());
    // The disk fails: its server answers 507 for it, and the other
    // primaries place the third replica on the handoff instead.
    let away = root.join("failed-disk");
    std::fs::rename(c.device_dir(&failed), &away).unwrap();
    replicate_until(&c, || match files(&c, &p, &handoff).iter().any(|f| f.ends_with(".data")) {
        true => Ok(()),
        false => Err(format!("handoff {} has no copy", handoff.device)),
    });
    // The disk is back: the handoff gives its copy back and lets go.
    std::fs::rename(&away, c.device_dir(&failed)).unwrap();
    replicate_until(&c, || match p.hash_dir(&c, &handoff).exists() {
        true => Err(format!("handoff {} still holds {:?}", handoff.device, files(&c, &p, &handoff))),
        false => Ok(()),
    });
    for d in &p.primaries {
        let r = direct(&p, d, "e", "o", "GET");
        assert_eq!((r.status, r.text().as_str()), (200, "kept three times"), "{}", d.device);
    }
}
