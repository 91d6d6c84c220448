// File: outbox_store.h
//
// OutboxStore: the ExecutionStore that ndx-queue and ndx-worker use. It writes to PostgreSQL
// (PostgresExecutionStore) and, while PostgreSQL is unreachable, keeps each write in a durable,
// bounded outbox in Redis, which a drainer applies when PostgreSQL is back: in order, exactly once.
// Executions keep running while PostgreSQL is down; nothing of their history is lost.
//
//   store::PostgresExecutionStore pg_store(*pg_pool);
//   store::OutboxStore store(pg_store, redis_pool, {.max_ops = config.outbox_max});
//   store.StartDrainer();        // one background thread; any number of processes may drain
//   ...
//   NDX_RETURN_IF_ERROR(store.CreateExecution(execution));  // UNAVAILABLE when the outbox is full
//
// Redis keys (their own hash tag, so every script touches one slot; `key_prefix` changes it):
//   ndx:{outbox}:writes  LIST of ops, oldest first; each op is OutboxOpToJson() of {op id, write}
//   ndx:{outbox}:dead    LIST of ops PostgreSQL refused for good (see "Refused ops"), for people
//   ndx:{outbox}:lock    STRING, the drainer lock (SET NX PX), so one drainer works at a time
//
// Write path. A write first reads LLEN of the outbox (one Redis round trip). If the outbox is
// empty the write goes to PostgreSQL; if PostgreSQL answers kUnavailable (down, connection lost,
// no connection free in time) the write is appended to the outbox instead and the call returns OK.
// While the outbox is not empty every write is appended, even when PostgreSQL is back, so a new
// write never overtakes a queued one: e.g. ndx-queue queued CreateExecution(X) while PostgreSQL
// was down, a worker then claims X and records its nodes — those node writes queue behind the
// create, across processes, because the check is on the shared list. A write that PostgreSQL
// refuses (kAlreadyExists, kNotFound, stale epoch...) is returned as is and never queued.
//
// Bounded. Appending is one Lua script that checks the length first. CreateExecution is refused
// with kUnavailable when `max_ops` (NDX_OUTBOX_MAX) ops are waiting, so ndx-queue refuses new
// executions rather than losing history; the writes of executions already accepted (start, node
// runs, finish) may still be appended up to `hard_max_ops` (default 2 x max_ops), so a running
// execution's history is not cut short by the limit; beyond it they are refused too (the worker
// retries them as for any transient error).
//
// Exactly once. The drainer (under the lock) reads up to `drain_batch` ops from the head, and for
// each calls PostgresExecutionStore::ApplyOnce(op id, write), which inserts the op id into
// ndx_outbox_applied and applies the write in ONE transaction; only after that commit does it
// remove the op from the list, with a script that pops the head only if it is still that op. So:
//   - a crash (or lost connection) before COMMIT: nothing was applied, the op is still at the
//     head, it is applied on the next pass;
//   - a crash after COMMIT but before the pop: the op is delivered again, its op id is found in
//     ndx_outbox_applied and the write is skipped;
//   - two drainers (lock expired while one was slow): the second one's insert of the op id waits
//     for the first one's transaction and then finds it, so it skips; the compare-and-pop removes
//     the op once;
//   - order: an op is applied only after every op before it was applied (or refused), because
//     the drainer stops at the first op that fails transiently and retries it first.
// Batches. The drainer first applies the whole batch in ONE transaction
// (PostgresExecutionStore::ApplyOnceAll: each op id recorded with its write, all or nothing), then
// pops the ops one by one as above; only when that transaction fails does it go op by op, which
// dead-letters a refused op or stops at a transient failure. One transaction per op drained about
// 75 ops/s on the loaded test machine (debug build), less than the writes of ~15 executions/s:
// after a PostgreSQL outage under such load the outbox, which takes every write while it is not
// empty, never emptied (ndx-bench chaos).
// In addition every write is idempotent (upserts, guarded transitions, create-if-absent), which
// covers the one case the op id cannot: a direct write whose COMMIT outcome was unknown
// (kUnavailable while committing) and that was then queued as well.
//
// Refused ops. An op that PostgreSQL refuses for good when drained — a stale lease epoch (the
// writer had lost its lease; its write would have been rejected had PostgreSQL been up), an
// execution that ended differently, a missing execution, an unparsable op — is moved to the dead
// list and logged; draining goes on. Transient failures (kUnavailable, kDeadlineExceeded,
// kAborted other than a stale epoch, kInternal, kUnknown) stop the pass; the op is retried.
// Note that an OK from a write that went to the outbox means "accepted", not "checked": a stale
// epoch is only detected when the op is drained.
//
// Reads (GetExecution, ListExecutions) go to PostgreSQL only: while ops are queued they do not
// show yet (the caller merges live Redis state for running executions anyway). Prune goes to
// PostgreSQL directly; so does DeleteExecution, but only when no write is queued (kUnavailable
// otherwise: a queued write of the deleted execution would fail when replayed).
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/common/redis/redis_client.h"
#include "libs/store/execution_store.h"
#include "libs/store/postgres_execution_store.h"
#include "libs/store/store_write_json.h"

