// Hooks run on any worker thread: an async hook's future must be `Send`.
use std::rc::Rc;

use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry")]
async fn holds_an_rc(_ctx: &mut HookContext) {
    let shared = Rc::new(1);
    tokio::task::yield_now().await;
    let _ = shared;
}

fn main() {}
