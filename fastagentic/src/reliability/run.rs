//! One run's state: what its attempts and fallbacks share (its deadline, identity, token
//! count, output sink, spend and notes), and what every run of a pipeline shares.
//!
//! The pipeline makes a [`RunState`] per run; the [`AgentContext`](crate::AgentContext)
//! handed to the body and `ctx.llm()` read it, and the events it builds carry only a
//! handle to its notes.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::time::Instant;

use super::events::{EventData, EventKind, PipelineEvent, RunNotes, Sinks, Steering};
use super::timeout::TimeoutPolicy;
use crate::durable::Journal;
use crate::llm::{AgentStep, Completion, Prompt, Providers, StreamSink};
use crate::pricing::Pricing;
use crate::reliability::RetryPolicy;
use crate::spend::{CallRecord, Ledger, Spend};

const UNKNOWN_TOKENS: u64 = u64::MAX;

/// What every run of one pipeline shares: set once when the pipeline is built.
pub(crate) struct RunShared {
    pub(crate) endpoint: Arc<str>,
    pub(crate) timeouts: Arc<TimeoutPolicy>,
    pub(crate) providers: Option<Arc<Providers>>,
    pub(crate) pricing: Arc<Pricing>,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) sinks: Sinks,
    /// The kinds of event some sink wants ([`EventKind::bit`]s); others are never built.
    pub(crate) wanted: u32,
    pub(crate) max_attempts: u32,
    /// The endpoint's retry policy, which `ctx.tool` retries tool errors by.
    pub(crate) retry: RetryPolicy,
}

impl std::fmt::Debug for RunShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunShared")
            .field("endpoint", &self.endpoint)
            .field("listeners", &self.sinks.len())
            .finish_non_exhaustive()
    }
}

impl RunShared {
    /// Runs outside any pipeline: default timeouts, no listeners.
    pub(crate) fn detached() -> Arc<RunShared> {
        static DETACHED: std::sync::OnceLock<Arc<RunShared>> = std::sync::OnceLock::new();
        DETACHED
            .get_or_init(|| {
                Arc::new(RunShared {
                    endpoint: "".into(),
                    timeouts: Arc::new(TimeoutPolicy::default()),
                    providers: None,
                    pricing: crate::pricing::global().clone(),
                    ledger: crate::spend::ledger().clone(),
                    sinks: Arc::from(Vec::new()),
                    wanted: 0,
                    max_attempts: 1,
                    retry: RetryPolicy::none(),
                })
            })
            .clone()
    }
}

/// What one run shares across its attempts and fallbacks.
#[derive(Debug)]
pub(crate) struct RunState {
    pub(crate) run_id: u64,
    pub(crate) shared: Arc<RunShared>,
    pub(crate) started: Instant,
    pub(crate) deadline: Instant,
    pub(crate) user: Option<Arc<str>>,
    pub(crate) tenant: Option<Arc<str>>,
    tokens_used: AtomicU64,
    max_tokens: AtomicU32,
    chain_position: AtomicU32,
    /// What hooks keep about the run between its events (see `HookContext::metadata`).
    notes: OnceLock<Arc<RunNotes>>,
    /// Where the run's output goes as it is produced, when the caller streams it.
    stream: Option<StreamSink>,
    /// What the run spent; made on the first priced call unless the caller gave one.
    spend: OnceLock<Arc<Spend>>,
    /// Where each agent loop of the run got to, so that a retry or a fallback of the body
    /// continues the conversation instead of calling its tools again.
    loops: Mutex<Vec<LoopMemory>>,
    /// The journal, when the run is durable.
    journal: Option<Arc<Journal>>,
}

/// How far one agent loop got: the prompt it started from, the conversation since, and
/// its model calls.
#[derive(Clone, Debug)]
pub(crate) struct LoopMemory {
    pub(crate) start: Prompt,
    pub(crate) transcript: Prompt,
    pub(crate) steps: Vec<AgentStep>,
    /// The model's last answer, once the loop finished.
    pub(crate) answer: Option<Completion>,
}

impl RunState {
    pub(crate) fn new(
        shared: Arc<RunShared>,
        started: Instant,
        deadline: Instant,
        user: Option<Arc<str>>,
        tenant: Option<Arc<str>>,
    ) -> Self {
        static NEXT_RUN_ID: AtomicU64 = AtomicU64::new(1);
        RunState {
            run_id: NEXT_RUN_ID.fetch_add(1, Ordering::Relaxed),
            shared,
            started,
            deadline,
            user,
            tenant,
            tokens_used: AtomicU64::new(UNKNOWN_TOKENS),
            max_tokens: AtomicU32::new(0),
            chain_position: AtomicU32::new(0),
            notes: OnceLock::new(),
            stream: None,
            spend: OnceLock::new(),
            loops: Mutex::new(Vec::new()),
            journal: None,
        }
    }

    /// Makes the run durable: its steps go to `journal`.
    pub(crate) fn with_journal(mut self, journal: Option<Arc<Journal>>) -> Self {
        self.journal = journal;
        self
    }

    /// The journal, when the run is durable.
    pub(crate) fn journal(&self) -> Option<&Arc<Journal>> {
        self.journal.as_ref()
    }

