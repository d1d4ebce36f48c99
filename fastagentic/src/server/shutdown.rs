//! Serving until told to stop, then draining: stop accepting, let in-flight requests
//! finish within the deadline, cancel what is left.

use std::future::{Future, IntoFuture};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::ServeError;

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

/// Serves `router` on `listener` until `shutdown` completes, then drains for at most
/// `deadline`; at the deadline `hard_stop` cancels the runs still going.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    deadline: Duration,
    hard_stop: HardStop,
) -> Result<(), ServeError> {
    let draining = CancellationToken::new();
    let signal = {
        let draining = draining.clone();
        async move {
            shutdown.await;
            tracing::info!("no longer accepting connections; draining in-flight requests");
            draining.cancel();
        }
    };
    let server = axum::serve(listener, router.into_make_service())
        .with_graceful_shutdown(signal)
        .into_future();
    let mut server = std::pin::pin!(server);
    let expired = async {
        draining.cancelled().await;
        tokio::time::sleep(deadline).await;
    };
    tokio::select! {
        result = &mut server => result.map_err(ServeError::Serve),
        () = expired => {
            tracing::warn!(
                deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
                "the drain deadline passed; cancelling the requests still running"
            );
            hard_stop.cancel();
            match tokio::time::timeout(CANCEL_GRACE, &mut server).await {
                Ok(result) => result.map_err(ServeError::Serve),
                Err(_) => {
                    tracing::warn!("some connections did not close; leaving them");
                    Ok(())
                }
            }
        }
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
