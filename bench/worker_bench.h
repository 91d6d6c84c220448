// File: worker_bench.h
//
// `ndx-bench worker` (and its alias `ndx-bench scale`): executions per second of a 10-node
// workflow run end to end by real ndx-worker processes (claim, start event, per-node checkpoint +
// node-started / node-completed events, completion), against the BullMQ peer doing the equivalent
// work (peers/bullmq/bench.js `worker` mode: a job whose processor runs 10 steps, each publishing a
// started event, persisting its output and publishing a completed event) on the same redis-server
// in the same run; with 1, 2 and 4 worker processes.
//
//   NdxWorkerBench bench(options);
//   NDX_RETURN_IF_ERROR(bench.Init());
//   NDX_ASSIGN_OR_RETURN(nlohmann::json r, bench.Run(/*procs=*/2, /*slots=*/8));
//
// Each Run: FLUSHALL, pre-fill `executions` jobs (RedisQueue::Enqueue, batches of 100), start the
// processes, poll Stats until nothing waits or runs, stop the processes. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "libs/common/redis/redis_client.h"
#include "ndx/v1/queue_service.pb.h"
#include "nlohmann/json.hpp"

namespace ndx::bench {

struct WorkerBenchOptions {
  std::string redis_url;
  std::string worker_binary;  // ndx-worker
  std::string log_dir;        // one log per worker process
  std::string queue = "wbench";
  int64_t executions = 10000;
  absl::Duration timeout = absl::Minutes(2);  // per Run
};

// The ExecuteWorkflow request of that workflow (inline, queue mode, workspace "ws-bench",
// saveExecutionToDatabase false), and the job payload ndx builds from it.
v1::ExecuteWorkflowRequest LightWorkflowRequest(const std::string& queue);

// The job payload of the benchmark's workflow (10 nodes: manual-trigger, set, ifElse, set, set,
// merge, noop, set, ifElse, noop; only fast-path expressions; saveExecutionToDatabase false).
absl::StatusOr<std::string> LightWorkflowPayload(const std::string& queue);

class NdxWorkerBench {
 public:
  explicit NdxWorkerBench(WorkerBenchOptions options);
  ~NdxWorkerBench();

  absl::Status Init();

  // {"impl": "ndx", "mode": "worker", "procs", "concurrency", "executions", "completed",
  //  "failed", "seconds", "exec_per_s", "startup_s", "redis_cpu_us_per_exec",
  //  "client_cpu_us_per_exec" (the worker processes), "redis_commands_per_exec", ...}
  absl::StatusOr<nlohmann::json> Run(int procs, int slots);

  redis::RedisConnection& control() { return *control_; }

 private:
  const WorkerBenchOptions options_;
  std::string payload_;
  redis::RedisOptions redis_options_;
  std::unique_ptr<redis::RedisConnection> control_;
  std::unique_ptr<redis::RedisPool> pool_;
  int runs_ = 0;
};

}  // namespace ndx::bench
