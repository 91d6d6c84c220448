// ndx-queue: QueueService + EventStream over gRPC (see DESIGN.md "Processes").
#include <algorithm>
#include <cstdio>

#include "absl/synchronization/mutex.h"
#include "libs/common/grpc_server.h"
#include "libs/common/log.h"
#include "libs/common/redis/redis_url.h"
#include "libs/config/service_config.h"
#include "libs/engine/http/http_client.h"
#include "libs/engine/js/js_sandbox.h"
#include "libs/engine/node_type.h"
#include "libs/engine/nodes/builtin_nodes.h"
#include "libs/engine/workflow.h"
#include "nlohmann/json.hpp"
#include "services/queue/queue_server.h"

int main() {
  // Debian's abseil is built with Mutex deadlock detection on: every lock updates a process-wide
  // lock graph (GraphCycles) under an internal spin lock, 1-2% of CPU (bench/README.md), and
  // under TSan that spin lock is invisible, so the graph's updates are reported as races.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ndx::common::BlockShutdownSignals();
  absl::StatusOr<ndx::config::QueueConfig> config =
      ndx::config::LoadQueueConfig(ndx::config::ProcessEnv());
  if (!config.ok()) {
    std::fprintf(stderr, "ndx-queue: configuration error: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  ndx::log::Init("ndx-queue", ndx::log::ParseLevel(config->common.log_level));
  // The direct-mode runner runs workflows in this process: process-wide libraries first.
  ndx::engine::InitJsEngine();
  ndx::engine::InitHttpClient();
  // Workflows are validated by the engine's parser before they are enqueued (unknown node types,
  // dangling connections, cycles outside Loop bodies, bad parameters: INVALID_ARGUMENT naming
  // them).
  ndx::engine::NodeRegistry registry;
  ndx::engine::RegisterBuiltinNodes(registry);
  ndx::queue::QueueServer server(*config, [&registry](const ndx::engine::Json& workflow) {
    return ndx::engine::ParseWorkflow(workflow, registry).status();
  });
  if (absl::Status s = server.Start(); !s.ok()) {
    ndx::log::Error("cannot start", {{"error", s}});
    return 1;
  }
  ndx::log::Info("listening", {{"grpc_port", server.grpc_port()},
                               {"metrics_port", server.metrics_port()},
                               {"redis", ndx::redis::RedactedUrl(config->common.redis_url)},
                               {"queue", config->common.queue}});
  const int sig = ndx::common::WaitForShutdownSignal();
  ndx::log::Info("shutting down", {{"signal", sig}});
  // Calls in flight (WaitExecution, event streams) get a short grace: clients retry elsewhere.
  server.Shutdown(std::min(config->shutdown_grace, absl::Seconds(3)));
  ndx::log::Info("stopped");
  return 0;
}
