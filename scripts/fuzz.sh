#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers of untrusted input (fuzz/, cargo-fuzz + libFuzzer).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 30)
#
# Builds every target once, then runs each for SECONDS_PER_TARGET on a scratch copy of its
# committed seed corpus (fuzz/corpus/<target>/ is never grown), one after the other, and
# prints one line per target: executions, libFuzzer's final coverage (`cov:` edges and `ft:`
# features of its `#N DONE` line) and crashes. Exits non-zero if any target crashed (the
# input is under fuzz/artifacts/<target>/, the log under the scratch directory printed).
#
# Needs only rustup with a nightly toolchain (`rustup toolchain install nightly`); installs
# cargo-fuzz if it is missing. Environment:
#   FUZZ_TARGETS="a b"   only these targets (default: all of `cargo fuzz list`)
#   FUZZ_JOBS=N          build jobs (default: cargo's)
#   FUZZ_WORK=DIR        scratch directory (default: a new one under ${TMPDIR:-/tmp})
#   RSS_LIMIT_MB=N       libFuzzer's memory limit per target (default 2048)
set -uo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-30}"
if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [ "$SECONDS_PER_TARGET" -lt 1 ]; then
  echo "usage: $0 [SECONDS_PER_TARGET]   (a positive number of seconds, default 30)" >&2
  exit 2
fi

if ! command -v rustup >/dev/null 2>&1; then
  echo "fuzz.sh: rustup is not installed; cargo-fuzz needs it with a nightly toolchain" >&2
  exit 2
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: no nightly toolchain (libFuzzer's sanitizers need one): run 'rustup toolchain install nightly'" >&2
  exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked || { echo "fuzz.sh: could not install cargo-fuzz" >&2; exit 2; }
fi

TARGETS="${FUZZ_TARGETS:-$(cargo +nightly fuzz list 2>/dev/null)}"
if [ -z "$TARGETS" ]; then
  echo "fuzz.sh: no fuzz targets found (cargo +nightly fuzz list)" >&2
  exit 2
fi

echo "== building $(echo "$TARGETS" | wc -w) fuzz targets (nightly, optimized, AddressSanitizer, debug assertions)"
BUILD_ARGS=()
[ -n "${FUZZ_JOBS:-}" ] && BUILD_ARGS+=(--jobs "$FUZZ_JOBS")
build_started=$(date +%s)
# One build of every target; they then run as built (`cargo fuzz run` would rebuild whatever
# changed in the tree meanwhile).
if [ -z "${FUZZ_TARGETS:-}" ]; then
  cargo +nightly fuzz build "${BUILD_ARGS[@]}" || { echo "fuzz.sh: the fuzz targets do not build" >&2; exit 1; }
else
  for t in $TARGETS; do
    cargo +nightly fuzz build "${BUILD_ARGS[@]}" "$t" || { echo "fuzz.sh: fuzz target $t does not build" >&2; exit 1; }
  done
fi
echo "   built in $(( $(date +%s) - build_started )) s"
TRIPLE="$(rustup run nightly rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="fuzz/target/$TRIPLE/release"

WORK="${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/riskdesk-fuzz.XXXXXX")}"
mkdir -p "$WORK"
echo "== fuzzing each target for ${SECONDS_PER_TARGET} s (scratch: $WORK)"

# The bundled SQLite (compiled into the binaries through riskdesk-storage, never called by a
# target) trips AddressSanitizer's ODR check with two function-local statics of one name.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"
failed=0

# Every input that once made a target fail must pass now (libFuzzer runs files given to it once).
echo "== replaying fuzz/regressions/"
for t in $TARGETS; do
  [ -d "fuzz/regressions/$t" ] || continue
  for f in "fuzz/regressions/$t"/*; do
    if "$BIN_DIR/$t" -timeout=10 -rss_limit_mb="${RSS_LIMIT_MB:-2048}" "$f" >"$WORK/replay.log" 2>&1; then
      echo "   ok    $t $(basename "$f")"
    else
      echo "   FAILS $t $(basename "$f")" >&2
      grep -E 'panicked at|^SUMMARY|deadly signal|ERROR: libFuzzer' "$WORK/replay.log" | head -3 | sed 's/^/     /' >&2
      failed=1
    fi
  done
done

summary="$WORK/summary.txt"
printf '%-22s %12s %8s %8s %8s\n' target executions cov ft crashes >"$summary"
run_started=$(date +%s)
for t in $TARGETS; do
  corpus="$WORK/corpus/$t"
  rm -rf "$corpus"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  if [ -d "fuzz/corpus/$t" ]; then
    cp -R "fuzz/corpus/$t/." "$corpus/"
  fi
  log="$WORK/$t.log"
  # -max_total_time bounds the run; -timeout makes a hang a failure; crashes, timeouts and
  # out-of-memory inputs are written under fuzz/artifacts/<target>/.
  "$BIN_DIR/$t" "$corpus" \
    -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 \
    -rss_limit_mb="${RSS_LIMIT_MB:-2048}" -print_final_stats=1 \
    >"$log" 2>&1
  rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
  last_line=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -1)
  stat_line="${done_line:-$last_line}"
  execs=$(grep -E '^stat::number_of_executed_units:' "$log" | tail -1 | awk '{print $2}')
  [ -z "$execs" ] && execs=$(echo "$stat_line" | sed -nE 's/^#([0-9]+).*/\1/p')
  cov=$(echo "$stat_line" | sed -nE 's/.* cov: ([0-9]+).*/\1/p')
  ft=$(echo "$stat_line" | sed -nE 's/.* ft: ([0-9]+).*/\1/p')
  crashes=0
  if [ $rc -ne 0 ] || [ -z "$done_line" ]; then
    crashes=1
    failed=1
  fi
  printf '%-22s %12s %8s %8s %8s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$crashes" | tee -a "$summary"
  if [ $crashes -ne 0 ]; then
    echo "   $t FAILED (exit $rc): log $log" >&2
    grep -E 'panicked at|^SUMMARY|deadly signal|Test unit written|ERROR: libFuzzer' "$log" | head -5 | sed 's/^/   /' >&2
  fi
done
echo
echo "== summary (${SECONDS_PER_TARGET} s per target, $(( $(date +%s) - run_started )) s of fuzzing)"
cat "$summary"
if [ $failed -ne 0 ]; then
  echo "fuzz.sh: a regression input fails or a target crashed (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: no crash"
