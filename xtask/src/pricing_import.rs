//! `cargo xtask pricing-import --from FILE [--dir DIR] [--as-of YYYY-MM-DD] [--dry-run]`:
//! refreshes the pricing tables from LiteLLM's `model_prices_and_context_window.json`.
//!
//! Only chat models of our three providers are taken: `litellm_provider` `openai` and
//! `anthropic` under their bare names, `gemini` under `gemini/<id>` (the bare Gemini keys
//! are Vertex AI's, another price list). Per-token dollars become dollars per million
//! tokens, read from the number's text so no price passes through float arithmetic. The
//! smallest `*_above_{N}k_tokens` tier becomes `long_context`. A model already in a table
//! keeps its place, its note and any optional rate the source does not carry (the
//! above-tier cache rates come from the providers' pages, not from LiteLLM); a model the
//! source no longer lists is kept as it is (retired models keep their last price). A
//! dated name that is an alias today stays one while its price equals its target's.
//!
//! The command prints what changes, then writes each table with the new `as_of` (today
//! unless given) after checking that it loads; `--dry-run` only prints.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use fastagentic::pricing::{Decimal, ModelPrice, PriceTable, Pricing};
use serde_json::{Map, Value};
use time::Date;

pub(crate) const USAGE: &str =
    "usage: cargo xtask pricing-import --from FILE [--dir DIR] [--as-of YYYY-MM-DD] [--dry-run]";

/// Our table name for each LiteLLM provider id we import, and the key prefix its models
/// carry in LiteLLM's file.
const PROVIDERS: [(&str, &str, &str); 3] = [
    ("openai", "openai", ""),
    ("anthropic", "anthropic", ""),
    ("gemini", "google", "gemini/"),
];

struct Options {
    from: PathBuf,
    dir: PathBuf,
    as_of: Date,
    dry_run: bool,
}

fn parse_options(args: &[String], today: Date) -> Result<Options, String> {
    let mut from = None;
    let mut dir = PathBuf::from("pricing");
    let mut as_of = today;
    let mut dry_run = false;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match arg.as_str() {
            "--from" => from = Some(PathBuf::from(value("--from")?)),
            "--dir" => dir = PathBuf::from(value("--dir")?),
            "--as-of" => {
                let text = value("--as-of")?;
                as_of = crate::parse_day("--as-of", &text)?;
            }
            "--dry-run" => dry_run = true,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    let from =
        from.ok_or("`--from FILE` is required: LiteLLM's model_prices_and_context_window.json")?;
    Ok(Options {
        from,
        dir,
        as_of,
        dry_run,
    })
}

/// Runs the command; returns what to print and the exit code (0 done, 2 bad usage or
/// input).
pub(crate) fn run(args: &[String], today: Date) -> (String, u8) {
    let options = match parse_options(args, today) {
        Ok(options) => options,
        Err(message) => return (format!("{message}\n{USAGE}\n"), 2),
    };
    match import(&options) {
        Ok(out) => (out, 0),
        Err(message) => (format!("error: {message}\n"), 2),
    }
}

fn import(options: &Options) -> Result<String, String> {
    let text = std::fs::read_to_string(&options.from)
        .map_err(|e| format!("cannot read {}: {e}", options.from.display()))?;
    let source: Map<String, Value> = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not LiteLLM's price file (a JSON object of models): {e}",
            options.from.display()
        )
    })?;
    let mut out = String::new();
    let mut writes = Vec::new();
    for (litellm, table, prefix) in PROVIDERS {
        let path = options.dir.join(format!("{table}.json"));
        let current = read_table(&path)?;
        let imported = chat_models(&source, litellm, prefix)?;
        let merged = merge(&current, imported, options.as_of);
        let _ = writeln!(out, "{table}.json:");
        out.push_str(&merged.report);
        let rendered = render(&current, &merged, options);
        // Never write a table the runtime would refuse.
        Pricing::from_json(&path.display().to_string(), &rendered)
            .map_err(|e| format!("the imported {table} table does not load: {e}"))?;
        writes.push((path, rendered));
    }
    if options.dry_run {
        out.push_str("dry run: nothing written\n");
        return Ok(out);
    }
    for (path, rendered) in writes {
        std::fs::write(&path, rendered)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let _ = writeln!(out, "wrote {} (as_of {})", path.display(), options.as_of);
    }
    Ok(out)
}

