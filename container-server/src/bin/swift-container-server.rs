//! `swift-container-server CONFIG [-v]`: runs the container server; SIGHUP
//! reloads its config and `swift.conf` without dropping a request.

use common::dbserver::server::run_server;
use container_server::{ContainerServer, ContainerSettings};

fn main() {
    run_server("swift-container-server", ContainerSettings::from_config, |s| &s.server, ContainerServer::new);
}
