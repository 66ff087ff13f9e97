#!/usr/bin/env bash
# The structure that keeps every check of the suite able to fail (docs/testing.md, "How a
# check is written"). Each rule below names a way a test once passed without checking:
#  1. GoogleTest skips only through RINGCAP_SKIP (tests/lib/Skip.h), which fails under CI=true;
#  2. every GoogleTest binary is registered with ringcap_gtest (SKIP_REGULAR_EXPRESSION: a
#     skipped test shows as Skipped, not Passed);
#  3. every test script takes fail/skip from tests/lib/check.sh (sourced directly or through
#     lib.sh/common.sh), none defines its own;
#  4. ringcapd's exit status is never thrown away (`wait "$RINGCAPD_PID" || true`,
#     `(void)waitForExit`);
#  5. .ci/run sets CI=true (the guards compare with "true"), and every ctest call has
#     --no-tests=error (a label that matches nothing fails).
source "$(dirname "$0")/check.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
cd "$SRC"

bad=$(grep -rn --include='*.cpp' --include='*.h' 'GTEST_SKIP' tests | grep -v '^tests/lib/Skip.h:' || true)
[ -z "$bad" ] || fail "GTEST_SKIP outside tests/lib/Skip.h (use RINGCAP_SKIP): $bad"
echo "ok: GoogleTest skips only through RINGCAP_SKIP"

bad=$(grep -rn 'gtest_discover_tests\|gtest_add_tests' tests --include=CMakeLists.txt |
  grep -v 'gtest_discover_tests(${target}' || true)
[ -z "$bad" ] || fail "a GoogleTest binary registered without ringcap_gtest: $bad"
grep -q 'SKIP_REGULAR_EXPRESSION' tests/CMakeLists.txt || fail "ringcap_gtest lost its SKIP_REGULAR_EXPRESSION"
echo "ok: every GoogleTest binary registered with ringcap_gtest"

bad=""
while IFS= read -r f; do
  case $f in tests/lib/check.sh) continue ;; esac
  grep -Eq '^[[:space:]]*(fail|skip)\(\)' "$f" && bad="$bad $f(defines fail/skip)"
  case $f in */test_*.sh)
    grep -Eq 'source .*(check\.sh|/lib\.sh|common\.sh)' "$f" || bad="$bad $f(sources no check.sh)" ;;
  esac
done < <(find tests -name node_modules -prune -o -name '*.sh' -print | sort)
[ -z "$bad" ] || fail "test scripts with their own fail/skip, or without tests/lib/check.sh:$bad"
echo "ok: every test script takes fail/skip from tests/lib/check.sh"

bad=$(grep -rnE 'wait "?\$\{?RINGCAPD_PID\}?"?[^|]*\|\| *true' tests --include='*.sh' |
  grep -v -e '# exit status: ' -e '^tests/lib/test_checks.sh:' || true)
bad+=$(grep -rn '(void)waitForExit' tests | grep -v '^tests/lib/test_checks.sh:' || true)
[ -z "$bad" ] || fail "ringcapd's exit status thrown away: $bad"
echo "ok: no thrown-away ringcapd exit status"

grep -qx 'export CI=true' .ci/run || fail ".ci/run does not set CI=true: $(grep -n CI .ci/run)"
echo "ok: .ci/run sets CI=true"
bad=$(grep -rnE '^[[:space:]]*(sudo )?ctest ' scripts .ci | grep -v -- '--no-tests=error' || true)
[ -z "$bad" ] || fail "ctest called without --no-tests=error: $bad"
echo "ok: every ctest call has --no-tests=error"
echo "PASS"
