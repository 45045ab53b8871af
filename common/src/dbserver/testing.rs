//! Support for the integration tests of the account and container
//! servers: starting the real binary on one device with a generated config,
//! and requests with headers. For tests, so it panics on I/O errors.

use crate::testing::{free_port, ServerProcess};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Starts `binary`, the `server_type` (`"account"` or `"container"`)
/// server, in `root`: device `root/node/sda`, a `swift.conf` with policies
/// 0 (`gold`, the default) and 1 (`silver`), and
/// `root/<server_type>-server.conf` with `extra` lines in `[DEFAULT]`.
pub fn start_server(binary: &Path, server_type: &str, root: &Path, extra: &str) -> ServerProcess {
    let devices = root.join("node");
    std::fs::create_dir_all(devices.join("sda")).unwrap();
    std::fs::write(
        root.join("swift.conf"),
        "[swift-hash]\nswift_hash_path_prefix = pre\nswift_hash_path_suffix = suf\n\
         [storage-policy:0]\nname = gold\ndefault = yes\n[storage-policy:1]\nname = silver\n",
    )
    .unwrap();
    let port = free_port();
    let conf = config_path(root, server_type);
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = {port}\nswift_dir = {}\n\
             log_requests = false\n{extra}\n[pipeline:main]\npipeline = {server_type}-server\n\
             [app:{server_type}-server]\nuse = egg:swift#{server_type}\n",
            devices.display(),
            root.display()
        ),
    )
    .unwrap();
    ServerProcess::start(binary, &conf, port)
}

/// The config file [`start_server`] wrote, for restarting the server.
pub fn config_path(root: &Path, server_type: &str) -> PathBuf {
    root.join(format!("{server_type}-server.conf"))
}

/// A response read by [`request`].
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names lower-cased; the last value wins.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value by (any-case) name.
    pub fn h(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One body-less HTTP/1.1 request with `headers` to `127.0.0.1:port` on a
/// fresh connection (`Connection: close`).
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: 0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    parse_reply(&buf, method == "HEAD")
}

/// Parses a whole response; `head` when it answers a HEAD (no body).
fn parse_reply(buf: &[u8], head: bool) -> Reply {
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("complete response head");
    let head_text = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: HashMap<String, String> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    let body = if head { Vec::new() } else { buf[split + 4..].to_vec() };
    Reply { status, headers, body }
}

/// The internal-form timestamp `n` seconds after 2023-11-14T22:13:20Z.
pub fn timestamp(n: u32) -> String {
    format!("{}.00000", 1_700_000_000 + n)
}

pub use crate::testing::files_under;
