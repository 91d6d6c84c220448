// File: in_memory_execution_store.h
//
// InMemoryExecutionStore: a fake ExecutionStore for unit tests of its callers (ndx-queue,
// ndx-worker), with the contract of PostgresExecutionStore: the same validation, fencing (stale
// epoch -> kAborted carrying SQLSTATE NDX01, so IsStaleEpoch() is true), terminal states, node
// rows keyed by (execution id, run key), ordering and page tokens. Tests can inject failures:
//
//   store::InMemoryExecutionStore store;
//   store.FailNextWrites(absl::UnavailableError("postgres down"), 2);
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "libs/store/execution_store.h"

namespace ndx::store {

class InMemoryExecutionStore final : public ExecutionStore {
 public:
  InMemoryExecutionStore() = default;

  absl::Status CreateExecution(const NewExecution& execution) override;
  absl::Status MarkEnqueueFailed(const EnqueueFailure& failure) override;
  absl::Status StartAttempt(const AttemptStart& start) override;
  absl::Status RecordNodeRuns(absl::Span<const NodeRun> runs) override;
  absl::Status FinishExecution(const ExecutionFinish& finish) override;
  absl::StatusOr<ExecutionRecord> GetExecution(absl::string_view id, absl::string_view workspace_id,
                                               const GetOptions& options) override;
  absl::StatusOr<ExecutionPage> ListExecutions(const ListQuery& query) override;
  absl::StatusOr<int64_t> Prune(absl::Time created_before, int batch_size) override;
  absl::Status DeleteExecution(absl::string_view id, absl::string_view workspace_id,
                               bool even_if_running) override;

  // The next `count` writes fail with `error` (and change nothing).
  void FailNextWrites(absl::Status error, int count);
  // Number of executions stored.
  size_t size() const;

 private:
  absl::Status TakeInjectedFailure() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Finish(const std::string& id, int64_t epoch, ExecutionStatus status,
                      const std::string& error_json, absl::Time at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, ExecutionRecord> executions_ ABSL_GUARDED_BY(mu_);
  absl::Status injected_ ABSL_GUARDED_BY(mu_);
  int injected_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ndx::store
