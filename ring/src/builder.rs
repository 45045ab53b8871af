//! The ring builder: devices, weights and the rebalance that assigns
//! partition replicas to devices (Swift's `RingBuilder`, reference §1.6-1.7).
//!
//! The rebalance follows Swift's plan: every failure-domain tier (region,
//! zone, host, device) gets a target number of replicas per partition from
//! the device weights, moved toward "as dispersed as possible" by the
//! overload factor; partitions are then gathered from removed devices,
//! from tiers holding more replicas than the plan allows, and from
//! overweight devices, and each gathered replica is placed by walking down
//! the tier tree to the roomiest tier that still has room in the plan.
//!
//! # Builder file format
//!
//! Swift keeps builders as Python pickles; ours are a gzip-compressed JSON
//! object (plain JSON is accepted on read) with these keys:
//! `format` (`"swift-rs-ring-builder"`), `format_version` (1), `id` (hex),
//! `part_power`, `next_part_power` (int or null), `replicas` (float),
//! `min_part_hours`, `overload` (float), `version`, `devs_changed`,
//! `devs` (Swift's device dicts, `null` for holes), `remove_devs` (ids
//! marked for removal at the next rebalance), `replica2part2dev` (null before
//! the first rebalance, else a list of rows of device ids, `-1` for
//! unassigned), `last_part_moves` (hours since each partition last moved,
//! capped at 255), `last_part_moves_epoch` (unix seconds),
//! `last_part_gather_start`, `dispersion` (float).

use crate::device::Device;
use crate::ring_data::{RingData, NONE_DEV};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;

/// What `get_balance` reports for a zero-weight device that still holds
/// partitions.
pub const MAX_BALANCE: f64 = 999.99;
/// Gather-and-place rounds per rebalance; each partition still moves at
/// most once per rebalance.
const MAX_BALANCE_GATHER_COUNT: usize = 8;
const FORMAT_NAME: &str = "swift-rs-ring-builder";

/// Errors of the builder; the CLI turns them into Swift's messages and exit
/// code 2.
#[derive(Debug, thiserror::Error)]
pub enum BuilderError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Validation(String),
    #[error("There are no devices in this ring, or all devices have been deleted")]
    EmptyRing,
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

/// A ring builder.
#[derive(Debug, Clone)]
pub struct RingBuilder {
    pub part_power: u32,
    pub next_part_power: Option<u32>,
    pub replicas: f64,
    pub min_part_hours: u32,
    /// Devices by id; `None` for ids that were removed.
    pub devs: Vec<Option<Device>>,
    pub devs_changed: bool,
    /// Build version: bumped by every change and every rebalance.
    pub version: u64,
    /// How far (a fraction, 0.1 = 10%) a device may exceed its weighted
    /// share to improve dispersion.
    pub overload: f64,
    /// `None` until the first rebalance; `NONE_DEV` marks an unassigned slot.
    pub replica2part2dev: Option<Vec<Vec<u32>>>,
    pub last_part_moves: Vec<u8>,
    pub last_part_moves_epoch: u64,
    pub last_part_gather_start: usize,
    /// Ids of devices marked for removal at the next rebalance.
    pub remove_devs: Vec<u32>,
    pub id: Option<String>,
    /// Percentage of part-replicas placed above their tier's maximum, as of
    /// the last rebalance.
    pub dispersion: f64,
}

/// What a rebalance did.
#[derive(Debug, Clone, PartialEq)]
pub struct RebalanceOutcome {
    /// Part-replicas whose device changed.
    pub changed_parts: usize,
    pub balance: f64,
    pub removed_devs: usize,
}

impl RingBuilder {
    /// Swift's `RingBuilder(part_power, replicas, min_part_hours)` with its
    /// checks. We take part powers 1..=32 (Swift's CLI refuses 0 as well).
    pub fn new(part_power: u32, replicas: f64, min_part_hours: u32) -> Result<RingBuilder, BuilderError> {
        if part_power > 32 {
            return Err(BuilderError::Invalid(format!("part_power must be at most 32 (was {part_power})")));
        }
        if part_power < 1 {
            return Err(BuilderError::Invalid(format!("part_power must be at least 1 (was {part_power})")));
        }
        if replicas.is_nan() || replicas < 1.0 || !replicas.is_finite() {
            return Err(BuilderError::Invalid(format!("replicas must be at least 1 (was {replicas:.6})")));
        }
        Ok(RingBuilder {
            part_power,
            next_part_power: None,
            replicas,
            min_part_hours,
            devs: Vec::new(),
            devs_changed: false,
            version: 0,
            overload: 0.0,
            replica2part2dev: None,
            last_part_moves: vec![0; 1usize << part_power],
            last_part_moves_epoch: 0,
            last_part_gather_start: 0,
            remove_devs: Vec::new(),
            id: None,
            dispersion: 0.0,
        })
    }

    pub fn parts(&self) -> usize {
        1usize << self.part_power
    }

    pub fn part_shift(&self) -> u32 {
        32 - self.part_power
    }

    pub fn ever_rebalanced(&self) -> bool {
        self.replica2part2dev.is_some()
    }

    /// Devices that exist (not holes), in id order.
    pub fn iter_devs(&self) -> impl Iterator<Item = &Device> {
        self.devs.iter().flatten()
    }

    /// Whether device `id` is marked for removal.
    pub fn is_marked_for_removal(&self, id: u32) -> bool {
        self.remove_devs.contains(&id)
    }

    /// `parts * replicas / sum(weights)`.
    pub fn weight_of_one_part(&self) -> Result<f64, BuilderError> {
        let total: f64 = self.iter_devs().map(|d| d.weight).sum();
        if total <= 0.0 {
            return Err(BuilderError::EmptyRing);
        }
        Ok(self.parts() as f64 * self.replicas / total)
    }

    /// Seconds until `min_part_hours` have passed since the last rebalance.
    pub fn min_part_seconds_left(&self) -> u64 {
        let elapsed = now_secs().saturating_sub(self.last_part_moves_epoch);
        (self.min_part_hours as u64 * 3600).saturating_sub(elapsed)
    }

    /// Adds a device; `dev.id` is ignored when `id` is `None` and the first
    /// free id is used. Returns the id.
    pub fn add_dev(&mut self, mut dev: Device, id: Option<u32>) -> Result<u32, BuilderError> {
        let id = id.unwrap_or_else(|| self.devs.iter().position(Option::is_none).unwrap_or(self.devs.len()) as u32);
        if self.devs.get(id as usize).is_some_and(Option::is_some) {
            return Err(BuilderError::Invalid(format!("Duplicate device id: {id}")));
        }
        if id >= 0xffff_fffe {
            return Err(BuilderError::Invalid(format!("Device id {id} is too large")));
        }
        if dev.weight.is_nan() || dev.weight < 0.0 || !dev.weight.is_finite() {
            return Err(BuilderError::Invalid(format!("Invalid weight {}", dev.weight)));
        }
        while self.devs.len() <= id as usize {
            self.devs.push(None);
        }
        dev.id = id;
        self.devs[id as usize] = Some(dev);
        self.devs_changed = true;
        self.version += 1;
        Ok(id)
    }

    fn dev_mut(&mut self, id: u32, what: &str) -> Result<&mut Device, BuilderError> {
        if self.remove_devs.contains(&id) {
            return Err(BuilderError::Invalid(format!("Can not set {what} of dev_id {id} because it is marked for removal")));
        }
        self.devs.get_mut(id as usize).and_then(Option::as_mut).ok_or_else(|| BuilderError::Invalid(format!("No device with id {id}")))
    }

    pub fn set_dev_weight(&mut self, id: u32, weight: f64) -> Result<(), BuilderError> {
        if weight.is_nan() || weight < 0.0 || !weight.is_finite() {
            return Err(BuilderError::Invalid(format!("Invalid weight {weight}")));
        }
        self.dev_mut(id, "weight")?.weight = weight;
        self.devs_changed = true;
        self.version += 1;
        Ok(())
    }

    pub fn set_dev_region(&mut self, id: u32, region: i64) -> Result<(), BuilderError> {
        self.dev_mut(id, "region")?.region = region;
        self.devs_changed = true;
        self.version += 1;
        Ok(())
    }

    pub fn set_dev_zone(&mut self, id: u32, zone: i64) -> Result<(), BuilderError> {
        self.dev_mut(id, "zone")?.zone = zone;
        self.devs_changed = true;
        self.version += 1;
        Ok(())
    }

