//! What the server's routes share: the app's settings and limiter, and one state per
//! served endpoint with its pipeline. The router and the SSE responder both read it.

use std::sync::Arc;

use super::identity::{Caller, IdentityConfig};
use super::route::Served;
use super::shutdown::HardStop;
use crate::metrics::Metrics;
use crate::reliability::rate_limit::SeenLimits;
use crate::reliability::{BreakerRegistry, Identity, Pipeline, RateLimitSnapshot, RateLimiter};

/// What every route of one app shares.
pub(crate) struct Shared {
    pub(crate) title: String,
    pub(crate) version: Option<String>,
    pub(crate) identity: IdentityConfig,
    pub(crate) global_limiter: Option<Arc<RateLimiter>>,
    /// Cancelled when the drain deadline passes: every run still going stops.
    pub(crate) hard_stop: HardStop,
    pub(crate) breakers: Arc<BreakerRegistry>,
    pub(crate) metrics: Arc<Metrics>,
}

/// One served endpoint and its pipeline.
pub(crate) struct EndpointState {
    pub(crate) served: Served,
    pub(crate) pipeline: Pipeline,
    pub(crate) shared: Arc<Shared>,
}

impl EndpointState {
    /// The caller's tightest request limit, across the app's and the endpoint's limiters
    /// (see [`rate_snapshot`]).
    pub(crate) fn rate_snapshot(
        &self,
        caller: &Caller,
        seen: &SeenLimits,
    ) -> Option<RateLimitSnapshot> {
        rate_snapshot(&self.shared, &self.pipeline, caller, seen)
    }
}

/// The caller's tightest request limit across the app's limiter and `pipeline`'s: as the
/// run's own admission left it (`seen`), else (a refused run) as it is now; `None` when
/// neither limits requests.
pub(crate) fn rate_snapshot(
    shared: &Shared,
    pipeline: &Pipeline,
    caller: &Caller,
    seen: &SeenLimits,
) -> Option<RateLimitSnapshot> {
    if let Some(admitted) = seen.get() {
        return Some(admitted);
    }
    let identity = Identity {
        user: caller.user.as_ref(),
        tenant: caller.tenant.as_ref(),
    };
    let global = (shared.global_limiter.as_deref()).and_then(|l| l.snapshot(identity));
    let own = pipeline.rate_limiter().and_then(|l| l.snapshot(identity));
    [global, own]
        .into_iter()
        .flatten()
        .min_by_key(|s| s.remaining)
}
