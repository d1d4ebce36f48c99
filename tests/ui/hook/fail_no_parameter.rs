use fastagentic::hook;

#[hook("on_retry")]
async fn nothing() {}

fn main() {
    let _ = nothing;
}
