// File: gateway_bench.h
//
// `ndx-bench gateway`: ndx-gateway in front of ndx-queue and ndx-worker (child processes, one
// redis-server, a closed DATABASE_URL: the workflows set saveExecutionToDatabase false;
// NDX_AUTH=none, NDX_EXECUTIONS_PER_MINUTE=0).
//   1. REST: POST /api/executions (a 2-node workflow) for a few seconds from `connections`
//      keep-alive connections, one request in flight each: requests/s (201s), p50/p99.
//   2. Socket.IO: `clients` npm socket.io-client sockets in one Node process
//      (bench/gateway/sio_clients.js), each starting and following its own execution (a few short
//      wait/set nodes): event latency (event `timestamp` to receipt) p50/p99, and the gateway's
//      VmRSS before, at its peak during, and after.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace ndx::bench {

struct GatewayBenchOptions {
  std::string redis_url;
  std::string queue_binary, worker_binary, gateway_binary;
  std::string node = "node";
  std::string script;     // bench/gateway/sio_clients.js
  std::string node_path;  // socket.io-client's node_modules
  std::string log_dir;
  int connections = 16;
  absl::Duration rest_time = absl::Seconds(10);
  bool postgres = true;  // a PostgresServer of its own; else a closed DATABASE_URL
  int gateway_threads = 2;
  int workers = 2;
  int worker_slots = 256;
  int clients = 1000;
  int steps = 5;  // wait + set pairs of the followed workflow
  int wait_ms = 400;
};

// {"mode": "rest", ...} and {"mode": "socketio", ...}.
absl::StatusOr<std::vector<nlohmann::json>> RunGatewayBench(const GatewayBenchOptions& options);

}  // namespace ndx::bench
