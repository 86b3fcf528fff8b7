//! gRPC: `TunnelService` (automation, API-token auth, same operations as REST) and
//! `ConnectorService` (connectors, tunnel-token auth). Conversions to proto live here only.

use std::{pin::Pin, sync::Arc};

use adit_core::{
    api::{self, ConfigSource, TunnelStatus},
    identity::Scope,
    ids::{AccountId, ConnectorId},
};
use adit_proto::v1::{
    self as pb, connector_service_server::ConnectorService, tunnel_service_server::TunnelService,
};
use tonic::{Request, Response, Status, metadata::MetadataMap};

use crate::{
    Error,
    clock::now_ms,
    control::remote_config::ConfigVersion,
    control::{ConnectorInfo, Control},
    identity::auth::{self, Principal},
    net::Pending,
    storage::AuditRow,
    tunnel::listener::PeerAddr,
};

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match &err {
            Error::NotFound { .. } => Status::not_found(err.to_string()),
            Error::Conflict(m) => Status::already_exists(m.clone()),
            Error::FailedPrecondition(m) => Status::failed_precondition(m.clone()),
            Error::InvalidArgument { .. } => Status::invalid_argument(err.to_string()),
            Error::Unauthenticated | Error::LoginFailed => {
                Status::unauthenticated("missing or invalid credentials")
            }
            Error::Forbidden(m) => Status::permission_denied(m.clone()),
            Error::RateLimited(m) => Status::resource_exhausted(m.clone()),
            _ => {
                tracing::error!(error = %err, "internal error serving gRPC");
                Status::internal("internal error; the server log has the details")
            }
        }
    }
}

fn bearer(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(auth::bearer)
}

fn tunnel_pb(t: api::Tunnel) -> pb::Tunnel {
    pb::Tunnel {
        id: t.id.to_string(),
        account_id: t.account_id.to_string(),
        name: t.name,
        created_at_ms: t.created_at.unix_ms(),
        status: tunnel_status_pb(t.status).into(),
        connections: t.connections,
        connectors: t.connectors,
        routes: t.routes,
        config_src: config_source_pb(t.config_src).into(),
    }
}

fn tunnel_configuration_pb(c: api::TunnelConfiguration) -> Result<pb::TunnelConfiguration, Error> {
    let config_json = c
        .config
        .map(|config| serde_json::to_vec(&config))
        .transpose()
        .map_err(|e| Error::invalid("config", e))?
        .unwrap_or_default();
    Ok(pb::TunnelConfiguration {
        tunnel_id: c.tunnel_id.to_string(),
        version: c.version,
        config_json,
        source: config_source_pb(c.source).into(),
        created_at_ms: c.created_at.map_or(0, |at| at.unix_ms()),
    })
}

fn tunnel_status_pb(status: TunnelStatus) -> pb::TunnelStatus {
    match status {
        TunnelStatus::Healthy => pb::TunnelStatus::Healthy,
        TunnelStatus::Degraded => pb::TunnelStatus::Degraded,
        TunnelStatus::Down => pb::TunnelStatus::Down,
        TunnelStatus::Inactive => pb::TunnelStatus::Inactive,
    }
}

fn config_source_pb(source: ConfigSource) -> pb::ConfigSource {
    match source {
        ConfigSource::Local => pb::ConfigSource::Local,
        ConfigSource::Remote => pb::ConfigSource::Remote,
    }
}

fn configuration_pb(config: ConfigVersion) -> pb::RemoteConfiguration {
    pb::RemoteConfiguration {
        version: config.version,
        config_json: config.json.into_bytes(),
    }
}

fn route_pb(r: api::Route) -> pb::Route {
    pb::Route {
        id: r.id.to_string(),
        tunnel_id: r.tunnel_id.to_string(),
        hostname: r.hostname,
        created_at_ms: r.created_at.unix_ms(),
    }
}

