#!/usr/bin/env python3
"""Builds pricing/{openai,anthropic,google}.json from the research CSV.

Usage (from the repository root):

    python3 pricing/build_tables.py [path/to/pricing-facts.csv]

The CSV defaults to ../shared/reference/pricing-facts.csv beside the repository. Prices are
copied as the literal strings the CSV holds, so no value passes through a float. The rates
above a long-context tier that the CSV has no column for (cache read and cache write above
the threshold) come from pricing-notes.md sections 3 and 7 and are listed in TIER_CACHE below.
Re-run the script after editing the CSV, then run `cargo test -p fastagentic-tests --test
pricing`, which checks every CSV row against the tables.
"""

import csv
import json
import re
import sys
from collections import OrderedDict
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT.parent / "shared" / "reference" / "pricing-facts.csv"

# The upstream snapshot the tables come from (pricing-notes.md section 1).
AS_OF = "2026-07-18"
SOURCE = (
    "BerriAI/litellm model_prices_and_context_window.json at commit "
    "00035b69f416be24e2e323c13198d9b7d2d1bdf9 (upstream main as of 2026-07-18), "
    "cross-checked against the providers' pricing pages and pydantic/genai-prices; "
    "rows with their own `checked` date were taken from a later or earlier copy of that file"
)

# Cache rates above the long-context threshold: (cached_input, cache_write). None: not
# published. pricing-notes.md sections 3 and 7.
TIER_CACHE = {
    "claude-sonnet-4-20250514": ("0.6", "7.5"),
    "claude-sonnet-4-5": ("0.6", "7.5"),
    "gemini-2.5-pro": ("0.25", None),
    "gemini-pro-latest": ("0.25", None),
    "gemini-3-pro-preview": ("0.4", None),
    "gemini-3.1-pro-preview": ("0.4", None),
}
# GPT-5.4 and later: cache read (and GPT-5.6 cache write) double above 272k.
DOUBLE_ABOVE_TIER = re.compile(r"^gpt-5\.[456]")

# Names that spell another row's model differently, with identical prices and limits.
ALTERNATE_SPELLINGS = {
    "claude-4-sonnet-20250514": "claude-sonnet-4-20250514",
    "claude-4-opus-20250514": "claude-opus-4-20250514",
}

# Anthropic's moving `-latest` aliases, which the CSV has no rows for: each names the
# dated snapshot it served last (Anthropic's models overview), and is billed as that
# snapshot. litellm once listed claude-3-5-haiku-latest at $1 / $5 against the dated id's
# $0.80 / $4 (pricing-notes.md); the API bills the snapshot that answers, so the dated
# price is the one kept.
LATEST_ALIASES = {
    "anthropic": {
        "claude-3-opus-latest": "claude-3-opus-20240229",
        "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
        "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    },
}

# Short remarks on rows whose price sources disagree or that need a second look.
NOTES = {
    "gpt-4o-2024-05-13": "this snapshot kept its own launch price; it is not billed like gpt-4o",
    "o1-mini": "retired; last price upstream listed before it was removed",
    "o1-mini-2024-09-12": "retired; upstream kept the launch price for the dated id, above the o1-mini alias",
    "gpt-5.4-pro": "the cached-input rate is listed by litellm only; verify it",
    "gpt-5.5-pro": "the cached-input rate and the 272k tier are listed by litellm only; verify them",
    "gpt-5.5": "the 272k tier is listed by litellm only; verify it",
    "claude-3-5-haiku-20241022": "retired; last price upstream listed before it was removed",
    "claude-sonnet-4-20250514": "the 200k tier is disputed between sources; check Anthropic's long-context section",
    "gemini-1.5-pro": "retired; upstream kept the price from before October 2024, which later sources halve",
    "gemini-2.0-pro-exp-02-05": "retired free experimental model",
    "gemini-2.5-flash-preview-09-2025": "its cached-input rate differs from gemini-2.5-flash",
    "gemini-flash-latest": "a moving alias; its cached-input rate differs from gemini-2.5-flash",
    "gemini-flash-lite-latest": "a moving alias; its cached-input rate differs from gemini-2.5-flash-lite",
    "gemini-3.6-flash": "Google lists an introductory price of half this until 2026-12-31; these are the list rates",
}

SNAPSHOT = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3})$")
PRICE_FIELDS = [
    "input_usd_per_mtok",
    "output_usd_per_mtok",
    "cached_input_usd_per_mtok",
    "cache_write_usd_per_mtok",
    "reasoning_usd_per_mtok",
    "context_window",
    "max_output_tokens",
    "tier_threshold_tokens",
    "input_usd_per_mtok_above_tier",
    "output_usd_per_mtok_above_tier",
    "source_as_of",
]


