//! Container → account updates (Swift's `account_update`): after a
//! container PUT or DELETE, tell every account server the proxy named.

use common::backend::{read_body, BackendClient};
use common::backend_headers::{self as bh, AccountUpdate, UpdateHeaderError, UpdateTarget};
use common::db::ContainerInfo;
use common::http::empty;
use common::log;
use common::path::StoragePath;
use common::server::RequestInfo;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// The account servers to update (`X-Account-Host`/`-Device`/`-Partition`).
/// `Ok(None)` when the request names none (no partition); `Err` (400)
/// when the headers are malformed, e.g. hosts and devices differ in number
/// (checked before any write, unlike Swift, which notices afterwards).
pub fn targets(headers: &HeaderMap) -> Result<Option<UpdateTarget>, String> {
    match AccountUpdate::parse(headers) {
        Ok(found) => Ok(found.map(|AccountUpdate(t)| t)),
        Err(UpdateHeaderError::MissingPartition { .. }) => Ok(None),
        Err(UpdateHeaderError::CountMismatch { .. }) => Err("X-Account-Host and X-Account-Device list different numbers of servers".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Sends the container's stats to every account server in parallel, each
/// within the client's timeouts. Returns whether *every* one answered 404
/// (the account does not exist: the container request then answers 404).
/// Other failures are logged; the container-updater daemon retries later.
pub async fn send(
    client: &BackendClient,
    targets: &UpdateTarget,
    path: &StoragePath,
    cinfo: &ContainerInfo,
    req_headers: &HeaderMap,
    info: &RequestInfo,
    method: &str,
) -> bool {
    let container = path.container.clone().unwrap_or_default();
    let mut headers = HeaderMap::new();
    let mut add = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(HeaderName::from_static(k), v);
        }
    };
    add(bh::PUT_TIMESTAMP, cinfo.put_timestamp.clone());
    add(bh::DELETE_TIMESTAMP, cinfo.delete_timestamp.clone());
    add(bh::OBJECT_COUNT, cinfo.object_count.to_string());
    add(bh::BYTES_USED, cinfo.bytes_used.to_string());
    add(bh::TRANS_ID, info.trans_id.clone());
    add(bh::BACKEND_STORAGE_POLICY_INDEX, cinfo.storage_policy_index.to_string());
    add("user-agent", format!("container-server {}", std::process::id()));
    let host = req_headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    add(
        "referer",
        format!(
            "{method} http://{host}{}",
            common::http::quote_path(&format!("/{}/{}/{}/{}", path.device, path.partition, path.account, container))
        ),
    );
    if req_headers.get(bh::ACCOUNT_OVERRIDE_DELETED).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("yes")) {
        add(bh::ACCOUNT_OVERRIDE_DELETED, "yes".to_string());
    }
    let mut tasks = Vec::new();
    for node in targets.nodes.clone() {
        let client = client.clone();
        let headers = headers.clone();
        let body_timeout = client.node_timeout();
        let target_path = format!("/{}/{}/{}/{container}", node.device, targets.partition, path.account);
        tasks.push(tokio::spawn(async move {
            let device = &node.device;
            let Some((ip, port)) = node.ip_port() else {
                log::error(&format!("ERROR account update failed with {}/{device}: bad address (will retry later)", node.host));
                return None;
            };
            match client.request(Method::PUT, &ip, port, &target_path, headers, empty()).await {
                Ok(resp) => {
                    let status = resp.status();
                    // Drain the body so the connection can be reused.
                    let _ = read_body(resp, 64 * 1024, body_timeout).await;
                    if status != StatusCode::NOT_FOUND && !status.is_success() {
                        log::error(&format!("ERROR Account update failed with {ip}:{port}/{device} (will retry later): Response {status}"));
                    }
                    Some(status)
                }
                Err(e) => {
                    log::error(&format!("ERROR account update failed with {ip}:{port}/{device} (will retry later): {e}"));
                    None
                }
            }
        }));
    }
    let mut not_found = 0;
    for t in tasks {
        if let Ok(Some(StatusCode::NOT_FOUND)) = t.await {
            not_found += 1;
        }
    }
    !targets.nodes.is_empty() && not_found == targets.nodes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::backend_headers::UpdateNode;

    #[test]
    fn targets_come_from_comma_lists() {
        let mut h = HeaderMap::new();
        assert_eq!(targets(&h), Ok(None));
        h.insert("x-account-host", HeaderValue::from_static("127.0.0.1:1, 127.0.0.1:2"));
        h.insert("x-account-device", HeaderValue::from_static("sda,sdb"));
        assert_eq!(targets(&h), Ok(None), "no partition: no account update");
        h.insert("x-account-partition", HeaderValue::from_static("3"));
        let t = targets(&h).unwrap().unwrap();
        assert_eq!(t.nodes, vec![UpdateNode::new("127.0.0.1:1", "sda"), UpdateNode::new("127.0.0.1:2", "sdb")]);
        h.insert("x-account-device", HeaderValue::from_static("sda"));
        assert!(targets(&h).is_err());
        h.insert("x-account-device", HeaderValue::from_static("sda,sdb"));
        h.insert("x-account-partition", HeaderValue::from_static("three"));
        assert!(targets(&h).is_err());
    }
}
