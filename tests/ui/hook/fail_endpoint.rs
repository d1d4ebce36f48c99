use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry", endpoint = "analyze")]
async fn no_slash(_ctx: &mut HookContext) {}

const PATH: &str = "/analyze";

#[hook("on_retry", endpoint = PATH)]
async fn not_a_literal(_ctx: &mut HookContext) {}

fn main() {
    let _ = (no_slash, not_a_literal, PATH);
}
