//! The control plane's operations, shared by REST, gRPC and the tunnel listener so that
//! every rule (uniqueness, ownership, rotation) is written once.
//!
//! Rule: control/ uses storage/, identity/, trust/, tunnel/, observe/ and ground; no HTTP
//! types (axum, hyper, tonic): web/ translates.

pub mod accounts;
pub mod acme;
pub mod certificates;
pub mod changes;
pub mod cluster;
pub mod device;
pub mod nodes;
pub mod quick;
pub(crate) mod remote_config;

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use adit_core::{
    api::{self, ChangeKind, ConfigSource},
    cidr::{IpNet, longest_match},
    hostname::HostPattern,
    ids::{AccountId, ConnectionId, ConnectorId, RouteId, TunnelId, TunnelName},
    time::Timestamp,
    token::TunnelToken,
    wire::{DataHello, RejectCode},
};

use crate::{
    Error,
    clock::now_ms,
    control::quick::{QuickTunnels, random_hostname},
    control::{
        changes::{Changes, ConfigEvents},
        cluster::{ClusterBus, ClusterEvent},
    },
    identity::auth::Auth,
    observe::metrics::{Metrics, Totals, quantile},
    storage::{
        ConnectionRow, ConnectorRow, IpRouteRow, RouteRow, Storage, TrafficRow, TunnelRow,
        TunnelSummary,
    },
    trust::public_tls::PublicTls,
    trust::secrets::{ServerKey, secret_matches, sha256_hex},
    tunnel::registry::Registry,
    tunnel::routes::{RouteChange, RouteEntry, Routes},
};

/// The account the first admin, the first API token and `adit-server admin create`
/// default to.
pub(crate) const DEFAULT_ACCOUNT: &str = "default";

/// The account quick tunnels live in; nobody logs into it.
const QUICK_ACCOUNT: &str = "quick-tunnels";

/// What a connector says about itself when it registers.
#[derive(Debug, Clone)]
pub struct ConnectorInfo {
    pub id: ConnectorId,
    pub version: String,
    pub arch: String,
    pub hostname: String,
    /// How many data connections it keeps.
    pub ha_connections: u8,
}

pub struct Control {
    pub storage: Storage,
    pub auth: Auth,
    /// Session cookies carry `Secure` (the API is reached over HTTPS).
    pub secure_cookies: bool,
    pub metrics: Arc<Metrics>,
    /// `Some` when the operator offers quick tunnels.
    pub quick: Option<QuickTunnels>,
    pub registry: Arc<Registry>,
    pub routes: Arc<Routes>,
    /// Tells configuration watchers (connectors of remote tunnels) of new versions.
    pub(crate) config_events: ConfigEvents,
    /// What this node tells the other nodes of a cluster.
    pub(crate) cluster: ClusterBus,
    /// Every change to an account's tunnels, connectors, connections and routes, for the
    /// dashboard's live pages (`GET /api/v1/events`).
    pub changes: Changes,
    pub(crate) key: ServerKey,
    pub(crate) endpoints: Endpoints,
    pub(crate) ca_pin: Option<String>,
    /// What the HTTPS edge serves of public TLS (zones' and ACME certificates, challenges,
    /// HTTPS-only zones), read from the database.
    pub(crate) public_tls: Arc<PublicTls>,
}

/// Where connectors and other nodes reach this one (`host:port` of its tunnel listener).
pub struct Endpoints {
    /// What tokens carry: this node's own address, or a name in front of every node.
    pub token: String,
    /// This node's own, recorded on its connections for other nodes' links.
    pub node: String,
}

impl Control {
    pub(crate) fn new(
        storage: Storage,
        auth: Auth,
        registry: Arc<Registry>,
        routes: Arc<Routes>,
        key: ServerKey,
        endpoints: Endpoints,
        ca_pin: Option<String>,
    ) -> Self {
        Self {
            storage,
            auth,
            secure_cookies: false,
            metrics: Arc::new(Metrics::new()),
            quick: None,
            registry,
            routes,
            config_events: ConfigEvents::default(),
            cluster: ClusterBus::default(),
            changes: Changes::default(),
            key,
            endpoints,
            ca_pin,
            public_tls: Arc::default(),
        }
    }

