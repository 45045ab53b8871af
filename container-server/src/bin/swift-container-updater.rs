//! `swift-container-updater CONFIG [once] [-v]`: reports every container's
//! object count and bytes to the account servers, each `interval` seconds
//! (`[container-updater]` of container-server.conf), or one sweep with
//! `once` / `--once` / `-o`.

fn main() {
    common::daemon::main::<container_server::updater::ContainerUpdater>()
}
