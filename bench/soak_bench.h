// File: soak_bench.h
//
// `ndx-bench soak`: the whole suite — redis-server, PostgreSQL, ndx-queue, `workers` ndx-worker
// and ndx-gateway, child processes on free ports — under a steady load for a long time, sampling
// the resident set size (VmRSS) of each process and Redis `used_memory`: flat lines mean no leak.
//
//   1. Probe: `probe_threads` gRPC clients start the 10-node light workflow (worker_bench.h, with
//      its history saved to PostgreSQL) back to back for `probe`; the maximum throughput is the
//      executions started divided by the time until all of them ended.
//   2. Soak: `fraction` of that rate (or `rate` when set), open loop, for `duration`:
//      `rest_share` of the executions through the gateway's REST route (POST /api/executions),
//      the others over gRPC, alternating; a sample every `sample_every`.
// EXECUTION_COMPLETION_TTL is `completion_ttl_s` (60 s by default) so that Redis reaches its
// steady state (finished executions expiring as fast as new ones end) within the first minutes.
//
//   SoakOptions o = ...;
//   NDX_ASSIGN_OR_RETURN(SoakResult r, RunSoak(o));
//   std::printf("%s", FormatSoak(r).c_str());
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ndx::bench {

struct SoakOptions {
  std::string queue_binary, worker_binary, gateway_binary;
  std::string log_dir;
  absl::Duration duration = absl::Minutes(10);
  absl::Duration probe = absl::Seconds(15);
  int probe_threads = 16;
  double fraction = 0.7;
  double rate = 0;  // executions/s; 0 = fraction x the probed maximum
  double rest_share = 0.25;
  absl::Duration sample_every = absl::Seconds(30);
  int workers = 2;
  int worker_slots = 32;
  int completion_ttl_s = 60;
};

struct SoakSample {
  double t_s = 0;             // since the soak phase began
  int64_t started = 0;        // executions started so far
  int64_t backlog = 0;        // waiting + active
  int64_t failed_starts = 0;  // refused or failed start calls so far
  int64_t queue_kb = 0, gateway_kb = 0, redis_kb = 0;
  std::vector<int64_t> worker_kb;  // one per worker
  int64_t redis_used_memory = 0;   // bytes, INFO memory
  int64_t redis_keys = 0;          // DBSIZE
};

struct SoakResult {
  double max_rate = 0;     // probed, executions/s
  double target_rate = 0;  // executions/s offered during the soak
  double achieved_rate = 0;
  int64_t probe_executions = 0;
  double probe_seconds = 0;
  std::vector<SoakSample> samples;
  std::string load_before, load_after;  // /proc/loadavg
};

absl::StatusOr<SoakResult> RunSoak(const SoakOptions& options);

// A Markdown table of the samples and a growth line per process (last sample minus the sample at
// the end of the warm-up, a fifth of the run).
std::string FormatSoak(const SoakResult& result);

}  // namespace ndx::bench
