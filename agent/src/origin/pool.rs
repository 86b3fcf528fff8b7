//! Keep-alive HTTP/1.1 connections to one origin, for one worker (see `rules`): the
//! connector's own pool, where hyper-util's general one hashed a key on every checkout and
//! return and spawned a task per request to take the connection back.
//!
//! A connection goes back to the pool when the answer's body has been read to its end and
//! hyper is ready for the next request on it; one that is not ready yet (a request body
//! still streaming, say) goes back once it is. The newest idle connection is taken first.
//! Idle connections older than `keepAliveTimeout` are closed; at most
//! `keepAliveConnections` are kept. A request that a kept connection closed under it
//! before it was written (the origin timed the connection out) goes on a fresh one.

use std::{
    pin::Pin,
    sync::{Arc, Mutex, PoisonError, Weak},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::{
    body::{Body, Frame, Incoming, SizeHint},
    client::conn::http1::SendRequest,
};
use tower::ServiceExt;
use tracing::Instrument;

use super::{
    body::{BoxError, ProxyBody, incoming},
    http::DialTimeout,
};
use crate::Error;

/// The connections of one `http://` or `https://` rule on one worker.
pub(super) struct Http1Pool {
    dial: DialTimeout,
    /// `scheme://host:port` of the origin: what `dial` connects to.
    target: Uri,
    max_idle: usize,
    idle_timeout: Duration,
    idle: Mutex<Idle>,
}

#[derive(Default)]
struct Idle {
    /// Oldest first.
    connections: Vec<IdleConnection>,
    /// Whether a task is closing the connections that outstay `idle_timeout`.
    reaping: bool,
}

struct IdleConnection {
    sender: SendRequest<ProxyBody>,
    since: Instant,
}

impl Http1Pool {
    pub(super) fn new(
        dial: DialTimeout,
        target: Uri,
        max_idle: usize,
        idle_timeout: Duration,
    ) -> Self {
        Self {
            dial,
            target,
            max_idle,
            idle_timeout,
            idle: Mutex::default(),
        }
    }

    /// Sends `request` (origin-form URI, Host set) on a kept connection or a new one. The
    /// answer's body gives the connection back when it ends; an upgraded connection is
    /// never given back.
    pub(super) async fn send(
        self: &Arc<Self>,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, BoxError> {
        loop {
            let (mut sender, reused) = match self.take() {
                Some(sender) => (sender, true),
                // Boxed: the dial and handshake would otherwise size every stream's
                // future, which is moved into its task whole.
                None => (Box::pin(self.open()).await?, false),
            };
            match sender.try_send_request(request).await {
                // The origin takes the connection over: never given back.
                Ok(response) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                    return Ok(response.map(incoming));
                }
                // Nothing to read (HEAD, 204, an empty body): the body is never polled.
                Ok(response) if response.body().is_end_stream() => {
                    Arc::clone(self).give_back(sender);
                    return Ok(response.map(incoming));
                }
                Ok(response) => {
                    let pool = Arc::downgrade(self);
                    return Ok(response.map(|body| {
                        Returning {
                            body,
                            connection: Some((sender, pool)),
                        }
                        .map_err(BoxError::from)
                        .boxed_unsync()
                    }));
                }
                Err(mut e) => match e.take_message() {
                    // Never written: the kept connection had closed under it.
                    Some(unsent) if reused => {
                        tracing::debug!(error = %e.error(), "kept origin connection closed; sending on another");
                        request = unsent;
                    }
                    _ => return Err(e.into_error().into()),
                },
            }
        }
    }

    /// The newest idle connection still open and within its time, if any.
    fn take(&self) -> Option<SendRequest<ProxyBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(connection) = idle.connections.pop() {
            if connection.sender.is_ready() && connection.since.elapsed() < self.idle_timeout {
                return Some(connection.sender);
            }
        }
        None
    }

    async fn open(&self) -> Result<SendRequest<ProxyBody>, BoxError> {
        let io = self
            .dial
            .clone()
            .oneshot(self.target.clone())
            .await
            .map_err(Error::OriginDial)?;
        Ok(handshake(io).await?)
    }

    /// Keeps `sender` once hyper is ready to send on it again, unless the pool is full.
    fn give_back(self: Arc<Self>, mut sender: SendRequest<ProxyBody>) {
        if sender.is_ready() {
            self.keep(sender);
        } else if !sender.is_closed()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // Still busy (a request body streaming): kept when done, dropped if it closes.
            runtime.spawn(
                async move {
                    if sender.ready().await.is_ok() {
                        self.keep(sender);
                    }
                }
                .instrument(tracing::debug_span!("origin_connection_return")),
            );
        }
    }

    fn keep(self: Arc<Self>, sender: SendRequest<ProxyBody>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.connections.len() >= self.max_idle {
            return;
        }
        idle.connections.push(IdleConnection {
            sender,
            since: Instant::now(),
        });
        if !idle.reaping
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            idle.reaping = true;
            runtime.spawn(
                reap(Arc::downgrade(&self), self.idle_timeout)
                    .instrument(tracing::debug_span!("origin_pool_reaper")),
            );
        }
    }
}

