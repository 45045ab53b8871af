//! Which servers to ask: the `(ip, port)` of every device in the server
//! type's rings (not the replication ip/port, as Swift), optionally only
//! one region or zone.

use crate::scout::Host;
use common::swift_conf::SwiftConf;
use std::collections::BTreeSet;
use std::path::Path;

/// Why the hosts could not be listed; the binary prints it and exits 2.
#[derive(Debug)]
pub enum HostsError {
    /// `--policy` names no policy of swift.conf (Swift's `Invalid Storage
    /// Policy: <p>`).
    InvalidPolicy(String),
    /// A ring file is missing or unreadable.
    Ring { path: String, message: String },
}

/// The rings to read for `server_type` (Swift's `_get_ring_names`): the
/// account or container ring, or for objects the ring of every policy, or
/// only of the policy `--policy` names (by name, alias or index).
pub fn ring_names(server_type: &str, conf: &SwiftConf, policy: Option<&str>) -> Result<Vec<String>, HostsError> {
    if server_type != "object" {
        return Ok(vec![server_type.to_string()]);
    }
    let names: Vec<String> = conf
        .policies
        .iter()
        .filter(|p| match policy {
            None | Some("") => true,
            Some(want) => p.has_name(want) || (want.bytes().all(|b| b.is_ascii_digit()) && want.parse::<u32>().ok() == Some(p.index)),
        })
        .map(|p| p.ring_name())
        .collect();
    if names.is_empty() {
        return Err(HostsError::InvalidPolicy(policy.unwrap_or_default().to_string()));
    }
    Ok(names)
}

/// The distinct `(ip, port)` of the devices of `<swift_dir>/<name>.ring.gz`
/// for each name, in the region and zone asked for; sorted, so that every
/// report lists hosts in the same order.
pub fn get_hosts(swift_dir: &Path, ring_names: &[String], region: Option<i64>, zone: Option<i64>) -> Result<Vec<Host>, HostsError> {
    let mut hosts = BTreeSet::new();
    for name in ring_names {
        let path = swift_dir.join(format!("{name}.ring.gz"));
        let ring =
            ring::RingData::load(&path).map_err(|e| HostsError::Ring { path: path.display().to_string(), message: e.to_string() })?;
        for dev in ring.devs.iter().flatten() {
            if region.is_some_and(|r| dev.region != r) || zone.is_some_and(|z| dev.zone != z) {
                continue;
            }
            hosts.insert((dev.ip.clone(), dev.port));
        }
    }
    Ok(hosts.into_iter().collect())
}
