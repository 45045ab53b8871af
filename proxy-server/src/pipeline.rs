//! `[pipeline:main]` built as Swift builds it: each name resolves to its
//! `[filter:<name>]` section, whose `use = egg:swift#<entry>` picks the
//! middleware (section names are free: `[filter:auth] use =
//! egg:swift#tempauth` runs tempauth); each middleware reads its own
//! section; the app comes last; the order in the line is the order in which
//! requests pass through.
//!
//! As Swift's proxy does (unless `allow_modify_pipeline = false` in the
//! app's section), the filters every request needs are inserted when the
//! line lacks them: `catch_errors` first, `gatekeeper` after it,
//! `listing_formats` after the cache, `copy` and then `dlo` after the auth,
//! `versioned_writes` after them (Swift's `required_filters`).
//!
//! A filter this proxy does not implement stops start-up with an error that
//! names it: running without an auth, an encryption or a rate-limiting
//! filter would serve what it is there to stop, and without a feature such
//! as `slo` clients would store manifests as plain objects. The one
//! exception, `NO_OPS`, is accepted with a warning because its job is done
//! elsewhere.

use crate::middleware::{self, Build, Next};
use crate::proxy::Proxy;
use common::config::{ConfigFile, Section};
use std::sync::Arc;

/// Builds a middleware from its section and the pipeline to its right.
pub type Factory = fn(&Section, &Proxy, Next, &mut Build) -> Result<Next, String>;

/// The entry points (`egg:swift#<entry>`) this proxy implements.
pub const ENTRY_POINTS: &[(&str, Factory)] = &[
    ("catch_errors", middleware::catch_errors::factory),
    ("gatekeeper", middleware::gatekeeper::factory),
    ("healthcheck", middleware::healthcheck::factory),
    ("proxy_logging", middleware::proxy_logging::factory),
    ("memcache", middleware::cache::factory),
    ("listing_formats", middleware::listing_formats::factory),
    ("tempauth", middleware::tempauth::factory),
    ("copy", middleware::copy::factory),
    ("dlo", middleware::dlo::factory),
    ("slo", middleware::slo::factory),
    ("bulk", middleware::bulk::factory),
    ("account_quotas", middleware::account_quotas::factory),
    ("container_quotas", middleware::container_quotas::factory),
    ("etag_quoter", middleware::etag_quoter::factory),
    ("tempurl", middleware::tempurl::factory),
    ("formpost", middleware::formpost::factory),
    ("staticweb", middleware::staticweb::factory),
    ("domain_remap", middleware::domain_remap::factory),
    ("crossdomain", middleware::crossdomain::factory),
    ("ratelimit", middleware::ratelimit::factory),
    ("symlink", middleware::symlink::factory),
    ("versioned_writes", middleware::versioned_writes::factory),
];

/// Entry points accepted and skipped because their job is done elsewhere:
/// `xprofile` profiles the Python interpreter a request runs in; ours is
/// profiled from outside (`perf`, the statsd timings).
const NO_OPS: &[&str] = &["xprofile"];

/// Swift's `required_filters`: inserted when missing, after the last of the
/// listed entry points present (or first), in this order of insertion
/// (reversed, as Swift walks it).
const REQUIRED: &[(&str, &[&str])] = &[
    ("catch_errors", &[]),
    ("gatekeeper", &["catch_errors"]),
    ("listing_formats", &["catch_errors", "gatekeeper", "proxy_logging", "memcache"]),
    ("copy", &["staticweb", "tempauth", "keystoneauth", "catch_errors", "gatekeeper", "proxy_logging"]),
    ("dlo", &["copy", "staticweb", "tempauth", "keystoneauth", "catch_errors", "gatekeeper", "proxy_logging"]),
    ("versioned_writes", &["slo", "dlo", "copy", "staticweb", "tempauth", "keystoneauth", "catch_errors", "gatekeeper", "proxy_logging"]),
];

/// Entry points that authenticate (their absence leaves the cluster open).
const AUTH: &[&str] = &["tempauth", "keystoneauth", "swauth"];

