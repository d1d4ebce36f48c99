//! The policies an endpoint declares, each either with literal settings checked here
//! (`retry(max_attempts = 3)`) or as an expression evaluated at run time
//! (`retry = my_policy()`). Either way the generated code builds the policy with the
//! runtime's builder, which checks again, by the same rules, whatever the macro cannot
//! see.

mod circuit_breaker;
mod fallback;
mod rate_limit;
mod retry;
mod timeout;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Expr, Token, token};

use crate::attr::Errors;
use crate::attr::settings::{Scope, Settings, parse_setting};
use crate::paths::{Paths, respan};

pub(super) use self::fallback::{Fallback, model_name};

/// How a policy is given.
pub(super) enum Source<D> {
    /// `name(key = literal, ...)`, checked at compile time.
    Declared(D),
    /// `name = expression`, evaluated when the endpoint's policies are built.
    Expr(Expr),
}

/// A policy with literal settings: its keys, its cross-key checks and its builder.
pub(super) struct Policy {
    scope: Scope,
    /// The policy's type in the runtime.
    ty: &'static str,
    /// Checks that involve several keys (each key's own range is checked on reading).
    check: fn(&Settings, &mut Errors),
    /// The builder calls between `Type::builder()` and `.build()?`.
    calls: fn(&Settings, &Paths) -> TokenStream,
}

/// `retry(...)`.
pub(super) const RETRY: Policy = retry::POLICY;
/// `circuit_breaker(...)` and `circuit_breaker_for("model", ...)`.
pub(super) const CIRCUIT_BREAKER: Policy = circuit_breaker::POLICY;
/// `timeout(...)`.
pub(super) const TIMEOUT: Policy = timeout::POLICY;
/// `rate_limit(...)`.
pub(super) const RATE_LIMIT: Policy = rate_limit::POLICY;

impl Policy {
    /// Reads `name(...)` or `name = expr`; `None` (error recorded) when neither follows.
    pub(super) fn parse(
        &self,
        meta: &ParseNestedMeta<'_>,
        errors: &mut Errors,
    ) -> syn::Result<Option<Source<Settings>>> {
        if meta.input.peek(Token![=]) {
            return Ok(Some(Source::Expr(meta.value()?.parse()?)));
        }
        if meta.input.peek(token::Paren) {
            let mut settings = Settings::default();
            crate::attr::nested(meta, |m| {
                parse_setting(&m, self.scope, &mut settings, errors)
            })?;
            (self.check)(&settings, errors);
            return Ok(Some(Source::Declared(settings)));
        }
        errors.push(needs_settings(meta, self.scope.policy));
        Ok(None)
    }

    /// Reads settings from `tokens` (what follows the model in `circuit_breaker_for`).
    pub(super) fn parse_tokens(
        &self,
        tokens: TokenStream,
        errors: &mut Errors,
    ) -> syn::Result<Settings> {
        let mut settings = Settings::default();
        let parser = syn::meta::parser(|m| parse_setting(&m, self.scope, &mut settings, errors));
        syn::parse::Parser::parse2(parser, tokens)?;
        (self.check)(&settings, errors);
        Ok(settings)
    }

    /// The expression that evaluates to the policy, inside a fn returning
    /// `Result<_, PolicyError>`.
    pub(super) fn build(&self, source: &Source<Settings>, paths: &Paths) -> TokenStream {
        match source {
            Source::Declared(settings) => self.build_declared(settings, paths),
            Source::Expr(expr) => from_expr(self.ty, expr, paths),
        }
    }

    /// The policy built from declared settings: `Type::builder() <calls> .build()?`.
    pub(super) fn build_declared(&self, settings: &Settings, paths: &Paths) -> TokenStream {
        let ty = paths.policy(self.ty);
        let calls = (self.calls)(settings, paths);
        quote!(#ty::builder() #calls .build()?)
    }
}

/// "`retry` needs settings".
fn needs_settings(meta: &ParseNestedMeta<'_>, policy: &str) -> syn::Error {
    meta.error(format!(
        "`{policy}` needs settings: `{policy}(...)`, or `{policy} = <expression>` for a \
         policy computed at run time"
    ))
}

/// An expression-form policy converted through `IntoPolicy`, spanned on the expression
/// so a value of the wrong type is reported there.
fn from_expr(ty: &str, expr: &Expr, paths: &Paths) -> TokenStream {
    let ty = respan(paths.policy(ty), expr.span());
    let into_policy = respan(paths.policy_conversion(), expr.span());
    quote_spanned! {expr.span()=>
        #into_policy::<#ty>::into_policy(#expr)?
    }
}

/// `fallback(...)` or `fallback = expr`; see [`Fallback`].
pub(super) fn parse_fallback(
    meta: &ParseNestedMeta<'_>,
    errors: &mut Errors,
) -> syn::Result<Option<Source<Fallback>>> {
    if meta.input.peek(Token![=]) {
        return Ok(Some(Source::Expr(meta.value()?.parse()?)));
    }
    if meta.input.peek(token::Paren) {
        return Fallback::parse(meta, errors).map(|f| Some(Source::Declared(f)));
    }
    errors.push(needs_settings(meta, "fallback"));
    Ok(None)
}

/// The fallback chain's expression; `model` is the endpoint's, the default primary.
pub(super) fn build_fallback(
    source: &Source<Fallback>,
    model: Option<&syn::LitStr>,
    paths: &Paths,
) -> TokenStream {
    match source {
        Source::Declared(fallback) => fallback.build(model, paths),
        Source::Expr(expr) => from_expr("FallbackChain", expr, paths),
    }
}
