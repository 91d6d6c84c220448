#include "libs/store/in_memory_execution_store.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "libs/common/pg/pg_pool.h"
#include "libs/common/status_macros.h"

namespace ndx::store {
namespace {

absl::Status StaleEpoch(const std::string& id, int64_t epoch, int64_t current) {
  absl::Status s = absl::AbortedError(absl::StrCat("stale lease epoch ", epoch, " for execution ",
                                                   id, " (current epoch ", current, ")"));
  s.SetPayload(pg::kSqlStatePayloadUrl, absl::Cord(pg::kStaleEpochSqlState));
  return s;
}

absl::Status NotFound(absl::string_view id) {
  return absl::NotFoundError(absl::StrCat("execution ", id, " not found"));
}

// (created_at, id) descending.
bool Newer(const ExecutionRecord& a, const ExecutionRecord& b) {
  return std::tie(a.created_at, a.id) > std::tie(b.created_at, b.id);
}

}  // namespace

void InMemoryExecutionStore::FailNextWrites(absl::Status error, int count) {
  absl::MutexLock lock(&mu_);
  injected_ = std::move(error);
  injected_count_ = count;
}

size_t InMemoryExecutionStore::size() const {
  absl::MutexLock lock(&mu_);
  return executions_.size();
}

absl::Status InMemoryExecutionStore::TakeInjectedFailure() {
  if (injected_count_ <= 0) return absl::OkStatus();
  --injected_count_;
  return injected_;
}

absl::Status InMemoryExecutionStore::CreateExecution(const NewExecution& e) {
  NDX_RETURN_IF_ERROR(ValidateWrite(e));
  absl::MutexLock lock(&mu_);
  NDX_RETURN_IF_ERROR(TakeInjectedFailure());
  if (executions_.count(e.id) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("execution ", e.id, " already exists"));
  }
  ExecutionRecord r;
  r.id = e.id;
  r.workflow_id = e.workflow_id;
  r.workflow_name = e.workflow_name;
  r.workspace_id = e.workspace_id;
  r.user_id = e.user_id;
  r.request_id = e.request_id;
  r.trigger_node_id = e.trigger_node_id;
  r.retry_of_execution_id = e.retry_of_execution_id;
  r.status = ExecutionStatus::kRunning;
  r.mode = e.mode;
  r.queue = e.queue;
  r.trigger_data_json = e.trigger_data_json;
  r.workflow_snapshot_json = e.workflow_snapshot_json;
  // The database keeps microseconds.
  const absl::Time t = absl::FromUnixMicros(absl::ToUnixMicros(e.created_at));
  r.created_at = r.started_at = r.queued_at = r.updated_at = t;
  executions_.emplace(e.id, std::move(r));
  return absl::OkStatus();
}

absl::Status InMemoryExecutionStore::Finish(const std::string& id, int64_t epoch,
                                            ExecutionStatus status, const std::string& error_json,
                                            absl::Time at) {
  auto it = executions_.find(id);
  if (it == executions_.end()) return NotFound(id);
  ExecutionRecord& r = it->second;
  if (epoch != kNoEpoch && epoch < r.fencing_epoch) return StaleEpoch(id, epoch, r.fencing_epoch);
  if (r.status != ExecutionStatus::kRunning) {
    if (r.status == status) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("execution ", id, " already ended as ", ToString(r.status)));
  }
  if (epoch != kNoEpoch) r.fencing_epoch = epoch;
  r.status = status;
  r.error_json = error_json;
  r.finished_at = absl::FromUnixMicros(absl::ToUnixMicros(at));
  r.updated_at = absl::Now();
  return absl::OkStatus();
}

absl::Status InMemoryExecutionStore::MarkEnqueueFailed(const EnqueueFailure& f) {
  NDX_RETURN_IF_ERROR(ValidateWrite(f));
  absl::MutexLock lock(&mu_);
  NDX_RETURN_IF_ERROR(TakeInjectedFailure());
  return Finish(f.execution_id, kNoEpoch, ExecutionStatus::kError,
                f.error_json.empty()
                    ? R"({"message":"the execution could not be enqueued","code":"ENQUEUE_FAILED"})"
                    : f.error_json,
                f.at);
}

