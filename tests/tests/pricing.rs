//! The pricing tables and cost rules: the shipped tables against the research CSV,
//! validation messages, lookup rules, hand-computed costs (also for usages taken from real
//! provider responses), overriding tables from a directory, and the global set.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use fastagentic::llm::Usage;
use fastagentic::pricing::{self, Decimal, Pricing, PricingError};

/// CI keeps the shared research folder beside the repository.
fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn embedded() -> Pricing {
    Pricing::embedded().unwrap()
}

fn usage(input: u64, output: u64) -> Usage {
    Usage::new(input, output)
}

// ---------------------------------------------------------------- the shipped tables

#[test]
fn shipped_tables_hold_every_csv_row_at_its_prices() {
    let pricing = embedded();
    let csv = std::fs::read_to_string(shared().join("reference/pricing-facts.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut rows = 0;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        rows += 1;
        let cells: Vec<&str> = line.split(',').collect();
        let cell = |name: &str| cells[col(name)];
        let opt = |name: &str| (!cell(name).is_empty()).then(|| dec(cell(name)));
        let name = cell("model");
        let provider = cell("provider");
        let table = pricing.table(provider).unwrap();
        // Exact name or alias, no other rule.
        let price = table
            .model(name)
            .unwrap_or_else(|| panic!("{name} is not in pricing/{provider}.json"));
        assert_eq!(price.input, dec(cell("input_usd_per_mtok")), "{name}");
        assert_eq!(price.output, dec(cell("output_usd_per_mtok")), "{name}");
        assert_eq!(
            price.cached_input,
            opt("cached_input_usd_per_mtok"),
            "{name}"
        );
        assert_eq!(price.cache_write, opt("cache_write_usd_per_mtok"), "{name}");
        assert_eq!(price.reasoning, opt("reasoning_usd_per_mtok"), "{name}");
        assert_eq!(
            price.context_window,
            Some(cell("context_window").parse().unwrap()),
            "{name}"
        );
        assert_eq!(
            price.max_output,
            Some(cell("max_output_tokens").parse().unwrap()),
            "{name}"
        );
        assert_eq!(price.checked.to_string(), cell("source_as_of"), "{name}");
        match &price.long_context {
            None => assert!(cell("tier_threshold_tokens").is_empty(), "{name}"),
            Some(tier) => {
                assert_eq!(
                    tier.threshold,
                    cell("tier_threshold_tokens").parse::<u64>().unwrap()
                );
                assert_eq!(tier.input, dec(cell("input_usd_per_mtok_above_tier")));
                assert_eq!(tier.output, dec(cell("output_usd_per_mtok_above_tier")));
            }
        }
        // And the global lookup finds the same entry.
        assert_eq!(pricing.lookup(name).unwrap(), price, "{name}");
    }
    assert_eq!(rows, 112);
    let names: usize = pricing.tables().iter().map(|t| t.name_count()).sum();
    // Every CSV row, and Anthropic's three `-latest` aliases, which have no row of their
    // own (see `anthropic_latest_aliases_are_billed_as_their_dated_snapshot`).
    assert_eq!(names, 112 + 3, "every CSV row and nothing else");
}

#[test]
fn shipped_tables_are_dated_from_the_snapshot() {
    for table in embedded().tables() {
        assert_eq!(table.as_of.to_string(), "2026-07-18");
        assert_eq!(table.currency, "USD");
        assert_eq!(table.schema_version, 1);
    }
}

#[test]
fn dated_rows_with_their_own_price_stay_models() {
    let pricing = embedded();
    assert_eq!(
        &*pricing.lookup("gpt-4o-2024-05-13").unwrap().name,
        "gpt-4o-2024-05-13"
    );
    assert_eq!(pricing.lookup("gpt-4o-2024-05-13").unwrap().input, dec("5"));
    assert_eq!(
        pricing.lookup("o1-mini-2024-09-12").unwrap().input,
        dec("3")
    );
    assert_eq!(pricing.lookup("o1-mini").unwrap().input, dec("1.1"));
    // A dated row priced like its base is an alias of it.
    let gpt4o = pricing.lookup("gpt-4o").unwrap();
    assert!(gpt4o.aliases.iter().any(|a| &**a == "gpt-4o-2024-08-06"));
}

#[test]
fn anthropic_latest_aliases_are_billed_as_their_dated_snapshot() {
    let pricing = embedded();
    for (alias, dated) in [
        ("claude-3-opus-latest", "claude-3-opus-20240229"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku-20241022"),
        ("claude-3-7-sonnet-latest", "claude-3-7-sonnet-20250219"),
    ] {
        assert_eq!(&*pricing.lookup(alias).unwrap().name, dated, "{alias}");
    }
    // The real stream fixture names the alias; its usage {11 in, 6 out} at Opus 3's
    // $15 / $75: 0.000165 + 0.00045.
    let cost = pricing.cost("claude-3-opus-latest", &usage(11, 6)).unwrap();
    assert_eq!(cost.total_f64(), 0.000615);
}

#[test]
fn above_tier_cache_rates_come_from_the_notes() {
    let pricing = embedded();
    let tier = |m: &str| pricing.lookup(m).unwrap().long_context.clone().unwrap();
    let sonnet = tier("claude-sonnet-4-5");
    assert_eq!(sonnet.cached_input, Some(dec("0.6")));
    assert_eq!(sonnet.cache_write, Some(dec("7.5")));
    assert_eq!(tier("gemini-2.5-pro").cached_input, Some(dec("0.25")));
    assert_eq!(
        tier("gemini-3.1-pro-preview").cached_input,
        Some(dec("0.4"))
    );
    assert_eq!(tier("gpt-5.4").cached_input, Some(dec("0.5")));
    let gpt56 = tier("gpt-5.6");
    assert_eq!(gpt56.cached_input, Some(dec("1")));
    assert_eq!(gpt56.cache_write, Some(dec("12.5")));
}

// ---------------------------------------------------------------- validation

const GOOD_MODEL: &str = r#""input": "1", "output": "2", "checked": "2026-07-18""#;

fn table_with(models: &str, aliases: &str) -> String {
    format!(
        r#"{{"schema_version": 1, "provider": "acme", "currency": "USD", "as_of": "2026-07-18",
            "models": {{ {models} }}, "aliases": {{ {aliases} }} }}"#
    )
}