/// Closes idle connections as they outstay `timeout`, until none are left (or the pool
/// is gone); the next connection kept starts it again.
async fn reap(pool: Weak<Http1Pool>, timeout: Duration) {
    let mut wait = timeout;
    loop {
        tokio::time::sleep(wait).await;
        let Some(pool) = pool.upgrade() else { return };
        let mut idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Dropping a sender closes its idle connection.
        idle.connections
            .retain(|c| c.since.elapsed() < timeout && !c.sender.is_closed());
        match idle.connections.first() {
            Some(oldest) => wait = timeout.saturating_sub(oldest.since.elapsed()),
            None => {
                idle.reaping = false;
                return;
            }
        }
    }
}

/// An HTTP/1.1 connection of our own on `io`, its driving task spawned (upgrades allowed).
pub(super) async fn handshake<IO>(io: IO) -> Result<SendRequest<ProxyBody>, hyper::Error>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(
        async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(error = %e, "origin connection ended with an error");
            }
        }
        .instrument(tracing::debug_span!("origin_connection")),
    );
    Ok(sender)
}

/// An answer's body that gives its connection back to the pool when it ends.
struct Returning {
    body: Incoming,
    connection: Option<(SendRequest<ProxyBody>, Weak<Http1Pool>)>,
}

impl Returning {
    fn give_back(&mut self) {
        if let Some((sender, pool)) = self.connection.take()
            && let Some(pool) = pool.upgrade()
        {
            pool.give_back(sender);
        }
    }
}