    /// After a change to the stored routes: this node's route table and every other
    /// node's get the same changes.
    pub(crate) fn apply_routes(&self, changes: &[RouteChange]) {
        if changes.is_empty() {
            return;
        }
        self.routes.apply(changes);
        self.cluster.announce(ClusterEvent::routes(changes));
    }

    /// Closes the tunnel's connections on this node and every other (it was deleted or
    /// given a new secret); how many were here.
    fn close_tunnel(&self, tunnel: TunnelId) -> usize {
        self.cluster.announce(ClusterEvent::TunnelClosed { tunnel });
        self.registry.close_tunnel(tunnel)
    }

    /// Rebuilds this node's route table from the stored routes (at start, and after this
    /// node may have missed other nodes' changes).
    pub(crate) async fn load_routes(&self) -> Result<(), Error> {
        let reload = self.routes.begin_reload();
        let rows = self.storage.all_routes().await?;
        reload.finish(rows.into_iter().filter_map(|row| {
            route_entry(&row)
                .map_err(|e| {
                    tracing::warn!(route = %row.id, error = %e, "skipping unparseable stored route");
                })
                .ok()
        }));
        Ok(())
    }

    /// Marks session cookies `Secure` (`--secure-cookies`).
    pub(crate) fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// Offers quick tunnels (`--quick-tunnel-domain`).
    pub(crate) fn with_quick_tunnels(mut self, quick: QuickTunnels) -> Self {
        self.quick = Some(quick);
        self
    }

