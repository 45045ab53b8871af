//! `swift-proxy-server CONFIG`: the Swift API proxy.

use proxy_server::pipeline::Pipeline;
use proxy_server::proxy::Proxy;
use proxy_server::settings::{ProxySettings, TempAuthSettings};
use std::sync::Arc;

fn main() {
    let conf_path = common::server::config_path_from_args("swift-proxy-server");
    let conf = common::server::load_config_or_exit(&conf_path);
    let settings = ProxySettings::from_config(&conf).unwrap_or_else(|e| {
        eprintln!("Error in {}: {e}", conf_path.display());
        std::process::exit(1);
    });
    let pipeline = Pipeline::from_config(&conf).unwrap_or_else(|e| {
        eprintln!("Error in {}: {e}", conf_path.display());
        std::process::exit(1);
    });
    let tempauth = TempAuthSettings::from_config(&conf, &pipeline).unwrap_or_else(|e| {
        eprintln!("Error in {}: {e}", conf_path.display());
        std::process::exit(1);
    });
    common::log::init(&settings.log_name, settings.log_level);
    for f in &pipeline.skipped {
        common::log::warning(&format!(
            "[filter:{}] (egg:swift#{}) is not implemented by this proxy yet; running without it",
            f.name, f.entry_point
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap_or_else(|e| {
        eprintln!("cannot start the runtime: {e}");
        std::process::exit(1);
    });
    runtime.block_on(async move {
        let proxy = Proxy::new(settings.clone(), tempauth).unwrap_or_else(|e| {
            eprintln!("Error starting the proxy: {e}");
            std::process::exit(1);
        });
        let addr = format!("{}:{}", settings.bind_ip, settings.bind_port);
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap_or_else(|e| {
            eprintln!("Error binding to {addr}: {e}");
            std::process::exit(1);
        });
        common::log::info(&format!("proxy-server listening on {addr}"));
        common::server::serve(
            Arc::new(proxy),
            listener,
            &settings.connections,
            settings.log_requests,
            common::server::shutdown_signal(),
            settings.graceful_shutdown_timeout,
        )
        .await;
        // In-flight requests had their grace period; do not wait longer.
        std::process::exit(0);
    });
}
