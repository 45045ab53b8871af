//! Swift's backend protocol: the headers the servers send each other, and
//! the update targets (`X-Container-*`, `X-Account-*`, `X-Delete-At-*`)
//! that tell a server whom to update after a write.
//!
//! Every header a proxy, object, container or account server or daemon
//! sends another is named here, once, lower-case and spelled as Swift
//! spells it; the update targets have one writer ([`UpdateTarget::write`]
//! and friends) and one parser ([`UpdateTarget::parse`] and friends).
//!
//! # Update targets
//!
//! A proxy tells each backend server which servers to update after its
//! write: the object servers update container servers
//! ([`ContainerUpdate`]) and the expirer queue ([`DeleteAtUpdate`]), the
//! container servers update account servers ([`AccountUpdate`]). Each is a
//! partition and a list of nodes, sent as comma-separated `…-Host`
//! (`ip:port`) and `…-Device` lists paired by position, and a
//! `…-Partition`:
//!
//! ```text
//! X-Container-Host: 10.0.0.1:6201,10.0.0.2:6201
//! X-Container-Device: sda,sdb
//! X-Container-Partition: 17
//! ```
//!
//! They are read as Swift reads them: each list is split at commas and
//! trimmed (an absent list is one empty entry), and the lists are paired
//! by position. Reading gives `Ok(None)` when none of the three headers is
//! present, and an error when the lists differ in length (checked first,
//! as Swift does), when the partition is missing or blank, or when it is
//! not a number. A node whose host or device is empty is kept in its place
//! (see [`UpdateNode::is_complete`]).
//!
//! A proxy writing them from ring devices:
//!
//! ```ignore
//! let nodes = devices.iter().map(|d| UpdateNode::new(format!("{}:{}", format_ip(&d.ip), d.port), &d.device));
//! ContainerUpdate(UpdateTarget::new(partition, nodes)).write(&mut headers);
//! ```

use http::{HeaderMap, HeaderValue};

// ---------------------------------------------------------------------
// Request identity and time
// ---------------------------------------------------------------------

/// The request's timestamp, set by the proxy (or a daemon) on every backend
/// write; servers answer HEAD/GET of accounts and containers with it too.
pub const TIMESTAMP: &str = "x-timestamp";
/// The transaction id, set by the proxy's first middleware and passed on by
/// every server to the requests it makes for the same transaction.
pub const TRANS_ID: &str = "x-trans-id";

// ---------------------------------------------------------------------
// X-Backend-*: addressed to backend servers, never shown to clients
// ---------------------------------------------------------------------

