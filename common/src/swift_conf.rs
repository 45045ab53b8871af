//! `/etc/swift/swift.conf`: the hash-path secrets, the cluster constraints
//! and the storage policies, validated as Swift validates them
//! (`swift/common/utils/__init__.py` `validate_hash_conf`,
//! `swift/common/constraints.py`, `swift/common/storage_policy.py`).
//!
//! Swift reads this file with a plain `ConfigParser`, so keys are
//! lower-cased ([`KeyCase::Lower`]).

use std::collections::HashSet;
use std::path::Path;

use crate::config::{ConfigError, ConfigFile, KeyCase, Section};
use crate::hash::HashPathConf;

/// The name Swift gives the implicit policy 0 when `swift.conf` has no
/// `[storage-policy:N]` section; reserved for index 0.
pub const LEGACY_POLICY_NAME: &str = "Policy-0";

/// The only policy type supported so far.
pub const REPLICATION_POLICY_TYPE: &str = "replication";

/// Options accepted in a `[storage-policy:N]` section of a replication
/// policy.
const POLICY_OPTIONS: [&str; 6] = ["name", "aliases", "policy_type", "default", "deprecated", "diskfile_module"];

/// Why `swift.conf` could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwiftConfError {
    /// The file could not be read or parsed, or a value had the wrong type.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Neither hash-path secret is set (Swift's exact message).
    #[error("[swift-hash]: both swift_hash_path_suffix and swift_hash_path_prefix are missing from {path}")]
    MissingHashPath {
        /// The configuration file.
        path: String,
    },
    /// The storage policies break one of Swift's rules.
    #[error("{path}: {message}")]
    Policy {
        /// The configuration file.
        path: String,
        /// What was wrong, naming the section or index concerned.
        message: String,
    },
}

/// Cluster-wide limits from `[swift-constraints]`, with Swift's defaults.
///
/// The proxy enforces them and publishes them in `/info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraints {
    /// Largest object body in bytes (5 GiB + 2).
    pub max_file_size: u64,
    /// Longest metadata name in bytes, after the `X-<type>-Meta-` prefix.
    pub max_meta_name_length: u64,
    /// Longest metadata value in bytes.
    pub max_meta_value_length: u64,
    /// Most metadata items per request.
    pub max_meta_count: u64,
    /// Most bytes of metadata names and values together.
    pub max_meta_overall_size: u64,
    /// Longest header line in bytes.
    pub max_header_size: u64,
    /// Longest request line in bytes.
    pub max_request_line: u64,
    /// Longest object name in bytes.
    pub max_object_name_length: u64,
    /// Most entries in one container listing.
    pub container_listing_limit: u64,
    /// Most entries in one account listing.
    pub account_listing_limit: u64,
    /// Longest account name in bytes.
    pub max_account_name_length: u64,
    /// Longest container name in bytes.
    pub max_container_name_length: u64,
    /// API version path segments accepted (`v1`, `v1.0`).
    pub valid_api_versions: Vec<String>,
    /// Headers allowed on top of metadata and Swift's own (may be negative
    /// in the file; counts as 0 then).
    pub extra_header_count: i64,
    /// Accounts whose names start with this are auto-created (`.`).
    pub auto_create_account_prefix: String,
}

impl Default for Constraints {
    fn default() -> Self {
        Constraints {
            max_file_size: 5_368_709_122,
            max_meta_name_length: 128,
            max_meta_value_length: 256,
            max_meta_count: 90,
            max_meta_overall_size: 4096,
            max_header_size: 8192,
            max_request_line: 8192,
            max_object_name_length: 1024,
            container_listing_limit: 10_000,
            account_listing_limit: 10_000,
            max_account_name_length: 256,
            max_container_name_length: 256,
            valid_api_versions: vec!["v1".to_string(), "v1.0".to_string()],
            extra_header_count: 0,
            auto_create_account_prefix: ".".to_string(),
        }
    }
}

