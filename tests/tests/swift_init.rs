//! `swift-init` manages a node's servers as Swift's does: it finds their
//! configs in a conf dir, starts them detached with pid files in a run
//! dir, reports them, reloads them with SIGHUP (in place: same process, a
//! fresh configuration) and stops them with SIGTERM.

use common::testing::{answers_http, free_port, poll_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

/// The directory of the workspace's binaries (test executables live in
/// `target/<profile>/deps`).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap();
    let dir = if dir.ends_with("deps") { dir.parent().unwrap() } else { dir };
    assert!(dir.join("swift-init").exists(), "build the workspace's binaries first (cargo build --workspace --bins)");
    dir.to_path_buf()
}

struct Node {
    _dir: tempfile::TempDir,
    conf_dir: PathBuf,
    run_dir: PathBuf,
    port: u16,
}

impl Node {
    fn new() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let (conf_dir, run_dir, devices) = (dir.path().join("etc"), dir.path().join("run"), dir.path().join("srv"));
        std::fs::create_dir_all(&conf_dir).unwrap();
        std::fs::create_dir_all(devices.join("sda")).unwrap();
        std::fs::write(conf_dir.join("swift.conf"), "[swift-hash]\nswift_hash_path_suffix = init-test\n").unwrap();
        let port = free_port();
        std::fs::write(
            conf_dir.join("object-server.conf"),
            format!(
                "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\ndevices = {}\nmount_check = false\nswift_dir = {}\n\
                 recon_cache_path = {}\n\n[pipeline:main]\npipeline = healthcheck object-server\n\n\
                 [app:object-server]\nuse = egg:swift#object\n\n[filter:healthcheck]\nuse = egg:swift#healthcheck\n\n\
                 [object-updater]\ninterval = 300\n",
                devices.display(),
                conf_dir.display(),
                dir.path().display()
            ),
        )
        .unwrap();
        // The updater sends container updates: it needs the container ring.
        let mut b = ring::builder::RingBuilder::new(4, 1.0, 1).unwrap();
        let dev = ring::Device {
            id: 0,
            region: 1,
            zone: 1,
            ip: "127.0.0.1".into(),
            port,
            replication_ip: "127.0.0.1".into(),
            replication_port: port,
            device: "sda".into(),
            weight: 100.0,
            meta: String::new(),
            extra: Default::default(),
        };
        b.add_dev(dev, None).unwrap();
        b.rebalance(None).unwrap();
        b.get_ring().save(&conf_dir.join("container.ring.gz"), 1).unwrap();
        Node { _dir: dir, conf_dir, run_dir, port }
    }

    /// `swift-init --run-dir R <words>` with `SWIFT_DIR` set to the conf dir.
    fn init(&self, words: &[&str]) -> Output {
        let out = Command::new(bin_dir().join("swift-init"))
            .env("SWIFT_DIR", &self.conf_dir)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .args(words)
            .output()
            .unwrap();
        eprintln!("swift-init {words:?}: {}\n{}{}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        out
    }

    fn pid(&self, server: &str) -> i32 {
        let file = self.run_dir.join(format!("{server}.pid"));
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())).trim().parse().unwrap()
    }
}

/// Whether `pid` runs and is not a zombie (nobody may reap a detached child).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A kept-alive connection, served once; a reload closes it.
fn probe(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\nOK") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed before the healthcheck answer");
        raw.push(byte[0]);
    }
    s
}

fn healthy(port: u16) -> bool {
    answers_http("127.0.0.1", port) && common::testing::http_request(port, "GET", "/healthcheck").status == 200
}

#[test]
fn start_status_reload_stop_an_object_server_and_its_updater() {
    let node = Node::new();
    let started = node.init(&["--conf-dir", node.conf_dir.to_str().unwrap(), "object", "object-updater", "start"]);
    assert!(started.status.success());
    assert!(stdout(&started).contains("Starting object-server"), "{}", stdout(&started));
    let (server, updater) = (node.pid("object-server"), node.pid("object-updater"));
    assert!(poll_until(DEADLINE, || healthy(node.port).then_some(())).is_some(), "the object server never answered");
    assert!(alive(updater));

    let status = node.init(&["status", "object", "object-updater"]);
    assert!(status.status.success());
    let text = stdout(&status);
    assert!(
        text.contains(&format!("object-server running ({server} - ")) && text.contains(&format!("object-updater running ({updater} - ")),
        "{text}"
    );

    let again = node.init(&["start", "object"]);
    assert!(again.status.success() && stdout(&again).contains("object-server already started"), "{}", stdout(&again));
    assert_eq!(node.pid("object-server"), server);

    // Reload: SIGHUP, the same process takes a fresh configuration (the old
    // connections are let go), and goes on serving.
    let mut old = probe(node.port);
    let reloaded = node.init(&["object", "object-updater", "reload"]);
    assert!(reloaded.status.success());
    assert_eq!(old.read(&mut [0u8; 16]).unwrap_or(0), 0, "the reload did not hand over to a new configuration");
    assert!(alive(server) && alive(updater));
    assert!(healthy(node.port));

    // `main` names servers this node has no config for: they are skipped.
    let stopped = node.init(&["stop", "main"]);
    assert!(stopped.status.success(), "{}", stdout(&stopped));
    assert!(!alive(server), "stop returns once the server has exited");
    assert!(!node.run_dir.join("object-server.pid").exists());
    let stopped = node.init(&["object-updater", "stop"]);
    assert!(stopped.status.success());
    assert!(!alive(updater));

    let status = node.init(&["object", "status"]);
    assert!(!status.status.success() && stdout(&status).contains("No object-server running"));
    assert!(!answers_http("127.0.0.1", node.port));
}

#[test]
fn a_server_that_cannot_start_is_reported() {
    let node = Node::new();
    let conf = node.conf_dir.join("object-server.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, text.replace("mount_check = false", "mount_check = maybe")).unwrap();
    let started = node.init(&["object", "start"]);
    assert!(!started.status.success());
    assert!(stdout(&started).contains("mount_check"), "the server's own error is shown: {}", stdout(&started));
    assert!(!node.run_dir.join("object-server.pid").exists());
    // No config at all for a server named outright is an error too.
    let proxy = node.init(&["proxy", "start"]);
    assert!(!proxy.status.success() && stdout(&proxy).contains("Unable to locate config for proxy-server"));
}
