// Every mistake is reported at once: the attribute's and the signature's.
use fastagentic::hook;

#[hook("on_rety")]
fn all_wrong<T>() {}

fn main() {
    let _ = all_wrong::<u8>;
}