absl::Status InMemoryExecutionStore::StartAttempt(const AttemptStart& s) {
  NDX_RETURN_IF_ERROR(ValidateWrite(s));
  absl::MutexLock lock(&mu_);
  NDX_RETURN_IF_ERROR(TakeInjectedFailure());
  auto it = executions_.find(s.execution_id);
  if (it == executions_.end()) return NotFound(s.execution_id);
  ExecutionRecord& r = it->second;
  if (s.epoch != kNoEpoch && s.epoch < r.fencing_epoch) {
    return StaleEpoch(s.execution_id, s.epoch, r.fencing_epoch);
  }
  if (s.epoch != kNoEpoch) r.fencing_epoch = s.epoch;
  r.attempts = std::max(r.attempts, s.attempt);
  if (!s.worker_id.empty()) r.worker_id = s.worker_id;
  if (r.claimed_at == kNoTime)
    r.claimed_at = absl::FromUnixMicros(absl::ToUnixMicros(s.claimed_at));
  r.updated_at = absl::Now();
  return absl::OkStatus();
}

absl::Status InMemoryExecutionStore::RecordNodeRuns(absl::Span<const NodeRun> runs) {
  if (runs.empty()) return absl::OkStatus();
  NDX_RETURN_IF_ERROR(ValidateWrite(std::vector<NodeRun>(runs.begin(), runs.end())));
  absl::MutexLock lock(&mu_);
  NDX_RETURN_IF_ERROR(TakeInjectedFailure());
  // All or none: check everything first (epochs as they would be after the earlier rows).
  std::map<std::string, int64_t> epochs;
  for (const NodeRun& n : runs) {
    auto it = executions_.find(n.execution_id);
    if (it == executions_.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("execution ", n.execution_id, " does not exist (node run ", n.run_key, ")"));
    }
    int64_t& current = epochs.emplace(n.execution_id, it->second.fencing_epoch).first->second;
    if (n.epoch == kNoEpoch) continue;
    if (n.epoch < current) return StaleEpoch(n.execution_id, n.epoch, current);
    current = n.epoch;
  }
  const absl::Time now = absl::Now();
  for (const NodeRun& n : runs) {
    ExecutionRecord& r = executions_[n.execution_id];
    if (n.epoch != kNoEpoch) r.fencing_epoch = std::max(r.fencing_epoch, n.epoch);
    auto same = [&](const NodeRunRecord& x) { return x.run.run_key == n.run_key; };
    auto it = std::find_if(r.node_runs.begin(), r.node_runs.end(), same);
    NodeRun stored = n;
    stored.started_at =
        n.started_at == kNoTime ? kNoTime : absl::FromUnixMicros(absl::ToUnixMicros(n.started_at));
    stored.finished_at = n.finished_at == kNoTime
                             ? kNoTime
                             : absl::FromUnixMicros(absl::ToUnixMicros(n.finished_at));
    if (it == r.node_runs.end()) {
      NodeRunRecord rec;
      rec.id = absl::StrCat(n.execution_id, ":", n.run_key);
      rec.run = std::move(stored);
      rec.created_at = rec.updated_at = now;
      r.node_runs.push_back(std::move(rec));
      continue;
    }
    // The upsert of PostgresExecutionStore: absent fields keep the stored value.
    NodeRun& old = it->run;
    if (stored.node_name.empty()) stored.node_name = old.node_name;
    if (stored.node_type.empty()) stored.node_type = old.node_type;
    if (stored.input_json.empty()) stored.input_json = old.input_json;
    if (stored.output_json.empty()) stored.output_json = old.output_json;
    if (old.started_at != kNoTime) stored.started_at = old.started_at;
    if (stored.finished_at == kNoTime) stored.finished_at = old.finished_at;
    old = std::move(stored);
    it->updated_at = now;
  }
  return absl::OkStatus();
}

absl::Status InMemoryExecutionStore::FinishExecution(const ExecutionFinish& f) {
  NDX_RETURN_IF_ERROR(ValidateWrite(f));
  absl::MutexLock lock(&mu_);
  NDX_RETURN_IF_ERROR(TakeInjectedFailure());
  return Finish(f.execution_id, f.epoch, f.status, f.error_json, f.finished_at);
}

absl::StatusOr<ExecutionRecord> InMemoryExecutionStore::GetExecution(absl::string_view id,
                                                                     absl::string_view workspace_id,
                                                                     const GetOptions& options) {
  if (id.empty()) return absl::InvalidArgumentError("execution id is required");
  absl::MutexLock lock(&mu_);
  auto it = executions_.find(std::string(id));
  if (it == executions_.end()) return NotFound(id);
  if (!workspace_id.empty() && it->second.workspace_id != workspace_id) return NotFound(id);
  ExecutionRecord r = it->second;
  if (!options.include_snapshot) r.workflow_snapshot_json.clear();
  if (!options.include_node_runs) {
    r.node_runs.clear();
    return r;
  }
  std::stable_sort(r.node_runs.begin(), r.node_runs.end(),
                   [](const NodeRunRecord& a, const NodeRunRecord& b) {
                     const bool a_unset = a.run.started_at == kNoTime;
                     const bool b_unset = b.run.started_at == kNoTime;
                     return std::tie(a_unset, a.run.started_at, a.created_at, a.id) <
                            std::tie(b_unset, b.run.started_at, b.created_at, b.id);
                   });
  if (!options.include_node_outputs) {
    for (NodeRunRecord& n : r.node_runs) {
      n.run.input_json.clear();
      n.run.output_json.clear();
    }
  }
  return r;
}