/// The prefix of every header meant only for backend servers; the proxy
/// strips such headers from client requests and responses.
pub const BACKEND_PREFIX: &str = "x-backend-";
/// The storage policy of the object or container: sent by the proxy,
/// object updater, expirer, reaper and replicators; answered by container
/// servers (a container's policy).
pub const BACKEND_STORAGE_POLICY_INDEX: &str = "x-backend-storage-policy-index";
/// The policy a new container gets when the request names none: proxy to
/// container server.
pub const BACKEND_STORAGE_POLICY_DEFAULT: &str = "x-backend-storage-policy-default";
/// The policy of the rows in a container listing: container server to proxy.
pub const BACKEND_RECORD_STORAGE_POLICY_INDEX: &str = "x-backend-record-storage-policy-index";
/// What a container listing holds (`object` or `shard`): container server
/// to proxy.
pub const BACKEND_RECORD_TYPE: &str = "x-backend-record-type";
/// The container's sharding state (`unsharded`, ...): container server to
/// proxy.
pub const BACKEND_SHARDING_STATE: &str = "x-backend-sharding-state";
/// The newest timestamp of an object (also of its tombstone) or of a
/// database's creation: object and container servers to the proxy.
pub const BACKEND_TIMESTAMP: &str = "x-backend-timestamp";
/// Proxy (gatekeeper) to the rest of its pipeline: the `X-Timestamp` a
/// client sent, kept aside (clients may not set timestamps).
pub const BACKEND_INBOUND_X_TIMESTAMP: &str = "x-backend-inbound-x-timestamp";
/// Proxy to servers: the request may use reserved (`\x00`-prefixed) names.
pub const BACKEND_ALLOW_RESERVED_NAMES: &str = "x-backend-allow-reserved-names";
/// The timestamp of an object's data file: object server to proxy.
pub const BACKEND_DATA_TIMESTAMP: &str = "x-backend-data-timestamp";
/// The timestamp of an object's durable data file: object server to proxy.
pub const BACKEND_DURABLE_TIMESTAMP: &str = "x-backend-durable-timestamp";
/// A container's put timestamp: container server to proxy.
pub const BACKEND_PUT_TIMESTAMP: &str = "x-backend-put-timestamp";
/// A container's delete timestamp: container server to proxy.
pub const BACKEND_DELETE_TIMESTAMP: &str = "x-backend-delete-timestamp";
/// When a container's status (deleted or not) last changed: container
/// server to proxy.
pub const BACKEND_STATUS_CHANGED_AT: &str = "x-backend-status-changed-at";
/// The content type of a deleted or expired object, with its tombstone's
/// 404: object server to proxy.
pub const BACKEND_CONTENT_TYPE: &str = "x-backend-content-type";
/// `true` on requests of replication (SSYNC subrequests): the object
/// server skips user-facing checks and the expirer queue.
pub const BACKEND_REPLICATION: &str = "x-backend-replication";
/// The headers an SSYNC subrequest replaces wholesale: sender to receiver.
pub const BACKEND_REPLICATION_HEADERS: &str = "x-backend-replication-headers";
/// Ask the client to use the servers' replication addresses (the reaper
/// and the replicators set it on their own requests).
pub const BACKEND_USE_REPLICATION_NETWORK: &str = "x-backend-use-replication-network";
/// The fragment index an SSYNC sender syncs: sender to receiver.
pub const BACKEND_SSYNC_FRAG_INDEX: &str = "x-backend-ssync-frag-index";
/// The node index of the SSYNC receiver: sender to receiver.
pub const BACKEND_SSYNC_NODE_INDEX: &str = "x-backend-ssync-node-index";
/// An SSYNC-sent fragment is not yet durable: sender to receiver.
pub const BACKEND_NO_COMMIT: &str = "x-backend-no-commit";
/// `no` on the expirer's object DELETE: the expirer removes the task row
/// itself, the object server must not.
pub const BACKEND_CLEAN_EXPIRING_OBJECT_QUEUE: &str = "x-backend-clean-expiring-object-queue";
/// Serve an object even though its `X-Delete-At` has passed: proxy to
/// object server (`x-open-expired` of privileged clients).
pub const BACKEND_OPEN_EXPIRED: &str = "x-backend-open-expired";
/// Metadata names that make the object server ignore `Range` when the
/// object has one of them (SLO manifests): proxy to object server.
pub const BACKEND_IGNORE_RANGE_IF_METADATA_PRESENT: &str = "x-backend-ignore-range-if-metadata-present";
/// The account row of a container PUT may be auto-created: object server
/// (updating a container of a hidden account) to container server.
pub const BACKEND_AUTO_CREATE: &str = "x-backend-auto-create";
/// Keep the container's put timestamp on a PUT: proxy to container server.
pub const BACKEND_NO_TIMESTAMP_UPDATE: &str = "x-backend-no-timestamp-update";
/// The prefix of headers that override what an object server tells the
/// container about the object (size, etag, content type): set by proxy
/// middleware.
pub const BACKEND_CONTAINER_UPDATE_OVERRIDE_PREFIX: &str = "x-backend-container-update-override-";
/// The same overrides, persisted with the object as system metadata so a
/// later POST sends them too: set by proxy middleware.
pub const OBJECT_SYSMETA_CONTAINER_UPDATE_OVERRIDE_PREFIX: &str = "x-object-sysmeta-container-update-override-";

