//! The storage layer: account databases on the server's devices. Every
//! function here blocks (SQLite, files) and runs on the device's blocking
//! pool through [`AccountStore::run`]. No HTTP types.

use common::db::account::{AccountKind, ListedContainer};
use common::db::listing::{ListingItem, ListingParams};
use common::db::{AccountBroker, AccountInfo, ContainerRecord, DatabaseStore, DbError, InitParams, Metadata, MetadataLimits, PolicyStats};
use common::timestamp::Timestamp;
use std::path::PathBuf;
use std::time::Duration;

/// The account databases of this server's devices.
pub type AccountStore = DatabaseStore<AccountKind>;

/// An answer about an account that may be missing or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<T> {
    Found(T),
    /// No live account; `status_deleted` when its database says it was
    /// deleted (Swift answers with `X-Account-Status: Deleted`).
    Missing {
        status_deleted: bool,
    },
}

/// Why the account is missing, for [`Lookup::Missing`].
fn missing<T>(broker: &mut AccountBroker) -> Result<Lookup<T>, DbError> {
    Ok(Lookup::Missing { status_deleted: broker.is_status_deleted()? })
}

/// An account PUT or POST.
#[derive(Debug, Clone)]
pub struct AccountWrite {
    pub account: String,
    pub device: String,
    pub timestamp: Timestamp,
    /// Metadata from the request (value "" deletes a key).
    pub metadata: Metadata,
    pub limits: MetadataLimits,
}

fn apply_metadata(broker: &mut AccountBroker, w: &AccountWrite) -> Result<(), DbError> {
    if w.metadata.is_empty() {
        return Ok(());
    }
    broker.update_metadata(&w.metadata, Some(w.limits))
}

/// How an account PUT went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutAccountOutcome {
    /// A new (or revived) account.
    Created,
    /// An existing account's put timestamp/metadata were updated.
    Accepted,
    /// The account was deleted and awaits the reaper: it cannot be
    /// re-created until its database is reclaimed.
    RecentlyDeleted,
    /// The PUT is older than the account's deletion.
    StillDeleted,
}

/// Creates the account or updates its put timestamp and metadata (Swift's
/// `PUT_account`).
pub fn put_account(db_file: PathBuf, w: &AccountWrite) -> Result<PutAccountOutcome, DbError> {
    let mut broker = AccountBroker::new(db_file);
    // Checked first, so a request over the limits writes nothing.
    broker.check_metadata_update(&w.metadata, w.limits)?;
    let created = if !broker.exists() {
        let init = InitParams {
            account: w.account.clone(),
            container: None,
            put_timestamp: w.timestamp,
            storage_policy_index: 0,
            device: w.device.clone(),
        };
        match broker.initialize(&init) {
            Ok(()) => true,
            // A concurrent PUT created it: ours only adds metadata, as in
            // Swift.
            Err(DbError::AlreadyExists(_)) => false,
            Err(e) => return Err(e),
        }
    } else if broker.is_status_deleted()? {
        return Ok(PutAccountOutcome::RecentlyDeleted);
    } else {
        let revived = broker.is_deleted()?;
        broker.update_put_timestamp(&w.timestamp)?;
        if broker.is_deleted()? {
            return Ok(PutAccountOutcome::StillDeleted);
        }
        revived
    };
    apply_metadata(&mut broker, w)?;
    Ok(if created { PutAccountOutcome::Created } else { PutAccountOutcome::Accepted })
}

/// Updates the metadata of a live account.
pub fn post_account(db_file: PathBuf, w: &AccountWrite) -> Result<Lookup<()>, DbError> {
    let mut broker = AccountBroker::new(db_file);
    if broker.is_deleted()? {
        return missing(&mut broker);
    }
    // Checked first, so a request over the limits writes nothing.
    broker.check_metadata_update(&w.metadata, w.limits)?;
    apply_metadata(&mut broker, w)?;
    Ok(Lookup::Found(()))
}

/// Marks a live account deleted (Swift's `delete_db`: metadata cleared,
/// `delete_timestamp` raised, status `DELETED`; the account reaper removes
/// its containers later). `Found(status_deleted)` on success.
pub fn delete_account(db_file: PathBuf, timestamp: &Timestamp) -> Result<Lookup<bool>, DbError> {
    let mut broker = AccountBroker::new(db_file);
    if broker.is_deleted()? {
        return missing(&mut broker);
    }
    broker.delete_db(timestamp)?;
    Ok(Lookup::Found(broker.is_status_deleted()?))
}

/// A container row update from a container server.
#[derive(Debug, Clone)]
pub struct ContainerUpdate {
    pub record: ContainerRecord,
    /// Create a missing account first (auto-create accounts), with these
    /// parameters.
    pub autocreate: Option<InitParams>,
    /// `X-Account-Override-Deleted: yes`: update even a deleted account.
    pub override_deleted: bool,
    /// How long to wait for the pending file's lock.
    pub pending_timeout: Option<Duration>,
}

/// Records a container's row; `Ok(false)` when the account is missing or
/// deleted (and not overridden).
pub fn update_container(db_file: PathBuf, u: ContainerUpdate) -> Result<bool, DbError> {
    let mut broker = AccountBroker::new(db_file);
    if let Some(t) = u.pending_timeout {
        broker = broker.with_pending_timeout(t);
    }
    if let Some(init) = &u.autocreate {
        if !broker.exists() {
            match broker.initialize(init) {
                Ok(()) | Err(DbError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if !broker.exists() || (!u.override_deleted && broker.is_deleted()?) {
        return Ok(false);
    }
    broker.put_container(u.record)?;
    Ok(true)
}

/// What HEAD and GET report about a live account.
#[derive(Debug, Clone)]
pub struct AccountState {
    pub info: AccountInfo,
    pub policy_stats: Vec<PolicyStats>,
    pub metadata: Metadata,
}

fn read_state(broker: &mut AccountBroker) -> Result<Lookup<AccountState>, DbError> {
    if broker.is_deleted()? {
        return missing(broker);
    }
    let info = broker.get_info()?;
    let policy_stats = broker.get_policy_stats()?;
    let metadata = broker.metadata()?;
    Ok(Lookup::Found(AccountState { info, policy_stats, metadata }))
}

/// HEAD: the account's state, merging pending updates unless their lock
/// is busy (then the read may be slightly stale, as in Swift).
pub fn head_account(db_file: PathBuf) -> Result<Lookup<AccountState>, DbError> {
    read_state(&mut AccountBroker::for_stale_reads(db_file))
}

/// GET: the state and one page of the container listing.
#[allow(clippy::type_complexity)]
pub fn list_account(
    db_file: PathBuf,
    params: &ListingParams,
) -> Result<Lookup<(AccountState, Vec<ListingItem<ListedContainer>>)>, DbError> {
    let mut broker = AccountBroker::for_stale_reads(db_file);
    let state = match read_state(&mut broker)? {
        Lookup::Found(s) => s,
        Lookup::Missing { status_deleted } => return Ok(Lookup::Missing { status_deleted }),
    };
    let items = broker.list_containers(params)?;
    Ok(Lookup::Found((state, items)))
}