fn ip_route_pb(r: api::IpRoute) -> pb::IpRoute {
    pb::IpRoute {
        id: r.id.to_string(),
        tunnel_id: r.tunnel_id.to_string(),
        tunnel_name: r.tunnel_name,
        network: r.network,
        comment: r.comment,
        created_at_ms: r.created_at.unix_ms(),
    }
}

fn connector_pb(c: api::Connector) -> pb::Connector {
    pb::Connector {
        id: c.id.to_string(),
        tunnel_id: c.tunnel_id.to_string(),
        version: c.version,
        arch: c.arch,
        hostname: c.hostname,
        registered_at_ms: c.registered_at.unix_ms(),
        ha_connections: u32::from(c.ha_connections),
        connections: c
            .connections
            .into_iter()
            .map(|k| pb::Connection {
                id: k.id.to_string(),
                index: u32::from(k.index),
                edge: k.edge,
                opened_at_ms: k.opened_at.unix_ms(),
                origin_ip: k.origin_ip,
            })
            .collect(),
    }
}

pub(crate) struct TunnelApi(pub(crate) Arc<Control>);

/// A caller allowed to run one method, and what the audit log needs to record it.
struct Grant {
    account: AccountId,
    principal: Principal,
    method: &'static str,
    source_ip: String,
    /// The tunnel acted on, named in the audit log's target.
    tunnel: Option<String>,
}

impl Grant {
    fn on_tunnel(mut self, tunnel: &str) -> Self {
        self.tunnel = Some(tunnel.to_owned());
        self
    }

    /// Writes the outcome of a state-changing method to the audit log, then returns it.
    async fn record<R>(&self, control: &Control, outcome: Result<R, Error>) -> Result<R, Status> {
        let outcome = outcome.map_err(Status::from);
        let code = match &outcome {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        control
            .audit(AuditRow {
                account_id: self.account,
                at: now_ms(),
                actor: self.principal.actor.to_string(),
                action: format!("gRPC {}", self.method),
                target: match &self.tunnel {
                    Some(tunnel) => {
                        format!("/adit.v1.TunnelService/{}?tunnel={tunnel}", self.method)
                    }
                    None => format!("/adit.v1.TunnelService/{}", self.method),
                },
                source_ip: self.source_ip.clone(),
                outcome: format!("{code:?}"),
            })
            .await;
        outcome
    }
}

impl TunnelApi {
    /// Authenticates the API token and checks it may do `scope` (automation only: gRPC
    /// takes no cookies).
    async fn authorize<T>(
        &self,
        request: &Request<T>,
        scope: Scope,
        method: &'static str,
    ) -> Result<Grant, Status> {
        let token = bearer(request.metadata()).ok_or(Error::Unauthenticated)?;
        let principal = self.0.auth.api_token(token).await?;
        let account = principal.require(scope)?;
        let source_ip = request
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string())
            .or_else(|| request.remote_addr().map(|a| a.ip().to_string()))
            .unwrap_or_default();
        Ok(Grant {
            account,
            principal,
            method,
            source_ip,
            tunnel: None,
        })
    }
}

