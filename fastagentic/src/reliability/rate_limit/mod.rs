//! Rate limiting: requests and tokens per minute, for everyone, per endpoint, per user and
//! per tenant.
//!
//! Each limit is a GCRA cell (one `AtomicU64`, O(1) time); keyed limits keep one cell per
//! identity in a sharded map and sweep idle identities out. Tokens are reserved from an
//! estimate before the call and reconciled with the real usage after it. A limiter
//! shared through a [`StateStore`](crate::state::StateStore) keeps its cells there
//! instead (`shared`), taking every limit of a request in one round trip.

mod admit;
mod gcra;
mod shared;
mod store;

pub(crate) use self::admit::{admit, reconcile};

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use self::gcra::{Cell, Rate, Take};
use self::store::{Cells, KeyedCells};
use fastagentic_policy::keys::{Count, rate_limit as keys};

use super::PolicyError;
use crate::error::{AgentError, ErrorClass, ErrorDetail};

const MINUTE_NANOS: u64 = 60_000_000_000;

pub use fastagentic_policy::{LimitScope, LimitType, OnLimit};

/// The rate-limit settings of SPEC §3.2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RateLimitPolicyBuilder", into = "RateLimitPolicyBuilder")]
pub struct RateLimitPolicy {
    settings: RateLimitPolicyBuilder,
}

/// The settings of a [`RateLimitPolicy`] before validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitPolicyBuilder {
    requests_per_minute: Option<u32>,
    tokens_per_minute: Option<u32>,
    per_user_rpm: Option<u32>,
    per_user_tpm: Option<u32>,
    per_tenant_rpm: Option<u32>,
    per_tenant_tpm: Option<u32>,
    on_limit: OnLimit,
    queue_capacity: u32,
    token_estimate: u32,
}

impl Default for RateLimitPolicyBuilder {
    fn default() -> Self {
        RateLimitPolicyBuilder {
            requests_per_minute: None,
            tokens_per_minute: None,
            per_user_rpm: None,
            per_user_tpm: None,
            per_tenant_rpm: None,
            per_tenant_tpm: None,
            on_limit: OnLimit::Reject,
            queue_capacity: keys::DEFAULT_QUEUE_CAPACITY,
            token_estimate: keys::DEFAULT_TOKEN_ESTIMATE,
        }
    }
}

macro_rules! limit_setters {
    ($($(#[$doc:meta])* $name:ident,)+) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name(mut self, per_minute: u32) -> Self {
                self.$name = Some(per_minute);
                self
            }
        )+
    };
}

impl RateLimitPolicyBuilder {
    limit_setters! {
        /// Requests per minute for the whole scope (the endpoint, or the app).
        requests_per_minute,
        /// Tokens per minute for the whole scope.
        tokens_per_minute,
        /// Requests per minute for each user.
        per_user_rpm,
        /// Tokens per minute for each user.
        per_user_tpm,
        /// Requests per minute for each tenant.
        per_tenant_rpm,
        /// Tokens per minute for each tenant.
        per_tenant_tpm,
    }

    /// What happens to a request over a limit (default reject).
    #[must_use]
    pub fn on_limit(mut self, on_limit: OnLimit) -> Self {
        self.on_limit = on_limit;
        self
    }

    /// How many requests may wait at once in `queue` mode (default 64).
    #[must_use]
    pub fn queue_capacity(mut self, capacity: u32) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Tokens reserved for a request that brings no estimate of its own (default 1000).
    #[must_use]
    pub fn token_estimate(mut self, tokens: u32) -> Self {
        self.token_estimate = tokens;
        self
    }

    /// Validates the settings: no limit may be zero.
    pub fn build(self) -> Result<RateLimitPolicy, PolicyError> {
        for (key, value) in self.limits() {
            if let Some(value) = value {
                key.check(u64::from(value))?;
            }
        }
        keys::check_queue(self.on_limit, self.queue_capacity)?;
        Ok(RateLimitPolicy { settings: self })
    }

    fn limits(&self) -> [(Count, Option<u32>); 6] {
        [
            (keys::REQUESTS_PER_MINUTE, self.requests_per_minute),
            (keys::TOKENS_PER_MINUTE, self.tokens_per_minute),
            (keys::PER_USER_RPM, self.per_user_rpm),
            (keys::PER_USER_TPM, self.per_user_tpm),
            (keys::PER_TENANT_RPM, self.per_tenant_rpm),
            (keys::PER_TENANT_TPM, self.per_tenant_tpm),
        ]
    }
}

