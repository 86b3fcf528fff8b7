//! The visitor's socket, watched.
//!
//! hyper's HTTP/1 parser accepts a request carrying both `Content-Length` and
//! `Transfer-Encoding: chunked`: it lets the chunked framing win and drops the length before
//! the service sees the head, so the edge cannot tell such a request from an honest chunked
//! one. That pair is the classic request-smuggling shape, and a proxy should refuse it
//! rather than guess (RFC 9112 §6.1). So this wrapper reads the bytes hyper reads, finds
//! each request head with the same parser (httparse), and notes per head whether its
//! framing was ambiguous; the service asks before forwarding.
//!
//! It also closes a connection that has sat idle — nothing read, no request in flight —
//! for the idle timeout, which hyper has no setting for.

use std::{
    collections::VecDeque,
    io,
    mem::MaybeUninit,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, ReadBuf},
    time::{Instant, Sleep},
};

/// What the watch shares with the service answering the connection's requests.
pub(crate) struct ConnState {
    /// One entry per HTTP/1 request head seen, in order: `true` when its framing is ambiguous.
    verdicts: Mutex<VecDeque<bool>>,
    /// Requests whose response has not finished; the connection is not idle while any are.
    in_flight: AtomicUsize,
    /// After an upgrade the bytes are no longer HTTP and idle time is the WebSocket's business.
    upgraded: AtomicBool,
    /// When bytes last arrived or the last response finished.
    last_activity: Mutex<Instant>,
}

/// What the scanner says about the next HTTP/1 request the service is handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Clear,
    /// `Content-Length` with `Transfer-Encoding`, or differing `Content-Length`s.
    Ambiguous,
    /// The scanner could not follow the stream up to this request.
    Unknown,
}

impl ConnState {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            verdicts: Mutex::new(VecDeque::new()),
            in_flight: AtomicUsize::new(0),
            upgraded: AtomicBool::new(false),
            last_activity: Mutex::new(Instant::now()),
        })
    }

    /// The verdict on the next request head, in the order hyper hands them out.
    pub(crate) fn next_framing(&self) -> Framing {
        let next = self
            .verdicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front();
        match next {
            Some(false) => Framing::Clear,
            Some(true) => Framing::Ambiguous,
            // The scanner lost its place (bytes it could not parse, or framing it does not
            // follow): a request after that point cannot be vouched for.
            None => Framing::Unknown,
        }
    }

    /// Counts a request in flight until the returned guard is dropped.
    pub(crate) fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard(self.clone())
    }

    pub(crate) fn mark_upgraded(&self) {
        self.upgraded.store(true, Ordering::Release);
    }

    fn touch(&self) {
        *self
            .last_activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn push(&self, ambiguous: bool) {
        self.verdicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(ambiguous);
    }
}

pub(crate) struct RequestGuard(Arc<ConnState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.touch();
        }
    }
}

/// Where the scanner is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// Body bytes to pass over, then `then`.
    Skip {
        left: u64,
        then: After,
    },
    ChunkSize,
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    /// Not following any more (after an ambiguous head, an upgrade's bytes, or garbage).
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Head,
    ChunkEnd,
}

enum Step {
    Consumed(usize),
    NeedMore,
}

/// Follows HTTP/1 framing just far enough to find each request head.
struct Scanner {
    state: State,
    /// Bytes of a head or chunk line not complete yet.
    buf: Vec<u8>,
    max_head: usize,
    max_headers: usize,
}

/// A chunk-size line longer than this is not one hyper would accept either.
const MAX_CHUNK_LINE: usize = 4096;

impl Scanner {
    fn new(max_head: usize, max_headers: usize) -> Self {
        Self {
            state: State::Head,
            buf: Vec::new(),
            max_head,
            max_headers,
        }
    }