// ---------------------------------------------------------------------
// Update targets (see the module docs)
// ---------------------------------------------------------------------

/// The container servers (`ip:port` list) an object server updates: proxy
/// (or expirer, reaper) to object server.
pub const CONTAINER_HOST: &str = "x-container-host";
/// The devices of [`CONTAINER_HOST`], paired by position.
pub const CONTAINER_DEVICE: &str = "x-container-device";
/// The container's partition in the container ring.
pub const CONTAINER_PARTITION: &str = "x-container-partition";
/// The root container's database state, recorded with an object server's
/// failed container update: proxy to object server.
pub const CONTAINER_ROOT_DB_STATE: &str = "x-container-root-db-state";
/// The account servers (`ip:port` list) a container server updates: proxy
/// (or expirer, reaper) to container server.
pub const ACCOUNT_HOST: &str = "x-account-host";
/// The devices of [`ACCOUNT_HOST`], paired by position.
pub const ACCOUNT_DEVICE: &str = "x-account-device";
/// The account's partition in the account ring.
pub const ACCOUNT_PARTITION: &str = "x-account-partition";
/// `yes`: update the account even if it is deleted (the reaper and the
/// container updater), container server to account server.
pub const ACCOUNT_OVERRIDE_DELETED: &str = "x-account-override-deleted";
/// The expirer queue's task container servers (`ip:port` list) an object
/// server updates for an object with `X-Delete-At`: proxy to object server.
pub const DELETE_AT_HOST: &str = "x-delete-at-host";
/// The devices of [`DELETE_AT_HOST`], paired by position.
pub const DELETE_AT_DEVICE: &str = "x-delete-at-device";
/// The task container's partition in the container ring.
pub const DELETE_AT_PARTITION: &str = "x-delete-at-partition";
/// The task container's name (ten-digit time): proxy to object server.
pub const DELETE_AT_CONTAINER: &str = "x-delete-at-container";

// ---------------------------------------------------------------------
// Object expiry
// ---------------------------------------------------------------------

/// When an object expires (seconds): proxy to object server, stored with
/// the object; SSYNC carries it too.
pub const DELETE_AT: &str = "x-delete-at";
/// Delete only if the object still expires at this time: expirer to
/// object server.
pub const IF_DELETE_AT: &str = "x-if-delete-at";

// ---------------------------------------------------------------------
// Object row updates: object server (or updater) to container server
// ---------------------------------------------------------------------

/// The object's size.
pub const SIZE: &str = "x-size";
/// The object's content type.
pub const CONTENT_TYPE: &str = "x-content-type";
/// When the object's content type was set.
pub const CONTENT_TYPE_TIMESTAMP: &str = "x-content-type-timestamp";
/// When the object's metadata was set.
pub const META_TIMESTAMP: &str = "x-meta-timestamp";
/// The object's ETag.
pub const ETAG: &str = "x-etag";

// ---------------------------------------------------------------------
// Container row updates: container server (or updater) to account server;
// the first two also answer account HEADs.
// ---------------------------------------------------------------------

/// The container's (or account's) put timestamp.
pub const PUT_TIMESTAMP: &str = "x-put-timestamp";
/// The container's delete timestamp.
pub const DELETE_TIMESTAMP: &str = "x-delete-timestamp";
/// How many objects the container holds.
pub const OBJECT_COUNT: &str = "x-object-count";
/// How many bytes the container's objects hold.
pub const BYTES_USED: &str = "x-bytes-used";

// ---------------------------------------------------------------------
// Update targets: the types
// ---------------------------------------------------------------------

/// One server to update: its `ip:port` and device. Either may be empty
/// when the lists that named it had an empty entry there (Swift pairs the
/// lists by position and keeps such a node; a send to it fails and is left
/// to the updater).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateNode {
    /// `ip:port`, an IPv6 address in brackets.
    pub host: String,
    pub device: String,
}

