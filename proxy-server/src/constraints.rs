//! Swift's request constraints (`swift/common/constraints.py`): metadata
//! limits, name lengths, object sizes. Each check returns the one-line
//! reason for a 400 (or 413/411).

use common::swift_conf::Constraints;
use http::HeaderMap;

/// Checks the `X-<kind>-Meta-*` headers of a request against the limits.
/// `kind` is `account`, `container` or `object`.
pub fn check_metadata(headers: &HeaderMap, kind: &str, c: &Constraints) -> Result<(), String> {
    let prefix = format!("x-{kind}-meta-");
    let mut count = 0u64;
    let mut size = 0u64;
    for (name, value) in headers {
        let name = name.as_str();
        let Some(key) = name.strip_prefix(&prefix) else { continue };
        let value = value.as_bytes();
        if key.is_empty() {
            return Err("Metadata name cannot be empty".into());
        }
        // Swift does not count the temp-url keys and similar sysmeta-like
        // names differently; every meta header counts.
        count += 1;
        size += (key.len() + value.len()) as u64;
        if key.len() as u64 > c.max_meta_name_length {
            return Err(format!("Metadata name too long: {}{}", prefix_title(kind), key));
        }
        if value.len() as u64 > c.max_meta_value_length {
            return Err(format!("Metadata value longer than {}: {}{}", c.max_meta_value_length, prefix_title(kind), key));
        }
        if count > c.max_meta_count {
            return Err(format!("Too many metadata items; max {}", c.max_meta_count));
        }
        if size > c.max_meta_overall_size {
            return Err(format!("Total metadata too large; max {}", c.max_meta_overall_size));
        }
    }
    Ok(())
}

fn prefix_title(kind: &str) -> String {
    let mut k = kind.to_string();
    if let Some(f) = k.get_mut(0..1) {
        f.make_ascii_uppercase();
    }
    format!("X-{k}-Meta-")
}

/// Name-length checks of Swift's `check_object_creation` and the
/// account/container controllers.
pub fn check_name(kind: &str, name: &str, c: &Constraints) -> Result<(), String> {
    let (limit, what) = match kind {
        "account" => (c.max_account_name_length, "Account"),
        "container" => (c.max_container_name_length, "Container"),
        _ => (c.max_object_name_length, "Object"),
    };
    if name.len() as u64 > limit {
        return Err(format!("{what} name length of {} longer than {limit}", name.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, String)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        m
    }

    #[test]
    fn metadata_limits() {
        let c = Constraints::default();
        assert!(check_metadata(&h(&[("x-object-meta-a", "b".into())]), "object", &c).is_ok());
        assert!(check_metadata(&h(&[("x-object-meta-".to_string().as_str(), "b".into())]), "object", &c).is_err());
        let long = "a".repeat(129);
        assert!(check_metadata(&h(&[(format!("x-object-meta-{long}").as_str(), "b".into())]), "object", &c).is_err());
        assert!(check_metadata(&h(&[("x-object-meta-a", "v".repeat(257))]), "object", &c).is_err());
        let many: Vec<(String, String)> = (0..91).map(|i| (format!("x-container-meta-k{i}"), "v".to_string())).collect();
        let many: Vec<(&str, String)> = many.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        assert!(check_metadata(&h(&many), "container", &c).is_err());
    }
}