fn read_table(path: &Path) -> Result<PriceTable, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Pricing::from_json(&path.display().to_string(), &text).map_err(|e| e.to_string())
}

/// One model's prices as the tables spell them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    input: Decimal,
    output: Decimal,
    cached_input: Option<Decimal>,
    cache_write: Option<Decimal>,
    reasoning: Option<Decimal>,
    tier: Option<Tier>,
    context_window: Option<u64>,
    max_output: Option<u64>,
    checked: Date,
    note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Tier {
    threshold: u64,
    input: Decimal,
    output: Decimal,
    cached_input: Option<Decimal>,
    cache_write: Option<Decimal>,
    reasoning: Option<Decimal>,
}

impl Entry {
    fn of(model: &ModelPrice) -> Entry {
        Entry {
            input: model.input,
            output: model.output,
            cached_input: model.cached_input,
            cache_write: model.cache_write,
            reasoning: model.reasoning,
            tier: model.long_context.as_ref().map(|t| Tier {
                threshold: t.threshold,
                input: t.input,
                output: t.output,
                cached_input: t.cached_input,
                cache_write: t.cache_write,
                reasoning: t.reasoning,
            }),
            context_window: model.context_window,
            max_output: model.max_output,
            checked: model.checked,
            note: model.note.clone(),
        }
    }

    /// The prices and limits, without the dates and notes.
    fn same_prices(&self, other: &Entry) -> bool {
        let strip = |e: &Entry| Entry {
            checked: Date::MIN,
            note: None,
            ..e.clone()
        };
        strip(self) == strip(other)
    }

    /// `imported`, with what the source does not carry taken from `self`.
    fn updated_by(&self, imported: &Entry) -> Entry {
        let tier = match (&self.tier, &imported.tier) {
            (Some(old), Some(new)) if old.threshold == new.threshold => Some(Tier {
                cached_input: new.cached_input.or(old.cached_input),
                cache_write: new.cache_write.or(old.cache_write),
                reasoning: new.reasoning.or(old.reasoning),
                ..new.clone()
            }),
            (_, new) => new.clone(),
        };
        Entry {
            cached_input: imported.cached_input.or(self.cached_input),
            cache_write: imported.cache_write.or(self.cache_write),
            reasoning: imported.reasoning.or(self.reasoning),
            tier,
            context_window: imported.context_window.or(self.context_window),
            max_output: imported.max_output.or(self.max_output),
            note: self.note.clone(),
            ..imported.clone()
        }
    }
}

/// The chat models LiteLLM lists for `provider`, by our name, in the file's order.
fn chat_models(
    source: &Map<String, Value>,
    provider: &str,
    prefix: &str,
) -> Result<Vec<(String, Entry)>, String> {
    let mut models = Vec::new();
    for (key, spec) in source {
        let Some(name) = key.strip_prefix(prefix) else {
            continue;
        };
        if name.contains('/')
            || spec["litellm_provider"] != provider
            || spec["mode"] != "chat"
            || spec.get("input_cost_per_token").is_none()
        {
            continue;
        }
        let entry = entry(spec).map_err(|why| format!("`{key}`: {why}"))?;
        models.push((name.to_owned(), entry));
    }
    Ok(models)
}

