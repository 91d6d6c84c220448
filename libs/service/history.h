// File: history.h
//
// History: a process's connection to the execution history in PostgreSQL (libs/store). It applies
// the schema migrations (retrying in the background while PostgreSQL is down: executions go on,
// their history waits in the Redis outbox), runs the outbox drainer, and prunes rows older than
// NDX_HISTORY_RETENTION_DAYS in small batches. Every ndx-queue and ndx-worker has one; migrations
// and draining are safe from any number of processes at once (advisory lock, drainer lock).
//
//   History history(runtime.pg(), redis_pool, {.outbox_max = 100000});
//   history.Start();
//   history.store().CreateExecution(...);   // PostgreSQL, or the outbox while it is down
//
// Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/common/redis/redis_client.h"
#include "libs/queue/redis_queue.h"
#include "libs/store/outbox_store.h"
#include "libs/store/postgres_execution_store.h"
#include "nlohmann/json.hpp"

namespace ndx::service {

class History {
 public:
  struct Options {
    int64_t outbox_max = 100000;                      // NDX_OUTBOX_MAX
    absl::Duration retention = absl::ZeroDuration();  // NDX_HISTORY_RETENTION_DAYS; 0 = keep
    absl::Duration prune_interval = absl::Minutes(10);
  };

  History(pg::PgPool& pg, redis::RedisPool& redis, Options options);
  ~History();

  // A History with its own PostgreSQL pool of `pool_size` connections to `database_url`.
  // INVALID_ARGUMENT when the URL cannot be used. `redis` must outlive the result.
  static absl::StatusOr<std::unique_ptr<History>> Create(const std::string& database_url,
                                                         int pool_size, redis::RedisPool& redis,
                                                         Options options);

  void Start();
  void Stop();

  // The store to write and read through (the outbox in front of PostgreSQL).
  store::ExecutionStore& store() { return *outbox_; }
  // Whether the schema is up to date (reads before that fall back to Redis).
  bool migrated() const { return migrated_.load(); }
  // The PostgreSQL pool (for reads of NodeDrop's own tables).
  pg::PgPool& pg() { return pg_; }

 private:
  void Run();

  std::unique_ptr<pg::PgPool> owned_pg_;  // set by Create()
  pg::PgPool& pg_;
  const Options options_;
  std::unique_ptr<store::PostgresExecutionStore> postgres_;
  std::unique_ptr<store::OutboxStore> outbox_;
  std::atomic<bool> migrated_{false};
  absl::Notification stop_;
  std::thread thread_;
};

// Whether an execution's history is kept: NodeDrop's workflow setting saveExecutionToDatabase
// (absent = true). `payload_json` is the job payload (services/queue/job_payload.h).
bool SaveToHistory(const std::string& payload_json);
// The same for a payload already parsed.
bool SaveToHistoryParsed(const nlohmann::json& payload);

// Ends in the history from Redis. One rule for every process that finds an execution ended in
// Redis but maybe not in the history: housekeeping (the ends it makes itself, and the ends left on
// the queue's unrecorded index by a process that died before its history write) and ndx-queue's
// reconciliation of RUNNING rows.

// Records the end of execution `id` from what `queue` holds: its checkpointed node runs (upserts)
// and its end (status from the job's terminal state, error from its last error, finished time),
// written without a lease epoch (the store's terminal states are final: a repeat is OK, a
// different end already recorded is left as is). OK too when there is nothing to record (the job
// is gone from Redis, or the history has no row: saveExecutionToDatabase false).
// FAILED_PRECONDITION when the job has not ended; the store's transient errors otherwise (try
// again later).
absl::Status RecordEndFromQueue(queue::RedisQueue& queue, store::ExecutionStore& store,
                                const std::string& id);

// RecordEndFromQueue for each of `ids`, then MarkRecorded (which starts their keys' completion
// TTL) for those done. Failures are logged and the ids stay on the unrecorded index, where
// RecordUnrecorded finds them again. Returns how many were recorded.
int RecordEnds(queue::RedisQueue& queue, store::ExecutionStore& store,
               const std::vector<std::string>& ids);

// Housekeeping's part: RecordEnds for the executions that have been on the queue's unrecorded
// index longer than its history_grace (their holder died before its history write, or the write
// failed), up to `limit`. Call it when this process won the housekeeping lease (Housekeep().ran),
// so that one process per interval does it.
int RecordUnrecorded(queue::RedisQueue& queue, store::ExecutionStore& store, int limit = 200);

}  // namespace ndx::service
