#!/usr/bin/env bash
# run_fuzzer.sh FUZZER SEEDS DICT WORKDIR: what ctest runs for one fuzz target. Fuzzes for
# NDX_FUZZ_SECONDS (default 20), with the dictionary DICT (tokens the mutations insert), starting
# from the seed corpus SEEDS (never written) plus the inputs
# found by earlier runs in WORKDIR/corpus; a crash, leak, undefined behaviour, an input slower
# than NDX_FUZZ_TIMEOUT (default 30 s) or a process above 2 GiB fails, and the input is kept in
# WORKDIR/artifacts/. Every input of these targets runs in milliseconds; the timeout is generous
# because on a shared, overloaded machine a whole process can stall for seconds (5 s gave false
# timeouts on the 2-core CI machine).
set -euo pipefail
fuzzer=$1 seeds=$2 dict=$3 work=$4
mkdir -p "$work/corpus" "$work/artifacts"
exec "$fuzzer" -max_total_time="${NDX_FUZZ_SECONDS:-20}" -timeout="${NDX_FUZZ_TIMEOUT:-30}" \
  -rss_limit_mb=2048 -dict="$dict" -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$seeds"
