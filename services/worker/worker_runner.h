// File: worker_runner.h
//
// WorkerRunner: the run loop of ndx-worker. It claims executions from the Redis queue in batches,
// runs each on one of its slots with the engine, checkpoints every node run (output, status and
// the next event in one script guarded by the lease epoch), renews the leases of what it runs,
// and records the end (completed / failed or retried / timed out / cancelled / parked for a
// durable wait) in one script.
//
// Threads: one fetcher (claims while slots are free; otherwise blocks on the queue's wake-up list
// with a timeout, so it can never sit idle while jobs are ready), `slots` runners (each with its
// own JavaScript sandbox), one lease keeper (renews every running lease, and learns within
// `watch_interval` that an execution was cancelled or its lease lost: it then cancels that run's
// token, which stops HTTP requests, JavaScript and waits), and one housekeeper (stalled recovery,
// delayed promotion and deadlines, serialized across processes by the queue's housekeeping lease).
//
// Resume everywhere: every attempt starts from the execution's checkpoints, so no completed node
// runs again after a retry, a crash, a manual retry or a durable wait.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/common/clock.h"
#include "libs/common/redis/redis_client.h"
#include "libs/common/redis/redis_coalescer.h"
#include "libs/engine/cancellation.h"
#include "libs/engine/engine.h"
#include "libs/engine/http/http_client.h"
#include "libs/queue/redis_queue.h"
#include "libs/store/execution_store.h"
#include "services/worker/worker_metrics.h"

namespace ndx::worker {

struct WorkerOptions {
  std::string worker_id;
  int slots = 5;  // EXECUTION_WORKER_CONCURRENCY
  queue::QueueOptions queue;
  absl::Duration watch_interval = absl::Milliseconds(50);  // lease renewal + cancel check
  absl::Duration wedged_after = absl::Seconds(30);  // readiness: work waits, slots free, no claim
  // A node's node-started event is sent with the report that ends the node run (one script per
  // node); the lease keeper sends it on its own once the node has run this long (checked every
  // watch_interval), so that clients see long nodes start.
  absl::Duration started_event_delay = absl::Milliseconds(20);
  size_t max_event_output_bytes = 64 << 10;  // node-completed events carry at most this
  engine::EngineOptions engine;
  WorkerMetrics* metrics = nullptr;  // optional; must outlive the runner
  // The execution history (PostgreSQL, or its Redis outbox); optional; must outlive the runner.
  // Written after Redis (the source of truth while an execution runs): a failed history write is
  // logged, except a stale epoch, which stops the run like a lost lease.
  store::ExecutionStore* store = nullptr;
};

// A snapshot for WorkerService.GetStatus.
struct WorkerSnapshot {
  struct Running {
    std::string execution_id, workflow_id, workspace_id, current_node_id, current_node_name;
    absl::Time started_at;
    absl::Time deadline = absl::InfiniteFuture();
    int attempt = 0;
    int64_t epoch = 0;
  };
  std::vector<Running> running;
  int slots_total = 0;
  int64_t processed = 0, failed = 0, retried = 0, leases_lost = 0, failed_renewals = 0;
  int consecutive_failed_renewals = 0;
  absl::Time last_claim_at = absl::InfinitePast();
  absl::Time last_renewal_at = absl::InfinitePast();
  bool draining = false;
  bool drained = false;
};

class WorkerRunner {
 public:
  // `pool` serves the short calls; `blocking` is the connection setup for the fetcher's blocking
  // waits (it gets its own connection). Both, and `clock`, must outlive the runner.
  WorkerRunner(redis::RedisPool& pool, redis::RedisOptions blocking, WorkerOptions options,
               common::Clock& clock);
  ~WorkerRunner();

  void Start();
  // Stops claiming. Running executions go on.
  void Drain();
  // Drain, wait up to `grace` for running executions to end, then stop the rest and hand them
  // back to the queue (ready again at once for another worker). Returns the ids handed back.
  std::vector<std::string> Shutdown(absl::Duration grace);

  WorkerSnapshot Snapshot() const;
  // Readiness: NOT OK when jobs wait, this worker has free slots, and it has not claimed for
  // `wedged_after` (a wedged consumer should be restarted, not look healthy).
  absl::Status CheckNotWedged();

  const WorkerOptions& options() const { return options_; }

  // One execution being run (defined in the .cc; public so the observer there can use it).
  struct Run;

 private:
  void FetchLoop();
  void SlotLoop(int index);
  void WatchLoop();
  void HousekeepLoop();
  void Execute(const queue::ClaimedJob& job, engine::JsSandbox* js);

  redis::RedisPool& pool_;
  const redis::RedisOptions blocking_options_;
  const WorkerOptions options_;
  common::Clock& clock_;
  // The slots' scripts (claims, checkpoints, events, ends) share one pipelined connection: Redis
  // reads and answers many of them per system call.
  redis::RedisCoalescer scripts_;
  queue::RedisQueue queue_;
  engine::NodeRegistry registry_;
  engine::Engine engine_;
  engine::HttpClient http_;

  mutable absl::Mutex mu_;
  std::deque<queue::ClaimedJob> ready_ ABSL_GUARDED_BY(mu_);  // claimed, not started
  absl::flat_hash_map<std::string, std::shared_ptr<Run>> running_ ABSL_GUARDED_BY(mu_);
  int busy_ ABSL_GUARDED_BY(mu_) = 0;  // ready_ + running
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  WorkerSnapshot counters_ ABSL_GUARDED_BY(mu_);

  std::vector<std::thread> threads_;
};

}  // namespace ndx::worker