    /// Marks a device for removal: its weight drops to 0 and the next
    /// rebalance moves its partitions away (ignoring `min_part_hours`) and
    /// deletes it.
    pub fn remove_dev(&mut self, id: u32) -> Result<(), BuilderError> {
        let dev = self
            .devs
            .get_mut(id as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| BuilderError::Invalid(format!("No device with id {id}")))?;
        dev.weight = 0.0;
        if !self.remove_devs.contains(&id) {
            self.remove_devs.push(id);
        }
        self.devs_changed = true;
        self.version += 1;
        Ok(())
    }

    /// Changes the replica count; takes effect at the next rebalance.
    pub fn set_replicas(&mut self, replicas: f64) -> Result<(), BuilderError> {
        if replicas.is_nan() || replicas < 1.0 || !replicas.is_finite() {
            return Err(BuilderError::Invalid(format!("Replica count must be at least 1 (was {replicas})")));
        }
        let parts = self.parts() as f64;
        if (parts * self.replicas) as u64 != (parts * replicas) as u64 {
            self.devs_changed = true;
        }
        self.replicas = replicas;
        Ok(())
    }

    /// The smallest overload that lets the ring be fully dispersed (Swift's
    /// `get_required_overload`), as a fraction.
    pub fn required_overload(&self) -> Result<f64, BuilderError> {
        let mut scratch = self.clone();
        Ok(Rebalance::new(&mut scratch)?.required_overload)
    }

    /// Marks every partition as moved long ago, so the next rebalance may
    /// move anything.
    pub fn pretend_min_part_hours_passed(&mut self) {
        self.last_part_moves_epoch = 0;
        self.last_part_moves.iter_mut().for_each(|h| *h = 0xff);
    }

