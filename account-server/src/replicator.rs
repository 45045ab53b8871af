//! `swift-account-replicator`: Swift's DB replication of account
//! databases, on the shared engine in `common::db::replicator`, reading
//! `[account-replicator]` of account-server.conf and the account ring.

use crate::settings::DEFAULT_PORT;
use common::config::ConfigFile;
use common::daemon::{Daemon, Scope};
use common::db::account::{AccountKind, DATADIR};
use common::db::replicator::{DbReplicator, ReplicatorSettings};
use common::server::ServerSettings;
use ring::Ring;
use std::sync::Arc;
use std::time::Duration;

/// The account replicator daemon.
pub struct AccountReplicator(pub Arc<DbReplicator<AccountKind>>);

impl Daemon for AccountReplicator {
    const NAME: &'static str = "account-replicator";
    const SCOPED: bool = true;
    const RECON_FILE: &'static str = common::recon::RECON_ACCOUNT_FILE;

    fn from_config(conf: &ConfigFile) -> Result<Self, String> {
        let section = conf.section(Self::NAME).unwrap_or_else(|| conf.defaults());
        let settings = ReplicatorSettings::from_section(&section, Self::NAME, DEFAULT_PORT).map_err(|e| e.to_string())?;
        let ring = Ring::load_with_swift_conf(&settings.server.swift_dir, "account")?;
        Ok(AccountReplicator(Arc::new(DbReplicator::new(settings, Arc::new(ring), DATADIR))))
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
