#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for a fixed time and prints what each did.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS is the time per target (default 60); TARGETs default to all of them. The machine has
# a stable toolchain only: RUSTC_BOOTSTRAP=1 lets it take the nightly flags cargo-fuzz passes
# (sanitizer coverage). cargo-fuzz is installed if missing. Builds go to fuzz/target, corpora
# to fuzz/corpus/<target> (seeded from the shipped catalog and units), crashing inputs to
# fuzz/artifacts/<target>; none of them is tracked by git. fuzz/dicts/<target>.dict, when
# present, gives libFuzzer the keywords and edge numbers of the target's format.
#
# Environment: FUZZ_SANITIZER (address, the default, or none), FUZZ_LOG_DIR (where each
# target's libFuzzer output goes; default fuzz/logs), FUZZ_TARGET_DIR (build products; default
# fuzz/target).
#
# Exit status: 0 when no target crashed; 1 when one did (the crashing input's path and the
# command that replays it are printed); 2 on a usage or build error.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 [SECONDS] [TARGET...]  (SECONDS: a whole number > 0, not '$seconds')" >&2
  exit 2
fi
shift || true
all_targets=(period_id catalog_toml units_file report_validation)
if [ $# -eq 0 ]; then targets=("${all_targets[@]}"); else targets=("$@"); fi

sanitizer=${FUZZ_SANITIZER:-address}
log_dir=${FUZZ_LOG_DIR:-$root/fuzz/logs}
mkdir -p "$log_dir"

export RUSTC_BOOTSTRAP=1
# The fuzz crate is its own workspace with its own build products (other RUSTFLAGS): never
# mix them into the main target directory, whatever CARGO_TARGET_DIR says. FUZZ_TARGET_DIR
# may point elsewhere (a cache that outlives the clone, as CI's target directory does).
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$root/fuzz/target}"
export CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

# Seeds: the shipped configuration files, so mutation starts from realistic input, and small
# hand-made ones (fuzz/seeds), so mutations land on each key often.
seed() { # seed TARGET NAME CONTENT-FILE [PREFIX-BYTE]
  local dir="$root/fuzz/corpus/$1"
  mkdir -p "$dir"
  if [ ! -e "$dir/$2" ]; then
    { [ -n "${4:-}" ] && printf '%s' "$4"; cat "$3"; } >"$dir/$2"
  fi
}
seed_text() { # seed_text TARGET NAME TEXT
  local dir="$root/fuzz/corpus/$1"
  mkdir -p "$dir"
  [ -e "$dir/$2" ] || printf '%s' "$3" >"$dir/$2"
}
seed catalog_toml default_catalog.toml src/domain/default_catalog.toml
seed catalog_toml minimal.toml fuzz/seeds/catalog_toml/minimal.toml
# units_file: the first byte chooses the format (even: TOML, odd: CSV).
seed units_file units.toml examples/binh-son/units.toml 0
seed units_file units.csv examples/binh-son/units.csv 1
seed units_file minimal.toml fuzz/seeds/units_file/minimal.toml 0
seed units_file minimal.csv fuzz/seeds/units_file/minimal.csv 1
for p in 201909 2019Q3 2019S1 2019N9 2019 1990 210012; do
  seed_text period_id "$p" "$p"
done

started=$(date +%s)
echo "== building ${targets[*]} (sanitizer: $sanitizer)"
# One cargo invocation for all targets (cargo fuzz build takes one target or all of them).
if [ "${targets[*]}" = "${all_targets[*]}" ]; then
  build_sets=("")
else
  build_sets=("${targets[@]}")
fi
for t in "${build_sets[@]}"; do
  # shellcheck disable=SC2086 # an empty $t means every target
  if ! cargo fuzz build -O -a -s "$sanitizer" $t; then
    echo "build of fuzz target(s) ${t:-${all_targets[*]}} failed" >&2
    exit 2
  fi
done
echo "== built in $(($(date +%s) - started)) s; fuzzing each target for $seconds s"

crashed=0
summary=()
for t in "${targets[@]}"; do
  log="$log_dir/$t.log"
  echo "== $t ($seconds s, log: $log)"
  t0=$(date +%s)
  dict=()
  if [ -f "$root/fuzz/dicts/$t.dict" ]; then dict=(-dict="$root/fuzz/dicts/$t.dict"); fi
  set +e
  cargo fuzz run -O -a -s "$sanitizer" "$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "${dict[@]}" >"$log" 2>&1
  status=$?
  set -e
  elapsed=$(($(date +%s) - t0))
  # libFuzzer's last words: "Done N runs in S second(s)"; with -print_final_stats,
  # "stat::number_of_executed_units: N".
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | tail -n 1 | grep -Eo '[0-9]+$' || true)
  if [ -z "$runs" ]; then
    runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | tail -n 1 | grep -Eo '[0-9]+' || true)
  fi
  # Seconds spent fuzzing, as libFuzzer counts them (the wall time also covers any rebuild
  # cargo fuzz run does first).
  fuzzed=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1 | grep -Eo '[0-9]+ second' | grep -Eo '[0-9]+' || true)
  fuzzed=${fuzzed:-$elapsed}
  corpus=$(find "$root/fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
  artifacts=$(grep -Eo 'Test unit written to [^ ]+' "$log" | sed 's/Test unit written to //' || true)
  if [ $status -ne 0 ] || [ -n "$artifacts" ]; then
    crashed=1
    echo "!! $t CRASHED (exit $status) after $elapsed s (wall)"
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | head -n 5 || true
    for a in $artifacts; do
      echo "   crashing input: $a"
      echo "   replay: RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a -s $sanitizer $t $a"
    done
    summary+=("$t runs=${runs:-?} seconds=$fuzzed wall=$elapsed crashes=$(echo "$artifacts" | grep -c . || true) corpus=$corpus")
  else
    echo "   ok: ${runs:-?} runs in $fuzzed s (wall $elapsed s), corpus $corpus inputs"
    summary+=("$t runs=${runs:-?} seconds=$fuzzed wall=$elapsed crashes=0 corpus=$corpus")
  fi
done

echo "== summary (${seconds} s per target, sanitizer $sanitizer)"
printf '%s\n' "${summary[@]}"
if [ $crashed -ne 0 ]; then
  echo "a fuzz target crashed: see the crashing inputs above and the logs in $log_dir" >&2
  exit 1
fi
