//! Placement: which devices hold an account, container or object, and the
//! handoffs to try when they fail (Swift's `Ring`, reference §1.3-1.4).

use crate::device::Device;
use crate::ring_data::{RingData, RingError};
use common::hash::HashPathConf;
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How often a `Ring` looks at its file's mtime (Swift's `reload_time`).
pub const DEFAULT_RELOAD_TIME: Duration = Duration::from_secs(15);

/// Loaded ring data plus the bookkeeping placement needs, immutable.
#[derive(Debug)]
pub struct RingTable {
    data: RingData,
    /// Dense failure-domain ids per device id: (region, zone, ip).
    domains: Vec<Option<(u32, u32, u32)>>,
    num_regions: usize,
    num_zones: usize,
    num_ips: usize,
    num_assigned_devs: usize,
}

impl RingTable {
    pub fn new(data: RingData) -> RingTable {
        let mut assigned = vec![false; data.devs.len()];
        for row in &data.replica2part2dev {
            for &d in row {
                assigned[d as usize] = true;
            }
        }
        let mut regions = HashMap::new();
        let mut zones = HashMap::new();
        let mut ips = HashMap::new();
        let mut domains = vec![None; data.devs.len()];
        let (mut ar, mut az, mut ai) = (HashMap::new(), HashMap::new(), HashMap::new());
        let mut num_assigned_devs = 0;
        for dev in data.devs.iter().flatten() {
            let n = regions.len() as u32;
            let r = *regions.entry(dev.region).or_insert(n);
            let n = zones.len() as u32;
            let z = *zones.entry((dev.region, dev.zone)).or_insert(n);
            let n = ips.len() as u32;
            let i = *ips.entry((dev.region, dev.zone, dev.ip.clone())).or_insert(n);
            domains[dev.id as usize] = Some((r, z, i));
            // Only devices holding partitions count toward the totals, so the
            // early exits of the handoff walk match Swift's.
            if assigned[dev.id as usize] {
                num_assigned_devs += 1;
                ar.insert(r, ());
                az.insert(z, ());
                ai.insert(i, ());
            }
        }
        RingTable { num_regions: ar.len(), num_zones: az.len(), num_ips: ai.len(), num_assigned_devs, domains, data }
    }

    pub fn data(&self) -> &RingData {
        &self.data
    }

    pub fn part_power(&self) -> u32 {
        self.data.part_power()
    }

    pub fn partition_count(&self) -> usize {
        self.data.replica2part2dev.first().map_or(0, Vec::len)
    }

    pub fn replica_count(&self) -> f64 {
        self.data.replica_count()
    }

    /// Devices by id, with `None` for removed ones.
    pub fn devs(&self) -> &[Option<Device>] {
        &self.data.devs
    }

    /// The partition of a name's MD5 digest.
    pub fn part_for_digest(&self, digest: &[u8; 16]) -> u32 {
        let top = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        // part_shift is 32 at part power 0: one partition.
        top.checked_shr(self.data.part_shift).unwrap_or(0)
    }

    fn dev(&self, id: u32) -> &Device {
        self.data.devs[id as usize].as_ref().expect("ring tables only name existing devices (checked on load)")
    }

    /// Primary devices of `part`, deduplicated, in row order (Swift's
    /// `get_part_nodes`; a device's position is its `index`).
    pub fn part_nodes(&self, part: u32) -> Vec<&Device> {
        let mut out: Vec<&Device> = Vec::with_capacity(self.data.replica2part2dev.len());
        for row in &self.data.replica2part2dev {
            if let Some(&id) = row.get(part as usize) {
                if !out.iter().any(|d| d.id == id) {
                    out.push(self.dev(id));
                }
            }
        }
        out
    }

