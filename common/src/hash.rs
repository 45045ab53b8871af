//! Swift's hash-path function: the MD5 key that places an account, container
//! or object on the ring and names its directory on disk.
//!
//! Behaviour follows `swift.common.utils.hash_path`: the key is
//! `MD5(prefix + "/" + account ["/" + container] ["/" + object] + suffix)`,
//! where the container and object are included only when non-empty, and the
//! names are hashed as raw UTF-8 (no URL quoting).

use md5::{Digest, Md5};

/// Errors from [`HashPathConf::digest`] and [`HashPathConf::hash_path`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashPathError {
    /// An object name was given without a container name.
    #[error("container is required if object is provided")]
    ObjectWithoutContainer,
}

/// The cluster-wide secrets from `swift.conf` `[swift-hash]`
/// (`swift_hash_path_prefix` and `swift_hash_path_suffix`), as raw bytes.
///
/// Every node of a cluster must use the same values, or they disagree on where
/// data lives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HashPathConf {
    /// `swift_hash_path_prefix`, prepended to every hashed path.
    pub prefix: Vec<u8>,
    /// `swift_hash_path_suffix`, appended to every hashed path.
    pub suffix: Vec<u8>,
}

impl HashPathConf {
    /// Builds a configuration from a prefix and a suffix.
    pub fn new(prefix: impl Into<Vec<u8>>, suffix: impl Into<Vec<u8>>) -> Self {
        HashPathConf { prefix: prefix.into(), suffix: suffix.into() }
    }

    /// The raw 16-byte MD5 digest of the path, as Swift's
    /// `hash_path(..., raw_digest=True)`.
    ///
    /// `container` and `object` take part only when they are `Some` and
    /// non-empty; an object without a container is an error.
    pub fn digest(&self, account: &str, container: Option<&str>, object: Option<&str>) -> Result<[u8; 16], HashPathError> {
        let container = container.filter(|c| !c.is_empty());
        let object = object.filter(|o| !o.is_empty());
        if object.is_some() && container.is_none() {
            return Err(HashPathError::ObjectWithoutContainer);
        }
        let mut md5 = Md5::new();
        md5.update(&self.prefix);
        md5.update(b"/");
        md5.update(account.as_bytes());
        for part in [container, object].into_iter().flatten() {
            md5.update(b"/");
            md5.update(part.as_bytes());
        }
        md5.update(&self.suffix);
        Ok(md5.finalize().into())
    }

    /// The lowercase hex MD5 digest of the path (32 characters), as Swift's
    /// `hash_path`. This is the on-disk "name hash"; its last three
    /// characters are the suffix directory.
    pub fn hash_path(&self, account: &str, container: Option<&str>, object: Option<&str>) -> Result<String, HashPathError> {
        let digest = self.digest(account, container, object)?;
        Ok(to_hex(&digest))
    }
}

/// Lowercase hex encoding of `bytes`.
fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changeme() -> HashPathConf {
        HashPathConf::new("changeme", "changeme")
    }

    #[test]
    fn reference_vectors() {
        let conf = changeme();
        assert_eq!(conf.hash_path("a", None, None).unwrap(), "fd2d8dafa0570422b397941531342ca4");
        assert_eq!(conf.hash_path("a", Some("c"), None).unwrap(), "6eff33b3ff33852f4cfb514aaa7f5199");
        assert_eq!(conf.hash_path("a", Some("c"), Some("o")).unwrap(), "d1c91d91068a170a6bcf220efe77711d");
        assert_eq!(conf.hash_path("AUTH_test", Some("photos"), Some("cat.jpg")).unwrap(), "b7862426316ce611af42ef685212dcf1");
    }

    #[test]
    fn partition_from_digest_matches_reference() {
        // Part power 10: the first four bytes big-endian, shifted by 22.
        let digest = changeme().digest("a", None, None).unwrap();
        let part = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) >> 22;
        assert_eq!(part, 1012);
    }

    #[test]
    fn empty_container_and_object_are_skipped() {
        let conf = changeme();
        assert_eq!(conf.hash_path("a", Some(""), Some("")).unwrap(), conf.hash_path("a", None, None).unwrap());
    }

    #[test]
    fn object_without_container_is_an_error() {
        let conf = changeme();
        assert_eq!(conf.digest("a", None, Some("o")), Err(HashPathError::ObjectWithoutContainer));
        assert_eq!(conf.digest("a", Some(""), Some("o")), Err(HashPathError::ObjectWithoutContainer));
    }

    #[test]
    fn prefix_and_suffix_both_matter() {
        let a = HashPathConf::new("x", "").hash_path("a", None, None).unwrap();
        let b = HashPathConf::new("", "x").hash_path("a", None, None).unwrap();
        assert_ne!(a, b);
    }
}
