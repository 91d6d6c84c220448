// File: postgres_execution_store.h
//
// PostgresExecutionStore: the ExecutionStore on PostgreSQL (schema: migrations/0001_executions.sql,
// applied by ApplyMigrations() first).
//
//   NDX_ASSIGN_OR_RETURN(auto pool, pg::PgPool::Create({.conninfo = database_url, .size = 8}));
//   NDX_RETURN_IF_ERROR(store::ApplyMigrations(*pool));
//   store::PostgresExecutionStore store(*pool);
//
// How each write maps to SQL (every statement is prepared once per connection):
//   CreateExecution    INSERT ... ON CONFLICT (id) DO NOTHING; no row inserted -> kAlreadyExists.
//   MarkEnqueueFailed  ndx_finish_execution(id, 0, 'ERROR', error, at).
//   StartAttempt       UPDATE executions SET fencing_epoch = epoch, ...; the BEFORE UPDATE trigger
//                      ndx_executions_fence raises NDX01 when epoch < the stored epoch.
//   RecordNodeRuns     INSERT INTO node_executions ... ON CONFLICT (id) DO UPDATE, id =
//                      "<execution id>:<run key>", one transaction for the batch; the trigger
//                      ndx_node_executions_fence checks the epoch against the execution row (read
//                      FOR SHARE) and raises NDX01, and refuses rows of a missing execution
//                      (23503).
//   FinishExecution    ndx_finish_execution(): the guarded RUNNING -> terminal UPDATE (fenced by
//                      the trigger), or NDX01 / 'same' / 'terminal:<status>' / 'missing'.
// Reads: GetExecution is two primary-key / execution_id index lookups; ListExecutions one index
// range scan on (created_at, id) or (<filter column>, created_at, id) in descending order,
// `(created_at, id) < cursor`, LIMIT page_size + 1.
//
// Thread-safe (the pool is).
#pragma once

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/store/execution_store.h"

namespace ndx::store {

class PostgresExecutionStore final : public ExecutionStore {
 public:
  // `pool` must outlive the store, and its database must be migrated (ApplyMigrations).
  explicit PostgresExecutionStore(pg::PgPool& pool) : pool_(pool) {}

  absl::Status CreateExecution(const NewExecution& execution) override;
  absl::Status MarkEnqueueFailed(const EnqueueFailure& failure) override;
  absl::Status StartAttempt(const AttemptStart& start) override;
  absl::Status RecordNodeRuns(absl::Span<const NodeRun> runs) override;
  absl::Status FinishExecution(const ExecutionFinish& finish) override;
  absl::StatusOr<ExecutionRecord> GetExecution(absl::string_view id, absl::string_view workspace_id,
                                               const GetOptions& options) override;
  absl::StatusOr<ExecutionPage> ListExecutions(const ListQuery& query) override;
  // Also deletes outbox op ids (ndx_outbox_applied) applied before `created_before`.
  absl::StatusOr<int64_t> Prune(absl::Time created_before, int batch_size) override;
  absl::Status DeleteExecution(absl::string_view id, absl::string_view workspace_id,
                               bool even_if_running) override;

  // For OutboxStore: applies `write` unless an op with `op_id` was applied before, recording
  // op_id in the same transaction (ndx_outbox_applied), so the op takes effect exactly once
  // however often it is delivered. Returns OK when applied now or before. A create whose row
  // already exists counts as applied (its direct write committed although the caller saw
  // kUnavailable: COMMIT's outcome was unknown). Other errors as the write's method; on any error
  // nothing is recorded.
  absl::Status ApplyOnce(absl::string_view op_id, const StoreWrite& write);

  // ApplyOnce() of several ops (op id, write), in order, in ONE transaction: OK when every op was
  // applied now or before; else the first error, and nothing of any op is recorded (the caller
  // then applies them one at a time to find the op at fault). One transaction for many ops is
  // what lets the outbox drain faster than writes arrive after an outage.
  absl::Status ApplyOnceAll(absl::Span<const std::pair<std::string, StoreWrite>> ops);

 private:
  absl::Status Write(pqxx::transaction_base& tx, const StoreWrite& write);
  absl::Status Create(pqxx::transaction_base& tx, const NewExecution& e);
  absl::Status Finish(pqxx::transaction_base& tx, const std::string& id, int64_t epoch,
                      ExecutionStatus status, const std::string& error_json, absl::Time at);
  absl::Status Start(pqxx::transaction_base& tx, const AttemptStart& s);
  absl::Status NodeRuns(pqxx::transaction_base& tx, absl::Span<const NodeRun> runs);

  pg::PgPool& pool_;
};

}  // namespace ndx::store
