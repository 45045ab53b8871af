//! `swift-container-auditor CONFIG [once] [-v] [--devices D1,D2]`: opens
//! every container database on this node's devices and quarantines those
//! SQLite cannot read, each `interval` seconds (`[container-auditor]` of
//! container-server.conf), or one pass with `once` / `--once` / `-o`.

fn main() {
    common::daemon::main::<common::db::auditor::ContainerAuditor>()
}
