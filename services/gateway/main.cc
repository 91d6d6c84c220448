// ndx-gateway: NodeDrop's REST + WebSocket front door to ndx (see DESIGN.md "APIs").
#include <cstdio>

#include "libs/common/grpc_server.h"
#include "libs/common/log.h"
#include "libs/config/service_config.h"
#include "services/gateway/gateway.h"

int main() {
  ndx::common::BlockShutdownSignals();
  absl::StatusOr<ndx::config::GatewayConfig> config =
      ndx::config::LoadGatewayConfig(ndx::config::ProcessEnv());
  if (!config.ok()) {
    std::fprintf(stderr, "ndx-gateway: configuration error: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  ndx::log::Init("ndx-gateway", ndx::log::ParseLevel(config->log_level));
  ndx::gateway::Gateway gateway(*config);
  absl::StatusOr<int> port = gateway.Start();
  if (!port.ok()) {
    ndx::log::Error("cannot start", {{"error", port.status()}});
    return 1;
  }
  ndx::log::Info("listening", {{"http", config->http_address},
                               {"http_port", *port},
                               {"queue_server", config->queue_server}});
  const int sig = ndx::common::WaitForShutdownSignal();
  ndx::log::Info("shutting down", {{"signal", sig}});
  gateway.Shutdown();
  ndx::log::Info("stopped");
  return 0;
}
