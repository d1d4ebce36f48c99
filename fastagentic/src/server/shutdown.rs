//! Serving until told to stop, then draining: stop accepting, let in-flight requests
//! finish within the deadline, cancel what is left.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ServeError;
use crate::metrics::Metrics;

/// How long runs cancelled at the deadline get to send their answer.
const CANCEL_GRACE: Duration = Duration::from_secs(1);

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("interrupt received; shutting down"),
        () = terminate => tracing::info!("SIGTERM received; shutting down"),
    }
}

/// What bounds the connections a server keeps (see [`App::header_read_timeout`] and
/// [`App::max_connections`]).
///
/// [`App::header_read_timeout`]: super::App::header_read_timeout
/// [`App::max_connections`]: super::App::max_connections
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionLimits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: 10_000,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then drains for at most
/// `deadline`; at the deadline `hard_stop` cancels the runs still going.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    deadline: Duration,
    hard_stop: HardStop,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
) -> Result<(), ServeError> {
    let mut http = auto::Builder::new(TokioExecutor::new());
    // The header timer also runs while a keep-alive connection waits for its next
    // request, so it bounds slow senders and idle connections alike.
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    http.http2().timer(TokioTimer::new());
    let http = Arc::new(http);
    let graceful = GracefulShutdown::new();
    let open = Arc::new(AtomicUsize::new(0));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    pause_after_accept_error(&err).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if open.load(Ordering::Acquire) >= limits.max_connections {
            metrics.connection_dropped("limit");
            drop(stream); // closed at once: the client learns now, not at its timeout
            continue;
        }
        // Small answers go out at once, not after Nagle's delay.
        let _ = stream.set_nodelay(true);
        let tracked = Tracked::new(&open, &metrics);
        let (http, router, watcher) = (http.clone(), router.clone(), graceful.watcher());
        tokio::spawn(async move {
            // Telling HTTP/1 from HTTP/2 reads the first bytes before hyper's header timer
            // runs: bound that wait too, or a silent connection is kept for ever.
            if !first_bytes_within(&stream, limits.header_read_timeout).await {
                tracked.metrics.connection_dropped("header_timeout");
                return;
            }
            let service = TowerToHyperService::new(router);
            let connection = http.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(err) = watcher.watch(connection.into_owned()).await {
                tracked.ended_with(&*err);
            }
        });
    }
    drop(listener);
    tracing::info!("no longer accepting connections; draining in-flight requests");
    let drained = graceful.shutdown();
    let mut drained = std::pin::pin!(drained);
    tokio::select! {
        () = &mut drained => Ok(()),
        () = tokio::time::sleep(deadline) => {
            tracing::warn!(
                deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                "the drain deadline passed; cancelling the requests still running"
            );
            hard_stop.cancel();
            if tokio::time::timeout(CANCEL_GRACE, &mut drained).await.is_err() {
                tracing::warn!("some connections did not close; leaving them");
            }
            Ok(())
        }
    }
}

/// Waits, for at most `limit`, until `stream`'s first bytes say which HTTP it speaks
/// (anything but the start of HTTP/2's preface is HTTP/1); `false` when they did not
/// come in time or the peer closed first.
async fn first_bytes_within(stream: &tokio::net::TcpStream, limit: Duration) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let decided = async {
        let mut head = [0_u8; PREFACE.len()];
        loop {
            match stream.peek(&mut head).await {
                Ok(0) | Err(_) => return false,
                Ok(n) if n == PREFACE.len() || head[..n] != PREFACE[..n] => return true,
                // Part of the preface: `peek` would answer at once again, so wait a little.
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    tokio::time::timeout(limit, decided).await.unwrap_or(false)
}

/// An accept that failed: a connection that died in the backlog is nothing, but running
/// out of file descriptors would spin the loop, so that waits a moment for some to close.
async fn pause_after_accept_error(err: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// One open connection, counted until it ends.
struct Tracked {
    open: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

impl Tracked {
    fn new(open: &Arc<AtomicUsize>, metrics: &Arc<Metrics>) -> Self {
        open.fetch_add(1, Ordering::AcqRel);
        metrics.connection_opened();
        Tracked {
            open: open.clone(),
            metrics: metrics.clone(),
        }
    }

    /// The connection failed: counted when it was the header timeout that closed it.
    fn ended_with(&self, err: &(dyn std::error::Error + 'static)) {
        let timed_out = err
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_timeout);
        if timed_out {
            self.metrics.connection_dropped("header_timeout");
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.metrics.connection_closed();
    }
}

/// Shards of parent tokens for [`HardStop`]: enough that two requests rarely share one.
const HARD_STOP_SHARDS: usize = 16;

/// Cancels every run still going when the drain deadline passes.
///
/// Each request's token is a child of one of several parents, picked round-robin: a
/// child token registers with its parent under the parent's lock, and one parent for
/// the whole server would put that lock in front of every request.
#[derive(Clone, Debug)]
pub(crate) struct HardStop {
    shards: Arc<[CancellationToken]>,
    next: Arc<AtomicUsize>,
}

impl HardStop {
    pub(crate) fn new() -> Self {
        HardStop {
            shards: (0..HARD_STOP_SHARDS)
                .map(|_| CancellationToken::new())
                .collect(),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A token for one request, cancelled with the others by [`HardStop::cancel`].
    pub(crate) fn child_token(&self) -> CancellationToken {
        let shard = self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len();
        self.shards[shard].child_token()
    }

    pub(crate) fn cancel(&self) {
        for shard in self.shards.iter() {
            shard.cancel();
        }
    }
}
