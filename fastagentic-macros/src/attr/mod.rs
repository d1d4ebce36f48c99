//! The attribute language both macros share: `key = value` and `key(...)` lists read
//! with `syn::meta`, every mistake collected (unknown keys with the nearest valid one,
//! duplicates, missing values), literals read and checked against the policy language of
//! `fastagentic-policy`.

mod diag;
pub(crate) mod literal;
pub(crate) mod settings;

use proc_macro2::TokenStream;
use syn::meta::ParseNestedMeta;
use syn::{Expr, Ident, LitStr, Token, token};

use fastagentic_policy::suggestion;

pub(crate) use self::diag::Errors;
use self::literal::Field;

/// The key of `meta` as an identifier (`crate` included).
pub(crate) fn key_ident(meta: &ParseNestedMeta<'_>) -> syn::Result<Ident> {
    meta.path
        .get_ident()
        .cloned()
        .ok_or_else(|| meta.error("expected a key, like `max_attempts = 3`"))
}

/// Consumes the value of a key that is being rejected (`= expr` or `(...)`), so parsing
/// can go on to the next key.
pub(crate) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
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
pub(crate) fn nested(
    meta: &ParseNestedMeta<'_>,
    item: impl FnMut(ParseNestedMeta<'_>) -> syn::Result<()>,
) -> syn::Result<()> {
    let content;
    syn::parenthesized!(content in meta.input);
    syn::parse::Parser::parse2(syn::meta::parser(item), content.parse()?)
}

/// "unknown `retry` key `x`; did you mean `y`?" (`place` empty at the top level).
pub(crate) fn unknown_key(ident: &Ident, place: &str, valid: &[&str]) -> syn::Error {
    let what = match place {
        "" => "key".to_owned(),
        place => format!("`{place}` key"),
    };
    let hint = suggestion(&ident.to_string(), valid);
    syn::Error::new_spanned(ident, format!("unknown {what} `{ident}`; {hint}"))
}

/// "`x` is set twice".
pub(crate) fn duplicate_key(ident: &Ident, place: &str) -> syn::Error {
    let place = match place {
        "" => "the attribute".to_owned(),
        place => format!("`{place}(...)`"),
    };
    syn::Error::new_spanned(
        ident,
        format!("duplicate key `{ident}`: {place} already sets it; remove one of the two"),
    )
}

/// The keys an attribute has seen, to refuse a second one.
#[derive(Default)]
pub(crate) struct Seen(Vec<String>);

impl Seen {
    /// Records `ident`; an error (recorded, value skipped) when it came before.
    pub(crate) fn first(
        &mut self,
        meta: &ParseNestedMeta<'_>,
        ident: &Ident,
        place: &str,
        errors: &mut Errors,
    ) -> syn::Result<bool> {
        let key = ident.to_string();
        if self.0.contains(&key) {
            errors.push(duplicate_key(ident, place));
            skip_value(meta)?;
            return Ok(false);
        }
        self.0.push(key);
        Ok(true)
    }
}

/// The expression after `key =`; `None` (error recorded, value skipped) without `=`.
pub(crate) fn assigned(
    meta: &ParseNestedMeta<'_>,
    key: &str,
    errors: &mut Errors,
) -> syn::Result<Option<Expr>> {
    if meta.input.peek(Token![=]) {
        return Ok(Some(meta.value()?.parse()?));
    }
    errors.push(meta.error(format!("`{key}` needs a value: `{key} = ...`")));
    skip_value(meta)?;
    Ok(None)
}

/// `key = "..."`.
pub(crate) fn string(
    meta: &ParseNestedMeta<'_>,
    key: &str,
    errors: &mut Errors,
) -> syn::Result<Option<LitStr>> {
    let field = Field { policy: "", key };
    Ok(assigned(meta, key, errors)?.and_then(|e| errors.take(literal::string(&e, field))))
}

/// `key = true|false`.
pub(crate) fn boolean(
    meta: &ParseNestedMeta<'_>,
    key: &str,
    errors: &mut Errors,
) -> syn::Result<Option<bool>> {
    let field = Field { policy: "", key };
    Ok(assigned(meta, key, errors)?.and_then(|e| errors.take(literal::boolean(&e, field))))
}

/// `path = "/..."` or `endpoint = "/..."`: a string starting with `/`.
pub(crate) fn route_path(
    meta: &ParseNestedMeta<'_>,
    key: &'static str,
    errors: &mut Errors,
) -> syn::Result<Option<LitStr>> {
    let field = Field { policy: "", key };
    let Some(path) = assigned(meta, key, errors)?
        .and_then(|e| errors.take(literal::string_like(&e, field, "\"/analyze\"")))
    else {
        return Ok(None);
    };
    match fastagentic_policy::keys::endpoint::check_path(key, &path.value()) {
        Ok(()) => Ok(Some(path)),
        Err(problem) => {
            errors.at(&path, problem);
            Ok(None)
        }
    }
}
