// File: queue_server.h
//
// QueueServer: the ndx-queue process without its main(): the service runtime (gRPC with health and
// reflection, /metrics, PostgreSQL pool, Redis/PostgreSQL probes). Tests run it in-process on
// port 0. QueueService and EventStream are registered here as they are built.
//
// Thread-safe after Start().
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "libs/config/service_config.h"
#include "libs/service/service_runtime.h"

namespace ndx::queue {

class QueueServer {
 public:
  explicit QueueServer(config::QueueConfig config) : config_(std::move(config)) {}
  ~QueueServer() { Shutdown(absl::ZeroDuration()); }

  // Starts serving. Redis or PostgreSQL being down is not an error here: health reports
  // NOT_SERVING until they answer. UNAVAILABLE when a listen address cannot be bound,
  // INVALID_ARGUMENT when DATABASE_URL cannot be used.
  absl::Status Start();
  // Stops within `grace` (calls in flight finish or are cancelled). Idempotent.
  void Shutdown(absl::Duration grace) {
    if (runtime_ != nullptr) runtime_->Shutdown(grace);
  }

  int grpc_port() const { return runtime_->grpc_port(); }
  int metrics_port() const { return runtime_->metrics_port(); }

 private:
  config::QueueConfig config_;
  std::unique_ptr<service::ServiceRuntime> runtime_;
};

}  // namespace ndx::queue
