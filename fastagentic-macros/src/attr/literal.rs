//! Reading the literal values of the declarative form.
//!
//! Every reader says what it expected and what it found, and for a computed value points
//! to the expression form, which is where run-time values belong.

use fastagentic_policy::keys::Choice;
use fastagentic_policy::{ErrorClass, closest, suggestion};
use syn::{Error, Expr, Lit, LitStr, UnOp};

use super::Errors;

/// Where a value sits, for messages: the policy (`""` at the top level) and the key.
#[derive(Clone, Copy)]
pub(crate) struct Field<'a> {
    pub(crate) policy: &'a str,
    pub(crate) key: &'a str,
}

impl Field<'_> {
    /// "expected X for `key`, found Y", with a hint on how to fix it.
    fn mismatch(self, expr: &Expr, expected: &str, example: &str) -> Error {
        let key = self.key;
        let found = found(expr);
        let fix = match (found, self.policy) {
            ("an expression", "") => format!("write a literal, like `{key} = {example}`"),
            ("an expression", policy) => format!(
                "the declarative form takes literals, like `{key} = {example}`; to compute \
                 the policy at run time, write `{policy} = <expression>` instead of \
                 `{policy}(...)`"
            ),
            _ => format!("write `{key} = {example}`"),
        };
        Error::new_spanned(
            expr,
            format!("expected {expected} for `{key}`, found {found}: {fix}"),
        )
    }
}

impl Field<'_> {
    /// A number written as a string: "write `key = 3`, without quotes".
    fn unquote(self, expr: &Expr, expected: &str, number: &str) -> Error {
        let key = self.key;
        Error::new_spanned(
            expr,
            format!(
                "expected {expected} for `{key}`, found a string: write `{key} = {number}`, without quotes"
            ),
        )
    }
}

/// What `expr` is, for "found ..." messages.
fn found(expr: &Expr) -> &'static str {
    match unwrap(expr) {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(_) => "a string",
            Lit::Int(_) => "an integer",
            Lit::Float(_) => "a float",
            Lit::Bool(_) => "a boolean",
            _ => "a literal",
        },
        Expr::Array(_) => "a list",
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => "a negative number",
        _ => "an expression",
    }
}

/// `expr` without the invisible groups `macro_rules!` adds and without parentheses.
fn unwrap(expr: &Expr) -> &Expr {
    match expr {
        Expr::Group(group) => unwrap(&group.expr),
        Expr::Paren(paren) => unwrap(&paren.expr),
        other => other,
    }
}

/// The literal `expr` is, if it is one.
fn lit(expr: &Expr) -> Option<&Lit> {
    match unwrap(expr) {
        Expr::Lit(lit) => Some(&lit.lit),
        _ => None,
    }
}

/// A string literal.
pub(crate) fn string(expr: &Expr, field: Field<'_>) -> syn::Result<LitStr> {
    string_like(expr, field, "\"...\"")
}

/// A string literal; a mistake is answered with `example`.
pub(crate) fn string_like(expr: &Expr, field: Field<'_>, example: &str) -> syn::Result<LitStr> {
    match lit(expr) {
        Some(Lit::Str(s)) => Ok(s.clone()),
        _ => Err(field.mismatch(expr, "a string", example)),
    }
}

/// `true` or `false`.
pub(crate) fn boolean(expr: &Expr, field: Field<'_>) -> syn::Result<bool> {
    match lit(expr) {
        Some(Lit::Bool(b)) => Ok(b.value),
        Some(Lit::Str(s)) if matches!(s.value().as_str(), "true" | "false") => {
            Err(field.mismatch(expr, "a boolean", &s.value()))
        }
        _ => Err(field.mismatch(expr, "a boolean", "true")),
    }
}

/// A non-negative integer literal (`30_000` and suffixes are fine).
pub(crate) fn integer(expr: &Expr, field: Field<'_>) -> syn::Result<u64> {
    match lit(expr) {
        Some(Lit::Int(int)) => int.base10_parse::<u64>().map_err(|_| {
            Error::new_spanned(
                expr,
                format!("`{}` is too large: at most {}", field.key, u64::MAX),
            )
        }),
        Some(Lit::Str(s)) if s.value().trim().parse::<u64>().is_ok() => {
            let value = s.value();
            Err(field.unquote(expr, "an integer", value.trim()))
        }
        _ => Err(field.mismatch(expr, "an integer", "3")),
    }
}

/// A duration in whole milliseconds. A string like `"10s"` gets the number to write.
pub(crate) fn millis(expr: &Expr, field: Field<'_>) -> syn::Result<u64> {
    const EXPECTED: &str = "a whole number of milliseconds";
    match lit(expr) {
        Some(Lit::Int(_)) => integer(expr, field),
        Some(Lit::Str(s)) => match duration_ms(s.value().trim()) {
            Some(ms) => Err(field.unquote(expr, EXPECTED, &ms.to_string())),
            None => Err(field.mismatch(expr, EXPECTED, "30000")),
        },
        _ => Err(field.mismatch(expr, EXPECTED, "30000")),
    }
}

