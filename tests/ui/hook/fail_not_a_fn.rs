use fastagentic::hook;

#[hook("on_retry")]
struct NotAFn;

fn main() {
    let _ = NotAFn;
}
