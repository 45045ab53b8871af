//! Container `PUT`, `POST`, `DELETE` and `HEAD`.

use super::{info_headers, last_modified};
use crate::account_update;
use crate::server::ContainerServer;
use crate::storage::{self, ContainerWrite, DeleteContainerOutcome, PutContainerOutcome};
use common::backend_headers as bh;
use common::db::MetadataLimits;
use common::dbserver::request::{
    bad_request, header, metadata_limits, negotiate_listing, query_param, request_timestamp, true_value, Refusal,
};
use common::dbserver::response::{device_failure, negotiation_failure, refuse, set_header, storage_failure};
use common::http::{self as h, Body};
use common::path::StoragePath;
use common::server::RequestInfo;
use http::{HeaderMap, Response, StatusCode};

/// Swift's `validate_sync_to`, without container-sync realms (none can be
/// configured yet): `http(s)://<allowed host>/<path>` or empty.
fn validate_sync_to(value: &str, allowed_hosts: &[String]) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if let Some(rest) = value.strip_prefix("//") {
        if rest.split('/').count() == 4 {
            return Err("No realms configured in container-sync-realms.conf".into());
        }
    }
    let (scheme, rest) = value.split_once("://").unwrap_or(("", value));
    if scheme != "http" && scheme != "https" {
        return Err(format!("Invalid scheme '{scheme}' in X-Container-Sync-To, must be \"//\", \"http\", or \"https\"."));
    }
    let (hostport, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, String::new()));
    if path.is_empty() {
        return Err("Path required in X-Container-Sync-To".into());
    }
    if path.contains(['?', '#', ';']) {
        return Err("Params, queries, and fragments not allowed in X-Container-Sync-To".into());
    }
    let host = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']').next().unwrap_or("").trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or("")
    };
    if !allowed_hosts.iter().any(|h| h == host) {
        return Err(format!("Invalid host '{host}' in X-Container-Sync-To"));
    }
    Ok(())
}

impl ContainerServer {
    fn metadata_limits(&self) -> MetadataLimits {
        metadata_limits(&self.swift.constraints)
    }

    /// Everything a PUT/POST needs from the request, checked before any
    /// write.
    fn container_write(&self, path: &StoragePath, headers: &HeaderMap) -> Result<ContainerWrite, Refusal> {
        let timestamp = request_timestamp(headers)?;
        if let Some(to) = header(headers, "x-container-sync-to")? {
            validate_sync_to(to, &self.settings.allowed_sync_hosts).map_err(bad_request)?;
        }
        Ok(ContainerWrite {
            account: path.account.clone(),
            container: path.container.clone().unwrap_or_default(),
            device: path.device.clone(),
            timestamp,
            metadata: self.request_metadata(headers, &timestamp)?,
            limits: self.metadata_limits(),
        })
    }

    /// `PUT /dev/part/a/c`: create (201) or update (202), then tell the
    /// account servers.
    pub async fn put_container(&self, path: StoragePath, headers: &HeaderMap, info: &RequestInfo) -> Response<Body> {
        let prepared = (|| -> Result<_, Refusal> {
            let write = self.container_write(&path, headers)?;
            let requested = self.requested_policy(headers)?;
            let targets = account_update::targets(headers).map_err(bad_request)?;
            Ok((write, requested, targets))
        })();
        let (write, requested, targets) = match prepared {
            Ok(p) => p,
            Err(r) => return refuse(r),
        };
        let new_policy = match requested {
            Some(p) => p,
            None => match header(headers, bh::BACKEND_STORAGE_POLICY_DEFAULT) {
                Ok(Some(v)) => match v.trim().parse::<i64>() {
                    Ok(p) => p,
                    Err(_) => return refuse(bad_request(format!("Invalid X-Backend-Storage-Policy-Default '{v}'"))),
                },
                Ok(None) => i64::from(self.swift.default_policy().index),
                Err(r) => return refuse(r),
            },
        };
        let result = self.store.run_on_db(&path, move |db| storage::put_container(db, &write, new_policy, requested)).await;
        let outcome = match result {
            Err(e) => return device_failure(&path.device, e),
            Ok(Err(e)) => return storage_failure("container PUT", e),
            Ok(Ok(o)) => o,
        };
        let (status, cinfo) = match outcome {
            PutContainerOutcome::PolicyConflict(current) => {
                let mut r = h::status(StatusCode::CONFLICT);
                set_header(&mut r, bh::BACKEND_STORAGE_POLICY_INDEX, &current.to_string());
                return r;
            }
            PutContainerOutcome::StillDeleted => return h::status(StatusCode::CONFLICT),
            PutContainerOutcome::Created(i) => (StatusCode::CREATED, i),
            PutContainerOutcome::Accepted(i) => (StatusCode::ACCEPTED, i),
        };
        if let Some(targets) = targets {
            let all_404 = account_update::send(&self.client, &targets, &path, &cinfo, headers, info, "PUT").await;
            if all_404 {
                return h::status(StatusCode::NOT_FOUND);
            }
        }
        let mut r = h::status(status);
        set_header(&mut r, bh::BACKEND_STORAGE_POLICY_INDEX, &cinfo.storage_policy_index.to_string());
        r
    }

