//! `swift-object-auditor CONFIG [once] [-v] [--devices D1,D2] [--partitions P1,P2]`:
//! checks every object on the node's devices against its metadata and
//! quarantines the corrupt ones (`[object-auditor]` of object-server.conf),
//! every `interval` seconds, or one audit with `once` / `--once` / `-o`.

fn main() {
    common::daemon::main::<object_server::auditor::ObjectAuditor>()
}