impl TryFrom<RateLimitPolicyBuilder> for RateLimitPolicy {
    type Error = PolicyError;

    fn try_from(builder: RateLimitPolicyBuilder) -> Result<Self, Self::Error> {
        builder.build()
    }
}

impl From<RateLimitPolicy> for RateLimitPolicyBuilder {
    fn from(policy: RateLimitPolicy) -> Self {
        policy.settings
    }
}

impl RateLimitPolicy {
    /// A builder with no limits set.
    pub fn builder() -> RateLimitPolicyBuilder {
        RateLimitPolicyBuilder::default()
    }

    /// What happens to a request over a limit.
    pub fn on_limit(&self) -> OnLimit {
        self.settings.on_limit
    }
}

/// One configured limit and its cells.
#[derive(Debug)]
struct Rule {
    limit_type: LimitType,
    scope: LimitScope,
    rate: Rate,
    cells: Cells,
}

/// Who is asking, for keyed limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct Identity<'a> {
    /// The user, if known.
    pub user: Option<&'a Arc<str>>,
    /// The tenant, if known.
    pub tenant: Option<&'a Arc<str>>,
}

/// Limit, remaining and reset of the tightest request limit, for `X-RateLimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RateLimitSnapshot {
    /// Requests allowed per minute.
    pub limit: u64,
    /// Requests left right now.
    pub remaining: u64,
    /// Time until the limit is fully restored.
    pub reset: Duration,
}

/// Where a run leaves the limits its admission saw, for the caller's `X-RateLimit-*`:
/// written once, after every limiter admitted the run.
#[derive(Debug, Default)]
pub(crate) struct SeenLimits(std::sync::OnceLock<RateLimitSnapshot>);

impl SeenLimits {
    /// The tightest of `admissions`' request limits.
    pub(crate) fn record<'a>(&self, admissions: impl IntoIterator<Item = &'a Admission<'a>>) {
        let tightest = (admissions.into_iter())
            .filter_map(Admission::snapshot)
            .min_by_key(|snapshot| snapshot.remaining);
        if let Some(tightest) = tightest {
            let _ = self.0.set(tightest);
        }
    }

    /// What the admission saw, if the run was admitted by a request limit.
    #[cfg_attr(not(feature = "server"), allow(dead_code))] // only the server reads it
    pub(crate) fn get(&self) -> Option<RateLimitSnapshot> {
        self.0.get().copied()
    }
}

/// A live rate limiter for one scope (an endpoint, or the whole app).
#[derive(Debug)]
pub struct RateLimiter {
    rules: Vec<Rule>,
    on_limit: OnLimit,
    queue_capacity: u32,
    waiting: AtomicU32,
    token_estimate: u32,
    epoch: Instant,
    /// Where the cells live when every replica shares them; `None`: in `rules`.
    shared: Option<shared::Sharing>,
}

/// Tokens and requests taken for one run; reconcile the tokens with
/// [`Admission::reconcile`] once the real usage is known.
#[derive(Debug)]
#[must_use = "an admission reconciles reserved tokens when the run ends"]
pub struct Admission<'a> {
    limiter: &'a RateLimiter,
    identity: Identity<'a>,
    tokens: u64,
    /// The tightest request limit as this admission left it.
    snapshot: Option<Noted<'a>>,
    /// Dropped before the run was admitted: hand everything back.
    armed: bool,
    /// Where the units were taken: refunds and reconciling go back there.
    backend: Backend,
}

/// What an admission saw of its tightest request limit. A local cell's state is kept
/// raw: turning it into "requests left" costs a 64-bit division (tens of nanoseconds,
/// more than the rest of an admission), paid only if someone reads the snapshot, or when
/// two rules must be compared. Both variants are three words, borrowing the rule's rate
/// rather than copying it, because an admission is returned by value on every request
/// and copying it out is a measurable share of the check.
#[derive(Clone, Copy, Debug)]
enum Noted<'a> {
    /// A local cell right after its take.
    Cell { rate: &'a Rate, tat: u64, now: u64 },
    /// What a shared store reported.
    Known {
        limit: u64,
        remaining: u64,
        reset_nanos: u64,
    },
}