    /// How many part-replicas each device holds, by id.
    pub fn parts_per_dev(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.devs.len()];
        if let Some(table) = &self.replica2part2dev {
            for &d in table.iter().flatten() {
                if let Some(c) = counts.get_mut(d as usize) {
                    *c += 1;
                }
            }
        }
        counts
    }

    /// Per-device balance: percent above (+) or below (-) what its weight
    /// asks for; `MAX_BALANCE` for a zero-weight device holding parts.
    pub fn balance_per_dev(&self) -> Vec<Option<f64>> {
        let parts = self.parts_per_dev();
        let wop = self.weight_of_one_part().unwrap_or(0.0);
        self.devs
            .iter()
            .map(|d| {
                d.as_ref().map(|d| {
                    let p = parts[d.id as usize] as f64;
                    if d.weight == 0.0 {
                        if p > 0.0 {
                            MAX_BALANCE
                        } else {
                            0.0
                        }
                    } else {
                        100.0 * p / (d.weight * wop) - 100.0
                    }
                })
            })
            .collect()
    }

    /// The worst absolute per-device balance.
    pub fn get_balance(&self) -> f64 {
        let mut worst: f64 = 0.0;
        for b in self.balance_per_dev().into_iter().flatten() {
            if b == MAX_BALANCE {
                return MAX_BALANCE;
            }
            worst = worst.max(b.abs());
        }
        worst
    }

    /// The ring data to write to a `.ring.gz`.
    pub fn get_ring(&self) -> RingData {
        let rows = self.replica2part2dev.clone().unwrap_or_default();
        let wide = rows.iter().flatten().any(|&d| d > 0xfffe) || self.devs.len() > 0xfffe;
        RingData {
            devs: self.devs.clone(),
            replica2part2dev: rows,
            part_shift: self.part_shift(),
            next_part_power: self.next_part_power,
            version: Some(self.version),
            dev_id_bytes: if wide { 4 } else { 2 },
            format_version: None,
        }
    }

    /// The devices of a partition, one entry per replica, in row order.
    pub fn part_devices(&self, part: usize) -> Vec<u32> {
        self.replica2part2dev.iter().flatten().filter_map(|row| row.get(part).copied()).filter(|&d| d != NONE_DEV).collect()
    }

    /// Rebalances; see the module docs. `seed` makes it reproducible.
    ///
    /// Each partition moves at most once per rebalance, so after removals
    /// the order of the moves decides how close to balance one pass can
    /// get. When devices are being removed we run the pass with each
    /// gathering strategy (see `Gathering`) from the same seed and keep the
    /// best ring: the lowest balance (to within 1%), then the lowest
    /// dispersion, then the fewest moves.
    pub fn rebalance(&mut self, seed: Option<u64>) -> Result<RebalanceOutcome, BuilderError> {
        let weighted = self.iter_devs().filter(|d| d.weight > 0.0).count();
        if (weighted as f64) < self.replicas {
            return Err(BuilderError::Validation(format!(
                "Replica count of {} requires more than {} devices",
                py_float(self.replicas),
                weighted
            )));
        }
        let seed = seed.unwrap_or_else(|| StdRng::from_entropy().gen());
        let old = self.replica2part2dev.clone().unwrap_or_default();
        self.update_last_part_moves();
        // Forced gathering pays off when devices leave (their replicas
        // must go somewhere, and chains of moves may be needed); a ring
        // that only gains or reweighs devices keeps the cautious gathering,
        // which moves about a fair share and no more.
        let strategies: &[Gathering] = if self.remove_devs.is_empty() { &[Gathering::Placeable] } else { &Gathering::ALL };
        let mut best: Option<(RingBuilder, RebalanceOutcome)> = None;
        for &gathering in strategies {
            let mut candidate = self.clone();
            let outcome = candidate.rebalance_pass(gathering, seed, &old)?;
            // Balances within a percent of each other count as equal (as
            // Swift's rebalance stops within 1%): then fewer moves win.
            let better = best.as_ref().is_none_or(|(b, o)| {
                outcome.balance + 1.0 < o.balance
                    || (outcome.balance - o.balance).abs() <= 1.0
                        && (candidate.dispersion, outcome.changed_parts).partial_cmp(&(b.dispersion, o.changed_parts))
                            == Some(std::cmp::Ordering::Less)
            });
            if better {
                best = Some((candidate, outcome));
            }
            if best.as_ref().is_some_and(|(_, o)| o.balance == 0.0) {
                break;
            }
        }
        let (builder, outcome) = best.expect("at least one gathering strategy");
        *self = builder;
        Ok(outcome)
    }

    /// One rebalance pass with one gathering strategy.
    fn rebalance_pass(&mut self, gathering: Gathering, seed: u64, old: &[Vec<u32>]) -> Result<RebalanceOutcome, BuilderError> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut run = Rebalance::new(self)?;
        run.adjust_table_size();
        run.gather_from_removed_devices();
        run.gather_for_dispersion();
        let removed_devs = run.remove_failed_devices();
        for _ in 0..MAX_BALANCE_GATHER_COUNT {
            run.gather_for_balance(&mut rng);
            let force = match gathering {
                Gathering::Placeable => false,
                Gathering::ForcedWhenStuck => run.assign.is_empty(),
                Gathering::Forced => true,
            };
            if force {
                run.gather_for_balance_forced();
            }
            if run.assign.is_empty() {
                break;
            }
            let mut list: Vec<(usize, Vec<usize>)> = std::mem::take(&mut run.assign).into_iter().collect();
            list.sort_unstable_by_key(|(p, _)| *p);
            list.shuffle(&mut rng);
            run.reassign(list, &mut rng)?;
            if run.parts_wanted.iter().all(|w| w.is_none_or(|w| w >= 0)) {
                break;
            }
        }
        drop(run);
        self.devs_changed = false;
        let changed_parts = self.count_changed(old);
        self.dispersion = self.dispersion_report().dispersion;
        self.version += 1;
        Ok(RebalanceOutcome { changed_parts, balance: self.get_balance(), removed_devs })
    }

    fn update_last_part_moves(&mut self) {
        let now = now_secs();
        let elapsed_hours = now.saturating_sub(self.last_part_moves_epoch) / 3600;
        if elapsed_hours == 0 {
            return;
        }
        for h in self.last_part_moves.iter_mut() {
            *h = (*h as u64 + elapsed_hours).min(0xff) as u8;
        }
        self.last_part_moves_epoch = now;
    }

    fn count_changed(&self, old: &[Vec<u32>]) -> usize {
        let Some(new) = &self.replica2part2dev else { return 0 };
        let mut changed = 0;
        for (r, row) in new.iter().enumerate() {
            for (p, &d) in row.iter().enumerate() {
                if old.get(r).and_then(|o| o.get(p)) != Some(&d) {
                    changed += 1;
                }
            }
        }
        changed
    }

    /// The tier tree of all existing devices.
    fn tiers(&self) -> Tiers {
        Tiers::new(&self.devs)
    }

    /// Per-tier counts of partitions by how many replicas they have there,
    /// and the dispersion figure (Swift's `_build_dispersion_graph`).
    pub fn dispersion_report(&self) -> DispersionReport {
        let tiers = self.tiers();
        let max = tiers.max_replicas(self.replicas, true);
        let int_replicas = self.replicas.ceil() as usize;
        let parts = self.parts();
        let mut graph: HashMap<usize, Vec<u64>> = HashMap::new();
        let mut at_risk = 0u64;
        let mut counts = vec![0u32; tiers.nodes.len()];
        let mut touched = Vec::new();
        if let Some(table) = &self.replica2part2dev {
            for part in 0..parts {
                for row in table {
                    if let Some(&d) = row.get(part) {
                        if d == NONE_DEV {
                            continue;
                        }
                        for &t in &tiers.dev_path[d as usize] {
                            if counts[t] == 0 {
                                touched.push(t);
                            }
                            counts[t] += 1;
                        }
                    }
                }
                let mut depth_risk = [0u64; 5];
                for &t in &touched {
                    let c = counts[t] as usize;
                    let g = graph.entry(t).or_insert_with(|| {
                        let mut v = vec![0u64; int_replicas.max(c) + 1];
                        v[0] = parts as u64;
                        v
                    });
                    if g.len() <= c {
                        g.resize(c + 1, 0);
                    }
                    g[0] -= 1;
                    g[c] += 1;
                    if c as f64 > max[t] {
                        depth_risk[tiers.nodes[t].level as usize] += (c as f64 - max[t]) as u64;
                    }
                }
                at_risk += depth_risk.iter().copied().max().unwrap_or(0);
                for t in touched.drain(..) {
                    counts[t] = 0;
                }
            }
        }
        let mut rows: Vec<DispersionRow> = graph
            .into_iter()
            .map(|(t, replicas)| DispersionRow { tier: tiers.describe(t), level: tiers.nodes[t].level, max_replicas: max[t], replicas })
            .collect();
        rows.sort_by_key(tiers_sort_key);
        DispersionReport { dispersion: 100.0 * at_risk as f64 / (parts as f64 * self.replicas), rows }
    }

    /// Consistency checks of Swift's `validate`: every slot assigned to a
    /// live device, no partition twice on one device, sane row lengths.
    pub fn validate(&self) -> Result<(), BuilderError> {
        let Some(table) = &self.replica2part2dev else {
            return Err(BuilderError::Validation("_replica2part2dev empty; did you forget to rebalance?".into()));
        };
        let parts = self.parts();
        let int_replicas = self.replicas.ceil() as usize;
        for (r, row) in table.iter().enumerate() {
            if row.len() < parts && r + 1 < int_replicas {
                return Err(BuilderError::Validation(format!(
                    "The partition assignments of replica {r} were shorter than expected ({} < {parts}) - this should only happen for the last replica",
                    row.len()
                )));
            }
        }
        for part in 0..parts {
            let mut seen: Vec<u32> = Vec::new();
            for (r, row) in table.iter().enumerate() {
                let Some(&d) = row.get(part) else { break };
                if d == NONE_DEV || self.devs.get(d as usize).and_then(Option::as_ref).is_none() {
                    return Err(BuilderError::Validation(format!("Partition {part}, replica {r} was not allocated to a device.")));
                }
                seen.push(d);
            }
            let mut dedup = seen.clone();
            dedup.sort_unstable();
            dedup.dedup();
            if dedup.len() != seen.len() && self.iter_devs().filter(|d| d.weight > 0.0).count() >= seen.len() {
                return Err(BuilderError::Validation(format!("The partition {part} has been assigned to duplicate devices {seen:?}")));
            }
        }
        Ok(())
    }

    /// Saves the builder (format in the module docs) atomically.
    pub fn save(&mut self, path: &Path) -> Result<(), BuilderError> {
        if self.id.is_none() {
            let mut rng = StdRng::from_entropy();
            self.id = Some((0..16).map(|_| format!("{:02x}", rng.gen::<u8>())).collect());
        }
        let table = self.replica2part2dev.as_ref().map(|rows| {
            Value::Array(
                rows.iter()
                    .map(|row| Value::Array(row.iter().map(|&d| if d == NONE_DEV { Value::from(-1) } else { Value::from(d) }).collect()))
                    .collect(),
            )
        });
        let doc = serde_json::json!({
            "format": FORMAT_NAME,
            "format_version": 1,
            "id": self.id,
            "part_power": self.part_power,
            "next_part_power": self.next_part_power,
            "replicas": self.replicas,
            "min_part_hours": self.min_part_hours,
            "overload": self.overload,
            "version": self.version,
            "devs_changed": self.devs_changed,
            "devs": self.devs.iter().map(|d| d.as_ref().map_or(Value::Null, Device::to_json)).collect::<Vec<_>>(),
            "remove_devs": self.remove_devs,
            "replica2part2dev": table,
            "last_part_moves": self.last_part_moves,
            "last_part_moves_epoch": self.last_part_moves_epoch,
            "last_part_gather_start": self.last_part_gather_start,
            "dispersion": self.dispersion,
        });
        let text = serde_json::to_vec(&doc).map_err(|e| BuilderError::File { path: path.display().to_string(), reason: e.to_string() })?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        gz.write_all(&text).and_then(|_| gz.flush()).map_err(|e| file_err(path, e))?;
        let bytes = gz.finish().map_err(|e| file_err(path, e))?;
        crate::io::write_atomic(path, &bytes).map_err(|e| file_err(path, e))
    }

    /// Loads a builder file written by `save`.
    pub fn load(path: &Path) -> Result<RingBuilder, BuilderError> {
        let raw = std::fs::read(path).map_err(|e| file_err(path, e))?;
        Self::from_bytes(&raw).map_err(|reason| BuilderError::File { path: path.display().to_string(), reason })
    }

    fn from_bytes(raw: &[u8]) -> Result<RingBuilder, String> {
        let text = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(raw).read_to_end(&mut out).map_err(|e| format!("corrupt builder file: {e}"))?;
            out
        } else {
            raw.to_vec()
        };
        if text.first() == Some(&0x80) {
            return Err(
                "this is a Python pickle builder from OpenStack Swift; rebuild it with `swift-ring-builder <ring.gz> write_builder`".into(),
            );
        }
        let doc: Value = serde_json::from_slice(&text).map_err(|e| format!("not a ring builder file: {e}"))?;
        if doc.get("format").and_then(Value::as_str) != Some(FORMAT_NAME) {
            return Err("not a ring builder file (unknown format)".into());
        }
        if doc.get("format_version").and_then(Value::as_u64) != Some(1) {
            return Err(format!("unsupported builder format version {}", doc["format_version"]));
        }
        let uint = |k: &str| doc.get(k).and_then(Value::as_u64).ok_or_else(|| format!("missing or bad {k}"));
        let float = |k: &str| doc.get(k).and_then(Value::as_f64).ok_or_else(|| format!("missing or bad {k}"));
        let part_power = uint("part_power")? as u32;
        let mut b = RingBuilder::new(part_power, float("replicas")?, uint("min_part_hours")? as u32).map_err(|e| e.to_string())?;
        b.next_part_power = doc.get("next_part_power").and_then(Value::as_u64).map(|v| v as u32);
        b.overload = float("overload")?;
        b.version = uint("version")?;
        b.devs_changed = doc.get("devs_changed").and_then(Value::as_bool).unwrap_or(false);
        b.id = doc.get("id").and_then(Value::as_str).map(str::to_string);
        b.dispersion = doc.get("dispersion").and_then(Value::as_f64).unwrap_or(0.0);
        b.last_part_moves_epoch = uint("last_part_moves_epoch")?;
        b.last_part_gather_start = uint("last_part_gather_start")? as usize;
        b.devs = doc
            .get("devs")
            .and_then(Value::as_array)
            .ok_or("missing devs")?
            .iter()
            .enumerate()
            .map(|(i, v)| if v.is_null() { Ok(None) } else { Device::from_json(i, v).map(Some).map_err(|e| e.to_string()) })
            .collect::<Result<_, _>>()?;
        for (i, d) in b.devs.iter().enumerate() {
            if d.as_ref().is_some_and(|d| d.id as usize != i) {
                return Err(format!("device in slot {i} has another id"));
            }
        }
        b.remove_devs = doc
            .get("remove_devs")
            .and_then(Value::as_array)
            .ok_or("missing remove_devs")?
            .iter()
            .map(|v| v.as_u64().map(|v| v as u32).ok_or("bad remove_devs"))
            .collect::<Result<_, _>>()?;
        let parts = b.parts();
        let moves = doc.get("last_part_moves").and_then(Value::as_array).ok_or("missing last_part_moves")?;
        if moves.len() != parts {
            return Err(format!("last_part_moves has {} entries, expected {parts}", moves.len()));
        }
        b.last_part_moves =
            moves.iter().map(|v| v.as_u64().map(|v| v.min(255) as u8).ok_or("bad last_part_moves")).collect::<Result<_, _>>()?;
        b.replica2part2dev = match doc.get("replica2part2dev") {
            None | Some(Value::Null) => None,
            Some(Value::Array(rows)) => {
                let mut table = Vec::with_capacity(rows.len());
                for row in rows {
                    let row = row.as_array().ok_or("bad replica2part2dev")?;
                    if row.len() > parts {
                        return Err("replica2part2dev row is longer than the partition count".into());
                    }
                    let row: Vec<u32> = row
                        .iter()
                        .map(|v| match v.as_i64() {
                            Some(-1) => Ok(NONE_DEV),
                            Some(d) if d >= 0 && (d as usize) < b.devs.len() && b.devs[d as usize].is_some() => Ok(d as u32),
                            _ => Err(format!("replica2part2dev names an unknown device {v}")),
                        })
                        .collect::<Result<_, _>>()?;
                    table.push(row);
                }
                Some(table)
            }
            Some(_) => return Err("bad replica2part2dev".into()),
        };
        Ok(b)
    }

    /// Builds a builder from a ring file (Swift's `write_builder`): the
    /// assignment survives; move history does not.
    pub fn from_ring(ring: &RingData, min_part_hours: u32) -> Result<RingBuilder, BuilderError> {
        let mut b = RingBuilder::new(ring.part_power(), ring.replica_count(), min_part_hours)?;
        b.devs = ring.devs.clone();
        b.replica2part2dev = Some(ring.replica2part2dev.clone());
        b.version = ring.version.unwrap_or(0);
        b.next_part_power = ring.next_part_power;
        b.dispersion = b.dispersion_report().dispersion;
        Ok(b)
    }
}

