//! The container server service: settings, storage and the backend client,
//! and the dispatch from a [`Route`] to its handler.

use crate::routing::{route, ContainerOp, Route};
use crate::settings::ContainerSettings;
use crate::storage::ContainerStore;
use common::backend::BackendClient;
use common::dbserver::replicate::replicate;
use common::dbserver::response::refuse;
use common::dbserver::server::{allowed_methods, auto_create_prefix};
use common::devices::Devices;
use common::http::{self as h, Body};
use common::recon::Recon;
use common::server::{RequestInfo, Service};
use common::statsd::StatsdClient;
use common::swift_conf::SwiftConf;
use http::{Request, Response, StatusCode};

use std::sync::Arc;

/// Every verb the container server answers.
const ALL_METHODS: [&str; 8] = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "REPLICATE", "UPDATE"];

/// The container server.
pub struct ContainerServer {
    pub settings: ContainerSettings,
    pub swift: SwiftConf,
    pub store: Arc<ContainerStore>,
    pub client: BackendClient,
    /// Accounts whose containers the first object update creates.
    pub auto_create_prefix: String,
    /// `/recon/*`, when the pipeline has Swift's recon filter.
    pub recon: Option<Arc<Recon>>,
}

/// The verbs timed for statsd and their sample rates (Swift's
/// `@timing_stats` on each).
const VERB_TIMINGS: &[(&str, Option<f64>)] =
    &[("PUT", None), ("GET", None), ("POST", None), ("DELETE", None), ("HEAD", Some(0.1)), ("REPLICATE", Some(0.01))];

impl ContainerServer {
    pub fn new(settings: ContainerSettings, swift: SwiftConf) -> ContainerServer {
        let s = &settings.server;
        let devices = Devices::new(s.devices.clone(), s.mount_check, s.threads_per_disk);
        let auto_create_prefix = auto_create_prefix(settings.auto_create_account_prefix.as_deref(), &swift);
        ContainerServer {
            recon: Recon::for_server(s, &swift),
            store: Arc::new(ContainerStore::new(devices, swift.hash.clone())),
            client: BackendClient::new(s.conn_timeout, s.node_timeout),
            auto_create_prefix,
            swift,
            settings,
        }
    }
}

impl Service for ContainerServer {
    fn server_type(&self) -> &'static str {
        "container-server"
    }

    fn allowed_methods(&self) -> Vec<&'static str> {
        allowed_methods(&ALL_METHODS, self.settings.server.replication_server)
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

impl ContainerServer {
    /// Routes the request to its handler.
    async fn dispatch(self: Arc<Self>, req: Request<Body>, info: RequestInfo) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let r = match route(&parts.method, parts.uri.path(), &self.swift.constraints) {
            Ok(r) => r,
            Err(refusal) => return refuse(refusal),
        };
        let query = parts.uri.query();
        let headers = &parts.headers;
        match r {
            Route::Replicate => {
                let timeout = self.settings.server.connections.client_timeout;
                replicate(&self.store, common::db::container::DATADIR, parts.uri.path(), body, timeout).await
            }
            Route::NotImplemented => h::text(StatusCode::NOT_IMPLEMENTED, "Not Implemented"),
            Route::Object(op, path) => self.object_update(op, path, headers).await,
            Route::Container(op, path) => match op {
                ContainerOp::Put => self.put_container(path, headers, &info).await,
                ContainerOp::Post => self.post_container(path, headers).await,
                ContainerOp::Delete => self.delete_container(path, headers, &info).await,
                ContainerOp::Head => self.head_container(path, headers, query).await,
                ContainerOp::Get => self.get_container(path, headers, query).await,
            },
        }
    }
}