fn entry(spec: &Value) -> Result<Entry, String> {
    let rate = |field: &str| per_mtok(spec, field);
    let required = |field: &str| rate(field)?.ok_or(format!("has no `{field}`"));
    Ok(Entry {
        input: required("input_cost_per_token")?,
        output: required("output_cost_per_token")?,
        cached_input: rate("cache_read_input_token_cost")?,
        cache_write: rate("cache_creation_input_token_cost")?,
        reasoning: rate("output_cost_per_reasoning_token")?,
        tier: tier(spec)?,
        context_window: spec["max_input_tokens"].as_u64(),
        max_output: spec["max_output_tokens"].as_u64(),
        checked: Date::MIN,
        note: None,
    })
}

/// The smallest `*_above_{N}k_tokens` tier, if the model has one.
fn tier(spec: &Value) -> Result<Option<Tier>, String> {
    let Some(fields) = spec.as_object() else {
        return Ok(None);
    };
    let smallest = fields
        .keys()
        .filter_map(|k| {
            k.strip_prefix("input_cost_per_token_above_")?
                .strip_suffix("k_tokens")
        })
        .filter_map(|n| n.parse::<u64>().ok())
        .min();
    let Some(k) = smallest else {
        return Ok(None);
    };
    let above = |field: &str| per_mtok(spec, &format!("{field}_above_{k}k_tokens"));
    let required = |field: &str| {
        above(field)?.ok_or(format!(
            "has `input_cost_per_token_above_{k}k_tokens` but no `{field}_above_{k}k_tokens`"
        ))
    };
    Ok(Some(Tier {
        threshold: k * 1000,
        input: required("input_cost_per_token")?,
        output: required("output_cost_per_token")?,
        cached_input: above("cache_read_input_token_cost")?,
        cache_write: above("cache_creation_input_token_cost")?,
        reasoning: above("output_cost_per_reasoning_token")?,
    }))
}

/// A per-token dollar amount as dollars per million tokens, exactly: the number's own text
/// (`2.5e-6`) is read as a decimal, never multiplied as a float.
fn per_mtok(spec: &Value, field: &str) -> Result<Option<Decimal>, String> {
    let Some(value) = spec.get(field) else {
        return Ok(None);
    };
    let Some(number) = value.as_number() else {
        return Err(format!("`{field}` is not a number"));
    };
    let text = number.to_string();
    let per_token = if text.contains(['e', 'E']) {
        Decimal::from_scientific(&text)
    } else {
        text.parse::<Decimal>()
    }
    .map_err(|e| format!("`{field}` = {text}: {e}"))?;
    if per_token.is_sign_negative() {
        return Err(format!("`{field}` is negative"));
    }
    Ok(Some((per_token * Decimal::from(1_000_000)).normalize()))
}

struct Merged {
    /// Model names and entries, in the table's order, new ones last.
    models: Vec<(String, Entry)>,
    /// Alias → target.
    aliases: Vec<(String, String)>,
    report: String,
}

fn merge(table: &PriceTable, imported: Vec<(String, Entry)>, as_of: Date) -> Merged {
    let mut models: Vec<(String, Entry)> = table
        .models
        .iter()
        .map(|m| (m.name.to_string(), Entry::of(m)))
        .collect();
    let mut aliases: Vec<(String, String)> = table
        .models
        .iter()
        .flat_map(|m| {
            m.aliases
                .iter()
                .map(|a| (a.to_string(), m.name.to_string()))
        })
        .collect();
    let mut report = String::new();
    let (mut unchanged, mut seen) = (0, std::collections::HashSet::new());
    for (name, new) in imported {
        let new = Entry {
            checked: as_of,
            ..new
        };
        if let Some(at) = aliases.iter().position(|(alias, _)| *alias == name) {
            let target = aliases[at].1.clone();
            let target_entry = models
                .iter()
                .find(|(n, _)| *n == target)
                .map(|(_, e)| e.clone());
            match target_entry {
                Some(t) if t.updated_by(&new).same_prices(&t) => {
                    unchanged += 1;
                    continue;
                }
                _ => {
                    aliases.remove(at);
                    let _ = writeln!(
                        report,
                        "  + {name}: priced apart from {target} now: {}",
                        describe(&new)
                    );
                    models.push((name.clone(), new));
                    seen.insert(name);
                    continue;
                }
            }
        }
        seen.insert(name.clone());
        match models.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => {
                let updated = old.updated_by(&new);
                if updated.same_prices(old) {
                    unchanged += 1;
                } else {
                    let _ = writeln!(report, "  ~ {name}: {}", changes(old, &updated));
                }
                *old = updated;
            }
            None => {
                let _ = writeln!(report, "  + {name}: {}", describe(&new));
                models.push((name, new));
            }
        }
    }
    let kept: Vec<&str> = models
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !seen.contains(*n))
        .filter(|n| !aliases.iter().any(|(a, _)| a == n))
        .collect();
    let _ = writeln!(report, "  = {unchanged} unchanged");
    if !kept.is_empty() {
        let _ = writeln!(
            report,
            "  kept, not in the source (retired or renamed?): {}",
            kept.join(", ")
        );
    }
    Merged {
        models,
        aliases,
        report,
    }
}

