// File: queue_bench.h
//
// NdxQueueBench: the ndx side of `ndx-bench queue`. Each method is one measurement against the
// benchmark's own redis-server, and returns it as a JSON record shaped like the BullMQ peer's
// lines (peers/bullmq/bench.js): {"impl": "ndx", "mode": ..., "jobs_per_s" | "p99_ms" |
// "bytes_per_job": ..., "script_calls_per_job": ..., ...}. Every method but Process() starts with
// FLUSHALL: the server must be dedicated to the benchmark.
//
//   NdxQueueBench bench(options, payload);
//   NDX_RETURN_IF_ERROR(bench.Init());
//   NDX_ASSIGN_OR_RETURN(nlohmann::json bulk, bench.EnqueueBulk());   // leaves `jobs` waiting
//   NDX_ASSIGN_OR_RETURN(nlohmann::json drain, bench.Process());      // claims and completes them
//
// Not thread-safe (each method runs its own threads and joins them before returning).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/common/redis/redis_client.h"
#include "nlohmann/json.hpp"

namespace ndx::bench {

struct NdxBenchOptions {
  std::string redis_url;        // the benchmark's redis-server
  std::string queue = "bench";  // queue name (keys "ndx:{bench}:...")
  int64_t jobs = 100000;        // EnqueueBulk enqueues them; Process drains them
  int batch = 100;              // jobs per Enqueue call (BullMQ: per addBulk)
  int enqueue_threads = 2;      // EnqueueBulk: connections enqueuing in parallel
  int consumers = 2;            // Process, Latency: consumer threads
  int claim_batch = 100;        // Process, Latency: Claim(max) and so Complete() batch size
  int64_t grpc_jobs = 20000;    // EnqueueGrpc: requests (sequential runs use a quarter)
  double rate = 2000;           // Latency: jobs/s
  absl::Duration latency_time = absl::Seconds(10);
  int64_t memory_jobs = 20000;                   // Memory: waiting jobs
  absl::Duration memory_ttl = absl::Seconds(2);  // Memory: the state TTL of those jobs
};

class NdxQueueBench {
 public:
  // `payload` is the job's data (the same bytes the BullMQ peer stores).
  NdxQueueBench(NdxBenchOptions options, std::string payload);
  ~NdxQueueBench();

  // Parses the Redis URL and connects the control connection. Call first.
  absl::Status Init();

  // Enqueue throughput: `jobs` jobs through RedisQueue::Enqueue in batches of `batch`, from
  // `enqueue_threads` threads (one connection each). The jobs stay waiting, for Process().
  absl::StatusOr<nlohmann::json> EnqueueBulk();

  // No-op processing throughput: `consumers` threads each loop Claim(claim_batch) then
  // Complete(those jobs) until the queue is empty. Requires the jobs of EnqueueBulk().
  absl::StatusOr<nlohmann::json> Process();

  // Single-request enqueue through ndx-queue's gRPC API at `target` ("127.0.0.1:port"):
  // ExecuteWorkflow with the benchmark's workflow, `inflight` calls outstanding (1 = sequential).
  // `server_pid` (ndx-queue) is sampled for its CPU time per job; 0 = do not.
  absl::StatusOr<nlohmann::json> EnqueueGrpc(const std::string& target, int inflight, int64_t jobs,
                                             int server_pid);

  // Pickup latency: consumers block in WaitForWork while idle; one producer enqueues single jobs
  // at `rate` for `latency_time` (open loop); the time from each Enqueue call to the return of the
  // Claim that got the job, p50/p90/p99/max.
  absl::StatusOr<nlohmann::json> Latency();

  // Redis memory per waiting job (used_memory growth / jobs), then, with the state TTL set to
  // `memory_ttl`, what is left once the job keys have expired, and after one consumer pass.
  // The whole cycle runs twice and the second is the measurement: the first cycle in a fresh
  // redis-server leaves about 0.5 MB that FLUSHALL does not give back either (Redis's own
  // buffers at their high-water mark, not keys; bench/README.md "Memory after the TTL"), and
  // it is reported as first_cycle_*.
  absl::StatusOr<nlohmann::json> Memory();

  // The connection that FLUSHALLs, reads INFO, etc. (not used by the measured calls).
  redis::RedisConnection& control() { return *control_; }

 private:
  absl::StatusOr<nlohmann::json> MemoryCycle();

  const NdxBenchOptions options_;
  const std::string payload_;
  redis::RedisOptions redis_options_;
  std::unique_ptr<redis::RedisConnection> control_;
};

// The EVALSHA rate of a trivial script (`return 1`) on the server at 127.0.0.1:`port`, measured
// by redis-benchmark with 50 connections, `pipeline` commands per round trip. The ceiling of any
// script-per-job queue on this server.
absl::StatusOr<nlohmann::json> EvalshaRate(redis::RedisConnection& redis, int port, int pipeline);

}  // namespace ndx::bench
