//! Account `PUT`, `POST`, `DELETE` and `HEAD`.

use super::{deleted_response, request_metadata};
use crate::server::AccountServer;
use crate::storage::{self, AccountWrite, Lookup, PutAccountOutcome};
use common::dbserver::request::{negotiate_listing, query_param, request_timestamp, Refusal};
use common::dbserver::response::{device_failure, negotiation_failure, refuse, set_header, storage_failure};
use common::http::{self as h, Body};
use common::path::StoragePath;
use http::{HeaderMap, Response, StatusCode};

impl AccountServer {
    /// Everything a PUT/POST needs from the request, checked before any
    /// write.
    fn account_write(&self, path: &StoragePath, headers: &HeaderMap) -> Result<AccountWrite, Refusal> {
        let timestamp = request_timestamp(headers)?;
        Ok(AccountWrite {
            account: path.account.clone(),
            device: path.device.clone(),
            timestamp,
            metadata: request_metadata(headers, &timestamp)?,
            limits: self.metadata_limits(),
        })
    }

    /// `PUT /dev/part/a`: create (201) or update (202); 403 while a deleted
    /// account awaits the reaper; 409 when older than the deletion.
    pub async fn put_account(&self, path: StoragePath, headers: &HeaderMap) -> Response<Body> {
        let write = match self.account_write(&path, headers) {
            Ok(w) => w,
            Err(r) => return refuse(r),
        };
        let result = self.store.run_on_db(&path, move |db| storage::put_account(db, &write)).await;
        match result {
            Err(e) => device_failure(&path.device, e),
            Ok(Err(e)) => storage_failure("account PUT", e),
            Ok(Ok(PutAccountOutcome::Created)) => h::status(StatusCode::CREATED),
            Ok(Ok(PutAccountOutcome::Accepted)) => h::status(StatusCode::ACCEPTED),
            Ok(Ok(PutAccountOutcome::RecentlyDeleted)) => deleted_response(StatusCode::FORBIDDEN, true, "Recently deleted"),
            Ok(Ok(PutAccountOutcome::StillDeleted)) => h::status(StatusCode::CONFLICT),
        }
    }

    /// `POST /dev/part/a`: metadata of a live account (204; 404 if missing
    /// or deleted).
    pub async fn post_account(&self, path: StoragePath, headers: &HeaderMap) -> Response<Body> {
        let write = match self.account_write(&path, headers) {
            Ok(w) => w,
            Err(r) => return refuse(r),
        };
        let result = self.store.run_on_db(&path, move |db| storage::post_account(db, &write)).await;
        match result {
            Err(e) => device_failure(&path.device, e),
            Ok(Err(e)) => storage_failure("account POST", e),
            Ok(Ok(Lookup::Missing { status_deleted })) => deleted_response(StatusCode::NOT_FOUND, status_deleted, ""),
            Ok(Ok(Lookup::Found(()))) => h::status(StatusCode::NO_CONTENT),
        }
    }

    /// `DELETE /dev/part/a`: marks the account deleted (204 with
    /// `X-Account-Status: Deleted`); its containers are left for the
    /// account reaper, as in Swift. 404 if missing or already deleted.
    pub async fn delete_account(&self, path: StoragePath, headers: &HeaderMap) -> Response<Body> {
        let ts = match request_timestamp(headers) {
            Ok(t) => t,
            Err(r) => return refuse(r),
        };
        let result = self.store.run_on_db(&path, move |db| storage::delete_account(db, &ts)).await;
        match result {
            Err(e) => device_failure(&path.device, e),
            Ok(Err(e)) => storage_failure("account DELETE", e),
            Ok(Ok(Lookup::Missing { status_deleted })) => deleted_response(StatusCode::NOT_FOUND, status_deleted, ""),
            Ok(Ok(Lookup::Found(status_deleted))) => deleted_response(StatusCode::NO_CONTENT, status_deleted, ""),
        }
    }

    /// `HEAD /dev/part/a`: 204 with totals, per-policy totals and metadata;
    /// 404 when missing or deleted.
    pub async fn head_account(&self, path: StoragePath, headers: &HeaderMap, query: Option<&str>) -> Response<Body> {
        // Swift negotiates the listing format on HEAD too (400/406 apply).
        let format = match query_param(query, "format") {
            Ok(f) => f,
            Err(r) => return refuse(r),
        };
        let content_type = match negotiate_listing(format.as_deref(), headers) {
            Ok(ct) => ct,
            Err(e) => return negotiation_failure(e),
        };
        let result = self.store.run_on_db(&path, storage::head_account).await;
        let state = match result {
            Err(e) => return device_failure(&path.device, e),
            Ok(Err(e)) => return storage_failure("account HEAD", e),
            Ok(Ok(Lookup::Missing { status_deleted })) => return deleted_response(StatusCode::NOT_FOUND, status_deleted, ""),
            Ok(Ok(Lookup::Found(s))) => s,
        };
        let mut r = h::status(StatusCode::NO_CONTENT);
        for (k, v) in self.account_headers(&state) {
            set_header(&mut r, &k, &v);
        }
        set_header(&mut r, "content-type", &format!("{content_type}; charset=utf-8"));
        r
    }
}
