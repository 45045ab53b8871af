//! The object server: stores object bodies and their metadata on the
//! devices of one node, answers the proxy's backend API (PUT, GET, HEAD,
//! POST, DELETE on `/<dev>/<part>/<a>/<c>/<o>`), tells the container servers
//! about new and deleted objects, and reports suffix hashes to replication
//! (REPLICATE).
//!
//! Layers: [`routing`] turns a request into a [`routing::Route`]; one
//! handler module per verb family ([`put`], [`get`] for GET and HEAD,
//! [`post`], [`delete`], [`replicate`]) says what the HTTP contract is;
//! [`diskfile`] and [`metadata`] hold the files on disk and know nothing of
//! HTTP. [`container_update`] sends the container updates and saves async
//! pendings; [`updater`] is the object-updater daemon that replays them.

// Checks return the ready-made error response; it is built only on the
// (rare) error path, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod async_pending;
pub mod auditor;
pub mod constraints;
pub mod container_update;
pub mod delete;
pub mod diskfile;
pub mod expirer;
pub mod get;
pub mod group_sync;
pub mod hashes;
pub mod metadata;
pub mod pickle;
pub mod post;
pub mod put;
pub mod replicate;
pub mod replicator;
pub mod routing;
pub mod settings;
pub mod ssync;
pub mod updater;

use common::backend::BackendClient;
use common::backend_headers as bh;
use common::devices::Devices;
use common::http::{self as h, Body};
use common::path::StoragePath;
use common::recon::Recon;
use common::server::{RequestInfo, Service};
use common::statsd::StatsdClient;
use common::swift_conf::SwiftConf;
use diskfile::ObjectLocation;
use http::{Request, Response, StatusCode};

use routing::{ObjectVerb, Route};
use settings::ObjectSettings;
use std::path::PathBuf;
use std::sync::Arc;

/// The object server's shared state.
pub struct ObjectServer {
    pub settings: ObjectSettings,
    pub swift: SwiftConf,
    pub devices: Arc<Devices>,
    pub client: BackendClient,
    /// `/recon/*`, when the pipeline has Swift's recon filter.
    pub recon: Option<Arc<Recon>>,
    /// The slots of incoming SSYNC requests (`replication_concurrency`).
    pub ssync: ssync::receiver::Receptions,
}

/// The object a request names, resolved to its place on disk.
#[derive(Debug, Clone)]
pub struct Target {
    pub path: StoragePath,
    pub account: String,
    pub container: String,
    pub object: String,
    /// `/a/c/o`: the `name` stored in metadata.
    pub name: String,
    pub location: ObjectLocation,
}

/// The verbs timed for statsd and their sample rates (Swift's
/// `@timing_stats` on each).
const VERB_TIMINGS: &[(&str, Option<f64>)] =
    &[("PUT", None), ("GET", None), ("POST", None), ("DELETE", None), ("HEAD", Some(0.8)), ("REPLICATE", Some(0.1)), ("SSYNC", Some(0.1))];

impl ObjectServer {
    /// Builds the server from its settings and `swift.conf`.
    pub fn new(settings: ObjectSettings, swift: SwiftConf) -> ObjectServer {
        let devices = Arc::new(Devices::new(&settings.server.devices, settings.server.mount_check, settings.server.threads_per_disk));
        let client = BackendClient::new(settings.server.conn_timeout, settings.server.node_timeout);
        let recon = Recon::for_server(&settings.server, &swift);
        let ssync = ssync::receiver::Receptions::new(&settings.ssync);
        ObjectServer { settings, swift, devices, client, recon, ssync }
    }

    /// The storage policy index a request names (`X-Backend-Storage-Policy-Index`,
    /// default 0); an unknown index is refused with 503 as Swift does.
    fn policy_index(&self, headers: &http::HeaderMap) -> Result<u32, Response<Body>> {
        let Some(raw) = headers.get(bh::BACKEND_STORAGE_POLICY_INDEX) else { return Ok(0) };
        let raw = raw.to_str().unwrap_or("").trim();
        match raw.parse::<u32>() {
            Ok(i) if self.swift.policy_by_index(i).is_some() || (i == 0 && self.swift.policies.is_empty()) => Ok(i),
            _ => Err(h::text(StatusCode::SERVICE_UNAVAILABLE, format!("No policy with index {raw}"))),
        }
    }

