// File: gateway.h
//
// Gateway: the ndx-gateway process without its main(): the HTTP server with its routes, the
// channel to ndx-queue and the metrics registry. Tests run it in-process on port 0.
//
// Routes so far: GET /health and /api/health (no auth; NodeDrop's health shape with a queue block),
// GET /metrics (no auth). Every other path answers 404 in NodeDrop's error envelope.
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

class Gateway {
 public:
  explicit Gateway(config::GatewayConfig config);
  ~Gateway();

  // Starts listening; returns the bound HTTP port. UNAVAILABLE when the address is taken.
  absl::StatusOr<int> Start();
  // Stops serving (in-flight requests are cut). Idempotent.
  void Shutdown();

  // The routing function (exposed for tests that do not need a socket).
  HttpResponse Handle(const HttpRequest& request);

 private:
  HttpResponse Health();

  config::GatewayConfig config_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  std::shared_ptr<grpc::Channel> queue_channel_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace ndx::gateway
