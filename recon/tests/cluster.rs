//! swift-recon against a real cluster: every storage server binary started
//! by the all-in-one launcher, with the rings it builds.

mod support;

use cluster::{Cluster, Options};
use ring::builder::RingBuilder;
use support::*;

fn start(dir: &std::path::Path) -> Cluster {
    Cluster::start(Options::for_test(dir)).expect("cluster starts (build the server binaries first: cargo build --workspace)")
}

/// A copy of the cluster's swift dir, to edit without disturbing it.
fn copy_etc(c: &Cluster, to: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(&c.etc).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    to.to_path_buf()
}

#[test]
fn validate_servers_against_the_real_servers() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(&dir.path().join("saio"));
    let etc = c.etc.to_str().unwrap().to_string();
    for t in ["account", "container", "object"] {
        let out = recon(&[t, "--validate-servers", "--swiftdir", &etc]);
        assert_eq!(out.status, 0, "{t}: {}\n{}", out.stdout, out.stderr);
        out.assert_line(&format!("--> Starting reconnaissance on 4 hosts ({t})"));
        out.assert_line("4/4 hosts ok, 0 error[s] while checking hosts.");
    }

    // Point one object device at a container server: exactly that host is
    // invalid.
    let container_port = c.servers("container")[0].port;
    let edited = copy_etc(&c, &dir.path().join("edited"));
    let mut b = RingBuilder::load(&edited.join("object.builder")).unwrap();
    let victim = b.devs.iter().flatten().last().unwrap().id as usize;
    let old_port = b.devs[victim].as_ref().unwrap().port;
    b.devs[victim].as_mut().unwrap().port = container_port;
    b.get_ring().save(&edited.join("object.ring.gz"), 1).unwrap();
    let out = recon(&["object", "--validate-servers", "--swiftdir", edited.to_str().unwrap()]);
    assert_eq!(out.status, 1, "{}", out.stdout);
    out.assert_line("3/4 hosts ok, 1 error[s] while checking hosts.");
    out.assert_line(&format!("Invalid: http://127.0.0.1:{container_port}/ is container-server"));
    assert_eq!(out.stdout.matches("Invalid: ").count(), 1, "{}", out.stdout);

    // A dead object server is reported, and the others still pass.
    let dead = {
        let mut objects = c.servers("object");
        let p = objects.iter_mut().find(|p| p.port == old_port).unwrap();
        p.kill();
        p.port
    };
    let out = recon(&["object", "--validate-servers", "-t", "2", "--swiftdir", &etc]);
    assert_eq!(out.status, 1, "{}", out.stdout);
    out.assert_line("3/4 hosts ok, 1 error[s] while checking hosts.");
    out.assert_line(&format!("-> http://127.0.0.1:{dead}/: <urlopen error [Errno 111] Connection refused>"));
}

/// The servers' `/recon/ringmd5` and `/recon/swiftconfmd5` against the
/// swift dir they run with, then against an edited copy.
#[test]
fn md5_against_the_real_servers() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(&dir.path().join("saio"));
    let etc = c.etc.to_str().unwrap().to_string();
    let out = recon(&["account", "container", "object", "--md5", "--swiftdir", &etc]);
    assert_eq!(out.status, 0, "{}", out.stdout);
    assert_eq!(out.stdout.matches("4/4 hosts matched, 0 error[s] while checking hosts.").count(), 6, "{}", out.stdout);

    // Our copy of the container ring changes: every container server now
    // disagrees with it, naming the file.
    let edited = copy_etc(&c, &dir.path().join("edited"));
    let mut b = RingBuilder::load(&edited.join("container.builder")).unwrap();
    b.version += 1;
    b.get_ring().save(&edited.join("container.ring.gz"), 1).unwrap();
    let out = recon(&["container", "--md5", "--swiftdir", edited.to_str().unwrap()]);
    out.assert_line("0/4 hosts matched, 4 error[s] while checking hosts.");
    let served = md5_file(&c.etc.join("container.ring.gz"));
    for p in c.procs.iter().filter(|p| p.name.starts_with("container-server")).map(|p| p.port) {
        out.assert_line(&format!("!! http://127.0.0.1:{p}/recon/ringmd5 (container.ring.gz => {served}) doesn't match on disk md5sum"));
    }
}
