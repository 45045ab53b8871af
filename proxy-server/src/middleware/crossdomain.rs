//! `egg:swift#crossdomain`: answers `GET /crossdomain.xml` with a cross
//! domain policy document, so that Flash, Java or Silverlight pages served
//! from elsewhere may use the API. The policy lines come from
//! `cross_domain_policy` (continuation lines allowed); the default,
//! `<allow-access-from domain="*" secure="false" />`, lets every site in,
//! which suits a public cloud and maybe not a private one. Place it before
//! the auth middleware: the document is public.

use super::{BoxFuture, Build, Handler, Next};
use crate::proxy::Proxy;
use common::config::Section;
use common::http::{self as h, Body};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response};
use std::sync::Arc;

const DEFAULT_POLICY: &str = r#"<allow-access-from domain="*" secure="false" />"#;

pub struct CrossDomain {
    /// The whole document.
    document: String,
    next: Next,
}

impl CrossDomain {
    fn new(policy: &str, next: Next) -> CrossDomain {
        let document = format!(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE cross-domain-policy SYSTEM \"http://www.adobe.com/xml/dtds/cross-domain-policy.dtd\" >\n<cross-domain-policy>\n{policy}\n</cross-domain-policy>"
        );
        CrossDomain { document, next }
    }
}

pub fn factory(section: &Section, _proxy: &Proxy, next: Next, build: &mut Build) -> Result<Next, String> {
    let policy = section.get_str("cross_domain_policy", DEFAULT_POLICY).map_err(|e| e.to_string())?;
    build.capabilities.insert("crossdomain".into(), serde_json::json!({}));
    Ok(Arc::new(CrossDomain::new(&policy, next)))
}

impl Handler for CrossDomain {
    fn call(&self, req: Request<Body>) -> BoxFuture<'_, Response<Body>> {
        if req.method() != Method::GET || req.uri().path() != "/crossdomain.xml" {
            return self.next.call(req);
        }
        let mut resp = Response::new(h::full(self.document.clone()));
        resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        resp.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(self.document.len()));
        Box::pin(async move { resp })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{body_of, request, Recorder};
    use super::*;
    use http::StatusCode;

    #[tokio::test]
    async fn serves_the_policy_and_passes_the_rest() {
        let next = Recorder::new(|_| h::status(StatusCode::NO_CONTENT));
        let m = CrossDomain::new(
            "<allow-access-from domain=\"*.example.com\" />\n<allow-access-from domain=\"www.example.com\" secure=\"false\" />",
            next.clone(),
        );
        let resp = m.call(request("GET", "/crossdomain.xml", &[], "")).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_TYPE], "application/xml");
        let body = body_of(resp).await;
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "<?xml version=\"1.0\"?>\n<!DOCTYPE cross-domain-policy SYSTEM \"http://www.adobe.com/xml/dtds/cross-domain-policy.dtd\" >\n<cross-domain-policy>\n<allow-access-from domain=\"*.example.com\" />\n<allow-access-from domain=\"www.example.com\" secure=\"false\" />\n</cross-domain-policy>"
        );
        assert!(next.seen().is_empty());
        for (method, path) in [("HEAD", "/crossdomain.xml"), ("PUT", "/crossdomain.xml"), ("GET", "/v1/a/crossdomain.xml")] {
            assert_eq!(m.call(request(method, path, &[], "")).await.status(), StatusCode::NO_CONTENT);
        }
        assert_eq!(next.seen().len(), 3);
    }

    #[test]
    fn the_default_lets_everyone_in() {
        let next = Recorder::new(|_| h::status(StatusCode::NO_CONTENT));
        assert!(CrossDomain::new(DEFAULT_POLICY, next)
            .document
            .contains("<allow-access-from domain=\"*\" secure=\"false\" />\n</cross-domain-policy>"));
    }
}
