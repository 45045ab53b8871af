//! The account server.
