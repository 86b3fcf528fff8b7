//! A runtime per core for the data plane. Each worker is a thread running its own
//! single-threaded tokio runtime; a connection is handed to one worker and everything it
//! spawns (HTTP/2 streams, origin requests, relays) runs on that worker's thread. The edge
//! then prefers a tunnel connection on the visitor's own worker, so a request crosses no
//! thread inside a process: on a small host the wake-ups between threads of a work-stealing
//! runtime were a quarter of the CPU per request (bench/README.md, issue 14).
//!
//! `ADIT_WORKERS=N` sets the number of workers (default: one per core, at most
//! [`MAX_WORKERS`]); `ADIT_WORKERS=0` runs the data plane on the main runtime, as before.

use std::cell::Cell;
use std::future::Future;
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// More workers than this only add idle threads: a tunnel holds a few connections.
pub const MAX_WORKERS: usize = 16;

thread_local! {
    /// The index of the worker this thread is, if it is one.
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The index of the worker running the caller, `None` on any other thread.
pub fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// How many workers a process runs: `ADIT_WORKERS` if set, else one per core.
pub fn configured() -> usize {
    std::env::var("ADIT_WORKERS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .min(MAX_WORKERS)
}

/// The workers of one server or connector. Dropping it stops them; tasks still running on
/// them are dropped with their runtimes.
pub struct Workers {
    handles: Vec<Handle>,
    _stop: DropGuard,
}

impl Workers {
    /// Starts `count` workers named `{name}-{index}` (none: tasks go to the caller's runtime).
    pub fn start(count: usize, name: &str) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || {
                    CURRENT.with(|current| current.set(Some(index)));
                    runtime.block_on(stop.cancelled());
                })?;
        }
        Ok(Self {
            handles,
            _stop: stop.drop_guard(),
        })
    }

    /// Workers as `ADIT_WORKERS` (or the cores) say.
    pub fn start_configured(name: &str) -> std::io::Result<Self> {
        Self::start(configured(), name)
    }

    pub fn count(&self) -> usize {
        self.handles.len()
    }

    /// The runtime of worker `index` (modulo their number); the caller's own without workers.
    pub fn handle(&self, index: usize) -> Handle {
        if self.handles.is_empty() {
            return Handle::current();
        }
        self.handles[index % self.handles.len()].clone()
    }
}

/// Where one listener's connections go: each new one to the worker holding the fewest of
/// them now. Counted per listener, so the edge's visitors and a connector's data
/// connections each spread evenly however their accepts interleave: with one counter
/// shared by every listener, a tunnel's data connections could all land on one worker,
/// and every request of a visitor on another crossed threads (bench/README.md, issue 14).
pub struct Spread {
    live: Arc<[AtomicUsize]>,
}

/// One connection counted on its worker until dropped.
pub struct Placed {
    live: Arc<[AtomicUsize]>,
    worker: usize,
}

impl Spread {
    pub fn new(workers: &Workers) -> Self {
        Self {
            live: (0..workers.count().max(1))
                .map(|_| AtomicUsize::new(0))
                .collect(),
        }
    }

    /// The worker for a new connection (the lowest index among the least busy), counted
    /// there while the returned `Placed` lives.
    pub fn place(&self) -> Placed {
        let worker = (0..self.live.len())
            .min_by_key(|&i| self.live[i].load(Ordering::Relaxed))
            .unwrap_or(0);
        self.live[worker].fetch_add(1, Ordering::Relaxed);
        Placed {
            live: self.live.clone(),
            worker,
        }
    }
}

impl Placed {
    pub fn worker(&self) -> usize {
        self.worker
    }
}

impl Drop for Placed {
    fn drop(&mut self) {
        self.live[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
}

/// `serve(stream)`, with `stream` (accepted on another runtime) taken off that runtime's
/// reactor now and registered with the reactor of the runtime that runs the returned
/// future: spawned on a worker, the connection's wake-ups then stay on that worker.
pub fn moved<F, Fut>(
    stream: TcpStream,
    serve: F,
) -> std::io::Result<impl Future<Output = std::io::Result<()>> + Send + 'static>
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let stream = stream.into_std()?;
    Ok(async move {
        serve(TcpStream::from_std(stream)?).await;
        Ok(())
    })
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("count", &self.handles.len())
            .finish()
    }
}

/// One value per worker (an origin's connection pool, say), so that a task uses the one
/// of the worker it runs on and never wakes another worker's thread.
#[derive(Debug, Clone)]
pub struct PerWorker<T> {
    values: Vec<T>,
}

impl<T> PerWorker<T> {
    /// One value for each worker this process runs ([`configured`]), at least one.
    pub fn build<E>(mut make: impl FnMut() -> Result<T, E>) -> Result<Self, E> {
        let values = (0..configured().max(1))
            .map(|_| make())
            .collect::<Result<_, _>>()?;
        Ok(Self { values })
    }

    /// The caller's worker's value (the first one off the workers).
    pub fn get(&self) -> &T {
        let index = current().unwrap_or(0);
        &self.values[index % self.values.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_worker_they_are_given_and_stop_with_the_workers() {
        let workers = Workers::start(2, "test-worker").unwrap();
        assert_eq!(current(), None);
        for index in 0..4 {
            let ran_on = workers
                .handle(index)
                .spawn(async { current() })
                .await
                .unwrap();
            assert_eq!(ran_on, Some(index % 2));
        }
        // A task spawned from a worker stays on it.
        let nested = workers
            .handle(1)
            .spawn(async { tokio::spawn(async { current() }).await.unwrap() })
            .await
            .unwrap();
        assert_eq!(nested, Some(1));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let parked = workers.handle(0).spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await
        });
        drop(workers);
        // The worker's runtime dropped the parked task, and with it the sender.
        assert!(rx.await.is_err());
        assert!(parked.await.unwrap_err().is_cancelled());
    }

    /// Each listener's connections go to the worker holding the fewest of its live ones,
    /// whatever another listener placed; a connection that ends frees its place.
    #[test]
    fn spread_places_each_connection_on_the_least_busy_worker() {
        let workers = Workers::start(2, "test-spread").unwrap();
        let (visitors, tunnels) = (Spread::new(&workers), Spread::new(&workers));
        let first = visitors.place();
        let second = visitors.place();
        assert_eq!((first.worker(), second.worker()), (0, 1));
        // Another listener's placements do not skew this one's.
        let data: Vec<Placed> = (0..4).map(|_| tunnels.place()).collect();
        let on_zero = data.iter().filter(|p| p.worker() == 0).count();
        assert_eq!(on_zero, 2, "four data connections, two on each worker");
        let third = visitors.place();
        assert_eq!(third.worker(), 0, "a tie goes to the lowest index");
        drop(second);
        assert_eq!(visitors.place().worker(), 1, "worker 1 is least busy again");
    }

    #[tokio::test]
    async fn a_moved_connection_is_served_on_its_worker() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let workers = Workers::start(1, "test-worker").unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let serve = moved(accepted, |mut stream| async move {
            let worker = current().unwrap_or(99) as u8;
            let mut byte = [0];
            stream.read_exact(&mut byte).await.unwrap();
            stream.write_all(&[byte[0] + 1, worker]).await.unwrap();
        })
        .unwrap();
        let served = workers.handle(0).spawn(serve);
        client.write_all(&[41]).await.unwrap();
        let mut reply = [0; 2];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, [42, 0]);
        served.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn without_workers_tasks_run_on_the_callers_runtime() {
        let workers = Workers::start(0, "none").unwrap();
        assert_eq!(
            workers.handle(3).spawn(async { current() }).await.unwrap(),
            None
        );
    }
}
