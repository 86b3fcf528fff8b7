//! Account-scoped change notices for live pages. The control plane raises one whenever a
//! tunnel, connector, connection or route changes; `GET /api/v1/events` streams each
//! account's own notices to its pages, which then re-read what they show.
//! [`ConfigEvents`] does the same for connectors watching a remote tunnel's configuration.

use adit_core::{
    api::{ChangeKind, ChangeNotice},
    ids::{AccountId, TunnelId},
};
use futures_util::Stream;
use tokio::{sync::broadcast, time::Instant};
use tokio_util::sync::CancellationToken;

/// Notices that may wait for a slow reader before it is told to resync instead.
const BACKLOG: usize = 256;

#[derive(Debug, Clone, Copy)]
struct Change {
    /// `None`: for every account.
    account: Option<AccountId>,
    notice: ChangeNotice,
}

/// One broadcast for all accounts: notices are tiny and rare next to the traffic, and each
/// stream keeps only its account's.
pub struct Changes {
    sender: broadcast::Sender<Change>,
    /// Cancelled when the server stops: open streams end, so the graceful shutdown of the
    /// API does not wait for them forever.
    closed: CancellationToken,
}

impl Default for Changes {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(BACKLOG).0,
            closed: CancellationToken::new(),
        }
    }
}

impl Changes {
    /// Tells the account's open streams that `tunnel` changed.
    pub fn notify(&self, account: AccountId, kind: ChangeKind, tunnel: TunnelId) {
        let change = Change {
            account: Some(account),
            notice: ChangeNotice {
                kind,
                tunnel: Some(tunnel),
            },
        };
        // An error only means that nobody is listening right now.
        let _ = self.sender.send(change);
    }

    /// Tells every open stream to re-read everything: changes may have been missed (this
    /// node lost the other nodes' notices for a while).
    pub fn resync_all(&self) {
        let change = Change {
            account: None,
            notice: ChangeNotice {
                kind: ChangeKind::Resync,
                tunnel: None,
            },
        };
        let _ = self.sender.send(change);
    }

    /// The account's notices from now until `until` (or until the server stops). A reader
    /// that falls more than [`BACKLOG`] behind gets one [`ChangeKind::Resync`] instead of
    /// what it missed.
    pub fn subscribe(
        &self,
        account: AccountId,
        until: Instant,
    ) -> impl Stream<Item = ChangeNotice> + Send + use<> {
        let state = (self.sender.subscribe(), self.closed.clone());
        futures_util::stream::unfold(state, move |(mut receiver, closed)| async move {
            loop {
                let received = tokio::select! {
                    () = closed.cancelled() => return None,
                    () = tokio::time::sleep_until(until) => return None,
                    received = receiver.recv() => received,
                };
                let notice = match received {
                    Ok(change) if change.account.is_none_or(|a| a == account) => change.notice,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => ChangeNotice {
                        kind: ChangeKind::Resync,
                        tunnel: None,
                    },
                    Err(broadcast::error::RecvError::Closed) => return None,
                };
                return Some((notice, (receiver, closed)));
            }
        })
    }

    /// Ends every stream (the server is stopping).
    pub fn close(&self) {
        self.closed.cancel();
    }
}

/// "Tunnel T's configuration changed", to every watcher on this node. Watchers re-read the
/// database on each event, so a lagging watcher that missed some just reads the latest.
pub(crate) struct ConfigEvents(broadcast::Sender<TunnelId>);

impl Default for ConfigEvents {
    fn default() -> Self {
        Self(broadcast::channel(64).0)
    }
}

impl ConfigEvents {
    pub(super) fn publish(&self, tunnel: TunnelId) {
        // No receiver means no connector is watching; nothing to tell.
        let _ = self.0.send(tunnel);
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<TunnelId> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::StreamExt;

    use super::*;

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn a_stream_gets_its_own_accounts_notices_only() {
        let changes = Changes::default();
        let (mine, theirs) = (AccountId::random(), AccountId::random());
        let (t1, t2) = (TunnelId::random(), TunnelId::random());
        let mut stream = Box::pin(changes.subscribe(mine, later()));
        changes.notify(theirs, ChangeKind::Tunnel, t2);
        changes.notify(mine, ChangeKind::Connection, t1);
        let notice = stream.next().await.unwrap();
        assert_eq!(notice.kind, ChangeKind::Connection);
        assert_eq!(notice.tunnel, Some(t1));
        changes.close();
        assert!(stream.next().await.is_none(), "closing ends the stream");
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_is_told_to_resync() {
        let changes = Changes::default();
        let account = AccountId::random();
        let mut stream = Box::pin(changes.subscribe(account, later()));
        for _ in 0..BACKLOG + 10 {
            changes.notify(account, ChangeKind::Route, TunnelId::random());
        }
        assert_eq!(stream.next().await.unwrap().kind, ChangeKind::Resync);
        assert_eq!(stream.next().await.unwrap().kind, ChangeKind::Route);
    }

    #[tokio::test]
    async fn a_resync_for_all_reaches_every_account() {
        let changes = Changes::default();
        let mut streams = [AccountId::random(), AccountId::random()]
            .map(|account| Box::pin(changes.subscribe(account, later())));
        changes.resync_all();
        for stream in &mut streams {
            assert_eq!(stream.next().await.unwrap().kind, ChangeKind::Resync);
        }
    }

    #[tokio::test]
    async fn a_stream_ends_at_its_deadline() {
        let changes = Changes::default();
        let until = Instant::now() + Duration::from_millis(50);
        let mut stream = Box::pin(changes.subscribe(AccountId::random(), until));
        assert!(stream.next().await.is_none());
    }
}
