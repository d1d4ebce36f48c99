//! `#[hook("event", endpoint = "/path", priority = n)]`: registers a fn as a hook.
//!
//! The fn stays as written (callable directly). Next to it the macro puts a shim that
//! adapts it to `fastagentic::hooks::HookFn` and submits a `HookRegistration` to
//! `inventory`, so `Hooks::registered()` finds it. On any mistake it emits the errors,
//! spanned on the offending tokens, and the fn unchanged (so the rest of the crate still
//! type-checks against it).

mod args;
mod events;
mod signature;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::{Error, Ident, ItemFn, LitStr, ReturnType, Type};

use self::args::HookArgs;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let registration = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => parse(attr, &func).map(|args| registration(&args, &func)),
        Err(_) => Err(Error::new(
            Span::call_site(),
            "`#[hook]` goes on a fn: `async fn name(ctx: &mut HookContext)`",
        )),
    };
    let extra = registration.unwrap_or_else(Error::into_compile_error);
    quote!(#item #extra)
}

/// The arguments, once both they and the fn's signature are right.
fn parse(attr: TokenStream, func: &ItemFn) -> syn::Result<HookArgs> {
    let args = syn::parse2::<HookArgs>(attr);
    let sig = signature::check(&func.sig);
    match (args, sig) {
        (Ok(args), Ok(())) => Ok(args),
        (Ok(_), Err(err)) | (Err(err), Ok(())) => Err(err),
        (Err(mut err), Err(more)) => {
            err.combine(more);
            Err(err)
        }
    }
}

/// The shim and its `inventory` submission, in an anonymous const so nothing leaks
/// into the user's namespace.
fn registration(args: &HookArgs, func: &ItemFn) -> TokenStream {
    let variant = &args.variant;
    let name = LitStr::new(&func.sig.ident.unraw().to_string(), func.sig.ident.span());
    let endpoint = match &args.endpoint {
        Some(path) => quote!(::std::option::Option::Some(#path)),
        None => quote!(::std::option::Option::None),
    };
    let priority = args.priority;
    let shim = shim(func);
    quote! {
        const _: () = {
            #shim
            ::fastagentic::__private::inventory::submit! {
                ::fastagentic::__private::HookRegistration {
                    event: ::fastagentic::reliability::EventKind::#variant,
                    name: #name,
                    endpoint: #endpoint,
                    priority: #priority,
                    hook: __fastagentic_hook_shim,
                }
            }
        };
    }
}

/// `fn(&mut HookContext) -> HookFuture` around the user's fn, async or not.
fn shim(func: &ItemFn) -> TokenStream {
    let ident = &func.sig.ident;
    // Mixed-site: these locals cannot clash with the user's names (a fn called `ctx`).
    let ctx = Ident::new("ctx", Span::mixed_site());
    let output = Ident::new("output", Span::mixed_site());
    let call = match func.sig.asyncness {
        Some(_) => quote!(#ident(#ctx).await),
        None => quote!(#ident(#ctx)),
    };
    let convert = convert(&func.sig.output, &output);
    quote! {
        fn __fastagentic_hook_shim<'a>(
            #ctx: &'a mut ::fastagentic::hooks::HookContext,
        ) -> ::fastagentic::hooks::HookFuture<'a> {
            ::std::boxed::Box::pin(async move {
                let #output = #call;
                #convert
            })
        }
    }
}

/// `output` through `IntoHookResult`. The trait is named on the declared return type
/// itself, so the compiler reports a wrong one there, on the user's tokens.
fn convert(returns: &ReturnType, output: &Ident) -> TokenStream {
    match returns {
        ReturnType::Type(_, ty) if !matches!(**ty, Type::ImplTrait(_)) => quote! {
            <#ty as ::fastagentic::hooks::IntoHookResult>::into_hook_result(#output)
        },
        _ => quote!(::fastagentic::hooks::IntoHookResult::into_hook_result(#output)),
    }
}
