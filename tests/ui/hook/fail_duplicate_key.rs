use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry", priority = 1, endpoint = "/a", priority = 2)]
async fn twice(_ctx: &mut HookContext) {}

fn main() {
    let _ = twice;
}
