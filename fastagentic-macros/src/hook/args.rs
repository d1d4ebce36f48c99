//! The attribute's arguments: `"event"`, then `endpoint = "/path"`, `priority = n` and
//! `crate = path` in any order, each at most once, read with the same parser as
//! `#[agent_endpoint]`'s keys, so every mistake is reported at once.

use fastagentic_policy::EventKind;
use fastagentic_policy::keys::hook::KEYS;
use proc_macro2::{Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::{ParseStream, Parser};
use syn::{Error, Expr, ExprLit, ExprUnary, Lit, LitInt, LitStr, Token, UnOp};

use crate::attr::{self, Errors, Seen, key_ident, skip_value, unknown_key};
use crate::paths::{self, Paths};

/// What `#[hook(...)]` says.
pub(super) struct HookArgs {
    /// The event.
    pub(super) event: EventKind,
    /// `endpoint = "/path"`.
    pub(super) endpoint: Option<LitStr>,
    /// `priority = n` (0 when absent).
    pub(super) priority: i32,
    /// `crate = path`.
    krate: Option<syn::Path>,
}

impl HookArgs {
    /// Reads the attribute, recording every mistake in `errors`; `None` when the event
    /// itself is missing or wrong.
    pub(super) fn parse(attr: TokenStream, errors: &mut Errors) -> Option<HookArgs> {
        let mut args = Keys::default();
        let parsed = (|input: ParseStream<'_>| args.read(input, errors)).parse2(attr);
        let event = errors.take(parsed).flatten()?;
        Some(HookArgs {
            event,
            endpoint: args.endpoint,
            priority: args.priority.unwrap_or(0),
            krate: args.krate,
        })
    }

    /// The paths the generated code names.
    pub(super) fn paths(&self) -> Paths {
        Paths::new(self.krate.as_ref())
    }
}

/// The keys after the event, as they are read.
#[derive(Default)]
struct Keys {
    endpoint: Option<LitStr>,
    priority: Option<i32>,
    krate: Option<syn::Path>,
    seen: Seen,
}

impl Keys {
    /// The event, then the keys; the event is `None` when it is wrong (error recorded).
    fn read(
        &mut self,
        input: ParseStream<'_>,
        errors: &mut Errors,
    ) -> syn::Result<Option<EventKind>> {
        let event = errors.take(parse_event(input));
        if event.is_none() {
            // The rest cannot be read as keys once the event is wrong.
            input.parse::<TokenStream>()?;
            return Ok(None);
        }
        if input.is_empty() {
            return Ok(event);
        }
        input.parse::<Token![,]>()?;
        let rest: TokenStream = input.parse()?;
        syn::meta::parser(|meta| self.key(&meta, errors)).parse2(rest)?;
        Ok(event)
    }

    fn key(&mut self, meta: &ParseNestedMeta<'_>, errors: &mut Errors) -> syn::Result<()> {
        let ident = key_ident(meta)?;
        let key = ident.to_string();
        if key == "path" {
            errors.at(
                &ident,
                "a hook is scoped to an endpoint with `endpoint = \"/path\"`, not `path`",
            );
            return skip_value(meta);
        }
        if !KEYS.contains(&key.as_str()) {
            errors.push(unknown_key(&ident, "", KEYS));
            return skip_value(meta);
        }
        if !self.seen.first(meta, &ident, "", errors)? {
            return Ok(());
        }
        match key.as_str() {
            "endpoint" => self.endpoint = attr::route_path(meta, "endpoint", errors)?,
            "priority" => {
                self.priority = attr::assigned(meta, "priority", errors)?
                    .and_then(|value| errors.take(priority(&value)));
            }
            _ => self.krate = paths::crate_path(meta, errors)?,
        }
        Ok(())
    }
}

/// The leading string literal naming the event.
fn parse_event(input: ParseStream<'_>) -> syn::Result<EventKind> {
    if input.is_empty() {
        let message = format!(
            "missing the hook event: write `#[hook(\"on_retry\")]`; events: {}",
            EventKind::NAMES.join(", ")
        );
        return Err(Error::new(Span::call_site(), message));
    }
    if input.peek(LitStr) {
        let name: LitStr = input.parse()?;
        return name
            .value()
            .parse::<EventKind>()
            .map_err(|_| Error::new(name.span(), unknown_event(&name.value())));
    }
    let token: TokenTree = input.parse()?;
    Err(Error::new(token.span(), not_an_event(&token, input)))
}

/// The error for an unknown event: the closest name if one is close, else the list.
fn unknown_event(name: &str) -> String {
    match EventKind::closest(name) {
        Some(close) => format!("unknown hook event `{name}`; did you mean `{close}`?"),
        None => format!(
            "unknown hook event `{name}`; expected one of: {}",
            EventKind::NAMES.join(", ")
        ),
    }
}

/// Why `token` (where the event name should be) is not one.
fn not_an_event(token: &TokenTree, input: ParseStream<'_>) -> String {
    match token {
        TokenTree::Ident(ident) if input.peek(Token![=]) => format!(
            "missing the hook event before `{ident}`: write `#[hook(\"on_retry\", {ident} = ...)]`"
        ),
        TokenTree::Ident(ident) if ident.to_string().parse::<EventKind>().is_ok() => {
            format!("the hook event is a string literal: write `\"{ident}\"`")
        }
        _ => "expected the hook event as a string literal, like `#[hook(\"on_retry\")]`".to_owned(),
    }
}

/// An integer literal that fits an `i32`, maybe negative.
fn priority(value: &Expr) -> syn::Result<i32> {
    let (negative, literal) = match value {
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
            _ => return Err(not_an_integer(value)),
        },
        _ => return Err(not_an_integer(value)),
    };
    priority_value(negative, literal).map_err(|()| {
        let message = "`priority` must fit in an `i32` (-2147483648 to 2147483647)";
        Error::new_spanned(value, message)
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

    fn parse(tokens: TokenStream) -> Result<HookArgs, String> {
        let mut errors = Errors::default();
        let args = HookArgs::parse(tokens, &mut errors);
        match (errors.finish(), args) {
            (None, Some(args)) => Ok(args),
            (Some(err), _) => Err(err
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")),
            (None, None) => Err("no event and no error".into()),
        }
    }

    fn error(tokens: TokenStream) -> String {
        match parse(tokens) {
            Ok(_) => panic!("expected an error"),
            Err(err) => err,
        }
    }

    #[test]
    fn parses_every_key_in_any_order() {
        let args = parse(quote!("on_retry", priority = -7, endpoint = "/a",)).unwrap();
        assert_eq!(args.event, EventKind::Retry);
        assert_eq!(args.endpoint.unwrap().value(), "/a");
        assert_eq!(args.priority, -7);
        let args = parse(quote!("on_request")).unwrap();
        assert!(args.endpoint.is_none());
        assert_eq!(args.priority, 0);
        let args = parse(quote!("on_request", crate = ::my::fastagentic)).unwrap();
        assert!(args.krate.is_some());
    }

    #[test]
    fn priority_spans_the_whole_i32_range() {
        let priority = |tokens| parse(tokens).unwrap().priority;
        assert_eq!(
            priority(quote!("on_retry", priority = -2147483648)),
            i32::MIN
        );
        assert_eq!(
            priority(quote!("on_retry", priority = 2147483647i32)),
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
        assert!(error(quote!("on_retry", prority = 1)).contains("did you mean `priority`?"));
        assert!(error(quote!("on_retry", priority = 1, priority = 2)).contains("duplicate key"));
        assert!(error(quote!("on_retry", endpoint = "a")).contains("write `endpoint = \"/a\"`"));
        assert!(error(quote!("on_retry", endpoint = PATH)).contains("expected a string"));
    }

    #[test]
    fn reports_every_mistake_at_once() {
        let all = error(quote!("on_retry", tags = 1, priority = 1.5, endpoint = "a"));
        assert_eq!(all.lines().count(), 3, "{all}");
    }
}
