#!/usr/bin/env bash
# Sets up this Debian 12 machine (as root), builds ringcap and runs the whole test suite:
# every ctest label, then a sanitizer build of the tests and the fuzz targets.
# Under CI=true a test that cannot run on this machine fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure --no-tests=error -j2
# The same tests again on an AddressSanitizer/UBSan build, then every fuzz target for a bounded
# time (FUZZ_SECONDS, default 60 s each); any sanitizer report or fuzzer finding fails the run.
bash scripts/sanitize.sh
bash scripts/fuzz.sh
