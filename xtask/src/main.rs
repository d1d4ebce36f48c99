//! Placeholder replaced by the pricing freshness checker.
fn main() {}
