//! The expirer queue: where the object servers record objects that carry
//! `X-Delete-At` and where the object expirer finds them (swift/obj/expirer.py
//! `ExpirerConfig.get_expirer_container`, `build_task_obj`, `parse_task_obj`).
//!
//! A task is an object row `<delete_at>-<account>/<container>/<object>` in
//! the task container `<day start - shard>` of the hidden account
//! `.expiring_objects`; the containers are named by their (ten-digit) time,
//! so the expirer lists the account and takes the ones that are due.

use crate::hash::HashPathConf;
use crate::timestamp::{Timestamp, MAX_DELETE_AT};

/// The hidden account's name after the `auto_create_account_prefix`.
pub const ACCOUNT_SUFFIX: &str = "expiring_objects";

/// Swift's default `expiring_objects_container_divisor` (a day, in seconds).
pub const DEFAULT_DIVISOR: u64 = 86400;

/// How many task containers one divisor window is spread over.
pub const CONTAINERS_PER_DIVISOR: u64 = 100;

/// The `X-Delete-At-*` headers under their old names, for code that has
/// not moved to [`crate::backend_headers`] (which defines them).
pub use crate::backend_headers::{
    BACKEND_CLEAN_EXPIRING_OBJECT_QUEUE as CLEAN_QUEUE_HEADER, DELETE_AT_CONTAINER as CONTAINER_HEADER, DELETE_AT_DEVICE as DEVICE_HEADER,
    DELETE_AT_HOST as HOST_HEADER, DELETE_AT_PARTITION as PARTITION_HEADER,
};
/// The content type of a task row (Swift's `X_DELETE_TYPE`).
pub const TASK_CONTENT_TYPE: &str = "text/plain";
/// The MD5 of nothing: the etag of every task row.
pub const EMPTY_ETAG: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// Swift's `normalize_delete_at_timestamp`: ten digits, clamped.
pub fn normalize(secs: i64) -> String {
    format!("{:010}", secs.clamp(0, MAX_DELETE_AT))
}

/// Where the tasks of one cluster live: the hidden account and the divisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpirerQueue {
    /// `.expiring_objects` (the prefix is `auto_create_account_prefix`).
    pub account: String,
    /// Seconds per group of task containers (`expiring_objects_container_divisor`).
    pub divisor: u64,
}

impl ExpirerQueue {
    /// The queue of a cluster whose `auto_create_account_prefix` is `prefix`.
    pub fn new(prefix: &str, divisor: u64) -> ExpirerQueue {
        ExpirerQueue { account: format!("{prefix}{ACCOUNT_SUFFIX}"), divisor: divisor.max(CONTAINERS_PER_DIVISOR + 1) }
    }

    /// The task container for an object deleted at `delete_at`: the start of
    /// its divisor window less a shard (the path's hash mod 100), so a busy
    /// day is spread over 100 containers.
    pub fn container(&self, hash: &HashPathConf, delete_at: u64, account: &str, container: &str, object: &str) -> String {
        let shard =
            hash.digest(account, Some(container), Some(object)).map_or(0, |d| u128::from_be_bytes(d) % CONTAINERS_PER_DIVISOR as u128);
        let start = (delete_at / self.divisor * self.divisor) as i64;
        normalize(start - shard as i64)
    }
}

/// The task row's name: `<delete_at>-<account>/<container>/<object>`.
pub fn task_object(delete_at: u64, account: &str, container: &str, object: &str) -> String {
    format!("{}-{account}/{container}/{object}", normalize(delete_at.min(i64::MAX as u64) as i64))
}

/// A task row read back: when, and which object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub delete_at: Timestamp,
    pub account: String,
    pub container: String,
    pub object: String,
}

/// Reads a task row's name (Swift's `parse_task_obj`); `None` when it is
/// not one.
pub fn parse_task_object(name: &str) -> Option<Task> {
    let (ts, path) = name.split_once('-')?;
    let delete_at = Timestamp::parse(ts).ok()?;
    let mut parts = path.splitn(3, '/');
    let (account, container, object) = (parts.next()?, parts.next()?, parts.next()?);
    if account.is_empty() || container.is_empty() || object.is_empty() {
        return None;
    }
    Some(Task { delete_at, account: account.into(), container: container.into(), object: object.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_are_swifts() {
        assert_eq!(task_object(1_700_000_123, "AUTH_t", "c", "o/with/slashes"), "1700000123-AUTH_t/c/o/with/slashes");
        assert_eq!(task_object(5, "a", "c", "o"), "0000000005-a/c/o");
        let t = parse_task_object("1700000123-AUTH_t/c/o/with/slashes").expect("a task");
        assert_eq!(
            (t.delete_at.secs(), t.account.as_str(), t.container.as_str(), t.object.as_str()),
            (1_700_000_123, "AUTH_t", "c", "o/with/slashes")
        );
        assert_eq!(parse_task_object("1700000123-a/c"), None);
        assert_eq!(parse_task_object("soon-a/c/o"), None);
        assert_eq!(parse_task_object("1700000123"), None);
    }

    #[test]
    fn task_containers_are_swifts() {
        // Swift 2.38: ExpirerConfig({}).get_expirer_container(1700000123, 'a', 'c', 'o')
        // with an empty hash prefix and suffix 'changeme': md5('/a/c/ochangeme') % 100 = 37.
        let hash = HashPathConf::new("", "changeme");
        let q = ExpirerQueue::new(".", DEFAULT_DIVISOR);
        assert_eq!(q.account, ".expiring_objects");
        assert_eq!(q.container(&hash, 1_700_000_123, "a", "c", "o"), "1699919963");
        let day = 1_699_920_000;
        // Every time of one day maps into the same 100 containers before it.
        for at in [day, day + 1, day + 86399] {
            let c: u64 = q.container(&hash, at, "a", "c", "o").parse().expect("digits");
            assert!(c <= day && day - c < 100);
        }
        assert_eq!(normalize(-5), "0000000000");
        assert_eq!(normalize(99_999_999_999), "9999999999");
    }
}
