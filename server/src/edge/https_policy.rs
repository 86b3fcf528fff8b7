//! Public TLS on the edge's side: the plain edge answers ACME HTTP-01 challenges (from any
//! node: the challenges are the cluster's) and sends visitors of HTTPS-only zones to HTTPS
//! (308); HTTPS answers for those zones carry HSTS.

use std::{future::Future, pin::Pin};

use http::{HeaderValue, Request, Response, StatusCode, header};

use super::{Edge, Scheme, error_page::full};
use crate::tunnel::registry::TunnelBody;

/// Where ACME's HTTP-01 validation asks for a token's key authorization.
const ACME_CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

/// What browsers are told to remember of an HTTPS-only zone: a year.
const HSTS: &str = "max-age=31536000";

/// What the edge asks of public TLS; the control plane's state answers.
pub trait HttpsPolicy: Send + Sync {
    /// The key authorization answering the HTTP-01 challenge `token`, while it is pending
    /// (any node's: the CA's validation may reach a node other than the one ordering).
    fn http01_answer<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;
    /// Whether `host` (a normalised name) lies in a zone served over HTTPS only.
    fn https_only(&self, host: &str) -> bool;
}

/// The policy and the HTTPS edge's port that redirects go to.
pub(crate) struct Https {
    pub(crate) policy: std::sync::Arc<dyn HttpsPolicy>,
    /// `None` when it is 443 (left out of redirects).
    pub(crate) port: Option<u16>,
}

impl Edge {
    /// The edge's own answer to a request before it is routed, if it has one: an ACME
    /// challenge's, or (plain HTTP, HTTPS-only zone) a redirect to HTTPS.
    pub(super) async fn https_answer<B>(
        &self,
        req: &Request<B>,
        host: &str,
        scheme: Scheme,
    ) -> Option<Response<TunnelBody>> {
        let https = self.https.as_ref()?;
        if !matches!(scheme, Scheme::Http) {
            return None;
        }
        let path = req.uri().path();
        if let Some(token) = path.strip_prefix(ACME_CHALLENGE_PATH) {
            let answer = https.policy.http01_answer(token).await?;
            return Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(full(answer))
                .ok();
        }
        if !https.policy.https_only(host) {
            return None;
        }
        let port = https.port.map(|p| format!(":{p}")).unwrap_or_default();
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        Response::builder()
            .status(StatusCode::PERMANENT_REDIRECT)
            .header(header::LOCATION, format!("https://{host}{port}{target}"))
            .body(full(""))
            .ok()
    }

    /// Adds HSTS to an HTTPS answer for a host of an HTTPS-only zone.
    pub(super) fn add_hsts(&self, response: &mut Response<TunnelBody>, host: &str, scheme: Scheme) {
        if let (Some(https), Scheme::Https) = (&self.https, scheme)
            && https.policy.https_only(host)
        {
            response.headers_mut().insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            );
        }
    }
}
