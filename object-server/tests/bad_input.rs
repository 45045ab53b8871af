//! Bad requests get the right 4xx with a one-line reason and write nothing.

mod support;

use support::*;

const P: &str = "/sda/1/a/c/o";

#[test]
fn bad_puts_are_refused_and_write_nothing() {
    let n = Node::start("");
    let t = ts(-1.0);
    type Case = (Vec<(&'static str, String)>, &'static [u8], u16, &'static str);
    let cases: Vec<Case> = vec![
        (vec![("Content-Type", "a/b".into())], b"x", 400, "Missing X-Timestamp header"),
        (vec![("X-Timestamp", "yesterday".into()), ("Content-Type", "a/b".into())], b"x", 400, "Invalid X-Timestamp header"),
        (vec![("X-Timestamp", t.clone())], b"x", 400, "No content type"),
        (
            vec![("X-Timestamp", t.clone()), ("Content-Type", "a/b".into()), ("X-Object-Meta-", "x".into())],
            b"x",
            400,
            "Metadata name cannot be empty",
        ),
        (
            vec![
                ("X-Timestamp", t.clone()),
                ("Content-Type", "a/b".into()),
                (Box::leak(format!("X-Object-Meta-{}", "n".repeat(129)).into_boxed_str()), "x".into()),
            ],
            b"x",
            400,
            "",
        ),
        (
            vec![("X-Timestamp", t.clone()), ("Content-Type", "a/b".into()), ("X-Delete-At", "soon".into())],
            b"x",
            400,
            "Non-integer X-Delete-At",
        ),
        (
            vec![("X-Timestamp", t.clone()), ("Content-Type", "a/b".into()), ("Content-Length", "6000000000".into())],
            b"",
            413,
            "Your request is too large.",
        ),
    ];
    for (headers, body, status, reason) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = n.req("PUT", P, &h, body);
        assert_eq!(r.status, status, "{headers:?}: {}", String::from_utf8_lossy(&r.body));
        if !reason.is_empty() {
            assert_eq!(String::from_utf8_lossy(&r.body), reason);
        }
    }
    // Total metadata over 4096 bytes.
    let vals: Vec<(String, String)> = (0..20).map(|i| (format!("X-Object-Meta-M{i:02}"), "v".repeat(250))).collect();
    let mut h: Vec<(&str, &str)> = vals.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    h.push(("X-Timestamp", &t));
    h.push(("Content-Type", "a/b"));
    let r = n.req("PUT", P, &h, b"x");
    assert_eq!((r.status, String::from_utf8_lossy(&r.body).into_owned()), (400, "Total metadata too large; max 4096".to_string()));
    // No Content-Length and not chunked: 411 (raw request, no length header).
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", n.port())).unwrap();
        write!(s, "PUT {P} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Timestamp: {t}\r\nContent-Type: a/b\r\n\r\n").unwrap();
        let r = read_response(&mut s, false);
        assert_eq!(r.status, 411);
    }
    // Object name too long.
    let long = format!("/sda/1/a/c/{}", "o".repeat(1025));
    let r = n.req("PUT", &long, &[("X-Timestamp", &t), ("Content-Type", "a/b")], b"x");
    assert_eq!(r.status, 400);
    assert_eq!(String::from_utf8_lossy(&r.body), "Object name length of 1025 longer than 1024");
    // Bad paths.
    assert_eq!(n.req("PUT", "/sda/1/a/c/%ff", &[("X-Timestamp", &t), ("Content-Type", "a/b")], b"x").status, 412);
    assert_eq!(n.req("GET", "/sda/1/a/c", &[], b"").status, 400);
    assert_eq!(n.req("GET", "/sda/x/a/c/o", &[], b"").status, 400);
    // Unknown device: 507.
    let r = n.req("PUT", "/sdz/1/a/c/o", &[("X-Timestamp", &t), ("Content-Type", "a/b")], b"x");
    assert_eq!(r.status, 507);
    assert!(!n.device().join("objects").exists(), "nothing may be written");
    assert!(files_in(&n.device().join("tmp")).is_empty());
    assert!(!n.dir.path().join("node/sdz").exists());
}

#[test]
fn client_disconnect_and_timeout_leave_nothing() {
    use std::io::Write;
    let n = Node::start("client_timeout = 1\n");
    let t = ts(-1.0);
    // Short body then close: 499 (the server sees the body end early).
    {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", n.port())).unwrap();
        write!(s, "PUT {P} HTTP/1.1\r\nHost: x\r\nX-Timestamp: {t}\r\nContent-Type: a/b\r\nContent-Length: 100\r\n\r\nonly-ten!!").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let _ = read_response_or_none(&mut s);
    }
    // A stalled body: 408 after client_timeout.
    {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", n.port())).unwrap();
        write!(s, "PUT /sda/1/a/c/slow HTTP/1.1\r\nHost: x\r\nX-Timestamp: {t}\r\nContent-Type: a/b\r\nContent-Length: 100\r\n\r\nabc")
            .unwrap();
        let r = read_response(&mut s, false);
        assert_eq!(r.status, 408);
    }
    let tmp = n.device().join("tmp");
    assert!(common::testing::poll_until(std::time::Duration::from_secs(10), || files_in(&tmp).is_empty().then_some(())).is_some());
    assert_eq!(n.req("GET", P, &[], b"").status, 404);
    assert_eq!(n.req("GET", "/sda/1/a/c/slow", &[], b"").status, 404);
    assert!(files_in(&n.hash_dir("objects", 1, "a", "c", "o")).is_empty());
}

fn read_response_or_none(s: &mut std::net::TcpStream) -> Option<u16> {
    use std::io::Read;
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    String::from_utf8_lossy(&all).split(' ').nth(1).and_then(|x| x.parse().ok())
}
