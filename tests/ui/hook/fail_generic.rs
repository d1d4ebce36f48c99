use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry")]
fn generic<T: Default>(_ctx: &mut HookContext) {
    let _ = T::default();
}

fn main() {
    let _ = generic::<u8>;
}
