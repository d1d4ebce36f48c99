//! How a retry delay grows.

crate::names::named! {
    /// How the delay grows from one retry to the next.
    #[derive(Default)]
    pub enum Backoff ("backoff") {
        /// The same delay every time: `initial`.
        Fixed => "fixed",
        /// `initial × n` for the n-th retry.
        Linear => "linear",
        /// `initial × multiplier^(n-1)` for the n-th retry.
        #[default]
        Exponential => "exponential",
    }
}
