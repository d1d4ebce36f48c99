// A near miss gets a suggestion; the fn is still emitted, so `main` compiles against it.
use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_rety")]
async fn typo(_ctx: &mut HookContext) {}

#[hook("retry")]
async fn no_prefix(_ctx: &mut HookContext) {}

#[hook("on_circuit_opened")]
fn past_tense(_ctx: &mut HookContext) {}

fn main() {
    let _ = (typo, no_prefix, past_tense);
}
