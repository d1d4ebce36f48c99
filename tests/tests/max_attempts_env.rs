//! `FASTAGENTIC_MAX_ATTEMPTS` is read once per process, so each value is checked in a
//! child process running this same test binary.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use fastagentic::reliability::RetryPolicy;
use fastagentic::reliability::retry::{MAX_ATTEMPTS_ENV, default_max_attempts};

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
    assert_eq!(RetryPolicy::default().max_attempts(), expected);
    assert_eq!(
        RetryPolicy::builder().build().unwrap().max_attempts(),
        expected
    );
}
