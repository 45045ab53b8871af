//! Container updates, async pendings, REPLICATE, and a crash mid-upload.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

type Seen = Arc<Mutex<Vec<(String, BTreeMap<String, String>)>>>;

/// A tiny fake container server: records each request line and headers
/// and answers 201.
fn fake_container_server() -> (u16, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = Vec::new();
            let mut b = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&b[..n]),
                }
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            let mut lines = text.split("\r\n");
            let first = lines.next().unwrap_or("").to_string();
            let headers =
                lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
            s2.lock().unwrap().push((first, headers));
            let _ = c.write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (port, seen)
}

#[test]
fn container_updates_are_sent_or_saved_as_async_pendings() {
    let n = Node::start("");
    let (cport, seen) = fake_container_server();
    let dead_port = common::testing::free_port();
    let t = ts(-2.0);
    let hosts = format!("127.0.0.1:{cport}, 127.0.0.1:{dead_port}");
    let r = n.req(
        "PUT",
        "/sda/1/a/c/o",
        &[
            ("X-Timestamp", &t),
            ("Content-Type", "text/plain"),
            ("X-Container-Host", &hosts),
            ("X-Container-Device", "cdev1, cdev2"),
            ("X-Container-Partition", "7"),
            ("X-Trans-Id", "tx-test"),
        ],
        b"hello",
    );
    assert_eq!(r.status, 201);
    let got = common::testing::poll_until(Duration::from_secs(10), || seen.lock().unwrap().first().cloned()).unwrap();
    assert_eq!(got.0, "PUT /cdev1/7/a/c/o HTTP/1.1");
    let h = &got.1;
    assert_eq!(h.get("x-size").map(String::as_str), Some("5"));
    assert_eq!(h.get("x-content-type").map(String::as_str), Some("text/plain"));
    assert_eq!(h.get("x-etag").map(String::as_str), Some(md5_hex(b"hello").as_str()));
    assert_eq!(h.get("x-timestamp").map(String::as_str), Some(t.as_str()));
    assert_eq!(h.get("x-backend-storage-policy-index").map(String::as_str), Some("0"));
    assert_eq!(h.get("x-trans-id").map(String::as_str), Some("tx-test"));
    assert!(h.get("referer").is_some_and(|r| r.starts_with("PUT http://")));
    assert_eq!(h.get("user-agent").cloned(), Some(format!("object-server {}", n.server.pid())));

    // The update to the dead host became an async pending.
    let hash = common::hash::HashPathConf::new(PREFIX, SUFFIX).hash_path("a", Some("c"), Some("o")).unwrap();
    let pending = n.device().join("async_pending").join(&hash[29..]).join(format!("{hash}-{t}"));
    assert!(common::testing::poll_until(Duration::from_secs(10), || pending.exists().then_some(())).is_some());
    // Swift's format: a protocol-0 pickle whose headers are a HeaderKeyDict.
    let bytes = std::fs::read(&pending).unwrap();
    assert!(bytes.starts_with(b"(dp0\nVop\np1\nVPUT\n"), "{}", String::from_utf8_lossy(&bytes));
    let v = object_server::async_pending::decode(&bytes).unwrap();
    assert_eq!((v.op.as_str(), v.account.as_str(), v.container.as_str(), v.obj.as_str()), ("PUT", "a", "c", "o"));
    assert_eq!(v.headers["x-size"], "5");
    assert!(v.db_state.is_none());

    // DELETE sends DELETE with the tombstone's timestamp.
    let t2 = ts(-1.0);
    let only_live = format!("127.0.0.1:{cport}");
    let r = n.req(
        "DELETE",
        "/sda/1/a/c/o",
        &[
            ("X-Timestamp", &t2),
            ("X-Container-Host", &only_live),
            ("X-Container-Device", "cdev1"),
            ("X-Container-Partition", "7"),
            ("X-Backend-Storage-Policy-Index", "0"),
        ],
        b"",
    );
    assert_eq!(r.status, 204);
    let got = common::testing::poll_until(Duration::from_secs(10), || seen.lock().unwrap().get(1).cloned()).unwrap();
    assert_eq!(got.0, "DELETE /cdev1/7/a/c/o HTTP/1.1");
    assert_eq!(got.1.get("x-timestamp").map(String::as_str), Some(t2.as_str()));

    // Policy 1 pendings go to async_pending-1.
    let t3 = ts(0.0);
    let dead = format!("127.0.0.1:{dead_port}");
    let r = n.req(
        "PUT",
        "/sda/1/a/c/p1",
        &[
            ("X-Timestamp", &t3),
            ("Content-Type", "a/b"),
            ("X-Backend-Storage-Policy-Index", "1"),
            ("X-Container-Host", &dead),
            ("X-Container-Device", "d"),
            ("X-Container-Partition", "1"),
        ],
        b"x",
    );
    assert_eq!(r.status, 201);
    let dir = n.device().join("async_pending-1");
    assert!(common::testing::poll_until(Duration::from_secs(10), || dir.exists().then_some(())).is_some());
}

