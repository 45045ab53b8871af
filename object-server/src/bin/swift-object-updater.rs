//! `swift-object-updater CONFIG [once] [-v]`: replays the async pendings
//! (the container updates the object server could not deliver) to the
//! container servers, each `interval` seconds (`[object-updater]` of
//! object-server.conf), or one sweep with `once` / `--once` / `-o`.

fn main() {
    common::daemon::main::<object_server::updater::ObjectUpdater>()
}
