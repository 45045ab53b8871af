//! SQLite databases of the container and account servers (Swift's
//! `swift/common/db.py` and the brokers built on it).
//!
//! * [`broker`]: the generic [`DatabaseBroker`] (file location, creation,
//!   pending-file batching, metadata, put/delete timestamps, reclaim) and
//!   the [`BrokerKind`] trait a database flavour implements;
//! * [`pending`]: the `.pending` file format and its directory lock;
//! * [`container`]: the container flavour ([`ContainerBroker`]);
//! * [`account`]: the account flavour ([`AccountBroker`]);
//! * [`auditor`]: the container and account auditors (Swift's
//!   `DatabaseAuditor`) and `quarantine_db`;
//! * [`listing`]: the listing walk and its JSON/XML/plain renderings,
//!   shared by container and account listings;
//! * [`replication`]: DB replication's broker methods, `REPLICATE`
//!   messages and their receiving side;
//! * [`replicator`]: the sending side, the replicator daemons' engine;
//! * [`store`]: a server's databases of one kind on its devices
//!   ([`DatabaseStore`]), and the device pool broker work runs on.
//!
//! Everything above blocks on disk and SQLite: run it on a device's blocking
//! pool ([`DatabaseStore::run`]), never on the async runtime.
//!
//! The HTTP edge the account and container servers share lives apart, in
//! `common::dbserver`.

pub mod account;
pub mod auditor;
pub mod broker;
pub mod container;
pub mod listing;
pub mod pending;
pub mod replication;
pub mod replicator;
pub mod store;

pub use account::{AccountBroker, AccountInfo, ContainerRecord, PolicyStats};
pub use broker::{BrokerKind, DatabaseBroker, DbError, InitParams, Metadata, MetadataLimits};
pub use container::{ContainerBroker, ContainerInfo, ObjectRecord};
pub use store::DatabaseStore;
