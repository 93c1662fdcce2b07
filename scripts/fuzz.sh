#!/usr/bin/env bash
# Runs the coverage-guided fuzz targets of fuzz/ (libFuzzer through
# cargo-fuzz, on the stable toolchain: no sanitizer, so a finding is a panic,
# an overflow check or an endless loop).
#
#   scripts/fuzz.sh [--seconds N] [TARGET ...]     (default: 60 s each, every target)
#
# Each target starts from its seeds (fuzz/seeds/TARGET, read only) and a
# fresh working corpus, with the tokens of fuzz/seeds/TARGET.dict; a crashing
# input is kept in fuzz/artifacts/TARGET and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=60
TARGETS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) SECONDS_EACH="$2"; shift 2 ;;
    -*) echo "unknown flag $1" >&2; exit 2 ;;
    *) TARGETS+=("$1"); shift ;;
  esac
done
if [[ ${#TARGETS[@]} -eq 0 ]]; then
  TARGETS=(segment_payload query_plan)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: run scripts/setup-dev.sh" >&2
  exit 1
fi

# Beside the service's build, so that fresh clones reuse it too.
FUZZ_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

for target in "${TARGETS[@]}"; do
  mkdir -p "$WORK/$target"
  echo "== fuzzing $target for ${SECONDS_EACH} s"
  dict=()
  if [[ -f "fuzz/seeds/$target.dict" ]]; then dict=("-dict=fuzz/seeds/$target.dict"); fi
  status=0
  cargo fuzz run --fuzz-dir fuzz --target-dir "$FUZZ_TARGET_DIR" --sanitizer none \
    "$target" "$WORK/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 -print_final_stats=1 "${dict[@]}" \
    > "$WORK/$target.log" 2>&1 || status=$?
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)' \
    "$WORK/$target.log" || true
  if [[ "$status" -ne 0 ]]; then
    tail -n 40 "$WORK/$target.log" >&2
    echo "fuzz target $target failed: a crashing input is in fuzz/artifacts/$target" >&2
    exit 1
  fi
done
