//! REST DTOs under `/api/v1`, shared by the server, the CLI and the dashboard. Times are
//! [`Timestamp`]s, which the JSON carries as RFC 3339 text.

use serde::{Deserialize, Serialize};

use crate::{
    ids::{AccountId, ConnectionId, ConnectorId, RouteId, TunnelId},
    time::Timestamp,
};

/// Connections a connector keeps open unless told otherwise (`--ha-connections`).
pub const HA_CONNECTIONS: u8 = 4;

/// A tunnel's health, as the dashboard and `tunnel list` show it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelStatus {
    /// Every live connector has all the connections it keeps up.
    Healthy,
    /// Serving, but at least one connection is down.
    Degraded,
    /// Was connected once; no connection now.
    Down,
    /// Never run.
    Inactive,
}

impl TunnelStatus {
    /// Derives the status from what the edge sees now: `expected_connections` is what the
    /// live connectors keep when all are up (the sum of their `ha_connections`).
    pub fn derive(ever_connected: bool, expected_connections: u32, live_connections: u32) -> Self {
        if live_connections > 0 {
            if live_connections >= expected_connections {
                Self::Healthy
            } else {
                Self::Degraded
            }
        } else if ever_connected {
            Self::Down
        } else {
            Self::Inactive
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::Inactive => "inactive",
        }
    }
}

/// Where a tunnel's ingress rules come from (cloudflared's `config_src`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigSource {
    /// The connector's config.yml or `--url`; the server only shows what it reports.
    #[default]
    Local,
    /// Stored by the server, edited through the API or the dashboard and pushed to every
    /// connector of the tunnel. cloudflared's API calls this `cloudflare`, accepted too.
    #[serde(alias = "cloudflare")]
    Remote,
}

impl ConfigSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Remote => "remote",
        }
    }

    /// Reads [`Self::as_str`]'s words (and `cloudflare`); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "local" => Some(Self::Local),
            "remote" | "cloudflare" => Some(Self::Remote),
            _ => None,
        }
    }
}

// `Hash`: the dashboard keys its table rows by the whole tunnel, so a row is redrawn
// exactly when something in it changed.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tunnel {
    pub id: TunnelId,
    pub account_id: AccountId,
    pub name: String,
    pub created_at: Timestamp,
    pub status: TunnelStatus,
    pub connectors: u32,
    pub connections: u32,
    pub routes: Vec<String>,
    #[serde(default)]
    pub config_src: ConfigSource,
    /// When the oldest connection open now was opened (the tunnel's uptime);
    /// `null` while the tunnel has no connection.
    #[serde(default)]
    pub connected_since: Option<Timestamp>,
}

/// Which page of the tunnel list to read (`GET /api/v1/tunnels?page=&per_page=&name=`,
/// cloudflared's spelling): pages count from 1, by name.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TunnelListQuery {
    /// 1 when absent or 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// [`TunnelListQuery::DEFAULT_PER_PAGE`] when absent or 0; at most
    /// [`TunnelListQuery::MAX_PER_PAGE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_page: Option<u32>,
    /// Only tunnels whose name contains this text (in any case) or whose id starts with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl TunnelListQuery {
    pub const DEFAULT_PER_PAGE: u32 = 20;
    pub const MAX_PER_PAGE: u32 = 1000;

    /// The page asked for, from 1.
    pub fn page(&self) -> u32 {
        self.page.filter(|p| *p > 0).unwrap_or(1)
    }

    /// The page size asked for, within the limits.
    pub fn per_page(&self) -> u32 {
        self.per_page
            .filter(|n| *n > 0)
            .unwrap_or(Self::DEFAULT_PER_PAGE)
            .min(Self::MAX_PER_PAGE)
    }

    /// The search text, trimmed; `None` when empty.
    pub fn search(&self) -> Option<&str> {
        self.name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// Where a page lies in the whole list (cloudflared's `result_info`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResultInfo {
    pub page: u32,
    pub per_page: u32,
    /// How many items this page holds.
    pub count: u32,
    /// How many items match in all pages.
    pub total_count: u64,
}

impl ResultInfo {
    /// How many pages the whole list takes (at least 1).
    pub fn total_pages(&self) -> u32 {
        let per_page = u64::from(self.per_page.max(1));
        u32::try_from(self.total_count.div_ceil(per_page).max(1)).unwrap_or(u32::MAX)
    }
}

