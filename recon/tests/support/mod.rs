//! Shared by the swift-recon tests: swift dirs with rings naming chosen
//! hosts, tiny fake servers in the test process, and running the binary.

#![allow(dead_code)]

use ring::builder::RingBuilder;
use ring::Device;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// What `swift-recon` printed and how it ended.
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The stdout lines, for exact comparisons.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Asserts `line` is printed, exactly, once.
    pub fn assert_line(&self, line: &str) {
        let n = self.stdout.lines().filter(|l| *l == line).count();
        assert_eq!(n, 1, "expected the line {line:?} once in:\n{}\nstderr:\n{}", self.stdout, self.stderr);
    }
}

/// Runs our `swift-recon` with `args`.
pub fn recon(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_swift-recon")).args(args).output().expect("running swift-recon");
    Output {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A swift.conf with one policy (`Policy-0`, alias `gold`).
pub const SWIFT_CONF: &str = "[swift-hash]\nswift_hash_path_prefix = pre\nswift_hash_path_suffix = suf\n\n[storage-policy:0]\nname = Policy-0\naliases = gold\ndefault = yes\n";

/// Writes `<dir>/<name>.ring.gz` with one device per `(ip, port)`, each in
/// its own zone (zone = position + 1).
pub fn write_ring(dir: &Path, name: &str, hosts: &[(&str, u16)]) {
    let mut b = RingBuilder::new(4, 1.0, 1).unwrap();
    for (i, (ip, port)) in hosts.iter().enumerate() {
        let dev = Device {
            id: 0,
            region: 1,
            zone: i as i64 + 1,
            ip: ip.to_string(),
            port: *port,
            replication_ip: ip.to_string(),
            replication_port: *port,
            device: format!("sdb{}", i + 1),
            weight: 100.0,
            meta: String::new(),
            extra: Default::default(),
        };
        b.add_dev(dev, None).unwrap();
    }
    b.rebalance(Some(1)).unwrap();
    b.get_ring().save(&dir.join(format!("{name}.ring.gz")), 1).unwrap();
}

/// A swift dir with swift.conf and the three rings, each naming `hosts`.
pub fn swift_dir(root: &Path, hosts: &[(&str, u16)]) -> PathBuf {
    let dir = root.join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("swift.conf"), SWIFT_CONF).unwrap();
    for name in ["account", "container", "object"] {
        write_ring(&dir, name, hosts);
    }
    dir
}

/// The hex md5 of a file.
pub fn md5_file(path: &Path) -> String {
    recon::checks::md5_file(path).unwrap()
}

/// What a fake server does with one request.
pub enum Reply {
    /// Answers with this status line code, headers and body.
    Http { status: u16, headers: Vec<(String, String)>, body: String },
    /// Never answers (holds the connection open).
    Hang,
    /// Writes bytes that are not HTTP and closes.
    Raw(&'static [u8]),
}

impl Reply {
    /// 200 with a JSON body.
    pub fn json(body: serde_json::Value) -> Reply {
        Reply::Http { status: 200, headers: vec![("Content-Type".into(), "application/json".into())], body: body.to_string() }
    }

    /// 200 to OPTIONS as a storage server of `server_type` answers.
    pub fn options(server_type: &str) -> Reply {
        Reply::Http { status: 200, headers: vec![("Server".into(), format!("{server_type}-server/2.38.3"))], body: String::new() }
    }
}

type Handler = dyn Fn(&str, &str) -> Reply + Send + Sync;

/// A fake HTTP server on `ip` and a free port; it runs until the test
/// process ends.
pub struct Fake {
    pub ip: &'static str,
    pub port: u16,
}

impl Fake {
    /// Starts a server answering `(method, path)` with `handler`.
    pub fn start(ip: &'static str, handler: impl Fn(&str, &str) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let handler = handler.clone();
                std::thread::spawn(move || serve(stream, &*handler));
            }
        });
        Fake { ip, port }
    }

    /// `(ip, port)` for a ring.
    pub fn host(&self) -> (&'static str, u16) {
        (self.ip, self.port)
    }

    /// `http://ip:port/`.
    pub fn url(&self) -> String {
        format!("http://{}:{}/", self.ip, self.port)
    }
}

