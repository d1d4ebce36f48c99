//! Retry hints a server sends with a failure: in headers or in the error body.

use std::time::{Duration, SystemTime};

use ::http::HeaderMap;

/// What the server said about retrying, gathered from headers and the error body.
///
/// Values that do not parse are ignored: a garbage header never makes a failure worse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryHints {
    /// `x-should-retry: true|false` — an explicit verdict that overrides the class.
    pub should_retry: Option<bool>,
    /// From `retry-after-ms`, else `Retry-After` (delta-seconds or HTTP-date).
    pub retry_after_header: Option<Duration>,
    /// From the error body (Gemini's `RetryInfo.retryDelay`).
    pub retry_after_body: Option<Duration>,
}

impl RetryHints {
    /// The delay to honour: a header wins over a body hint.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after_header.or(self.retry_after_body)
    }

    /// Reads `x-should-retry`, `retry-after-ms` and `Retry-After` from `headers`.
    ///
    /// `now` is the wall-clock time an HTTP-date `Retry-After` is measured from; a date in
    /// the past means "retry now".
    pub fn from_headers(headers: &HeaderMap, now: SystemTime) -> RetryHints {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let retry_after_header = text("retry-after-ms")
            .and_then(parse_retry_after_ms)
            .or_else(|| text("retry-after").and_then(|v| parse_retry_after(v, now)));
        RetryHints {
            should_retry: text("x-should-retry").and_then(parse_should_retry),
            retry_after_header,
            retry_after_body: None,
        }
    }
}

/// `x-should-retry`: `true` or `false`, trimmed, any case.
pub(crate) fn parse_should_retry(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// `retry-after-ms`: a non-negative number of milliseconds, fractions allowed.
pub(crate) fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    seconds_to_duration(value.trim().parse::<f64>().ok()? / 1000.0)
}

/// `Retry-After`: delta-seconds (fractions tolerated) or an HTTP-date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return seconds_to_duration(seconds);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A protobuf `Duration` in JSON form: decimal seconds followed by `s`, e.g. `"53.2s"`.
pub(crate) fn parse_proto_duration(value: &str) -> Option<Duration> {
    seconds_to_duration(value.trim().strip_suffix('s')?.parse::<f64>().ok()?)
}

fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    // Rejects NaN, infinities, negatives and values too large for a Duration.
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_ms_wins_over_retry_after() {
        let h = headers(&[("retry-after-ms", "1500.5"), ("retry-after", "30")]);
        let hints = RetryHints::from_headers(&h, SystemTime::UNIX_EPOCH);
        assert_eq!(hints.retry_after(), Some(Duration::from_micros(1_500_500)));
    }

    #[test]
    fn retry_after_delta_seconds_may_be_fractional() {
        let h = headers(&[("Retry-After", " 2.5 ")]);
        let hints = RetryHints::from_headers(&h, SystemTime::UNIX_EPOCH);
        assert_eq!(hints.retry_after(), Some(Duration::from_millis(2500)));
    }

    #[test]
    fn retry_after_http_date_is_measured_from_now() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_784_000_000);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(42));
        let h = headers(&[("retry-after", &date)]);
        let hints = RetryHints::from_headers(&h, now);
        assert_eq!(hints.retry_after(), Some(Duration::from_secs(42)));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(42));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
    }

    #[test]
    fn garbage_is_ignored() {
        let h = headers(&[
            ("retry-after-ms", "soon"),
            ("retry-after", "-3"),
            ("x-should-retry", "maybe"),
        ]);
        assert_eq!(
            RetryHints::from_headers(&h, SystemTime::UNIX_EPOCH),
            RetryHints::default()
        );
        assert_eq!(parse_retry_after_ms("NaN"), None);
        assert_eq!(parse_retry_after_ms("inf"), None);
        assert_eq!(parse_retry_after("1e400", SystemTime::UNIX_EPOCH), None);
    }

    #[test]
    fn x_should_retry_is_trimmed_and_case_insensitive() {
        assert_eq!(parse_should_retry(" FALSE "), Some(false));
        assert_eq!(parse_should_retry("True"), Some(true));
        assert_eq!(parse_should_retry("yes"), None);
    }

    #[test]
    fn proto_durations() {
        assert_eq!(parse_proto_duration("53s"), Some(Duration::from_secs(53)));
        assert_eq!(
            parse_proto_duration("1.203608125s"),
            Some(Duration::from_nanos(1_203_608_125))
        );
        assert_eq!(parse_proto_duration("53"), None);
    }
}
