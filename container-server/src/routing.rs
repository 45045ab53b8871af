//! Request routing: verb and path → [`Route`], with Swift's path rules and
//! name-length limits. Bad paths become a status and a one-line reason.

use common::dbserver::request::{parse_path, Refusal};
use common::path::StoragePath;
use common::swift_conf::Constraints;
use http::{Method, StatusCode};

/// What a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/<dev>/<part>/<account>/<container>`.
    Container(ContainerOp, StoragePath),
    /// `/<dev>/<part>/<account>/<container>/<object>`: an object row update
    /// sent by an object server.
    Object(ObjectOp, StoragePath),
    /// `REPLICATE`: DB replication (the path is parsed by its handler,
    /// `common::dbserver::replicate`).
    Replicate,
    /// `UPDATE` (sharding), not implemented.
    NotImplemented,
}

/// Operations on a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerOp {
    Put,
    Post,
    Delete,
    Head,
    Get,
}

/// Operations on an object row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectOp {
    Put,
    Delete,
}

/// Routes `method` on the raw (quoted) `path`.
pub fn route(method: &Method, raw_path: &str, limits: &Constraints) -> Result<Route, Refusal> {
    let (min, max) = match method.as_str() {
        "REPLICATE" => return Ok(Route::Replicate),
        "UPDATE" => return Ok(Route::NotImplemented),
        // Swift takes an object segment on these and ignores it for
        // HEAD/GET.
        "PUT" | "DELETE" | "HEAD" | "GET" => (4, 5),
        "POST" => (4, 4),
        _ => return Err((StatusCode::METHOD_NOT_ALLOWED, format!("Method {method} is not allowed"))),
    };
    let path = parse_path(raw_path, min, max, limits)?;
    let object_op = match method.as_str() {
        "PUT" => Some(ObjectOp::Put),
        "DELETE" => Some(ObjectOp::Delete),
        _ => None,
    };
    if path.object.is_some() {
        if let Some(op) = object_op {
            return Ok(Route::Object(op, path));
        }
    }
    let op = match method.as_str() {
        "PUT" => ContainerOp::Put,
        "POST" => ContainerOp::Post,
        "DELETE" => ContainerOp::Delete,
        "HEAD" => ContainerOp::Head,
        _ => ContainerOp::Get,
    };
    Ok(Route::Container(op, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_swift() {
        let l = Constraints::default();
        let put = Method::PUT;
        assert!(matches!(route(&put, "/sda/1/a/c", &l), Ok(Route::Container(ContainerOp::Put, _))));
        assert!(matches!(route(&put, "/sda/1/a/c/o/x", &l), Ok(Route::Object(ObjectOp::Put, p)) if p.object.as_deref() == Some("o/x")));
        assert!(matches!(route(&Method::GET, "/sda/1/a/c/o", &l), Ok(Route::Container(ContainerOp::Get, _))));
        assert_eq!(route(&Method::POST, "/sda/1/a/c/o", &l).unwrap_err().0, 400);
        assert_eq!(route(&put, "/sda/1/a", &l).unwrap_err().0, 400);
        assert_eq!(route(&put, "/sda/1/a/%ff", &l).unwrap_err().0, 412);
        let long = format!("/sda/1/a/{}", "c".repeat(257));
        assert_eq!(route(&put, &long, &l).unwrap_err(), (StatusCode::BAD_REQUEST, "Container name length of 257 longer than 256".into()));
        let m = Method::from_bytes(b"REPLICATE").unwrap();
        assert_eq!(route(&m, "/sda/1/abc", &l), Ok(Route::Replicate));
    }
}
