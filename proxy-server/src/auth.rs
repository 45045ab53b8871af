//! TempAuth (Swift's `tempauth` middleware): v1 login, tokens and
//! authorization with container ACLs.
//!
//! Swift keeps tokens in memcache, so a second proxy without the same
//! memcache does not know them. Ours are self-validating instead: a token
//! is `AUTH_tk<16 hex expiry><32 hex MAC>`, the MAC an HMAC-SHA256 over the
//! expiry, the user and the user's key under a secret every proxy of the
//! cluster derives from the same configuration. Any proxy that shares the
//! config accepts it; changing a user's key revokes the user's tokens.

use crate::settings::{TempAuthSettings, TempAuthUser};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// Who a request's token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `account`, `account:user`, then the user's groups, with `.admin`
    /// replaced by the account id (`AUTH_<account>`), as Swift's
    /// `remote_user`.
    pub groups: Vec<String>,
}

impl Identity {
    pub fn has(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// `account:user`.
    pub fn account_user(&self) -> Option<&str> {
        self.groups.get(1).map(String::as_str)
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Login {
    pub token: String,
    pub expires_in: u64,
    pub storage_url: String,
}

/// Why a login failed: 400 for a malformed request, 401 otherwise, with
/// the realm for `Www-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    BadRequest,
    Unauthorized { realm: String },
}

/// The authorization decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; `owner` means full control of the account (Swift's
    /// `swift_owner`: may see and set ACLs and other owner-only metadata).
    Allow { owner: bool },
    /// 401 (no identity) or 403 (identity without the right).
    Deny,
}

/// TempAuth state.
pub struct TempAuth {
    settings: TempAuthSettings,
    secret: Vec<u8>,
    /// Verified tokens, so each token's MAC is checked once.
    cache: Mutex<HashMap<String, (u64, Identity)>>,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl TempAuth {
    /// `cluster_secret` should be the same on every proxy (e.g. derived from
    /// `swift.conf`'s hash prefix and suffix) unless `token_secret` is set.
    pub fn new(settings: TempAuthSettings, cluster_secret: &[u8]) -> TempAuth {
        let secret = match &settings.token_secret {
            Some(s) => Sha256::digest(s.as_bytes()).to_vec(),
            None => {
                let mut h = Sha256::new();
                h.update(b"swift-rs tempauth token key\0");
                h.update(cluster_secret);
                h.finalize().to_vec()
            }
        };
        TempAuth { settings, secret, cache: Mutex::new(HashMap::new()) }
    }

    pub fn settings(&self) -> &TempAuthSettings {
        &self.settings
    }

    /// The reseller prefix (`AUTH_`) an account belongs to, if any of ours.
    pub fn account_prefix(&self, account: &str) -> Option<&str> {
        self.settings.reseller_prefixes.iter().map(String::as_str).filter(|p| account.starts_with(p)).max_by_key(|p| p.len())
    }

    fn user(&self, account: &str, user: &str) -> Option<&TempAuthUser> {
        self.settings.users.iter().find(|u| u.account == account && u.user == user)
    }

    fn account_id(&self, u: &TempAuthUser) -> String {
        match &u.storage_url {
            Some(url) => url.rsplit('/').next().unwrap_or_default().to_string(),
            None => format!("{}{}", self.settings.reseller_prefixes.first().map_or("AUTH_", String::as_str), u.account),
        }
    }

    fn groups(&self, u: &TempAuthUser) -> Vec<String> {
        let mut groups = vec![u.account.clone(), format!("{}:{}", u.account, u.user)];
        let mut admin = false;
        for g in &u.groups {
            if g == ".admin" {
                admin = true;
            } else {
                groups.push(g.clone());
            }
        }
        if admin {
            // `.admin` owns the account under every reseller prefix
            // (AUTH_test, SERVICE_test, ...), as Swift's tempauth.
            for prefix in &self.settings.reseller_prefixes {
                groups.push(format!("{prefix}{}", u.account));
            }
            let id = self.account_id(u);
            if !groups.contains(&id) {
                groups.push(id);
            }
        }
        groups
    }

    fn mac(&self, expiry: u64, u: &TempAuthUser) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(format!("{expiry}\n{}:{}\n{}", u.account, u.user, u.key).as_bytes());
        let out = mac.finalize().into_bytes();
        out[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Handles `GET /auth/v1.0` and `GET /auth/v1/<account>/auth`. `path` is
    /// the unquoted request path; `header` reads request headers; `host_url`
    /// is `<scheme>://<Host>`.
    pub fn login(&self, path: &str, header: impl Fn(&str) -> Option<String>, host_url: &str) -> Result<Login, LoginError> {
        let rest = path.strip_prefix(self.settings.auth_prefix.as_str()).or_else(|| path.strip_prefix('/')).unwrap_or(path);
        let segs: Vec<&str> = rest.splitn(3, '/').collect();
        let unknown = || LoginError::Unauthorized { realm: "unknown".into() };
        let (account, user, key) = match segs.as_slice() {
            ["v1", account, "auth"] => {
                let user = header("x-storage-user")
                    .or_else(|| header("x-auth-user"))
                    .ok_or_else(|| LoginError::Unauthorized { realm: account.to_string() })?;
                let user = match user.split_once(':') {
                    Some((a, u)) if a == *account => u.to_string(),
                    Some(_) => return Err(LoginError::Unauthorized { realm: account.to_string() }),
                    None => user,
                };
                let key = header("x-storage-pass").or_else(|| header("x-auth-key"));
                (account.to_string(), user, key)
            }
            ["v1.0"] | ["auth"] | ["v1.0", ""] => {
                let user = header("x-auth-user").or_else(|| header("x-storage-user")).ok_or_else(unknown)?;
                let (a, u) = user.split_once(':').ok_or_else(unknown)?;
                let key = header("x-auth-key").or_else(|| header("x-storage-pass"));
                (a.to_string(), u.to_string(), key)
            }
            _ => return Err(LoginError::BadRequest),
        };
        let realm = || LoginError::Unauthorized { realm: account.clone() };
        let key = key.filter(|k| !k.is_empty()).ok_or_else(realm)?;
        let u = self.user(&account, &user).ok_or_else(realm)?;
        if !constant_time_eq(u.key.as_bytes(), key.as_bytes()) {
            return Err(realm());
        }
        // Tokens live in windows of half the token life, so a user logging
        // in again gets the same token while it has at least half its life.
        let now = now_secs();
        let window = (self.settings.token_life.as_secs() / 2).max(1);
        let expiry = (now / window + 2) * window;
        let token = format!("AUTH_tk{expiry:016x}{}", self.mac(expiry, u));
        let storage_url = match &u.storage_url {
            Some(url) => url.replace("$HOST", host_url),
            None => format!("{host_url}/v1/{}", self.account_id(u)),
        };
        let storage_url = match &self.settings.storage_url_scheme {
            Some(scheme) => match storage_url.split_once(':') {
                Some((_, rest)) => format!("{scheme}:{rest}"),
                None => storage_url,
            },
            None => storage_url,
        };
        Ok(Login { token, expires_in: expiry.saturating_sub(now), storage_url })
    }

    /// The identity behind a token, if the token is ours, intact and not
    /// expired.
    pub fn validate(&self, token: &str) -> Option<Identity> {
        let now = now_secs();
        if let Some((expiry, id)) = self.cache.lock().expect("token cache lock").get(token) {
            if *expiry > now {
                return Some(id.clone());
            }
        }
        let body = token.strip_prefix("AUTH_tk")?;
        if body.len() != 48 {
            return None;
        }
        let expiry = u64::from_str_radix(&body[..16], 16).ok()?;
        if expiry <= now {
            return None;
        }
        let mac = &body[16..];
        let u = self.settings.users.iter().find(|u| constant_time_eq(self.mac(expiry, u).as_bytes(), mac.as_bytes()))?;
        let id = Identity { groups: self.groups(u) };
        let mut cache = self.cache.lock().expect("token cache lock");
        if cache.len() > 10_000 {
            cache.retain(|_, (e, _)| *e > now);
        }
        cache.insert(token.to_string(), (expiry, id.clone()));
        Some(id)
    }

    /// Swift's `tempauth.authorize` (its arguments are the request facts
    /// Swift's version reads from the WSGI environment): may `identity` (with the groups of an
    /// optional service token) do `method` on `/v1/account[/container[/obj]]`,
    /// given the container ACL that applies (`X-Container-Read` for reads,
    /// `-Write` for writes) and the request's Referer?
    #[allow(clippy::too_many_arguments)]
    pub fn authorize(
        &self,
        identity: Option<&Identity>,
        method: &str,
        account: &str,
        container: Option<&str>,
        object: Option<&str>,
        acl: Option<&str>,
        referer: Option<&str>,
    ) -> Decision {
        let Some(prefix) = self.account_prefix(account) else { return Decision::Deny };
        let groups: &[String] = identity.map_or(&[], |i| &i.groups);
        let has = |g: &str| groups.iter().any(|x| x == g);
        let dot_account = account[prefix.len()..].starts_with('.');
        if has(".reseller_admin") && !self.settings.reseller_prefixes.iter().any(|p| p == account) && !dot_account {
            return Decision::Allow { owner: true };
        }
        if has(".reseller_reader") && (method == "GET" || method == "HEAD") {
            return Decision::Allow { owner: false };
        }
        if has(account) && (!(method == "DELETE" || method == "PUT") || container.is_some()) {
            let require = self.settings.require_group.iter().find(|(p, _)| p == prefix).map(|(_, g)| g.as_str());
            match require {
                Some(g) if has(g) => return Decision::Allow { owner: true },
                Some(_) => {}
                None => return Decision::Allow { owner: true },
            }
        }
        if method == "OPTIONS" {
            return Decision::Allow { owner: false };
        }
        let (referrers, acl_groups) = parse_acl(acl.unwrap_or(""));
        if referrer_allowed(referer, &referrers) {
            if object.is_some() || acl_groups.iter().any(|g| g == ".rlistings") {
                return Decision::Allow { owner: false };
            }
            return Decision::Deny;
        }
        if identity.is_none() {
            return Decision::Deny;
        }
        if groups.iter().any(|g| acl_groups.contains(g)) {
            return Decision::Allow { owner: false };
        }
        Decision::Deny
    }
}

/// Account ACLs (`X-Account-Access-Control`, ACL format v2): who may
/// administer, read and write, or read the account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountAcls {
    pub admin: Vec<String>,
    pub read_write: Vec<String>,
    pub read_only: Vec<String>,
}

/// Parses stored account ACLs; `None` when empty or not valid.
pub fn parse_account_acl(raw: &str) -> Option<AccountAcls> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    let obj = v.as_object()?;
    let list = |k: &str| -> Vec<String> {
        obj.get(k).and_then(|l| l.as_array()).map(|l| l.iter().filter_map(|g| g.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let acls = AccountAcls { admin: list("admin"), read_write: list("read-write"), read_only: list("read-only") };
    (acls != AccountAcls::default()).then_some(acls)
}

/// Checks a client's `X-Account-Access-Control` as TempAuth does and
/// returns the value to store (Swift's compact, sorted JSON), or the
/// one-line reason for a 400.
pub fn validate_account_acl(raw: &str) -> Result<String, String> {
    if raw.trim().is_empty() {
        return Ok(String::new());
    }
    let syntax = || format!("Syntax error in input ({raw:?})");
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|_| syntax())?;
    let obj = v.as_object().ok_or_else(syntax)?;
    for (key, value) in obj {
        if !["admin", "read-write", "read-only"].contains(&key.as_str()) {
            return Err(format!("Key {} not recognized", serde_json::Value::from(key.as_str())));
        }
        let list = value.as_array().ok_or_else(|| format!("Value for key {} must be a list", serde_json::Value::from(key.as_str())))?;
        if list.iter().any(|g| !g.is_string()) {
            return Err(format!("Elements of {} list must be strings", serde_json::Value::from(key.as_str())));
        }
    }
    Ok(if obj.is_empty() { String::new() } else { serde_json::to_string(obj).unwrap_or_default() })
}

/// TempAuth's account-ACL step: `Some` decision when an ACL grants the
/// request.
pub fn account_acl_decision(acls: &AccountAcls, identity: &Identity, method: &str, has_container: bool) -> Option<Decision> {
    let member = |list: &[String]| identity.groups.iter().any(|g| list.contains(g));
    if member(&acls.admin) {
        return Some(Decision::Allow { owner: true });
    }
    let read = method == "GET" || method == "HEAD";
    if member(&acls.read_write) && (has_container || read) {
        return Some(Decision::Allow { owner: false });
    }
    if member(&acls.read_only) && read {
        return Some(Decision::Allow { owner: false });
    }
    None
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Swift's `parse_acl` (v1): referrer designations (`.r:...`) and groups.
pub fn parse_acl(acl: &str) -> (Vec<String>, Vec<String>) {
    let mut referrers = Vec::new();
    let mut groups = Vec::new();
    for value in acl.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        if let Some((kind, rest)) = value.split_once(':') {
            if kind.starts_with(".r") && ".referrer".starts_with(kind) {
                let rest = rest.trim();
                let (neg, host) = match rest.strip_prefix('-') {
                    Some(h) => ("-", h),
                    None => ("", rest),
                };
                // Swift strips a scheme, keeping just the host.
                let host = host.split_once("//").map_or(host, |(_, h)| h);
                let host = host.split('/').next().unwrap_or(host);
                referrers.push(format!("{neg}{host}"));
                continue;
            }
        }
        groups.push(value.to_string());
    }
    (referrers, groups)
}

/// Swift's `referrer_allowed`: the last matching designation wins.
pub fn referrer_allowed(referer: Option<&str>, referrers: &[String]) -> bool {
    if referrers.is_empty() {
        return false;
    }
    let host = referer.map(|r| {
        let r = r.split_once("//").map_or(r, |(_, h)| h);
        r.split('/').next().unwrap_or(r).split(':').next().unwrap_or(r).to_ascii_lowercase()
    });
    let mut allow = false;
    for mh in referrers {
        let (neg, pat) = match mh.strip_prefix('-') {
            Some(p) => (true, p),
            None => (false, mh.as_str()),
        };
        let matched = if pat == "*" {
            true
        } else if let Some(h) = &host {
            if let Some(suffix) = pat.strip_prefix('.') {
                h.ends_with(&format!(".{suffix}")) || h == suffix
            } else {
                h == pat
            }
        } else {
            false
        };
        if matched {
            allow = !neg;
        }
    }
    allow
}

/// Checks an ACL header value as Swift's `clean_acl` does; returns the
/// cleaned value or a reason for a 400.
pub fn clean_acl(name: &str, value: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for raw in value.split(',') {
        let v = raw.trim();
        if v.is_empty() {
            continue;
        }
        if let Some((kind, rest)) = v.split_once(':') {
            let kind = kind.trim();
            if kind.starts_with('.') {
                if !(kind.starts_with(".r") && ".referrer".starts_with(kind)) {
                    return Err(format!("Unknown designator {kind:?} in ACL {value:?}"));
                }
                if name.eq_ignore_ascii_case("x-container-write") {
                    return Err(format!("Referrers not allowed in write ACL: {value:?}"));
                }
                let mut rest = rest.trim().to_string();
                if rest.is_empty() || rest == "-" {
                    return Err(format!("No host/domain value after referrer designation in ACL: {value:?}"));
                }
                if rest.starts_with("-*") || (rest.len() > 1 && rest.starts_with('*')) {
                    rest = rest.replacen('*', "", 1);
                    if rest.starts_with("-.") || rest == "-" || rest.is_empty() {
                        // "-*" means nothing; keep Swift's tolerance of "*.host".
                    }
                }
                out.push(format!(".r:{rest}"));
                continue;
            }
        }
        if v.starts_with('.') && v != ".rlistings" {
            return Err(format!("Unknown designator {v:?} in ACL {value:?}"));
        }
        out.push(v.to_string());
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn settings() -> TempAuthSettings {
        let user = |a: &str, u: &str, k: &str, g: &[&str]| TempAuthUser {
            account: a.into(),
            user: u.into(),
            key: k.into(),
            groups: g.iter().map(|s| s.to_string()).collect(),
            storage_url: None,
        };
        TempAuthSettings {
            reseller_prefixes: vec!["AUTH_".into(), "SERVICE_".into()],
            require_group: vec![("SERVICE_".into(), "service".into())],
            auth_prefix: "/auth/".into(),
            token_life: Duration::from_secs(86400),
            storage_url_scheme: None,
            users: vec![
                user("test", "tester", "testing", &[".admin"]),
                user("test", "tester3", "testing3", &[]),
                user("admin", "admin", "admin", &[".admin", ".reseller_admin"]),
            ],
            token_secret: None,
        }
    }

    fn hdr<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn login_issues_a_token_any_proxy_with_the_config_accepts() {
        let a = TempAuth::new(settings(), b"secret");
        let login = a.login("/auth/v1.0", hdr(&[("x-auth-user", "test:tester"), ("x-auth-key", "testing")]), "http://h:8080").unwrap();
        assert_eq!(login.storage_url, "http://h:8080/v1/AUTH_test");
        assert!(login.token.starts_with("AUTH_tk"));
        assert!(login.expires_in > 43200 && login.expires_in <= 86400);
        let again =
            a.login("/auth/v1/test/auth", hdr(&[("x-storage-user", "tester"), ("x-storage-pass", "testing")]), "http://h:8080").unwrap();
        assert_eq!(again.token, login.token, "the same token while it is valid");
        let other_proxy = TempAuth::new(settings(), b"secret");
        let id = other_proxy.validate(&login.token).unwrap();
        assert_eq!(id.groups, vec!["test", "test:tester", "AUTH_test", "SERVICE_test"]);
        assert!(TempAuth::new(settings(), b"other").validate(&login.token).is_none());
        let mut forged = login.token.clone();
        forged.replace_range(8..9, if &forged[8..9] == "f" { "e" } else { "f" });
        assert!(a.validate(&forged).is_none());
    }

    #[test]
    fn bad_logins_are_refused() {
        let a = TempAuth::new(settings(), b"s");
        let r = a.login("/auth/v1.0", hdr(&[("x-auth-user", "test:tester"), ("x-auth-key", "nope")]), "http://h");
        assert_eq!(r.unwrap_err(), LoginError::Unauthorized { realm: "test".into() });
        let r = a.login("/auth/v1.0", hdr(&[("x-auth-user", "tester"), ("x-auth-key", "testing")]), "http://h");
        assert_eq!(r.unwrap_err(), LoginError::Unauthorized { realm: "unknown".into() });
        let r = a.login("/auth/v2/x", hdr(&[]), "http://h");
        assert_eq!(r.unwrap_err(), LoginError::BadRequest);
    }

    #[test]
    fn owners_acls_and_referrers() {
        let a = TempAuth::new(settings(), b"s");
        let admin = Identity { groups: vec!["test".into(), "test:tester".into(), "AUTH_test".into()] };
        let tester3 = Identity { groups: vec!["test".into(), "test:tester3".into()] };
        let reseller = Identity { groups: vec!["admin".into(), "admin:admin".into(), ".reseller_admin".into(), "AUTH_admin".into()] };
        assert_eq!(a.authorize(Some(&admin), "GET", "AUTH_test", Some("c"), None, None, None), Decision::Allow { owner: true });
        assert_eq!(a.authorize(Some(&admin), "PUT", "AUTH_test", None, None, None, None), Decision::Deny);
        assert_eq!(a.authorize(Some(&reseller), "PUT", "AUTH_test", None, None, None, None), Decision::Allow { owner: true });
        assert_eq!(a.authorize(Some(&tester3), "GET", "AUTH_test", Some("c"), None, None, None), Decision::Deny);
        assert_eq!(
            a.authorize(Some(&tester3), "GET", "AUTH_test", Some("c"), Some("o"), Some("test:tester3"), None),
            Decision::Allow { owner: false }
        );
        assert_eq!(a.authorize(None, "GET", "AUTH_test", Some("c"), Some("o"), Some(".r:*"), None), Decision::Allow { owner: false });
        assert_eq!(a.authorize(None, "GET", "AUTH_test", Some("c"), None, Some(".r:*"), None), Decision::Deny);
        assert_eq!(a.authorize(None, "GET", "AUTH_test", Some("c"), None, Some(".r:*,.rlistings"), None), Decision::Allow { owner: false });
        assert_eq!(
            a.authorize(
                None,
                "GET",
                "AUTH_test",
                Some("c"),
                Some("o"),
                Some(".r:.example.com,.r:-bad.example.com"),
                Some("http://bad.example.com/x")
            ),
            Decision::Deny
        );
        assert_eq!(
            a.authorize(None, "GET", "AUTH_test", Some("c"), Some("o"), Some(".r:.example.com"), Some("http://www.example.com/x")),
            Decision::Allow { owner: false }
        );
        assert_eq!(a.authorize(Some(&admin), "GET", "OTHER_x", None, None, None, None), Decision::Deny);
    }
}
