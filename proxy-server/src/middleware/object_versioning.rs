//! Swift's `object_versioning` (`X-Versions-Enabled`): being written. It is
//! not a paste entry point of its own: the `versioned_writes` filter puts
//! it in the pipeline when `allow_object_versioning = true`, as Swift does.

use super::{Build, Next};
use crate::proxy::Proxy;
use common::config::Section;

/// The pipeline to the right of `versioned_writes` with object versioning
/// in front of it (today: unchanged, being written).
pub fn wrap(_section: &Section, _proxy: &Proxy, next: Next, _build: &mut Build) -> Result<Next, String> {
    Ok(next)
}
