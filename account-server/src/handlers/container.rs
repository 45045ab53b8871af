//! Container rows: `PUT /<dev>/<part>/<a>/<c>` sent by container servers
//! after a container PUT or DELETE (and by the container updater) with
//! the container's timestamps and totals. Acknowledged once the row is in
//! the account's pending file (see `common::db::pending` for durability).

use crate::server::AccountServer;
use crate::storage::{self, ContainerUpdate};
use common::backend_headers as bh;
use common::db::broker::title_case_header;
use common::db::{ContainerRecord, InitParams};
use common::dbserver::request::{bad_request, header, request_timestamp, Refusal};
use common::dbserver::response::{device_failure, refuse, storage_failure};
use common::http::{self as h, Body};
use common::path::StoragePath;
use common::timestamp::Timestamp;
use http::{HeaderMap, Response, StatusCode};
use std::time::Duration;

/// How long a proxied update (one with `X-Trans-Id`) waits for the pending
/// file's lock (Swift's 3 s).
const PROXIED_PENDING_TIMEOUT: Duration = Duration::from_secs(3);

/// A required timestamp header.
fn timestamp_header(headers: &HeaderMap, name: &str) -> Result<Timestamp, Refusal> {
    match header(headers, name)? {
        None => Err(bad_request(format!("Missing {} header", title_case_header(name)))),
        Some(v) => Timestamp::parse(v.trim()).map_err(|_| bad_request(format!("Invalid {} header", title_case_header(name)))),
    }
}

/// A required non-negative count header.
fn count_header(headers: &HeaderMap, name: &str) -> Result<i64, Refusal> {
    match header(headers, name)? {
        None => Err(bad_request(format!("Missing {} header", title_case_header(name)))),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad_request(format!("Invalid {} header", title_case_header(name)))),
    }
}

/// The row a container update carries (its `deleted` flag worked out as
/// Swift's `put_container` does).
fn container_record(container: &str, headers: &HeaderMap) -> Result<ContainerRecord, Refusal> {
    let put = timestamp_header(headers, bh::PUT_TIMESTAMP)?;
    let delete = timestamp_header(headers, bh::DELETE_TIMESTAMP)?;
    let objects = count_header(headers, bh::OBJECT_COUNT)?;
    let bytes = count_header(headers, bh::BYTES_USED)?;
    // Swift stores any index (a policy may be gone from swift.conf and still
    // hold containers); it must be a number.
    let policy = match header(headers, bh::BACKEND_STORAGE_POLICY_INDEX)? {
        None => 0,
        Some(v) => {
            v.trim().parse::<u32>().map(i64::from).map_err(|_| bad_request(format!("Invalid X-Backend-Storage-Policy-Index '{v}'")))?
        }
    };
    Ok(ContainerRecord::new(container, &put, &delete, objects, bytes, policy))
}

impl AccountServer {
    /// `PUT` of a container row: 201, or 204 when the row says the
    /// container is deleted; 404 when the account is missing or deleted,
    /// unless it is an auto-create account (then it is created first).
    pub async fn container_update(&self, path: StoragePath, headers: &HeaderMap) -> Response<Body> {
        let prepared = (|| -> Result<_, Refusal> {
            // Unlike the account verbs, X-Timestamp is optional here.
            let ts = if headers.contains_key(bh::TIMESTAMP) { request_timestamp(headers)? } else { Timestamp::now() };
            let record = container_record(path.container.as_deref().unwrap_or_default(), headers)?;
            let override_deleted = header(headers, bh::ACCOUNT_OVERRIDE_DELETED)?.is_some_and(|v| v.eq_ignore_ascii_case("yes"));
            Ok((ts, record, override_deleted))
        })();
        let (ts, record, override_deleted) = match prepared {
            Ok(p) => p,
            Err(r) => return refuse(r),
        };
        // Swift compares the two header strings; for timestamps in one
        // format that is the timestamp order.
        let deleted_report = Timestamp::parse(&record.delete_timestamp).ok() > Timestamp::parse(&record.put_timestamp).ok();
        let autocreate = path.account.starts_with(self.auto_create_prefix.as_str()).then(|| InitParams {
            account: path.account.clone(),
            container: None,
            put_timestamp: ts,
            storage_policy_index: 0,
            device: path.device.clone(),
        });
        let update = ContainerUpdate {
            record,
            autocreate,
            override_deleted,
            pending_timeout: headers.contains_key(bh::TRANS_ID).then_some(PROXIED_PENDING_TIMEOUT),
        };
        let result = self.store.run_on_db(&path, move |db| storage::update_container(db, update)).await;
        match result {
            Err(e) => device_failure(&path.device, e),
            Ok(Err(e)) => storage_failure("container update", e),
            Ok(Ok(false)) => h::status(StatusCode::NOT_FOUND),
            Ok(Ok(true)) => h::status(if deleted_report { StatusCode::NO_CONTENT } else { StatusCode::CREATED }),
        }
    }
}
