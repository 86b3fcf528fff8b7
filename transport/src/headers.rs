//! What must not cross a hop. Both ends strip the same set, so a header that is per-hop
//! at the visitor's side can never reach the origin, nor our metadata leak either way.

use adit_core::wire::{
    HEADER_CLIENT_ADDR, HEADER_DESTINATION, HEADER_RESPONSE_SOURCE, HEADER_STREAM_KIND,
    HEADER_UPGRADE_STATUS,
};
use http::{HeaderMap, HeaderName, HeaderValue, Uri, header, uri::Scheme};
use smallvec::SmallVec;

// Adit's metadata headers, as names made once and used wherever they are read or set: a
// `&str` key is parsed again at each lookup, and most of these are looked up on every stream.
pub static STREAM_KIND: HeaderName = HeaderName::from_static(HEADER_STREAM_KIND);
pub static CLIENT_ADDR: HeaderName = HeaderName::from_static(HEADER_CLIENT_ADDR);
pub static RESPONSE_SOURCE: HeaderName = HeaderName::from_static(HEADER_RESPONSE_SOURCE);
pub static DESTINATION: HeaderName = HeaderName::from_static(HEADER_DESTINATION);
pub static UPGRADE_STATUS: HeaderName = HeaderName::from_static(HEADER_UPGRADE_STATUS);
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Gives a stream's request the `x-forwarded-*` headers an origin expects, made from what
/// the link carries anyway: the visitor's IP from `adit-client-addr` appended to a
/// visitor's own `x-forwarded-for`, the scheme of the stream's URI (the visitor's), and its
/// authority (the visitor's `Host`). Nothing happens when `x-forwarded-proto` is there: an
/// edge of protocol version 1, or one forwarding to a version-1 connector, made the three
/// itself (the edge removes a visitor's `x-forwarded-proto` and `x-forwarded-host`).
/// The connector does this for version 2, which spares the link three headers per request
/// (issue 14, step 29 in bench/README.md); the edge does it for version 1.
pub fn add_forwarded(headers: &mut HeaderMap, uri: &Uri) {
    if headers.contains_key(&X_FORWARDED_PROTO) {
        return;
    }
    let ip = headers
        .get(&CLIENT_ADDR)
        .and_then(|v| v.to_str().ok())
        .and_then(|addr| addr.rsplit_once(':'))
        .map(|(ip, _port)| ip.trim_start_matches('[').trim_end_matches(']'));
    if let Some(ip) = ip {
        let prior = headers
            .get(&X_FORWARDED_FOR)
            .and_then(|v| v.to_str().ok())
            .filter(|prior| !prior.is_empty());
        let value = match prior {
            Some(prior) => HeaderValue::try_from(format!("{prior}, {ip}")),
            None => HeaderValue::from_str(ip),
        };
        if let Ok(value) = value {
            headers.insert(&X_FORWARDED_FOR, value);
        }
    }
    let proto = if uri.scheme() == Some(&Scheme::HTTPS) {
        "https"
    } else {
        "http"
    };
    headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = uri
        .authority()
        .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    {
        headers.insert(&X_FORWARDED_HOST, host);
    }
}

/// Removes hop-by-hop headers (RFC 9110 §7.6.1, plus those the `Connection` header names),
/// `Host` (carried as the authority instead), and Adit's own stream metadata, which a
/// visitor must not be able to set.
///
/// One pass over the names a message has, where a removal per listed name would hash each
/// of them: this runs twice in each process for every request. The tokens of `Connection`
/// are read only when it is there, `keep-alive` (removed anyway) dropped first, so the
/// usual `Connection: keep-alive` costs nothing per name; the doomed few are kept inline,
/// not in an allocation. A field named `close` goes with `Connection: close` (RFC 9110
/// §7.6.1 reserves the name for that).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in doomed(headers) {
        headers.remove(name);
    }
}