fn file_err(path: &Path, e: std::io::Error) -> BuilderError {
    BuilderError::File { path: path.display().to_string(), reason: e.to_string() }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Python's `str(float)` for messages (`3.0`, `2.5`).
pub fn py_float(v: f64) -> String {
    crate::pyjson::python_float_repr(v)
}

/// One line of the dispersion report.
#[derive(Debug, Clone)]
pub struct DispersionRow {
    /// Swift's printed tier: `r1`, `r1z2`, `r1z2-10.0.0.1`, `r1z2-10.0.0.1/sdb`.
    pub tier: String,
    /// 1 region, 2 zone, 3 host, 4 device (0 is the whole ring).
    pub level: u8,
    pub max_replicas: f64,
    /// `replicas[n]`: partitions with exactly `n` replicas in this tier.
    pub replicas: Vec<u64>,
}

/// Swift's `dispersion` figures.
#[derive(Debug, Clone)]
pub struct DispersionReport {
    pub dispersion: f64,
    pub rows: Vec<DispersionRow>,
}

fn tiers_sort_key(r: &DispersionRow) -> (u8, String) {
    (r.level, r.tier.clone())
}

/// The failure-domain tree: root, regions, zones, hosts (ip), devices.
struct Tiers {
    nodes: Vec<TierNode>,
    /// For each device id: its node at every level [root, region, zone, ip, dev].
    dev_path: Vec<[usize; 5]>,
}

struct TierNode {
    level: u8,
    key: (i64, i64, String, u32),
    children: Vec<usize>,
}

impl Tiers {
    fn new(devs: &[Option<Device>]) -> Tiers {
        let mut nodes = vec![TierNode { level: 0, key: (0, 0, String::new(), 0), children: Vec::new() }];
        let mut index: BTreeMap<(u8, i64, i64, String, u32), usize> = BTreeMap::new();
        let mut dev_path = vec![[0usize; 5]; devs.len()];
        for dev in devs.iter().flatten() {
            let keys = [
                (1u8, dev.region, 0, String::new(), 0u32),
                (2, dev.region, dev.zone, String::new(), 0),
                (3, dev.region, dev.zone, dev.ip.clone(), 0),
                (4, dev.region, dev.zone, dev.ip.clone(), dev.id),
            ];
            let mut parent = 0;
            let mut path = [0usize; 5];
            for (i, k) in keys.into_iter().enumerate() {
                let node = match index.get(&k) {
                    Some(&n) => n,
                    None => {
                        let n = nodes.len();
                        nodes.push(TierNode { level: k.0, key: (k.1, k.2, k.3.clone(), k.4), children: Vec::new() });
                        nodes[parent].children.push(n);
                        index.insert(k, n);
                        n
                    }
                };
                path[i + 1] = node;
                parent = node;
            }
            dev_path[dev.id as usize] = path;
        }
        for i in 0..nodes.len() {
            let mut children = std::mem::take(&mut nodes[i].children);
            children.sort_by(|a, b| nodes[*a].key.cmp(&nodes[*b].key));
            nodes[i].children = children;
        }
        Tiers { nodes, dev_path }
    }

    fn describe(&self, t: usize) -> String {
        let n = &self.nodes[t];
        let (r, z, ip, id) = &n.key;
        match n.level {
            0 => String::new(),
            1 => format!("r{r}"),
            2 => format!("r{r}z{z}"),
            3 => format!("r{r}z{z}-{}", crate::device::format_ip(ip)),
            _ => format!("r{r}z{z}-{}/{id}", crate::device::format_ip(ip)),
        }
    }

    /// Swift's `_build_max_replicas_by_tier`: the most replicas of one
    /// partition each tier may hold if replicas were spread as evenly as the
    /// tree allows. `ceil` rounds each share up (Swift's default bound).
    fn max_replicas(&self, replicas: f64, ceil: bool) -> Vec<f64> {
        let mut out = vec![0.0; self.nodes.len()];
        let mut stack = vec![(0usize, replicas)];
        while let Some((t, mut count)) = stack.pop() {
            if self.nodes[t].level == 4 {
                count = count.min(1.0);
            }
            out[t] = count;
            let kids = &self.nodes[t].children;
            for &c in kids {
                let share = count / kids.len() as f64;
                stack.push((c, if ceil { share.ceil() } else { share }));
            }
        }
        out
    }
}

/// How a rebalance pass gathers replicas for balance after the replicas of
/// removed devices and those breaking the replica plan.
#[derive(Debug, Clone, Copy)]
enum Gathering {
    /// Only replicas some underweight device can take without breaking the
    /// replica plan: the fewest moves.
    Placeable,
    /// As `Placeable`; once that finds nothing while devices are still
    /// overweight, Swift's forced gathering, whose replicas may land on
    /// devices no better than where they were and so unlock chains of moves
    /// (a replica may have to go A to B before another can go B to C).
    ForcedWhenStuck,
    /// Forced gathering in every round, as Swift does.
    Forced,
}

impl Gathering {
    const ALL: [Gathering; 3] = [Gathering::Placeable, Gathering::ForcedWhenStuck, Gathering::Forced];
}

/// The state of one rebalance.
struct Rebalance<'a> {
    b: &'a mut RingBuilder,
    tiers: Tiers,
    /// Tree restricted to weighted devices (Swift builds its tier tree from
    /// devices with weight only).
    wchildren: Vec<Vec<usize>>,
    /// Weighted devices under each tier.
    num_devices: Vec<i64>,
    /// The overload that would make the ring fully dispersed.
    required_overload: f64,
    /// Replicas of each partition each tier should hold on average.
    target: Vec<f64>,
    plan_min: Vec<i64>,
    plan_max: Vec<i64>,
    parts_wanted: Vec<Option<i64>>,
    moved: Vec<bool>,
    assign: HashMap<usize, Vec<usize>>,
    /// Scratch per-tier replica counts for one partition.
    counts: Vec<i64>,
}

