//! The container database (Swift's `swift/container/backend.py`): the
//! `object` rows, per-policy counts kept by triggers, the `container_info`
//! row and the `container_stat` compatibility view, object updates with
//! Swift's three timestamps, and object listings.

use super::broker::{timestamp_or_zero, BrokerKind, DatabaseBroker, DbError, InitParams, SQLITE_ARG_LIMIT};
use super::listing::{self, ListingItem, ListingParams};
use crate::log;
use crate::timestamp::{decode_timestamps, encode_timestamps, Timestamp};
use rusqlite::{params_from_iter, Connection, OptionalExtension, Transaction};
use std::collections::{HashMap, HashSet};

/// The directory of container databases on a device.
pub const DATADIR: &str = "containers";

/// One object update, as appended to the pending file (Swift's pending
/// tuple: name, created_at, size, content_type, etag, deleted,
/// storage_policy_index, ctype_timestamp, meta_timestamp).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectRecord {
    pub name: String,
    /// The data timestamp (internal form), or an encode_timestamps triple.
    pub created_at: String,
    pub size: i64,
    pub content_type: String,
    pub etag: String,
    /// 1 for a tombstone.
    pub deleted: i64,
    pub storage_policy_index: i64,
    /// When the content type last changed, if not the data timestamp.
    #[serde(default)]
    pub ctype_timestamp: Option<String>,
    /// When the object metadata last changed, if not the data timestamp.
    #[serde(default)]
    pub meta_timestamp: Option<String>,
}

/// An object row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    pub name: String,
    /// encode_timestamps(data, content-type, meta).
    pub created_at: String,
    pub size: i64,
    pub content_type: String,
    pub etag: String,
    pub deleted: i64,
    pub storage_policy_index: i64,
}

/// The container's info row joined with its policy's counts (Swift's
/// `get_info`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    pub account: String,
    pub container: String,
    pub created_at: String,
    pub put_timestamp: String,
    pub delete_timestamp: String,
    pub status: String,
    pub status_changed_at: String,
    pub object_count: i64,
    pub bytes_used: i64,
    pub reported_put_timestamp: String,
    pub reported_delete_timestamp: String,
    pub reported_object_count: i64,
    pub reported_bytes_used: i64,
    pub hash: String,
    pub id: String,
    pub x_container_sync_point1: i64,
    pub x_container_sync_point2: i64,
    pub storage_policy_index: i64,
}

impl ContainerInfo {
    /// Swift's `_is_deleted_info`: no objects and deleted after the last PUT.
    pub fn is_deleted(&self) -> bool {
        is_deleted_info(self.object_count, &self.put_timestamp, &self.delete_timestamp)
    }
}

fn is_deleted_info(object_count: i64, put: &str, delete: &str) -> bool {
    object_count == 0 && timestamp_or_zero(delete) > timestamp_or_zero(put)
}

/// Splits a `swift_bytes=N` parameter off a content type, re-joining the
/// other parameters as Swift's `extract_swift_bytes` does (`;k=v`).
pub fn extract_swift_bytes(content_type: &str) -> (String, Option<String>) {
    let Some((base, params)) = content_type.split_once(';') else {
        return (content_type.to_string(), None);
    };
    let mut out = base.to_string();
    let mut swift_bytes = None;
    for p in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').map(|(k, v)| (k.trim(), v.trim())).unwrap_or((p, ""));
        if k == "swift_bytes" {
            swift_bytes = Some(v.to_string());
        } else {
            out.push_str(&format!(";{k}={v}"));
        }
    }
    (out, swift_bytes)
}

/// An update being merged, with its original data timestamp kept apart
/// from the encoded `created_at` it ends up with.
struct MergeItem {
    record: ObjectRecord,
    data_timestamp: String,
}

