//! The fn a hook may be: `[async] fn name(ctx: &mut HookContext) [-> ()/Result<(), E>]`,
//! free, not generic, not `unsafe`. The return type is checked by the compiler through
//! `IntoHookResult` (see `super::convert`), so type aliases of `Result` work.

use syn::punctuated::Punctuated;
use syn::{Error, FnArg, PatType, Signature, Token, Type, TypeReference};

const EXPECTED: &str = "`ctx: &mut HookContext`";

/// Every mistake in `sig`, combined into one error.
pub(super) fn check(sig: &Signature) -> syn::Result<()> {
    let errors = [
        check_qualifiers(sig),
        check_generics(sig),
        check_inputs(sig),
    ];
    combine(errors.into_iter().filter_map(Result::err))
}

/// Joins `errors` into one, or `Ok` when there are none.
fn combine(errors: impl IntoIterator<Item = Error>) -> syn::Result<()> {
    let mut errors = errors.into_iter();
    let Some(mut first) = errors.next() else {
        return Ok(());
    };
    first.extend(errors);
    Err(first)
}

fn check_qualifiers(sig: &Signature) -> syn::Result<()> {
    match &sig.unsafety {
        Some(unsafety) => Err(Error::new(unsafety.span, "a hook cannot be an `unsafe fn`")),
        None => Ok(()),
    }
}

fn check_generics(sig: &Signature) -> syn::Result<()> {
    if sig.generics.params.is_empty() {
        return Ok(());
    }
    let message =
        format!("a hook cannot be generic: it is called with one {EXPECTED} and nothing else");
    Err(Error::new_spanned(&sig.generics, message))
}

fn check_inputs(sig: &Signature) -> syn::Result<()> {
    if let Some(receiver) = sig.receiver() {
        let message =
            format!("a hook is a free fn, not a method: remove `self` and take {EXPECTED}");
        return Err(Error::new_spanned(receiver, message));
    }
    let mut inputs = sig.inputs.iter();
    let Some(FnArg::Typed(param)) = inputs.next() else {
        let message = format!("a hook takes one parameter, {EXPECTED}");
        return Err(Error::new(sig.paren_token.span.join(), message));
    };
    if inputs.next().is_some() {
        return Err(extra_parameters(&sig.inputs));
    }
    check_parameter(param)
}

fn extra_parameters(inputs: &Punctuated<FnArg, Token![,]>) -> Error {
    let extra: Vec<&FnArg> = inputs.iter().skip(1).collect();
    let these = if extra.len() == 1 {
        "this one"
    } else {
        "these"
    };
    let message = format!("a hook takes exactly one parameter, {EXPECTED}: remove {these}");
    Error::new_spanned(quote::quote!(#(#extra),*), message)
}

/// The one parameter: `&mut HookContext`, with no lifetime but `'_`.
fn check_parameter(param: &PatType) -> syn::Result<()> {
    let message = match ungroup(&param.ty) {
        Type::Reference(reference) if names_hook_context(&reference.elem) => {
            return check_reference(param, reference);
        }
        Type::Path(_) if names_hook_context(&param.ty) => {
            format!(
                "a hook must take `&mut HookContext`, not `HookContext` by value: write {EXPECTED}"
            )
        }
        _ => format!("a hook's parameter must be {EXPECTED}"),
    };
    Err(Error::new_spanned(param, message))
}

fn check_reference(param: &PatType, reference: &TypeReference) -> syn::Result<()> {
    if reference.mutability.is_none() {
        let message = format!(
            "a hook must take `&mut HookContext`, not `&HookContext`: it steers the run through it; write {EXPECTED}"
        );
        return Err(Error::new_spanned(param, message));
    }
    match &reference.lifetime {
        Some(lifetime) if lifetime.ident != "_" => {
            let message = format!(
                "a hook borrows its context only for the call: remove `{lifetime}` and write {EXPECTED}"
            );
            Err(Error::new_spanned(lifetime, message))
        }
        _ => Ok(()),
    }
}

/// Whether `ty` is a path ending in `HookContext` (`HookContext`,
/// `fastagentic::hooks::HookContext`, ...).
fn names_hook_context(ty: &Type) -> bool {
    let Type::Path(path) = ungroup(ty) else {
        return false;
    };
    path.qself.is_none()
        && path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "HookContext" && last.arguments.is_none())
}

/// `ty` without invisible or written parentheses.
fn ungroup(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => ungroup(&group.elem),
        Type::Paren(paren) => ungroup(&paren.elem),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::ItemFn;

    fn error(item: proc_macro2::TokenStream) -> String {
        let func: ItemFn = syn::parse2(item).unwrap();
        match check(&func.sig) {
            Ok(()) => panic!("expected an error"),
            Err(err) => err
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join(" | "),
        }
    }

    fn accepts(item: proc_macro2::TokenStream) -> bool {
        let func: ItemFn = syn::parse2(item).unwrap();
        check(&func.sig).is_ok()
    }

    #[test]
    fn accepts_the_forms_of_a_hook() {
        assert!(accepts(quote::quote!(
            async fn f(ctx: &mut HookContext) {}
        )));
        assert!(accepts(quote::quote!(
            fn f(_: &'_ mut fastagentic::hooks::HookContext) {}
        )));
        assert!(accepts(quote::quote!(
            fn f(ctx: &mut HookContext) -> Result<(), E> {
                Ok(())
            }
        )));
    }

    #[test]
    fn names_each_mistake() {
        assert!(
            error(quote::quote!(
                fn f() {}
            ))
            .contains("takes one parameter")
        );
        assert!(
            error(quote::quote!(
                fn f(a: &mut HookContext, b: u8) {}
            ))
            .contains("exactly one")
        );
        assert!(
            error(quote::quote!(
                fn f(ctx: &HookContext) {}
            ))
            .contains("not `&HookContext`")
        );
        assert!(
            error(quote::quote!(
                fn f(ctx: HookContext) {}
            ))
            .contains("by value")
        );
        assert!(
            error(quote::quote!(
                fn f(ctx: &mut String) {}
            ))
            .contains("must be")
        );
        assert!(
            error(quote::quote!(
                fn f(ctx: &'static mut HookContext) {}
            ))
            .contains("remove `'static`")
        );
        assert!(
            error(quote::quote!(
                fn f<T>(ctx: &mut HookContext) {}
            ))
            .contains("generic")
        );
        assert!(
            error(quote::quote!(
                fn f(&mut self) {}
            ))
            .contains("not a method")
        );
        assert!(
            error(quote::quote!(
                unsafe fn f(ctx: &mut HookContext) {}
            ))
            .contains("unsafe")
        );
    }

    #[test]
    fn reports_every_mistake_at_once() {
        let all = error(quote::quote!(
            unsafe fn f<T>() {}
        ));
        assert_eq!(all.matches(" | ").count(), 2, "{all}");
    }
}
