//! Which storage nodes a request goes to: the rings, the order of
//! primaries and handoffs, and error limiting of nodes that keep failing.

use ring::{Device, Ring};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per-node error counts (Swift's error limiting): a node with more than
/// `limit` errors, or any 507, is skipped for `interval`.
pub struct ErrorLimiter {
    limit: u32,
    interval: Duration,
    nodes: Mutex<HashMap<(String, u16, String), NodeErrors>>,
}

#[derive(Clone, Copy)]
struct NodeErrors {
    count: u32,
    last: Instant,
}

fn key(d: &Device) -> (String, u16, String) {
    (d.ip.clone(), d.port, d.device.clone())
}

impl ErrorLimiter {
    pub fn new(limit: u32, interval: Duration) -> ErrorLimiter {
        ErrorLimiter { limit, interval, nodes: Mutex::new(HashMap::new()) }
    }

    /// Whether the node is being skipped.
    pub fn is_limited(&self, d: &Device) -> bool {
        let mut nodes = self.nodes.lock().expect("error limiter lock");
        match nodes.get(&key(d)).copied() {
            Some(e) if e.last.elapsed() > self.interval => {
                nodes.remove(&key(d));
                false
            }
            Some(e) => e.count > self.limit,
            None => false,
        }
    }

    /// Counts one error against the node.
    pub fn error(&self, d: &Device) {
        let mut nodes = self.nodes.lock().expect("error limiter lock");
        let e = nodes.entry(key(d)).or_insert(NodeErrors { count: 0, last: Instant::now() });
        e.count += 1;
        e.last = Instant::now();
    }

    /// Skips the node at once (a 507: the drive is unmounted or full).
    pub fn limit(&self, d: &Device) {
        let mut nodes = self.nodes.lock().expect("error limiter lock");
        nodes.insert(key(d), NodeErrors { count: self.limit + 1, last: Instant::now() });
    }
}

/// The nodes to try for a partition: primaries (shuffled, as Swift's
/// default `sorting_method = shuffle`) then handoffs in ring order, skipping
/// error-limited nodes, at most `max` in all.
pub fn node_iter(ring: &Ring, part: u32, max: usize, errors: &ErrorLimiter) -> Vec<Device> {
    use rand::seq::SliceRandom;
    let table = ring.table();
    let mut primaries: Vec<Device> = table.part_nodes(part).into_iter().cloned().collect();
    primaries.shuffle(&mut rand::thread_rng());
    let mut out: Vec<Device> = primaries.into_iter().filter(|d| !errors.is_limited(d)).collect();
    for d in table.handoffs(part) {
        if out.len() >= max {
            break;
        }
        if !errors.is_limited(d) {
            out.push(d.clone());
        }
    }
    out.truncate(max);
    out
}

/// Primaries in ring order, and an iterator over the handoffs (Swift's
/// order) that replace failed primaries on writes.
pub fn write_nodes(ring: &Ring, part: u32) -> (Vec<Device>, Vec<Device>) {
    let table = ring.table();
    let primaries = table.part_nodes(part).into_iter().cloned().collect::<Vec<_>>();
    let handoffs = table.handoffs(part).take(primaries.len() * 2).cloned().collect();
    (primaries, handoffs)
}

/// Swift's `quorum_size`: `(n + 1) / 2`.
pub fn quorum_size(n: usize) -> usize {
    n.div_ceil(2)
}

/// Ring devices as the target of an update (`X-Container-*`,
/// `X-Account-*`, `X-Delete-At-*`): `ip:port` and device, in order.
pub fn update_target<'a>(partition: u32, nodes: impl IntoIterator<Item = &'a Device>) -> common::backend_headers::UpdateTarget {
    common::backend_headers::UpdateTarget::new(
        partition,
        nodes
            .into_iter()
            .map(|d| common::backend_headers::UpdateNode::new(format!("{}:{}", ring::device::format_ip(&d.ip), d.port), &d.device)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_half_rounded_up() {
        assert_eq!(quorum_size(1), 1);
        assert_eq!(quorum_size(2), 1);
        assert_eq!(quorum_size(3), 2);
        assert_eq!(quorum_size(4), 2);
        assert_eq!(quorum_size(5), 3);
    }
}
