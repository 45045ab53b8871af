//! `container-update-bench [--clients N] [--updates M] [--server HOST:PORT]`
//!
//! Prints how many object updates per second one container takes over
//! HTTP, with N concurrent keep-alive clients sending M updates in all. Without
//! `--server` it starts `swift-container-server` (found beside this binary)
//! on a temporary device. Build with `--release` for meaningful numbers.

use common::backend::{read_body, BackendClient};
use common::backend_headers as bh;
use common::http::empty;
use common::testing::{free_port, ServerProcess};
use http::{HeaderMap, HeaderValue, Method};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Prints how many object updates per second one container takes.
#[derive(clap::Parser)]
#[command(name = "container-update-bench", version = common::VERSION)]
struct Cli {
    /// Concurrent keep-alive clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Object updates to send in all.
    #[arg(long, default_value_t = 5000)]
    updates: usize,
    /// A running container server (HOST:PORT) instead of starting one.
    #[arg(long, value_name = "HOST:PORT")]
    server: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let Cli { clients, updates, server } = clap::Parser::parse();
    let _dir;
    let _proc;
    let (host, port) = match server {
        Some(s) => {
            let (h, p) = s.rsplit_once(':').ok_or_else(|| anyhow::anyhow!("--server wants HOST:PORT"))?;
            (h.to_string(), p.parse::<u16>()?)
        }
        None => {
            let dir = tempfile::tempdir()?;
            std::fs::create_dir_all(dir.path().join("node/sda"))?;
            std::fs::write(dir.path().join("swift.conf"), "[swift-hash]\nswift_hash_path_suffix = bench\n")?;
            let port = free_port();
            let conf = dir.path().join("container-server.conf");
            std::fs::write(
                &conf,
                format!(
                    "[DEFAULT]\ndevices = {}/node\nmount_check = false\nbind_ip = 127.0.0.1\nbind_port = {port}\nswift_dir = {}\n\
                     log_requests = false\n[app:container-server]\nuse = egg:swift#container\n",
                    dir.path().display(),
                    dir.path().display()
                ),
            )?;
            let exe = std::env::current_exe()?.with_file_name("swift-container-server");
            _proc = ServerProcess::start(&exe, &conf, port);
            _dir = dir;
            ("127.0.0.1".to_string(), port)
        }
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let client = BackendClient::new(Duration::from_secs(1), Duration::from_secs(30));
        let mut h = HeaderMap::new();
        h.insert(bh::TIMESTAMP, HeaderValue::from_static("1700000000.00000"));
        let resp = client.request(Method::PUT, &host, port, "/sda/0/bench/c", h, empty()).await?;
        let status = resp.status();
        read_body(resp, 65536, Duration::from_secs(10)).await?;
        anyhow::ensure!(status.is_success(), "container PUT answered {status}");
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (client, host, next) = (client.clone(), host.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= updates {
                        return Ok::<(), anyhow::Error>(());
                    }
                    let mut h = HeaderMap::new();
                    h.insert(bh::TIMESTAMP, HeaderValue::from_str(&format!("1700000001.{:05}", i % 100_000))?);
                    h.insert(bh::SIZE, HeaderValue::from_static("1024"));
                    h.insert(bh::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                    h.insert(bh::ETAG, HeaderValue::from_static("d41d8cd98f00b204e9800998ecf8427e"));
                    let resp = client.request(Method::PUT, &host, port, &format!("/sda/0/bench/c/obj-{i:08}"), h, empty()).await?;
                    let status = resp.status();
                    read_body(resp, 65536, Duration::from_secs(10)).await?;
                    anyhow::ensure!(status.as_u16() == 201, "object update answered {status}");
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        let elapsed = started.elapsed();
        // A HEAD merges the pending file: time it separately.
        let merge_started = Instant::now();
        let resp = client.request(Method::HEAD, &host, port, "/sda/0/bench/c", HeaderMap::new(), empty()).await?;
        let count = resp.headers().get("x-container-object-count").and_then(|v| v.to_str().ok()).unwrap_or("?").to_string();
        read_body(resp, 65536, Duration::from_secs(60)).await?;
        println!(
            "{updates} object updates, {clients} clients: {:.0} updates/s ({:.2} s); HEAD after (merges pending): {:.3} s, object count {count}",
            updates as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            merge_started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}
