//! `swift-account-replicator CONFIG [once] [-v] [-d DEVS] [-p PARTS]`:
//! Swift's DB replication of account databases, each `interval`
//! seconds (`[account-replicator]` of account-server.conf), or one
//! pass with `once`.

fn main() {
    common::daemon::main::<account_server::replicator::AccountReplicator>()
}
