use fastagentic::prelude::*;

#[agent_endpoint]
struct Endpoint;

fn main() {}
