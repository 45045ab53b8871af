//! `egg:swift#healthcheck`: `GET /healthcheck` answers `200 OK` (`503
//! DISABLED BY FILE` while the file named by `disable_path` exists, so an
//! operator can take a proxy out of a load balancer's rotation).

use super::{BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use common::config::Section;
use common::http::{self as h, Body};
use http::{Method, Request, Response, StatusCode};
use std::path::PathBuf;
use std::sync::Arc;

pub struct Healthcheck {
    disable_path: Option<PathBuf>,
    next: Next,
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, _build: &mut Build) -> Result<Next, String> {
    let disable_path = section.get("disable_path").filter(|p| !p.trim().is_empty()).map(PathBuf::from);
    Ok(Arc::new(Healthcheck { disable_path, next }))
}

impl Handler for Healthcheck {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        Box::pin(async move {
            if req.uri().path() != "/healthcheck" {
                return self.next.call(req).await;
            }
            // A stat of a local file: cheap enough not to leave the thread.
            let disabled = self.disable_path.as_ref().is_some_and(|p| p.exists());
            let mut r = if disabled { h::text(StatusCode::SERVICE_UNAVAILABLE, "DISABLED BY FILE") } else { h::text(StatusCode::OK, "OK") };
            if req.method() == Method::HEAD {
                *r.body_mut() = h::empty();
            }
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, request, Recorder};
    use super::*;

    #[tokio::test]
    async fn answers_healthcheck_and_passes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("disabled");
        let next = Recorder::new(|_| h::status(StatusCode::NO_CONTENT));
        let m = Healthcheck { disable_path: Some(flag.clone()), next: next.clone() };
        let resp = m.call(request("GET", "/healthcheck", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(body_of(resp).await, "OK");
        std::fs::write(&flag, b"").unwrap();
        let resp = m.call(request("GET", "/healthcheck", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body_of(resp).await, "DISABLED BY FILE");
        assert!(next.seen().is_empty());
        assert_eq!(m.call(request("GET", "/v1/a", &[], "")).await.status(), StatusCode::NO_CONTENT);
        assert_eq!(next.seen().len(), 1);
    }
}
