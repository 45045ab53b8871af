//! The whole cluster, started from the real binaries: the Swift API end to
//! end through the proxy, and faults made by killing real servers.

use cluster::client::request;
use cluster::{Cluster, Options};

fn start(dir: &std::path::Path) -> Cluster {
    Cluster::start(Options {
        data_dir: dir.to_path_buf(),
        proxy_port: 0,
        part_power: 6,
        show_logs: std::env::var_os("SWIFT_TEST_LOGS").is_some(),
        ..Options::default()
    })
    .expect("cluster starts")
}

struct Session {
    url: String,
    token: String,
}

fn login(c: &Cluster, user: &str, key: &str) -> Session {
    let r = request("GET", &c.auth_url(), &[("X-Auth-User", user), ("X-Auth-Key", key)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    Session { url: r.header("x-storage-url").unwrap().to_string(), token: r.header("x-auth-token").unwrap().to_string() }
}

impl Session {
    fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> cluster::client::Resp {
        let mut h = vec![("X-Auth-Token", self.token.as_str())];
        h.extend_from_slice(headers);
        request(method, &format!("{}{}", self.url, path), &h, body)
    }
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