impl Constraints {
    /// Reads `[swift-constraints]` over the defaults. Integers that do not
    /// parse are errors naming the key (Swift lets `int()` fail there too).
    pub fn from_section(section: &Section) -> Result<Constraints, ConfigError> {
        let d = Constraints::default();
        Ok(Constraints {
            max_file_size: section.get_u64("max_file_size", d.max_file_size)?,
            max_meta_name_length: section.get_u64("max_meta_name_length", d.max_meta_name_length)?,
            max_meta_value_length: section.get_u64("max_meta_value_length", d.max_meta_value_length)?,
            max_meta_count: section.get_u64("max_meta_count", d.max_meta_count)?,
            max_meta_overall_size: section.get_u64("max_meta_overall_size", d.max_meta_overall_size)?,
            max_header_size: section.get_u64("max_header_size", d.max_header_size)?,
            max_request_line: section.get_u64("max_request_line", d.max_request_line)?,
            max_object_name_length: section.get_u64("max_object_name_length", d.max_object_name_length)?,
            container_listing_limit: section.get_u64("container_listing_limit", d.container_listing_limit)?,
            account_listing_limit: section.get_u64("account_listing_limit", d.account_listing_limit)?,
            max_account_name_length: section.get_u64("max_account_name_length", d.max_account_name_length)?,
            max_container_name_length: section.get_u64("max_container_name_length", d.max_container_name_length)?,
            valid_api_versions: if section.contains_key("valid_api_versions") {
                section.get_list("valid_api_versions")?
            } else {
                d.valid_api_versions
            },
            extra_header_count: section.get_i64("extra_header_count", d.extra_header_count)?,
            auto_create_account_prefix: section.get_str("auto_create_account_prefix", &d.auto_create_account_prefix)?,
        })
    }

    /// Most headers a request may carry: metadata items, 36 for Swift's own
    /// and ordinary HTTP headers, plus `extra_header_count` when positive
    /// (Swift's `MAX_HEADER_COUNT`).
    pub fn max_header_count(&self) -> u64 {
        self.max_meta_count + 36 + self.extra_header_count.max(0) as u64
    }
}

/// One storage policy from a `[storage-policy:N]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoragePolicy {
    /// The policy index `N`; objects of the policy use ring
    /// [`ring_name`]`(N)`.
    pub index: u32,
    /// The primary name.
    pub name: String,
    /// Further names from `aliases = ...`, in order, without the primary
    /// name. See [`StoragePolicy::all_names`].
    pub aliases: Vec<String>,
    /// True for the policy new containers get when none is asked for.
    pub is_default: bool,
    /// True when new containers may not use this policy.
    pub is_deprecated: bool,
    /// `replication` (the only type supported so far).
    pub policy_type: String,
}

impl StoragePolicy {
    /// The primary name followed by the aliases.
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.name.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// All names joined with `", "`, as `/info` and Swift's `aliases`
    /// property show them (e.g. `gold, yellow, orange`).
    pub fn aliases_string(&self) -> String {
        self.all_names().collect::<Vec<_>>().join(", ")
    }

    /// True when `name` is the primary name or an alias (case-insensitive).
    pub fn has_name(&self, name: &str) -> bool {
        self.all_names().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// The object ring's name: `object` for index 0, `object-N` otherwise.
    pub fn ring_name(&self) -> String {
        ring_name(self.index)
    }
}

/// The object ring name for a policy index: `object` for 0, `object-N`
/// otherwise (the ring file is `<name>.ring.gz`).
pub fn ring_name(index: u32) -> String {
    if index == 0 {
        "object".to_string()
    } else {
        format!("object-{index}")
    }
}

/// The parsed and validated `swift.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwiftConf {
    /// `[swift-hash]` secrets for [`HashPathConf::hash_path`].
    pub hash: HashPathConf,
    /// `[swift-constraints]` over Swift's defaults.
    pub constraints: Constraints,
    /// The storage policies in file order; never empty, exactly one is the
    /// default.
    pub policies: Vec<StoragePolicy>,
}

impl SwiftConf {
    /// Reads and validates a `swift.conf` file.
    pub fn load(path: &Path) -> Result<SwiftConf, SwiftConfError> {
        let config = ConfigFile::load_with_case(path, KeyCase::Lower)?;
        SwiftConf::from_config(&config)
    }

    /// Reads and validates `<swift_dir>/swift.conf`.
    pub fn load_dir(swift_dir: &Path) -> Result<SwiftConf, SwiftConfError> {
        SwiftConf::load(&swift_dir.join("swift.conf"))
    }