/// Swift's `update_new_item_from_existing`: takes the newer of each of the
/// three parts (data: size/etag/deleted; content type; metadata time) from
/// `existing`, encodes the winning timestamps into `created_at`, and says
/// whether the update is newer in any part.
fn update_from_existing(item: &mut MergeItem, existing: Option<&ObjectRow>) -> Result<bool, String> {
    let bad = |e: crate::timestamp::TimestampError| e.to_string();
    let (mut d, mut c, mut m) = decode_timestamps(&item.data_timestamp).map_err(bad)?;
    if let Some(ct) = item.record.ctype_timestamp.as_deref().filter(|s| !s.is_empty()) {
        c = Timestamp::parse(ct).map_err(bad)?;
        m = c;
    }
    if let Some(mt) = item.record.meta_timestamp.as_deref().filter(|s| !s.is_empty()) {
        m = Timestamp::parse(mt).map_err(bad)?;
    }
    let Some(ex) = existing else {
        item.record.created_at = encode_timestamps(d, Some(c), Some(m));
        return Ok(true);
    };
    let (rd, rc, rm) = decode_timestamps(&ex.created_at).map_err(bad)?;
    // swift_bytes belongs with the data timestamp, the rest of the content
    // type with the content-type timestamp: the same column holds both.
    let (item_ct, mut swift_bytes) = extract_swift_bytes(&item.record.content_type);
    let (ex_ct, ex_swift_bytes) = extract_swift_bytes(&ex.content_type);
    item.record.content_type = item_ct;
    let mut newer = [true; 3];
    if rd >= d {
        item.record.size = ex.size;
        item.record.etag = ex.etag.clone();
        item.record.deleted = ex.deleted;
        swift_bytes = ex_swift_bytes;
        d = rd;
        newer[0] = false;
    }
    if rc >= c {
        item.record.content_type = ex_ct;
        c = rc;
        newer[1] = false;
    }
    if rm >= m {
        m = rm;
        newer[2] = false;
    }
    item.record.created_at = encode_timestamps(d, Some(c), Some(m));
    if let Some(sb) = swift_bytes {
        item.record.content_type.push_str(&format!(";swift_bytes={sb}"));
    }
    Ok(newer.iter().any(|n| *n))
}

impl MergeItem {
    fn as_row(&self) -> ObjectRow {
        let r = &self.record;
        ObjectRow {
            name: r.name.clone(),
            created_at: r.created_at.clone(),
            size: r.size,
            content_type: r.content_type.clone(),
            etag: r.etag.clone(),
            deleted: r.deleted,
            storage_policy_index: r.storage_policy_index,
        }
    }
}

/// The container flavour of [`DatabaseBroker`].
pub struct ContainerKind;

/// A container database.
pub type ContainerBroker = DatabaseBroker<ContainerKind>;

impl BrokerKind for ContainerKind {
    const DB_TYPE: &'static str = "container";
    const CONTAINS_TYPE: &'static str = "object";
    const INFO_TABLE: &'static str = "container_info";
    const RECLAIM_TIMESTAMP_COLUMN: &'static str = "created_at";
    type Record = ObjectRecord;

    fn create_schema(conn: &Connection, init: &InitParams, created_at: Timestamp, id: &str) -> rusqlite::Result<()> {
        conn.execute_batch(OBJECT_TABLE_SCRIPT)?;
        conn.execute_batch(POLICY_STAT_SCRIPT)?;
        conn.execute("INSERT INTO policy_stat (storage_policy_index) VALUES (?1)", [init.storage_policy_index])?;
        conn.execute_batch(CONTAINER_INFO_SCRIPT)?;
        let put = init.put_timestamp.internal();
        conn.execute(
            "INSERT INTO container_info (account, container, created_at, id, put_timestamp, status_changed_at, \
             storage_policy_index) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
            rusqlite::params![
                init.account,
                init.container.as_deref().unwrap_or(""),
                created_at.internal(),
                id,
                put,
                init.storage_policy_index
            ],
        )?;
        conn.execute_batch(SHARD_RANGE_SCRIPT)?;
        Ok(())
    }

