#include "services/worker/worker_server.h"

#include "libs/common/log.h"
#include "libs/common/status_macros.h"
#include "libs/service/queue_options.h"

namespace ndx::worker {

absl::Status WorkerServer::Start() {
  pool_ = std::make_unique<redis::RedisPool>(config_.common.redis, config_.concurrency + 4);
  WorkerOptions options;
  options.worker_id = config_.worker_id;
  options.slots = config_.concurrency;
  options.queue = service::MakeQueueOptions(config_.common, config_.housekeeping_interval);
  options.engine.max_inline_wait = config_.inline_wait;
  registry_ = std::make_shared<prometheus::Registry>();
  metrics_ = std::make_unique<WorkerMetrics>(*registry_);
  metrics_->SetSlots(0, config_.concurrency);
  options.metrics = metrics_.get();
  absl::StatusOr<std::unique_ptr<service::History>> history = service::History::Create(
      config_.common.database_url, config_.concurrency, *pool_,
      service::History::Options{
          .outbox_max = config_.common.outbox_max,
          .retention = absl::Hours(24) * config_.common.history_retention_days});
  if (!history.ok()) return history.status();
  history_ = *std::move(history);
  history_->Start();
  options.store = &history_->store();
  runner_ =
      std::make_unique<WorkerRunner>(*pool_, config_.common.redis, options, common::RealClock());
  service_ = std::make_unique<WorkerServiceImpl>(*runner_, config_.common.queue);
  WorkerRunner* runner = runner_.get();
  NDX_ASSIGN_OR_RETURN(
      runtime_, service::ServiceRuntime::Start(
                    {.name = "ndx-worker",
                     .grpc_address = config_.grpc_address,
                     .metrics_address = config_.metrics_address,
                     .redis = config_.common.redis,
                     .database_url = config_.common.database_url,
                     .services = {{service_.get(), v1::WorkerService::service_full_name()}},
                     .extra_probes = {{"consumer", [runner] { return runner->CheckNotWedged(); }}}},
                    registry_));
  runner_->Start();
  workers_ = std::make_unique<service::WorkerRegistry>(*pool_);
  reporter_ = std::thread([this] { ReportLoop(); });
  return absl::OkStatus();
}

void WorkerServer::ReportLoop() {
  bool reported = true;  // log only when reporting starts or stops working
  do {
    v1::WorkerStatus status;
    service_->FillStatus(status);
    const absl::Status s = workers_->Report(std::move(status), absl::Now());
    if (s.ok() != reported) {
      reported = s.ok();
      if (reported) {
        log::Info("worker registry: reporting again");
      } else {
        log::Warn("worker registry: cannot report this worker's status", {{"error", s}});
      }
    }
  } while (
      !stop_reporting_.WaitForNotificationWithTimeout(service::WorkerRegistry::kReportInterval));
}

void WorkerServer::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  // Start may have failed half-way (a busy port): stop whatever it had started. The runner only
  // runs once the runtime is up.
  std::vector<std::string> released;
  if (runtime_ != nullptr) released = runner_->Shutdown(grace);
  if (reporter_.joinable()) {
    stop_reporting_.Notify();
    reporter_.join();
    if (absl::Status s = workers_->Remove(config_.worker_id); !s.ok()) {
      log::Warn("worker registry: could not remove this worker's entry (it expires)",
                {{"error", s}});
    }
  }
  if (history_ != nullptr) history_->Stop();
  if (!released.empty()) {
    log::Info("handed executions back to the queue", {{"count", released.size()}});
  }
  if (runtime_ != nullptr) runtime_->Shutdown(absl::Seconds(1));
}

}  // namespace ndx::worker
