//! Request routing: verb and path → [`Route`], with Swift's path rules and
//! name-length limits. Bad paths become a status and a one-line reason.

use common::dbserver::request::{parse_path, Refusal};
use common::path::StoragePath;
use common::swift_conf::Constraints;
use http::{Method, StatusCode};

/// What a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/<dev>/<part>/<account>`.
    Account(AccountOp, StoragePath),
    /// `PUT /<dev>/<part>/<account>/<container>`: a container's row,
    /// reported by a container server.
    ContainerUpdate(StoragePath),
    /// `REPLICATE`: DB replication (the path is parsed by its handler,
    /// `common::dbserver::replicate`).
    Replicate,
}

/// Operations on an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountOp {
    Put,
    Post,
    Delete,
    Head,
    Get,
}

/// Routes `method` on the raw (quoted) `path`.
pub fn route(method: &Method, raw_path: &str, limits: &Constraints) -> Result<Route, Refusal> {
    let (op, max) = match method.as_str() {
        "REPLICATE" => return Ok(Route::Replicate),
        // Only PUT takes a container segment (Swift's PUT_container).
        "PUT" => (AccountOp::Put, 4),
        "POST" => (AccountOp::Post, 3),
        "DELETE" => (AccountOp::Delete, 3),
        "HEAD" => (AccountOp::Head, 3),
        "GET" => (AccountOp::Get, 3),
        _ => return Err((StatusCode::METHOD_NOT_ALLOWED, format!("Method {method} is not allowed"))),
    };
    let path = parse_path(raw_path, 3, max, limits)?;
    if path.container.is_some() {
        return Ok(Route::ContainerUpdate(path));
    }
    Ok(Route::Account(op, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_swift() {
        let l = Constraints::default();
        assert!(matches!(route(&Method::PUT, "/sda/1/a", &l), Ok(Route::Account(AccountOp::Put, _))));
        assert!(matches!(route(&Method::PUT, "/sda/1/a/c", &l), Ok(Route::ContainerUpdate(p)) if p.container.as_deref() == Some("c")));
        assert!(matches!(route(&Method::GET, "/sda/1/a", &l), Ok(Route::Account(AccountOp::Get, _))));
        assert_eq!(route(&Method::GET, "/sda/1/a/c", &l).unwrap_err().0, 400);
        assert_eq!(route(&Method::DELETE, "/sda/1/a/c", &l).unwrap_err().0, 400);
        assert_eq!(route(&Method::PUT, "/sda/1/a/c/o", &l).unwrap_err().0, 400);
        assert_eq!(route(&Method::HEAD, "/sda/1", &l).unwrap_err().0, 400);
        assert_eq!(route(&Method::HEAD, "/sda/x/a", &l).unwrap_err().0, 400);
        assert_eq!(route(&Method::HEAD, "/sda/1/a%ff", &l).unwrap_err().0, 412);
        let long = format!("/sda/1/{}", "a".repeat(257));
        assert_eq!(
            route(&Method::HEAD, &long, &l).unwrap_err(),
            (StatusCode::BAD_REQUEST, "Account name length of 257 longer than 256".into())
        );
        let m = Method::from_bytes(b"REPLICATE").unwrap();
        assert_eq!(route(&m, "/sda/1/abc", &l), Ok(Route::Replicate));
    }
}
