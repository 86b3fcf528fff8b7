//! What travels between connector and edge on the tunnel listener.
//!
//! One TLS port serves both the gRPC control channel (ALPN `h2`) and data connections
//! (ALPN [`ALPN_DATA`]). A data connection starts with one length-prefixed JSON hello each
//! way; then the roles turn round: the edge is the HTTP/2 client and opens one stream per
//! proxied request, the connector is the HTTP/2 server.

use serde::{Deserialize, Serialize};

use crate::{
    ids::{ConnectionId, ConnectorId},
    secret::Secret,
};

pub const ALPN_DATA: &[u8] = b"adit-data";
pub const ALPN_GRPC: &[u8] = b"h2";
/// A node-to-node link of a cluster: a [`NodeHello`], then HTTP/2 with the dialling node
/// as client, one stream per request it forwards to the node holding the tunnel's
/// connection.
pub const ALPN_NODE: &[u8] = b"adit-node";

/// Data-plane protocol versions this build speaks, newest first. In version 2 the
/// connector makes `x-forwarded-for`, `-proto` and `-host` itself from the stream's
/// `adit-client-addr`, URI scheme and authority; in version 1 the edge sends them.
pub const PROTOCOL_VERSIONS: &[u32] = &[2, 1];

/// The first protocol version in which the connector makes the `x-forwarded-*` headers.
pub const CONNECTOR_MAKES_FORWARDED: u32 = 2;

/// A hello frame larger than this is refused before it is read.
pub const MAX_HELLO_LEN: u32 = 16 * 1024;

/// Header on each stream naming what it carries.
pub const HEADER_STREAM_KIND: &str = "adit-stream-kind";
/// Header on each stream with the visitor's address, `ip:port`.
pub const HEADER_CLIENT_ADDR: &str = "adit-client-addr";
/// Response header the connector sets on answers it made itself (not the origin's).
pub const HEADER_RESPONSE_SOURCE: &str = "adit-response-source";
/// Header on a `tcp` stream naming the private-network destination, `ip:port`.
pub const HEADER_DESTINATION: &str = "adit-destination";
/// Response header carrying the origin's real status when HTTP/2 cannot (101).
pub const HEADER_UPGRADE_STATUS: &str = "adit-upgrade-status";
/// Response header with the [`ConnectorError`] of an answer the connector made itself.
pub const HEADER_ERROR_CODE: &str = "adit-error-code";
/// Header on a stream forwarded between nodes: the tunnel it is for.
pub const HEADER_TUNNEL: &str = "adit-tunnel";
/// Response header of a node that could not take a forwarded stream: it holds no usable
/// connection of the tunnel (any more).
pub const HEADER_NODE_REFUSED: &str = "adit-node-refused";

/// The first frame on a node-to-node link: proof that the dialler is a node of the
/// cluster (a key derived from the server key every node is given).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeHello {
    pub proof: Secret,
}

/// Why a connector answered a stream itself instead of with the origin's response. Written
/// by the connector in [`HEADER_ERROR_CODE`] (and as the `code` of its error body), read by
/// the edge (visitors' pages, origin health) and by `adit access`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorError {
    /// The origin refused the connection.
    OriginRefused,
    /// The origin did not accept the connection in time (connectTimeout + tlsTimeout).
    OriginTimeout,
    /// The origin could not be reached (no route, TLS refused, …).
    OriginUnreachable,
    /// The origin failed while answering.
    OriginError,
    /// The origin refused the WebSocket upgrade.
    OriginUpgradeFailed,
    /// The request could not be turned into one for the origin.
    BadRequest,
    /// A remotely managed tunnel whose configuration has not arrived yet.
    NoConfiguration,
    /// Plain HTTP for a hostname whose rule is a TCP service.
    TcpService,
    /// A TCP stream that did not arrive as a WebSocket.
    WebsocketRequired,
    /// A private-network stream that names no usable destination.
    BadDestination,
    /// A private-network destination name that does not resolve.
    DestinationUnresolved,
    /// A private-network destination outside the tunnel's routed networks.
    DestinationNotRouted,
    /// The connector's own bug: a rule without the client it needs.
    ConnectorInternal,
}

