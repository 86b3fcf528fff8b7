//! Node-to-node links of a cluster: how a node that holds no connection of a tunnel gets a
//! request to one that does. The dialling node opens TLS to the holder's tunnel listener
//! with ALPN `adit-node` (trusting the cluster's CA, as connectors do), proves it is a node
//! with a [`NodeHello`] (a key derived from the server key every node is given, so neither
//! a connector nor a visitor can open a link), and then speaks HTTP/2 as the client. Each
//! forwarded request is one stream, exactly as the edge would send it to a connector plus
//! [`HEADER_TUNNEL`]; the holder sends it on to one of its own connections ([`Relay`]) and
//! streams the connector's answer back untouched, so WebSocket and TCP streams (plain
//! bodies both ways) cross two nodes as they cross one.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, PoisonError},
    time::{Duration, Instant},
};

use adit_core::{
    ids::TunnelId,
    secret::Secret,
    wire::{self, HEADER_NODE_REFUSED, HEADER_TUNNEL, NodeHello},
};
use adit_transport::{
    frame::write_frame,
    tls::{EdgeTrust, client_config, link_socket, server_name},
};
use http::{HeaderValue, Request, Response};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::{
    Error,
    tunnel::{
        link::{self, LinkBody, LinkSender},
        registry::{BoxError, TunnelBody, can_resend, resendable},
    },
};

/// How long dialling another node may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times the holders are read for a request they refuse, and the pause between.
const REFUSED_ROUNDS: u32 = 3;
const REFUSED_PAUSE: Duration = Duration::from_millis(50);
/// How long the holders of a tunnel are taken from memory instead of the database (one
/// query per forwarded request cost a quarter of the forwarded rate).
const HOLDERS_FRESH: Duration = Duration::from_secs(1);
const MAX_REMEMBERED_TUNNELS: usize = 10_000;

/// What became of a request sent to another node.
pub enum Forwarded {
    /// The holder answered (the connector's answer, or its own error page).
    Answered(Response<LinkBody>),
    /// No other node holds a connection of the tunnel, or none could take the stream.
    NoHolder,
    /// A holder took the stream and the link failed under it.
    Failed(BoxError),
}

/// Sends a stream to another node holding a connection of its tunnel. The edge holds one
/// (on a shared database), and uses it when this node holds none.
pub trait Forward: Send + Sync + 'static {
    fn forward(
        &self,
        tunnel: TunnelId,
        request: Request<TunnelBody>,
    ) -> Pin<Box<dyn Future<Output = Forwarded> + Send + '_>>;
}

/// Takes a stream another node forwarded, on this node's connections only. The edge does.
pub trait Relay: Send + Sync + 'static {
    fn relay(
        &self,
        tunnel: TunnelId,
        request: Request<TunnelBody>,
    ) -> Pin<Box<dyn Future<Output = Response<TunnelBody>> + Send + '_>>;
}

/// Where other nodes hold connections: the control plane answers from the database.
pub trait Directory: Send + Sync + 'static {
    /// The link addresses (`host:port` of their tunnel listeners) of the other nodes with
    /// an open connection of `tunnel`.
    fn holders(&self, tunnel: TunnelId) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
}

/// This node's links to the others, opened on first use and kept.
pub struct NodeLinks<D> {
    directory: Arc<D>,
    /// The cluster's CA, which every node's tunnel certificate chains to.
    trust: EdgeTrust,
    proof: Secret,
    links: tokio::sync::Mutex<HashMap<String, LinkSender>>,
    /// The holders of each tunnel as the directory last said, and when: read again once
    /// older than [`HOLDERS_FRESH`], or when they failed a request.
    holders: std::sync::Mutex<HashMap<TunnelId, (Vec<String>, Instant)>>,
}

impl<D: Directory> NodeLinks<D> {
    pub fn new(directory: Arc<D>, trust: EdgeTrust, proof: Secret) -> Self {
        Self {
            directory,
            trust,
            proof,
            links: tokio::sync::Mutex::default(),
            holders: std::sync::Mutex::default(),
        }
    }

