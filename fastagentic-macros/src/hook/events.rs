//! The hook event names, each with the `EventKind` variant it stands for.
//!
//! This list mirrors `fastagentic::reliability::EventKind` (the macro crate cannot depend
//! on the runtime). `tests/ui/hook/pass_every_event.rs` registers a hook for every name
//! here and checks at run time that each `EventKind` got exactly the hook named after it,
//! so the two cannot drift apart unnoticed.

/// `(hook name, EventKind variant)`, in `EventKind::ALL` order.
const EVENTS: &[(&str, &str)] = &[
    ("on_startup", "Startup"),
    ("on_shutdown", "Shutdown"),
    ("on_request", "Request"),
    ("on_response", "Response"),
    ("on_error", "Error"),
    ("on_llm_start", "LlmStart"),
    ("on_llm_end", "LlmEnd"),
    ("on_tool_call", "ToolCall"),
    ("on_tool_result", "ToolResult"),
    ("on_retry", "Retry"),
    ("on_retry_end", "RetryEnd"),
    ("on_circuit_open", "CircuitOpen"),
    ("on_circuit_half_open", "CircuitHalfOpen"),
    ("on_circuit_close", "CircuitClose"),
    ("on_fallback", "Fallback"),
    ("on_timeout", "Timeout"),
    ("on_rate_limit", "RateLimit"),
    ("on_checkpoint", "Checkpoint"),
    ("on_resume", "Resume"),
];

/// The `EventKind` variant for the hook event `name`.
pub(super) fn variant(name: &str) -> Option<&'static str> {
    EVENTS
        .iter()
        .find(|(event, _)| *event == name)
        .map(|(_, variant)| *variant)
}

/// Every event name, comma-separated.
pub(super) fn list() -> String {
    let names: Vec<&str> = EVENTS.iter().map(|(event, _)| *event).collect();
    names.join(", ")
}

/// The error for an unknown event: the closest name if one is close, else the list.
pub(super) fn unknown(name: &str) -> String {
    match suggestion(name) {
        Some(close) => format!("unknown hook event `{name}`; did you mean `{close}`?"),
        None => format!("unknown hook event `{name}`; expected one of: {}", list()),
    }
}

/// The event `name` was probably meant to be: the same without the `on_` prefix or in
/// another case, else the nearest by edit distance if it is within a third of the length.
fn suggestion(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let prefixed = format!("on_{lower}");
    if let Some((event, _)) = EVENTS.iter().find(|(event, _)| *event == prefixed) {
        return Some(event);
    }
    let limit = (lower.chars().count() / 3).max(1);
    EVENTS
        .iter()
        .map(|(event, _)| (edit_distance(&lower, event), *event))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, event)| event)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current.push(substitute.min(delete).min(insert));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_maps_to_a_variant() {
        assert_eq!(EVENTS.len(), 19);
        assert_eq!(variant("on_retry"), Some("Retry"));
        assert_eq!(variant("on_circuit_half_open"), Some("CircuitHalfOpen"));
        assert_eq!(variant("retry"), None);
    }

    #[test]
    fn suggests_the_nearest_name() {
        assert_eq!(suggestion("on_rety"), Some("on_retry"));
        assert_eq!(suggestion("retry"), Some("on_retry"));
        assert_eq!(suggestion("ON_RETRY"), Some("on_retry"));
        assert_eq!(suggestion("on_circuit_opened"), Some("on_circuit_open"));
        assert_eq!(suggestion("on_llm_started"), Some("on_llm_start"));
        assert_eq!(suggestion("before_everything"), None);
        assert_eq!(suggestion(""), None);
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("on_retry", "on_retry"), 0);
    }
}