/// One page of tunnels: `GET /api/v1/tunnels` with `page`, `per_page` or `name`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelPage {
    pub result: Vec<Tunnel>,
    pub result_info: ResultInfo,
}

/// What changed in an account, as `GET /api/v1/events` announces it: one Server-Sent Event
/// per change, its data this notice as JSON. Notices carry no state; a page re-reads what
/// it shows.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeNotice {
    pub kind: ChangeKind,
    /// The tunnel concerned; absent for `resync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<TunnelId>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Created, renamed, deleted, or its secret rotated.
    Tunnel,
    /// A connector registered.
    Connector,
    /// A connector's connection opened or closed.
    Connection,
    /// A public hostname or private network was routed to it or removed.
    Route,
    /// Notices were dropped (the reader fell behind): re-read everything.
    Resync,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateTunnel {
    pub name: String,
    /// `local` when absent, as `adit tunnel create` makes them.
    #[serde(default)]
    pub config_src: ConfigSource,
}

/// `GET|PUT /api/v1/tunnels/{tunnel}/configurations`, in cloudflared's shape.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelConfiguration {
    pub tunnel_id: TunnelId,
    /// Rises with every change; 0 while there is none.
    pub version: i64,
    /// `null` until the first PUT (remote) or the first connector report (local).
    pub config: Option<crate::ingress::IngressConfig>,
    pub source: ConfigSource,
    /// When this version was written; `null` with no configuration.
    pub created_at: Option<Timestamp>,
}

/// The body of `PUT /api/v1/tunnels/{tunnel}/configurations`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutTunnelConfiguration {
    pub config: crate::ingress::IngressConfig,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenameTunnel {
    pub name: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TunnelTokenBody {
    pub token: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub id: RouteId,
    pub tunnel_id: TunnelId,
    pub hostname: String,
    pub created_at: Timestamp,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRoute {
    pub hostname: String,
}

/// A private network (CIDR) routed to a tunnel.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRoute {
    pub id: RouteId,
    pub tunnel_id: TunnelId,
    pub tunnel_name: String,
    pub network: String,
    pub comment: String,
    pub created_at: Timestamp,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateIpRoute {
    pub tunnel: String,
    pub network: String,
    #[serde(default)]
    pub comment: String,
}

/// One minute of a tunnel's traffic (latencies are upper bounds of coarse buckets).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrafficPoint {
    /// Start of the minute.
    pub at: Timestamp,
    pub requests: u64,
    pub errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// What `POST /api/v1/quick-tunnels` answers: a token to run and where it is reachable.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuickTunnel {
    pub id: TunnelId,
    pub hostname: String,
    pub token: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub id: ConnectionId,
    pub index: u8,
    pub edge: String,
    pub opened_at: Timestamp,
    pub origin_ip: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connector {
    pub id: ConnectorId,
    pub tunnel_id: TunnelId,
    pub version: String,
    pub arch: String,
    pub hostname: String,
    pub registered_at: Timestamp,
    /// How many data connections it keeps (`--ha-connections`).
    #[serde(default = "default_ha_connections")]
    pub ha_connections: u8,
    pub connections: Vec<Connection>,
    /// Whether the latest request through this connector reached an origin, as the edge
    /// node answering saw it; `null` until one went through.
    #[serde(default)]
    pub origin_health: Option<OriginHealth>,
}

/// What `DELETE /api/v1/tunnels/{tunnel}/connections` did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupConnections {
    /// Connectors forgotten (their connections closed).
    pub connectors: u64,
}

fn default_ha_connections() -> u8 {
    HA_CONNECTIONS
}

/// What the edge last saw of a connector's origins.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginHealth {
    /// An origin answered the latest request (whatever its status).
    pub reachable: bool,
    /// When that request went through.
    pub checked_at: Timestamp,
    /// The connector's error code when no origin could be reached, e.g.
    /// `origin_unreachable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::wire::ConnectorError>,
}