    pub(crate) async fn tunnel(
        &self,
        account: AccountId,
        tunnel: &str,
    ) -> Result<TunnelRow, Error> {
        self.storage
            .find_tunnel(account, tunnel)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "tunnel",
                name: tunnel.to_owned(),
            })
    }

    async fn view(&self, tunnel: TunnelId) -> Result<api::Tunnel, Error> {
        let routes = self.storage.list_routes(tunnel).await?;
        // Read after the change that led here, so it shows the stored row.
        let summary =
            self.storage
                .tunnel_summary(tunnel)
                .await?
                .ok_or_else(|| Error::NotFound {
                    what: "tunnel",
                    name: tunnel.to_string(),
                })?;
        Ok(tunnel_view(
            summary,
            routes.into_iter().map(|r| r.hostname).collect(),
        ))
    }

    fn token_for(&self, row: &TunnelRow) -> String {
        TunnelToken {
            account_id: row.account_id,
            tunnel_id: row.id,
            secret: self.key.tunnel_secret(row.id, row.secret_generation),
            endpoint: Some(self.endpoints.token.clone()),
            ca_pin: self.ca_pin.clone(),
        }
        .encode()
    }

    /// A new tunnel's row, with the hash of its first secret.
    fn new_tunnel_row(
        &self,
        account: AccountId,
        name: &str,
        config_src: ConfigSource,
    ) -> Result<TunnelRow, Error> {
        let name = TunnelName::parse(name).map_err(|e| Error::invalid("name", e))?;
        let id = TunnelId::random();
        let secret = self.key.tunnel_secret(id, 0);
        Ok(TunnelRow {
            id,
            account_id: account,
            name: name.to_string(),
            secret_generation: 0,
            secret_hash: sha256_hex(secret.as_bytes()),
            created_at: now_ms(),
            conns_active_at: None,
            config_src,
        })
    }

    pub async fn create_tunnel(
        &self,
        account: AccountId,
        name: &str,
        config_src: ConfigSource,
    ) -> Result<api::Tunnel, Error> {
        let row = self.new_tunnel_row(account, name, config_src)?;
        self.storage.insert_tunnel(&row).await?;
        self.notify(account, ChangeKind::Tunnel, row.id);
        tracing::info!(tunnel = %row.id, name = %row.name, config_src = config_src.as_str(), "tunnel created");
        self.view(row.id).await
    }

    pub async fn list_tunnels(
        &self,
        account: AccountId,
        name_prefix: &str,
    ) -> Result<Vec<api::Tunnel>, Error> {
        // Two queries for the whole list: the tunnels with their connections counted, and
        // the account's routes.
        let mut routes = std::collections::HashMap::<TunnelId, Vec<String>>::new();
        for route in self.storage.account_routes(account).await? {
            routes
                .entry(route.tunnel_id)
                .or_default()
                .push(route.hostname);
        }
        Ok(self
            .storage
            .tunnel_summaries(account)
            .await?
            .into_iter()
            .filter(|s| s.tunnel.name.starts_with(name_prefix))
            .map(|s| {
                let hostnames = routes.remove(&s.tunnel.id).unwrap_or_default();
                tunnel_view(s, hostnames)
            })
            .collect())
    }

    /// One page of the account's tunnels by name, searched by name on the server: three
    /// queries whatever the account holds (the matching tunnels counted, the page with
    /// its connections counted, and the page's routes).
    pub async fn list_tunnels_page(
        &self,
        account: AccountId,
        query: &api::TunnelListQuery,
    ) -> Result<api::TunnelPage, Error> {
        let (page, per_page) = (query.page(), query.per_page());
        let offset = (i64::from(page) - 1) * i64::from(per_page);
        let (summaries, total) = self
            .storage
            .tunnel_summaries_page(account, query.search(), i64::from(per_page), offset)
            .await?;
        let ids: Vec<TunnelId> = summaries.iter().map(|s| s.tunnel.id).collect();
        let mut routes = std::collections::HashMap::<TunnelId, Vec<String>>::new();
        for route in self.storage.routes_of_tunnels(&ids).await? {
            routes
                .entry(route.tunnel_id)
                .or_default()
                .push(route.hostname);
        }
        let result: Vec<api::Tunnel> = summaries
            .into_iter()
            .map(|s| {
                let hostnames = routes.remove(&s.tunnel.id).unwrap_or_default();
                tunnel_view(s, hostnames)
            })
            .collect();
        Ok(api::TunnelPage {
            result_info: api::ResultInfo {
                page,
                per_page,
                count: u32::try_from(result.len()).unwrap_or(u32::MAX),
                total_count: u64::try_from(total).unwrap_or_default(),
            },
            result,
        })
    }

    /// The names of the account's tunnels (what a new one must differ from), without
    /// counting their connections.
    pub async fn tunnel_names(&self, account: AccountId) -> Result<Vec<String>, Error> {
        Ok(self
            .storage
            .list_tunnels(account)
            .await?
            .into_iter()
            .map(|t| t.name)
            .collect())
    }

    pub async fn get_tunnel(&self, account: AccountId, tunnel: &str) -> Result<api::Tunnel, Error> {
        let row = self.tunnel(account, tunnel).await?;
        self.view(row.id).await
    }

    pub async fn rename_tunnel(
        &self,
        account: AccountId,
        tunnel: &str,
        name: &str,
    ) -> Result<api::Tunnel, Error> {
        let name = TunnelName::parse(name).map_err(|e| Error::invalid("name", e))?;
        let row = self.tunnel(account, tunnel).await?;
        self.storage.rename_tunnel(row.id, name.as_str()).await?;
        self.notify(account, ChangeKind::Tunnel, row.id);
        self.view(row.id).await
    }

    pub async fn delete_tunnel(
        &self,
        account: AccountId,
        tunnel: &str,
        force: bool,
    ) -> Result<api::Tunnel, Error> {
        let row = self.tunnel(account, tunnel).await?;
        let view = self.view(row.id).await?;
        if view.connections > 0 && !force {
            return Err(Error::FailedPrecondition(format!(
                "tunnel {} has {} active connection(s); stop its connectors or delete with force",
                row.name, view.connections
            )));
        }
        self.storage.delete_tunnel(row.id).await?;
        self.notify(account, ChangeKind::Tunnel, row.id);
        self.apply_routes(&[RouteChange::RemoveTunnel(row.id)]);
        let closed = self.close_tunnel(row.id);
        self.metrics.forget(row.id);
        tracing::info!(tunnel = %row.id, closed, "tunnel deleted");
        Ok(view)
    }

    pub async fn tunnel_token(&self, account: AccountId, tunnel: &str) -> Result<String, Error> {
        let row = self.tunnel(account, tunnel).await?;
        Ok(self.token_for(&row))
    }

    /// New secret; every running connector of the tunnel is disconnected and its old token
    /// refused from now on.
    pub async fn rotate_secret(&self, account: AccountId, tunnel: &str) -> Result<String, Error> {
        let mut row = self.tunnel(account, tunnel).await?;
        row.secret_generation += 1;
        let secret = self.key.tunnel_secret(row.id, row.secret_generation);
        row.secret_hash = sha256_hex(secret.as_bytes());
        self.storage
            .set_tunnel_secret(row.id, row.secret_generation, &row.secret_hash)
            .await?;
        self.notify(account, ChangeKind::Tunnel, row.id);
        let closed = self.close_tunnel(row.id);
        tracing::info!(tunnel = %row.id, closed, "tunnel secret rotated");
        Ok(self.token_for(&row))
    }

    /// Routes `hostname` to a tunnel; it must lie inside one of the account's zones.
    pub async fn create_route(
        &self,
        account: AccountId,
        tunnel: &str,
        hostname: &str,
    ) -> Result<api::Route, Error> {
        let pattern = HostPattern::parse(hostname).map_err(|e| Error::invalid("hostname", e))?;
        self.require_zone(account, &pattern).await?;
        self.add_route(account, tunnel, pattern).await
    }

    /// Routes a checked pattern; unique across all accounts.
    async fn add_route(
        &self,
        account: AccountId,
        tunnel: &str,
        pattern: HostPattern,
    ) -> Result<api::Route, Error> {
        let row = self.tunnel(account, tunnel).await?;
        // Only the routes that could overlap it are read: an equal name, the wildcards
        // above it, and (for a wildcard) the names below it.
        let routes = self.storage.routes_overlapping(&pattern).await?;
        if routes
            .iter()
            .any(|r| r.tunnel_id == row.id && r.hostname == pattern.as_str())
        {
            return Err(Error::Conflict(format!(
                "{pattern} is already configured to route to your tunnel"
            )));
        }
        // Below the quick-tunnel domain only exact names route (routes.rs), so a wildcard
        // stored above it does not keep a quick tunnel from its name.
        let quick_name = self.quick_domain().is_some_and(|q| pattern.is_within(q));
        check_route_free(
            routes
                .iter()
                .filter(|r| !(quick_name && r.hostname.starts_with("*."))),
            &pattern,
        )?;
        let route = RouteRow {
            id: RouteId::random(),
            account_id: account,
            tunnel_id: row.id,
            hostname: pattern.to_string(),
            created_at: now_ms(),
        };
        self.storage.insert_route(&route).await?;
        self.notify(account, ChangeKind::Route, row.id);
        self.apply_routes(&[RouteChange::Add(RouteEntry {
            id: route.id,
            pattern,
            tunnel: row.id,
            created_at: route.created_at,
        })]);
        Ok(route_view(route))
    }

    pub async fn list_routes(
        &self,
        account: AccountId,
        tunnel: &str,
    ) -> Result<Vec<api::Route>, Error> {
        let row = self.tunnel(account, tunnel).await?;
        Ok(self
            .storage
            .list_routes(row.id)
            .await?
            .into_iter()
            .map(route_view)
            .collect())
    }

    pub async fn delete_route(&self, account: AccountId, route: &str) -> Result<(), Error> {
        let not_found = || Error::NotFound {
            what: "route",
            name: route.to_owned(),
        };
        let id: RouteId = route.parse().map_err(|_| not_found())?;
        let row = self
            .storage
            .route(account, id)
            .await?
            .ok_or_else(not_found)?;
        self.storage.delete_route(id).await?;
        self.notify(account, ChangeKind::Route, row.tunnel_id);
        match HostPattern::parse(&row.hostname) {
            Ok(pattern) => self.apply_routes(&[RouteChange::Remove { id, pattern }]),
            // Never in the table: nothing to remove.
            Err(e) => tracing::warn!(route = %id, error = %e, "deleted an unparseable route"),
        }
        Ok(())
    }

    pub async fn list_connectors(
        &self,
        account: AccountId,
        tunnel: &str,
    ) -> Result<Vec<api::Connector>, Error> {
        let row = self.tunnel(account, tunnel).await?;
        let mut out = Vec::new();
        for c in self.storage.live_connectors(row.id).await? {
            let connections = self
                .storage
                .open_connections(c.id)
                .await?
                .into_iter()
                .map(|k| api::Connection {
                    id: k.id,
                    index: k.index,
                    edge: k.edge,
                    opened_at: Timestamp::from_unix_ms(k.opened_at),
                    origin_ip: k.origin_ip,
                })
                .collect();
            out.push(api::Connector {
                id: c.id,
                tunnel_id: c.tunnel_id,
                version: c.version,
                arch: c.arch,
                hostname: c.hostname,
                registered_at: Timestamp::from_unix_ms(c.registered_at),
                ha_connections: c.ha_connections,
                connections,
                origin_health: self.registry.origin_health(row.id, c.id).map(|o| {
                    api::OriginHealth {
                        reachable: o.reachable,
                        checked_at: Timestamp::from_unix_ms(o.at_ms),
                        error: o.error,
                    }
                }),
            });
        }
        Ok(out)
    }

    pub async fn create_ip_route(
        &self,
        account: AccountId,
        tunnel: &str,
        network: &str,
        comment: &str,
    ) -> Result<api::IpRoute, Error> {
        let network = IpNet::parse(network).map_err(|e| Error::invalid("network", e))?;
        let row = self.tunnel(account, tunnel).await?;
        let route = IpRouteRow {
            id: RouteId::random(),
            account_id: account,
            tunnel_id: row.id,
            network: network.to_string(),
            comment: comment.to_owned(),
            created_at: now_ms(),
        };
        self.storage.insert_ip_route(&route).await?;
        self.notify(account, ChangeKind::Route, row.id);
        Ok(ip_route_view(route, row.name))
    }

    pub async fn list_ip_routes(&self, account: AccountId) -> Result<Vec<api::IpRoute>, Error> {
        let names: std::collections::HashMap<TunnelId, String> = self
            .storage
            .list_tunnels(account)
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        Ok(self
            .storage
            .ip_routes(account)
            .await?
            .into_iter()
            .map(|r| {
                let name = names.get(&r.tunnel_id).cloned().unwrap_or_default();
                ip_route_view(r, name)
            })
            .collect())
    }

    /// Deletes a private-network route named by id or by its network.
    pub async fn delete_ip_route(&self, account: AccountId, route: &str) -> Result<(), Error> {
        let not_found = || Error::NotFound {
            what: "route",
            name: route.to_owned(),
        };
        let routes = self.storage.ip_routes(account).await?;
        let found = match route.parse::<RouteId>() {
            Ok(id) => routes.into_iter().find(|r| r.id == id),
            Err(_) => {
                let network = IpNet::parse(route).map_err(|_| not_found())?.to_string();
                routes.into_iter().find(|r| r.network == network)
            }
        }
        .ok_or_else(not_found)?;
        if !self.storage.delete_ip_route(account, found.id).await? {
            return Err(not_found());
        }
        self.notify(account, ChangeKind::Route, found.tunnel_id);
        Ok(())
    }

    /// The route whose network holds `ip` most specifically (longest prefix).
    pub async fn match_ip_route(
        &self,
        account: AccountId,
        ip: IpAddr,
    ) -> Result<Option<api::IpRoute>, Error> {
        let routes = self.list_ip_routes(account).await?;
        let parsed: Vec<(IpNet, api::IpRoute)> = routes
            .into_iter()
            .filter_map(|r| IpNet::parse(&r.network).ok().map(|n| (n, r)))
            .collect();
        Ok(longest_match(parsed.iter().map(|(n, r)| (n, r)), ip).cloned())
    }

    /// The networks routed to the tunnel a connector's token runs.
    pub async fn networks_for_token(&self, token: &str) -> Result<Vec<String>, Error> {
        let tunnel = self.authenticate_token(token).await?;
        Ok(self
            .storage
            .ip_routes_of_tunnel(tunnel.id)
            .await?
            .into_iter()
            .map(|r| r.network)
            .collect())
    }

    /// A new quick tunnel for a client, routed to a random hostname.
    pub async fn create_quick_tunnel(&self, client: IpAddr) -> Result<api::QuickTunnel, Error> {
        let quick = self.quick.as_ref().ok_or_else(|| Error::NotFound {
            what: "feature",
            name: "quick tunnels (start adit-server with --quick-tunnel-domain)".into(),
        })?;
        let client_ip = client.to_string();
        let account = self.storage.ensure_account(QUICK_ACCOUNT).await?;
        let name = format!("quick-{}", uuid::Uuid::new_v4().simple());
        let tunnel = self.new_tunnel_row(account, &name, ConfigSource::Local)?;
        let hostname = random_hostname(quick.domain.as_str());
        // The tunnel and its record go in together or not at all, counted atomically
        // against the limit: a burst of requests cannot all pass one check.
        let limit = quick.per_client_limit;
        if !self
            .storage
            .insert_quick_tunnel(&tunnel, &hostname, &client_ip, limit)
            .await?
        {
            return Err(Error::RateLimited(format!(
                "{client_ip} already holds {limit} quick tunnels (the limit); stop one first"
            )));
        }
        // The quick-tunnel domain is the operator's, given out here only: no zone.
        let routed = match HostPattern::parse(&hostname) {
            Ok(pattern) => self.add_route(account, &name, pattern).await,
            Err(e) => Err(Error::invalid("hostname", e)),
        };
        if let Err(e) = routed {
            self.storage.delete_tunnel(tunnel.id).await?;
            return Err(e);
        }
        tracing::info!(tunnel = %tunnel.id, %hostname, client = %client_ip, "quick tunnel created");
        Ok(api::QuickTunnel {
            id: tunnel.id,
            hostname,
            token: self.tunnel_token(account, &name).await?,
        })
    }

    /// Removes quick tunnels whose connector has been gone longer than the grace period.
    pub async fn sweep_quick_tunnels(&self) -> Result<usize, Error> {
        let Some(quick) = &self.quick else {
            return Ok(0);
        };
        let cutoff = now_ms() - i64::try_from(quick.grace.as_millis()).unwrap_or(i64::MAX);
        let gone = self.storage.abandoned_quick_tunnels(cutoff).await?;
        // No change notices: nobody logs into the quick-tunnel account to watch it.
        for tunnel in &gone {
            self.storage.delete_tunnel(*tunnel).await?;
            self.apply_routes(&[RouteChange::RemoveTunnel(*tunnel)]);
            self.close_tunnel(*tunnel);
            self.metrics.forget(*tunnel);
            tracing::info!(%tunnel, "quick tunnel removed: its connector went away");
        }
        Ok(gone.len())
    }

    /// Writes what each tunnel did since the last flush into the current minute's row,
    /// and forgets minutes older than the retention.
    pub async fn flush_traffic(&self) -> Result<(), Error> {
        const RETENTION_MS: i64 = 7 * 24 * 60 * MINUTE_MS;
        let minute = current_minute();
        for (tunnel, counters) in self.metrics.tunnels() {
            let d = counters.take_delta();
            if d.is_idle() {
                continue;
            }
            let row = traffic_row(tunnel, minute, &d);
            if let Err(e) = self.storage.add_traffic(&row).await {
                // A tunnel deleted since its last request has nowhere to keep it.
                tracing::debug!(%tunnel, error = %e, "dropped a traffic minute");
            }
        }
        self.storage.prune_traffic(minute - RETENTION_MS).await?;
        Ok(())
    }

    /// The tunnel's traffic over the last `minutes` minutes, oldest first.
    pub async fn traffic(
        &self,
        account: AccountId,
        tunnel: &str,
        minutes: u32,
    ) -> Result<Vec<api::TrafficPoint>, Error> {
        let row = self.tunnel(account, tunnel).await?;
        let since = now_ms() - i64::from(minutes) * MINUTE_MS;
        let mut rows = self.storage.traffic(row.id, since).await?;
        // What this node counted since its last flush belongs to the minute in progress:
        // pages see a request within moments, not at the next flush.
        if let Some(live) = self
            .metrics
            .tunnel_counters(row.id)
            .map(|c| c.peek_delta())
            .filter(|d| !d.is_idle())
        {
            let live = traffic_row(row.id, current_minute(), &live);
            match rows.last_mut() {
                Some(last) if last.minute == live.minute => {
                    last.requests += live.requests;
                    last.errors += live.errors;
                    last.bytes_in += live.bytes_in;
                    last.bytes_out += live.bytes_out;
                    // Quantiles do not add; the larger is the honest bound for the minute.
                    last.p50_us = last.p50_us.max(live.p50_us);
                    last.p99_us = last.p99_us.max(live.p99_us);
                }
                _ => rows.push(live),
            }
        }
        let unsigned = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(rows
            .into_iter()
            .map(|t| api::TrafficPoint {
                at: Timestamp::from_unix_ms(t.minute),
                requests: unsigned(t.requests),
                errors: unsigned(t.errors),
                bytes_in: unsigned(t.bytes_in),
                bytes_out: unsigned(t.bytes_out),
                p50_ms: t.p50_us as f64 / 1000.0,
                p99_ms: t.p99_us as f64 / 1000.0,
            })
            .collect())
    }

    /// The tunnel a presented token runs, if the token is current.
    pub async fn authenticate_token(&self, token: &str) -> Result<TunnelRow, Error> {
        let token = TunnelToken::parse(token).map_err(|_| Error::Unauthenticated)?;
        let row = self
            .storage
            .tunnel_by_id(token.tunnel_id)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if row.account_id != token.account_id
            || !secret_matches(token.secret.as_bytes(), &row.secret_hash)
        {
            return Err(Error::Unauthenticated);
        }
        Ok(row)
    }

    pub async fn register_connector(
        &self,
        token: &str,
        info: ConnectorInfo,
        peer: SocketAddr,
    ) -> Result<TunnelRow, Error> {
        let tunnel = self.authenticate_token(token).await?;
        let row = ConnectorRow {
            id: info.id,
            account_id: tunnel.account_id,
            tunnel_id: tunnel.id,
            version: info.version,
            arch: info.arch,
            hostname: info.hostname,
            origin_ip: peer.ip().to_string(),
            registered_at: now_ms(),
            ha_connections: info.ha_connections,
        };
        self.storage.upsert_connector(&row).await?;
        self.notify(row.account_id, ChangeKind::Connector, row.tunnel_id);
        tracing::info!(tunnel = %tunnel.id, connector = %row.id, version = %row.version, "connector registered");
        Ok(tunnel)
    }

    /// A connector of the token's tunnel is stopping (or moving one connection): this
    /// node gives its connections (or that one) no new streams. How many that concerns.
    pub async fn drain_connector(
        &self,
        token: &str,
        connector: ConnectorId,
        only: Option<ConnectionId>,
    ) -> Result<usize, Error> {
        let tunnel = self.authenticate_token(token).await?;
        let drained = self.registry.drain(tunnel.id, connector, only);
        tracing::info!(tunnel = %tunnel.id, %connector, connections = drained, "connector draining");
        Ok(drained)
    }

    /// Forgets a tunnel's connectors (all, or the one named) and closes their connections
    /// on this node: stale ones vanish, running ones register again. How many it forgot.
    pub async fn cleanup_connections(
        &self,
        account: AccountId,
        tunnel: &str,
        connector: Option<&str>,
    ) -> Result<u64, Error> {
        let row = self.tunnel(account, tunnel).await?;
        let connector = connector
            .map(|id| {
                id.parse::<ConnectorId>()
                    .map_err(|_| Error::invalid("connector_id", "must be a connector's UUID"))
            })
            .transpose()?;
        let forgotten = self.storage.delete_connectors(row.id, connector).await?;
        if let (Some(id), 0) = (connector, forgotten) {
            return Err(Error::NotFound {
                what: "connector",
                name: id.to_string(),
            });
        }
        let closed = self.registry.close(row.id, connector);
        self.cluster.announce(ClusterEvent::ConnectorsDropped {
            tunnel: row.id,
            connector,
        });
        self.notify(account, ChangeKind::Connector, row.id);
        tracing::info!(tunnel = %row.id, forgotten, closed, "connectors cleaned up");
        Ok(forgotten)
    }

    /// Records a connector's new data connection (and that its tunnel has now run).
    pub async fn open_connection(
        &self,
        connector: &ConnectorRow,
        connection: &ConnectionRow,
    ) -> Result<(), Error> {
        self.storage
            .insert_connection(connector, connection)
            .await?;
        if let Err(e) = self.storage.mark_tunnel_active(connector.tunnel_id).await {
            // The connection works all the same; only Down-versus-Inactive is at stake.
            tracing::warn!(error = %e, "could not mark the tunnel active");
        }
        self.notify(
            connector.account_id,
            ChangeKind::Connection,
            connector.tunnel_id,
        );
        Ok(())
    }

    /// Records the end of a data connection.
    pub async fn close_connection(
        &self,
        connector: &ConnectorRow,
        connection: ConnectionId,
    ) -> Result<(), Error> {
        let closed = self.storage.close_connection(connection).await;
        // Told even when the write failed: a page re-reading shows whatever is true.
        self.notify(
            connector.account_id,
            ChangeKind::Connection,
            connector.tunnel_id,
        );
        closed
    }

    /// Checks a data connection's hello: the token must be current and the connector
    /// registered to that tunnel.
    pub async fn authorize_data(
        &self,
        hello: &DataHello,
    ) -> Result<Result<ConnectorRow, (RejectCode, String)>, Error> {
        let tunnel = match self.authenticate_token(hello.token.expose()).await {
            Ok(t) => t,
            Err(Error::Unauthenticated) => {
                return Ok(Err((
                    RejectCode::Unauthorized,
                    "Provided Tunnel token is not valid.".into(),
                )));
            }
            Err(e) => return Err(e),
        };
        match self.storage.connector(hello.connector_id).await? {
            Some(c) if c.tunnel_id == tunnel.id => Ok(Ok(c)),
            _ => Ok(Err((
                RejectCode::UnknownConnector,
                format!("connector {} is not registered", hello.connector_id),
            ))),
        }
    }
}

