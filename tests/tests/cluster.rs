//! The whole cluster, started from the real binaries: the Swift API end to
//! end through the proxy, and faults made by killing real servers.

use cluster::client::{request, Session};
use cluster::{Cluster, Options};

fn start(dir: &std::path::Path) -> Cluster {
    Cluster::start(Options::for_test(dir)).expect("cluster starts")
}

fn login(c: &Cluster, user: &str, key: &str) -> Session {
    cluster::client::login(&c.auth_url(), user, key)
}

#[test]
fn api_round_trip_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let s = login(&c, "test:tester", "testing");
    assert!(s.url.ends_with("/v1/AUTH_test"));
    assert_eq!(s.req("PUT", "/photos", &[], b"").status, 201);
    let r = s.req("PUT", "/photos/cat.jpg", &[("X-Object-Meta-Color", "orange")], b"meow");
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("etag"), Some("4a4be40c96ac6314e91d93f38043a634"));
    let r = s.req("GET", "/photos/cat.jpg", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"meow");
    assert_eq!(r.header("x-object-meta-color"), Some("orange"));
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    let r = s.req("GET", "/photos", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "cat.jpg\n");
    let r = s.req("HEAD", "", &[], b"");
    assert!(r.status == 204 || r.status == 200, "{}", r.status);
    assert_eq!(s.req("DELETE", "/photos/cat.jpg", &[], b"").status, 204);
    assert_eq!(s.req("GET", "/photos/cat.jpg", &[], b"").status, 404);
    assert_eq!(s.req("DELETE", "/photos", &[], b"").status, 204);
    // No token, wrong token.
    assert_eq!(request("GET", &format!("{}/photos", s.url), &[], b"").status, 401);
    assert_eq!(request("GET", &format!("{}/photos", s.url), &[("X-Auth-Token", "AUTH_tkbogus")], b"").status, 401);
}

#[test]
fn one_object_server_down_then_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path());
    let s = login(&c, "test:tester", "testing");
    assert_eq!(s.req("PUT", "/c", &[], b"").status, 201);
    c.servers("object")[0].kill();
    for i in 0..10 {
        let name = format!("/c/o{i}");
        assert_eq!(s.req("PUT", &name, &[], format!("data {i}").as_bytes()).status, 201, "PUT {name}");
        let r = s.req("GET", &name, &[], b"");
        assert_eq!(r.status, 200, "GET {name}");
        assert_eq!(r.text(), format!("data {i}"));
        assert_eq!(s.req("HEAD", &name, &[], b"").status, 200);
    }
    assert_eq!(s.req("DELETE", "/c/o9", &[], b"").status, 204);
    let ip = c.opts.bind_ip.clone();
    c.servers("object")[0].restart(&ip).unwrap();
    for i in 0..9 {
        let r = s.req("GET", &format!("/c/o{i}"), &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("data {i}"));
    }
}

#[test]
fn writes_without_a_quorum_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path());
    let s = login(&c, "test:tester", "testing");
    assert_eq!(s.req("PUT", "/c", &[], b"").status, 201);
    // Three of four object servers down: one node can never make a quorum
    // of two, whichever handoffs are tried.
    for p in c.servers("object").into_iter().take(3) {
        p.kill();
    }
    let r = s.req("PUT", "/c/o", &[], b"data");
    assert_eq!(r.status, 503, "{}", r.text());
    let ip = c.opts.bind_ip.clone();
    for p in c.servers("object").into_iter().take(3) {
        p.restart(&ip).unwrap();
    }
    assert_eq!(s.req("GET", "/c/o", &[], b"").status, 404, "nothing was acknowledged, so nothing is there");
}

