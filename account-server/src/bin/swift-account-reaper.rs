//! `swift-account-reaper CONFIG [once] [-v]`: removes the containers and
//! objects of accounts a reseller admin deleted, from the account
//! databases this node is a primary of, each `interval` seconds
//! (`[account-reaper]` of account-server.conf), or one pass with `once` /
//! `--once` / `-o`.

fn main() {
    common::daemon::main::<account_server::reaper::AccountReaper>()
}
