//! Who is calling and with what: the per-run input to [`Pipeline::run`](super::Pipeline::run).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::durable::Journal;
use crate::llm::StreamSink;
use crate::reliability::rate_limit::{Identity, SeenLimits};
use crate::spend::Spend;

/// Who is calling and with what, for one run.
#[derive(Clone, Debug, Default)]
pub struct RequestInfo {
    pub(super) user: Option<Arc<str>>,
    pub(super) tenant: Option<Arc<str>>,
    pub(super) estimated_tokens: Option<u32>,
    pub(super) cancel: Option<CancellationToken>,
    pub(super) stream: Option<StreamSink>,
    pub(super) spend: Option<Arc<Spend>>,
    pub(super) limits_seen: Option<Arc<SeenLimits>>,
    pub(super) journal: Option<Arc<Journal>>,
}

impl RequestInfo {
    /// An anonymous request.
    pub fn new() -> Self {
        RequestInfo::default()
    }

    /// Sets the user, for per-user limits.
    #[must_use]
    pub fn user(mut self, user: impl Into<Arc<str>>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the tenant, for per-tenant limits.
    #[must_use]
    pub fn tenant(mut self, tenant: impl Into<Arc<str>>) -> Self {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets the token estimate reserved against token limits.
    #[must_use]
    pub fn estimated_tokens(mut self, tokens: u32) -> Self {
        self.estimated_tokens = Some(tokens);
        self
    }

    /// Forwards the run's output to `sink` as it is produced: every event of every
    /// [`ctx.llm().stream(..)`](crate::llm::Llm::stream) the body reads, and whatever it
    /// sends with [`AgentContext::send`](crate::AgentContext::send). The server uses this to answer
    /// `text/event-stream`.
    ///
    /// Output that reached the sink cannot be taken back, so a stream that fails after
    /// it forwarded something is not retried: its error carries the partial output.
    #[must_use]
    pub fn stream_to(mut self, sink: StreamSink) -> Self {
        self.stream = Some(sink);
        self
    }

    /// Records what the run spends (tokens and dollars, per model) into `spend`, for the
    /// caller to read once the run is over.
    #[must_use]
    pub fn spend(mut self, spend: Arc<Spend>) -> Self {
        self.spend = Some(spend);
        self
    }

    /// Leaves the request limits as the run's own admission left them in `seen`: the
    /// server's `X-RateLimit-Remaining` for this caller, not a later read that may
    /// count concurrent requests too.
    #[must_use]
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // only the server reads it
    pub(crate) fn report_limits_to(mut self, seen: Arc<SeenLimits>) -> Self {
        self.limits_seen = Some(seen);
        self
    }

    /// Cancels the run (sleeps and calls stop at once) when `token` is cancelled.
    #[must_use]
    pub fn cancel_on(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Runs the body as a durable run whose steps go to `journal`.
    #[must_use]
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // only the server makes runs durable
    pub(crate) fn durable(mut self, journal: Arc<Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    pub(super) fn identity(&self) -> Identity<'_> {
        Identity {
            user: self.user.as_ref(),
            tenant: self.tenant.as_ref(),
        }
    }
}
