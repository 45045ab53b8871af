//! `swift-container-server CONFIG`: runs the container server.

use common::dbserver::server::run_server;
use container_server::{ContainerServer, ContainerSettings};

fn main() {
    run_server("swift-container-server", ContainerSettings::from_config, |s| &s.server, ContainerServer::new);
}
