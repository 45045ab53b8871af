//! The HTTP edge the account and container servers share (their storage
//! is `common::db`):
//!
//! * [`request`]: headers, timestamps, query and listing parameters and
//!   metadata of a request, or the [`request::Refusal`] that answers it;
//! * [`replicate`]: `REPLICATE` (Swift's DB replication RPC) and the
//!   whole-database upload that replaces its rsync;
//! * [`response`]: responses for refusals and failures;
//! * [`server`]: allowed verbs, the auto-create prefix and the binaries'
//!   `main`;
//! * [`testing`]: the harness of their integration tests.

pub mod replicate;
pub mod request;
pub mod response;
pub mod server;
pub mod testing;
