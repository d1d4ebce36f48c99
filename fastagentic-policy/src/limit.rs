//! Rate limits: what is counted, who shares a limit, and what happens over it.

crate::names::named! {
    /// Requests or tokens.
    pub enum LimitType ("limit type") {
        /// Requests per minute.
        Rpm => "rpm",
        /// Tokens per minute.
        Tpm => "tpm",
    }
}

crate::names::named! {
    /// Who shares a limit.
    pub enum LimitScope ("limit scope") {
        /// Every request to the app.
        Global => "global",
        /// Every request to one endpoint.
        Endpoint => "endpoint",
        /// Each user (from the request's identity).
        User => "user",
        /// Each tenant (from the request's identity).
        Tenant => "tenant",
    }
}

crate::names::named! {
    /// What happens to a request over a limit.
    #[derive(Default)]
    pub enum OnLimit ("`on_limit` value") {
        /// Refuse at once with a `rate_limit` error.
        #[default]
        Reject => "reject",
        /// Wait for a slot if it comes before the run's deadline; otherwise refuse.
        Delay => "delay",
        /// Wait in a bounded first-in-first-out queue; refuse when the queue is full.
        Queue => "queue",
    }
}