fn load_err(text: &str) -> (PricingError, String) {
    let err = Pricing::from_json("acme.json", text).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("acme.json"), "{message}");
    (err, message)
}

#[test]
fn a_valid_custom_table_loads() {
    let text = table_with(
        &format!(r#""acme-1": {{ {GOOD_MODEL}, "cached_input": "0.5" }}"#),
        r#""acme-1-2026-01-01": "acme-1""#,
    );
    let table = Pricing::from_json("acme.json", &text).unwrap();
    assert_eq!(&*table.provider, "acme");
    assert_eq!(table.models[0].aliases.len(), 1);
}

#[test]
fn unknown_fields_are_rejected_naming_model_and_field() {
    let text = table_with(
        &format!(r#""acme-1": {{ {GOOD_MODEL}, "inptu": "1" }}"#),
        "",
    );
    let (err, message) = load_err(&text);
    assert!(matches!(err, PricingError::Syntax { .. }), "{err:?}");
    assert!(message.contains("acme-1"), "{message}");
    assert!(message.contains("inptu"), "{message}");

    let (_, message) = load_err(
        r#"{"schema_version": 1, "provider": "acme", "currency": "USD", "as_of": "2026-07-18", "models": {}, "asof": "x"}"#,
    );
    assert!(message.contains("asof"), "{message}");
}

#[test]
fn negative_prices_are_rejected() {
    let text = table_with(
        r#""acme-1": {"input": "1", "output": "-0.5", "checked": "2026-07-18"}"#,
        "",
    );
    let (err, message) = load_err(&text);
    assert!(
        matches!(&err, PricingError::InvalidField { model, field: "output", .. } if model == "acme-1"),
        "{err:?}"
    );
    assert!(message.contains("negative"), "{message}");
    assert!(message.contains("`output`"), "{message}");
}

#[test]
fn prices_must_be_decimal_strings() {
    let text = table_with(
        r#""acme-1": {"input": 0.1, "output": "2", "checked": "2026-07-18"}"#,
        "",
    );
    let (_, message) = load_err(&text);
    assert!(
        message.contains("acme-1") && message.contains("`input`"),
        "{message}"
    );
    assert!(message.contains("quote the price"), "{message}");

    let text = table_with(
        r#""acme-1": {"input": "cheap", "output": "2", "checked": "2026-07-18"}"#,
        "",
    );
    let (_, message) = load_err(&text);
    assert!(message.contains("not a decimal number"), "{message}");
}

#[test]
fn missing_fields_are_named() {
    let text = table_with(r#""acme-1": {"input": "1", "checked": "2026-07-18"}"#, "");
    let (err, message) = load_err(&text);
    assert!(
        matches!(&err, PricingError::MissingField { model, field: "output", .. } if model == "acme-1"),
        "{err:?}"
    );
    assert!(message.contains("add it"), "{message}");

    let text = table_with(r#""acme-1": {"input": "1", "output": "2"}"#, "");
    let (_, message) = load_err(&text);
    assert!(message.contains("`checked`"), "{message}");

    let (_, message) =
        load_err(r#"{"schema_version": 1, "provider": "acme", "currency": "USD", "models": {}}"#);
    assert!(
        message.contains("`as_of`") && message.contains("missing"),
        "{message}"
    );
}

#[test]
fn a_tier_needs_a_threshold() {
    let text = table_with(
        &format!(
            r#""acme-1": {{ {GOOD_MODEL}, "long_context": {{"input": "2", "output": "4"}} }}"#
        ),
        "",
    );
    let (err, message) = load_err(&text);
    assert!(matches!(
        err,
        PricingError::MissingField {
            field: "long_context.threshold",
            ..
        }
    ));
    assert!(message.contains("acme-1"), "{message}");
}

#[test]
fn aliases_must_point_somewhere_and_not_collide() {
    let text = table_with(
        &format!(r#""acme-1": {{ {GOOD_MODEL} }}"#),
        r#""acme-1-001": "acme-2""#,
    );
    let (err, message) = load_err(&text);
    assert!(matches!(err, PricingError::DanglingAlias { .. }), "{err:?}");
    assert!(
        message.contains("acme-1-001") && message.contains("acme-2"),
        "{message}"
    );
    assert!(message.contains("`aliases`"), "{message}");

    let text = table_with(
        &format!(r#""acme-1": {{ {GOOD_MODEL} }}, "acme-2": {{ {GOOD_MODEL} }}"#),
        r#""acme-2": "acme-1""#,
    );
    let (err, message) = load_err(&text);
    assert!(
        matches!(err, PricingError::AliasCollision { .. }),
        "{err:?}"
    );
    assert!(message.contains("acme-2"), "{message}");

    let text = table_with(
        &format!(r#""acme-1": {{ {GOOD_MODEL} }}, "acme-1": {{ {GOOD_MODEL} }}"#),
        "",
    );
    let (err, _) = load_err(&text);
    assert!(
        matches!(err, PricingError::DuplicateModel { .. }),
        "{err:?}"
    );
}

#[test]
fn other_currencies_and_versions_are_rejected() {
    let (_, message) = load_err(
        r#"{"schema_version": 1, "provider": "acme", "currency": "EUR", "as_of": "2026-07-18", "models": {}}"#,
    );
    assert!(
        message.contains("`currency`") && message.contains("EUR"),
        "{message}"
    );
    let (_, message) = load_err(
        r#"{"schema_version": 2, "provider": "acme", "currency": "USD", "as_of": "2026-07-18", "models": {}}"#,
    );
    assert!(message.contains("`schema_version`"), "{message}");
}

// ---------------------------------------------------------------- lookup

#[test]
fn lookup_rules() {
    let pricing = embedded();
    let name = |m: &str| pricing.lookup(m).map(|p| p.name.to_string());
    // Exact, and an alias.
    assert_eq!(name("gpt-4o-mini").unwrap(), "gpt-4o-mini");
    assert_eq!(name("gpt-4o-mini-2024-07-18").unwrap(), "gpt-4o-mini");
    assert_eq!(
        name("claude-sonnet-4-5-20250929").unwrap(),
        "claude-sonnet-4-5"
    );
    assert_eq!(
        name("claude-4-sonnet-20250514").unwrap(),
        "claude-sonnet-4-20250514"
    );
    // A dated snapshot no table lists: the longest known name, never a shorter one.
    assert_eq!(name("gpt-4o-mini-2099-01-01").unwrap(), "gpt-4o-mini");
    assert_eq!(name("gpt-4o-2099-01-01").unwrap(), "gpt-4o");
    assert_eq!(
        name("claude-sonnet-4-5-20991231").unwrap(),
        "claude-sonnet-4-5"
    );
    assert_eq!(name("gemini-2.5-pro-001").unwrap(), "gemini-2.5-pro");
    // Routing prefixes.
    assert_eq!(name("openai/gpt-4o").unwrap(), "gpt-4o");
    assert_eq!(name("mock/gpt-4o-mini").unwrap(), "gpt-4o-mini");
    assert_eq!(name("models/gemini-2.5-pro").unwrap(), "gemini-2.5-pro");
    assert_eq!(
        name("openai/gpt-4o-mini-2099-01-01").unwrap(),
        "gpt-4o-mini"
    );
    // Not snapshots: other words, impossible dates, unknown names.
    assert!(name("gpt-4o-mini-preview").is_err());
    assert!(name("gpt-4o-2024-13-01").is_err());
    assert!(name("GPT-4O").is_err());
    assert!(name("mock/hello").is_err());
}

#[test]
fn unknown_models_have_no_cost() {
    let pricing = embedded();
    let err = pricing.cost("acme-giant", &usage(10, 10)).unwrap_err();
    assert_eq!(err.model, "acme-giant");
    let message = err.to_string();
    assert!(
        message.contains("no price is known for model `acme-giant`"),
        "{message}"
    );
    assert!(message.contains("FASTAGENTIC_PRICING_DIR"), "{message}");
}

// ---------------------------------------------------------------- cost rules

#[test]
fn openai_cached_tokens_are_part_of_input() {
    // gpt-4o: 2000 prompt tokens of which 1500 cached, 300 output.
    let mut u = usage(2000, 300);
    u.cache_read = 1500;
    let cost = embedded().cost("gpt-4o", &u).unwrap();
    // 500 × 2.5/M = 0.00125; 1500 × 1.25/M = 0.001875; 300 × 10/M = 0.003
    assert_eq!(cost.input, dec("0.00125"));
    assert_eq!(cost.cached_input, dec("0.001875"));
    assert_eq!(cost.output, dec("0.003"));
    assert_eq!(cost.total, dec("0.006125"));
    assert!(!cost.long_context);
}

#[test]
fn anthropic_cache_reads_and_writes() {
    // claude-sonnet-4-5: input_tokens 100, cache_creation 1000, cache_read 5000 → our
    // client's input = 6100; output 200.
    let mut u = usage(6100, 200);
    u.cache_read = 5000;
    u.cache_write = 1000;
    let cost = embedded().cost("claude-sonnet-4-5", &u).unwrap();
    // 100 × 3/M = 0.0003; 5000 × 0.3/M = 0.0015; 1000 × 3.75/M = 0.00375; 200 × 15/M = 0.003
    assert_eq!(cost.input, dec("0.0003"));
    assert_eq!(cost.cached_input, dec("0.0015"));
    assert_eq!(cost.cache_write, dec("0.00375"));
    assert_eq!(cost.output, dec("0.003"));
    assert_eq!(cost.total, dec("0.00855"));
}

#[test]
fn gemini_thoughts_are_output() {
    // gemini-2.5-pro (no separate reasoning rate): 1000 prompt, 100 candidates + 400
    // thoughts → output 500, reasoning 400.
    let mut u = usage(1000, 500);
    u.reasoning = 400;
    let cost = embedded().cost("gemini-2.5-pro", &u).unwrap();
    // 1000 × 1.25/M = 0.00125; 500 × 10/M = 0.005
    assert_eq!(cost.output, dec("0.005"));
    assert_eq!(cost.reasoning, dec("0"));
    assert_eq!(cost.total, dec("0.00625"));
}

#[test]
fn a_separate_reasoning_rate_is_used() {
    // gemini-2.5-flash lists reasoning at 2.5 (the output rate): split, same total.
    let mut u = usage(1000, 500);
    u.reasoning = 400;
    let cost = embedded().cost("gemini-2.5-flash", &u).unwrap();
    // 1000 × 0.3/M = 0.0003; 100 × 2.5/M = 0.00025; 400 × 2.5/M = 0.001
    assert_eq!(cost.output, dec("0.00025"));
    assert_eq!(cost.reasoning, dec("0.001"));
    assert_eq!(cost.total, dec("0.00155"));

    // A rate that differs from output (as gemini-2.5-flash-preview-04-17 once had).
    let table = Pricing::from_json(
        "acme.json",
        &table_with(
            r#""thinker": {"input": "0.15", "output": "0.6", "reasoning": "3.5", "checked": "2025-05-01"}"#,
            "",
        ),
    )
    .unwrap();
    let pricing = embedded().with_table(table);
    let cost = pricing.cost("thinker", &u).unwrap();
    // 1000 × 0.15/M = 0.00015; 100 × 0.6/M = 0.00006; 400 × 3.5/M = 0.0014
    assert_eq!(cost.total, dec("0.00161"));
}

#[test]
fn long_context_tier_applies_strictly_above_the_threshold() {
    let pricing = embedded();
    // gpt-5.4, threshold 272000; 200000 of the prompt cached; 1000 output.
    let mut above = usage(272_001, 1000);
    above.cache_read = 200_000;
    let cost = pricing.cost("gpt-5.4", &above).unwrap();
    // every class at tier rates: 72001 × 5/M = 0.360005; 200000 × 0.5/M = 0.1;
    // 1000 × 22.5/M = 0.0225
    assert!(cost.long_context);
    assert_eq!(cost.input, dec("0.360005"));
    assert_eq!(cost.cached_input, dec("0.1"));
    assert_eq!(cost.output, dec("0.0225"));
    assert_eq!(cost.total, dec("0.482505"));

    let mut at = usage(272_000, 1000);
    at.cache_read = 200_000;
    let cost = pricing.cost("gpt-5.4", &at).unwrap();
    // base rates: 72000 × 2.5/M = 0.18; 200000 × 0.25/M = 0.05; 1000 × 15/M = 0.015
    assert!(!cost.long_context);
    assert_eq!(cost.total, dec("0.245"));
}

#[test]
fn anthropic_tier_counts_cache_in_the_prompt() {
    // claude-sonnet-4-5: 10000 fresh + 40000 written + 200000 read = 250000 > 200000.
    let mut u = usage(250_000, 2000);
    u.cache_read = 200_000;
    u.cache_write = 40_000;
    let cost = embedded().cost("claude-sonnet-4-5-20250929", &u).unwrap();
    // 10000 × 6/M = 0.06; 200000 × 0.6/M = 0.12; 40000 × 7.5/M = 0.3; 2000 × 22.5/M = 0.045
    assert!(cost.long_context);
    assert_eq!(cost.total, dec("0.525"));
}

#[test]
fn costs_sum_and_serialize() {
    let pricing = embedded();
    let a = pricing.cost("gpt-4o-mini", &usage(1000, 500)).unwrap();
    let b = pricing.cost("gpt-4o", &usage(1000, 500)).unwrap();
    // 1000 × 0.15/M + 500 × 0.6/M = 0.00045; 1000 × 2.5/M + 500 × 10/M = 0.0075
    assert_eq!(a.total, dec("0.00045"));
    assert_eq!(b.total, dec("0.0075"));
    let sum = a.clone() + b;
    assert_eq!(sum.total, dec("0.00795"));
    assert_eq!(&*sum.model, "gpt-4o-mini");
    assert!((a.total_f64() - 0.00045).abs() < 1e-12);

    let json = serde_json::to_value(&a).unwrap();
    assert_eq!(json["model"], "gpt-4o-mini");
    assert_eq!(json["total"].as_f64(), Some(0.00045));
    assert_eq!(json["long_context"], false);
}

// ---------------------------------------------------------------- real responses

fn fixture(name: &str) -> serde_json::Value {
    let path = shared().join("fixtures/llm-wire").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

#[test]
fn openai_chat_completion_fixture() {
    let body = fixture("openai_chat_completion.json");
    let usage_json = &body["usage"];
    // Our OpenAI client: input = prompt_tokens (cached included), output = completion_tokens.
    let mut u = usage(
        n(&usage_json["prompt_tokens"]),
        n(&usage_json["completion_tokens"]),
    );
    u.cache_read = n(&usage_json["prompt_tokens_details"]["cached_tokens"]);
    u.reasoning = n(&usage_json["completion_tokens_details"]["reasoning_tokens"]);
    assert_eq!((u.input, u.output, u.cache_read), (19, 10, 0));
    let cost = embedded()
        .cost(body["model"].as_str().unwrap(), &u)
        .unwrap();
    // gpt-5.4: 19 × 2.5/M = 0.0000475; 10 × 15/M = 0.00015
    assert_eq!(&*cost.model, "gpt-5.4");
    assert_eq!(cost.total, dec("0.0001975"));
}

#[test]
fn anthropic_message_fixture() {
    let body = fixture("anthropic_message.json");
    let usage_json = &body["usage"];
    // Our Anthropic client: input = input_tokens + cache writes + cache reads.
    let write = n(&usage_json["cache_creation_input_tokens"]);
    let read = n(&usage_json["cache_read_input_tokens"]);
    let mut u = usage(
        n(&usage_json["input_tokens"]) + write + read,
        n(&usage_json["output_tokens"]),
    );
    u.cache_read = read;
    u.cache_write = write;
    assert_eq!((u.input, u.output), (406, 50));
    let cost = embedded()
        .cost(body["model"].as_str().unwrap(), &u)
        .unwrap();
    // claude-sonnet-4-5-20250929 → claude-sonnet-4-5: 406 × 3/M = 0.001218; 50 × 15/M = 0.00075
    assert_eq!(&*cost.model, "claude-sonnet-4-5");
    assert_eq!(cost.total, dec("0.001968"));
}

#[test]
fn gemini_cached_fixture() {
    let body = fixture("gemini_generate_content_cached.json");
    let meta = &body["usageMetadata"];
    // Our Gemini client: input = promptTokenCount (cached included), output = candidates +
    // thoughts, reasoning = thoughts.
    let thoughts = n(&meta["thoughtsTokenCount"]);
    let mut u = usage(
        n(&meta["promptTokenCount"]),
        n(&meta["candidatesTokenCount"]) + thoughts,
    );
    u.reasoning = thoughts;
    u.cache_read = n(&meta["cachedContentTokenCount"]);
    assert_eq!(
        (u.input, u.output, u.reasoning, u.cache_read),
        (12013, 88, 73, 11243)
    );
    let cost = embedded()
        .cost(body["modelVersion"].as_str().unwrap(), &u)
        .unwrap();
    // gemini-2.5-flash: (12013 − 11243) = 770 × 0.3/M = 0.000231;
    // 11243 × 0.03/M = 0.00033729; 15 × 2.5/M = 0.0000375; 73 × 2.5/M = 0.0001825
    assert_eq!(cost.input, dec("0.000231"));
    assert_eq!(cost.cached_input, dec("0.00033729"));
    assert_eq!(cost.output, dec("0.0000375"));
    assert_eq!(cost.reasoning, dec("0.0001825"));
    assert_eq!(cost.total, dec("0.00078829"));
}

#[test]
fn gemini_plain_fixture() {
    let body = fixture("gemini_generate_content.json");
    let meta = &body["usageMetadata"];
    let u = usage(
        n(&meta["promptTokenCount"]),
        n(&meta["candidatesTokenCount"]) + n(&meta["thoughtsTokenCount"]),
    );
    let cost = embedded()
        .cost(body["modelVersion"].as_str().unwrap(), &u)
        .unwrap();
    // gemini-2.0-flash: 7 × 0.1/M = 0.0000007; 22 × 0.4/M = 0.0000088
    assert_eq!(cost.total, dec("0.0000095"));
}

// ---------------------------------------------------------------- overriding

fn override_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("openai.json"),
        r#"{"schema_version": 1, "provider": "openai", "currency": "USD", "as_of": "2026-09-01",
            "models": {"gpt-4o": {"input": "2", "output": "8", "checked": "2026-09-01"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("acme.json"),
        table_with(&format!(r#""acme-1": {{ {GOOD_MODEL} }}"#), ""),
    )
    .unwrap();
    std::fs::write(dir.join("README.txt"), "not a table").unwrap();
    dir
}

#[test]
fn a_directory_replaces_tables_of_the_same_provider() {
    let dir = override_dir("pricing-override");
    let pricing = Pricing::from_dir(&dir).unwrap();
    // openai replaced wholesale: the new gpt-4o price, and gpt-4o-mini gone.
    assert_eq!(pricing.lookup("gpt-4o").unwrap().input, dec("2"));
    assert!(pricing.lookup("gpt-4o-mini").is_err());
    assert_eq!(
        pricing.table("openai").unwrap().as_of.to_string(),
        "2026-09-01"
    );
    // Other shipped tables stay, and new providers are added.
    assert!(pricing.lookup("claude-sonnet-4-5").is_ok());
    assert!(pricing.lookup("acme-1").is_ok());
    assert_eq!(pricing.tables().len(), 4);
}

#[test]
fn an_invalid_file_in_the_directory_is_an_error_naming_it() {
    let dir = override_dir("pricing-override-bad");
    std::fs::write(dir.join("broken.json"), r#"{"schema_version": 1"#).unwrap();
    let err = Pricing::from_dir(&dir).unwrap_err();
    assert!(err.to_string().contains("broken.json"), "{err}");
    assert!(Pricing::from_dir(dir.join("missing")).is_err());
}

const CHILD: &str = "FASTAGENTIC_TEST_PRICING_CHILD";

#[test]
fn the_global_set_reads_the_environment_and_skips_bad_files() {
    let dir = override_dir("pricing-override-global");
    std::fs::write(dir.join("broken.json"), "{").unwrap();
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(&exe)
        .args([
            "--exact",
            "child_global_pricing",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(pricing::PRICING_DIR_ENV, &dir)
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
}

/// Run by the test above in a child process with `FASTAGENTIC_PRICING_DIR` set.
#[test]
fn child_global_pricing() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let pricing = pricing::global();
    assert_eq!(pricing.lookup("gpt-4o").unwrap().input, dec("2"));
    assert!(pricing.lookup("claude-sonnet-4-5").is_ok());
    assert!(pricing.lookup("acme-1").is_ok());
}
