//! `swift-container-updater CONFIG [once]`: reports every container's
//! object count and bytes to the account servers, each `interval` seconds
//! (`[container-updater]` of container-server.conf), or one sweep with
//! `once` / `--once` / `-o` (Swift's run modes).

use common::swift_conf::SwiftConf;
use container_server::updater::{ContainerUpdater, UpdaterSettings};

use std::sync::Arc;

fn fail(message: String) -> ! {
    eprintln!("{message}");
    std::process::exit(1);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let common::daemon::DaemonArgs { config: config_path, once } =
        common::daemon::parse_args("swift-container-updater", &args).unwrap_or_else(|usage| fail(usage));
    let conf = common::server::load_config_or_exit(&config_path);
    let settings = UpdaterSettings::from_config(&conf).unwrap_or_else(|e| fail(format!("Error in {}: {e}", config_path.display())));
    let swift = SwiftConf::load_dir(&settings.server.swift_dir).unwrap_or_else(|e| fail(format!("Error loading swift.conf: {e}")));
    let ring = ring::Ring::load_named(&settings.server.swift_dir, "account", swift.hash.clone())
        .unwrap_or_else(|e| fail(format!("Error loading the account ring from {}: {e}", settings.server.swift_dir.display())));
    common::log::init(&settings.server.log_name, settings.server.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(format!("Error starting the runtime: {e}")));
    let updater = Arc::new(ContainerUpdater::new(settings, ring));
    runtime.block_on(async move {
        if once {
            updater.run_once().await;
        } else {
            updater.run_forever(common::server::shutdown_signal()).await;
        }
    });
}
