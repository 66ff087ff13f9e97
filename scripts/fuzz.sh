#!/usr/bin/env bash
# Fuzzes ringcap's parsers of untrusted input with libFuzzer (tests/fuzz): configures ./build-fuzz
# with clang, the whole project compiled with -fsanitize=fuzzer-no-link,address,undefined, builds
# the fuzz targets and runs each for FUZZ_SECONDS (default 60) on a copy of its seed corpus
# (tests/fuzz/corpus/<target>, which is never changed), after replaying its regression inputs
# (tests/fuzz/crashes/<target>). Any crash, leak, timeout, out-of-memory or sanitizer report
# fails the run (exit 1). Prints executions, exec/s and coverage per target, then
# "N passed, M failed". FUZZ_TARGETS="ring_record pcap_reader" runs only those targets.
# Logs and crashing inputs: build-fuzz/fuzz-runs/<target>.log and build-fuzz/fuzz-runs/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
ALL_TARGETS="request_json request_dbus filter_v1 destination_uri daemon_config ring_record pcap_reader s3_xml gateway_router"
TARGETS=${FUZZ_TARGETS:-$ALL_TARGETS}

command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ not found (run scripts/setup.sh)" >&2; exit 1; }

flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRINGCAP_FUZZ=ON -DBUILD_TESTING=OFF "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" >/dev/null
cmake --build "$BUILD_DIR" -j2 --target fuzzers

runs=$BUILD_DIR/fuzz-runs
rm -rf "$runs"
mkdir -p "$runs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Leaks are reported (libFuzzer checks every input that allocates more than it frees), UBSan
# stops at its first report, and reports are symbolized.
export ASAN_OPTIONS=detect_leaks=1:symbolize=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:symbolize=1
if command -v llvm-symbolizer >/dev/null; then
  export ASAN_SYMBOLIZER_PATH
  ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer)
fi

# A sanitizer or libFuzzer report in a log, whatever the exit code said.
reported() { grep -Eq '^==[0-9]+==ERROR|runtime error:|^SUMMARY: |^==[0-9]+== ERROR: libFuzzer' "$1"; }

passed=0
failed=0
for t in $TARGETS; do
  bin=$BUILD_DIR/tests/fuzz/fuzz_$t
  seeds=tests/fuzz/corpus/$t
  [ -x "$bin" ] || { echo "fuzz.sh: unknown target $t (no $bin)" >&2; exit 1; }
  [ -d "$seeds" ] || { echo "fuzz.sh: no seed corpus $seeds" >&2; exit 1; }
  corpus=$work/$t
  mkdir -p "$corpus" "$runs/$t"
  cp "$seeds"/* "$corpus"/
  nseeds=$(find "$seeds" -type f | wc -l)
  common=(-rss_limit_mb=2048 -timeout=30 -detect_leaks=1 "-artifact_prefix=$runs/$t/")
  dict=tests/fuzz/dict/$t.dict
  [ -f "$dict" ] && common+=("-dict=$dict")
  ok=true

  # Inputs that once failed (tests/fuzz/crashes/<target>/) must now pass; once they do, they
  # seed the run too (while they fail, the run goes on without them).
  mapfile -t regressions < <(find "tests/fuzz/crashes/$t" -type f 2>/dev/null | sort)
  if [ ${#regressions[@]} -gt 0 ]; then
    if "$bin" "${common[@]}" "${regressions[@]}" >"$runs/$t.regressions.log" 2>&1 &&
        ! reported "$runs/$t.regressions.log"; then
      cp "${regressions[@]}" "$corpus"/
    else
      ok=false
      echo "== $t: a regression input of tests/fuzz/crashes/$t fails:" >&2
      tail -n 60 "$runs/$t.regressions.log" >&2
    fi
  fi

  log=$runs/$t.log
  if ! "$bin" "${common[@]}" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "$corpus" \
      >"$log" 2>&1 || reported "$log"; then
    ok=false
    echo "== $t: fuzzing found a failure (log $log):" >&2
    tail -n 60 "$log" >&2
    find "$runs/$t" -type f -printf '   input saved: %p\n' >&2
  fi

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+.* cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  if $ok; then status=passed; passed=$((passed + 1)); else status=FAILED; failed=$((failed + 1)); fi
  printf '%-16s %-7s %11s execs %8s exec/s  cov %5s  features %6s  corpus %5s (%s seeds)  peak RSS %s MB\n' \
    "$t" "$status" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$nseeds" "${rss:-?}"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
