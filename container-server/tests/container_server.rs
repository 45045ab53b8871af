//! Integration tests: start the real `swift-container-server` binary with a
//! generated config and drive it over HTTP.

use common::dbserver::testing::{config_path, files_under, request, start_server, timestamp as ts, Reply};
use common::testing::{free_port, poll_until, ServerProcess};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Server {
    _dir: tempfile::TempDir,
    devices: PathBuf,
    proc: ServerProcess,
}

fn start(extra: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let proc = start_server(Path::new(env!("CARGO_BIN_EXE_swift-container-server")), "container", dir.path(), extra);
    Server { devices: dir.path().join("node"), _dir: dir, proc }
}

impl Server {
    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        request(self.proc.port, method, path, headers)
    }
    fn put_container(&self, path: &str, t: u32) -> Reply {
        self.req("PUT", path, &[("X-Timestamp", &ts(t))])
    }
    fn put_object(&self, path: &str, t: u32, size: u64) -> Reply {
        let size = size.to_string();
        self.req(
            "PUT",
            path,
            &[("X-Timestamp", &ts(t)), ("X-Size", &size), ("X-Content-Type", "text/plain"), ("X-Etag", "d41d8cd98f00b204e9800998ecf8427e")],
        )
    }
}

#[test]
fn options_reports_verbs_and_server() {
    let s = start("");
    let r = s.req("OPTIONS", "/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.h("allow"), Some("DELETE, GET, HEAD, OPTIONS, POST, PUT, REPLICATE, UPDATE"));
    assert_eq!(r.h("server"), Some("container-server/0.1.0"));
    // REPLICATE wants Swift's JSON body (none here), on a device we have.
    assert_eq!(s.req("REPLICATE", "/sda/1/abc", &[]).status, 400);
    assert_eq!(s.req("REPLICATE", "/nodev/1/abc", &[]).status, 507);
    assert_eq!(s.req("UPDATE", "/sda/1/a/c", &[("X-Timestamp", &ts(1))]).status, 501);
    assert_eq!(s.req("COPY", "/sda/1/a/c", &[]).status, 405);
}

#[test]
fn container_lifecycle_and_object_rows() {
    let s = start("");
    assert_eq!(s.req("HEAD", "/sda/1/a/c", &[]).status, 404);
    assert_eq!(s.put_object("/sda/1/a/c/o", 1, 1).status, 404, "no container, no auto-create");
    let r = s.req("PUT", "/sda/1/a/c", &[("X-Timestamp", &ts(1)), ("X-Container-Meta-Color", "blue"), ("X-Container-Read", ".r:*")]);
    assert_eq!(r.status, 201);
    assert_eq!(r.h("x-backend-storage-policy-index"), Some("0"));
    // The database sits where Swift puts it.
    let found = files_under(&s.devices.join("sda/containers/1")).into_iter().any(|p| p.extension().is_some_and(|e| e == "db"));
    assert!(found);
    assert_eq!(s.put_container("/sda/1/a/c", 2).status, 202);
    assert_eq!(s.put_object("/sda/1/a/c/o1", 3, 10).status, 201);
    assert_eq!(s.put_object("/sda/1/a/c/o2", 3, 5).status, 201);
    assert_eq!(s.put_object("/sda/1/a/c/o1", 2, 99).status, 201, "older update is accepted and ignored");
    let h = s.req("HEAD", "/sda/1/a/c", &[]);
    assert_eq!(h.status, 204);
    assert_eq!(h.h("x-container-object-count"), Some("2"));
    assert_eq!(h.h("x-container-bytes-used"), Some("15"));
    assert_eq!(h.h("x-put-timestamp"), Some(ts(2).as_str()));
    assert_eq!(h.h("x-backend-put-timestamp"), Some(ts(2).as_str()));
    assert_eq!(h.h("x-backend-delete-timestamp"), Some("0000000000.00000"));
    assert_eq!(h.h("x-container-meta-color"), Some("blue"));
    assert_eq!(h.h("x-container-read"), Some(".r:*"));
    assert!(h.h("x-timestamp").is_some() && h.h("x-backend-status-changed-at").is_some());
    assert_eq!(h.h("content-type"), Some("text/plain; charset=utf-8"));
    // Metadata: newer wins per key, empty deletes.
    assert_eq!(s.req("POST", "/sda/1/a/c", &[("X-Timestamp", &ts(5)), ("X-Container-Meta-Color", "")]).status, 204);
    assert_eq!(s.req("POST", "/sda/1/a/c", &[("X-Timestamp", &ts(4)), ("X-Container-Meta-Color", "red")]).status, 204);
    assert_eq!(s.req("HEAD", "/sda/1/a/c", &[]).h("x-container-meta-color"), None);
    assert_eq!(s.req("POST", "/sda/1/a/nope", &[("X-Timestamp", &ts(4))]).status, 404);
    // DELETE: 409 while objects exist, then 204, then 404.
    assert_eq!(s.req("DELETE", "/sda/1/a/c", &[("X-Timestamp", &ts(6))]).status, 409);
    assert_eq!(s.req("DELETE", "/sda/1/a/c/o1", &[("X-Timestamp", &ts(6))]).status, 204);
    assert_eq!(s.req("DELETE", "/sda/1/a/c/o2", &[("X-Timestamp", &ts(6))]).status, 204);
    assert_eq!(s.req("DELETE", "/sda/1/a/c", &[("X-Timestamp", &ts(7))]).status, 204);
    let h = s.req("HEAD", "/sda/1/a/c", &[]);
    assert_eq!(h.status, 404);
    assert_eq!(h.h("x-backend-delete-timestamp"), Some(ts(7).as_str()));
    assert_eq!(h.h("x-container-object-count"), None);
    assert_eq!(s.req("DELETE", "/sda/1/a/c", &[("X-Timestamp", &ts(8))]).status, 404);
    assert_eq!(s.req("DELETE", "/sda/1/a/never", &[("X-Timestamp", &ts(8))]).status, 404);
    // A newer PUT revives it.
    assert_eq!(s.put_container("/sda/1/a/c", 9).status, 201);
    assert_eq!(s.req("HEAD", "/sda/1/a/c", &[]).status, 204);
    // Auto-create accounts take object rows without a container PUT.
    assert_eq!(s.put_object("/sda/1/.expiring/c/o", 1, 1).status, 201);
    assert_eq!(s.req("HEAD", "/sda/1/.expiring/c", &[]).h("x-container-object-count"), Some("1"));
    // Policy conflicts.
    assert_eq!(s.req("PUT", "/sda/1/a/c", &[("X-Timestamp", &ts(10)), ("X-Backend-Storage-Policy-Index", "1")]).status, 409);
    assert_eq!(s.req("PUT", "/sda/1/a/p1", &[("X-Timestamp", &ts(10)), ("X-Backend-Storage-Policy-Index", "1")]).status, 201);
    assert_eq!(s.req("HEAD", "/sda/1/a/p1", &[]).h("x-backend-storage-policy-index"), Some("1"));
    assert_eq!(s.req("HEAD", "/sdx/1/a/c", &[]).status, 507);
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    let s = start("");
    assert_eq!(s.req("PUT", "/sda/1/a/c", &[]).status, 400, "missing X-Timestamp");
    let r = s.req("PUT", "/sda/1/a/c", &[("X-Timestamp", "yesterday")]);
    assert_eq!((r.status, r.text().as_str()), (400, "Invalid X-Timestamp header"));
    assert_eq!(s.req("PUT", "/sda/1/a/c%FF", &[("X-Timestamp", &ts(1))]).status, 412);
    assert_eq!(s.req("PUT", "/sda/x/a/c", &[("X-Timestamp", &ts(1))]).status, 400);
    assert_eq!(s.req("PUT", "/sda/1/a", &[("X-Timestamp", &ts(1))]).status, 400);
    let long = format!("/sda/1/a/{}", "c".repeat(257));
    assert_eq!(s.req("PUT", &long, &[("X-Timestamp", &ts(1))]).status, 400);
    assert_eq!(s.req("PUT", "/sda/1/a/c", &[("X-Timestamp", &ts(1)), ("X-Backend-Storage-Policy-Index", "7")]).status, 400);
    let big = "v".repeat(250);
    let mut hs: Vec<(String, String)> = (0..20).map(|i| (format!("X-Container-Meta-K{i}"), big.clone())).collect();
    hs.push(("X-Timestamp".into(), ts(1)));
    let refs: Vec<(&str, &str)> = hs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let r = s.req("PUT", "/sda/1/a/c", &refs);
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("Total metadata too large"));
    assert!(files_under(&s.devices).iter().all(|p| p.extension().is_none_or(|e| e != "db")), "nothing was created");
    assert_eq!(s.put_container("/sda/1/a/c", 1).status, 201);
    let obj = |h: &[(&str, &str)]| s.req("PUT", "/sda/1/a/c/o", h).status;
    assert_eq!(obj(&[("X-Timestamp", &ts(2)), ("X-Size", "x"), ("X-Content-Type", "a/b"), ("X-Etag", "e")]), 400);
    assert_eq!(obj(&[("X-Timestamp", &ts(2)), ("X-Content-Type", "a/b"), ("X-Etag", "e")]), 400);
    assert_eq!(obj(&[("X-Size", "1"), ("X-Content-Type", "a/b"), ("X-Etag", "e")]), 400);
    let long_obj = format!("/sda/1/a/c/{}", "o".repeat(1025));
    assert_eq!(s.put_object(&long_obj, 2, 1).status, 400);
    assert_eq!(s.req("HEAD", "/sda/1/a/c", &[]).h("x-container-object-count"), Some("0"));
}

