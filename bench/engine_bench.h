// File: engine_bench.h
//
// `ndx-bench engine`: the engine alone, in process, on one thread (the calling one), with a no-op
// ExecutionObserver (no Redis, no events):
//   1. executions/s of a 10-node workflow mixing set, ifElse, merge, code (JavaScript) and
//      `{{ }}` expressions (fast-path and JavaScript), per wall second and per CPU-second of the
//      thread (= per core);
//   2. expression evaluations/s: a Code node makes `items` items, then a Set node evaluates one
//      expression per item; the Set node's own duration (as reported to the observer) divided by
//      the items: `{{ $json.a + $json.b }}` (JavaScript), `{{ $json.a.b }}` (fast path), and a
//      literal value (the Set node's own per-item cost, for scale).
// InitJsEngine() must have been called.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace ndx::bench {

struct EngineBenchOptions {
  absl::Duration time = absl::Seconds(5);  // per measurement
  int items = 1000;                        // expression phase: items per Set node run
};

absl::StatusOr<std::vector<nlohmann::json>> RunEngineBench(const EngineBenchOptions& options);

}  // namespace ndx::bench