#[tonic::async_trait]
impl TunnelService for TunnelApi {
    async fn create_tunnel(
        &self,
        req: Request<pb::CreateTunnelRequest>,
    ) -> Result<Response<pb::Tunnel>, Status> {
        let grant = self
            .authorize(&req, Scope::TunnelsWrite, "CreateTunnel")
            .await?;
        let account = grant.account;
        let r = req.get_ref();
        let config_src = match pb::ConfigSource::try_from(r.config_src) {
            Ok(pb::ConfigSource::Unspecified | pb::ConfigSource::Local) => ConfigSource::Local,
            Ok(pb::ConfigSource::Remote) => ConfigSource::Remote,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "invalid config_src {}: CONFIG_SOURCE_LOCAL or CONFIG_SOURCE_REMOTE",
                    r.config_src
                )));
            }
        };
        let outcome = self.0.create_tunnel(account, &r.name, config_src).await;
        let recorded = grant.record(&self.0, outcome).await?;
        Ok(Response::new(tunnel_pb(recorded)))
    }

    async fn list_tunnels(
        &self,
        req: Request<pb::ListTunnelsRequest>,
    ) -> Result<Response<pb::ListTunnelsResponse>, Status> {
        let grant = self.authorize(&req, Scope::Read, "ListTunnels").await?;
        let account = grant.account;
        let r = req.get_ref();
        let page = api::TunnelListQuery {
            page: (r.page > 0).then_some(r.page),
            per_page: (r.per_page > 0).then_some(r.per_page),
            name: (!r.name.is_empty()).then(|| r.name.clone()),
        };
        if page == api::TunnelListQuery::default() {
            let tunnels = self.0.list_tunnels(account, &r.name_prefix).await?;
            return Ok(Response::new(pb::ListTunnelsResponse {
                tunnels: tunnels.into_iter().map(tunnel_pb).collect(),
                result_info: None,
            }));
        }
        let listed = self.0.list_tunnels_page(account, &page).await?;
        let info = listed.result_info;
        Ok(Response::new(pb::ListTunnelsResponse {
            tunnels: listed.result.into_iter().map(tunnel_pb).collect(),
            result_info: Some(pb::ResultInfo {
                page: info.page,
                per_page: info.per_page,
                count: info.count,
                total_count: info.total_count,
            }),
        }))
    }

    async fn get_tunnel(
        &self,
        req: Request<pb::TunnelRef>,
    ) -> Result<Response<pb::Tunnel>, Status> {
        let grant = self.authorize(&req, Scope::Read, "GetTunnel").await?;
        let account = grant.account;
        let t = self.0.get_tunnel(account, &req.get_ref().tunnel).await?;
        Ok(Response::new(tunnel_pb(t)))
    }

    async fn rename_tunnel(
        &self,
        req: Request<pb::RenameTunnelRequest>,
    ) -> Result<Response<pb::Tunnel>, Status> {
        let grant = self
            .authorize(&req, Scope::TunnelsWrite, "RenameTunnel")
            .await?;
        let account = grant.account;
        let r = req.get_ref();
        let outcome = self.0.rename_tunnel(account, &r.tunnel, &r.name).await;
        let recorded = grant.record(&self.0, outcome).await?;
        Ok(Response::new(tunnel_pb(recorded)))
    }

    async fn delete_tunnel(
        &self,
        req: Request<pb::DeleteTunnelRequest>,
    ) -> Result<Response<pb::Tunnel>, Status> {
        let grant = self
            .authorize(&req, Scope::TunnelsWrite, "DeleteTunnel")
            .await?;
        let account = grant.account;
        let r = req.get_ref();
        let outcome = self.0.delete_tunnel(account, &r.tunnel, r.force).await;
        let recorded = grant.record(&self.0, outcome).await?;
        Ok(Response::new(tunnel_pb(recorded)))
    }

    async fn get_tunnel_token(
        &self,
        req: Request<pb::TunnelRef>,
    ) -> Result<Response<pb::TunnelToken>, Status> {
        let grant = self
            .authorize(&req, Scope::TunnelsWrite, "GetTunnelToken")
            .await?;
        let account = grant.account;
        let token = self.0.tunnel_token(account, &req.get_ref().tunnel).await?;
        Ok(Response::new(pb::TunnelToken { token }))
    }

    async fn rotate_tunnel_secret(
        &self,
        req: Request<pb::TunnelRef>,
    ) -> Result<Response<pb::TunnelToken>, Status> {
        let grant = self
            .authorize(&req, Scope::TunnelsWrite, "RotateTunnelSecret")
            .await?;
        let account = grant.account;
        let outcome = self.0.rotate_secret(account, &req.get_ref().tunnel).await;
        let recorded = grant.record(&self.0, outcome).await?;
        Ok(Response::new(pb::TunnelToken { token: recorded }))
    }

    async fn create_route(
        &self,
        req: Request<pb::CreateRouteRequest>,
    ) -> Result<Response<pb::Route>, Status> {
        let grant = self
            .authorize(&req, Scope::RoutesWrite, "CreateRoute")
            .await?;
        let account = grant.account;
        let r = req.get_ref();
        let outcome = self.0.create_route(account, &r.tunnel, &r.hostname).await;
        let recorded = grant.record(&self.0, outcome).await?;
        Ok(Response::new(route_pb(recorded)))
    }

    async fn list_routes(
        &self,
        req: Request<pb::TunnelRef>,
    ) -> Result<Response<pb::ListRoutesResponse>, Status> {
        let grant = self.authorize(&req, Scope::Read, "ListRoutes").await?;
        let account = grant.account;
        let routes = self.0.list_routes(account, &req.get_ref().tunnel).await?;
        Ok(Response::new(pb::ListRoutesResponse {
            routes: routes.into_iter().map(route_pb).collect(),
        }))
    }

    async fn delete_route(
        &self,
        req: Request<pb::DeleteRouteRequest>,
    ) -> Result<Response<pb::DeleteRouteResponse>, Status> {
        let grant = self
            .authorize(&req, Scope::RoutesWrite, "DeleteRoute")
            .await?;
        let account = grant.account;
        let outcome = self.0.delete_route(account, &req.get_ref().route_id).await;
        grant.record(&self.0, outcome).await?;
        Ok(Response::new(pb::DeleteRouteResponse {}))
    }

    async fn create_ip_route(
        &self,
        req: Request<pb::CreateIpRouteRequest>,
    ) -> Result<Response<pb::IpRoute>, Status> {
        let grant = self
            .authorize(&req, Scope::RoutesWrite, "CreateIpRoute")
            .await?;
        let account = grant.account;
        let r = req.get_ref();
        let outcome = self
            .0
            .create_ip_route(account, &r.tunnel, &r.network, &r.comment)
            .await;
        let recorded = grant.record(&self.0, outcome).await?;
        Ok(Response::new(ip_route_pb(recorded)))
    }

    async fn list_ip_routes(
        &self,
        req: Request<pb::ListIpRoutesRequest>,
    ) -> Result<Response<pb::ListIpRoutesForAccountResponse>, Status> {
        let grant = self.authorize(&req, Scope::Read, "ListIpRoutes").await?;
        let account = grant.account;
        let routes = self.0.list_ip_routes(account).await?;
        Ok(Response::new(pb::ListIpRoutesForAccountResponse {
            routes: routes.into_iter().map(ip_route_pb).collect(),
        }))
    }

    async fn delete_ip_route(
        &self,
        req: Request<pb::DeleteIpRouteRequest>,
    ) -> Result<Response<pb::DeleteRouteResponse>, Status> {
        let grant = self
            .authorize(&req, Scope::RoutesWrite, "DeleteIpRoute")
            .await?;
        let account = grant.account;
        let outcome = self.0.delete_ip_route(account, &req.get_ref().route).await;
        grant.record(&self.0, outcome).await?;
        Ok(Response::new(pb::DeleteRouteResponse {}))
    }

    async fn get_tunnel_configuration(
        &self,
        req: Request<pb::TunnelRef>,
    ) -> Result<Response<pb::TunnelConfiguration>, Status> {
        let grant = self
            .authorize(&req, Scope::Read, "GetTunnelConfiguration")
            .await?;
        let config = self
            .0
            .tunnel_configuration(grant.account, &req.get_ref().tunnel)
            .await?;
        Ok(Response::new(tunnel_configuration_pb(config)?))
    }

    async fn put_tunnel_configuration(
        &self,
        req: Request<pb::PutTunnelConfigurationRequest>,
    ) -> Result<Response<pb::TunnelConfiguration>, Status> {
        let r = req.get_ref();
        let grant = self
            .authorize(&req, Scope::RoutesWrite, "PutTunnelConfiguration")
            .await?
            .on_tunnel(&r.tunnel);
        let outcome = match serde_json::from_slice(&r.config_json) {
            Ok(config) => {
                self.0
                    .put_tunnel_configuration(grant.account, &r.tunnel, config)
                    .await
            }
            Err(e) => Err(Error::invalid("config_json", e)),
        };
        let recorded = grant.record(&self.0, outcome).await?;
        Ok(Response::new(tunnel_configuration_pb(recorded)?))
    }

    async fn list_connectors(
        &self,
        req: Request<pb::TunnelRef>,
    ) -> Result<Response<pb::ListConnectorsResponse>, Status> {
        let grant = self.authorize(&req, Scope::Read, "ListConnectors").await?;
        let account = grant.account;
        let connectors = self
            .0
            .list_connectors(account, &req.get_ref().tunnel)
            .await?;
        Ok(Response::new(pb::ListConnectorsResponse {
            connectors: connectors.into_iter().map(connector_pb).collect(),
        }))
    }

    async fn cleanup_connections(
        &self,
        req: Request<pb::CleanupConnectionsRequest>,
    ) -> Result<Response<pb::CleanupConnectionsResponse>, Status> {
        let r = req.get_ref();
        let grant = self
            .authorize(&req, Scope::TunnelsWrite, "CleanupConnections")
            .await?
            .on_tunnel(&r.tunnel);
        let connector = (!r.connector_id.is_empty()).then_some(r.connector_id.as_str());
        let outcome = self
            .0
            .cleanup_connections(grant.account, &r.tunnel, connector)
            .await;
        let forgotten = grant.record(&self.0, outcome).await?;
        Ok(Response::new(pb::CleanupConnectionsResponse {
            connectors: u32::try_from(forgotten).unwrap_or(u32::MAX),
        }))
    }

    async fn list_nodes(
        &self,
        req: Request<pb::ListNodesRequest>,
    ) -> Result<Response<pb::ListNodesResponse>, Status> {
        self.authorize(&req, Scope::Read, "ListNodes").await?;
        let nodes = self.0.list_nodes().await?;
        Ok(Response::new(pb::ListNodesResponse {
            nodes: nodes
                .into_iter()
                .map(|n| pb::Node {
                    started_at_ms: n.started_at.unix_ms(),
                    last_seen_at_ms: n.last_seen_at.unix_ms(),
                    name: n.name,
                    tunnel_addr: n.tunnel_addr,
                    edge_addr: n.edge_addr,
                    api_addr: n.api_addr,
                    version: n.version,
                    alive: n.alive,
                    connections: n.connections,
                })
                .collect(),
        }))
    }
}