/// The one shape every API error has.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// Stable, machine-readable: `not_found`, `conflict`, `invalid_argument`, …
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub details: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_source_speaks_ours_and_cloudflareds_words() {
        let read = |json: &str| serde_json::from_str::<ConfigSource>(json).unwrap();
        assert_eq!(read("\"local\""), ConfigSource::Local);
        assert_eq!(read("\"remote\""), ConfigSource::Remote);
        assert_eq!(read("\"cloudflare\""), ConfigSource::Remote);
        assert!(serde_json::from_str::<ConfigSource>("\"dashboard\"").is_err());
        for source in [ConfigSource::Local, ConfigSource::Remote] {
            assert_eq!(ConfigSource::parse(source.as_str()), Some(source));
            assert_eq!(
                serde_json::to_string(&source).unwrap(),
                format!("\"{}\"", source.as_str())
            );
        }
        let create: CreateTunnel = serde_json::from_str(r#"{"name":"t"}"#).unwrap();
        assert_eq!(create.config_src, ConfigSource::Local, "the CLI's default");
    }

    #[test]
    fn status_derivation() {
        assert_eq!(TunnelStatus::derive(false, 0, 0), TunnelStatus::Inactive);
        assert_eq!(TunnelStatus::derive(true, 0, 0), TunnelStatus::Down);
        assert_eq!(TunnelStatus::derive(true, 4, 4), TunnelStatus::Healthy);
        assert_eq!(TunnelStatus::derive(true, 4, 3), TunnelStatus::Degraded);
        assert_eq!(TunnelStatus::derive(true, 8, 4), TunnelStatus::Degraded);
        // A connector keeping two (`--ha-connections 2`) is whole with two.
        assert_eq!(TunnelStatus::derive(true, 2, 2), TunnelStatus::Healthy);
    }
}

// ---- identity: sessions, users, API tokens, audit ----

/// `POST /api/v1/auth/login`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: crate::secret::Secret,
    /// The account to enter, by name. An email is unique per account only: naming the
    /// account picks its user; without it, the user whose password this is.
    #[serde(default)]
    pub account: Option<String>,
}

/// The logged-in user, as `GET /api/v1/auth/session` and the login answer give it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user_id: crate::ids::UserId,
    pub email: crate::identity::Email,
    pub account_id: AccountId,
    pub account: String,
    pub role: crate::identity::Role,
    /// Sent back as `X-CSRF-Token` on every state-changing request made with the cookie.
    pub csrf_token: String,
    /// When the cookie must be renewed by (any request within does it).
    pub expires_at: Timestamp,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: crate::ids::UserId,
    pub email: crate::identity::Email,
    pub role: crate::identity::Role,
    pub created_at: Timestamp,
}

/// `POST /api/v1/users`: an admin adds a user to the account.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateUser {
    pub email: String,
    pub role: crate::identity::Role,
    /// Generated (and returned once) when absent.
    #[serde(default)]
    pub password: Option<crate::secret::Secret>,
}

/// The answer to [`CreateUser`]: the password only when the server generated it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: User,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<crate::secret::Secret>,
}

/// `PATCH /api/v1/users/{id}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateUser {
    pub role: crate::identity::Role,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: crate::ids::ApiTokenId,
    pub name: String,
    pub scopes: crate::identity::Scopes,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// The longest API token name, in characters (the server refuses longer ones; the
/// dashboard's form says so before sending).
pub const API_TOKEN_NAME_MAX: usize = 64;

/// `POST /api/v1/tokens`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateApiToken {
    pub name: String,
    pub scopes: crate::identity::Scopes,
}

/// The answer to [`CreateApiToken`]: the token itself, shown this once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedApiToken {
    #[serde(flatten)]
    pub info: ApiToken,
    pub token: String,
}

/// One line of the audit log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    /// `user:ada@example.com`, `token:ci (id)`, or `system`.
    pub actor: String,
    /// `tunnel.create`, `route.delete`, `login`, `login.failed`, …
    pub action: String,
    /// What it acted on (a path with ids and names, never a secret).
    pub target: String,
    pub source_ip: String,
    /// HTTP status or gRPC code of the outcome.
    pub outcome: String,
}

/// A domain an account serves: its hostname routes must lie inside one of its zones.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub id: crate::ids::ZoneId,
    pub name: String,
    pub created_at: Timestamp,
    /// Plain HTTP requests for its hostnames are redirected to HTTPS (308), and HTTPS
    /// answers carry `Strict-Transport-Security`.
    #[serde(default)]
    pub https_only: bool,
    /// Its uploaded certificate, if any (what it says of itself; never its key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<ZoneCertificate>,
}

