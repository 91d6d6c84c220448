// File: metrics.h
//
// Prometheus plumbing shared by every process: a /metrics endpoint on its own port (queue, worker)
// and a text serializer for processes that serve /metrics from their own HTTP server (gateway).
// Metric families themselves live in one struct per service (STYLE.md rule 19), built on an
// injected prometheus::Registry.
//
//   auto registry = std::make_shared<prometheus::Registry>();
//   ProcessMetrics process(*registry, "ndx-worker");
//   NDX_ASSIGN_OR_RETURN(auto server, MetricsServer::Start("0.0.0.0:9452", registry));
//   server->port();  // the bound port (useful with ":0")
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}

namespace ndx::common {

// Serves GET /metrics for one registry. Thread-safe (prometheus-cpp's Exposer).
class MetricsServer {
 public:
  // Listens on `address` ("host:port", port 0 = any). UNAVAILABLE when it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Registry> registry);
  ~MetricsServer();

  int port() const { return port_; }

 private:
  MetricsServer(std::unique_ptr<prometheus::Exposer> exposer, int port,
                std::shared_ptr<prometheus::Registry> registry);
  // The exposer holds only a weak reference to the registry: keep it alive here.
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_;
};

// The registry's metrics in the Prometheus text format (version 0.0.4).
std::string SerializeMetrics(const prometheus::Registry& registry);

// Metrics that every ndx process exports: ndx_build_info{service,version} 1 and
// ndx_process_start_time_seconds.
void RegisterProcessMetrics(prometheus::Registry& registry, const std::string& service);

// The version string of this build (from the CMake project version).
const char* NdxVersion();

}  // namespace ndx::common