    /// Validates an already parsed `swift.conf` (best parsed with
    /// [`KeyCase::Lower`], as Swift does).
    pub fn from_config(config: &ConfigFile) -> Result<SwiftConf, SwiftConfError> {
        Ok(SwiftConf {
            hash: hash_conf(config)?,
            constraints: match config.section("swift-constraints") {
                Some(section) => Constraints::from_section(&section)?,
                None => Constraints::default(),
            },
            policies: parse_policies(config)?,
        })
    }

    /// The default policy (there is always exactly one).
    pub fn default_policy(&self) -> &StoragePolicy {
        self.policies.iter().find(|p| p.is_default).unwrap_or(&self.policies[0])
    }

    /// The policy with this index, if any.
    pub fn policy_by_index(&self, index: u32) -> Option<&StoragePolicy> {
        self.policies.iter().find(|p| p.index == index)
    }

    /// The policy with this name or alias (case-insensitive), if any.
    pub fn policy_by_name(&self, name: &str) -> Option<&StoragePolicy> {
        self.policies.iter().find(|p| p.has_name(name))
    }
}

/// Reads `[swift-hash]`; at least one of the two secrets must be non-empty.
fn hash_conf(config: &ConfigFile) -> Result<HashPathConf, SwiftConfError> {
    let (prefix, suffix) = match config.section("swift-hash") {
        Some(section) => (section.get_str("swift_hash_path_prefix", "")?, section.get_str("swift_hash_path_suffix", "")?),
        None => (String::new(), String::new()),
    };
    if prefix.is_empty() && suffix.is_empty() {
        return Err(SwiftConfError::MissingHashPath { path: config.source().to_string() });
    }
    Ok(HashPathConf::new(prefix, suffix))
}

/// Parses every `[storage-policy:N]` section and checks the collection
/// rules of Swift's `StoragePolicyCollection`.
fn parse_policies(config: &ConfigFile) -> Result<Vec<StoragePolicy>, SwiftConfError> {
    let error = |message: String| SwiftConfError::Policy { path: config.source().to_string(), message };
    let mut policies: Vec<StoragePolicy> = Vec::new();
    for name in config.sections() {
        let Some(index_text) = name.strip_prefix("storage-policy:") else {
            continue;
        };
        let Some(section) = config.section(name) else {
            continue;
        };
        let policy = parse_policy(name, index_text, &section).map_err(|e| match e {
            PolicyParseError::Config(e) => SwiftConfError::Config(e),
            PolicyParseError::Invalid(message) => error(message),
        })?;
        if let Some(other) = policies.iter().find(|p| p.index == policy.index) {
            return Err(error(format!("[{name}]: duplicate index {} conflicts with policy {:?}", policy.index, other.name)));
        }
        for policy_name in policy.all_names() {
            if let Some(other) = policies.iter().find(|p| p.has_name(policy_name)) {
                return Err(error(format!(
                    "[{name}]: duplicate name {policy_name:?} conflicts with policy {} ({:?})",
                    other.index, other.name
                )));
            }
        }
        if policy.is_default {
            if let Some(other) = policies.iter().find(|p| p.is_default) {
                return Err(error(format!(
                    "[{name}]: duplicate default, policy {} ({:?}) is already the default",
                    other.index, other.name
                )));
            }
        }
        policies.push(policy);
    }

    if !policies.iter().any(|p| p.index == 0) {
        if !policies.is_empty() {
            return Err(error(
                "You must specify a storage policy section for policy index 0 in order to \
                 define multiple policies"
                    .to_string(),
            ));
        }
        policies.push(StoragePolicy {
            index: 0,
            name: LEGACY_POLICY_NAME.to_string(),
            aliases: Vec::new(),
            is_default: false,
            is_deprecated: false,
            policy_type: REPLICATION_POLICY_TYPE.to_string(),
        });
    }
    if policies.iter().all(|p| p.is_deprecated) {
        return Err(error("Unable to find policy that's not deprecated!".to_string()));
    }
    if !policies.iter().any(|p| p.is_default) {
        if policies.len() > 1 {
            return Err(error(
                "Unable to find default policy: set 'default = yes' in one \
                 [storage-policy:N] section"
                    .to_string(),
            ));
        }
        policies[0].is_default = true;
    }
    Ok(policies)
}

