//! The account server's settings: the storage-server ones shared by all
//! servers plus Swift's account-server options.

use common::config::{ConfigError, ConfigFile, Section};
use common::server::ServerSettings;

/// Swift's default port for account servers.
pub const DEFAULT_PORT: u16 = 6202;

/// Settings of `[app:account-server]` (with `[DEFAULT]` merged in).
#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub server: ServerSettings,
    /// `auto_create_account_prefix`: accounts created by the first
    /// container update (Swift reads it from `swift.conf`'s constraints
    /// now; the server option, when set, overrides it).
    pub auto_create_account_prefix: Option<String>,
    /// `db_preallocation`: accepted for compatibility; SQLite files are not
    /// preallocated.
    pub db_preallocation: bool,
}

impl AccountSettings {
    /// Reads the settings; errors name the file, line and key.
    pub fn from_config(conf: &ConfigFile) -> Result<AccountSettings, ConfigError> {
        let server = ServerSettings::from_config(conf, "account-server", DEFAULT_PORT)?;
        let section: Section = conf.app_section("account-server").unwrap_or_else(|| conf.defaults());
        Ok(AccountSettings {
            server,
            auto_create_account_prefix: section.get("auto_create_account_prefix").map(str::to_string),
            db_preallocation: section.get_bool("db_preallocation", false)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swift_saio_config_is_accepted() {
        let conf = ConfigFile::parse(
            "[DEFAULT]\ndevices = /srv/node/1/node\nmount_check = false\ndisable_fallocate = true\nbind_port = 6212\n\
             workers = 1\nlog_facility = LOG_LOCAL2\n[pipeline:main]\npipeline = healthcheck recon account-server\n\
             [app:account-server]\nuse = egg:swift#account\n[filter:recon]\nuse = egg:swift#recon\n\
             [filter:healthcheck]\nuse = egg:swift#healthcheck\n\
             [account-replicator]\nrsync_module = {replication_ip}::account{replication_port}\n",
            "test.conf",
        )
        .unwrap();
        let s = AccountSettings::from_config(&conf).unwrap();
        assert_eq!(s.server.bind_port, 6212);
        assert!(!s.server.mount_check);
        assert_eq!(s.auto_create_account_prefix, None);
        let defaults = AccountSettings::from_config(&ConfigFile::parse("[DEFAULT]\n", "d.conf").unwrap()).unwrap();
        assert_eq!(defaults.server.bind_port, 6202);
        let bad = ConfigFile::parse("[app:account-server]\ndb_preallocation = maybe\n", "bad.conf").unwrap();
        assert!(AccountSettings::from_config(&bad).is_err());
    }

    #[test]
    fn the_sample_config_parses_with_swifts_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/account-server.conf-sample");
        let text = std::fs::read_to_string(path).unwrap();
        let s = AccountSettings::from_config(&ConfigFile::parse(&text, path).unwrap()).unwrap();
        assert_eq!((s.server.bind_port, s.server.mount_check, s.server.replication_server), (6202, true, None));
        assert_eq!(s.server.devices, std::path::PathBuf::from("/srv/node"));
    }
}
