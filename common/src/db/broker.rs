//! The part of Swift's `DatabaseBroker` that container and account
//! databases share: where the file lives, creating it with its schema,
//! opening it with Swift's pragmas and the `chexor` function, the pending
//! file, metadata with per-key timestamps, put/delete timestamps and
//! reclaiming tombstones. What differs between the two (tables, records,
//! "is deleted") is a [`BrokerKind`].
//!
//! A broker is cheap and meant for one request: it opens its SQLite
//! connection lazily and closes it when dropped. Every method blocks (file
//! and SQLite I/O): call it from a blocking pool (`Devices::run`).

use super::pending::{self, DirLock, PENDING_CAP};
use crate::log;
use crate::timestamp::Timestamp;
use md5::{Digest, Md5};
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long SQLite waits for another connection's lock (Swift's
/// `BROKER_TIMEOUT`).
pub const BROKER_TIMEOUT: Duration = Duration::from_secs(25);

/// How long writers wait for the pending file's lock (Swift's default
/// `pending_timeout`).
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(10);

/// How long readers that accept stale data wait for it (Swift's HEAD/GET
/// use 0.1 s with `stale_reads_ok`).
pub const STALE_READ_PENDING_TIMEOUT: Duration = Duration::from_millis(100);

/// Most `?` parameters SQLite takes in one statement.
pub const SQLITE_ARG_LIMIT: usize = 999;

/// Deleted rows removed per reclaim transaction (Swift's
/// `RECLAIM_PAGE_SIZE`).
pub const RECLAIM_PAGE_SIZE: i64 = 10_000;

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database file does not exist.
    #[error("DB {0} doesn't exist")]
    NotFound(PathBuf),
    /// `initialize` found the file already there.
    #[error("DB {0} already exists")]
    AlreadyExists(PathBuf),
    /// The pending file's lock could not be taken in time.
    #[error("timed out after {1:?} waiting for the lock of {0}")]
    LockTimeout(PathBuf, Duration),
    /// Metadata breaks the limits or is not UTF-8: the client's fault (400).
    #[error("{0}")]
    InvalidMetadata(String),
    /// The database lacks a row or column it must have.
    #[error("DB {0} is corrupt: {1}")]
    Corrupt(PathBuf, String),
    #[error("SQLite error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Metadata of a database: header name → (value, internal timestamp). An
/// empty value marks a deleted key (kept until reclaimed so the deletion
/// replicates). Stored as Swift's JSON `{"X-Container-Meta-A": ["v", "ts"]}`.
pub type Metadata = BTreeMap<String, (String, String)>;

/// Swift's metadata limits, checked on the merged set.
#[derive(Debug, Clone, Copy)]
pub struct MetadataLimits {
    /// `max_meta_count`.
    pub max_count: u64,
    /// `max_meta_overall_size` (bytes of names after the prefix + values).
    pub max_overall_size: u64,
}

/// What a new database is created with.
#[derive(Debug, Clone)]
pub struct InitParams {
    pub account: String,
    /// `None` for account databases.
    pub container: Option<String>,
    /// The creating request's timestamp.
    pub put_timestamp: Timestamp,
    /// Containers only; accounts ignore it.
    pub storage_policy_index: i64,
    /// The device name, part of the database's replication id.
    pub device: String,
}

/// The kind-specific half of a broker: a container or an account database.
pub trait BrokerKind: Send + 'static {
    /// `container` or `account` (Swift's `db_type`).
    const DB_TYPE: &'static str;
    /// The table of rows the database holds: `object` or `container`
    /// (Swift's `db_contains_type`).
    const CONTAINS_TYPE: &'static str;
    /// The table with the one row of timestamps, status, hash and metadata:
    /// `container_info` or `account_stat`.
    const INFO_TABLE: &'static str;
    /// The column of deleted rows compared with the reclaim age
    /// (`created_at` for objects, `delete_timestamp` for containers).
    const RECLAIM_TIMESTAMP_COLUMN: &'static str;
    /// Metadata keys kept when the database is deleted (lowercase).
    const DELETE_META_KEEP: &'static [&'static str] = &[];

    /// One row update, as appended to the pending file and merged.
    type Record: Serialize + DeserializeOwned + Send + 'static;

    /// Creates the kind's tables, indexes and triggers and its info row
    /// (the sync tables already exist).
    fn create_schema(conn: &Connection, init: &InitParams, created_at: Timestamp, id: &str) -> rusqlite::Result<()>;

    /// Merges `records` into the rows in the open transaction (newest
    /// timestamp wins).
    fn merge_records(tx: &Transaction, records: Vec<Self::Record>) -> Result<(), DbError>;

    /// Whether the database counts as deleted (Swift's `_is_deleted`).
    fn is_deleted(conn: &Connection) -> Result<bool, DbError>;
}

