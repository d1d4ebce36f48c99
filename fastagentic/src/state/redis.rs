//! [`RedisStore`]: rate-limit cells in Redis, one script per admission.

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use super::{
    BreakerOp, CellAdjust, CellState, CellTake, FailMode, FleetBreaker, StateStore, StoreError,
    TakeOutcome,
};
use crate::reliability::CircuitState;

const NAME: &str = "redis";

/// The environment variable [`App`](crate::App) reads a Redis URL from when it was given
/// no store in code.
pub const REDIS_URL_ENV: &str = "FASTAGENTIC_REDIS_URL";

/// Rate-limit cells in Redis, shared by every replica that points at the same server.
///
/// One multiplexed connection per store (the `redis` crate's `ConnectionManager`, which
/// reconnects by itself); each admission is one `EVALSHA` of a GCRA script that reads
/// Redis's own clock (`TIME`), checks every limit that applies and takes from all of them
/// or none. The script is loaded on first use and again when Redis answers `NOSCRIPT`
/// (after a restart or `SCRIPT FLUSH`). Every key carries the hash tag `{prefix}`, so in
/// a Redis Cluster one script's keys live on one node.
///
/// ```no_run
/// use std::time::Duration;
/// use fastagentic::state::{FailMode, RedisStore};
///
/// # fn main() -> Result<(), fastagentic::state::StoreError> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .timeout(Duration::from_millis(100))
///     .fail_mode(FailMode::Closed)
///     .prefix("support-bot")
///     .build()?;
/// # let _ = store; Ok(()) }
/// ```
pub struct RedisStore {
    client: Client,
    config: ConnectionManagerConfig,
    /// Made on first use, inside the runtime that uses it: the store itself can be built
    /// anywhere, `main` before the runtime included.
    connection: tokio::sync::OnceCell<ConnectionManager>,
    take: Script,
    adjust: Script,
    breaker: Script,
    timeout: Duration,
    fail_mode: FailMode,
    prefix: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("fail_mode", &self.fail_mode)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`RedisStore`].
#[derive(Clone, Debug)]
pub struct RedisStoreBuilder {
    url: String,
    timeout: Duration,
    fail_mode: FailMode,
    prefix: String,
}

impl RedisStoreBuilder {
    /// How long one operation (connecting included) may take before it fails with
    /// [`StoreError::Timeout`] (default 250 ms).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What replicas do while Redis is unreachable (default [`FailMode::Open`]).
    #[must_use]
    pub fn fail_mode(mut self, fail_mode: FailMode) -> Self {
        self.fail_mode = fail_mode;
        self
    }

