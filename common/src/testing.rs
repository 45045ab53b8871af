//! Support for tests that start the real server binaries: free ports, a
//! child-process guard that kills on drop, and polling with deadlines.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("binding an ephemeral port")
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
            TcpStream::connect(("127.0.0.1", port)).ok()
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