/// One filter of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Its name in `pipeline =` and its section `[filter:<name>]`; `None`
    /// for a filter the proxy inserted.
    pub name: Option<String>,
    /// The entry point after `egg:swift#`.
    pub entry_point: String,
}

/// The filters of `[pipeline:main]`, checked, in order (the app excluded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pipeline {
    pub filters: Vec<Filter>,
    /// Filters accepted as no-ops (`NO_OPS`).
    pub skipped: Vec<Filter>,
    /// Required filters the proxy inserted (Swift logs these too).
    pub inserted: Vec<String>,
}

impl Pipeline {
    /// Reads and checks `[pipeline:main]`. No pipeline at all: the required
    /// filters alone. The error names the file, the filter and why.
    pub fn from_config(conf: &ConfigFile) -> Result<Pipeline, String> {
        let mut out = Pipeline::default();
        let mut allow_modify = true;
        if let Some(names) = conf.pipeline() {
            let Some((app, filters)) = names.split_last() else {
                return Err(format!("{}: [pipeline:main] names no app", conf.source()));
            };
            let app_section = conf.app_section(app);
            let app_use = app_section.as_ref().and_then(|s| s.get("use").map(|u| u.trim().to_string()));
            if app_use.as_deref() != Some("egg:swift#proxy") {
                return Err(format!("{}: the pipeline must end with an app using egg:swift#proxy, not {app:?}", conf.source()));
            }
            if let Some(s) = &app_section {
                allow_modify = s.get_bool("allow_modify_pipeline", true).map_err(|e| e.to_string())?;
            }
            for name in filters {
                let section = conf.filter_section(name).ok_or_else(|| format!("{}: no [filter:{name}] section", conf.source()))?;
                let used = section.get("use").map(str::trim).unwrap_or("");
                let Some(entry_point) = used.strip_prefix("egg:swift#") else {
                    return Err(format!(
                        "{}: [filter:{name}] uses {used:?}; only Swift's own middlewares (egg:swift#...) can be run",
                        conf.source()
                    ));
                };
                let filter = Filter { name: Some(name.clone()), entry_point: entry_point.to_string() };
                if ENTRY_POINTS.iter().any(|(e, _)| *e == entry_point) {
                    out.filters.push(filter);
                } else if NO_OPS.contains(&entry_point) {
                    out.skipped.push(filter);
                } else {
                    return Err(format!(
                        "{}: [filter:{name}] (egg:swift#{entry_point}) is not implemented by this proxy; \
                         remove it from the pipeline to run without it",
                        conf.source()
                    ));
                }
            }
        }
        if allow_modify {
            out.insert_required();
        }
        Ok(out)
    }

    /// Swift's `modify_wsgi_pipeline`: each missing required filter goes
    /// after the last of its "after" entry points present.
    fn insert_required(&mut self) {
        for (entry, afters) in REQUIRED.iter().rev() {
            if self.has(entry) {
                continue;
            }
            // gatekeeper goes after catch_errors only when the line starts
            // with it.
            let afters: &[&str] =
                if *entry == "gatekeeper" && self.filters.first().is_none_or(|f| f.entry_point != "catch_errors") { &[] } else { afters };
            let at = afters.iter().filter_map(|a| self.filters.iter().position(|f| f.entry_point == *a).map(|i| i + 1)).max().unwrap_or(0);
            self.filters.insert(at, Filter { name: None, entry_point: entry.to_string() });
            self.inserted.push(format!("{entry} at position {at}"));
        }
    }

    /// Whether a filter runs `entry_point`.
    pub fn has(&self, entry_point: &str) -> bool {
        self.filters.iter().any(|f| f.entry_point == entry_point)
    }

    /// The section name of the (first) filter running `entry_point`.
    pub fn section_of(&self, entry_point: &str) -> Option<&str> {
        self.filters.iter().find(|f| f.entry_point == entry_point).and_then(|f| f.name.as_deref())
    }

    /// Whether any filter authenticates.
    pub fn has_auth(&self) -> bool {
        self.filters.iter().any(|f| AUTH.contains(&f.entry_point.as_str()))
    }

