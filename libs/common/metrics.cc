#include "libs/common/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "prometheus/exposer.h"
#include "prometheus/gauge.h"
#include "prometheus/text_serializer.h"

#ifndef NDX_VERSION
#define NDX_VERSION "dev"
#endif

namespace ndx::common {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::shared_ptr<prometheus::Registry> registry) {
  // civetweb wants "host:port" for IPv4 and "[::]:port" for IPv6; both pass through.
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve /metrics on ", address, ": ", e.what()));
  }
  exposer->RegisterCollectable(registry);
  const std::vector<int> ports = exposer->GetListeningPorts();
  const int port = ports.empty() ? 0 : ports.front();
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(std::move(exposer), port, std::move(registry)));
}

MetricsServer::MetricsServer(std::unique_ptr<prometheus::Exposer> exposer, int port,
                             std::shared_ptr<prometheus::Registry> registry)
    : registry_(std::move(registry)), exposer_(std::move(exposer)), port_(port) {}

MetricsServer::~MetricsServer() = default;

std::string SerializeMetrics(const prometheus::Registry& registry) {
  const prometheus::TextSerializer serializer;
  return serializer.Serialize(registry.Collect());
}

void RegisterProcessMetrics(prometheus::Registry& registry, const std::string& service) {
  prometheus::BuildGauge()
      .Name("ndx_build_info")
      .Help("Always 1; labels name the service and the ndx version")
      .Register(registry)
      .Add({{"service", service}, {"version", NDX_VERSION}})
      .Set(1);
  prometheus::BuildGauge()
      .Name("ndx_process_start_time_seconds")
      .Help("Start time of the process since the Unix epoch, in seconds")
      .Register(registry)
      .Add({})
      .Set(absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch()));
}

const char* NdxVersion() { return NDX_VERSION; }

}  // namespace ndx::common
