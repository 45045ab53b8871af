//! Test harness: starts the real `swift-object-server` with a generated
//! config and talks raw HTTP/1.1 to it.

#![allow(dead_code)]

use common::testing::{free_port, ServerProcess};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const PREFIX: &str = "pre";
pub const SUFFIX: &str = "suf";

/// A running object server over a temp devices dir with device `sda`.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub server: ServerProcess,
}

impl Node {
    pub fn start(extra: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let devices = dir.path().join("node");
        std::fs::create_dir_all(devices.join("sda")).unwrap();
        let swift_dir = dir.path().join("etc");
        std::fs::create_dir_all(&swift_dir).unwrap();
        std::fs::write(
            swift_dir.join("swift.conf"),
            format!(
                "[swift-hash]\nswift_hash_path_prefix = {PREFIX}\nswift_hash_path_suffix = {SUFFIX}\n\n\
                 [storage-policy:0]\nname = gold\ndefault = yes\n\n[storage-policy:1]\nname = silver\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let config = dir.path().join("object-server.conf");
        std::fs::write(
            &config,
            format!(
                "[DEFAULT]\ndevices = {}\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = {port}\nswift_dir = {}\n\
                 log_level = DEBUG\n{extra}\n[pipeline:main]\npipeline = object-server\n\n[app:object-server]\nuse = egg:swift#object\n",
                devices.display(),
                swift_dir.display()
            ),
        )
        .unwrap();
        let server = ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_swift-object-server")), &config, port);
        Node { dir, config, server }
    }

    pub fn restart(&mut self) {
        self.server.kill();
        self.server = ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_swift-object-server")), &self.config, self.server.port);
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    pub fn device(&self) -> PathBuf {
        self.dir.path().join("node").join("sda")
    }

    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        request(self.port(), method, path, headers, body)
    }

    /// The hash directory of `/a/c/o` in partition `part` for `policy_dir`.
    pub fn hash_dir(&self, policy_dir: &str, part: u32, a: &str, c: &str, o: &str) -> PathBuf {
        let hash = common::hash::HashPathConf::new(PREFIX, SUFFIX).hash_path(a, Some(c), Some(o)).unwrap();
        self.device().join(policy_dir).join(part.to_string()).join(&hash[29..]).join(hash)
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// Sends one request (`Connection: close`) and reads the whole response.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    let has_len = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding"));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_len && (!body.is_empty() || method == "PUT") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_response(&mut s, method == "HEAD")
}

pub fn read_response(s: &mut TcpStream, head_only: bool) -> Resp {
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let end = all.windows(4).position(|w| w == b"\r\n\r\n").expect("response head");
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = BTreeMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = all[end + 4..].to_vec();
    if head_only {
        body.clear();
    } else if headers.get("transfer-encoding").is_some_and(|v| v == "chunked") {
        body = dechunk(&body);
    }
    Resp { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 4 + n..];
    }
    out
}

/// A timestamp `secs` seconds from now, in normal form.
pub fn ts(offset_secs: f64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    format!("{:016.5}", now + offset_secs)
}

pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

pub fn md5_hex(b: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}
