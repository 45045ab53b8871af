//! `egg:swift#domain_remap`: addresses accounts and containers by host
//! name. With `storage_domain = example.net`, a request for
//! `http://AUTH_test.example.net/c/o` goes on as `/v1/AUTH_test/c/o`, and
//! one for `http://c.AUTH_test.example.net/o` as the same path. So that
//! an account name can be a DNS label, `AUTH-test` stands for `AUTH_test`
//! (the first `-` becomes `_` when the name has no `_`), and a reseller
//! prefix is matched without regard to case.
//!
//! Settings (Swift's): `storage_domain` (comma-separated, default
//! `example.com`), `path_root` (`v1`), `reseller_prefixes` (`AUTH`; a name
//! with none of them passes untouched, unless `default_reseller_prefix` is
//! set, which is then put in front of it), and `mangle_client_paths`
//! (drop a client's own `/v1` from the path). `Location` and
//! `Content-Location` in the answer are written back in terms of the
//! path the client asked for.

use super::{BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use common::config::Section;
use common::http::{self as h, quote_path, Body};
use http::header::{CONTENT_LOCATION, HOST, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};
use std::sync::Arc;

pub struct DomainRemap {
    /// Each with its leading dot.
    storage_domains: Vec<String>,
    /// Without slashes, e.g. `v1`.
    path_root: String,
    reseller_prefixes: Vec<String>,
    default_reseller_prefix: Option<String>,
    mangle_client_paths: bool,
    next: Next,
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    let remap = DomainRemap::from_section(section, next)?;
    build.capabilities.insert("domain_remap".into(), serde_json::json!({ "default_reseller_prefix": remap.default_reseller_prefix }));
    Ok(Arc::new(remap))
}

impl DomainRemap {
    fn from_section(section: &Section, next: Next) -> Result<DomainRemap, String> {
        let err = |e: common::config::ConfigError| e.to_string();
        let domains = common::config::list_from_csv(&section.get_str("storage_domain", "example.com").map_err(err)?);
        // Swift tries the names given without a dot first.
        let mut storage_domains: Vec<String> = domains.iter().filter(|d| !d.starts_with('.')).map(|d| format!(".{d}")).collect();
        storage_domains.extend(domains.iter().filter(|d| d.starts_with('.')).cloned());
        let path_root = section.get_str("path_root", "v1").map_err(err)?.trim_matches('/').to_string();
        let reseller_prefixes = common::config::list_from_csv(&section.get_str("reseller_prefixes", "AUTH").map_err(err)?);
        let default_reseller_prefix = section.value("default_reseller_prefix").map_err(err)?;
        let mangle_client_paths = section.get_bool("mangle_client_paths", false).map_err(err)?;
        Ok(DomainRemap { storage_domains, path_root, reseller_prefixes, default_reseller_prefix, mangle_client_paths, next })
    }
}

/// What the host name says.
#[derive(Debug, PartialEq, Eq)]
enum Remap {
    /// Not under a storage domain (or not an account this serves).
    None,
    /// Too many labels before the storage domain.
    BadDomain,
    To {
        account: String,
        container: Option<String>,
    },
}

impl DomainRemap {
    fn remap(&self, host: &str) -> Remap {
        let domain = host.rsplit_once(':').map_or(host, |(d, _port)| d);
        let Some(storage_domain) = self.storage_domains.iter().find(|sd| domain.ends_with(sd.as_str())) else {
            return Remap::None;
        };
        let labels: Vec<&str> = domain[..domain.len() - storage_domain.len()].trim_matches('.').split('.').collect();
        let (container, mut account) = match labels[..] {
            [container, account] => (Some(container.to_string()), account.to_string()),
            [account] => (None, account.to_string()),
            _ => return Remap::BadDomain,
        };
        if !self.reseller_prefixes.is_empty() {
            if !account.contains('_') && account.contains('-') {
                account = account.replacen('-', "_", 1);
            }
            let given = account.split('_').next().unwrap_or("").to_lowercase();
            if let Some(real) = self.reseller_prefixes.iter().find(|p| p.to_lowercase() == given) {
                if !account.starts_with(real.as_str()) {
                    account = format!("{real}{}", &account[real.len()..]);
                }
            } else if let Some(default) = &self.default_reseller_prefix {
                account = format!("{default}_{account}");
            } else {
                return Remap::None;
            }
        }
        Remap::To { account, container }
    }

    /// The unquoted path the remapped request goes on with.
    fn new_path(&self, requested: &str, account: &str, container: Option<&str>) -> String {
        let mut path = requested.strip_prefix('/').unwrap_or(requested);
        let root = format!("{}/", self.path_root);
        if self.mangle_client_paths && format!("{path}/").starts_with(&root) {
            path = path.get(root.len()..).unwrap_or("");
        }
        let mut parts = vec!["", self.path_root.as_str(), account];
        parts.extend(container);
        parts.push(path);
        parts.join("/")
    }
}

impl Handler for DomainRemap {
    fn call(&self, mut req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            if self.storage_domains.is_empty() {
                return self.next.call(req).await;
            }
            // Not `to_str`: a container's label may be UTF-8 (sent as
            // raw bytes, as Swift's WSGI server passes them on).
            let host = match req.headers().get(HOST) {
                Some(host) => String::from_utf8_lossy(host.as_bytes()).into_owned(),
                None => req.uri().host().unwrap_or_default().to_string(),
            };
            let (account, container) = match self.remap(&host) {
                Remap::None => return self.next.call(req).await,
                Remap::BadDomain => {
                    let mut resp = h::text(StatusCode::BAD_REQUEST, "Bad domain in host header");
                    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                    return resp;
                }
                Remap::To { account, container } => (account, container),
            };
            let Ok(requested) = common::path::unquote(req.uri().path()) else {
                return self.next.call(req).await;
            };
            let new_path = self.new_path(&requested, &account, container.as_deref());
            let (requested_q, new_q) = (quote_path(&requested), quote_path(&new_path));
            let uri = match req.uri().query() {
                Some(q) => format!("{new_q}?{q}"),
                None => new_q.clone(),
            };
            match uri.parse() {
                Ok(uri) => *req.uri_mut() = uri,
                Err(_) => return h::text(StatusCode::PRECONDITION_FAILED, "Bad URL"),
            }
            let mut resp = self.next.call(req).await;
            for name in [LOCATION, CONTENT_LOCATION] {
                let Some(value) = resp.headers().get(&name).and_then(|v| v.to_str().ok()) else { continue };
                if let Some(back) = rewrite_location(value, &new_q, &requested_q) {
                    if let Ok(v) = HeaderValue::from_str(&back) {
                        resp.headers_mut().insert(name, v);
                    }
                }
            }
            resp
        })
    }
}

