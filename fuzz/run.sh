#!/usr/bin/env bash
# Runs every fuzz target for a set time (default 60 s each) and prints what it did.
#
#   bash fuzz/run.sh [SECONDS]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The machine's toolchain is stable Rust;
# cargo-fuzz needs nightly flags, which RUSTC_BOOTSTRAP=1 unlocks on stable. A crash leaves its
# input in fuzz/artifacts/<target>/: copy it into fuzz/corpus/<target>/ so that
# tests/api/fuzz_corpus.rs replays it in every CI run, then fix the bug.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
source .ci/v8-env.sh
export RUSTC_BOOTSTRAP=1
for target in dispatch policy script_send; do
  echo "== $target ($seconds s)"
  # A working copy of the corpus, so the run's new inputs do not flood the repository.
  work="fuzz/target/corpus-$target"
  mkdir -p "$work"
  cp -n fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
  cargo fuzz run --fuzz-dir fuzz --sanitizer none "$target" "$work" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>&1 \
    | grep -E "stat::number_of_executed_units|stat::peak_rss_mb|SUMMARY|panicked|deadly signal" || true
done
