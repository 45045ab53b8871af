//! DB replication (Swift's `swift/common/db_replicator.py`): the broker
//! methods replication needs (sync points, rows since a ROWID, merging
//! replicated rows, re-id after a whole-file copy), the JSON messages of
//! `REPLICATE` in one place, and the receiving side of the RPC
//! ([`ReplicatorRpc`], Swift's `ReplicatorRpc`), free of HTTP types.
//!
//! The wire format is Swift's, so a Swift replicator can sync rows with us
//! and ours with a Swift server: a `REPLICATE /<dev>/<part>/<hash>` body is
//! a JSON list `[op, args...]`; rows travel as the dicts of `SELECT *`
//! (with `ROWID`); sync points as `{"remote_id", "sync_point"}`.
//!
//! Shard ranges: we have none. A container's replication info says
//! `shard_max_row: -1` (so a Swift peer does not think us too old to shard)
//! and `merge_shard_ranges`/`get_shard_ranges` are answered as a container
//! without shard ranges would.

use super::broker::{BrokerKind, DatabaseBroker, DbError};
use crate::timestamp::Timestamp;
use rusqlite::types::ValueRef;
use rusqlite::{OptionalExtension, TransactionBehavior};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Rows sent per `merge_items` (Swift's `per_diff` default).
pub const PER_DIFF: usize = 1000;

/// One row of a sync table: how far the database with `remote_id` is known
/// to be in sync (a ROWID).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncPoint {
    pub remote_id: String,
    pub sync_point: i64,
}

/// A row as replication carries it: column name → value, `ROWID` included.
pub type Row = Map<String, Value>;

fn sync_table(incoming: bool) -> &'static str {
    if incoming {
        "incoming_sync"
    } else {
        "outgoing_sync"
    }
}

/// An SQLite value as JSON (what Python's `json.dumps` makes of a row).
fn json_value(v: ValueRef) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => Value::from(String::from_utf8_lossy(t).into_owned()),
    }
}

/// The columns of Swift's `get_info` of each kind, in its order.
fn info_columns(db_type: &str) -> &'static [&'static str] {
    if db_type == "container" {
        &[
            "account",
            "container",
            "created_at",
            "put_timestamp",
            "delete_timestamp",
            "status",
            "status_changed_at",
            "object_count",
            "bytes_used",
            "reported_put_timestamp",
            "reported_delete_timestamp",
            "reported_object_count",
            "reported_bytes_used",
            "hash",
            "id",
            "x_container_sync_point1",
            "x_container_sync_point2",
            "storage_policy_index",
        ]
    } else {
        &[
            "account",
            "created_at",
            "put_timestamp",
            "delete_timestamp",
            "status_changed_at",
            "container_count",
            "object_count",
            "bytes_used",
            "hash",
            "id",
        ]
    }
}

impl<K: BrokerKind> DatabaseBroker<K> {
    /// The sync point recorded for `id` (-1 if none), in the incoming or
    /// outgoing table (Swift's `get_sync`).
    pub fn get_sync(&mut self, id: &str, incoming: bool) -> Result<i64, DbError> {
        let sql = format!("SELECT sync_point FROM {} WHERE remote_id = ?1", sync_table(incoming));
        let row: Option<Option<i64>> = self.conn()?.query_row(&sql, [id], |r| r.get(0)).optional()?;
        Ok(row.flatten().unwrap_or(-1))
    }

