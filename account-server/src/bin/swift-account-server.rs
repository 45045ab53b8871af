//! `swift-account-server CONFIG [-v]`: runs the account server; SIGHUP
//! reloads its config and `swift.conf` without dropping a request.

use account_server::{AccountServer, AccountSettings};
use common::dbserver::server::run_server;

fn main() {
    run_server("swift-account-server", AccountSettings::from_config, |s| &s.server, AccountServer::new);
}
