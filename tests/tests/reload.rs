//! SIGHUP reloads a running server as Swift's does: the config files and
//! rings are read again, new connections get the new configuration, and
//! no request in flight fails, under load, through the proxy and straight
//! to an object server.

use cluster::client::{login, request, try_request, Session};
use cluster::{body_of, Cluster, Options, Proc};
use common::testing::poll_until;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long anything we wait for may take on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);

fn start(dir: &Path) -> Cluster {
    Cluster::start(Options { devices: 3, ..Options::for_test(dir) }).expect("cluster starts")
}

/// The pid of the process running `proc`'s binary with its config file
/// (the harness keeps its children to itself).
fn pid_of(proc: &Proc) -> libc::pid_t {
    let config = proc.config.to_string_lossy().into_owned();
    let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
        let pid: libc::pid_t = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        (args.len() >= 2 && args[1] == config.as_bytes()).then_some(pid)
    });
    found.unwrap_or_else(|| panic!("no process runs {config}"))
}

fn signal(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill(2) with a valid signal, on a child of the harness.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn proc_named<'a>(c: &'a Cluster, name: &str) -> &'a Proc {
    c.procs.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no {name}"))
}

/// A kept-alive connection that has been served once: a reload closes it
/// (its generation drains), which is how a test sees a reload happen.
struct Probe(TcpStream);

impl Probe {
    fn open(port: u16) -> Probe {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(s.read(&mut byte).unwrap(), 1, "probe closed early");
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 200"), "{text}");
        let len: usize = text.lines().find_map(|l| l.strip_prefix("content-length:")).map_or(0, |v| v.trim().parse().unwrap());
        s.read_exact(&mut vec![0u8; len]).unwrap();
        Probe(s)
    }

    /// Waits until the server closes the connection.
    fn wait_closed(mut self) {
        let mut buf = [0u8; 64];
        match self.0.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("the idle connection was not closed by a reload: {other:?}"),
        }
    }
}

/// Sends SIGHUP and waits until the reload has taken over.
fn reload(pid: libc::pid_t, port: u16) {
    let probe = Probe::open(port);
    signal(pid, libc::SIGHUP);
    probe.wait_closed();
}

