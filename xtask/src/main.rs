//! Project chores, run as `cargo xtask <command>` (the alias is in `.cargo/config.toml`).
//!
//! `cargo xtask pricing-age [--max-days N] [--strict] [--today YYYY-MM-DD] [--dir PATH]`
//! prints the age of each pricing table. A table's age counts from its `as_of` snapshot
//! date (see `fastagentic::pricing::TableAge`); it is stale when older than N days
//! (default 90). Without `--strict` the command only reports and exits 0; with `--strict` it
//! exits 1 when a table is stale. `--dir` checks the tables of a directory in place of the
//! shipped ones of the same providers; `--today` replaces the clock.
//!
//! `cargo xtask pricing-import --from FILE [--dir DIR] [--as-of YYYY-MM-DD] [--dry-run]`
//! refreshes the tables from LiteLLM's price file (see [`pricing_import`]).

mod pricing_import;

use std::fmt::Write as _;
use std::process::ExitCode;

use fastagentic::pricing::DEFAULT_MAX_AGE_DAYS;
use fastagentic::pricing::{Pricing, PricingError};
use time::Date;
use time::macros::format_description;

const USAGE: &str =
    "usage: cargo xtask pricing-age [--max-days N] [--strict] [--today YYYY-MM-DD] [--dir PATH]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let today = time::OffsetDateTime::now_utc().date();
    let (output, code) = run(&args, today);
    if code == 0 {
        print!("{output}");
    } else {
        eprint!("{output}");
    }
    ExitCode::from(code)
}

/// Runs the command line `args` (without the program name) as if on `today`; returns what
/// to print and the exit code (0 fine, 1 stale in strict mode, 2 bad usage or tables).
fn run(args: &[String], today: Date) -> (String, u8) {
    match args.first().map(String::as_str) {
        Some("pricing-age") => pricing_age(&args[1..], today),
        Some("pricing-import") => pricing_import::run(&args[1..], today),
        Some("-h" | "--help") | None => (format!("{USAGE}\n{}\n", pricing_import::USAGE), 2),
        Some(other) => (
            format!(
                "unknown command `{other}`\n{USAGE}\n{}\n",
                pricing_import::USAGE
            ),
            2,
        ),
    }
}

struct Options {
    max_days: i64,
    strict: bool,
    today: Date,
    dir: Option<String>,
}

fn parse_options(args: &[String], today: Date) -> Result<Options, String> {
    let mut options = Options {
        max_days: DEFAULT_MAX_AGE_DAYS,
        strict: false,
        today,
        dir: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match arg.as_str() {
            "--strict" => options.strict = true,
            "--max-days" => {
                let text = value("--max-days")?;
                options.max_days = text
                    .parse::<u32>()
                    .map(i64::from)
                    .map_err(|_| format!("`--max-days {text}` is not a number of days"))?;
            }
            "--today" => {
                let text = value("--today")?;
                options.today = parse_day("--today", &text)?;
            }
            "--dir" => options.dir = Some(value("--dir")?),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(options)
}

/// A `YYYY-MM-DD` option value.
fn parse_day(option: &str, text: &str) -> Result<Date, String> {
    Date::parse(text, format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("`{option} {text}` is not a date (YYYY-MM-DD)"))
}

fn pricing_age(args: &[String], today: Date) -> (String, u8) {
    let options = match parse_options(args, today) {
        Ok(options) => options,
        Err(message) => return (format!("{message}\n{USAGE}\n"), 2),
    };
    let loaded: Result<Pricing, PricingError> = match &options.dir {
        Some(dir) => Pricing::from_dir(dir),
        None => Pricing::embedded(),
    };
    let pricing = match loaded {
        Ok(pricing) => pricing,
        Err(error) => return (format!("error: {error}\n"), 2),
    };

    let ages = pricing.table_ages(options.today);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pricing tables on {} (stale after {} days)",
        options.today, options.max_days
    );
    let _ = writeln!(
        out,
        "{:<12} {:<10} {:>7} {:<12} {:<14} {:>8}  status",
        "provider", "models", "names", "as_of", "oldest_checked", "age"
    );
    for age in &ages {
        let table = pricing.table(&age.provider);
        let (models, names) = table.map_or((0, 0), |t| (t.models.len(), t.name_count()));
        let oldest = age
            .oldest_checked
            .map_or_else(|| "-".to_owned(), |d| d.to_string());
        let status = if age.is_stale(options.max_days) {
            "STALE"
        } else {
            "ok"
        };
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:>7} {:<12} {:<14} {:>7}d  {status}",
            age.provider,
            models,
            names,
            age.as_of.to_string(),
            oldest,
            age.age_days
        );
    }
    let stale: Vec<_> = ages
        .iter()
        .filter(|age| age.is_stale(options.max_days))
        .collect();
    if stale.is_empty() {
        let _ = writeln!(
            out,
            "all tables are within {} days of their snapshot",
            options.max_days
        );
        return (out, 0);
    }
    let names: Vec<&str> = stale.iter().map(|age| &*age.provider).collect();
    let _ = writeln!(
        out,
        "warning: {} older than {} days: {}; re-check the prices against the providers and refresh pricing/*.json (pricing/build_tables.py)",
        if stale.len() == 1 {
            "1 table is"
        } else {
            "tables are"
        },
        options.max_days,
        names.join(", ")
    );
    (out, if options.strict { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn fresh_tables_pass_strict() {
        let (out, code) = run(&args("pricing-age --strict"), date!(2026 - 08 - 01));
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("openai"), "{out}");
        assert!(out.contains("2026-07-18"), "{out}");
        assert!(out.contains("14d  ok"), "{out}");
        assert!(!out.contains("STALE"), "{out}");
    }

    #[test]
    fn stale_tables_fail_only_in_strict_mode() {
        let (out, code) = run(&args("pricing-age --strict"), date!(2026 - 12 - 01));
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("136d  STALE"), "{out}");
        assert!(out.contains("warning:"), "{out}");

        let (out, code) = run(&args("pricing-age"), date!(2026 - 12 - 01));
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("STALE"), "{out}");
        assert!(out.contains("warning:"), "{out}");
    }

    #[test]
    fn the_boundary_is_inclusive() {
        let (_, code) = run(&args("pricing-age --strict"), date!(2026 - 10 - 16));
        assert_eq!(code, 0);
        let (_, code) = run(&args("pricing-age --strict"), date!(2026 - 10 - 17));
        assert_eq!(code, 1);
    }

    #[test]
    fn options_override_the_defaults() {
        let (out, code) = run(
            &args("pricing-age --strict --max-days 10 --today 2026-08-01"),
            date!(2030 - 01 - 01),
        );
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("14d  STALE"), "{out}");
        assert!(out.contains("stale after 10 days"), "{out}");
    }

    #[test]
    fn bad_usage_exits_2() {
        let today = date!(2026 - 08 - 01);
        assert_eq!(run(&args("pricing-age --max-days x"), today).1, 2);
        assert_eq!(run(&args("pricing-age --today tomorrow"), today).1, 2);
        assert_eq!(run(&args("pricing-age --bogus"), today).1, 2);
        assert_eq!(run(&args("frobnicate"), today).1, 2);
        assert_eq!(run(&args(""), today).1, 2);
        let (out, code) = run(&args("pricing-age --dir /nonexistent/pricing"), today);
        assert_eq!(code, 2);
        assert!(out.contains("/nonexistent/pricing"), "{out}");
    }
}
