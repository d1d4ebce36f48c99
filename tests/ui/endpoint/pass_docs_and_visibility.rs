//! The wrapper keeps the fn's visibility, docs and attributes; the doc comment is the
//! default description; names and paths default to the fn's name (raw identifiers
//! unescaped); a `#[cfg]` under the attribute removes the registration with the fn.

#![deny(missing_docs, dead_code)]
//! A crate whose lints would catch a generated item without docs or never used.

use fastagentic::prelude::*;

pub mod api {
    //! Endpoints in a module.

    use fastagentic::prelude::*;

    /// Answers questions.
    ///
    ///   Indented lines are trimmed.
    #[agent_endpoint]
    pub async fn ask() -> Result<String, AgentError> {
        Ok("asked".into())
    }

    /// A raw identifier.
    #[agent_endpoint(model = "mock/raw")]
    pub async fn r#match() -> Result<String, AgentError> {
        Ok("matched".into())
    }

    /// Crate-visible, with a lint attribute that must reach the body.
    #[agent_endpoint(path = "/api/internal")]
    #[allow(unused_variables)]
    pub(crate) async fn internal() -> Result<u8, AgentError> {
        let unused = 1;
        Ok(7)
    }
}

/// Compiled out: neither the fn nor its registration exists.
#[agent_endpoint(path = "/compiled_out")]
#[cfg(any())]
async fn compiled_out() -> Result<(), AgentError> {
    Ok(())
}

/// Never called directly, only served: not "never used".
#[agent_endpoint]
async fn only_served() -> Result<(), AgentError> {
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let ask = fastagentic::endpoint::find("/ask").expect("registered");
    assert_eq!(ask.name(), "ask");
    assert_eq!(
        ask.description(),
        "Answers questions.\n\nIndented lines are trimmed."
    );
    assert_eq!(ask.model(), None);
    assert!(ask.rust_path().ends_with("::api::ask"), "{}", ask.rust_path());
    assert_eq!(api::ask().await.expect("runs"), "asked");

    let raw = fastagentic::endpoint::find("/match").expect("registered");
    assert_eq!((raw.name(), raw.model()), ("match", Some("mock/raw")));
    assert!(raw.rust_path().ends_with("::api::match"), "{}", raw.rust_path());
    assert_eq!(api::r#match().await.expect("runs"), "matched");

    assert_eq!(api::internal().await.expect("runs"), 7);
    assert!(fastagentic::endpoint::find("/compiled_out").is_none());
    assert!(fastagentic::endpoint::find("/only_served").is_some());
}