/// Sends `len` bytes as one PUT through the proxy, slowly while `slow` is
/// set; returns the status.
fn slow_put(s: &Session, path: &str, body: &[u8], slow: &AtomicBool) -> u16 {
    let rest = s.url.strip_prefix("http://").unwrap();
    let (host, base) = rest.split_at(rest.find('/').unwrap());
    let mut c = TcpStream::connect(host).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    let head = format!(
        "PUT {base}{path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        s.token,
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    for chunk in body.chunks(16 * 1024) {
        c.write_all(chunk).unwrap();
        if slow.load(Ordering::SeqCst) {
            // Shapes the load (an upload that spans the reloads); nothing
            // waits on it.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw).split(' ').nth(1).unwrap().parse().unwrap()
}

/// GETs `path` through the proxy, reading slowly while `slow` is set;
/// returns the status and the body. `started` is set once bytes flow.
fn slow_get(s: &Session, path: &str, slow: &AtomicBool, started: &AtomicBool) -> (u16, Vec<u8>) {
    let rest = s.url.strip_prefix("http://").unwrap();
    let (host, base) = rest.split_at(rest.find('/').unwrap());
    let mut c = TcpStream::connect(host).unwrap();
    c.set_read_timeout(Some(DEADLINE)).unwrap();
    c.write_all(format!("GET {base}{path} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: {}\r\nConnection: close\r\n\r\n", s.token).as_bytes())
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        started.store(true, Ordering::SeqCst);
        if slow.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let status = String::from_utf8_lossy(&raw[..end]).split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[end + 4..].to_vec())
}

#[test]
fn no_request_fails_while_the_proxy_and_an_object_server_reload() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let s = login(&c.auth_url(), "test:tester", "testing");
    assert_eq!(s.req("PUT", "/reload", &[], b"").status, 201);
    let big = body_of(24 * 1024 * 1024, 7);
    assert_eq!(s.req("PUT", "/reload/big", &[], &big).status, 201);

    let proxy = proc_named(&c, "proxy-server");
    let object = proc_named(&c, "object-server 1");
    let (proxy_pid, object_pid) = (pid_of(proxy), pid_of(object));
    let (proxy_port, object_port) = (proxy.port, object.port);

    let stop = Arc::new(AtomicBool::new(false));
    let slow = Arc::new(AtomicBool::new(true));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    // Small uploads and downloads through the proxy.
    for w in 0..4 {
        let (s, stop, done, failures) =
            (Session { url: s.url.clone(), token: s.token.clone() }, stop.clone(), done.clone(), failures.clone());
        workers.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let path = format!("/reload/w{w}-{i}");
                let body = body_of(40_000 + i, w);
                match s.try_req("PUT", &path, &[], &body) {
                    Ok(r) if r.status == 201 => {}
                    other => failures.lock().unwrap().push(format!("PUT {path}: {other:?}")),
                }
                match s.try_req("GET", &path, &[], b"") {
                    Ok(r) if r.status == 200 && r.body == body => {}
                    Ok(r) => failures.lock().unwrap().push(format!("GET {path}: {} ({} bytes)", r.status, r.body.len())),
                    Err(e) => failures.lock().unwrap().push(format!("GET {path}: {e}")),
                }
                done.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        }));
    }
    // Uploads and downloads straight to the object server that reloads.
    for w in 0..2 {
        let (stop, done, failures) = (stop.clone(), done.clone(), failures.clone());
        workers.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let url = format!("http://127.0.0.1:{object_port}/sdb1/0/AUTH_direct/c/o{w}-{i}");
                let body = body_of(10_000 + i, w + 10);
                let ts = format!("{}.{:05}", 1_700_000_000 + i, w);
                let headers = [("X-Timestamp", ts.as_str()), ("Content-Type", "application/octet-stream")];
                match try_request("PUT", &url, &headers, &body) {
                    Ok(r) if r.status == 201 => {}
                    other => failures.lock().unwrap().push(format!("direct PUT {url}: {other:?}")),
                }
                match try_request("GET", &url, &[], b"") {
                    Ok(r) if r.status == 200 && r.body == body => {}
                    Ok(r) => failures.lock().unwrap().push(format!("direct GET {url}: {} ({} bytes)", r.status, r.body.len())),
                    Err(e) => failures.lock().unwrap().push(format!("direct GET {url}: {e}")),
                }
                done.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        }));
    }
    // A large download and a large upload that stay in flight across every
    // reload.
    let started = Arc::new(AtomicBool::new(false));
    let big_get = {
        let (s, slow, started) = (Session { url: s.url.clone(), token: s.token.clone() }, slow.clone(), started.clone());
        std::thread::spawn(move || slow_get(&s, "/reload/big", &slow, &started))
    };
    let big_put = {
        let (s, slow) = (Session { url: s.url.clone(), token: s.token.clone() }, slow.clone());
        let body = body_of(4 * 1024 * 1024, 9);
        std::thread::spawn(move || (slow_put(&s, "/reload/big-upload", &body, &slow), body))
    };
    assert!(poll_until(DEADLINE, || started.load(Ordering::SeqCst).then_some(())).is_some(), "the big GET never started");

    for _ in 0..4 {
        // Each reload happens while requests are being served.
        let before = done.load(Ordering::SeqCst);
        assert!(poll_until(DEADLINE, || (done.load(Ordering::SeqCst) >= before + 3).then_some(())).is_some(), "the load stalled");
        reload(proxy_pid, proxy_port);
        reload(object_pid, object_port);
    }
    assert!(!big_get.is_finished(), "the big GET should still be in flight after the reloads");
    slow.store(false, Ordering::SeqCst);
    let before = done.load(Ordering::SeqCst);
    assert!(poll_until(DEADLINE, || (done.load(Ordering::SeqCst) >= before + 6).then_some(())).is_some(), "the load stalled");
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "{} requests failed during reloads: {:?}", failures.len(), &failures[..failures.len().min(10)]);

    let (status, body) = big_get.join().unwrap();
    assert_eq!(status, 200);
    assert!(body == big, "the big GET's body differs ({} of {} bytes)", body.len(), big.len());
    let (status, body) = big_put.join().unwrap();
    assert_eq!(status, 201, "the big upload");
    assert!(s.req("GET", "/reload/big-upload", &[], b"").body == body);

    // Still the same processes, still serving.
    assert!(alive(proxy_pid) && alive(object_pid));
    assert_eq!(pid_of(proc_named(&c, "proxy-server")), proxy_pid);
    assert_eq!(s.req("GET", "/reload/big", &[], b"").body.len(), big.len());
    assert_eq!(request("GET", &format!("http://127.0.0.1:{object_port}/healthcheck"), &[], b"").status, 200);
}

