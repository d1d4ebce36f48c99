//! Classification of a failed HTTP response: status, headers and the provider's error body.

use std::time::SystemTime;

use ::http::HeaderMap;
use serde_json::Value;

use super::hints::parse_proto_duration;
use super::{AgentError, ErrorClass, RetryHints};

/// The parts of a provider error envelope that classification needs.
///
/// OpenAI: `{"error": {"message", "type", "code"}}`; Anthropic:
/// `{"type": "error", "error": {"type", "message"}}`; Gemini:
/// `{"error": {"code", "status", "message", "details": [...]}}`, sometimes wrapped in a
/// one-element list.
#[derive(Default)]
struct Envelope {
    message: Option<String>,
    kind: Option<String>,
    code: Option<String>,
    status: Option<String>,
    reason: Option<String>,
    retry_delay: Option<std::time::Duration>,
    per_day_quota: bool,
}

pub(super) fn classify_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> AgentError {
    let envelope = parse_envelope(body);
    let class = class_from_envelope(&envelope).unwrap_or_else(|| class_from_status(status));
    let mut hints = RetryHints::from_headers(headers, now);
    hints.retry_after_body = envelope.retry_delay;
    let message = envelope
        .message
        .unwrap_or_else(|| format!("the provider answered HTTP {status}"));
    AgentError::new(class, message)
        .with_status(status)
        .with_hints(hints)
}

fn parse_envelope(body: &[u8]) -> Envelope {
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return Envelope::default();
    };
    if let Value::Array(items) = &mut value {
        if items.len() != 1 {
            return Envelope::default();
        }
        value = items.swap_remove(0);
    }
    let Some(error) = value.get("error") else {
        return Envelope::default();
    };
    let text = |key: &str| match error.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let mut envelope = Envelope {
        message: text("message"),
        kind: text("type"),
        code: text("code"),
        status: text("status"),
        ..Envelope::default()
    };
    if let Some(Value::Array(details)) = error.get("details") {
        read_google_details(details, &mut envelope);
    }
    envelope
}

/// Reads `google.rpc` detail entries by their `@type` suffix, never by position.
fn read_google_details(details: &[Value], envelope: &mut Envelope) {
    for detail in details {
        let Some(kind) = detail.get("@type").and_then(Value::as_str) else {
            continue;
        };
        if kind.ends_with(".ErrorInfo") {
            envelope.reason = detail
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_owned);
        } else if kind.ends_with(".RetryInfo") {
            envelope.retry_delay = detail
                .get("retryDelay")
                .and_then(Value::as_str)
                .and_then(parse_proto_duration);
        } else if kind.ends_with(".QuotaFailure") {
            envelope.per_day_quota |= has_per_day_violation(detail);
        }
    }
}

fn has_per_day_violation(quota_failure: &Value) -> bool {
    let Some(Value::Array(violations)) = quota_failure.get("violations") else {
        return false;
    };
    violations.iter().any(|v| {
        v.get("quotaId")
            .and_then(Value::as_str)
            .is_some_and(|id| id.contains("PerDay"))
    })
}

fn class_from_envelope(e: &Envelope) -> Option<ErrorClass> {
    use ErrorClass::*;
    if e.reason.as_deref() == Some("API_KEY_INVALID") {
        return Some(AuthError);
    }
    if e.per_day_quota {
        return Some(QuotaExceeded);
    }
    let by_code = e.code.as_deref().and_then(|code| match code {
        "insufficient_quota" => Some(QuotaExceeded),
        "context_length_exceeded" => Some(ContextOverflow),
        "rate_limit_exceeded" => Some(RateLimit),
        "invalid_api_key" => Some(AuthError),
        "content_filter" | "content_policy_violation" => Some(ContentPolicy),
        "model_not_found" => Some(NotFound),
        _ => None,
    });
    let by_type = || {
        e.kind.as_deref().and_then(|kind| match kind {
            "insufficient_quota" | "billing_error" => Some(QuotaExceeded),
            "rate_limit_error" => Some(RateLimit),
            "overloaded_error" => Some(Overloaded),
            "api_error" => Some(ServerError),
            "timeout_error" => Some(Timeout),
            "authentication_error" => Some(AuthError),
            "permission_error" => Some(PermissionDenied),
            "not_found_error" => Some(NotFound),
            "request_too_large" => Some(RequestTooLarge),
            "invalid_request_error" => Some(InvalidInput),
            _ => None,
        })
    };
    let by_google_status = || {
        e.status.as_deref().and_then(|status| match status {
            "RESOURCE_EXHAUSTED" => Some(RateLimit),
            "UNAVAILABLE" => Some(Overloaded),
            "INTERNAL" | "CANCELLED" => Some(ServerError),
            "DEADLINE_EXCEEDED" => Some(Timeout),
            "UNAUTHENTICATED" => Some(AuthError),
            "PERMISSION_DENIED" => Some(PermissionDenied),
            "NOT_FOUND" => Some(NotFound),
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => Some(InvalidInput),
            _ => None,
        })
    };
    by_code.or_else(by_type).or_else(by_google_status)
}