pub(crate) struct ConnectorApi(pub(crate) Arc<Control>);

fn tunnel_token(metadata: &MetadataMap) -> Result<String, Status> {
    bearer(metadata)
        .map(str::to_owned)
        .ok_or_else(invalid_tunnel_token)
}

fn invalid_tunnel_token() -> Status {
    Status::unauthenticated("Provided Tunnel token is not valid.")
}

/// Connectors are told their token is bad in cloudflared's words.
fn connector_status(err: Error) -> Status {
    match err {
        Error::Unauthenticated => invalid_tunnel_token(),
        other => other.into(),
    }
}

/// The tunnel listener's connection, to prove once a call's token is accepted (absent when
/// the service is reached otherwise, as in unit tests).
struct Proof(Option<Pending>);

impl Proof {
    fn of<T>(req: &Request<T>) -> Self {
        Self(req.extensions().get::<Pending>().cloned())
    }

    /// `outcome` of a call that authenticates its token first: success proves the connection.
    fn check<T>(&self, outcome: Result<T, Error>) -> Result<T, Status> {
        if let (Ok(_), Some(pending)) = (&outcome, &self.0) {
            pending.prove();
        }
        outcome.map_err(connector_status)
    }
}

type ConfigurationStream =
    Pin<Box<dyn futures_util::Stream<Item = Result<pb::RemoteConfiguration, Status>> + Send>>;