    /// The first part of every key, and its Cluster hash tag (default `fastagentic`).
    /// Apps that share one Redis but not their limits need different prefixes.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The store. It connects on first use, so Redis may start after the app; a URL that
    /// cannot be parsed, a zero timeout or an empty prefix fails here.
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let invalid = |message: String| StoreError::Unavailable {
            store: NAME,
            message,
        };
        if self.timeout.is_zero() {
            return Err(invalid(
                "the timeout is zero: every operation would fail; give it at least a few \
                 milliseconds (e.g. 100 ms on a local network)"
                    .into(),
            ));
        }
        if self.prefix.is_empty() || self.prefix.contains(['{', '}']) {
            return Err(invalid(format!(
                "the key prefix {:?} cannot be used: it must be non-empty and without braces \
                 (it becomes the keys' hash tag)",
                self.prefix
            )));
        }
        let client = Client::open(self.url.as_str()).map_err(|err| {
            invalid(format!(
                "{:?} is not a Redis URL ({err}); write it as redis://host:port/db",
                self.url
            ))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            // Reconnects are retried on the next request, not in a loop here: a request
            // waits at most one timeout whatever Redis is doing.
            .set_number_of_retries(1)
            .set_max_delay(self.timeout);
        Ok(RedisStore {
            client,
            config,
            connection: tokio::sync::OnceCell::new(),
            take: Script::new(include_str!("take.lua")),
            adjust: Script::new(include_str!("adjust.lua")),
            breaker: Script::new(include_str!("breaker.lua")),
            timeout: self.timeout,
            fail_mode: self.fail_mode,
            prefix: self.prefix,
        })
    }
}

impl RedisStore {
    /// Settings for a store at `url` (`redis://host:port/db`, `rediss://` for TLS).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            timeout: Duration::from_millis(250),
            fail_mode: FailMode::Open,
            prefix: "fastagentic".into(),
        }
    }

    /// A store at [`REDIS_URL_ENV`] with the default settings; `None` when it is unset.
    pub fn from_env() -> Option<Result<RedisStore, StoreError>> {
        let url = std::env::var(REDIS_URL_ENV).ok()?;
        Some(RedisStore::builder(url).build())
    }

    fn key(&self, key: &str) -> String {
        format!("{{{}}}:{key}", self.prefix)
    }

    /// The connection, made lazily (it connects on its first command).
    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let made = self
            .connection
            .get_or_try_init(|| async {
                ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
            })
            .await;
        made.cloned().map_err(|err| StoreError::Unavailable {
            store: NAME,
            message: err.to_string(),
        })
    }

    /// Runs `script`, bounded by the store's timeout.
    async fn run(&self, script: &redis::ScriptInvocation<'_>) -> Result<Vec<i64>, StoreError> {
        let mut connection = self.connection().await?;
        match tokio::time::timeout(self.timeout, script.invoke_async(&mut connection)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(err)) if err.is_timeout() => Err(StoreError::Timeout {
                store: NAME,
                timeout: self.timeout,
            }),
            Ok(Err(err)) => Err(StoreError::Unavailable {
                store: NAME,
                message: err.to_string(),
            }),
            Err(_) => Err(StoreError::Timeout {
                store: NAME,
                timeout: self.timeout,
            }),
        }
    }

    async fn take_cells(&self, takes: &[CellTake]) -> Result<TakeOutcome, StoreError> {
        let mut invocation = self.take.prepare_invoke();
        for take in takes {
            invocation
                .key(self.key(&take.key))
                .arg(take.limit)
                .arg(micros(take.window))
                .arg(take.units)
                .arg(micros(take.max_wait));
        }
        let reply = self.run(&invocation).await?;
        parse_take(&reply, takes.len())
    }

    async fn adjust_cells(&self, adjustments: &[CellAdjust]) -> Result<(), StoreError> {
        let mut invocation = self.adjust.prepare_invoke();
        for adjustment in adjustments {
            invocation
                .key(self.key(&adjustment.key))
                .arg(adjustment.limit)
                .arg(micros(adjustment.window))
                .arg(adjustment.units);
        }
        self.run(&invocation).await.map(drop)
    }
}

impl RedisStore {
    async fn breaker_op(&self, key: &str, op: BreakerOp) -> Result<FleetBreaker, StoreError> {
        let mut invocation = self.breaker.prepare_invoke();
        let key = self.key(key);
        invocation
            .key(&key)
            .key(format!("{key}:failures"))
            .key(format!("{key}:probes"));
        match op {
            BreakerOp::Failure {
                window,
                threshold,
                force,
                id,
            } => invocation
                .arg("fail")
                .arg(micros(window))
                .arg(threshold)
                .arg(u8::from(force))
                .arg(id),
            BreakerOp::Probe {
                reset_timeout,
                max_probes,
                lease,
                id,
            } => invocation
                .arg("probe")
                .arg(micros(reset_timeout))
                .arg(max_probes)
                .arg(micros(lease))
                .arg(id),
            BreakerOp::ProbeDone {
                generation,
                id,
                failed,
                success_threshold,
            } => invocation
                .arg("done")
                .arg(generation)
                .arg(id)
                .arg(match failed {
                    Some(true) => "failure",
                    Some(false) => "success",
                    None => "neutral",
                })
                .arg(success_threshold),
            BreakerOp::Read => invocation.arg("read"),
        };
        let reply = self.run(&invocation).await?;
        parse_breaker(&reply)
    }
}