    /// Handoff devices of `part` in exactly Swift's order (`get_more_nodes`):
    /// first devices in new regions, then new zones, then new hosts, then any
    /// unused device, walking partitions from a start derived from `part`.
    /// Lazy: callers take as many as they need.
    pub fn handoffs(&self, part: u32) -> Handoffs<'_> {
        let primaries = self.part_nodes(part);
        let mut h = Handoffs {
            table: self,
            used: vec![false; self.data.devs.len()],
            used_count: 0,
            // Domain ids are dense over all devices, so this many always suffice.
            regions: vec![false; self.domains.len()],
            zones: vec![false; self.domains.len()],
            ips: vec![false; self.domains.len()],
            region_count: 0,
            zone_count: 0,
            ip_count: 0,
            pass: 0,
            candidate: 0,
            row: 0,
            start: 0,
            inc: 1,
            parts: self.partition_count(),
        };
        for d in primaries {
            h.mark(d.id, 0);
        }
        let digest = Md5::digest(part.to_string().as_bytes());
        h.start =
            (u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]).checked_shr(self.data.part_shift).unwrap_or(0)) as usize;
        h.inc = (h.parts / 65536).max(1);
        h.pass_done_check();
        h
    }
}

/// Iterator over a partition's handoff devices; see [`RingTable::handoffs`].
pub struct Handoffs<'a> {
    table: &'a RingTable,
    used: Vec<bool>,
    used_count: usize,
    regions: Vec<bool>,
    zones: Vec<bool>,
    ips: Vec<bool>,
    region_count: usize,
    zone_count: usize,
    ip_count: usize,
    /// 0: new regions, 1: new zones, 2: new hosts, 3: any device, 4: done.
    pass: u8,
    /// Position in the candidate partition order of the current pass.
    candidate: usize,
    row: usize,
    start: usize,
    inc: usize,
    parts: usize,
}

impl Handoffs<'_> {
    /// Marks a device used and its failure domains seen, from `level` down
    /// (0: region and below, 1: zone and below, 2: ip, 3: device only).
    fn mark(&mut self, id: u32, level: u8) {
        let (r, z, i) = self.table.domains[id as usize].expect("ring devices have domains");
        if !self.used[id as usize] {
            self.used[id as usize] = true;
            self.used_count += 1;
        }
        if level == 0 && !self.regions[r as usize] {
            self.regions[r as usize] = true;
            self.region_count += 1;
        }
        if level <= 1 && !self.zones[z as usize] {
            self.zones[z as usize] = true;
            self.zone_count += 1;
        }
        if level <= 2 && !self.ips[i as usize] {
            self.ips[i as usize] = true;
            self.ip_count += 1;
        }
    }

    /// Skips passes whose failure domains are all used already.
    fn pass_done_check(&mut self) {
        loop {
            let done = match self.pass {
                0 => self.region_count == self.table.num_regions,
                1 => self.zone_count == self.table.num_zones,
                2 => self.ip_count == self.table.num_ips,
                3 => self.used_count == self.table.num_assigned_devs,
                _ => return,
            };
            if !done {
                return;
            }
            self.next_pass();
        }
    }

    fn next_pass(&mut self) {
        self.pass += 1;
        self.candidate = 0;
        self.row = 0;
    }

    /// The `n`th partition of the walk: `start, start+inc, ... < parts`,
    /// then `inc - (parts - start) % inc, ... < start`.
    fn candidate_part(&self, n: usize) -> Option<usize> {
        let first_len = (self.parts - self.start).div_ceil(self.inc);
        if n < first_len {
            return Some(self.start + n * self.inc);
        }
        let second_start = self.inc - ((self.parts - self.start) % self.inc);
        let p = second_start + (n - first_len) * self.inc;
        (p < self.start).then_some(p)
    }
}

impl<'a> Iterator for Handoffs<'a> {
    type Item = &'a Device;

