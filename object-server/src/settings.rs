//! The object server's options (`[app:object-server]` over `[DEFAULT]`),
//! under Swift's names and with Swift's defaults. `etc/object-server.conf-sample`
//! documents each of them.

use common::config::{ConfigError, ConfigFile};
use common::server::ServerSettings;
use std::collections::BTreeSet;
use std::time::Duration;

/// Swift's default `allowed_headers`: stored with the object and returned
/// on GET/HEAD besides the metadata headers.
pub const DEFAULT_ALLOWED_HEADERS: &str = "content-disposition, content-encoding, x-delete-at, x-object-manifest, \
     x-static-large-object, cache-control, content-language, expires, x-robots-tag";

/// Headers that describe the data file itself and can never be "allowed".
const RESERVED_DATAFILE_META: [&str; 3] = ["content-length", "deleted", "etag"];

/// Everything the object server reads from its config file.
#[derive(Debug, Clone)]
pub struct ObjectSettings {
    /// The settings shared by every storage server.
    pub server: ServerSettings,
    /// Longest wait for container updates before answering the client.
    pub container_update_timeout: Duration,
    /// Bytes read from the network per chunk of a PUT body.
    pub network_chunk_size: usize,
    /// Bytes read from disk per chunk of a GET body.
    pub disk_chunk_size: usize,
    /// Longest a PUT body may take overall.
    pub max_upload_time: Duration,
    /// Bytes that must stay free on a device after a PUT's preallocation
    /// (`fallocate_reserve`; a `%` value is a share of the device size,
    /// resolved at start-up against the devices root). 0 disables it.
    pub fallocate_reserve: FallocateReserve,
    /// Lower-cased header names stored with objects.
    pub allowed_headers: BTreeSet<String>,
    /// Tombstones (and `.meta` files without data) older than this are
    /// deleted when their suffix is hashed (`reclaim_age`, one week).
    pub reclaim_age: Duration,
    /// Incoming SSYNC requests: `replication_concurrency` and friends.
    pub ssync: crate::ssync::ReceiverSettings,
}

/// `fallocate_reserve`: bytes, or a percentage of the device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FallocateReserve {
    Bytes(u64),
    Percent(f64),
}

impl ObjectSettings {
    /// Reads the options from a loaded config file.
    pub fn from_config(conf: &ConfigFile) -> Result<ObjectSettings, ConfigError> {
        let server = ServerSettings::from_config(conf, "object-server", 6200)?;
        let s = conf.app_section("object-server").unwrap_or_else(|| conf.defaults());
        let secs = |key: &str, default: f64| -> Result<Duration, ConfigError> {
            let v = s.get_f64(key, default)?;
            if !v.is_finite() || v < 0.0 {
                return Err(s.value_error(key, &v.to_string(), "a non-negative number of seconds"));
            }
            Ok(Duration::from_secs_f64(v))
        };
        let chunk = |key: &str| -> Result<usize, ConfigError> {
            let v = s.get_usize(key, 65536)?;
            if v == 0 {
                return Err(s.value_error(key, "0", "a positive number of bytes"));
            }
            Ok(v)
        };
        let reserve_raw = s.get_str("fallocate_reserve", "1%")?;
        let fallocate_reserve = parse_reserve(&reserve_raw)
            .ok_or_else(|| s.value_error("fallocate_reserve", &reserve_raw, "a number of bytes or a percentage such as 1%"))?;
        let allowed_raw = s.get_str("allowed_headers", DEFAULT_ALLOWED_HEADERS)?;
        let allowed_headers = allowed_raw
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty() && !RESERVED_DATAFILE_META.contains(&h.as_str()))
            .collect();
        // keep_cache_size and keep_cache_private are accepted and ignored:
        // we leave page-cache decisions to the kernel.
        let _ = s.get_u64("keep_cache_size", 5_242_880)?;
        Ok(ObjectSettings {
            server,
            container_update_timeout: secs("container_update_timeout", 1.0)?,
            network_chunk_size: chunk("network_chunk_size")?,
            disk_chunk_size: chunk("disk_chunk_size")?,
            max_upload_time: secs("max_upload_time", 86400.0)?,
            fallocate_reserve,
            allowed_headers,
            reclaim_age: secs("reclaim_age", crate::hashes::DEFAULT_RECLAIM_AGE.as_secs_f64())?,
            ssync: crate::ssync::ReceiverSettings::from_section(&s)?,
        })
    }
}

fn parse_reserve(v: &str) -> Option<FallocateReserve> {
    let v = v.trim();
    if let Some(p) = v.strip_suffix('%') {
        let p: f64 = p.trim().parse().ok()?;
        (p.is_finite() && (0.0..=100.0).contains(&p)).then_some(FallocateReserve::Percent(p))
    } else {
        v.parse().ok().map(FallocateReserve::Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = ConfigFile::parse("[DEFAULT]\nbind_port = 6210\n[app:object-server]\nuse = egg:swift#object\ncontainer_update_timeout = 0.25\nallowed_headers = X-Foo, etag\n", "t").unwrap();
        let s = ObjectSettings::from_config(&c).unwrap();
        assert_eq!(s.server.bind_port, 6210);
        assert_eq!(s.container_update_timeout, Duration::from_millis(250));
        assert_eq!(s.disk_chunk_size, 65536);
        assert_eq!(s.fallocate_reserve, FallocateReserve::Percent(1.0));
        assert_eq!(s.allowed_headers.iter().collect::<Vec<_>>(), vec!["x-foo"]);
        assert_eq!(s.reclaim_age, Duration::from_secs(604800));
        let c = ConfigFile::parse("[app:object-server]\nreclaim_age = 3600\n", "t").unwrap();
        assert_eq!(ObjectSettings::from_config(&c).unwrap().reclaim_age, Duration::from_secs(3600));
        let c = ConfigFile::parse("[DEFAULT]\nfallocate_reserve = lots\n", "t").unwrap();
        assert!(ObjectSettings::from_config(&c).is_err());
    }
}
