// File: queue_server.h
//
// QueueServer: the ndx-queue process without its main(): the service runtime (gRPC with health and
// reflection, /metrics, PostgreSQL pool, Redis/PostgreSQL probes), the QueueService over the Redis
// queue, EventStream over the event logs, the direct-mode runner (the same run loop as ndx-worker,
// on the queue "<NDX_QUEUE>.direct", so direct executions get the same engine, checkpoints, events
// and recovery — any ndx-queue process picks them up if this one dies), and the housekeeping loop
// (stalled recovery, delayed promotion, deadlines: every process runs it, a Redis lease lets one do
// it per interval). Tests run it in-process on port 0.
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
#include "services/queue/event_stream_service.h"
#include "services/queue/queue_service.h"
#include "services/worker/worker_runner.h"

namespace ndx::queue {

class QueueServer {
 public:
  // `validator` checks workflows deeply (the engine); may be empty.
  explicit QueueServer(config::QueueConfig config, WorkflowValidator validator = nullptr);
  ~QueueServer() { Shutdown(absl::ZeroDuration()); }

  // Starts serving. Redis or PostgreSQL being down is not an error here: health reports
  // NOT_SERVING until they answer. UNAVAILABLE when a listen address cannot be bound,
  // INVALID_ARGUMENT when DATABASE_URL cannot be used.
  absl::Status Start();
  // Stops within `grace` (calls in flight finish or are cancelled). Idempotent.
  void Shutdown(absl::Duration grace);

  int grpc_port() const { return runtime_->grpc_port(); }
  int metrics_port() const { return runtime_->metrics_port(); }

 private:
  config::QueueConfig config_;
  WorkflowValidator validator_;
  // Declared first, destroyed last: everything below borrows its connections.
  std::unique_ptr<redis::RedisPool> pool_;
  std::unique_ptr<service::History> history_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<QueueMetrics> metrics_;
  std::unique_ptr<QueueServiceImpl> service_;
  std::unique_ptr<EventStreamService> events_;
  std::unique_ptr<worker::WorkerRunner> direct_;  // direct mode (use_queue=false)
  std::unique_ptr<service::ServiceRuntime> runtime_;
  absl::Notification stop_housekeeping_;
  std::thread housekeeping_;
};

}  // namespace ndx::queue
