//! The object server's connection cap (Swift's `max_clients`), against the
//! real binary.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::{read_response, Node};

#[test]
fn past_max_clients_new_connections_wait_until_one_closes() {
    let n = Node::start("max_clients = 2\n");
    let first = TcpStream::connect(("127.0.0.1", n.port())).unwrap();
    let _second = TcpStream::connect(("127.0.0.1", n.port())).unwrap();
    // The third connection completes in the kernel's backlog, but the
    // server takes it only when one of the two it serves goes away.
    let mut third = TcpStream::connect(("127.0.0.1", n.port())).unwrap();
    third.write_all(b"OPTIONS / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    third.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut byte = [0u8; 1];
    let waited = third.read(&mut byte);
    assert!(
        matches!(&waited, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
        "a third client is not served while two are: {waited:?}"
    );
    drop(first);
    third.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let r = read_response(&mut third, false);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("server").map(|s| s.starts_with("object-server/")), Some(true));
}
