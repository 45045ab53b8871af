//! `[pipeline:main]` as the proxy reads it: each filter is known by its
//! paste.deploy entry point (`use = egg:swift#<name>` in its
//! `[filter:<section>]`), never by its section name, so `pipeline = ... auth
//! ...` with `[filter:auth] use = egg:swift#tempauth` runs tempauth.
//!
//! The middlewares are built into the proxy today (a pipeline of
//! middleware objects is future work): what a pipeline may name is
//! checked at start-up. A filter we implement is run; a filter whose only
//! effect is a feature (its absence makes requests fail or go unserved,
//! never grants access) is skipped with a warning; anything else, an
//! authentication or encryption filter we cannot run or an entry point we
//! do not know, stops start-up: running without it could serve data to
//! someone it was meant to keep out.

use common::config::ConfigFile;

/// Entry points the proxy implements.
const IMPLEMENTED: &[&str] =
    &["catch_errors", "gatekeeper", "healthcheck", "proxy_logging", "memcache", "listing_formats", "tempauth", "copy", "dlo"];

/// Entry points of Swift's that only add features: without them requests
/// are refused or unserved, never let through. Skipped with a warning.
const FEATURES_ONLY: &[&str] = &[
    "bulk",
    "cname_lookup",
    "container_quotas",
    "account_quotas",
    "container_sync",
    "crossdomain",
    "domain_remap",
    "etag_quoter",
    "formpost",
    "list_endpoints",
    "name_check",
    "ratelimit",
    "s3api",
    "slo",
    "staticweb",
    "symlink",
    "tempurl",
    "versioned_writes",
    "xprofile",
];

/// One filter of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Its name in `pipeline =` (and its section `[filter:<name>]`).
    pub name: String,
    /// The entry point after `egg:swift#`.
    pub entry_point: String,
}

/// What the pipeline asks of the proxy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pipeline {
    /// The filters the proxy runs, in pipeline order.
    pub filters: Vec<Filter>,
    /// Filters skipped (feature-only middlewares we do not have yet).
    pub skipped: Vec<Filter>,
}

impl Pipeline {
    /// Reads and checks `[pipeline:main]`. No pipeline at all: none of the
    /// filters (the app alone). The error names the file, the filter and
    /// why the proxy refuses to start with it.
    pub fn from_config(conf: &ConfigFile) -> Result<Pipeline, String> {
        let Some(names) = conf.pipeline() else { return Ok(Pipeline::default()) };
        let Some((app, filters)) = names.split_last() else {
            return Err(format!("{}: [pipeline:main] names no app", conf.source()));
        };
        let app_use = conf.app_section(app).and_then(|s| s.get("use").map(|u| u.trim().to_string()));
        if app_use.as_deref() != Some("egg:swift#proxy") {
            return Err(format!("{}: the pipeline must end with an app using egg:swift#proxy, not {app:?}", conf.source()));
        }
        let mut out = Pipeline::default();
        for name in filters {
            let section = conf.filter_section(name).ok_or_else(|| format!("{}: no [filter:{name}] section", conf.source()))?;
            let used = section.get("use").map(str::trim).unwrap_or("");
            let Some(entry_point) = used.strip_prefix("egg:swift#") else {
                return Err(format!(
                    "{}: [filter:{name}] uses {used:?}; only Swift's own middlewares (egg:swift#...) can be run",
                    conf.source()
                ));
            };
            let filter = Filter { name: name.clone(), entry_point: entry_point.to_string() };
            if IMPLEMENTED.contains(&entry_point) {
                out.filters.push(filter);
            } else if FEATURES_ONLY.contains(&entry_point) {
                out.skipped.push(filter);
            } else {
                return Err(format!(
                    "{}: [filter:{name}] (egg:swift#{entry_point}) is not implemented by this proxy, and running without it \
                     could let through requests it is there to stop; remove it from the pipeline to run without it",
                    conf.source()
                ));
            }
        }
        Ok(out)
    }