impl UpdateNode {
    pub fn new(host: impl Into<String>, device: impl Into<String>) -> UpdateNode {
        UpdateNode { host: host.into(), device: device.into() }
    }

    /// Whether both the host and the device are named.
    pub fn is_complete(&self) -> bool {
        !self.host.is_empty() && !self.device.is_empty()
    }

    /// The host split into IP (without brackets) and port; `None` when it
    /// is not `ip:port`.
    pub fn ip_port(&self) -> Option<(String, u16)> {
        let (ip, port) = self.host.rsplit_once(':')?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        Some((ip.to_string(), port.trim().parse().ok()?))
    }
}

/// Where a server sends its update: the partition, and the nodes holding
/// its replicas of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateTarget {
    pub partition: u32,
    pub nodes: Vec<UpdateNode>,
}

/// The names of one kind of update target's three headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TargetHeaders {
    host: &'static str,
    device: &'static str,
    partition: &'static str,
}

const CONTAINER_TARGET: TargetHeaders = TargetHeaders { host: CONTAINER_HOST, device: CONTAINER_DEVICE, partition: CONTAINER_PARTITION };
const ACCOUNT_TARGET: TargetHeaders = TargetHeaders { host: ACCOUNT_HOST, device: ACCOUNT_DEVICE, partition: ACCOUNT_PARTITION };
const DELETE_AT_TARGET: TargetHeaders = TargetHeaders { host: DELETE_AT_HOST, device: DELETE_AT_DEVICE, partition: DELETE_AT_PARTITION };

/// Why update-target headers could not be read: the sender has a bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateHeaderError {
    /// The host and device lists differ in length, so they cannot be paired.
    #[error("{host_header} and {device_header} list different numbers of servers: {hosts:?} vs {devices:?}")]
    CountMismatch { host_header: &'static str, device_header: &'static str, hosts: String, devices: String },
    /// Hosts or devices are named but the partition is not.
    #[error("{header} missing")]
    MissingPartition { header: &'static str },
    /// The partition is not a partition number.
    #[error("bad {header}: {value:?}")]
    BadPartition { header: &'static str, value: String },
    /// A header is not visible ASCII or UTF-8.
    #[error("{header} is not text")]
    NotText { header: &'static str },
}

fn header_text<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, UpdateHeaderError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v.as_bytes()).map(Some).map_err(|_| UpdateHeaderError::NotText { header: name }),
    }
}

/// Swift's `[h.strip() for h in value.split(',')]`: an absent header is
/// one empty entry.
fn split_list(v: Option<&str>) -> Vec<String> {
    v.unwrap_or("").split(',').map(|s| s.trim().to_string()).collect()
}

impl UpdateTarget {
    pub fn new(partition: u32, nodes: impl IntoIterator<Item = UpdateNode>) -> UpdateTarget {
        UpdateTarget { partition, nodes: nodes.into_iter().collect() }
    }

    /// The three header values: hosts and devices comma-separated.
    fn values(&self) -> Option<(HeaderValue, HeaderValue, HeaderValue)> {
        let hosts = self.nodes.iter().map(|n| n.host.as_str()).collect::<Vec<_>>().join(",");
        let devices = self.nodes.iter().map(|n| n.device.as_str()).collect::<Vec<_>>().join(",");
        Some((HeaderValue::from_str(&hosts).ok()?, HeaderValue::from_str(&devices).ok()?, HeaderValue::from(self.partition)))
    }

    /// The one writer. Writes nothing for no nodes, or when a host or
    /// device is not a valid header value (no ring holds one).
    fn write_as(&self, names: TargetHeaders, headers: &mut HeaderMap) -> bool {
        if self.nodes.is_empty() {
            return false;
        }
        let Some((hosts, devices, partition)) = self.values() else { return false };
        headers.insert(names.host, hosts);
        headers.insert(names.device, devices);
        headers.insert(names.partition, partition);
        true
    }

