//! What the account and container servers share around their request
//! handling: the verbs they answer, the auto-create account prefix, and
//! the `main` of their binaries (flags, config, runtime, serve).

use crate::config::{ConfigError, ConfigFile};
use crate::server::{bind_or_exit, load_config_or_exit, serve, shutdown_signal, ServerSettings, Service};
use crate::swift_conf::SwiftConf;
use std::sync::Arc;

/// The verbs a server answers, out of `all`, under Swift's
/// `replication_server` option: unset or `true`, every verb; `false`, all
/// but `REPLICATE` (Swift 2.38's `allowed_methods`: a replication server
/// serves the client verbs too; only `false` turns replication off).
pub fn allowed_methods(all: &[&'static str], replication_server: Option<bool>) -> Vec<&'static str> {
    match replication_server {
        None | Some(true) => all.to_vec(),
        Some(false) => all.iter().copied().filter(|m| *m != "REPLICATE").collect(),
    }
}

/// The prefix of the accounts that the first update creates: the server's
/// own `auto_create_account_prefix` when set, else `swift.conf`'s.
pub fn auto_create_prefix(setting: Option<&str>, swift: &SwiftConf) -> String {
    setting.map_or_else(|| swift.constraints.auto_create_account_prefix.clone(), str::to_string)
}

/// The `main` of `binary CONFIG`: reads the config file named by the first
/// argument with `read_settings`, loads `swift.conf` from the directory
/// the settings name, and serves `new_server(settings, swift)` until
/// SIGTERM/SIGINT. Anything wrong before serving exits 1 with a message.
pub fn run_server<T, S: Service>(
    binary: &str,
    read_settings: impl FnOnce(&ConfigFile) -> Result<T, ConfigError>,
    server_settings: impl Fn(&T) -> &ServerSettings,
    new_server: impl FnOnce(T, SwiftConf) -> S,
) {
    let config_path = crate::server::config_path_from_args(binary);
    let conf = load_config_or_exit(&config_path);
    let settings = match read_settings(&conf) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error in {}: {e}", config_path.display());
            std::process::exit(1);
        }
    };
    let server = server_settings(&settings);
    let swift = match SwiftConf::load_dir(&server.swift_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error loading swift.conf: {e}");
            std::process::exit(1);
        }
    };
    crate::log::init(&server.log_name, server.log_level);
    crate::server::warn_skipped_filters(server);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async move {
        let server = server_settings(&settings);
        let listener = bind_or_exit(server).await;
        let (log_requests, grace, limits) = (server.log_requests, server.graceful_shutdown_timeout, server.connections.clone());
        let service = Arc::new(new_server(settings, swift));
        serve(service, listener, &limits, log_requests, shutdown_signal(), grace).await;
        // In-flight requests had their grace period; blocking disk work still
        // running must not hold the exit (a write never published is safe).
        std::process::exit(0);
    });
}