    /// Where the loop that started from `start` got to in an earlier attempt, if anywhere.
    pub(crate) fn recall_loop(&self, start: &Prompt) -> Option<LoopMemory> {
        let loops = self.loops.lock().unwrap_or_else(PoisonError::into_inner);
        loops.iter().find(|l| l.start == *start).cloned()
    }

    /// Keeps where a loop got to, replacing what was kept of it before.
    pub(crate) fn remember_loop(&self, memory: LoopMemory) {
        let mut loops = self.loops.lock().unwrap_or_else(PoisonError::into_inner);
        match loops.iter_mut().find(|l| l.start == memory.start) {
            Some(kept) => *kept = memory,
            None => loops.push(memory),
        }
    }

    /// Sets where the run's output and spending go.
    pub(crate) fn with_output(
        mut self,
        stream: Option<StreamSink>,
        spend: Option<Arc<Spend>>,
    ) -> Self {
        self.stream = stream;
        if let Some(spend) = spend {
            self.spend = OnceLock::from(spend);
        }
        self
    }

    pub(crate) fn stream_sink(&self) -> Option<&StreamSink> {
        self.stream.as_ref()
    }

    pub(crate) fn spend(&self) -> &Arc<Spend> {
        self.spend.get_or_init(Default::default)
    }

    /// Records one LLM call's usage and cost in the run and in the pipeline's ledger.
    pub(crate) fn record_call(
        &self,
        model: &Arc<str>,
        provider: &str,
        usage: Option<crate::llm::Usage>,
        cost_usd: Option<rust_decimal::Decimal>,
    ) {
        let call = CallRecord {
            endpoint: &self.shared.endpoint,
            model,
            provider,
            user: self.user.as_deref(),
            tenant: self.tenant.as_deref(),
            usage,
            cost_usd,
        };
        self.spend().record(&call);
        self.shared.ledger.record(&call);
    }

    /// The run's timeouts.
    pub(crate) fn timeouts(&self) -> &TimeoutPolicy {
        &self.shared.timeouts
    }

    /// An event about this run on `model`, or `None` when no listener wants its kind.
    pub(crate) fn event(&self, kind: EventKind, model: &Arc<str>) -> Option<PipelineEvent> {
        if !self.listens_to(kind) {
            return None;
        }
        Some(PipelineEvent {
            kind,
            run_id: self.run_id,
            endpoint: self.shared.endpoint.clone(),
            model: model.clone(),
            attempt: 0,
            max_attempts: self.shared.max_attempts,
            error: None,
            user: self.user.clone(),
            tenant: self.tenant.clone(),
            data: EventData::None,
            steer: Steering::default(),
            notes: Some(self.notes.get_or_init(Default::default).clone()),
        })
    }

    /// Reports a `kind` event on `model` to the listeners, `fill` adding what this event
    /// knows, and hands back what they asked for. Nothing is built when nobody listens.
    pub(crate) async fn report(
        &self,
        kind: EventKind,
        model: &Arc<str>,
        fill: impl FnOnce(&mut PipelineEvent),
    ) -> Steering {
        let Some(mut event) = self.event(kind, model) else {
            return Steering::default();
        };
        fill(&mut event);
        self.emit(&mut event).await;
        event.steer
    }

    /// Whether any listener wants events of `kind`.
    pub(crate) fn listens_to(&self, kind: EventKind) -> bool {
        self.shared.wanted & kind.bit() != 0
    }

    /// Hands `event` to every listener, in order.
    pub(crate) async fn emit(&self, event: &mut PipelineEvent) {
        for sink in self.shared.sinks.iter() {
            sink.on_event(event).await;
        }
    }

    /// Tokens reported by the body, `None` if it reported none.
    pub(crate) fn tokens_used(&self) -> Option<u64> {
        match self.tokens_used.load(Ordering::Acquire) {
            UNKNOWN_TOKENS => None,
            n => Some(n),
        }
    }

    /// Adds a call's tokens to the run's count.
    pub(crate) fn add_tokens(&self, tokens: u64) {
        let _ = self
            .tokens_used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(match used {
                    UNKNOWN_TOKENS => tokens.min(UNKNOWN_TOKENS - 1),
                    n => n.saturating_add(tokens).min(UNKNOWN_TOKENS - 1),
                })
            });
    }

    /// Sets the tokens used so far, as the body reported them.
    pub(crate) fn record_tokens(&self, total: u64) {
        self.tokens_used
            .store(total.min(UNKNOWN_TOKENS - 1), Ordering::Release);
    }

    /// The `max_tokens` override, if set.
    pub(crate) fn max_tokens(&self) -> Option<u32> {
        match self.max_tokens.load(Ordering::Acquire) {
            0 => None,
            n => Some(n),
        }
    }

    /// Sets the `max_tokens` override; 0 clears it.
    pub(crate) fn set_max_tokens(&self, max_tokens: u32) {
        self.max_tokens.store(max_tokens, Ordering::Release);
    }

    /// Where in the fallback chain the run is (0: the primary).
    pub(crate) fn chain_position(&self) -> usize {
        self.chain_position.load(Ordering::Acquire) as usize
    }

    pub(crate) fn set_chain_position(&self, position: usize) {
        let position = u32::try_from(position).unwrap_or(u32::MAX);
        self.chain_position.store(position, Ordering::Release);
    }
}