/// Adds `line` below the `[section]` line of a config file.
fn add_option(config: &Path, section: &str, line: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let header = format!("[{section}]\n");
    assert!(text.contains(&header), "{} has no [{section}]", config.display());
    std::fs::write(config, text.replacen(&header, &format!("{header}{line}\n"), 1)).unwrap();
}

#[test]
fn a_changed_config_takes_effect_after_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path());
    let proxy = proc_named(&c, "proxy-server");
    let object = proc_named(&c, "object-server 1");
    let (proxy_pid, object_pid) = (pid_of(proxy), pid_of(object));
    let info = format!("http://127.0.0.1:{}/info", proxy.port);
    let health = format!("http://127.0.0.1:{}/healthcheck", object.port);
    assert_eq!(request("GET", &info, &[], b"").status, 200);
    assert_eq!(request("GET", &health, &[], b"").status, 200);

    // The proxy stops exposing /info.
    add_option(&proxy.config, "app:proxy-server", "expose_info = false");
    signal(proxy_pid, libc::SIGHUP);
    let refused = poll_until(DEADLINE, || (request("GET", &info, &[], b"").status == 403).then_some(()));
    assert!(refused.is_some(), "expose_info = false did not take effect after SIGHUP");

    // The object server's healthcheck learns a disable_path that exists.
    let disabled = dir.path().join("disabled");
    std::fs::write(&disabled, b"").unwrap();
    add_option(&object.config, "filter:healthcheck", &format!("disable_path = {}", disabled.display()));
    signal(object_pid, libc::SIGHUP);
    let off = poll_until(DEADLINE, || (request("GET", &health, &[], b"").status == 503).then_some(()));
    assert!(off.is_some(), "disable_path did not take effect after SIGHUP");

    // A config that no longer parses is refused; the server goes on with
    // the one it has, and the next good one is taken.
    let text = std::fs::read_to_string(&proxy.config).unwrap();
    std::fs::write(&proxy.config, text.replace("expose_info = false", "expose_info = false\nclient_timeout = soon")).unwrap();
    signal(proxy_pid, libc::SIGHUP);
    for _ in 0..20 {
        assert_eq!(request("GET", &info, &[], b"").status, 403, "the old config stays while the new one is refused");
    }
    assert!(alive(proxy_pid));
    std::fs::write(&proxy.config, text.replace("expose_info = false", "expose_info = true")).unwrap();
    signal(proxy_pid, libc::SIGHUP);
    let back = poll_until(DEADLINE, || (request("GET", &info, &[], b"").status == 200).then_some(()));
    assert!(back.is_some(), "the proxy did not take the fixed config");
    assert_eq!(pid_of(proc_named(&c, "proxy-server")), proxy_pid);
}