impl Noted<'_> {
    fn snapshot(self) -> RateLimitSnapshot {
        let (limit, remaining, reset_nanos) = match self {
            Noted::Cell { rate, tat, now } => (
                rate.limit(),
                rate.remaining(tat, now),
                tat.saturating_sub(now),
            ),
            Noted::Known {
                limit,
                remaining,
                reset_nanos,
            } => (limit, remaining, reset_nanos),
        };
        RateLimitSnapshot {
            limit,
            remaining,
            reset: Duration::from_nanos(reset_nanos),
        }
    }
}

/// Where an [`Admission`] took its units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// The limiter's own in-memory cells.
    Local,
    /// The shared store.
    Shared,
}

impl RateLimiter {
    /// A limiter enforcing `policy`; `scope` says who shares the totals
    /// (`requests_per_minute`, `tokens_per_minute`): [`LimitScope::Endpoint`] for an
    /// endpoint's own limiter, [`LimitScope::Global`] for one shared by the whole app.
    pub fn new(policy: &RateLimitPolicy, scope: LimitScope) -> Self {
        let s = &policy.settings;
        let sweep_every = MINUTE_NANOS;
        let specs = [
            (s.requests_per_minute, LimitType::Rpm, scope),
            (s.tokens_per_minute, LimitType::Tpm, scope),
            (s.per_user_rpm, LimitType::Rpm, LimitScope::User),
            (s.per_user_tpm, LimitType::Tpm, LimitScope::User),
            (s.per_tenant_rpm, LimitType::Rpm, LimitScope::Tenant),
            (s.per_tenant_tpm, LimitType::Tpm, LimitScope::Tenant),
        ];
        let rules = specs
            .into_iter()
            .filter_map(|(limit, limit_type, scope)| {
                let limit = limit?;
                let cells = match scope {
                    LimitScope::User | LimitScope::Tenant => {
                        Cells::Keyed(KeyedCells::new(sweep_every))
                    }
                    LimitScope::Global | LimitScope::Endpoint => Cells::Single(Cell::default()),
                };
                Some(Rule {
                    limit_type,
                    scope,
                    rate: Rate::new(u64::from(limit), MINUTE_NANOS),
                    cells,
                })
            })
            .collect();
        RateLimiter {
            rules,
            on_limit: s.on_limit,
            queue_capacity: s.queue_capacity,
            waiting: AtomicU32::new(0),
            token_estimate: s.token_estimate,
            epoch: Instant::now(),
            shared: None,
        }
    }

