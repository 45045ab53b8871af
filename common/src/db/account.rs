//! The account database (Swift's `swift/account/backend.py`): one
//! `container` row per container of the account, reported by container
//! servers; the `account_stat` row with its totals, timestamps, status and
//! metadata; per-policy totals in `policy_stat`; all totals and the
//! replication hash kept by triggers.

use super::broker::{timestamp_or_zero, BrokerKind, DatabaseBroker, DbError, InitParams};
use super::listing::{self, ListingItem, ListingParams};
use crate::log;
use crate::timestamp::Timestamp;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Transaction};

/// The directory of account databases on a device.
pub const DATADIR: &str = "accounts";

/// One container update, as appended to the pending file and merged
/// (Swift's pending tuple: name, put_timestamp, delete_timestamp,
/// object_count, bytes_used, deleted, storage_policy_index).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerRecord {
    pub name: String,
    /// Internal-form timestamp of the container's last PUT.
    pub put_timestamp: String,
    /// Internal-form timestamp of its last DELETE ("0" if never).
    pub delete_timestamp: String,
    pub object_count: i64,
    pub bytes_used: i64,
    /// 1 when the container is deleted (deleted after its last PUT and
    /// empty).
    pub deleted: i64,
    #[serde(default)]
    pub storage_policy_index: i64,
}

impl ContainerRecord {
    /// A record with `deleted` worked out as Swift's `put_container` does:
    /// deleted after the last PUT and holding no objects.
    pub fn new(
        name: &str,
        put_timestamp: &Timestamp,
        delete_timestamp: &Timestamp,
        object_count: i64,
        bytes_used: i64,
        storage_policy_index: i64,
    ) -> ContainerRecord {
        ContainerRecord {
            name: name.to_string(),
            put_timestamp: put_timestamp.internal(),
            delete_timestamp: delete_timestamp.internal(),
            object_count,
            bytes_used,
            deleted: i64::from(record_is_deleted(put_timestamp, delete_timestamp, object_count)),
            storage_policy_index,
        }
    }
}

/// Swift's rule for a container row: deleted when the delete is newer than
/// the put and no objects remain.
fn record_is_deleted(put: &Timestamp, delete: &Timestamp, object_count: i64) -> bool {
    delete > put && object_count == 0
}

/// The `account_stat` row (Swift's `get_info`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountInfo {
    pub account: String,
    pub created_at: String,
    pub put_timestamp: String,
    pub delete_timestamp: String,
    /// `""`, or `DELETED` once the account has been deleted.
    pub status: String,
    pub status_changed_at: String,
    /// Live (not deleted) containers.
    pub container_count: i64,
    pub object_count: i64,
    pub bytes_used: i64,
    /// The chexor of every container row.
    pub hash: String,
    pub id: String,
}

impl AccountInfo {
    /// Swift's `_is_deleted_info`: status DELETED, or no containers and
    /// deleted after the last PUT.
    pub fn is_deleted(&self) -> bool {
        is_deleted_info(&self.status, self.container_count, &self.put_timestamp, &self.delete_timestamp)
    }

    /// Swift's `is_status_deleted`: marked deleted, whatever the containers
    /// (the account reaper has yet to empty it).
    pub fn is_status_deleted(&self) -> bool {
        self.status == "DELETED" || timestamp_or_zero(&self.delete_timestamp) > timestamp_or_zero(&self.put_timestamp)
    }
}

fn is_deleted_info(status: &str, container_count: i64, put: &str, delete: &str) -> bool {
    status == "DELETED" || (container_count == 0 && timestamp_or_zero(delete) > timestamp_or_zero(put))
}

/// The totals of one storage policy (a `policy_stat` row).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyStats {
    pub storage_policy_index: i64,
    pub container_count: i64,
    pub object_count: i64,
    pub bytes_used: i64,
}

/// A container row of an account listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedContainer {
    pub object_count: i64,
    pub bytes_used: i64,
    /// Internal-form put timestamp (the listing's `last_modified`).
    pub put_timestamp: String,
    pub storage_policy_index: i64,
}

