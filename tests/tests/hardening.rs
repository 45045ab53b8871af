//! Hostile clients, racing writers and rotten disks, against the real
//! binaries: no connection is held forever, a half-closed request is
//! answered, readers racing writers never quarantine an acknowledged write,
//! and a damaged replica never reaches a client as a good, complete `200`.

use cluster::client::{login, request, try_request, Session};
use cluster::{body_of, rot, Cluster, Options};
use common::testing::files_under;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `client_timeout` of the clusters that test connection deadlines.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How much later than its deadline a close may come on a loaded machine.
const SLACK: Duration = Duration::from_secs(20);

fn start(dir: &Path, extra_conf: &str) -> Cluster {
    Cluster::start(Options { extra_conf: extra_conf.to_string(), ..Options::for_test(dir) }).expect("cluster starts")
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Reads one response (head and a `Content-Length` body) off a connection
/// that stays open; returns the status.
fn read_one_response(s: &mut TcpStream) -> u16 {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "connection closed inside a response head");
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let len: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Reads the head of a response to a HEAD (no body follows) off a
/// connection that stays open; returns the status.
fn read_head_status(s: &mut TcpStream) -> u16 {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "connection closed inside a response head");
        raw.push(byte[0]);
    }
    String::from_utf8_lossy(&raw).split(' ').nth(1).unwrap().parse().unwrap()
}

/// Whether the server closes `s` (EOF or reset) within `within`; whatever
/// it sends first is read and dropped.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let end = Instant::now() + within;
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

fn object_server_port(c: &mut Cluster) -> u16 {
    c.servers("object")[0].port
}

#[test]
fn silent_partial_and_idle_connections_are_closed_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path(), &format!("client_timeout = {}\n", CLIENT_TIMEOUT.as_secs()));
    let targets = [
        ("proxy", c.proxy_port, "GET /healthcheck"),
        ("object server", object_server_port(&mut c), "OPTIONS /"),
        ("container server", c.servers("container")[0].port, "OPTIONS /"),
        ("account server", c.servers("account")[0].port, "OPTIONS /"),
    ];
    for (server, port, request_line) in targets {
        let mut held: Vec<(&str, TcpStream)> = Vec::new();
        for _ in 0..10 {
            held.push(("silent", connect(port)));
            let mut partial = connect(port);
            write!(partial, "{request_line} HTTP/1.1\r\nHost: x\r\nX-Half-A-Head").unwrap();
            held.push(("partial-header", partial));
            let mut idle = connect(port);
            write!(idle, "{request_line} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            assert_eq!(read_one_response(&mut idle), 200, "{server}: the keep-alive request is answered");
            held.push(("idle keep-alive", idle));
        }
        // Thirty connections that send nothing useful do not stop the server
        // from answering others.
        let url = format!("http://127.0.0.1:{port}/{}", if server == "proxy" { "healthcheck" } else { "" });
        let method = if server == "proxy" { "GET" } else { "OPTIONS" };
        assert_eq!(request(method, &url, &[], b"").status, 200, "{server} serves others");
        for (kind, mut conn) in held {
            assert!(closed_by_server(&mut conn, CLIENT_TIMEOUT + SLACK), "{server}: a {kind} connection is still open");
        }
        assert_eq!(request(method, &url, &[], b"").status, 200, "{server} still serves");
    }
}

#[test]
fn a_reader_that_stops_reading_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), &format!("client_timeout = {}\n", CLIENT_TIMEOUT.as_secs()));
    let s = login(&c.auth_url(), "test:tester", "testing");
    assert_eq!(s.req("PUT", "/slow", &[], b"").status, 201);
    // Larger than every socket buffer between the disk and the client, so
    // the servers' writes must block once the client stops reading.
    let size = 48 * 1024 * 1024;
    let data: Vec<u8> = (0..size as u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(s.req("PUT", "/slow/big", &[], &data).status, 201);
    let (host, path) = split_url(&s.url, "/slow/big");
    let mut conn = TcpStream::connect(&host).unwrap();
    write!(conn, "GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {}\r\n\r\n", s.token).unwrap();
    let mut first = vec![0u8; 64 * 1024];
    conn.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200"));
    // The fault under test: a client that stops reading for a while (well
    // past client_timeout), then reads what is left.
    std::thread::sleep(CLIENT_TIMEOUT * 4);
    conn.set_read_timeout(Some(SLACK)).unwrap();
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    let head_len = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let got = first.len() - head_len + rest.len();
    assert!(got < size, "the stalled reader was cut off, not served all {size} bytes");
    // The proxy goes on serving everyone else.
    let r = s.req("GET", "/slow/big", &[], b"");
    assert!(r.status == 200 && r.body == data, "a normal reader still gets the object");
}

