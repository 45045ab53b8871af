//! Support for tests that start the real server binaries: free ports, a
//! child-process guard that kills on drop, and polling with deadlines.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1").expect("binding an ephemeral port")
}

/// A TCP port on `ip` that was free a moment ago and that this process has
/// not handed out before: tests running in parallel threads each start
/// servers on ports they pick first and bind later, so a port released by
/// one must not be given to another.
pub fn free_port_on(ip: &str) -> std::io::Result<u16> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..1000 {
        let port = std::net::TcpListener::bind((ip, 0))?.local_addr()?.port();
        let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other("no unused ephemeral port found"))
}

/// Whether an HTTP server answers on `ip:port`: an `OPTIONS /` gets any
/// `HTTP/1.x` status line back. A bare TCP connect is not proof: on
/// loopback a connect to a port nobody listens on can meet itself (TCP
/// simultaneous open) when the kernel picks that same port as the source.
pub fn answers_http(ip: &str, port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = TcpStream::connect((ip, port)) else { return false };
    if s.local_addr().is_ok_and(|a| a.port() == port) {
        return false;
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("OPTIONS / HTTP/1.1\r\nHost: {ip}:{port}\r\nConnection: close\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 9];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// Every file below `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Polls `check` until it returns `Some` or `deadline` passes.
pub fn poll_until<T>(deadline: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running server binary; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    child: Option<Child>,
    pub port: u16,
}

impl ServerProcess {
    /// Starts `binary config` and waits (up to 20 s) until `127.0.0.1:port`
    /// accepts connections. Panics if it exits or never listens.
    pub fn start(binary: &Path, config: &Path, port: u16) -> ServerProcess {
        let child = Command::new(binary)
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("SWIFT_TEST_LOGS").is_some() { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut p = ServerProcess { child: Some(child), port };
        let up = poll_until(Duration::from_secs(20), || {
            if let Some(status) = p.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{} exited early: {status}", binary.display());
            }
            answers_http("127.0.0.1", port).then_some(())
        });
        assert!(up.is_some(), "{} did not listen on port {port}", binary.display());
        p
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM and waits up to `deadline` for the process to exit;
    /// returns whether it did.
    pub fn terminate(&mut self, deadline: Duration) -> bool {
        let Some(c) = self.child.as_mut() else { return true };
        // SAFETY: kill(2) with a pid we own and a valid signal number.
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
        }
        let exited = poll_until(deadline, || c.try_wait().ok().flatten()).is_some();
        if exited {
            self.child = None;
        }
        exited
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A response read by [`http_request`].
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    /// Header names lower-cased; the last value wins.
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// A header's value by (any-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one body-less HTTP/1.1 request to `127.0.0.1:port` on a fresh
/// connection (`Connection: close`) and reads the whole response; for tests,
/// so it panics on I/O errors. Chunked bodies are not decoded.
pub fn http_request(port: u16, method: &str, path: &str) -> HttpReply {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connecting to the server");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("setting a read timeout");
    let req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).expect("sending the request");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("reading the response");
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).expect("a status line");
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    HttpReply { status, headers, body: buf[split + 4..].to_vec() }
}