def dec(text):
    """The literal as written, normalized (no float on the way)."""
    d = Decimal(text)
    s = format(d.normalize(), "f")
    return s


def twice(text):
    return dec(str(Decimal(text) * 2))


def entry(row):
    model = row["model"]
    e = OrderedDict()
    e["input"] = dec(row["input_usd_per_mtok"])
    e["output"] = dec(row["output_usd_per_mtok"])
    for col, key in [
        ("cached_input_usd_per_mtok", "cached_input"),
        ("cache_write_usd_per_mtok", "cache_write"),
        ("reasoning_usd_per_mtok", "reasoning"),
    ]:
        if row[col]:
            e[key] = dec(row[col])
    if row["tier_threshold_tokens"]:
        tier = OrderedDict()
        tier["threshold"] = int(row["tier_threshold_tokens"])
        tier["input"] = dec(row["input_usd_per_mtok_above_tier"])
        tier["output"] = dec(row["output_usd_per_mtok_above_tier"])
        base = model
        if base in TIER_CACHE:
            cached, write = TIER_CACHE[base]
            if cached:
                tier["cached_input"] = cached
            if write:
                tier["cache_write"] = write
        elif DOUBLE_ABOVE_TIER.match(model):
            if "cached_input" in e:
                tier["cached_input"] = twice(e["cached_input"])
            if "cache_write" in e:
                tier["cache_write"] = twice(e["cache_write"])
        e["long_context"] = tier
    e["context_window"] = int(row["context_window"])
    e["max_output"] = int(row["max_output_tokens"])
    e["checked"] = row["source_as_of"]
    if model in NOTES:
        e["note"] = NOTES[model]
    return e


def same(a, b):
    return all(a[f] == b[f] for f in PRICE_FIELDS)


def main():
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    by_name = {r["model"]: r for r in rows}
    for provider in ["openai", "anthropic", "google"]:
        mine = [r for r in rows if r["provider"] == provider]
        aliases = OrderedDict()
        models = OrderedDict()
        for r in mine:
            name = r["model"]
            target = ALTERNATE_SPELLINGS.get(name)
            if target is None:
                # The longest other row this one is a dated snapshot of.
                for base in sorted(by_name, key=len, reverse=True):
                    if name.startswith(base + "-") and SNAPSHOT.match(name[len(base) + 1 :]):
                        target = base
                        break
            if target is not None and same(r, by_name[target]):
                aliases[name] = target
            else:
                models[name] = entry(r)
        aliases.update(LATEST_ALIASES.get(provider, {}))
        table = OrderedDict()
        table["schema_version"] = 1
        table["provider"] = provider
        table["currency"] = "USD"
        table["as_of"] = AS_OF
        table["source"] = SOURCE
        table["models"] = models
        table["aliases"] = aliases
        out = ROOT / "pricing" / f"{provider}.json"
        out.write_text(json.dumps(table, indent=2) + "\n")
        print(f"{out.name}: {len(models)} models, {len(aliases)} aliases, {len(mine)} CSV rows")


if __name__ == "__main__":
    main()