    /// Builds the middlewares around `app`, right to left, each from its
    /// own section (an inserted filter reads `[DEFAULT]` alone).
    pub fn build(&self, conf: &ConfigFile, proxy: &Proxy, app: Next) -> Result<(Next, Build), String> {
        let mut build = Build::default();
        let mut next = app;
        for f in self.filters.iter().rev() {
            let section = match &f.name {
                Some(name) => conf.filter_section(name).ok_or_else(|| format!("{}: no [filter:{name}] section", conf.source()))?,
                None => conf.defaults(),
            };
            let factory = ENTRY_POINTS.iter().find(|(e, _)| *e == f.entry_point).map(|(_, f)| *f).expect("checked by from_config");
            next = factory(&section, proxy, next, &mut build)
                .map_err(|e| format!("{}: [filter:{}]: {e}", conf.source(), f.name.as_deref().unwrap_or(&f.entry_point)))?;
        }
        Ok((next, build))
    }
}

/// Builds the whole proxy: the app and the middlewares of `conf`'s
/// pipeline around it, with `/info` listing what they registered.
pub fn build_proxy(conf: &ConfigFile, pipeline: &Pipeline, proxy: Proxy) -> Result<Next, String> {
    let proxy = Arc::new(proxy);
    let app: Next = Arc::new(crate::proxy::App(proxy.clone()));
    let (head, build) = pipeline.build(conf, &proxy, app)?;
    proxy.set_capabilities(build.capabilities);
    Ok(Arc::new(crate::middleware::WithInfoCache { proxy, next: head }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pipeline: &str, filters: &str) -> ConfigFile {
        let text = format!("[pipeline:main]\npipeline = {pipeline}\n\n[app:proxy-server]\nuse = egg:swift#proxy\n\n{filters}");
        ConfigFile::parse(&text, "proxy-server.conf").unwrap()
    }

    fn entries(p: &Pipeline) -> Vec<&str> {
        p.filters.iter().map(|f| f.entry_point.as_str()).collect()
    }

    #[test]
    fn filters_are_known_by_their_entry_point() {
        let c = conf(
            "healthcheck auth proxy-server",
            "[filter:healthcheck]\nuse = egg:swift#healthcheck\n[filter:auth]\nuse = egg:swift#tempauth\n",
        );
        let p = Pipeline::from_config(&c).unwrap();
        assert_eq!(p.section_of("tempauth"), Some("auth"));
        assert!(p.has_auth());
        // A [filter:tempauth] section the pipeline does not name is not run.
        let c = conf(
            "healthcheck proxy-server",
            "[filter:healthcheck]\nuse = egg:swift#healthcheck\n[filter:tempauth]\nuse = egg:swift#tempauth\n",
        );
        let p = Pipeline::from_config(&c).unwrap();
        assert_eq!(p.section_of("tempauth"), None);
        assert!(!p.has_auth());
    }

    #[test]
    fn what_is_not_implemented_stops_start_up() {
        for (pipeline, filters, named) in [
            (
                "s3api tempauth proxy-server",
                "[filter:s3api]\nuse = egg:swift#s3api\n[filter:tempauth]\nuse = egg:swift#tempauth\n",
                "s3api",
            ),
            (
                "authtoken keystoneauth proxy-server",
                "[filter:authtoken]\nuse = egg:swift#authtoken\n[filter:keystoneauth]\nuse = egg:swift#keystoneauth\n",
                "authtoken",
            ),
            ("keymaster proxy-server", "[filter:keymaster]\nuse = egg:swift#keymaster\n", "keymaster"),
            ("swauth proxy-server", "[filter:swauth]\nuse = egg:swauth#swauth\n", "swauth"),
            ("missing proxy-server", "", "missing"),
        ] {
            let err = Pipeline::from_config(&conf(pipeline, filters)).unwrap_err();
            assert!(err.starts_with("proxy-server.conf: "), "{err}");
            assert!(err.contains(&format!("[filter:{named}]")), "{err}");
        }
        let c =
            ConfigFile::parse("[pipeline:main]\npipeline = healthcheck other\n[app:other]\nuse = egg:swift#object\n", "p.conf").unwrap();
        assert!(Pipeline::from_config(&c).unwrap_err().contains("egg:swift#proxy"));
        // The documented no-op is accepted.
        let p = Pipeline::from_config(&conf("xprofile proxy-server", "[filter:xprofile]\nuse = egg:swift#xprofile\n")).unwrap();
        assert_eq!(p.skipped.len(), 1);
    }

    #[test]
    fn required_filters_are_inserted_where_swift_puts_them() {
        // Swift's own example: a bare pipeline gains everything, in order.
        let p = Pipeline::from_config(&conf("proxy-server", "")).unwrap();
        assert_eq!(entries(&p), ["catch_errors", "gatekeeper", "listing_formats", "copy", "dlo", "versioned_writes"]);
        // gatekeeper after catch_errors when the line starts with it; copy
        // and dlo after the auth.
        let p = Pipeline::from_config(&conf(
            "catch_errors healthcheck proxy-logging cache tempauth proxy-logging proxy-server",
            "[filter:catch_errors]\nuse = egg:swift#catch_errors\n[filter:healthcheck]\nuse = egg:swift#healthcheck\n\
             [filter:proxy-logging]\nuse = egg:swift#proxy_logging\n[filter:cache]\nuse = egg:swift#memcache\n\
             [filter:tempauth]\nuse = egg:swift#tempauth\n",
        ))
        .unwrap();
        assert_eq!(
            entries(&p),
            [
                "catch_errors",
                "gatekeeper",
                "healthcheck",
                "proxy_logging",
                "memcache",
                "listing_formats",
                "tempauth",
                "copy",
                "dlo",
                "versioned_writes",
                "proxy_logging"
            ]
        );
        // Without catch_errors first, gatekeeper goes first.
        let p = Pipeline::from_config(&conf(
            "healthcheck catch_errors proxy-server",
            "[filter:catch_errors]\nuse = egg:swift#catch_errors\n[filter:healthcheck]\nuse = egg:swift#healthcheck\n",
        ))
        .unwrap();
        assert_eq!(entries(&p)[..3], ["gatekeeper", "healthcheck", "catch_errors"]);
        // allow_modify_pipeline = false keeps the line as written.
        let c = ConfigFile::parse(
            "[pipeline:main]\npipeline = proxy-server\n[app:proxy-server]\nuse = egg:swift#proxy\nallow_modify_pipeline = false\n",
            "p.conf",
        )
        .unwrap();
        assert!(Pipeline::from_config(&c).unwrap().filters.is_empty());
    }

    #[test]
    fn swift_saio_pipeline_needs_no_insertion() {
        // The reference Swift all-in-one's line, less container_sync and
        // s3api, is swift-saio's.
        let ours = "catch_errors gatekeeper healthcheck proxy-logging cache etag-quoter domain_remap listing_formats bulk tempurl \
                    ratelimit crossdomain formpost tempauth staticweb copy container-quotas account-quotas slo dlo versioned_writes \
                    symlink proxy-logging proxy-server";
        let mut sections = String::new();
        let mut names: Vec<&str> = ours.split_whitespace().filter(|n| *n != "proxy-server").collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            let entry = match name {
                "proxy-logging" => "proxy_logging".to_string(),
                "cache" => "memcache".to_string(),
                other => other.replace('-', "_"),
            };
            sections.push_str(&format!("[filter:{name}]\nuse = egg:swift#{entry}\n"));
        }
        let p = Pipeline::from_config(&conf(ours, &sections)).unwrap();
        assert!(p.inserted.is_empty() && p.skipped.is_empty(), "{p:?}");
        assert_eq!(p.section_of("tempauth"), Some("tempauth"));
        assert!(p.has_auth());
    }

    #[test]
    fn the_sample_config_pipeline_is_accepted_whole() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/proxy-server.conf-sample");
        let conf = ConfigFile::load(std::path::Path::new(path)).unwrap();
        let p = Pipeline::from_config(&conf).unwrap();
        assert!(p.inserted.is_empty() && p.skipped.is_empty(), "{p:?}");
        assert_eq!(p.filters.len(), 23);
    }
}
