//! Parsing and validating backend request paths
//! (`/<device>/<partition>/<account>[/<container>[/<object>]]`), as Swift's
//! `split_path`, `check_utf8` and `validate_device_partition` do.

use percent_encoding::percent_decode_str;

/// Why a path was refused; each maps to Swift's status and reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// 400 Bad Request.
    #[error("Invalid path: {0}")]
    Invalid(String),
    /// 412 Precondition Failed: bytes that are not UTF-8, or a NUL.
    #[error("Invalid UTF8 or contains NULL")]
    BadUtf8,
    /// 400 Bad Request.
    #[error("Invalid device: {0}")]
    Device(String),
    /// 400 Bad Request.
    #[error("Invalid partition: {0}")]
    Partition(String),
}

impl PathError {
    /// The HTTP status Swift answers with.
    pub fn status(&self) -> http::StatusCode {
        match self {
            PathError::BadUtf8 => http::StatusCode::PRECONDITION_FAILED,
            _ => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Percent-decodes a request path; it must be UTF-8 without NUL.
pub fn unquote(raw: &str) -> Result<String, PathError> {
    let s = percent_decode_str(raw).decode_utf8().map_err(|_| PathError::BadUtf8)?;
    if s.contains('\0') {
        return Err(PathError::BadUtf8);
    }
    Ok(s.into_owned())
}

/// Percent-decodes a path that may hold reserved names (`\0`-separated,
/// as object versioning makes them): what the storage servers accept
/// (Swift's `check_utf8(internal=True)`), and the proxy only for requests
/// a middleware marked with `X-Backend-Allow-Reserved-Names`.
pub fn unquote_internal(raw: &str) -> Result<String, PathError> {
    Ok(percent_decode_str(raw).decode_utf8().map_err(|_| PathError::BadUtf8)?.into_owned())
}

/// Swift's `split_path(path, minsegs, maxsegs, rest_with_last)` on an
/// already unquoted path: between `min` and `max` segments, the first `min`
/// non-empty; with `rest_with_last` the last segment takes the remainder
/// (object names may contain `/`). Missing trailing segments are `None`.
pub fn split_path(path: &str, min: usize, max: usize, rest_with_last: bool) -> Result<Vec<Option<String>>, PathError> {
    let invalid = || PathError::Invalid(path.to_string());
    let (min, max) = (min + 1, max + 1);
    let segs: Vec<&str> = path.splitn(max + usize::from(!rest_with_last), '/').collect();
    let count = segs.len();
    let empty_within_min = segs.iter().take(min).skip(1).any(|s| s.is_empty());
    let bad = if rest_with_last {
        !segs[0].is_empty() || count < min || count > max || empty_within_min
    } else {
        // Python's path.split('/', maxsegs) leaves any remainder in one
        // extra segment, which must be empty (a trailing slash).
        !segs[0].is_empty() || count < min || count > max + 1 || empty_within_min || (count == max + 1 && !segs[max].is_empty())
    };
    if bad {
        return Err(invalid());
    }
    let mut out: Vec<Option<String>> =
        segs[1..count.min(max)].iter().map(|s| if s.is_empty() { None } else { Some(s.to_string()) }).collect();
    out.resize(max - 1, None);
    Ok(out)
}

/// A parsed storage-server path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoragePath {
    pub device: String,
    pub partition: u32,
    pub account: String,
    pub container: Option<String>,
    pub object: Option<String>,
}

/// Checks a device name and partition as Swift's
/// `validate_device_partition`: the device must be a single path component
/// other than `.` and `..`; the partition a non-negative integer.
pub fn validate_device_partition(device: &str, partition: &str) -> Result<u32, PathError> {
    if device.is_empty() || device.contains('/') || device == "." || device == ".." {
        return Err(PathError::Device(device.to_string()));
    }
    if partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PathError::Partition(partition.to_string()));
    }
    partition.parse().map_err(|_| PathError::Partition(partition.to_string()))
}

/// Parses `/<device>/<partition>/<account>[/<container>[/<object>]]` from a
/// raw (quoted) request path, requiring between `min` and `max` segments
/// (3..=5). An object without a container is refused.
pub fn parse_storage_path(raw: &str, min: usize, max: usize) -> Result<StoragePath, PathError> {
    let path = unquote_internal(raw)?;
    let segs = split_path(&path, min, max, max == 5)?;
    let device = segs[0].clone().ok_or_else(|| PathError::Invalid(path.clone()))?;
    let part = segs[1].clone().ok_or_else(|| PathError::Invalid(path.clone()))?;
    let partition = validate_device_partition(&device, &part)?;
    let account = segs[2].clone().ok_or_else(|| PathError::Invalid(path.clone()))?;
    let container = segs.get(3).cloned().flatten();
    let object = segs.get(4).cloned().flatten();
    if object.is_some() && container.is_none() {
        return Err(PathError::Invalid(path));
    }
    Ok(StoragePath { device, partition, account, container, object })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_paths_may_hold_reserved_names_client_paths_may_not() {
        let p = parse_storage_path("/sda1/1/a/%00versions%00c/%00o%009999", 5, 5).unwrap();
        assert_eq!(p.container.as_deref(), Some("\0versions\0c"));
        assert_eq!(p.object.as_deref(), Some("\0o\09999"));
        assert!(unquote("/v1/a/%00c").is_err());
        assert_eq!(unquote_internal("/v1/a/%00c").unwrap(), "/v1/a/\0c");
        assert!(unquote_internal("/v1/a/%FF").is_err());
    }

    #[test]
    fn object_paths_keep_slashes_in_the_name() {
        let p = parse_storage_path("/sda1/12/AUTH_a/c/o/with/slashes%20and%20spaces", 5, 5).unwrap();
        assert_eq!(p.device, "sda1");
        assert_eq!(p.partition, 12);
        assert_eq!(p.account, "AUTH_a");
        assert_eq!(p.container.as_deref(), Some("c"));
        assert_eq!(p.object.as_deref(), Some("o/with/slashes and spaces"));
    }

    #[test]
    fn container_and_account_paths() {
        let p = parse_storage_path("/sda1/3/a/c", 4, 4).unwrap();
        assert_eq!(p.container.as_deref(), Some("c"));
        assert!(p.object.is_none());
        let p = parse_storage_path("/sda1/3/a", 3, 3).unwrap();
        assert!(p.container.is_none());
    }

    #[test]
    fn bad_paths_are_refused_with_swifts_status() {
        assert_eq!(parse_storage_path("/sda1/3/a", 5, 5).unwrap_err().status(), 400);
        assert_eq!(parse_storage_path("/sda1/x/a/c/o", 5, 5).unwrap_err(), PathError::Partition("x".into()));
        assert_eq!(parse_storage_path("/../3/a/c/o", 5, 5).unwrap_err(), PathError::Device("..".into()));
        assert_eq!(parse_storage_path("/sda1/3/a/c/%ff", 5, 5).unwrap_err(), PathError::BadUtf8);
        // NUL is a reserved name's separator: storage servers take it, as
        // Swift's do (check_utf8(internal=True)).
        assert!(parse_storage_path("/sda1/3/a/c/o%00", 5, 5).is_ok());
        assert!(parse_storage_path("/sda1/3/a//o", 5, 5).is_err());
        assert!(parse_storage_path("/sda1/3/a/c/", 5, 5).is_err());
        assert!(parse_storage_path("/sda1/3/a/c/d", 4, 4).is_err());
        assert!(parse_storage_path("sda1/3/a", 3, 3).is_err());
        assert!(parse_storage_path("/sda1/99999999999/a", 3, 3).is_err());
    }
}
