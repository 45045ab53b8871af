//! The account server service: settings and storage, and the dispatch
//! from a [`Route`] to its handler.

use crate::routing::{route, AccountOp, Route};
use crate::settings::AccountSettings;
use crate::storage::AccountStore;
use common::dbserver::replicate::replicate;
use common::dbserver::response::refuse;
use common::dbserver::server::{allowed_methods, auto_create_prefix};
use common::devices::Devices;
use common::http::Body;
use common::recon::Recon;
use common::server::{RequestInfo, Service};
use common::statsd::StatsdClient;
use common::swift_conf::SwiftConf;
use http::{Request, Response};

use std::sync::Arc;

/// Every verb the account server answers.
const ALL_METHODS: [&str; 7] = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT", "REPLICATE"];

/// The account server.
pub struct AccountServer {
    pub settings: AccountSettings,
    pub swift: SwiftConf,
    pub store: Arc<AccountStore>,
    /// Accounts that the first container update creates.
    pub auto_create_prefix: String,
    /// `/recon/*`, when the pipeline has Swift's recon filter.
    pub recon: Option<Arc<Recon>>,
}

/// The verbs timed for statsd and their sample rates (Swift's
/// `@timing_stats` on each).
const VERB_TIMINGS: &[(&str, Option<f64>)] =
    &[("PUT", None), ("GET", None), ("POST", None), ("DELETE", None), ("HEAD", None), ("REPLICATE", None)];

impl AccountServer {
    pub fn new(settings: AccountSettings, swift: SwiftConf) -> AccountServer {
        let s = &settings.server;
        let devices = Devices::new(s.devices.clone(), s.mount_check, s.threads_per_disk);
        let auto_create_prefix = auto_create_prefix(settings.auto_create_account_prefix.as_deref(), &swift);
        let recon = Recon::for_server(s, &swift);
        AccountServer { store: Arc::new(AccountStore::new(devices, swift.hash.clone())), auto_create_prefix, recon, swift, settings }
    }
}

impl Service for AccountServer {
    fn server_type(&self) -> &'static str {
        "account-server"
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

impl AccountServer {
    /// Routes the request to its handler.
    async fn dispatch(self: Arc<Self>, req: Request<Body>, _info: RequestInfo) -> Response<Body> {
        // Only REPLICATE reads its body.
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
                replicate(&self.store, common::db::account::DATADIR, parts.uri.path(), body, timeout).await
            }
            Route::ContainerUpdate(path) => self.container_update(path, headers).await,
            Route::Account(op, path) => match op {
                AccountOp::Put => self.put_account(path, headers).await,
                AccountOp::Post => self.post_account(path, headers).await,
                AccountOp::Delete => self.delete_account(path, headers).await,
                AccountOp::Head => self.head_account(path, headers, query).await,
                AccountOp::Get => self.get_account(path, headers, query).await,
            },
        }
    }
}
