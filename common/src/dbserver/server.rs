//! What the account and container servers share around their request
//! handling: the verbs they answer, the auto-create account prefix, and
//! the `main` of their binaries (flags, config, runtime, serve).

use crate::config::{ConfigError, ConfigFile};
use crate::server::{load_config, ServerSettings, Service, Serving};
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

/// The `main` of `binary CONFIG` (see [`crate::server::main`]): reads the
/// config file with `read_settings`, loads `swift.conf` from the directory
/// the settings name, and serves `new_server(settings, swift)` until
/// SIGTERM/SIGINT, doing all of it again on SIGHUP. Anything wrong before
/// serving exits 1 with a message.
pub fn run_server<T, S: Service>(
    binary: &str,
    read_settings: impl Fn(&ConfigFile) -> Result<T, ConfigError> + Send + Sync + 'static,
    server_settings: impl Fn(&T) -> &ServerSettings + Send + Sync + 'static,
    new_server: impl Fn(T, SwiftConf) -> S + Send + Sync + 'static,
) {
    crate::server::main(binary, move |path| {
        let conf = load_config(path)?;
        let settings = read_settings(&conf).map_err(|e| format!("Error in {}: {e}", path.display()))?;
        let server = server_settings(&settings).clone();
        let swift = SwiftConf::load_dir(&server.swift_dir).map_err(|e| format!("Error loading swift.conf: {e}"))?;
        crate::log::init_with(&server.log);
        conf.warn_unused();
        crate::server::warn_skipped_filters(&server);
        Ok(Serving::new(Arc::new(new_server(settings, swift)), &server))
    })
}