impl StateStore for RedisStore {
    fn name(&self) -> &'static str {
        NAME
    }

    fn fail_mode(&self) -> FailMode {
        self.fail_mode
    }

    fn take<'a>(&'a self, takes: &'a [CellTake]) -> BoxFuture<'a, Result<TakeOutcome, StoreError>> {
        Box::pin(self.take_cells(takes))
    }

    fn adjust<'a>(
        &'a self,
        adjustments: &'a [CellAdjust],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.adjust_cells(adjustments))
    }

    fn breaker<'a>(
        &'a self,
        key: &'a str,
        op: BreakerOp,
    ) -> BoxFuture<'a, Result<FleetBreaker, StoreError>> {
        Box::pin(self.breaker_op(key, op))
    }
}

/// Reads the breaker script's reply (see `breaker.lua`).
fn parse_breaker(reply: &[i64]) -> Result<FleetBreaker, StoreError> {
    let unexpected = || StoreError::Protocol {
        store: NAME,
        answer: format!("{reply:?}"),
    };
    let &[state, since, generation, granted, retry_after] = reply else {
        return Err(unexpected());
    };
    let count = |n: i64| u64::try_from(n).map_err(|_| unexpected());
    let state = match state {
        0 => CircuitState::Closed,
        1 => CircuitState::Open,
        2 => CircuitState::HalfOpen,
        _ => return Err(unexpected()),
    };
    Ok(FleetBreaker {
        state,
        since_opened: Duration::from_micros(count(since)?),
        generation: count(generation)?,
        probe_granted: granted == 1,
        retry_after: Duration::from_micros(count(retry_after)?),
    })
}

/// Reads the take script's reply (see `take.lua`).
fn parse_take(reply: &[i64], cells: usize) -> Result<TakeOutcome, StoreError> {
    let unexpected = || StoreError::Protocol {
        store: NAME,
        answer: format!("{reply:?}"),
    };
    let count = |n: i64| u64::try_from(n).map_err(|_| unexpected());
    match reply {
        [1, states @ ..] if states.len() == 3 * cells => states
            .chunks_exact(3)
            .map(|state| {
                Ok(CellState {
                    wait: Duration::from_micros(count(state[0])?),
                    remaining: count(state[1])?,
                    reset: Duration::from_micros(count(state[2])?),
                })
            })
            .collect::<Result<_, _>>()
            .map(TakeOutcome::Taken),
        [0, index, wait, remaining] => Ok(TakeOutcome::Refused {
            index: usize::try_from(*index).map_err(|_| unexpected())?,
            wait: Duration::from_micros(count(*wait)?),
            remaining: count(*remaining)?,
        }),
        _ => Err(unexpected()),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_or_named() {
        let taken = parse_take(&[1, 0, 49, 1_200_000], 1).unwrap();
        assert_eq!(
            taken,
            TakeOutcome::Taken(vec![CellState {
                wait: Duration::ZERO,
                remaining: 49,
                reset: Duration::from_millis(1200),
            }])
        );
        let refused = parse_take(&[0, 1, 600_000, 0], 2).unwrap();
        assert!(matches!(
            refused,
            TakeOutcome::Refused {
                index: 1,
                remaining: 0,
                ..
            }
        ));
        let wrong = parse_take(&[1, 0, 49], 1).unwrap_err();
        assert!(wrong.to_string().contains("[1, 0, 49]"), "{wrong}");
    }

    #[test]
    fn a_store_is_built_outside_a_runtime_and_connects_on_first_use() {
        let store = RedisStore::builder("redis://127.0.0.1:1").build();
        assert!(store.is_ok(), "{store:?}");
    }

    #[test]
    fn bad_settings_fail_at_build_naming_the_fix() {
        let zero = RedisStore::builder("redis://127.0.0.1:1")
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert!(zero.to_string().contains("timeout is zero"), "{zero}");
        let url = RedisStore::builder("http://nope").build().unwrap_err();
        assert!(url.to_string().contains("redis://host:port"), "{url}");
        let prefix = RedisStore::builder("redis://127.0.0.1:1")
            .prefix("{x}")
            .build()
            .unwrap_err();
        assert!(prefix.to_string().contains("hash tag"), "{prefix}");
    }
}
