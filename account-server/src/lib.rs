//! Swift's account server: one SQLite database per account
//! (`common::db::AccountBroker`) holding a row per container, reported by
//! container servers; account metadata; container listings.
//!
//! Layers: [`routing`] turns a request into a [`routing::Route`];
//! [`handlers`] (one file per operation family) implement the HTTP
//! contract; [`storage`] is the only place that touches the broker and the
//! disk (no HTTP types there). [`server`] ties them to `common::server`.
//! [`reaper`] is Swift's account reaper daemon (`swift-account-reaper`).

pub mod handlers;
pub mod reaper;
pub mod replicator;
pub mod routing;
pub mod server;
pub mod settings;
pub mod storage;

pub use server::AccountServer;
pub use settings::AccountSettings;
