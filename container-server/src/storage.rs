//! The storage layer: container databases on the server's devices. Every
//! function here blocks (SQLite, files) and runs on the device's blocking
//! pool through [`ContainerStore::run`]. No HTTP types.

use common::db::container::{ContainerKind, ListedObject};
use common::db::listing::{ListingItem, ListingParams};
use common::db::{ContainerBroker, ContainerInfo, DatabaseStore, DbError, InitParams, Metadata, MetadataLimits, ObjectRecord};
use common::timestamp::Timestamp;
use std::path::PathBuf;

/// The container databases of this server's devices.
pub type ContainerStore = DatabaseStore<ContainerKind>;

/// How a container PUT went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutContainerOutcome {
    /// A new (or re-created) container; with its info.
    Created(ContainerInfo),
    /// An existing container's timestamps/metadata were updated.
    Accepted(ContainerInfo),
    /// The container exists with another policy (its index).
    PolicyConflict(i64),
    /// The PUT is older than the container's deletion.
    StillDeleted,
}

/// A container PUT or POST.
#[derive(Debug, Clone)]
pub struct ContainerWrite {
    pub account: String,
    pub container: String,
    pub device: String,
    pub timestamp: Timestamp,
    /// Metadata from the request (value "" deletes a key).
    pub metadata: Metadata,
    pub limits: MetadataLimits,
}

/// Applies request metadata; a changed `X-Container-Sync-To` restarts
/// container sync from the beginning (Swift resets both sync points).
fn apply_metadata(broker: &mut ContainerBroker, w: &ContainerWrite) -> Result<(), DbError> {
    if w.metadata.is_empty() {
        return Ok(());
    }
    if let Some((new_to, _)) = w.metadata.get("X-Container-Sync-To") {
        let old = broker.metadata()?;
        if old.get("X-Container-Sync-To").map(|(v, _)| v) != Some(new_to) {
            broker.set_x_container_sync_points(-1, -1)?;
        }
    }
    broker.update_metadata(&w.metadata, Some(w.limits))
}

/// Creates the container or updates its put timestamp and metadata
/// (Swift's `PUT_container` minus the account update).
pub fn put_container(
    db_file: PathBuf,
    w: &ContainerWrite,
    new_policy: i64,
    requested_policy: Option<i64>,
) -> Result<PutContainerOutcome, DbError> {
    let mut broker = ContainerBroker::new(db_file);
    // Checked first, so a request over the limits writes nothing.
    broker.check_metadata_update(&w.metadata, w.limits)?;
    let mut created = false;
    if !broker.exists() {
        let init = InitParams {
            account: w.account.clone(),
            container: Some(w.container.clone()),
            put_timestamp: w.timestamp,
            storage_policy_index: new_policy,
            device: w.device.clone(),
        };
        match broker.initialize(&init) {
            Ok(()) => created = true,
            Err(DbError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if !created {
        let recreated = broker.is_deleted()?;
        if recreated {
            broker.set_storage_policy_index(new_policy, &w.timestamp)?;
        } else if let Some(requested) = requested_policy {
            let current = broker.storage_policy_index()?;
            if requested != current {
                return Ok(PutContainerOutcome::PolicyConflict(current));
            }
        }
        broker.update_put_timestamp(&w.timestamp)?;
        if broker.is_deleted()? {
            return Ok(PutContainerOutcome::StillDeleted);
        }
        if recreated {
            broker.update_status_changed_at(&w.timestamp)?;
        }
        created = recreated;
    }
    apply_metadata(&mut broker, w)?;
    let info = broker.get_info()?;
    Ok(if created { PutContainerOutcome::Created(info) } else { PutContainerOutcome::Accepted(info) })
}

/// Updates metadata (and, unless `keep_put_timestamp`, the put timestamp)
/// of an existing container; `Ok(false)` when it is missing or deleted.
pub fn post_container(db_file: PathBuf, w: &ContainerWrite, keep_put_timestamp: bool) -> Result<bool, DbError> {
    let mut broker = ContainerBroker::new(db_file);
    if broker.is_deleted()? {
        return Ok(false);
    }
    // Checked first, so a request over the limits writes nothing.
    broker.check_metadata_update(&w.metadata, w.limits)?;
    if !keep_put_timestamp {
        broker.update_put_timestamp(&w.timestamp)?;
    }
    apply_metadata(&mut broker, w)?;
    Ok(true)
}

/// How a container DELETE went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteContainerOutcome {
    NotFound,
    /// Objects remain, or the DELETE is older than the last PUT.
    Conflict,
    /// Deleted; `existed` says whether it was live before.
    Deleted {
        existed: bool,
        info: Box<ContainerInfo>,
    },
}

/// Marks the container deleted if it holds no objects.
pub fn delete_container(db_file: PathBuf, timestamp: &Timestamp) -> Result<DeleteContainerOutcome, DbError> {
    let mut broker = ContainerBroker::new(db_file);
    if !broker.exists() {
        return Ok(DeleteContainerOutcome::NotFound);
    }
    if !broker.empty()? {
        return Ok(DeleteContainerOutcome::Conflict);
    }
    let info = broker.get_info()?;
    let existed = Timestamp::parse(&info.put_timestamp).map(|t| t > Timestamp::ZERO).unwrap_or(false) && !info.is_deleted();
    broker.delete_db(timestamp)?;
    if !broker.is_deleted()? {
        return Ok(DeleteContainerOutcome::Conflict);
    }
    Ok(DeleteContainerOutcome::Deleted { existed, info: Box::new(broker.get_info()?) })
}

/// Records an object row update. With `autocreate`, a missing container is
/// created first (Swift's auto-create accounts); `Ok(false)` when the
/// container does not exist.
pub fn update_object(db_file: PathBuf, record: ObjectRecord, autocreate: Option<InitParams>) -> Result<bool, DbError> {
    let mut broker = ContainerBroker::new(db_file);
    if let Some(init) = autocreate {
        if !broker.exists() {
            match broker.initialize(&init) {
                Ok(()) | Err(DbError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if !broker.exists() {
        return Ok(false);
    }
    broker.put_object(record)?;
    Ok(true)
}

/// What HEAD and GET report: info, deleted flag, metadata.
#[derive(Debug, Clone)]
pub struct ContainerState {
    pub info: ContainerInfo,
    pub deleted: bool,
    pub metadata: Metadata,
}

/// Reads the container's state, merging pending updates unless their lock
/// is busy (then the read may be slightly stale, as in Swift).
pub fn read_state(broker: &mut ContainerBroker) -> Result<ContainerState, DbError> {
    let (info, deleted) = broker.get_info_is_deleted()?;
    let metadata = if deleted { Metadata::new() } else { broker.metadata()? };
    Ok(ContainerState { info, deleted, metadata })
}

/// HEAD: the container's state.
pub fn head_container(db_file: PathBuf) -> Result<ContainerState, DbError> {
    read_state(&mut ContainerBroker::for_stale_reads(db_file))
}

/// GET: the state and, unless deleted, one page of the listing of
/// `policy` (the container's own when `None`).
pub fn list_container(
    db_file: PathBuf,
    params: &ListingParams,
    policy: Option<i64>,
) -> Result<(ContainerState, Vec<ListingItem<ListedObject>>), DbError> {
    let mut broker = ContainerBroker::for_stale_reads(db_file);
    let state = read_state(&mut broker)?;
    if state.deleted {
        return Ok((state, Vec::new()));
    }
    let items = broker.list_objects(params, policy.unwrap_or(state.info.storage_policy_index))?;
    Ok((state, items))
}
