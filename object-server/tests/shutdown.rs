//! SIGTERM: the server stops accepting, finishes the requests in flight,
//! then exits.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use support::*;

#[test]
fn sigterm_finishes_an_upload_in_flight_then_exits() {
    let mut node = Node::start("graceful_shutdown_timeout = 20");
    let port = node.port();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let body = vec![b'x'; 100_000];
    let head = format!(
        "PUT /sda/0/a/c/o HTTP/1.1\r\nHost: x\r\nX-Timestamp: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        ts(0.0),
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..50_000]).unwrap();
    s.flush().unwrap();
    // Wait until the server is streaming the body into its temp file, so
    // the request is truly in flight when SIGTERM arrives.
    let tmp = node.device().join("tmp");
    let started =
        common::testing::poll_until(Duration::from_secs(10), || std::fs::read_dir(&tmp).ok().and_then(|mut d| d.next()).map(|_| ()));
    assert!(started.is_some(), "the upload never started");
    assert!(!node.server.terminate(Duration::from_millis(300)), "the server waits for the upload in flight");
    // New connections are no longer accepted...
    let refused = common::testing::poll_until(Duration::from_secs(10), || TcpStream::connect(("127.0.0.1", port)).is_err().then_some(()));
    assert!(refused.is_some(), "still accepting after SIGTERM");
    // ...but the upload in flight completes and is acknowledged.
    s.write_all(&body[50_000..]).unwrap();
    let resp = read_response(&mut s, false);
    assert_eq!(resp.status, 201);
    drop(s);
    assert!(node.server.terminate(Duration::from_secs(20)), "the server exits once idle");
    node.server =
        common::testing::ServerProcess::start(std::path::Path::new(env!("CARGO_BIN_EXE_swift-object-server")), &node.config, port);
    assert_eq!(node.req("GET", "/sda/0/a/c/o", &[], b"").body.len(), 100_000);
}

#[test]
fn sighup_does_not_stop_the_server() {
    let node = Node::start("");
    // SAFETY: kill(2) on our own child's pid with a valid signal.
    assert_eq!(unsafe { libc::kill(node.server.pid() as libc::pid_t, libc::SIGHUP) }, 0);
    // Still answering well after the signal was handled.
    let answered = common::testing::poll_until(Duration::from_secs(10), || {
        let r = node.req("OPTIONS", "/", &[], b"");
        (r.status == 200).then_some(())
    });
    assert!(answered.is_some());
    for _ in 0..20 {
        assert_eq!(node.req("OPTIONS", "/", &[], b"").status, 200, "the server survived SIGHUP");
    }
}
