//! Container → account updates (Swift's `account_update`): after a
//! container PUT or DELETE, tell every account server the proxy named.

use common::backend::{read_body, BackendClient};
use common::db::ContainerInfo;
use common::http::empty;
use common::log;
use common::path::StoragePath;
use common::server::RequestInfo;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

/// The account servers to update: from `X-Account-Host` (`ip:port`
/// list), `X-Account-Device` (list) and `X-Account-Partition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTargets {
    pub partition: String,
    /// (`ip:port`, device) pairs.
    pub nodes: Vec<(String, String)>,
}

fn csv(headers: &HeaderMap, name: &str) -> Vec<String> {
    let v = headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    v.split(',').map(|s| s.trim().to_string()).collect()
}

impl AccountTargets {
    /// `Ok(None)` when the request names no account servers; `Err` (400)
    /// when hosts and devices differ in number (checked before any write,
    /// unlike Swift, which notices afterwards).
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<AccountTargets>, String> {
        let hosts = csv(headers, "x-account-host");
        let devices = csv(headers, "x-account-device");
        if hosts.len() != devices.len() {
            return Err("X-Account-Host and X-Account-Device list different numbers of servers".into());
        }
        let partition = headers.get("x-account-partition").and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_string();
        if partition.is_empty() {
            return Ok(None);
        }
        Ok(Some(AccountTargets { partition, nodes: hosts.into_iter().zip(devices).collect() }))
    }
}

/// Sends the container's stats to every account server in parallel, each
/// within the client's timeouts. Returns whether *every* one answered 404
/// (the account does not exist: the container request then answers 404).
/// Other failures are logged; the container-updater daemon retries later.
pub async fn send(
    client: &BackendClient,
    targets: &AccountTargets,
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
    add("x-put-timestamp", cinfo.put_timestamp.clone());
    add("x-delete-timestamp", cinfo.delete_timestamp.clone());
    add("x-object-count", cinfo.object_count.to_string());
    add("x-bytes-used", cinfo.bytes_used.to_string());
    add("x-trans-id", info.trans_id.clone());
    add("x-backend-storage-policy-index", cinfo.storage_policy_index.to_string());
    add("user-agent", format!("container-server {}", std::process::id()));
    let host = req_headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    add(
        "referer",
        format!(
            "{method} http://{host}{}",
            common::http::quote_path(&format!("/{}/{}/{}/{}", path.device, path.partition, path.account, container))
        ),
    );
    if req_headers.get("x-account-override-deleted").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("yes")) {
        add("x-account-override-deleted", "yes".to_string());
    }
    let mut tasks = Vec::new();
    for (hostport, device) in targets.nodes.clone() {
        let client = client.clone();
        let headers = headers.clone();
        let body_timeout = client.node_timeout();
        let target_path = format!("/{device}/{}/{}/{container}", targets.partition, path.account);
        tasks.push(tokio::spawn(async move {
            let Some((ip, port)) =
                hostport.rsplit_once(':').and_then(|(ip, p)| Some((ip.trim_matches(['[', ']']).to_string(), p.parse::<u16>().ok()?)))
            else {
                log::error(&format!("ERROR account update failed with {hostport}/{device}: bad address (will retry later)"));
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

    #[test]
    fn targets_come_from_comma_lists() {
        let mut h = HeaderMap::new();
        assert_eq!(AccountTargets::from_headers(&h), Ok(None));
        h.insert("x-account-host", HeaderValue::from_static("127.0.0.1:1, 127.0.0.1:2"));
        h.insert("x-account-device", HeaderValue::from_static("sda,sdb"));
        h.insert("x-account-partition", HeaderValue::from_static("3"));
        let t = AccountTargets::from_headers(&h).unwrap().unwrap();
        assert_eq!(t.nodes, vec![("127.0.0.1:1".into(), "sda".into()), ("127.0.0.1:2".into(), "sdb".into())]);
        h.insert("x-account-device", HeaderValue::from_static("sda"));
        assert!(AccountTargets::from_headers(&h).is_err());
    }
}
