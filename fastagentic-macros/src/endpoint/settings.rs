//! The declarative settings of a policy (`retry(max_attempts = 3, ...)`): the keys a
//! policy takes, how each value is read and checked, and how it becomes a builder call.
//!
//! Each policy module describes its keys as data ([`Key`]); reading, range checks,
//! duplicate and unknown-key errors, and the generated setter calls are shared here.

use proc_macro2::{Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::meta::ParseNestedMeta;
use syn::{Expr, Ident, LitStr, Token, token};

use super::diag::{Errors, suggestion};
use super::literal::{self, Field};
use super::names::Choices;

/// One key of a policy.
pub(super) struct Key {
    /// The attribute key, equal to the policy's serde field name.
    pub(super) name: &'static str,
    /// What it holds and which values are allowed.
    pub(super) kind: Kind,
    /// The builder method it calls with its value, or `""` when the policy module
    /// lowers it by hand.
    pub(super) setter: &'static str,
}

/// What a key holds.
pub(super) enum Kind {
    /// A `u32` within `min..=max`; `why` explains the bounds.
    Count {
        min: u32,
        max: u32,
        why: &'static str,
    },
    /// A duration in whole milliseconds, at least `min`.
    Millis { min: u64, why: &'static str },
    /// An `f64` for which `ok` holds; `range` and `why` explain it.
    Float {
        ok: fn(f64) -> bool,
        range: &'static str,
        why: &'static str,
    },
    /// `true` or `false`.
    Flag,
    /// A list of error class names.
    Classes,
    /// One of a few names.
    Choice(&'static Choices),
    /// A nested list of these keys, or `= false` to turn the feature off (`= true` keeps
    /// its defaults).
    Nested(&'static [Key]),
}

/// A value read from the attribute, already checked.
pub(super) enum Value {
    Count(u32),
    Millis(u64),
    Float(f64),
    Flag(bool),
    /// `ErrorClass` variants.
    Classes(Vec<&'static str>),
    /// The option's enum and the variant.
    Choice(&'static Choices, &'static str),
    /// `None`: turned off.
    Nested(Option<Settings>),
}

/// One key given in the attribute.
pub(super) struct Setting {
    pub(super) key: &'static Key,
    /// The key as written, for errors about the key.
    pub(super) ident: Ident,
    /// The value as written, for errors about the value.
    pub(super) tokens: TokenStream,
    pub(super) value: Value,
}

/// The keys given for one policy, in the order written.
#[derive(Default)]
pub(super) struct Settings {
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
pub(super) struct Scope {
    pub(super) policy: &'static str,
    pub(super) keys: &'static [Key],
}

impl Settings {
    /// The setting of `name`, if given.
    pub(super) fn get(&self, name: &str) -> Option<&Setting> {
        self.items.iter().find(|s| s.key.name == name)
    }

    /// Whether `name` was given, even with a wrong value, or may have been given
    /// misspelt: either way it has been reported already.
    pub(super) fn is_given(&self, name: &str) -> bool {
        self.unknown || self.given.contains(&name)
    }

    /// `.setter(value)` for every setting whose key has a setter.
    pub(super) fn setter_calls(&self) -> TokenStream {
        self.items
            .iter()
            .filter(|s| !s.key.setter.is_empty())
            .map(|s| {
                let setter = Ident::new(s.key.setter, Span::call_site());
                let value = s.value.to_tokens();
                quote!(.#setter(#value))
            })
            .collect()
    }

    /// `var.field = value;` for every setting, for plain structs whose fields the
    /// setters name.
    pub(super) fn field_assignments(&self, var: &Ident) -> TokenStream {
        self.items
            .iter()
            .filter(|s| !s.key.setter.is_empty())
            .map(|s| {
                let field = Ident::new(s.key.setter, Span::call_site());
                let value = s.value.to_tokens();
                quote!(#var.#field = #value;)
            })
            .collect()
    }
}

impl Setting {
    /// The value as a count, a duration in ms or a float, for cross-key checks.
    pub(super) fn number(&self) -> Option<f64> {
        match self.value {
            Value::Count(n) => Some(f64::from(n)),
            // Milliseconds from a literal: far below 2^53 in any sane attribute.
            #[allow(clippy::cast_precision_loss)]
            Value::Millis(ms) => Some(ms as f64),
            Value::Float(f) => Some(f),
            _ => None,
        }
    }
}

impl Value {
    /// The Rust expression for the value, as the builder takes it.
    pub(super) fn to_tokens(&self) -> TokenStream {
        match self {
            Value::Count(n) => Literal::u32_suffixed(*n).into_token_stream(),
            Value::Millis(ms) => {
                let ms = Literal::u64_suffixed(*ms);
                quote!(::core::time::Duration::from_millis(#ms))
            }
            Value::Float(f) => Literal::f64_suffixed(*f).into_token_stream(),
            Value::Flag(b) => quote!(#b),
            Value::Classes(variants) => class_set(variants),
            Value::Choice(choices, variant) => {
                let name = Ident::new(choices.enum_name, Span::call_site());
                let variant = Ident::new(variant, Span::call_site());
                quote!(::fastagentic::reliability::#name::#variant)
            }
            Value::Nested(_) => TokenStream::new(),
        }
    }
}

/// `ClassSet::of(&[ErrorClass::A, ...])` for the variants.
pub(super) fn class_set(variants: &[&'static str]) -> TokenStream {
    let variants = variants.iter().map(|v| Ident::new(v, Span::call_site()));
    quote!(::fastagentic::ClassSet::of(&[#(::fastagentic::ErrorClass::#variants),*]))
}

/// The key of `meta` as an identifier.
pub(super) fn key_ident(meta: &ParseNestedMeta<'_>) -> syn::Result<Ident> {
    meta.path
        .get_ident()
        .cloned()
        .ok_or_else(|| meta.error("expected a key, like `max_attempts = 3`"))
}

/// Consumes the value of a key that is being rejected (`= expr` or `(...)`), so parsing
/// can go on to the next key.
pub(super) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

/// Reads the parenthesized list after `meta`'s key with `item` for each entry. Unlike
/// `ParseNestedMeta::parse_nested_meta`, an empty list is fine: `circuit_breaker()` means
/// a breaker with the defaults.
pub(super) fn nested(
    meta: &ParseNestedMeta<'_>,
    item: impl FnMut(ParseNestedMeta<'_>) -> syn::Result<()>,
) -> syn::Result<()> {
    let content;
    syn::parenthesized!(content in meta.input);
    syn::parse::Parser::parse2(syn::meta::parser(item), content.parse()?)
}

/// Reads `key("model", settings...)`: the model and the tokens of the settings after it.
/// `None` (error recorded, tokens consumed) when the list does not start with a string.
pub(super) fn model_and_settings(
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

/// "unknown `retry` key `x`; did you mean `y`?" (`policy` empty at the top level).
pub(super) fn unknown_key(ident: &Ident, policy: &str, valid: &[&str]) -> syn::Error {
    let what = match policy {
        "" => "key".to_owned(),
        policy => format!("`{policy}` key"),
    };
    let hint = suggestion(&ident.to_string(), valid);
    syn::Error::new_spanned(ident, format!("unknown {what} `{ident}`; {hint}"))
}

/// "`x` is set twice".
pub(super) fn duplicate_key(ident: &Ident, policy: &str) -> syn::Error {
    let place = match policy {
        "" => "the attribute".to_owned(),
        policy => format!("`{policy}(...)`"),
    };
    syn::Error::new_spanned(
        ident,
        format!("duplicate key `{ident}`: {place} already sets it; remove one of the two"),
    )
}

/// Reads one `key = value` (or nested `key(...)`) of `scope` into `settings`. Mistakes in
/// a value are recorded in `errors` and parsing goes on; only a syntax error stops it.
pub(super) fn parse_setting(
    meta: &ParseNestedMeta<'_>,
    scope: Scope,
    settings: &mut Settings,
    errors: &mut Errors,
) -> syn::Result<()> {
    let ident = key_ident(meta)?;
    let Some(key) = scope.keys.iter().find(|k| ident == k.name) else {
        let valid: Vec<&str> = scope.keys.iter().map(|k| k.name).collect();
        errors.push(unknown_key(&ident, scope.policy, &valid));
        settings.unknown = true;
        return skip_value(meta);
    };
    if settings.given.contains(&key.name) {
        errors.push(duplicate_key(&ident, scope.policy));
        return skip_value(meta);
    }
    settings.given.push(key.name);
    let read = match &key.kind {
        Kind::Nested(keys) if meta.input.peek(token::Paren) => {
            let nested = Scope {
                policy: key.name,
                keys,
            };
            let mut inner = Settings::default();
            // The parenthesized group, as one token tree, for errors about the whole.
            let tokens = meta.input.fork().parse::<TokenTree>()?.into_token_stream();
            self::nested(meta, |m| parse_setting(&m, nested, &mut inner, errors))?;
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
    kind: &Kind,
    errors: &mut Errors,
) -> syn::Result<Option<(Value, TokenStream)>> {
    if !meta.input.peek(Token![=]) {
        let example = match kind {
            Kind::Nested(_) => format!("`{0}(...)` or `{0} = false`", key.name),
            _ => format!("`{} = ...`", key.name),
        };
        errors.push(meta.error(format!("`{}` needs a value: {example}", key.name)));
        skip_value(meta)?;
        return Ok(None);
    }
    let expr: Expr = meta.value()?.parse()?;
    let field = Field {
        policy: scope.policy,
        key: key.name,
    };
    let value = errors.take(read(&expr, field, kind));
    Ok(value.map(|v| (v, expr.into_token_stream())))
}

/// Reads and checks one value of `kind`.
fn read(expr: &Expr, field: Field<'_>, kind: &Kind) -> syn::Result<Value> {
    match kind {
        Kind::Count { min, max, why } => count(expr, field, (*min, *max), why),
        Kind::Millis { min, why } => millis(expr, field, *min, why),
        Kind::Float { ok, range, why } => match literal::float(expr, field)? {
            f if ok(f) => Ok(Value::Float(f)),
            f => Err(out_of_range(
                expr,
                format!("`{}` is {f}, outside the allowed range {range}", field.key),
                why,
            )),
        },
        Kind::Flag => literal::boolean(expr, field).map(Value::Flag),
        Kind::Classes => {
            let classes = literal::classes(expr, field)?;
            let variants = classes.into_iter().map(|(v, _)| v).collect();
            Ok(Value::Classes(variants))
        }
        Kind::Choice(choices) => {
            let variant = literal::choice(expr, field, choices.values)?;
            Ok(Value::Choice(choices, variant))
        }
        Kind::Nested(_) => match literal::boolean(expr, field)? {
            true => Ok(Value::Nested(Some(Settings::default()))),
            false => Ok(Value::Nested(None)),
        },
    }
}

/// A `u32` within `min..=max`.
fn count(expr: &Expr, field: Field<'_>, (min, max): (u32, u32), why: &str) -> syn::Result<Value> {
    let key = field.key;
    let n = literal::integer(expr, field)?;
    match u32::try_from(n) {
        Ok(n) if (min..=max).contains(&n) => Ok(Value::Count(n)),
        _ if n < u64::from(min) => Err(out_of_range(
            expr,
            format!("`{key}` must be at least {min}"),
            why,
        )),
        _ => Err(out_of_range(
            expr,
            format!("`{key}` is {n}, above its maximum of {max}"),
            why,
        )),
    }
}

/// Milliseconds, at least `min`.
fn millis(expr: &Expr, field: Field<'_>, min: u64, why: &str) -> syn::Result<Value> {
    let key = field.key;
    match literal::millis(expr, field)? {
        ms if ms >= min => Ok(Value::Millis(ms)),
        _ if min == 1 => Err(out_of_range(
            expr,
            format!("`{key}` must be greater than zero"),
            why,
        )),
        _ => Err(out_of_range(
            expr,
            format!("`{key}` must be at least {min} ms"),
            why,
        )),
    }
}

/// "`problem`: why", at the value.
fn out_of_range(expr: &Expr, problem: String, why: &str) -> syn::Error {
    let message = match why {
        "" => problem,
        why => format!("{problem}: {why}"),
    };
    syn::Error::new_spanned(expr, message)
}
