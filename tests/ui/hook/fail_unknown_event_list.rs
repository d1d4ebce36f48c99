// Nothing close: every event is listed.
use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("before_everything")]
async fn far_off(_ctx: &mut HookContext) {}

fn main() {
    let _ = far_off;
}