    /// The one parser (the rules are in the module docs).
    fn parse_as(names: TargetHeaders, headers: &HeaderMap) -> Result<Option<UpdateTarget>, UpdateHeaderError> {
        let host = header_text(headers, names.host)?;
        let device = header_text(headers, names.device)?;
        let partition = header_text(headers, names.partition)?;
        if host.is_none() && device.is_none() && partition.is_none() {
            return Ok(None);
        }
        let (hosts, devices) = (split_list(host), split_list(device));
        if hosts.len() != devices.len() {
            return Err(UpdateHeaderError::CountMismatch {
                host_header: names.host,
                device_header: names.device,
                hosts: host.unwrap_or("").to_string(),
                devices: device.unwrap_or("").to_string(),
            });
        }
        let partition = partition.map(str::trim).filter(|p| !p.is_empty());
        let Some(partition) = partition else { return Err(UpdateHeaderError::MissingPartition { header: names.partition }) };
        let partition = partition
            .parse::<u32>()
            .map_err(|_| UpdateHeaderError::BadPartition { header: names.partition, value: partition.to_string() })?;
        let nodes = hosts.into_iter().zip(devices).map(|(host, device)| UpdateNode { host, device }).collect();
        Ok(Some(UpdateTarget { partition, nodes }))
    }
}

/// The container servers an object server updates after a write
/// (`X-Container-Host`/`-Device`/`-Partition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUpdate(pub UpdateTarget);

impl ContainerUpdate {
    /// Writes the three headers; nothing when there are no nodes. True
    /// when written.
    pub fn write(&self, headers: &mut HeaderMap) -> bool {
        self.0.write_as(CONTAINER_TARGET, headers)
    }

    /// Reads the three headers (the rules are in the module docs):
    /// `Ok(None)` when none is present.
    pub fn parse(headers: &HeaderMap) -> Result<Option<ContainerUpdate>, UpdateHeaderError> {
        Ok(UpdateTarget::parse_as(CONTAINER_TARGET, headers)?.map(ContainerUpdate))
    }
}

/// The account servers a container server updates after a PUT or DELETE
/// (`X-Account-Host`/`-Device`/`-Partition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUpdate(pub UpdateTarget);

impl AccountUpdate {
    /// Writes the three headers; nothing when there are no nodes. True
    /// when written.
    pub fn write(&self, headers: &mut HeaderMap) -> bool {
        self.0.write_as(ACCOUNT_TARGET, headers)
    }

    /// Reads the three headers: `Ok(None)` when none is present.
    pub fn parse(headers: &HeaderMap) -> Result<Option<AccountUpdate>, UpdateHeaderError> {
        Ok(UpdateTarget::parse_as(ACCOUNT_TARGET, headers)?.map(AccountUpdate))
    }
}

/// The expirer queue's task container replicas an object server updates
/// for an object with `X-Delete-At`
/// (`X-Delete-At-Host`/`-Device`/`-Partition`/`-Container`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteAtUpdate {
    pub target: UpdateTarget,
    /// The task container. `None` from an old proxy that did not send it
    /// (the object server then works it out, as Swift's does).
    pub container: Option<String>,
}

impl DeleteAtUpdate {
    /// Writes the four headers; nothing when there are no nodes. True
    /// when written.
    pub fn write(&self, headers: &mut HeaderMap) -> bool {
        let container = match &self.container {
            Some(c) => match HeaderValue::from_str(c) {
                Ok(v) => Some(v),
                Err(_) => return false,
            },
            None => None,
        };
        if !self.target.write_as(DELETE_AT_TARGET, headers) {
            return false;
        }
        if let Some(c) = container {
            headers.insert(DELETE_AT_CONTAINER, c);
        }
        true
    }