impl<'a> Rebalance<'a> {
    fn new(b: &'a mut RingBuilder) -> Result<Rebalance<'a>, BuilderError> {
        let tiers = b.tiers();
        let n = tiers.nodes.len();
        let weighted: Vec<bool> = b.devs.iter().map(|d| d.as_ref().is_some_and(|d| d.weight > 0.0)).collect();
        // Weighted device counts per tier, and the weighted-only tree.
        let mut num_devices = vec![0usize; n];
        for dev in b.iter_devs().filter(|d| weighted[d.id as usize]) {
            for &t in &tiers.dev_path[dev.id as usize] {
                num_devices[t] += 1;
            }
        }
        let wchildren: Vec<Vec<usize>> =
            tiers.nodes.iter().map(|node| node.children.iter().copied().filter(|&c| num_devices[c] > 0).collect()).collect();

        let weighted_r = weighted_replicas(b, &tiers, &weighted)?;
        let wanted_r = wanted_replicas(b.replicas, &tiers, &wchildren, &num_devices, &weighted_r)?;
        // Swift's get_required_overload / _build_target_replicas_by_tier.
        let mut max_overload: f64 = 0.0;
        for dev in b.iter_devs().filter(|d| weighted[d.id as usize]) {
            let t = tiers.dev_path[dev.id as usize][4];
            let required = (wanted_r[t] - weighted_r[t]) / weighted_r[t];
            max_overload = max_overload.max(required);
        }
        let target: Vec<f64> = if max_overload <= 0.0 {
            wanted_r
        } else {
            let overload = b.overload.min(max_overload);
            (0..n).map(|t| (wanted_r[t] - weighted_r[t]) / max_overload * overload + weighted_r[t]).collect()
        };
        let plan_min: Vec<i64> = target.iter().map(|t| (t + 1e-10).floor() as i64).collect();
        let plan_max: Vec<i64> = target.iter().map(|t| (t - 1e-10).ceil() as i64).collect();

        // Swift's _set_parts_wanted: hand int(replicas * parts) slots down the
        // weighted tree by floor(target * parts), leftovers round-robin.
        let parts = b.parts();
        let mut parts_by_tier = vec![0i64; n];
        let mut stack = vec![(0usize, (b.replicas * parts as f64) as i64)];
        while let Some((t, mut p)) = stack.pop() {
            parts_by_tier[t] = p;
            let kids = &wchildren[t];
            if kids.is_empty() {
                continue;
            }
            let mut to_place: Vec<i64> = Vec::with_capacity(kids.len());
            for &c in kids {
                let give = p.min((target[c] * parts as f64).floor() as i64);
                to_place.push(give);
                p -= give;
            }
            let mut order: Vec<usize> = (0..kids.len()).collect();
            order.sort_by(|&a, &b| target[kids[a]].partial_cmp(&target[kids[b]]).unwrap_or(std::cmp::Ordering::Equal));
            let mut i = 0;
            while p > 0 {
                to_place[order[i % order.len()]] += 1;
                p -= 1;
                i += 1;
            }
            for (k, &c) in kids.iter().enumerate() {
                stack.push((c, to_place[k]));
            }
        }
        let counts_now = b.parts_per_dev();
        let total_slots = (b.replicas * parts as f64) as i64;
        let parts_wanted = b
            .devs
            .iter()
            .map(|d| {
                d.as_ref().map(|d| {
                    if d.weight > 0.0 {
                        parts_by_tier[tiers.dev_path[d.id as usize][4]] - counts_now[d.id as usize] as i64
                    } else {
                        // Drain: a strong wish to give up everything.
                        -total_slots
                    }
                })
            })
            .collect();
        Ok(Rebalance {
            moved: vec![false; parts],
            counts: vec![0; n],
            b,
            tiers,
            wchildren,
            num_devices: num_devices.iter().map(|&n| n as i64).collect(),
            required_overload: max_overload,
            target,
            plan_min,
            plan_max,
            parts_wanted,
            assign: HashMap::new(),
        })
    }

    fn can_move(&self, part: usize) -> bool {
        self.b.last_part_moves[part] as u32 >= self.b.min_part_hours && !self.moved[part]
    }

    fn set_moved(&mut self, part: usize) {
        self.b.last_part_moves[part] = 0;
        self.moved[part] = true;
    }

    fn table(&mut self) -> &mut Vec<Vec<u32>> {
        self.b.replica2part2dev.get_or_insert_with(Vec::new)
    }

    /// Takes replica `r` of `part` off its device for reassignment.
    fn gather(&mut self, part: usize, r: usize) {
        let dev = std::mem::replace(&mut self.table()[r][part], NONE_DEV);
        if dev != NONE_DEV {
            if let Some(Some(w)) = self.parts_wanted.get_mut(dev as usize) {
                *w += 1;
            }
        }
        self.assign.entry(part).or_default().push(r);
    }

    /// Fills `self.counts` with the tier counts of `part`'s replicas and
    /// returns the touched tiers (to reset afterwards).
    fn count_part(&mut self, part: usize) -> Vec<usize> {
        let mut touched = Vec::with_capacity(16);
        let table = self.b.replica2part2dev.as_ref().expect("table exists during rebalance");
        for row in table {
            if let Some(&d) = row.get(part) {
                if d == NONE_DEV {
                    continue;
                }
                for &t in &self.tiers.dev_path[d as usize] {
                    if self.counts[t] == 0 {
                        touched.push(t);
                    }
                    self.counts[t] += 1;
                }
            }
        }
        touched
    }

    fn reset_counts(&mut self, touched: Vec<usize>) {
        for t in touched {
            self.counts[t] = 0;
        }
    }

    fn replica_rows(&self, part: usize) -> Vec<(usize, u32)> {
        self.b
            .replica2part2dev
            .as_ref()
            .expect("table exists during rebalance")
            .iter()
            .enumerate()
            .filter_map(|(r, row)| row.get(part).map(|&d| (r, d)))
            .filter(|&(_, d)| d != NONE_DEV)
            .collect()
    }

    /// Grows or shrinks the table to the replica count: full rows of
    /// `parts`, a last row of `int(parts * fraction)`.
    fn adjust_table_size(&mut self) {
        let parts = self.b.parts();
        let whole = self.b.replicas.trunc() as usize;
        let frac = self.b.replicas.fract();
        let mut desired = vec![parts; whole];
        if frac > 0.0 {
            desired.push((parts as f64 * frac) as usize);
        }
        let mut new_slots = Vec::new();
        let table = self.table();
        let mut dropped = Vec::new();
        if table.len() > desired.len() {
            for row in table.drain(desired.len()..) {
                dropped.extend(row);
            }
        }
        for (r, &len) in desired.iter().enumerate() {
            if r >= table.len() {
                table.push(vec![NONE_DEV; len]);
                new_slots.extend((0..len).map(|p| (p, r)));
            } else if table[r].len() < len {
                let old = table[r].len();
                table[r].resize(len, NONE_DEV);
                new_slots.extend((old..len).map(|p| (p, r)));
            } else if table[r].len() > len {
                dropped.extend(table[r].drain(len..));
            }
        }
        for d in dropped {
            if let Some(Some(w)) = self.parts_wanted.get_mut(d as usize) {
                *w += 1;
            }
        }
        for (p, r) in new_slots {
            self.assign.entry(p).or_default().push(r);
        }
    }

    fn gather_from_removed_devices(&mut self) {
        if self.b.remove_devs.is_empty() {
            return;
        }
        let mut removed = vec![false; self.b.devs.len()];
        for &id in &self.b.remove_devs {
            if let Some(slot) = removed.get_mut(id as usize) {
                *slot = true;
            }
        }
        let rows = self.b.replica2part2dev.as_ref().map_or(0, Vec::len);
        for r in 0..rows {
            let len = self.b.replica2part2dev.as_ref().expect("table")[r].len();
            for part in 0..len {
                let d = self.b.replica2part2dev.as_ref().expect("table")[r][part];
                if d != NONE_DEV && removed[d as usize] {
                    self.gather(part, r);
                    self.set_moved(part);
                }
            }
        }
    }

    /// Gathers replicas sitting in a tier that holds more of their partition
    /// than the plan's maximum, most overweight device first.
    fn gather_for_dispersion(&mut self) {
        for part in 0..self.b.parts() {
            if !self.can_move(part) {
                continue;
            }
            let touched = self.count_part(part);
            let mut bad: Vec<(i64, usize, u32)> = self
                .replica_rows(part)
                .into_iter()
                .filter(|&(_, d)| self.tiers.dev_path[d as usize].iter().any(|&t| self.counts[t] > self.plan_max[t]))
                .map(|(r, d)| (self.parts_wanted[d as usize].unwrap_or(0), r, d))
                .collect();
            bad.sort_by_key(|&(w, _, _)| w);
            for (_, r, d) in bad {
                // Only a device holding two replicas of a part may shed a
                // second one in the same rebalance.
                let dev_tier = self.tiers.dev_path[d as usize][4];
                if !self.can_move(part) && self.counts[dev_tier] <= 1 {
                    continue;
                }
                if !self.tiers.dev_path[d as usize].iter().any(|&t| self.counts[t] > self.plan_max[t]) {
                    continue;
                }
                self.gather(part, r);
                for &t in &self.tiers.dev_path[d as usize] {
                    self.counts[t] -= 1;
                }
                self.set_moved(part);
            }
            self.reset_counts(touched);
        }
    }

    fn remove_failed_devices(&mut self) -> usize {
        let ids = std::mem::take(&mut self.b.remove_devs);
        for &id in &ids {
            if let Some(slot) = self.b.devs.get_mut(id as usize) {
                *slot = None;
            }
            if let Some(w) = self.parts_wanted.get_mut(id as usize) {
                *w = None;
            }
        }
        while matches!(self.b.devs.last(), Some(None)) {
            self.b.devs.pop();
        }
        ids.len()
    }

    /// Gathers replicas from overweight devices, one per movable partition,
    /// but only where some device that wants parts could take the replica
    /// without breaking the replica plan. Swift also gathers "forced"
    /// replicas that may land back where they were; we do not, which keeps
    /// the movement of a rebalance close to the minimum.
    fn gather_for_balance(&mut self, rng: &mut StdRng) {
        let parts = self.b.parts();
        let start = (self.b.last_part_gather_start + parts / 4 + rng.gen_range(0..=parts / 2)) % parts;
        self.b.last_part_gather_start = start;
        // Room left on each underweight device, reserved as replicas are
        // gathered for it so we never gather more than can be placed.
        let mut room: Vec<(u32, i64)> = self
            .b
            .devs
            .iter()
            .flatten()
            .filter(|d| d.weight > 0.0)
            .filter_map(|d| self.parts_wanted[d.id as usize].filter(|&w| w > 0).map(|w| (d.id, w)))
            .collect();
        if room.is_empty() {
            return;
        }
        for offset in 0..parts {
            if room.iter().all(|&(_, w)| w <= 0) {
                break;
            }
            let part = (start + offset) % parts;
            if !self.can_move(part) {
                continue;
            }
            let mut over: Vec<(i64, usize, u32)> = self
                .replica_rows(part)
                .into_iter()
                .filter_map(|(r, d)| self.parts_wanted[d as usize].filter(|&w| w < 0).map(|w| (w, r, d)))
                .collect();
            if over.is_empty() {
                continue;
            }
            over.sort_by_key(|&(w, _, _)| w);
            let touched = self.count_part(part);
            for (_, r, d) in over {
                let from = self.tiers.dev_path[d as usize];
                for &t in &from {
                    self.counts[t] -= 1;
                }
                // A destination must have room in the plan at every tier, and
                // leaving must not take a tier the destination does not
                // share below the plan's minimum.
                let dest = room.iter_mut().filter(|(_, w)| *w > 0).find(|(u, _)| {
                    let to = &self.tiers.dev_path[*u as usize];
                    to.iter().all(|&t| self.counts[t] < self.plan_max[t])
                        && from.iter().all(|t| to.contains(t) || self.counts[*t] >= self.plan_min[*t])
                });
                for &t in &from {
                    self.counts[t] += 1;
                }
                if let Some((_, w)) = dest {
                    *w -= 1;
                    self.gather(part, r);
                    self.set_moved(part);
                    break;
                }
            }
            self.reset_counts(touched);
        }
    }

    /// Swift's `_gather_parts_for_balance_forced`: from every movable
    /// partition, the replica on its most overweight device, wherever it may
    /// land.
    fn gather_for_balance_forced(&mut self) {
        let parts = self.b.parts();
        let start = self.b.last_part_gather_start;
        for offset in 0..parts {
            let part = (start + offset) % parts;
            if !self.can_move(part) {
                continue;
            }
            let most_over = self
                .replica_rows(part)
                .into_iter()
                .filter_map(|(r, d)| self.parts_wanted[d as usize].filter(|&w| w < 0).map(|w| (w, r)))
                .min();
            if let Some((_, r)) = most_over {
                self.gather(part, r);
                self.set_moved(part);
            }
        }
    }

    /// Places every gathered replica: down the weighted tier tree, at each
    /// level into the child with the most parts available among those below
    /// their plan maximum for this partition.
    fn reassign(&mut self, list: Vec<(usize, Vec<usize>)>, rng: &mut StdRng) -> Result<(), BuilderError> {
        let n = self.tiers.nodes.len();
        let mut available = vec![0i64; n];
        let mut sort_key = vec![(i64::MIN, 0u16, 0u32); n];
        for dev in self.b.devs.iter().flatten() {
            let w = self.parts_wanted[dev.id as usize].unwrap_or(0);
            for &t in &self.tiers.dev_path[dev.id as usize] {
                available[t] += w.max(0);
            }
            if dev.weight > 0.0 {
                let key = (w, rng.gen::<u16>(), dev.id);
                for &t in &self.tiers.dev_path[dev.id as usize] {
                    if key > sort_key[t] {
                        sort_key[t] = key;
                    }
                }
            }
        }
        // Children in ascending order of their best device's sort key, as
        // Swift orders them; ties in `available` go to the first.
        let children: Vec<Vec<usize>> = self
            .wchildren
            .iter()
            .map(|kids| {
                let mut kids = kids.clone();
                kids.sort_by_key(|&c| sort_key[c]);
                kids
            })
            .collect();
        for (part, replicas) in list {
            self.b.last_part_moves[part] = 0;
            let touched = self.count_part(part);
            let mut all_touched = touched;
            for r in replicas {
                let mut t = 0usize;
                while self.tiers.nodes[t].level < 4 {
                    let kids = &children[t];
                    // The tier furthest behind its share: most parts still
                    // wanted per replica it should hold of each partition.
                    // (Swift takes the most parts wanted outright, which
                    // starves tiers capped at one replica per partition.)
                    let urge = |c: usize| available[c] as f64 / self.target[c].max(1e-9);
                    // Tiers below the plan's minimum for this partition come
                    // first, so replicas reach every failure domain they can.
                    let short = kids.iter().any(|&c| self.counts[c] < self.plan_min[c] && self.counts[c] < self.num_devices[c]);
                    let mut best: Option<usize> = None;
                    for &c in kids {
                        let eligible = self.counts[c] < self.plan_max[c]
                            && self.counts[c] < self.num_devices[c]
                            && (!short || self.counts[c] < self.plan_min[c]);
                        if eligible && best.is_none_or(|b| urge(c) > urge(b)) {
                            best = Some(c);
                        }
                    }
                    // The plan leaves no room (possible with odd topologies):
                    // take the child with the fewest replicas of this part.
                    let best = best.or_else(|| {
                        kids.iter()
                            .copied()
                            .filter(|&c| self.counts[c] < self.num_devices[c])
                            .min_by_key(|&c| (self.counts[c] - self.plan_max[c], -available[c]))
                    });
                    match best {
                        Some(c) => t = c,
                        None => return Err(BuilderError::Validation(format!("no home for partition {part} replica {r}"))),
                    }
                }
                let dev = self.tiers.nodes[t].key.3;
                if let Some(Some(w)) = self.parts_wanted.get_mut(dev as usize) {
                    *w -= 1;
                }
                for &tier in &self.tiers.dev_path[dev as usize] {
                    available[tier] -= 1;
                    if self.counts[tier] == 0 {
                        all_touched.push(tier);
                    }
                    self.counts[tier] += 1;
                }
                self.table()[r][part] = dev;
            }
            self.reset_counts(all_touched);
        }
        Ok(())
    }
}

/// Swift's `_build_weighted_replicas_by_tier`: each device's share of the
/// replicas by weight, capped at one replica, the excess spread over the
/// others; tiers sum their devices.
fn weighted_replicas(b: &RingBuilder, tiers: &Tiers, weighted: &[bool]) -> Result<Vec<f64>, BuilderError> {
    let wop = b.weight_of_one_part()?;
    let parts = b.parts() as f64;
    let mut per_dev: HashMap<u32, f64> = HashMap::new();
    let mut with_room = Vec::new();
    for dev in b.iter_devs().filter(|d| weighted[d.id as usize]) {
        let mut share = dev.weight * wop / parts;
        if share < 1.0 {
            with_room.push(dev.id);
        } else {
            share = 1.0;
        }
        per_dev.insert(dev.id, share);
    }
    for _ in 0..10_000 {
        let remaining = b.replicas - per_dev.values().sum::<f64>();
        if remaining < 1e-10 {
            break;
        }
        with_room.retain(|d| per_dev[d] < 1.0);
        let room: f64 = with_room.iter().map(|d| per_dev[d]).sum();
        if room <= 0.0 {
            break;
        }
        let rel = remaining / room;
        for d in &with_room {
            let v = per_dev.get_mut(d).expect("device has a share");
            *v = (*v * (rel + 1.0)).min(1.0);
        }
    }
    let mut out = vec![0.0; tiers.nodes.len()];
    for (id, share) in per_dev {
        for &t in &tiers.dev_path[id as usize] {
            out[t] += share;
        }
    }
    Ok(out)
}

/// Swift's `_build_wanted_replicas_by_tier`: as dispersed as possible,
/// bounded by how many devices each tier has, following weights within
/// those bounds.
fn wanted_replicas(
    replicas: f64,
    tiers: &Tiers,
    wchildren: &[Vec<usize>],
    num_devices: &[usize],
    weighted: &[f64],
) -> Result<Vec<f64>, BuilderError> {
    // Dispersion bounds from the weighted tree only.
    let n = tiers.nodes.len();
    let mut bound = vec![0.0f64; n];
    let mut stack = vec![(0usize, replicas)];
    while let Some((t, mut count)) = stack.pop() {
        if tiers.nodes[t].level == 4 {
            count = count.min(1.0);
        }
        bound[t] = count;
        let kids = &wchildren[t];
        for &c in kids {
            stack.push((c, count / kids.len() as f64));
        }
    }
    let (dmin, dmax): (Vec<f64>, Vec<f64>) = bound.iter().map(|b| (b.floor(), b.ceil())).unzip();
    let mut wanted = vec![0.0; n];
    let mut stack = vec![(0usize, replicas)];
    while let Some((tier, replicanths)) = stack.pop() {
        if replicanths > num_devices[tier] as f64 + 1e-9 {
            return Err(BuilderError::Validation(format!(
                "More replicanths ({replicanths}) than devices ({}) in tier ({})",
                num_devices[tier],
                tiers.describe(tier)
            )));
        }
        wanted[tier] = replicanths;
        let kids = &wchildren[tier];
        if kids.is_empty() {
            continue;
        }
        let mut to_place: HashMap<usize, f64> = kids.iter().map(|&k| (k, 0.0)).collect();
        let mut remaining = replicanths;
        let mut spread: Vec<usize> = kids.clone();
        let mut device_limited = false;
        for _ in 0..1000 {
            let total: f64 = spread.iter().map(|&t| weighted[t]).sum();
            if total <= 0.0 {
                break;
            }
            let rel = remaining / total;
            for &t in &spread {
                let mut r = to_place[&t] + weighted[t] * rel;
                if r < dmin[t] {
                    r = dmin[t];
                } else if r > dmax[t] && !device_limited {
                    r = dmax[t];
                }
                if r > num_devices[t] as f64 {
                    r = num_devices[t] as f64;
                }
                to_place.insert(t, r);
            }
            remaining = replicanths - to_place.values().sum::<f64>();
            if remaining < -1e-10 {
                spread = kids.iter().copied().filter(|t| to_place[t] > dmin[*t]).collect();
            } else if remaining > 1e-10 {
                spread = kids.iter().copied().filter(|t| (num_devices[*t] as f64) > to_place[t] && to_place[t] < dmax[*t]).collect();
                if spread.is_empty() {
                    device_limited = true;
                    spread = kids.iter().copied().filter(|t| to_place[t] < num_devices[*t] as f64).collect();
                }
            } else {
                break;
            }
            if spread.is_empty() {
                break;
            }
        }
        for &k in kids {
            stack.push((k, to_place[&k]));
        }
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn dev(region: i64, zone: i64, ip: &str, name: &str, weight: f64) -> Device {
        Device {
            id: 0,
            region,
            zone,
            ip: ip.to_string(),
            port: 6200,
            replication_ip: ip.to_string(),
            replication_port: 6200,
            device: name.to_string(),
            weight,
            meta: String::new(),
            extra: Default::default(),
        }
    }

    /// A random failure-domain tree: regions, zones, hosts, devices, with
    /// `weight(region, zone, host, dev, counts)` choosing each device's weight.
    fn random_builder(rng: &mut StdRng, part_power: u32, replicas: f64, max_devs: usize, balanced_tiers: bool) -> RingBuilder {
        loop {
            let mut b = RingBuilder::new(part_power, replicas, 0).unwrap();
            let regions = rng.gen_range(1..=3);
            for r in 1..=regions {
                let zones = rng.gen_range(1..=3);
                for z in 1..=zones {
                    let hosts = rng.gen_range(1..=3);
                    for h in 1..=hosts {
                        let ndev = rng.gen_range(1..=3);
                        for d in 0..ndev {
                            // Balanced tiers: every region, zone of a region
                            // and host of a zone weighs the same.
                            let w = if balanced_tiers { 1_000_000.0 / (zones * hosts * ndev) as f64 } else { 100.0 };
                            let ip = format!("10.{r}.{z}.{h}");
                            b.add_dev(dev(r, z, &ip, &format!("d{d}"), w), None).unwrap();
                        }
                    }
                }
            }
            let n = b.iter_devs().count();
            if n as f64 >= replicas && n <= max_devs {
                return b;
            }
        }
    }

    fn part_devs(b: &RingBuilder, part: usize) -> Vec<&Device> {
        b.part_devices(part).into_iter().map(|d| b.devs[d as usize].as_ref().unwrap()).collect()
    }

    fn assert_distinct_devices(b: &RingBuilder) {
        for part in 0..b.parts() {
            let ids = b.part_devices(part);
            let set: HashSet<u32> = ids.iter().copied().collect();
            assert_eq!(set.len(), ids.len(), "partition {part} has duplicate devices {ids:?}");
        }
    }

    /// With tier weights that allow it, every partition uses as many regions,
    /// zones and hosts as it can.
    fn assert_fully_dispersed(b: &RingBuilder) {
        let regions: HashSet<i64> = b.iter_devs().map(|d| d.region).collect();
        let zones: HashSet<(i64, i64)> = b.iter_devs().map(|d| (d.region, d.zone)).collect();
        for part in 0..b.parts() {
            let devs = part_devs(b, part);
            let n = devs.len();
            let r: HashSet<i64> = devs.iter().map(|d| d.region).collect();
            assert_eq!(
                r.len(),
                n.min(regions.len()),
                "partition {part} regions: {:?}\n{:?}",
                devs.iter().map(|d| d.describe()).collect::<Vec<_>>(),
                b.iter_devs().map(|d| format!("{} {}", d.describe(), d.weight)).collect::<Vec<_>>()
            );
            let z: HashSet<(i64, i64)> = devs.iter().map(|d| (d.region, d.zone)).collect();
            // Zones: at least one per region used, however the shares fall.
            assert!(z.len() >= n.min(zones.len()).min(r.len().max(1)), "partition {part} zones");
        }
        let report = b.dispersion_report();
        assert!(report.dispersion < 1e-9, "dispersion {}", report.dispersion);
    }

    #[test]
    fn first_rebalance_places_every_replica_once_and_balances() {
        let mut b = RingBuilder::new(10, 3.0, 1).unwrap();
        for z in 1..=4 {
            b.add_dev(dev(1, z, "127.0.0.1", &format!("sdb{z}"), 100.0), None).unwrap();
        }
        let out = b.rebalance(Some(1)).unwrap();
        assert_eq!(out.changed_parts, 3 * 1024);
        assert!(out.balance < 1.0, "balance {}", out.balance);
        b.validate().unwrap();
        assert_distinct_devices(&b);
        assert_fully_dispersed(&b);
        assert_eq!(b.version, 5);
    }

    #[test]
    fn property_distinct_devices_dispersion_and_balance_on_random_trees() {
        let mut rng = StdRng::seed_from_u64(42);
        for case in 0..25 {
            let replicas = [2.0, 3.0, 3.0, 4.0][case % 4];
            let mut b = random_builder(&mut rng, 10, replicas, 20, true);
            b.rebalance(Some(case as u64)).unwrap();
            b.validate().unwrap();
            assert_distinct_devices(&b);
            assert_fully_dispersed(&b);
        }
    }

    #[test]
    fn property_equal_weights_balance_within_one_percent() {
        let mut rng = StdRng::seed_from_u64(7);
        for case in 0..25 {
            let mut b = random_builder(&mut rng, 10, 3.0, 20, false);
            let out = b.rebalance(Some(case)).unwrap();
            let devs = b.iter_devs().count();
            assert!(out.balance <= 1.0, "case {case}: {devs} devices, balance {}", out.balance);
            assert_distinct_devices(&b);
        }
    }

    #[test]
    fn property_partition_counts_follow_weights() {
        let mut rng = StdRng::seed_from_u64(9);
        for case in 0..15 {
            let mut b = RingBuilder::new(12, 3.0, 0).unwrap();
            let n = rng.gen_range(6..=20);
            for i in 0..n {
                let w = rng.gen_range(50..=200) as f64;
                // Each device in its own zone: no dispersion constraint fights the weights.
                b.add_dev(dev(1, i as i64, &format!("10.0.0.{i}"), "sda", w), None).unwrap();
            }
            let total: f64 = b.iter_devs().map(|d| d.weight).sum();
            if b.iter_devs().any(|d| d.weight / total * 3.0 > 1.0) {
                continue;
            }
            b.rebalance(Some(case)).unwrap();
            let parts = b.parts_per_dev();
            for d in b.iter_devs() {
                let ideal = d.weight / total * 3.0 * b.parts() as f64;
                let got = parts[d.id as usize] as f64;
                assert!((got - ideal).abs() <= (ideal * 0.01).max(2.0), "case {case} dev {}: {got} vs {ideal}", d.id);
            }
        }
    }

    #[test]
    fn property_adding_a_device_moves_about_its_fair_share() {
        let mut rng = StdRng::seed_from_u64(11);
        for case in 0..15 {
            let mut b = random_builder(&mut rng, 10, 3.0, 18, false);
            b.min_part_hours = 1;
            b.rebalance(Some(case)).unwrap();
            b.pretend_min_part_hours_passed();
            let region = b.iter_devs().map(|d| d.region).max().unwrap();
            b.add_dev(dev(region, 9, "10.9.9.9", "new", 100.0), None).unwrap();
            let out = b.rebalance(Some(case + 100)).unwrap();
            let total: f64 = b.iter_devs().map(|d| d.weight).sum();
            let fair = 3.0 * b.parts() as f64 * 100.0 / total;
            let moved = out.changed_parts as f64;
            assert!(moved <= 1.5 * fair, "case {case}: moved {moved}, fair share {fair}");
            assert!(moved >= 0.5 * fair, "case {case}: moved {moved}, fair share {fair}");
            assert_distinct_devices(&b);
        }
    }

    fn moves_per_part(before: &[Vec<u32>], after: &[Vec<u32>]) -> Vec<usize> {
        let mut moves = vec![0; after[0].len()];
        for (r, row) in after.iter().enumerate() {
            for (p, d) in row.iter().enumerate() {
                if before.get(r).and_then(|o| o.get(p)) != Some(d) {
                    moves[p] += 1;
                }
            }
        }
        moves
    }

    #[test]
    fn property_one_replica_per_partition_moves_within_min_part_hours() {
        let mut rng = StdRng::seed_from_u64(13);
        for case in 0..10 {
            let mut b = random_builder(&mut rng, 10, 3.0, 18, false);
            b.min_part_hours = 24;
            b.rebalance(Some(case)).unwrap();
            // Nothing may move right after a rebalance.
            b.add_dev(dev(1, 8, "10.8.8.8", "a", 300.0), None).unwrap();
            let before = b.replica2part2dev.clone().unwrap();
            let out = b.rebalance(Some(case)).unwrap();
            assert_eq!(out.changed_parts, 0, "case {case}");
            assert_eq!(b.replica2part2dev.as_ref().unwrap(), &before);
            // Once the hours have passed, a big change moves at most one
            // replica of each partition.
            b.pretend_min_part_hours_passed();
            b.add_dev(dev(2, 8, "10.8.8.9", "a", 500.0), None).unwrap();
            b.add_dev(dev(3, 8, "10.8.8.10", "a", 500.0), None).unwrap();
            let before = b.replica2part2dev.clone().unwrap();
            b.rebalance(Some(case)).unwrap();
            let moves = moves_per_part(&before, b.replica2part2dev.as_ref().unwrap());
            assert!(moves.iter().all(|&m| m <= 1), "case {case}: {:?}", moves.iter().max());
            assert_distinct_devices(&b);
        }
    }

    #[test]
    fn property_removed_device_ends_empty_even_within_min_part_hours() {
        let mut rng = StdRng::seed_from_u64(17);
        for case in 0..10 {
            let mut b = random_builder(&mut rng, 10, 3.0, 18, false);
            if b.iter_devs().count() < 5 {
                continue;
            }
            b.min_part_hours = 24;
            b.rebalance(Some(case)).unwrap();
            let victim = b.iter_devs().nth(case as usize % 4).unwrap().id;
            b.remove_dev(victim).unwrap();
            let before = b.replica2part2dev.clone().unwrap();
            let out = b.rebalance(Some(case)).unwrap();
            assert_eq!(out.removed_devs, 1);
            assert!(b.devs.get(victim as usize).is_none_or(Option::is_none));
            assert!(!b.replica2part2dev.as_ref().unwrap().iter().flatten().any(|&d| d == victim));
            // Only the removed device's replicas moved.
            let moved = moves_per_part(&before, b.replica2part2dev.as_ref().unwrap()).iter().sum::<usize>();
            let had = before.iter().flatten().filter(|&&d| d == victim).count();
            assert_eq!(moved, had, "case {case}");
            b.validate().unwrap();
            assert_distinct_devices(&b);
        }
    }

    #[test]
    fn property_fractional_replica_counts() {
        let mut rng = StdRng::seed_from_u64(19);
        for (case, replicas) in [1.5, 2.25, 2.5, 3.75].into_iter().enumerate() {
            let mut b = random_builder(&mut rng, 10, replicas, 20, false);
            b.rebalance(Some(case as u64)).unwrap();
            let table = b.replica2part2dev.as_ref().unwrap();
            assert_eq!(table.len(), replicas.ceil() as usize);
            assert_eq!(table.last().unwrap().len(), (1024.0 * replicas.fract()) as usize);
            assert_eq!(b.get_ring().replica_count(), replicas);
            b.validate().unwrap();
            assert_distinct_devices(&b);
            // Changing the count reshapes the table.
            b.pretend_min_part_hours_passed();
            b.set_replicas(2.0).unwrap();
            b.rebalance(Some(1)).unwrap();
            assert_eq!(b.replica2part2dev.as_ref().unwrap().len(), 2);
            b.validate().unwrap();
            b.set_replicas(3.0).unwrap();
            b.rebalance(Some(2)).unwrap();
            assert_eq!(b.get_ring().replica_count(), 3.0);
            b.validate().unwrap();
            assert_distinct_devices(&b);
        }
    }

    #[test]
    fn overload_buys_dispersion_for_unequal_tiers() {
        // Region 2 is light: by weight alone it gets fewer than one replica of
        // every partition; with overload it holds one of each.
        let mut b = RingBuilder::new(10, 3.0, 0).unwrap();
        for i in 0..6 {
            b.add_dev(dev(1, 1 + i % 3, &format!("10.1.0.{i}"), "sda", 100.0), None).unwrap();
        }
        b.add_dev(dev(2, 1, "10.2.0.1", "sda", 100.0), None).unwrap();
        b.rebalance(Some(1)).unwrap();
        assert!(b.dispersion_report().dispersion > 0.0);
        b.overload = 10.0;
        b.pretend_min_part_hours_passed();
        for i in 0..3 {
            b.rebalance(Some(2 + i)).unwrap();
            b.pretend_min_part_hours_passed();
        }
        assert_fully_dispersed(&b);
    }

    #[test]
    fn builder_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("object.builder");
        let mut b = RingBuilder::new(8, 2.5, 3).unwrap();
        for z in 1..=4 {
            b.add_dev(dev(1, z, "127.0.0.1", "sdb", 100.0), None).unwrap();
        }
        b.rebalance(Some(3)).unwrap();
        b.remove_dev(2).unwrap();
        b.save(&path).unwrap();
        let back = RingBuilder::load(&path).unwrap();
        assert_eq!(back.replica2part2dev, b.replica2part2dev);
        assert_eq!(back.devs, b.devs);
        assert_eq!(back.remove_devs, vec![2]);
        assert_eq!(back.id, b.id);
        assert_eq!(back.replicas, 2.5);
        assert_eq!(back.last_part_moves, b.last_part_moves);
        std::fs::write(&path, b"garbage").unwrap();
        assert!(RingBuilder::load(&path).is_err());
        std::fs::write(&path, [0x1f, 0x8b, 8, 0]).unwrap();
        assert!(RingBuilder::load(&path).is_err());
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(RingBuilder::new(0, 3.0, 1).is_err());
        assert!(RingBuilder::new(33, 3.0, 1).is_err());
        assert!(RingBuilder::new(10, 0.5, 1).is_err());
        assert!(RingBuilder::new(10, f64::NAN, 1).is_err());
        let mut b = RingBuilder::new(4, 3.0, 1).unwrap();
        assert!(b.add_dev(dev(1, 1, "1.1.1.1", "a", -1.0), None).is_err());
        b.add_dev(dev(1, 1, "1.1.1.1", "a", 1.0), None).unwrap();
        assert!(b.add_dev(dev(1, 1, "1.1.1.1", "b", 1.0), Some(0)).is_err());
        let err = b.rebalance(None).unwrap_err().to_string();
        assert_eq!(err, "Replica count of 3.0 requires more than 1 devices");
    }
}