/// Starts one more proxy on the cluster's config (another port, optional
/// extra tempauth settings), as a second proxy behind a load balancer.
fn second_proxy(c: &Cluster, dir: &std::path::Path, extra_tempauth: &str) -> common::testing::ServerProcess {
    let text = std::fs::read_to_string(c.etc.join("proxy-server.conf")).unwrap();
    let port = common::testing::free_port();
    let text = text
        .replace(&format!("bind_port = {}", c.proxy_port), &format!("bind_port = {port}"))
        .replace("[filter:tempauth]\n", &format!("[filter:tempauth]\n{extra_tempauth}\n"));
    let conf = dir.join(format!("proxy-{port}.conf"));
    std::fs::write(&conf, text).unwrap();
    let bin = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("swift-proxy-server");
    common::testing::ServerProcess::start(&bin, &conf, port)
}

#[test]
fn tempauth_under_another_section_name_still_authenticates() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    // What many real configs do: the filter is called `auth`.
    let text = std::fs::read_to_string(c.etc.join("proxy-server.conf")).unwrap();
    let port = common::testing::free_port();
    let text = text
        .replace(&format!("bind_port = {}", c.proxy_port), &format!("bind_port = {port}"))
        .replace(" tempauth ", " auth ")
        .replace("[filter:tempauth]\n", "[filter:auth]\n");
    assert!(text.contains("[filter:auth]\nuse = egg:swift#tempauth"), "{text}");
    let conf = dir.path().join("proxy-auth.conf");
    std::fs::write(&conf, &text).unwrap();
    let bin = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("swift-proxy-server");
    let _proxy = common::testing::ServerProcess::start(&bin, &conf, port);
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(request("GET", &format!("{base}/v1/AUTH_test"), &[], b"").status, 401, "anonymous requests are refused");
    let s = cluster::client::login(&format!("{base}/auth/v1.0"), "test:tester", "testing");
    assert!(s.url.starts_with(&base));
    assert!(s.req("GET", "", &[], b"").status / 100 == 2);

    // A pipeline with an auth filter this proxy cannot run does not start
    // at all (it would serve every account to anyone).
    let keystone = text.replace(" auth ", " authtoken keystoneauth ")
        + "\n[filter:authtoken]\nuse = egg:swift#authtoken\n[filter:keystoneauth]\nuse = egg:swift#keystoneauth\n";
    let conf = dir.path().join("proxy-keystone.conf");
    std::fs::write(&conf, keystone).unwrap();
    let out = std::process::Command::new(&bin).arg(&conf).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[filter:authtoken]"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn tokens_work_on_every_proxy_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(&dir.path().join("saio"));
    let s = login(&c, "test:tester", "testing");
    let other = second_proxy(&c, dir.path(), "");
    let url2 = s.url.replace(&format!(":{}/", c.proxy_port), &format!(":{}/", other.port));
    let r = request("HEAD", &url2, &[("X-Auth-Token", &s.token)], b"");
    assert!(r.status == 204 || r.status == 200, "a token from one proxy works on another: {}", r.status);

    // A proxy with a 2 s token life hands out tokens that stop working.
    let short = second_proxy(&c, dir.path(), "token_life = 2");
    let auth = format!("http://127.0.0.1:{}/auth/v1.0", short.port);
    let r = request("GET", &auth, &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")], b"");
    assert_eq!(r.status, 200);
    let token = r.header("x-auth-token").unwrap().to_string();
    let expires: u64 = r.header("x-auth-token-expires").unwrap().parse().unwrap();
    assert!(expires <= 2, "expires in {expires}");
    let url = r.header("x-storage-url").unwrap().to_string();
    let expired = common::testing::poll_until(std::time::Duration::from_secs(15), || {
        (request("HEAD", &url, &[("X-Auth-Token", &token)], b"").status == 401).then_some(())
    });
    assert!(expired.is_some(), "the token never expired");
}