/// A container row as stored, tombstones included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRow {
    pub name: String,
    pub put_timestamp: String,
    pub delete_timestamp: String,
    pub object_count: i64,
    pub bytes_used: i64,
    pub deleted: i64,
    pub storage_policy_index: i64,
}

/// The account flavour of [`DatabaseBroker`].
pub struct AccountKind;

/// An account database.
pub type AccountBroker = DatabaseBroker<AccountKind>;

impl BrokerKind for AccountKind {
    const DB_TYPE: &'static str = "account";
    const CONTAINS_TYPE: &'static str = "container";
    const INFO_TABLE: &'static str = "account_stat";
    const RECLAIM_TIMESTAMP_COLUMN: &'static str = "delete_timestamp";
    type Record = ContainerRecord;

    fn create_schema(conn: &Connection, init: &InitParams, created_at: Timestamp, id: &str) -> rusqlite::Result<()> {
        // The container triggers write to account_stat and policy_stat, so
        // those exist first.
        conn.execute_batch(ACCOUNT_STAT_SCRIPT)?;
        let put = init.put_timestamp.internal();
        conn.execute(
            "UPDATE account_stat SET account = ?1, created_at = ?2, id = ?3, put_timestamp = ?4, status_changed_at = ?4",
            rusqlite::params![init.account, created_at.internal(), id, put],
        )?;
        conn.execute_batch(POLICY_STAT_SCRIPT)?;
        conn.execute_batch(CONTAINER_TABLE_SCRIPT)?;
        Ok(())
    }

    fn merge_records(tx: &Transaction, records: Vec<ContainerRecord>) -> Result<(), DbError> {
        // One row at a time, in order, as Swift's `merge_items`: a batch may
        // hold several updates of one container and each must see the last.
        let mut select =
            tx.prepare_cached("SELECT put_timestamp, delete_timestamp FROM container WHERE name = ?1 AND deleted IN (0, 1)")?;
        let mut delete = tx.prepare_cached("DELETE FROM container WHERE name = ?1 AND deleted IN (0, 1)")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO container (name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted, \
             storage_policy_index) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for mut r in records {
            let (Ok(mut put), Ok(mut del)) = (Timestamp::parse(&r.put_timestamp), Timestamp::parse(&r.delete_timestamp)) else {
                log::error(&format!("Invalid container update for {:?}: bad timestamps", r.name));
                continue;
            };
            let existing: Option<(String, String)> = select.query_row([&r.name], |row| Ok((row.get(0)?, row.get(1)?))).optional()?;
            if let Some((old_put, old_del)) = existing {
                // Newest put and newest delete win separately; the counts
                // are always the latest report's.
                let (old_put, old_del) = (timestamp_or_zero(&old_put), timestamp_or_zero(&old_del));
                if old_put > put {
                    put = old_put;
                }
                if old_del > del {
                    del = old_del;
                }
                r.put_timestamp = put.internal();
                r.delete_timestamp = del.internal();
                r.deleted = i64::from(record_is_deleted(&put, &del, r.object_count));
            }
            delete.execute([&r.name])?;
            insert.execute(rusqlite::params![
                r.name,
                r.put_timestamp,
                r.delete_timestamp,
                r.object_count,
                r.bytes_used,
                r.deleted,
                r.storage_policy_index
            ])?;
        }
        Ok(())
    }

    fn is_deleted(conn: &Connection) -> Result<bool, DbError> {
        let (status, count, put, delete): (String, i64, String, String) =
            conn.query_row("SELECT status, container_count, put_timestamp, delete_timestamp FROM account_stat", [], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                    r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                ))
            })?;
        Ok(is_deleted_info(&status, count, &put, &delete))
    }
}

impl DatabaseBroker<AccountKind> {
    /// Records a container update (Swift's `put_container`): appended to
    /// the pending file, merged into SQLite later.
    pub fn put_container(&mut self, record: ContainerRecord) -> Result<(), DbError> {
        self.put_record(record)
    }

