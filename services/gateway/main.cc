// ndx-gateway: NodeDrop's REST + WebSocket front door to ndx (see DESIGN.md "APIs").
#include <cstdio>

#include "absl/synchronization/mutex.h"
#include "libs/common/grpc_server.h"
#include "libs/common/log.h"
#include "libs/config/service_config.h"
#include "services/gateway/gateway.h"

int main() {
  // Debian's abseil is built with Mutex deadlock detection on: every lock updates a process-wide
  // lock graph (GraphCycles) under an internal spin lock, 1-2% of CPU (bench/README.md), and
  // under TSan that spin lock is invisible, so the graph's updates are reported as races.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
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
