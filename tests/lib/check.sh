# How every test script of ringcap checks things (bash; docs/testing.md, "How a check is
# written"). Source it; tests/integration/lib.sh does, and so does every script that does not
# use lib.sh. A check compares a value with what is expected and fails otherwise: nothing is
# only printed, every exit code is compared, and a skip is a failure under CI=true.

set -euo pipefail

SKIP=77

# True when the run is CI's: .ci/run sets CI=true, and only "true" counts.
running_in_ci() { [ "${CI:-}" = "true" ]; }

# Fails the test. A script may define on_fail (called first, once) to print what helps, such
# as the last lines of a daemon's log.
fail() {
  echo "FAIL: $*" >&2
  if [ -z "${CHECK_IN_ON_FAIL:-}" ] && declare -F on_fail >/dev/null; then
    CHECK_IN_ON_FAIL=1
    on_fail >&2 || true
  fi
  exit 1
}

# Skips (exit 77) when the machine cannot run the test; under CI=true a skip is a failure.
skip() {
  if running_in_ci; then
    echo "FAIL (would skip, but CI=true): $*" >&2
    exit 1
  fi
  echo "SKIP: $*" >&2
  exit $SKIP
}

# expect_eq GOT WANT WHAT
expect_eq() {
  [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
  echo "ok: $3 = $2"
}

# expect_rc WANT WHAT COMMAND...: runs COMMAND and fails unless its exit code is WANT. Its
# standard output and error are kept in $RC_OUT and $RC_ERR for the checks that follow.
RC_OUT="" RC_ERR=""
expect_rc() {
  local want=$1 what=$2 rc=0 err
  shift 2
  err=$(mktemp)
  RC_OUT=$("$@" 2>"$err") || rc=$?
  RC_ERR=$(cat "$err")
  rm -f "$err"
  [ "$rc" -eq "$want" ] ||
    fail "$what: exit code $rc, expected $want ($1): ${RC_ERR:-$RC_OUT}"
  echo "ok: $what: exit code $rc"
}

# expect_grep FIXED-STRING TEXT WHAT: TEXT must contain FIXED-STRING.
expect_grep() {
  grep -qF -- "$1" <<<"$2" || fail "$3: does not say '$1': $2"
  echo "ok: $3: says '$1'"
}

# The lines of a sanitizer report (UBSan, ASan, LSan) a process may print on stderr.
SANITIZER_PATTERN='runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|LeakSanitizer|SUMMARY: (Address|Undefined|Leak)Sanitizer'

# sanitizer_lines FILE: prints the sanitizer report lines of FILE (nothing when it is clean).
sanitizer_lines() { grep -E "$SANITIZER_PATTERN" "$1" 2>/dev/null || true; }
