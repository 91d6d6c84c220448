#!/usr/bin/env bash
# run_sanitized.sh KIND TEST_BINARY [ARGS...]: runs one test binary of a sanitizer build (ctest
# calls it: cmake/ndx_helpers.cmake, NDX_SANITIZE) and fails when any process reported an error.
#
# KIND is the NDX_SANITIZE value (address,undefined or thread). Integration tests start ndx-queue,
# ndx-worker and ndx-gateway, which are sanitized too; their stderr goes to log files the test
# may never read, and a report from a child killed later by the test (SIGTERM, SIGKILL) would not
# change the test's exit status. So every process (the test and all its descendants inherit the
# *SAN_OPTIONS below) writes its reports to <report dir>/report.<pid>, and this script fails the
# test if any such file is not empty, printing them. Uninstrumented children (redis-server,
# postgres, node, chromium) ignore the variables.
#
# Suppressions (tests/sanitizers/*.supp) cover third-party, uninstrumented code only; each entry
# says why. A report in ndx code is a bug to fix, not to suppress.
set -uo pipefail

kind=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
reports=$(mktemp -d "${TMPDIR:-/tmp}/ndx-san-$(basename "$1")-XXXXXX")

common="log_path=$reports/report:print_suppressions=0"
case "$kind" in
  *address* | *undefined*)
    # detect_leaks: LSan at the exit of every process that exits normally (SIGTERM included).
    # GCC links UBSan as a runtime of its own (libubsan) beside libasan, and libubsan writes its
    # reports to stderr whatever log_path says (its copy of log_path lands in libasan through
    # symbol interposition; that is also why both variables carry the same log_path). So a UBSan
    # error (fatal: -fno-sanitize-recover) aborts (abort_on_error), and ASan reports that abort
    # (handle_abort) into the report file, with the stack of the __ubsan_handle_* call; the
    # UBSan message itself is on the process's stderr. handle_abort also turns any other abort
    # (a failed NDX_CHECK, std::terminate) into a report, which is a test failure anyway.
    export ASAN_OPTIONS="$common:halt_on_error=1:handle_abort=1:detect_leaks=1:detect_stack_use_after_return=0:suppressions=$here/asan.supp${NDX_ASAN_OPTIONS:+:$NDX_ASAN_OPTIONS}"
    export LSAN_OPTIONS="$common:suppressions=$here/lsan.supp${NDX_LSAN_OPTIONS:+:$NDX_LSAN_OPTIONS}"
    export UBSAN_OPTIONS="$common:halt_on_error=1:abort_on_error=1:print_stacktrace=1:suppressions=$here/ubsan.supp${NDX_UBSAN_OPTIONS:+:$NDX_UBSAN_OPTIONS}"
    ;;
  thread)
    # Reports are written when a race is seen, so a child that is SIGKILLed later still leaves
    # its file; halt_on_error=0 lets one run show every race instead of the first.
    export TSAN_OPTIONS="$common:halt_on_error=0:second_deadlock_stack=1:suppressions=$here/tsan.supp${NDX_TSAN_OPTIONS:+:$NDX_TSAN_OPTIONS}"
    ;;
  *)
    echo "run_sanitized.sh: unknown sanitizer kind '$kind'" >&2
    exit 2
    ;;
esac

# Sanitized code runs 2-5x slower: tests scale their upper bounds on elapsed time
# (tests/testing/time_scale.h).
export NDX_TEST_TIME_SCALE=${NDX_TEST_TIME_SCALE:-3}

# ctest's timeout kills this script; pass the signal on so the test binary (and, through
# PR_SET_PDEATHSIG, its children) goes too.
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
wait "$child"
rc=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
trap - TERM INT

found=0
for f in "$reports"/report.*; do
  [ -s "$f" ] || continue
  found=1
  echo "===== sanitizer report: $f" >&2
  cat "$f" >&2
done
if [ $found -ne 0 ]; then
  echo "run_sanitized.sh: sanitizer reports above (kept in $reports); failing the test" >&2
  [ $rc -ne 0 ] || rc=1
else
  rm -rf "$reports"
fi
exit $rc