fn ip_route_view(route: IpRouteRow, tunnel_name: String) -> api::IpRoute {
    api::IpRoute {
        id: route.id,
        tunnel_id: route.tunnel_id,
        tunnel_name,
        network: route.network,
        comment: route.comment,
        created_at: Timestamp::from_unix_ms(route.created_at),
    }
}

/// Refuses `pattern` if it overlaps (or equals) a hostname routed by one of `routes`:
/// a hostname belongs to one tunnel, across every account.
pub(crate) fn check_route_free<'a>(
    routes: impl IntoIterator<Item = &'a RouteRow>,
    pattern: &HostPattern,
) -> Result<(), Error> {
    for existing in routes {
        let Ok(other) = HostPattern::parse(&existing.hostname) else {
            continue;
        };
        if other.overlaps(pattern) {
            return Err(Error::Conflict(format!(
                "hostname {pattern} overlaps {other}, which is already routed to a tunnel"
            )));
        }
    }
    Ok(())
}

/// A tunnel as the API shows it, from its row with its connections counted, and its
/// routed `hostnames`.
fn tunnel_view(summary: TunnelSummary, hostnames: Vec<String>) -> api::Tunnel {
    let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
    let row = summary.tunnel;
    let connections = count(summary.open_connections);
    api::Tunnel {
        id: row.id,
        account_id: row.account_id,
        name: row.name,
        created_at: Timestamp::from_unix_ms(row.created_at),
        status: api::TunnelStatus::derive(
            row.conns_active_at.is_some(),
            count(summary.expected_connections),
            connections,
        ),
        connectors: count(summary.live_connectors),
        connections,
        routes: hostnames,
        config_src: row.config_src,
        connected_since: summary.connected_since.map(Timestamp::from_unix_ms),
    }
}

