//! `swift-object-server CONFIG`: runs the object server.

use common::server::{bind_or_exit, load_config_or_exit, serve, shutdown_signal};
use object_server::settings::ObjectSettings;
use object_server::ObjectServer;
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let path = common::server::config_path_from_args("swift-object-server");
    let conf = load_config_or_exit(&path);
    let settings = match ObjectSettings::from_config(&conf) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error in {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    let swift = match common::swift_conf::SwiftConf::load_dir(&settings.server.swift_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error loading swift.conf from {}: {e}", settings.server.swift_dir.display());
            std::process::exit(1);
        }
    };
    common::log::init(&settings.server.log_name, settings.server.log_level);
    common::server::warn_skipped_filters(&settings.server);
    let listener = bind_or_exit(&settings.server).await;
    let log_requests = settings.server.log_requests;
    let grace = settings.server.graceful_shutdown_timeout;
    let limits = settings.server.connections.clone();
    let server = Arc::new(ObjectServer::new(settings, swift));
    serve(server, listener, &limits, log_requests, shutdown_signal(), grace).await;
    // In-flight requests had their grace period; blocking disk work still
    // running must not hold the exit (a write never published is safe).
    std::process::exit(0);
}
