// File: events_bench.h
//
// `ndx-bench events`: progress events through Redis and ndx-queue's EventStream.
//   1. Append rate: EventLog::Append from 1, 2 and 4 threads (one connection each) for a few
//      seconds each, spread over 100 executions: events/s and Redis CPU per event.
//   2. Publish-to-client latency: 100 executions (real queued jobs, so that ndx-queue's locator
//      finds them), one EventStream.Subscribe per execution over gRPC (callback API, one
//      channel), then events appended at a fixed rate (open loop, producer threads) round-robin
//      over the executions; each event's data carries the CLOCK_MONOTONIC time just before its
//      Append call; latency = receipt by the client minus that. p50/p90/p99/max, lost events.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace ndx::bench {

struct EventsBenchOptions {
  std::string redis_url;
  std::string queue_target;  // ndx-queue, "127.0.0.1:port"
  int queue_pid = 0;         // for its CPU time
  std::string queue = "default";
  int executions = 100;  // = subscribers
  double rate = 10000;   // events/s, latency phase
  absl::Duration latency_time = absl::Seconds(10);
  absl::Duration append_time = absl::Seconds(3);  // per thread count
  int producers = 4;                              // latency phase: producer threads (connections)
};

// The records: {"impl": "ndx", "mode": "append", "threads", "events_per_s", ...} per thread
// count, then {"mode": "event-latency", "p50_ms", "p99_ms", ...}.
absl::StatusOr<std::vector<nlohmann::json>> RunEventsBench(const EventsBenchOptions& options);

}  // namespace ndx::bench
