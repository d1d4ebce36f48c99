//! Collecting errors.
//!
//! Both macros report every mistake they find in one pass (a user fixing an attribute
//! should not have to recompile once per typo), so parsers push errors here and carry on.

use quote::ToTokens;
use syn::Error;

/// Errors found so far, combined into one `syn::Error` (which renders as one
/// `compile_error!` per message, each at its own span).
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    /// Records `err`.
    pub(crate) fn push(&mut self, err: Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }

    /// Records the error of `result`, if any, and returns its value otherwise.
    pub(crate) fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|err| self.push(err)).ok()
    }

    /// Records an error spanning `tokens`.
    pub(crate) fn at(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(Error::new_spanned(tokens, message));
    }

    /// The combined error, if anything went wrong.
    pub(crate) fn finish(self) -> Option<Error> {
        self.0
    }
}