    fn feed(&mut self, mut data: &[u8], conn: &ConnState) {
        // Body bytes are passed over where they lie; only heads and chunk lines are copied.
        while self.buf.is_empty() && !data.is_empty() {
            match self.state {
                State::Done => return,
                State::Skip { left, then } => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                    data = &data[n..];
                    self.skipped(left, n, then);
                }
                _ => break,
            }
        }
        if data.is_empty() || self.state == State::Done {
            return;
        }
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        while pos < self.buf.len() {
            match self.step(pos, conn) {
                Step::Consumed(n) => pos += n,
                Step::NeedMore => break,
            }
        }
        if self.state == State::Done {
            self.buf = Vec::new();
            return;
        }
        self.buf.drain(..pos);
        let limit = match self.state {
            State::Head | State::Trailers => self.max_head,
            _ => MAX_CHUNK_LINE,
        };
        if self.buf.len() > limit {
            // hyper refuses this too (431 or 400); nothing after it is a request.
            self.lose();
        }
    }

    fn skipped(&mut self, left: u64, n: usize, then: After) {
        let left = left.saturating_sub(n as u64);
        self.state = if left > 0 {
            State::Skip { left, then }
        } else {
            match then {
                After::Head => State::Head,
                After::ChunkEnd => State::ChunkEnd,
            }
        };
    }

    /// Stops following: what comes next is not something hyper will serve as a request.
    fn lose(&mut self) {
        self.state = State::Done;
        self.buf = Vec::new();
    }

    fn step(&mut self, pos: usize, conn: &ConnState) -> Step {
        let rest = &self.buf[pos..];
        match self.state {
            State::Done => Step::Consumed(rest.len()),
            State::Skip { left, then } => {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                self.skipped(left, n, then);
                Step::Consumed(n)
            }
            State::Head => {
                // Slots left uninitialised, on the stack for the usual limit: filling a
                // vector of `max_headers` for every head cost about as much as the parse.
                let mut inline = [MaybeUninit::<httparse::Header<'_>>::uninit(); INLINE_HEADERS];
                let mut spilled = Vec::new();
                let slots = if self.max_headers <= INLINE_HEADERS {
                    &mut inline[..self.max_headers]
                } else {
                    spilled.reserve_exact(self.max_headers);
                    &mut spilled.spare_capacity_mut()[..self.max_headers]
                };
                let mut req = httparse::Request::new(&mut []);
                match req.parse_with_uninit_headers(rest, slots) {
                    Ok(httparse::Status::Complete(n)) => {
                        let (ambiguous, next) = judge(&req);
                        conn.push(ambiguous);
                        self.state = next;
                        Step::Consumed(n)
                    }
                    Ok(httparse::Status::Partial) => Step::NeedMore,
                    Err(_) => {
                        self.state = State::Done;
                        Step::Consumed(rest.len())
                    }
                }
            }
            State::ChunkSize => match httparse::parse_chunk_size(rest) {
                Ok(httparse::Status::Complete((n, 0))) => {
                    self.state = State::Trailers;
                    Step::Consumed(n)
                }
                Ok(httparse::Status::Complete((n, size))) => {
                    self.state = State::Skip {
                        left: size,
                        then: After::ChunkEnd,
                    };
                    Step::Consumed(n)
                }
                Ok(httparse::Status::Partial) => Step::NeedMore,
                Err(_) => {
                    self.state = State::Done;
                    Step::Consumed(rest.len())
                }
            },
            State::ChunkEnd => match rest {
                [b'\r', b'\n', ..] => {
                    self.state = State::ChunkSize;
                    Step::Consumed(2)
                }
                [b'\r'] => Step::NeedMore,
                _ => {
                    self.state = State::Done;
                    Step::Consumed(rest.len())
                }
            },
            State::Trailers => {
                if rest.starts_with(b"\r\n") {
                    self.state = State::Head;
                    return Step::Consumed(2);
                }
                match rest.windows(4).position(|w| w == b"\r\n\r\n") {
                    Some(i) => {
                        self.state = State::Head;
                        Step::Consumed(i + 4)
                    }
                    None => Step::NeedMore,
                }
            }
        }
    }
}

/// Header slots the scanner keeps on the stack; a larger `max_headers` takes them from the heap.
const INLINE_HEADERS: usize = 128;

