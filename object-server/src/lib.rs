//! The object server.