    fn merge_records(tx: &Transaction, records: Vec<ObjectRecord>) -> Result<(), DbError> {
        // The rows already stored for these names, fetched in chunks under
        // SQLite's parameter limit.
        let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect::<HashSet<_>>().into_iter().collect();
        let mut existing: HashMap<(String, i64), ObjectRow> = HashMap::new();
        for chunk in names.chunks(SQLITE_ARG_LIMIT) {
            let sql = format!(
                "SELECT name, created_at, size, content_type, etag, deleted, storage_policy_index FROM object \
                 WHERE deleted IN (0, 1) AND name IN ({})",
                vec!["?"; chunk.len()].join(",")
            );
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map(params_from_iter(chunk.iter()), read_row)?;
            for row in rows {
                let row = row?;
                existing.insert((row.name.clone(), row.storage_policy_index), row);
            }
        }
        let mut to_delete: HashSet<(String, i64)> = HashSet::new();
        let mut order: Vec<(String, i64)> = Vec::new();
        let mut to_add: HashMap<(String, i64), MergeItem> = HashMap::new();
        for record in records {
            let ident = (record.name.clone(), record.storage_policy_index);
            let mut item = MergeItem { data_timestamp: record.created_at.clone(), record };
            let newer = match update_from_existing(&mut item, existing.get(&ident)) {
                Ok(n) => n,
                Err(e) => {
                    log::error(&format!("Invalid object update for {:?}: {e}", ident.0));
                    continue;
                }
            };
            if !newer {
                continue;
            }
            if existing.contains_key(&ident) {
                to_delete.insert(ident.clone());
            }
            if let Some(prev) = to_add.get(&ident) {
                // Two updates of one object in this batch: fold them.
                let prev = prev.as_row();
                if let Err(e) = update_from_existing(&mut item, Some(&prev)) {
                    log::error(&format!("Invalid object update for {:?}: {e}", ident.0));
                    continue;
                }
            } else {
                order.push(ident.clone());
            }
            to_add.insert(ident, item);
        }
        if !to_delete.is_empty() {
            let mut stmt = tx.prepare("DELETE FROM object WHERE deleted IN (0, 1) AND name = ?1 AND storage_policy_index = ?2")?;
            for (name, policy) in &to_delete {
                stmt.execute(rusqlite::params![name, policy])?;
            }
        }
        if !order.is_empty() {
            let mut stmt = tx.prepare(
                "INSERT INTO object (name, created_at, size, content_type, etag, deleted, storage_policy_index) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for ident in &order {
                let r = &to_add[ident].record;
                stmt.execute(rusqlite::params![r.name, r.created_at, r.size, r.content_type, r.etag, r.deleted, r.storage_policy_index])?;
            }
        }
        Ok(())
    }

    fn is_deleted(conn: &Connection) -> Result<bool, DbError> {
        let (put, delete, count): (String, String, i64) =
            conn.query_row("SELECT put_timestamp, delete_timestamp, object_count FROM container_stat", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<i64>>(2)?.unwrap_or(0)))
            })?;
        Ok(is_deleted_info(count, &put, &delete))
    }
}

fn read_row(r: &rusqlite::Row) -> rusqlite::Result<ObjectRow> {
    Ok(ObjectRow {
        name: r.get(0)?,
        created_at: r.get(1)?,
        size: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
        content_type: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
        etag: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        deleted: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
        storage_policy_index: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
    })
}

/// An object row of a listing: the name, the last-modified timestamp (the
/// metadata timestamp of the row, internal form), size, content type and
/// etag (Swift's `_transform_record`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub last_modified: Timestamp,
    pub size: i64,
    pub content_type: String,
    pub etag: String,
}

impl DatabaseBroker<ContainerKind> {
    /// Records an object update (Swift's `put_object`): appended to the
    /// pending file, merged into SQLite later.
    pub fn put_object(&mut self, record: ObjectRecord) -> Result<(), DbError> {
        self.put_record(record)
    }

    /// Records an object tombstone at `timestamp`.
    pub fn delete_object(&mut self, name: &str, timestamp: &Timestamp, storage_policy_index: i64) -> Result<(), DbError> {
        self.put_record(ObjectRecord {
            name: name.to_string(),
            created_at: timestamp.internal(),
            size: 0,
            content_type: "application/deleted".to_string(),
            etag: "noetag".to_string(),
            deleted: 1,
            storage_policy_index,
            ctype_timestamp: None,
            meta_timestamp: None,
        })
    }