    /// The account's info, pending updates merged first.
    pub fn get_info(&mut self) -> Result<AccountInfo, DbError> {
        self.commit_pending()?;
        let conn = self.conn()?;
        let info = conn.query_row(
            "SELECT account, created_at, put_timestamp, delete_timestamp, status, status_changed_at, \
             container_count, object_count, bytes_used, hash, id FROM account_stat",
            [],
            |r| {
                let s = |i: usize| -> rusqlite::Result<String> { Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default()) };
                let n = |i: usize| -> rusqlite::Result<i64> { Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0)) };
                Ok(AccountInfo {
                    account: s(0)?,
                    created_at: s(1)?,
                    put_timestamp: s(2)?,
                    delete_timestamp: s(3)?,
                    status: s(4)?,
                    status_changed_at: s(5)?,
                    container_count: n(6)?,
                    object_count: n(7)?,
                    bytes_used: n(8)?,
                    hash: s(9)?,
                    id: s(10)?,
                })
            },
        )?;
        Ok(info)
    }

    /// Whether the account is marked deleted (Swift's `is_status_deleted`);
    /// a missing database is not.
    pub fn is_status_deleted(&mut self) -> Result<bool, DbError> {
        if !self.exists() {
            return Ok(false);
        }
        Ok(self.get_info()?.is_status_deleted())
    }

    /// The totals per storage policy, by index.
    pub fn get_policy_stats(&mut self) -> Result<Vec<PolicyStats>, DbError> {
        self.commit_pending()?;
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT storage_policy_index, container_count, object_count, bytes_used FROM policy_stat \
             ORDER BY storage_policy_index",
        )?;
        let rows = stmt.query_map([], |r| {
            let n = |i: usize| -> rusqlite::Result<i64> { Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0)) };
            Ok(PolicyStats { storage_policy_index: n(0)?, container_count: n(1)?, object_count: n(2)?, bytes_used: n(3)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Whether no live container remains (Swift's `empty`).
    pub fn empty(&mut self) -> Result<bool, DbError> {
        Ok(self.get_info()?.container_count <= 0)
    }

    /// One stored row by name, tombstones included.
    pub fn get_container_row(&mut self, name: &str) -> Result<Option<ContainerRow>, DbError> {
        self.commit_pending()?;
        Ok(self
            .conn()?
            .query_row(
                "SELECT name, put_timestamp, delete_timestamp, object_count, bytes_used, deleted, storage_policy_index \
                 FROM container WHERE name = ?1 AND deleted IN (0, 1)",
                [name],
                |r| {
                    Ok(ContainerRow {
                        name: r.get(0)?,
                        put_timestamp: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        delete_timestamp: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        object_count: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                        bytes_used: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                        deleted: r.get::<_, Option<i64>>(5)?.unwrap_or(0),
                        storage_policy_index: r.get::<_, Option<i64>>(6)?.unwrap_or(0),
                    })
                },
            )
            .optional()?)
    }

    /// Lists the live containers (Swift's `list_containers_iter`; `path`
    /// is not an account listing parameter and is ignored), pending updates
    /// merged first.
    pub fn list_containers(&mut self, params: &ListingParams) -> Result<Vec<ListingItem<ListedContainer>>, DbError> {
        self.commit_pending()?;
        let params = ListingParams { path: None, ..params.clone() };
        let conn = self.conn()?;
        listing::list(&params, |page| -> Result<Vec<(String, ListedContainer)>, DbError> {
            let (mut conds, args) = page.conditions();
            conds.push("deleted = 0");
            let sql = format!(
                "SELECT name, object_count, bytes_used, put_timestamp, storage_policy_index FROM container \
                 WHERE {} ORDER BY name {} LIMIT {}",
                conds.join(" AND "),
                if page.reverse { "DESC" } else { "" },
                page.limit
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params_from_iter(args.iter()))?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push((
                    r.get::<_, String>(0)?,
                    ListedContainer {
                        object_count: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                        bytes_used: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                        put_timestamp: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        storage_policy_index: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
                    },
                ));
            }
            Ok(out)
        })
    }
}

const ACCOUNT_STAT_SCRIPT: &str = "
    CREATE TABLE account_stat (
        account TEXT,
        created_at TEXT,
        put_timestamp TEXT DEFAULT '0',
        delete_timestamp TEXT DEFAULT '0',
        container_count INTEGER,
        object_count INTEGER DEFAULT 0,
        bytes_used INTEGER DEFAULT 0,
        hash TEXT default '00000000000000000000000000000000',
        id TEXT,
        status TEXT DEFAULT '',
        status_changed_at TEXT DEFAULT '0',
        metadata TEXT DEFAULT ''
    );
    INSERT INTO account_stat (container_count) VALUES (0);
";

const POLICY_STAT_SCRIPT: &str = "
    CREATE TABLE policy_stat (
        storage_policy_index INTEGER PRIMARY KEY,
        container_count INTEGER DEFAULT 0,
        object_count INTEGER DEFAULT 0,
        bytes_used INTEGER DEFAULT 0
    );
";

/// The rows table, its index and the triggers that keep `account_stat`'s
/// totals and hash, and `policy_stat`, in step with it (rows are never
/// updated in place: DELETE then INSERT).
const CONTAINER_TABLE_SCRIPT: &str = "
    CREATE TABLE container (
        ROWID INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT,
        put_timestamp TEXT,
        delete_timestamp TEXT,
        object_count INTEGER,
        bytes_used INTEGER,
        deleted INTEGER DEFAULT 0,
        storage_policy_index INTEGER DEFAULT 0
    );
    CREATE INDEX ix_container_deleted_name ON container (deleted, name);
    CREATE TRIGGER container_insert AFTER INSERT ON container
    BEGIN
        UPDATE account_stat
        SET container_count = container_count + (1 - new.deleted),
            object_count = object_count + new.object_count,
            bytes_used = bytes_used + new.bytes_used,
            hash = chexor(hash, new.name,
                          new.put_timestamp || '-' || new.delete_timestamp || '-' ||
                          new.object_count || '-' || new.bytes_used);
    END;
    CREATE TRIGGER container_update BEFORE UPDATE ON container
    BEGIN
        SELECT RAISE(FAIL, 'UPDATE not allowed; DELETE and INSERT');
    END;
    CREATE TRIGGER container_delete AFTER DELETE ON container
    BEGIN
        UPDATE account_stat
        SET container_count = container_count - (1 - old.deleted),
            object_count = object_count - old.object_count,
            bytes_used = bytes_used - old.bytes_used,
            hash = chexor(hash, old.name,
                          old.put_timestamp || '-' || old.delete_timestamp || '-' ||
                          old.object_count || '-' || old.bytes_used);
    END;
    CREATE TRIGGER container_insert_ps AFTER INSERT ON container
    BEGIN
        INSERT OR IGNORE INTO policy_stat
            (storage_policy_index, container_count, object_count, bytes_used)
            VALUES (new.storage_policy_index, 0, 0, 0);
        UPDATE policy_stat
        SET container_count = container_count + (1 - new.deleted),
            object_count = object_count + new.object_count,
            bytes_used = bytes_used + new.bytes_used
        WHERE storage_policy_index = new.storage_policy_index;
    END;
    CREATE TRIGGER container_delete_ps AFTER DELETE ON container
    BEGIN
        UPDATE policy_stat
        SET container_count = container_count - (1 - old.deleted),
            object_count = object_count - old.object_count,
            bytes_used = bytes_used - old.bytes_used
        WHERE storage_policy_index = old.storage_policy_index;
    END;
";

#[cfg(test)]
mod tests {
    use super::super::broker::{chexor, db_path, Metadata};
    use super::*;

    fn ts(s: f64) -> Timestamp {
        Timestamp::from_secs_f64(s).unwrap()
    }

    fn new_broker(dir: &std::path::Path) -> AccountBroker {
        let path = db_path(dir, DATADIR, 3, "0123456789abcdef0123456789abcdef");
        let mut b = AccountBroker::new(path);
        b.initialize(&InitParams {
            account: "AUTH_test".into(),
            container: None,
            put_timestamp: ts(1.0),
            storage_policy_index: 0,
            device: "sda".into(),
        })
        .unwrap();
        b
    }

    fn rec(name: &str, put: f64, del: f64, objects: i64, bytes: i64, policy: i64) -> ContainerRecord {
        ContainerRecord::new(name, &ts(put), &if del == 0.0 { Timestamp::ZERO } else { ts(del) }, objects, bytes, policy)
    }

    #[test]
    fn new_account_has_swifts_info_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        assert!(b.db_file().ends_with("accounts/3/def/0123456789abcdef0123456789abcdef/0123456789abcdef0123456789abcdef.db"));
        let info = b.get_info().unwrap();
        assert_eq!(info.account, "AUTH_test");
        assert_eq!(
            (info.put_timestamp.as_str(), info.status_changed_at.as_str()),
            (ts(1.0).internal().as_str(), ts(1.0).internal().as_str())
        );
        assert_eq!((info.container_count, info.object_count, info.bytes_used), (0, 0, 0));
        assert_eq!(info.hash, "0".repeat(32));
        assert!(info.id.ends_with("-sda"));
        assert!(!info.is_deleted() && !info.is_status_deleted());
        assert!(b.get_policy_stats().unwrap().is_empty());
        let idx: i64 = b
            .conn()
            .unwrap()
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'ix_container_deleted_name'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(idx, 1);
    }

    #[test]
    fn container_records_keep_totals_policies_and_hash() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        b.put_container(rec("c1", 2.0, 0.0, 3, 30, 0)).unwrap();
        b.put_container(rec("c2", 2.0, 0.0, 1, 5, 1)).unwrap();
        assert!(std::fs::metadata(b.pending_file()).unwrap().len() > 0);
        let info = b.get_info().unwrap();
        assert_eq!((info.container_count, info.object_count, info.bytes_used), (2, 4, 35));
        let row1 = format!("{}-{}-3-30", ts(2.0).internal(), Timestamp::ZERO.internal());
        let row2 = format!("{}-{}-1-5", ts(2.0).internal(), Timestamp::ZERO.internal());
        assert_eq!(info.hash, chexor(&chexor(&"0".repeat(32), "c1", &row1), "c2", &row2));
        let stats = b.get_policy_stats().unwrap();
        assert_eq!(
            stats,
            vec![
                PolicyStats { storage_policy_index: 0, container_count: 1, object_count: 3, bytes_used: 30 },
                PolicyStats { storage_policy_index: 1, container_count: 1, object_count: 1, bytes_used: 5 },
            ]
        );
        // A later report replaces the counts even at the same put timestamp.
        b.put_container(rec("c1", 2.0, 0.0, 4, 40, 0)).unwrap();
        assert_eq!(b.get_info().unwrap().object_count, 5);
        // A newer delete of an empty container marks its row deleted.
        b.put_container(rec("c1", 2.0, 3.0, 0, 0, 0)).unwrap();
        let info = b.get_info().unwrap();
        assert_eq!((info.container_count, info.object_count, info.bytes_used), (1, 1, 5));
        assert_eq!(b.get_container_row("c1").unwrap().unwrap().deleted, 1);
        assert_eq!(b.get_policy_stats().unwrap()[0].container_count, 0);
        // A stale PUT report (older than the delete) does not revive it,
        // but keeps the newest delete timestamp.
        b.put_container(rec("c1", 2.5, 0.0, 0, 0, 0)).unwrap();
        let row = b.get_container_row("c1").unwrap().unwrap();
        assert_eq!((row.deleted, row.put_timestamp.clone(), row.delete_timestamp.clone()), (1, ts(2.5).internal(), ts(3.0).internal()));
        // A newer PUT does.
        b.put_container(rec("c1", 4.0, 0.0, 0, 0, 0)).unwrap();
        assert_eq!(b.get_container_row("c1").unwrap().unwrap().deleted, 0);
        assert_eq!(b.get_info().unwrap().container_count, 2);
    }

    #[test]
    fn updates_of_one_container_in_one_batch_fold_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        b.put_container(rec("c", 5.0, 0.0, 1, 1, 0)).unwrap();
        b.put_container(rec("c", 2.0, 6.0, 0, 0, 0)).unwrap();
        b.put_container(rec("c", 3.0, 0.0, 0, 0, 0)).unwrap();
        let row = b.get_container_row("c").unwrap().unwrap();
        assert_eq!((row.put_timestamp, row.delete_timestamp, row.deleted), (ts(5.0).internal(), ts(6.0).internal(), 1));
        assert_eq!(b.get_info().unwrap().container_count, 0);
    }

    #[test]
    fn deleting_the_account_marks_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        let mut md = Metadata::new();
        md.insert("X-Account-Meta-A".into(), ("1".into(), ts(1.5).internal()));
        b.update_metadata(&md, None).unwrap();
        b.put_container(rec("c", 2.0, 0.0, 1, 1, 0)).unwrap();
        b.delete_db(&ts(3.0)).unwrap();
        let info = b.get_info().unwrap();
        assert_eq!(info.status, "DELETED");
        // Deleted although a container remains: the reaper empties it.
        assert!(info.is_deleted() && info.is_status_deleted());
        assert!(b.is_deleted().unwrap());
        assert_eq!(b.metadata().unwrap()["X-Account-Meta-A"].0, "");
        assert!(!AccountBroker::new(dir.path().join("missing.db")).is_status_deleted().unwrap());
    }

    #[test]
    fn listing_hides_deleted_containers_and_uses_delimiters() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        for n in ["b", "a", "a-1", "a-2-x", "gone"] {
            b.put_container(rec(n, 2.0, 0.0, 1, 2, 0)).unwrap();
        }
        b.put_container(rec("gone", 2.0, 3.0, 0, 0, 0)).unwrap();
        let names = |items: Vec<ListingItem<ListedContainer>>| -> Vec<String> {
            items
                .into_iter()
                .map(|i| match i {
                    ListingItem::Row(n, _) => n,
                    ListingItem::Subdir(s) => format!("{s}(dir)"),
                })
                .collect()
        };
        let all = ListingParams { limit: 100, ..Default::default() };
        assert_eq!(names(b.list_containers(&all).unwrap()), ["a", "a-1", "a-2-x", "b"]);
        let delim = ListingParams { delimiter: Some("-".into()), ..all.clone() };
        assert_eq!(names(b.list_containers(&delim).unwrap()), ["a", "a-(dir)", "b"]);
        let rev = ListingParams { reverse: true, limit: 2, ..all.clone() };
        assert_eq!(names(b.list_containers(&rev).unwrap()), ["b", "a-2-x"]);
        let items = b.list_containers(&ListingParams { prefix: Some("b".into()), ..all }).unwrap();
        assert_eq!(
            items,
            vec![ListingItem::Row(
                "b".into(),
                ListedContainer { object_count: 1, bytes_used: 2, put_timestamp: ts(2.0).internal(), storage_policy_index: 0 }
            )]
        );
    }

    #[test]
    fn reclaim_drops_old_deleted_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = new_broker(dir.path());
        b.put_container(rec("old", 1.5, 2.0, 0, 0, 0)).unwrap();
        b.put_container(rec("new", 1.5, 9.0, 0, 0, 0)).unwrap();
        assert_eq!(b.reclaim(&ts(5.0), 0.0).unwrap(), 1);
        assert!(b.get_container_row("old").unwrap().is_none());
        assert!(b.get_container_row("new").unwrap().is_some());
    }
}
