//! The declarative settings of a policy (`retry(max_attempts = 3, ...)`), read by the key
//! tables of `fastagentic_policy::keys`: which keys a policy takes, how each value is read
//! and checked, and how it becomes a builder call.

use fastagentic_policy::ErrorClass;
use fastagentic_policy::keys::{self, Choice, Key, Kind};
use proc_macro2::{Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::meta::ParseNestedMeta;
use syn::{Expr, Ident, LitStr, Token, token};

use super::literal::{self, Field};
use super::{Errors, duplicate_key, key_ident, nested, skip_value, unknown_key};
use crate::paths::Paths;

/// A value read from the attribute, already checked.
pub(crate) enum Value {
    Count(u32),
    Millis(u64),
    Float(f64),
    Flag(bool),
    Classes(Vec<ErrorClass>),
    /// The option and the variant named.
    Choice(&'static Choice, &'static str),
    /// `None`: turned off.
    Nested(Option<Settings>),
}

/// One key given in the attribute.
pub(crate) struct Setting {
    pub(crate) key: &'static Key,
    /// The key as written, for errors about the key.
    pub(crate) ident: Ident,
    /// The value as written, for errors about the value.
    pub(crate) tokens: TokenStream,
    pub(crate) value: Value,
}

/// The keys given for one policy, in the order written.
#[derive(Default)]
pub(crate) struct Settings {
    /// The settings whose values were right.
    items: Vec<Setting>,
    /// Every key given, right or wrong: a wrong value is reported once, not again as a
    /// missing key.
    given: Vec<&'static str>,
    /// Whether an unknown key was given (maybe a misspelt required one).
    unknown: bool,
}

/// A policy's name and keys, for reading its settings.
#[derive(Clone, Copy)]
pub(crate) struct Scope {
    pub(crate) policy: &'static str,
    pub(crate) keys: &'static [Key],
}

impl Settings {
    /// The setting of `name`, if given.
    pub(crate) fn get(&self, name: &str) -> Option<&Setting> {
        self.items.iter().find(|s| s.key.name() == name)
    }

    /// Whether `name` was given, even with a wrong value, or may have been given
    /// misspelt: either way it has been reported already.
    pub(crate) fn is_given(&self, name: &str) -> bool {
        self.unknown || self.given.contains(&name)
    }

    /// `.setter(value)` for every setting whose key has a setter.
    pub(crate) fn setter_calls(&self, paths: &Paths) -> TokenStream {
        self.with_setters()
            .map(|(setter, value)| {
                let value = value.to_tokens(paths);
                quote!(.#setter(#value))
            })
            .collect()
    }

    /// `var.field = value;` for every setting, for plain structs whose fields the
    /// setters name.
    pub(crate) fn field_assignments(&self, var: &Ident, paths: &Paths) -> TokenStream {
        self.with_setters()
            .map(|(field, value)| {
                let value = value.to_tokens(paths);
                quote!(#var.#field = #value;)
            })
            .collect()
    }

    fn with_setters(&self) -> impl Iterator<Item = (Ident, &Value)> {
        self.items
            .iter()
            .filter(|s| !s.key.setter.is_empty())
            .map(|s| (Ident::new(s.key.setter, Span::call_site()), &s.value))
    }
}

impl Setting {
    /// The value as whole milliseconds, for cross-key checks of durations.
    pub(crate) fn millis(&self) -> Option<u64> {
        match self.value {
            Value::Millis(ms) => Some(ms),
            _ => None,
        }
    }
}

impl Value {
    /// The Rust expression for the value, as the builder takes it.
    pub(crate) fn to_tokens(&self, paths: &Paths) -> TokenStream {
        match self {
            Value::Count(n) => Literal::u32_suffixed(*n).into_token_stream(),
            Value::Millis(ms) => {
                let ms = Literal::u64_suffixed(*ms);
                quote!(::core::time::Duration::from_millis(#ms))
            }
            Value::Float(f) => Literal::f64_suffixed(*f).into_token_stream(),
            Value::Flag(b) => quote!(#b),
            Value::Classes(classes) => paths.class_set(classes),
            Value::Choice(choice, variant) => paths.choice(choice.enum_name, variant),
            Value::Nested(_) => TokenStream::new(),
        }
    }
}

/// Reads `key("model", settings...)`: the model and the tokens of the settings after it.
/// `None` (error recorded, tokens consumed) when the list does not start with a string.
pub(crate) fn model_and_settings(
    meta: &ParseNestedMeta<'_>,
    usage: &str,
    errors: &mut Errors,
) -> syn::Result<Option<(LitStr, TokenStream)>> {
    if !meta.input.peek(token::Paren) {
        errors.push(meta.error(usage));
        skip_value(meta)?;
        return Ok(None);
    }
    let content;
    syn::parenthesized!(content in meta.input);
    let Ok(model) = content.parse::<LitStr>() else {
        errors.push(content.error(usage));
        content.parse::<TokenStream>()?;
        return Ok(None);
    };
    if !content.is_empty() {
        content.parse::<Token![,]>()?;
    }
    Ok(Some((model, content.parse()?)))
}

/// Reads one `key = value` (or nested `key(...)`) of `scope` into `settings`. Mistakes in
/// a value are recorded in `errors` and parsing goes on; only a syntax error stops it.
pub(crate) fn parse_setting(
    meta: &ParseNestedMeta<'_>,
    scope: Scope,
    settings: &mut Settings,
    errors: &mut Errors,
) -> syn::Result<()> {
    let ident = key_ident(meta)?;
    let Some(key) = keys::find(scope.keys, &ident.to_string()) else {
        errors.push(unknown_key(&ident, scope.policy, &keys::names(scope.keys)));
        settings.unknown = true;
        return skip_value(meta);
    };
    if settings.given.contains(&key.name()) {
        errors.push(duplicate_key(&ident, scope.policy));
        return skip_value(meta);
    }
    settings.given.push(key.name());
    let read = match &key.kind {
        Kind::Nested(inner) if meta.input.peek(token::Paren) => {
            let nested_scope = Scope {
                policy: inner.name,
                keys: inner.keys,
            };
            let mut inner = Settings::default();
            // The parenthesized group, as one token tree, for errors about the whole.
            let tokens = meta.input.fork().parse::<TokenTree>()?.into_token_stream();
            nested(meta, |m| {
                parse_setting(&m, nested_scope, &mut inner, errors)
            })?;
            Some((Value::Nested(Some(inner)), tokens))
        }
        kind => read_assigned(meta, scope, key, kind, errors)?,
    };
    if let Some((value, tokens)) = read {
        settings.items.push(Setting {
            key,
            ident,
            tokens,
            value,
        });
    }
    Ok(())
}

/// Reads `= value` for `key`; `None` (with the error recorded) when it is wrong.
fn read_assigned(
    meta: &ParseNestedMeta<'_>,
    scope: Scope,
    key: &'static Key,
    kind: &'static Kind,
    errors: &mut Errors,
) -> syn::Result<Option<(Value, TokenStream)>> {
    let name = key.name();
    if !meta.input.peek(Token![=]) {
        let example = match kind {
            Kind::Nested(_) => format!("`{name}(...)` or `{name} = false`"),
            _ => format!("`{name} = ...`"),
        };
        errors.push(meta.error(format!("`{name}` needs a value: {example}")));
        skip_value(meta)?;
        return Ok(None);
    }
    let expr: Expr = meta.value()?.parse()?;
    let field = Field {
        policy: scope.policy,
        key: name,
    };
    let value = errors.take(read(&expr, field, kind));
    Ok(value.map(|v| (v, expr.into_token_stream())))
}

/// Reads one value of `kind` and checks it by the policy language's rule for the key.
fn read(expr: &Expr, field: Field<'_>, kind: &'static Kind) -> syn::Result<Value> {
    let checked = |problem: keys::Problem| syn::Error::new_spanned(expr, problem);
    match kind {
        Kind::Count(count) => {
            let n = literal::integer(expr, field)?;
            count.check(n).map(Value::Count).map_err(checked)
        }
        Kind::Millis(millis) => {
            let ms = literal::millis(expr, field)?;
            millis.check(ms).map(Value::Millis).map_err(checked)
        }
        Kind::Float(float) => {
            let f = literal::float(expr, field)?;
            float.check(f).map(Value::Float).map_err(checked)
        }
        Kind::Flag(_) => literal::boolean(expr, field).map(Value::Flag),
        Kind::Classes(_) => {
            let classes = literal::classes(expr, field)?;
            Ok(Value::Classes(
                classes.into_iter().map(|(c, _)| c).collect(),
            ))
        }
        Kind::Choice(choice) => {
            let variant = literal::choice(expr, field, choice)?;
            Ok(Value::Choice(choice, variant))
        }
        Kind::Nested(_) => match literal::boolean(expr, field)? {
            true => Ok(Value::Nested(Some(Settings::default()))),
            false => Ok(Value::Nested(None)),
        },
    }
}