    /// The container's info, pending updates merged first.
    pub fn get_info(&mut self) -> Result<ContainerInfo, DbError> {
        self.commit_pending()?;
        let conn = self.conn()?;
        let info = conn.query_row(
            "SELECT account, container, created_at, put_timestamp, delete_timestamp, status, status_changed_at, \
             object_count, bytes_used, reported_put_timestamp, reported_delete_timestamp, reported_object_count, \
             reported_bytes_used, hash, id, x_container_sync_point1, x_container_sync_point2, storage_policy_index \
             FROM container_stat",
            [],
            |r| {
                let s = |i: usize| -> rusqlite::Result<String> { Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default()) };
                let n = |i: usize| -> rusqlite::Result<i64> { Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0)) };
                Ok(ContainerInfo {
                    account: s(0)?,
                    container: s(1)?,
                    created_at: s(2)?,
                    put_timestamp: s(3)?,
                    delete_timestamp: s(4)?,
                    status: s(5)?,
                    status_changed_at: s(6)?,
                    object_count: n(7)?,
                    bytes_used: n(8)?,
                    reported_put_timestamp: s(9)?,
                    reported_delete_timestamp: s(10)?,
                    reported_object_count: n(11)?,
                    reported_bytes_used: n(12)?,
                    hash: s(13)?,
                    id: s(14)?,
                    x_container_sync_point1: n(15)?,
                    x_container_sync_point2: n(16)?,
                    storage_policy_index: n(17)?,
                })
            },
        )?;
        Ok(info)
    }

    /// The info and whether the container counts as deleted; a missing
    /// database is deleted with default (zero) info.
    pub fn get_info_is_deleted(&mut self) -> Result<(ContainerInfo, bool), DbError> {
        if !self.exists() {
            return Ok((ContainerInfo::default(), true));
        }
        let info = self.get_info()?;
        let deleted = info.is_deleted();
        Ok((info, deleted))
    }

    /// Whether no policy holds a live object (Swift's `empty`, stricter
    /// than `is_deleted`, which looks at the container's own policy only).
    pub fn empty(&mut self) -> Result<bool, DbError> {
        self.commit_pending()?;
        let max: Option<i64> = self.conn()?.query_row("SELECT max(object_count) FROM policy_stat", [], |r| r.get(0))?;
        Ok(max.unwrap_or(0) <= 0)
    }

    /// The storage policy index of the container.
    pub fn storage_policy_index(&mut self) -> Result<i64, DbError> {
        Ok(self.conn()?.query_row("SELECT storage_policy_index FROM container_info", [], |r| r.get(0))?)
    }

    /// Moves the container to `policy` (a re-created container may change
    /// policy), raising `status_changed_at` to `timestamp`.
    pub fn set_storage_policy_index(&mut self, policy: i64, timestamp: &Timestamp) -> Result<(), DbError> {
        let conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute("INSERT OR IGNORE INTO policy_stat (storage_policy_index) VALUES (?1)", [policy])?;
        tx.execute(
            "UPDATE container_info SET storage_policy_index = ?1, status_changed_at = MAX(?2, status_changed_at) \
             WHERE storage_policy_index <> ?1",
            rusqlite::params![policy, timestamp.internal()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Resets the container-sync points (when `X-Container-Sync-To` changes).
    pub fn set_x_container_sync_points(&mut self, point1: i64, point2: i64) -> Result<(), DbError> {
        self.conn()?.execute("UPDATE container_info SET x_container_sync_point1 = ?1, x_container_sync_point2 = ?2", [point1, point2])?;
        Ok(())
    }

    /// Records what was last reported to the account (the updater's mark).
    pub fn reported(&mut self, put: &str, delete: &str, object_count: i64, bytes_used: i64) -> Result<(), DbError> {
        self.conn()?.execute(
            "UPDATE container_info SET reported_put_timestamp = ?1, reported_delete_timestamp = ?2, \
             reported_object_count = ?3, reported_bytes_used = ?4",
            rusqlite::params![put, delete, object_count, bytes_used],
        )?;
        Ok(())
    }

    /// One stored row by name and policy, tombstones included.
    pub fn get_object_row(&mut self, name: &str, storage_policy_index: i64) -> Result<Option<ObjectRow>, DbError> {
        self.commit_pending()?;
        Ok(self
            .conn()?
            .query_row(
                "SELECT name, created_at, size, content_type, etag, deleted, storage_policy_index FROM object \
                 WHERE name = ?1 AND storage_policy_index = ?2",
                rusqlite::params![name, storage_policy_index],
                read_row,
            )
            .optional()?)
    }

    /// Lists the live objects of `storage_policy_index` (Swift's
    /// `list_objects_iter`), pending updates merged first.
    pub fn list_objects(&mut self, params: &ListingParams, storage_policy_index: i64) -> Result<Vec<ListingItem<ListedObject>>, DbError> {
        self.commit_pending()?;
        let conn = self.conn()?;
        listing::list(params, |page| -> Result<Vec<(String, ListedObject)>, DbError> {
            let (mut conds, args) = page.conditions();
            conds.push("deleted = 0");
            conds.push("storage_policy_index = ?");
            let sql = format!(
                "SELECT name, created_at, size, content_type, etag FROM object WHERE {} ORDER BY name {} LIMIT {}",
                conds.join(" AND "),
                if page.reverse { "DESC" } else { "" },
                page.limit
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut out = Vec::new();
            let mut values: Vec<rusqlite::types::Value> = args.into_iter().map(rusqlite::types::Value::Text).collect();
            values.push(rusqlite::types::Value::Integer(storage_policy_index));
            let mut rows = stmt.query(params_from_iter(values.iter()))?;
            while let Some(r) = rows.next()? {
                let name: String = r.get(0)?;
                let created_at: String = r.get::<_, Option<String>>(1)?.unwrap_or_default();
                let last_modified = decode_timestamps(&created_at).map(|(_, _, m)| m).unwrap_or(Timestamp::ZERO);
                out.push((
                    name,
                    ListedObject {
                        last_modified,
                        size: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                        content_type: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        etag: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    },
                ));
            }
            Ok(out)
        })
    }
}

const OBJECT_TABLE_SCRIPT: &str = "
    CREATE TABLE object (
        ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT,
        created_at TEXT,
        size INTEGER,
        content_type TEXT,
        etag TEXT,
        deleted INTEGER DEFAULT 0,
        storage_policy_index INTEGER DEFAULT 0
    );
    CREATE INDEX ix_object_deleted_name ON object (deleted, name);
    CREATE TRIGGER object_update BEFORE UPDATE ON object
    BEGIN
        SELECT RAISE(FAIL, 'UPDATE not allowed; DELETE and INSERT');
    END;
    CREATE TRIGGER object_insert_policy_stat AFTER INSERT ON object
    BEGIN
        UPDATE policy_stat
        SET object_count = object_count + (1 - new.deleted),
            bytes_used = bytes_used + new.size
        WHERE storage_policy_index = new.storage_policy_index;
        INSERT INTO policy_stat (storage_policy_index, object_count, bytes_used)
        SELECT new.storage_policy_index, (1 - new.deleted), new.size
        WHERE NOT EXISTS(
            SELECT changes() as change FROM policy_stat WHERE change <> 0
        );
        UPDATE container_info SET hash = chexor(hash, new.name, new.created_at);
    END;
    CREATE TRIGGER object_delete_policy_stat AFTER DELETE ON object
    BEGIN
        UPDATE policy_stat
        SET object_count = object_count - (1 - old.deleted),
            bytes_used = bytes_used - old.size
        WHERE storage_policy_index = old.storage_policy_index;
        UPDATE container_info SET hash = chexor(hash, old.name, old.created_at);
    END;
";

const POLICY_STAT_SCRIPT: &str = "
    CREATE TABLE policy_stat (
        storage_policy_index INTEGER PRIMARY KEY,
        object_count INTEGER DEFAULT 0,
        bytes_used INTEGER DEFAULT 0
    );
";

const CONTAINER_INFO_SCRIPT: &str = "
    CREATE TABLE container_info (
        account TEXT,
        container TEXT,
        created_at TEXT,
        put_timestamp TEXT DEFAULT '0',
        delete_timestamp TEXT DEFAULT '0',
        reported_put_timestamp TEXT DEFAULT '0',
        reported_delete_timestamp TEXT DEFAULT '0',
        reported_object_count INTEGER DEFAULT 0,
        reported_bytes_used INTEGER DEFAULT 0,
        hash TEXT default '00000000000000000000000000000000',
        id TEXT,
        status TEXT DEFAULT '',
        status_changed_at TEXT DEFAULT '0',
        metadata TEXT DEFAULT '',
        x_container_sync_point1 INTEGER DEFAULT -1,
        x_container_sync_point2 INTEGER DEFAULT -1,
        storage_policy_index INTEGER DEFAULT 0,
        reconciler_sync_point INTEGER DEFAULT -1
    );
    CREATE VIEW container_stat
    AS SELECT ci.account, ci.container, ci.created_at,
        ci.put_timestamp, ci.delete_timestamp,
        ci.reported_put_timestamp, ci.reported_delete_timestamp,
        ci.reported_object_count, ci.reported_bytes_used, ci.hash,
        ci.id, ci.status, ci.status_changed_at, ci.metadata,
        ci.x_container_sync_point1, ci.x_container_sync_point2,
        ci.reconciler_sync_point,
        ci.storage_policy_index,
        coalesce(ps.object_count, 0) AS object_count,
        coalesce(ps.bytes_used, 0) AS bytes_used
    FROM container_info ci LEFT JOIN policy_stat ps
    ON ci.storage_policy_index = ps.storage_policy_index;
    CREATE TRIGGER container_stat_update
    INSTEAD OF UPDATE ON container_stat
    BEGIN
        UPDATE container_info
        SET account = NEW.account,
            container = NEW.container,
            created_at = NEW.created_at,
            put_timestamp = NEW.put_timestamp,
            delete_timestamp = NEW.delete_timestamp,
            reported_put_timestamp = NEW.reported_put_timestamp,
            reported_delete_timestamp = NEW.reported_delete_timestamp,
            reported_object_count = NEW.reported_object_count,
            reported_bytes_used = NEW.reported_bytes_used,
            hash = NEW.hash,
            id = NEW.id,
            status = NEW.status,
            status_changed_at = NEW.status_changed_at,
            metadata = NEW.metadata,
            x_container_sync_point1 = NEW.x_container_sync_point1,
            x_container_sync_point2 = NEW.x_container_sync_point2,
            storage_policy_index = NEW.storage_policy_index,
            reconciler_sync_point = NEW.reconciler_sync_point;
    END;
";

/// Sharding is not implemented, but Swift's schema has the table, so a
/// database we create can be read by Swift's tools.
const SHARD_RANGE_SCRIPT: &str = "
    CREATE TABLE shard_range (
        ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT,
        timestamp TEXT,
        lower TEXT,
        upper TEXT,
        object_count INTEGER DEFAULT 0,
        bytes_used INTEGER DEFAULT 0,
        meta_timestamp TEXT,
        deleted INTEGER DEFAULT 0,
        state INTEGER,
        state_timestamp TEXT,
        epoch TEXT,
        reported INTEGER DEFAULT 0,
        tombstones INTEGER DEFAULT -1
    );
    CREATE TRIGGER shard_range_update BEFORE UPDATE ON shard_range
    BEGIN
        SELECT RAISE(FAIL, 'UPDATE not allowed; DELETE and INSERT');
    END;
";

#[cfg(test)]
mod tests {
    use super::super::broker::{Metadata, MetadataLimits};
    use super::*;

    fn ts(s: f64) -> Timestamp {
        Timestamp::from_secs_f64(s).unwrap()
    }

    fn new_broker(dir: &std::path::Path) -> ContainerBroker {
        let path = super::super::broker::db_path(dir, DATADIR, 7, "0123456789abcdef0123456789abcabc");
        let mut b = ContainerBroker::new(path);
        b.initialize(&InitParams {
            account: "a".into(),
            container: Some("c".into()),
            put_timestamp: ts(1.0),
            storage_policy_index: 0,
            device: "sda".into(),
        })
        .unwrap();
        b
    }

    fn put(b: &mut ContainerBroker, name: &str, t: f64, size: i64) {
        b.put_object(ObjectRecord {
            name: name.into(),
            created_at: ts(t).internal(),
            size,
            content_type: "text/plain".into(),
            etag: "e".into(),
            deleted: 0,
            storage_policy_index: 0,
            ctype_timestamp: None,
            meta_timestamp: None,
        })
        .unwrap();
    }

    #[test]
    fn updates_wait_in_the_pending_file_until_a_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        assert!(b.db_file().ends_with("containers/7/abc/0123456789abcdef0123456789abcabc/0123456789abcdef0123456789abcabc.db"));
        put(&mut b, "o1", 2.0, 10);
        put(&mut b, "o2", 2.0, 5);
        assert!(std::fs::metadata(b.pending_file()).unwrap().len() > 0);
        let info = b.get_info().unwrap();
        assert_eq!((info.object_count, info.bytes_used), (2, 15));
        assert_eq!(std::fs::metadata(b.pending_file()).unwrap().len(), 0);
        assert_ne!(info.hash, "0".repeat(32));
        // Older update loses; newer delete wins and counts drop.
        put(&mut b, "o1", 1.5, 99);
        b.delete_object("o2", &ts(3.0), 0).unwrap();
        let info = b.get_info().unwrap();
        assert_eq!((info.object_count, info.bytes_used), (1, 10));
        assert!(!b.empty().unwrap());
        b.delete_object("o1", &ts(3.0), 0).unwrap();
        assert!(b.empty().unwrap());
    }

    #[test]
    fn a_full_pending_file_is_merged_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        let mut i = 0;
        while std::fs::metadata(b.pending_file()).map(|m| m.len()).unwrap_or(0) <= super::super::pending::PENDING_CAP {
            put(&mut b, &format!("o{i}"), 2.0, 1);
            i += 1;
        }
        put(&mut b, "last", 2.0, 1);
        assert_eq!(std::fs::metadata(b.pending_file()).unwrap().len(), 0);
        let mut reader = ContainerBroker::new(b.db_file().to_path_buf());
        assert_eq!(reader.get_info().unwrap().object_count, i + 1);
    }

    #[test]
    fn content_type_and_meta_timestamps_merge_separately() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        put(&mut b, "o", 2.0, 10);
        // A POST at t=4 changing the content type, then a late data update
        // from t=3: the newer data wins size, the newer content type stays.
        b.put_object(ObjectRecord {
            name: "o".into(),
            created_at: ts(2.0).internal(),
            size: 10,
            content_type: "image/png".into(),
            etag: "e".into(),
            deleted: 0,
            storage_policy_index: 0,
            ctype_timestamp: Some(ts(4.0).internal()),
            meta_timestamp: Some(ts(4.0).internal()),
        })
        .unwrap();
        put(&mut b, "o", 3.0, 20);
        let row = b.get_object_row("o", 0).unwrap().unwrap();
        assert_eq!(row.size, 20);
        assert_eq!(row.content_type, "image/png");
        assert_eq!(row.created_at, encode_timestamps(ts(3.0), Some(ts(4.0)), Some(ts(4.0))));
    }

    #[test]
    fn delete_and_revive_follow_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        assert!(!b.is_deleted().unwrap());
        b.delete_db(&ts(2.0)).unwrap();
        assert!(b.is_deleted().unwrap());
        b.update_put_timestamp(&ts(3.0)).unwrap();
        assert!(!b.is_deleted().unwrap());
        let info = b.get_info().unwrap();
        assert_eq!(info.put_timestamp, ts(3.0).internal());
        assert_eq!(info.status, "DELETED");
    }

    #[test]
    fn metadata_keeps_per_key_timestamps_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        let mut up = Metadata::new();
        up.insert("X-Container-Meta-A".into(), ("1".into(), ts(2.0).internal()));
        b.update_metadata(&up, None).unwrap();
        up.insert("X-Container-Meta-A".into(), ("0".into(), ts(1.0).internal()));
        b.update_metadata(&up, None).unwrap();
        assert_eq!(b.metadata().unwrap()["X-Container-Meta-A"].0, "1");
        let limits = MetadataLimits { max_count: 1, max_overall_size: 100 };
        let mut up2 = Metadata::new();
        up2.insert("X-Container-Meta-B".into(), ("1".into(), ts(3.0).internal()));
        assert!(matches!(b.update_metadata(&up2, Some(limits)), Err(DbError::InvalidMetadata(_))));
        assert!(!b.metadata().unwrap().contains_key("X-Container-Meta-B"));
        // Deleting then reclaiming drops the empty key.
        let mut del = Metadata::new();
        del.insert("X-Container-Meta-A".into(), ("".into(), ts(4.0).internal()));
        b.update_metadata(&del, None).unwrap();
        assert!(b.metadata().unwrap().contains_key("X-Container-Meta-A"));
        b.reclaim(&ts(5.0), 0.0).unwrap();
        assert!(!b.metadata().unwrap().contains_key("X-Container-Meta-A"));
    }

    #[test]
    fn reclaim_removes_old_tombstones_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        b.delete_object("old", &ts(2.0), 0).unwrap();
        b.delete_object("new", &ts(9.0), 0).unwrap();
        assert_eq!(b.reclaim(&ts(5.0), 0.0).unwrap(), 1);
        assert!(b.get_object_row("old", 0).unwrap().is_none());
        assert!(b.get_object_row("new", 0).unwrap().is_some());
        assert!(b.max_row().unwrap() >= 2);
    }

    #[test]
    fn listing_sorts_by_utf8_bytes_and_hides_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        for n in ["z", "é", "a", "\u{1F954}", "Z", "gone"] {
            put(&mut b, n, 2.0, 1);
        }
        b.delete_object("gone", &ts(3.0), 0).unwrap();
        let items = b.list_objects(&ListingParams { limit: 100, ..Default::default() }, 0).unwrap();
        let names: Vec<String> = items
            .into_iter()
            .map(|i| match i {
                ListingItem::Row(n, _) => n,
                ListingItem::Subdir(s) => s,
            })
            .collect();
        assert_eq!(names, ["Z", "a", "z", "é", "\u{1F954}"]);
        assert!(b.list_objects(&ListingParams { limit: 100, ..Default::default() }, 1).unwrap().is_empty());
    }

    #[test]
    fn a_second_create_finds_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let b = new_broker(dir.path());
        let mut again = ContainerBroker::new(b.db_file().to_path_buf());
        let r = again.initialize(&InitParams {
            account: "a".into(),
            container: Some("c".into()),
            put_timestamp: ts(1.0),
            storage_policy_index: 0,
            device: "sda".into(),
        });
        assert!(matches!(r, Err(DbError::AlreadyExists(_))));
        assert!(ContainerBroker::new(dir.path().join("nope.db"))
            .put_object(ObjectRecord {
                name: "o".into(),
                created_at: ts(1.0).internal(),
                size: 0,
                content_type: "x".into(),
                etag: "e".into(),
                deleted: 0,
                storage_policy_index: 0,
                ctype_timestamp: None,
                meta_timestamp: None,
            })
            .is_err());
    }

    #[test]
    fn swift_bytes_is_split_off() {
        assert_eq!(extract_swift_bytes("text/plain"), ("text/plain".into(), None));
        assert_eq!(extract_swift_bytes("a/b; charset=utf-8;swift_bytes=12"), ("a/b;charset=utf-8".into(), Some("12".into())));
    }
}
