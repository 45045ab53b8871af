//! SSYNC, Swift's HTTP transport for object replication: the replicator
//! offers a partition's objects to a peer over one `SSYNC` request and
//! sends what the peer lacks.
//!
//! [`wire`] is the line protocol both ends speak; [`receiver`] is the
//! object server's handler; [`sender`] is the replicator's client; [`disk`]
//! is what both do on disk (no HTTP types there).

pub mod disk;
pub mod receiver;
pub mod sender;
pub mod wire;

use common::config::{ConfigError, Section};
use std::time::Duration;

/// The object server's options for incoming SSYNC requests (Swift's names
/// and defaults, from `[app:object-server]` over `[DEFAULT]`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverSettings {
    /// `replication_concurrency` (4): SSYNC requests served at once by the
    /// server; 0 means no limit.
    pub replication_concurrency: usize,
    /// `replication_concurrency_per_device` (1): SSYNC requests served at
    /// once per device; 0 means no limit.
    pub replication_concurrency_per_device: usize,
    /// `replication_lock_timeout` (15 s): longest wait for the partition's
    /// and the device's replication locks.
    pub replication_lock_timeout: Duration,
    /// `replication_failure_threshold` (100) and `replication_failure_ratio`
    /// (1.0): a reception is abandoned once at least this many subrequests
    /// failed and failures outnumber successes by more than the ratio.
    pub replication_failure_threshold: u64,
    pub replication_failure_ratio: f64,
}

impl Default for ReceiverSettings {
    fn default() -> ReceiverSettings {
        ReceiverSettings {
            replication_concurrency: 4,
            replication_concurrency_per_device: 1,
            replication_lock_timeout: Duration::from_secs(15),
            replication_failure_threshold: 100,
            replication_failure_ratio: 1.0,
        }
    }
}

impl ReceiverSettings {
    /// Reads the options from the object server's effective section.
    pub fn from_section(s: &Section) -> Result<ReceiverSettings, ConfigError> {
        let d = ReceiverSettings::default();
        let lock = s.get_f64("replication_lock_timeout", d.replication_lock_timeout.as_secs_f64())?;
        if lock < 0.0 {
            return Err(s.value_error("replication_lock_timeout", &lock.to_string(), "a non-negative number of seconds"));
        }
        let ratio = s.get_f64("replication_failure_ratio", d.replication_failure_ratio)?;
        if ratio < 0.0 {
            return Err(s.value_error("replication_failure_ratio", &ratio.to_string(), "a non-negative number"));
        }
        Ok(ReceiverSettings {
            replication_concurrency: s.get_usize("replication_concurrency", d.replication_concurrency)?,
            replication_concurrency_per_device: s.get_usize("replication_concurrency_per_device", d.replication_concurrency_per_device)?,
            replication_lock_timeout: Duration::from_secs_f64(lock),
            replication_failure_threshold: s.get_u64("replication_failure_threshold", d.replication_failure_threshold)?,
            replication_failure_ratio: ratio,
        })
    }
}

/// Sender and receiver end to end: an object server in this process, the
/// sender syncing one of its devices to another, and Swift-shaped byte
/// streams sent to the receiver by hand.
#[cfg(test)]
mod tests {
    use super::sender::{Sender, Source, SyncError, Target};
    use super::wire;
    use crate::settings::ObjectSettings;
    use crate::ObjectServer;
    use bytes::Bytes;
    use common::backend::{read_body, BackendClient};
    use common::config::ConfigFile;
    use common::devices::Devices;
    use common::swift_conf::SwiftConf;
    use http::{HeaderMap, HeaderValue, Method};
    use std::io::{Read, Write};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::time::Duration;

    struct Server {
        port: u16,
        root: PathBuf,
        _dir: tempfile::TempDir,
        client: BackendClient,
    }

