//! Errors as HTTP: the status of each [`ErrorClass`], the JSON body, and the
//! `Retry-After` / `X-RateLimit-*` headers.
//!
//! | Class | Status | Why |
//! |---|---|---|
//! | `invalid_input` | 422 | the input JSON has the wrong shape (the message names the field); a body that is not JSON at all is 400 |
//! | `context_overflow` | 422 | the input does not fit any model's context window; sending it again will not help |
//! | `content_policy` | 422 | the provider refused the content of the request |
//! | `request_too_large` | 413 | the request alone is over a token limit |
//! | `rate_limit` from our own limiter | 429 | with `Retry-After` and `X-RateLimit-Limit/Remaining/Reset` |
//! | `rate_limit` from the provider | 502 | the upstream throttled us after every retry and fallback (`retry_after_ms` in the body) |
//! | `quota_exceeded` | 502 | the provider account is out of credit |
//! | `timeout` | 504 | a deadline of ours, or the provider's, expired |
//! | `server_error`, `overloaded`, `connection_error`, `stream_interrupted` | 502 | the upstream failed after every retry and fallback |
//! | `auth_error`, `permission_denied` from a provider | 502 | the server's own credentials were refused: not the caller's fault |
//! | `auth_error` otherwise | 401 | a hook refused the caller, or the API key is unknown |
//! | `permission_denied` otherwise | 403 | a hook refused the caller |
//! | `not_found` from a provider | 502 | the provider does not know the model |
//! | `not_found` otherwise | 404 | the body said so, or no provider serves the model the caller named |
//! | `circuit_open` | 503 | with `Retry-After`: when the breaker will admit a probe |
//! | `connection_error` from the shared state store | 503 | the store that shares rate limits across replicas is unreachable and fails closed (`store` in the body, `Retry-After: 1`) |
//! | `cancelled` | 503 | the server cancelled the run (shutdown deadline, a hook); a client that went away sees nothing |
//! | `other` | 500 | |
//!
//! "From a provider" means the error carries the provider's name or an HTTP status
//! ([`AgentError::provider`], [`AgentError::status`]).
//!
//! The body is always
//! `{"error": {"class": "<class>", "message": "...", ...}}`, with, when they are known:
//! `retry_after_ms`, `model`, `provider`, `upstream_status`, `attempted` (the models or
//! strategies tried, in order), `partial` (`{"text"}`, what a broken stream had delivered),
//! and the class's details — `limit_type`, `scope`, `limit`, `current` for a rate limit;
//! `stage`, `elapsed_ms`, `limit_ms` for a timeout; `dependency`, `opened_at` for an open
//! circuit; `input_tokens`, `context_limit`, `requested_output` for a context overflow;
//! `field` (a path such as `items[2].name`, `.` for the whole input) for an input of the
//! wrong shape.

