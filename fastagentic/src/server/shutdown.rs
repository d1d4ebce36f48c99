//! Serving until told to stop, then draining: stop accepting, let in-flight requests
//! finish within the deadline, cancel what is left.

use std::future::{Future, IntoFuture};
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
    hard_stop: CancellationToken,
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