fn describe(entry: &Entry) -> String {
    let mut text = format!("input {} output {}", entry.input, entry.output);
    if let Some(cached) = entry.cached_input {
        let _ = write!(text, " cached {cached}");
    }
    if let Some(tier) = &entry.tier {
        let _ = write!(
            text,
            " (above {} tokens: {} / {})",
            tier.threshold, tier.input, tier.output
        );
    }
    text
}

fn changes(old: &Entry, new: &Entry) -> String {
    let mut parts = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            parts.push(format!("{name} {a} → {b}"));
        }
    };
    let opt = |d: Option<Decimal>| d.map_or("-".to_owned(), |d| d.to_string());
    let count = |n: Option<u64>| n.map_or("-".to_owned(), |n| n.to_string());
    field("input", old.input.to_string(), new.input.to_string());
    field("output", old.output.to_string(), new.output.to_string());
    field("cached", opt(old.cached_input), opt(new.cached_input));
    field("cache_write", opt(old.cache_write), opt(new.cache_write));
    field("reasoning", opt(old.reasoning), opt(new.reasoning));
    field(
        "long_context",
        old.tier.as_ref().map_or("-".into(), tier_text),
        new.tier.as_ref().map_or("-".into(), tier_text),
    );
    field(
        "context_window",
        count(old.context_window),
        count(new.context_window),
    );
    field("max_output", count(old.max_output), count(new.max_output));
    parts.join(", ")
}

fn tier_text(tier: &Tier) -> String {
    format!("{}: {} / {}", tier.threshold, tier.input, tier.output)
}

/// The table as JSON, laid out like `pricing/build_tables.py` writes it.
fn render(table: &PriceTable, merged: &Merged, options: &Options) -> String {
    let string = |s: &str| Value::String(s.to_owned()).to_string();
    let source = format!(
        "LiteLLM model_prices_and_context_window.json ({}), imported by `cargo xtask pricing-import` on {}; rates the source lacks kept from the previous table ({})",
        options
            .from
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        options.as_of,
        table.source.as_deref().unwrap_or("no source")
    );
    let mut out = String::from("{\n");
    let _ = writeln!(out, "  \"schema_version\": {},", table.schema_version);
    let _ = writeln!(out, "  \"provider\": {},", string(&table.provider));
    let _ = writeln!(out, "  \"currency\": {},", string(&table.currency));
    let _ = writeln!(out, "  \"as_of\": \"{}\",", options.as_of);
    let _ = writeln!(out, "  \"source\": {},", string(&source));
    out.push_str("  \"models\": {");
    for (i, (name, entry)) in merged.models.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let _ = write!(out, "    {}: {}", string(name), render_entry(entry));
    }
    out.push_str("\n  },\n  \"aliases\": {");
    for (i, (alias, target)) in merged.aliases.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let _ = write!(out, "    {}: {}", string(alias), string(target));
    }
    out.push_str(if merged.aliases.is_empty() {
        "}\n}\n"
    } else {
        "\n  }\n}\n"
    });
    out
}