/// Whether a head's framing is ambiguous, and where its body ends.
fn judge(req: &httparse::Request<'_, '_>) -> (bool, State) {
    let mut length: Option<&[u8]> = None;
    let mut lengths_differ = false;
    let mut chunked = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            match length {
                Some(prev) if prev != h.value => lengths_differ = true,
                _ => length = Some(h.value),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // As hyper does: the last encoding named decides.
            let last = h.value.rsplit(|b| *b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    if lengths_differ || (length.is_some() && chunked.is_some()) {
        // hyper closes the connection after such a request; nothing more to follow.
        return (true, State::Done);
    }
    let next = match (chunked, length) {
        (Some(true), _) => State::ChunkSize,
        // hyper refuses a request whose last encoding is not chunked.
        (Some(false), _) => State::Done,
        (None, Some(value)) => match std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(0) => State::Head,
            Some(left) => State::Skip {
                left,
                then: After::Head,
            },
            // A list ("5, 5") or garbage: hyper decides; we stop following.
            None => State::Done,
        },
        (None, None) => State::Head,
    };
    (false, next)
}

/// A visitor's socket with the framing scanner and the idle timer on its read side.
pub(crate) struct Watched<IO> {
    io: IO,
    scanner: Scanner,
    conn: Arc<ConnState>,
    idle: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<IO> Watched<IO> {
    pub(crate) fn new(
        io: IO,
        conn: Arc<ConnState>,
        max_head: usize,
        max_headers: usize,
        idle: Duration,
    ) -> Self {
        Self {
            io,
            scanner: Scanner::new(max_head, max_headers),
            conn,
            idle,
            timer: None,
        }
    }

    /// Whether the connection has been idle for the whole timeout; arms the timer if not.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(self.idle)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let now = Instant::now();
            let busy = self.conn.in_flight.load(Ordering::Acquire) > 0
                || self.conn.upgraded.load(Ordering::Acquire);
            let deadline = if busy {
                now + self.idle
            } else {
                *self
                    .conn
                    .last_activity
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    + self.idle
            };
            if deadline <= now {
                return true;
            }
            timer.as_mut().reset(deadline);
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                if !fresh.is_empty() {
                    if !this.conn.upgraded.load(Ordering::Acquire) {
                        this.scanner.feed(fresh, &this.conn);
                    }
                    this.conn.touch();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if this.idle_expired(cx) {
                    tracing::debug!("visitor connection idle; closing");
                    // End of stream: hyper closes the connection as if the visitor had.
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

adit_transport::write_through!(Watched, io);

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(chunks: &[&[u8]]) -> (Vec<bool>, bool) {
        let conn = ConnState::new();
        let mut scanner = Scanner::new(64 * 1024, 100);
        for chunk in chunks {
            scanner.feed(chunk, &conn);
        }
        let v = conn.verdicts.lock().unwrap().iter().copied().collect();
        (v, scanner.state == State::Done)
    }

    #[test]
    fn follows_lengths_chunks_and_split_reads() {
        let stream: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
            POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n\
            GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(verdicts(&[stream]), (vec![false, false, false], false));
        // The same bytes one at a time.
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(verdicts(&bytes), (vec![false, false, false], false));
    }

    #[test]
    fn flags_length_with_chunked_and_differing_lengths() {
        let cl_te: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(verdicts(&[cl_te]).0, vec![true]);
        let te_cl: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(verdicts(&[te_cl]).0, vec![true]);
        let two: &[u8] =
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(verdicts(&[two]).0, vec![true]);
    }

    #[test]
    fn blank_lines_between_requests_are_tolerated() {
        // Some clients send a stray CRLF after a body; hyper skips it, so must we.
        let stream: &[u8] = b"POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\n\
            GET /b HTTP/1.1\r\n\r\n";
        assert_eq!(verdicts(&[stream]), (vec![false, false], false));
    }

    #[test]
    fn garbage_loses_the_place() {
        let (v, lost) = verdicts(&[b"GET / HTTP/1.1\r\n bad\r\n\r\n"]);
        assert!(v.is_empty());
        assert!(lost);
    }
}
