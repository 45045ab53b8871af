//! Shared building blocks of the Swift servers and tools: configuration
//! files, the hash-path function, timestamps and `swift.conf`.

pub mod config;
pub mod hash;
pub mod host;
pub mod swift_conf;
pub mod timestamp;

/// The version of this workspace, as reported by servers and tools.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
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
