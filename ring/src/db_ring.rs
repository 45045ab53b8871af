//! A ring as the account and container replicators ask it
//! (`common::db::replicator::DbRing`): the ring crate depends on `common`,
//! so the implementation lives here, behind the `db` feature.

use crate::{Device, Ring};
use common::db::replicator::{DbRing, Node};

fn node(d: &Device) -> Node {
    Node {
        id: d.id,
        region: d.region,
        replication_ip: d.replication_ip.clone(),
        replication_port: d.replication_port,
        device: d.device.clone(),
    }
}

impl DbRing for Ring {
    fn devices(&self) -> Vec<Node> {
        self.table().devs().iter().flatten().map(node).collect()
    }

    fn part_nodes(&self, part: u32) -> Vec<Node> {
        self.table().part_nodes(part).into_iter().map(node).collect()
    }

    fn more_nodes(&self, part: u32) -> Vec<Node> {
        self.get_more_nodes(part).iter().map(node).collect()
    }

    fn get_part(&self, account: &str, container: Option<&str>) -> Option<u32> {
        Ring::get_part(self, account, container, None).ok()
    }
}