#[test]
fn gatekeeper_healthcheck_and_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let base = format!("http://127.0.0.1:{}", c.proxy_port);
    let r = request("GET", &format!("{base}/healthcheck"), &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "OK"));
    // Every storage server runs its pipeline's healthcheck and recon
    // filters in front of its app.
    for p in c.procs.iter().filter(|p| p.port != 0 && !p.name.starts_with("proxy")) {
        let r = request("GET", &format!("http://127.0.0.1:{}/healthcheck", p.port), &[], b"");
        assert_eq!((r.status, r.text().as_str()), (200, "OK"), "{}", p.name);
        let r = request("GET", &format!("http://127.0.0.1:{}/recon/version", p.port), &[], b"");
        assert_eq!(r.status, 200, "{}", p.name);
    }
    let r = request("GET", &format!("{base}/info"), &[], b"");
    let info: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(info["swift"]["max_file_size"], 5368709122u64);
    let s = login(&c, "test:tester", "testing");
    assert_eq!(s.req("PUT", "/g", &[], b"").status, 201);
    // Backend headers from a client are ignored, and never shown to one.
    let r = s.req("PUT", "/g/o", &[("X-Backend-Storage-Policy-Index", "7"), ("X-Object-Sysmeta-Secret", "x")], b"data");
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s.req("GET", "/g/o", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.headers.iter().all(|(k, _)| !k.starts_with("x-backend-") && !k.contains("sysmeta")), "{:?}", r.headers);
    let id = r.header("x-openstack-request-id").unwrap();
    assert!(id.starts_with("tx") && r.header("x-trans-id") == Some(id));
}

#[test]
fn a_failed_device_is_replaced_by_a_handoff() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let s = login(&c, "test:tester", "testing");
    assert_eq!(s.req("PUT", "/h", &[], b"").status, 201);
    let conf = common::swift_conf::SwiftConf::load_dir(&c.etc).unwrap();
    let ring = ring::Ring::load_named(&c.etc, "object", conf.hash.clone()).unwrap();
    let (part, primaries) = ring.get_nodes("AUTH_test", Some("h"), Some("o")).unwrap();
    let handoff = ring.table().handoffs(part).next().unwrap().clone();
    // The first primary's disk "fails": its device directory disappears,
    // so its server answers 507 and the proxy must use the handoff.
    let failed = &primaries[0];
    let dev_dir = |d: &ring::Device| dir.path().join("devices").join(&d.device[3..]).join(&d.device);
    std::fs::rename(dev_dir(failed), dir.path().join("gone")).unwrap();
    assert_eq!(s.req("PUT", "/h/o", &[], b"handed off").status, 201);
    assert_eq!(s.req("GET", "/h/o", &[], b"").text(), "handed off");
    let hash = conf.hash.hash_path("AUTH_test", Some("h"), Some("o")).unwrap();
    let on_handoff = dev_dir(&handoff).join("objects").join(part.to_string()).join(&hash[29..]).join(&hash);
    assert!(on_handoff.is_dir(), "the handoff {} holds the object", handoff.device);
}

#[test]
fn dynamic_large_objects_are_assembled_from_their_segments() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let s = login(&c, "test:tester", "testing");
    assert_eq!(s.req("PUT", "/segs", &[], b"").status, 201);
    for (i, part) in ["one", "two", "three"].iter().enumerate() {
        assert_eq!(s.req("PUT", &format!("/segs/big/{i:03}"), &[], part.as_bytes()).status, 201);
    }
    let r = s.req("PUT", "/segs/big", &[("X-Object-Manifest", "segs/big/"), ("Content-Type", "text/x-dlo")], b"");
    assert_eq!(r.status, 201);
    let r = s.req("GET", "/segs/big", &[], b"");
    assert_eq!((r.status, r.text().as_str()), (200, "onetwothree"));
    assert_eq!(r.header("content-type"), Some("text/x-dlo"));
    let r = s.req("GET", "/segs/big", &[("Range", "bytes=2-5")], b"");
    assert_eq!((r.status, r.text().as_str()), (206, "etwo"));
    assert_eq!(r.header("content-range"), Some("bytes 2-5/11"));
    let r = s.req("GET", "/segs/big?multipart-manifest=get", &[], b"");
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(s.req("PUT", "/segs/bad", &[("X-Object-Manifest", "no-slash")], b"").status, 400);
    // Conditions are judged on the joined object's ETag.
    let etag = s.req("HEAD", "/segs/big", &[], b"").header("etag").unwrap().to_string();
    assert_eq!(s.req("GET", "/segs/big", &[("If-Match", &etag)], b"").text(), "onetwothree");
    assert_eq!(s.req("GET", "/segs/big", &[("If-None-Match", &etag)], b"").status, 304);
    assert_eq!(s.req("GET", "/segs/big", &[("If-Match", "\"nope\"")], b"").status, 412);
    // A copy of a DLO is a plain object holding the joined bytes.
    assert_eq!(s.req("COPY", "/segs/big", &[("Destination", "segs/copied")], b"").status, 201);
    let r = s.req("GET", "/segs/copied", &[], b"");
    assert_eq!((r.status, r.text().as_str(), r.header("x-object-manifest")), (200, "onetwothree", None));
    // ...unless the manifest itself is asked for.
    assert_eq!(s.req("COPY", "/segs/big?multipart-manifest=get", &[("Destination", "segs/manifest-copy")], b"").status, 201);
    assert_eq!(s.req("GET", "/segs/manifest-copy", &[], b"").text(), "onetwothree");
    assert_eq!(s.req("GET", "/segs/manifest-copy?multipart-manifest=get", &[], b"").body.len(), 0);
}

