//! Object DELETE: writes a tombstone (`<timestamp>.ts`) when the request is
//! newer than what is on disk, then updates the containers
//! (swift/obj/server.py `DELETE`).

use crate::constraints;
use crate::diskfile::{self, OpenError, WriteError};
use crate::metadata::Metadata;
use crate::{ObjectServer, Target};
use common::backend_headers as bh;
use common::http::{self as h, Body};
use common::server::RequestInfo;
use common::timestamp::Timestamp;
use http::{HeaderValue, Request, Response, StatusCode};

use std::collections::BTreeMap;
use std::sync::Arc;

/// Handles `DELETE /<dev>/<part>/<a>/<c>/<o>`.
pub async fn handle(server: Arc<ObjectServer>, req: Request<Body>, target: Target, _info: RequestInfo) -> Response<Body> {
    let (parts, _body) = req.into_parts();
    let headers = parts.headers;
    let ts = match constraints::valid_timestamp(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let dev = target.path.device.clone();
    let loc = target.location.clone();
    let name = target.name.clone();
    let now = ts.as_secs_f64();
    let opened = server.devices.run(&dev, move || diskfile::open(&loc, &name, now).map(|o| (o.data_timestamp, o.metadata))).await;
    let (orig_ts, orig_meta, mut status) = match opened {
        Ok((t, m)) => (t, m, if t < ts { StatusCode::NO_CONTENT } else { StatusCode::CONFLICT }),
        Err(OpenError::Expired(t, m)) => (t, *m, StatusCode::NOT_FOUND),
        Err(OpenError::Deleted(t)) => (t, Metadata::new(), StatusCode::NOT_FOUND),
        Err(OpenError::NotFound) | Err(OpenError::Quarantined(_)) => (Timestamp::ZERO, Metadata::new(), StatusCode::NOT_FOUND),
        Err(OpenError::Collision) => return h::text(StatusCode::FORBIDDEN, "Object name collision"),
        Err(OpenError::XattrNotSupported) => return h::insufficient_storage(&dev),
        Err(OpenError::Io(e)) => {
            common::log::error(&format!("ERROR opening {}: {e}", target.name));
            return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error reading object");
        }
    };
    let response_ts = orig_ts.max(ts);
    if let Some(v) = headers.get(bh::IF_DELETE_AT) {
        // The expirer deletes only the version it was told about.
        let Some(want) = v.to_str().ok().and_then(|s| Timestamp::parse(s.trim()).ok()) else {
            return h::text(StatusCode::BAD_REQUEST, "Bad X-If-Delete-At header value");
        };
        if orig_ts == Timestamp::ZERO {
            return h::status(StatusCode::NOT_FOUND);
        }
        if orig_ts >= ts {
            return h::status(StatusCode::CONFLICT);
        }
        let have = orig_meta.get("X-Delete-At").and_then(|t| Timestamp::parse(t.trim()).ok()).unwrap_or(Timestamp::ZERO);
        if have != want {
            return h::text(StatusCode::PRECONDITION_FAILED, "X-If-Delete-At and X-Delete-At do not match");
        }
        status = StatusCode::NO_CONTENT;
    }
    if orig_ts < ts {
        // The object goes, and with it its task in the expirer queue
        // (unless the expirer itself deletes it: it withdraws the task).
        let orig_delete_at = orig_meta.get("X-Delete-At").and_then(|t| t.trim().parse::<u64>().ok()).unwrap_or(0);
        let what = format!("DELETE {}", parts.uri.path());
        crate::container_update::update_delete_at(&server, &headers, &what, &target, ts, orig_delete_at, 0, None).await;
        let mut meta = Metadata::new();
        meta.insert("name".into(), target.name.clone());
        meta.insert("X-Timestamp".into(), ts.internal());
        let loc = target.location.clone();
        match server.devices.run(&dev, move || diskfile::write_tombstone(&loc, ts, &meta)).await {
            Ok(()) => {}
            Err(WriteError::NoSpace) | Err(WriteError::XattrNotSupported) => return h::insufficient_storage(&dev),
            Err(WriteError::Io(e)) => {
                common::log::error(&format!("ERROR writing tombstone of {}: {e}", target.name));
                return h::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error writing tombstone");
            }
        }
        let mut update = BTreeMap::new();
        update.insert(bh::TIMESTAMP.to_string(), ts.internal());
        crate::container_update::update_containers(&server, &headers, &what, "DELETE", &target, update).await;
    }
    let mut r = h::status(status);
    r.headers_mut().insert(bh::BACKEND_TIMESTAMP, HeaderValue::from_str(&response_ts.internal()).expect("ASCII"));
    let ctype = orig_meta.get("Content-Type").map_or("", String::as_str);
    if let Ok(v) = HeaderValue::from_str(ctype) {
        r.headers_mut().insert(bh::BACKEND_CONTENT_TYPE, v);
    }
    r
}
