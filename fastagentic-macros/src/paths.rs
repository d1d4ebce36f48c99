//! Every path the generated code names, in one place.
//!
//! They all go through the runtime's `__private` module, rooted at `::fastagentic` or at
//! the path a `crate = ...` key gives (for a dependency that is renamed or re-exported,
//! as `#[linkme(crate = ...)]` allows), so the runtime's public layout can change without
//! touching the macros.

use fastagentic_policy::ErrorClass;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

/// Where the runtime crate is, as the generated code reaches it.
pub(crate) struct Paths {
    /// `::fastagentic::__private`, or `<crate path>::__private`.
    private: TokenStream,
}

impl Default for Paths {
    fn default() -> Self {
        Paths::new(None)
    }
}

impl Paths {
    /// Paths rooted at `root`, or at `::fastagentic`.
    pub(crate) fn new(root: Option<&syn::Path>) -> Self {
        let root = match root {
            Some(path) => quote!(#path),
            None => quote!(::fastagentic),
        };
        Paths {
            private: quote!(#root::__private),
        }
    }

    fn item(&self, name: &str) -> TokenStream {
        let private = &self.private;
        let name = Ident::new(name, Span::call_site());
        quote!(#private::#name)
    }

    /// `AgentError`.
    pub(crate) fn agent_error(&self) -> TokenStream {
        self.item("AgentError")
    }

    /// `Pipeline`.
    pub(crate) fn pipeline(&self) -> TokenStream {
        self.item("Pipeline")
    }

    /// `RequestInfo`.
    pub(crate) fn request_info(&self) -> TokenStream {
        self.item("RequestInfo")
    }

    /// `PolicyError`.
    pub(crate) fn policy_error(&self) -> TokenStream {
        self.item("PolicyError")
    }

    /// A policy type (`RetryPolicy`, `FallbackChain`, ...).
    pub(crate) fn policy(&self, ty: &str) -> TokenStream {
        self.item(ty)
    }

    /// `IntoPolicy`, which converts an expression-form policy.
    pub(crate) fn policy_conversion(&self) -> TokenStream {
        self.item("IntoPolicy")
    }

    /// `EndpointPolicies`.
    pub(crate) fn endpoint_policies(&self) -> TokenStream {
        self.item("EndpointPolicies")
    }

    /// `ClassSet::of(&[ErrorClass::A, ...])`.
    pub(crate) fn class_set(&self, classes: &[ErrorClass]) -> TokenStream {
        let set = self.item("ClassSet");
        let class = self.item("ErrorClass");
        let variants = classes
            .iter()
            .map(|c| Ident::new(c.variant_name(), Span::call_site()));
        quote!(#set::of(&[#(#class::#variants),*]))
    }

    /// A variant of one of the runtime's option enums (`Backoff::Fixed`).
    pub(crate) fn choice(&self, enum_name: &str, variant: &str) -> TokenStream {
        let ty = self.item(enum_name);
        let variant = Ident::new(variant, Span::call_site());
        quote!(#ty::#variant)
    }

    /// A hook event (`EventKind::Retry`).
    pub(crate) fn event_kind(&self, variant: &str) -> TokenStream {
        self.choice("EventKind", variant)
    }

    /// A private helper fn or type by name (`decode_input`, `EndpointParts`, ...).
    pub(crate) fn helper(&self, name: &str) -> TokenStream {
        self.item(name)
    }

    /// The `linkme` crate, re-exported.
    pub(crate) fn linkme(&self) -> TokenStream {
        self.item("linkme")
    }

    /// The `inventory` crate, re-exported.
    pub(crate) fn inventory(&self) -> TokenStream {
        self.item("inventory")
    }

    /// The distributed slice of endpoints.
    pub(crate) fn endpoints(&self) -> TokenStream {
        self.item("ENDPOINTS")
    }

    /// `HookContext`.
    pub(crate) fn hook_context(&self) -> TokenStream {
        self.item("HookContext")
    }

    /// `HookFuture`.
    pub(crate) fn hook_future(&self) -> TokenStream {
        self.item("HookFuture")
    }

    /// `IntoHookResult`.
    pub(crate) fn hook_result_conversion(&self) -> TokenStream {
        self.item("IntoHookResult")
    }
}

/// `tokens` with every span set to `span`, so a path built here points at the user's
/// tokens in errors (as `quote_spanned!` does for the tokens it writes itself).
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(group) = &tree {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                tree = proc_macro2::TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// Reads `crate = some::path`, the key both macros accept.
pub(crate) fn crate_path(
    meta: &syn::meta::ParseNestedMeta<'_>,
    errors: &mut crate::attr::Errors,
) -> syn::Result<Option<syn::Path>> {
    if !meta.input.peek(syn::Token![=]) {
        errors.push(
            meta.error(
                "`crate` names where fastagentic is: `crate = ::my_dependency::fastagentic`",
            ),
        );
        crate::attr::skip_value(meta)?;
        return Ok(None);
    }
    Ok(Some(meta.value()?.parse()?))
}