    /// Reads the four headers. `Ok(None)` without `X-Delete-At-Host`: as
    /// in Swift, the proxy names each task container replica to only some
    /// object servers, and the others have nothing to do. A blank
    /// `X-Delete-At-Container` is `None`.
    pub fn parse(headers: &HeaderMap) -> Result<Option<DeleteAtUpdate>, UpdateHeaderError> {
        if !headers.contains_key(DELETE_AT_HOST) {
            return Ok(None);
        }
        let Some(target) = UpdateTarget::parse_as(DELETE_AT_TARGET, headers)? else { return Ok(None) };
        Ok(Some(DeleteAtUpdate { target, container: DeleteAtUpdate::parse_container(headers) }))
    }

    /// Reads `X-Delete-At-Container` alone (also when the rest is
    /// malformed: Swift files the task under the proxy's container then
    /// too). `None` when absent, blank or not text.
    pub fn parse_container(headers: &HeaderMap) -> Option<String> {
        header_text(headers, DELETE_AT_CONTAINER).ok()?.map(str::trim).filter(|c| !c.is_empty()).map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn target() -> UpdateTarget {
        UpdateTarget::new(17, [UpdateNode::new("10.0.0.1:6201", "sda"), UpdateNode::new("[::1]:6201", "sdb")])
    }

    #[test]
    fn round_trips() {
        let mut h = HeaderMap::new();
        assert!(ContainerUpdate(target()).write(&mut h));
        assert_eq!(h.get("x-container-host").unwrap(), "10.0.0.1:6201,[::1]:6201");
        assert_eq!(h.get("x-container-device").unwrap(), "sda,sdb");
        assert_eq!(h.get("x-container-partition").unwrap(), "17");
        assert_eq!(ContainerUpdate::parse(&h), Ok(Some(ContainerUpdate(target()))));
        assert_eq!(AccountUpdate::parse(&h), Ok(None), "each kind reads its own headers");

        let mut h = HeaderMap::new();
        assert!(AccountUpdate(target()).write(&mut h));
        assert_eq!(AccountUpdate::parse(&h), Ok(Some(AccountUpdate(target()))));

        let mut h = HeaderMap::new();
        let d = DeleteAtUpdate { target: target(), container: Some("1699919963".into()) };
        assert!(d.write(&mut h));
        assert_eq!(h.get("x-delete-at-container").unwrap(), "1699919963");
        assert_eq!(DeleteAtUpdate::parse(&h), Ok(Some(d)));
        assert_eq!(ContainerUpdate::parse(&h), Ok(None));
    }

    #[test]
    fn nothing_is_written_for_no_nodes() {
        let mut h = HeaderMap::new();
        assert!(!ContainerUpdate(UpdateTarget::new(3, [])).write(&mut h));
        assert!(!DeleteAtUpdate { target: UpdateTarget::new(3, []), container: Some("1".into()) }.write(&mut h));
        assert!(h.is_empty());
    }

    #[test]
    fn reads_swifts_spacing() {
        let h = headers(&[("x-account-host", "127.0.0.1:1, 127.0.0.1:2"), ("x-account-device", "sda,sdb"), ("x-account-partition", " 3 ")]);
        let t = AccountUpdate::parse(&h).unwrap().unwrap().0;
        assert_eq!(t, UpdateTarget::new(3, [UpdateNode::new("127.0.0.1:1", "sda"), UpdateNode::new("127.0.0.1:2", "sdb")]));
        assert_eq!(t.nodes[1].ip_port(), Some(("127.0.0.1".into(), 2)));
        assert_eq!(UpdateNode::new("[::1]:6201", "sda").ip_port(), Some(("::1".into(), 6201)));
        assert_eq!(UpdateNode::new("nowhere", "sda").ip_port(), None);
    }

    #[test]
    fn mismatched_counts_are_errors() {
        let h = headers(&[("x-container-host", "a:1,b:2"), ("x-container-device", "sda"), ("x-container-partition", "3")]);
        let e = ContainerUpdate::parse(&h).unwrap_err();
        assert!(matches!(e, UpdateHeaderError::CountMismatch { .. }), "{e:?}");
        assert_eq!(e.to_string(), r#"x-container-host and x-container-device list different numbers of servers: "a:1,b:2" vs "sda""#);
        // Checked before the partition, as Swift does.
        let h = headers(&[("x-account-host", "a:1,b:2"), ("x-account-device", "sda")]);
        assert!(matches!(AccountUpdate::parse(&h), Err(UpdateHeaderError::CountMismatch { .. })));
        let h = headers(&[("x-delete-at-host", "a:1"), ("x-delete-at-device", "sda,sdb"), ("x-delete-at-partition", "3")]);
        assert!(matches!(DeleteAtUpdate::parse(&h), Err(UpdateHeaderError::CountMismatch { .. })));
    }

    #[test]
    fn missing_pieces() {
        assert_eq!(ContainerUpdate::parse(&HeaderMap::new()), Ok(None));
        assert_eq!(DeleteAtUpdate::parse(&HeaderMap::new()), Ok(None));
        // Nodes but no partition.
        let h = headers(&[("x-container-host", "a:1"), ("x-container-device", "sda")]);
        assert_eq!(ContainerUpdate::parse(&h), Err(UpdateHeaderError::MissingPartition { header: "x-container-partition" }));
        let h = headers(&[("x-container-host", "a:1"), ("x-container-device", "sda"), ("x-container-partition", " ")]);
        assert_eq!(ContainerUpdate::parse(&h), Err(UpdateHeaderError::MissingPartition { header: "x-container-partition" }));
        // A host without its device is paired with an empty one, by position.
        let h = headers(&[("x-container-host", "a:1"), ("x-container-partition", "3")]);
        let t = ContainerUpdate::parse(&h).unwrap().unwrap().0;
        assert_eq!(t.nodes, vec![UpdateNode::new("a:1", "")]);
        assert!(!t.nodes[0].is_complete());
        let h = headers(&[("x-container-host", "a:1,"), ("x-container-device", "sda,sdb"), ("x-container-partition", "3")]);
        let t = ContainerUpdate::parse(&h).unwrap().unwrap().0;
        assert_eq!(t.nodes.iter().map(UpdateNode::is_complete).collect::<Vec<_>>(), vec![true, false]);
        // Without X-Delete-At-Host there is no queue update for this server.
        let h = headers(&[("x-delete-at-device", "sda"), ("x-delete-at-partition", "3"), ("x-delete-at-container", "1")]);
        assert_eq!(DeleteAtUpdate::parse(&h), Ok(None));
        // An old proxy's update names no container.
        let h = headers(&[("x-delete-at-host", "a:1"), ("x-delete-at-device", "sda"), ("x-delete-at-partition", "3")]);
        assert_eq!(DeleteAtUpdate::parse(&h).unwrap().unwrap().container, None);
    }

    #[test]
    fn bad_partitions_are_errors() {
        for bad in ["x", "-1", "1.5", "4294967296"] {
            let h = headers(&[("x-account-host", "a:1"), ("x-account-device", "sda"), ("x-account-partition", bad)]);
            assert_eq!(
                AccountUpdate::parse(&h),
                Err(UpdateHeaderError::BadPartition { header: "x-account-partition", value: bad.into() }),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_are_swifts_lower_case() {
        for name in [
            BACKEND_STORAGE_POLICY_INDEX,
            CONTAINER_HOST,
            DELETE_AT_CONTAINER,
            BACKEND_CLEAN_EXPIRING_OBJECT_QUEUE,
            BACKEND_CONTAINER_UPDATE_OVERRIDE_PREFIX,
        ] {
            assert_eq!(name, name.to_ascii_lowercase());
            assert!(http::HeaderName::from_static(name).as_str() == name);
        }
    }
}