/// `http[s]://<host><rewritten><rest>` as `http[s]://<host><requested><rest>`;
/// `None` for any other value.
fn rewrite_location(value: &str, rewritten: &str, requested: &str) -> Option<String> {
    let scheme_len = if value.starts_with("http://") {
        7
    } else if value.starts_with("https://") {
        8
    } else {
        return None;
    };
    let host_end = scheme_len + value[scheme_len..].find('/')?;
    if host_end == scheme_len {
        return None;
    }
    let rest = value[host_end..].strip_prefix(rewritten)?;
    Some(format!("{}{requested}{rest}", &value[..host_end]))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{request, Recorder};
    use super::*;
    use common::config::ConfigFile;

    fn remapper(extra: &str, next: Arc<Recorder>) -> Next {
        let conf = ConfigFile::parse(&format!("[filter:dr]\nuse = egg:swift#domain_remap\n{extra}"), "p.conf").unwrap();
        let section = conf.filter_section("dr").unwrap();
        Arc::new(DomainRemap::from_section(&section, next).unwrap())
    }

    async fn path_for(m: &Next, next: &Recorder, host: &str, path: &str) -> (StatusCode, String) {
        let resp = m.call(request("GET", path, &[("host", host)], "")).await;
        (resp.status(), next.seen().last().map(|s| s.uri.clone()).unwrap_or_default())
    }

    #[tokio::test]
    async fn accounts_and_containers_from_the_host() {
        let next = Recorder::new(|_| h::status(StatusCode::OK));
        let m = remapper("storage_domain = example.net\n", next.clone());
        assert_eq!(path_for(&m, &next, "AUTH_test.example.net", "/").await.1, "/v1/AUTH_test/");
        assert_eq!(path_for(&m, &next, "AUTH-test.example.net:8080", "/c/o?x=1").await.1, "/v1/AUTH_test/c/o?x=1");
        assert_eq!(path_for(&m, &next, "c.auth-test.example.net", "/a%20b").await.1, "/v1/AUTH_test/c/a%20b");
        // Not under the storage domain, or no reseller prefix: untouched.
        assert_eq!(path_for(&m, &next, "example.org", "/v1/AUTH_x").await.1, "/v1/AUTH_x");
        let utf8 = HeaderValue::from_bytes("\u{e9}t\u{e9}.AUTH_test.example.net".as_bytes()).unwrap();
        let mut req = request("GET", "/o", &[], "");
        req.headers_mut().insert(HOST, utf8);
        m.call(req).await;
        assert_eq!(next.seen().last().unwrap().uri, "/v1/AUTH_test/%C3%A9t%C3%A9/o");
        assert_eq!(path_for(&m, &next, "test.example.net", "/v1/AUTH_y").await.1, "/v1/AUTH_y");
        let (status, _) = path_for(&m, &next, "x.c.AUTH_test.example.net", "/").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn default_prefix_and_mangled_paths() {
        let next = Recorder::new(|_| h::status(StatusCode::OK));
        let m =
            remapper("storage_domain = .example.net, foo.com\ndefault_reseller_prefix = AUTH\nmangle_client_paths = true\n", next.clone());
        assert_eq!(path_for(&m, &next, "test.foo.com", "/v1/c").await.1, "/v1/AUTH_test/c");
        assert_eq!(path_for(&m, &next, "test.example.net", "/v1").await.1, "/v1/AUTH_test/");
        assert_eq!(path_for(&m, &next, "test.example.net", "/v1x/c").await.1, "/v1/AUTH_test/v1x/c");
    }

    #[tokio::test]
    async fn locations_point_back_at_the_host_path() {
        let next = Recorder::new(|_| {
            let mut r = h::status(StatusCode::MOVED_PERMANENTLY);
            r.headers_mut().insert(LOCATION, HeaderValue::from_static("http://c.AUTH_test.example.net/v1/AUTH_test/c/dir/"));
            r
        });
        let m = remapper("storage_domain = example.net\n", next.clone());
        let resp = m.call(request("GET", "/dir", &[("host", "c.AUTH_test.example.net")], "")).await;
        assert_eq!(resp.headers()[LOCATION], "http://c.AUTH_test.example.net/dir/");
    }
}
