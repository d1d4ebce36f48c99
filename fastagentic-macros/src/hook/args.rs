//! The attribute's arguments: `"event"`, then optional `endpoint = "/path"` and
//! `priority = n`, in any order, each at most once.

use proc_macro2::{Span, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Error, Expr, ExprLit, ExprUnary, Ident, Lit, LitInt, LitStr, Token, UnOp};

use super::events;

/// What `#[hook(...)]` says.
pub(super) struct HookArgs {
    /// The `EventKind` variant.
    pub(super) variant: Ident,
    /// `endpoint = "/path"`.
    pub(super) endpoint: Option<LitStr>,
    /// `priority = n` (0 when absent).
    pub(super) priority: i32,
}

impl Parse for HookArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let variant = parse_event(input)?;
        let mut endpoint = None;
        let mut priority = None;
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let key = input.call(Ident::parse_any)?;
            match key.to_string().as_str() {
                "endpoint" => set_once(&mut endpoint, &key, input, parse_endpoint)?,
                "priority" => set_once(&mut priority, &key, input, parse_priority)?,
                other => {
                    let message =
                        format!("unknown key `{other}`; `#[hook]` takes `endpoint` and `priority`");
                    return Err(Error::new(key.span(), message));
                }
            }
        }
        Ok(HookArgs {
            variant,
            endpoint,
            priority: priority.unwrap_or(0),
        })
    }
}

/// Parses `= value` for `key` into `slot`, refusing a second `key`.
fn set_once<T>(
    slot: &mut Option<T>,
    key: &Ident,
    input: ParseStream<'_>,
    parse: fn(ParseStream<'_>) -> syn::Result<T>,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(Error::new(key.span(), format!("duplicate key `{key}`")));
    }
    input.parse::<Token![=]>()?;
    *slot = Some(parse(input)?);
    Ok(())
}

/// The leading string literal naming the event, as its `EventKind` variant.
fn parse_event(input: ParseStream<'_>) -> syn::Result<Ident> {
    if input.is_empty() {
        let message = format!(
            "missing the hook event: write `#[hook(\"on_retry\")]`; events: {}",
            events::list()
        );
        return Err(Error::new(Span::call_site(), message));
    }
    if input.peek(LitStr) {
        let name: LitStr = input.parse()?;
        return match events::variant(&name.value()) {
            Some(variant) => Ok(Ident::new(variant, name.span())),
            None => Err(Error::new(name.span(), events::unknown(&name.value()))),
        };
    }
    let token: TokenTree = input.parse()?;
    Err(Error::new(token.span(), not_an_event(&token, input)))
}

/// Why `token` (where the event name should be) is not one.
fn not_an_event(token: &TokenTree, input: ParseStream<'_>) -> String {
    match token {
        TokenTree::Ident(ident) if input.peek(Token![=]) => format!(
            "missing the hook event before `{ident}`: write `#[hook(\"on_retry\", {ident} = ...)]`"
        ),
        TokenTree::Ident(ident) if events::variant(&ident.to_string()).is_some() => {
            format!("the hook event is a string literal: write `\"{ident}\"`")
        }
        _ => "expected the hook event as a string literal, like `#[hook(\"on_retry\")]`".to_owned(),
    }
}

/// `"/path"`: a string literal starting with '/'.
fn parse_endpoint(input: ParseStream<'_>) -> syn::Result<LitStr> {
    let value: Expr = input.parse()?;
    let Expr::Lit(ExprLit {
        lit: Lit::Str(path),
        ..
    }) = value
    else {
        let message = "`endpoint` must be a string literal, like `endpoint = \"/analyze\"`";
        return Err(Error::new_spanned(value, message));
    };
    if !path.value().starts_with('/') {
        let message = format!(
            "`endpoint` must be a path starting with '/': did you mean \"/{}\"?",
            path.value()
        );
        return Err(Error::new(path.span(), message));
    }
    Ok(path)
}

/// An integer literal that fits an `i32`, maybe negative.
fn parse_priority(input: ParseStream<'_>) -> syn::Result<i32> {
    let value: Expr = input.parse()?;
    let (negative, literal) = match &value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => (false, int),
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_),
            expr,
            ..
        }) => match &**expr {
            Expr::Lit(ExprLit {
                lit: Lit::Int(int), ..
            }) => (true, int),
            _ => return Err(not_an_integer(&value)),
        },
        _ => return Err(not_an_integer(&value)),
    };
    priority_value(negative, literal).map_err(|()| {
        let message = "`priority` must fit in an `i32` (-2147483648 to 2147483647)";
        Error::new_spanned(&value, message)
    })
}

fn priority_value(negative: bool, literal: &LitInt) -> Result<i32, ()> {
    if !matches!(literal.suffix(), "" | "i32") {
        return Err(());
    }
    let sign = if negative { "-" } else { "" };
    format!("{sign}{}", literal.base10_digits())
        .parse()
        .map_err(|_| ())
}

fn not_an_integer(value: &Expr) -> Error {
    let message = "`priority` must be an integer literal, like `priority = 10` or `priority = -1`";
    Error::new_spanned(value, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: proc_macro2::TokenStream) -> syn::Result<HookArgs> {
        syn::parse2(tokens)
    }

    fn error(tokens: proc_macro2::TokenStream) -> String {
        match parse(tokens) {
            Ok(_) => panic!("expected an error"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn parses_every_key_in_any_order() {
        let args = parse(quote!("on_retry", priority = -7, endpoint = "/a",)).unwrap();
        assert_eq!(args.variant, "Retry");
        assert_eq!(args.endpoint.unwrap().value(), "/a");
        assert_eq!(args.priority, -7);
        let args = parse(quote!("on_request")).unwrap();
        assert!(args.endpoint.is_none());
        assert_eq!(args.priority, 0);
    }

    #[test]
    fn priority_spans_the_whole_i32_range() {
        assert_eq!(
            parse(quote!("on_retry", priority = -2147483648))
                .unwrap()
                .priority,
            i32::MIN
        );
        assert_eq!(
            parse(quote!("on_retry", priority = 2147483647i32))
                .unwrap()
                .priority,
            i32::MAX
        );
        assert!(error(quote!("on_retry", priority = 2147483648)).contains("fit in an `i32`"));
        assert!(error(quote!("on_retry", priority = 1u8)).contains("fit in an `i32`"));
        assert!(error(quote!("on_retry", priority = 1.5)).contains("integer literal"));
        assert!(error(quote!("on_retry", priority = -x)).contains("integer literal"));
    }

    #[test]
    fn names_each_mistake() {
        assert!(error(quote!()).contains("missing the hook event"));
        assert!(
            error(quote!(endpoint = "/a")).contains("missing the hook event before `endpoint`")
        );
        assert!(error(quote!(on_retry)).contains("write `\"on_retry\"`"));
        assert!(error(quote!(42)).contains("string literal"));
        assert!(error(quote!("on_rety")).contains("did you mean `on_retry`?"));
        assert!(error(quote!("on_retry", tags = 1)).contains("unknown key `tags`"));
        assert!(error(quote!("on_retry", type = 1)).contains("unknown key `type`"));
        assert!(error(quote!("on_retry", priority = 1, priority = 2)).contains("duplicate key"));
        assert!(error(quote!("on_retry", endpoint = "a")).contains("did you mean \"/a\"?"));
        assert!(error(quote!("on_retry", endpoint = PATH)).contains("string literal"));
    }
}