fn split_url(storage_url: &str, path: &str) -> (String, String) {
    let rest = storage_url.strip_prefix("http://").unwrap();
    let (host, base) = rest.split_at(rest.find('/').unwrap());
    (host.to_string(), format!("{base}{path}"))
}

#[test]
fn half_closed_requests_get_their_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = start(dir.path(), "");
    let s = login(&c.auth_url(), "test:tester", "testing");
    assert_eq!(s.req("PUT", "/half", &[], b"").status, 201);
    let (host, path) = split_url(&s.url, "/half/o");
    let object_port = object_server_port(&mut c);
    let cases = [
        (c.proxy_port, "GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n".to_string(), "200", "OK"),
        (
            c.proxy_port,
            format!("PUT {path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {}\r\nContent-Length: 5\r\n\r\nhello", s.token),
            "201",
            "",
        ),
        (object_port, "OPTIONS / HTTP/1.1\r\nHost: x\r\n\r\n".to_string(), "200", ""),
    ];
    for (port, req, status, body) in cases {
        let mut conn = connect(port);
        conn.write_all(req.as_bytes()).unwrap();
        // What `printf ... | nc -N` does: the request, then end of input.
        conn.shutdown(Shutdown::Write).unwrap();
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with(&format!("HTTP/1.1 {status}")), "{req:?} got {text:?}");
        assert!(text.ends_with(body), "{text:?}");
    }
    assert_eq!(s.req("GET", "/half/o", &[], b"").text(), "hello");
}

fn quarantined(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dev in std::fs::read_dir(root.join("devices")).unwrap().flatten() {
        for d in std::fs::read_dir(dev.path()).unwrap().flatten() {
            out.extend(files_under(&d.path().join("quarantined")));
        }
    }
    out
}

#[test]
fn readers_racing_writers_never_quarantine_an_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), "");
    let s = Arc::new(login(&c.auth_url(), "test:tester", "testing"));
    assert_eq!(s.req("PUT", "/race", &[], b"").status, 201);
    // 90 items of about 60 bytes: more than ext4 keeps in an inode's
    // xattrs, so the metadata goes to a sidecar file that each overwrite's
    // cleanup unlinks, under the readers' feet.
    let names: Vec<String> = (0..90).map(|i| format!("X-Object-Meta-Key{i:02}")).collect();
    let value = "v".repeat(40);
    let meta: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), value.as_str())).collect();
    assert_eq!(s.req("PUT", "/race/o", &meta, b"version first").status, 201);
    drop(meta);
    // Readers straight at every primary, on kept-alive connections, so
    // that they are many and fast enough to be caught mid-read by the
    // writes' cleanups.
    let place = c.placement("AUTH_test", "race", "o").unwrap();
    let primaries = &place.primaries;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = primaries
        .iter()
        .flat_map(|d| [d.clone(), d.clone()])
        .map(|d| {
            let stop = stop.clone();
            let path = place.direct_url(&d, "AUTH_test", "race", "o").split_off(format!("http://{}:{}", d.ip, d.port).len());
            std::thread::spawn(move || {
                let mut conn = connect(d.port);
                conn.set_nodelay(true).unwrap();
                let request = format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n");
                let mut heads = 0;
                while !stop.load(Ordering::Relaxed) {
                    conn.write_all(request.as_bytes()).unwrap();
                    assert_eq!(read_head_status(&mut conn), 200, "an object being overwritten is always there");
                    heads += 1;
                }
                heads
            })
        })
        .collect();
    // Two writers, so that commits also overlap each other's cleanups.
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (s, names, value) = (s.clone(), names.clone(), value.clone());
            std::thread::spawn(move || {
                let meta: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), value.as_str())).collect();
                for i in 0..125 {
                    let r = s.req("PUT", "/race/o", &meta, format!("writer {w} version {i}").as_bytes());
                    assert_eq!(r.status, 201, "writer {w} PUT {i}: {}", r.text());
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    stop.store(true, Ordering::Relaxed);
    let heads: usize = readers.into_iter().map(|t| t.join().expect("reader")).sum();
    eprintln!("{heads} HEADs raced the writes");
    assert!(heads > 0);
    assert_eq!(quarantined(dir.path()), Vec::<PathBuf>::new(), "nothing is quarantined");
    // Every primary ends with the same acknowledged write (the writes that
    // finished after the quorum answered are waited for), whole.
    let last = s.req("GET", "/race/o", &[], b"");
    assert!(last.text().starts_with("writer "), "{}", last.text());
    let same_everywhere = common::testing::poll_until(Duration::from_secs(30), || {
        primaries
            .iter()
            .all(|d| {
                request("HEAD", &place.direct_url(d, "AUTH_test", "race", "o"), &[], b"").header("x-timestamp")
                    == last.header("x-timestamp")
            })
            .then_some(())
    });
    assert!(same_everywhere.is_some(), "the primaries agree on the newest write");
    for d in primaries {
        let r = request("GET", &place.direct_url(d, "AUTH_test", "race", "o"), &[], b"");
        assert_eq!((r.status, r.text()), (200, last.text()), "the last write on {}", d.device);
        assert_eq!(r.header("x-object-meta-key89"), Some(value.as_str()));
    }
    assert_eq!(quarantined(dir.path()), Vec::<PathBuf>::new(), "nothing is quarantined");
}

