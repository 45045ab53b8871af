//! A do-nothing Swift endpoint for measuring swift-bench itself:
//!
//! ```text
//! cargo run --release -p bench --example fast_endpoint -- 8099 1 &
//! target/release/swift-bench -A http://127.0.0.1:8099/auth/v1.0 -U x -K y -s 0 -n 1000 -g 200000 -c 64
//! ```
//!
//! Arguments: `[PORT] [THREADS] [OBJECT_SIZE]` (defaults 8099, 1, 0).
//! One server thread by default leaves the other core to the bench.

use bench::fake_endpoint::{serve, Faults};

fn main() {
    let mut argv = std::env::args().skip(1);
    let port: u16 = argv.next().map_or(8099, |p| p.parse().unwrap_or_else(|_| usage()));
    let threads: usize = argv.next().map_or(1, |t| t.parse().unwrap_or_else(|_| usage()));
    let size = argv.next().map_or(0, |s| bench::size::parse_size(&s).unwrap_or_else(|_| usage()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build();
    let rt = rt.unwrap_or_else(|e| {
        eprintln!("fast_endpoint: cannot start the runtime: {e}");
        std::process::exit(1)
    });
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("fast_endpoint: cannot bind 127.0.0.1:{port}: {e}");
                std::process::exit(1)
            }
        };
        eprintln!("fast_endpoint: auth URL http://127.0.0.1:{port}/auth/v1.0 ({threads} thread(s), objects of {size} bytes)");
        serve(listener, Faults::default(), size).await;
    });
}

fn usage() -> ! {
    eprintln!("usage: fast_endpoint [PORT] [THREADS] [OBJECT_SIZE]");
    std::process::exit(2)
}