#[test]
fn replicate_returns_suffix_hashes_as_swift_does() {
    use object_server::hashes::{decode_replicate_response, REPLICATE_INVALIDATED_BODY};
    let n = Node::start("");
    let t = ts(-1.0);
    assert_eq!(n.req("PUT", "/sda/3/a/c/o", &[("X-Timestamp", &t), ("Content-Type", "a/b")], b"x").status, 201);
    let hd = n.hash_dir("objects", 3, "a", "c", "o");
    let suffix = hd.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    let part = hd.parent().unwrap().parent().unwrap().to_path_buf();
    // The PUT marked its suffix for rehashing.
    assert_eq!(std::fs::read(part.join("hashes.invalid")).unwrap(), format!("{suffix}\n{suffix}\n").into_bytes());
    let r = n.req("REPLICATE", "/sda/3", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    assert!(r.body.starts_with(b"\x80\x02}"), "a protocol-2 pickle of a dict");
    let v = decode_replicate_response(&r.body).unwrap();
    assert_eq!(v.get(&suffix), Some(&md5_hex(format!("{t}.data").as_bytes())));
    assert_eq!(v.len(), 1);
    assert!(part.join("hashes.pkl").is_file());
    assert_eq!(std::fs::read(part.join("hashes.invalid")).unwrap(), b"");
    // Naming suffixes only invalidates them (bad names are ignored).
    let r = n.req("REPLICATE", &format!("/sda/3/{suffix}-fff-xyz"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, REPLICATE_INVALIDATED_BODY);
    assert_eq!(std::fs::read(part.join("hashes.invalid")).unwrap(), format!("{suffix}\nfff\n").into_bytes());
    assert_eq!(decode_replicate_response(&n.req("REPLICATE", "/sda/3", &[], b"").body).unwrap(), v);
    // Empty partition: empty dict.
    assert_eq!(n.req("REPLICATE", "/sda/4", &[], b"").body, b"\x80\x02}q\x00.");
    assert_eq!(n.req("REPLICATE", "/sdz/4", &[], b"").status, 507);
}

#[test]
fn killed_mid_upload_the_old_object_survives() {
    let mut n = Node::start("");
    let t1 = ts(-10.0);
    let old = b"the old object".to_vec();
    assert_eq!(n.req("PUT", "/sda/1/a/c/o", &[("X-Timestamp", &t1), ("Content-Type", "a/b")], &old).status, 201);

    let big: u64 = 64 * 1024 * 1024;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", n.port())).unwrap();
    write!(s, "PUT /sda/1/a/c/o HTTP/1.1\r\nHost: x\r\nX-Timestamp: {}\r\nContent-Type: a/b\r\nContent-Length: {big}\r\n\r\n", ts(-5.0))
        .unwrap();
    let chunk = vec![b'n'; 1024 * 1024];
    for _ in 0..4 {
        s.write_all(&chunk).unwrap();
    }
    // Wait until the server is writing the temp file, then kill it.
    let tmp = n.device().join("tmp");
    let seen = common::testing::poll_until(Duration::from_secs(10), || {
        files_in(&tmp).first().and_then(|f| std::fs::metadata(tmp.join(f)).ok()).filter(|m| m.len() > 0).map(|_| ())
    });
    assert!(seen.is_some(), "upload never reached the disk");
    n.server.kill();
    drop(s);
    n.restart();
    let r = n.req("GET", "/sda/1/a/c/o", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, old);
    assert_eq!(r.header("x-timestamp"), Some(t1.as_str()));
    assert_eq!(files_in(&n.hash_dir("objects", 1, "a", "c", "o")), vec![format!("{t1}.data")]);
}

#[test]
fn a_post_keeps_an_slo_manifests_listing_size_and_etag() {
    let n = Node::start("");
    let (cport, seen) = fake_container_server();
    let host = format!("127.0.0.1:{cport}");
    let update = [("X-Container-Host", host.as_str()), ("X-Container-Device", "cdev"), ("X-Container-Partition", "3")];
    let t = ts(-2.0);
    let mut put = vec![
        ("X-Timestamp", t.as_str()),
        ("Content-Type", "application/octet-stream;swift_bytes=9"),
        ("X-Object-Sysmeta-Container-Update-Override-Etag", "abc; slo_etag=def"),
    ];
    put.extend(update);
    assert_eq!(n.req("PUT", "/sda/1/a/c/m", &put, b"[]").status, 201);
    let t2 = ts(-1.0);
    let mut post = vec![("X-Timestamp", t2.as_str()), ("Content-Type", "image/jpeg")];
    post.extend(update);
    assert_eq!(n.req("POST", "/sda/1/a/c/m", &post, b"").status, 202);
    let got = common::testing::poll_until(Duration::from_secs(10), || seen.lock().unwrap().get(1).cloned()).unwrap();
    assert_eq!(got.1.get("x-content-type").map(String::as_str), Some("image/jpeg;swift_bytes=9"));
    assert_eq!(got.1.get("x-etag").map(String::as_str), Some("abc; slo_etag=def"));
}
