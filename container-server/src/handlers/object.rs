//! Object row updates from object servers: `PUT` and `DELETE` of
//! `/<dev>/<part>/<a>/<c>/<o>`. Acknowledged once the row is in the
//! container's pending file (see `common::db::pending` for durability).

use crate::routing::ObjectOp;
use crate::server::ContainerServer;
use common::backend_headers as bh;
use common::db::{InitParams, ObjectRecord};
use common::dbserver::request::{bad_request, header, request_timestamp, true_value, Refusal};
use common::dbserver::response::{device_failure, refuse, storage_failure};
use common::http::{self as h, Body};
use common::path::StoragePath;
use common::timestamp::Timestamp;
use http::{HeaderMap, Response, StatusCode};

/// The row an object update carries.
fn record_from(op: ObjectOp, headers: &HeaderMap, name: &str, ts: &Timestamp, policy: i64) -> Result<ObjectRecord, Refusal> {
    if op == ObjectOp::Delete {
        return Ok(ObjectRecord {
            name: name.to_string(),
            created_at: ts.internal(),
            size: 0,
            content_type: "application/deleted".into(),
            etag: "noetag".into(),
            deleted: 1,
            storage_policy_index: policy,
            ctype_timestamp: None,
            meta_timestamp: None,
        });
    }
    let required = |n: &str| -> Result<String, Refusal> {
        header(headers, n)?.map(str::to_string).ok_or_else(|| bad_request(format!("Missing {n} header")))
    };
    let size_text = required(bh::SIZE)?;
    let size: i64 =
        size_text.trim().parse().ok().filter(|s| *s >= 0).ok_or_else(|| bad_request(format!("Invalid X-Size '{size_text}'")))?;
    let optional_ts = |n: &str| -> Result<Option<String>, Refusal> {
        match header(headers, n)? {
            None => Ok(None),
            Some(v) => Timestamp::parse(v).map(|t| Some(t.internal())).map_err(|_| bad_request(format!("Invalid {n} header"))),
        }
    };
    Ok(ObjectRecord {
        name: name.to_string(),
        created_at: ts.internal(),
        size,
        content_type: required(bh::CONTENT_TYPE)?,
        etag: required(bh::ETAG)?,
        deleted: 0,
        storage_policy_index: policy,
        ctype_timestamp: optional_ts(bh::CONTENT_TYPE_TIMESTAMP)?,
        meta_timestamp: optional_ts(bh::META_TIMESTAMP)?,
    })
}

impl ContainerServer {
    /// Swift's `_should_autocreate`: `X-Backend-Auto-Create` decides when
    /// given; otherwise accounts with the auto-create prefix (but not the
    /// shards account).
    fn should_autocreate(&self, account: &str, headers: &HeaderMap) -> bool {
        if let Some(v) = headers.get(bh::BACKEND_AUTO_CREATE).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()) {
            return true_value(Some(v));
        }
        let prefix = &self.auto_create_prefix;
        !account.starts_with(&format!("{prefix}shards_")) && account.starts_with(prefix.as_str())
    }

    /// `PUT`/`DELETE` of an object row.
    pub async fn object_update(&self, op: ObjectOp, path: StoragePath, headers: &HeaderMap) -> Response<Body> {
        let prepared = (|| -> Result<_, Refusal> {
            let ts = request_timestamp(headers)?;
            let policy = self.requested_policy(headers)?.unwrap_or(0);
            let name = path.object.as_deref().unwrap_or_default();
            let record = record_from(op, headers, name, &ts, policy)?;
            Ok((ts, policy, record))
        })();
        let (ts, policy, record) = match prepared {
            Ok(p) => p,
            Err(r) => return refuse(r),
        };
        let container = path.container.clone().unwrap_or_default();
        let autocreate = self.should_autocreate(&path.account, headers).then(|| InitParams {
            account: path.account.clone(),
            container: Some(container.clone()),
            put_timestamp: ts.with_offset(0),
            storage_policy_index: policy,
            device: path.device.clone(),
        });
        let result = self.store.run_on_db(&path, move |db| crate::storage::update_object(db, record, autocreate)).await;
        match result {
            Err(e) => device_failure(&path.device, e),
            Ok(Err(e)) => storage_failure("object update", e),
            Ok(Ok(false)) => h::status(StatusCode::NOT_FOUND),
            Ok(Ok(true)) => h::status(if op == ObjectOp::Put { StatusCode::CREATED } else { StatusCode::NO_CONTENT }),
        }
    }
}