use std::time::{Duration, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::error::{AgentError, ErrorClass, ErrorDetail};
use crate::reliability::RateLimitSnapshot;

/// `X-RateLimit-Limit`.
pub const RATE_LIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`.
pub const RATE_LIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`: seconds until the limit is fully restored.
pub const RATE_LIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The HTTP status an error is answered with (see the [module](self) table).
pub fn status_for(err: &AgentError) -> StatusCode {
    let upstream = err.provider().is_some() || err.status().is_some();
    match err.class() {
        ErrorClass::InvalidInput | ErrorClass::ContextOverflow | ErrorClass::ContentPolicy => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorClass::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorClass::RateLimit if is_own_limit(err) => StatusCode::TOO_MANY_REQUESTS,
        ErrorClass::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorClass::CircuitOpen | ErrorClass::Cancelled => StatusCode::SERVICE_UNAVAILABLE,
        // Our own dependency, not the provider: the service is unavailable for now.
        ErrorClass::ConnectionError if is_state_store(err) => StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::AuthError if !upstream => StatusCode::UNAUTHORIZED,
        ErrorClass::PermissionDenied if !upstream => StatusCode::FORBIDDEN,
        ErrorClass::NotFound if !upstream => StatusCode::NOT_FOUND,
        ErrorClass::RateLimit
        | ErrorClass::QuotaExceeded
        | ErrorClass::ServerError
        | ErrorClass::Overloaded
        | ErrorClass::ConnectionError
        | ErrorClass::StreamInterrupted
        | ErrorClass::AuthError
        | ErrorClass::PermissionDenied
        | ErrorClass::NotFound => StatusCode::BAD_GATEWAY,
        // `ErrorClass` is non-exhaustive: a class added later answers like `other`
        // until it is given a status of its own.
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Whether one of our own rate limiters refused the request (not the provider).
fn is_own_limit(err: &AgentError) -> bool {
    matches!(err.detail(), Some(ErrorDetail::RateLimited { .. }))
}

fn is_state_store(err: &AgentError) -> bool {
    matches!(err.detail(), Some(ErrorDetail::StateStore { .. }))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds, rounded up: a client that waits this long is not refused again.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    let secs = d.as_secs();
    if d.subsec_nanos() > 0 {
        secs.saturating_add(1)
    } else {
        secs
    }
}

/// The `{"error": {...}}` body of `err` (see the [module](self) docs for the fields).
pub fn error_body(err: &AgentError) -> Value {
    let mut e = Map::new();
    e.insert("class".into(), err.class().as_str().into());
    e.insert("message".into(), err.message().into());
    if let Some(delay) = retry_after(err) {
        e.insert("retry_after_ms".into(), millis(delay).into());
    }
    if let Some(model) = err.model() {
        e.insert("model".into(), model.into());
    }
    if let Some(provider) = err.provider() {
        e.insert("provider".into(), provider.into());
    }
    if let Some(status) = err.status() {
        e.insert("upstream_status".into(), status.into());
    }
    if !err.attempted().is_empty() {
        let tried: Vec<Value> = err.attempted().iter().map(|m| (**m).into()).collect();
        e.insert("attempted".into(), tried.into());
    }
    if let Some(partial) = err.partial() {
        e.insert("partial".into(), json!({ "text": partial.text }));
    }
    match err.detail() {
        Some(ErrorDetail::RateLimited {
            limit_type,
            scope,
            current,
            limit,
            ..
        }) => {
            e.insert("limit_type".into(), limit_type.as_str().into());
            e.insert("scope".into(), scope.as_str().into());
            e.insert("limit".into(), (*limit).into());
            e.insert("current".into(), (*current).into());
        }
        Some(ErrorDetail::Timeout {
            stage,
            elapsed,
            limit,
        }) => {
            e.insert("stage".into(), stage.as_str().into());
            e.insert("elapsed_ms".into(), millis(*elapsed).into());
            e.insert("limit_ms".into(), millis(*limit).into());
        }
        Some(ErrorDetail::CircuitOpen {
            dependency,
            opened_at,
            ..
        }) => {
            e.insert("dependency".into(), (**dependency).into());
            if let Ok(since) = opened_at.duration_since(UNIX_EPOCH) {
                e.insert(
                    "opened_at".into(),
                    httpdate::fmt_http_date(*opened_at).into(),
                );
                e.insert("opened_at_ms".into(), millis(since).into());
            }
        }
        Some(ErrorDetail::ContextOverflow {
            input_tokens,
            context_limit,
            requested_output,
        }) => {
            e.insert("input_tokens".into(), json!(input_tokens));
            e.insert("context_limit".into(), json!(context_limit));
            e.insert("requested_output".into(), json!(requested_output));
        }
        Some(ErrorDetail::InvalidInput { field }) => {
            e.insert("field".into(), json!(field));
        }
        Some(ErrorDetail::StateStore { store }) => {
            e.insert("store".into(), json!(store));
        }
        _ => {}
    }
    json!({ "error": e })
}

/// The delay the client should wait, from the error's detail or its hints.
fn retry_after(err: &AgentError) -> Option<Duration> {
    match err.detail() {
        Some(ErrorDetail::RateLimited { retry_after, .. })
        | Some(ErrorDetail::CircuitOpen { retry_after, .. }) => Some(*retry_after),
        _ => err.retry_after(),
    }
}

fn header_number(n: u64) -> HeaderValue {
    HeaderValue::from(n)
}

/// Adds the `X-RateLimit-*` headers of `snapshot`.
pub(crate) fn insert_rate_headers(headers: &mut HeaderMap, snapshot: &RateLimitSnapshot) {
    headers.insert(RATE_LIMIT_LIMIT, header_number(snapshot.limit));
    headers.insert(RATE_LIMIT_REMAINING, header_number(snapshot.remaining));
    headers.insert(RATE_LIMIT_RESET, header_number(ceil_secs(snapshot.reset)));
}

/// The whole answer to a failed request: status, JSON body, and `Retry-After` /
/// `X-RateLimit-*` headers where they apply. `snapshot` is the caller's limit state, if
/// the endpoint has limits.
pub fn error_response(err: &AgentError, snapshot: Option<RateLimitSnapshot>) -> Response {
    let status = status_for(err);
    let mut response = (status, axum::Json(error_body(err))).into_response();
    let headers = response.headers_mut();
    let delay = retry_after(err);
    match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            if let Some(delay) = delay {
                // At least one second: `Retry-After: 0` invites a tight loop.
                headers.insert(header::RETRY_AFTER, header_number(ceil_secs(delay).max(1)));
            }
        }
        _ => {}
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let snapshot = match (err.detail(), snapshot) {
            // The refusing limit, unless the caller's tightest request limit says more.
            (
                Some(ErrorDetail::RateLimited {
                    limit, retry_after, ..
                }),
                snap,
            ) => {
                let own = RateLimitSnapshot {
                    limit: *limit,
                    remaining: 0,
                    reset: *retry_after,
                };
                match snap {
                    Some(snap) if snap.remaining == 0 && snap.reset >= *retry_after => snap,
                    _ => own,
                }
            }
            (_, Some(snap)) => snap,
            (_, None) => return response,
        };
        insert_rate_headers(headers, &snapshot);
    } else if let Some(snapshot) = snapshot {
        insert_rate_headers(headers, &snapshot);
    }
    response
}

/// A request refused before it ran (no key, a body that is not JSON, ...): answered in
/// the shape of the route that refused it.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) status: StatusCode,
    pub(crate) class: ErrorClass,
    pub(crate) message: String,
}