    /// Whether any limit is configured.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Admits one request now, reserving `tokens` (or the policy's estimate), waiting
    /// according to `on_limit` but never past `deadline`.
    ///
    /// Refusals are `rate_limit` errors with [`ErrorDetail::RateLimited`]; a token
    /// estimate larger than a whole minute's limit is `request_too_large`.
    pub async fn admit<'a>(
        &'a self,
        identity: Identity<'a>,
        tokens: Option<u32>,
        deadline: Instant,
    ) -> Result<Admission<'a>, AgentError> {
        if self.is_shared() {
            let shared = shared::admit([Some(self), None], identity, tokens, deadline).await?;
            if let shared::Shared::Admitted([Some(admission), _]) = shared {
                return Ok(admission.commit());
            }
        }
        self.reserve_local(identity, tokens, Instant::now(), deadline)?
            .wait()
            .await
    }

    /// Admits one request now or refuses it, never waiting, whatever `on_limit` says.
    /// It always decides on the in-memory cells: a limiter shared through a store needs
    /// a round trip, which [`RateLimiter::admit`] makes.
    pub fn try_admit<'a>(
        &'a self,
        identity: Identity<'a>,
        tokens: Option<u32>,
    ) -> Result<Admission<'a>, AgentError> {
        self.try_admit_at(identity, tokens, Instant::now())
    }

    /// [`RateLimiter::try_admit`] at a time the caller has already read, so a request
    /// that passes several limiters reads the clock once.
    pub fn try_admit_at<'a>(
        &'a self,
        identity: Identity<'a>,
        tokens: Option<u32>,
        now: Instant,
    ) -> Result<Admission<'a>, AgentError> {
        let admission = self.take_all(identity, tokens, self.nanos(now), 0, |_, _| {})?;
        Ok(admission.commit())
    }

    /// Takes a slot at `now`, maybe one in the future (`delay` and `queue` modes); the
    /// caller waits for it with [`Reservation::wait`] unless it is due already.
    pub(crate) fn reserve_local<'a>(
        &'a self,
        identity: Identity<'a>,
        tokens: Option<u32>,
        now: Instant,
        deadline: Instant,
    ) -> Result<Reservation<'a>, AgentError> {
        let max_wait = match self.on_limit {
            OnLimit::Reject => 0,
            OnLimit::Delay | OnLimit::Queue => nanos(deadline.saturating_duration_since(now)),
        };
        let mut wait: Option<Wait<'a>> = None;
        let admission = self.take_all(
            identity,
            tokens,
            self.nanos(now),
            max_wait,
            |nanos, rule| {
                if wait.is_none_or(|longest| nanos > longest.nanos) {
                    wait = Some(Wait { nanos, rule });
                }
            },
        )?;
        Ok(Reservation { admission, wait })
    }

    /// Takes from every applicable rule; on a refusal hands back what was taken.
    ///
    /// Each rule whose slot lies in the future is reported to `on_wait` (its wait in
    /// nanoseconds, and the rule). The sink is generic rather than a returned
    /// `Option<Wait>` so the never-waiting path compiles the bookkeeping away and returns
    /// only the admission.
    fn take_all<'a>(
        &'a self,
        identity: Identity<'a>,
        tokens: Option<u32>,
        now: u64,
        max_wait: u64,
        mut on_wait: impl FnMut(u64, &'a Rule),
    ) -> Result<Admission<'a>, AgentError> {
        let tokens = u64::from(tokens.unwrap_or(self.token_estimate));
        let mut admission = Admission {
            limiter: self,
            identity,
            tokens,
            snapshot: None,
            armed: true,
            backend: Backend::Local,
        };
        for (index, rule) in self.rules.iter().enumerate() {
            let units = match rule.limit_type {
                LimitType::Rpm => 1,
                LimitType::Tpm => tokens,
            };
            let Some(take) = rule.with_cell(identity, now, |cell| {
                cell.take(rule.rate, now, units, max_wait)
            }) else {
                continue;
            };
            match take {
                Take::Taken { wait: w, tat } => {
                    if rule.limit_type == LimitType::Rpm {
                        admission.note(&rule.rate, tat, now);
                    }
                    if w > 0 {
                        on_wait(w, rule);
                    }
                }
                Take::Refused { wait } => {
                    admission.refund_first(index, now);
                    let remaining = rule
                        .with_cell(identity, now, |cell| cell.remaining(rule.rate, now))
                        .unwrap_or(0);
                    return Err(rule.refusal(remaining, units, wait));
                }
                Take::TooLarge => {
                    admission.refund_first(index, now);
                    return Err(rule.too_large(units));
                }
            }
        }
        Ok(admission)
    }

    /// Takes a place in the waiting line (`queue` mode only); refuses when it is full.
    fn enter_queue(&self, rule: &Rule, wait: u64) -> Result<QueueSlot<'_>, AgentError> {
        if self.on_limit != OnLimit::Queue {
            return Ok(QueueSlot(None));
        }
        let entered = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.queue_capacity).then_some(n + 1)
            })
            .is_ok();
        if entered {
            return Ok(QueueSlot(Some(&self.waiting)));
        }
        let limit = rule.rate.limit();
        let retry_after = Duration::from_nanos(wait);
        Err(AgentError::new(
            ErrorClass::RateLimit,
            format!(
                "the rate-limit queue is full ({} waiting for the {} {} limit); retry in {} ms",
                self.queue_capacity,
                rule.scope.as_str(),
                rule.limit_type.as_str(),
                retry_after.as_millis()
            ),
        )
        .with_retry_after(retry_after)
        .with_detail(ErrorDetail::RateLimited {
            limit_type: rule.limit_type,
            scope: rule.scope,
            current: limit,
            limit,
            retry_after,
        }))
    }

    /// Limit, remaining and reset of the tightest request-per-minute rule for `identity`.
    ///
    /// `None` for a limiter shared through a store: its cells are not in this process
    /// (an admission's own [`Admission::snapshot`] still says what it saw).
    pub fn snapshot(&self, identity: Identity<'_>) -> Option<RateLimitSnapshot> {
        if self.shared.is_some() {
            return None;
        }
        let now = self.nanos(Instant::now());
        self.rules
            .iter()
            .filter(|rule| rule.limit_type == LimitType::Rpm)
            .filter_map(|rule| {
                let read = |cell: &Cell| (cell.remaining(rule.rate, now), cell.reset_in(now));
                let (remaining, reset) = match &rule.cells {
                    Cells::Single(cell) => read(cell),
                    // A keyed rule speaks only for identities it applies to; an identity
                    // without a cell has its whole allowance.
                    Cells::Keyed(keyed) => keyed
                        .get(rule.key(identity)?, read)
                        .unwrap_or((rule.rate.limit(), 0)),
                };
                Some(RateLimitSnapshot {
                    limit: rule.rate.limit(),
                    remaining,
                    reset: Duration::from_nanos(reset),
                })
            })
            .min_by_key(|snap| snap.remaining)
    }

    /// Drops the cells of users and tenants that are idle now. Runs by itself at most
    /// once a minute, when a new identity arrives; call it to sweep sooner.
    pub fn evict_idle(&self) {
        let now = self.nanos(Instant::now());
        for rule in &self.rules {
            if let Cells::Keyed(keyed) = &rule.cells {
                keyed.sweep(now);
            }
        }
    }

    /// Identities with live cells, across keyed rules.
    pub fn tracked_keys(&self) -> usize {
        self.rules
            .iter()
            .map(|rule| match &rule.cells {
                Cells::Keyed(keyed) => keyed.len(),
                Cells::Single(_) => 0,
            })
            .sum()
    }

    fn nanos(&self, now: Instant) -> u64 {
        nanos(now.saturating_duration_since(self.epoch))
    }
}

