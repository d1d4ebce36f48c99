//! Parameters as users write them: the context by its full path or unused, the input
//! destructured or `mut`, the error any type convertible into `AgentError`.

use fastagentic::prelude::*;

#[derive(Deserialize, Clone)]
struct Pair {
    left: i64,
    right: i64,
}

/// An error of the user's own: any `std::error::Error` converts into `AgentError`.
#[derive(Debug, thiserror::Error)]
#[error("the sum overflowed")]
struct Overflow;

#[agent_endpoint(path = "/add")]
async fn add(_ctx: fastagentic::AgentContext, Pair { left, right }: Pair) -> Result<i64, Overflow> {
    left.checked_add(right).ok_or(Overflow)
}

#[agent_endpoint(path = "/double")]
async fn double(mut value: i64) -> Result<i64, AgentError> {
    value *= 2;
    Ok(value)
}

#[agent_endpoint(path = "/texts", model = "mock/texts")]
async fn texts(ctx: AgentContext, words: Vec<String>) -> Result<Vec<String>, AgentError> {
    Ok(words
        .into_iter()
        .map(|w| format!("{w}@{}", ctx.model()))
        .collect())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ctx = || AgentContext::detached("caller");
    assert_eq!(
        add(ctx(), Pair { left: 2, right: 3 }).await.expect("adds"),
        5
    );
    let err = add(
        ctx(),
        Pair {
            left: i64::MAX,
            right: 1,
        },
    )
    .await
    .expect_err("overflows");
    assert!(err.to_string().contains("the sum overflowed"), "{err}");
    assert_eq!(double(21).await.expect("doubles"), 42);
    assert_eq!(
        texts(ctx(), vec!["a".into()]).await.expect("runs"),
        ["a@mock/texts"]
    );
}
