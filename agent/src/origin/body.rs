//! The body of every answer the connector gives the edge, and the few shapes of answer
//! that several services share.

use adit_transport::{
    headers::UPGRADE_STATUS,
    relay::{self, BodySender},
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::{BodyExt, Empty, Full};

pub use adit_transport::relay::BoxError;
/// A stream's request body as the services read it, and the body of every answer.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// An origin's answer body as the services pass it on.
pub(super) fn incoming(body: hyper::body::Incoming) -> ProxyBody {
    body.map_err(BoxError::from).boxed_unsync()
}

pub(super) fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body made of one piece of text.
pub(super) fn full(text: String) -> ProxyBody {
    Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The body of a stream's answer, and the sender a task feeds it through.
pub(super) fn answer_body() -> (ProxyBody, BodySender) {
    let (body, to_edge) = relay::channel_body();
    (body.boxed_unsync(), to_edge)
}

/// The answer for an upgraded stream: HTTP/2 cannot say 101, so it rides in a header.
pub(super) fn switched(headers: HeaderMap, body: ProxyBody) -> Response<ProxyBody> {
    let mut answer = Response::new(body);
    *answer.headers_mut() = headers;
    answer
        .headers_mut()
        .insert(&UPGRADE_STATUS, HeaderValue::from_static("101"));
    answer
}
