use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry", path = "/analyze")]
async fn wrong_key(_ctx: &mut HookContext) {}

fn main() {
    let _ = wrong_key;
}
