#include "services/queue/queue_server.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "libs/common/status_macros.h"
#include "libs/nodedrop/workflow_json.h"
#include "libs/service/queue_options.h"
#include "libs/store/workflow_reader.h"

namespace ndx::queue {

QueueServer::QueueServer(config::QueueConfig config, WorkflowValidator validator)
    : config_(std::move(config)), validator_(std::move(validator)) {}

absl::Status QueueServer::Start() {
  pool_ = std::make_unique<redis::RedisPool>(config_.common.redis, 16 + config_.direct_slots);
  QueueServiceImpl::Options options;
  options.queue = service::MakeQueueOptions(config_.common, config_.housekeeping_interval);
  options.default_mode = config_.default_execution_mode;
  options.validator = validator_;
  registry_ = std::make_shared<prometheus::Registry>();
  metrics_ = std::make_unique<QueueMetrics>(*registry_);
  options.metrics = metrics_.get();
  // The execution history: migrations at start (retried while PostgreSQL is down), outbox drainer,
  // retention.
  absl::StatusOr<std::unique_ptr<service::History>> history = service::History::Create(
      config_.common.database_url, 8, *pool_,
      service::History::Options{
          .outbox_max = config_.common.outbox_max,
          .retention = absl::Hours(24) * config_.common.history_retention_days});
  if (!history.ok()) return history.status();
  history_ = *std::move(history);
  history_->Start();
  options.store = &history_->store();
  options.workflow_loader = [this](const std::string& id,
                                   const std::string& workspace) -> absl::StatusOr<v1::Workflow> {
    NDX_ASSIGN_OR_RETURN(nlohmann::json doc,
                         store::LoadNodeDropWorkflow(history_->pg(), id, workspace));
    return nodedrop::WorkflowFromNodeDropJson(doc, id);
  };
  if (config_.direct_slots > 0) {
    options.direct_queue = absl::StrCat(config_.common.queue, kDirectQueueSuffix);
  }
  const std::string direct_queue = options.direct_queue;
  const absl::Duration follow_up = options.queue.housekeeping_follow_up;
  service_ = std::make_unique<QueueServiceImpl>(*pool_, std::move(options), common::RealClock());
  events_ = std::make_unique<EventStreamService>(
      *pool_, config_.common.redis,
      EventStreamService::Options{.default_queue = config_.common.queue},
      [this](const std::string& id, const std::string& workspace) {
        return service_->Locate(id, workspace);
      });
  NDX_ASSIGN_OR_RETURN(runtime_,
                       service::ServiceRuntime::Start(
                           {.name = "ndx-queue",
                            .grpc_address = config_.grpc_address,
                            .metrics_address = config_.metrics_address,
                            .redis = config_.common.redis,
                            .database_url = config_.common.database_url,
                            .services = {{service_.get(), v1::QueueService::service_full_name()},
                                         {events_.get(), v1::EventStream::service_full_name()}}},
                           registry_));
  char host[128] = {};
  ::gethostname(host, sizeof(host) - 1);
  const std::string owner = absl::StrCat("ndx-queue@", host, ":", ::getpid());
  if (!direct_queue.empty()) {
    worker::WorkerOptions w;
    w.worker_id = absl::StrCat(owner, "/direct");
    w.slots = config_.direct_slots;
    w.queue = service::MakeQueueOptions(config_.common, config_.housekeeping_interval);
    w.queue.name = direct_queue;
    w.store = &history_->store();
    direct_ = std::make_unique<worker::WorkerRunner>(*pool_, config_.common.redis, std::move(w),
                                                     common::RealClock());
    direct_->Start();
  }
  housekeeping_ = std::thread([this, owner, follow_up] {
    // History reconciliation every ~5 s (it reads PostgreSQL's RUNNING rows).
    const int reconcile_every =
        std::max<int>(1, static_cast<int>(absl::Seconds(5) / config_.housekeeping_interval));
    int ticks = 0;
    while (!stop_housekeeping_.WaitForNotificationWithTimeout(config_.housekeeping_interval)) {
      // A backlog (a run stopped at its batch) goes in short runs `follow_up` apart, for up to
      // one more interval; then the tick's other work comes round again.
      bool more = service_->Housekeep(owner);
      const absl::Time until = absl::Now() + config_.housekeeping_interval;
      while (more && absl::Now() < until &&
             !stop_housekeeping_.WaitForNotificationWithTimeout(follow_up)) {
        more = service_->Housekeep(owner);
      }
      service_->RefreshGauges();
      if (++ticks % reconcile_every == 0) service_->ReconcileHistory();
      metrics_->SetSubscribers(events_->subscriptions());
    }
  });
  return absl::OkStatus();
}

void QueueServer::Shutdown(absl::Duration grace) {
  // Start may have failed half-way (a busy port): stop whatever it had started.
  if (!stop_housekeeping_.HasBeenNotified()) stop_housekeeping_.Notify();
  if (housekeeping_.joinable()) housekeeping_.join();
  if (direct_ != nullptr) direct_->Shutdown(grace);
  if (history_ != nullptr) history_->Stop();
  if (runtime_ != nullptr) runtime_->Shutdown(grace);
}

}  // namespace ndx::queue
