//! `#[agent_endpoint(...)]`: reads the attribute and the fn, checks both, and generates
//! the wrapper, the JSON handler, the policies and the registered `Endpoint`.
//!
//! On any mistake the expansion is the errors plus the user's fn unchanged, so the rest
//! of the crate still type-checks against it and only the real error shows.

mod args;
mod expand;
mod policies;
mod signature;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ItemFn;

use self::args::Args;
use crate::attr::Errors;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let Ok(func) = syn::parse2::<ItemFn>(item.clone()) else {
        let err = syn::Error::new(
            Span::call_site(),
            "`#[agent_endpoint]` goes on an async fn: `async fn name(ctx: AgentContext, \
             input: T) -> Result<O, AgentError>`",
        );
        let err = err.into_compile_error();
        return quote!(#err #item);
    };
    let mut errors = Errors::default();
    let args = Args::parse(attr, &mut errors);
    let shape = signature::analyze(&func.sig, &mut errors);
    match (errors.finish(), shape) {
        (None, Some(shape)) => expand::endpoint(&func, &args, &shape),
        (err, _) => {
            let err = err.map(syn::Error::into_compile_error);
            // The fn is meant to be served, so do not add "never used" to the real error.
            quote! {
                #err
                #[allow(dead_code)]
                #func
            }
        }
    }
}
