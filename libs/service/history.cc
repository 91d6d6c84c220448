#include "libs/service/history.h"

#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/store/migrations.h"
#include "nlohmann/json.hpp"

namespace ndx::service {

History::History(pg::PgPool& pg, redis::RedisPool& redis, Options options)
    : pg_(pg),
      options_(options),
      postgres_(std::make_unique<store::PostgresExecutionStore>(pg)),
      outbox_(std::make_unique<store::OutboxStore>(
          *postgres_, redis, store::OutboxOptions{.max_ops = options.outbox_max})) {}

History::~History() { Stop(); }

absl::StatusOr<std::unique_ptr<History>> History::Create(const std::string& database_url,
                                                         int pool_size, redis::RedisPool& redis,
                                                         Options options) {
  absl::StatusOr<std::unique_ptr<pg::PgPool>> pool =
      pg::PgPool::Create({.conninfo = database_url,
                          .size = std::max(2, pool_size),
                          .connect_timeout = absl::Seconds(2),
                          .acquire_timeout = absl::Seconds(5)});
  if (!pool.ok()) return pool.status();
  auto history = std::make_unique<History>(**pool, redis, options);
  history->owned_pg_ = *std::move(pool);
  return history;
}

void History::Start() {
  if (thread_.joinable()) return;
  // Migrate before the process serves, when PostgreSQL answers: a first request must not find the
  // tables missing (its writes would fail instead of waiting in the outbox). When PostgreSQL is
  // down, writes go to the outbox and the thread migrates once it is back.
  const absl::Status s = store::ApplyMigrations(pg_);
  if (s.ok()) {
    migrated_ = true;
  } else {
    log::Warn("history schema not migrated yet; retrying in the background", {{"error", s}});
  }
  thread_ = std::thread([this] { Run(); });
}

void History::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  outbox_->StopDrainer();
}

void History::Run() {
  // Migrate first (the drainer must not apply writes to a missing schema).
  absl::Duration backoff = absl::Milliseconds(200);
  while (!migrated_ && !stop_.HasBeenNotified()) {
    if (store::ApplyMigrations(pg_).ok()) break;  // Start() logged the first failure
    if (stop_.WaitForNotificationWithTimeout(backoff)) return;
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
  migrated_ = true;
  outbox_->StartDrainer();
  while (!stop_.WaitForNotificationWithTimeout(options_.prune_interval)) {
    if (options_.retention <= absl::ZeroDuration()) continue;
    absl::StatusOr<int64_t> pruned = store::PruneHistory(*outbox_, absl::Now(), options_.retention);
    if (pruned.ok() && *pruned > 0) log::Info("history pruned", {{"executions", *pruned}});
  }
}

bool SaveToHistory(const std::string& payload_json) {
  return SaveToHistoryParsed(
      nlohmann::json::parse(payload_json, nullptr, /*allow_exceptions=*/false));
}

bool SaveToHistoryParsed(const nlohmann::json& p) {
  if (!p.is_object()) return true;
  const auto wf = p.find("workflow");
  if (wf == p.end() || !wf->is_object()) return true;
  const auto settings = wf->find("settings");
  if (settings == wf->end() || !settings->is_object()) return true;
  const auto save = settings->find("saveExecutionToDatabase");
  return save == settings->end() || !save->is_boolean() || save->get<bool>();
}

namespace {

std::string StringAt(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

absl::Status RecordEndFromQueue(queue::RedisQueue& queue, store::ExecutionStore& store,
                                const std::string& id) {
  absl::StatusOr<queue::JobInfo> job = queue.Get(id);
  if (job.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();
  if (!job.ok()) return job.status();
  if (!queue::IsTerminal(job->state)) {
    return absl::FailedPreconditionError(absl::StrCat("execution ", id, " has not ended"));
  }
  const absl::Time finished_at = job->finished.value_or(absl::Now());
  // Node runs from the checkpoints (a holder killed between a checkpoint and its history write
  // left the run unrecorded; upserts leave recorded runs as they are), then the end.
  const nlohmann::json payload = nlohmann::json::parse(job->payload, nullptr, false);
  std::map<std::string, std::pair<std::string, std::string>> nodes;  // id -> name, type
  if (payload.is_object() && payload.contains("workflow") && payload["workflow"].is_object() &&
      payload["workflow"].contains("nodes") && payload["workflow"]["nodes"].is_array()) {
    for (const nlohmann::json& n : payload["workflow"]["nodes"]) {
      if (n.is_object()) nodes[StringAt(n, "id")] = {StringAt(n, "name"), StringAt(n, "type")};
    }
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> cps = queue.Checkpoints(id);
  if (!cps.ok()) return cps.status();
  std::vector<store::NodeRun> runs;
  for (const auto& [key, value] : *cps) {
    const nlohmann::json cp = nlohmann::json::parse(value, nullptr, false);
    if (!cp.is_object()) continue;
    const std::string status = StringAt(cp, "status");
    if (status != "completed" && status != "skipped") continue;
    store::NodeRun r;
    r.execution_id = id;
    r.run_key = key;
    r.node_id = key.substr(0, key.find_first_of("@#"));
    auto it = nodes.find(r.node_id);
    if (it != nodes.end()) std::tie(r.node_name, r.node_type) = it->second;
    r.status = status == "completed" ? store::NodeStatus::kSuccess : store::NodeStatus::kSkipped;
    if (cp.contains("output")) r.output_json = cp["output"].dump();
    r.finished_at = finished_at;
    runs.push_back(std::move(r));
  }
  if (!runs.empty()) {
    const absl::Status s = store.RecordNodeRuns(runs);
    if (store::IsTransientStoreError(s)) return s;
  }
  store::ExecutionStatus status = store::ExecutionStatus::kSuccess;
  if (job->state == queue::JobState::kFailed) status = store::ExecutionStatus::kError;
  if (job->state == queue::JobState::kTimedOut) status = store::ExecutionStatus::kTimeout;
  if (job->state == queue::JobState::kCancelled) status = store::ExecutionStatus::kCancelled;
  const absl::Status s = store.FinishExecution({.execution_id = id,
                                                .epoch = store::kNoEpoch,
                                                .status = status,
                                                .error_json = job->error_json,
                                                .finished_at = finished_at});
  return store::IsTransientStoreError(s) ? s : absl::OkStatus();
}

int RecordEnds(queue::RedisQueue& queue, store::ExecutionStore& store,
               const std::vector<std::string>& ids) {
  std::vector<std::string> done;
  for (const std::string& id : ids) {
    const absl::Status s = RecordEndFromQueue(queue, store, id);
    if (s.ok()) {
      done.push_back(id);
    } else {
      log::Warn(
          "history: could not record the end of an execution; it stays unrecorded and is "
          "tried again",
          {{"execution", id}, {"error", s}});
    }
  }
  const absl::StatusOr<int> marked = queue.MarkRecorded(done);
  if (!marked.ok()) {
    log::Warn("history: recorded ends not marked (they are recorded again later)",
              {{"error", marked.status()}});
  }
  return static_cast<int>(done.size());
}

int RecordUnrecorded(queue::RedisQueue& queue, store::ExecutionStore& store, int limit) {
  absl::StatusOr<std::vector<std::string>> ids =
      queue.Unrecorded(queue.options().history_grace, limit);
  if (!ids.ok() || ids->empty()) return 0;
  const int n = RecordEnds(queue, store, *ids);
  if (n > 0) {
    log::Info("history: recorded ends that their process had not recorded",
              {{"queue", queue.options().name}, {"executions", n}});
  }
  return n;
}

}  // namespace ndx::service
