// ndx-worker: claims executions from the queue and runs them (see DESIGN.md "Processes").
#include <cstdio>

#include "absl/synchronization/mutex.h"
#include "libs/common/grpc_server.h"
#include "libs/common/log.h"
#include "libs/common/redis/redis_url.h"
#include "libs/config/service_config.h"
#include "libs/engine/http/http_client.h"
#include "libs/engine/js/js_sandbox.h"
#include "services/worker/worker_server.h"

int main() {
  // Debian's abseil is built with Mutex deadlock detection on: every lock updates a process-wide
  // lock graph (GraphCycles) under an internal spin lock, 1-2% of CPU (bench/README.md), and
  // under TSan that spin lock is invisible, so the graph's updates are reported as races.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  ndx::common::BlockShutdownSignals();
  absl::StatusOr<ndx::config::WorkerConfig> config =
      ndx::config::LoadWorkerConfig(ndx::config::ProcessEnv());
  if (!config.ok()) {
    std::fprintf(stderr, "ndx-worker: configuration error: %s\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  ndx::log::Init("ndx-worker", ndx::log::ParseLevel(config->common.log_level));
  // Process-wide libraries, before any thread starts.
  ndx::engine::InitJsEngine();
  ndx::engine::InitHttpClient();
  ndx::worker::WorkerServer server(*config);
  if (absl::Status s = server.Start(); !s.ok()) {
    ndx::log::Error("cannot start", {{"error", s}});
    return 1;
  }
  ndx::log::Info("listening", {{"grpc_port", server.grpc_port()},
                               {"metrics_port", server.metrics_port()},
                               {"worker_id", config->worker_id},
                               {"slots", config->concurrency},
                               {"redis", ndx::redis::RedactedUrl(config->common.redis_url)},
                               {"queue", config->common.queue}});
  const int sig = ndx::common::WaitForShutdownSignal();
  ndx::log::Info("shutting down",
                 {{"signal", sig}, {"grace", absl::FormatDuration(config->shutdown_grace)}});
  server.Shutdown(config->shutdown_grace);
  ndx::log::Info("stopped");
  return 0;
}