#[tonic::async_trait]
impl ConnectorService for ConnectorApi {
    type WatchConfigurationStream = ConfigurationStream;

    async fn register_connector(
        &self,
        req: Request<pb::RegisterConnectorRequest>,
    ) -> Result<Response<pb::RegisterConnectorResponse>, Status> {
        let token = tunnel_token(req.metadata())?;
        let proof = Proof::of(&req);
        let peer = req
            .extensions()
            .get::<PeerAddr>()
            .map(|p| p.0)
            .ok_or_else(|| Status::internal("peer address unknown"))?;
        let r = req.into_inner();
        let id: ConnectorId = r
            .connector_id
            .parse()
            .map_err(|_| Status::invalid_argument("connector_id must be a UUID"))?;
        let info = ConnectorInfo {
            id,
            version: r.version,
            arch: r.arch,
            hostname: r.hostname,
            // Older connectors do not say: they kept the default.
            ha_connections: match r.ha_connections {
                0 => api::HA_CONNECTIONS,
                n => u8::try_from(n)
                    .map_err(|_| Status::invalid_argument("ha_connections must be below 256"))?,
            },
        };
        let tunnel = proof.check(self.0.register_connector(&token, info, peer).await)?;
        let configuration = self.0.pushed_configuration(&tunnel).await?;
        Ok(Response::new(pb::RegisterConnectorResponse {
            tunnel_id: tunnel.id.to_string(),
            tunnel_name: tunnel.name,
            protocol_versions: adit_core::wire::PROTOCOL_VERSIONS.to_vec(),
            config_source: config_source_pb(tunnel.config_src).into(),
            configuration: configuration.map(configuration_pb),
        }))
    }