pub(super) fn class_from_status(status: u16) -> ErrorClass {
    use ErrorClass::*;
    match status {
        401 => AuthError,
        402 => QuotaExceeded,
        403 => PermissionDenied,
        404 => NotFound,
        408 => Timeout,
        // OpenAI's and Anthropic's SDKs treat 409 as a lock timeout worth retrying.
        409 => ServerError,
        413 => RequestTooLarge,
        429 => RateLimit,
        503 | 529 => Overloaded,
        504 => Timeout,
        500..=599 => ServerError,
        400..=499 => InvalidInput,
        _ => Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/llm-wire"
    );

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
    }

    fn classify(status: u16, body: &[u8]) -> AgentError {
        classify_response(status, &HeaderMap::new(), body, SystemTime::UNIX_EPOCH)
    }

    #[test]
    fn provider_fixtures() {
        let cases = [
            ("openai_429.json", 429, ErrorClass::RateLimit),
            (
                "openai_429_insufficient_quota.json",
                429,
                ErrorClass::QuotaExceeded,
            ),
            (
                "openai_context_length.json",
                400,
                ErrorClass::ContextOverflow,
            ),
            ("anthropic_529.json", 529, ErrorClass::Overloaded),
            (
                "anthropic_prompt_too_long.json",
                400,
                ErrorClass::InvalidInput,
            ),
            ("gemini_503.json", 503, ErrorClass::Overloaded),
            ("gemini_429.json", 429, ErrorClass::RateLimit),
            (
                "gemini_400_api_key_invalid.json",
                400,
                ErrorClass::AuthError,
            ),
        ];
        for (name, status, class) in cases {
            let err = classify(status, &fixture(name));
            assert_eq!(err.class(), class, "{name}: {err:?}");
            assert_eq!(err.status(), Some(status));
        }
    }

    #[test]
    fn gemini_retry_info_is_a_body_hint() {
        let err = classify(429, &fixture("gemini_429.json"));
        assert_eq!(err.hints().retry_after_body, Some(Duration::from_secs(53)));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(53)));
        let err = classify(429, &fixture("gemini_429_errorinfo.json"));
        assert_eq!(err.class(), ErrorClass::RateLimit);
        assert_eq!(err.retry_after(), None);
    }

    #[test]
    fn gemini_list_envelope_and_per_day_quota() {
        let body = br#"[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED",
            "details":[{"@type":"type.googleapis.com/google.rpc.Help"},
                       {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
                       {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"53.5s"}]}}]"#;
        let err = classify(429, body);
        assert_eq!(err.class(), ErrorClass::QuotaExceeded);
        assert_eq!(err.retry_after(), Some(Duration::from_millis(53_500)));
        assert_eq!(err.message(), "quota");
    }

    #[test]
    fn status_fallbacks_when_the_body_is_not_json() {
        for (status, class) in [
            (400, ErrorClass::InvalidInput),
            (401, ErrorClass::AuthError),
            (403, ErrorClass::PermissionDenied),
            (404, ErrorClass::NotFound),
            (408, ErrorClass::Timeout),
            (413, ErrorClass::RequestTooLarge),
            (429, ErrorClass::RateLimit),
            (500, ErrorClass::ServerError),
            (502, ErrorClass::ServerError),
            (503, ErrorClass::Overloaded),
            (504, ErrorClass::Timeout),
            (529, ErrorClass::Overloaded),
        ] {
            let err = classify(status, b"<html>bad gateway</html>");
            assert_eq!(err.class(), class, "{status}");
            assert_eq!(
                err.message(),
                format!("the provider answered HTTP {status}")
            );
        }
    }

    #[test]
    fn headers_feed_the_hints() {
        let mut headers = HeaderMap::new();
        headers.insert("x-should-retry", "false".parse().unwrap());
        headers.insert("retry-after", "7".parse().unwrap());
        let err = classify_response(503, &headers, b"", SystemTime::UNIX_EPOCH);
        assert_eq!(err.should_retry(), Some(false));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    }
}
