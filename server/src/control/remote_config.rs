//! Remotely managed tunnels (cloudflared's `config_src: cloudflare`): the server stores
//! the tunnel's ingress configuration, routes its hostnames to the tunnel, and pushes each
//! new version to the tunnel's connectors, whose own config.yml it overrides.

use std::{sync::Arc, time::Duration};

use adit_core::{
    api::{self, ChangeKind, ConfigSource},
    hostname::HostPattern,
    ids::{AccountId, TunnelId},
    ingress::IngressConfig,
    time::Timestamp,
};
use futures_util::Stream;
use tokio::sync::broadcast;

use crate::{
    Error,
    clock::now_ms,
    control::{Control, check_route_free, route_entry},
    storage::{ConfigChange, StoredConfig, TunnelRow},
    tunnel::routes::RouteChange,
};

/// How often a configuration watcher re-reads the database even without a change event:
/// a change made through another edge node of a cluster raises no event here.
const RESYNC_EVERY: Duration = Duration::from_secs(30);
/// The largest configuration stored (as JSON). Real ones are a few KiB; this bounds what
/// a token holder can make the database keep.
const MAX_CONFIG_JSON: usize = 256 * 1024;

/// One version of a remote configuration, as pushed to connectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigVersion {
    pub(crate) version: i64,
    /// `{"ingress":[...],"originRequest":{...}}`.
    pub(crate) json: String,
}

impl Control {
    /// The tunnel's configuration: a remote tunnel's as last written, a local tunnel's as
    /// its connector last reported it.
    pub async fn tunnel_configuration(
        &self,
        account: AccountId,
        tunnel: &str,
    ) -> Result<api::TunnelConfiguration, Error> {
        let row = self.tunnel(account, tunnel).await?;
        let stored = self.stored_config(&row).await?;
        configuration_view(&row, stored)
    }

    /// Replaces a remote tunnel's configuration with a new version: validated as config.yml
    /// is, every hostname inside the account's zones and routed to no other tunnel. Its
    /// hostnames are routed to the tunnel (and those it drops unrouted) in the same
    /// transaction, then every connected connector of the tunnel is sent the new version.
    pub async fn put_tunnel_configuration(
        &self,
        account: AccountId,
        tunnel: &str,
        config: IngressConfig,
    ) -> Result<api::TunnelConfiguration, Error> {
        let row = self.tunnel(account, tunnel).await?;
        if row.config_src != ConfigSource::Remote {
            return Err(Error::FailedPrecondition(format!(
                "tunnel {} is locally managed: its ingress rules come from its connector's config.yml; create a remotely managed tunnel (config_src: remote) to configure it here",
                row.name
            )));
        }
        let hostnames = routed_hostnames(&config).map_err(|e| invalid_config(&e))?;
        for (index, pattern) in &hostnames {
            self.require_zone(account, pattern)
                .await
                .map_err(|e| at_hostname(*index, e))?;
        }
        for (index, pattern) in &hostnames {
            let others = self.storage.routes_overlapping(pattern).await?;
            check_route_free(others.iter().filter(|r| r.tunnel_id != row.id), pattern)
                .map_err(|e| at_hostname(*index, e))?;
        }
        let json = stored_json(&config)?;
        let names: Vec<String> = hostnames.iter().map(|(_, p)| p.to_string()).collect();
        let at = now_ms();
        let change = ConfigChange {
            tunnel: &row,
            json: &json,
            hostnames: &names,
            at,
        };
        let written = self
            .storage
            .write_remote_config(&change, previous_hostnames)
            .await?;
        let version = written.version;
        let removed = written.removed.iter().filter_map(|r| {
            HostPattern::parse(&r.hostname)
                .ok()
                .map(|pattern| RouteChange::Remove { id: r.id, pattern })
        });
        let added = written
            .added
            .iter()
            .filter_map(|r| route_entry(r).ok().map(RouteChange::Add));
        let changes: Vec<_> = removed.chain(added).collect();
        self.apply_routes(&changes);
        self.config_events.publish(row.id);
        self.cluster
            .announce(super::cluster::ClusterEvent::Configuration { tunnel: row.id });
        // Its hostnames are routes: open dashboard pages re-read them.
        self.notify(account, ChangeKind::Route, row.id);
        tracing::info!(tunnel = %row.id, version, hostnames = names.len(), "tunnel configuration updated");
        Ok(api::TunnelConfiguration {
            tunnel_id: row.id,
            version,
            config: Some(config),
            source: ConfigSource::Remote,
            created_at: Some(Timestamp::from_unix_ms(at)),
        })
    }