fn render_entry(entry: &Entry) -> String {
    let optional = [entry.cached_input, entry.cache_write, entry.reasoning];
    let mut fields = rate_fields(entry.input, entry.output, optional);
    if let Some(tier) = &entry.tier {
        let mut tier_fields = vec![("threshold", tier.threshold.to_string())];
        let optional = [tier.cached_input, tier.cache_write, tier.reasoning];
        tier_fields.extend(rate_fields(tier.input, tier.output, optional));
        fields.push(("long_context", object(&tier_fields, 8)));
    }
    if let Some(n) = entry.context_window {
        fields.push(("context_window", n.to_string()));
    }
    if let Some(n) = entry.max_output {
        fields.push(("max_output", n.to_string()));
    }
    fields.push(("checked", format!("\"{}\"", entry.checked)));
    if let Some(note) = &entry.note {
        fields.push(("note", Value::String(note.clone()).to_string()));
    }
    object(&fields, 6)
}

/// The rates a model and its tier share, in the tables' order; optional ones only when
/// set (`cached_input`, `cache_write`, `reasoning`). Prices are JSON strings.
fn rate_fields(
    input: Decimal,
    output: Decimal,
    optional: [Option<Decimal>; 3],
) -> Vec<(&'static str, String)> {
    let price = |d: Decimal| format!("\"{}\"", d.normalize());
    let mut fields = vec![("input", price(input)), ("output", price(output))];
    let names = ["cached_input", "cache_write", "reasoning"];
    fields.extend(
        (names.into_iter().zip(optional)).filter_map(|(name, rate)| rate.map(|r| (name, price(r)))),
    );
    fields
}