absl::StatusOr<ExecutionPage> InMemoryExecutionStore::ListExecutions(const ListQuery& query) {
  NDX_ASSIGN_OR_RETURN(const int page_size, EffectivePageSize(query.page_size));
  if (query.skip < 0) return absl::InvalidArgumentError("skip must not be negative");
  std::optional<PageCursor> cursor;
  if (!query.page_token.empty()) {
    NDX_ASSIGN_OR_RETURN(cursor, DecodePageToken(query));
  }
  absl::MutexLock lock(&mu_);
  std::vector<const ExecutionRecord*> matching;
  int64_t total = 0;
  for (const auto& [id, r] : executions_) {
    if (!query.workspace_id.empty() && r.workspace_id != query.workspace_id) continue;
    if (!query.workflow_id.empty() && r.workflow_id != query.workflow_id) continue;
    if (!query.statuses.empty() &&
        std::find(query.statuses.begin(), query.statuses.end(), r.status) == query.statuses.end()) {
      continue;
    }
    if (query.created_after != kNoTime && r.created_at < query.created_after) continue;
    if (query.created_before != kNoTime && r.created_at >= query.created_before) continue;
    ++total;
    if (cursor && std::tie(r.created_at, r.id) >= std::tie(cursor->created_at, cursor->id)) {
      continue;
    }
    matching.push_back(&r);
  }
  std::sort(matching.begin(), matching.end(),
            [](const ExecutionRecord* a, const ExecutionRecord* b) { return Newer(*a, *b); });
  ExecutionPage page;
  const size_t begin = std::min<size_t>(query.skip, matching.size());
  const size_t end = std::min<size_t>(begin + page_size, matching.size());
  for (size_t i = begin; i < end; ++i) {
    ExecutionRecord r = *matching[i];
    r.node_runs.clear();
    r.workflow_snapshot_json.clear();
    page.executions.push_back(std::move(r));
  }
  if (end < matching.size() && !page.executions.empty()) {
    page.next_page_token =
        EncodePageToken({page.executions.back().created_at, page.executions.back().id}, query);
  }
  if (query.count_total) page.total = total;
  return page;
}

absl::StatusOr<int64_t> InMemoryExecutionStore::Prune(absl::Time created_before, int batch_size) {
  if (batch_size < 1) return absl::InvalidArgumentError("batch_size must be at least 1");
  absl::MutexLock lock(&mu_);
  std::vector<const ExecutionRecord*> victims;
  for (const auto& [id, r] : executions_) {
    if (r.created_at < created_before && r.status != ExecutionStatus::kRunning) {
      victims.push_back(&r);
    }
  }
  std::sort(victims.begin(), victims.end(),
            [](const ExecutionRecord* a, const ExecutionRecord* b) { return Newer(*b, *a); });
  if (victims.size() > static_cast<size_t>(batch_size)) victims.resize(batch_size);
  std::vector<std::string> ids;
  for (const ExecutionRecord* r : victims) ids.push_back(r->id);
  for (const std::string& id : ids) executions_.erase(id);
  return static_cast<int64_t>(ids.size());
}

absl::Status InMemoryExecutionStore::DeleteExecution(absl::string_view id,
                                                     absl::string_view workspace_id,
                                                     bool even_if_running) {
  if (id.empty()) return absl::InvalidArgumentError("execution id is required");
  absl::MutexLock lock(&mu_);
  NDX_RETURN_IF_ERROR(TakeInjectedFailure());
  auto it = executions_.find(std::string(id));
  if (it == executions_.end() ||
      (!workspace_id.empty() && it->second.workspace_id != workspace_id)) {
    return absl::NotFoundError(absl::StrCat("execution ", id, " not found"));
  }
  if (it->second.status == ExecutionStatus::kRunning && !even_if_running) {
    return absl::FailedPreconditionError(
        absl::StrCat("execution ", id, " is still running; cancel it before deleting it"));
  }
  executions_.erase(it);
  return absl::OkStatus();
}

}  // namespace ndx::store
