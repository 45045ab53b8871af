//! The app's side of account and container listings: what it asks the
//! storage servers for, and its answer, which is always JSON. Choosing the
//! client's format (`?format=`, `Accept`) and rendering plain text or XML is
//! the `listing_formats` middleware's job (`middleware::listing_formats`),
//! which Swift puts in every pipeline; without it clients get JSON.

use crate::backend::Answer;
use common::http::{self as h, Body};
use http::{HeaderValue, Method, Response, StatusCode};

/// Listing query parameters passed on to storage servers.
pub const LISTING_PARAMS: &[&str] = &["prefix", "delimiter", "marker", "end_marker", "limit", "reverse", "path"];

/// The backend listing query: the client's listing parameters, and always
/// `format=json`.
pub fn backend_query(q: &[(String, String)]) -> String {
    let mut out = vec!["format=json".to_string()];
    for (k, v) in q {
        if LISTING_PARAMS.contains(&k.as_str()) {
            out.push(format!("{}={}", k, percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)));
        }
    }
    out.join("&")
}

/// Swift's `constrain_req_limit`: a `limit` parameter that is not all
/// digits is dropped (the default applies); one above `max` is a 412.
pub fn constrain_limit(q: &mut Vec<(String, String)>, max: u64) -> Result<(), Response<Body>> {
    let Some(limit) = q.iter().find(|(k, _)| k == "limit").map(|(_, v)| v.clone()) else { return Ok(()) };
    if limit.is_empty() || !limit.bytes().all(|b| b.is_ascii_digit()) {
        q.retain(|(k, _)| k != "limit");
        return Ok(());
    }
    if limit.parse::<u64>().map_or(true, |l| l > max) {
        return Err(h::text(StatusCode::PRECONDITION_FAILED, format!("Maximum limit is {max}")));
    }
    Ok(())
}

/// The client's answer to a listing GET or HEAD from a storage server's
/// successful JSON answer: the JSON as the server wrote it (Swift's
/// formatting; `[]` if it sent nothing), 200, or for HEAD the server's
/// status and no body. Headers as for any answer, with
/// `application/json; charset=utf-8`.
pub fn json_response(ans: &Answer, method: &Method) -> Response<Body> {
    let mut r = Response::new(h::empty());
    crate::proxy::client_headers(&ans.headers, r.headers_mut());
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    if *method == Method::HEAD {
        *r.status_mut() = ans.status;
        r.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from(0));
        return r;
    }
    let body = if ans.body.is_empty() { bytes::Bytes::from_static(b"[]") } else { ans.body.clone() };
    r.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    *r.body_mut() = h::full(body);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::HeaderMap;

    #[test]
    fn backend_query_keeps_listing_parameters_only() {
        let q = vec![
            ("format".to_string(), "xml".to_string()),
            ("prefix".to_string(), "a b/".to_string()),
            ("limit".to_string(), "2".to_string()),
            ("multipart-manifest".to_string(), "get".to_string()),
        ];
        assert_eq!(backend_query(&q), "format=json&prefix=a%20b%2F&limit=2");
    }

    #[test]
    fn limits_are_constrained() {
        let mut q = vec![("limit".to_string(), "x".to_string())];
        assert!(constrain_limit(&mut q, 10).is_ok());
        assert!(q.is_empty());
        let mut q = vec![("limit".to_string(), "11".to_string())];
        assert_eq!(constrain_limit(&mut q, 10).unwrap_err().status(), StatusCode::PRECONDITION_FAILED);
    }

    #[tokio::test]
    async fn answers_are_json() {
        let ans = Answer { status: StatusCode::OK, headers: HeaderMap::new(), body: Bytes::new() };
        let r = json_response(&ans, &Method::GET);
        assert_eq!((r.status(), r.headers()["content-type"].to_str().unwrap()), (StatusCode::OK, "application/json; charset=utf-8"));
        assert_eq!(r.headers()["content-length"], "2");
        assert_eq!(crate::middleware::testing::body_of(r).await, "[]");
        let ans = Answer { status: StatusCode::NO_CONTENT, headers: HeaderMap::new(), body: Bytes::new() };
        let r = json_response(&ans, &Method::HEAD);
        assert_eq!((r.status(), r.headers()["content-length"].to_str().unwrap()), (StatusCode::NO_CONTENT, "0"));
    }
}