/// A JSON object of already-rendered values, its fields indented by `indent` spaces.
fn object(fields: &[(&str, String)], indent: usize) -> String {
    let pad = " ".repeat(indent);
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{pad}\"{k}\": {v}"))
        .collect();
    format!("{{\n{}\n{}}}", body.join(",\n"), " ".repeat(indent - 2))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use time::macros::date;

    const EXCERPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/litellm-excerpt.json");

    /// A copy of the shipped tables in a fresh directory, to import into.
    fn scratch_tables(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("fastagentic-import-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pricing");
        for table in ["openai", "anthropic", "google"] {
            let file = format!("{table}.json");
            std::fs::copy(shipped.join(&file), dir.join(&file)).unwrap();
        }
        dir
    }

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn an_excerpt_of_litellm_updates_the_tables_and_reports_the_diff() {
        let dir = scratch_tables("update");
        let line = format!(
            "--from {EXCERPT} --dir {} --as-of 2026-12-01",
            dir.display()
        );
        let (out, code) = run(&args(&line), date!(2026 - 12 - 05));
        assert_eq!(code, 0, "{out}");
        // A changed price, a new model with a tier, an alias that is priced apart now.
        assert!(out.contains("~ gpt-4o-mini: input 0.15 → 0.18"), "{out}");
        assert!(
            out.contains(
                "+ gpt-9-mini: input 0.4 output 1.6 cached 0.04 (above 272000 tokens: 0.8 / 3.2)"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "+ claude-3-5-haiku-latest: priced apart from claude-3-5-haiku-20241022 now"
            ),
            "{out}"
        );
        // gpt-4o and its dated alias, claude-sonnet-4-5 and gemini-2.5-pro are unchanged;
        // embeddings, Azure and Vertex entries are not ours.
        assert!(out.contains("openai.json:\n"), "{out}");
        assert!(out.contains("= 2 unchanged"), "{out}");
        assert!(
            !out.contains("embedding") && !out.contains("azure"),
            "{out}"
        );
        assert!(out.contains("wrote"), "{out}");

        let pricing = Pricing::from_dir(&dir).unwrap();
        let openai = pricing.table("openai").unwrap();
        assert_eq!(openai.as_of, date!(2026 - 12 - 01));
        let mini = pricing.lookup("gpt-4o-mini").unwrap();
        assert_eq!(mini.input, "0.18".parse().unwrap());
        assert_eq!(mini.checked, date!(2026 - 12 - 01));
        let new = pricing.lookup("gpt-9-mini").unwrap();
        let tier = new.long_context.as_ref().unwrap();
        assert_eq!(
            (tier.threshold, tier.output),
            (272_000, "3.2".parse().unwrap())
        );
        // The dated alias still prices as gpt-4o; a model the source lacks is kept.
        assert_eq!(
            &*pricing.lookup("gpt-4o-2024-11-20").unwrap().name,
            "gpt-4o"
        );
        assert!(pricing.lookup("o1-mini").is_ok());
        // The above-tier cache rates LiteLLM lacks stay from the previous table.
        let sonnet = pricing.lookup("claude-sonnet-4-5").unwrap();
        let tier = sonnet.long_context.as_ref().unwrap();
        assert_eq!(tier.cached_input, Some("0.6".parse().unwrap()));
        assert_eq!(
            &*pricing.lookup("claude-3-5-haiku-latest").unwrap().name,
            "claude-3-5-haiku-latest"
        );
        assert_eq!(
            &*pricing.lookup("gemini-2.5-pro").unwrap().provider,
            "google"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dry_run_writes_nothing_and_a_second_import_changes_nothing() {
        let dir = scratch_tables("dry");
        let before = std::fs::read_to_string(dir.join("openai.json")).unwrap();
        let line = format!("--from {EXCERPT} --dir {} --dry-run", dir.display());
        let (out, code) = run(&args(&line), date!(2026 - 12 - 05));
        assert_eq!(code, 0, "{out}");
        assert!(out.ends_with("dry run: nothing written\n"), "{out}");
        assert_eq!(
            std::fs::read_to_string(dir.join("openai.json")).unwrap(),
            before
        );

        let line = format!("--from {EXCERPT} --dir {}", dir.display());
        assert_eq!(run(&args(&line), date!(2026 - 12 - 05)).1, 0);
        let (again, _) = run(&args(&line), date!(2026 - 12 - 05));
        assert!(!again.contains(" ~ ") && !again.contains(" + "), "{again}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unchanged_tables_render_as_the_build_script_wrote_them() {
        // Importing nothing only moves `as_of` and `source`: the layout is the shipped one.
        let dir = scratch_tables("layout");
        let empty = dir.join("empty.json");
        std::fs::write(&empty, "{}").unwrap();
        let line = format!(
            "--from {} --dir {} --as-of 2026-07-18",
            empty.display(),
            dir.display()
        );
        assert_eq!(run(&args(&line), date!(2026 - 12 - 05)).1, 0);
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pricing/google.json");
        let strip_source = |text: String| {
            text.lines()
                .filter(|l| !l.trim_start().starts_with("\"source\""))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert_eq!(
            strip_source(std::fs::read_to_string(dir.join("google.json")).unwrap()),
            strip_source(std::fs::read_to_string(shipped).unwrap())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_input_names_the_problem() {
        let (out, code) = run(&args("--dir pricing"), date!(2026 - 12 - 05));
        assert_eq!(code, 2);
        assert!(out.contains("`--from FILE` is required"), "{out}");
        let (out, code) = run(
            &args("--from /nonexistent/prices.json"),
            date!(2026 - 12 - 05),
        );
        assert_eq!(code, 2);
        assert!(
            out.contains("cannot read /nonexistent/prices.json"),
            "{out}"
        );
        let dir = scratch_tables("bad");
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"{"gpt-x": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": "cheap"}}"#).unwrap();
        let line = format!("--from {} --dir {}", bad.display(), dir.display());
        let (out, code) = run(&args(&line), date!(2026 - 12 - 05));
        assert_eq!(code, 2);
        assert!(
            out.contains("`gpt-x`: `input_cost_per_token` is not a number"),
            "{out}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