/// What [`strip_hop_by_hop`] removes from `headers`.
fn doomed(headers: &HeaderMap) -> SmallVec<[HeaderName; 4]> {
    let mut doomed = SmallVec::new();
    let mut has_connection = false;
    for name in headers.keys() {
        has_connection |= name == header::CONNECTION;
        // HTTP/2 allows only "te: trailers".
        let bad_te = name == header::TE
            && headers
                .get(header::TE)
                .is_some_and(|v| v.as_bytes() != b"trailers");
        if is_hop_by_hop(name) || bad_te {
            doomed.push(name.clone());
        }
    }
    if !has_connection {
        return doomed;
    }
    let mut listed: SmallVec<[&str; 4]> = SmallVec::new();
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        listed.extend(
            value
                .split(',')
                .map(str::trim)
                .filter(|token| !token.is_empty() && !token.eq_ignore_ascii_case("keep-alive")),
        );
    }
    if !listed.is_empty() {
        doomed.extend(
            headers
                .keys()
                .filter(|name| {
                    listed
                        .iter()
                        .any(|token| token.eq_ignore_ascii_case(name.as_str()))
                })
                .cloned(),
        );
    }
    doomed
}

#[inline]
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | HEADER_STREAM_KIND
            | HEADER_CLIENT_ADDR
            | HEADER_RESPONSE_SOURCE
            | HEADER_UPGRADE_STATUS
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_headers_come_from_the_streams_metadata() {
        let uri: Uri = "https://app.example.com:8443/x".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(&CLIENT_ADDR, HeaderValue::from_static("127.0.0.2:5000"));
        h.insert(&X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        add_forwarded(&mut h, &uri);
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.1, 127.0.0.2");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_HOST], "app.example.com:8443");

        let mut first = HeaderMap::new();
        first.insert(&CLIENT_ADDR, HeaderValue::from_static("[2001:db8::7]:5000"));
        add_forwarded(&mut first, &"http://app.example.com/".parse().unwrap());
        assert_eq!(first[&X_FORWARDED_FOR], "2001:db8::7");
        assert_eq!(first[&X_FORWARDED_PROTO], "http");

        // Made already (a version-1 edge): left as they are, not appended to again.
        add_forwarded(&mut h, &"http://other.example.com/".parse().unwrap());
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.1, 127.0.0.2");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_HOST], "app.example.com:8443");
    }

    #[test]
    fn hop_by_hop_and_metadata_headers_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(HEADER_STREAM_KIND, HeaderValue::from_static("tcp"));
        h.insert(header::TE, HeaderValue::from_static("gzip"));
        h.insert(header::HOST, HeaderValue::from_static("a"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-kept"));
        let mut t = HeaderMap::new();
        t.insert(header::TE, HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut t);
        assert_eq!(t.len(), 1, "te: trailers is allowed through");
    }

    #[test]
    fn connection_close_takes_a_field_named_close_and_nothing_else() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("Close"));
        h.insert("close", HeaderValue::from_static("smuggled"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["x-kept"],
            "{h:?}"
        );
    }

    #[test]
    fn every_connection_line_and_every_listed_name_goes() {
        let mut h = HeaderMap::new();
        h.append(header::CONNECTION, HeaderValue::from_static("x-one"));
        h.append(
            header::CONNECTION,
            HeaderValue::from_static(" X-Two ,accept"),
        );
        for name in ["x-one", "x-two", "accept", "proxy-authorization", "upgrade"] {
            h.insert(name, HeaderValue::from_static("v"));
        }
        h.insert(HEADER_UPGRADE_STATUS, HeaderValue::from_static("101"));
        h.append("x-kept", HeaderValue::from_static("1"));
        h.append("x-kept", HeaderValue::from_static("2"));
        strip_hop_by_hop(&mut h);
        assert_eq!(
            h.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["x-kept"],
            "{h:?}"
        );
        assert_eq!(h.get_all("x-kept").iter().count(), 2);
    }
}