impl Refused {
    pub(crate) fn new(status: StatusCode, class: ErrorClass, message: impl Into<String>) -> Self {
        Refused {
            status,
            class,
            message: message.into(),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        plain_error(self.status, self.class, self.message)
    }
}

/// A response of our own making (not a run's error): `status` with a JSON error body of
/// `class` and `message`.
pub(crate) fn plain_error(
    status: StatusCode,
    class: ErrorClass,
    message: impl Into<String>,
) -> Response {
    let body = json!({ "error": { "class": class.as_str(), "message": message.into() } });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reliability::{LimitScope, LimitType};

    #[test]
    fn every_class_has_a_deliberate_status() {
        let own = |class| AgentError::new(class, "x");
        let upstream = |class| AgentError::new(class, "x").with_provider("openai");
        let cases = [
            (own(ErrorClass::InvalidInput), 422),
            (own(ErrorClass::ContextOverflow), 422),
            (own(ErrorClass::ContentPolicy), 422),
            (own(ErrorClass::RequestTooLarge), 413),
            (upstream(ErrorClass::RateLimit), 502),
            (upstream(ErrorClass::QuotaExceeded), 502),
            (own(ErrorClass::Timeout), 504),
            (upstream(ErrorClass::ServerError), 502),
            (upstream(ErrorClass::Overloaded), 502),
            (own(ErrorClass::ConnectionError), 502),
            (upstream(ErrorClass::StreamInterrupted), 502),
            (upstream(ErrorClass::AuthError), 502),
            (own(ErrorClass::AuthError), 401),
            (upstream(ErrorClass::PermissionDenied), 502),
            (own(ErrorClass::PermissionDenied), 403),
            (upstream(ErrorClass::NotFound), 502),
            (own(ErrorClass::NotFound), 404),
            (own(ErrorClass::CircuitOpen), 503),
            (own(ErrorClass::Cancelled), 503),
            (own(ErrorClass::Other), 500),
        ];
        for (err, status) in cases {
            assert_eq!(status_for(&err).as_u16(), status, "{err:?}");
        }
        let limited = AgentError::new(ErrorClass::RateLimit, "slow down").with_detail(
            ErrorDetail::RateLimited {
                limit_type: LimitType::Rpm,
                scope: LimitScope::Endpoint,
                current: 51,
                limit: 50,
                retry_after: Duration::from_millis(1_200),
            },
        );
        assert_eq!(status_for(&limited), StatusCode::TOO_MANY_REQUESTS);
        let response = error_response(&limited, None);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(response.headers()[RATE_LIMIT_LIMIT], "50");
        assert_eq!(response.headers()[RATE_LIMIT_REMAINING], "0");
        let body = error_body(&limited);
        assert_eq!(body["error"]["retry_after_ms"], 1_200);
        assert_eq!(body["error"]["limit_type"], "rpm");
    }

    #[test]
    fn rounds_seconds_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }
}
