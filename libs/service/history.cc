#include "libs/service/history.h"

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

void RecordHousekeeping(store::ExecutionStore& store, const std::vector<std::string>& stall_failed,
                        const std::vector<std::string>& timed_out,
                        const std::vector<std::string>& cancelled) {
  const absl::Time now = absl::Now();
  auto finish = [&](const std::string& id, store::ExecutionStatus status, const char* error) {
    const absl::Status s = store.FinishExecution({.execution_id = id,
                                                  .epoch = store::kNoEpoch,
                                                  .status = status,
                                                  .error_json = error,
                                                  .finished_at = now});
    if (!s.ok() && s.code() != absl::StatusCode::kNotFound) {
      log::Warn("history: could not record the end of an execution",
                {{"execution", id}, {"error", s}});
    }
  };
  for (const std::string& id : stall_failed) {
    finish(
        id, store::ExecutionStatus::kError,
        R"json({"message":"the execution stalled too often (its workers stopped)","code":"STALLED"})json");
  }
  for (const std::string& id : timed_out) {
    finish(
        id, store::ExecutionStatus::kTimeout,
        R"json({"message":"the execution exceeded its timeout","code":"EXECUTION_TIMEOUT"})json");
  }
  for (const std::string& id : cancelled) finish(id, store::ExecutionStatus::kCancelled, "");
}

}  // namespace ndx::service
