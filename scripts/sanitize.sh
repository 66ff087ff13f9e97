#!/usr/bin/env bash
# Builds ringcap a second time with AddressSanitizer and UndefinedBehaviorSanitizer (g++,
# -DRINGCAP_SANITIZE=ON) into ./build-asan and runs the tests that exercise the parsers and
# the daemons through ctest (as root: most of them need it): labels unit, bpf, dbus,
# integration and fleet, and gateway's curl test gateway.http (not the SDK, load and browser
# tests: they add run time and reach no parser of ours that gateway.http does not). ctest gives
# the integration scripts BUILD_DIR=build-asan and the dbus tests start that build's ringcapd, so
# the daemon, ringcap-dump and ringcapctl under test are the sanitized ones too. Every process
# writes its ASan/LSan reports to $SANITIZE_LOGS (default build-asan/sanitizer-logs); any report
# there or in the tests' output fails the run, even one from a process whose exit status a test
# ignores, and so does any failed test.
# Extra arguments go to ctest (for example -R VariantTest).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=build-asan
LOGS=${SANITIZE_LOGS:-$PWD/$BUILD_DIR/sanitizer-logs}

# -Og -g1 instead of RelWithDebInfo's -O2 -g: with the sanitizers' instrumentation, -O2 takes
# twice as long to compile (the build, not the tests, was most of this script's time), and -g1
# keeps the function names and line numbers that the reports print. The BPF objects keep their
# own flags (cmake/BpfObject.cmake).
san_flags="-Og -g1 -DNDEBUG"
CC=gcc CXX=g++ cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$san_flags" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$san_flags" \
  -DRINGCAP_SANITIZE=ON >/dev/null
cmake --build "$BUILD_DIR" -j2

rm -rf "$LOGS"
mkdir -p "$LOGS"
chmod 1777 "$LOGS" # clients that the dbus tests run as other users write reports here too

# ASan and LSan reports go to $LOGS/asan.<pid> (a file appears only with a report); UBSan
# reports go to the process's stderr (below), and halt_on_error ends the process with exit code 1.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$LOGS/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$LOGS/ubsan"
# The scripts' own binary overrides would bypass BUILD_DIR.
unset RINGCAP_DUMP RINGCAPD RINGCAPCTL

rc=0
ctest --test-dir "$BUILD_DIR" --no-tests=error -L 'unit|bpf|dbus|integration|fleet|gateway' \
  -E '^gateway\.(sdk|load|dashboard.*)$' --output-on-failure -j2 "$@" || rc=$?

reports=$(find "$LOGS" -type f | sort)
if [ -n "$reports" ]; then
  echo "sanitize.sh: sanitizer reports:" >&2
  for f in $reports; do
    echo "=== $f" >&2
    cat "$f" >&2
  done
  rc=1
fi
# GCC's libubsan, linked beside libasan, ignores log_path and reports on stderr: look for
# reports in the output of every test, passed or not, that ctest kept.
last=$BUILD_DIR/Testing/Temporary/LastTest.log
if [ -f "$last" ] && grep -Eq 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$last"; then
  echo "sanitize.sh: sanitizer reports in the test output ($last):" >&2
  grep -E -B2 -A20 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$last" >&2
  rc=1
fi
if [ "$rc" -eq 0 ]; then
  echo "sanitize.sh: all tests passed, no sanitizer report"
else
  echo "sanitize.sh: FAILED (ctest exit code or sanitizer reports above)" >&2
fi
exit "$rc"
