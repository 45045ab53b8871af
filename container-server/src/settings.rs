//! The container server's settings: the storage-server ones shared by all
//! servers plus Swift's container-server options.

use common::config::{ConfigError, ConfigFile, Section};
use common::server::ServerSettings;

/// Swift's default port for container servers.
pub const DEFAULT_PORT: u16 = 6201;

/// Settings of `[app:container-server]` (with `[DEFAULT]` merged in).
#[derive(Debug, Clone)]
pub struct ContainerSettings {
    pub server: ServerSettings,
    /// `allow_versions`: keep `X-Versions-Location` as container metadata
    /// (deprecated in Swift; off by default).
    pub allow_versions: bool,
    /// `auto_create_account_prefix`: accounts whose containers are created
    /// by the first object update (Swift reads it from `swift.conf`'s
    /// constraints now; the server option, when set, overrides it).
    pub auto_create_account_prefix: Option<String>,
    /// `db_preallocation`: accepted for compatibility; SQLite files are not
    /// preallocated.
    pub db_preallocation: bool,
    /// `allowed_sync_hosts`: hosts that `X-Container-Sync-To` may name.
    pub allowed_sync_hosts: Vec<String>,
}

impl ContainerSettings {
    /// Reads the settings; errors name the file, line and key.
    pub fn from_config(conf: &ConfigFile) -> Result<ContainerSettings, ConfigError> {
        let server = ServerSettings::from_config(conf, "container-server", DEFAULT_PORT)?;
        let section: Section = conf.app_section("container-server").unwrap_or_else(|| conf.defaults());
        let hosts = section.get_str("allowed_sync_hosts", "127.0.0.1")?;
        Ok(ContainerSettings {
            server,
            allow_versions: section.get_bool("allow_versions", false)?,
            auto_create_account_prefix: section.get("auto_create_account_prefix").map(str::to_string),
            db_preallocation: section.get_bool("db_preallocation", false)?,
            allowed_sync_hosts: hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(str::to_string).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swift_sample_config_is_accepted() {
        let conf = ConfigFile::parse(
            "[DEFAULT]\nbind_port = 6211\nmount_check = false\n[pipeline:main]\npipeline = healthcheck recon container-server\n\
             [app:container-server]\nuse = egg:swift#container\nallow_versions = true\ndb_preallocation = on\n\
             [filter:healthcheck]\nuse = egg:swift#healthcheck\n[filter:recon]\nuse = egg:swift#recon\n",
            "test.conf",
        )
        .unwrap();
        let s = ContainerSettings::from_config(&conf).unwrap();
        assert_eq!(s.server.bind_port, 6211);
        assert!(s.allow_versions && s.db_preallocation);
        assert_eq!(s.allowed_sync_hosts, ["127.0.0.1"]);
        let bad = ConfigFile::parse("[app:container-server]\nallow_versions = maybe\n", "bad.conf").unwrap();
        assert!(ContainerSettings::from_config(&bad).is_err());
    }
}