    /// Records the rules the connector of a locally managed tunnel reports running, so that
    /// they can be shown; a new version only when they changed.
    pub(crate) async fn report_local_configuration(
        &self,
        token: &str,
        json: &[u8],
    ) -> Result<(), Error> {
        let tunnel = self.authenticate_token(token).await?;
        if tunnel.config_src != ConfigSource::Local {
            return Err(Error::FailedPrecondition(format!(
                "tunnel {} is remotely managed; its configuration is the one stored on the server",
                tunnel.name
            )));
        }
        let config: IngressConfig =
            serde_json::from_slice(json).map_err(|e| Error::invalid("config_json", e))?;
        config.parse().map_err(|e| invalid_config(&e))?;
        if self
            .storage
            .write_local_config(tunnel.id, &stored_json(&config)?, now_ms())
            .await?
        {
            tracing::info!(tunnel = %tunnel.id, "connector reported new local configuration");
            self.notify(tunnel.account_id, ChangeKind::Route, tunnel.id);
        }
        Ok(())
    }

    /// What a connector of this tunnel must run: a remote tunnel's current configuration,
    /// `None` for a local tunnel or a remote one not configured yet.
    pub(crate) async fn pushed_configuration(
        &self,
        tunnel: &TunnelRow,
    ) -> Result<Option<ConfigVersion>, Error> {
        if tunnel.config_src != ConfigSource::Remote {
            return Ok(None);
        }
        let stored = self.stored_config(tunnel).await?;
        Ok(stored.json.map(|json| ConfigVersion {
            version: stored.version,
            json,
        }))
    }

    async fn stored_config(&self, tunnel: &TunnelRow) -> Result<StoredConfig, Error> {
        self.storage
            .tunnel_config(tunnel.id)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "tunnel",
                name: tunnel.name.clone(),
            })
    }

    /// The configuration versions a connector presenting `token` must run: the current one
    /// if newer than `known_version`, then each new one. Ends with an error once the token
    /// is no longer valid (secret rotated, tunnel deleted).
    pub(crate) async fn watch_configuration(
        self: Arc<Self>,
        token: String,
        known_version: i64,
    ) -> Result<impl Stream<Item = Result<ConfigVersion, Error>> + Send + 'static, Error> {
        let tunnel = self.authenticate_token(&token).await?;
        if tunnel.config_src != ConfigSource::Remote {
            return Err(Error::FailedPrecondition(format!(
                "tunnel {} is locally managed; it has no remote configuration to follow",
                tunnel.name
            )));
        }
        // Subscribed before the first read, so no change can fall between the two.
        let events = self.config_events.subscribe();
        let resync =
            tokio::time::interval_at(tokio::time::Instant::now() + RESYNC_EVERY, RESYNC_EVERY);
        let watch = Watch {
            control: self,
            token,
            tunnel: tunnel.id,
            sent: known_version,
            events,
            resync,
        };
        Ok(futures_util::stream::unfold(Some(watch), |watch| async {
            let mut watch = watch?;
            match watch.next().await {
                Ok(Some(version)) => Some((Ok(version), Some(watch))),
                Ok(None) => None,
                // Said once, then the stream ends.
                Err(e) => Some((Err(e), None)),
            }
        }))
    }
}

/// One connector's subscription to its tunnel's configuration.
struct Watch {
    control: Arc<Control>,
    token: String,
    tunnel: TunnelId,
    /// The newest version the connector has.
    sent: i64,
    events: broadcast::Receiver<TunnelId>,
    resync: tokio::time::Interval,
}

impl Watch {
    /// The next version newer than what the connector has, once there is one; `None`
    /// when the server stops.
    async fn next(&mut self) -> Result<Option<ConfigVersion>, Error> {
        loop {
            // Checked again each time, so a rotated or deleted tunnel's old token is sent
            // nothing more.
            let tunnel = self.control.authenticate_token(&self.token).await?;
            if let Some(current) = self.control.pushed_configuration(&tunnel).await?
                && current.version > self.sent
            {
                self.sent = current.version;
                return Ok(Some(current));
            }
            loop {
                tokio::select! {
                    event = self.events.recv() => match event {
                        Ok(tunnel) if tunnel == self.tunnel => break,
                        Ok(_) => {}
                        // Some events were missed; one of them may have been ours.
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return Ok(None),
                    },
                    _ = self.resync.tick() => break,
                }
            }
        }
    }
}

fn configuration_view(
    row: &TunnelRow,
    stored: StoredConfig,
) -> Result<api::TunnelConfiguration, Error> {
    let config = stored
        .json
        .map(|json| serde_json::from_str(&json))
        .transpose()
        .map_err(|e| {
            Error::Corrupt(format!(
                "the stored configuration of tunnel {} is not valid JSON: {e}",
                row.id
            ))
        })?;
    Ok(api::TunnelConfiguration {
        tunnel_id: row.id,
        version: stored.version,
        config,
        source: row.config_src,
        created_at: stored.updated_at.map(Timestamp::from_unix_ms),
    })
}

