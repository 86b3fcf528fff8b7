//! Private-network streams (`adit access socks`): the destination comes in the stream's
//! `adit-destination` header, is resolved here, and is dialled only if it lies inside a
//! network routed to this tunnel, whatever the edge asks for and whatever a name resolves
//! to. The list of networks comes from a [`NetworkSource`] the connector hands in, so this
//! module never names the control client.

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};

use adit_core::wire::ConnectorError;
use adit_core::{cidr::IpNet, ingress::OriginRequest};
use adit_transport::headers::DESTINATION;
use http::{Request, Response, StatusCode};

use super::{
    body::ProxyBody,
    errors::{connector_error, origin_failure},
    tcp,
};
use crate::Error;

/// A destination outside the known networks refreshes the list at most this often.
const REFRESH_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// Where the connector learns its tunnel's private networks (the control plane's
/// `ListIpRoutes`). The connector hands one in once it has registered; it must not own the
/// proxy, so that ownership runs one way: connector → proxy → source.
pub trait NetworkSource: Send + Sync {
    fn networks(&self) -> Pin<Box<dyn Future<Output = Result<Vec<IpNet>, Error>> + Send + '_>>;
}

/// The networks routed to this tunnel: the only private destinations the connector dials.
#[derive(Default)]
pub struct PrivateNetworks {
    nets: RwLock<Vec<IpNet>>,
    /// `None` until the connector has registered and handed in its source.
    source: Mutex<Option<Arc<dyn NetworkSource>>>,
    refreshed: Mutex<Option<Instant>>,
}

impl PrivateNetworks {
    /// From now on the list is fetched from `source`.
    pub fn set_source(&self, source: Arc<dyn NetworkSource>) {
        *self.source.lock().unwrap_or_else(PoisonError::into_inner) = Some(source);
    }

    fn holds(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|n| n.contains(ip))
    }

    /// Fetches the list again (routes change while we run); without a source, does nothing.
    pub async fn refresh(&self) -> Result<(), Error> {
        let source = self
            .source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(source) = source else {
            return Ok(());
        };
        *self
            .refreshed
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        let nets = source.networks().await?;
        tracing::debug!(networks = ?nets.iter().map(ToString::to_string).collect::<Vec<_>>(), "private networks");
        *self.nets.write().unwrap_or_else(PoisonError::into_inner) = nets;
        Ok(())
    }

    /// Whether `ip` may be dialled, refreshing the list once if it seems not.
    async fn allows(&self, ip: IpAddr) -> bool {
        if self.holds(ip) {
            return true;
        }
        let stale = self
            .refreshed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|at| at.elapsed() >= REFRESH_AT_MOST_EVERY);
        if stale && let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "could not refresh the private networks");
        }
        self.holds(ip)
    }

    fn describe(&self) -> String {
        let nets = self.nets.read().unwrap_or_else(PoisonError::into_inner);
        if nets.is_empty() {
            "none".into()
        } else {
            nets.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// A private-network stream: resolve the destination here (names are resolved on the
/// connector's side), dial the first address inside a routed network, bridge.
pub(super) async fn serve(
    networks: &PrivateNetworks,
    req: Request<ProxyBody>,
) -> Response<ProxyBody> {
    let Some(destination) = req
        .headers()
        .get(&DESTINATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return connector_error(
            StatusCode::BAD_REQUEST,
            ConnectorError::BadDestination,
            "the stream names no destination".into(),
        );
    };
    let addresses: Vec<SocketAddr> = match tokio::net::lookup_host(destination.as_str()).await {
        Ok(found) => found.collect(),
        Err(e) => {
            return connector_error(
                StatusCode::BAD_GATEWAY,
                ConnectorError::DestinationUnresolved,
                format!("{destination} could not be resolved: {e}"),
            );
        }
    };
    let mut allowed = None;
    for address in addresses {
        if networks.allows(address.ip()).await {
            allowed = Some(address);
            break;
        }
    }
    let Some(address) = allowed else {
        tracing::info!(%destination, "refused a private-network destination outside the tunnel's routes");
        return connector_error(
            StatusCode::FORBIDDEN,
            ConnectorError::DestinationNotRouted,
            format!(
                "{destination} is not inside the networks routed to this tunnel ({})",
                networks.describe()
            ),
        );
    };
    let settings = OriginRequest::default();
    match tcp::dial(&address.to_string(), settings.connect_timeout).await {
        Ok(tcp) => tcp::accept_websocket(req, tcp),
        Err(e) => origin_failure(&destination, &settings, &e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A control plane that routes one documentation network and counts its answers.
    #[derive(Default)]
    struct Routes(AtomicUsize);

    impl NetworkSource for Routes {
        fn networks(&self) -> Pin<Box<dyn Future<Output = Result<Vec<IpNet>, Error>> + Send + '_>> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Box::pin(async { Ok(vec![IpNet::parse("192.0.2.0/24")?]) })
        }
    }

    #[tokio::test]
    async fn a_miss_asks_the_source_at_most_once_a_second() {
        let networks = PrivateNetworks::default();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(
            !networks.allows(loopback).await,
            "no source, nothing routed"
        );

        let routes = Arc::new(Routes::default());
        networks.set_source(routes.clone());
        assert!(networks.allows("192.0.2.7".parse().unwrap()).await);
        assert!(!networks.allows(loopback).await);
        assert!(!networks.allows(loopback).await);
        assert_eq!(routes.0.load(Ordering::Relaxed), 1);
        assert_eq!(networks.describe(), "192.0.2.0/24");
        // IPv4-mapped IPv6 is compared as IPv4.
        assert!(networks.allows("::ffff:192.0.2.9".parse().unwrap()).await);
    }
}