    async fn start(extra: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("devices");
        for d in ["sda", "sdb"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let conf = ConfigFile::parse(
            &format!("[DEFAULT]\ndevices = {}\nmount_check = false\nlog_requests = false\n{extra}\n[app:object-server]\nuse = egg:swift#object\n", root.display()),
            "o.conf",
        )
        .unwrap();
        let settings = ObjectSettings::from_config(&conf).unwrap();
        let swift =
            SwiftConf::from_config(&ConfigFile::parse("[swift-hash]\nswift_hash_path_suffix = ssync-tests\n", "s.conf").unwrap()).unwrap();
        let limits = settings.server.connections.clone();
        let server = Arc::new(ObjectServer::new(settings, swift));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            common::server::serve(server, listener, &limits, false, std::future::pending(), Duration::from_secs(1)).await
        });
        Server { port, root, _dir: dir, client: BackendClient::new(Duration::from_secs(2), Duration::from_secs(10)) }
    }

    impl Server {
        async fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, HeaderMap, Bytes) {
            let mut h = HeaderMap::new();
            for (k, v) in headers {
                h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            }
            h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let resp = self.client.request(m, "127.0.0.1", self.port, path, h, common::http::full(body.to_vec())).await.unwrap();
            let (status, headers, body) = read_body(resp, 16 << 20, Duration::from_secs(10)).await.unwrap();
            (status.as_u16(), headers, body)
        }

        fn sender(&self) -> Sender {
            Sender {
                client: BackendClient::new(Duration::from_secs(2), Duration::from_secs(10)),
                devices: Arc::new(Devices::new(&self.root, false, 4)),
                node_timeout: Duration::from_secs(10),
                http_timeout: Duration::from_secs(10),
                network_chunk_size: 65536,
                disk_chunk_size: 65536,
                user_agent: "object-replicator test".into(),
            }
        }

        fn source(&self, device: &str) -> Source {
            Source { device: device.into(), device_path: self.root.join(device), policy: 0, partition: 7 }
        }

        fn target(&self, device: &str) -> Target {
            Target { ip: "127.0.0.1".into(), port: self.port, device: device.into() }
        }

        fn suffixes(&self, device: &str) -> Vec<String> {
            super::disk::list_suffixes(&self.root.join(device).join("objects/7")).unwrap()
        }

        fn hashes(&self, device: &str) -> std::collections::BTreeMap<String, String> {
            crate::hashes::get_hashes(&self.root.join(device).join("objects/7"), &[], Duration::from_secs(604800)).unwrap()
        }
    }

    fn ct() -> (&'static str, &'static str) {
        ("Content-Type", "text/plain")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sync_brings_the_receiver_up_to_date_and_never_back() {
        let s = start("").await;
        // On the sender: data with a newer .meta, a tombstone, a body of
        // several chunks, and an object the receiver has newer.
        assert_eq!(
            s.req("PUT", "/sda/7/a/c/o1", &[("X-Timestamp", "1700000001.00000"), ct(), ("X-Object-Meta-A", "1")], b"one").await.0,
            201
        );
        let post = [("X-Timestamp", "1700000002.00000"), ("X-Object-Meta-Color", "blue"), ("Content-Type", "text/x-new")];
        assert_eq!(s.req("POST", "/sda/7/a/c/o1", &post, b"").await.0, 202);
        assert_eq!(s.req("PUT", "/sda/7/a/c/o2", &[("X-Timestamp", "1700000001.00000"), ct()], b"two").await.0, 201);
        assert_eq!(s.req("DELETE", "/sda/7/a/c/o2", &[("X-Timestamp", "1700000003.00000")], b"").await.0, 204);
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let delete_at = [("X-Timestamp", "1700000001.00000"), ct(), ("X-Delete-At", "1700000100"), ("Content-Encoding", "gzip")];
        assert_eq!(s.req("PUT", "/sda/7/a/c/big", &delete_at, &big).await.0, 201);
        assert_eq!(s.req("PUT", "/sda/7/a/c/o4", &[("X-Timestamp", "1700000001.00000"), ct()], b"old").await.0, 201);
        // On the receiver: an older o1, a live o2 older than its delete,
        // and a newer o4.
        assert_eq!(s.req("PUT", "/sdb/7/a/c/o1", &[("X-Timestamp", "1700000000.00000"), ct()], b"zero").await.0, 201);
        assert_eq!(s.req("PUT", "/sdb/7/a/c/o2", &[("X-Timestamp", "1700000002.00000"), ct()], b"two?").await.0, 201);
        assert_eq!(s.req("PUT", "/sdb/7/a/c/o4", &[("X-Timestamp", "1700000009.00000"), ct()], b"newer").await.0, 201);

        let report = s.sender().sync(&s.source("sda"), &s.target("sdb"), &s.suffixes("sda")).await.unwrap();
        assert_eq!(report.available.len(), 4);
        assert_eq!(report.wanted, 3, "o1 (data and meta), o2 (the tombstone), big");

        let (status, h, body) = s.req("GET", "/sdb/7/a/c/o1", &[], b"").await;
        assert_eq!((status, &body[..]), (200, &b"one"[..]));
        assert_eq!(h.get("x-object-meta-color").unwrap(), "blue", "the .meta travelled");
        assert!(h.get("x-object-meta-a").is_none(), "a POST replaces user metadata");
        assert_eq!(h.get("content-type").unwrap(), "text/x-new");
        assert_eq!(h.get("x-timestamp").unwrap(), "1700000002.00000");
        let (status, h, _) = s.req("GET", "/sdb/7/a/c/o2", &[], b"").await;
        assert_eq!(status, 404);
        assert_eq!(h.get("x-backend-timestamp").unwrap(), "1700000003.00000", "the tombstone travelled");
        // Expired by now, but replicated all the same, whole.
        let (status, h, _) = s.req("HEAD", "/sdb/7/a/c/big", &[("X-Backend-Open-Expired", "true")], b"").await;
        assert!(status == 200 || status == 404, "{status}");
        let meta = crate::ssync::disk::open_by_hash(&super::disk::location(
            &s.root.join("sdb"),
            0,
            7,
            &common::hash::HashPathConf::new("", "ssync-tests").hash_path("a", Some("c"), Some("big")).unwrap(),
        ))
        .unwrap();
        assert_eq!(meta.size, big.len() as u64);
        assert_eq!(meta.metadata.get("X-Delete-At").map(String::as_str), Some("1700000100"));
        assert_eq!(meta.metadata.get("Content-Encoding").map(String::as_str), Some("gzip"));
        assert_eq!(meta.metadata.get("ETag").cloned(), Some(crate::metadata::md5_hex(&big)));
        let _ = h;
        let (status, _, body) = s.req("GET", "/sdb/7/a/c/o4", &[], b"").await;
        assert_eq!((status, &body[..]), (200, &b"newer"[..]), "newer state is never replaced");

        // Everything the sender had, the receiver now has: the same
        // suffix hashes, except o4's, where the receiver is newer.
        let (a, b) = (s.hashes("sda"), s.hashes("sdb"));
        let o4 = &common::hash::HashPathConf::new("", "ssync-tests").hash_path("a", Some("c"), Some("o4")).unwrap()[29..];
        for (suffix, h) in &a {
            if suffix != o4 {
                assert_eq!(b.get(suffix), Some(h), "suffix {suffix}");
            }
        }
        // A second sync finds nothing to send.
        let again = s.sender().sync(&s.source("sda"), &s.target("sdb"), &s.suffixes("sda")).await.unwrap();
        assert_eq!(again.wanted, 0);
        // And back the other way, only o4 travels.
        let back = s.sender().sync(&s.source("sdb"), &s.target("sda"), &s.suffixes("sdb")).await.unwrap();
        assert_eq!(back.wanted, 1);
        let (status, _, body) = s.req("GET", "/sda/7/a/c/o4", &[], b"").await;
        assert_eq!((status, &body[..]), (200, &b"newer"[..]));
        assert_eq!(s.hashes("sda"), s.hashes("sdb"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_held_partition_lock_refuses_the_sync() {
        let s = start("replication_lock_timeout = 0.2").await;
        assert_eq!(s.req("PUT", "/sda/7/a/c/o", &[("X-Timestamp", "1700000001.00000"), ct()], b"x").await.0, 201);
        let held = super::disk::try_lock(&super::disk::partition_lock_path(&s.root.join("sdb/objects/7"))).unwrap().unwrap();
        let err = s.sender().sync(&s.source("sda"), &s.target("sdb"), &s.suffixes("sda")).await.unwrap_err();
        assert!(matches!(&err, SyncError::Wire(_)) && err.to_string().contains(":ERROR: 0"), "{err}");
        assert_eq!(s.req("GET", "/sdb/7/a/c/o", &[], b"").await.0, 404);
        drop(held);
        s.sender().sync(&s.source("sda"), &s.target("sdb"), &s.suffixes("sda")).await.unwrap();
        assert_eq!(s.req("GET", "/sdb/7/a/c/o", &[], b"").await.0, 200);
    }

    /// Sends `body` as one chunk of an SSYNC request to `/sdb/7` over a
    /// plain socket, and returns the de-chunked response body.
    fn raw_ssync(port: u16, body: &[u8]) -> String {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let head = "SSYNC /sdb/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nX-Backend-Storage-Policy-Index: 0\r\n\r\n";
        c.write_all(head.as_bytes()).unwrap();
        c.write_all(format!("{:x}\r\n", body.len()).as_bytes()).unwrap();
        c.write_all(body).unwrap();
        c.write_all(b"\r\n0\r\n\r\n").unwrap();
        let mut raw = Vec::new();
        let _ = c.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let mut rest = &raw[raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
        let mut out = Vec::new();
        while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
            let Ok(n) = usize::from_str_radix(std::str::from_utf8(&rest[..i]).unwrap().trim(), 16) else { break };
            if n == 0 || rest.len() < i + 2 + n {
                break;
            }
            out.extend_from_slice(&rest[i + 2..i + 2 + n]);
            rest = &rest[i + 4 + n..];
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_receiver_speaks_swifts_protocol() {
        let s = start("").await;
        let hash = common::hash::HashPathConf::new("", "ssync-tests").hash_path("a", Some("c"), Some("o")).unwrap();
        // Shaped like Swift's test_ssync_receiver.py test_UPDATES_PUT.
        let body = format!(
            ":MISSING_CHECK: START\r\n{hash} 1364456113.12344\r\n:MISSING_CHECK: END\r\n\
             :UPDATES: START\r\nPUT /a/c/o\r\nContent-Length: 1\r\nContent-Type: text/plain\r\n\
             Etag: c4ca4238a0b923820dcc509a6f75849b\r\nX-Timestamp: 1364456113.12344\r\nX-Object-Meta-Test1: one\r\n\
             X-Object-Meta-T\u{e8}st2: m\u{e8}ta\r\nContent-Encoding: gzip\r\nSpecialty-Header: value\r\nX-Backend-No-Commit: True\r\n\r\n1\
             :UPDATES: END\r\n"
        );
        let port = s.port;
        let answer = tokio::task::spawn_blocking(move || raw_ssync(port, body.as_bytes())).await.unwrap();
        assert_eq!(
            answer,
            format!("\r\n:MISSING_CHECK: START\r\n{hash} dm\r\n:MISSING_CHECK: END\r\n:UPDATES: START\r\n:UPDATES: END\r\n")
        );
        let loc = super::disk::location(&s.root.join("sdb"), 0, 7, &hash);
        let o = tokio::task::spawn_blocking(move || super::disk::open_by_hash(&loc).unwrap()).await.unwrap();
        let m = &o.metadata;
        assert_eq!(m.get("X-Object-Meta-Test1").map(String::as_str), Some("one"));
        assert_eq!(m.get("X-Object-Meta-T\u{e8}St2").map(String::as_str), Some("m\u{e8}ta"), "stored under bytes.title()");
        assert_eq!(m.get("Specialty-Header").map(String::as_str), Some("value"), "every replicated header is kept");
        assert_eq!(m.get("ETag").map(String::as_str), Some("c4ca4238a0b923820dcc509a6f75849b"));
        assert!(!m.contains_key("Etag") && !m.contains_key("X-Backend-No-Commit"));
        assert_eq!(m.get("X-Timestamp").map(String::as_str), Some("1364456113.12344"));

        // Now in sync: nothing wanted, nothing sent. An older DELETE is
        // refused (409), which fails the updates step.
        let body = format!(
            ":MISSING_CHECK: START\r\n{hash} 1364456113.12344\r\n:MISSING_CHECK: END\r\n\
             :UPDATES: START\r\nDELETE /a/c/o\r\nX-Timestamp: 1364456113.00000\r\n\r\n:UPDATES: END\r\n"
        );
        let answer = tokio::task::spawn_blocking(move || raw_ssync(port, body.as_bytes())).await.unwrap();
        assert!(answer.starts_with("\r\n:MISSING_CHECK: START\r\n\r\n:MISSING_CHECK: END\r\n"), "{answer:?}");
        assert!(answer.contains(":ERROR: 500 'ERROR: With :UPDATES: 1 failures to 0 successes'"), "{answer:?}");
        // Garbage gets an error line, not a hang.
        let answer = tokio::task::spawn_blocking(move || raw_ssync(port, b"hello\r\n")).await.unwrap();
        assert!(answer.contains(":ERROR: 0 'Looking for :MISSING_CHECK: START got"), "{answer:?}");
        // A bad subrequest method.
        let body =
            ":MISSING_CHECK: START\r\n:MISSING_CHECK: END\r\n:UPDATES: START\r\nGET /a/c/o\r\nX-Timestamp: 1\r\n\r\n:UPDATES: END\r\n";
        let answer = tokio::task::spawn_blocking(move || raw_ssync(port, body.as_bytes())).await.unwrap();
        assert!(answer.contains(":ERROR: 0 'Invalid subrequest method GET'"), "{answer:?}");
        assert!(Path::new(&s.root).exists());
    }

    /// A TCP proxy to `port` that records what clients send through it.
    fn recording_proxy(port: u16) -> (u16, Arc<std::sync::Mutex<Vec<u8>>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_port = listener.local_addr().unwrap().port();
        let sent = Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let Ok(mut server) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return };
                let (mut client_r, mut server_w) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = client_r.read(&mut buf) {
                        if n == 0 || server_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        record.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = server_w.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server, &mut client);
                    let _ = client.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        (proxy_port, sent)
    }

    /// The de-chunked body of the one chunked request in `raw`.
    fn request_body(raw: &[u8]) -> Vec<u8> {
        let mut rest = &raw[raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
        let mut out = Vec::new();
        while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..i]).unwrap().trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[i + 2..i + 2 + n]);
            rest = &rest[i + 4 + n..];
        }
        out
    }

    /// The files of each hash directory of partition 7 of `device`, with
    /// their metadata, as the fixture lists them.
    fn files_and_metadata(s: &Server, device: &str) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        let part = s.root.join(device).join("objects/7");
        for suffix in super::disk::list_suffixes(&part).unwrap() {
            for hash in std::fs::read_dir(part.join(&suffix)).unwrap().flatten() {
                let mut files = serde_json::Map::new();
                for f in std::fs::read_dir(hash.path()).unwrap().flatten() {
                    let meta = crate::metadata::read(&f.path()).unwrap();
                    files.insert(f.file_name().to_string_lossy().into_owned(), serde_json::to_value(meta).unwrap());
                }
                out.insert(hash.file_name().to_string_lossy().into_owned(), files.into());
            }
        }
        out.into()
    }

    /// Swift's sender's bytes, replayed to our receiver, get Swift's
    /// receiver's answer and leave the files (names and metadata) and the
    /// suffix hashes Swift's receiver left; and our sender, sending those
    /// objects on, sends Swift's sender's bytes. (Fixtures made by
    /// tests/fixtures/ssync/make_ssync_fixtures.py with Swift 2.38.3.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn swifts_bytes_in_both_directions() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ssync");
        let body = std::fs::read(fixtures.join("swift_sender.body")).unwrap();
        let swift: serde_json::Value = serde_json::from_slice(&std::fs::read(fixtures.join("swift_receiver.json")).unwrap()).unwrap();
        let s = start("").await;
        let port = s.port;
        let sent = body.clone();
        let answer = tokio::task::spawn_blocking(move || raw_ssync(port, &sent)).await.unwrap();
        assert_eq!(answer, swift["response"].as_str().unwrap(), "the receiver answers as Swift's");
        assert_eq!(files_and_metadata(&s, "sdb"), swift["files"], "the receiver writes what Swift's writes");
        // Far in the past for the reclaim age: the fixture's tombstone was
        // recent when Swift hashed it.
        let forever = Duration::from_secs(100 * 365 * 86400);
        let hashes = crate::hashes::get_hashes(&s.root.join("sdb/objects/7"), &[], forever).unwrap();
        assert_eq!(serde_json::to_value(&hashes).unwrap(), swift["suffix_hashes"], "the same suffix hashes as Swift's");

        let (proxy, recorded) = recording_proxy(s.port);
        let target = super::sender::Target { ip: "127.0.0.1".into(), port: proxy, device: "sda".into() };
        let report = s.sender().sync(&s.source("sdb"), &target, &s.suffixes("sdb")).await.unwrap();
        assert_eq!(report.wanted, 5);
        let ours = request_body(&recorded.lock().unwrap());
        assert!(ours == body, "our sender's stream differs from Swift's:\n{}\n---\n{}", wire::cap(&ours), wire::cap(&body));
        assert_eq!(files_and_metadata(&s, "sda"), swift["files"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn receptions_beyond_replication_concurrency_are_refused() {
        let s = start("replication_concurrency = 1").await;
        // One reception that sends nothing after its head holds the slot
        // (its socket is kept open until the end of the test).
        let port = s.port;
        let (first, _holder) = tokio::task::spawn_blocking(move || {
            let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            c.write_all(b"SSYNC /sda/7 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 256];
            // The head, then the receiver's first chunk (a blank line).
            while !got.ends_with(b"\r\n\r\n\r\n") {
                let n = c.read(&mut buf).unwrap();
                assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&buf[..n]);
            }
            (String::from_utf8_lossy(&got).into_owned(), c)
        })
        .await
        .unwrap();
        assert!(first.starts_with("HTTP/1.1 200"), "{first}");
        let body = ":MISSING_CHECK: START\r\n:MISSING_CHECK: END\r\n";
        let answer = tokio::task::spawn_blocking(move || raw_ssync(port, body.as_bytes())).await.unwrap();
        assert!(answer.contains(":ERROR: 503 '<html><h1>Service Unavailable</h1>"), "{answer:?}");
    }
}
