//! The container server.
