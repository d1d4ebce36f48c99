//! `#[hook("event", endpoint = "/path", priority = n)]`: registers a fn as a hook.
//!
//! The fn stays as written (callable directly). Next to it the macro puts a shim that
//! adapts it to the runtime's `HookFn` and submits a `HookRegistration` to `inventory`, so
//! `Hooks::registered()` finds it. On any mistake it emits every error, spanned on the
//! offending tokens, and the fn unchanged (so the rest of the crate still type-checks
//! against it).

mod args;
mod signature;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::{Error, Ident, ItemFn, LitStr, ReturnType, Type};

use self::args::HookArgs;
use crate::attr::Errors;
use crate::paths::Paths;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let Ok(func) = syn::parse2::<ItemFn>(item.clone()) else {
        let err = Error::new(
            Span::call_site(),
            "`#[hook]` goes on a fn: `async fn name(ctx: &mut HookContext)`",
        );
        let err = err.into_compile_error();
        return quote!(#item #err);
    };
    let mut errors = Errors::default();
    let args = HookArgs::parse(attr, &mut errors);
    if let Err(err) = signature::check(&func.sig) {
        errors.push(err);
    }
    let extra = match (errors.finish(), args) {
        (None, Some(args)) => registration(&args, &func),
        (err, _) => err.map(Error::into_compile_error).unwrap_or_default(),
    };
    quote!(#item #extra)
}

/// The shim and its `inventory` submission, in an anonymous const so nothing leaks
/// into the user's namespace.
fn registration(args: &HookArgs, func: &ItemFn) -> TokenStream {
    let paths = args.paths();
    let event = paths.event_kind(args.event.variant_name());
    let name = LitStr::new(&func.sig.ident.unraw().to_string(), func.sig.ident.span());
    let endpoint = match &args.endpoint {
        Some(path) => quote!(::std::option::Option::Some(#path)),
        None => quote!(::std::option::Option::None),
    };
    let priority = args.priority;
    let shim = shim(func, &paths);
    let (inventory, registration) = (paths.inventory(), paths.helper("HookRegistration"));
    quote! {
        const _: () = {
            #shim
            #inventory::submit! {
                #registration {
                    event: #event,
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
fn shim(func: &ItemFn, paths: &Paths) -> TokenStream {
    let ident = &func.sig.ident;
    // Mixed-site: these locals cannot clash with the user's names (a fn called `ctx`).
    let ctx = Ident::new("ctx", Span::mixed_site());
    let output = Ident::new("output", Span::mixed_site());
    let call = match func.sig.asyncness {
        Some(_) => quote!(#ident(#ctx).await),
        None => quote!(#ident(#ctx)),
    };
    let convert = convert(&func.sig.output, &output, paths);
    let (context, future) = (paths.hook_context(), paths.hook_future());
    quote! {
        fn __fastagentic_hook_shim<'a>(#ctx: &'a mut #context) -> #future<'a> {
            ::std::boxed::Box::pin(async move {
                let #output = #call;
                #convert
            })
        }
    }
}

/// `output` through `IntoHookResult`. The trait is named on the declared return type
/// itself, so the compiler reports a wrong one there, on the user's tokens.
fn convert(returns: &ReturnType, output: &Ident, paths: &Paths) -> TokenStream {
    let into = paths.hook_result_conversion();
    match returns {
        ReturnType::Type(_, ty) if !matches!(**ty, Type::ImplTrait(_)) => quote! {
            <#ty as #into>::into_hook_result(#output)
        },
        _ => quote!(#into::into_hook_result(#output)),
    }
}