/// Swift's `chexor`: the hex XOR of `old` with MD5(`name-timestamp`), a
/// rolling, order-independent hash of a database's rows that replication
/// compares to find databases in sync.
pub fn chexor(old: &str, name: &str, timestamp: &str) -> String {
    let mut md5 = Md5::new();
    md5.update(name.as_bytes());
    md5.update(b"-");
    md5.update(timestamp.as_bytes());
    let new = u128::from_be_bytes(md5.finalize().into());
    let old = u128::from_str_radix(old, 16).unwrap_or(0);
    format!("{:032x}", old ^ new)
}

/// A random version-4 UUID in its usual text form (database ids are
/// `<uuid>-<device>`).
pub(crate) fn uuid4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The file of the database of `hash` on a device:
/// `<device_path>/<datadir>/<part>/<suffix>/<hash>/<hash>.db`, `datadir`
/// being `containers` or `accounts`.
pub fn db_path(device_path: &Path, datadir: &str, partition: u32, hash: &str) -> PathBuf {
    let suffix = &hash[hash.len().saturating_sub(3)..];
    device_path.join(datadir).join(partition.to_string()).join(suffix).join(hash).join(format!("{hash}.db"))
}

/// Registers `chexor(old, name, ts)` on a connection (the triggers use it).
fn register_chexor(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function("chexor", 3, FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC, |ctx| {
        let old: String = ctx.get(0)?;
        let name: Option<String> = ctx.get(1)?;
        let ts: String = ctx.get::<Option<String>>(2)?.unwrap_or_default();
        let name = name.ok_or_else(|| rusqlite::Error::UserFunctionError("name is None!".into()))?;
        Ok(chexor(&old, &name, &ts))
    })
}

/// Opens an existing database with Swift's pragmas (§5.1).
fn open_connection(path: &Path) -> Result<Connection, DbError> {
    // Never create the file by opening it: a missing database is an answer.
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BROKER_TIMEOUT)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA count_changes = OFF; PRAGMA temp_store = MEMORY;")?;
    let _mode: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    register_chexor(&conn)?;
    Ok(conn)
}

