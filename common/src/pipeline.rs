//! `[pipeline:main]`, as every server reads it: the pieces a request passes
//! through (Swift's paste.deploy filters, then the app), the `Handler` each
//! piece is, and the storage servers' filters (`healthcheck`, `recon`).
//!
//! The proxy builds its own, longer line on the same `Handler` (see the
//! proxy crate's `pipeline` and `middleware` modules).

use crate::config::{ConfigError, ConfigFile};
use crate::http::Body;
use crate::server::{RequestInfo, Service};
use http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed, sendable future (what a `Handler` returns).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One piece of a pipeline: a middleware or the app at its end.
pub trait Handler: Send + Sync + 'static {
    /// Answers `req`. Never fails: errors are responses.
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>>;
}

/// The pipeline to a middleware's right (Swift's `self.app`).
pub type Next = Arc<dyn Handler>;

/// Adapts a closure to a `Handler` (fake next handlers in unit tests, and
/// small glue).
pub struct FnHandler<F>(pub F);

impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(Request<Body>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin((self.0)(req))
    }
}

/// A server's own request handling as the last piece of its pipeline.
pub struct ServiceApp<S>(pub Arc<S>);

impl<S: Service> Handler for ServiceApp<S> {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        let info = request_info(&req);
        Box::pin(self.0.clone().handle(req, info))
    }
}

/// The request's context from the server scaffold (transaction id, client
/// address, start time); every request it passes on carries one.
pub fn request_info<B>(req: &Request<B>) -> RequestInfo {
    req.extensions().get::<RequestInfo>().cloned().unwrap_or_else(|| RequestInfo {
        remote: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        trans_id: crate::server::new_trans_id(),
        started: std::time::Instant::now(),
    })
}

/// One filter of `[pipeline:main]`: its name there (and its section,
/// `[filter:<name>]`) and the entry point its `use = egg:swift#<entry>`
/// names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterName {
    pub name: String,
    pub entry_point: String,
}

/// The line of `[pipeline:main]`: its filters in order and its app. Each
/// filter must have a `[filter:<name>]` section using one of Swift's entry
/// points; `None` without a pipeline.
pub fn read_pipeline(conf: &ConfigFile) -> Result<Option<(Vec<FilterName>, String)>, ConfigError> {
    let Some(names) = conf.pipeline() else { return Ok(None) };
    let error = |message: String| ConfigError::Pipeline { file: conf.source().to_string(), message };
    let Some((app, filters)) = names.split_last() else {
        return Err(error("[pipeline:main] names no app".into()));
    };
    let mut out = Vec::new();
    for name in filters {
        let section = conf.filter_section(name).ok_or_else(|| error(format!("no [filter:{name}] section")))?;
        let used = section.get("use").map(str::trim).unwrap_or("");
        let Some(entry_point) = used.strip_prefix("egg:swift#") else {
            return Err(error(format!("[filter:{name}] uses {used:?}; only Swift's own middlewares (egg:swift#...) can be run")));
        };
        out.push(FilterName { name: name.clone(), entry_point: entry_point.to_string() });
    }
    Ok(Some((out, app.clone())))
}

/// A filter of a storage server's pipeline, in pipeline order.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageFilter {
    /// `egg:swift#healthcheck`, with its `disable_path`.
    Healthcheck(crate::healthcheck::HealthcheckSettings),
    /// `egg:swift#recon`: `/recon/*` (settings in `ServerSettings::recon`).
    Recon,
}

/// Entry points a storage server's pipeline may name and skips, with why:
/// `xprofile` profiles the Python interpreter (done from outside here);
/// `backend_ratelimit` (in Swift's own samples) is not implemented: the
/// server runs without per-device request limits, with a warning.
const STORAGE_SKIPPED: &[&str] = &["xprofile", "backend_ratelimit"];

/// Reads a storage server's filters. A filter it does not implement stops
/// start-up with an error naming it, except `STORAGE_SKIPPED` (returned
/// for a warning).
pub fn storage_filters(conf: &ConfigFile) -> Result<(Vec<StorageFilter>, Vec<FilterName>), ConfigError> {
    let Some((names, _app)) = read_pipeline(conf)? else { return Ok((Vec::new(), Vec::new())) };
    let mut filters = Vec::new();
    let mut skipped = Vec::new();
    for f in names {
        let section = conf.filter_section(&f.name).unwrap_or_else(|| conf.defaults());
        match f.entry_point.as_str() {
            "healthcheck" => filters.push(StorageFilter::Healthcheck(crate::healthcheck::HealthcheckSettings::from_section(&section))),
            "recon" => filters.push(StorageFilter::Recon),
            e if STORAGE_SKIPPED.contains(&e) => skipped.push(f),
            e => {
                return Err(ConfigError::Pipeline {
                    file: conf.source().to_string(),
                    message: format!("[filter:{}] (egg:swift#{e}) is not implemented by this server; remove it from the pipeline", f.name),
                })
            }
        }
    }
    Ok((filters, skipped))
}

/// A storage server's pipeline: `filters` (in order) around `app`.
pub fn build_storage(filters: &[StorageFilter], recon: Option<Arc<crate::recon::Recon>>, app: Next) -> Next {
    let mut next = app;
    for f in filters.iter().rev() {
        next = match f {
            StorageFilter::Healthcheck(s) => Arc::new(crate::healthcheck::Healthcheck::new(s.clone(), next)),
            StorageFilter::Recon => match &recon {
                Some(r) => Arc::new(crate::recon::ReconFilter::new(r.clone(), next)),
                None => next,
            },
        };
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_pipelines() {
        let conf = ConfigFile::parse(
            "[pipeline:main]\npipeline = healthcheck recon backend_ratelimit object-server\n[app:object-server]\nuse = egg:swift#object\n\
             [filter:healthcheck]\nuse = egg:swift#healthcheck\ndisable_path = /tmp/x\n[filter:recon]\nuse = egg:swift#recon\n\
             [filter:backend_ratelimit]\nuse = egg:swift#backend_ratelimit\n",
            "object-server.conf",
        )
        .unwrap();
        let (filters, skipped) = storage_filters(&conf).unwrap();
        assert_eq!(filters.len(), 2);
        assert!(matches!(&filters[0], StorageFilter::Healthcheck(s) if s.disable_path.as_deref() == Some(std::path::Path::new("/tmp/x"))));
        assert_eq!(filters[1], StorageFilter::Recon);
        assert_eq!(skipped[0].entry_point, "backend_ratelimit");
        let conf = ConfigFile::parse(
            "[pipeline:main]\npipeline = tempurl object-server\n[filter:tempurl]\nuse = egg:swift#tempurl\n",
            "object-server.conf",
        )
        .unwrap();
        let err = storage_filters(&conf).unwrap_err().to_string();
        assert!(err.starts_with("object-server.conf: [filter:tempurl]"), "{err}");
        let conf = ConfigFile::parse("[pipeline:main]\npipeline = nothere object-server\n", "o.conf").unwrap();
        assert!(storage_filters(&conf).unwrap_err().to_string().contains("[filter:nothere]"));
    }
}
