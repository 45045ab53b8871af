//! `swift-proxy-server CONFIG`: the Swift API proxy.

use proxy_server::pipeline::{build_proxy, Pipeline};
use proxy_server::proxy::{Proxy, ProxyService};
use proxy_server::settings::ProxySettings;
use std::sync::Arc;

fn main() {
    let conf_path = common::server::config_path_from_args("swift-proxy-server");
    let conf = common::server::load_config_or_exit(&conf_path);
    let exit = |e: String| -> ! {
        eprintln!("Error in {}: {e}", conf_path.display());
        std::process::exit(1);
    };
    let settings = ProxySettings::from_config(&conf).unwrap_or_else(|e| exit(e.to_string()));
    let pipeline = Pipeline::from_config(&conf).unwrap_or_else(|e| exit(e));
    common::log::init(&settings.log_name, settings.log_level);
    for f in &pipeline.skipped {
        common::log::warning(&format!(
            "[filter:{}] (egg:swift#{}) has nothing to do in this proxy; skipping it",
            f.name.as_deref().unwrap_or_default(),
            f.entry_point
        ));
    }
    for inserted in &pipeline.inserted {
        common::log::info(&format!("Adding required filter {inserted} of the pipeline"));
    }
    if !pipeline.has_auth() {
        common::log::warning(
            "WARNING: the pipeline has no auth filter (tempauth): this proxy lets ANYONE read, write and delete \
             every account. Add tempauth to [pipeline:main] unless that is what you want.",
        );
    }
    // proxy_logging writes Swift's proxy access line; the scaffold's
    // storage-server style line would log every request a second time.
    let log_requests = settings.log_requests && !pipeline.has("proxy_logging");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| {
        eprintln!("cannot start the runtime: {e}");
        std::process::exit(1);
    });
    runtime.block_on(async move {
        let proxy = Proxy::new(settings.clone()).unwrap_or_else(|e| {
            eprintln!("Error starting the proxy: {e}");
            std::process::exit(1);
        });
        let pipeline = build_proxy(&conf, &pipeline, proxy).unwrap_or_else(|e| exit(e));
        let addr = format!("{}:{}", settings.bind_ip, settings.bind_port);
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap_or_else(|e| {
            eprintln!("Error binding to {addr}: {e}");
            std::process::exit(1);
        });
        common::log::info(&format!("proxy-server listening on {addr}"));
        common::server::serve(
            Arc::new(ProxyService { pipeline }),
            listener,
            &settings.connections,
            log_requests,
            common::server::shutdown_signal(),
            settings.graceful_shutdown_timeout,
        )
        .await;
        // In-flight requests had their grace period; do not wait longer.
        std::process::exit(0);
    });
}
