//! `egg:swift#healthcheck` in the proxy's pipeline: the same filter as the
//! storage servers' (`common::healthcheck`), built from its own section.

use super::{Build, Next};
use crate::proxy::Proxy;
use common::config::Section;
use common::healthcheck::{Healthcheck, HealthcheckSettings};
use std::sync::Arc;

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, _build: &mut Build) -> Result<Next, String> {
    Ok(Arc::new(Healthcheck::new(HealthcheckSettings::from_section(section), next)))
}