    async fn watch_configuration(
        &self,
        req: Request<pb::WatchConfigurationRequest>,
    ) -> Result<Response<Self::WatchConfigurationStream>, Status> {
        use futures_util::StreamExt;
        let token = tunnel_token(req.metadata())?;
        let known = req.get_ref().known_version;
        let versions =
            Proof::of(&req).check(self.0.clone().watch_configuration(token, known).await)?;
        let stream = versions.map(|v| v.map(configuration_pb).map_err(connector_status));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn report_local_configuration(
        &self,
        req: Request<pb::LocalConfiguration>,
    ) -> Result<Response<pb::ReportLocalConfigurationResponse>, Status> {
        let token = tunnel_token(req.metadata())?;
        let outcome = self
            .0
            .report_local_configuration(&token, &req.get_ref().config_json)
            .await;
        Proof::of(&req).check(outcome)?;
        Ok(Response::new(pb::ReportLocalConfigurationResponse {}))
    }

    async fn drain_connector(
        &self,
        req: Request<pb::DrainConnectorRequest>,
    ) -> Result<Response<pb::DrainConnectorResponse>, Status> {
        let token = tunnel_token(req.metadata())?;
        let r = req.get_ref();
        let connector: ConnectorId = r
            .connector_id
            .parse()
            .map_err(|_| Status::invalid_argument("connector_id must be a UUID"))?;
        let only = match r.connection_id.as_str() {
            "" => None,
            id => Some(
                id.parse()
                    .map_err(|_| Status::invalid_argument("connection_id must be a UUID"))?,
            ),
        };
        let drained =
            Proof::of(&req).check(self.0.drain_connector(&token, connector, only).await)?;
        Ok(Response::new(pb::DrainConnectorResponse {
            connections: u32::try_from(drained).unwrap_or(u32::MAX),
        }))
    }

    async fn list_live_nodes(
        &self,
        req: Request<pb::LiveNodesRequest>,
    ) -> Result<Response<pb::LiveNodesResponse>, Status> {
        let token = tunnel_token(req.metadata())?;
        let node_addrs = Proof::of(&req).check(self.0.node_addrs_for_token(&token).await)?;
        Ok(Response::new(pb::LiveNodesResponse { node_addrs }))
    }

    async fn list_ip_routes(
        &self,
        req: Request<pb::ListIpRoutesRequest>,
    ) -> Result<Response<pb::ListIpRoutesResponse>, Status> {
        let token = tunnel_token(req.metadata())?;
        let networks = Proof::of(&req).check(self.0.networks_for_token(&token).await)?;
        Ok(Response::new(pb::ListIpRoutesResponse { networks }))
    }
}
