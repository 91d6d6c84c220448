// File: worker_server.h
//
// WorkerServer: the ndx-worker process without its main(): the service runtime (gRPC with health
// and reflection, /metrics, PostgreSQL pool, Redis/PostgreSQL probes plus the wedged-consumer
// check), the WorkerRunner and WorkerService, and the reporter that keeps this worker's entry in
// the worker registry (libs/service/worker_registry.h) fresh. Tests run it in-process on port 0.
//
// Thread-safe after Start().
#pragma once

#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "libs/common/redis/redis_client.h"
#include "libs/config/service_config.h"
#include "libs/service/history.h"
#include "libs/service/service_runtime.h"
#include "libs/service/worker_registry.h"
#include "services/worker/worker_runner.h"
#include "services/worker/worker_service.h"

namespace ndx::worker {

class WorkerServer {
 public:
  explicit WorkerServer(config::WorkerConfig config) : config_(std::move(config)) {}
  ~WorkerServer() { Shutdown(absl::ZeroDuration()); }

  // Starts serving and claiming. Redis or PostgreSQL being down is not an error here: health
  // reports NOT_SERVING until they answer. UNAVAILABLE when a listen address cannot be bound,
  // INVALID_ARGUMENT when DATABASE_URL cannot be used.
  absl::Status Start();
  // Stops claiming, lets running executions finish within `grace`, hands the rest back to the
  // queue, then stops serving. Idempotent.
  void Shutdown(absl::Duration grace);

  int grpc_port() const { return runtime_->grpc_port(); }
  int metrics_port() const { return runtime_->metrics_port(); }
  WorkerRunner& runner() { return *runner_; }

 private:
  void ReportLoop();

  config::WorkerConfig config_;
  // Declared first, destroyed last: everything below borrows its connections.
  std::unique_ptr<redis::RedisPool> pool_;
  std::unique_ptr<service::History> history_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<WorkerMetrics> metrics_;
  std::unique_ptr<WorkerRunner> runner_;
  std::unique_ptr<WorkerServiceImpl> service_;
  std::unique_ptr<service::ServiceRuntime> runtime_;
  std::unique_ptr<service::WorkerRegistry> workers_;
  absl::Notification stop_reporting_;
  std::thread reporter_;  // writes this worker's status into workers_ every kReportInterval
  bool shut_down_ = false;
};

}  // namespace ndx::worker
