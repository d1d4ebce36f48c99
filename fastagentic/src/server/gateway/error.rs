//! Errors in OpenAI's shape, with the headers the official SDKs read to decide whether
//! and when to retry (the table is in the [module docs](super)).

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::error::{AgentError, ErrorClass, ErrorDetail};
use crate::reliability::RateLimitSnapshot;
use crate::server::status::{self, Refused, error_body, status_for};

/// `x-should-retry`: obeyed by the OpenAI and Anthropic SDKs before their own rules.
const SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");
/// `retry-after-ms`: read by the SDKs before `Retry-After`.
const RETRY_AFTER_MS: HeaderName = HeaderName::from_static("retry-after-ms");

/// The status of `err` at the front door: an endpoint's, but 400 where an endpoint
/// answers 422, as OpenAI does for a request it cannot serve.
pub(crate) fn status(err: &AgentError) -> StatusCode {
    match status_for(err) {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        status => status,
    }
}

/// OpenAI's `type` for a status.
fn kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// OpenAI's `code`: its own spelling where it has one, else our class.
fn code(err: &AgentError, status: StatusCode) -> &'static str {
    match err.class() {
        ErrorClass::RateLimit if status == StatusCode::TOO_MANY_REQUESTS => "rate_limit_exceeded",
        ErrorClass::ContextOverflow => "context_length_exceeded",
        ErrorClass::AuthError if status == StatusCode::UNAUTHORIZED => "invalid_api_key",
        class => class.as_str(),
    }
}

/// Whether a client should send the request again: only where waiting can help and
/// nothing here retried it already.
fn should_retry(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    )
}

/// The `{"error": {...}}` body: OpenAI's fields, then fastagentic's.
pub(crate) fn body(err: &AgentError, code_override: Option<&'static str>) -> Value {
    let status = status(err);
    let ours = match error_body(err) {
        Value::Object(mut map) => map.remove("error"),
        _ => None,
    };
    let mut e = Map::new();
    e.insert("message".into(), err.message().into());
    e.insert("type".into(), kind(status).into());
    e.insert(
        "code".into(),
        code_override.unwrap_or_else(|| code(err, status)).into(),
    );
    let param = match err.detail() {
        Some(ErrorDetail::InvalidInput { field }) if field != "." => Value::from(field.clone()),
        _ => Value::Null,
    };
    e.insert("param".into(), param);
    if let Some(Value::Object(ours)) = ours {
        for (key, value) in ours {
            e.entry(key).or_insert(value);
        }
    }
    serde_json::json!({ "error": e })
}

/// The whole answer to a failed request.
pub(crate) fn response(err: &AgentError, snapshot: Option<RateLimitSnapshot>) -> Response {
    with_body(err, snapshot, None)
}

/// The 404 for a `model` the gateway does not serve.
pub(crate) fn unknown_model(model: &str) -> Response {
    let err = AgentError::new(
        ErrorClass::NotFound,
        format!("the model `{model}` is not served here; `GET /v1/models` lists the models and routes that are"),
    )
    .with_detail(ErrorDetail::InvalidInput {
        field: "model".into(),
    });
    with_body(&err, None, Some("model_not_found"))
}

/// The answer to a request refused before it ran (unreadable body, unknown key).
pub(crate) fn refused(refused: &Refused) -> Response {
    let body = serde_json::json!({"error": {
        "message": refused.message,
        "type": kind(refused.status),
        "code": refused.class.as_str(),
        "param": Value::Null,
        "class": refused.class.as_str(),
    }});
    let mut response = (refused.status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(SHOULD_RETRY, HeaderValue::from_static("false"));
    response
}

fn with_body(
    err: &AgentError,
    snapshot: Option<RateLimitSnapshot>,
    code: Option<&'static str>,
) -> Response {
    // The endpoint answer brings `Retry-After` and `X-RateLimit-*`; status and body are ours.
    let (mut parts, _) = status::error_response(err, snapshot).into_parts();
    parts.status = status(err);
    let retry = should_retry(parts.status);
    parts.headers.insert(
        SHOULD_RETRY,
        HeaderValue::from_static(if retry { "true" } else { "false" }),
    );
    if retry && let Some(delay) = body_retry_after_ms(err) {
        parts
            .headers
            .insert(RETRY_AFTER_MS, HeaderValue::from(delay.max(1)));
    }
    Response::from_parts(parts, axum::body::Body::from(body(err, code).to_string()))
}

/// The delay the body reports, in milliseconds.
fn body_retry_after_ms(err: &AgentError) -> Option<u64> {
    match err.detail() {
        Some(ErrorDetail::RateLimited { retry_after, .. })
        | Some(ErrorDetail::CircuitOpen { retry_after, .. }) => {
            u64::try_from(retry_after.as_millis()).ok()
        }
        _ => err
            .retry_after()
            .and_then(|d| u64::try_from(d.as_millis()).ok()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::header;

    use super::*;
    use crate::reliability::{LimitScope, LimitType};

    #[test]
    fn a_limit_of_ours_tells_the_sdk_when_to_come_back() {
        let limited = AgentError::new(ErrorClass::RateLimit, "slow down").with_detail(
            ErrorDetail::RateLimited {
                limit_type: LimitType::Rpm,
                scope: LimitScope::User,
                current: 3,
                limit: 2,
                retry_after: Duration::from_millis(1_500),
            },
        );
        let answer = response(&limited, None);
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers()["x-should-retry"], "true");
        assert_eq!(answer.headers()["retry-after-ms"], "1500");
        assert_eq!(answer.headers()[header::RETRY_AFTER], "2");
        let body = body(&limited, None);
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(body["error"]["class"], "rate_limit");
        assert_eq!(body["error"]["param"], Value::Null);
    }

    #[test]
    fn an_upstream_failure_is_not_retried_again_by_the_client() {
        let failed = AgentError::new(ErrorClass::ServerError, "boom").with_provider("openai");
        let answer = response(&failed, None);
        assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(answer.headers()["x-should-retry"], "false");
        let invalid = AgentError::new(ErrorClass::InvalidInput, "bad").with_detail(
            ErrorDetail::InvalidInput {
                field: "messages".into(),
            },
        );
        assert_eq!(status(&invalid), StatusCode::BAD_REQUEST);
        assert_eq!(body(&invalid, None)["error"]["param"], "messages");
        assert_eq!(
            body(&invalid, None)["error"]["type"],
            "invalid_request_error"
        );
    }
}