    /// Checks the device (507 when missing or unmounted) and resolves the
    /// object's location.
    async fn resolve(&self, path: StoragePath, headers: &http::HeaderMap) -> Result<Target, Response<Body>> {
        let policy = self.policy_index(headers)?;
        let device_path = self.check_device(&path.device).await?;
        let account = path.account.clone();
        let container = path.container.clone().unwrap_or_default();
        let object = path.object.clone().unwrap_or_default();
        let hash = self
            .swift
            .hash
            .hash_path(&account, Some(&container), Some(&object))
            .map_err(|e| h::text(StatusCode::BAD_REQUEST, e.to_string()))?;
        let name = format!("/{account}/{container}/{object}");
        let location = ObjectLocation { device_path, policy, partition: path.partition, hash };
        Ok(Target { path, account, container, object, name, location })
    }

    /// The device's directory, or Swift's 507.
    async fn check_device(&self, device: &str) -> Result<PathBuf, Response<Body>> {
        self.devices.check_async(device).await.map_err(|_| h::insufficient_storage(device))
    }

    /// Bytes `fallocate_reserve` keeps free on `device_path`.
    fn reserve_bytes(&self, device_path: &std::path::Path) -> u64 {
        match self.settings.fallocate_reserve {
            settings::FallocateReserve::Bytes(b) => b,
            settings::FallocateReserve::Percent(p) if p > 0.0 => device_size(device_path).map_or(0, |s| (s as f64 * p / 100.0) as u64),
            _ => 0,
        }
    }
}

fn device_size(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statvfs(c.as_ptr(), &mut st) } == 0).then(|| st.f_blocks as u64 * st.f_frsize as u64)
}

impl Service for ObjectServer {
    fn server_type(&self) -> &'static str {
        "object-server"
    }

    fn allowed_methods(&self) -> Vec<&'static str> {
        let client = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
        let replication = ["REPLICATE", "SSYNC"];
        // As Swift 2.38: unset or true serves every verb; false, no
        // replication verbs.
        match self.settings.server.replication_server {
            None | Some(true) => client.iter().chain(replication.iter()).copied().collect(),
            Some(false) => client.to_vec(),
        }
    }

    fn filters(&self) -> (&[common::pipeline::StorageFilter], Option<Arc<Recon>>) {
        (&self.settings.server.filters, self.recon.clone())
    }

    async fn handle(self: Arc<Self>, req: Request<Body>, info: RequestInfo) -> Response<Body> {
        let method = req.method().clone();
        let statsd = self.settings.server.statsd.clone();
        StatsdClient::time_verb(statsd.as_ref(), &method, VERB_TIMINGS, self.dispatch(req, info)).await
    }
}

impl ObjectServer {
    /// Routes the request to its handler.
    async fn dispatch(self: Arc<Self>, req: Request<Body>, info: RequestInfo) -> Response<Body> {
        let raw_path = req.uri().path().to_string();
        if let Err(resp) = constraints::check_header_count(req.headers(), &self.swift.constraints) {
            return resp;
        }
        let route = match routing::route(req.method(), &raw_path) {
            Ok(Some(r)) => r,
            Ok(None) => {
                let mut r = h::status(StatusCode::METHOD_NOT_ALLOWED);
                let allow = common::server::allow_header(&common::server::Service::allowed_methods(&*self));
                if let Ok(v) = http::HeaderValue::from_str(&allow) {
                    r.headers_mut().insert(http::header::ALLOW, v);
                }
                return r;
            }
            Err(e) => return h::text(e.status(), e.to_string()),
        };
        match route {
            Route::Object { verb, path } => {
                let target = match self.resolve(path, req.headers()).await {
                    Ok(t) => t,
                    Err(resp) => return resp,
                };
                match verb {
                    ObjectVerb::Put => put::handle(self, req, target, info).await,
                    ObjectVerb::Get | ObjectVerb::Head => get::handle(self, req, target, verb == ObjectVerb::Head).await,
                    ObjectVerb::Post => post::handle(self, req, target).await,
                    ObjectVerb::Delete => delete::handle(self, req, target, info).await,
                }
            }
            Route::Replicate { device, partition, suffixes } => replicate::handle(self, req.headers(), device, partition, suffixes).await,
            Route::Ssync { device, partition } => ssync::receiver::handle(self, req, device, partition, info).await,
        }
    }
}
