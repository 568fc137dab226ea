#!/usr/bin/env bash
# Longer fuzzing than `cargo test` does: runs the property tests of
# tests/fuzz.rs round after round, PROPTEST_CASES cases per target per round,
# until SECONDS (default 60) have passed. Each round draws fresh random
# inputs. A failure stops the script with a non-zero exit after proptest has
# shrunk it to a minimal input, printed it, and saved its seed in
# tests/fuzz.proptest-regressions (replayed first by every later run).
#
# Usage: scripts/fuzz.sh [SECONDS]              e.g. scripts/fuzz.sh 600
#        FUZZ_CASES=5000 scripts/fuzz.sh 120    (cases per target per round; default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-60}
cases=${FUZZ_CASES:-2000}
case $budget$cases in
  '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] (FUZZ_CASES=N)" >&2; exit 2 ;;
esac

# Build first, so the time budget is spent fuzzing, not compiling. Debug build
# on purpose: overflow checks are on, so arithmetic overflow is found too.
cargo test --test tests --no-run --quiet
targets=$(cargo test --test tests --quiet -- --list fuzz:: 2>/dev/null | sed -n 's/: test$//p')
echo "fuzz targets ($(echo "$targets" | wc -l)), ${budget}s, $cases cases per target per round:"
echo "$targets" | sed 's/^/  /'

start=$(date +%s)
rounds=0
done_cases=0
last=0
while :; do
  left=$((budget - ($(date +%s) - start)))
  # Do not start a round that the last one says cannot finish in time.
  if [ "$left" -le 0 ] || { [ "$rounds" -gt 0 ] && [ "$left" -lt "$last" ]; }; then
    break
  fi
  echo "round $((rounds + 1)): PROPTEST_CASES=$cases, ${left}s left"
  round_start=$(date +%s)
  set +e
  # timeout signals the whole process group, so the test binary stops too.
  # One target at a time: the renderers' targets feed megabyte-sized texts to
  # every renderer, and two of them side by side have run a 24 GiB machine
  # out of memory.
  PROPTEST_CASES=$cases timeout -k 10 "$left" cargo test --test tests --quiet fuzz:: -- --test-threads=1
  rc=$?
  set -e
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "round $((rounds + 1)) stopped at the time limit (its cases are not counted)"
    break
  fi
  if [ "$rc" -ne 0 ]; then
    echo "fuzz: a property failed (minimal input above; seed saved in tests/fuzz.proptest-regressions)" >&2
    exit "$rc"
  fi
  rounds=$((rounds + 1))
  done_cases=$((done_cases + cases))
  last=$(($(date +%s) - round_start))
done
echo "fuzz: $rounds full round(s), $done_cases cases per target, no failure, $(($(date +%s) - start))s"
