//! Classification of a failed provider response: an HTTP error (status, headers, body) or
//! an error event that arrived inside a stream after HTTP 200.

use std::sync::LazyLock;
use std::time::SystemTime;

use ::http::HeaderMap;
use regex_lite::Regex;
use serde_json::Value;

use super::hints::parse_proto_duration;
use super::{AgentError, ErrorClass, ErrorDetail, RetryHints};

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
    /// A string `code` (OpenAI's `context_length_exceeded`, `rate_limit_exceeded`, …).
    code: Option<String>,
    /// An integer `code`: Gemini repeats the HTTP status in the body. It is the only status
    /// an error that arrives inside a stream (after HTTP 200) has.
    numeric_code: Option<u16>,
    status: Option<String>,
    reason: Option<String>,
    retry_delay: Option<std::time::Duration>,
    per_day_quota: bool,
}

/// A class and, for context overflows, the numbers the provider gave.
struct Classified {
    class: ErrorClass,
    detail: Option<ErrorDetail>,
}

pub(super) fn classify_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> AgentError {
    let envelope = parse_envelope(body).unwrap_or_default();
    // The HTTP status normally decides the fallback; a caller that hands us a body it
    // got with a non-error status can still be classified by Gemini's own code.
    let fallback_status = if is_error_status(status) {
        status
    } else {
        envelope
            .numeric_code
            .filter(|code| is_error_status(*code))
            .unwrap_or(status)
    };
    let by_status = class_from_status(fallback_status);
    let classified = match classify_envelope(&envelope) {
        // `server_error` / `api_error` are catch-all types; a 503, 529 or 504 says more.
        Some(c)
            if c.class == ErrorClass::ServerError
                && matches!(by_status, ErrorClass::Overloaded | ErrorClass::Timeout) =>
        {
            by_class(by_status)
        }
        // `invalid_request_error` is OpenAI's type for a missing key (401) and an unknown
        // route (404) as much as for a bad field: for these the status says more.
        Some(c)
            if c.class == ErrorClass::InvalidInput
                && matches!(
                    by_status,
                    ErrorClass::AuthError | ErrorClass::PermissionDenied | ErrorClass::NotFound
                ) =>
        {
            by_class(by_status)
        }
        Some(c) => c,
        None => by_class(by_status),
    };
    let mut hints = RetryHints::from_headers(headers, now);
    hints.retry_after_body = envelope.retry_delay;
    let message = envelope
        .message
        .unwrap_or_else(|| format!("the provider answered HTTP {status}"));
    finish(classified, message)
        .with_status(status)
        .with_hints(hints)
}

/// Classifies the payload of an error event that arrived inside a stream after HTTP 200.
///
/// `payload` is the JSON of an OpenAI `data: {"error": {…}}` event, of an Anthropic
/// `event: error`, or Gemini's raw `{"error": {…}}` object (possibly in a one-element
/// list). The class comes from the envelope, then from Gemini's numeric `code`, else it is
/// [`ErrorClass::StreamInterrupted`]. No HTTP status is set: the one the response had was
/// 200 and says nothing about the failure.
pub(super) fn classify_stream_error(payload: &[u8]) -> AgentError {
    let Some(envelope) = parse_envelope(payload) else {
        return AgentError::new(
            ErrorClass::StreamInterrupted,
            format!(
                "the stream sent an error payload that was not JSON: {:?}",
                snippet(payload)
            ),
        );
    };
    let classified = classify_envelope(&envelope).unwrap_or_else(|| {
        by_class(
            envelope
                .numeric_code
                .filter(|code| is_error_status(*code))
                .map_or(ErrorClass::StreamInterrupted, class_from_status),
        )
    });
    let hints = RetryHints {
        retry_after_body: envelope.retry_delay,
        ..RetryHints::default()
    };
    let message = envelope
        .message
        .unwrap_or_else(|| "the stream failed after it had started".to_owned());
    finish(classified, message).with_hints(hints)
}

fn is_error_status(status: u16) -> bool {
    (400..=599).contains(&status)
}

fn by_class(class: ErrorClass) -> Classified {
    Classified {
        class,
        detail: None,
    }
}