#[test]
fn a_rotten_small_replica_is_served_from_a_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), "");
    let s = login(&c.auth_url(), "test:tester", "testing");
    assert_eq!(s.req("PUT", "/rot", &[], b"").status, 201);
    let data = body_of(20_000, 1);
    assert_eq!(s.req("PUT", "/rot/small", &[], &data).status, 201);
    let place = c.placement("AUTH_test", "rot", "small").unwrap();
    let bad = &place.primaries[0];
    rot(&place.data_file(&c, bad).unwrap(), 10_000, 16).unwrap();
    for i in 0..20 {
        let r = s.req("GET", "/rot/small", &[], b"");
        assert_eq!(r.status, 200, "GET {i}");
        assert!(r.is_complete() && r.body == data, "GET {i}: the right bytes");
    }
    // The rotten copy is never served: it answers as a missing replica and
    // is quarantined (if no proxy GET reached it first, this one does).
    assert_eq!(request("GET", &place.direct_url(bad, "AUTH_test", "rot", "small"), &[], b"").status, 404);
    assert!(!quarantined(dir.path()).is_empty());
    assert_eq!(request("GET", &place.direct_url(&place.primaries[1], "AUTH_test", "rot", "small"), &[], b"").body, data);
}

/// A GET through `s` that must never be a complete `200` with wrong
/// bytes: returns whether it was a complete, correct one.
fn get_never_wrong(s: &Session, path: &str, data: &[u8]) -> bool {
    match s.try_req("GET", path, &[], b"") {
        Ok(r) if r.status == 200 && r.is_complete() => {
            assert!(r.body == data, "GET {path}: a complete 200 with wrong bytes");
            true
        }
        Ok(r) => {
            assert!(r.status == 200, "GET {path}: {}", r.status);
            false
        }
        Err(_) => false,
    }
}

#[test]
fn a_rotten_large_replica_never_reaches_a_client_as_good_data() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path(), "");
    let s = login(&c.auth_url(), "test:tester", "testing");
    assert_eq!(s.req("PUT", "/rot", &[], b"").status, 201);
    let data = body_of(3_000_000, 2);
    // One object with one rotten replica, as a disk would have it; one with
    // two, so that reads certainly start on a rotten copy and the proxy
    // must refuse to finish them from a good one.
    for (name, rotten) in [("one-bad", 1), ("two-bad", 2)] {
        assert_eq!(s.req("PUT", &format!("/rot/{name}"), &[], &data).status, 201);
        let place = c.placement("AUTH_test", "rot", name).unwrap();
        for (i, d) in place.primaries.iter().take(rotten).enumerate() {
            rot(&place.data_file(&c, d).unwrap(), 1_000_000 + i as u64 * 7, 16).unwrap();
        }
        let mut good = 0;
        for _ in 0..20 {
            good += usize::from(get_never_wrong(&s, &format!("/rot/{name}"), &data));
        }
        assert!(good > 0, "{name}: the good replica serves the object");
        // Straight from a rotten copy's server: never a complete 200 with
        // wrong bytes either; after it the copy is quarantined.
        let url = place.direct_url(&place.primaries[0], "AUTH_test", "rot", name);
        match try_request("GET", &url, &[], b"") {
            Ok(r) if r.status == 200 => assert!(!r.is_complete(), "{name}: the rotten copy's body is broken off"),
            Ok(r) => assert_eq!(r.status, 404, "{name}: already quarantined"),
            Err(_) => {}
        }
        assert_eq!(request("GET", &url, &[], b"").status, 404);
    }
    assert!(!quarantined(dir.path()).is_empty());
}
