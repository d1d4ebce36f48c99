//! The annotated fn's signature: which of the four accepted shapes it has.
//!
//! `async fn f(ctx: AgentContext, input: T) -> Result<O, E>`, with the context and the
//! input each optional. The context is recognized by its type's last path segment,
//! `AgentContext`, so `fastagentic::AgentContext` and a re-export both work.

use proc_macro2::Span;
use syn::{FnArg, GenericArgument, Ident, Pat, PathArguments, ReturnType, Signature, Type};

use crate::attr::Errors;

/// The accepted shape of an endpoint fn.
pub(super) struct Shape {
    /// `ctx: AgentContext`, first when present.
    pub(super) ctx: Option<Param>,
    /// The one input.
    pub(super) input: Option<Param>,
    /// `O` of `Result<O, E>`.
    pub(super) output: Type,
    /// `E` of `Result<O, E>`.
    pub(super) error: Type,
}

/// A parameter as the wrapper declares it.
pub(super) struct Param {
    /// The user's name when it is a plain binding (so the wrapper's docs read the same),
    /// else a generic one.
    pub(super) name: Ident,
    pub(super) ty: Type,
}

/// The shape of `sig`, or `None` with every problem recorded.
pub(super) fn analyze(sig: &Signature, errors: &mut Errors) -> Option<Shape> {
    qualifiers(sig, errors);
    let params = params(sig, errors);
    let result = result_types(sig, errors);
    let (ctx, input) = params?;
    let (output, error) = result?;
    Some(Shape {
        ctx,
        input,
        output,
        error,
    })
}

/// `async` is required; `const`, `unsafe`, `extern` and generics are refused.
fn qualifiers(sig: &Signature, errors: &mut Errors) {
    if sig.asyncness.is_none() {
        errors.at(
            sig.fn_token,
            "`#[agent_endpoint]` needs an `async fn`: write `async fn` (the body runs in the \
             async reliability pipeline)",
        );
    }
    if let Some(token) = &sig.constness {
        errors.at(token, "an endpoint fn cannot be `const`");
    }
    if let Some(token) = &sig.unsafety {
        errors.at(token, "an endpoint fn cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        errors.at(abi, "an endpoint fn cannot have an `extern` ABI");
    }
    if let Some(variadic) = &sig.variadic {
        errors.at(variadic, "an endpoint fn cannot be variadic");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.at(
            &sig.generics,
            "an endpoint fn cannot be generic: it is registered once, with concrete input and \
             output types; remove the generic parameters and the `where` clause",
        );
    }
}

/// The context and the input, in that order, each optional.
fn params(sig: &Signature, errors: &mut Errors) -> Option<(Option<Param>, Option<Param>)> {
    let mut ctx: Option<Param> = None;
    let mut input: Option<Param> = None;
    let mut ok = true;
    for arg in &sig.inputs {
        let typed = match arg {
            FnArg::Receiver(receiver) => {
                errors.at(
                    receiver,
                    "an endpoint fn cannot take `self`: make it a free fn (the endpoint is \
                     registered without an instance to call it on)",
                );
                ok = false;
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        let ty = (*typed.ty).clone();
        if let Some(problem) = param_problem(&ty) {
            errors.at(&typed.ty, problem);
            ok = false;
        } else if is_context(&ty) {
            if ctx.is_some() || input.is_some() {
                errors.at(
                    arg,
                    "the context must come first and only once: `async fn f(ctx: \
                     AgentContext, input: T)`",
                );
                ok = false;
            }
            ctx = Some(param(&typed.pat, ty, "ctx"));
        } else if input.is_some() {
            errors.at(
                arg,
                "an endpoint takes at most one input besides the context: put the fields in \
                 one struct deriving `Deserialize` and `Clone`, and take that",
            );
            ok = false;
        } else {
            input = Some(param(&typed.pat, ty, "input"));
        }
    }
    ok.then_some((ctx, input))
}

/// Why a parameter type cannot work, if it cannot: the context by reference, or an
/// `impl Trait` (a hidden generic).
fn param_problem(ty: &Type) -> Option<&'static str> {
    match ungroup(ty) {
        Type::Reference(reference) if is_context(&reference.elem) => {
            Some("take the context by value: `ctx: AgentContext` (each attempt gets its own)")
        }
        Type::ImplTrait(_) => Some(
            "an endpoint fn cannot be generic: an `impl Trait` parameter is a hidden generic; \
             name a concrete type",
        ),
        _ => None,
    }
}

/// The wrapper's parameter: the user's name when the pattern is a plain binding.
fn param(pat: &Pat, ty: Type, fallback: &str) -> Param {
    let name = match pat {
        Pat::Ident(binding) if binding.by_ref.is_none() && binding.subpat.is_none() => {
            binding.ident.clone()
        }
        _ => Ident::new(fallback, Span::mixed_site()),
    };
    Param { name, ty }
}

/// Whether `ty` is the context: a path whose last segment is `AgentContext`.
fn is_context(ty: &Type) -> bool {
    match ungroup(ty) {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().is_some_and(|segment| {
                segment.ident == "AgentContext" && segment.arguments.is_none()
            })
        }
        _ => false,
    }
}

/// `ty` without invisible groups and parentheses.
fn ungroup(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => ungroup(&group.elem),
        Type::Paren(paren) => ungroup(&paren.elem),
        other => other,
    }
}

/// `O` and `E` of the declared `Result<O, E>`.
fn result_types(sig: &Signature, errors: &mut Errors) -> Option<(Type, Type)> {
    const USAGE: &str = "an endpoint returns `Result<Output, Error>`, where `Output: \
                         Serialize` and `Error: Into<AgentError>`";
    let ty = match &sig.output {
        ReturnType::Type(_, ty) => ty,
        ReturnType::Default => {
            let span = sig.paren_token.span.close();
            let message = format!("{USAGE}: add `-> Result<..., AgentError>`");
            errors.push(syn::Error::new(span, message));
            return None;
        }
    };
    match <[Type; 2]>::try_from(result_arguments(ty)) {
        Ok([output, error]) => {
            // Check both, so both problems are reported.
            let checked = [named(&output, errors), named(&error, errors)];
            checked.iter().all(|ok| *ok).then_some((output, error))
        }
        Err(types) => {
            let fix = match types.len() {
                1 => {
                    "write the error type too (aliases like `anyhow::Result<T>` hide it): \
                     `Result<T, AgentError>`"
                }
                _ => "return `Result<T, AgentError>`",
            };
            errors.at(ty, format!("{USAGE}: {fix}"));
            None
        }
    }
}

/// The type arguments of `ty` if it is a `Result<...>` (by its last path segment, so
/// `std::result::Result` works), else none.
fn result_arguments(ty: &Type) -> Vec<Type> {
    let Type::Path(path) = ungroup(ty) else {
        return Vec::new();
    };
    let Some(last) = path.path.segments.last().filter(|_| path.qself.is_none()) else {
        return Vec::new();
    };
    match &last.arguments {
        PathArguments::AngleBracketed(args) if last.ident == "Result" => args
            .args
            .iter()
            .filter_map(|arg| match arg {
                GenericArgument::Type(ty) => Some(ty.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The output and error types are named in the generated code (the handler decodes and
/// encodes them), so they cannot be `impl Trait`.
fn named(ty: &Type, errors: &mut Errors) -> bool {
    if !matches!(ungroup(ty), Type::ImplTrait(_)) {
        return true;
    }
    errors.at(
        ty,
        "an endpoint's output and error types must be named: the generated JSON handler \
         names them; write the concrete type instead of `impl Trait`",
    );
    false
}