namespace ndx::store {

struct OutboxOptions {
  // Prefix of the outbox's Redis keys; keep a hash tag in it.
  std::string key_prefix = "ndx:{outbox}:";
  // NDX_OUTBOX_MAX: CreateExecution is refused (kUnavailable) when this many ops are queued.
  int64_t max_ops = 100000;
  // Other writes are refused beyond this many; 0 = 2 * max_ops.
  int64_t hard_max_ops = 0;
  // Ops read per drain pass.
  int drain_batch = 200;
  // How long the drainer sleeps when the outbox is empty or PostgreSQL is still down.
  absl::Duration poll_interval = absl::Milliseconds(250);
  // Timeout to get a Redis connection from the pool.
  absl::Duration redis_acquire_timeout = absl::Seconds(1);
  // Expiry of the drainer lock (a crashed drainer's lock lapses after it).
  absl::Duration lock_ttl = absl::Seconds(30);
};

class OutboxStore final : public ExecutionStore {
 public:
  // `postgres` and `redis` must outlive the store.
  OutboxStore(PostgresExecutionStore& postgres, redis::RedisPool& redis, OutboxOptions options);
  // Stops the drainer (StopDrainer()).
  ~OutboxStore() override;
  OutboxStore(const OutboxStore&) = delete;
  OutboxStore& operator=(const OutboxStore&) = delete;

  // Writes: as ExecutionStore (the errors of PostgresExecutionStore, which are returned when the
  // write went to PostgreSQL), plus: kUnavailable when PostgreSQL is down and the outbox is full,
  // or when Redis cannot be reached (the write happened nowhere).
  absl::Status CreateExecution(const NewExecution& execution) override;
  absl::Status MarkEnqueueFailed(const EnqueueFailure& failure) override;
  absl::Status StartAttempt(const AttemptStart& start) override;
  absl::Status RecordNodeRuns(absl::Span<const NodeRun> runs) override;
  absl::Status FinishExecution(const ExecutionFinish& finish) override;
  // Reads: PostgreSQL only (see the file comment).
  absl::StatusOr<ExecutionRecord> GetExecution(absl::string_view id, absl::string_view workspace_id,
                                               const GetOptions& options) override;
  absl::StatusOr<ExecutionPage> ListExecutions(const ListQuery& query) override;
  absl::StatusOr<int64_t> Prune(absl::Time created_before, int batch_size) override;
  absl::Status DeleteExecution(absl::string_view id, absl::string_view workspace_id,
                               bool even_if_running) override;

  // Starts the drainer thread (once). It calls DrainOnce() until the outbox is empty, then polls
  // every poll_interval.
  void StartDrainer();
  // Stops and joins the drainer thread; a pass in progress finishes its current op first.
  void StopDrainer();

  // One drain pass (what the thread runs): applies up to drain_batch ops from the head. Returns
  // how many ops were taken off the outbox (applied, found applied before, or dead-lettered); 0
  // when the outbox is empty or another drainer holds the lock. Errors: the transient PostgreSQL
  // error that stopped the pass before any op was taken, or Redis errors.
  absl::StatusOr<int> DrainOnce();

  // Ops waiting in the outbox / in the dead list.
  absl::StatusOr<int64_t> Pending();
  absl::StatusOr<int64_t> DeadLetters();

  const std::string& writes_key() const { return writes_key_; }
  const std::string& dead_key() const { return dead_key_; }

 private:
  absl::Status Write(const StoreWrite& write, bool is_create);
  absl::Status Append(redis::RedisConnection& redis, const StoreWrite& write, bool is_create);

  PostgresExecutionStore& postgres_;
  redis::RedisPool& redis_;
  const OutboxOptions options_;
  const std::string writes_key_;
  const std::string dead_key_;
  const std::string lock_key_;

  absl::Mutex thread_mu_;
  std::unique_ptr<std::thread> drainer_ ABSL_GUARDED_BY(thread_mu_);
  std::unique_ptr<absl::Notification> stop_ ABSL_GUARDED_BY(thread_mu_);
};

}  // namespace ndx::store