fn serve(mut stream: TcpStream, handler: &Handler) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    match handler(method, path) {
        Reply::Http { status, headers, body } => {
            let mut text = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
            for (k, v) in headers {
                text.push_str(&format!("{k}: {v}\r\n"));
            }
            text.push_str("\r\n");
            text.push_str(&body);
            let _ = stream.write_all(text.as_bytes());
        }
        Reply::Hang => {
            // Hold the connection until the client gives up.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
            let _ = stream.read(&mut chunk);
        }
        Reply::Raw(bytes) => {
            let _ = stream.write_all(bytes);
        }
    }
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    // Never handed to a server started by a test running in parallel.
    common::testing::free_port()
}

/// A fake storage server of `server_type` answering OPTIONS and every
/// recon endpoint with Swift's shapes, as a fresh server with an empty
/// recon cache answers (nulls where the daemons have not reported).
pub fn fake_storage(ip: &'static str, server_type: &'static str, ringmd5: serde_json::Value, confmd5: serde_json::Value) -> Fake {
    use serde_json::json;
    Fake::start(ip, move |method, path| {
        if method == "OPTIONS" {
            return Reply::options(server_type);
        }
        let body = match path.strip_prefix("/recon/").unwrap_or("") {
            "ringmd5" => ringmd5.clone(),
            "swiftconfmd5" => confmd5.clone(),
            "async" => json!({"async_pending": 3, "async_pending_last": null}),
            "driveaudit" => json!({"drive_audit_errors": null}),
            "load" => json!({"1m": 0.5, "5m": 0.25, "15m": 1.0, "tasks": "1/86", "processes": 42}),
            "quarantined" => json!({"objects": 1, "containers": 0, "accounts": 0, "policies": {"0": {"objects": 1}}}),
            "sockstat" => json!({"tcp_in_use": 10, "orphan": 0, "time_wait": 2, "tcp_mem_allocated_bytes": 4096, "tcp6_in_use": 1}),
            "version" => json!({"version": "2.38.3"}),
            "time" => json!(recon::format::now()),
            "unmounted" => json!([]),
            "diskusage" => json!([{"device": "sdb1", "mounted": true, "size": 1000, "used": 400, "avail": 600}]),
            "replication/object" => json!({"replication_time": null, "replication_stats": null, "replication_last": null,
                                           "object_replication_time": null, "object_replication_last": null}),
            "replication/account" | "replication/container" => {
                json!({"replication_time": null, "replication_stats": null, "replication_last": null})
            }
            "auditor/object" => json!({"object_auditor_stats_ALL": null, "object_auditor_stats_ZBF": null}),
            "auditor/account" => {
                json!({"account_audits_passed": null, "account_auditor_pass_completed": null, "account_audits_since": null, "account_audits_failed": null})
            }
            "auditor/container" => {
                json!({"container_audits_passed": null, "container_auditor_pass_completed": null, "container_audits_since": null, "container_audits_failed": null})
            }
            "updater/object" => json!({"object_updater_sweep": null, "object_updater_stats": null, "object_updater_last": null}),
            "updater/container" => json!({"container_updater_sweep": null}),
            "expirer/object" => json!({"object_expiration_pass": null, "expired_last_pass": null}),
            "reconstruction/object" => json!({"object_reconstruction_last": null, "object_reconstruction_time": null}),
            "sharding" => json!({"sharding_stats": null, "sharding_time": null, "sharding_last": null}),
            _ => return Reply::Http { status: 404, headers: vec![], body: format!("Invalid path: {path}") },
        };
        Reply::json(body)
    })
}