impl Rule {
    /// Runs `f` on this rule's cell for `identity`; `None` when the rule is keyed on an
    /// identity the request does not have.
    fn with_cell<R>(
        &self,
        identity: Identity<'_>,
        now: u64,
        f: impl FnOnce(&Cell) -> R,
    ) -> Option<R> {
        match &self.cells {
            Cells::Single(cell) => Some(f(cell)),
            Cells::Keyed(keyed) => Some(keyed.with(self.key(identity)?, now, f)),
        }
    }

    fn key<'a>(&self, identity: Identity<'a>) -> Option<&'a Arc<str>> {
        match self.scope {
            LimitScope::User => identity.user,
            LimitScope::Tenant => identity.tenant,
            LimitScope::Global | LimitScope::Endpoint => None,
        }
    }

    #[cold]
    #[inline(never)]
    fn refusal(&self, remaining: u64, units: u64, wait: u64) -> AgentError {
        let limit = self.rate.limit();
        let current = (limit - remaining.min(limit)).saturating_add(units);
        let retry_after = Duration::from_nanos(wait);
        AgentError::new(
            ErrorClass::RateLimit,
            format!(
                "{} {} limit of {} per minute reached; retry in {} ms",
                self.scope.as_str(),
                self.limit_type.as_str(),
                limit,
                retry_after.as_millis()
            ),
        )
        .with_retry_after(retry_after)
        .with_detail(ErrorDetail::RateLimited {
            limit_type: self.limit_type,
            scope: self.scope,
            current,
            limit,
            retry_after,
        })
    }

    #[cold]
    #[inline(never)]
    fn too_large(&self, units: u64) -> AgentError {
        AgentError::new(
            ErrorClass::RequestTooLarge,
            format!(
                "the request needs {units} tokens but the {} tpm limit is {} per minute",
                self.scope.as_str(),
                self.rate.limit()
            ),
        )
    }
}

impl<'a> Admission<'a> {
    /// Limit, remaining and reset of the tightest request limit right after this
    /// admission took its slot: what `X-RateLimit-*` should say to *this* caller (a later
    /// [`RateLimiter::snapshot`] may already count others). `None` when no request limit
    /// applied.
    pub fn snapshot(&self) -> Option<RateLimitSnapshot> {
        self.snapshot.map(Noted::snapshot)
    }

    /// Keeps the tighter of the noted snapshot and a rule's state after its take.
    fn note(&mut self, rate: &'a Rate, tat: u64, now: u64) {
        self.keep_tighter(Noted::Cell { rate, tat, now });
    }

    /// Keeps the tighter of the noted snapshot and `snapshot`.
    fn note_snapshot(&mut self, snapshot: RateLimitSnapshot) {
        self.keep_tighter(Noted::Known {
            limit: snapshot.limit,
            remaining: snapshot.remaining,
            reset_nanos: nanos(snapshot.reset),
        });
    }

