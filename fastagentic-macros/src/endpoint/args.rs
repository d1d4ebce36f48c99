//! The attribute's top-level keys: `#[agent_endpoint(path = "/x", model = "...",
//! retry(...), ...)]`.

use fastagentic_policy::OnTimeout;
use fastagentic_policy::keys::{self, endpoint::KEYS};
use proc_macro2::TokenStream;
use syn::LitStr;
use syn::meta::ParseNestedMeta;

use super::policies::{
    self, CIRCUIT_BREAKER, Fallback, RATE_LIMIT, RETRY, Source, TIMEOUT, model_name,
};
use crate::attr::literal::{self, Field};
use crate::attr::settings::{Settings, Value, model_and_settings};
use crate::attr::{self as attr, Errors, Seen, key_ident, skip_value, unknown_key};
use crate::paths::{self, Paths};

/// The attribute, read. Absent keys take their defaults when the code is generated.
#[derive(Default)]
pub(super) struct Args {
    pub(super) path: Option<LitStr>,
    pub(super) name: Option<LitStr>,
    pub(super) description: Option<LitStr>,
    pub(super) model: Option<LitStr>,
    pub(super) stream: bool,
    /// `durable = <bool>`, with the value as written for errors about it.
    pub(super) durable: Option<(bool, syn::Expr)>,
    pub(super) retry: Option<Source<Settings>>,
    pub(super) circuit_breaker: Option<Source<Settings>>,
    /// `circuit_breaker_for("model", ...)`, in order.
    pub(super) breakers_for: Vec<(LitStr, Settings)>,
    pub(super) timeout: Option<Source<Settings>>,
    pub(super) fallback: Option<Source<Fallback>>,
    pub(super) rate_limit: Option<Source<Settings>>,
    /// `crate = path`: where the runtime is, when not at `::fastagentic`.
    krate: Option<syn::Path>,
    /// Keys seen so far, to refuse duplicates.
    seen: Seen,
}

impl Args {
    /// Reads the attribute, recording every mistake in `errors`.
    pub(super) fn parse(attr: TokenStream, errors: &mut Errors) -> Args {
        let mut args = Args::default();
        let parser = syn::meta::parser(|meta| args.key(&meta, errors));
        if let Err(err) = syn::parse::Parser::parse2(parser, attr) {
            errors.push(err);
        }
        if let Some(Source::Declared(chain)) = &args.fallback {
            chain.check(args.model.as_ref(), errors);
        }
        args.check_durable(errors);
        args
    }

    /// Whether the endpoint is durable.
    pub(super) fn is_durable(&self) -> bool {
        self.durable.as_ref().is_some_and(|(durable, _)| *durable)
    }

    /// The rules that tie `durable` to other keys: no streaming, and `on_timeout =
    /// "checkpoint"` only with it.
    fn check_durable(&self, errors: &mut Errors) {
        if let Some((durable, expr)) = &self.durable
            && let Err(problem) = keys::endpoint::check_durable(*durable, self.stream)
        {
            errors.at(expr, problem);
        }
        let Some(Source::Declared(timeout)) = &self.timeout else {
            return;
        };
        let Some(setting) = timeout.get(keys::timeout::ON_TIMEOUT.name) else {
            return;
        };
        let Value::Choice(_, variant) = setting.value else {
            return;
        };
        let chosen = OnTimeout::ALL
            .iter()
            .find(|option| option.variant_name() == variant);
        let durable = self.is_durable();
        if let Some(Err(problem)) = chosen.map(|o| keys::timeout::check_on_timeout(*o, durable)) {
            errors.at(&setting.tokens, problem);
        }
    }

    /// The paths the generated code names.
    pub(super) fn paths(&self) -> Paths {
        Paths::new(self.krate.as_ref())
    }

    fn key(&mut self, meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
        let ident = key_ident(meta)?;
        let key = ident.to_string();
        if !KEYS.contains(&key.as_str()) {
            errors.push(match keys::owner_of(&key) {
                Some(policy) => syn::Error::new_spanned(
                    &ident,
                    format!("`{key}` is a `{policy}` key: write it inside `{policy}(...)`"),
                ),
                None => unknown_key(&ident, "", KEYS),
            });
            return skip_value(meta);
        }
        // `circuit_breaker_for` is repeated, once per model.
        if key != "circuit_breaker_for" && !self.seen.first(meta, &ident, "", errors)? {
            return Ok(());
        }
        match key.as_str() {
            "path" => self.path = attr::route_path(meta, "path", errors)?,
            "name" => self.name = attr::string(meta, &key, errors)?.and_then(|n| name(n, errors)),
            "description" => self.description = attr::string(meta, &key, errors)?,
            "model" => {
                let model = attr::string(meta, &key, errors)?;
                self.model = model.and_then(|m| errors.take(model_name(m)));
            }
            "stream" => self.stream = attr::boolean(meta, &key, errors)?.unwrap_or_default(),
            "durable" => self.durable = durable(meta, errors)?,
            "crate" => self.krate = paths::crate_path(meta, errors)?,
            "retry" => self.retry = RETRY.parse(meta, errors)?,
            "circuit_breaker" => self.circuit_breaker = CIRCUIT_BREAKER.parse(meta, errors)?,
            "circuit_breaker_for" => self.breaker_for(meta, errors)?,
            "timeout" => self.timeout = TIMEOUT.parse(meta, errors)?,
            "fallback" => self.fallback = policies::parse_fallback(meta, errors)?,
            _ => self.rate_limit = RATE_LIMIT.parse(meta, errors)?,
        }
        Ok(())
    }

    /// `circuit_breaker_for("model", key = value, ...)`: one model's breaker.
    fn breaker_for(&mut self, meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
        const USAGE: &str = "`circuit_breaker_for` takes a model and breaker settings: \
                             `circuit_breaker_for(\"gpt-4o\", failure_threshold = 3)`";
        let Some((model, rest)) = model_and_settings(meta, USAGE, errors)? else {
            return Ok(());
        };
        let settings = CIRCUIT_BREAKER.parse_tokens(rest, errors)?;
        let Some(model) = errors.take(model_name(model)) else {
            return Ok(());
        };
        if self
            .breakers_for
            .iter()
            .any(|(m, _)| m.value() == model.value())
        {
            errors.at(
                &model,
                format!(
                    "a breaker for `{}` is already declared; merge the two \
                     `circuit_breaker_for(\"{}\", ...)` into one",
                    model.value(),
                    model.value()
                ),
            );
            return Ok(());
        }
        self.breakers_for.push((model, settings));
        Ok(())
    }
}

/// `name` must not be blank.
fn name(name: LitStr, errors: &mut Errors) -> Option<LitStr> {
    if !name.value().trim().is_empty() {
        return Some(name);
    }
    errors.at(
        &name,
        "`name` cannot be empty; leave it out to use the fn's name",
    );
    None
}

/// `durable = <bool>`.
fn durable(
    meta: &ParseNestedMeta<'_>,
    errors: &mut Errors,
) -> syn::Result<Option<(bool, syn::Expr)>> {
    let Some(expr) = attr::assigned(meta, "durable", errors)? else {
        return Ok(None);
    };
    let field = Field {
        policy: "",
        key: "durable",
    };
    Ok(errors
        .take(literal::boolean(&expr, field))
        .map(|durable| (durable, expr)))
}
