//! The Swift proxy server: the client-facing API v1, placing requests on
//! account, container and object servers through the rings.
//!
//! A request passes through the middlewares of `[pipeline:main]`
//! (`pipeline` builds them, `middleware` holds them and says how to add
//! one) and ends in the proxy app (`proxy::App`), whose controllers
//! (`account`, `container`, `object`) talk to the storage servers
//! (`backend`, `putter`, `resume`).

// Handlers answer with a ready `Response` as their error: it is what the
// client gets, and boxing it would only add an allocation per refusal.
#![allow(clippy::result_large_err)]

pub mod account;
pub mod auth;
pub mod backend;
pub mod constraints;
pub mod container;
pub mod cors;
pub mod getter;
pub mod info;
pub mod listing;
pub mod middleware;
pub mod nodes;
pub mod object;
pub mod pipeline;
pub mod proxy;
pub mod putter;
pub mod resume;
pub mod settings;