    /// Every sync point of one table (Swift's `get_syncs`).
    pub fn get_syncs(&mut self, incoming: bool) -> Result<Vec<SyncPoint>, DbError> {
        let sql = format!("SELECT remote_id, sync_point FROM {}", sync_table(incoming));
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            Ok(SyncPoint {
                remote_id: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                sync_point: r.get::<_, Option<i64>>(1)?.unwrap_or(-1),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Records sync points, keeping the larger of old and new per remote
    /// (Swift's `merge_syncs`).
    pub fn merge_syncs(&mut self, points: &[SyncPoint], incoming: bool) -> Result<(), DbError> {
        let table = sync_table(incoming);
        let conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for p in points {
            let n = tx.execute(
                &format!("UPDATE {table} SET sync_point = MAX(?1, sync_point) WHERE remote_id = ?2"),
                rusqlite::params![p.sync_point, p.remote_id],
            )?;
            if n == 0 {
                tx.execute(
                    &format!("INSERT INTO {table} (sync_point, remote_id) VALUES (?1, ?2)"),
                    rusqlite::params![p.sync_point, p.remote_id],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Up to `count` rows with a ROWID above `start`, oldest first, every
    /// column (Swift's `get_items_since`); pending updates merged first.
    pub fn get_items_since(&mut self, start: i64, count: usize) -> Result<Vec<Row>, DbError> {
        self.commit_pending()?;
        let sql = format!("SELECT * FROM {} WHERE ROWID > ?1 ORDER BY ROWID ASC LIMIT ?2", K::CONTAINS_TYPE);
        let conn = self.conn()?;
        let mut stmt = conn.prepare(&sql)?;
        let names: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let limit = i64::try_from(count).unwrap_or(i64::MAX);
        let rows = stmt.query_map(rusqlite::params![start, limit], |r| {
            let mut row = Row::new();
            for (i, name) in names.iter().enumerate() {
                row.insert(name.clone(), json_value(r.get_ref(i)?));
            }
            Ok(row)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Merges replicated records (newest timestamp wins, as for local
    /// updates); with `source = (remote id, last ROWID sent)`, raises the
    /// incoming sync point of that remote in the same transaction (Swift's
    /// `merge_items`: the sender sends in ROWID order without gaps).
    pub fn merge_items(&mut self, records: Vec<K::Record>, source: Option<(&str, i64)>) -> Result<(), DbError> {
        let conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        K::merge_records(&tx, records)?;
        if let Some((remote_id, point)) = source {
            let n = tx.execute(
                "UPDATE incoming_sync SET sync_point = MAX(?1, sync_point) WHERE remote_id = ?2",
                rusqlite::params![point, remote_id],
            )?;
            if n == 0 {
                tx.execute("INSERT INTO incoming_sync (sync_point, remote_id) VALUES (?1, ?2)", rusqlite::params![point, remote_id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Swift's `get_replication_info`: `get_info`'s keys with
    /// `<rows>_count` renamed `count`, the raw `metadata` string and
    /// `max_row` (containers add `db_state` and `shard_max_row`).
    pub fn get_replication_info(&mut self) -> Result<Map<String, Value>, DbError> {
        self.commit_pending()?;
        let cols = info_columns(K::DB_TYPE);
        let sql = format!("SELECT {} FROM {}_stat", cols.join(", "), K::DB_TYPE);
        let path = self.db_file().to_path_buf();
        let mut info: Map<String, Value> = self
            .conn()?
            .query_row(&sql, [], |r| {
                let mut m = Map::new();
                for (i, c) in cols.iter().enumerate() {
                    m.insert((*c).to_string(), json_value(r.get_ref(i)?));
                }
                Ok(m)
            })
            .optional()?
            .ok_or_else(|| DbError::Corrupt(path, format!("missing row in {}_stat", K::DB_TYPE)))?;
        let count = info.remove(&format!("{}_count", K::CONTAINS_TYPE)).unwrap_or(Value::from(0));
        info.insert("count".into(), count);
        if K::DB_TYPE == "container" {
            info.insert("db_state".into(), Value::from("unsharded"));
            // No shard ranges here (see the module comment).
            info.insert("shard_max_row".into(), Value::from(-1));
        }
        info.insert("metadata".into(), Value::from(self.raw_metadata()?));
        info.insert("max_row".into(), Value::from(self.max_row()?));
        Ok(info)
    }

    /// Gives a database that arrived as a whole file a new id and records
    /// that it is in sync with its sender `remote_id` up to its last row
    /// (Swift's `newid`), or up to `sync_point` when given (the sender's
    /// last row, before our own rows were merged in after it). Containers also forget what they reported to the
    /// account (the receiving node must report it itself).
    pub fn newid(&mut self, remote_id: &str, device: &str, sync_point: Option<i64>) -> Result<(), DbError> {
        let table = K::INFO_TABLE;
        let contains = K::CONTAINS_TYPE;
        let conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(&format!("UPDATE {table} SET id = ?1"), [format!("{}-{device}", super::broker::uuid4())])?;
        let last: Option<i64> =
            tx.query_row(&format!("SELECT ROWID FROM {contains} ORDER BY ROWID DESC LIMIT 1"), [], |r| r.get(0)).optional()?;
        tx.execute(
            "INSERT OR REPLACE INTO incoming_sync (sync_point, remote_id) VALUES (?1, ?2)",
            rusqlite::params![sync_point.or(last).unwrap_or(-1), remote_id],
        )?;
        if K::DB_TYPE == "container" {
            tx.execute(
                &format!(
                    "UPDATE {table} SET reported_put_timestamp = 0, reported_delete_timestamp = 0, reported_object_count = 0, \
                     reported_bytes_used = 0"
                ),
                [],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether the database holds no rows and was deleted (after its last
    /// PUT) more than `reclaim_age` seconds before `now` (Swift's
    /// `is_reclaimable`): it may then be removed.
    pub fn is_reclaimable(&mut self, now: f64, reclaim_age: f64) -> Result<bool, DbError> {
        let info = self.get_replication_info()?;
        let s = |k: &str| Timestamp::parse(info.get(k).and_then(Value::as_str).unwrap_or("0")).unwrap_or(Timestamp::ZERO);
        let count = info.get("count").and_then(Value::as_i64).unwrap_or(0);
        let limit = Timestamp::from_secs_f64((now - reclaim_age).max(0.0)).unwrap_or(Timestamp::ZERO);
        Ok(count == 0 && limit > s("delete_timestamp") && s("delete_timestamp") > s("put_timestamp"))
    }
}

/// The `sync` arguments of a database: `[max_row, hash, id, created_at,
/// put_timestamp, delete_timestamp, metadata]`, and for containers Swift's
/// extra `[status_changed_at, count, storage_policy_index]` (Swift sends
/// them when it has several policies; we always do, a Swift server reads
/// them only if present).
pub fn sync_args(info: &Map<String, Value>, db_type: &str) -> Vec<Value> {
    let mut keys = vec!["max_row", "hash", "id", "created_at", "put_timestamp", "delete_timestamp", "metadata"];
    if db_type == "container" {
        keys.extend(["status_changed_at", "count", "storage_policy_index"]);
    }
    keys.iter().map(|k| info.get(*k).cloned().unwrap_or(Value::Null)).collect()
}

/// What decides which of two replicas of a container has the right
/// storage policy (the arguments of Swift's `cmp_policy_info`).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyInfo {
    pub storage_policy_index: i64,
    pub count: i64,
    pub put_timestamp: Timestamp,
    pub delete_timestamp: Timestamp,
    pub status_changed_at: Timestamp,
}

impl PolicyInfo {
    /// From replication info (ours, or a peer's `sync` reply); `None` when
    /// it has no policy index (an account, or a peer that did not say).
    pub fn from_info(info: &Map<String, Value>) -> Option<PolicyInfo> {
        let ts = |k: &str| match info.get(k) {
            Some(Value::String(s)) => Timestamp::parse(s).unwrap_or(Timestamp::ZERO),
            Some(Value::Number(n)) => n.as_f64().and_then(|f| Timestamp::from_secs_f64(f).ok()).unwrap_or(Timestamp::ZERO),
            _ => Timestamp::ZERO,
        };
        Some(PolicyInfo {
            storage_policy_index: info.get("storage_policy_index")?.as_i64()?,
            count: info.get("count").or_else(|| info.get("object_count")).and_then(Value::as_i64).unwrap_or(0),
            put_timestamp: ts("put_timestamp"),
            delete_timestamp: ts("delete_timestamp"),
            status_changed_at: ts("status_changed_at"),
        })
    }

    fn is_deleted(&self) -> bool {
        self.delete_timestamp > self.put_timestamp && self.count == 0
    }

    fn has_been_recreated(&self) -> bool {
        self.put_timestamp > self.delete_timestamp && self.delete_timestamp > Timestamp::ZERO
    }
}

/// Whether `remote`'s storage policy should replace ours (Swift's
/// `incorrect_policy_index`): of a live and a deleted replica the live one
/// wins; of two recreated ones the one recreated after the last delete;
/// else the older status change.
pub fn incorrect_policy_index(local: &PolicyInfo, remote: &PolicyInfo) -> bool {
    use std::cmp::Ordering;
    if local.storage_policy_index == remote.storage_policy_index {
        return false;
    }
    // Greater: the remote is better (Swift's cmp_policy_info returning 1).
    let remote_better = || -> Ordering {
        let (deleted, remote_deleted) = (local.is_deleted(), remote.is_deleted());
        if deleted || remote_deleted {
            if !deleted {
                return Ordering::Less;
            } else if !remote_deleted {
                return Ordering::Greater;
            }
            return remote.status_changed_at.cmp(&local.status_changed_at);
        }
        let (recreated, remote_recreated) = (local.has_been_recreated(), remote.has_been_recreated());
        if recreated || remote_recreated {
            if !recreated {
                return Ordering::Greater;
            } else if !remote_recreated {
                return Ordering::Less;
            }
            let last_delete = local.delete_timestamp.max(remote.delete_timestamp);
            if local.put_timestamp < last_delete {
                return Ordering::Greater;
            } else if remote.put_timestamp < last_delete {
                return Ordering::Less;
            }
        }
        local.status_changed_at.cmp(&remote.status_changed_at)
    };
    remote_better() == Ordering::Greater
}

/// Moves a container database to another storage policy, its status
/// changed now (Swift's `set_storage_policy_index` in the replicator);
/// nothing for accounts.
pub fn adopt_policy<K: BrokerKind>(broker: &mut DatabaseBroker<K>, policy: i64) -> Result<(), DbError> {
    let any: &mut dyn std::any::Any = broker;
    if let Some(container) = any.downcast_mut::<super::ContainerBroker>() {
        container.set_storage_policy_index(policy, &Timestamp::now())?;
    }
    Ok(())
}

/// One `REPLICATE` request, decoded from its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub enum RpcOp {
    /// `["sync", max_row, hash, id, created_at, put, delete, metadata, ...]`.
    Sync(RemoteInfo),
    /// `["merge_items", [rows], source_id]`.
    MergeItems(Vec<Row>, Option<String>),
    /// `["merge_syncs", [sync points]]`.
    MergeSyncs(Vec<SyncPoint>),
    /// `["complete_rsync", tmp_name, (db_name)]`.
    CompleteRsync(String, Option<String>),
    /// `["rsync_then_merge", tmp_name, (db_name)]`.
    RsyncThenMerge(String),
    /// `["merge_shard_ranges", [ranges]]`: none here, see the module doc.
    MergeShardRanges(usize),
    /// `["get_shard_ranges"]`.
    GetShardRanges,
}

/// What the sender of a `sync` says about its copy.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteInfo {
    /// Its max_row: the point up to which we are in sync if hashes match.
    pub point: i64,
    pub hash: String,
    pub id: String,
    pub created_at: String,
    pub put_timestamp: String,
    pub delete_timestamp: String,
    /// Its metadata (Swift sends the raw JSON string).
    pub metadata: super::Metadata,
    /// Containers: (status_changed_at, count, storage_policy_index).
    pub policy: Option<(String, i64, i64)>,
}

/// A `REPLICATE` body that is not one of Swift's messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRpc(pub String);

fn text_arg(v: Option<&Value>, what: &str) -> Result<String, BadRpc> {
    match v {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(BadRpc(format!("{what} must be a string"))),
    }
}

fn int_arg(v: Option<&Value>, what: &str) -> Result<i64, BadRpc> {
    match v {
        Some(Value::Number(n)) => {
            n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).ok_or_else(|| BadRpc(format!("{what} must be an integer")))
        }
        Some(Value::String(s)) => s.trim().parse().map_err(|_| BadRpc(format!("{what} must be an integer"))),
        _ => Err(BadRpc(format!("{what} must be an integer"))),
    }
}

/// A temporary file name the sender chose: one path component, no dots
/// leading (it names a file in the device's `tmp`).
fn file_name_arg(v: Option<&Value>, what: &str) -> Result<String, BadRpc> {
    let s = text_arg(v, what)?;
    if s.is_empty() || s.starts_with('.') || s.contains('/') || s.contains('\0') {
        return Err(BadRpc(format!("invalid {what}")));
    }
    Ok(s)
}

/// Decodes a `REPLICATE` body (Swift's `dispatch`: a JSON list, op first).
pub fn parse_rpc(body: &[u8]) -> Result<RpcOp, BadRpc> {
    let v: Value = serde_json::from_slice(body).map_err(|_| BadRpc("Invalid JSON".into()))?;
    let Value::Array(args) = v else { return Err(BadRpc("Invalid object type".into())) };
    let op = args.first().and_then(Value::as_str).ok_or_else(|| BadRpc("Missing op".into()))?;
    let a = |i: usize| args.get(i);
    match op {
        "sync" => {
            if args.len() < 8 {
                return Err(BadRpc("sync needs 7 arguments".into()));
            }
            let metadata = match a(7) {
                Some(Value::String(s)) if !s.is_empty() => super::broker::parse_metadata(s).unwrap_or_else(|e| {
                    crate::log::error(&format!("Unable to decode remote metadata: {e}"));
                    super::Metadata::new()
                }),
                _ => super::Metadata::new(),
            };
            let policy = if args.len() > 10 {
                Some((text_arg(a(8), "status_changed_at")?, int_arg(a(9), "count")?, int_arg(a(10), "storage_policy_index")?))
            } else {
                None
            };
            Ok(RpcOp::Sync(RemoteInfo {
                point: int_arg(a(1), "max_row")?,
                hash: text_arg(a(2), "hash")?,
                id: text_arg(a(3), "id")?,
                created_at: text_arg(a(4), "created_at")?,
                put_timestamp: text_arg(a(5), "put_timestamp")?,
                delete_timestamp: text_arg(a(6), "delete_timestamp")?,
                metadata,
                policy,
            }))
        }
        "merge_items" => {
            let Some(Value::Array(rows)) = a(1) else { return Err(BadRpc("merge_items needs a list of rows".into())) };
            let rows = rows
                .iter()
                .map(|r| r.as_object().cloned().ok_or_else(|| BadRpc("a row must be an object".into())))
                .collect::<Result<Vec<_>, _>>()?;
            let source = match a(2) {
                None | Some(Value::Null) => None,
                v => Some(text_arg(v, "source")?),
            };
            Ok(RpcOp::MergeItems(rows, source))
        }
        "merge_syncs" => {
            let points = a(1).cloned().ok_or_else(|| BadRpc("merge_syncs needs a list".into()))?;
            let points: Vec<SyncPoint> = serde_json::from_value(points).map_err(|e| BadRpc(format!("bad sync points: {e}")))?;
            Ok(RpcOp::MergeSyncs(points))
        }
        "complete_rsync" => {
            let db_name = match a(2) {
                None | Some(Value::Null) => None,
                v => Some(file_name_arg(v, "db name")?),
            };
            Ok(RpcOp::CompleteRsync(file_name_arg(a(1), "tmp name")?, db_name))
        }
        "rsync_then_merge" => Ok(RpcOp::RsyncThenMerge(file_name_arg(a(1), "tmp name")?)),
        "merge_shard_ranges" => match a(1) {
            Some(Value::Array(r)) => Ok(RpcOp::MergeShardRanges(r.len())),
            _ => Err(BadRpc("merge_shard_ranges needs a list".into())),
        },
        "get_shard_ranges" => Ok(RpcOp::GetShardRanges),
        other => Err(BadRpc(format!("Unknown op {other:?}"))),
    }
}

/// The JSON body of a request: `[op, args...]`.
pub fn rpc_body(op: &str, args: Vec<Value>) -> Vec<u8> {
    let mut v = vec![Value::from(op)];
    v.extend(args);
    serde_json::to_vec(&Value::Array(v)).unwrap_or_default()
}

/// How the receiving side answered (the HTTP layer maps it to a status).
#[derive(Debug, Clone, PartialEq)]
pub enum RpcReply {
    /// 200 with this JSON.
    Json(Value),
    /// 202.
    Accepted,
    /// 204.
    NoContent,
    /// 404: no such database (or temporary file).
    NotFound,
    /// 400 with a reason.
    BadRequest(String),
}

/// Where a device's databases of one kind live, for the RPC.
#[derive(Debug, Clone)]
pub struct RpcTarget {
    /// The device's directory (checked: mounted and present).
    pub device_path: PathBuf,
    pub device: String,
    /// `<device_path>/<datadir>/<part>/<suffix>/<hash>/<hash>.db`.
    pub db_file: PathBuf,
}

/// The directory below a device where whole databases arrive, and the
/// path segment that names it in an upload (`REPLICATE /<dev>/tmp/<id>`).
pub const TMP_SEGMENT_NAME: &str = "tmp";

/// The directory on a device where whole databases arrive (Swift's rsync
/// target `<device>/tmp/<id>`).
pub fn tmp_dir(device_path: &Path) -> PathBuf {
    device_path.join(TMP_SEGMENT_NAME)
}

/// Swift's `ReplicatorRpc`, the receiving side, for databases of kind `K`.
/// Blocking: run it on the device's pool.
pub struct ReplicatorRpc;

impl ReplicatorRpc {
    /// Answers one request about `target` (Swift's `dispatch`).
    pub fn dispatch<K: BrokerKind>(target: &RpcTarget, op: RpcOp) -> Result<RpcReply, DbError> {
        match op {
            RpcOp::CompleteRsync(tmp, db_name) => return Self::complete_rsync::<K>(target, &tmp, db_name.as_deref()),
            RpcOp::RsyncThenMerge(tmp) => return Self::rsync_then_merge::<K>(target, &tmp),
            _ => {}
        }
        // Someone may be about to send us a whole database: make sure the
        // directory it goes to exists.
        std::fs::create_dir_all(tmp_dir(&target.device_path))?;
        if !target.db_file.exists() {
            return Ok(RpcReply::NotFound);
        }
        let mut broker = DatabaseBroker::<K>::new(target.db_file.clone());
        match op {
            RpcOp::Sync(remote) => Self::sync(&mut broker, &remote),
            RpcOp::MergeItems(rows, source) => {
                let point = rows.last().and_then(|r| r.get("ROWID")).and_then(Value::as_i64);
                let mut records = Vec::with_capacity(rows.len());
                for row in rows {
                    match serde_json::from_value::<K::Record>(Value::Object(row)) {
                        Ok(r) => records.push(r),
                        Err(e) => return Ok(RpcReply::BadRequest(format!("bad row: {e}"))),
                    }
                }
                let source = match (&source, point) {
                    (Some(id), Some(p)) => Some((id.as_str(), p)),
                    _ => None,
                };
                broker.merge_items(records, source)?;
                Ok(RpcReply::Accepted)
            }
            RpcOp::MergeSyncs(points) => {
                broker.merge_syncs(&points, true)?;
                Ok(RpcReply::Accepted)
            }
            RpcOp::MergeShardRanges(n) => {
                if n > 0 {
                    crate::log::warning(&format!("Ignoring {n} shard ranges for {}: sharding is not supported", target.db_file.display()));
                }
                Ok(RpcReply::Accepted)
            }
            RpcOp::GetShardRanges => Ok(RpcReply::Json(Value::Array(Vec::new()))),
            RpcOp::CompleteRsync(..) | RpcOp::RsyncThenMerge(_) => Ok(RpcReply::NotFound),
        }
    }

    /// Swift's `_handle_sync_request`: takes the sender's metadata and
    /// timestamps, then answers our replication info and our incoming sync
    /// point for the sender (raised to its max_row if the hashes match).
    fn sync<K: BrokerKind>(broker: &mut DatabaseBroker<K>, remote: &RemoteInfo) -> Result<RpcReply, DbError> {
        let mut info = match broker.get_replication_info() {
            Ok(info) => info,
            Err(e) if e.to_string().contains("no such table") => {
                // Swift's rule: moved aside, and the sender is told we have
                // none, so it sends a good copy.
                crate::log::error(&format!("Quarantining DB {}: {e}", broker.db_file().display()));
                let db_file = broker.db_file().to_path_buf();
                super::auditor::quarantine_db(&db_file, K::DB_TYPE)?;
                return Ok(RpcReply::NotFound);
            }
            Err(e) => return Err(e),
        };
        // Containers: take the sender's policy if its replica is the better
        // one (Swift's ContainerReplicatorRpc._get_synced_replication_info).
        if let (Some(local), Some((changed, count, policy))) = (PolicyInfo::from_info(&info), &remote.policy) {
            let theirs = PolicyInfo {
                storage_policy_index: *policy,
                count: *count,
                put_timestamp: Timestamp::parse(&remote.put_timestamp).unwrap_or(Timestamp::ZERO),
                delete_timestamp: Timestamp::parse(&remote.delete_timestamp).unwrap_or(Timestamp::ZERO),
                status_changed_at: Timestamp::parse(changed).unwrap_or(Timestamp::ZERO),
            };
            if incorrect_policy_index(&local, &theirs) {
                adopt_policy(broker, *policy)?;
                info = broker.get_replication_info()?;
            }
        }
        if !remote.metadata.is_empty() {
            broker.update_metadata(&remote.metadata, None)?;
        }
        let s = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        if s("created_at") != remote.created_at
            || s("put_timestamp") != remote.put_timestamp
            || s("delete_timestamp") != remote.delete_timestamp
        {
            broker.merge_timestamps(&remote.created_at, &remote.put_timestamp, &remote.delete_timestamp)?;
        }
        let mut point = broker.get_sync(&remote.id, true)?;
        if s("hash") == remote.hash && point < remote.point {
            broker.merge_syncs(&[SyncPoint { remote_id: remote.id.clone(), sync_point: remote.point }], true)?;
            point = remote.point;
        }
        info.insert("point".into(), Value::from(point));
        Ok(RpcReply::Json(Value::Object(info)))
    }

    /// Swift's `complete_rsync`: a whole database arrived in `tmp/<tmp>`
    /// and we have none: re-id it and move it into place.
    fn complete_rsync<K: BrokerKind>(target: &RpcTarget, tmp: &str, db_name: Option<&str>) -> Result<RpcReply, DbError> {
        let db_file = match (db_name, target.db_file.parent()) {
            (Some(name), Some(dir)) => dir.join(name),
            _ => target.db_file.clone(),
        };
        if db_file.exists() {
            return Ok(RpcReply::NotFound);
        }
        let Some(claimed) = claim(&target.device_path, tmp)? else { return Ok(RpcReply::NotFound) };
        let done = (|| -> Result<(), DbError> {
            DatabaseBroker::<K>::new(claimed.path.clone()).newid(tmp, &target.device, None)?;
            publish(&claimed.path, &db_file)?;
            Ok(())
        })();
        claimed.release();
        done.map(|()| RpcReply::NoContent)
    }

    /// Swift's `rsync_then_merge`: a whole database arrived in `tmp/<tmp>`
    /// and we have one: merge our rows, sync points and metadata into the
    /// new file, then let it replace ours.
    fn rsync_then_merge<K: BrokerKind>(target: &RpcTarget, tmp: &str) -> Result<RpcReply, DbError> {
        if !target.db_file.exists() {
            return Ok(RpcReply::NotFound);
        }
        let Some(claimed) = claim(&target.device_path, tmp)? else { return Ok(RpcReply::NotFound) };
        let done = (|| -> Result<RpcReply, DbError> {
            let mut existing = DatabaseBroker::<K>::new(target.db_file.clone());
            let mut new = DatabaseBroker::<K>::new(claimed.path.clone());
            // The sender's own rows end here: our rows merged in below get
            // higher ROWIDs, which must not count as synced from it.
            let sender_point = new.max_row()?;
            let mut point = -1;
            loop {
                let rows = existing.get_items_since(point, PER_DIFF)?;
                let Some(last) = rows.last().and_then(|r| r.get("ROWID")).and_then(Value::as_i64) else { break };
                // A row of ours that does not decode must not vanish with
                // the file it came from.
                let records = rows
                    .into_iter()
                    .map(|r| serde_json::from_value::<K::Record>(Value::Object(r)))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        DbError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a local row does not decode: {e}")))
                    })?;
                new.merge_items(records, None)?;
                point = last;
            }
            new.merge_syncs(&existing.get_syncs(true)?, true)?;
            new.newid(tmp, &target.device, Some(sender_point))?;
            new.update_metadata(&existing.metadata()?, None)?;
            drop(new);
            drop(existing);
            if !target.db_file.exists() {
                return Ok(RpcReply::NotFound);
            }
            publish(&claimed.path, &target.db_file)?;
            Ok(RpcReply::NoContent)
        })();
        claimed.release();
        done
    }
}

/// An uploaded database taken out of `tmp/<name>` for one RPC, so that a
/// retried upload landing on the same name meanwhile cannot be published
/// in its place, half merged or not re-id'd. Removed when released unless
/// it was published.
struct Claimed {
    path: PathBuf,
}

impl Claimed {
    fn release(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Claims `tmp/<name>` of a device by renaming it to a private name;
/// `None` when there is no such upload.
fn claim(device_path: &Path, name: &str) -> std::io::Result<Option<Claimed>> {
    let dir = tmp_dir(device_path);
    let path = dir.join(format!(".claimed-{name}-{:016x}", rand::random::<u64>()));
    match std::fs::rename(dir.join(name), &path) {
        Ok(()) => Ok(Some(Claimed { path })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Moves a complete database file into place: fsync the file, rename,
/// fsync the directory, so a crash leaves the old state or the new one.
fn publish(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::File::open(from)?.sync_all()?;
    if let Some(dir) = to.parent() {
        create_dir_durable(dir)?;
    }
    std::fs::rename(from, to)?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents, fsyncing the parent of each one
/// created, so the new entries survive a crash along with the file.
fn create_dir_durable(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent)?;
        match std::fs::create_dir(dir) {
            Ok(()) => std::fs::File::open(parent)?.sync_all()?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::broker::db_path;
    use crate::db::container::{ContainerBroker, ContainerKind, ObjectRecord, DATADIR};
    use crate::db::InitParams;

    const HASH: &str = "0123456789abcdef0123456789abcabc";

    fn ts(s: f64) -> Timestamp {
        Timestamp::from_secs_f64(s).unwrap()
    }

    fn new_broker(dev: &Path) -> ContainerBroker {
        let mut b = ContainerBroker::new(db_path(dev, DATADIR, 7, HASH));
        let init = InitParams {
            account: "a".into(),
            container: Some("c".into()),
            put_timestamp: ts(1.0),
            storage_policy_index: 0,
            device: "sda".into(),
        };
        b.initialize(&init).unwrap();
        b
    }

    fn put(b: &mut ContainerBroker, name: &str, t: f64) {
        let r = ObjectRecord {
            name: name.into(),
            created_at: ts(t).internal(),
            size: 3,
            content_type: "text/plain".into(),
            etag: "e".into(),
            deleted: 0,
            storage_policy_index: 0,
            ctype_timestamp: None,
            meta_timestamp: None,
        };
        b.put_object(r).unwrap();
    }

    fn target(dev: &Path) -> RpcTarget {
        RpcTarget { device_path: dev.to_path_buf(), device: "sda".into(), db_file: db_path(dev, DATADIR, 7, HASH) }
    }

    fn info_of(b: &mut ContainerBroker) -> Map<String, Value> {
        b.get_replication_info().unwrap()
    }

    #[test]
    fn sync_points_keep_the_largest() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        assert_eq!(b.get_sync("x", true).unwrap(), -1);
        b.merge_syncs(&[SyncPoint { remote_id: "x".into(), sync_point: 5 }], true).unwrap();
        b.merge_syncs(&[SyncPoint { remote_id: "x".into(), sync_point: 3 }], true).unwrap();
        assert_eq!(b.get_sync("x", true).unwrap(), 5);
        assert_eq!(b.get_sync("x", false).unwrap(), -1);
        b.merge_syncs(&[SyncPoint { remote_id: "y".into(), sync_point: 9 }], false).unwrap();
        assert_eq!(b.get_syncs(false).unwrap(), vec![SyncPoint { remote_id: "y".into(), sync_point: 9 }]);
    }

    #[test]
    fn rows_since_a_point_merge_into_a_replica_with_the_same_hash() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut a = new_broker(d1.path());
        let mut b = new_broker(d2.path());
        for (i, n) in ["o1", "o2", "o3"].iter().enumerate() {
            put(&mut a, n, 10.0 + i as f64);
        }
        let rows = a.get_items_since(-1, 2).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["ROWID"], 1);
        assert_eq!(rows[0]["name"], "o1");
        let rest = a.get_items_since(2, 1000).unwrap();
        assert_eq!(rest.len(), 1);
        let a_id = info_of(&mut a)["id"].as_str().unwrap().to_string();
        for batch in [rows, rest] {
            let point = batch.last().unwrap()["ROWID"].as_i64().unwrap();
            let records = batch.into_iter().map(|r| serde_json::from_value::<ObjectRecord>(Value::Object(r)).unwrap()).collect();
            b.merge_items(records, Some((&a_id, point))).unwrap();
        }
        let (ia, ib) = (info_of(&mut a), info_of(&mut b));
        assert_eq!(ia["hash"], ib["hash"]);
        assert_eq!(ib["count"], 3);
        assert_eq!(b.get_sync(&a_id, true).unwrap(), 3);
    }

    #[test]
    fn replication_info_has_swifts_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        put(&mut b, "o", 2.0);
        let info = info_of(&mut b);
        let mut keys: Vec<&str> = info.keys().map(String::as_str).collect();
        keys.sort();
        let mut want = vec![
            "account",
            "bytes_used",
            "container",
            "count",
            "created_at",
            "db_state",
            "delete_timestamp",
            "hash",
            "id",
            "max_row",
            "metadata",
            "put_timestamp",
            "reported_bytes_used",
            "reported_delete_timestamp",
            "reported_object_count",
            "reported_put_timestamp",
            "shard_max_row",
            "status",
            "status_changed_at",
            "storage_policy_index",
            "x_container_sync_point1",
            "x_container_sync_point2",
        ];
        want.sort();
        assert_eq!(keys, want);
        assert_eq!((info["max_row"].as_i64(), info["count"].as_i64()), (Some(1), Some(1)));
        assert!(info["metadata"].is_string(), "metadata is Swift's raw JSON string");
        let args = sync_args(&info, "container");
        assert_eq!(args.len(), 10);
        assert_eq!(args[0], 1);
    }

    #[test]
    fn bodies_that_are_not_swift_messages_are_refused() {
        assert_eq!(parse_rpc(b"\"arg\"").unwrap_err().0, "Invalid object type");
        assert!(parse_rpc(b"not json").is_err());
        assert!(parse_rpc(b"[]").is_err());
        assert!(parse_rpc(b"[\"unexpected\"]").is_err());
        assert!(parse_rpc(b"[\"sync\", 1]").is_err());
        assert!(parse_rpc(b"[\"merge_items\", [1]]").is_err());
        assert!(parse_rpc(b"[\"merge_syncs\", [{\"remote_id\": 1}]]").is_err());
        assert!(parse_rpc(b"[\"complete_rsync\", \"../x\"]").is_err());
        // Swift's test_replicator_sync arguments (a hash may be a number).
        let op = parse_rpc(br#"["sync", 0, 12345, "id_", "created_at", "put_timestamp", "delete_timestamp", ""]"#).unwrap();
        assert!(matches!(op, RpcOp::Sync(r) if r.hash == "12345" && r.id == "id_" && r.policy.is_none()));
        let body = rpc_body("merge_syncs", vec![serde_json::json!([{"remote_id": "r", "sync_point": 4}])]);
        assert_eq!(parse_rpc(&body).unwrap(), RpcOp::MergeSyncs(vec![SyncPoint { remote_id: "r".into(), sync_point: 4 }]));
    }

    #[test]
    fn sync_answers_404_for_a_missing_db_and_info_with_the_point_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path());
        let remote = RemoteInfo {
            point: 1,
            hash: "x".into(),
            id: "remote".into(),
            created_at: ts(0.5).internal(),
            put_timestamp: ts(3.0).internal(),
            delete_timestamp: "0".into(),
            metadata: [("X-Container-Meta-K".to_string(), ("v".to_string(), ts(3.0).internal()))].into_iter().collect(),
            policy: None,
        };
        assert_eq!(ReplicatorRpc::dispatch::<ContainerKind>(&t, RpcOp::Sync(remote.clone())).unwrap(), RpcReply::NotFound);
        assert!(dir.path().join("tmp").is_dir(), "the tmp dir is made for an upload to come");
        let mut b = new_broker(dir.path());
        let RpcReply::Json(info) = ReplicatorRpc::dispatch::<ContainerKind>(&t, RpcOp::Sync(remote.clone())).unwrap() else { panic!() };
        assert_eq!(info["point"], -1);
        let after = info_of(&mut b);
        assert_eq!(after["put_timestamp"], ts(3.0).internal(), "the newer put timestamp was merged");
        assert_eq!(after["created_at"], ts(0.5).internal(), "the older created_at was merged");
        assert_eq!(b.metadata().unwrap()["X-Container-Meta-K"].0, "v");
        // Same hash: the sender's max_row becomes our incoming sync point.
        let same = RemoteInfo { hash: after["hash"].as_str().unwrap().into(), ..remote };
        let RpcReply::Json(info) = ReplicatorRpc::dispatch::<ContainerKind>(&t, RpcOp::Sync(same)).unwrap() else { panic!() };
        assert_eq!(info["point"], 1);
    }

    #[test]
    fn a_whole_db_is_completed_or_merged() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut a = new_broker(d1.path());
        put(&mut a, "o1", 2.0);
        a.commit_pending().unwrap();
        let a_id = info_of(&mut a)["id"].as_str().unwrap().to_string();
        let t = target(d2.path());
        std::fs::create_dir_all(d2.path().join("tmp")).unwrap();
        std::fs::copy(a.db_file(), d2.path().join("tmp").join(&a_id)).unwrap();
        let op = RpcOp::CompleteRsync(a_id.clone(), Some(format!("{HASH}.db")));
        assert_eq!(ReplicatorRpc::dispatch::<ContainerKind>(&t, op.clone()).unwrap(), RpcReply::NoContent);
        let mut b = ContainerBroker::new(t.db_file.clone());
        let ib = info_of(&mut b);
        assert_ne!(ib["id"], a_id.as_str(), "a copy gets its own id");
        assert_eq!(ib["hash"], info_of(&mut a)["hash"]);
        assert_eq!(b.get_sync(&a_id, true).unwrap(), 1);
        // A second copy finds the database there: 404, as Swift.
        std::fs::copy(a.db_file(), d2.path().join("tmp").join(&a_id)).unwrap();
        assert_eq!(ReplicatorRpc::dispatch::<ContainerKind>(&t, op).unwrap(), RpcReply::NotFound);
        // rsync_then_merge keeps the rows only the receiver had.
        put(&mut b, "only-on-b", 3.0);
        put(&mut a, "o2", 4.0);
        a.commit_pending().unwrap();
        std::fs::copy(a.db_file(), d2.path().join("tmp").join(&a_id)).unwrap();
        assert_eq!(ReplicatorRpc::dispatch::<ContainerKind>(&t, RpcOp::RsyncThenMerge(a_id.clone())).unwrap(), RpcReply::NoContent);
        let mut b = ContainerBroker::new(t.db_file.clone());
        assert_eq!(info_of(&mut b)["count"], 3);
    }

    fn pinfo(policy: i64, count: i64, put: f64, delete: f64, changed: f64) -> PolicyInfo {
        let t = |s: f64| if s == 0.0 { Timestamp::ZERO } else { ts(s) };
        PolicyInfo {
            storage_policy_index: policy,
            count,
            put_timestamp: t(put),
            delete_timestamp: t(delete),
            status_changed_at: t(changed),
        }
    }

    #[test]
    fn the_better_replica_decides_the_policy_as_in_swift() {
        // Same policy: nothing to do.
        assert!(!incorrect_policy_index(&pinfo(0, 0, 1.0, 0.0, 1.0), &pinfo(0, 0, 2.0, 0.0, 2.0)));
        // A live replica beats a deleted one.
        assert!(incorrect_policy_index(&pinfo(0, 0, 1.0, 2.0, 2.0), &pinfo(1, 0, 3.0, 0.0, 3.0)));
        assert!(!incorrect_policy_index(&pinfo(0, 0, 3.0, 0.0, 3.0), &pinfo(1, 0, 1.0, 2.0, 2.0)));
        // Neither deleted nor recreated: the oldest status change wins.
        assert!(incorrect_policy_index(&pinfo(0, 0, 2.0, 0.0, 2.0), &pinfo(1, 0, 1.0, 0.0, 1.0)));
        assert!(!incorrect_policy_index(&pinfo(0, 0, 1.0, 0.0, 1.0), &pinfo(1, 0, 2.0, 0.0, 2.0)));
        // Both recreated: the one put after the last delete wins.
        assert!(incorrect_policy_index(&pinfo(0, 0, 5.0, 4.0, 5.0), &pinfo(1, 0, 7.0, 6.0, 7.0)));
        // A recreated replica beats one that never was deleted.
        assert!(incorrect_policy_index(&pinfo(0, 0, 1.0, 0.0, 1.0), &pinfo(1, 0, 7.0, 6.0, 7.0)));
        assert!(!incorrect_policy_index(&pinfo(0, 0, 7.0, 6.0, 7.0), &pinfo(1, 0, 1.0, 0.0, 1.0)));
    }

    #[test]
    fn a_sync_from_the_better_replica_moves_the_container_to_its_policy() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        let info = info_of(&mut b);
        let remote = RemoteInfo {
            point: -1,
            hash: "x".into(),
            id: "remote".into(),
            created_at: info["created_at"].as_str().unwrap().into(),
            put_timestamp: info["put_timestamp"].as_str().unwrap().into(),
            delete_timestamp: "0".into(),
            metadata: Default::default(),
            // Changed status long before ours: the older one wins.
            policy: Some((ts(0.5).internal(), 0, 1)),
        };
        let RpcReply::Json(reply) = ReplicatorRpc::dispatch::<ContainerKind>(&target(dir.path()), RpcOp::Sync(remote)).unwrap() else {
            panic!()
        };
        assert_eq!(reply["storage_policy_index"], 1);
        assert_eq!(info_of(&mut b)["storage_policy_index"], 1);
    }

    #[test]
    fn a_db_without_its_tables_is_quarantined_and_answered_404() {
        let dir = tempfile::tempdir().unwrap();
        let t = target(dir.path());
        std::fs::create_dir_all(t.db_file.parent().unwrap()).unwrap();
        rusqlite::Connection::open(&t.db_file).unwrap().execute_batch("CREATE TABLE other (x);").unwrap();
        let op = parse_rpc(br#"["sync", 0, "x", "peer", "0", "0", "0", ""]"#).unwrap();
        assert_eq!(ReplicatorRpc::dispatch::<ContainerKind>(&t, op).unwrap(), RpcReply::NotFound);
        assert!(!t.db_file.exists());
        assert!(dir.path().join("quarantined/containers").join(HASH).join(format!("{HASH}.db")).exists());
    }

    #[test]
    fn only_an_old_deleted_empty_db_is_reclaimable() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        assert!(!b.is_reclaimable(100.0, 10.0).unwrap());
        b.delete_db(&ts(50.0)).unwrap();
        assert!(b.is_reclaimable(100.0, 10.0).unwrap());
        assert!(!b.is_reclaimable(55.0, 10.0).unwrap());
    }
}
