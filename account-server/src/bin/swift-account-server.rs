//! `swift-account-server CONFIG`: runs the account server.

use account_server::{AccountServer, AccountSettings};
use common::dbserver::server::run_server;

fn main() {
    run_server("swift-account-server", AccountSettings::from_config, |s| &s.server, AccountServer::new);
}