/// The configuration as stored, within [`MAX_CONFIG_JSON`].
fn stored_json(config: &IngressConfig) -> Result<String, Error> {
    let json = serde_json::to_string(config).map_err(|e| Error::invalid("config", e))?;
    if json.len() > MAX_CONFIG_JSON {
        return Err(Error::invalid(
            "config",
            format!(
                "it is {} bytes as JSON; at most {MAX_CONFIG_JSON} are kept",
                json.len()
            ),
        ));
    }
    Ok(json)
}

/// The hostname patterns the configuration's rules name (catch-alls name none), each once,
/// with the index of the first rule naming it. Validates the whole configuration.
fn routed_hostnames(config: &IngressConfig) -> Result<Vec<(usize, HostPattern)>, adit_core::Error> {
    let mut out: Vec<(usize, HostPattern)> = Vec::new();
    for (index, rule) in config.parse()?.rules().iter().enumerate() {
        if let Some(pattern) = &rule.hostname
            && !out.iter().any(|(_, seen)| seen == pattern)
        {
            out.push((index, pattern.clone()));
        }
    }
    Ok(out)
}

/// The hostnames a stored configuration routed (what a new version may unroute).
fn previous_hostnames(json: Option<&str>) -> Result<Vec<String>, Error> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let corrupt = |e: &dyn std::fmt::Display| {
        Error::Corrupt(format!("the stored tunnel configuration is unusable: {e}"))
    };
    let config: IngressConfig = serde_json::from_str(json).map_err(|e| corrupt(&e))?;
    Ok(routed_hostnames(&config)
        .map_err(|e| corrupt(&e))?
        .into_iter()
        .map(|(_, pattern)| pattern.to_string())
        .collect())
}

/// An ingress error as a 400 that names the JSON path of the rule (and member) at fault.
fn invalid_config(err: &adit_core::Error) -> Error {
    let field = match err.ingress_location() {
        Some((index, Some(member))) => format!("config.ingress[{index}].{}", member.as_str()),
        Some((index, None)) => format!("config.ingress[{index}]"),
        None => "config.ingress".to_owned(),
    };
    Error::InvalidArgument {
        field: field.into(),
        message: err.to_string(),
    }
}

/// Says which rule's hostname a refusal (zone, conflict) is about.
fn at_hostname(index: usize, err: Error) -> Error {
    let at = |message: String| format!("config.ingress[{index}].hostname: {message}");
    match err {
        Error::Forbidden(message) => Error::Forbidden(at(message)),
        Error::Conflict(message) => Error::Conflict(at(message)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> IngressConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn hostnames_are_named_once_with_their_first_rule() {
        let c = config(serde_json::json!({"ingress": [
            {"hostname": "App.Example.com", "path": "^/api", "service": "http://a"},
            {"hostname": "app.example.com", "service": "http://b"},
            {"hostname": "*.example.com", "service": "http://c"},
            {"hostname": "*", "service": "http_status:404"},
        ]}));
        let names: Vec<(usize, String)> = routed_hostnames(&c)
            .unwrap()
            .into_iter()
            .map(|(i, p)| (i, p.to_string()))
            .collect();
        assert_eq!(
            names,
            [(0, "app.example.com".into()), (2, "*.example.com".into())]
        );
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            previous_hostnames(Some(&json)).unwrap(),
            ["app.example.com", "*.example.com"]
        );
        assert!(previous_hostnames(None).unwrap().is_empty());
        assert!(matches!(
            previous_hostnames(Some("{")),
            Err(Error::Corrupt(_))
        ));
    }

    #[test]
    fn invalid_configurations_name_the_json_path() {
        let field = |json: serde_json::Value| match routed_hostnames(&config(json))
            .map_err(|e| invalid_config(&e))
        {
            Err(Error::InvalidArgument { field, .. }) => field.into_owned(),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(field(serde_json::json!({"ingress": []})), "config.ingress");
        assert_eq!(
            field(serde_json::json!({"ingress": [
                {"hostname": "a.example.com", "service": "http://a"},
                {"hostname": "b.example.com", "service": "http://b"},
                {"service": "ftp//nope"},
            ]})),
            "config.ingress[2].service"
        );
        assert_eq!(
            field(serde_json::json!({"ingress": [
                {"hostname": "a.example.com", "service": "http://a"},
            ]})),
            "config.ingress[0]"
        );
    }

    #[test]
    fn refusals_say_which_hostname() {
        let forbidden = at_hostname(3, Error::Forbidden("outside".into()));
        assert_eq!(forbidden.to_string(), "config.ingress[3].hostname: outside");
        assert!(matches!(
            at_hostname(0, Error::Unauthenticated),
            Error::Unauthenticated
        ));
    }
}
