//! `swift-container-replicator CONFIG [once] [-v] [-d DEVS] [-p PARTS]`:
//! Swift's DB replication of container databases, each `interval`
//! seconds (`[container-replicator]` of container-server.conf), or one
//! pass with `once`.

fn main() {
    common::daemon::main::<container_server::replicator::ContainerReplicator>()
}
