#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 20) each, corpora seeded from the fixtures
# in ../shared/fixtures/llm-wire and from fuzz/seeds. Needs cargo-fuzz
# (`cargo install cargo-fuzz`). A crash stops the script with libFuzzer's report and
# leaves the input under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-20}"
fixtures="../../shared/fixtures/llm-wire"

seed() {
    local target="$1"
    shift
    mkdir -p "corpus/$target"
    if [ -d "seeds/$target" ]; then
        cp seeds/"$target"/* "corpus/$target/"
    fi
    for file in "$@"; do
        [ -e "$file" ] && cp "$file" "corpus/$target/"
    done
    return 0
}

# sse_decoder reads a split-size byte first; the fixtures work as they are (their first
# byte picks the split).
seed sse_decoder "$fixtures"/*.sse
seed retry_hints
# classify reads a two-byte status first; the JSON bodies work as they are.
seed classify "$fixtures"/*.json

# Stable toolchain: no sanitizer (it needs nightly), libFuzzer's coverage still works.
# RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z flags on a stable compiler.
export RUSTC_BOOTSTRAP=1
for target in sse_decoder retry_hints classify; do
    echo "== fuzz $target for ${seconds}s"
    cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>&1 \
        | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==|INFO: Loaded|SUMMARY|.*panicked|.*Crash|.*crash)" || true
    if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
        echo "error: fuzz target $target found a failing input: $(ls "artifacts/$target")" >&2
        exit 1
    fi
done
