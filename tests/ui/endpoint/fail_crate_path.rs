//! `crate = path` is where every generated path starts: a wrong one fails there.

use fastagentic::prelude::*;

#[agent_endpoint(crate = ::not_fastagentic, path = "/nowhere")]
async fn nowhere() -> Result<(), AgentError> {
    Ok(())
}

fn main() {}
