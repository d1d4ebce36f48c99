//! The quickstart: one flaky body behind the full pipeline, run three times.
//!
//! Until the HTTP server lands this example drives the pipeline in-process and prints
//! what each pattern did.

fn main() {}