/// `"250"`, `"250ms"`, `"10s"`, `"2m"` or `"1h"` in milliseconds.
fn duration_ms(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "" | "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(scale)
}

/// A number literal, integer or float, as `f64`.
pub(crate) fn float(expr: &Expr, field: Field<'_>) -> syn::Result<f64> {
    let parsed = match lit(expr) {
        Some(Lit::Float(f)) => f.base10_parse::<f64>().ok(),
        Some(Lit::Int(i)) => i.base10_parse::<f64>().ok(),
        Some(Lit::Str(s)) if s.value().trim().parse::<f64>().is_ok() => {
            let value = s.value();
            return Err(field.unquote(expr, "a number", value.trim()));
        }
        _ => None,
    };
    match parsed {
        Some(value) if value.is_finite() => Ok(value),
        Some(_) => Err(Error::new_spanned(
            expr,
            format!("`{}` is too large to be a finite number", field.key),
        )),
        None => Err(field.mismatch(expr, "a number", "0.5")),
    }
}

/// A list of error class names: the classes, and the literals for spans.
pub(crate) fn classes(expr: &Expr, field: Field<'_>) -> syn::Result<Vec<(ErrorClass, LitStr)>> {
    let Expr::Array(array) = unwrap(expr) else {
        return Err(field.mismatch(expr, "a list of error classes", "[\"timeout\"]"));
    };
    let mut errors = Errors::default();
    let mut out: Vec<(ErrorClass, LitStr)> = Vec::new();
    for elem in &array.elems {
        match class(elem, field) {
            Ok((class, lit)) if out.iter().any(|(c, _)| *c == class) => {
                let err = Error::new_spanned(
                    &lit,
                    format!("`{}` is listed twice in `{}`", lit.value(), field.key),
                );
                errors.push(err);
            }
            Ok(class) => out.push(class),
            Err(err) => errors.push(err),
        }
    }
    errors.finish().map_or(Ok(out), Err)
}

/// One error class name.
fn class(elem: &Expr, field: Field<'_>) -> syn::Result<(ErrorClass, LitStr)> {
    let Some(Lit::Str(lit)) = lit(elem) else {
        let message = format!(
            "expected an error class name (a string) in `{}`, found {}",
            field.key,
            found(elem)
        );
        return Err(Error::new_spanned(elem, message));
    };
    let value = lit.value();
    match value.parse::<ErrorClass>() {
        Ok(class) => Ok((class, lit.clone())),
        Err(_) => {
            let valid = ErrorClass::NAMES;
            let list = format!("the classes are: {}", valid.join(", "));
            let hint = match closest(&value, valid) {
                Some(name) => format!("did you mean `{name}`? ({list})"),
                None => list,
            };
            let message = format!("unknown error class `{value}` in `{}`; {hint}", field.key);
            Err(Error::new_spanned(lit, message))
        }
    }
}

/// One of `choice`'s names: its variant.
pub(crate) fn choice(expr: &Expr, field: Field<'_>, choice: &Choice) -> syn::Result<&'static str> {
    let valid = choice.names;
    let Some(Lit::Str(lit)) = lit(expr) else {
        let example = format!("\"{}\"", valid.first().copied().unwrap_or_default());
        return Err(field.mismatch(expr, "a string", &example));
    };
    let value = lit.value();
    choice.variant(&value).ok_or_else(|| {
        let message = format!(
            "unknown `{}` value \"{value}\"; {}",
            field.key,
            list_with_hint(&value, valid)
        );
        Error::new_spanned(lit, message)
    })
}

/// "did you mean `x`? expected one of: ..." — the whole list, since there are few.
fn list_with_hint(given: &str, valid: &[&str]) -> String {
    let list = format!("expected one of: {}", valid.join(", "));
    match suggestion(given, valid) {
        hint if hint.starts_with("did you mean") => format!("{hint} ({list})"),
        _ => list,
    }
}

#[cfg(test)]
mod tests {
    use super::duration_ms;

    #[test]
    fn reads_durations_with_units() {
        assert_eq!(duration_ms("250"), Some(250));
        assert_eq!(duration_ms("250ms"), Some(250));
        assert_eq!(duration_ms("10s"), Some(10_000));
        assert_eq!(duration_ms("2m"), Some(120_000));
        assert_eq!(duration_ms("1h"), Some(3_600_000));
        assert_eq!(duration_ms("ten seconds"), None);
        assert_eq!(duration_ms("10 parsecs"), None);
    }
}