fn finish(classified: Classified, message: String) -> AgentError {
    let err = AgentError::new(classified.class, message);
    match classified.detail {
        Some(detail) => err.with_detail(detail),
        None => err,
    }
}

/// The start of a payload that is not JSON, for the error message: enough to recognise
/// an HTML error page or a proxy's text, not so much that a large body floods the logs.
fn snippet(payload: &[u8]) -> String {
    const MAX_CHARS: usize = 200;
    String::from_utf8_lossy(payload)
        .chars()
        .take(MAX_CHARS)
        .collect()
}

/// The error envelope in `body`; `None` when the body is not JSON at all.
fn parse_envelope(body: &[u8]) -> Option<Envelope> {
    let mut value = serde_json::from_slice::<Value>(body).ok()?;
    if let Value::Array(items) = &mut value {
        if items.len() != 1 {
            return Some(Envelope::default());
        }
        value = items.swap_remove(0);
    }
    let Some(error) = value.get("error") else {
        return Some(Envelope::default());
    };
    let text = |key: &str| match error.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let mut envelope = Envelope {
        message: text("message"),
        kind: text("type"),
        code: text("code"),
        numeric_code: error
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|code| u16::try_from(code).ok()),
        status: text("status"),
        ..Envelope::default()
    };
    if let Some(Value::Array(details)) = error.get("details") {
        read_google_details(details, &mut envelope);
    }
    Some(envelope)
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

/// The class the envelope names, with the context-overflow numbers when that is the
/// class; `None` when the envelope names nothing we know.
fn classify_envelope(e: &Envelope) -> Option<Classified> {
    let overflow = e.message.as_deref().and_then(parse_context_overflow);
    let class = class_from_envelope(e, overflow.is_some())?;
    let detail = (class == ErrorClass::ContextOverflow).then(|| {
        // OpenAI's newest wording ("Your input exceeds the context window of this
        // model.") has no numbers; the code alone says it is an overflow.
        overflow.unwrap_or(ErrorDetail::ContextOverflow {
            input_tokens: None,
            context_limit: None,
            requested_output: None,
        })
    });
    Some(Classified { class, detail })
}

/// `overflow_wording`: the message is one of the known context-overflow wordings. It is
/// consulted only where the provider has no code for the case (Anthropic's
/// `invalid_request_error`, Gemini's `INVALID_ARGUMENT`), and OpenAI's "Request too
/// large" is told from an ordinary rate limit by its message because both share the code
/// `rate_limit_exceeded`.
fn class_from_envelope(e: &Envelope, overflow_wording: bool) -> Option<ErrorClass> {
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
        // A request larger than the per-minute limit fails the same way every time, so
        // it must not be retried like a rate limit.
        "rate_limit_exceeded" if is_request_too_large(e.message.as_deref()) => {
            Some(RequestTooLarge)
        }
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
            // Anthropic's `api_error`; OpenAI's mid-stream errors carry `server_error`
            // with a null code.
            "api_error" | "server_error" => Some(ServerError),
            "timeout_error" => Some(Timeout),
            "authentication_error" => Some(AuthError),
            "permission_error" => Some(PermissionDenied),
            "not_found_error" => Some(NotFound),
            "request_too_large" => Some(RequestTooLarge),
            "invalid_request_error" if overflow_wording => Some(ContextOverflow),
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
            "INVALID_ARGUMENT" if overflow_wording => Some(ContextOverflow),
            "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => Some(InvalidInput),
            _ => None,
        })
    };
    by_code.or_else(by_type).or_else(by_google_status)
}

/// OpenAI's 429 for a single request above the tokens-per-minute limit: "Request too
/// large for gpt-4o in organization … on tokens per min (TPM): Limit 30000, Requested
/// 31538. …".
fn is_request_too_large(message: Option<&str>) -> bool {
    message.is_some_and(|m| m.trim_start().starts_with("Request too large for"))
}

/// Compiles one of the literal patterns below.
///
/// The patterns are constants, so this fails only on a typo, which the test
/// `every_pattern_compiles` catches; a `None` here would only stop the numbers being read,
/// never panic on a provider's error path.
fn pattern(source: &str) -> Option<Regex> {
    Regex::new(source).ok()
}

