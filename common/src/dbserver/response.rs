//! Building the responses of the account and container servers from what
//! went wrong: a [`Refusal`], a storage or device failure, a failed format
//! negotiation; and setting headers that may not be valid HTTP.

use super::request::Refusal;
use crate::db::listing::NegotiationError;
use crate::db::DbError;
use crate::devices::DeviceError;
use crate::http::{self as h, Body};
use crate::log;
use http::{HeaderName, HeaderValue, Response, StatusCode};

/// A one-line refusal as a response.
pub fn refuse((status, reason): Refusal) -> Response<Body> {
    h::text(status, reason)
}

/// Maps a storage failure to a response, logging what is the server's
/// fault (once, here); `what` names the operation in the log line.
pub fn storage_failure(what: &str, e: DbError) -> Response<Body> {
    match e {
        DbError::InvalidMetadata(reason) => h::text(StatusCode::BAD_REQUEST, reason),
        DbError::NotFound(_) => h::status(StatusCode::NOT_FOUND),
        e => {
            log::error(&format!("ERROR {what}: {e}"));
            h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// 507 for a device that cannot take requests.
pub fn device_failure(device: &str, _e: DeviceError) -> Response<Body> {
    h::insufficient_storage(device)
}

/// 400 or 406 for a failed listing format negotiation.
pub fn negotiation_failure(e: NegotiationError) -> Response<Body> {
    match e {
        NegotiationError::BadAccept => h::text(StatusCode::BAD_REQUEST, "Invalid Accept header"),
        NegotiationError::NotAcceptable => h::status(StatusCode::NOT_ACCEPTABLE),
    }
}

/// Adds a header, skipping values HTTP cannot carry.
pub fn set_header(resp: &mut Response<Body>, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value.as_bytes())) {
        resp.headers_mut().insert(n, v);
    }
}
