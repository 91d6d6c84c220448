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

// Records executions that housekeeping ended (stalled too often, past their deadline, or cancelled
// after their worker vanished). Failures are logged: Redis keeps the truth meanwhile.
void RecordHousekeeping(store::ExecutionStore& store, const std::vector<std::string>& stall_failed,
                        const std::vector<std::string>& timed_out,
                        const std::vector<std::string>& cancelled);

}  // namespace ndx::service
