// File: gateway.h
//
// Gateway: the ndx-gateway process without its main(): the HTTP server with NodeDrop's REST
// routes, Socket.IO and the plain WebSocket (RealtimeHub), the dashboard page, the channel to
// ndx-queue and the metrics registry. Tests run it in-process on port 0.
//
// Routes (README "Gateway" documents request and response bodies):
//   GET  /health, /api/health                      no auth; NodeDrop's health shape + queue block
//   GET  /metrics                                  no auth; Prometheus text
//   GET  /                                         no auth; the dashboard page (its data needs a
//                                                  token unless NDX_AUTH=none)
//   POST /api/executions                           201 {executionId, status: "started", ...}
//   POST /api/workflows/:id/execute                same, workflowId from the path
//   GET  /api/executions                           list + pagination {page, limit, total,
//                                                  totalPages}
//   GET  /api/executions/stats                     counters of the queue(s)
//   GET  /api/executions/queue/stats               {waiting, active, completed, failed, delayed,
//                                                  cancelled, timedOut, oldestWaitingAgeMs,
//                                                  queues}
//   GET  /api/executions/queue/failed              {jobs, total} + pagination {start, limit, total}
//   POST /api/executions/queue/failed/:id/retry    201 {newExecutionId}
//   GET  /api/executions/realtime/info             {websocketUrl, connectedUsers, ...}
//   GET  /api/executions/:id                       the Execution
//   GET  /api/executions/:id/progress              {executionId, status, progress, ...}
//   POST /api/executions/:id/cancel                {executionId, status, state}
//   POST /api/executions/:id/retry                 201 the new Execution (resumes completed nodes)
//   DELETE /api/executions/:id                     501: ndx-queue has no delete rpc yet
//   GET  /socket.io/?EIO=4&transport=websocket     Socket.IO v4 (see realtime.h)
//   GET  /ws                                       plain WebSocket (see realtime.h)
// Errors use NodeDrop's envelope {success: false, error: {code, message}}; gRPC codes map to HTTP
// statuses with common::HttpStatusForCode. Every route but health, metrics and "/" needs a token
// (auth.h); starting executions is rate limited per user (429 with Retry-After).
//
// Thread-safe after Start().
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"
#include "libs/config/service_config.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "services/gateway/http_server.h"

namespace ndx::gateway {

class Authenticator;
class QueueClient;
class RateLimiter;
class RealtimeHub;
struct Principal;

class Gateway {
 public:
  explicit Gateway(config::GatewayConfig config);
  // Talks to ndx-queue over `queue_channel` instead of a channel to config.queue_server (tests and
  // fuzz targets pass an in-process channel to a fake QueueService).
  Gateway(config::GatewayConfig config, std::shared_ptr<grpc::Channel> queue_channel);
  ~Gateway();

  // Starts listening; returns the bound HTTP port. UNAVAILABLE when the address is taken,
  // INVALID_ARGUMENT when DATABASE_URL does not parse.
  absl::StatusOr<int> Start();
  // Stops serving (in-flight requests are cut, WebSockets closed). Idempotent.
  void Shutdown();

  // The routing function (exposed for tests that do not need a socket).
  HttpResponse Handle(const HttpRequest& request);

  struct Route;
  struct Context;

 private:
  HttpResponse Route(const HttpRequest& request, std::string& route_name);
  HttpResponse Health();
  HttpResponse CreateExecution(const Context& c);
  HttpResponse ExecuteWorkflowById(const Context& c);
  HttpResponse ListExecutions(const Context& c);
  HttpResponse GetExecution(const Context& c);
  HttpResponse Progress(const Context& c);
  HttpResponse Cancel(const Context& c);
  HttpResponse Retry(const Context& c);
  HttpResponse Delete(const Context& c);
  HttpResponse Stats(const Context& c);
  HttpResponse QueueStats(const Context& c);
  HttpResponse Workers(const Context& c);
  HttpResponse FailedJobs(const Context& c);
  HttpResponse RetryFailedJob(const Context& c);
  HttpResponse RealtimeInfo(const Context& c);
  HttpResponse Start(const Context& c, const std::string& workflow_id);

  config::GatewayConfig config_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& started_;
  std::shared_ptr<grpc::Channel> queue_channel_;
  std::unique_ptr<QueueClient> client_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<RealtimeHub> hub_;
  std::unique_ptr<HttpServer> http_;
  absl::Status init_status_;
};

}  // namespace ndx::gateway
