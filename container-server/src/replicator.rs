//! `swift-container-replicator`: Swift's DB replication of container
//! databases, on the shared engine in `common::db::replicator`, reading
//! `[container-replicator]` of container-server.conf and the container ring.

use crate::settings::DEFAULT_PORT;
use common::config::ConfigFile;
use common::daemon::{Daemon, Scope};
use common::db::container::{ContainerKind, DATADIR};
use common::db::replicator::{DbReplicator, ReplicatorSettings};
use common::server::ServerSettings;
use ring::Ring;
use std::sync::Arc;
use std::time::Duration;

/// The container replicator daemon.
pub struct ContainerReplicator(pub Arc<DbReplicator<ContainerKind>>);

impl Daemon for ContainerReplicator {
    const NAME: &'static str = "container-replicator";
    const SCOPED: bool = true;
    const RECON_FILE: &'static str = common::recon::RECON_CONTAINER_FILE;

    fn from_config(conf: &ConfigFile) -> Result<Self, String> {
        let section = conf.section(Self::NAME).unwrap_or_else(|| conf.defaults());
        let settings = ReplicatorSettings::from_section(&section, Self::NAME, DEFAULT_PORT).map_err(|e| e.to_string())?;
        let ring = Ring::load_with_swift_conf(&settings.server.swift_dir, "container")?;
        Ok(ContainerReplicator(Arc::new(DbReplicator::new(settings, Arc::new(ring), DATADIR))))
    }

    fn server(&self) -> &ServerSettings {
        &self.0.settings.server
    }

    fn interval(&self) -> Duration {
        self.0.settings.interval
    }

    async fn run_once(self: Arc<Self>, scope: Scope) -> Vec<(&'static str, serde_json::Value)> {
        self.0.clone().run_once(scope).await
    }
}