impl ConnectorError {
    pub const ALL: [Self; 13] = [
        Self::OriginRefused,
        Self::OriginTimeout,
        Self::OriginUnreachable,
        Self::OriginError,
        Self::OriginUpgradeFailed,
        Self::BadRequest,
        Self::NoConfiguration,
        Self::TcpService,
        Self::WebsocketRequired,
        Self::BadDestination,
        Self::DestinationUnresolved,
        Self::DestinationNotRouted,
        Self::ConnectorInternal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OriginRefused => "origin_refused",
            Self::OriginTimeout => "origin_timeout",
            Self::OriginUnreachable => "origin_unreachable",
            Self::OriginError => "origin_error",
            Self::OriginUpgradeFailed => "origin_upgrade_failed",
            Self::BadRequest => "bad_request",
            Self::NoConfiguration => "no_configuration",
            Self::TcpService => "tcp_service",
            Self::WebsocketRequired => "websocket_required",
            Self::BadDestination => "bad_destination",
            Self::DestinationUnresolved => "destination_unresolved",
            Self::DestinationNotRouted => "destination_not_routed",
            Self::ConnectorInternal => "connector_internal",
        }
    }

    /// `None` for a code this build does not know (a newer connector's, or a forged one).
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl std::fmt::Display for ConnectorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Http,
    WebSocket,
    /// A private-network destination (`adit access socks`): a WebSocket the connector
    /// answers itself and bridges to the destination it dials.
    Tcp,
    /// A TCP ingress service (`tcp://`, `ssh://`, …) reached by `adit access`: the
    /// stream's bodies carry the connection's bytes as they are, and ending a body is a
    /// half-close. No framing on the way: the visitor asked with `Upgrade: adit-tcp`.
    Raw,
}

impl StreamKind {
    pub const ALL: [Self; 4] = [Self::Http, Self::WebSocket, Self::Tcp, Self::Raw];

    /// Its place in [`Self::ALL`], for tables kept per kind.
    pub fn index(self) -> usize {
        match self {
            Self::Http => 0,
            Self::WebSocket => 1,
            Self::Tcp => 2,
            Self::Raw => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::WebSocket => "websocket",
            Self::Tcp => "tcp",
            Self::Raw => "raw",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "http" => Some(Self::Http),
            "websocket" => Some(Self::WebSocket),
            "tcp" => Some(Self::Tcp),
            "raw" => Some(Self::Raw),
            _ => None,
        }
    }
}

/// The `Upgrade` token with which `adit access` asks the edge for a [`StreamKind::Raw`]
/// stream (HTTP/1.1 then carries the connection's bytes after the 101).
pub const UPGRADE_RAW_TCP: &str = "adit-tcp";

/// Connector → edge, first frame of a data connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataHello {
    /// Versions the connector speaks; the edge picks the highest it shares.
    pub versions: Vec<u32>,
    pub token: Secret,
    pub connector_id: ConnectorId,
    pub index: u8,
}

/// Edge → connector, answer to the hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HelloReply {
    Accepted {
        version: u32,
        connection_id: ConnectionId,
        edge: String,
    },
    Rejected {
        code: RejectCode,
        message: String,
    },
}

/// Why the edge refused a data connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// Token unknown, wrong secret, or tunnel deleted: retrying cannot help.
    Unauthorized,
    /// The connector must register again over gRPC first.
    UnknownConnector,
    UnsupportedVersion,
    Malformed,
}

/// Picks the highest version both sides speak.
pub fn negotiate_version(offered: &[u32]) -> Option<u32> {
    PROTOCOL_VERSIONS
        .iter()
        .copied()
        .find(|v| offered.contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_picks_shared_version() {
        assert_eq!(negotiate_version(&[1, 2]), Some(2));
        assert_eq!(negotiate_version(&[1]), Some(1));
        assert_eq!(negotiate_version(&[9]), None);
    }

    #[test]
    fn connector_errors_read_back_and_match_their_json() {
        for code in ConnectorError::ALL {
            assert_eq!(ConnectorError::parse(code.as_str()), Some(code));
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{code}\""));
        }
        assert_eq!(ConnectorError::parse("forged"), None);
    }

    #[test]
    fn reply_json_shape_is_stable() {
        let reply = HelloReply::Rejected {
            code: RejectCode::Unauthorized,
            message: "no".into(),
        };
        let json = serde_json::to_string(&reply).unwrap();
        assert_eq!(
            json,
            r#"{"result":"rejected","code":"unauthorized","message":"no"}"#
        );
    }
}