impl Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.give_back(),
            // A broken answer leaves its connection unusable: dropped with this body.
            Poll::Ready(Some(Err(_))) => self.connection = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use adit_core::ingress::OriginRequest;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
        sync::mpsc,
    };

    use super::*;
    use crate::origin::{body::empty, http::OriginClient};

    /// What the test origin saw of one connection.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Accepted,
        /// The pool closed it, after this many requests.
        ClosedByPool(usize),
    }

    /// An HTTP/1.1 origin on 127.0.0.1:0 answering every request `200 ok` (a `HEAD` or a
    /// path of `/empty` with no body), closing a connection itself after
    /// `close_after` requests; it reports each connection's accept and end.
    async fn origin(close_after: usize) -> (u16, mpsc::UnboundedReceiver<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (seen, events) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                seen.send(Seen::Accepted).unwrap();
                tokio::spawn(answer(socket, close_after, seen.clone()));
            }
        });
        (port, events)
    }

    async fn answer(mut socket: TcpStream, close_after: usize, seen: mpsc::UnboundedSender<Seen>) {
        let mut head = Vec::new();
        let mut answered = 0;
        let mut buf = [0u8; 1024];
        loop {
            let n = socket.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                let _ = seen.send(Seen::ClosedByPool(answered));
                return;
            }
            head.extend_from_slice(&buf[..n]);
            while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                let request = String::from_utf8_lossy(&head[..end]).into_owned();
                head.drain(..end + 4);
                let answer: &[u8] = if request.starts_with("HEAD") || request.contains(" /empty ") {
                    b"HTTP/1.1 204 No Content\r\n\r\n"
                } else {
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                };
                socket.write_all(answer).await.unwrap();
                answered += 1;
                if answered == close_after {
                    return;
                }
            }
        }
    }

    /// The origin's next event; a test that waits for one in vain fails, not hangs.
    async fn next(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Option<Seen> {
        tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .expect("the origin saw nothing within 10 s")
    }

    fn pool(port: u16, settings: &OriginRequest) -> Arc<Http1Pool> {
        let url = url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let tls = crate::origin::http::tls_config(&url, settings).unwrap();
        match crate::origin::http::client(&url, settings, tls).unwrap() {
            OriginClient::Http1(pool) => pool,
            OriginClient::Http2(_) => panic!("an HTTP/1 rule gets the HTTP/1 pool"),
        }
    }

    async fn get(pool: &Arc<Http1Pool>, path: &str) -> (StatusCode, Bytes) {
        let request = Request::builder()
            .uri(path)
            .header("host", "origin.test")
            .body(empty())
            .unwrap();
        let response = pool.send(request).await.unwrap();
        let status = response.status();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }

    #[tokio::test]
    async fn a_connection_is_kept_for_the_next_request_with_or_without_a_body() {
        let (port, mut seen) = origin(usize::MAX).await;
        let pool = pool(port, &OriginRequest::default());
        for path in ["/", "/empty", "/", "/empty"] {
            let (status, body) = get(&pool, path).await;
            let expected: &[u8] = if path == "/" { b"ok" } else { b"" };
            assert!(status.is_success());
            assert_eq!(body, expected);
        }
        drop(pool);
        assert_eq!(next(&mut seen).await, Some(Seen::Accepted));
        // The one connection served all four, and was closed with the pool.
        assert_eq!(next(&mut seen).await, Some(Seen::ClosedByPool(4)));
    }

    #[tokio::test]
    async fn a_connection_the_origin_closed_is_not_used_again() {
        let (port, mut seen) = origin(1).await;
        let pool = pool(port, &OriginRequest::default());
        for _ in 0..3 {
            assert_eq!(get(&pool, "/").await.1, "ok");
        }
        for _ in 0..3 {
            assert_eq!(next(&mut seen).await, Some(Seen::Accepted));
        }
    }

    #[tokio::test]
    async fn idle_connections_close_after_the_keep_alive_timeout() {
        let (port, mut seen) = origin(usize::MAX).await;
        let settings = OriginRequest {
            keep_alive_timeout: Duration::from_millis(50),
            ..OriginRequest::default()
        };
        let pool = pool(port, &settings);
        assert_eq!(get(&pool, "/").await.1, "ok");
        assert_eq!(next(&mut seen).await, Some(Seen::Accepted));
        // The pool lives on; its reaper closes the idle connection.
        assert_eq!(next(&mut seen).await, Some(Seen::ClosedByPool(1)));
        assert_eq!(get(&pool, "/").await.1, "ok");
        assert_eq!(next(&mut seen).await, Some(Seen::Accepted));
        assert_eq!(next(&mut seen).await, Some(Seen::ClosedByPool(1)));
    }

    #[tokio::test]
    async fn at_most_keep_alive_connections_stay_idle() {
        let (port, mut seen) = origin(usize::MAX).await;
        let settings = OriginRequest {
            keep_alive_connections: 1,
            ..OriginRequest::default()
        };
        let pool = pool(port, &settings);
        let request = || {
            Request::builder()
                .uri("/")
                .header("host", "origin.test")
                .body(empty())
                .unwrap()
        };
        // Two answers in flight at once need two connections.
        let first = pool.send(request()).await.unwrap();
        let second = pool.send(request()).await.unwrap();
        assert_eq!(next(&mut seen).await, Some(Seen::Accepted));
        assert_eq!(next(&mut seen).await, Some(Seen::Accepted));
        for response in [first, second] {
            assert_eq!(
                response.into_body().collect().await.unwrap().to_bytes(),
                "ok"
            );
        }
        // Only one is kept: the other is closed at once.
        assert_eq!(next(&mut seen).await, Some(Seen::ClosedByPool(1)));
        assert_eq!(get(&pool, "/").await.1, "ok");
        assert!(
            seen.try_recv().is_err(),
            "the kept connection served the third"
        );
    }

    #[tokio::test]
    async fn a_refused_dial_is_a_dial_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let pool = pool(port, &OriginRequest::default());
        let request = Request::builder().uri("/").body(empty()).unwrap();
        let error = pool.send(request).await.unwrap_err();
        let Some(Error::OriginDial(source)) = error.downcast_ref::<Error>() else {
            panic!("not a dial error: {error}");
        };
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&**source);
        let mut refused = false;
        while let Some(e) = cause {
            refused |= e
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
            cause = e.source();
        }
        assert!(refused, "{error}");
    }
}