fn listing(s: &Server, query: &str) -> Reply {
    s.req("GET", &format!("/sda/1/a/c?{query}"), &[])
}

#[test]
fn listings_follow_swift_rules() {
    let s = start("");
    assert_eq!(s.put_container("/sda/1/a/c", 1).status, 201);
    // Empty container: plain 204, JSON [] 200, XML empty root 200.
    assert_eq!(listing(&s, "").status, 204);
    let j = listing(&s, "format=json");
    assert_eq!((j.status, j.text().as_str()), (200, "[]"));
    let x = listing(&s, "format=xml");
    assert_eq!(x.status, 200);
    assert_eq!(x.text(), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<container name=\"c\" />");
    for name in ["b", "a", "a/x", "a/y/z", "c", "\u{e9}", "Z", "\u{1F954}", "p/q"] {
        let path = format!("/sda/1/a/c/{}", common::http::quote_path(name));
        assert_eq!(s.put_object(&path, 2, 3).status, 201);
    }
    let plain = listing(&s, "");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.text(), "Z\na\na/x\na/y/z\nb\nc\np/q\n\u{e9}\n\u{1F954}\n");
    assert_eq!(plain.h("x-container-object-count"), Some("9"));
    assert_eq!(listing(&s, "delimiter=/").text(), "Z\na\na/\nb\nc\np/\n\u{e9}\n\u{1F954}\n");
    assert_eq!(listing(&s, "prefix=a/&delimiter=/").text(), "a/x\na/y/\n");
    assert_eq!(listing(&s, "marker=b&end_marker=%C3%A9").text(), "c\np/q\n");
    assert_eq!(listing(&s, "limit=2&reverse=true").text(), "\u{1F954}\n\u{e9}\n");
    assert_eq!(listing(&s, "path=a").text(), "a/x\n");
    assert_eq!(listing(&s, "prefix=zz").status, 204);
    let r = listing(&s, "limit=10001");
    assert_eq!((r.status, r.text().as_str()), (412, "Maximum limit is 10000"));
    let j = listing(&s, "prefix=a/&delimiter=/&format=json");
    assert_eq!(j.h("content-type"), Some("application/json; charset=utf-8"));
    let v: serde_json::Value = serde_json::from_slice(&j.body).unwrap();
    assert_eq!(v[0]["name"], "a/x");
    assert_eq!(v[0]["bytes"], 3);
    assert_eq!(v[0]["hash"], "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(v[0]["content_type"], "text/plain");
    assert_eq!(v[0]["last_modified"], "2023-11-14T22:13:22.000000");
    assert_eq!(v[1]["subdir"], "a/y/");
    let x = s.req("GET", "/sda/1/a/c?prefix=a/&delimiter=/", &[("Accept", "application/xml")]);
    assert!(x.text().contains("<object><name>a/x</name><hash>d41d8cd98f00b204e9800998ecf8427e</hash><bytes>3</bytes>"));
    assert!(x.text().ends_with("<subdir name=\"a/y/\"><name>a/y/</name></subdir></container>"));
    assert_eq!(s.req("GET", "/sda/1/a/c", &[("Accept", "image/png")]).status, 406);
    assert_eq!(s.req("GET", "/sda/1/a/c", &[("Accept", "text/xml")]).h("content-type"), Some("text/xml; charset=utf-8"));
    assert_eq!(listing(&s, "marker=%FF").status, 400);
    assert_eq!(s.req("GET", "/sda/1/a/missing", &[]).status, 404);
}