    fn keep_tighter(&mut self, noted: Noted<'a>) {
        match self.snapshot {
            None => self.snapshot = Some(noted),
            Some(kept) if noted.snapshot().remaining < kept.snapshot().remaining => {
                self.snapshot = Some(noted);
            }
            Some(_) => {}
        }
    }

    #[cold]
    #[inline(never)]
    fn refund_first(&mut self, count: usize, now: u64) {
        let limiter = self.limiter;
        self.armed = false;
        if self.backend == Backend::Shared {
            let tokens = i64::try_from(self.tokens).unwrap_or(i64::MAX);
            limiter.adjust_shared(self.identity, |rule| match rule.limit_type {
                LimitType::Rpm => -1,
                LimitType::Tpm => -tokens,
            });
            return;
        }
        for rule in &limiter.rules[..count] {
            let units = match rule.limit_type {
                LimitType::Rpm => 1,
                LimitType::Tpm => self.tokens,
            };
            rule.with_cell(self.identity, now, |cell| {
                cell.refund(rule.rate, now, units)
            });
        }
    }

    /// Stops the admission from handing its slot back when dropped.
    pub(crate) fn commit(mut self) -> Self {
        self.armed = false;
        self
    }

    /// Makes the admission hand its slot back if dropped before [`Admission::commit`].
    pub(crate) fn armed(mut self) -> Self {
        self.armed = true;
        self
    }

    /// Hands back everything this admission took (the run never happened).
    pub fn release(mut self) {
        let now = self.limiter.nanos(Instant::now());
        self.refund_first(self.limiter.rules.len(), now);
    }

    /// Tokens reserved for this run.
    pub fn reserved_tokens(&self) -> u64 {
        self.tokens
    }

    /// Settles the token limits with the tokens the run really used: an over-estimate is
    /// refunded, an under-estimate charged.
    pub fn reconcile(self, used_tokens: u64) {
        if used_tokens == self.tokens {
            return;
        }
        let limiter = self.limiter;
        if self.backend == Backend::Shared {
            let delta = i128::from(used_tokens) - i128::from(self.tokens);
            let delta = i64::try_from(delta).unwrap_or(if delta < 0 { i64::MIN } else { i64::MAX });
            limiter.adjust_shared(self.identity, |rule| match rule.limit_type {
                LimitType::Rpm => 0,
                LimitType::Tpm => delta,
            });
            return;
        }
        let now = limiter.nanos(Instant::now());
        for rule in limiter
            .rules
            .iter()
            .filter(|r| r.limit_type == LimitType::Tpm)
        {
            rule.with_cell(self.identity, now, |cell| {
                if used_tokens < self.tokens {
                    cell.refund(rule.rate, now, self.tokens - used_tokens);
                } else {
                    cell.charge(rule.rate, now, used_tokens - self.tokens);
                }
            });
        }
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.armed {
            // Cancelled while waiting for its slot: give the slot back.
            let now = self.limiter.nanos(Instant::now());
            self.refund_first(self.limiter.rules.len(), now);
        }
    }
}

/// The longest wait any rule imposes on a reservation, and that rule.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wait<'a> {
    nanos: u64,
    rule: &'a Rule,
}

/// A slot taken, possibly in the future.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    admission: Admission<'a>,
    wait: Option<Wait<'a>>,
}

impl<'a> Reservation<'a> {
    /// The admission, if the slot is due now.
    pub(crate) fn ready(self) -> Result<Admission<'a>, Self> {
        match self.wait {
            None => Ok(self.admission.commit()),
            Some(_) => Err(self),
        }
    }

    /// Waits for the slot (in line, in `queue` mode). Dropping the future before the
    /// slot is due hands the slot back.
    pub(crate) async fn wait(self) -> Result<Admission<'a>, AgentError> {
        if let Some(wait) = self.wait {
            let limiter = self.admission.limiter;
            let _slot = limiter.enter_queue(wait.rule, wait.nanos)?;
            tokio::time::sleep(Duration::from_nanos(wait.nanos)).await;
        }
        Ok(self.admission.commit())
    }
}

/// A place in the `queue` mode's waiting line, released on drop.
struct QueueSlot<'a>(Option<&'a AtomicU32>);

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        if let Some(waiting) = self.0 {
            waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// `d` in nanoseconds, saturating (at 584 years). Done in `u64` rather than through
/// `as_nanos`'s `u128`, since every check converts its clock reading this way.
fn nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

#[cfg(test)]
mod tests;
