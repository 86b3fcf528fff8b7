//! What travels between connector and edge on the tunnel listener.
//!
//! One TLS port serves both the gRPC control channel (ALPN `h2`) and data connections
//! (ALPN [`ALPN_DATA`]). A data connection starts with one length-prefixed JSON hello each
//! way; then the roles turn round: the edge is the HTTP/2 client and opens one stream per
//! proxied request, the connector is the HTTP/2 server.

use serde::{Deserialize, Serialize};

use crate::ids::{ConnectionId, ConnectorId};

pub const ALPN_DATA: &[u8] = b"adit-data";
pub const ALPN_GRPC: &[u8] = b"h2";

/// Data-plane protocol versions this build speaks, newest first.
pub const PROTOCOL_VERSIONS: &[u32] = &[1];

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

/// What one stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Http,
    WebSocket,
    /// A raw TCP connection to a private-network destination; the stream's bodies carry
    /// the bytes each way, and ending a body is a half-close.
    Tcp,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::WebSocket => "websocket",
            Self::Tcp => "tcp",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "http" => Some(Self::Http),
            "websocket" => Some(Self::WebSocket),
            "tcp" => Some(Self::Tcp),
            _ => None,
        }
    }
}

/// Connector → edge, first frame of a data connection.
#[derive(Clone, Serialize, Deserialize)]
pub struct DataHello {
    /// Versions the connector speaks; the edge picks the highest it shares.
    pub versions: Vec<u32>,
    pub token: String,
    pub connector_id: ConnectorId,
    pub index: u8,
}

impl std::fmt::Debug for DataHello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataHello")
            .field("versions", &self.versions)
            .field("token", &"***")
            .field("connector_id", &self.connector_id)
            .field("index", &self.index)
            .finish()
    }
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
        assert_eq!(negotiate_version(&[1, 2]), Some(1));
        assert_eq!(negotiate_version(&[9]), None);
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
