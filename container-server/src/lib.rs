//! Swift's container server: one SQLite database per container
//! (`common::db::ContainerBroker`), object rows updated by object servers,
//! listings, and container → account updates.
//!
//! Layers: [`routing`] turns a request into a [`routing::Route`];
//! [`handlers`] (one file per operation family) implement the HTTP
//! contract; [`storage`] is the only place that touches the broker and the
//! disk (no HTTP types there). [`server`] ties them to `common::server`.
//! [`updater`] is the separate container-updater daemon
//! (`swift-container-updater`), which reports container stats to accounts.

pub mod account_update;
pub mod handlers;
pub mod replicator;
pub mod routing;
pub mod server;
pub mod settings;
pub mod storage;
pub mod updater;

pub use server::ContainerServer;
pub use settings::ContainerSettings;