/// A stored route as the route table keeps it.
pub(crate) fn route_entry(row: &RouteRow) -> Result<RouteEntry, adit_core::Error> {
    Ok(RouteEntry {
        id: row.id,
        pattern: HostPattern::parse(&row.hostname)?,
        tunnel: row.tunnel_id,
        created_at: row.created_at,
    })
}

fn route_view(route: RouteRow) -> api::Route {
    api::Route {
        id: route.id,
        tunnel_id: route.tunnel_id,
        hostname: route.hostname,
        created_at: Timestamp::from_unix_ms(route.created_at),
    }
}

const MINUTE_MS: i64 = 60_000;

/// The start of the minute now is in, in ms since the epoch.
fn current_minute() -> i64 {
    let now = now_ms();
    now - now.rem_euclid(MINUTE_MS)
}

/// A tunnel's counts as one minute's history row.
fn traffic_row(tunnel: TunnelId, minute: i64, d: &Totals) -> TrafficRow {
    let micros = |seconds: Option<f64>| seconds.map_or(0, |s| (s * 1e6) as i64);
    let signed = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    TrafficRow {
        tunnel_id: tunnel,
        minute,
        requests: signed(d.requests),
        errors: signed(d.errors),
        bytes_in: signed(d.bytes_in),
        bytes_out: signed(d.bytes_out),
        p50_us: micros(quantile(&d.latency, 0.5)),
        p99_us: micros(quantile(&d.latency, 0.99)),
    }
}

impl crate::tunnel::listener::Connections for Control {
    fn authorize(
        &self,
        hello: &DataHello,
    ) -> impl Future<Output = Result<Result<ConnectorRow, (RejectCode, String)>, Error>> + Send
    {
        self.authorize_data(hello)
    }

    fn opened(
        &self,
        connector: &ConnectorRow,
        connection: &ConnectionRow,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.open_connection(connector, connection)
    }

    fn closed(
        &self,
        connector: &ConnectorRow,
        connection: ConnectionId,
    ) -> impl Future<Output = Result<(), Error>> + Send {
        self.close_connection(connector, connection)
    }
}