/// A fake account server: answers every request with `status` and records
/// request heads.
fn fake_account_server(status: u16) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let seen = seen2.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Serve requests on this keep-alive connection until it closes.
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match c.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    seen.lock().unwrap().push(String::from_utf8_lossy(&buf[..end]).into_owned());
                    buf.drain(..end);
                    let resp = format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
                    if c.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

#[test]
fn container_changes_are_reported_to_account_servers() {
    let s = start("");
    let (p1, seen1) = fake_account_server(201);
    let (p2, seen2) = fake_account_server(201);
    let hosts = format!("127.0.0.1:{p1},127.0.0.1:{p2}");
    let acct = |t: u32, method: &str, path: &str, hosts: &str| {
        s.req(
            method,
            path,
            &[("X-Timestamp", &ts(t)), ("X-Account-Host", hosts), ("X-Account-Device", "sdb,sdc"), ("X-Account-Partition", "42")],
        )
    };
    assert_eq!(acct(1, "PUT", "/sda/1/a/c", &hosts).status, 201);
    let got = poll_until(Duration::from_secs(10), || {
        let a = seen1.lock().unwrap().clone();
        let b = seen2.lock().unwrap().clone();
        (!a.is_empty() && !b.is_empty()).then_some((a, b))
    })
    .expect("both account servers were updated");
    let head = got.0[0].to_ascii_lowercase();
    assert!(head.starts_with("put /sdb/42/a/c http/1.1"), "{head}");
    assert!(head.contains(&format!("x-put-timestamp: {}", ts(1))));
    assert!(head.contains("x-delete-timestamp: 0"));
    assert!(head.contains("x-object-count: 0") && head.contains("x-bytes-used: 0"));
    assert!(head.contains("x-backend-storage-policy-index: 0"));
    assert!(got.1[0].to_ascii_lowercase().starts_with("put /sdc/42/a/c"));
    // Every account server says 404: the account is missing.
    let (q1, _) = fake_account_server(404);
    let (q2, _) = fake_account_server(404);
    let missing = format!("127.0.0.1:{q1},127.0.0.1:{q2}");
    assert_eq!(acct(2, "PUT", "/sda/1/a/c2", &missing).status, 404);
    // One 404 among successes is not enough.
    let mixed = format!("127.0.0.1:{q1},127.0.0.1:{p1}");
    assert_eq!(acct(3, "PUT", "/sda/1/a/c3", &mixed).status, 201);
    // An unreachable account server does not fail the container request.
    let dead = format!("127.0.0.1:{},127.0.0.1:{p2}", free_port());
    assert_eq!(acct(4, "DELETE", "/sda/1/a/c", &dead).status, 204);
    // Mismatched lists are refused before anything is written.
    let r = s.req(
        "PUT",
        "/sda/1/a/c4",
        &[("X-Timestamp", &ts(5)), ("X-Account-Host", &hosts), ("X-Account-Device", "sdb"), ("X-Account-Partition", "1")],
    );
    assert_eq!(r.status, 400);
    assert_eq!(s.req("HEAD", "/sda/1/a/c4", &[]).status, 404);
}

#[test]
fn pending_updates_survive_a_killed_server() {
    let mut s = start("");
    assert_eq!(s.put_container("/sda/1/a/c", 1).status, 201);
    for i in 0..20 {
        assert_eq!(s.put_object(&format!("/sda/1/a/c/o{i}"), 2, 1).status, 201);
    }
    // Acknowledged updates are in the pending file, not yet in SQLite.
    assert!(files_under(&s.devices)
        .iter()
        .any(|p| p.to_string_lossy().ends_with(".db.pending") && std::fs::metadata(p).unwrap().len() > 0));
    s.proc.kill();
    let port = s.proc.port;
    let conf = config_path(s._dir.path(), "container");
    s.proc = ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_swift-container-server")), &conf, port);
    assert_eq!(s.req("HEAD", "/sda/1/a/c", &[]).h("x-container-object-count"), Some("20"));
}