    /// The other nodes holding `tunnel`: from memory while fresh, unless `fresh` asks the
    /// directory again (the ones in memory failed a request).
    async fn holders(&self, tunnel: TunnelId, fresh: bool) -> Result<(Vec<String>, bool), Error> {
        let remembered = || {
            let holders = self.holders.lock().unwrap_or_else(PoisonError::into_inner);
            holders
                .get(&tunnel)
                .filter(|(_, read)| read.elapsed() < HOLDERS_FRESH)
                .map(|(addrs, _)| addrs.clone())
        };
        if !fresh && let Some(addrs) = remembered() {
            return Ok((addrs, true));
        }
        let addrs = self.directory.holders(tunnel).await?;
        let mut holders = self.holders.lock().unwrap_or_else(PoisonError::into_inner);
        // Tunnels come and go; the memory stays bounded without bookkeeping.
        if holders.len() >= MAX_REMEMBERED_TUNNELS {
            holders.clear();
        }
        holders.insert(tunnel, (addrs.clone(), Instant::now()));
        Ok((addrs, false))
    }

    /// The open link to `addr`, dialled when there is none (or it closed).
    async fn link(&self, addr: &str) -> Result<LinkSender, BoxError> {
        let mut links = self.links.lock().await;
        if let Some(link) = links.get(addr).filter(|l| !l.is_closed()) {
            return Ok(link.clone());
        }
        let link = tokio::time::timeout(DIAL_TIMEOUT, self.dial(addr))
            .await
            .map_err(|_| format!("dialling node {addr} timed out"))??;
        links.insert(addr.to_owned(), link.clone());
        Ok(link)
    }

    async fn dial(&self, addr: &str) -> Result<LinkSender, BoxError> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let connector = TlsConnector::from(client_config(&self.trust, wire::ALPN_NODE)?);
        let mut tls = connector
            .connect(server_name(host)?, link_socket(tcp))
            .await?;
        write_frame(
            &mut tls,
            &NodeHello {
                proof: self.proof.clone(),
            },
        )
        .await?;
        // Kept until it fails: a link to another node has no owner to close it.
        let (sender, driver) = link::handshake(tls, CancellationToken::new()).await?;
        let span = tracing::info_span!("node_link", node = %addr);
        tokio::spawn(
            async move {
                if let Err(e) = driver.await {
                    tracing::debug!(error = %e, "link to another node ended");
                }
            }
            .instrument(span),
        );
        Ok(sender)
    }
}

impl<D: Directory> Forward for NodeLinks<D> {
    fn forward(
        &self,
        tunnel: TunnelId,
        mut request: Request<TunnelBody>,
    ) -> Pin<Box<dyn Future<Output = Forwarded> + Send + '_>> {
        Box::pin(async move {
            if let Ok(value) = HeaderValue::from_str(&tunnel.to_string()) {
                request.headers_mut().insert(HEADER_TUNNEL, value);
            }
            // A holder refuses when its connections moved away since the holders were
            // read (a connector rebalancing, or holders remembered a moment too long): a
            // request without a body then goes to the next holder, and to those read
            // again.
            // A request with a body cannot be sent twice: it goes by the database's word.
            let sendable_twice = can_resend(&request);
            for round in 0..REFUSED_ROUNDS {
                let fresh = round > 0 || !sendable_twice;
                let (holders, remembered) = match self.holders(tunnel, fresh).await {
                    Ok(holders) => holders,
                    Err(e) => {
                        tracing::warn!(%tunnel, error = %e, "cannot tell which node holds the tunnel");
                        return Forwarded::NoHolder;
                    }
                };
                let mut refused = false;
                for addr in holders {
                    let link = match self.link(&addr).await {
                        Ok(link) => link,
                        Err(e) => {
                            tracing::debug!(node = %addr, error = %e, "cannot reach a node holding the tunnel");
                            continue;
                        }
                    };
                    let spare = resendable(&request);
                    match link.send(request).await {
                        Ok(response) if response.headers().contains_key(HEADER_NODE_REFUSED) => {
                            match spare {
                                Some(again) => {
                                    tracing::debug!(node = %addr, round, "the node no longer holds the tunnel; trying another");
                                    request = again;
                                    refused = true;
                                }
                                // Its connections closed meanwhile: this node answers as if
                                // none held one.
                                None => return Forwarded::NoHolder,
                            }
                        }
                        Ok(response) => return Forwarded::Answered(response),
                        Err(unsent) => match unsent.request {
                            // It never left: the next holder may take it.
                            Some(back) => request = back,
                            None => return Forwarded::Failed(unsent.error.into()),
                        },
                    }
                }
                // Holders from memory that took nothing are asked for again at once.
                if (!refused && !remembered) || round + 1 == REFUSED_ROUNDS {
                    break;
                }
                if refused {
                    // The connection that moved registers at its new node within moments.
                    tokio::time::sleep(REFUSED_PAUSE).await;
                }
            }
            Forwarded::NoHolder
        })
    }
}
