//! `swift-object-server CONFIG [-v]`: runs the object server; SIGHUP
//! reloads its config, `swift.conf` and rings without dropping a request.

use common::server::{load_config, warn_skipped_filters, Serving};
use object_server::settings::ObjectSettings;
use object_server::ObjectServer;
use std::path::Path;
use std::sync::Arc;

/// Reads the config file and `swift.conf`, as at start-up and on SIGHUP.
fn load(path: &Path) -> Result<Serving<ObjectServer>, String> {
    let conf = load_config(path)?;
    let settings = ObjectSettings::from_config(&conf).map_err(|e| format!("Error in {}: {e}", path.display()))?;
    let swift = common::swift_conf::SwiftConf::load_dir(&settings.server.swift_dir)
        .map_err(|e| format!("Error loading swift.conf from {}: {e}", settings.server.swift_dir.display()))?;
    common::log::init_with(&settings.server.log);
    conf.warn_unused();
    warn_skipped_filters(&settings.server);
    let server = settings.server.clone();
    Ok(Serving::new(Arc::new(ObjectServer::new(settings, swift)), &server))
}

fn main() {
    common::server::main("swift-object-server", load)
}
