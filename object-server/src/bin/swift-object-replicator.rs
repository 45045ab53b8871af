//! `swift-object-replicator CONFIG [once] [-v] [-d DEV1,DEV2] [-p P1,P2]`:
//! keeps the replicas of every partition on this server's devices in step
//! with their peers over SSYNC, each `interval` seconds
//! (`[object-replicator]` of object-server.conf), or one pass with `once`.

fn main() {
    common::daemon::main::<object_server::replicator::ObjectReplicator>()
}