/// Errors of one policy section before the file path is attached.
enum PolicyParseError {
    Config(ConfigError),
    Invalid(String),
}

impl From<ConfigError> for PolicyParseError {
    fn from(e: ConfigError) -> Self {
        PolicyParseError::Config(e)
    }
}

/// Parses one `[storage-policy:N]` section (Swift's `from_config` and the
/// `BaseStoragePolicy` constructor checks).
fn parse_policy(section_name: &str, index_text: &str, section: &Section) -> Result<StoragePolicy, PolicyParseError> {
    let invalid = |message: String| PolicyParseError::Invalid(format!("[{section_name}]: {message}"));
    let index: u32 = index_text.trim().parse().map_err(|_| invalid(format!("Invalid index {index_text:?}")))?;
    for key in section.keys() {
        if !POLICY_OPTIONS.contains(&key) {
            return Err(invalid(format!("Invalid option {key:?} in storage-policy section")));
        }
    }
    let policy_type = section.get_str("policy_type", REPLICATION_POLICY_TYPE)?;
    match policy_type.as_str() {
        REPLICATION_POLICY_TYPE => {}
        "erasure_coding" => {
            return Err(invalid(
                "policy_type 'erasure_coding' is not supported yet; only 'replication' \
                 policies are"
                    .to_string(),
            ))
        }
        other => return Err(invalid(format!("Invalid type {other:?}"))),
    }

    let name = section.get_str("name", "")?;
    validate_name(&name, index, &[]).map_err(invalid)?;
    let mut aliases: Vec<String> = Vec::new();
    for alias in section.get_list("aliases")? {
        if alias == name {
            continue;
        }
        let mut taken: Vec<&str> = vec![name.as_str()];
        taken.extend(aliases.iter().map(String::as_str));
        validate_name(&alias, index, &taken).map_err(invalid)?;
        aliases.push(alias);
    }
    let is_default = section.get_bool("default", false)?;
    let is_deprecated = section.get_bool("deprecated", false)?;
    if is_default && is_deprecated {
        return Err(invalid("Deprecated policy can not be default. Invalid config".to_string()));
    }
    Ok(StoragePolicy { index, name, aliases, is_default, is_deprecated, policy_type })
}