    fn next(&mut self) -> Option<&'a Device> {
        let rows = &self.table.data.replica2part2dev;
        while self.pass < 4 {
            let Some(part) = self.candidate_part(self.candidate) else {
                self.next_pass();
                self.pass_done_check();
                continue;
            };
            if self.row >= rows.len() {
                self.row = 0;
                self.candidate += 1;
                continue;
            }
            let row = &rows[self.row];
            self.row += 1;
            let Some(&id) = row.get(part) else { continue };
            if self.used[id as usize] {
                continue;
            }
            let (r, z, i) = self.table.domains[id as usize].expect("ring devices have domains");
            let fresh = match self.pass {
                0 => !self.regions[r as usize],
                1 => !self.zones[z as usize],
                2 => !self.ips[i as usize],
                _ => true,
            };
            if !fresh {
                continue;
            }
            self.mark(id, self.pass);
            // Once every domain of this pass is used, Swift's loop breaks
            // out; the next pass starts from the first candidate again.
            self.pass_done_check();
            return Some(self.table.dev(id));
        }
        None
    }
}

/// A ring file in use by a server: reloaded when its mtime changes,
/// checked at most every `reload_time`.
pub struct Ring {
    path: PathBuf,
    hash: HashPathConf,
    reload_time: Duration,
    table: RwLock<Arc<RingTable>>,
    state: Mutex<ReloadState>,
}

struct ReloadState {
    next_check: Instant,
    mtime: Option<SystemTime>,
}

impl Ring {
    /// Loads `swift_dir/<name>.ring.gz` (`name` is `account`, `container`,
    /// `object` or `object-N`).
    pub fn load_named(swift_dir: &Path, name: &str, hash: HashPathConf) -> Result<Ring, RingError> {
        Ring::load(&swift_dir.join(format!("{name}.ring.gz")), hash)
    }

    /// Loads `<swift_dir>/<name>.ring.gz` with the hash path prefix and
    /// suffix of `<swift_dir>/swift.conf`, as a daemon does at start-up;
    /// the error says which file could not be used.
    pub fn load_with_swift_conf(swift_dir: &Path, name: &str) -> Result<Ring, String> {
        let swift = common::swift_conf::SwiftConf::load_dir(swift_dir).map_err(|e| format!("loading swift.conf: {e}"))?;
        Ring::load_named(swift_dir, name, swift.hash).map_err(|e| format!("loading the {name} ring from {}: {e}", swift_dir.display()))
    }

    /// Loads a ring file.
    pub fn load(path: &Path, hash: HashPathConf) -> Result<Ring, RingError> {
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let data = RingData::load(path)?;
        Ok(Ring {
            path: path.to_path_buf(),
            hash,
            reload_time: DEFAULT_RELOAD_TIME,
            table: RwLock::new(Arc::new(RingTable::new(data))),
            state: Mutex::new(ReloadState { next_check: Instant::now() + DEFAULT_RELOAD_TIME, mtime }),
        })
    }