#[test]
fn a_read_survives_its_node_dying_mid_body() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path());
    let s = login(&c, "test:tester", "testing");
    assert_eq!(s.req("PUT", "/r", &[], b"").status, 201);
    let data: Vec<u8> = (0..96u32 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    assert_eq!(s.req("PUT", "/r/big", &[], &data).status, 201);
    // Start reading, take a little, then kill two of the three primaries:
    // whichever node is serving, the rest must come from a survivor.
    let host = s.url.strip_prefix("http://").unwrap().split('/').next().unwrap().to_string();
    let path = format!("{}/r/big", s.url.split_once(&host).unwrap().1);
    let mut conn = std::net::TcpStream::connect(&host).unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {}\r\nConnection: close\r\n\r\n", s.token).unwrap();
    let mut first = vec![0u8; 256 * 1024];
    conn.read_exact(&mut first).unwrap();
    let conf = common::swift_conf::SwiftConf::load_dir(&c.etc).unwrap();
    let ring = ring::Ring::load_named(&c.etc, "object", conf.hash.clone()).unwrap();
    let (_, primaries) = ring.get_nodes("AUTH_test", Some("r"), Some("big")).unwrap();
    for d in primaries.iter().take(2) {
        let n: usize = d.device[3..].parse().unwrap();
        c.servers("object")[n - 1].kill();
    }
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest).unwrap();
    first.extend_from_slice(&rest);
    let end = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));
    assert_eq!(&first[end + 4..], &data[..], "the whole object, byte for byte");
}

#[test]
fn container_updaters_bring_account_stats_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let s = login(&c, "test:tester", "testing");
    assert_eq!(s.req("PUT", "/stats", &[], b"").status, 201);
    let bodies: [&[u8]; 3] = [b"a", b"bb", b"cccc"];
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(s.req("PUT", &format!("/stats/o{i}"), &[], body).status, 201);
    }
    // Only the container-updater carries object counts to the account
    // servers (each sweep is 5 s apart in the test cluster's configs).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let head = loop {
        let r = s.req("HEAD", "", &[], b"");
        if r.header("x-account-object-count") == Some("3") {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the account still shows {:?} objects after 30 s",
            r.header("x-account-object-count")
        );
        // Each poll goes through the proxy to the account servers: poll
        // gently on a shared machine.
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(head.header("x-account-bytes-used"), Some("7"));
    assert_eq!(head.header("x-account-container-count"), Some("1"));
    let listing = s.req("GET", "?format=json", &[], b"");
    assert_eq!(listing.status, 200, "{}", listing.text());
    let v: serde_json::Value = serde_json::from_slice(&listing.body).unwrap();
    assert_eq!(v[0]["name"], "stats");
    assert_eq!(v[0]["count"], 3);
    assert_eq!(v[0]["bytes"], 7);
}

