//! `swift-account-server CONFIG`: runs the account server.

use account_server::{AccountServer, AccountSettings};
use common::server::{bind_or_exit, load_config_or_exit, serve, shutdown_signal};
use common::swift_conf::SwiftConf;
use std::path::PathBuf;
use std::sync::Arc;

fn main() {
    let Some(config_path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("Usage: swift-account-server CONFIG");
        std::process::exit(1);
    };
    let conf = load_config_or_exit(&config_path);
    let settings = match AccountSettings::from_config(&conf) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error in {}: {e}", config_path.display());
            std::process::exit(1);
        }
    };
    let swift = match SwiftConf::load_dir(&settings.server.swift_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error loading swift.conf: {e}");
            std::process::exit(1);
        }
    };
    common::log::init(&settings.server.log_name, settings.server.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let listener = bind_or_exit(&settings.server).await;
        let (log_requests, grace) = (settings.server.log_requests, settings.server.graceful_shutdown_timeout);
        let server = Arc::new(AccountServer::new(settings, swift));
        serve(server, listener, log_requests, shutdown_signal(), grace).await;
        // In-flight requests had their grace period; blocking disk work still
        // running must not hold the exit (a write never published is safe).
        std::process::exit(0);
    });
}