    /// Changes how often the file's mtime is checked.
    pub fn with_reload_time(mut self, reload_time: Duration) -> Ring {
        self.reload_time = reload_time;
        self.state.get_mut().expect("fresh mutex").next_check = Instant::now() + reload_time;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current table, reloading first if the reload time has passed and
    /// the file's mtime changed. A new file that fails to load is ignored
    /// (the old table stays in use), as Swift does at runtime.
    pub fn table(&self) -> Arc<RingTable> {
        self.maybe_reload();
        self.table.read().expect("ring lock poisoned").clone()
    }

    fn maybe_reload(&self) {
        let mut state = self.state.lock().expect("ring lock poisoned");
        let now = Instant::now();
        if now < state.next_check {
            return;
        }
        state.next_check = now + self.reload_time;
        let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if mtime == state.mtime {
            return;
        }
        if let Ok(data) = RingData::load(&self.path) {
            *self.table.write().expect("ring lock poisoned") = Arc::new(RingTable::new(data));
            state.mtime = mtime;
        }
    }

    /// The partition of an account, container or object.
    pub fn get_part(&self, account: &str, container: Option<&str>, object: Option<&str>) -> Result<u32, common::hash::HashPathError> {
        let digest = self.hash.digest(account, container, object)?;
        Ok(self.table().part_for_digest(&digest))
    }

    /// The partition and its primary devices (Swift's `get_nodes`).
    pub fn get_nodes(
        &self,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
    ) -> Result<(u32, Vec<Device>), common::hash::HashPathError> {
        let digest = self.hash.digest(account, container, object)?;
        let table = self.table();
        let part = table.part_for_digest(&digest);
        Ok((part, table.part_nodes(part).into_iter().cloned().collect()))
    }

    /// The handoffs of a partition, all of them, in Swift's order. Callers
    /// that want only the first few should use `table().handoffs(part)`.
    pub fn get_more_nodes(&self, part: u32) -> Vec<Device> {
        self.table().handoffs(part).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rings")
    }

    /// Every probe of every fixture, from the v1 and the v2 file, must land
    /// where Swift's own `Ring` put it.
    #[test]
    fn placement_agrees_with_swift_on_every_fixture_probe() {
        let conf = common::swift_conf::SwiftConf::load(&fixtures().join("swift.conf")).unwrap();
        let mut checked = 0;
        for name in ["small", "zones", "regions"] {
            let expected: Value =
                serde_json::from_slice(&std::fs::read(fixtures().join(format!("{name}.expected.json"))).unwrap()).unwrap();
            for file in [format!("{name}.ring.gz"), format!("{name}.v2.ring.gz")] {
                let ring = Ring::load(&fixtures().join(&file), conf.hash.clone()).unwrap();
                let table = ring.table();
                assert_eq!(table.part_power() as u64, expected["part_power"].as_u64().unwrap());
                for probe in expected["probes"].as_array().unwrap() {
                    let path = probe["path"].as_str().unwrap();
                    let mut parts = path[1..].splitn(3, '/');
                    let (a, c, o) = (parts.next().unwrap(), parts.next(), parts.next());
                    assert_eq!(conf.hash.hash_path(a, c, o).unwrap(), probe["hash"].as_str().unwrap(), "{file} {path}");
                    let (part, primaries) = ring.get_nodes(a, c, o).unwrap();
                    assert_eq!(part as u64, probe["partition"].as_u64().unwrap(), "{file} {path}");
                    let ids: Vec<u64> = primaries.iter().map(|d| d.id as u64).collect();
                    let want: Vec<u64> = probe["primaries"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
                    assert_eq!(ids, want, "primaries of {file} {path}");
                    let want: Vec<u64> = probe["handoffs"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
                    let got: Vec<u64> = table.handoffs(part).take(want.len().max(6)).map(|d| d.id as u64).collect();
                    assert_eq!(&got[..want.len()], &want[..], "handoffs of {file} {path}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 6 * 182);
    }

    #[test]
    fn handoffs_cover_every_other_device_once() {
        let conf = common::swift_conf::SwiftConf::load(&fixtures().join("swift.conf")).unwrap();
        let ring = Ring::load(&fixtures().join("zones.ring.gz"), conf.hash).unwrap();
        let table = ring.table();
        for part in 0..table.partition_count() as u32 {
            let mut all: Vec<u32> = table.part_nodes(part).iter().map(|d| d.id).collect();
            all.extend(table.handoffs(part).map(|d| d.id));
            let n = all.len();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), n);
            assert_eq!(n, 15);
        }
    }

    #[test]
    fn ring_reloads_when_the_file_changes() {
        let conf = common::swift_conf::SwiftConf::load(&fixtures().join("swift.conf")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("object.ring.gz");
        std::fs::copy(fixtures().join("small.ring.gz"), &path).unwrap();
        let ring = Ring::load(&path, conf.hash).unwrap().with_reload_time(Duration::ZERO);
        assert_eq!(ring.table().part_power(), 4);
        std::fs::copy(fixtures().join("zones.ring.gz"), &path).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(SystemTime::now() + Duration::from_secs(5)).unwrap();
        assert_eq!(ring.table().part_power(), 10);
    }
}