#[test]
fn object_updaters_replay_async_pendings_into_container_listings() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path());
    let s = login(&c, "test:tester", "testing");
    assert_eq!(s.req("PUT", "/pending", &[], b"").status, 201);
    // Warm the proxy's container info so the PUT below does not need a
    // container server to route.
    assert_eq!(s.req("HEAD", "/pending", &[], b"").status, 204);
    for p in c.servers("container") {
        p.kill();
    }
    // Every container update fails: each object server saves an async
    // pending, and the write still succeeds.
    let r = s.req("PUT", "/pending/late.txt", &[], b"arrives later");
    assert_eq!(r.status, 201, "{}", r.text());
    let etag = r.header("etag").expect("PUT returns an etag").trim_matches('"').to_string();
    assert!(count_async_pendings(&dir.path().join("devices")) > 0, "the object servers saved async pendings");
    let ip = c.opts.bind_ip.clone();
    for p in c.servers("container") {
        p.restart(&ip).expect("container server restarts");
    }
    // Only the object-updaters (sweeps 5 s apart in the test cluster's
    // configs) can tell the container servers about the object now.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = s.req("GET", "/pending", &[], b"");
        if r.status == 200 && r.text() == "late.txt\n" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the listing still shows {} {:?} after 30 s", r.status, r.text());
        // Each poll goes through the proxy to the container servers: poll
        // gently on a shared machine.
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let r = s.req("GET", "/pending?format=json", &[], b"");
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v[0]["bytes"], 13);
    assert_eq!(v[0]["hash"], etag.as_str());
}

/// Files below `<devices>/<n>/<dev>/async_pending*/<suffix>/`.
fn count_async_pendings(devices: &std::path::Path) -> usize {
    let read = |p: &std::path::Path| {
        std::fs::read_dir(p).map(|it| it.filter_map(|e| e.ok()).map(|e| e.path()).collect::<Vec<_>>()).unwrap_or_default()
    };
    let mut n = 0;
    for node in read(devices) {
        for dev in read(&node) {
            for dir in read(&dev).into_iter().filter(|d| d.file_name().is_some_and(|f| f.to_string_lossy().starts_with("async_pending"))) {
                n += read(&dir).iter().map(|sfx| read(sfx).len()).sum::<usize>();
            }
        }
    }
    n
}

/// The container HEADs the container servers logged so far.
fn container_heads(c: &Cluster, container: &str) -> usize {
    let needle = "\"HEAD /";
    let suffix = format!("/AUTH_test/{container}\"");
    std::fs::read_dir(c.log_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("container-server"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .map(|log| log.lines().filter(|l| l.contains(needle) && l.contains(&suffix)).count())
        .sum()
}

#[test]
fn middlewares_read_container_info_from_the_proxys_cache() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let s = login(&c, "test:tester", "testing");
    // A quota makes container_quotas look the container up on every PUT;
    // versioning, object_versioning on every object request.
    let r = s.req("PUT", "/cached", &[("X-Container-Meta-Quota-Bytes", "1000000"), ("X-Versions-Enabled", "true")], b"");
    assert_eq!(r.status, 201);
    assert_eq!(s.req("PUT", "/cached/o", &[], b"data").status, 201);
    let before = container_heads(&c, "cached");
    for i in 0..10 {
        assert_eq!(s.req("PUT", &format!("/cached/o{i}"), &[], b"data").status, 201);
        assert_eq!(s.req("GET", "/cached/o", &[], b"").status, 200);
    }
    // The access lines of a request are written when it ends, so the
    // count is complete once the last response arrived.
    let after = container_heads(&c, "cached");
    assert!(after - before <= 1, "{} container HEADs for 20 requests", after - before);
    // The quota still applies, from the cached info.
    let r = s.req("POST", "/cached", &[("X-Container-Meta-Quota-Bytes", "10")], b"");
    assert_eq!(r.status, 204);
    assert_eq!(s.req("PUT", "/cached/big", &[], &[b'x'; 20]).status, 413);
}