    /// The section name of the filter running `entry_point`, if any.
    pub fn section_of(&self, entry_point: &str) -> Option<&str> {
        self.filters.iter().find(|f| f.entry_point == entry_point).map(|f| f.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pipeline: &str, filters: &str) -> ConfigFile {
        let text = format!("[pipeline:main]\npipeline = {pipeline}\n\n[app:proxy-server]\nuse = egg:swift#proxy\n\n{filters}");
        ConfigFile::parse(&text, "proxy-server.conf").unwrap()
    }

    #[test]
    fn filters_are_known_by_their_entry_point() {
        let c = conf(
            "healthcheck auth proxy-server",
            "[filter:healthcheck]\nuse = egg:swift#healthcheck\n[filter:auth]\nuse = egg:swift#tempauth\n",
        );
        let p = Pipeline::from_config(&c).unwrap();
        assert_eq!(p.section_of("tempauth"), Some("auth"));
        assert_eq!(p.filters.len(), 2);
        // A [filter:tempauth] section the pipeline does not name is not run.
        let c = conf(
            "healthcheck proxy-server",
            "[filter:healthcheck]\nuse = egg:swift#healthcheck\n[filter:tempauth]\nuse = egg:swift#tempauth\n",
        );
        assert_eq!(Pipeline::from_config(&c).unwrap().section_of("tempauth"), None);
    }

    #[test]
    fn what_cannot_be_run_safely_stops_start_up() {
        let c = conf(
            "tempurl tempauth proxy-server",
            "[filter:tempurl]\nuse = egg:swift#tempurl\n[filter:tempauth]\nuse = egg:swift#tempauth\n",
        );
        let p = Pipeline::from_config(&c).unwrap();
        assert_eq!(p.skipped, vec![Filter { name: "tempurl".into(), entry_point: "tempurl".into() }]);
        for (pipeline, filters) in [
            (
                "authtoken keystoneauth proxy-server",
                "[filter:authtoken]\nuse = egg:swift#authtoken\n[filter:keystoneauth]\nuse = egg:swift#keystoneauth\n",
            ),
            (
                "keymaster encryption proxy-server",
                "[filter:keymaster]\nuse = egg:swift#keymaster\n[filter:encryption]\nuse = egg:swift#encryption\n",
            ),
            ("swauth proxy-server", "[filter:swauth]\nuse = egg:swauth#swauth\n"),
            ("missing proxy-server", ""),
        ] {
            let err = Pipeline::from_config(&conf(pipeline, filters)).unwrap_err();
            assert!(err.starts_with("proxy-server.conf: "), "{err}");
        }
        let c =
            ConfigFile::parse("[pipeline:main]\npipeline = healthcheck other\n[app:other]\nuse = egg:swift#object\n", "p.conf").unwrap();
        assert!(Pipeline::from_config(&c).unwrap_err().contains("egg:swift#proxy"));
    }

    #[test]
    fn swift_saio_and_the_reference_pipeline() {
        let ours = "catch_errors gatekeeper healthcheck proxy-logging cache listing_formats tempauth copy proxy-logging proxy-server";
        let sections = "[filter:catch_errors]\nuse = egg:swift#catch_errors\n[filter:gatekeeper]\nuse = egg:swift#gatekeeper\n\
                        [filter:healthcheck]\nuse = egg:swift#healthcheck\n[filter:proxy-logging]\nuse = egg:swift#proxy_logging\n\
                        [filter:cache]\nuse = egg:swift#memcache\n[filter:listing_formats]\nuse = egg:swift#listing_formats\n\
                        [filter:tempauth]\nuse = egg:swift#tempauth\n[filter:copy]\nuse = egg:swift#copy\n";
        let p = Pipeline::from_config(&conf(ours, sections)).unwrap();
        assert!(p.skipped.is_empty());
        assert_eq!(p.section_of("tempauth"), Some("tempauth"));
    }
}