    /// `POST /dev/part/a/c`: metadata (and put timestamp) of an existing
    /// container.
    pub async fn post_container(&self, path: StoragePath, headers: &HeaderMap) -> Response<Body> {
        let write = match self.container_write(&path, headers) {
            Ok(w) => w,
            Err(r) => return refuse(r),
        };
        let keep = true_value(headers.get(bh::BACKEND_NO_TIMESTAMP_UPDATE).and_then(|v| v.to_str().ok()));
        let result = self.store.run_on_db(&path, move |db| storage::post_container(db, &write, keep)).await;
        match result {
            Err(e) => device_failure(&path.device, e),
            Ok(Err(e)) => storage_failure("container POST", e),
            Ok(Ok(false)) => h::status(StatusCode::NOT_FOUND),
            Ok(Ok(true)) => h::status(StatusCode::NO_CONTENT),
        }
    }

    /// `DELETE /dev/part/a/c`: 204, 404 if missing, 409 if not empty.
    pub async fn delete_container(&self, path: StoragePath, headers: &HeaderMap, info: &RequestInfo) -> Response<Body> {
        let prepared =
            (|| -> Result<_, Refusal> { Ok((request_timestamp(headers)?, account_update::targets(headers).map_err(bad_request)?)) })();
        let (ts, targets) = match prepared {
            Ok(p) => p,
            Err(r) => return refuse(r),
        };
        let result = self.store.run_on_db(&path, move |db| storage::delete_container(db, &ts)).await;
        match result {
            Err(e) => device_failure(&path.device, e),
            Ok(Err(e)) => storage_failure("container DELETE", e),
            Ok(Ok(DeleteContainerOutcome::NotFound)) => h::status(StatusCode::NOT_FOUND),
            Ok(Ok(DeleteContainerOutcome::Conflict)) => h::status(StatusCode::CONFLICT),
            Ok(Ok(DeleteContainerOutcome::Deleted { existed, info: cinfo })) => {
                if let Some(targets) = targets {
                    if account_update::send(&self.client, &targets, &path, &cinfo, headers, info, "DELETE").await {
                        return h::status(StatusCode::NOT_FOUND);
                    }
                }
                h::status(if existed { StatusCode::NO_CONTENT } else { StatusCode::NOT_FOUND })
            }
        }
    }

    /// `HEAD /dev/part/a/c`: 204 with counts, timestamps and metadata; 404
    /// (with the backend timestamps) when missing or deleted.
    pub async fn head_container(&self, path: StoragePath, headers: &HeaderMap, query: Option<&str>) -> Response<Body> {
        // Swift negotiates the listing format on HEAD too (400/406 apply).
        let format = match query_param(query, "format") {
            Ok(f) => f,
            Err(r) => return refuse(r),
        };
        let content_type = match negotiate_listing(format.as_deref(), headers) {
            Ok(ct) => ct,
            Err(e) => return negotiation_failure(e),
        };
        let result = self.store.run_on_db(&path, storage::head_container).await;
        let state = match result {
            Err(e) => return device_failure(&path.device, e),
            Ok(Err(e)) => return storage_failure("container HEAD", e),
            Ok(Ok(s)) => s,
        };
        let mut r = h::status(if state.deleted { StatusCode::NOT_FOUND } else { StatusCode::NO_CONTENT });
        for (k, v) in info_headers(&state.info, state.deleted) {
            set_header(&mut r, k, &v);
        }
        if state.deleted {
            return r;
        }
        for (k, v) in self.response_metadata(&state.metadata) {
            set_header(&mut r, k, v);
        }
        set_header(&mut r, "content-type", &format!("{content_type}; charset=utf-8"));
        set_header(&mut r, "last-modified", &last_modified(&state.info));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_to_is_checked_like_swift() {
        let hosts = vec!["127.0.0.1".to_string()];
        assert!(validate_sync_to("", &hosts).is_ok());
        assert!(validate_sync_to("http://127.0.0.1:8080/v1/a/c", &hosts).is_ok());
        assert!(validate_sync_to("ftp://127.0.0.1/v1/a/c", &hosts).unwrap_err().starts_with("Invalid scheme"));
        assert!(validate_sync_to("http://10.0.0.1/v1/a/c", &hosts).unwrap_err().starts_with("Invalid host"));
        assert_eq!(validate_sync_to("http://127.0.0.1", &hosts).unwrap_err(), "Path required in X-Container-Sync-To");
    }
}