/// Swift's `_validate_policy_name`: non-empty, only ASCII letters, digits
/// and `-` (names travel in HTTP headers), `Policy-0` only for index 0, and
/// not already one of this policy's names (case-insensitive).
fn validate_name(name: &str, index: u32, taken: &[&str]) -> Result<(), String> {
    if name.is_empty() {
        return Err("Invalid name \"\": a policy name is required".to_string());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!(
            "Invalid name {name:?}: names are used as HTTP headers and may only contain \
             ASCII letters, digits and '-'"
        ));
    }
    if name.eq_ignore_ascii_case(LEGACY_POLICY_NAME) && index != 0 {
        return Err(format!("Invalid name {name:?}: the name {LEGACY_POLICY_NAME} is reserved for policy index 0"));
    }
    let seen: HashSet<String> = taken.iter().map(|n| n.to_ascii_uppercase()).collect();
    if seen.contains(&name.to_ascii_uppercase()) {
        return Err(format!("The name {name} is already assigned to this policy"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_text(text: &str) -> Result<SwiftConf, SwiftConfError> {
        let config = ConfigFile::parse_with_case(text, "/etc/swift/swift.conf", KeyCase::Lower)?;
        SwiftConf::from_config(&config)
    }

    const HASH: &str = "[swift-hash]\nswift_hash_path_suffix = s\n";

    fn policy_error(text: &str) -> String {
        match from_text(&format!("{HASH}{text}")) {
            Err(e) => e.to_string(),
            Ok(conf) => panic!("expected an error, got {conf:?}"),
        }
    }

    #[test]
    fn fixture_swift_conf_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ring/tests/fixtures/rings");
        let conf = SwiftConf::load(&dir.join("swift.conf")).unwrap();
        assert_eq!(conf.hash, HashPathConf::new("fixture-prefix", "fixture-suffix"));
        assert_eq!(conf.policies.len(), 1);
        let gold = conf.default_policy();
        assert_eq!((gold.index, gold.name.as_str()), (0, "gold"));
        assert!(gold.is_default);
        assert_eq!(conf.constraints, Constraints::default());
        let same = SwiftConf::load_dir(&dir).unwrap();
        assert_eq!(same, conf);
    }

    #[test]
    fn saio_swift_conf_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/swift-saio-etc/swift.conf");
        let conf = SwiftConf::load(&path).unwrap();
        assert_eq!(conf.hash, HashPathConf::new("saio-anchor-prefix", "saio-anchor-suffix"));
        assert_eq!(conf.policies.len(), 2);
        assert_eq!(conf.default_policy().name, "gold");
        let gold = conf.policy_by_name("YELLOW").unwrap();
        assert_eq!(gold.index, 0);
        assert_eq!(gold.aliases, ["yellow", "orange"]);
        assert_eq!(gold.aliases_string(), "gold, yellow, orange");
        let silver = conf.policy_by_index(1).unwrap();
        assert_eq!(silver.name, "silver");
        assert!(!silver.is_default);
        assert_eq!(silver.ring_name(), "object-1");
        assert_eq!(conf.policy_by_name("Silver"), Some(silver));
        assert!(conf.policy_by_name("bronze").is_none());
        assert!(conf.policy_by_index(2).is_none());
    }

    #[test]
    fn ring_names() {
        assert_eq!(ring_name(0), "object");
        assert_eq!(ring_name(1), "object-1");
        assert_eq!(ring_name(12), "object-12");
    }

    #[test]
    fn missing_hash_path_is_swifts_error() {
        let expected = "[swift-hash]: both swift_hash_path_suffix and swift_hash_path_prefix \
                        are missing from /etc/swift/swift.conf";
        assert_eq!(from_text("").unwrap_err().to_string(), expected);
        assert_eq!(from_text("[swift-hash]\nswift_hash_path_prefix =\nswift_hash_path_suffix =\n").unwrap_err().to_string(), expected);
        let only_prefix = from_text("[swift-hash]\nswift_hash_path_prefix = p\n").unwrap();
        assert_eq!(only_prefix.hash, HashPathConf::new("p", ""));
    }

    #[test]
    fn missing_file() {
        let err = SwiftConf::load_dir(Path::new("/nonexistent")).unwrap_err();
        assert_eq!(err.to_string(), "Unable to read config from /nonexistent/swift.conf: No such file or directory");
    }

    #[test]
    fn no_policies_means_implicit_policy_0() {
        let conf = from_text(HASH).unwrap();
        assert_eq!(conf.policies.len(), 1);
        let p = conf.default_policy();
        assert_eq!((p.index, p.name.as_str()), (0, LEGACY_POLICY_NAME));
        assert!(p.is_default && !p.is_deprecated);
        assert_eq!(p.policy_type, "replication");
        assert_eq!(conf.policy_by_name("policy-0").map(|p| p.index), Some(0));
    }

    #[test]
    fn single_policy_is_implicitly_default() {
        let conf = from_text(&format!("{HASH}[storage-policy:0]\nname = gold\n")).unwrap();
        assert!(conf.default_policy().is_default);
        assert_eq!(conf.default_policy().name, "gold");
    }

    #[test]
    fn constraints_override_and_validate() {
        let conf = from_text(&format!(
            "{HASH}[swift-constraints]\nmax_file_size = 1000\nMax_Meta_Count = 5\n\
             valid_api_versions = v1, v2\nextra_header_count = -1\n\
             auto_create_account_prefix = _\n"
        ))
        .unwrap();
        let c = &conf.constraints;
        assert_eq!(c.max_file_size, 1000);
        assert_eq!(c.max_meta_count, 5);
        assert_eq!(c.valid_api_versions, ["v1", "v2"]);
        assert_eq!(c.extra_header_count, -1);
        assert_eq!(c.max_header_count(), 41);
        assert_eq!(c.auto_create_account_prefix, "_");
        assert_eq!(c.max_object_name_length, 1024);
        let err = from_text(&format!("{HASH}[swift-constraints]\nmax_file_size = big\n")).unwrap_err().to_string();
        assert_eq!(
            err,
            "/etc/swift/swift.conf:4: [swift-constraints] max_file_size: expected a \
             non-negative integer, got \"big\""
        );
    }

    #[test]
    fn default_constraints_match_swift() {
        let c = Constraints::default();
        assert_eq!(c.max_file_size, 5_368_709_122);
        assert_eq!(c.max_meta_overall_size, 4096);
        assert_eq!(c.container_listing_limit, 10_000);
        assert_eq!(c.max_header_count(), 126);
    }

    #[test]
    fn policy_errors() {
        let e = policy_error("[storage-policy:0]\nname = gold\n[storage-policy:1]\nname = GOLD\ndefault = yes\n");
        assert!(e.contains("duplicate name \"GOLD\""), "{e}");
        let e = policy_error("[storage-policy:0]\nname = gold\naliases = silver\n[storage-policy:1]\nname = Silver\n");
        assert!(e.contains("duplicate name \"Silver\""), "{e}");
        let e = policy_error("[storage-policy:0]\nname = gold\n[storage-policy:00]\nname = silver\n");
        assert!(e.contains("duplicate index 0"), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a\ndefault = yes\n[storage-policy:1]\nname = b\ndefault = true\n");
        assert!(e.contains("duplicate default"), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a\n[storage-policy:1]\nname = b\n");
        assert!(e.contains("Unable to find default policy"), "{e}");
        let e = policy_error("[storage-policy:1]\nname = b\n");
        assert!(e.contains("policy index 0"), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a b\n");
        assert!(e.starts_with("/etc/swift/swift.conf: [storage-policy:0]: Invalid name \"a b\""), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a_b\n");
        assert!(e.contains("Invalid name"), "{e}");
        let e = policy_error("[storage-policy:0]\n");
        assert!(e.contains("a policy name is required"), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a\n[storage-policy:1]\nname = policy-0\n");
        assert!(e.contains("reserved for policy index 0"), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a\naliases = b, B\n");
        assert!(e.contains("already assigned"), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a\ndefault = yes\ndeprecated = yes\n");
        assert!(e.contains("Deprecated policy can not be default"), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a\ndeprecated = yes\n");
        assert!(e.contains("not deprecated"), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a\npolicy_type = erasure_coding\nec_type = x\n");
        assert!(e.contains("Invalid option \"ec_type\""), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a\npolicy_type = erasure_coding\n");
        assert!(e.contains("'erasure_coding' is not supported yet"), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a\npolicy_type = magic\n");
        assert!(e.contains("Invalid type \"magic\""), "{e}");
        let e = policy_error("[storage-policy:x]\nname = a\n");
        assert!(e.contains("Invalid index \"x\""), "{e}");
        let e = policy_error("[storage-policy:-1]\nname = a\n");
        assert!(e.contains("Invalid index \"-1\""), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a\ncolour = red\n");
        assert!(e.contains("Invalid option \"colour\""), "{e}");
        let e = policy_error("[storage-policy:0]\nname = a\ndefault = maybe\n");
        assert!(e.contains("default: expected a boolean"), "{e}");
    }

    #[test]
    fn deprecated_policies_and_aliases() {
        let conf = from_text(&format!(
            "{HASH}[storage-policy:0]\nname = gold\naliases = gold, yellow\ndeprecated = yes\n\
             [storage-policy:2]\nname = silver\ndefault = yes\n"
        ))
        .unwrap();
        assert_eq!(conf.default_policy().index, 2);
        let gold = conf.policy_by_index(0).unwrap();
        assert!(gold.is_deprecated);
        assert_eq!(gold.aliases, ["yellow"]);
        assert_eq!(conf.policies.iter().map(|p| p.index).collect::<Vec<_>>(), [0, 2]);
    }

    #[test]
    fn the_sample_is_a_valid_swift_conf() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../etc/swift.conf-sample");
        let conf = SwiftConf::load(Path::new(path)).unwrap();
        assert_eq!(conf.policies.len(), 1);
        assert!(conf.policies[0].is_default);
        assert_eq!(conf.constraints.max_file_size, 5368709122);
    }
}
