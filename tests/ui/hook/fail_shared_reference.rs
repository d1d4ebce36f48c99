use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry")]
async fn read_only(ctx: &HookContext) {
    let _ = ctx.retry_count();
}

fn main() {
    let _ = read_only;
}