/// `PATCH /api/v1/zones/{zone}`: the settings to change (absent ones stay).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateZone {
    pub https_only: Option<bool>,
}

/// `PUT /api/v1/zones/{zone}/certificate`: a certificate the HTTPS edge serves for the
/// zone's hostnames it covers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadCertificate {
    /// The chain, PEM: the leaf first (naming the zone or `*.zone`), then intermediates.
    pub certificate: String,
    /// The leaf's private key, PEM (PKCS#8, PKCS#1 or SEC1). Stored encrypted; never
    /// returned by any API.
    pub private_key: String,
}

impl std::fmt::Debug for UploadCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadCertificate")
            .field("certificate", &self.certificate)
            .field("private_key", &"***")
            .finish()
    }
}

/// A zone's uploaded certificate: what it says of itself (never its key).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneCertificate {
    pub zone: String,
    /// Its DNS names.
    pub names: Vec<String>,
    pub issuer: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// SHA-256 of the leaf certificate (DER), hex.
    pub fingerprint: String,
    pub uploaded_at: Timestamp,
}

/// Where the HTTPS edge's certificate for a hostname comes from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateSource {
    /// The zone's uploaded certificate.
    Uploaded,
    /// Issued by the ACME CA (`--acme-directory`).
    Acme,
    /// The server's own CA (or the operator's `--tls-cert`).
    Private,
}

/// `GET /api/v1/certificates`: what the HTTPS edge serves for one routed hostname.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateStatus {
    pub hostname: String,
    pub source: CertificateSource,
    /// The served certificate's issuer (none for the private CA's, made on demand).
    pub issuer: Option<String>,
    pub not_after: Option<Timestamp>,
    /// The last ACME order's failure, while it has not succeeded since.
    pub last_error: Option<String>,
    /// When the next ACME order may be tried, after a failure.
    pub next_attempt_at: Option<Timestamp>,
}

/// `POST /api/v1/zones`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateZone {
    pub name: String,
}

// ---- `adit login`: device authorisation (RFC 8628) ----

/// `POST /api/v1/auth/device`: a CLI asks to log in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StartDeviceLogin {
    /// How the client names itself to the approving user, e.g. `adit on build-7`.
    #[serde(default)]
    pub client: String,
}

/// The answer to [`StartDeviceLogin`]. The device code stays with the CLI; the user code
/// is what the user checks (or types) on the dashboard's approval page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceLogin {
    pub device_code: String,
    /// `XXXX-XXXX`.
    pub user_code: String,
    /// The dashboard page that approves it, relative to the server (`/device`); the CLI
    /// joins it to the URL it was given, which is the one the user's browser reaches.
    pub verification_path: String,
    /// The same with `?code=` filled in.
    pub verification_path_complete: String,
    /// Seconds the codes live.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}

/// `POST /api/v1/auth/device/token`: the CLI polls with its device code. Until the user
/// decides, the answer is a 400 error whose code is `authorization_pending` (or
/// `slow_down`, `access_denied`, `expired_token`), as in RFC 8628.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceTokenRequest {
    pub device_code: String,
}

/// The API token an approved device login gets: the approving user's role's scopes, in the
/// account they approved from. Shown this once.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceToken {
    pub api_token: CreatedApiToken,
    pub email: crate::identity::Email,
    pub account: String,
    pub role: crate::identity::Role,
}

/// One node of the deployment (`GET /api/v1/nodes`): an `adit-server` process sharing the
/// database, as its latest heartbeat left it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// `--node-name`, which the connections it holds name as their edge.
    pub name: String,
    /// Where connectors, visitors and API clients reach it (`host:port`).
    pub tunnel_addr: String,
    pub edge_addr: String,
    pub api_addr: String,
    pub version: String,
    /// When this run of the node started.
    pub started_at: Timestamp,
    /// Its latest heartbeat (or when it stopped).
    pub last_seen_at: Timestamp,
    /// It beat within the last three heartbeats and has not stopped.
    pub alive: bool,
    /// Open connection rows held by it.
    pub connections: u64,
}