// OpenAI: "This model's maximum context length is 4097 tokens. However, you requested
// 4120 tokens (3120 in the messages, 1000 in the completion). …", or "… However, your
// messages resulted in 4294 tokens. …". Some messages also count "N in the functions", so
// the parts are read one by one rather than with one pattern for the whole sentence.
static OPENAI_LIMIT: LazyLock<Option<Regex>> =
    LazyLock::new(|| pattern(r"maximum context length is (\d+) tokens"));
static OPENAI_REQUESTED: LazyLock<Option<Regex>> =
    LazyLock::new(|| pattern(r"you requested (\d+) tokens"));
static OPENAI_COMPLETION: LazyLock<Option<Regex>> =
    LazyLock::new(|| pattern(r"(\d+) in the completion"));
static OPENAI_MESSAGES: LazyLock<Option<Regex>> =
    LazyLock::new(|| pattern(r"(\d+) in the messages"));
static OPENAI_RESULTED: LazyLock<Option<Regex>> =
    LazyLock::new(|| pattern(r"resulted in (\d+) tokens"));
// Anthropic: "prompt is too long: 219898 tokens > 200000 maximum".
static ANTHROPIC_TOO_LONG: LazyLock<Option<Regex>> =
    LazyLock::new(|| pattern(r"prompt is too long: (\d+) tokens > (\d+) maximum"));
// Anthropic: "input length and `max_tokens` exceed context limit: 143653 + 64000 > 200000".
static ANTHROPIC_WITH_MAX_TOKENS: LazyLock<Option<Regex>> =
    LazyLock::new(|| pattern(r"exceed context limit: (\d+) \+ (\d+) > (\d+)"));
// Gemini: "The input token count (132478) exceeds the maximum number of tokens allowed
// (131072)."
static GEMINI_TOKEN_COUNT: LazyLock<Option<Regex>> = LazyLock::new(|| {
    pattern(r"input token count \((\d+)\) exceeds the maximum number of tokens allowed \((\d+)\)")
});

/// The capture groups 1..=N of `regex` in `text`, as numbers; `None` when it does not
/// match. A group too large for `u64` reads as `None` rather than failing the match.
fn numbers<const N: usize>(
    regex: &LazyLock<Option<Regex>>,
    text: &str,
) -> Option<[Option<u64>; N]> {
    let captures = regex.as_ref()?.captures(text)?;
    Some(std::array::from_fn(|i| {
        captures.get(i + 1).and_then(|m| m.as_str().parse().ok())
    }))
}

fn first_number(regex: &LazyLock<Option<Regex>>, text: &str) -> Option<u64> {
    numbers::<1>(regex, text).and_then(|[n]| n)
}

