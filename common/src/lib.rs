//! Shared building blocks of the Swift servers and tools: configuration
//! files, the hash-path function, timestamps and `swift.conf`.

pub mod config;
pub mod hash;
pub mod host;
pub mod swift_conf;
pub mod timestamp;

/// The version of this workspace, as reported by servers and tools.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Every binary that links this crate allocates through mimalloc: its
/// per-thread free lists serve the servers' many short-lived buffers
/// (request heads, header maps, 64 KiB body chunks) without the locking and
/// bin scans of glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
pub mod backend;
pub mod backend_headers;
pub mod cli;
pub mod daemon;
#[cfg(feature = "db")]
pub mod db;
#[cfg(feature = "db")]
pub mod dbserver;
pub mod devices;
pub mod expirer_queue;
pub mod healthcheck;
pub mod http;
pub mod listing_format;
pub mod log;
pub mod path;
pub mod pipeline;
pub mod recon;
pub mod server;
pub mod statsd;
pub mod testing;