/// Title-cases a header name as Python's `str.title()` does (WSGI header
/// names, which Swift stores as metadata keys): a letter is upper case
/// after a non-letter and lower case after a letter.
pub fn title_case_header(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut prev_alpha = false;
    for c in name.chars() {
        if c.is_alphabetic() {
            if prev_alpha {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            prev_alpha = true;
        } else {
            out.push(c);
            prev_alpha = false;
        }
    }
    out
}

/// A timestamp read from a database field (info row, record, row), zero
/// when the field is empty or does not parse.
pub fn timestamp_or_zero(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap_or(Timestamp::ZERO)
}

/// Checks metadata against Swift's limits (`DatabaseBroker.validate_metadata`):
/// only non-empty `X-<type>-Meta-*` items count, names after the prefix.
pub fn validate_metadata(md: &Metadata, limits: MetadataLimits) -> Result<(), DbError> {
    let mut count = 0u64;
    let mut size = 0u64;
    for (key, (value, _)) in md {
        let lower = key.to_ascii_lowercase();
        if value.is_empty() {
            continue;
        }
        for prefix in ["x-account-meta-", "x-container-meta-"] {
            if let Some(rest) = lower.strip_prefix(prefix) {
                count += 1;
                size += (rest.len() + value.len()) as u64;
            }
        }
    }
    if count > limits.max_count {
        return Err(DbError::InvalidMetadata(format!("Too many metadata items; max {}", limits.max_count)));
    }
    if size > limits.max_overall_size {
        return Err(DbError::InvalidMetadata(format!("Total metadata too large; max {}", limits.max_overall_size)));
    }
    Ok(())
}

/// Merges `updates` into `md`: a key is replaced only by a newer timestamp.
pub fn merge_metadata(md: &mut Metadata, updates: &Metadata) {
    for (k, (v, ts)) in updates {
        let newer = match md.get(k) {
            Some((_, old_ts)) => ts > old_ts,
            None => true,
        };
        if newer {
            md.insert(k.clone(), (v.clone(), ts.clone()));
        }
    }
}

/// A database and its pending file (Swift's `DatabaseBroker`).
pub struct DatabaseBroker<K: BrokerKind> {
    db_file: PathBuf,
    db_dir: PathBuf,
    pending_file: PathBuf,
    pending_timeout: Duration,
    stale_reads_ok: bool,
    conn: Option<Connection>,
    _kind: PhantomData<K>,
}

impl<K: BrokerKind> DatabaseBroker<K> {
    /// A broker for the database at `db_file` (which need not exist yet).
    pub fn new(db_file: PathBuf) -> Self {
        let db_dir = db_file.parent().map(Path::to_path_buf).unwrap_or_default();
        let pending_file = pending::pending_path(&db_file);
        DatabaseBroker {
            db_file,
            db_dir,
            pending_file,
            pending_timeout: PENDING_TIMEOUT,
            stale_reads_ok: false,
            conn: None,
            _kind: PhantomData,
        }
    }

    /// A broker for reads that may miss updates still in the pending file
    /// when its lock is busy (Swift's `stale_reads_ok` with a 0.1 s wait).
    pub fn for_stale_reads(db_file: PathBuf) -> Self {
        let mut b = Self::new(db_file);
        b.pending_timeout = STALE_READ_PENDING_TIMEOUT;
        b.stale_reads_ok = true;
        b
    }

    /// The same broker waiting at most `timeout` for the pending file's
    /// lock (Swift's account server uses 3 s for proxied container
    /// updates, so a busy account fails fast rather than stalling the
    /// container server).
    pub fn with_pending_timeout(mut self, timeout: Duration) -> Self {
        self.pending_timeout = timeout;
        self
    }

    /// The SQLite file.
    pub fn db_file(&self) -> &Path {
        &self.db_file
    }

    /// The pending file beside it.
    pub fn pending_file(&self) -> &Path {
        &self.pending_file
    }

    /// Whether the database file exists.
    pub fn exists(&self) -> bool {
        self.db_file.exists()
    }

    /// The open connection, opening it first if needed.
    pub fn conn(&mut self) -> Result<&mut Connection, DbError> {
        if self.conn.is_none() {
            if !self.db_file.exists() {
                return Err(DbError::NotFound(self.db_file.clone()));
            }
            self.conn = Some(open_connection(&self.db_file)?);
        }
        Ok(self.conn.as_mut().expect("connection was just opened"))
    }

    /// Creates the database: schema in a temporary file, fsync, then an
    /// atomic rename under the directory lock so a concurrent creator
    /// finds [`DbError::AlreadyExists`] and a crash never leaves half a
    /// schema under the real name.
    pub fn initialize(&mut self, init: &InitParams) -> Result<(), DbError> {
        std::fs::create_dir_all(&self.db_dir)?;
        let tmp = self.db_dir.join(format!(".{}.{}.tmp", std::process::id(), uuid4()));
        let result = (|| -> Result<(), DbError> {
            let mut conn = Connection::open(&tmp)?;
            // The temporary file is fsynced as a whole below; journaling it
            // would only cost time.
            conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY;")?;
            let _mode: String = conn.query_row("PRAGMA journal_mode = MEMORY", [], |r| r.get(0))?;
            register_chexor(&conn)?;
            let tx = conn.transaction()?;
            tx.execute_batch(SYNC_TABLES_SCRIPT)?;
            let id = format!("{}-{}", uuid4(), init.device);
            K::create_schema(&tx, init, Timestamp::now(), &id)?;
            tx.commit()?;
            conn.close().map_err(|(_, e)| e)?;
            std::fs::File::options().read(true).write(true).open(&tmp)?.sync_all()?;
            let _lock = self.lock(PENDING_TIMEOUT)?;
            if self.db_file.exists() {
                return Err(DbError::AlreadyExists(self.db_file.clone()));
            }
            std::fs::rename(&tmp, &self.db_file)?;
            // The rename is durable only once the directory is.
            std::fs::File::open(&self.db_dir)?.sync_all()?;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn lock(&self, timeout: Duration) -> Result<DirLock, DbError> {
        pending::lock_dir(&self.db_dir, timeout)?.ok_or_else(|| DbError::LockTimeout(self.db_dir.clone(), timeout))
    }

    /// Records an update: appended to the pending file, or, when that file
    /// has outgrown [`PENDING_CAP`], merged at once with all pending
    /// records (Swift's `put_record`).
    pub fn put_record(&mut self, record: K::Record) -> Result<(), DbError> {
        if !self.db_file.exists() {
            return Err(DbError::NotFound(self.db_file.clone()));
        }
        let _lock = self.lock(self.pending_timeout)?;
        if pending::pending_size(&self.pending_file)? > PENDING_CAP {
            self.commit_pending_locked(vec![record])
        } else {
            pending::append(&self.pending_file, &pending::encode_record(&record)).map_err(DbError::from)
        }
    }

    /// Merges the pending file (and `extra`) into SQLite in one transaction,
    /// then empties the file. The caller holds the directory lock. If we
    /// die between commit and truncate the records merge again later, which
    /// changes nothing: merging is idempotent (newest timestamp wins).
    fn commit_pending_locked(&mut self, mut extra: Vec<K::Record>) -> Result<(), DbError> {
        let data = match std::fs::read(&self.pending_file) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let (mut records, bad) = pending::decode_records::<K::Record>(&data);
        for entry in bad {
            log::error(&format!("Invalid pending entry {}: {entry:?}", self.pending_file.display()));
        }
        records.append(&mut extra);
        if !records.is_empty() {
            self.merge_records(records)?;
        }
        if !data.is_empty() {
            std::fs::OpenOptions::new().write(true).open(&self.pending_file)?.set_len(0)?;
        }
        Ok(())
    }

    /// Merges pending records into SQLite now. With `stale_reads_ok`, a busy
    /// lock is not an error: the read goes on without them.
    pub fn commit_pending(&mut self) -> Result<(), DbError> {
        if pending::pending_size(&self.pending_file)? == 0 {
            return Ok(());
        }
        let lock = match self.lock(self.pending_timeout) {
            Ok(l) => l,
            Err(DbError::LockTimeout(..)) if self.stale_reads_ok => return Ok(()),
            Err(e) => return Err(e),
        };
        let r = self.commit_pending_locked(Vec::new());
        drop(lock);
        match r {
            Err(DbError::Sqlite(_)) if self.stale_reads_ok => Ok(()),
            r => r,
        }
    }

    /// Merges records into the rows in one `BEGIN IMMEDIATE` transaction.
    pub fn merge_records(&mut self, records: Vec<K::Record>) -> Result<(), DbError> {
        let conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        K::merge_records(&tx, records)?;
        tx.commit()?;
        Ok(())
    }

    /// Whether the database is missing or counts as deleted (pending
    /// records merged first).
    pub fn is_deleted(&mut self) -> Result<bool, DbError> {
        if !self.exists() {
            return Ok(true);
        }
        self.commit_pending()?;
        K::is_deleted(self.conn()?)
    }

    /// The raw metadata JSON.
    pub fn raw_metadata(&mut self) -> Result<String, DbError> {
        let path = self.db_file.clone();
        let sql = format!("SELECT metadata FROM {}", K::INFO_TABLE);
        let row: Option<Option<String>> = self.conn()?.query_row(&sql, [], |r| r.get(0)).optional()?;
        match row {
            Some(md) => Ok(md.unwrap_or_default()),
            None => Err(DbError::Corrupt(path, format!("missing row in {}", K::INFO_TABLE))),
        }
    }

    /// The metadata, deleted (empty) keys included.
    pub fn metadata(&mut self) -> Result<Metadata, DbError> {
        let raw = self.raw_metadata()?;
        parse_metadata(&raw).map_err(|e| DbError::Corrupt(self.db_file.clone(), e))
    }

    /// Checks that `updates` merged into the stored metadata (none when the
    /// database does not exist yet) stay within `limits`, so a request can
    /// be refused before it writes anything at all.
    pub fn check_metadata_update(&mut self, updates: &Metadata, limits: MetadataLimits) -> Result<(), DbError> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut merged = if self.exists() { self.metadata()? } else { Metadata::new() };
        merge_metadata(&mut merged, updates);
        validate_metadata(&merged, limits)
    }

    /// Merges `updates` into the metadata (newer timestamp wins per key;
    /// value `""` deletes). With `limits`, the merged set must stay within
    /// them or nothing is written.
    pub fn update_metadata(&mut self, updates: &Metadata, limits: Option<MetadataLimits>) -> Result<(), DbError> {
        let path = self.db_file.clone();
        let conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let raw: Option<String> = tx.query_row(&format!("SELECT metadata FROM {}", K::INFO_TABLE), [], |r| r.get(0))?;
        let mut md = parse_metadata(raw.as_deref().unwrap_or("")).map_err(|e| DbError::Corrupt(path, e))?;
        let before = md.clone();
        merge_metadata(&mut md, updates);
        if md == before {
            return Ok(());
        }
        if let Some(limits) = limits {
            validate_metadata(&md, limits)?;
        }
        let json = serde_json::to_string(&md).expect("metadata serialises");
        tx.execute(&format!("UPDATE {} SET metadata = ?", K::INFO_TABLE), [json])?;
        tx.commit()?;
        Ok(())
    }

    /// Raises `put_timestamp` to `ts` if it is newer.
    pub fn update_put_timestamp(&mut self, ts: &Timestamp) -> Result<(), DbError> {
        let t = ts.internal();
        let sql = format!("UPDATE {} SET put_timestamp = ?1 WHERE put_timestamp < ?1", K::INFO_TABLE);
        self.conn()?.execute(&sql, [t])?;
        Ok(())
    }

    /// Raises `status_changed_at` to `ts` if it is newer.
    pub fn update_status_changed_at(&mut self, ts: &Timestamp) -> Result<(), DbError> {
        let t = ts.internal();
        let sql = format!("UPDATE {} SET status_changed_at = ?1 WHERE status_changed_at < ?1", K::INFO_TABLE);
        self.conn()?.execute(&sql, [t])?;
        Ok(())
    }

    /// Marks the database deleted at `ts`: clears the metadata (except
    /// [`BrokerKind::DELETE_META_KEEP`]) and raises `delete_timestamp`
    /// (Swift's `delete_db`).
    pub fn delete_db(&mut self, ts: &Timestamp) -> Result<(), DbError> {
        let t = ts.internal();
        let cleared: Metadata = self
            .metadata()?
            .into_keys()
            .filter(|k| !K::DELETE_META_KEEP.contains(&k.to_ascii_lowercase().as_str()))
            .map(|k| (k, (String::new(), t.clone())))
            .collect();
        self.update_metadata(&cleared, None)?;
        let sql = format!(
            "UPDATE {} SET delete_timestamp = ?1, status = 'DELETED', status_changed_at = ?1 WHERE delete_timestamp < ?1",
            K::INFO_TABLE
        );
        self.conn()?.execute(&sql, [t])?;
        Ok(())
    }

    /// Merges replicated timestamps: earliest `created_at`, latest put and
    /// delete timestamps (Swift's `merge_timestamps`).
    pub fn merge_timestamps(&mut self, created_at: &str, put_timestamp: &str, delete_timestamp: &str) -> Result<(), DbError> {
        let conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let old = K::is_deleted(&tx)?;
        tx.execute(
            &format!(
                "UPDATE {} SET created_at = MIN(?1, created_at), put_timestamp = MAX(?2, put_timestamp), \
                 delete_timestamp = MAX(?3, delete_timestamp)",
                K::INFO_TABLE
            ),
            [created_at, put_timestamp, delete_timestamp],
        )?;
        if old != K::is_deleted(&tx)? {
            let now = Timestamp::now().internal();
            tx.execute(&format!("UPDATE {} SET status_changed_at = ?1 WHERE status_changed_at < ?1", K::INFO_TABLE), [now])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The largest ROWID ever used in the rows table (-1 if none): the
    /// replication high-water mark.
    pub fn max_row(&mut self) -> Result<i64, DbError> {
        let row: Option<i64> = self
            .conn()?
            .query_row("SELECT seq FROM sqlite_sequence WHERE name = ?1 LIMIT 1", [K::CONTAINS_TYPE], |r| r.get(0))
            .optional()?;
        Ok(row.unwrap_or(-1))
    }

    /// Removes deleted rows whose timestamp is older than `age_timestamp`,
    /// sync points not updated since `sync_timestamp` (seconds), and deleted
    /// metadata keys older than `age_timestamp`; pending records are merged
    /// first. Returns the number of rows removed.
    pub fn reclaim(&mut self, age_timestamp: &Timestamp, sync_timestamp: f64) -> Result<u64, DbError> {
        self.commit_pending()?;
        let age = age_timestamp.internal();
        let table = K::CONTAINS_TYPE;
        let col = K::RECLAIM_TIMESTAMP_COLUMN;
        let mut marker = String::new();
        let mut reclaimed = 0u64;
        // In pages, so one huge reclaim does not hold the write lock for long.
        loop {
            let conn = self.conn()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let end: Option<String> = tx
                .query_row(
                    &format!("SELECT name FROM {table} WHERE deleted = 1 AND name >= ?1 ORDER BY name LIMIT 1 OFFSET ?2"),
                    rusqlite::params![marker, RECLAIM_PAGE_SIZE],
                    |r| r.get(0),
                )
                .optional()?;
            let sql = format!("DELETE FROM {table} WHERE deleted = 1 AND name >= ?1 AND {col} < ?2");
            let n = match &end {
                Some(end) => tx.execute(&format!("{sql} AND name < ?3"), rusqlite::params![marker, age, end])?,
                None => tx.execute(&sql, rusqlite::params![marker, age])?,
            };
            tx.commit()?;
            reclaimed += n as u64;
            match end {
                Some(end) => marker = end,
                None => break,
            }
        }
        let path = self.db_file.clone();
        let conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM outgoing_sync WHERE updated_at < ?1", [sync_timestamp])?;
        tx.execute("DELETE FROM incoming_sync WHERE updated_at < ?1", [sync_timestamp])?;
        let raw: Option<String> = tx.query_row(&format!("SELECT metadata FROM {}", K::INFO_TABLE), [], |r| r.get(0))?;
        let mut md = parse_metadata(raw.as_deref().unwrap_or("")).map_err(|e| DbError::Corrupt(path, e))?;
        let before = md.len();
        md.retain(|_, (v, ts)| !(v.is_empty() && Timestamp::parse(ts).map(|t| t < *age_timestamp).unwrap_or(false)));
        if md.len() != before {
            let json = serde_json::to_string(&md).expect("metadata serialises");
            tx.execute(&format!("UPDATE {} SET metadata = ?", K::INFO_TABLE), [json])?;
        }
        tx.commit()?;
        Ok(reclaimed)
    }
}

/// Parses the metadata column ("" = none).
pub fn parse_metadata(raw: &str) -> Result<Metadata, String> {
    if raw.is_empty() {
        return Ok(Metadata::new());
    }
    // Swift writes lists; accept any [value, timestamp, ...] shape.
    let v: BTreeMap<String, Vec<serde_json::Value>> = serde_json::from_str(raw).map_err(|e| format!("bad metadata JSON: {e}"))?;
    Ok(v.into_iter()
        .map(|(k, vals)| {
            let s = |i: usize| match vals.get(i) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (k, (s(0), s(1)))
        })
        .collect())
}

/// The replication sync tables every database has (Swift's
/// `DatabaseBroker.initialize`).
const SYNC_TABLES_SCRIPT: &str = "
    CREATE TABLE outgoing_sync (
        remote_id TEXT UNIQUE,
        sync_point INTEGER,
        updated_at TEXT DEFAULT 0
    );
    CREATE TABLE incoming_sync (
        remote_id TEXT UNIQUE,
        sync_point INTEGER,
        updated_at TEXT DEFAULT 0
    );
    CREATE TRIGGER outgoing_sync_insert AFTER INSERT ON outgoing_sync
    BEGIN
        UPDATE outgoing_sync SET updated_at = STRFTIME('%s', 'NOW') WHERE ROWID = new.ROWID;
    END;
    CREATE TRIGGER outgoing_sync_update AFTER UPDATE ON outgoing_sync
    BEGIN
        UPDATE outgoing_sync SET updated_at = STRFTIME('%s', 'NOW') WHERE ROWID = new.ROWID;
    END;
    CREATE TRIGGER incoming_sync_insert AFTER INSERT ON incoming_sync
    BEGIN
        UPDATE incoming_sync SET updated_at = STRFTIME('%s', 'NOW') WHERE ROWID = new.ROWID;
    END;
    CREATE TRIGGER incoming_sync_update AFTER UPDATE ON incoming_sync
    BEGIN
        UPDATE incoming_sync SET updated_at = STRFTIME('%s', 'NOW') WHERE ROWID = new.ROWID;
    END;
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chexor_matches_swift() {
        // python: chexor('0'*32, 'o', '0000000001.00000')
        let h = chexor("00000000000000000000000000000000", "o", "0000000001.00000");
        let mut md5 = Md5::new();
        md5.update(b"o-0000000001.00000");
        let expect: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(h, expect);
        // XOR with itself cancels: inserting then deleting restores the hash.
        assert_eq!(chexor(&h, "o", "0000000001.00000"), "0".repeat(32));
    }

    #[test]
    fn title_case_is_pythons() {
        assert_eq!(title_case_header("x-container-meta-foo1bar"), "X-Container-Meta-Foo1Bar");
        assert_eq!(title_case_header("X-CONTAINER-READ"), "X-Container-Read");
    }

    #[test]
    fn metadata_limits_count_only_live_meta_items() {
        let limits = MetadataLimits { max_count: 2, max_overall_size: 10 };
        let mut md = Metadata::new();
        md.insert("X-Container-Meta-A".into(), ("1".into(), "1".into()));
        md.insert("X-Container-Meta-B".into(), ("".into(), "1".into()));
        md.insert("X-Container-Read".into(), ("x".repeat(100), "1".into()));
        assert!(validate_metadata(&md, limits).is_ok());
        md.insert("X-Container-Meta-C".into(), ("1".into(), "1".into()));
        md.insert("X-Container-Meta-D".into(), ("1".into(), "1".into()));
        assert!(matches!(validate_metadata(&md, limits), Err(DbError::InvalidMetadata(m)) if m == "Too many metadata items; max 2"));
        md.remove("X-Container-Meta-D");
        md.insert("X-Container-Meta-C".into(), ("123456789".into(), "1".into()));
        assert!(matches!(validate_metadata(&md, limits), Err(DbError::InvalidMetadata(m)) if m.starts_with("Total metadata too large")));
    }

    #[test]
    fn metadata_merge_keeps_the_newest_per_key() {
        let mut md = Metadata::new();
        md.insert("K".into(), ("old".into(), "0000000002.00000".into()));
        let mut up = Metadata::new();
        up.insert("K".into(), ("older".into(), "0000000001.00000".into()));
        up.insert("L".into(), ("new".into(), "0000000001.00000".into()));
        merge_metadata(&mut md, &up);
        assert_eq!(md["K"].0, "old");
        assert_eq!(md["L"].0, "new");
        assert_eq!(parse_metadata(&serde_json::to_string(&md).unwrap()).unwrap(), md);
        assert_eq!(parse_metadata(r#"{"X-Container-Meta-A": ["v", "1.0"]}"#).unwrap()["X-Container-Meta-A"].0, "v");
    }
}
