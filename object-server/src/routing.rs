//! Request routing: the method and path of a request become a [`Route`].

use common::path::{parse_storage_path, split_path, unquote, validate_device_partition, PathError, StoragePath};
use http::Method;

/// The object verbs, each handled in its own module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectVerb {
    Put,
    Get,
    Head,
    Post,
    Delete,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `<VERB> /<dev>/<part>/<a>/<c>/<o>`.
    Object { verb: ObjectVerb, path: StoragePath },
    /// `REPLICATE /<dev>/<part>[/<suf>-<suf>...]`.
    Replicate { device: String, partition: u32, suffixes: Vec<String> },
    /// `SSYNC /<dev>/<part>`.
    Ssync { device: String, partition: u32 },
}

/// Routes a request (method not `OPTIONS`, already allowed by the scaffold).
pub fn route(method: &Method, raw_path: &str) -> Result<Option<Route>, PathError> {
    let verb = match method.as_str() {
        "PUT" => ObjectVerb::Put,
        "GET" => ObjectVerb::Get,
        "HEAD" => ObjectVerb::Head,
        "POST" => ObjectVerb::Post,
        "DELETE" => ObjectVerb::Delete,
        "REPLICATE" => {
            let path = unquote(raw_path)?;
            let segs = split_path(&path, 2, 3, true)?;
            let device = segs[0].clone().unwrap_or_default();
            let partition = validate_device_partition(&device, segs[1].as_deref().unwrap_or(""))?;
            let suffixes =
                segs[2].as_deref().map(|s| s.split('-').filter(|x| !x.is_empty()).map(str::to_string).collect()).unwrap_or_default();
            return Ok(Some(Route::Replicate { device, partition, suffixes }));
        }
        "SSYNC" => {
            let path = unquote(raw_path)?;
            let segs = split_path(&path, 2, 2, false)?;
            let device = segs[0].clone().unwrap_or_default();
            let partition = validate_device_partition(&device, segs[1].as_deref().unwrap_or(""))?;
            return Ok(Some(Route::Ssync { device, partition }));
        }
        _ => return Ok(None),
    };
    let path = parse_storage_path(raw_path, 5, 5)?;
    Ok(Some(Route::Object { verb, path }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = route(&Method::PUT, "/sda/1/a/c/o/x").unwrap().unwrap();
        assert!(matches!(r, Route::Object { verb: ObjectVerb::Put, ref path } if path.object.as_deref() == Some("o/x")));
        let r = route(&Method::from_bytes(b"REPLICATE").unwrap(), "/sda/1/abc-def").unwrap().unwrap();
        assert_eq!(r, Route::Replicate { device: "sda".into(), partition: 1, suffixes: vec!["abc".into(), "def".into()] });
        let r = route(&Method::from_bytes(b"REPLICATE").unwrap(), "/sda/1").unwrap().unwrap();
        assert_eq!(r, Route::Replicate { device: "sda".into(), partition: 1, suffixes: vec![] });
        let r = route(&Method::from_bytes(b"SSYNC").unwrap(), "/sda/7").unwrap().unwrap();
        assert_eq!(r, Route::Ssync { device: "sda".into(), partition: 7 });
        assert!(route(&Method::from_bytes(b"SSYNC").unwrap(), "/sda/7/a").is_err());
        assert!(route(&Method::from_bytes(b"SSYNC").unwrap(), "/sda/x").is_err());
        assert!(route(&Method::GET, "/sda/1/a/c").is_err());
        assert!(route(&Method::GET, "/sda/x/a/c/o").is_err());
    }
}