/// The numbers in a context-overflow message, in any provider's known wording; `None`
/// when `message` is not one of them.
fn parse_context_overflow(message: &str) -> Option<ErrorDetail> {
    let detail = |input_tokens, context_limit, requested_output| ErrorDetail::ContextOverflow {
        input_tokens,
        context_limit,
        requested_output,
    };
    if let Some([limit]) = numbers::<1>(&OPENAI_LIMIT, message) {
        let completion = first_number(&OPENAI_COMPLETION, message);
        // "you requested" counts the completion too; what is left is the whole input,
        // messages and functions alike.
        let input = first_number(&OPENAI_RESULTED, message)
            .or_else(|| first_number(&OPENAI_REQUESTED, message)?.checked_sub(completion?))
            .or_else(|| first_number(&OPENAI_MESSAGES, message));
        return Some(detail(input, limit, completion));
    }
    if let Some([input, output, limit]) = numbers(&ANTHROPIC_WITH_MAX_TOKENS, message) {
        return Some(detail(input, limit, output));
    }
    if let Some([input, limit]) = numbers(&ANTHROPIC_TOO_LONG, message) {
        return Some(detail(input, limit, None));
    }
    if let Some([input, limit]) = numbers(&GEMINI_TOKEN_COUNT, message) {
        return Some(detail(input, limit, None));
    }
    None
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

    fn overflow(input: Option<u64>, limit: Option<u64>, output: Option<u64>) -> ErrorDetail {
        ErrorDetail::ContextOverflow {
            input_tokens: input,
            context_limit: limit,
            requested_output: output,
        }
    }

    /// OpenAI answers a missing key with 401 and the generic `invalid_request_error`
    /// type (no code); the status, not the type, says what is wrong.
    #[test]
    fn a_generic_invalid_request_type_defers_to_401_403_404() {
        let generic = |message: &str| {
            serde_json::json!({"error": {"message": message, "type": "invalid_request_error",
                "param": null, "code": null}})
            .to_string()
        };
        let no_key = generic("You didn't provide an API key.");
        assert_eq!(
            classify(401, no_key.as_bytes()).class(),
            ErrorClass::AuthError
        );
        let denied = generic("Project does not have access to model");
        assert_eq!(
            classify(403, denied.as_bytes()).class(),
            ErrorClass::PermissionDenied
        );
        let unknown = generic("Invalid URL (POST /v1/chat/completion)");
        assert_eq!(
            classify(404, unknown.as_bytes()).class(),
            ErrorClass::NotFound
        );
        // A 400 with the same body is still the caller's input.
        assert_eq!(
            classify(400, generic("Invalid 'messages'").as_bytes()).class(),
            ErrorClass::InvalidInput
        );
    }

    /// Every error body in the fixtures, served with the status the fixtures README gives.
    #[test]
    fn provider_fixtures() {
        use ErrorClass::*;
        let cases = [
            ("openai_429.json", 429, RateLimit),
            ("openai_429_request_too_large.json", 429, RequestTooLarge),
            ("openai_429_insufficient_quota.json", 429, QuotaExceeded),
            ("openai_context_length.json", 400, ContextOverflow),
            ("anthropic_529.json", 529, Overloaded),
            ("anthropic_prompt_too_long.json", 400, ContextOverflow),
            (
                "anthropic_context_limit_with_max_tokens.json",
                400,
                ContextOverflow,
            ),
            ("gemini_429.json", 429, RateLimit),
            ("gemini_429_errorinfo.json", 429, RateLimit),
            ("gemini_503.json", 503, Overloaded),
            ("gemini_context_length.json", 400, ContextOverflow),
            ("gemini_400_api_key_invalid.json", 400, AuthError),
        ];
        for (name, status, class) in cases {
            let err = classify(status, &fixture(name));
            assert_eq!(err.class(), class, "{name}: {err:?}");
            assert_eq!(err.status(), Some(status), "{name}");
            if class != ContextOverflow {
                assert_eq!(err.detail(), None, "{name}");
            }
        }
    }

    #[test]
    fn context_fixtures_carry_the_numbers() {
        let cases = [
            (
                "openai_context_length.json",
                overflow(Some(3120), Some(4097), Some(1000)),
            ),
            (
                "anthropic_prompt_too_long.json",
                overflow(Some(219_898), Some(200_000), None),
            ),
            (
                "anthropic_context_limit_with_max_tokens.json",
                overflow(Some(143_653), Some(200_000), Some(64_000)),
            ),
            (
                "gemini_context_length.json",
                overflow(Some(132_478), Some(131_072), None),
            ),
        ];
        for (name, detail) in cases {
            let err = classify(400, &fixture(name));
            assert_eq!(err.class(), ErrorClass::ContextOverflow, "{name}");
            assert_eq!(err.detail(), Some(&detail), "{name}");
        }
    }

    #[test]
    fn request_too_large_is_not_retried_but_a_rate_limit_is() {
        let err = classify(429, &fixture("openai_429_request_too_large.json"));
        assert_eq!(err.class(), ErrorClass::RequestTooLarge);
        assert!(!ErrorClass::DEFAULT_RETRY_ON.contains(err.class()));
        let err = classify(429, &fixture("openai_429.json"));
        assert!(ErrorClass::DEFAULT_RETRY_ON.contains(err.class()));
    }

    #[test]
    fn openai_overflow_wordings() {
        assert_eq!(
            parse_context_overflow(
                "This model's maximum context length is 4097 tokens. However, your messages \
                 resulted in 4294 tokens. Please reduce the length of the messages."
            ),
            Some(overflow(Some(4294), Some(4097), None))
        );
        // Functions count as input: what was requested minus the completion.
        assert_eq!(
            parse_context_overflow(
                "This model's maximum context length is 8192 tokens. However, you requested \
                 9000 tokens (7000 in the messages, 500 in the functions, 1500 in the \
                 completion)."
            ),
            Some(overflow(Some(7500), Some(8192), Some(1500)))
        );
        let newest = "Your input exceeds the context window of this model. Please adjust your \
                      input and try again.";
        assert_eq!(parse_context_overflow(newest), None);
        // The code alone makes it an overflow; there are no numbers to give.
        let body = serde_json::json!({"error": {"message": newest, "type": "invalid_request_error",
            "param": "input", "code": "context_length_exceeded"}});
        let err = classify(400, body.to_string().as_bytes());
        assert_eq!(err.class(), ErrorClass::ContextOverflow);
        assert_eq!(err.detail(), Some(&overflow(None, None, None)));
    }

    #[test]
    fn anthropic_and_gemini_overflow_wordings() {
        assert_eq!(
            parse_context_overflow("prompt is too long: 200001 tokens > 199999 maximum"),
            Some(overflow(Some(200_001), Some(199_999), None))
        );
        assert_eq!(
            parse_context_overflow(
                "input length and `max_tokens` exceed context limit: 1 + 2 > 3, decrease \
                 input length or `max_tokens` and try again"
            ),
            Some(overflow(Some(1), Some(3), Some(2)))
        );
        assert_eq!(
            parse_context_overflow(
                "The input token count (1048577) exceeds the maximum number of tokens \
                 allowed (1048576)."
            ),
            Some(overflow(Some(1_048_577), Some(1_048_576), None))
        );
        // A number too large for u64 still names the wording; it just has no value.
        assert_eq!(
            parse_context_overflow(
                "prompt is too long: 99999999999999999999999 tokens > 5 maximum"
            ),
            Some(overflow(None, Some(5), None))
        );
        assert_eq!(
            parse_context_overflow("messages: at least one message is required"),
            None
        );
    }

    #[test]
    fn other_invalid_requests_stay_invalid_input() {
        let anthropic = br#"{"type":"error","error":{"type":"invalid_request_error",
            "message":"messages: at least one message is required"}}"#;
        let err = classify(400, anthropic);
        assert_eq!(err.class(), ErrorClass::InvalidInput);
        assert_eq!(err.detail(), None);
        let gemini = br#"{"error":{"code":400,"status":"INVALID_ARGUMENT",
            "message":"Invalid value at 'contents[0].role'"}}"#;
        let err = classify(400, gemini);
        assert_eq!(err.class(), ErrorClass::InvalidInput);
        assert_eq!(err.detail(), None);
        // The wording is read only under the provider's generic invalid-request type.
        let rate_limited = br#"{"type":"error","error":{"type":"rate_limit_error",
            "message":"prompt is too long: 3 tokens > 2 maximum"}}"#;
        assert_eq!(classify(429, rate_limited).class(), ErrorClass::RateLimit);
    }

    #[test]
    fn every_pattern_compiles() {
        for regex in [
            &OPENAI_LIMIT,
            &OPENAI_REQUESTED,
            &OPENAI_COMPLETION,
            &OPENAI_MESSAGES,
            &OPENAI_RESULTED,
            &ANTHROPIC_TOO_LONG,
            &ANTHROPIC_WITH_MAX_TOKENS,
            &GEMINI_TOKEN_COUNT,
        ] {
            assert!(regex.is_some());
        }
    }

    #[test]
    fn gemini_numeric_code_is_the_fallback_for_a_non_error_status() {
        let body = br#"{"error":{"code":503,"message":"busy"}}"#;
        assert_eq!(classify(200, body).class(), ErrorClass::Overloaded);
        // A real HTTP error status wins over the body's code.
        assert_eq!(classify(500, body).class(), ErrorClass::ServerError);
    }

    /// The data of the `data: {"error": …}` event in the OpenAI mid-stream fixture.
    fn openai_stream_error() -> String {
        let text = String::from_utf8(fixture("openai_chat_stream_error_midstream.sse")).unwrap();
        text.lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .find(|data| data.starts_with(r#"{"error""#))
            .unwrap()
            .to_owned()
    }

    /// The data line that follows `event: error` in the Anthropic fixture.
    fn anthropic_stream_error() -> String {
        let text = String::from_utf8(fixture("anthropic_stream_error_overloaded.sse")).unwrap();
        let mut lines = text.lines();
        lines.find(|line| *line == "event: error").unwrap();
        lines
            .next()
            .unwrap()
            .strip_prefix("data: ")
            .unwrap()
            .to_owned()
    }

    /// The pretty-printed object that follows the `data:` events, without a prefix.
    fn gemini_stream_error() -> String {
        let text = String::from_utf8(fixture("gemini_stream_error_midstream.sse")).unwrap();
        let start = text.find("\n{").unwrap() + 1;
        text[start..].to_owned()
    }

    #[test]
    fn mid_stream_errors_from_the_fixtures() {
        let cases = [
            (
                openai_stream_error(),
                ErrorClass::ServerError,
                "The server had an error while processing your request. Sorry about that!",
            ),
            (
                anthropic_stream_error(),
                ErrorClass::Overloaded,
                "Overloaded",
            ),
            (
                gemini_stream_error(),
                ErrorClass::ServerError,
                "The operation was cancelled.",
            ),
        ];
        for (payload, class, message) in cases {
            let err = AgentError::from_stream_error(payload.as_bytes());
            assert_eq!(err.class(), class, "{payload}");
            assert_eq!(err.message(), message);
            assert_eq!(err.status(), None, "the stream's HTTP status was 200");
        }
        // Gemini's errors from the non-SSE endpoints come as a one-element list.
        let listed = format!("[{}]", gemini_stream_error());
        let err = classify_stream_error(listed.as_bytes());
        assert_eq!(err.class(), ErrorClass::ServerError);
    }

    #[test]
    fn mid_stream_gemini_code_and_retry_info() {
        let payload = br#"{"error": {"code": 429, "message": "Resource exhausted.",
            "status": "RESOURCE_EXHAUSTED", "details": [{"@type":
            "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]}}"#;
        let err = classify_stream_error(payload);
        assert_eq!(err.class(), ErrorClass::RateLimit);
        assert_eq!(err.retry_after(), Some(Duration::from_millis(2500)));
        assert_eq!(err.status(), None);
        // No status name: the numeric code is read as an HTTP status.
        let err = classify_stream_error(br#"[{"error":{"code":503,"message":"x"}}]"#);
        assert_eq!(err.class(), ErrorClass::Overloaded);
        assert_eq!(err.status(), None);
    }

    #[test]
    fn mid_stream_context_overflow_keeps_its_numbers() {
        let payload = br#"{"type":"error","error":{"type":"invalid_request_error",
            "message":"prompt is too long: 219898 tokens > 200000 maximum"}}"#;
        let err = classify_stream_error(payload);
        assert_eq!(err.class(), ErrorClass::ContextOverflow);
        assert_eq!(
            err.detail(),
            Some(&overflow(Some(219_898), Some(200_000), None))
        );
    }

    #[test]
    fn mid_stream_errors_without_a_class_are_stream_interrupted() {
        let err = classify_stream_error(br#"{"error":{}}"#);
        assert_eq!(err.class(), ErrorClass::StreamInterrupted);
        assert_eq!(err.message(), "the stream failed after it had started");
        let err = classify_stream_error(br#"{"error":{"message":"boom","code":200}}"#);
        assert_eq!(err.class(), ErrorClass::StreamInterrupted);
        assert_eq!(err.message(), "boom");

        let err = classify_stream_error(b"upstream connect error");
        assert_eq!(err.class(), ErrorClass::StreamInterrupted);
        assert!(err.message().contains("not JSON"), "{}", err.message());
        assert!(err.message().contains("upstream connect error"));
        assert_eq!(err.status(), None);
        let long = vec![b'x'; 10_000];
        assert!(classify_stream_error(&long).message().len() < 300);
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
