//! `fallback(primary = "gpt-4o", then("gpt-4o-mini", on = ["rate_limit"]), ...)`: a
//! `FallbackChain`. `primary` defaults to the endpoint's `model`.

use fastagentic_policy::ErrorClass;
use fastagentic_policy::keys::endpoint::{FALLBACK_KEYS, THEN_KEYS};
use proc_macro2::TokenStream;
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::{Expr, Ident, LitStr, Token};

use crate::attr::literal::{self, Field};
use crate::attr::settings::{Scope, Settings, Value, model_and_settings, parse_setting};
use crate::attr::{Errors, duplicate_key, key_ident, nested, skip_value, unknown_key};
use crate::paths::Paths;

/// The keys of `then("model", ...)`.
const THEN: Scope = Scope {
    policy: "then",
    keys: THEN_KEYS,
};

/// A declared fallback chain.
pub(crate) struct Fallback {
    /// The `fallback` key, for errors about the chain as a whole.
    ident: Ident,
    primary: Option<LitStr>,
    steps: Vec<Step>,
}

/// `then("model", on = [...])`.
struct Step {
    model: LitStr,
    on: Vec<ErrorClass>,
}

impl Fallback {
    /// Reads `fallback(...)`.
    pub(super) fn parse(meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<Self> {
        let mut chain = Fallback {
            ident: key_ident(meta)?,
            primary: None,
            steps: Vec::new(),
        };
        nested(meta, |m| chain.key(&m, errors))?;
        Ok(chain)
    }

    fn key(&mut self, meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
        let ident = key_ident(meta)?;
        if ident == "then" {
            return self.then(meta, errors);
        }
        if ident != "primary" {
            errors.push(unknown_key(&ident, "fallback", FALLBACK_KEYS));
            return skip_value(meta);
        }
        if self.primary.is_some() {
            errors.push(duplicate_key(&ident, "fallback"));
            return skip_value(meta);
        }
        if !meta.input.peek(Token![=]) {
            errors.push(meta.error("`primary` needs a model: `primary = \"gpt-4o\"`"));
            return skip_value(meta);
        }
        let expr: Expr = meta.value()?.parse()?;
        let field = Field {
            policy: "fallback",
            key: "primary",
        };
        self.primary = errors.take(literal::string(&expr, field).and_then(model_name));
        Ok(())
    }

    /// Reads `then("model", on = [...])`.
    fn then(&mut self, meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
        const USAGE: &str = "`then` takes the next model and the error classes that send the \
                             run to it: `then(\"gpt-4o-mini\", on = [\"rate_limit\"])`";
        let Some((model, rest)) = model_and_settings(meta, USAGE, errors)? else {
            return Ok(());
        };
        let mut settings = Settings::default();
        let parser = syn::meta::parser(|m| parse_setting(&m, THEN, &mut settings, errors));
        syn::parse::Parser::parse2(parser, rest)?;
        if let Some(model) = errors.take(model_name(model))
            && let Some(step) = step(model, &settings, errors)
        {
            self.steps.push(step);
        }
        Ok(())
    }

    /// The chain's models must be distinct, and it needs a primary: its own, or the
    /// endpoint's `model`, which must then agree with it.
    pub(crate) fn check(&self, model: Option<&LitStr>, errors: &mut Errors) {
        let primary = match (&self.primary, model) {
            (Some(primary), Some(model)) if primary.value() != model.value() => {
                errors.at(
                    primary,
                    format!(
                        "the fallback chain starts at `{}` but the endpoint's `model` is `{}`; \
                         the chain decides which model runs first, so make them equal or \
                         remove `model`",
                        primary.value(),
                        model.value()
                    ),
                );
                return;
            }
            (Some(primary), _) => primary,
            (None, Some(model)) => model,
            (None, None) => {
                errors.at(
                    &self.ident,
                    "`fallback(...)` needs its first model: add `primary = \"gpt-4o\"` (or a \
                     top-level `model = \"gpt-4o\"`)",
                );
                return;
            }
        };
        let mut seen = vec![primary.value()];
        for step in &self.steps {
            let name = step.model.value();
            if seen.contains(&name) {
                errors.at(
                    &step.model,
                    format!(
                        "model `{name}` appears twice in the fallback chain; each model gets \
                         one retry loop, so list it once"
                    ),
                );
            }
            seen.push(name);
        }
    }

    /// `FallbackChain::builder(primary).then(model, classes)... .build()?`.
    pub(super) fn build(&self, model: Option<&LitStr>, paths: &Paths) -> TokenStream {
        let primary = self.primary.as_ref().or(model);
        let steps = self.steps.iter().map(|step| {
            let model = &step.model;
            let on = paths.class_set(&step.on);
            quote!(.then(#model, #on))
        });
        let chain = paths.policy("FallbackChain");
        quote! {
            #chain::builder(#primary)
                #(#steps)*
                .build()?
        }
    }
}

/// The step to `model` with the classes of its `on` setting, which must be given and not
/// be empty.
fn step(model: LitStr, settings: &Settings, errors: &mut Errors) -> Option<Step> {
    match settings.get("on").map(|s| (&s.value, &s.tokens)) {
        Some((Value::Classes(on), tokens)) if on.is_empty() => errors.at(
            tokens,
            "an empty `on` list could only follow an open circuit; name the error classes of \
             the previous model that should send the run here",
        ),
        Some((Value::Classes(on), _)) => {
            return Some(Step {
                model,
                on: on.clone(),
            });
        }
        Some(_) => {}
        None if settings.is_given("on") => {}
        None => errors.at(
            &model,
            format!(
                "`then(\"{0}\")` needs `on = [...]`: the error classes of the previous model \
                 that send the run to `{0}`, e.g. `on = [\"rate_limit\", \"timeout\"]`",
                model.value()
            ),
        ),
    }
    None
}

/// A model name: not blank.
pub(crate) fn model_name(lit: LitStr) -> syn::Result<LitStr> {
    if lit.value().trim().is_empty() {
        return Err(syn::Error::new_spanned(
            &lit,
            "a model name cannot be empty: write the model, like \"gpt-4o\"",
        ));
    }
    Ok(lit)
}
