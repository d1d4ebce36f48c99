//! `FASTAGENTIC_MAX_ATTEMPTS` is read once per process, so each value is checked in a
//! child process running this same test binary. The override is applied where a program
//! starts serving (an `App`, an endpoint's own pipeline); policies themselves never read
//! the environment.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use fastagentic::prelude::*;
use fastagentic::reliability::{MAX_ATTEMPTS_ENV, default_max_attempts};

const EXPECTED: &str = "FASTAGENTIC_TEST_EXPECTED_ATTEMPTS";

#[test]
fn the_override_is_applied_and_bad_values_keep_the_default() {
    let exe = std::env::current_exe().unwrap();
    for (value, expected) in [
        ("7", 7),
        (" 2 ", 2),
        ("0", 3),
        ("-4", 3),
        ("three", 3),
        ("", 3),
    ] {
        let output = Command::new(&exe)
            .args([
                "--exact",
                "child_reads_the_default",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(MAX_ATTEMPTS_ENV, value)
            .env(EXPECTED, expected.to_string())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{MAX_ATTEMPTS_ENV}={value:?}: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Checks the default in a child started by the test above; a no-op when run directly.
#[test]
fn child_reads_the_default() {
    let Ok(expected) = std::env::var(EXPECTED) else {
        return;
    };
    let expected: u32 = expected.parse().unwrap();
    assert_eq!(default_max_attempts(), expected);
    let own = fastagentic::endpoint::find("/env-default").unwrap();
    let pipeline = own.pipeline().unwrap();
    assert_eq!(pipeline.retry_policy().max_attempts(), expected);
    // A count the endpoint sets itself wins over the environment.
    let pinned = fastagentic::endpoint::find("/env-pinned").unwrap();
    assert_eq!(pinned.pipeline().unwrap().retry_policy().max_attempts(), 2);
    // Policies built by hand are the same whatever the environment says.
    assert_eq!(RetryPolicy::default().max_attempts(), 3);
    assert_eq!(RetryPolicy::builder().build().unwrap().max_attempts(), 3);
}

/// Retries with every default, `max_attempts` included.
#[agent_endpoint(path = "/env-default", retry(backoff = "fixed"))]
async fn env_default(_ctx: AgentContext) -> Result<String, AgentError> {
    Ok("ok".into())
}

/// Retries with an attempt count of its own.
#[agent_endpoint(path = "/env-pinned", retry(max_attempts = 2))]
async fn env_pinned(_ctx: AgentContext) -> Result<String, AgentError> {
    Ok("ok".into())
}
